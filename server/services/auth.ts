// Accounts and credentials: registration, sign-in sessions, API keys, password changes, the first admin,
// account deletion.
//
// Passwords are hashed with argon2id (OWASP's parameters, the library default). Session tokens and API
// keys are 256-bit random strings stored only as SHA-256: unlike passwords they carry full entropy, so
// a fast hash is enough, and lookups stay a single indexed query per request.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import { z } from 'zod';
import type { ApiKeyRecord } from '../db/api-keys.ts';
import type { Role, UserRecord } from '../db/users.ts';

export { ROLES, type Role } from '../db/users.ts';
import { Conflict, Forbidden, NotFound, RateLimited, Unauthorized, ValidationError } from '../errors.ts';
import type { ServiceContext } from './context.ts';
import { ConfigError } from '../config.ts';
import { createLoginThrottle } from './login-throttle.ts';
import { assertNewPasswordAcceptable, judgeNewPassword } from './password-policy.ts';
import type { CredentialEvents } from './credential-events.ts';

export const usernameSchema = z
  .string()
  .trim()
  .min(3, 'username must be 3 to 32 characters')
  .max(32, 'username must be 3 to 32 characters')
  .regex(/^[A-Za-z0-9_.-]+$/, 'username may contain only letters, digits, ".", "_" and "-"');

// The upper bound keeps a request from making argon2 hash megabytes.
export const passwordSchema = z.string().min(8, 'password must be at least 8 characters').max(256, 'password must be at most 256 characters');

export const credentialsSchema = z.strictObject({ username: usernameSchema, password: passwordSchema });
export type Credentials = z.infer<typeof credentialsSchema>;

export const API_KEY_PREFIX = 'atn_';
/** Characters of a key kept for display ('atn_' and 8 more), enough to tell keys apart. */
const DISPLAY_PREFIX_CHARS = API_KEY_PREFIX.length + 8;
export const MAX_ACTIVE_API_KEYS = 20;
export const ADMIN_USERNAME = 'admin';

/** A user as the rest of the server sees them: never the password hash. */
export type AccountUser = Omit<UserRecord, 'passwordHash'>;

export type Principal =
  | { user: AccountUser; via: 'session'; sessionTokenHash: string }
  | { user: AccountUser; via: 'api_key'; apiKeyId: string };

export interface SignedIn {
  token: string;
  expiresAt: number;
  user: AccountUser;
}

export type ApiKeyInfo = Omit<ApiKeyRecord, 'keyHash' | 'userId'>;

export type AdminBootstrap = { created: false } | { created: true; username: string; generatedPassword: string | null };

