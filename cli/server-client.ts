// The client of a running server that `retrain` and `sim run --server` use: its public HTTP API
// and socket.io like any other client (sign-in, start a retraining job, follow it to the end, read
// its version). Failures are CliErrors naming the flag to fix (--server, the credential flags).
import { io as connect, type Socket } from 'socket.io-client';
import { CliError } from './flags.ts';

export const DEFAULT_SERVER_URL = 'http://127.0.0.1:3000';

/** An error response of the server: {"error": {code, message, details}} with its status. */
export class ServerError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ServerError';
  }
}

export interface TrainingJob {
  id: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  trigger: string;
  scope: string[] | null;
  /** Times are ISO-8601 strings, as on every wire of the server. */
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  progress: { phase?: string; step?: number; totalSteps?: number; loss?: number | null; accuracy?: number | null; etaSeconds?: number | null; done?: number; total?: number };
  versionId: string | null;
}

export interface UserModelVersion {
  id: string;
  createdAt: string;
  publishedAt: string | null;
  status: string;
  current: boolean;
  reason: string | null;
  jobId: string | null;
  config: Record<string, unknown>;
  metrics: Record<string, unknown>;
}

export const TERMINAL_STATUSES = new Set(['succeeded', 'failed', 'cancelled']);

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** HTTP to one server: JSON in and out, bearer tokens, waits out 429s, names --server when unreachable. */
export class ServerClient {
  readonly url: string;

  constructor(url: string, private readonly log: (line: string) => void = () => {}) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new CliError(`--server "${url}": not a URL like http://127.0.0.1:3000`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CliError(`--server "${url}": must be an http:// or https:// URL`);
    this.url = u.origin;
  }

  async request<T>(method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(`${this.url}${path}`, {
          method,
          headers: { accept: 'application/json', ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) },
          ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
        });
      } catch (e) {
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        throw new CliError(`--server ${this.url}: cannot reach the server (${cause?.code ?? cause?.message ?? (e as Error).message}); is it running?`);
      }
      const text = await res.text();
      let json: unknown = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        if (!res.ok) throw new ServerError(res.status, 'http_error', `${method} ${path}: ${res.status} ${res.statusText}`);
        throw new CliError(`--server ${this.url}: ${method} ${path} did not answer JSON; is this an Attune server?`);
      }
      if (res.ok) return json as T;
      const err = (json as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | null)?.error;
      if (res.status === 429 && attempt < 20) {
        const after = Number(res.headers.get('retry-after') ?? err?.details?.retryAfterSeconds ?? 5);
        this.log(`  rate limited on ${method} ${path}: waiting ${after} s (run the server with higher ATTUNE_AUTH_RATE_LIMIT / ATTUNE_CHAT_RATE_LIMIT for sims)`);
        await sleep(Math.max(1, after) * 1000 + 200);
        continue;
      }
      throw new ServerError(res.status, err?.code ?? 'http_error', err?.message ?? `${method} ${path}: ${res.status} ${res.statusText}`, err?.details ?? {});
    }
  }

  /** A socket.io connection authenticated with `token`; rejects with the connect error. */
  async socket(token: string): Promise<Socket> {
    const s = connect(this.url, { transports: ['websocket'], reconnection: true, reconnectionAttempts: 5, forceNew: true, auth: { token } });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('connect_error', (e: Error & { data?: { message?: string } }) => {
        s.disconnect();
        reject(new CliError(`--server ${this.url}: the socket.io connection failed (${e.data?.message ?? e.message})`));
      });
    });
    return s;
  }
}

