// A model directory is checked in full when it loads: every weight's values (no NaN, no ±Infinity,
// named by tensor), its dtype, and that the tokenizer's ids fit the embedding. Such a model used to
// load "ready" and then fail every answer.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isLmError } from '../../../server/lm/errors.ts';
import { Engine } from '../../../server/lm/engine.ts';
import { type RandomModelSpec, writeRandomModel } from '../../../sandbox/random-model.ts';
import { ModelRuntime } from '../../../server/lm/runtime.ts';
import { openSafetensors, SINGLE_WEIGHTS_FILE, type TensorToWrite, writeSafetensors } from '../../../server/lm/safetensors.ts';
import { countNonFinite, openModelDir } from '../../../server/lm/weights.ts';

const TINY: RandomModelSpec = { modelType: 'llama', vocabSize: 300, hidden: 16, layers: 1, heads: 2, kvHeads: 1, maxPositions: 32, tie: false, seed: 21 };

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-model-validation-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;

function modelDir(spec: RandomModelSpec = TINY): string {
  const dir = path.join(root, `m${n++}`);
  writeRandomModel(dir, spec);
  return dir;
}

/** Rewrites model.safetensors with `edit` applied to one tensor's values. */
function editTensor(dir: string, name: string, edit: (data: Float32Array) => void, dtype: 'F32' | 'F16' | 'BF16' = 'F32'): void {
  const file = path.join(dir, SINGLE_WEIGHTS_FILE);
  const src = openSafetensors(file);
  assert.ok(src.has(name), `${name} is in the file (names: ${src.names().join(', ')})`);
  const tensors: TensorToWrite[] = src.names().map((t) => {
    const data = src.getFloat32(t);
    if (t === name) edit(data);
    return { name: t, shape: src.info(t).shape, data };
  });
  src.close();
  writeSafetensors(file, tensors, { dtype });
}

async function loadError(dir: string, load: (dir: string) => Promise<unknown> = (d) => ModelRuntime.load(d, { threads: 1 })): Promise<unknown> {
  return load(dir).then(
    async (ok) => {
      await (ok as { release?: () => Promise<void>; close?: () => Promise<void> }).release?.();
      await (ok as { close?: () => Promise<void> }).close?.();
      return null;
    },
    (e: unknown) => e,
  );
}

describe('non-finite weights', () => {
  it('countNonFinite counts NaN and ±Infinity and finds the first', () => {
    assert.deepEqual(countNonFinite(new Float32Array([1, -2, 0, -0, 3.4e38, 1e-45])), { nan: 0, inf: 0, first: -1 });
    assert.deepEqual(countNonFinite(Float32Array.from([0, 1, NaN, Infinity, 2, -Infinity, NaN])), { nan: 2, inf: 2, first: 2 });
    for (let len = 1; len <= 9; len++) {
      for (let at = 0; at < len; at++) {
        const a = new Float32Array(len).fill(0.5);
        a[at] = NaN;
        assert.deepEqual(countNonFinite(a), { nan: 1, inf: 0, first: at }, `length ${len}, NaN at ${at}`);
      }
    }
  });

  it('a tensor with NaN values fails the load, naming the tensor and the count', async () => {
    const dir = modelDir();
    editTensor(dir, 'model.layers.0.mlp.up_proj.weight', (d) => {
      d[3] = NaN;
      d[10] = NaN;
      d[d.length - 1] = NaN;
    });
    const e = await loadError(dir, (d) => Engine.load(d, { threads: 1 }));
    assert.ok(isLmError(e, 'file_corrupt'), String(e));
    assert.match(e.message, /model\.layers\.0\.mlp\.up_proj\.weight has 3 NaN values \(first at index 3\)/);
    assert.ok(e.message.includes(path.join(dir, SINGLE_WEIGHTS_FILE)), e.message);
    assert.equal(e.details?.tensor, 'model.layers.0.mlp.up_proj.weight');
  });

  it('infinities count too, also when they come from an F16 overflow', async () => {
    const dir = modelDir();
    editTensor(dir, 'model.norm.weight', (d) => {
      d[0] = 1e6; // above F16's largest finite value, 65504: stored as +Infinity
      d[1] = -1e6;
    }, 'F16');
    const e = await loadError(dir);
    assert.ok(isLmError(e, 'file_corrupt'), String(e));
    assert.match(e.message, /model\.norm\.weight has 2 infinite values/);
  });

  it('every weight the architecture reads is checked', async () => {
    const dir = modelDir();
    const names = openSafetensors(path.join(dir, SINGLE_WEIGHTS_FILE)).names();
    const original = fs.readFileSync(path.join(dir, SINGLE_WEIGHTS_FILE));
    assert.ok(names.length >= 10, names.join(', '));
    for (const name of names) {
      editTensor(dir, name, (d) => {
        d[d.length >> 1] = NaN;
      });
      const e = await loadError(dir);
      assert.ok(isLmError(e, 'file_corrupt') && e.message.includes(`${name} has 1 NaN value`), `${name}: ${String(e)}`);
      fs.writeFileSync(path.join(dir, SINGLE_WEIGHTS_FILE), original);
    }
    assert.equal(await loadError(dir), null, 'the untouched model loads');
  });

  it('GPT-2 layout: a NaN in a fused attention weight is named as stored', async () => {
    const dir = modelDir({ ...TINY, modelType: 'gpt2', kvHeads: undefined, tie: true });
    editTensor(dir, 'transformer.h.0.attn.c_attn.weight', (d) => {
      d[0] = NaN;
    });
    const e = await loadError(dir);
    assert.ok(isLmError(e, 'file_corrupt'), String(e));
    assert.match(e.message, /transformer\.h\.0\.attn\.c_attn\.weight has 1 NaN value/);
  });
});

describe('dtype and tokenizer checks', () => {
  it('a weight stored as integers is refused when the directory is opened, naming it', () => {
    const dir = modelDir();
    const file = path.join(dir, SINGLE_WEIGHTS_FILE);
    const src = openSafetensors(file);
    const names = src.names();
    // Rewrite by hand: norm.weight as I32 of the same shape.
    const header: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    let offset = 0;
    for (const t of names) {
      const { shape } = src.info(t);
      const bytes = Buffer.from(src.getBytes(t));
      header[t] = { dtype: t === 'model.norm.weight' ? 'I32' : 'F32', shape, data_offsets: [offset, offset + bytes.length] };
      chunks.push(bytes);
      offset += bytes.length;
    }
    src.close();
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    fs.writeFileSync(file, Buffer.concat([len, json, ...chunks]));
    assert.throws(() => openModelDir(dir), (e: unknown) => isLmError(e, 'unsupported_dtype') && /model\.norm\.weight has dtype I32/.test(e.message));
  });

  it('a tokenizer with more tokens than the embedding has rows is refused before the weights are read', async () => {
    const dir = modelDir();
    const configPath = path.join(dir, 'config.json');
    const config = JSON.parse(fs.readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    // Weights shaped for 300 rows no longer match either; the tokenizer check comes first and says why.
    fs.writeFileSync(configPath, JSON.stringify({ ...config, vocab_size: 290 }));
    const e = await loadError(dir, (d) => Engine.load(d, { threads: 1 }));
    assert.ok(isLmError(e, 'config_invalid'), String(e));
    assert.match(e.message, /tokenizer\.json has 300 tokens but config\.json's vocab_size is 290/);
  });
});
