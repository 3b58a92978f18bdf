// `sim run`, `sim cold-start` and `retrain` from the real CLI process: bad arguments exit 2 with a
// message naming the argument, a bad profiles file is refused, a tiny in-process sim run prints the
// documented JSON (and its figures), and `retrain` drives a real server's admin API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import request from 'supertest';
import { writeRandomModel } from '../../../sandbox/random-model.ts';
import { inProcessRunner } from '../../../server/personalize/jobs.ts';
import { PersonalizationService } from '../../../server/personalize/personalization-service.ts';
import { pdpoConfigSchema } from '../../../server/personalize/pdpo.ts';
import { closeServer, createTestServer, listenOnLoopback, registerUser, type TestServer } from '../../helpers/api-server.ts';

const root = path.resolve(import.meta.dirname, '../../..');
const CLI = [process.execPath, '--import', 'tsx', path.join(root, 'cli/index.ts')] as const;
/** No admin credentials leak in from the developer's shell. */
const ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ATTUNE_')));
let dir = '';
let model = '';
let opposite = '';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Run {
  const r = spawnSync(CLI[0], [...CLI.slice(1), ...args], { encoding: 'utf8', cwd: root, env: ENV });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same, without blocking this process (a server in it must keep answering). */
function cliAsync(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(CLI[0], [...CLI.slice(1), ...args], { cwd: root, env: { ...ENV, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d));
    p.stderr.on('data', (d: Buffer) => (stderr += d));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function assertUsageError(r: Run, name: string): void {
  assert.equal(r.status, 2, `exit 2 expected; stderr: ${r.stderr}`);
  assert.equal(r.stdout, '', 'nothing on stdout');
  assert.match(r.stderr, /^error: /m);
  assert.ok(r.stderr.includes(name), `the message names ${name}: ${r.stderr}`);
}

function writeJson(name: string, value: unknown): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, typeof value === 'string' ? value : JSON.stringify(value));
  return f;
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-sim-cli-'));
  model = path.join(dir, 'model');
  writeRandomModel(model, { modelType: 'llama', vocabSize: 320, hidden: 32, layers: 2, heads: 4, kvHeads: 2, maxPositions: 1024, tie: true, seed: 5, initStd: 0.5 });
  opposite = writeJson('opposite.json', [{ name: 'concise', prefers: { length: 'concise' } }, { name: 'detailed', prefers: { length: 'detailed' } }]);
});

