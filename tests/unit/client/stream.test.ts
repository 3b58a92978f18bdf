// Stream assembly of the web client: socket events folded into the open conversation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  comparisonOf,
  emptyThread,
  loadedThread,
  mergeComparisons,
  onCompareChosen,
  onCompareReady,
  onCompareStart,
  onDelta,
  onDisconnect,
  onDone,
  onStart,
  onStopRequested,
  setAsideIds,
} from '../../../client/src/lib/stream.ts';
import { activePath, buildTree } from '../../../client/src/lib/tree.ts';
import type { Conversation, Message, MessageFeedback } from '../../../client/src/lib/types.ts';

const conv: Conversation = { id: 'c1', title: 'hello', createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z' };
// As the socket sends them (with their conversationId); a thread loaded over HTTP takes them too.
const msg = (id: string, parentId: string | null, role: Message['role'], extra: Partial<Message> = {}): Message & { conversationId: string } => ({
  id,
  conversationId: 'c1',
  parentId,
  role,
  content: '',
  status: role === 'user' ? 'complete' : 'partial',
  finishReason: null,
  modelId: 'default',
  userModelVersion: null,
  sampling: null,
  seed: 1,
  createdAt: '2026-01-01T00:00:00.000Z',
  ...extra,
});
const shown = (s: ReturnType<typeof emptyThread>) => activePath(buildTree(s.messages), s.selection, setAsideIds(s)).map((m) => m.id);

test('a new conversation: start, deltas in order, done replaces the text with the stored one', () => {
  let s = emptyThread();
  s = onStart(s, { conversation: conv, created: true, userMessage: msg('u1', null, 'user', { content: 'hi' }), message: msg('a1', 'u1', 'assistant') });
  assert.equal(s.conversationId, 'c1');
  assert.deepEqual(s.streaming, ['a1']);
  for (const d of ['Hel', 'lo', ' there']) s = onDelta(s, { conversationId: 'c1', messageId: 'a1', delta: d });
  assert.equal(s.messages.find((m) => m.id === 'a1')?.content, 'Hello there');
  s = onDone(s, { conversationId: 'c1', message: msg('a1', 'u1', 'assistant', { content: 'Hello there!', status: 'complete', finishReason: 'stop' }) });
  assert.deepEqual(s.streaming, []);
  const a1 = s.messages.find((m) => m.id === 'a1')!;
  assert.equal(a1.content, 'Hello there!');
  assert.equal(a1.status, 'complete');
  assert.deepEqual(shown(s), ['u1', 'a1']);
});

test('events of another conversation, or for unknown messages, change nothing', () => {
  const s = loadedThread('c1', [msg('u1', null, 'user'), msg('a1', 'u1', 'assistant', { status: 'complete', content: 'x' })]);
  assert.equal(onDelta(s, { conversationId: 'other', messageId: 'a1', delta: 'y' }), s);
  assert.equal(onDelta(s, { conversationId: 'c1', messageId: 'zzz', delta: 'y' }), s);
  assert.equal(onStart(s, { conversation: { ...conv, id: 'other' }, created: true, userMessage: null, message: msg('b', null, 'assistant') }), s);
});

test('stop: marked stopping at once, settled as partial by the server', () => {
  let s = onStart(emptyThread('c1'), { conversation: conv, created: false, userMessage: msg('u1', null, 'user'), message: msg('a1', 'u1', 'assistant') });
  s = onDelta(s, { conversationId: 'c1', messageId: 'a1', delta: 'partial ans' });
  s = onStopRequested(s, 'a1');
  assert.deepEqual(s.stopping, ['a1']);
  assert.equal(onStopRequested(s, 'not-streaming'), s);
  s = onDone(s, { conversationId: 'c1', message: msg('a1', 'u1', 'assistant', { content: 'partial ans', status: 'partial', finishReason: 'abort' }) });
  assert.deepEqual(s.stopping, []);
  assert.deepEqual(s.streaming, []);
  assert.equal(s.messages.find((m) => m.id === 'a1')?.status, 'partial');
});

test('a disconnect mid-stream keeps what arrived, as partial', () => {
  let s = onStart(emptyThread('c1'), { conversation: conv, created: false, userMessage: msg('u1', null, 'user'), message: msg('a1', 'u1', 'assistant') });
  s = onDelta(s, { conversationId: 'c1', messageId: 'a1', delta: 'half' });
  s = onDisconnect(s);
  assert.deepEqual(s.streaming, []);
  const a1 = s.messages.find((m) => m.id === 'a1')!;
  assert.equal(a1.content, 'half');
  assert.equal(a1.status, 'partial');
  assert.equal(onDisconnect(s), s, 'nothing streaming: unchanged');
});

test('regenerate: the new sibling is shown, and the old one stays browsable', () => {
  let s = loadedThread('c1', [msg('u1', null, 'user'), msg('a1', 'u1', 'assistant', { status: 'complete', content: 'first' })]);
  s = onStart(s, { conversation: conv, created: false, userMessage: null, message: msg('a2', 'u1', 'assistant') });
  s = onDelta(s, { conversationId: 'c1', messageId: 'a2', delta: 'second' });
  assert.deepEqual(shown(s), ['u1', 'a2']);
  assert.equal(s.messages.length, 3);
});

test('A/B: both candidates stream, ready, then the choice decides what the thread continues from', () => {
  let s = onCompareStart(emptyThread(), {
    conversation: conv,
    created: true,
    userMessage: msg('u1', null, 'user'),
    comparisonId: 'k1',
    candidates: { A: msg('A', 'u1', 'assistant'), B: msg('B', 'u1', 'assistant') },
  });
  assert.deepEqual(s.streaming.sort(), ['A', 'B']);
  s = onDelta(s, { conversationId: 'c1', messageId: 'A', delta: 'aaa', candidate: 'A', comparisonId: 'k1' });
  s = onDelta(s, { conversationId: 'c1', messageId: 'B', delta: 'bbb', candidate: 'B', comparisonId: 'k1' });
  assert.deepEqual(comparisonOf(s, 'B')?.candidate, 'B');
  assert.equal(comparisonOf(s, 'A')?.comparison.ready, false);
  const done = (id: string, content: string) => msg(id, 'u1', 'assistant', { content, status: 'complete' });
  s = onCompareReady(s, { conversationId: 'c1', comparisonId: 'k1', candidates: { A: done('A', 'aaa.'), B: done('B', 'bbb.') } });
  assert.deepEqual(s.streaming, []);
  assert.equal(comparisonOf(s, 'A')?.comparison.ready, true);
  assert.deepEqual(shown(s), ['u1', 'A'], 'undecided: A continues');
  s = onCompareChosen(s, { conversationId: 'c1', comparisonId: 'k1', choice: 'B', activeMessageId: 'B', preferencePairId: 'p1' });
  assert.equal(comparisonOf(s, 'B')?.comparison.choice, 'B');
  assert.deepEqual(shown(s), ['u1', 'B']);
  assert.equal(s.messages.find((m) => m.id === 'B')?.content, 'bbb.');
});

test('a send in an existing thread continues from the shown path', () => {
  let s = loadedThread('c1', [msg('u1', null, 'user'), msg('a1', 'u1', 'assistant', { status: 'complete' })]);
  s = onStart(s, { conversation: conv, created: false, userMessage: msg('u2', 'a1', 'user'), message: msg('a2', 'u2', 'assistant') });
  assert.deepEqual(shown(s), ['u1', 'a1', 'u2', 'a2']);
});

test('votes: a loaded vote survives the socket re-sending the message; streamed answers start without one', () => {
  const vote: MessageFeedback = { value: 'up', reasons: ['clear'], comment: null, updatedAt: '2026-01-01T00:00:00.000Z' };
  let s = loadedThread('c1', [msg('u1', null, 'user', { feedback: null }), msg('a1', 'u1', 'assistant', { status: 'complete', feedback: vote })]);
  s = onDone(s, { conversationId: 'c1', message: msg('a1', 'u1', 'assistant', { status: 'complete' }) });
  assert.deepEqual(s.messages.find((m) => m.id === 'a1')?.feedback, vote);
  s = onStart(s, { conversation: conv, created: false, userMessage: null, message: msg('a2', 'u1', 'assistant') });
  assert.equal(s.messages.find((m) => m.id === 'a2')?.feedback, null);
});

test('a reloaded thread brings its comparisons back: undecided shows both answers, a decided B continues from B', () => {
  const messages = [
    msg('u1', null, 'user'),
    msg('a', 'u1', 'assistant', { status: 'complete' }),
    msg('b', 'u1', 'assistant', { status: 'complete' }),
    msg('u2', 'a', 'user'),
    msg('x', 'u2', 'assistant', { status: 'complete' }),
    msg('y', 'u2', 'assistant', { status: 'complete' }),
  ];
  const s = loadedThread('c1', messages, [
    { id: 'k1', messageA: 'a', messageB: 'b', choice: 'A' },
    { id: 'k2', messageA: 'x', messageB: 'y', choice: null },
    { id: 'gone', messageA: 'deleted', messageB: 'b', choice: null },
  ]);
  assert.deepEqual(s.comparisons.map((c) => [c.id, c.userMessageId, c.A, c.B, c.ready, c.choice]), [
    ['k1', 'u1', 'a', 'b', true, 'A'],
    ['k2', 'u2', 'x', 'y', true, null],
  ]);
  assert.equal(comparisonOf(s, 'y')?.comparison.choice, null, 'the undecided pair is known as a comparison again');
  assert.equal(comparisonOf(s, 'y')?.candidate, 'B');
  // A decided for A keeps B aside; the path runs through A.
  assert.deepEqual(shown(s).slice(0, 2), ['u1', 'a']);
  const decidedB = loadedThread('c1', messages.slice(0, 3), [{ id: 'k1', messageA: 'a', messageB: 'b', choice: 'B' }]);
  assert.deepEqual(shown(decidedB), ['u1', 'b']);
});

test('merging after a reload: the server decides, this tab knows what still streams, tab-only comparisons stay', () => {
  const server = [
    { id: 'k1', userMessageId: 'u1', A: 'a', B: 'b', ready: true, choice: null },
    { id: 'k2', userMessageId: 'u2', A: 'x', B: 'y', ready: true, choice: 'tie' as const },
  ];
  const tab = [
    { id: 'k1', userMessageId: 'u1', A: 'a', B: 'b', ready: false, choice: null },
    { id: 'k3', userMessageId: 'u3', A: 'p', B: 'q', ready: false, choice: null },
  ];
  assert.deepEqual(mergeComparisons(server, tab).map((c) => [c.id, c.ready, c.choice]), [
    ['k1', false, null],
    ['k2', true, 'tie'],
    ['k3', false, null],
  ]);
});
