// Accounts over HTTP: registration, sign-in, sessions (bearer and cookie), sign-out, API keys,
// validation, rate limits, body limits and the error shape.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import request from 'supertest';
import { createUserRateLimiter } from '../../server/http/middleware/rate-limit.ts';
import { errorHandler } from '../../server/http/middleware/errors.ts';
import { apiKeySchema, authResultSchema, createdApiKeySchema, userSchema } from '../../server/http/schemas.ts';
import type { Services } from '../../server/services/index.ts';
import { assertError, createTestServer, registerUser, tableCounts, uniqueName, type TestServer } from '../helpers/api-server.ts';

describe('registration and sign-in', () => {
  let t: TestServer;
  before(() => {
    t = createTestServer();
  });
  after(() => t.close());

  test('register → 201 with a token, a user and the session cookie; the token and the cookie both sign in', async () => {
    const username = uniqueName('reg');
    const res = await request(t.app).post('/api/auth/register').send({ username, password: 'a long password' });
    assert.equal(res.status, 201);
    const body = authResultSchema.parse(res.body);
    assert.equal(body.user.username, username);
    assert.equal(body.user.role, 'user');
    assert.ok(typeof res.headers['x-request-id'] === 'string' && res.headers['x-request-id'].length > 0);
    const cookie = String(res.headers['set-cookie']);
    assert.match(cookie, new RegExp(`attune_session=${body.token};`));
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);

    const viaBearer = await request(t.app).get('/api/me').set('Authorization', `Bearer ${body.token}`);
    assert.equal(viaBearer.status, 200);
    assert.deepEqual(userSchema.parse(viaBearer.body), body.user);
    const viaCookie = await request(t.app).get('/api/me').set('Cookie', `attune_session=${body.token}`);
    assert.equal(viaCookie.status, 200);
    assert.equal(viaCookie.body.id, body.user.id);

    // Only the hash of the token is stored.
    const stored = t.db.prepare('SELECT token_hash FROM sessions WHERE user_id = ?').all(body.user.id) as { token_hash: string }[];
    assert.equal(stored.length, 1);
    assert.notEqual(stored[0]!.token_hash, body.token);
    assert.match(stored[0]!.token_hash, /^[0-9a-f]{64}$/);
    const hash = t.db.prepare('SELECT password_hash FROM users WHERE id = ?').get(body.user.id) as { password_hash: string };
    assert.match(hash.password_hash, /^\$argon2id\$/);
  });

  test('login with the right password → a new session; wrong password or unknown user → 401 alike', async () => {
    const u = await registerUser(t.app, uniqueName('login'), 'right password');
    const ok = await request(t.app).post('/api/auth/login').send({ username: u.username, password: 'right password' });
    assert.equal(ok.status, 200);
    authResultSchema.parse(ok.body);
    assert.notEqual(ok.body.token, u.token);
    assert.equal(ok.body.user.id, u.id);

    const wrong = await request(t.app).post('/api/auth/login').send({ username: u.username, password: 'wrong password' });
    const unknown = await request(t.app).post('/api/auth/login').send({ username: uniqueName('nobody'), password: 'wrong password' });
    assert.equal(assertError(wrong, 401, 'invalid_credentials').message, assertError(unknown, 401, 'invalid_credentials').message);
    assert.equal(wrong.headers['set-cookie'], undefined);
  });

  test('usernames are unique regardless of case → 409, and nothing is written', async () => {
    const u = await registerUser(t.app, uniqueName('Dup'));
    const before = tableCounts(t.db);
    const res = await request(t.app).post('/api/auth/register').send({ username: u.username.toLowerCase(), password: 'another password' });
    assertError(res, 409, 'username_taken');
    assert.deepEqual(tableCounts(t.db), before);
  });

  test('bad bodies → 400 naming each field, and nothing is written', async () => {
    const before = tableCounts(t.db);
    const cases: Array<{ send: unknown; paths: string[] }> = [
      { send: {}, paths: ['username', 'password'] },
      { send: { username: 'ab', password: 'long enough' }, paths: ['username'] },
      { send: { username: 'has space', password: 'long enough' }, paths: ['username'] },
      { send: { username: uniqueName('short'), password: 'short' }, paths: ['password'] },
      { send: { username: uniqueName('long'), password: 'x'.repeat(257) }, paths: ['password'] },
      { send: { username: uniqueName('extra'), password: 'long enough', role: 'admin' }, paths: [''] },
      { send: { username: 42, password: ['x'] }, paths: ['username', 'password'] },
    ];
    for (const c of cases) {
      const res = await request(t.app).post('/api/auth/register').send(c.send as object);
      const err = assertError(res, 400, 'validation_failed');
      const issues = err.details.issues as Array<{ in: string; path: string; message: string }>;
      assert.deepEqual([...new Set(issues.map((i) => i.path))].sort(), [...c.paths].sort(), JSON.stringify(issues));
      assert.ok(issues.every((i) => i.in === 'body' && i.message.length > 0));
    }
    assertError(await request(t.app).post('/api/auth/register').set('Content-Type', 'application/json').send('{"username": '), 400, 'invalid_json');
    assertError(await request(t.app).post('/api/auth/register').send('username=a&password=b'), 400, 'validation_failed');
    assertError(await request(t.app).post('/api/auth/login').send({ username: 'x' }), 400, 'validation_failed');
    assert.deepEqual(tableCounts(t.db), before);
  });

  test('missing, malformed, unknown and signed-out credentials → 401', async () => {
    assertError(await request(t.app).get('/api/me'), 401, 'unauthorized');
    assertError(await request(t.app).get('/api/me').set('Authorization', 'Basic dXNlcjpwYXNz'), 401, 'invalid_authorization_header');
    assertError(await request(t.app).get('/api/me').set('Authorization', 'Bearer not-a-token'), 401, 'invalid_token');
    assertError(await request(t.app).get('/api/me').set('Authorization', 'Bearer atn_notakey'), 401, 'invalid_token');
    assertError(await request(t.app).get('/api/me').set('Cookie', 'attune_session=forged'), 401, 'invalid_token');

    const u = await registerUser(t.app);
    const out = await request(t.app).post('/api/auth/logout').set(u.auth);
    assert.equal(out.status, 204);
    assert.match(String(out.headers['set-cookie']), /attune_session=;/);
    assertError(await request(t.app).get('/api/me').set(u.auth), 401, 'invalid_token');
    assertError(await request(t.app).post('/api/auth/logout').set(u.auth), 401);
  });

  test('a disabled account cannot sign in or use its sessions → 403', async () => {
    const u = await registerUser(t.app, uniqueName('dis'), 'the password');
    t.repos.users.setDisabled(u.id, true);
    assertError(await request(t.app).get('/api/me').set(u.auth), 403, 'account_disabled');
    assertError(await request(t.app).post('/api/auth/login').send({ username: u.username, password: 'the password' }), 403, 'account_disabled');
  });

  test('unknown routes → 404 in the error shape; request ids are echoed when sane', async () => {
    assertError(await request(t.app).get('/api/nope'), 404, 'route_not_found');
    const res = await request(t.app).get('/healthz').set('X-Request-Id', 'client-req-1');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'ok' });
    assert.equal(res.headers['x-request-id'], 'client-req-1');
    const bad = await request(t.app).get('/healthz').set('X-Request-Id', 'has spaces and <tags>');
    assert.notEqual(bad.headers['x-request-id'], 'has spaces and <tags>');
  });
});

