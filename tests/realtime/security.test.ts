// The socket edge under attack, over a real server on a loopback port and real socket.io clients:
// raw frames no client library would build (tens of thousands of arguments, JSON nested 10,000 deep,
// huge names and keys, binary, acks), handler failures that must not reach the process, lone
// surrogates, and the lifecycle of the credential a socket was opened with (logout, key revoked,
// account deleted or disabled, expiry, a role change).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import request from 'supertest';
import type { Socket } from 'socket.io-client';
import type { Engine } from '../../server/lm/engine.ts';
import { ServiceUnavailable } from '../../server/errors.ts';
import { conversationDetailSchema } from '../../server/http/schemas.ts';
import type { ErrorPayload, MessageDoneEvent, MessageStartEvent } from '../../server/realtime/events.ts';
import { MAX_ECHOED_NAME, MAX_PAYLOAD_DEPTH, MAX_PAYLOAD_VALUES, normaliseJsonPayload } from '../../server/realtime/guard.ts';
import { credentialEnds, type CredentialsEnded, type HeldCredential } from '../../server/services/credential-events.ts';
import { registerUser, type TestUser } from '../helpers/api-server.ts';
import { connectClient, connected, ending, findLongPrompt, loadTestEngine, nextEvent, type RealtimeTestServer, sendRawPacket, startRealtimeServer } from '../helpers/realtime-server.ts';

const QUICK = { maxNewTokens: 4, seed: 3, temperature: 1 };
const PASSWORD = 'correct horse battery';
const ADMIN_PASSWORD = 'admin password 1';

/** Sends and waits for the answer; fails on an error event. */
async function exchange(socket: Socket, payload: unknown): Promise<{ start: MessageStartEvent; done: MessageDoneEvent }> {
  const start = nextEvent<MessageStartEvent>(socket, 'message:start');
  const done = nextEvent<MessageDoneEvent>(socket, 'message:done');
  let onError: (e: ErrorPayload) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => {
    onError = (e) => reject(new Error(`error event: ${JSON.stringify(e).slice(0, 500)}`));
    socket.on('error', onError);
  });
  socket.emit('message:send', payload);
  try {
    const [s, d] = await Promise.race([Promise.all([start, done]), failed]);
    return { start: s, done: d };
  } finally {
    socket.off('error', onError);
  }
}


/** The server still answers over HTTP on its real port (the process did not die). */
async function assertHttpAlive(t: RealtimeTestServer): Promise<void> {
  const res = await fetch(`${t.url}/healthz`);
  assert.equal(res.status, 200);
}