after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('sim: argument errors exit 2 naming the argument', () => {
  test('missing and malformed flags', () => {
    assertUsageError(cli('sim', 'run', '--pairs-per-user', '4', '--seed', '1'), '--profiles');
    assertUsageError(cli('sim', 'run', '--profiles', opposite, '--seed', '1'), '--pairs-per-user');
    assertUsageError(cli('sim', 'run', '--profiles', opposite, '--pairs-per-user', '4'), '--seed');
    assertUsageError(cli('sim', 'run', '--profiles', opposite, '--pairs-per-user', '0', '--seed', '1'), '--pairs-per-user');
    assertUsageError(cli('sim', 'run', '--profiles', opposite, '--pairs-per-user', '4', '--seed', '-3'), '--seed');
    assertUsageError(cli('sim', 'run', '--profiles', opposite, '--pairs-per-user', '4', '--seed', '1', '--epochs', '0'), '--epochs');
    assertUsageError(cli('sim', 'run', '--profiles', opposite, '--pairs-per-user', '4', '--seed', '1', '--bogus', 'x'), '--bogus');
    assertUsageError(cli('sim', 'run', '--profiles', opposite, '--pairs-per-user', '4', '--seed', '1', '--model', path.join(dir, 'no-model')), '--model');
    assertUsageError(cli('sim', 'fly'), 'sim fly');
    assertUsageError(cli('sim', 'cold-start', '--profiles', opposite), '--seed');
    assertUsageError(cli('sim', 'cold-start', '--profiles', opposite, '--seed', '1', '--user', 'nobody'), '--user');
    assertUsageError(cli('sim', 'cold-start', '--profiles', opposite, '--seed', '1', '--steps', '10,x'), '--steps');
    // An unwritable figures directory is refused before the run, not after it.
    const notADir = path.join(dir, 'a-file');
    fs.writeFileSync(notADir, 'x');
    assertUsageError(cli('sim', 'cold-start', '--profiles', opposite, '--seed', '1', '--out', path.join(notADir, 'figs')), '--out');
    assertUsageError(cli('sim', 'run', '--profiles', opposite, '--pairs-per-user', '4', '--seed', '1', '--out', path.join(notADir, 'figs')), '--out');
  });

  test('--server mode: the URL, the credentials and flags that only make sense in-process', () => {
    const base = ['sim', 'run', '--profiles', opposite, '--pairs-per-user', '4', '--seed', '1'];
    assertUsageError(cli(...base, '--server', 'http://127.0.0.1:9'), '--admin-password');
    assertUsageError(cli(...base, '--server', 'not a url', '--admin-password', 'whatever-123'), '--server');
    assertUsageError(cli(...base, '--server', 'http://127.0.0.1:9', '--admin-password', 'whatever-123'), '--server');
    assertUsageError(cli(...base, '--server', 'http://127.0.0.1:9', '--admin-password', 'whatever-123', '--model', model), '--model');
    assertUsageError(cli(...base, '--server', 'http://127.0.0.1:9', '--admin-password', 'whatever-123', '--epochs', '2'), '--epochs');
  });

  test('retrain: the URL, the credentials and --user', () => {
    assertUsageError(cli('retrain', '--server', 'http://127.0.0.1:9'), '--admin-password');
    assertUsageError(cli('retrain', '--server', 'http://127.0.0.1:9', '--token', 'abc'), '--server');
    assertUsageError(cli('retrain', '--server', 'http://127.0.0.1:9', '--token', 'abc', '--user', ''), '--user');
    assertUsageError(cli('retrain', '--wait=yes'), '--wait');
  });
});

describe('sim: a bad profiles file', () => {
  test('missing, not JSON, not an array, an invalid profile, a duplicate name: exit 2 naming --profiles and the field', () => {
    const run = (file: string) => cli('sim', 'run', '--profiles', file, '--pairs-per-user', '4', '--seed', '1', '--model', model);
    const missing = run(path.join(dir, 'nope.json'));
    assertUsageError(missing, '--profiles');
    assert.match(missing.stderr, /file not found/);
    const notJson = run(writeJson('bad.json', '[{"name": "x",'));
    assertUsageError(notJson, '--profiles');
    assert.match(notJson.stderr, /not valid JSON/);
    const badPole = run(writeJson('pole.json', [{ name: 'ok', prefers: { tone: 'blunt' } }, { name: 'bad', prefers: { length: 'huge' } }]));
    assertUsageError(badPole, '--profiles');
    assert.ok(badPole.stderr.includes('[1].prefers.length'), badPole.stderr);
    const extra = run(writeJson('extra.json', [{ name: 'x', prefers: {}, age: 3 }]));
    assertUsageError(extra, '--profiles');
    assert.match(extra.stderr, /"age"/);
    const dup = run(writeJson('dup.json', [{ name: 'x', prefers: {} }, { name: 'x', prefers: { tone: 'friendly' } }]));
    assertUsageError(dup, '--profiles');
    assert.match(dup.stderr, /twice/);
  });
});

