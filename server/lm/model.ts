// One model definition, three graphs: serving (prefill and decode with a KV cache), scoring
// (response log-probs and their gradient w.r.t. the soft-prompt prefix) and training (loss and
// gradients w.r.t. every weight). Every graph takes a per-row prefix [B, P, H] placed before the
// tokens exactly as HF's inputs_embeds would be.
import type { ModelConfig } from './model-config.ts';
import { Graph, type DType, type Tensor, tensorProto, typedArrayFor } from './onnx/graph.ts';
import {
  concat, dimOf, div, gatherElements, gemm, logSoftmax, mul, neg, reduceSum, reshape, reshapeDyn, shapeTensor, unsqueeze,
} from './onnx/ops.ts';
import { gradients } from './onnx/autodiff.ts';
import { type DecoderInputs, type DecoderOutputs, type Dims, type KvPair, type ParamSource, type WeightDecl, attentionBias } from './arch/common.ts';
import { gpt2 } from './arch/gpt2.ts';
import { llama } from './arch/llama.ts';

export interface Architecture {
  embedTokens(p: ParamSource, ids: Tensor): Tensor;
  addPositions?(p: ParamSource, embeds: Tensor, positionIds: Tensor): Tensor;
  lmHeadWeight(cfg: ModelConfig, p: ParamSource): Tensor;
  decoder(cfg: ModelConfig, p: ParamSource, x: DecoderInputs): DecoderOutputs;
  /** Every weight the architecture reads under `cfg`, each once, in checkpoint order (see WeightDecl). */
  weights(cfg: ModelConfig, initializerRange?: number): WeightDecl[];
  weightPrefix: string;
}

export function architectureOf(cfg: ModelConfig): Architecture {
  return cfg.arch === 'gpt2' ? gpt2 : llama;
}

/** Name → shape of every declared weight (HF names without prefix), in checkpoint order. */
export function weightShapes(cfg: ModelConfig): Map<string, number[]> {
  return new Map(architectureOf(cfg).weights(cfg).map((w) => [w.name, w.shape]));
}

/** Names of the graph inputs and outputs, shared with the runtime. */
export const IO = {
  inputIds: 'input_ids',
  prefix: 'prefix_embeds',
  positionIds: 'position_ids',
  attentionMask: 'attention_mask',
  logitsIndex: 'logits_index',
  targets: 'targets',
  targetMask: 'target_mask',
  pastKey: (i: number) => `past_key.${i}`,
  pastValue: (i: number) => `past_value.${i}`,
  newKey: (i: number) => `new_key.${i}`,
  newValue: (i: number) => `new_value.${i}`,
  logits: 'logits',
  greedyIds: 'greedy_ids',
  logp: 'logp',
  gradPrefix: 'grad_prefix',
  loss: 'loss',
  tokenCount: 'token_count',
  gradParam: (name: string) => `grad.${name}`,
  param: (name: string) => `param.${name}`,
} as const;

/** Weights as initializers (serving, scoring) from a lookup of float32 arrays. */
export function initializerParams(g: Graph, dtype: DType, shapes: Map<string, number[]>, data: (name: string) => Float32Array): ParamSource {
  const cache = new Map<string, Tensor>();
  return {
    dtype,
    has: (name) => shapes.has(name),
    get(name) {
      const hit = cache.get(name);
      if (hit) return hit;
      const shape = shapes.get(name);
      if (!shape) throw new Error(`the architecture asked for an unknown weight ${name}`);
      // Read when the graph is emitted, not now (see Initializer.data).
      const t = g.initializer(name, dtype, shape, () => {
        const f32 = data(name);
        return dtype === 'float64' ? Float64Array.from(f32) : f32;
      });
      cache.set(name, t);
      return t;
    },
    getTransposed(name) {
      const key = `${name}^T`;
      const hit = cache.get(key);
      if (hit) return hit;
      const shape = shapes.get(name);
      if (!shape || shape.length !== 2) throw new Error(`cannot transpose weight ${name}`);
      const [r, c] = shape as [number, number];
      const t = g.initializer(`${name}.T`, dtype, [c, r], () => {
        const src = data(name);
        const out = dtype === 'float64' ? new Float64Array(r * c) : new Float32Array(r * c);
        for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = src[i * c + j]!;
        return out;
      });
      cache.set(key, t);
      return t;
    },
  };
}

