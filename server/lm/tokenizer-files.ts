// Writing a GPT-2-style byte-level BPE as Hugging Face's tokenizer.json + tokenizer_config.json: the
// inverse of what tokenizer.ts loads. Whoever learns or makes up the vocabulary and merges (the BPE
// trainer, random test models, fixtures) hands them here, so every such tokenizer has one layout.
import fs from 'node:fs';
import path from 'node:path';
import { CHATML_TEMPLATE } from './chat-template.ts';
import { LmError } from './errors.ts';

const isDirectByte = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);

/**
 * GPT-2's reversible map from each byte to a printable character (bytes_to_unicode): printable
 * bytes stand for themselves, the other 68 take U+0100 onwards in byte order.
 */
export function bytesToUnicode(): string[] {
  const map: string[] = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) map[b] = isDirectByte(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  return map;
}

/** The bytes in the order of GPT-2's ids 0..255: printable bytes first, then the rest. */
export function byteTokenOrder(): number[] {
  const order: number[] = [];
  for (let b = 0; b < 256; b++) if (isDirectByte(b)) order.push(b);
  for (let b = 0; b < 256; b++) if (!isDirectByte(b)) order.push(b);
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

type ByteLevelComponent = { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };

export interface TokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: null;
  pre_tokenizer: ByteLevelComponent;
  post_processor: ByteLevelComponent;
  decoder: ByteLevelComponent;
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

export interface TokenizerFiles {
  tokenizerJson: TokenizerJson;
  tokenizerConfigJson: TokenizerConfigJson;
}

/** `specials` as special added tokens with consecutive ids from `firstId`. */
export function specialAddedTokens(specials: readonly string[], firstId: number): AddedTokenJson[] {
  return specials.map((content, k) => ({ id: firstId + k, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
}

/**
 * A byte-level BPE tokenizer.json: ByteLevel pre-tokenizer, post-processor and decoder, the given
 * vocab (ids 0..n-1) and merges, and the specials as added tokens with the ids after the vocab.
 */
export function byteLevelTokenizerJson(vocab: Record<string, number>, merges: Array<[string, string]>, specials: readonly string[]): TokenizerJson {
  const size = Object.keys(vocab).length;
  const ids = new Uint8Array(size);
  for (const id of Object.values(vocab)) {
    if (!Number.isInteger(id) || id < 0 || id >= size || ids[id]) {
      throw new LmError('bad_argument', `tokenizer vocab: ids must be exactly 0..${size - 1}, each once (found ${id})`, { id });
    }
    ids[id] = 1;
  }
  const byteLevel = { type: 'ByteLevel' as const, add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialAddedTokens(specials, size),
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
  /** chat_template: default CHATML_TEMPLATE; null leaves it out. */
  chatTemplate?: string | null;
  /** Default '<|endoftext|>' when among the specials, else none. */
  bosToken?: string | null;
  /** Default '<|im_end|>', else '<|endoftext|>', else the first special, else none. */
  eosToken?: string | null;
  /** Default none. */
  padToken?: string | null;
  /** model_max_length; default 1024. */
  modelMaxLength?: number;
}

/**
 * tokenizer.json and tokenizer_config.json of a byte-level BPE. Nothing is added to a text on encode
 * (add_bos_token false; the ByteLevel post-processor adds nothing), so a prompt is exactly the
 * rendered chat template; decode keeps every byte (no clean-up of spaces).
 */
export function byteLevelTokenizerFiles(
  vocab: Record<string, number>, merges: Array<[string, string]>, specials: readonly string[], opts: ByteLevelTokenizerOptions = {},
): TokenizerFiles {
  const tokenizerJson = byteLevelTokenizerJson(vocab, merges, specials);
  const pick = (wanted: string[]): string | null => wanted.find((t) => specials.includes(t)) ?? null;
  const special = (v: string | null, field: string): string | null => {
    if (v !== null && !specials.includes(v)) {
      throw new LmError('bad_argument', `tokenizer files: ${field} ${JSON.stringify(v)} is not among the special tokens`, { field });
    }
    return v;
  };
  const bos = opts.bosToken !== undefined ? special(opts.bosToken, 'bosToken') : pick(['<|endoftext|>']);
  const eos = opts.eosToken !== undefined ? special(opts.eosToken, 'eosToken') : pick(['<|im_end|>', '<|endoftext|>']) ?? specials[0] ?? null;
  const pad = special(opts.padToken ?? null, 'padToken');
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

/** Writes dir/tokenizer.json and dir/tokenizer_config.json (creating dir), indented as HF saves them. */
export function writeTokenizerFiles(dir: string, files: { tokenizerJson: object; tokenizerConfigJson: object }): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizerJson, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(files.tokenizerConfigJson, null, 2) + '\n');
}
