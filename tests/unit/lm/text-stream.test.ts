import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { StopMatcher, TextStreamDecoder, type TokenTextSource } from '../../../server/lm/text-stream.ts';
import { loadTokenizer } from '../../../server/lm/tokenizer.ts';
import { randomChunks, randomText, seededRandom } from '../../helpers/random-text.ts';
import { writeByteLevelFixture, writeMetaspaceFixture } from '../../helpers/tokenizer-fixtures.ts';

const enc = new TextEncoder();
const fixtures = [writeByteLevelFixture(), writeMetaspaceFixture()];
after(() => fixtures.forEach((f) => rmSync(f.dir, { recursive: true, force: true })));

/** A vocabulary made up on the fly: every chunk pushed becomes a token. Ids ≥ 1000 are special. */
class ChunkVocabulary implements TokenTextSource {
  private readonly table: Uint8Array[] = [];
  readonly specialTokenIds = new Set<number>();
  private readonly specials = new Map<number, Uint8Array>();
  decodeStripsLeadingSpace = false;

  add(bytes: Uint8Array): number {
    this.table.push(bytes);
    return this.table.length - 1;
  }

  addSpecial(content: string): number {
    const id = 1000 + this.specials.size;
    this.specials.set(id, enc.encode(content));
    this.specialTokenIds.add(id);
    return id;
  }

  tokenBytes(id: number): Uint8Array {
    return this.specials.get(id) ?? this.table[id] ?? new Uint8Array(0);
  }
}

/** The longest prefix of valid UTF-8 `bytes[0..end)` that ends on a character boundary. */
function completePrefix(bytes: Uint8Array, end: number): string {
  let k = end;
  while (k > 0 && k < bytes.length && (bytes[k] & 0xc0) === 0x80) k--;
  return new TextDecoder().decode(bytes.subarray(0, k));
}

/** Where the stream must stop: before the stop string that completes first (then the longest). */
function cutAtStop(text: string, stops: string[]): { text: string; stopped: boolean } {
  let best: { at: number; end: number } | null = null;
  for (const s of stops) {
    if (!s) continue;
    const at = text.indexOf(s);
    if (at < 0) continue;
    const end = at + s.length;
    if (!best || end < best.end || (end === best.end && at < best.at)) best = { at, end };
  }
  return best ? { text: text.slice(0, best.at), stopped: true } : { text, stopped: false };
}

