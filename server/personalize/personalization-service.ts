// Personalization as one service: which soft prompt each user gets (serving.ts), retraining jobs
// (jobs.ts) started by an admin or by the schedule (schedule.ts), each ending with the held-out gate
// (gate.ts) and an atomic publish, and a user's own view and reset.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Db } from '../db/connection.ts';
import type { JsonObject, JsonValue } from '../db/json.ts';
import type { Repositories } from '../db/repositories.ts';
import type { JobTrigger, TrainingJobRecord, UserModelVersionRecord } from '../db/user-models.ts';
import { Conflict, NotFound } from '../errors.ts';
import { type GateSettings, gateDecision } from './gate.ts';
import { contained, type EventTuple, type JobEvents, JobQueue, type JobRunner, type JobSettings, type TrainedCandidate, workerRunner } from './jobs.ts';
import { pdpoConfigSchema } from './pdpo.ts';
import { RetrainSchedule, type ScheduleSettings } from './schedule.ts';
import { type ResolvedPrefix, UserModelServing } from './serving.ts';
import { UserModel } from './user-model.ts';

export interface PersonalizationSettings extends JobSettings, GateSettings {
  schedule: ScheduleSettings;
  retrainCheckSeconds: number;
}

/** Everything listeners hear: jobs' states and steps, and each newly published version (null: none serves). */
export interface PersonalizationEvents extends JobEvents {
  published: [version: UserModelVersionRecord | null];
}

export interface PersonalizationDeps {
  db: Db;
  repos: Repositories;
  logger: Logger;
  modelDir: string;
  /** A content hash of the base model (reference log-probs are cached per model and tokenization). */
  modelFingerprint: string;
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

export class PersonalizationService extends EventEmitter<PersonalizationEvents> {
  private readonly serving: UserModelServing;
  private readonly jobs: JobQueue;
  private readonly schedule: RetrainSchedule;
  private readonly now: () => number;

  constructor(private readonly deps: PersonalizationDeps) {
    super();
    this.now = deps.now ?? Date.now;
    const { db, repos, logger, settings } = deps;
    this.serving = new UserModelServing(repos.userModels);
    this.jobs = new JobQueue({
      db, repos, logger, settings, modelDir: deps.modelDir, modelFingerprint: deps.modelFingerprint, serving: this.serving,
      runner: deps.runner ?? workerRunner, now: this.now,
      emit: this.emitSafely.bind(this),
      onCandidate: (c) => this.finishWithCandidate(c),
    });
    this.schedule = new RetrainSchedule({ db, repos, logger, settings, jobs: this.jobs, serving: this.serving });
  }

  /** Recover from a crash, load the published version, start the schedule and the per-user watcher. */
  start(opts: { schedule?: boolean } = {}): void {
    this.jobs.failInterrupted();
    this.serving.load();
    if (opts.schedule ?? true) this.schedule.start();
  }

  async close(): Promise<void> {
    this.schedule.stop();
    await this.jobs.close();
  }

  /**
   * emit() runs the listeners in place: one that throws must not fail a job or a timer. (Through the
   * untyped emit: TypeScript does not tie the tuple's event name to the arguments after it.)
   */
  private emitSafely(...[event, ...args]: EventTuple<PersonalizationEvents>): void {
    contained(this.deps.logger, `a '${event}' listener`, () => (this as EventEmitter).emit(event, ...args));
  }

  // ---- Serving ------------------------------------------------------------------------------

  prefixFor(userId: string): ResolvedPrefix {
    return this.serving.prefixFor(userId);
  }

  currentVersion(): UserModelVersionRecord | null {
    return this.serving.currentVersion();
  }

  // ---- Jobs ---------------------------------------------------------------------------------

  activeJob(): TrainingJobRecord | null {
    return this.jobs.activeJob();
  }

  /** Start a retraining job now; 409 while another runs. Returns the job as stored. */
  requestJob(opts: { trigger: JobTrigger; userIds?: string[] | null; requestedBy?: string | null }): TrainingJobRecord {
    return this.jobs.requestJob(opts);
  }

  cancelJob(id: string): TrainingJobRecord {
    return this.jobs.cancelJob(id);
  }

  /** Resolves when the running job (if any) has finished and been recorded. */
  idle(): Promise<void> {
    return this.jobs.idle();
  }

