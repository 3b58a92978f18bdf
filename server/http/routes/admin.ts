// The admin API (admin role only; everyone else gets 403): users with their activity, disable/enable
// and promote/demote, feedback statistics, and the preference export as JSONL in TRL's format.
// Retraining and user-model versions are the personalization routes' (/api/admin/training/*).
import { defineRoute, type Route } from '../route.ts';
import {
  adminUserPageSchema,
  adminUserSchema,
  exportPreferencesQuerySchema,
  feedbackStatsQuerySchema,
  feedbackStatsSchema,
  listUsersQuerySchema,
  toAdminUser,
  toAdminUserPage,
  toFeedbackStats,
  updateUserBodySchema,
} from '../schemas-admin.ts';
import { idParamsSchema } from '../schemas.ts';
import type { RouteDeps } from './deps.ts';

export function adminRoutes({ services, authenticator }: RouteDeps): Route[] {
  const admin = services.admin;
  return [
    defineRoute(
      {
        method: 'get',
        path: '/api/admin/users',
        operationId: 'adminListUsers',
        summary: 'Users, oldest first, a page at a time, with counts of their conversations, messages, feedback, comparisons and preference pairs',
        tags: ['admin'],
        auth: 'admin',
        query: listUsersQuerySchema,
        response: adminUserPageSchema,
        handler: ({ query }) => toAdminUserPage(admin.listUsers(query)),
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'get',
        path: '/api/admin/users/:id',
        operationId: 'adminGetUser',
        summary: 'One user with their activity counts',
        tags: ['admin'],
        auth: 'admin',
        params: idParamsSchema,
        response: adminUserSchema,
        handler: ({ params }) => toAdminUser(admin.getUser(params.id)),
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'patch',
        path: '/api/admin/users/:id',
        operationId: 'adminUpdateUser',
        summary: 'Promote or demote (role), disable or enable (disabled); the last active admin cannot be demoted or disabled (409)',
        tags: ['admin'],
        auth: 'admin',
        params: idParamsSchema,
        body: updateUserBodySchema,
        response: adminUserSchema,
        handler: ({ principal, params, body }) => toAdminUser(admin.updateUser(principal.user.id, params.id, body)),
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'get',
        path: '/api/admin/stats/feedback',
        operationId: 'adminFeedbackStats',
        summary: 'Thumbs up/down, A/B choices and preference pairs: totals, per UTC day and per user',
        tags: ['admin'],
        auth: 'admin',
        query: feedbackStatsQuerySchema,
        response: feedbackStatsSchema,
        handler: ({ query }) => toFeedbackStats(admin.feedbackStats(query)),
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'get',
        path: '/api/admin/export/preferences',
        operationId: 'adminExportPreferences',
        summary:
          'Preference pairs as JSON Lines (application/x-ndjson, streamed) in TRL\'s conversational format: {"prompt": [messages], "chosen": [assistant message], "rejected": [assistant message], "user_id", "source", "created_at"}',
        tags: ['admin'],
        auth: 'admin',
        query: exportPreferencesQuerySchema,
        status: 200,
        responseDescription: 'One JSON object per line',
        handler: async ({ query, res }) => {
          const pages = services.exports.preferencePages({ userId: query.userId, source: query.source, since: query.since === undefined ? undefined : Date.parse(query.since) });
          // The first page is read before the status goes out, so an unknown user is still a 404.
          let next = await pages.next();
          res.status(200);
          res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
          res.setHeader('Content-Disposition', 'attachment; filename="preferences.jsonl"');
          res.flushHeaders();
          let closed = false;
          res.on('close', () => (closed = true));
          while (!next.done && !closed) {
            const chunk = next.value.map((line) => `${JSON.stringify(line)}\n`).join('');
            if (!res.write(chunk)) await new Promise<void>((resolve) => res.once('drain', resolve).once('close', resolve));
            next = await pages.next();
          }
          await pages.return(undefined);
          res.end();
        },
      },
      authenticator,
    ),
  ];
}
