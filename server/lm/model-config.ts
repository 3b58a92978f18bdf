// Hugging Face config.json → one normalized ModelConfig for the decoders we build graphs for.
// Field names and defaults follow transformers' GPT2Config, LlamaConfig, Qwen2Config and
// MistralConfig, so a checkpoint's config means here what it means there.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { LmError } from './errors.ts';

export type Arch = 'gpt2' | 'llama';
export type ModelType = 'gpt2' | 'llama' | 'qwen2' | 'mistral';

export type RopeScaling =
  | null
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

export interface ModelConfig {
  arch: Arch;
  modelType: ModelType;
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  maxPositions: number;
  normEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  tieWordEmbeddings: boolean;
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
}

export const SUPPORTED_MODEL_TYPES: readonly ModelType[] = ['gpt2', 'llama', 'qwen2', 'mistral'];
export const SUPPORTED_ROPE_TYPES = ['default', 'linear', 'llama3'] as const;
const SUPPORTED_GPT2_ACTIVATIONS = ['gelu_new', 'gelu_pytorch_tanh'];

const posInt = z.number().int().positive();
const tokenId = z.number().int().nonnegative();
const tokenIds = z.union([tokenId, z.array(tokenId)]).nullable().optional();
const optionalTokenId = tokenId.nullable().optional();
const looseRecord = z.record(z.string(), z.unknown());

const specialTokenFields = {
  bos_token_id: optionalTokenId,
  eos_token_id: tokenIds,
  pad_token_id: optionalTokenId,
};

const gpt2Schema = z.object({
  vocab_size: posInt,
  n_embd: posInt,
  n_layer: posInt,
  n_head: posInt,
  n_positions: posInt.optional(),
  n_ctx: posInt.optional(),
  n_inner: posInt.nullable().optional(),
  layer_norm_epsilon: z.number().positive().optional(),
  activation_function: z.string().optional(),
  tie_word_embeddings: z.boolean().optional(),
  scale_attn_weights: z.boolean().optional(),
  scale_attn_by_inverse_layer_idx: z.boolean().optional(),
  ...specialTokenFields,
});

const llamaFamilySchema = z.object({
  vocab_size: posInt,
  hidden_size: posInt,
  num_hidden_layers: posInt,
  num_attention_heads: posInt,
  num_key_value_heads: posInt.nullable().optional(),
  head_dim: posInt.nullable().optional(),
  intermediate_size: posInt,
  max_position_embeddings: posInt,
  rms_norm_eps: z.number().positive().optional(),
  rope_theta: z.number().positive().optional(),
  rope_scaling: looseRecord.nullable().optional(),
  // transformers v5 folds rope_theta and rope_scaling into one "rope_parameters" object
  rope_parameters: looseRecord.nullable().optional(),
  tie_word_embeddings: z.boolean().optional(),
  attention_bias: z.boolean().optional(),
  mlp_bias: z.boolean().optional(),
  hidden_act: z.string().optional(),
  use_sliding_window: z.boolean().optional(),
  sliding_window: posInt.nullable().optional(),
  max_window_layers: z.number().int().nonnegative().optional(),
  ...specialTokenFields,
});

const generationConfigSchema = z.object({ ...specialTokenFields });

function invalid(file: string, fields: string[], reasons: string[]): LmError {
  return new LmError('config_invalid', `${file}: invalid config: ${reasons.join('; ')}`, { file, fields });
}

function parseWith<S extends z.ZodType>(schema: S, json: unknown, file: string): z.infer<S> {
  const r = schema.safeParse(json);
  if (r.success) return r.data;
  const fields = [...new Set(r.error.issues.map((i) => i.path.map(String).join('.') || '(root)'))];
  const reasons = r.error.issues.map((i) => {
    const field = i.path.map(String).join('.') || '(root)';
    const missing = i.code === 'invalid_type' && i.message.includes('received undefined');
    return missing ? `missing required field '${field}'` : `field '${field}': ${i.message}`;
  });
  throw invalid(file, fields, reasons);
}

function unsupported(file: string, what: string, details: Record<string, unknown>): LmError {
  return new LmError('unsupported_model', `${file}: ${what}`, { file, ...details });
}

const idList = (v: number | number[] | null | undefined): number[] =>
  v === null || v === undefined ? [] : Array.isArray(v) ? v : [v];

