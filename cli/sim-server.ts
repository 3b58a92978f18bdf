// `sim run --server URL`: the simulated-user loop through a running server's public API only, as a
// real client would: accounts registered over HTTP, A/B comparisons over socket.io (message:send
// with compare: true, then compare:choose), the retraining started by an admin over HTTP and
// followed on an admin socket, metrics read from the published version.
//
// Measured like the in-process run: for each user the same fresh held-out-split prompts with the
// same seeds are answered three times: before any training by the user's fresh account (base: no
// soft prompt when the server has no published version; else that version's e_0, reported in
// base_source), after training by the user's account (personalized) and by a fresh account with no
// pairs (generic: e_0).
//
// The server must allow the sim's traffic: ATTUNE_CHAT_RATE_LIMIT high (every comparison is one
// send; the generic account sends users × eval-prompts), and ATTUNE_AUTH_RATE_LIMIT ≥ users + 2 a
// minute (or the sim waits out the limit). Follow-up prompts are left out: a client cannot write an
// assistant turn, so every prompt is a single user turn in a conversation of its own.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'socket.io-client';
import { samplePrompt } from '../sandbox/corpus.ts';
import { Rng } from '../server/lm/rng.ts';
import { mean, pool, SIM_MAX_NEW_TOKENS, SIM_SAMPLING, styleMatch, type SimResult, type SimUserResult } from '../sandbox/sim.ts';
import { SimulatedUser, type UserProfile } from '../sandbox/users.ts';
import { CliError } from './flags.ts';
import { fmt } from './progress.ts';
import { findVersion, followTrainingJob, ServerClient, ServerError, signInAdmin, sleep, TERMINAL_STATUSES, type TrainingJob } from './server-client.ts';

export interface ServerSimOptions {
  url: string;
  adminUser: string;
  adminPassword: string;
  profiles: UserProfile[];
  pairsPerUser: number;
  seed: number;
  evalPrompts: number;
  /** Sockets per user sending comparisons at once. */
  concurrency: number;
  onProgress?: (phase: string, done: number, total: number, payload?: Record<string, string>) => void;
  log?: (line: string) => void;
}

export interface ServerSimResult extends Omit<SimResult, 'config'> {
  figures?: string[];
  [extra: string]: unknown;
}

/** Single-turn prompts only (see the header). */
const SINGLE_TURN = { explain: 0.25, compare: 0.2, howto: 0.2, advice: 0.2, followup: 0 } as const;

interface MessageView {
  id: string;
  content: string;
  status: string;
  userModelVersion: string | null;
  sampling: { softPrompt?: { source?: string; version?: string | null } } | null;
}

interface Account {
  profile: UserProfile | null;
  username: string;
  id: string;
  token: string;
}

/** A username of ≤ 32 characters of [A-Za-z0-9_.-]: sim, the seed, the profile, a run tag. */
function simUsername(seed: number, name: string, tag: string): string {
  const clean = name.replace(/[^A-Za-z0-9_.-]+/g, '-').slice(0, 12) || 'user';
  return `sim${seed}-${clean}-${tag}`.slice(0, 32);
}

