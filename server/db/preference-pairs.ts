// preference_pairs: (prompt, chosen, rejected) triples a user's votes produced, the P-DPO training data.
import type { Db } from './connection.ts';
import { fromJson, type JsonObject, toJson } from './json.ts';

export type PreferenceSource = 'ab' | 'regenerate';

export interface PreferencePairRecord {
  id: string;
  userId: string;
  /** The conversation before the answer, as chat messages ({role, content}). */
  prompt: JsonObject[];
  chosen: string;
  rejected: string;
  source: PreferenceSource;
  chosenMessage: string | null;
  rejectedMessage: string | null;
  createdAt: number;
}

interface PreferencePairRow {
  id: string;
  user_id: string;
  prompt: string;
  chosen: string;
  rejected: string;
  source: PreferenceSource;
  chosen_message: string | null;
  rejected_message: string | null;
  created_at: number;
}

const toRecord = (r: PreferencePairRow): PreferencePairRecord => ({
  id: r.id,
  userId: r.user_id,
  prompt: fromJson<JsonObject[]>(r.prompt, 'preference_pairs.prompt'),
  chosen: r.chosen,
  rejected: r.rejected,
  source: r.source,
  chosenMessage: r.chosen_message,
  rejectedMessage: r.rejected_message,
  createdAt: r.created_at,
});

export type PreferencePairRepository = ReturnType<typeof createPreferencePairRepository>;

export function createPreferencePairRepository(db: Db) {
  const insert = db.prepare<[PreferencePairRow]>(
    `INSERT INTO preference_pairs (id, user_id, prompt, chosen, rejected, source, chosen_message, rejected_message, created_at)
     VALUES (@id, @user_id, @prompt, @chosen, @rejected, @source, @chosen_message, @rejected_message, @created_at)`,
  );
  const byUser = db.prepare<[string], PreferencePairRow>('SELECT * FROM preference_pairs WHERE user_id = ? ORDER BY created_at, id');
  const countByUser = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM preference_pairs WHERE user_id = ?');
  const removeForMessage = db.prepare<{ user_id: string; message_id: string; source: PreferenceSource }>(
    'DELETE FROM preference_pairs WHERE user_id = @user_id AND source = @source AND (chosen_message = @message_id OR rejected_message = @message_id)',
  );
  const page = db.prepare<{ after_created: number; after_id: string; user_id: string | null; source: string | null; since: number; limit: number }, PreferencePairRow>(
    `SELECT * FROM preference_pairs
     WHERE (created_at > @after_created OR (created_at = @after_created AND id > @after_id))
       AND (@user_id IS NULL OR user_id = @user_id) AND (@source IS NULL OR source = @source) AND created_at >= @since
     ORDER BY created_at, id LIMIT @limit`,
  );
  const byMessage = db.prepare<{ user_id: string; message_id: string }, PreferencePairRow>(
    'SELECT * FROM preference_pairs WHERE user_id = @user_id AND (chosen_message = @message_id OR rejected_message = @message_id) ORDER BY created_at, id',
  );

  return {
    insert(p: PreferencePairRecord): void {
      insert.run({
        id: p.id,
        user_id: p.userId,
        prompt: toJson(p.prompt),
        chosen: p.chosen,
        rejected: p.rejected,
        source: p.source,
        chosen_message: p.chosenMessage,
        rejected_message: p.rejectedMessage,
        created_at: p.createdAt,
      });
    },
    listForUser: (userId: string): PreferencePairRecord[] => byUser.all(userId).map(toRecord),
    countForUser: (userId: string): number => countByUser.get(userId)!.n,
    /** Pairs of one source that a message is either side of (a vote changed or was withdrawn). */
    deleteForMessage: (userId: string, messageId: string, source: PreferenceSource): number => removeForMessage.run({ user_id: userId, message_id: messageId, source }).changes,
    /** Oldest first, `limit` pairs after the cursor, optionally of one user, one source, and since a time (export). */
    listPage(filter: { userId?: string; source?: PreferenceSource; since?: number }, limit: number, after?: { createdAt: number; id: string }): PreferencePairRecord[] {
      return page
        .all({ after_created: after?.createdAt ?? -1, after_id: after?.id ?? '', user_id: filter.userId ?? null, source: filter.source ?? null, since: filter.since ?? 0, limit })
        .map(toRecord);
    },
    listForMessage: (userId: string, messageId: string): PreferencePairRecord[] => byMessage.all({ user_id: userId, message_id: messageId }).map(toRecord),
  };
}
