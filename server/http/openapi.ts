// The OpenAPI 3.1 document, built from the route declarations: their request schemas are the ones
// that validate requests, so the document describes exactly what the server accepts.
import { createDocument, type ZodObjectInput, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject, type ZodOpenApiResponsesObject } from 'zod-openapi';
import { SESSION_COOKIE } from '../services/credentials.ts';
import type { Route } from './route.ts';
import { errorResponseSchema } from './schemas.ts';

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: errorResponseSchema } } });

/** `/api/conversations/:id` → `/api/conversations/{id}` */
export const toOpenApiPath = (expressPath: string): string => expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

function operationOf(route: Route): ZodOpenApiOperationObject {
  const responses: ZodOpenApiResponsesObject = {
    [String(route.status)]: route.response
      ? { description: route.responseDescription, content: { 'application/json': { schema: route.response } } }
      : { description: route.responseDescription },
  };
  if (route.body || route.params || route.query) responses['400'] = errorResponse('Invalid request (details.issues names each field)');
  if (route.auth !== 'none') {
    responses['401'] = errorResponse('Missing, invalid, expired or revoked credentials');
    responses['403'] = errorResponse(route.auth === 'admin' ? 'Account disabled, or not an admin' : 'Account disabled, or the action needs a session rather than an API key');
  }
  if (route.params) responses['404'] = errorResponse('Not found (or not yours)');
  if (route.body) responses['413'] = errorResponse('Request body too large');
  if (route.rateLimited) responses['429'] = errorResponse('Rate limited (Retry-After says when to retry)');
  const requestParams: { path?: ZodObjectInput; query?: ZodObjectInput } = {};
  if (route.params) requestParams.path = route.params as ZodObjectInput;
  if (route.query) requestParams.query = route.query as ZodObjectInput;
  return {
    operationId: route.operationId,
    summary: route.summary,
    tags: route.tags,
    security: route.auth === 'none' ? [] : route.auth === 'session' ? [{ cookieAuth: [] }, { bearerAuth: [] }] : [{ bearerAuth: [] }, { cookieAuth: [] }],
    ...(route.params || route.query ? { requestParams } : {}),
    ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: route.body } } } } : {}),
    responses,
  };
}

export function buildOpenApiDocument(routes: readonly Route[], info: { title: string; version: string }) {
  const paths: ZodOpenApiPathsObject = {};
  for (const route of routes) {
    const p = toOpenApiPath(route.path);
    const item = (paths[p] ??= {});
    if (item[route.method]) throw new Error(`two routes for ${route.method.toUpperCase()} ${route.path}`);
    item[route.method] = operationOf(route);
  }
  return createDocument({
    openapi: '3.1.0',
    info: { ...info, description: 'Attune chat server API. Errors are always {"error": {"code", "message", "details"}}.' },
    paths,
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'A session token from login/register, or an atn_ API key' },
        cookieAuth: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'Set by login/register for the browser' },
      },
    },
  });
}
