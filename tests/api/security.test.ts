// The HTTP edge against an attacker: same-site request forgery (the Origin check), malformed input
// that used to be a 500 (percent-encoding, charsets, content encodings), and Cache-Control on API
// answers. Real app, real SQLite file, real loopback sockets.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import zlib from 'node:zlib';
import { pino } from 'pino';
import request from 'supertest';
import { toAppError } from '../../server/http/middleware/errors.ts';
import type { Engine } from '../../server/lm/engine.ts';
import { PersonalizationService, type PersonalizationSettings } from '../../server/personalize/personalization-service.ts';
import { pdpoConfigSchema } from '../../server/personalize/pdpo.ts';
import { UserModel } from '../../server/personalize/user-model.ts';
import {
  assertError,
  closeServer,
  createTestServer,
  listenOnLoopback,
  registerUser,
  tableCounts,
  TEST_HOST,
  TEST_ORIGIN,
  type TestServer,
  type TestUser,
  viaCookie,
} from '../helpers/api-server.ts';
import { loadTestEngine, type RealtimeTestServer, startRealtimeServer } from '../helpers/realtime-server.ts';

const ADMIN_PASSWORD = 'admin password 1';
const FOREIGN = 'http://127.0.0.1:9999';

const settings: PersonalizationSettings = {
  pdpo: pdpoConfigSchema.parse({ alpha: 0.5, beta: 0.5, lr: 0.1, epochs: 1, batchPairs: 8, tokens: 2, heldoutFraction: 0.25, maxResponseTokens: 16 }),
  gateTolerance: 0.02,
  schedule: { cron: 'off', minNewPairs: 5, perUserMinPairs: 3, enabled: false },
  retrainCheckSeconds: 3600,
  trainerThreads: 1,
  trainBaseline: false,
};

/** A version the held-out gate kept unpublished, with a valid soft-prompt blob. */
function insertRejectedVersion(t: TestServer): string {
  const id = randomUUID();
  const blob = new UserModel({ kind: 'individual', tokens: 2, hidden: 4 }, new Map([['e0', new Float32Array(8).fill(0.5)]])).serialize();
  t.repos.userModels.insertVersion({ id, createdAt: Date.now(), publishedAt: null, status: 'rejected', config: {}, metrics: {}, blob, reason: 'below the held-out gate' });
  return id;
}