function parseRopeScaling(raw: Record<string, unknown> | null | undefined, file: string, field: string): RopeScaling {
  if (raw === null || raw === undefined) return null;
  const type = raw['rope_type'] ?? raw['type'] ?? 'default';
  if (type === 'default') return null;
  const num = (key: string): number => {
    const v = raw[key];
    if (typeof v !== 'number' || !(v > 0)) {
      throw invalid(file, [`${field}.${key}`], [`${field}.${key} must be a positive number for rope type '${String(type)}', got ${JSON.stringify(v)}`]);
    }
    return v;
  };
  if (type === 'linear') return { type: 'linear', factor: num('factor') };
  if (type === 'llama3') {
    const scaling = {
      type: 'llama3' as const,
      factor: num('factor'),
      lowFreqFactor: num('low_freq_factor'),
      highFreqFactor: num('high_freq_factor'),
      originalMaxPositions: num('original_max_position_embeddings'),
    };
    if (!(scaling.highFreqFactor > scaling.lowFreqFactor)) {
      throw invalid(file, [`${field}.high_freq_factor`], [`${field}.high_freq_factor must exceed low_freq_factor`]);
    }
    return scaling;
  }
  throw unsupported(
    file,
    `unsupported ${field} type '${String(type)}'; supported: ${SUPPORTED_ROPE_TYPES.join(', ')}`,
    { ropeType: type, supported: [...SUPPORTED_ROPE_TYPES] },
  );
}

function parseGpt2(json: unknown, file: string): ModelConfig {
  const c = parseWith(gpt2Schema, json, file);
  const maxPositions = c.n_positions ?? c.n_ctx;
  if (maxPositions === undefined) throw invalid(file, ['n_positions'], [`missing required field 'n_positions' (or 'n_ctx')`]);
  const act = c.activation_function ?? 'gelu_new';
  if (!SUPPORTED_GPT2_ACTIVATIONS.includes(act)) {
    throw unsupported(file, `unsupported activation_function '${act}'; supported: ${SUPPORTED_GPT2_ACTIVATIONS.join(', ')}`, {
      activation: act,
    });
  }
  if (c.scale_attn_weights === false || c.scale_attn_by_inverse_layer_idx === true) {
    throw unsupported(file, 'only standard 1/sqrt(head_dim) attention scaling is supported (scale_attn_weights=true, scale_attn_by_inverse_layer_idx=false)', {});
  }
  if (c.n_embd % c.n_head !== 0) {
    throw invalid(file, ['n_embd', 'n_head'], [`n_embd (${c.n_embd}) must be divisible by n_head (${c.n_head})`]);
  }
  const eos = idList(c.eos_token_id);
  return {
    arch: 'gpt2',
    modelType: 'gpt2',
    vocabSize: c.vocab_size,
    hidden: c.n_embd,
    layers: c.n_layer,
    heads: c.n_head,
    kvHeads: c.n_head,
    headDim: c.n_embd / c.n_head,
    intermediate: c.n_inner ?? 4 * c.n_embd,
    maxPositions,
    normEps: c.layer_norm_epsilon ?? 1e-5,
    ropeTheta: 10000, // unused: GPT-2 has learned absolute positions
    ropeScaling: null,
    tieWordEmbeddings: c.tie_word_embeddings ?? true,
    qkvBias: true,
    oBias: true,
    mlpBias: true,
    slidingWindow: null,
    bosTokenId: c.bos_token_id ?? null,
    eosTokenIds: eos,
    padTokenId: c.pad_token_id ?? null,
  };
}

