// Pieces shared by the decoder architectures: the parameter source, linear layers, attention with a
// KV cache and grouped-query heads, and the additive attention mask.
import type { DType, Tensor } from '../onnx/graph.ts';
import {
  add, compare, concat, dimOf, gemm, logical, matmul, mul, range, reshape, reshapeDyn, shapeTensor, slice, softmax,
  toScalar, transpose, transposeLast2, unsqueeze, where,
} from '../onnx/ops.ts';

/** Where the weights come from: initializers when serving, graph inputs when training. Names are HF's, without prefix. */
export interface ParamSource {
  readonly dtype: DType;
  has(name: string): boolean;
  get(name: string): Tensor;
  /**
   * A 2-D weight transposed once at load, when the source can (initializers). GPT-2's Conv1D
   * weights are stored [in, out]; as [out, in] a decode step's GEMV reads them about twice as fast.
   */
  getTransposed?(name: string): Tensor;
}

/**
 * How a weight starts, as HF's `_init_weights` does it: normal draws for matrices and embeddings,
 * ones for norm gains, zeros for biases.
 */
export type WeightInit = { kind: 'normal'; std: number } | { kind: 'ones' } | { kind: 'zeros' };

/**
 * One weight an architecture declares: its HF name (without the `transformer.` / `model.` prefix),
 * its shape under the config, and its initialisation. The declaration is the single list: the
 * loader checks files against it, graphs can read only what it names, random models are drawn from it.
 */
export interface WeightDecl {
  name: string;
  shape: number[];
  init: WeightInit;
}

export const normalInit = (std: number): WeightInit => ({ kind: 'normal', std });
export const ONES: WeightInit = { kind: 'ones' };
export const ZEROS: WeightInit = { kind: 'zeros' };

/** HF's default initializer_range, the std of every normal init unless the config says otherwise. */
export const DEFAULT_INITIALIZER_RANGE = 0.02;

/** Runtime sizes shared by every layer: B rows, N new slots (prefix + tokens), T = B·N. */
export interface Dims {
  B: Tensor;
  N: Tensor;
}

export interface KvPair {
  k: Tensor;
  v: Tensor;
}

export interface DecoderInputs {
  /** [T, H]: the prefix rows then the token embeddings of each batch row, flattened. */
  embeds: Tensor;
  /** [B, N] int64 position of every slot. */
  positionIds: Tensor;
  /** [B, 1, group·N, L] additive mask (0 or a large negative number); see attentionBias. */
  bias: Tensor;
  /** Past keys and values per layer, [B, kvHeads, Lpast, headDim]; absent when there is no cache. */
  past: KvPair[] | null;
  dims: Dims;
}

export interface DecoderOutputs {
  /** [T, H] after the final norm. */
  hidden: Tensor;
  /** Keys (position-encoded) and values of the N new slots per layer, [B, kvHeads, N, headDim]. */
  fresh: KvPair[];
}

/** y = x·Wᵀ + b for an nn.Linear weight [out, in], or x·W + b for a GPT-2 Conv1D weight [in, out]. */
export function linear(x: Tensor, w: Tensor, b: Tensor | null, layout: 'out_in' | 'in_out'): Tensor {
  // The bias rides in Gemm's C input: one kernel instead of a product and a broadcast add.
  return gemm(x, w, { transB: layout === 'out_in', ...(b ? { c: b } : {}) });
}

export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
}

/**
 * Scaled dot-product attention over flattened projections q [T, heads·hd], k and v [T, kvHeads·hd].
 * Query heads are grouped per KV head as [B, kvHeads, group, N, hd] (the layout `rotate` sees) and
 * then stacked as the rows of one product per KV head, [B, kvHeads, group·N, hd]: grouped-query
 * attention then shares each key and value without copying them (HF's repeat_kv gives the same
 * result), and every product is a plain 4-D batched matmul. Against broadcasting over a group axis,
 * that is `group` times fewer and larger products, and faster in onnxruntime even at group 1.
 * `rotate` applies position information to q [B,kv,g,N,hd] and k [B,kv,N,hd] (RoPE), or nothing.
 * `bias` is [B, 1, group·N, L], rows in the same order (see attentionBias).
 *
 * With a cache, the past keys and values are only read: scores against the past and against the new
 * slots are computed apart and joined, so the cache is never concatenated (a full copy per layer and
 * step). Only the new keys and values leave the graph; the caller appends them to its cache.
 */
