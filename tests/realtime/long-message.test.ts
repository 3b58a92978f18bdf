// Messages longer than the context, over a real socket.io connection, answered by the committed default
// model (512-token context). The engine's one rule (fitContext): a prompt leaves room for
// min(maxNewTokens, a quarter of the context) new tokens; older turns are dropped first; a newest
// message that cannot leave that room is a 400 `context_length_exceeded` error event, with nothing
// stored. It is never a 503, and never an `error` row.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import path from 'node:path';
import { pino } from 'pino';
import request from 'supertest';
import type { Socket } from 'socket.io-client';
import { Engine } from '../../server/lm/engine.ts';
import { registerUser, tableCounts, type TestUser } from '../helpers/api-server.ts';
import { connectClient, connected, nextEvent, type RealtimeTestServer, startRealtimeServer, TEST_MODEL_ID } from '../helpers/realtime-server.ts';

interface ErrorEvent {
  code: string;
  message: string;
  details: Record<string, unknown>;
}
interface DoneEvent {
  conversationId: string;
  message: { id: string; status: string; content: string; parentId: string | null };
}

/** 1,759 characters that the default tokenizer splits finely: far more tokens than the context holds. */
const DENSE = Array.from({ length: 1759 }, (_, i) => String.fromCharCode(97 + ((i * 7919) % 26))).join('');
/** 1,759 characters of plain English: fewer tokens than the context, but too many to leave room for an answer. */
const ENGLISH = 'Please explain how a budget works and why small daily costs add up quickly. '.repeat(25).slice(0, 1759);
const QUICK = { maxNewTokens: 8, seed: 7, temperature: 0.7 };
/** The server's default cap (256 new tokens): a quarter of the context, 128 tokens, is kept for the answer. */
const DEFAULT_CAP = { seed: 7 };

