// feedback: one thumbs-up/down per (user, message), with optional reasons and a comment.
import type { Db } from './connection.ts';
import { fromJson, toJson } from './json.ts';

export type FeedbackValue = 'up' | 'down';

export interface FeedbackRecord {
  messageId: string;
  userId: string;
  value: FeedbackValue;
  reasons: string[];
  comment: string | null;
  createdAt: number;
  updatedAt: number;
}

interface FeedbackRow {
  message_id: string;
  user_id: string;
  value: FeedbackValue;
  reasons: string;
  comment: string | null;
  created_at: number;
  updated_at: number;
}

const toRecord = (r: FeedbackRow): FeedbackRecord => ({
  messageId: r.message_id,
  userId: r.user_id,
  value: r.value,
  reasons: fromJson<string[]>(r.reasons, 'feedback.reasons'),
  comment: r.comment,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export type FeedbackRepository = ReturnType<typeof createFeedbackRepository>;

export function createFeedbackRepository(db: Db) {
  // A second vote on the same message replaces the first, keeping its created_at.
  const upsert = db.prepare<[FeedbackRow]>(
    `INSERT INTO feedback (message_id, user_id, value, reasons, comment, created_at, updated_at)
     VALUES (@message_id, @user_id, @value, @reasons, @comment, @created_at, @updated_at)
     ON CONFLICT (user_id, message_id) DO UPDATE SET
       value = excluded.value, reasons = excluded.reasons, comment = excluded.comment, updated_at = excluded.updated_at`,
  );
  const get = db.prepare<[string, string], FeedbackRow>('SELECT * FROM feedback WHERE user_id = ? AND message_id = ?');
  const remove = db.prepare<[string, string]>('DELETE FROM feedback WHERE user_id = ? AND message_id = ?');
  const byUser = db.prepare<[string], FeedbackRow>('SELECT * FROM feedback WHERE user_id = ? ORDER BY created_at, message_id');
  const byConversation = db.prepare<[string, string], FeedbackRow>(
    'SELECT f.* FROM feedback f JOIN messages m ON m.id = f.message_id WHERE f.user_id = ? AND m.conversation_id = ?',
  );

  return {
    upsert(f: FeedbackRecord): FeedbackRecord {
      upsert.run({
        message_id: f.messageId,
        user_id: f.userId,
        value: f.value,
        reasons: toJson(f.reasons),
        comment: f.comment,
        created_at: f.createdAt,
        updated_at: f.updatedAt,
      });
      return toRecord(get.get(f.userId, f.messageId)!);
    },
    find(userId: string, messageId: string): FeedbackRecord | undefined {
      const r = get.get(userId, messageId);
      return r && toRecord(r);
    },
    delete: (userId: string, messageId: string): boolean => remove.run(userId, messageId).changes === 1,
    listForUser: (userId: string): FeedbackRecord[] => byUser.all(userId).map(toRecord),
    /** The user's votes on the messages of one conversation. */
    listForConversation: (userId: string, conversationId: string): FeedbackRecord[] => byConversation.all(userId, conversationId).map(toRecord),
  };
}
