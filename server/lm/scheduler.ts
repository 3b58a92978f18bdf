// Continuous batching: concurrent requests, each with its own soft prompt, join and leave one shared
// decode batch step by step. Joiners are prefilled together, then their KV caches are merged into the
// batch (left-padded, masked); finished rows are dropped between steps.
import * as ort from 'onnxruntime-node';
import { LmError } from './errors.ts';
import { IO } from './model.ts';
import { type ModelRuntime, packRows, prefixLength } from './runtime.ts';
import { Sampler, type SamplingParams } from './sampling.ts';
import { StopMatcher, TextStreamDecoder } from './text-stream.ts';
import type { ChatTokenizer } from './tokenizer.ts';

export interface GenerationRequest {
  promptIds: readonly number[];
  /** Soft prompt P×H (row-major), or null for none. */
  prefix: Float32Array | null;
  sampling: SamplingParams;
  maxNewTokens: number;
  stop?: readonly string[];
  signal?: AbortSignal;
  /** Keep going past end-of-sequence tokens (benchmarks on random weights). */
  ignoreEos?: boolean;
}

export type FinishReason = 'stop' | 'eos' | 'length' | 'abort' | 'error';

export interface GenerationResult {
  text: string;
  tokenIds: number[];
  finishReason: FinishReason;
  promptTokens: number;
  timeToFirstTokenMs: number | null;
  durationMs: number;
}

/** Text deltas as an async iterator, and the final result. */
export class GenerationStream implements AsyncIterable<string> {
  private readonly pending: string[] = [];
  private waiter: (() => void) | null = null;
  private ended = false;
  readonly result: Promise<GenerationResult>;
  private settle!: (r: GenerationResult) => void;
  private fail!: (e: unknown) => void;

  constructor() {
    this.result = new Promise((res, rej) => {
      this.settle = res;
      this.fail = rej;
    });
    // The result is also delivered through iteration; avoid unhandled-rejection noise when only one is read.
    this.result.catch(() => undefined);
  }

  push(delta: string): void {
    if (!delta) return;
    this.pending.push(delta);
    this.wake();
  }

  finish(r: GenerationResult): void {
    this.ended = true;
    this.settle(r);
    this.wake();
  }

  error(e: unknown): void {
    this.ended = true;
    this.fail(e);
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    for (;;) {
      if (this.pending.length) {
        yield this.pending.shift()!;
        continue;
      }
      if (this.ended) {
        await this.result; // rethrows a failure
        return;
      }
      await new Promise<void>((r) => (this.waiter = r));
    }
  }
}

interface Sequence {
  req: GenerationRequest;
  stream: GenerationStream;
  sampler: Sampler;
  decoder: TextStreamDecoder;
  stopper: StopMatcher;
  history: number[]; // prompt + generated ids (for the repetition penalty)
  generated: number[];
  text: string;
  nextPosition: number;
  lastToken: number;
  started: number;
  firstTokenAt: number | null;
  done: FinishReason | null;
}

interface BatchCache {
  L: number;
  mask: BigInt64Array; // [B, L]
  kv: ort.Tensor[]; // per layer: key, value, each [B, kvHeads, L, headDim]
}

export interface SchedulerStats {
  active: number;
  queued: number;
  steps: number;
  generatedTokens: number;
}

export class Scheduler {
  private readonly queue: Sequence[] = [];
  private rows: Sequence[] = [];
  private cache: BatchCache | null = null;
  private running: Promise<void> | null = null;
  private closed = false;
  private steps = 0;
  private generatedTokens = 0;

  constructor(
    readonly runtime: ModelRuntime,
    readonly tokenizer: ChatTokenizer,
    readonly opts: { maxBatch: number } = { maxBatch: 32 },
  ) {}

  stats(): SchedulerStats {
    return { active: this.rows.length, queued: this.queue.length, steps: this.steps, generatedTokens: this.generatedTokens };
  }

  submit(req: GenerationRequest): GenerationStream {
    if (this.closed) throw new LmError('bad_argument', 'the engine is shutting down');
    const rt = this.runtime;
    if (req.promptIds.length === 0) throw new LmError('bad_argument', 'the prompt is empty');
    rt.checkIds(req.promptIds, 'promptIds');
    const p = prefixLength(req.prefix, rt.config.hidden);
    rt.checkContext(p + req.promptIds.length);
    if (!Number.isInteger(req.maxNewTokens) || req.maxNewTokens < 1) {
      throw new LmError('bad_argument', `maxNewTokens must be a positive integer, got ${req.maxNewTokens}`);
    }
    const stream = new GenerationStream();
    this.queue.push({
      req, stream,
      sampler: new Sampler(req.sampling),
      decoder: new TextStreamDecoder(this.tokenizer),
      stopper: new StopMatcher([...(req.stop ?? [])]),
      history: [...req.promptIds],
      generated: [],
      text: '',
      nextPosition: p + req.promptIds.length,
      lastToken: -1,
      started: performance.now(),
      firstTokenAt: null,
      done: null,
    });
    this.kick();
    return stream;
  }

