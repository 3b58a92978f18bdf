// P-RLHF's user models (arXiv 2402.05133, §4): a soft prompt of T_u vectors of the LM's hidden
// size per user, prepended to the token embeddings of the frozen LM.
//
//  - individual: e_i = e_0 + o_i. e_0 is the generic user's embedding (id 0 in the paper); users
//    with no trained offset, including new users, get e_0.
//  - cluster: K cluster embeddings C_k and per-user logits w_i; e_i = Σ_k softmax(w_i)_k C_k. The
//    generic user has its own logits (the paper's user 0), which new users get.
//
// Parameters live in one map of named Float32Arrays, so the optimizer, the blob format and the
// gradient routing treat both kinds alike: 'e0', 'offset:<userId>' / 'clusters', 'logits:<userId>',
// 'logits:0' (generic).
import { z } from 'zod';
import type { Rng } from '../lm/rng.ts';

export type UserModelKind = 'individual' | 'cluster';
export const GENERIC_USER = '0';

export const userModelSpecSchema = z.strictObject({
  kind: z.enum(['individual', 'cluster']),
  /** T_u, the soft prompt's length in vectors (the paper uses 10). */
  tokens: z.number().int().min(1).max(64),
  hidden: z.number().int().min(1),
  /** K, for the cluster model. */
  clusters: z.number().int().min(1).max(64).optional(),
});
export type UserModelSpec = z.infer<typeof userModelSpecSchema>;

const offsetName = (userId: string) => `offset:${userId}`;
const logitsName = (userId: string) => `logits:${userId}`;

export class UserModel {
  readonly params: Map<string, Float32Array>;

  constructor(
    readonly spec: UserModelSpec,
    params: Map<string, Float32Array>,
  ) {
    this.params = params;
    const size = spec.tokens * spec.hidden;
    if (spec.kind === 'individual') {
      if (this.params.get('e0')?.length !== size) throw new RangeError(`individual user model needs e0 of ${size} values`);
    } else {
      const K = spec.clusters ?? 0;
      if (K < 1) throw new RangeError('cluster user model needs clusters ≥ 1');
      if (this.params.get('clusters')?.length !== K * size) throw new RangeError(`cluster user model needs ${K}×${size} cluster values`);
      if (!this.params.has(logitsName(GENERIC_USER))) this.params.set(logitsName(GENERIC_USER), new Float32Array(K));
    }
    for (const [name, p] of this.params) {
      for (let i = 0; i < p.length; i++) if (!Number.isFinite(p[i]!)) throw new RangeError(`user model parameter ${name} holds a non-finite value`);
    }
  }

  /**
   * A fresh model whose vectors are embeddings of randomly drawn vocabulary tokens (`embedding` is
   * the LM's [V × hidden] token table). Offsets start at zero, so every user starts at e_0.
   */
  static initFromVocabulary(spec: UserModelSpec, embedding: Float32Array, vocabSize: number, rng: Rng): UserModel {
    const H = spec.hidden;
    if (embedding.length !== vocabSize * H) throw new RangeError(`token embedding has ${embedding.length} values, expected ${vocabSize}×${H}`);
    const draw = (count: number): Float32Array => {
      const out = new Float32Array(count * H);
      for (let t = 0; t < count; t++) {
        const id = rng.int(vocabSize);
        out.set(embedding.subarray(id * H, (id + 1) * H), t * H);
      }
      return out;
    };
    const params = new Map<string, Float32Array>();
    if (spec.kind === 'individual') params.set('e0', draw(spec.tokens));
    else params.set('clusters', draw(spec.tokens * (spec.clusters ?? 1)));
    return new UserModel(spec, params);
  }

  get size(): number {
    return this.spec.tokens * this.spec.hidden;
  }

