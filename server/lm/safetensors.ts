// Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
//   [u64 little-endian header length N][N bytes of JSON header][raw tensor data]
// The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} relative to the
// start of the data section, plus an optional "__metadata__" string map.
//
// Readers keep only the header in memory and read each tensor from the file on demand, so a 2 GB
// checkpoint is never held twice. Writers stream tensor by tensor for the same reason, and accept
// lazily produced tensors so a generator never needs the whole model at once.
import fs from 'node:fs';
import path from 'node:path';
import { LmError } from './errors.ts';

export type SafetensorsDtype =
  | 'F64' | 'F32' | 'F16' | 'BF16'
  | 'I64' | 'I32' | 'I16' | 'I8'
  | 'U64' | 'U32' | 'U16' | 'U8'
  | 'BOOL' | 'F8_E4M3' | 'F8_E5M2';

export type WritableDtype = 'F32' | 'F16' | 'BF16';

const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

export const dtypeByteSize = (dtype: SafetensorsDtype): number => DTYPE_BYTES[dtype];

const isKnownDtype = (d: unknown): d is SafetensorsDtype =>
  typeof d === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, d);

export interface TensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
}

/** A set of named tensors backed by one safetensors file or by a sharded set of them. */
export interface WeightSource {
  /** The file (single) or directory (sharded) this reads from; used in error messages. */
  readonly path: string;
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  /** The tensor converted to float32 (from F32, F16, BF16 or F64). */
  getFloat32(name: string): Float32Array;
  /** The tensor's raw little-endian bytes as stored. */
  getBytes(name: string): Uint8Array;
  /** The "__metadata__" map (merged over shards). */
  metadata(): Record<string, string>;
  /** Closes open file descriptors. Reads after close reopen the file. */
  close(): void;
}

// Reading past 2 GiB in one readSync call is not allowed; stay well under it.
const IO_CHUNK = 1 << 30;
// The reference implementation refuses headers above 100 MB; a bigger one means a corrupt length.
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function requireLittleEndian(what: string): void {
  if (!LITTLE_ENDIAN) {
    throw new LmError('unsupported_model', `${what}: safetensors I/O needs a little-endian host`);
  }
}

// ---------------------------------------------------------------------------------------------
// float16 / bfloat16 <-> float32, by bit manipulation (no tables). Round to nearest, ties to even.

const cvtF32 = new Float32Array(1);
const cvtU32 = new Uint32Array(cvtF32.buffer);

/** float32 bits → IEEE binary16 bits, round to nearest even; overflow → ±inf, NaN stays NaN. */
export function f32BitsToF16Bits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  if (exp >= 143) return sign | 0x7c00; // |x| >= 65536: beyond even the rounding range of 65504
  if (exp >= 113) {
    // normal half: rebias exponent 127 → 15 and keep 10 mantissa bits
    let h = ((exp - 112) << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry may roll into inf: correct
    return sign | h;
  }
  if (exp < 102) return sign; // |x| < 2^-25: rounds to zero
  // subnormal half: value / 2^-24 = m * 2^(exp-126) with the implicit bit made explicit
  const m = mant | 0x800000;
  const shift = 126 - exp; // 14..24
  let q = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (q & 1) !== 0)) q++; // may become 0x400, the smallest normal
  return sign | q;
}

