// The database connection's durability guard on real SQLite files: a write to a file deleted or replaced
// under the connection, or one the disk refuses (a genuine SQLITE_FULL from max_page_count), is a 503
// AppError with a storage code, never a silent success; databaseProblem() names why the database
// cannot take writes; and openDatabase's errors name the path and the cause.
import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { databaseProblem, type Db, DatabaseOpenError, openDatabase, openFailure } from '../../../server/db/connection.ts';
import { MigrationError, runMigrations } from '../../../server/db/migrate.ts';
import { isAppError } from '../../../server/errors.ts';

let dir = '';
let file = '';
let db: Db | null = null;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-db-storage-'));
  file = path.join(dir, 'attune.db');
});
afterEach(() => {
  if (db?.open) db.close();
  db = null;
  fs.rmSync(dir, { recursive: true, force: true });
});

function openWithTable(): { db: Db; insert: Database.Statement<[string]> } {
  db = openDatabase(file);
  db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE)');
  const insert = db.prepare<[string]>('INSERT INTO notes (text) VALUES (?)');
  insert.run('first');
  return { db, insert };
}

const count = (db: Db, sql: string): number => db.prepare<[], { n: number }>(sql).get()!.n;

/** Asserts a 503 AppError with `code`. */
const storageError = (code: string) => (e: unknown) => {
  assert.ok(isAppError(e), `an AppError, got ${String(e)}`);
  assert.equal(e.status, 503);
  assert.equal(e.code, code);
  assert.doesNotMatch(e.message, new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'no internal path in what clients see');
  return true;
};

test('a healthy database has no problem, and its writes succeed', () => {
  const { db, insert } = openWithTable();
  assert.equal(databaseProblem(db), null);
  insert.run('second');
  assert.equal(count(db, 'SELECT count(*) AS n FROM notes'), 2);
});

test('after the database file is deleted, every write is a 503 storage_unavailable; reads still answer; the problem names the deletion', () => {
  const { db, insert } = openWithTable();
  fs.unlinkSync(file);
  assert.throws(() => insert.run('lost'), storageError('storage_unavailable'));
  assert.throws(() => insert.run('lost again'), storageError('storage_unavailable'));
  const tx = db.transaction(() => insert.run('in a transaction'));
  assert.throws(() => tx(), storageError('storage_unavailable'));
  assert.equal(count(db, 'SELECT count(*) AS n FROM notes') >= 1, true, 'reads are not refused');
  const problem = databaseProblem(db);
  assert.equal(problem?.code, 'database_deleted');
  assert.match(problem!.message, /deleted/);
});

test('a database file replaced by another file (rename over it) is detected at the next write', () => {
  const { db, insert } = openWithTable();
  const other = path.join(dir, 'other.db');
  fs.writeFileSync(other, '');
  fs.renameSync(other, file);
  assert.throws(() => insert.run('to the old inode'), storageError('storage_unavailable'));
  assert.equal(databaseProblem(db)?.code, 'database_replaced');
});

test('a deleted write-ahead log is detected too: committed writes live there until a checkpoint', () => {
  const { db, insert } = openWithTable();
  assert.ok(fs.existsSync(`${file}-wal`), 'precondition: WAL mode');
  fs.unlinkSync(`${file}-wal`);
  assert.throws(() => insert.run('into the orphaned log'), storageError('storage_unavailable'));
  assert.equal(databaseProblem(db)?.code, 'database_deleted');
  assert.match(databaseProblem(db)!.message, /write-ahead log/);
});

test('a transaction is checked once, when it commits; a read-only transaction is never refused', () => {
  const { db, insert } = openWithTable();
  let next = 0;
  const many = db.transaction((n: number) => {
    for (let i = 0; i < n; i++) insert.run(`row ${next++}`);
  });
  many(5);
  assert.equal(count(db, 'SELECT count(*) AS n FROM notes'), 6);
  const read = db.transaction(() => db.prepare('SELECT count(*) AS n FROM notes').get());
  fs.unlinkSync(file);
  assert.ok(read());
  assert.throws(() => many(2), storageError('storage_unavailable'));
});

