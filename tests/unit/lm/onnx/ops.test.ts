// Every differentiable op in server/lm/onnx/ops.ts checked against central differences with the one
// finite-difference helper (tests/helpers/fd.ts), plus compositions that exercise gradient
// accumulation through fan-out, and the contract of `gradients` for unused and non-differentiable paths.
//
// Each check also runs the forward + gradient graph once and compares every tensor's runtime shape
// with the shape the builder inferred, so shape-inference bugs in forward or VJP rules show up here.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { checkGradient, randn, type FdInput } from '../../../helpers/fd.ts';
import { seededRandom } from '../../../helpers/random-text.ts';
import { Graph, type Tensor } from '../../../../server/lm/onnx/graph.ts';
import * as ops from '../../../../server/lm/onnx/ops.ts';
import {
  add, sub, mul, div, neg, exp, log, sqrt, tanh, sigmoid, reciprocal, sin, cos, powScalar, geluTanh, where, compare,
  reduceSum, reduceMean, reduceMaxNoGrad, softmax, logSoftmax, layerNorm, rmsNorm, matmul, gemm, transpose,
  transposeLast2, reshape, reshapeLike, unsqueeze, squeeze, concat, slice, gather, gatherElements, gatherRows, cast,
  sumToShapeOf, expandTo, shapeOf, toScalar, reshapeDyn, shapeTensor, dimOf,
} from '../../../../server/lm/onnx/ops.ts';
import { gradients } from '../../../../server/lm/onnx/autodiff.ts';
import { toModelBytes } from '../../../../server/lm/onnx/emit.ts';

// ---------------------------------------------------------------- helpers

const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
const rand = seededRandom(20240611);
const uniform = (n: number, lo: number, hi: number): number[] => Array.from({ length: n }, () => lo + (hi - lo) * rand());

/** A float input, random normal. */
const x = (...shape: number[]): FdInput => ({ shape });
/** A float input held fixed (not differentiated). */
const fixed = (shape: number[], data?: number[]): FdInput => ({ shape, data, grad: false });
/** Values in [0.5, 2]: for log, sqrt, fractional powers. */
const positive = (...shape: number[]): FdInput => ({ shape, data: uniform(size(shape), 0.5, 2) });
/** |values| in [0.5, 2], either sign: for reciprocal and denominators. */
const awayFromZero = (...shape: number[]): FdInput => ({
  shape,
  data: uniform(size(shape), 0.5, 2).map((v) => (rand() < 0.5 ? -v : v)),
});
const ints = (shape: number[], data: number[]): FdInput => ({ shape, data, int: true });

let worst = { err: 0, name: '' };
const covered = new Set<string>();

/**
 * Check f's gradients with finite differences and its inferred shapes at runtime. `covers` names the
 * ops.ts exports the check exercises (the last test asserts every differentiable export is covered).
 */
async function check(
  covers: string[],
  f: (xs: Tensor[]) => Tensor,
  inputs: FdInput[],
  opts: { tol?: number; h?: number; maxProbes?: number; excludeFromWorst?: boolean } = {},
): Promise<number> {
  await checkShapes(f, inputs);
  const err = await checkGradient(f, inputs, { seed: 1 + covered.size, ...opts });
  for (const c of covers) covered.add(c);
  if (!opts.excludeFromWorst && err > worst.err) worst = { err, name: covers.join('+') };
  return err;
}

/**
 * Build f and its gradient graph, output every tensor on the tape (forward and VJP nodes alike) and
 * compare the runtime dims with the statically inferred shapes.
 */
async function checkShapes(f: (xs: Tensor[]) => Tensor, inputs: FdInput[]): Promise<void> {
  const g = new Graph('shapes');
  const xs = inputs.map((s, i) => g.input(`x${i}`, s.int ? 'int64' : 'float64', s.shape));
  const y = f(xs);
  const r = g.input('r', 'float64', y.shape);
  const wrt = xs.filter((_, i) => !inputs[i]!.int && inputs[i]!.grad !== false);
  const grads = gradients([{ y, seed: r }], wrt);
  const seen = new Map<number, Tensor>();
  for (const e of g.tape) for (const t of [...e.inputs, ...e.outputs]) seen.set(t.id, t);
  for (const t of grads) seen.set(t.id, t);
  const tensors = [...seen.values()].filter((t) => !g.inputs.includes(t));
  tensors.forEach((t, k) => g.output(t, `probe${k}`));
  const session = await ort.InferenceSession.create(toModelBytes(g), { graphOptimizationLevel: 'disabled' });
  const feeds: Record<string, ort.Tensor> = { r: new ort.Tensor('float64', new Float64Array(size(y.shape as number[])), y.shape as number[]) };
  inputs.forEach((s, i) => {
    const vals = s.data ?? randn(size(s.shape), rand);
    feeds[`x${i}`] = s.int
      ? new ort.Tensor('int64', BigInt64Array.from(vals.map((v) => BigInt(v))), s.shape)
      : new ort.Tensor('float64', Float64Array.from(vals), s.shape);
  });
  const out = await session.run(feeds);
  tensors.forEach((t, k) => {
    const dims = out[`probe${k}`]!.dims;
    const expected = t.shape.map((d, i) => (typeof d === 'number' ? d : dims[i]));
    assert.deepEqual([...dims], expected, `inferred shape of ${t.name} (${t.dtype})`);
  });
  grads.forEach((gt, k) => assert.deepEqual(gt.shape, wrt[k]!.shape, `gradient ${k} has the static shape of its input`));
}

