// Storage failures under a running retraining job, on a real server: the default model, a real SQLite
// file, the job in a real worker thread, chat over real socket.io. The database stops taking writes
// mid-job (a genuine SQLITE_FULL through max_page_count, or the file deleted under the server). The
// process must survive (no uncaught exception or unhandled rejection), the job must end failed, or,
// when even that cannot be written, be failed by the start-up recovery; no version may serve; chat
// and reads must keep answering. Also: an admin's cancel mid-training (once a SIGABRT of the whole
// process) and the per-user retraining timer over a database that refuses the job.
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { type Logger, pino } from 'pino';
import request from 'supertest';
import type { Socket } from 'socket.io-client';
import { openDatabase } from '../../server/db/connection.ts';
import { createRepositories, type Repositories } from '../../server/db/repositories.ts';
import { Engine } from '../../server/lm/engine.ts';
import { PersonalizationService, type PersonalizationSettings } from '../../server/personalize/personalization-service.ts';
import { pdpoConfigSchema } from '../../server/personalize/pdpo.ts';
import { attachRealtime } from '../../server/realtime/index.ts';
import { createChat } from '../../server/services/index.ts';
import { assertError, closeServer, createTestServer, listenOnLoopback, registerUser, type TestServer, type TestUser } from '../helpers/api-server.ts';
import { connectClient, connected, nextEvent } from '../helpers/realtime-server.ts';

const MODEL_DIR = path.resolve('models/default');
const MODEL_ID = 'default';
const ADMIN_PASSWORD = 'admin password 123';

// What would have ended the process: recorded here (a listener also keeps the runner alive to report it).
const escaped: unknown[] = [];
const onEscape = (e: unknown) => escaped.push(e);

const settings = (over: Partial<PersonalizationSettings> = {}): PersonalizationSettings => ({
  // Many epochs: the job is still training when the storage fails; it is stopped, never finished.
  pdpo: pdpoConfigSchema.parse({ alpha: 0.5, beta: 0.5, lr: 0.1, epochs: 200, batchPairs: 8, tokens: 2, heldoutFraction: 0.25, maxResponseTokens: 16 }),
  gateTolerance: 0.02,
  schedule: { cron: 'off', minNewPairs: 5, perUserMinPairs: 3, enabled: false },
  retrainCheckSeconds: 3600,
  trainerThreads: 1,
  trainBaseline: false,
  ...over,
});

/** A pino logger whose lines are kept, to check what was logged. */
function capturingLogger(): { logger: Logger; logs: LogLine[] } {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), logs };
}

/** One chat turn over the socket: the stored answer. */
async function chatAnswer(url: string, token: string, sockets: Socket[]): Promise<{ content: string; status: string; userModelVersion: string | null }> {
  const socket = connectClient(url, token);
  sockets.push(socket);
  await connected(socket);
  const done = nextEvent<{ message: { content: string; status: string; userModelVersion: string | null } }>(socket, 'message:done');
  socket.emit('message:send', { content: 'hello there', sampling: { maxNewTokens: 4, seed: 1, temperature: 1 } });
  return (await done).message;
}

function seedPairs(repos: Repositories, userId: string, likesYes: boolean, n: number, t0: number): void {
  for (let i = 0; i < n; i++) {
    const yes = 'Yes, gladly.';
    const no = 'No, not today.';
    repos.preferencePairs.insert({
      id: randomUUID(), userId, prompt: [{ role: 'user', content: `question ${i}` }],
      chosen: likesYes ? yes : no, rejected: likesYes ? no : yes, source: 'ab', chosenMessage: null, rejectedMessage: null, createdAt: t0 + i,
    });
  }
}

interface LogLine {
  level: number;
  msg: string;
  jobId?: string;
  err?: { message?: string; code?: string };
}

