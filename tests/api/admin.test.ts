// The admin API on a real SQLite file: who may call it, users with their activity, disable/enable and
// promote/demote with the last-admin rule, feedback statistics by day and user, the JSONL preference
// export in TRL's format; and every user's own data export.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import request from 'supertest';
import type { MessageRecord } from '../../server/db/conversations.ts';
import type { PreferencePairRecord } from '../../server/db/preference-pairs.ts';
import { adminUserPageSchema, adminUserSchema, feedbackStatsSchema, userDataExportSchema } from '../../server/http/schemas-admin.ts';
import type { Engine } from '../../server/lm/engine.ts';
import { assertError, createTestServer, registerUser, tableCounts, type TestServer, type TestUser } from '../helpers/api-server.ts';
import { connectClient, connected, loadTestEngine, startRealtimeServer } from '../helpers/realtime-server.ts';

const DAY = 86_400_000;
const NOW = Date.parse('2030-06-15T12:00:00Z');
const PASSWORD = 'correct horse battery';

describe('admin API', () => {
  let t: TestServer;
  let admin: TestUser;
  let alice: TestUser;
  let bob: TestUser;
  let aliceKey = '';
  let adminKey = '';
  let aliceConversation = '';

  const login = async (username: string, password = PASSWORD) => request(t.app).post('/api/auth/login').send({ username, password });

  /** A conversation with a question and two sibling answers; returns the answers. */
  async function conversation(user: TestUser, title: string): Promise<{ id: string; a: MessageRecord; b: MessageRecord }> {
    const c = await request(t.app).post('/api/conversations').set(user.auth).send({ title });
    assert.equal(c.status, 201);
    const base = { conversationId: c.body.id as string, finishReason: null, modelName: 'test', sampling: null, seed: 1, userModelVersion: null, status: 'complete' as const, createdAt: NOW };
    const q: MessageRecord = { ...base, id: randomUUID(), parentId: null, role: 'user', content: `${title}?` };
    const a: MessageRecord = { ...base, id: randomUUID(), parentId: q.id, role: 'assistant', content: `${title}: answer A` };
    const b: MessageRecord = { ...a, id: randomUUID(), content: `${title}: answer B` };
    for (const m of [q, a, b]) t.repos.conversations.insertMessage(m);
    return { id: c.body.id, a, b };
  }

  const pair = (userId: string, createdAt: number, source: 'ab' | 'regenerate', n: number): PreferencePairRecord => ({
    id: randomUUID(),
    userId,
    prompt: [{ role: 'system', content: 'be brief' }, { role: 'user', content: `question ${n}` }],
    chosen: `good ${n}`,
    rejected: `bad ${n}`,
    source,
    chosenMessage: null,
    rejectedMessage: null,
    createdAt,
  });

  before(async () => {
    t = createTestServer({ env: { ATTUNE_ADMIN_PASSWORD: 'admin password 1' }, now: () => NOW });
    await t.services.auth.bootstrapAdmin();
    const res = await login('admin', 'admin password 1');
    admin = { id: res.body.user.id, username: 'admin', token: res.body.token, auth: { Authorization: `Bearer ${res.body.token}` } };
    alice = await registerUser(t.app, 'alice');
    bob = await registerUser(t.app, 'bob');
    aliceKey = (await request(t.app).post('/api/me/api-keys').set(alice.auth).send({})).body.key;
    adminKey = (await request(t.app).post('/api/me/api-keys').set(admin.auth).send({})).body.key;

    // Alice: two conversations; an up and a down on sibling answers (a 'regenerate' pair through the
    // real feedback service), an A/B choice, and pairs on earlier days.
    const c1 = await conversation(alice, 'tea');
    aliceConversation = c1.id;
    await conversation(alice, 'coffee');
    assert.equal((await request(t.app).put(`/api/messages/${c1.a.id}/feedback`).set(alice.auth).send({ value: 'up' })).status, 200);
    assert.equal((await request(t.app).put(`/api/messages/${c1.b.id}/feedback`).set(alice.auth).send({ value: 'down' })).body.preferencePairs, 1);
    t.repos.comparisons.insert({ id: randomUUID(), userId: alice.id, conversationId: c1.id, messageA: c1.a.id, messageB: c1.b.id, choice: 'B', createdAt: NOW - DAY, decidedAt: NOW - DAY });
    t.repos.preferencePairs.insert(pair(alice.id, NOW - DAY, 'ab', 1));
    t.repos.preferencePairs.insert(pair(alice.id, NOW - 3 * DAY, 'ab', 2));
    t.repos.preferencePairs.insert(pair(alice.id, NOW - 40 * DAY, 'ab', 3));
    // Bob: one conversation, one down vote, an undecided comparison.
    const c2 = await conversation(bob, 'weather');
    assert.equal((await request(t.app).put(`/api/messages/${c2.a.id}/feedback`).set(bob.auth).send({ value: 'down' })).status, 200);
    t.repos.comparisons.insert({ id: randomUUID(), userId: bob.id, conversationId: c2.id, messageA: c2.a.id, messageB: c2.b.id, choice: null, createdAt: NOW, decidedAt: null });
  });
  after(() => t.close());

  const ROUTES: Array<[method: 'get' | 'patch', path: () => string, body?: object]> = [
    ['get', () => '/api/admin/users'],
    ['get', () => `/api/admin/users/${bob.id}`],
    ['patch', () => `/api/admin/users/${bob.id}`, { disabled: true }],
    ['get', () => '/api/admin/stats/feedback'],
    ['get', () => '/api/admin/export/preferences'],
  ];

  test('every admin route: 401 without credentials, 403 for a user (session or API key), nothing changes', async () => {
    const before = tableCounts(t.db);
    for (const [method, path, body] of ROUTES) {
      const where = `${method.toUpperCase()} ${path()}`;
      assertError(await request(t.app)[method](path()).send(body), 401, 'unauthorized');
      assertError(await request(t.app)[method](path()).set(alice.auth).send(body), 403, 'admin_required');
      const viaKey = await request(t.app)[method](path()).set('Authorization', `Bearer ${aliceKey}`).send(body);
      assert.equal(assertError(viaKey, 403).code, 'admin_required', where);
    }
    assert.deepEqual(tableCounts(t.db), before);
    assert.equal(t.repos.users.findById(bob.id)!.disabled, false);
    // An admin's API key is an admin credential.
    assert.equal((await request(t.app).get('/api/admin/users').set('Authorization', `Bearer ${adminKey}`)).status, 200);
  });

  test('users, a page at a time, each once, with counts of their activity', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: request.Response = await request(t.app).get('/api/admin/users').query(cursor ? { limit: 2, cursor } : { limit: 2 }).set(admin.auth);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const page = adminUserPageSchema.parse(res.body);
      assert.ok(page.items.length <= 2);
      assert.equal(page.total, 3);
      seen.push(...page.items.map((u) => u.username));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    assert.equal(pages, 2);
    assert.deepEqual([...seen].sort(), ['admin', 'alice', 'bob']);

    const a = adminUserSchema.parse((await request(t.app).get(`/api/admin/users/${alice.id}`).set(admin.auth)).body);
    assert.deepEqual(a.counts, { conversations: 2, messages: 6, feedback: 2, comparisons: 1, preferencePairs: 4 });
    assert.equal(a.role, 'user');
    assert.equal(a.disabled, false);
    assert.ok(!('passwordHash' in a) && !JSON.stringify(a).includes('argon2'));
    const b = adminUserSchema.parse((await request(t.app).get(`/api/admin/users/${bob.id}`).set(admin.auth)).body);
    assert.deepEqual(b.counts, { conversations: 1, messages: 3, feedback: 1, comparisons: 1, preferencePairs: 0 });

    assertError(await request(t.app).get(`/api/admin/users/${randomUUID()}`).set(admin.auth), 404, 'not_found');
    assertError(await request(t.app).get('/api/admin/users/not-a-uuid').set(admin.auth), 400);
    assertError(await request(t.app).get('/api/admin/users').query({ limit: 0 }).set(admin.auth), 400);
    assertError(await request(t.app).get('/api/admin/users').query({ cursor: 'garbage' }).set(admin.auth), 400);
    assertError(await request(t.app).get('/api/admin/users').query({ sort: 'name' }).set(admin.auth), 400);
  });

  test('disable: sessions end, API keys and login are refused; enable: the keys and login work again', async () => {
    const carol = await registerUser(t.app, 'carol');
    const key = (await request(t.app).post('/api/me/api-keys').set(carol.auth).send({})).body.key as string;
    const asKey = { Authorization: `Bearer ${key}` };
    const off = await request(t.app).patch(`/api/admin/users/${carol.id}`).set(admin.auth).send({ disabled: true });
    assert.equal(off.status, 200, JSON.stringify(off.body));
    assert.equal(off.body.disabled, true);
    assertError(await request(t.app).get('/api/me').set(carol.auth), 401, 'invalid_token');
    assertError(await request(t.app).get('/api/conversations').set(asKey), 403, 'account_disabled');
    assertError(await login('carol'), 403, 'account_disabled');
    assert.equal(tableCounts(t.db, { sessions: `user_id = '${carol.id}'` }).sessions, 0);

    const on = await request(t.app).patch(`/api/admin/users/${carol.id}`).set(admin.auth).send({ disabled: false });
    assert.equal(on.body.disabled, false);
    assert.equal((await request(t.app).get('/api/conversations').set(asKey)).status, 200);
    assertError(await request(t.app).get('/api/me').set(carol.auth), 401, 'invalid_token');
    assert.equal((await login('carol')).status, 200);
  });

  test('promote and demote; the last active admin cannot be demoted or disabled (409)', async () => {
    for (const body of [{ role: 'user' }, { disabled: true }, { role: 'user', disabled: true }]) {
      assertError(await request(t.app).patch(`/api/admin/users/${admin.id}`).set(admin.auth).send(body), 409, 'last_admin');
    }
    assert.equal(t.repos.users.findById(admin.id)!.role, 'admin');

    const dave = await registerUser(t.app, 'dave');
    assertError(await request(t.app).get('/api/admin/users').set(dave.auth), 403, 'admin_required');
    const up = await request(t.app).patch(`/api/admin/users/${dave.id}`).set(admin.auth).send({ role: 'admin' });
    assert.equal(up.status, 200);
    assert.equal(up.body.role, 'admin');
    assert.equal((await request(t.app).get('/api/admin/users').set(dave.auth)).status, 200, 'the new role applies to the live session');

    // With two admins, either may step down; then the other is the last one.
    const down = await request(t.app).patch(`/api/admin/users/${admin.id}`).set(dave.auth).send({ role: 'user' });
    assert.equal(down.body.role, 'user');
    assertError(await request(t.app).get('/api/admin/users').set(admin.auth), 403, 'admin_required');
    assertError(await request(t.app).patch(`/api/admin/users/${dave.id}`).set(dave.auth).send({ disabled: true }), 409, 'last_admin');
    assert.equal((await request(t.app).patch(`/api/admin/users/${admin.id}`).set(dave.auth).send({ role: 'admin' })).status, 200);
    assert.equal((await request(t.app).patch(`/api/admin/users/${dave.id}`).set(admin.auth).send({ role: 'user' })).status, 200);
    assert.equal(t.repos.users.countActiveAdmins(), 1);
  });

  test('bad updates → 400, an oversize body → 413, and nothing changes; an unknown user → 404', async () => {
    const before = t.repos.users.findById(bob.id);
    for (const body of [{}, { role: 'root' }, { disabled: 'yes' }, { role: 'admin', extra: 1 }]) {
      assertError(await request(t.app).patch(`/api/admin/users/${bob.id}`).set(admin.auth).send(body), 400, 'validation_failed');
    }
    const huge = await request(t.app).patch(`/api/admin/users/${bob.id}`).set(admin.auth).set('Content-Type', 'application/json').send(JSON.stringify({ role: 'admin', pad: 'x'.repeat(t.config.maxBodyBytes) }));
    assertError(huge, 413, 'payload_too_large');
    assert.deepEqual(t.repos.users.findById(bob.id), before);
    assertError(await request(t.app).patch(`/api/admin/users/${randomUUID()}`).set(admin.auth).send({ role: 'admin' }), 404);
  });

  test('feedback statistics: totals, every UTC day of the window, and per user', async () => {
    const res = await request(t.app).get('/api/admin/stats/feedback').query({ days: 7 }).set(admin.auth);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const stats = feedbackStatsSchema.parse(res.body);
    assert.equal(stats.until, '2030-06-16T00:00:00.000Z');
    assert.equal(stats.since, '2030-06-09T00:00:00.000Z');
    assert.deepEqual(
      stats.daily.map((d) => d.day),
      ['2030-06-09', '2030-06-10', '2030-06-11', '2030-06-12', '2030-06-13', '2030-06-14', '2030-06-15'],
    );
    const day = (d: string) => stats.daily.find((x) => x.day === d)!;
    // Today: alice up + down (one regenerate pair), bob down, bob's undecided comparison.
    assert.deepEqual(day('2030-06-15'), { day: '2030-06-15', up: 1, down: 2, comparisons: { A: 0, B: 0, tie: 0, both_bad: 0, undecided: 1 }, pairs: { ab: 0, regenerate: 1 } });
    assert.deepEqual(day('2030-06-14'), { day: '2030-06-14', up: 0, down: 0, comparisons: { A: 0, B: 1, tie: 0, both_bad: 0, undecided: 0 }, pairs: { ab: 1, regenerate: 0 } });
    assert.deepEqual(day('2030-06-12').pairs, { ab: 1, regenerate: 0 });
    assert.deepEqual(stats.totals, { up: 1, down: 2, comparisons: { A: 0, B: 1, tie: 0, both_bad: 0, undecided: 1 }, pairs: { ab: 2, regenerate: 1 } }, 'the pair 40 days ago is outside');
    assert.deepEqual(
      stats.users.map((u) => [u.username, u.up, u.down, u.pairs.ab + u.pairs.regenerate]),
      [
        ['alice', 1, 1, 3],
        ['bob', 0, 1, 0],
      ],
    );

    const wide = feedbackStatsSchema.parse((await request(t.app).get('/api/admin/stats/feedback').query({ days: 60, userId: alice.id }).set(admin.auth)).body);
    assert.equal(wide.daily.length, 60);
    assert.deepEqual(wide.totals.pairs, { ab: 3, regenerate: 1 });
    assert.equal(wide.totals.down, 1, "bob's vote is not alice's");
    assert.deepEqual(wide.users.map((u) => u.username), ['alice']);

    const defaults = feedbackStatsSchema.parse((await request(t.app).get('/api/admin/stats/feedback').set(admin.auth)).body);
    assert.equal(defaults.daily.length, 30);
    for (const q of [{ days: 0 }, { days: 367 }, { days: 'week' }, { userId: 'x' }, { other: 1 }]) {
      assertError(await request(t.app).get('/api/admin/stats/feedback').query(q).set(admin.auth), 400);
    }
    assertError(await request(t.app).get('/api/admin/stats/feedback').query({ userId: randomUUID() }).set(admin.auth), 404);
  });

  test("preference export: streamed JSONL in TRL's conversational format, every pair once, filterable", async () => {
    // Enough pairs of one user to span several pages of the export.
    const erin = await registerUser(t.app, 'erin');
    const many = Array.from({ length: 1203 }, (_, i) => pair(erin.id, NOW - 5 * DAY + i, i % 3 ? 'ab' : 'regenerate', i));
    t.db.transaction(() => many.forEach((p) => t.repos.preferencePairs.insert(p)))();

    const res = await request(t.app).get('/api/admin/export/preferences').set(admin.auth).buffer(true).parse((r, done) => {
      let text = '';
      r.on('data', (c: Buffer) => (text += c.toString('utf8')));
      r.on('end', () => done(null, text));
    });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/x-ndjson/);
    const body = res.body as string;
    assert.ok(body.endsWith('\n'));
    const lines = body.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 1203 + 4);
    for (const line of lines) {
      assert.deepEqual(Object.keys(line).sort(), ['chosen', 'created_at', 'prompt', 'rejected', 'source', 'user_id']);
      assert.ok(Array.isArray(line.prompt) && (line.prompt as unknown[]).length >= 1);
      assert.equal((line.chosen as Array<{ role: string }>).length, 1);
      assert.equal((line.chosen as Array<{ role: string }>)[0]!.role, 'assistant');
      assert.equal((line.rejected as Array<{ role: string }>)[0]!.role, 'assistant');
    }
    const times = lines.map((l) => Date.parse(String(l.created_at)));
    assert.deepEqual(times, [...times].sort((x, y) => x - y), 'oldest first');
    const erinLines = lines.filter((l) => l.user_id === erin.id);
    assert.deepEqual(new Set(erinLines.map((l) => (l.chosen as Array<{ content: string }>)[0]!.content)).size, 1203, 'each pair once');
    const first = erinLines[0]!;
    assert.deepEqual(first, {
      prompt: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'question 0' }],
      chosen: [{ role: 'assistant', content: 'good 0' }],
      rejected: [{ role: 'assistant', content: 'bad 0' }],
      user_id: erin.id,
      source: 'regenerate',
      created_at: new Date(NOW - 5 * DAY).toISOString(),
    });
    // The regenerate pair from alice's votes carries the conversation before the answers as its prompt.
    const fromVotes = lines.find((l) => l.user_id === alice.id && l.source === 'regenerate')!;
    assert.deepEqual(fromVotes.prompt, [{ role: 'user', content: 'tea?' }]);
    assert.deepEqual(fromVotes.chosen, [{ role: 'assistant', content: 'tea: answer A' }]);

    const only = async (query: Record<string, string>) => {
      const r = await request(t.app).get('/api/admin/export/preferences').query(query).set(admin.auth);
      assert.equal(r.status, 200);
      return r.text.trimEnd().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    };
    const aliceAb = await only({ userId: alice.id, source: 'ab' });
    assert.equal(aliceAb.length, 3);
    assert.ok(aliceAb.every((l) => l.user_id === alice.id && l.source === 'ab'));
    assert.equal((await only({ userId: alice.id, since: new Date(NOW - 2 * DAY).toISOString() })).length, 2);
    assert.deepEqual(await only({ userId: bob.id }), []);

    assertError(await request(t.app).get('/api/admin/export/preferences').query({ source: 'thumbs' }).set(admin.auth), 400);
    assertError(await request(t.app).get('/api/admin/export/preferences').query({ since: 'yesterday' }).set(admin.auth), 400);
    assertError(await request(t.app).get('/api/admin/export/preferences').query({ userId: randomUUID() }).set(admin.auth), 404);
  });
});

