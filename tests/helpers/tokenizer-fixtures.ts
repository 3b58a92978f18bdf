// Small, hand-built tokenizer directories in the two shapes Attune meets in practice:
// a GPT-2 style byte-level BPE and a Llama/sentencepiece style Metaspace BPE with byte fallback.
// They are written into fresh temp dirs, through lm/'s tokenizer-file writer, so tests exercise the
// real file-loading path.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHATML_SPECIALS } from '../../server/lm/chat-template.ts';
import { byteLevelTokenizerJson, byteTokenOrder, bytesToUnicode, specialAddedTokens, writeTokenizerFiles } from '../../server/lm/tokenizer-files.ts';

/** GPT-2's bytes_to_unicode, as a byte → char table, and the byte order GPT-2 uses for ids 0..255. */
export function gpt2ByteAlphabet(): { byteToChar: string[]; byteOrder: number[] } {
  return { byteToChar: bytesToUnicode(), byteOrder: byteTokenOrder() };
}

function byteLevel(text: string | number[], byteToChar: string[]): string {
  const bytes = typeof text === 'string' ? [...Buffer.from(text, 'utf8')] : text;
  return bytes.map((b) => byteToChar[b]).join('');
}

export interface FixtureDir {
  dir: string;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

function writeFixture(
  tokenizerJson: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>,
  prefix: string,
): FixtureDir {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeTokenizerFiles(dir, { tokenizerJson, tokenizerConfigJson: tokenizerConfig });
  return { dir, tokenizerJson, tokenizerConfig };
}

/**
 * GPT-2 style (tokenizer.json as the BPE trainer and random models write it), with no chat template:
 * ids 0..255 are the byte alphabet in GPT-2's order, then merged tokens, then ChatML's special
 * tokens. Some merges deliberately produce tokens that end in the middle of a multi-byte character
 * (the first two bytes of 你, the first three of 😀), as real vocabularies do.
 */
export function writeByteLevelFixture(configExtra: Record<string, unknown> = {}): FixtureDir {
  const { byteToChar, byteOrder } = gpt2ByteAlphabet();
  const vocab: Record<string, number> = {};
  byteOrder.forEach((b, i) => {
    vocab[byteToChar[b]] = i;
  });
  const mergeSpecs: Array<[string | number[], string | number[]]> = [
    [' ', 't'],
    ['h', 'e'],
    [' t', 'he'],
    [' ', 'a'],
    ['i', 'n'],
    [' ', 'w'],
    ['o', 'r'],
    [' w', 'or'],
    ['l', 'l'],
    ['e', 'll'],
    ['H', 'ell'],
    ['Hell', 'o'],
    ['\n', '\n'],
    [[0xc3], [0xa9]], // é
    [[0xe4], [0xbd]], // first two bytes of 你 (E4 BD A0)
    [[0xf0], [0x9f]], // first two bytes of most emoji
    [[0xf0, 0x9f], [0x98]], // first three bytes of 😀 (F0 9F 98 80)
  ];
  const merges: Array<[string, string]> = [];
  for (const [a, b] of mergeSpecs) {
    const left = byteLevel(a, byteToChar);
    const right = byteLevel(b, byteToChar);
    merges.push([left, right]);
    const merged = left + right;
    if (vocab[merged] === undefined) vocab[merged] = Object.keys(vocab).length;
  }
  const tokenizerJson = { ...byteLevelTokenizerJson(vocab, merges, CHATML_SPECIALS) };
  // GPT-2's own tokenizer_config.json, rather than the writer's: no chat template, clean-up on.
  const tokenizerConfig = {
    add_bos_token: false,
    add_prefix_space: false,
    bos_token: '<|endoftext|>',
    eos_token: '<|endoftext|>',
    unk_token: '<|endoftext|>',
    clean_up_tokenization_spaces: true,
    model_max_length: 1024,
    tokenizer_class: 'GPT2Tokenizer',
    ...configExtra,
  };
  return writeFixture(tokenizerJson, tokenizerConfig, 'attune-tok-bytelevel-');
}

/** A Zephyr-like template (TinyLlama-chat style) that starts with the BOS text. */
export const ZEPHYR_LIKE_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

/**
 * Llama / sentencepiece style: <unk>, <s>, </s>, then the 256 <0xNN> byte tokens, then pieces with
 * '▁' standing for a space. Anything not in the vocabulary (CJK, emoji, '\n') falls back to bytes.
 */
export function writeMetaspaceFixture(configExtra: Record<string, unknown> = {}): FixtureDir {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  const add = (piece: string): void => {
    if (vocab[piece] === undefined) vocab[piece] = Object.keys(vocab).length;
  };
  const chars = ['▁', ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?\'-', 'é'];
  chars.forEach(add);
  const mergePairs: Array<[string, string]> = [
    ['▁', 't'],
    ['h', 'e'],
    ['▁t', 'he'],
    ['▁', 'a'],
    ['i', 'n'],
    ['e', 'r'],
    ['▁', 'w'],
    ['o', 'r'],
    ['▁w', 'or'],
    ['l', 'l'],
    ['▁', 'H'],
    ['e', 'll'],
    ['▁H', 'ell'],
    ['▁Hell', 'o'],
    ['▁', 'é'],
  ];
  for (const [a, b] of mergePairs) add(a + b);
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialAddedTokens(['<unk>', '<s>', '</s>'], 0),
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: mergePairs.map(([a, b]) => [a, b]),
    },
  };
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: { __type: 'AddedToken', content: '<s>', lstrip: false, normalized: false, rstrip: false, single_word: false },
    eos_token: '</s>',
    unk_token: '<unk>',
    legacy: false,
    clean_up_tokenization_spaces: false,
    chat_template: ZEPHYR_LIKE_TEMPLATE,
    tokenizer_class: 'LlamaTokenizer',
    ...configExtra,
  };
  return writeFixture(tokenizerJson, tokenizerConfig, 'attune-tok-metaspace-');
}

