// The services the transports (HTTP now, socket.io later) call.
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Db } from '../db/connection.ts';
import { createRepositories, type Repositories } from '../db/repositories.ts';
import { instrumentEngine } from '../metrics.ts';
import { createAdminService } from './admin.ts';
import { createAuthService } from './auth.ts';
import { type ChatDeps, createChatService } from './chat.ts';
import { createCompletionService } from './completions.ts';
import type { ServiceContext } from './context.ts';
import { createConversationService } from './conversations.ts';
import { createCredentialEvents } from './credential-events.ts';
import { createExportService } from './export.ts';
import { createFeedbackService } from './feedback.ts';

export type Services = ReturnType<typeof createServices>;

export interface ServiceDeps {
  db: Db;
  config: Config;
  logger: Logger;
  repos?: Repositories;
  now?: () => number;
}

const contextOf = (deps: ServiceDeps): ServiceContext => ({ db: deps.db, config: deps.config, logger: deps.logger, repos: deps.repos ?? createRepositories(deps.db), now: deps.now ?? Date.now });

/** The chat service needs the loaded engine, so main.ts makes it once the model is up. Every generation is counted in the metrics. */
export const createChat = (deps: ServiceDeps, chat: ChatDeps) => createChatService(contextOf(deps), { ...chat, engine: instrumentEngine(chat.engine) });

/** The OpenAI-compatible completions over the same engine and soft prompts as the chat (pass the same ChatDeps). */
export const createCompletions = (deps: ServiceDeps, chat: ChatDeps) => createCompletionService(contextOf(deps), { ...chat, engine: instrumentEngine(chat.engine) });

export function createServices(deps: ServiceDeps) {
  const ctx = contextOf(deps);
  // Auth and admin end credentials and change roles; the socket layer hears of both here.
  const credentials = createCredentialEvents(ctx.logger);
  return {
    auth: createAuthService(ctx, credentials),
    conversations: createConversationService(ctx),
    feedback: createFeedbackService(ctx),
    admin: createAdminService(ctx, credentials),
    credentials,
    exports: createExportService(ctx),
  };
}
