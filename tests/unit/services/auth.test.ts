// The auth service called directly, as the HTTP routes and the socket handshake call it: registration
// under the password policy, sign-in with its per-account throttle (on an injected clock), sessions
// and their expiry, API keys, password changes, account deletion and the first admin, and the
// credential events the socket layer listens to.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../server/config.ts';
import { AppError } from '../../../server/errors.ts';
import type { CredentialsEnded } from '../../../server/services/credential-events.ts';
import { ADMIN_USERNAME, API_KEY_PREFIX, MAX_ACTIVE_API_KEYS, type Principal } from '../../../server/services/auth.ts';
import { BASE_DELAY_MS, FREE_FAILURES } from '../../../server/services/login-throttle.ts';
import { addUser, createServiceHarness, type ServiceHarness } from '../../helpers/services.ts';

const PASSWORD = 'correct horse battery';

/** The AppError a promise rejects with (fails the test if it resolves or throws something else). */
async function rejection(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof AppError, `expected an AppError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}
const NEW_PASSWORD = 'tangerine ladder quietly';

describe('the auth service', () => {
  let h: ServiceHarness;
  let ended: CredentialsEnded[];
  const auth = () => h.services.auth;
  const count = (table: string, where = '1'): number => h.db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${table} WHERE ${where}`).get()!.n;

  beforeEach(() => {
    h = createServiceHarness();
    ended = [];
    h.services.credentials.onCredentialsEnded((e) => ended.push(e));
  });
  afterEach(() => h.close());

  describe('registration', () => {
    it('creates a user, signs them in for the session lifetime, and never shows the hash', async () => {
      const signed = await auth().register({ username: 'alice', password: PASSWORD });
      assert.equal(signed.user.username, 'alice');
      assert.equal(signed.user.role, 'user');
      assert.equal(signed.user.disabled, false);
      assert.equal('passwordHash' in signed.user, false);
      assert.equal(signed.expiresAt, h.clock.t + h.config.sessionTtlHours * 3600_000);
      const principal = auth().authenticate(signed.token);
      assert.equal(principal.via, 'session');
      assert.equal(principal.user.id, signed.user.id);
      assert.equal('passwordHash' in principal.user, false);
      // Only the SHA-256 of the token is stored.
      assert.equal(count('sessions', `user_id = '${signed.user.id}'`), 1);
      assert.equal(count('sessions', `token_hash = '${signed.token}'`), 0);
      assert.deepEqual(auth().getUser(signed.user.id), signed.user);
    });

    it('refuses a taken username in any case, with 409 username_taken', async () => {
      await auth().register({ username: 'alice', password: PASSWORD });
      await assert.rejects(auth().register({ username: 'ALICE', password: NEW_PASSWORD }), { name: 'Conflict', status: 409, code: 'username_taken' });
      assert.equal(count('users'), 1);
    });

    it('refuses weak passwords with 400 weak_password naming the rule, and writes nothing', async () => {
      const cases: Array<[string, string]> = [
        ['password123', 'common_password'],
        ['aaaaaaaaaaaa', 'guessable'],
        ['12345678abcdefgh', 'guessable'],
        ['alice_wonder1', 'guessable'], // built from the username
        ['attuneattune', 'guessable'], // built from the service's name
      ];
      for (const [password, rule] of cases) {
        const e = await rejection(auth().register({ username: 'alice_wonder', password }));
        assert.deepEqual([e.name, e.status, e.code, e.details.rule], ['ValidationError', 400, 'weak_password', rule], password);
      }
      const e = await rejection(auth().register({ username: 'alice_wonder', password: 'alice_wonder1' }));
      assert.match(e.message, /username/);
      assert.deepEqual(e.details.issues, [{ in: 'body', path: 'password', message: e.message.replace('invalid request body: password: ', '') }]);
      assert.equal(count('users'), 0);
      assert.equal(count('sessions'), 0);
    });

    it('getUser of an unknown id is a 404', () => {
      assert.throws(() => auth().getUser('no-such-user'), { name: 'NotFound', status: 404 });
    });
  });

  describe('sign-in and sessions', () => {
    let aliceId: string;
    beforeEach(async () => {
      aliceId = (await auth().register({ username: 'alice', password: PASSWORD })).user.id;
    });

    it('opens a new session for the right password, refuses a wrong one or an unknown user alike', async () => {
      const signed = await auth().login({ username: 'alice', password: PASSWORD });
      assert.equal(signed.user.id, aliceId);
      assert.equal(auth().authenticate(signed.token).user.id, aliceId);
      assert.equal(count('sessions', `user_id = '${aliceId}'`), 2);
      await assert.rejects(auth().login({ username: 'alice', password: 'wrong horse battery' }), { name: 'Unauthorized', status: 401, code: 'invalid_credentials' });
      await assert.rejects(auth().login({ username: 'nobody', password: PASSWORD }), { name: 'Unauthorized', status: 401, code: 'invalid_credentials' });
    });

    it('a disabled account is told so only after the right password', async () => {
      h.repos.users.setDisabled(aliceId, true);
      await assert.rejects(auth().login({ username: 'alice', password: 'wrong horse battery' }), { status: 401, code: 'invalid_credentials' });
      await assert.rejects(auth().login({ username: 'alice', password: PASSWORD }), { name: 'Forbidden', status: 403, code: 'account_disabled' });
    });

    it('a session ends when its lifetime is up, and sign-in sweeps the expired ones', async () => {
      const signed = await auth().login({ username: 'alice', password: PASSWORD });
      h.clock.t = signed.expiresAt - 1;
      assert.equal(auth().authenticate(signed.token).user.id, aliceId);
      h.clock.t = signed.expiresAt;
      assert.throws(() => auth().authenticate(signed.token), { name: 'Unauthorized', status: 401, code: 'invalid_token' });
      assert.equal(count('sessions', `user_id = '${aliceId}'`), 2, 'expired rows stay until the next sign-in');
      await auth().login({ username: 'alice', password: PASSWORD });
      assert.equal(count('sessions', `user_id = '${aliceId}'`), 1, 'the two expired sessions were swept');
    });

    it('refuses unknown tokens and unknown API keys', () => {
      assert.throws(() => auth().authenticate('not-a-token'), { status: 401, code: 'invalid_token' });
      assert.throws(() => auth().authenticate(`${API_KEY_PREFIX}not-a-key`), { status: 401, code: 'invalid_token' });
    });

    it('logout ends only that session and says so; an API key principal has none to end', async () => {
      const a = await auth().login({ username: 'alice', password: PASSWORD });
      const b = await auth().login({ username: 'alice', password: PASSWORD });
      const principal = auth().authenticate(a.token);
      auth().logout(principal);
      assert.throws(() => auth().authenticate(a.token), { status: 401, code: 'invalid_token' });
      assert.equal(auth().authenticate(b.token).user.id, aliceId);
      assert.equal(ended.length, 1);
      assert.equal(ended[0]!.reason, 'logout');
      assert.deepEqual(ended[0]!.scope, { kind: 'session', sessionTokenHash: principal.via === 'session' ? principal.sessionTokenHash : '' });

      const { key } = auth().createApiKey(aliceId, 'script');
      auth().logout(auth().authenticate(key));
      assert.equal(auth().authenticate(key).via, 'api_key');
      assert.equal(ended.length, 1);
    });

    it('revalidate follows the database: a deleted session is 401, a disabled account 403, a role change shows', async () => {
      const signed = await auth().login({ username: 'alice', password: PASSWORD });
      const principal = auth().authenticate(signed.token);
      h.repos.users.setRole(aliceId, 'admin');
      assert.equal(auth().revalidate(principal).user.role, 'admin');
      h.repos.users.setDisabled(aliceId, true);
      assert.throws(() => auth().revalidate(principal), { status: 403, code: 'account_disabled' });
      assert.throws(() => auth().authenticate(signed.token), { status: 403, code: 'account_disabled' });
      h.repos.users.setDisabled(aliceId, false);
      h.clock.t = signed.expiresAt;
      assert.throws(() => auth().revalidate(principal), { status: 401, code: 'invalid_token' });
    });
  });

  describe('the sign-in throttle', () => {
    beforeEach(async () => {
      await auth().register({ username: 'alice', password: PASSWORD });
    });

    const wrong = (username = 'alice') => auth().login({ username, password: 'wrong horse battery' });

    it(`allows ${FREE_FAILURES} wrong passwords, then makes the next wait, doubling, and a right password resets it`, async () => {
      for (let i = 0; i < FREE_FAILURES; i++) await assert.rejects(wrong(), { status: 401, code: 'invalid_credentials' });
      // Throttled: even the right password is not checked.
      await assert.rejects(auth().login({ username: 'alice', password: PASSWORD }), { name: 'RateLimited', status: 429, code: 'login_throttled', details: { retryAfterSeconds: 1 } });
      // The username is throttled whatever its case, and other accounts are not.
      await assert.rejects(wrong('ALICE'), { status: 429, code: 'login_throttled' });
      await auth().register({ username: 'bob', password: PASSWORD });
      await auth().login({ username: 'bob', password: PASSWORD });

      h.clock.t += BASE_DELAY_MS;
      await assert.rejects(wrong(), { status: 401, code: 'invalid_credentials' });
      h.clock.t += 2 * BASE_DELAY_MS - 1;
      await assert.rejects(auth().login({ username: 'alice', password: PASSWORD }), { status: 429, details: { retryAfterSeconds: 1 } });
      h.clock.t += 1;
      await auth().login({ username: 'alice', password: PASSWORD });
      // Reset: the free failures are there again.
      for (let i = 0; i < FREE_FAILURES; i++) await assert.rejects(wrong(), { status: 401 });
      await assert.rejects(wrong(), { status: 429 });
    });

    it('throttles an unknown username exactly like a real one', async () => {
      for (let i = 0; i < FREE_FAILURES; i++) await assert.rejects(wrong('nobody'), { status: 401, code: 'invalid_credentials' });
      await assert.rejects(wrong('nobody'), { status: 429, code: 'login_throttled', details: { retryAfterSeconds: 1 } });
    });

    it('counts wrong confirmations of a password change and an account deletion against the same budget', async () => {
      const signed = await auth().login({ username: 'alice', password: PASSWORD });
      const principal = auth().authenticate(signed.token);
      for (let i = 0; i < 3; i++) await assert.rejects(auth().changePassword(principal, { currentPassword: 'wrong horse battery', newPassword: NEW_PASSWORD }), { status: 403, code: 'wrong_password' });
      for (let i = 0; i < 2; i++) await assert.rejects(auth().deleteAccount(signed.user.id, 'wrong horse battery'), { status: 403, code: 'wrong_password' });
      await assert.rejects(auth().login({ username: 'alice', password: PASSWORD }), { status: 429, code: 'login_throttled' });
      await assert.rejects(auth().deleteAccount(signed.user.id, PASSWORD), { status: 429, code: 'login_throttled' });
      assert.equal(auth().getUser(signed.user.id).username, 'alice');
    });
  });

  describe('API keys', () => {
    let aliceId: string;
    let bobId: string;
    beforeEach(() => {
      aliceId = addUser(h, 'alice');
      bobId = addUser(h, 'bob');
    });

    it('returns the key once, stores only its hash, and authenticates with it', () => {
      const { key, info } = auth().createApiKey(aliceId, 'my script');
      assert.ok(key.startsWith(API_KEY_PREFIX));
      assert.equal(info.prefix, key.slice(0, API_KEY_PREFIX.length + 8));
      assert.equal(info.name, 'my script');
      assert.equal(info.createdAt, h.clock.t);
      assert.equal(info.revokedAt, null);
      assert.deepEqual(Object.keys(info).sort(), ['createdAt', 'id', 'name', 'prefix', 'revokedAt']);
      assert.equal(count('api_keys', `key_hash = '${key}'`), 0);
      const principal = auth().authenticate(key);
      assert.deepEqual({ via: principal.via, userId: principal.user.id, keyId: principal.via === 'api_key' && principal.apiKeyId }, { via: 'api_key', userId: aliceId, keyId: info.id });
      assert.deepEqual(auth().listApiKeys(aliceId), [info]);
      assert.deepEqual(auth().listApiKeys(bobId), []);
    });

    it('revokes a key at once (twice is fine, one event); someone else\'s key is not found', () => {
      const { key, info } = auth().createApiKey(aliceId, 'k');
      const principal = auth().authenticate(key);
      assert.throws(() => auth().revokeApiKey(bobId, info.id), { name: 'NotFound', status: 404 });
      assert.equal(auth().authenticate(key).user.id, aliceId);
      h.clock.t += 5;
      auth().revokeApiKey(aliceId, info.id);
      auth().revokeApiKey(aliceId, info.id);
      assert.throws(() => auth().authenticate(key), { status: 401, code: 'invalid_token' });
      assert.throws(() => auth().revalidate(principal), { status: 401, code: 'invalid_token' });
      assert.equal(auth().listApiKeys(aliceId)[0]!.revokedAt, h.clock.t);
      assert.deepEqual(ended, [{ userId: aliceId, reason: 'api_key_revoked', scope: { kind: 'api_key', apiKeyId: info.id } }]);
      assert.throws(() => auth().revokeApiKey(aliceId, 'no-such-key'), { status: 404 });
    });

    it(`allows at most ${MAX_ACTIVE_API_KEYS} active keys: 409 too_many_api_keys, and a revoked one frees a place`, () => {
      const ids = Array.from({ length: MAX_ACTIVE_API_KEYS }, (_, i) => auth().createApiKey(aliceId, `k${i}`).info.id);
      assert.throws(() => auth().createApiKey(aliceId, 'one more'), { name: 'Conflict', status: 409, code: 'too_many_api_keys' });
      auth().createApiKey(bobId, 'bob has his own budget');
      auth().revokeApiKey(aliceId, ids[0]!);
      auth().createApiKey(aliceId, 'one more');
      assert.equal(auth().listApiKeys(aliceId).length, MAX_ACTIVE_API_KEYS + 1);
    });
  });

  describe('password change', () => {
    it('replaces the password, ends every other session but keeps this one and the API keys', async () => {
      const first = await auth().register({ username: 'alice', password: PASSWORD });
      const other = await auth().login({ username: 'alice', password: PASSWORD });
      const { key } = auth().createApiKey(first.user.id, 'k');
      const principal = auth().authenticate(first.token);
      await auth().changePassword(principal, { currentPassword: PASSWORD, newPassword: NEW_PASSWORD });
      assert.equal(auth().authenticate(first.token).user.id, first.user.id);
      assert.throws(() => auth().authenticate(other.token), { status: 401, code: 'invalid_token' });
      assert.equal(auth().authenticate(key).via, 'api_key');
      assert.deepEqual(ended, [{ userId: first.user.id, reason: 'password_changed', scope: { kind: 'sessions', exceptSessionTokenHash: (principal as Extract<Principal, { via: 'session' }>).sessionTokenHash } }]);
      await assert.rejects(auth().login({ username: 'alice', password: PASSWORD }), { status: 401, code: 'invalid_credentials' });
      assert.equal((await auth().login({ username: 'alice', password: NEW_PASSWORD })).user.id, first.user.id);
    });

    it('refuses an API key, a wrong current password and a weak new one, changing nothing', async () => {
      const signed = await auth().register({ username: 'alice', password: PASSWORD });
      const other = await auth().login({ username: 'alice', password: PASSWORD });
      const { key } = auth().createApiKey(signed.user.id, 'k');
      await assert.rejects(auth().changePassword(auth().authenticate(key), { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }), { name: 'Forbidden', status: 403, code: 'session_required' });
      const principal = auth().authenticate(signed.token);
      await assert.rejects(auth().changePassword(principal, { currentPassword: 'wrong horse battery', newPassword: NEW_PASSWORD }), { status: 403, code: 'wrong_password' });
      const common = await rejection(auth().changePassword(principal, { currentPassword: PASSWORD, newPassword: 'password123' }));
      assert.deepEqual([common.name, common.status, common.code, common.details.rule], ['ValidationError', 400, 'weak_password', 'common_password']);
      assert.deepEqual((common.details.issues as Array<{ path: string }>).map((i) => i.path), ['newPassword']);
      const guessable = await rejection(auth().changePassword(principal, { currentPassword: PASSWORD, newPassword: 'alice12345' }));
      assert.deepEqual([guessable.status, guessable.code, guessable.details.rule], [400, 'weak_password', 'guessable']);
      assert.equal(auth().authenticate(other.token).user.id, signed.user.id);
      assert.equal(ended.length, 0);
      assert.equal((await auth().login({ username: 'alice', password: PASSWORD })).user.id, signed.user.id);
    });

    it('of two changes proved with the same old password, only the first wins: 409 password_changed_meanwhile', async () => {
      const signed = await auth().register({ username: 'alice', password: PASSWORD });
      const principal = auth().authenticate(signed.token);
      const results = await Promise.allSettled([
        auth().changePassword(principal, { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }),
        auth().changePassword(principal, { currentPassword: PASSWORD, newPassword: 'marmalade kettle drifting' }),
      ]);
      const rejected = results.filter((r) => r.status === 'rejected');
      assert.equal(rejected.length, 1, JSON.stringify(results));
      const e = (rejected[0] as PromiseRejectedResult).reason as AppError;
      assert.deepEqual([e.name, e.status, e.code], ['Conflict', 409, 'password_changed_meanwhile']);
      const winner = results[0]!.status === 'fulfilled' ? NEW_PASSWORD : 'marmalade kettle drifting';
      assert.equal((await auth().login({ username: 'alice', password: winner })).user.id, signed.user.id);
    });
  });

  describe('account deletion and the first admin', () => {
    it('deletes the account and everything it owns after the password, and ends all its credentials', async () => {
      const signed = await auth().register({ username: 'alice', password: PASSWORD });
      const { key } = auth().createApiKey(signed.user.id, 'k');
      h.services.conversations.create(signed.user.id, { title: 'mine' });
      const bob = addUser(h, 'bob');
      h.services.conversations.create(bob, {});
      await assert.rejects(auth().deleteAccount(signed.user.id, 'wrong horse battery'), { name: 'Forbidden', status: 403, code: 'wrong_password' });
      assert.equal(count('users'), 2);
      await auth().deleteAccount(signed.user.id, PASSWORD);
      assert.throws(() => auth().getUser(signed.user.id), { status: 404 });
      assert.throws(() => auth().authenticate(signed.token), { status: 401 });
      assert.throws(() => auth().authenticate(key), { status: 401 });
      for (const table of ['sessions', 'api_keys', 'conversations']) assert.equal(count(table, `user_id = '${signed.user.id}'`), 0, table);
      assert.equal(count('conversations', `user_id = '${bob}'`), 1, "bob's data stays");
      assert.deepEqual(ended, [{ userId: signed.user.id, reason: 'account_deleted', scope: { kind: 'all' } }]);
      await assert.rejects(auth().deleteAccount(signed.user.id, PASSWORD), { status: 404 });
    });

    it('creates the admin once with a generated password, which signs in', async () => {
      const boot = await auth().bootstrapAdmin();
      assert.equal(boot.created, true);
      assert.ok(boot.created && boot.generatedPassword && boot.generatedPassword.length >= 20);
      const signed = await auth().login({ username: ADMIN_USERNAME, password: boot.created ? boot.generatedPassword! : '' });
      assert.equal(signed.user.role, 'admin');
      assert.deepEqual(await auth().bootstrapAdmin(), { created: false });
      assert.equal(count('users'), 1);
    });

    it('refuses to make "admin" when a regular account holds the name: 409 admin_bootstrap', async () => {
      addUser(h, ADMIN_USERNAME);
      await assert.rejects(auth().bootstrapAdmin(), { name: 'Conflict', status: 409, code: 'admin_bootstrap' });
    });
  });
});

