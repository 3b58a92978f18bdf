// CORS for the origins of ATTUNE_CORS_ORIGIN (off by default). Cross-origin callers authenticate with
// bearer tokens, so credentials (cookies) are never allowed cross-origin.
import type { RequestHandler } from 'express';

export function cors(origins: '*' | string[]): RequestHandler {
  const allowed = origins === '*' ? null : new Set(origins);
  return (req, res, next) => {
    const origin = req.get('origin');
    res.vary('Origin');
    if (!origin || (allowed && !allowed.has(origin))) return next();
    res.setHeader('Access-Control-Allow-Origin', allowed ? origin : '*');
    res.setHeader('Access-Control-Expose-Headers', 'X-Request-Id, Retry-After, RateLimit, RateLimit-Policy');
    if (req.method === 'OPTIONS' && req.get('access-control-request-method')) {
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, PUT, PATCH, DELETE');
      res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, X-Request-Id');
      res.setHeader('Access-Control-Max-Age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}
