// The personalization service: which soft prompt each user gets (the published version), and
// retraining jobs (admin-triggered, scheduled, per-user), each in a worker thread, one at a time,
// ending with the held-out gate and an atomic publish.
//
// Atomic publication: prefixFor() reads one immutable snapshot {version, model}; publishing swaps
// the snapshot after the database transaction commits. A reply takes its prefix once, at its start,
// so replies in flight finish on the old soft prompt and later ones use the new.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { Cron } from 'croner';
import type { Logger } from 'pino';
import type { Db } from '../db/connection.ts';
import type { JsonObject, JsonValue } from '../db/json.ts';
import type { Repositories } from '../db/repositories.ts';
import type { JobStatus, JobTrigger, TrainingJobRecord, UserModelVersionRecord } from '../db/user-models.ts';
import { Conflict, NotFound } from '../errors.ts';
import type { ChatMessage } from '../lm/tokenizer.ts';
import { metrics } from '../metrics.ts';
import { isHeldout, type PdpoConfig, pdpoConfigSchema, type StepLog } from './pdpo.ts';
import { runTrainJob, type JobPair, type TrainerEvent, type TrainJobResult, type TrainJobSpec } from './trainer.ts';
import type { WorkerCommand, WorkerMessage } from './worker.ts';
import { UserModel } from './user-model.ts';

export interface PersonalizationSettings {
  pdpo: PdpoConfig;
  gateTolerance: number;
  schedule: ScheduleSettings;
  retrainCheckSeconds: number;
  trainerThreads: number;
  /** Nice value of the training worker's threads (0: same priority as chat). */
  trainerNice?: number;
  trainBaseline: boolean;
}

export interface ScheduleSettings {
  /** Cron expression, or 'off'. */
  cron: string;
  minNewPairs: number;
  perUserMinPairs: number;
  enabled: boolean;
}

/** Where a user's soft prompt came from: their own parameters, the generic e_0, or none at all. */
export interface ResolvedPrefix {
  prefix: Float32Array | null;
  /** The version, when the user is personalized (their own parameters); null when generic. */
  version: string | null;
  source: 'personal' | 'generic' | 'none';
  /** The version whose e_0 (or own parameters) was used; null for 'none'. */
  sourceVersion: string | null;
}

export interface JobProgress extends JsonObject {
  phase: string;
  step: number;
  totalSteps: number;
  loss: number | null;
  accuracy: number | null;
  margin: number | null;
  etaSeconds: number | null;
  done: number;
  total: number;
}

/** How a job is run: in a worker thread (the server) or in-process (tests, tools). */
export type JobRunner = (spec: TrainJobSpec, emit: (e: TrainerEvent) => void, signal: AbortSignal) => Promise<TrainJobResult>;

/** How long a cancelled worker may take to stop by itself before it is terminated. */
const WORKER_STOP_GRACE_MS = 30_000;

/**
 * Runs the job in a worker thread. A job stops by asking the worker to stop (it checks between
 * steps and batches) and settles only once the thread has exited: terminating a thread while
 * onnxruntime runs in it aborts the whole process ("terminate called after throwing Napi::Error").
 * An `emit` that throws (e.g. a progress write to a failing database) stops the job with that error.
 */
