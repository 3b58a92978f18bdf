// Per-account sign-in throttle, independent of the client's IP: an attacker spreading guesses over
// many addresses still gets few per account. After FREE_FAILURES consecutive failed sign-ins for a
// username, the next attempt is allowed only BASE_DELAY after the last one, doubling with each further
// failure up to MAX_DELAY (1 s, 2 s, 4 s, … 15 min); earlier attempts get a 429 with Retry-After and
// are not checked (nor counted). A right password resets the count.
//
// Unknown usernames are throttled exactly like real ones, so the 429 says nothing about which
// accounts exist. The throttle can lock a real user out for up to MAX_DELAY at a time while someone
// guesses at their name; that is the price of the defence (NIST SP 800-63B §5.2.2 asks for it).
//
// Memory is bounded: at most MAX_ENTRIES usernames are tracked (the least recently tried is dropped
// first), and an entry is forgotten after FORGET_AFTER without attempts. State is per process.

/** Failures in a row allowed without delay. */
export const FREE_FAILURES = 5;
export const BASE_DELAY_MS = 1000;
export const MAX_DELAY_MS = 15 * 60_000;
export const FORGET_AFTER_MS = 24 * 3600_000;
export const MAX_ENTRIES = 50_000;

interface Entry {
  /** Attempts since the last success that did not succeed (in-flight ones included). */
  failures: number;
  lastAttemptAt: number;
}

export interface LoginThrottleOptions {
  now: () => number;
  freeFailures?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  forgetAfterMs?: number;
  maxEntries?: number;
}

export type AttemptDecision = { allowed: true; settle: (succeeded: boolean) => void } | { allowed: false; retryAfterMs: number; failures: number };

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;

export function createLoginThrottle(opts: LoginThrottleOptions) {
  const { now } = opts;
  const freeFailures = opts.freeFailures ?? FREE_FAILURES;
  const baseDelayMs = opts.baseDelayMs ?? BASE_DELAY_MS;
  const maxDelayMs = opts.maxDelayMs ?? MAX_DELAY_MS;
  const forgetAfterMs = opts.forgetAfterMs ?? FORGET_AFTER_MS;
  const maxEntries = opts.maxEntries ?? MAX_ENTRIES;
  // A Map iterates in insertion order; re-inserting on every attempt keeps it least-recent first, so
  // pruning only ever looks at its head.
  const entries = new Map<string, Entry>();

  /** The wait after `failures` failures in a row, measured from the last attempt. */
  const delayAfter = (failures: number): number =>
    failures < freeFailures ? 0 : Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(failures - freeFailures, 40));

  function prune(t: number): void {
    for (const [key, e] of entries) {
      if (entries.size <= maxEntries && t - e.lastAttemptAt < forgetAfterMs) break;
      entries.delete(key);
    }
  }

  return {
    /**
     * Call before checking the password. An allowed attempt counts as a failure until `settle(true)`,
     * so parallel guesses cannot all slip through before the first one is judged.
     */
    begin(username: string): AttemptDecision {
      const key = username.toLowerCase();
      const t = now();
      const e = entries.get(key);
      if (e) {
        const waitMs = e.lastAttemptAt + delayAfter(e.failures) - t;
        if (waitMs > 0) return { allowed: false, retryAfterMs: waitMs, failures: e.failures };
        entries.delete(key);
      }
      const entry: Entry = { failures: (e?.failures ?? 0) + 1, lastAttemptAt: t };
      entries.set(key, entry);
      prune(t);
      return {
        allowed: true,
        settle(succeeded: boolean) {
          if (succeeded) entries.delete(key);
        },
      };
    },
    /** Usernames tracked now (for tests and metrics). */
    size: (): number => entries.size,
  };
}