describe('socket edge: every packet is checked before any listener runs', () => {
  let engine: Engine;
  let modelDir = '';
  let t: RealtimeTestServer;
  let alice: TestUser;
  let a: Socket;
  const logLines: string[] = [];
  const sockets: Socket[] = [];
  const client = (token: string) => {
    const s = connectClient(t.url, token);
    sockets.push(s);
    return s;
  };

  /** Sends a raw packet and returns the next error event on that socket. */
  const refusal = async (socket: Socket, packet: string): Promise<ErrorPayload> => {
    const err = nextEvent<ErrorPayload>(socket, 'error');
    sendRawPacket(socket, packet);
    return err;
  };

  before(async () => {
    ({ engine, dir: modelDir } = await loadTestEngine());
    const logger = pino({ level: 'warn' }, new Writable({ write: (chunk, _enc, cb) => (logLines.push(String(chunk)), cb()) }));
    t = await startRealtimeServer(engine, {
      logger,
      wrapChat: (chat) => ({
        ...chat,
        // A plain (non-App) error thrown synchronously by a service, as a bug would.
        choose: () => {
          throw new TypeError('boom at /secret/path/chat.ts:12');
        },
        // A reply whose emitted payload cannot be encoded (a BigInt delta), then a rejected promise.
        send: async (userId, input, hooks) => {
          if (input.content === 'bigint please') {
            hooks.onDelta(10n as unknown as string, { id: 'x', conversationId: 'y' } as Parameters<typeof hooks.onDelta>[1]);
            throw new RangeError('rejected at /secret/path/chat.ts:99');
          }
          return chat.send(userId, input, hooks);
        },
      }),
    });
    alice = await registerUser(t.app, 'alice');
    a = client(alice.token);
    await connected(a);
  });
  after(async () => {
    for (const s of sockets) s.disconnect();
    await t.stop();
    await engine.close();
    fs.rmSync(modelDir, { recursive: true, force: true });
  });

  test('42,000 and 80,000 extra arguments: one error event, the server lives and the socket still chats', async () => {
    for (const n of [42_000, 80_000]) {
      const packet = `2["message:send",{}${',{}'.repeat(n)}]`;
      assert.ok(packet.length < t.config.maxBodyBytes, 'precondition: the frame is under the frame limit');
      const e = await refusal(a, packet);
      assert.equal(e.code, 'validation_failed');
      assert.equal(e.details.event, 'message:send');
      assert.equal(e.details.arguments, n + 1);
      assert.ok(a.connected);
    }
    await assertHttpAlive(t);
    const { done } = await exchange(a, { content: 'still alive?', sampling: QUICK });
    assert.equal(done.message.status, 'complete');
  });

  test('exactly one payload: none, two, or an ack callback are refused, and the ack is answered with the error', async () => {
    const none = await refusal(a, '2["message:send"]');
    assert.equal(none.code, 'validation_failed');
    assert.equal(none.details.arguments, 0);
    const two = await refusal(a, '2["message:send",{"content":"hi"},{"content":"hi"}]');
    assert.equal(two.details.arguments, 2);

    const stored = t.repos.conversations.listForUser(alice.id, 100).length;
    const err = nextEvent<ErrorPayload>(a, 'error');
    const acked = await a.timeout(5000).emitWithAck('message:send', { content: 'with an ack', sampling: QUICK });
    assert.equal((acked as ErrorPayload).code, 'validation_failed');
    assert.match((acked as ErrorPayload).message, /acknowledgements are not supported/);
    assert.equal((await err).code, 'validation_failed');
    assert.equal(t.repos.conversations.listForUser(alice.id, 100).length, stored, 'nothing was stored');
  });

  test('JSON nested 10,000 deep (arrays, objects, inside a valid key) is refused before anything walks it', async () => {
    const deepArray = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const deepObject = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
    for (const payload of [deepArray, deepObject, `{"content":"hi","sampling":${deepObject}}`]) {
      const e = await refusal(a, `2["message:send",${payload}]`);
      assert.equal(e.code, 'validation_failed');
      assert.match(e.message, new RegExp(`nested deeper than ${MAX_PAYLOAD_DEPTH} levels`));
    }
    // Wide instead of deep: a hundred thousand values, refused after MAX_PAYLOAD_VALUES of them.
    const wide = await refusal(a, `2["message:send",{"content":"hi","x":[${'0,'.repeat(100_000)}0]}]`);
    assert.match(wide.message, new RegExp(`more than ${MAX_PAYLOAD_VALUES} values`));
    assert.ok(a.connected);
    await assertHttpAlive(t);
  });

  test('payloads that are not objects, binary attachments and non-string event names are refused', async () => {
    const stored = t.repos.conversations.listForUser(alice.id, 100).length;
    for (const payload of ['"just a string"', '42', 'null', 'true', '[]', '[{"content":"hi"}]']) {
      const e = await refusal(a, `2["message:send",${payload}]`);
      assert.equal(e.code, 'validation_failed', payload);
      assert.equal(e.details.event, 'message:send');
    }
    const binErr = nextEvent<ErrorPayload>(a, 'error');
    a.emit('message:send', { content: Buffer.from('hi') });
    assert.match((await binErr).message, /binary attachments are not accepted/);

    const numeric = await refusal(a, '2[42,{"content":"hi"}]');
    assert.equal(numeric.code, 'unknown_event');
    assert.equal(numeric.details.event, '42');
    // 'error' is not an event a client may send (it would reach the server's own error listener).
    const errorEvent = await refusal(a, '2["error",{"content":"hi"}]');
    assert.equal(errorEvent.code, 'unknown_event');
    assert.equal(t.repos.conversations.listForUser(alice.id, 100).length, stored, 'nothing was stored');
  });

  test('a 200 KB event name or payload key is not echoed back: the error stays short', async () => {
    const name = `x${'y'.repeat(200_000)}`;
    const e = await refusal(a, `2[${JSON.stringify(name)},{}]`);
    assert.equal(e.code, 'unknown_event');
    assert.ok(String(e.details.event).length <= MAX_ECHOED_NAME + 1, `details.event is clipped: ${String(e.details.event).length}`);
    assert.doesNotMatch(e.message, /yyyy/);
    assert.ok(JSON.stringify(e).length < 1000, `the whole error is small: ${JSON.stringify(e).length}`);

    const key = `k${'z'.repeat(200_000)}`;
    const k = await refusal(a, `2["message:send",${JSON.stringify({ content: 'hi', [key]: 1 })}]`);
    assert.equal(k.code, 'validation_failed');
    assert.ok(JSON.stringify(k).length < 2000, `zod's message quoting the key is clipped: ${JSON.stringify(k).length}`);

    // A huge string in a known field is the service's to refuse, with its own limit.
    const big = nextEvent<ErrorPayload>(a, 'error');
    a.emit('message:send', { content: 'w'.repeat(200_000) });
    const tooLarge = await big;
    assert.equal(tooLarge.code, 'payload_too_large');
    assert.ok(JSON.stringify(tooLarge).length < 1000);
  });

  test('a binary packet nested deeper than socket.io can rebuild closes only that connection', async () => {
    const victim = client(alice.token);
    await connected(victim);
    const gone = new Promise<string>((resolve) => victim.once('disconnect', resolve));
    sendRawPacket(victim, `51-["message:send",${'['.repeat(10_000)}{"_placeholder":true,"num":0}${']'.repeat(10_000)}]`);
    victim.io.engine.send(new Uint8Array([1, 2, 3]) as unknown as string);
    assert.equal(await gone, 'transport close');
    assert.ok(a.connected, 'the other socket stays');
    await assertHttpAlive(t);
  });

  test('a handler that throws, rejects or emits something unencodable: an error event without internals, never a crash', async () => {
    const before = logLines.length;
    const chooseErr = nextEvent<ErrorPayload>(a, 'error');
    a.emit('compare:choose', { comparisonId: crypto.randomUUID(), choice: 'A' });
    const e1 = await chooseErr;
    assert.deepEqual([e1.code, e1.details.event, e1.details.status], ['internal', 'compare:choose', 500]);
    assert.doesNotMatch(JSON.stringify(e1), /secret|boom/);

    const sendErr = nextEvent<ErrorPayload>(a, 'error');
    a.emit('message:send', { content: 'bigint please' });
    const e2 = await sendErr;
    assert.deepEqual([e2.code, e2.details.event], ['internal', 'message:send']);
    assert.doesNotMatch(JSON.stringify(e2), /secret|rejected/);
    assert.ok(a.connected);
    const logged = logLines.slice(before).join('');
    assert.match(logged, /a socket emit failed/, 'the unencodable emit is logged');
    assert.match(logged, /unhandled error in a socket handler/);
    await assertHttpAlive(t);
    const { done } = await exchange(a, { content: 'after the failures', sampling: QUICK });
    assert.equal(done.message.status, 'complete');
  });

  test('lone surrogates: the echo and the stored message agree, one U+FFFD each', async () => {
    // JSON.stringify writes a lone surrogate as the escape \ud800, which JSON.parse turns back into one.
    const sent = 'lone \uD800 high, \uDC00 low, pair \uD83D\uDE00 ok, title \uDBFF';
    const { start, done } = await exchange(a, { content: sent, sampling: QUICK });
    const expected = 'lone \uFFFD high, \uFFFD low, pair \uD83D\uDE00 ok, title \uFFFD';
    assert.equal(start.userMessage?.content, expected);
    const stored = conversationDetailSchema.parse((await request(t.app).get(`/api/conversations/${done.conversationId}`).set(alice.auth)).body);
    const user = stored.messages.find((m) => m.role === 'user')!;
    assert.equal(user.content, expected, 'stored as the echo showed it');
    assert.equal(stored.title, start.conversation.title, 'the title too');
    assert.ok(stored.title.isWellFormed());
  });

  test('the JSON walk normalises strings in place and never recurses', () => {
    const payload = { content: 'a\uD800', list: ['\uDC00', { deep: 'ok' }] };
    const r = normaliseJsonPayload(payload);
    assert.ok(r.ok);
    assert.deepEqual(r.value, { content: 'a\uFFFD', list: ['\uFFFD', { deep: 'ok' }] });
    // A hundred thousand levels would overflow any recursive walk; this one refuses at the limit.
    let deep: unknown[] = [];
    const root = deep;
    for (let i = 0; i < 100_000; i++) {
      const next: unknown[] = [];
      deep.push(next);
      deep = next;
    }
    assert.deepEqual(normaliseJsonPayload(root), { ok: false, reason: `the payload is nested deeper than ${MAX_PAYLOAD_DEPTH} levels` });
    assert.equal(normaliseJsonPayload(new Map()).ok, false);
    assert.deepEqual(normaliseJsonPayload('\uD800'), { ok: true, value: '\uFFFD' });
  });
});

