// A migrated database in a temporary directory, users and preference pairs, and a user model blob:
// what the personalization units need without a language model.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { type Logger, pino } from 'pino';
import { type Db, openDatabase } from '../../server/db/connection.ts';
import { runMigrations } from '../../server/db/migrate.ts';
import { createRepositories, type Repositories } from '../../server/db/repositories.ts';
import { type DpoStats, pdpoConfigSchema } from '../../server/personalize/pdpo.ts';
import type { PersonalizationSettings } from '../../server/personalize/personalization-service.ts';
import type { HeldoutReport, TrainJobResult } from '../../server/personalize/trainer.ts';
import { UserModel } from '../../server/personalize/user-model.ts';

export interface TestDb {
  db: Db;
  repos: Repositories;
  close(): void;
}

export function testDb(): TestDb {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-personalize-'));
  const db = openDatabase(path.join(dir, 'attune.db'));
  runMigrations(db);
  return {
    db,
    repos: createRepositories(db),
    close() {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function addUser(t: TestDb, username: string): string {
  const id = randomUUID();
  t.repos.users.insert({ id, username, passwordHash: 'x', role: 'user', disabled: false, createdAt: 1 });
  return id;
}

/** n pairs of the user, created at t0, t0 + 1, … */
export function addPairs(t: TestDb, userId: string, n: number, t0: number): void {
  for (let i = 0; i < n; i++) {
    t.repos.preferencePairs.insert({
      id: randomUUID(), userId, prompt: [{ role: 'user', content: `question ${i}` }], chosen: 'yes', rejected: 'no',
      source: 'ab', chosenMessage: null, rejectedMessage: null, createdAt: t0 + i,
    });
  }
}

/** An individual user model of one vector of width 2: e_0 = [1, 2], and an offset of 10 for each of `users`. */
export function userModelBlob(users: string[]): Buffer {
  const m = new UserModel({ kind: 'individual', tokens: 1, hidden: 2 }, new Map([['e0', Float32Array.from([1, 2])]]));
  for (const u of users) {
    m.addUser(u);
    m.params.get(`offset:${u}`)!.fill(10);
  }
  return Buffer.from(m.serialize());
}

/** Stores a version with that blob and publishes it, as a job's gate would. */
export function publishVersion(t: TestDb, blob: Buffer, createdAt: number, dataThrough: number | null = null): string {
  const id = randomUUID();
  t.repos.userModels.insertVersion({ id, createdAt, publishedAt: null, status: 'training', config: {}, metrics: {}, blob: null, jobId: null });
  t.repos.userModels.completeVersion(id, { status: 'training', metrics: {}, blob, reason: null, dataThrough });
  t.repos.userModels.publish(id, createdAt);
  return id;
}

export const settings = (over: Partial<PersonalizationSettings> = {}): PersonalizationSettings => ({
  pdpo: pdpoConfigSchema.parse({ tokens: 1, heldoutFraction: 0.25 }),
  gateTolerance: 0.02,
  schedule: { cron: 'off', minNewPairs: 5, perUserMinPairs: 3, enabled: true },
  retrainCheckSeconds: 3600,
  trainerThreads: 1,
  trainBaseline: false,
  ...over,
});

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export function capturingLogger(): { logger: Logger; logs: LogLine[] } {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), logs };
}

/** What a runner returns for a candidate with this blob and these held-out means (candidate and current). */
export function trainResult(blob: Uint8Array, candidate: number | null, current: number | null = null): TrainJobResult {
  const stats = (acc: number): DpoStats => ({ pairs: 4, loss: 0.5, 'rewards/chosen': 0, 'rewards/rejected': 0, 'rewards/margins': 0, 'rewards/accuracies': acc, 'logps/chosen': -1, 'logps/rejected': -1 });
  const report = (mean: number | null): HeldoutReport => ({ mean, perUser: mean === null ? {} : { someone: stats(mean) } });
  return {
    blob, history: [], trainPerUser: {}, trainPerUserEpochs: [],
    heldout: { candidate: report(candidate), current: current === null ? null : report(current), generic: report(0.5), baseline: null },
    pairs: { train: 8, heldout: 4, users: 1 }, seconds: { reference: 0, train: 0, evaluate: 0, baseline: 0 },
  };
}