function parseLlamaFamily(json: unknown, file: string, modelType: 'llama' | 'qwen2' | 'mistral'): ModelConfig {
  const c = parseWith(llamaFamilySchema, json, file);
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') throw unsupported(file, `unsupported hidden_act '${act}'; supported: silu`, { activation: act });
  const heads = c.num_attention_heads;
  const kvHeads = c.num_key_value_heads ?? heads;
  if (heads % kvHeads !== 0) {
    throw invalid(file, ['num_attention_heads', 'num_key_value_heads'], [
      `num_attention_heads (${heads}) must be a multiple of num_key_value_heads (${kvHeads})`,
    ]);
  }
  if (c.head_dim == null && c.hidden_size % heads !== 0) {
    throw invalid(file, ['hidden_size', 'num_attention_heads'], [
      `hidden_size (${c.hidden_size}) must be divisible by num_attention_heads (${heads}) when head_dim is not given`,
    ]);
  }
  const headDim = c.head_dim ?? c.hidden_size / heads;
  if (headDim % 2 !== 0) throw invalid(file, ['head_dim'], [`head_dim (${headDim}) must be even for rotary embeddings`]);

  const ropeParams = c.rope_parameters ?? null;
  const thetaFromParams = ropeParams?.['rope_theta'];
  const ropeTheta = typeof thetaFromParams === 'number' ? thetaFromParams : c.rope_theta ?? 10000;
  const ropeScaling = ropeParams
    ? parseRopeScaling(ropeParams, file, 'rope_parameters')
    : parseRopeScaling(c.rope_scaling, file, 'rope_scaling');

  let qkvBias = false;
  let oBias = false;
  let slidingWindow: number | null = null;
  const tieDefault = false;
  if (modelType === 'llama') {
    qkvBias = oBias = c.attention_bias ?? false;
  } else if (modelType === 'qwen2') {
    qkvBias = true;
    if (c.use_sliding_window === true && c.sliding_window != null) {
      // Qwen2 slides the window only in layers >= max_window_layers (default 28).
      const firstSliding = c.max_window_layers ?? 28;
      if (firstSliding === 0) slidingWindow = c.sliding_window;
      else if (firstSliding < c.num_hidden_layers) {
        throw unsupported(file, `sliding window in only some layers (max_window_layers=${firstSliding} of ${c.num_hidden_layers}) is not supported`, {
          maxWindowLayers: firstSliding,
        });
      }
    }
  } else {
    // MistralConfig's default window is 4096 when the field is absent; null means full attention.
    slidingWindow = c.sliding_window === undefined ? 4096 : c.sliding_window;
  }

  return {
    arch: 'llama',
    modelType,
    vocabSize: c.vocab_size,
    hidden: c.hidden_size,
    layers: c.num_hidden_layers,
    heads,
    kvHeads,
    headDim,
    intermediate: c.intermediate_size,
    maxPositions: c.max_position_embeddings,
    normEps: c.rms_norm_eps ?? 1e-6,
    ropeTheta,
    ropeScaling,
    tieWordEmbeddings: c.tie_word_embeddings ?? tieDefault,
    qkvBias,
    oBias,
    mlpBias: modelType === 'llama' ? c.mlp_bias ?? false : false,
    slidingWindow,
    bosTokenId: c.bos_token_id ?? null,
    eosTokenIds: idList(c.eos_token_id),
    padTokenId: c.pad_token_id ?? null,
  };
}

/** Parses the JSON of a config.json; `file` names it in errors. */
export function parseModelConfig(json: unknown, file: string): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw invalid(file, ['(root)'], ['expected a JSON object']);
  }
  const modelType: unknown = (json as Record<string, unknown>)['model_type'];
  if (modelType === undefined) throw invalid(file, ['model_type'], [`missing required field 'model_type'`]);
  switch (modelType) {
    case 'gpt2':
      return parseGpt2(json, file);
    case 'llama':
    case 'qwen2':
    case 'mistral':
      return parseLlamaFamily(json, file, modelType as 'llama' | 'qwen2' | 'mistral');
    default:
      throw unsupported(file, `unsupported model_type ${JSON.stringify(modelType)}; supported: ${SUPPORTED_MODEL_TYPES.join(', ')}`, {
        modelType,
        supported: [...SUPPORTED_MODEL_TYPES],
      });
  }
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new LmError('file_missing', `${file}: file not found`, { file });
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new LmError('file_corrupt', `${file}: not valid JSON (${(e as Error).message})`, { file });
  }
}

/**
 * Reads `dir/config.json`. When `dir/generation_config.json` exists its eos ids are merged in
 * (config's first), and its bos/pad ids fill in where config.json has none.
 */
