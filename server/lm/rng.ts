// The one seeded generator: sfc32 (Chris Doty-Humphrey's small fast counter), its state filled by
// splitmix32 and warmed up 12 steps. Not cryptographic; what matters is that a seed always gives the
// same stream, on every machine, so random models, corpora and simulated users can be reproduced.
//
// Two ways to seed, because two families of streams already exist and must not change:
// - `new Rng(seed)`: a uint32 seed, or any other number or string hashed with FNV-1a. Labels such as
//   "seed:example:17" give independent streams; `fork(label)` derives one from the next draw.
// - `Rng.stream(seed, label)`: one stream per (seed, label), e.g. per tensor name of a random model,
//   so each tensor's values do not depend on the order tensors are produced in.

/** FNV-1a over the UTF-16 code units of `s`, as an unsigned 32-bit integer. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

const isUint32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;

export class Rng {
  // sfc32's state, kept as int32 (every operation below is 32-bit; `>>> 0` on the way out)
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  /** A uint32 seed is used as is; any other number or string is hashed (FNV-1a of its text). */
  constructor(seed: number | string) {
    const mix = splitmix32(typeof seed === 'number' && isUint32(seed) ? seed : hashString(String(seed)));
    this.init(mix(), mix(), mix(), mix());
  }

  /**
   * The stream for (seed, label): splitmix32 of seed·φ ⊕ hash(label) gives three state words, the
   * counter starts at 1. Streams for different labels are independent; neither depends on the other.
   */
  static stream(seed: number, label: string): Rng {
    const mix = splitmix32((Math.imul(seed | 0, 0x9e3779b1) ^ hashString(label)) >>> 0);
    const rng = Object.create(Rng.prototype) as Rng;
    rng.init(mix(), mix(), mix(), 1);
    return rng;
  }

  private init(a: number, b: number, c: number, d: number): void {
    this.a = a | 0;
    this.b = b | 0;
    this.c = c | 0;
    this.d = d | 0;
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** Uniform unsigned 32-bit integer (one sfc32 step). */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (((this.c << 21) | (this.c >>> 11)) + t) | 0;
    return t >>> 0;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Rng.pick: empty list');
    return items[this.int(items.length)]!;
  }

  /** Index drawn in proportion to non-negative weights. */
  weightedIndex(weights: readonly number[]): number {
    const total = weights.reduce((s, w) => s + w, 0);
    if (!(total > 0)) throw new RangeError('Rng.weightedIndex: weights must sum to a positive number');
    let u = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      u -= weights[i]!;
      if (u < 0) return i;
    }
    return weights.length - 1;
  }

  /** A shuffled copy (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }

  /** An independent stream derived from this one's next draw and a label. */
  fork(label: string): Rng {
    return new Rng(`${this.nextUint32()}:${label}`);
  }

  /**
   * Fills `out` with N(mean, std²) samples (Marsaglia & Tsang's ziggurat, 128 layers). About 97% of
   * samples cost one draw, one comparison and one multiply, which is what makes a 124M-parameter
   * random model quick to write. Unlike the original RNOR the layer index, sign and magnitude use
   * disjoint bits of the draw.
   */
  fillNormal(out: Float32Array, std: number, mean = 0): Float32Array {
    // sfc32 inlined on locals for the fast path; the slow path steps the state through nextUint32
    let a = this.a;
    let b = this.b;
    let c = this.c;
    let d = this.d;
    const n = out.length;
    for (let i = 0; i < n; i++) {
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (((c << 21) | (c >>> 11)) + t) | 0;
      const iz = t & 127;
      const j = t >>> 8;
      let z: number;
      if (j < zigK[iz]!) {
        z = (t & 128) !== 0 ? -j * zigW[iz]! : j * zigW[iz]!;
      } else {
        this.a = a;
        this.b = b;
        this.c = c;
        this.d = d;
        z = this.zigguratSlow(t >>> 0);
        a = this.a;
        b = this.b;
        c = this.c;
        d = this.d;
      }
      out[i] = mean + z * std;
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
    return out;
  }

  /** The rare ziggurat cases (wedges and the tail), given a rejected first draw `u`. */
  private zigguratSlow(first: number): number {
    let u = first;
    for (;;) {
      const iz = u & 127;
      const j = u >>> 8;
      const sign = (u & 128) !== 0 ? -1 : 1;
      if (j < zigK[iz]!) return sign * j * zigW[iz]!;
      if (iz === 0) {
        let x: number;
        let y: number;
        do {
          x = -Math.log((this.nextUint32() + 0.5) / 4294967296) / ZIG_R; // uniform in (0, 1)
          y = -Math.log((this.nextUint32() + 0.5) / 4294967296);
        } while (y + y < x * x);
        return sign * (ZIG_R + x);
      }
      const x = j * zigW[iz]!;
      const uniform = (this.nextUint32() + 0.5) / 4294967296;
      if (zigF[iz]! + uniform * (zigF[iz - 1]! - zigF[iz]!) < Math.exp(-0.5 * x * x)) return sign * x;
      u = this.nextUint32();
    }
  }
}

// The ziggurat's tables: layer k's right edge (as a threshold on the draw's upper 24 bits), width and
// density at the edge.
const ZIG_R = 3.442619855899;
const ZIG_V = 9.91256303526217e-3;
const ZIG_M = 2 ** 24;
const zigK = new Uint32Array(128);
const zigW = new Float64Array(128);
const zigF = new Float64Array(128);
{
  const q = ZIG_V / Math.exp(-0.5 * ZIG_R * ZIG_R);
  zigK[0] = Math.floor((ZIG_R / q) * ZIG_M);
  zigK[1] = 0;
  zigW[0] = q / ZIG_M;
  zigW[127] = ZIG_R / ZIG_M;
  zigF[0] = 1;
  zigF[127] = Math.exp(-0.5 * ZIG_R * ZIG_R);
  let dn = ZIG_R;
  let tn = ZIG_R;
  for (let i = 126; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(ZIG_V / dn + Math.exp(-0.5 * dn * dn)));
    zigK[i + 1] = Math.floor((dn / tn) * ZIG_M);
    tn = dn;
    zigF[i] = Math.exp(-0.5 * dn * dn);
    zigW[i] = dn / ZIG_M;
  }
}
