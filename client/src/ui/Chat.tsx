// The chat page: conversation list on the side, the thread (one path through the message tree), and
// the composer. Socket events go through the pure reducers of lib/stream.ts, applied once per frame.
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, errorText } from '../api.ts';
import type { AttuneSocket } from '../socket.ts';
import { readableError } from '../lib/errors.ts';
import {
  comparisonOf,
  emptyThread,
  isStreaming,
  loadedThread,
  mergeComparisons,
  onCompareChosen,
  onCompareReady,
  onCompareStart,
  onDelta,
  onDisconnect,
  onDone,
  onSelect,
  onStart,
  onStopRequested,
  setAsideIds,
  type ThreadState,
} from '../lib/stream.ts';
import { activePath, buildTree, selectSibling, siblingInfo } from '../lib/tree.ts';
import type {
  CompareChosenPayload,
  CompareReadyPayload,
  CompareStartPayload,
  ComparisonChoice,
  Conversation,
  ConversationDetail,
  DeltaPayload,
  DonePayload,
  ErrorPayload,
  Message,
  StartPayload,
} from '../lib/types.ts';
import { AssistantMessage, CompareBlock, UserMessage } from './Messages.tsx';
import { Menu, Pencil, StopSquare, Trash } from './icons.tsx';
import { useNotify } from './notices.tsx';

type Reducer = (s: ThreadState) => ThreadState;

export interface SamplingPrefs {
  temperature: string;
  maxNewTokens: string;
}

function samplingOf(p: SamplingPrefs): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  const t = Number.parseFloat(p.temperature);
  if (p.temperature.trim() !== '' && Number.isFinite(t)) out.temperature = t;
  const m = Number.parseInt(p.maxNewTokens, 10);
  if (p.maxNewTokens.trim() !== '' && Number.isFinite(m)) out.maxNewTokens = m;
  return Object.keys(out).length ? out : undefined;
}

