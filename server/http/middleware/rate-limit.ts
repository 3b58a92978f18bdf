// express-rate-limit with our error shape. Counters live in process memory: fine for one server
// process; several processes behind a balancer would need a shared store.
import type { Request, RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import { RateLimited } from '../../errors.ts';

interface LimitOptions {
  /** Requests allowed per window per key. */
  max: number;
  windowMs: number;
  /** Says what was limited, in the 429 message. */
  what: string;
}

const retryAfterSeconds = (req: Request, windowMs: number): number => {
  const reset = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
  return Math.max(1, Math.ceil(((reset ? reset.getTime() - Date.now() : windowMs) / 1000)));
};

function limiter(opts: LimitOptions, keyGenerator?: (req: Request, res: Parameters<RequestHandler>[1]) => string): RequestHandler {
  return rateLimit({
    windowMs: opts.windowMs,
    limit: opts.max,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    ...(keyGenerator ? { keyGenerator } : {}),
    handler: (req, _res, next) => {
      const after = retryAfterSeconds(req, opts.windowMs);
      next(new RateLimited(`too many ${opts.what}: try again in ${after} s`, { retryAfterSeconds: after, limit: opts.max, windowSeconds: Math.round(opts.windowMs / 1000) }));
    },
  });
}

/** Per client IP (login and registration). */
export const createIpRateLimiter = (opts: LimitOptions): RequestHandler => limiter(opts);

/** Per signed-in user; mount after authentication (the route's `middleware`). */
export const createUserRateLimiter = (opts: LimitOptions): RequestHandler =>
  limiter(opts, (_req, res) => {
    const principal = res.locals.principal;
    if (!principal) throw new Error('the per-user rate limiter runs before authentication');
    return `user:${principal.user.id}`;
  });
