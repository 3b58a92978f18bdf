// Personalization end to end on a tiny random model: retraining jobs (worker thread and in-process),
// the held-out gate, atomic publication under concurrent chats, crash safety, resets, the schedule
// and the admin API. Real SQLite files, real onnxruntime sessions, real socket.io.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import request from 'supertest';
import type { Db } from '../../server/db/connection.ts';
import type { Repositories } from '../../server/db/repositories.ts';
import { Engine } from '../../server/lm/engine.ts';
import { writeRandomModel } from '../../sandbox/random-model.ts';
import { inProcessRunner } from '../../server/personalize/jobs.ts';
import { PersonalizationService, type PersonalizationSettings } from '../../server/personalize/personalization-service.ts';
import { pdpoConfigSchema } from '../../server/personalize/pdpo.ts';
import { attachRealtime } from '../../server/realtime/index.ts';
import { createChat } from '../../server/services/index.ts';
import { assertError, closeServer, createTestServer, listenOnLoopback, registerUser, type TestServer, type TestUser } from '../helpers/api-server.ts';
import { connectClient, connected, nextEvent } from '../helpers/realtime-server.ts';

let modelDir: string;
let engine: Engine;
const ADMIN_PASSWORD = 'admin password 123';

const settings = (over: Partial<PersonalizationSettings> = {}, pdpo: Record<string, unknown> = {}): PersonalizationSettings => ({
  pdpo: pdpoConfigSchema.parse({ alpha: 0.5, beta: 0.5, lr: 0.1, epochs: 6, batchPairs: 8, tokens: 2, heldoutFraction: 0.25, maxResponseTokens: 16, ...pdpo }),
  gateTolerance: 0.02,
  schedule: { cron: 'off', minNewPairs: 5, perUserMinPairs: 3, enabled: true },
  retrainCheckSeconds: 3600,
  trainerThreads: 1,
  trainBaseline: false,
  ...over,
});

/** Opposite tastes: `likes` answers "yes yes yes" over "no no no", or the reverse. */
function seedPairs(repos: Repositories, userId: string, likesYes: boolean, n: number, t0: number): void {
  for (let i = 0; i < n; i++) {
    const yes = 'yes yes yes';
    const no = 'no no no';
    repos.preferencePairs.insert({
      id: randomUUID(), userId, prompt: [{ role: 'user', content: `question ${i}` }],
      chosen: likesYes ? yes : no, rejected: likesYes ? no : yes, source: 'ab', chosenMessage: null, rejectedMessage: null, createdAt: t0 + i,
    });
  }
}

function makeService(t: { db: Db; repos: Repositories }, s: PersonalizationSettings, runner = inProcessRunner): PersonalizationService {
  const svc = new PersonalizationService({ db: t.db, repos: t.repos, logger: pino({ level: 'silent' }), modelDir, modelFingerprint: 'tiny', settings: s, runner });
  svc.start();
  return svc;
}

before(async () => {
  modelDir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-pers-model-'));
  writeRandomModel(modelDir, { modelType: 'llama', vocabSize: 320, hidden: 32, layers: 2, heads: 4, kvHeads: 2, maxPositions: 512, tie: true, seed: 5, initStd: 0.5 });
  engine = await Engine.load(modelDir, { maxBatch: 8 });
});

after(async () => {
  await engine.close();
  fs.rmSync(modelDir, { recursive: true, force: true });
});