describe('sessions expire', () => {
  let clock = Date.parse('2030-01-01T00:00:00Z');
  let t: TestServer;
  before(() => {
    t = createTestServer({ env: { ATTUNE_SESSION_TTL_HOURS: '1' }, now: () => clock });
  });
  after(() => t.close());

  test('a session is valid until its TTL passes, then 401', async () => {
    const u = await registerUser(t.app);
    clock += 59 * 60_000;
    assert.equal((await request(t.app).get('/api/me').set(u.auth)).status, 200);
    clock += 2 * 60_000;
    assertError(await request(t.app).get('/api/me').set(u.auth), 401, 'invalid_token');
  });
});

describe('API keys', () => {
  let t: TestServer;
  before(() => {
    t = createTestServer();
  });
  after(() => t.close());

  test('create (shown once) → use as bearer → list without the key → revoke → 401', async () => {
    const u = await registerUser(t.app);
    const created = await request(t.app).post('/api/me/api-keys').set(u.auth).send({ name: 'laptop script' });
    assert.equal(created.status, 201);
    const key = createdApiKeySchema.parse(created.body);
    assert.match(key.key, /^atn_[A-Za-z0-9_-]{43}$/);
    assert.ok(key.key.startsWith(key.prefix) && key.prefix.length === 12);
    assert.equal(key.name, 'laptop script');
    const stored = t.db.prepare('SELECT key_hash FROM api_keys WHERE id = ?').get(key.id) as { key_hash: string };
    assert.notEqual(stored.key_hash, key.key);

    const keyAuth = { Authorization: `Bearer ${key.key}` };
    const me = await request(t.app).get('/api/me').set(keyAuth);
    assert.equal(me.status, 200);
    assert.equal(me.body.id, u.id);
    assert.equal((await request(t.app).post('/api/conversations').set(keyAuth).send({ title: 'by key' })).status, 201);

    const list = await request(t.app).get('/api/me/api-keys').set(u.auth);
    assert.equal(list.status, 200);
    assert.equal(list.body.items.length, 1);
    const listed = apiKeySchema.parse(list.body.items[0]);
    assert.deepEqual(listed, { id: key.id, prefix: key.prefix, name: 'laptop script', createdAt: key.createdAt, revokedAt: null });
    assert.ok(!JSON.stringify(list.body).includes(key.key));

    assert.equal((await request(t.app).delete(`/api/me/api-keys/${key.id}`).set(u.auth)).status, 204);
    assertError(await request(t.app).get('/api/me').set(keyAuth), 401, 'invalid_token');
    const afterRevoke = await request(t.app).get('/api/me/api-keys').set(u.auth);
    assert.notEqual(afterRevoke.body.items[0].revokedAt, null);
    // Revoking again is harmless.
    assert.equal((await request(t.app).delete(`/api/me/api-keys/${key.id}`).set(u.auth)).status, 204);
  });

  test("an unnamed key gets a default name; API keys cannot manage keys or the account; another user's key is 404", async () => {
    const u = await registerUser(t.app);
    const other = await registerUser(t.app);
    const created = await request(t.app).post('/api/me/api-keys').set(u.auth).send({});
    assert.equal(created.status, 201);
    assert.equal(created.body.name, 'API key');
    const keyAuth = { Authorization: `Bearer ${created.body.key}` };
    assertError(await request(t.app).post('/api/me/api-keys').set(keyAuth).send({ name: 'x' }), 403, 'session_required');
    assertError(await request(t.app).get('/api/me/api-keys').set(keyAuth), 403, 'session_required');
    assertError(await request(t.app).delete(`/api/me/api-keys/${created.body.id}`).set(keyAuth), 403, 'session_required');
    assertError(await request(t.app).delete('/api/me').set(keyAuth).send({ password: 'correct horse battery' }), 403, 'session_required');

    assertError(await request(t.app).delete(`/api/me/api-keys/${created.body.id}`).set(other.auth), 404);
    assert.equal((await request(t.app).get('/api/me').set(keyAuth)).status, 200, 'the key survives the attempt');
    assertError(await request(t.app).delete('/api/me/api-keys/not-a-uuid').set(u.auth), 400, 'validation_failed');
  });
});

