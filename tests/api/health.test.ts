// Probes and cross-origin access.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { createTestServer } from '../helpers/api-server.ts';

test('/healthz is always ok; /readyz is 200 when the db is open and the model loaded, else 503', async () => {
  let modelReady = false;
  const t = createTestServer({ isModelReady: () => modelReady });
  try {
    assert.deepEqual((await request(t.app).get('/healthz')).body, { status: 'ok' });
    const notReady = await request(t.app).get('/readyz');
    assert.equal(notReady.status, 503);
    assert.deepEqual(notReady.body, { status: 'not_ready', db: true, model: false });
    modelReady = true;
    const ready = await request(t.app).get('/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { status: 'ready', db: true, model: true });
    t.db.close();
    const closed = await request(t.app).get('/readyz');
    assert.equal(closed.status, 503);
    assert.equal(closed.body.db, false);
  } finally {
    t.close();
  }
});

test('CORS is off by default; when configured, only the listed origins get CORS headers', async () => {
  const off = createTestServer();
  const on = createTestServer({ env: { ATTUNE_CORS_ORIGIN: 'https://app.example' } });
  try {
    const none = await request(off.app).get('/healthz').set('Origin', 'https://app.example');
    assert.equal(none.headers['access-control-allow-origin'], undefined);

    const preflight = await request(on.app)
      .options('/api/conversations')
      .set('Origin', 'https://app.example')
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization, content-type');
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], 'https://app.example');
    assert.match(String(preflight.headers['access-control-allow-headers']), /Authorization/);
    assert.equal(preflight.headers['access-control-allow-credentials'], undefined);
    const simple = await request(on.app).get('/healthz').set('Origin', 'https://app.example');
    assert.equal(simple.headers['access-control-allow-origin'], 'https://app.example');
    const stranger = await request(on.app).get('/healthz').set('Origin', 'https://evil.example');
    assert.equal(stranger.headers['access-control-allow-origin'], undefined);
  } finally {
    off.close();
    on.close();
  }
});
