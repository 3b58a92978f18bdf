// The shell: who is signed in, the socket, the pages (hash routes: #/c/<id>, #/me, #/admin).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText } from '../api.ts';
import { readableError } from '../lib/errors.ts';
import type { ErrorPayload, User } from '../lib/types.ts';
import { type AttuneSocket, connectSocket, type ConnectionState } from '../socket.ts';
import { Admin } from './Admin.tsx';
import { Chat } from './Chat.tsx';
import { Login } from './Login.tsx';
import { NoticeProvider, useNotify } from './notices.tsx';
import { Personalization } from './Personalization.tsx';

export function App() {
  return (
    <NoticeProvider>
      <Root />
    </NoticeProvider>
  );
}

function Root() {
  const [me, setMe] = useState<User | null | undefined>(undefined);
  useEffect(() => {
    api<User>('GET', '/api/me').then(setMe, () => setMe(null));
  }, []);
  if (me === undefined) return <p class="loading" aria-busy="true">Loading…</p>;
  if (me === null) return <Login onSignedIn={setMe} />;
  return <Shell me={me} onSignedOut={() => setMe(null)} />;
}

export type Route = { page: 'chat'; conversationId: string | null } | { page: 'me' } | { page: 'admin' };

export function parseRoute(hash: string): Route {
  const h = hash.replace(/^#\/?/, '');
  if (h === 'me') return { page: 'me' };
  if (h === 'admin') return { page: 'admin' };
  const m = /^c\/([0-9a-f-]{36})$/i.exec(h);
  return { page: 'chat', conversationId: m ? m[1]! : null };
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

function Shell({ me, onSignedOut }: { me: User; onSignedOut: () => void }) {
  const notify = useNotify();
  const route = useRoute();
  const [socket, setSocket] = useState<AttuneSocket | null>(null);
  const [conn, setConn] = useState<ConnectionState>('connecting');
  const signedOut = useRef(onSignedOut);
  signedOut.current = onSignedOut;

  useEffect(() => {
    const s = connectSocket();
    let wasConnected = false;
    s.on('connect', () => {
      if (wasConnected) notify('Reconnected.', 'info', 'connection');
      wasConnected = true;
      setConn('connected');
    });
    s.on('disconnect', (reason) => {
      setConn(reason === 'io client disconnect' ? 'offline' : 'reconnecting');
      if (reason !== 'io client disconnect') notify('Connection lost: reconnecting…', 'error', 'connection');
      // socket.io does not retry by itself after the server closed the socket (a restart, a
      // shutdown): try again shortly; failures then go through its usual reconnection backoff.
      if (reason === 'io server disconnect') setTimeout(() => s.connected || s.connect(), 1000);
    });
    s.on('connect_error', (err: Error & { data?: ErrorPayload }) => {
      setConn('reconnecting');
      if (err.data?.code === 'unauthorized' || err.data?.code === 'session_expired') {
        s.disconnect();
        signedOut.current();
        return;
      }
      notify(err.data ? readableError(err.data) : `Cannot reach the server (${err.message}): retrying…`, 'error', 'connection');
    });
    // An admin published a user-model version: new answers use it from now on.
    s.on('personalization:published', (p: { versionId: string | null }) => {
      notify(p.versionId ? `Personalization updated: new answers use version ${p.versionId.slice(0, 8)}.` : 'Personalization was switched off: new answers are generic.', 'info');
    });
    setSocket(s);
    return () => {
      s.removeAllListeners();
      s.disconnect();
    };
  }, [notify]);

  const signOut = async () => {
    try {
      await api('POST', '/api/auth/logout');
    } catch (e) {
      notify(errorText(e));
    }
    location.hash = '';
    onSignedOut();
  };

  const connLabel = { connecting: 'Connecting…', connected: 'Connected', reconnecting: 'Reconnecting…', offline: 'Offline' }[conn];
  return (
    <div class="shell">
      <a
        class="skip"
        href="#composer-input"
        onClick={(e) => {
          // The hash is the router's: move focus without navigating.
          e.preventDefault();
          document.getElementById('composer-input')?.focus();
        }}
      >
        Skip to the message box
      </a>
      <header class="topbar">
        <a class="brand" href="#/">
          Attune
        </a>
        <nav aria-label="Pages">
          <a href="#/" aria-current={route.page === 'chat' ? 'page' : undefined}>
            Chat
          </a>
          <a href="#/me" aria-current={route.page === 'me' ? 'page' : undefined}>
            <span class="wide-only">Personalization</span>
            <span class="narrow-only">You</span>
          </a>
          {me.role === 'admin' && (
            <a href="#/admin" aria-current={route.page === 'admin' ? 'page' : undefined}>
              Admin
            </a>
          )}
        </nav>
        <span class={`conn conn-${conn}`} data-testid="connection" title={connLabel}>
          <span class="dot" aria-hidden="true" />
          <span class="conn-label">{connLabel}</span>
        </span>
        <span class="who" title={`Signed in as ${me.username}`}>
          {me.username}
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main class="page" id="main">
        {route.page === 'chat' && socket && <Chat socket={socket} conversationId={route.conversationId} connected={conn === 'connected'} />}
        {route.page === 'me' && <Personalization me={me} onDeleted={onSignedOut} />}
        {route.page === 'admin' && me.role === 'admin' && socket && <Admin me={me} socket={socket} />}
        {route.page === 'admin' && me.role !== 'admin' && <p>The admin dashboard is for admins.</p>}
      </main>
    </div>
  );
}
