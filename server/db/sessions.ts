// sessions: sign-in sessions keyed by the SHA-256 of their token.
import type { Db } from './connection.ts';

export interface SessionRecord {
  tokenHash: string;
  userId: string;
  createdAt: number;
  expiresAt: number;
}

interface SessionRow {
  token_hash: string;
  user_id: string;
  created_at: number;
  expires_at: number;
}

export type SessionRepository = ReturnType<typeof createSessionRepository>;

export function createSessionRepository(db: Db) {
  const insert = db.prepare<[SessionRow]>('INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (@token_hash, @user_id, @created_at, @expires_at)');
  const byHash = db.prepare<[string, number], SessionRow>('SELECT * FROM sessions WHERE token_hash = ? AND expires_at > ?');
  const remove = db.prepare<[string]>('DELETE FROM sessions WHERE token_hash = ?');
  const removeExpired = db.prepare<[number]>('DELETE FROM sessions WHERE expires_at <= ?');
  const removeForUser = db.prepare<[string]>('DELETE FROM sessions WHERE user_id = ?');
  const removeOthersForUser = db.prepare<[string, string]>('DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?');

  return {
    insert(s: SessionRecord): void {
      insert.run({ token_hash: s.tokenHash, user_id: s.userId, created_at: s.createdAt, expires_at: s.expiresAt });
    },
    /** The session with this token hash if it has not expired at `now`. */
    findLive(tokenHash: string, now: number): SessionRecord | undefined {
      const r = byHash.get(tokenHash, now);
      return r && { tokenHash: r.token_hash, userId: r.user_id, createdAt: r.created_at, expiresAt: r.expires_at };
    },
    delete: (tokenHash: string): boolean => remove.run(tokenHash).changes === 1,
    deleteExpired: (now: number): number => removeExpired.run(now).changes,
    deleteForUser: (userId: string): number => removeForUser.run(userId).changes,
    /** Every session of the user but the one with `keepTokenHash`; returns how many ended. */
    deleteOthersForUser: (userId: string, keepTokenHash: string): number => removeOthersForUser.run(userId, keepTokenHash).changes,
  };
}
