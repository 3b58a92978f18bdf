// An independent float64 forward for the Llama family (Llama, Qwen2, Mistral), written from the
// published architecture (Touvron et al. 2023; Hugging Face transformers' modeling_llama.py,
// modeling_qwen2.py, modeling_mistral.py and modeling_rope_utils.py), used only to check the
// engine in tests. Deliberately naive: plain loops over Float64Arrays, no engine code.
//
//   x_t   = prefix_t or embed_tokens[id]              (no absolute positions: RoPE instead)
//   layer: x += o_proj(attn(rope(q), rope(k), v))  on input_layernorm(x)
//          x += down_proj(silu(gate_proj(n)) * up_proj(n)),  n = post_attention_layernorm(x)
//   logits = norm(x) @ lm_head^T   (embed_tokens when tied)
// nn.Linear weights are stored [out, in]: y = W x + b.
import { LmError } from '../../server/lm/errors.ts';
import { loadModelConfig, type ModelConfig } from '../../server/lm/model-config.ts';
import { openWeights, type WeightSource } from '../../server/lm/safetensors.ts';
import { sumLogprob } from './gpt2.ts';

interface Linear {
  w: Float64Array; // [out, in]
  b: Float64Array | null;
  out: number;
  in: number;
}

interface LlamaLayer {
  inputNorm: Float64Array;
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  postNorm: Float64Array;
  gate: Linear;
  up: Linear;
  down: Linear;
}

export interface LlamaReference {
  config: ModelConfig;
  /** Inverse RoPE frequencies after rope scaling (length headDim/2). */
  invFreq: Float64Array;
  /** Logits for every position, prefix positions included: (P+T) × V. */
  forwardAll(ids: readonly number[], prefix?: readonly (readonly number[])[]): number[][];
}

/**
 * inv_freq_i = 1 / theta^(2i/d), i = 0..d/2-1, then the configured scaling:
 *   linear: inv_freq / factor (same as dividing positions by factor);
 *   llama3: low frequencies (wavelength > original/low_freq_factor) divided by factor, high
 *           frequencies (wavelength < original/high_freq_factor) kept, and in between a blend
 *           (1-s)·inv/factor + s·inv with s = (original/wavelength - low) / (high - low).
 */
export function ropeInverseFrequencies(config: ModelConfig): Float64Array {
  const d = config.headDim;
  const inv = new Float64Array(d / 2);
  for (let i = 0; i < d / 2; i++) inv[i] = 1 / config.ropeTheta ** ((2 * i) / d);
  const sc = config.ropeScaling;
  if (sc === null) return inv;
  if (sc.type === 'linear') return inv.map((f) => f / sc.factor);
  const lowFreqWavelen = sc.originalMaxPositions / sc.lowFreqFactor;
  const highFreqWavelen = sc.originalMaxPositions / sc.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) return f;
    if (wavelen > lowFreqWavelen) return f / sc.factor;
    const smooth = (sc.originalMaxPositions / wavelen - sc.lowFreqFactor) / (sc.highFreqFactor - sc.lowFreqFactor);
    return (1 - smooth) * (f / sc.factor) + smooth * f;
  });
}

function find(w: WeightSource, name: string): string | undefined {
  return [`model.${name}`, name].find((n) => w.has(n));
}

function tensor(w: WeightSource, name: string, shape: number[]): Float64Array {
  const full = find(w, name);
  if (!full) throw new LmError('tensor_missing', `${w.path}: reference llama needs tensor '${name}'`, { tensor: name });
  const info = w.info(full);
  if (info.shape.join(',') !== shape.join(',')) {
    throw new LmError('file_corrupt', `${w.path}: tensor '${full}' has shape [${info.shape}] but [${shape}] was expected`, { tensor: full });
  }
  return Float64Array.from(w.getFloat32(full));
}

function linear(w: WeightSource, name: string, out: number, inp: number, bias: boolean): Linear {
  return {
    w: tensor(w, `${name}.weight`, [out, inp]),
    b: bias ? tensor(w, `${name}.bias`, [out]) : null,
    out,
    in: inp,
  };
}

