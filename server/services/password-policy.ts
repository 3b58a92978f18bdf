// New passwords follow NIST SP 800-63B (§3.1.1.2): at least 8 characters (the zod schema says so,
// with the 256 cap), no composition rules, and refused when they are easy to guess:
// - the blocklist: ~49,000 passwords from breach corpora, the `passwords-common` list of
//   @zxcvbn-ts/language-common (maintained, not typed by hand), compared case-insensitively;
// - what NIST lists beside it: repetitive or sequential characters (aaaaaaaa, 12345678, abcdefgh),
//   keyboard walks, dictionary words, and context-specific words (the username, "attune"). zxcvbn
//   finds these and estimates the guesses an attacker needs; under 10^6 (its score 0 or 1, "too
//   guessable for an online attack") is refused.
// Only new passwords are checked (registration, password change, the first admin): existing accounts still sign in.
import type { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { ValidationError } from '../errors.ts';

/** Words of this service that a password must not be built from. */
export const SERVICE_WORDS = ['attune'];
/** zxcvbn's score 0 or 1 (fewer than ~10^6 estimated guesses) is refused. */
export const MIN_ZXCVBN_SCORE = 2;
/**
 * Characters zxcvbn analyses; past this it only sees the prefix. Its matching is superlinear (a
 * 256-character password takes ~100 ms of the event loop, 64 a few ms), and a password whose first 64
 * characters are hard to guess is long enough anyway.
 */
const ANALYSED_CHARS = 64;

export type PasswordRule = 'common_password' | 'guessable';

interface PasswordChecker {
  blocklist: ReadonlySet<string>;
  zxcvbn: ZxcvbnFactory;
}

// The list is ~380 KB of compressed text that takes ~150 ms to unpack: loaded on first use, once per
// process, never per request.
let loading: Promise<PasswordChecker> | null = null;

export function loadPasswordChecker(): Promise<PasswordChecker> {
  loading ??= (async () => {
    const [{ dictionary, adjacencyGraphs }, { ZxcvbnFactory }] = await Promise.all([import('@zxcvbn-ts/language-common'), import('@zxcvbn-ts/core')]);
    const blocklist = new Set(dictionary['passwords-common'].map((p) => p.toLowerCase()));
    return { blocklist, zxcvbn: new ZxcvbnFactory({ dictionary, graphs: adjacencyGraphs, maxLength: ANALYSED_CHARS }) };
  })();
  loading.catch(() => {
    loading = null;
  });
  return loading;
}

/** What made a guessable password guessable, in words, from zxcvbn's longest match. */
function reasonOf(sequence: ReadonlyArray<{ pattern: string; token: string; dictionaryName?: string }>): string {
  const main = [...sequence].sort((a, b) => b.token.length - a.token.length)[0];
  switch (main?.pattern) {
    case 'repeat':
      return 'it repeats characters or a short group of them';
    case 'sequence':
      return 'it is built on a sequence like 12345678 or abcdefgh';
    case 'spatial':
      return 'it is built on a walk along the keyboard like qwertyui';
    case 'date':
      return 'it is built on a date';
    case 'dictionary':
      return main.dictionaryName === 'userInputs'
        ? 'it is built from your username or the name of this service'
        : 'it is built from a common password or word';
    default:
      return 'it is a short, common pattern';
  }
}

export interface PasswordVerdict {
  ok: boolean;
  rule?: PasswordRule;
  message?: string;
}

/** Judges a new password; `context` holds words it must not be built from (the username). */
export async function judgeNewPassword(password: string, context: readonly string[] = []): Promise<PasswordVerdict> {
  const { blocklist, zxcvbn } = await loadPasswordChecker();
  if (blocklist.has(password.toLowerCase())) {
    return { ok: false, rule: 'common_password', message: 'this password is on a list of common and breached passwords: choose another (a few random words make a good one)' };
  }
  const r = zxcvbn.check(password, [...context, ...SERVICE_WORDS]);
  if (r.score < MIN_ZXCVBN_SCORE) {
    return { ok: false, rule: 'guessable', message: `this password is too easy to guess: ${reasonOf(r.sequence)}. Choose another (a few random words make a good one)` };
  }
  return { ok: true };
}

/** Throws a 400 naming the rule when a new password is refused (code weak_password, details.rule). */
export async function assertNewPasswordAcceptable(password: string, context: readonly string[] = []): Promise<void> {
  const v = await judgeNewPassword(password, context);
  if (v.ok) return;
  throw new ValidationError(`invalid request body: password: ${v.message}`, { rule: v.rule, issues: [{ in: 'body', path: 'password', message: v.message }] }, 'weak_password');
}
