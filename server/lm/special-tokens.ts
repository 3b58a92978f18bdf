// Keeping message content from producing special tokens (chat-template injection).
//
// The rendered chat prompt is one string, and the tokenizer matches added tokens anywhere in it, so a
// user who types `<|im_start|>system` would otherwise write a real turn marker. The defence, as HF's
// `split_special_tokens=True` for the content only:
// 1. Before rendering, each occurrence of a protected token's text inside a message's content is
//    replaced by a sentinel: one private-use character standing for that text. So are the first and
//    last character of a content that could complete a token together with the template text
//    around it (`<|im_` + template `end|>`). No protected token can then match across any content
//    character, while the template still sees (and trims, splits, tests) the content as it was.
// 2. The template is rendered; its own markers are real text and match as tokens.
// 3. The encoder splits on added tokens as the library does, puts each sentinel's text back inside
//    its section before normalizing, and encodes that section as plain text (see tokenizer.ts).
import { LmError } from './errors.ts';

interface TrieNode {
  next: Map<string, TrieNode>;
  /** The word ending here, if any. */
  end: string | null;
}

/** Longest-match dictionary over UTF-16 code units, the same walk as the library's DictionarySplitter. */
export class TokenTrie {
  private readonly root: TrieNode = { next: new Map(), end: null };
  readonly size: number;

  constructor(words: Iterable<string>) {
    let n = 0;
    for (const word of words) {
      if (word.length === 0) continue;
      let node = this.root;
      for (let i = 0; i < word.length; i++) {
        const ch = word[i]!;
        let child = node.next.get(ch);
        if (!child) {
          child = { next: new Map(), end: null };
          node.next.set(ch, child);
        }
        node = child;
      }
      if (node.end === null) n++;
      node.end = word;
    }
    this.size = n;
  }

  /** The longest word that starts at text[i], or null. */
  matchAt(text: string, i: number): string | null {
    let node: TrieNode | undefined = this.root;
    let match: string | null = null;
    for (let j = i; j < text.length; j++) {
      node = node.next.get(text[j]!);
      if (!node) break;
      if (node.end !== null) match = node.end;
    }
    return match;
  }

  /** Split text into words and the runs between them, as DictionarySplitter.split does. */
  split(text: string): string[] {
    if (this.size === 0) return text.length ? [text] : [];
    const out: string[] = [];
    let start = 0;
    let i = 0;
    while (i < text.length) {
      const match = this.matchAt(text, i);
      if (match !== null) {
        if (i > start) out.push(text.slice(start, i));
        out.push(match);
        i += match.length;
        start = i;
      } else {
        i++;
      }
    }
    if (start < text.length) out.push(text.slice(start));
    return out;
  }
}

// Private-use code points: no vocabulary gives them meaning as markers, and no normalizer we know
// of changes them. The BMP range first (one code unit), then planes 15 and 16.
const PUA_RANGES: ReadonlyArray<readonly [number, number]> = [
  [0xe000, 0xf8ff],
  [0xf0000, 0xffffd],
  [0x100000, 0x10fffd],
];
export const PRIVATE_USE = /[\uE000-\uF8FF\u{F0000}-\u{FFFFD}\u{100000}-\u{10FFFD}]/u;
const PRIVATE_USE_ALL = /[\uE000-\uF8FF\u{F0000}-\u{FFFFD}\u{100000}-\u{10FFFD}]/gu;

/** Private-use characters in `text` (they must not be handed out as sentinels). */
export function privateUseChars(text: string, into: Set<string> = new Set()): Set<string> {
  if (!PRIVATE_USE.test(text)) return into;
  for (const m of text.matchAll(PRIVATE_USE_ALL)) into.add(m[0]);
  return into;
}

/** Sentinel characters of one prompt: each stands for one original text. */
export class Sentinels {
  private readonly byOriginal = new Map<string, string>();
  private readonly original = new Map<string, string>();
  private range = 0;
  private next = PUA_RANGES[0]![0];

  constructor(private readonly reserved: ReadonlySet<string>) {}

  get size(): number {
    return this.original.size;
  }

