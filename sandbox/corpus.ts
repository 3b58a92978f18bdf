// The sandbox world's corpus: seeded, deterministic chat examples over ~200 topics (topics.ts),
// each answer rendered in one of 27 styles (style.ts) from phrase pools (templates.ts).
//
// Same seed and options give byte-identical output. Every example draws from its own stream
// (seed, index), so example i does not depend on `count` and a longer corpus extends a shorter one.
//
// Shapes the renderer guarantees, whatever the topic and kind:
//   concise   1-2 sentences in all (tone markers fused in when there is no room for a sentence)
//   neutral   3 content sentences plus at most 2 tone sentences (3-5 in all)
//   detailed  6-8 content sentences plus tone sentences (6-10 in all), with steps or an example
//   elementary  an analogy in every answer, plain definitions, "simple"/"easy" framings
//   expert      technical definitions and terms, qualifiers (typically, in practice, formally)
//   friendly    warm opener and/or closer, exclamation marks, gentle advice
//   blunt       a terse label ("Bottom line:") and/or a curt closer, imperatives, no pleasantries
//   neutral     none of the above markers
import { z } from 'zod';
import { Rng, hashString } from '../server/lm/rng.ts';
import { DOMAIN_BY_ID, TOPICS, TOPIC_BY_ID, type Topic } from './topics.ts';
import * as P from './templates.ts';
import { NEUTRAL_STYLE, VALUES, styleSchema, type Expertise, type Length, type Style, type Tone } from './style.ts';

export type { Style } from './style.ts';
export type { Topic } from './topics.ts';

export const KINDS = ['explain', 'compare', 'howto', 'advice', 'followup'] as const;
export type Kind = (typeof KINDS)[number];
/** What the second user turn of a follow-up asks for. */
export const FOLLOWUP_FOCI = ['facts', 'howto', 'mistake', 'compare'] as const;
export type FollowupFocus = (typeof FOLLOWUP_FOCI)[number];

export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
}

/** A conversation awaiting an answer: the same prompt can be answered in several styles. */
export interface Prompt {
  /** Topic id (see listTopics()). */
  topic: string;
  kind: Kind;
  /** Which user-turn template(s) produced the prompt, e.g. "compare.3" or "followup.2.mistake.1". */
  template: string;
  /** For follow-ups: what the second user turn asks for. */
  focus?: FollowupFocus;
  /** The prior conversation, ending with a user turn. */
  messages: ChatTurn[];
}

export interface Example extends Prompt {
  id: string;
  response: string;
  style: Style;
}

export type Split = 'train' | 'heldout';

/** Share of (topic, template) pairs held out, in thousandths. */
export const HELDOUT_PERMILLE = 150;

const DEFAULT_KIND_WEIGHTS: Readonly<Record<Kind, number>> = { explain: 0.25, compare: 0.2, howto: 0.2, advice: 0.2, followup: 0.15 };

const weight = z.number().min(0, 'weights must be non-negative').optional();
const weightsOf = <K extends string>(keys: readonly K[]) =>
  z.strictObject(Object.fromEntries(keys.map((k) => [k, weight])) as Record<K, typeof weight>);
export const styleMixSchema = z
  .object({
    expertise: weightsOf(VALUES.expertise).optional(),
    length: weightsOf(VALUES.length).optional(),
    tone: weightsOf(VALUES.tone).optional(),
  })
  .strict();
/** Relative weights per value of each dimension (drawn independently); absent means uniform. */
export interface StyleMix {
  expertise?: Partial<Record<Expertise, number>>;
  length?: Partial<Record<Length, number>>;
  tone?: Partial<Record<Tone, number>>;
}

export const corpusOptionsSchema = z
  .object({
    seed: z.union([z.number().int().min(0), z.string().min(1)]),
    count: z.number().int().min(0).max(10_000_000),
    styleMix: styleMixSchema.optional(),
    split: z.enum(['train', 'heldout']).optional(),
    kindWeights: weightsOf(KINDS).optional(),
  })
  .strict();

export interface CorpusOptions {
  seed: number | string;
  count: number;
  styleMix?: StyleMix;
  /** Only prompts of this split (rejection-sampled); absent means both, in their natural shares. */
  split?: Split;
  /** Relative weights of the request kinds; default explain .25, compare/howto/advice .2, followup .15. */
  kindWeights?: Partial<Record<Kind, number>>;
  /** Called every 1000 examples and at the end. */
  onProgress?: (done: number, total: number) => void;
}

