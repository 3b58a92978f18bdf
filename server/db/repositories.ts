// All repositories over one connection; each prepares its statements once, here.
import type { Db } from './connection.ts';
import { createApiKeyRepository } from './api-keys.ts';
import { createComparisonRepository } from './comparisons.ts';
import { createConversationRepository } from './conversations.ts';
import { createFeedbackRepository } from './feedback.ts';
import { createPreferencePairRepository } from './preference-pairs.ts';
import { createSessionRepository } from './sessions.ts';
import { createStatsRepository } from './stats.ts';
import { createUserModelRepository } from './user-models.ts';
import { createUserRepository } from './users.ts';

export type Repositories = ReturnType<typeof createRepositories>;

export function createRepositories(db: Db) {
  return {
    users: createUserRepository(db),
    sessions: createSessionRepository(db),
    apiKeys: createApiKeyRepository(db),
    conversations: createConversationRepository(db),
    feedback: createFeedbackRepository(db),
    comparisons: createComparisonRepository(db),
    preferencePairs: createPreferencePairRepository(db),
    userModels: createUserModelRepository(db),
    stats: createStatsRepository(db),
  };
}
