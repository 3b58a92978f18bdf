// Raw frames over a hand-rolled WebSocket to server/main.ts in a child process, each case on a fresh,
// signed-in socket.io session: the frames a well-behaved client never sends. Many arguments (the
// 42,000-argument frame that used to crash the process), deep nesting, huge strings, bytes that are not
// UTF-8, lone surrogates, binary attachments that lie about themselves, malformed engine.io and
// socket.io packets, broken WebSocket framing; then generated frames. After every case: whatever the
// server sent is an `error` event in {code, message, details} (or a closed connection), never an
// internal error or a stack trace, and the process still answers /healthz.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nastyString, nastyValue, rarely, toJsonText } from './arbitraries.ts';
import { checkAlive, type Credentials, describeRequest, judgeHttp, judgeSocketEvent, Ledger, type RawRequest, register, runsOr, seedFor, send, startFuzzServer } from './harness.ts';
import { OP, openSocketIo, RawWebSocket } from './ws-raw.ts';

const PROBE_ID = 'f0220000-0000-4000-8000-00000000beef';
const PROBE = `42["message:abort",{"messageId":"${PROBE_ID}"}]`;

interface FrameCase {
  name: string;
  /** 'none': an engine.io session without the socket.io CONNECT; 'raw': only the WebSocket handshake. */
  session?: 'signed-in' | 'none' | 'raw';
  send(ws: RawWebSocket, token: string): void;
}

const text = (s: string | Buffer) => (ws: RawWebSocket) => ws.text(s);
const texts = (...xs: Array<string | Buffer>) => (ws: RawWebSocket) => xs.forEach((x) => ws.text(x));
const args = (event: string, n: number, item = '{}') => `42[${JSON.stringify(event)}${`,${item}`.repeat(n)}]`;
const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);
const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
const bytes = (...parts: Array<string | number[]>) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));
const placeholder = (num: unknown) => `{"_placeholder":true,"num":${JSON.stringify(num)}}`;