after(() => {
  // Reported for the record; each check already asserted its own tolerance.
  process.stderr.write(`onnx-vjp: worst relative error ${worst.err.toExponential(2)} (${worst.name})\n`);
});

// ---------------------------------------------------------------- elementwise binary

const BINARY = { add, sub, mul, div } as const;

describe('binary elementwise ops with broadcasting', () => {
  const shapePairs: [number[], number[]][] = [
    [[2, 3, 4], [2, 3, 4]],
    [[2, 3, 4], [4]],
    [[2, 3, 4], [3, 1]],
    [[2, 3, 4], [1, 3, 1]],
    [[4], [2, 3, 4]], // rank-expanding on the left: the smaller operand's gradient sums over two axes
    [[3, 1], [2, 3, 4]],
    [[3, 1], [1, 4]], // both operands broadcast
    [[], [2, 3]], // rank-0 tensor
    [[2, 3], []],
  ];
  for (const [name, fn] of Object.entries(BINARY)) {
    for (const [sa, sb] of shapePairs) {
      test(`${name} ${JSON.stringify(sa)} ∘ ${JSON.stringify(sb)}`, async () => {
        const b = name === 'div' ? awayFromZero(...sb) : x(...sb);
        await check([name], ([p, q]) => fn(p!, q!), [x(...sa), b]);
      });
    }
    test(`${name} with a number on either side`, async () => {
      await check([name], ([p]) => fn(p!, 1.5), [awayFromZero(2, 3)]);
      await check([name], ([p]) => fn(-0.75, p!), [awayFromZero(2, 3)]);
    });
    test(`${name} of a tensor with itself accumulates both operand gradients`, async () => {
      await check([name], ([p]) => fn(p!, p!), [awayFromZero(2, 3)]);
    });
  }
  test('rank-expanding broadcast where only the smaller operand needs the gradient', async () => {
    await check(['mul'], ([p, q]) => mul(p!, q!), [fixed([2, 3, 4]), x(3, 1)]);
    await check(['div'], ([p, q]) => div(p!, q!), [fixed([2, 3, 4]), awayFromZero(4)]);
    await check(['sub'], ([p, q]) => sub(p!, q!), [x(4), fixed([2, 1, 4])]);
  });
});

// ---------------------------------------------------------------- elementwise unary

describe('unary elementwise ops', () => {
  const cases: [string, (t: Tensor) => Tensor, FdInput][] = [
    ['neg', neg, x(3, 4)],
    ['exp', exp, x(3, 4)],
    ['log', log, positive(3, 4)],
    ['sqrt', sqrt, positive(3, 4)],
    ['tanh', tanh, x(3, 4)],
    ['sigmoid', sigmoid, x(3, 4)],
    ['reciprocal', reciprocal, awayFromZero(3, 4)],
    ['sin', sin, x(3, 4)],
    ['cos', cos, x(3, 4)],
    ['geluTanh', geluTanh, { shape: [3, 4], data: uniform(12, -4, 4) }],
  ];
  for (const [name, fn, input] of cases) test(name, async () => void (await check([name], ([p]) => fn(p!), [input])));

  for (const p of [2, 3, -0.5, 0.5, 1.5, -2]) {
    test(`powScalar p=${p}`, async () => void (await check(['powScalar'], ([t]) => powScalar(t!, p), [positive(3, 4)])));
  }
  test('powScalar p=2 and p=3 on inputs of either sign', async () => {
    await check(['powScalar'], ([t]) => powScalar(t!, 2), [x(3, 4)]);
    await check(['powScalar'], ([t]) => powScalar(t!, 3), [x(3, 4)]);
  });
});

// ---------------------------------------------------------------- where

