// Summary figures of a generated corpus, for the training report: counts per topic, domain, kind
// and style value, mean words per style value, and how varied the responses are.
import { getTopic, type Example, type Kind } from './corpus.ts';
import { DIMENSIONS, VALUES, type Dimension } from './style.ts';

export interface CorpusStats {
  examples: number;
  topics: number;
  perTopic: Record<string, number>;
  perDomain: Record<string, number>;
  perKind: Partial<Record<Kind, number>>;
  /** Examples per value of each dimension, poles and neutral. */
  perValue: Record<Dimension, Record<string, number>>;
  /** Mean words of the response per value of each dimension. */
  meanWords: Record<Dimension, Record<string, number>>;
  meanWordsOverall: number;
  /** Distinct response texts / examples. */
  uniqueResponseShare: number;
  /** The sentence found in the most responses, and the share of responses containing it. */
  mostCommonSentence: { sentence: string; share: number };
  multiTurn: number;
}

const wordCount = (s: string): number => (s.match(/[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*/g) ?? []).length;

/** Sentences of a response as the diversity figures count them (normalized for case and spacing). */
export function responseSentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+/)
    .map((s) => s.trim().toLowerCase().replace(/\s+/g, ' '))
    .filter((s) => s.length > 0);
}

export function corpusStats(examples: readonly Example[]): CorpusStats {
  const inc = (m: Record<string, number>, k: string, by = 1) => void (m[k] = (m[k] ?? 0) + by);
  const perTopic: Record<string, number> = {};
  const perDomain: Record<string, number> = {};
  const perKind: Record<string, number> = {};
  const perValue = Object.fromEntries(DIMENSIONS.map((d) => [d, Object.fromEntries(VALUES[d].map((v) => [v, 0]))])) as Record<Dimension, Record<string, number>>;
  const wordSums = Object.fromEntries(DIMENSIONS.map((d) => [d, Object.fromEntries(VALUES[d].map((v) => [v, 0]))])) as Record<Dimension, Record<string, number>>;
  const sentenceDocs = new Map<string, number>();
  let words = 0;
  let multiTurn = 0;
  for (const e of examples) {
    inc(perTopic, e.topic);
    inc(perDomain, getTopic(e.topic).domain);
    inc(perKind, e.kind);
    if (e.messages.length > 1) multiTurn++;
    const w = wordCount(e.response);
    words += w;
    for (const d of DIMENSIONS) {
      inc(perValue[d], e.style[d]);
      inc(wordSums[d], e.style[d], w);
    }
    for (const s of new Set(responseSentences(e.response))) sentenceDocs.set(s, (sentenceDocs.get(s) ?? 0) + 1);
  }
  const meanWords = Object.fromEntries(
    DIMENSIONS.map((d) => [d, Object.fromEntries(VALUES[d].map((v) => [v, perValue[d][v] ? wordSums[d][v]! / perValue[d][v]! : 0]))]),
  ) as Record<Dimension, Record<string, number>>;
  let top = { sentence: '', share: 0 };
  for (const [sentence, n] of sentenceDocs) {
    const share = n / Math.max(1, examples.length);
    if (share > top.share || (share === top.share && sentence < top.sentence)) top = { sentence, share };
  }
  return {
    examples: examples.length,
    topics: Object.keys(perTopic).length,
    perTopic,
    perDomain,
    perKind,
    perValue,
    meanWords,
    meanWordsOverall: examples.length ? words / examples.length : 0,
    uniqueResponseShare: examples.length ? new Set(examples.map((e) => e.response)).size / examples.length : 1,
    mostCommonSentence: top,
    multiTurn,
  };
}