const CASES: FrameCase[] = [
  // Many arguments: one payload is the contract; tens of thousands must not reach a spread call.
  { name: '42,000 extra {} arguments to message:send', send: text(args('message:send', 42_000)) },
  { name: '100,000 extra 0 arguments to message:send', send: text(args('message:send', 100_000, '0')) },
  { name: '42,000 arguments to an unknown event', send: text(args('nope', 42_000)) },
  { name: '42,000 arguments to message:abort', send: text(args('message:abort', 42_000)) },
  { name: '42,000 arguments to message:regenerate', send: text(args('message:regenerate', 42_000)) },
  { name: '42,000 arguments to compare:choose', send: text(args('compare:choose', 42_000)) },
  { name: '42,000 arguments with an ack id', send: text(`421${args('message:send', 42_000).slice(2)}`) },
  { name: '60,000 null arguments', send: text(args('message:send', 60_000, 'null')) },
  // Deep nesting.
  { name: 'payload nested 100,000 arrays deep', send: text(`42["message:send",${deepArray(100_000)}]`) },
  { name: 'payload nested 30,000 objects deep', send: text(`42["message:send",${deepObject(30_000)}]`) },
  { name: 'content nested 50,000 arrays deep', send: text(`42["message:send",{"content":${deepArray(50_000)}}]`) },
  { name: 'sampling nested 30,000 objects deep', send: text(`42["message:send",{"content":"hi","sampling":${deepObject(30_000)}}]`) },
  { name: 'event name nested 50,000 arrays deep', send: text(`42[${deepArray(50_000)}]`) },
  { name: 'second argument nested 100,000 deep', send: text(`42["message:abort",{"messageId":"${PROBE_ID}"},${deepArray(100_000)}]`) },
  { name: 'binary placeholder 20,000 arrays deep', send: (ws) => (ws.text(`451-["message:send",${'['.repeat(20_000)}${placeholder(0)}${']'.repeat(20_000)}]`), ws.binary(Buffer.from([1, 2, 3]))) },
  { name: 'binary event nested 60,000 objects deep', send: (ws) => (ws.text(`451-["message:send",${'{"a":'.repeat(60_000)}${placeholder(0)}${'}'.repeat(60_000)}]`), ws.binary(Buffer.from([1]))) },
  // Huge strings.
  { name: 'content of 250,000 characters', send: text(`42["message:send",{"content":"${'a'.repeat(250_000)}"}]`) },
  { name: 'event name of 250,000 characters', send: text(`42["${'e'.repeat(250_000)}",{}]`) },
  { name: 'event name of 60,000 escaped lone surrogates', send: text(`42["${'\\ud800'.repeat(40_000)}",{}]`) },
  { name: 'frame over the 256 KiB limit', send: text(`42["message:send",{"content":"${'a'.repeat(300_000)}"}]`) },
  { name: 'messageId of 200,000 characters', send: text(`42["message:abort",{"messageId":"${'f'.repeat(200_000)}"}]`) },
  // Not UTF-8, surrogates, NUL.
  { name: 'text frame with invalid UTF-8 (ff fe)', send: text(bytes('42["message:send",{"content":"', [0xff, 0xfe], '"}]')) },
  { name: 'text frame with a truncated UTF-8 sequence', send: text(bytes('42["message:send",{"content":"a', [0xe0, 0xa4], '"}]')) },
  { name: 'text frame with CESU-8 surrogate bytes', send: text(bytes('42["message:send",{"content":"', [0xed, 0xa0, 0x80], '"}]')) },
  { name: 'text frame with overlong NUL (c0 80)', send: text(bytes('42["message:abort",{"messageId":"', [0xc0, 0x80], '"}]')) },
  { name: 'escaped lone surrogate in content', send: text('42["message:send",{"content":"a\\ud800b\\udfff","sampling":{"maxNewTokens":1}}]') },
  { name: 'escaped lone surrogate in event name', send: text('42["message:send\\ud800",{}]') },
  { name: 'raw NUL bytes inside the JSON', send: text(bytes('42["message:send",{"content":"a', [0], '"}]')) },
  { name: 'escaped NUL in every field', send: text('42["message:send\\u0000",{"content\\u0000":"\\u0000","conversationId":"\\u0000"}]') },
  // Binary attachments that lie.
  { name: 'placeholder without its attachment', send: texts('451-["message:send",' + placeholder(0) + ']') },
  { name: 'two attachments announced, one sent', send: (ws) => (ws.text(`452-["message:send",${placeholder(0)},${placeholder(1)}]`), ws.binary(Buffer.from([1]))) },
  { name: 'placeholder number out of range', send: (ws) => (ws.text(`451-["message:send",${placeholder(7)}]`), ws.binary(Buffer.from([1]))) },
  { name: 'placeholder number negative', send: (ws) => (ws.text(`451-["message:send",${placeholder(-1)}]`), ws.binary(Buffer.from([1]))) },
  { name: 'placeholder number a string', send: (ws) => (ws.text(`451-["message:send",${placeholder('__proto__')}]`), ws.binary(Buffer.from([1]))) },
  { name: 'placeholder number an object', send: (ws) => (ws.text(`451-["message:send",${placeholder({ valueOf: 1 })}]`), ws.binary(Buffer.from([1]))) },
  { name: 'placeholder as the event name', send: (ws) => (ws.text(`451-[${placeholder(0)},{}]`), ws.binary(Buffer.from('message:send'))) },
  { name: 'placeholder in a plain (non-binary) event', send: text(`42["message:send",{"content":"hi"},${placeholder(0)}]`) },
  { name: 'a billion attachments announced', send: texts('45999999999-["message:send",{}]') },
  { name: 'attachment count not a number', send: texts('45x-["message:send",{}]', '45-["message:send",{}]', '45-1-["message:send",{}]') },
  { name: 'binary frame with no binary event', send: (ws) => ws.binary(Buffer.from([4, 2, 0x5b, 0x5d])) },
  { name: '10,000 binary frames after one placeholder', send: (ws) => (ws.text(`451-["message:send",${placeholder(0)}]`), Array.from({ length: 10_000 }, () => ws.binary(Buffer.from([0])))) },
  { name: 'binary attachment of 250 KB', send: (ws) => (ws.text(`451-["message:send",{"content":${placeholder(0)}}]`), ws.binary(Buffer.alloc(250_000, 0x61))) },
  { name: 'binary ack', send: (ws) => (ws.text(`461-[${placeholder(0)}]`), ws.binary(Buffer.from([1]))) },
  // Malformed socket.io and engine.io packets.
  ...[
    '4', '42', '42[', '42]', '42{}', '42"message:send"', '42[]', '42[1]', '42[null]', '42[{}]', '42[[]]', '42[true,{}]', '42[1e999]', '42["message:send"]',
    '42["message:send",]', '42["message:send",{}', '42["message:send",{}]]', '42 ["message:send",{}]', '42\n["message:send",{}]', '4x', '47[]', '49', '4\u0000',
    '43[]', '431[]', '4312["x"]', '44{}', '44{"message":"forged"}', '41', '40', '40{"token":1}', '40[]', '40"x"', '42/admin,["message:send",{}]',
    '42/,["message:send",{}]', '42/../,["message:send",{}]', `42/${'n'.repeat(10_000)},["x"]`, '40/admin,', '40/admin,{"token":"x"}', '41/admin,',
    '4299999999999999999999999["message:abort",{}]', '42-1["message:abort",{}]', '42abc["message:abort",{}]', '421.5["message:abort",{}]',
    '42["connect"]', '42["connect_error",{}]', '42["disconnect"]', '42["disconnecting"]', '42["newListener","x"]', '42["removeListener","x"]',
    '42["error",{}]', '42["__proto__",{}]', '42["constructor",{}]', '42["toString"]', '42["hasOwnProperty","x"]',
    '', '0', '1', '2', '3', '5', '6', '7', '8', '9', 'x', '00', '0{}', '2probe', '3probe', '5x', '6'.repeat(10_000),
  ].map((p): FrameCase => ({ name: `packet ${JSON.stringify(p.length > 40 ? `${p.slice(0, 40)}…` : p)}`, send: text(p) })),
  { name: 'connect twice', send: (ws, token) => ws.text(`40${JSON.stringify({ token })}`) },
  { name: 'disconnect, then an event', send: texts('41', '42["message:send",{"content":"hi"}]') },
  { name: 'engine close, then an event', send: texts('1', '42["message:send",{"content":"hi"}]') },
  { name: '5,000 pongs', send: (ws) => Array.from({ length: 5_000 }, () => ws.text('3')) },
  { name: '2,000 events in a burst', send: (ws) => Array.from({ length: 2_000 }, () => ws.text(`42["message:abort",{"messageId":"${PROBE_ID}"}]`)) },
  // Events before the socket.io CONNECT, and before anything at all.
  { name: 'events without a CONNECT', session: 'none', send: texts('42["message:send",{"content":"hi"}]', args('message:send', 42_000)) },
  { name: 'CONNECT with a huge auth payload', session: 'none', send: texts(`40{"token":"${'t'.repeat(250_000)}"}`) },
  { name: 'CONNECT with deep auth', session: 'none', send: texts(`40{"token":${deepArray(100_000)}}`) },
  { name: 'CONNECT with 42,000-key auth', session: 'none', send: texts(`40{${Array.from({ length: 42_000 }, (_, i) => `"k${i}":0`).join(',')}}`) },
  { name: 'socket.io frames before the engine.io open', session: 'raw', send: texts(args('message:send', 42_000)) },
  // WebSocket framing the protocol forbids.
  { name: 'unmasked client frame', send: (ws) => ws.frame(OP.text, Buffer.from(PROBE), { mask: false }) },
  { name: 'reserved opcode 3', send: (ws) => ws.frame(3, Buffer.from('x')) },
  { name: 'reserved opcode 11', send: (ws) => ws.frame(11, Buffer.from('x')) },
  { name: 'RSV bits set', send: (ws) => ws.frame(OP.text, Buffer.from(PROBE), { rsv: 7 }) },
  { name: 'fragmented event', send: (ws) => (ws.frame(OP.text, Buffer.from('42["message:abort",'), { fin: false }), ws.frame(OP.continuation, Buffer.from(`{"messageId":"${PROBE_ID}"}]`))) },
  { name: 'continuation without a start', send: (ws) => ws.frame(OP.continuation, Buffer.from('x')) },
  { name: 'new message inside a fragmented one', send: (ws) => (ws.frame(OP.text, Buffer.from('42['), { fin: false }), ws.frame(OP.text, Buffer.from('x'))) },
  { name: 'ping with 200 bytes (control frames max 125)', send: (ws) => ws.frame(OP.ping, Buffer.alloc(200, 1)) },
  { name: 'fragmented ping', send: (ws) => ws.frame(OP.ping, Buffer.from('x'), { fin: false }) },
  { name: 'close with an invalid code', send: (ws) => ws.frame(OP.close, Buffer.from([0x03, 0xe7])) },
  { name: 'close with a 1-byte body', send: (ws) => ws.frame(OP.close, Buffer.from([1])) },
  { name: 'announced length 2^63', send: (ws) => ws.frame(OP.text, Buffer.from('x'), { announcedLength: 2n ** 63n }) },
  { name: 'announced length 100 MB, then silence', send: (ws) => ws.frame(OP.text, Buffer.from('x'), { announcedLength: 100_000_000 }) },
  { name: 'garbage bytes on the stream', send: (ws) => ws.raw(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x00])) },
  { name: '16,000 fragments of 1 byte', send: (ws) => (Array.from({ length: 16_000 }, () => ws.frame(OP.continuation, Buffer.from('a'), { fin: false })), ws.frame(OP.text, Buffer.from('x'))) },
];

