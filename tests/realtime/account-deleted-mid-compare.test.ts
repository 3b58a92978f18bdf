// The account is deleted while its A/B pair streams: the cascade removes both candidates' rows under
// the running generations. The streams stop, nothing is written for the gone user, and no handler
// fails with an internal error (or logs one); the chat service itself ends with a plain NotFound.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import request from 'supertest';
import type { Socket } from 'socket.io-client';
import type { Engine } from '../../server/lm/engine.ts';
import type { MessageRecord } from '../../server/db/conversations.ts';
import type { ErrorPayload } from '../../server/realtime/events.ts';
import type { Candidate, ReplyHooks } from '../../server/services/chat.ts';
import { registerUser, tableCounts } from '../helpers/api-server.ts';
import { connectClient, connected, findLongPrompt, loadTestEngine, nextEvent, type RealtimeTestServer, startRealtimeServer } from '../helpers/realtime-server.ts';

const PASSWORD = 'correct horse battery';
const LONG = { temperature: 0, seed: 1, maxNewTokens: 1000 };

describe('account deleted while an A/B pair streams', () => {
  let engine: Engine;
  let modelDir = '';
  let t: RealtimeTestServer;
  let longPrompt = '';
  const logLines: string[] = [];
  const sockets: Socket[] = [];

  before(async () => {
    ({ engine, dir: modelDir } = await loadTestEngine());
    const logger = pino({ level: 'warn' }, new Writable({ write: (chunk, _enc, cb) => (logLines.push(String(chunk)), cb()) }));
    t = await startRealtimeServer(engine, { logger });
    longPrompt = await findLongPrompt(engine);
  });
  after(async () => {
    for (const s of sockets) s.disconnect();
    await t.stop();
    await engine.close();
    fs.rmSync(modelDir, { recursive: true, force: true });
  });

  const settled = async (ids: string[]) => {
    const deadline = Date.now() + 10_000;
    while (ids.some((id) => t.chat.isGenerating(id))) {
      assert.ok(Date.now() < deadline, 'the generations stop');
      await new Promise((r) => setTimeout(r, 20));
    }
    // The handlers' last steps run after the streams end.
    await new Promise((r) => setTimeout(r, 100));
  };

  test('over a socket: both streams stop, the sockets end, no internal error or error log', async () => {
    const u = await registerUser(t.app, 'wes', PASSWORD);
    const key = await request(t.app).post('/api/me/api-keys').set(u.auth).send({ name: 'k' });
    // The pair streams on the API key's socket, so the deletion (made with the session) is not its own event.
    const s = connectClient(t.url, key.body.key);
    sockets.push(s);
    await connected(s);
    const errors: ErrorPayload[] = [];
    s.on('error', (e: ErrorPayload) => errors.push(e));
    const start = nextEvent<{ candidates: Record<Candidate, { id: string }> }>(s, 'compare:start');
    s.emit('message:send', { content: longPrompt, compare: true, sampling: LONG });
    const { candidates } = await start;
    await nextEvent(s, 'message:delta');
    const logsBefore = logLines.length;
    const gone = new Promise((resolve) => s.once('disconnect', resolve));
    assert.equal((await request(t.app).delete('/api/me').set(u.auth).send({ password: PASSWORD })).status, 204);
    await gone;
    await settled([candidates.A.id, candidates.B.id]);
    assert.deepEqual(errors.filter((e) => e.code !== 'credentials_ended'), []);
    assert.deepEqual(logLines.slice(logsBefore), [], 'nothing logged at warn or above');
    assert.equal(t.repos.users.findById(u.id), undefined);
    assert.equal(t.repos.conversations.findMessage(candidates.A.id), undefined);
  });

  test('in the chat service: each candidate finishes with its message, and the turn ends with NotFound', async () => {
    const u = await registerUser(t.app, 'xia', PASSWORD);
    const done: Array<{ message: MessageRecord | undefined; candidate: Candidate; error: unknown }> = [];
    let started: Record<Candidate, MessageRecord> | null = null;
    let deleted = false;
    const hooks: ReplyHooks = {
      onStart: () => assert.fail('a comparison starts with onCompareStart'),
      onCompareStart: ({ candidates }) => {
        started = candidates;
      },
      onDelta: () => {
        if (deleted) return;
        deleted = true;
        // The account goes as a DELETE /api/me would, mid-stream; nobody aborts the generations.
        assert.equal(t.repos.users.deleteById(u.id), true);
      },
      onCandidateDone: (message, candidate, error) => done.push({ message, candidate, error }),
    };
    const logsBefore = logLines.length;
    const countsBefore = tableCounts(t.db);
    const outcome = await t.chat.send(u.id, { content: longPrompt, compare: true, sampling: { ...LONG, maxNewTokens: 20 } }, hooks).then(
      () => null,
      (e: unknown) => e as { code?: string; status?: number },
    );
    assert.equal(outcome?.status, 404);
    assert.ok(started);
    assert.deepEqual(done.map((d) => d.candidate).sort(), ['A', 'B']);
    for (const d of done) {
      assert.ok(d.message, 'onCandidateDone gets the message it streamed');
      assert.equal(d.error, undefined);
    }
    assert.deepEqual(logLines.slice(logsBefore), []);
    // Nothing of the gone user was written back (no row resurrected, no orphan).
    assert.deepEqual(tableCounts(t.db), { ...countsBefore, users: countsBefore.users! - 1, sessions: countsBefore.sessions! - 1 });
  });
});
