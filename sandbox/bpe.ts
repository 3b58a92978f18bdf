// Trains the project's own GPT-2-style byte-level BPE on the synthetic corpus and writes it as a
// standard tokenizer.json + tokenizer_config.json (lm/tokenizer-files.ts, the one writer of that
// layout), which @huggingface/tokenizers and lm/tokenizer.ts load like any HF model.
//
// The algorithm is the usual one (HF tokenizers' BpeTrainer, minus its extras):
// 1. Split every text on the special tokens (the library splits them out before anything else, so
//    a ChatML-formatted corpus must not teach merges across a marker), pre-tokenize the rest with
//    GPT-2's regex, and count distinct pieces. Each distinct piece becomes a "word": its UTF-8
//    bytes as byte-token ids, with the piece's frequency.
// 2. Count adjacent symbol pairs over the words (weighted by frequency) and remember which words
//    contain each pair.
// 3. Repeatedly take the most frequent pair (ties: the smaller left id, then the smaller right id),
//    add the merged token, and rewrite only the words listed for that pair, adjusting the counts of
//    the neighbouring pairs by the exact deltas. Nothing is recounted from scratch.
//
// Why a lazy max-heap is exact here: a pair's count only grows in the step that creates one of its
// two tokens (every new adjacency involves the new token), and only falls afterwards. New pairs are
// pushed once that step ends, so every heap entry is an upper bound of its pair's count; an entry
// whose stored count is stale is re-pushed with the current count when it reaches the top, and an
// entry that is current at the top is the true maximum under the same tie-break.
//
// Choices worth knowing:
// - Ids: 0..255 the byte tokens in GPT-2's order (printable bytes first), then the merges in the
//   order learned, then the specials (added_tokens, special: true) with the last ids.
// - bos_token is '<|endoftext|>' (GPT-2's convention, when it is among the specials): the document
//   separator of the corpus. It is never added automatically (add_bos_token false, the ByteLevel
//   post-processor adds nothing), so a prompt is exactly the rendered chat template. eos_token is
//   '<|im_end|>', which ends an assistant turn under ChatML; pad_token is '<|endoftext|>'.
// - A merge whose result would spell a special token is skipped (the pair is never merged): the
//   library maps such a string to the special's id, so the learned id would be unreachable.
import { LmError } from '../server/lm/errors.ts';
import { byteLevelTokenizerFiles, bytesToUnicode, type TokenizerConfigJson, type TokenizerJson, writeTokenizerFiles } from '../server/lm/tokenizer-files.ts';

/** GPT-2's pre-tokenizer regex, exactly as @huggingface/tokenizers' ByteLevel pre-tokenizer uses it. */
export const GPT2_SPLIT_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface TrainBpeOptions {
  /** Total size: 256 byte tokens + learned merges + specials. */
  vocabSize: number;
  /** Added as special tokens with the last ids, in this order. */
  specials: string[];
  /** Stop when the best pair occurs fewer times than this. Default 2 (a pair seen once is memorization). */
  minFrequency?: number;
  /**
   * Called as merges are learned, and once at the end with done === total. When training stops
   * early (minFrequency, or every word is a single token) the final call reports the merges learned.
   */
  onProgress?: (done: number, total: number) => void;
  /** tokenizer_config.json model_max_length. Default 1024. */
  modelMaxLength?: number;
  /** tokenizer_config.json chat_template. Default ChatML (lm/chat-template.ts). */
  chatTemplate?: string;
}

export interface BpeTrainingStats {
  /** Merges learned (may be fewer than asked, see TrainBpeOptions.minFrequency). */
  merges: number;
  /** Entries in the tokenizer: 256 + merges + specials. */
  vocabSize: number;
  /** UTF-8 bytes of training text, specials excluded. */
  bytes: number;
  /** Pre-tokenized pieces, and how many of them are distinct. */
  pieces: number;
  distinctPieces: number;
  /** True when training ended before reaching the requested vocabSize. */
  stoppedEarly: boolean;
}

export interface TrainedTokenizer {
  tokenizerJson: TokenizerJson;
  tokenizerConfigJson: TokenizerConfigJson;
  stats: BpeTrainingStats;
}

// Pair keys pack two ids into one safe integer.
const KEY_BASE = 2 ** 21;
const MAX_VOCAB = KEY_BASE;