/** Llama 3's chat template (meta-llama/Meta-Llama-3-8B-Instruct), as shipped. */
export const LLAMA3_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

export const LLAMA3_SPECIALS = ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'] as const;

// Llama 3's pre-tokenizer split (tiktoken cl100k-style).
const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * Llama 3 style: byte-level BPE with `ignore_merges`, the regex Split pre-tokenizer, a post-processor
 * that adds <|begin_of_text|>, the header/eot special tokens and Llama 3's own chat template.
 */
export function writeLlama3Fixture(configExtra: Record<string, unknown> = {}): FixtureDir {
  const { byteToChar, byteOrder } = gpt2ByteAlphabet();
  const vocab: Record<string, number> = {};
  byteOrder.forEach((b, i) => {
    vocab[byteToChar[b]] = i;
  });
  const pairs: Array<[string, string]> = [
    ['u', 's'], ['us', 'e'], ['use', 'r'], ['Ġ', 't'], ['h', 'e'], ['Ġt', 'he'], ['e', 'o'], ['eo', 't'], ['_', 'i'], ['_i', 'd'],
    ['<', '|'], ['|', '>'], ['Ċ', 'Ċ'], ['s', 'y'], ['sy', 's'], ['sys', 't'], ['syst', 'e'], ['syste', 'm'],
  ];
  const merges = pairs.map(([a, b]) => {
    if (vocab[a + b] === undefined) vocab[a + b] = Object.keys(vocab).length;
    return `${a} ${b}`;
  });
  const addedTokens = specialAddedTokens(LLAMA3_SPECIALS, Object.keys(vocab).length);
  const bos = addedTokens[0]!;
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: LLAMA3_SPLIT }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'Sequence',
      processors: [
        { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: bos.content, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [
            { SpecialToken: { id: bos.content, type_id: 0 } },
            { Sequence: { id: 'A', type_id: 0 } },
            { SpecialToken: { id: bos.content, type_id: 1 } },
            { Sequence: { id: 'B', type_id: 1 } },
          ],
          special_tokens: { [bos.content]: { id: bos.content, ids: [bos.id], tokens: [bos.content] } },
        },
      ],
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges,
    },
  };
  const tokenizerConfig = {
    bos_token: '<|begin_of_text|>',
    eos_token: '<|eot_id|>',
    clean_up_tokenization_spaces: true,
    model_max_length: 8192,
    chat_template: LLAMA3_TEMPLATE,
    tokenizer_class: 'PreTrainedTokenizerFast',
    ...configExtra,
  };
  return writeFixture(tokenizerJson, tokenizerConfig, 'attune-tok-llama3-');
}

/** Gemma's chat template (google/gemma-2-2b-it), as shipped: no system role, roles must alternate. */
export const GEMMA_TEMPLATE =
  "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";

export const GEMMA_SPECIALS = ['<pad>', '<eos>', '<bos>', '<unk>', '<start_of_turn>', '<end_of_turn>'] as const;

/**
 * Gemma style: a Replace(" " → "▁") normalizer and no pre-tokenizer, so BPE runs over a whole
 * section; byte fallback; <bos> added by the post-processor. As in Gemma's vocabulary, the turn
 * markers are also ordinary vocabulary entries, and here merges can rebuild them from pieces
 * (`<end_of` + `_turn>`): plain-text content must not be merged back into the marker.
 */
export function writeGemmaFixture(configExtra: Record<string, unknown> = {}): FixtureDir {
  const vocab: Record<string, number> = {};
  GEMMA_SPECIALS.forEach((t, i) => {
    vocab[t] = i;
  });
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = Object.keys(vocab).length;
  const add = (piece: string): void => {
    if (vocab[piece] === undefined) vocab[piece] = Object.keys(vocab).length;
  };
  [...'▁abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?\'-<>_|/'].forEach(add);
  const pairs: Array<[string, string]> = [
    ['e', 'n'], ['en', 'd'], ['<', 'end'], ['_', 'o'], ['_o', 'f'], ['<end', '_of'], ['_', 't'], ['u', 'r'], ['ur', 'n'],
    ['_t', 'urn'], ['_turn', '>'], ['<end_of', '_turn>'],
    ['s', 't'], ['a', 'r'], ['st', 'ar'], ['star', 't'], ['<', 'start'], ['<start', '_of'], ['<start_of', '_turn>'],
    ['<', 'b'], ['o', 's'], ['<b', 'os'], ['<bos', '>'],
    ['▁', 'h'], ['▁h', 'i'], ['u', 's'], ['us', 'er'], ['e', 'r'], ['m', 'o'], ['mo', 'd'], ['mod', 'e'], ['mode', 'l'],
  ];
  for (const [a, b] of pairs) add(a + b);
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialAddedTokens(GEMMA_SPECIALS, 0),
    normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<bos>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<bos>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<bos>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<bos>': { id: '<bos>', ids: [2], tokens: ['<bos>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }],
    },
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: pairs.map(([a, b]) => [a, b]),
    },
  };
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<bos>',
    eos_token: '<eos>',
    pad_token: '<pad>',
    unk_token: '<unk>',
    additional_special_tokens: ['<start_of_turn>', '<end_of_turn>'],
    clean_up_tokenization_spaces: false,
    chat_template: GEMMA_TEMPLATE,
    tokenizer_class: 'GemmaTokenizer',
    ...configExtra,
  };
  return writeFixture(tokenizerJson, tokenizerConfig, 'attune-tok-gemma-');
}