const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
const randomToken = (): string => randomBytes(32).toString('base64url');
const publicUser = ({ passwordHash: _omit, ...u }: UserRecord): AccountUser => u;
const apiKeyInfo = ({ keyHash: _h, userId: _u, ...k }: ApiKeyRecord): ApiKeyInfo => k;
const isUniqueViolation = (e: unknown): boolean => e instanceof Error && 'code' in e && (e as { code: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE';

export type AuthService = ReturnType<typeof createAuthService>;

export function createAuthService(ctx: ServiceContext, credentials: CredentialEvents) {
  const { db, repos, config, logger, now } = ctx;
  const ttlMs = Math.round(config.sessionTtlHours * 3600_000);
  // Unknown usernames still cost one argon2 verification, so response time does not reveal accounts.
  let dummyHash: Promise<string> | null = null;
  const dummy = () => (dummyHash ??= argon2Hash(randomToken()));
  const loginThrottle = createLoginThrottle({ now });
  const beginPasswordAttempt = (username: string) => {
    const attempt = loginThrottle.begin(username);
    if (attempt.allowed) return attempt;
    const retryAfterSeconds = Math.ceil(attempt.retryAfterMs / 1000);
    throw new RateLimited(`too many wrong passwords for this username: try again in ${retryAfterSeconds} s`, { retryAfterSeconds }, 'login_throttled');
  };

  const openSession = (user: UserRecord): SignedIn => {
    const token = randomToken();
    const t = now();
    repos.sessions.insert({ tokenHash: sha256(token), userId: user.id, createdAt: t, expiresAt: t + ttlMs });
    return { token, expiresAt: t + ttlMs, user: publicUser(user) };
  };

  const createUser = (username: string, passwordHash: string, role: Role): UserRecord => {
    const user: UserRecord = { id: randomUUID(), username, passwordHash, role, disabled: false, createdAt: now() };
    try {
      repos.users.insert(user);
    } catch (e) {
      if (isUniqueViolation(e)) throw new Conflict(`the username "${username}" is taken`, 'username_taken');
      throw e;
    }
    return user;
  };

  const registerTx = db.transaction((username: string, passwordHash: string) => openSession(createUser(username, passwordHash, 'user')));
  const deleteUserTx = db.transaction((userId: string) => repos.users.deleteById(userId));
  // The new hash and the end of the other sessions commit together: no moment where the new password
  // is in force while a session opened by whoever knew the old one still works.
  const changePasswordTx = db.transaction((userId: string, checkedHash: string, newHash: string, keepSessionTokenHash: string): number => {
    if (!repos.users.replacePasswordHash(userId, checkedHash, newHash)) {
      if (!repos.users.findById(userId)) throw new NotFound('no such user');
      // Another change committed while this one was hashing: the password this request proved is no
      // longer the account's, so it must not overwrite the newer one.
      throw new Conflict('the password was changed by another request meanwhile: sign in again with the new password', 'password_changed_meanwhile');
    }
    return repos.sessions.deleteOthersForUser(userId, keepSessionTokenHash);
  });

  async function checkPassword(user: UserRecord, password: string): Promise<boolean> {
    return argon2Verify(user.passwordHash, password);
  }

  return {
    /** Creates a user account and signs it in. */
    async register(input: Credentials): Promise<SignedIn> {
      if (repos.users.findByUsername(input.username)) throw new Conflict(`the username "${input.username}" is taken`, 'username_taken');
      await assertNewPasswordAcceptable(input.password, [input.username]);
      const passwordHash = await argon2Hash(input.password);
      return registerTx(input.username, passwordHash);
    },

    async login(input: Credentials): Promise<SignedIn> {
      const attempt = beginPasswordAttempt(input.username);
      const user = repos.users.findByUsername(input.username);
      if (!user) {
        await argon2Verify(await dummy(), input.password);
        throw new Unauthorized('wrong username or password', 'invalid_credentials');
      }
      if (!(await checkPassword(user, input.password))) throw new Unauthorized('wrong username or password', 'invalid_credentials');
      attempt.settle(true);
      if (user.disabled) throw new Forbidden('this account is disabled', 'account_disabled');
      repos.sessions.deleteExpired(now());
      return openSession(user);
    },

    /** Ends the session the request was made with; API keys are revoked separately. */
    logout(principal: Principal): void {
      if (principal.via !== 'session') return;
      repos.sessions.delete(principal.sessionTokenHash);
      credentials.credentialsEnded({ userId: principal.user.id, reason: 'logout', scope: { kind: 'session', sessionTokenHash: principal.sessionTokenHash } });
    },

    /** Resolves a bearer credential (session token or `atn_` API key) to its user. */
    authenticate(token: string): Principal {
      let principal: Principal | undefined;
      if (token.startsWith(API_KEY_PREFIX)) {
        const key = repos.apiKeys.findActiveByHash(sha256(token));
        const user = key && repos.users.findById(key.userId);
        if (key && user) principal = { user: publicUser(user), via: 'api_key', apiKeyId: key.id };
      } else {
        const tokenHash = sha256(token);
        const session = repos.sessions.findLive(tokenHash, now());
        const user = session && repos.users.findById(session.userId);
        if (user) principal = { user: publicUser(user), via: 'session', sessionTokenHash: tokenHash };
      }
      if (!principal) throw new Unauthorized('the session or API key is invalid, expired or revoked', 'invalid_token');
      if (principal.user.disabled) throw new Forbidden('this account is disabled', 'account_disabled');
      return principal;
    },

    /**
     * The principal again, from the database. A socket authenticates once, at its handshake, and its
     * credential may have ended since (expired, revoked, signed out, account disabled or deleted):
     * three primary-key lookups, cheap enough to repeat at every event.
     */
    revalidate(principal: Principal): Principal {
      const user = repos.users.findById(principal.user.id);
      const live =
        user !== undefined &&
        (principal.via === 'session'
          ? repos.sessions.findLive(principal.sessionTokenHash, now())?.userId === user.id
          : repos.apiKeys.findForUser(principal.apiKeyId, user.id)?.revokedAt === null);
      if (!user || !live) throw new Unauthorized('the session or API key is invalid, expired or revoked', 'invalid_token');
      if (user.disabled) throw new Forbidden('this account is disabled', 'account_disabled');
      return principal.via === 'session'
        ? { user: publicUser(user), via: 'session', sessionTokenHash: principal.sessionTokenHash }
        : { user: publicUser(user), via: 'api_key', apiKeyId: principal.apiKeyId };
    },

    getUser(userId: string): AccountUser {
      const user = repos.users.findById(userId);
      if (!user) throw new NotFound('no such user');
      return publicUser(user);
    },

    /** A new API key; the full key is returned only here and never stored. */
    createApiKey(userId: string, name: string): { key: string; info: ApiKeyInfo } {
      if (repos.apiKeys.countActiveForUser(userId) >= MAX_ACTIVE_API_KEYS) {
        throw new Conflict(`at most ${MAX_ACTIVE_API_KEYS} API keys may be active: revoke one first`, 'too_many_api_keys');
      }
      const key = API_KEY_PREFIX + randomToken();
      const record: ApiKeyRecord = { id: randomUUID(), userId, keyHash: sha256(key), prefix: key.slice(0, DISPLAY_PREFIX_CHARS), name, createdAt: now(), revokedAt: null };
      repos.apiKeys.insert(record);
      return { key, info: apiKeyInfo(record) };
    },

    listApiKeys: (userId: string): ApiKeyInfo[] => repos.apiKeys.listForUser(userId).map(apiKeyInfo),

    /** Revokes one of the user's keys; revoking twice is fine, someone else's key is not found. */
    revokeApiKey(userId: string, id: string): void {
      if (!repos.apiKeys.findForUser(id, userId)) throw new NotFound('no such API key');
      if (repos.apiKeys.revoke(id, userId, now())) credentials.credentialsEnded({ userId, reason: 'api_key_revoked', scope: { kind: 'api_key', apiKeyId: id } });
    },

    /**
     * Replaces the password (the current one proves it is the owner, not just a holder of the session)
     * and signs out every other session: a password is changed because it may be known to someone
     * else, and their sessions must not outlive it. The session that made the change stays.
     *
     * API keys stay valid. They are credentials of their own, made one by one for scripts and
     * integrations, each listed with its name and creation time under /api/me/api-keys; revoking them
     * all on every routine rotation would break those integrations, and a user who suspects that their
     * account was taken over reviews that list and revokes what they do not recognise.
     */
    async changePassword(principal: Principal, { currentPassword, newPassword }: { currentPassword: string; newPassword: string }): Promise<void> {
      // The session that changes the password is the one that stays; an API key has none to keep.
      if (principal.via !== 'session') throw new Forbidden('this needs a signed-in session: API keys cannot change the password', 'session_required');
      const { sessionTokenHash } = principal;
      const userId = principal.user.id;
      const user = repos.users.findById(userId);
      if (!user) throw new NotFound('no such user');
      // A password oracle for whoever holds a stolen session, like the deletion confirmation: same budget.
      const attempt = beginPasswordAttempt(user.username);
      if (!(await checkPassword(user, currentPassword))) throw new Forbidden('the current password is wrong', 'wrong_password');
      attempt.settle(true);
      const verdict = await judgeNewPassword(newPassword, [user.username]);
      if (!verdict.ok) {
        throw new ValidationError(`invalid request body: newPassword: ${verdict.message}`, { rule: verdict.rule, issues: [{ in: 'body', path: 'newPassword', message: verdict.message }] }, 'weak_password');
      }
      const newHash = await argon2Hash(newPassword);
      const endedSessions = changePasswordTx(userId, user.passwordHash, newHash, sessionTokenHash);
      logger.info({ userId, endedSessions }, 'password changed');
      credentials.credentialsEnded({ userId, reason: 'password_changed', scope: { kind: 'sessions', exceptSessionTokenHash: sessionTokenHash } });
    },

    /** Deletes the account and, by cascade, every row the user owns. Needs the password again. */
    async deleteAccount(userId: string, password: string): Promise<void> {
      const user = repos.users.findById(userId);
      if (!user) throw new NotFound('no such user');
      // The confirmation is a password oracle too (for whoever holds a stolen session): same budget.
      const attempt = beginPasswordAttempt(user.username);
      if (!(await checkPassword(user, password))) throw new Forbidden('the password is wrong', 'wrong_password');
      attempt.settle(true);
      if (user.role === 'admin' && !user.disabled && repos.users.countActiveAdmins() <= 1) {
        throw new Conflict('the last admin cannot delete their account: make another admin first', 'last_admin');
      }
      deleteUserTx(userId);
      logger.info({ userId }, 'account deleted');
      credentials.credentialsEnded({ userId, reason: 'account_deleted', scope: { kind: 'all' } });
    },

    /**
     * At first start (no admin yet) creates the admin account 'admin' with ATTUNE_ADMIN_PASSWORD, or
     * with a random password that the caller must show once.
     */
    async bootstrapAdmin(): Promise<AdminBootstrap> {
      if (repos.users.countActiveAdmins() > 0) return { created: false };
      if (repos.users.findByUsername(ADMIN_USERNAME)) {
        throw new Conflict(`there is no active admin, but the username "${ADMIN_USERNAME}" belongs to a regular or disabled account`, 'admin_bootstrap');
      }
      if (config.adminPassword) {
        // Refused at start-up rather than letting a guessable admin password go live.
        const v = await judgeNewPassword(config.adminPassword, [ADMIN_USERNAME]);
        if (!v.ok) {
          throw new ConfigError(`invalid configuration: ATTUNE_ADMIN_PASSWORD is refused: ${v.message}; or unset it to have a random one generated and logged once`, [
            { setting: 'ATTUNE_ADMIN_PASSWORD', message: v.message! },
          ]);
        }
      }
      const generatedPassword = config.adminPassword ? null : randomBytes(18).toString('base64url');
      const passwordHash = await argon2Hash(config.adminPassword ?? generatedPassword!);
      createUser(ADMIN_USERNAME, passwordHash, 'admin');
      return { created: true, username: ADMIN_USERNAME, generatedPassword };
    },
  };
}