export function attention(
  q2: Tensor, k2: Tensor, v2: Tensor, s: AttentionShape, dims: Dims, bias: Tensor, past: KvPair | null,
  rotate: ((q: Tensor, k: Tensor) => [Tensor, Tensor]) | null,
): { out: Tensor; fresh: KvPair } {
  const group = s.heads / s.kvHeads;
  const g = q2.g;
  const [q5shape, k4shape] = g.noGrad(() => [
    shapeTensor([dims.B, dims.N, [s.kvHeads, group, s.headDim]]),
    shapeTensor([dims.B, dims.N, [s.kvHeads, s.headDim]]),
  ]);
  let q = transpose(reshapeDyn(q2, q5shape!, ['B', 'N', s.kvHeads, group, s.headDim]), [0, 2, 3, 1, 4]);
  let k = transpose(reshapeDyn(k2, k4shape!, ['B', 'N', s.kvHeads, s.headDim]), [0, 2, 1, 3]);
  const v = transpose(reshapeDyn(v2, k4shape!, ['B', 'N', s.kvHeads, s.headDim]), [0, 2, 1, 3]);
  if (rotate) [q, k] = rotate(q, k);
  const qs = reshape(mul(q, 1 / Math.sqrt(s.headDim)), [0, 0, -1, s.headDim]); // [B, kv, g·N, hd]
  const scoresNew = matmul(qs, transposeLast2(k)); // [B, kv, g·N, N]
  let ctx: Tensor;
  if (past) {
    const scoresPast = matmul(qs, transposeLast2(past.k)); // [B, kv, g·N, Lpast]
    const probs = softmax(add(concat([scoresPast, scoresNew], -1), bias), -1);
    const lpast = g.noGrad(() => dimOf(past.k, 2));
    const total = g.noGrad(() => dimOf(probs, -1));
    const pPast = slice(probs, -1, 0, lpast, 'Lpast');
    const pNew = slice(probs, -1, lpast, total, 'N');
    ctx = add(matmul(pPast, past.v), matmul(pNew, v));
  } else {
    ctx = matmul(softmax(add(scoresNew, bias), -1), v); // [B, kv, g·N, hd]
  }
  const ctx5 = reshape(ctx, [0, 0, group, -1, s.headDim]); // [B, kv, g, N, hd]
  const out = reshape(transpose(ctx5, [0, 3, 1, 2, 4]), [-1, s.heads * s.headDim]);
  return { out, fresh: { k, v } };
}

/**
 * The additive mask for N new slots against L = Lpast + N keys: slot j may see key k when k ≤ Lpast + j
 * (causal by slot order) and attention_mask[b, k] = 1. Masked scores get -1e9 rather than -inf so a
 * padding row that sees nothing stays finite. Shaped [B, 1, group·N, L] for attention's stacked query
 * heads: the N slot rows repeat once per query head of a KV head.
 */
export function attentionBias(attentionMask: Tensor, dims: Dims, dtype: DType, group: number): Tensor {
  const g = attentionMask.g;
  return g.noGrad(() => {
    const L = toScalar(dimOf(attentionMask, 1));
    const N = toScalar(dims.N);
    const lpast = g.emit('Sub', [L, N], {}, [{ dtype: 'int64', shape: [] }])[0]!;
    const zero = g.scalar(0, 'int64');
    const keys = range(zero, L, 'L');
    const slots = range(lpast, L, 'N');
    const queries = group > 1 ? concat(Array.from({ length: group }, () => slots), 0) : slots; // [group·N]
    const causal = compare('LessOrEqual', unsqueeze(keys, [0]), unsqueeze(queries, [1])); // [group·N, L]
    const valid = compare('Equal', unsqueeze(attentionMask, [1]), g.scalar(1, 'int64')); // [B, 1, L]
    const allowed = logical('And', unsqueeze(causal, [0]), valid); // [B, group·N, L]
    return unsqueeze(where(allowed, g.scalar(0, dtype), g.scalar(-1e9, dtype)), [1]);
  });
}

/** HF's rotate_half: cat(-x2, x1) over the last axis. */
export function rotateHalf(x: Tensor, headDim: number): Tensor {
  const half = headDim / 2;
  return concat([mul(slice(x, -1, half, headDim), -1), slice(x, -1, 0, half)], -1);
}