/** Weights as graph inputs named `param.<name>` (training). */
export function inputParams(g: Graph, dtype: DType, shapes: Map<string, number[]>): ParamSource & { all(): Map<string, Tensor> } {
  const made = new Map<string, Tensor>();
  return {
    dtype,
    has: (name) => shapes.has(name),
    get(name) {
      const hit = made.get(name);
      if (hit) return hit;
      const shape = shapes.get(name);
      if (!shape) throw new Error(`the architecture asked for an unknown weight ${name}`);
      const t = g.input(IO.param(name), dtype, shape);
      made.set(name, t);
      return t;
    },
    all: () => made,
  };
}

interface Trunk {
  hidden: Tensor; // [T, H]
  fresh: KvPair[];
  dims: Dims;
  ids: Tensor;
  prefix: Tensor;
}

/**
 * The common trunk: embeddings (prefix rows then tokens), positions, mask, decoder layers.
 * Slot layout per row: [P prefix slots][S token slots]; padding is expressed by the attention mask.
 */
function trunk(g: Graph, cfg: ModelConfig, arch: Architecture, p: ParamSource, withCache: boolean): Trunk {
  const ids = g.input(IO.inputIds, 'int64', ['B', 'S']);
  const prefix = g.input(IO.prefix, p.dtype, ['B', 'P', cfg.hidden]);
  const positionIds = g.input(IO.positionIds, 'int64', ['B', 'N']);
  const attentionMask = g.input(IO.attentionMask, 'int64', ['B', 'L']);
  const past = withCache
    ? Array.from({ length: cfg.layers }, (_, i) => ({
        k: g.input(IO.pastKey(i), p.dtype, ['B', cfg.kvHeads, 'Lpast', cfg.headDim]),
        v: g.input(IO.pastValue(i), p.dtype, ['B', cfg.kvHeads, 'Lpast', cfg.headDim]),
      }))
    : null;
  const dims: Dims = g.noGrad(() => ({ B: dimOf(positionIds, 0), N: dimOf(positionIds, 1) }));
  let embeds = concat([prefix, arch.embedTokens(p, ids)], 1); // [B, N, H]
  if (arch.addPositions) embeds = arch.addPositions(p, embeds, positionIds);
  const bias = attentionBias(attentionMask, dims, p.dtype, cfg.heads / cfg.kvHeads);
  const out = arch.decoder(cfg, p, { embeds: reshape(embeds, [-1, cfg.hidden]), positionIds, bias, past, dims });
  return { hidden: out.hidden, fresh: out.fresh, dims, ids, prefix };
}

/**
 * Serving graph: prefill and decode in one. Inputs: input_ids [B,S], prefix_embeds [B,P,H],
 * position_ids [B,N] for N = P+S new slots, attention_mask [B, Lpast+N], the past keys/values
 * [B, kvHeads, Lpast, hd] (read only: the caller owns the cache), logits_index [B,K]. Outputs: logits
 * at logits_index, flat [B·K, V], the greedy ids [B, K] and the new slots' keys and values, which the caller appends to its cache.
 */
export function buildServeGraph(cfg: ModelConfig, params: (g: Graph) => ParamSource): Graph {
  const g = new Graph('serve');
  const p = params(g);
  const arch = architectureOf(cfg);
  const t = trunk(g, cfg, arch, p, true);
  const logitsIndex = g.input(IO.logitsIndex, 'int64', ['B', 'K']);
  // Flat row of (b, k) in the [T, H] hidden states: b·N + logits_index[b, k].
  const rows = g.noGrad(() => {
    const zero = g.scalar(0, 'int64');
    const B = g.emit('Squeeze', [t.dims.B, g.ints([0])], {}, [{ dtype: 'int64', shape: [] }])[0]!;
    const base = g.emit('Range', [zero, B, g.scalar(1, 'int64')], {}, [{ dtype: 'int64', shape: ['B'] }])[0]!;
    const offs = g.emit('Mul', [unsqueeze(base, [1]), t.dims.N], {}, [{ dtype: 'int64', shape: ['B', 1] }])[0]!;
    return g.emit('Add', [offs, logitsIndex], {}, [{ dtype: 'int64', shape: ['B', 'K'] }])[0]!;
  });
  const picked = g.emit('Gather', [t.hidden, rows], { axis: 0 }, [{ dtype: p.dtype, shape: ['B', 'K', cfg.hidden] }])[0]!;
  const flat = reshape(picked, [-1, cfg.hidden]);
  const logits2 = gemm(flat, arch.lmHeadWeight(cfg, p), { transB: true });
  // Flat [B·K, V], row b·K + k: the product's own buffer. A Reshape to [B, K, V] would copy it on
  // every step (an output cannot alias an intermediate), even on steps that do not fetch it.
  g.output(logits2, IO.logits);
  // The greedy token of every picked position (first maximum on ties, as the sampler's argmax). A
  // step whose rows are all greedy fetches these instead of the logits: copying [B, V] floats out of
  // onnxruntime and scanning them in JavaScript costs more than the product that makes them.
  g.noGrad(() => {
    const best = g.emit('ArgMax', [logits2], { axis: 1, keepdims: 0, select_last_index: 0 }, [{ dtype: 'int64', shape: ['BK'] }])[0]!;
    const idShape = shapeTensor([dimOf(logitsIndex, 0), dimOf(logitsIndex, 1)]);
    g.output(reshapeDyn(best, idShape, ['B', 'K']), IO.greedyIds);
  });
  t.fresh.forEach((kv, i) => {
    g.output(kv.k, IO.newKey(i));
    g.output(kv.v, IO.newValue(i));
  });
  return g;
}

