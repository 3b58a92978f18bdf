// The fuzz suite's harness: the real server (server/main.ts as a child process, the default model,
// SQLite in a temp dir) so that a crash is seen as a dead process instead of killing the test runner;
// a raw HTTP client that sends exactly the bytes it is given; the checks every response must pass;
// and a ledger that counts the cases tried and the failures by kind.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { io as connectSocket, type Socket } from 'socket.io-client';
import { listeningPort } from '../helpers/process-server.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** FUZZ_SERVER_ROOT runs the server of another checkout (e.g. an older commit, to see what the suite finds there). */
const SERVER_ROOT = process.env.FUZZ_SERVER_ROOT ? path.resolve(process.env.FUZZ_SERVER_ROOT) : ROOT;

// ---- seeds and run counts (test-only switches, read by the test process, never by the server)

const envInt = (name: string): number | undefined => {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got "${raw}"`);
  return n;
};

/**
 * FUZZ_SEED, else a fresh one shared by every file of the run (the first file picks it and leaves it in
 * a file named after the test runner's pid); printed by every file so that a failing run can be replayed.
 */
export const FUZZ_SEED: number = envInt('FUZZ_SEED') ?? runSeed();

function runSeed(): number {
  const file = path.join(os.tmpdir(), `attune-fuzz-seed-${process.ppid}`);
  // One left by an earlier runner with a recycled pid (a run never takes an hour).
  if (fs.existsSync(file) && Date.now() - fs.statSync(file).mtimeMs > 3_600_000) fs.rmSync(file, { force: true });
  try {
    const fresh = String(((Date.now() ^ (process.pid << 8)) >>> 1) & 0x7fffffff);
    fs.writeFileSync(file, fresh, { flag: 'wx' });
    return Number(fresh);
  } catch {
    return Number(fs.readFileSync(file, 'utf8'));
  }
}
/** Scales every area's number of cases: FUZZ_RUNS is the number per operation (or per event). */
export const FUZZ_RUNS: number | undefined = envInt('FUZZ_RUNS');
export const runsOr = (fallback: number): number => Math.max(1, FUZZ_RUNS ?? fallback);

/** A per-property seed, stable for a given FUZZ_SEED and name (adding an operation changes no other's cases). */
export function seedFor(name: string): number {
  let h = FUZZ_SEED >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h & 0x7fffffff;
}

// ---- the ledger

export interface Failure {
  kind: string;
  area: string;
  repro: string;
  detail: string;
}

/** Where the failing cases of the last run are written in full (one JSON line each). */
export const FAILURES_DIR = path.join(ROOT, 'test-results', 'fuzz');

const SUMMARY_FILE = path.join(os.tmpdir(), `attune-fuzz-${process.ppid}.jsonl`);

export class Ledger {
  readonly perArea = new Map<string, number>();
  readonly failures: Failure[] = [];
  /** Answers that are not failures but worth a line in the report (node's own bare parser rejections). */
  readonly notes = new Map<string, number>();

  constructor(readonly file: string) {
    fs.rmSync(path.join(FAILURES_DIR, `${file}.jsonl`), { force: true });
    // Up front too, so a run that hangs or is killed can still be replayed.
    process.stdout.write(`fuzz ${file}: FUZZ_SEED=${FUZZ_SEED}${FUZZ_RUNS ? ` FUZZ_RUNS=${FUZZ_RUNS}` : ''}\n`);
  }

  tried(area: string, n = 1): void {
    this.perArea.set(area, (this.perArea.get(area) ?? 0) + n);
  }

  fail(kind: string, area: string, repro: string, detail: string, full?: unknown): void {
    this.failures.push({ kind, area, repro, detail: detail.slice(0, 600) });
    // Every failing case in full (bodies base64), to replay one without the generator.
    fs.mkdirSync(FAILURES_DIR, { recursive: true });
    fs.appendFileSync(path.join(FAILURES_DIR, `${this.file}.jsonl`), `${JSON.stringify({ kind, area, detail, case: full ?? repro })}\n`);
  }

  /** Status (or outcome) per area, to see that the cases reach past validation (2xx) as well as fail it. */
  readonly outcomes = new Map<string, Map<string, number>>();

  outcome(area: string, what: string | number): void {
    const m = this.outcomes.get(area) ?? new Map<string, number>();
    m.set(String(what), (m.get(String(what)) ?? 0) + 1);
    this.outcomes.set(area, m);
  }

  note(what: string): void {
    this.notes.set(what, (this.notes.get(what) ?? 0) + 1);
  }

  get total(): number {
    let n = 0;
    for (const v of this.perArea.values()) n += v;
    return n;
  }

  byKind(): Map<string, number> {
    const m = new Map<string, number>();
    for (const f of this.failures) m.set(f.kind, (m.get(f.kind) ?? 0) + 1);
    return m;
  }

  /** Cases per area, failures per kind and the first examples of each kind, one failure per line. */
  report(examplesPerKind = 4): string {
    const lines = [`fuzz ${this.file}: seed ${FUZZ_SEED} (replay: FUZZ_SEED=${FUZZ_SEED}${FUZZ_RUNS ? ` FUZZ_RUNS=${FUZZ_RUNS}` : ''} npm run test:fuzz)`];
    for (const [area, n] of [...this.perArea].sort()) {
      const o = this.outcomes.get(area);
      const tally = o ? ` (${[...o].sort().map(([k, v]) => `${k}×${v}`).join(' ')})` : '';
      lines.push(`  ${area}: ${n} cases${tally}`);
    }
    lines.push(`  total: ${this.total} cases, ${this.failures.length} failures`);
    for (const [what, n] of this.notes) lines.push(`  note: ${n} × ${what}`);
    for (const [kind, n] of this.byKind()) {
      lines.push(`  failures of kind ${kind}: ${n}`);
      const shown = new Set<string>();
      for (const f of this.failures.filter((x) => x.kind === kind)) {
        // One example per area and status line, so a flood of the same failure stays readable.
        const key = `${f.area} ${f.detail.slice(0, 40)}`;
        if (shown.has(key)) continue;
        shown.add(key);
        lines.push(`    - [${f.area}] ${f.repro}\n      → ${f.detail.replace(/\n/g, '\\n')}`);
        if (shown.size >= examplesPerKind) break;
      }
    }
    return lines.join('\n');
  }

  /** The server's own error-level log lines (distinct messages), for the report: they name the cause of a 5xx. */
  serverErrors(logs: readonly string[], max = 8): string {
    const seen = new Map<string, number>();
    for (const line of logs) {
      if (!line.startsWith('{')) {
        if (/Error|error/.test(line)) seen.set(`stderr: ${line.trim().slice(0, 200)}`, (seen.get(`stderr: ${line.trim().slice(0, 200)}`) ?? 0) + 1);
        continue;
      }
      try {
        const e = JSON.parse(line) as { level?: number; msg?: string; err?: { type?: string; message?: string } };
        if ((e.level ?? 0) < 50) continue;
        const key = `${e.msg}${e.err ? `: ${e.err.type}: ${String(e.err.message).slice(0, 160)}` : ''}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      } catch {
        // Not a log entry.
      }
    }
    if (seen.size === 0) return '  server error log: empty';
    return ['  server error log (distinct lines):', ...[...seen].slice(0, max).map(([k, n]) => `    ${n} × ${k}`)].join('\n');
  }

  /** Appends this file's counts for the run's total (printed by zz-total.test.ts). */
  save(): void {
    const entry = { file: this.file, seed: FUZZ_SEED, perArea: Object.fromEntries(this.perArea), failures: Object.fromEntries(this.byKind()) };
    fs.appendFileSync(SUMMARY_FILE, `${JSON.stringify(entry)}\n`);
  }
}

