// api_keys: long-lived bearer credentials for scripts and OpenAI-compatible clients.
import type { Db } from './connection.ts';

export interface ApiKeyRecord {
  id: string;
  userId: string;
  keyHash: string;
  prefix: string;
  name: string;
  createdAt: number;
  revokedAt: number | null;
}

interface ApiKeyRow {
  id: string;
  user_id: string;
  key_hash: string;
  prefix: string;
  name: string;
  created_at: number;
  revoked_at: number | null;
}

const toRecord = (r: ApiKeyRow): ApiKeyRecord => ({
  id: r.id,
  userId: r.user_id,
  keyHash: r.key_hash,
  prefix: r.prefix,
  name: r.name,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

export type ApiKeyRepository = ReturnType<typeof createApiKeyRepository>;

export function createApiKeyRepository(db: Db) {
  const insert = db.prepare<[ApiKeyRow]>(
    'INSERT INTO api_keys (id, user_id, key_hash, prefix, name, created_at, revoked_at) VALUES (@id, @user_id, @key_hash, @prefix, @name, @created_at, @revoked_at)',
  );
  const activeByHash = db.prepare<[string], ApiKeyRow>('SELECT * FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL');
  const byUser = db.prepare<[string], ApiKeyRow>('SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at DESC, id DESC');
  const byIdForUser = db.prepare<[string, string], ApiKeyRow>('SELECT * FROM api_keys WHERE id = ? AND user_id = ?');
  const activeCount = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM api_keys WHERE user_id = ? AND revoked_at IS NULL');
  const revoke = db.prepare<[number, string, string]>('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL');

  return {
    insert(k: ApiKeyRecord): void {
      insert.run({ id: k.id, user_id: k.userId, key_hash: k.keyHash, prefix: k.prefix, name: k.name, created_at: k.createdAt, revoked_at: k.revokedAt });
    },
    findActiveByHash(keyHash: string): ApiKeyRecord | undefined {
      const r = activeByHash.get(keyHash);
      return r && toRecord(r);
    },
    listForUser: (userId: string): ApiKeyRecord[] => byUser.all(userId).map(toRecord),
    findForUser(id: string, userId: string): ApiKeyRecord | undefined {
      const r = byIdForUser.get(id, userId);
      return r && toRecord(r);
    },
    countActiveForUser: (userId: string): number => activeCount.get(userId)!.n,
    /** Revokes the user's key; false when it is not theirs or already revoked. */
    revoke: (id: string, userId: string, now: number): boolean => revoke.run(now, id, userId).changes === 1,
  };
}
