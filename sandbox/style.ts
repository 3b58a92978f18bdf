// The three preference dimensions of the sandbox world (after Personalized Soups): each has two
// poles and a neutral middle. Shared by the corpus generator, the judge and the simulated users.
import { z } from 'zod';

export const DIMENSIONS = ['expertise', 'length', 'tone'] as const;
export type Dimension = (typeof DIMENSIONS)[number];

/** The two poles of each dimension. The judge's signed score is negative toward [0], positive toward [1]. */
export const POLES = {
  expertise: ['elementary', 'expert'],
  length: ['concise', 'detailed'],
  tone: ['friendly', 'blunt'],
} as const;
export type PoleOf<D extends Dimension> = (typeof POLES)[D][number];
export type ExpertisePole = PoleOf<'expertise'>;
export type LengthPole = PoleOf<'length'>;
export type TonePole = PoleOf<'tone'>;
export type AnyPole = ExpertisePole | LengthPole | TonePole;

export const expertiseSchema = z.enum(['elementary', 'neutral', 'expert']);
export const lengthSchema = z.enum(['concise', 'neutral', 'detailed']);
export const toneSchema = z.enum(['friendly', 'neutral', 'blunt']);
export type Expertise = z.infer<typeof expertiseSchema>;
export type Length = z.infer<typeof lengthSchema>;
export type Tone = z.infer<typeof toneSchema>;

export const styleSchema = z.object({ expertise: expertiseSchema, length: lengthSchema, tone: toneSchema }).strict();
export type Style = z.infer<typeof styleSchema>;

/** Every value of a dimension, poles and neutral, in the order [pole 0, neutral, pole 1]. */
export const VALUES = {
  expertise: ['elementary', 'neutral', 'expert'],
  length: ['concise', 'neutral', 'detailed'],
  tone: ['friendly', 'neutral', 'blunt'],
} as const satisfies Record<Dimension, readonly string[]>;

export const NEUTRAL_STYLE: Style = { expertise: 'neutral', length: 'neutral', tone: 'neutral' };

/** The opposite pole of a dimension (`undefined` for neutral). */
export function oppositePole(dimension: Dimension, value: string): string | undefined {
  const [a, b] = POLES[dimension];
  return value === a ? b : value === b ? a : undefined;
}

export function isPole(dimension: Dimension, value: string): boolean {
  return (POLES[dimension] as readonly string[]).includes(value);
}

/** Every one of the 27 styles, in a fixed order. */
export function allStyles(): Style[] {
  const out: Style[] = [];
  for (const expertise of VALUES.expertise)
    for (const length of VALUES.length) for (const tone of VALUES.tone) out.push({ expertise, length, tone });
  return out;
}

export const styleKey = (s: Style): string => `${s.expertise}/${s.length}/${s.tone}`;
