// lm/rng.ts, the one seeded generator. The pinned values below were drawn from the generators it
// replaced (the sandbox's sfc32 `Rng` and random-model.ts's per-tensor streams): corpora, simulated
// users and random test models depend on these exact streams, so a change here must be deliberate.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, hashString } from '../../../server/lm/rng.ts';

const draws = (r: Rng, n: number): number[] => Array.from({ length: n }, () => r.nextUint32());

describe('streams are pinned', () => {
  test('new Rng(seed): uint32 seeds, strings, fork', () => {
    assert.deepEqual(draws(new Rng(42), 4), [1028872839, 2516511472, 400437680, 853279530]);
    assert.deepEqual(draws(new Rng('seed:example:17'), 3), [4082376846, 1409555244, 2555675842]);
    assert.deepEqual(draws(new Rng(42).fork('users'), 3), [1788089597, 3405328623, 3544376283]);
  });

  test('Rng.stream(seed, label) and its normals', () => {
    assert.deepEqual(draws(Rng.stream(7, 'wte.weight'), 3), [3996110310, 305920502, 2552220671]);
    assert.deepEqual(Array.from(Rng.stream(3, 'stats').fillNormal(new Float32Array(4), 1)), [
      -0.6579198241233826, 0.21757438778877258, -1.2596009969711304, -1.7413673400878906,
    ]);
  });

  test('hashString is FNV-1a over UTF-16 code units', () => {
    assert.equal(hashString(''), 0x811c9dc5);
    assert.equal(hashString('a'), 0xe40c292c);
  });
});

describe('seeding', () => {
  test('a number that is not a uint32 seeds like its text; a uint32 does not', () => {
    assert.deepEqual(draws(new Rng(-1), 3), draws(new Rng('-1'), 3));
    assert.deepEqual(draws(new Rng(1.5), 3), draws(new Rng('1.5'), 3));
    assert.notDeepEqual(draws(new Rng(7), 3), draws(new Rng('7'), 3));
  });

  test('streams differ by seed and by label, and do not depend on one another', () => {
    assert.notDeepEqual(draws(Rng.stream(1, 'a'), 4), draws(Rng.stream(2, 'a'), 4));
    assert.notDeepEqual(draws(Rng.stream(1, 'a'), 4), draws(Rng.stream(1, 'b'), 4));
    const a = Rng.stream(1, 'a');
    const before = draws(Rng.stream(1, 'b'), 4);
    draws(a, 100);
    assert.deepEqual(draws(Rng.stream(1, 'b'), 4), before);
    const parent = new Rng(5);
    const child = parent.fork('x');
    assert.notDeepEqual(draws(child, 4), draws(parent, 4));
  });

  test('fillNormal continues the stream: one fill of n + m equals a fill of n then of m', () => {
    const whole = Rng.stream(3, 'x').fillNormal(new Float32Array(50_000), 1);
    const r = Rng.stream(3, 'x');
    const parts = [...r.fillNormal(new Float32Array(20_000), 1), ...r.fillNormal(new Float32Array(30_000), 1)];
    assert.deepEqual(parts, [...whole]);
    const scaled = Rng.stream(3, 'x').fillNormal(new Float32Array(3), 2, 1);
    scaled.forEach((x, i) => assert.ok(Math.abs(x - (1 + 2 * whole[i]!)) < 1e-6, 'mean + std·z'));
  });
});

describe('draws', () => {
  test('next in [0, 1), int in [0, n), range inclusive, chance, weightedIndex', () => {
    const r = new Rng(9);
    const counts = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) {
      const u = r.next();
      assert.ok(u >= 0 && u < 1);
      const k = r.int(3);
      assert.ok(Number.isInteger(k) && k >= 0 && k < 3);
      counts[k]!++;
      const x = r.range(-2, 2);
      assert.ok(x >= -2 && x <= 2);
    }
    for (const c of counts) assert.ok(Math.abs(c / 30_000 - 1 / 3) < 0.02, `int(3) counts ${counts}`);
    let hits = 0;
    for (let i = 0; i < 10_000; i++) if (r.chance(0.25)) hits++;
    assert.ok(Math.abs(hits / 10_000 - 0.25) < 0.02);
    const w = [0, 0, 0];
    for (let i = 0; i < 10_000; i++) w[r.weightedIndex([1, 0, 3])]!++;
    assert.equal(w[1], 0);
    assert.ok(Math.abs(w[2]! / 10_000 - 0.75) < 0.02);
  });

  test('shuffle permutes a copy; pick and weightedIndex refuse what they cannot draw from', () => {
    const xs = Array.from({ length: 20 }, (_, i) => i);
    const shuffled = new Rng(1).shuffle(xs);
    assert.deepEqual([...shuffled].sort((a, b) => a - b), xs);
    assert.notDeepEqual(shuffled, xs);
    assert.deepEqual(xs, Array.from({ length: 20 }, (_, i) => i));
    assert.throws(() => new Rng(1).pick([]), RangeError);
    assert.throws(() => new Rng(1).weightedIndex([0, 0]), RangeError);
  });
});
