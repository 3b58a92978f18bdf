// When retraining starts by itself: a cron tick retrains everyone once N new pairs have arrived since
// the last all-users run; a periodic check retrains the one user furthest past M new pairs since
// they were last trained. The schedule an admin sets is stored and outlives restarts.
import { Cron } from 'croner';
import type { Logger } from 'pino';
import type { Db } from '../db/connection.ts';
import type { JsonObject } from '../db/json.ts';
import type { Repositories } from '../db/repositories.ts';
import type { TrainingJobRecord } from '../db/user-models.ts';
import { ValidationError } from '../errors.ts';
import { contained, type JobQueue } from './jobs.ts';
import type { UserModelServing } from './serving.ts';

export interface ScheduleSettings {
  /** Cron expression, or 'off'. */
  cron: string;
  minNewPairs: number;
  perUserMinPairs: number;
  enabled: boolean;
}

export interface RetrainScheduleDeps {
  db: Db;
  repos: Repositories;
  logger: Logger;
  /** The schedule until an admin stores another; how often the per-user check runs. */
  settings: { schedule: ScheduleSettings; retrainCheckSeconds: number };
  jobs: Pick<JobQueue, 'canStart' | 'requestJob'>;
  serving: UserModelServing;
}

export class RetrainSchedule {
  private cron: Cron | null = null;
  private watcher: NodeJS.Timeout | null = null;
  private schedule: ScheduleSettings;
  private stopped = false;

  constructor(private readonly deps: RetrainScheduleDeps) {
    this.schedule = { ...deps.settings.schedule, ...(deps.repos.userModels.getSetting<JsonObject>('schedule') as Partial<ScheduleSettings> | undefined) };
  }

  /** Starts the cron (when enabled) and the per-user watcher. */
  start(): void {
    this.cron?.stop();
    this.cron = null;
    const s = this.schedule;
    if (s.enabled && s.cron !== 'off') {
      this.cron = new Cron(s.cron, { protect: true }, () => contained(this.deps.logger, 'the scheduled retraining check', () => this.scheduledCheck()));
    }
    if (!this.watcher) {
      this.watcher = setInterval(() => contained(this.deps.logger, 'the per-user retraining check', () => this.perUserCheck()), this.deps.settings.retrainCheckSeconds * 1000);
      this.watcher.unref();
    }
  }

  /** For good: no more checks, and a later set() only stores. */
  stop(): void {
    this.stopped = true;
    this.cron?.stop();
    if (this.watcher) clearInterval(this.watcher);
  }

  get(): ScheduleSettings & { nextRunAt: number | null } {
    const next = this.cron?.nextRun();
    return { ...this.schedule, nextRunAt: next ? next.getTime() : null };
  }

  set(s: ScheduleSettings): ScheduleSettings & { nextRunAt: number | null } {
    if (s.cron !== 'off') {
      try {
        // Validates the expression (croner throws on a bad one) without scheduling anything.
        new Cron(s.cron, { paused: true }).stop();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        throw new ValidationError(message, { issues: [{ path: 'cron', message }] });
      }
    }
    this.schedule = { ...s };
    this.deps.repos.userModels.putSetting('schedule', { ...s });
    if (!this.stopped) this.start();
    return this.get();
  }

  /** Pairs that arrived after the last all-users run (or ever, when there was none). */
  newPairsSinceLastRun(): number {
    const through = this.deps.repos.userModels.lastFullTrainingThrough() ?? -1;
    return this.deps.db.prepare<{ t: number }, { n: number }>('SELECT count(*) AS n FROM preference_pairs WHERE created_at > @t').get({ t: through })!.n;
  }

  /** A cron tick: retrain everyone if at least N new pairs arrived since the last run. */
  scheduledCheck(): TrainingJobRecord | null {
    if (!this.deps.jobs.canStart() || this.stopped) return null;
    const n = this.newPairsSinceLastRun();
    if (n < this.schedule.minNewPairs) return null;
    return this.deps.jobs.requestJob({ trigger: 'schedule' });
  }

  /** Per-user retraining for the user furthest past M new pairs since they were last trained. */
  perUserCheck(): TrainingJobRecord | null {
    if (!this.deps.jobs.canStart() || this.stopped || !this.schedule.enabled) return null;
    const { version: v, model } = this.deps.serving.current();
    const rows = this.deps.db
      .prepare<[], { user_id: string; created_at: number }>('SELECT user_id, created_at FROM preference_pairs ORDER BY user_id')
      .all();
    const counts = new Map<string, number>();
    for (const r of rows) {
      const trainedThrough = v && model?.hasUser(r.user_id) ? (v.dataThrough ?? v.createdAt) : -1;
      const reset = this.deps.serving.resetAt(r.user_id) ?? -1;
      if (r.created_at > Math.max(trainedThrough, reset)) counts.set(r.user_id, (counts.get(r.user_id) ?? 0) + 1);
    }
    const best = [...counts].filter(([, n]) => n >= this.schedule.perUserMinPairs).sort((a, b) => b[1] - a[1])[0];
    if (!best) return null;
    return this.deps.jobs.requestJob({ trigger: 'user', userIds: [best[0]] });
  }
}
