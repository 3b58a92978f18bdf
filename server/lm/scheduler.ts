// Continuous batching: concurrent requests, each with its own soft prompt, join and leave one shared
// decode batch step by step. Joiners are prefilled together, then their KV caches are merged into the
// batch (left-padded, masked); finished rows are dropped between steps.
import * as ort from 'onnxruntime-node';
import { ENGINE_CLOSED, LmError } from './errors.ts';
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

/**
 * The batch's KV cache, owned here and fed to every step read-only: per layer, keys then values, each
 * [rowCap, kvHeads, cap, headDim], of which the first rows (one per running sequence) are in use: a
 * prefix of the buffer, so a step feeds a view of it, not a copy. Rows are right-aligned so every row's newest slot is
 * `len - 1`; slots before a row's history and the spare capacity after `len` are masked out.
 *
 * Joining and leaving touch one row, not the batch: a joiner whose history fits in `len` slots is
 * written into the next free row, and a leaver's row is overwritten by the last row. The whole cache is
 * copied only when it must change shape: a joiner longer than `len`, no free row, or no spare slot.
 */
interface BatchCache {
  cap: number;
  len: number;
  rowCap: number;
  mask: BigInt64Array; // [rowCap, cap]
  kv: Float32Array[];
}

/** Spare slots allocated past the current length, so the cache grows (and is copied) only every so often. */
const CACHE_CHUNK = 32;
/** Spare rows allocated past the current batch, so that joiners usually move in without a copy. */
const ROW_CHUNK = 8;

export interface SchedulerStats {
  active: number;
  queued: number;
  steps: number;
  generatedTokens: number;
  /** Times the batch KV cache was copied whole (growth, or a joiner that did not fit in place). */
  cacheRebuilds: number;
  /** Joiners written into free rows of the running batch without copying it. */
  joinsInPlace: number;
}

export class Scheduler {
  private readonly queue: Sequence[] = [];
  private rows: Sequence[] = [];
  private cache: BatchCache | null = null;
  private running: Promise<void> | null = null;
  private closed = false;
  private steps = 0;
  private generatedTokens = 0;
  private cacheRebuilds = 0;
  private joinsInPlace = 0;
  /** Every serving output but the logits: what an all-greedy step fetches. */
  private readonly greedyFetches: readonly string[];

  constructor(
    readonly runtime: ModelRuntime,
    readonly tokenizer: ChatTokenizer,
    readonly opts: { maxBatch: number } = { maxBatch: 32 },
  ) {
    this.greedyFetches = runtime.serve.outputNames.filter((n) => n !== IO.logits);
  }

  stats(): SchedulerStats {
    return {
      active: this.rows.length, queued: this.queue.length, steps: this.steps, generatedTokens: this.generatedTokens,
      cacheRebuilds: this.cacheRebuilds, joinsInPlace: this.joinsInPlace,
    };
  }

