import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveTokenizer, trainByteLevelBpe, type TrainedTokenizer } from '../../../sandbox/bpe.ts';
import { loadTokenizer, type ChatMessage, type ChatTokenizer } from '../../../server/lm/tokenizer.ts';
import { isLmError } from '../../../server/lm/errors.ts';
import { seededRandom } from '../../helpers/random-text.ts';
import { gpt2ByteAlphabet } from '../../helpers/tokenizer-fixtures.ts';

const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
const VOCAB = 400;
const REPEATED = 'lighthouse';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function saveAndLoad(result: TrainedTokenizer): ChatTokenizer {
  const dir = mkdtempSync(join(tmpdir(), 'attune-bpe-'));
  dirs.push(dir);
  saveTokenizer(dir, result);
  return loadTokenizer(dir);
}

/** A few hundred varied English sentences; REPEATED occurs exactly 500 times. */
function buildCorpus(): string[] {
  const rand = seededRandom(11);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const subjects = ['The keeper', 'A tired sailor', 'My neighbour', 'The old captain', 'Every child', 'Our teacher', 'She', 'He', 'They', 'Nobody'];
  const verbs = ['walked to', 'painted', 'dreamed about', 'wrote a letter about', 'could see', 'remembered', 'sang of', 'visited', 'repaired', 'photographed'];
  const objects = ['the harbour', 'a quiet village', 'the northern coast', 'an empty café', 'the morning market', 'the river bank', 'a small garden', 'the naïve painter', 'the station', 'the museum'];
  const tails = ['before sunrise.', 'in the rain!', 'last winter.', 'with great care.', 'for 3 hours.', 'on 12 May 2024.', "and didn't return.", "because it's beautiful.", '— nobody knows why?', 'while drinking tea.'];
  const texts: string[] = [];
  for (let i = 0; i < 400; i++) {
    let s = `${pick(subjects)} ${pick(verbs)} ${pick(objects)} ${pick(tails)}`;
    if (i < 250) s += ` The ${REPEATED} was bright, and the ${REPEATED} stood tall.`;
    if (i % 17 === 0) s += '\n\nRésumé: 東京 and Zürich 😀.';
    if (i % 23 === 0) s = `<|im_start|>user\n${s}<|im_end|>\n<|im_start|>assistant\nOkay.<|im_end|><|endoftext|>`;
    texts.push(s);
  }
  return texts;
}

const corpus = buildCorpus();
const trained = trainByteLevelBpe(corpus, { vocabSize: VOCAB, specials: SPECIALS });
const tok = saveAndLoad(trained);

const { byteToChar, byteOrder } = gpt2ByteAlphabet();
const byteLevel = (text: string): string => [...Buffer.from(text, 'utf8')].map((b) => byteToChar[b]).join('');
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const utf8 = (s: string): number[] => [...Buffer.from(s, 'utf8')];

