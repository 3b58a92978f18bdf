import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseSamplingParams, Sampler, samplingParamsSchema, type SamplingParams } from '../../../server/lm/sampling.ts';
import { isLmError } from '../../../server/lm/errors.ts';
import { seededRandom } from '../../helpers/random-text.ts';

const params = (p: Partial<SamplingParams>): SamplingParams => ({
  temperature: 1,
  topK: 0,
  topP: 1,
  repetitionPenalty: 1,
  seed: 1,
  ...p,
});

const logitsOfProbs = (probs: number[]): Float32Array => Float32Array.from(probs, (p) => Math.log(p));

/**
 * The reference: HF's processors written the obvious way, in float64 with full sorts.
 * Returns kept ids (most likely first, ties by lower id) with their probabilities, and how close
 * the top-p cut came to being ambiguous.
 */
function reference(
  logits: ArrayLike<number>,
  prev: number[],
  p: SamplingParams,
): { ids: number[]; probs: number[]; margin: number } {
  const V = logits.length;
  const s = Array.from(logits, (v) => (Number.isNaN(v) ? -Infinity : v));
  if (p.repetitionPenalty !== 1) {
    for (const id of new Set(prev)) {
      if (id < 0 || id >= V) continue;
      s[id] = s[id] < 0 ? s[id] * p.repetitionPenalty : s[id] / p.repetitionPenalty;
    }
  }
  let order = s.map((v, id) => ({ id, v })).sort((a, b) => b.v - a.v || a.id - b.id);
  if (p.topK > 0) order = order.slice(0, p.topK);
  const max = order[0].v;
  const w = order.map((o) => Math.exp((o.v - max) / p.temperature));
  const total = w.reduce((a, b) => a + b, 0);
  let keep = order.length;
  let margin = Infinity;
  if (p.topP < 1) {
    let before = 0;
    for (let i = 0; i < order.length; i++) {
      const after = before + w[i] / total;
      if (after >= p.topP) {
        keep = i + 1;
        margin = Math.min(after - p.topP, i > 0 ? p.topP - before : Infinity);
        break;
      }
      before = after;
    }
  }
  const kept = order.slice(0, keep).map((o, i) => ({ id: o.id, w: w[i] }));
  const mass = kept.reduce((a, b) => a + b.w, 0);
  // The sampler treats weights below 2^-64 of the best token's as 0 (negligible, and faster).
  const nonZero = kept.filter((k) => k.w >= 2 ** -64);
  if (kept.some((k) => k.w > 2 ** -66 && k.w < 2 ** -62)) margin = 0;
  return { ids: nonZero.map((k) => k.id), probs: nonZero.map((k) => k.w / mass), margin };
}

describe('samplingParamsSchema', () => {
  it('fills documented defaults and a random uint32 seed', () => {
    const a = samplingParamsSchema.parse({});
    assert.equal(a.temperature, 0.7);
    assert.equal(a.topK, 0);
    assert.equal(a.topP, 0.95);
    assert.equal(a.repetitionPenalty, 1);
    assert.ok(Number.isInteger(a.seed) && a.seed >= 0 && a.seed <= 0xffff_ffff);
    const seeds = new Set(Array.from({ length: 8 }, () => samplingParamsSchema.parse({}).seed));
    assert.ok(seeds.size > 1, 'absent seeds are drawn fresh each time');
    assert.deepEqual(samplingParamsSchema.parse({ temperature: 0, topK: 5, topP: 1, repetitionPenalty: 1.3, seed: 9 }), {
      temperature: 0,
      topK: 5,
      topP: 1,
      repetitionPenalty: 1.3,
      seed: 9,
    });
  });

  const bad: Array<[string, Record<string, unknown>]> = [
    ['temperature', { temperature: -0.1 }],
    ['temperature', { temperature: 2.5 }],
    ['temperature', { temperature: Number.NaN }],
    ['temperature', { temperature: '0.7' }],
    ['topK', { topK: -1 }],
    ['topK', { topK: 2.5 }],
    ['topP', { topP: 1.01 }],
    ['topP', { topP: -0.5 }],
    ['topP', { topP: Number.POSITIVE_INFINITY }],
    ['repetitionPenalty', { repetitionPenalty: 0 }],
    ['repetitionPenalty', { repetitionPenalty: -1.2 }],
    ['repetitionPenalty', { repetitionPenalty: 11 }],
    ['seed', { seed: -1 }],
    ['seed', { seed: 2 ** 32 }],
    ['seed', { seed: 1.5 }],
  ];
  for (const [field, input] of bad) {
    it(`rejects ${JSON.stringify(input)} naming ${field}`, () => {
      const r = samplingParamsSchema.safeParse(input);
      assert.equal(r.success, false);
      assert.equal(String(r.error!.issues[0].path[0]), field);
      assert.match(r.error!.issues[0].message, new RegExp(field));
      assert.throws(
        () => parseSamplingParams(input),
        (e: unknown) => isLmError(e, 'bad_argument') && e.message.includes(field),
      );
      assert.throws(
        () => new Sampler({ ...params({}), ...input } as SamplingParams),
        (e: unknown) => isLmError(e, 'bad_argument') && e.message.includes(field),
      );
    });
  }
});

