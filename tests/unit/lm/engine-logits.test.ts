// The engine's logits and log-probs against independent float64 references written from the
// published architectures (tests/reference), for every supported architecture and checkpoint form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type RandomModelSpec, writeRandomModel } from '../../../sandbox/random-model.ts';
import { ModelRuntime } from '../../../server/lm/runtime.ts';
import { buildServeGraph, initializerParams } from '../../../server/lm/model.ts';
import { writeModelWithExternalData } from '../../../server/lm/onnx/emit.ts';
import { openModelDir } from '../../../server/lm/weights.ts';
import * as refGpt2 from '../../reference/gpt2.ts';
import * as refLlama from '../../reference/llama.ts';
import { randn } from '../../helpers/fd.ts';
import { seededRandom } from '../../helpers/random-text.ts';

const base = { vocabSize: 300, hidden: 32, layers: 2, heads: 4, maxPositions: 64, seed: 7, initStd: 0.15 };
const variants: { name: string; spec: RandomModelSpec }[] = [
  { name: 'gpt2 tied, prefixed names, F32', spec: { ...base, modelType: 'gpt2', tie: true } },
  { name: 'gpt2 untied, bare names, F16, sharded', spec: { ...base, modelType: 'gpt2', tie: false, namePrefix: false, dtype: 'F16', shardBytes: 40_000 } },
  { name: 'llama GQA 4:2, untied, BF16', spec: { ...base, modelType: 'llama', kvHeads: 2, tie: false, dtype: 'BF16' } },
  { name: 'llama MQA, tied, head_dim 12, linear rope scaling', spec: { ...base, modelType: 'llama', kvHeads: 1, headDim: 12, tie: true, ropeScaling: { type: 'linear', factor: 2 } } },
  { name: 'llama llama3 rope scaling, attention_bias', spec: { ...base, modelType: 'llama', kvHeads: 2, tie: false, qkvBias: true, ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 16 } } },
  { name: 'llama mlp_bias, tied', spec: { ...base, modelType: 'llama', kvHeads: 2, tie: true, mlpBias: true } },
  { name: 'qwen2 q/k/v biases, tied', spec: { ...base, modelType: 'qwen2', kvHeads: 2, tie: true, ropeTheta: 1e6 } },
  { name: 'mistral GQA, bare names', spec: { ...base, modelType: 'mistral', kvHeads: 2, tie: false, namePrefix: false } },
];

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  }
  return diff / Math.max(scale, 1e-6);
}

for (const { name, spec } of variants) {
  test(`${name}: logits and log-probs match the float64 reference`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-logits-'));
    writeRandomModel(dir, spec);
    const ref = spec.modelType === 'gpt2' ? refGpt2 : refLlama;
    const rt = await ModelRuntime.load(dir);
    try {
      const ids = [3, 17, 5, 250, 9, 9, 42, 1];
      const got = await rt.logits(ids);
      const want = ref.referenceLogits(dir, ids);
      assert.equal(got.length, ids.length);
      for (let t = 0; t < ids.length; t++) assert.ok(maxRelDiff(got[t]!, want[t]!) < 2e-4, `position ${t}: rel diff ${maxRelDiff(got[t]!, want[t]!)}`);

      const rand = seededRandom(3);
      const P = 3;
      const prefixRows = [...Array(P)].map(() => randn(spec.hidden, rand).map((v) => v * 0.5));
      const prefix = Float32Array.from(prefixRows.flat());
      const gotP = await rt.logits(ids, prefix);
      const wantP = ref.referenceLogits(dir, ids, prefixRows);
      for (let t = 0; t < ids.length; t++) assert.ok(maxRelDiff(gotP[t]!, wantP[t]!) < 2e-4, `prefix, position ${t}`);
      assert.ok(maxRelDiff(gotP[0]!, want[0]!) > 1e-3, 'the prefix changes the logits');

      // Scoring: rows of different prefixes and lengths in one run, each equal to the reference.
      const rows = [
        { prefix, ids, from: 0 },
        { prefix: null, ids: ids.slice(0, 5), from: 2 },
        { prefix: prefix.slice(0, spec.hidden), ids: [8, 6, 4], from: 1 },
      ];
      const r = await rt.score(rows);
      const wantLogp = [
        ref.referenceLogprob(dir, ids, 0, prefixRows),
        ref.referenceLogprob(dir, ids.slice(0, 5), 2),
        ref.referenceLogprob(dir, [8, 6, 4], 1, prefixRows.slice(0, 1)),
      ];
      r.logp.forEach((lp, i) => assert.ok(Math.abs(lp - wantLogp[i]!) < 1e-3 * Math.max(1, Math.abs(wantLogp[i]!)), `row ${i}: ${lp} vs ${wantLogp[i]}`));
      assert.equal(r.gradPrefix[0]!.length, P * spec.hidden);
      assert.equal(r.gradPrefix[1], null);
      assert.equal(r.gradPrefix[2]!.length, spec.hidden);
    } finally {
      await rt.release();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('weights loaded through an ONNX external-data file (the path of models over 64 MB) give the same logits', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-ext-'));
  writeRandomModel(dir, { ...base, modelType: 'qwen2', kvHeads: 2, tie: true });
  const inline = await ModelRuntime.load(dir);
  const external = await ModelRuntime.load(dir, { inlineLimitBytes: 0 });
  try {
    const ids = [5, 6, 7, 8];
    const a = await inline.logits(ids);
    const b = await external.logits(ids);
    for (let t = 0; t < ids.length; t++) assert.deepEqual(Array.from(b[t]!), Array.from(a[t]!));
  } finally {
    await inline.release();
    await external.release();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('weights are read when the graph is emitted, not while it is built', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-lazy-'));
  writeRandomModel(dir, { ...base, modelType: 'llama', kvHeads: 2, tie: false });
  const m = openModelDir(dir);
  try {
    let reads = 0;
    const g = buildServeGraph(m.config, (gr) => initializerParams(gr, 'float32', m.weights.shapes, (n) => {
      reads++;
      return m.weights.get(n);
    }));
    assert.equal(reads, 0, 'building the graph reads no weight');
    const out = path.join(dir, 'onnx');
    fs.mkdirSync(out);
    writeModelWithExternalData(g, path.join(out, 'serve.onnx'));
    assert.equal(reads, m.weights.shapes.size, 'every weight is read exactly once');
    assert.ok(fs.statSync(path.join(out, 'serve.onnx.data')).size > 0);
  } finally {
    m.weights.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
