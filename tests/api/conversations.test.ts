// Conversations over HTTP: create, list with cursor paging, get with messages, rename, delete, and
// the rule that another user's conversation is indistinguishable from a missing one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { conversationDetailSchema, conversationPageSchema, conversationSchema } from '../../server/http/schemas.ts';
import { assertError, createTestServer, registerUser, tableCounts, type TestServer, type TestUser } from '../helpers/api-server.ts';

describe('conversations', () => {
  let clock = Date.parse('2030-06-01T12:00:00Z');
  let t: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  before(async () => {
    // A clock that moves 1 s per read keeps "most recently active first" unambiguous.
    t = createTestServer({ now: () => (clock += 1000) });
    alice = await registerUser(t.app, 'alice');
    bob = await registerUser(t.app, 'bob');
  });
  after(() => t.close());

  test('create with and without a title; get; rename moves it to the top; delete → 404 afterwards', async () => {
    const untitled = await request(t.app).post('/api/conversations').set(alice.auth).send({});
    assert.equal(untitled.status, 201);
    assert.equal(conversationSchema.parse(untitled.body).title, 'New conversation');
    const titled = await request(t.app).post('/api/conversations').set(alice.auth).send({ title: '  Trip planning  ' });
    assert.equal(titled.status, 201);
    assert.equal(titled.body.title, 'Trip planning');

    const got = await request(t.app).get(`/api/conversations/${titled.body.id}`).set(alice.auth);
    assert.equal(got.status, 200);
    assert.deepEqual(conversationDetailSchema.parse(got.body), { ...titled.body, messages: [], comparisons: [] });

    const renamed = await request(t.app).patch(`/api/conversations/${untitled.body.id}`).set(alice.auth).send({ title: 'Renamed' });
    assert.equal(renamed.status, 200);
    assert.equal(renamed.body.title, 'Renamed');
    assert.ok(renamed.body.updatedAt > untitled.body.updatedAt);
    const list = await request(t.app).get('/api/conversations').set(alice.auth);
    assert.deepEqual(
      list.body.items.slice(0, 2).map((c: { id: string }) => c.id),
      [untitled.body.id, titled.body.id],
    );

    assert.equal((await request(t.app).delete(`/api/conversations/${titled.body.id}`).set(alice.auth)).status, 204);
    assertError(await request(t.app).get(`/api/conversations/${titled.body.id}`).set(alice.auth), 404, 'not_found');
    assertError(await request(t.app).delete(`/api/conversations/${titled.body.id}`).set(alice.auth), 404, 'not_found');
  });

  test('get returns every message of the tree with its provenance; delete removes messages and what hangs off them', async () => {
    const c = await request(t.app).post('/api/conversations').set(alice.auth).send({ title: 'with messages' });
    const convId: string = c.body.id;
    const repo = t.repos.conversations;
    const base = { conversationId: convId, finishReason: null, modelName: null, userModelVersion: null, sampling: null, seed: null };
    const q = { ...base, id: randomUUID(), parentId: null, role: 'user' as const, content: 'Hello?', status: 'complete' as const, createdAt: 1 };
    const a1 = {
      ...base,
      id: randomUUID(),
      parentId: q.id,
      role: 'assistant' as const,
      content: 'Hi!',
      status: 'complete' as const,
      finishReason: 'eos',
      modelName: 'default',
      sampling: { temperature: 0.7, topP: 0.95 },
      seed: 1234,
      createdAt: 2,
    };
    const a2 = { ...a1, id: randomUUID(), content: 'Hel', status: 'partial' as const, finishReason: 'abort', seed: 99, createdAt: 3 };
    for (const m of [q, a1, a2]) repo.insertMessage(m);
    t.repos.feedback.upsert({ messageId: a1.id, userId: alice.id, value: 'up', reasons: ['clear'], comment: null, createdAt: 4, updatedAt: 4 });

    const got = await request(t.app).get(`/api/conversations/${convId}`).set(alice.auth);
    assert.equal(got.status, 200);
    const detail = conversationDetailSchema.parse(got.body);
    assert.deepEqual(
      detail.messages.map((m) => [m.id, m.parentId, m.role, m.content, m.status, m.seed]),
      [
        [q.id, null, 'user', 'Hello?', 'complete', null],
        [a1.id, q.id, 'assistant', 'Hi!', 'complete', 1234],
        [a2.id, q.id, 'assistant', 'Hel', 'partial', 99],
      ],
    );
    assert.deepEqual(detail.messages[1]!.sampling, { temperature: 0.7, topP: 0.95 });
    assert.equal(detail.messages[1]!.finishReason, 'eos');

    assert.equal((await request(t.app).delete(`/api/conversations/${convId}`).set(alice.auth)).status, 204);
    const left = tableCounts(t.db, { messages: `conversation_id = '${convId}'`, feedback: `message_id IN ('${a1.id}', '${a2.id}')` });
    assert.equal(left.messages, 0);
    assert.equal(left.feedback, 0);
  });

  test('the list pages newest first with a cursor, without gaps or repeats', async () => {
    const carol = await registerUser(t.app, 'carol');
    const made: string[] = [];
    for (let i = 0; i < 7; i++) made.push((await request(t.app).post('/api/conversations').set(carol.auth).send({ title: `c${i}` })).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: Record<string, string | number> = cursor ? { limit: 3, cursor } : { limit: 3 };
      const res: request.Response = await request(t.app).get('/api/conversations').query(query).set(carol.auth);
      assert.equal(res.status, 200);
      const page = conversationPageSchema.parse(res.body);
      assert.ok(page.items.length <= 3);
      seen.push(...page.items.map((c) => c.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...made].reverse());

    const all = await request(t.app).get('/api/conversations').set(carol.auth);
    assert.equal(all.body.items.length, 7);
    assert.equal(all.body.nextCursor, null);

    for (const q of [{ limit: 0 }, { limit: 101 }, { limit: 'many' }, { cursor: 'garbage!' }, { sort: 'asc' }]) {
      assertError(await request(t.app).get('/api/conversations').query(q).set(carol.auth), 400, 'validation_failed');
    }
  });

  test('search (q) matches titles and message text, case-insensitively, pages with a cursor, escapes wildcards and never crosses users', async () => {
    const dave = await registerUser(t.app, 'dave');
    const mk = async (title: string, texts: string[]) => {
      const c = await request(t.app).post('/api/conversations').set(dave.auth).send({ title });
      let parentId: string | null = null;
      for (const [i, content] of texts.entries()) {
        const id = randomUUID();
        t.repos.conversations.insertMessage({
          id, conversationId: c.body.id, parentId, role: i % 2 ? 'assistant' : 'user', content, status: 'complete',
          finishReason: null, modelName: null, userModelVersion: null, sampling: null, seed: null, createdAt: i + 1,
        });
        parentId = id;
      }
      return c.body.id as string;
    };
    const garden = await mk('Garden', ['How deep should I plant TOMATO seeds?', 'About 6 mm deep.']);
    const tomatoTitle = await mk('tomato soup', ['Any recipe?']);
    const percent = await mk('Rates', ['Is 100% a lot?']);
    await mk('Other', ['Nothing to see here']);
    // Bob's conversation mentions tomatoes too, and must never show up for Dave.
    const bobs = await request(t.app).post('/api/conversations').set(bob.auth).send({ title: 'tomato plans' });
    const ids = async (query: Record<string, string | number>) => {
      const res = await request(t.app).get('/api/conversations').query(query).set(dave.auth);
      assert.equal(res.status, 200);
      return conversationPageSchema.parse(res.body);
    };
    assert.deepEqual((await ids({ q: 'tomato' })).items.map((c) => c.id), [tomatoTitle, garden]);
    assert.deepEqual((await ids({ q: '  6 MM  ' })).items.map((c) => c.id), [garden]);
    assert.deepEqual((await ids({ q: '%' })).items.map((c) => c.id), [percent], '% is a literal, not a wildcard');
    assert.deepEqual((await ids({ q: '_' })).items.map((c) => c.id), []);
    assert.deepEqual((await ids({ q: 'zucchini' })).items, []);
    const first = await ids({ q: 'tomato', limit: 1 });
    assert.deepEqual(first.items.map((c) => c.id), [tomatoTitle]);
    assert.ok(first.nextCursor);
    const second = await ids({ q: 'tomato', limit: 1, cursor: first.nextCursor! });
    assert.deepEqual(second.items.map((c) => c.id), [garden]);
    assert.equal(second.nextCursor, null);
    assert.ok(!(await ids({ q: 'plans' })).items.some((c) => c.id === bobs.body.id));
    for (const q of [{ q: '' }, { q: '   ' }, { q: 'x'.repeat(201) }]) {
      assertError(await request(t.app).get('/api/conversations').query(q).set(dave.auth), 400, 'validation_failed');
    }
  });

  test('bad bodies and ids → 400, and nothing is written', async () => {
    const c = await request(t.app).post('/api/conversations').set(alice.auth).send({ title: 'keep' });
    const before = tableCounts(t.db);
    assertError(await request(t.app).post('/api/conversations').set(alice.auth).send({ title: '' }), 400, 'validation_failed');
    assertError(await request(t.app).post('/api/conversations').set(alice.auth).send({ title: 'x'.repeat(201) }), 400, 'validation_failed');
    assertError(await request(t.app).post('/api/conversations').set(alice.auth).send({ title: 7 }), 400, 'validation_failed');
    assertError(await request(t.app).patch(`/api/conversations/${c.body.id}`).set(alice.auth).send({}), 400, 'validation_failed');
    assertError(await request(t.app).patch(`/api/conversations/${c.body.id}`).set(alice.auth).send({ title: '   ' }), 400, 'validation_failed');
    const badId = assertError(await request(t.app).get('/api/conversations/123').set(alice.auth), 400, 'validation_failed');
    assert.equal((badId.details.issues as Array<{ in: string }>)[0]!.in, 'params');
    assert.deepEqual(tableCounts(t.db), before);
    assert.equal((await request(t.app).get(`/api/conversations/${c.body.id}`).set(alice.auth)).body.title, 'keep');
  });

  test("another user's conversation is 404 on every route, exactly like a missing one, and stays untouched", async () => {
    const mine = await request(t.app).post('/api/conversations').set(alice.auth).send({ title: 'private' });
    const id: string = mine.body.id;
    const missing = randomUUID();
    for (const target of [id, missing]) {
      const attempts = [
        request(t.app).get(`/api/conversations/${target}`).set(bob.auth),
        request(t.app).patch(`/api/conversations/${target}`).set(bob.auth).send({ title: 'hijacked' }),
        request(t.app).delete(`/api/conversations/${target}`).set(bob.auth),
      ];
      for (const res of await Promise.all(attempts)) {
        const err = assertError(res, 404, 'not_found');
        assert.equal(err.message, 'no such conversation');
      }
    }
    const bobs = await request(t.app).get('/api/conversations').set(bob.auth);
    assert.ok(!bobs.body.items.some((c: { id: string }) => c.id === id));
    const still = await request(t.app).get(`/api/conversations/${id}`).set(alice.auth);
    assert.equal(still.status, 200);
    assert.equal(still.body.title, 'private');
    assert.equal(still.body.updatedAt, mine.body.updatedAt);
  });

  test('every conversation route needs credentials → 401', async () => {
    const id = randomUUID();
    for (const res of [
      await request(t.app).get('/api/conversations'),
      await request(t.app).post('/api/conversations').send({}),
      await request(t.app).get(`/api/conversations/${id}`),
      await request(t.app).patch(`/api/conversations/${id}`).send({ title: 'x' }),
      await request(t.app).delete(`/api/conversations/${id}`),
    ]) {
      assertError(res, 401);
    }
  });
});
