// The optimizer every trainer shares: AdamW (Loshchilov & Hutter, decoupled weight decay), clipping
// by the global gradient norm, and the learning-rate schedule (linear warmup, then cosine decay).
// Parameters and gradients are float32 arrays keyed by name; the arithmetic runs in float64.

/** Linear warmup over warmupSteps, then cosine decay to lr × minLrRatio at totalSteps. */
export interface LrSchedule {
  lr: number;
  /** Cosine decay ends at lr × minLrRatio. */
  minLrRatio: number;
  warmupSteps: number;
  totalSteps: number;
}

export interface AdamWHyper {
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled: each step multiplies a decayed parameter by (1 − lr·weightDecay), apart from the Adam step. */
  weightDecay: number;
}

/** Everything a training run sets: the schedule, AdamW's constants and the clipping threshold. */
export interface OptimizerOptions extends LrSchedule, AdamWHyper {
  /** Clip the global gradient norm to this (0 = off). */
  clipNorm: number;
}

/** Learning rate at `step` (0-based): linear warmup, then cosine decay to minLrRatio·lr. */
export function learningRate(o: LrSchedule, step: number): number {
  if (step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  const progress = Math.min(1, (step - o.warmupSteps) / Math.max(1, o.totalSteps - o.warmupSteps));
  const min = o.lr * o.minLrRatio;
  return min + 0.5 * (o.lr - min) * (1 + Math.cos(Math.PI * progress));
}

/**
 * The L2 norm of all gradients together, and the factor that brings it down to `clipNorm` (1 when
 * it is already within, or when clipNorm is 0). Squares are summed in iteration order.
 */
export function clipByGlobalNorm(grads: Iterable<Float32Array>, clipNorm: number): { norm: number; scale: number } {
  let sq = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
  const norm = Math.sqrt(sq);
  return { norm, scale: clipNorm > 0 && norm > clipNorm ? clipNorm / norm : 1 };
}

/** AdamW over named float32 parameters, updated in place; holds both moments and the step count. */
export class AdamW {
  /** Steps taken so far (Adam's t of the last step). */
  steps = 0;
  readonly m = new Map<string, Float32Array>();
  readonly v = new Map<string, Float32Array>();

  /** `names`: the parameters of `params` that train (each gets zeroed moments). */
  constructor(
    private readonly params: ReadonlyMap<string, Float32Array>,
    names: Iterable<string>,
  ) {
    for (const n of names) {
      const p = params.get(n);
      if (!p) throw new RangeError(`AdamW: no parameter ${n}`);
      this.m.set(n, new Float32Array(p.length));
      this.v.set(n, new Float32Array(p.length));
    }
  }

  /**
   * One step over the parameters that have a gradient: g ← g·gradScale (the clipping factor), the
   * bias-corrected Adam update at `lr`, and decoupled decay lr·weightDecay where `decays(name)`.
   */
  step(
    grads: Iterable<readonly [string, Float32Array]>,
    lr: number,
    h: AdamWHyper,
    opts: { gradScale?: number; decays?: (name: string) => boolean } = {},
  ): void {
    const { beta1, beta2, eps, weightDecay } = h;
    const scale = opts.gradScale ?? 1;
    const t = this.steps + 1;
    const bc1 = 1 - beta1 ** t;
    const bc2 = 1 - beta2 ** t;
    for (const [name, g] of grads) {
      const p = this.params.get(name);
      const m = this.m.get(name);
      const v = this.v.get(name);
      if (!p || !m || !v) throw new RangeError(`AdamW: ${name} is not a trained parameter`);
      const decay = !opts.decays || opts.decays(name) ? lr * weightDecay : 0;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]! * scale;
        // mi and vi are the float64 values, not their float32 roundings stored in m and v
        const mi = (m[i] = beta1 * m[i]! + (1 - beta1) * gi);
        const vi = (v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi);
        p[i] = p[i]! - decay * p[i]! - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
      }
    }
    this.steps = t;
  }
}
