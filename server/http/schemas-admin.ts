// The JSON shapes of the admin API and of the data exports (see schemas.ts for the conventions):
// request schemas validated at the edge, response schemas documented in OpenAPI, and their mappers.
import { z } from 'zod';
import type { AdminUser, AdminUserPage, FeedbackCounts, FeedbackStats } from '../services/admin.ts';
import { userUpdateSchema } from '../services/admin.ts';
import { PREFERENCE_SOURCES, type UserDataExport } from '../services/export.ts';
import { iso, isoOrNull, TRAINING_JOB_STATUSES, TRAINING_JOB_TRIGGERS, trainingJobView } from '../services/views.ts';
import type { TrainingJobRecord, UserModelVersionRecord } from '../db/user-models.ts';
import { apiKeySchema, conversationSchema, messageSchema, toApiKey, toConversation, toMessage, toUser, userSchema } from './schemas.ts';
import type { UserPersonalization } from '../services/training.ts';

const timestamp = z.iso.datetime();
const id = z.uuid();
const count = z.number().int().nonnegative();

// ---- requests

export const listUsersQuerySchema = z.strictObject({
  limit: z.coerce.number({ error: 'limit must be a number' }).int('limit must be an integer').min(1, 'limit must be 1 to 100').max(100, 'limit must be 1 to 100').default(50),
  cursor: z.string().min(1).max(500).optional().meta({ description: 'nextCursor of the previous page' }),
});
export const updateUserBodySchema = userUpdateSchema.meta({ id: 'UserUpdate', description: 'Give role and/or disabled' });
export const feedbackStatsQuerySchema = z.strictObject({
  days: z.coerce.number({ error: 'days must be a number' }).int('days must be an integer').min(1, 'days must be 1 to 366').max(366, 'days must be 1 to 366').default(30)
    .meta({ description: 'Window: the last N UTC days, today included' }),
  userId: id.optional().meta({ description: 'Only this user' }),
});
export const exportPreferencesQuerySchema = z.strictObject({
  userId: id.optional().meta({ description: 'Only this user' }),
  source: z.enum(PREFERENCE_SOURCES, { error: `source must be one of ${PREFERENCE_SOURCES.join(', ')}` }).optional(),
  since: z.iso.datetime({ error: 'since must be an ISO-8601 date-time, e.g. 2026-01-01T00:00:00Z' }).optional().meta({ description: 'Only pairs created at or after this time' }),
});

// ---- responses

const activityCountsSchema = z.object({ conversations: count, messages: count, feedback: count, comparisons: count, preferencePairs: count });
export const adminUserSchema = userSchema.extend({ disabled: z.boolean(), counts: activityCountsSchema }).meta({ id: 'AdminUser' });
export const adminUserPageSchema = z
  .object({ items: z.array(adminUserSchema), nextCursor: z.string().nullable(), total: count.meta({ description: 'Users on the server' }) })
  .meta({ id: 'AdminUserPage' });

const feedbackCountsSchema = z.object({
  up: count,
  down: count,
  comparisons: z.object({ A: count, B: count, tie: count, both_bad: count, undecided: count }),
  pairs: z.object({ ab: count, regenerate: count }),
});
export const feedbackStatsSchema = z
  .object({
    since: timestamp,
    until: timestamp,
    totals: feedbackCountsSchema,
    daily: z.array(feedbackCountsSchema.extend({ day: z.string().meta({ example: '2026-11-26' }) })).meta({ description: 'Every UTC day of the window, oldest first' }),
    users: z.array(feedbackCountsSchema.extend({ userId: id, username: z.string() })).meta({ description: 'Users with feedback in the window' }),
  })
  .meta({ id: 'FeedbackStats' });

const feedbackRecordSchema = z.object({
  messageId: id,
  value: z.enum(['up', 'down']),
  reasons: z.array(z.string()),
  comment: z.string().nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
});
const comparisonRecordSchema = z.object({
  id,
  conversationId: id,
  messageA: id,
  messageB: id,
  choice: z.enum(['A', 'B', 'tie', 'both_bad']).nullable(),
  createdAt: timestamp,
  decidedAt: timestamp.nullable(),
});
const preferencePairSchema = z.object({
  id,
  prompt: z.array(z.object({ role: z.string(), content: z.string() })),
  chosen: z.string(),
  rejected: z.string(),
  source: z.enum(PREFERENCE_SOURCES),
  chosenMessageId: id.nullable(),
  rejectedMessageId: id.nullable(),
  createdAt: timestamp,
});
export const userDataExportSchema = z
  .object({
    exportedAt: timestamp,
    user: userSchema,
    apiKeys: z.array(apiKeySchema),
    conversations: z.array(conversationSchema.extend({ messages: z.array(messageSchema) })),
    feedback: z.array(feedbackRecordSchema),
    comparisons: z.array(comparisonRecordSchema),
    preferencePairs: z.array(preferencePairSchema),
  })
  .meta({ id: 'UserDataExport' });

// ---- retraining and personalization (routes/training.ts; the jobs also go out on the admin socket)

export const trainingProgressSchema = z.object({
  phase: z.string(),
  step: z.number(),
  totalSteps: z.number(),
  loss: z.number().nullable(),
  accuracy: z.number().nullable(),
  margin: z.number().nullable(),
  etaSeconds: z.number().nullable(),
  done: z.number(),
  total: z.number(),
}).partial().passthrough();

export const trainingJobSchema = z.object({
  id: z.string(),
  status: z.enum(TRAINING_JOB_STATUSES),
  trigger: z.enum(TRAINING_JOB_TRIGGERS),
  scope: z.array(z.string()).nullable().describe('User ids of a per-user job; null: everyone'),
  createdAt: timestamp,
  startedAt: timestamp.nullable(),
  finishedAt: timestamp.nullable(),
  error: z.string().nullable(),
  progress: trainingProgressSchema,
  versionId: z.string().nullable(),
}).meta({ id: 'TrainingJob' });