export function listTopics(): readonly Topic[] {
  return TOPICS;
}

export function getTopic(topic: Topic | string): Topic {
  if (typeof topic !== 'string') return topic;
  const t = TOPIC_BY_ID.get(topic);
  if (!t) throw new RangeError(`unknown sandbox topic "${topic}"`);
  return t;
}

// ---- Text helpers ------------------------------------------------------------------------------

const cap = (s: string): string => (s ? s[0]!.toUpperCase() + s.slice(1) : s);

function fill(template: string, vars: Readonly<Record<string, string>>): string {
  return template.replace(/\{(\w+)\}/g, (_, key: string) => {
    const v = vars[key];
    if (v === undefined) throw new Error(`template placeholder {${key}} has no value: ${template}`);
    return v;
  });
}

/** Append a clause before a sentence's final mark: "X is Y." + ", like Z" -> "X is Y, like Z." */
function fuse(sentence: string, clause: string): string {
  const last = sentence.at(-1);
  return last === '.' || last === '!' ? `${sentence.slice(0, -1)}${clause}${last}` : `${sentence}${clause}.`;
}

const exclaim = (sentence: string): string => (sentence.endsWith('.') ? `${sentence.slice(0, -1)}!` : sentence);

function topicVars(t: Topic): Record<string, string> {
  return {
    n: t.name, N: cap(t.name), task: t.task, vs: t.vs, Vs: cap(t.vs), def: t.def, tech: t.tech, like: t.like,
    t1: t.terms[0], t2: t.terms[1], mistake: t.mistake, Mistake: cap(t.mistake), diff: t.diff, Diff: cap(t.diff),
    cheer: DOMAIN_BY_ID.get(t.domain)?.cheer ?? 'learning', s1: t.steps[0]!, S1: cap(t.steps[0]!), s2: t.steps[1]!,
    is: t.plural ? 'are' : 'is', Is: t.plural ? 'Are' : 'Is', it: t.plural ? 'they' : 'it',
    utask: t.task.replace(/\byourself\b/g, 'myself').replace(/\byour\b/g, 'my').replace(/\byou\b/g, 'me'),
  };
}

// ---- Rendering ---------------------------------------------------------------------------------

type Plan = 'explain' | 'more' | 'compare' | 'howto' | 'advice' | 'mistake';

function planOf(kind: Kind, focus: FollowupFocus | undefined): Plan {
  if (kind !== 'followup') return kind;
  switch (focus ?? 'facts') {
    case 'facts': return 'more';
    case 'howto': return 'howto';
    case 'mistake': return 'mistake';
    case 'compare': return 'compare';
  }
}

class Renderer {
  private readonly v: Record<string, string>;
  private readonly e: Expertise;
  private readonly tone: Tone;

  constructor(private readonly t: Topic, private readonly style: Style, private readonly rng: Rng) {
    this.v = topicVars(t);
    this.e = style.expertise;
    this.tone = style.tone;
  }

  /** Templates already used in this answer: a pool's entries are not repeated while others remain. */
  private readonly used = new Set<string>();

  private say(pool: readonly string[], extra?: Record<string, string>): string {
    const fresh = pool.filter((tpl) => !this.used.has(tpl));
    const tpl = this.rng.pick(fresh.length > 0 ? fresh : pool);
    this.used.add(tpl);
    return fill(tpl, extra ? { ...this.v, ...extra } : this.v);
  }

  private fact(f: string, asExample = false): string {
    return this.say(asExample ? P.EXAMPLE[this.e] : P.FACT[this.e], { f, F: cap(f) });
  }

  private mistake(): string {
    if (this.tone === 'friendly') return this.say(P.FRIENDLY_MISTAKE);
    if (this.tone === 'blunt') return this.say(P.BLUNT_MISTAKE);
    return this.say(P.MISTAKE[this.e]);
  }

  private step(s: string, position: 'first' | 'middle' | 'last'): string {
    const pools = position === 'first' ? P.STEP_FIRST : position === 'middle' ? P.STEP_MIDDLE : P.STEP_LAST;
    const sentence = this.say(pools[this.tone], { s, S: cap(s) });
    return this.e === 'expert' && this.rng.chance(0.5) ? fuse(sentence, this.rng.pick(P.EXPERT_STEP_QUALIFIER)) : sentence;
  }

