// Data exports: a user's own data (GET /api/me/export), and every preference pair as TRL's
// conversational preference format for the admin (one JSON object per line):
//   {"prompt": [{"role", "content"}, …], "chosen": [{"role": "assistant", "content"}],
//    "rejected": [{"role": "assistant", "content"}], "user_id", "source", "created_at"}
// Pairs are read a page at a time, so a large export never holds the database (better-sqlite3 is
// synchronous) or the whole table in memory while the client reads.
import type { ComparisonRecord } from '../db/comparisons.ts';
import type { FeedbackRecord } from '../db/feedback.ts';
import type { PreferencePairRecord, PreferenceSource } from '../db/preference-pairs.ts';
import { NotFound } from '../errors.ts';
import type { ApiKeyInfo, AccountUser } from './auth.ts';
import type { ConversationRecord, MessageRecord } from './conversations.ts';
import type { ServiceContext } from './context.ts';
import { iso } from './views.ts';

export const PREFERENCE_SOURCES = ['ab', 'regenerate'] as const satisfies readonly PreferenceSource[];

export interface UserDataExport {
  exportedAt: number;
  user: AccountUser;
  apiKeys: ApiKeyInfo[];
  conversations: Array<{ conversation: ConversationRecord; messages: MessageRecord[] }>;
  feedback: FeedbackRecord[];
  comparisons: ComparisonRecord[];
  preferencePairs: PreferencePairRecord[];
}

export interface TrlPreferenceLine {
  prompt: Array<{ role: string; content: string }>;
  chosen: [{ role: 'assistant'; content: string }];
  rejected: [{ role: 'assistant'; content: string }];
  user_id: string;
  source: PreferenceSource;
  created_at: string;
}

export interface PreferenceExportFilter {
  userId?: string;
  source?: PreferenceSource;
  since?: number;
}

const PAGE = 500;

export const toTrlLine = (p: PreferencePairRecord): TrlPreferenceLine => ({
  prompt: p.prompt.map((m) => ({ role: String(m.role), content: String(m.content) })),
  chosen: [{ role: 'assistant', content: p.chosen }],
  rejected: [{ role: 'assistant', content: p.rejected }],
  user_id: p.userId,
  source: p.source,
  created_at: iso(p.createdAt),
});

export type ExportService = ReturnType<typeof createExportService>;

export function createExportService(ctx: ServiceContext) {
  const { db, repos, now } = ctx;

  // One read transaction: the export is a consistent snapshot.
  const userDataTx = db.transaction((userId: string): UserDataExport => {
    const user = repos.users.findById(userId);
    if (!user) throw new NotFound('no such user');
    const { passwordHash: _omit, ...profile } = user;
    return {
      exportedAt: now(),
      user: profile,
      apiKeys: repos.apiKeys.listForUser(userId).map(({ keyHash: _h, userId: _u, ...k }) => k),
      conversations: repos.conversations.listAllForUser(userId).map((conversation) => ({ conversation, messages: repos.conversations.listMessages(conversation.id) })),
      feedback: repos.feedback.listForUser(userId),
      comparisons: repos.comparisons.listForUser(userId),
      preferencePairs: repos.preferencePairs.listForUser(userId),
    };
  });

  return {
    userData: (userId: string): UserDataExport => userDataTx(userId),

    /** Preference pairs, oldest first, as TRL lines, one page per iteration step. */
    async *preferencePages(filter: PreferenceExportFilter): AsyncGenerator<TrlPreferenceLine[]> {
      if (filter.userId !== undefined && !repos.users.findById(filter.userId)) throw new NotFound('no such user');
      let after: { createdAt: number; id: string } | undefined;
      for (;;) {
        const page = repos.preferencePairs.listPage(filter, PAGE, after);
        if (page.length === 0) return;
        yield page.map(toTrlLine);
        const last = page.at(-1)!;
        after = { createdAt: last.createdAt, id: last.id };
        if (page.length < PAGE) return;
      }
    },
  };
}
