// Turning sampled token ids into text deltas that are safe to send as they come:
// - TextStreamDecoder reassembles UTF-8 from token bytes. A token may end in the middle of a
//   character (byte-level BPE, <0xNN> byte-fallback tokens); those bytes wait for the rest.
// - StopMatcher holds back any tail that might grow into a stop string, so a stop string never
//   reaches the client, not even its first half.
// Invariant (tested): the concatenation of every delta, flushes included, equals the final text,
// and that text equals `tokenizer.decode(ids, {skipSpecialTokens: true})` cut before the first stop string.
import type { ChatTokenizer } from './tokenizer.ts';
import { LmError } from './errors.ts';

/** What the stream decoder needs from a tokenizer. */
export type TokenTextSource = Pick<ChatTokenizer, 'tokenBytes' | 'specialTokenIds'> &
  Partial<Pick<ChatTokenizer, 'decodeStripsLeadingSpace'>>;

export interface TextStreamDecoderOptions {
  /**
   * Drop one space at the very start of the text, as sentencepiece decoders do ("▁Hello" → "Hello").
   * Defaults to the tokenizer's `decodeStripsLeadingSpace`, so streamed text equals `decode`.
   */
  stripLeadingSpace?: boolean;
  /** Emit special tokens' text too (default false: they are control tokens, not content). */
  includeSpecialTokens?: boolean;
}

export class TextStreamDecoder {
  // WHATWG streaming decode: holds an incomplete trailing sequence, turns invalid bytes into U+FFFD
  // exactly as a one-shot decode of the whole byte string would. ignoreBOM keeps a leading U+FEFF.
  private readonly utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  private pendingLeadingSpace: boolean;
  private readonly includeSpecial: boolean;

  constructor(
    private readonly source: TokenTextSource,
    opts: TextStreamDecoderOptions = {},
  ) {
    this.pendingLeadingSpace = opts.stripLeadingSpace ?? source.decodeStripsLeadingSpace ?? false;
    this.includeSpecial = opts.includeSpecialTokens ?? false;
  }

  /** Feed one token id; returns the text completed by it (often '', never half a character). */
  push(id: number): string {
    if (!this.includeSpecial && this.source.specialTokenIds.has(id)) return '';
    let bytes = this.source.tokenBytes(id);
    if (bytes.length === 0) return '';
    if (this.pendingLeadingSpace) {
      this.pendingLeadingSpace = false;
      if (bytes[0] === 0x20) bytes = bytes.subarray(1);
    }
    return this.utf8.decode(bytes, { stream: true });
  }

  /** End of generation: whatever bytes are left, with U+FFFD for an incomplete character. */
  flush(): string {
    return this.utf8.decode();
  }
}

export interface StopMatch {
  /** Text that is now safe to show. */
  emit: string;
  /** A stop string completed: `emit` ends just before it and every later push emits ''. */
  stopped: boolean;
}

export class StopMatcher {
  private readonly stops: string[];
  private held = '';
  private done = false;

  constructor(stopStrings: readonly string[]) {
    for (const s of stopStrings) {
      if (typeof s !== 'string') throw new LmError('bad_argument', 'stop strings must be strings');
    }
    // An empty stop string would match before any text; treat it as absent rather than stop at once.
    this.stops = [...new Set(stopStrings.filter((s) => s.length > 0))];
  }

  get stopped(): boolean {
    return this.done;
  }

  push(delta: string): StopMatch {
    if (this.done) return { emit: '', stopped: true };
    if (this.stops.length === 0) return { emit: delta, stopped: false };
    const text = this.held + delta;
    // Cut at the stop string that completes first (smallest end); on a tie the longer one, which
    // starts earlier. This makes the result independent of how the text was split into deltas.
    let cut = -1;
    let cutEnd = Infinity;
    for (const s of this.stops) {
      const at = text.indexOf(s);
      if (at < 0) continue;
      const end = at + s.length;
      if (end < cutEnd || (end === cutEnd && at < cut)) {
        cut = at;
        cutEnd = end;
      }
    }
    if (cut >= 0) {
      this.done = true;
      this.held = '';
      return { emit: text.slice(0, cut), stopped: true };
    }
    const keep = this.longestPrefixTail(text);
    this.held = text.slice(text.length - keep);
    return { emit: text.slice(0, text.length - keep), stopped: false };
  }

  /** Generation ended without a stop: the held tail was ordinary text after all. */
  flush(): string {
    if (this.done) return '';
    const rest = this.held;
    this.held = '';
    return rest;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
  private longestPrefixTail(text: string): number {
    let best = 0;
    for (const s of this.stops) {
      const max = Math.min(s.length - 1, text.length);
      for (let k = max; k > best; k--) {
        if (text.endsWith(s.slice(0, k))) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}