describe('sim run in-process on a tiny model', () => {
  test('two opposite profiles, 4 pairs each, 1 epoch: one JSON object of the documented shape, progress on stderr, figures in --out', () => {
    const out = path.join(dir, 'figs');
    const r = cli('sim', 'run', '--profiles', opposite, '--pairs-per-user', '4', '--seed', '3', '--model', model, '--epochs', '1', '--eval-prompts', '2', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, 'exactly one line of JSON on stdout');
    const j = JSON.parse(lines[0]!) as {
      users: { name: string; pairs: number; heldout_accuracy: { pdpo: number | null; dpo: number | null }; style_match: Record<string, number> }[];
      mean: { heldout_accuracy: { pdpo: number | null; dpo: number | null }; style_match: Record<string, number> };
      train_seconds: number;
      config: { epochs: number; seed: number };
    };
    assert.deepEqual(j.users.map((u) => u.name), ['concise', 'detailed']);
    const rate = (x: unknown) => typeof x === 'number' && x >= 0 && x <= 1;
    for (const u of j.users) {
      assert.deepEqual(Object.keys(u), ['name', 'pairs', 'heldout_accuracy', 'style_match']);
      assert.equal(u.pairs, 4);
      assert.deepEqual(Object.keys(u.heldout_accuracy).sort(), ['dpo', 'pdpo']);
      for (const v of Object.values(u.heldout_accuracy)) assert.ok(v === null || rate(v), `accuracy ${v}`);
      assert.deepEqual(Object.keys(u.style_match).sort(), ['base', 'generic', 'personalized']);
      for (const v of Object.values(u.style_match)) assert.ok(rate(v), `style-match ${v}`);
    }
    assert.deepEqual(Object.keys(j.mean.style_match).sort(), ['base', 'generic', 'personalized']);
    const m = (k: string) => (j.users[0]!.style_match[k]! + j.users[1]!.style_match[k]!) / 2;
    for (const k of ['base', 'generic', 'personalized']) assert.ok(Math.abs(j.mean.style_match[k]! - m(k)) < 1e-9, `mean.${k} is the mean over users`);
    assert.ok(j.train_seconds > 0);
    assert.equal(j.config.epochs, 1);
    assert.equal(j.config.seed, 3);
    assert.match(r.stderr, /pairs .*8\/8/);
    assert.match(r.stderr, /train-pdpo/);
    for (const f of ['sim-loss.svg', 'sim-heldout-accuracy.svg', 'sim-style-match.svg']) {
      const svg = fs.readFileSync(path.join(out, f), 'utf8');
      assert.match(svg, /^<svg /);
    }
    assert.match(fs.readFileSync(path.join(out, 'sim-loss.svg'), 'utf8'), /<polyline/);
    assert.match(fs.readFileSync(path.join(out, 'sim-style-match.svg'), 'utf8'), /detailed/);
  });
});

describe('sim cold-start in-process on a tiny model', () => {
  test('prints the curve of held-out accuracy over the new user\'s pair counts', () => {
    const r = cli('sim', 'cold-start', '--profiles', opposite, '--seed', '2', '--model', model, '--steps', '2,4', '--heldout-pairs', '4', '--others-pairs', '4', '--epochs', '1');
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { curve: { pairs: number; heldout_accuracy: number | null }[]; user: string; heldout_pairs: number };
    assert.deepEqual(j.curve.map((c) => c.pairs), [2, 4]);
    for (const c of j.curve) assert.ok(c.heldout_accuracy !== null && c.heldout_accuracy >= 0 && c.heldout_accuracy <= 1, `accuracy ${c.heldout_accuracy}`);
    assert.equal(j.user, 'concise', 'the first profile is the new user');
    assert.equal(j.heldout_pairs, 4);
    assert.match(r.stderr, /train k=4/);
  });

  test('--user all: every profile in turn is the new user, and the curve is their mean', () => {
    const figDir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-cold-'));
    const r = cli('sim', 'cold-start', '--profiles', opposite, '--seed', '2', '--model', model, '--user', 'all', '--steps', '2,3', '--heldout-pairs', '4', '--others-pairs', '4', '--epochs', '1', '--out', figDir);
    assert.equal(r.status, 0, r.stderr);
    type Curve = { pairs: number; heldout_accuracy: number | null }[];
    const j = JSON.parse(r.stdout) as { curve: Curve; users: { user: string; curve: Curve }[]; figures: string[] };
    // The chart: one line per user plus the mean and e₀'s mean, each through every pair count.
    assert.deepEqual(j.figures, [path.join(figDir, 'cold-start.svg')]);
    const svg = fs.readFileSync(j.figures[0]!, 'utf8');
    assert.equal((svg.match(/<polyline/g) ?? []).length, j.users.length + 2, svg.slice(0, 200));
    fs.rmSync(figDir, { recursive: true, force: true });
    const names = JSON.parse(fs.readFileSync(opposite, 'utf8')).map((p: { name: string }) => p.name);
    assert.deepEqual(j.users.map((u) => u.user), names);
    const each = j.users.map((u) => u.curve[0]!.heldout_accuracy!);
    assert.ok(Math.abs(j.curve[0]!.heldout_accuracy! - each.reduce((a, b) => a + b, 0) / each.length) < 1e-12);
  });
});

