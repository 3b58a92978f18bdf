// The text side of a Hugging Face model directory: tokenizer.json + tokenizer_config.json, wrapped
// so the engine never touches the library's loosely typed objects.
//
// Three choices worth knowing:
// - `decode` never applies `clean_up_tokenization_spaces` (HF's " ." → "." rewrite, on by default for
//   GPT-2). It is lossy, and it would make a finished message differ from the text that was streamed
//   token by token through `tokenBytes`.
// - `tokenBytes` is the ground truth for streaming: the exact UTF-8 bytes a token stands for, which
//   may be part of a character. `TextStreamDecoder` in text-stream.ts reassembles characters.
// - A model without a chat template gets ChatML (chat-template.ts). Its turn markers are usually
//   plain text to such a model, so they are offered as `stopStrings` for the StopMatcher.
// - `encodeChat` encodes message content as plain text: only the template's own text may produce
//   special tokens (special-tokens.ts explains how). A prompt whose content holds no special-token
//   text is encoded exactly as `encode` would encode the rendered string.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AddedToken, Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { CHATML_TEMPLATE, CHATML_TURN_MARKERS } from './chat-template.ts';
import { LmError } from './errors.ts';
import { privateUseChars, ProtectedTokens, Sentinels, TokenTrie } from './special-tokens.ts';
import { bytesToUnicode } from './tokenizer-files.ts';

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface EncodeOptions {
  /** Let the tokenizer's post-processor add its special tokens (e.g. Llama's BOS). Default true, as in HF. */
  addSpecialTokens?: boolean;
  /**
   * Encode special-token text (`<|im_start|>`, `<s>`…) found in `text` as ordinary sub-word tokens,
   * as HF's `split_special_tokens=True` does. Default false: such text becomes the special token.
   */
  splitSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, chat markers…) from the text. Default false, as in HF. */
  skipSpecialTokens?: boolean;
}

export interface ChatTemplateOptions {
  /** Append the opening of an assistant turn, so that the model's continuation is the answer. */
  addGenerationPrompt: boolean;
}

export interface LoadTokenizerOptions {
  /** End-of-sequence ids from the model's config.json / generation_config.json, added to eosTokenIds. */
  extraEosTokenIds?: readonly number[];
}

export interface ChatTokenizer {
  /** One more than the largest token id the tokenizer knows (the model's embedding may be larger). */
  readonly vocabSize: number;
  /** Generation stops on any of these. Deduplicated; may be empty if the model declares none. */
  readonly eosTokenIds: number[];
  readonly bosTokenId: number | null;
  /** Special added tokens and the bos/eos/unk/pad/additional special tokens named in tokenizer_config.json. */
  readonly specialTokenIds: Set<number>;
  /** False when the model ships no chat template and ChatML (CHATML_TEMPLATE) is used. */
  readonly hasOwnChatTemplate: boolean;
  /** The template source in use (the model's own, or CHATML_TEMPLATE). */
  readonly chatTemplate: string;
  /**
   * Strings that end an assistant turn under the template in use but that the model may emit as
   * plain text rather than as one special token. Non-empty only for the fallback template.
   */
  readonly stopStrings: string[];
  /**
   * True when `decode` drops one leading space of its first token (sentencepiece-style decoders:
   * "▁Hello" → "Hello"). TextStreamDecoder mirrors this so streamed text equals `decode`.
   */
  readonly decodeStripsLeadingSpace: boolean;
  encode(text: string, opts?: EncodeOptions): number[];
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string;
  /**
   * The raw UTF-8 bytes token `id` stands for (possibly part of a character). Special and added
   * tokens give their content; unknown ids give no bytes. The array is shared: do not mutate it.
   */
  tokenBytes(id: number): Uint8Array;
  applyChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions): string;
  /**
   * Render the chat template and encode it, adding BOS only if the rendered text does not start with
   * it. Message content never yields a special token: only the template's own text does.
   */
  encodeChat(messages: readonly ChatMessage[], opts: ChatTemplateOptions): number[];
}

const TOKENIZER_FILE = 'tokenizer.json';
const CONFIG_FILE = 'tokenizer_config.json';
const TEMPLATE_JINJA_FILE = 'chat_template.jinja';
const TEMPLATE_JSON_FILE = 'chat_template.json';

