// The composed attention path (permute + matmul + masked softmax) against the float64 reference,
// and against the fused kernels on a CLIP-like shape.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { attentionComposed } from '../../src/ops/attention-composed.js';
import { attention } from '../../src/ops/attention.js';
import { tensor } from '../../src/tensor/tensor.js';
import { attentionRef } from '../ref/attention.js';
import { checkOp, randArray, relErr } from '../helpers/parity.js';

for (const [b, tq, tk, d, heads, causal] of [
  [1, 1, 1, 8, 2, false],
  [2, 7, 7, 16, 4, true],
  [2, 5, 9, 16, 2, true],
  [3, 13, 13, 24, 3, false],
] as const) {
  test(`composed attention B${b} Tq${tq} Tk${tk} D${d} h${heads}${causal ? ' causal' : ''}`, async () => {
    await checkOp({
      name: 'attentionComposed',
      inputs: [{ shape: [b, tq, d] }, { shape: [b, tk, d] }, { shape: [b, tk, d] }],
      gpu: (q, k, v) => attentionComposed(q, k, v, { heads, causal }),
      ref: (q, k, v) => attentionRef(q, k, v, { heads, causal }),
    });
  });
}

test('composed and fused attention agree on a CLIP text shape', async () => {
  const [b, t, d] = [2, 77, 64];
  const mk = (s: number) => tensor(Float32Array.from(randArray(b * t * d, s)), [b, t, d]);
  const [q, k, v] = [mk(1), mk(2), mk(3)];
  const a = (await attentionComposed(q, k, v, { heads: 4, causal: true }).read()) as Float32Array;
  const f = (await attention(q, k, v, { heads: 4, causal: true }).read()) as Float32Array;
  assert.ok(relErr(a, f) < 1e-5, `composed vs fused ${relErr(a, f)}`);
  for (const x of [q, k, v]) x.dispose();
});

test.run();
