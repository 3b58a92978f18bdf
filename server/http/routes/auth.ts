// Registration, sign-in and sign-out. Successful sign-ins return the session token and also set it
// as the httpOnly cookie, so browser and script clients use the same endpoints.
import { defineRoute, type Route } from '../route.ts';
import { clearSessionCookie, setSessionCookie } from '../middleware/auth.ts';
import { authResultSchema, credentialsBodySchema, toAuthResult } from '../schemas.ts';
import type { RouteDeps } from './deps.ts';

export function authRoutes({ config, services, authenticator, authLimiter }: RouteDeps): Route[] {
  return [
    defineRoute(
      {
        method: 'post',
        path: '/api/auth/register',
        operationId: 'register',
        summary: 'Create an account and sign in',
        tags: ['auth'],
        auth: 'none',
        body: credentialsBodySchema,
        status: 201,
        response: authResultSchema,
        responseDescription: 'Created and signed in',
        middleware: [authLimiter],
        rateLimited: true,
        handler: async ({ body, res }) => {
          const signedIn = await services.auth.register(body);
          setSessionCookie(res, config, signedIn.token, signedIn.expiresAt);
          return toAuthResult(signedIn);
        },
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'post',
        path: '/api/auth/login',
        operationId: 'login',
        summary: 'Sign in with username and password',
        tags: ['auth'],
        auth: 'none',
        body: credentialsBodySchema,
        response: authResultSchema,
        responseDescription: 'Signed in',
        middleware: [authLimiter],
        rateLimited: true,
        handler: async ({ body, res }) => {
          const signedIn = await services.auth.login(body);
          setSessionCookie(res, config, signedIn.token, signedIn.expiresAt);
          return toAuthResult(signedIn);
        },
      },
      authenticator,
    ),
    defineRoute(
      {
        method: 'post',
        path: '/api/auth/logout',
        operationId: 'logout',
        summary: 'End the current session (API keys stay valid)',
        tags: ['auth'],
        auth: 'user',
        handler: ({ principal, res }) => {
          services.auth.logout(principal);
          clearSessionCookie(res, config);
        },
      },
      authenticator,
    ),
  ];
}