  /** Start the batch loop unless it runs. A request queued while the loop was winding down restarts it. */
  private kick(): void {
    if (this.running) return;
    this.running = this.loop().finally(() => {
      this.running = null;
      if (this.queue.length) this.kick();
    });
  }

  /** Stop admitting work; wait for running generations (or abort them after `deadlineMs`). */
  async close(deadlineMs = 10_000): Promise<void> {
    this.closed = true;
    const timer = setTimeout(() => {
      for (const s of [...this.rows, ...this.queue]) s.done ??= 'abort';
    }, deadlineMs);
    try {
      await this.running;
    } finally {
      clearTimeout(timer);
    }
  }

  private async loop(): Promise<void> {
    while (this.rows.length || this.queue.length) {
      try {
        const room = this.opts.maxBatch - this.rows.length;
        if (this.queue.length && room > 0) await this.admit(this.queue.splice(0, room));
        this.retireFinished();
        if (this.rows.length) {
          await this.decodeStep();
          this.retireFinished();
        }
      } catch (e) {
        for (const s of this.rows) s.stream.error(e);
        this.rows = [];
        this.cache = null;
      }
    }
  }

  private async admit(joiners: Sequence[]): Promise<void> {
    const live = joiners.filter((s) => !s.req.signal?.aborted);
    for (const s of joiners) if (s.req.signal?.aborted) this.finish(s, 'abort');
    if (!live.length) return;
    const rt = this.runtime;
    const packed = packRows(live.map((s) => ({ prefix: s.req.prefix, ids: s.req.promptIds })), rt.config.hidden, null, 0);
    const logitsIndex = new ort.Tensor('int64', BigInt64Array.from(packed.lastSlot.map(BigInt)), [live.length, 1]);
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await rt.serve.run({ ...packed.feeds, ...rt.emptyPast(live.length), [IO.logitsIndex]: logitsIndex });
    } catch (e) {
      // The joiners are in neither the queue nor the batch yet: fail them here or they wait forever.
      for (const s of live) s.stream.error(e);
      return;
    }
    const joined: BatchCache = { L: packed.L, mask: packed.mask, kv: this.presentOf(out) };
    this.cache = this.cache ? mergeCaches(this.cache, this.rows.length, joined, live.length) : joined;
    this.rows.push(...live);
    this.steps++;
    this.consumeLogits(out[IO.logits]!.data as Float32Array, live);
  }

  private presentOf(out: ort.InferenceSession.ReturnType): ort.Tensor[] {
    const kv: ort.Tensor[] = [];
    for (let i = 0; i < this.runtime.config.layers; i++) kv.push(out[IO.presentKey(i)]!, out[IO.presentValue(i)]!);
    return kv;
  }

  private async decodeStep(): Promise<void> {
    const rt = this.runtime;
    const c = this.cache!;
    const B = this.rows.length;
    const L = c.L + 1;
    const mask = new BigInt64Array(B * L);
    for (let b = 0; b < B; b++) {
      mask.set(c.mask.subarray(b * c.L, (b + 1) * c.L), b * L);
      mask[b * L + c.L] = 1n;
    }
    const feeds: Record<string, ort.Tensor> = {
      [IO.inputIds]: new ort.Tensor('int64', BigInt64Array.from(this.rows.map((s) => BigInt(s.lastToken))), [B, 1]),
      [IO.prefix]: new ort.Tensor('float32', new Float32Array(0), [B, 0, rt.config.hidden]),
      [IO.positionIds]: new ort.Tensor('int64', BigInt64Array.from(this.rows.map((s) => BigInt(s.nextPosition - 1))), [B, 1]),
      [IO.attentionMask]: new ort.Tensor('int64', mask, [B, L]),
      [IO.logitsIndex]: new ort.Tensor('int64', new BigInt64Array(B), [B, 1]),
    };
    for (let i = 0; i < rt.config.layers; i++) {
      feeds[IO.pastKey(i)] = c.kv[2 * i]!;
      feeds[IO.pastValue(i)] = c.kv[2 * i + 1]!;
    }
    const rows = this.rows.slice();
    const out = await rt.serve.run(feeds);
    this.cache = { L, mask, kv: this.presentOf(out) };
    this.steps++;
    this.consumeLogits(out[IO.logits]!.data as Float32Array, rows);
  }

  /** Sample the next token of each row from logits [B, V] and stream its text. */
  private consumeLogits(logits: Float32Array, rows: Sequence[]): void {
    const V = this.runtime.config.vocabSize;
    const eos = new Set(this.tokenizer.eosTokenIds);
    rows.forEach((s, b) => {
      if (s.done) return;
      if (s.req.signal?.aborted) {
        s.done = 'abort';
        return;
      }
      const id = s.sampler.next(logits.subarray(b * V, (b + 1) * V), s.history);
      s.firstTokenAt ??= performance.now();
      this.generatedTokens++;
      if (eos.has(id) && !s.req.ignoreEos) {
        s.done = 'eos';
        return;
      }
      s.generated.push(id);
      s.history.push(id);
      s.lastToken = id;
      s.nextPosition++;
      const { emit, stopped } = s.stopper.push(s.decoder.push(id));
      s.text += emit;
      s.stream.push(emit);
      if (stopped) s.done = 'stop';
      else if (s.generated.length >= s.req.maxNewTokens) s.done = 'length';
      else if (s.nextPosition >= this.runtime.maxContext) s.done = 'length';
    });
  }

  private retireFinished(): void {
    for (const s of this.rows) if (!s.done && s.req.signal?.aborted) s.done = 'abort';
    if (!this.rows.some((s) => s.done)) return;
    const keep: number[] = [];
    this.rows.forEach((s, b) => {
      if (s.done) this.finish(s, s.done);
      else keep.push(b);
    });
    this.cache = keep.length && this.cache ? selectRows(this.cache, this.rows.length, keep) : null;
    this.rows = keep.map((b) => this.rows[b]!);
  }

  private finish(s: Sequence, reason: FinishReason): void {
    if (reason !== 'stop') {
      // Flush what the decoder and stop matcher held back (a partial stop string is ordinary text).
      const tail = s.stopper.push(s.decoder.flush());
      const rest = tail.emit + (tail.stopped ? '' : s.stopper.flush());
      s.text += rest;
      s.stream.push(rest);
    }
    const now = performance.now();
    s.stream.finish({
      text: s.text,
      tokenIds: s.generated,
      finishReason: reason,
      promptTokens: s.req.promptIds.length,
      timeToFirstTokenMs: s.firstTokenAt === null ? null : s.firstTokenAt - s.started,
      durationMs: now - s.started,
    });
  }
}

