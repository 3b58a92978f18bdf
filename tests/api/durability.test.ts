// Durability through the real app: a write that cannot be made durable (the database file deleted or
// replaced under the server, a full disk as a genuine SQLITE_FULL via max_page_count) is a 503 with a
// storage code over HTTP and over the socket, never a 201; /readyz fails and names the cause. And a
// streaming answer's text reaches the database while it streams (every CHECKPOINT_EVERY_DELTAS deltas
// or CHECKPOINT_INTERVAL_MS), so a crash loses at most that much of what the client saw.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import type { Socket } from 'socket.io-client';
import type { Engine } from '../../server/lm/engine.ts';
import { GenerationStream } from '../../server/lm/scheduler.ts';
import { CHECKPOINT_EVERY_DELTAS, CHECKPOINT_INTERVAL_MS, type ChatEngine } from '../../server/services/chat.ts';
import { assertError, createTestServer, registerUser, tableCounts, type TestServer } from '../helpers/api-server.ts';
import { connectClient, connected, findLongPrompt, loadTestEngine, nextEvent, type RealtimeTestServer, startRealtimeServer } from '../helpers/realtime-server.ts';

interface ErrorEvent {
  code: string;
  message: string;
  details: Record<string, unknown>;
}
interface DeltaEvent {
  messageId: string;
  delta: string;
}
interface StartEvent {
  message: { id: string };
}

const readyz = (t: TestServer) => request(t.app).get('/readyz');

describe('writes that cannot be made durable, over HTTP', () => {
  test('the database file deleted under the server: writes are 503 storage_unavailable, not 201; /readyz fails naming the deletion', async () => {
    const t = createTestServer({ isModelReady: () => true });
    try {
      const u = await registerUser(t.app);
      assert.equal((await request(t.app).post('/api/conversations').set(u.auth).send({ title: 'kept' })).status, 201);
      assert.equal((await readyz(t)).status, 200);
      fs.unlinkSync(t.config.dbFile);
      const write = await request(t.app).post('/api/conversations').set(u.auth).send({ title: 'would be lost' });
      assertError(write, 503, 'storage_unavailable');
      assertError(await request(t.app).post('/api/auth/register').send({ username: 'late_user', password: 'correct horse battery' }), 503, 'storage_unavailable');
      const probe = await readyz(t);
      assert.equal(probe.status, 503);
      assert.equal(probe.body.status, 'not_ready');
      assert.equal(probe.body.db, false);
      assert.equal(probe.body.model, true);
      assert.equal(probe.body.cause.code, 'database_deleted');
      assert.match(probe.body.cause.message, /deleted/);
      assert.equal((await request(t.app).get('/api/conversations').set(u.auth)).status, 200, 'reads still answer');
    } finally {
      t.close();
    }
  });

  test('the database file replaced by another: writes are 503, /readyz names the replacement', async () => {
    const t = createTestServer({ isModelReady: () => true });
    try {
      const u = await registerUser(t.app);
      const other = path.join(t.dir, 'restored-from-elsewhere.db');
      fs.copyFileSync(t.config.dbFile, other);
      fs.renameSync(other, t.config.dbFile);
      assertError(await request(t.app).post('/api/conversations').set(u.auth).send({}), 503, 'storage_unavailable');
      const probe = await readyz(t);
      assert.equal(probe.status, 503);
      assert.equal(probe.body.cause.code, 'database_replaced');
    } finally {
      t.close();
    }
  });

  test('a full disk (SQLITE_FULL): writes are 503 storage_full, /readyz fails until there is room, then both recover', async () => {
    const t = createTestServer({ isModelReady: () => true });
    try {
      const u = await registerUser(t.app);
      const pages = t.db.pragma('page_count', { simple: true }) as number;
      t.db.pragma(`max_page_count = ${pages}`);
      let full: request.Response | undefined;
      // The last pages may still have room for a row or two.
      for (let i = 0; i < 50 && full?.status !== 503; i++) full = await request(t.app).post('/api/conversations').set(u.auth).send({ title: `t${i} ${'x'.repeat(150)}` });
      assertError(full!, 503, 'storage_full');
      const probe = await readyz(t);
      assert.equal(probe.status, 503);
      assert.equal(probe.body.cause.code, 'storage_full');
      t.db.pragma(`max_page_count = ${pages + 10_000}`);
      assert.equal((await readyz(t)).status, 200);
      assert.equal((await request(t.app).post('/api/conversations').set(u.auth).send({ title: 'room again' })).status, 201);
    } finally {
      t.close();
    }
  });
});