describe('where with a fixed bool mask', () => {
  const maskOf = (m: Tensor): Tensor => compare('Greater', m, m.g.scalar(0, 'int64'));
  const bits = (n: number): number[] => Array.from({ length: n }, (_, i) => (i * 7 + 3) % 5 < 2 ? 1 : 0);
  test('same shapes: gradient to both branches', async () => {
    await check(['where'], ([c, p, q]) => where(maskOf(c!), p!, q!), [ints([3, 4], bits(12)), x(3, 4), x(3, 4)]);
  });
  test('broadcasting mask and branches', async () => {
    // cond [3,4], a [2,3,4], b [4] → [2,3,4]
    await check(['where'], ([c, p, q]) => where(maskOf(c!), p!, q!), [ints([3, 4], bits(12)), x(2, 3, 4), x(4)]);
    // cond [2,1,4], a [3,4], b [2,3,1] → [2,3,4]: every operand broadcasts
    await check(['where'], ([c, p, q]) => where(maskOf(c!), p!, q!), [ints([2, 1, 4], bits(8)), x(3, 4), x(2, 3, 1)]);
  });
  test('a number on either branch (the additive-mask pattern)', async () => {
    // -2.5 rather than -1e9: an output of size 1e9 would swamp the finite differences of ⟨r, y⟩ (the
    // -1e9 mask itself is exercised through softmax in the attention compositions below).
    await check(['where'], ([c, p]) => where(maskOf(c!), p!, -2.5), [ints([3, 4], bits(12)), x(3, 4)]);
    await check(['where'], ([c, p]) => where(maskOf(c!), 0, p!), [ints([1, 4], bits(4)), x(3, 4)]);
  });
});

// ---------------------------------------------------------------- reductions and normalisations

describe('reductions', () => {
  const axesCases = [[0], [1], [-1], [0, 2], [-2, -1], [2, 0], [0, 1, 2]];
  for (const [name, fn] of [['reduceSum', reduceSum], ['reduceMean', reduceMean]] as const) {
    for (const axes of axesCases) {
      for (const keepdims of [true, false]) {
        test(`${name} axes=${JSON.stringify(axes)} keepdims=${keepdims}`, async () => {
          await check([name], ([p]) => fn(p!, axes, keepdims), [x(2, 3, 4)]);
        });
      }
    }
  }
});

describe('softmax and logSoftmax', () => {
  for (const [name, fn] of [['softmax', softmax], ['logSoftmax', logSoftmax]] as const) {
    for (const axis of [-1, 1, 0]) {
      test(`${name} axis=${axis}`, async () => void (await check([name], ([p]) => fn(p!, axis), [x(2, 3, 5)])));
    }
    test(`${name} default axis on 2-D logits`, async () => void (await check([name], ([p]) => fn(p!), [x(4, 6)])));
  }
});

describe('normalisations', () => {
  test('layerNorm: x, weight and bias, 3-D', async () => {
    await check(['layerNorm'], ([p, w, b]) => layerNorm(p!, w!, b!, 1e-5), [x(2, 3, 6), x(6), x(6)]);
  });
  test('layerNorm: 2-D, only the weight needs a gradient', async () => {
    await check(['layerNorm'], ([p, w, b]) => layerNorm(p!, w!, b!, 1e-5), [fixed([4, 6]), x(6), fixed([6])]);
  });
  test('rmsNorm: x and weight, 3-D', async () => {
    await check(['rmsNorm'], ([p, w]) => rmsNorm(p!, w!, 1e-6), [x(2, 3, 6), x(6)]);
  });
  test('rmsNorm: 2-D, only x needs a gradient', async () => {
    await check(['rmsNorm'], ([p, w]) => rmsNorm(p!, w!, 1e-6), [x(4, 6), fixed([6])]);
  });
});

// ---------------------------------------------------------------- linear algebra

describe('matmul', () => {
  const cases: [string, number[], number[]][] = [
    ['2-D × 2-D', [3, 4], [4, 5]],
    ['3-D × 2-D (weight shared over the batch)', [2, 3, 4], [4, 5]],
    ['4-D × 2-D (weight shared over two batch axes)', [2, 2, 3, 4], [4, 5]],
    ['2-D × 3-D', [3, 4], [2, 4, 5]],
    ['4-D × 4-D batched', [2, 2, 3, 4], [2, 2, 4, 5]],
    ['4-D × 3-D rank-expanding batch', [2, 3, 4, 5], [3, 5, 6]],
    ['batch dims broadcast on both sides', [2, 1, 3, 4], [1, 2, 4, 5]],
    ['5-D grouped-query shapes', [2, 3, 1, 4, 5], [2, 1, 3, 5, 6]],
  ];
  for (const [name, sa, sb] of cases) {
    test(name, async () => void (await check(['matmul'], ([a, b]) => matmul(a!, b!), [x(...sa), x(...sb)])));
  }
  test('weight-sharing path when only the weight needs a gradient', async () => {
    await check(['matmul'], ([a, b]) => matmul(a!, b!), [fixed([2, 3, 4]), x(4, 5)]);
  });
  test('x · x for a square x accumulates both operand gradients', async () => {
    await check(['matmul'], ([a]) => matmul(a!, a!), [x(4, 4)]);
  });
});

