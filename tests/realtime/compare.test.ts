// Pairwise A/B mode over a real socket.io connection: two candidates with different seeds streamed
// together, the user's choice recorded as a comparison and a preference pair, and the chosen
// candidate continuing the conversation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import type { Socket } from 'socket.io-client';
import type { Engine } from '../../server/lm/engine.ts';
import { conversationDetailSchema } from '../../server/http/schemas.ts';
import { registerUser, type TestUser } from '../helpers/api-server.ts';
import { connectClient, connected, findLongPrompt, loadTestEngine, nextEvent, type RealtimeTestServer, startRealtimeServer } from '../helpers/realtime-server.ts';

interface MessageView {
  id: string;
  conversationId: string;
  parentId: string | null;
  role: string;
  content: string;
  status: string;
  seed: number | null;
}
interface CompareStart {
  conversation: { id: string };
  created: boolean;
  userMessage: MessageView;
  comparisonId: string;
  candidates: { A: MessageView; B: MessageView };
}
interface CompareReady {
  conversationId: string;
  comparisonId: string;
  candidates: { A: MessageView; B: MessageView };
}
interface Delta {
  messageId: string;
  delta: string;
  candidate?: 'A' | 'B';
  comparisonId?: string;
}
interface Done {
  message: MessageView;
  candidate?: 'A' | 'B';
  comparisonId?: string;
}
interface Chosen {
  conversationId: string;
  comparisonId: string;
  choice: string;
  activeMessageId: string;
  preferencePairId: string | null;
}
interface ErrorEvent {
  code: string;
  details: Record<string, unknown>;
}

const QUICK = { maxNewTokens: 6, temperature: 1 };

/** Sends a turn answered by two candidates and collects everything up to compare:ready. */
async function compareTurn(socket: Socket, payload: Record<string, unknown>) {
  const deltas: Delta[] = [];
  const dones: Done[] = [];
  const onDelta = (d: Delta) => deltas.push(d);
  const onDone = (d: Done) => dones.push(d);
  socket.on('message:delta', onDelta);
  socket.on('message:done', onDone);
  const start = nextEvent<CompareStart>(socket, 'compare:start');
  const ready = nextEvent<CompareReady>(socket, 'compare:ready');
  socket.emit('message:send', payload);
  try {
    return { start: await start, ready: await ready, deltas, dones };
  } finally {
    socket.off('message:delta', onDelta);
    socket.off('message:done', onDone);
  }
}

async function choose(socket: Socket, comparisonId: string, choice: string): Promise<Chosen> {
  const chosen = nextEvent<Chosen>(socket, 'compare:chosen');
  socket.emit('compare:choose', { comparisonId, choice });
  return chosen;
}

async function expectError(socket: Socket, event: string, payload: unknown): Promise<ErrorEvent> {
  const err = nextEvent<ErrorEvent>(socket, 'error');
  socket.emit(event, payload);
  return err;
}