/** Textbook BPE: merge the lowest-ranked adjacent pair (everywhere in the word) until none is left. */
function encodeByRank(text: string, merges: ReadonlyArray<readonly [string, string]>, vocab: Record<string, number>): number[] {
  const rank = new Map(merges.map(([a, b], i) => [`${a} ${b}`, i]));
  const ids: number[] = [];
  for (const piece of text.match(GPT2_SPLIT) ?? []) {
    let parts = [...byteLevel(piece)];
    for (;;) {
      let best = Infinity;
      for (let i = 0; i + 1 < parts.length; i++) best = Math.min(best, rank.get(`${parts[i]} ${parts[i + 1]}`) ?? Infinity);
      if (best === Infinity) break;
      const [a, b] = merges[best]!;
      const next: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (i + 1 < parts.length && parts[i] === a && parts[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(parts[i]!);
      }
      parts = next;
    }
    for (const p of parts) ids.push(vocab[p]!);
  }
  return ids;
}

/** Training with a full recount of every pair before each merge: slow, obviously right. */
function trainNaive(texts: string[], mergeCount: number, specials: string[]): Array<[string, string]> {
  const split = new RegExp(specials.map((s) => s.replace(/[|]/g, '\\|')).join('|'));
  const freq = new Map<string, number>();
  for (const t of texts) for (const seg of t.split(split)) for (const p of seg.match(GPT2_SPLIT) ?? []) freq.set(p, (freq.get(p) ?? 0) + 1);
  const strings = byteOrder.map((b) => byteToChar[b]!);
  const idOf = new Map(strings.map((s, i) => [s, i]));
  const words = [...freq].map(([p, n]) => ({ ids: [...byteLevel(p)].map((c) => idOf.get(c)!), n }));
  const merges: Array<[string, string]> = [];
  while (merges.length < mergeCount) {
    const counts = new Map<string, number>();
    for (const w of words) for (let i = 0; i + 1 < w.ids.length; i++) counts.set(`${w.ids[i]},${w.ids[i + 1]}`, (counts.get(`${w.ids[i]},${w.ids[i + 1]}`) ?? 0) + w.n);
    let best: [number, number, number] | null = null;
    for (const [k, c] of counts) {
      const [a, b] = k.split(',').map(Number) as [number, number];
      if (best === null || c > best[0] || (c === best[0] && (a < best[1] || (a === best[1] && b < best[2])))) best = [c, a, b];
    }
    if (best === null || best[0] < 2) break;
    const [, a, b] = best;
    const c = strings.length;
    strings.push(strings[a]! + strings[b]!);
    merges.push([strings[a]!, strings[b]!]);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.ids.length; i++) {
        if (i + 1 < w.ids.length && w.ids[i] === a && w.ids[i + 1] === b) {
          out.push(c);
          i++;
        } else out.push(w.ids[i]!);
      }
      w.ids = out;
    }
  }
  return merges;
}

/** Random strings over ASCII, controls, accents, combining marks, CJK, emoji and odd whitespace. */
function randomUnicode(rand: () => number): string {
  const pools: Array<[number, number]> = [
    [0x00, 0x1f], // C0 controls, including \t \n \r
    [0x7f, 0x9f], // DEL and C1 controls
    [0x20, 0x7e],
    [0x61, 0x7a],
    [0xc0, 0xff],
    [0x300, 0x36f],
    [0x4e00, 0x4fff],
    [0xac00, 0xacff],
    [0x1f300, 0x1f64f],
    [0x1d400, 0x1d4ff],
  ];
  const pieces = [' the', ' lighthouse', 'e\u0301', '\n', '\r\n', '\u00a0', '\u2028', '\u200d', 'x\ufeffy', '👩‍💻', "'s", '  ', '...'];
  const n = Math.floor(rand() * 60);
  let out = '';
  for (let i = 0; i < n; i++) {
    if (rand() < 0.25) {
      out += pieces[Math.floor(rand() * pieces.length)];
      continue;
    }
    const [lo, hi] = pools[Math.floor(rand() * pools.length)]!;
    out += String.fromCodePoint(lo + Math.floor(rand() * (hi - lo + 1)));
  }
  return out;
}

