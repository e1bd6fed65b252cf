// FLOP counts for transformer blocks and CLIP towers: the matrix products only (2·M·N·K each).
// Layer norms, softmax, activations, residual adds and data movement are left out: they are a
// few percent of the work at CLIP sizes, and leaving them out is what makes GFLOP/s comparable
// with a matmul's rate.
//
// Backward counts what the engine has to compute, not a blanket "2x forward":
// - a linear layer costs 2·M·N·K for dX when its input needs a gradient, plus 2·M·N·K for dW when
//   its weight trains (a frozen weight costs no dW kernel in cliptune's tape);
// - the attention products (Q·Kᵀ and P·V) multiply two activations, so both operands' gradients are
//   computed: 2x their forward;
// - the full T×T score matrix is counted for causal (text) attention too, as the kernels compute it.
import type { ClipConfig } from '../../src/clip/checkpoint.js';

export interface BlockShape {
  /** Sequences in the batch. */
  batch: number;
  tokens: number;
  width: number;
  mlpHidden: number;
}

export interface ProductFlops {
  /** qkv, out, fc and proj projections. */
  linear: number;
  /** Q·Kᵀ and P·V over all heads. */
  attention: number;
}

/** One pre-LN residual attention block, forward. */
export function blockForward(s: BlockShape): ProductFlops {
  const rows = s.batch * s.tokens;
  const w = s.width;
  const linear = 2 * rows * w * 3 * w + 2 * rows * w * w + 2 * 2 * rows * w * s.mlpHidden;
  // heads · (2·T·T·headDim) = 2·T·T·W per sequence, for each of the two products.
  const attention = 2 * (2 * s.batch * s.tokens * s.tokens * w);
  return { linear, attention };
}

export interface GradNeeds {
  /** The block's input (hence every activation inside it) needs a gradient. */
  input: boolean;
  /** The weights train. */
  weights: boolean;
}

/** One block, backward, for what needs a gradient. */
export function blockBackward(s: BlockShape, needs: GradNeeds): number {
  const f = blockForward(s);
  if (!needs.input && !needs.weights) return 0;
  // Training weights also needs the activation gradients inside the block (dW of qkv needs dQ/dK/dV,
  // which need dA from out_proj...), so they are counted whenever anything trains; only the
  // block's own input gradient (qkv's dX) would be skipped, which this count ignores.
  return f.linear + (needs.weights ? f.linear : 0) + 2 * f.attention;
}

export function total(f: ProductFlops): number {
  return f.linear + f.attention;
}

export interface StepFlops {
  forward: number;
  backward: number;
}

/** Image tower forward: patch embedding, `layers` blocks over grid²+1(+prompts) tokens, projection. */
export function imageTower(c: ClipConfig, batch: number, opts: { prompts?: number; train?: boolean } = {}): StepFlops {
  const v = c.image;
  const grid = v.resolution / v.patchSize;
  const patches = batch * grid * grid;
  const tokens = grid * grid + 1 + (opts.prompts ?? 0);
  const shape: BlockShape = { batch, tokens, width: v.width, mlpHidden: v.mlpHidden };
  const patchEmbed = 2 * patches * 3 * v.patchSize * v.patchSize * v.width;
  const proj = 2 * batch * v.width * c.embedDim;
  const forward = patchEmbed + v.layers * total(blockForward(shape)) + proj;
  // Prompt training: frozen weights, gradients flow through every block down to layer 0's prompt
  // rows; the pixels need none, so the patch embedding has no backward.
  const backward = opts.train ? v.layers * blockBackward(shape, { input: true, weights: false }) + proj : 0;
  return { forward, backward };
}

/** Text tower from embeddings: `layers` blocks over `tokens`, projection of the pooled rows. */
export function textTower(c: ClipConfig, sequences: number, tokens: number, opts: { train?: boolean } = {}): StepFlops {
  const t = c.text;
  const shape: BlockShape = { batch: sequences, tokens, width: t.width, mlpHidden: t.mlpHidden };
  const proj = 2 * sequences * t.width * c.embedDim;
  const forward = t.layers * total(blockForward(shape)) + proj;
  const backward = opts.train ? t.layers * blockBackward(shape, { input: true, weights: false }) + proj : 0;
  return { forward, backward };
}

/** Logits between `images` features and `classes` features of dimension E (one side trainable). */
export function logitsFlops(c: ClipConfig, images: number, classes: number, train: boolean): StepFlops {
  const f = 2 * images * classes * c.embedDim;
  return { forward: f, backward: train ? f : 0 };
}

export function sum(...xs: StepFlops[]): StepFlops {
  return { forward: xs.reduce((a, x) => a + x.forward, 0), backward: xs.reduce((a, x) => a + x.backward, 0) };
}

/**
 * One pretraining step (src/train/pretrain.ts): every weight trains, so each linear layer costs
 * forward + dX + dW (3x its forward) and the attention products 3x theirs (forward + both
 * operands); the patch embedding costs forward + dW (the pixels need no gradient); each tower's
 * projection forward + dX + dW. The text tower runs in length groups, each only up to its longest
 * caption (`groups`: sequences and tokens per group). The contrastive loss computes the logits
 * twice (image·textᵀ and text·imageᵀ), each with both operands' gradients.
 */
export function pretrainStep(c: ClipConfig, batch: number, groups: readonly { rows: number; tokens: number }[]): StepFlops {
  const v = c.image;
  const grid = v.resolution / v.patchSize;
  const img: BlockShape = { batch, tokens: grid * grid + 1, width: v.width, mlpHidden: v.mlpHidden };
  const patchEmbed = 2 * batch * grid * grid * 3 * v.patchSize * v.patchSize * v.width;
  const imgProj = 2 * batch * v.width * c.embedDim;
  let forward = patchEmbed + v.layers * total(blockForward(img)) + imgProj;
  let backward = patchEmbed + v.layers * blockBackward(img, { input: true, weights: true }) + 2 * imgProj;
  for (const g of groups) {
    const txt: BlockShape = { batch: g.rows, tokens: g.tokens, width: c.text.width, mlpHidden: c.text.mlpHidden };
    const proj = 2 * g.rows * c.text.width * c.embedDim;
    forward += c.text.layers * total(blockForward(txt)) + proj;
    backward += c.text.layers * blockBackward(txt, { input: true, weights: true }) + 2 * proj;
  }
  const logits = 2 * (2 * batch * batch * c.embedDim);
  return { forward: forward + logits, backward: backward + 2 * logits };
}
