// Writes complete Hugging Face-layout model directories with seeded random weights: config.json,
// generation_config.json, safetensors weights (single or sharded) under the exact HF tensor names,
// and a byte-level BPE tokenizer. Tests and benches use these instead of downloaded checkpoints.
//
// Each tensor is generated from its own PRNG stream, seeded from (seed, unprefixed tensor name),
// so the weights do not depend on write order, sharding, name prefixes or dtype; and tensors are
// produced one at a time while writing, so a 124M-parameter model never sits in memory whole.
import fs from 'node:fs';
import path from 'node:path';
import { LmError } from './errors.ts';
import { loadModelConfig, type ModelConfig, type ModelType, type RopeScaling } from './model-config.ts';
import {
  SHARD_INDEX_FILE,
  SINGLE_WEIGHTS_FILE,
  writeSafetensors,
  writeShardedSafetensors,
  type TensorToWrite,
  type WritableDtype,
} from './safetensors.ts';

export interface RandomModelSpec {
  modelType: ModelType;
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads?: number;
  headDim?: number;
  /** MLP width; default 4*hidden for gpt2, ~8/3*hidden (multiple of 8) for the Llama family. */
  intermediate?: number;
  maxPositions: number;
  tie: boolean;
  dtype?: WritableDtype;
  /** true (default): 'transformer.' / 'model.' prefixes as real checkpoints; false: bare names. */
  namePrefix?: boolean;
  /** When set, write shards of at most this many bytes plus model.safetensors.index.json. */
  shardBytes?: number;
  seed: number;
  ropeTheta?: number;
  /** Llama: attention_bias (q, k, v and o biases). Qwen2 always has q/k/v biases; Mistral never. */
  qkvBias?: boolean;
  /** Llama family only. */
  ropeScaling?: RopeScaling;
  /** Mistral, or Qwen2 (then in every layer). Default: none. */
  slidingWindow?: number | null;
  normEps?: number;
  /** Standard deviation of weights, embeddings and biases; default 0.02 as HF's initializer_range. */
  initStd?: number;
  /** Special tokens appended after the BPE vocabulary; default ChatML's three. */
  specials?: string[];
  /** Chat template for tokenizer_config.json; null omits it; default CHATML_TEMPLATE. */
  chatTemplate?: string | null;
}

export interface RandomModelResult {
  dir: string;
  config: ModelConfig;
  /** Tensor names as written (with prefixes when namePrefix). */
  weightNames: string[];
  parameterCount: number;
  /** Weight files written (one file, or the shards followed by the index). */
  weightFiles: string[];
}

/** A tensor of the model to generate, with the HF name (without prefix) and its init. */
export interface RandomTensorPlan {
  name: string;
  shape: number[];
  init: { kind: 'normal'; std: number } | { kind: 'ones_noise'; std: number };
}

export const DEFAULT_SPECIALS: readonly string[] = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

export const CHATML_TEMPLATE =
  "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

// Norm weights are 1 + N(0, NORM_NOISE): far enough from 1 that a missing norm weight is visible.
const NORM_NOISE = 0.1;

// ---------------------------------------------------------------------------------------------
// Seeded randomness: sfc32 seeded through splitmix32, normals by Marsaglia's polar method.

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** sfc32 state for the given seed and stream name, warmed up. */
function sfc32State(seed: number, stream: string): Uint32Array {
  const mix = splitmix32((Math.imul(seed | 0, 0x9e3779b1) ^ fnv1a(stream)) >>> 0);
  const st = new Uint32Array([mix(), mix(), mix(), 1]);
  for (let i = 0; i < 12; i++) sfc32Step(st);
  return st;
}

function sfc32Step(st: Uint32Array): number {
  const a = st[0]! | 0;
  const b = st[1]! | 0;
  const c = st[2]! | 0;
  const d = st[3]! | 0;
  const t = (((a + b) | 0) + d) | 0;
  st[3] = (d + 1) | 0;
  st[0] = b ^ (b >>> 9);
  st[1] = (c + (c << 3)) | 0;
  st[2] = (((c << 21) | (c >>> 11)) + t) | 0;
  return t >>> 0;
}

/** A deterministic uint32 generator (sfc32) for the given seed and stream name. */
export function seededUint32(seed: number, stream: string): () => number {
  const st = sfc32State(seed, stream);
  return () => sfc32Step(st);
}

