// A deterministic style judge for the sandbox world: which pole of expertise, length and tone a
// text leans to. It reads general features only (sentence and word counts, word length,
// punctuation) and word lists of general English registers: analogies and simplifiers,
// hedges and technical vocabulary, pleasantries, curt labels and imperatives. It never looks at
// the corpus generator's phrase tables, so a model that paraphrases is judged the same way.
//
// Each dimension gets a signed score: negative leans to the first pole (elementary, concise,
// friendly), positive to the second (expert, detailed, blunt); `label` is neutral when the
// evidence is weak either way. Scores are evidence sums, not probabilities.
import { POLES, type Dimension, type ExpertisePole, type LengthPole, type TonePole } from './style.ts';

export interface Judgement<L extends string> {
  label: L | 'neutral';
  score: number;
}

export interface StyleJudgement {
  expertise: Judgement<ExpertisePole>;
  length: Judgement<LengthPole>;
  tone: Judgement<TonePole>;
}

/** Measured surface features, exposed for reports and debugging. */
export interface TextFeatures {
  words: number;
  sentences: number;
  meanSentenceWords: number;
  longWordShare: number;
  exclamations: number;
  elementaryCues: number;
  expertCues: number;
  friendlyCues: number;
  bluntCues: number;
  /** Sentences of at most four words ending in a period ("Deal with it."): curt when there is no warmth. */
  terseSentences: number;
}

type Cue = readonly [RegExp, number];

// Sentence-start anchor: the text start or the end of a previous sentence or label.
const START = String.raw`(?:^|[.!?:;]\s+|\n\s*)`;

const ELEMENTARY: readonly Cue[] = [
  [/\bthink of\b[^.!?;]{0,60}?\b(?:like|as)\b/gi, 2],
  [/\b(?:it|this|that|they)(?:'s| is| are|'re) (?:just |a bit |a lot |kind of |sort of |a little |really )?like\b/gi, 2],
  [/\b(?:kind|sort) of like\b/gi, 2],
  [/\b(?:a bit|a lot|just|much|a little) like\b/gi, 1.5],
  [/\bimagine\b/gi, 2],
  [new RegExp(`${START}(?:try to |now )?picture\\b`, 'gi'), 2],
  [/\bin (?:simple|plain|easy) (?:words|terms|english)\b/gi, 2],
  [/\b(?:simply put|put simply|to put it simply)\b/gi, 2],
  [/\bthe (?:big|main|simple) idea\b/gi, 1.5],
  [/\bbasically\b/gi, 1],
  [/\b(?:easy|easiest|simple|simplest|simply)\b/gi, 0.75],
  [/\b(?:tiny|little|kids?|grown-ups|oops|silly|slip(?:s|ped)? up|neat)\b/gi, 0.75],
  [/\bfun fact\b/gi, 1],
  [/\bjust remember\b|\bremember this\b/gi, 1],
  [/\blike (?:a|an|the|your|when)\b/gi, 0.75],
  [/\bcousins\b|\btwins\b|\btoolbox\b/gi, 0.5],
];

const EXPERT: readonly Cue[] = [
  [/\b(?:technically|formally|rigorously|precisely stated|strictly speaking|in technical terms|in precise terms)\b/gi, 2],
  [/\b(?:by (?:the standard )?definition|can be defined as|best characteri[sz]ed as|from a technical standpoint)\b/gi, 2],
  [/\b(?:typically|generally|approximately|roughly|notably|empirically|quantitatively|analytically|procedurally|operationally|methodically|systematically|subsequently|primarily|predominantly|mechanistic(?:ally)?|fundamentally|conceptually)\b/gi, 1],
  [/\bin practice\b|\bas a (?:general )?rule\b|\bunder (?:normal|standard|most|typical) conditions\b|\bwell[- ](?:documented|established|understood)\b/gi, 1.25],
  [/\b(?:parameters?|variables?|mechanisms?|magnitude|terminology|practitioners?|specialists?|rigorous|dominant|canonical|failure modes?|trade-?offs?|optimal|constraints?|distinctions?|principal|nuance|contingent|literature|context-dependent|differentiating|conceptual|protocol|interventions?|high-leverage|variability|propagate|discrete stages?|categories|interchangeable|representative|illustrative)\b/gi, 1],
  [/\b(?:the key|governing) (?:variables?|parameters?|factors?)\b/gi, 1],
  [/\b(?:technical|evidence|analysis|systematic|procedures?|recommended|recommendations?|relevant|factors?|framework|quantif(?:y|ied)|empirical|metrics?|criteria|efficacy|assessment|reliably|accounts? for|in terms of|hinges? on|execution|dominat(?:e|es|ed|ing)|outcomes?|leverage|stems? from|the role of|degrades?)\b/gi, 0.75],
  [/\bdepend(?:s|ing)? (?:primarily |mainly )?on (?:the )?(?:conditions|context|operating)\b|\bvaries with conditions\b|\badjusting for conditions\b/gi, 1],
];