/** engine.io message packets of the socket.io protocol, judged as the events they carry. */
function judgeFrames(ws: RawWebSocket, area: string, repro: string): { started: number; done: number; probe: boolean } {
  let started = 0;
  let done = 0;
  let probe = false;
  for (const m of ws.messages) {
    if (m.opcode !== OP.text) continue;
    const t = m.data.toString('utf8');
    if (t.startsWith('42') || t.startsWith('43')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(t.slice(2).replace(/^\d+/, ''));
      } catch {
        ledger.fail('bad-frame', area, repro, `the server sent a packet that is not JSON: ${t.slice(0, 200)}`);
        continue;
      }
      const [name, payload] = Array.isArray(parsed) ? parsed : [];
      if (typeof name !== 'string') continue;
      if (name === 'message:start' || name === 'compare:start') started++;
      if ((name === 'message:done' && (payload as { candidate?: unknown })?.candidate === undefined) || name === 'compare:ready') done++;
      const p = payload as { code?: string; details?: { event?: string } } | undefined;
      if (name === 'error' && p?.code === 'not_found' && p.details?.event === 'message:abort') probe = true;
      for (const v of judgeSocketEvent(name, payload)) ledger.fail(v.kind, area, repro, v.detail);
    } else if (t.startsWith('44')) {
      // CONNECT_ERROR: {message, data: {code, message, details}}
      try {
        const e = JSON.parse(t.slice(2).replace(/^[^{]*/, '')) as { data?: unknown };
        if (e.data !== undefined) for (const v of judgeSocketEvent('connect_error', e.data)) ledger.fail(v.kind, area, repro, v.detail);
      } catch {
        ledger.fail('bad-frame', area, repro, `CONNECT_ERROR that is not JSON: ${t.slice(0, 200)}`);
      }
    }
  }
  return { started, done, probe };
}

