// Below the socket events: engine.io's HTTP methods and socket.io's packet ids.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Socket } from 'socket.io-client';
import type { Engine } from '../../server/lm/engine.ts';
import { registerUser } from '../helpers/api-server.ts';
import { connectClient, connected, loadTestEngine, type RealtimeTestServer, sendRawPacket, startRealtimeServer } from '../helpers/realtime-server.ts';

let engine: Engine;
let modelDir: string;
let t: RealtimeTestServer;
const sockets: Socket[] = [];

before(async () => {
  ({ engine, dir: modelDir } = await loadTestEngine());
  t = await startRealtimeServer(engine);
});
after(async () => {
  for (const s of sockets) s.close();
  await t.stop();
  await engine.close();
  fs.rmSync(modelDir, { recursive: true, force: true });
});

test('a polling request with a method engine.io does not serve is a JSON 405, not a bare 500', async () => {
  const open = await fetch(`${t.url}/socket.io/?EIO=4&transport=polling`);
  assert.equal(open.status, 200);
  const sid = /"sid":"([^"]+)"/.exec(await open.text())?.[1];
  assert.ok(sid, 'the handshake gave a session id');
  for (const method of ['PUT', 'DELETE', 'PATCH']) {
    const res: Response = await fetch(`${t.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method });
    assert.equal(res.status, 405, method);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'method_not_allowed');
  }
  assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
});

test('an ack id that is not a safe integer closes that connection; the server never answers with an unparsable packet', async () => {
  const user = await registerUser(t.app);
  const s = connectClient(t.url, user.token);
  sockets.push(s);
  await connected(s);
  const sent: string[] = [];
  s.io.engine.on('packet', (p: { type: string; data?: unknown }) => {
    if (p.type === 'message' && typeof p.data === 'string') sent.push(p.data);
  });
  const closed = new Promise<string>((resolve) => {
    s.once('disconnect', (reason) => resolve(reason));
    setTimeout(() => resolve('still connected after 5 s'), 5000).unref();
  });
  sendRawPacket(s, '4299999999999999999999999["message:abort",{}]');
  assert.equal(await closed, 'transport close');
  assert.deepEqual(sent.filter((p) => /^3/.test(p)), [], 'no ack packet came back');

  const again = connectClient(t.url, user.token);
  sockets.push(again);
  await connected(again);
  assert.ok(again.connected, 'other connections are unaffected');
});
