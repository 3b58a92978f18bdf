// users: accounts and their roles. Deleting a user row cascades to everything they own.
import type { Db } from './connection.ts';

export const ROLES = ['user', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface UserRecord {
  id: string;
  username: string;
  passwordHash: string;
  role: Role;
  disabled: boolean;
  createdAt: number;
}

interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  role: Role;
  disabled: number;
  created_at: number;
}

const toRecord = (r: UserRow): UserRecord => ({
  id: r.id,
  username: r.username,
  passwordHash: r.password_hash,
  role: r.role,
  disabled: r.disabled === 1,
  createdAt: r.created_at,
});

export type UserRepository = ReturnType<typeof createUserRepository>;

export function createUserRepository(db: Db) {
  const insert = db.prepare<[UserRow]>(
    'INSERT INTO users (id, username, password_hash, role, disabled, created_at) VALUES (@id, @username, @password_hash, @role, @disabled, @created_at)',
  );
  const byId = db.prepare<[string], UserRow>('SELECT * FROM users WHERE id = ?');
  const byUsername = db.prepare<[string], UserRow>('SELECT * FROM users WHERE username = ?');
  const admins = db.prepare<[], { n: number }>("SELECT count(*) AS n FROM users WHERE role = 'admin' AND disabled = 0");
  const setDisabled = db.prepare<[number, string]>('UPDATE users SET disabled = ? WHERE id = ?');
  const remove = db.prepare<[string]>('DELETE FROM users WHERE id = ?');
  const setRole = db.prepare<[Role, string]>('UPDATE users SET role = ? WHERE id = ?');
  const replaceHash = db.prepare<[string, string, string]>('UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?');
  const firstPage = db.prepare<[number], UserRow>('SELECT * FROM users ORDER BY created_at, id LIMIT ?');
  const nextPage = db.prepare<[number, number, string, number], UserRow>('SELECT * FROM users WHERE created_at > ? OR (created_at = ? AND id > ?) ORDER BY created_at, id LIMIT ?');
  const total = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM users');

  return {
    insert(u: UserRecord): void {
      insert.run({ id: u.id, username: u.username, password_hash: u.passwordHash, role: u.role, disabled: u.disabled ? 1 : 0, created_at: u.createdAt });
    },
    findById: (id: string): UserRecord | undefined => {
      const r = byId.get(id);
      return r && toRecord(r);
    },
    /** Case-insensitive: usernames are unique regardless of case. */
    findByUsername: (username: string): UserRecord | undefined => {
      const r = byUsername.get(username);
      return r && toRecord(r);
    },
    countActiveAdmins: (): number => admins.get()!.n,
    setDisabled: (id: string, disabled: boolean): boolean => setDisabled.run(disabled ? 1 : 0, id).changes === 1,
    setRole: (id: string, role: Role): boolean => setRole.run(role, id).changes === 1,
    /**
     * Sets the password hash only if it is still `expectedHash` (the one the old password was checked
     * against): false when the user is gone or another change won the race.
     */
    replacePasswordHash: (id: string, expectedHash: string, newHash: string): boolean => replaceHash.run(newHash, id, expectedHash).changes === 1,
    /** Oldest first, `limit` users after the cursor (the last user of the previous page). */
    listPage(limit: number, after?: { createdAt: number; id: string }): UserRecord[] {
      const rows = after ? nextPage.all(after.createdAt, after.createdAt, after.id, limit) : firstPage.all(limit);
      return rows.map(toRecord);
    },
    count: (): number => total.get()!.n,
    /** Deletes the user and, through ON DELETE CASCADE, all of their data. */
    deleteById: (id: string): boolean => remove.run(id).changes === 1,
  };
}
