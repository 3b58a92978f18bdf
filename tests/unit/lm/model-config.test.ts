import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generationConfigJson, loadModelConfig, modelConfigJson, parseModelConfig, type ModelConfig } from '../../../server/lm/model-config.ts';
import { throwsLm } from '../../helpers/lm-errors.ts';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-config-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));


const FILE = 'models/x/config.json';

// Abridged from published checkpoints' config.json files.
const GPT2 = {
  activation_function: 'gelu_new',
  architectures: ['GPT2LMHeadModel'],
  bos_token_id: 50256,
  eos_token_id: 50256,
  layer_norm_epsilon: 1e-5,
  model_type: 'gpt2',
  n_ctx: 1024,
  n_embd: 768,
  n_head: 12,
  n_layer: 12,
  n_positions: 1024,
  vocab_size: 50257,
};

const LLAMA32_1B = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  bos_token_id: 128000,
  eos_token_id: 128001,
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2048,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  vocab_size: 128256,
};

const QWEN25_05B = {
  architectures: ['Qwen2ForCausalLM'],
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_act: 'silu',
  hidden_size: 896,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const MISTRAL_7B = {
  architectures: ['MistralForCausalLM'],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 4096,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  model_type: 'mistral',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
  vocab_size: 32000,
};

describe('parseModelConfig', () => {
  test('gpt2', () => {
    const c = parseModelConfig(GPT2, FILE);
    const expected: ModelConfig = {
      arch: 'gpt2',
      modelType: 'gpt2',
      vocabSize: 50257,
      hidden: 768,
      layers: 12,
      heads: 12,
      kvHeads: 12,
      headDim: 64,
      intermediate: 3072,
      maxPositions: 1024,
      normEps: 1e-5,
      ropeTheta: 10000,
      ropeScaling: null,
      tieWordEmbeddings: true,
      qkvBias: true,
      oBias: true,
      mlpBias: true,
      slidingWindow: null,
      bosTokenId: 50256,
      eosTokenIds: [50256],
      padTokenId: null,
    };
    assert.deepEqual(c, expected);
  });

  test('gpt2 variants: n_ctx only, explicit n_inner, untied, tanh gelu; unsupported activation', () => {
    const { n_positions: _drop, ...noPositions } = GPT2;
    const c = parseModelConfig(
      { ...noPositions, n_ctx: 256, n_inner: 1000, tie_word_embeddings: false, activation_function: 'gelu_pytorch_tanh', layer_norm_epsilon: undefined },
      FILE,
    );
    assert.equal(c.maxPositions, 256);
    assert.equal(c.intermediate, 1000);
    assert.equal(c.tieWordEmbeddings, false);
    assert.equal(c.normEps, 1e-5);
    assert.equal(parseModelConfig({ ...GPT2, n_inner: null }, FILE).intermediate, 3072);
    throwsLm(() => parseModelConfig({ ...GPT2, activation_function: 'relu' }, FILE), 'unsupported_model', FILE, 'relu', 'gelu_new');
    throwsLm(() => parseModelConfig({ ...noPositions, n_ctx: undefined }, FILE), 'config_invalid', FILE, 'n_positions');
    throwsLm(() => parseModelConfig({ ...GPT2, n_head: 7 }, FILE), 'config_invalid', 'n_embd', 'n_head');
  });

  test('llama 3.2 with GQA, head_dim and llama3 rope scaling', () => {
    const c = parseModelConfig(LLAMA32_1B, FILE);
    assert.equal(c.arch, 'llama');
    assert.equal(c.modelType, 'llama');
    assert.equal(c.heads, 32);
    assert.equal(c.kvHeads, 8);
    assert.equal(c.headDim, 64);
    assert.equal(c.normEps, 1e-5);
    assert.equal(c.ropeTheta, 500000);
    assert.deepEqual(c.ropeScaling, { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
    assert.equal(c.tieWordEmbeddings, true);
    assert.deepEqual([c.qkvBias, c.oBias, c.mlpBias], [false, false, false]);
    assert.equal(c.slidingWindow, null);
    assert.deepEqual(c.eosTokenIds, [128001]);
    assert.equal(c.bosTokenId, 128000);
  });

  test('llama defaults and options', () => {
    const minimal = {
      model_type: 'llama',
      vocab_size: 100,
      hidden_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      intermediate_size: 128,
      max_position_embeddings: 512,
    };
    const c = parseModelConfig(minimal, FILE);
    assert.equal(c.kvHeads, 4);
    assert.equal(c.headDim, 16);
    assert.equal(c.normEps, 1e-6);
    assert.equal(c.ropeTheta, 10000);
    assert.equal(c.ropeScaling, null);
    assert.equal(c.tieWordEmbeddings, false);
    assert.deepEqual(c.eosTokenIds, []);
    assert.equal(c.bosTokenId, null);

    const biased = parseModelConfig({ ...minimal, attention_bias: true, mlp_bias: true, eos_token_id: [7, 9] }, FILE);
    assert.deepEqual([biased.qkvBias, biased.oBias, biased.mlpBias], [true, true, true]);
    assert.deepEqual(biased.eosTokenIds, [7, 9]);

    assert.equal(parseModelConfig({ ...minimal, rope_scaling: { type: 'default' } }, FILE).ropeScaling, null);
    assert.equal(parseModelConfig({ ...minimal, rope_scaling: { rope_type: 'default' } }, FILE).ropeScaling, null);
    assert.deepEqual(parseModelConfig({ ...minimal, rope_scaling: { type: 'linear', factor: 2 } }, FILE).ropeScaling, { type: 'linear', factor: 2 });
    throwsLm(
      () => parseModelConfig({ ...minimal, rope_scaling: { type: 'dynamic', factor: 2 } }, FILE),
      'unsupported_model',
      FILE,
      'dynamic',
      'default, linear, llama3',
    );
    throwsLm(
      () => parseModelConfig({ ...minimal, rope_scaling: { rope_type: 'llama3', factor: 8, high_freq_factor: 4, original_max_position_embeddings: 8192 } }, FILE),
      'config_invalid',
      FILE,
      'rope_scaling.low_freq_factor',
    );
    throwsLm(() => parseModelConfig({ ...minimal, rope_scaling: { rope_type: 'linear' } }, FILE), 'config_invalid', 'rope_scaling.factor');

    // transformers v5 layout
    const v5 = parseModelConfig({ ...minimal, rope_parameters: { rope_type: 'linear', factor: 4, rope_theta: 5e5 } }, FILE);
    assert.equal(v5.ropeTheta, 5e5);
    assert.deepEqual(v5.ropeScaling, { type: 'linear', factor: 4 });

    throwsLm(() => parseModelConfig({ ...minimal, hidden_act: 'gelu' }, FILE), 'unsupported_model', FILE, 'gelu', 'silu');
    throwsLm(() => parseModelConfig({ ...minimal, num_key_value_heads: 3 }, FILE), 'config_invalid', 'num_key_value_heads');
    throwsLm(() => parseModelConfig({ ...minimal, num_attention_heads: 5 }, FILE), 'config_invalid', 'hidden_size');
    assert.equal(parseModelConfig({ ...minimal, num_attention_heads: 5, num_key_value_heads: 1, head_dim: 8 }, FILE).headDim, 8);
  });

  test('qwen2: q/k/v biases, untied by default, sliding window only when it covers every layer', () => {
    const c = parseModelConfig(QWEN25_05B, FILE);
    assert.equal(c.modelType, 'qwen2');
    assert.deepEqual([c.qkvBias, c.oBias, c.mlpBias], [true, false, false]);
    assert.equal(c.headDim, 64);
    assert.equal(c.kvHeads, 2);
    assert.equal(c.tieWordEmbeddings, true);
    assert.equal(c.slidingWindow, null);
    const { tie_word_embeddings: _t, ...untied } = QWEN25_05B;
    assert.equal(parseModelConfig(untied, FILE).tieWordEmbeddings, false);
    assert.equal(parseModelConfig({ ...QWEN25_05B, use_sliding_window: true, max_window_layers: 0, sliding_window: 4096 }, FILE).slidingWindow, 4096);
    assert.equal(parseModelConfig({ ...QWEN25_05B, use_sliding_window: true, max_window_layers: 24 }, FILE).slidingWindow, null);
    throwsLm(() => parseModelConfig({ ...QWEN25_05B, use_sliding_window: true, max_window_layers: 21 }, FILE), 'unsupported_model', 'max_window_layers');
  });

  test('mistral: sliding window, null window, optional head_dim', () => {
    const c = parseModelConfig(MISTRAL_7B, FILE);
    assert.equal(c.modelType, 'mistral');
    assert.equal(c.slidingWindow, 4096);
    assert.deepEqual([c.qkvBias, c.oBias], [false, false]);
    assert.equal(c.tieWordEmbeddings, false);
    assert.equal(parseModelConfig({ ...MISTRAL_7B, sliding_window: null }, FILE).slidingWindow, null);
    const nemo = parseModelConfig({ ...MISTRAL_7B, hidden_size: 5120, head_dim: 128, sliding_window: null }, FILE);
    assert.equal(nemo.headDim, 128);
    assert.equal(nemo.hidden, 5120);
  });

  test('missing fields are all named, with the file', () => {
    const err = throwsLm(
      () => parseModelConfig({ model_type: 'llama', vocab_size: 10 }, FILE),
      'config_invalid',
      FILE,
      'hidden_size',
      'num_hidden_layers',
      'num_attention_heads',
      'intermediate_size',
      'max_position_embeddings',
    );
    assert.deepEqual(err.details?.['fields'], ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'max_position_embeddings']);
    assert.doesNotMatch(err.message, /vocab_size/);

    throwsLm(() => parseModelConfig({ ...GPT2, n_embd: undefined, n_layer: '12' }, FILE), 'config_invalid', FILE, 'n_embd', 'n_layer');
    throwsLm(() => parseModelConfig({ ...GPT2, vocab_size: 1.5 }, FILE), 'config_invalid', 'vocab_size');
    throwsLm(() => parseModelConfig({ vocab_size: 3 }, FILE), 'config_invalid', FILE, 'model_type');
    throwsLm(() => parseModelConfig([1], FILE), 'config_invalid', FILE);
  });

  test('unsupported model types list the supported ones', () => {
    const err = throwsLm(() => parseModelConfig({ model_type: 'bert' }, FILE), 'unsupported_model', FILE, 'bert', 'gpt2, llama, qwen2, mistral');
    assert.deepEqual(err.details?.['supported'], ['gpt2', 'llama', 'qwen2', 'mistral']);
  });
});

describe('loadModelConfig', () => {
  const dirWith = (files: Record<string, string>): string => {
    const dir = fs.mkdtempSync(path.join(tmpRoot, 'm-'));
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    return dir;
  };

  test('reads config.json and merges generation_config.json', () => {
    const dir = dirWith({
      'config.json': JSON.stringify({ ...MISTRAL_7B, bos_token_id: undefined, eos_token_id: 2 }),
      'generation_config.json': JSON.stringify({ bos_token_id: 1, eos_token_id: [5, 2], pad_token_id: 0, do_sample: true }),
    });
    const c = loadModelConfig(dir);
    assert.deepEqual(c.eosTokenIds, [2, 5]);
    assert.equal(c.bosTokenId, 1);
    assert.equal(c.padTokenId, 0);
    assert.equal(loadModelConfig(dirWith({ 'config.json': JSON.stringify(GPT2) })).bosTokenId, 50256);
  });

  test('missing and unparseable files are named', () => {
    const empty = dirWith({});
    throwsLm(() => loadModelConfig(empty), 'file_missing', path.join(empty, 'config.json'));
    const broken = dirWith({ 'config.json': '{"model_type": "gpt2",' });
    throwsLm(() => loadModelConfig(broken), 'file_corrupt', path.join(broken, 'config.json'));
    const badGen = dirWith({ 'config.json': JSON.stringify(GPT2), 'generation_config.json': JSON.stringify({ eos_token_id: 'x' }) });
    throwsLm(() => loadModelConfig(badGen), 'config_invalid', path.join(badGen, 'generation_config.json'), 'eos_token_id');
  });
});

describe('modelConfigJson (the writer)', () => {
  const extras = { initializerRange: 0.02, torchDtype: 'float32' };
  const published: Record<string, unknown>[] = [
    GPT2,
    { ...GPT2, n_inner: 1000, tie_word_embeddings: false, eos_token_id: [50256, 7], pad_token_id: 3 },
    LLAMA32_1B,
    { ...LLAMA32_1B, attention_bias: true, mlp_bias: true, rope_scaling: { rope_type: 'linear', factor: 2 }, tie_word_embeddings: true },
    QWEN25_05B,
    { ...QWEN25_05B, use_sliding_window: true, sliding_window: 512, max_window_layers: 0 },
    MISTRAL_7B,
    { ...MISTRAL_7B, sliding_window: null },
  ];

  test('writes what parseModelConfig reads back, for every architecture and option', () => {
    for (const json of published) {
      const cfg = parseModelConfig(json, FILE);
      const written = modelConfigJson(cfg, extras);
      assert.deepEqual(parseModelConfig(JSON.parse(JSON.stringify(written)), FILE), cfg, `${json.model_type}: ${JSON.stringify(written)}`);
      assert.equal(written.initializer_range, 0.02);
      assert.equal(written.torch_dtype, 'float32');
    }
  });

  test('the HF fields themselves: mlp_bias, attention_bias, the sliding window, one eos id', () => {
    const llama = modelConfigJson({ ...parseModelConfig(LLAMA32_1B, FILE), mlpBias: true }, extras);
    assert.equal(llama.mlp_bias, true);
    assert.equal(llama.attention_bias, false);
    assert.equal(llama.eos_token_id, 128001);
    const qwen = modelConfigJson({ ...parseModelConfig(QWEN25_05B, FILE), slidingWindow: 64 }, extras);
    assert.deepEqual([qwen.use_sliding_window, qwen.sliding_window, qwen.max_window_layers], [true, 64, 0]);
    assert.equal(modelConfigJson(parseModelConfig(GPT2, FILE), extras).n_inner, null, '4·n_embd is written as the default');
  });

  test('a config that config.json cannot express is refused, naming the fields', () => {
    const llama = parseModelConfig(LLAMA32_1B, FILE);
    const err = throwsLm(() => modelConfigJson({ ...llama, oBias: true }, extras), 'bad_argument', 'oBias');
    assert.deepEqual(err.details?.['fields'], ['oBias']);
    throwsLm(() => modelConfigJson({ ...llama, slidingWindow: 16 }, extras), 'bad_argument', 'slidingWindow');
    throwsLm(() => modelConfigJson({ ...parseModelConfig(GPT2, FILE), kvHeads: 4 }, extras), 'bad_argument', 'kvHeads');
    throwsLm(() => modelConfigJson({ ...parseModelConfig(QWEN25_05B, FILE), qkvBias: false }, extras), 'bad_argument', 'qkvBias');
  });

  test('generation_config.json round-trips through loadModelConfig', () => {
    const dir = fs.mkdtempSync(path.join(tmpRoot, 'gen-'));
    const cfg = { ...parseModelConfig(MISTRAL_7B, FILE), eosTokenIds: [2] };
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(modelConfigJson(cfg, extras)));
    fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify(generationConfigJson({ bosTokenId: 1, eosTokenIds: [2, 32000] })));
    assert.deepEqual(loadModelConfig(dir), { ...cfg, eosTokenIds: [2, 32000] });
    assert.deepEqual(generationConfigJson({ bosTokenId: null, eosTokenIds: [5] }), { _from_model_config: true, bos_token_id: null, eos_token_id: 5 });
  });
});