describe('TextStreamDecoder', () => {
  it('emits every character as soon as its last byte arrives, never half of one', () => {
    const rand = seededRandom(10);
    for (let t = 0; t < 400; t++) {
      const text = randomText(rand, 30);
      const bytes = enc.encode(text);
      const vocab = new ChunkVocabulary();
      const decoder = new TextStreamDecoder(vocab);
      let streamed = '';
      let end = 0;
      for (const chunk of randomChunks(bytes, rand)) {
        const delta = decoder.push(vocab.add(chunk));
        end += chunk.length;
        assert.ok(!delta.includes('\uFFFD'), 'no replacement character for valid text');
        streamed += delta;
        assert.equal(streamed, completePrefix(bytes, end), `after ${end} bytes of ${JSON.stringify(text)}`);
      }
      assert.equal(decoder.flush(), '');
      assert.equal(streamed, text);
    }
  });

  it('holds a split 4-byte character across several tokens', () => {
    const vocab = new ChunkVocabulary();
    const d = new TextStreamDecoder(vocab);
    const bytes = enc.encode('a😀b');
    assert.equal(d.push(vocab.add(bytes.subarray(0, 2))), 'a');
    assert.equal(d.push(vocab.add(bytes.subarray(2, 3))), '');
    assert.equal(d.push(vocab.add(bytes.subarray(3, 4))), '');
    assert.equal(d.push(vocab.add(bytes.subarray(4))), '😀b');
  });

  it('turns broken bytes into U+FFFD: an incomplete tail on flush, invalid bytes in place', () => {
    const vocab = new ChunkVocabulary();
    const d = new TextStreamDecoder(vocab);
    assert.equal(d.push(vocab.add(Uint8Array.of(0x68, 0xe4, 0xbd))), 'h');
    assert.equal(d.flush(), '\uFFFD');
    const e = new TextStreamDecoder(vocab);
    assert.equal(e.push(vocab.add(Uint8Array.of(0xe4))), '');
    assert.equal(e.push(vocab.add(Uint8Array.of(0x61))), '\uFFFDa', 'a truncated character followed by ASCII');
    assert.equal(e.push(vocab.add(Uint8Array.of(0xff, 0x62))), '\uFFFDb');
    assert.equal(e.flush(), '');
  });

  it("skips special tokens' text unless asked, without disturbing a pending character", () => {
    const vocab = new ChunkVocabulary();
    const eos = vocab.addSpecial('<|endoftext|>');
    const bytes = enc.encode('é');
    const first = vocab.add(bytes.subarray(0, 1));
    const second = vocab.add(bytes.subarray(1));
    const d = new TextStreamDecoder(vocab);
    assert.equal(d.push(first), '');
    assert.equal(d.push(eos), '');
    assert.equal(d.push(second), 'é');
    const withSpecials = new TextStreamDecoder(vocab, { includeSpecialTokens: true });
    assert.equal(withSpecials.push(eos), '<|endoftext|>');
  });

  it('drops one leading space when the tokenizer decodes that way', () => {
    const vocab = new ChunkVocabulary();
    vocab.decodeStripsLeadingSpace = true;
    const bos = vocab.addSpecial('<s>');
    const d = new TextStreamDecoder(vocab);
    assert.equal(d.push(bos), '');
    assert.equal(d.push(vocab.add(enc.encode(' Hello'))), 'Hello');
    assert.equal(d.push(vocab.add(enc.encode(' world'))), ' world');
    const keep = new TextStreamDecoder(vocab, { stripLeadingSpace: false });
    assert.equal(keep.push(vocab.add(enc.encode(' Hi'))), ' Hi');
  });

  it('streams exactly what decode(ids, {skipSpecialTokens}) gives, with both tokenizer styles', () => {
    const rand = seededRandom(11);
    for (const f of fixtures) {
      const tok = loadTokenizer(f.dir);
      for (let t = 0; t < 150; t++) {
        const ids = tok.encode(randomText(rand, 30), { addSpecialTokens: true });
        if (t % 3 === 0) ids.splice(Math.floor(rand() * ids.length), 0, tok.eosTokenIds[0]); // a special token mid-stream
        const d = new TextStreamDecoder(tok);
        const deltas = ids.map((id) => d.push(id));
        deltas.push(d.flush());
        assert.equal(deltas.join(''), tok.decode(ids, { skipSpecialTokens: true }));
        for (const delta of deltas) assert.ok(!delta.includes('\uFFFD'));
      }
    }
  });
});