export const workerRunner: JobRunner = (spec, emit, signal) =>
  new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./worker-boot.mjs', import.meta.url), { workerData: spec });
    let outcome: { ok: true; result: TrainJobResult } | { ok: false; error: unknown } | null = null;
    let killTimer: NodeJS.Timeout | null = null;
    const stop = (error: unknown) => {
      if (outcome) return;
      outcome = { ok: false, error };
      worker.postMessage({ type: 'cancel' } satisfies WorkerCommand);
      killTimer = setTimeout(() => {
        // Unresponsive for this long it is not inside a short onnxruntime run; the promise only
        // reports that the thread is gone, which 'exit' says too.
        worker.terminate().catch(() => undefined);
      }, WORKER_STOP_GRACE_MS);
      killTimer.unref();
    };
    const onAbort = () => stop(new JobCancelled());
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: WorkerMessage) => {
      // After a stop, the worker's last reports and its own error are of no interest.
      if (outcome) return;
      if (m.type === 'done') outcome = { ok: true, result: m.result };
      else if (m.type === 'error') outcome = { ok: false, error: new Error(m.message) };
      else {
        try {
          emit(m);
        } catch (err) {
          stop(err);
        }
      }
    });
    worker.on('messageerror', (err) => stop(err));
    worker.on('error', (err) => {
      outcome ??= { ok: false, error: err };
    });
    worker.on('exit', (code) => {
      if (killTimer) clearTimeout(killTimer);
      signal.removeEventListener('abort', onAbort);
      const o = outcome ?? { ok: false as const, error: new Error(`the training worker exited with code ${code}`) };
      if (o.ok) resolve(o.result);
      else reject(o.error);
    });
  });

export const inProcessRunner: JobRunner = (spec, emit, signal) => runTrainJob(spec, emit, signal);

export class JobCancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'JobCancelled';
  }
}

interface Snapshot {
  version: UserModelVersionRecord | null;
  model: UserModel | null;
}

export interface PersonalizationDeps {
  db: Db;
  repos: Repositories;
  logger: Logger;
  modelDir: string;
  /** Identifies the base model (reference log-probs are cached per model and tokenization). */
  modelId: string;
  settings: PersonalizationSettings;
  runner?: JobRunner;
  now?: () => number;
}

export interface UserPersonalization {
  votes: number;
  comparisons: number;
  pairs: number;
  personalized: boolean;
  version: { id: string; publishedAt: number | null } | null;
  lastTrainedAt: number | null;
  heldoutAccuracy: number | null;
  resetAt: number | null;
}

const asStatus = (s: string): JobStatus => s as JobStatus;

