// The web client: client/dist (built by Vite) at `/`. Hashed assets are cached for a year; index.html
// is always revalidated, and answers every other GET that is not the API, /v1, socket.io or a probe,
// so deep links of the single-page app load it. Without a build nothing is served here (API only).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type RequestHandler, type Router } from 'express';

export const DEFAULT_CLIENT_DIR = fileURLToPath(new URL('../../client/dist', import.meta.url));

/** Paths that belong to the server, never to the app (their 404s stay JSON). */
const SERVER_PATHS = /^\/(api|v1|socket\.io|healthz|readyz|metrics)(\/|$)/;

export function clientRouter(dir: string = DEFAULT_CLIENT_DIR): Router {
  const router = express.Router();
  const index = path.join(dir, 'index.html');
  // Checked per request (a stat): a build made after start-up is served without a restart.
  const built = () => fs.existsSync(index);

  const assets = express.static(dir, {
    index: false,
    fallthrough: true,
    setHeaders(res, file) {
      const hashed = file.includes(`${path.sep}assets${path.sep}`);
      res.setHeader('Cache-Control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
  const spa: RequestHandler = (req, res, next) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || SERVER_PATHS.test(req.path) || !built()) return next();
    // A missing asset is a 404, not the app.
    if (req.path.startsWith('/assets/')) return next();
    if (!req.accepts('html')) return next();
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(index);
  };
  router.use((req, res, next) => (SERVER_PATHS.test(req.path) || !built() ? next() : assets(req, res, next)));
  router.use(spa);
  return router;
}
