// The OpenAI-compatible API, driven by the official `openai` npm client unchanged (baseURL pointed at
// a real server listening on loopback), answering with a tiny random model on onnxruntime.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import OpenAI from 'openai';
import request from 'supertest';
import type { Engine } from '../../server/lm/engine.ts';
import type { SamplingParams } from '../../server/lm/sampling.ts';
import type { ChatMessage } from '../../server/lm/tokenizer.ts';
import type { UserPrefixSource } from '../../server/services/chat.ts';
import { registerUser, type TestUser } from '../helpers/api-server.ts';
import { findLongPrompt, loadTestEngine, type RealtimeTestServer, startRealtimeServer, TEST_MODEL_ID } from '../helpers/realtime-server.ts';

const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 7 };
const CONVERSATION: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'hello there' },
  { role: 'assistant', content: 'hi' },
  { role: 'user', content: 'tell me about the sea' },
];

describe('OpenAI-compatible API', () => {
  let engine: Engine;
  let modelDir = '';
  let t: RealtimeTestServer;
  let alice: TestUser;
  let bob: TestUser;
  let aliceKey = '';
  let bobKey = '';
  let longPrompt = '';
  /** Alice's soft prompt: 3 rows of the tiny model's hidden size; Bob has none (generic). */
  let alicePrefix: Float32Array;
  const client = (apiKey: string, url = t.url) => new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0, timeout: 30_000 });
  const reference = async (messages: ChatMessage[], maxNewTokens: number, prefix: Float32Array | null = null) =>
    engine.generateText({ messages, prefix, sampling: GREEDY, maxNewTokens });

  before(async () => {
    ({ engine, dir: modelDir } = await loadTestEngine());
    const hidden = engine.runtime.config.hidden;
    alicePrefix = Float32Array.from({ length: 3 * hidden }, (_, i) => Math.sin(i * 1.7) * 2);
    const userModels: UserPrefixSource = {
      prefixFor: (userId) => (userId === alice.id ? { prefix: alicePrefix, version: null } : { prefix: null, version: null }),
    };
    t = await startRealtimeServer(engine, { userModels });
    alice = await registerUser(t.app, 'alice');
    bob = await registerUser(t.app, 'bob');
    aliceKey = (await request(t.app).post('/api/me/api-keys').set(alice.auth).send({ name: 'openai' })).body.key;
    bobKey = (await request(t.app).post('/api/me/api-keys').set(bob.auth).send({ name: 'openai' })).body.key;
    assert.match(aliceKey, /^atn_/);
    longPrompt = await findLongPrompt(engine);
  });
  after(async () => {
    await t.stop();
    await engine.close();
    fs.rmSync(modelDir, { recursive: true, force: true });
  });

  test('models.list names the served model', async () => {
    const models = await client(bobKey).models.list();
    assert.deepEqual(models.data.map((m) => [m.id, m.object, m.owned_by]), [[TEST_MODEL_ID, 'model', 'attune']]);
    assert.equal(typeof models.data[0]!.created, 'number');
  });

  test('non-streaming: a chat.completion with the engine’s own answer to the whole conversation, and usage', async () => {
    const r = await client(bobKey).chat.completions.create({ model: TEST_MODEL_ID, messages: CONVERSATION, temperature: 0, max_tokens: 12, seed: 7 });
    const ref = await reference(CONVERSATION, 12);
    assert.equal(r.object, 'chat.completion');
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.model, TEST_MODEL_ID);
    assert.ok(Math.abs(r.created - Date.now() / 1000) < 60);
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0]!.index, 0);
    assert.equal(r.choices[0]!.message.role, 'assistant');
    assert.equal(r.choices[0]!.message.content, ref.text);
    assert.equal(r.choices[0]!.finish_reason, ref.finishReason === 'length' ? 'length' : 'stop');
    assert.deepEqual(r.usage && [r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens], [ref.promptTokens, ref.tokenIds.length, ref.promptTokens + ref.tokenIds.length]);
    assert.ok(r.usage!.completion_tokens <= 12);
  });

  test('streaming: chat.completion.chunk events that add up to the same answer, then the usage chunk and [DONE]', async () => {
    const messages: ChatMessage[] = [{ role: 'user', content: longPrompt }];
    const stream = await client(bobKey).chat.completions.create({ model: TEST_MODEL_ID, messages, temperature: 0, max_completion_tokens: 40, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const ref = await reference(messages, 40);
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0]!.id && c.model === TEST_MODEL_ID));
    assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    assert.equal(text, ref.text);
    const finishing = chunks.filter((c) => c.choices[0]?.finish_reason);
    assert.equal(finishing.length, 1);
    assert.equal(finishing[0]!.choices[0]!.finish_reason, 'length');
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage?.completion_tokens, 40);

    // On the wire: SSE frames, ending with [DONE].
    const raw = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${bobKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: TEST_MODEL_ID, messages, temperature: 0, max_tokens: 5, stream: true }),
    });
    assert.equal(raw.status, 200);
    assert.match(raw.headers.get('content-type') ?? '', /^text\/event-stream/);
    const body = await raw.text();
    assert.match(body, /^data: \{/);
    assert.ok(body.endsWith('data: [DONE]\n\n'));
    assert.equal(body.split('\n\n').filter(Boolean).length, 1 + 5 + 1 + 1, 'role chunk, one chunk per token, finish chunk, [DONE]');
  });

  test("answers carry the caller's own soft prompt; a user without one gets the generic answer", async () => {
    const messages: ChatMessage[] = [{ role: 'user', content: 'what should I cook tonight?' }];
    const generic = await reference(messages, 16);
    const personal = await reference(messages, 16, alicePrefix);
    assert.notEqual(personal.text, generic.text, 'precondition: the prefix changes the greedy answer');
    const ask = (key: string) => client(key).chat.completions.create({ model: TEST_MODEL_ID, messages, temperature: 0, max_tokens: 16 });
    assert.equal((await ask(aliceKey)).choices[0]!.message.content, personal.text);
    assert.equal((await ask(bobKey)).choices[0]!.message.content, generic.text);
  });

  test('stop strings end the answer before them; max_tokens caps it; a seed makes sampling reproducible', async () => {
    const messages: ChatMessage[] = [{ role: 'user', content: longPrompt }];
    const full = (await reference(messages, 60)).text;
    const stop = full.slice(20, 23);
    assert.ok(stop.trim().length > 0, 'precondition: a non-blank stop string');
    const r = await client(bobKey).chat.completions.create({ model: TEST_MODEL_ID, messages, temperature: 0, max_tokens: 60, stop: [stop, 'never-there'] });
    assert.equal(r.choices[0]!.message.content, full.slice(0, full.indexOf(stop)));
    assert.equal(r.choices[0]!.finish_reason, 'stop');

    const capped = await client(bobKey).chat.completions.create({ model: TEST_MODEL_ID, messages, temperature: 0, max_tokens: 3 });
    assert.equal(capped.usage!.completion_tokens, 3);
    assert.equal(capped.choices[0]!.finish_reason, 'length');

    const sampled = () => client(bobKey).chat.completions.create({ model: TEST_MODEL_ID, messages, temperature: 1, top_p: 0.9, seed: 12345, max_tokens: 20 });
    const [x, y] = [await sampled(), await sampled()];
    assert.equal(x.choices[0]!.message.content, y.choices[0]!.message.content);
  });

  test('a bad or revoked API key, or none → 401 in OpenAI’s error shape', async () => {
    await assert.rejects(client('atn_not-a-real-key').models.list(), (e: unknown) => {
      assert.ok(e instanceof OpenAI.AuthenticationError);
      assert.equal(e.status, 401);
      assert.equal(e.type, 'authentication_error');
      assert.equal(e.code, 'invalid_token');
      return true;
    });
    await assert.rejects(client('atn_not-a-real-key').chat.completions.create({ model: TEST_MODEL_ID, messages: CONVERSATION }), OpenAI.AuthenticationError);

    const raw = await fetch(`${t.url}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(raw.status, 401);
    const body = (await raw.json()) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body), ['error']);
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);

    // The session cookie is not a credential here.
    const cookie = await fetch(`${t.url}/v1/models`, { headers: { cookie: `attune_session=${alice.token}` } });
    assert.equal(cookie.status, 401);

    const made = await request(t.app).post('/api/me/api-keys').set(bob.auth).send({ name: 'short-lived' });
    assert.equal((await client(made.body.key).models.list()).data.length, 1);
    assert.equal((await request(t.app).delete(`/api/me/api-keys/${made.body.id}`).set(bob.auth)).status, 204);
    await assert.rejects(client(made.body.key).models.list(), OpenAI.AuthenticationError);
  });

  test('bad input → 400 naming the parameter; an unknown model or URL → 404; nothing reaches the engine', async () => {
    const before = engine.scheduler.stats().steps;
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ n: 2 }, 'n'],
      [{ temperature: 5 }, 'temperature'],
      [{ top_p: -1 }, 'top_p'],
      [{ max_tokens: 0 }, 'max_tokens'],
      [{ messages: [] }, 'messages'],
      [{ messages: [{ role: 'tool', content: 'x' }] }, 'messages.0.role'],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x' } }] }] }, 'messages.0.content'],
      [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ stream: 'yes' }, 'stream'],
      [{ response_format: { type: 'json_object' } }, 'response_format.type'],
    ];
    for (const [override, param] of bad) {
      const body = { model: TEST_MODEL_ID, messages: CONVERSATION, ...override } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming;
      await assert.rejects(client(bobKey).chat.completions.create(body), (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError, `${JSON.stringify(override)}: ${String(e)}`);
        assert.equal(e.type, 'invalid_request_error');
        assert.equal(e.param, param, JSON.stringify(override));
        return true;
      });
    }
    await assert.rejects(client(bobKey).chat.completions.create({ model: 'gpt-4o', messages: CONVERSATION }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.NotFoundError);
      assert.equal(e.code, 'model_not_found');
      assert.equal(e.param, 'model');
      return true;
    });
    const tooLong = await client(bobKey).chat.completions.create({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: 'word '.repeat(5000) }] }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(tooLong instanceof OpenAI.BadRequestError, String(tooLong));
    assert.equal(tooLong.code, 'context_length_exceeded');

    const headers = { Authorization: `Bearer ${bobKey}`, 'Content-Type': 'application/json' };
    const notJson = await fetch(`${t.url}/v1/chat/completions`, { method: 'POST', headers, body: '{"model":' });
    assert.equal(notJson.status, 400);
    assert.equal(((await notJson.json()) as { error: { code: string } }).error.code, 'invalid_json');
    const oversize = await fetch(`${t.url}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ model: TEST_MODEL_ID, messages: [{ role: 'user', content: 'x'.repeat(t.config.maxBodyBytes) }] }) });
    assert.equal(oversize.status, 413);
    assert.equal(((await oversize.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
    const unknown = await fetch(`${t.url}/v1/embeddings`, { method: 'POST', headers, body: '{}' });
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'unknown_url');
    assert.equal(engine.scheduler.stats().steps, before, 'no request reached the engine');
  });

  test('completions are rate-limited per user → 429 with Retry-After', async () => {
    const limited = await startRealtimeServer(engine, { env: { ATTUNE_CHAT_RATE_LIMIT: '2' } });
    try {
      const u = await registerUser(limited.app, 'carol');
      const key = (await request(limited.app).post('/api/me/api-keys').set(u.auth).send({})).body.key as string;
      const c = client(key, limited.url);
      const ask = () => c.chat.completions.create({ model: TEST_MODEL_ID, messages: CONVERSATION, max_tokens: 2 });
      await ask();
      await ask();
      await assert.rejects(ask(), (e: unknown) => {
        assert.ok(e instanceof OpenAI.RateLimitError);
        assert.equal(e.status, 429);
        assert.ok(Number(e.headers.get('retry-after')) >= 1);
        return true;
      });
      assert.equal((await c.models.list()).data.length, 1, 'listing models is not limited');
    } finally {
      await limited.stop();
    }
  });

  test('a client that disconnects mid-stream stops the generation', async () => {
    const messages: ChatMessage[] = [{ role: 'user', content: longPrompt }];
    const generatedBefore = engine.scheduler.stats().generatedTokens;
    const controller = new AbortController();
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${bobKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: TEST_MODEL_ID, messages, temperature: 0, max_tokens: 1000, stream: true }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.match(new TextDecoder().decode(first.value), /chat\.completion\.chunk/);
    controller.abort();
    const deadline = Date.now() + 10_000;
    while (engine.scheduler.stats().active + engine.scheduler.stats().queued > 0) {
      assert.ok(Date.now() < deadline, 'the generation stops');
      await new Promise((r) => setTimeout(r, 10));
    }
    // Unaborted, this prompt runs at least 200 tokens without end-of-sequence (findLongPrompt).
    const generated = engine.scheduler.stats().generatedTokens - generatedBefore;
    assert.ok(generated < 200, `stopped after ${generated} tokens`);
  });
});
