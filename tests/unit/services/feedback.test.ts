// The feedback service called directly: thumbs on the caller's own answers, a second vote replacing
// the first, withdrawal, and the preference pairs that opposite thumbs on sibling answers
// (regenerations) derive, kept in step with the current votes.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MessageRecord } from '../../../server/db/conversations.ts';
import { type FeedbackInput, feedbackInputSchema } from '../../../server/services/feedback.ts';
import { addMessage, addUser, createServiceHarness, type ServiceHarness } from '../../helpers/services.ts';

const up: FeedbackInput = { value: 'up', reasons: [], comment: null };
const down: FeedbackInput = { value: 'down', reasons: [], comment: null };

describe('the feedback service', () => {
  let h: ServiceHarness;
  let alice: string;
  let bob: string;
  let conversationId: string;
  /** q1 → a1 → q2 → {b1, b2, b3}: three regenerations of the answer to q2. */
  let q1: MessageRecord, a1: MessageRecord, q2: MessageRecord, b1: MessageRecord, b2: MessageRecord, b3: MessageRecord;
  const feedback = () => h.services.feedback;
  const pairs = () => h.repos.preferencePairs.listForUser(alice).map((p) => `${p.source}: ${p.chosen} > ${p.rejected}`).sort();

  beforeEach(() => {
    h = createServiceHarness();
    alice = addUser(h, 'alice');
    bob = addUser(h, 'bob');
    conversationId = h.services.conversations.create(alice, { title: 't' }).id;
    let t = h.clock.t;
    const say = (parentId: string | null, role: MessageRecord['role'], content: string) => addMessage(h, conversationId, { parentId, role, content, createdAt: ++t });
    q1 = say(null, 'user', 'q1');
    a1 = say(q1.id, 'assistant', 'a1');
    q2 = say(a1.id, 'user', 'q2');
    b1 = say(q2.id, 'assistant', 'b1');
    b2 = say(q2.id, 'assistant', 'b2');
    b3 = say(q2.id, 'assistant', 'b3');
  });
  afterEach(() => h.close());

  it('records a vote with its reasons and comment; a second vote replaces it and keeps its creation time', () => {
    const first = feedback().vote(alice, b1.id, { value: 'up', reasons: ['helpful', 'clear'], comment: 'nice' });
    assert.deepEqual(first, {
      feedback: { messageId: b1.id, userId: alice, value: 'up', reasons: ['helpful', 'clear'], comment: 'nice', createdAt: h.clock.t, updatedAt: h.clock.t },
      preferencePairs: 0,
    });
    const created = h.clock.t;
    h.clock.t += 60_000;
    const second = feedback().vote(alice, b1.id, { value: 'down', reasons: ['too_long'], comment: null });
    assert.deepEqual(second.feedback, { messageId: b1.id, userId: alice, value: 'down', reasons: ['too_long'], comment: null, createdAt: created, updatedAt: h.clock.t });
    assert.deepEqual(feedback().get(alice, b1.id), { feedback: second.feedback, preferencePairs: 0 });
    assert.equal(h.repos.feedback.listForUser(alice).length, 1);
  });

  it('opposite thumbs on siblings make a pair: the answer voted up over the one voted down, after the path to their parent', () => {
    assert.equal(feedback().vote(alice, b1.id, up).preferencePairs, 0);
    assert.equal(feedback().vote(alice, b2.id, down).preferencePairs, 1);
    const [pair, ...rest] = h.repos.preferencePairs.listForUser(alice);
    assert.equal(rest.length, 0);
    assert.deepEqual(pair, {
      id: pair!.id,
      userId: alice,
      prompt: [
        { role: 'user', content: 'q1' },
        { role: 'assistant', content: 'a1' },
        { role: 'user', content: 'q2' },
      ],
      chosen: 'b1',
      rejected: 'b2',
      source: 'regenerate',
      chosenMessage: b1.id,
      rejectedMessage: b2.id,
      createdAt: h.clock.t,
    });
    assert.equal(feedback().get(alice, b1.id).preferencePairs, 1);
    assert.equal(feedback().get(alice, b2.id).preferencePairs, 1);
  });

  it('pairs every answer voted up with every sibling voted down, and never same thumbs or non-siblings', () => {
    feedback().vote(alice, b1.id, up);
    feedback().vote(alice, b3.id, up);
    assert.equal(feedback().vote(alice, b2.id, down).preferencePairs, 2);
    assert.deepEqual(pairs(), ['regenerate: b1 > b2', 'regenerate: b3 > b2']);
    // a1 is not a sibling of the b's (another parent): a thumb down on it pairs with nothing.
    assert.equal(feedback().vote(alice, a1.id, down).preferencePairs, 0);
    assert.equal(pairs().length, 2);
  });

  it('derives the pairs again when a vote changes, so they always match the current votes', () => {
    feedback().vote(alice, b1.id, up);
    feedback().vote(alice, b2.id, down);
    assert.deepEqual(pairs(), ['regenerate: b1 > b2']);
    assert.equal(feedback().vote(alice, b2.id, up).preferencePairs, 0, 'both up: no pair');
    assert.deepEqual(pairs(), []);
    assert.equal(feedback().vote(alice, b1.id, down).preferencePairs, 1, 'now reversed');
    assert.deepEqual(pairs(), ['regenerate: b2 > b1']);
    // The same vote again does not duplicate the pair.
    assert.equal(feedback().vote(alice, b1.id, down).preferencePairs, 1);
    assert.deepEqual(pairs(), ['regenerate: b2 > b1']);
  });

  it('withdraws a vote with the pairs it made, but leaves pairs of A/B choices alone', () => {
    feedback().vote(alice, b1.id, up);
    feedback().vote(alice, b2.id, down);
    feedback().vote(alice, b3.id, down);
    h.repos.preferencePairs.insert({
      id: 'ab-pair', userId: alice, prompt: [{ role: 'user', content: 'q2' }], chosen: 'b1', rejected: 'b3', source: 'ab', chosenMessage: b1.id, rejectedMessage: b3.id, createdAt: h.clock.t,
    });
    assert.deepEqual(pairs(), ['ab: b1 > b3', 'regenerate: b1 > b2', 'regenerate: b1 > b3']);
    feedback().withdraw(alice, b1.id);
    assert.deepEqual(pairs(), ['ab: b1 > b3']);
    assert.equal(feedback().get(alice, b2.id).feedback.value, 'down', 'the other votes stay');
    assert.throws(() => feedback().get(alice, b1.id), { name: 'NotFound', status: 404, code: 'no_feedback' });
    assert.throws(() => feedback().withdraw(alice, b1.id), { name: 'NotFound', status: 404, code: 'no_feedback' });
    // A vote again derives them again.
    assert.equal(feedback().vote(alice, b1.id, up).preferencePairs, 2);
  });

  it('leaves failed answers with no text out of the prompt', () => {
    const failed = addMessage(h, conversationId, { parentId: q2.id, role: 'assistant', content: '', status: 'error', createdAt: h.clock.t + 100 });
    const q3 = addMessage(h, conversationId, { parentId: failed.id, role: 'user', content: 'q3', createdAt: h.clock.t + 101 });
    const c1 = addMessage(h, conversationId, { parentId: q3.id, role: 'assistant', content: 'c1', createdAt: h.clock.t + 102 });
    const c2 = addMessage(h, conversationId, { parentId: q3.id, role: 'assistant', content: 'c2', createdAt: h.clock.t + 103 });
    feedback().vote(alice, c1.id, down);
    feedback().vote(alice, c2.id, up);
    const [pair] = h.repos.preferencePairs.listForUser(alice);
    assert.deepEqual(pair!.prompt.map((m) => m.content), ['q1', 'a1', 'q2', 'q3']);
    assert.deepEqual([pair!.chosen, pair!.rejected], ['c2', 'c1']);
  });

  it('takes votes only on answers: a question is 400 not_an_answer', () => {
    for (const m of [q1, q2]) assert.throws(() => feedback().vote(alice, m.id, up), { name: 'ValidationError', status: 400, code: 'not_an_answer', details: { role: 'user' } });
    assert.equal(h.repos.feedback.listForUser(alice).length, 0);
  });

  it("reports someone else's answer exactly like a missing one, for vote, get and withdraw", () => {
    feedback().vote(alice, b1.id, up);
    const missing = { name: 'NotFound', status: 404, code: 'not_found', message: 'no such message' };
    for (const id of [b1.id, 'no-such-message']) {
      assert.throws(() => feedback().vote(bob, id, down), missing);
      assert.throws(() => feedback().get(bob, id), missing);
      assert.throws(() => feedback().withdraw(bob, id), missing);
    }
    // Even a question of someone else is "no such message", not "not an answer".
    assert.throws(() => feedback().vote(bob, q1.id, up), missing);
    assert.equal(feedback().get(alice, b1.id).feedback.value, 'up');
    assert.equal(h.repos.feedback.listForUser(bob).length, 0);
  });

  it('reads the input at the edge: reasons deduplicated, an empty comment as none, unknown values refused', () => {
    assert.deepEqual(feedbackInputSchema.parse({ value: 'up', reasons: ['clear', 'clear', 'helpful'], comment: '   ' }), { value: 'up', reasons: ['clear', 'helpful'], comment: null });
    assert.deepEqual(feedbackInputSchema.parse({ value: 'down' }), { value: 'down', reasons: [], comment: null });
    assert.equal(feedbackInputSchema.parse({ value: 'down', comment: '  too long  ' }).comment, 'too long');
    for (const bad of [{ value: 'meh' }, { value: 'up', reasons: ['smells'] }, { value: 'up', extra: 1 }, { value: 'up', comment: 'x'.repeat(2001) }]) {
      assert.equal(feedbackInputSchema.safeParse(bad).success, false, JSON.stringify(bad).slice(0, 60));
    }
  });
});
