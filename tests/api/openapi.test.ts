// The OpenAPI document lists every route, with the request schemas the server validates with.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { toOpenApiPath } from '../../server/http/openapi.ts';
import { createTestServer, type TestServer } from '../helpers/api-server.ts';

interface JsonSchema {
  $ref?: string;
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  minLength?: number;
  maxLength?: number;
  pattern?: string;
}
interface Operation {
  operationId: string;
  security: unknown[];
  parameters?: Array<{ in: string; name: string; required?: boolean; schema: JsonSchema }>;
  requestBody?: { required: boolean; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { content?: Record<string, { schema: JsonSchema }> }>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas?: Record<string, JsonSchema>; securitySchemes: Record<string, unknown> };
}

let t: TestServer;
let doc: Document;
before(async () => {
  t = createTestServer();
  const res = await request(t.app).get('/api/openapi.json');
  assert.equal(res.status, 200);
  doc = res.body as Document;
});
after(() => t.close());

const resolve = (s: JsonSchema): JsonSchema => {
  if (!s.$ref) return s;
  const name = s.$ref.replace('#/components/schemas/', '');
  const target = doc.components.schemas?.[name];
  assert.ok(target, `dangling $ref ${s.$ref}`);
  return resolve(target);
};

const EXPECTED = [
  'POST /api/auth/register',
  'POST /api/auth/login',
  'POST /api/auth/logout',
  'GET /api/me',
  'DELETE /api/me',
  'POST /api/me/password',
  'POST /api/me/api-keys',
  'GET /api/me/api-keys',
  'DELETE /api/me/api-keys/{id}',
  'GET /api/conversations',
  'POST /api/conversations',
  'GET /api/conversations/{id}',
  'PATCH /api/conversations/{id}',
  'DELETE /api/conversations/{id}',
  'PUT /api/messages/{id}/feedback',
  'GET /api/messages/{id}/feedback',
  'DELETE /api/messages/{id}/feedback',
  'GET /healthz',
  'GET /readyz',
  'GET /api/openapi.json',
  'GET /api/me/export',
  'GET /api/admin/users',
  'GET /api/admin/users/{id}',
  'PATCH /api/admin/users/{id}',
  'GET /api/admin/stats/feedback',
  'GET /api/admin/export/preferences',
  'GET /metrics',
];

test('an OpenAPI 3.1 document with exactly the mounted routes, each with a unique operationId', () => {
  assert.equal(doc.openapi, '3.1.0');
  const documented = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`));
  const mounted = t.routes.map((r) => `${r.method.toUpperCase()} ${toOpenApiPath(r.path)}`);
  assert.deepEqual([...documented].sort(), [...mounted].sort());
  assert.deepEqual([...documented].sort(), [...EXPECTED].sort());
  const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).map((o) => o.operationId));
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['bearerAuth', 'cookieAuth']);
});

test('every route documents its body, path and query parameters from its validation schemas', () => {
  for (const route of t.routes) {
    const op = doc.paths[toOpenApiPath(route.path)]![route.method]!;
    const where = `${route.method.toUpperCase()} ${route.path}`;
    if (route.body) {
      const schema = resolve(op.requestBody!.content['application/json']!.schema);
      assert.equal(schema.type, 'object', where);
      const shape = (route.body as unknown as { shape: Record<string, unknown> }).shape;
      assert.deepEqual(Object.keys(schema.properties ?? {}).sort(), Object.keys(shape).sort(), where);
      assert.ok(op.responses['400'] && op.responses['413'], `${where} documents 400 and 413`);
    } else {
      assert.equal(op.requestBody, undefined, where);
    }
    const pathParams = [...route.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]);
    assert.deepEqual((op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name), pathParams, where);
    if (route.query) {
      const shape = (route.query as unknown as { shape: Record<string, unknown> }).shape;
      assert.deepEqual((op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name).sort(), Object.keys(shape).sort(), where);
    }
    assert.equal(op.security.length === 0, route.auth === 'none', where);
    if (route.auth !== 'none') assert.ok(op.responses['401'], `${where} documents 401`);
    if (route.response) assert.ok(op.responses[String(route.status)]?.content?.['application/json'], `${where} documents its response`);
  }
});

test('the documented constraints are the enforced ones', () => {
  const register = doc.paths['/api/auth/register']!.post!;
  const body = resolve(register.requestBody!.content['application/json']!.schema);
  assert.deepEqual([...(body.required ?? [])].sort(), ['password', 'username']);
  const username = resolve(body.properties!.username!);
  assert.equal(username.minLength, 3);
  assert.equal(username.maxLength, 32);
  assert.ok(username.pattern);
  assert.equal(resolve(body.properties!.password!).minLength, 8);
  const list = doc.paths['/api/conversations']!.get!;
  const limit = list.parameters!.find((p) => p.name === 'limit')!;
  assert.equal(limit.required ?? false, false);
  assert.ok(list.responses['200']?.content?.['application/json']);
});