/** IEEE binary16 bits → float32 bits (exact). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp === 0) {
    if (mant === 0) return sign >>> 0;
    // subnormal: normalise so the leading 1 becomes the implicit bit
    let e = 113;
    while ((mant & 0x400) === 0) {
      mant <<= 1;
      e--;
    }
    return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
  }
  return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
}

/** float32 bits → bfloat16 bits, round to nearest even; NaN stays (quiet) NaN. */
export function f32BitsToBf16Bits(b: number): number {
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f32ToF16(x: number): number {
  cvtF32[0] = x;
  return f32BitsToF16Bits(cvtU32[0]!);
}

export function f16ToF32(h: number): number {
  cvtU32[0] = f16BitsToF32Bits(h);
  return cvtF32[0]!;
}

export function f32ToBf16(x: number): number {
  cvtF32[0] = x;
  return f32BitsToBf16Bits(cvtU32[0]!);
}

export function bf16ToF32(h: number): number {
  cvtU32[0] = (h & 0xffff) << 16;
  return cvtF32[0]!;
}

/** Converts a whole array of float32 values to binary16 bits. */
export function float32ToFloat16Array(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  return out;
}

export function float16ToFloat32Array(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = f16BitsToF32Bits(src[i]!);
  return out;
}

export function float32ToBfloat16Array(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBf16Bits(bits[i]!);
  return out;
}

export function bfloat16ToFloat32Array(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = (src[i]! << 16) >>> 0;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading

interface Entry {
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number; // absolute file offset
  byteLength: number;
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function corrupt(file: string, why: string, details?: Record<string, unknown>): LmError {
  return new LmError('file_corrupt', `${file}: not a valid safetensors file (${why})`, { file, ...details });
}

function readFully(fd: number, target: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < target.length) {
    const want = Math.min(IO_CHUNK, target.length - done);
    const n = fs.readSync(fd, target, done, want, position + done);
    if (n <= 0) throw corrupt(file, `unexpected end of file at byte ${position + done}`);
    done += n;
  }
}

function statOrMissing(file: string): fs.Stats {
  try {
    return fs.statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new LmError('file_missing', `${file}: file not found`, { file });
    }
    throw e;
  }
}

class SafetensorsFile implements WeightSource {
  private fd: number | null = null;

  constructor(
    readonly path: string,
    private readonly entries: Map<string, Entry>,
    private readonly meta: Record<string, string>,
  ) {}

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new LmError('tensor_missing', `${this.path}: no tensor named '${name}'`, { file: this.path, tensor: name });
    return e;
  }

  info(name: string): TensorInfo {
    const e = this.entry(name);
    return { dtype: e.dtype, shape: [...e.shape] };
  }

  metadata(): Record<string, string> {
    return { ...this.meta };
  }

  private readInto(e: Entry, target: Uint8Array): void {
    if (this.fd === null) this.fd = fs.openSync(this.path, 'r');
    readFully(this.fd, target, e.begin, this.path);
  }

  getBytes(name: string): Uint8Array {
    const e = this.entry(name);
    const out = new Uint8Array(e.byteLength);
    this.readInto(e, out);
    return out;
  }

  getFloat32(name: string): Float32Array {
    const e = this.entry(name);
    requireLittleEndian(this.path);
    const n = e.byteLength / DTYPE_BYTES[e.dtype];
    switch (e.dtype) {
      case 'F32': {
        const out = new Float32Array(n);
        this.readInto(e, new Uint8Array(out.buffer));
        return out;
      }
      case 'F16':
      case 'BF16': {
        const raw = new Uint16Array(n);
        this.readInto(e, new Uint8Array(raw.buffer));
        return e.dtype === 'F16' ? float16ToFloat32Array(raw) : bfloat16ToFloat32Array(raw);
      }
      case 'F64': {
        const raw = new Float64Array(n);
        this.readInto(e, new Uint8Array(raw.buffer));
        return Float32Array.from(raw);
      }
      default:
        throw new LmError(
          'unsupported_dtype',
          `${this.path}: tensor '${name}' has dtype ${e.dtype}; only F32, F16, BF16 and F64 can be read as float`,
          { file: this.path, tensor: name, dtype: e.dtype },
        );
    }
  }

  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Opens one .safetensors file, validating its header against the file size. */
export function openSafetensors(file: string): WeightSource {
  const size = statOrMissing(file).size;
  if (size < 8) throw corrupt(file, `only ${size} bytes, shorter than the 8-byte header length`);
  const fd = fs.openSync(file, 'r');
  let headerText: string;
  let headerLen: bigint;
  try {
    const lenBuf = new Uint8Array(8);
    readFully(fd, lenBuf, 0, file);
    headerLen = new DataView(lenBuf.buffer).getBigUint64(0, true);
    if (headerLen > BigInt(Math.min(size - 8, MAX_HEADER_BYTES))) {
      throw corrupt(file, `header length ${headerLen} exceeds the file size ${size}`);
    }
    const headerBuf = new Uint8Array(Number(headerLen));
    readFully(fd, headerBuf, 8, file);
    try {
      headerText = new TextDecoder('utf-8', { fatal: true }).decode(headerBuf);
    } catch {
      throw corrupt(file, 'header is not valid UTF-8');
    }
  } finally {
    fs.closeSync(fd);
  }
  const dataStart = 8 + Number(headerLen);
  const dataLen = size - dataStart;

  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (e) {
    throw corrupt(file, `header is not JSON: ${(e as Error).message}`);
  }
  if (!isRecord(header)) throw corrupt(file, 'header is not a JSON object');

  const entries = new Map<string, Entry>();
  let meta: Record<string, string> = {};
  const spans: Array<[number, number, string]> = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isRecord(raw) || !Object.values(raw).every((v) => typeof v === 'string')) {
        throw corrupt(file, '__metadata__ must map strings to strings');
      }
      meta = raw as Record<string, string>;
      continue;
    }
    if (!isRecord(raw)) throw corrupt(file, `entry '${name}' is not an object`);
    const { dtype, shape, data_offsets: offsets } = raw;
    if (!isKnownDtype(dtype)) throw corrupt(file, `tensor '${name}' has unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw corrupt(file, `tensor '${name}' has invalid shape ${JSON.stringify(shape)}`);
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
    ) {
      throw corrupt(file, `tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [b, e] = offsets as [number, number];
    if (e > dataLen) {
      throw corrupt(file, `tensor '${name}' ends at data byte ${e} but the file holds only ${dataLen} data bytes (truncated?)`, {
        tensor: name,
      });
    }
    const expected = numel(shape as number[]) * DTYPE_BYTES[dtype];
    if (e - b !== expected) {
      throw corrupt(file, `tensor '${name}' spans ${e - b} bytes but ${dtype}${JSON.stringify(shape)} needs ${expected}`, {
        tensor: name,
      });
    }
    entries.set(name, { dtype, shape: shape as number[], begin: dataStart + b, byteLength: expected });
    if (e > b) spans.push([b, e, name]);
  }
  spans.sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]![0] < spans[i - 1]![1]) {
      throw corrupt(file, `tensors '${spans[i - 1]![2]}' and '${spans[i]![2]}' overlap`);
    }
  }
  return new SafetensorsFile(file, entries, meta);
}

