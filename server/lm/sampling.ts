// Choosing the next token from logits, in the order of Hugging Face's generate():
// repetition penalty → temperature → top-k → top-p → draw from a seeded PRNG owned by the sampler.
//
// It runs once per token per sequence over a ~50k vocabulary, so it never sorts the vocabulary:
// top-k and top-p are both radix selections over the bits of the floats (three histogram passes
// over ever fewer entries). Ties are broken toward the lower token id everywhere, so a given seed
// and logits sequence always give the same tokens.
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';
import { LmError } from './errors.ts';

export interface SamplingParams {
  /** Softmax temperature; 0 means greedy (argmax). */
  temperature: number;
  /** Keep only the k most likely tokens; 0 turns it off. */
  topK: number;
  /** Keep the smallest set of most likely tokens whose probability reaches topP; 1 turns it off. */
  topP: number;
  /** HF's repetition penalty on tokens already in the context; 1 turns it off. */
  repetitionPenalty: number;
  /** Seed of the sampler's PRNG (uint32). */
  seed: number;
}

export const SAMPLING_LIMITS = {
  temperature: { min: 0, max: 2 },
  topK: { min: 0, max: 1_000_000 },
  topP: { min: 0, max: 1 },
  repetitionPenalty: { min: 0, max: 10 },
  seed: { min: 0, max: 0xffff_ffff },
} as const;

const bounded = (field: keyof typeof SAMPLING_LIMITS, what: string) => {
  const { min, max } = SAMPLING_LIMITS[field];
  return z.number({ error: `${field} must be a finite number` }).min(min, `${field} must be ${what}`).max(max, `${field} must be ${what}`);
};

/**
 * Validates sampling input from the CLI and the server. Absent fields get defaults:
 * temperature 0.7, topK 0 (off), topP 0.95, repetitionPenalty 1 (off), and a fresh random uint32
 * seed — so two requests without a seed differ, and a reply can be reproduced by sending back
 * the seed it was generated with.
 */
export const samplingParamsSchema = z.object({
  temperature: bounded('temperature', 'between 0 (greedy) and 2').default(0.7),
  topK: bounded('topK', 'an integer between 0 (off) and 1000000')
    .int('topK must be an integer between 0 (off) and 1000000')
    .default(0),
  topP: bounded('topP', 'between 0 and 1 (1 = off)').default(0.95),
  repetitionPenalty: bounded('repetitionPenalty', 'greater than 0 and at most 10 (1 = off)')
    .gt(0, 'repetitionPenalty must be greater than 0 and at most 10 (1 = off)')
    .default(1),
  seed: bounded('seed', 'an integer between 0 and 4294967295')
    .int('seed must be an integer between 0 and 4294967295')
    .default(() => randomInt(0, 0x1_0000_0000)),
});

export type SamplingParamsInput = z.input<typeof samplingParamsSchema>;

// Compile-time check that the schema's output is exactly the documented interface.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemaMatchesInterface: Same<z.output<typeof samplingParamsSchema>, SamplingParams> = true;
void schemaMatchesInterface;

/** Validate and fill defaults; throws LmError 'bad_argument' whose message names each bad field. */
export function parseSamplingParams(input: unknown): SamplingParams {
  const r = samplingParamsSchema.safeParse(input ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  const message = issues.map((i) => (i.message.startsWith(i.path) || !i.path ? i.message : `${i.path}: ${i.message}`)).join('; ');
  throw new LmError('bad_argument', `invalid sampling parameters: ${message}`, { issues });
}

/** Relative slack on the nucleus boundary, so float rounding does not pull in one more token. */
const TOP_P_SLACK = 1e-6;

/** Up to this k, top-k keeps a heap rather than running a radix selection. */
const HEAP_TOP_K_MAX = 256;

// Radix selection levels over 32-bit keys: 12 + 12 + 8 bits.
const RADIX_LEVELS = [
  { shift: 20, mask: 0xfff },
  { shift: 8, mask: 0xfff },
  { shift: 0, mask: 0xff },
] as const;

/** The filtered, renormalised distribution the sampler draws from (see Sampler.distribution). */
export interface TokenDistribution {
  /** Token ids, most likely first (ties: lower id first). */
  ids: number[];
  /** Their probabilities, summing to 1. */
  probs: number[];
}

/**
 * xoroshiro128+ whose 128-bit state is expanded from the seed by splitmix32. Seeding pure-rand's
 * xoroshiro128plus(seed) directly leaves nearby small seeds with nearly the same first outputs
 * (the first uniform draw is ≈ 1.0 for seeds 1..101), which made every seeded generation pick
 * the same first token; splitmix spreads each seed over the whole state.
 */
export function seededGenerator(seed: number): RandomGenerator {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x9e3779b9) | 0;
    let t = a ^ (a >>> 16);
    t = Math.imul(t, 0x21f0aaad);
    t ^= t >>> 15;
    t = Math.imul(t, 0x735a2d97);
    return (t ^ (t >>> 15)) >>> 0;
  };
  const state: number[] = [next(), next(), next(), next()];
  if (!state.some((x) => x !== 0)) state[0] = 1;
  return xoroshiro128plusFromState(state);
}

