// P-DPO (arXiv 2402.05133, §5): DPO whose policy is the frozen LM conditioned on a user's soft
// prompt. For a batch of pairs (x, y_w, y_l) from users i,
//
//   L = α · mean ℓ_DPO(e_i) + (1 − α) · mean ℓ_DPO(e_0)
//   ℓ_DPO(e) = −log σ(β[log π(y_w|x,e) − log π_ref(y_w|x)] − β[log π(y_l|x,e) − log π_ref(y_l|x)])
//
// π_ref is the LM with no soft prompt, so reference log-probs depend on the pair alone and are
// computed once. The LM stays frozen: each step is one scoring run of the engine, which returns
// every row's log-prob and its gradient w.r.t. that row's prefix; the chain rule through the user
// model (user-model.ts) gives the parameters' gradients, and AdamW updates them.
//
// α = 0 with the individual model is vanilla DPO with one shared soft prompt (e_0 for everyone):
// the baseline of every evaluation.
import { z } from 'zod';
import type { ModelRuntime, ScoreRow } from '../lm/runtime.ts';
import type { ChatMessage, ChatTokenizer } from '../lm/tokenizer.ts';
import { AdamW, type AdamWHyper, clipByGlobalNorm, learningRate, type LrSchedule } from '../lm/optim.ts';
import { Rng } from '../lm/rng.ts';
import { GENERIC_USER, UserModel } from './user-model.ts';

export const pdpoConfigSchema = z.strictObject({
  /** Weight of the personalized term; 1 − α weighs the generic user's term. 0 = vanilla DPO. */
  alpha: z.number().min(0).max(1).default(0.5),
  beta: z.number().positive().max(10).default(0.1),
  lr: z.number().positive().max(10).default(0.02),
  weightDecay: z.number().min(0).max(1).default(0),
  epochs: z.number().int().min(1).max(1000).default(4),
  /** Pairs per optimizer step (each pair is 2 or 4 scored rows). */
  batchPairs: z.number().int().min(1).max(256).default(8),
  warmupFraction: z.number().min(0).max(1).default(0.1),
  clipNorm: z.number().min(0).default(1),
  /** T_u. */
  tokens: z.number().int().min(1).max(64).default(10),
  userModel: z.enum(['individual', 'cluster']).default('individual'),
  clusters: z.number().int().min(1).max(64).default(4),
  /** Per user, the share of their pairs held out for evaluation and the publication gate. */
  heldoutFraction: z.number().min(0).max(0.9).default(0.2),
  /** Responses longer than this many tokens are cut (their log-prob is over the kept part). */
  maxResponseTokens: z.number().int().min(1).max(4096).default(192),
  seed: z.number().int().min(0).default(1),
});
export type PdpoConfig = z.infer<typeof pdpoConfigSchema>;
export const DEFAULT_PDPO_CONFIG: PdpoConfig = pdpoConfigSchema.parse({});

export interface PreferencePair {
  id: string;
  userId: string;
  prompt: ChatMessage[];
  chosen: string;
  rejected: string;
}

/** A pair as token ids: prompt + response + end of turn; log-probs are over ids[from..]. */
export interface TokenizedPair {
  id: string;
  userId: string;
  chosen: { ids: number[]; from: number };
  rejected: { ids: number[]; from: number };
  /** π_ref log-probs (no soft prompt), filled by referenceLogps(). */
  ref?: { chosen: number; rejected: number };
}

/** The ids the model would see: the prompt with the generation prompt, the answer's tokens, end of turn. */
export function tokenizeResponse(tok: ChatTokenizer, prompt: readonly ChatMessage[], response: string, maxResponseTokens: number, maxContext: number): { ids: number[]; from: number } {
  const promptIds = tok.encodeChat(prompt, { addGenerationPrompt: true });
  const answer = [...tok.encode(response, { addSpecialTokens: false }).slice(0, maxResponseTokens), ...tok.eosTokenIds.slice(0, 1)];
  // Keep the end of the prompt when the whole would not fit: the latest turns matter most.
  const room = maxContext - answer.length;
  if (room < 2) throw new RangeError(`a response of ${answer.length} tokens leaves no room for its prompt in a context of ${maxContext}`);
  const kept = promptIds.length > room ? promptIds.slice(promptIds.length - room) : promptIds;
  return { ids: [...kept, ...answer], from: kept.length };
}

