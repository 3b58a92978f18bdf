// One retraining job, from pairs to a scored candidate version. It runs wherever it is called: in a
// worker thread for the server (worker.ts), or in-process for tests and `sim run`. It never touches
// the database; the job manager (jobs.ts) feeds it pairs and stores what it returns.
import { Rng } from '../lm/rng.ts';
import { ModelRuntime } from '../lm/runtime.ts';
import { loadTokenizer } from '../lm/tokenizer.ts';
import { openModelDir } from '../lm/weights.ts';
import type { ChatMessage } from '../lm/tokenizer.ts';
import { type DpoStats, evaluatePdpo, meanAccuracy, type PdpoConfig, referenceLogps, type StepLog, type TokenizedPair, tokenizePair, trainPdpo, TrainingCancelled, type TrainProgress } from './pdpo.ts';
import { readTokenEmbedding, UserModel } from './user-model.ts';

export interface JobPair {
  id: string;
  userId: string;
  prompt: ChatMessage[];
  chosen: string;
  rejected: string;
  heldout: boolean;
  /** Cached π_ref log-probs, when the database has them for this model. */
  ref?: { chosen: number; rejected: number };
}

export interface TrainJobSpec {
  modelDir: string;
  threads: number;
  config: PdpoConfig;
  pairs: JobPair[];
  /** Warm start: the published version's blob; null starts from vocabulary embeddings. */
  init: Uint8Array | null;
  /** Users whose pairs must not be trained on with their old parameters (reset since the version). */
  dropUsers: string[];
  /** Per-user retraining: only these users' parameters train. Null: everything. */
  onlyUsers: string[] | null;
  /** Also train the vanilla-DPO baseline (α = 0, one shared prompt) and report its held-out accuracy. */
  baseline: boolean;
  /** In a worker: the nice value its threads run at (chat first). */
  nice?: number;
}

export interface HeldoutReport {
  mean: number | null;
  perUser: Record<string, DpoStats>;
}

export interface TrainJobResult {
  blob: Uint8Array;
  history: StepLog[];
  /** Per user, the training stats of the last epoch. */
  trainPerUser: Record<string, DpoStats>;
  /** Per epoch, per user: loss, rewards, margins, accuracy, log-probs and gradient cosine. */
  trainPerUserEpochs: { epoch: number; perUser: Record<string, DpoStats> }[];
  heldout: { candidate: HeldoutReport; current: HeldoutReport | null; generic: HeldoutReport; baseline: HeldoutReport | null };
  pairs: { train: number; heldout: number; users: number };
  seconds: { reference: number; train: number; evaluate: number; baseline: number };
}

export type TrainerEvent =
  | { type: 'phase'; phase: 'load' | 'reference' | 'train' | 'baseline' | 'evaluate'; done: number; total: number }
  | { type: 'progress'; progress: TrainProgress }
  | { type: 'refs'; refs: [string, number, number][] };

/** What the worker thread posts: its reports, then exactly one 'done' or 'error'. */
export type WorkerMessage = TrainerEvent | { type: 'done'; result: TrainJobResult } | { type: 'error'; message: string };
/** What the job manager posts to the worker thread. */
export type WorkerCommand = { type: 'cancel' };

const report = (perUser: Record<string, DpoStats>): HeldoutReport => ({ mean: meanAccuracy(perUser), perUser });


/** The initial user model of a job: the warm start (minus reset users), or vocabulary embeddings. */
export function initialUserModel(spec: TrainJobSpec, hidden: number, vocabSize: number, embedding: () => Float32Array): UserModel {
  const cfg = spec.config;
  if (spec.init) {
    const m = UserModel.deserialize(spec.init);
    const sameShape = m.spec.kind === cfg.userModel && m.spec.tokens === cfg.tokens && m.spec.hidden === hidden && (m.spec.kind === 'individual' || m.spec.clusters === cfg.clusters);
    if (sameShape) {
      for (const u of spec.dropUsers) m.removeUser(u);
      return m;
    }
  }
  const kind = cfg.userModel;
  return UserModel.initFromVocabulary({ kind, tokens: cfg.tokens, hidden, ...(kind === 'cluster' ? { clusters: cfg.clusters } : {}) }, embedding(), vocabSize, new Rng(cfg.seed));
}

