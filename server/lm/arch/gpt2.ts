// GPT-2 (Radford et al. 2019), as in HF's modeling_gpt2: learned positions, pre-LayerNorm blocks,
// tanh-GELU MLP, Conv1D weights stored [in, out], tied lm_head by default.
import type { ModelConfig } from '../model-config.ts';
import type { Tensor } from '../onnx/graph.ts';
import { add, gather, geluTanh, layerNorm, slice } from '../onnx/ops.ts';
import {
  type DecoderInputs, type DecoderOutputs, type KvPair, type ParamSource, type WeightDecl, type WeightInit, DEFAULT_INITIALIZER_RANGE, ONES, ZEROS,
  attention, linear, normalInit,
} from './common.ts';

/** HF's Conv1D: y = x·W + b with W stored [in, out]. */
function conv1d(p: ParamSource, x: Tensor, name: string): Tensor {
  const b = p.get(`${name}.bias`);
  return p.getTransposed ? linear(x, p.getTransposed(`${name}.weight`), b, 'out_in') : linear(x, p.get(`${name}.weight`), b, 'in_out');
}

export const gpt2 = {
  /** Token embeddings plus learned position embeddings (added to soft-prompt rows too, as HF's inputs_embeds). */
  embedTokens(p: ParamSource, ids: Tensor): Tensor {
    return gather(p.get('wte.weight'), ids);
  },

  addPositions(p: ParamSource, embeds: Tensor, positionIds: Tensor): Tensor {
    return add(embeds, gather(p.get('wpe.weight'), positionIds));
  },

  /** HF ties lm_head to wte unless the config unties it; then lm_head.weight must exist. */
  lmHeadWeight(cfg: ModelConfig, p: ParamSource): Tensor {
    return cfg.tieWordEmbeddings ? p.get('wte.weight') : p.get('lm_head.weight');
  },

  decoder(cfg: ModelConfig, p: ParamSource, x: DecoderInputs): DecoderOutputs {
    const H = cfg.hidden;
    const shape = { heads: cfg.heads, kvHeads: cfg.heads, headDim: cfg.headDim };
    let h = x.embeds;
    const fresh: KvPair[] = [];
    for (let i = 0; i < cfg.layers; i++) {
      const w = (n: string): Tensor => p.get(`h.${i}.${n}`);
      const a = layerNorm(h, w('ln_1.weight'), w('ln_1.bias'), cfg.normEps);
      const qkv = conv1d(p, a, `h.${i}.attn.c_attn`);
      const q = slice(qkv, 1, 0, H);
      const k = slice(qkv, 1, H, 2 * H);
      const v = slice(qkv, 1, 2 * H, 3 * H);
      const att = attention(q, k, v, shape, x.dims, x.bias, x.past?.[i] ?? null, null);
      fresh.push(att.fresh);
      h = add(h, conv1d(p, att.out, `h.${i}.attn.c_proj`));
      const m = layerNorm(h, w('ln_2.weight'), w('ln_2.bias'), cfg.normEps);
      const up = geluTanh(conv1d(p, m, `h.${i}.mlp.c_fc`));
      h = add(h, conv1d(p, up, `h.${i}.mlp.c_proj`));
    }
    return { hidden: layerNorm(h, p.get('ln_f.weight'), p.get('ln_f.bias'), cfg.normEps), fresh };
  },

  /**
   * Every weight, in checkpoint order, initialised as GPT2PreTrainedModel._init_weights does: normal
   * draws, except the residual projections (attn.c_proj and mlp.c_proj), scaled by 1/√(2·n_layer)
   * so the residual stream's variance does not grow with depth (GPT-2 paper, §2.3).
   */
  weights(cfg: ModelConfig, initializerRange = DEFAULT_INITIALIZER_RANGE): WeightDecl[] {
    const { vocabSize: V, hidden: H, intermediate: I, maxPositions: P } = cfg;
    const w = normalInit(initializerRange);
    const residual = normalInit(initializerRange / Math.sqrt(2 * cfg.layers));
    const layerNormDecl = (name: string): WeightDecl[] => [
      { name: `${name}.weight`, shape: [H], init: ONES },
      { name: `${name}.bias`, shape: [H], init: ZEROS },
    ];
    // Conv1D stores its weight [in, out]
    const conv1dDecl = (name: string, nIn: number, nOut: number, init: WeightInit): WeightDecl[] => [
      { name: `${name}.weight`, shape: [nIn, nOut], init },
      { name: `${name}.bias`, shape: [nOut], init: ZEROS },
    ];
    const decls: WeightDecl[] = [
      { name: 'wte.weight', shape: [V, H], init: w },
      { name: 'wpe.weight', shape: [P, H], init: w },
    ];
    for (let i = 0; i < cfg.layers; i++) {
      const b = `h.${i}.`;
      decls.push(
        ...layerNormDecl(`${b}ln_1`),
        ...conv1dDecl(`${b}attn.c_attn`, H, 3 * H, w),
        ...conv1dDecl(`${b}attn.c_proj`, H, H, residual),
        ...layerNormDecl(`${b}ln_2`),
        ...conv1dDecl(`${b}mlp.c_fc`, H, I, w),
        ...conv1dDecl(`${b}mlp.c_proj`, I, H, residual),
      );
    }
    decls.push(...layerNormDecl('ln_f'));
    if (!cfg.tieWordEmbeddings) decls.push({ name: 'lm_head.weight', shape: [V, H], init: w });
    return decls;
  },

  weightPrefix: 'transformer.',
};
