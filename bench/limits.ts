// The machine's own limits, measured in the same run as the figures they bound: peak float32 matmul
// throughput and memory read bandwidth, both through onnxruntime on all cores.
import * as ort from 'onnxruntime-node';
import { Graph } from '../server/lm/onnx/graph.ts';
import { gemm, matmul } from '../server/lm/onnx/ops.ts';
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

/** Peak GFLOP/s of float32 MatMul: the best of a few large shapes. */
export async function peakMatmulGflops(): Promise<number> {
  let bestGflops = 0;
  for (const [m, k, n] of [[1536, 1536, 1536], [2048, 768, 3072], [2048, 2048, 2048]] as const) bestGflops = Math.max(bestGflops, await matmulGflops(m, k, n));
  return bestGflops;
}

async function matmulGflops(m: number, k: number, n: number): Promise<number> {
  const g = new Graph('peak');
  const a = g.input('a', 'float32', [m, k]);
  const b = g.initializer('b', 'float32', [k, n], new Float32Array(k * n).fill(0.001));
  g.output(matmul(a, b), 'y');
  const s = await createSession(g);
  const x = new ort.Tensor('float32', new Float32Array(m * k).fill(0.5), [m, k]);
  await s.run({ a: x });
  const secs = await best(5, async () => void (await s.run({ a: x })));
  await s.release();
  return (2 * m * k * n) / secs / 1e9;
}

/**
 * Read bandwidth in GB/s: the best of GEMVs [1, K]·[N, K]ᵀ over a 512 MB weight — each weight is read
 * once, exactly like a decode step at one stream — for two row lengths.
 */
export async function memoryBandwidthGBs(bytes = 512 * 1024 ** 2): Promise<number> {
  let bestGBs = 0;
  for (const K of [768, 2048]) {
    const N = Math.floor(bytes / 4 / K);
    const g = new Graph('bandwidth');
    const w = g.initializer('w', 'float32', [N, K], new Float32Array(N * K).fill(1));
    const x = g.input('x', 'float32', [1, K]);
    g.output(gemm(x, w, { transB: true }), 'y');
    const s = await createSession(g);
    const feed = { x: new ort.Tensor('float32', new Float32Array(K).fill(1), [1, K]) };
    await s.run(feed);
    const secs = await best(7, async () => void (await s.run(feed)));
    await s.release();
    bestGBs = Math.max(bestGBs, (N * K * 4) / secs / 1e9);
  }
  return bestGBs;
}
