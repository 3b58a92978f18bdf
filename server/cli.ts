// `npm run --silent cli -- <group> <command> [flags]`. Each command prints one JSON object on stdout
// and nothing else; progress goes to stderr; a bad argument exits 2 with a message naming it.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { processEnvironment } from './config.ts';
import { LmError } from './lm/errors.ts';
import { Engine } from './lm/generate.ts';
import { ModelRuntime } from './lm/runtime.ts';
import { samplingParamsSchema } from './lm/sampling.ts';
import { retrain } from './retrain-cli.ts';
import { sim } from './sandbox/sim-cli.ts';

ort.env.logLevel = 'error';

export class CliError extends Error {}

export type Flags = Record<string, string | boolean | undefined>;

export function parse(argv: string[], options: Record<string, { type: 'string' | 'boolean' }>): Flags {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Flags;
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

export function required(flags: Flags, name: string): string {
  const v = flags[name];
  if (typeof v !== 'string' || v === '') throw new CliError(`--${name} is required`);
  return v;
}

function parseIds(text: string, flag: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const ids = parts.map(Number);
  ids.forEach((v, i) => {
    if (parts[i] === '' || !Number.isInteger(v) || v < 0) throw new CliError(`--${flag}: "${parts[i]}" is not a non-negative integer token id`);
  });
  if (!ids.length) throw new CliError(`--${flag} must list at least one token id`);
  return ids;
}

export function numberFlag(flags: Flags, name: string, schema: z.ZodNumber): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const r = schema.safeParse(Number(v));
  if (typeof v !== 'string' || v.trim() === '' || !r.success) throw new CliError(`--${name}: "${String(v)}" is not valid (${r.error?.issues[0]?.message ?? 'expected a number'})`);
  return r.data;
}

/** A prefix FILE: a JSON array of P arrays of `hidden` numbers. */
export function readPrefixFile(file: string, hidden: number): Float32Array {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliError(`--prefix ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : `not valid JSON (${(e as Error).message})`}`);
  }
  const rows = z.array(z.array(z.number().finite())).safeParse(json);
  if (!rows.success) throw new CliError(`--prefix ${file}: expected a JSON array of arrays of numbers`);
  rows.data.forEach((r, i) => {
    if (r.length !== hidden) throw new CliError(`--prefix ${file}: row ${i} has ${r.length} numbers but the model's hidden size is ${hidden}`);
  });
  const out = new Float32Array(rows.data.length * hidden);
  rows.data.forEach((r, i) => out.set(r, i * hidden));
  return out;
}

function rows2d(flat: Float32Array, width: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < flat.length; i += width) out.push(Array.from(flat.subarray(i, i + width)));
  return out;
}

async function lm(cmd: string | undefined, argv: string[]): Promise<unknown> {
  switch (cmd) {
    case 'logits': {
      const f = parse(argv, { model: { type: 'string' }, ids: { type: 'string' }, prefix: { type: 'string' } });
      const ids = parseIds(required(f, 'ids'), 'ids');
      const rt = await ModelRuntime.load(required(f, 'model'));
      try {
        const prefix = typeof f.prefix === 'string' ? readPrefixFile(f.prefix, rt.config.hidden) : null;
        const logits = await rt.logits(ids, prefix);
        return { logits: logits.map((r) => Array.from(r)) };
      } finally {
        await rt.release();
      }
    }
    case 'score': {
      const f = parse(argv, { model: { type: 'string' }, ids: { type: 'string' }, from: { type: 'string' }, prefix: { type: 'string' } });
      const ids = parseIds(required(f, 'ids'), 'ids');
      const from = numberFlag(f, 'from', z.number().int().min(0));
      if (from === undefined) throw new CliError('--from is required');
      const rt = await ModelRuntime.load(required(f, 'model'));
      try {
        const prefix = readPrefixFile(required(f, 'prefix'), rt.config.hidden);
        if (from >= ids.length) throw new CliError(`--from ${from} must be smaller than the number of ids (${ids.length})`);
        const r = await rt.score([{ prefix, ids, from }]);
        return { logp: r.logp[0], grad_prefix: rows2d(r.gradPrefix[0] ?? new Float32Array(0), rt.config.hidden) };
      } finally {
        await rt.release();
      }
    }
    case 'generate': {
      const f = parse(argv, {
        model: { type: 'string' }, prompt: { type: 'string' }, chat: { type: 'boolean' }, 'max-new-tokens': { type: 'string' },
        temperature: { type: 'string' }, 'top-p': { type: 'string' }, 'top-k': { type: 'string' }, seed: { type: 'string' },
        'repetition-penalty': { type: 'string' },
      });
      const prompt = f.prompt;
      if (typeof prompt !== 'string') throw new CliError('--prompt is required');
      const maxNewTokens = numberFlag(f, 'max-new-tokens', z.number().int().min(1).max(1_000_000)) ?? 64;
      const parsed = samplingParamsSchema.safeParse({
        temperature: numberFlag(f, 'temperature', z.number()),
        topP: numberFlag(f, 'top-p', z.number()),
        topK: numberFlag(f, 'top-k', z.number()),
        seed: numberFlag(f, 'seed', z.number()),
        repetitionPenalty: numberFlag(f, 'repetition-penalty', z.number()),
      });
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const flag = { temperature: 'temperature', topP: 'top-p', topK: 'top-k', seed: 'seed', repetitionPenalty: 'repetition-penalty' }[String(issue.path[0])] ?? String(issue.path[0]);
        throw new CliError(`--${flag}: ${issue.message}`);
      }
      const engine = await Engine.load(required(f, 'model'));
      try {
        const t0 = performance.now();
        const r = await engine.generateText({
          ...(f.chat ? { messages: [{ role: 'user' as const, content: prompt }] } : { prompt }),
          sampling: parsed.data,
          maxNewTokens,
        });
        const seconds = (performance.now() - t0) / 1000;
        return { text: r.text, tokens: r.tokenIds.length, tokens_per_s: r.tokenIds.length / seconds, finish_reason: r.finishReason };
      } finally {
        await engine.close();
      }
    }
    default:
      throw new CliError(`unknown command "lm ${cmd ?? ''}": use lm logits, lm score or lm generate`);
  }
}

/** The environment the CLI reads (admin credentials for --server and retrain); main() passes the process's. */
export type CliEnv = Readonly<Record<string, string | undefined>>;

export async function runCli(args: string[], env: CliEnv = {}): Promise<unknown> {
  const [group, cmd, ...rest] = args;
  switch (group) {
    case 'lm':
      return lm(cmd, rest);
    case 'sim':
      return sim(cmd, rest, env);
    case 'retrain':
      // `retrain` has no sub-command: everything after it is flags.
      return retrain(cmd === undefined ? [] : [cmd, ...rest], env);
    default:
      throw new CliError(`unknown command group "${group ?? ''}": available: lm, sim, retrain`);
  }
}

async function main(): Promise<void> {
  try {
    const out = await runCli(process.argv.slice(2), processEnvironment());
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } catch (e) {
    if (e instanceof CliError || e instanceof LmError) {
      process.stderr.write(`error: ${e.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`error: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
