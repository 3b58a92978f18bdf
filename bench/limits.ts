// The machine's own limits, measured in the same run as the figures they bound: peak float32 matmul
// throughput and memory read bandwidth, both through onnxruntime on all cores.
import * as ort from 'onnxruntime-node';
import { Graph } from '../server/lm/onnx/graph.ts';
import { matmul, reduceSum } from '../server/lm/onnx/ops.ts';
import { createSession } from '../server/lm/runtime.ts';

async function best(runs: number, fn: () => Promise<void>): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    min = Math.min(min, performance.now() - t0);
  }
  return min / 1000;
}

/** Peak GFLOP/s of a large square float32 MatMul. */
export async function peakMatmulGflops(n = 1536): Promise<number> {
  const g = new Graph('peak');
  const a = g.input('a', 'float32', [n, n]);
  const b = g.initializer('b', 'float32', [n, n], new Float32Array(n * n).fill(0.001));
  g.output(matmul(a, b), 'y');
  const s = await createSession(g);
  const x = new ort.Tensor('float32', new Float32Array(n * n).fill(0.5), [n, n]);
  await s.run({ a: x });
  const secs = await best(5, async () => void (await s.run({ a: x })));
  await s.release();
  return (2 * n ** 3) / secs / 1e9;
}

/** Read bandwidth in GB/s: a reduction that streams a large buffer once (bigger than any cache). */
export async function memoryBandwidthGBs(bytes = 512 * 1024 ** 2): Promise<number> {
  const n = bytes / 4;
  const rows = 1024;
  const g = new Graph('bandwidth');
  const w = g.initializer('w', 'float32', [rows, n / rows], new Float32Array(n).fill(1));
  const x = g.input('x', 'float32', [1, rows]);
  // A GEMV [1, rows]·[rows, cols] reads every weight once, exactly like one decode step.
  g.output(reduceSum(matmul(x, w), [1], false), 'y');
  const s = await createSession(g);
  const feed = { x: new ort.Tensor('float32', new Float32Array(rows).fill(1), [1, rows]) };
  await s.run(feed);
  const secs = await best(7, async () => void (await s.run(feed)));
  await s.release();
  return bytes / secs / 1e9;
}
