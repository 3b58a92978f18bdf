// kill -9 of the real server (a child process on the default model) while a retraining job started
// through the admin API is training. After a restart: PRAGMA integrity_check is ok, the job is failed
// (interrupted), its version is failed and never serves: not current, and answers stay generic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../server/db/connection.ts';
import { createRepositories } from '../../server/db/repositories.ts';
import { ADMIN_PASSWORD, api, integrityCheck, login, register, socketFor, startServerProcess } from '../helpers/process-server.ts';

test('kill -9 mid-training: the job is failed after the restart and its version never serves', { timeout: 180_000 }, async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-fault-train-'));
  const dbFile = path.join(dataDir, 'attune.db');
  let server = await startServerProcess({ dataDir, env: { ATTUNE_PDPO_EPOCHS: '50', ATTUNE_TRAINER_THREADS: '1' } });
  try {
    const alice = await register(server.url, 'alice');
    const bob = await register(server.url, 'bob');
    // Preference pairs as votes would leave them, written by a second connection while the server runs.
    const db = openDatabase(dbFile);
    const repos = createRepositories(db);
    for (const [user, likesShort] of [[alice, true], [bob, false]] as const) {
      for (let i = 0; i < 24; i++) {
        const short = 'Yes.';
        const long = 'Yes, and here is a longer answer with more detail.';
        repos.preferencePairs.insert({
          id: randomUUID(), userId: user.id, prompt: [{ role: 'user', content: `question ${i}` }], chosen: likesShort ? short : long, rejected: likesShort ? long : short,
          source: 'ab', chosenMessage: null, rejectedMessage: null, createdAt: Date.now(),
        });
      }
    }
    db.close();

    const admin = await login(server.url, 'admin', ADMIN_PASSWORD);
    const adminSocket = await socketFor(server.url, admin);
    const training = new Promise<{ jobId: string; step: number }>((resolve) => {
      adminSocket.on('training:progress', (p: { jobId: string; step: number }) => {
        if (p.step >= 1) resolve(p);
      });
    });
    const startedAt = Date.now();
    const started = await api(server.url, 'POST', '/api/admin/training/jobs', admin, {});
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const jobId = started.body.job.id as string;
    let timer: NodeJS.Timeout | undefined;
    const progress = await Promise.race([training, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no training progress within 90 s')), 90_000)))]);
    clearTimeout(timer);
    assert.equal(progress.jobId, jobId);
    const killedAt = Date.now();
    await server.kill();
    t.diagnostic(`killed at step ${progress.step}, ${killedAt - startedAt} ms after the job started`);
    adminSocket.disconnect();

    assert.equal(integrityCheck(dbFile), 'ok');
    server = await startServerProcess({ dataDir });
    const job = await api(server.url, 'GET', `/api/admin/training/jobs/${jobId}`, await login(server.url, 'admin', ADMIN_PASSWORD));
    assert.equal(job.status, 200);
    assert.equal(job.body.job.status, 'failed');
    assert.match(job.body.job.error, /interrupted/);
    const versions = await api(server.url, 'GET', '/api/admin/training/versions', await login(server.url, 'admin', ADMIN_PASSWORD));
    const own = (versions.body.versions as { jobId: string | null; status: string; current: boolean }[]).filter((v) => v.jobId === jobId);
    assert.equal(own.length, 1, 'the job had made its version');
    assert.equal(own[0]!.status, 'failed');
    assert.equal(own[0]!.current, false);
    assert.equal((versions.body.versions as { current: boolean }[]).some((v) => v.current), false, 'no version serves');
    const mine = await api(server.url, 'GET', '/api/me/personalization', alice.token);
    assert.equal(mine.body.version, null);
    assert.equal(mine.body.personalized, false);
    // A reply after the restart is generic: no soft prompt from the killed job.
    const socket = await socketFor(server.url, alice.token);
    const done = new Promise<{ message: { userModelVersion: string | null; sampling: { softPrompt: { source: string } } } }>((resolve) => socket.once('message:done', resolve));
    socket.emit('message:send', { content: 'hello', sampling: { maxNewTokens: 4 } });
    const reply = await done;
    socket.disconnect();
    assert.equal(reply.message.userModelVersion, null);
    assert.equal(reply.message.sampling.softPrompt.source, 'none');
  } finally {
    await server.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
