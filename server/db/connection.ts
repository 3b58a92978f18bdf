// One better-sqlite3 connection per process. better-sqlite3 is synchronous: a query runs to completion
// on the main thread, which for SQLite on local disk is faster than any async round trip.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { guardWrites, storageProblem, type StorageProblem } from './storage.ts';

export type Db = Database.Database;
export type { StorageProblem } from './storage.ts';

export interface OpenDatabaseOptions {
  /** How long a write waits for another connection's lock before SQLITE_BUSY. Default 5000 ms. */
  busyTimeoutMs?: number;
}

/** The database file cannot be opened; the message names the path and the cause (and SQLite's code). */
export class DatabaseOpenError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
    readonly code: string | undefined,
  ) {
    super(`cannot open the database file ${file}: ${reason}${code ? ` (${code})` : ''}`);
    this.name = 'DatabaseOpenError';
  }
}

const errCode = (e: unknown): string | undefined => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
};

const writable = (target: string): boolean => {
  try {
    fs.accessSync(target, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
};

/** SQLite's "unable to open database file" and friends say neither which file nor why; find out. */
export function openFailure(file: string, e: unknown): DatabaseOpenError {
  const code = errCode(e);
  const message = e instanceof Error ? e.message : String(e);
  const dir = path.dirname(file);
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  let reason: string;
  if (code === 'SQLITE_NOTADB') reason = 'the file is not an SQLite database';
  else if (code?.startsWith('SQLITE_CORRUPT')) reason = 'the database file is damaged (restore it from a backup)';
  else if (code?.startsWith('SQLITE_IOERR')) reason = `disk I/O error (${message}): the disk or file system failed`;
  else if (code === 'SQLITE_FULL') reason = 'the disk is full';
  else if (stat?.isDirectory()) reason = 'the path is a directory';
  else if (!stat && !writable(dir)) reason = `the directory ${dir} is not writable`;
  else if (stat && !writable(file)) reason = 'the file is not writable';
  else if (!writable(dir)) reason = `the directory ${dir} is not writable (WAL mode creates ${path.basename(file)}-wal and -shm beside the file)`;
  else if (code?.startsWith('SQLITE_READONLY')) reason = 'the file or its directory is read-only';
  else reason = message;
  return new DatabaseOpenError(file, reason, code);
}

/**
 * Opens (creating if needed) the database file with the pragmas every connection needs:
 * WAL (readers never block the writer), foreign keys enforced (cascading deletes depend on it),
 * a busy timeout, and synchronous=NORMAL, which under WAL is durable across application crashes.
 * Writes are guarded (storage.ts): one to a file deleted or replaced meanwhile, or one that the disk
 * refuses, is a 503 error, never a silent success. Errors name the path and the cause.
 */
export function openDatabase(file: string, opts: OpenDatabaseOptions = {}): Db {
  const memory = file === ':memory:' || file === '';
  const resolved = memory ? file : path.resolve(file);
  if (!memory) {
    const dir = path.dirname(resolved);
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new DatabaseOpenError(resolved, `cannot create its directory ${dir}: ${(e as Error).message}`, errCode(e));
    }
  }
  let db: Db;
  try {
    db = new Database(resolved);
  } catch (e) {
    throw memory ? e : openFailure(resolved, e);
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
    db.pragma('synchronous = NORMAL');
  } catch (e) {
    db.close();
    throw memory ? e : openFailure(resolved, e);
  }
  if (!memory) guardWrites(db, resolved);
  return db;
}

/** Why the database cannot take durable writes (closed, deleted or replaced, not writable, full), or null. */
export function databaseProblem(db: Db): StorageProblem | null {
  return storageProblem(db);
}

/** True while the connection is open and can take durable writes (readiness probe). */
export function isDatabaseReady(db: Db): boolean {
  return databaseProblem(db) === null;
}
