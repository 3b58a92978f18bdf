// Changing the password (POST /api/me/password) over the real app: the current password is proved
// (and counted by the per-account throttle, like a sign-in), the new one passes the registration
// policy, and the change signs out every other session, over HTTP at once and over socket.io by the
// credential-ended notice, while the session that made it and the user's API keys keep working.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import request from 'supertest';
import type { Socket } from 'socket.io-client';
import type { Engine } from '../../server/lm/engine.ts';
import type { ErrorPayload, MessageDoneEvent } from '../../server/realtime/events.ts';
import { FREE_FAILURES } from '../../server/services/login-throttle.ts';
import { assertError, createTestServer, registerUser, type TestServer, type TestUser, viaCookie } from '../helpers/api-server.ts';
import { connectClient, connected, ending, loadTestEngine, nextEvent, type RealtimeTestServer, startRealtimeServer } from '../helpers/realtime-server.ts';

const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'plum tractor orbit saddle';

interface Account {
  user: TestUser;
  /** Sessions of the same user opened by signing in again (other devices). */
  others: string[];
  apiKey: string;
}

describe('POST /api/me/password', () => {
  let clock = Date.now();
  let t: TestServer;
  before(() => {
    t = createTestServer({ now: () => clock });
  });
  after(() => t.close());

  const login = (username: string, password: string) => request(t.app).post('/api/auth/login').send({ username, password });
  const change = (headers: Record<string, string>, body: unknown) => request(t.app).post('/api/me/password').set(headers).send(body as object);
  const me = (token: string) => request(t.app).get('/api/me').set('Authorization', `Bearer ${token}`);
  const passwordHash = (userId: string) => t.repos.users.findById(userId)!.passwordHash;
  const sessionCount = (userId: string) => t.db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM sessions WHERE user_id = ?').get(userId)!.n;

  async function account(name: string): Promise<Account> {
    const user = await registerUser(t.app, name, PASSWORD);
    const others: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await login(name, PASSWORD);
      assert.equal(res.status, 200);
      others.push(res.body.token);
    }
    const key = await request(t.app).post('/api/me/api-keys').set(user.auth).send({ name: 'script' });
    assert.equal(key.status, 201);
    return { user, others, apiKey: key.body.key };
  }

  test('from the web client (cookie + Origin): 204; the old password is dead, the new one signs in, other sessions are signed out', async () => {
    const { user, others, apiKey } = await account('pat');
    const res = await change(viaCookie(user.token), { currentPassword: PASSWORD, newPassword: NEW_PASSWORD });
    assert.equal(res.status, 204, JSON.stringify(res.body));
    assert.equal(res.text, '');

    assertError(await login('pat', PASSWORD), 401, 'invalid_credentials');
    assert.equal((await login('pat', NEW_PASSWORD)).status, 200);
    for (const token of others) assertError(await me(token), 401, 'invalid_token');
    assert.equal((await me(user.token)).status, 200, 'the session that changed it stays signed in');
    assert.equal((await request(t.app).get('/api/me').set(viaCookie(user.token))).status, 200);
    // API keys are separate credentials, revoked one by one by their owner.
    assert.equal((await me(apiKey)).status, 200, 'API keys keep working');
    // The current session plus the sign-in just made with the new password.
    assert.equal(sessionCount(user.id), 2);
  });

  test('a weak new password → 400 weak_password naming newPassword, and nothing changes', async () => {
    const { user, others } = await account('quinn');
    const hash = passwordHash(user.id);
    for (const weak of ['password', '12345678', 'aaaaaaaa', 'quinn123', 'attune2024']) {
      const error = assertError(await change(user.auth, { currentPassword: PASSWORD, newPassword: weak }), 400, 'weak_password');
      assert.deepEqual((error.details.issues as Array<{ path: string }>).map((i) => i.path), ['newPassword'], weak);
    }
    assertError(await change(user.auth, { currentPassword: PASSWORD, newPassword: 'short' }), 400, 'validation_failed');
    assert.equal(passwordHash(user.id), hash);
    assert.equal(sessionCount(user.id), 3);
    for (const token of [user.token, ...others]) assert.equal((await me(token)).status, 200);
    assert.equal((await login('quinn', PASSWORD)).status, 200);
  });

  test('a wrong current password → 403 wrong_password, and nothing changes', async () => {
    const { user, others } = await account('remy');
    const hash = passwordHash(user.id);
    assertError(await change(user.auth, { currentPassword: 'not the password', newPassword: NEW_PASSWORD }), 403, 'wrong_password');
    assert.equal(passwordHash(user.id), hash);
    for (const token of others) assert.equal((await me(token)).status, 200);
    assertError(await login('remy', NEW_PASSWORD), 401, 'invalid_credentials');
  });

  test('wrong current passwords count against the per-account sign-in throttle, both ways', async () => {
    const { user } = await account('sam');
    for (let i = 0; i < FREE_FAILURES; i++) {
      assertError(await change(user.auth, { currentPassword: `wrong guess ${i}`, newPassword: NEW_PASSWORD }), 403, 'wrong_password');
    }
    // Even the right password now waits: the guesses above locked the account's budget for a moment…
    const throttled = assertError(await change(user.auth, { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }), 429, 'login_throttled');
    assert.equal(throttled.details.retryAfterSeconds, 1);
    // …for sign-ins too: it is one budget per account.
    assertError(await login('sam', PASSWORD), 429, 'login_throttled');
    clock += 1000;
    assert.equal((await change(user.auth, { currentPassword: PASSWORD, newPassword: NEW_PASSWORD })).status, 204);
    // The right password reset the count.
    assertError(await change(user.auth, { currentPassword: 'wrong again', newPassword: PASSWORD }), 403, 'wrong_password');
  });

  test('API keys, anonymous callers, foreign origins and malformed bodies are refused', async () => {
    const { user, apiKey } = await account('tess');
    const hash = passwordHash(user.id);
    const body = { currentPassword: PASSWORD, newPassword: NEW_PASSWORD };
    assertError(await change({ Authorization: `Bearer ${apiKey}` }, body), 403, 'session_required');
    assertError(await change({}, body), 401);
    assertError(await change({ ...viaCookie(user.token), Origin: 'http://attune.test:8081' }, body), 403, 'csrf_origin_mismatch');
    assertError(await change(user.auth, { ...body, extra: true }), 400, 'validation_failed');
    assertError(await change(user.auth, { newPassword: NEW_PASSWORD }), 400, 'validation_failed');
    assertError(await change(user.auth, { currentPassword: '', newPassword: NEW_PASSWORD }), 400, 'validation_failed');
    assertError(await change(user.auth, { currentPassword: PASSWORD, newPassword: 'x'.repeat(257) }), 400, 'validation_failed');
    assert.equal(passwordHash(user.id), hash);
  });

  test('two changes racing from two sessions: one wins, the other is 409 and does not overwrite it', async () => {
    const { user, others } = await account('uma');
    const [pA, pB] = [t.services.auth.authenticate(user.token), t.services.auth.authenticate(others[0]!)];
    const results = await Promise.allSettled([
      t.services.auth.changePassword(pA, { currentPassword: PASSWORD, newPassword: 'first winner password' }),
      t.services.auth.changePassword(pB, { currentPassword: PASSWORD, newPassword: 'second racer password' }),
    ]);
    const codes = results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { code?: string }).code));
    assert.deepEqual([...codes].sort(), ['ok', 'password_changed_meanwhile']);
    const winner = codes[0] === 'ok' ? 'first winner password' : 'second racer password';
    const loser = codes[0] === 'ok' ? 'second racer password' : 'first winner password';
    assert.equal((await login('uma', winner)).status, 200);
    assertError(await login('uma', loser), 401, 'invalid_credentials');
  });

  test('documented in the OpenAPI document: session auth, a strict body, 204', async () => {
    const doc = (await request(t.app).get('/api/openapi.json')).body;
    const op = doc.paths['/api/me/password']?.post;
    assert.equal(op?.operationId, 'changePassword');
    assert.ok(op.responses['204'] && op.responses['403'] && op.responses['429']);
    const schema = doc.components.schemas.ChangePassword;
    assert.deepEqual([...schema.required].sort(), ['currentPassword', 'newPassword']);
    assert.equal(schema.additionalProperties, false);
  });
});

