// `npm run --silent cli -- <group> <command> [flags]`. Each command prints one JSON object on stdout
// and nothing else; progress goes to stderr; a bad argument exits 2 with a message naming it.
// This file only dispatches: the commands live in commands/, their flags in flags.ts.
import * as ort from 'onnxruntime-node';
import { processEnvironment } from '../server/config.ts';
import { LmError } from '../server/lm/errors.ts';
import { lm, LM_USAGE } from './commands/lm.ts';
import { model, MODEL_USAGE } from './commands/model.ts';
import { retrain, RETRAIN_USAGE } from './commands/retrain.ts';
import { sim, SIM_USAGE } from './commands/sim.ts';
import { CliError, type CliEnv } from './flags.ts';

ort.env.logLevel = 'error';

const USAGE = ['usage: npm run --silent cli -- <group> <command> [flags]', ...[...LM_USAGE, ...SIM_USAGE, ...RETRAIN_USAGE, ...MODEL_USAGE].map((l) => `  ${l}`)].join('\n');

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
    case 'model':
      return model(cmd, rest);
    default:
      throw new CliError(`unknown command group "${group ?? ''}": available: lm, sim, retrain, model (--help lists the commands)`);
  }
}

async function main(args: string[]): Promise<void> {
  if (args.length === 1 && (args[0] === '--help' || args[0] === '-h' || args[0] === 'help')) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  try {
    const out = await runCli(args, processEnvironment());
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

if (import.meta.url === `file://${process.argv[1]}`) await main(process.argv.slice(2));