// Marsaglia & Tsang's ziggurat (128 layers) for standard normals: about 97% of samples cost one
// uint32, one comparison and one multiply, which is what makes a 124M-parameter model quick to
// write. Unlike the original RNOR the layer index, sign and magnitude use disjoint bits.
const ZIG_R = 3.442619855899;
const ZIG_V = 9.91256303526217e-3;
const ZIG_M = 2 ** 24;
const zigK = new Uint32Array(128);
const zigW = new Float64Array(128);
const zigF = new Float64Array(128);
{
  const q = ZIG_V / Math.exp(-0.5 * ZIG_R * ZIG_R);
  zigK[0] = Math.floor((ZIG_R / q) * ZIG_M);
  zigK[1] = 0;
  zigW[0] = q / ZIG_M;
  zigW[127] = ZIG_R / ZIG_M;
  zigF[0] = 1;
  zigF[127] = Math.exp(-0.5 * ZIG_R * ZIG_R);
  let dn = ZIG_R;
  let tn = ZIG_R;
  for (let i = 126; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(ZIG_V / dn + Math.exp(-0.5 * dn * dn)));
    zigK[i + 1] = Math.floor((dn / tn) * ZIG_M);
    tn = dn;
    zigF[i] = Math.exp(-0.5 * dn * dn);
    zigW[i] = dn / ZIG_M;
  }
}

/** The rare ziggurat cases (wedges and the tail), given a rejected first draw `u`. */
function zigguratSlow(st: Uint32Array, first: number): number {
  let u = first;
  for (;;) {
    const iz = u & 127;
    const j = u >>> 8;
    const sign = (u & 128) !== 0 ? -1 : 1;
    if (j < zigK[iz]!) return sign * j * zigW[iz]!;
    if (iz === 0) {
      let x: number;
      let y: number;
      do {
        x = -Math.log((sfc32Step(st) + 0.5) / 4294967296) / ZIG_R; // uniform in (0, 1)
        y = -Math.log((sfc32Step(st) + 0.5) / 4294967296);
      } while (y + y < x * x);
      return sign * (ZIG_R + x);
    }
    const x = j * zigW[iz]!;
    const uniform = (sfc32Step(st) + 0.5) / 4294967296;
    if (zigF[iz]! + uniform * (zigF[iz - 1]! - zigF[iz]!) < Math.exp(-0.5 * x * x)) return sign * x;
    u = sfc32Step(st);
  }
}

