// Passwords and sign-in against guessing: the NIST SP 800-63B policy for new passwords (length and a
// maintained blocklist, repetitive/sequential/context words refused) and the per-account sign-in
// throttle with exponential backoff, independent of the client's IP. The clock is injected, so the
// backoff is tested without sleeping.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { hash as argon2Hash } from '@node-rs/argon2';
import request from 'supertest';
import { ConfigError } from '../../server/config.ts';
import { createLoginThrottle, MAX_DELAY_MS } from '../../server/services/login-throttle.ts';
import { assertError, createTestServer, registerUser, tableCounts, uniqueName } from '../helpers/api-server.ts';

const GOOD = 'correct horse battery';

describe('new passwords (NIST SP 800-63B)', () => {
  test('common, breached, repetitive, sequential and context-specific passwords are refused at registration with a 400 naming the rule', async () => {
    const t = createTestServer();
    try {
      const before = tableCounts(t.db);
      const username = uniqueName('pw');
      const cases: Array<[string, string]> = [
        ['password', 'common_password'],
        ['12345678', 'common_password'],
        ['PassWord', 'common_password'],
        ['iloveyou2', 'common_password'],
        ['aaaaaaaa', 'guessable'],
        ['abababababab', 'guessable'],
        ['abcdefghij', 'guessable'],
        ['98765432', 'guessable'],
        ['zxcvbnm,./', 'guessable'],
        // At least 8 characters whatever the username (it is shorter when the PID is small).
        [`${username}1234`, 'guessable'],
        ['attune2024', 'guessable'],
        ['a'.repeat(200), 'guessable'],
      ];
      for (const [password, rule] of cases) {
        const res = await request(t.app).post('/api/auth/register').send({ username, password });
        const err = assertError(res, 400, 'weak_password');
        assert.equal(err.details.rule, rule, password);
        assert.match(err.message, rule === 'common_password' ? /list of common and breached passwords/ : /too easy to guess: it (repeats|is built on a sequence|is built on a walk|is built from your username)/, password);
        assert.deepEqual((err.details.issues as Array<{ path: string }>).map((i) => i.path), ['password']);
      }
      // Length stays the zod rule: 8 to 256 characters, nothing about composition.
      assertError(await request(t.app).post('/api/auth/register').send({ username, password: 'Ab1!xyz' }), 400, 'validation_failed');
      assert.deepEqual(tableCounts(t.db), before, 'nothing was written');

      // Long, plain passphrases pass: no digits, capitals or symbols needed.
      for (const password of [GOOD, 'mango tree by the river', 'x7#kpq2m']) {
        assert.equal((await request(t.app).post('/api/auth/register').send({ username: uniqueName('ok'), password })).status, 201, password);
      }
    } finally {
      t.close();
    }
  });

  test('sign-in is not subject to the policy: an existing account with a now-refused password still signs in', async () => {
    const t = createTestServer();
    try {
      const username = uniqueName('old');
      t.repos.users.insert({ id: randomUUID(), username, passwordHash: await argon2Hash('password'), role: 'user', disabled: false, createdAt: Date.now() });
      const res = await request(t.app).post('/api/auth/login').send({ username, password: 'password' });
      assert.equal(res.status, 200);
    } finally {
      t.close();
    }
  });

  test('a weak ATTUNE_ADMIN_PASSWORD is refused at start-up (bootstrap), naming the setting; no admin is created', async () => {
    for (const weak of ['password', 'adminadmin', '11111111']) {
      const t = createTestServer({ env: { ATTUNE_ADMIN_PASSWORD: weak } });
      try {
        await assert.rejects(t.services.auth.bootstrapAdmin(), (e: unknown) => {
          assert.ok(e instanceof ConfigError);
          assert.match(e.message, /ATTUNE_ADMIN_PASSWORD is refused: this password is/);
          assert.equal(e.issues[0]?.setting, 'ATTUNE_ADMIN_PASSWORD');
          return true;
        });
        assert.equal(tableCounts(t.db).users, 0);
      } finally {
        t.close();
      }
    }
    const ok = createTestServer({ env: { ATTUNE_ADMIN_PASSWORD: 'admin password 1' } });
    try {
      assert.deepEqual(await ok.services.auth.bootstrapAdmin(), { created: true, username: 'admin', generatedPassword: null });
    } finally {
      ok.close();
    }
  });
});

