// Looking after users: list them with their activity, disable or enable, promote or demote, and
// feedback statistics per user and per day. The caller is an admin (the HTTP layer checks the role).
//
// There is always at least one active admin: demoting or disabling the last one is a 409. Disabling
// ends the user's sessions at once (re-enabling needs a fresh sign-in); their API keys are refused
// while the account is disabled and work again when it is enabled. The credential events tell the
// socket layer of a disable (it drops the user's live connections) and of a role change (it moves
// them in or out of the admin room).
import { z } from 'zod';
import type { BucketRow, UserActivityCounts } from '../db/stats.ts';
import type { UserRecord } from '../db/users.ts';
import { Conflict, NotFound, ValidationError } from '../errors.ts';
import type { AccountUser } from './auth.ts';
import type { ServiceContext } from './context.ts';
import { COMPARISON_CHOICES } from './chat.ts';
import type { CredentialEvents } from './credential-events.ts';

export type { UserActivityCounts } from '../db/stats.ts';

export interface AdminUser extends AccountUser {
  counts: UserActivityCounts;
}

export interface AdminUserPage {
  items: AdminUser[];
  nextCursor: string | null;
  total: number;
}

export interface FeedbackCounts {
  up: number;
  down: number;
  comparisons: Record<(typeof COMPARISON_CHOICES)[number] | 'undecided', number>;
  pairs: { ab: number; regenerate: number };
}

export interface FeedbackStats {
  since: number;
  until: number;
  totals: FeedbackCounts;
  /** Every UTC day of the window, oldest first, empty days included. */
  daily: Array<{ day: string } & FeedbackCounts>;
  /** Users with any feedback in the window, by username. */
  users: Array<{ userId: string; username: string } & FeedbackCounts>;
}

export const userUpdateSchema = z
  .strictObject({
    role: z.enum(['user', 'admin'], { error: 'role must be "user" or "admin"' }).optional(),
    disabled: z.boolean({ error: 'disabled must be true or false' }).optional(),
  })
  .refine((u) => u.role !== undefined || u.disabled !== undefined, { message: 'give role and/or disabled' });
export type UserUpdate = z.output<typeof userUpdateSchema>;

const DAY_MS = 86_400_000;
const cursorSchema = z.tuple([z.number().int().nonnegative(), z.string().min(1)]);

const encodeCursor = (u: UserRecord): string => Buffer.from(JSON.stringify([u.createdAt, u.id])).toString('base64url');
function decodeCursor(cursor: string): { createdAt: number; id: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const r = cursorSchema.safeParse(parsed);
  if (!r.success) throw new ValidationError('invalid cursor: pass back the nextCursor of the previous page', { issues: [{ in: 'query', path: 'cursor', message: 'invalid cursor' }] });
  return { createdAt: r.data[0], id: r.data[1] };
}

const emptyCounts = (): FeedbackCounts => ({ up: 0, down: 0, comparisons: { A: 0, B: 0, tie: 0, both_bad: 0, undecided: 0 }, pairs: { ab: 0, regenerate: 0 } });

function add(into: FeedbackCounts, row: BucketRow): void {
  if (row.kind === 'thumbs' && (row.value === 'up' || row.value === 'down')) into[row.value] += row.n;
  else if (row.kind === 'comparison' && row.value in into.comparisons) into.comparisons[row.value as keyof FeedbackCounts['comparisons']] += row.n;
  else if (row.kind === 'pair' && (row.value === 'ab' || row.value === 'regenerate')) into.pairs[row.value] += row.n;
}

const publicUser = ({ passwordHash: _omit, ...u }: UserRecord): AccountUser => u;

export type AdminService = ReturnType<typeof createAdminService>;

