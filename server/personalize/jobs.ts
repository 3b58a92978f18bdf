// Retraining jobs: one at a time, each in a worker thread (in-process for tests and tools), from the
// rows that start it to the rows that record its end. What becomes of a trained candidate (the gate,
// the publish) is the owner's `onCandidate` (personalization-service.ts).
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Db } from '../db/connection.ts';
import type { JsonObject, JsonValue } from '../db/json.ts';
import type { Repositories } from '../db/repositories.ts';
import type { JobTrigger, TrainingJobRecord } from '../db/user-models.ts';
import { storageErrorOf } from '../db/storage.ts';
import { Conflict, isAppError, NotFound } from '../errors.ts';
import type { ChatMessage } from '../lm/tokenizer.ts';
import { metrics } from '../metrics.ts';
import { isHeldout, type PdpoConfig, type StepLog } from './pdpo.ts';
import type { ServingSnapshot, UserModelServing } from './serving.ts';
import { runTrainJob, type JobPair, type TrainerEvent, type TrainJobResult, type TrainJobSpec, type WorkerCommand, type WorkerMessage } from './trainer.ts';

export interface JobSettings {
  pdpo: PdpoConfig;
  trainerThreads: number;
  /** Nice value of the training worker's threads (0: same priority as chat). */
  trainerNice?: number;
  trainBaseline: boolean;
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

/** A training step as listeners hear it: the job's progress and the step's point of the curves. */
export type JobProgressEvent = JobProgress & {
  jobId: string;
  point: { step: number; loss: number; accuracy: number; margin: number };
};

/** What jobs tell listeners: a job's state as stored (start, end), and each training step. */
export interface JobEvents {
  job: [job: TrainingJobRecord];
  progress: [progress: JobProgressEvent];
}

/** An event of map M with its arguments, as one tuple: ['job', job] | ['progress', progress] for JobEvents. */
export type EventTuple<M> = { [K in keyof M]: M[K] extends unknown[] ? [event: K, ...args: M[K]] : never }[keyof M];

/** Tells listeners; it never throws (a listener's failure is the emitter's to contain). */
export type JobEventSink = (...event: EventTuple<JobEvents>) => void;

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

/**
 * Runs a callback of a timer or an event, where a throw would reach the process and end it: a
 * failure (e.g. the database refusing writes) is logged, and the server carries on serving.
 */
export function contained(logger: Logger, what: string, fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    logger.error({ err }, `${what} failed`);
  }
}

/** A job's trained candidate, for the gate: what it was trained from, and the version row it fills. */
export interface TrainedCandidate {
  job: TrainingJobRecord;
  versionId: string;
  result: TrainJobResult;
  /** What served when the job started: the gate's yardstick. */
  base: ServingSnapshot;
  /** The newest pair the candidate was trained on (its creation time). */
  dataThrough: number;
}

export interface JobQueueDeps {
  db: Db;
  repos: Repositories;
  logger: Logger;
  modelDir: string;
  /** A content hash of the base model: reference log-probs are cached per fingerprint and tokenization. */
  modelFingerprint: string;
  settings: JobSettings;
  serving: UserModelServing;
  runner: JobRunner;
  now: () => number;
  emit: JobEventSink;
  /**
   * Publishes the candidate or keeps it unpublished, and records the job's end. A throw before the
   * publish commits fails the job; after it, nothing may throw.
   */
  onCandidate: (candidate: TrainedCandidate) => void;
}

interface ActiveJob {
  job: TrainingJobRecord;
  controller: AbortController;
  history: StepLog[];
  done: Promise<void>;
}

export class JobQueue {
  private active: ActiveJob | null = null;
  private closed = false;

  constructor(private readonly deps: JobQueueDeps) {}

  /** After a crash: the jobs and versions it left running are failed (a version of one never serves). */
  failInterrupted(): void {
    const { repos, logger } = this.deps;
    const jobs = repos.userModels.failInterruptedJobs(this.deps.now(), 'interrupted: the server stopped while this job ran');
    const versions = repos.userModels.failInterruptedVersions('its training job was interrupted; never published');
    if (jobs || versions) logger.warn({ jobs, versions }, 'marked interrupted training jobs as failed');
  }

