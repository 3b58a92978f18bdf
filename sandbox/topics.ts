// The sandbox world's subject matter: ~200 topics in ~20 everyday domains, as data (data/topics.json).
// Each topic is a small base of facts that the corpus generator renders in any style. The slots have
// fixed grammar so that templates can combine them:
//   name     noun phrase ("a budget", "photosynthesis")     task   base-form verb phrase ("make a budget")
//   def      plain noun phrase completing "X is ..."         tech   technical noun phrase completing "X is ..."
//   like     noun phrase completing "think of it like ..."   terms  two technical noun phrases
//   facts    2-4 lower-case clauses, no final period         steps  3-4 imperative verb phrases
//   mistake  gerund phrase ("forgetting small purchases")    vs     the comparison partner (noun phrase)
//   diff     clause contrasting the topic with `vs`
// Plain ASCII only, and no final punctuation: the templates add it.

import { z } from 'zod';
import { loadDataFile } from './load-data.ts';

/** A slot's text: plain ASCII, trimmed, no final punctuation (the templates add it). */
const slot = z.string().regex(/^[\x20-\x7e]+$/, 'plain ASCII only').regex(/^\S(.*\S)?$/, 'no leading or trailing space').regex(/[^.;:,!?]$/, 'no final punctuation');

const rawTopicSchema = z.strictObject({
  name: slot,
  task: slot,
  vs: slot,
  def: slot,
  tech: slot,
  like: slot,
  facts: z.array(slot).min(2).max(4).readonly(),
  steps: z.array(slot).min(3).max(4).readonly(),
  mistake: slot,
  diff: slot,
  terms: z.tuple([slot, slot]).readonly(),
  /** The name is grammatically plural ("squats are ..."); absent means singular. */
  plural: z.literal(true).optional(),
});

export const topicsFileSchema = z.strictObject({
  domains: z.array(z.strictObject({
    id: z.string().regex(/^[a-z][a-z0-9-]*$/),
    /** Completes a friendly sign-off: "Happy {cheer}!" */
    cheer: slot,
    topics: z.array(rawTopicSchema).min(1),
  })).min(1),
});

type RawTopic = Omit<z.output<typeof rawTopicSchema>, 'plural'>;

export interface Topic extends RawTopic {
  /** Stable identifier derived from the name ("a budget" -> "budget"). */
  id: string;
  domain: string;
  /** The name is grammatically plural ("squats are ..."). */
  plural: boolean;
}

export interface Domain {
  id: string;
  /** Completes a friendly sign-off: "Happy {cheer}!" */
  cheer: string;
  topics: readonly RawTopic[];
}

const FILE = loadDataFile(new URL('./data/topics.json', import.meta.url), topicsFileSchema);

const withoutPlural = ({ plural: _plural, ...t }: z.output<typeof rawTopicSchema>): RawTopic => t;

export const DOMAINS: readonly Domain[] = FILE.domains.map((d) => ({ ...d, topics: d.topics.map(withoutPlural) }));

const slug = (name: string): string =>
  name.toLowerCase().replace(/^(a|an|the)\s+/, '').replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

/** Every topic with its id and domain, in a fixed order. */
export const TOPICS: readonly Topic[] = FILE.domains.flatMap((d) =>
  d.topics.map((t) => ({ ...withoutPlural(t), id: slug(t.name), domain: d.id, plural: t.plural === true })),
);

export const TOPIC_BY_ID: ReadonlyMap<string, Topic> = new Map(TOPICS.map((t) => [t.id, t]));

export const DOMAIN_BY_ID: ReadonlyMap<string, Domain> = new Map(DOMAINS.map((d) => [d.id, d]));