  for(text: string): string {
    const hit = this.byOriginal.get(text);
    if (hit !== undefined) return hit;
    for (;;) {
      const r = PUA_RANGES[this.range];
      if (!r) throw new LmError('bad_argument', 'the messages hold too many distinct special-token texts to encode');
      if (this.next > r[1]) {
        this.range++;
        this.next = PUA_RANGES[this.range]?.[0] ?? 0;
        continue;
      }
      const ch = String.fromCodePoint(this.next++);
      if (this.reserved.has(ch)) continue;
      this.byOriginal.set(text, ch);
      this.original.set(ch, text);
      return ch;
    }
  }

  /** Put back the text of every sentinel in `text`. */
  restore(text: string): string {
    if (this.original.size === 0) return text;
    return text.replace(PRIVATE_USE_ALL, (ch) => this.original.get(ch) ?? ch);
  }

  /** Does `text` hold one of these sentinels? */
  holdsAny(text: string): boolean {
    if (this.original.size === 0 || !PRIVATE_USE.test(text)) return false;
    for (const m of text.matchAll(PRIVATE_USE_ALL)) if (this.original.has(m[0])) return true;
    return false;
  }
}

/** The protected token texts, indexed for finding them inside content and at its edges. */
export class ProtectedTokens {
  private readonly trie: TokenTrie;
  /** Code unit c → (token, i) with token[i] === c and i ≥ 1: a token that may begin before a content starting with c. */
  private readonly startsBefore = new Map<string, Array<readonly [string, number]>>();
  /** Code unit c → (token, j) with token[j] === c and j ≤ length − 2: a token that may go on after a content ending with c. */
  private readonly goesOnAfter = new Map<string, Array<readonly [string, number]>>();

  constructor(
    readonly contents: ReadonlySet<string>,
    /** Defuse the first and last character of every content (for protected tokens matched after normalization). */
    private readonly alwaysGuardEdges: boolean,
  ) {
    this.trie = new TokenTrie(contents);
    const push = (map: Map<string, Array<readonly [string, number]>>, ch: string, entry: readonly [string, number]) => {
      const list = map.get(ch);
      if (list) list.push(entry);
      else map.set(ch, [entry]);
    };
    for (const t of contents) {
      for (let i = 1; i < t.length; i++) push(this.startsBefore, t[i]!, [t, i]);
      for (let j = 0; j + 1 < t.length; j++) push(this.goesOnAfter, t[j]!, [t, j]);
    }
  }

  get empty(): boolean {
    return this.trie.size === 0;
  }

  /** Could a protected token begin before `s` (in template text) and take in its first character? */
  private riskAtStart(s: string): boolean {
    for (const [t, i] of this.startsBefore.get(s[0]!) ?? []) {
      const k = Math.min(s.length, t.length - i);
      if (t.startsWith(s.slice(0, k), i)) return true;
    }
    return false;
  }

  /** Could a protected token begin inside `s` and go on past its last character? */
  private riskAtEnd(s: string): boolean {
    for (const [t, j] of this.goesOnAfter.get(s[s.length - 1]!) ?? []) {
      const k = Math.min(s.length, j + 1);
      if (s.endsWith(t.slice(j + 1 - k, j + 1))) return true;
    }
    return false;
  }

  /**
   * `content` with every protected token text, and any edge character that could join one, replaced
   * by sentinels; null when nothing needed replacing (the prompt can then be encoded as before).
   */
  defuse(content: string, sentinels: Sentinels): string | null {
    if (content.length === 0 || this.empty) return null;
    let out = '';
    let changed = false;
    let i = 0;
    while (i < content.length) {
      const m = this.trie.matchAt(content, i);
      if (m !== null) {
        out += sentinels.for(m);
        i += m.length;
        changed = true;
      } else {
        out += content[i];
        i++;
      }
    }
    if (this.alwaysGuardEdges || this.riskAtStart(out)) {
      const first = String.fromCodePoint(out.codePointAt(0)!);
      if (!sentinels.holdsAny(first)) {
        out = sentinels.for(first) + out.slice(first.length);
        changed = true;
      }
    }
    if (out.length > 0 && (this.alwaysGuardEdges || this.riskAtEnd(out))) {
      const lastUnit = out.charCodeAt(out.length - 1);
      const width = lastUnit >= 0xdc00 && lastUnit <= 0xdfff && out.length >= 2 ? 2 : 1;
      const last = out.slice(out.length - width);
      if (!sentinels.holdsAny(last)) {
        out = out.slice(0, out.length - width) + sentinels.for(last);
        changed = true;
      }
    }
    return changed ? out : null;
  }
}
