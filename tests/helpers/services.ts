// The services exactly as the server builds them (createServices over a migrated SQLite file in a
// fresh temp dir, the config from loadConfig, a silent logger), with a clock the test moves, and
// rows the services read but do not write themselves (users without an argon2 hash, messages,
// comparisons, pairs): what the service-level units need without HTTP or a language model.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { type Config, loadConfig } from '../../server/config.ts';
import { type Db, openDatabase } from '../../server/db/connection.ts';
import type { ComparisonChoice } from '../../server/db/comparisons.ts';
import type { MessageRecord } from '../../server/db/conversations.ts';
import { runMigrations } from '../../server/db/migrate.ts';
import type { PreferenceSource } from '../../server/db/preference-pairs.ts';
import { createRepositories, type Repositories } from '../../server/db/repositories.ts';
import type { Role } from '../../server/db/users.ts';
import { createServices, type Services } from '../../server/services/index.ts';

/** 2025-01-15 12:00 UTC: midday, so a few hours either way stay on the same UTC day. */
export const T0 = Date.UTC(2025, 0, 15, 12);
export const DAY_MS = 86_400_000;

export interface ServiceHarness {
  dir: string;
  config: Config;
  db: Db;
  repos: Repositories;
  services: Services;
  /** The services' clock (epoch ms); tests set or advance it. */
  clock: { t: number };
  close(): void;
}

export function createServiceHarness(opts: { env?: Record<string, string> } = {}): ServiceHarness {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-services-'));
  const config = loadConfig({ ATTUNE_DATA_DIR: dir, ATTUNE_LOG_LEVEL: 'silent', ...opts.env }, [], dir);
  const db = openDatabase(config.dbFile);
  runMigrations(db);
  const repos = createRepositories(db);
  const clock = { t: T0 };
  const services = createServices({ db, config, logger: pino({ level: 'silent' }), repos, now: () => clock.t });
  return {
    dir,
    config,
    db,
    repos,
    services,
    clock,
    close() {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A user row with an unusable password hash (no argon2): for services that never check passwords. */
export function addUser(h: ServiceHarness, username: string, role: Role = 'user', createdAt = h.clock.t): string {
  const id = randomUUID();
  h.repos.users.insert({ id, username, passwordHash: 'not-a-hash', role, disabled: false, createdAt });
  return id;
}

/** A message row, as the chat service stores one. */
export function addMessage(
  h: ServiceHarness,
  conversationId: string,
  m: { parentId: string | null; role: MessageRecord['role']; content: string; createdAt?: number; status?: MessageRecord['status'] },
): MessageRecord {
  const record: MessageRecord = {
    id: randomUUID(),
    conversationId,
    parentId: m.parentId,
    role: m.role,
    content: m.content,
    status: m.status ?? 'complete',
    finishReason: m.role === 'assistant' ? 'stop' : null,
    modelName: m.role === 'assistant' ? 'default' : null,
    userModelVersion: null,
    sampling: null,
    seed: null,
    createdAt: m.createdAt ?? h.clock.t,
  };
  h.repos.conversations.insertMessage(record);
  return record;
}

export function addComparison(h: ServiceHarness, userId: string, conversationId: string, a: string, b: string, choice: ComparisonChoice | null, createdAt = h.clock.t): string {
  const id = randomUUID();
  h.repos.comparisons.insert({ id, userId, conversationId, messageA: a, messageB: b, choice, createdAt, decidedAt: choice === null ? null : createdAt });
  return id;
}

export function addPair(h: ServiceHarness, userId: string, over: { source?: PreferenceSource; createdAt?: number; chosen?: string; rejected?: string; prompt?: string } = {}): string {
  const id = randomUUID();
  h.repos.preferencePairs.insert({
    id,
    userId,
    prompt: [{ role: 'user', content: over.prompt ?? 'a question' }],
    chosen: over.chosen ?? 'the better answer',
    rejected: over.rejected ?? 'the worse answer',
    source: over.source ?? 'ab',
    chosenMessage: null,
    rejectedMessage: null,
    createdAt: over.createdAt ?? h.clock.t,
  });
  return id;
}
