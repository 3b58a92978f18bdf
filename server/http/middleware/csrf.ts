// Cross-site request forgery: the browser attaches the session cookie to a form another page submits.
// SameSite=Lax stops cross-site posts but not same-site ones (another port or subdomain of this host
// is "same site"), so every request that changes state and could be authenticated by the cookie must
// say where it comes from: its Origin (or, from an old browser without one, its Referer) must be this
// server's own origin. Browsers send Origin on every POST/PUT/PATCH/DELETE, fetch() same-origin
// included, and a page cannot forge it.
//
// - Requests with an Authorization header are never authenticated by the cookie (the header wins, see
//   auth.ts), and a foreign page cannot make the browser add one: they pass. So do GET/HEAD/OPTIONS.
// - With the session cookie: Origin/Referer must be ours, and a request with neither is refused.
// - Without the cookie (sign-in, registration, scripts): a present Origin/Referer must be ours or one
//   of ATTUNE_CORS_ORIGIN; absent, the request passes (curl, the CLI, OpenAI clients). This stops
//   login CSRF, a foreign form signing the victim's browser into the attacker's account.
//
// "Ours" is the scheme, host and port the request reached us with: req.protocol and req.host, which
// read X-Forwarded-Proto/-Host only when `trust proxy` (ATTUNE_TRUST_PROXY) trusts the peer; plus
// ATTUNE_PUBLIC_ORIGIN when set, for proxies that rewrite Host.
import type { Request, RequestHandler } from 'express';
import { Forbidden } from '../../errors.ts';
import { sessionTokenOf } from '../../services/credentials.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface OriginCheckOptions {
  /** ATTUNE_PUBLIC_ORIGIN: accepted besides the origin derived from the request. */
  publicOrigin?: string;
  /** ATTUNE_CORS_ORIGIN: also accepted for requests without the session cookie. */
  corsOrigin: '*' | string[] | null;
}

/** The origin of a URL (scheme://host[:port], default port dropped, host lower-cased), or null. */
function originOf(url: string): string | null {
  try {
    const o = new URL(url).origin;
    // Opaque origins (data:, file:, a sandboxed frame's "null") serialize as "null": never ours.
    return o === 'null' ? null : o;
  } catch {
    return null;
  }
}

/** The origin this request was addressed to, as the browser saw it. */
export function requestOrigin(req: Request): string | null {
  const host = req.host;
  return host ? originOf(`${req.protocol}://${host}`) : null;
}

export function createOriginCheck({ publicOrigin, corsOrigin }: OriginCheckOptions): RequestHandler {
  const configured = publicOrigin ? originOf(publicOrigin) : null;
  const cors = corsOrigin === '*' || corsOrigin === null ? corsOrigin : new Set(corsOrigin.map((o) => originOf(o) ?? o));
  return (req, _res, next) => {
    if (SAFE_METHODS.has(req.method) || req.get('authorization') !== undefined) return next();
    const withCookie = sessionTokenOf(req.headers.cookie) !== undefined;
    const originHeader = req.get('origin');
    const refererHeader = originHeader === undefined ? req.get('referer') : undefined;
    const claimed = originHeader ?? refererHeader;
    if (claimed === undefined && !withCookie) return next();

    const own = requestOrigin(req);
    const source = claimed === undefined ? null : originOf(claimed);
    const ours = source !== null && (source === own || source === configured);
    const trustedCrossOrigin = !withCookie && source !== null && (cors === '*' || (cors instanceof Set && cors.has(source)));
    if (ours || trustedCrossOrigin) return next();

    const expected = configured ?? own;
    const why = claimed === undefined
      ? 'it carries the session cookie but neither an Origin nor a Referer header'
      : `its ${originHeader !== undefined ? 'Origin' : 'Referer'} ${JSON.stringify(claimed.slice(0, 200))} is not this server's origin ${JSON.stringify(expected)}`;
    req.log.warn({ origin: originHeader?.slice(0, 200), referer: refererHeader?.slice(0, 200), expected, withCookie }, 'refused a cross-origin state-changing request');
    next(new Forbidden(
      `refused as a possible cross-site request forgery: ${why}. Browsers send Origin themselves; scripts should authenticate with an Authorization: Bearer header. Behind a reverse proxy, set ATTUNE_PUBLIC_ORIGIN (or ATTUNE_TRUST_PROXY with X-Forwarded-Proto/-Host).`,
      'csrf_origin_mismatch',
      { origin: source, expected },
    ));
  };
}
