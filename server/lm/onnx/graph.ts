// A small typed builder for ONNX graphs with a gradient tape.
//
// Every op (see ops.ts) emits its forward ONNX nodes through `Graph.emit` and records, next to them,
// a vector-Jacobian rule that itself emits ONNX nodes. `gradients()` in autodiff.ts walks the tape
// backwards, so one model definition yields inference, scoring and training graphs.
import onnxProto from 'onnx-proto';
import type { onnx as OnnxNs } from 'onnx-proto';

const { onnx } = onnxProto as unknown as { onnx: typeof OnnxNs };
export { onnx };

export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool';
/** A dimension: a number when known at build time, a symbol otherwise ('?' = unknown). */
export type Dim = number | string;
export type Shape = Dim[];

export const ONNX_DTYPE: Record<DType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float64: onnx.TensorProto.DataType.DOUBLE,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
};

export const isFloat = (d: DType): boolean => d === 'float32' || d === 'float64';

export type TypedData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export interface Tensor {
  readonly g: Graph;
  readonly id: number;
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Shape;
}

/**
 * A vector-Jacobian rule: given the cotangents of the outputs (null = zero) and which inputs need a
 * cotangent, emit the cotangents of those inputs (null elsewhere). Skipping unneeded inputs matters:
 * the score graph must not pay for weight gradients it never reads.
 */
export type Vjp = (outGrads: (Tensor | null)[], needs: readonly boolean[]) => (Tensor | null)[];

export interface TapeEntry {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  readonly outputs: readonly Tensor[];
  readonly vjp: Vjp | null;
}

export type AttrValue = number | string | number[] | boolean | { tensor: OnnxNs.ITensorProto };
export type Attrs = Record<string, AttrValue | undefined>;

interface Initializer {
  name: string;
  dtype: DType;
  dims: number[];
  /**
   * The values, or a function that reads them when the graph is emitted. Lazy weights let the
   * emitter stream a model to an external-data file one tensor at a time, instead of holding every
   * weight in memory at once next to onnxruntime's own copy.
   */
  data: TypedData | (() => TypedData);
}

const BYTES_PER: Record<DType, number> = { float32: 4, float64: 8, int64: 8, int32: 4, bool: 1 };

/** The initializer's values (reading them now if they are lazy). */
export function initializerData(i: Initializer): TypedData {
  return typeof i.data === 'function' ? i.data() : i.data;
}

/** Size in bytes, from dtype and dims, without reading lazy values. */
export function initializerByteLength(i: Initializer): number {
  return i.dims.reduce((a, d) => a * d, 1) * BYTES_PER[i.dtype];
}

export class Graph {
  readonly nodes: OnnxNs.INodeProto[] = [];
  readonly tape: TapeEntry[] = [];
  readonly inputs: Tensor[] = [];
  readonly outputs: { t: Tensor; name: string }[] = [];
  readonly initializers: Initializer[] = [];
  private nextId = 0;
  private readonly usedNames = new Set<string>();
  private readonly constCache = new Map<string, Tensor>();
  /** Recording is switched off while emitting non-differentiable helper subgraphs. */
  private recording = true;

  constructor(readonly name = 'attune') {}

  private freshName(hint: string): string {
    let name = hint;
    for (let i = 1; this.usedNames.has(name); i++) name = `${hint}_${i}`;
    this.usedNames.add(name);
    return name;
  }

  private makeTensor(dtype: DType, shape: Shape, hint: string): Tensor {
    return { g: this, id: this.nextId++, name: this.freshName(hint), dtype, shape: [...shape] };
  }

  input(name: string, dtype: DType, shape: Shape): Tensor {
    if (this.usedNames.has(name)) throw new Error(`graph input name already used: ${name}`);
    const t = this.makeTensor(dtype, shape, name);
    this.inputs.push(t);
    return t;
  }

  output(t: Tensor, name: string): void {
    if (this.usedNames.has(name)) throw new Error(`graph output name already used: ${name}`);
    this.usedNames.add(name);
    this.outputs.push({ t, name });
  }

