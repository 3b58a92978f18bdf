// Primitive ops: each emits its forward ONNX node(s) and records its vector-Jacobian rule beside it.
// Composite functions (silu, rotate-half, attention) live in the architecture files and get their
// gradients for free by composition.
import { type DType, type Dim, type Shape, type Tensor, type Vjp, ONNX_DTYPE, isFloat, tensorProto, typedArrayFor } from './graph.ts';

// ---------------------------------------------------------------- shape helpers

export function broadcastShapes(...shapes: Shape[]): Shape {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const k = i - (rank - s.length);
      if (k < 0) continue;
      const e = s[k];
      if (e === 1) continue;
      if (d === 1) d = e;
      else if (d !== e) {
        if (typeof d === 'number' && typeof e === 'number') throw new Error(`cannot broadcast shapes ${JSON.stringify(shapes)}`);
        d = typeof d === 'number' ? d : typeof e === 'number' ? e : '?';
      }
    }
    out.push(d);
  }
  return out;
}

const normAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

/** Sum a cotangent of broadcast shape back down to the shape of `x`. */
export function sumToShapeOf(gy: Tensor, x: Tensor): Tensor {
  const R = gy.shape.length;
  const r = x.shape.length;
  const axes: number[] = [];
  for (let i = 0; i < R; i++) {
    const k = i - (R - r);
    if (k < 0) axes.push(i);
    else if (x.shape[k] === 1 && gy.shape[i] !== 1) axes.push(i);
  }
  if (axes.length === 0) return gy;
  const summed = reduceSum(gy, axes, true);
  return R === r ? summed : reshapeLike(summed, x);
}

// ---------------------------------------------------------------- plumbing (no gradients)

export function shapeOf(x: Tensor): Tensor {
  return x.g.emit('Shape', [x], {}, [{ dtype: 'int64', shape: [x.shape.length] }])[0]!;
}

/** Dimension `axis` of x as an int64 tensor of shape [1]. */
export function dimOf(x: Tensor, axis: number): Tensor {
  const a = normAxis(axis, x.shape.length);
  return x.g.emit('Shape', [x], { start: a, end: a + 1 }, [{ dtype: 'int64', shape: [1] }])[0]!;
}

export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const [y] = x.g.emit('Cast', [x], { to: ONNX_DTYPE[dtype] }, [{ dtype, shape: x.shape }]);
  if (isFloat(x.dtype) && isFloat(dtype)) x.g.record('Cast', [x], [y!], ([g]) => [cast(g!, x.dtype)]);
  return y!;
}

export function compare(op: 'Less' | 'LessOrEqual' | 'Greater' | 'GreaterOrEqual' | 'Equal', a: Tensor, b: Tensor): Tensor {
  return a.g.emit(op, [a, b], {}, [{ dtype: 'bool', shape: broadcastShapes(a.shape, b.shape) }])[0]!;
}

export function logical(op: 'And' | 'Or', a: Tensor, b: Tensor): Tensor {
  return a.g.emit(op, [a, b], {}, [{ dtype: 'bool', shape: broadcastShapes(a.shape, b.shape) }])[0]!;
}

/** int64 range [start, limit) with step 1; start and limit are scalar int64 tensors. */
export function range(start: Tensor, limit: Tensor, len: Dim): Tensor {
  return start.g.emit('Range', [start, limit, start.g.scalar(1, 'int64')], {}, [{ dtype: 'int64', shape: [len] }])[0]!;
}

export function zerosOfShape(shape: Tensor, dtype: DType, outShape: Shape): Tensor {
  const value = tensorProto('value', dtype, [1], typedArrayFor(dtype, [0]));
  return shape.g.emit('ConstantOfShape', [shape], { value: { tensor: value } }, [{ dtype, shape: outShape }])[0]!;
}

export function zerosLike(x: Tensor): Tensor {
  return zerosOfShape(shapeOf(x), x.dtype, x.shape);
}