type JsonObject = Record<string, unknown>;

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

function readFile(path: string, name: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new LmError('file_missing', `${name} not found at ${path}`, { path });
    throw new LmError('file_corrupt', `${name} at ${path} cannot be read: ${(e as Error).message}`, { path });
  }
}

function readJsonObject(path: string, name: string): JsonObject {
  const text = readFile(path, name);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new LmError('file_corrupt', `${name} at ${path} is not valid JSON: ${(e as Error).message}`, { path });
  }
  if (!isObject(parsed)) throw new LmError('file_corrupt', `${name} at ${path} is not a JSON object`, { path });
  return parsed;
}

const fileExists = (path: string): boolean => existsSync(path);

/** tokenizer_config.json writes tokens as "<s>" or as a serialized AddedToken {content: "<s>", …}. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return null;
}

/** chat_template is a string, or (older multi-template configs) a list of {name, template}. */
function pickTemplate(raw: unknown, source: string): string | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw === 'string') return raw;
  if (Array.isArray(raw)) {
    const named = raw.filter(
      (t): t is { name: string; template: string } =>
        isObject(t) && typeof t.name === 'string' && typeof t.template === 'string',
    );
    const chosen = named.find((t) => t.name === 'default');
    if (chosen) return chosen.template;
    throw new LmError(
      'config_invalid',
      `${source}: chat_template is a list without a template named 'default' (names: ${named.map((t) => t.name).join(', ')})`,
      { file: source },
    );
  }
  throw new LmError('config_invalid', `${source}: chat_template must be a string or a list of {name, template}`, {
    file: source,
  });
}

/** The template may live in tokenizer_config.json or, for newer exports, in its own file. */
function findChatTemplate(dir: string, config: JsonObject): { template: string | null; source: string } {
  const fromConfig = pickTemplate(config.chat_template, CONFIG_FILE);
  if (fromConfig !== null) return { template: fromConfig, source: CONFIG_FILE };
  const jinjaPath = join(dir, TEMPLATE_JINJA_FILE);
  if (fileExists(jinjaPath)) return { template: readFile(jinjaPath, TEMPLATE_JINJA_FILE), source: TEMPLATE_JINJA_FILE };
  const jsonPath = join(dir, TEMPLATE_JSON_FILE);
  if (fileExists(jsonPath)) {
    const obj = readJsonObject(jsonPath, TEMPLATE_JSON_FILE);
    return { template: pickTemplate(obj.chat_template, TEMPLATE_JSON_FILE), source: TEMPLATE_JSON_FILE };
  }
  return { template: null, source: CONFIG_FILE };
}

/** GPT-2's bytes_to_unicode, inverted: the char a byte-level vocabulary uses → the byte. */
const BYTE_LEVEL_CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(bytesToUnicode().map((ch, b) => [ch, b]));

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

/** Does the decoder config (possibly a Sequence) contain a component of this type? */
function findComponent(config: unknown, type: string): JsonObject | null {
  if (!isObject(config)) return null;
  if (config.type === type) return config;
  for (const key of ['decoders', 'pretokenizers']) {
    const list = config[key];
    if (Array.isArray(list)) {
      for (const item of list) {
        const found = findComponent(item, type);
        if (found) return found;
      }
    }
  }
  return null;
}

type TokenTextKind = 'byte_level' | 'sentencepiece' | 'plain';

interface TokenizerFiles {
  tokenizerJson: JsonObject;
  tokenizerConfig: JsonObject;
  chatTemplate: string | null;
  /** File named in template errors. */
  templateSource: string;
  /** Directory, for messages. */
  dir: string;
}

const textEncoder = new TextEncoder();
const EMPTY_BYTES = new Uint8Array(0);
const ROLES: ReadonlySet<string> = new Set<ChatRole>(['system', 'user', 'assistant']);

/** Thrown by the template's raise_exception(): the template refuses these messages. */
class TemplateRaised extends Error {}
const TEMPLATE_RAISE = 'attune_raise_exception';

/** The `reason` in the details of the LmError thrown when the chat template refuses the messages. */
export const CHAT_TEMPLATE_REFUSED = 'chat_template_refused';

