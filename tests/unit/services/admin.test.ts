// The admin service called directly: users listed a page at a time with their activity, role and
// disabled changes under the last-admin rule (and the credential events they send), feedback
// statistics per UTC day and per user, and training jobs per status.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CredentialsEnded, RoleChanged } from '../../../server/services/credential-events.ts';
import type { FeedbackCounts } from '../../../server/services/admin.ts';
import { addComparison, addMessage, addPair, addUser, createServiceHarness, DAY_MS, type ServiceHarness } from '../../helpers/services.ts';

const counts = (over: { up?: number; down?: number; comparisons?: Partial<FeedbackCounts['comparisons']>; pairs?: Partial<FeedbackCounts['pairs']> } = {}): FeedbackCounts => ({
  up: over.up ?? 0,
  down: over.down ?? 0,
  comparisons: { A: 0, B: 0, tie: 0, both_bad: 0, undecided: 0, ...over.comparisons },
  pairs: { ab: 0, regenerate: 0, ...over.pairs },
});

describe('the admin service', () => {
  let h: ServiceHarness;
  let root: string;
  let alice: string;
  let bob: string;
  let ended: CredentialsEnded[];
  let roles: RoleChanged[];
  const admin = () => h.services.admin;

  beforeEach(() => {
    h = createServiceHarness();
    root = addUser(h, 'root', 'admin', h.clock.t - 3);
    alice = addUser(h, 'alice', 'user', h.clock.t - 2);
    bob = addUser(h, 'bob', 'user', h.clock.t - 1);
    ended = [];
    roles = [];
    h.services.credentials.onCredentialsEnded((e) => ended.push(e));
    h.services.credentials.onRoleChanged((e) => roles.push(e));
  });
  afterEach(() => h.close());

  describe('users', () => {
    it('lists users oldest first, a page at a time, with the total and no password hash', () => {
      const first = admin().listUsers({ limit: 2 });
      assert.deepEqual(first.items.map((u) => u.username), ['root', 'alice']);
      assert.equal(first.total, 3);
      assert.ok(first.nextCursor);
      for (const u of first.items) assert.equal('passwordHash' in u, false);
      const second = admin().listUsers({ limit: 2, cursor: first.nextCursor });
      assert.deepEqual(second.items.map((u) => u.username), ['bob']);
      assert.equal(second.nextCursor, null);
      assert.equal(admin().listUsers({ limit: 3 }).nextCursor, null);
      for (const cursor of ['nope', Buffer.from('["x","y"]').toString('base64url')]) {
        assert.throws(() => admin().listUsers({ limit: 2, cursor }), { name: 'ValidationError', status: 400, code: 'validation_failed' });
      }
    });

    it("counts each user's conversations, messages, votes, comparisons and pairs", () => {
      const c = h.services.conversations.create(alice, {});
      h.services.conversations.create(alice, {});
      const q = addMessage(h, c.id, { parentId: null, role: 'user', content: 'q' });
      const a = addMessage(h, c.id, { parentId: q.id, role: 'assistant', content: 'a', createdAt: h.clock.t + 1 });
      const b = addMessage(h, c.id, { parentId: q.id, role: 'assistant', content: 'b', createdAt: h.clock.t + 2 });
      h.services.feedback.vote(alice, a.id, { value: 'up', reasons: [], comment: null });
      h.services.feedback.vote(alice, b.id, { value: 'down', reasons: [], comment: null });
      addComparison(h, alice, c.id, a.id, b.id, 'A');
      addPair(h, alice);
      assert.deepEqual(admin().getUser(alice).counts, { conversations: 2, messages: 3, feedback: 2, comparisons: 1, preferencePairs: 2 });
      assert.deepEqual(admin().getUser(bob).counts, { conversations: 0, messages: 0, feedback: 0, comparisons: 0, preferencePairs: 0 });
      assert.deepEqual(admin().listUsers({ limit: 10 }).items.find((u) => u.id === alice)!.counts, admin().getUser(alice).counts);
      assert.throws(() => admin().getUser('no-such-user'), { name: 'NotFound', status: 404 });
    });

    it('promotes and demotes, telling the socket layer of real role changes only', () => {
      const promoted = admin().updateUser(root, alice, { role: 'admin' });
      assert.equal(promoted.role, 'admin');
      assert.equal(h.repos.users.countActiveAdmins(), 2);
      admin().updateUser(root, alice, { role: 'admin' });
      assert.deepEqual(roles, [{ userId: alice, role: 'admin' }]);
      // With a second admin, the first may step down.
      assert.equal(admin().updateUser(root, root, { role: 'user' }).role, 'user');
      assert.deepEqual(roles, [{ userId: alice, role: 'admin' }, { userId: root, role: 'user' }]);
      assert.equal(ended.length, 0);
    });

    it('never leaves the server without an active admin: demoting or disabling the last one is 409 last_admin', () => {
      for (const update of [{ role: 'user' as const }, { disabled: true }, { role: 'user' as const, disabled: true }]) {
        assert.throws(() => admin().updateUser(root, root, update), { name: 'Conflict', status: 409, code: 'last_admin', message: /yourself/ });
      }
      // A disabled admin is not an active one.
      const other = addUser(h, 'other_admin', 'admin');
      admin().updateUser(root, other, { disabled: true });
      assert.throws(() => admin().updateUser(other, root, { role: 'user' }), { status: 409, code: 'last_admin', message: /them/ });
      // …and may be demoted while disabled.
      assert.equal(admin().updateUser(root, other, { role: 'user' }).role, 'user');
      const u = h.repos.users.findById(root)!;
      assert.deepEqual([u.role, u.disabled], ['admin', false]);
      assert.equal(roles.length, 1);
      assert.throws(() => admin().updateUser(root, 'no-such-user', { disabled: true }), { name: 'NotFound', status: 404 });
    });

    it('disabling ends the sessions at once and refuses API keys until enabled again', async () => {
      const signed = await h.services.auth.register({ username: 'carol', password: 'correct horse battery' });
      const carol = signed.user.id;
      const { key } = h.services.auth.createApiKey(carol, 'script');
      const disabled = admin().updateUser(root, carol, { disabled: true });
      assert.equal(disabled.disabled, true);
      assert.deepEqual(ended, [{ userId: carol, reason: 'account_disabled', scope: { kind: 'all' } }]);
      assert.equal(h.db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM sessions WHERE user_id = ?').get(carol)!.n, 0);
      assert.throws(() => h.services.auth.authenticate(key), { name: 'Forbidden', status: 403, code: 'account_disabled' });
      // Disabling again ends nothing new.
      admin().updateUser(root, carol, { disabled: true });
      assert.equal(ended.length, 1);
      admin().updateUser(root, carol, { disabled: false });
      assert.equal(h.services.auth.authenticate(key).user.id, carol);
      assert.throws(() => h.services.auth.authenticate(signed.token), { status: 401, code: 'invalid_token' }, 'the session does not come back');
      assert.equal(ended.length, 1);
    });
  });

  describe('feedback statistics', () => {
    // T0 is 2025-01-15 12:00 UTC; a 3-day window is 2025-01-13 00:00 to 2025-01-16 00:00.
    const day = (d: number, hour = 12) => Date.UTC(2025, 0, d, hour);

    beforeEach(() => {
      const carol = addUser(h, 'carol');
      h.services.conversations.create(carol, {}); // no feedback: not listed
      const conv = (userId: string) => h.services.conversations.create(userId, {}).id;
      const vote = (userId: string, messageId: string, value: 'up' | 'down', at: number) =>
        h.repos.feedback.upsert({ messageId, userId, value, reasons: [], comment: null, createdAt: at, updatedAt: at });
      const ca = conv(alice);
      const cb = conv(bob);
      const answers = (c: string) => {
        const q = addMessage(h, c, { parentId: null, role: 'user', content: 'q' });
        return [0, 1, 2, 3].map((i) => addMessage(h, c, { parentId: q.id, role: 'assistant', content: `a${i}`, createdAt: h.clock.t + i + 1 }).id);
      };
      const [a0, a1, a2, a3] = answers(ca);
      const [b0, b1] = answers(cb);
      vote(alice, a0!, 'up', day(15, 0)); // today, first millisecond
      vote(alice, a1!, 'up', day(15, 23));
      vote(alice, a2!, 'down', day(14));
      vote(alice, a3!, 'down', day(12, 23)); // before the window
      vote(bob, b0!, 'up', day(13, 0));
      addComparison(h, alice, ca, a0!, a1!, 'A', day(15));
      addComparison(h, bob, cb, b0!, b1!, null, day(13));
      addComparison(h, bob, cb, b1!, b0!, 'both_bad', day(16, 0)); // tomorrow: after the window
      addPair(h, alice, { source: 'ab', createdAt: day(14) });
      addPair(h, alice, { source: 'regenerate', createdAt: day(15) });
      addPair(h, bob, { source: 'ab', createdAt: day(12) });
    });

    it('buckets thumbs, comparisons and pairs by UTC day, every day of the window, and by user', () => {
      const s = admin().feedbackStats({ days: 3 });
      assert.equal(s.since, Date.UTC(2025, 0, 13));
      assert.equal(s.until, Date.UTC(2025, 0, 16));
      assert.deepEqual(s.totals, counts({ up: 3, down: 1, comparisons: { A: 1, undecided: 1 }, pairs: { ab: 1, regenerate: 1 } }));
      assert.deepEqual(s.daily, [
        { day: '2025-01-13', ...counts({ up: 1, comparisons: { undecided: 1 } }) },
        { day: '2025-01-14', ...counts({ down: 1, pairs: { ab: 1 } }) },
        { day: '2025-01-15', ...counts({ up: 2, comparisons: { A: 1 }, pairs: { regenerate: 1 } }) },
      ]);
      assert.deepEqual(s.users, [
        { userId: alice, username: 'alice', ...counts({ up: 2, down: 1, comparisons: { A: 1 }, pairs: { ab: 1, regenerate: 1 } }) },
        { userId: bob, username: 'bob', ...counts({ up: 1, comparisons: { undecided: 1 } }) },
      ]);
    });

    it('narrows to one user and to one day, and refuses an unknown user with 404', () => {
      const bobs = admin().feedbackStats({ days: 3, userId: bob });
      assert.deepEqual(bobs.totals, counts({ up: 1, comparisons: { undecided: 1 } }));
      assert.deepEqual(bobs.users.map((u) => u.username), ['bob']);
      const today = admin().feedbackStats({ days: 1 });
      assert.deepEqual(today.daily.map((d) => d.day), ['2025-01-15']);
      assert.deepEqual(today.totals, counts({ up: 2, comparisons: { A: 1 }, pairs: { regenerate: 1 } }));
      // A day later the window has moved on: tomorrow's comparison is in, the 13th is out.
      h.clock.t += DAY_MS;
      const later = admin().feedbackStats({ days: 3 });
      assert.deepEqual(later.daily.map((d) => d.day), ['2025-01-14', '2025-01-15', '2025-01-16']);
      assert.deepEqual(later.totals, counts({ up: 2, down: 1, comparisons: { A: 1, both_bad: 1 }, pairs: { ab: 1, regenerate: 1 } }));
      assert.throws(() => admin().feedbackStats({ days: 3, userId: 'no-such-user' }), { name: 'NotFound', status: 404 });
    });
  });

  it('counts training jobs per status', () => {
    assert.deepEqual(admin().trainingJobCounts(), []);
    const job = (id: string, status: string) => h.repos.userModels.insertJob({ id, status, createdAt: h.clock.t, startedAt: null, finishedAt: null, error: null, progress: {} });
    job('j1', 'succeeded');
    job('j2', 'failed');
    job('j3', 'succeeded');
    assert.deepEqual(admin().trainingJobCounts(), [{ status: 'failed', n: 1 }, { status: 'succeeded', n: 2 }]);
  });
});
