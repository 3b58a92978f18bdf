// P-DPO: the loss and its gradient through the user model, against a direct computation on a tiny
// random model (real onnxruntime scoring sessions), for the individual and the cluster user model.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '../../../server/lm/rng.ts';
import { ModelRuntime } from '../../../server/lm/runtime.ts';
import { writeRandomModel } from '../../../sandbox/random-model.ts';
import { openModelDir } from '../../../server/lm/weights.ts';
import { dpoTerm, evaluatePdpo, isHeldout, pdpoConfigSchema, pdpoLossAndGradients, referenceLogps, type TokenizedPair, trainPdpo } from '../../../server/personalize/pdpo.ts';
import { readTokenEmbedding, UserModel } from '../../../server/personalize/user-model.ts';

const V = 272;
const H = 16;
let dir: string;
let rt: ModelRuntime;
let embedding: Float32Array;

/** Test data from the one seeded generator, as a uniform [0, 1) function. */
const uniform = (seed: number): (() => number) => {
  const rng = new Rng(seed);
  return () => rng.next();
};

function randomPairs(n: number, users: string[], seed: number): TokenizedPair[] {
  const r = uniform(seed);
  const seq = (len: number) => Array.from({ length: len }, () => 1 + Math.floor(r() * (V - 1)));
  return Array.from({ length: n }, (_, i) => {
    const prompt = seq(3 + Math.floor(r() * 4));
    return {
      id: `p${i}`,
      userId: users[i % users.length]!,
      chosen: { ids: [...prompt, ...seq(2 + Math.floor(r() * 4))], from: prompt.length },
      rejected: { ids: [...prompt, ...seq(2 + Math.floor(r() * 4))], from: prompt.length },
    };
  });
}

/** The loss written out directly: one score run per (prefix, answer), then the formula. */
async function directLoss(model: UserModel, pairs: readonly TokenizedPair[], alpha: number, beta: number): Promise<number> {
  const lp = async (prefix: Float32Array, s: { ids: number[]; from: number }) => (await rt.score([{ prefix, ids: s.ids, from: s.from }], { gradPrefix: false })).logp[0]!;
  const ell = (pc: number, pr: number, p: TokenizedPair) => {
    const z = beta * (pc - p.ref!.chosen) - beta * (pr - p.ref!.rejected);
    return -Math.log(1 / (1 + Math.exp(-z)));
  };
  let personal = 0;
  let generic = 0;
  for (const p of pairs) {
    const ei = model.prefixFor(p.userId);
    const e0 = model.prefixFor(null);
    personal += ell(await lp(ei, p.chosen), await lp(ei, p.rejected), p);
    generic += ell(await lp(e0, p.chosen), await lp(e0, p.rejected), p);
  }
  return (alpha * personal + (1 - alpha) * generic) / pairs.length;
}

/** Move every parameter by t·direction. */
function moved(model: UserModel, dirn: Map<string, Float32Array>, t: number): UserModel {
  const m = model.clone();
  for (const [n, d] of dirn) {
    const p = m.params.get(n)!;
    for (let i = 0; i < p.length; i++) p[i] += t * d[i]!;
  }
  return m;
}

function randomDirection(model: UserModel, seed: number, only?: (name: string) => boolean): Map<string, Float32Array> {
  const r = uniform(seed);
  return new Map([...model.params].filter(([n]) => !only || only(n)).map(([n, p]) => [n, Float32Array.from(p, () => r() * 2 - 1)]));
}

const dot = (g: Map<string, Float32Array>, d: Map<string, Float32Array>) => {
  let s = 0;
  for (const [n, v] of d) {
    const gv = g.get(n);
    if (gv) for (let i = 0; i < v.length; i++) s += gv[i]! * v[i]!;
  }
  return s;
};

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-pdpo-'));
  writeRandomModel(dir, { modelType: 'llama', vocabSize: V, hidden: H, layers: 2, heads: 2, kvHeads: 1, maxPositions: 128, tie: true, seed: 3, initStd: 0.3 });
  rt = await ModelRuntime.load(dir, { threads: 1 });
  const files = openModelDir(dir);
  embedding = readTokenEmbedding(files);
  files.weights.close();
});

