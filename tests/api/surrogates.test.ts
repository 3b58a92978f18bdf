/// <reference lib="es2024.string" />
// Lone UTF-16 surrogates in JSON bodies (legal as \uD800 escapes, not representable in UTF-8): the
// HTTP edge makes every string well formed before a route sees it, so each one becomes exactly one
// U+FFFD, and the response agrees with what SQLite stored. Before, the response echoed the raw
// surrogate while the row held its bytes as three U+FFFD.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { assertError, createTestServer, registerUser, type TestServer, type TestUser } from '../helpers/api-server.ts';

/** A body written by hand, so the escapes reach the server exactly as typed. */
const rawJson = (text: string) => ({ body: text, type: 'application/json' });

/** Every string in a parsed JSON value, keys included. */
function allStrings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) allStrings(x, out);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(k), allStrings(x, out);
  return out;
}

describe('lone surrogates over HTTP', () => {
  let t: TestServer;
  let alice: TestUser;
  before(async () => {
    t = createTestServer();
    alice = await registerUser(t.app, 'alice');
  });
  after(() => t.close());

  const post = (path: string, text: string) => {
    const { body, type } = rawJson(text);
    return request(t.app).post(path).set(alice.auth).type(type).send(body);
  };

  test('a conversation title: one U+FFFD per lone surrogate, in the response and in the row', async () => {
    // A lone high, a lone low, and a reversed pair (low then high: two lone surrogates); a real pair stays.
    const res = await post('/api/conversations', String.raw`{"title":"a\ud800b\udc00c\udc00\ud800d\ud83d\ude00"}`);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const expected = 'a\uFFFDb\uFFFDc\uFFFD\uFFFDd\u{1F600}';
    assert.equal(res.body.title, expected);
    assert.equal(t.repos.conversations.findForUser(res.body.id, alice.id)?.title, expected);
    const read = await request(t.app).get(`/api/conversations/${res.body.id}`).set(alice.auth);
    assert.equal(read.body.title, expected);
  });

  test('a feedback comment: the response, the stored row and a later read agree', async () => {
    const c = await post('/api/conversations', '{"title":"votes"}');
    assert.equal(c.status, 201);
    const answer = { id: randomUUID(), conversationId: c.body.id as string, parentId: null, role: 'assistant' as const, content: 'hi', status: 'complete' as const,
      finishReason: 'eos' as const, modelName: 'test', userModelVersion: null, sampling: null, seed: 1, createdAt: 1 };
    t.repos.conversations.insertMessage(answer);
    const { body, type } = rawJson(String.raw`{"value":"down","comment":"too \udfff long"}`);
    const res = await request(t.app).put(`/api/messages/${answer.id}/feedback`).set(alice.auth).type(type).send(body);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.comment, 'too \uFFFD long');
    const stored = t.db.prepare<[string], { comment: string }>('SELECT comment FROM feedback WHERE message_id = ?').get(answer.id);
    assert.equal(stored?.comment, 'too \uFFFD long');
    const read = await request(t.app).get(`/api/messages/${answer.id}/feedback`).set(alice.auth);
    assert.equal(read.body.comment, 'too \uFFFD long');
  });

  test('a lone surrogate in a key: refused by the strict schema, and the error that names it is well formed', async () => {
    const res = await post('/api/conversations', String.raw`{"title":"x","k\ud800":1}`);
    const error = assertError(res, 400, 'validation_failed');
    assert.match(error.message, /k\uFFFD/);
    for (const s of allStrings(res.body)) assert.ok(s.isWellFormed(), `ill-formed string in the response: ${JSON.stringify(s)}`);
  });

  test('a "__proto__" key next to an ill-formed one stays a plain (refused) key, not a prototype', async () => {
    const res = await post('/api/conversations', String.raw`{"__proto__":{"title":"polluted"},"\ud800":1}`);
    const error = assertError(res, 400, 'validation_failed');
    assert.match(error.message, /__proto__/);
    assert.equal(({} as Record<string, unknown>).title, undefined);
  });
});
