// Flag parsing shared by every command. A bad argument is a CliError whose message names it; the
// dispatcher prints it and exits 2.
import { parseArgs } from 'node:util';
import { z } from 'zod';

export class CliError extends Error {}

/** The environment the CLI reads (admin credentials for --server and retrain); main() passes the process's. */
export type CliEnv = Readonly<Record<string, string | undefined>>;

export type Flags = Record<string, string | boolean | string[] | undefined>;

export type FlagSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;

/** `--name value` and `--switch` flags only: no positionals, and an unknown flag is an error. */
export function parse(argv: string[], options: FlagSpec): Flags {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Flags;
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

/** A string flag's value, or undefined (a `multiple` flag's values are read with `list`). */
export function stringFlag(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function required(flags: Flags, name: string): string {
  const v = flags[name];
  if (typeof v !== 'string' || v === '') throw new CliError(`--${name} is required`);
  return v;
}

export function numberFlag(flags: Flags, name: string, schema: z.ZodNumber): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const r = schema.safeParse(Number(v));
  if (typeof v !== 'string' || v.trim() === '' || !r.success) throw new CliError(`--${name}: "${String(v)}" is not valid (${r.error?.issues[0]?.message ?? 'expected a number'})`);
  return r.data;
}

/** A comma-separated list of token ids: `--ids 3,17,5`. */
export function idsFlag(text: string, flag: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const ids = parts.map(Number);
  ids.forEach((v, i) => {
    if (parts[i] === '' || !Number.isInteger(v) || v < 0) throw new CliError(`--${flag}: "${parts[i]}" is not a non-negative integer token id`);
  });
  if (!ids.length) throw new CliError(`--${flag} must list at least one token id`);
  return ids;
}

/** A positive number flag with a default: `--minutes 55`. */
export function positiveFlag(flags: Flags, name: string, fallback: number): number {
  const v = flags[name];
  if (v === undefined) return fallback;
  const x = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(x) || x <= 0) throw new CliError(`--${name} must be a positive number, got "${String(v)}"`);
  return x;
}