describe('trainByteLevelBpe', () => {
  it('writes a tokenizer that loadTokenizer reads: bytes, merges in rank order, specials last', () => {
    const { model, added_tokens } = trained.tokenizerJson;
    assert.equal(trained.stats.stoppedEarly, false);
    assert.equal(trained.stats.merges, VOCAB - 256 - SPECIALS.length);
    assert.equal(model.merges.length, trained.stats.merges);
    assert.equal(tok.vocabSize, VOCAB);
    byteOrder.forEach((b, id) => {
      assert.equal(model.vocab[byteToChar[b]!], id);
      assert.deepEqual([...tok.tokenBytes(id)], [b]);
    });
    model.merges.forEach(([a, b], rank) => assert.equal(model.vocab[a + b], 256 + rank, `merge ${rank}: ${a} ${b}`));
    assert.equal(Object.keys(model.vocab).length, VOCAB - SPECIALS.length);
    assert.deepEqual(
      added_tokens.map((t) => [t.id, t.content, t.special]),
      SPECIALS.map((s, k) => [VOCAB - SPECIALS.length + k, s, true]),
    );
    const [endOfText, imStart, imEnd] = [397, 398, 399];
    assert.deepEqual(tok.specialTokenIds, new Set([endOfText, imStart, imEnd]));
    assert.equal(tok.bosTokenId, endOfText);
    assert.deepEqual(tok.eosTokenIds, [imEnd]);
    assert.deepEqual(tok.encode('<|im_start|>x<|im_end|>'), [imStart, tok.encode('x')[0], imEnd]);
    assert.equal(tok.hasOwnChatTemplate, true);
    const config = JSON.parse(readFileSync(join(dirs[0]!, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config.eos_token, '<|im_end|>');
    assert.equal(config.clean_up_tokenization_spaces, false);
    assert.equal(config.model_max_length, 1024);
  });

  it('round-trips any UTF-8 string through encode and decode, byte for byte', () => {
    const rand = seededRandom(5);
    const texts = ['', ' ', '\u0000', '\ufeffleading BOM', 'e\u0301', 'Zürich 東京 😀', ...corpus.slice(0, 20)];
    for (let i = 0; i < 600; i++) texts.push(randomUnicode(rand));
    for (const text of texts) {
      const ids = tok.encode(text);
      assert.equal(tok.decode(ids), text, JSON.stringify(text));
      assert.deepEqual(
        ids.flatMap((id) => [...tok.tokenBytes(id)]),
        utf8(text),
        JSON.stringify(text),
      );
    }
  });

  it('learns multi-byte characters and frequent words as single tokens', () => {
    assert.equal(tok.encode(` ${REPEATED}`).length, 1, 'the word seen 500 times is one token');
    assert.ok(tok.encode(` The ${REPEATED} was bright`).length <= 5);
    assert.ok(tok.encode(' café').length < utf8(' café').length, 'é (2 bytes) is merged');
  });

  it('applies merges in rank order, exactly as textbook BPE does', () => {
    const { merges, vocab } = trained.tokenizerJson.model;
    const rand = seededRandom(9);
    const texts = [...corpus.slice(0, 60), "The lighthouses' keepers' harbour-side cafés", 'lighthouselighthouse  lighthouse'];
    for (let i = 0; i < 200; i++) texts.push(randomUnicode(rand));
    let multiTokenPieces = 0;
    for (const text of texts) {
      if (SPECIALS.some((s) => text.includes(s))) continue;
      const expected = encodeByRank(text, merges, vocab);
      assert.deepEqual(tok.encode(text), expected, JSON.stringify(text));
      multiTokenPieces += expected.filter((id) => id >= 256).length;
    }
    assert.ok(multiTokenPieces > 500, 'the comparison exercises many merged tokens');
  });

  it('learns the same merges as a full recount before every merge', () => {
    const small = corpus.slice(0, 120);
    const fast = trainByteLevelBpe(small, { vocabSize: 256 + 3 + 120, specials: SPECIALS });
    assert.deepEqual(fast.tokenizerJson.model.merges, trainNaive(small, 120, SPECIALS));
  });

  it('is deterministic: the same texts give identical JSON, from an array or a generator', () => {
    function* again(): Generator<string> {
      yield* buildCorpus();
    }
    const second = trainByteLevelBpe(again(), { vocabSize: VOCAB, specials: SPECIALS });
    assert.equal(JSON.stringify(second.tokenizerJson), JSON.stringify(trained.tokenizerJson));
    assert.equal(JSON.stringify(second.tokenizerConfigJson), JSON.stringify(trained.tokenizerConfigJson));
    const reordered = trainByteLevelBpe([...corpus].reverse(), { vocabSize: VOCAB, specials: SPECIALS });
    assert.deepEqual(reordered.tokenizerJson.model.merges, trained.tokenizerJson.model.merges, 'counts, not text order, decide');
  });

  it('renders ChatML through applyChatTemplate and encodes it with single special tokens', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Where is the lighthouse?' },
      { role: 'assistant', content: 'On the coast.' },
    ];
    const text = tok.applyChatTemplate(messages, { addGenerationPrompt: true });
    assert.equal(
      text,
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhere is the lighthouse?<|im_end|>\n' +
        '<|im_start|>assistant\nOn the coast.<|im_end|>\n<|im_start|>assistant\n',
    );
    assert.equal(tok.applyChatTemplate(messages.slice(0, 1), { addGenerationPrompt: false }), '<|im_start|>system\nBe brief.<|im_end|>\n');
    const ids = tok.encodeChat(messages, { addGenerationPrompt: true });
    assert.equal(ids[0], 398, 'no BOS is added in front of the template');
    assert.equal(ids.filter((id) => id === 398).length, 4);
    assert.equal(ids.filter((id) => id === 399).length, 3);
    assert.equal(tok.decode(ids), text);
  });

  it('compresses its English training text at least 2x (bytes per token)', () => {
    let bytes = 0;
    let tokens = 0;
    for (const text of corpus) {
      bytes += utf8(text).length;
      tokens += tok.encode(text).length;
    }
    assert.ok(bytes / tokens >= 2, `${(bytes / tokens).toFixed(2)} bytes per token`);
  });

  it('learns nothing across special tokens in the corpus', () => {
    const texts = Array.from({ length: 300 }, (_, i) => `<|im_start|>user\nhi ${i % 7}<|im_end|><|im_start|>assistant\nok<|im_end|>`);
    const r = trainByteLevelBpe(texts, { vocabSize: 300, specials: SPECIALS });
    const learned = r.tokenizerJson.model.merges.map(([a, b]) => a + b);
    assert.ok(learned.includes('ok'));
    assert.ok(!learned.some((t) => t.includes('|>') || t.includes('<|')), JSON.stringify(learned));
    assert.equal(r.stats.bytes, 300 * utf8('user\nhi 0assistant\nok').length);
  });

  it('stops early when no pair is frequent enough, and reports progress up to the end', () => {
    const calls: Array<[number, number]> = [];
    const r = trainByteLevelBpe(['abc abc abc xyz'], {
      vocabSize: 1000,
      specials: SPECIALS,
      onProgress: (done, total) => calls.push([done, total]),
    });
    assert.equal(r.stats.stoppedEarly, true);
    assert.deepEqual(r.tokenizerJson.model.merges, [['a', 'b'], ['ab', 'c'], ['Ġ', 'abc']]);
    assert.deepEqual(calls.at(-1), [3, 3]);
    assert.equal(r.stats.vocabSize, 256 + 3 + 3);
    const small = saveAndLoad(r);
    assert.equal(small.vocabSize, r.stats.vocabSize);
    assert.deepEqual(small.encode('abc abc'), [257, 258]);
    const once = trainByteLevelBpe(['abc abc abc xyz'], { vocabSize: 1000, specials: SPECIALS, minFrequency: 1 });
    assert.ok(once.tokenizerJson.model.merges.some(([a, b]) => a + b === 'xy'), 'minFrequency 1 merges pairs seen once');
  });

  it('never learns a token that spells a special token', () => {
    // 'Ġhi' is what " hi" looks like in the byte alphabet; the library would map it to the special.
    const r = trainByteLevelBpe(Array.from({ length: 50 }, () => 'say hi hi hi'), { vocabSize: 300, specials: ['Ġhi'] });
    assert.ok(!('Ġhi' in r.tokenizerJson.model.vocab));
    const t = saveAndLoad(r);
    const ids = t.encode(' hi');
    assert.ok(!ids.includes(t.vocabSize - 1), 'the special is not produced from plain text');
    assert.equal(t.decode(ids), ' hi');
  });

  it('rejects impossible sizes and bad special tokens', () => {
    const rejects = (opts: Parameters<typeof trainByteLevelBpe>[1], mention: string): void =>
      assert.throws(
        () => trainByteLevelBpe(['text'], opts),
        (e: unknown) => isLmError(e, 'bad_argument') && e.message.includes(mention),
      );
    rejects({ vocabSize: 258, specials: SPECIALS }, 'vocabSize');
    rejects({ vocabSize: 400, specials: ['<a>', '<a>'] }, 'duplicate');
    rejects({ vocabSize: 400, specials: [''] }, 'empty');
    rejects({ vocabSize: 400, specials: ['a'] }, 'byte token');
    rejects({ vocabSize: 400, specials: SPECIALS, minFrequency: 0 }, 'minFrequency');
  });
});
