// `sim run`: the whole personalization loop with simulated users (P-RLHF's Personalized Soups
// setting). Each user chats on sandbox prompts and answers A/B comparisons made of the current
// model's own samples; P-DPO and the vanilla-DPO baseline train on the same pairs; the run
// measures held-out reward accuracy per user and the style-match of fresh generations with the
// user's own soft prompt, the generic e_0, and no prefix.
import type { Engine } from '../server/lm/engine.ts';
import type { ModelRuntime } from '../server/lm/runtime.ts';
import type { SamplingParams } from '../server/lm/sampling.ts';
import type { ChatMessage } from '../server/lm/tokenizer.ts';
import { type DpoStats, evaluatePdpo, isHeldout, type PdpoConfig, type PreferencePair, referenceLogps, type TokenizedPair, tokenizePair, trainPdpo, type TrainProgress } from '../server/personalize/pdpo.ts';
import { UserModel } from '../server/personalize/user-model.ts';
import { samplePrompt } from './corpus.ts';
import { judgeStyle } from './judge.ts';
import { Rng } from '../server/lm/rng.ts';
import { DIMENSIONS } from './style.ts';
import { SimulatedUser, type UserProfile } from './users.ts';

export const SIM_SAMPLING = { temperature: 1, topK: 0, topP: 0.95, repetitionPenalty: 1 } as const;
export const SIM_MAX_NEW_TOKENS = 160;

export interface SimProgress {
  phase: 'pairs' | 'reference' | 'train-pdpo' | 'train-dpo' | 'evaluate';
  done: number;
  total: number;
  detail?: string;
}

/** Run `tasks` with at most `limit` in flight (they share the engine's decode batch). */
export async function pool<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return out;
}

export interface SimUserPairs {
  profile: UserProfile;
  userId: string;
  pairs: PreferencePair[];
  comparisons: number;
}

/**
 * Each user answers comparisons of two samples (two seeds) of the model, with `prefixFor(user)` as
 * the soft prompt (null: the base model), until they have `pairsPerUser` decided pairs.
 */
export async function collectPairs(
  engine: Engine,
  users: { profile: UserProfile; userId: string; prefix: Float32Array | null }[],
  pairsPerUser: number,
  seed: number,
  opts: { concurrency?: number; noise?: number; onProgress?: (p: SimProgress) => void } = {},
): Promise<SimUserPairs[]> {
  const total = users.length * pairsPerUser;
  let done = 0;
  const results = users.map((u) => ({ profile: u.profile, userId: u.userId, pairs: [] as PreferencePair[], comparisons: 0 }));
  await Promise.all(
    users.map(async (u, ui) => {
      const sim = new SimulatedUser(u.profile, { seed, noise: opts.noise ?? 0 });
      const rng = new Rng(`sim:${seed}:${u.profile.name}`);
      const res = results[ui]!;
      let round = 0;
      while (res.pairs.length < pairsPerUser && round < 40) {
        const need = pairsPerUser - res.pairs.length;
        // Roughly half of all comparisons differ on one given dimension: ask for a bit over twice.
        const batch = Array.from({ length: Math.min(64, Math.ceil(need * 2.2) + 2) }, (_, k) => {
          const prompt = samplePrompt(rng.fork(`p${round}:${k}`), { split: 'train' });
          const sampling = (s: number): SamplingParams => ({ ...SIM_SAMPLING, seed: (seed * 7919 + ui * 104729 + round * 1009 + k * 2 + s) >>> 0 });
          return { prompt, sampling };
        });
        const answers = await pool(
          batch.flatMap((b) => [0, 1].map((s) => () => engine.generateText({ messages: b.prompt.messages, prefix: u.prefix, sampling: b.sampling(s), maxNewTokens: SIM_MAX_NEW_TOKENS }))),
          opts.concurrency ?? 12,
        );
        batch.forEach((b, k) => {
          if (res.pairs.length >= pairsPerUser) return;
          const a = answers[2 * k]!.text;
          const bb = answers[2 * k + 1]!.text;
          res.comparisons++;
          const choice = sim.compare(a, bb);
          if (choice !== 'A' && choice !== 'B') return;
          res.pairs.push({
            id: `${u.userId}:${round}:${k}`,
            userId: u.userId,
            prompt: b.prompt.messages as ChatMessage[],
            chosen: choice === 'A' ? a : bb,
            rejected: choice === 'A' ? bb : a,
          });
          done++;
        });
        opts.onProgress?.({ phase: 'pairs', done, total, detail: u.profile.name });
        round++;
      }
    }),
  );
  return results;
}

/** Share of (generation, preferred dimension) pairs where the judge puts the text on the preferred pole. */
export function styleMatch(profile: UserProfile, texts: readonly string[]): number {
  let hit = 0;
  let n = 0;
  for (const t of texts) {
    const j = judgeStyle(t);
    for (const d of DIMENSIONS) {
      const want = profile.prefers[d];
      if (!want) continue;
      n++;
      if (j[d].label === want) hit++;
    }
  }
  return n ? hit / n : 0;
}

export async function generateFor(engine: Engine, prefix: Float32Array | null, prompts: ChatMessage[][], seed: number, concurrency = 12): Promise<string[]> {
  const rs = await pool(
    prompts.map((messages, i) => () => engine.generateText({ messages, prefix, sampling: { ...SIM_SAMPLING, seed: (seed * 31337 + i) >>> 0 }, maxNewTokens: SIM_MAX_NEW_TOKENS })),
    concurrency,
  );
  return rs.map((r) => r.text);
}

