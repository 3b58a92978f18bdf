// The Llama family (llama, qwen2, mistral), as in HF's modeling_llama / modeling_qwen2: RMSNorm,
// rotary position embeddings in the rotate-half convention, grouped-query attention, SiLU-gated MLP.
// nn.Linear weights are stored [out, in]; Qwen2 adds q/k/v biases.
import type { ModelConfig } from '../model-config.ts';
import type { Tensor } from '../onnx/graph.ts';
import { add, cast, concat, cos, gather, mul, rmsNorm, sigmoid, sin, unsqueeze } from '../onnx/ops.ts';
import {
  type DecoderInputs, type DecoderOutputs, type KvPair, type ParamSource, type WeightDecl, DEFAULT_INITIALIZER_RANGE, ONES, ZEROS,
  attention, linear, normalInit, rotateHalf,
} from './common.ts';

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

  /**
   * Every weight, in checkpoint order, initialised as LlamaPreTrainedModel._init_weights does: every
   * projection and the embedding normal, biases zero (q/k/v for Qwen2 or attention_bias, o_proj for
   * attention_bias, the MLP's for mlp_bias), RMSNorm gains one.
   */
  weights(cfg: ModelConfig, initializerRange = DEFAULT_INITIALIZER_RANGE): WeightDecl[] {
    const { vocabSize: V, hidden: H, intermediate: I } = cfg;
    const q = cfg.heads * cfg.headDim;
    const kv = cfg.kvHeads * cfg.headDim;
    const w = normalInit(initializerRange);
    // nn.Linear stores its weight [out, in]
    const linearDecl = (name: string, nIn: number, nOut: number, bias: boolean): WeightDecl[] => [
      { name: `${name}.weight`, shape: [nOut, nIn], init: w },
      ...(bias ? [{ name: `${name}.bias`, shape: [nOut], init: ZEROS }] : []),
    ];
    const decls: WeightDecl[] = [{ name: 'embed_tokens.weight', shape: [V, H], init: w }];
    for (let i = 0; i < cfg.layers; i++) {
      const b = `layers.${i}.`;
      decls.push(
        { name: `${b}input_layernorm.weight`, shape: [H], init: ONES },
        ...linearDecl(`${b}self_attn.q_proj`, H, q, cfg.qkvBias),
        ...linearDecl(`${b}self_attn.k_proj`, H, kv, cfg.qkvBias),
        ...linearDecl(`${b}self_attn.v_proj`, H, kv, cfg.qkvBias),
        ...linearDecl(`${b}self_attn.o_proj`, q, H, cfg.oBias),
        { name: `${b}post_attention_layernorm.weight`, shape: [H], init: ONES },
        ...linearDecl(`${b}mlp.gate_proj`, H, I, cfg.mlpBias),
        ...linearDecl(`${b}mlp.up_proj`, H, I, cfg.mlpBias),
        ...linearDecl(`${b}mlp.down_proj`, I, H, cfg.mlpBias),
      );
    }
    decls.push({ name: 'norm.weight', shape: [H], init: ONES });
    if (!cfg.tieWordEmbeddings) decls.push({ name: 'lm_head.weight', shape: [V, H], init: w });
    return decls;
  },

  weightPrefix: 'model.',
};
