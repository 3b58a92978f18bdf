// The conversation service called directly: create, list (newest activity first, cursor pages,
// search), get with the owner's votes and comparisons, rename, delete with everything hanging off
// it, and someone else's conversation reported exactly like a missing one.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CONVERSATION_TITLE, encodeCursor } from '../../../server/services/conversations.ts';
import { addComparison, addMessage, addUser, createServiceHarness, type ServiceHarness } from '../../helpers/services.ts';

describe('the conversation service', () => {
  let h: ServiceHarness;
  let alice: string;
  let bob: string;
  const conversations = () => h.services.conversations;
  const count = (table: string): number => h.db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${table}`).get()!.n;
  /** A conversation created one millisecond after the previous one. */
  const create = (userId: string, title?: string) => {
    h.clock.t += 1;
    return conversations().create(userId, title === undefined ? {} : { title });
  };

  beforeEach(() => {
    h = createServiceHarness();
    alice = addUser(h, 'alice');
    bob = addUser(h, 'bob');
  });
  afterEach(() => h.close());

  it('creates a conversation owned by the caller, with the default title unless given one', () => {
    const c = create(alice);
    assert.deepEqual(c, { id: c.id, userId: alice, title: DEFAULT_CONVERSATION_TITLE, createdAt: h.clock.t, updatedAt: h.clock.t });
    assert.equal(create(alice, 'Soup recipes').title, 'Soup recipes');
    assert.deepEqual(conversations().get(alice, c.id), { conversation: c, messages: [], feedback: [], comparisons: [] });
  });

  it('lists the caller\'s conversations newest activity first, a page at a time', () => {
    const made = Array.from({ length: 5 }, (_, i) => create(alice, `c${i}`));
    create(bob, 'not yours');
    const first = conversations().list(alice, { limit: 2 });
    assert.deepEqual(first.items.map((c) => c.title), ['c4', 'c3']);
    assert.ok(first.nextCursor);
    const second = conversations().list(alice, { limit: 2, cursor: first.nextCursor });
    assert.deepEqual(second.items.map((c) => c.title), ['c2', 'c1']);
    const last = conversations().list(alice, { limit: 2, cursor: second.nextCursor! });
    assert.deepEqual(last.items.map((c) => c.title), ['c0']);
    assert.equal(last.nextCursor, null);
    // Exactly a page left: no further cursor.
    assert.equal(conversations().list(alice, { limit: 5 }).nextCursor, null);
    // Renaming is activity: it moves the conversation to the top.
    h.clock.t += 1;
    conversations().rename(alice, made[0]!.id, 'c0 renamed');
    assert.equal(conversations().list(alice, { limit: 1 }).items[0]!.title, 'c0 renamed');
    assert.deepEqual(conversations().list(bob, { limit: 10 }).items.map((c) => c.title), ['not yours']);
  });

  it('searches titles and message text, taking % and _ literally, and pages the results', () => {
    const soup = create(alice, 'Soup recipes');
    const chat = create(alice, 'Chat');
    addMessage(h, chat.id, { parentId: null, role: 'user', content: 'how much SOUP is too much?' });
    create(alice, '100% sure');
    create(alice, 'Unrelated');
    create(bob, 'soup for bob');
    assert.deepEqual(conversations().list(alice, { limit: 10, q: 'soup' }).items.map((c) => c.id), [chat.id, soup.id]);
    assert.deepEqual(conversations().list(alice, { limit: 10, q: '0%' }).items.map((c) => c.title), ['100% sure']);
    assert.deepEqual(conversations().list(alice, { limit: 10, q: 'S_up' }).items, []);
    const page = conversations().list(alice, { limit: 1, q: 'soup' });
    assert.deepEqual(page.items.map((c) => c.id), [chat.id]);
    const next = conversations().list(alice, { limit: 1, q: 'soup', cursor: page.nextCursor! });
    assert.deepEqual(next.items.map((c) => c.id), [soup.id]);
    assert.equal(next.nextCursor, null);
  });

  it('refuses a cursor it did not make with 400 validation_failed', () => {
    for (const cursor of ['garbage', Buffer.from('[1]').toString('base64url'), Buffer.from('{"a":1}').toString('base64url'), Buffer.from('[-1,"x"]').toString('base64url')]) {
      assert.throws(() => conversations().list(alice, { limit: 10, cursor }), { name: 'ValidationError', status: 400, code: 'validation_failed' }, cursor);
    }
    // A well-formed cursor is any position, even one past every item.
    assert.deepEqual(conversations().list(alice, { limit: 10, cursor: encodeCursor({ updatedAt: 0, id: 'a' }) }).items, []);
  });

  it('gets a conversation with every branch of messages, and the owner\'s votes and comparisons', () => {
    const c = create(alice);
    const q = addMessage(h, c.id, { parentId: null, role: 'user', content: 'hello?', createdAt: h.clock.t });
    const a1 = addMessage(h, c.id, { parentId: q.id, role: 'assistant', content: 'hi', createdAt: h.clock.t + 1 });
    const a2 = addMessage(h, c.id, { parentId: q.id, role: 'assistant', content: 'hello!', createdAt: h.clock.t + 2 });
    h.services.feedback.vote(alice, a1.id, { value: 'up', reasons: [], comment: null });
    const cmp = addComparison(h, alice, c.id, a1.id, a2.id, 'A');
    // Rows of someone else hanging off the same messages are not the owner's.
    h.repos.feedback.upsert({ messageId: a2.id, userId: bob, value: 'down', reasons: [], comment: null, createdAt: h.clock.t, updatedAt: h.clock.t });
    addComparison(h, bob, c.id, a2.id, a1.id, 'B');
    const got = conversations().get(alice, c.id);
    assert.deepEqual(got.messages.map((m) => m.id), [q.id, a1.id, a2.id]);
    assert.deepEqual(got.feedback.map((f) => [f.messageId, f.userId, f.value]), [[a1.id, alice, 'up']]);
    assert.deepEqual(got.comparisons.map((x) => x.id), [cmp]);
  });

  it("reports someone else's conversation exactly like a missing one, and leaves it alone", () => {
    const c = create(alice, 'private');
    const missing = (fn: () => unknown) => assert.throws(fn, { name: 'NotFound', status: 404, code: 'not_found', message: 'no such conversation' });
    for (const id of [c.id, 'no-such-conversation']) {
      missing(() => conversations().get(bob, id));
      missing(() => conversations().rename(bob, id, 'mine now'));
      missing(() => conversations().delete(bob, id));
    }
    assert.deepEqual(conversations().get(alice, c.id).conversation, c);
  });

  it('renames, moving the last activity to now', () => {
    const c = create(alice, 'old');
    h.clock.t += 1000;
    const renamed = conversations().rename(alice, c.id, 'new');
    assert.deepEqual(renamed, { ...c, title: 'new', updatedAt: h.clock.t });
    assert.deepEqual(conversations().get(alice, c.id).conversation, renamed);
  });

  it('deletes the conversation with its messages, votes, comparisons and pairs, and only it', () => {
    const doomed = create(alice);
    const kept = create(alice);
    for (const c of [doomed, kept]) {
      const q = addMessage(h, c.id, { parentId: null, role: 'user', content: 'q' });
      const a = addMessage(h, c.id, { parentId: q.id, role: 'assistant', content: 'good', createdAt: h.clock.t + 1 });
      const b = addMessage(h, c.id, { parentId: q.id, role: 'assistant', content: 'bad', createdAt: h.clock.t + 2 });
      h.services.feedback.vote(alice, a.id, { value: 'up', reasons: [], comment: null });
      h.services.feedback.vote(alice, b.id, { value: 'down', reasons: [], comment: null });
      addComparison(h, alice, c.id, a.id, b.id, null);
    }
    assert.deepEqual([count('messages'), count('feedback'), count('comparisons'), count('preference_pairs')], [6, 4, 2, 2]);
    conversations().delete(alice, doomed.id);
    assert.deepEqual([count('conversations'), count('messages'), count('feedback'), count('comparisons'), count('preference_pairs')], [1, 3, 2, 1, 1]);
    assert.throws(() => conversations().get(alice, doomed.id), { status: 404 });
    assert.throws(() => conversations().delete(alice, doomed.id), { status: 404 });
    assert.equal(conversations().get(alice, kept.id).messages.length, 3);
  });
});