describe('StopMatcher', () => {
  it('passes text through when there are no stop strings', () => {
    const m = new StopMatcher([]);
    assert.deepEqual(m.push('abc<|im_end|>'), { emit: 'abc<|im_end|>', stopped: false });
    assert.equal(m.flush(), '');
  });

  it('cuts before a stop string inside one delta and emits nothing after it', () => {
    const m = new StopMatcher(['<|im_end|>']);
    assert.deepEqual(m.push('Hello<|im_end|>junk'), { emit: 'Hello', stopped: true });
    assert.deepEqual(m.push('more'), { emit: '', stopped: true });
    assert.equal(m.stopped, true);
    assert.equal(m.flush(), '');
  });

  it('holds back a possible beginning of a stop string across deltas', () => {
    const m = new StopMatcher(['<|im_end|>']);
    assert.deepEqual(m.push('Hel'), { emit: 'Hel', stopped: false });
    assert.deepEqual(m.push('lo<|im'), { emit: 'lo', stopped: false });
    assert.deepEqual(m.push('_en'), { emit: '', stopped: false });
    assert.deepEqual(m.push('d|>more'), { emit: '', stopped: true });
  });

  it('releases a held tail that turned out not to be a stop string', () => {
    const m = new StopMatcher(['<|im_end|>']);
    assert.deepEqual(m.push('a <|'), { emit: 'a ', stopped: false });
    assert.deepEqual(m.push('x'), { emit: '<|x', stopped: false });
    assert.deepEqual(m.push('tail<|im'), { emit: 'tail', stopped: false });
    assert.equal(m.flush(), '<|im', 'generation ended: the held text was ordinary text');
  });

  it('handles self-overlapping stop strings', () => {
    const m = new StopMatcher(['aab']);
    const out = ['a', 'a', 'a', 'b'].map((d) => m.push(d));
    assert.equal(out.map((o) => o.emit).join(''), 'a');
    assert.equal(out.at(-1)!.stopped, true);
  });

  it('stops at the stop string that completes first, whatever the chunking', () => {
    const whole = new StopMatcher(['abcde', 'cd']);
    assert.deepEqual(whole.push('xabcdef'), { emit: 'xab', stopped: true });
    const bytes = new StopMatcher(['abcde', 'cd']);
    const emitted = [...'xabcdef'].map((c) => bytes.push(c).emit).join('');
    assert.equal(emitted, 'xab');
  });

  it('ignores empty stop strings', () => {
    const m = new StopMatcher(['', 'END']);
    assert.deepEqual(m.push('abc'), { emit: 'abc', stopped: false });
  });

  it('property: emitted text is the final text, cut before the first stop, and never shows a stop string', () => {
    const rand = seededRandom(12);
    const alphabet = ['a', 'b', '<', '|', '>', ' ', 'é', '😀', '\n'];
    const pick = (): string => alphabet[Math.floor(rand() * alphabet.length)];
    const word = (n: number): string => Array.from({ length: 1 + Math.floor(rand() * n) }, pick).join('');
    for (let t = 0; t < 2000; t++) {
      const text = word(40);
      const stops = Array.from({ length: Math.floor(rand() * 4) }, () => word(4));
      const expected = cutAtStop(text, stops);
      const m = new StopMatcher(stops);
      let streamed = '';
      let stopped = false;
      let i = 0;
      while (i < text.length && !stopped) {
        // Deltas of whole code points, as TextStreamDecoder produces.
        let j = i + Math.floor(rand() * 5);
        if (j < text.length && /[\uDC00-\uDFFF]/.test(text[j])) j++;
        const r = m.push(text.slice(i, Math.min(j, text.length)));
        streamed += r.emit;
        stopped = r.stopped;
        i = j;
        assert.ok(expected.text.startsWith(streamed), `streamed text is a prefix of the result (${t})`);
      }
      if (!stopped) streamed += m.flush();
      assert.equal(stopped, expected.stopped, `case ${t}: ${JSON.stringify({ text, stops })}`);
      assert.equal(streamed, expected.text, `case ${t}: ${JSON.stringify({ text, stops })}`);
      if (stopped) for (const s of stops) if (s) assert.ok(!streamed.includes(s));
    }
  });
});

describe('TextStreamDecoder + StopMatcher', () => {
  it('random multibyte text in random byte chunks with stop strings straddling tokens', () => {
    const rand = seededRandom(13);
    const stops = ['<|im_end|>', '。\n', '😀END'];
    for (let t = 0; t < 500; t++) {
      const stop = stops[t % stops.length];
      const text = randomText(rand, 20) + (t % 4 === 0 ? '' : stop) + randomText(rand, 10);
      const bytes = enc.encode(text);
      const vocab = new ChunkVocabulary();
      const decoder = new TextStreamDecoder(vocab);
      const matcher = new StopMatcher(stops);
      const expected = cutAtStop(text, stops);
      let streamed = '';
      let stopped = false;
      for (const chunk of randomChunks(bytes, rand)) {
        const r = matcher.push(decoder.push(vocab.add(chunk)));
        streamed += r.emit;
        if (r.stopped) {
          stopped = true;
          break;
        }
      }
      if (!stopped) {
        const tail = matcher.push(decoder.flush());
        streamed += tail.emit + (tail.stopped ? '' : matcher.flush());
        stopped = tail.stopped;
      }
      assert.equal(streamed, expected.text, JSON.stringify(text));
      assert.equal(stopped, expected.stopped);
      for (const s of stops) assert.ok(!streamed.includes(s));
    }
  });
});
