import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { renderPromptResponse, samplePrompt } from '../../../sandbox/corpus.ts';
import { Rng } from '../../../server/lm/rng.ts';
import { POLES, oppositePole, type Dimension, type Style } from '../../../sandbox/style.ts';
import {
  ProfileError, SOUPS_PROFILES, SimulatedUser, parseProfile, parseProfiles, profileSchema, type UserProfile,
} from '../../../sandbox/users.ts';

const rng = new Rng('users-test');
const randomStyle = (): Style => ({
  expertise: rng.pick(['elementary', 'neutral', 'expert'] as const),
  length: rng.pick(['concise', 'neutral', 'detailed'] as const),
  tone: rng.pick(['friendly', 'neutral', 'blunt'] as const),
});

/** The same prompt rendered at `pole` and at its opposite, other dimensions equal. */
function pair(i: number, d: Dimension, pole: string): { good: string; bad: string } {
  const prompt = samplePrompt(`users-pair-${i}`);
  const base = randomStyle();
  const good = renderPromptResponse(prompt, { ...base, [d]: pole } as Style, new Rng(`g${i}`));
  const bad = renderPromptResponse(prompt, { ...base, [d]: oppositePole(d, pole) } as Style, new Rng(`b${i}`));
  return { good, bad };
}

test('the six Personalized Soups profiles ship and validate', () => {
  assert.deepEqual(SOUPS_PROFILES.map((p) => p.name), ['elementary', 'expert', 'concise', 'detailed', 'friendly', 'blunt']);
  for (const p of SOUPS_PROFILES) {
    const dims = Object.keys(p.prefers) as Dimension[];
    assert.equal(dims.length, 1);
    assert.equal(p.prefers[dims[0]!], p.name);
  }
  const raw: unknown = JSON.parse(fs.readFileSync(new URL('../../../sandbox/data/soups.json', import.meta.url), 'utf8'));
  assert.deepEqual(parseProfiles(raw), SOUPS_PROFILES);
  assert.ok(profileSchema.safeParse({ name: 'mixed', prefers: { expertise: 'expert', tone: 'blunt' } }).success);
});

test('at noise 0 each soups user picks its pole over the opposite rendering of the same prompt', (t) => {
  for (const profile of SOUPS_PROFILES) {
    const user = new SimulatedUser(profile, { seed: 1 });
    const [d, pole] = Object.entries(profile.prefers)[0] as [Dimension, string];
    let wins = 0;
    const n = 200;
    for (let i = 0; i < n; i++) {
      const { good, bad } = pair(i, d, pole);
      const goodFirst = i % 2 === 0;
      const choice = goodFirst ? user.compare(good, bad) : user.compare(bad, good);
      if (choice === (goodFirst ? 'A' : 'B')) wins++;
    }
    t.diagnostic(`${profile.name}: prefers own pole in ${((wins / n) * 100).toFixed(1)}% of ${n}`);
    assert.ok(wins / n >= 0.95, `${profile.name}: ${wins}/${n}`);
  }
});

test('noise is the rate of random answers, and runs are deterministic for a seed', (t) => {
  const profile = SOUPS_PROFILES.find((p) => p.name === 'elementary')!;
  const pairs = Array.from({ length: 1000 }, (_, i) => pair(i % 200, 'expertise', 'elementary'));
  const run = (noise: number, seed: number) => {
    const u = new SimulatedUser(profile, { noise, seed });
    return pairs.map(({ good, bad }) => u.compare(good, bad));
  };
  const clean = run(0, 7);
  const truth = clean.filter((c) => c === 'A').length / clean.length;
  assert.ok(truth >= 0.95);
  assert.deepEqual(run(0.3, 7), run(0.3, 7));
  assert.notDeepEqual(run(0.3, 7), run(0.3, 8));
  // Same seed: the noisy run differs from the clean one only where a coin flip overrode the judge.
  const noisy = run(0.3, 7);
  const flipped = noisy.filter((c, i) => c !== clean[i]).length / noisy.length;
  const allRandom = run(1, 7);
  const shareA = allRandom.filter((c) => c === 'A').length / allRandom.length;
  t.diagnostic(`noise 0.3: ${(flipped * 100).toFixed(1)}% answers changed (expect ~15%); noise 1: ${(shareA * 100).toFixed(1)}% A`);
  assert.ok(flipped > 0.1 && flipped < 0.2, `flipped ${flipped}`);
  assert.ok(shareA > 0.44 && shareA < 0.56, `share A ${shareA}`);
  assert.ok(allRandom.every((c) => c === 'A' || c === 'B'));
  const anyChoice = new SimulatedUser(profile, { noise: 1, seed: 3, noiseChoices: ['tie', 'both_bad'] });
  assert.ok(pairs.slice(0, 50).every(({ good, bad }) => ['tie', 'both_bad'].includes(anyChoice.compare(good, bad))));
});