describe('own data export', () => {
  let t: TestServer;
  before(() => {
    t = createTestServer();
  });
  after(() => t.close());

  test("GET /api/me/export: everything of the caller's and nothing of anyone else's; 401 without credentials", async () => {
    const alice = await registerUser(t.app, 'alice');
    const bob = await registerUser(t.app, 'bob');
    await request(t.app).post('/api/me/api-keys').set(alice.auth).send({ name: 'script' });
    const c = await request(t.app).post('/api/conversations').set(alice.auth).send({ title: 'mine' });
    const base = { conversationId: c.body.id as string, finishReason: null, modelName: 'test', sampling: null, seed: 1, userModelVersion: null, status: 'complete' as const, createdAt: Date.now() };
    const q: MessageRecord = { ...base, id: randomUUID(), parentId: null, role: 'user', content: 'secret question' };
    const a: MessageRecord = { ...base, id: randomUUID(), parentId: q.id, role: 'assistant', content: 'secret answer' };
    const b: MessageRecord = { ...a, id: randomUUID(), content: 'other answer' };
    for (const m of [q, a, b]) t.repos.conversations.insertMessage(m);
    await request(t.app).put(`/api/messages/${a.id}/feedback`).set(alice.auth).send({ value: 'up', comment: 'yes' });
    await request(t.app).put(`/api/messages/${b.id}/feedback`).set(alice.auth).send({ value: 'down' });
    t.repos.comparisons.insert({ id: randomUUID(), userId: alice.id, conversationId: c.body.id, messageA: a.id, messageB: b.id, choice: 'A', createdAt: 1, decidedAt: 2 });
    await request(t.app).post('/api/conversations').set(bob.auth).send({ title: 'bob only' });

    const res = await request(t.app).get('/api/me/export').set(alice.auth);
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-disposition']), /attachment/);
    const e = userDataExportSchema.parse(res.body);
    assert.equal(e.user.username, 'alice');
    assert.equal(e.apiKeys.length, 1);
    assert.doesNotMatch(JSON.stringify(res.body), /atn_[A-Za-z0-9_-]{20,}|keyHash|passwordHash|argon2/);
    assert.deepEqual(e.conversations.map((x) => [x.title, x.messages.map((m) => m.content)]), [['mine', ['secret question', 'secret answer', 'other answer']]]);
    assert.deepEqual(e.feedback.map((f) => [f.messageId, f.value, f.comment]).sort(), [[a.id, 'up', 'yes'], [b.id, 'down', null]].sort());
    assert.deepEqual(e.comparisons.map((x) => x.choice), ['A']);
    assert.equal(e.preferencePairs.length, 1);
    assert.equal(e.preferencePairs[0]!.chosen, 'secret answer');

    const theirs = userDataExportSchema.parse((await request(t.app).get('/api/me/export').set(bob.auth)).body);
    assert.deepEqual(theirs.conversations.map((x) => x.title), ['bob only']);
    assert.equal(theirs.feedback.length + theirs.comparisons.length + theirs.preferencePairs.length + theirs.apiKeys.length, 0);
    assert.doesNotMatch(JSON.stringify(theirs), /secret/);
    assertError(await request(t.app).get('/api/me/export'), 401);
  });
});

