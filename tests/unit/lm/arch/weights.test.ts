// Each architecture declares its weights once (lm/arch/*: name, shape, init). The graphs read
// exactly the declared weights, the loader checks files against the same list, and the inits are
// HF's: GPT-2's residual projections scaled by 1/√(2·n_layer), norm gains one, biases zero.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ModelConfig, parseModelConfig } from '../../../../server/lm/model-config.ts';
import { architectureOf, buildTrainGraph, weightShapes } from '../../../../server/lm/model.ts';

const gpt2 = (extra: Record<string, unknown> = {}): ModelConfig =>
  parseModelConfig({ model_type: 'gpt2', vocab_size: 300, n_embd: 32, n_layer: 3, n_head: 4, n_positions: 64, ...extra }, 'gpt2');
const llamaFamily = (model_type: string, extra: Record<string, unknown> = {}): ModelConfig =>
  parseModelConfig({
    model_type, vocab_size: 300, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
    intermediate_size: 48, max_position_embeddings: 64, ...extra,
  }, model_type);

const configs: [string, ModelConfig][] = [
  ['gpt2 tied', gpt2()],
  ['gpt2 untied', gpt2({ tie_word_embeddings: false })],
  ['llama', llamaFamily('llama')],
  ['llama attention_bias + mlp_bias, untied', llamaFamily('llama', { attention_bias: true, mlp_bias: true, tie_word_embeddings: false })],
  ['qwen2', llamaFamily('qwen2', { tie_word_embeddings: true })],
  ['mistral', llamaFamily('mistral')],
];

describe('the weight declaration', () => {
  for (const [label, cfg] of configs) {
    test(`${label}: the training graph reads every declared weight and nothing else`, () => {
      const declared = architectureOf(cfg).weights(cfg).map((w) => w.name);
      assert.equal(new Set(declared).size, declared.length, 'each weight declared once');
      const read = buildTrainGraph(cfg, 'float32', { gradients: false }).paramNames;
      assert.deepEqual([...read].sort(), [...declared].sort());
      assert.deepEqual([...weightShapes(cfg).keys()], declared, 'shapes in declaration order');
    });
  }

  test('the declared names and shapes follow the config (biases, tying, GQA)', () => {
    const names = (cfg: ModelConfig): string[] => architectureOf(cfg).weights(cfg).map((w) => w.name);
    assert.ok(names(gpt2({ tie_word_embeddings: false })).includes('lm_head.weight'));
    assert.ok(!names(gpt2()).includes('lm_head.weight'));
    const biased = names(llamaFamily('llama', { attention_bias: true, mlp_bias: true }));
    for (const b of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) assert.ok(biased.includes(`layers.1.self_attn.${b}.bias`), b);
    for (const b of ['gate_proj', 'up_proj', 'down_proj']) assert.ok(biased.includes(`layers.1.mlp.${b}.bias`), b);
    const qwen = names(llamaFamily('qwen2'));
    assert.ok(qwen.includes('layers.0.self_attn.q_proj.bias') && !qwen.includes('layers.0.self_attn.o_proj.bias'));
    assert.ok(!names(llamaFamily('mistral')).some((n) => n.endsWith('.bias')));
    const shapes = weightShapes(llamaFamily('llama'));
    assert.deepEqual(shapes.get('layers.0.self_attn.k_proj.weight'), [2 * 8, 32], 'kv heads × head_dim rows');
    assert.deepEqual(shapes.get('layers.0.mlp.down_proj.weight'), [32, 48]);
    assert.deepEqual(weightShapes(gpt2()).get('h.2.mlp.c_fc.weight'), [32, 128], 'Conv1D: [in, out]');
  });

  test("GPT-2's init: normal(range), the residual projections scaled by 1/√(2·n_layer), LayerNorm one and zero", () => {
    const cfg = gpt2();
    const init = new Map(architectureOf(cfg).weights(cfg, 0.05).map((w) => [w.name, w.init]));
    assert.deepEqual(init.get('wte.weight'), { kind: 'normal', std: 0.05 });
    assert.deepEqual(init.get('h.0.attn.c_attn.weight'), { kind: 'normal', std: 0.05 });
    assert.deepEqual(init.get('h.1.attn.c_proj.weight'), { kind: 'normal', std: 0.05 / Math.sqrt(6) });
    assert.deepEqual(init.get('h.2.mlp.c_proj.weight'), { kind: 'normal', std: 0.05 / Math.sqrt(6) });
    assert.deepEqual(init.get('h.2.mlp.c_proj.bias'), { kind: 'zeros' });
    assert.deepEqual(init.get('ln_f.weight'), { kind: 'ones' });
    assert.deepEqual(init.get('ln_f.bias'), { kind: 'zeros' });
  });

  test("Llama's init: every projection normal(range), RMSNorm one, biases zero", () => {
    const cfg = llamaFamily('llama', { attention_bias: true, tie_word_embeddings: false });
    const init = new Map(architectureOf(cfg).weights(cfg).map((w) => [w.name, w.init]));
    for (const n of ['embed_tokens.weight', 'layers.0.self_attn.o_proj.weight', 'layers.1.mlp.down_proj.weight', 'lm_head.weight']) {
      assert.deepEqual(init.get(n), { kind: 'normal', std: 0.02 }, n);
    }
    assert.deepEqual(init.get('layers.0.self_attn.q_proj.bias'), { kind: 'zeros' });
    assert.deepEqual(init.get('layers.1.post_attention_layernorm.weight'), { kind: 'ones' });
    assert.deepEqual(init.get('norm.weight'), { kind: 'ones' });
  });
});