describe('gemm', () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      test(`transA=${transA} transB=${transB}`, async () => {
        const [M, K, N] = [3, 4, 5];
        await check(['gemm'], ([a, b]) => gemm(a!, b!, { transA, transB }), [x(...(transA ? [K, M] : [M, K])), x(...(transB ? [N, K] : [K, N]))]);
      });
    }
  }
  test('default options', async () => void (await check(['gemm'], ([a, b]) => gemm(a!, b!), [x(2, 3), x(3, 4)])));
  test('with a bias row broadcast over rows (the C input)', async () =>
    void (await check(['gemm'], ([a, b, c]) => gemm(a!, b!, { transB: true, c: c! }), [x(3, 4), x(5, 4), x(5)])));
});

// ---------------------------------------------------------------- layout

describe('layout ops', () => {
  test('transpose', async () => {
    await check(['transpose'], ([p]) => transpose(p!, [2, 0, 1]), [x(2, 3, 4)]);
    await check(['transpose'], ([p]) => transpose(p!, [1, 0, 2]), [x(2, 3, 4)]);
    await check(['transpose'], ([p]) => transpose(p!, [0, 2, 1, 3]), [x(2, 3, 4, 2)]);
  });
  test('transposeLast2', async () => {
    await check(['transposeLast2'], ([p]) => transposeLast2(p!), [x(3, 4)]);
    await check(['transposeLast2'], ([p]) => transposeLast2(p!), [x(2, 3, 4)]);
  });
  test('reshape with 0 and -1 entries', async () => {
    for (const dims of [[0, -1], [-1, 4], [0, 0, 2, 2], [4, 0, -1], [24]]) {
      await check(['reshape'], ([p]) => reshape(p!, dims), [x(2, 3, 4)]);
    }
  });
  test('reshapeLike', async () => {
    await check(['reshapeLike'], ([p, like]) => reshapeLike(p!, like!), [x(2, 3, 4), fixed([6, 4])]);
    await check(['reshapeLike'], ([p, like]) => reshapeLike(p!, like!), [x(6, 4), fixed([2, 3, 2, 2])]);
  });
  test('unsqueeze', async () => {
    for (const axes of [[0], [-1], [0, 2], [1, -1], [3, 0]]) {
      await check(['unsqueeze'], ([p]) => unsqueeze(p!, axes), [x(3, 4)]);
    }
  });
  test('squeeze', async () => {
    for (const axes of [[2], [-1], [0, 2], [4, 0], [0, 2, 4]]) {
      await check(['squeeze'], ([p]) => squeeze(p!, axes), [x(1, 3, 1, 4, 1)]);
    }
  });
  test('concat of 3 inputs of different sizes along axis 1 and -1', async () => {
    await check(['concat'], ([a, b, c]) => concat([a!, b!, c!], 1), [x(2, 1, 3), x(2, 2, 3), x(2, 4, 3)]);
    await check(['concat'], ([a, b, c]) => concat([a!, b!, c!], -1), [x(2, 3, 1), x(2, 3, 2), x(2, 3, 4)]);
  });
  test('concat where only the middle input needs a gradient, and a tensor concatenated with itself', async () => {
    await check(['concat'], ([a, b, c]) => concat([a!, b!, c!], 0), [fixed([1, 3]), x(2, 3), fixed([3, 3])]);
    await check(['concat'], ([a]) => concat([a!, a!, a!], -1), [x(2, 3)]);
  });
  test('slice with number bounds', async () => {
    await check(['slice'], ([p]) => slice(p!, 1, 1, 4), [x(3, 6, 2)]);
    await check(['slice'], ([p]) => slice(p!, -1, 0, 2), [x(3, 5)]);
    await check(['slice'], ([p]) => slice(p!, 0, 2, 3), [x(3, 5)]);
    await check(['slice'], ([p]) => slice(p!, 1, 0, 6), [x(3, 6, 2)]); // the whole axis
  });
  test('slice with an end past the axis (clamped, as in x[:, 2:])', async () => {
    await check(['slice'], ([p]) => slice(p!, 1, 2, 1000), [x(3, 6)]);
  });
  test('slice with int64 [1] tensor bounds built with g.ints', async () => {
    await check(['slice'], ([p]) => slice(p!, 1, p!.g.ints([1]), p!.g.ints([4]), 3), [x(3, 6, 2)]);
    await check(['slice'], ([p]) => slice(p!, -1, p!.g.ints([2]), p!.g.ints([5]), 3), [x(2, 5)]);
  });
  test('two slices of one tensor recombined (rotate-half): gradients accumulate', async () => {
    await check(['slice', 'concat', 'neg'], ([p]) => concat([neg(slice(p!, -1, 2, 4)), slice(p!, -1, 0, 2)], -1), [x(2, 3, 4)]);
  });
});

