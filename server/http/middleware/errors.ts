// The one place errors become responses: typed AppErrors keep their status and code; body-parser's
// errors become 400/413; anything else is a 500 whose details stay in the log, never in the response.
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { type AppError, NotFound, PayloadTooLarge, ValidationError, errorBody, isAppError } from '../../errors.ts';

class InternalError extends Error {}

interface HttpishError {
  type?: unknown;
  status?: unknown;
  expose?: unknown;
  limit?: unknown;
}

function toAppError(err: unknown): AppError | null {
  if (isAppError(err)) return err;
  const e = (err ?? {}) as HttpishError;
  if (e.type === 'entity.too.large') {
    return new PayloadTooLarge(`the request body is larger than the ${e.limit} bytes allowed`, { limitBytes: e.limit });
  }
  if (e.type === 'entity.parse.failed') return new ValidationError('the request body is not valid JSON', {}, 'invalid_json');
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500 && e.expose === true) {
    return new ValidationError(err instanceof Error ? err.message : 'bad request', {}, 'bad_request');
  }
  return null;
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new NotFound(`no route for ${req.method} ${req.path}`, 'route_not_found'));
};

export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const appError = toAppError(err);
  if (res.headersSent) {
    req.log.error({ err }, 'error after the response started');
    res.end();
    return;
  }
  if (appError) {
    if (appError.status === 413 && !isAppError(err)) {
      // The unread rest of an oversize body would otherwise be parsed as the next request.
      res.setHeader('Connection', 'close');
    }
    if (appError.status === 429 && typeof appError.details.retryAfterSeconds === 'number') {
      res.setHeader('Retry-After', String(appError.details.retryAfterSeconds));
    }
    res.status(appError.status).json(errorBody(appError));
    return;
  }
  // pino-http logs the failed request with this error attached.
  res.err = err instanceof Error ? err : new InternalError(String(err));
  req.log.error({ err }, 'unhandled error');
  res.status(500).json({ error: { code: 'internal', message: 'internal server error', details: { requestId: String(req.id) } } });
};