test('a full database (a genuine SQLITE_FULL via max_page_count) is a 503 storage_full; readiness says so until there is room again', () => {
  const { db, insert } = openWithTable();
  const pages = db.pragma('page_count', { simple: true }) as number;
  db.pragma(`max_page_count = ${pages}`);
  assert.throws(() => {
    for (let i = 0; i < 100; i++) insert.run(`${i} ${'x'.repeat(2000)}`);
  }, storageError('storage_full'));
  const full = databaseProblem(db);
  assert.equal(full?.code, 'storage_full');
  assert.match(full!.message, /full/);
  db.pragma(`max_page_count = ${pages + 1000}`);
  assert.equal(databaseProblem(db), null, 'the probe finds room again');
  insert.run('fits now');
  assert.equal(count(db, "SELECT count(*) AS n FROM sqlite_schema WHERE name = 'attune_write_probe'"), 0, 'the probe leaves nothing behind');
});

test('errors that are not about storage pass through unchanged', () => {
  const { insert } = openWithTable();
  assert.throws(() => insert.run('first'), (e: unknown) => e instanceof Database.SqliteError && e.code === 'SQLITE_CONSTRAINT_UNIQUE');
});

test('a closed connection is a problem', () => {
  const { db } = openWithTable();
  db.close();
  assert.equal(databaseProblem(db)?.code, 'database_closed');
});

test('openDatabase names the path and the cause', () => {
  const asDir = path.join(dir, 'a-directory.db');
  fs.mkdirSync(asDir);
  assert.throws(() => openDatabase(asDir), (e: unknown) => e instanceof DatabaseOpenError && e.message.includes(asDir) && /is a directory/.test(e.message) && /SQLITE_CANTOPEN/.test(e.message));

  const aFile = path.join(dir, 'plain-file');
  fs.writeFileSync(aFile, 'x');
  const under = path.join(aFile, 'sub', 'attune.db');
  assert.throws(() => openDatabase(under), (e: unknown) => e instanceof DatabaseOpenError && e.message.includes(under) && /cannot create its directory/.test(e.message));

  const junk = path.join(dir, 'junk.db');
  fs.writeFileSync(junk, 'this is not a database file, just some text '.repeat(200));
  assert.throws(() => openDatabase(junk), (e: unknown) => e instanceof DatabaseOpenError && e.message === `cannot open the database file ${junk}: the file is not an SQLite database (SQLITE_NOTADB)`);

  const io = openFailure('/srv/attune/attune.db', new Database.SqliteError('disk I/O error', 'SQLITE_IOERR_READ'));
  assert.match(io.message, /^cannot open the database file \/srv\/attune\/attune\.db: disk I\/O error .*\(SQLITE_IOERR_READ\)$/);
});

test('openDatabase in a directory that is not writable says so', (t) => {
  const ro = path.join(dir, 'read-only');
  fs.mkdirSync(ro);
  let unmount = (): void => undefined;
  if (process.getuid?.() === 0) {
    // Permissions do not stop root; a read-only mount does.
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', ro], { stdio: 'ignore' });
      unmount = () => execFileSync('umount', [ro], { stdio: 'ignore' });
    } catch {
      t.skip('running as root without mount: no way to make a directory read-only');
      return;
    }
  } else {
    fs.chmodSync(ro, 0o500);
    unmount = () => fs.chmodSync(ro, 0o700);
  }
  try {
    const target = path.join(ro, 'attune.db');
    assert.throws(() => openDatabase(target), (e: unknown) => e instanceof DatabaseOpenError && e.message === `cannot open the database file ${target}: the directory ${ro} is not writable (SQLITE_CANTOPEN)`);
  } finally {
    unmount();
  }
});

test('a migration failure names the database file and SQLite code', () => {
  db = openDatabase(file);
  const migrations = path.join(dir, 'migrations');
  fs.mkdirSync(migrations);
  fs.writeFileSync(path.join(migrations, '001_big.sql'), `CREATE TABLE big (x BLOB); INSERT INTO big VALUES (zeroblob(200000));`);
  db.pragma(`max_page_count = ${(db.pragma('page_count', { simple: true }) as number) + 3}`);
  assert.throws(() => runMigrations(db!, migrations), (e: unknown) => e instanceof MigrationError && e.message.includes(file) && /SQLITE_FULL/.test(e.message));
});
