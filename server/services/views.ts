// JSON views of stored records, shared by the HTTP routes and the socket events (times as ISO strings).
import type { ConversationRecord, MessageRecord } from './conversations.ts';
import type { TrainingJobRecord } from '../db/user-models.ts';

export const iso = (ms: number): string => new Date(ms).toISOString();

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
  modelId: string | null;
  userModelVersion: string | null;
  sampling: MessageRecord['sampling'];
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
  modelId: m.modelId,
  userModelVersion: m.userModelVersion,
  sampling: m.sampling,
  seed: m.seed,
  createdAt: iso(m.createdAt),
});

/** A retraining job as clients see it (REST and the admin socket events). */
export const trainingJobView = (j: TrainingJobRecord) => ({
  id: j.id,
  status: j.status as 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled',
  trigger: j.trigger ?? 'admin',
  scope: j.scope ?? null,
  createdAt: j.createdAt,
  startedAt: j.startedAt,
  finishedAt: j.finishedAt,
  error: j.error,
  progress: j.progress,
  versionId: j.versionId ?? null,
});
