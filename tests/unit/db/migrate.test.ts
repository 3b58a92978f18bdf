// The migration runner on real database files: applied once, in order, each in a transaction;
// changed or unknown applied migrations stop the start-up; connection pragmas.
import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../../server/db/connection.ts';
import { MIGRATIONS_DIR, MigrationError, runMigrations } from '../../../server/db/migrate.ts';

let dir = '';
let migrations = '';
let dbFile = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-mig-'));
  migrations = path.join(dir, 'migrations');
  fs.cpSync(MIGRATIONS_DIR, migrations, { recursive: true });
  dbFile = path.join(dir, 'db', 'attune.db');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const tables = (file: string): string[] => {
  const db = openDatabase(file);
  try {
    return db.prepare<[], { name: string }>("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all().map((r) => r.name);
  } finally {
    db.close();
  }
};

test('a fresh database gets every migration once; re-opening applies nothing and keeps the record', () => {
  const db = openDatabase(dbFile);
  const first = runMigrations(db, migrations);
  assert.deepEqual(first, { applied: ['001_init.sql', '002_personalization.sql'], alreadyApplied: [] });
  const recorded = db.prepare('SELECT name, checksum, applied_at FROM schema_migrations').all();
  db.close();
  assert.deepEqual(tables(dbFile), [
    'api_keys',
    'comparisons',
    'conversations',
    'feedback',
    'messages',
    'pair_reference_logps',
    'personalization_resets',
    'personalization_settings',
    'preference_pairs',
    'schema_migrations',
    'sessions',
    'training_jobs',
    'user_model_current',
    'user_model_versions',
    'users',
  ]);

  const again = openDatabase(dbFile);
  try {
    assert.deepEqual(runMigrations(again, migrations), { applied: [], alreadyApplied: ['001_init.sql', '002_personalization.sql'] });
    assert.deepEqual(again.prepare('SELECT name, checksum, applied_at FROM schema_migrations').all(), recorded);
  } finally {
    again.close();
  }
});

test('connections use WAL, enforce foreign keys and wait on locks', () => {
  const db = openDatabase(dbFile);
  try {
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
    assert.equal(db.pragma('busy_timeout', { simple: true }), 5000);
    runMigrations(db, migrations);
    assert.throws(
      () => db.prepare("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ('h', 'no-such-user', 0, 1)").run(),
      /FOREIGN KEY constraint failed/,
    );
  } finally {
    db.close();
  }
});

test('an applied migration that was edited afterwards is refused, naming it', () => {
  const db = openDatabase(dbFile);
  runMigrations(db, migrations);
  db.close();
  fs.appendFileSync(path.join(migrations, '001_init.sql'), '\n-- a harmless-looking edit\n');
  const reopened = openDatabase(dbFile);
  try {
    assert.throws(() => runMigrations(reopened, migrations), (e: unknown) => e instanceof MigrationError && /001_init\.sql was changed after it was applied/.test(e.message));
  } finally {
    reopened.close();
  }
});

test('a database with a migration this code does not know is refused', () => {
  const db = openDatabase(dbFile);
  try {
    runMigrations(db, migrations);
    db.prepare("INSERT INTO schema_migrations (name, checksum, applied_at) VALUES ('999_future.sql', 'abc', 0)").run();
    assert.throws(() => runMigrations(db, migrations), (e: unknown) => e instanceof MigrationError && /999_future\.sql applied, but .* has no such file/.test(e.message));
  } finally {
    db.close();
  }
});

test('new migrations apply in order; a failing one is rolled back whole and not recorded', () => {
  const db = openDatabase(dbFile);
  try {
    runMigrations(db, migrations);
    fs.writeFileSync(path.join(migrations, '102_good.sql'), 'CREATE TABLE good (x INTEGER);');
    fs.writeFileSync(path.join(migrations, '103_bad.sql'), 'CREATE TABLE half (x INTEGER);\nINSERT INTO no_such_table VALUES (1);');
    assert.throws(() => runMigrations(db, migrations), (e: unknown) => e instanceof MigrationError && /103_bad\.sql failed and was rolled back/.test(e.message));
    const names = db.prepare<[], { name: string }>('SELECT name FROM schema_migrations ORDER BY name').all().map((r) => r.name);
    assert.deepEqual(names, ['001_init.sql', '002_personalization.sql', '102_good.sql']);
    const has = (t: string) => db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name = ?").get(t) as { n: number };
    assert.equal(has('good').n, 1);
    assert.equal(has('half').n, 0);

    fs.writeFileSync(path.join(migrations, '103_bad.sql'), 'CREATE TABLE fixed (x INTEGER);');
    assert.deepEqual(runMigrations(db, migrations).applied, ['103_bad.sql']);
  } finally {
    db.close();
  }
});

test('a pending migration numbered before an applied one, and stray files, are refused', () => {
  const db = openDatabase(dbFile);
  try {
    fs.writeFileSync(path.join(migrations, '105_later.sql'), 'CREATE TABLE later (x INTEGER);');
    runMigrations(db, migrations);
    fs.writeFileSync(path.join(migrations, '102_sneaky.sql'), 'CREATE TABLE sneaky (x INTEGER);');
    assert.throws(() => runMigrations(db, migrations), /102_sneaky\.sql is pending but sorts before the applied 105_later\.sql/);
    fs.rmSync(path.join(migrations, '102_sneaky.sql'));
    fs.writeFileSync(path.join(migrations, 'notes.txt'), 'hi');
    assert.throws(() => runMigrations(db, migrations), /notes\.txt is not a migration/);
  } finally {
    db.close();
  }
});
