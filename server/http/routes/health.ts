// Liveness (the process answers) and readiness (database open and model loaded: send traffic).
import type { Db } from '../../db/connection.ts';
import { isDatabaseReady } from '../../db/connection.ts';
import { defineRoute, type Authenticator, type Route } from '../route.ts';
import { healthSchema, readinessSchema } from '../schemas.ts';

export function healthRoutes({ db, isModelReady }: { db: Db; isModelReady: () => boolean }, authenticator: Authenticator): Route[] {
  return [
    defineRoute(
      {
        method: 'get',
        path: '/healthz',
        operationId: 'health',
        summary: 'Liveness: the process is up',
        tags: ['meta'],
        auth: 'none',
        response: healthSchema,
        handler: () => ({ status: 'ok' as const }),
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'get',
        path: '/readyz',
        operationId: 'ready',
        summary: 'Readiness: the database is open and the model is loaded (503 otherwise)',
        tags: ['meta'],
        auth: 'none',
        response: readinessSchema,
        responseDescription: 'Ready (not ready: 503 with the same body)',
        handler: ({ res }) => {
          const body = { db: isDatabaseReady(db), model: isModelReady() };
          const ready = body.db && body.model;
          if (!ready) res.status(503);
          return { status: ready ? ('ready' as const) : ('not_ready' as const), ...body };
        },
      },
      authenticator,
    ),
  ];
}
