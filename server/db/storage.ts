// Durability of the database file under the running server. SQLite keeps writing through its open file
// descriptors after the file is deleted or replaced (the data then dies with the process), and it
// reports a full disk or a failing one as SQLite error codes that would otherwise surface as 500s.
// So every connection made by openDatabase is guarded:
//   - after each write (a statement outside a transaction, or a transaction's commit) the path of the
//     database and of its -wal file must still name the files that were opened (same dev and inode),
//     else the write is an error (503 storage_unavailable) and so is every later one: what was
//     written cannot be found again after a restart;
//   - SQLITE_FULL, SQLITE_IOERR*, SQLITE_READONLY*, SQLITE_CORRUPT… become 503s with a clear code;
//   - storageProblem() tells the readiness probe why the database cannot take writes, if it cannot.
// Cost: two stat() calls per write outside a transaction, or per transaction that wrote (measured
// here: +7 to +10 µs on a one-row autocommit INSERT of 19 to 25 µs in WAL mode; a read is unchanged).
// Against the rest of an HTTP request (~1 ms) that is noise, and a time-based check would leave a
// window in which a write to a deleted file could still be acknowledged.
import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { ServiceUnavailable } from '../errors.ts';

type Db = Database.Database;

export type StorageProblemCode = 'database_closed' | 'database_deleted' | 'database_replaced' | 'database_not_writable' | 'storage_full' | 'storage_unavailable';

/** Why the database cannot take durable writes (the readiness probe's body names it). */
export interface StorageProblem {
  code: StorageProblemCode;
  message: string;
}

/** Below this much free space on the database's file system the server reports itself not ready. */
export const MIN_FREE_BYTES = 1024 * 1024;

interface FileId {
  dev: number;
  ino: number;
}

const fileId = (file: string): FileId | null => {
  const s = fs.statSync(file, { throwIfNoEntry: false });
  return s ? { dev: s.dev, ino: s.ino } : null;
};

