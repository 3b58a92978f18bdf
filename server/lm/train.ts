// Full-weight training of a (small) model with the engine's own autodiff: the training graph gives
// the loss and every weight's gradient in one onnxruntime run; AdamW with warmup, cosine decay and
// global-norm clipping runs here. Checkpoints hold weights, optimizer moments and the step.
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { LmError } from './errors.ts';
import type { ModelConfig } from './model-config.ts';
import { IO, architectureOf, buildTrainGraph } from './model.ts';
import { createSession } from './runtime.ts';
import { openSafetensors, writeSafetensors } from './safetensors.ts';

export interface OptimizerOptions {
  lr: number;
  /** Cosine decay ends at lr × minLrRatio. */
  minLrRatio: number;
  warmupSteps: number;
  totalSteps: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Clip the global gradient norm to this (0 = off). */
  clipNorm: number;
}

export const DEFAULT_OPTIMIZER: OptimizerOptions = {
  lr: 2e-3, minLrRatio: 0.1, warmupSteps: 100, totalSteps: 1000, weightDecay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, clipNorm: 1,
};

/** Learning rate at `step` (0-based): linear warmup, then cosine decay to minLrRatio·lr. */
export function learningRate(o: OptimizerOptions, step: number): number {
  if (step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  const progress = Math.min(1, (step - o.warmupSteps) / Math.max(1, o.totalSteps - o.warmupSteps));
  const min = o.lr * o.minLrRatio;
  return min + 0.5 * (o.lr - min) * (1 + Math.cos(Math.PI * progress));
}

/** One training row: token ids and which of them the loss counts (predicting them from what precedes). */
export interface TrainRow {
  ids: readonly number[];
  /** lossMask[t] = 1 when ids[t] is a target; ids[0] never is. Default: every token after the first. */
  lossMask?: readonly number[];
}

export interface StepResult {
  loss: number;
  tokens: number;
  gradNorm: number;
  lr: number;
}

function packTrainRows(rows: readonly TrainRow[], hidden: number): Record<string, ort.Tensor> {
  const B = rows.length;
  const S = Math.max(...rows.map((r) => r.ids.length));
  const ids = new BigInt64Array(B * S);
  const pos = new BigInt64Array(B * S);
  const mask = new BigInt64Array(B * S);
  const targets = new BigInt64Array(B * S);
  const tmask = new Float32Array(B * S);
  rows.forEach((r, b) => {
    r.ids.forEach((id, t) => {
      ids[b * S + t] = BigInt(id);
      pos[b * S + t] = BigInt(t);
      mask[b * S + t] = 1n;
      if (t + 1 < r.ids.length && (r.lossMask ? r.lossMask[t + 1] : 1)) {
        targets[b * S + t] = BigInt(r.ids[t + 1]!);
        tmask[b * S + t] = 1;
      }
    });
  });
  return {
    [IO.inputIds]: new ort.Tensor('int64', ids, [B, S]),
    [IO.prefix]: new ort.Tensor('float32', new Float32Array(0), [B, 0, hidden]),
    [IO.positionIds]: new ort.Tensor('int64', pos, [B, S]),
    [IO.attentionMask]: new ort.Tensor('int64', mask, [B, S]),
    [IO.targets]: new ort.Tensor('int64', targets, [B, S]),
    [IO.targetMask]: new ort.Tensor('float32', tmask, [B, S]),
  };
}

export class LmTrainer {
  step = 0;
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();

  private constructor(
    readonly config: ModelConfig,
    readonly params: Map<string, Float32Array>,
    public opt: OptimizerOptions,
    private readonly trainSession: ort.InferenceSession,
    private readonly evalSession: ort.InferenceSession,
    private readonly names: string[],
  ) {
    for (const n of names) {
      this.m.set(n, new Float32Array(params.get(n)!.length));
      this.v.set(n, new Float32Array(params.get(n)!.length));
    }
  }

  static async create(config: ModelConfig, params: Map<string, Float32Array>, opt: OptimizerOptions, threads?: number): Promise<LmTrainer> {
    const shapes = architectureOf(config).weightShapes(config);
    for (const [name, shape] of shapes) {
      const p = params.get(name);
      const n = shape.reduce((a, d) => a * d, 1);
      if (!p || p.length !== n) throw new LmError('bad_argument', `initial weights: ${name} must have ${n} values`);
    }
    const train = buildTrainGraph(config, 'float32', { gradients: true });
    const evalG = buildTrainGraph(config, 'float32', { gradients: false });
    const trainSession = await createSession(train.graph, threads);
    const evalSession = await createSession(evalG.graph, threads);
    return new LmTrainer(config, params, opt, trainSession, evalSession, train.paramNames);
  }

  private paramFeeds(): Record<string, ort.Tensor> {
    const shapes = architectureOf(this.config).weightShapes(this.config);
    const feeds: Record<string, ort.Tensor> = {};
    for (const n of this.names) feeds[IO.param(n)] = new ort.Tensor('float32', this.params.get(n)!, shapes.get(n)!);
    return feeds;
  }

  /** Mean next-token loss over the batch's target tokens, without updating anything. */
  async evaluate(rows: readonly TrainRow[]): Promise<{ loss: number; tokens: number }> {
    const out = await this.evalSession.run({ ...packTrainRows(rows, this.config.hidden), ...this.paramFeeds() }, [IO.loss, IO.tokenCount]);
    return { loss: (out[IO.loss]!.data as Float32Array)[0]!, tokens: (out[IO.tokenCount]!.data as Float32Array)[0]! };
  }

  /** One AdamW step on the batch. */
  async trainStep(rows: readonly TrainRow[]): Promise<StepResult> {
    const fetch = [IO.loss, IO.tokenCount, ...this.names.map((n) => IO.gradParam(n))];
    const out = await this.trainSession.run({ ...packTrainRows(rows, this.config.hidden), ...this.paramFeeds() }, fetch);
    const loss = (out[IO.loss]!.data as Float32Array)[0]!;
    const tokens = (out[IO.tokenCount]!.data as Float32Array)[0]!;
    if (!Number.isFinite(loss)) throw new LmError('bad_argument', `training diverged: loss is ${loss} at step ${this.step}`);
    let sq = 0;
    for (const n of this.names) {
      const g = out[IO.gradParam(n)]!.data as Float32Array;
      for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
    }
    const gradNorm = Math.sqrt(sq);
    const scale = this.opt.clipNorm > 0 && gradNorm > this.opt.clipNorm ? this.opt.clipNorm / gradNorm : 1;
    const lr = learningRate(this.opt, this.step);
    const { beta1, beta2, eps, weightDecay } = this.opt;
    const t = this.step + 1;
    const bc1 = 1 - beta1 ** t;
    const bc2 = 1 - beta2 ** t;
    for (const n of this.names) {
      const g = out[IO.gradParam(n)]!.data as Float32Array;
      const p = this.params.get(n)!;
      const m = this.m.get(n)!;
      const v = this.v.get(n)!;
      // Decoupled weight decay on matrices only (not norms, biases or the 1-D gains).
      const decay = isDecayed(n, this.config) ? lr * weightDecay : 0;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]! * scale;
        const mi = (m[i] = beta1 * m[i]! + (1 - beta1) * gi);
        const vi = (v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi);
        p[i] = p[i]! - decay * p[i]! - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
      }
    }
    this.step++;
    return { loss, tokens, gradNorm, lr };
  }

  /** Weights, both Adam moments and the step, written atomically (a temp dir renamed into place). */
  saveCheckpoint(dir: string, extra: Record<string, unknown> = {}): void {
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    const shapes = architectureOf(this.config).weightShapes(this.config);
    const dump = (file: string, src: Map<string, Float32Array>) =>
      writeSafetensors(path.join(tmp, file), this.names.map((n) => ({ name: n, shape: shapes.get(n)!, data: src.get(n)! })));
    dump('params.safetensors', this.params);
    dump('adam_m.safetensors', this.m);
    dump('adam_v.safetensors', this.v);
    fs.writeFileSync(path.join(tmp, 'state.json'), JSON.stringify({ step: this.step, optimizer: this.opt, ...extra }, null, 2));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  }

  /** Restore weights, moments, step and optimizer schedule; returns the extra state saved with them. */
  loadCheckpoint(dir: string): Record<string, unknown> {
    const state = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as Record<string, unknown> & { step: number; optimizer: OptimizerOptions };
    this.opt = state.optimizer;
    const load = (file: string, dst: Map<string, Float32Array>) => {
      const src = openSafetensors(path.join(dir, file));
      try {
        for (const n of this.names) dst.get(n)!.set(src.getFloat32(n));
      } finally {
        src.close();
      }
    };
    load('params.safetensors', this.params);
    load('adam_m.safetensors', this.m);
    load('adam_v.safetensors', this.v);
    this.step = state.step;
    return state;
  }

  async release(): Promise<void> {
    await this.trainSession.release();
    await this.evalSession.release();
  }
}

function isDecayed(name: string, cfg: ModelConfig): boolean {
  const shape = architectureOf(cfg).weightShapes(cfg).get(name);
  return !!shape && shape.length === 2 && !/(wpe|wte|embed_tokens)\.weight$/.test(name);
}