export function expandTo(x: Tensor, shape: Tensor, outShape: Shape): Tensor {
  const [y] = x.g.emit('Expand', [x, shape], {}, [{ dtype: x.dtype, shape: outShape }]);
  if (isFloat(x.dtype)) x.g.record('Expand', [x], [y!], ([g]) => [sumToShapeOf(g!, x)]);
  return y!;
}

/** A [1] tensor → [] (usually an int64 index; a float one keeps its gradient). */
export function toScalar(x: Tensor): Tensor {
  const [y] = x.g.emit('Squeeze', [x, x.g.ints([0])], {}, [{ dtype: x.dtype, shape: [] }]);
  if (isFloat(x.dtype)) x.g.record('Squeeze', [x], [y!], ([g]) => [reshapeLike(g!, x)]);
  return y!;
}

// ---------------------------------------------------------------- elementwise

function binary(op: 'Add' | 'Sub' | 'Mul' | 'Div', a: Tensor, b: Tensor, vjp: (y: Tensor) => Vjp): Tensor {
  if (a.dtype !== b.dtype) throw new Error(`${op}: dtype mismatch ${a.dtype} vs ${b.dtype}`);
  const [y] = a.g.emit(op, [a, b], {}, [{ dtype: a.dtype, shape: broadcastShapes(a.shape, b.shape) }]);
  a.g.record(op, [a, b], [y!], vjp(y!));
  return y!;
}

type Operand = Tensor | number;
function lift(x: Operand, like: Tensor): Tensor {
  return typeof x === 'number' ? like.g.scalar(x, like.dtype) : x;
}
function pair(a: Operand, b: Operand): [Tensor, Tensor] {
  if (typeof a === 'number' && typeof b === 'number') throw new Error('at least one operand must be a tensor');
  const like = (typeof a === 'number' ? b : a) as Tensor;
  return [lift(a, like), lift(b, like)];
}

export function add(a: Operand, b: Operand): Tensor {
  const [x, z] = pair(a, b);
  return binary('Add', x, z, () => ([g], n) => [n[0] ? sumToShapeOf(g!, x) : null, n[1] ? sumToShapeOf(g!, z) : null]);
}

export function sub(a: Operand, b: Operand): Tensor {
  const [x, z] = pair(a, b);
  return binary('Sub', x, z, () => ([g], n) => [n[0] ? sumToShapeOf(g!, x) : null, n[1] ? sumToShapeOf(neg(g!), z) : null]);
}

export function mul(a: Operand, b: Operand): Tensor {
  const [x, z] = pair(a, b);
  return binary('Mul', x, z, () => ([g], n) => [
    n[0] ? sumToShapeOf(mul(g!, z), x) : null,
    n[1] ? sumToShapeOf(mul(g!, x), z) : null,
  ]);
}

export function div(a: Operand, b: Operand): Tensor {
  const [x, z] = pair(a, b);
  return binary('Div', x, z, (y) => ([g], n) => [
    n[0] ? sumToShapeOf(div(g!, z), x) : null,
    n[1] ? sumToShapeOf(neg(div(mul(g!, y), z)), z) : null,
  ]);
}

function unary(op: string, x: Tensor, vjp: (y: Tensor) => (g: Tensor) => Tensor, attrs: Record<string, number | string> = {}): Tensor {
  const [y] = x.g.emit(op, [x], attrs, [{ dtype: x.dtype, shape: x.shape }]);
  x.g.record(op, [x], [y!], ([g]) => [vjp(y!)(g!)]);
  return y!;
}

