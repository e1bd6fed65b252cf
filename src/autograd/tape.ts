// Tape autograd. Each op records one node: its inputs, which of them need a gradient, and a
// backward closure that computes only those gradients from the tensors it chose to save. A frozen
// weight therefore costs no dW kernel and keeps nothing alive. backward() walks the tape in reverse,
// accumulates gradients over multiple uses, writes leaf `.grad`, then frees every saved tensor.
import { keep, type Tensor } from '../tensor/tensor.js';
import { GpuError } from '../gpu/device.js';
import { add } from '../ops/elementwise.js';
import { full } from '../ops/fill.js';

/** Computes the gradients of the inputs marked in `needs` from the output gradient `g`. */
export type BackwardFn = (g: Tensor) => readonly (Tensor | null | undefined)[];

export interface TapeNode {
  readonly label: string;
  readonly outId: number;
  readonly inputs: readonly Tensor[];
  readonly needs: readonly boolean[];
  readonly backward: BackwardFn;
  readonly saved: Tensor[];
}

export interface SaveContext {
  /** Keeps `t`'s storage alive until backward has run; use the returned handle in the closure. */
  save(t: Tensor): Tensor;
}

export interface BackwardOptions {
  /** Keep the tape (and saved tensors) for another backward pass. */
  retainGraph?: boolean;
  /** Seed gradient d(objective)/d(output), same shape as the output (default: 1 for a scalar). */
  gradient?: Tensor;
}

let gradEnabled = true;
let tape: TapeNode[] = [];

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording ops (inference, optimiser updates, backward kernels). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Records `out` as produced by `label` from `inputs`. `make` is called only when some input needs a
 * gradient; it receives which ones do, saves what those gradients need, and returns the closure.
 */
export function record(
  out: Tensor,
  label: string,
  inputs: readonly Tensor[],
  make: (needs: readonly boolean[], ctx: SaveContext) => BackwardFn,
): Tensor {
  if (!gradEnabled) return out;
  const needs = inputs.map((t) => t.requiresGrad);
  if (!needs.some(Boolean)) return out;
  const saved: Tensor[] = [];
  const ctx: SaveContext = {
    save(t) {
      const h = t.share();
      saved.push(h);
      return h;
    },
  };
  const backward = make(needs, ctx);
  const node: TapeNode = { label, outId: out.id, inputs, needs, backward, saved };
  out.requiresGrad = true;
  out.node = node;
  tape.push(node);
  return out;
}

/** Number of nodes on the tape (tests use it to check frozen paths record nothing). */
export function tapeLength(): number {
  return tape.length;
}

/** Drops the tape without running backward (frees saved tensors). */
export function clearTape(): void {
  for (const n of tape) for (const s of n.saved) s.dispose();
  tape = [];
}

export function backward(loss: Tensor, opts: BackwardOptions = {}): void {
  loss.assertAlive('backward');
  if (opts.gradient) {
    if (opts.gradient.size !== loss.size) throw new GpuError(`backward(): seed ${opts.gradient.describe()} does not match ${loss.describe()}`);
  } else if (loss.size !== 1) {
    throw new GpuError(`backward(): ${loss.describe()} is not a scalar (pass a seed gradient)`);
  }
  if (!loss.requiresGrad) throw new GpuError(`backward(): ${loss.describe()} does not depend on any tensor that requires grad`);
  const grads = new Map<number, Tensor>();
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    grads.set(loss.id, opts.gradient ? opts.gradient.share(loss.shape) : full(loss.shape, 1, loss.gpu));
    for (let i = tape.length - 1; i >= 0; i--) {
      const node = tape[i]!;
      const g = grads.get(node.outId);
      if (!g) continue;
      grads.delete(node.outId);
      const ins = node.backward(g);
      const seen = new Set<Tensor>();
      for (let j = 0; j < node.inputs.length; j++) {
        const gi = ins[j];
        if (!node.needs[j] || !gi) continue;
        const x = node.inputs[j]!;
        if (gi.size !== x.size) {
          throw new GpuError(`backward of ${node.label}: gradient ${gi.describe()} does not match input ${x.describe()}`);
        }
        // Each stored gradient is its own handle: a closure may return one tensor for two inputs.
        const own = gi.shape.length === x.shape.length && gi.shape.every((d, k) => d === x.shape[k]) ? gi.share() : gi.share(x.shape);
        seen.add(gi);
        if (x.node) accumulate(grads, x.id, own);
        else accumulateLeaf(x, own);
      }
      for (const t of seen) t.dispose();
      g.dispose();
    }
  } finally {
    gradEnabled = prev;
    for (const t of grads.values()) t.dispose();
    if (!opts.retainGraph) clearTape();
  }
}

function accumulate(grads: Map<number, Tensor>, id: number, g: Tensor): void {
  const prev = grads.get(id);
  if (!prev) {
    grads.set(id, g);
    return;
  }
  grads.set(id, add(prev, g));
  prev.dispose();
  g.dispose();
}

function accumulateLeaf(x: Tensor, g: Tensor): void {
  if (!x.requiresGrad) {
    g.dispose();
    return;
  }
  if (!x.grad) {
    x.grad = g;
    return;
  }
  // Out of place: the old gradient may share storage with a tensor the caller still holds.
  const sum = keep(add(x.grad, g));
  x.grad.dispose();
  g.dispose();
  x.grad = sum;
}
