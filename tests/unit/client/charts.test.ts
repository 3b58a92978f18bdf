// Chart data shaping of the admin dashboard: training curves, per-user bars, feedback volume.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accuracyColumns, formatEta, historyPoint, lossColumns, mergeHistory, perUserBars, progressFraction, progressLabel, toMs, volumeColumns } from '../../../client/src/lib/charts.ts';

test('training history and live progress merge into one point per step, in step order', () => {
  const merged = mergeHistory(
    [
      { step: 2, loss: 0.6, accuracy: 0.5, margin: 0.1 },
      { step: 1, loss: 0.69, accuracy: null, margin: 0 },
    ],
    [
      { jobId: 'j', step: 3, totalSteps: 10, loss: 0.5, accuracy: 0.75, etaSeconds: 3 },
      { jobId: 'j', step: 2, totalSteps: 10, loss: 0.58, accuracy: null, etaSeconds: 4 },
    ],
  );
  assert.deepEqual(merged.map((p) => p.step), [1, 2, 3]);
  assert.equal(merged[1]!.loss, 0.58, 'a later report of a step wins');
  assert.equal(merged[1]!.accuracy, 0.5, 'a missing value keeps the earlier one');
  assert.deepEqual(lossColumns(merged), [[1, 2, 3], [0.69, 0.58, 0.5]]);
  assert.deepEqual(accuracyColumns(merged), [[1, 2, 3], [null, 50, 75]]);
});

test("the trainer's TRL-style step logs read as the same points", () => {
  const log = { step: 4, epoch: 1, lr: 0.01, gradNorm: 0.3, loss: 0.41, 'rewards/accuracies': 0.875, 'rewards/margins': 1.2 };
  assert.deepEqual(historyPoint(log), { step: 4, loss: 0.41, accuracy: 0.875, margin: 1.2 });
  assert.equal(historyPoint({ loss: 1 }), null, 'no step');
  assert.equal(historyPoint('junk'), null);
  assert.deepEqual(accuracyColumns(mergeHistory([log, null, { step: 5, loss: 0.3, accuracy: 1 }])), [[4, 5], [87.5, 100]]);
});

test('non-finite values become gaps, never NaN points', () => {
  const merged = mergeHistory([{ step: 1, loss: Number.NaN, accuracy: Number.POSITIVE_INFINITY }]);
  assert.deepEqual(lossColumns(merged), [[1], [null]]);
  assert.deepEqual(accuracyColumns(merged), [[1], [null]]);
  assert.deepEqual(lossColumns([]), [[], []]);
});

test('per-user held-out accuracy: bars by username, in percent, with gaps for users without held-out pairs', () => {
  const bars = perUserBars([
    { userId: '2', username: 'zoe', accuracy: 0.8333, pairs: 12 },
    { userId: '1', username: 'ann', accuracy: 0.5, pairs: 4 },
    { userId: '3', username: 'bob', accuracy: null, pairs: 0 },
  ]);
  assert.deepEqual(bars.labels, ['ann', 'bob', 'zoe']);
  assert.deepEqual(bars.values, [50, null, 83.3]);
  assert.deepEqual(bars.pairs, [4, 0, 12]);
  assert.deepEqual(bars.columns, [[0, 1, 2], [50, null, 83.3]]);
});

test('feedback volume: per UTC day, gaps filled with zeros, x in seconds', () => {
  const cols = volumeColumns([
    { t: '2026-11-20', up: 2, down: 1, comparisons: 0 },
    { t: '2026-11-23T15:00:00Z', up: 1, down: 0, comparisons: 3 },
    { t: Date.parse('2026-11-23T01:00:00Z'), up: 1 },
    { t: 'not a date', up: 100 },
  ]);
  const day = (s: string) => Date.parse(s) / 1000;
  assert.deepEqual(cols[0], [day('2026-11-20'), day('2026-11-21'), day('2026-11-22'), day('2026-11-23')]);
  assert.deepEqual(cols[1], [2, 0, 0, 2]);
  assert.deepEqual(cols[2], [1, 0, 0, 0]);
  assert.deepEqual(cols[3], [0, 0, 0, 3]);
  assert.deepEqual(volumeColumns([]), [[], [], [], []]);
});

test('progress, ETA and times', () => {
  assert.equal(progressFraction({ step: 5, totalSteps: 20 }), 0.25);
  assert.equal(progressFraction({ step: 30, totalSteps: 20 }), 1);
  assert.equal(progressFraction({ step: 3, totalSteps: 0 }), 0);
  assert.equal(progressFraction(null), 0);
  assert.equal(progressFraction({ phase: 'reference', done: 3, total: 12, step: 0, totalSteps: 40 }), 0.25, 'a preparation phase counts its own items');
  assert.equal(progressLabel({ phase: 'reference', done: 3, total: 12 }), 'reference: 3 of 12');
  assert.equal(progressLabel({ phase: 'train', step: 7, totalSteps: 40 }), 'step 7 of 40');
  assert.equal(progressLabel(null), 'waiting');
  assert.equal(formatEta(42.4), '42 s');
  assert.equal(formatEta(125), '2 min 5 s');
  assert.equal(formatEta(3 * 3600 + 60), '3 h 1 min');
  assert.equal(formatEta(null), '—');
  assert.equal(toMs(1_700_000_000), 1_700_000_000_000, 'seconds');
  assert.equal(toMs(1_700_000_000_000), 1_700_000_000_000, 'milliseconds');
  assert.equal(toMs('2026-01-01T00:00:00Z'), Date.parse('2026-01-01T00:00:00Z'));
  assert.equal(toMs('nope'), null);
});
