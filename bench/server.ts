// `npm run bench -- server [--json] [--seconds N] [--think-ms M]`: the real server (server/main.ts, a
// child process on loopback, default model, fresh database) under 1, 8 and 32 simulated chat users
// over socket.io. Each user signs up, then loops for N seconds: a sandbox prompt in a new conversation,
// its follow-up in the same conversation when the prompt has one, a pause of 0..M ms between turns.
// Reported per level: time to first token (send → first delta, on the client) p50/p95, decode speed
// per stream, total tokens/s (the server's own token counter), turns and errors, each beside its target.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { io as connect, type Socket } from 'socket.io-client';
import { loadTokenizer } from '../server/lm/tokenizer.ts';
import { samplePrompt } from '../sandbox/corpus.ts';

const progress = (msg: string): void => void process.stderr.write(`[bench server] ${msg}\n`);

interface Figure {
  value: number;
  unit: string;
  limit: number | null;
  ratio: number | null;
  note?: string;
}
const fig = (value: number, unit: string, limit: number | null = null, note?: string): Figure => ({ value, unit, limit, ratio: limit ? value / limit : null, ...(note ? { note } : {}) });

const TTFT_TARGET_S = 1;
const LEVELS = [1, 8, 32] as const;

interface Turn {
  ttftMs: number | null;
  durationMs: number;
  tokens: number;
  ok: boolean;
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (i - lo);
}

function argValue(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v < 0) {
    process.stderr.write(`${name} needs a non-negative number\n`);
    process.exit(2);
  }
  return v;
}

/** server/main.ts as a child process; resolves with its URL once it listens. */
async function startServer(dataDir: string, modelDir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--model-dir', modelDir], {
    env: {
      ...process.env,
      ATTUNE_LOG_LEVEL: 'info',
      ATTUNE_ADMIN_PASSWORD: 'bench admin password',
      // The bench measures the engine under load, not the abuse limits.
      ATTUNE_AUTH_RATE_LIMIT: '1000000',
      ATTUNE_CHAT_RATE_LIMIT: '1000000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (c: Buffer) => {
      buf += c.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const rec = JSON.parse(line) as { port?: number; msg?: string; level?: number };
          if (rec.port && rec.msg?.startsWith('listening')) {
            child.stdout!.off('data', onData);
            child.stdout!.resume();
            resolve({ url: `http://127.0.0.1:${rec.port}`, child });
          } else if ((rec.level ?? 0) >= 50) {
            progress(`server: ${rec.msg}`);
          }
        } catch {
          // not a log line
        }
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the server exited (${code}) before listening: ${stderr.slice(-2000)}`)));
  });
}

async function register(url: string, username: string): Promise<string> {
  const res = await fetch(`${url}/api/auth/register`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username, password: 'bench password 1' }) });
  if (res.status !== 201) throw new Error(`register ${username}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

async function generatedTokens(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^attune_generation_tokens_total(?:\{[^}]*\})? (\S+)$/m.exec(text);
  return m ? Number(m[1]) : NaN;
}

function connected(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
}

interface Done {
  conversationId: string;
  message: { id: string; content: string; status: string };
}

/** One turn: send, time the first delta, wait for done (or an error). */
function turn(socket: Socket, payload: { conversationId?: string; content: string }): Promise<{ turn: Omit<Turn, 'tokens'>; done: Done | null }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let first: number | null = null;
    let messageId: string | null = null;
    const cleanup = () => {
      socket.off('message:start', onStart).off('message:delta', onDelta).off('message:done', onDone).off('error', onError).off('disconnect', onDisconnect);
    };
    const onStart = (s: { message: { id: string } }) => (messageId = s.message.id);
    const onDelta = (d: { messageId: string }) => {
      if (first === null && d.messageId === messageId) first = performance.now();
    };
    const onDone = (d: Done) => {
      if (d.message.id !== messageId) return;
      cleanup();
      resolve({ turn: { ttftMs: first === null ? null : first - t0, durationMs: performance.now() - t0, ok: d.message.status === 'complete' }, done: d });
    };
    const onError = (e: { code?: string; message?: string }) => {
      progress(`error event: ${e.code} ${e.message}`);
      cleanup();
      resolve({ turn: { ttftMs: first === null ? null : first - t0, durationMs: performance.now() - t0, ok: false }, done: null });
    };
    const onDisconnect = () => onError({ code: 'disconnected' });
    socket.on('message:start', onStart).on('message:delta', onDelta).on('message:done', onDone).on('error', onError).on('disconnect', onDisconnect);
    socket.emit('message:send', payload);
  });
}

