import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { generateCorpus } from '../../../sandbox/corpus.ts';
import { judgeStyle, matchesPole, splitSentences, textFeatures } from '../../../sandbox/judge.ts';
import { DIMENSIONS, isPole } from '../../../sandbox/style.ts';

// A seed used nowhere during development of the generator or the judge.
const FRESH_SEED = 'judge-acceptance-7d41';

test('judge accuracy on fresh held-out responses: >= 95% per dimension on the poles', (t) => {
  const examples = generateCorpus({ seed: FRESH_SEED, count: 1500, split: 'heldout' });
  for (const d of DIMENSIONS) {
    let poleHits = 0, poleTotal = 0, neutralHits = 0, neutralTotal = 0;
    const confusions: Record<string, number> = {};
    for (const e of examples) {
      const truth = e.style[d];
      const got = judgeStyle(e.response)[d].label;
      if (got !== truth) confusions[`${truth}->${got}`] = (confusions[`${truth}->${got}`] ?? 0) + 1;
      if (isPole(d, truth)) {
        poleTotal++;
        if (got === truth) poleHits++;
      } else {
        neutralTotal++;
        if (got === truth) neutralHits++;
      }
    }
    const poleAcc = poleHits / poleTotal;
    const neutralAcc = neutralHits / neutralTotal;
    t.diagnostic(`${d}: poles ${(poleAcc * 100).toFixed(1)}% of ${poleTotal}, neutral ${(neutralAcc * 100).toFixed(1)}% of ${neutralTotal}; errors ${JSON.stringify(confusions)}`);
    assert.ok(poleTotal >= 900, `${poleTotal} pole examples for ${d}`);
    assert.ok(poleAcc >= 0.95, `${d} pole accuracy ${poleAcc}`);
    assert.ok(neutralAcc >= 0.85, `${d} neutral accuracy ${neutralAcc}`);
  }
});

test('the judge never reads the generator: it imports only shared style definitions', () => {
  const src = fs.readFileSync(new URL('../../../sandbox/judge.ts', import.meta.url), 'utf8');
  const imports = [...src.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]);
  assert.deepEqual(imports, ['./style.ts']);
});

test('hand-written texts in other words than the generator uses', () => {
  const cases: [string, 'expertise' | 'length' | 'tone', string][] = [
    ['Imagine your body is a car and food is the fuel. When you eat, you fill up the tank. That is the whole trick.', 'expertise', 'elementary'],
    ['Glycolysis proceeds through ten enzymatic steps; flux is primarily regulated at phosphofructokinase under typical physiological conditions.', 'expertise', 'expert'],
    ['Bread rises because yeast makes gas while the dough rests. Bake it once it has doubled.', 'expertise', 'neutral'],
    ['Oh, what a lovely question! I am happy to help you with that. Have a great day!', 'tone', 'friendly'],
    ["Short answer: no. Redo the form and stop asking. Don't argue.", 'tone', 'blunt'],
    ['The train leaves at nine from platform four. Tickets are sold at the station.', 'tone', 'neutral'],
    ['Water boils at 100 degrees at sea level.', 'length', 'concise'],
    ['Check the oil. Then check the tires. Look at the lights as well. Fill the washer fluid. Test the brakes on a quiet road. Keep a spare in the trunk. Write down the mileage.', 'length', 'detailed'],
    ['Tea needs hot water. Green tea likes it cooler than black tea. Steep it for about three minutes.', 'length', 'neutral'],
  ];
  for (const [text, d, want] of cases) assert.equal(judgeStyle(text)[d].label, want, `${d} of: ${text}`);
});

test('scores are signed toward the second pole, and deterministic', () => {
  const expert = 'Technically, inflation is a sustained increase in the general price level; practitioners track the consumer price index.';
  const simple = 'Inflation is when prices go up. Think of it like a slow leak in a balloon.';
  assert.ok(judgeStyle(expert).expertise.score > 0 && judgeStyle(simple).expertise.score < 0);
  assert.ok(judgeStyle('Bottom line: pay it off. No excuses.').tone.score > 0);
  assert.ok(judgeStyle('Happy to help! Hope that helps!').tone.score < 0);
  assert.deepEqual(judgeStyle(expert), judgeStyle(expert));
  const empty = judgeStyle('');
  assert.equal(empty.length.label, 'concise');
  assert.equal(empty.tone.label, 'neutral');
});

test('matchesPole checks one dimension and rejects values that are not poles', () => {
  const text = 'Great question! Think of a budget like a map for your money. Have fun!';
  assert.equal(matchesPole(text, 'tone', 'friendly'), true);
  assert.equal(matchesPole(text, 'tone', 'blunt'), false);
  assert.equal(matchesPole(text, 'expertise', 'elementary'), true);
  assert.throws(() => matchesPole(text, 'tone', 'neutral'), /not a pole of tone/);
  assert.throws(() => matchesPole(text, 'length', 'elementary'), /not a pole of length/);
});

test('features: sentences and words', () => {
  assert.deepEqual(splitSentences('One. Two! Three? Four'), ['One.', 'Two!', 'Three?', 'Four']);
  const f = textFeatures('Hello there! This is fine.');
  assert.equal(f.sentences, 2);
  assert.equal(f.words, 5);
  assert.equal(f.exclamations, 1);
});
