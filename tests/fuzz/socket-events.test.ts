// Every socket event (message:send, message:regenerate, message:abort, compare:choose, and names the
// server does not know) with generated payloads over real socket.io-client connections to
// server/main.ts in a child process: payloads from each event's own schema (z.toJSONSchema of the
// contract in realtime/events.ts) and mutations of them, no payload or several, binary attachments,
// acknowledgement callbacks; as a user by token, by API key, by cookie with this server's Origin, and as
// an admin. Every event the server sends back: errors in {code, message, details}, never an internal
// (status ≥ 500) one, no huge echo, no stack trace; /healthz answers after each batch. Handshakes are
// fuzzed too: every refusal is a connect_error carrying {code, message, details}.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Socket } from 'socket.io-client';
import { z } from 'zod';
import { CLIENT_EVENT_SCHEMAS } from '../../server/realtime/events.ts';
import { fromSchema, type JsonSchema, mutated, nastyString, nastyValue, weirdUnit } from './arbitraries.ts';
import {
  ADMIN_PASSWORD,
  authed,
  chatTurn,
  type ChatTurn,
  checkAlive,
  createApiKey,
  type Credentials,
  judgeSocketEvent,
  Ledger,
  login,
  openSocket,
  register,
  runsOr,
  seedFor,
  socketConnected,
  startFuzzServer,
} from './harness.ts';

const EVENTS = Object.keys(CLIENT_EVENT_SCHEMAS) as Array<keyof typeof CLIENT_EVENT_SCHEMAS>;
const SCHEMAS = Object.fromEntries(EVENTS.map((e) => [e, z.toJSONSchema(CLIENT_EVENT_SCHEMAS[e], { io: 'input', unrepresentable: 'any' }) as JsonSchema]));
/** The barrier after each case: an abort of a message nobody has answers not_found, after every earlier packet. */
const PROBE_ID = 'f0220000-0000-4000-8000-00000000beef';
/** socket.io-client refuses to emit these names itself (the raw-frame suite sends them). */
const RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);