/**
 * Temperature 0 is greedy, and so is its limit: a subnormal temperature (below ~5.6e-309) whose
 * reciprocal overflows to Infinity would turn every weight into NaN (0 · ∞), not into an argmax.
 */
const isGreedyTemperature = (t: number): boolean => t === 0 || !Number.isFinite(1 / t);

export class Sampler {
  readonly params: Readonly<SamplingParams>;
  private readonly rng: RandomGenerator;

  /**
   * Plain greedy: the token is the first maximum of the raw logits, which the serving graph also
   * returns (greedy_ids), so the caller may skip fetching the logits. No PRNG state is involved.
   */
  get isPlainGreedy(): boolean {
    return isGreedyTemperature(this.params.temperature) && this.params.repetitionPenalty === 1;
  }

  // Scratch buffers, sized to the vocabulary on first use and reused for every token.
  private size = 0;
  private scores = new Float32Array(0);
  private scoreBits = new Uint32Array(0); // the bits of `scores`
  private keys = new Uint32Array(0);
  private allIds = new Int32Array(0); // 0..V-1, the candidates when top-k is off
  private topIds = new Int32Array(0);
  private weights = new Float32Array(0);
  private weightBits = new Uint32Array(0);
  private maybeInNucleus = new Int32Array(0);
  private bucketList = new Int32Array(0);
  private seen = new Uint32Array(0);
  private seenEpoch = 0;
  private readonly histMass = new Float64Array(4096);
  private readonly histCount = new Int32Array(4096);

  // What prepare() kept: candidates cand[0..n) with weights[0..n). If `nucleusSize` ≥ 0, only
  // entries maybeInNucleus[0..nucleusSize) may be kept: those with weight bits > threshold, and
  // the first `ties` of those with bits == threshold. `mass` is the kept weight.
  private cand = this.allIds;
  private n = 0;
  private nucleusSize = -1;
  private threshold = 0;
  private ties = 0;
  private mass = 0;

  constructor(params: SamplingParams) {
    this.params = Object.freeze(parseSamplingParams(params));
    this.rng = seededGenerator(this.params.seed);
  }

  /**
   * Pick the next token. `logits` has one value per vocabulary entry (a subarray view is fine; it
   * is not modified); `previousIds` are the ids already in the context, for the repetition penalty.
   * Draws one number from the sampler's PRNG unless the choice is forced (greedy, a single candidate).
   */
  next(logits: Float32Array, previousIds: ArrayLike<number>): number {
    const forced = this.prepare(logits, previousIds);
    if (forced >= 0) return forced;
    const { cand, n, weights: w } = this;
    let u = uniformFloat64(this.rng) * this.mass;
    let last = -1;
    if (this.nucleusSize < 0) {
      for (let j = 0; j < n; j++) {
        const x = w[j];
        if (x === 0) continue;
        last = cand[j];
        u -= x;
        if (u < 0) return last;
      }
      return last; // only reached through rounding at the very end of the distribution
    }
    const { maybeInNucleus: maybe, nucleusSize: m, threshold, weightBits: bits } = this;
    let ties = this.ties;
    for (let t = 0; t < m; t++) {
      const j = maybe[t];
      const b = bits[j];
      if (b < threshold) continue;
      if (b === threshold) {
        if (ties === 0) continue;
        ties--;
      }
      last = cand[j];
      u -= w[j];
      if (u < 0) return last;
    }
    return last;
  }

