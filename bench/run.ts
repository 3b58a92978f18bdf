// `npm run bench -- <suite> [--json]`: suites print figures beside the machine's own limits or targets.
import { runEngineBench } from './engine.ts';
import { runPersonalizeBench } from './personalize.ts';
import { runServerBench } from './server.ts';

type Row = { value: number; unit: string; limit: number | null; ratio: number | null; note?: string };
const isFigure = (v: unknown): v is Row => typeof v === 'object' && v !== null && 'value' in v && 'unit' in v;

function printTable(obj: unknown, indent = ''): void {
  if (typeof obj !== 'object' || obj === null) return;
  for (const [k, v] of Object.entries(obj)) {
    if (isFigure(v)) {
      const lim = v.limit === null ? '' : `   limit ${fmt(v.limit)} ${v.unit}   ratio ${(v.ratio ?? 0).toFixed(2)}`;
      process.stdout.write(`${indent}${k.padEnd(28)} ${fmt(v.value)} ${v.unit}${lim}${v.note ? `   (${v.note})` : ''}\n`);
    } else if (Array.isArray(v)) {
      v.forEach((item) => {
        process.stdout.write(`${indent}-\n`);
        printTable(item, `${indent}  `);
      });
    } else if (typeof v === 'object' && v !== null) {
      process.stdout.write(`${indent}${k}:\n`);
      printTable(v, `${indent}  `);
    } else {
      process.stdout.write(`${indent}${k.padEnd(28)} ${typeof v === 'number' ? fmt(v) : String(v)}\n`);
    }
  }
}

function fmt(x: number): string {
  if (Math.abs(x) >= 1e6) return x.toExponential(3);
  return Number.isInteger(x) ? String(x) : x.toFixed(3);
}

const [suite, ...rest] = process.argv.slice(2);
const suites: Record<string, (args: string[]) => Promise<unknown>> = { engine: runEngineBench, server: runServerBench, personalize: runPersonalizeBench };
const run = suite ? suites[suite] : undefined;
if (!run) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(suites).join('|')}> [--json]\n`);
  process.exit(2);
}
const result = await run(rest);
if (rest.includes('--json')) process.stdout.write(`${JSON.stringify(result)}\n`);
else printTable(result);