export async function runTrainJob(spec: TrainJobSpec, emit: (e: TrainerEvent) => void, signal?: AbortSignal): Promise<TrainJobResult> {
  emit({ type: 'phase', phase: 'load', done: 0, total: 1 });
  const rt = await ModelRuntime.load(spec.modelDir, { threads: spec.threads });
  // A cancel is seen between steps (trainPdpo), reference batches and phases: never mid-run of a
  // session, which must finish before the runtime can be released.
  const checkCancelled = () => {
    if (signal?.aborted) throw new TrainingCancelled();
  };
  try {
    checkCancelled();
    const tok = loadTokenizer(spec.modelDir, { extraEosTokenIds: rt.config.eosTokenIds });
    const cfg = spec.config;
    const tokenized = spec.pairs.map((p) => ({ pair: p, t: { ...tokenizePair(tok, p, cfg, rt.maxContext), ...(p.ref ? { ref: p.ref } : {}) } as TokenizedPair }));
    const all = tokenized.map((x) => x.t);
    await rt.openScorer(true);
    const t0 = performance.now();
    const missing = all.filter((p) => !p.ref);
    await referenceLogps(rt, missing, 16, (done, total) => {
      emit({ type: 'phase', phase: 'reference', done, total });
      checkCancelled();
    });
    if (missing.length) emit({ type: 'refs', refs: missing.map((p) => [p.id, p.ref!.chosen, p.ref!.rejected]) });
    const t1 = performance.now();
    const train = tokenized.filter((x) => !x.pair.heldout).map((x) => x.t);
    const heldout = tokenized.filter((x) => x.pair.heldout).map((x) => x.t);
    let embedding: Float32Array | null = null;
    const readEmbedding = () => {
      if (!embedding) {
        const files = openModelDir(spec.modelDir);
        try {
          embedding = readTokenEmbedding(files);
        } finally {
          files.weights.close();
        }
      }
      return embedding;
    };
    const init = initialUserModel(spec, rt.config.hidden, rt.config.vocabSize, readEmbedding);
    const current = spec.init ? UserModel.deserialize(spec.init) : null;
    let trainPerUser: Record<string, DpoStats> = {};
    const trainPerUserEpochs: { epoch: number; perUser: Record<string, DpoStats> }[] = [];
    emit({ type: 'phase', phase: 'train', done: 0, total: 1 });
    const trained = await trainPdpo({
      runtime: rt, pairs: train, init, config: cfg, onlyUsers: spec.onlyUsers, signal,
      onProgress: (progress) => emit({ type: 'progress', progress }),
      onEpoch: (epoch, perUser) => {
        trainPerUser = perUser;
        trainPerUserEpochs.push({ epoch, perUser });
      },
    });
    const t2 = performance.now();
    let baseline: HeldoutReport | null = null;
    if (spec.baseline) {
      checkCancelled();
      emit({ type: 'phase', phase: 'baseline', done: 0, total: 1 });
      const dpoInit = UserModel.initFromVocabulary({ kind: 'individual', tokens: cfg.tokens, hidden: rt.config.hidden }, readEmbedding(), rt.config.vocabSize, new Rng(cfg.seed));
      const dpo = await trainPdpo({ runtime: rt, pairs: train, init: dpoInit, config: { ...cfg, alpha: 0, userModel: 'individual' }, signal });
      baseline = report(await evaluatePdpo(rt, dpo.model, heldout, cfg, { generic: true }));
    }
    const t3 = performance.now();
    checkCancelled();
    emit({ type: 'phase', phase: 'evaluate', done: 0, total: 1 });
    const candidate = report(await evaluatePdpo(rt, trained.model, heldout, cfg));
    checkCancelled();
    const generic = report(await evaluatePdpo(rt, trained.model, heldout, cfg, { generic: true }));
    checkCancelled();
    // The published version on the same held-out pairs (users it never saw get its e_0): the gate's yardstick.
    const currentReport = current ? report(await evaluatePdpo(rt, current, heldout, cfg)) : null;
    const t4 = performance.now();
    return {
      blob: trained.model.serialize(),
      history: trained.history,
      trainPerUser,
      trainPerUserEpochs,
      heldout: { candidate, current: currentReport, generic, baseline },
      pairs: { train: train.length, heldout: heldout.length, users: new Set(spec.pairs.map((p) => p.userId)).size },
      seconds: { reference: (t1 - t0) / 1000, train: (t2 - t1) / 1000, baseline: (t3 - t2) / 1000, evaluate: (t4 - t3) / 1000 },
    };
  } finally {
    await rt.release();
  }
}