describe('the auth service with ATTUNE_ADMIN_PASSWORD', () => {
  it('uses a strong one for the first admin, who cannot delete their account while the last admin', async () => {
    const h = createServiceHarness({ env: { ATTUNE_ADMIN_PASSWORD: NEW_PASSWORD } });
    try {
      assert.deepEqual(await h.services.auth.bootstrapAdmin(), { created: true, username: ADMIN_USERNAME, generatedPassword: null });
      const admin = await h.services.auth.login({ username: ADMIN_USERNAME, password: NEW_PASSWORD });
      await assert.rejects(h.services.auth.deleteAccount(admin.user.id, NEW_PASSWORD), { name: 'Conflict', status: 409, code: 'last_admin' });
      const other = addUser(h, 'second_admin', 'admin');
      await h.services.auth.deleteAccount(admin.user.id, NEW_PASSWORD);
      assert.equal(h.repos.users.countActiveAdmins(), 1);
      assert.equal(h.repos.users.findById(other)!.role, 'admin');
    } finally {
      h.close();
    }
  });

  it('refuses a guessable one at start-up with a ConfigError naming the setting', async () => {
    const h = createServiceHarness({ env: { ATTUNE_ADMIN_PASSWORD: 'adminadmin' } });
    try {
      await assert.rejects(h.services.auth.bootstrapAdmin(), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /ATTUNE_ADMIN_PASSWORD/);
        return true;
      });
      assert.equal(h.repos.users.count(), 0);
    } finally {
      h.close();
    }
  });
});
