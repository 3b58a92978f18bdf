// A model directory in the Hugging Face layout: config, weights (single file or shards, F32/F16/BF16,
// names with or without the `transformer.` / `model.` prefix), tokenizer files.
import fs from 'node:fs';
import path from 'node:path';
import { LmError } from './errors.ts';
import { type ModelConfig, loadModelConfig } from './model-config.ts';
import { type WeightSource, openWeights } from './safetensors.ts';
import { type Architecture, architectureOf } from './model.ts';

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
  const shapes = arch.weightShapes(cfg);
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
      return source.getFloat32(s);
    },
    close: () => source.close(),
  };
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