export const neg = (x: Tensor): Tensor => unary('Neg', x, () => (g) => neg(g));
export const exp = (x: Tensor): Tensor => unary('Exp', x, (y) => (g) => mul(g, y));
export const log = (x: Tensor): Tensor => unary('Log', x, () => (g) => div(g, x));
export const sqrt = (x: Tensor): Tensor => unary('Sqrt', x, (y) => (g) => div(mul(g, 0.5), y));
export const tanh = (x: Tensor): Tensor => unary('Tanh', x, (y) => (g) => mul(g, sub(1, mul(y, y))));
export const sigmoid = (x: Tensor): Tensor => unary('Sigmoid', x, (y) => (g) => mul(g, mul(y, sub(1, y))));
export const reciprocal = (x: Tensor): Tensor => unary('Reciprocal', x, (y) => (g) => neg(mul(g, mul(y, y))));
export const sin = (x: Tensor): Tensor => unary('Sin', x, () => (g) => mul(g, cos(x)));
export const cos = (x: Tensor): Tensor => unary('Cos', x, () => (g) => neg(mul(g, sin(x))));

/** x ** p for a constant exponent p. */
export function powScalar(x: Tensor, p: number): Tensor {
  const [y] = x.g.emit('Pow', [x, x.g.scalar(p, x.dtype)], {}, [{ dtype: x.dtype, shape: x.shape }]);
  x.g.record('Pow', [x], [y!], ([g]) => [mul(g!, mul(powScalar(x, p - 1), p))]);
  return y!;
}

/** GELU with the tanh approximation (GPT-2's gelu_new), fused forward. */
export function geluTanh(x: Tensor): Tensor {
  const [y] = x.g.emit('Gelu', [x], { approximate: 'tanh' }, [{ dtype: x.dtype, shape: x.shape }]);
  x.g.record('Gelu', [x], [y!], ([g]) => {
    const c = Math.sqrt(2 / Math.PI);
    const x2 = mul(x, x);
    const t = tanh(mul(mul(x, add(mul(x2, 0.044715), 1)), c));
    const dt = mul(sub(1, mul(t, t)), mul(add(mul(x2, 3 * 0.044715), 1), c));
    const d = add(mul(add(t, 1), 0.5), mul(mul(x, dt), 0.5));
    return [mul(g!, d)];
  });
  return y!;
}

export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const [x, z] = pair(a, b);
  const [y] = cond.g.emit('Where', [cond, x, z], {}, [{ dtype: x.dtype, shape: broadcastShapes(cond.shape, x.shape, z.shape) }]);
  cond.g.record('Where', [cond, x, z], [y!], ([g], n) => {
    const zero = g!.g.scalar(0, g!.dtype);
    return [null, n[1] ? sumToShapeOf(where(cond, g!, zero), x) : null, n[2] ? sumToShapeOf(where(cond, zero, g!), z) : null];
  });
  return y!;
}

// ---------------------------------------------------------------- reductions and normalisations

function reduce(op: 'ReduceSum' | 'ReduceMean' | 'ReduceMax', x: Tensor, axes: number[], keepdims: boolean): Tensor {
  const r = x.shape.length;
  const ax = axes.map((a) => normAxis(a, r));
  const shape = keepdims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i));
  return x.g.emit(op, [x, x.g.ints(ax)], { keepdims: keepdims ? 1 : 0 }, [{ dtype: x.dtype, shape }])[0]!;
}

/** Bring a reduced cotangent back to the full shape of x. */
function unreduce(g: Tensor, x: Tensor, axes: number[], keepdims: boolean): Tensor {
  const ax = axes.map((a) => normAxis(a, x.shape.length));
  const kept = keepdims ? g : unsqueeze(g, ax);
  return expandTo(kept, shapeOf(x), x.shape);
}

export function reduceSum(x: Tensor, axes: number[], keepdims = true): Tensor {
  const y = reduce('ReduceSum', x, axes, keepdims);
  x.g.record('ReduceSum', [x], [y], ([g]) => [unreduce(g!, x, axes, keepdims)]);
  return y;
}