  listJobs(limit = 50): TrainingJobRecord[] {
    return this.jobs.listJobs(limit);
  }

  jobDetails(id: string): { job: TrainingJobRecord; history: JsonValue[] } {
    return this.jobs.jobDetails(id);
  }

  /**
   * The held-out gate's decision, recorded: publish the candidate, or keep it unpublished with the
   * reason. Until the publish commits, a throw fails the job; after it the version serves, so what
   * follows (loading it, the job's end) never throws and is recorded as far as storage lets.
   */
  private finishWithCandidate({ job, versionId, result: r, base, dataThrough }: TrainedCandidate): void {
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
    const gate = gateDecision({ hasCurrent: base.version !== null, candidate, current: r.heldout.current?.mean ?? null }, settings);
    const status = gate.publish ? 'published' : 'rejected';
    const reason = gate.publish ? null : gate.reasons.join('; ');
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
    repos.userModels.completeVersion(versionId, { status: gate.publish ? 'training' : 'rejected', metrics, blob, reason, dataThrough });
    if (gate.publish) {
      // One transaction: on failure nothing is published and the version stays unservable.
      repos.userModels.publish(versionId, t);
      contained(logger, 'loading the published version', () => this.serving.reload());
      this.emitSafely('published', this.serving.currentVersion());
      this.jobs.recordQuietly(job.id, 'the job\'s success', () => repos.userModels.finishJob(job.id, 'succeeded', t, null));
    } else {
      repos.userModels.finishJob(job.id, 'succeeded', t, null);
    }
    logger.info({ jobId: job.id, versionId, status, candidate, yardstick: gate.yardstick, reason }, gate.publish ? 'published a new user-model version' : 'kept the new user-model version unpublished');
  }

  // ---- Versions -----------------------------------------------------------------------------

  listVersions(): (UserModelVersionRecord & { current: boolean })[] {
    const cur = this.serving.currentVersion()?.id ?? null;
    return this.deps.repos.userModels.listVersions().map((v) => ({ ...v, current: v.id === cur }));
  }

  /** Publish (or roll back to) a version that has weights. */
  publishVersion(id: string): UserModelVersionRecord {
    const v = this.deps.repos.userModels.findVersion(id);
    if (!v) throw new NotFound('no such user-model version');
    if (!v.blob || v.status === 'training' || v.status === 'failed') throw new Conflict(`a ${v.status} version cannot be published`, 'version_not_publishable', { status: v.status });
    this.deps.repos.userModels.publish(id, this.now());
    this.serving.reload();
    this.emitSafely('published', this.serving.currentVersion());
    return this.deps.repos.userModels.findVersion(id, { blob: false })!;
  }

  // ---- Schedule -----------------------------------------------------------------------------

  getSchedule(): ScheduleSettings & { nextRunAt: number | null } {
    return this.schedule.get();
  }

  /** Stored, and in force at once; a bad cron expression is a ValidationError. */
  setSchedule(s: ScheduleSettings): ScheduleSettings & { nextRunAt: number | null } {
    return this.schedule.set(s);
  }

  /** Pairs that arrived after the last all-users run (or ever, when there was none). */
  newPairsSinceLastRun(): number {
    return this.schedule.newPairsSinceLastRun();
  }

  /** A cron tick: retrain everyone if at least N new pairs arrived since the last run. */
  scheduledCheck(): TrainingJobRecord | null {
    return this.schedule.scheduledCheck();
  }

  /** Per-user retraining for the user furthest past M new pairs since they were last trained. */
  perUserCheck(): TrainingJobRecord | null {
    return this.schedule.perUserCheck();
  }

  // ---- A user's own view --------------------------------------------------------------------

  personalizationOf(userId: string): UserPersonalization {
    const { db } = this.deps;
    const count = (sql: string) => db.prepare<[string], { n: number }>(sql).get(userId)!.n;
    const resolved = this.serving.prefixFor(userId);
    const v = this.serving.currentVersion();
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
      resetAt: this.serving.resetAt(userId) ?? null,
    };
  }

  /** "Reset my personalization": back to e_0 now; pairs from before now are not trained on again. */
  resetUser(userId: string): void {
    this.serving.resetUser(userId, this.now());
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