export function tokenizePair(tok: ChatTokenizer, p: PreferencePair, cfg: Pick<PdpoConfig, 'maxResponseTokens' | 'tokens'>, maxPositions: number): TokenizedPair {
  const ctx = maxPositions - cfg.tokens;
  return {
    id: p.id,
    userId: p.userId,
    chosen: tokenizeResponse(tok, p.prompt, p.chosen, cfg.maxResponseTokens, ctx),
    rejected: tokenizeResponse(tok, p.prompt, p.rejected, cfg.maxResponseTokens, ctx),
  };
}

/** ℓ_DPO and its derivatives w.r.t. the policy log-probs, with TRL's logged quantities. */
export interface DpoTerm {
  loss: number;
  /** ∂ℓ/∂ log π(y_w) and ∂ℓ/∂ log π(y_l). */
  dChosen: number;
  dRejected: number;
  rewardChosen: number;
  rewardRejected: number;
}

const logSigmoid = (z: number): number => (z >= 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z)));
const sigmoid = (z: number): number => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

export function dpoTerm(policyChosen: number, policyRejected: number, refChosen: number, refRejected: number, beta: number): DpoTerm {
  const rewardChosen = beta * (policyChosen - refChosen);
  const rewardRejected = beta * (policyRejected - refRejected);
  const z = rewardChosen - rewardRejected;
  const s = sigmoid(-z); // −∂ℓ/∂z
  return { loss: -logSigmoid(z), dChosen: -beta * s, dRejected: beta * s, rewardChosen, rewardRejected };
}

const pairLength = (p: TokenizedPair) => Math.max(p.chosen.ids.length, p.rejected.ids.length);

/** Fill `ref` on every pair that lacks it: log π_ref with no soft prompt, in batches. */
export async function referenceLogps(rt: ModelRuntime, pairs: TokenizedPair[], batchRows = 16, onBatch?: (done: number, total: number) => void): Promise<void> {
  // By length: rows of a run are padded to the longest.
  const todo = pairs.filter((p) => !p.ref).sort((a, b) => pairLength(a) - pairLength(b));
  for (let i = 0; i < todo.length; i += batchRows / 2) {
    const chunk = todo.slice(i, i + batchRows / 2);
    const rows: ScoreRow[] = chunk.flatMap((p) => [
      { prefix: null, ids: p.chosen.ids, from: p.chosen.from },
      { prefix: null, ids: p.rejected.ids, from: p.rejected.from },
    ]);
    const r = await rt.score(rows, { gradPrefix: false });
    chunk.forEach((p, j) => {
      p.ref = { chosen: r.logp[2 * j]!, rejected: r.logp[2 * j + 1]! };
    });
    onBatch?.(Math.min(todo.length, i + chunk.length), todo.length);
  }
}

/** What a step (or an evaluation) logs; means over the pairs it covered, as TRL names them. */
export interface DpoStats {
  pairs: number;
  loss: number;
  'rewards/chosen': number;
  'rewards/rejected': number;
  'rewards/margins': number;
  'rewards/accuracies': number;
  'logps/chosen': number;
  'logps/rejected': number;
  /** cos(∇ log π(y_w), ∇ log π(y_l)) w.r.t. the user's soft prompt: gradient entanglement (arXiv 2410.13828). */
  'grad/cosine'?: number;
}

