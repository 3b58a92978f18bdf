// `npm run --silent cli -- lm logits|score|generate …`: the engine on a model directory.
import fs from 'node:fs';
import { z } from 'zod';
import { Engine } from '../../server/lm/engine.ts';
import { ModelRuntime } from '../../server/lm/runtime.ts';
import { samplingParamsSchema } from '../../server/lm/sampling.ts';
import { CliError, idsFlag, numberFlag, parse, required } from '../flags.ts';

/** The `--help` lines of the lm group. */
export const LM_USAGE = [
  'lm logits   --model DIR --ids 3,17,5 [--prefix FILE]',
  'lm score    --model DIR --ids 3,17,5,9 --from K --prefix FILE',
  'lm generate --model DIR --prompt TEXT [--chat] [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--repetition-penalty R]',
];

/** A prefix FILE: a JSON array of P arrays of `hidden` numbers. */
function readPrefixFile(file: string, hidden: number): Float32Array {
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

export async function lm(cmd: string | undefined, argv: string[]): Promise<unknown> {
  switch (cmd) {
    case 'logits': {
      const f = parse(argv, { model: { type: 'string' }, ids: { type: 'string' }, prefix: { type: 'string' } });
      const ids = idsFlag(required(f, 'ids'), 'ids');
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
      const ids = idsFlag(required(f, 'ids'), 'ids');
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