  /**
   * The distribution `next` would draw from for these inputs, after every filter, without
   * drawing: for inspection, logprobs and tests. Zero-probability tokens are left out.
   */
  distribution(logits: Float32Array, previousIds: ArrayLike<number>): TokenDistribution {
    const forced = this.prepare(logits, previousIds);
    if (forced >= 0) return { ids: [forced], probs: [1] };
    const kept: Array<[number, number]> = [];
    const { cand, n, weights: w } = this;
    if (this.nucleusSize < 0) {
      for (let j = 0; j < n; j++) if (w[j] > 0) kept.push([cand[j], w[j]]);
    } else {
      let ties = this.ties;
      for (let t = 0; t < this.nucleusSize; t++) {
        const j = this.maybeInNucleus[t];
        const b = this.weightBits[j];
        if (b < this.threshold || (b === this.threshold && ties-- <= 0)) continue;
        kept.push([cand[j], w[j]]);
      }
    }
    kept.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    const total = kept.reduce((acc, [, x]) => acc + x, 0);
    return { ids: kept.map(([id]) => id), probs: kept.map(([, x]) => x / total) };
  }

  /** Apply every filter. Returns the token if the choice is already forced, else -1. */
  private prepare(logits: Float32Array, previousIds: ArrayLike<number>): number {
    const V = logits.length;
    if (V === 0) throw new LmError('bad_argument', 'Sampler.next: logits are empty');
    const { temperature, topK, topP, repetitionPenalty } = this.params;
    // Plain greedy needs no scratch copy: the hot path of every greedy decode step.
    if (this.isPlainGreedy) return argmax(logits, V);
    this.ensureCapacity(V);
    const s = this.scores;
    s.set(logits);
    if (repetitionPenalty !== 1) this.applyRepetitionPenalty(s, V, previousIds, repetitionPenalty);
    if (isGreedyTemperature(temperature)) return argmax(s, V);

    let cand = this.allIds;
    let n = V;
    if (topK > 0 && topK < V) {
      n = this.selectTopK(V, topK);
      cand = this.topIds;
    }

    let max = -Infinity;
    let firstMax = -1;
    for (let j = 0; j < n; j++) {
      const v = s[cand[j]];
      if (v > max) {
        max = v;
        firstMax = cand[j];
      }
    }
    if (firstMax < 0) throw new LmError('bad_argument', 'Sampler.next: logits contain no finite value');
    if (max === Infinity || n === 1) return firstMax;

    // Unnormalised softmax over the candidates: weights in [0, 1], the best one weighing exactly 1.
    const w = this.weights;
    const invT = 1 / temperature;
    let total = 0;
    for (let j = 0; j < n; j++) {
      const x = Math.fround(expNonPositive((s[cand[j]] - max) * invT));
      w[j] = x;
      total += x;
    }
    this.cand = cand;
    this.n = n;
    if (topP >= 1) {
      this.nucleusSize = -1;
      this.mass = total;
      return -1;
    }
    this.nucleusSize = listHeavy(this.weightBits, n, Math.fround((1 - topP) / n), this.maybeInNucleus);
    // Weights are non-negative floats, whose bits sort like their values: they are their own keys.
    this.radixSelect(this.weightBits, this.maybeInNucleus, this.nucleusSize, w, topP * total * (1 - TOP_P_SLACK));
    return -1;
  }

  private ensureCapacity(V: number): void {
    if (this.size === V) return;
    this.size = V;
    this.scores = new Float32Array(V);
    this.scoreBits = new Uint32Array(this.scores.buffer);
    this.keys = new Uint32Array(V);
    this.allIds = Int32Array.from({ length: V }, (_, i) => i);
    this.topIds = new Int32Array(V);
    this.weights = new Float32Array(V);
    this.weightBits = new Uint32Array(this.weights.buffer);
    this.maybeInNucleus = new Int32Array(V);
    this.bucketList = new Int32Array(V);
    this.seen = new Uint32Array(V);
    this.seenEpoch = 0;
  }

