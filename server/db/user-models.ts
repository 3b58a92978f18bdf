// Personalization tables: user-model versions (soft prompts as blobs), retraining jobs, the
// published version, cached reference log-probs, resets and settings (migrations 001 and 002).
import type { Db } from './connection.ts';
import { fromJson, type JsonObject, type JsonValue, toJson } from './json.ts';

export type VersionStatus = 'training' | 'published' | 'rejected' | 'failed' | 'superseded';
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type JobTrigger = 'admin' | 'schedule' | 'user';

export interface UserModelVersionRecord {
  id: string;
  createdAt: number;
  publishedAt: number | null;
  status: string;
  config: JsonObject;
  metrics: JsonObject;
  blob: Buffer | null;
  jobId?: string | null;
  reason?: string | null;
  dataThrough?: number | null;
}

interface UserModelVersionRow {
  id: string;
  created_at: number;
  published_at: number | null;
  status: string;
  config: string;
  metrics: string;
  blob: Buffer | null;
  job_id: string | null;
  reason: string | null;
  data_through: number | null;
}

export interface TrainingJobRecord {
  id: string;
  status: string;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  error: string | null;
  progress: JsonObject;
  trigger?: JobTrigger;
  scope?: string[] | null;
  requestedBy?: string | null;
  versionId?: string | null;
}

interface TrainingJobRow {
  id: string;
  status: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  error: string | null;
  progress: string;
  trigger: string;
  scope: string | null;
  requested_by: string | null;
  version_id: string | null;
}

const toVersion = (r: UserModelVersionRow, withBlob: boolean): UserModelVersionRecord => ({
  id: r.id,
  createdAt: r.created_at,
  publishedAt: r.published_at,
  status: r.status,
  config: fromJson<JsonObject>(r.config, 'user_model_versions.config'),
  metrics: fromJson<JsonObject>(r.metrics, 'user_model_versions.metrics'),
  blob: withBlob ? r.blob : null,
  jobId: r.job_id,
  reason: r.reason,
  dataThrough: r.data_through,
});

const toJob = (r: TrainingJobRow): TrainingJobRecord => ({
  id: r.id,
  status: r.status,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  error: r.error,
  progress: fromJson<JsonObject>(r.progress, 'training_jobs.progress'),
  trigger: r.trigger as JobTrigger,
  scope: r.scope === null ? null : fromJson<string[]>(r.scope, 'training_jobs.scope'),
  requestedBy: r.requested_by,
  versionId: r.version_id,
});

export type UserModelRepository = ReturnType<typeof createUserModelRepository>;