class StatsAccumulator {
  n = 0;
  private s = { loss: 0, rc: 0, rr: 0, acc: 0, lc: 0, lr: 0, cos: 0, cosN: 0 };
  add(t: DpoTerm, pc: number, pr: number, cos?: number): void {
    this.n++;
    this.s.loss += t.loss;
    this.s.rc += t.rewardChosen;
    this.s.rr += t.rewardRejected;
    this.s.acc += t.rewardChosen > t.rewardRejected ? 1 : 0;
    this.s.lc += pc;
    this.s.lr += pr;
    if (cos !== undefined && Number.isFinite(cos)) {
      this.s.cos += cos;
      this.s.cosN++;
    }
  }
  result(): DpoStats {
    const n = Math.max(1, this.n);
    const out: DpoStats = {
      pairs: this.n,
      loss: this.s.loss / n,
      'rewards/chosen': this.s.rc / n,
      'rewards/rejected': this.s.rr / n,
      'rewards/margins': (this.s.rc - this.s.rr) / n,
      'rewards/accuracies': this.s.acc / n,
      'logps/chosen': this.s.lc / n,
      'logps/rejected': this.s.lr / n,
    };
    if (this.s.cosN > 0) out['grad/cosine'] = this.s.cos / this.s.cosN;
    return out;
  }
}

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

export interface StepLog extends DpoStats {
  step: number;
  epoch: number;
  lr: number;
  gradNorm: number;
  /** The generic user's term (absent when α = 1). */
  generic?: DpoStats;
}

export interface TrainProgress {
  step: number;
  totalSteps: number;
  epoch: number;
  log: StepLog;
  elapsedSeconds: number;
  etaSeconds: number;
}

export interface TrainOptions {
  runtime: ModelRuntime;
  /** Pairs to train on, with `ref` filled. */
  pairs: readonly TokenizedPair[];
  /** Starting point (warm start); it is not modified. */
  init: UserModel;
  config: PdpoConfig;
  /** Only these users' own parameters train (e_0 / clusters stay): per-user retraining. Null: all. */
  onlyUsers?: readonly string[] | null;
  onProgress?: (p: TrainProgress) => void;
  /** Per user, per epoch: the user's training stats (for per-user diagnostics). */
  onEpoch?: (epoch: number, perUser: Record<string, DpoStats>) => void;
  signal?: AbortSignal;
}

export class TrainingCancelled extends Error {
  constructor() {
    super('training was cancelled');
    this.name = 'TrainingCancelled';
  }
}

/**
 * One epoch's batches, grouped by length: shuffle, cut into mega-batches of 16 batches, sort each by
 * length and split it, then shuffle the batches. Rows of a scoring run are padded to the longest, so
 * this cuts padding a lot (answers run from a dozen to ~200 tokens) while keeping batches random.
 */
function lengthGroupedBatches(pairs: readonly TokenizedPair[], batchPairs: number, rng: Rng): TokenizedPair[][] {
  const order = rng.shuffle(pairs);
  const mega = batchPairs * 16;
  const batches: TokenizedPair[][] = [];
  for (let i = 0; i < order.length; i += mega) {
    const group = order.slice(i, i + mega).sort((a, b) => pairLength(a) - pairLength(b));
    for (let j = 0; j < group.length; j += batchPairs) batches.push(group.slice(j, j + batchPairs));
  }
  return rng.shuffle(batches);
}

/** Which parameters train: everything, or only the listed users' own parameters. */
function trainableSet(model: UserModel, onlyUsers: readonly string[] | null | undefined, alpha: number): Set<string> {
  const names = [...model.params.keys()];
  if (onlyUsers) {
    const own = new Set(onlyUsers.flatMap((u) => [`offset:${u}`, `logits:${u}`]));
    return new Set(names.filter((n) => own.has(n)));
  }
  // Vanilla DPO (α = 0) has one shared prompt: the users' own parameters get no gradient anyway.
  return new Set(alpha === 0 ? names.filter((n) => n === 'e0' || n === 'clusters' || n === `logits:${GENERIC_USER}`) : names);
}

/**
 * The P-DPO loss of one batch of pairs and its gradient w.r.t. the user model's parameters, from
 * one scoring run: L = α·mean ℓ(e_i) + (1 − α)·mean ℓ(e_0). Only `trainable` parameters (all when
 * absent) receive gradient. `onPair` sees each pair's personalized term (for per-user stats).
 */
