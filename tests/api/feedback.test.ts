// Thumbs on answers over HTTP: vote, change, withdraw; preference pairs from opposite votes on
// sibling answers; someone else's message is not found; malformed votes are 400s.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import type { MessageRecord } from '../../server/db/conversations.ts';
import { conversationDetailSchema, feedbackSchema } from '../../server/http/schemas.ts';
import { assertError, createTestServer, registerUser, tableCounts, type TestServer, type TestUser } from '../helpers/api-server.ts';

describe('feedback', () => {
  let clock = Date.parse('2030-06-01T12:00:00Z');
  let t: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  before(async () => {
    t = createTestServer({ now: () => (clock += 1000) });
    alice = await registerUser(t.app, 'alice');
    bob = await registerUser(t.app, 'bob');
  });
  after(() => t.close());

  /** A conversation: q0 → r0 → q1 → answers (siblings under q1). */
  async function conversationWithSiblings(user: TestUser, answers: string[]) {
    const c = await request(t.app).post('/api/conversations').set(user.auth).send({ title: 'votes' });
    assert.equal(c.status, 201);
    let at = 0;
    const msg = (parentId: string | null, role: 'user' | 'assistant', content: string): MessageRecord => {
      const m: MessageRecord = {
        id: randomUUID(),
        conversationId: c.body.id,
        parentId,
        role,
        content,
        status: 'complete',
        finishReason: role === 'assistant' ? 'eos' : null,
        modelName: role === 'assistant' ? 'test' : null,
        userModelVersion: null,
        sampling: null,
        seed: role === 'assistant' ? 1 : null,
        createdAt: ++at,
      };
      t.repos.conversations.insertMessage(m);
      return m;
    };
    const q0 = msg(null, 'user', 'Hi');
    const r0 = msg(q0.id, 'assistant', 'Hello! How can I help?');
    const q1 = msg(r0.id, 'user', 'Tell me a joke');
    return { conversationId: c.body.id as string, q0, r0, q1, answers: answers.map((a) => msg(q1.id, 'assistant', a)) };
  }

  const put = (user: TestUser, id: string, body: unknown) => request(t.app).put(`/api/messages/${id}/feedback`).set(user.auth).send(body as object);

  test('vote, read, change (reasons and comment replaced, created time kept), withdraw', async () => {
    const { answers } = await conversationWithSiblings(alice, ['A joke.']);
    const id = answers[0]!.id;
    const up = await put(alice, id, { value: 'up', reasons: ['helpful', 'clear', 'helpful'], comment: '  nice one  ' });
    assert.equal(up.status, 200, JSON.stringify(up.body));
    const first = feedbackSchema.parse(up.body);
    assert.deepEqual({ ...first, createdAt: undefined, updatedAt: undefined }, { messageId: id, value: 'up', reasons: ['helpful', 'clear'], comment: 'nice one', preferencePairs: 0, createdAt: undefined, updatedAt: undefined });
    assert.deepEqual((await request(t.app).get(`/api/messages/${id}/feedback`).set(alice.auth)).body, up.body);

    const down = await put(alice, id, { value: 'down' });
    assert.equal(down.status, 200);
    assert.equal(down.body.value, 'down');
    assert.deepEqual(down.body.reasons, []);
    assert.equal(down.body.comment, null);
    assert.equal(down.body.createdAt, first.createdAt);
    assert.ok(down.body.updatedAt > first.updatedAt);
    assert.equal(tableCounts(t.db, { feedback: `message_id = '${id}'` }).feedback, 1, 'still one row');

    assert.equal((await request(t.app).delete(`/api/messages/${id}/feedback`).set(alice.auth)).status, 204);
    assertError(await request(t.app).get(`/api/messages/${id}/feedback`).set(alice.auth), 404, 'no_feedback');
    assertError(await request(t.app).delete(`/api/messages/${id}/feedback`).set(alice.auth), 404, 'no_feedback');
  });

  test("GET /api/conversations/:id carries the caller's own vote on each message, and follows changes", async () => {
    const { conversationId, q1, answers } = await conversationWithSiblings(alice, ['first', 'second', 'third']);
    assert.equal((await put(alice, answers[0]!.id, { value: 'up', reasons: ['helpful'], comment: 'good' })).status, 200);
    assert.equal((await put(alice, answers[1]!.id, { value: 'down' })).status, 200);
    const votesOf = async () => {
      const res = await request(t.app).get(`/api/conversations/${conversationId}`).set(alice.auth);
      assert.equal(res.status, 200);
      const detail = conversationDetailSchema.parse(res.body);
      return new Map(detail.messages.map((m) => [m.id, m.feedback]));
    };
    let votes = await votesOf();
    assert.equal(votes.size, 6);
    assert.deepEqual({ ...votes.get(answers[0]!.id), updatedAt: undefined }, { value: 'up', reasons: ['helpful'], comment: 'good', updatedAt: undefined });
    assert.equal(votes.get(answers[1]!.id)?.value, 'down');
    assert.equal(votes.get(answers[2]!.id), null);
    assert.equal(votes.get(q1.id), null);

    assert.equal((await request(t.app).delete(`/api/messages/${answers[0]!.id}/feedback`).set(alice.auth)).status, 204);
    votes = await votesOf();
    assert.equal(votes.get(answers[0]!.id), null);
    assert.equal(votes.get(answers[1]!.id)?.value, 'down');
  });

  test('up and down on sibling answers make preference pairs that follow the votes', async () => {
    const { conversationId, answers } = await conversationWithSiblings(alice, ['Joke one', 'Joke two', 'Joke three']);
    const [a1, a2, a3] = answers as [MessageRecord, MessageRecord, MessageRecord];
    const pairs = () =>
      t.repos.preferencePairs
        .listForUser(alice.id)
        .filter((p) => [a1.id, a2.id, a3.id].includes(p.chosenMessage ?? ''))
        .map((p) => [p.chosen, p.rejected])
        .sort();

    assert.equal((await put(alice, a1.id, { value: 'up' })).body.preferencePairs, 0);
    assert.deepEqual(pairs(), []);
    assert.equal((await put(alice, a2.id, { value: 'down', reasons: ['unhelpful'] })).body.preferencePairs, 1);
    const [pair] = t.repos.preferencePairs.listForUser(alice.id).filter((p) => p.chosenMessage === a1.id);
    assert.ok(pair);
    assert.equal(pair.source, 'regenerate');
    assert.equal(pair.rejectedMessage, a2.id);
    assert.deepEqual(pair.prompt, [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello! How can I help?' },
      { role: 'user', content: 'Tell me a joke' },
    ]);

    assert.equal((await put(alice, a3.id, { value: 'down' })).body.preferencePairs, 1);
    assert.deepEqual(pairs(), [['Joke one', 'Joke three'], ['Joke one', 'Joke two']]);
    assert.equal((await request(t.app).get(`/api/messages/${a1.id}/feedback`).set(alice.auth)).body.preferencePairs, 2);

    // Re-voting the same way does not duplicate pairs.
    await put(alice, a1.id, { value: 'up', comment: 'still best' });
    assert.deepEqual(pairs(), [['Joke one', 'Joke three'], ['Joke one', 'Joke two']]);

    // Changing one's mind re-derives: all down → no pairs; then a2 up beats a1 and a3.
    await put(alice, a1.id, { value: 'down' });
    assert.deepEqual(pairs(), []);
    assert.equal((await put(alice, a2.id, { value: 'up' })).body.preferencePairs, 2);
    assert.deepEqual(pairs(), [['Joke two', 'Joke one'], ['Joke two', 'Joke three']]);

    // Withdrawing a vote withdraws its pairs.
    assert.equal((await request(t.app).delete(`/api/messages/${a2.id}/feedback`).set(alice.auth)).status, 204);
    assert.deepEqual(pairs(), []);

    // Deleting the conversation deletes votes and pairs with it.
    await put(alice, a2.id, { value: 'up' });
    assert.equal(pairs().length, 2);
    assert.equal((await request(t.app).delete(`/api/conversations/${conversationId}`).set(alice.auth)).status, 204);
    assert.deepEqual(pairs(), []);
    assert.equal(tableCounts(t.db, { feedback: `message_id IN ('${a1.id}', '${a2.id}', '${a3.id}')` }).feedback, 0);
  });

  test("someone else's message, an unknown one and a user message are refused; nothing is written", async () => {
    const { answers, q1 } = await conversationWithSiblings(alice, ['Mine']);
    const id = answers[0]!.id;
    const before = tableCounts(t.db);
    assertError(await put(bob, id, { value: 'up' }), 404, 'not_found');
    assertError(await request(t.app).get(`/api/messages/${id}/feedback`).set(bob.auth), 404, 'not_found');
    assertError(await request(t.app).delete(`/api/messages/${id}/feedback`).set(bob.auth), 404, 'not_found');
    assertError(await put(alice, randomUUID(), { value: 'up' }), 404, 'not_found');
    const notAnswer = assertError(await put(alice, q1.id, { value: 'up' }), 400, 'not_an_answer');
    assert.equal(notAnswer.details.role, 'user');
    assertError(await request(t.app).put(`/api/messages/${id}/feedback`).send({ value: 'up' }), 401);
    assert.deepEqual(tableCounts(t.db), before);

    // Bob's vote on alice's answer would have been a 404 even after alice voted.
    await put(alice, id, { value: 'up' });
    assertError(await request(t.app).get(`/api/messages/${id}/feedback`).set(bob.auth), 404, 'not_found');
  });

  test('malformed votes are 400s naming the field', async () => {
    const { answers } = await conversationWithSiblings(alice, ['Meh']);
    const id = answers[0]!.id;
    const cases: [unknown, string][] = [
      [{}, 'value'],
      [{ value: 'meh' }, 'value'],
      [{ value: 'up', reasons: ['nope'] }, 'reasons.0'],
      [{ value: 'up', reasons: 'helpful' }, 'reasons'],
      [{ value: 'up', comment: 'x'.repeat(2001) }, 'comment'],
      [{ value: 'up', extra: true }, ''],
    ];
    for (const [body, path] of cases) {
      const e = assertError(await put(alice, id, body), 400, 'validation_failed');
      const issues = e.details.issues as { in: string; path: string }[];
      assert.ok(issues.some((i) => i.in === 'body' && i.path === path), `${JSON.stringify(body)} → ${JSON.stringify(issues)}`);
    }
    assertError(await request(t.app).put(`/api/messages/not-a-uuid/feedback`).set(alice.auth).send({ value: 'up' }), 400, 'validation_failed');
    assertError(await request(t.app).put(`/api/messages/${id}/feedback`).set(alice.auth).set('content-type', 'application/json').send('{oops'), 400, 'invalid_json');
    assertError(await request(t.app).get(`/api/messages/${id}/feedback`).set(alice.auth), 404, 'no_feedback');
  });
});