export function Chat({ socket, conversationId, connected }: { socket: AttuneSocket; conversationId: string | null; connected: boolean }) {
  const notify = useNotify();
  const [thread, setThread] = useState<ThreadState>(() => emptyThread(conversationId));
  const threadRef = useRef(thread);
  threadRef.current = thread;
  const [conversations, setConversations] = useState<Conversation[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [search, setSearch] = useState('');
  const [searchHits, setSearchHits] = useState<{ q: string; items: Conversation[] } | null>(null);
  const [loading, setLoading] = useState(false);
  const [sidebarOpen, setSidebarOpen] = useState(false);
  /** Conversations this tab's sends created: their thread is already on screen when the route follows. */
  const createdHere = useRef(new Set<string>());

  // Socket events arrive token by token: queue the reducers and apply them once per frame.
  const queue = useRef<Reducer[]>([]);
  const scheduled = useRef(false);
  const dispatch = useCallback((r: Reducer) => {
    queue.current.push(r);
    if (scheduled.current) return;
    scheduled.current = true;
    const flush = () => {
      if (!scheduled.current) return;
      scheduled.current = false;
      const rs = queue.current;
      queue.current = [];
      setThread((s) => rs.reduce((acc, f) => f(acc), s));
    };
    requestAnimationFrame(flush);
    setTimeout(flush, 100); // background tabs get no animation frames
  }, []);

  const cursorRef = useRef<string | null>(null);
  cursorRef.current = nextCursor;
  const loadConversations = useCallback(
    async (more = false) => {
      try {
        const cursor = cursorRef.current;
        const q = more && cursor ? `?limit=50&cursor=${encodeURIComponent(cursor)}` : '?limit=50';
        const page = await api<{ items: Conversation[]; nextCursor: string | null }>('GET', `/api/conversations${q}`);
        setConversations((cur) => (more ? [...cur, ...page.items.filter((c) => !cur.some((x) => x.id === c.id))] : page.items));
        setNextCursor(page.nextCursor);
      } catch (e) {
        notify(errorText(e));
      }
    },
    [notify],
  );

  const loadThread = useCallback(
    async (id: string) => {
      setLoading(true);
      try {
        const detail = await api<ConversationDetail>('GET', `/api/conversations/${id}`);
        setThread((s) => {
          // Keep what this tab knows that the server does not say (selections, streams in flight).
          const base = loadedThread(id, detail.messages, detail.comparisons ?? []);
          return s.conversationId === id ? { ...base, comparisons: mergeComparisons(base.comparisons, s.comparisons), selection: s.selection, streaming: s.streaming.filter((x) => detail.messages.some((m) => m.id === x && m.status === 'partial')) } : base;
        });
      } catch (e) {
        notify(errorText(e));
        if (e instanceof Error && 'status' in e && (e as { status: number }).status === 404) location.hash = '#/';
      } finally {
        setLoading(false);
      }
    },
    [notify],
  );

  // Server-side search over titles and message text, 250 ms after the last keystroke.
  useEffect(() => {
    const q = search.trim();
    if (!q) {
      setSearchHits(null);
      return;
    }
    let stale = false;
    const timer = setTimeout(() => {
      api<{ items: Conversation[]; nextCursor: string | null }>('GET', `/api/conversations?limit=50&q=${encodeURIComponent(q)}`)
        .then((page) => !stale && setSearchHits({ q, items: page.items }))
        .catch((e: unknown) => !stale && notify(errorText(e)));
    }, 250);
    return () => {
      stale = true;
      clearTimeout(timer);
    };
  }, [search, notify]);

  useEffect(() => {
    void loadConversations();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // Route → thread (a conversation this thread just created is already shown).
  useEffect(() => {
    if (conversationId === null) {
      if (threadRef.current.conversationId !== null) setThread(emptyThread());
      return;
    }
    if (threadRef.current.conversationId === conversationId && threadRef.current.messages.length > 0) return;
    // Once: the route following a send that created this conversation (the thread adopts it itself).
    if (createdHere.current.delete(conversationId) && (threadRef.current.conversationId ?? conversationId) === conversationId) return;
    setThread(emptyThread(conversationId));
    void loadThread(conversationId);
  }, [conversationId, loadThread]);

  useEffect(() => {
    const onStartEv = (p: StartPayload) => {
      dispatch((s) => onStart(s, p));
      if (p.userMessage) {
        setAwaiting(false);
        setAccepted((n) => n + 1);
      }
      if (p.created) {
        createdHere.current.add(p.conversation.id);
        setConversations((cur) => [p.conversation, ...cur.filter((c) => c.id !== p.conversation.id)]);
        if (threadRef.current.conversationId === null) history.replaceState(null, '', `#/c/${p.conversation.id}`);
        // replaceState fires no hashchange: tell the router ourselves, after the thread adopted it.
        queueMicrotask(() => dispatchEvent(new HashChangeEvent('hashchange')));
      }
    };
    const onCompareStartEv = (p: CompareStartPayload) => {
      dispatch((s) => onCompareStart(s, p));
      setAwaiting(false);
      setAccepted((n) => n + 1);
      if (p.created) {
        createdHere.current.add(p.conversation.id);
        setConversations((cur) => [p.conversation, ...cur.filter((c) => c.id !== p.conversation.id)]);
        if (threadRef.current.conversationId === null) history.replaceState(null, '', `#/c/${p.conversation.id}`);
        queueMicrotask(() => dispatchEvent(new HashChangeEvent('hashchange')));
      }
    };
    const onDeltaEv = (p: DeltaPayload) => dispatch((s) => onDelta(s, p));
    const onDoneEv = (p: DonePayload) => {
      dispatch((s) => onDone(s, p));
      setConversations((cur) => {
        const c = cur.find((x) => x.id === p.conversationId);
        return c ? [{ ...c, updatedAt: p.message.createdAt }, ...cur.filter((x) => x.id !== c.id)] : cur;
      });
    };
    const onReadyEv = (p: CompareReadyPayload) => dispatch((s) => onCompareReady(s, p));
    const onChosenEv = (p: CompareChosenPayload) => dispatch((s) => onCompareChosen(s, p));
    const onErrorEv = (p: ErrorPayload) => {
      // Asking to stop an answer that has just finished is not worth a message.
      if (p.code === 'not_generating') return;
      if (p.details?.event === 'message:send') setAwaiting(false);
      notify(readableError(p));
    };
    let lost = false;
    const onDisconnectEv = () => {
      lost = true;
      setAwaiting(false);
      dispatch(onDisconnect);
    };
    // Back after a disconnect: the server kept what was generated (partial); show it.
    const onReconnect = () => {
      if (!lost) return;
      lost = false;
      const id = threadRef.current.conversationId;
      if (id) void loadThread(id);
      void loadConversations();
    };
    socket.on('message:start', onStartEv);
    socket.on('compare:start', onCompareStartEv);
    socket.on('message:delta', onDeltaEv);
    socket.on('message:done', onDoneEv);
    socket.on('compare:ready', onReadyEv);
    socket.on('compare:chosen', onChosenEv);
    socket.on('error', onErrorEv);
    socket.on('disconnect', onDisconnectEv);
    socket.on('connect', onReconnect);
    return () => {
      socket.off('message:start', onStartEv);
      socket.off('compare:start', onCompareStartEv);
      socket.off('message:delta', onDeltaEv);
      socket.off('message:done', onDoneEv);
      socket.off('compare:ready', onReadyEv);
      socket.off('compare:chosen', onChosenEv);
      socket.off('error', onErrorEv);
      socket.off('disconnect', onDisconnectEv);
      socket.off('connect', onReconnect);
    };
  }, [socket, dispatch, notify, loadThread, loadConversations]);

  const [prefs, setPrefs] = useState<SamplingPrefs>({ temperature: '', maxNewTokens: '' });
  /** A send is on its way: the text stays in the box until the server takes it (or refuses it). */
  const [awaiting, setAwaiting] = useState(false);
  const [accepted, setAccepted] = useState(0);
  const [compareMode, setCompareMode] = useState(false);
  const streaming = thread.streaming.length > 0;

  const send = (content: string): boolean => {
    if (!connected) {
      notify('Not connected: the message was not sent. Reconnecting…');
      return false;
    }
    const sampling = samplingOf(prefs);
    pinned.current = true;
    setAwaiting(true);
    socket.emit('message:send', {
      ...(thread.conversationId ? { conversationId: thread.conversationId } : {}),
      content,
      ...(sampling ? { sampling } : {}),
      ...(compareMode ? { compare: true } : {}),
    });
    return true;
  };
  const stop = useCallback(() => {
    for (const id of threadRef.current.streaming) {
      socket.emit('message:abort', { messageId: id });
      dispatch((s) => onStopRequested(s, id));
    }
  }, [socket, dispatch]);
  const regenerate = (messageId: string) => {
    if (!connected) return notify('Not connected: try again once reconnected.');
    const sampling = samplingOf(prefs);
    socket.emit('message:regenerate', { messageId, ...(sampling ? { sampling } : {}) });
  };
  const choose = (comparisonId: string, choice: ComparisonChoice) => socket.emit('compare:choose', { comparisonId, choice });

  // Esc stops a generation from anywhere on the page.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && threadRef.current.streaming.length > 0) {
        e.preventDefault();
        stop();
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [stop]);

  const tree = useMemo(() => buildTree(thread.messages), [thread.messages]);

  // Follow the conversation as it grows, unless the reader scrolled up.
  const scroller = useRef<HTMLDivElement>(null);
  const pinned = useRef(true);
  useEffect(() => {
    const el = scroller.current;
    if (el && pinned.current) el.scrollTop = el.scrollHeight;
  }, [thread]);
  const path = useMemo(() => activePath(tree, thread.selection, setAsideIds(thread)), [tree, thread]);

  const [renaming, setRenaming] = useState<string | null>(null);
  const rename = async (c: Conversation, title: string) => {
    setRenaming(null);
    if (title.trim() === '' || title.trim() === c.title) return;
    try {
      const updated = await api<Conversation>('PATCH', `/api/conversations/${c.id}`, { title: title.trim() });
      setConversations((cur) => cur.map((x) => (x.id === c.id ? updated : x)));
      setSearchHits((h) => h && { ...h, items: h.items.map((x) => (x.id === c.id ? updated : x)) });
    } catch (e) {
      notify(errorText(e));
    }
  };
  const remove = async (c: Conversation) => {
    if (!confirm(`Delete “${c.title}” and all of its messages?`)) return;
    try {
      await api('DELETE', `/api/conversations/${c.id}`);
      setConversations((cur) => cur.filter((x) => x.id !== c.id));
      setSearchHits((h) => h && { ...h, items: h.items.filter((x) => x.id !== c.id) });
      if (thread.conversationId === c.id) location.hash = '#/';
      notify('Conversation deleted.', 'info');
    } catch (e) {
      notify(errorText(e));
    }
  };

  // Titles of loaded conversations filter at once; the server's answer (titles and message text) follows.
  const needle = search.trim();
  const shown = needle
    ? (searchHits?.q === needle ? searchHits.items : conversations.filter((c) => c.title.toLowerCase().includes(needle.toLowerCase())))
    : conversations;
  const rendered = new Set<string>();

  return (
    <div class={`chat ${sidebarOpen ? 'sidebar-open' : ''}`}>
      <aside class="sidebar" aria-label="Conversations">
        <div class="sidebar-head">
          <button type="button" class="sidebar-close" aria-label="Hide conversations" onClick={() => setSidebarOpen(false)}>
            Close
          </button>
          <a class="button primary" href="#/" onClick={() => { setSidebarOpen(false); if (conversationId === null) setThread(emptyThread()); }}>
            + New chat
          </a>
          <label for="conv-search" class="visually-hidden">
            Search conversations
          </label>
          <input id="conv-search" type="search" placeholder="Search conversations" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        </div>
        <ul class="conv-list">
          {shown.map((c) => (
            <li key={c.id} class={c.id === thread.conversationId ? 'active' : ''}>
              {renaming === c.id ? (
                <RenameField conversation={c} onDone={(title) => (title === null ? setRenaming(null) : rename(c, title))} />
              ) : (
                <>
                  <a href={`#/c/${c.id}`} aria-current={c.id === thread.conversationId ? 'page' : undefined} onClick={() => setSidebarOpen(false)} title={c.title}>
                    {c.title}
                  </a>
                  <button type="button" class="icon" aria-label={`Rename “${c.title}”`} title="Rename" onClick={() => setRenaming(c.id)}>
                    <Pencil />
                  </button>
                </>
              )}
              <button type="button" class="icon" aria-label={`Delete “${c.title}”`} title="Delete" onClick={() => remove(c)}>
                <Trash />
              </button>
            </li>
          ))}
          {shown.length === 0 && <li class="muted empty">{search ? 'No conversation matches.' : 'No conversations yet.'}</li>}
        </ul>
        {nextCursor && !needle && (
          <button type="button" onClick={() => loadConversations(true)}>
            Load more
          </button>
        )}
      </aside>
      <section class="thread" aria-label="Conversation">
        <div class="thread-head">
          <button type="button" class="sidebar-toggle" aria-expanded={sidebarOpen} aria-label="Show conversations" onClick={() => setSidebarOpen(!sidebarOpen)}>
            <Menu />
          </button>
          <h1 class="thread-title">{conversations.find((c) => c.id === thread.conversationId)?.title ?? (thread.conversationId ? '' : 'New chat')}</h1>
        </div>
        <div
          class="messages"
          ref={scroller}
          aria-busy={loading || streaming}
          data-testid="messages"
          onScroll={(e) => {
            const el = e.currentTarget;
            pinned.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
          }}
        >
          {path.length === 0 && !loading && (
            <div class="welcome">
              <h2>What would you like to know?</h2>
              <p class="muted">Vote on answers with the thumbs or compare two answers side by side (A/B): Attune learns your taste from them.</p>
            </div>
          )}
          {path.map((m) => {
            if (rendered.has(m.id)) return null;
            rendered.add(m.id);
            const info = siblingInfo(tree, m.id);
            const nav = {
              info,
              onPrev: info.prevId ? () => dispatch((s) => onSelect(s, selectSibling(buildTree(s.messages), s.selection, info.prevId!))) : undefined,
              onNext: info.nextId ? () => dispatch((s) => onSelect(s, selectSibling(buildTree(s.messages), s.selection, info.nextId!))) : undefined,
            };
            if (m.role === 'user') return <UserMessage key={m.id} message={m} nav={nav} />;
            const cmp = comparisonOf(thread, m.id);
            if (cmp && cmp.comparison.choice === null) {
              const a = tree.byId.get(cmp.comparison.A) as Message | undefined;
              const b = tree.byId.get(cmp.comparison.B) as Message | undefined;
              if (a && b) {
                rendered.add(a.id).add(b.id);
                return (
                  <CompareBlock
                    key={cmp.comparison.id}
                    comparison={cmp.comparison}
                    a={a}
                    b={b}
                    streamingA={isStreaming(thread, a.id)}
                    streamingB={isStreaming(thread, b.id)}
                    onChoose={(choice) => choose(cmp.comparison.id, choice)}
                  />
                );
              }
            }
            return (
              <AssistantMessage
                key={m.id}
                message={m}
                nav={nav}
                streaming={isStreaming(thread, m.id)}
                stopping={thread.stopping.includes(m.id)}
                comparisonNote={cmp ? { candidate: cmp.candidate, choice: cmp.comparison.choice } : null}
                onStop={stop}
                onRegenerate={() => regenerate(m.id)}
              />
            );
          })}
        </div>
        <Composer
          onSend={send}
          onStop={stop}
          streaming={streaming}
          awaiting={awaiting}
          accepted={accepted}
          connected={connected}
          compareMode={compareMode}
          setCompareMode={setCompareMode}
          prefs={prefs}
          setPrefs={setPrefs}
        />
      </section>
    </div>
  );
}

function Composer(props: {
  onSend: (text: string) => boolean;
  onStop: () => void;
  streaming: boolean;
  awaiting: boolean;
  /** Counts the sends the server took: each clears the box. */
  accepted: number;
  connected: boolean;
  compareMode: boolean;
  setCompareMode: (v: boolean) => void;
  prefs: SamplingPrefs;
  setPrefs: (p: SamplingPrefs) => void;
}) {
  const [text, setText] = useState('');
  const ref = useRef<HTMLTextAreaElement>(null);
  useEffect(() => ref.current?.focus(), []);
  useEffect(() => {
    if (props.accepted > 0) setText('');
  }, [props.accepted]);
  const submit = () => {
    const t = text.trim();
    if (!t || props.streaming || props.awaiting) return;
    props.onSend(t);
  };
  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      <label for="composer-input" class="visually-hidden">
        Message
      </label>
      <textarea
        id="composer-input"
        ref={ref}
        rows={2}
        placeholder="Message Attune (Enter sends, Shift+Enter for a new line, Esc stops)"
        value={text}
        onInput={(e) => setText(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            submit();
          }
        }}
      />
      <div class="composer-bar">
        <label class="check">
          <input type="checkbox" checked={props.compareMode} onChange={(e) => props.setCompareMode(e.currentTarget.checked)} />
          A/B: compare two answers
        </label>
        <details class="options">
          <summary>Options</summary>
          <div class="options-body">
            <label for="opt-temperature">Temperature</label>
            <input id="opt-temperature" type="number" min="0" max="2" step="0.1" placeholder="server default" value={props.prefs.temperature} onInput={(e) => props.setPrefs({ ...props.prefs, temperature: e.currentTarget.value })} />
            <label for="opt-max-tokens">Max tokens</label>
            <input id="opt-max-tokens" type="number" min="1" step="1" placeholder="server default" value={props.prefs.maxNewTokens} onInput={(e) => props.setPrefs({ ...props.prefs, maxNewTokens: e.currentTarget.value })} />
          </div>
        </details>
        <span class="spacer" />
        {props.streaming ? (
          <button type="button" class="danger" onClick={props.onStop} data-testid="stop">
            <StopSquare /> Stop
          </button>
        ) : (
          <button type="submit" class="primary" disabled={!text.trim() || !props.connected || props.awaiting} data-testid="send">
            Send
          </button>
        )}
      </div>
    </form>
  );
}

/** Inline title editor: Enter saves, Esc (or leaving the field) cancels. */
function RenameField({ conversation, onDone }: { conversation: Conversation; onDone: (title: string | null) => void }) {
  const [title, setTitle] = useState(conversation.title);
  const ref = useRef<HTMLInputElement>(null);
  useEffect(() => {
    ref.current?.focus();
    ref.current?.select();
  }, []);
  const id = `rename-${conversation.id}`;
  return (
    <form
      class="rename"
      onSubmit={(e) => {
        e.preventDefault();
        onDone(title);
      }}
    >
      <label for={id} class="visually-hidden">
        New title for “{conversation.title}”
      </label>
      <input
        id={id}
        ref={ref}
        value={title}
        maxLength={200}
        onInput={(e) => setTitle(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === 'Escape') {
            e.preventDefault();
            e.stopPropagation();
            onDone(null);
          }
        }}
        onBlur={() => onDone(null)}
      />
    </form>
  );
}