describe('A/B comparisons', () => {
  let engine: Engine;
  let modelDir = '';
  let t: RealtimeTestServer;
  let alice: TestUser;
  let a: Socket;
  const sockets: Socket[] = [];
  let longPrompt = '';

  before(async () => {
    ({ engine, dir: modelDir } = await loadTestEngine());
    t = await startRealtimeServer(engine);
    alice = await registerUser(t.app, 'alice');
    longPrompt = await findLongPrompt(engine);
    a = connectClient(t.url, alice.token);
    sockets.push(a);
    await connected(a);
  });
  after(async () => {
    for (const s of sockets) s.disconnect();
    await t.stop();
    await engine.close();
    fs.rmSync(modelDir, { recursive: true, force: true });
  });

  test('compare: two sibling candidates with different seeds stream together, then compare:ready', async () => {
    const { start, ready, deltas, dones } = await compareTurn(a, { content: 'Which is better?', compare: true, sampling: { ...QUICK, seed: 100 } });
    const { A, B } = start.candidates;
    assert.equal(start.created, true);
    assert.equal(A.parentId, start.userMessage.id);
    assert.equal(B.parentId, start.userMessage.id);
    assert.deepEqual([A.seed, B.seed], [100, 101]);
    assert.equal(ready.comparisonId, start.comparisonId);
    for (const c of ['A', 'B'] as const) {
      const id = start.candidates[c].id;
      const mine = deltas.filter((d) => d.messageId === id);
      assert.ok(mine.every((d) => d.candidate === c && d.comparisonId === start.comparisonId));
      assert.equal(ready.candidates[c].content, mine.map((d) => d.delta).join(''));
      assert.equal(ready.candidates[c].status, 'complete');
      const done = dones.find((d) => d.message.id === id);
      assert.equal(done?.candidate, c);
      assert.equal(done?.comparisonId, start.comparisonId);
    }
    const row = t.repos.comparisons.findForUser(start.comparisonId, alice.id)!;
    assert.deepEqual([row.messageA, row.messageB, row.choice], [A.id, B.id, null]);

    const got = conversationDetailSchema.parse((await request(t.app).get(`/api/conversations/${start.conversation.id}`).set(alice.auth)).body);
    assert.deepEqual(
      got.messages.filter((m) => m.parentId === start.userMessage.id).map((m) => m.id),
      [A.id, B.id],
    );
    // The comparison itself comes back too, so a reloaded page can show the undecided choice.
    assert.deepEqual(got.comparisons.map((c) => [c.id, c.messageA, c.messageB, c.choice, c.decidedAt]), [[start.comparisonId, A.id, B.id, null, null]]);
  });

  test('choosing B records the comparison and an "ab" preference pair, and B continues the conversation', async () => {
    const turn = await compareTurn(a, { content: 'Pick one', compare: true, sampling: QUICK });
    const { A, B } = turn.ready.candidates;
    const chosen = await choose(a, turn.start.comparisonId, 'B');
    assert.equal(chosen.choice, 'B');
    assert.equal(chosen.activeMessageId, B.id);
    assert.ok(chosen.preferencePairId);
    const pair = t.repos.preferencePairs.listForUser(alice.id).find((p) => p.id === chosen.preferencePairId)!;
    assert.equal(pair.source, 'ab');
    assert.deepEqual([pair.chosen, pair.rejected, pair.chosenMessage, pair.rejectedMessage], [B.content, A.content, B.id, A.id]);
    assert.deepEqual(pair.prompt, [{ role: 'user', content: 'Pick one' }]);
    const row = t.repos.comparisons.findForUser(turn.start.comparisonId, alice.id)!;
    assert.equal(row.choice, 'B');
    assert.ok(row.decidedAt !== null);
    const detail = conversationDetailSchema.parse((await request(t.app).get(`/api/conversations/${turn.start.conversation.id}`).set(alice.auth)).body);
    assert.equal(detail.comparisons.find((c) => c.id === turn.start.comparisonId)?.choice, 'B');

    // The next turn hangs under B, though A is an equally recent leaf.
    const next = nextEvent<{ userMessage: MessageView }>(a, 'message:start');
    const nextDone = nextEvent<Done>(a, 'message:done');
    a.emit('message:send', { conversationId: turn.start.conversation.id, content: 'and then?', sampling: QUICK });
    assert.equal((await next).userMessage.parentId, B.id);
    await nextDone;

    const again = await expectError(a, 'compare:choose', { comparisonId: turn.start.comparisonId, choice: 'A' });
    assert.equal(again.code, 'already_decided');
    assert.equal(again.details.status, 409);
  });

  test('a tie or both bad stores no pair and A continues; undecided, A continues too', async () => {
    const pairsBefore = t.repos.preferencePairs.countForUser(alice.id);
    for (const choice of ['tie', 'both_bad', null] as const) {
      const turn = await compareTurn(a, { content: `round ${choice}`, compare: true, sampling: QUICK });
      if (choice) {
        const chosen = await choose(a, turn.start.comparisonId, choice);
        assert.equal(chosen.preferencePairId, null);
        assert.equal(chosen.activeMessageId, turn.start.candidates.A.id);
      }
      const next = nextEvent<{ userMessage: MessageView }>(a, 'message:start');
      const nextDone = nextEvent<Done>(a, 'message:done');
      a.emit('message:send', { conversationId: turn.start.conversation.id, content: 'next', sampling: QUICK });
      assert.equal((await next).userMessage.parentId, turn.start.candidates.A.id, String(choice));
      await nextDone;
    }
    assert.equal(t.repos.preferencePairs.countForUser(alice.id), pairsBefore);
  });

  test('no choice while the candidates are generating; aborting them keeps both partial, then the choice counts', async () => {
    const ready = nextEvent<CompareReady>(a, 'compare:ready');
    const start = nextEvent<CompareStart>(a, 'compare:start');
    a.emit('message:send', { content: longPrompt, compare: true, sampling: { temperature: 0, maxNewTokens: 1000 } });
    const { comparisonId, candidates } = await start;
    await nextEvent<Delta>(a, 'message:delta', (d) => d.candidate === 'B');
    const early = await expectError(a, 'compare:choose', { comparisonId, choice: 'A' });
    assert.equal(early.code, 'still_generating');
    a.emit('message:abort', { messageId: candidates.A.id });
    a.emit('message:abort', { messageId: candidates.B.id });
    const done = await ready;
    assert.deepEqual([done.candidates.A.status, done.candidates.B.status], ['partial', 'partial']);
    const chosen = await choose(a, comparisonId, 'A');
    assert.ok(chosen.preferencePairId);
    assert.equal(t.repos.comparisons.findForUser(comparisonId, alice.id)!.choice, 'A');
  });

  test("malformed choices, unknown comparisons and another user's comparison are refused", async () => {
    const turn = await compareTurn(a, { content: 'mine', compare: true, sampling: QUICK });
    assert.equal((await expectError(a, 'compare:choose', { comparisonId: turn.start.comparisonId, choice: 'C' })).code, 'validation_failed');
    assert.equal((await expectError(a, 'compare:choose', { comparisonId: 'x', choice: 'A' })).code, 'validation_failed');
    assert.equal((await expectError(a, 'message:send', { content: 'hi', compare: 'yes' })).code, 'validation_failed');
    assert.equal((await expectError(a, 'compare:choose', { comparisonId: randomUUID(), choice: 'A' })).code, 'not_found');

    const bob = await registerUser(t.app, 'bob');
    const b = connectClient(t.url, bob.token);
    sockets.push(b);
    await connected(b);
    assert.equal((await expectError(b, 'compare:choose', { comparisonId: turn.start.comparisonId, choice: 'A' })).code, 'not_found');
    assert.equal(t.repos.comparisons.findForUser(turn.start.comparisonId, alice.id)!.choice, null);
    assert.ok(a.connected && b.connected);
  });

  test('with ATTUNE_AB_FRACTION=1 every send is a comparison unless compare: false', async () => {
    const always = await startRealtimeServer(engine, { env: { ATTUNE_AB_FRACTION: '1' } });
    try {
      const u = await registerUser(always.app, 'carol');
      const s = connectClient(always.url, u.token);
      sockets.push(s);
      await connected(s);
      const turn = await compareTurn(s, { content: 'surprise me', sampling: QUICK });
      assert.notEqual(turn.start.candidates.A.id, turn.start.candidates.B.id);
      const single = nextEvent<{ message: MessageView }>(s, 'message:start');
      const done = nextEvent<Done>(s, 'message:done');
      s.emit('message:send', { content: 'just one', compare: false, sampling: QUICK });
      await single;
      assert.equal((await done).candidate, undefined);
      s.disconnect();
    } finally {
      await always.stop();
    }
  });
});
