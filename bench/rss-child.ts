// Loads the serving session alone and decodes a few tokens, then reports its resident set size.
import { ModelRuntime } from '../server/lm/runtime.ts';

const rt = await ModelRuntime.load(process.argv[2]!);
await rt.logits([1, 2, 3, 4, 5, 6, 7, 8]);
if (global.gc) global.gc();
process.stdout.write(`${JSON.stringify({ rss: process.memoryUsage().rss })}\n`);
await rt.release();