/** Fills `out` with N(mean, std) samples from the (seed, stream) generator. */
export function fillNormal(out: Float32Array, seed: number, stream: string, std: number, mean = 0): Float32Array {
  const st = sfc32State(seed, stream);
  // sfc32 inlined on locals for the fast path; the slow path steps the same state in `st`
  let a = st[0]! | 0;
  let b = st[1]! | 0;
  let c = st[2]! | 0;
  let d = st[3]! | 0;
  const n = out.length;
  for (let i = 0; i < n; i++) {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (((c << 21) | (c >>> 11)) + t) | 0;
    const iz = t & 127;
    const j = t >>> 8;
    let z: number;
    if (j < zigK[iz]!) {
      z = (t & 128) !== 0 ? -j * zigW[iz]! : j * zigW[iz]!;
    } else {
      st[0] = a;
      st[1] = b;
      st[2] = c;
      st[3] = d;
      z = zigguratSlow(st, t >>> 0);
      a = st[0]! | 0;
      b = st[1]! | 0;
      c = st[2]! | 0;
      d = st[3]! | 0;
    }
    out[i] = mean + z * std;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Spec validation and the tensor plan

interface ResolvedSpec {
  modelType: ModelType;
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  maxPositions: number;
  tie: boolean;
  dtype: WritableDtype;
  namePrefix: boolean;
  shardBytes: number | null;
  seed: number;
  ropeTheta: number;
  qkvBias: boolean;
  oBias: boolean;
  ropeScaling: RopeScaling;
  slidingWindow: number | null;
  normEps: number;
  initStd: number;
  specials: string[];
  chatTemplate: string | null;
}

function bad(field: string, why: string): LmError {
  return new LmError('bad_argument', `random model spec: '${field}' ${why}`, { field });
}

function requirePositiveInt(value: unknown, field: string): number {
  if (!Number.isSafeInteger(value) || (value as number) <= 0) throw bad(field, `must be a positive integer, got ${JSON.stringify(value)}`);
  return value as number;
}

function resolveSpec(spec: RandomModelSpec): ResolvedSpec {
  const modelType = spec.modelType;
  if (!['gpt2', 'llama', 'qwen2', 'mistral'].includes(modelType)) {
    throw bad('modelType', `must be one of gpt2, llama, qwen2, mistral, got ${JSON.stringify(modelType)}`);
  }
  const vocabSize = requirePositiveInt(spec.vocabSize, 'vocabSize');
  const hidden = requirePositiveInt(spec.hidden, 'hidden');
  const layers = requirePositiveInt(spec.layers, 'layers');
  const heads = requirePositiveInt(spec.heads, 'heads');
  const maxPositions = requirePositiveInt(spec.maxPositions, 'maxPositions');
  if (!Number.isSafeInteger(spec.seed)) throw bad('seed', `must be an integer, got ${JSON.stringify(spec.seed)}`);
  const kvHeads = spec.kvHeads === undefined ? heads : requirePositiveInt(spec.kvHeads, 'kvHeads');
  const dtype = spec.dtype ?? 'F32';
  if (!['F32', 'F16', 'BF16'].includes(dtype)) throw bad('dtype', `must be F32, F16 or BF16, got ${JSON.stringify(dtype)}`);
  const specials = spec.specials ?? [...DEFAULT_SPECIALS];
  const isGpt2 = modelType === 'gpt2';

  let headDim: number;
  if (isGpt2) {
    if (hidden % heads !== 0) throw bad('heads', `(${heads}) must divide hidden (${hidden}) for gpt2`);
    headDim = hidden / heads;
    if (spec.headDim !== undefined && spec.headDim !== headDim) throw bad('headDim', `must be hidden/heads (${headDim}) for gpt2`);
    if (kvHeads !== heads) throw bad('kvHeads', `must equal heads for gpt2`);
    if (spec.ropeScaling) throw bad('ropeScaling', 'is not supported for gpt2');
  } else {
    if (heads % kvHeads !== 0) throw bad('kvHeads', `(${kvHeads}) must divide heads (${heads})`);
    if (spec.headDim === undefined && hidden % heads !== 0) throw bad('heads', `(${heads}) must divide hidden (${hidden}) unless headDim is given`);
    headDim = spec.headDim === undefined ? hidden / heads : requirePositiveInt(spec.headDim, 'headDim');
    if (headDim % 2 !== 0) throw bad('headDim', `(${headDim}) must be even for rotary embeddings`);
  }

  let qkvBias: boolean;
  let oBias: boolean;
  if (isGpt2) {
    if (spec.qkvBias === false) throw bad('qkvBias', 'cannot be false for gpt2 (its attention always has biases)');
    qkvBias = oBias = true;
  } else if (modelType === 'qwen2') {
    if (spec.qkvBias === false) throw bad('qkvBias', 'cannot be false for qwen2 (q/k/v projections always have biases)');
    qkvBias = true;
    oBias = false;
  } else if (modelType === 'mistral') {
    if (spec.qkvBias === true) throw bad('qkvBias', 'cannot be true for mistral (no attention biases)');
    qkvBias = oBias = false;
  } else {
    qkvBias = oBias = spec.qkvBias ?? false;
  }

  const slidingWindow = spec.slidingWindow ?? null;
  if (slidingWindow !== null) {
    requirePositiveInt(slidingWindow, 'slidingWindow');
    if (modelType !== 'mistral' && modelType !== 'qwen2') throw bad('slidingWindow', `is only supported for mistral and qwen2, not ${modelType}`);
  }
  const intermediate =
    spec.intermediate !== undefined
      ? requirePositiveInt(spec.intermediate, 'intermediate')
      : isGpt2
        ? 4 * hidden
        : Math.ceil((8 * hidden) / 3 / 8) * 8;
  if (spec.shardBytes !== undefined) requirePositiveInt(spec.shardBytes, 'shardBytes');
  if (vocabSize < 256 + specials.length) {
    throw bad('vocabSize', `(${vocabSize}) must be at least 256 byte tokens + ${specials.length} special tokens`);
  }
  return {
    modelType,
    vocabSize,
    hidden,
    layers,
    heads,
    kvHeads,
    headDim,
    intermediate,
    maxPositions,
    tie: spec.tie,
    dtype,
    namePrefix: spec.namePrefix ?? true,
    shardBytes: spec.shardBytes ?? null,
    seed: spec.seed,
    ropeTheta: spec.ropeTheta ?? 10000,
    qkvBias,
    oBias,
    ropeScaling: spec.ropeScaling ?? null,
    slidingWindow,
    normEps: spec.normEps ?? (isGpt2 ? 1e-5 : 1e-6),
    initStd: spec.initStd ?? 0.02,
    specials,
    chatTemplate: spec.chatTemplate === undefined ? CHATML_TEMPLATE : spec.chatTemplate,
  };
}

function gpt2Plan(s: ResolvedSpec): RandomTensorPlan[] {
  const { vocabSize: V, hidden: H, intermediate: I, maxPositions: P } = s;
  const w = { kind: 'normal', std: s.initStd } as const;
  // GPT-2 scales residual projections by 1/sqrt(2 * n_layer) at init, as HF does.
  const wProj = { kind: 'normal', std: s.initStd / Math.sqrt(2 * s.layers) } as const;
  const norm = { kind: 'ones_noise', std: NORM_NOISE } as const;
  const plan: RandomTensorPlan[] = [
    { name: 'wte.weight', shape: [V, H], init: w },
    { name: 'wpe.weight', shape: [P, H], init: w },
  ];
  for (let i = 0; i < s.layers; i++) {
    const p = `h.${i}.`;
    plan.push(
      { name: `${p}ln_1.weight`, shape: [H], init: norm },
      { name: `${p}ln_1.bias`, shape: [H], init: w },
      { name: `${p}attn.c_attn.weight`, shape: [H, 3 * H], init: w },
      { name: `${p}attn.c_attn.bias`, shape: [3 * H], init: w },
      { name: `${p}attn.c_proj.weight`, shape: [H, H], init: wProj },
      { name: `${p}attn.c_proj.bias`, shape: [H], init: w },
      { name: `${p}ln_2.weight`, shape: [H], init: norm },
      { name: `${p}ln_2.bias`, shape: [H], init: w },
      { name: `${p}mlp.c_fc.weight`, shape: [H, I], init: w },
      { name: `${p}mlp.c_fc.bias`, shape: [I], init: w },
      { name: `${p}mlp.c_proj.weight`, shape: [I, H], init: wProj },
      { name: `${p}mlp.c_proj.bias`, shape: [H], init: w },
    );
  }
  plan.push({ name: 'ln_f.weight', shape: [H], init: norm }, { name: 'ln_f.bias', shape: [H], init: w });
  return plan;
}

function llamaPlan(s: ResolvedSpec): RandomTensorPlan[] {
  const { vocabSize: V, hidden: H, intermediate: I, heads, kvHeads, headDim: D } = s;
  const w = { kind: 'normal', std: s.initStd } as const;
  const norm = { kind: 'ones_noise', std: NORM_NOISE } as const;
  const plan: RandomTensorPlan[] = [{ name: 'embed_tokens.weight', shape: [V, H], init: w }];
  for (let i = 0; i < s.layers; i++) {
    const p = `layers.${i}.`;
    plan.push({ name: `${p}input_layernorm.weight`, shape: [H], init: norm });
    for (const [proj, rows] of [['q_proj', heads * D], ['k_proj', kvHeads * D], ['v_proj', kvHeads * D]] as const) {
      plan.push({ name: `${p}self_attn.${proj}.weight`, shape: [rows, H], init: w });
      if (s.qkvBias) plan.push({ name: `${p}self_attn.${proj}.bias`, shape: [rows], init: w });
    }
    plan.push({ name: `${p}self_attn.o_proj.weight`, shape: [H, heads * D], init: w });
    if (s.oBias) plan.push({ name: `${p}self_attn.o_proj.bias`, shape: [H], init: w });
    plan.push(
      { name: `${p}post_attention_layernorm.weight`, shape: [H], init: norm },
      { name: `${p}mlp.gate_proj.weight`, shape: [I, H], init: w },
      { name: `${p}mlp.up_proj.weight`, shape: [I, H], init: w },
      { name: `${p}mlp.down_proj.weight`, shape: [H, I], init: w },
    );
  }
  plan.push({ name: 'norm.weight', shape: [H], init: norm });
  return plan;
}

/** The full list of tensors (HF names with prefixes as configured) that writeRandomModel writes. */
export function randomModelPlan(spec: RandomModelSpec): RandomTensorPlan[] {
  const s = resolveSpec(spec);
  const isGpt2 = s.modelType === 'gpt2';
  const prefix = s.namePrefix ? (isGpt2 ? 'transformer.' : 'model.') : '';
  const body = (isGpt2 ? gpt2Plan(s) : llamaPlan(s)).map((t) => ({ ...t, name: prefix + t.name }));
  if (!s.tie) body.push({ name: 'lm_head.weight', shape: [s.vocabSize, s.hidden], init: { kind: 'normal', std: s.initStd } });
  return body;
}

const streamName = (name: string): string => name.replace(/^(transformer|model)\./, '');

function produceTensor(t: RandomTensorPlan, seed: number): Float32Array {
  const out = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
  const stream = streamName(t.name);
  return t.init.kind === 'normal' ? fillNormal(out, seed, stream, t.init.std) : fillNormal(out, seed, stream, t.init.std, 1);
}

// ---------------------------------------------------------------------------------------------
// config.json / generation_config.json

const TORCH_DTYPE: Record<WritableDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

interface TokenIds {
  bos: number | null;
  eos: number | null;
  eosAll: number[];
  pad: number | null;
}

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

function configJson(s: ResolvedSpec, ids: TokenIds): Record<string, unknown> {
  const common = {
    vocab_size: s.vocabSize,
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    tie_word_embeddings: s.tie,
    initializer_range: s.initStd,
    torch_dtype: TORCH_DTYPE[s.dtype],
  };
  if (s.modelType === 'gpt2') {
    return {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      n_embd: s.hidden,
      n_layer: s.layers,
      n_head: s.heads,
      n_positions: s.maxPositions,
      n_ctx: s.maxPositions,
      n_inner: s.intermediate === 4 * s.hidden ? null : s.intermediate,
      activation_function: 'gelu_new',
      layer_norm_epsilon: s.normEps,
      ...common,
    };
  }
  const llamaCommon = {
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    head_dim: s.headDim,
    max_position_embeddings: s.maxPositions,
    rms_norm_eps: s.normEps,
    rope_theta: s.ropeTheta,
    rope_scaling: hfRopeScaling(s.ropeScaling),
    hidden_act: 'silu',
    ...common,
  };
  switch (s.modelType) {
    case 'llama':
      return { architectures: ['LlamaForCausalLM'], model_type: 'llama', ...llamaCommon, attention_bias: s.qkvBias, mlp_bias: false };
    case 'qwen2':
      return {
        architectures: ['Qwen2ForCausalLM'],
        model_type: 'qwen2',
        ...llamaCommon,
        use_sliding_window: s.slidingWindow !== null,
        sliding_window: s.slidingWindow ?? s.maxPositions,
        max_window_layers: s.slidingWindow !== null ? 0 : s.layers,
      };
    case 'mistral':
      return { architectures: ['MistralForCausalLM'], model_type: 'mistral', ...llamaCommon, sliding_window: s.slidingWindow };
  }
}

// ---------------------------------------------------------------------------------------------
// Byte-level BPE tokenizer

/** GPT-2's reversible map from each byte to a printable character (bytes_to_unicode). */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map: string[] = new Array<string>(256);
  for (const b of printable) map[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (map[b] === undefined) map[b] = String.fromCharCode(256 + n++);
  }
  return map;
}

/** The byte order GPT-2 uses for ids 0..255: printable bytes first, then the rest. */
function byteTokenOrder(): number[] {
  const order: number[] = [];
  const isPrintable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  for (let b = 0; b < 256; b++) if (isPrintable(b)) order.push(b);
  for (let b = 0; b < 256; b++) if (!isPrintable(b)) order.push(b);
  return order;
}

export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export interface TokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: null;
  pre_tokenizer: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  post_processor: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  decoder: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: string;
    end_of_word_suffix: string;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: Array<[string, string]>;
  };
}