describe('POST /api/me/password over live sockets', () => {
  let engine: Engine;
  let modelDir = '';
  let t: RealtimeTestServer;
  const sockets: Socket[] = [];
  const client = (token: string) => {
    const s = connectClient(t.url, token);
    sockets.push(s);
    return s;
  };
  before(async () => {
    ({ engine, dir: modelDir } = await loadTestEngine());
    t = await startRealtimeServer(engine);
  });
  after(async () => {
    for (const s of sockets) s.disconnect();
    await t.stop();
    await engine.close();
    fs.rmSync(modelDir, { recursive: true, force: true });
  });


  test("the other session's socket is ended with credentials_ended; the current session's and the API key's stay and chat", async () => {
    const user = await registerUser(t.app, 'vic', PASSWORD);
    const other = await request(t.app).post('/api/auth/login').send({ username: 'vic', password: PASSWORD });
    const key = await request(t.app).post('/api/me/api-keys').set(user.auth).send({ name: 'bot' });
    const [current, elsewhere, viaKey] = [client(user.token), client(other.body.token), client(key.body.key)];
    await Promise.all([connected(current), connected(elsewhere), connected(viaKey)]);

    const end = ending(elsewhere);
    const res = await request(t.app).post('/api/me/password').set(user.auth).send({ currentPassword: PASSWORD, newPassword: NEW_PASSWORD });
    assert.equal(res.status, 204, JSON.stringify(res.body));
    const { error, reason } = await end;
    assert.equal(error?.code, 'credentials_ended');
    assert.equal(error?.details.reason, 'password_changed');
    assert.equal(reason, 'io server disconnect');

    assert.ok(current.connected && viaKey.connected);
    for (const s of [current, viaKey]) {
      const done = nextEvent<MessageDoneEvent>(s, 'message:done');
      s.emit('message:send', { content: 'still here?', sampling: { maxNewTokens: 3, seed: 1 } });
      assert.equal((await done).message.role, 'assistant');
    }
    const again = connectClient(t.url, other.body.token);
    sockets.push(again);
    const refused = (await connected(again).then(() => null, (e: unknown) => e)) as { data?: ErrorPayload } | null;
    assert.equal(refused?.data?.code, 'invalid_token');
  });
});