/** x [T×in] → [T×out] with y_t = W x_t + b. */
function apply(l: Linear, x: Float64Array, T: number): Float64Array {
  const y = new Float64Array(T * l.out);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < l.out; o++) {
      let s = l.b ? l.b[o]! : 0;
      const wr = o * l.in;
      const xr = t * l.in;
      for (let i = 0; i < l.in; i++) s += l.w[wr + i]! * x[xr + i]!;
      y[t * l.out + o] = s;
    }
  }
  return y;
}

function rmsNorm(x: Float64Array, T: number, H: number, weight: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    let ms = 0;
    for (let i = 0; i < H; i++) ms += x[t * H + i]! ** 2;
    const inv = 1 / Math.sqrt(ms / H + eps);
    for (let i = 0; i < H; i++) y[t * H + i] = weight[i]! * (x[t * H + i]! * inv);
  }
  return y;
}

const silu = (x: number): number => x / (1 + Math.exp(-x));

/**
 * Rotates each head of `x` ([T × nHeads·D]) in place: with emb = cat(freqs, freqs),
 * x' = x·cos(emb) + rotate_half(x)·sin(emb), rotate_half(x) = cat(-x[D/2:], x[:D/2]).
 */
function applyRope(x: Float64Array, T: number, nHeads: number, D: number, invFreq: Float64Array): void {
  const half = D / 2;
  const rotated = new Float64Array(D);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < nHeads; h++) {
      const base = (t * nHeads + h) * D;
      for (let d = 0; d < D; d++) rotated[d] = d < half ? -x[base + d + half]! : x[base + d - half]!;
      for (let d = 0; d < D; d++) {
        const angle = t * invFreq[d % half]!;
        x[base + d] = x[base + d]! * Math.cos(angle) + rotated[d]! * Math.sin(angle);
      }
    }
  }
}