  private steps(from: number): string[] {
    const all = this.t.steps;
    const out: string[] = [];
    for (let i = from; i < all.length; i++) out.push(this.step(all[i]!, i === 0 ? 'first' : i === all.length - 1 ? 'last' : 'middle'));
    return out;
  }

  /** The one sentence that carries an expertise pole on its own (analogy or technical terms). */
  private marker(): string | undefined {
    if (this.e === 'elementary') return this.say(P.ANALOGY);
    if (this.e === 'expert') return this.say(P.TERMS);
    return undefined;
  }

  /** Expert only: the technical terms as a clause to fuse onto a sentence. */
  private termsClause(): string {
    return this.say(P.TERMS_CLAUSE);
  }

  /** The lead sentence and the rest of the content, most important first. */
  private content(plan: Plan, length: Length): { lead: string; rest: string[] } {
    const t = this.t;
    const facts = this.rng.shuffle(t.facts);
    const detailed = length === 'detailed';
    const tipStep = (s: string) => this.say(P.TIP_STEP[this.tone], { s, S: cap(s) });
    switch (plan) {
      case 'explain':
        return {
          lead: this.say(P.DEFINE[this.e]),
          rest: [this.fact(facts[0]!, detailed), ...facts.slice(1).map((f) => this.fact(f)), this.mistake(), this.say(P.FIRST_STEP[this.e]), this.say(P.CONTRAST[this.e])],
        };
      case 'more':
        return {
          lead: this.say(P.MORE[this.e], { f: facts[0]!, F: cap(facts[0]!) }),
          rest: [...facts.slice(1).map((f, i) => this.fact(f, detailed && i === 0)), this.mistake(), this.say(P.FIRST_STEP[this.e]), this.say(P.PARTNER[this.e]), this.say(P.CONTRAST[this.e])],
        };
      case 'compare':
        return {
          lead: this.say(P.CONTRAST[this.e]),
          rest: [this.say(P.DEFINE[this.e]), this.say(P.PARTNER[this.e]), this.fact(facts[0]!, detailed), this.fact(facts[1]!), this.mistake(), ...(facts[2] ? [this.fact(facts[2])] : [])],
        };
      case 'howto':
        if (detailed) return { lead: this.say(P.STEPS_INTRO[this.e]), rest: [...this.steps(0), this.mistake(), this.fact(facts[0]!, true), this.fact(facts[1]!)] };
        return { lead: this.say(P.STEPS_BRIEF[this.e]), rest: [...this.steps(2), this.mistake(), this.fact(facts[0]!)] };
      case 'advice': {
        const order = this.rng.shuffle(t.steps);
        return {
          lead: this.say(P.TIP[this.e], { s: order[0]! }),
          rest: [this.mistake(), tipStep(order[1]!), tipStep(order[2]!), this.fact(facts[0]!, detailed), this.fact(facts[1]!)],
        };
      }
      case 'mistake': {
        const order = this.rng.shuffle(t.steps);
        // The lead carries the expertise register; the tone wrapper adds warmth or bite.
        return {
          lead: this.say(P.MISTAKE[this.e]),
          rest: [this.say(P.TIP[this.e], { s: order[0]! }), tipStep(order[1]!), this.fact(facts[0]!, detailed), tipStep(order[2]!), this.fact(facts[1]!)],
        };
      }
    }
  }

  private body(plan: Plan): string[] {
    const { length } = this.style;
    const { lead, rest } = this.content(plan, length);
    if (length === 'concise') {
      // One sentence, or two when tone needs no sentence of its own and a second one fits.
      const clause = this.e === 'expert' ? this.termsClause() : undefined;
      // Elementary keeps two short sentences (the tone then fuses into them); expert packs its
      // terms into one long sentence.
      if (this.e === 'elementary') return [lead, this.marker()!];
      const roomForTwo = this.tone === 'neutral' || (this.tone === 'blunt' && this.rng.chance(0.5));
      if (clause === undefined) return roomForTwo && this.rng.chance(0.4) ? [lead, rest[0]!] : [lead];
      if (roomForTwo && this.rng.chance(0.3)) return [lead, this.marker()!];
      return [fuse(lead, clause)];
    }
    const marker = this.marker();
    const pool = marker === undefined ? rest : [marker, ...rest];
    if (length === 'neutral') return [lead, ...pool.slice(0, 2)];
    const want = this.rng.range(6, this.e === 'expert' ? 7 : 8);
    return [lead, ...pool.slice(0, want - 1)];
  }