  /** Users with parameters of their own (a trained offset or their own cluster logits). */
  users(): string[] {
    const prefix = this.spec.kind === 'individual' ? 'offset:' : 'logits:';
    return [...this.params.keys()].filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length)).filter((u) => u !== GENERIC_USER);
  }

  hasUser(userId: string): boolean {
    return this.params.has(this.spec.kind === 'individual' ? offsetName(userId) : logitsName(userId));
  }

  /** Give `userId` parameters of their own, starting where the generic user is. */
  addUser(userId: string): void {
    if (userId === GENERIC_USER || this.hasUser(userId)) return;
    if (this.spec.kind === 'individual') this.params.set(offsetName(userId), new Float32Array(this.size));
    else this.params.set(logitsName(userId), Float32Array.from(this.params.get(logitsName(GENERIC_USER))!));
  }

  removeUser(userId: string): void {
    if (userId === GENERIC_USER) return;
    this.params.delete(offsetName(userId));
    this.params.delete(logitsName(userId));
  }

  /** Softmax of a user's cluster logits (the generic user's when they have none). */
  clusterWeights(userId: string | null): Float32Array {
    const logits = this.params.get(logitsName(userId ?? GENERIC_USER)) ?? this.params.get(logitsName(GENERIC_USER))!;
    const max = Math.max(...logits);
    const w = Float32Array.from(logits, (x) => Math.exp(x - max));
    const s = w.reduce((a, b) => a + b, 0);
    for (let k = 0; k < w.length; k++) w[k] = w[k]! / s;
    return w;
  }

  /** The soft prompt [T_u × hidden] of `userId`; null or an unknown user gives the generic e_0. */
  prefixFor(userId: string | null): Float32Array {
    const n = this.size;
    if (this.spec.kind === 'individual') {
      const e0 = this.params.get('e0')!;
      const o = userId === null ? undefined : this.params.get(offsetName(userId));
      if (!o) return Float32Array.from(e0);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = e0[i]! + o[i]!;
      return out;
    }
    const C = this.params.get('clusters')!;
    const w = this.clusterWeights(userId);
    const out = new Float32Array(n);
    for (let k = 0; k < w.length; k++) {
      const wk = w[k]!;
      for (let i = 0; i < n; i++) out[i] += wk * C[k * n + i]!;
    }
    return out;
  }

  /**
   * Route d(loss)/d(prefix of `userId`) (×scale) into `grads`, keyed like `params`. `userId` null is
   * the generic user. Only parameters in `trainable` (when given) receive gradient.
   */
  accumulateGradient(userId: string | null, gradPrefix: Float32Array, scale: number, grads: Map<string, Float32Array>, trainable?: ReadonlySet<string>): void {
    const n = this.size;
    if (gradPrefix.length !== n) throw new RangeError(`prefix gradient has ${gradPrefix.length} values, expected ${n}`);
    const add = (name: string, fn: (g: Float32Array) => void) => {
      if (trainable && !trainable.has(name)) return;
      const p = this.params.get(name);
      if (!p) return;
      let g = grads.get(name);
      if (!g) grads.set(name, (g = new Float32Array(p.length)));
      fn(g);
    };
    if (this.spec.kind === 'individual') {
      const axpy = (g: Float32Array) => {
        for (let i = 0; i < n; i++) g[i] += scale * gradPrefix[i]!;
      };
      add('e0', axpy);
      if (userId !== null && this.params.has(offsetName(userId))) add(offsetName(userId), axpy);
      return;
    }
    const C = this.params.get('clusters')!;
    const who = userId !== null && this.params.has(logitsName(userId)) ? userId : GENERIC_USER;
    const w = this.clusterWeights(who);
    add('clusters', (g) => {
      for (let k = 0; k < w.length; k++) {
        const wk = w[k]! * scale;
        for (let i = 0; i < n; i++) g[k * n + i] += wk * gradPrefix[i]!;
      }
    });
    add(logitsName(who), (g) => {
      // d e / d logit_k = w_k (C_k − e): the softmax Jacobian applied to ⟨C_k, grad⟩.
      const dots = Array.from(w, (_, k) => {
        let d = 0;
        for (let i = 0; i < n; i++) d += C[k * n + i]! * gradPrefix[i]!;
        return d;
      });
      const mean = dots.reduce((s, d, k) => s + w[k]! * d, 0);
      for (let k = 0; k < w.length; k++) g[k] += scale * w[k]! * (dots[k]! - mean);
    });
  }

  clone(): UserModel {
    return new UserModel({ ...this.spec }, new Map([...this.params].map(([k, v]) => [k, Float32Array.from(v)])));
  }

  /** Blob: 4-byte header length, a JSON header (spec and parameter names and lengths), float32 data. */
  serialize(): Buffer {
    const names = [...this.params.keys()].sort();
    const header = Buffer.from(JSON.stringify({ format: 'attune-user-model/1', spec: this.spec, params: names.map((n) => [n, this.params.get(n)!.length]) }), 'utf8');
    const total = names.reduce((s, n) => s + this.params.get(n)!.length, 0);
    const pad = (4 - ((4 + header.length) % 4)) % 4;
    const out = Buffer.alloc(4 + header.length + pad + total * 4);
    out.writeUInt32LE(header.length + pad, 0);
    header.copy(out, 4);
    out.fill(0x20, 4 + header.length, 4 + header.length + pad);
    let off = 4 + header.length + pad;
    for (const n of names) {
      const p = this.params.get(n)!;
      Buffer.from(p.buffer, p.byteOffset, p.byteLength).copy(out, off);
      off += p.byteLength;
    }
    return out;
  }

  static deserialize(blob: Uint8Array): UserModel {
    const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
    if (buf.length < 4) throw new RangeError('user model blob is truncated');
    const hlen = buf.readUInt32LE(0);
    if (4 + hlen > buf.length) throw new RangeError('user model blob is truncated');
    const header = z
      .object({ format: z.literal('attune-user-model/1'), spec: userModelSpecSchema, params: z.array(z.tuple([z.string(), z.number().int().min(0)])) })
      .parse(JSON.parse(buf.subarray(4, 4 + hlen).toString('utf8')));
    let off = 4 + hlen;
    const params = new Map<string, Float32Array>();
    for (const [name, len] of header.params) {
      if (off + len * 4 > buf.length) throw new RangeError('user model blob is truncated');
      const p = new Float32Array(len);
      Buffer.from(p.buffer).set(buf.subarray(off, off + len * 4));
      params.set(name, p);
      off += len * 4;
    }
    return new UserModel(header.spec, params);
  }
}

/** The LM's token-embedding table [V × hidden] (to initialise soft prompts from vocabulary tokens). */
export function readTokenEmbedding(files: { config: { modelType: string }; weights: { shapes: Map<string, number[]>; get(name: string): Float32Array } }): Float32Array {
  const name = ['embed_tokens.weight', 'wte.weight'].find((n) => files.weights.shapes.has(n));
  if (!name) throw new RangeError(`no token embedding found for model_type ${files.config.modelType}`);
  return files.weights.get(name);
}
