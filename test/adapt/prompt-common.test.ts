// The prompt methods' shared training views (src/adapt/prompt-common.ts): `--crop-min` sets the
// RandomResizedCrop range [cropMin, 1]. At 1 every view is the whole image, flipped or not (what
// the world's small shapes need); at Dassl's 0.08 views are real crops. Checked pixel for pixel
// against the test transform of the same image.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DasslRecipe, dasslRecipeOptions, DASSL_SGD_DEFAULTS } from '../../src/adapt/prompt-common.js';
import { toNormalizedChw } from '../../src/clip/transforms.js';
import type { RgbImage } from '../../src/clip/rgb-image.js';

const S = 16;
function image(k: number): RgbImage {
  const data = new Uint8Array(S * S * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + k * 101 + ((i * i) % 13)) % 256;
  return { width: S, height: S, data };
}
function mirror(chw: Float32Array): Float32Array {
  const out = new Float32Array(chw.length);
  for (let c = 0; c < 3; c++) for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) out[c * S * S + y * S + x] = chw[c * S * S + y * S + (S - 1 - x)]!;
  return out;
}
const same = (a: Float32Array, b: Float32Array) => a.every((v, i) => v === b[i]);

async function views(cropMin: number): Promise<{ got: Float32Array; label: number }[]> {
  const opts = dasslRecipeOptions({ epochs: 1, lr: 0.002, batchSize: 4, ...DASSL_SGD_DEFAULTS, cropMin });
  const recipe = new DasslRecipe(opts);
  const items = Array.from({ length: 8 }, (_, i) => ({ impath: `img${i}`, label: i }));
  // The recipe decodes through its own memo; give it in-memory images by path.
  (recipe as unknown as { decode: (p: string) => Promise<RgbImage> }).decode = async (p: string) => image(Number(p.slice(3)));
  const out: { got: Float32Array; label: number }[] = [];
  for await (const b of recipe.batches(items, 7, S, 0, 0)) {
    for (let j = 0; j < b.count; j++) out.push({ got: b.pixels.slice(j * 3 * S * S, (j + 1) * 3 * S * S), label: b.labels[j]! });
  }
  return out;
}

test('--crop-min 1: every view is the whole image or its mirror, both kinds occur', async () => {
  assert.equal(new DasslRecipe(dasslRecipeOptions({ epochs: 1, lr: 1, batchSize: 1, ...DASSL_SGD_DEFAULTS, cropMin: 1 })).cropScale, [1, 1]);
  const v = await views(1);
  assert.is(v.length, 8);
  let flipped = 0;
  for (const { got, label } of v) {
    const plain = toNormalizedChw(image(label));
    const isPlain = same(got, plain), isMirror = same(got, mirror(plain));
    assert.ok(isPlain || isMirror, `view of image ${label} is neither the image nor its mirror`);
    if (!isPlain) flipped++;
  }
  assert.ok(flipped > 0 && flipped < 8, `flips: ${flipped} of 8`);
});

test("default (Dassl's 0.08): views are crops, not the whole image", async () => {
  assert.is(DASSL_SGD_DEFAULTS.cropMin, 0.08);
  const v = await views(0.08);
  const whole = v.filter(({ got, label }) => same(got, toNormalizedChw(image(label))) || same(got, mirror(toNormalizedChw(image(label))))).length;
  assert.ok(whole < 8, `${whole} of 8 views are whole images`);
});

test.run();