/** The OpenAI error shape of /v1. */
function assertOpenAiError(res: request.Response, status: number, code: string): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.deepEqual(Object.keys(res.body), ['error']);
  assert.deepEqual(Object.keys(res.body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(res.body.error.code, code);
  assert.equal(res.body.error.type, 'invalid_request_error');
  assert.doesNotMatch(JSON.stringify(res.body), /\bat .*\.(ts|js):\d+/);
}

describe('CSRF: cookie-authenticated writes need this server\'s own Origin', () => {
  let t: TestServer;
  let svc: PersonalizationService;
  let server: http.Server;
  let url: string;
  let admin: TestUser;

  before(async () => {
    t = createTestServer({
      env: { ATTUNE_ADMIN_PASSWORD: ADMIN_PASSWORD },
      personalization: (ctx) => (svc = new PersonalizationService({ ...ctx, logger: pino({ level: 'silent' }), modelDir: '.', modelFingerprint: 'tiny', settings })),
    });
    svc.start({ schedule: false });
    await t.services.auth.bootstrapAdmin();
    const login = await request(t.app).post('/api/auth/login').send({ username: 'admin', password: ADMIN_PASSWORD });
    assert.equal(login.status, 200);
    admin = { id: login.body.user.id, username: 'admin', token: login.body.token, auth: { Authorization: `Bearer ${login.body.token}` } };
    server = http.createServer(t.app);
    url = await listenOnLoopback(server);
  });
  after(async () => {
    await svc.close();
    await closeServer(server);
    t.close();
  });

  const post = (path: string, headers: Record<string, string>) => fetch(`${url}${path}`, { method: 'POST', headers });
  const cookie = () => `attune_session=${admin.token}`;

  test('the reported attack: a page on another port of the same host cannot publish a rejected version with the admin\'s cookie', async () => {
    const id = insertRejectedVersion(t);
    const path = `/api/admin/training/versions/${id}/publish`;
    const forged: Array<Record<string, string>> = [
      { cookie: cookie(), origin: FOREIGN },
      { cookie: cookie(), origin: 'null' },
      { cookie: cookie(), origin: `${url}.evil.example` },
      { cookie: cookie(), origin: url.replace('http:', 'https:') },
      { cookie: cookie(), referer: `${FOREIGN}/attack.html` },
      // Neither header: an old browser, or a page that suppressed the Referer.
      { cookie: cookie() },
    ];
    for (const headers of forged) {
      const res = await post(path, headers);
      assert.equal(res.status, 403, JSON.stringify(headers));
      const body = (await res.json()) as { error: { code: string; message: string; details: Record<string, unknown> } };
      assert.equal(body.error.code, 'csrf_origin_mismatch');
      assert.equal(body.error.details.expected, url);
      assert.equal(res.headers.get('cache-control'), 'no-store');
    }
    assert.equal(t.repos.userModels.findVersion(id, { blob: false })?.status, 'rejected');
    assert.equal(t.repos.userModels.current().versionId, null, 'the rejected version never went live');

    // The web client's own page (fetch sends its Origin): it works.
    const own = await post(path, { cookie: cookie(), origin: url });
    assert.equal(own.status, 200, await own.clone().text());
    assert.equal(t.repos.userModels.current().versionId, id);
    // A same-origin Referer stands in for a missing Origin.
    const other = insertRejectedVersion(t);
    const viaReferer = await post(`/api/admin/training/versions/${other}/publish`, { cookie: cookie(), referer: `${url}/admin` });
    assert.equal(viaReferer.status, 200);
    // A bearer token is not sent by the browser on its own: a foreign Origin does not matter.
    const viaBearer = await post(path, { authorization: `Bearer ${admin.token}`, origin: FOREIGN });
    assert.equal(viaBearer.status, 200);
    assert.equal(t.repos.userModels.current().versionId, id);
  });

  test('every state-changing route refuses the forged request before its handler runs: nothing is written', async () => {
    const unsafe = t.routes.filter((r) => r.method !== 'get');
    assert.ok(unsafe.length >= 15, `only ${unsafe.length} state-changing routes`);
    for (const p of ['/api/auth/logout', '/api/admin/training/jobs/:id/cancel', '/api/admin/training/versions/:id/publish', '/api/me']) {
      assert.ok(unsafe.some((r) => r.path === p), `${p} is in the sweep`);
    }
    const before = tableCounts(t.db);
    for (const r of unsafe) {
      const path = r.path.replace(/:[A-Za-z]+/g, () => randomUUID());
      const res = await request(t.app)[r.method](path).set('Host', TEST_HOST).set('Cookie', cookie()).set('Origin', FOREIGN).send({ title: 'x', password: ADMIN_PASSWORD });
      assertError(res, 403, 'csrf_origin_mismatch');
    }
    assert.deepEqual(tableCounts(t.db), before);
    // Sign-out was refused too: the session still works.
    assert.equal((await request(t.app).get('/api/me').set('Cookie', cookie())).status, 200);
  });

  test('same-origin cookie writes work: sign-out, job cancel, a new conversation', async () => {
    const u = await registerUser(t.app);
    const created = await request(t.app).post('/api/conversations').set(viaCookie(u.token)).send({ title: 'mine' });
    assert.equal(created.status, 201);
    // Past the Origin check, the handler answers (no job runs).
    assertError(await request(t.app).post(`/api/admin/training/jobs/${randomUUID()}/cancel`).set(viaCookie(admin.token)), 404);
    assert.equal((await request(t.app).post('/api/auth/logout').set(viaCookie(u.token))).status, 204);
    assertError(await request(t.app).get('/api/me').set(u.auth), 401, 'invalid_token');
  });

  test('reading needs no Origin: GET with the cookie and a foreign Origin works', async () => {
    const res = await request(t.app).get('/api/me').set('Cookie', cookie()).set('Origin', FOREIGN);
    assert.equal(res.status, 200);
  });

  test('login CSRF: a foreign page cannot sign the browser in (or register); scripts without an Origin can', async () => {
    const before = tableCounts(t.db);
    const login = await post('/api/auth/login', { 'content-type': 'application/json', origin: FOREIGN });
    assert.equal(login.status, 403);
    assert.equal(login.headers.get('set-cookie'), null);
    const reg = await request(t.app).post('/api/auth/register').set('Origin', FOREIGN).send({ username: 'victim_1', password: 'correct horse battery' });
    assertError(reg, 403, 'csrf_origin_mismatch');
    assert.deepEqual(tableCounts(t.db), before);

    const script = await request(t.app).post('/api/auth/login').send({ username: 'admin', password: ADMIN_PASSWORD });
    assert.equal(script.status, 200);
    const page = await request(t.app).post('/api/auth/login').set('Host', TEST_HOST).set('Origin', TEST_ORIGIN).send({ username: 'admin', password: ADMIN_PASSWORD });
    assert.equal(page.status, 200);
  });
});

describe('CSRF: the server\'s origin behind proxies and with CORS', () => {
  test('X-Forwarded-Proto/-Host count only under ATTUNE_TRUST_PROXY', async () => {
    const headers = (token: string) => ({ Cookie: `attune_session=${token}`, Host: '127.0.0.1:3000', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'chat.example.com', Origin: 'https://chat.example.com' });
    const trusted = createTestServer({ env: { ATTUNE_TRUST_PROXY: '1' } });
    const untrusted = createTestServer();
    try {
      const a = await registerUser(trusted.app);
      assert.equal((await request(trusted.app).post('/api/conversations').set(headers(a.token)).send({})).status, 201);
      const b = await registerUser(untrusted.app);
      const res = await request(untrusted.app).post('/api/conversations').set(headers(b.token)).send({});
      assert.equal(assertError(res, 403, 'csrf_origin_mismatch').details.expected, 'http://127.0.0.1:3000');
      assert.equal(tableCounts(untrusted.db).conversations, 0);
    } finally {
      trusted.close();
      untrusted.close();
    }
  });

  test('ATTUNE_PUBLIC_ORIGIN is accepted when the proxy rewrites Host', async () => {
    const t = createTestServer({ env: { ATTUNE_PUBLIC_ORIGIN: 'https://chat.example.com' } });
    try {
      const u = await registerUser(t.app);
      const set = { Cookie: `attune_session=${u.token}`, Host: '127.0.0.1:3000' };
      assert.equal((await request(t.app).post('/api/conversations').set(set).set('Origin', 'https://chat.example.com').send({})).status, 201);
      assertError(await request(t.app).post('/api/conversations').set(set).set('Origin', 'https://evil.example.com').send({}), 403, 'csrf_origin_mismatch');
    } finally {
      t.close();
    }
  });

  test('an ATTUNE_CORS_ORIGIN page may sign in for a token, but never write with the cookie', async () => {
    const t = createTestServer({ env: { ATTUNE_CORS_ORIGIN: 'https://app.example.com' } });
    try {
      const u = await registerUser(t.app, undefined, 'correct horse battery');
      const login = await request(t.app).post('/api/auth/login').set('Origin', 'https://app.example.com').send({ username: u.username, password: 'correct horse battery' });
      assert.equal(login.status, 200);
      assertError(await request(t.app).post('/api/auth/login').set('Origin', 'https://other.example.com').send({ username: u.username, password: 'correct horse battery' }), 403, 'csrf_origin_mismatch');
      const cookieWrite = await request(t.app).post('/api/conversations').set('Cookie', `attune_session=${u.token}`).set('Origin', 'https://app.example.com').send({});
      assertError(cookieWrite, 403, 'csrf_origin_mismatch');
      const bearerWrite = await request(t.app).post('/api/conversations').set(u.auth).set('Origin', 'https://app.example.com').send({});
      assert.equal(bearerWrite.status, 201);
    } finally {
      t.close();
    }
  });
});

describe('malformed input is a 4xx in each API\'s shape, never a 500', () => {
  let engine: Engine;
  let modelDir = '';
  let t: RealtimeTestServer;
  let alice: TestUser;
  let aliceKey = '';

  before(async () => {
    ({ engine, dir: modelDir } = await loadTestEngine());
    t = await startRealtimeServer(engine);
    alice = await registerUser(t.app);
    aliceKey = (await request(t.app).post('/api/me/api-keys').set(alice.auth).send({ name: 'k' })).body.key;
  });
  after(async () => {
    await t.stop();
    await engine.close();
    fs.rmSync(modelDir, { recursive: true, force: true });
  });

  test('a malformed %-escape in any id → 400 invalid_path_encoding, on every route with a parameter', async () => {
    const withParams = t.routes.filter((r) => r.path.includes('/:'));
    assert.ok(withParams.length >= 8, `${withParams.length} routes with parameters`);
    for (const r of withParams) {
      for (const bad of ['%', '%zz', '%E0%A4%A']) {
        const path = r.path.replace(/:[A-Za-z]+/g, bad);
        const res = await request(t.app)[r.method](path).set(alice.auth).send({});
        assertError(res, 400, 'invalid_path_encoding');
      }
    }
  });

  test('/v1: an unsupported charset → 415, an unsupported or corrupt Content-Encoding → 415/400, in OpenAI\'s shape', async () => {
    const body = JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hi' }] });
    const v1 = () => request(t.app).post('/v1/chat/completions').set('Authorization', `Bearer ${aliceKey}`);
    assertOpenAiError(await v1().set('Content-Type', 'application/json; charset=latin1').send(body), 415, 'unsupported_charset');
    assertOpenAiError(await v1().set('Content-Type', 'application/json; charset=x-unknown').send(body), 415, 'unsupported_charset');
    assertOpenAiError(await v1().set('Content-Type', 'application/json').set('Content-Encoding', 'compress').send(body), 415, 'unsupported_content_encoding');
    // br is decoded; bytes that are not brotli are a bad request.
    assertOpenAiError(await v1().set('Content-Type', 'application/json').set('Content-Encoding', 'br').send(body), 400, 'invalid_content_encoding');
    assertOpenAiError(await v1().set('Content-Type', 'application/json').set('Content-Encoding', 'gzip').send(body), 400, 'invalid_content_encoding');
    assertOpenAiError(await v1().set('Content-Type', 'application/json').send('{"model": '), 400, 'invalid_json');
  });

  test('/api: the same inputs → the same statuses in the API shape; well-formed br and gzip bodies are read', async () => {
    const api = () => request(t.app).post('/api/conversations').set(alice.auth);
    const body = JSON.stringify({ title: 'compressed' });
    assertError(await api().set('Content-Type', 'application/json; charset=latin1').send(body), 415, 'unsupported_charset');
    assertError(await api().set('Content-Type', 'application/json').set('Content-Encoding', 'compress').send(body), 415, 'unsupported_content_encoding');
    assertError(await api().set('Content-Type', 'application/json').set('Content-Encoding', 'br').send(body), 400, 'invalid_content_encoding');
    const before = tableCounts(t.db).conversations;
    // Over fetch: supertest would serialize a Buffer body as JSON.
    const compressed = (encoding: string, bytes: Buffer) =>
      fetch(`${t.url}/api/conversations`, { method: 'POST', headers: { ...alice.auth, 'content-type': 'application/json', 'content-encoding': encoding }, body: new Uint8Array(bytes) });
    const br = await compressed('br', zlib.brotliCompressSync(body));
    assert.equal(br.status, 201, await br.clone().text());
    assert.equal(((await br.json()) as { title: string }).title, 'compressed');
    assert.equal((await compressed('gzip', zlib.gzipSync(body))).status, 201);
    assert.equal(tableCounts(t.db).conversations, before + 2);
  });

  test('every body-parser error type has one mapping; server-side stream faults stay 500', () => {
    const cases: Array<[Record<string, unknown>, number | null, string | null]> = [
      [{ type: 'entity.too.large', status: 413, expose: true, limit: 1024 }, 413, 'payload_too_large'],
      [{ type: 'parameters.too.many', status: 413, expose: true }, 413, 'payload_too_large'],
      [{ type: 'entity.parse.failed', status: 400, expose: true }, 400, 'invalid_json'],
      [{ type: 'charset.unsupported', status: 415, expose: true, charset: 'latin1' }, 415, 'unsupported_charset'],
      [{ type: 'encoding.unsupported', status: 415, expose: true, encoding: 'compress' }, 415, 'unsupported_content_encoding'],
      [{ type: 'request.aborted', status: 400, expose: true }, 400, 'request_aborted'],
      [{ type: 'request.size.invalid', status: 400, expose: true }, 400, 'invalid_content_length'],
      [{ type: 'entity.verify.failed', status: 403, expose: true }, 403, 'body_refused'],
      [{ status: 400, expose: true, code: 'Z_DATA_ERROR' }, 400, 'invalid_content_encoding'],
      [{ status: 400, expose: true, code: 'ERR__ERROR_FORMAT_PADDING_2' }, 400, 'invalid_content_encoding'],
      [{ type: 'stream.encoding.set', status: 500, expose: false }, null, null],
      [{ type: 'stream.not.readable', status: 500, expose: false }, null, null],
    ];
    for (const [fields, status, code] of cases) {
      const e = toAppError(Object.assign(new Error('x'), fields));
      assert.equal(e?.status ?? null, status, JSON.stringify(fields));
      assert.equal(e?.code ?? null, code, JSON.stringify(fields));
    }
    assert.equal(toAppError(Object.assign(new URIError('URI malformed'), { status: 400 }))?.code, 'invalid_path_encoding');
  });

  test('Cache-Control: no-store on API answers (tokens, user data, errors); probes are left alone', async () => {
    const login = await request(t.app).post('/api/auth/login').send({ username: alice.username, password: 'correct horse battery' });
    assert.equal(login.status, 200);
    const reg = await request(t.app).post('/api/auth/register').send({ username: `cache_${Date.now() % 100000}`, password: 'correct horse battery' });
    assert.equal(reg.status, 201);
    const answers: Array<[string, request.Response]> = [
      ['login', login],
      ['register', reg],
      ['me (bearer)', await request(t.app).get('/api/me').set(alice.auth)],
      ['conversations', await request(t.app).get('/api/conversations').set(alice.auth)],
      ['me (cookie)', await request(t.app).get('/api/me').set(viaCookie(alice.token))],
      ['401', await request(t.app).get('/api/me')],
      ['/v1/models', await request(t.app).get('/v1/models').set('Authorization', `Bearer ${aliceKey}`)],
      ['/v1/chat/completions', await request(t.app).post('/v1/chat/completions').set('Authorization', `Bearer ${aliceKey}`).send({ model: 'x', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 })],
    ];
    for (const [what, res] of answers) assert.equal(res.headers['cache-control'], 'no-store', `${what} → ${res.status}`);
    const healthz = await request(t.app).get('/healthz');
    assert.notEqual(healthz.headers['cache-control'], 'no-store');
  });
});
