/// <reference lib="es2024.string" />
// The one error family of the server. Services (and personalize/) throw these; every edge maps what
// reaches it through appErrorOf, so /api, /v1 and socket.io answer alike: the HTTP error middleware
// as `{"error": {"code", "message", "details"}}` with the status below, /v1 in OpenAI's shape, the
// socket as an `error` event. Messages are written for the client: they never carry stack traces,
// SQL or internal paths. Anything else thrown is a server fault: a 500 whose details stay in the log.
import { CONTEXT_LENGTH_EXCEEDED, ENGINE_CLOSED, LmError } from './lm/errors.ts';

export type ErrorDetails = Record<string, unknown>;

export abstract class AppError extends Error {
  abstract readonly status: number;
  readonly code: string;
  readonly details: ErrorDetails;

  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** 400: the request is malformed or fails validation (details.issues lists each field). */
export class ValidationError extends AppError {
  readonly status = 400;
  constructor(message: string, details: ErrorDetails = {}, code = 'validation_failed') {
    super(code, message, details);
  }
}

/** 401: no credentials, or credentials that are wrong, expired or revoked. */
export class Unauthorized extends AppError {
  readonly status = 401;
  constructor(message = 'sign in first', code = 'unauthorized', details: ErrorDetails = {}) {
    super(code, message, details);
  }
}

/** 403: authenticated, but not allowed to do this. */
export class Forbidden extends AppError {
  readonly status = 403;
  constructor(message = 'not allowed', code = 'forbidden', details: ErrorDetails = {}) {
    super(code, message, details);
  }
}

/** 404: absent, or owned by someone else (the two are never told apart). */
export class NotFound extends AppError {
  readonly status = 404;
  constructor(message = 'not found', code = 'not_found', details: ErrorDetails = {}) {
    super(code, message, details);
  }
}

/** 409: the request clashes with the current state (a taken username, a limit reached). */
export class Conflict extends AppError {
  readonly status = 409;
  constructor(message: string, code = 'conflict', details: ErrorDetails = {}) {
    super(code, message, details);
  }
}

/** 413: the request body is larger than ATTUNE_MAX_BODY_BYTES. */
export class PayloadTooLarge extends AppError {
  readonly status = 413;
  constructor(message: string, details: ErrorDetails = {}) {
    super('payload_too_large', message, details);
  }
}

/** 415: the body's charset or content encoding is one the server does not read. */
export class UnsupportedMediaType extends AppError {
  readonly status = 415;
  constructor(message: string, code = 'unsupported_media_type', details: ErrorDetails = {}) {
    super(code, message, details);
  }
}

/** Another 4xx that a library raised with its own status (a static file's 412 or 416): kept as it is. */
export class ClientError extends AppError {
  constructor(readonly status: number, code: string, message: string, details: ErrorDetails = {}) {
    super(code, message, details);
  }
}

/** 429: too many requests in the current window; details.retryAfterSeconds says when to retry. */
export class RateLimited extends AppError {
  readonly status = 429;
  constructor(message = 'too many requests, slow down', details: ErrorDetails = {}, code = 'rate_limited') {
    super(code, message, details);
  }
}

/** 503: a dependency (the model) is not ready yet. */
export class ServiceUnavailable extends AppError {
  readonly status = 503;
  constructor(message: string, code = 'unavailable', details: ErrorDetails = {}) {
    super(code, message, details);
  }
}

export const isAppError = (e: unknown): e is AppError => e instanceof AppError;

/**
 * The language model's errors, as a client sees them when one reaches an edge unconverted (services
 * turn the refusals they expect into messages of their own first). lm/ knows nothing of HTTP, so its
 * codes are given statuses here:
 * - context_length_exceeded (or a bad_argument for that reason) → 400 context_length_exceeded;
 * - a bad_argument because the engine is closing → 503 unavailable;
 * - any other bad_argument → 400 bad_argument (the caller passed what the model cannot take);
 * - file_missing, file_corrupt, config_invalid, unsupported_dtype, unsupported_model, tensor_missing
 *   → null: the model on disk is broken, a server fault (500) whose message names server paths.
 */
export function lmAppError(e: LmError): AppError | null {
  const reason = e.details?.reason;
  if (e.code === 'context_length_exceeded' || reason === CONTEXT_LENGTH_EXCEEDED) {
    const { reason: _reason, ...counts } = e.details ?? {};
    return new ValidationError(e.message, counts, 'context_length_exceeded');
  }
  if (e.code !== 'bad_argument') return null;
  if (reason === ENGINE_CLOSED) return new ServiceUnavailable('the server is shutting down; try again shortly', 'unavailable');
  return new ValidationError(e.message, Array.isArray(e.details?.issues) ? { issues: e.details.issues } : {}, 'bad_argument');
}

/** The AppError a client should see for any thrown value, or null for a server fault (500). */
export function appErrorOf(e: unknown): AppError | null {
  if (isAppError(e)) return e;
  if (e instanceof LmError) return lmAppError(e);
  return null;
}

/** A text that may echo what a client sent, cut to `max` characters (and kept well formed where the cut splits a pair). */
export function clipText(s: string, max: number): string {
  return (s.length > max ? `${s.slice(0, max)}…` : s).toWellFormed();
}

/** What a schema library's failed parse reports (zod's ZodError has this shape). */
export interface SchemaIssues {
  issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>;
}

/** One field that failed validation, as details.issues lists it. */
export interface ValidationIssue {
  /** Which part of an HTTP request (absent on the socket and /v1). */
  in?: 'body' | 'params' | 'query';
  /** Dotted path of the field ('' for the whole value). */
  path: string;
  message: string;
}

export interface ValidationErrorOptions {
  /** Put before the issues in the message (e.g. "invalid request body: "). */
  prefix?: string;
  code?: string;
  in?: ValidationIssue['in'];
  /**
   * For input that may be echoed back (zod quotes an unknown key): at most `issues` issues, each
   * path and message clipped to `chars`.
   */
  limit?: { issues: number; chars: number };
}

/** A failed schema parse as the 400 every edge sends: each issue in details.issues, all of them in the message. */
export function validationErrorOf(error: SchemaIssues, o: ValidationErrorOptions = {}): ValidationError {
  const all = error.issues;
  const shown = o.limit ? all.slice(0, o.limit.issues) : all;
  const text = (s: string): string => (o.limit ? clipText(s, o.limit.chars) : s);
  const issues: ValidationIssue[] = shown.map((i) => ({ ...(o.in ? { in: o.in } : {}), path: text(i.path.map(String).join('.')), message: text(i.message) }));
  const more = all.length > shown.length ? `; and ${all.length - shown.length} more` : '';
  const summary = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
  return new ValidationError(`${o.prefix ?? ''}${summary}${more}`, { issues }, o.code);
}

export interface ErrorBody {
  error: { code: string; message: string; details: ErrorDetails };
}

export const errorBody = (e: AppError): ErrorBody => ({
  error: { code: e.code, message: e.message, details: e.details },
});
