// Phrase pools of the corpus generator, per style pole, as data (data/templates.json). Placeholders
// in braces are filled from a topic (see topics.ts): {n}/{N} name (lower/capitalized), {task}, {vs},
// {def}, {tech}, {like}, {t1}/{t2} terms, {is}/{Is}/{it} agreeing with the name, {utask} the task in
// the user's words, {mistake}/{Mistake}, {diff}/{Diff}, {cheer}, and per sentence {f}/{F} a fact,
// {s}/{S} a step, {s1}/{S1}/{s2} the first steps.
//
// The judge (judge.ts) must never import this file: it classifies by general features and word
// lists of its own, so that it still works when a trained model paraphrases.
import { z } from 'zod';
import { loadDataFile } from './load-data.ts';

const PLACEHOLDERS = new Set([
  'n', 'N', 'task', 'vs', 'Vs', 'def', 'tech', 'like', 't1', 't2', 'is', 'Is', 'it', 'utask', 'mistake', 'Mistake', 'diff', 'Diff', 'cheer',
  'f', 'F', 's', 'S', 's1', 'S1', 's2',
]);

const phrase = z.string().min(1).superRefine((text, ctx) => {
  for (const [, name] of text.matchAll(/\{(\w+)\}/g)) if (!PLACEHOLDERS.has(name!)) ctx.addIssue({ code: 'custom', message: `unknown placeholder {${name}} in "${text}"` });
});
const pool = z.array(phrase).min(1).readonly();
const byExpertise = z.strictObject({ elementary: pool, neutral: pool, expert: pool }).readonly();
const byTone = z.strictObject({ friendly: pool, neutral: pool, blunt: pool }).readonly();

export const templatesSchema = z.strictObject({
  // ---- Expertise: how the content itself is said
  DEFINE: byExpertise,
  /** Elementary only: a whole sentence of analogy. */
  ANALOGY: pool,
  /** Expert only: a whole sentence naming the technical concepts. */
  TERMS: pool,
  /** Expert only: technical concepts fused onto the end of a sentence. */
  TERMS_CLAUSE: pool,
  FACT: byExpertise,
  EXAMPLE: byExpertise,
  /** The contrast with the comparison partner. */
  CONTRAST: byExpertise,
  /** A second sentence about the comparison partner. */
  PARTNER: byExpertise,
  /** How-to in one sentence: the first two steps. */
  STEPS_BRIEF: byExpertise,
  /** The opening line of a step-by-step answer. */
  STEPS_INTRO: byExpertise,
  /** A single step suggested at the end of an explanation. */
  FIRST_STEP: byExpertise,
  /** The main piece of advice. */
  TIP: byExpertise,
  /** The first sentence of a follow-up answer ("Can you say more?"), about a further fact. */
  MORE: byExpertise,
  /** A mistake, said in a neutral tone. Friendly and blunt tones use their own pools below. */
  MISTAKE: byExpertise,

  // ---- Steps: the tone decides the framing, expertise may add a qualifier
  STEP_FIRST: byTone,
  STEP_MIDDLE: byTone,
  STEP_LAST: byTone,
  /** Appended to an expert's step (final period removed first). */
  EXPERT_STEP_QUALIFIER: pool,
  /** Advice built from a step, by tone. */
  TIP_STEP: byTone,

  // ---- Tone
  /** Friendly opening sentences. {task} variants are used only for how-to and advice. */
  FRIENDLY_OPEN: pool,
  FRIENDLY_OPEN_TASK: pool,
  FRIENDLY_CLOSE: pool,
  /** Friendly lead-ins fused onto the first sentence when there is no room for a whole sentence. */
  FRIENDLY_INLINE: pool,
  FRIENDLY_MISTAKE: pool,
  /** Blunt labels fused onto the start of the first sentence. */
  BLUNT_PREFIX: pool,
  BLUNT_CLOSE: pool,
  BLUNT_MISTAKE: pool,

  // ---- Prompts (user turns), by request kind
  PROMPTS: z.strictObject({ explain: pool, compare: pool, howto: pool, advice: pool }).readonly(),
  /** Second user turns of a follow-up, by what they ask for. */
  FOLLOWUPS: z.strictObject({ facts: pool, howto: pool, mistake: pool, compare: pool }).readonly(),
});

export const {
  DEFINE, ANALOGY, TERMS, TERMS_CLAUSE, FACT, EXAMPLE, CONTRAST, PARTNER, STEPS_BRIEF, STEPS_INTRO, FIRST_STEP, TIP, MORE, MISTAKE,
  STEP_FIRST, STEP_MIDDLE, STEP_LAST, EXPERT_STEP_QUALIFIER, TIP_STEP,
  FRIENDLY_OPEN, FRIENDLY_OPEN_TASK, FRIENDLY_CLOSE, FRIENDLY_INLINE, FRIENDLY_MISTAKE, BLUNT_PREFIX, BLUNT_CLOSE, BLUNT_MISTAKE,
  PROMPTS, FOLLOWUPS,
} = loadDataFile(new URL('./data/templates.json', import.meta.url), templatesSchema);
