// How a request carries its credential, read the same way by both edges (HTTP and the socket
// handshake): the session cookie the browser holds, and the `Authorization: Bearer <token>` header of
// scripts and OpenAI clients. It lives here, beside the services, because only main.ts may import the
// edges, and both need it.
import { Unauthorized } from '../errors.ts';

/** The httpOnly cookie that carries the session token (set at sign-in and registration). */
export const SESSION_COOKIE = 'attune_session';

/** The token of an Authorization header: undefined when there is none, 401 when it is not "Bearer <token>". */
export function bearerTokenOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new Unauthorized('the Authorization header must be "Bearer <token>"', 'invalid_authorization_header');
  return m[1];
}

/**
 * The session token in a Cookie header, undefined when absent or empty. Read as the `cookie` package
 * reads it (what cookie-parser gave the HTTP edge before): the first cookie of the name wins; its value
 * is trimmed, unquoted, and percent-decoded when it decodes (else kept as sent, and refused as an
 * invalid token rather than taken for no credential).
 */
export function sessionTokenOf(cookieHeader: string | undefined): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (value.includes('%')) {
      try {
        value = decodeURIComponent(value);
      } catch {
        // Not percent-encoding after all: kept as sent.
      }
    }
    return value === '' ? undefined : value;
  }
  return undefined;
}
