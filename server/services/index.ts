// The services the transports (HTTP now, socket.io later) call.
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Db } from '../db/connection.ts';
import { createRepositories, type Repositories } from '../db/repositories.ts';
import { createAuthService } from './auth.ts';
import { createConversationService } from './conversations.ts';

export type Services = ReturnType<typeof createServices>;

export function createServices(deps: { db: Db; config: Config; logger: Logger; repos?: Repositories; now?: () => number }) {
  const ctx = { db: deps.db, config: deps.config, logger: deps.logger, repos: deps.repos ?? createRepositories(deps.db), now: deps.now ?? Date.now };
  return {
    auth: createAuthService(ctx),
    conversations: createConversationService(ctx),
  };
}