// ---------------------------------------------------------------- indexing

describe('gather and gatherElements', () => {
  test('gather: embedding lookup with repeated indices accumulates duplicates', async () => {
    await check(['gather'], ([table, ids]) => gather(table!, ids!), [x(5, 3), ints([2, 4], [0, 2, 2, 4, 1, 2, 0, 0])]);
    await check(['gather'], ([table, ids]) => gather(table!, ids!), [x(4, 2, 3), ints([6], [3, 3, 3, 1, 0, 3])]);
  });
  test('gatherElements: log-prob picking after logSoftmax', async () => {
    await check(['gatherElements', 'logSoftmax'], ([logits, ids]) => gatherElements(logSoftmax(logits!, -1), ids!, -1), [
      x(3, 5),
      ints([3, 1], [4, 0, 2]),
    ]);
    await check(['gatherElements', 'logSoftmax'], ([logits, ids]) => gatherElements(logSoftmax(logits!, 2), ids!, 2), [
      x(2, 3, 5),
      ints([2, 3, 1], [1, 1, 4, 0, 3, 2]),
    ]);
  });
  test('gatherElements with repeated picks along the axis, and along axis 0', async () => {
    await check(['gatherElements'], ([d, ids]) => gatherElements(d!, ids!, 1), [x(3, 5), ints([3, 4], [1, 1, 1, 0, 4, 4, 2, 2, 0, 3, 3, 3])]);
    await check(['gatherElements'], ([d, ids]) => gatherElements(d!, ids!, 0), [x(3, 4), ints([2, 4], [2, 2, 0, 1, 2, 0, 0, 1])]);
  });
  test('a sequence log-probability: Σ picked log-probs as a scalar', async () => {
    await check(['gatherElements', 'logSoftmax', 'reduceSum', 'squeeze'], ([logits, ids]) => reduceSum(squeeze(gatherElements(logSoftmax(logits!), ids!, -1), [-1]), [0, 1], false), [
      x(2, 4, 6),
      ints([2, 4, 1], [5, 0, 0, 3, 1, 5, 2, 2]),
    ]);
  });
});

// ---------------------------------------------------------------- remaining exports

describe('other differentiable exports', () => {
  test('cast float64 → float32 → float64 (looser: float32 rounding)', async () => {
    // The float32 round trip quantises x to ~6e-8 relative, so use a larger step and tolerance.
    await check(['cast'], ([p]) => cast(cast(p!, 'float32'), 'float64'), [x(3, 4)], { h: 1e-2, tol: 1e-4, excludeFromWorst: true });
  });
  test('sumToShapeOf', async () => {
    await check(['sumToShapeOf'], ([p, like]) => sumToShapeOf(p!, like!), [x(2, 3, 4), fixed([3, 1])]);
    await check(['sumToShapeOf'], ([p, like]) => sumToShapeOf(p!, like!), [x(2, 3, 4), fixed([])]);
  });
  test('expandTo', async () => {
    await check(['expandTo'], ([p, like]) => expandTo(p!, shapeOf(like!), [2, 3, 4]), [x(3, 1), fixed([2, 3, 4])]);
    await check(['expandTo'], ([p, like]) => expandTo(p!, shapeOf(like!), [2, 3, 4]), [x(4), fixed([2, 3, 4])]);
  });
  test('reshapeDyn to a shape computed in the graph', async () => {
    await check(['reshapeDyn'], ([p]) => reshapeDyn(p!, p!.g.noGrad(() => shapeTensor([dimOf(p!, 0), [12]])), [2, 12]), [x(2, 3, 4)]);
  });
  test('toScalar', async () => {
    await check(['toScalar'], ([p]) => mul(toScalar(p!), 2), [x(1)]);
  });
});

// ---------------------------------------------------------------- symbolic dims