const FRIENDLY: readonly Cue[] = [
  [/\b(?:happy to (?:help|explain)|glad (?:you asked|to help|i could help)|great question|good question|love this|lovely (?:question|topic)|thanks for asking|nice one|good one)\b/gi, 1.5],
  [/\b(?:hope (?:this|that|it) (?:helps|was useful|makes)|have (?:fun|a (?:great|lovely|wonderful) (?:time|day))|enjoy|you'?ve got this|feel free|good luck|you'?ll do great|you(?:'re| are) going to do great|cheering you on|all the best|let me know how it goes)\b/gi, 1.5],
  [/\b(?:wonderful|lovely|delighted|awesome|fantastic|exciting|ooh|yay)\b/gi, 1],
  [/\b(?:no worries|don'?t worry|that'?s (?:okay|ok|fine)|totally normal|in good company|kindly|friendly tip|heads-up)\b/gi, 1],
  [/\b(?:of course|sure thing|absolutely|i'?d (?:love|be glad) to|let's|happy \w+ing|ask me anything|good for you|wishing you|lots of fun)\b/gi, 1],
  [/\b(?:great|nice) (?:shape|idea|habit|choice)\b|\bpat on the back\b|\byou did it\b|\ball set\b/gi, 1],
  [/\bwhat an? (?:great|fun|lovely|nice|wonderful|good)\b|\bhow fun\b|\bso glad\b|\bi (?:really )?(?:enjoy|love)\b/gi, 1],
  [/\b(?:glad|happy|thanks|thank you|please)\b/gi, 0.5],
];

const BLUNT: readonly Cue[] = [
  [/^\s*(?:bottom line|short answer|straight (?:answer|up)|no fluff|cut to it|here'?s the deal|blunt(?: version)?|no sugarcoating|listen|look|plainly|facts|the point|key fact|answer|pay attention|here it is)\s*:/gi, 2],
  [/\b(?:bottom line|short answer|no fluff|no sugarcoating|end of story|no excuses|no shortcuts|no exceptions|no skipping|take it or leave it|figure out the rest|rookie (?:error|mistake)|wrong move|waste of time)\b/gi, 1.5],
  [new RegExp(`${START}(?:moving on|next question|next|enough said)[.!]`, 'gi'), 1.5],
  [/\bthat'?s (?:it|all you need|wrong)\b|\bnothing more to it\b|, period\b|\bor don'?t bother\b|\bnobody needs\b|\bget it (?:right|done)\b/gi, 1.5],
  [new RegExp(`${START}(?:don'?t|never|stop|quit|avoid|cut out|no)\\b`, 'gi'), 0.75],
  [/\b(?:quit (?:it|stalling)|now go|stop reading|harder than it is|don'?t (?:overthink|complicate|waste))\b/gi, 1],
  [new RegExp(`${START}(?:now go|always)\\b`, 'gi'), 0.5],
  [new RegExp(`${START}(?:done|period|enough)[.!]`, 'gi'), 1.5],
  [/\b(?:enough about|deal with it|move on|stop asking|don'?t ask|whole story|nothing else|no more to say|that covers)\b|\balready[.!]|, done[.!]/gi, 1],
];

/** Which cues of each register fire on `text`, with their matches (for reports and debugging). */
export function explainCues(text: string): Record<'elementary' | 'expert' | 'friendly' | 'blunt', string[]> {
  const hits = (cues: readonly Cue[]) =>
    cues.flatMap(([re, w]) => {
      re.lastIndex = 0;
      return (text.match(re) ?? []).map((m) => `${m.trim()} (${w})`);
    });
  return { elementary: hits(ELEMENTARY), expert: hits(EXPERT), friendly: hits(FRIENDLY), blunt: hits(BLUNT) };
}

function countCues(text: string, cues: readonly Cue[]): number {
  let total = 0;
  for (const [re, weight] of cues) {
    re.lastIndex = 0;
    const hits = text.match(re);
    if (hits) total += hits.length * weight;
  }
  return total;
}

/** Sentences: split after . ! ? (followed by space or end) and at line breaks; empty pieces dropped. */
export function splitSentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])["')\]]*\s+|\n+/)
    .map((s) => s.trim())
    .filter((s) => /[A-Za-z0-9]/.test(s));
}

const wordsOf = (text: string): string[] => text.match(/[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*/g) ?? [];

export function textFeatures(text: string): TextFeatures {
  const words = wordsOf(text);
  const sentences = splitSentences(text);
  const long = words.filter((w) => w.length >= 10).length;
  return {
    words: words.length,
    sentences: sentences.length,
    meanSentenceWords: sentences.length ? words.length / sentences.length : 0,
    longWordShare: words.length ? long / words.length : 0,
    exclamations: (text.match(/!/g) ?? []).length,
    elementaryCues: countCues(text, ELEMENTARY),
    expertCues: countCues(text, EXPERT),
    friendlyCues: countCues(text, FRIENDLY),
    bluntCues: countCues(text, BLUNT),
    terseSentences: sentences.filter((s) => s.endsWith('.') && wordsOf(s).length <= 4).length,
  };
}

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/** Decision thresholds on the signed scores. */
export const JUDGE_THRESHOLDS = { expertise: 1.25, length: 0.5, tone: 1 } as const;

function label<L extends string>(score: number, threshold: number, poles: readonly [L, L]): Judgement<L> {
  const rounded = Math.round(score * 1000) / 1000;
  return { label: score <= -threshold ? poles[0] : score >= threshold ? poles[1] : 'neutral', score: rounded };
}

export function judgeStyle(text: string): StyleJudgement {
  const f = textFeatures(text);
  // Expertise: register cues, plus long words (technical vocabulary) and long sentences.
  // Only the expert side: plain text has few long words whether it is elementary or neutral.
  const structural = clamp((f.longWordShare - 0.05) * 10, 0, 1.5);
  const expertise = f.expertCues - f.elementaryCues + (f.words > 0 ? structural : 0);
  // Length: sentence count first, word count as a tie-breaker for run-on or clipped texts.
  const bySentences = f.sentences <= 2 ? -1 : f.sentences >= 6 ? 1 : 0;
  const byWords = f.words <= 40 ? -0.4 : f.words >= 100 ? 0.6 : 0;
  const length = f.sentences === 0 ? -1 : clamp(bySentences + byWords, -1.5, 1.5) + (f.words > 170 ? 1 : 0);
  // Tone: pleasantries and exclamations against curt labels, closers and imperatives.
  const tone = f.bluntCues + 0.5 * f.terseSentences - f.friendlyCues - Math.min(f.exclamations, 4);
  return {
    expertise: label(expertise, JUDGE_THRESHOLDS.expertise, POLES.expertise),
    length: label(length, JUDGE_THRESHOLDS.length, POLES.length),
    tone: label(tone, JUDGE_THRESHOLDS.tone, POLES.tone),
  };
}

/** Does `text` show `pole` of `dimension` (e.g. matchesPole(t, 'tone', 'blunt'))? */
export function matchesPole(text: string, dimension: Dimension, pole: string): boolean {
  if (!(POLES[dimension] as readonly string[]).includes(pole)) {
    throw new RangeError(`"${pole}" is not a pole of ${dimension} (${POLES[dimension].join(' or ')})`);
  }
  return judgeStyle(text)[dimension].label === pole;
}
