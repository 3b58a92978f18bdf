// Writes complete Hugging Face-layout model directories with seeded random weights: config.json,
// generation_config.json, safetensors weights (single or sharded) under the exact HF tensor names,
// and a byte-level BPE tokenizer. Tests, benches and the sandbox's pretraining use these instead of
// downloaded checkpoints. Nothing here is new model knowledge: the spec becomes a ModelConfig, the
// architecture's own weight declaration (lm/arch/*) says which tensors exist, their shapes and their
// init, and lm/'s writers lay out config, tokenizer and weight files.
//
// Each tensor is drawn from its own stream, Rng.stream(seed, unprefixed tensor name), so the weights
// do not depend on write order, sharding, name prefixes or dtype; and tensors are produced one at a
// time while writing, so a 124M-parameter model never sits in memory whole.
//
// The constant inits are perturbed: a bias of exactly zero or a norm gain of exactly one would let
// a forward that forgets it agree with the references. Biases are N(0, initializer_range) instead
// of zero, norm gains 1 + N(0, NORM_NOISE) instead of one.
import fs from 'node:fs';
import path from 'node:path';
import { type WeightDecl, DEFAULT_INITIALIZER_RANGE } from '../server/lm/arch/common.ts';
import { CHATML_SPECIALS, CHATML_TEMPLATE } from '../server/lm/chat-template.ts';
import { LmError } from '../server/lm/errors.ts';
import {
  type ModelConfig, type ModelType, type RopeScaling, generationConfigJson, loadModelConfig, modelConfigJson,
} from '../server/lm/model-config.ts';
import { architectureOf } from '../server/lm/model.ts';
import { Rng } from '../server/lm/rng.ts';
import {
  SHARD_INDEX_FILE, SINGLE_WEIGHTS_FILE, type TensorToWrite, type WritableDtype, writeSafetensors, writeShardedSafetensors,
} from '../server/lm/safetensors.ts';
import {
  type ByteLevelTokenizerOptions, type TokenizerFiles, byteLevelTokenizerFiles, byteTokenOrder, bytesToUnicode, writeTokenizerFiles,
} from '../server/lm/tokenizer-files.ts';

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
  /** Llama: mlp_bias (gate, up and down biases). Default false; never for Qwen2 and Mistral. */
  mlpBias?: boolean;
  /** Llama family only. */
  ropeScaling?: RopeScaling;
  /** Mistral, or Qwen2 (then in every layer). Default: none. */
  slidingWindow?: number | null;
  normEps?: number;
  /** initializer_range: the std of weights, embeddings and (see above) biases; default HF's 0.02. */
  initStd?: number;
  /** Special tokens appended after the BPE vocabulary; default CHATML_SPECIALS. */
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

// Far enough from 1 that a missing norm weight is visible.
const NORM_NOISE = 0.1;

interface ResolvedSpec {
  /** Without token ids: those come from the tokenizer. */
  config: ModelConfig;
  dtype: WritableDtype;
  namePrefix: boolean;
  shardBytes: number | null;
  seed: number;
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
  const specials = spec.specials ?? [...CHATML_SPECIALS];
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
  if (isGpt2 && spec.mlpBias === false) throw bad('mlpBias', 'cannot be false for gpt2 (its MLP always has biases)');
  if ((modelType === 'qwen2' || modelType === 'mistral') && spec.mlpBias === true) throw bad('mlpBias', `cannot be true for ${modelType} (no MLP biases)`);
  const mlpBias = isGpt2 || (modelType === 'llama' && spec.mlpBias === true);

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
    config: {
      arch: isGpt2 ? 'gpt2' : 'llama',
      modelType,
      vocabSize,
      hidden,
      layers,
      heads,
      kvHeads,
      headDim,
      intermediate,
      maxPositions,
      normEps: spec.normEps ?? (isGpt2 ? 1e-5 : 1e-6),
      ropeTheta: spec.ropeTheta ?? 10000,
      ropeScaling: spec.ropeScaling ?? null,
      tieWordEmbeddings: spec.tie,
      qkvBias,
      oBias,
      mlpBias,
      slidingWindow,
      bosTokenId: null,
      eosTokenIds: [],
      padTokenId: null,
    },
    dtype,
    namePrefix: spec.namePrefix ?? true,
    shardBytes: spec.shardBytes ?? null,
    seed: spec.seed,
    initStd: spec.initStd ?? DEFAULT_INITIALIZER_RANGE,
    specials,
    chatTemplate: spec.chatTemplate === undefined ? CHATML_TEMPLATE : spec.chatTemplate,
  };
}

