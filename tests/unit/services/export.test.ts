// The export service called directly: a user's own data (everything they own, nobody else's, no
// secrets), and every preference pair as TRL's conversational preference lines, filtered and read a
// page at a time without losing or repeating a pair across page boundaries.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { PreferenceExportFilter, TrlPreferenceLine } from '../../../server/services/export.ts';
import { addComparison, addMessage, addPair, addUser, createServiceHarness, DAY_MS, type ServiceHarness } from '../../helpers/services.ts';

describe('the export service', () => {
  let h: ServiceHarness;
  let alice: string;
  let bob: string;
  const exports = () => h.services.exports;

  const collect = async (filter: PreferenceExportFilter): Promise<{ pages: number[]; lines: TrlPreferenceLine[] }> => {
    const pages: number[] = [];
    const lines: TrlPreferenceLine[] = [];
    for await (const page of exports().preferencePages(filter)) {
      pages.push(page.length);
      lines.push(...page);
    }
    return { pages, lines };
  };

  beforeEach(() => {
    h = createServiceHarness();
    alice = addUser(h, 'alice');
    bob = addUser(h, 'bob');
  });
  afterEach(() => h.close());

  describe("a user's own data", () => {
    it('holds the profile, API keys, every conversation with its messages, votes, comparisons and pairs', () => {
      const { info } = h.services.auth.createApiKey(alice, 'script');
      h.clock.t += 1;
      const c1 = h.services.conversations.create(alice, { title: 'first' });
      h.clock.t += 1;
      const c2 = h.services.conversations.create(alice, { title: 'second' });
      const q = addMessage(h, c1.id, { parentId: null, role: 'user', content: 'q' });
      const a = addMessage(h, c1.id, { parentId: q.id, role: 'assistant', content: 'yes', createdAt: h.clock.t + 1 });
      const b = addMessage(h, c1.id, { parentId: q.id, role: 'assistant', content: 'no', createdAt: h.clock.t + 2 });
      h.services.feedback.vote(alice, a.id, { value: 'up', reasons: ['helpful'], comment: 'good' });
      h.clock.t += 1; // votes are listed by time, then by message id
      h.services.feedback.vote(alice, b.id, { value: 'down', reasons: [], comment: null });
      const cmp = addComparison(h, alice, c1.id, a.id, b.id, 'A');
      h.clock.t += 1000;
      const e = exports().userData(alice);

      assert.equal(e.exportedAt, h.clock.t);
      assert.deepEqual(e.user, h.services.auth.getUser(alice));
      assert.equal('passwordHash' in e.user, false);
      assert.deepEqual(e.apiKeys, [info]);
      assert.equal(JSON.stringify(e).includes('not-a-hash'), false, 'no password hash anywhere');
      assert.deepEqual(e.conversations.map((x) => x.conversation.title), ['first', 'second'], 'oldest first');
      assert.deepEqual(e.conversations[0]!.messages.map((m) => m.content), ['q', 'yes', 'no']);
      assert.deepEqual(e.conversations[1]!.messages, []);
      assert.equal(e.conversations[1]!.conversation.id, c2.id);
      assert.deepEqual(e.feedback.map((f) => [f.messageId, f.value, f.reasons, f.comment]), [[a.id, 'up', ['helpful'], 'good'], [b.id, 'down', [], null]]);
      assert.deepEqual(e.comparisons.map((x) => [x.id, x.choice]), [[cmp, 'A']]);
      assert.deepEqual(e.preferencePairs.map((p) => [p.source, p.chosen, p.rejected]), [['regenerate', 'yes', 'no']]);
    });

    it("holds nothing of anyone else's, and an unknown user is a 404", () => {
      const c = h.services.conversations.create(bob, { title: 'bob only' });
      addMessage(h, c.id, { parentId: null, role: 'user', content: 'secret of bob' });
      h.services.auth.createApiKey(bob, 'bob key');
      addPair(h, bob, { chosen: 'bob chosen' });
      const e = exports().userData(alice);
      assert.deepEqual([e.apiKeys, e.conversations, e.feedback, e.comparisons, e.preferencePairs], [[], [], [], [], []]);
      assert.doesNotMatch(JSON.stringify(e), /bob/);
      assert.throws(() => exports().userData('no-such-user'), { name: 'NotFound', status: 404 });
    });
  });

  describe('preference pairs as TRL lines', () => {
    it('writes each pair in TRL conversational form, oldest first, with an ISO time', async () => {
      const t = h.clock.t;
      addPair(h, bob, { createdAt: t + 1, prompt: 'second?', chosen: 'B+', rejected: 'B-', source: 'regenerate' });
      addPair(h, alice, { createdAt: t, prompt: 'first?', chosen: 'A+', rejected: 'A-' });
      const { pages, lines } = await collect({});
      assert.deepEqual(pages, [2]);
      assert.deepEqual(lines, [
        { prompt: [{ role: 'user', content: 'first?' }], chosen: [{ role: 'assistant', content: 'A+' }], rejected: [{ role: 'assistant', content: 'A-' }], user_id: alice, source: 'ab', created_at: new Date(t).toISOString() },
        { prompt: [{ role: 'user', content: 'second?' }], chosen: [{ role: 'assistant', content: 'B+' }], rejected: [{ role: 'assistant', content: 'B-' }], user_id: bob, source: 'regenerate', created_at: new Date(t + 1).toISOString() },
      ]);
      assert.equal(lines[0]!.created_at, '2025-01-15T12:00:00.000Z');
    });

    it('filters by user, by source and by time, together', async () => {
      const t = h.clock.t;
      addPair(h, alice, { source: 'ab', createdAt: t - DAY_MS, chosen: 'old ab' });
      addPair(h, alice, { source: 'ab', createdAt: t, chosen: 'new ab' });
      addPair(h, alice, { source: 'regenerate', createdAt: t, chosen: 'new regenerate' });
      addPair(h, bob, { source: 'ab', createdAt: t, chosen: 'bob ab' });
      const chosen = async (f: PreferenceExportFilter) => (await collect(f)).lines.map((l) => l.chosen[0].content).sort();
      assert.deepEqual(await chosen({ userId: alice }), ['new ab', 'new regenerate', 'old ab']);
      assert.deepEqual(await chosen({ source: 'ab' }), ['bob ab', 'new ab', 'old ab']);
      assert.deepEqual(await chosen({ since: t }), ['bob ab', 'new ab', 'new regenerate']);
      assert.deepEqual(await chosen({ userId: alice, source: 'ab', since: t }), ['new ab']);
      assert.deepEqual(await collect({ userId: bob, source: 'regenerate' }), { pages: [], lines: [] });
    });

    it('refuses an unknown user with 404 before any line', async () => {
      addPair(h, alice);
      await assert.rejects(collect({ userId: 'no-such-user' }), { name: 'NotFound', status: 404 });
    });

    it('reads 500 pairs a page, and loses or repeats none across pages even when they share a time', async () => {
      const n = 1001;
      h.db.transaction(() => {
        // Half of them at one millisecond, so a page boundary falls inside a run of equal times.
        for (let i = 0; i < n; i++) addPair(h, alice, { createdAt: h.clock.t + (i < 600 ? 0 : i), chosen: `c${i}` });
        for (let i = 0; i < 500; i++) addPair(h, bob, { createdAt: h.clock.t + i });
      })();
      const { pages, lines } = await collect({ userId: alice });
      assert.deepEqual(pages, [500, 500, 1]);
      assert.equal(new Set(lines.map((l) => l.chosen[0].content)).size, n);
      for (let i = 1; i < lines.length; i++) assert.ok(lines[i - 1]!.created_at <= lines[i]!.created_at, 'oldest first');
      // Exactly one page's worth: one page, then the end.
      assert.deepEqual((await collect({ userId: bob })).pages, [500]);
      assert.deepEqual((await collect({})).pages, [500, 500, 500, 1]);
    });
  });
});
