import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  bf16ToF32,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  float16ToFloat32Array,
  float32ToFloat16Array,
  openSafetensors,
  openWeights,
  writeSafetensors,
  writeShardedSafetensors,
} from '../../../server/lm/safetensors.ts';
import { throwsLm } from '../../helpers/lm-errors.ts';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-safetensors-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let counter = 0;
const tmpPath = (name: string): string => path.join(tmpRoot, `${counter++}-${name}`);
const tmpDir = (): string => {
  const d = tmpPath('dir');
  fs.mkdirSync(d);
  return d;
};


/** A safetensors file built by hand, for headers the writer would never produce. */
function writeRaw(file: string, header: unknown, data: Uint8Array, opts: { lengthOverride?: bigint } = {}): void {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(opts.lengthOverride ?? BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, data]));
}

const f32 = (xs: number[]): Float32Array => Float32Array.from(xs);

describe('float16 conversion', () => {
  test('known bit patterns', () => {
    const cases: Array<[number, number]> = [
      [1.0, 0x3c00],
      [-2.5, 0xc100],
      [0.1, 0x2e66],
      [65504, 0x7bff], // largest finite
      [65519, 0x7bff], // below the rounding midpoint of 65504 and 65536
      [65520, 0x7c00], // the midpoint rounds to even: infinity
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [0, 0x0000],
      [-0, 0x8000],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [1023 * 2 ** -24, 0x03ff], // largest subnormal
      [-(2 ** -24) * 3, 0x8003],
      [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal: to even (0)
      [1.5 * 2 ** -25, 0x0001],
      [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal units: to even (2)
      [1 + 2 ** -11, 0x3c00], // tie: stays at even 1.0
      [1 + 3 * 2 ** -11, 0x3c02], // tie: up to even
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
      [1e-10, 0x0000],
    ];
    for (const [x, bits] of cases) {
      assert.equal(f32ToF16(x), bits, `f32ToF16(${x}) = 0x${f32ToF16(x).toString(16)}, want 0x${bits.toString(16)}`);
    }
    const nan = f32ToF16(NaN);
    assert.equal(nan & 0x7c00, 0x7c00);
    assert.notEqual(nan & 0x3ff, 0);
    assert.ok(Number.isNaN(f16ToF32(0x7e00)));
    assert.equal(f16ToF32(0x3c00), 1);
    assert.equal(f16ToF32(0xc100), -2.5);
    assert.equal(f16ToF32(0x7bff), 65504);
    assert.equal(f16ToF32(0x0001), 2 ** -24);
    assert.equal(f16ToF32(0x03ff), 1023 * 2 ** -24);
    assert.equal(f16ToF32(0xfc00), -Infinity);
    assert.ok(Object.is(f16ToF32(0x8000), -0));
  });

  test('every half value survives half → float → half', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const floats = float16ToFloat32Array(all);
    const back = float32ToFloat16Array(floats);
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNaN) assert.ok(Number.isNaN(floats[h]!), `0x${h.toString(16)} is NaN`);
      else assert.equal(back[h], h, `0x${h.toString(16)} → ${floats[h]} → 0x${back[h]!.toString(16)}`);
    }
  });

  test('rounding picks the nearest half (against a brute-force search)', () => {
    const halves = float16ToFloat32Array(new Uint16Array(0x7c00).map((_, i) => i)); // all finite non-negative
    let seed = 12345;
    for (let n = 0; n < 2000; n++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const x = Math.fround((seed / 2 ** 32) * 2 ** ((n % 40) - 25));
      const h = f32ToF16(x);
      const err = Math.abs(f16ToF32(h) - x);
      // no other half is strictly closer
      let lo = 0;
      let hi = halves.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (halves[mid]! < x) lo = mid + 1;
        else hi = mid;
      }
      for (const k of [lo - 1, lo, lo + 1]) {
        if (k >= 0 && k < halves.length) assert.ok(Math.abs(halves[k]! - x) >= err, `x=${x}: 0x${k.toString(16)} is closer than 0x${h.toString(16)}`);
      }
    }
  });
});

