// One assertion for the engine's typed errors, shared by the lm and sandbox tests.
import assert from 'node:assert/strict';
import { LmError } from '../../server/lm/errors.ts';

/** Expects `fn` to throw an LmError with `code` whose message contains every `mentions`. */
export function throwsLm(fn: () => unknown, code: string, ...mentions: string[]): LmError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof LmError, `expected LmError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  for (const m of mentions) assert.ok(caught.message.includes(m), `message ${JSON.stringify(caught.message)} should mention ${m}`);
  return caught;
}
