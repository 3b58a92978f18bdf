// When a credential dies (logout, an API key revoked, a password changed, the account deleted or
// disabled), the live connections opened with it must end too, and when a role changes they must gain
// or lose what the role grants. A socket authenticates once, at its handshake, so the services that
// end credentials say so here, after their write has committed, and the socket layer listens. One
// emitter per createServices, so servers built side by side (tests) never hear each other.
import type { Logger } from 'pino';
import type { Role } from '../db/users.ts';

export type CredentialEndReason = 'logout' | 'api_key_revoked' | 'password_changed' | 'account_deleted' | 'account_disabled';

/** Which of the user's credentials ended. */
export type CredentialScope =
  | { kind: 'session'; sessionTokenHash: string }
  | { kind: 'api_key'; apiKeyId: string }
  /** Every session, e.g. after a password change (the session that changed it may stay); API keys live on. */
  | { kind: 'sessions'; exceptSessionTokenHash?: string }
  | { kind: 'all' };

export interface CredentialsEnded {
  userId: string;
  reason: CredentialEndReason;
  scope: CredentialScope;
}

export interface RoleChanged {
  userId: string;
  role: Role;
}

/** What a connection was authenticated with (the shape of auth's Principal, without importing it). */
export type HeldCredential = { user: { id: string } } & ({ via: 'session'; sessionTokenHash: string } | { via: 'api_key'; apiKeyId: string });

/** Whether `ended` covers the credential a connection holds. */
export function credentialEnds(ended: CredentialsEnded, held: HeldCredential): boolean {
  if (held.user.id !== ended.userId) return false;
  const scope = ended.scope;
  switch (scope.kind) {
    case 'all':
      return true;
    case 'session':
      return held.via === 'session' && held.sessionTokenHash === scope.sessionTokenHash;
    case 'api_key':
      return held.via === 'api_key' && held.apiKeyId === scope.apiKeyId;
    case 'sessions':
      return held.via === 'session' && held.sessionTokenHash !== scope.exceptSessionTokenHash;
  }
}

export type CredentialEvents = ReturnType<typeof createCredentialEvents>;

export function createCredentialEvents(logger: Logger) {
  const endedListeners = new Set<(e: CredentialsEnded) => void>();
  const roleListeners = new Set<(e: RoleChanged) => void>();
  // The credential already ended in the database: a failing listener is logged, and must not turn
  // the caller's committed logout or revocation into an error.
  const notify = <T extends { userId: string }>(listeners: Set<(e: T) => void>, e: T, what: string) => {
    for (const listener of listeners) {
      try {
        listener(e);
      } catch (err) {
        logger.error({ err, userId: e.userId }, `a ${what} listener failed`);
      }
    }
  };
  return {
    credentialsEnded: (e: CredentialsEnded): void => notify(endedListeners, e, 'credentials-ended'),
    roleChanged: (e: RoleChanged): void => notify(roleListeners, e, 'role-changed'),
    /** Returns the unsubscribe function. */
    onCredentialsEnded(listener: (e: CredentialsEnded) => void): () => void {
      endedListeners.add(listener);
      return () => endedListeners.delete(listener);
    },
    /** Returns the unsubscribe function. */
    onRoleChanged(listener: (e: RoleChanged) => void): () => void {
      roleListeners.add(listener);
      return () => roleListeners.delete(listener);
    },
  };
}