describe('credential lifecycle: a socket ends with the credential it was opened with', () => {
  let engine: Engine;
  let modelDir = '';
  let t: RealtimeTestServer;
  let clock = Date.now();
  let longPrompt = '';
  const logLines: string[] = [];
  const sockets: Socket[] = [];
  const trainingEvents = new EventEmitter();
  const client = (token: string) => {
    const s = connectClient(t.url, token);
    sockets.push(s);
    return s;
  };
  const keyFor = async (user: TestUser): Promise<{ id: string; key: string }> => {
    const res = await request(t.app).post('/api/me/api-keys').set(user.auth).send({ name: 'socket' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return { id: res.body.id, key: res.body.key };
  };
  const login = async (username: string, password = PASSWORD): Promise<TestUser> => {
    const res = await request(t.app).post('/api/auth/login').send({ username, password });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return { id: res.body.user.id, username, token: res.body.token, auth: { Authorization: `Bearer ${res.body.token}` } };
  };
  const adminAuth = async () => (await login('admin', ADMIN_PASSWORD)).auth;

  /** Waits until the answer stopped and was stored (or is gone with its account). */
  const settled = async (messageId: string) => {
    const deadline = Date.now() + 10_000;
    while (t.chat.isGenerating(messageId)) {
      assert.ok(Date.now() < deadline, 'the generation stops');
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  before(async () => {
    ({ engine, dir: modelDir } = await loadTestEngine());
    const logger = pino({ level: 'warn' }, new Writable({ write: (chunk, _enc, cb) => (logLines.push(String(chunk)), cb()) }));
    t = await startRealtimeServer(engine, { env: { ATTUNE_ADMIN_PASSWORD: ADMIN_PASSWORD }, now: () => clock, logger, trainingEvents });
    await t.services.auth.bootstrapAdmin();
    longPrompt = await findLongPrompt(engine);
  });
  after(async () => {
    for (const s of sockets) s.disconnect();
    await t.stop();
    await engine.close();
    fs.rmSync(modelDir, { recursive: true, force: true });
  });

  test('revoking an API key ends the sockets opened with it, and only those', async () => {
    const u = await registerUser(t.app, 'kim');
    const [k1, k2] = [await keyFor(u), await keyFor(u)];
    const [viaK1, viaK2, viaSession] = [client(k1.key), client(k2.key), client(u.token)];
    await Promise.all([connected(viaK1), connected(viaK2), connected(viaSession)]);
    const end = ending(viaK1);
    assert.equal((await request(t.app).delete(`/api/me/api-keys/${k1.id}`).set(u.auth)).status, 204);
    const { error, reason } = await end;
    assert.equal(reason, 'io server disconnect');
    assert.equal(error?.code, 'credentials_ended');
    assert.equal(error?.details.reason, 'api_key_revoked');
    assert.ok(viaK2.connected && viaSession.connected, "the user's other credentials keep their sockets");
    await exchange(viaK2, { content: 'key two still works', sampling: QUICK });
    const again = client(k1.key);
    const refused = (await connected(again).then(() => null, (e: unknown) => e)) as { data?: ErrorPayload } | null;
    assert.equal(refused?.data?.code, 'invalid_token');
  });

  test('logout ends the sockets of that session only; a stream on it is kept as partial', async () => {
    const u = await registerUser(t.app, 'lee');
    const other = await login('lee');
    const [s1, s2] = [client(u.token), client(other.token)];
    await Promise.all([connected(s1), connected(s2)]);
    const start = nextEvent<MessageStartEvent>(s1, 'message:start');
    s1.emit('message:send', { content: longPrompt, sampling: { temperature: 0, seed: 1, maxNewTokens: 1000 } });
    const { message } = await start;
    await nextEvent(s1, 'message:delta');
    const end = ending(s1);
    assert.equal((await request(t.app).post('/api/auth/logout').set(u.auth)).status, 204);
    const { error, reason } = await end;
    assert.equal(reason, 'io server disconnect');
    assert.equal(error?.details.reason, 'logout');
    await settled(message.id);
    const stored = t.repos.conversations.findMessage(message.id)!;
    assert.equal(stored.status, 'partial');
    assert.equal(stored.finishReason, 'abort');
    assert.ok(s2.connected, 'the other session keeps its socket');
    await exchange(s2, { content: 'other session', sampling: QUICK });
  });

  test('deleting the account ends all its sockets, mid-stream, without internal errors or FOREIGN KEY failures', async () => {
    const u = await registerUser(t.app, 'max');
    const key = await keyFor(u);
    const [viaSession, viaKey] = [client(u.token), client(key.key)];
    await Promise.all([connected(viaSession), connected(viaKey)]);
    const internal: ErrorPayload[] = [];
    for (const s of [viaSession, viaKey]) s.on('error', (e: ErrorPayload) => e.code === 'internal' && internal.push(e));
    const start = nextEvent<MessageStartEvent>(viaKey, 'message:start');
    viaKey.emit('message:send', { content: longPrompt, sampling: { temperature: 0, seed: 1, maxNewTokens: 1000 } });
    const { message } = await start;
    await nextEvent(viaKey, 'message:delta');
    const logsBefore = logLines.length;
    const ends = [ending(viaSession), ending(viaKey)];
    assert.equal((await request(t.app).delete('/api/me').set(u.auth).send({ password: PASSWORD })).status, 204);
    for (const { error, reason } of await Promise.all(ends)) {
      assert.equal(reason, 'io server disconnect');
      assert.equal(error?.details.reason, 'account_deleted');
    }
    await settled(message.id);
    assert.deepEqual(internal, []);
    assert.equal(t.repos.users.findById(u.id), undefined);
    assert.deepEqual(logLines.slice(logsBefore).filter((l) => /FOREIGN KEY|"level":50/.test(l)), []);
  });

  test('disabling the account ends all its sockets (the same mechanism)', async () => {
    const u = await registerUser(t.app, 'ned');
    const key = await keyFor(u);
    const [viaSession, viaKey] = [client(u.token), client(key.key)];
    await Promise.all([connected(viaSession), connected(viaKey)]);
    const ends = [ending(viaSession), ending(viaKey)];
    assert.equal((await request(t.app).patch(`/api/admin/users/${u.id}`).set(await adminAuth()).send({ disabled: true })).status, 200);
    for (const { error } of await Promise.all(ends)) {
      assert.equal(error?.details.reason, 'account_disabled');
      assert.equal(error?.details.status, 403);
    }
  });

  test('defence in depth: a credential that dies unannounced (row deleted, session expired) is refused at the next event', async () => {
    const u = await registerUser(t.app, 'ora');
    const s = client(u.token);
    await connected(s);
    // The session row goes without a notice (as if the notice were lost).
    const principal = t.services.auth.authenticate(u.token);
    assert.equal(principal.via, 'session');
    if (principal.via === 'session') t.repos.sessions.delete(principal.sessionTokenHash);
    const end = ending(s);
    s.emit('message:send', { content: 'am I still here?', sampling: QUICK });
    const { error, reason } = await end;
    assert.equal(reason, 'io server disconnect');
    assert.equal(error?.details.reason, 'invalid_token');
    assert.equal(t.repos.conversations.listForUser(u.id, 10).length, 0, 'the event was not handled');

    // Sessions expire on their own; the socket opened with one ends at its first event after that.
    const v = await registerUser(t.app, 'pia');
    const sv = client(v.token);
    await connected(sv);
    await exchange(sv, { content: 'before expiry', sampling: QUICK });
    clock += (t.config.sessionTtlHours + 1) * 3600_000;
    try {
      const endV = ending(sv);
      sv.emit('message:send', { content: 'after expiry', sampling: QUICK });
      assert.equal((await endV).error?.details.reason, 'invalid_token');
      assert.equal(t.repos.conversations.listForUser(v.id, 10).length, 1);
    } finally {
      clock = Date.now();
    }
  });

  test('a credential check that fails for another reason (the database) refuses the event and keeps the socket', async () => {
    let failing = false;
    const flaky = await startRealtimeServer(engine, {
      wrapServices: (s) => ({
        ...s,
        auth: {
          ...s.auth,
          revalidate: (p) => {
            if (failing) throw new ServiceUnavailable('the database cannot be read', 'storage_unavailable');
            return s.auth.revalidate(p);
          },
        },
      }),
    });
    try {
      const u = await registerUser(flaky.app, 'quin');
      const s = connectClient(flaky.url, u.token);
      sockets.push(s);
      await connected(s);
      failing = true;
      const err = nextEvent<ErrorPayload>(s, 'error');
      s.emit('message:send', { content: 'now?', sampling: QUICK });
      assert.deepEqual([(await err).code, (await err).details.event], ['storage_unavailable', 'message:send']);
      failing = false;
      assert.ok(s.connected);
      await exchange(s, { content: 'and now', sampling: QUICK });
      s.disconnect();
    } finally {
      await flaky.stop();
    }
  });

  test("a role change moves the user's open sockets out of (and into) the admin room at once", async () => {
    const admin = await login('admin', ADMIN_PASSWORD);
    const ivy = await registerUser(t.app, 'ivy');
    const [adminSocket, ivySocket] = [client(admin.token), client(ivy.token)];
    await Promise.all([connected(adminSocket), connected(ivySocket)]);
    const ivyGot: string[] = [];
    ivySocket.on('training:job', () => ivyGot.push('training:job'));
    ivySocket.on('training:progress', () => ivyGot.push('training:progress'));
    const job = (id: string) => ({ id, status: 'running', trigger: 'admin', scope: null, createdAt: 1, startedAt: 1, finishedAt: null, error: null, progress: null, versionId: null });

    /** Emits a job and a progress step; waits until the admin socket got them, then a round trip on Ivy's. */
    const broadcast = async (id: string) => {
      const adminJob = nextEvent<{ job: { id: string } }>(adminSocket, 'training:job', (e) => e.job.id === id);
      const adminProgress = nextEvent<{ jobId: string }>(adminSocket, 'training:progress', (e) => e.jobId === id);
      trainingEvents.emit('job', job(id));
      trainingEvents.emit('progress', { jobId: id, step: 1, loss: 0.5 });
      await Promise.all([adminJob, adminProgress]);
      // Anything emitted to Ivy before this answer arrives on her connection before it.
      const answer = nextEvent<ErrorPayload>(ivySocket, 'error');
      ivySocket.emit('ping:me', {});
      assert.equal((await answer).code, 'unknown_event');
    };

    await broadcast('job-1');
    assert.deepEqual(ivyGot, [], 'a user gets no admin events');

    const promote = await request(t.app).patch(`/api/admin/users/${ivy.id}`).set(admin.auth).send({ role: 'admin' });
    assert.equal(promote.status, 200);
    await broadcast('job-2');
    assert.deepEqual(ivyGot, ['training:job', 'training:progress'], 'promoted: her open socket joins the admin room');

    ivyGot.length = 0;
    const demote = await request(t.app).patch(`/api/admin/users/${ivy.id}`).set(admin.auth).send({ role: 'user' });
    assert.equal(demote.status, 200);
    await broadcast('job-3');
    assert.deepEqual(ivyGot, [], 'demoted: her open socket left the admin room at once');
    assert.ok(ivySocket.connected, 'a role change does not end the socket');

    // A role changed without a notice (straight in the database) is caught at her next event.
    t.repos.users.setRole(ivy.id, 'admin');
    const answer = nextEvent<ErrorPayload>(ivySocket, 'error');
    ivySocket.emit('ping:me', {});
    await answer;
    await broadcast('job-4');
    assert.deepEqual(ivyGot, ['training:job', 'training:progress']);
    t.repos.users.setRole(ivy.id, 'user');
  });

  test('a failing training listener payload never reaches the emitter', () => {
    assert.doesNotThrow(() => trainingEvents.emit('job', null));
    assert.doesNotThrow(() => trainingEvents.emit('progress', { jobId: 'x', n: 1n }));
  });

  test('which held credentials an ended credential covers (password change: every session but the current)', () => {
    const session = (hash: string): HeldCredential => ({ user: { id: 'u1' }, via: 'session', sessionTokenHash: hash });
    const key = (id: string): HeldCredential => ({ user: { id: 'u1' }, via: 'api_key', apiKeyId: id });
    const held = [session('s1'), session('s2'), key('k1'), { ...session('s1'), user: { id: 'u2' } }];
    const covers = (e: Omit<CredentialsEnded, 'userId'>) => held.map((h) => credentialEnds({ userId: 'u1', ...e }, h));
    assert.deepEqual(covers({ reason: 'logout', scope: { kind: 'session', sessionTokenHash: 's1' } }), [true, false, false, false]);
    assert.deepEqual(covers({ reason: 'api_key_revoked', scope: { kind: 'api_key', apiKeyId: 'k1' } }), [false, false, true, false]);
    assert.deepEqual(covers({ reason: 'password_changed', scope: { kind: 'sessions', exceptSessionTokenHash: 's2' } }), [true, false, false, false]);
    assert.deepEqual(covers({ reason: 'account_deleted', scope: { kind: 'all' } }), [true, true, true, false]);
  });
});