/** The template itself refused the messages (raise_exception): the caller's messages are at fault. */
export const isChatTemplateRefusal = (e: unknown): e is LmError =>
  e instanceof LmError && e.code === 'bad_argument' && e.details?.reason === CHAT_TEMPLATE_REFUSED;

class HfChatTokenizer implements ChatTokenizer {
  readonly vocabSize: number;
  readonly eosTokenIds: number[];
  readonly bosTokenId: number | null;
  readonly specialTokenIds: Set<number>;
  readonly hasOwnChatTemplate: boolean;
  readonly chatTemplate: string;
  readonly stopStrings: string[];
  readonly decodeStripsLeadingSpace: boolean;

  private readonly hf: Tokenizer;
  private readonly tokens: (string | undefined)[];
  private readonly addedContent = new Map<number, string>();
  private readonly kind: TokenTextKind;
  private readonly metaspace: string | null;
  private readonly byteFallback: boolean;
  private readonly bytesCache: (Uint8Array | undefined)[];
  private readonly template: Template;
  private readonly templateSource: string;
  private readonly bosToken: string | null;
  private readonly eosToken: string | null;
  private readonly postProcessorAddsBos: boolean;

  // The library's encode, rebuilt from its public parts for prompts whose content holds special-token
  // text (tokenizeGuarded). Same tables, same order of steps.
  /** Added-token text (and its normalized form, for normalized tokens) → token, as the library maps them. */
  private readonly addedByText = new Map<string, AddedToken>();
  private readonly unnormalizedTrie: TokenTrie;
  private readonly normalizedTrie: TokenTrie;
  /** normalizedTrie less the protected tokens: for sections that hold content text. */
  private readonly normalizedPlainTrie: TokenTrie;
  private readonly removeSpace: boolean;
  private readonly lowercaseAndRemoveAccents: boolean;
  /** Special tokens that content may not produce; unk is left out (it marks unknown text, not a turn). */
  private readonly forbiddenInContent: Set<number>;
  private readonly protectedTokens: ProtectedTokens;
  /** Private-use characters the template or the tokens use, never handed out as sentinels. */
  private readonly reservedChars: Set<string>;

  constructor(files: TokenizerFiles, opts: LoadTokenizerOptions) {
    const { tokenizerJson, tokenizerConfig: config } = files;
    if (!isObject(tokenizerJson.model)) {
      throw new LmError('file_corrupt', `${TOKENIZER_FILE} in ${files.dir} has no "model" object`, { dir: files.dir });
    }
    // The library insists on these keys being present; HF files sometimes omit the null ones.
    const json: JsonObject = {
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      ...tokenizerJson,
      added_tokens: Array.isArray(tokenizerJson.added_tokens) ? tokenizerJson.added_tokens : [],
    };
    try {
      this.hf = new Tokenizer(json, config);
    } catch (e) {
      throw new LmError('file_corrupt', `${TOKENIZER_FILE} in ${files.dir} is not a usable tokenizer: ${(e as Error).message}`, {
        dir: files.dir,
      });
    }

    const model = this.hf.model;
    this.tokens = model ? [...model.vocab] : [];
    const specials = new Set<number>();
    for (const [id, token] of this.hf.get_added_tokens_decoder()) {
      this.addedContent.set(id, token.content);
      this.tokens[id] = token.content;
      if (token.special) specials.add(id);
    }
    this.vocabSize = this.tokens.length;
    this.bytesCache = new Array<Uint8Array | undefined>(this.vocabSize);

    const idOf = (content: string | null): number | null => {
      if (content === null) return null;
      return this.hf.token_to_id(content) ?? null;
    };
    for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
      const id = idOf(tokenContent(config[key]));
      if (id !== null) specials.add(id);
    }
    if (Array.isArray(config.additional_special_tokens)) {
      for (const t of config.additional_special_tokens) {
        const id = idOf(tokenContent(t));
        if (id !== null) specials.add(id);
      }
    }
    this.specialTokenIds = specials;

    this.bosToken = tokenContent(config.bos_token);
    this.eosToken = tokenContent(config.eos_token);
    this.bosTokenId = idOf(this.bosToken);

