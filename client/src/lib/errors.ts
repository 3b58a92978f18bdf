// Readable error text for the people using the app: the server's {error: {code, message, details}}
// (HTTP) and socket `error` events become one sentence, with the wait time for rate limits.

export interface AppErrorLike {
  code: string;
  message: string;
  details?: Record<string, unknown>;
  status?: number;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function readableError(e: AppErrorLike): string {
  const d = e.details ?? {};
  const status = e.status ?? num(d.status);
  if (status === 429 || e.code === 'rate_limited' || /rate.?limit/i.test(e.code)) {
    const wait = num(d.retryAfterSeconds) ?? num(d.retryAfter) ?? num(d.resetSeconds);
    return wait !== null ? `Too many requests: try again in ${Math.max(1, Math.ceil(wait))} s.` : `Too many requests: ${e.message}`;
  }
  if (e.code === 'disconnected') return 'Connection lost: reconnecting…';
  if (status === 401 || e.code === 'unauthorized') return 'Your session has ended: please sign in again.';
  if (status === 413 || e.code === 'payload_too_large') return `Too long: ${e.message}`;
  if (e.code === 'validation_failed' || status === 400 || status === 422) {
    const issues = Array.isArray(d.issues) ? (d.issues as { path?: string; message?: string }[]) : [];
    if (issues.length > 0) return `Please check: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`;
    return `Please check: ${e.message}`;
  }
  if (status !== null && status >= 500) return `The server had a problem (${e.message}). Try again.`;
  return e.message ? e.message.charAt(0).toUpperCase() + e.message.slice(1) : `Error: ${e.code}`;
}