/** `p`, or a rejection after `ms` or as soon as anything escapes to the process. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let poll: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
        poll = setInterval(() => {
          if (escaped.length) reject(new Error(`escaped to the process while waiting for ${what}: ${String(escaped[0])}`));
        }, 50);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    clearInterval(poll);
  }
}

let engine: Engine;

before(async () => {
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
  engine = await Engine.load(MODEL_DIR, { maxBatch: 4 });
});

after(async () => {
  process.off('uncaughtException', onEscape);
  process.off('unhandledRejection', onEscape);
  await engine.close();
});

describe('a retraining job whose database stops taking writes', () => {
  let t: TestServer;
  let svc: PersonalizationService;
  let server: http.Server;
  let url: string;
  let admin: TestUser;
  let alice: TestUser;
  let logs: LogLine[];
  const sockets: Socket[] = [];

  beforeEach(async () => {
    escaped.length = 0;
    const captured = capturingLogger();
    const logger = captured.logger;
    logs = captured.logs;
    t = createTestServer({
      env: { ATTUNE_ADMIN_PASSWORD: ADMIN_PASSWORD },
      personalization: (ctx) => (svc = new PersonalizationService({ ...ctx, logger, modelDir: MODEL_DIR, modelFingerprint: MODEL_ID, settings: settings() })),
    });
    svc.start();
    await t.services.auth.bootstrapAdmin();
    const login = await request(t.app).post('/api/auth/login').send({ username: 'admin', password: ADMIN_PASSWORD });
    admin = { id: login.body.user.id, username: 'admin', token: login.body.token, auth: { Authorization: `Bearer ${login.body.token}` } };
    alice = await registerUser(t.app);
    const bob = await registerUser(t.app);
    // Enough pairs that their cached reference log-probs need new pages (the SQLITE_FULL case).
    seedPairs(t.repos, alice.id, true, 80, 1000);
    seedPairs(t.repos, bob.id, false, 80, 2000);
    const chat = createChat({ db: t.db, config: t.config, logger }, { engine, modelName: MODEL_ID, userModels: svc });
    server = http.createServer(t.app);
    attachRealtime(server, { config: t.config, services: t.services, chat, logger, personalization: svc });
    url = await listenOnLoopback(server);
  });

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.close();
    await svc.close();
    await closeServer(server);
    t.close();
  });

  const firstTrainingStep = (service: PersonalizationService) =>
    new Promise<{ jobId: string; step: number }>((resolve) => {
      const listener = (p: { jobId: string; step: number }) => {
        if (p.step < 1) return;
        service.off('progress', listener);
        resolve(p);
      };
      service.on('progress', listener);
    });

  const assertNothingServes = () => {
    assert.equal(svc.currentVersion(), null);
    assert.equal(svc.prefixFor(alice.id).source, 'none');
    assert.equal(svc.activeJob(), null);
  };

  it('SQLITE_FULL while the worker reports: the job fails, nothing is published, chat answers once there is room', async () => {
    const started = await request(t.app).post('/api/admin/training/jobs').set(admin.auth).send({});
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const jobId = started.body.job.id as string;
    // The database may not grow by a page from here on: the worker's cached reference log-probs
    // (160 new rows, more than the free room in the pages there are) cannot be stored.
    assert.equal(t.db.pragma('freelist_count', { simple: true }), 0);
    const pages = t.db.pragma('page_count', { simple: true }) as number;
    t.db.pragma(`max_page_count = ${pages}`);

    await within(svc.idle(), 25_000, 'the job');
    assert.deepEqual(escaped, [], 'nothing escaped to the process');
    const job = t.repos.userModels.findJob(jobId)!;
    assert.equal(job.status, 'failed', JSON.stringify(job));
    assert.match(job.error ?? '', /storage_full/);
    const version = t.repos.userModels.findVersion(job.versionId!)!;
    assert.equal(version.status, 'failed');
    assert.equal(version.blob, null);
    assert.equal(t.repos.userModels.current().versionId, null);
    assertNothingServes();
    const failure = logs.find((l) => l.level >= 50 && l.jobId === jobId);
    assert.ok(failure, `the failure is logged: ${JSON.stringify(logs.map((l) => l.msg))}`);

    // Reads answer while the database is full.
    const details = await request(t.app).get(`/api/admin/training/jobs/${jobId}`).set(admin.auth);
    assert.equal(details.status, 200);
    assert.equal(details.body.job.status, 'failed');

    // Room again: chat answers (generic, nothing was published), and training can start again.
    t.db.pragma(`max_page_count = ${pages + 100_000}`);
    const answer = await chatAnswer(url, alice.token, sockets);
    assert.equal(answer.status, 'complete');
    assert.equal(answer.userModelVersion, null);
    const again = await request(t.app).post('/api/admin/training/jobs').set(admin.auth).send({});
    assert.equal(again.status, 202, JSON.stringify(again.body));
    await request(t.app).post(`/api/admin/training/jobs/${again.body.job.id}/cancel`).set(admin.auth);
    assert.deepEqual(escaped, []);
  });

  it('the database file deleted mid-training: the job stops, a restart fails it, retrain is a 503, reads answer', async () => {
    const training = firstTrainingStep(svc);
    const started = await request(t.app).post('/api/admin/training/jobs').set(admin.auth).send({});
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const jobId = started.body.job.id as string;
    const versionId = started.body.job.versionId as string;
    await within(training, 25_000, 'the first training step');
    fs.unlinkSync(t.config.dbFile);

    await within(svc.idle(), 15_000, 'stopping the job');
    assert.deepEqual(escaped, [], 'nothing escaped to the process');
    assertNothingServes();
    assert.ok(logs.some((l) => l.level >= 50 && l.jobId === jobId && /storage|deleted/.test(`${l.err?.message} ${l.err?.code}`)), 'the storage failure is logged');
    assert.ok(logs.some((l) => l.jobId === jobId && /start-up recovery/.test(l.msg)), 'the unrecordable failure is left to the start-up recovery');

    // Nothing can be saved now, and the admin is told so in the error shape: a 503, not a 500.
    assertError(await request(t.app).post('/api/admin/training/jobs').set(admin.auth).send({}), 503, 'storage_unavailable');
    // Reads still answer (from the file the server holds open).
    const me = await request(t.app).get('/api/me/personalization').set(alice.auth);
    assert.equal(me.status, 200);
    assert.equal(me.body.personalized, false);
    assert.equal((await request(t.app).get('/api/admin/training/jobs').set(admin.auth)).status, 200);

    // What a restart would find (the state the deleted file was in), and the start-up recovery on it.
    const copy = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'attune-pers-fault-')), 'attune.db');
    t.db.exec(`VACUUM INTO '${copy.replaceAll("'", "''")}'`);
    const db = openDatabase(copy);
    try {
      const repos = createRepositories(db);
      assert.equal(repos.userModels.findJob(jobId)!.status, 'running', 'the failure could not be written');
      const restarted = new PersonalizationService({ db, repos, logger: pino({ level: 'silent' }), modelDir: MODEL_DIR, modelFingerprint: MODEL_ID, settings: settings() });
      restarted.start({ schedule: false });
      const job = repos.userModels.findJob(jobId)!;
      assert.equal(job.status, 'failed');
      assert.match(job.error!, /interrupted/);
      assert.equal(repos.userModels.findVersion(versionId)!.status, 'failed');
      assert.equal(restarted.currentVersion(), null);
      await restarted.close();
    } finally {
      db.close();
      fs.rmSync(path.dirname(copy), { recursive: true, force: true });
    }
    assert.deepEqual(escaped, []);
  });

  it('an admin cancels mid-training: the worker stops by itself, the process lives and chat answers', async () => {
    const training = firstTrainingStep(svc);
    const started = await request(t.app).post('/api/admin/training/jobs').set(admin.auth).send({});
    assert.equal(started.status, 202, JSON.stringify(started.body));
    await within(training, 25_000, 'the first training step');
    // Terminating the thread here, inside an onnxruntime run, aborted the whole process (SIGABRT).
    const cancel = await request(t.app).post(`/api/admin/training/jobs/${started.body.job.id}/cancel`).set(admin.auth);
    assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
    assert.equal(cancel.body.job.status, 'cancelled');
    assertNothingServes();
    const answer = await chatAnswer(url, alice.token, sockets);
    assert.equal(answer.status, 'complete');
    assert.deepEqual(escaped, []);
  });
});

describe('the per-user retraining timer', () => {
  it('survives a database that refuses the job: logged, no job, the timer goes on', async () => {
    escaped.length = 0;
    const { logger, logs } = capturingLogger();
    const t = createTestServer();
    const svc = new PersonalizationService({
      db: t.db, repos: t.repos, logger, modelDir: MODEL_DIR, modelFingerprint: MODEL_ID,
      settings: settings({ retrainCheckSeconds: 0.05, schedule: { cron: 'off', minNewPairs: 5, perUserMinPairs: 3, enabled: true } }),
    });
    try {
      svc.start();
      const alice = await registerUser(t.app);
      seedPairs(t.repos, alice.id, true, 4, 1000);
      fs.unlinkSync(t.config.dbFile);
      const failed = () => logs.filter((l) => /per-user retraining check failed/.test(l.msg));
      await within(new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (failed().length < 3) return;
          clearInterval(poll);
          resolve();
        }, 20);
      }), 5_000, 'three failed checks');
      assert.deepEqual(escaped, [], 'nothing escaped to the process');
      assert.equal(failed()[0]!.err?.code, 'storage_unavailable');
      assert.equal(svc.activeJob(), null);
    } finally {
      await svc.close();
      t.close();
    }
  });
});