/**
 * Σ over slots of target_mask · log p(targets | slot): every slot predicts the token of the next slot,
 * so one run gives response log-probs for rows with any prefix length and any prompt/response split.
 */
function slotLogProbs(g: Graph, cfg: ModelConfig, arch: Architecture, p: ParamSource, t: Trunk): { logp: Tensor; targetMask: Tensor } {
  const targets = g.input(IO.targets, 'int64', ['B', 'N']);
  const targetMask = g.input(IO.targetMask, p.dtype, ['B', 'N']);
  const logits = gemm(t.hidden, arch.lmHeadWeight(cfg, p), { transB: true }); // [T, V]
  const lp = logSoftmax(logits, -1);
  const tflat = g.noGrad(() => reshape(targets, [-1, 1]));
  const picked = gatherElements(lp, tflat, 1); // [T, 1]
  const perSlot = mul(reshapeDyn(picked, g.noGrad(() => shapeTensor([t.dims.B, t.dims.N]))!, ['B', 'N']), targetMask);
  return { logp: reduceSum(perSlot, [1], false), targetMask };
}

/** Scoring graph: logp [B] per row, and (optionally) its gradient w.r.t. prefix_embeds. */
export function buildScoreGraph(cfg: ModelConfig, params: (g: Graph) => ParamSource, opts: { gradPrefix: boolean }): Graph {
  const g = new Graph('score');
  const p = params(g);
  const arch = architectureOf(cfg);
  const t = trunk(g, cfg, arch, p, false);
  const { logp } = slotLogProbs(g, cfg, arch, p, t);
  g.output(logp, IO.logp);
  if (opts.gradPrefix) {
    const seed = g.noGrad(() => g.emit('ConstantOfShape', [dimOf(logp, 0)], { value: { tensor: onesTensor(p.dtype) } }, [{ dtype: p.dtype, shape: ['B'] }])[0]!);
    const [gp] = gradients([{ y: logp, seed }], [t.prefix]);
    g.output(gp!, IO.gradPrefix);
  }
  return g;
}

/**
 * Training graph: mean next-token cross-entropy over target_mask, and its gradient w.r.t. every
 * weight (fed as inputs `param.<name>`), so an optimizer outside the graph can step them.
 */
export function buildTrainGraph(cfg: ModelConfig, dtype: DType = 'float32', opts: { gradients?: boolean } = {}): { graph: Graph; paramNames: string[] } {
  const g = new Graph('train');
  const arch = architectureOf(cfg);
  const p = inputParams(g, dtype, weightShapes(cfg));
  const t = trunk(g, cfg, arch, p, false);
  const { logp, targetMask } = slotLogProbs(g, cfg, arch, p, t);
  const count = g.noGrad(() => reduceSum(reshape(targetMask, [-1]), [0], false));
  const loss = div(neg(reduceSum(logp, [0], false)), count);
  g.output(loss, IO.loss);
  g.output(count, IO.tokenCount);
  const names = [...p.all().keys()];
  if (opts.gradients === false) return { graph: g, paramNames: names };
  const grads = gradients([{ y: loss, seed: g.scalar(1, dtype) }], names.map((n) => p.all().get(n)!));
  grads.forEach((gt, i) => g.output(gt, IO.gradParam(names[i]!)));
  return { graph: g, paramNames: names };
}

function onesTensor(dtype: DType): ReturnType<typeof tensorProto> {
  return tensorProto('value', dtype, [1], typedArrayFor(dtype, [1]));
}
