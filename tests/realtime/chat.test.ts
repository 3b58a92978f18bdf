// Real-time chat over a real socket.io connection to a real server on a loopback port, answering
// with a tiny random model: handshake auth, streaming, abort, regenerate, disconnects, bad events.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import request from 'supertest';
import type { Socket } from 'socket.io-client';
import type { Engine } from '../../server/lm/engine.ts';
import { conversationDetailSchema } from '../../server/http/schemas.ts';
import { registerUser, type TestUser } from '../helpers/api-server.ts';
import { connectClient, connected, findLongPrompt, loadTestEngine, nextEvent, type RealtimeTestServer, startRealtimeServer } from '../helpers/realtime-server.ts';

interface MessageView {
  id: string;
  conversationId: string;
  parentId: string | null;
  role: string;
  content: string;
  status: string;
  finishReason: string | null;
  modelId: string | null;
  userModelVersion: string | null;
  sampling: Record<string, unknown> | null;
  seed: number | null;
}
interface StartEvent {
  conversation: { id: string; title: string };
  created: boolean;
  userMessage: MessageView | null;
  message: MessageView;
}
interface DeltaEvent {
  conversationId: string;
  messageId: string;
  delta: string;
}
interface DoneEvent {
  conversationId: string;
  message: MessageView;
}
interface ErrorEvent {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

const QUICK = { maxNewTokens: 6, seed: 42, temperature: 1 };

/** Sends and collects the whole exchange: start, every delta, done. */
async function exchange(socket: Socket, event: string, payload: unknown): Promise<{ start: StartEvent; deltas: DeltaEvent[]; done: DoneEvent }> {
  const deltas: DeltaEvent[] = [];
  const onDelta = (d: DeltaEvent) => deltas.push(d);
  socket.on('message:delta', onDelta);
  const start = nextEvent<StartEvent>(socket, 'message:start');
  const done = nextEvent<DoneEvent>(socket, 'message:done');
  let onError: (e: ErrorEvent) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => {
    onError = (e) => reject(new Error(`error event: ${JSON.stringify(e)}`));
    socket.on('error', onError);
  });
  socket.emit(event, payload);
  try {
    const result = await Promise.race([Promise.all([start, done]), failed]);
    return { start: result[0], deltas, done: result[1] };
  } finally {
    socket.off('message:delta', onDelta);
    socket.off('error', onError);
  }
}

