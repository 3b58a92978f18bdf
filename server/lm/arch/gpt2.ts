// GPT-2 (Radford et al. 2019), as in HF's modeling_gpt2: learned positions, pre-LayerNorm blocks,
// tanh-GELU MLP, Conv1D weights stored [in, out], tied lm_head by default.
import type { ModelConfig } from '../model-config.ts';
import type { Tensor } from '../onnx/graph.ts';
import { add, gather, geluTanh, layerNorm, slice } from '../onnx/ops.ts';
import { type DecoderInputs, type DecoderOutputs, type KvPair, type ParamSource, attention, linear } from './common.ts';

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

  /** Weight names and shapes this architecture reads (HF names, without the `transformer.` prefix). */
  weightShapes(cfg: ModelConfig): Map<string, number[]> {
    const H = cfg.hidden;
    const I = cfg.intermediate;
    const m = new Map<string, number[]>([
      ['wte.weight', [cfg.vocabSize, H]],
      ['wpe.weight', [cfg.maxPositions, H]],
      ['ln_f.weight', [H]],
      ['ln_f.bias', [H]],
    ]);
    for (let i = 0; i < cfg.layers; i++) {
      const b = `h.${i}.`;
      for (const n of ['ln_1', 'ln_2']) {
        m.set(`${b}${n}.weight`, [H]);
        m.set(`${b}${n}.bias`, [H]);
      }
      m.set(`${b}attn.c_attn.weight`, [H, 3 * H]);
      m.set(`${b}attn.c_attn.bias`, [3 * H]);
      m.set(`${b}attn.c_proj.weight`, [H, H]);
      m.set(`${b}attn.c_proj.bias`, [H]);
      m.set(`${b}mlp.c_fc.weight`, [H, I]);
      m.set(`${b}mlp.c_fc.bias`, [I]);
      m.set(`${b}mlp.c_proj.weight`, [I, H]);
      m.set(`${b}mlp.c_proj.bias`, [H]);
    }
    if (!cfg.tieWordEmbeddings) m.set('lm_head.weight', [cfg.vocabSize, H]);
    return m;
  },

  weightPrefix: 'transformer.',
};