export function reduceMean(x: Tensor, axes: number[], keepdims = true): Tensor {
  const y = reduce('ReduceMean', x, axes, keepdims);
  x.g.record('ReduceMean', [x], [y], ([g]) => {
    const ax = axes.map((a) => normAxis(a, x.shape.length));
    const count = x.g.noGrad(() => {
      const dims = x.g.emit('Gather', [shapeOf(x), x.g.ints(ax)], { axis: 0 }, [{ dtype: 'int64', shape: [ax.length] }])[0]!;
      const n = x.g.emit('ReduceProd', [dims], { keepdims: 0 }, [{ dtype: 'int64', shape: [] }])[0]!;
      return cast(n, x.dtype);
    });
    return [div(unreduce(g!, x, axes, keepdims), count)];
  });
  return y;
}

/** Max without a gradient, to stabilise numerics: build it inside `g.noGrad`. */
export function reduceMaxNoGrad(x: Tensor, axes: number[], keepdims = true): Tensor {
  const y = reduce('ReduceMax', x, axes, keepdims);
  // Taped without a rule: left on a differentiated path, autodiff throws instead of silently dropping dmax/dx.
  x.g.record('ReduceMax', [x], [y], null);
  return y;
}

export function softmax(x: Tensor, axis = -1): Tensor {
  const [y] = x.g.emit('Softmax', [x], { axis }, [{ dtype: x.dtype, shape: x.shape }]);
  x.g.record('Softmax', [x], [y!], ([g]) => [mul(y!, sub(g!, reduceSum(mul(g!, y!), [axis], true)))]);
  return y!;
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  const [y] = x.g.emit('LogSoftmax', [x], { axis }, [{ dtype: x.dtype, shape: x.shape }]);
  x.g.record('LogSoftmax', [x], [y!], ([g]) => [sub(g!, mul(exp(y!), reduceSum(g!, [axis], true)))]);
  return y!;
}

/** LayerNorm over the last axis, fused forward. */
export function layerNorm(x: Tensor, w: Tensor, b: Tensor, eps: number): Tensor {
  const [y] = x.g.emit('LayerNormalization', [x, w, b], { axis: -1, epsilon: eps }, [{ dtype: x.dtype, shape: x.shape }]);
  x.g.record('LayerNormalization', [x, w, b], [y!], ([g], n) => {
    const mean = reduceMean(x, [-1]);
    const xc = sub(x, mean);
    const inv = reciprocal(sqrt(add(reduceMean(mul(xc, xc), [-1]), eps)));
    const xhat = mul(xc, inv);
    const gx = mul(g!, w);
    const dx = n[0] ? mul(inv, sub(sub(gx, reduceMean(gx, [-1])), mul(xhat, reduceMean(mul(gx, xhat), [-1])))) : null;
    return [dx, n[1] ? sumToShapeOf(mul(g!, xhat), w) : null, n[2] ? sumToShapeOf(g!, b) : null];
  });
  return y!;
}

/** RMSNorm over the last axis (Llama): x / sqrt(mean(x²) + eps) * w, fused forward. */
export function rmsNorm(x: Tensor, w: Tensor, eps: number): Tensor {
  const [y] = x.g.emit('RMSNormalization', [x, w], { axis: -1, epsilon: eps }, [{ dtype: x.dtype, shape: x.shape }]);
  x.g.record('RMSNormalization', [x, w], [y!], ([g], n) => {
    const inv = reciprocal(sqrt(add(reduceMean(mul(x, x), [-1]), eps)));
    const xhat = mul(x, inv);
    const gx = mul(g!, w);
    const dx = n[0] ? mul(inv, sub(gx, mul(xhat, reduceMean(mul(gx, xhat), [-1])))) : null;
    return [dx, n[1] ? sumToShapeOf(mul(g!, xhat), w) : null];
  });
  return y!;
}

// ---------------------------------------------------------------- linear algebra

