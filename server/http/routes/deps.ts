import type { RequestHandler } from 'express';
import type { Config } from '../../config.ts';
import type { Services } from '../../services/index.ts';
import type { Authenticator } from '../route.ts';

/** What route modules are built from. */
export interface RouteDeps {
  config: Config;
  services: Services;
  authenticator: Authenticator;
  /** Per-IP limiter shared by login and registration. */
  authLimiter: RequestHandler;
}