// ---------------------------------------------------------------- cache surgery

/** Copy rows of [B, kvHeads, L, hd] caches into a new length L' ≥ L, right-aligned (left padding). */
function copyRows(src: BatchCache, srcB: number, rows: number[], dst: { L: number; mask: BigInt64Array; kv: Float32Array[] }, dstRow0: number, trim: number): void {
  const Ls = src.L;
  const Ld = dst.L;
  const shift = Ld - (Ls - trim);
  rows.forEach((b, r) => {
    const d = dstRow0 + r;
    dst.mask.set(src.mask.subarray(b * Ls + trim, (b + 1) * Ls), d * Ld + shift);
  });
  src.kv.forEach((t, k) => {
    const [, heads, , hd] = t.dims as number[];
    const data = t.data as Float32Array;
    const out = dst.kv[k]!;
    rows.forEach((b, r) => {
      const d = dstRow0 + r;
      for (let h = 0; h < heads!; h++) {
        const s0 = ((b * heads! + h) * Ls + trim) * hd!;
        out.set(data.subarray(s0, s0 + (Ls - trim) * hd!), ((d * heads! + h) * Ld + shift) * hd!);
      }
    });
  });
  void srcB;
}

function allocate(like: BatchCache, B: number, L: number): { L: number; mask: BigInt64Array; kv: Float32Array[] } {
  return {
    L,
    mask: new BigInt64Array(B * L),
    kv: like.kv.map((t) => {
      const [, heads, , hd] = t.dims as number[];
      return new Float32Array(B * heads! * L * hd!);
    }),
  };
}

function finalize(like: BatchCache, B: number, a: { L: number; mask: BigInt64Array; kv: Float32Array[] }): BatchCache {
  return {
    L: a.L,
    mask: a.mask,
    kv: a.kv.map((data, k) => {
      const [, heads, , hd] = like.kv[k]!.dims as number[];
      return new ort.Tensor('float32', data, [B, heads!, a.L, hd!]);
    }),
  };
}

export function mergeCaches(a: BatchCache, aB: number, b: BatchCache, bB: number): BatchCache {
  const L = Math.max(a.L, b.L);
  const out = allocate(a, aB + bB, L);
  copyRows(a, aB, [...Array(aB).keys()], out, 0, 0);
  copyRows(b, bB, [...Array(bB).keys()], out, aB, 0);
  return finalize(a, aB + bB, out);
}

/** Keep some rows, and drop leading columns that no kept row can see any more. */
export function selectRows(c: BatchCache, B: number, keep: number[]): BatchCache {
  let trim = c.L;
  for (const b of keep) {
    let first = 0;
    while (first < c.L && c.mask[b * c.L + first] === 0n) first++;
    trim = Math.min(trim, first);
  }
  if (trim === c.L) trim = 0;
  const out = allocate(c, keep.length, c.L - trim);
  copyRows(c, B, keep, out, 0, trim);
  return finalize(c, keep.length, out);
}
