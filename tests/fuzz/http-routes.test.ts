// Property-based requests over every operation of the server's own OpenAPI document (GET
// /api/openapi.json), sent as raw bytes to server/main.ts in a child process: bodies from each
// operation's request schema and mutations of them, hostile path segments and query strings, odd
// content types and encodings, as an anonymous caller, a user (cookie with this server's Origin, a
// session bearer token, an API key), an admin, and with broken credentials. Every response: no 5xx,
// errors in {"error":{"code","message","details"}}, no stack trace; /healthz answers after each batch.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { z } from 'zod';
import {
  bodyBytes,
  bodyMode,
  type BodyMode,
  type Encoding,
  contentEncoding,
  contentType,
  encodeBody,
  extraHeaders,
  fromSchema,
  type JsonSchema,
  mutated,
  nastyString,
  nastyValue,
  pathSegment,
  percentEncode,
  queryString,
  rarely,
  weirdUnit,
} from './arbitraries.ts';
import {
  ADMIN_PASSWORD,
  authed,
  chatTurn,
  type ChatTurn,
  checkAlive,
  createApiKey,
  type Credentials,
  describeRequest,
  type FuzzServer,
  recordHttp,
  Ledger,
  login,
  type Outcome,
  type RawRequest,
  register,
  runsOr,
  seedFor,
  send,
  startFuzzServer,
  USER_PASSWORD,
} from './harness.ts';

interface Operation {
  /** The documented success status and, for JSON answers, a validator of its body built from the document. */
  success: { status: number; schema: z.ZodType | null };
  method: string;
  path: string;
  operationId: string;
  body?: JsonSchema;
  pathParams: string[];
  queryParams: Array<{ name: string; schema: JsonSchema }>;
}

interface OpenApiDoc {
  paths: Record<
    string,
    Record<
      string,
      {
        operationId: string;
        security?: unknown[];
        requestBody?: { content: Record<string, { schema: JsonSchema }> };
        parameters?: Array<{ in: string; name: string; schema: JsonSchema }>;
        responses: Record<string, { content?: Record<string, { schema: JsonSchema }> }>;
      }
    >
  >;
  components?: { schemas?: Record<string, JsonSchema> };
}

/** The schema with every `$ref` into the document's components replaced by its target. */
function inlineRefs(schema: unknown, doc: OpenApiDoc, depth = 0): unknown {
  if (Array.isArray(schema)) return schema.map((x) => inlineRefs(x, doc, depth));
  if (schema === null || typeof schema !== 'object') return schema;
  const ref = (schema as { $ref?: unknown }).$ref;
  if (typeof ref === 'string' && depth < 20) {
    const name = ref.replace('#/components/schemas/', '');
    return inlineRefs(doc.components?.schemas?.[name], doc, depth + 1);
  }
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, inlineRefs(v, doc, depth)]));
}

function successOf(op: OpenApiDoc['paths'][string][string], doc: OpenApiDoc): Operation['success'] {
  const [status, response] = Object.entries(op.responses).find(([s]) => s.startsWith('2')) ?? ['200', {}];
  const schema = response.content?.['application/json']?.schema;
  return { status: Number(status), schema: schema ? z.fromJSONSchema(inlineRefs(schema, doc) as Parameters<typeof z.fromJSONSchema>[0]) : null };
}

function operationsOf(doc: OpenApiDoc): Operation[] {
  const ops: Operation[] = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      ops.push({
        success: successOf(op, doc),
        method: method.toUpperCase(),
        path: p,
        operationId: op.operationId,
        body: op.requestBody?.content['application/json']?.schema,
        pathParams: (op.parameters ?? []).filter((x) => x.in === 'path').map((x) => x.name),
        queryParams: (op.parameters ?? []).filter((x) => x.in === 'query').map((x) => ({ name: x.name, schema: x.schema })),
      });
    }
  }
  return ops;
}

type Caller = 'anonymous' | 'user-cookie' | 'user-bearer' | 'user-apikey' | 'admin-bearer' | 'admin-cookie' | 'cookie-foreign-origin' | 'cookie-no-origin' | 'bad-credentials';

const BAD_AUTHORIZATION = [
  'Bearer', 'Bearer ', 'Bearer  ', 'Basic YWRtaW46YWRtaW4=', 'bearer atn_', 'Bearer atn_' + 'A'.repeat(40), 'Bearer a b', 'Token x', 'Bearer %',
  `Bearer ${'x'.repeat(8000)}`, 'Bearer \t', 'Bearer null', 'Bearer undefined', 'Bearer ../../', 'Bearer 00000000-0000-0000-0000-000000000000',
];

