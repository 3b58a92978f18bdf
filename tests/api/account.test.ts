// Account deletion removes every row the user owns (checked table by table) and nothing of anyone
// else's; the first admin is bootstrapped once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import type { Repositories } from '../../server/db/repositories.ts';
import { assertError, createTestServer, registerUser, tableCounts, type TestServer, type TestUser } from '../helpers/api-server.ts';

/** Gives a user a bit of everything: conversations, a message tree, feedback, a comparison, pairs, a key. */
async function populate(t: TestServer, u: TestUser, versionId: string): Promise<void> {
  assert.equal((await request(t.app).post('/api/me/api-keys').set(u.auth).send({ name: 'k' })).status, 201);
  assert.equal((await request(t.app).post('/api/auth/login').send({ username: u.username, password: 'correct horse battery' })).status, 200);
  const c = await request(t.app).post('/api/conversations').set(u.auth).send({ title: 'data' });
  await request(t.app).post('/api/conversations').set(u.auth).send({ title: 'more data' });
  const repos: Repositories = t.repos;
  const base = { conversationId: c.body.id as string, finishReason: null, modelName: 'default', sampling: { temperature: 0.7 }, seed: 1, createdAt: Date.now() };
  const q = { ...base, id: randomUUID(), parentId: null, role: 'user' as const, content: 'q', status: 'complete' as const, userModelVersion: null };
  const a = { ...base, id: randomUUID(), parentId: q.id, role: 'assistant' as const, content: 'a', status: 'complete' as const, userModelVersion: versionId };
  const b = { ...a, id: randomUUID(), content: 'b' };
  for (const m of [q, a, b]) repos.conversations.insertMessage(m);
  repos.feedback.upsert({ messageId: a.id, userId: u.id, value: 'down', reasons: ['too long'], comment: 'meh', createdAt: 1, updatedAt: 1 });
  repos.comparisons.insert({ id: randomUUID(), userId: u.id, conversationId: c.body.id, messageA: a.id, messageB: b.id, choice: 'B', createdAt: 1, decidedAt: 2 });
  const prompt = [{ role: 'user', content: 'q' }];
  repos.preferencePairs.insert({ id: randomUUID(), userId: u.id, prompt, chosen: 'b', rejected: 'a', source: 'ab', chosenMessage: b.id, rejectedMessage: a.id, createdAt: 3 });
  repos.preferencePairs.insert({ id: randomUUID(), userId: u.id, prompt, chosen: 'x', rejected: 'y', source: 'regenerate', chosenMessage: null, rejectedMessage: null, createdAt: 4 });
}

/** Rows of every table that belong to the user (directly or through a conversation/message). */
function ownedRows(t: TestServer, userId: string): Record<string, number> {
  const convs = `(SELECT id FROM conversations WHERE user_id = '${userId}')`;
  return tableCounts(t.db, {
    users: `id = '${userId}'`,
    sessions: `user_id = '${userId}'`,
    api_keys: `user_id = '${userId}'`,
    conversations: `user_id = '${userId}'`,
    messages: `conversation_id IN ${convs}`,
    feedback: `user_id = '${userId}'`,
    comparisons: `user_id = '${userId}'`,
    preference_pairs: `user_id = '${userId}'`,
    // Global tables: counted whole, they must not change.
  });
}

