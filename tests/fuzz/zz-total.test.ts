// The run's total, printed after every other fuzz file (files run one at a time, in name order): the
// cases each file tried per area and its failures by kind, summed. Each file appends its counts to a
// file named after the test runner's pid (the parent of every test file's process).
import { test } from 'node:test';
import { FUZZ_SEED, readRunSummaries } from './harness.ts';

test('fuzz total: cases tried and failures by kind, over every fuzz file of this run', (t) => {
  const runs = readRunSummaries();
  if (runs.length === 0) {
    t.diagnostic('no fuzz file of this run reported (run the whole suite: npm run test:fuzz)');
    return;
  }
  const perArea = new Map<string, number>();
  const failures = new Map<string, number>();
  for (const r of runs) {
    for (const [area, n] of Object.entries(r.perArea)) perArea.set(area.split(' ')[0]!, (perArea.get(area.split(' ')[0]!) ?? 0) + n);
    for (const [kind, n] of Object.entries(r.failures)) failures.set(kind, (failures.get(kind) ?? 0) + n);
  }
  const total = [...perArea.values()].reduce((a, b) => a + b, 0);
  const failed = [...failures.values()].reduce((a, b) => a + b, 0);
  const lines = [
    `fuzz total (seed ${FUZZ_SEED}, ${runs.length} files: ${runs.map((r) => r.file).join(', ')})`,
    ...[...perArea].map(([area, n]) => `  ${area}: ${n} cases`),
    `  all: ${total} cases, ${failed} failures${failed ? ` (${[...failures].map(([k, n]) => `${k} ${n}`).join(', ')})` : ''}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
});