export async function pdpoLossAndGradients(
  rt: ModelRuntime,
  model: UserModel,
  batch: readonly TokenizedPair[],
  cfg: Pick<PdpoConfig, 'alpha' | 'beta'>,
  trainable?: ReadonlySet<string>,
  onPair?: (userId: string, stats: [DpoTerm, number, number, number]) => void,
): Promise<{ loss: number; grads: Map<string, Float32Array>; personal: DpoStats; generic: DpoStats | null }> {
  const usePersonal = cfg.alpha > 0;
  const useGeneric = cfg.alpha < 1;
  const rows: ScoreRow[] = [];
  const generic = model.prefixFor(null);
  for (const p of batch) {
    if (!p.ref) throw new RangeError(`pair ${p.id} has no reference log-probs`);
    if (usePersonal) {
      const prefix = model.prefixFor(p.userId);
      rows.push({ prefix, ids: p.chosen.ids, from: p.chosen.from }, { prefix, ids: p.rejected.ids, from: p.rejected.from });
    }
    if (useGeneric) rows.push({ prefix: generic, ids: p.chosen.ids, from: p.chosen.from }, { prefix: generic, ids: p.rejected.ids, from: p.rejected.from });
  }
  const r = await rt.score(rows, { gradPrefix: true });
  const grads = new Map<string, Float32Array>();
  const personal = new StatsAccumulator();
  const gen = new StatsAccumulator();
  const nb = batch.length;
  let row = 0;
  for (const p of batch) {
    const ref = p.ref!;
    if (usePersonal) {
      const pc = r.logp[row]!;
      const pr = r.logp[row + 1]!;
      const gc = r.gradPrefix[row]!;
      const gr = r.gradPrefix[row + 1]!;
      const t = dpoTerm(pc, pr, ref.chosen, ref.rejected, cfg.beta);
      const cos = cosine(gc, gr);
      personal.add(t, pc, pr, cos);
      onPair?.(p.userId, [t, pc, pr, cos]);
      model.accumulateGradient(p.userId, gc, (cfg.alpha * t.dChosen) / nb, grads, trainable);
      model.accumulateGradient(p.userId, gr, (cfg.alpha * t.dRejected) / nb, grads, trainable);
      row += 2;
    }
    if (useGeneric) {
      const pc = r.logp[row]!;
      const pr = r.logp[row + 1]!;
      const t = dpoTerm(pc, pr, ref.chosen, ref.rejected, cfg.beta);
      gen.add(t, pc, pr, cosine(r.gradPrefix[row]!, r.gradPrefix[row + 1]!));
      model.accumulateGradient(null, r.gradPrefix[row]!, ((1 - cfg.alpha) * t.dChosen) / nb, grads, trainable);
      model.accumulateGradient(null, r.gradPrefix[row + 1]!, ((1 - cfg.alpha) * t.dRejected) / nb, grads, trainable);
      row += 2;
    }
  }
  const pres = personal.result();
  const gres = useGeneric ? gen.result() : null;
  const loss = cfg.alpha * (usePersonal ? pres.loss : 0) + (1 - cfg.alpha) * (gres ? gres.loss : 0);
  return { loss, grads, personal: usePersonal ? pres : gres!, generic: gres };
}

/**
 * P-DPO: train the user model on `pairs` (their `ref` filled) for config.epochs epochs. Returns the
 * trained copy and the per-step log. Checks `signal` between steps.
 */