describe('retraining over the admin API, in a worker thread', () => {
  let t: TestServer;
  let svc: PersonalizationService;
  let server: http.Server;
  let url: string;
  let admin: TestUser;
  let alice: TestUser;
  let bob: TestUser;

  before(async () => {
    t = createTestServer({
      env: { ATTUNE_ADMIN_PASSWORD: ADMIN_PASSWORD },
      personalization: (ctx) => (svc = new PersonalizationService({ ...ctx, logger: pino({ level: 'silent' }), modelDir, modelFingerprint: 'tiny', settings: settings() })),
    });
    svc.start();
    await t.services.auth.bootstrapAdmin();
    const login = await request(t.app).post('/api/auth/login').send({ username: 'admin', password: ADMIN_PASSWORD });
    admin = { id: login.body.user.id, username: 'admin', token: login.body.token, auth: { Authorization: `Bearer ${login.body.token}` } };
    alice = await registerUser(t.app);
    bob = await registerUser(t.app);
    const logger = pino({ level: 'silent' });
    const chat = createChat({ db: t.db, config: t.config, logger }, { engine, modelName: 'tiny', userModels: svc });
    server = http.createServer(t.app);
    attachRealtime(server, { config: t.config, services: t.services, chat, logger, personalization: svc });
    url = await listenOnLoopback(server);
  });

  after(async () => {
    await svc.close();
    await closeServer(server);
    t.close();
  });

  it('before any version nobody has a soft prompt; non-admins cannot touch training', async () => {
    const me = await request(t.app).get('/api/me/personalization').set(alice.auth);
    assert.equal(me.status, 200);
    assert.equal(me.body.personalized, false);
    assert.equal(me.body.version, null);
    assert.deepEqual(svc.prefixFor(alice.id), { prefix: null, version: null, source: 'none', sourceVersion: null });
    assertError(await request(t.app).post('/api/admin/training/jobs').set(alice.auth).send({}), 403);
    assertError(await request(t.app).get('/api/admin/training/versions'), 401);
    assertError(await request(t.app).post('/api/admin/training/jobs').set(admin.auth).send({ userIds: 'x' }), 400);
    assertError(await request(t.app).put('/api/admin/training/schedule').set(admin.auth).send({ cron: 'every day', minNewPairs: 1, perUserMinPairs: 1, enabled: true }), 400);
    assertError(await request(t.app).post(`/api/admin/training/jobs/${randomUUID()}/cancel`).set(admin.auth), 404);
  });

  it('an admin-triggered job streams progress to admins, passes the gate and personalizes each user', async () => {
    seedPairs(t.repos, alice.id, true, 24, 1000);
    seedPairs(t.repos, bob.id, false, 24, 2000);
    const socket = connectClient(url, admin.token);
    await connected(socket);
    const progress = nextEvent<{ jobId: string; step: number; totalSteps: number; loss: number }>(socket, 'training:progress', (p) => p.step >= 1, 60_000);
    const done = nextEvent<{ job: { id: string; status: string } }>(socket, 'training:job', (p) => ['succeeded', 'failed'].includes(p.job.status), 120_000);
    const res = await request(t.app).post('/api/admin/training/jobs').set(admin.auth).send({});
    assert.equal(res.status, 202);
    const jobId = res.body.job.id;
    assertError(await request(t.app).post('/api/admin/training/jobs').set(admin.auth).send({}), 409, 'job_running');
    const p = await progress;
    assert.equal(p.jobId, jobId);
    assert.ok(p.totalSteps > 0 && Number.isFinite(p.loss));
    const final = await done;
    socket.close();
    assert.equal(final.job.status, 'succeeded', JSON.stringify(final.job));
    const details = await request(t.app).get(`/api/admin/training/jobs/${jobId}`).set(admin.auth);
    assert.equal(details.status, 200);
    assert.ok(details.body.history.length > 0 && 'rewards/accuracies' in details.body.history[0] && 'grad/cosine' in details.body.history[0]);
    const versions = await request(t.app).get('/api/admin/training/versions').set(admin.auth);
    const v = versions.body.versions[0];
    assert.equal(v.status, 'published', v.reason);
    assert.equal(v.current, true);
    assert.ok(v.metrics.heldoutAccuracy >= 0.9, `held-out accuracy ${v.metrics.heldoutAccuracy}`);
    assert.equal(v.metrics.perUser.length, 2);
    const me = await request(t.app).get('/api/me/personalization').set(alice.auth);
    assert.equal(me.body.personalized, true);
    assert.equal(me.body.version.id, v.id);
    assert.equal(me.body.pairs, 24);
    assert.ok(me.body.heldoutAccuracy >= 0.5);
    // Reference log-probs were cached once per pair.
    assert.equal(t.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM pair_reference_logps').get()!.n, 48);
  });

  it('a new user gets e_0 of the published version; a reset user goes back to it', async () => {
    const carol = await registerUser(t.app);
    const cur = svc.currentVersion()!;
    const c = svc.prefixFor(carol.id);
    assert.equal(c.source, 'generic');
    assert.equal(c.version, null);
    assert.equal(c.sourceVersion, cur.id);
    assert.deepEqual(c.prefix, svc.prefixFor('no-such-user').prefix);
    assert.notDeepEqual(svc.prefixFor(alice.id).prefix, c.prefix);
    const del = await request(t.app).delete('/api/me/personalization').set(alice.auth);
    assert.equal(del.status, 204);
    assert.deepEqual(svc.prefixFor(alice.id).prefix, c.prefix);
    const me = await request(t.app).get('/api/me/personalization').set(alice.auth);
    assert.equal(me.body.personalized, false);
    assert.equal(typeof me.body.resetAt, 'string');
    assert.ok(Date.parse(me.body.resetAt) <= Date.now(), 'an ISO-8601 time, as on every wire');
  });

  it('a running job can be cancelled, and its version is never published', async () => {
    const before = svc.currentVersion()!.id;
    const res = await request(t.app).post('/api/admin/training/jobs').set(admin.auth).send({});
    assert.equal(res.status, 202);
    const cancel = await request(t.app).post(`/api/admin/training/jobs/${res.body.job.id}/cancel`).set(admin.auth);
    assert.equal(cancel.status, 200);
    assert.equal(cancel.body.job.status, 'cancelled');
    assert.equal(svc.currentVersion()!.id, before);
    const again = await request(t.app).post(`/api/admin/training/jobs/${res.body.job.id}/cancel`).set(admin.auth);
    assertError(again, 409, 'job_not_running');
  });
});

describe('the held-out gate, publication and rollback', () => {
  let t: TestServer;
  let a: string;
  let b: string;
  before(async () => {
    t = createTestServer();
    a = (await registerUser(t.app)).id;
    b = (await registerUser(t.app)).id;
    seedPairs(t.repos, a, true, 24, 1000);
    seedPairs(t.repos, b, false, 24, 2000);
  });
  after(() => t.close());

  it('refuses a worse version and keeps serving the current one; an admin can still roll back', async () => {
    const good = makeService(t, settings());
    good.requestJob({ trigger: 'admin' });
    await good.idle();
    const v1 = good.currentVersion();
    assert.ok(v1, 'the first version is published');
    await good.close();
    // One shared soft prompt (a single cluster) cannot serve opposite tastes: worse on held-out pairs.
    const worse = makeService(t, settings({}, { userModel: 'cluster', clusters: 1 }));
    const job = worse.requestJob({ trigger: 'admin' });
    await worse.idle();
    const versions = worse.listVersions();
    const v2 = versions.find((v) => v.jobId === job.id)!;
    assert.equal(v2.status, 'rejected');
    assert.match(v2.reason!, /below the current version's/);
    assert.equal(worse.currentVersion()!.id, v1!.id);
    assert.equal(t.repos.userModels.findJob(job.id)!.status, 'succeeded');
    // Rollback / publish by hand, then back.
    worse.publishVersion(v2.id);
    assert.equal(worse.currentVersion()!.id, v2.id);
    worse.publishVersion(v1!.id);
    assert.equal(worse.currentVersion()!.id, v1!.id);
    assert.equal(t.repos.userModels.findVersion(v2.id)!.status, 'superseded');
    await worse.close();
  });

  it('publication is atomic: replies in flight finish on the old soft prompt, later ones use the new', async () => {
    const svc = makeService(t, settings());
    const [v1, v2] = svc.listVersions().filter((v) => v.status !== 'failed' && v.status !== 'training').map((v) => v.id).reverse();
    assert.ok(v1 && v2 && svc.currentVersion()!.id === v1);
    const chat = createChat({ db: t.db, config: t.config, logger: pino({ level: 'silent' }) }, { engine, modelName: 'tiny', userModels: svc });
    const noHooks = { onStart() {}, onCompareStart() {}, onDelta() {} };
    const greedy = { temperature: 0, maxNewTokens: 60 };
    const early = [a, b, a].map((u, i) => chat.send(u, { content: `early ${i}`, sampling: greedy }, noHooks));
    await new Promise((r) => setTimeout(r, 30));
    svc.publishVersion(v2);
    const late = [a, b].map((u, i) => chat.send(u, { content: `late ${i}`, sampling: greedy }, noHooks));
    const outEarly = await Promise.all(early);
    const outLate = await Promise.all(late);
    const msg = (o: unknown) => (o as { message: { userModelVersion: string | null; content: string; sampling: { softPrompt: { version: string } } } }).message;
    for (const o of outEarly) assert.equal(msg(o).sampling.softPrompt.version, v1);
    for (const o of outLate) assert.equal(msg(o).sampling.softPrompt.version, v2);
    // And the text is what the new soft prompt produces.
    const m = msg(outLate[0]);
    const alone = await engine.generateText({ messages: [{ role: 'user', content: 'late 0' }], prefix: svc.prefixFor(a).prefix, sampling: { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 1 }, maxNewTokens: 60, stop: [] });
    assert.equal(m.content, alone.text);
    await svc.close();
  });

  it('the schedule starts a run only past N new pairs, and per-user runs past M', async () => {
    const svc = makeService(t, settings({ schedule: { cron: 'off', minNewPairs: 5, perUserMinPairs: 3, enabled: true } }));
    assert.equal(svc.scheduledCheck(), null, 'no new pairs since the last run');
    seedPairs(t.repos, a, true, 4, Date.now() + 10_000);
    assert.equal(svc.scheduledCheck(), null, '4 < N = 5');
    const perUser = svc.perUserCheck();
    assert.ok(perUser, '4 ≥ M = 3 new pairs for one user');
    assert.deepEqual(perUser.scope, [a]);
    assert.equal(perUser.trigger, 'user');
    await svc.idle();
    const s = svc.setSchedule({ cron: '*/5 * * * *', minNewPairs: 7, perUserMinPairs: 9, enabled: true });
    assert.ok(s.nextRunAt && s.nextRunAt > Date.now());
    assert.throws(() => svc.setSchedule({ cron: 'nonsense', minNewPairs: 1, perUserMinPairs: 1, enabled: true }));
    await svc.close();
  });
});

describe('crash safety', () => {
  it('a job killed mid-training is marked failed at the next start and publishes nothing', async () => {
    const t = createTestServer();
    const u1 = (await registerUser(t.app)).id;
    const u2 = (await registerUser(t.app)).id;
    seedPairs(t.repos, u1, true, 40, 1000);
    seedPairs(t.repos, u2, false, 40, 2000);
    const dbFile = t.config.dbFile;
    const child = fork(path.resolve('tests/helpers/crash-job.ts'), [dbFile, modelDir], { execArgv: ['--import', 'tsx'], stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`the child exited early (${code})`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.equal(t.repos.userModels.activeJobs().length, 1, 'the killed job is left running in the database');
    const svc = makeService(t, settings());
    const [job] = t.repos.userModels.listJobs();
    assert.equal(job!.status, 'failed');
    assert.match(job!.error!, /interrupted/);
    const [version] = t.repos.userModels.listVersions();
    assert.equal(version!.status, 'failed');
    assert.equal(svc.currentVersion(), null);
    assert.equal(t.repos.userModels.current().versionId, null);
    await svc.close();
    t.close();
  });
});

describe('the first version', () => {
  it('is published even with too few pairs to hold any out, and personalizes its user', async () => {
    const t = createTestServer();
    const u = (await registerUser(t.app)).id;
    seedPairs(t.repos, u, true, 1, 1000);
    const svc = makeService(t, settings());
    const job = svc.requestJob({ trigger: 'admin' });
    await svc.idle();
    assert.equal(t.repos.userModels.findJob(job.id)!.status, 'succeeded');
    const v = svc.currentVersion();
    assert.ok(v, 'published');
    assert.equal(v.metrics.heldoutAccuracy, null);
    assert.equal(svc.prefixFor(u).source, 'personal');
    assert.equal(svc.prefixFor(u).version, v.id);
    await svc.close();
    t.close();
  });
});