/** The architecture's weights under the spec, named as written (with the prefix when namePrefix). */
function plan(s: ResolvedSpec): WeightDecl[] {
  const arch = architectureOf(s.config);
  // lm_head sits beside the `transformer.` / `model.` trunk in HF checkpoints, never inside it
  const prefixed = (name: string): string => (s.namePrefix && name !== 'lm_head.weight' ? arch.weightPrefix + name : name);
  return arch.weights(s.config, s.initStd).map((w) => ({ ...w, name: prefixed(w.name) }));
}

const streamName = (name: string): string => name.replace(/^(transformer|model)\./, '');

function produceTensor(w: WeightDecl, s: ResolvedSpec): Float32Array {
  const out = new Float32Array(w.shape.reduce((a, b) => a * b, 1));
  const rng = Rng.stream(s.seed, streamName(w.name));
  switch (w.init.kind) {
    case 'normal':
      return rng.fillNormal(out, w.init.std);
    case 'zeros':
      return rng.fillNormal(out, s.initStd);
    case 'ones':
      return rng.fillNormal(out, NORM_NOISE, 1);
  }
}

// Merges spell lower-case "words" by frequency of their letters, optionally after the space marker.
const MERGE_LETTERS = 'etaoinshrdlcumwfgypbvkjxqz'.split('');

/**
 * A GPT-2-style byte-level BPE of exactly `vocabSize` entries: 256 byte tokens (ids 0..255),
 * synthetic merges, then `specials` as added tokens with the last ids. Every merge joins two
 * existing tokens into a new one, so the tokenizer encodes any UTF-8 text and decodes it back.
 */
export function makeByteLevelTokenizer(vocabSize: number, specials: string[], opts: ByteLevelTokenizerOptions = {}): TokenizerFiles {
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
  return byteLevelTokenizerFiles(vocab, merges, specials, opts);
}

function removeStaleWeights(dir: string): void {
  for (const f of fs.readdirSync(dir)) {
    if (f === SINGLE_WEIGHTS_FILE || f === SHARD_INDEX_FILE || /^model-\d+-of-\d+\.safetensors$/.test(f)) {
      fs.rmSync(path.join(dir, f), { force: true });
    }
  }
}

const writeJson = (file: string, value: unknown): void => fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');

const TORCH_DTYPE: Record<WritableDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** Writes a complete HF-layout model directory with seeded random weights; see RandomModelSpec. */
export function writeRandomModel(dir: string, spec: RandomModelSpec): RandomModelResult {
  const s = resolveSpec(spec);
  const weights = plan(s);
  fs.mkdirSync(dir, { recursive: true });
  removeStaleWeights(dir);

  const tokenizer = makeByteLevelTokenizer(s.config.vocabSize, s.specials, { chatTemplate: s.chatTemplate, modelMaxLength: s.config.maxPositions });
  const idOf = (t: string | null): number | null => (t === null ? null : tokenizer.tokenizerJson.added_tokens.find((a) => a.content === t)?.id ?? null);
  const eos = idOf(tokenizer.tokenizerConfigJson.eos_token);
  const eot = idOf(s.specials.includes('<|endoftext|>') ? '<|endoftext|>' : null);
  const bosTokenId = idOf(tokenizer.tokenizerConfigJson.bos_token);
  // config.json names the document end like pretrained checkpoints; generation adds the chat end
  const configEos = eot ?? eos;
  const config: ModelConfig = { ...s.config, bosTokenId, eosTokenIds: configEos === null ? [] : [configEos] };
  writeJson(path.join(dir, 'config.json'), modelConfigJson(config, { initializerRange: s.initStd, torchDtype: TORCH_DTYPE[s.dtype] }));
  writeJson(path.join(dir, 'generation_config.json'), generationConfigJson({
    bosTokenId,
    eosTokenIds: [...new Set([eos, eot].filter((x): x is number => x !== null))],
  }));
  writeTokenizerFiles(dir, tokenizer);

  const tensors: TensorToWrite[] = weights.map((w) => ({ name: w.name, shape: w.shape, produce: () => produceTensor(w, s) }));
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
    weightNames: weights.map((w) => w.name),
    parameterCount: weights.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0),
    weightFiles,
  };
}
