// Readable messages for the user (errors, confirmations) in one polite live region.
import { createContext } from 'preact';
import { useCallback, useContext, useMemo, useRef, useState } from 'preact/hooks';

export type NoticeKind = 'error' | 'info';
interface Notice {
  id: number;
  kind: NoticeKind;
  text: string;
  key?: string;
}
/** `key`: a later notice with the same key replaces the earlier one (e.g. the connection's state). */
type Notify = (text: string, kind?: NoticeKind, key?: string) => void;

const NoticeContext = createContext<Notify>(() => undefined);
export const useNotify = (): Notify => useContext(NoticeContext);

export function NoticeProvider({ children }: { children: preact.ComponentChildren }) {
  const [notices, setNotices] = useState<Notice[]>([]);
  const next = useRef(1);
  const dismiss = useCallback((id: number) => setNotices((n) => n.filter((x) => x.id !== id)), []);
  const notify = useCallback<Notify>(
    (text, kind = 'error', key) => {
      const id = next.current++;
      setNotices((n) => {
        const rest = key ? n.filter((x) => x.key !== key) : n;
        // The same text twice (a reconnect loop) is shown once.
        return rest.some((x) => x.text === text) ? rest : [...rest.slice(-3), { id, kind, text, key }];
      });
      setTimeout(() => dismiss(id), kind === 'error' ? 9000 : 4000);
    },
    [dismiss],
  );
  const value = useMemo(() => notify, [notify]);
  return (
    <NoticeContext.Provider value={value}>
      {children}
      <div class="notices" role="status" aria-live="polite">
        {notices.map((n) => (
          <div key={n.id} class={`notice notice-${n.kind}`} data-testid={`notice-${n.kind}`}>
            <span>{n.text}</span>
            <button type="button" class="icon" aria-label="Dismiss message" onClick={() => dismiss(n.id)}>
              ×
            </button>
          </div>
        ))}
      </div>
    </NoticeContext.Provider>
  );
}