export interface SimUserResult {
  name: string;
  pairs: number;
  heldout_accuracy: { pdpo: number | null; dpo: number | null };
  style_match: { personalized: number; generic: number; base: number };
}

export interface SimResult {
  users: SimUserResult[];
  mean: { pairs: number; heldout_accuracy: { pdpo: number | null; dpo: number | null }; style_match: { personalized: number; generic: number; base: number } };
  train_seconds: number;
  config: PdpoConfig;
  /** Per-step logs of both trainings, for loss curves. */
  history?: { pdpo: unknown[]; dpo: unknown[] };
}

/** The mean of the known values; null when there are none. */
export const mean = (xs: (number | null)[]): number | null => {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
};

export interface InProcessSimOptions {
  engine: Engine;
  runtime: ModelRuntime;
  /** [V × hidden] token embeddings, to initialise the soft prompts. */
  embedding: Float32Array;
  profiles: UserProfile[];
  pairsPerUser: number;
  seed: number;
  config: PdpoConfig;
  /** Fresh prompts per user for the style-match measurement. */
  evalPrompts?: number;
  noise?: number;
  onProgress?: (p: SimProgress) => void;
  onTrain?: (method: 'pdpo' | 'dpo', p: TrainProgress) => void;
}

/** The whole loop in this process: pairs → reference log-probs → P-DPO and DPO → evaluation. */
export async function runSimInProcess(o: InProcessSimOptions): Promise<SimResult> {
  const users = o.profiles.map((profile, i) => ({ profile, userId: `u${i + 1}`, prefix: null }));
  const collected = await collectPairs(o.engine, users, o.pairsPerUser, o.seed, { noise: o.noise, onProgress: o.onProgress });
  const cfg = o.config;
  const tok = o.engine.tokenizer;
  const maxPos = o.runtime.maxContext;
  const all: TokenizedPair[] = collected.flatMap((c) => c.pairs.map((p) => tokenizePair(tok, p, cfg, maxPos)));
  await referenceLogps(o.runtime, all, 16, (d, t) => o.onProgress?.({ phase: 'reference', done: d, total: t }));
  const train = all.filter((p) => !isHeldout(p.id, cfg.heldoutFraction));
  const heldout = all.filter((p) => isHeldout(p.id, cfg.heldoutFraction));

  const init = UserModel.initFromVocabulary(
    { kind: cfg.userModel, tokens: cfg.tokens, hidden: o.runtime.config.hidden, ...(cfg.userModel === 'cluster' ? { clusters: cfg.clusters } : {}) },
    o.embedding, o.runtime.config.vocabSize, new Rng(cfg.seed),
  );
  const t0 = performance.now();
  const pdpo = await trainPdpo({ runtime: o.runtime, pairs: train, init, config: cfg, onProgress: (p) => o.onTrain?.('pdpo', p) });
  const trainSeconds = (performance.now() - t0) / 1000;
  const dpoInit = UserModel.initFromVocabulary({ kind: 'individual', tokens: cfg.tokens, hidden: o.runtime.config.hidden }, o.embedding, o.runtime.config.vocabSize, new Rng(cfg.seed));
  const dpo = await trainPdpo({ runtime: o.runtime, pairs: train, init: dpoInit, config: { ...cfg, alpha: 0, userModel: 'individual' }, onProgress: (p) => o.onTrain?.('dpo', p) });

  o.onProgress?.({ phase: 'evaluate', done: 0, total: users.length });
  const accP = await evaluatePdpo(o.runtime, pdpo.model, heldout, cfg);
  const accD = await evaluatePdpo(o.runtime, dpo.model, heldout, cfg, { generic: true });
  const nEval = o.evalPrompts ?? 48;
  const out: SimUserResult[] = [];
  for (const [i, u] of users.entries()) {
    const rng = new Rng(`sim-eval:${o.seed}:${u.profile.name}`);
    const prompts = Array.from({ length: nEval }, (_, k) => samplePrompt(rng.fork(`e${k}`), { split: 'heldout' }).messages as ChatMessage[]);
    const [personal, generic, base] = await Promise.all([
      generateFor(o.engine, pdpo.model.prefixFor(u.userId), prompts, o.seed + 1),
      generateFor(o.engine, pdpo.model.prefixFor(null), prompts, o.seed + 1),
      generateFor(o.engine, null, prompts, o.seed + 1),
    ]);
    const acc = (s: Record<string, DpoStats>) => (s[u.userId] ? s[u.userId]!['rewards/accuracies'] : null);
    out.push({
      name: u.profile.name,
      pairs: collected[i]!.pairs.length,
      heldout_accuracy: { pdpo: acc(accP), dpo: acc(accD) },
      style_match: { personalized: styleMatch(u.profile, personal), generic: styleMatch(u.profile, generic), base: styleMatch(u.profile, base) },
    });
    o.onProgress?.({ phase: 'evaluate', done: i + 1, total: users.length, detail: u.profile.name });
  }
  return {
    users: out,
    mean: {
      pairs: out.reduce((s, u) => s + u.pairs, 0) / Math.max(1, out.length),
      heldout_accuracy: { pdpo: mean(out.map((u) => u.heldout_accuracy.pdpo)), dpo: mean(out.map((u) => u.heldout_accuracy.dpo)) },
      style_match: {
        personalized: mean(out.map((u) => u.style_match.personalized)) ?? 0,
        generic: mean(out.map((u) => u.style_match.generic)) ?? 0,
        base: mean(out.map((u) => u.style_match.base)) ?? 0,
      },
    },
    train_seconds: trainSeconds,
    config: cfg,
    history: { pdpo: pdpo.history, dpo: dpo.history },
  };
}

