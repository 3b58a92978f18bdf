// Chart data shaping: API records → the column arrays uPlot draws (x first, then one array per
// series, nulls for gaps). Pure, so the shapes are tested under Node.
import type { HistoryPoint, JobProgress, PerUserAccuracy, TrainingProgressEvent } from './types.ts';

/** uPlot's aligned data: [xs, ...series]. */
export type Columns = [number[], ...(number | null)[][]];

const finite = (v: number | null | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

const numOr = (...vs: unknown[]): number | null => {
  for (const v of vs) if (typeof v === 'number' && Number.isFinite(v)) return v;
  return null;
};

/**
 * One logged training step, from either naming: the contract's {step, loss, accuracy, margin} or TRL's
 * DPO log keys {step, loss, 'rewards/accuracies', 'rewards/margins'}; null when it has no step.
 */
export function historyPoint(raw: unknown): HistoryPoint | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Record<string, unknown>;
  const step = numOr(r.step);
  if (step === null) return null;
  return { step, loss: numOr(r.loss), accuracy: numOr(r.accuracy, r['rewards/accuracies']), margin: numOr(r.margin, r['rewards/margins']) };
}

/** A live training:progress event, of which the curve needs only the step and its values. */
export type LiveStep = Pick<TrainingProgressEvent, 'step' | 'loss' | 'accuracy'> & Partial<TrainingProgressEvent>;

/**
 * A job's training curve: the stored history, then live progress events, one point per step (a later
 * report of the same step wins), in step order.
 */
export function mergeHistory(history: readonly unknown[], live: readonly LiveStep[] = []): HistoryPoint[] {
  const byStep = new Map<number, HistoryPoint>();
  for (const raw of history) {
    const p = historyPoint(raw);
    if (p) byStep.set(p.step, p);
  }
  for (const e of live) {
    if (!Number.isFinite(e.step)) continue;
    const prev = byStep.get(e.step);
    byStep.set(e.step, { step: e.step, loss: finite(e.loss) ?? prev?.loss ?? null, accuracy: finite(e.accuracy) ?? prev?.accuracy ?? null, margin: prev?.margin ?? null });
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/** [steps, loss] */
export function lossColumns(points: readonly HistoryPoint[]): Columns {
  return [points.map((p) => p.step), points.map((p) => finite(p.loss))];
}

/** [steps, reward accuracy in %] */
export function accuracyColumns(points: readonly HistoryPoint[]): Columns {
  return [points.map((p) => p.step), points.map((p) => { const a = finite(p.accuracy); return a === null ? null : a * 100; })];
}

export interface Bars {
  labels: string[];
  /** Percent, null where a user has no held-out pairs. */
  values: (number | null)[];
  pairs: number[];
  /** [0..n-1, values] for uPlot's bar paths. */
  columns: Columns;
}

/** Per-user held-out accuracy as bars, by username. */
export function perUserBars(perUser: readonly PerUserAccuracy[]): Bars {
  const rows = [...perUser].sort((a, b) => a.username.localeCompare(b.username));
  const values = rows.map((r) => { const a = finite(r.accuracy); return a === null ? null : Math.round(a * 1000) / 10; });
  return { labels: rows.map((r) => r.username), values, pairs: rows.map((r) => r.pairs), columns: [rows.map((_, i) => i), values] };
}

/** Fraction done, 0..1 (0 when unknown): training steps, or the items of a preparation phase. */
export function progressFraction(p: Partial<JobProgress> | null | undefined): number {
  if (!p) return 0;
  const [n, total] = p.phase && p.phase !== 'train' && (p.total ?? 0) > 0 ? [p.done, p.total] : [p.step, p.totalSteps];
  if (typeof n !== 'number' || typeof total !== 'number' || !(total > 0) || !Number.isFinite(n)) return 0;
  return Math.min(1, Math.max(0, n / total));
}

/** What the job is doing, in words ("train: step 12 of 40", "reference: 30 of 64"). */
export function progressLabel(p: Partial<JobProgress> | null | undefined): string {
  if (!p) return 'waiting';
  if (p.phase && p.phase !== 'train' && typeof p.total === 'number') return `${p.phase}: ${p.done ?? 0} of ${p.total}`;
  if (typeof p.totalSteps === 'number') return `step ${p.step ?? 0} of ${p.totalSteps}`;
  return p.phase ?? 'waiting';
}

export function formatEta(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export interface VolumePoint {
  /** Bucket start, ms since the epoch. */
  t: number;
  up: number;
  down: number;
  comparisons: number;
}

const DAY = 86_400_000;

/**
 * Feedback volume per day as stacked-ready columns [days (s), up, down, comparisons], with empty days
 * filled with zeros so the x axis is even. Accepts bucket starts as ms, seconds or ISO strings.
 */
export function volumeColumns(points: readonly { t: number | string; up?: number; down?: number; comparisons?: number }[]): Columns {
  if (points.length === 0) return [[], [], [], []];
  const byDay = new Map<number, VolumePoint>();
  for (const p of points) {
    const ms = toMs(p.t);
    if (ms === null) continue;
    const day = Math.floor(ms / DAY) * DAY;
    const cur = byDay.get(day) ?? { t: day, up: 0, down: 0, comparisons: 0 };
    cur.up += p.up ?? 0;
    cur.down += p.down ?? 0;
    cur.comparisons += p.comparisons ?? 0;
    byDay.set(day, cur);
  }
  if (byDay.size === 0) return [[], [], [], []];
  const days = [...byDay.keys()].sort((a, b) => a - b);
  const xs: number[] = [];
  const up: number[] = [];
  const down: number[] = [];
  const cmp: number[] = [];
  for (let d = days[0]!; d <= days[days.length - 1]!; d += DAY) {
    const v = byDay.get(d);
    xs.push(d / 1000);
    up.push(v?.up ?? 0);
    down.push(v?.down ?? 0);
    cmp.push(v?.comparisons ?? 0);
  }
  return [xs, up, down, cmp];
}

/** A time as ms since the epoch: numbers below 1e11 are taken as seconds. */
export function toMs(t: number | string | null | undefined): number | null {
  if (t === null || t === undefined) return null;
  if (typeof t === 'number') return Number.isFinite(t) ? (t < 1e11 ? t * 1000 : t) : null;
  const n = Date.parse(t);
  return Number.isNaN(n) ? null : n;
}