    const normalize = this.hf.normalizer;
    const unnormalized: string[] = [];
    const normalized: string[] = [];
    const normalizedPlain: string[] = [];
    let protectedNormalized = false;
    for (const [id, token] of this.hf.get_added_tokens_decoder()) {
      const isProtected = token.special || specials.has(id);
      this.addedByText.set(token.content, token);
      if (token.normalized && normalize !== null) {
        const form = normalize(token.content);
        this.addedByText.set(form, token);
        normalized.push(form);
        if (isProtected) protectedNormalized = true;
        else normalizedPlain.push(form);
      } else {
        unnormalized.push(token.content);
      }
    }
    this.unnormalizedTrie = new TokenTrie(unnormalized);
    this.normalizedTrie = new TokenTrie(normalized);
    this.normalizedPlainTrie = new TokenTrie(normalizedPlain);
    this.removeSpace = config.remove_space === true;
    this.lowercaseAndRemoveAccents = config.do_lowercase_and_remove_accent === true;
    const unkId = model?.unk_token_id;
    this.forbiddenInContent = new Set([...specials].filter((id) => id !== unkId));
    const protectedTexts = new Set<string>();
    for (const id of specials) {
      const text = this.tokens[id];
      if (text !== undefined && text.length > 0) protectedTexts.add(text);
    }
    this.protectedTokens = new ProtectedTokens(protectedTexts, protectedNormalized);

    const decoder = json.decoder;
    const modelJson = json.model as JsonObject;
    if (findComponent(decoder, 'ByteLevel') || findComponent(json.pre_tokenizer, 'ByteLevel')) {
      this.kind = 'byte_level';
    } else if (
      findComponent(decoder, 'Metaspace') ||
      findComponent(decoder, 'ByteFallback') ||
      findComponent(json.pre_tokenizer, 'Metaspace') ||
      modelJson.byte_fallback === true
    ) {
      this.kind = 'sentencepiece';
    } else {
      this.kind = 'plain';
    }
    const metaspaceConfig = findComponent(decoder, 'Metaspace') ?? findComponent(json.pre_tokenizer, 'Metaspace');
    this.metaspace =
      this.kind === 'sentencepiece'
        ? typeof metaspaceConfig?.replacement === 'string'
          ? metaspaceConfig.replacement
          : '▁'
        : null;
    this.byteFallback = this.kind === 'sentencepiece';

    const template = files.chatTemplate;
    const source = files.templateSource;
    this.hasOwnChatTemplate = template !== null;
    // ChatML emits no BOS text; encodeChat still adds BOS when the tokenizer would add one.
    this.chatTemplate = template ?? CHATML_TEMPLATE;
    this.templateSource = this.hasOwnChatTemplate ? source : 'CHATML_TEMPLATE (the fallback)';
    try {
      // The library's own raise_exception cannot be overridden (globals may not be redeclared) and
      // throws a plain Error; renaming the call lets a refusal be told apart from a broken template.
      this.template = new Template(this.chatTemplate.replace(/\braise_exception\b/g, TEMPLATE_RAISE));
    } catch (e) {
      throw new LmError('config_invalid', `chat_template in ${source} does not parse: ${(e as Error).message}`, {
        file: source,
        dir: files.dir,
      });
    }

    const eos: number[] = [];
    const addEos = (id: number | null): void => {
      if (id !== null && !eos.includes(id)) eos.push(id);
    };
    // GPT2Tokenizer's constructor defaults eos_token to <|endoftext|>; old GPT-2 configs rely on that.
    addEos(idOf(this.eosToken ?? '<|endoftext|>'));
    for (const id of opts.extraEosTokenIds ?? []) {
      if (!Number.isInteger(id) || id < 0) {
        throw new LmError('bad_argument', `extraEosTokenIds must be non-negative integers, got ${id}`, { id });
      }
      addEos(id);
    }
    this.stopStrings = [];
    if (!this.hasOwnChatTemplate) {
      // Under ChatML the turn ends at <|im_end|>: as one token if the vocabulary has it, else as text.
      for (const marker of CHATML_TURN_MARKERS) {
        addEos(idOf(marker));
        this.stopStrings.push(marker);
      }
    }
    this.eosTokenIds = eos;

