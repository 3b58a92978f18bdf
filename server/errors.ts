// The one error family of the server. Services throw these; the HTTP error middleware turns them into
// `{"error": {"code", "message", "details"}}` with the status below. Messages are written for the
// client: they never carry stack traces, SQL or internal paths.

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

export interface ErrorBody {
  error: { code: string; message: string; details: ErrorDetails };
}

export const errorBody = (e: AppError): ErrorBody => ({
  error: { code: e.code, message: e.message, details: e.details },
});