export async function runServerBench(args: string[]): Promise<unknown> {
  const seconds = argValue(args, '--seconds', 20);
  const thinkMs = argValue(args, '--think-ms', 1000);
  const modelDir = path.resolve('models/default');
  if (!fs.existsSync(path.join(modelDir, 'config.json'))) throw new Error('no default model in models/default (npm run train:default-model)');
  const tokenizer = loadTokenizer(modelDir);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-bench-server-'));
  progress('starting server/main.ts on the default model');
  const { url, child } = await startServer(dataDir, modelDir);
  const levels: Record<string, unknown> = {};
  try {
    progress(`registering ${Math.max(...LEVELS)} users`);
    const tokens: string[] = [];
    for (let i = 0; i < Math.max(...LEVELS); i++) tokens.push(await register(url, `bench${i}`));
    let promptSeed = 1;

    // Warm-up: the first session runs are slower (allocations, JIT).
    {
      const s = connect(url, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { token: tokens[0] } });
      await connected(s);
      await turn(s, { content: 'Explain squats to me.' });
      s.disconnect();
    }

    for (const users of LEVELS) {
      progress(`${users} user(s) for ${seconds} s`);
      const sockets = tokens.slice(0, users).map((token) => connect(url, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { token } }));
      let connectErrors = 0;
      await Promise.all(sockets.map((s) => connected(s).catch(() => void connectErrors++)));
      const tokensBefore = await generatedTokens(url);
      const turns: Turn[] = [];
      const t0 = performance.now();
      const until = t0 + seconds * 1000;
      const simulate = async (socket: Socket) => {
        while (performance.now() < until && socket.connected) {
          const prompt = samplePrompt(promptSeed++, { split: 'heldout' });
          const userTurns = prompt.messages.filter((m) => m.role === 'user').map((m) => m.content);
          let conversationId: string | undefined;
          for (const content of userTurns) {
            if (performance.now() >= until) break;
            const r = await turn(socket, conversationId ? { conversationId, content } : { content });
            const answer = r.done?.message.content ?? '';
            turns.push({ ...r.turn, tokens: answer ? tokenizer.encode(answer, { addSpecialTokens: false }).length : 0 });
            if (!r.done) break;
            conversationId = r.done.conversationId;
            await new Promise((res) => setTimeout(res, Math.random() * thinkMs));
          }
        }
      };
      await Promise.all(sockets.map(simulate));
      const elapsed = (performance.now() - t0) / 1000;
      const tokensTotal = (await generatedTokens(url)) - tokensBefore;
      for (const s of sockets) s.disconnect();

      const ok = turns.filter((x) => x.ok && x.ttftMs !== null);
      const ttft = ok.map((x) => x.ttftMs! / 1000);
      const perStream = ok.filter((x) => x.tokens > 1 && x.durationMs > x.ttftMs!).map((x) => (x.tokens - 1) / ((x.durationMs - x.ttftMs!) / 1000));
      const errors = turns.length - ok.length + connectErrors;
      const atTarget = users === 32;
      levels[`users_${users}`] = {
        turns: turns.length,
        errors: fig(errors, 'errors', null, atTarget ? `target 0 ${errors === 0 ? '✓' : '✗'}` : undefined),
        ttft_p50: fig(quantile(ttft, 0.5), 's'),
        ttft_p95: fig(quantile(ttft, 0.95), 's', atTarget ? TTFT_TARGET_S : null, atTarget ? `target ≤ ${TTFT_TARGET_S} s ${quantile(ttft, 0.95) <= TTFT_TARGET_S ? '✓' : '✗'}` : undefined),
        tokens_per_s_per_stream_p50: fig(quantile(perStream, 0.5), 'tokens/s', null, 'decode speed seen by one user (after the first token)'),
        tokens_per_s_total: fig(tokensTotal / elapsed, 'tokens/s', null, "the server's attune_generation_tokens_total over the run"),
        answer_tokens_mean: fig(ok.reduce((a, x) => a + x.tokens, 0) / Math.max(1, ok.length), 'tokens'),
        seconds: fig(elapsed, 's', null, 'in-flight turns finish after the sending window closes'),
      };
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  const l32 = levels.users_32 as { ttft_p95: Figure; errors: Figure };
  return {
    machine: { cores: os.availableParallelism() },
    settings: { model: 'models/default', seconds_per_level: seconds, think_ms_max: thinkMs, transport: 'socket.io websocket, loopback', server: 'server/main.ts child process, default settings' },
    levels,
    target_met: l32.ttft_p95.value <= TTFT_TARGET_S && l32.errors.value === 0,
  };
}