    this.reservedChars = privateUseChars(this.chatTemplate);
    for (const t of [...protectedTexts, ...this.addedContent.values(), this.bosToken ?? '', this.eosToken ?? '']) privateUseChars(t, this.reservedChars);

    this.postProcessorAddsBos = this.probeAddsBos();
    this.decodeStripsLeadingSpace = this.probeStripsLeadingSpace();
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new LmError('bad_argument', 'encode: text must be a string');
    const addSpecialTokens = opts.addSpecialTokens ?? true;
    if (!opts.splitSpecialTokens) return this.hf.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    const sentinels = new Sentinels(privateUseChars(text, new Set(this.reservedChars)));
    let tokens = this.tokenizeGuarded(this.protectedTokens.defuse(text, sentinels) ?? text, sentinels);
    if (addSpecialTokens && this.hf.post_processor) tokens = this.hf.post_processor(tokens, null, true).tokens;
    return this.idsOf(tokens);
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const kept: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0) {
        throw new LmError('bad_argument', `decode: token ids must be non-negative integers, got ${id} at index ${i}`, {
          index: i,
        });
      }
      // Unknown ids (padding rows of a larger embedding) decode to nothing, as in tokenBytes.
      if (this.tokens[id] === undefined) continue;
      if (opts.skipSpecialTokens && this.specialTokenIds.has(id)) continue;
      kept.push(id);
    }
    if (kept.length === 0) return '';
    return this.hf.decode(kept, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  tokenBytes(id: number): Uint8Array {
    if (!Number.isInteger(id) || id < 0) {
      throw new LmError('bad_argument', `tokenBytes: token id must be a non-negative integer, got ${id}`, { id });
    }
    if (id >= this.vocabSize) return EMPTY_BYTES;
    const cached = this.bytesCache[id];
    if (cached !== undefined) return cached;
    const bytes = this.computeTokenBytes(id);
    this.bytesCache[id] = bytes;
    return bytes;
  }

  private computeTokenBytes(id: number): Uint8Array {
    const token = this.tokens[id];
    if (token === undefined) return EMPTY_BYTES;
    // Added tokens are stored as their literal text in every tokenizer family.
    const added = this.addedContent.get(id);
    if (added !== undefined) return textEncoder.encode(added);
    if (this.kind === 'byte_level') {
      const out: number[] = [];
      for (const ch of token) {
        const b = BYTE_LEVEL_CHAR_TO_BYTE.get(ch);
        if (b !== undefined) out.push(b);
        else out.push(...textEncoder.encode(ch));
      }
      return Uint8Array.from(out);
    }
    if (this.byteFallback) {
      const m = BYTE_TOKEN.exec(token);
      if (m) return Uint8Array.of(parseInt(m[1], 16));
    }
    const text = this.metaspace !== null ? token.replaceAll(this.metaspace, ' ') : token;
    return textEncoder.encode(text);
  }

  applyChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions): string {
    return this.render(this.checkMessages(messages), opts);
  }

  private checkMessages(messages: readonly ChatMessage[]): ChatMessage[] {
    if (!Array.isArray(messages)) throw new LmError('bad_argument', 'applyChatTemplate: messages must be an array');
    return messages.map((m, i) => {
      if (!isObject(m) || !ROLES.has(m.role as string) || typeof m.content !== 'string') {
        throw new LmError('bad_argument', `applyChatTemplate: message ${i} must be {role: system|user|assistant, content: string}`, {
          index: i,
        });
      }
      return { role: m.role as ChatRole, content: m.content };
    });
  }

  private render(plain: ChatMessage[], opts: ChatTemplateOptions): string {
    try {
      return this.template.render({
        messages: plain,
        add_generation_prompt: opts.addGenerationPrompt,
        bos_token: this.bosToken ?? '',
        eos_token: this.eosToken ?? '',
        [TEMPLATE_RAISE]: (message: unknown): never => {
          throw new TemplateRaised(String(message));
        },
      });
    } catch (e) {
      if (e instanceof TemplateRaised) {
        // The template itself refuses this conversation (e.g. "System role not supported"): the
        // caller's messages are at fault, not the model files.
        throw new LmError('bad_argument', `chat template (${this.templateSource}) rejected the messages: ${e.message}`, {
          file: this.templateSource,
          reason: CHAT_TEMPLATE_REFUSED,
          templateMessage: e.message,
        });
      }
      throw new LmError('config_invalid', `chat template in ${this.templateSource} failed to render: ${(e as Error).message}`, {
        file: this.templateSource,
      });
    }
  }

  encodeChat(messages: readonly ChatMessage[], opts: ChatTemplateOptions): number[] {
    const plain = this.checkMessages(messages);
    // Content that holds special-token text is rendered with sentinels in its place (see
    // special-tokens.ts); any other prompt takes the library's own encode, unchanged.
    let sentinels: Sentinels | null = null;
    let rendered = plain;
    if (!this.protectedTokens.empty) {
      const reserved = new Set(this.reservedChars);
      for (const m of plain) privateUseChars(m.content, reserved);
      const s = new Sentinels(reserved);
      const defused = plain.map((m) => {
        const content = this.protectedTokens.defuse(m.content, s);
        return content === null ? m : { role: m.role, content };
      });
      if (s.size > 0) {
        sentinels = s;
        rendered = defused;
      }
    }
    const text = this.render(rendered, opts);
    // Special tokens written by the template are matched as tokens by encode; the post-processor's
    // own additions are not wanted (a second BOS, or an EOS closing the prompt), so BOS is added
    // by hand, and only when the tokenizer would add it and the template did not write it.
    const ids = sentinels ? this.idsOf(this.tokenizeGuarded(text, sentinels)) : this.encode(text, { addSpecialTokens: false });
    const templateWroteBos = this.bosToken !== null && this.bosToken !== '' && text.startsWith(this.bosToken);
    if (this.postProcessorAddsBos && !templateWroteBos && this.bosTokenId !== null) ids.unshift(this.bosTokenId);
    return ids;
  }

  /**
   * Token strings of `text` as the library's encode_text makes them (split on added tokens, strip
   * around lstrip/rstrip tokens, normalize, split on normalized added tokens, pre-tokenize, model),
   * except in a section that holds sentinels: there the sentinels' text is put back before
   * normalizing, protected tokens are not matched, and a model token that happens to be a special
   * token (BPE merging `<`, `end_of`… into `<end_of_turn>`) is encoded again in two halves.
   */
  private tokenizeGuarded(text: string, sentinels: Sentinels): string[] {
    const model = this.hf.model;
    if (!model) throw new LmError('file_corrupt', `${TOKENIZER_FILE} has no model`);
    const sections = this.unnormalizedTrie.split(text);
    this.stripAroundAddedTokens(sections, false);
    const out: string[] = [];
    sections.forEach((section, sectionIndex) => {
      if (section.length === 0) return;
      if (this.addedByText.has(section)) {
        out.push(section);
        return;
      }
      const guarded = sentinels.holdsAny(section);
      let t = guarded ? sentinels.restore(section) : section;
      if (this.removeSpace) t = t.trim().split(/\s+/).join(' ');
      if (this.lowercaseAndRemoveAccents) t = t.toLowerCase().replace(/\p{M}/gu, '');
      if (this.hf.normalizer !== null) t = this.hf.normalizer(t);
      if (t.length === 0) return;
      const subs = (guarded ? this.normalizedPlainTrie : this.normalizedTrie).split(t);
      this.stripAroundAddedTokens(subs, guarded);
      for (const sub of subs) {
        if (sub.length === 0) continue;
        const added = this.addedByText.get(sub);
        if (added && !(guarded && this.forbiddenInContent.has(added.id))) {
          out.push(sub);
          continue;
        }
        const words = this.hf.pre_tokenizer !== null ? this.hf.pre_tokenizer(sub, { section_index: sectionIndex }) : [sub];
        const pieces = model(words);
        out.push(...(guarded ? this.withoutSpecialPieces(pieces) : pieces));
      }
    });
    return out;
  }

  /** The library trims whitespace beside an added token with lstrip/rstrip; protected ones do not count in content. */
  private stripAroundAddedTokens(parts: string[], guarded: boolean): void {
    parts.forEach((part, i) => {
      const added = this.addedByText.get(part);
      if (!added || (guarded && this.forbiddenInContent.has(added.id))) return;
      if (added.lstrip && i > 0) parts[i - 1] = parts[i - 1]!.trimEnd();
      if (added.rstrip && i < parts.length - 1) parts[i + 1] = parts[i + 1]!.trimStart();
    });
  }

  private withoutSpecialPieces(pieces: string[]): string[] {
    const out: string[] = [];
    for (const piece of pieces) {
      const id = this.idOfPiece(piece);
      if (id === undefined || !this.forbiddenInContent.has(id) || piece.length < 2) {
        out.push(piece);
        continue;
      }
      let cut = piece.length >> 1;
      const unit = piece.charCodeAt(cut);
      if (unit >= 0xdc00 && unit <= 0xdfff) cut++;
      if (cut >= piece.length) {
        // One character: nothing smaller to encode it as.
        out.push(piece);
        continue;
      }
      out.push(...this.withoutSpecialPieces(this.hf.model!([piece.slice(0, cut), piece.slice(cut)])));
    }
    return out;
  }

  private idOfPiece(piece: string): number | undefined {
    return this.addedByText.get(piece)?.id ?? this.hf.model?.tokens_to_ids.get(piece) ?? this.hf.model?.unk_token_id;
  }

  /** Token strings → ids, as the library's encode maps them. */
  private idsOf(pieces: string[]): number[] {
    return pieces.map((p) => this.idOfPiece(p) as number);
  }

  private probeAddsBos(): boolean {
    if (this.bosTokenId === null) return false;
    const withSpecial = this.hf.encode('a', { add_special_tokens: true }).ids;
    const without = this.hf.encode('a', { add_special_tokens: false }).ids;
    return withSpecial[0] === this.bosTokenId && without[0] !== this.bosTokenId;
  }

  /** Find a plain token whose bytes are " x…" and see whether decode keeps the space. */
  private probeStripsLeadingSpace(): boolean {
    for (let id = 0; id < this.vocabSize; id++) {
      if (this.addedContent.has(id) || this.tokens[id] === undefined) continue;
      const bytes = this.tokenBytes(id);
      if (bytes.length < 2 || bytes[0] !== 0x20) continue;
      let ascii = true;
      for (let i = 1; i < bytes.length; i++) if (bytes[i] <= 0x20 || bytes[i] >= 0x7f) ascii = false;
      if (!ascii) continue;
      const text = String.fromCharCode(...bytes);
      const decoded = this.hf.decode([id], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
      return decoded === text.slice(1);
    }
    return false;
  }
}