export function readRunSummaries(): Array<{ file: string; seed: number; perArea: Record<string, number>; failures: Record<string, number> }> {
  if (!fs.existsSync(SUMMARY_FILE)) return [];
  const out = fs.readFileSync(SUMMARY_FILE, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  fs.rmSync(SUMMARY_FILE, { force: true });
  fs.rmSync(path.join(os.tmpdir(), `attune-fuzz-seed-${process.ppid}`), { force: true });
  return out;
}

// ---- the server process

export interface FuzzServer {
  readonly url: string;
  readonly origin: string;
  readonly port: number;
  readonly dataDir: string;
  readonly adminPassword: string;
  /** Log lines of every run of the process (stdout JSON, stderr text). */
  readonly logs: string[];
  /** How many times the process died unasked. */
  readonly crashes: number;
  /** True once the process has exited since the last (re)start. */
  dead(): boolean;
  /** Answers GET /healthz with 200 {"status":"ok"} within the timeout. */
  healthy(timeoutMs?: number): Promise<boolean>;
  /** Starts the process again on the same port and data (after a crash). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export const ADMIN_PASSWORD = 'Adm1n-Fuzz-9xQ#vB7k';

/** The environment the suite runs the server with: tiny answers and no rate limits in the way. */
export const FUZZ_SERVER_ENV: Record<string, string> = {
  ATTUNE_LOG_LEVEL: 'info',
  ATTUNE_AUTH_RATE_LIMIT: '1000000',
  ATTUNE_CHAT_RATE_LIMIT: '1000000',
  ATTUNE_MAX_NEW_TOKENS: '2',
  ATTUNE_ENGINE_THREADS: '1',
  ATTUNE_TRAINER_THREADS: '1',
  ATTUNE_RETRAIN_CRON: 'off',
};

interface Proc {
  child: ChildProcess;
  port: number;
  exited: Promise<void>;
}

async function spawnServer(dataDir: string, port: number, env: Record<string, string>, logs: string[]): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts', '--port', String(port), '--host', '127.0.0.1'], {
    cwd: SERVER_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ATTUNE_DATA_DIR: dataDir,
      ATTUNE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      ...FUZZ_SERVER_ENV,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const listening = await listeningPort(child, exited, logs, 60_000, 50_000);
  return { child, port: listening, exited };
}

export async function startFuzzServer(env: Record<string, string> = {}): Promise<FuzzServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-fuzz-'));
  const logs: string[] = [];
  let proc = await spawnServer(dataDir, 0, env, logs);
  const port = proc.port;
  let crashes = 0;
  let stopping = false;
  const watch = (p: Proc) => void p.exited.then(() => {
    if (!stopping) crashes++;
  });
  watch(proc);
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    origin: url,
    port,
    dataDir,
    adminPassword: ADMIN_PASSWORD,
    logs,
    get crashes() {
      return crashes;
    },
    dead: () => proc.child.exitCode !== null || proc.child.signalCode !== null,
    async healthy(timeoutMs = 10_000) {
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) return false;
      const r = await send(url, { method: 'GET', path: '/healthz', headers: {} }, timeoutMs);
      return 'status' in r && r.status === 200 && r.text.includes('"ok"');
    },
    async restart() {
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        stopping = true;
        proc.child.kill('SIGKILL');
        await proc.exited;
        stopping = false;
      }
      proc = await spawnServer(dataDir, port, env, logs);
      watch(proc);
    },
    async stop() {
      stopping = true;
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        proc.child.kill('SIGTERM');
        const timer = setTimeout(() => proc.child.kill('SIGKILL'), 10_000);
        await proc.exited;
        clearTimeout(timer);
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// ---- raw HTTP

export interface RawRequest {
  method: string;
  /** Sent as is (percent-encoding and all); only bytes 0x21–0xFF are allowed by node's client. */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

export type Outcome = RawResponse | { error: string };

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

/** One request with exactly these bytes; resolves with the response or the transport error. */
export function send(base: string, req: RawRequest, timeoutMs = 20_000, maxBodyBytes = 2 * 1024 * 1024): Promise<Outcome> {
  return new Promise((resolve) => {
    const u = new URL(base);
    let settled = false;
    const done = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const headers: Record<string, string> = { ...req.headers };
    if (req.body !== undefined) headers['content-length'] = String(req.body.length);
    let r: http.ClientRequest;
    try {
      r = http.request({ host: u.hostname, port: u.port, method: req.method, path: req.path, headers, agent, setHost: true });
    } catch (e) {
      // The client refused to send it (an invalid header or path byte): not a server failure.
      resolve({ error: `client-refused: ${(e as Error).message}` });
      return;
    }
    const timer = setTimeout(() => {
      r.destroy();
      done({ error: 'timeout' });
    }, timeoutMs);
    r.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= maxBodyBytes) chunks.push(c);
      });
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e) => done({ error: `response: ${e.message}` }));
    });
    r.on('error', (e) => done({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
    r.end(req.body);
  });
}

