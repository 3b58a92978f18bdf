// `npm run train:default-model -- [--minutes M] [--examples N] [--seed S] [--out DIR] [--work DIR]
// [--fresh] [--export-only]` (`cli model train-default`): the default model from scratch, resumed
// from the checkpoint in --work unless --fresh.
import fs from 'node:fs';
import { DEFAULT_PRETRAIN, type PretrainOptions, pretrainDefaultModel } from '../../sandbox/pretrain.ts';
import { CliError, parse, positiveFlag, stringFlag } from '../flags.ts';

/** The `--help` line of the model group. */
export const MODEL_USAGE = ['model train-default [--minutes M] [--examples N] [--seed S] [--out DIR] [--work DIR] [--fresh] [--export-only]'];

async function trainDefault(argv: string[]): Promise<unknown> {
  const f = parse(argv, {
    out: { type: 'string' }, work: { type: 'string' }, seed: { type: 'string' }, minutes: { type: 'string' }, examples: { type: 'string' },
    fresh: { type: 'boolean' }, 'export-only': { type: 'boolean' },
  });
  const o: PretrainOptions = {
    ...DEFAULT_PRETRAIN,
    out: stringFlag(f, 'out') ?? DEFAULT_PRETRAIN.out,
    work: stringFlag(f, 'work') ?? DEFAULT_PRETRAIN.work,
    seed: positiveFlag(f, 'seed', DEFAULT_PRETRAIN.seed),
    minutes: positiveFlag(f, 'minutes', DEFAULT_PRETRAIN.minutes),
    examples: positiveFlag(f, 'examples', DEFAULT_PRETRAIN.examples),
    exportOnly: f['export-only'] === true,
  };
  if (f.fresh) fs.rmSync(o.work, { recursive: true, force: true });
  const r = await pretrainDefaultModel(o);
  return { heldout: r.heldout, samples: (r.samples as { styleShare: unknown }).styleShare };
}

export async function model(cmd: string | undefined, argv: string[]): Promise<unknown> {
  switch (cmd) {
    case 'train-default':
      return trainDefault(argv);
    default:
      throw new CliError(`unknown command "model ${cmd ?? ''}": use model train-default`);
  }
}