  private friendlyOpen(plan: Plan): string {
    const taskish = plan === 'howto' || plan === 'advice';
    return this.say(taskish && this.rng.chance(0.4) ? P.FRIENDLY_OPEN_TASK : P.FRIENDLY_OPEN);
  }

  private withTone(body: string[], plan: Plan): string[] {
    const { length } = this.style;
    const rng = this.rng;
    if (this.tone === 'friendly') {
      if (length === 'concise') {
        if (body.length >= 2) {
          const [first, ...others] = body;
          return [rng.pick(P.FRIENDLY_INLINE) + first!, ...others.slice(0, -1), exclaim(others.at(-1)!)];
        }
        const only = rng.chance(0.5) ? exclaim(body[0]!) : body[0]!;
        return rng.chance(0.5) ? [this.friendlyOpen(plan), only] : [only, this.say(P.FRIENDLY_CLOSE)];
      }
      const out = body.slice();
      if (length === 'detailed' && rng.chance(0.5)) {
        const i = 1 + rng.int(out.length - 1);
        out[i] = exclaim(out[i]!);
      }
      return [this.friendlyOpen(plan), ...out, this.say(P.FRIENDLY_CLOSE)];
    }
    if (this.tone === 'blunt') {
      const roomForCloser = length !== 'concise' || body.length === 1;
      const mode = roomForCloser ? rng.pick(['prefix', 'closer', 'both', 'both'] as const) : 'prefix';
      const out = body.slice();
      if (mode !== 'closer') out[0] = rng.pick(P.BLUNT_PREFIX) + out[0]!;
      if (mode !== 'prefix') out.push(this.say(P.BLUNT_CLOSE));
      return out;
    }
    return body;
  }

  render(kind: Kind, focus: FollowupFocus | undefined): string {
    const plan = planOf(kind, focus);
    return this.withTone(this.body(plan), plan).join(' ');
  }
}

/**
 * The answer to a request of `kind` about `topic`, in `style`. Draws from `rng`; the same rng state
 * gives the same text. For follow-ups, `focus` says what the second user turn asked (drawn if absent).
 */
export function renderResponse(topic: Topic | string, kind: Kind, style: Style, rng: Rng, opts: { focus?: FollowupFocus } = {}): string {
  const t = getTopic(topic);
  const focus = kind === 'followup' ? (opts.focus ?? rng.pick(FOLLOWUP_FOCI)) : undefined;
  return new Renderer(t, styleSchema.parse(style), rng).render(kind, focus);
}

/** The answer to `prompt` in `style`: call it with two styles to get a preference pair. */
export function renderPromptResponse(prompt: Prompt, style: Style, rng: Rng): string {
  return renderResponse(prompt.topic, prompt.kind, style, rng, { focus: prompt.focus });
}

// ---- Prompts and splits ------------------------------------------------------------------------

/** Which split a prompt (or example) belongs to: a hash of topic and template, so no held-out prompt is trained on. */
export function splitOf(p: Pick<Prompt, 'topic' | 'template'>): Split {
  return hashString(`${p.topic}|${p.template}`) % 1000 < HELDOUT_PERMILLE ? 'heldout' : 'train';
}

/** The key that decides the split: one (topic, template) pair. */
export const promptKey = (p: Pick<Prompt, 'topic' | 'template'>): string => `${p.topic}|${p.template}`;

const toRng = (source: number | string | Rng): Rng => (source instanceof Rng ? source : new Rng(source));

function pickKind(rng: Rng, kindWeights: Partial<Record<Kind, number>> | undefined): Kind {
  const w = KINDS.map((k) => (kindWeights ? (kindWeights[k] ?? 0) : DEFAULT_KIND_WEIGHTS[k]));
  return KINDS[rng.weightedIndex(w)]!;
}

export interface PromptOptions {
  split?: Split;
  kind?: Kind;
  topic?: string;
  kindWeights?: Partial<Record<Kind, number>>;
}

/**
 * A random prompt (topic, kind, user turn(s)). A follow-up's prior assistant turn is rendered in
 * the neutral style at concise length, so every styled answer to it shares the same context.
 */
