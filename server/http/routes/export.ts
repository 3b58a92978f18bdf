// A user's own data, in one JSON document (data portability): profile, API keys (never the keys
// themselves), every conversation with its messages, feedback, A/B comparisons and preference pairs.
import { defineRoute, type Route } from '../route.ts';
import { toUserDataExport, userDataExportSchema } from '../schemas-admin.ts';
import type { RouteDeps } from './deps.ts';

export function exportRoutes({ services, authenticator }: RouteDeps): Route[] {
  return [
    defineRoute(
      {
        method: 'get',
        path: '/api/me/export',
        operationId: 'exportMyData',
        summary: 'Everything stored about you, as one JSON document',
        tags: ['account'],
        auth: 'user',
        response: userDataExportSchema,
        handler: ({ principal, res }) => {
          res.setHeader('Content-Disposition', 'attachment; filename="attune-export.json"');
          return toUserDataExport(services.exports.userData(principal.user.id));
        },
      },
      authenticator,
    ),
  ];
}