class ShardedWeights implements WeightSource {
  constructor(
    readonly path: string,
    private readonly owner: Map<string, WeightSource>,
    private readonly shards: WeightSource[],
  ) {}

  names(): string[] {
    return [...this.owner.keys()];
  }

  has(name: string): boolean {
    return this.owner.has(name);
  }

  private shardOf(name: string): WeightSource {
    const s = this.owner.get(name);
    if (!s) throw new LmError('tensor_missing', `${this.path}: no tensor named '${name}'`, { file: this.path, tensor: name });
    return s;
  }

  info(name: string): TensorInfo {
    return this.shardOf(name).info(name);
  }

  getFloat32(name: string): Float32Array {
    return this.shardOf(name).getFloat32(name);
  }

  getBytes(name: string): Uint8Array {
    return this.shardOf(name).getBytes(name);
  }

  metadata(): Record<string, string> {
    return Object.assign({}, ...this.shards.map((s) => s.metadata())) as Record<string, string>;
  }

  close(): void {
    for (const s of this.shards) s.close();
  }
}

export const SINGLE_WEIGHTS_FILE = 'model.safetensors';
export const SHARD_INDEX_FILE = 'model.safetensors.index.json';

/**
 * Opens the weights of a Hugging Face model directory: `model.safetensors`, or else the shards
 * listed by `model.safetensors.index.json` (weight_map: tensor name → shard file).
 */
export function openWeights(dir: string): WeightSource {
  const single = path.join(dir, SINGLE_WEIGHTS_FILE);
  if (fs.existsSync(single)) return openSafetensors(single);
  const indexPath = path.join(dir, SHARD_INDEX_FILE);
  if (!fs.existsSync(indexPath)) {
    throw new LmError('file_missing', `${dir}: no weights found (looked for ${single} and ${indexPath})`, {
      file: single,
      index: indexPath,
    });
  }
  let index: unknown;
  try {
    index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new LmError('file_corrupt', `${indexPath}: not valid JSON (${(e as Error).message})`, { file: indexPath });
  }
  const weightMap = isRecord(index) ? index['weight_map'] : undefined;
  if (!isRecord(weightMap) || !Object.values(weightMap).every((v) => typeof v === 'string')) {
    throw new LmError('file_corrupt', `${indexPath}: missing or invalid "weight_map" (tensor name → shard file)`, {
      file: indexPath,
    });
  }
  const shardFiles = new Map<string, WeightSource>();
  const owner = new Map<string, WeightSource>();
  try {
    for (const [name, shardName] of Object.entries(weightMap as Record<string, string>)) {
      if (path.isAbsolute(shardName) || shardName.split(/[\\/]/).includes('..')) {
        throw new LmError('file_corrupt', `${indexPath}: shard path '${shardName}' leaves the model directory`, {
          file: indexPath,
        });
      }
      let shard = shardFiles.get(shardName);
      if (!shard) {
        shard = openSafetensors(path.join(dir, shardName));
        shardFiles.set(shardName, shard);
      }
      if (!shard.has(name)) {
        throw new LmError('file_corrupt', `${shard.path}: tensor '${name}' listed in ${indexPath} is not in the shard`, {
          file: shard.path,
          index: indexPath,
          tensor: name,
        });
      }
      owner.set(name, shard);
    }
  } catch (e) {
    for (const s of shardFiles.values()) s.close();
    throw e;
  }
  return new ShardedWeights(dir, owner, [...shardFiles.values()]);
}

// ---------------------------------------------------------------------------------------------
// Writing

/** A tensor to write: either its data, or a function producing it when its turn comes. */
export type TensorToWrite =
  | { name: string; shape: number[]; data: Float32Array }
  | { name: string; shape: number[]; produce: () => Float32Array };

export interface WriteOptions {
  dtype?: WritableDtype;
  metadata?: Record<string, string>;
}

