// comparisons: A/B pairs of sibling answers and the user's choice.
import type { Db } from './connection.ts';

export const COMPARISON_CHOICES = ['A', 'B', 'tie', 'both_bad'] as const;
export type ComparisonChoice = (typeof COMPARISON_CHOICES)[number];

export interface ComparisonRecord {
  id: string;
  userId: string;
  conversationId: string;
  messageA: string;
  messageB: string;
  choice: ComparisonChoice | null;
  createdAt: number;
  decidedAt: number | null;
}

interface ComparisonRow {
  id: string;
  user_id: string;
  conversation_id: string;
  message_a: string;
  message_b: string;
  choice: ComparisonChoice | null;
  created_at: number;
  decided_at: number | null;
}

const toRecord = (r: ComparisonRow): ComparisonRecord => ({
  id: r.id,
  userId: r.user_id,
  conversationId: r.conversation_id,
  messageA: r.message_a,
  messageB: r.message_b,
  choice: r.choice,
  createdAt: r.created_at,
  decidedAt: r.decided_at,
});

export type ComparisonRepository = ReturnType<typeof createComparisonRepository>;

export function createComparisonRepository(db: Db) {
  const insert = db.prepare<[ComparisonRow]>(
    `INSERT INTO comparisons (id, user_id, conversation_id, message_a, message_b, choice, created_at, decided_at)
     VALUES (@id, @user_id, @conversation_id, @message_a, @message_b, @choice, @created_at, @decided_at)`,
  );
  const byIdForUser = db.prepare<[string, string], ComparisonRow>('SELECT * FROM comparisons WHERE id = ? AND user_id = ?');
  const byConversation = db.prepare<[string], ComparisonRow>('SELECT * FROM comparisons WHERE conversation_id = ? ORDER BY created_at, id');
  const byUser = db.prepare<[string], ComparisonRow>('SELECT * FROM comparisons WHERE user_id = ? ORDER BY created_at, id');
  const decide = db.prepare<[ComparisonChoice, number, string, string]>('UPDATE comparisons SET choice = ?, decided_at = ? WHERE id = ? AND user_id = ?');

  return {
    insert(c: ComparisonRecord): void {
      insert.run({
        id: c.id,
        user_id: c.userId,
        conversation_id: c.conversationId,
        message_a: c.messageA,
        message_b: c.messageB,
        choice: c.choice,
        created_at: c.createdAt,
        decided_at: c.decidedAt,
      });
    },
    findForUser(id: string, userId: string): ComparisonRecord | undefined {
      const r = byIdForUser.get(id, userId);
      return r && toRecord(r);
    },
    listForConversation: (conversationId: string): ComparisonRecord[] => byConversation.all(conversationId).map(toRecord),
    listForUser: (userId: string): ComparisonRecord[] => byUser.all(userId).map(toRecord),
    decide: (id: string, userId: string, choice: ComparisonChoice, now: number): boolean => decide.run(choice, now, id, userId).changes === 1,
  };
}
