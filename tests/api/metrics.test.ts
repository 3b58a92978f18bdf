// /metrics (prom-client's text format) on a real server with a tiny random model: HTTP requests by
// route pattern, generation tokens, time to first token, active streams, the engine's queue, feedback
// and training jobs move exactly with what the server did.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import request from 'supertest';
import type { Engine } from '../../server/lm/engine.ts';
import { metrics, observeEngine } from '../../server/metrics.ts';
import { assertError, createTestServer, registerUser, type TestUser } from '../helpers/api-server.ts';
import { connectClient, connected, findLongPrompt, loadTestEngine, nextEvent, type RealtimeTestServer, startRealtimeServer, TEST_MODEL_ID } from '../helpers/realtime-server.ts';

type Samples = Array<{ name: string; labels: Record<string, string>; value: number }>;

function parse(text: string): Samples {
  const out: Samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `malformed line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of the samples named `name` whose labels include `labels`. */
const valueOf = (s: Samples, name: string, labels: Record<string, string> = {}): number =>
  s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);

describe('/metrics', () => {
  let engine: Engine;
  let modelDir = '';
  let t: RealtimeTestServer;
  let alice: TestUser;
  let longPrompt = '';
  const scrape = async (): Promise<Samples> => {
    const res = await request(t.app).get('/metrics');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    return parse(res.text);
  };

  before(async () => {
    ({ engine, dir: modelDir } = await loadTestEngine());
    t = await startRealtimeServer(engine);
    observeEngine(engine.scheduler);
    alice = await registerUser(t.app, 'alice');
    longPrompt = await findLongPrompt(engine);
  });
  after(async () => {
    observeEngine(null);
    await t.stop();
    await engine.close();
    fs.rmSync(modelDir, { recursive: true, force: true });
  });

  test('HTTP requests are counted by method, route pattern and status, with durations', async () => {
    const before = await scrape();
    const route = { method: 'GET', route: '/api/conversations/:id' };
    const id = randomUUID();
    assertError(await request(t.app).get(`/api/conversations/${id}`).set(alice.auth), 404);
    assertError(await request(t.app).get(`/api/conversations/${randomUUID()}`).set(alice.auth), 404);
    assert.equal((await request(t.app).get('/api/conversations').set(alice.auth)).status, 200);
    assertError(await request(t.app).get('/api/no/such/thing'), 404);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>) => valueOf(after, name, labels) - valueOf(before, name, labels);
    assert.equal(delta('attune_http_requests_total', { ...route, status: '404' }), 2);
    assert.equal(delta('attune_http_request_duration_seconds_count', { ...route, status: '404' }), 2);
    assert.equal(delta('attune_http_requests_total', { method: 'GET', route: '/api/conversations', status: '200' }), 1);
    assert.equal(delta('attune_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' }), 1);
    assert.ok(!after.some((s) => s.labels.route?.includes(id)), 'no raw URLs as labels');
  });

  test('a chat turn over socket.io counts its tokens, its time to first token and its decode speed', async () => {
    const before = await scrape();
    const s = connectClient(t.url, alice.token);
    await connected(s);
    const done = nextEvent<{ message: { id: string } }>(s, 'message:done');
    s.emit('message:send', { content: longPrompt, sampling: { temperature: 0, seed: 1, maxNewTokens: 25 } });
    await done;
    s.disconnect();
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels);
    assert.equal(delta('attune_generation_tokens_total'), 25);
    assert.equal(delta('attune_generations_total', { finish_reason: 'length' }), 1);
    assert.equal(delta('attune_time_to_first_token_seconds_count'), 1);
    assert.ok(delta('attune_time_to_first_token_seconds_sum') > 0);
    assert.equal(delta('attune_generation_tokens_per_second_count'), 1);
    assert.equal(valueOf(after, 'attune_active_streams'), 0);
  });

  test('active streams and the queue depth follow the engine while it works', async () => {
    // A /v1 stream held open: one active stream.
    const key = (await request(t.app).post('/api/me/api-keys').set(alice.auth).send({})).body.key as string;
    const controller = new AbortController();
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: longPrompt }], temperature: 0, max_tokens: 1000, stream: true }),
      signal: controller.signal,
    });
    await res.body!.getReader().read();
    // Ten more straight into the engine (batch of 8): some must wait in the queue.
    const stop = new AbortController();
    const direct = Array.from({ length: 10 }, (_, i) =>
      engine.generate({ messages: [{ role: 'user', content: longPrompt }], sampling: { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: i }, maxNewTokens: 1000, signal: stop.signal }),
    );
    const busy = await scrape();
    assert.equal(valueOf(busy, 'attune_active_streams'), 1);
    const queued = valueOf(busy, 'attune_engine_queue_depth');
    const rows = valueOf(busy, 'attune_engine_batch_rows');
    assert.ok(queued >= 3 && queued <= 10, `queue depth ${queued}`);
    assert.equal(queued + rows, 11);
    controller.abort();
    stop.abort();
    await Promise.all(direct.map((d) => d.result));
    const deadline = Date.now() + 10_000;
    let idle = await scrape();
    while (valueOf(idle, 'attune_active_streams') + valueOf(idle, 'attune_engine_batch_rows') + valueOf(idle, 'attune_engine_queue_depth') > 0) {
      assert.ok(Date.now() < deadline, 'the engine goes idle');
      await new Promise((r) => setTimeout(r, 20));
      idle = await scrape();
    }
    assert.ok(valueOf(idle, 'attune_generations_total', { finish_reason: 'abort' }) >= 1);
    assert.equal(valueOf(idle, 'attune_http_requests_total', { method: 'POST', route: '/v1/chat/completions', status: '200' }), 1);
  });

  test('feedback by kind and value; training jobs by status from the database and from the trainer', async () => {
    const before = await scrape();
    const c = await request(t.app).post('/api/conversations').set(alice.auth).send({});
    const base = { conversationId: c.body.id as string, finishReason: null, modelName: 'test', sampling: null, seed: 1, userModelVersion: null, status: 'complete' as const, createdAt: Date.now() };
    const q = { ...base, id: randomUUID(), parentId: null, role: 'user' as const, content: 'q' };
    const a = { ...base, id: randomUUID(), parentId: q.id, role: 'assistant' as const, content: 'a' };
    t.repos.conversations.insertMessage(q);
    t.repos.conversations.insertMessage(a);
    const vote = (value: string) => request(t.app).put(`/api/messages/${a.id}/feedback`).set(alice.auth).send({ value });
    assert.equal((await vote('up')).status, 200);
    assert.equal((await vote('down')).status, 200);
    assert.equal((await vote('sideways')).status, 400);
    assert.equal((await request(t.app).delete(`/api/messages/${a.id}/feedback`).set(alice.auth)).status, 204);
    for (const status of ['queued', 'queued', 'running', 'succeeded']) {
      t.repos.userModels.insertJob({ id: randomUUID(), status, createdAt: 1, startedAt: null, finishedAt: null, error: null, progress: {} });
    }
    metrics.trainingJobs.inc({ status: 'failed' });
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>) => valueOf(after, name, labels) - valueOf(before, name, labels);
    assert.equal(delta('attune_feedback_total', { kind: 'thumbs', value: 'up' }), 1);
    assert.equal(delta('attune_feedback_total', { kind: 'thumbs', value: 'down' }), 1);
    assert.equal(delta('attune_feedback_total', { kind: 'thumbs', value: 'withdrawn' }), 1);
    assert.equal(valueOf(after, 'attune_feedback_total', { value: 'sideways' }), 0);
    assert.equal(valueOf(after, 'attune_training_jobs', { status: 'queued' }), 2);
    assert.equal(valueOf(after, 'attune_training_jobs', { status: 'running' }), 1);
    assert.equal(valueOf(after, 'attune_training_jobs', { status: 'succeeded' }), 1);
    assert.equal(delta('attune_training_jobs_total', { status: 'failed' }), 1);
  });

  test('ATTUNE_METRICS_TOKEN, when set, is required as a bearer token', async () => {
    const locked = createTestServer({ env: { ATTUNE_METRICS_TOKEN: 'scrape-token-0123456789' } });
    try {
      assertError(await request(locked.app).get('/metrics'), 401, 'invalid_metrics_token');
      assertError(await request(locked.app).get('/metrics').set('Authorization', 'Bearer wrong-token-0123456789'), 401, 'invalid_metrics_token');
      const ok = await request(locked.app).get('/metrics').set('Authorization', 'Bearer scrape-token-0123456789');
      assert.equal(ok.status, 200);
      assert.match(ok.text, /^# HELP /m);
    } finally {
      locked.close();
    }
  });
});
