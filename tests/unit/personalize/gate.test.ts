// The held-out gate, branch by branch: the first version publishes whatever its figures; a later one
// is refused without held-out pairs, or when it falls below the serving version by more than the
// tolerance; at the tolerance or above it publishes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type GateFigures, gateDecision } from '../../../server/personalize/gate.ts';

const tolerance = { gateTolerance: 0.25 };

describe('gateDecision', () => {
  it('publishes the first version, with held-out figures or without', () => {
    assert.deepEqual(gateDecision({ hasCurrent: false, candidate: null, current: null }, tolerance), { publish: true, reasons: [], yardstick: null });
    assert.deepEqual(gateDecision({ hasCurrent: false, candidate: 0.1, current: null }, tolerance), { publish: true, reasons: [], yardstick: null });
  });

  it('has no yardstick while nothing serves, even when a current figure is given', () => {
    assert.deepEqual(gateDecision({ hasCurrent: false, candidate: 0.1, current: 0.9 }, tolerance), { publish: true, reasons: [], yardstick: null });
  });

  it('refuses a later version that has no held-out pairs to be judged on', () => {
    const d = gateDecision({ hasCurrent: true, candidate: null, current: 0.75 }, tolerance);
    assert.deepEqual(d, { publish: false, reasons: ['no held-out pairs to compare the new version with the current one'], yardstick: 0.75 });
  });

  it('refuses a version below the serving one by more than the tolerance, and says by how much', () => {
    const d = gateDecision({ hasCurrent: true, candidate: 0.4, current: 0.75 }, tolerance);
    assert.equal(d.publish, false);
    assert.deepEqual(d.reasons, ["held-out reward accuracy 0.400 is below the current version's 0.750 by more than the tolerance 0.25"]);
    assert.equal(d.yardstick, 0.75);
    assert.equal(gateDecision({ hasCurrent: true, candidate: 0.4999, current: 0.75 }, tolerance).publish, false);
  });

  it('publishes a version within the tolerance (the boundary included), level or better', () => {
    for (const candidate of [0.5, 0.6, 0.75, 1]) {
      assert.deepEqual(gateDecision({ hasCurrent: true, candidate, current: 0.75 }, tolerance), { publish: true, reasons: [], yardstick: 0.75 }, `candidate ${candidate}`);
    }
  });

  it('with no tolerance, anything below the serving version is refused', () => {
    assert.equal(gateDecision({ hasCurrent: true, candidate: 0.74, current: 0.75 }, { gateTolerance: 0 }).publish, false);
    assert.equal(gateDecision({ hasCurrent: true, candidate: 0.75, current: 0.75 }, { gateTolerance: 0 }).publish, true);
  });

  it('publishes when the serving version could not be scored on the held-out pairs', () => {
    assert.deepEqual(gateDecision({ hasCurrent: true, candidate: 0.2, current: null }, tolerance), { publish: true, reasons: [], yardstick: null });
  });

  it('is pure: the same figures give the same decision, and the figures are left as they were', () => {
    const figures: GateFigures = Object.freeze({ hasCurrent: true, candidate: 0.4, current: 0.75 });
    assert.deepEqual(gateDecision(figures, tolerance), gateDecision(figures, tolerance));
    assert.deepEqual(figures, { hasCurrent: true, candidate: 0.4, current: 0.75 });
  });
});