export class PersonalizationService extends EventEmitter {
  private snapshot: Snapshot = { version: null, model: null };
  private resets = new Map<string, number>();
  private active: { job: TrainingJobRecord; controller: AbortController; history: StepLog[]; done: Promise<void> } | null = null;
  private cron: Cron | null = null;
  private watcher: NodeJS.Timeout | null = null;
  private schedule: ScheduleSettings;
  private readonly runner: JobRunner;
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly deps: PersonalizationDeps) {
    super();
    this.runner = deps.runner ?? workerRunner;
    this.now = deps.now ?? Date.now;
    this.schedule = { ...deps.settings.schedule, ...(deps.repos.userModels.getSetting<JsonObject>('schedule') as Partial<ScheduleSettings> | undefined) };
  }

  /** Recover from a crash, load the published version, start the schedule and the per-user watcher. */
  start(opts: { schedule?: boolean } = {}): void {
    const { repos, logger } = this.deps;
    const t = this.now();
    const jobs = repos.userModels.failInterruptedJobs(t, 'interrupted: the server stopped while this job ran');
    const versions = repos.userModels.failInterruptedVersions('its training job was interrupted; never published');
    if (jobs || versions) logger.warn({ jobs, versions }, 'marked interrupted training jobs as failed');
    this.resets = repos.userModels.resets();
    this.loadCurrent();
    if (opts.schedule ?? true) this.startSchedule();
  }

  private loadCurrent(): void {
    const { versionId } = this.deps.repos.userModels.current();
    const v = versionId ? this.deps.repos.userModels.findVersion(versionId) : undefined;
    if (!v || !v.blob) {
      this.snapshot = { version: null, model: null };
      return;
    }
    this.snapshot = { version: { ...v, blob: null }, model: UserModel.deserialize(v.blob) };
  }

  private startSchedule(): void {
    this.cron?.stop();
    this.cron = null;
    const s = this.schedule;
    if (s.enabled && s.cron !== 'off') {
      this.cron = new Cron(s.cron, { protect: true, catch: (e) => this.deps.logger.error({ err: e }, 'scheduled retraining check failed') }, () => {
        this.scheduledCheck();
      });
    }
    if (!this.watcher) {
      this.watcher = setInterval(() => this.perUserCheck(), this.deps.settings.retrainCheckSeconds * 1000);
      this.watcher.unref();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cron?.stop();
    if (this.watcher) clearInterval(this.watcher);
    const a = this.active;
    if (a) {
      a.controller.abort();
      await a.done;
    }
  }

  // ---- Serving ------------------------------------------------------------------------------

  prefixFor(userId: string): ResolvedPrefix {
    const { version, model } = this.snapshot;
    if (!version || !model) return { prefix: null, version: null, source: 'none', sourceVersion: null };
    const reset = this.resets.get(userId);
    const personal = model.hasUser(userId) && !(reset !== undefined && reset >= version.createdAt);
    return {
      prefix: model.prefixFor(personal ? userId : null),
      version: personal ? version.id : null,
      source: personal ? 'personal' : 'generic',
      sourceVersion: version.id,
    };
  }

  currentVersion(): UserModelVersionRecord | null {
    return this.snapshot.version;
  }

  // ---- Jobs ---------------------------------------------------------------------------------

  activeJob(): TrainingJobRecord | null {
    return this.active?.job ?? null;
  }

  /** Start a retraining job now; 409 while another runs. Returns the job as stored. */
  requestJob(opts: { trigger: JobTrigger; userIds?: string[] | null; requestedBy?: string | null }): TrainingJobRecord {
    if (this.closed) throw new Conflict('the server is shutting down');
    if (this.active) throw new Conflict('a retraining job is already running', 'job_running', { jobId: this.active.job.id });
    const { repos } = this.deps;
    const t = this.now();
    const job: TrainingJobRecord = {
      id: randomUUID(), status: 'queued', createdAt: t, startedAt: null, finishedAt: null, error: null,
      progress: { phase: 'queued', step: 0, totalSteps: 0, loss: null, accuracy: null, margin: null, etaSeconds: null, done: 0, total: 0 },
      trigger: opts.trigger, scope: opts.userIds?.length ? [...opts.userIds] : null, requestedBy: opts.requestedBy ?? null, versionId: null,
    };
    repos.userModels.insertJob(job);
    const controller = new AbortController();
    const entry = { job, controller, history: [] as StepLog[], done: Promise.resolve() };
    this.active = entry;
    entry.done = this.runJob(entry).finally(() => {
      if (this.active === entry) this.active = null;
    });
    this.emitJob(job.id);
    return repos.userModels.findJob(job.id)!;
  }

  cancelJob(id: string): TrainingJobRecord {
    const job = this.deps.repos.userModels.findJob(id);
    if (!job) throw new NotFound('no such training job');
    if (this.active?.job.id !== id) throw new Conflict(`the job is ${job.status}, not running`, 'job_not_running', { status: job.status });
    this.active.controller.abort();
    return job;
  }

  /** Resolves when the running job (if any) has finished and been recorded. */
  async idle(): Promise<void> {
    while (this.active) await this.active.done;
  }

  private emitJob(id: string): void {
    const job = this.deps.repos.userModels.findJob(id);
    if (!job) return;
    metrics.trainingJobs.inc({ status: job.status });
    this.emit('job', job);
  }

  /** The job's training pairs: everyone's (or the scope's), minus pairs from before a user's reset. */
  private selectPairs(scope: string[] | null, through: number): { pairs: JobPair[]; dataThrough: number | null } {
    const { db } = this.deps;
    const rows = db
      .prepare<{ through: number }, { id: string; user_id: string; prompt: string; chosen: string; rejected: string; created_at: number }>(
        'SELECT id, user_id, prompt, chosen, rejected, created_at FROM preference_pairs WHERE created_at <= @through ORDER BY user_id, created_at, id',
      )
      .all({ through });
    const inScope = scope ? new Set(scope) : null;
    const frac = this.deps.settings.pdpo.heldoutFraction;
    const byUser = new Map<string, JobPair[]>();
    let dataThrough: number | null = null;
    for (const r of rows) {
      if (inScope && !inScope.has(r.user_id)) continue;
      const reset = this.resets.get(r.user_id);
      if (reset !== undefined && r.created_at <= reset) continue;
      dataThrough = Math.max(dataThrough ?? r.created_at, r.created_at);
      const list = byUser.get(r.user_id) ?? [];
      list.push({ id: r.id, userId: r.user_id, prompt: JSON.parse(r.prompt) as ChatMessage[], chosen: r.chosen, rejected: r.rejected, heldout: isHeldout(r.id, frac) });
      byUser.set(r.user_id, list);
    }
    // Every user with two or more pairs keeps at least one held out, so the gate can judge them.
    for (const list of byUser.values()) {
      if (frac > 0 && list.length >= 2 && !list.some((p) => p.heldout)) list[list.length - 1]!.heldout = true;
      // …and at least one to train on (a user's only pair trains).
      if (list.every((p) => p.heldout)) list[0]!.heldout = false;
    }
    return { pairs: [...byUser.values()].flat(), dataThrough };
  }

  private modelKey(): string {
    const c = this.deps.settings.pdpo;
    return `${this.deps.modelId}|r${c.maxResponseTokens}|t${c.tokens}`;
  }

  private async runJob(entry: { job: TrainingJobRecord; controller: AbortController; history: StepLog[] }): Promise<void> {
    const { repos, logger, settings } = this.deps;
    const job = entry.job;
    const versionId = randomUUID();
    const startedAt = this.now();
    const cfg = settings.pdpo;
    const base = this.snapshot;
    repos.userModels.insertVersion({
      id: versionId, createdAt: startedAt, publishedAt: null, status: 'training',
      config: { ...cfg, trigger: job.trigger ?? 'admin', scope: job.scope ?? null, baseVersion: base.version?.id ?? null, modelId: this.deps.modelId } as JsonObject,
      metrics: {}, blob: null, jobId: job.id,
    });
    repos.userModels.startJob(job.id, startedAt, versionId);
    this.emitJob(job.id);
    let lastPersist = 0;
    let progress: JobProgress = { phase: 'load', step: 0, totalSteps: 0, loss: null, accuracy: null, margin: null, etaSeconds: null, done: 0, total: 0 };
    const publishProgress = (force = false) => {
      const t = Date.now();
      if (!force && t - lastPersist < 1000) return;
      lastPersist = t;
      repos.userModels.setJobProgress(job.id, progress);
    };
    try {
      const { pairs, dataThrough: through } = this.selectPairs(job.scope ?? null, startedAt);
      const refs = repos.userModels.referenceLogps(this.modelKey());
      for (const p of pairs) {
        const r = refs.get(p.id);
        if (r) p.ref = r;
      }
      if (!pairs.some((p) => !p.heldout)) throw new Error('no preference pairs to train on yet');
      const dataThrough = through ?? startedAt;
      const spec: TrainJobSpec = {
        modelDir: this.deps.modelDir, threads: settings.trainerThreads, config: cfg, pairs,
        init: base.version ? (repos.userModels.findVersion(base.version.id)?.blob ?? null) : null,
        dropUsers: [...this.resets].filter(([, at]) => !base.version || at >= base.version.createdAt).map(([u]) => u),
        onlyUsers: job.scope ?? null,
        baseline: settings.trainBaseline,
        nice: settings.trainerNice ?? 0,
      };
      const result = await this.runner(
        spec,
        (e) => {
          if (e.type === 'refs') {
            repos.userModels.saveReferenceLogps(this.modelKey(), e.refs);
            return;
          }
          if (e.type === 'phase') {
            progress = { ...progress, phase: e.phase, done: e.done, total: e.total };
          } else {
            const p = e.progress;
            entry.history.push(p.log);
            progress = { ...progress, phase: 'train', step: p.step, totalSteps: p.totalSteps, loss: p.log.loss, accuracy: p.log['rewards/accuracies'], margin: p.log['rewards/margins'], etaSeconds: p.etaSeconds };
            this.emit('progress', { jobId: job.id, ...progress, point: { step: p.step, loss: p.log.loss, accuracy: p.log['rewards/accuracies'], margin: p.log['rewards/margins'] } });
          }
          publishProgress();
        },
        entry.controller.signal,
      );
      repos.userModels.setJobHistory(job.id, entry.history as unknown as JsonValue[]);
      progress = { ...progress, phase: 'done', done: 1, total: 1, etaSeconds: 0 };
      this.finishWithCandidate(job, versionId, result, base, dataThrough);
    } catch (err) {
      const cancelled = err instanceof JobCancelled || entry.controller.signal.aborted;
      const message = cancelled ? (this.closed ? 'cancelled: the server shut down' : 'cancelled by an admin') : err instanceof Error ? err.message : String(err);
      repos.userModels.setJobHistory(job.id, entry.history as unknown as JsonValue[]);
      progress = { ...progress, phase: cancelled ? 'cancelled' : 'failed', etaSeconds: null };
      repos.userModels.completeVersion(versionId, { status: 'failed', metrics: {}, blob: null, reason: message, dataThrough: null });
      repos.userModels.finishJob(job.id, cancelled ? 'cancelled' : 'failed', this.now(), message);
      if (!cancelled) logger.error({ err, jobId: job.id }, 'retraining job failed');
      else logger.info({ jobId: job.id }, 'retraining job cancelled');
    } finally {
      publishProgress(true);
      this.emitJob(job.id);
    }
  }

  /** The held-out gate: publish the candidate, or keep it unpublished with the reason. */
  private finishWithCandidate(job: TrainingJobRecord, versionId: string, r: TrainJobResult, base: Snapshot, dataThrough: number): void {
    const { repos, logger, settings } = this.deps;
    const names = new Map<string, string>();
    for (const uid of Object.keys(r.heldout.candidate.perUser)) names.set(uid, repos.users.findById(uid)?.username ?? uid);
    const perUser = Object.entries(r.heldout.candidate.perUser).map(([userId, s]) => ({
      userId, username: names.get(userId) ?? userId, accuracy: s['rewards/accuracies'], pairs: s.pairs,
      currentAccuracy: r.heldout.current?.perUser[userId]?.['rewards/accuracies'] ?? null,
      genericAccuracy: r.heldout.generic.perUser[userId]?.['rewards/accuracies'] ?? null,
      baselineAccuracy: r.heldout.baseline?.perUser[userId]?.['rewards/accuracies'] ?? null,
      train: (r.trainPerUser[userId] ?? null) as unknown as JsonValue,
    }));
    const candidate = r.heldout.candidate.mean;
    // The yardstick is the current version on the same held-out pairs. The first version has none
    // to fall below, so it is published (its held-out figures are still recorded).
    const yardstick = base.version ? r.heldout.current?.mean ?? null : null;
    let status: 'published' | 'rejected' = 'published';
    let reason: string | null = null;
    if (base.version && candidate === null) {
      status = 'rejected';
      reason = 'no held-out pairs to compare the new version with the current one';
    } else if (candidate !== null && yardstick !== null && candidate < yardstick - settings.gateTolerance) {
      status = 'rejected';
      reason = `held-out reward accuracy ${candidate.toFixed(3)} is below the current version's ${yardstick.toFixed(3)} by more than the tolerance ${settings.gateTolerance}`;
    }
    const metrics: JsonObject = {
      heldoutAccuracy: candidate,
      currentHeldoutAccuracy: r.heldout.current?.mean ?? null,
      genericHeldoutAccuracy: r.heldout.generic.mean,
      baselineHeldoutAccuracy: r.heldout.baseline?.mean ?? null,
      perUser: perUser as unknown as JsonValue,
      pairs: r.pairs as unknown as JsonValue,
      seconds: r.seconds as unknown as JsonValue,
      final: (r.history.at(-1) ?? null) as unknown as JsonValue,
      perUserEpochs: r.trainPerUserEpochs as unknown as JsonValue,
    };
    const t = this.now();
    repos.userModels.completeVersion(versionId, { status: status === 'published' ? 'training' : 'rejected', metrics, blob: Buffer.from(r.blob), reason, dataThrough });
    if (status === 'published') {
      repos.userModels.publish(versionId, t);
      this.loadCurrent();
      this.emit('published', this.snapshot.version);
    }
    repos.userModels.finishJob(job.id, 'succeeded', t, null);
    logger.info({ jobId: job.id, versionId, status, candidate, yardstick, reason }, status === 'published' ? 'published a new user-model version' : 'kept the new user-model version unpublished');
  }

  listJobs(limit = 50): TrainingJobRecord[] {
    return this.deps.repos.userModels.listJobs(limit);
  }

  // ---- Versions -----------------------------------------------------------------------------

  listVersions(): (UserModelVersionRecord & { current: boolean })[] {
    const cur = this.snapshot.version?.id ?? null;
    return this.deps.repos.userModels.listVersions().map((v) => ({ ...v, current: v.id === cur }));
  }

  /** Publish (or roll back to) a version that has weights. */
  publishVersion(id: string): UserModelVersionRecord {
    const v = this.deps.repos.userModels.findVersion(id);
    if (!v) throw new NotFound('no such user-model version');
    if (!v.blob || v.status === 'training' || v.status === 'failed') throw new Conflict(`a ${v.status} version cannot be published`, 'version_not_publishable', { status: v.status });
    this.deps.repos.userModels.publish(id, this.now());
    this.loadCurrent();
    this.emit('published', this.snapshot.version);
    return this.deps.repos.userModels.findVersion(id, { blob: false })!;
  }

  jobDetails(id: string): { job: TrainingJobRecord; history: JsonValue[] } {
    const job = this.deps.repos.userModels.findJob(id);
    if (!job) throw new NotFound('no such training job');
    const history = this.active?.job.id === id ? (this.active.history as unknown as JsonValue[]) : this.deps.repos.userModels.jobHistory(id);
    return { job, history };
  }

  // ---- Schedule -----------------------------------------------------------------------------

  getSchedule(): ScheduleSettings & { nextRunAt: number | null } {
    const next = this.cron?.nextRun();
    return { ...this.schedule, nextRunAt: next ? next.getTime() : null };
  }

  setSchedule(s: ScheduleSettings): ScheduleSettings & { nextRunAt: number | null } {
    if (s.cron !== 'off') {
      // Validates the expression (croner throws on a bad one) without scheduling anything.
      new Cron(s.cron, { paused: true }).stop();
    }
    this.schedule = { ...s };
    this.deps.repos.userModels.putSetting('schedule', { ...s });
    if (!this.closed) this.startSchedule();
    return this.getSchedule();
  }

  /** Pairs that arrived after the last all-users run (or ever, when there was none). */
  newPairsSinceLastRun(): number {
    const through = this.deps.repos.userModels.lastFullTrainingThrough() ?? -1;
    return this.deps.db.prepare<{ t: number }, { n: number }>('SELECT count(*) AS n FROM preference_pairs WHERE created_at > @t').get({ t: through })!.n;
  }

  /** A cron tick: retrain everyone if at least N new pairs arrived since the last run. */
  scheduledCheck(): TrainingJobRecord | null {
    if (this.active || this.closed) return null;
    const n = this.newPairsSinceLastRun();
    if (n < this.schedule.minNewPairs) return null;
    return this.requestJob({ trigger: 'schedule' });
  }

  /** Per-user retraining for the user furthest past M new pairs since they were last trained. */
  perUserCheck(): TrainingJobRecord | null {
    if (this.active || this.closed || !this.schedule.enabled) return null;
    const v = this.snapshot.version;
    const model = this.snapshot.model;
    const rows = this.deps.db
      .prepare<[], { user_id: string; created_at: number }>('SELECT user_id, created_at FROM preference_pairs ORDER BY user_id')
      .all();
    const counts = new Map<string, number>();
    for (const r of rows) {
      const trainedThrough = v && model?.hasUser(r.user_id) ? (v.dataThrough ?? v.createdAt) : -1;
      const reset = this.resets.get(r.user_id) ?? -1;
      if (r.created_at > Math.max(trainedThrough, reset)) counts.set(r.user_id, (counts.get(r.user_id) ?? 0) + 1);
    }
    const best = [...counts].filter(([, n]) => n >= this.schedule.perUserMinPairs).sort((a, b) => b[1] - a[1])[0];
    if (!best) return null;
    return this.requestJob({ trigger: 'user', userIds: [best[0]] });
  }

  // ---- A user's own view --------------------------------------------------------------------

  personalizationOf(userId: string): UserPersonalization {
    const { db } = this.deps;
    const count = (sql: string) => db.prepare<[string], { n: number }>(sql).get(userId)!.n;
    const resolved = this.prefixFor(userId);
    const v = this.snapshot.version;
    const perUser = (v?.metrics.perUser ?? []) as { userId: string; accuracy: number }[];
    const mine = resolved.source === 'personal' ? perUser.find((p) => p.userId === userId) : undefined;
    return {
      votes: count('SELECT count(*) AS n FROM feedback WHERE user_id = ?'),
      comparisons: count('SELECT count(*) AS n FROM comparisons WHERE user_id = ? AND choice IS NOT NULL'),
      pairs: count('SELECT count(*) AS n FROM preference_pairs WHERE user_id = ?'),
      personalized: resolved.source === 'personal',
      version: resolved.source === 'personal' && v ? { id: v.id, publishedAt: v.publishedAt } : null,
      lastTrainedAt: resolved.source === 'personal' && v ? v.createdAt : null,
      heldoutAccuracy: mine?.accuracy ?? null,
      resetAt: this.resets.get(userId) ?? null,
    };
  }

  /** "Reset my personalization": back to e_0 now; pairs from before now are not trained on again. */
  resetUser(userId: string): void {
    const t = this.now();
    this.deps.repos.userModels.resetUser(userId, t);
    this.resets.set(userId, t);
  }

  static settingsFromConfig(c: {
    pdpoAlpha: number; pdpoBeta: number; pdpoLr: number; pdpoEpochs: number; pdpoBatchPairs: number; userModelTokens: number;
    userModelKind: 'individual' | 'cluster'; userModelClusters: number; heldoutFraction: number; gateTolerance: number; retrainCron: string;
    retrainMinNewPairs: number; retrainUserMinPairs: number; retrainCheckSeconds: number; trainerThreads: number; trainerNice: number; trainBaseline: boolean;
  }): PersonalizationSettings {
    return {
      pdpo: pdpoConfigSchema.parse({
        alpha: c.pdpoAlpha, beta: c.pdpoBeta, lr: c.pdpoLr, epochs: c.pdpoEpochs, batchPairs: c.pdpoBatchPairs, tokens: c.userModelTokens,
        userModel: c.userModelKind, clusters: c.userModelClusters, heldoutFraction: c.heldoutFraction,
      }),
      gateTolerance: c.gateTolerance,
      schedule: { cron: c.retrainCron, minNewPairs: c.retrainMinNewPairs, perUserMinPairs: c.retrainUserMinPairs, enabled: c.retrainCron !== 'off' },
      retrainCheckSeconds: c.retrainCheckSeconds,
      trainerThreads: c.trainerThreads,
      trainerNice: c.trainerNice,
      trainBaseline: c.trainBaseline,
    };
  }
}

export const jobStatus = asStatus;
