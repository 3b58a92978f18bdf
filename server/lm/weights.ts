// A model directory in the Hugging Face layout: config, weights (single file or shards, F32/F16/BF16,
// names with or without the `transformer.` / `model.` prefix), tokenizer files.
import fs from 'node:fs';
import path from 'node:path';
import { LmError } from './errors.ts';
import { type ModelConfig, loadModelConfig } from './model-config.ts';
import { type WeightSource, openWeights } from './safetensors.ts';
import { type Architecture, architectureOf, weightShapes } from './model.ts';

export interface ModelWeights {
  /** Canonical (unprefixed) name → shape, exactly the weights the architecture reads. */
  readonly shapes: Map<string, number[]>;
  /** The weight as float32, read from disk on demand. */
  get(name: string): Float32Array;
  close(): void;
}

export interface ModelFiles {
  dir: string;
  config: ModelConfig;
  arch: Architecture;
  weights: ModelWeights;
  /** A stable id: model_type and a short hash of config and weight file sizes/mtimes. */
  id: string;
}

/** Find each weight the architecture needs under its canonical or prefixed name and check its shape. */
export function resolveWeights(source: WeightSource, cfg: ModelConfig, arch: Architecture): ModelWeights {
  const shapes = weightShapes(cfg);
  const stored = new Map<string, string>();
  const missing: string[] = [];
  for (const [name, shape] of shapes) {
    const candidates = name === 'lm_head.weight' ? [name, arch.weightPrefix + name] : [arch.weightPrefix + name, name];
    const found = candidates.find((c) => source.has(c));
    if (!found) {
      missing.push(name);
      continue;
    }
    const info = source.info(found);
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new LmError('unsupported_dtype', `${source.path}: weight ${found} has dtype ${info.dtype}; weights must be F32, F16, BF16 or F64`, {
        file: source.path, tensor: found, dtype: info.dtype,
      });
    }
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new LmError('file_corrupt', `${source.path}: weight ${found} has shape [${info.shape}], the config implies [${shape}]`, {
        file: source.path, tensor: found, shape: info.shape, expected: shape,
      });
    }
    stored.set(name, found);
  }
  if (missing.length) {
    const list = missing.slice(0, 8).join(', ') + (missing.length > 8 ? ` and ${missing.length - 8} more` : '');
    throw new LmError('tensor_missing', `${source.path}: missing weights for ${cfg.modelType}: ${list}`, { file: source.path, missing });
  }
  return {
    shapes,
    get: (name) => {
      const s = stored.get(name);
      if (!s) throw new LmError('tensor_missing', `${source.path}: no weight ${name}`, { file: source.path, tensor: name });
      const data = source.getFloat32(s);
      // Checked on every read (the serving graph reads each weight once per load): a NaN or an
      // infinity would otherwise load fine and then spoil every answer.
      const bad = countNonFinite(data);
      if (bad.nan + bad.inf > 0) {
        const what = [bad.nan ? `${bad.nan} NaN` : '', bad.inf ? `${bad.inf} infinite` : ''].filter(Boolean).join(' and ');
        throw new LmError('file_corrupt', `${source.path}: ${s} has ${what} value${bad.nan + bad.inf === 1 ? '' : 's'} (first at index ${bad.first})`, {
          file: source.path, tensor: s, nan: bad.nan, inf: bad.inf, firstIndex: bad.first,
        });
      }
      return data;
    },
    close: () => source.close(),
  };
}

const FLOAT_DTYPES: ReadonlySet<string> = new Set(['F32', 'F16', 'BF16', 'F64']);

/** NaN and ±Infinity counts of a tensor, and the index of the first such value (-1 if none). */
export function countNonFinite(data: Float32Array): { nan: number; inf: number; first: number } {
  // x·0 is ±0 for every finite x and NaN for NaN and ±Infinity, so the sums stay 0 exactly when all
  // values are finite. Four independent sums and no branch: ~1 ns a value (124M values: ~0.1 s).
  let a0 = 0;
  let a1 = 0;
  let a2 = 0;
  let a3 = 0;
  const n4 = data.length & ~3;
  for (let i = 0; i < n4; i += 4) {
    a0 += data[i]! * 0;
    a1 += data[i + 1]! * 0;
    a2 += data[i + 2]! * 0;
    a3 += data[i + 3]! * 0;
  }
  for (let i = n4; i < data.length; i++) a0 += data[i]! * 0;
  if (a0 + a1 + a2 + a3 === 0) return { nan: 0, inf: 0, first: -1 };
  let nan = 0;
  let inf = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (Number.isNaN(x)) nan++;
    else if (x === Infinity || x === -Infinity) inf++;
    else continue;
    if (first < 0) first = i;
  }
  return { nan, inf, first };
}

export function openModelDir(dir: string): ModelFiles {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new LmError('file_missing', `model directory not found: ${dir}`, { file: dir });
  }
  const config = loadModelConfig(dir);
  const arch = architectureOf(config);
  const weights = resolveWeights(openWeights(dir), config, arch);
  return { dir, config, arch, weights, id: modelId(dir, config) };
}

function modelId(dir: string, cfg: ModelConfig): string {
  const parts: string[] = [];
  for (const f of fs.readdirSync(dir).sort()) {
    if (!/\.(json|safetensors)$/.test(f)) continue;
    const st = fs.statSync(path.join(dir, f));
    parts.push(`${f}:${st.size}:${Math.floor(st.mtimeMs)}`);
  }
  let h = 2166136261;
  for (const ch of parts.join('|')) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return `${path.basename(path.resolve(dir))}-${cfg.modelType}-${h.toString(16).padStart(8, '0')}`;
}
