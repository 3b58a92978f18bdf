// Conversations of one user. Every call takes the owner's id: someone else's conversation is
// reported exactly like a missing one.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ConversationCursor, ConversationRecord, MessageRecord } from '../db/conversations.ts';
import type { FeedbackRecord } from '../db/feedback.ts';
import type { ComparisonRecord } from '../db/comparisons.ts';

// What transports need of the records, without reaching into db/.
export { MESSAGE_ROLES, MESSAGE_STATUSES, type ConversationRecord, type MessageRecord } from '../db/conversations.ts';
import { NotFound, ValidationError } from '../errors.ts';
import type { ServiceContext } from './context.ts';

export const DEFAULT_CONVERSATION_TITLE = 'New conversation';
export const titleSchema = z.string().trim().min(1, 'title must not be empty').max(200, 'title must be at most 200 characters');

export interface ConversationPage {
  items: ConversationRecord[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

export interface ConversationWithMessages {
  conversation: ConversationRecord;
  messages: MessageRecord[];
  /** The owner's own votes on these messages. */
  feedback: FeedbackRecord[];
  /** A/B comparisons made in this conversation, decided or not, so a client can show them after a reload. */
  comparisons: ComparisonRecord[];
}

const cursorSchema = z.tuple([z.number().int().nonnegative(), z.string().min(1)]);

export const encodeCursor = (c: ConversationCursor): string => Buffer.from(JSON.stringify([c.updatedAt, c.id])).toString('base64url');

export function decodeCursor(cursor: string): ConversationCursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const r = cursorSchema.safeParse(parsed);
  if (!r.success) throw new ValidationError('invalid cursor: pass back the nextCursor of the previous page', { issues: [{ path: 'cursor', message: 'invalid cursor' }] });
  return { updatedAt: r.data[0], id: r.data[1] };
}

export type ConversationService = ReturnType<typeof createConversationService>;

export function createConversationService(ctx: ServiceContext) {
  const { repos, now } = ctx;
  const owned = (userId: string, id: string): ConversationRecord => {
    const c = repos.conversations.findForUser(id, userId);
    if (!c) throw new NotFound('no such conversation');
    return c;
  };

  return {
    create(userId: string, input: { title?: string }): ConversationRecord {
      const t = now();
      const c: ConversationRecord = { id: randomUUID(), userId, title: input.title ?? DEFAULT_CONVERSATION_TITLE, createdAt: t, updatedAt: t };
      repos.conversations.insert(c);
      return c;
    },

    /** Most recently active first. */
    list(userId: string, input: { limit: number; cursor?: string; q?: string }): ConversationPage {
      const after = input.cursor === undefined ? undefined : decodeCursor(input.cursor);
      const rows = repos.conversations.listForUser(userId, input.limit + 1, after, input.q);
      const items = rows.slice(0, input.limit);
      const last = items.at(-1);
      return { items, nextCursor: rows.length > input.limit && last ? encodeCursor(last) : null };
    },

    get(userId: string, id: string): ConversationWithMessages {
      const conversation = owned(userId, id);
      return {
        conversation,
        messages: repos.conversations.listMessages(id),
        feedback: repos.feedback.listForConversation(userId, id),
        comparisons: repos.comparisons.listForConversation(id).filter((c) => c.userId === userId),
      };
    },

    rename(userId: string, id: string, title: string): ConversationRecord {
      if (!repos.conversations.rename(id, userId, title, now())) throw new NotFound('no such conversation');
      return owned(userId, id);
    },

    /** Deletes the conversation and everything hanging off it (messages, feedback, comparisons, pairs). */
    delete(userId: string, id: string): void {
      if (!repos.conversations.deleteForUser(id, userId)) throw new NotFound('no such conversation');
    },
  };
}