/** Until the probe is answered (at most `probeMs`) and every answer the case started has finished (at most 20 s). */
async function waitSettled(ws: RawWebSocket, probeMs: number): Promise<void> {
  const t0 = Date.now();
  while (!ws.closed) {
    let started = 0;
    let done = 0;
    let probe = false;
    for (const m of ws.messages) {
      const t = m.opcode === OP.text ? m.data.toString('utf8') : '';
      if (t.startsWith('42["message:start"') || t.startsWith('42["compare:start"')) started++;
      if ((t.startsWith('42["message:done"') && !t.includes('"candidate"')) || t.startsWith('42["compare:ready"')) done++;
      if (t.startsWith('42["error"') && t.includes('"not_found"') && t.includes('"event":"message:abort"')) probe = true;
    }
    const waited = Date.now() - t0;
    if (started > done ? waited > 20_000 : probe || waited > probeMs) return;
    await ws.waitFor(() => false, 10, ws.messages.length);
  }
}

const server = await startFuzzServer();
const ledger = new Ledger('socket-frames');
let user: Credentials;
const host = '127.0.0.1';

async function runCase(area: string, c: FrameCase, recent: string[]): Promise<void> {
  const repro = `[${c.session ?? 'signed-in'}] ${c.name}`;
  recent.push(repro);
  ledger.tried(area);
  let ws: RawWebSocket;
  try {
    if (c.session === 'raw') ws = await RawWebSocket.open(host, server.port, '/socket.io/?EIO=4&transport=websocket');
    else if (c.session === 'none') {
      ws = await RawWebSocket.open(host, server.port, '/socket.io/?EIO=4&transport=websocket');
      await ws.waitFor((m) => m.opcode === OP.text && m.data[0] === 0x30, 5000);
    } else {
      const s = await openSocketIo(host, server.port, user.token);
      if (!s.connectReply.startsWith('40{')) throw new Error(`not connected: ${s.connectReply.slice(0, 200)}`);
      ws = s.ws;
    }
  } catch (e) {
    ledger.fail('connect', area, repro, String(e));
    await checkAlive(server, ledger, area, recent);
    return;
  }
  const before = ws.messages.length;
  c.send(ws, user.token);
  ws.text(PROBE);
  await waitSettled(ws, c.session ? 1_000 : 3_000);
  ws.messages.splice(0, before);
  const { started, done, probe } = judgeFrames(ws, area, repro);
  ledger.outcome(area, ws.closed ? `closed${ws.closeCode ? ` ${ws.closeCode}` : ''}` : probe ? (started ? 'answered' : 'refused or ignored') : 'no probe answer');
  if (started > done && !ws.closed) ledger.fail('timeout', area, repro, `${started} answers started, ${done} finished within 20 s`);
  ws.destroy();
  // Each case alone: a crash is pinned on the frame that caused it.
  await checkAlive(server, ledger, area, [repro]);
}