/** Build a tokenizer from already parsed files (for callers that hold them in memory). */
export function createChatTokenizer(
  files: { tokenizerJson: unknown; tokenizerConfig: unknown; chatTemplate?: string | null; dir?: string },
  opts: LoadTokenizerOptions = {},
): ChatTokenizer {
  const dir = files.dir ?? '(in memory)';
  if (!isObject(files.tokenizerJson)) throw new LmError('file_corrupt', `${TOKENIZER_FILE} (${dir}) is not a JSON object`);
  if (!isObject(files.tokenizerConfig)) throw new LmError('file_corrupt', `${CONFIG_FILE} (${dir}) is not a JSON object`);
  const template = files.chatTemplate ?? pickTemplate(files.tokenizerConfig.chat_template, CONFIG_FILE);
  return new HfChatTokenizer(
    {
      tokenizerJson: files.tokenizerJson,
      tokenizerConfig: files.tokenizerConfig,
      chatTemplate: template,
      templateSource: CONFIG_FILE,
      dir,
    },
    opts,
  );
}

/**
 * Load dir/tokenizer.json and dir/tokenizer_config.json (chat template from the config, or from
 * chat_template.jinja / chat_template.json beside it). Throws LmError naming the file at fault.
 */
export function loadTokenizer(dir: string, opts: LoadTokenizerOptions = {}): ChatTokenizer {
  const tokenizerJson = readJsonObject(join(dir, TOKENIZER_FILE), TOKENIZER_FILE);
  const tokenizerConfig = readJsonObject(join(dir, CONFIG_FILE), CONFIG_FILE);
  const { template, source } = findChatTemplate(dir, tokenizerConfig);
  return new HfChatTokenizer({ tokenizerJson, tokenizerConfig, chatTemplate: template, templateSource: source, dir }, opts);
}