after(async () => {
  await rt.release();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('dpoTerm', () => {
  it('is −log σ(β·margin) with TRL rewards, and its derivatives match finite differences', () => {
    const [pc, pr, rc, rr, beta] = [-12.5, -9.25, -11, -10, 0.3];
    const t = dpoTerm(pc, pr, rc, rr, beta);
    const z = beta * (pc - rc) - beta * (pr - rr);
    assert.ok(Math.abs(t.loss - Math.log1p(Math.exp(-z))) < 1e-12);
    assert.equal(t.rewardChosen, beta * (pc - rc));
    assert.equal(t.rewardRejected, beta * (pr - rr));
    const h = 1e-6;
    const fdC = (dpoTerm(pc + h, pr, rc, rr, beta).loss - dpoTerm(pc - h, pr, rc, rr, beta).loss) / (2 * h);
    const fdR = (dpoTerm(pc, pr + h, rc, rr, beta).loss - dpoTerm(pc, pr - h, rc, rr, beta).loss) / (2 * h);
    assert.ok(Math.abs(fdC - t.dChosen) < 1e-8, `${fdC} vs ${t.dChosen}`);
    assert.ok(Math.abs(fdR - t.dRejected) < 1e-8, `${fdR} vs ${t.dRejected}`);
    // Stable far in the tails.
    assert.ok(Number.isFinite(dpoTerm(0, -1e4, 0, 0, 1).loss) && dpoTerm(0, -1e4, 0, 0, 1).loss < 1e-12);
    assert.ok(Math.abs(dpoTerm(-1e4, 0, 0, 0, 1).loss - 1e4) < 1e-6);
  });
});

describe('P-DPO loss and gradient on a tiny model', () => {
  for (const kind of ['individual', 'cluster'] as const) {
    it(`${kind}: the loss equals the direct formula and the gradient matches finite differences`, async () => {
      const users = ['alice', 'bob', 'carol'];
      const pairs = randomPairs(6, users, kind === 'individual' ? 11 : 12);
      await referenceLogps(rt, pairs);
      const spec = { kind, tokens: 3, hidden: H, ...(kind === 'cluster' ? { clusters: 3 } : {}) } as const;
      const model = UserModel.initFromVocabulary(spec, embedding, V, new Rng(5));
      for (const u of users.slice(0, 2)) model.addUser(u); // carol has no parameters of her own: e_0
      // Non-trivial offsets / logits, so e_i ≠ e_0.
      const r = uniform(9);
      for (const [n, p] of model.params) if (n.startsWith('offset:') || n.startsWith('logits:')) for (let i = 0; i < p.length; i++) p[i] = (r() - 0.5) * 0.8;
      const cfg = { alpha: 0.5, beta: 0.5 };
      const got = await pdpoLossAndGradients(rt, model, pairs, cfg);
      const direct = await directLoss(model, pairs, cfg.alpha, cfg.beta);
      assert.ok(Math.abs(got.loss - direct) < 1e-4, `batched loss ${got.loss} vs direct ${direct}`);
      assert.ok(!got.grads.has('offset:carol') && !got.grads.has('logits:carol'));

      const d = randomDirection(model, 21);
      const h = 3e-3;
      const plus = await directLoss(moved(model, d, h), pairs, cfg.alpha, cfg.beta);
      const minus = await directLoss(moved(model, d, -h), pairs, cfg.alpha, cfg.beta);
      const fd = (plus - minus) / (2 * h);
      const analytic = dot(got.grads, d);
      assert.ok(Math.abs(analytic) > 1e-3, `the directional derivative should not vanish (${analytic})`);
      assert.ok(Math.abs(fd - analytic) <= 0.03 * Math.abs(analytic) + 2e-4, `finite difference ${fd} vs analytic ${analytic}`);
    });
  }

  it('per-user retraining moves only that user’s parameters; α = 0 trains only the shared prompt', async () => {
    const pairs = randomPairs(8, ['alice', 'bob'], 31);
    await referenceLogps(rt, pairs);
    const model = UserModel.initFromVocabulary({ kind: 'individual', tokens: 2, hidden: H }, embedding, V, new Rng(6));
    model.addUser('alice');
    model.addUser('bob');
    const cfg = pdpoConfigSchema.parse({ alpha: 0.5, beta: 0.5, lr: 0.05, epochs: 2, batchPairs: 4, tokens: 2 });
    const only = await trainPdpo({ runtime: rt, pairs, init: model, config: cfg, onlyUsers: ['alice'] });
    assert.deepEqual(only.model.params.get('e0'), model.params.get('e0'));
    assert.deepEqual(only.model.params.get('offset:bob'), model.params.get('offset:bob'));
    assert.notDeepEqual(only.model.params.get('offset:alice'), model.params.get('offset:alice'));
    const dpo = await trainPdpo({ runtime: rt, pairs, init: model, config: { ...cfg, alpha: 0 } });
    assert.notDeepEqual(dpo.model.params.get('e0'), model.params.get('e0'));
    assert.deepEqual(dpo.model.params.get('offset:alice'), model.params.get('offset:alice'));
    // The step log carries TRL's quantities and the gradient-entanglement cosine.
    const last = only.history.at(-1)!;
    for (const k of ['loss', 'rewards/chosen', 'rewards/rejected', 'rewards/margins', 'rewards/accuracies', 'logps/chosen', 'logps/rejected', 'grad/cosine'] as const) {
      assert.ok(Number.isFinite(last[k]), `${k} is logged`);
    }
  });

  it('training on separable preferences raises held-out reward accuracy per user', async () => {
    // Alice prefers answers ending in token 5, Bob in token 9: opposite tastes on the same prompts.
    const r = uniform(77);
    const pairs: TokenizedPair[] = [];
    for (let i = 0; i < 40; i++) {
      const prompt = Array.from({ length: 4 }, () => 10 + Math.floor(r() * 50));
      const a = [...prompt, 5, 5, 5];
      const b = [...prompt, 9, 9, 9];
      pairs.push({ id: `a${i}`, userId: 'alice', chosen: { ids: a, from: 4 }, rejected: { ids: b, from: 4 } });
      pairs.push({ id: `b${i}`, userId: 'bob', chosen: { ids: b, from: 4 }, rejected: { ids: a, from: 4 } });
    }
    await referenceLogps(rt, pairs);
    const train = pairs.filter((p) => !isHeldout(p.id, 0.25));
    const held = pairs.filter((p) => isHeldout(p.id, 0.25));
    const init = UserModel.initFromVocabulary({ kind: 'individual', tokens: 2, hidden: H }, embedding, V, new Rng(8));
    const cfg = pdpoConfigSchema.parse({ alpha: 0.5, beta: 0.5, lr: 0.1, epochs: 8, batchPairs: 8, tokens: 2 });
    const pdpo = await trainPdpo({ runtime: rt, pairs: train, init, config: cfg });
    const dpo = await trainPdpo({ runtime: rt, pairs: train, init, config: { ...cfg, alpha: 0 } });
    const accP = await evaluatePdpo(rt, pdpo.model, held, cfg);
    const accD = await evaluatePdpo(rt, dpo.model, held, cfg, { generic: true });
    for (const u of ['alice', 'bob']) assert.ok(accP[u]!['rewards/accuracies'] >= 0.9, `P-DPO ${u}: ${accP[u]!['rewards/accuracies']}`);
    // One shared prompt cannot please both: at most one of them is served well.
    const meanD = (accD.alice!['rewards/accuracies'] + accD.bob!['rewards/accuracies']) / 2;
    assert.ok(meanD <= 0.75, `DPO mean ${meanD}`);
  });
});

describe('UserModel', () => {
  it('round-trips through its blob, gives unknown users e_0, and mixes clusters by softmax weights', () => {
    const m = UserModel.initFromVocabulary({ kind: 'individual', tokens: 2, hidden: H }, embedding, V, new Rng(1));
    m.addUser('u1');
    m.params.get('offset:u1')!.fill(0.25);
    const back = UserModel.deserialize(m.serialize());
    assert.deepEqual([...back.params.keys()].sort(), [...m.params.keys()].sort());
    for (const [n, p] of m.params) assert.deepEqual(back.params.get(n), p);
    assert.deepEqual(back.prefixFor('stranger'), m.params.get('e0'));
    assert.deepEqual(back.prefixFor('u1'), Float32Array.from(m.params.get('e0')!, (x) => x + 0.25));
    // Every vector of a fresh model is some vocabulary token's embedding.
    const e0 = m.params.get('e0')!;
    for (let t = 0; t < 2; t++) {
      const v = e0.subarray(t * H, (t + 1) * H);
      assert.ok(Array.from({ length: V }, (_, id) => embedding.subarray(id * H, (id + 1) * H)).some((row) => row.every((x, i) => x === v[i])));
    }
    const c = UserModel.initFromVocabulary({ kind: 'cluster', tokens: 1, hidden: H, clusters: 2 }, embedding, V, new Rng(2));
    c.addUser('u2');
    c.params.get('logits:u2')!.set([Math.log(3), 0]); // weights 0.75, 0.25
    const C = c.params.get('clusters')!;
    const want = Float32Array.from({ length: H }, (_, i) => 0.75 * C[i]! + 0.25 * C[H + i]!);
    c.prefixFor('u2').forEach((x, i) => assert.ok(Math.abs(x - want[i]!) < 1e-6));
    assert.throws(() => UserModel.deserialize(Buffer.from([1, 2])), /truncated/);
  });
});
