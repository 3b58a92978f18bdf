// onnxruntime-node sessions for the model's graphs, and batch packing for the serving and scoring
// graphs. One serving session per model covers prefill and decode; the scoring session is opened
// only while training runs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { CONTEXT_LENGTH_EXCEEDED, LmError } from './errors.ts';
import type { ModelConfig } from './model-config.ts';
import { IO, buildScoreGraph, buildServeGraph, initializerParams } from './model.ts';
import { type Graph, initializerByteLength } from './onnx/graph.ts';
import { toModelBytes, writeModelWithExternalData } from './onnx/emit.ts';
import { type ModelFiles, openModelDir } from './weights.ts';

export const DEFAULT_THREADS = Math.max(1, os.availableParallelism());

// Models whose initializers pass this go through an external-data file rather than inline protobuf
// bytes. Protobuf caps a message at 2 GB, and memory decides it long before: from bytes, onnxruntime
// parses a second copy of every weight and the freed copies stay in the allocator's heap, while an
// external-data file is memory-mapped, so weights that a kernel pre-packs are never held twice
// (124M GPT-2: serving RSS ~1.3 GB inline, ~0.8 GB external). Small models stay inline: no temp file.
const INLINE_LIMIT_BYTES = 64 * 1024 ** 2;

export async function createSession(g: Graph, threads = DEFAULT_THREADS, inlineLimitBytes = INLINE_LIMIT_BYTES): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  };
  const bytes = g.initializers.reduce((s, i) => s + initializerByteLength(i), 0);
  if (bytes < inlineLimitBytes) return ort.InferenceSession.create(toModelBytes(g), options);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-onnx-'));
  try {
    const file = path.join(dir, `${g.name}.onnx`);
    writeModelWithExternalData(g, file);
    return await ort.InferenceSession.create(file, options);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One row of a batch: optional soft prompt (P×H, row-major) and token ids. */
export interface Row {
  prefix: Float32Array | null;
  ids: readonly number[];
}

export function prefixLength(prefix: Float32Array | null, hidden: number): number {
  if (!prefix) return 0;
  if (prefix.length % hidden !== 0) {
    throw new LmError('bad_argument', `prefix has ${prefix.length} numbers, not a multiple of the hidden size ${hidden}`, { hidden });
  }
  return prefix.length / hidden;
}

/**
 * Pack rows into the slot layout [P prefix slots | S token slots]: prefixes are right-aligned in
 * their region (so the last prefix slot is always Pmax-1), tokens left-aligned, padding masked.
 */
export function packRows(rows: readonly Row[], hidden: number, pastMask: BigInt64Array | null, lpast: number) {
  const B = rows.length;
  const P = Math.max(0, ...rows.map((r) => prefixLength(r.prefix, hidden)));
  const S = Math.max(...rows.map((r) => r.ids.length));
  const N = P + S;
  const L = lpast + N;
  const prefix = new Float32Array(B * P * hidden);
  const ids = new BigInt64Array(B * S);
  const pos = new BigInt64Array(B * N);
  const mask = new BigInt64Array(B * L);
  const lastSlot: number[] = [];
  const nextPosition: number[] = [];
  rows.forEach((r, b) => {
    const p = prefixLength(r.prefix, hidden);
    if (r.prefix) prefix.set(r.prefix, (b * P + (P - p)) * hidden);
    if (pastMask) mask.set(pastMask.subarray(b * lpast, (b + 1) * lpast), b * L);
    for (let j = P - p; j < P; j++) {
      pos[b * N + j] = BigInt(j - (P - p));
      mask[b * L + lpast + j] = 1n;
    }
    r.ids.forEach((id, t) => {
      ids[b * S + t] = BigInt(id);
      pos[b * N + P + t] = BigInt(p + t);
      mask[b * L + lpast + P + t] = 1n;
    });
    lastSlot.push(P + r.ids.length - 1);
    nextPosition.push(p + r.ids.length);
  });
  return {
    B, P, S, N, L, lastSlot, nextPosition,
    feeds: {
      [IO.inputIds]: new ort.Tensor('int64', ids, [B, S]),
      [IO.prefix]: new ort.Tensor('float32', prefix, [B, P, hidden]),
      [IO.positionIds]: new ort.Tensor('int64', pos, [B, N]),
      [IO.attentionMask]: new ort.Tensor('int64', mask, [B, L]),
    } as Record<string, ort.Tensor>,
    mask,
  };
}

export interface ScoreRow {
  prefix: Float32Array | null;
  ids: readonly number[];
  /** Score ids[from..]; with no prefix, from must be ≥ 1. */
  from: number;
}

export interface ScoreResult {
  logp: number[];
  /** Per row, the gradient of its logp w.r.t. its own prefix (P_i×H), or null when it has none. */
  gradPrefix: (Float32Array | null)[];
}

/** The frozen model: serving session, tokenizer-free numerics, and an optional scoring session. */
export class ModelRuntime {
  private scoreSession: ort.InferenceSession | null = null;
  private scoreSessionGrad = false;

  private constructor(
    readonly files: ModelFiles,
    readonly serve: ort.InferenceSession,
    private readonly threads: number,
  ) {}

  /** `inlineLimitBytes`: weights above this go through an ONNX external-data file (default 64 MB). */
  static async load(dir: string, opts: { threads?: number; inlineLimitBytes?: number } = {}): Promise<ModelRuntime> {
    const files = openModelDir(dir);
    const threads = opts.threads ?? DEFAULT_THREADS;
    try {
      // Emitting the graph reads every weight once, which is where NaN/Inf values are refused.
      const g = buildServeGraph(files.config, (gr) => initializerParams(gr, 'float32', files.weights.shapes, (n) => files.weights.get(n)));
      const serve = await createSession(g, threads, opts.inlineLimitBytes);
      return new ModelRuntime(files, serve, threads);
    } finally {
      files.weights.close();
    }
  }

  get config(): ModelConfig {
    return this.files.config;
  }

  /** Empty past keys/values for B rows. */
  emptyPast(B: number): Record<string, ort.Tensor> {
    const c = this.config;
    const feeds: Record<string, ort.Tensor> = {};
    for (let i = 0; i < c.layers; i++) {
      feeds[IO.pastKey(i)] = new ort.Tensor('float32', new Float32Array(0), [B, c.kvHeads, 0, c.headDim]);
      feeds[IO.pastValue(i)] = new ort.Tensor('float32', new Float32Array(0), [B, c.kvHeads, 0, c.headDim]);
    }
    return feeds;
  }

  checkIds(ids: readonly number[], what = 'ids'): void {
    const V = this.config.vocabSize;
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) {
        throw new LmError('bad_argument', `${what}[${i}] = ${id} is out of range: token ids are integers in [0, ${V - 1}]`, { index: i, id });
      }
    });
  }

  checkContext(total: number, what = 'prompt'): void {
    const max = this.maxContext;
    if (total > max) {
      throw new LmError('bad_argument', `${what} needs ${total} positions (prefix + tokens) but the model's context is ${max}`, { total, max, reason: CONTEXT_LENGTH_EXCEEDED });
    }
  }

  get maxContext(): number {
    const c = this.config;
    return c.slidingWindow ? Math.min(c.maxPositions, c.slidingWindow) : c.maxPositions;
  }

  /** Logits [T×V] at every token position of one row (prefix positions excluded). */
  async logits(ids: readonly number[], prefix: Float32Array | null = null): Promise<Float32Array[]> {
    this.checkIds(ids);
    const p = prefixLength(prefix, this.config.hidden);
    this.checkContext(p + ids.length);
    if (ids.length === 0) throw new LmError('bad_argument', 'ids must not be empty');
    const packed = packRows([{ prefix, ids }], this.config.hidden, null, 0);
    const idx = BigInt64Array.from(ids.map((_, t) => BigInt(packed.P + t)));
    const out = await this.serve.run({ ...packed.feeds, ...this.emptyPast(1), [IO.logitsIndex]: new ort.Tensor('int64', idx, [1, ids.length]) }, [IO.logits]);
    const data = out[IO.logits]!.data as Float32Array;
    const V = this.config.vocabSize;
    return ids.map((_, t) => data.subarray(t * V, (t + 1) * V));
  }

  /** Open (or reuse) the scoring session; it holds its own copy of the weights until closeScorer(). */
  async openScorer(gradPrefix = true): Promise<void> {
    if (this.scoreSession && this.scoreSessionGrad === gradPrefix) return;
    await this.closeScorer();
    const files = openModelDir(this.files.dir);
    try {
      const g = buildScoreGraph(files.config, (gr) => initializerParams(gr, 'float32', files.weights.shapes, (n) => files.weights.get(n)), { gradPrefix });
      this.scoreSession = await createSession(g, this.threads);
      this.scoreSessionGrad = gradPrefix;
    } finally {
      files.weights.close();
    }
  }

  async closeScorer(): Promise<void> {
    if (this.scoreSession) await this.scoreSession.release();
    this.scoreSession = null;
  }

  /**
   * Σ_{t ≥ from} log p(ids[t] | prefix, ids[<t]) per row, in one run, with the gradient of each row's
   * logp w.r.t. its own prefix. Rows may have different prefixes and lengths.
   */
  async score(rows: readonly ScoreRow[], opts: { gradPrefix?: boolean } = {}): Promise<ScoreResult> {
    const wantGrad = opts.gradPrefix ?? true;
    const H = this.config.hidden;
    rows.forEach((r, i) => {
      this.checkIds(r.ids, `rows[${i}].ids`);
      const p = prefixLength(r.prefix, H);
      this.checkContext(p + r.ids.length, `rows[${i}]`);
      const minFrom = p > 0 ? 0 : 1;
      if (!Number.isInteger(r.from) || r.from < minFrom || r.from >= r.ids.length) {
        throw new LmError('bad_argument', `rows[${i}].from = ${r.from} must be an integer in [${minFrom}, ${r.ids.length - 1}]${p ? '' : ' (without a prefix the first token has no prediction)'}`);
      }
    });
    if (!this.scoreSession || (wantGrad && !this.scoreSessionGrad)) await this.openScorer(wantGrad);
    const packed = packRows(rows.map((r) => ({ prefix: r.prefix, ids: r.ids })), H, null, 0);
    const { B, N, P } = packed;
    const targets = new BigInt64Array(B * N);
    const tmask = new Float32Array(B * N);
    rows.forEach((r, b) => {
      // Slot s predicts the token in slot s+1; token t sits in slot P + t.
      for (let t = r.from; t < r.ids.length; t++) {
        const slot = P + t - 1;
        targets[b * N + slot] = BigInt(r.ids[t]!);
        tmask[b * N + slot] = 1;
      }
    });
    const fetch = wantGrad ? [IO.logp, IO.gradPrefix] : [IO.logp];
    const out = await this.scoreSession!.run(
      { ...packed.feeds, [IO.targets]: new ort.Tensor('int64', targets, [B, N]), [IO.targetMask]: new ort.Tensor('float32', tmask, [B, N]) },
      fetch,
    );
    const logp = Array.from(out[IO.logp]!.data as Float32Array);
    const gp = wantGrad ? (out[IO.gradPrefix]!.data as Float32Array) : null;
    const gradPrefix = rows.map((r, b) => {
      const p = prefixLength(r.prefix, H);
      if (!gp || p === 0) return null;
      return gp.slice((b * P + (P - p)) * H, (b * P + P) * H);
    });
    return { logp, gradPrefix };
  }

  async release(): Promise<void> {
    await this.closeScorer();
    await this.serve.release();
  }
}
