// Stream assembly: the open conversation's messages as the socket events arrive. A pure reducer, so
// the order of events (start → deltas → done; compare start → deltas of A and B → ready → chosen; a
// disconnect mid-stream) is tested without a browser.
import type {
  Candidate,
  CompareChosenPayload,
  CompareReadyPayload,
  CompareStartPayload,
  ComparisonChoice,
  DeltaPayload,
  DonePayload,
  Message,
  StartPayload,
  StoredComparison,
} from './types.ts';
import { buildTree, selectPathTo, type Selection } from './tree.ts';

export interface ComparisonState {
  id: string;
  userMessageId: string;
  A: string;
  B: string;
  /** Both candidates have finished. */
  ready: boolean;
  choice: ComparisonChoice | null;
}

export interface ThreadState {
  conversationId: string | null;
  messages: Message[];
  /** Ids of assistant messages still streaming. */
  streaming: string[];
  /** Ids the user asked to stop (the server confirms with message:done, status partial). */
  stopping: string[];
  comparisons: ComparisonState[];
  selection: Selection;
}

export const emptyThread = (conversationId: string | null = null): ThreadState => ({
  conversationId,
  messages: [],
  streaming: [],
  stopping: [],
  comparisons: [],
  selection: {},
});

/**
 * A thread loaded over HTTP: nothing streams in this tab, and the stored comparisons come back as
 * they were left (an undecided one shows its two answers and the choice again).
 */
export function loadedThread(conversationId: string, messages: Message[], stored: readonly Pick<StoredComparison, 'id' | 'messageA' | 'messageB' | 'choice'>[] = []): ThreadState {
  const byId = new Map(messages.map((m) => [m.id, m]));
  const comparisons: ComparisonState[] = [];
  for (const c of stored) {
    const a = byId.get(c.messageA);
    if (!a || !byId.has(c.messageB) || a.parentId === null) continue;
    comparisons.push({ id: c.id, userMessageId: a.parentId, A: c.messageA, B: c.messageB, ready: true, choice: c.choice });
  }
  return { ...emptyThread(conversationId), messages: [...messages], comparisons };
}

/**
 * Comparisons after a reload of the open thread: the server's, with what this tab knows fresher
 * (one still streaming here is not ready yet), plus any the server did not list.
 */
export function mergeComparisons(fromServer: readonly ComparisonState[], inTab: readonly ComparisonState[]): ComparisonState[] {
  const tab = new Map(inTab.map((c) => [c.id, c]));
  const merged = fromServer.map((c) => {
    const t = tab.get(c.id);
    return t ? { ...c, ready: t.ready || c.choice !== null, choice: c.choice ?? t.choice } : c;
  });
  return [...merged, ...inTab.filter((c) => !fromServer.some((s) => s.id === c.id))];
}

/**
 * Adds or replaces a message. Socket payloads carry no vote: a message they bring keeps the vote known
 * before, and a new one has none (it was just written).
 */
function upsert(messages: Message[], m: Message): Message[] {
  const i = messages.findIndex((x) => x.id === m.id);
  const next: Message = m.feedback !== undefined ? m : { ...m, feedback: i < 0 ? null : (messages[i]!.feedback ?? null) };
  if (i < 0) return [...messages, next];
  const out = messages.slice();
  out[i] = next;
  return out;
}

const without = (ids: string[], id: string) => ids.filter((x) => x !== id);
const withId = (ids: string[], id: string) => (ids.includes(id) ? ids : [...ids, id]);

function showing(state: ThreadState, messages: Message[], id: string): Selection {
  return selectPathTo(buildTree(messages), state.selection, id);
}

/** Whether an event belongs to this thread; a brand-new conversation is adopted by an empty thread. */
function accepts(state: ThreadState, conversationId: string, created: boolean): boolean {
  return state.conversationId === conversationId || (state.conversationId === null && created);
}

export function onStart(state: ThreadState, p: StartPayload): ThreadState {
  if (!accepts(state, p.conversation.id, p.created)) return state;
  let messages = state.messages;
  if (p.userMessage) messages = upsert(messages, p.userMessage);
  messages = upsert(messages, p.message);
  return {
    ...state,
    conversationId: p.conversation.id,
    messages,
    streaming: withId(state.streaming, p.message.id),
    selection: showing(state, messages, p.message.id),
  };
}

