// server/main.ts as a process: start-up with a tiny random model, the first admin's one-time
// password, readiness, graceful shutdown on SIGTERM, and clear failures for a missing model or bad config;
// a model that cannot serve (unsupported, NaN weights, broken tokenizer) is refused before the database
// is touched, and every failed start ends in one fatal line that names the cause, with no stack trace.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRandomModel } from '../../sandbox/random-model.ts';
import { openSafetensors, SINGLE_WEIGHTS_FILE, writeSafetensors } from '../../server/lm/safetensors.ts';
import { connectClient, connected, nextEvent } from '../helpers/realtime-server.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let dir = '';
let modelDir = '';

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-main-'));
  modelDir = path.join(dir, 'model');
  writeRandomModel(modelDir, { modelType: 'llama', vocabSize: 300, hidden: 32, layers: 2, heads: 4, kvHeads: 2, maxPositions: 128, tie: true, seed: 3 });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** Starts main.ts; resolves once it listens (with its port and log so far) or exits. */
function startMain(env: Record<string, string>, args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let stderr = '';
  let buffered = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = new Promise<number | null>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as LogLine;
        logs.push(entry);
        if (entry.msg.startsWith('listening on')) resolve(entry.port as number);
      }
    });
    void exited.then(() => resolve(null));
  });
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  void exited.then(() => clearTimeout(timer));
  return { child, logs, listening, exited, stderr: () => stderr };
}

test('starts, bootstraps the admin once, serves, and stops cleanly on SIGTERM; a restart applies nothing again', async () => {
  const env = { ATTUNE_DATA_DIR: path.join(dir, 'data'), ATTUNE_MODEL_DIR: modelDir };
  const first = startMain(env, ['--port', '0']);
  const port = await first.listening;
  assert.ok(port, `did not listen: ${first.stderr()}`);
  const base = `http://127.0.0.1:${port}`;

  const admin = first.logs.find((l) => l.msg.startsWith('created the first admin with a random password'));
  assert.ok(admin, 'the generated admin password is logged once');
  assert.equal(admin.username, 'admin');
  const ready = await fetch(`${base}/readyz`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { status: 'ready', db: true, model: true });
  const login = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: admin.password }),
  });
  assert.equal(login.status, 200);
  const session = (await login.json()) as { token: string; user: { role: string } };
  assert.equal(session.user.role, 'admin');

  // Real-time chat is mounted on the same port; a connected socket does not hold up the shutdown.
  const socket = connectClient(base, session.token);
  await connected(socket);
  const done = nextEvent<{ message: { status: string; role: string } }>(socket, 'message:done');
  socket.emit('message:send', { content: 'hello', sampling: { maxNewTokens: 4 } });
  assert.equal((await done).message.role, 'assistant');
  const disconnected = new Promise<void>((resolve) => socket.once('disconnect', () => resolve()));

  first.child.kill('SIGTERM');
  assert.equal(await first.exited, 0);
  await disconnected;
  assert.ok(first.logs.some((l) => l.msg === 'stopped'));
  assert.ok(fs.existsSync(path.join(dir, 'data', 'attune.db')));

  const second = startMain(env, ['--port', '0']);
  assert.ok(await second.listening, second.stderr());
  const dbLine = second.logs.find((l) => l.msg === 'database ready')!;
  assert.deepEqual(dbLine.applied, []);
  assert.equal(dbLine.alreadyApplied, fs.readdirSync(path.join(ROOT, 'migrations')).filter((f) => f.endsWith('.sql')).length);
  assert.ok(!second.logs.some((l) => l.msg.startsWith('created the first admin')));
  second.child.kill('SIGINT');
  assert.equal(await second.exited, 0);
});

test('a missing model fails the start-up with a message saying what to do', async () => {
  const run = startMain({ ATTUNE_DATA_DIR: path.join(dir, 'data-missing'), ATTUNE_ADMIN_PASSWORD: 'admin password' }, ['--port', '0', '--model-dir', path.join(dir, 'nope')]);
  assert.equal(await run.listening, null);
  assert.equal(await run.exited, 1);
  const fatal = run.logs.find((l) => l.level === 60);
  assert.ok(fatal, 'a fatal log line');
  assert.match(fatal.msg, /no model at .*nope .*train:default-model.*ATTUNE_MODEL_DIR/);
  assert.ok(!fs.existsSync(path.join(dir, 'data-missing', 'attune.db')), 'nothing written before the check');
});