/** A short, replayable description of a request (body shown escaped and cut). */
export function describeRequest(req: RawRequest): string {
  const headers = Object.entries(req.headers)
    .map(([k, v]) => `${k}: ${/^(authorization|cookie)$/i.test(k) ? v.replace(/(Bearer |attune_session=)\S+/, '$1<token>') : v.slice(0, 80)}`)
    .join(' | ');
  let body = '';
  if (req.body !== undefined) {
    const text = req.body.toString('latin1');
    body = ` body(${req.body.length} B)=${JSON.stringify(text.length > 160 ? `${text.slice(0, 160)}…` : text)}`;
  }
  const p = req.path.length > 200 ? `${req.path.slice(0, 200)}…(${req.path.length} chars)` : req.path;
  return `${req.method} ${p} [${headers}]${body}`;
}

// ---- what every response must satisfy

const STACK_PATTERNS: RegExp[] = [
  /\n\s+at\s/,
  /\\n\s+at\s/,
  /\bat\s+(?:async\s+)?[\w.$<>]+\s+\((?:file:\/\/)?\/[^)]*:\d+:\d+\)/,
  /(?:file:\/\/)?\/[\w./-]+\.(?:ts|js|mjs|cjs):\d+/,
  /node_modules\//,
];

/** A stack frame or a server file path in a text the client can see. */
export function leaksInternals(text: string): string | null {
  for (const p of STACK_PATTERNS) {
    const m = p.exec(text);
    if (m) return m[0].slice(0, 120);
  }
  if (text.includes(ROOT)) return ROOT;
  if (text.includes(SERVER_ROOT)) return SERVER_ROOT;
  return null;
}

