// The JSON shapes of the admin API and of the data exports (see schemas.ts for the conventions):
// request schemas validated at the edge, response schemas documented in OpenAPI, and their mappers.
import { z } from 'zod';
import type { AdminUser, AdminUserPage, FeedbackCounts, FeedbackStats } from '../services/admin.ts';
import { userUpdateSchema } from '../services/admin.ts';
import { PREFERENCE_SOURCES, type UserDataExport } from '../services/export.ts';
import { iso } from '../services/views.ts';
import { apiKeySchema, conversationSchema, messageSchema, toApiKey, toConversation, toMessage, toUser, userSchema } from './schemas.ts';

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