const bad = (message: string, details?: Record<string, unknown>): LmError =>
  new LmError('bad_argument', `trainByteLevelBpe: ${message}`, details);

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Max-heap of (count, pair key): larger count first, then smaller key. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i]!;
    this.counts[i] = this.counts[j]!;
    this.counts[j] = c;
    const k = this.keys[i]!;
    this.keys[i] = this.keys[j]!;
    this.keys[j] = k;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the top; returns [count, key]. Only call when size > 0. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    const n = this.keys.length;
    if (n > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < n && this.above(l, best)) best = l;
        if (r < n && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

function validate(opts: TrainBpeOptions, byteChars: ReadonlySet<string>): void {
  const { vocabSize, specials } = opts;
  if (!Array.isArray(specials)) throw bad('specials must be an array of strings');
  if (!Number.isSafeInteger(vocabSize) || vocabSize < 256 + specials.length || vocabSize > MAX_VOCAB) {
    throw bad(`vocabSize (${vocabSize}) must be an integer from 256 + ${specials.length} (specials) to ${MAX_VOCAB}`, {
      vocabSize,
    });
  }
  for (const sp of specials) {
    if (typeof sp !== 'string' || sp.length === 0 || byteChars.has(sp)) {
      throw bad(`special token ${JSON.stringify(sp)} is empty or a byte token`, { special: sp });
    }
  }
  if (new Set(specials).size !== specials.length) {
    throw bad(`duplicate special tokens in ${JSON.stringify(specials)}`, { specials });
  }
  const minFrequency = opts.minFrequency ?? 2;
  if (!Number.isFinite(minFrequency) || minFrequency < 1) {
    throw bad(`minFrequency (${minFrequency}) must be at least 1`, { minFrequency });
  }
  const maxLen = opts.modelMaxLength ?? 1024;
  if (!Number.isSafeInteger(maxLen) || maxLen < 1) {
    throw bad(`modelMaxLength (${maxLen}) must be a positive integer`, { modelMaxLength: maxLen });
  }
}

/** Distinct pre-tokenized pieces with their frequencies, and totals. */
function countPieces(
  texts: Iterable<string>,
  specials: readonly string[],
): { pieces: Map<string, number>; total: number; bytes: number } {
  // Longest first, so that the alternation finds the leftmost-longest special like the library.
  const specialSplit =
    specials.length > 0
      ? new RegExp([...specials].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|'), 'u')
      : null;
  const pieces = new Map<string, number>();
  let total = 0;
  let bytes = 0;
  let index = 0;
  for (const text of texts) {
    if (typeof text !== 'string') throw bad(`texts[${index}] is not a string`, { index });
    index++;
    const segments = specialSplit !== null ? text.split(specialSplit) : [text];
    for (const segment of segments) {
      const matches = segment.match(GPT2_SPLIT_PATTERN);
      if (matches === null) continue;
      total += matches.length;
      for (const m of matches) pieces.set(m, (pieces.get(m) ?? 0) + 1);
    }
  }
  for (const [piece, n] of pieces) bytes += Buffer.byteLength(piece, 'utf8') * n;
  return { pieces, total, bytes };
}

/**
 * Learn a byte-level BPE of `vocabSize` entries (256 bytes + merges + specials) from `texts`.
 * Deterministic: the same texts in the same order give identical JSON.
 */
export function trainByteLevelBpe(texts: Iterable<string>, opts: TrainBpeOptions): TrainedTokenizer {
  const byteChar = bytesToUnicode();
  const byteChars = new Set(byteChar);
  validate(opts, byteChars);
  const specials = [...opts.specials];
  const minFrequency = opts.minFrequency ?? 2;
  const mergeTarget = opts.vocabSize - 256 - specials.length;

  // Byte tokens take ids in GPT-2's order, which is the order of their characters' code points:
  // printable bytes map to themselves, the rest to U+0100 and up.
  const tokenStrings: string[] = [...byteChar].sort((a, b) => a.charCodeAt(0) - b.charCodeAt(0));
  const byteId = new Int32Array(256);
  for (let b = 0; b < 256; b++) byteId[b] = tokenStrings.indexOf(byteChar[b]!);

  const { pieces, total: pieceTotal, bytes } = countPieces(texts, specials);

  // Words: the symbols of each distinct piece, rewritten in place as merges shorten them.
  const wordCount = pieces.size;
  const words: Int32Array[] = new Array<Int32Array>(wordCount);
  const wordLen = new Int32Array(wordCount);
  const wordFreq = new Float64Array(wordCount);
  {
    const encoder = new TextEncoder();
    let w = 0;
    for (const [piece, freq] of pieces) {
      const utf8 = encoder.encode(piece);
      const symbols = new Int32Array(utf8.length);
      for (let i = 0; i < utf8.length; i++) symbols[i] = byteId[utf8[i]!]!;
      words[w] = symbols;
      wordLen[w] = symbols.length;
      wordFreq[w] = freq;
      w++;
    }
  }
  pieces.clear();

  const pairCount = new Map<number, number>();
  // Words that contained the pair when it was counted (entries may go stale; merging a stale word
  // finds nothing to do). Each word appears at most once per list: see pushWhere.
  const where = new Map<number, number[]>();
  const pushWhere = (key: number, w: number): void => {
    const list = where.get(key);
    if (list === undefined) where.set(key, [w]);
    else if (list[list.length - 1] !== w) list.push(w);
  };
  for (let w = 0; w < wordCount; w++) {
    const sym = words[w]!;
    const freq = wordFreq[w]!;
    for (let i = 0; i + 1 < sym.length; i++) {
      const key = sym[i]! * KEY_BASE + sym[i + 1]!;
      pairCount.set(key, (pairCount.get(key) ?? 0) + freq);
      pushWhere(key, w);
    }
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push(count, key);

  const specialSet = new Set(specials);
  const forbidden = new Set<number>();
  const merges: Array<[string, string]> = [];
  const progressEvery = Math.max(1, Math.ceil(mergeTarget / 200));
  const grown = new Set<number>();

  while (merges.length < mergeTarget && heap.size > 0) {
    const [stored, key] = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (current !== stored) {
      if (current > 0) heap.push(current, key);
      continue;
    }
    if (current < minFrequency) break;
    const left = Math.floor(key / KEY_BASE);
    const right = key - left * KEY_BASE;
    const mergedString = tokenStrings[left]! + tokenStrings[right]!;
    if (specialSet.has(mergedString)) {
      forbidden.add(key);
      pairCount.delete(key);
      continue;
    }
    const merged = tokenStrings.length;
    tokenStrings.push(mergedString);
    merges.push([tokenStrings[left]!, tokenStrings[right]!]);

    grown.clear();
    let w = 0;
    let freq = 0;
    const change = (a: number, b: number, delta: number): void => {
      const k = a * KEY_BASE + b;
      if (k === key || forbidden.has(k)) return;
      const next = (pairCount.get(k) ?? 0) + delta;
      if (next === 0) pairCount.delete(k);
      else pairCount.set(k, next);
      if (delta > 0) {
        grown.add(k);
        pushWhere(k, w);
      }
    };
    for (const wi of where.get(key) ?? []) {
      w = wi;
      freq = wordFreq[w]!;
      const sym = words[w]!;
      const len = wordLen[w]!;
      let out = 0;
      let i = 0;
      while (i < len) {
        if (i + 1 < len && sym[i] === left && sym[i + 1] === right) {
          // The left neighbour is read from the rewritten prefix, so back-to-back merges
          // ("a b a b") cancel their intermediate (merged, a) pair correctly.
          if (out > 0) {
            const p = sym[out - 1]!;
            change(p, left, -freq);
            change(p, merged, freq);
          }
          if (i + 2 < len) {
            const n = sym[i + 2]!;
            change(right, n, -freq);
            change(merged, n, freq);
          }
          sym[out++] = merged;
          i += 2;
        } else {
          sym[out++] = sym[i++]!;
        }
      }
      wordLen[w] = out;
    }
    where.delete(key);
    pairCount.delete(key);
    for (const k of grown) {
      const count = pairCount.get(k) ?? 0;
      if (count > 0) heap.push(count, k);
    }
    if (opts.onProgress && merges.length % progressEvery === 0 && merges.length < mergeTarget) {
      opts.onProgress(merges.length, mergeTarget);
    }
  }
  const stoppedEarly = merges.length < mergeTarget;
  opts.onProgress?.(merges.length, stoppedEarly ? merges.length : mergeTarget);

  const vocab: Record<string, number> = {};
  tokenStrings.forEach((t, id) => {
    vocab[t] = id;
  });
  const firstSpecialId = tokenStrings.length;
  const { tokenizerJson, tokenizerConfigJson } = byteLevelTokenizerFiles(vocab, merges, specials, {
    padToken: specialSet.has('<|endoftext|>') ? '<|endoftext|>' : null,
    modelMaxLength: opts.modelMaxLength ?? 1024,
    ...(opts.chatTemplate !== undefined ? { chatTemplate: opts.chatTemplate } : {}),
  });

  return {
    tokenizerJson,
    tokenizerConfigJson,
    stats: {
      merges: merges.length,
      vocabSize: firstSpecialId + specials.length,
      bytes,
      pieces: pieceTotal,
      distinctPieces: wordCount,
      stoppedEarly,
    },
  };
}

/** Write dir/tokenizer.json and dir/tokenizer_config.json (creating dir). */
export function saveTokenizer(dir: string, result: Pick<TrainedTokenizer, 'tokenizerJson' | 'tokenizerConfigJson'>): void {
  writeTokenizerFiles(dir, result);
}