  /** No new jobs; the running one is cancelled, and this resolves once its end is recorded. */
  async close(): Promise<void> {
    this.closed = true;
    const a = this.active;
    if (a) {
      a.controller.abort();
      await a.done;
    }
  }

  activeJob(): TrainingJobRecord | null {
    return this.active?.job ?? null;
  }

  /** Whether a job could start now: none runs and the queue is open. */
  canStart(): boolean {
    return !this.active && !this.closed;
  }

  /** Start a retraining job now; 409 while another runs. Returns the job as stored. */
  requestJob(opts: { trigger: JobTrigger; userIds?: string[] | null; requestedBy?: string | null }): TrainingJobRecord {
    if (this.closed) throw new Conflict('the server is shutting down');
    if (this.active) throw new Conflict('a retraining job is already running', 'job_running', { jobId: this.active.job.id });
    const { repos, settings, logger } = this.deps;
    const t = this.deps.now();
    const job: TrainingJobRecord = {
      id: randomUUID(), status: 'queued', createdAt: t, startedAt: null, finishedAt: null, error: null,
      progress: { phase: 'queued', step: 0, totalSteps: 0, loss: null, accuracy: null, margin: null, etaSeconds: null, done: 0, total: 0 },
      trigger: opts.trigger, scope: opts.userIds?.length ? [...opts.userIds] : null, requestedBy: opts.requestedBy ?? null, versionId: null,
    };
    const versionId = randomUUID();
    const base = this.deps.serving.current();
    // One transaction: when storage fails, nothing is left half-made and the caller gets the 503
    // (the admin's request, or the schedule's log line) instead of a job that dies unseen.
    this.deps.db.transaction(() => {
      repos.userModels.insertJob(job);
      repos.userModels.insertVersion({
        id: versionId, createdAt: t, publishedAt: null, status: 'training',
        // `modelId` is the stored (and served) name of the fingerprint.
        config: { ...settings.pdpo, trigger: job.trigger ?? 'admin', scope: job.scope ?? null, baseVersion: base.version?.id ?? null, modelId: this.deps.modelFingerprint } as JsonObject,
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

  listJobs(limit = 50): TrainingJobRecord[] {
    return this.deps.repos.userModels.listJobs(limit);
  }

  jobDetails(id: string): { job: TrainingJobRecord; history: JsonValue[] } {
    const job = this.deps.repos.userModels.findJob(id);
    if (!job) throw new NotFound('no such training job');
    const history = this.active?.job.id === id ? (this.active.history as unknown as JsonValue[]) : this.deps.repos.userModels.jobHistory(id);
    return { job, history };
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
    this.deps.emit('job', job);
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
      const reset = this.deps.serving.resetAt(r.user_id);
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

  /** Reference log-probs depend on the base model and on how a pair is cut into tokens. */
  private referenceCacheKey(): string {
    const c = this.deps.settings.pdpo;
    return `${this.deps.modelFingerprint}|r${c.maxResponseTokens}|t${c.tokens}`;
  }

  /**
   * The job after its rows exist: select pairs, train in the runner, hand the candidate on. It never
   * throws: a failure is recorded on the job and its version as far as storage lets it; what cannot
   * be written is left 'running'/'training', which the start-up recovery marks failed.
   */
  private async runJob(entry: ActiveJob, versionId: string, base: ServingSnapshot): Promise<void> {
    const { repos, logger, settings } = this.deps;
    const job = entry.job;
    const startedAt = job.startedAt ?? this.deps.now();
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
      const refs = repos.userModels.referenceLogps(this.referenceCacheKey());
      for (const p of pairs) {
        const r = refs.get(p.id);
        if (r) p.ref = r;
      }
      if (!pairs.some((p) => !p.heldout)) throw new Conflict('no preference pairs to train on yet', 'no_training_pairs');
      const dataThrough = through ?? startedAt;
      const resets = this.deps.serving.resetTimes();
      const spec: TrainJobSpec = {
        modelDir: this.deps.modelDir, threads: settings.trainerThreads, config: cfg, pairs,
        init: base.version ? (repos.userModels.findVersion(base.version.id)?.blob ?? null) : null,
        dropUsers: [...resets].filter(([, at]) => !base.version || at >= base.version.createdAt).map(([u]) => u),
        onlyUsers: job.scope ?? null,
        baseline: settings.trainBaseline,
        nice: settings.trainerNice ?? 0,
      };
      // A write that fails in here (storage full or gone) throws into the runner, which stops the
      // job with that error: its result could not be stored either, so training on is wasted.
      const result = await this.deps.runner(
        spec,
        (e) => {
          if (e.type === 'refs') {
            repos.userModels.saveReferenceLogps(this.referenceCacheKey(), e.refs);
            return;
          }
          if (e.type === 'phase') {
            progress = { ...progress, phase: e.phase, done: e.done, total: e.total };
          } else {
            const p = e.progress;
            entry.history.push(p.log);
            progress = { ...progress, phase: 'train', step: p.step, totalSteps: p.totalSteps, loss: p.log.loss, accuracy: p.log['rewards/accuracies'], margin: p.log['rewards/margins'], etaSeconds: p.etaSeconds };
            this.deps.emit('progress', { jobId: job.id, ...progress, point: { step: p.step, loss: p.log.loss, accuracy: p.log['rewards/accuracies'], margin: p.log['rewards/margins'] } });
          }
          publishProgress();
        },
        entry.controller.signal,
      );
      repos.userModels.setJobHistory(job.id, entry.history as unknown as JsonValue[]);
      progress = { ...progress, phase: 'done', done: 1, total: 1, etaSeconds: 0 };
      this.deps.onCandidate({ job, versionId, result, base, dataThrough });
      this.recordQuietly(job.id, 'its final progress', () => publishProgress(true));
    } catch (err) {
      const cancelled = err instanceof JobCancelled || entry.controller.signal.aborted;
      const storage = storageErrorOf(err);
      const message = cancelled
        ? this.closed ? 'cancelled: the server shut down' : 'cancelled by an admin'
        : storage ? `stopped: the database refused a write (${storage.code}): ${storage.message}` : err instanceof Error ? err.message : String(err);
      if (cancelled) logger.info({ jobId: job.id }, 'retraining job cancelled');
      // An outcome the admin can act on (no pairs yet), not a fault of the server.
      else if (isAppError(err) && err.status < 500) logger.warn({ jobId: job.id, versionId, code: err.code, reason: message }, `retraining job failed: ${message}`);
      else logger.error({ err, jobId: job.id, versionId }, 'retraining job failed');
      progress = { ...progress, phase: cancelled ? 'cancelled' : 'failed', etaSeconds: null };
      // The version first: whatever else is lost, a failed candidate must stay unservable.
      const recorded = [
        this.recordQuietly(job.id, 'the failed version', () => repos.userModels.completeVersion(versionId, { status: 'failed', metrics: {}, blob: null, reason: message, dataThrough: null })),
        this.recordQuietly(job.id, 'the job\'s end', () => repos.userModels.finishJob(job.id, cancelled ? 'cancelled' : 'failed', this.deps.now(), message)),
        this.recordQuietly(job.id, 'the job\'s history', () => repos.userModels.setJobHistory(job.id, entry.history as unknown as JsonValue[])),
        this.recordQuietly(job.id, 'its final progress', () => publishProgress(true)),
      ];
      entry.job = { ...job, status: cancelled ? 'cancelled' : 'failed', finishedAt: this.deps.now(), error: message, progress };
      if (recorded.includes(false)) {
        logger.warn({ jobId: job.id, versionId }, 'the job\'s end could not be fully recorded: the start-up recovery marks it failed, and its version never serves');
        // The stored row may still say 'running': listeners get what happened instead.
        metrics.trainingJobs.inc({ status: entry.job.status });
        this.deps.emit('job', entry.job);
        return;
      }
    }
    this.emitJob(job.id, entry.job);
  }

  /** One write of a job's bookkeeping that may fail without taking more down with it; false if it did. */
  recordQuietly(jobId: string, what: string, write: () => void): boolean {
    try {
      write();
      return true;
    } catch (err) {
      this.deps.logger.error({ err, jobId }, `could not record ${what}`);
      return false;
    }
  }
}