export interface TokenizerConfigJson {
  add_bos_token: boolean;
  add_eos_token: boolean;
  add_prefix_space: boolean;
  added_tokens_decoder: Record<string, Omit<AddedTokenJson, 'id'>>;
  bos_token: string | null;
  eos_token: string | null;
  pad_token: string | null;
  unk_token: string | null;
  clean_up_tokenization_spaces: boolean;
  errors: string;
  model_max_length: number;
  tokenizer_class: string;
  chat_template?: string;
}

/**
 * A GPT-2-style byte-level BPE tokenizer.json: ByteLevel pre-tokenizer, post-processor and decoder,
 * the given vocab and merges, and the specials as added tokens from id `firstSpecialId` on.
 */
export function byteLevelBpeTokenizerJson(
  vocab: TokenizerJson['model']['vocab'], merges: TokenizerJson['model']['merges'], specials: readonly string[], firstSpecialId: number,
): TokenizerJson {
  const added: AddedTokenJson[] = specials.map((content, k) => ({
    id: firstSpecialId + k,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const byteLevel = { type: 'ByteLevel' as const, add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

export interface ByteLevelTokenizerOptions {
  /** Default CHATML_TEMPLATE; null omits chat_template. */
  chatTemplate?: string | null;
  /** Defaults: bos '<|endoftext|>' if among specials; eos '<|im_end|>', else '<|endoftext|>', else the first special. */
  bosToken?: string | null;
  eosToken?: string | null;
  padToken?: string | null;
  modelMaxLength?: number;
}

// Merges spell lower-case "words" by frequency of their letters, optionally after the space marker.
const MERGE_LETTERS = 'etaoinshrdlcumwfgypbvkjxqz'.split('');

/**
 * A GPT-2-style byte-level BPE of exactly `vocabSize` entries: 256 byte tokens (ids 0..255),
 * synthetic merges, then `specials` as added tokens with the last ids. Every merge joins two
 * existing tokens into a new one, so the tokenizer encodes any UTF-8 text and decodes it back.
 */
export function makeByteLevelTokenizer(
  vocabSize: number,
  specials: string[],
  opts: ByteLevelTokenizerOptions = {},
): { tokenizerJson: TokenizerJson; tokenizerConfigJson: TokenizerConfigJson } {
  if (!Number.isSafeInteger(vocabSize) || vocabSize < 256 + specials.length) {
    throw new LmError('bad_argument', `makeByteLevelTokenizer: vocabSize (${vocabSize}) must be an integer of at least 256 + ${specials.length} (specials)`, {
      vocabSize,
    });
  }
  const byteChar = bytesToUnicode();
  const vocab: Record<string, number> = {};
  const known = new Set<string>();
  byteTokenOrder().forEach((b, id) => {
    vocab[byteChar[b]!] = id;
    known.add(byteChar[b]!);
  });
  for (const sp of specials) {
    if (known.has(sp) || sp.length === 0) {
      throw new LmError('bad_argument', `makeByteLevelTokenizer: special token ${JSON.stringify(sp)} is empty or a byte token`, { special: sp });
    }
  }
  if (new Set(specials).size !== specials.length) {
    throw new LmError('bad_argument', `makeByteLevelTokenizer: duplicate special tokens in ${JSON.stringify(specials)}`, { specials });
  }

  const mergeCount = vocabSize - 256 - specials.length;
  const merges: Array<[string, string]> = [];
  let nextId = 256;
  // Breadth-first over words: level 1 is the space marker and single letters; each later level
  // extends every token of the previous level by one letter, so both parts always exist already.
  let level: string[] = [byteChar[0x20]!, ...MERGE_LETTERS];
  outer: while (merges.length < mergeCount) {
    const nextLevel: string[] = [];
    for (const left of level) {
      for (const letter of MERGE_LETTERS) {
        if (merges.length >= mergeCount) break outer;
        const merged = left + letter;
        if (known.has(merged)) continue;
        merges.push([left, letter]);
        vocab[merged] = nextId++;
        known.add(merged);
        nextLevel.push(merged);
      }
    }
    level = nextLevel;
  }

  const tokenizerJson = byteLevelBpeTokenizerJson(vocab, merges, specials, nextId);

  const pick = (wanted: string[]): string | null => wanted.find((t) => specials.includes(t)) ?? null;
  const checkSpecial = (v: string | null | undefined, field: string): string | null => {
    if (v === undefined) return null;
    if (v !== null && !specials.includes(v)) {
      throw new LmError('bad_argument', `makeByteLevelTokenizer: ${field} ${JSON.stringify(v)} is not among the special tokens`, { field });
    }
    return v;
  };
  const bos = opts.bosToken !== undefined ? checkSpecial(opts.bosToken, 'bosToken') : pick(['<|endoftext|>']);
  const eos = opts.eosToken !== undefined ? checkSpecial(opts.eosToken, 'eosToken') : pick(['<|im_end|>', '<|endoftext|>']) ?? specials[0] ?? null;
  const pad = checkSpecial(opts.padToken, 'padToken');
  const addedDecoder: Record<string, Omit<AddedTokenJson, 'id'>> = {};
  for (const { id, ...rest } of tokenizerJson.added_tokens) addedDecoder[String(id)] = rest;
  const tokenizerConfigJson: TokenizerConfigJson = {
    add_bos_token: false,
    add_eos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: addedDecoder,
    bos_token: bos,
    eos_token: eos,
    pad_token: pad,
    unk_token: null,
    // true would rewrite " ." to "." etc. on decode and break the byte-exact round trip
    clean_up_tokenization_spaces: false,
    errors: 'replace',
    model_max_length: opts.modelMaxLength ?? 1024,
    tokenizer_class: 'GPT2Tokenizer',
  };
  const template = opts.chatTemplate === undefined ? CHATML_TEMPLATE : opts.chatTemplate;
  if (template !== null) tokenizerConfigJson.chat_template = template;
  return { tokenizerJson, tokenizerConfigJson };
}

// ---------------------------------------------------------------------------------------------
// The directory

function removeStaleWeights(dir: string): void {
  for (const f of fs.readdirSync(dir)) {
    if (f === SINGLE_WEIGHTS_FILE || f === SHARD_INDEX_FILE || /^model-\d+-of-\d+\.safetensors$/.test(f)) {
      fs.rmSync(path.join(dir, f), { force: true });
    }
  }
}

const writeJson = (file: string, value: unknown): void => fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');

/** Writes a complete HF-layout model directory with seeded random weights; see RandomModelSpec. */
export function writeRandomModel(dir: string, spec: RandomModelSpec): RandomModelResult {
  const s = resolveSpec(spec);
  const plan = randomModelPlan(spec);
  fs.mkdirSync(dir, { recursive: true });
  removeStaleWeights(dir);

  const { tokenizerJson, tokenizerConfigJson } = makeByteLevelTokenizer(s.vocabSize, s.specials, {
    chatTemplate: s.chatTemplate,
    modelMaxLength: s.maxPositions,
  });
  const idOf = (t: string | null): number | null => (t === null ? null : tokenizerJson.added_tokens.find((a) => a.content === t)?.id ?? null);
  const eos = idOf(tokenizerConfigJson.eos_token);
  const eot = idOf(s.specials.includes('<|endoftext|>') ? '<|endoftext|>' : null);
  const ids: TokenIds = {
    bos: idOf(tokenizerConfigJson.bos_token),
    // config.json names the document end like pretrained checkpoints; generation adds the chat end
    eos: eot ?? eos,
    eosAll: [...new Set([eos, eot].filter((x): x is number => x !== null))],
    pad: null,
  };
  writeJson(path.join(dir, 'config.json'), configJson(s, ids));
  writeJson(path.join(dir, 'generation_config.json'), {
    _from_model_config: true,
    bos_token_id: ids.bos,
    eos_token_id: ids.eosAll.length === 1 ? ids.eosAll[0] : ids.eosAll,
  });
  writeJson(path.join(dir, 'tokenizer.json'), tokenizerJson);
  writeJson(path.join(dir, 'tokenizer_config.json'), tokenizerConfigJson);

  const tensors: TensorToWrite[] = plan.map((t) => ({ name: t.name, shape: t.shape, produce: () => produceTensor(t, s.seed) }));
  let weightFiles: string[];
  if (s.shardBytes !== null) {
    const r = writeShardedSafetensors(dir, tensors, s.shardBytes, { dtype: s.dtype });
    weightFiles = [...r.shardFiles, r.indexPath];
  } else {
    const file = path.join(dir, SINGLE_WEIGHTS_FILE);
    writeSafetensors(file, tensors, { dtype: s.dtype, metadata: { format: 'pt' } });
    weightFiles = [file];
  }
  return {
    dir,
    config: loadModelConfig(dir),
    weightNames: plan.map((t) => t.name),
    parameterCount: plan.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0),
    weightFiles,
  };
}
