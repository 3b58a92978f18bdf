// Full-weight training with the engine's autodiff: AdamW lowers the loss on a tiny model, the
// schedule has the right shape, and a checkpoint resumes to the same trajectory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeRandomModel } from '../../../sandbox/random-model.ts';
import { openModelDir } from '../../../server/lm/weights.ts';
import { learningRate } from '../../../server/lm/optim.ts';
import { DEFAULT_OPTIMIZER, LmTrainer, type TrainRow } from '../../../sandbox/train.ts';

function tinyModel() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-train-'));
  writeRandomModel(dir, { modelType: 'llama', vocabSize: 270, hidden: 32, layers: 2, heads: 4, kvHeads: 2, maxPositions: 64, tie: true, seed: 9 });
  const m = openModelDir(dir);
  const params = new Map([...m.weights.shapes.keys()].map((n) => [n, Float32Array.from(m.weights.get(n))]));
  return { dir, config: m.config, params };
}

// A learnable toy language: counting sequences with a per-row offset.
const rows: TrainRow[] = [...Array(8).keys()].map((r) => ({ ids: [...Array(20).keys()].map((t) => 10 + ((r * 3 + t) % 40)) }));

test('learning rate: linear warmup then cosine decay to the floor', () => {
  const o = { ...DEFAULT_OPTIMIZER, lr: 1, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };
  assert.equal(learningRate(o, 0), 0.1);
  assert.equal(learningRate(o, 9), 1);
  assert.ok(Math.abs(learningRate(o, 60) - 0.55) < 1e-9);
  assert.ok(Math.abs(learningRate(o, 110) - 0.1) < 1e-9);
  assert.ok(learningRate(o, 30) > learningRate(o, 40));
});

test('a short run lowers the loss, and a checkpoint resumes to the same trajectory', async () => {
  const { config, params } = tinyModel();
  const opt = { ...DEFAULT_OPTIMIZER, lr: 1e-2, warmupSteps: 5, totalSteps: 40 };
  const a = await LmTrainer.create(config, params, opt);
  const first = await a.evaluate(rows);
  const losses: number[] = [];
  for (let i = 0; i < 30; i++) losses.push((await a.trainStep(rows)).loss);
  const after = await a.evaluate(rows);
  assert.ok(after.loss < first.loss * 0.5, `loss ${first.loss} → ${after.loss}`);
  assert.equal(after.tokens, 8 * 19);

  const ckpt = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'attune-ckpt-')), 'ckpt');
  const b0 = tinyModel();
  const b = await LmTrainer.create(b0.config, b0.params, opt);
  for (let i = 0; i < 15; i++) await b.trainStep(rows);
  b.saveCheckpoint(ckpt, { note: 'half way' });
  const c0 = tinyModel();
  const c = await LmTrainer.create(c0.config, c0.params, opt);
  assert.equal(c.loadCheckpoint(ckpt).note, 'half way');
  assert.equal(c.step, 15);
  for (let i = 15; i < 30; i++) {
    const lc = (await c.trainStep(rows)).loss;
    assert.ok(Math.abs(lc - losses[i]!) < 1e-4 * Math.max(1, losses[i]!), `step ${i}: resumed ${lc} vs uninterrupted ${losses[i]}`);
  }
  await Promise.all([a.release(), b.release(), c.release()]);
});
