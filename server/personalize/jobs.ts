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
import { storageErrorOf } from '../db/storage.ts';
import { Conflict, NotFound } from '../errors.ts';
import type { ChatMessage } from '../lm/tokenizer.ts';
import { metrics } from '../metrics.ts';
import { isHeldout, type PdpoConfig, pdpoConfigSchema, type StepLog } from './pdpo.ts';
import { runTrainJob, type JobPair, type TrainerEvent, type TrainJobResult, type TrainJobSpec, type WorkerCommand, type WorkerMessage } from './trainer.ts';
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

interface ActiveJob {
  job: TrainingJobRecord;
  controller: AbortController;
  history: StepLog[];
  done: Promise<void>;
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
  private active: ActiveJob | null = null;
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
      this.cron = new Cron(s.cron, { protect: true }, () => this.contained('the scheduled retraining check', () => this.scheduledCheck()));
    }
    if (!this.watcher) {
      this.watcher = setInterval(() => this.contained('the per-user retraining check', () => this.perUserCheck()), this.deps.settings.retrainCheckSeconds * 1000);
      this.watcher.unref();
    }
  }

  /**
   * Runs a callback of a timer or an event, where a throw would reach the process and end it: a
   * failure (e.g. the database refusing writes) is logged, and the server carries on serving.
   */
  private contained(what: string, fn: () => unknown): void {
    try {
      fn();
    } catch (err) {
      this.deps.logger.error({ err }, `${what} failed`);
    }
  }

  /** emit() runs the listeners in place: one that throws must not fail a job or a timer. */
  private emitSafely(event: 'job' | 'progress' | 'published', payload: unknown): void {
    this.contained(`a '${event}' listener`, () => this.emit(event, payload));
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
    const { repos, settings, logger } = this.deps;
    const t = this.now();
    const job: TrainingJobRecord = {
      id: randomUUID(), status: 'queued', createdAt: t, startedAt: null, finishedAt: null, error: null,
      progress: { phase: 'queued', step: 0, totalSteps: 0, loss: null, accuracy: null, margin: null, etaSeconds: null, done: 0, total: 0 },
      trigger: opts.trigger, scope: opts.userIds?.length ? [...opts.userIds] : null, requestedBy: opts.requestedBy ?? null, versionId: null,
    };
    const versionId = randomUUID();
    const base = this.snapshot;
    // One transaction: when storage fails, nothing is left half-made and the caller gets the 503
    // (the admin's request, or the schedule's log line) instead of a job that dies unseen.
    this.deps.db.transaction(() => {
      repos.userModels.insertJob(job);
      repos.userModels.insertVersion({
        id: versionId, createdAt: t, publishedAt: null, status: 'training',
        config: { ...settings.pdpo, trigger: job.trigger ?? 'admin', scope: job.scope ?? null, baseVersion: base.version?.id ?? null, modelId: this.deps.modelId } as JsonObject,
        metrics: {}, blob: null, jobId: job.id,
      });
      repos.userModels.startJob(job.id, t, versionId);
    })();
    const stored: TrainingJobRecord = { ...job, status: 'running', startedAt: t, versionId };
    const controller = new AbortController();
    const entry: ActiveJob = { job: stored, controller, history: [], done: Promise.resolve() };
    this.active = entry;
    entry.done = this.runJob(entry, versionId, base)
      // runJob records its own failures; this is the last line before an unhandled rejection.
      .catch((err: unknown) => logger.error({ err, jobId: job.id }, 'retraining job ended with an unrecorded error'))
      .finally(() => {
        if (this.active === entry) this.active = null;
      });
    this.emitJob(job.id, stored);
    return stored;
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

  /** Tells listeners (admins' sockets) the job's state: as stored, or `fallback` when it cannot be read. */
  private emitJob(id: string, fallback?: TrainingJobRecord): void {
    let job: TrainingJobRecord | undefined = fallback;
    try {
      job = this.deps.repos.userModels.findJob(id) ?? fallback;
    } catch (err) {
      this.deps.logger.error({ err, jobId: id }, 'could not read the training job to report it');
    }
    if (!job) return;
    metrics.trainingJobs.inc({ status: job.status });
    this.emitSafely('job', job);
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

  /**
   * The job after its rows exist: select pairs, train in the runner, gate and publish. It never
   * throws: a failure is recorded on the job and its version as far as storage lets it; what cannot
   * be written is left 'running'/'training', which the start-up recovery marks failed.
   */
  private async runJob(entry: ActiveJob, versionId: string, base: Snapshot): Promise<void> {
    const { repos, logger, settings } = this.deps;
    const job = entry.job;
    const startedAt = job.startedAt ?? this.now();
    const cfg = settings.pdpo;
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
      // A write that fails in here (storage full or gone) throws into the runner, which stops the
      // job with that error: its result could not be stored either, so training on is wasted.
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
            this.emitSafely('progress', { jobId: job.id, ...progress, point: { step: p.step, loss: p.log.loss, accuracy: p.log['rewards/accuracies'], margin: p.log['rewards/margins'] } });
          }
          publishProgress();
        },
        entry.controller.signal,
      );
      repos.userModels.setJobHistory(job.id, entry.history as unknown as JsonValue[]);
      progress = { ...progress, phase: 'done', done: 1, total: 1, etaSeconds: 0 };
      this.finishWithCandidate(job, versionId, result, base, dataThrough);
      this.recordQuietly(job.id, 'its final progress', () => publishProgress(true));
    } catch (err) {
      const cancelled = err instanceof JobCancelled || entry.controller.signal.aborted;
      const storage = storageErrorOf(err);
      const message = cancelled
        ? this.closed ? 'cancelled: the server shut down' : 'cancelled by an admin'
        : storage ? `stopped: the database refused a write (${storage.code}): ${storage.message}` : err instanceof Error ? err.message : String(err);
      if (!cancelled) logger.error({ err, jobId: job.id, versionId }, 'retraining job failed');
      else logger.info({ jobId: job.id }, 'retraining job cancelled');
      progress = { ...progress, phase: cancelled ? 'cancelled' : 'failed', etaSeconds: null };
      // The version first: whatever else is lost, a failed candidate must stay unservable.
      const recorded = [
        this.recordQuietly(job.id, 'the failed version', () => repos.userModels.completeVersion(versionId, { status: 'failed', metrics: {}, blob: null, reason: message, dataThrough: null })),
        this.recordQuietly(job.id, 'the job\'s end', () => repos.userModels.finishJob(job.id, cancelled ? 'cancelled' : 'failed', this.now(), message)),
        this.recordQuietly(job.id, 'the job\'s history', () => repos.userModels.setJobHistory(job.id, entry.history as unknown as JsonValue[])),
        this.recordQuietly(job.id, 'its final progress', () => publishProgress(true)),
      ];
      entry.job = { ...job, status: cancelled ? 'cancelled' : 'failed', finishedAt: this.now(), error: message, progress };
      if (recorded.includes(false)) {
        logger.warn({ jobId: job.id, versionId }, 'the job\'s end could not be fully recorded: the start-up recovery marks it failed, and its version never serves');
        // The stored row may still say 'running': listeners get what happened instead.
        metrics.trainingJobs.inc({ status: entry.job.status });
        this.emitSafely('job', entry.job);
        return;
      }
    }
    this.emitJob(job.id, entry.job);
  }

  /** One write of a job's bookkeeping that may fail without taking more down with it; false if it did. */
  private recordQuietly(jobId: string, what: string, write: () => void): boolean {
    try {
      write();
      return true;
    } catch (err) {
      this.deps.logger.error({ err, jobId }, `could not record ${what}`);
      return false;
    }
  }

  /**
   * The held-out gate: publish the candidate, or keep it unpublished with the reason. Until the
   * publish commits, a throw fails the job; after it the version serves, so what follows (loading
   * it, the job's end) never throws and is recorded as far as storage lets.
   */
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
    const blob = Buffer.from(r.blob);
    // A blob that does not load must fail the job here, before it can be published.
    UserModel.deserialize(blob);
    repos.userModels.completeVersion(versionId, { status: status === 'published' ? 'training' : 'rejected', metrics, blob, reason, dataThrough });
    if (status === 'published') {
      // One transaction: on failure nothing is published and the version stays unservable.
      repos.userModels.publish(versionId, t);
      this.contained('loading the published version', () => this.loadCurrent());
      this.emitSafely('published', this.snapshot.version);
    }
    if (status === 'published') this.recordQuietly(job.id, 'the job\'s success', () => repos.userModels.finishJob(job.id, 'succeeded', t, null));
    else repos.userModels.finishJob(job.id, 'succeeded', t, null);
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
    this.emitSafely('published', this.snapshot.version);
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