describe('Sampler', () => {
  it('greedy picks the argmax, the lowest id on ties, and never NaN', () => {
    const s = new Sampler(params({ temperature: 0 }));
    assert.equal(s.next(Float32Array.of(0.1, 3, -2, 2.9), []), 1);
    assert.equal(s.next(Float32Array.of(1, 5, 5, 5), []), 1);
    assert.equal(s.next(Float32Array.of(Number.NaN, -1, Number.NaN, -0.5), []), 3);
    assert.equal(s.next(Float32Array.of(-Infinity, -Infinity, 7), []), 2);
  });

  it('a subnormal temperature (1/T overflows) samples as greedy, never an invalid token', () => {
    for (const temperature of [1e-320, 7.4e-323, Number.MIN_VALUE]) {
      for (const repetitionPenalty of [1, 1.2]) {
        const s = new Sampler(params({ temperature, repetitionPenalty, topP: 0.9, topK: 5, seed: 7 }));
        assert.equal(s.next(Float32Array.of(0.1, 3, -2, 2.9), []), 1, `T=${temperature}, penalty ${repetitionPenalty}`);
      }
    }
  });

  it('greedy applies the repetition penalty first (HF: divide positive logits, multiply negative ones)', () => {
    const s = new Sampler(params({ temperature: 0, repetitionPenalty: 1.1 }));
    assert.equal(s.next(Float32Array.of(2.0, 1.9), []), 0);
    assert.equal(s.next(Float32Array.of(2.0, 1.9), [0]), 1, '2.0 / 1.1 < 1.9');
    assert.equal(s.next(Float32Array.of(-1.0, -1.05), [0]), 1, '-1.0 * 1.1 < -1.05');
  });

  it('repetition penalty matches the HF formula exactly, once per distinct id', () => {
    const logits = Float32Array.of(2, -1, 0.5, 3, 0);
    const prev = [0, 1, 1, 1, 4, 99, -3];
    const s = new Sampler(params({ repetitionPenalty: 1.5 }));
    const got = s.distribution(logits, prev);
    const penalised = [2 / 1.5, -1 * 1.5, 0.5, 3, 0 / 1.5];
    const z = penalised.reduce((a, v) => a + Math.exp(v), 0);
    const order = penalised.map((v, id) => ({ id, p: Math.exp(v) / z })).sort((a, b) => b.p - a.p);
    assert.deepEqual(got.ids, order.map((o) => o.id));
    got.probs.forEach((p, i) => assert.ok(Math.abs(p - order[i].p) < 1e-6, `p[${i}] ${p} vs ${order[i].p}`));
  });

  it('does not modify the logits and accepts a subarray view', () => {
    const rand = seededRandom(3);
    const big = new Float32Array(3 * 100).map(() => rand() * 8 - 4);
    const view = big.subarray(100, 200);
    const before = Float32Array.from(big);
    const a = new Sampler(params({ temperature: 0.9, topK: 10, topP: 0.9, repetitionPenalty: 1.3, seed: 5 }));
    const b = new Sampler(params({ temperature: 0.9, topK: 10, topP: 0.9, repetitionPenalty: 1.3, seed: 5 }));
    for (let i = 0; i < 50; i++) assert.equal(a.next(view, [1, 2, 3]), b.next(Float32Array.from(view), [1, 2, 3]));
    assert.deepEqual(big, before);
  });

  it('gives the same sequence for the same seed and different ones for different seeds', () => {
    const rand = seededRandom(11);
    const steps = Array.from({ length: 200 }, () => new Float32Array(500).map(() => rand() * 6));
    const run = (seed: number): number[] => {
      const s = new Sampler(params({ temperature: 1, topP: 0.95, topK: 40, seed }));
      const prev: number[] = [];
      return steps.map((l) => {
        const id = s.next(l, prev);
        prev.push(id);
        return id;
      });
    };
    const a = run(42);
    assert.deepEqual(run(42), a);
    const b = run(43);
    const same = a.filter((id, i) => id === b[i]).length;
    assert.ok(same < 40, `seeds 42 and 43 agree on ${same}/200 draws`);
  });

  it('top-k = 1 is greedy', () => {
    const rand = seededRandom(7);
    const greedy = new Sampler(params({ temperature: 0 }));
    const k1 = new Sampler(params({ temperature: 1.5, topK: 1, topP: 0.9, seed: 3 }));
    for (let t = 0; t < 100; t++) {
      const l = new Float32Array(300).map(() => Math.round(rand() * 20) / 4); // many ties
      assert.equal(k1.next(l, []), greedy.next(l, []));
    }
  });

  it('top-p keeps the smallest nucleus reaching p, with matching frequencies', () => {
    const logits = logitsOfProbs([0.5, 0.25, 0.15, 0.1]);
    const cases: Array<[number, number[]]> = [
      [0.7, [0.5 / 0.75, 0.25 / 0.75, 0, 0]], // 0.5 < 0.7 ≤ 0.75
      [0.8, [0.5 / 0.9, 0.25 / 0.9, 0.15 / 0.9, 0]], // 0.75 < 0.8 ≤ 0.9
      [0.3, [1, 0, 0, 0]], // the top token alone reaches p
      [0, [1, 0, 0, 0]], // always at least one token
    ];
    for (const [topP, expected] of cases) {
      const s = new Sampler(params({ topP, seed: 1234 }));
      const N = 20_000;
      const counts = [0, 0, 0, 0];
      for (let i = 0; i < N; i++) counts[s.next(logits, [])]++;
      counts.forEach((c, id) => {
        const f = c / N;
        if (expected[id] === 0) assert.equal(c, 0, `topP ${topP}: token ${id} is outside the nucleus`);
        else assert.ok(Math.abs(f - expected[id]) < 0.015, `topP ${topP}: token ${id} frequency ${f} vs ${expected[id]}`);
      });
    }
  });

  it('samples every token in proportion to softmax(logits / T) when no filter is on', () => {
    const logits = Float32Array.of(1, 0, -1, 0.5);
    const T = 0.8;
    const z = Array.from(logits).reduce((a, v) => a + Math.exp(v / T), 0);
    const s = new Sampler(params({ temperature: T, seed: 99 }));
    const N = 40_000;
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < N; i++) counts[s.next(logits, [])]++;
    logits.forEach((v, id) => {
      const p = Math.exp(v / T) / z;
      assert.ok(Math.abs(counts[id] / N - p) < 0.01, `token ${id}: ${counts[id] / N} vs ${p}`);
    });
  });

  it('filters exactly like the sort-based reference on random logits, ties, NaN and -Infinity', () => {
    const rand = seededRandom(2024);
    let compared = 0;
    for (let t = 0; t < 300; t++) {
      const V = [2, 5, 17, 64, 300, 2000][t % 6];
      const quantised = rand() < 0.4; // many ties, also at the top-k and top-p boundaries
      const logits = new Float32Array(V).map(() => {
        const x = (rand() * 2 - 1) * (1 + 9 * rand());
        return quantised ? Math.round(x * 2) / 2 : x;
      });
      if (t % 5 === 0) logits[Math.floor(rand() * V)] = -Infinity;
      if (t % 7 === 0 && V > 2) logits[Math.floor(rand() * V)] = Number.NaN;
      const p = params({
        temperature: [0.3, 0.7, 1, 1.6][t % 4],
        topK: [0, 1, 3, 40, 300, 1000][Math.floor(rand() * 6)], // > 256: the radix path
        topP: [1, 0.95, 0.5, 0.8, 0.1, 0][Math.floor(rand() * 6)],
        repetitionPenalty: [1, 1.2, 0.8][t % 3],
      });
      const prev = Array.from({ length: 10 }, () => Math.floor(rand() * V));
      const ref = reference(logits, prev, p);
      if (ref.margin < 1e-4) continue; // the cut sits on float rounding: either answer is right
      const got = new Sampler(p).distribution(logits, prev);
      assert.deepEqual(got.ids, ref.ids, `case ${t}: ${JSON.stringify(p)} V=${V}`);
      got.probs.forEach((q, i) => assert.ok(Math.abs(q - ref.probs[i]) < 1e-5, `case ${t}: p[${i}] ${q} vs ${ref.probs[i]}`));
      compared++;
    }
    assert.ok(compared > 250, `only ${compared} unambiguous cases`);
  });

  it('filters a 50257-token vocabulary like the reference (top-k through both selection paths)', () => {
    const rand = seededRandom(78);
    const V = 50257;
    const logits = new Float32Array(V).map(() => (rand() + rand() + rand() - 1.5) * 6);
    logits[123] = 14; // a clear favourite
    for (const p of [
      params({ temperature: 0.7, topP: 0.95 }),
      params({ temperature: 1.3, topP: 0.5, repetitionPenalty: 1.2 }),
      params({ temperature: 0.7, topK: 50, topP: 0.9 }),
      params({ temperature: 1, topK: 5000 }),
      params({ temperature: 2, topK: 40000, topP: 0.6 }),
    ]) {
      const prev = [123, 5, 77, 50256];
      const ref = reference(logits, prev, p);
      assert.ok(ref.margin > 2e-6, `margin ${ref.margin} ${JSON.stringify(p)}`);
      const got = new Sampler(p).distribution(logits, prev);
      assert.equal(got.ids.length, ref.ids.length, JSON.stringify(p));
      assert.deepEqual(got.ids, ref.ids, JSON.stringify(p));
      for (let i = 0; i < got.probs.length; i += 97) {
        assert.ok(Math.abs(got.probs[i] - ref.probs[i]) < 1e-6, `p[${i}] ${got.probs[i]} vs ${ref.probs[i]}`);
      }
    }
  });

  it('approaches greedy as the temperature goes to 0, and flattens as it grows', () => {
    const logits = Float32Array.of(1.0, 2.5, 2.0, -1);
    const tiny = new Sampler(params({ temperature: 0.01, seed: 8 }));
    for (let i = 0; i < 2000; i++) assert.equal(tiny.next(logits, []), 1);
    let lastEntropy = -1;
    for (const T of [0.05, 0.25, 0.5, 1, 2]) {
      const { probs } = new Sampler(params({ temperature: T })).distribution(logits, []);
      const entropy = -probs.reduce((a, p) => a + (p > 0 ? p * Math.log(p) : 0), 0);
      assert.ok(entropy > lastEntropy, `entropy at T=${T}`);
      lastEntropy = entropy;
    }
    const cold = new Sampler(params({ temperature: 0.05 })).distribution(logits, []);
    assert.equal(cold.ids[0], 1);
    assert.ok(cold.probs[0] > 0.9999);
  });

  it('rejects logits with nothing to choose', () => {
    for (const temperature of [0, 1]) {
      const s = new Sampler(params({ temperature }));
      assert.throws(() => s.next(new Float32Array(0), []), (e: unknown) => isLmError(e, 'bad_argument'));
      assert.throws(
        () => s.next(Float32Array.of(-Infinity, Number.NaN), []),
        (e: unknown) => isLmError(e, 'bad_argument'),
      );
    }
  });
});

it('the first draw of consecutive seeds follows the distribution (seeds are mixed, not used raw)', () => {
  // Three tokens with probabilities 0.5, 0.3, 0.2; one draw per seed, as a fresh request makes.
  const logits = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.2)]);
  const counts = [0, 0, 0];
  const n = 3000;
  for (let seed = 1; seed <= n; seed++) {
    counts[new Sampler({ temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed }).next(logits, [])]! += 1;
  }
  // Binomial standard deviations are ≤ 0.0092 here; 4 of them.
  assert.ok(Math.abs(counts[0]! / n - 0.5) < 0.037, `token 0: ${counts[0]! / n}`);
  assert.ok(Math.abs(counts[1]! / n - 0.3) < 0.034, `token 1: ${counts[1]! / n}`);
  assert.ok(Math.abs(counts[2]! / n - 0.2) < 0.03, `token 2: ${counts[2]! / n}`);
});
