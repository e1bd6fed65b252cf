// Float64 reference of Prompt-OT's loss (methods.md 5.b), composed from test/ref/core.ts primitives:
// CE(s·normalize(img)·normalize(txt)ᵀ, y) + λ·Σ π*∘(η‖z_i − z⁰_j‖²), z = [v; t_y], z⁰ = [v⁰; t⁰_y],
// with π* the exact plan of the float64 cost (brute force over permutations), a constant.
import * as core from './core.js';
import { R } from './core.js';
import { l2normalize, pairwiseSqDist } from './nn.js';
import { crossEntropy } from './losses.js';
import { bruteForceAssignment, planFromPermutation } from '../../src/adapt/ot-host.js';

export interface PromptOtRefInputs {
  /** Unnormalised adapted image embeddings [B, E] and class text embeddings [C, E] (the leaves). */
  img: R;
  txt: R;
  /** Normalised frozen features [B, E] and [C, E]. */
  img0: ArrayLike<number>;
  txt0: ArrayLike<number>;
  labels: readonly number[];
  scale: number;
  lambda: number;
  eta: number;
}

export function promptOtRef(i: PromptOtRefInputs): { loss: R; ce: R; ot: R; cost: Float64Array; perm: Int32Array } {
  const [B, E] = i.img.shape as [number, number];
  const C = i.txt.shape[0]!;
  const v = l2normalize(i.img);
  const t = l2normalize(i.txt);
  const logits = core.scale(core.matmul(v, core.transpose(t)), i.scale);
  const ce = crossEntropy(logits, i.labels);
  const z = core.concat([v, core.indexSelect(t, i.labels, 0)], 1);
  const z0 = core.concat([core.constant(i.img0, [B, E]), core.indexSelect(core.constant(i.txt0, [C, E]), i.labels, 0)], 1);
  const cost = core.scale(pairwiseSqDist(z, z0), i.eta);
  const { perm } = bruteForceAssignment(cost.data, B);
  const ot = core.sum(core.mul(cost, core.constant(planFromPermutation(perm), [B, B])));
  const loss = core.add(ce, core.scale(ot, i.lambda));
  return { loss, ce, ot, cost: Float64Array.from(cost.data), perm };
}
