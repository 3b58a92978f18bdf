// Liveness (the process answers) and readiness (the database takes durable writes and the model is
// loaded: send traffic). A database that is closed, deleted or replaced under the server, not
// writable, or full makes the server not ready, and the body names the cause.
import type { Db } from '../../db/connection.ts';
import { databaseProblem } from '../../db/connection.ts';
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
        summary: 'Readiness: the database takes durable writes and the model is loaded (503 otherwise, with the database\'s problem in cause)',
        tags: ['meta'],
        auth: 'none',
        response: readinessSchema,
        responseDescription: 'Ready (not ready: 503 with the same body)',
        handler: ({ res }) => {
          const problem = databaseProblem(db);
          const body = { db: problem === null, model: isModelReady() };
          const ready = body.db && body.model;
          if (!ready) res.status(503);
          return { status: ready ? ('ready' as const) : ('not_ready' as const), ...body, ...(problem ? { cause: problem } : {}) };
        },
      },
      authenticator,
    ),
  ];
}
