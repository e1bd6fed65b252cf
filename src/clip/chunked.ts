// Class-prompt encoding with memory bounded by a chunk, not by the class count.
// Prompt methods backpropagate through the text encoder for every class each step (ImageNet: 1000
// sequences). Holding all their activations does not fit small devices, so:
//   1. forward(): encode every chunk without a tape -> features F [C, E], returned as a leaf that
//      requires grad (the caller builds the loss from it and calls loss.backward() -> F.grad);
//   2. backward(): for each chunk, re-run it with the tape on and backpropagate F.grad's rows.
// Gradients equal the unchunked computation (same kernels, same order within a chunk).
import { GpuError } from '../gpu/index.js';
import { keep, tidy, type Tensor } from '../tensor/tensor.js';
import { backward as tapeBackward, noGrad } from '../autograd/tape.js';
import { concat, slice } from '../ops/shape.js';

/** Builds the text-encoder output rows [end - start, E] for classes [start, end), with grad. */
export type ChunkFn = (start: number, end: number) => Tensor;

export class ChunkedEncoder {
  private features: Tensor | null = null;

  constructor(
    private readonly encode: ChunkFn,
    readonly count: number,
    readonly chunk: number,
  ) {
    if (!Number.isInteger(chunk) || chunk < 1) throw new GpuError(`chunked encoder: chunk must be a positive integer, got ${chunk}`);
    if (count < 1) throw new GpuError('chunked encoder: no classes');
  }

  /** Features of all classes (a leaf requiring grad); dispose it after backward(). */
  forward(): Tensor {
    const parts: Tensor[] = [];
    noGrad(() => {
      for (let s = 0; s < this.count; s += this.chunk) parts.push(keep(tidy(() => this.encode(s, Math.min(this.count, s + this.chunk)))));
    });
    const f = parts.length === 1 ? parts[0]! : noGrad(() => concat(parts, 0));
    if (parts.length > 1) for (const p of parts) p.dispose();
    f.requiresGrad = true;
    this.features = f;
    return f;
  }

  /** Backpropagates features.grad into whatever the chunks depend on (prompt parameters). */
  backward(): void {
    const f = this.features;
    if (!f) throw new GpuError('chunked encoder: backward() before forward()');
    if (!f.grad) throw new GpuError('chunked encoder: the features received no gradient (did the loss use them and was backward() called?)');
    const g = f.grad;
    for (let s = 0; s < this.count; s += this.chunk) {
      const e = Math.min(this.count, s + this.chunk);
      const out = tidy(() => this.encode(s, e));
      const gs = noGrad(() => (this.count === e - s ? g.share() : slice(g, 0, s, e)));
      tapeBackward(out, { gradient: gs });
      gs.dispose();
      out.dispose();
    }
    f.dispose();
    this.features = null;
  }
}