export type Dialect = 'attune' | 'openai';

/** `{"error":{"code","message","details"}}` (Attune) or `{"error":{"message","type","param","code"}}` (OpenAI). */
export function errorShapeProblem(body: unknown, dialect: Dialect): string | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'the body is not a JSON object';
  const keys = Object.keys(body);
  if (keys.length !== 1 || keys[0] !== 'error') return `top-level keys ${JSON.stringify(keys)}, expected ["error"]`;
  const e = (body as { error: unknown }).error;
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return 'error is not an object';
  const err = e as Record<string, unknown>;
  const want = dialect === 'attune' ? ['code', 'details', 'message'] : ['code', 'message', 'param', 'type'];
  const got = Object.keys(err).sort();
  if (JSON.stringify(got) !== JSON.stringify(want)) return `error keys ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`;
  if (typeof err.message !== 'string' || err.message === '') return 'error.message is not a non-empty string';
  if (typeof err.code !== 'string' || err.code === '') return 'error.code is not a non-empty string';
  if (dialect === 'attune' && (typeof err.details !== 'object' || err.details === null || Array.isArray(err.details))) return 'error.details is not an object';
  if (dialect === 'openai' && typeof err.type !== 'string') return 'error.type is not a string';
  if (dialect === 'openai' && err.param !== null && typeof err.param !== 'string') return 'error.param is not a string or null';
  return null;
}

export interface Verdict {
  kind: string;
  detail: string;
}

/**
 * node's HTTP parser answers a request it cannot parse (a header block over 16 KiB, a bad request line)
 * itself, with a bare status and no body, before any application code runs; such answers are counted
 * as notes, not failures.
 */
export function bareParserRejection(out: Outcome): string | null {
  if ('error' in out) return null;
  if ((out.status === 400 || out.status === 431) && out.text === '' && out.headers['content-type'] === undefined) return `bare ${out.status} from node's HTTP parser`;
  return null;
}

const statusLine = (r: RawResponse) => `${r.status} ${String(r.headers['content-type'] ?? '-')} ${r.text.slice(0, 300)}`;

/**
 * The failures of one HTTP exchange: a 5xx, a transport failure (the server closed on us, hung, or
 * died), an error response not in the dialect's shape, or a stack trace or server path anywhere.
 */
/** Request head bytes (node's parser refuses heads over 16 KiB before the app sees them). */
const headBytes = (req: RawRequest) => req.path.length + Object.entries(req.headers).reduce((a, [k, v]) => a + k.length + v.length + 4, 0);

/**
 * The failures of one HTTP exchange: a 5xx, a transport failure (the server closed on us, hung, or
 * died), an error response not in the dialect's shape, or a stack trace or server path anywhere.
 */
