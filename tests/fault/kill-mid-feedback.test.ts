// kill -9 of the real server (a child process) in the middle of a burst of writes from concurrent
// clients: new conversations (201) and votes on answers (200). After a restart: PRAGMA integrity_check
// is ok, and no acknowledged write is lost: every conversation whose 201 arrived exists, and every
// answer's stored vote is its last acknowledged one (or the one in flight at the kill).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { api, integrityCheck, register, socketFor, startServerProcess } from '../helpers/process-server.ts';

const WORKERS = 8;
const KILL_AFTER_ACKS = 400;

test('kill -9 mid-feedback-burst: no acknowledged write is lost', { timeout: 120_000 }, async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-fault-burst-'));
  const dbFile = path.join(dataDir, 'attune.db');
  let server = await startServerProcess({ dataDir });
  try {
    const user = await register(server.url, 'voter');
    // One answer per worker to vote on, from real chat turns.
    const socket = await socketFor(server.url, user.token);
    const answers: string[] = [];
    for (let i = 0; i < WORKERS; i++) {
      const done = new Promise<{ message: { id: string } }>((resolve) => socket.once('message:done', resolve));
      socket.emit('message:send', { content: `question ${i}`, sampling: { maxNewTokens: 4, seed: i } });
      answers.push((await done).message.id);
    }
    socket.disconnect();

    const conversations: string[] = [];
    /** Per answer: the values acknowledged in order, and the one sent but not yet answered. */
    const votes = answers.map(() => ({ acked: [] as string[], inFlight: null as string | null }));
    let acks = 0;
    let stopped = false;
    let killed: Promise<void> | null = null;
    const worker = async (w: number) => {
      for (let i = 0; !stopped; i++) {
        try {
          if (i % 2 === 0) {
            const res = await api(server.url, 'POST', '/api/conversations', user.token, { title: `burst ${w}.${i}` });
            if (res.status === 201) conversations.push(res.body.id as string);
            else assert.fail(`unexpected ${res.status} before the kill: ${JSON.stringify(res.body)}`);
          } else {
            const value = i % 4 === 1 ? 'up' : 'down';
            votes[w]!.inFlight = value;
            const res = await api(server.url, 'PUT', `/api/messages/${answers[w]}/feedback`, user.token, { value });
            if (res.status !== 200) assert.fail(`unexpected ${res.status} before the kill: ${JSON.stringify(res.body)}`);
            votes[w]!.acked.push(value);
            votes[w]!.inFlight = null;
          }
        } catch (e) {
          if (killed) return; // the connection died with the server: this write was never acknowledged
          throw e;
        }
        if (++acks === KILL_AFTER_ACKS) killed = server.kill();
      }
    };
    let failed: unknown;
    const workers = Array.from({ length: WORKERS }, (_, w) =>
      worker(w).catch((e: unknown) => {
        failed ??= e;
        stopped = true;
      }),
    );
    while (!killed && failed === undefined) await new Promise((r) => setTimeout(r, 5));
    if (failed !== undefined) throw failed;
    await killed;
    stopped = true;
    await Promise.all(workers);
    if (failed !== undefined) throw failed;
    t.diagnostic(`acknowledged before the kill: ${acks} writes (${conversations.length} conversations, ${votes.reduce((a, v) => a + v.acked.length, 0)} votes)`);

    assert.equal(integrityCheck(dbFile), 'ok');
    server = await startServerProcess({ dataDir });
    const listed = new Set<string>();
    for (let cursor: string | null = null, first = true; first || cursor; first = false) {
      const res = await api(server.url, 'GET', `/api/conversations?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, user.token);
      assert.equal(res.status, 200);
      for (const c of res.body.items as { id: string }[]) listed.add(c.id);
      cursor = res.body.nextCursor ?? null;
    }
    const missing = conversations.filter((id) => !listed.has(id));
    assert.deepEqual(missing, [], 'every conversation whose 201 arrived is there');
    for (const [w, v] of votes.entries()) {
      if (v.acked.length === 0 && v.inFlight === null) continue;
      const res = await api(server.url, 'GET', `/api/messages/${answers[w]}/feedback`, user.token);
      const allowed = [v.acked.at(-1), v.inFlight].filter((x) => x !== undefined && x !== null);
      assert.equal(res.status, 200, `answer ${w} keeps a vote (acked ${v.acked.length})`);
      assert.ok(allowed.includes(res.body.value), `answer ${w}: stored ${res.body.value}, last acknowledged ${v.acked.at(-1)}, in flight ${v.inFlight}`);
    }
  } finally {
    await server.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
