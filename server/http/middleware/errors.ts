// The one place errors become responses: typed AppErrors keep their status and code, the model's
// LmErrors get theirs (appErrorOf, shared with the socket); errors of the HTTP plumbing (body-parser,
// raw-body, the router's parameter decoding) become the 4xx they are; anything else is a 500 whose
// details stay in the log, never in the response. The /v1 error handler uses the same mapping
// (toAppError) and only renders it in OpenAI's shape.
import type { ErrorRequestHandler, RequestHandler } from 'express';
import {
  type AppError,
  ClientError,
  Forbidden,
  NotFound,
  PayloadTooLarge,
  UnsupportedMediaType,
  ValidationError,
  appErrorOf,
  errorBody,
  isAppError,
} from '../../errors.ts';

class InternalError extends Error {}

/** What http-errors (used by body-parser, raw-body and the router) put on an error. */
interface HttpishError {
  type?: unknown;
  status?: unknown;
  expose?: unknown;
  limit?: unknown;
  charset?: unknown;
  encoding?: unknown;
  code?: unknown;
}

const statusOf = (e: HttpishError): number | null => (typeof e.status === 'number' ? e.status : null);

/**
 * Maps any thrown value to the AppError a client should see, or null for a server fault (500):
 * appErrorOf's mapping (AppErrors, LmErrors), then the plumbing's. body-parser's error types
 * (body-parser 2 and raw-body 3), by what they mean:
 * - entity.too.large, parameters.too.many → 413;
 * - entity.parse.failed, querystring.parse.rangeError → 400 (the body is not what it claims);
 * - charset.unsupported (a charset other than UTF-8/16/32 for JSON) and encoding.unsupported (a
 *   Content-Encoding other than identity, gzip, deflate, br) → 415;
 * - request.aborted (the client went away mid-body), request.size.invalid (fewer or more bytes than
 *   Content-Length) → 400;
 * - a Content-Encoding we decode but whose bytes do not decompress (zlib's error, wrapped as a 400
 *   without a type) → 400;
 * - entity.verify.failed → 403 (only with a `verify` option, which we do not set);
 * - stream.encoding.set, stream.not.readable → 500: they mean the server read the stream twice, a bug
 *   of ours, never the client's input.
 * The router's URIError (a malformed %-escape in a path parameter, e.g. GET /api/conversations/%) is
 * a 400 too.
 */
export function toAppError(err: unknown): AppError | null {
  const known = appErrorOf(err);
  if (known) return known;
  if (err instanceof URIError) {
    return new ValidationError('the URL path has a malformed percent-encoding (a % must be followed by two hex digits of valid UTF-8)', {}, 'invalid_path_encoding');
  }
  const e = (err ?? {}) as HttpishError;
  switch (e.type) {
    case 'entity.too.large':
      return new PayloadTooLarge(`the request body is larger than the ${e.limit} bytes allowed`, { limitBytes: e.limit });
    case 'parameters.too.many':
      return new PayloadTooLarge('the request body has too many parameters', {});
    case 'entity.parse.failed':
      return new ValidationError('the request body is not valid JSON', {}, 'invalid_json');
    case 'querystring.parse.rangeError':
      return new ValidationError('the request body is nested too deeply', {}, 'invalid_body');
    case 'charset.unsupported':
      return new UnsupportedMediaType(
        `the body's charset ${JSON.stringify(String(e.charset ?? ''))} is not supported: send JSON as UTF-8 (Content-Type: application/json; charset=utf-8)`,
        'unsupported_charset',
        { charset: typeof e.charset === 'string' ? e.charset : null },
      );
    case 'encoding.unsupported':
      return new UnsupportedMediaType(
        `the Content-Encoding ${JSON.stringify(String(e.encoding ?? ''))} is not supported: send the body uncompressed, or as gzip, deflate or br`,
        'unsupported_content_encoding',
        { encoding: typeof e.encoding === 'string' ? e.encoding : null },
      );
    case 'request.aborted':
      return new ValidationError('the request body ended before it was complete', {}, 'request_aborted');
    case 'request.size.invalid':
      return new ValidationError('the request body does not have the length its Content-Length header says', {}, 'invalid_content_length');
    case 'entity.verify.failed':
      return new Forbidden('the request body was refused', 'body_refused');
    case 'stream.encoding.set':
    case 'stream.not.readable':
      return null;
  }
  const status = statusOf(e);
  // zlib's codes: Z_DATA_ERROR and kin (gzip, deflate), ERR__ERROR_FORMAT_… (brotli).
  if (status === 400 && e.type === undefined && typeof e.code === 'string' && /^(Z_|ERR__ERROR|ERR_BROTLI|ERR_ZSTD)/.test(e.code)) {
    return new ValidationError('the request body does not decompress as its Content-Encoding says', {}, 'invalid_content_encoding');
  }
  if (status !== null && status >= 400 && status < 500 && e.expose === true) {
    const message = err instanceof Error ? err.message : 'bad request';
    if (status === 400) return new ValidationError(message, {}, 'bad_request');
    // The static file server's conditional and range answers keep their meaning (and status).
    return new ClientError(status, CLIENT_ERROR_CODES[status] ?? 'bad_request', message);
  }
  return null;
}

const CLIENT_ERROR_CODES: Record<number, string> = { 412: 'precondition_failed', 416: 'range_not_satisfiable' };

/**
 * Headers a responder set before it failed (the static file server sets the file's type, length,
 * validators and caching before it checks Range and If-Match) would describe a body that is not sent.
 */
const STALE_ON_ERROR = ['Content-Type', 'Content-Length', 'ETag', 'Last-Modified', 'Accept-Ranges', 'Content-Encoding'];

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new NotFound(`no route for ${req.method} ${req.path}`, 'route_not_found'));
};

/** Headers that go with an error response, whichever shape its body takes. */
export function setErrorHeaders(res: Parameters<ErrorRequestHandler>[2], appError: AppError, original: unknown): void {
  if (appError.status === 413 && !isAppError(original)) {
    // The unread rest of an oversize body would otherwise be parsed as the next request.
    res.setHeader('Connection', 'close');
  }
  if (appError.status === 429 && typeof appError.details.retryAfterSeconds === 'number') {
    res.setHeader('Retry-After', String(appError.details.retryAfterSeconds));
  }
}

export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const appError = toAppError(err);
  if (res.headersSent) {
    req.log.error({ err }, 'error after the response started');
    res.end();
    return;
  }
  for (const h of STALE_ON_ERROR) res.removeHeader(h);
  // An error is about this request only: no cache keeps it (static files are otherwise cacheable).
  res.setHeader('Cache-Control', 'no-store');
  if (appError) {
    setErrorHeaders(res, appError, err);
    res.status(appError.status).json(errorBody(appError));
    return;
  }
  // pino-http logs the failed request with this error attached.
  res.err = err instanceof Error ? err : new InternalError(String(err));
  req.log.error({ err }, 'unhandled error');
  res.status(500).json({ error: { code: 'internal', message: 'internal server error', details: { requestId: String(req.id) } } });
};
