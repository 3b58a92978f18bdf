// The JSON shapes of the socket.io events: client → server payloads (validated with zod before any
// service runs) and the server → client views of stored records. Times go out as ISO-8601 strings,
// exactly as over HTTP.
import { z } from 'zod';
import type { ConversationRecord, MessageRecord } from '../services/conversations.ts';
import { COMPARISON_CHOICES, samplingInputSchema } from '../services/chat.ts';

const id = z.uuid();

export const sendPayloadSchema = z.strictObject({
  conversationId: id.optional(),
  // The length limit is the service's (a 413-style error), so any string passes here.
  content: z.string().trim().min(1, 'content must not be empty'),
  sampling: samplingInputSchema.optional(),
  compare: z.boolean({ error: 'compare must be true or false' }).optional(),
});
export const choosePayloadSchema = z.strictObject({
  comparisonId: id,
  choice: z.enum(COMPARISON_CHOICES, { error: `choice must be one of ${COMPARISON_CHOICES.join(', ')}` }),
});
export const messageRefPayloadSchema = z.strictObject({ messageId: id });
export const regeneratePayloadSchema = messageRefPayloadSchema.extend({ sampling: samplingInputSchema.optional() });

const iso = (ms: number): string => new Date(ms).toISOString();

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
