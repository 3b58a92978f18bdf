// An independent float64 GPT-2 forward, written from the published architecture (Radford et al.
// 2019; Hugging Face transformers' modeling_gpt2.py), used only to check the engine in tests.
// Deliberately naive: plain loops over Float64Arrays, no batching, no cache, no engine code.
//
//   x_t   = (prefix_t or wte[id]) + wpe[t]
//   block: x += c_proj(attn(ln_1(x)));  x += mlp_c_proj(gelu_new(c_fc(ln_2(x))))
//   logits = ln_f(x) @ wte^T   (or lm_head^T when untied)
// Conv1D weights are stored [in, out]: y = x W + b.
import { LmError } from '../../server/lm/errors.ts';
import { loadModelConfig, type ModelConfig } from '../../server/lm/model-config.ts';
import { openWeights, type WeightSource } from '../../server/lm/safetensors.ts';

interface LayerNormWeights {
  w: Float64Array;
  b: Float64Array;
}

interface Gpt2Block {
  ln1: LayerNormWeights;
  attnW: Float64Array; // [H, 3H]
  attnB: Float64Array; // [3H]
  projW: Float64Array; // [H, H]
  projB: Float64Array;
  ln2: LayerNormWeights;
  fcW: Float64Array; // [H, I]
  fcB: Float64Array;
  fcProjW: Float64Array; // [I, H]
  fcProjB: Float64Array;
}

export interface Gpt2Reference {
  config: ModelConfig;
  /** Logits for every position, prefix positions included: (P+T) × V. */
  forwardAll(ids: readonly number[], prefix?: readonly (readonly number[])[]): number[][];
}

function tensor(w: WeightSource, name: string, shape: number[]): Float64Array {
  const full = [`transformer.${name}`, name].find((n) => w.has(n));
  if (!full) throw new LmError('tensor_missing', `${w.path}: reference GPT-2 needs tensor '${name}'`, { tensor: name });
  const info = w.info(full);
  if (info.shape.join(',') !== shape.join(',')) {
    throw new LmError('file_corrupt', `${w.path}: tensor '${full}' has shape [${info.shape}] but [${shape}] was expected`, { tensor: full });
  }
  return Float64Array.from(w.getFloat32(full));
}

/** x [T×n] times W [n×m] (+ b) → [T×m]. */
function conv1d(x: Float64Array, T: number, n: number, W: Float64Array, m: number, b: Float64Array): Float64Array {
  const y = new Float64Array(T * m);
  for (let t = 0; t < T; t++) {
    const yr = t * m;
    for (let j = 0; j < m; j++) y[yr + j] = b[j]!;
    for (let k = 0; k < n; k++) {
      const xv = x[t * n + k]!;
      const wr = k * m;
      for (let j = 0; j < m; j++) y[yr + j]! += xv * W[wr + j]!;
    }
  }
  return y;
}

function layerNorm(x: Float64Array, T: number, H: number, p: LayerNormWeights, eps: number): Float64Array {
  const y = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    let mean = 0;
    for (let i = 0; i < H; i++) mean += x[t * H + i]!;
    mean /= H;
    let variance = 0; // biased, as torch.nn.LayerNorm
    for (let i = 0; i < H; i++) variance += (x[t * H + i]! - mean) ** 2;
    variance /= H;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < H; i++) y[t * H + i] = (x[t * H + i]! - mean) * inv * p.w[i]! + p.b[i]!;
  }
  return y;
}

const geluNew = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

