// Routes are declared once, as data: method, path, auth, and the zod schemas of their parameters,
// query, body and response. The same declaration mounts the express handler (which validates with
// those schemas before the handler runs) and feeds the OpenAPI document, so the two cannot drift.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { z } from 'zod';
import { Forbidden, Unauthorized, ValidationError, type ValidationIssue, validationErrorOf } from '../errors.ts';
import type { Principal } from '../services/auth.ts';

declare global {
  namespace Express {
    interface Locals {
      /** Set by the auth step of routes that need a signed-in user. */
      principal?: Principal;
    }
  }
}

/**
 * 'user': a session or an API key; 'session': a signed-in session only (account-level actions);
 * 'admin': a session or an API key of a user with the admin role (403 for everyone else).
 */
export type AuthMode = 'none' | 'user' | 'session' | 'admin';
export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';
type Schema = z.ZodType | undefined;
type Out<S extends Schema> = S extends z.ZodType ? z.output<S> : undefined;
type ResponseBody<S extends Schema> = S extends z.ZodType ? z.input<S> : void;

export interface HandlerInput<B extends Schema, P extends Schema, Q extends Schema, A extends AuthMode> {
  body: Out<B>;
  params: Out<P>;
  query: Out<Q>;
  principal: A extends 'none' ? undefined : Principal;
  req: Request;
  res: Response;
}

export interface RouteSpec<B extends Schema, P extends Schema, Q extends Schema, R extends Schema, A extends AuthMode> {
  method: HttpMethod;
  /** Express syntax (`/api/conversations/:id`); OpenAPI gets `{id}`. */
  path: string;
  operationId: string;
  summary: string;
  tags: string[];
  auth: A;
  body?: B;
  params?: P;
  query?: Q;
  /** Success status; default 200 with a body, 204 without. */
  status?: number;
  response?: R;
  responseDescription?: string;
  /** Runs after authentication, before validation (rate limiters). */
  middleware?: RequestHandler[];
  /** Whether `middleware` may answer 429 (documented in OpenAPI). */
  rateLimited?: boolean;
  handler: (input: HandlerInput<B, P, Q, A>) => ResponseBody<R> | Promise<ResponseBody<R>>;
}

/** A route with its types erased, ready to mount and to document. */
export interface Route {
  method: HttpMethod;
  path: string;
  operationId: string;
  summary: string;
  tags: string[];
  auth: AuthMode;
  body?: z.ZodType;
  params?: z.ZodType;
  query?: z.ZodType;
  status: number;
  response?: z.ZodType;
  responseDescription: string;
  rateLimited: boolean;
  handlers: RequestHandler[];
}

export interface Authenticator {
  /** Reads the request's credential (Authorization header, else the session cookie); throws 401 if absent. */
  principalOf(req: Request): Principal;
}

type Part = NonNullable<ValidationIssue['in']>;

function parsePart<S extends z.ZodType>(schema: S, value: unknown, where: Part): z.output<S> {
  if (where === 'body' && value === undefined) {
    throw new ValidationError('the request needs a JSON body (Content-Type: application/json)', {
      issues: [{ in: 'body', path: '', message: 'missing JSON body' } satisfies ValidationIssue],
    });
  }
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw validationErrorOf(r.error, { in: where, prefix: `invalid request ${where === 'params' ? 'path' : where}: ` });
}

export function defineRoute<B extends Schema = undefined, P extends Schema = undefined, Q extends Schema = undefined, R extends Schema = undefined, A extends AuthMode = 'none'>(
  spec: RouteSpec<B, P, Q, R, A>,
  auth: Authenticator,
): Route {
  const status = spec.status ?? (spec.response ? 200 : 204);
  const authenticate: RequestHandler = (req, res, next) => {
    const principal = auth.principalOf(req);
    if (spec.auth === 'session' && principal.via !== 'session') {
      throw new Forbidden('this needs a signed-in session: API keys cannot manage keys or the account', 'session_required');
    }
    if (spec.auth === 'admin' && principal.user.role !== 'admin') throw new Forbidden('this needs the admin role', 'admin_required');
    res.locals.principal = principal;
    next();
  };
  const handle = async (req: Request, res: Response, _next: NextFunction): Promise<void> => {
    const input = {
      body: spec.body ? parsePart(spec.body, req.body, 'body') : undefined,
      params: spec.params ? parsePart(spec.params, req.params, 'params') : undefined,
      query: spec.query ? parsePart(spec.query, req.query, 'query') : undefined,
      principal: res.locals.principal,
      req,
      res,
    } as HandlerInput<B, P, Q, A>;
    if (spec.auth !== 'none' && !input.principal) throw new Unauthorized();
    const result = await spec.handler(input);
    if (res.headersSent) return;
    // A handler may pick another status (readiness answers 503 with the same body shape).
    if (res.statusCode === 200) res.status(status);
    if (spec.response) res.json(result);
    else res.end();
  };
  return {
    method: spec.method,
    path: spec.path,
    operationId: spec.operationId,
    summary: spec.summary,
    tags: spec.tags,
    auth: spec.auth,
    body: spec.body,
    params: spec.params,
    query: spec.query,
    status,
    response: spec.response,
    responseDescription: spec.responseDescription ?? (spec.response ? 'OK' : 'No content'),
    rateLimited: spec.rateLimited ?? false,
    handlers: [...(spec.auth === 'none' ? [] : [authenticate]), ...(spec.middleware ?? []), handle],
  };
}