describe('long messages over a socket, default model', () => {
  let engine: Engine;
  let t: RealtimeTestServer;
  let user: TestUser;
  let socket: Socket;
  const logged: { level: number; msg: string; err?: unknown }[] = [];

  before(async () => {
    engine = await Engine.load(path.resolve('models/default'), { maxBatch: 4 });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logged.push(JSON.parse(line) as (typeof logged)[number]);
        done();
      },
    });
    t = await startRealtimeServer(engine, { logger: pino({ level: 'info' }, sink), env: { ATTUNE_MAX_NEW_TOKENS: '256', ATTUNE_CHAT_RATE_LIMIT: '1000' } });
    user = await registerUser(t.app);
    socket = connectClient(t.url, user.token);
    await connected(socket);
  });
  after(async () => {
    socket.disconnect();
    await t.stop();
    await engine.close();
  });

  /** Sends; resolves with the error event, failing if the reply starts instead. */
  async function refused(payload: Record<string, unknown>, event = 'message:send'): Promise<ErrorEvent> {
    const started = new Promise<never>((_, reject) => socket.once('message:start', (s) => reject(new Error(`the reply started: ${JSON.stringify(s).slice(0, 200)}`))));
    const error = nextEvent<ErrorEvent>(socket, 'error');
    socket.emit(event, payload);
    try {
      return await Promise.race([error, started]);
    } finally {
      socket.removeAllListeners('message:start');
    }
  }

  async function answered(payload: Record<string, unknown>): Promise<DoneEvent> {
    const failed = new Promise<never>((_, reject) => socket.once('error', (e) => reject(new Error(`error event: ${JSON.stringify(e)}`))));
    const done = nextEvent<DoneEvent>(socket, 'message:done', () => true, 60_000);
    socket.emit('message:send', payload);
    try {
      return await Promise.race([done, failed]);
    } finally {
      socket.removeAllListeners('error');
    }
  }

  const assertContextError = (e: ErrorEvent) => {
    assert.equal(e.code, 'context_length_exceeded', JSON.stringify(e));
    assert.equal(e.details.status, 400);
    assert.equal(e.details.contextTokens, engine.runtime.maxContext);
    assert.equal(e.details.reservedTokens, engine.runtime.maxContext / 4, 'a quarter of the context is kept for the answer (the cap of 256 is more)');
    assert.ok((e.details.promptTokens as number) > (e.details.maxPromptTokens as number));
    assert.match(e.message, /too long/);
    assert.doesNotMatch(JSON.stringify(e), /\bat .*\.(ts|js):\d+/);
  };

  test('a 1,759-character message longer than the context: a 400 error event, nothing stored, nothing logged as an error', async () => {
    assert.ok(engine.encodePrompt({ messages: [{ role: 'user', content: DENSE }] }).length > engine.runtime.maxContext, 'precondition: longer than the context');
    const before = tableCounts(t.db);
    const errorsBefore = logged.filter((l) => l.level >= 50).length;
    assertContextError(await refused({ content: DENSE, sampling: DEFAULT_CAP }));
    assert.deepEqual(tableCounts(t.db), before, 'no conversation, no message, no error row');
    assert.equal(logged.filter((l) => l.level >= 50).length, errorsBefore, 'a user error is not logged as a server error');
  });

  test('a message that fits the context but leaves no room for the answer is refused the same way; with a smaller cap it is answered', async () => {
    const tokens = engine.encodePrompt({ messages: [{ role: 'user', content: ENGLISH }] }).length;
    assert.ok(tokens <= engine.runtime.maxContext - 8 && tokens > engine.runtime.maxContext * 0.75, `precondition: ${tokens} tokens`);
    const before = tableCounts(t.db);
    const e = await refused({ content: ENGLISH, sampling: DEFAULT_CAP });
    assertContextError(e);
    assert.equal(e.details.promptTokens, tokens);
    assert.deepEqual(tableCounts(t.db), before);
    // The room kept is min(maxNewTokens, a quarter of the context): 8 tokens fit beside it.
    const done = await answered({ content: ENGLISH, sampling: QUICK });
    assert.equal(done.message.status, 'complete');
  });

  test('in a conversation the older turns are dropped first; a newest message alone too long changes nothing', async () => {
    const first = await answered({ content: 'tell me about a budget', sampling: QUICK });
    const conversationId = first.conversationId;
    let parentId = first.message.id;
    for (let i = 0; i < 6; i++) {
      for (const role of ['user', 'assistant'] as const) {
        const id = randomUUID();
        t.repos.conversations.insertMessage({
          id, conversationId, parentId, role, content: `turn ${i}: ${'a good budget leaves room for fun and small costs add up. '.repeat(8)}`,
          status: 'complete', finishReason: null, modelName: null, userModelVersion: null, sampling: null, seed: null, createdAt: Date.now(),
        });
        parentId = id;
      }
    }
    assert.ok(engine.encodePrompt({ messages: t.chat.promptFor(conversationId, parentId) }).length > engine.runtime.maxContext, 'precondition: the history exceeds the context');
    const done = await answered({ conversationId, content: 'and how do I start one?', sampling: QUICK });
    assert.equal(done.message.status, 'complete');
    const count = t.repos.conversations.listMessages(conversationId).length;
    assert.equal(count, 2 + 12 + 2, 'the stored history stays whole');

    const conversation = t.repos.conversations.findForUser(conversationId, user.id)!;
    assertContextError(await refused({ conversationId, content: DENSE, sampling: DEFAULT_CAP }));
    assert.equal(t.repos.conversations.listMessages(conversationId).length, count, 'the refused message is not stored');
    assert.deepEqual(t.repos.conversations.findForUser(conversationId, user.id), conversation);
  });

  test('regenerating under a user message too long for the context: refused, no new answer row', async () => {
    const first = await answered({ content: 'hello', sampling: QUICK });
    const id = randomUUID();
    t.repos.conversations.insertMessage({
      id, conversationId: first.conversationId, parentId: first.message.id, role: 'user', content: DENSE,
      status: 'complete', finishReason: null, modelName: null, userModelVersion: null, sampling: null, seed: null, createdAt: Date.now(),
    });
    const count = t.repos.conversations.listMessages(first.conversationId).length;
    const e = await refused({ messageId: id, sampling: DEFAULT_CAP }, 'message:regenerate');
    assertContextError(e);
    assert.equal(t.repos.conversations.listMessages(first.conversationId).length, count);
  });

  test('a message that leaves room is answered', async () => {
    const content = ENGLISH.slice(0, 1000);
    const done = await answered({ content, sampling: QUICK });
    assert.equal(done.message.status, 'complete');
    assert.notEqual(done.message.content, '');
  });

  test('/v1 refuses the same text with a 400 in its own shape', async () => {
    const key = (await request(t.app).post('/api/me/api-keys').set(user.auth).send({ name: 'long' })).body.key as string;
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: DENSE }] }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; type: string } };
    assert.equal(body.error.code, 'context_length_exceeded');
    assert.equal(body.error.type, 'invalid_request_error');
  });
});
