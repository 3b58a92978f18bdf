// Read-only aggregates over the feedback tables for the admin API: per-user counts and daily buckets.
// Days are UTC calendar days ('YYYY-MM-DD'), bucketed by each row's created_at.
import type { Db } from './connection.ts';

export interface UserActivityCounts {
  conversations: number;
  messages: number;
  feedback: number;
  comparisons: number;
  preferencePairs: number;
}

/** One row per (day, kind, value) with its count; kind is 'thumbs' | 'comparison' | 'pair'. */
export interface BucketRow {
  day: string;
  userId: string;
  kind: 'thumbs' | 'comparison' | 'pair';
  value: string;
  n: number;
}

export type StatsRepository = ReturnType<typeof createStatsRepository>;

export function createStatsRepository(db: Db) {
  const counts = db.prepare<[string, string, string, string, string], UserActivityCounts>(
    `SELECT
       (SELECT count(*) FROM conversations WHERE user_id = ?) AS conversations,
       (SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.user_id = ?) AS messages,
       (SELECT count(*) FROM feedback WHERE user_id = ?) AS feedback,
       (SELECT count(*) FROM comparisons WHERE user_id = ?) AS comparisons,
       (SELECT count(*) FROM preference_pairs WHERE user_id = ?) AS preferencePairs`,
  );
  // Undecided comparisons count under 'undecided'.
  const buckets = db.prepare<{ since: number; until: number; user_id: string | null }, BucketRow>(
    `SELECT date(created_at / 1000, 'unixepoch') AS day, user_id AS userId, 'thumbs' AS kind, value, count(*) AS n
       FROM feedback WHERE created_at >= @since AND created_at < @until AND (@user_id IS NULL OR user_id = @user_id) GROUP BY day, user_id, value
     UNION ALL
     SELECT date(created_at / 1000, 'unixepoch'), user_id, 'comparison', coalesce(choice, 'undecided'), count(*)
       FROM comparisons WHERE created_at >= @since AND created_at < @until AND (@user_id IS NULL OR user_id = @user_id) GROUP BY 1, 2, 4
     UNION ALL
     SELECT date(created_at / 1000, 'unixepoch'), user_id, 'pair', source, count(*)
       FROM preference_pairs WHERE created_at >= @since AND created_at < @until AND (@user_id IS NULL OR user_id = @user_id) GROUP BY 1, 2, 4`,
  );
  const jobsByStatus = db.prepare<[], { status: string; n: number }>('SELECT status, count(*) AS n FROM training_jobs GROUP BY status ORDER BY status');
  return {
    /** Training jobs per status (the metrics gauge). */
    trainingJobsByStatus: (): Array<{ status: string; n: number }> => jobsByStatus.all(),
    countsForUser: (userId: string): UserActivityCounts => counts.get(userId, userId, userId, userId, userId)!,
    /** Feedback, comparisons and pairs created in [since, until), by UTC day, user, kind and value. */
    buckets: (since: number, until: number, userId?: string): BucketRow[] => buckets.all({ since, until, user_id: userId ?? null }),
  };
}
