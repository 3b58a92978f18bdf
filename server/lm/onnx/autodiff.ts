// Reverse-mode autodiff over the graph's tape: a reverse walk that calls each op's VJP rule.
import type { Tensor, TapeEntry } from './graph.ts';
import { add, zerosLike } from './ops.ts';

/**
 * Emit the gradient of Σ_k ⟨seed_k, y_k⟩ with respect to each tensor in `wrt`, as new nodes of the
 * same graph (the forward activations are shared, not recomputed). A `wrt` tensor the outputs do
 * not depend on gets zeros.
 */
export function gradients(ys: { y: Tensor; seed: Tensor }[], wrt: Tensor[]): Tensor[] {
  const g = ys[0]!.y.g;
  const tape: readonly TapeEntry[] = g.tape.slice();

  // Forward sweep: which tensors depend on a wrt tensor.
  const requires = new Set<number>(wrt.map((t) => t.id));
  for (const e of tape) {
    if (e.inputs.some((t) => requires.has(t.id))) for (const o of e.outputs) requires.add(o.id);
  }
  // Backward sweep: which tensors the outputs depend on.
  const useful = new Set<number>(ys.map((y) => y.y.id));
  for (let i = tape.length - 1; i >= 0; i--) {
    const e = tape[i]!;
    if (e.outputs.some((t) => useful.has(t.id))) for (const t of e.inputs) useful.add(t.id);
  }

  const grads = new Map<number, Tensor>();
  const accumulate = (t: Tensor, gt: Tensor): void => {
    const prev = grads.get(t.id);
    grads.set(t.id, prev ? add(prev, gt) : gt);
  };
  for (const { y, seed } of ys) accumulate(y, seed);

  for (let i = tape.length - 1; i >= 0; i--) {
    const e = tape[i]!;
    const outGrads = e.outputs.map((o) => grads.get(o.id) ?? null);
    if (outGrads.every((x) => x === null)) continue;
    const needs = e.inputs.map((t) => requires.has(t.id) && useful.has(t.id));
    if (!needs.some(Boolean)) continue;
    if (!e.vjp) throw new Error(`no gradient rule for op ${e.op}`);
    const inGrads = e.vjp(outGrads, needs);
    e.inputs.forEach((t, k) => {
      const gk = inGrads[k];
      if (needs[k] && gk) accumulate(t, gk);
    });
  }
  return wrt.map((t) => grads.get(t.id) ?? zerosLike(t));
}
