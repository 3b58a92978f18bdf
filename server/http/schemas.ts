// The JSON shapes of the API: request schemas (validated at the edge) and response schemas
// (documented in OpenAPI, checked in tests), with the mappers from service records to responses.
// Times go out as ISO-8601 strings; ids are UUIDs.
import { z } from 'zod';
import { conversationView, iso, messageView } from '../services/views.ts';
import { type AccountUser, type ApiKeyInfo, credentialsSchema, passwordSchema, ROLES, type SignedIn } from '../services/auth.ts';
import {
  type ConversationPage,
  type ConversationRecord,
  type ConversationWithMessages,
  MESSAGE_ROLES,
  MESSAGE_STATUSES,
  type MessageRecord,
  titleSchema,
} from '../services/conversations.ts';

import { COMPARISON_CHOICES } from '../services/chat.ts';
import { SESSION_COOKIE } from '../services/credentials.ts';
import { FEEDBACK_REASONS, FEEDBACK_VALUES, type FeedbackResult, feedbackInputSchema } from '../services/feedback.ts';

const timestamp = z.iso.datetime();
const id = z.uuid();

// ---- errors

export const errorResponseSchema = z
  .object({
    error: z.object({
      code: z.string().meta({ example: 'validation_failed' }),
      message: z.string(),
      details: z.record(z.string(), z.unknown()),
    }),
  })
  .meta({ id: 'Error', description: 'Every error response has this shape.' });

// ---- requests

export const credentialsBodySchema = credentialsSchema.meta({ id: 'Credentials' });
export const idParamsSchema = z.strictObject({ id: id.meta({ description: 'Resource id (UUID)' }) });
export const createApiKeyBodySchema = z.strictObject({
  name: z.string().trim().min(1, 'name must not be empty').max(100, 'name must be at most 100 characters').default('API key'),
});
export const deleteAccountBodySchema = z.strictObject({ password: passwordSchema.meta({ description: 'The account password, as confirmation' }) });
export const changePasswordBodySchema = z
  .strictObject({
    // Any current password is accepted for checking (the length rule is for new ones); the cap keeps argon2 cheap.
    currentPassword: z.string().min(1, 'currentPassword must not be empty').max(256, 'currentPassword must be at most 256 characters')
      .meta({ description: 'The password in force now, as proof of ownership' }),
    newPassword: passwordSchema.meta({ description: 'At least 8 characters, not a common or easily guessed password' }),
  })
  .meta({ id: 'ChangePassword' });
export const createConversationBodySchema = z.strictObject({ title: titleSchema.optional() });
export const renameConversationBodySchema = z.strictObject({ title: titleSchema });
export const listConversationsQuerySchema = z.strictObject({
  limit: z.coerce.number({ error: 'limit must be a number' }).int('limit must be an integer').min(1, 'limit must be 1 to 100').max(100, 'limit must be 1 to 100').default(20),
  cursor: z.string().min(1).max(500).optional().meta({ description: 'nextCursor of the previous page' }),
  q: z.string().trim().min(1, 'q must not be blank').max(200, 'q is at most 200 characters').optional()
    .meta({ description: 'Only conversations whose title or any message contains this text (case-insensitive for ASCII)' }),
});

export const feedbackBodySchema = feedbackInputSchema.meta({ id: 'FeedbackInput' });

// ---- responses

export const userSchema = z
  .object({ id, username: z.string(), role: z.enum(ROLES), createdAt: timestamp })
  .meta({ id: 'User' });
export const authResultSchema = z
  .object({
    token: z.string().meta({ description: `Session token: send as \`Authorization: Bearer <token>\`; also set as the httpOnly ${SESSION_COOKIE} cookie` }),
    expiresAt: timestamp,
    user: userSchema,
  })
  .meta({ id: 'AuthResult' });
export const apiKeySchema = z
  .object({ id, prefix: z.string().meta({ example: 'atn_AbCdEfGh' }), name: z.string(), createdAt: timestamp, revokedAt: timestamp.nullable() })
  .meta({ id: 'ApiKey' });
export const apiKeyListSchema = z.object({ items: z.array(apiKeySchema) });
export const createdApiKeySchema = z
  .object({
    key: z.string().meta({ description: 'The full key, shown only in this response: send as `Authorization: Bearer <key>`' }),
    id,
    prefix: z.string(),
    name: z.string(),
    createdAt: timestamp,
  })
  .meta({ id: 'CreatedApiKey' });
export const conversationSchema = z.object({ id, title: z.string(), createdAt: timestamp, updatedAt: timestamp }).meta({ id: 'Conversation' });
export const conversationPageSchema = z
  .object({ items: z.array(conversationSchema), nextCursor: z.string().nullable().meta({ description: 'Cursor of the next page; null on the last page' }) })
  .meta({ id: 'ConversationPage' });
