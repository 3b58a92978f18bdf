// Small, hand-built tokenizer directories in the two shapes Attune meets in practice:
// a GPT-2 style byte-level BPE and a Llama/sentencepiece style Metaspace BPE with byte fallback.
// They are written into fresh temp dirs so tests exercise the real file-loading path.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** GPT-2's bytes_to_unicode, as a byte → char table, and the byte order GPT-2 uses for ids 0..255. */
export function gpt2ByteAlphabet(): { byteToChar: string[]; byteOrder: number[] } {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const byteToChar: string[] = new Array<string>(256);
  for (const b of printable) byteToChar[b] = String.fromCharCode(b);
  const byteOrder = [...printable];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (byteToChar[b] === undefined) {
      byteToChar[b] = String.fromCharCode(256 + n);
      n++;
      byteOrder.push(b);
    }
  }
  return { byteToChar, byteOrder };
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
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
  return { dir, tokenizerJson, tokenizerConfig };
}

export const BYTE_LEVEL_SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;

/**
 * GPT-2 style: ids 0..255 are the byte alphabet in GPT-2's order, then merged tokens, then the
 * added special tokens. Some merges deliberately produce tokens that end in the middle of a
 * multi-byte character (the first two bytes of 你, the first three of 😀), as real vocabularies do.
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
  const merges: string[] = [];
  for (const [a, b] of mergeSpecs) {
    const left = byteLevel(a, byteToChar);
    const right = byteLevel(b, byteToChar);
    merges.push(`${left} ${right}`);
    const merged = left + right;
    if (vocab[merged] === undefined) vocab[merged] = Object.keys(vocab).length;
  }
  let nextId = Object.keys(vocab).length;
  const addedTokens = BYTE_LEVEL_SPECIALS.map((content) => ({
    id: nextId++,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
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
    added_tokens: [
      { id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 1, content: '<s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 2, content: '</s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
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