export function transposeLast2(x: Tensor): Tensor {
  const r = x.shape.length;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
  return transpose(x, perm);
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.shape.length < 2 || b.shape.length < 2) throw new Error('matmul needs rank ≥ 2 operands');
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const shape = [...batch, a.shape[a.shape.length - 2]!, b.shape[b.shape.length - 1]!];
  const [y] = a.g.emit('MatMul', [a, b], {}, [{ dtype: a.dtype, shape }]);
  a.g.record('MatMul', [a, b], [y!], ([g], n) => {
    const da = n[0] ? sumToShapeOf(matmul(g!, transposeLast2(b)), a) : null;
    let db: Tensor | null = null;
    if (n[1]) {
      if (b.shape.length === 2 && a.shape.length > 2) {
        // A weight shared over the batch: one [K, M]ᵀ·[M, N] product instead of a batched one plus a sum.
        const k = a.shape[a.shape.length - 1]!;
        const a2 = reshape(a, [-1, k as number]);
        const g2 = reshape(g!, [-1, g!.shape[g!.shape.length - 1] as number]);
        db = gemm(a2, g2, { transA: true });
      } else {
        db = sumToShapeOf(matmul(transposeLast2(a), g!), b);
      }
    }
    return [da, db];
  });
  return y!;
}

/** 2-D product with optional transposes and bias: y = op(a) · op(b) (+ c, broadcast over rows). */
export function gemm(a: Tensor, b: Tensor, opts: { transA?: boolean; transB?: boolean; c?: Tensor } = {}): Tensor {
  const tA = !!opts.transA;
  const tB = !!opts.transB;
  const M = tA ? a.shape[1]! : a.shape[0]!;
  const N = tB ? b.shape[0]! : b.shape[1]!;
  const inputs = opts.c ? [a, b, opts.c] : [a, b];
  const [y] = a.g.emit('Gemm', inputs, { transA: tA ? 1 : 0, transB: tB ? 1 : 0 }, [{ dtype: a.dtype, shape: [M, N] }]);
  a.g.record('Gemm', inputs, [y!], ([g], n) => {
    // y = A'·B' + c with A' = op(a), B' = op(b): dA' = g·B'ᵀ, dB' = A'ᵀ·g, dc = g summed to c's shape.
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (n[0]) da = tA ? gemm(b, g!, { transA: tB, transB: true }) : gemm(g!, b, { transB: !tB });
    if (n[1]) db = tB ? gemm(g!, a, { transA: true, transB: tA }) : gemm(a, g!, { transA: !tA });
    return opts.c ? [da, db, n[2] ? sumToShapeOf(g!, opts.c) : null] : [da, db];
  });
  return y!;
}

// ---------------------------------------------------------------- layout

export function transpose(x: Tensor, perm: number[]): Tensor {
  const [y] = x.g.emit('Transpose', [x], { perm }, [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) }]);
  const inv: number[] = [];
  perm.forEach((p, i) => (inv[p] = i));
  x.g.record('Transpose', [x], [y!], ([g]) => [transpose(g!, inv)]);
  return y!;
}

/** ONNX Reshape with a constant target (0 copies a dimension, -1 is inferred). */
export function reshape(x: Tensor, dims: number[]): Tensor {
  const shape: Dim[] = dims.map((d, i) => (d === 0 ? x.shape[i]! : d === -1 ? inferredDim(x.shape, dims) : d));
  const [y] = x.g.emit('Reshape', [x, x.g.ints(dims)], {}, [{ dtype: x.dtype, shape }]);
  x.g.record('Reshape', [x], [y!], ([g]) => [reshapeLike(g!, x)]);
  return y!;
}

function inferredDim(shape: Shape, dims: number[]): Dim {
  const total = shape.reduce<number | null>((acc, d) => (acc !== null && typeof d === 'number' ? acc * d : null), 1);
  const known = dims.reduce<number | null>((acc, d, i) => {
    if (acc === null || d === -1) return acc;
    const v = d === 0 ? shape[i] : d;
    return typeof v === 'number' ? acc * v : null;
  }, 1);
  return total !== null && known !== null && known !== 0 ? total / known : '?';
}

