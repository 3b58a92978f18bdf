// Credentials on a request: `Authorization: Bearer <session token | atn_ API key>` (scripts, the
// OpenAI-compatible API) or the httpOnly attune_session cookie (the browser). The header wins.
import type { CookieOptions, Request, Response } from 'express';
import type { Config } from '../../config.ts';
import { Unauthorized } from '../../errors.ts';
import type { AuthService, Principal } from '../../services/auth.ts';
import { bearerTokenOf, SESSION_COOKIE, sessionTokenOf } from '../../services/credentials.ts';
import type { Authenticator } from '../route.ts';

export function createAuthenticator(auth: AuthService): Authenticator {
  return {
    principalOf(req: Request): Principal {
      const token = bearerTokenOf(req.get('authorization')) ?? sessionTokenOf(req.headers.cookie);
      if (!token) throw new Unauthorized('sign in first: send a session cookie or an Authorization: Bearer header', 'unauthorized');
      return auth.authenticate(token);
    },
  };
}

// SameSite=Lax keeps the cookie off cross-site POST/PATCH/DELETE requests, but not off same-site ones
// (another port or subdomain of this host): csrf.ts checks the Origin of every cookie-authenticated
// write. Cross-origin clients use bearer tokens instead.
const cookieOptions = (config: Config): CookieOptions => ({ httpOnly: true, sameSite: 'lax', secure: config.cookieSecure, path: '/' });

export function setSessionCookie(res: Response, config: Config, token: string, expiresAt: number): void {
  res.cookie(SESSION_COOKIE, token, { ...cookieOptions(config), expires: new Date(expiresAt) });
}

export function clearSessionCookie(res: Response, config: Config): void {
  res.clearCookie(SESSION_COOKIE, cookieOptions(config));
}