describe('disabling a signed-in user over socket.io', () => {
  let engine: Engine;
  let modelDir = '';
  before(async () => {
    ({ engine, dir: modelDir } = await loadTestEngine());
  });
  after(async () => {
    await engine.close();
    fs.rmSync(modelDir, { recursive: true, force: true });
  });

  test("drops the user's open sockets; a new handshake is refused", async () => {
    const t = await startRealtimeServer(engine, { env: { ATTUNE_ADMIN_PASSWORD: 'admin password 1' } });
    try {
      await t.services.auth.bootstrapAdmin();
      const adminToken = (await request(t.app).post('/api/auth/login').send({ username: 'admin', password: 'admin password 1' })).body.token as string;
      const frank = await registerUser(t.app, 'frank');
      const grace = await registerUser(t.app, 'grace');
      const key = (await request(t.app).post('/api/me/api-keys').set(frank.auth).send({})).body.key as string;
      const s = connectClient(t.url, key);
      const other = connectClient(t.url, grace.token);
      await Promise.all([connected(s), connected(other)]);
      const gone = new Promise<string>((resolve) => s.once('disconnect', resolve));
      assert.equal((await request(t.app).patch(`/api/admin/users/${frank.id}`).set('Authorization', `Bearer ${adminToken}`).send({ disabled: true })).status, 200);
      assert.equal(await gone, 'io server disconnect');
      assert.ok(other.connected, "other users' sockets stay");
      const again = connectClient(t.url, key);
      const err = (await connected(again).then(() => null, (e: unknown) => e)) as { data?: { code: string } } | null;
      assert.equal(err?.data?.code, 'account_disabled');
      other.disconnect();
    } finally {
      await t.stop();
    }
  });
});