describe('bfloat16 conversion', () => {
  test('known bit patterns', () => {
    const cases: Array<[number, number]> = [
      [1.0, 0x3f80],
      [-2.5, 0xc020],
      [65504, 0x4780], // 65504 is not representable: rounds to 65536
      [1 + 2 ** -8, 0x3f80], // tie: to even
      [1 + 3 * 2 ** -8, 0x3f82], // tie: to even (up)
      [Infinity, 0x7f80],
      [-Infinity, 0xff80],
      [0, 0],
      [-0, 0x8000],
      [3.4028234663852886e38, 0x7f80], // f32 max rounds up to inf
      [1e-40, 0x0001], // f32 subnormal (bits 0x000116c2)
    ];
    for (const [x, bits] of cases) assert.equal(f32ToBf16(x), bits, `f32ToBf16(${x})`);
    assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(NaN))));
    assert.equal(bf16ToF32(0xc020), -2.5);
    assert.equal(bf16ToF32(0x3f80), 1);
  });
});

describe('write and read', () => {
  const data = f32([1.0, -2.5, 65504, 2 ** -24, 0.1, -0.333, 3e-8, 123.456]);

  test('F32 round trip is exact, with metadata and the header padded to 8 bytes', () => {
    const file = tmpPath('a.safetensors');
    writeSafetensors(
      file,
      [
        { name: 'x', shape: [2, 4], data },
        { name: 'scalar', shape: [], data: f32([7]) },
        { name: 'empty', shape: [0, 3], data: new Float32Array(0) },
      ],
      { metadata: { format: 'pt' } },
    );
    const bytes = fs.readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal((8 + n) % 8, 0);
    const headerText = bytes.subarray(8, 8 + n).toString('utf8');
    assert.match(headerText, / *$/);
    assert.deepEqual(JSON.parse(headerText).__metadata__, { format: 'pt' });

    const st = openSafetensors(file);
    assert.deepEqual(st.names(), ['x', 'scalar', 'empty']);
    assert.deepEqual(st.info('x'), { dtype: 'F32', shape: [2, 4] });
    assert.deepEqual(st.getFloat32('x'), data);
    assert.deepEqual(st.getFloat32('scalar'), f32([7]));
    assert.equal(st.getFloat32('empty').length, 0);
    assert.deepEqual(st.metadata(), { format: 'pt' });
    st.close();
    assert.deepEqual(st.getFloat32('x'), data, 'reads after close reopen the file');
    st.close();
    throwsLm(() => st.info('nope'), 'tensor_missing', file, 'nope');
  });

  test('F16 stores exact half bits and reads back the rounded values', () => {
    const file = tmpPath('h.safetensors');
    writeSafetensors(file, [{ name: 'x', shape: [8], data }], { dtype: 'F16' });
    const st = openSafetensors(file);
    assert.equal(st.info('x').dtype, 'F16');
    const raw = st.getBytes('x');
    assert.deepEqual([...raw.subarray(0, 8)], [0x00, 0x3c, 0x00, 0xc1, 0xff, 0x7b, 0x01, 0x00]); // 1, -2.5, 65504, 2^-24
    const back = st.getFloat32('x');
    for (let i = 0; i < data.length; i++) assert.equal(back[i], f16ToF32(f32ToF16(data[i]!)));
    assert.equal(back[4], 0.0999755859375); // 0.1 in half
    st.close();
  });

  test('BF16 stores exact bfloat16 bits and reads back the rounded values', () => {
    const file = tmpPath('b.safetensors');
    writeSafetensors(file, [{ name: 'x', shape: [8], data }], { dtype: 'BF16' });
    const st = openSafetensors(file);
    assert.deepEqual([...st.getBytes('x').subarray(0, 4)], [0x80, 0x3f, 0x20, 0xc0]);
    const back = st.getFloat32('x');
    for (let i = 0; i < data.length; i++) assert.equal(back[i], bf16ToF32(f32ToBf16(data[i]!)));
    assert.equal(back[2], 65536);
    st.close();
  });

  test('lazily produced tensors are written like plain ones', () => {
    const file = tmpPath('lazy.safetensors');
    let produced = 0;
    writeSafetensors(file, [
      { name: 'a', shape: [2], produce: () => (produced++, f32([1, 2])) },
      { name: 'b', shape: [1], data: f32([3]) },
    ]);
    assert.equal(produced, 1);
    const st = openSafetensors(file);
    assert.deepEqual(st.getFloat32('a'), f32([1, 2]));
    st.close();
  });

  test('F64 tensors are read by downcasting', () => {
    const file = tmpPath('f64.safetensors');
    const d = new Float64Array([1.5, -1e-3, 1 / 3]);
    writeRaw(file, { w: { dtype: 'F64', shape: [3], data_offsets: [0, 24] } }, new Uint8Array(d.buffer));
    const st = openSafetensors(file);
    assert.deepEqual(st.getFloat32('w'), Float32Array.from(d));
  });

  test('bad arguments to the writer', () => {
    const file = tmpPath('bad.safetensors');
    throwsLm(() => writeSafetensors(file, [{ name: 'w', shape: [3], data: f32([1, 2]) }]), 'bad_argument', "'w'");
    throwsLm(
      () => writeSafetensors(file, [{ name: 'w', shape: [1], data: f32([1]) }, { name: 'w', shape: [1], data: f32([1]) }]),
      'bad_argument',
      'duplicate',
    );
    assert.equal(fs.existsSync(file), false);
    assert.deepEqual(fs.readdirSync(path.dirname(file)).filter((f) => f.includes('bad.safetensors')), [], 'no temp file left behind');
  });
});