export function loadModelConfig(dir: string): ModelConfig {
  const configPath = path.join(dir, 'config.json');
  const config = parseModelConfig(readJson(configPath), configPath);
  const genPath = path.join(dir, 'generation_config.json');
  if (!fs.existsSync(genPath)) return config;
  const gen = parseWith(generationConfigSchema, readJson(genPath), genPath);
  const eos = [...config.eosTokenIds];
  for (const id of idList(gen.eos_token_id)) if (!eos.includes(id)) eos.push(id);
  return {
    ...config,
    eosTokenIds: eos,
    bosTokenId: config.bosTokenId ?? gen.bos_token_id ?? null,
    padTokenId: config.padTokenId ?? gen.pad_token_id ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// The inverse: a ModelConfig written as HF's config.json and generation_config.json

function hfRopeScaling(r: RopeScaling): Record<string, unknown> | null {
  if (r === null) return null;
  if (r.type === 'linear') return { rope_type: 'linear', factor: r.factor };
  return {
    rope_type: 'llama3',
    factor: r.factor,
    low_freq_factor: r.lowFreqFactor,
    high_freq_factor: r.highFreqFactor,
    original_max_position_embeddings: r.originalMaxPositions,
  };
}

/** config.json holds one eos id (or a list of them when there are several). */
const hfTokenIds = (ids: readonly number[]): number | number[] | null => (ids.length === 0 ? null : ids.length === 1 ? ids[0]! : [...ids]);

export interface ConfigJsonExtras {
  /** initializer_range: the std of the normal init (HF's default 0.02). */
  initializerRange: number;
  /** torch_dtype: 'float32', 'float16' or 'bfloat16'. */
  torchDtype: string;
}

/**
 * The config.json of `cfg`, in the field names and layout transformers writes, such that
 * parseModelConfig reads `cfg` back. A config that config.json cannot express (say, a Llama whose o_proj
 * has a bias but whose q/k/v have none) is refused, naming the fields that would not survive.
 */
export function modelConfigJson(cfg: ModelConfig, extras: ConfigJsonExtras): Record<string, unknown> {
  const common = {
    vocab_size: cfg.vocabSize,
    bos_token_id: cfg.bosTokenId,
    eos_token_id: hfTokenIds(cfg.eosTokenIds),
    ...(cfg.padTokenId === null ? {} : { pad_token_id: cfg.padTokenId }),
    tie_word_embeddings: cfg.tieWordEmbeddings,
    initializer_range: extras.initializerRange,
    torch_dtype: extras.torchDtype,
  };
  let json: Record<string, unknown>;
  if (cfg.modelType === 'gpt2') {
    json = {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      n_embd: cfg.hidden,
      n_layer: cfg.layers,
      n_head: cfg.heads,
      n_positions: cfg.maxPositions,
      n_ctx: cfg.maxPositions,
      n_inner: cfg.intermediate === 4 * cfg.hidden ? null : cfg.intermediate,
      activation_function: 'gelu_new',
      layer_norm_epsilon: cfg.normEps,
      ...common,
    };
  } else {
    const llamaCommon = {
      hidden_size: cfg.hidden,
      intermediate_size: cfg.intermediate,
      num_hidden_layers: cfg.layers,
      num_attention_heads: cfg.heads,
      num_key_value_heads: cfg.kvHeads,
      head_dim: cfg.headDim,
      max_position_embeddings: cfg.maxPositions,
      rms_norm_eps: cfg.normEps,
      rope_theta: cfg.ropeTheta,
      rope_scaling: hfRopeScaling(cfg.ropeScaling),
      hidden_act: 'silu',
      ...common,
    };
    switch (cfg.modelType) {
      case 'llama':
        json = { architectures: ['LlamaForCausalLM'], model_type: 'llama', ...llamaCommon, attention_bias: cfg.qkvBias, mlp_bias: cfg.mlpBias };
        break;
      case 'qwen2':
        json = {
          architectures: ['Qwen2ForCausalLM'],
          model_type: 'qwen2',
          ...llamaCommon,
          use_sliding_window: cfg.slidingWindow !== null,
          sliding_window: cfg.slidingWindow ?? cfg.maxPositions,
          // Qwen2 slides the window from layer max_window_layers on: 0 is every layer
          max_window_layers: cfg.slidingWindow !== null ? 0 : cfg.layers,
        };
        break;
      case 'mistral':
        json = { architectures: ['MistralForCausalLM'], model_type: 'mistral', ...llamaCommon, sliding_window: cfg.slidingWindow };
        break;
    }
  }
  const back = parseModelConfig(json, 'config.json');
  const lost = (Object.keys(cfg) as (keyof ModelConfig)[]).filter((k) => JSON.stringify(back[k]) !== JSON.stringify(cfg[k]));
  if (lost.length) {
    throw new LmError('bad_argument', `a ${cfg.modelType} config.json cannot express ${lost.map((k) => `${k}=${JSON.stringify(cfg[k])}`).join(', ')}`, {
      fields: lost,
    });
  }
  return json;
}

/** generation_config.json as transformers derives it from config.json, with every eos id (one, or a list). */
export function generationConfigJson(ids: { bosTokenId: number | null; eosTokenIds: readonly number[] }): Record<string, unknown> {
  const eos = ids.eosTokenIds.length === 1 ? ids.eosTokenIds[0] : [...ids.eosTokenIds];
  return { _from_model_config: true, bos_token_id: ids.bosTokenId, eos_token_id: eos };
}
