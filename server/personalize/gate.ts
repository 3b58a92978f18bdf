// The held-out gate: whether a trained candidate may replace the version that serves. Pure, so each
// branch can be tested without training anything; the job (personalization-service.ts) records
// the decision and publishes.

export interface GateSettings {
  /** How far the candidate's held-out reward accuracy may fall below the current version's and still publish. */
  gateTolerance: number;
}

/** What the gate looks at: mean held-out reward accuracies (each user counts once) on the same pairs. */
export interface GateFigures {
  /** Whether a version serves now. The first version has none to fall below. */
  hasCurrent: boolean;
  /** The candidate's; null when no pair was held out. */
  candidate: number | null;
  /** The serving version's on the candidate's held-out pairs; null when none serves. */
  current: number | null;
}

export type GateDecision =
  | { publish: true; reasons: []; yardstick: number | null }
  | { publish: false; reasons: [string, ...string[]]; yardstick: number | null };

export function gateDecision(figures: GateFigures, settings: GateSettings): GateDecision {
  const { candidate } = figures;
  // The yardstick is the current version on the same held-out pairs. The first version is
  // published even without one (its held-out figures are still recorded).
  const yardstick = figures.hasCurrent ? figures.current : null;
  if (figures.hasCurrent && candidate === null) {
    return { publish: false, reasons: ['no held-out pairs to compare the new version with the current one'], yardstick };
  }
  if (candidate !== null && yardstick !== null && candidate < yardstick - settings.gateTolerance) {
    return {
      publish: false,
      reasons: [`held-out reward accuracy ${candidate.toFixed(3)} is below the current version's ${yardstick.toFixed(3)} by more than the tolerance ${settings.gateTolerance}`],
      yardstick,
    };
  }
  return { publish: true, reasons: [], yardstick };
}