const sqliteCode = (e: unknown): string | null => {
  const code = e instanceof Error ? (e as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : null;
};

/** The client-facing code of an SQLite failure that is about the storage, not the statement; null for the rest. */
export function storageCodeOf(sqlite: string): 'storage_full' | 'storage_unavailable' | 'storage_busy' | null {
  if (sqlite === 'SQLITE_FULL') return 'storage_full';
  if (/^SQLITE_(IOERR|READONLY|CORRUPT|NOTADB|CANTOPEN|PROTOCOL)(_|$)/.test(sqlite)) return 'storage_unavailable';
  if (/^SQLITE_(BUSY|LOCKED)(_|$)/.test(sqlite)) return 'storage_busy';
  return null;
}

const CLIENT_MESSAGES = {
  storage_full: 'the server has run out of storage space: the change was not saved; try again later',
  storage_unavailable: 'the server cannot save changes right now (its storage is failing or its database file was replaced): the change was not saved; try again later',
  storage_busy: 'the database is busy: the change was not saved; try again',
} as const;

/** The 503 for an SQLite error about the storage (full, I/O, read-only, damaged, locked); null for any other error. */
export function storageErrorOf(e: unknown): ServiceUnavailable | null {
  if (e instanceof ServiceUnavailable) return e.code.startsWith('storage_') ? e : null;
  const sqlite = sqliteCode(e);
  const code = sqlite && storageCodeOf(sqlite);
  if (!code) return null;
  const mapped = new ServiceUnavailable(CLIENT_MESSAGES[code], code, { sqliteCode: sqlite });
  // The log (and start-up errors) keep SQLite's own words; clients get the message above.
  mapped.cause = e;
  return mapped;
}

/** The SQLite error behind `e` (itself, or the one a storage 503 was made from), for messages that name it. */
export function sqliteErrorOf(e: unknown): (Error & { code: string }) | null {
  if (sqliteCode(e)) return e as Error & { code: string };
  const cause = e instanceof Error ? e.cause : undefined;
  return sqliteCode(cause) ? (cause as Error & { code: string }) : null;
}

class StorageGuard {
  private readonly main: FileId | null;
  private wal: FileId | null;
  /** Set for good once the files on disk are no longer the ones written to. */
  private lost: StorageProblem | null = null;
  /** The last write failed for storage reasons (cleared by a later write or a passing probe). */
  private lastFailure: StorageProblem | null = null;
  /** A write happened inside the current transaction: check the files when it commits. */
  private pending = false;

  constructor(
    private readonly db: Db,
    readonly file: string,
  ) {
    this.main = fileId(file);
    this.wal = fileId(`${file}-wal`);
  }

  /** Refuses a write once the files are known to be gone: it could never be found again. */
  beforeWrite(): void {
    if (this.lost) throw new ServiceUnavailable(CLIENT_MESSAGES.storage_unavailable, 'storage_unavailable', { cause: this.lost.code });
  }

  afterWrite(): void {
    this.pending = true;
    if (this.db.inTransaction) return;
    this.pending = false;
    this.verify();
    this.lastFailure = null;
  }

  afterTransaction(): void {
    if (!this.pending || this.db.inTransaction) return;
    this.pending = false;
    this.verify();
    this.lastFailure = null;
  }

  /** Maps a failure of a statement or transaction; storage failures are remembered for readiness. */
  failed(e: unknown): unknown {
    if (!this.db.inTransaction) this.pending = false;
    const mapped = storageErrorOf(e);
    if (!mapped) return e;
    if (mapped.code !== 'storage_busy' && !(e instanceof ServiceUnavailable)) {
      this.lastFailure = { code: mapped.code === 'storage_full' ? 'storage_full' : 'storage_unavailable', message: `the last write failed: ${(e as Error).message} (${sqliteCode(e)})` };
    }
    return mapped;
  }

  /** Throws (and stays failed) when the database or its WAL is no longer the file that was opened. */
  verify(): void {
    const problem = this.lost ?? this.identityProblem();
    if (!problem) return;
    this.lost = problem;
    throw new ServiceUnavailable(CLIENT_MESSAGES.storage_unavailable, 'storage_unavailable', { cause: problem.code });
  }

  private identityProblem(): StorageProblem | null {
    const now = fileId(this.file);
    if (this.main) {
      if (!now) return { code: 'database_deleted', message: `the database file ${this.file} was deleted while the server ran: writes since then would be lost; restore it and restart` };
      if (now.dev !== this.main.dev || now.ino !== this.main.ino) {
        return { code: 'database_replaced', message: `the database file ${this.file} was replaced by another file while the server ran: writes would go to the old one; restart the server` };
      }
    }
    const walFile = `${this.file}-wal`;
    const wal = fileId(walFile);
    // SQLite makes the WAL on the first transaction; until it is seen there is nothing to compare.
    if (!this.wal) {
      this.wal = wal;
      return null;
    }
    if (!wal) return { code: 'database_deleted', message: `the write-ahead log ${walFile} was deleted while the server ran: committed writes in it would be lost; restart the server` };
    if (wal.dev !== this.wal.dev || wal.ino !== this.wal.ino) {
      return { code: 'database_replaced', message: `the write-ahead log ${walFile} was replaced while the server ran: committed writes would be lost; restart the server` };
    }
    return null;
  }

  problem(): StorageProblem | null {
    if (!this.lost) {
      const identity = this.identityProblem();
      if (identity) this.lost = identity;
    }
    if (this.lost) return this.lost;
    if (this.db.readonly) return { code: 'database_not_writable', message: `the database ${this.file} was opened read-only` };
    for (const target of [this.file, path.dirname(this.file)]) {
      try {
        fs.accessSync(target, fs.constants.W_OK);
      } catch (e) {
        return { code: 'database_not_writable', message: `${target} is not writable (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
      }
    }
    try {
      const s = fs.statfsSync(path.dirname(this.file));
      const free = s.bavail * s.bsize;
      if (free < MIN_FREE_BYTES) return { code: 'storage_full', message: `the file system of ${this.file} has ${free} bytes free (at least ${MIN_FREE_BYTES} are needed)` };
    } catch {
      // statfs is unsupported on some platforms; the probe below still catches a full database.
    }
    if (this.lastFailure) {
      const probe = this.probe();
      if (probe) return probe;
      this.lastFailure = null;
    }
    return null;
  }

  /**
   * After a failed write: can a page be allocated now? Creates a table in a transaction that is rolled
   * back, so nothing is kept. (A full disk shows in statfs; a full database, e.g. max_page_count, here.)
   */
  private probe(): StorageProblem | null {
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (e) {
      return { code: 'storage_unavailable', message: `${this.lastFailure!.message}; a write cannot start: ${(e as Error).message}` };
    }
    try {
      this.db.exec('CREATE TABLE attune_write_probe (x BLOB); INSERT INTO attune_write_probe VALUES (zeroblob(8192))');
      return null;
    } catch (e) {
      const code = sqliteCode(e);
      return { code: code === 'SQLITE_FULL' ? 'storage_full' : 'storage_unavailable', message: `${this.lastFailure!.message}; still failing: ${(e as Error).message} (${code})` };
    } finally {
      // SQLite may already have rolled back on SQLITE_FULL or an I/O error.
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
    }
  }
}

const guards = new WeakMap<Db, StorageGuard>();

type StatementMethod = 'run' | 'get' | 'all';

/**
 * Installs the guard on a connection to `file` (absolute): wraps its prepare() and transaction(), so
 * every repository's statements are guarded without knowing it.
 */
export function guardWrites(db: Db, file: string): void {
  const guard = new StorageGuard(db, file);
  guards.set(db, guard);
  const prepare = db.prepare.bind(db);
  db.prepare = ((source: string) => {
    const stmt = prepare(source);
    const writes = !stmt.readonly;
    for (const name of ['run', 'get', 'all'] as const satisfies readonly StatementMethod[]) {
      const original = stmt[name] as (...args: unknown[]) => unknown;
      (stmt as unknown as Record<StatementMethod, (...args: unknown[]) => unknown>)[name] = function guarded(this: unknown, ...args: unknown[]) {
        if (writes) guard.beforeWrite();
        let result: unknown;
        try {
          result = original.apply(this, args);
        } catch (e) {
          throw guard.failed(e);
        }
        if (writes) guard.afterWrite();
        return result;
      };
    }
    return stmt;
  }) as Db['prepare'];

  const transaction = db.transaction.bind(db);
  db.transaction = ((fn: (...args: unknown[]) => unknown) => {
    const tx = transaction(fn);
    const wrap = (variant: (...args: unknown[]) => unknown) =>
      function guardedTransaction(this: unknown, ...args: unknown[]) {
        let result: unknown;
        try {
          result = variant.apply(this, args);
        } catch (e) {
          throw guard.failed(e);
        }
        guard.afterTransaction();
        return result;
      };
    const out = wrap(tx) as ReturnType<Db['transaction']>;
    for (const v of ['default', 'deferred', 'immediate', 'exclusive'] as const) Object.defineProperty(out, v, { value: wrap(tx[v]) });
    Object.defineProperty(out, 'database', { value: db, enumerable: true });
    return out;
  }) as Db['transaction'];
}

/** Why the connection cannot take durable writes now, or null when it can (a readiness probe, not free: a few stats). */
export function storageProblem(db: Db): StorageProblem | null {
  if (!db.open) return { code: 'database_closed', message: 'the database connection is closed' };
  try {
    db.prepare('SELECT 1').get();
  } catch (e) {
    return { code: 'storage_unavailable', message: `the database does not answer: ${(e as Error).message}` };
  }
  return guards.get(db)?.problem() ?? null;
}
