// Thumbs up/down on answers of the signed-in user's conversations. Someone else's message answers 404.
import { defineRoute, type Route } from '../route.ts';
import { feedbackBodySchema, feedbackSchema, idParamsSchema, toFeedback } from '../schemas.ts';
import type { RouteDeps } from './deps.ts';

export function feedbackRoutes({ services, authenticator }: RouteDeps): Route[] {
  const feedback = services.feedback;
  return [
    defineRoute(
      {
        method: 'put',
        path: '/api/messages/:id/feedback',
        operationId: 'setFeedback',
        summary: 'Vote on an answer (replaces an earlier vote); up and down votes on sibling answers become preference pairs',
        tags: ['feedback'],
        auth: 'user',
        params: idParamsSchema,
        body: feedbackBodySchema,
        response: feedbackSchema,
        handler: ({ principal, params, body }) => toFeedback(feedback.vote(principal.user.id, params.id, body)),
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'get',
        path: '/api/messages/:id/feedback',
        operationId: 'getFeedback',
        summary: 'Your vote on an answer',
        tags: ['feedback'],
        auth: 'user',
        params: idParamsSchema,
        response: feedbackSchema,
        handler: ({ principal, params }) => toFeedback(feedback.get(principal.user.id, params.id)),
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'delete',
        path: '/api/messages/:id/feedback',
        operationId: 'withdrawFeedback',
        summary: 'Withdraw your vote on an answer, with the preference pairs it made',
        tags: ['feedback'],
        auth: 'user',
        params: idParamsSchema,
        responseDescription: 'Withdrawn',
        handler: ({ principal, params }) => feedback.withdraw(principal.user.id, params.id),
      },
      authenticator,
    ),
  ];
}