export function createUserModelRepository(db: Db) {
  const insertVersion = db.prepare<[UserModelVersionRow]>(
    `INSERT INTO user_model_versions (id, created_at, published_at, status, config, metrics, blob, job_id, reason, data_through)
     VALUES (@id, @created_at, @published_at, @status, @config, @metrics, @blob, @job_id, @reason, @data_through)`,
  );
  const updateVersion = db.prepare<{ id: string; status: string; metrics: string; blob: Buffer | null; reason: string | null; data_through: number | null }>(
    'UPDATE user_model_versions SET status = @status, metrics = @metrics, blob = @blob, reason = @reason, data_through = @data_through WHERE id = @id',
  );
  const setVersionStatus = db.prepare<{ id: string; status: string; reason: string | null }>('UPDATE user_model_versions SET status = @status, reason = coalesce(@reason, reason) WHERE id = @id');
  const markPublished = db.prepare<{ id: string; at: number }>("UPDATE user_model_versions SET status = 'published', published_at = @at, reason = NULL WHERE id = @id");
  const supersedeOthers = db.prepare<{ id: string }>("UPDATE user_model_versions SET status = 'superseded' WHERE status = 'published' AND id <> @id");
  const versionById = db.prepare<[string], UserModelVersionRow>('SELECT * FROM user_model_versions WHERE id = ?');
  const versionsPage = db.prepare<{ limit: number }, UserModelVersionRow>(
    'SELECT id, created_at, published_at, status, config, metrics, NULL AS blob, job_id, reason, data_through FROM user_model_versions ORDER BY created_at DESC, id DESC LIMIT @limit',
  );
  const failTraining = db.prepare<{ reason: string }>("UPDATE user_model_versions SET status = 'failed', reason = @reason WHERE status = 'training'");
  const current = db.prepare<[], { version_id: string | null; published_at: number | null }>('SELECT version_id, published_at FROM user_model_current WHERE id = 1');
  const setCurrent = db.prepare<{ version_id: string | null; at: number | null }>('UPDATE user_model_current SET version_id = @version_id, published_at = @at WHERE id = 1');

  const insertJob = db.prepare<[TrainingJobRow & { history: string }]>(
    `INSERT INTO training_jobs (id, status, created_at, started_at, finished_at, error, progress, trigger, scope, requested_by, version_id, history)
     VALUES (@id, @status, @created_at, @started_at, @finished_at, @error, @progress, @trigger, @scope, @requested_by, @version_id, @history)`,
  );
  const jobById = db.prepare<[string], TrainingJobRow>('SELECT id, status, created_at, started_at, finished_at, error, progress, trigger, scope, requested_by, version_id FROM training_jobs WHERE id = ?');
  const jobHistory = db.prepare<[string], { history: string }>('SELECT history FROM training_jobs WHERE id = ?');
  const jobsPage = db.prepare<{ limit: number }, TrainingJobRow>(
    'SELECT id, status, created_at, started_at, finished_at, error, progress, trigger, scope, requested_by, version_id FROM training_jobs ORDER BY created_at DESC, id DESC LIMIT @limit',
  );
  const activeJobs = db.prepare<[], TrainingJobRow>(
    "SELECT id, status, created_at, started_at, finished_at, error, progress, trigger, scope, requested_by, version_id FROM training_jobs WHERE status IN ('queued', 'running') ORDER BY created_at",
  );
  const startJob = db.prepare<{ id: string; at: number; version_id: string }>("UPDATE training_jobs SET status = 'running', started_at = @at, version_id = @version_id WHERE id = @id");
  const finishJob = db.prepare<{ id: string; status: string; at: number; error: string | null }>('UPDATE training_jobs SET status = @status, finished_at = @at, error = @error WHERE id = @id');
  const setProgress = db.prepare<{ id: string; progress: string }>('UPDATE training_jobs SET progress = @progress WHERE id = @id');
  const setHistory = db.prepare<{ id: string; history: string }>('UPDATE training_jobs SET history = @history WHERE id = @id');
  const failActive = db.prepare<{ at: number; error: string }>("UPDATE training_jobs SET status = 'failed', finished_at = @at, error = @error WHERE status IN ('queued', 'running')");
  const lastSucceeded = db.prepare<[], { data_through: number | null; finished_at: number }>(
    `SELECT v.data_through, j.finished_at FROM training_jobs j JOIN user_model_versions v ON v.id = j.version_id
     WHERE j.status = 'succeeded' AND j.scope IS NULL ORDER BY j.finished_at DESC LIMIT 1`,
  );

  const refs = db.prepare<{ model_key: string; since: number }, { pair_id: string; chosen: number; rejected: number }>(
    'SELECT r.pair_id, r.chosen, r.rejected FROM pair_reference_logps r WHERE r.model_key = @model_key',
  );
  const insertRef = db.prepare<{ pair_id: string; model_key: string; chosen: number; rejected: number }>(
    `INSERT INTO pair_reference_logps (pair_id, model_key, chosen, rejected) SELECT @pair_id, @model_key, @chosen, @rejected
     WHERE EXISTS (SELECT 1 FROM preference_pairs WHERE id = @pair_id) ON CONFLICT DO NOTHING`,
  );
  const resets = db.prepare<[], { user_id: string; reset_at: number }>('SELECT user_id, reset_at FROM personalization_resets');
  const upsertReset = db.prepare<{ user_id: string; at: number }>(
    'INSERT INTO personalization_resets (user_id, reset_at) VALUES (@user_id, @at) ON CONFLICT (user_id) DO UPDATE SET reset_at = excluded.reset_at',
  );
  const getSetting = db.prepare<[string], { value: string }>('SELECT value FROM personalization_settings WHERE key = ?');
  const putSetting = db.prepare<{ key: string; value: string }>(
    'INSERT INTO personalization_settings (key, value) VALUES (@key, @value) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  );

  return {
    insertVersion(v: UserModelVersionRecord): void {
      insertVersion.run({
        id: v.id,
        created_at: v.createdAt,
        published_at: v.publishedAt,
        status: v.status,
        config: toJson(v.config),
        metrics: toJson(v.metrics),
        blob: v.blob,
        job_id: v.jobId ?? null,
        reason: v.reason ?? null,
        data_through: v.dataThrough ?? null,
      });
    },
    /** A finished job's candidate: its weights, metrics and status (never 'published' here). */
    completeVersion(id: string, v: { status: VersionStatus; metrics: JsonObject; blob: Buffer | null; reason: string | null; dataThrough: number | null }): void {
      updateVersion.run({ id, status: v.status, metrics: toJson(v.metrics), blob: v.blob, reason: v.reason, data_through: v.dataThrough });
    },
    setVersionStatus(id: string, status: VersionStatus, reason: string | null = null): void {
      setVersionStatus.run({ id, status, reason });
    },
    findVersion(id: string, opts: { blob?: boolean } = {}): UserModelVersionRecord | undefined {
      const r = versionById.get(id);
      return r && toVersion(r, opts.blob ?? true);
    },
    listVersions(limit = 100): UserModelVersionRecord[] {
      return versionsPage.all({ limit }).map((r) => toVersion(r, false));
    },
    /** The serving version's id and when it was published (null: none). */
    current(): { versionId: string | null; publishedAt: number | null } {
      const r = current.get()!;
      return { versionId: r.version_id, publishedAt: r.published_at };
    },
    /** Make `id` the serving version in one transaction; the previously published one is superseded. */
    publish: db.transaction((id: string, at: number) => {
      markPublished.run({ id, at });
      supersedeOthers.run({ id });
      setCurrent.run({ version_id: id, at });
    }),
    /** At start-up: versions left mid-training by a crash are failed, never served. */
    failInterruptedVersions(reason: string): number {
      return failTraining.run({ reason }).changes;
    },

    insertJob(j: TrainingJobRecord): void {
      insertJob.run({
        id: j.id,
        status: j.status,
        created_at: j.createdAt,
        started_at: j.startedAt,
        finished_at: j.finishedAt,
        error: j.error,
        progress: toJson(j.progress),
        trigger: j.trigger ?? 'admin',
        scope: j.scope ? JSON.stringify(j.scope) : null,
        requested_by: j.requestedBy ?? null,
        version_id: j.versionId ?? null,
        history: '[]',
      });
    },
    findJob(id: string): TrainingJobRecord | undefined {
      const r = jobById.get(id);
      return r && toJob(r);
    },
    jobHistory(id: string): JsonValue[] {
      const r = jobHistory.get(id);
      return r ? fromJson<JsonValue[]>(r.history, 'training_jobs.history') : [];
    },
    listJobs(limit = 50): TrainingJobRecord[] {
      return jobsPage.all({ limit }).map(toJob);
    },
    activeJobs(): TrainingJobRecord[] {
      return activeJobs.all().map(toJob);
    },
    startJob(id: string, at: number, versionId: string): void {
      startJob.run({ id, at, version_id: versionId });
    },
    finishJob(id: string, status: JobStatus, at: number, error: string | null = null): void {
      finishJob.run({ id, status, at, error });
    },
    setJobProgress(id: string, progress: JsonObject): void {
      setProgress.run({ id, progress: toJson(progress) });
    },
    setJobHistory(id: string, history: JsonValue[]): void {
      setHistory.run({ id, history: JSON.stringify(history) });
    },
    /** At start-up: jobs a crash or restart interrupted are failed. */
    failInterruptedJobs(at: number, error: string): number {
      return failActive.run({ at, error }).changes;
    },
    /** The data window end of the last successful all-users job (pairs after it are "new"). */
    lastFullTrainingThrough(): number | null {
      return lastSucceeded.get()?.data_through ?? null;
    },

    referenceLogps(modelKey: string): Map<string, { chosen: number; rejected: number }> {
      return new Map(refs.all({ model_key: modelKey, since: 0 }).map((r) => [r.pair_id, { chosen: r.chosen, rejected: r.rejected }]));
    },
    saveReferenceLogps: db.transaction((modelKey: string, rows: readonly [string, number, number][]) => {
      for (const [pairId, chosen, rejected] of rows) insertRef.run({ pair_id: pairId, model_key: modelKey, chosen, rejected });
    }),
    resets(): Map<string, number> {
      return new Map(resets.all().map((r) => [r.user_id, r.reset_at]));
    },
    resetUser(userId: string, at: number): void {
      upsertReset.run({ user_id: userId, at });
    },
    getSetting<T extends JsonValue>(key: string): T | undefined {
      const r = getSetting.get(key);
      return r ? fromJson<T>(r.value, `personalization_settings.${key}`) : undefined;
    },
    putSetting(key: string, value: JsonValue): void {
      putSetting.run({ key, value: JSON.stringify(value) });
    },
  };
}