export function loadLlamaReference(dir: string): LlamaReference {
  const config = loadModelConfig(dir);
  if (config.arch !== 'llama') {
    throw new LmError('bad_argument', `${dir}: reference llama forward given a '${config.modelType}' model`, { dir });
  }
  const { vocabSize: V, hidden: H, intermediate: I, heads, kvHeads, headDim: D, normEps: eps } = config;
  const w = openWeights(dir);
  let embed: Float64Array;
  let lmHead: Float64Array;
  let finalNorm: Float64Array;
  const layers: LlamaLayer[] = [];
  try {
    embed = tensor(w, 'embed_tokens.weight', [V, H]);
    for (let l = 0; l < config.layers; l++) {
      const p = `layers.${l}.`;
      layers.push({
        inputNorm: tensor(w, `${p}input_layernorm.weight`, [H]),
        q: linear(w, `${p}self_attn.q_proj`, heads * D, H, config.qkvBias),
        k: linear(w, `${p}self_attn.k_proj`, kvHeads * D, H, config.qkvBias),
        v: linear(w, `${p}self_attn.v_proj`, kvHeads * D, H, config.qkvBias),
        o: linear(w, `${p}self_attn.o_proj`, H, heads * D, config.oBias),
        postNorm: tensor(w, `${p}post_attention_layernorm.weight`, [H]),
        gate: linear(w, `${p}mlp.gate_proj`, I, H, config.mlpBias),
        up: linear(w, `${p}mlp.up_proj`, I, H, config.mlpBias),
        down: linear(w, `${p}mlp.down_proj`, H, I, config.mlpBias),
      });
    }
    finalNorm = tensor(w, 'norm.weight', [H]);
    if (config.tieWordEmbeddings) lmHead = embed;
    else {
      if (!w.has('lm_head.weight')) throw new LmError('tensor_missing', `${w.path}: untied model lacks 'lm_head.weight'`, {});
      lmHead = Float64Array.from(w.getFloat32('lm_head.weight'));
      if (lmHead.length !== V * H) throw new LmError('file_corrupt', `${w.path}: lm_head.weight must be [${V}, ${H}]`, {});
    }
  } finally {
    w.close();
  }
  const invFreq = ropeInverseFrequencies(config);
  const group = heads / kvHeads; // HF repeat_kv: kv head j serves query heads j*group .. j*group+group-1
  const window = config.slidingWindow;

  function forwardAll(ids: readonly number[], prefix: readonly (readonly number[])[] = []): number[][] {
    const P = prefix.length;
    const T = P + ids.length;
    if (T === 0) throw new LmError('bad_argument', 'reference llama: ids and prefix are both empty', {});
    const x = new Float64Array(T * H);
    for (let t = 0; t < T; t++) {
      let src: ArrayLike<number>;
      if (t < P) {
        src = prefix[t]!;
        if (src.length !== H) throw new LmError('bad_argument', `reference llama: prefix row ${t} has ${src.length} values, hidden is ${H}`, {});
      } else {
        const id = ids[t - P]!;
        if (!Number.isInteger(id) || id < 0 || id >= V) throw new LmError('bad_argument', `reference llama: token id ${id} outside [0, ${V})`, {});
        src = embed.subarray(id * H, (id + 1) * H);
      }
      for (let i = 0; i < H; i++) x[t * H + i] = src[i]!;
    }

    const scale = 1 / Math.sqrt(D);
    const scores = new Float64Array(T);
    for (const layer of layers) {
      const n1 = rmsNorm(x, T, H, layer.inputNorm, eps);
      const q = apply(layer.q, n1, T); // [T, heads, D]
      const k = apply(layer.k, n1, T); // [T, kvHeads, D]
      const v = apply(layer.v, n1, T);
      applyRope(q, T, heads, D, invFreq);
      applyRope(k, T, kvHeads, D, invFreq);
      const attn = new Float64Array(T * heads * D);
      for (let h = 0; h < heads; h++) {
        const kvh = Math.floor(h / group);
        for (let i = 0; i < T; i++) {
          // causal; with a sliding window W, position i sees j when i - j < W
          const first = window === null ? 0 : Math.max(0, i - window + 1);
          let max = -Infinity;
          for (let j = first; j <= i; j++) {
            let s = 0;
            for (let d = 0; d < D; d++) s += q[(i * heads + h) * D + d]! * k[(j * kvHeads + kvh) * D + d]!;
            scores[j] = s * scale;
            if (scores[j]! > max) max = scores[j]!;
          }
          let sum = 0;
          for (let j = first; j <= i; j++) {
            scores[j] = Math.exp(scores[j]! - max);
            sum += scores[j]!;
          }
          for (let j = first; j <= i; j++) {
            const p = scores[j]! / sum;
            for (let d = 0; d < D; d++) attn[(i * heads + h) * D + d]! += p * v[(j * kvHeads + kvh) * D + d]!;
          }
        }
      }
      const attnOut = apply(layer.o, attn, T);
      for (let k2 = 0; k2 < x.length; k2++) x[k2]! += attnOut[k2]!;

      const n2 = rmsNorm(x, T, H, layer.postNorm, eps);
      const g = apply(layer.gate, n2, T);
      const u = apply(layer.up, n2, T);
      for (let k2 = 0; k2 < g.length; k2++) g[k2] = silu(g[k2]!) * u[k2]!;
      const mlpOut = apply(layer.down, g, T);
      for (let k2 = 0; k2 < x.length; k2++) x[k2]! += mlpOut[k2]!;
    }

    const xf = rmsNorm(x, T, H, finalNorm, eps);
    const logits: number[][] = [];
    for (let t = 0; t < T; t++) {
      const row = new Array<number>(V);
      for (let vv = 0; vv < V; vv++) {
        let s = 0;
        for (let i = 0; i < H; i++) s += xf[t * H + i]! * lmHead[vv * H + i]!;
        row[vv] = s;
      }
      logits.push(row);
    }
    return logits;
  }

  return { config, invFreq, forwardAll };
}

/** Logits for every position (prefix positions included): (P+T) × V, float64. */
export function referenceForwardAll(dir: string, ids: readonly number[], prefix?: readonly (readonly number[])[]): number[][] {
  return loadLlamaReference(dir).forwardAll(ids, prefix);
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