describe('account deletion', () => {
  let t: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  const versionId = randomUUID();
  before(async () => {
    t = createTestServer();
    t.repos.userModels.insertVersion({ id: versionId, createdAt: 1, publishedAt: 2, status: 'published', config: {}, metrics: {}, blob: null });
    t.repos.userModels.insertJob({ id: randomUUID(), status: 'succeeded', createdAt: 1, startedAt: 1, finishedAt: 2, error: null, progress: {} });
    alice = await registerUser(t.app, 'alice');
    bob = await registerUser(t.app, 'bob');
    await populate(t, alice, versionId);
    await populate(t, bob, versionId);
  });
  after(() => t.close());

  test('the fixture gives the user rows in every per-user table', () => {
    const owned = ownedRows(t, alice.id);
    for (const table of ['users', 'sessions', 'api_keys', 'conversations', 'messages', 'feedback', 'comparisons', 'preference_pairs']) {
      assert.ok(owned[table]! > 0, `alice has no ${table} rows`);
    }
  });

  test('a wrong password or a missing body → refused, and nothing is deleted', async () => {
    const before = tableCounts(t.db);
    assertError(await request(t.app).delete('/api/me').set(alice.auth).send({ password: 'not the password' }), 403, 'wrong_password');
    assertError(await request(t.app).delete('/api/me').set(alice.auth), 400, 'validation_failed');
    assertError(await request(t.app).delete('/api/me').send({ password: 'correct horse battery' }), 401);
    assert.deepEqual(tableCounts(t.db), before);
  });

  test("DELETE /api/me with the password removes all of the user's rows and nobody else's", async () => {
    const bobBefore = ownedRows(t, bob.id);
    const res = await request(t.app).delete('/api/me').set(alice.auth).send({ password: 'correct horse battery' });
    assert.equal(res.status, 204);
    assert.match(String(res.headers['set-cookie']), /attune_session=;/);

    const left = ownedRows(t, alice.id);
    for (const [table, n] of Object.entries(left)) {
      if (['users', 'sessions', 'api_keys', 'conversations', 'messages', 'feedback', 'comparisons', 'preference_pairs'].includes(table)) {
        assert.equal(n, 0, `${table} still has ${n} of alice's rows`);
      }
    }
    assert.deepEqual(ownedRows(t, bob.id), bobBefore);
    // Shared personalization tables are not the user's: they stay.
    assert.equal(left.user_model_versions, 1);
    assert.equal(left.training_jobs, 1);

    assertError(await request(t.app).get('/api/me').set(alice.auth), 401, 'invalid_token');
    assertError(await request(t.app).post('/api/auth/login').send({ username: 'alice', password: 'correct horse battery' }), 401, 'invalid_credentials');
    // The name is free again.
    assert.equal((await request(t.app).post('/api/auth/register').send({ username: 'alice', password: 'a new password' })).status, 201);
  });
});

describe('first admin', () => {
  test('created once with ATTUNE_ADMIN_PASSWORD; the last admin cannot delete their account', async () => {
    const t = createTestServer({ env: { ATTUNE_ADMIN_PASSWORD: 'admin password 1' } });
    try {
      assert.deepEqual(await t.services.auth.bootstrapAdmin(), { created: true, username: 'admin', generatedPassword: null });
      assert.deepEqual(await t.services.auth.bootstrapAdmin(), { created: false });
      const login = await request(t.app).post('/api/auth/login').send({ username: 'admin', password: 'admin password 1' });
      assert.equal(login.status, 200);
      assert.equal(login.body.user.role, 'admin');
      assertError(await request(t.app).post('/api/auth/register').send({ username: 'ADMIN', password: 'squatting it' }), 409, 'username_taken');
      const del = await request(t.app).delete('/api/me').set('Authorization', `Bearer ${login.body.token}`).send({ password: 'admin password 1' });
      assertError(del, 409, 'last_admin');
    } finally {
      t.close();
    }
  });

  test('without ATTUNE_ADMIN_PASSWORD a random password is generated, returned once, and works', async () => {
    const t = createTestServer();
    try {
      const boot = await t.services.auth.bootstrapAdmin();
      assert.ok(boot.created && boot.generatedPassword && boot.generatedPassword.length >= 20);
      const login = await request(t.app).post('/api/auth/login').send({ username: 'admin', password: boot.generatedPassword });
      assert.equal(login.status, 200);
      assert.deepEqual(await t.services.auth.bootstrapAdmin(), { created: false });
    } finally {
      t.close();
    }
  });
});