export const messageSchema = z
  .object({
    id,
    parentId: id.nullable(),
    role: z.enum(MESSAGE_ROLES),
    content: z.string(),
    status: z.enum(MESSAGE_STATUSES),
    finishReason: z.string().nullable(),
    modelId: z.string().nullable(),
    userModelVersion: z.string().nullable(),
    sampling: z.record(z.string(), z.unknown()).nullable(),
    seed: z.number().int().nullable(),
    createdAt: timestamp,
  })
  .meta({ id: 'Message' });
export const messageFeedbackSchema = z
  .object({ value: z.enum(FEEDBACK_VALUES), reasons: z.array(z.enum(FEEDBACK_REASONS)), comment: z.string().nullable(), updatedAt: timestamp })
  .meta({ id: 'MessageFeedback', description: 'Your own vote on this message' });
export const conversationMessageSchema = messageSchema
  .extend({ feedback: messageFeedbackSchema.nullable().meta({ description: 'Your vote on this answer; null when none (and on user messages)' }) })
  .meta({ id: 'ConversationMessage' });
export const conversationComparisonSchema = z
  .object({
    id,
    messageA: id,
    messageB: id,
    choice: z.enum(COMPARISON_CHOICES).nullable().meta({ description: 'null while undecided' }),
    createdAt: timestamp,
    decidedAt: timestamp.nullable(),
  })
  .meta({ id: 'ConversationComparison', description: 'An A/B comparison of two sibling answers' });
export const conversationDetailSchema = conversationSchema
  .extend({
    messages: z.array(conversationMessageSchema).meta({ description: 'Every message of every branch, oldest first; parentId links the tree' }),
    comparisons: z.array(conversationComparisonSchema).meta({ description: 'A/B comparisons in this conversation, oldest first, decided or not' }),
  })
  .meta({ id: 'ConversationDetail' });
export const feedbackSchema = z
  .object({
    messageId: id,
    value: z.enum(FEEDBACK_VALUES),
    reasons: z.array(z.enum(FEEDBACK_REASONS)),
    comment: z.string().nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
    preferencePairs: z.number().int().nonnegative().meta({ description: 'Preference pairs this answer is now part of: its up/down votes against sibling answers of the opposite vote' }),
  })
  .meta({ id: 'Feedback' });
export const openApiDocumentSchema = z.record(z.string(), z.unknown()).meta({ description: 'An OpenAPI 3.1 document' });
export const healthSchema = z.object({ status: z.literal('ok') });
export const readinessSchema = z.object({
  status: z.enum(['ready', 'not_ready']),
  db: z.boolean(),
  model: z.boolean(),
  cause: z.object({ code: z.string().meta({ example: 'database_deleted' }), message: z.string() }).optional().meta({ description: "Why the database cannot take durable writes (only when db is false)" }),
});

// ---- mappers

export const toUser = (u: AccountUser): z.input<typeof userSchema> => ({ id: u.id, username: u.username, role: u.role, createdAt: iso(u.createdAt) });
export const toAuthResult = (s: SignedIn): z.input<typeof authResultSchema> => ({ token: s.token, expiresAt: iso(s.expiresAt), user: toUser(s.user) });
export const toApiKey = (k: ApiKeyInfo): z.input<typeof apiKeySchema> => ({
  id: k.id,
  prefix: k.prefix,
  name: k.name,
  createdAt: iso(k.createdAt),
  revokedAt: k.revokedAt === null ? null : iso(k.revokedAt),
});
export const toConversation = (c: ConversationRecord): z.input<typeof conversationSchema> => conversationView(c);
export const toConversationPage = (p: ConversationPage): z.input<typeof conversationPageSchema> => ({ items: p.items.map(toConversation), nextCursor: p.nextCursor });
export const toMessage = (m: MessageRecord): z.input<typeof messageSchema> => {
  const { conversationId: _conversationId, ...view } = messageView(m);
  return view;
};
export const toConversationDetail = (d: ConversationWithMessages): z.input<typeof conversationDetailSchema> => {
  const votes = new Map(d.feedback.map((f) => [f.messageId, f]));
  return {
    ...toConversation(d.conversation),
    messages: d.messages.map((m) => {
      const f = votes.get(m.id);
      const feedback = f ? { value: f.value, reasons: f.reasons as z.input<typeof messageFeedbackSchema>['reasons'], comment: f.comment, updatedAt: iso(f.updatedAt) } : null;
      return { ...toMessage(m), feedback };
    }),
    comparisons: d.comparisons.map((c) => ({
      id: c.id, messageA: c.messageA, messageB: c.messageB, choice: c.choice, createdAt: iso(c.createdAt), decidedAt: c.decidedAt === null ? null : iso(c.decidedAt),
    })),
  };
};
export const toFeedback = (f: FeedbackResult): z.input<typeof feedbackSchema> => ({
  messageId: f.feedback.messageId,
  value: f.feedback.value,
  reasons: f.feedback.reasons as z.input<typeof feedbackSchema>['reasons'],
  comment: f.feedback.comment,
  createdAt: iso(f.feedback.createdAt),
  updatedAt: iso(f.feedback.updatedAt),
  preferencePairs: f.preferencePairs,
});