  /**
   * Nodes with outputs under their public names. A tensor produced by a node is renamed in place:
   * an Identity would copy it on every run, and the KV cache is the largest tensor there is. Graph
   * inputs, initializers and tensors output twice still go through an Identity.
   */
  finalNodes(): OnnxNs.INodeProto[] {
    const produced = new Set(this.nodes.flatMap((n) => n.output ?? []));
    const rename = new Map<string, string>();
    const extra: OnnxNs.INodeProto[] = [];
    for (const { t, name } of this.outputs) {
      if (produced.has(t.name) && !rename.has(t.name)) rename.set(t.name, name);
      else extra.push(onnx.NodeProto.create({ opType: 'Identity', input: [rename.get(t.name) ?? t.name], output: [name], name: `out_${name}` }));
    }
    const r = (x: string): string => rename.get(x) ?? x;
    return [
      ...this.nodes.map((n) => onnx.NodeProto.create({ ...n, input: (n.input ?? []).map(r), output: (n.output ?? []).map(r) })),
      ...extra,
    ];
  }

  initializer(name: string, dtype: DType, dims: number[], data: TypedData | (() => TypedData)): Tensor {
    const t = this.makeTensor(dtype, dims, name);
    this.initializers.push({ name: t.name, dtype, dims, data });
    return t;
  }

  /** A small constant, de-duplicated by value. */
  constant(dtype: DType, dims: number[], values: number[]): Tensor {
    const key = `${dtype}|${dims.join(',')}|${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const data = typedArrayFor(dtype, values);
    const t = this.initializer('const', dtype, dims, data);
    this.constCache.set(key, t);
    return t;
  }

  scalar(value: number, dtype: DType): Tensor {
    return this.constant(dtype, [], [value]);
  }

  ints(values: number[]): Tensor {
    return this.constant('int64', [values.length], values);
  }

  /** Emit one ONNX node; `outs` gives each output's dtype and shape. */
  emit(opType: string, inputs: (Tensor | null)[], attrs: Attrs, outs: { dtype: DType; shape: Shape }[], domain = ''): Tensor[] {
    const outputs = outs.map((o) => this.makeTensor(o.dtype, o.shape, opType.toLowerCase()));
    const node = onnx.NodeProto.create({
      opType,
      domain,
      name: this.freshName(`n_${opType}`),
      input: inputs.map((t) => (t ? t.name : '')),
      output: outputs.map((t) => t.name),
      attribute: Object.entries(attrs)
        .filter((e): e is [string, AttrValue] => e[1] !== undefined)
        .map(([k, v]) => makeAttr(k, v)),
    });
    this.nodes.push(node);
    return outputs;
  }

  record(op: string, inputs: Tensor[], outputs: Tensor[], vjp: Vjp | null): void {
    if (this.recording) this.tape.push({ op, inputs, outputs, vjp });
  }

  /** Run `fn` without recording: for index arithmetic, masks and other non-differentiable plumbing. */
  noGrad<T>(fn: () => T): T {
    const prev = this.recording;
    this.recording = false;
    try {
      return fn();
    } finally {
      this.recording = prev;
    }
  }

  get isRecording(): boolean {
    return this.recording;
  }
}

export function typedArrayFor(dtype: DType, values: number[]): TypedData {
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values);
    case 'float64':
      return Float64Array.from(values);
    case 'int64':
      return BigInt64Array.from(values.map((v) => BigInt(v)));
    case 'int32':
      return Int32Array.from(values);
    case 'bool':
      return Uint8Array.from(values.map((v) => (v ? 1 : 0)));
  }
}

function makeAttr(name: string, v: AttrValue): OnnxNs.IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    return Number.isInteger(v) && !Object.is(v, -0) && !isFloatAttr(name)
      ? { name, type: A.INT, i: v }
      : { name, type: A.FLOAT, f: v };
  }
  if (typeof v === 'boolean') return { name, type: A.INT, i: v ? 1 : 0 };
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  return { name, type: A.TENSOR, t: v.tensor };
}

// Attributes that ONNX declares as float even when the value happens to be integral.
const FLOAT_ATTRS = new Set(['alpha', 'beta', 'epsilon', 'scale', 'gamma', 'bias', 'lambd', 'value_float']);
function isFloatAttr(name: string): boolean {
  return FLOAT_ATTRS.has(name);
}

export function tensorProto(name: string, dtype: DType, dims: number[], data: TypedData): OnnxNs.ITensorProto {
  return onnx.TensorProto.create({
    name,
    dims,
    dataType: ONNX_DTYPE[dtype],
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}
