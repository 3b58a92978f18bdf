// The JSON shapes of the socket.io events: client → server payloads (validated with zod before any
// service runs) and the server → client views of stored records. Times go out as ISO-8601 strings,
// exactly as over HTTP.
import { z } from 'zod';
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

export { type ConversationView, type MessageView, conversationView, messageView } from '../services/views.ts';
