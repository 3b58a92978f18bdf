// Thumbs on answers. A vote is on an assistant message of one of the user's own conversations; a
// second vote replaces the first, and a vote can be withdrawn.
//
// Votes on sibling answers (same parent: regenerations) become preference pairs: every answer voted
// up against every sibling voted down, with the conversation before them as the prompt. Pairs of
// source 'regenerate' are derived data: whenever a vote changes or is withdrawn, the pairs touching
// that answer are dropped and derived again, so they always match the current votes.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ConversationRecord, MessageRecord } from '../db/conversations.ts';
import type { FeedbackRecord } from '../db/feedback.ts';
import type { JsonObject } from '../db/json.ts';
import { NotFound, ValidationError } from '../errors.ts';
import { metrics } from '../metrics.ts';
import type { ServiceContext } from './context.ts';
import { pathTo } from './history.ts';

export type { FeedbackRecord } from '../db/feedback.ts';

export const FEEDBACK_VALUES = ['up', 'down'] as const;
export const FEEDBACK_REASONS = [
  'helpful',
  'accurate',
  'clear',
  'concise',
  'detailed',
  'creative',
  'good_tone',
  'unhelpful',
  'inaccurate',
  'unclear',
  'too_long',
  'too_short',
  'off_topic',
  'bad_tone',
  'unsafe',
  'other',
] as const;
export const MAX_FEEDBACK_COMMENT_CHARS = 2000;

export const feedbackInputSchema = z.strictObject({
  value: z.enum(FEEDBACK_VALUES, { error: 'value must be "up" or "down"' }),
  reasons: z
    .array(z.enum(FEEDBACK_REASONS, { error: `each reason must be one of ${FEEDBACK_REASONS.join(', ')}` }))
    .max(FEEDBACK_REASONS.length)
    .default([])
    .transform((r) => [...new Set(r)]),
  comment: z.string().trim().max(MAX_FEEDBACK_COMMENT_CHARS, `comment must be at most ${MAX_FEEDBACK_COMMENT_CHARS} characters`).nullable().optional()
    .transform((c) => (c ? c : null)),
});
export type FeedbackInput = z.output<typeof feedbackInputSchema>;

export interface FeedbackResult {
  feedback: FeedbackRecord;
  /** Preference pairs this answer is now part of (source 'regenerate'). */
  preferencePairs: number;
}

export type FeedbackService = ReturnType<typeof createFeedbackService>;

export function createFeedbackService(ctx: ServiceContext) {
  const { db, repos, now } = ctx;

  const ownedAnswer = (userId: string, messageId: string): { conversation: ConversationRecord; message: MessageRecord } => {
    const message = repos.conversations.findMessage(messageId);
    const conversation = message && repos.conversations.findForUser(message.conversationId, userId);
    if (!message || !conversation) throw new NotFound('no such message');
    if (message.role !== 'assistant') throw new ValidationError('only answers (assistant messages) take feedback', { role: message.role }, 'not_an_answer');
    return { conversation, message };
  };

  /** Drops and derives again the 'regenerate' pairs of `message` from the current votes on it and its siblings. */
  function rederivePairs(userId: string, message: MessageRecord): number {
    repos.preferencePairs.deleteForMessage(userId, message.id, 'regenerate');
    const mine = repos.feedback.find(userId, message.id);
    if (!mine || message.parentId === null) return 0;
    const all = repos.conversations.listMessages(message.conversationId);
    const siblings = all.filter((m) => m.parentId === message.parentId && m.role === 'assistant' && m.id !== message.id);
    const prompt: JsonObject[] = pathTo(all, message.parentId).map((m) => ({ role: m.role, content: m.content }));
    let created = 0;
    for (const sibling of siblings) {
      const theirs = repos.feedback.find(userId, sibling.id);
      if (!theirs || theirs.value === mine.value) continue;
      const [chosen, rejected] = mine.value === 'up' ? [message, sibling] : [sibling, message];
      repos.preferencePairs.insert({
        id: randomUUID(),
        userId,
        prompt,
        chosen: chosen.content,
        rejected: rejected.content,
        source: 'regenerate',
        chosenMessage: chosen.id,
        rejectedMessage: rejected.id,
        createdAt: now(),
      });
      created++;
    }
    return created;
  }

  const voteTx = db.transaction((userId: string, message: MessageRecord, input: FeedbackInput): FeedbackResult => {
    const t = now();
    const existing = repos.feedback.find(userId, message.id);
    const feedback = repos.feedback.upsert({
      messageId: message.id,
      userId,
      value: input.value,
      reasons: input.reasons,
      comment: input.comment,
      createdAt: existing?.createdAt ?? t,
      updatedAt: t,
    });
    return { feedback, preferencePairs: rederivePairs(userId, message) };
  });

  const withdrawTx = db.transaction((userId: string, message: MessageRecord): boolean => {
    if (!repos.feedback.delete(userId, message.id)) return false;
    rederivePairs(userId, message);
    return true;
  });

  return {
    /** Sets (or replaces) the user's vote on an answer. */
    vote(userId: string, messageId: string, input: FeedbackInput): FeedbackResult {
      const result = voteTx(userId, ownedAnswer(userId, messageId).message, input);
      metrics.feedback('thumbs', input.value);
      return result;
    },

    get(userId: string, messageId: string): FeedbackResult {
      ownedAnswer(userId, messageId);
      const feedback = repos.feedback.find(userId, messageId);
      if (!feedback) throw new NotFound('no feedback on this message', 'no_feedback');
      return { feedback, preferencePairs: repos.preferencePairs.listForMessage(userId, messageId).filter((p) => p.source === 'regenerate').length };
    },

    /** Withdraws the vote, and the preference pairs it made. */
    withdraw(userId: string, messageId: string): void {
      const { message } = ownedAnswer(userId, messageId);
      if (!withdrawTx(userId, message)) throw new NotFound('no feedback on this message', 'no_feedback');
      metrics.feedback('thumbs', 'withdrawn');
    },
  };
}
