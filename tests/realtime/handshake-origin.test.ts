// The socket handshake accepts the session cookie from the server's own pages only: the origin it
// was reached at, or ATTUNE_PUBLIC_ORIGIN behind a proxy that rewrites Host.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Socket } from 'socket.io-client';
import type { Engine } from '../../server/lm/engine.ts';
import { registerUser } from '../helpers/api-server.ts';
import { connectClient, connected, loadTestEngine, type RealtimeTestServer, startRealtimeServer } from '../helpers/realtime-server.ts';

let engine: Engine;
let modelDir: string;
let t: RealtimeTestServer;
const sockets: Socket[] = [];

before(async () => {
  ({ engine, dir: modelDir } = await loadTestEngine());
  t = await startRealtimeServer(engine, { env: { ATTUNE_PUBLIC_ORIGIN: 'https://chat.example.com' } });
});
after(async () => {
  for (const s of sockets) s.close();
  await t.stop();
  await engine.close();
  fs.rmSync(modelDir, { recursive: true, force: true });
});

const outcome = async (origin: string, cookie: string): Promise<string> => {
  const s = connectClient(t.url, undefined, { cookie, origin });
  sockets.push(s);
  return connected(s).then(() => 'connected', (e: { data?: { code?: string } }) => e.data?.code ?? 'error');
};

test('the cookie signs in from the public origin and from the origin reached, and from nowhere else', async () => {
  const user = await registerUser(t.app);
  const cookie = `attune_session=${encodeURIComponent(user.token)}`;
  assert.equal(await outcome('https://chat.example.com', cookie), 'connected');
  assert.equal(await outcome(t.url, cookie), 'connected');
  assert.equal(await outcome('https://evil.example.com', cookie), 'cross_origin_cookie');
  assert.equal(await outcome('https://chat.example.com.evil.example', cookie), 'cross_origin_cookie');
});