const UNKNOWN_NAMES = fc.oneof(
  fc.constantFrom('error', 'message', 'message:send ', 'MESSAGE:SEND', 'message:Send', 'message:', ':', '', 'training:progress', 'training:job', 'admin:anything',
    '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'compare:start', 'message:delta', 'ping'),
  nastyString,
  // Long names: a refusal must not send them back.
  fc.constantFrom('x'.repeat(200_000), 'ü'.repeat(20_000), `message:send${' '.repeat(50_000)}`),
);

type Caller = 'token-user' | 'apikey-user' | 'cookie-user' | 'admin';
type Shape = 'one' | 'none' | 'two' | 'many' | 'binary' | 'ack' | 'extra-binary';

const caseArb = fc
  .oneof({ weight: 8, arbitrary: fc.constantFrom<string>(...EVENTS) }, { weight: 2, arbitrary: UNKNOWN_NAMES })
  .chain((event) =>
    fc.record({
      event: fc.constant(event),
      caller: fc.constantFrom<Caller>('token-user', 'token-user', 'apikey-user', 'cookie-user', 'admin'),
      shape: fc.oneof({ weight: 10, arbitrary: fc.constant<Shape>('one') }, { weight: 1, arbitrary: fc.constantFrom<Shape>('none', 'two', 'many', 'binary', 'ack', 'extra-binary') }),
      payload: event in SCHEMAS ? fc.oneof({ weight: 1, arbitrary: fromSchema(SCHEMAS[event]!) }, { weight: 2, arbitrary: mutated(fromSchema(SCHEMAS[event]!)) }) : nastyValue,
      second: nastyValue,
      pick: fc.nat(),
    }),
  );

type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

const server = await startFuzzServer();
const ledger = new Ledger('socket-events');
let user: Credentials;
let admin: Credentials;
let apiKey = '';
let turn: ChatTurn;
let comparisonId = '';
const sockets = new Map<Caller, Socket>();
/** Events received per socket since its last case began. */
const inbox = new Map<Socket, Array<{ name: string; payload: unknown }>>();

function watch(s: Socket): Socket {
  inbox.set(s, []);
  s.onAny((name: string, payload: unknown) => inbox.get(s)!.push({ name, payload }));
  return s;
}

async function socketFor(caller: Caller): Promise<Socket> {
  const existing = sockets.get(caller);
  if (existing?.connected) return existing;
  existing?.disconnect();
  const s =
    caller === 'cookie-user'
      ? openSocket(server.url, undefined, { cookie: `attune_session=${user.token}`, origin: server.origin })
      : openSocket(server.url, caller === 'admin' ? admin.token : caller === 'apikey-user' ? apiKey : user.token);
  watch(s);
  await socketConnected(s);
  sockets.set(caller, s);
  return s;
}

/** Real ids in place of random ones now and then, so the services behind validation run too. */
function withRealIds(payload: unknown, pick: number): unknown {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return payload;
  const p = { ...(payload as Record<string, unknown>) };
  if (typeof p.messageId === 'string' && pick % 3 !== 0) p.messageId = pick % 2 ? turn.assistantMessageId : turn.userMessageId;
  if (typeof p.conversationId === 'string' && pick % 3 !== 0) p.conversationId = turn.conversationId;
  if (typeof p.comparisonId === 'string' && pick % 3 !== 0 && comparisonId) p.comparisonId = comparisonId;
  if (p.messageId === PROBE_ID) p.messageId = turn.assistantMessageId;
  // Short answers (generation is the slow part); a rare long message or large cap reaches the context limit.
  if (typeof p.sampling === 'object' && p.sampling !== null && !Array.isArray(p.sampling)) {
    const s = { ...(p.sampling as Record<string, unknown>) };
    if (typeof s.maxNewTokens === 'number' && s.maxNewTokens > 3 && pick % 20 !== 0) s.maxNewTokens = 1 + (pick % 3);
    p.sampling = s;
  }
  if (typeof p.content === 'string' && pick % 7 === 0) p.content = 'word '.repeat(2000).slice(0, [1_759, 4_000, 8_000][pick % 3]);
  return p;
}

function argsOf(c: Case): unknown[] {
  const payload = withRealIds(c.payload, c.pick);
  switch (c.shape) {
    case 'one':
      return [payload];
    case 'none':
      return [];
    case 'two':
      return [payload, c.second];
    case 'many':
      return [payload, ...Array.from({ length: [3, 50, 2_000][c.pick % 3]! }, () => ({}))];
    case 'binary':
      return [Buffer.from([0, 1, 2, 0xff])];
    case 'extra-binary':
      return [payload, Buffer.alloc(64, 7)];
    case 'ack':
      return [payload, () => undefined];
  }
}

function judgeInbox(s: Socket, area: string, repro: string): { started: number; done: number } {
  let started = 0;
  let done = 0;
  for (const { name, payload } of inbox.get(s) ?? []) {
    if (name === 'message:start' || name === 'compare:start') started++;
    if ((name === 'message:done' && (payload as { candidate?: unknown })?.candidate === undefined) || name === 'compare:ready') done++;
    for (const v of judgeSocketEvent(name, payload)) ledger.fail(v.kind, area, repro, v.detail, repro);
  }
  return { started, done };
}

/**
 * Waits for the probe's answer (at most 3 s: a server that answers the probe differently costs time,
 * not correctness) and for the answers of any generation the case started (at most 20 s).
 */
async function settle(s: Socket): Promise<void> {
  const t0 = Date.now();
  s.emit('message:abort', { messageId: PROBE_ID });
  const isProbe = (e: { name: string; payload: unknown }) => {
    const p = e.payload as { code?: string; details?: { event?: string } } | null;
    return e.name === 'error' && p?.details?.event === 'message:abort' && (p.code === 'not_found' || p.code === 'validation_failed');
  };
  while (s.connected) {
    const events = inbox.get(s) ?? [];
    const started = events.filter((e) => e.name === 'message:start' || e.name === 'compare:start').length;
    const done = events.filter((e) => (e.name === 'message:done' && (e.payload as { candidate?: unknown })?.candidate === undefined) || e.name === 'compare:ready').length;
    const waited = Date.now() - t0;
    if (started > done ? waited > 20_000 : events.some(isProbe) || waited > 3_000) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

before(async () => {
  admin = await login(server.url, 'admin', ADMIN_PASSWORD);
  user = await register(server.url, `fuzzsock${process.pid % 1000}`);
  apiKey = (await createApiKey(server.url, user.token, 'socket')).key;
  turn = await chatTurn(server.url, user.token, 'hello there');
  // A comparison to choose in: a send answered by two candidates.
  const s = watch(openSocket(server.url, user.token));
  await socketConnected(s);
  s.emit('message:send', { content: 'compare these', compare: true, sampling: { maxNewTokens: 2 } });
  await settle(s);
  const start = inbox.get(s)!.find((e) => e.name === 'compare:start')?.payload as { comparisonId?: string } | undefined;
  comparisonId = start?.comparisonId ?? '';
  s.disconnect();
});

after(async () => {
  for (const s of sockets.values()) s.disconnect();
  process.stdout.write(`${ledger.report()}\n${ledger.serverErrors(server.logs)}\n`);
  ledger.save();
  await server.stop();
});

const BATCH = 20;

describe('fuzz: socket events over socket.io-client', () => {
  test('the fixtures hold a conversation and a comparison', () => {
    assert.ok(turn.assistantMessageId && turn.conversationId);
    assert.ok(comparisonId, 'a compare:true send starts a comparison');
  });

  test('every event and payload: shaped errors, no internal error, no echo, no stack trace, the process alive', async () => {
    const recent: string[] = [];
    let n = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const area = `socket ${EVENTS.includes(c.event as never) ? c.event : '(unknown event)'}`;
        let s: Socket;
        try {
          s = await socketFor(c.caller);
        } catch (e) {
          ledger.tried(area);
          ledger.fail('connect', area, `connect as ${c.caller}`, String(e));
          await checkAlive(server, ledger, area, recent);
          return true;
        }
        inbox.set(s, []);
        const args = argsOf(c);
        const repro = `${c.caller} emit(${JSON.stringify(c.event.slice(0, 80))}${c.event.length > 80 ? `…(${c.event.length} chars)` : ''}, ${args.map((a) => (typeof a === 'function' ? '<ack>' : (JSON.stringify(a) ?? String(a)).slice(0, 200))).join(', ')})`;
        ledger.tried(area);
        recent.push(repro);
        if (RESERVED.has(c.event)) {
          ledger.outcome(area, 'reserved');
          return true;
        }
        s.emit(c.event, ...args);
        await settle(s);
        const { started, done } = judgeInbox(s, area, repro);
        const errors = (inbox.get(s) ?? []).filter((e) => e.name === 'error').length;
        // One error is the probe's own; more means the case itself was refused.
        ledger.outcome(area, !s.connected ? 'disconnected' : started ? (done >= started ? 'answered' : 'unfinished') : errors > 1 ? 'refused' : 'quiet');
        if (started > done) ledger.fail('timeout', area, repro, `${started} answers started, ${done} finished within 20 s`);
        if (!s.connected || ++n % BATCH === 0) await checkAlive(server, ledger, area, recent);
        return true;
      }),
      { seed: seedFor('socket:events'), numRuns: runsOr(150) * (EVENTS.length + 1) },
    );
    await checkAlive(server, ledger, 'socket events', recent);
    const mine = ledger.failures.filter((f) => f.area.startsWith('socket ') && f.area !== 'socket handshake' && f.area !== 'socket round trip');
    assert.equal(mine.length, 0, `\n${ledger.report(3)}`);
  });

  // What the socket answers is what is stored: the message:start echo of the user's message must be
  // the text a later GET of the conversation returns.
  test('round trip: the echoed user message is the stored one', async () => {
    const area = 'socket round trip';
    const content = fc.oneof(fc.string({ unit: weirdUnit, minLength: 1, maxLength: 20 }), fc.constantFrom('a\ud800b', '\udfff?', 'x\u0000y', 'e\u0301'));
    const s = await socketFor('token-user');
    await fc.assert(
      fc.asyncProperty(content, async (text) => {
        ledger.tried(area);
        inbox.set(s, []);
        s.emit('message:send', { content: text, sampling: { maxNewTokens: 1 } });
        await settle(s);
        const start = inbox.get(s)!.find((e) => e.name === 'message:start')?.payload as { conversation: { id: string }; userMessage: { id: string; content: string } } | undefined;
        if (!start) return true; // refused (a blank message): nothing stored
        const stored = await authed(server.url, user.token, 'GET', `/api/conversations/${start.conversation.id}`);
        const read = (stored.body.messages as Array<{ id: string; content: string }> | undefined)?.find((m) => m.id === start.userMessage.id)?.content;
        ledger.outcome(area, read === start.userMessage.content ? 'same' : 'differs');
        if (read !== start.userMessage.content) ledger.fail('round-trip', area, `message:send ${JSON.stringify(text)}`, `echoed ${JSON.stringify(start.userMessage.content)}, stored ${JSON.stringify(read)}`);
        return true;
      }),
      { seed: seedFor('socket:round-trip'), numRuns: runsOr(30) },
    );
    const mine = ledger.failures.filter((f) => f.area === area);
    assert.equal(mine.length, 0, `\n${ledger.report(3)}`);
  });

  test('handshakes: a refused connection is a connect_error with {code, message, details}', async () => {
    const area = 'socket handshake';
    const recent: string[] = [];
    const handshake = fc.record({
      auth: fc.oneof(
        fc.constant<unknown>(undefined),
        nastyValue.map((t) => ({ token: t })),
        fc.constantFrom<unknown>({ token: 'atn_' + 'x'.repeat(40) }, { token: '' }, { token: null }, { token: ['a'] }, { tokens: 'x' }, 'string-auth', 42, []),
        fc.constant(null).map(() => ({ token: user.token, extra: 'x' })),
      ),
      cookie: fc.oneof(fc.constant<string | undefined>(undefined), fc.constant(null).map(() => `attune_session=${user.token}`), fc.constantFrom('attune_session=%', 'attune_session=', 'attune_session=%E0%A4%A', `attune_session=${'a'.repeat(3000)}`)),
      origin: fc.constantFrom<string | undefined>(undefined, 'http://evil.example', 'null', 'http://127.0.0.1:1'),
    });
    await fc.assert(
      fc.asyncProperty(handshake, async (h) => {
        const s = openSocket(server.url, undefined, { ...(h.cookie ? { cookie: h.cookie } : {}), ...(h.origin ? { origin: h.origin } : {}) });
        // auth is read at connect time; set it raw so non-object values reach the server.
        (s as unknown as { auth: unknown }).auth = h.auth;
        const repro = `handshake auth=${(JSON.stringify(h.auth) ?? 'undefined').slice(0, 200)} cookie=${h.cookie?.slice(0, 60)} origin=${h.origin}`;
        recent.push(repro);
        ledger.tried(area);
        try {
          // A handshake the server drops without a connect_error (a malformed CONNECT packet) ends here.
          await socketConnected(s, 2_000);
          ledger.outcome(area, 'connected');
        } catch (e) {
          const data = (e as { data?: unknown }).data;
          if (data === undefined) {
            ledger.outcome(area, `transport: ${(e as Error).message}`);
          } else {
            ledger.outcome(area, `refused ${(data as { code?: string }).code}`);
            for (const v of judgeSocketEvent('connect_error', data)) ledger.fail(v.kind, area, repro, v.detail, repro);
          }
        } finally {
          s.disconnect();
        }
        return true;
      }),
      { seed: seedFor('socket:handshake'), numRuns: runsOr(60) },
    );
    await checkAlive(server, ledger, area, recent);
    const mine = ledger.failures.filter((f) => f.area === area);
    assert.equal(mine.length, 0, `\n${ledger.report(3)}`);
  });
});