export const userModelVersionSchema = z.object({
  id: z.string(),
  createdAt: timestamp,
  publishedAt: timestamp.nullable(),
  status: z.string().describe('training, published, rejected (by the held-out gate), failed or superseded'),
  current: z.boolean(),
  reason: z.string().nullable(),
  jobId: z.string().nullable(),
  dataThrough: timestamp.nullable().describe('The newest preference pair it was trained on'),
  config: z.record(z.string(), z.unknown()),
  metrics: z.record(z.string(), z.unknown()).describe('heldoutAccuracy, currentHeldoutAccuracy, perUser [{userId, username, accuracy, pairs}], pairs, seconds'),
}).meta({ id: 'UserModelVersion' });

export const retrainScheduleSchema = z.object({
  cron: z.string(),
  minNewPairs: z.number().int(),
  perUserMinPairs: z.number().int(),
  enabled: z.boolean(),
  nextRunAt: timestamp.nullable(),
}).meta({ id: 'RetrainSchedule' });

export const personalizationSchema = z.object({
  votes: z.number().int(),
  comparisons: z.number().int(),
  pairs: z.number().int(),
  personalized: z.boolean(),
  version: z.object({ id: z.string(), publishedAt: timestamp.nullable() }).nullable(),
  lastTrainedAt: timestamp.nullable(),
  heldoutAccuracy: z.number().nullable(),
  resetAt: timestamp.nullable(),
}).meta({ id: 'Personalization' });

// ---- mappers

const countsOf = (c: FeedbackCounts): z.input<typeof feedbackCountsSchema> => ({ up: c.up, down: c.down, comparisons: { ...c.comparisons }, pairs: { ...c.pairs } });

export const toAdminUser = (u: AdminUser): z.input<typeof adminUserSchema> => ({ ...toUser(u), disabled: u.disabled, counts: { ...u.counts } });
export const toAdminUserPage = (p: AdminUserPage): z.input<typeof adminUserPageSchema> => ({ items: p.items.map(toAdminUser), nextCursor: p.nextCursor, total: p.total });
export const toFeedbackStats = (s: FeedbackStats): z.input<typeof feedbackStatsSchema> => ({
  since: iso(s.since),
  until: iso(s.until),
  totals: countsOf(s.totals),
  daily: s.daily.map((d) => ({ day: d.day, ...countsOf(d) })),
  users: s.users.map((u) => ({ userId: u.userId, username: u.username, ...countsOf(u) })),
});
export const toUserDataExport = (e: UserDataExport): z.input<typeof userDataExportSchema> => ({
  exportedAt: iso(e.exportedAt),
  user: toUser(e.user),
  apiKeys: e.apiKeys.map(toApiKey),
  conversations: e.conversations.map((c) => ({ ...toConversation(c.conversation), messages: c.messages.map(toMessage) })),
  feedback: e.feedback.map((f) => ({ messageId: f.messageId, value: f.value, reasons: f.reasons, comment: f.comment, createdAt: iso(f.createdAt), updatedAt: iso(f.updatedAt) })),
  comparisons: e.comparisons.map((c) => ({
    id: c.id,
    conversationId: c.conversationId,
    messageA: c.messageA,
    messageB: c.messageB,
    choice: c.choice,
    createdAt: iso(c.createdAt),
    decidedAt: c.decidedAt === null ? null : iso(c.decidedAt),
  })),
  preferencePairs: e.preferencePairs.map((p) => ({
    id: p.id,
    prompt: p.prompt.map((m) => ({ role: String(m.role), content: String(m.content) })),
    chosen: p.chosen,
    rejected: p.rejected,
    source: p.source,
    chosenMessageId: p.chosenMessage,
    rejectedMessageId: p.rejectedMessage,
    createdAt: iso(p.createdAt),
  })),
});

export const toTrainingJob = (j: TrainingJobRecord): z.input<typeof trainingJobSchema> => trainingJobView(j);
export const toUserModelVersion = (v: UserModelVersionRecord & { current?: boolean }): z.input<typeof userModelVersionSchema> => ({
  id: v.id,
  createdAt: iso(v.createdAt),
  publishedAt: isoOrNull(v.publishedAt),
  status: v.status,
  current: v.current ?? false,
  reason: v.reason ?? null,
  jobId: v.jobId ?? null,
  dataThrough: isoOrNull(v.dataThrough),
  config: v.config,
  metrics: v.metrics,
});

/** What the retraining schedule reports (times in epoch milliseconds, as the service keeps them). */
export interface RetrainScheduleRecord {
  cron: string;
  minNewPairs: number;
  perUserMinPairs: number;
  enabled: boolean;
  nextRunAt: number | null;
}
export const toRetrainSchedule = (s: RetrainScheduleRecord): z.input<typeof retrainScheduleSchema> => ({
  cron: s.cron,
  minNewPairs: s.minNewPairs,
  perUserMinPairs: s.perUserMinPairs,
  enabled: s.enabled,
  nextRunAt: isoOrNull(s.nextRunAt),
});

export const toPersonalization = (p: UserPersonalization): z.input<typeof personalizationSchema> => ({
  votes: p.votes,
  comparisons: p.comparisons,
  pairs: p.pairs,
  personalized: p.personalized,
  version: p.version && { id: p.version.id, publishedAt: isoOrNull(p.version.publishedAt) },
  lastTrainedAt: isoOrNull(p.lastTrainedAt),
  heldoutAccuracy: p.heldoutAccuracy,
  resetAt: isoOrNull(p.resetAt),
});