describe('limits', () => {
  test('login and registration are rate limited per IP → 429 with Retry-After, in the error shape', async () => {
    const t = createTestServer({ env: { ATTUNE_AUTH_RATE_LIMIT: '3', ATTUNE_AUTH_RATE_WINDOW_SECONDS: '60' } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await request(t.app).post('/api/auth/login').send({ username: 'nobody', password: 'wrong password' })).status);
      assert.deepEqual(statuses, [401, 401, 401]);
      const limited = await request(t.app).post('/api/auth/login').send({ username: 'nobody', password: 'wrong password' });
      const err = assertError(limited, 429, 'rate_limited');
      assert.ok(Number(limited.headers['retry-after']) > 0);
      assert.equal(err.details.limit, 3);
      assertError(await request(t.app).post('/api/auth/register').send({ username: uniqueName(), password: 'long enough' }), 429, 'rate_limited');
      // Other routes are not limited by it.
      assert.equal((await request(t.app).get('/healthz')).status, 200);
    } finally {
      t.close();
    }
  });

  test('the per-user limiter counts each user separately', async () => {
    const app = express();
    app.use((req, res, next) => {
      res.locals.principal = { user: { id: String(req.headers['x-user']), username: 'u', role: 'user', disabled: false, createdAt: 0 }, via: 'session', sessionTokenHash: 'h' };
      next();
    });
    app.get('/chat', createUserRateLimiter({ max: 2, windowMs: 60_000, what: 'chat messages' }), (_req, res) => void res.json({ ok: true }));
    app.use(errorHandler);
    const status = async (user: string) => (await request(app).get('/chat').set('x-user', user)).status;
    assert.deepEqual([await status('a'), await status('a'), await status('b'), await status('a'), await status('b')], [200, 200, 200, 429, 200]);
    assertError(await request(app).get('/chat').set('x-user', 'a'), 429, 'rate_limited');
  });

  test('a body over ATTUNE_MAX_BODY_BYTES → 413 in the error shape, and nothing is written', async () => {
    const t = createTestServer({ env: { ATTUNE_MAX_BODY_BYTES: '2048' } });
    try {
      const before = tableCounts(t.db);
      const res = await request(t.app).post('/api/auth/register').send({ username: uniqueName(), password: 'x'.repeat(4000) });
      const err = assertError(res, 413, 'payload_too_large');
      assert.equal(err.details.limitBytes, 2048);
      assert.deepEqual(tableCounts(t.db), before);
    } finally {
      t.close();
    }
  });

  test('an unexpected error → 500 with a request id and without its message or stack', async () => {
    const t = createTestServer({
      wrapServices: (s): Services => ({
        ...s,
        conversations: {
          ...s.conversations,
          list: () => {
            throw new Error('secret internal detail at /srv/db.ts:12');
          },
        },
      }),
    });
    try {
      const u = await registerUser(t.app);
      const res = await request(t.app).get('/api/conversations').set(u.auth);
      const err = assertError(res, 500, 'internal');
      assert.ok(!JSON.stringify(res.body).includes('secret'));
      assert.equal(err.details.requestId, res.headers['x-request-id']);
    } finally {
      t.close();
    }
  });
});
