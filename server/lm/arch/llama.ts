// The Llama family (llama, qwen2, mistral), as in HF's modeling_llama / modeling_qwen2: RMSNorm,
// rotary position embeddings in the rotate-half convention, grouped-query attention, SiLU-gated MLP.
// nn.Linear weights are stored [out, in]; Qwen2 adds q/k/v biases.
import type { ModelConfig } from '../model-config.ts';
import type { Tensor } from '../onnx/graph.ts';
import { add, cast, concat, cos, gather, mul, rmsNorm, sigmoid, sin, unsqueeze } from '../onnx/ops.ts';
import { type DecoderInputs, type DecoderOutputs, type KvPair, type ParamSource, attention, linear, rotateHalf } from './common.ts';

/** inv_freq[i] = 1 / theta^(2i/d), adjusted for rope_scaling as HF's rope initialisers do. */
export function ropeInverseFrequencies(cfg: ModelConfig): number[] {
  const d = cfg.headDim;
  let inv = Array.from({ length: d / 2 }, (_, i) => 1 / cfg.ropeTheta ** ((2 * i) / d));
  const rs = cfg.ropeScaling;
  if (rs?.type === 'linear') inv = inv.map((f) => f / rs.factor);
  if (rs?.type === 'llama3') {
    const lowWavelen = rs.originalMaxPositions / rs.lowFreqFactor;
    const highWavelen = rs.originalMaxPositions / rs.highFreqFactor;
    inv = inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) return f / rs.factor;
      if (wavelen < highWavelen) return f;
      const smooth = (rs.originalMaxPositions / wavelen - rs.lowFreqFactor) / (rs.highFreqFactor - rs.lowFreqFactor);
      return (1 - smooth) * (f / rs.factor) + smooth * f;
    });
  }
  return inv;
}

const silu = (x: Tensor): Tensor => mul(x, sigmoid(x));

export const llama = {
  embedTokens(p: ParamSource, ids: Tensor): Tensor {
    return gather(p.get('embed_tokens.weight'), ids);
  },

  lmHeadWeight(cfg: ModelConfig, p: ParamSource): Tensor {
    return cfg.tieWordEmbeddings ? p.get('embed_tokens.weight') : p.get('lm_head.weight');
  },

  decoder(cfg: ModelConfig, p: ParamSource, x: DecoderInputs): DecoderOutputs {
    const g = x.embeds.g;
    const hd = cfg.headDim;
    const shape = { heads: cfg.heads, kvHeads: cfg.kvHeads, headDim: hd };
    // cos/sin [B, N, hd] from the slot positions; the prefix rows are rotated at their positions too.
    const [cosT, sinT] = g.noGrad(() => {
      const invFreq = g.constant(p.dtype, [hd / 2], ropeInverseFrequencies(cfg));
      const freqs = mul(unsqueeze(cast(x.positionIds, p.dtype), [2]), invFreq);
      const emb = concat([freqs, freqs], -1);
      return [cos(emb), sin(emb)];
    });
    const qCos = unsqueeze(cosT!, [1, 2]);
    const qSin = unsqueeze(sinT!, [1, 2]);
    const kCos = unsqueeze(cosT!, [1]);
    const kSin = unsqueeze(sinT!, [1]);
    const rotate = (q: Tensor, k: Tensor): [Tensor, Tensor] => [
      add(mul(q, qCos), mul(rotateHalf(q, hd), qSin)),
      add(mul(k, kCos), mul(rotateHalf(k, hd), kSin)),
    ];

    let h = x.embeds;
    const fresh: KvPair[] = [];
    for (let i = 0; i < cfg.layers; i++) {
      const w = (n: string): Tensor => p.get(`layers.${i}.${n}`);
      const bias = (n: string, on: boolean): Tensor | null => (on ? w(n) : null);
      const a = rmsNorm(h, w('input_layernorm.weight'), cfg.normEps);
      const q = linear(a, w('self_attn.q_proj.weight'), bias('self_attn.q_proj.bias', cfg.qkvBias), 'out_in');
      const k = linear(a, w('self_attn.k_proj.weight'), bias('self_attn.k_proj.bias', cfg.qkvBias), 'out_in');
      const v = linear(a, w('self_attn.v_proj.weight'), bias('self_attn.v_proj.bias', cfg.qkvBias), 'out_in');
      const att = attention(q, k, v, shape, x.dims, x.bias, x.past?.[i] ?? null, rotate);
      fresh.push(att.fresh);
      h = add(h, linear(att.out, w('self_attn.o_proj.weight'), bias('self_attn.o_proj.bias', cfg.oBias), 'out_in'));
      const m = rmsNorm(h, w('post_attention_layernorm.weight'), cfg.normEps);
      const gate = silu(linear(m, w('mlp.gate_proj.weight'), bias('mlp.gate_proj.bias', cfg.mlpBias), 'out_in'));
      const up = linear(m, w('mlp.up_proj.weight'), bias('mlp.up_proj.bias', cfg.mlpBias), 'out_in');
      h = add(h, linear(mul(gate, up), w('mlp.down_proj.weight'), bias('mlp.down_proj.bias', cfg.mlpBias), 'out_in'));
    }
    return { hidden: rmsNorm(h, p.get('norm.weight'), cfg.normEps), fresh };
  },

  weightShapes(cfg: ModelConfig): Map<string, number[]> {
    const H = cfg.hidden;
    const I = cfg.intermediate;
    const q = cfg.heads * cfg.headDim;
    const kv = cfg.kvHeads * cfg.headDim;
    const m = new Map<string, number[]>([
      ['embed_tokens.weight', [cfg.vocabSize, H]],
      ['norm.weight', [H]],
    ]);
    for (let i = 0; i < cfg.layers; i++) {
      const b = `layers.${i}.`;
      m.set(`${b}input_layernorm.weight`, [H]);
      m.set(`${b}post_attention_layernorm.weight`, [H]);
      m.set(`${b}self_attn.q_proj.weight`, [q, H]);
      m.set(`${b}self_attn.k_proj.weight`, [kv, H]);
      m.set(`${b}self_attn.v_proj.weight`, [kv, H]);
      m.set(`${b}self_attn.o_proj.weight`, [H, q]);
      if (cfg.qkvBias) {
        m.set(`${b}self_attn.q_proj.bias`, [q]);
        m.set(`${b}self_attn.k_proj.bias`, [kv]);
        m.set(`${b}self_attn.v_proj.bias`, [kv]);
      }
      if (cfg.oBias) m.set(`${b}self_attn.o_proj.bias`, [H]);
      m.set(`${b}mlp.gate_proj.weight`, [I, H]);
      m.set(`${b}mlp.up_proj.weight`, [I, H]);
      m.set(`${b}mlp.down_proj.weight`, [H, I]);
      if (cfg.mlpBias) {
        m.set(`${b}mlp.gate_proj.bias`, [I]);
        m.set(`${b}mlp.up_proj.bias`, [I]);
        m.set(`${b}mlp.down_proj.bias`, [H]);
      }
    }
    if (!cfg.tieWordEmbeddings) m.set('lm_head.weight', [cfg.vocabSize, H]);
    return m;
  },

  weightPrefix: 'model.',
};