export function loadGpt2Reference(dir: string): Gpt2Reference {
  const config = loadModelConfig(dir);
  if (config.arch !== 'gpt2') {
    throw new LmError('bad_argument', `${dir}: reference gpt2 forward given a '${config.modelType}' model`, { dir });
  }
  const { vocabSize: V, hidden: H, intermediate: I, heads, headDim: D, maxPositions, normEps: eps } = config;
  const w = openWeights(dir);
  let wte: Float64Array;
  let wpe: Float64Array;
  let lmHead: Float64Array;
  const blocks: Gpt2Block[] = [];
  let lnF: LayerNormWeights;
  try {
    wte = tensor(w, 'wte.weight', [V, H]);
    wpe = tensor(w, 'wpe.weight', [maxPositions, H]);
    for (let l = 0; l < config.layers; l++) {
      const p = `h.${l}.`;
      blocks.push({
        ln1: { w: tensor(w, `${p}ln_1.weight`, [H]), b: tensor(w, `${p}ln_1.bias`, [H]) },
        attnW: tensor(w, `${p}attn.c_attn.weight`, [H, 3 * H]),
        attnB: tensor(w, `${p}attn.c_attn.bias`, [3 * H]),
        projW: tensor(w, `${p}attn.c_proj.weight`, [H, H]),
        projB: tensor(w, `${p}attn.c_proj.bias`, [H]),
        ln2: { w: tensor(w, `${p}ln_2.weight`, [H]), b: tensor(w, `${p}ln_2.bias`, [H]) },
        fcW: tensor(w, `${p}mlp.c_fc.weight`, [H, I]),
        fcB: tensor(w, `${p}mlp.c_fc.bias`, [I]),
        fcProjW: tensor(w, `${p}mlp.c_proj.weight`, [I, H]),
        fcProjB: tensor(w, `${p}mlp.c_proj.bias`, [H]),
      });
    }
    lnF = { w: tensor(w, 'ln_f.weight', [H]), b: tensor(w, 'ln_f.bias', [H]) };
    lmHead = config.tieWordEmbeddings ? wte : Float64Array.from(w.getFloat32('lm_head.weight'));
    if (lmHead.length !== V * H) throw new LmError('file_corrupt', `${w.path}: lm_head.weight must be [${V}, ${H}]`, {});
  } finally {
    w.close();
  }

  function forwardAll(ids: readonly number[], prefix: readonly (readonly number[])[] = []): number[][] {
    const P = prefix.length;
    const T = P + ids.length;
    if (T === 0) throw new LmError('bad_argument', 'reference gpt2: ids and prefix are both empty', {});
    if (T > maxPositions) throw new LmError('bad_argument', `reference gpt2: ${T} positions exceed n_positions ${maxPositions}`, {});
    const x = new Float64Array(T * H);
    for (let t = 0; t < T; t++) {
      let src: ArrayLike<number>;
      if (t < P) {
        src = prefix[t]!;
        if (src.length !== H) throw new LmError('bad_argument', `reference gpt2: prefix row ${t} has ${src.length} values, hidden is ${H}`, {});
      } else {
        const id = ids[t - P]!;
        if (!Number.isInteger(id) || id < 0 || id >= V) throw new LmError('bad_argument', `reference gpt2: token id ${id} outside [0, ${V})`, {});
        src = wte.subarray(id * H, (id + 1) * H);
      }
      for (let i = 0; i < H; i++) x[t * H + i] = src[i]! + wpe[t * H + i]!;
    }

    const scale = 1 / Math.sqrt(D);
    for (const b of blocks) {
      const a = layerNorm(x, T, H, b.ln1, eps);
      const qkv = conv1d(a, T, H, b.attnW, 3 * H, b.attnB); // per row: [q (H) | k (H) | v (H)]
      const merged = new Float64Array(T * H);
      const scores = new Float64Array(T);
      for (let h = 0; h < heads; h++) {
        const off = h * D;
        for (let i = 0; i < T; i++) {
          let max = -Infinity;
          for (let j = 0; j <= i; j++) {
            let s = 0;
            for (let d = 0; d < D; d++) s += qkv[i * 3 * H + off + d]! * qkv[j * 3 * H + H + off + d]!;
            scores[j] = s * scale;
            if (scores[j]! > max) max = scores[j]!;
          }
          let sum = 0;
          for (let j = 0; j <= i; j++) {
            scores[j] = Math.exp(scores[j]! - max);
            sum += scores[j]!;
          }
          for (let j = 0; j <= i; j++) {
            const p = scores[j]! / sum;
            for (let d = 0; d < D; d++) merged[i * H + off + d]! += p * qkv[j * 3 * H + 2 * H + off + d]!;
          }
        }
      }
      const attnOut = conv1d(merged, T, H, b.projW, H, b.projB);
      for (let k = 0; k < x.length; k++) x[k]! += attnOut[k]!;

      const m = layerNorm(x, T, H, b.ln2, eps);
      const f = conv1d(m, T, H, b.fcW, I, b.fcB);
      for (let k = 0; k < f.length; k++) f[k] = geluNew(f[k]!);
      const mlpOut = conv1d(f, T, I, b.fcProjW, H, b.fcProjB);
      for (let k = 0; k < x.length; k++) x[k]! += mlpOut[k]!;
    }

    const xf = layerNorm(x, T, H, lnF, eps);
    const logits: number[][] = [];
    for (let t = 0; t < T; t++) {
      const row = new Array<number>(V);
      for (let v = 0; v < V; v++) {
        let s = 0;
        for (let i = 0; i < H; i++) s += xf[t * H + i]! * lmHead[v * H + i]!;
        row[v] = s;
      }
      logits.push(row);
    }
    return logits;
  }

  return { config, forwardAll };
}

function logSoftmaxAt(row: readonly number[], index: number): number {
  let max = -Infinity;
  for (const v of row) if (v > max) max = v;
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return row[index]! - max - Math.log(sum);
}

/** Logits for every position (prefix positions included): (P+T) × V, float64. */
export function referenceForwardAll(dir: string, ids: readonly number[], prefix?: readonly (readonly number[])[]): number[][] {
  return loadGpt2Reference(dir).forwardAll(ids, prefix);
}

/** Logits at the token positions only: T × V. The prefix (P × H) stands in for token embeddings at positions 0..P-1. */
export function referenceLogits(dir: string, ids: readonly number[], prefix?: readonly (readonly number[])[]): number[][] {
  return referenceForwardAll(dir, ids, prefix).slice(prefix?.length ?? 0);
}

/**
 * Σ_{t=from}^{T-1} log p(ids[t] | everything before it). The prediction of ids[t] comes from
 * position P+t-1, which for t = 0 is the last prefix position; so from = 0 needs a prefix.
 */
export function referenceLogprob(dir: string, ids: readonly number[], from: number, prefix?: readonly (readonly number[])[]): number {
  return sumLogprob(referenceForwardAll(dir, ids, prefix), ids, from, prefix?.length ?? 0);
}

export function sumLogprob(all: readonly (readonly number[])[], ids: readonly number[], from: number, P: number): number {
  if (!Number.isInteger(from) || from < 0 || from > ids.length || P + from - 1 < 0) {
    throw new LmError('bad_argument', `reference logprob: 'from' (${from}) must be in [${P > 0 ? 0 : 1}, ${ids.length}]`, { from });
  }
  let total = 0;
  for (let t = from; t < ids.length; t++) total += logSoftmaxAt(all[P + t - 1]!, ids[t]!);
  return total;
}
