// The OpenAI-compatible API (/v1) under the same generated requests, on server/main.ts with the
// default model: bodies from the request schema itself (z.toJSONSchema of chatCompletionRequestSchema)
// and mutations of them, streaming and not, odd bytes, content types and encodings, as an API key, a
// session token, a cookie, nobody, and with broken credentials. Generation is slow next to validation,
// so valid requests ask for at most a few tokens (a rare one asks for many, to reach the context cap).
// Every response: no 5xx (nor a server_error inside a stream), errors in OpenAI's
// {"error":{"message","type","param","code"}}, no stack trace; /healthz answers after each batch.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { z } from 'zod';
import { chatCompletionRequestSchema } from '../../server/services/completions.ts';
import {
  bodyBytes,
  bodyMode,
  type BodyMode,
  contentEncoding,
  contentType,
  encodeBody,
  type Encoding,
  extraHeaders,
  fromSchema,
  type JsonSchema,
  MALFORMED_PERCENT,
  mutated,
  nastyString,
  nastyValue,
  percentEncode,
  rarely,
} from './arbitraries.ts';
import {
  ADMIN_PASSWORD,
  checkAlive,
  createApiKey,
  type Credentials,
  describeRequest,
  Ledger,
  login,
  type RawRequest,
  recordHttp,
  register,
  runsOr,
  seedFor,
  send,
  startFuzzServer,
} from './harness.ts';

const MODEL = 'default';
const requestSchema = z.toJSONSchema(chatCompletionRequestSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;

type Caller = 'apikey' | 'session-bearer' | 'admin-bearer' | 'cookie-only' | 'anonymous' | 'bad';

const callerArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Caller>('apikey') },
  { weight: 2, arbitrary: fc.constant<Caller>('session-bearer') },
  { weight: 1, arbitrary: fc.constantFrom<Caller>('admin-bearer', 'cookie-only', 'anonymous', 'bad') },
);

const BAD_AUTH = ['Bearer', 'Bearer atn_nope', 'Basic eDp5', 'Bearer a b', `Bearer atn_${'z'.repeat(6000)}`, 'bearer', 'Bearer %00'];

/** Keeps generation short: a valid request asks for 1–3 tokens, now and then for many. */
function capTokens(body: unknown, pick: number): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const b = body as Record<string, unknown>;
  for (const k of ['max_tokens', 'max_completion_tokens']) {
    if (typeof b[k] === 'number' && (b[k] as number) > 3 && pick % 25 !== 0) b[k] = 1 + (pick % 3);
  }
  if (b.max_tokens === undefined && b.max_completion_tokens === undefined && pick % 25 !== 0) b.max_tokens = 1 + (pick % 3);
  return b;
}

const conversation = fc.array(
  fc.record({
    role: fc.constantFrom('system', 'developer', 'user', 'assistant'),
    content: fc.oneof(
      { weight: 5, arbitrary: fc.string({ maxLength: 60 }) },
      { weight: 2, arbitrary: nastyString },
      { weight: 1, arbitrary: fc.constantFrom(1_759, 2_500, 8_000, 32_001).map((n) => 'word '.repeat(Math.ceil(n / 5)).slice(0, n)) },
      { weight: 1, arbitrary: fc.array(fc.record({ type: fc.constant('text'), text: fc.string({ maxLength: 40 }) }), { minLength: 1, maxLength: 3 }) },
    ),
  }),
  { minLength: 1, maxLength: 6 },
);

/** Bodies OpenAI's clients would send, with this server's model most of the time. */
const validBody = fc
  .tuple(fromSchema(requestSchema), conversation, fc.nat(), fc.boolean())
  .map(([b, messages, pick, ownModel]) => {
    const body = { ...(b as Record<string, unknown>) };
    if (ownModel || pick % 3 !== 0) {
      body.model = MODEL;
      body.messages = messages;
    }
    return body;
  });

const PATHS = ['/v1/chat/completions'];
const OTHER_PATHS = ['/v1/models', '/v1/models/default', '/v1/completions', '/v1/embeddings', '/v1/chat/completions/', '/v1/chat', '/v1/', '/v1', '/v1//chat/completions', '/v1/chat/completions?stream=true', '/v1/chat/%', '/v1/%E0%A4%A'];

const completionCase = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({
      clean: fc.constant(true),
      caller: fc.constantFrom<Caller>('apikey', 'session-bearer'),
      pick: fc.nat(),
      method: fc.constant('POST'),
      path: fc.constant('/v1/chat/completions'),
      body: validBody,
      bodyMode: fc.constant<BodyMode>('json'),
      contentType: fc.constant<string | undefined>('application/json'),
      encoding: fc.constant<Encoding>('none'),
      headers: fc.constant<Record<string, string>>({}),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      clean: fc.constant(false),
      caller: callerArb,
      pick: fc.nat(),
      method: fc.oneof({ weight: 12, arbitrary: fc.constant('POST') }, { weight: 1, arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS') }),
      path: fc.oneof({ weight: 10, arbitrary: fc.constantFrom(...PATHS) }, { weight: 1, arbitrary: fc.constantFrom(...OTHER_PATHS) }),
      body: mutated(validBody),
      bodyMode,
      contentType,
      encoding: contentEncoding,
      headers: extraHeaders,
    }),
  },
);

