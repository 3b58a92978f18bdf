// One better-sqlite3 connection per process. better-sqlite3 is synchronous: a query runs to completion
// on the main thread, which for SQLite on local disk is faster than any async round trip.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export type Db = Database.Database;

export interface OpenDatabaseOptions {
  /** How long a write waits for another connection's lock before SQLITE_BUSY. Default 5000 ms. */
  busyTimeoutMs?: number;
}

/**
 * Opens (creating if needed) the database file with the pragmas every connection needs:
 * WAL (readers never block the writer), foreign keys enforced (cascading deletes depend on it),
 * a busy timeout, and synchronous=NORMAL, which under WAL is durable across application crashes.
 */
export function openDatabase(file: string, opts: OpenDatabaseOptions = {}): Db {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
    db.pragma('synchronous = NORMAL');
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

/** True while the connection is open and answers a trivial query (readiness probe). */
export function isDatabaseReady(db: Db): boolean {
  if (!db.open) return false;
  try {
    return db.prepare('SELECT 1 AS ok').get() !== undefined;
  } catch {
    return false;
  }
}