/** One request/answer over a socket: emit, then the first matching event (or the socket's `error` for that event). */
function exchange<T>(socket: Socket, emit: () => void, event: string, match: (p: T) => boolean, forEvent: string, ms = 600_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      socket.off(event, onEvent);
      socket.off('error', onError);
      socket.off('disconnect', onDisconnect);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${event} within ${ms / 1000} s`));
    }, ms);
    const onEvent = (p: T) => {
      if (!match(p)) return;
      cleanup();
      resolve(p);
    };
    const onError = (e: { code: string; message: string; details?: { event?: string; retryAfterSeconds?: number } }) => {
      if (e.details?.event !== forEvent) return;
      cleanup();
      reject(new ServerError(e.code === 'rate_limited' ? 429 : 400, e.code, e.message, e.details ?? {}));
    };
    const onDisconnect = (reason: string) => {
      cleanup();
      reject(new Error(`the socket disconnected (${reason})`));
    };
    socket.on(event, onEvent);
    socket.on('error', onError);
    socket.on('disconnect', onDisconnect);
    emit();
  });
}

/** Retries a socket exchange that hit the chat rate limit, after the wait the server names. */
async function withRateLimit<T>(fn: () => Promise<T>, log: (line: string) => void): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof ServerError) || e.code !== 'rate_limited' || attempt >= 30) throw e;
      const after = Number(e.details.retryAfterSeconds ?? 5);
      log(`  chat rate limit reached: waiting ${after} s (start the server with a high ATTUNE_CHAT_RATE_LIMIT for sims)`);
      await sleep(after * 1000 + 200);
    }
  }
}

const sampling = (seed: number) => ({ ...SIM_SAMPLING, seed: seed >>> 0, maxNewTokens: SIM_MAX_NEW_TOKENS });

/** A plain (single-answer) turn in a new conversation: the stored answer. */
async function ask(socket: Socket, content: string, seed: number, log: (line: string) => void): Promise<MessageView> {
  return withRateLimit(async () => {
    let messageId: string | null = null;
    const onStart = (s: { message: MessageView; userMessage: { content: string } | null }) => {
      if (messageId === null && s.userMessage?.content === content.trim()) messageId = s.message.id;
    };
    socket.on('message:start', onStart);
    try {
      const done = await exchange<{ message: MessageView }>(socket, () => socket.emit('message:send', { content, compare: false, sampling: sampling(seed) }), 'message:done', (d) => d.message.id === messageId, 'message:send');
      return done.message;
    } finally {
      socket.off('message:start', onStart);
    }
  }, log);
}

/** A compared turn: both candidates once compare:ready arrives. */
async function askCompare(socket: Socket, content: string, seed: number, log: (line: string) => void): Promise<{ comparisonId: string; A: MessageView; B: MessageView }> {
  return withRateLimit(async () => {
    let comparisonId: string | null = null;
    const onStart = (s: { comparisonId: string; userMessage: { content: string } }) => {
      if (comparisonId === null && s.userMessage.content === content.trim()) comparisonId = s.comparisonId;
    };
    socket.on('compare:start', onStart);
    try {
      const ready = await exchange<{ comparisonId: string; candidates: { A: MessageView; B: MessageView } }>(
        socket, () => socket.emit('message:send', { content, compare: true, sampling: sampling(seed) }), 'compare:ready', (r) => r.comparisonId === comparisonId, 'message:send',
      );
      return { comparisonId: ready.comparisonId, ...ready.candidates };
    } finally {
      socket.off('compare:start', onStart);
    }
  }, log);
}

export async function runSimThroughServer(o: ServerSimOptions): Promise<ServerSimResult> {
  const log = o.log ?? (() => {});
  const progress = o.onProgress ?? (() => {});
  const t0 = performance.now();
  const client = new ServerClient(o.url, log);
  const adminToken = await signInAdmin(client, o.adminUser, o.adminPassword);
  const before = await client.request<{ versions: { id: string; current: boolean }[] }>('GET', '/api/admin/training/versions', { token: adminToken });
  const currentBefore = before.versions.find((v) => v.current)?.id ?? null;
  const active = await client.request<{ jobs: TrainingJob[] }>('GET', '/api/admin/training/jobs?limit=5', { token: adminToken });
  const running = active.jobs.find((j) => j.status === 'running' || j.status === 'queued');
  if (running) throw new CliError(`--server ${client.url}: a retraining job (${running.id}) is already ${running.status}; wait for it to end`);

  // ---- accounts
  const tag = randomBytes(3).toString('hex');
  const password = randomBytes(12).toString('base64url');
  const register = async (profile: UserProfile | null, name: string): Promise<Account> => {
    const username = simUsername(o.seed, name, tag);
    try {
      const r = await client.request<{ token: string; user: { id: string } }>('POST', '/api/auth/register', { body: { username, password } });
      return { profile, username, id: r.user.id, token: r.token };
    } catch (e) {
      if (e instanceof ServerError) throw new CliError(`--server ${client.url}: cannot register the simulated user "${username}" (${e.status} ${e.message})`);
      throw e;
    }
  };
  const accounts: Account[] = [];
  for (const p of o.profiles) accounts.push(await register(p, p.name));
  log(`  registered ${accounts.length} simulated users (${accounts.map((a) => a.username).join(', ')})`);
  const sockets = new Map<string, Socket[]>();
  const socketsOf = async (a: Account, n: number): Promise<Socket[]> => {
    let s = sockets.get(a.id);
    if (!s) sockets.set(a.id, (s = []));
    while (s.length < n) s.push(await client.socket(a.token));
    return s;
  };

  try {
    // ---- fresh held-out prompts per user, shared by the base, personalized and generic measurements
    const evalPrompts = new Map(accounts.map((a) => {
      const rng = new Rng(`sim-eval:${o.seed}:${a.profile!.name}`);
      return [a.id, Array.from({ length: o.evalPrompts }, (_, k) => samplePrompt(rng.fork(`e${k}`), { split: 'heldout', kindWeights: SINGLE_TURN }).messages.at(-1)!.content)];
    }));
    const answerAll = async (label: string, speaker: (a: Account) => Account): Promise<Map<string, MessageView[]>> => {
      const total = accounts.length * o.evalPrompts;
      let done = 0;
      progress(label, 0, total);
      const out = new Map<string, MessageView[]>();
      await Promise.all(accounts.map(async (a) => {
        const who = speaker(a);
        const socks = await socketsOf(who, o.concurrency);
        const prompts = evalPrompts.get(a.id)!;
        const free = [...socks];
        out.set(a.id, await pool(prompts.map((content, k) => async () => {
          const s = free.pop()!;
          try {
            return await ask(s, content, o.seed * 31337 + k, log);
          } finally {
            free.push(s);
            progress(label, ++done, total);
          }
        }), socks.length));
      }));
      return out;
    };
    const sourceOf = (ms: MessageView[]) => [...new Set(ms.map((m) => m.sampling?.softPrompt?.source ?? 'unknown'))].join('+');

    // ---- base: before any training (no soft prompt, or the current version's e_0)
    const base = await answerAll('base', (a) => a);
    const baseSource = sourceOf([...base.values()].flat());

    // ---- A/B comparisons until every user has pairsPerUser decided pairs
    const totalPairs = accounts.length * o.pairsPerUser;
    let pairsDone = 0;
    progress('pairs', 0, totalPairs);
    const collected = await Promise.all(accounts.map(async (a, ui) => {
      const sim = new SimulatedUser(a.profile!, { seed: o.seed });
      const rng = new Rng(`sim:${o.seed}:${a.profile!.name}`);
      const socks = await socketsOf(a, o.concurrency);
      let pairs = 0;
      let comparisons = 0;
      const choices: Record<string, number> = { A: 0, B: 0, tie: 0, both_bad: 0 };
      let k = 0;
      let inFlight = 0;
      const worker = async (s: Socket) => {
        while (pairs < o.pairsPerUser) {
          // Start another comparison only if it could still be needed (a tie makes no pair).
          if (pairs + inFlight >= o.pairsPerUser) {
            await sleep(100);
            continue;
          }
          if (comparisons > o.pairsPerUser * 20 + 40) throw new Error(`${a.profile!.name}: only ${pairs} decided pairs after ${comparisons} comparisons`);
          const n = k++;
          const content = samplePrompt(rng.fork(`p${n}`), { split: 'train', kindWeights: SINGLE_TURN }).messages.at(-1)!.content;
          inFlight++;
          try {
            const c = await askCompare(s, content, o.seed * 7919 + ui * 104729 + n * 2, log);
            const choice = sim.compare(c.A.content, c.B.content);
            const chosen = await exchange<{ comparisonId: string; preferencePairId: string | null }>(
              s, () => s.emit('compare:choose', { comparisonId: c.comparisonId, choice }), 'compare:chosen', (p) => p.comparisonId === c.comparisonId, 'compare:choose',
            );
            comparisons++;
            choices[choice] = (choices[choice] ?? 0) + 1;
            if (chosen.preferencePairId !== null) {
              pairs++;
              progress('pairs', ++pairsDone, totalPairs);
            }
          } finally {
            inFlight--;
          }
        }
      };
      await Promise.all(socks.map(worker));
      return { account: a, pairs, comparisons, choices };
    }));

    // ---- retraining, as an admin
    // A scheduled or per-user job may have started meanwhile (one runs at a time): let it end first.
    let job: TrainingJob | null = null;
    while (!job) {
      try {
        job = (await client.request<{ job: TrainingJob }>('POST', '/api/admin/training/jobs', { token: adminToken, body: {} })).job;
      } catch (e) {
        if (!(e instanceof ServerError)) throw e;
        if (e.status !== 409) throw new CliError(`--server ${client.url}: cannot start the retraining job (${e.status} ${e.code}: ${e.message})`);
        const other = (await client.request<{ jobs: TrainingJob[] }>('GET', '/api/admin/training/jobs?limit=5', { token: adminToken })).jobs.find((j) => !TERMINAL_STATUSES.has(j.status));
        log(`  another retraining job (${other?.id ?? '?'}, ${other?.trigger ?? '?'}) is running: waiting for it to end`);
        if (other) await followTrainingJob(client, adminToken, other.id, () => {});
        else await sleep(2000);
      }
    }
    log(`  retraining job ${job.id} started`);
    const trainStart = performance.now();
    const { job: finished, history } = await followTrainingJob(client, adminToken, job.id, (p) => {
      if (p.phase === 'train') progress('train', p.step ?? 0, p.totalSteps ?? 1, { loss: fmt(p.loss), acc: fmt(p.accuracy, 2) });
      else progress(`job ${p.phase ?? '…'}`, p.done ?? 0, p.total ?? 1, { loss: '-', acc: '-' });
    });
    const jobSeconds = (performance.now() - trainStart) / 1000;
    if (finished.status !== 'succeeded') throw new CliError(`--server ${client.url}: the retraining job ${finished.id} ended ${finished.status}: ${finished.error ?? 'no reason given'}`);
    const version = finished.versionId ? await findVersion(client, adminToken, finished.versionId) : null;
    if (!version) throw new CliError(`--server ${client.url}: the job ${finished.id} left no version`);
    if (version.status !== 'published') log(`  the new version was not published (${version.status}: ${version.reason ?? ''}); personalized figures use whatever version serves`);
    const metrics = version.metrics as {
      perUser?: { userId: string; accuracy: number | null; baselineAccuracy?: number | null; pairs?: number }[];
      baselineHeldoutAccuracy?: number | null;
      seconds?: { train?: number; reference?: number; baseline?: number; evaluate?: number };
    };
    const perUser = new Map((metrics.perUser ?? []).map((u) => [u.userId, u]));

    // ---- after training: personalized (own account), generic (a fresh account: e_0)
    const personalized = await answerAll('personalized', (a) => a);
    const generic = await register(null, 'generic');
    const genericAnswers = await answerAll('generic', () => generic);

    const users: SimUserResult[] = collected.map((c) => {
      const id = c.account.id;
      const m = perUser.get(id);
      const prof = c.account.profile!;
      return {
        name: prof.name,
        pairs: c.pairs,
        heldout_accuracy: { pdpo: m?.accuracy ?? null, dpo: m?.baselineAccuracy ?? null },
        style_match: {
          personalized: styleMatch(prof, personalized.get(id)!.map((x) => x.content)),
          generic: styleMatch(prof, genericAnswers.get(id)!.map((x) => x.content)),
          base: styleMatch(prof, base.get(id)!.map((x) => x.content)),
        },
      };
    });
    const personalSource = sourceOf([...personalized.values()].flat());
    return {
      users,
      mean: {
        pairs: users.reduce((s, u) => s + u.pairs, 0) / Math.max(1, users.length),
        heldout_accuracy: { pdpo: mean(users.map((u) => u.heldout_accuracy.pdpo)), dpo: mean(users.map((u) => u.heldout_accuracy.dpo)) },
        style_match: {
          personalized: mean(users.map((u) => u.style_match.personalized)) ?? 0,
          generic: mean(users.map((u) => u.style_match.generic)) ?? 0,
          base: mean(users.map((u) => u.style_match.base)) ?? 0,
        },
      },
      train_seconds: metrics.seconds?.train ?? jobSeconds,
      mode: 'server',
      server: client.url,
      seed: o.seed,
      pairs_per_user: o.pairsPerUser,
      eval_prompts: o.evalPrompts,
      base_source: baseSource,
      base_note: currentBefore
        ? `a user-model version (${currentBefore}) was already published, so "base" was measured with its generic e_0, not with no soft prompt`
        : 'no version was published before the run: "base" is the model with no soft prompt',
      personalized_source: personalSource,
      generic_source: sourceOf([...genericAnswers.values()].flat()),
      ...(version.status === 'published' ? {} : {
        personalized_note: `the held-out gate kept the new version unpublished (${version.reason ?? version.status}): "personalized" was measured with the soft prompts that serve (personalized_source), and heldout_accuracy is the unpublished candidate's`,
      }),
      config: version.config,
      dpo_note: metrics.baselineHeldoutAccuracy === null || metrics.baselineHeldoutAccuracy === undefined
        ? 'the server did not train the vanilla-DPO baseline (start it with ATTUNE_TRAIN_BASELINE=true for the dpo figures)'
        : 'vanilla DPO trained by the server on the same pairs (ATTUNE_TRAIN_BASELINE=true)',
      comparisons: Object.fromEntries(collected.map((c) => [c.account.profile!.name, { comparisons: c.comparisons, choices: c.choices }])),
      accounts: Object.fromEntries([...collected.map((c) => [c.account.profile!.name, { username: c.account.username, id: c.account.id }]), ['generic', { username: generic.username, id: generic.id }]]),
      job: { id: finished.id, status: finished.status, seconds: jobSeconds, phases: metrics.seconds ?? null },
      version: { id: version.id, status: version.status, reason: version.reason, heldoutAccuracy: version.metrics.heldoutAccuracy ?? null, baselineHeldoutAccuracy: metrics.baselineHeldoutAccuracy ?? null },
      total_seconds: (performance.now() - t0) / 1000,
      history: { pdpo: history, dpo: [] },
    };
  } finally {
    for (const list of sockets.values()) for (const s of list) s.disconnect();
  }
}
