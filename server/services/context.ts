// What every service is built from. `now` is injectable so tests can move the clock (session expiry).
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Db } from '../db/connection.ts';
import type { Repositories } from '../db/repositories.ts';

export interface ServiceContext {
  db: Db;
  repos: Repositories;
  config: Config;
  logger: Logger;
  now: () => number;
}
