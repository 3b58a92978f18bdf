// Loads the serving session alone, runs a prefill and some decode steps through the scheduler, lets
// the garbage collector drop the load-time buffers, then reports its resident set size.
import { ModelRuntime } from '../server/lm/runtime.ts';
import { Scheduler } from '../server/lm/scheduler.ts';
import { loadTokenizer } from '../server/lm/tokenizer.ts';

const dir = process.argv[2]!;
const rt = await ModelRuntime.load(dir);
const sched = new Scheduler(rt, loadTokenizer(dir, { extraEosTokenIds: rt.config.eosTokenIds }), { maxBatch: 8 });
await Promise.all(
  [...Array(8).keys()].map((i) =>
    sched.submit({
      promptIds: [1, 2, 3, 4, 5, 6, 7, 8 + i], prefix: null, maxNewTokens: 16, ignoreEos: true,
      sampling: { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0 },
    }).result,
  ),
);
global.gc?.();
await new Promise((r) => setTimeout(r, 200));
global.gc?.();
process.stdout.write(`${JSON.stringify({ rss: process.memoryUsage().rss })}\n`);
await sched.close();
await rt.release();