export async function trainPdpo(o: TrainOptions): Promise<{ model: UserModel; history: StepLog[] }> {
  const cfg = o.config;
  const model = o.init.clone();
  for (const p of o.pairs) {
    if (!p.ref) throw new RangeError(`pair ${p.id} has no reference log-probs`);
    if (cfg.alpha > 0) model.addUser(p.userId);
  }
  const trainable = trainableSet(model, o.onlyUsers, cfg.alpha);
  const adam = new AdamW(model.params, trainable);
  const hyper: AdamWHyper = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: cfg.weightDecay };
  const rng = new Rng(cfg.seed);
  const perEpoch = Math.ceil(o.pairs.length / cfg.batchPairs);
  const totalSteps = perEpoch * cfg.epochs;
  const schedule: LrSchedule = { lr: cfg.lr, minLrRatio: 0.1, warmupSteps: Math.floor(totalSteps * cfg.warmupFraction), totalSteps };
  const history: StepLog[] = [];
  const started = performance.now();
  let step = 0;
  const usePersonal = cfg.alpha > 0;
  const useGeneric = cfg.alpha < 1;
  void usePersonal;
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    const batches = lengthGroupedBatches(o.pairs, cfg.batchPairs, rng);
    const perUser = new Map<string, StatsAccumulator>();
    for (const batch of batches) {
      if (o.signal?.aborted) throw new TrainingCancelled();
      const { grads, personal, generic: gen, loss: batchLoss } = await pdpoLossAndGradients(o.runtime, model, batch, cfg, trainable, (userId, stats) => {
        let u = perUser.get(userId);
        if (!u) perUser.set(userId, (u = new StatsAccumulator()));
        u.add(...stats);
      });
      const { norm: gradNorm, scale } = clipByGlobalNorm(grads.values(), cfg.clipNorm);
      const lr = learningRate(schedule, step);
      adam.step(grads, lr, hyper, { gradScale: scale });
      step++;
      const main = usePersonal ? personal : gen!;
      const log: StepLog = {
        step, epoch, lr, gradNorm,
        ...main,
        loss: batchLoss,
        ...(useGeneric && usePersonal ? { generic: gen! } : {}),
      };
      history.push(log);
      const elapsed = (performance.now() - started) / 1000;
      o.onProgress?.({ step, totalSteps, epoch, log, elapsedSeconds: elapsed, etaSeconds: (elapsed / step) * (totalSteps - step) });
    }
    o.onEpoch?.(epoch, Object.fromEntries([...perUser].map(([u, s]) => [u, s.result()])));
  }
  return { model, history };
}

/** Held-out reward accuracy and loss per user, with each user's own soft prompt (e_0 for α = 0 models). */
export async function evaluatePdpo(rt: ModelRuntime, model: UserModel, pairs: readonly TokenizedPair[], cfg: Pick<PdpoConfig, 'beta'>, opts: { generic?: boolean; batchPairs?: number } = {}): Promise<Record<string, DpoStats>> {
  const per = new Map<string, StatsAccumulator>();
  const bp = opts.batchPairs ?? 8;
  const sorted = [...pairs].sort((a, b) => pairLength(a) - pairLength(b));
  for (let b = 0; b < sorted.length; b += bp) {
    const batch = sorted.slice(b, b + bp);
    const rows: ScoreRow[] = batch.flatMap((p) => {
      const prefix = model.prefixFor(opts.generic ? null : p.userId);
      return [
        { prefix, ids: p.chosen.ids, from: p.chosen.from },
        { prefix, ids: p.rejected.ids, from: p.rejected.from },
      ];
    });
    const r = await rt.score(rows, { gradPrefix: false });
    batch.forEach((p, j) => {
      if (!p.ref) throw new RangeError(`pair ${p.id} has no reference log-probs`);
      const pc = r.logp[2 * j]!;
      const pr = r.logp[2 * j + 1]!;
      let u = per.get(p.userId);
      if (!u) per.set(p.userId, (u = new StatsAccumulator()));
      u.add(dpoTerm(pc, pr, p.ref.chosen, p.ref.rejected, cfg.beta), pc, pr);
    });
  }
  return Object.fromEntries([...per].map(([u, s]) => [u, s.result()]));
}

/** The mean over users of their held-out reward accuracy (each user counts once). */
export function meanAccuracy(perUser: Record<string, DpoStats>): number | null {
  const xs = Object.values(perUser).filter((s) => s.pairs > 0).map((s) => s['rewards/accuracies']);
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

/** Deterministic held-out membership of a pair (stable across runs as more pairs arrive). */
export function isHeldout(pairId: string, fraction: number): boolean {
  let h = 2166136261;
  for (let i = 0; i < pairId.length; i++) h = Math.imul(h ^ pairId.charCodeAt(i), 16777619);
  return ((h >>> 0) % 10_000) / 10_000 < fraction;
}