/** Signs in and checks the account is an admin; errors name the credential flags. */
export async function signInAdmin(client: ServerClient, username: string, password: string): Promise<string> {
  let r: { token: string; user: { role: string; username: string } };
  try {
    r = await client.request('POST', '/api/auth/login', { body: { username, password } });
  } catch (e) {
    if (e instanceof ServerError && (e.status === 401 || e.status === 400)) {
      throw new CliError(`--admin-password: the server refused to sign in "${username}" (${e.status} ${e.message}); set --admin-user/--admin-password or ATTUNE_ADMIN_USER/ATTUNE_ADMIN_PASSWORD`);
    }
    if (e instanceof ServerError && e.status === 403) throw new CliError(`--admin-user: the account "${username}" may not sign in (403 ${e.message})`);
    throw e;
  }
  if (r.user.role !== 'admin') throw new CliError(`--admin-user: "${username}" is not an admin (role ${r.user.role})`);
  return r.token;
}

/** Maps the admin API's refusals to CLI errors naming what to fix. */
export function adminError(e: unknown, what: string, tokenFlag: string): never {
  if (e instanceof ServerError) {
    if (e.status === 401) throw new CliError(`${tokenFlag}: the server did not accept the credentials (401 ${e.message})`);
    if (e.status === 403) throw new CliError(`${tokenFlag}: not an admin's credentials (403 ${e.message})`);
    if (e.status === 409) throw new CliError(`retrain: ${what}: ${e.message} (409)`);
    throw new CliError(`${what}: ${e.status} ${e.code}: ${e.message}`);
  }
  throw e;
}

export async function startTrainingJob(client: ServerClient, token: string, userIds: string[] | null, tokenFlag = '--admin-password'): Promise<TrainingJob> {
  try {
    const r = await client.request<{ job: TrainingJob }>('POST', '/api/admin/training/jobs', { token, body: userIds?.length ? { userIds } : {} });
    return r.job;
  } catch (e) {
    adminError(e, 'cannot start a retraining job', tokenFlag);
  }
}

export interface JobProgressEvent {
  jobId: string;
  phase?: string;
  step?: number;
  totalSteps?: number;
  loss?: number | null;
  accuracy?: number | null;
  etaSeconds?: number | null;
  done?: number;
  total?: number;
}

/**
 * Follows a job to its end: `training:progress` and `training:job` on an admin socket, with a poll of
 * GET /api/admin/training/jobs/:id every few seconds as well (events missed while connecting).
 */
export async function followTrainingJob(client: ServerClient, token: string, jobId: string, onProgress: (p: JobProgressEvent) => void, pollMs = 3000): Promise<{ job: TrainingJob; history: unknown[] }> {
  let socket: Socket | null = null;
  try {
    socket = await client.socket(token);
  } catch {
    socket = null; // polling alone still works
  }
  try {
    return await new Promise((resolve, reject) => {
      let finished = false;
      let timer: NodeJS.Timeout | null = null;
      const done = async () => {
        if (finished) return;
        finished = true;
        if (timer) clearTimeout(timer);
        try {
          resolve(await client.request<{ job: TrainingJob; history: unknown[] }>('GET', `/api/admin/training/jobs/${jobId}`, { token }));
        } catch (e) {
          reject(e);
        }
      };
      socket?.on('training:progress', (p: JobProgressEvent) => {
        if (p.jobId === jobId) onProgress(p);
      });
      socket?.on('training:job', (e: { job: TrainingJob }) => {
        if (e.job.id !== jobId) return;
        onProgress({ jobId, ...e.job.progress });
        if (TERMINAL_STATUSES.has(e.job.status)) void done();
      });
      const poll = async () => {
        if (finished) return;
        try {
          const r = await client.request<{ job: TrainingJob }>('GET', `/api/admin/training/jobs/${jobId}`, { token });
          onProgress({ jobId, ...r.job.progress });
          if (TERMINAL_STATUSES.has(r.job.status)) return void done();
        } catch (e) {
          finished = true;
          return reject(e);
        }
        timer = setTimeout(() => void poll(), pollMs);
      };
      void poll();
    });
  } finally {
    socket?.disconnect();
  }
}

export async function findVersion(client: ServerClient, token: string, versionId: string): Promise<UserModelVersion | null> {
  const r = await client.request<{ versions: UserModelVersion[] }>('GET', '/api/admin/training/versions', { token });
  return r.versions.find((v) => v.id === versionId) ?? null;
}