  submit(req: GenerationRequest): GenerationStream {
    if (this.closed) throw new LmError('bad_argument', 'the engine is shutting down', { reason: ENGINE_CLOSED });
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
        this.replaceCache(null);
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
      out = await rt.serve.run({ ...packed.feeds, ...rt.emptyPast(live.length), [IO.logitsIndex]: logitsIndex }, this.fetchesFor(live));
    } catch (e) {
      // The joiners are in neither the queue nor the batch yet: fail them here or they wait forever.
      for (const s of live) s.stream.error(e);
      return;
    }
    const N = packed.N;
    const fresh = this.freshOf(out);
    const joinerRows: RowSlots[] = live.map((_, j) => ({ kv: fresh, stride: N, row: j, start: 0, end: N, mask: packed.mask }));
    const current = this.cache;
    if (current && moveIn(current, this.rows.length, joinerRows, this.cacheGeometry())) this.joinsInPlace += joinerRows.length;
    else {
      this.cacheRebuilds++;
      const kept: RowSlots[] = current ? this.rows.map((_, b) => ({ kv: current.kv, stride: current.cap, row: b, start: 0, end: current.len, mask: current.mask })) : [];
      this.replaceCache(assemble([...kept, ...joinerRows], this.cacheGeometry(), this.rowCapacityFor(kept.length + joinerRows.length), this.spareSlotsFor([...this.rows, ...live])));
    }
    this.rows.push(...live);
    this.steps++;
    this.consumeLogits(out, live);
  }

  /**
   * Slots to allocate past the current length: CACHE_CHUNK, or fewer when no row can use that many
   * (each row appends at most one slot per token it may still generate). Every spare slot is masked
   * but still costs attention work on each step, and every growth copies the whole cache.
   */
  private spareSlotsFor(rows: readonly Sequence[]): number {
    const most = Math.max(1, ...rows.map((s) => s.req.maxNewTokens - s.generated.length));
    return Math.min(CACHE_CHUNK, most);
  }

  /** The only way the batch cache changes hands: the buffers of the one it replaces go back to the pool. */
  private replaceCache(next: BatchCache | null): void {
    if (this.cache) kvBuffers.give(this.cache.kv);
    this.cache = next;
  }

  private rowCapacityFor(rows: number): number {
    return Math.min(Math.max(rows, this.opts.maxBatch), rows + ROW_CHUNK);
  }

  private cacheGeometry(): { kvHeads: number; headDim: number } {
    return { kvHeads: this.runtime.config.kvHeads, headDim: this.runtime.config.headDim };
  }

  private freshOf(out: ort.InferenceSession.ReturnType): Float32Array[] {
    const kv: Float32Array[] = [];
    for (let i = 0; i < this.runtime.config.layers; i++) kv.push(out[IO.newKey(i)]!.data as Float32Array, out[IO.newValue(i)]!.data as Float32Array);
    return kv;
  }

  private async decodeStep(): Promise<void> {
    const rt = this.runtime;
    const B = this.rows.length;
    if (this.cache!.len === this.cache!.cap) {
      const c = this.cache!;
      this.cacheRebuilds++;
      this.replaceCache(assemble(this.rows.map((_, b) => ({ kv: c.kv, stride: c.cap, row: b, start: 0, end: c.len, mask: c.mask })), this.cacheGeometry(), c.rowCap, this.spareSlotsFor(this.rows)));
    }
    const c = this.cache!;
    const { kvHeads, headDim } = this.cacheGeometry();
    const L = c.cap + 1;
    const mask = new BigInt64Array(B * L);
    for (let b = 0; b < B; b++) {
      mask.set(c.mask.subarray(b * c.cap, (b + 1) * c.cap), b * L);
      mask[b * L + c.cap] = 1n;
    }
    const feeds: Record<string, ort.Tensor> = {
      [IO.inputIds]: new ort.Tensor('int64', BigInt64Array.from(this.rows.map((s) => BigInt(s.lastToken))), [B, 1]),
      [IO.prefix]: new ort.Tensor('float32', new Float32Array(0), [B, 0, rt.config.hidden]),
      [IO.positionIds]: new ort.Tensor('int64', BigInt64Array.from(this.rows.map((s) => BigInt(s.nextPosition - 1))), [B, 1]),
      [IO.attentionMask]: new ort.Tensor('int64', mask, [B, L]),
      [IO.logitsIndex]: new ort.Tensor('int64', new BigInt64Array(B), [B, 1]),
    };
    const used = B * kvHeads * c.cap * headDim;
    for (let i = 0; i < rt.config.layers; i++) {
      feeds[IO.pastKey(i)] = new ort.Tensor('float32', c.kv[2 * i]!.subarray(0, used), [B, kvHeads, c.cap, headDim]);
      feeds[IO.pastValue(i)] = new ort.Tensor('float32', c.kv[2 * i + 1]!.subarray(0, used), [B, kvHeads, c.cap, headDim]);
    }
    const rows = this.rows.slice();
    const out = await rt.serve.run(feeds, this.fetchesFor(rows));
    // Append the new slot of every row.
    const fresh = this.freshOf(out);
    for (let j = 0; j < fresh.length; j++) appendSlot(c.kv[j]!, fresh[j]!, B * kvHeads, c.cap, c.len, headDim);
    for (let b = 0; b < B; b++) c.mask[b * c.cap + c.len] = 1n;
    c.len++;
    this.steps++;
    this.consumeLogits(out, rows);
  }

  /** The outputs a step needs: the logits only when some row samples from them. */
  private fetchesFor(rows: readonly Sequence[]): readonly string[] {
    return rows.every((s) => s.sampler.isPlainGreedy) ? this.greedyFetches : this.runtime.serve.outputNames;
  }

  /** Pick the next token of each row (from the graph's greedy ids, or by sampling its logits [B, V]) and stream its text. */
  private consumeLogits(out: ort.InferenceSession.ReturnType, rows: Sequence[]): void {
    const V = this.runtime.config.vocabSize;
    const logits = out[IO.logits]?.data as Float32Array | undefined;
    const greedy = out[IO.greedyIds]!.data as BigInt64Array;
    const eos = new Set(this.tokenizer.eosTokenIds);
    rows.forEach((s, b) => {
      if (s.done) return;
      if (s.req.signal?.aborted) {
        s.done = 'abort';
        return;
      }
      const id = logits ? s.sampler.next(logits.subarray(b * V, (b + 1) * V), s.history) : Number(greedy[b]);
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
    const c = this.cache;
    // From the end, so that the row moved into a leaver's place has already been looked at.
    for (let b = this.rows.length - 1; b >= 0; b--) {
      const s = this.rows[b]!;
      if (!s.done) continue;
      this.finish(s, s.done);
      const last = this.rows.length - 1;
      if (c && b !== last) moveRow(c, last, b, this.cacheGeometry());
      this.rows[b] = this.rows[last]!;
      this.rows.pop();
    }
    if (!this.rows.length) this.replaceCache(null);
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

/**
 * Float32 buffers for batch KV caches, kept for reuse when a cache is replaced. The first write to
 * a fresh page is a page fault, and on this kind of virtual machine a fault costs ~8 µs per 4 KB
 * page: first-touching a 32-row cache of GPT-2-small (~190 MB) costs ~0.4 s, spread over the decode
 * steps that append into it. A reused buffer is already mapped. Sizes are rounded up to classes
 * √2 apart so a cache that grows by a chunk usually finds its buffers here. A reused buffer is
 * zeroed, as a fresh one is: masked slots are still read (a stale NaN would survive the additive
 * mask), and one user's keys and values have no business lingering in another's rows. Zeroing a
 * mapped buffer is a memset, far cheaper than faulting its pages in.
 */
export class KvBufferPool {
  private readonly free = new Map<number, Float32Array[]>();
  private bytes = 0;

  constructor(readonly budgetBytes: number) {}

  /** Elements of the size class that holds n: the smallest ⌈2^(k/2)⌉ at or above n (at least 1024). */
  static classOf(n: number): number {
    const size = (k: number) => Math.ceil(2 ** (k / 2));
    if (n <= 1024) return 1024;
    let k = Math.ceil(2 * Math.log2(n));
    while (size(k - 1) >= n) k--;
    while (size(k) < n) k++;
    return size(k);
  }

  take(n: number): Float32Array {
    const size = KvBufferPool.classOf(n);
    const hit = this.free.get(size)?.pop();
    if (hit) {
      this.bytes -= hit.byteLength;
      return hit.fill(0, 0, n);
    }
    return new Float32Array(size);
  }

  /** Keep buffers for reuse while the pool stays under its budget; the rest go to the GC. */
  give(buffers: readonly Float32Array[]): void {
    for (const a of buffers) {
      if (a.length !== KvBufferPool.classOf(a.length) || this.bytes + a.byteLength > this.budgetBytes) continue;
      const list = this.free.get(a.length) ?? [];
      list.push(a);
      this.free.set(a.length, list);
      this.bytes += a.byteLength;
    }
  }

  get pooledBytes(): number {
    return this.bytes;
  }
}

/** One pool per process: schedulers come and go (benchmarks make one per run), the memory stays mapped. */
const kvBuffers = new KvBufferPool(512 * 1024 ** 2);

/**
 * Writes one new slot per (row, head): `src` is [rowsHeads, D], `dst` is [rowsHeads, cap, D] and the
 * slot is `slot`. A plain loop: a subarray view per head costs more than the 64 floats it copies.
 */
function appendSlot(dst: Float32Array, src: Float32Array, rowsHeads: number, cap: number, slot: number, D: number): void {
  for (let r = 0, i = 0; r < rowsHeads; r++) {
    let o = (r * cap + slot) * D;
    for (let d = 0; d < D; d++) dst[o++] = src[i++]!;
  }
}

/** Slots [start, end) of one row of a [B, kvHeads, stride, hd] cache (per layer K, V) and its mask. */
interface RowSlots {
  kv: Float32Array[];
  stride: number;
  row: number;
  start: number;
  end: number;
  mask: BigInt64Array;
}

/**
 * A fresh cache holding the given rows, right-aligned to a common length. Leading slots that no row
 * can see are dropped, and `spare` slots (CACHE_CHUNK by default) are allocated for the steps to come.
 */
export function assemble(rows: RowSlots[], geo: { kvHeads: number; headDim: number }, rowCap = rows.length, spare = CACHE_CHUNK): BatchCache {
  const visibleFrom = rows.map(visibleStart);
  const len = Math.max(0, ...rows.map((r, i) => r.end - visibleFrom[i]!));
  const cap = len + Math.max(1, spare);
  const B = rows.length;
  const { kvHeads: H, headDim: D } = geo;
  const layers = rows[0]?.kv.length ?? 0;
  const R = Math.max(rowCap, B);
  const kv = Array.from({ length: layers }, () => kvBuffers.take(R * H * cap * D));
  const mask = new BigInt64Array(R * cap);
  rows.forEach((r, b) => {
    const from = visibleFrom[b]!;
    const n = r.end - from;
    const shift = len - n;
    mask.set(r.mask.subarray(r.row * r.stride + from, r.row * r.stride + r.end), b * cap + shift);
    for (let j = 0; j < layers; j++) {
      const src = r.kv[j]!;
      const dst = kv[j]!;
      for (let h = 0; h < H; h++) {
        const s0 = ((r.row * H + h) * r.stride + from) * D;
        dst.set(src.subarray(s0, s0 + n * D), ((b * H + h) * cap + shift) * D);
      }
    }
  });
  return { cap, len, rowCap: R, mask, kv };
}

/** Slots of a row that some query may see: from its first unmasked slot to `end`. */
function visibleStart(r: RowSlots): number {
  let s = r.start;
  while (s < r.end && r.mask[r.row * r.stride + s] === 0n) s++;
  return s;
}

/**
 * Writes joiners into the free rows of `c` (after its `used` rows) in place, right-aligned at `c.len`, when they fit: enough
 * free rows, histories no longer than `c.len`, and a spare slot for the next step. False when the
 * cache must be rebuilt instead (nothing is changed then).
 */
export function moveIn(c: BatchCache, used: number, joiners: RowSlots[], geo: { kvHeads: number; headDim: number }): boolean {
  if (used + joiners.length > c.rowCap || c.len >= c.cap) return false;
  const from = joiners.map(visibleStart);
  if (joiners.some((r, i) => r.end - from[i]! > c.len)) return false;
  const { kvHeads: H, headDim: D } = geo;
  joiners.forEach((r, i) => {
    const b = used + i;
    const n = r.end - from[i]!;
    const shift = c.len - n;
    const maskRow = c.mask.subarray(b * c.cap, (b + 1) * c.cap);
    maskRow.fill(0n);
    maskRow.set(r.mask.subarray(r.row * r.stride + from[i]!, r.row * r.stride + r.end), shift);
    // Slots before `shift` keep an earlier row's values; the mask hides them.
    for (let j = 0; j < c.kv.length; j++) {
      const src = r.kv[j]!;
      const dst = c.kv[j]!;
      for (let h = 0; h < H; h++) {
        const s0 = ((r.row * H + h) * r.stride + from[i]!) * D;
        dst.set(src.subarray(s0, s0 + n * D), ((b * H + h) * c.cap + shift) * D);
      }
    }
  });
  return true;
}

/** Copies row `from` of the cache (every layer's keys and values, and its mask) over row `to`. */
export function moveRow(c: BatchCache, from: number, to: number, geo: { kvHeads: number; headDim: number }): void {
  const span = geo.kvHeads * c.cap * geo.headDim;
  for (const a of c.kv) a.copyWithin(to * span, from * span, (from + 1) * span);
  c.mask.copyWithin(to * c.cap, from * c.cap, (from + 1) * c.cap);
}
