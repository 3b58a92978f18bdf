// Full-weight training of a (small) model with the engine's own autodiff: the training graph gives
// the loss and every weight's gradient in one onnxruntime run; optim.ts's AdamW, schedule and
// global-norm clipping step the weights. Checkpoints hold weights, optimizer moments and the step.
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { LmError } from '../server/lm/errors.ts';
import type { ModelConfig } from '../server/lm/model-config.ts';
import { IO, buildTrainGraph, weightShapes } from '../server/lm/model.ts';
import { AdamW, type OptimizerOptions, clipByGlobalNorm, learningRate } from '../server/lm/optim.ts';
import { createSession } from '../server/lm/runtime.ts';
import { openSafetensors, writeSafetensors } from '../server/lm/safetensors.ts';

export const DEFAULT_OPTIMIZER: OptimizerOptions = {
  lr: 2e-3, minLrRatio: 0.1, warmupSteps: 100, totalSteps: 1000, weightDecay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, clipNorm: 1,
};

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
  private readonly adam: AdamW;
  private readonly shapes: Map<string, number[]>;

  private constructor(
    readonly config: ModelConfig,
    readonly params: Map<string, Float32Array>,
    public opt: OptimizerOptions,
    private readonly trainSession: ort.InferenceSession,
    private readonly evalSession: ort.InferenceSession,
    private readonly names: string[],
  ) {
    this.adam = new AdamW(params, names);
    this.shapes = weightShapes(config);
  }

  /** Optimizer steps taken. */
  get step(): number {
    return this.adam.steps;
  }

  static async create(config: ModelConfig, params: Map<string, Float32Array>, opt: OptimizerOptions, threads?: number): Promise<LmTrainer> {
    for (const [name, shape] of weightShapes(config)) {
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
    const feeds: Record<string, ort.Tensor> = {};
    for (const n of this.names) feeds[IO.param(n)] = new ort.Tensor('float32', this.params.get(n)!, this.shapes.get(n)!);
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
    const grads = this.names.map((n) => [n, out[IO.gradParam(n)]!.data as Float32Array] as const);
    const { norm: gradNorm, scale } = clipByGlobalNorm(grads.map(([, g]) => g), this.opt.clipNorm);
    const lr = learningRate(this.opt, this.step);
    // Decoupled weight decay on matrices only (not norms, biases or the 1-D gains), nor embeddings.
    this.adam.step(grads, lr, this.opt, { gradScale: scale, decays: (n) => isDecayed(n, this.shapes) });
    return { loss, tokens, gradNorm, lr };
  }

  /** Weights, both Adam moments and the step, written atomically (a temp dir renamed into place). */
  saveCheckpoint(dir: string, extra: Record<string, unknown> = {}): void {
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    const dump = (file: string, src: ReadonlyMap<string, Float32Array>) =>
      writeSafetensors(path.join(tmp, file), this.names.map((n) => ({ name: n, shape: this.shapes.get(n)!, data: src.get(n)! })));
    dump('params.safetensors', this.params);
    dump('adam_m.safetensors', this.adam.m);
    dump('adam_v.safetensors', this.adam.v);
    fs.writeFileSync(path.join(tmp, 'state.json'), JSON.stringify({ step: this.step, optimizer: this.opt, ...extra }, null, 2));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  }

  /** Restore weights, moments, step and optimizer schedule; returns the extra state saved with them. */
  loadCheckpoint(dir: string): Record<string, unknown> {
    const state = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as Record<string, unknown> & { step: number; optimizer: OptimizerOptions };
    this.opt = state.optimizer;
    const load = (file: string, dst: ReadonlyMap<string, Float32Array>) => {
      const src = openSafetensors(path.join(dir, file));
      try {
        for (const n of this.names) dst.get(n)!.set(src.getFloat32(n));
      } finally {
        src.close();
      }
    };
    load('params.safetensors', this.params);
    load('adam_m.safetensors', this.adam.m);
    load('adam_v.safetensors', this.adam.v);
    this.adam.steps = state.step;
    return state;
  }

  async release(): Promise<void> {
    await this.trainSession.release();
    await this.evalSession.release();
  }
}

function isDecayed(name: string, shapes: ReadonlyMap<string, number[]>): boolean {
  const shape = shapes.get(name);
  return !!shape && shape.length === 2 && !/(wpe|wte|embed_tokens)\.weight$/.test(name);
}