const otherCase = fc.record({
  caller: callerArb,
  pick: fc.nat(),
  method: fc.constantFrom('GET', 'GET', 'POST', 'DELETE', 'HEAD', 'OPTIONS'),
  path: fc.oneof(
    fc.constantFrom(...OTHER_PATHS),
    fc.constantFrom(...MALFORMED_PERCENT).map((m) => `/v1/models/${m}`),
    nastyString.filter((s) => s.length < 3000).map((s) => `/v1/${percentEncode(s)}`),
  ),
  body: rarely(nastyValue, 4, undefined),
  contentType,
  headers: extraHeaders,
});

const server = await startFuzzServer();
const ledger = new Ledger('openai-v1');
let user: Credentials;
let admin: Credentials;
let apiKey = '';

function credentials(caller: Caller, pick: number): Record<string, string> {
  switch (caller) {
    case 'apikey':
      return { authorization: `Bearer ${apiKey}` };
    case 'session-bearer':
      return { authorization: `Bearer ${user.token}` };
    case 'admin-bearer':
      return { authorization: `Bearer ${admin.token}` };
    case 'cookie-only':
      return { cookie: `attune_session=${user.token}`, origin: server.origin };
    case 'anonymous':
      return {};
    case 'bad':
      return { authorization: BAD_AUTH[pick % BAD_AUTH.length]! };
  }
}

before(async () => {
  admin = await login(server.url, 'admin', ADMIN_PASSWORD);
  user = await register(server.url, `fuzzv1${process.pid % 1000}`);
  apiKey = (await createApiKey(server.url, user.token, 'v1')).key;
});

after(async () => {
  process.stdout.write(`${ledger.report()}\n${ledger.serverErrors(server.logs)}\n`);
  ledger.save();
  await server.stop();
});

const BATCH = 20;

describe('fuzz: the OpenAI-compatible API (/v1)', () => {
  test('the server serves the model the cases ask for', async () => {
    const r = await send(server.url, { method: 'GET', path: '/v1/models', headers: { authorization: `Bearer ${apiKey}` } });
    assert.ok('status' in r && r.status === 200, JSON.stringify(r));
    assert.deepEqual((JSON.parse(r.text) as { data: Array<{ id: string }> }).data.map((m) => m.id), [MODEL]);
  });

  test('POST /v1/chat/completions: no 5xx, OpenAI error shape, no stack trace, the process alive', async () => {
    const area = 'v1 POST /v1/chat/completions';
    const recent: string[] = [];
    let n = 0;
    await fc.assert(
      fc.asyncProperty(completionCase, async (c) => {
        const raw = bodyBytes(c.bodyMode, capTokens(c.body, c.pick), c.pick);
        const encoded = encodeBody(c.encoding, raw);
        const headers: Record<string, string> = { ...c.headers, ...credentials(c.caller, c.pick) };
        if (encoded.body !== undefined && c.contentType !== undefined) headers['content-type'] = c.contentType;
        if (encoded.header) headers['content-encoding'] = encoded.header;
        const req: RawRequest = { method: c.method, path: c.path, headers, body: encoded.body };
        const out = await send(server.url, req, 60_000);
        recordHttp(ledger, area, req, out, 'openai');
        recent.push(describeRequest(req));
        if ('error' in out || ++n % BATCH === 0) await checkAlive(server, ledger, area, recent);
        return true;
      }),
      { seed: seedFor('v1:chat.completions'), numRuns: runsOr(600) },
    );
    await checkAlive(server, ledger, area, recent);
    const mine = ledger.failures.filter((f) => f.area === area);
    assert.equal(mine.length, 0, `\n${ledger.report(3)}`);
  });

  test('other /v1 paths and methods: OpenAI-shaped 4xx, never a 5xx', async () => {
    const area = 'v1 other paths';
    const recent: string[] = [];
    let n = 0;
    await fc.assert(
      fc.asyncProperty(otherCase, async (c) => {
        const headers: Record<string, string> = { ...c.headers, ...credentials(c.caller, c.pick) };
        const body = c.body === undefined ? undefined : bodyBytes('json', c.body, c.pick);
        if (body !== undefined && c.contentType !== undefined) headers['content-type'] = c.contentType;
        const req: RawRequest = { method: c.method, path: c.path, headers, body };
        const out = await send(server.url, req);
        recordHttp(ledger, area, req, out, 'openai');
        recent.push(describeRequest(req));
        if ('error' in out || ++n % BATCH === 0) await checkAlive(server, ledger, area, recent);
        return true;
      }),
      { seed: seedFor('v1:other'), numRuns: runsOr(150) },
    );
    await checkAlive(server, ledger, area, recent);
    const mine = ledger.failures.filter((f) => f.area === area);
    assert.equal(mine.length, 0, `\n${ledger.report(3)}`);
  });
});