  /** HF RepetitionPenaltyLogitsProcessor: once per distinct id, logit<0 → ×p, else ÷p. */
  private applyRepetitionPenalty(s: Float32Array, V: number, ids: ArrayLike<number>, penalty: number): void {
    if (++this.seenEpoch === 0xffff_ffff) {
      this.seen.fill(0);
      this.seenEpoch = 1;
    }
    const epoch = this.seenEpoch;
    const seen = this.seen;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      // Ids outside this vocabulary (none in a well-formed context) have no logit to penalise.
      if (!(id >= 0 && id < V) || !Number.isInteger(id) || seen[id] === epoch) continue;
      seen[id] = epoch;
      const v = s[id];
      s[id] = v < 0 ? v * penalty : v / penalty;
    }
  }

  /**
   * Fill topIds[0..k) with the k best ids in increasing id order (ties at the k-th value: lowest
   * ids). Small k: a heap. Larger k: radix selection on order-preserving integer keys of the logits.
   */
  private selectTopK(V: number, k: number): number {
    const s = this.scores;
    for (let i = 0; i < V; i++) {
      const v = s[i];
      if (v !== v) s[i] = -Infinity; // NaN ranks last
      else if (v === 0) s[i] = 0; // -0 and +0 are the same logit
    }
    if (k <= HEAP_TOP_K_MAX) return this.selectTopKByHeap(V, k);
    const sBits = this.scoreBits;
    const keys = this.keys;
    for (let i = 0; i < V; i++) {
      const b = sBits[i];
      // Flip negative floats entirely, set the sign bit of positive ones: unsigned order = numeric order.
      keys[i] = b ^ ((b >> 31) | 0x8000_0000);
    }
    this.radixSelect(keys, this.allIds, V, null, k);
    const { threshold } = this;
    let ties = this.ties;
    const cand = this.topIds;
    let n = 0;
    for (let i = 0; i < V; i++) {
      const key = keys[i];
      if (key > threshold || (key === threshold && ties-- > 0)) cand[n++] = i;
    }
    return n;
  }

  /**
   * One pass keeping a min-heap of the k best ids so far: almost every id is rejected by a single
   * comparison with the root, which beats four passes of radix selection while k is small.
   */
  private selectTopKByHeap(V: number, k: number): number {
    const s = this.scores;
    const heap = this.topIds; // heap[0] is the worst kept id: lowest value, then highest id
    let size = 0;
    // `a` is worse than `b`: lower value, or equal value and higher id.
    const worse = (a: number, b: number): boolean => s[a] < s[b] || (s[a] === s[b] && a > b);
    const siftDown = (): void => {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= size) return;
        const r = l + 1;
        const c = r < size && worse(heap[r], heap[l]) ? r : l;
        if (!worse(heap[c], heap[i])) return;
        const t = heap[c];
        heap[c] = heap[i];
        heap[i] = t;
        i = c;
      }
    };
    for (let id = 0; id < V; id++) {
      if (size < k) {
        let i = size++;
        heap[i] = id;
        while (i > 0) {
          const p = (i - 1) >> 1;
          if (!worse(heap[i], heap[p])) break;
          const t = heap[p];
          heap[p] = heap[i];
          heap[i] = t;
          i = p;
        }
      } else if (s[id] > s[heap[0]]) {
        // Strictly better than the root (an equal value has a higher id, so it stays out).
        heap[0] = id;
        siftDown();
      }
    }
    heap.subarray(0, size).sort();
    return size;
  }

  /**
   * Radix selection: among entries src[0..n) (in increasing id order), the smallest set with the
   * largest keys whose total weight reaches `target` (weight 1 each when `weights` is null), ties
   * at the boundary key going to earlier entries; at least one entry. Sets `threshold` (keys above
   * it are in), `ties` (how many entries whose key equals it are in) and `mass` (the set's weight).
   * Each level histograms the current bucket's entries by the next bits of the key and walks down
   * from the top: three passes over ever fewer entries, no sort.
   */
  private radixSelect(keys: Uint32Array, src: Int32Array, n: number, weights: Float32Array | null, target: number): void {
    const hm = this.histMass;
    const hc = this.histCount;
    const list = this.bucketList;
    let above = 0; // weight strictly above the current bucket
    let prefix = 0; // key bits fixed so far
    let m = n; // entries of the current bucket: src[0..m)
    for (const { shift, mask } of RADIX_LEVELS) {
      hc.fill(0, 0, mask + 1);
      if (weights) {
        hm.fill(0, 0, mask + 1);
        for (let t = 0; t < m; t++) {
          const j = src[t];
          const b = (keys[j] >>> shift) & mask;
          hm[b] += weights[j];
          hc[b]++;
        }
      } else {
        for (let t = 0; t < m; t++) hc[(keys[src[t]] >>> shift) & mask]++;
      }
      let bucket = -1;
      let lowest = -1;
      for (let b = mask; b >= 0; b--) {
        if (hc[b] === 0) continue;
        const mb = weights ? hm[b] : hc[b];
        lowest = b;
        if (above + mb >= target) {
          bucket = b;
          break;
        }
        above += mb;
      }
      if (bucket < 0) {
        // Rounding left the target just out of reach: the whole last bucket is in.
        bucket = lowest;
        above -= weights ? hm[lowest] : hc[lowest];
      }
      prefix |= bucket << shift;
      if (hc[bucket] === m) continue; // everything is in this bucket: nothing to filter out
      let k = 0;
      for (let t = 0; t < m; t++) {
        const j = src[t];
        if (((keys[j] >>> shift) & mask) === bucket) list[k++] = j;
      }
      src = list;
      m = k;
    }
    // Every entry left has the same key, hence the same weight.
    const value = weights ? weights[src[0]] : 1;
    const need = value > 0 ? Math.ceil((target - above) / value) : 1;
    this.threshold = prefix >>> 0;
    this.ties = Math.min(m, Math.max(1, need));
    this.mass = above + this.ties * value;
  }
}