test('ties, both_bad and thumbs', () => {
  const user = new SimulatedUser(SOUPS_PROFILES.find((p) => p.name === 'elementary')!);
  const simple = 'A budget is a plan for your money. Think of it like a map for each dollar.';
  const simple2 = 'Compost is old food turning into soil. Imagine a slow kitchen for worms.';
  const technical = 'Technically, a budget is a forward-looking allocation of expected income; practitioners track cash flow.';
  const technical2 = 'Formally, composting is the aerobic decomposition of organic matter, typically analyzed in terms of the carbon-to-nitrogen ratio.';
  const plain = 'A budget is a plan for spending and saving money.';
  assert.equal(user.compare(simple, technical), 'A');
  assert.equal(user.compare(technical, simple), 'B');
  assert.equal(user.compare(simple, simple2), 'tie');
  assert.equal(user.compare(technical, technical2), 'both_bad');
  assert.equal(user.compare(plain, plain), 'tie');
  assert.equal(user.compare(plain, technical), 'A');
  assert.equal(user.thumbs(simple), 'up');
  assert.equal(user.thumbs(technical), 'down');
  assert.equal(user.thumbs(plain), 'down');
  const noisy = new SimulatedUser(SOUPS_PROFILES[0]!, { noise: 1, seed: 2 });
  const thumbs = Array.from({ length: 400 }, () => noisy.thumbs(simple));
  const ups = thumbs.filter((x) => x === 'up').length / thumbs.length;
  assert.ok(ups > 0.4 && ups < 0.6, `noisy thumbs up share ${ups}`);
});

test('a profile over several dimensions adds up its matches', () => {
  const user = new SimulatedUser({ name: 'terse-pro', prefers: { expertise: 'expert', tone: 'blunt' } });
  const both = 'Bottom line: technically, a budget is an allocation of expected income; practitioners track cash flow. No excuses.';
  const one = 'Technically, a budget is an allocation of expected income; practitioners track cash flow.';
  const opposite = 'Happy to help! A budget is a plan, kind of like a map for your money! Have fun!';
  assert.equal(user.score(both), 2);
  assert.equal(user.score(one), 1);
  assert.equal(user.score(opposite), -2);
  assert.equal(user.compare(one, both), 'B');
  assert.equal(user.compare(opposite, opposite), 'both_bad');
});

test('bad profiles are rejected with messages naming the field', () => {
  const bad: [unknown, RegExp][] = [
    [{ name: 'x', prefers: { tone: 'rude' } }, /prefers\.tone/],
    [{ name: 'x', prefers: { expertise: 'concise' } }, /prefers\.expertise/],
    [{ prefers: { tone: 'blunt' } }, /\bname\b/],
    [{ name: '  ', prefers: {} }, /\bname\b/],
    [{ name: 'x', prefers: { humor: 'dry' } }, /humor/],
    [{ name: 'x', prefers: 'blunt' }, /\bprefers\b/],
    [{ name: 'x', prefers: {}, extra: 1 }, /extra/],
  ];
  for (const [input, field] of bad) {
    assert.throws(() => parseProfile(input), (e: unknown) => e instanceof ProfileError && field.test(e.message), JSON.stringify(input));
  }
  assert.throws(() => parseProfiles([{ name: 'ok', prefers: {} }, { name: 'x', prefers: { length: 'long' } }]), /\[1\]\.prefers\.length/);
  assert.throws(() => parseProfiles({}), ProfileError);
  const fine: UserProfile = { name: 'x', prefers: {} };
  assert.throws(() => new SimulatedUser(fine, { noise: 1.5 }), /noise/);
  assert.throws(() => new SimulatedUser({ name: 'x', prefers: { tone: 'rude' } } as unknown as UserProfile), /prefers\.tone/);
  assert.deepEqual(Object.keys(POLES), ['expertise', 'length', 'tone']);
});
