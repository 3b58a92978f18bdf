// user_model_versions and training_jobs: reserved for the personalization issue, which owns their
// status values and grows this repository. Only the basic reads and writes live here for now.
import type { Db } from './connection.ts';
import { fromJson, type JsonObject, toJson } from './json.ts';

export interface UserModelVersionRecord {
  id: string;
  createdAt: number;
  publishedAt: number | null;
  status: string;
  config: JsonObject;
  metrics: JsonObject;
  blob: Buffer | null;
}

interface UserModelVersionRow {
  id: string;
  created_at: number;
  published_at: number | null;
  status: string;
  config: string;
  metrics: string;
  blob: Buffer | null;
}

export interface TrainingJobRecord {
  id: string;
  status: string;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  error: string | null;
  progress: JsonObject;
}

interface TrainingJobRow {
  id: string;
  status: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  error: string | null;
  progress: string;
}

export type UserModelRepository = ReturnType<typeof createUserModelRepository>;

export function createUserModelRepository(db: Db) {
  const insertVersion = db.prepare<[UserModelVersionRow]>(
    `INSERT INTO user_model_versions (id, created_at, published_at, status, config, metrics, blob)
     VALUES (@id, @created_at, @published_at, @status, @config, @metrics, @blob)`,
  );
  const versionById = db.prepare<[string], UserModelVersionRow>('SELECT * FROM user_model_versions WHERE id = ?');
  const insertJob = db.prepare<[TrainingJobRow]>(
    `INSERT INTO training_jobs (id, status, created_at, started_at, finished_at, error, progress)
     VALUES (@id, @status, @created_at, @started_at, @finished_at, @error, @progress)`,
  );
  const jobById = db.prepare<[string], TrainingJobRow>('SELECT * FROM training_jobs WHERE id = ?');

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
      });
    },
    findVersion(id: string): UserModelVersionRecord | undefined {
      const r = versionById.get(id);
      return (
        r && {
          id: r.id,
          createdAt: r.created_at,
          publishedAt: r.published_at,
          status: r.status,
          config: fromJson<JsonObject>(r.config, 'user_model_versions.config'),
          metrics: fromJson<JsonObject>(r.metrics, 'user_model_versions.metrics'),
          blob: r.blob,
        }
      );
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
      });
    },
    findJob(id: string): TrainingJobRecord | undefined {
      const r = jobById.get(id);
      return (
        r && {
          id: r.id,
          status: r.status,
          createdAt: r.created_at,
          startedAt: r.started_at,
          finishedAt: r.finished_at,
          error: r.error,
          progress: fromJson<JsonObject>(r.progress, 'training_jobs.progress'),
        }
      );
    },
  };
}
