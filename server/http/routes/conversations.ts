// Conversations of the signed-in user. Someone else's conversation answers 404 on every route.
import { defineRoute, type Route } from '../route.ts';
import {
  conversationDetailSchema,
  conversationPageSchema,
  conversationSchema,
  createConversationBodySchema,
  idParamsSchema,
  listConversationsQuerySchema,
  renameConversationBodySchema,
  toConversation,
  toConversationDetail,
  toConversationPage,
} from '../schemas.ts';
import type { RouteDeps } from './deps.ts';

export function conversationRoutes({ services, authenticator }: RouteDeps): Route[] {
  const conversations = services.conversations;
  return [
    defineRoute(
      {
        method: 'get',
        path: '/api/conversations',
        operationId: 'listConversations',
        summary: 'List conversations, most recently active first, a page at a time',
        tags: ['conversations'],
        auth: 'user',
        query: listConversationsQuerySchema,
        response: conversationPageSchema,
        handler: ({ principal, query }) => toConversationPage(conversations.list(principal.user.id, query)),
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'post',
        path: '/api/conversations',
        operationId: 'createConversation',
        summary: 'Start a conversation',
        tags: ['conversations'],
        auth: 'user',
        body: createConversationBodySchema,
        status: 201,
        response: conversationSchema,
        responseDescription: 'Created',
        handler: ({ principal, body }) => toConversation(conversations.create(principal.user.id, body)),
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'get',
        path: '/api/conversations/:id',
        operationId: 'getConversation',
        summary: 'A conversation with all of its messages',
        tags: ['conversations'],
        auth: 'user',
        params: idParamsSchema,
        response: conversationDetailSchema,
        handler: ({ principal, params }) => toConversationDetail(conversations.get(principal.user.id, params.id)),
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'patch',
        path: '/api/conversations/:id',
        operationId: 'renameConversation',
        summary: 'Rename a conversation',
        tags: ['conversations'],
        auth: 'user',
        params: idParamsSchema,
        body: renameConversationBodySchema,
        response: conversationSchema,
        handler: ({ principal, params, body }) => toConversation(conversations.rename(principal.user.id, params.id, body.title)),
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'delete',
        path: '/api/conversations/:id',
        operationId: 'deleteConversation',
        summary: 'Delete a conversation and everything in it',
        tags: ['conversations'],
        auth: 'user',
        params: idParamsSchema,
        responseDescription: 'Deleted',
        handler: ({ principal, params }) => conversations.delete(principal.user.id, params.id),
      },
      authenticator,
    ),
  ];
}
