// server/main.ts as a process: start-up with a tiny random model, the first admin's one-time
// password, readiness, graceful shutdown on SIGTERM, and clear failures for a missing model or bad config.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRandomModel } from '../../server/lm/random-model.ts';
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