export function createAdminService(ctx: ServiceContext, credentials: CredentialEvents) {
  const { db, repos, logger, now } = ctx;

  const withCounts = (u: UserRecord): AdminUser => ({ ...publicUser(u), counts: repos.stats.countsForUser(u.id) });
  const found = (userId: string): UserRecord => {
    const u = repos.users.findById(userId);
    if (!u) throw new NotFound('no such user');
    return u;
  };

  const updateTx = db.transaction((actorId: string, userId: string, update: UserUpdate): { user: UserRecord; nowDisabled: boolean; roleChanged: boolean } => {
    const user = found(userId);
    const isActiveAdmin = user.role === 'admin' && !user.disabled;
    const losesAdmin = isActiveAdmin && (update.role === 'user' || update.disabled === true);
    if (losesAdmin && repos.users.countActiveAdmins() <= 1) {
      const self = actorId === userId ? 'yourself' : 'them';
      throw new Conflict(`this is the last active admin: make another admin before you demote or disable ${self}`, 'last_admin');
    }
    if (update.role !== undefined) repos.users.setRole(userId, update.role);
    const nowDisabled = update.disabled === true && !user.disabled;
    if (update.disabled !== undefined) repos.users.setDisabled(userId, update.disabled);
    if (nowDisabled) repos.sessions.deleteForUser(userId);
    return { user: found(userId), nowDisabled, roleChanged: update.role !== undefined && update.role !== user.role };
  });

  return {
    listUsers(input: { limit: number; cursor?: string }): AdminUserPage {
      const after = input.cursor === undefined ? undefined : decodeCursor(input.cursor);
      const rows = repos.users.listPage(input.limit + 1, after);
      const items = rows.slice(0, input.limit);
      const last = items.at(-1);
      return { items: items.map(withCounts), nextCursor: rows.length > input.limit && last ? encodeCursor(last) : null, total: repos.users.count() };
    },

    getUser: (userId: string): AdminUser => withCounts(found(userId)),

    /** Changes the role and/or the disabled flag; refuses to leave the server without an active admin. */
    updateUser(actorId: string, userId: string, update: UserUpdate): AdminUser {
      const { user, nowDisabled, roleChanged } = updateTx(actorId, userId, update);
      logger.info({ actorId, userId, role: update.role, disabled: update.disabled }, 'user updated by an admin');
      if (roleChanged) credentials.roleChanged({ userId, role: user.role });
      if (nowDisabled) credentials.credentialsEnded({ userId, reason: 'account_disabled', scope: { kind: 'all' } });
      return withCounts(user);
    },

    /** Training jobs per status, for the metrics gauge. */
    trainingJobCounts: (): Array<{ status: string; n: number }> => repos.stats.trainingJobsByStatus(),

    /** Thumbs, comparisons and preference pairs of the last `days` UTC days (today included), optionally of one user. */
    feedbackStats(input: { days: number; userId?: string }): FeedbackStats {
      if (input.userId !== undefined) found(input.userId);
      const until = (Math.floor(now() / DAY_MS) + 1) * DAY_MS;
      const since = until - input.days * DAY_MS;
      const rows = repos.stats.buckets(since, until, input.userId);
      const totals = emptyCounts();
      const daily = new Map<string, { day: string } & FeedbackCounts>();
      for (let t = since; t < until; t += DAY_MS) {
        const day = new Date(t).toISOString().slice(0, 10);
        daily.set(day, { day, ...emptyCounts() });
      }
      const perUser = new Map<string, FeedbackCounts>();
      for (const row of rows) {
        add(totals, row);
        const d = daily.get(row.day);
        if (d) add(d, row);
        let u = perUser.get(row.userId);
        if (!u) perUser.set(row.userId, (u = emptyCounts()));
        add(u, row);
      }
      const users = [...perUser].map(([userId, counts]) => ({ userId, username: repos.users.findById(userId)?.username ?? '', ...counts }));
      users.sort((a, b) => a.username.localeCompare(b.username));
      return { since, until, totals, daily: [...daily.values()], users };
    },
  };
}