describe('per-account sign-in throttle', () => {
  test('after 5 failures each attempt waits 1 s, 2 s, 4 s … (429 + Retry-After, the password unchecked); success resets', async () => {
    let clock = Date.now();
    const t = createTestServer({ now: () => clock });
    try {
      const u = await registerUser(t.app, uniqueName('victim'), GOOD);
      const login = (password: string, username = u.username) => request(t.app).post('/api/auth/login').send({ username, password });
      for (let i = 0; i < 5; i++) assertError(await login('wrong guess'), 401, 'invalid_credentials');

      const refused = await login(GOOD);
      const err = assertError(refused, 429, 'login_throttled');
      assert.equal(refused.headers['retry-after'], '1');
      assert.equal(err.details.retryAfterSeconds, 1);
      assert.equal(refused.headers['set-cookie'], undefined, 'even the right password is not checked while throttled');

      clock += 1000;
      assertError(await login('wrong guess'), 401, 'invalid_credentials');
      assert.equal(assertError(await login(GOOD), 429, 'login_throttled').details.retryAfterSeconds, 2);
      clock += 1000;
      // Refused attempts do not extend the wait.
      assert.equal((await login(GOOD)).headers['retry-after'], '1');
      clock += 1000;
      assertError(await login('wrong guess'), 401, 'invalid_credentials');
      assert.equal((await login(GOOD)).headers['retry-after'], '4');
      clock += 4000;
      // The username is matched as sign-in matches it, regardless of case.
      assert.equal((await login(GOOD, u.username.toUpperCase())).status, 200);

      // Reset: five free failures again.
      for (let i = 0; i < 5; i++) assertError(await login('wrong guess'), 401, 'invalid_credentials');
      assertError(await login('wrong guess'), 429, 'login_throttled');
    } finally {
      t.close();
    }
  });

  test('unknown usernames are throttled exactly like real ones (no account enumeration)', async () => {
    let clock = Date.now();
    const t = createTestServer({ now: () => clock });
    try {
      const real = await registerUser(t.app, uniqueName('real'), GOOD);
      const ghost = uniqueName('ghost');
      const shape = (r: request.Response) => ({ status: r.status, code: r.body.error?.code, message: r.body.error?.message, retryAfter: r.headers['retry-after'] });
      for (let i = 0; i < 8; i++) {
        const a = await request(t.app).post('/api/auth/login').send({ username: real.username, password: 'wrong guess' });
        const b = await request(t.app).post('/api/auth/login').send({ username: ghost, password: 'wrong guess' });
        assert.deepEqual(shape(a), shape(b), `attempt ${i + 1}`);
        assert.equal(a.status, i < 5 ? 401 : 429);
        clock += 300;
      }
    } finally {
      t.close();
    }
  });

  test('independent of IP: guesses from many addresses share one account budget; the per-IP limit stays', async () => {
    const clock = Date.now();
    const t = createTestServer({ now: () => clock, env: { ATTUNE_TRUST_PROXY: '1', ATTUNE_AUTH_RATE_LIMIT: '3' } });
    try {
      const u = await registerUser(t.app, uniqueName('spread'), GOOD);
      const from = (ip: string, username: string, password = 'wrong guess') => request(t.app).post('/api/auth/login').set('X-Forwarded-For', ip).send({ username, password });
      for (let i = 0; i < 5; i++) assertError(await from(`203.0.113.${i + 1}`, u.username), 401, 'invalid_credentials');
      for (let i = 0; i < 5; i++) assertError(await from(`198.51.100.${i + 1}`, u.username), 429, 'login_throttled');
      // The per-IP limiter still counts every attempt from one address, whatever the username.
      for (let i = 0; i < 3; i++) assertError(await from('192.0.2.7', uniqueName('any')), 401, 'invalid_credentials');
      assertError(await from('192.0.2.7', uniqueName('any')), 429, 'rate_limited');
    } finally {
      t.close();
    }
  });

  test('the password confirmation of account deletion shares the budget (a stolen session cannot guess the password)', async () => {
    let clock = Date.now();
    const t = createTestServer({ now: () => clock });
    try {
      const u = await registerUser(t.app, uniqueName('stolen'), GOOD);
      const del = (password: string) => request(t.app).delete('/api/me').set(u.auth).send({ password });
      for (let i = 0; i < 5; i++) assertError(await del('wrong guess'), 403, 'wrong_password');
      assertError(await del(GOOD), 429, 'login_throttled');
      assertError(await request(t.app).post('/api/auth/login').send({ username: u.username, password: GOOD }), 429, 'login_throttled');
      assert.equal(tableCounts(t.db).users, 1);
      clock += 1000;
      assert.equal((await del(GOOD)).status, 204);
    } finally {
      t.close();
    }
  });

  test('parallel guesses cannot slip past the count while argon2 is still verifying', async () => {
    const t = createTestServer({ now: () => 1_000_000 });
    try {
      const u = await registerUser(t.app, uniqueName('burst'), GOOD);
      const results = await Promise.all(Array.from({ length: 12 }, () => request(t.app).post('/api/auth/login').send({ username: u.username, password: 'wrong guess' })));
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [...Array(5).fill(401), ...Array(7).fill(429)]);
    } finally {
      t.close();
    }
  });

  test('the backoff is capped at 15 minutes, and memory stays bounded', () => {
    let clock = 0;
    const throttle = createLoginThrottle({ now: () => clock, maxEntries: 100 });
    let wait = 0;
    for (let i = 0; i < 40; i++) {
      const d = throttle.begin('target');
      if (d.allowed) {
        d.settle(false);
        continue;
      }
      wait = d.retryAfterMs;
      clock += d.retryAfterMs;
      i--;
    }
    assert.equal(wait, MAX_DELAY_MS);

    for (let i = 0; i < 1000; i++) throttle.begin(`spray${i}`);
    assert.equal(throttle.size(), 100, 'the least recently tried names are dropped first');
    // Idle entries are forgotten after a day.
    clock += 25 * 3600_000;
    throttle.begin('fresh');
    assert.equal(throttle.size(), 1);
  });
});