before(async () => {
  user = await register(server.url, `fuzzframes${process.pid % 1000}`);
});

after(async () => {
  process.stdout.write(`${ledger.report(8)}\n${ledger.serverErrors(server.logs)}\n`);
  ledger.save();
  await server.stop();
});

/** Generated frames: any packet type, namespace and ack id, with an event name and arguments from the hostile values. */
const generatedFrame = fc
  .record({
    engineType: fc.oneof({ weight: 10, arbitrary: fc.constant('4') }, { weight: 1, arbitrary: fc.constantFrom('0', '1', '2', '3', '5', '6', '7', '') }),
    ioType: fc.oneof({ weight: 10, arbitrary: fc.constant('2') }, { weight: 2, arbitrary: fc.constantFrom('0', '1', '3', '4', '5', '6', '7', '9', '') }),
    attachments: rarely(fc.constantFrom('0-', '1-', '2-', '999-', '-'), 6, ''),
    nsp: rarely(fc.constantFrom('/,', '/admin,', '/x,', '//,', '/%,'), 8, ''),
    ack: rarely(fc.constantFrom('1', '0', '99999999999999999999', '-1', '1.5'), 6, ''),
    name: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('message:send', 'message:regenerate', 'message:abort', 'compare:choose') }, { weight: 2, arbitrary: nastyString }, { weight: 1, arbitrary: nastyValue }),
    args: fc.array(fc.oneof({ weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) }, { weight: 2, arbitrary: nastyValue }), { maxLength: 4 }),
    binaries: fc.array(fc.uint8Array({ maxLength: 32 }), { maxLength: 2 }),
    invalidUtf8: rarely(fc.constantFrom<number[]>([0xff], [0xc3], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]), 8, null),
  })
  .map((g) => {
    const json = toJsonText([g.name, ...g.args]);
    const head = `${g.engineType}${g.ioType}${g.attachments}${g.nsp}${g.ack}`;
    const body = g.invalidUtf8 ? bytes(head, json.slice(0, 3), g.invalidUtf8, json.slice(3)) : Buffer.from(head + json, 'utf8');
    return { body, binaries: g.binaries, preview: `${head}${json.slice(0, 160)}${json.length > 160 ? `…(${json.length} chars)` : ''}${g.binaries.length ? ` + ${g.binaries.length} binary frame(s)` : ''}${g.invalidUtf8 ? ' with invalid UTF-8' : ''}` };
  });