export function judgeHttp(req: RawRequest, out: Outcome, dialect: Dialect, opts: { allow503?: boolean } = {}): Verdict[] {
  if ('error' in out) {
    if (out.error.startsWith('client-refused')) return [];
    // A server that answers an oversize request early and closes may do so before the body is sent.
    // (A compressed body's real size is only known after inflating it: a gzip bomb is oversize too.)
    const oversize = headBytes(req) > 16_000 || (req.body?.length ?? 0) > 200_000 || (req.headers['content-encoding'] !== undefined && (req.body?.length ?? 0) > 16_000);
    if ((out.error === 'ECONNRESET' || out.error === 'EPIPE') && oversize) return [{ kind: 'note', detail: `${out.error} on an oversize request` }];
    return [{ kind: out.error === 'timeout' ? 'timeout' : 'transport', detail: out.error }];
  }
  const bare = bareParserRejection(out);
  if (bare) return [{ kind: 'note', detail: bare }];
  const v: Verdict[] = [];
  const leak = leaksInternals(out.text) ?? leaksInternals(JSON.stringify(out.headers));
  if (leak) v.push({ kind: 'stack-trace', detail: `${leak} in ${statusLine(out)}` });
  if (out.status >= 500 && !(opts.allow503 && out.status === 503)) v.push({ kind: '5xx', detail: statusLine(out) });
  // HEAD has no body by definition.
  if (out.status >= 400 && req.method !== 'HEAD' && !(out.status === 503 && opts.allow503)) {
    let problem: string | null = null;
    if (!/^application\/json/i.test(String(out.headers['content-type'] ?? ''))) problem = `content-type ${String(out.headers['content-type'])}`;
    else {
      try {
        problem = errorShapeProblem(JSON.parse(out.text), dialect);
      } catch {
        problem = 'the body is not JSON';
      }
    }
    if (problem) v.push({ kind: 'error-shape', detail: `${problem}: ${statusLine(out)}` });
  }
  if (out.status >= 200 && out.status < 300 && /^application\/json/i.test(String(out.headers['content-type'] ?? '')) && req.method !== 'HEAD') {
    try {
      JSON.parse(out.text);
    } catch {
      v.push({ kind: 'bad-json', detail: statusLine(out) });
    }
  }
  // A stream that fails after its 200 reports the failure in-band: that is this API's 5xx.
  if (/^text\/event-stream/i.test(String(out.headers['content-type'] ?? ''))) {
    for (const line of out.text.split('\n')) {
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      try {
        const event = JSON.parse(line.slice(6)) as { error?: { type?: string } };
        if (event.error && (event.error.type === 'server_error' || dialect !== 'openai')) v.push({ kind: '5xx-in-stream', detail: line.slice(0, 300) });
      } catch {
        v.push({ kind: 'bad-stream', detail: line.slice(0, 300) });
      }
    }
  }
  return v;
}

/** Counts the case, its outcome and its failures (notes apart) in the ledger. */
export function recordHttp(ledger: Ledger, area: string, req: RawRequest, out: Outcome, dialect: Dialect, opts: { allow503?: boolean } = {}): Verdict[] {
  ledger.tried(area);
  ledger.outcome(area, 'status' in out ? out.status : out.error);
  const verdicts = judgeHttp(req, out, dialect, opts);
  const failures = verdicts.filter((v) => v.kind !== 'note');
  for (const v of verdicts) if (v.kind === 'note') ledger.note(v.detail);
  if (failures.length) {
    const repro = describeRequest(req);
    const full = { method: req.method, path: req.path, headers: req.headers, bodyBase64: req.body?.toString('base64') };
    for (const v of failures) ledger.fail(v.kind, area, repro, v.detail, full);
  }
  return failures;
}

// ---- accounts

export interface Credentials {
  userId: string;
  username: string;
  password: string;
  token: string;
}

export const USER_PASSWORD = 'Vq8#mZ2!rT5wLp9x-fuzz';

async function jsonCall(base: string, method: string, p: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await send(base, {
    method,
    path: p,
    headers: { 'content-type': 'application/json', origin: base, ...headers },
    body: body === undefined ? undefined : Buffer.from(JSON.stringify(body)),
  });
  if ('error' in r) throw new Error(`${method} ${p}: ${r.error}`);
  let parsed: Record<string, unknown> = {};
  try {
    parsed = r.text ? (JSON.parse(r.text) as Record<string, unknown>) : {};
  } catch {
    parsed = { raw: r.text };
  }
  return { status: r.status, body: parsed };
}