function tensorData(t: TensorToWrite): Float32Array {
  const data = 'data' in t ? t.data : t.produce();
  if (!(data instanceof Float32Array) || data.length !== numel(t.shape)) {
    throw new LmError(
      'bad_argument',
      `tensor '${t.name}': data has ${data instanceof Float32Array ? data.length : 'no'} float32 values but shape ${JSON.stringify(t.shape)} needs ${numel(t.shape)}`,
      { tensor: t.name },
    );
  }
  return data;
}

function checkTensors(tensors: readonly TensorToWrite[], where: string): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name.length === 0) {
      throw new LmError('bad_argument', `${where}: invalid tensor name '${t.name}'`, { tensor: t.name });
    }
    if (seen.has(t.name)) throw new LmError('bad_argument', `${where}: duplicate tensor name '${t.name}'`, { tensor: t.name });
    seen.add(t.name);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new LmError('bad_argument', `${where}: tensor '${t.name}' has invalid shape ${JSON.stringify(t.shape)}`, {
        tensor: t.name,
      });
    }
  }
}

const tensorBytes = (shape: readonly number[], dtype: WritableDtype): number => numel(shape) * DTYPE_BYTES[dtype];

function writeFully(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) {
    done += fs.writeSync(fd, bytes, done, Math.min(IO_CHUNK, bytes.length - done));
  }
}

function encodeTensor(data: Float32Array, dtype: WritableDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const half = dtype === 'F16' ? float32ToFloat16Array(data) : float32ToBfloat16Array(data);
  return new Uint8Array(half.buffer);
}

/**
 * Writes tensors to one safetensors file (atomically: a temporary file renamed into place).
 * Data is converted and written one tensor at a time.
 */
export function writeSafetensors(file: string, tensors: readonly TensorToWrite[], opts: WriteOptions = {}): void {
  requireLittleEndian(file);
  const dtype = opts.dtype ?? 'F32';
  if (!['F32', 'F16', 'BF16'].includes(dtype)) {
    throw new LmError('unsupported_dtype', `${file}: cannot write dtype ${String(dtype)}; use F32, F16 or BF16`, { file, dtype });
  }
  checkTensors(tensors, file);
  const header: Record<string, unknown> = {};
  if (opts.metadata && Object.keys(opts.metadata).length > 0) header['__metadata__'] = opts.metadata;
  let offset = 0;
  for (const t of tensors) {
    const n = tensorBytes(t.shape, dtype);
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  const rawLen = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (rawLen % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const lenBytes = new Uint8Array(8);
  new DataView(lenBytes.buffer).setBigUint64(0, BigInt(headerBytes.length), true);

  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    writeFully(fd, lenBytes);
    writeFully(fd, headerBytes);
    for (const t of tensors) writeFully(fd, encodeTensor(tensorData(t), dtype));
    fs.closeSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.renameSync(tmp, file);
}

export interface ShardedWriteResult {
  indexPath: string;
  shardFiles: string[];
  totalSize: number;
}

/**
 * Writes tensors as HF-style shards `model-0000i-of-0000n.safetensors` of at most `maxShardBytes`
 * each (a single bigger tensor gets a shard of its own), plus `model.safetensors.index.json`.
 */
export function writeShardedSafetensors(
  dir: string,
  tensors: readonly TensorToWrite[],
  maxShardBytes: number,
  opts: WriteOptions = {},
): ShardedWriteResult {
  if (!(Number.isFinite(maxShardBytes) && maxShardBytes > 0)) {
    throw new LmError('bad_argument', `maxShardBytes must be a positive number, got ${maxShardBytes}`, { maxShardBytes });
  }
  const dtype = opts.dtype ?? 'F32';
  checkTensors(tensors, dir);
  const groups: TensorToWrite[][] = [];
  let current: TensorToWrite[] = [];
  let currentBytes = 0;
  for (const t of tensors) {
    const n = tensorBytes(t.shape, dtype);
    if (current.length > 0 && currentBytes + n > maxShardBytes) {
      groups.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(t);
    currentBytes += n;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);

  const pad = (i: number): string => String(i).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  const shardFiles: string[] = [];
  let totalSize = 0;
  fs.mkdirSync(dir, { recursive: true });
  groups.forEach((group, i) => {
    const shardName = `model-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`;
    const shardPath = path.join(dir, shardName);
    writeSafetensors(shardPath, group, { ...opts, metadata: { format: 'pt', ...opts.metadata } });
    for (const t of group) {
      weightMap[t.name] = shardName;
      totalSize += tensorBytes(t.shape, dtype);
    }
    shardFiles.push(shardPath);
  });
  const indexPath = path.join(dir, SHARD_INDEX_FILE);
  fs.writeFileSync(indexPath, JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n');
  return { indexPath, shardFiles, totalSize };
}