describe('over the socket, and streaming checkpoints', () => {
  let engine: Engine;
  let modelDir = '';
  let longPrompt = '';
  const greedyLong = { temperature: 0, maxNewTokens: 200 };
  const sockets: Socket[] = [];

  before(async () => {
    ({ engine, dir: modelDir } = await loadTestEngine());
    longPrompt = await findLongPrompt(engine);
  });
  after(async () => {
    for (const s of sockets) s.disconnect();
    await engine.close();
    fs.rmSync(modelDir, { recursive: true, force: true });
  });

  async function withServer(fn: (t: RealtimeTestServer, socket: Socket, userId: string) => Promise<void>, chatEngine?: ChatEngine): Promise<void> {
    const t = await startRealtimeServer(engine, chatEngine ? { chatEngine } : {});
    try {
      const u = await registerUser(t.app);
      const socket = connectClient(t.url, u.token);
      sockets.push(socket);
      await connected(socket);
      await fn(t, socket, u.id);
      socket.disconnect();
    } finally {
      await t.stop();
    }
  }

  test('a message sent after the database file was deleted: a 503 storage_unavailable error event, no reply starts', async () => {
    await withServer(async (t, socket) => {
      fs.unlinkSync(t.config.dbFile);
      socket.once('message:start', () => assert.fail('no reply may start'));
      const error = nextEvent<ErrorEvent>(socket, 'error');
      socket.emit('message:send', { content: 'hello', sampling: { maxNewTokens: 4 } });
      const e = await error;
      assert.equal(e.code, 'storage_unavailable');
      assert.equal(e.details.status, 503);
    });
  });

  test('a message sent to a full database: a 503 storage_full error event; nothing is half stored; the engine is left idle', async () => {
    await withServer(async (t, socket, userId) => {
      // Fill the messages table itself up to the page limit, so the next message needs a page it cannot have.
      const conversationId = randomUUID();
      t.repos.conversations.insert({ id: conversationId, userId, title: 'filler', createdAt: Date.now(), updatedAt: Date.now() });
      t.db.pragma(`max_page_count = ${t.db.pragma('page_count', { simple: true }) as number}`);
      assert.throws(() => {
        for (let i = 0; i < 10_000; i++) {
          t.repos.conversations.insertMessage({
            id: randomUUID(), conversationId, parentId: null, role: 'user', content: 'x'.repeat(300), status: 'complete', finishReason: null,
            modelName: null, userModelVersion: null, sampling: null, seed: null, createdAt: Date.now(),
          });
        }
      }, /storage space/);
      const before = tableCounts(t.db);
      const error = nextEvent<ErrorEvent>(socket, 'error');
      socket.emit('message:send', { content: `hello ${'x'.repeat(3000)}`, sampling: { maxNewTokens: 4 } });
      const e = await error;
      assert.equal(e.code, 'storage_full');
      assert.equal(e.details.status, 503);
      assert.deepEqual(tableCounts(t.db), before);
      const deadline = Date.now() + 5000;
      while (engine.scheduler.stats().active + engine.scheduler.stats().queued > 0) {
        assert.ok(Date.now() < deadline, 'the started generation was stopped');
        await new Promise((r) => setTimeout(r, 20));
      }
    });
  });

  test(`while an answer streams, its text is in the database after every ${CHECKPOINT_EVERY_DELTAS} deltas (a prefix of what the client saw)`, async () => {
    await withServer(async (t, socket) => {
      const start = nextEvent<StartEvent>(socket, 'message:start');
      let seen = '';
      let deltas = 0;
      const mid = new Promise<{ content: string; status: string; finishReason: string | null; seen: string }>((resolve) => {
        socket.on('message:delta', (d: DeltaEvent) => {
          seen += d.delta;
          // The test server runs in this process: the row is read at the moment the client has this delta.
          if (++deltas === CHECKPOINT_EVERY_DELTAS + 8) {
            const row = t.repos.conversations.findMessage(d.messageId)!;
            resolve({ content: row.content, status: row.status, finishReason: row.finishReason, seen });
          }
        });
      });
      socket.emit('message:send', { content: longPrompt, sampling: greedyLong });
      const { message } = await start;
      const row = await mid;
      assert.equal(row.status, 'partial');
      assert.equal(row.finishReason, null, 'still streaming');
      assert.notEqual(row.content, '', 'checkpointed while streaming');
      assert.ok(row.seen.startsWith(row.content), 'the stored text is a prefix of what the client saw');
      socket.emit('message:abort', { messageId: message.id });
      await nextEvent(socket, 'message:done');
    });
  });

  test(`a slow stream is checkpointed at least every ${CHECKPOINT_INTERVAL_MS} ms, before ${CHECKPOINT_EVERY_DELTAS} deltas`, async () => {
    // The real engine's deltas, each held back 200 ms: a stream at 5 tokens per second.
    const slow: ChatEngine = {
      generate(opts) {
        const inner = engine.generate(opts);
        const outer = new GenerationStream();
        void (async () => {
          let pushed = '';
          try {
            for await (const delta of inner) {
              await new Promise((r) => setTimeout(r, 200));
              if (opts.signal?.aborted) break;
              outer.push(delta);
              pushed += delta;
            }
            const r = await inner.result;
            outer.finish(opts.signal?.aborted ? { ...r, text: pushed, finishReason: 'abort' } : r);
          } catch (e) {
            outer.error(e);
          }
        })();
        return outer;
      },
    };
    await withServer(async (t, socket) => {
      const start = nextEvent<StartEvent>(socket, 'message:start');
      let seen = '';
      let deltas = 0;
      socket.on('message:delta', (d: DeltaEvent) => {
        seen += d.delta;
        deltas++;
      });
      socket.emit('message:send', { content: longPrompt, sampling: greedyLong });
      const { message } = await start;
      await nextEvent(socket, 'message:delta');
      await new Promise((r) => setTimeout(r, CHECKPOINT_INTERVAL_MS + 400));
      const row = t.repos.conversations.findMessage(message.id)!;
      assert.ok(deltas < CHECKPOINT_EVERY_DELTAS, `precondition: only the time rule applies (${deltas} deltas)`);
      assert.equal(row.status, 'partial');
      assert.notEqual(row.content, '', `checkpointed within ${CHECKPOINT_INTERVAL_MS} ms`);
      assert.ok(seen.startsWith(row.content));
      socket.emit('message:abort', { messageId: message.id });
      const done = await nextEvent<{ message: { content: string; status: string } }>(socket, 'message:done');
      assert.equal(done.message.status, 'partial');
      assert.equal(done.message.content, seen, 'the final text is what was streamed');
    }, slow);
  });
});