/** The same protocol over engine.io's HTTP long-polling transport: packets joined by \x1e in POST bodies. */
const POLL = '/socket.io/?EIO=4&transport=polling';
const RS = '\x1e';

interface PollCase {
  name: string;
  /** The POST body after the session is open and signed in (ignored when `request` is given). */
  body?: string | Buffer;
  contentType?: string;
  /** A request of its own, given the session id. */
  request?: (sid: string) => RawRequest;
}

const POLL_CASES: PollCase[] = [
  { name: '42,000 extra arguments', body: args('message:send', 42_000) },
  { name: '42,000 arguments, then a valid packet', body: `${args('message:send', 42_000)}${RS}${PROBE}` },
  { name: 'payload nested 100,000 deep', body: `42["message:send",${deepArray(100_000)}]` },
  { name: '5,000 packets in one body', body: Array.from({ length: 5_000 }, () => PROBE).join(RS) },
  { name: 'empty packets between separators', body: `${RS}${RS}${RS}` },
  { name: 'invalid UTF-8', body: bytes('42["message:send",{"content":"', [0xff, 0xfe, 0xed, 0xa0, 0x80], '"}]') },
  { name: 'base64 binary packet with a placeholder', body: `451-["message:send",${placeholder(0)}]${RS}bAQID` },
  { name: 'base64 that is not base64', body: `451-["message:send",${placeholder(0)}]${RS}b%%%%` },
  { name: 'a binary packet alone', body: 'b' + 'A'.repeat(1000) },
  { name: 'body over the buffer limit', body: `42["message:send",{"content":"${'a'.repeat(300_000)}"}]` },
  { name: 'as application/octet-stream', body: Buffer.from([4, 2, 0xff]), contentType: 'application/octet-stream' },
  { name: 'a ping from the client', body: '2' },
  { name: 'an upgrade packet', body: '5' },
  { name: 'engine close', body: '1' },
  { name: 'unknown session id', request: () => ({ method: 'POST', path: `${POLL}&sid=nope`, headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: Buffer.from(PROBE) }) },
  { name: 'malformed session id', request: () => ({ method: 'GET', path: `${POLL}&sid=%E0%A4%A`, headers: {} }) },
  { name: 'repeated sid', request: (sid) => ({ method: 'GET', path: `${POLL}&sid=${sid}&sid=${sid}`, headers: {} }) },
  { name: 'unknown protocol version', request: () => ({ method: 'GET', path: '/socket.io/?EIO=99&transport=polling', headers: {} }) },
  { name: 'unknown transport', request: () => ({ method: 'GET', path: '/socket.io/?EIO=4&transport=carrier-pigeon', headers: {} }) },
  { name: 'JSONP callback', request: () => ({ method: 'GET', path: '/socket.io/?EIO=3&transport=polling&j=alert(1)', headers: {} }) },
  { name: 'PUT on the endpoint', request: (sid) => ({ method: 'PUT', path: `${POLL}&sid=${sid}`, headers: {}, body: Buffer.from('x') }) },
  { name: 'two GETs at once', request: (sid) => ({ method: 'GET', path: `${POLL}&sid=${sid}`, headers: {} }) },
  { name: 'gzip-encoded body', request: (sid) => ({ method: 'POST', path: `${POLL}&sid=${sid}`, headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' }, body: Buffer.from([0x1f, 0x8b, 0, 0]) }) },
];

async function runPollCase(c: PollCase, recent: string[]): Promise<void> {
  const area = 'frames long-polling';
  const repro = `[polling] ${c.name}`;
  recent.push(repro);
  ledger.tried(area);
  const judge = (req: RawRequest, out: Awaited<ReturnType<typeof send>>) => {
    // engine.io answers its own errors in its own JSON ({code, message}): judged for status and leaks only.
    for (const v of judgeHttp(req, out, 'attune')) if (v.kind !== 'error-shape' && v.kind !== 'note') ledger.fail(v.kind, area, `${repro}: ${describeRequest(req)}`, v.detail);
  };
  const open = await send(server.url, { method: 'GET', path: POLL, headers: {} });
  const sid = 'status' in open ? /"sid":"([^"]+)"/.exec(open.text)?.[1] : undefined;
  if (!sid) {
    ledger.fail('connect', area, repro, `no polling session: ${JSON.stringify(open).slice(0, 200)}`);
    await checkAlive(server, ledger, area, [repro]);
    return;
  }
  const post = (body: string | Buffer, contentType = 'text/plain;charset=UTF-8'): RawRequest => ({
    method: 'POST',
    path: `${POLL}&sid=${sid}`,
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
  });
  const connect = post(`40${JSON.stringify({ token: user.token })}`);
  judge(connect, await send(server.url, connect));
  const first = { method: 'GET', path: `${POLL}&sid=${sid}`, headers: {} };
  judge(first, await send(server.url, first, 5_000));
  const req = c.request ? c.request(sid) : post(c.body ?? '', c.contentType);
  // A long poll waits for packets: a GET of our own may be held open until the heartbeat (25 s).
  const pending = c.request && req.method === 'GET' ? send(server.url, req, 3_000) : null;
  if (pending) {
    const read = { method: 'GET', path: `${POLL}&sid=${sid}`, headers: {} };
    const [a, b] = await Promise.all([pending, send(server.url, read, 3_000)]);
    for (const [r, o] of [[req, a], [read, b]] as const) if (!('error' in o && o.error === 'timeout')) judge(r, o);
  } else {
    const out = await send(server.url, req);
    judge(req, out);
    const probe = post(PROBE);
    const probed = await send(server.url, probe);
    if ('status' in probed && probed.status === 200) {
      const read = { method: 'GET', path: `${POLL}&sid=${sid}`, headers: {} };
      const answer = await send(server.url, read, 3_000);
      if ('status' in answer) {
        judge(read, answer);
        for (const packet of answer.text.split(RS)) {
          if (!packet.startsWith('42')) continue;
          try {
            const [name, payload] = JSON.parse(packet.slice(2)) as [string, unknown];
            for (const v of judgeSocketEvent(name, payload)) ledger.fail(v.kind, area, repro, v.detail);
          } catch {
            ledger.fail('bad-frame', area, repro, `the server sent a packet that is not JSON: ${packet.slice(0, 200)}`);
          }
        }
      }
      ledger.outcome(area, 'status' in answer ? `answered ${answer.status}` : answer.error);
    } else ledger.outcome(area, 'session ended');
  }
  await checkAlive(server, ledger, area, [repro]);
}

describe('fuzz: raw socket.io frames', () => {
  test('engine.io long-polling: the same hostile packets over HTTP, the process alive', async () => {
    const recent: string[] = [];
    for (const c of POLL_CASES) await runPollCase(c, recent);
    const mine = ledger.failures.filter((f) => f.area === 'frames long-polling');
    assert.equal(mine.length, 0, `\n${ledger.report(8)}`);
  });

  test('hand-written frames: shaped errors or a closed connection, the process alive', async () => {
    const recent: string[] = [];
    for (const c of CASES) await runCase('frames hand-written', c, recent);
    const mine = ledger.failures.filter((f) => f.area === 'frames hand-written');
    assert.equal(mine.length, 0, `\n${ledger.report(8)}`);
  });

  test('generated frames: shaped errors or a closed connection, the process alive', async () => {
    const recent: string[] = [];
    await fc.assert(
      fc.asyncProperty(generatedFrame, async (g) => {
        await runCase('frames generated', { name: `generated ${JSON.stringify(g.preview)}`, send: (ws) => (ws.text(g.body), g.binaries.forEach((b) => ws.binary(Buffer.from(b)))) }, recent);
        return true;
      }),
      { seed: seedFor('socket:frames'), numRuns: runsOr(600) },
    );
    const mine = ledger.failures.filter((f) => f.area === 'frames generated');
    assert.equal(mine.length, 0, `\n${ledger.report(8)}`);
  });
});
