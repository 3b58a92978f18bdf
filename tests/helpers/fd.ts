// One finite-difference helper, used by every VJP test: builds a float64 graph, asks autodiff for
// the gradient of ⟨r, f(x)⟩ for a fixed random cotangent r, and compares it with central differences.
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { Graph, type Tensor } from '../../server/lm/onnx/graph.ts';
import { gradients } from '../../server/lm/onnx/autodiff.ts';
import { toModelBytes } from '../../server/lm/onnx/emit.ts';
import { seededRandom } from './random-text.ts';

export interface FdInput {
  shape: number[];
  /** Values; random normal when absent. */
  data?: number[];
  /** Integer (int64) input: not differentiated. */
  int?: boolean;
  /** Differentiate w.r.t. this input (default: every float input). */
  grad?: boolean;
}

export function randn(n: number, rand: () => number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const u = Math.max(rand(), 1e-12);
    out.push(Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand()));
  }
  return out;
}

const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/**
 * Check autodiff against central differences. `f` maps the graph inputs to one float64 output.
 * Returns the largest relative error seen.
 */
export async function checkGradient(
  f: (xs: Tensor[]) => Tensor,
  inputs: FdInput[],
  opts: { seed?: number; h?: number; tol?: number; maxProbes?: number } = {},
): Promise<number> {
  const rand = seededRandom(opts.seed ?? 1);
  const h = opts.h ?? 1e-6;
  const tol = opts.tol ?? 1e-6;
  const g = new Graph('fd');
  const xs = inputs.map((spec, i) => g.input(`x${i}`, spec.int ? 'int64' : 'float64', spec.shape));
  const y = f(xs);
  const ySize = y.shape.every((d) => typeof d === 'number') ? size(y.shape as number[]) : -1;
  assert.ok(ySize > 0, 'checkGradient needs an output of static shape');
  const r = g.input('r', 'float64', y.shape);
  const wrtIdx = inputs.map((s, i) => (!s.int && s.grad !== false ? i : -1)).filter((i) => i >= 0);
  const grads = gradients([{ y, seed: r }], wrtIdx.map((i) => xs[i]!));
  g.output(y, 'y');
  grads.forEach((gt, k) => g.output(gt, `g${k}`));
  const session = await ort.InferenceSession.create(toModelBytes(g), { graphOptimizationLevel: 'disabled' });

  const values = inputs.map((s) => s.data ?? randn(size(s.shape), rand));
  const rVal = Float64Array.from(randn(ySize, rand));
  const feeds = (vals: number[][]): Record<string, ort.Tensor> => {
    const out: Record<string, ort.Tensor> = { r: new ort.Tensor('float64', rVal, y.shape as number[]) };
    inputs.forEach((s, i) => {
      out[`x${i}`] = s.int
        ? new ort.Tensor('int64', BigInt64Array.from(vals[i]!.map((v) => BigInt(v))), s.shape)
        : new ort.Tensor('float64', Float64Array.from(vals[i]!), s.shape);
    });
    return out;
  };
  const objective = async (vals: number[][]): Promise<number> => {
    const out = await session.run(feeds(vals));
    const yv = out['y']!.data as Float64Array;
    let s = 0;
    for (let i = 0; i < yv.length; i++) s += yv[i]! * rVal[i]!;
    return s;
  };
  const analytic = await session.run(feeds(values));
  let worst = 0;
  for (let k = 0; k < wrtIdx.length; k++) {
    const i = wrtIdx[k]!;
    const gv = analytic[`g${k}`]!.data as Float64Array;
    assert.equal(gv.length, values[i]!.length, `gradient ${k} has the input's size`);
    const n = values[i]!.length;
    const probes = Math.min(n, opts.maxProbes ?? 24);
    const picks = probes === n ? [...Array(n).keys()] : [...Array(probes)].map(() => Math.floor(rand() * n));
    for (const j of picks) {
      const plus = values.map((v) => [...v]);
      const minus = values.map((v) => [...v]);
      plus[i]![j]! += h;
      minus[i]![j]! -= h;
      const numeric = ((await objective(plus)) - (await objective(minus))) / (2 * h);
      const err = Math.abs(numeric - gv[j]!) / Math.max(1, Math.abs(numeric));
      worst = Math.max(worst, err);
      assert.ok(err <= tol, `input ${i} element ${j}: autodiff ${gv[j]} vs finite difference ${numeric} (rel err ${err})`);
    }
  }
  return worst;
}
