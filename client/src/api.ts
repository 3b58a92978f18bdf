// HTTP calls to the server (same origin; the session rides in the httpOnly cookie). Errors become
// ApiError with the server's {code, message, details} and the status.
import { type AppErrorLike, readableError } from './lib/errors.ts';

export class ApiError extends Error implements AppErrorLike {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
  get readable(): string {
    return readableError(this);
  }
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', `the server cannot be reached (${e instanceof Error ? e.message : String(e)})`);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON (a proxy's error page): reported below by status.
  }
  if (!res.ok) {
    const err = (json as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined)?.error;
    throw new ApiError(res.status, err?.code ?? `http_${res.status}`, err?.message ?? `${res.status} ${res.statusText}`, { ...(err?.details ?? {}), status: res.status });
  }
  return json as T;
}

/** Whether an endpoint is missing on this server (not built yet, or not enabled). */
export const isMissing = (e: unknown): boolean => e instanceof ApiError && (e.code === 'route_not_found' || e.status === 405 || (e.status === 404 && e.code === 'http_404'));

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.readable;
  return e instanceof Error ? e.message : String(e);
}

/** Saves `data` as a file download. */
export function download(filename: string, data: string, type = 'application/json'): void {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
