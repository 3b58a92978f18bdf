// The real server as a child process (`node --import tsx server/main.ts`), configured only through
// ATTUNE_* environment variables, on a free loopback port: for tests that kill it (SIGKILL) and start
// it again on the same data directory.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { io as connect, type Socket } from 'socket.io-client';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
export const DEFAULT_MODEL_DIR = path.join(REPO_ROOT, 'models/default');
export const ADMIN_PASSWORD = 'fault suite admin 7391';

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Every log line so far (pino JSON). */
  logs: string[];
  /** kill -9: no shutdown code runs. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface ServerProcessOptions {
  dataDir: string;
  env?: Record<string, string>;
  /** How long start-up may take (loading the model included). */
  timeoutMs?: number;
}

export async function startServerProcess(opts: ServerProcessOptions): Promise<ServerProcess> {
  // The child is configured only by what is set here, not by the ATTUNE_* of whoever runs the tests.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ATTUNE_') && k !== 'PORT' && k !== 'HOST'));
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'server/main.ts')], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...inherited,
      PORT: '0',
      HOST: '127.0.0.1',
      ATTUNE_DATA_DIR: opts.dataDir,
      ATTUNE_MODEL_DIR: DEFAULT_MODEL_DIR,
      ATTUNE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      ATTUNE_LOG_LEVEL: 'info',
      ATTUNE_RETRAIN_CRON: 'off',
      ATTUNE_AUTH_RATE_LIMIT: '100000',
      ATTUNE_CHAT_RATE_LIMIT: '100000',
      ATTUNE_SHUTDOWN_GRACE_SECONDS: '1',
      ...opts.env,
    },
  });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${await listeningPort(child, exited, logs, opts.timeoutMs ?? 60_000)}`;
  return {
    url,
    child,
    logs,
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop(graceMs = 10_000) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Collects the child's output into `logs` (a line each; at most `maxLines`, oldest dropped first) and
 * resolves with the port of its "listening on" log line; rejects if it exits or is silent too long.
 */
export function listeningPort(child: ChildProcess, exited: Promise<unknown>, logs: string[], timeoutMs: number, maxLines = Infinity): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not listen within ${timeoutMs} ms:\n${logs.slice(-20).join('\n')}`)), timeoutMs);
    const keep = (line: string) => {
      logs.push(line);
      if (logs.length > maxLines) logs.splice(0, logs.length - maxLines);
    };
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        keep(line);
        if (!line.startsWith('{')) continue;
        try {
          const entry = JSON.parse(line) as { msg?: string; port?: number };
          if (entry.msg?.startsWith('listening on') && typeof entry.port === 'number') {
            clearTimeout(timer);
            resolve(entry.port);
          }
        } catch {
          // A partial or foreign line (a warning from node itself): kept in the log, nothing more.
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => keep(chunk.toString('utf8')));
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${child.exitCode}) before listening:\n${logs.slice(-20).join('\n')}`));
    });
  });
}

/**
 * Slows the process down as a loaded machine would: SIGSTOP and SIGCONT in turn, so it runs `runMs`
 * of every `runMs + pauseMs`. Wall-clock time goes on meanwhile (its timers see it). Returns the stop.
 */
export function throttle(child: ChildProcess, runMs: number, pauseMs: number): () => void {
  let running = true;
  void (async () => {
    while (running && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGSTOP');
      await new Promise((r) => setTimeout(r, pauseMs));
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGCONT');
      await new Promise((r) => setTimeout(r, runMs));
    }
  })();
  return () => {
    running = false;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGCONT');
  };
}

/** JSON over real HTTP; throws on a network error only (the status is the caller's to check). */
export async function api(url: string, method: string, route: string, token?: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${route}`, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export async function register(url: string, username: string): Promise<{ id: string; token: string }> {
  const res = await api(url, 'POST', '/api/auth/register', undefined, { username, password: `${username} walks the long pier at dawn` });
  if (res.status !== 201) throw new Error(`register ${username}: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.user.id, token: res.body.token };
}

export async function login(url: string, username: string, password: string): Promise<string> {
  const res = await api(url, 'POST', '/api/auth/login', undefined, { username, password });
  if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.token;
}

export function socketFor(url: string, token: string): Promise<Socket> {
  const socket = connect(url, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { token } });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

/** PRAGMA integrity_check on a fresh connection (which also recovers the WAL a kill left behind). */
export function integrityCheck(dbFile: string): string {
  const db = new Database(dbFile);
  try {
    return (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
  } finally {
    db.close();
  }
}