describe('retrain against a real server', () => {
  const ADMIN_PASSWORD = 'admin password 123';
  let t: TestServer;
  let svc: PersonalizationService;
  let server: http.Server;
  let url = '';

  before(async () => {
    t = createTestServer({
      env: { ATTUNE_ADMIN_PASSWORD: ADMIN_PASSWORD },
      personalization: (ctx) => (svc = new PersonalizationService({
        ...ctx, logger: pino({ level: 'silent' }), modelDir: model, modelFingerprint: 'tiny', runner: inProcessRunner,
        settings: {
          pdpo: pdpoConfigSchema.parse({ epochs: 2, batchPairs: 4, tokens: 2, heldoutFraction: 0.25, maxResponseTokens: 8 }),
          gateTolerance: 0.02, schedule: { cron: 'off', minNewPairs: 1000, perUserMinPairs: 1000, enabled: false }, retrainCheckSeconds: 3600, trainerThreads: 1, trainBaseline: false,
        },
      })),
    });
    svc.start();
    await t.services.auth.bootstrapAdmin();
    server = http.createServer(t.app);
    url = await listenOnLoopback(server);
  });

  after(async () => {
    await svc.close();
    await closeServer(server);
    t.close();
  });

  test('a wrong password and a non-admin token exit 2 naming the credential', async () => {
    assertUsageError(await cliAsync(['retrain', '--server', url, '--admin-password', 'not the password']), '--admin-password');
    const alice = await registerUser(t.app);
    assertUsageError(await cliAsync(['retrain', '--server', url, '--token', alice.token]), '--token');
    assertUsageError(await cliAsync(['retrain', '--server', url, '--token', 'not-a-token']), '--token');
    assertUsageError(await cliAsync(['retrain', '--server', url, '--user', randomUUID()], { ATTUNE_ADMIN_PASSWORD: ADMIN_PASSWORD }), '--user');
  });

  test('--wait follows the job to its end and prints the job and its version', async () => {
    const alice = await registerUser(t.app);
    for (let i = 0; i < 12; i++) {
      t.repos.preferencePairs.insert({
        id: randomUUID(), userId: alice.id, prompt: [{ role: 'user', content: `question ${i}` }],
        chosen: 'yes yes', rejected: 'no no', source: 'ab', chosenMessage: null, rejectedMessage: null, createdAt: 1000 + i,
      });
    }
    const r = await cliAsync(['retrain', '--server', url, '--wait'], { ATTUNE_ADMIN_PASSWORD: ADMIN_PASSWORD });
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { job: { id: string; status: string; versionId: string }; version: { id: string; status: string; jobId: string } };
    assert.equal(j.job.status, 'succeeded');
    assert.equal(j.version.id, j.job.versionId);
    assert.equal(j.version.jobId, j.job.id);
    assert.equal(j.version.status, 'published');
    assert.match(r.stderr, /job /);
    const versions = await request(t.app).get('/api/admin/training/versions').set({ Authorization: `Bearer ${(await request(t.app).post('/api/auth/login').send({ username: 'admin', password: ADMIN_PASSWORD })).body.token}` });
    assert.equal(versions.body.versions[0].id, j.version.id);
    // Without --wait: the job as accepted (202), still to run.
    const quick = await cliAsync(['retrain', '--server', url, '--admin-user', 'admin', '--admin-password', ADMIN_PASSWORD, '--user', alice.id]);
    assert.equal(quick.status, 0, quick.stderr);
    const q = JSON.parse(quick.stdout) as { job: { id: string; status: string; scope: string[] | null; trigger: string } };
    assert.deepEqual(q.job.scope, [alice.id]);
    assert.equal(q.job.trigger, 'admin');
    assert.ok(['queued', 'running', 'succeeded'].includes(q.job.status), q.job.status);
    await svc.idle();
  });
});