export async function register(base: string, username: string, password = USER_PASSWORD): Promise<Credentials> {
  const r = await jsonCall(base, 'POST', '/api/auth/register', { username, password });
  if (r.status !== 201) throw new Error(`register ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  return { userId: (r.body.user as { id: string }).id, username, password, token: r.body.token as string };
}

export async function login(base: string, username: string, password: string): Promise<Credentials> {
  const r = await jsonCall(base, 'POST', '/api/auth/login', { username, password });
  if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  return { userId: (r.body.user as { id: string }).id, username, password, token: r.body.token as string };
}

export async function authed(base: string, token: string, method: string, p: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  return jsonCall(base, method, p, body, { authorization: `Bearer ${token}` });
}

export async function createApiKey(base: string, token: string, name: string): Promise<{ id: string; key: string }> {
  const r = await authed(base, token, 'POST', '/api/me/api-keys', { name });
  if (r.status !== 201) throw new Error(`create api key: ${r.status} ${JSON.stringify(r.body)}`);
  return { id: r.body.id as string, key: r.body.key as string };
}

// ---- batching: the process must still answer after every batch

/**
 * Checks liveness; a dead or unresponsive server is recorded as a crash (with the cases of the batch
 * that killed it) and started again, so the rest of the run still tests something.
 */
export async function checkAlive(server: FuzzServer, ledger: Ledger, area: string, recent: string[]): Promise<boolean> {
  if (await server.healthy()) return true;
  const exit = server.dead() ? 'the process exited' : '/healthz did not answer within 10 s';
  const lastErr = server.logs.slice(-40).find((l) => /RangeError|Error|fatal|FATAL/.test(l)) ?? '';
  ledger.fail('crash', area, `one of the last ${recent.length} cases:\n      ${recent.slice(-3).join('\n      ')}`, `${exit}. ${lastErr.slice(0, 400)}`);
  await server.restart();
  return false;
}

// ---- a real chat turn (fixtures: a conversation with messages the routes can be fuzzed against)


export function openSocket(base: string, token: string | undefined, extra: { cookie?: string; origin?: string } = {}): Socket {
  const headers: Record<string, string> = {};
  if (extra.cookie) headers.cookie = extra.cookie;
  if (extra.origin) headers.origin = extra.origin;
  return connectSocket(base, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    timeout: 10_000,
    ...(token === undefined ? {} : { auth: { token } }),
    ...(Object.keys(headers).length ? { extraHeaders: headers } : {}),
  });
}

export function socketConnected(socket: Socket, ms = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve();
    const timer = setTimeout(() => reject(new Error('socket did not connect')), ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('connect_error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export interface ChatTurn {
  conversationId: string;
  userMessageId: string;
  assistantMessageId: string;
}

/** One message:send and its answer, over a real socket.io connection. */
export async function chatTurn(base: string, token: string, content: string, conversationId?: string): Promise<ChatTurn> {
  const socket = openSocket(base, token);
  try {
    await socketConnected(socket);
    return await new Promise<ChatTurn>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message:done within 30 s')), 30_000);
      let userMessageId = '';
      socket.on('message:start', (p: { userMessage: { id: string } | null }) => {
        userMessageId = p.userMessage?.id ?? '';
      });
      socket.on('error', (e: unknown) => {
        clearTimeout(timer);
        reject(new Error(`chat turn failed: ${JSON.stringify(e)}`));
      });
      socket.on('message:done', (p: { conversationId: string; message: { id: string } }) => {
        clearTimeout(timer);
        resolve({ conversationId: p.conversationId, userMessageId, assistantMessageId: p.message.id });
      });
      socket.emit('message:send', { content, ...(conversationId ? { conversationId } : {}), sampling: { maxNewTokens: 2 } });
    });
  } finally {
    socket.disconnect();
  }
}

// ---- what every socket event must satisfy

/** Longest `error` payload (JSON) the server may send: refusals must not echo what they refuse. */
export const MAX_ERROR_EVENT_BYTES = 16 * 1024;

/**
 * The failures of one server → client socket event: an `error` event not in {code, message,
 * details} or reporting a server fault (status ≥ 500, code internal), an error that echoes a huge
 * input, or a stack trace or server path in any event.
 */
export function judgeSocketEvent(name: string, payload: unknown): Verdict[] {
  const v: Verdict[] = [];
  let text = '';
  try {
    text = JSON.stringify(payload) ?? '';
  } catch (e) {
    text = String(e);
  }
  const leak = leaksInternals(text);
  if (leak) v.push({ kind: 'stack-trace', detail: `${leak} in ${name} ${text.slice(0, 300)}` });
  if (name === 'error' || name === 'connect_error') {
    const problem = errorShapeProblem({ error: payload }, 'attune');
    if (problem) v.push({ kind: 'error-shape', detail: `${name}: ${problem}: ${text.slice(0, 300)}` });
    const p = (payload ?? {}) as { code?: unknown; details?: { status?: unknown } };
    if (p.code === 'internal' || (typeof p.details?.status === 'number' && p.details.status >= 500)) v.push({ kind: '5xx', detail: `${name} ${text.slice(0, 400)}` });
    if (text.length > MAX_ERROR_EVENT_BYTES) v.push({ kind: 'echo', detail: `${name} of ${text.length} bytes: ${text.slice(0, 200)}` });
  }
  return v;
}
