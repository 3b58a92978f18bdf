// GET /metrics: Prometheus's text format from prom-client. Open like /healthz unless
// ATTUNE_METRICS_TOKEN is set, in which case the scraper sends `Authorization: Bearer <token>`.
import { timingSafeEqual } from 'node:crypto';
import type { Config } from '../../config.ts';
import { Unauthorized } from '../../errors.ts';
import { renderMetrics } from '../../metrics.ts';
import { bearerTokenOf } from '../../services/credentials.ts';
import { defineRoute, type Authenticator, type Route } from '../route.ts';

const sameSecret = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

export function metricsRoutes(config: Config, authenticator: Authenticator): Route[] {
  return [
    defineRoute(
      {
        method: 'get',
        path: '/metrics',
        operationId: 'metrics',
        summary: 'Prometheus metrics (text exposition format); needs the bearer ATTUNE_METRICS_TOKEN when one is set',
        tags: ['meta'],
        auth: 'none',
        status: 200,
        responseDescription: 'text/plain; version=0.0.4',
        handler: async ({ req, res }) => {
          if (config.metricsToken !== undefined) {
            const token = bearerTokenOf(req.get('authorization'));
            if (token === undefined || !sameSecret(token, config.metricsToken)) throw new Unauthorized('send the metrics token as "Authorization: Bearer <token>"', 'invalid_metrics_token');
          }
          const { contentType, body } = await renderMetrics();
          res.status(200).setHeader('Content-Type', contentType);
          res.end(body);
        },
      },
      authenticator,
    ),
  ];
}