describe('realtime chat', () => {
  let engine: Engine;
  let modelDir = '';
  let t: RealtimeTestServer;
  let alice: TestUser;
  let bob: TestUser;
  let a: Socket;
  /** A message whose greedy answer runs past 200 tokens without end-of-sequence (found in before()). */
  let longPrompt = '';
  const sockets: Socket[] = [];
  const client = (token: string | undefined, extra?: { cookie?: string; origin?: string }) => {
    const s = connectClient(t.url, token, extra);
    sockets.push(s);
    return s;
  };
  const greedyLong = () => ({ temperature: 0, seed: 1, maxNewTokens: 1000 });

  before(async () => {
    ({ engine, dir: modelDir } = await loadTestEngine());
    t = await startRealtimeServer(engine);
    alice = await registerUser(t.app, 'alice');
    bob = await registerUser(t.app, 'bob');
    longPrompt = await findLongPrompt(engine);
    a = client(alice.token);
    await connected(a);
  });
  after(async () => {
    for (const s of sockets) s.disconnect();
    await t.stop();
    await engine.close();
    fs.rmSync(modelDir, { recursive: true, force: true });
  });

  test('the handshake needs a valid session token, API key or session cookie', async () => {
    const none = client(undefined);
    const noneErr = (await connected(none).then(() => null, (e: unknown) => e)) as { message: string; data?: ErrorEvent } | null;
    assert.ok(noneErr, 'no credentials → connect_error');
    assert.equal(noneErr.data?.code, 'unauthorized');

    const bad = client('not-a-real-token');
    const badErr = (await connected(bad).then(() => null, (e: unknown) => e)) as { data?: ErrorEvent } | null;
    assert.equal(badErr?.data?.code, 'invalid_token');
    assert.deepEqual(Object.keys(badErr!.data!).sort(), ['code', 'details', 'message']);

    const revokedKey = await request(t.app).post('/api/me/api-keys').set(alice.auth).send({ name: 'rt' });
    assert.equal(revokedKey.status, 201, JSON.stringify(revokedKey.body));
    const viaKey = client(revokedKey.body.key);
    await connected(viaKey);
    assert.ok(viaKey.connected);

    const viaCookie = client(undefined, { cookie: `attune_session=${encodeURIComponent(alice.token)}` });
    await connected(viaCookie);
    const { done } = await exchange(viaCookie, 'message:send', { content: 'cookie hello', sampling: QUICK });
    const owned = await request(t.app).get(`/api/conversations/${done.conversationId}`).set(alice.auth);
    assert.equal(owned.status, 200, 'the cookie signed in as alice');

    const crossSite = client(undefined, { cookie: `attune_session=${encodeURIComponent(alice.token)}`, origin: 'http://evil.example' });
    const crossErr = (await connected(crossSite).then(() => null, (e: unknown) => e)) as { data?: ErrorEvent } | null;
    assert.equal(crossErr?.data?.code, 'cross_origin_cookie', 'a cookie from another origin does not sign in');
    const sameSite = client(undefined, { cookie: `attune_session=${encodeURIComponent(alice.token)}`, origin: t.url });
    await connected(sameSite);

    assert.equal((await request(t.app).delete(`/api/me/api-keys/${revokedKey.body.id}`).set(alice.auth)).status, 204);
    const afterRevoke = client(revokedKey.body.key);
    const revErr = (await connected(afterRevoke).then(() => null, (e: unknown) => e)) as { data?: ErrorEvent } | null;
    assert.equal(revErr?.data?.code, 'invalid_token');
  });

  test('send without a conversation: creates it, streams deltas, stores the answer with its provenance', async () => {
    const { start, deltas, done } = await exchange(a, 'message:send', { content: '  Plan a weekend trip to the mountains with friends please  ', sampling: { ...QUICK, topK: 40 } });
    assert.equal(start.created, true);
    assert.equal(start.conversation.title, 'Plan a weekend trip to the mountains with');
    assert.equal(start.userMessage?.content, 'Plan a weekend trip to the mountains with friends please');
    assert.equal(start.message.parentId, start.userMessage?.id);
    assert.equal(start.message.status, 'partial');
    assert.ok(deltas.every((d) => d.messageId === start.message.id && d.conversationId === start.conversation.id));

    const m = done.message;
    assert.equal(m.id, start.message.id);
    assert.equal(m.content, deltas.map((d) => d.delta).join(''));
    assert.equal(m.status, 'complete');
    assert.ok(m.finishReason === 'length' || m.finishReason === 'eos' || m.finishReason === 'stop', String(m.finishReason));
    assert.equal(m.modelId, 'random-test-model');
    assert.equal(m.userModelVersion, null);
    assert.equal(m.seed, 42);
    // No user-model source on this server: no soft prompt.
    assert.deepEqual(m.sampling, { temperature: 1, topK: 40, topP: 0.95, repetitionPenalty: 1, maxNewTokens: 6, softPrompt: { source: 'none', version: null } });

    const got = await request(t.app).get(`/api/conversations/${done.conversationId}`).set(alice.auth);
    assert.equal(got.status, 200);
    const detail = conversationDetailSchema.parse(got.body);
    assert.equal(detail.title, start.conversation.title);
    assert.deepEqual(
      detail.messages.map((x) => [x.id, x.parentId, x.role, x.content, x.status, x.finishReason, x.seed]),
      [
        [start.userMessage!.id, null, 'user', start.userMessage!.content, 'complete', null, null],
        [m.id, start.userMessage!.id, 'assistant', m.content, 'complete', m.finishReason, 42],
      ],
    );

    // The next turn hangs under the last answer.
    const second = await exchange(a, 'message:send', { conversationId: done.conversationId, content: 'Plan a weekend trip to the mountains with friends please', sampling: { ...QUICK, topK: 40 } });
    assert.equal(second.start.created, false);
    assert.equal(second.start.userMessage?.parentId, m.id);
    assert.equal(second.done.message.parentId, second.start.userMessage?.id);
  });

  test('message:abort stops the generation and keeps the partial answer', async () => {
    const start = nextEvent<StartEvent>(a, 'message:start');
    const done = nextEvent<DoneEvent>(a, 'message:done');
    a.emit('message:send', { content: longPrompt, sampling: greedyLong() });
    const { message } = await start;
    await nextEvent<DeltaEvent>(a, 'message:delta', (d) => d.messageId === message.id);
    a.emit('message:abort', { messageId: message.id });
    const finished = (await done).message;
    assert.equal(finished.id, message.id);
    assert.equal(finished.status, 'partial');
    assert.equal(finished.finishReason, 'abort');
    assert.ok(finished.content.length > 0);
    const stored = t.repos.conversations.findMessage(message.id)!;
    assert.equal(stored.status, 'partial');
    assert.equal(stored.content, finished.content);

    // Aborting it again: it is no longer generating.
    const err = nextEvent<ErrorEvent>(a, 'error');
    a.emit('message:abort', { messageId: message.id });
    assert.equal((await err).code, 'not_generating');
  });

  test('message:regenerate adds a sibling answer under the same user message; the old one stays', async () => {
    const first = await exchange(a, 'message:send', { content: 'say something', sampling: QUICK });
    const regen = await exchange(a, 'message:regenerate', { messageId: first.done.message.id, sampling: { ...QUICK, seed: 7 } });
    assert.equal(regen.start.userMessage, null);
    assert.equal(regen.start.created, false);
    assert.notEqual(regen.done.message.id, first.done.message.id);
    assert.equal(regen.done.message.parentId, first.done.message.parentId);
    assert.equal(regen.done.message.seed, 7);
    assert.equal(regen.done.message.content, regen.deltas.map((d) => d.delta).join(''));

    const got = conversationDetailSchema.parse((await request(t.app).get(`/api/conversations/${first.done.conversationId}`).set(alice.auth)).body);
    const siblings = got.messages.filter((m) => m.parentId === first.start.userMessage!.id);
    assert.deepEqual(siblings.map((m) => m.id), [first.done.message.id, regen.done.message.id]);

    // Regenerating the user message itself also answers it again.
    const third = await exchange(a, 'message:regenerate', { messageId: first.start.userMessage!.id, sampling: QUICK });
    assert.equal(third.done.message.parentId, first.start.userMessage!.id);
  });

  test('malformed events get an error event and the socket stays up', async () => {
    const cases: [string, unknown, string][] = [
      ['message:send', {}, 'validation_failed'],
      ['message:send', 'just a string', 'validation_failed'],
      ['message:send', { content: 'hi', extra: 1 }, 'validation_failed'],
      ['message:send', { content: '   ' }, 'validation_failed'],
      ['message:send', { content: 'hi', conversationId: 'nope' }, 'validation_failed'],
      ['message:send', { content: 'hi', sampling: { temperature: 5 } }, 'validation_failed'],
      ['message:abort', { messageId: 12 }, 'validation_failed'],
      ['message:regenerate', null, 'validation_failed'],
      ['chat:unknown', { x: 1 }, 'unknown_event'],
    ];
    const before = t.repos.conversations.listForUser(alice.id, 1000).length;
    for (const [event, payload, code] of cases) {
      const err = nextEvent<ErrorEvent>(a, 'error');
      a.emit(event, payload);
      const e = await err;
      assert.equal(e.code, code, `${event} ${JSON.stringify(payload)}: ${JSON.stringify(e)}`);
      assert.deepEqual(Object.keys(e).sort(), ['code', 'details', 'message']);
      assert.equal(e.details.event, event);
      assert.ok(a.connected);
    }
    assert.equal(t.repos.conversations.listForUser(alice.id, 1000).length, before, 'nothing was stored');
    const ok = await exchange(a, 'message:send', { content: 'still here?', sampling: QUICK });
    assert.equal(ok.done.message.status, 'complete');
  });

  test("another user's conversation or message is not found; oversize content is refused", async () => {
    const mine = await exchange(a, 'message:send', { content: 'private', sampling: QUICK });
    const b = client(bob.token);
    await connected(b);
    for (const [event, payload] of [
      ['message:send', { conversationId: mine.done.conversationId, content: 'let me in', sampling: QUICK }],
      ['message:regenerate', { messageId: mine.done.message.id }],
      ['message:abort', { messageId: mine.done.message.id }],
    ] as const) {
      const err = nextEvent<ErrorEvent>(b, 'error');
      b.emit(event, payload);
      const e = await err;
      assert.equal(e.code, 'not_found', `${event}: ${JSON.stringify(e)}`);
      assert.equal(e.details.status, 404);
    }
    assert.equal(t.repos.conversations.listMessages(mine.done.conversationId).length, 2, 'nothing added to alice');

    const err = nextEvent<ErrorEvent>(b, 'error');
    b.emit('message:send', { content: 'x'.repeat(t.config.maxMessageChars + 1) });
    const e = await err;
    assert.equal(e.code, 'payload_too_large');
    assert.equal(e.details.status, 413);
    assert.equal(e.details.limitChars, t.config.maxMessageChars);
    assert.equal(t.repos.conversations.listForUser(bob.id, 10).length, 0);
    assert.ok(b.connected);
  });

  test('a conversation longer than the context: the answer sees the latest turns that fit, and completes', async () => {
    const { done: first } = await exchange(a, 'message:send', { content: 'start of a long chat', sampling: QUICK });
    const conversationId = first.conversationId;
    let parentId = first.message.id;
    const filler = (i: number) => `turn ${i}: ${'many words of earlier talk '.repeat(40)}`;
    for (let i = 0; i < 12; i++) {
      for (const role of ['user', 'assistant'] as const) {
        const id = crypto.randomUUID();
        t.repos.conversations.insertMessage({
          id, conversationId, parentId, role, content: filler(i), status: 'complete', finishReason: null, modelName: null,
          userModelVersion: null, sampling: null, seed: null, createdAt: Date.now(),
        });
        parentId = id;
      }
    }
    const history = t.chat.promptFor(conversationId, parentId);
    assert.ok(engine.encodePrompt({ messages: history }).length > engine.runtime.maxContext, 'precondition: the history exceeds the context');
    const { done } = await exchange(a, 'message:send', { conversationId, content: 'and now?', sampling: QUICK });
    assert.equal(done.message.status, 'complete', JSON.stringify(done.message));
    assert.equal(done.message.parentId !== null, true);
    assert.equal(t.repos.conversations.listMessages(conversationId).length, 2 + 24 + 2, 'the stored history stays whole');
  });

  test('a socket frame over ATTUNE_MAX_BODY_BYTES closes that connection only; nothing is stored', async () => {
    const small = await startRealtimeServer(engine, { env: { ATTUNE_MAX_BODY_BYTES: '4096', ATTUNE_MAX_MESSAGE_CHARS: '100000' } });
    try {
      const u = await registerUser(small.app, 'zed');
      const big = connectClient(small.url, u.token);
      const fine = connectClient(small.url, u.token);
      sockets.push(big, fine);
      await Promise.all([connected(big), connected(fine)]);
      const gone = new Promise<string>((resolve) => big.once('disconnect', resolve));
      big.emit('message:send', { content: 'x'.repeat(5000) });
      assert.equal(await gone, 'transport close');
      assert.equal(small.repos.conversations.listForUser(u.id, 10).length, 0);
      const { done } = await exchange(fine, 'message:send', { content: 'x'.repeat(3000), sampling: QUICK });
      assert.equal(done.message.status, 'complete', 'a frame under the limit still works');
    } finally {
      await small.stop();
    }
  });

  test('a client that disconnects mid-stream: the generation stops and the answer is stored as partial', async () => {
    const c = client(alice.token);
    await connected(c);
    const start = nextEvent<StartEvent>(c, 'message:start');
    c.emit('message:send', { content: longPrompt, sampling: greedyLong() });
    const { message } = await start;
    await nextEvent<DeltaEvent>(c, 'message:delta', (d) => d.messageId === message.id);
    c.disconnect();
    const deadline = Date.now() + 10_000;
    while (t.chat.isGenerating(message.id) || t.repos.conversations.findMessage(message.id)!.finishReason === null) {
      assert.ok(Date.now() < deadline, 'the generation stops');
      await new Promise((r) => setTimeout(r, 20));
    }
    const stored = t.repos.conversations.findMessage(message.id)!;
    assert.equal(stored.status, 'partial');
    assert.equal(stored.finishReason, 'abort');
    assert.ok(stored.content.length > 0);
  });

  test('an engine failure: an error event without internals, and the answer stored with status error', async () => {
    const failing = await startRealtimeServer(engine, {
      chatEngine: {
        generate: (opts) => {
          const stream = engine.generate(opts);
          // Two deltas, then the engine fails.
          return {
            async *[Symbol.asyncIterator]() {
              let n = 0;
              for await (const d of stream) {
                yield d;
                if (++n === 2) throw new Error('onnxruntime exploded at /secret/path.ts:12');
              }
            },
            result: stream.result,
          } as unknown as ReturnType<Engine['generate']>;
        },
      },
    });
    try {
      const u = await registerUser(failing.app, 'dave');
      const s = connectClient(failing.url, u.token);
      sockets.push(s);
      await connected(s);
      const start = nextEvent<StartEvent>(s, 'message:start');
      const err = nextEvent<ErrorEvent>(s, 'error');
      const done = nextEvent<DoneEvent>(s, 'message:done');
      s.emit('message:send', { content: longPrompt, sampling: greedyLong() });
      const { message } = await start;
      const e = await err;
      assert.equal(e.code, 'generation_failed');
      assert.equal(e.details.status, 503);
      assert.equal(e.details.messageId, message.id);
      assert.doesNotMatch(JSON.stringify(e), /secret|onnxruntime/);
      const finished = (await done).message;
      assert.equal(finished.status, 'error');
      assert.equal(finished.finishReason, 'error');
      assert.ok(finished.content.length > 0, 'what was generated is kept');
      assert.ok(s.connected);
      s.disconnect();
    } finally {
      await failing.stop();
    }
  });

  test('sends are rate-limited per user', async () => {
    const limited = await startRealtimeServer(engine, { env: { ATTUNE_CHAT_RATE_LIMIT: '2' } });
    try {
      const u = await registerUser(limited.app, 'carol');
      const s = connectClient(limited.url, u.token);
      sockets.push(s);
      await connected(s);
      await exchange(s, 'message:send', { content: 'one', sampling: QUICK });
      await exchange(s, 'message:send', { content: 'two', sampling: QUICK });
      const err = nextEvent<ErrorEvent>(s, 'error');
      s.emit('message:send', { content: 'three', sampling: QUICK });
      const e = await err;
      assert.equal(e.code, 'rate_limited');
      assert.equal(e.details.status, 429);
      assert.ok(typeof e.details.retryAfterSeconds === 'number');
      s.disconnect();
    } finally {
      await limited.stop();
    }
  });
});
