// JSON views of stored records, shared by the HTTP routes and the socket events. Every time on every
// wire is an ISO-8601 string (the records keep epoch milliseconds).
import type { JsonObject } from '../db/json.ts';
import type { JobStatus, JobTrigger, TrainingJobRecord } from '../db/user-models.ts';
import type { ConversationRecord, MessageRecord } from './conversations.ts';

export const iso = (ms: number): string => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : iso(ms));

export interface ConversationView {
  id: string;
  title: string;
  createdAt: string;
  updatedAt: string;
}

export interface MessageView {
  id: string;
  conversationId: string;
  parentId: string | null;
  role: MessageRecord['role'];
  content: string;
  status: MessageRecord['status'];
  finishReason: string | null;
  /** The base model's name (its directory) that wrote an answer; named modelId on the wire, as documented. */
  modelId: string | null;
  userModelVersion: string | null;
  sampling: Record<string, unknown> | null;
  seed: number | null;
  createdAt: string;
}

export const conversationView = (c: ConversationRecord): ConversationView => ({ id: c.id, title: c.title, createdAt: iso(c.createdAt), updatedAt: iso(c.updatedAt) });

export const messageView = (m: MessageRecord): MessageView => ({
  id: m.id,
  conversationId: m.conversationId,
  parentId: m.parentId,
  role: m.role,
  content: m.content,
  status: m.status,
  finishReason: m.finishReason,
  modelId: m.modelName,
  userModelVersion: m.userModelVersion,
  sampling: m.sampling,
  seed: m.seed,
  createdAt: iso(m.createdAt),
});

export const TRAINING_JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const satisfies readonly JobStatus[];
export const TRAINING_JOB_TRIGGERS = ['admin', 'schedule', 'user'] as const satisfies readonly JobTrigger[];

/** A retraining job as clients see it (REST and the admin socket events). */
export interface TrainingJobView {
  id: string;
  status: JobStatus;
  trigger: JobTrigger;
  scope: string[] | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  progress: JsonObject;
  versionId: string | null;
}

export const trainingJobView = (j: TrainingJobRecord): TrainingJobView => ({
  id: j.id,
  status: j.status as JobStatus,
  trigger: j.trigger ?? 'admin',
  scope: j.scope ?? null,
  createdAt: iso(j.createdAt),
  startedAt: isoOrNull(j.startedAt),
  finishedAt: isoOrNull(j.finishedAt),
  error: j.error,
  progress: j.progress,
  versionId: j.versionId ?? null,
});