test('bad configuration exits 2 naming the variable', async () => {
  const run = startMain({ ATTUNE_DATA_DIR: path.join(dir, 'data-bad'), PORT: 'eighty' }, []);
  assert.equal(await run.exited, 2);
  assert.match(run.stderr(), /PORT \(--port\) must be a number/);
});

/** The fatal line of a failed start: exit 1, the cause in the message, no stack trace anywhere in it. */
async function failedStart(env: Record<string, string>, args: string[] = ['--port', '0']): Promise<LogLine> {
  const run = startMain({ ATTUNE_ADMIN_PASSWORD: 'admin password', ...env }, args);
  assert.equal(await run.listening, null, 'it must not listen');
  assert.equal(await run.exited, 1, run.stderr());
  const fatal = run.logs.find((l) => l.level === 60);
  assert.ok(fatal, `a fatal log line (stderr: ${run.stderr()})`);
  assert.match(fatal.msg, /^start-up failed: /);
  const line = JSON.stringify(fatal);
  assert.doesNotMatch(line, /\bat .*\.(ts|js|mjs):\d+|"stack"/, `no stack trace in the fatal line: ${line}`);
  assert.equal(run.logs.filter((l) => l.level === 60).length, 1);
  return fatal;
}

/** A copy of the tiny model with `edit` applied to it. */
function brokenModel(name: string, edit: (dir: string) => void): string {
  const copy = path.join(dir, name);
  fs.cpSync(modelDir, copy, { recursive: true });
  edit(copy);
  return copy;
}

test('an unsupported model is refused before the database or the admin account exist', async () => {
  const model = brokenModel('model-xyz', (d) => {
    const file = path.join(d, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), model_type: 'xyz' }));
  });
  const dataDir = path.join(dir, 'data-xyz');
  const fatal = await failedStart({ ATTUNE_DATA_DIR: dataDir, ATTUNE_MODEL_DIR: model });
  assert.ok(fatal.msg.includes(path.join(model, 'config.json')), fatal.msg);
  assert.match(fatal.msg, /xyz/);
  assert.equal(fatal.code, 'unsupported_model');
  assert.ok(!fs.existsSync(path.join(dataDir, 'attune.db')), 'no database was created');
});

test('NaN weights are refused at start-up, naming the tensor, before the database exists', async () => {
  const model = brokenModel('model-nan', (d) => {
    const file = path.join(d, SINGLE_WEIGHTS_FILE);
    const src = openSafetensors(file);
    const tensors = src.names().map((name) => {
      const data = src.getFloat32(name);
      if (name === 'model.layers.1.mlp.up_proj.weight') data.fill(NaN, 5, 8);
      return { name, shape: src.info(name).shape, data };
    });
    src.close();
    writeSafetensors(file, tensors);
  });
  const dataDir = path.join(dir, 'data-nan');
  const fatal = await failedStart({ ATTUNE_DATA_DIR: dataDir, ATTUNE_MODEL_DIR: model });
  assert.match(fatal.msg, /model\.layers\.1\.mlp\.up_proj\.weight has 3 NaN values/);
  assert.ok(!fs.existsSync(path.join(dataDir, 'attune.db')), 'no database was created');
});

test('a broken tokenizer is refused at start-up, naming the file, before the database exists', async () => {
  const model = brokenModel('model-tok', (d) => fs.writeFileSync(path.join(d, 'tokenizer.json'), '{"version": "1.0", "mod'));
  const dataDir = path.join(dir, 'data-tok');
  const fatal = await failedStart({ ATTUNE_DATA_DIR: dataDir, ATTUNE_MODEL_DIR: model });
  assert.ok(fatal.msg.includes(path.join(model, 'tokenizer.json')), fatal.msg);
  assert.ok(!fs.existsSync(path.join(dataDir, 'attune.db')), 'no database was created');
});

test('a database path that cannot be opened fails the start-up naming the path, without a stack trace', async () => {
  const dbFile = path.join(dir, 'db-is-a-directory');
  fs.mkdirSync(dbFile, { recursive: true });
  const fatal = await failedStart({ ATTUNE_DATA_DIR: path.join(dir, 'data-db'), ATTUNE_MODEL_DIR: modelDir, ATTUNE_DB_FILE: dbFile });
  assert.ok(fatal.msg.includes(dbFile), fatal.msg);
});