const LN2 = Math.LN2;
const E1 = LN2;
const E2 = E1 * LN2 / 2;
const E3 = E2 * LN2 / 3;
const E4 = E3 * LN2 / 4;
const E5 = E4 * LN2 / 5;
const E6 = E5 * LN2 / 6;
/** 2^-i for i = 0..64. */
const NEG_POW2 = Float64Array.from({ length: 65 }, (_, i) => 2 ** -i);

/**
 * e^x for x ≤ 0 with relative error < 2e-7 (about that of the float32 the weights are stored in),
 * about twice as fast as Math.exp, which otherwise dominates a 50k-vocabulary softmax.
 * Below e^-44 (2^-64) it returns 0: even 50k such tokens together weigh < 1e-14 of the best one.
 * NaN gives 0.
 */
function expNonPositive(x: number): number {
  const y = x * Math.LOG2E;
  if (!(y > -64)) return 0;
  const k = (0.5 - y) | 0; // round(-y), as a small integer index: y = f - k, f in (-0.5, 0.5]
  const f = y + k;
  const f2 = f * f; // Estrin's scheme: shorter dependency chains than Horner's
  const p = 1 + f * E1 + f2 * (E2 + f * E3) + f2 * f2 * (E4 + f * E5 + f2 * E6);
  return p * NEG_POW2[k];
}

/**
 * Write into `out` the indices j < n whose weight is ≥ `light` and return how many. Entries lighter
 * than (1 - topP) / n cannot be in the nucleus: together they weigh less than the (1 - topP) share
 * the nucleus leaves out, since the total weight is ≥ 1. Branch-free on the float bits, because on
 * flat distributions about half the entries pass and a branch would be mispredicted constantly.
 */
function listHeavy(bits: Uint32Array, n: number, light: number, out: Int32Array): number {
  F32[0] = light;
  const lightBits = U32[0];
  let m = 0;
  for (let j = 0; j < n; j++) {
    out[m] = j;
    m += (lightBits - 1 - bits[j]) >>> 31; // 1 iff bits[j] ≥ lightBits (both below 2^30)
  }
  return m;
}
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** Index of the largest value, first one on ties; NaN never wins. */
function argmax(s: Float32Array, V: number): number {
  let best = -1;
  let bestValue = -Infinity;
  for (let i = 0; i < V; i++) {
    if (s[i] > bestValue) {
      bestValue = s[i];
      best = i;
    }
  }
  if (best < 0) {
    // All -Infinity (or NaN): nothing is allowed. That is a caller bug, not a reason to guess.
    throw new LmError('bad_argument', 'Sampler.next: logits contain no finite value');
  }
  return best;
}