describe('sharded weights', () => {
  test('writeShardedSafetensors splits by size and openWeights reads across shards', () => {
    const dir = tmpDir();
    const tensors = [
      { name: 'a', shape: [4], data: f32([1, 2, 3, 4]) }, // 16 bytes
      { name: 'b', shape: [2], data: f32([5, 6]) }, // 8
      { name: 'big', shape: [10], data: f32([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) }, // 40: alone
      { name: 'c', shape: [3], data: f32([-1, -2, -3]) }, // 12
    ];
    const r = writeShardedSafetensors(dir, tensors, 24);
    assert.deepEqual(
      r.shardFiles.map((f) => path.basename(f)),
      ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'],
    );
    const index = JSON.parse(fs.readFileSync(r.indexPath, 'utf8'));
    assert.equal(index.metadata.total_size, 76);
    assert.deepEqual(index.weight_map, {
      a: 'model-00001-of-00003.safetensors',
      b: 'model-00001-of-00003.safetensors',
      big: 'model-00002-of-00003.safetensors',
      c: 'model-00003-of-00003.safetensors',
    });
    const w = openWeights(dir);
    assert.deepEqual(w.names().sort(), ['a', 'b', 'big', 'c']);
    for (const t of tensors) {
      assert.deepEqual(w.getFloat32(t.name), t.data);
      assert.deepEqual(w.info(t.name).shape, t.shape);
    }
    assert.equal(w.metadata()['format'], 'pt');
    throwsLm(() => w.getFloat32('zzz'), 'tensor_missing', 'zzz');
    w.close();
  });

  test('openWeights prefers model.safetensors', () => {
    const dir = tmpDir();
    writeShardedSafetensors(dir, [{ name: 'sharded', shape: [1], data: f32([1]) }], 1000);
    writeSafetensors(path.join(dir, 'model.safetensors'), [{ name: 'single', shape: [1], data: f32([2]) }]);
    assert.deepEqual(openWeights(dir).names(), ['single']);
  });

  test('a missing shard or a tensor absent from its shard is reported with the file', () => {
    const dir = tmpDir();
    const r = writeShardedSafetensors(dir, [{ name: 'a', shape: [1], data: f32([1]) }, { name: 'b', shape: [1], data: f32([2]) }], 4);
    fs.rmSync(r.shardFiles[1]!);
    throwsLm(() => openWeights(dir), 'file_missing', r.shardFiles[1]!);

    const dir2 = tmpDir();
    const r2 = writeShardedSafetensors(dir2, [{ name: 'a', shape: [1], data: f32([1]) }], 4);
    const index = JSON.parse(fs.readFileSync(r2.indexPath, 'utf8'));
    index.weight_map.ghost = path.basename(r2.shardFiles[0]!);
    fs.writeFileSync(r2.indexPath, JSON.stringify(index));
    throwsLm(() => openWeights(dir2), 'file_corrupt', 'ghost', r2.shardFiles[0]!);

    fs.writeFileSync(r2.indexPath, '{"weight_map": ');
    throwsLm(() => openWeights(dir2), 'file_corrupt', r2.indexPath);
  });
});

describe('missing and corrupt files', () => {
  test('missing file and missing weights', () => {
    const file = path.join(tmpRoot, 'does-not-exist.safetensors');
    throwsLm(() => openSafetensors(file), 'file_missing', file);
    const dir = tmpDir();
    throwsLm(() => openWeights(dir), 'file_missing', path.join(dir, 'model.safetensors'));
  });

  test('truncated file', () => {
    const file = tmpPath('trunc.safetensors');
    writeSafetensors(file, [{ name: 'w', shape: [64], data: new Float32Array(64).fill(1) }]);
    const full = fs.readFileSync(file);
    fs.writeFileSync(file, full.subarray(0, full.length - 10));
    throwsLm(() => openSafetensors(file), 'file_corrupt', file, "'w'");
    fs.writeFileSync(file, full.subarray(0, 20)); // cut inside the header
    throwsLm(() => openSafetensors(file), 'file_corrupt', file);
    fs.writeFileSync(file, full.subarray(0, 5)); // shorter than the length prefix
    throwsLm(() => openSafetensors(file), 'file_corrupt', file);
  });

  test('corrupt headers', () => {
    const file = tmpPath('corrupt.safetensors');
    const four = new Uint8Array(16);
    writeRaw(file, { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, four, { lengthOverride: 1n << 40n });
    throwsLm(() => openSafetensors(file), 'file_corrupt', file, 'header length');

    fs.writeFileSync(file, Buffer.concat([Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"w":')]));
    throwsLm(() => openSafetensors(file), 'file_corrupt', file, 'JSON');

    writeRaw(file, { w: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, four);
    throwsLm(() => openSafetensors(file), 'file_corrupt', file, "'w'");

    writeRaw(file, { w: { dtype: 'Q4', shape: [4], data_offsets: [0, 16] } }, four);
    throwsLm(() => openSafetensors(file), 'file_corrupt', file, 'Q4');

    writeRaw(file, { w: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }, four);
    throwsLm(() => openSafetensors(file), 'file_corrupt', file, 'shape');

    writeRaw(
      file,
      { a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } },
      four,
    );
    throwsLm(() => openSafetensors(file), 'file_corrupt', file, 'overlap');

    writeRaw(file, [1, 2], four);
    throwsLm(() => openSafetensors(file), 'file_corrupt', file);
  });

  test('a non-float dtype is listed but cannot be read as float', () => {
    const file = tmpPath('i32.safetensors');
    const ints = new Int32Array([1, -2, 3]);
    writeRaw(
      file,
      {
        __metadata__: { format: 'pt' },
        ids: { dtype: 'I32', shape: [3], data_offsets: [0, 12] },
        w: { dtype: 'F32', shape: [1], data_offsets: [12, 16] },
      },
      new Uint8Array([...new Uint8Array(ints.buffer), ...new Uint8Array(f32([0.5]).buffer)]),
    );
    const st = openSafetensors(file);
    assert.deepEqual(st.info('ids'), { dtype: 'I32', shape: [3] });
    const err = throwsLm(() => st.getFloat32('ids'), 'unsupported_dtype', file, "'ids'", 'I32');
    assert.equal(err.details?.['dtype'], 'I32');
    assert.deepEqual(new Int32Array(st.getBytes('ids').buffer), ints);
    assert.deepEqual(st.getFloat32('w'), f32([0.5]));
    st.close();
  });
});