/** Reshape to the runtime shape of `like`. */
export function reshapeLike(x: Tensor, like: Tensor): Tensor {
  const [y] = x.g.emit('Reshape', [x, shapeOf(like)], {}, [{ dtype: x.dtype, shape: like.shape }]);
  x.g.record('Reshape', [x], [y!], ([g]) => [reshapeLike(g!, x)]);
  return y!;
}

export function unsqueeze(x: Tensor, axes: number[]): Tensor {
  const rank = x.shape.length + axes.length;
  const ax = axes.map((a) => normAxis(a, rank)).sort((p, q) => p - q);
  const shape: Dim[] = [...x.shape];
  for (const a of ax) shape.splice(a, 0, 1);
  const [y] = x.g.emit('Unsqueeze', [x, x.g.ints(ax)], {}, [{ dtype: x.dtype, shape }]);
  x.g.record('Unsqueeze', [x], [y!], ([g]) => [reshapeLike(g!, x)]);
  return y!;
}

export function squeeze(x: Tensor, axes: number[]): Tensor {
  const ax = axes.map((a) => normAxis(a, x.shape.length));
  const [y] = x.g.emit('Squeeze', [x, x.g.ints(ax)], {}, [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !ax.includes(i)) }]);
  x.g.record('Squeeze', [x], [y!], ([g]) => [reshapeLike(g!, x)]);
  return y!;
}

export function concat(xs: Tensor[], axis: number): Tensor {
  const r = xs[0]!.shape.length;
  const a = normAxis(axis, r);
  const shape: Dim[] = [...xs[0]!.shape];
  const parts = xs.map((x) => x.shape[a]!);
  shape[a] = parts.every((p) => typeof p === 'number') ? (parts as number[]).reduce((s, p) => s + p, 0) : '?';
  const [y] = xs[0]!.g.emit('Concat', xs, { axis: a }, [{ dtype: xs[0]!.dtype, shape }]);
  xs[0]!.g.record('Concat', xs, [y!], ([g], n) => {
    const sizes = xs[0]!.g.noGrad(() => concatInts(xs.map((x) => dimOf(x, a))));
    const pieces = g!.g.emit('Split', [g!, sizes], { axis: a }, xs.map((x) => ({ dtype: x.dtype, shape: x.shape })));
    return pieces.map((p, i) => (n[i] ? p : null));
  });
  return y!;
}

function concatInts(parts: Tensor[]): Tensor {
  if (parts.length === 1) return parts[0]!;
  return parts[0]!.g.emit('Concat', parts, { axis: 0 }, [{ dtype: 'int64', shape: [parts.length] }])[0]!;
}

/** x[start:end] along one axis; start and end are non-negative numbers or int64 [1] tensors. */
export function slice(x: Tensor, axis: number, start: number | Tensor, end: number | Tensor, len: Dim = '?'): Tensor {
  const g0 = x.g;
  const a = normAxis(axis, x.shape.length);
  // ONNX clamps bounds to the axis length (x[:, 2:] as end = large); clamp known ones so shape and pads agree.
  const dimA = x.shape[a];
  const clamp = (v: number): number => (typeof dimA === 'number' ? Math.min(v, dimA) : v);
  const s = typeof start === 'number' ? g0.ints([clamp(start)]) : start;
  const e = typeof end === 'number' ? g0.ints([clamp(end)]) : end;
  const outLen = typeof start === 'number' && typeof end === 'number' ? Math.max(0, clamp(end) - clamp(start)) : len;
  const shape = x.shape.map((d, i) => (i === a ? outLen : d));
  const [y] = g0.emit('Slice', [x, s, e, g0.ints([a])], {}, [{ dtype: x.dtype, shape }]);
  g0.record('Slice', [x], [y!], ([g]) => {
    const pads = g0.noGrad(() => {
      const r = x.shape.length;
      const zero = g0.ints([0]);
      const dim = dimOf(x, a);
      const end1 = x.g.emit('Min', [e, dim], {}, [{ dtype: 'int64', shape: [1] }])[0]!;
      const after = x.g.emit('Sub', [dim, end1], {}, [{ dtype: 'int64', shape: [1] }])[0]!;
      const parts: Tensor[] = [];
      for (let i = 0; i < r; i++) parts.push(i === a ? s : zero);
      for (let i = 0; i < r; i++) parts.push(i === a ? after : zero);
      return concatInts(parts);
    });
    return [g!.g.emit('Pad', [g!, pads], { mode: 'constant' }, [{ dtype: x.dtype, shape: x.shape }])[0]!];
  });
  return y!;
}

