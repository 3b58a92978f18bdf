// Forward-only migrations: migrations/NNN_name.sql applied in file-name order at start-up, each in its
// own transaction together with its row in schema_migrations, so a failed migration leaves nothing
// behind. An applied migration is never re-run, and may never change: its SHA-256 is recorded, and a
// different file (or an applied migration missing from the directory) stops the start-up, because
// the database would no longer match what the code expects.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from './connection.ts';
import { sqliteErrorOf } from './storage.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

const MIGRATION_FILE = /^(\d{3,})_[a-z0-9_]+\.sql$/;

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

export interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationResult {
  /** Names applied by this run, in order. */
  applied: string[];
  /** Names already applied before this run. */
  alreadyApplied: string[];
}

/** SQLite's own message and code, also behind a storage 503. */
const describe = (e: unknown): string => {
  const sqlite = sqliteErrorOf(e);
  return sqlite ? `${sqlite.message} (${sqlite.code})` : (e as Error).message;
};

const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

/** The migration files of a directory, sorted; other files are an error, so typos do not go unapplied. */
export function readMigrations(dir: string = MIGRATIONS_DIR): MigrationFile[] {
  const names = fs.readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
  const files: MigrationFile[] = [];
  const numbers = new Map<string, string>();
  for (const name of names) {
    const m = MIGRATION_FILE.exec(name);
    if (!m) throw new MigrationError(`${path.join(dir, name)} is not a migration: name migrations like 002_add_things.sql`);
    const clash = numbers.get(m[1]!);
    if (clash) throw new MigrationError(`migrations ${clash} and ${name} share the number ${m[1]}`);
    numbers.set(m[1]!, name);
    const sql = fs.readFileSync(path.join(dir, name), 'utf8');
    files.push({ name, sql, checksum: sha256(sql) });
  }
  return files;
}

/** Applies every pending migration of `dir`; refuses changed or unknown applied ones. */
export function runMigrations(db: Db, dir: string = MIGRATIONS_DIR): MigrationResult {
  try {
    return migrate(db, dir);
  } catch (e) {
    if (e instanceof MigrationError) throw e;
    // "disk I/O error" alone does not say which database, or that it happened while migrating.
    throw new MigrationError(`cannot migrate the database ${db.name}: ${describe(e)}`);
  }
}

function migrate(db: Db, dir: string): MigrationResult {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    name       TEXT PRIMARY KEY,
    checksum   TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  ) STRICT`);
  const files = readMigrations(dir);
  const applied = db.prepare<[], { name: string; checksum: string }>('SELECT name, checksum FROM schema_migrations ORDER BY name').all();
  const byName = new Map(files.map((f) => [f.name, f]));
  for (const row of applied) {
    const file = byName.get(row.name);
    if (!file) {
      throw new MigrationError(
        `the database has migration ${row.name} applied, but ${dir} has no such file: this database belongs to another version of Attune`,
      );
    }
    if (file.checksum !== row.checksum) {
      throw new MigrationError(
        `migration ${row.name} was changed after it was applied (checksum ${row.checksum.slice(0, 12)}… in the database, ` +
          `${file.checksum.slice(0, 12)}… on disk): never edit an applied migration; add a new one instead`,
      );
    }
  }
  const done = new Set(applied.map((r) => r.name));
  const latestApplied = applied.at(-1)?.name;
  const late = files.find((f) => !done.has(f.name) && latestApplied !== undefined && f.name < latestApplied);
  if (late) {
    throw new MigrationError(`migration ${late.name} is pending but sorts before the applied ${latestApplied}: number new migrations after the last one`);
  }
  const record = db.prepare<[string, string, number]>('INSERT INTO schema_migrations (name, checksum, applied_at) VALUES (?, ?, ?)');
  const result: MigrationResult = { applied: [], alreadyApplied: applied.map((r) => r.name) };
  for (const file of files) {
    if (done.has(file.name)) continue;
    // IMMEDIATE takes the write lock first, so two processes starting together cannot both apply it.
    const apply = db.transaction(() => {
      const again = db.prepare<[string], { name: string }>('SELECT name FROM schema_migrations WHERE name = ?').get(file.name);
      if (again) return false;
      db.exec(file.sql);
      record.run(file.name, file.checksum, Date.now());
      return true;
    });
    try {
      if (apply.immediate()) result.applied.push(file.name);
    } catch (e) {
      throw new MigrationError(`migration ${file.name} failed and was rolled back (database ${db.name}): ${describe(e)}`);
    }
  }
  return result;
}