describe('VJPs on tensors whose build-time shape has symbolic dims', () => {
  // The model graphs carry 'B' and 'N' instead of numbers, and several VJP rules read static shapes.
  // View the inputs through a symbolic shape, apply the op, and come back to a static output shape.
  const symbolic = (t: Tensor, shape: (number | string)[]): Tensor => reshapeDyn(t, t.g.noGrad(() => shapeOf(t)), shape);
  const staticAgain = (t: Tensor, shape: number[]): Tensor => reshapeDyn(t, t.g.noGrad(() => shapeOf(t)), shape);

  test('bias add and weight-shared matmul over [B, N, D]', async () => {
    await check(['matmul', 'add', 'reshapeDyn'], ([h, w, b]) => staticAgain(add(matmul(symbolic(h!, ['B', 'N', 4]), w!), b!), [2, 3, 5]), [x(2, 3, 4), x(4, 5), x(5)]);
  });
  test('gemm on [T, D] rows with T symbolic', async () => {
    await check(['gemm'], ([h, w]) => staticAgain(gemm(symbolic(h!, ['T', 4]), w!, { transB: true }), [6, 5]), [x(6, 4), x(5, 4)]);
  });
  test('layerNorm, rmsNorm and softmax over a symbolic batch', async () => {
    await check(['layerNorm', 'rmsNorm', 'softmax'], ([h, w, b]) => {
      const v = symbolic(h!, ['B', 'N', 4]);
      return staticAgain(softmax(add(layerNorm(v, w!, b!, 1e-5), rmsNorm(v, w!, 1e-6)), -1), [2, 3, 4]);
    }, [x(2, 3, 4), x(4), x(4)]);
  });
  test('reduceMean and reduceSum over symbolic axes', async () => {
    await check(['reduceMean', 'reduceSum'], ([h]) => {
      const v = symbolic(h!, ['B', 'N', 4]);
      return staticAgain(mul(reduceMean(v, [1], false), reduceSum(v, [0, 1], false)), [2, 4]);
    }, [x(2, 3, 4)]);
  });
  test('concat and slice along a symbolic axis', async () => {
    await check(['concat', 'slice'], ([a, b]) => {
      const both = concat([symbolic(a!, ['B', 'P', 3]), symbolic(b!, ['B', 'S', 3])], 1); // [B, P+S, 3]
      return staticAgain(slice(both, 1, a!.g.ints([1]), a!.g.ints([4]), 3), [2, 3, 3]);
    }, [x(2, 2, 3), x(2, 3, 3)]);
  });
  test('a mask [B, 1, N] broadcast against [B, H, N]', async () => {
    await check(['mul'], ([h, m]) => {
      const v = symbolic(h!, ['B', 2, 'N']);
      const mask = symbolic(m!, ['B', 1, 'N']);
      return staticAgain(mul(v, mask), [2, 2, 3]);
    }, [x(2, 2, 3), x(2, 1, 3)]);
  });
});

// ---------------------------------------------------------------- compositions (fan-out)

