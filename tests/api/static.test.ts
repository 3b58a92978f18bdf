// Serving the web client: a built client directory (written here, as Vite lays it out) at `/`, the
// single-page fallback for deep links, long caching for hashed assets, and server paths left alone.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import helmet from 'helmet';
import request from 'supertest';
import { clientRouter } from '../../server/http/static.ts';
import { createTestServer, type TestServer } from '../helpers/api-server.ts';

let dir = '';
let app: express.Express;
let attune: TestServer;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-client-'));
  fs.mkdirSync(path.join(dir, 'assets'));
  fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>Attune</title><script type="module" src="/assets/index-abc123.js"></script>');
  fs.writeFileSync(path.join(dir, 'assets', 'index-abc123.js'), 'console.log("app")');
  app = express();
  app.use(helmet());
  app.use(clientRouter(dir));
  app.use((_req, res) => void res.status(404).json({ error: { code: 'route_not_found', message: 'no route', details: {} } }));
  attune = createTestServer();
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  attune.close();
});

test('/ and deep links answer the app, revalidated on every load', async () => {
  for (const url of ['/', '/c/whatever', '/admin']) {
    const res = await request(app).get(url).set('Accept', 'text/html');
    assert.equal(res.status, 200, url);
    assert.match(res.headers['content-type'] ?? '', /text\/html/);
    assert.match(res.text, /<title>Attune<\/title>/);
    assert.equal(res.headers['cache-control'], 'no-cache');
  }
});

test('hashed assets are cached for a year; a missing asset is a 404, not the app', async () => {
  const js = await request(app).get('/assets/index-abc123.js');
  assert.equal(js.status, 200);
  assert.match(js.headers['content-type'] ?? '', /javascript/);
  assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.equal((await request(app).get('/assets/index-gone.js').set('Accept', 'text/html')).status, 404);
});

test('server paths and non-GET requests never get the app', async () => {
  for (const url of ['/api/nope', '/v1/nope', '/socket.io/x', '/metrics', '/healthz']) {
    const res = await request(app).get(url).set('Accept', 'text/html');
    assert.equal(res.status, 404, url);
    assert.equal(res.body.error.code, 'route_not_found', url);
  }
  assert.equal((await request(app).post('/somewhere').set('Accept', 'text/html')).status, 404);
  // Only requests that accept HTML fall back to the app.
  assert.equal((await request(app).get('/data.json').set('Accept', 'application/json')).status, 404);
});

test('the served page is under a CSP that allows its own scripts, styles and socket', async () => {
  const csp = (await request(app).get('/').set('Accept', 'text/html')).headers['content-security-policy'] ?? '';
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /script-src[^;]*unsafe-inline/);
});

test('unknown API paths of the real app stay JSON 404s; without a build nothing is served', async () => {
  const res = await request(attune.app).get('/api/nope');
  assert.equal(res.status, 404);
  assert.equal(res.body.error.code, 'route_not_found');
  const empty = express();
  empty.use(clientRouter(path.join(dir, 'not-built')));
  empty.use((_req, res) => void res.status(404).end());
  assert.equal((await request(empty).get('/').set('Accept', 'text/html')).status, 404);
});

test('a Range or If-Match the file cannot meet is a JSON error with its own status, not HTML headers over JSON', async () => {
  const { errorHandler } = await import('../../server/http/middleware/errors.ts');
  const withErrors = express();
  withErrors.use(clientRouter(dir));
  withErrors.use(errorHandler);
  const cases = [
    { url: '/assets/index-abc123.js', header: ['Range', 'bytes=99999999-'], status: 416, code: 'range_not_satisfiable' },
    { url: '/assets/index-abc123.js', header: ['If-Match', '"nope"'], status: 412, code: 'precondition_failed' },
  ] as const;
  for (const c of cases) {
    const res = await request(withErrors).get(c.url).set('Accept', 'text/html').set(c.header[0], c.header[1]);
    assert.equal(res.status, c.status, `${c.header[0]}: ${res.text}`);
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    assert.equal(res.body.error.code, c.code);
    assert.equal(res.headers['cache-control'], 'no-store');
  }
});