export function samplePrompt(source: number | string | Rng, opts: PromptOptions = {}): Prompt {
  const rng = toRng(source);
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const t = opts.topic !== undefined ? getTopic(opts.topic) : rng.pick(TOPICS);
    const kind = opts.kind ?? pickKind(rng, opts.kindWeights);
    const vars = topicVars(t);
    if (kind !== 'followup') {
      const i = rng.int(P.PROMPTS[kind].length);
      const template = `${kind}.${i}`;
      if (opts.split && splitOf({ topic: t.id, template }) !== opts.split) continue;
      return { topic: t.id, kind, template, messages: [{ role: 'user', content: fill(P.PROMPTS[kind][i]!, vars) }] };
    }
    const i = rng.int(P.PROMPTS.explain.length);
    const focus = rng.pick(FOLLOWUP_FOCI);
    const j = rng.int(P.FOLLOWUPS[focus].length);
    const template = `followup.${i}.${focus}.${j}`;
    if (opts.split && splitOf({ topic: t.id, template }) !== opts.split) continue;
    const prior = renderResponse(t, 'explain', { ...NEUTRAL_STYLE, length: 'concise' }, rng.fork('prior'));
    return {
      topic: t.id, kind, template, focus,
      messages: [
        { role: 'user', content: fill(P.PROMPTS.explain[i]!, vars) },
        { role: 'assistant', content: prior },
        { role: 'user', content: fill(P.FOLLOWUPS[focus][j]!, vars) },
      ],
    };
  }
  throw new Error(`samplePrompt: no prompt found for ${JSON.stringify(opts)}`);
}

export function sampleStyle(rng: Rng, mix: StyleMix = {}): Style {
  const draw = <V extends string>(values: readonly V[], w: Partial<Record<V, number>> | undefined): V =>
    values[rng.weightedIndex(values.map((v) => (w ? (w[v] ?? 0) : 1)))]!;
  return {
    expertise: draw(VALUES.expertise, mix.expertise),
    length: draw(VALUES.length, mix.length),
    tone: draw(VALUES.tone, mix.tone),
  };
}

// ---- Style requests ----------------------------------------------------------------------------

const REQUEST_WORDS = {
  expertise: { elementary: 'simply', neutral: undefined, expert: 'technically' },
  length: { concise: 'briefly', neutral: undefined, detailed: 'in detail' },
  tone: { friendly: 'warmly', neutral: undefined, blunt: 'bluntly' },
} as const;

/** A plain-language system message asking for `style`: "Please answer simply, briefly and warmly." */
export function styleRequestText(style: Style): string {
  const words = [REQUEST_WORDS.expertise[style.expertise], REQUEST_WORDS.length[style.length], REQUEST_WORDS.tone[style.tone]].filter(
    (w): w is NonNullable<typeof w> => w !== undefined,
  );
  if (words.length === 0) return 'Please answer in a plain, balanced way.';
  const list = words.length === 1 ? words[0]! : `${words.slice(0, -1).join(', ')} and ${words.at(-1)!}`;
  return `Please answer ${list}.`;
}

// ---- The corpus --------------------------------------------------------------------------------

/** `count` examples for `seed`; example i depends only on (seed, i, options), never on count. */
export function generateCorpus(options: CorpusOptions): Example[] {
  const { onProgress, ...rest } = options;
  const parsed = corpusOptionsSchema.safeParse(rest);
  if (!parsed.success) throw new RangeError(`invalid corpus options: ${z.prettifyError(parsed.error).replace(/\n\s*/g, ' ')}`);
  const o = parsed.data;
  const mix: StyleMix = o.styleMix ?? {};
  for (const d of ['expertise', 'length', 'tone'] as const) {
    const w: Partial<Record<string, number>> | undefined = mix[d];
    if (w && !Object.values(w).some((x) => x !== undefined && x > 0)) throw new RangeError(`styleMix.${d} needs at least one positive weight`);
  }
  const kindWeights: Partial<Record<Kind, number>> | undefined = o.kindWeights;
  if (kindWeights && !Object.values(kindWeights).some((x) => x !== undefined && x > 0)) throw new RangeError('kindWeights needs at least one positive weight');
  const out: Example[] = [];
  for (let i = 0; i < o.count; i++) {
    const rng = new Rng(`${o.seed}:corpus:${i}`);
    const prompt = samplePrompt(rng, { split: o.split, kindWeights });
    const style = sampleStyle(rng, mix);
    const response = renderPromptResponse(prompt, style, rng);
    out.push({ id: `s${o.seed}-${i}`, ...prompt, response, style });
    if (onProgress && ((i + 1) % 1000 === 0 || i + 1 === o.count)) onProgress(i + 1, o.count);
  }
  return out;
}
