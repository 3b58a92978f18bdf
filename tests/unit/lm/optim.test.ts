// lm/optim.ts: AdamW with decoupled weight decay, global-norm clipping and the learning-rate
// schedule, checked against the update written out by hand.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AdamW, clipByGlobalNorm, learningRate } from '../../../server/lm/optim.ts';

const hyper = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };

describe('AdamW', () => {
  test('the first step moves each weight by lr·g/(|g| + eps), after decoupled decay', () => {
    const p = Float32Array.from([1, -2, 0.5]);
    const g = Float32Array.from([0.3, 0.01, -4]);
    const adam = new AdamW(new Map([['w', p]]), ['w']);
    adam.step([['w', g]], 0.01, hyper);
    const want = [1, -2, 0.5].map((x, i) => x - 0.01 * 0.1 * x - (0.01 * g[i]!) / (Math.abs(g[i]!) + 1e-8));
    want.forEach((w, i) => assert.ok(Math.abs(p[i]! - w) < 1e-6, `p[${i}] = ${p[i]}, want ${w}`));
    adam.m.get('w')!.forEach((m, i) => assert.ok(Math.abs(m - 0.1 * g[i]!) < 1e-7, `m[${i}] = ${m}`));
    adam.v.get('w')!.forEach((v, i) => assert.ok(Math.abs(v - 0.001 * g[i]! * g[i]!) < 1e-9, `v[${i}] = ${v}`));
    assert.equal(adam.steps, 1);
  });

  test('bias correction: a constant gradient keeps the step at lr·sign(g)', () => {
    const p = new Float32Array([0]);
    const adam = new AdamW(new Map([['w', p]]), ['w']);
    for (let t = 0; t < 50; t++) adam.step([['w', Float32Array.from([2])]], 1e-3, { ...hyper, weightDecay: 0 });
    assert.ok(Math.abs(p[0]! + 50e-3) < 1e-6, `after 50 steps: ${p[0]}`);
  });

  test('gradScale scales the gradient; decays() spares the weights it names', () => {
    const params = new Map([['w', Float32Array.from([1])], ['gain', Float32Array.from([1])]]);
    const adam = new AdamW(params, ['w', 'gain']);
    adam.step([['w', Float32Array.from([0])], ['gain', Float32Array.from([0])]], 0.5, hyper, { decays: (n) => n === 'w' });
    assert.equal(params.get('w')![0], Math.fround(1 - 0.5 * 0.1));
    assert.equal(params.get('gain')![0], 1);
    // The factor applies to the gradient before it enters the moments.
    const a = new AdamW(new Map([['w', Float32Array.from([0])]]), ['w']);
    const b = new AdamW(new Map([['w', Float32Array.from([0])]]), ['w']);
    a.step([['w', Float32Array.from([1])]], 0.1, hyper);
    b.step([['w', Float32Array.from([1])]], 0.1, hyper);
    a.step([['w', Float32Array.from([1])]], 0.1, hyper, { gradScale: 0.01 });
    b.step([['w', Float32Array.from([1])]], 0.1, hyper);
    assert.ok(Math.abs(a.m.get('w')![0]! - (0.9 * 0.1 + 0.1 * 0.01)) < 1e-7);
    assert.ok(Math.abs(b.m.get('w')![0]! - (0.9 * 0.1 + 0.1)) < 1e-7);
  });

  test('only named parameters train, and only those with a gradient move', () => {
    const params = new Map([['a', Float32Array.from([1])], ['b', Float32Array.from([1])]]);
    assert.throws(() => new AdamW(params, ['c']), /no parameter c/);
    const adam = new AdamW(params, ['a']);
    assert.throws(() => adam.step([['b', Float32Array.from([1])]], 0.1, hyper), /b is not a trained parameter/);
    adam.step([], 0.1, hyper);
    assert.equal(params.get('a')![0], 1);
  });
});

describe('clipping and schedule', () => {
  test('clipByGlobalNorm: the norm over every gradient, and the factor down to the threshold', () => {
    const grads = [Float32Array.from([3, 0]), Float32Array.from([0, 4])];
    assert.deepEqual(clipByGlobalNorm(grads, 1), { norm: 5, scale: 0.2 });
    assert.deepEqual(clipByGlobalNorm(grads, 10), { norm: 5, scale: 1 });
    assert.deepEqual(clipByGlobalNorm(grads, 0), { norm: 5, scale: 1 }, '0 turns clipping off');
    assert.deepEqual(clipByGlobalNorm([], 1), { norm: 0, scale: 1 });
  });

  test('learningRate: linear warmup, cosine to minLrRatio·lr, flat after totalSteps', () => {
    const o = { lr: 1, minLrRatio: 0.1, warmupSteps: 10, totalSteps: 110 };
    assert.equal(learningRate(o, 0), 0.1);
    assert.equal(learningRate(o, 9), 1);
    assert.equal(learningRate(o, 10), 1);
    assert.ok(Math.abs(learningRate(o, 60) - 0.55) < 1e-12);
    assert.ok(Math.abs(learningRate(o, 110) - 0.1) < 1e-12);
    assert.ok(Math.abs(learningRate(o, 500) - 0.1) < 1e-12);
    assert.equal(learningRate({ ...o, warmupSteps: 0, totalSteps: 0 }, 0), 1, 'no warmup: the peak at once');
    assert.ok(Math.abs(learningRate({ ...o, warmupSteps: 0, totalSteps: 0 }, 1) - 0.1) < 1e-12, 'and the floor after');
  });
});