/** Rows of `data` (axis 0) picked by integer `indices`: an embedding lookup. */
export function gather(data: Tensor, indices: Tensor): Tensor {
  const [y] = data.g.emit('Gather', [data, indices], { axis: 0 }, [{ dtype: data.dtype, shape: [...indices.shape, ...data.shape.slice(1)] }]);
  data.g.record('Gather', [data, indices], [y!], ([g]) => {
    const zeros = zerosLike(data);
    const idx = data.g.noGrad(() => unsqueeze(indices, [-1]));
    return [data.g.emit('ScatterND', [zeros, idx, g!], { reduction: 'add' }, [{ dtype: data.dtype, shape: data.shape }])[0]!, null];
  });
  return y!;
}

/** data[..., idx[...], ...] along `axis`, indices of the same rank as data. */
export function gatherElements(data: Tensor, idx: Tensor, axis: number): Tensor {
  const [y] = data.g.emit('GatherElements', [data, idx], { axis }, [{ dtype: data.dtype, shape: idx.shape }]);
  data.g.record('GatherElements', [data, idx], [y!], ([g]) => {
    const zeros = zerosLike(data);
    return [data.g.emit('ScatterElements', [zeros, idx, g!], { axis, reduction: 'add' }, [{ dtype: data.dtype, shape: data.shape }])[0]!, null];
  });
  return y!;
}

/** Rows picked per batch entry: data [B, N, H], idx [B, K] → [B, K, H]. Inference only. */
export function gatherRows(data: Tensor, idx: Tensor): Tensor {
  const idx3 = unsqueeze(idx, [-1]);
  const [y] = data.g.emit('GatherND', [data, idx3], { batch_dims: 1 }, [{ dtype: data.dtype, shape: [data.shape[0]!, idx.shape[1]!, ...data.shape.slice(2)] }]);
  // Taped without a rule: on a differentiated path autodiff throws rather than returning a zero gradient.
  data.g.record('GatherND', [data, idx3], [y!], null);
  return y!;
}

/** Reshape to a shape computed in the graph (an int64 [rank] tensor); `shape` is its build-time view. */
export function reshapeDyn(x: Tensor, target: Tensor, shape: Shape): Tensor {
  const [y] = x.g.emit('Reshape', [x, target], {}, [{ dtype: x.dtype, shape }]);
  x.g.record('Reshape', [x], [y!], ([g]) => [reshapeLike(g!, x)]);
  return y!;
}

/** Concatenate int64 [k] pieces into one shape tensor (plumbing, no gradient). */
export function shapeTensor(parts: (Tensor | number[])[]): Tensor {
  const g0 = parts.find((p): p is Tensor => !Array.isArray(p))?.g;
  if (!g0) throw new Error('shapeTensor needs at least one tensor part');
  const ts = parts.map((p) => (Array.isArray(p) ? g0.ints(p) : p));
  return ts.length === 1 ? ts[0]! : g0.emit('Concat', ts, { axis: 0 }, [{ dtype: 'int64', shape: ['?'] }])[0]!;
}
