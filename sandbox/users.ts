// Simulated users of the sandbox world: a profile of preferred style poles, judged with the style
// judge, plus a configurable rate of random answers. Deterministic for a seed: the n-th call
// always draws the same two random numbers, so runs at different noise rates stay aligned.
import fs from 'node:fs';
import { z } from 'zod';
import { judgeStyle, type StyleJudgement } from './judge.ts';
import { Rng } from '../server/lm/rng.ts';
import { DIMENSIONS, POLES, oppositePole } from './style.ts';

const pole = <D extends keyof typeof POLES>(d: D) =>
  z.enum(POLES[d], { error: `must be "${POLES[d][0]}" or "${POLES[d][1]}"` }).optional();

export const profileSchema = z
  .object({
    name: z.string({ error: 'must be a string' }).trim().min(1, 'must not be empty'),
    prefers: z
      .object({ expertise: pole('expertise'), length: pole('length'), tone: pole('tone') }, { error: (issue) => (issue.code === 'invalid_type' ? 'must be an object' : undefined) })
      .strict(),
  })
  .strict();
export type UserProfile = z.infer<typeof profileSchema>;

export class ProfileError extends Error {
  readonly code = 'profile_invalid';
  constructor(message: string, readonly details: { path: string; message: string }[]) {
    super(message);
    this.name = 'ProfileError';
  }
}

function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({
    path: i.path.map(String).join('.') || '(root)',
    message: i.code === 'unrecognized_keys' ? `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}` : i.message,
  }));
}

/** A validated profile; throws ProfileError whose message names every offending field. */
export function parseProfile(input: unknown): UserProfile {
  const r = profileSchema.safeParse(input);
  if (r.success) return r.data;
  const details = issuesOf(r.error);
  throw new ProfileError(`invalid user profile: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, details);
}

export function parseProfiles(input: unknown): UserProfile[] {
  if (!Array.isArray(input)) throw new ProfileError('profiles must be a JSON array', [{ path: '(root)', message: 'expected an array' }]);
  return input.map((p, i) => {
    try {
      return parseProfile(p);
    } catch (e) {
      if (!(e instanceof ProfileError)) throw e;
      const details = e.details.map((d) => ({ ...d, path: `[${i}].${d.path}` }));
      throw new ProfileError(`invalid user profiles: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, details);
    }
  });
}

/** Profiles from a JSON file (an array of profiles). */
export function loadProfiles(file: string | URL): UserProfile[] {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ProfileError(`cannot read profiles from ${String(file)}: ${(e as Error).message}`, []);
  }
  return parseProfiles(raw);
}

/** The six single-dimension Personalized Soups users (data/soups.json). */
export const SOUPS_PROFILES: readonly UserProfile[] = Object.freeze(loadProfiles(new URL('./data/soups.json', import.meta.url)));

export type Choice = 'A' | 'B' | 'tie' | 'both_bad';
export type Thumb = 'up' | 'down';

export interface SimulatedUserOptions {
  /** Probability in [0, 1] that an answer is random instead of judged. Default 0. */
  noise?: number;
  seed?: number | string;
  /** What a random comparison answer is drawn from. Default ['A', 'B']: a coin-flip preference. */
  noiseChoices?: readonly Choice[];
}

export class SimulatedUser {
  readonly profile: UserProfile;
  readonly noise: number;
  private readonly rng: Rng;
  private readonly noiseChoices: readonly Choice[];

  constructor(profile: UserProfile, options: SimulatedUserOptions = {}) {
    this.profile = parseProfile(profile);
    const noise = options.noise ?? 0;
    if (!(noise >= 0 && noise <= 1)) throw new RangeError(`noise must be a probability in [0, 1], got ${noise}`);
    this.noise = noise;
    this.noiseChoices = options.noiseChoices ?? ['A', 'B'];
    if (this.noiseChoices.length === 0) throw new RangeError('noiseChoices must not be empty');
    this.rng = new Rng(`user:${this.profile.name}:${options.seed ?? 0}`);
  }

  /** +1 for every preferred pole the judge sees in `text`, -1 for every opposite pole. */
  score(text: string, judged: StyleJudgement = judgeStyle(text)): number {
    let s = 0;
    for (const d of DIMENSIONS) {
      const want = this.profile.prefers[d];
      if (want === undefined) continue;
      const label = judged[d].label;
      if (label === want) s += 1;
      else if (label === oppositePole(d, want)) s -= 1;
    }
    return s;
  }

  /** Which of two answers this user prefers; 'tie' when equal, 'both_bad' when equal and negative. */
  compare(a: string, b: string): Choice {
    const u = this.rng.next();
    const pick = this.rng.next();
    if (u < this.noise) return this.noiseChoices[Math.floor(pick * this.noiseChoices.length)]!;
    const sa = this.score(a);
    const sb = this.score(b);
    if (sa > sb) return 'A';
    if (sb > sa) return 'B';
    return sa < 0 ? 'both_bad' : 'tie';
  }

  /** Thumbs up when the answer scores above zero for this user, down otherwise. */
  thumbs(text: string): Thumb {
    const u = this.rng.next();
    const pick = this.rng.next();
    if (u < this.noise) return pick < 0.5 ? 'up' : 'down';
    return this.score(text) > 0 ? 'up' : 'down';
  }
}
