/// <reference lib="es2024.string" />
// The express app: middleware in order, the routes, the OpenAPI document and the error handler.
// It does not listen; main.ts (or a test's supertest) does.
import { randomUUID } from 'node:crypto';
import express, { type Express } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { Config } from '../config.ts';
import type { Db } from '../db/connection.ts';
import { metrics, observeTrainingJobs } from '../metrics.ts';
import type { CompletionService } from '../services/completions.ts';
import type { Services } from '../services/index.ts';
import { createAuthenticator } from './middleware/auth.ts';
import { cors } from './middleware/cors.ts';
import { createOriginCheck } from './middleware/csrf.ts';
import { errorHandler, notFoundHandler } from './middleware/errors.ts';
import { createIpRateLimiter } from './middleware/rate-limit.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { defineRoute, type Route } from './route.ts';
import { openApiDocumentSchema } from './schemas.ts';
import { authRoutes } from './routes/auth.ts';
import { conversationRoutes } from './routes/conversations.ts';
import { feedbackRoutes } from './routes/feedback.ts';
import type { RouteDeps } from './routes/deps.ts';
import { healthRoutes } from './routes/health.ts';
import { meRoutes } from './routes/me.ts';
import { trainingRoutes } from './routes/training.ts';
import type { TrainingService } from '../services/training.ts';
import { adminRoutes } from './routes/admin.ts';
import { exportRoutes } from './routes/export.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { openAiRouter } from './routes/openai.ts';
import { clientRouter } from './static.ts';

export interface AppDeps {
  config: Config;
  db: Db;
  services: Services;
  logger: Logger;
  /** Whether the engine has loaded its model (readiness); default: always true. */
  isModelReady?: () => boolean;
  /** The OpenAI-compatible API (/v1); absent: not mounted (no engine). */
  completions?: CompletionService;
  /** Retraining, user-model versions and a user's personalization (/api/admin/training, /api/me/personalization). */
  training?: TrainingService;
}

export interface AttuneApp {
  app: Express;
  routes: readonly Route[];
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;
const API_VERSION = '0.1.0';

export function createApp(deps: AppDeps): Express {
  return createAttuneApp(deps).app;
}

/** The app and its route table (tests and tools read the table). */
export function createAttuneApp({ config, db, services, logger, isModelReady = () => true, completions, training }: AppDeps): AttuneApp {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.use(recordHttpMetrics);
  observeTrainingJobs(() => services.admin.trainingJobCounts());

  app.use(
    pinoHttp({
      logger,
      // A caller's own request id is kept (it ties our log to theirs); otherwise a fresh UUID.
      genReqId: (req, res) => {
        const incoming = req.headers['x-request-id'];
        const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
      // One short line per request: no header dumps (they are long, and carry credentials).
      serializers: {
        req: (req: { id: unknown; method: string; url: string; remoteAddress?: string; headers: Record<string, unknown> }) => ({
          id: req.id,
          method: req.method,
          url: req.url,
          remoteAddress: req.remoteAddress,
          userAgent: req.headers['user-agent'],
        }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      // Probes hit these every few seconds; a line each would drown the log.
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/readyz' },
    }),
  );
  // HSTS and upgrade-insecure-requests only when served over HTTPS: on a plain-HTTP LAN install they
  // would send browsers to an https:// that does not exist.
  app.use(
    helmet({
      strictTransportSecurity: config.cookieSecure,
      contentSecurityPolicy: { directives: { upgradeInsecureRequests: config.cookieSecure ? [] : null } },
    }),
  );
  if (config.corsOrigin) app.use(cors(config.corsOrigin));
  // API answers are per user (or carry a token) and go stale at once: no browser or proxy may keep them.
  // The client's static files are outside these prefixes and keep their own caching.
  app.use(['/api', '/v1'], noStore);
  // Before the body is read: a forged request is refused without parsing it.
  app.use(createOriginCheck({ publicOrigin: config.publicOrigin, corsOrigin: config.corsOrigin }));
  app.use(express.json({ limit: config.maxBodyBytes, reviver: wellFormedJson }));

  const routeDeps: RouteDeps = {
    config,
    services,
    authenticator: createAuthenticator(services.auth),
    authLimiter: createIpRateLimiter({ max: config.authRateLimit, windowMs: config.authRateWindowSeconds * 1000, what: 'sign-in attempts' }),
  };
  const routes: Route[] = [
    ...healthRoutes({ db, isModelReady }, routeDeps.authenticator),
    ...authRoutes(routeDeps),
    ...meRoutes(routeDeps),
    ...conversationRoutes(routeDeps),
    ...feedbackRoutes(routeDeps),
    ...exportRoutes(routeDeps),
    ...adminRoutes(routeDeps),
    ...(training ? trainingRoutes(routeDeps, training) : []),
    ...metricsRoutes(config, routeDeps.authenticator),
  ];
  let document: Record<string, unknown> | null = null;
  routes.push(
    defineRoute(
      {
        method: 'get',
        path: '/api/openapi.json',
        operationId: 'getOpenApi',
        summary: 'This OpenAPI 3.1 document',
        tags: ['meta'],
        auth: 'none',
        response: openApiDocumentSchema,
        handler: () => (document ??= buildOpenApiDocument(routes, { title: 'Attune', version: API_VERSION }) as unknown as Record<string, unknown>),
      },
      routeDeps.authenticator,
    ),
  );

  if (completions) {
    const v1 = openAiRouter({ config, auth: services.auth, completions });
    app.use('/v1', v1.router);
    // OpenAI's error shape for everything under /v1, body-parser's 400/413 included.
    app.use('/v1', v1.errorHandler);
  }
  const router = express.Router();
  for (const r of routes) router[r.method](r.path, ...r.handlers);
  app.use(router);
  // The web client (client/dist) and its single-page fallback, after every server route.
  app.use(clientRouter());
  app.use(notFoundHandler);
  app.use(errorHandler);
  return { app, routes };
}

/**
 * JSON.parse reviver: each lone UTF-16 surrogate (legal in JSON's \uD800 escapes, not in UTF-8)
 * becomes one U+FFFD, in values and in keys, so that what a route echoes is what SQLite stores (it
 * would store the bytes of an ill-formed string as three U+FFFD). The socket guard does the same.
 */
function wellFormedJson(_key: string, value: unknown): unknown {
  if (typeof value === 'string') return value.toWellFormed();
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.every((k) => k.isWellFormed())) return value;
  // fromEntries defines own properties, so a "__proto__" key stays data, as JSON.parse made it.
  return Object.fromEntries(keys.map((k) => [k.toWellFormed(), (value as Record<string, unknown>)[k]]));
}

const noStore: express.RequestHandler = (_req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  next();
};

/**
 * Counts every response by method, route pattern (never the raw URL: ids would make a series per
 * conversation) and status, with its duration until the last byte (streams included).
 */
const recordHttpMetrics: express.RequestHandler = (req, res, next) => {
  const started = process.hrtime.bigint();
  res.once('close', () => {
    const pattern = (req.route as { path?: unknown } | undefined)?.path;
    const route = typeof pattern === 'string' ? `${req.baseUrl}${pattern}` : 'unmatched';
    metrics.httpRequest({ method: req.method, route, status: res.statusCode }, Number(process.hrtime.bigint() - started) / 1e9);
  });
  next();
};