describe('compositions', () => {
  test('silu = x · sigmoid(x)', async () => {
    await check(['mul', 'sigmoid'], ([p]) => mul(p!, sigmoid(p!)), [{ shape: [3, 4], data: uniform(12, -5, 5) }]);
  });

  const causalMask = (t: number): number[] => Array.from({ length: t * t }, (_, i) => (i % t <= Math.floor(i / t) ? 0 : -1e9));

  test('attention softmax(QKᵀ/√d + mask)V with a -1e9 additive mask', async () => {
    const [B, T, D] = [2, 4, 3];
    await check(['matmul', 'transposeLast2', 'div', 'add', 'softmax'], ([q, k, v, m]) => {
      const scores = add(div(matmul(q!, transposeLast2(k!)), Math.sqrt(D)), m!);
      return matmul(softmax(scores, -1), v!);
    }, [x(B, T, D), x(B, T, D), x(B, T, D), fixed([T, T], causalMask(T))]);
  });

  test('self-attention from one input: x feeds Q, K, V and the residual', async () => {
    const [B, T, D] = [2, 3, 4];
    await check(['matmul', 'transposeLast2', 'mul', 'add', 'softmax'], ([h, wq, wk, wv, m]) => {
      const q = matmul(h!, wq!);
      const k = matmul(h!, wk!);
      const v = matmul(h!, wv!);
      const att = softmax(add(mul(matmul(q, transposeLast2(k)), 1 / Math.sqrt(D)), m!), -1);
      return add(h!, matmul(att, v));
    }, [x(B, T, D), x(D, D), x(D, D), x(D, D), fixed([T, T], causalMask(T))]);
  });

  test('grouped-query attention in 5-D: one KV head shared by a group of query heads', async () => {
    const [B, Hkv, G, T, D] = [1, 2, 2, 3, 4];
    await check(['matmul', 'transposeLast2', 'mul', 'add', 'softmax', 'reshape'], ([q, k, v, m]) => {
      const scores = add(mul(matmul(q!, transposeLast2(k!)), 1 / Math.sqrt(D)), m!);
      const out = matmul(softmax(scores, -1), v!); // [B, Hkv, G, T, D]
      return reshape(out, [B, Hkv * G, T, D]);
    }, [x(B, Hkv, G, T, D), x(B, Hkv, 1, T, D), x(B, Hkv, 1, T, D), fixed([T, T], causalMask(T))]);
  });

  test('a tiny pre-norm GPT-2 MLP block with layerNorm, gelu and a residual', async () => {
    const [B, T, D, H] = [2, 3, 4, 6];
    await check(['layerNorm', 'matmul', 'add', 'geluTanh'], ([h, lw, lb, w1, b1, w2, b2]) => {
      const n = layerNorm(h!, lw!, lb!, 1e-5);
      const hidden = geluTanh(add(matmul(n, w1!), b1!));
      return add(h!, add(matmul(hidden, w2!), b2!));
    }, [x(B, T, D), x(D), x(D), x(D, H), x(H), x(H, D), x(D)]);
  });

  test('a tiny Llama MLP block: rmsNorm, gated silu, residual', async () => {
    const [B, T, D, H] = [2, 3, 4, 6];
    await check(['rmsNorm', 'matmul', 'mul', 'sigmoid', 'add'], ([h, nw, wg, wu, wd]) => {
      const n = rmsNorm(h!, nw!, 1e-6);
      const gate = matmul(n, wg!);
      const act = mul(mul(gate, sigmoid(gate)), matmul(n, wu!));
      return add(h!, matmul(act, wd!));
    }, [x(B, T, D), x(D), x(D, H), x(D, H), x(H, D)]);
  });

  test('a soft prompt prepended to token embeddings, scored by a mean log-prob', async () => {
    // The P-DPO shape in miniature: gradient to the user's prefix only, through gather, concat and the head.
    const [P, V, D] = [2, 5, 3];
    await check(['concat', 'gather', 'matmul', 'logSoftmax', 'gatherElements', 'reduceMean', 'slice'], ([prefix, emb, head, ids, targets]) => {
      const tok = gather(emb!, ids!); // [1, 3, D]
      const h = concat([unsqueeze(prefix!, [0]), tok], 1); // [1, P+3, D]
      const lp = logSoftmax(matmul(tanh(h), head!), -1); // [1, P+3, V]
      const picked = gatherElements(slice(lp, 1, P, P + 3), targets!, -1); // [1, 3, 1]
      return reduceMean(picked, [1, 2], false);
    }, [x(P, D), fixed([V, D]), fixed([D, V]), ints([1, 3], [4, 1, 4]), ints([1, 3, 1], [1, 4, 0])]);
  });
});

// ---------------------------------------------------------------- the contract of `gradients`