export function onCompareStart(state: ThreadState, p: CompareStartPayload): ThreadState {
  if (!accepts(state, p.conversation.id, p.created)) return state;
  let messages = upsert(state.messages, p.userMessage);
  messages = upsert(upsert(messages, p.candidates.A), p.candidates.B);
  const comparison: ComparisonState = { id: p.comparisonId, userMessageId: p.userMessage.id, A: p.candidates.A.id, B: p.candidates.B.id, ready: false, choice: null };
  return {
    ...state,
    conversationId: p.conversation.id,
    messages,
    streaming: withId(withId(state.streaming, p.candidates.A.id), p.candidates.B.id),
    comparisons: [...state.comparisons.filter((c) => c.id !== p.comparisonId), comparison],
    selection: showing(state, messages, p.candidates.A.id),
  };
}

export function onDelta(state: ThreadState, p: DeltaPayload): ThreadState {
  if (p.conversationId !== state.conversationId) return state;
  const i = state.messages.findIndex((m) => m.id === p.messageId);
  if (i < 0) return state;
  const messages = state.messages.slice();
  messages[i] = { ...messages[i]!, content: messages[i]!.content + p.delta };
  return { ...state, messages };
}

/** The stored message replaces what was assembled (the server's text is the truth, e.g. after stop strings). */
export function onDone(state: ThreadState, p: DonePayload): ThreadState {
  if (p.conversationId !== state.conversationId) return state;
  return {
    ...state,
    messages: upsert(state.messages, p.message),
    streaming: without(state.streaming, p.message.id),
    stopping: without(state.stopping, p.message.id),
  };
}

export function onCompareReady(state: ThreadState, p: CompareReadyPayload): ThreadState {
  if (p.conversationId !== state.conversationId) return state;
  const messages = upsert(upsert(state.messages, p.candidates.A), p.candidates.B);
  return {
    ...state,
    messages,
    streaming: without(without(state.streaming, p.candidates.A.id), p.candidates.B.id),
    comparisons: state.comparisons.map((c) => (c.id === p.comparisonId ? { ...c, ready: true } : c)),
  };
}

export function onCompareChosen(state: ThreadState, p: CompareChosenPayload): ThreadState {
  if (p.conversationId !== state.conversationId) return state;
  return {
    ...state,
    comparisons: state.comparisons.map((c) => (c.id === p.comparisonId ? { ...c, choice: p.choice, ready: true } : c)),
    selection: showing(state, state.messages, p.activeMessageId),
  };
}

/** The user pressed stop: shown at once; the server's message:done (status partial) settles it. */
export function onStopRequested(state: ThreadState, messageId: string): ThreadState {
  if (!state.streaming.includes(messageId)) return state;
  return { ...state, stopping: withId(state.stopping, messageId) };
}

/**
 * The socket dropped: the server stores every answer in flight as partial, so show them as partial
 * with what arrived; a reload after reconnecting brings the stored text.
 */
export function onDisconnect(state: ThreadState): ThreadState {
  if (state.streaming.length === 0) return state;
  const cut = new Set(state.streaming);
  return {
    ...state,
    messages: state.messages.map((m) => (cut.has(m.id) ? { ...m, status: 'partial', finishReason: 'disconnect' } : m)),
    streaming: [],
    stopping: [],
  };
}

/** The user stepped to another sibling. */
export function onSelect(state: ThreadState, selection: Selection): ThreadState {
  return { ...state, selection };
}

/** Candidates of an undecided (or decided for B) comparison that the conversation does not continue from. */
export function setAsideIds(state: ThreadState): Set<string> {
  const out = new Set<string>();
  for (const c of state.comparisons) out.add(c.choice === 'B' ? c.A : c.B);
  return out;
}

/** The comparison a message is a candidate of, and which one it is. */
export function comparisonOf(state: ThreadState, messageId: string): { comparison: ComparisonState; candidate: Candidate } | null {
  for (const c of state.comparisons) {
    if (c.A === messageId) return { comparison: c, candidate: 'A' };
    if (c.B === messageId) return { comparison: c, candidate: 'B' };
  }
  return null;
}

export const isStreaming = (state: ThreadState, id: string): boolean => state.streaming.includes(id);