/** The fuzzed accounts and the records their ids point at; rebuilt when a case ends a credential. */
class Fixtures {
  user!: Credentials;
  admin!: Credentials;
  victim!: Credentials;
  apiKey = '';
  spareKeyId = '';
  turn!: ChatTurn;
  conversationId = '';
  jobIds: string[] = [];
  versionIds: string[] = [];
  private users = 0;

  constructor(private readonly server: FuzzServer) {}

  private get url() {
    return this.server.url;
  }

  async setUp(): Promise<void> {
    this.admin = await login(this.url, 'admin', ADMIN_PASSWORD);
    this.victim = await register(this.url, `fuzzvictim${process.pid % 1000}`);
    await this.newUser();
    const job = await authed(this.url, this.admin.token, 'POST', '/api/admin/training/jobs', {});
    const jobId = (job.body.job as { id?: string } | undefined)?.id;
    if (jobId) this.jobIds.push(jobId);
    const versions = await authed(this.url, this.admin.token, 'GET', '/api/admin/training/versions');
    for (const v of (versions.body.versions as Array<{ id: string }> | undefined) ?? []) this.versionIds.push(v.id);
  }

  private async newUser(): Promise<void> {
    this.user = await register(this.url, `fuzzuser${process.pid % 1000}_${++this.users}`);
    await this.userRecords();
  }

  private async userRecords(): Promise<void> {
    this.apiKey = (await createApiKey(this.url, this.user.token, 'fuzz')).key;
    this.spareKeyId = (await createApiKey(this.url, this.user.token, 'spare')).id;
    this.turn = await chatTurn(this.url, this.user.token, 'hello there');
    const c = await authed(this.url, this.user.token, 'POST', '/api/conversations', { title: 'fuzz' });
    this.conversationId = String(c.body.id);
  }

  /** Ids a path may name: mostly real records of the kind the path is about, some of another kind. */
  knownIds(op: Operation): string[] {
    const messages = [this.turn.assistantMessageId, this.turn.userMessageId];
    const conversations = [this.turn.conversationId, this.conversationId];
    const others = [...messages, ...conversations, this.spareKeyId, this.victim.userId, ...this.jobIds, ...this.versionIds];
    let own: string[];
    if (op.operationId === 'adminUpdateUser') return [this.victim.userId];
    if (op.path.startsWith('/api/messages/')) own = [this.turn.assistantMessageId, this.turn.assistantMessageId, this.turn.userMessageId];
    else if (op.path.startsWith('/api/conversations/')) own = conversations;
    else if (op.path.startsWith('/api/me/api-keys/')) own = [this.spareKeyId];
    else if (op.path.startsWith('/api/admin/users/')) own = [this.victim.userId, this.admin.userId, this.user.userId];
    else if (op.path.startsWith('/api/admin/training/jobs/')) own = this.jobIds;
    else if (op.path.startsWith('/api/admin/training/versions/')) own = this.versionIds;
    else own = [];
    // Three in four picks name a record of the right kind (when there is one).
    return [...own, ...own, ...own, ...others.filter((id) => !own.includes(id)).slice(0, Math.max(1, own.length))].filter(Boolean);
  }

  private async valid(token: string): Promise<boolean> {
    return (await authed(this.url, token, 'GET', '/api/me')).status === 200;
  }

  /** After a case that may have ended a session, a key or an account: sign in again or start over. */
  async repair(): Promise<void> {
    if (!(await this.valid(this.admin.token))) {
      try {
        this.admin = await login(this.url, 'admin', ADMIN_PASSWORD);
      } catch {
        // Throttled (a case guessed at the admin's password): later admin cases run signed out.
      }
    }
    if (!(await this.valid(this.user.token))) {
      try {
        this.user = await login(this.url, this.user.username, this.user.password);
      } catch {
        await this.newUser();
        return;
      }
    }
    if (!(await this.valid(this.apiKey))) {
      try {
        this.apiKey = (await createApiKey(this.url, this.user.token, 'fuzz')).key;
      } catch {
        // At the key limit (the cases created keys): API-key cases run with the dead key, as 401s.
      }
    }
  }
}

