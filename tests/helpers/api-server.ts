// An Attune app over a real SQLite file in a fresh temp dir, for supertest. Each test server has its
// own database and its own rate-limit counters.
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import type { Express } from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { type Config, loadConfig } from '../../server/config.ts';
import { type Db, openDatabase } from '../../server/db/connection.ts';
import { runMigrations } from '../../server/db/migrate.ts';
import { createRepositories, type Repositories } from '../../server/db/repositories.ts';
import { createAttuneApp } from '../../server/http/app.ts';
import type { PersonalizationService } from '../../server/personalize/personalization-service.ts';
import type { Route } from '../../server/http/route.ts';
import type { ChatDeps } from '../../server/services/chat.ts';
import { createCompletions, createServices, type Services } from '../../server/services/index.ts';
import { createTrainingService } from '../../server/services/training.ts';

export interface TestServer {
  dir: string;
  config: Config;
  db: Db;
  repos: Repositories;
  services: Services;
  app: Express;
  routes: readonly Route[];
  close(): void;
}

export interface TestServerOptions {
  /** Extra environment variables for loadConfig. */
  env?: Record<string, string>;
  now?: () => number;
  /** Replace services (e.g. to make one throw). */
  wrapServices?: (s: Services) => Services;
  isModelReady?: () => boolean;
  /** Mounts the OpenAI-compatible API (/v1) over this engine and soft-prompt source. */
  chatDeps?: ChatDeps;
  /** Mounts the personalization routes over the service this builds on the test database. */
  personalization?: (ctx: { db: Db; repos: Repositories; config: Config }) => PersonalizationService;
}

export function createTestServer(opts: TestServerOptions = {}): TestServer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-api-'));
  const config = loadConfig({ ATTUNE_DATA_DIR: dir, ATTUNE_LOG_LEVEL: 'silent', ATTUNE_AUTH_RATE_LIMIT: '100000', ...opts.env }, [], dir);
  const db = openDatabase(config.dbFile);
  runMigrations(db);
  const logger = pino({ level: 'silent' });
  const base = createServices({ db, config, logger, now: opts.now });
  const services = opts.wrapServices ? opts.wrapServices(base) : base;
  const completions = opts.chatDeps && createCompletions({ db, config, logger, now: opts.now }, opts.chatDeps);
  const personalization = opts.personalization?.({ db, repos: createRepositories(db), config });
  const training = personalization && createTrainingService(personalization);
  const { app, routes } = createAttuneApp({ config, db, services, logger, isModelReady: opts.isModelReady, completions, training });
  return {
    dir,
    config,
    db,
    repos: createRepositories(db),
    services,
    app,
    routes,
    close() {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestUser {
  id: string;
  username: string;
  token: string;
  auth: { Authorization: string };
}

let counter = 0;
export const uniqueName = (base = 'user'): string => `${base}${process.pid % 1000}_${++counter}`;

export async function registerUser(app: Express, username = uniqueName(), password = 'correct horse battery'): Promise<TestUser> {
  const res = await request(app).post('/api/auth/register').send({ username, password });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { id: res.body.user.id, username, token: res.body.token, auth: { Authorization: `Bearer ${res.body.token}` } };
}

/**
 * Cookie-authenticated writes must come from the server's own origin (the CSRF check). supertest
 * listens on a fresh port per request, so these requests name a fixed host instead: the Host they
 * reached and the Origin a page of that host sends, as a browser would.
 */
export const TEST_HOST = 'attune.test';
export const TEST_ORIGIN = `http://${TEST_HOST}`;

/** Headers of a request from the web client's own page, signed in by the session cookie. */
export const viaCookie = (token: string): Record<string, string> => ({ Cookie: `attune_session=${token}`, Host: TEST_HOST, Origin: TEST_ORIGIN });

/** Asserts the one error shape, and returns the error for further checks. */
export function assertError(res: request.Response, status: number, code?: string): { code: string; message: string; details: Record<string, unknown> } {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
  assert.match(String(res.headers['content-type']), /application\/json/);
  assert.deepEqual(Object.keys(res.body), ['error']);
  assert.deepEqual(Object.keys(res.body.error).sort(), ['code', 'details', 'message']);
  assert.equal(typeof res.body.error.message, 'string');
  assert.equal(typeof res.body.error.details, 'object');
  if (code) assert.equal(res.body.error.code, code);
  assert.doesNotMatch(JSON.stringify(res.body), /\bat .*\.(ts|js):\d+/, 'no stack trace in responses');
  return res.body.error;
}

/** Row counts of every table, for "nothing was written" and "everything was deleted" checks. */
export function tableCounts(db: Db, where: Record<string, string> = {}): Record<string, number> {
  const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all();
  const out: Record<string, number> = {};
  for (const { name } of tables) {
    const clause = where[name];
    out[name] = db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${name}${clause ? ` WHERE ${clause}` : ''}`).get()!.n;
  }
  return out;
}

/** Listens on an ephemeral loopback port; resolves with the base URL. */
export async function listenOnLoopback(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
