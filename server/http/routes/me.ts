// The signed-in account: who am I, change my password, delete me, and my API keys.
import { defineRoute, type Route } from '../route.ts';
import { clearSessionCookie } from '../middleware/auth.ts';
import {
  apiKeyListSchema,
  changePasswordBodySchema,
  createApiKeyBodySchema,
  createdApiKeySchema,
  deleteAccountBodySchema,
  idParamsSchema,
  toApiKey,
  toUser,
  userSchema,
} from '../schemas.ts';
import type { RouteDeps } from './deps.ts';

export function meRoutes({ config, services, authenticator, authLimiter }: RouteDeps): Route[] {
  return [
    defineRoute(
      {
        method: 'get',
        path: '/api/me',
        operationId: 'getMe',
        summary: 'The signed-in user',
        tags: ['account'],
        auth: 'user',
        response: userSchema,
        handler: ({ principal }) => toUser(services.auth.getUser(principal.user.id)),
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'post',
        path: '/api/me/password',
        operationId: 'changePassword',
        summary: 'Change the password (needs the current one); every other session is signed out, API keys stay valid',
        tags: ['account'],
        auth: 'session',
        body: changePasswordBodySchema,
        responseDescription: 'Changed',
        // A password guess like a sign-in: the same per-IP budget (and the per-account throttle in the service).
        middleware: [authLimiter],
        rateLimited: true,
        handler: ({ principal, body }) => services.auth.changePassword(principal, body),
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'delete',
        path: '/api/me',
        operationId: 'deleteMe',
        summary: 'Delete the account and all of its data (needs the password)',
        tags: ['account'],
        auth: 'session',
        body: deleteAccountBodySchema,
        responseDescription: 'Deleted',
        handler: async ({ principal, body, res }) => {
          await services.auth.deleteAccount(principal.user.id, body.password);
          clearSessionCookie(res, config);
        },
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'post',
        path: '/api/me/api-keys',
        operationId: 'createApiKey',
        summary: 'Create an API key (the key is shown only in this response)',
        tags: ['account'],
        auth: 'session',
        body: createApiKeyBodySchema,
        status: 201,
        response: createdApiKeySchema,
        responseDescription: 'Created',
        handler: ({ principal, body }) => {
          const { key, info } = services.auth.createApiKey(principal.user.id, body.name);
          // Exactly the documented CreatedApiKey: a new key is never revoked, so revokedAt is not part of it.
          const { revokedAt: _revokedAt, ...view } = toApiKey(info);
          return { key, ...view };
        },
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'get',
        path: '/api/me/api-keys',
        operationId: 'listApiKeys',
        summary: 'List API keys, newest first (revoked ones included)',
        tags: ['account'],
        auth: 'session',
        response: apiKeyListSchema,
        handler: ({ principal }) => ({ items: services.auth.listApiKeys(principal.user.id).map(toApiKey) }),
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'delete',
        path: '/api/me/api-keys/:id',
        operationId: 'revokeApiKey',
        summary: 'Revoke an API key',
        tags: ['account'],
        auth: 'session',
        params: idParamsSchema,
        responseDescription: 'Revoked',
        handler: ({ principal, params }) => services.auth.revokeApiKey(principal.user.id, params.id),
      },
      authenticator,
    ),
  ];
}