/** Operations whose success can end the credentials the next cases need. */
const ENDS_CREDENTIALS = new Set(['logout', 'deleteMe', 'revokeApiKey', 'adminUpdateUser', 'login', 'register', 'changePassword']);

function callerArb(op: Operation): fc.Arbitrary<Caller> {
  const admin = op.path.startsWith('/api/admin/');
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant<Caller>('anonymous') },
    { weight: admin ? 1 : 4, arbitrary: fc.constant<Caller>('user-cookie') },
    { weight: admin ? 1 : 3, arbitrary: fc.constant<Caller>('user-bearer') },
    { weight: admin ? 1 : 2, arbitrary: fc.constant<Caller>('user-apikey') },
    { weight: admin ? 5 : 1, arbitrary: fc.constant<Caller>('admin-bearer') },
    { weight: admin ? 3 : 1, arbitrary: fc.constant<Caller>('admin-cookie') },
    { weight: 1, arbitrary: fc.constantFrom<Caller>('cookie-foreign-origin', 'cookie-no-origin', 'bad-credentials') },
  );
}

function credentialHeaders(caller: Caller, fx: Fixtures, server: FuzzServer, pick: number): Record<string, string> {
  const cookie = (token: string) => `attune_session=${token}`;
  switch (caller) {
    case 'anonymous':
      return {};
    case 'user-cookie':
      return { cookie: cookie(fx.user.token), origin: server.origin };
    case 'user-bearer':
      return { authorization: `Bearer ${fx.user.token}` };
    case 'user-apikey':
      return { authorization: `Bearer ${fx.apiKey}` };
    case 'admin-bearer':
      return { authorization: `Bearer ${fx.admin.token}` };
    case 'admin-cookie':
      return { cookie: cookie(fx.admin.token), origin: server.origin };
    case 'cookie-foreign-origin':
      return { cookie: cookie(pick % 2 ? fx.admin.token : fx.user.token), origin: ['http://evil.example', `http://127.0.0.1:${server.port + 1}`, 'null', 'http://localhost', 'file://'][pick % 5]! };
    case 'cookie-no-origin':
      return { cookie: cookie(pick % 2 ? fx.admin.token : fx.user.token), ...(pick % 3 === 0 ? { referer: `${server.origin}/` } : {}) };
    case 'bad-credentials': {
      const bad = BAD_AUTHORIZATION[pick % BAD_AUTHORIZATION.length]!;
      return pick % 3 === 0 ? { cookie: `attune_session=${['', '%', 'x'.repeat(5000), 'a;b', '"quoted"', '%E0%A4%A'][pick % 6]}`, origin: server.origin } : { authorization: bad };
    }
  }
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'];
const PATH_SUFFIXES = ['/', '//', '/extra', '/..', '/%2e%2e', ';x=1', '.json', '%20', '%00', '/%'];

/**
 * Valid bodies: from the schema, and where JSON Schema cannot say enough (a cron expression, the
 * real password) some real ones, so that the success paths (sign-in, deletion, a schedule) run too.
 */
function validBodyArb(op: Operation, doc: OpenApiDoc, fx: () => Fixtures): fc.Arbitrary<unknown> {
  const fromDoc = fromSchema(op.body!, doc);
  let real: fc.Arbitrary<unknown> | null = null;
  if (op.operationId === 'login') real = fc.constant(null).map(() => ({ username: fx().user.username, password: fx().user.password }));
  if (op.operationId === 'deleteMe') real = fc.constant(null).map(() => ({ password: fx().user.password }));
  if (op.operationId === 'changePassword') {
    real = fc.constant(null).map(() => ({ currentPassword: fx().user.password, newPassword: fx().user.password === USER_PASSWORD ? `${USER_PASSWORD}-2` : USER_PASSWORD }));
  }
  if (op.operationId === 'setRetrainSchedule') {
    real = fc.record({
      cron: fc.constantFrom('0 * * * *', '*/5 * * * *', 'off', '0 0 31 2 *', '* * * * * *', '@hourly', '59 23 * * 7', '0 0 29 2 1', '0 0 1 1 *'),
      minNewPairs: fc.integer({ min: 1, max: 10_000_000 }),
      perUserMinPairs: fc.integer({ min: 1, max: 10_000_000 }),
      enabled: fc.boolean(),
    });
  }
  return real ? fc.oneof({ weight: 2, arbitrary: fromDoc }, { weight: 1, arbitrary: real }) : fromDoc;
}

/** Bodies an operation may get: valid ones and their mutations, or, if it takes none, mostly none. */
function bodyValueArb(op: Operation, doc: OpenApiDoc, fx: () => Fixtures): fc.Arbitrary<unknown> {
  if (!op.body) return rarely(nastyValue, 6, undefined);
  return mutated(validBodyArb(op, doc, fx));
}

/** Queries whose own parameters all fit their schemas, and nothing else. */
function validQuery(op: Operation, doc: OpenApiDoc): fc.Arbitrary<string> {
  const parts = op.queryParams.map((p) => fc.option(fromSchema(p.schema, doc).map((v) => `${p.name}=${percentEncode(String(v))}`), { freq: 2 }));
  return fc.tuple(...parts).map((xs) => {
    const present = xs.filter((x): x is string => x !== null);
    return present.length ? `?${present.join('&')}` : '';
  });
}

/**
 * A case: either clean (a valid request by a caller allowed to make it, to reach the handlers and the
 * services), or noisy, where every dimension (method, path, query, body, bytes, headers, caller) may
 * be hostile at once.
 */
function caseArb(op: Operation, doc: OpenApiDoc, fx: () => Fixtures) {
  const n = op.pathParams.length;
  const noisy = fc.record({
    caller: callerArb(op),
    pick: fc.nat(),
    method: fc.oneof({ weight: 12, arbitrary: fc.constant(op.method) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
    segments: fc.array(pathSegment([]), { minLength: n, maxLength: n }),
    useKnown: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
    suffix: fc.oneof({ weight: 15, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom(...PATH_SUFFIXES) }),
    query: queryString(op.queryParams, doc),
    bodyValue: bodyValueArb(op, doc, fx),
    bodyMode,
    contentType,
    encoding: contentEncoding,
    headers: extraHeaders,
  });
  const admin = op.path.startsWith('/api/admin/');
  const clean = fc.record({
    caller: fc.constantFrom<Caller>(...(admin ? (['admin-bearer', 'admin-cookie'] as const) : (['user-cookie', 'user-bearer', 'user-apikey', 'admin-bearer'] as const))),
    pick: fc.nat(),
    method: fc.constant(op.method),
    segments: fc.array(fc.uuid(), { minLength: n, maxLength: n }),
    useKnown: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
    suffix: fc.constant(''),
    query: validQuery(op, doc),
    bodyValue: op.body ? validBodyArb(op, doc, fx) : fc.constant(undefined),
    bodyMode: fc.constant<BodyMode>('json'),
    contentType: fc.constant<string | undefined>('application/json'),
    encoding: fc.constant<Encoding>('none'),
    headers: fc.constant<Record<string, string>>({}),
  });
  return fc.oneof({ weight: 1, arbitrary: clean }, { weight: 3, arbitrary: noisy });
}

type Case = ReturnType<typeof caseArb> extends fc.Arbitrary<infer T> ? T : never;

/** Path segments that cannot make the request match another route (an empty one would, or one with a slash). */
const PLAIN_SEGMENT = /^[A-Za-z0-9-]+$/;

function toRequest(op: Operation, c: Case, fx: Fixtures, server: FuzzServer): RawRequest & { plainPath: boolean } {
  const known = fx.knownIds(op);
  let p = op.path;
  let plainPath = c.suffix === '';
  op.pathParams.forEach((name, i) => {
    const seg = c.useKnown[i] && known.length ? known[c.pick % known.length]! : c.segments[i]!;
    plainPath &&= PLAIN_SEGMENT.test(seg);
    p = p.replace(`{${name}}`, seg);
  });
  p += c.suffix + c.query;
  const raw = bodyBytes(c.bodyMode, c.bodyValue, c.pick);
  const body = c.bodyValue === undefined && c.bodyMode === 'json' ? undefined : raw;
  const encoded = encodeBody(c.encoding, body);
  const headers: Record<string, string> = { ...c.headers, ...credentialHeaders(c.caller, fx, server, c.pick) };
  if (encoded.body !== undefined && c.contentType !== undefined) headers['content-type'] = c.contentType;
  if (encoded.header) headers['content-encoding'] = encoded.header;
  return { method: c.method, path: p, headers, body: encoded.body, plainPath };
}

const server = await startFuzzServer();
const ledger = new Ledger('http-routes');
const fixtures = new Fixtures(server);
let doc: OpenApiDoc;
let ops: Operation[] = [];

before(async () => {
  await fixtures.setUp();
  const r = await send(server.url, { method: 'GET', path: '/api/openapi.json', headers: {} });
  assert.ok('status' in r && r.status === 200, 'the server serves its OpenAPI document');
  doc = JSON.parse(r.text) as OpenApiDoc;
  ops = operationsOf(doc);
});

after(async () => {
  process.stdout.write(`${ledger.report()}\n${ledger.serverErrors(server.logs)}\n`);
  ledger.save();
  await server.stop();
});

/**
 * A success answer to the operation's own method and path must be the documented one: its status,
 * and a body that fits the documented response schema (the route's mapper and its schema agree).
 */
function checkSuccess(op: Operation, c: Case, req: RawRequest & { plainPath: boolean }, out: Outcome): void {
  if (!('status' in out) || out.status < 200 || out.status >= 300 || c.method !== op.method || !req.plainPath) return;
  const area = `http ${op.method} ${op.path}`;
  if (out.status !== op.success.status) {
    ledger.fail('undocumented-status', area, describeRequest(req), `${out.status}, documented ${op.success.status}: ${out.text.slice(0, 200)}`);
    return;
  }
  if (!op.success.schema || !/^application\/json/.test(String(out.headers['content-type'] ?? ''))) return;
  let body: unknown;
  try {
    body = JSON.parse(out.text);
  } catch {
    return; // judged as bad-json already
  }
  const r = op.success.schema.safeParse(body);
  if (!r.success) {
    const issues = r.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    ledger.fail('response-schema', area, describeRequest(req), `${issues} in ${out.text.slice(0, 300)}`);
  }
}

const RUNS = runsOr(200);
const BATCH = 25;

describe('fuzz: every OpenAPI operation', () => {
  test('the document lists the routes the suite expects to cover', () => {
    assert.ok(ops.length >= 30, `only ${ops.length} operations`);
    for (const id of ['register', 'login', 'getConversation', 'setFeedback', 'adminUpdateUser', 'publishUserModelVersion', 'health']) {
      assert.ok(ops.some((o) => o.operationId === id), `${id} is in the document`);
    }
  });

  test('no operation answers a 5xx, breaks the error shape, leaks a stack trace or kills the process', async () => {
    for (const op of ops) {
      const area = `http ${op.method} ${op.path}`;
      const before = ledger.failures.length;
      const recent: string[] = [];
      let n = 0;
      await fc.assert(
        fc.asyncProperty(caseArb(op, doc, () => fixtures), async (c) => {
          const req = toRequest(op, c, fixtures, server);
          const out = await send(server.url, req);
          recordHttp(ledger, area, req, out, 'attune', { allow503: op.operationId === 'ready' });
          recent.push(describeRequest(req));
          checkSuccess(op, c, req, out);
          if ('error' in out || ++n % BATCH === 0) {
            if (!(await checkAlive(server, ledger, area, recent))) recent.length = 0;
          }
          if (op.operationId === 'changePassword' && 'status' in out && out.status < 300) {
            // The password is now the one the case sent (when it can be read back from the case).
            const sent = (c.bodyValue as { newPassword?: unknown } | undefined)?.newPassword;
            if (typeof sent === 'string') fixtures.user.password = sent;
          }
          if (ENDS_CREDENTIALS.has(op.operationId) && 'status' in out && out.status < 300) await fixtures.repair();
          return true;
        }),
        { seed: seedFor(op.operationId), numRuns: RUNS },
      );
      await checkAlive(server, ledger, area, recent);
      if (ledger.failures.length > before) await fixtures.repair().catch(() => undefined);
    }
    const problems = ledger.failures.filter((f) => f.area.startsWith('http ') && !f.area.startsWith('http round trip') && !f.area.startsWith('http (')).length;
    assert.equal(problems, 0, `\n${ledger.report(3)}`);
  });

  // Everything the document does not list: the web client's files and its single-page fallback, the
  // assets, unknown paths next to real ones. Same rules: no 5xx, errors in the one JSON shape.
  // (/socket.io/ is engine.io's, with its own error JSON: socket-frames.test.ts fuzzes it.)
  test('paths outside the document: the web client, its assets, unknown paths', async () => {
    const area = 'http (paths outside the document)';
    const recent: string[] = [];
    const outside = fc.record({
      method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'),
      path: fc.oneof(
        fc.constantFrom('/', '/index.html', '/assets/', '/assets/missing.js', '/assets/..%2F..%2Fpackage.json', '/favicon.ico', '/c/123', '/settings', '/admin', '/%', '/%E0%A4%A',
          '/..%2F..%2Fetc%2Fpasswd', '/.env', '/package.json', '/server/main.ts', '/api', '/api/', '/apix', '/v1x', '/healthz/x', '/socket.iox', '/metricsx'),
        fc.tuple(fc.constantFrom('/', '/assets/', '/api/', '/c/'), nastyString.filter((x) => x.length < 2000)).map(([a, b]) => a + percentEncode(b)),
      ),
      range: fc.constantFrom<string | undefined>(undefined, undefined, 'bytes=0-1', 'bytes=99999999-', 'bytes=5-1', 'bytes=x', 'bytes=0-0,1-1,2-2', `bytes=${'0-0,'.repeat(500)}0-0`),
      accept: fc.constantFrom<string | undefined>(undefined, 'text/html', 'application/json', '*/*', 'image/png', ''),
      conditional: fc.constantFrom<Record<string, string>>({}, { 'if-none-match': '*' }, { 'if-modified-since': 'Thu, 01 Jan 2099 00:00:00 GMT' }, { 'if-range': '"x"' }, { 'if-match': '"nope"' }),
    });
    await fc.assert(
      fc.asyncProperty(outside, async (c) => {
        const headers: Record<string, string> = { ...c.conditional };
        if (c.range !== undefined) headers.range = c.range;
        if (c.accept !== undefined) headers.accept = c.accept;
        const req: RawRequest = { method: c.method, path: c.path, headers };
        const out = await send(server.url, req);
        recordHttp(ledger, area, req, out, 'attune');
        recent.push(describeRequest(req));
        return true;
      }),
      { seed: seedFor('outside'), numRuns: runsOr(150) },
    );
    await checkAlive(server, ledger, area, recent);
    const mine = ledger.failures.filter((f) => f.area === area);
    assert.equal(mine.length, 0, `\n${ledger.report(3)}`);
  });

  // What a write answers must be what is stored: a client that shows the answer, then reloads, must see
  // the same text (lone surrogates, NUL, combining marks and all).
  test('round trip: the text a create or rename answers is the text a later read returns', async () => {
    const area = 'http round trip (text)';
    const text = fc.oneof(fc.string({ unit: weirdUnit, minLength: 1, maxLength: 30 }), fc.constantFrom('a\ud800b', '\udfff', 'x\u0000y', 'e\u0301', '\ufeffbom', ' padded  '));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('conversation title', 'renamed title', 'api key name'), text, async (what, t) => {
        ledger.tried(area);
        const token = fixtures.user.token;
        let written: unknown;
        let read: unknown;
        if (what === 'api key name') {
          const created = await authed(server.url, token, 'POST', '/api/me/api-keys', { name: t });
          if (created.status !== 201) return true;
          written = created.body.name;
          const list = await authed(server.url, token, 'GET', '/api/me/api-keys');
          read = (list.body.items as Array<{ id: string; name: string }>).find((k) => k.id === created.body.id)?.name;
          await authed(server.url, token, 'DELETE', `/api/me/api-keys/${String(created.body.id)}`);
        } else {
          const created = await authed(server.url, token, 'POST', '/api/conversations', what === 'conversation title' ? { title: t } : {});
          if (created.status !== 201) return true;
          written = created.body.title;
          if (what === 'renamed title') {
            const renamed = await authed(server.url, token, 'PATCH', `/api/conversations/${String(created.body.id)}`, { title: t });
            if (renamed.status !== 200) return true;
            written = renamed.body.title;
          }
          read = (await authed(server.url, token, 'GET', `/api/conversations/${String(created.body.id)}`)).body.title;
        }
        ledger.outcome(area, written === read ? 'same' : 'differs');
        if (written !== read) ledger.fail('round-trip', area, `${what} ${JSON.stringify(t)}`, `answered ${JSON.stringify(written)}, then read ${JSON.stringify(read)}`);
        return true;
      }),
      { seed: seedFor('round-trip'), numRuns: runsOr(60) },
    );
    const mine = ledger.failures.filter((f) => f.area === area);
    assert.equal(mine.length, 0, `\n${ledger.report(3)}`);
  });
});