async function run(g: Graph, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.OnnxValueMapType> {
  const session = await ort.InferenceSession.create(toModelBytes(g), { graphOptimizationLevel: 'disabled' });
  return session.run(feeds);
}

describe('gradients', () => {
  test('returns zeros of the right shape for a wrt input the output does not depend on', async () => {
    const g = new Graph('unused');
    const a = g.input('a', 'float64', [2, 3]);
    const unused = g.input('unused', 'float64', [4, 5]);
    const y = exp(a);
    const r = g.input('r', 'float64', [2, 3]);
    const [ga, gu] = gradients([{ y, seed: r }], [a, unused]);
    assert.deepEqual(gu!.shape, [4, 5]);
    g.output(ga!, 'ga');
    g.output(gu!, 'gu');
    const aVal = Float64Array.from([0.1, -0.2, 0.3, 1, 2, -3]);
    const rVal = Float64Array.from([1, 2, 3, 4, 5, 6]);
    const out = await run(g, {
      a: new ort.Tensor('float64', aVal, [2, 3]),
      unused: new ort.Tensor('float64', new Float64Array(20).fill(7), [4, 5]),
      r: new ort.Tensor('float64', rVal, [2, 3]),
    });
    assert.deepEqual([...out['gu']!.dims], [4, 5]);
    assert.deepEqual([...(out['gu']!.data as Float64Array)], new Array(20).fill(0));
    const gaVals = [...(out['ga']!.data as Float64Array)];
    gaVals.forEach((v, i) => assert.ok(Math.abs(v - rVal[i]! * Math.exp(aVal[i]!)) < 1e-12));
  });

  test('zeros also come through checkGradient for an input only used for its shape', async () => {
    await check(['reshapeLike'], ([p, like]) => reshapeLike(p!, like!), [x(2, 3, 4), x(6, 4)]);
  });

  test('several seeded outputs sum their contributions', async () => {
    const g = new Graph('two-outputs');
    const a = g.input('a', 'float64', [3]);
    const y1 = mul(a, a);
    const y2 = sin(a);
    const s1 = g.input('s1', 'float64', [3]);
    const s2 = g.input('s2', 'float64', [3]);
    const [ga] = gradients([{ y: y1, seed: s1 }, { y: y2, seed: s2 }], [a]);
    g.output(ga!, 'ga');
    const av = [0.5, -1, 2];
    const sv1 = [1, -2, 0.5];
    const sv2 = [3, 0.25, -1];
    const out = await run(g, {
      a: new ort.Tensor('float64', Float64Array.from(av), [3]),
      s1: new ort.Tensor('float64', Float64Array.from(sv1), [3]),
      s2: new ort.Tensor('float64', Float64Array.from(sv2), [3]),
    });
    const got = [...(out['ga']!.data as Float64Array)];
    av.forEach((v, i) => assert.ok(Math.abs(got[i]! - (2 * v * sv1[i]! + Math.cos(v) * sv2[i]!)) < 1e-12));
  });

  test('the finite-difference check rejects a subtly wrong VJP rule', async () => {
    // A sin whose rule is off by 1e-4 relative: the checks above would catch a slip of this size.
    const slightlyWrongSin = (t: Tensor): Tensor => {
      const [y] = t.g.emit('Sin', [t], {}, [{ dtype: t.dtype, shape: t.shape }]);
      t.g.record('Sin', [t], [y!], ([g]) => [mul(g!, mul(cos(t), 1.0001))]);
      return y!;
    };
    await assert.rejects(checkGradient(([p]) => slightlyWrongSin(p!), [x(3, 4)]), /finite difference/);
  });

  describe('non-differentiable paths', () => {
    test('reduceMaxNoGrad inside g.noGrad stabilises logsumexp without breaking its gradient', async () => {
      await check(['reduceSum', 'exp', 'log', 'sub', 'add'], ([p]) => {
        const m = p!.g.noGrad(() => reduceMaxNoGrad(p!, [-1]));
        return add(log(reduceSum(exp(sub(p!, m)), [-1])), m);
      }, [x(3, 5)]);
    });

    test('reduceMaxNoGrad on the gradient path, outside noGrad, throws a clear error', () => {
      const g = new Graph('throws');
      const a = g.input('a', 'float64', [3, 5]);
      const y = sub(a, reduceMaxNoGrad(a, [-1]));
      const r = g.input('r', 'float64', [3, 5]);
      assert.throws(() => gradients([{ y, seed: r }], [a]), /no gradient rule for op ReduceMax/);
    });

    test('gatherRows (inference only) on the gradient path throws instead of dropping the gradient', () => {
      const g = new Graph('throws-gathernd');
      const data = g.input('data', 'float64', [2, 4, 3]);
      const idx = g.input('idx', 'int64', [2, 2]);
      const y = gatherRows(data, idx);
      const r = g.input('r', 'float64', [2, 2, 3]);
      assert.throws(() => gradients([{ y, seed: r }], [data]), /no gradient rule for op GatherND/);
    });

    test('a non-differentiable op off the needed path does not throw', async () => {
      // Its input is not differentiated: only `b` is asked for.
      await check(['sub', 'mul', 'add'], ([a, b]) => add(sub(a!, reduceMaxNoGrad(a!, [-1])), mul(b!, b!)), [fixed([3, 5]), x(3, 5)]);
      // Its output does not reach y.
      await check(['exp'], ([a]) => {
        reduceMaxNoGrad(a!, [-1]);
        return exp(a!);
      }, [x(3, 5)]);
    });
  });
});

// ---------------------------------------------------------------- coverage

test('every differentiable export of ops.ts is checked above', () => {
  // Plumbing with no gradient by nature (shapes, ints, bools, constants) or by contract (…NoGrad, inference only).
  const notDifferentiable = new Set([
    'broadcastShapes', 'shapeOf', 'dimOf', 'compare', 'logical', 'range', 'zerosOfShape', 'zerosLike',
    'reduceMaxNoGrad', 'gatherRows', 'shapeTensor',
  ]);
  const exported = Object.entries(ops).filter(([, v]) => typeof v === 'function').map(([k]) => k);
  const missing = exported.filter((k) => !notDifferentiable.has(k) && !covered.has(k));
  assert.deepEqual(missing, [], `differentiable ops without a finite-difference check: ${missing.join(', ')}`);
});
