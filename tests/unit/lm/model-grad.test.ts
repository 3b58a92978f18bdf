// Whole-model gradient checks on tiny random models, in float64: the prefix gradient of the scoring
// graph and the weight gradients of the training graph against central differences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { writeRandomModel } from '../../../sandbox/random-model.ts';
import { openModelDir } from '../../../server/lm/weights.ts';
import { IO, buildScoreGraph, buildTrainGraph, initializerParams } from '../../../server/lm/model.ts';
import { toModelBytes } from '../../../server/lm/onnx/emit.ts';
import { randn } from '../../helpers/fd.ts';
import { seededRandom } from '../../helpers/random-text.ts';

const specs = [
  { modelType: 'gpt2', vocabSize: 260, hidden: 16, layers: 2, heads: 4, maxPositions: 32, tie: true, seed: 3 },
  { modelType: 'llama', vocabSize: 260, hidden: 16, layers: 2, heads: 4, kvHeads: 2, maxPositions: 32, tie: false, seed: 4 },
  { modelType: 'qwen2', vocabSize: 260, hidden: 16, layers: 1, heads: 2, kvHeads: 1, maxPositions: 32, tie: true, seed: 5 },
] as const;

function tmpModel(spec: (typeof specs)[number]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-grad-'));
  // A larger init makes the functions far from linear, so a wrong rule cannot hide.
  writeRandomModel(dir, { ...spec, initStd: 0.3 });
  return dir;
}

const i64 = (v: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(v.map(BigInt)), dims);
const f64 = (v: number[], dims: number[]) => new ort.Tensor('float64', Float64Array.from(v), dims);

for (const spec of specs) {
  test(`${spec.modelType}: d logp / d prefix matches finite differences (float64)`, async () => {
    const dir = tmpModel(spec);
    const m = openModelDir(dir);
    const g = buildScoreGraph(m.config, (gr) => initializerParams(gr, 'float64', m.weights.shapes, (n) => m.weights.get(n)), { gradPrefix: true });
    const s = await ort.InferenceSession.create(toModelBytes(g), { graphOptimizationLevel: 'disabled' });
    const H = m.config.hidden;
    const P = 2;
    const ids = [5, 9, 1, 33];
    const N = P + ids.length;
    const rand = seededRandom(11);
    const prefix = randn(P * H, rand);
    // Slot s predicts slot s+1: score every token, the first one from the last prefix slot.
    const targets = [0, ...ids, 0];
    const tmask = [0, 1, 1, 1, 1, 0];
    const feeds = (pre: number[]) => ({
      [IO.inputIds]: i64(ids, [1, ids.length]),
      [IO.prefix]: f64(pre, [1, P, H]),
      [IO.positionIds]: i64([...Array(N).keys()], [1, N]),
      [IO.attentionMask]: i64(Array(N).fill(1), [1, N]),
      [IO.targets]: i64(targets, [1, N]),
      [IO.targetMask]: f64(tmask, [1, N]),
    });
    const out = await s.run(feeds(prefix));
    const grad = out[IO.gradPrefix]!.data as Float64Array;
    assert.equal(grad.length, P * H);
    const h = 1e-6;
    let worst = 0;
    for (let j = 0; j < P * H; j += 3) {
      const up = [...prefix];
      const dn = [...prefix];
      up[j]! += h;
      dn[j]! -= h;
      const lu = ((await s.run(feeds(up)))[IO.logp]!.data as Float64Array)[0]!;
      const ld = ((await s.run(feeds(dn)))[IO.logp]!.data as Float64Array)[0]!;
      const fd = (lu - ld) / (2 * h);
      worst = Math.max(worst, Math.abs(fd - grad[j]!) / Math.max(1, Math.abs(fd)));
    }
    console.log(spec.modelType, "prefix worst", worst);
    assert.ok(worst < 1e-6, `worst relative error ${worst}`);
    assert.ok(grad.some((v) => Math.abs(v) > 1e-4), 'the gradient is not trivially zero');
  });

  test(`${spec.modelType}: d loss / d weights matches finite differences (float64)`, async () => {
    const dir = tmpModel(spec);
    const m = openModelDir(dir);
    const { graph, paramNames } = buildTrainGraph(m.config, 'float64');
    const s = await ort.InferenceSession.create(toModelBytes(graph), { graphOptimizationLevel: 'disabled' });
    const params = new Map(paramNames.map((n) => [n, Array.from(m.weights.get(n))]));
    const ids = [[3, 7, 7, 12, 30], [8, 2, 19, 0, 0]];
    const lens = [5, 3];
    const B = 2;
    const S = 5;
    const H = m.config.hidden;
    const feeds = (ps: Map<string, number[]>) => {
      const f: Record<string, ort.Tensor> = {
        [IO.inputIds]: i64(ids.flat(), [B, S]),
        [IO.prefix]: f64([], [B, 0, H]),
        [IO.positionIds]: i64(ids.flatMap(() => [0, 1, 2, 3, 4]), [B, S]),
        [IO.attentionMask]: i64(lens.flatMap((l) => [...Array(S).keys()].map((t) => (t < l ? 1 : 0))), [B, S]),
        [IO.targets]: i64(ids.flatMap((r) => [...r.slice(1), 0]), [B, S]),
        [IO.targetMask]: f64(lens.flatMap((l) => [...Array(S).keys()].map((t) => (t < l - 1 ? 1 : 0))), [B, S]),
      };
      for (const n of paramNames) f[IO.param(n)] = f64(ps.get(n)!, m.weights.shapes.get(n)!);
      return f;
    };
    const out = await s.run(feeds(params));
    const rand = seededRandom(5);
    const h = 1e-6;
    let worst = 0;
    let checked = 0;
    for (const name of paramNames) {
      const gv = out[IO.gradParam(name)]!.data as Float64Array;
      const base = params.get(name)!;
      assert.equal(gv.length, base.length, `gradient of ${name} has its shape`);
      for (let probe = 0; probe < 2; probe++) {
        const j = Math.floor(rand() * base.length);
        const loss = async (delta: number) => {
          const p2 = new Map(params);
          const v = [...base];
          v[j]! += delta;
          p2.set(name, v);
          return ((await s.run(feeds(p2)))[IO.loss]!.data as Float64Array)[0]!;
        };
        const fd = ((await loss(h)) - (await loss(-h))) / (2 * h);
        worst = Math.max(worst, Math.abs(fd - gv[j]!) / Math.max(1e-2, Math.abs(fd)));
        checked++;
      }
    }
    assert.ok(checked >= paramNames.length * 2);
    console.log(spec.modelType, "weights worst", worst, checked);
    assert.ok(worst < 1e-5, `worst relative error ${worst}`);
  });
}
