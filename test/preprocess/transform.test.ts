// The CLIP test transform (torchvision Resize(224, BICUBIC) → CenterCrop(224) → ToTensor → Normalize)
// against PIL + torchvision (cross-checked with torchvision 0.14 in the generator).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clipTestTransformU8, preprocessBatchForClip, preprocessForClip } from '../../src/clip/preprocess.js';
import { CLIP_MEAN, CLIP_STD, centerCrop, centerCropOffsets, crop, hflip, normalizeTable, resizeShorterSize, roundHalfEven, toNormalizedChw } from '../../src/clip/transforms.js';
import { expected, load, sha256 } from './helpers.js';

test('normalize: all 3x256 uint8 → float32 values equal torch ToTensor+Normalize', () => {
  assert.equal(expected.normalize.mean, [...CLIP_MEAN]);
  assert.equal(expected.normalize.std, [...CLIP_STD]);
  const t = normalizeTable();
  let maxDiff = 0;
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) {
      const d = Math.abs(t[c * 256 + v]! - expected.normalize.table[c]![v]!);
      maxDiff = Math.max(maxDiff, d);
    }
  }
  assert.is(maxDiff, 0, `max |diff| ${maxDiff}`);
});

test('test transform: uint8 stage exact, float32 exact (and within 1e-6 on samples) for every source', async () => {
  for (const c of expected.testTransform) {
    const img = await load(c.src);
    assert.equal(resizeShorterSize(img.width, img.height, c.size), c.resized, `${c.src} resize size`);
    assert.equal(Object.values(centerCropOffsets(c.resized[0], c.resized[1], c.size, c.size)), c.offset, `${c.src} crop offsets`);
    const u8 = clipTestTransformU8(img, c.size);
    assert.is(sha256(u8.data), c.u8sha256, `${c.src}@${c.size} uint8 stage`);
    const f = preprocessForClip(img, c.size);
    assert.is(f.length, 3 * c.size * c.size);
    for (const [i, v] of c.samples) assert.ok(Math.abs(f[i]! - v) <= 1e-6, `${c.src} sample ${i}: ${f[i]} vs ${v}`);
    assert.is(sha256(f), c.f32sha256, `${c.src}@${c.size} float32 output`);
  }
});

test('centre crop: ties use round-half-even like torchvision (0.5 → 0, 1.5 → 2)', () => {
  assert.equal(resizeShorterSize(302, 300, 224), [225, 224]);
  assert.equal(centerCropOffsets(225, 224, 224, 224), { top: 0, left: 0 });
  assert.equal(resizeShorterSize(300, 305, 224), [224, 227]);
  assert.equal(centerCropOffsets(224, 227, 224, 224), { top: 2, left: 0 });
  assert.equal([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, 2.5001].map(roundHalfEven), [0, 2, 2, -0, -2, 2, 3]);
});

test('centre crop larger than the image pads with zeros like torchvision', () => {
  const img = { width: 2, height: 1, data: new Uint8Array([10, 11, 12, 20, 21, 22]) };
  // crop 5x3: pad left (5-2)//2 = 1, right 2, top (3-1)//2 = 1, bottom 1.
  const out = centerCrop(img, 5, 3);
  const px = (x: number, y: number) => Array.from(out.data.subarray((y * 5 + x) * 3, (y * 5 + x) * 3 + 3));
  assert.equal(px(1, 1), [10, 11, 12]);
  assert.equal(px(2, 1), [20, 21, 22]);
  assert.equal(px(0, 1), [0, 0, 0]);
  assert.equal(px(3, 1), [0, 0, 0]);
  assert.equal(px(1, 0), [0, 0, 0]);
});

test('crop outside the image fills zeros (PIL crop); hflip mirrors', () => {
  const img = { width: 2, height: 2, data: new Uint8Array([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]) };
  assert.equal(Array.from(crop(img, -1, 1, 2, 2).data), [0, 0, 0, 0, 0, 0, 2, 2, 2, 0, 0, 0]);
  assert.equal(Array.from(hflip(img).data), [2, 2, 2, 1, 1, 1, 4, 4, 4, 3, 3, 3]);
});

test('batch helper: [B,3,H,W] equals per-image preprocessing; in-place offset writes', async () => {
  const imgs = [await load('mix_300x200.png'), await load('noise_20x30.png'), await load('edges_37x23.png')];
  const size = 32;
  const batch = preprocessBatchForClip(imgs, size);
  const per = 3 * size * size;
  assert.is(batch.length, imgs.length * per);
  imgs.forEach((img, b) => assert.equal(Array.from(batch.subarray(b * per, (b + 1) * per)), Array.from(preprocessForClip(img, size))));
  const buf = new Float32Array(per + 5).fill(7);
  preprocessForClip(imgs[0]!, size, buf, 5);
  assert.is(buf[4], 7);
  assert.equal(Array.from(buf.subarray(5)), Array.from(batch.subarray(0, per)));
  assert.throws(() => toNormalizedChw(imgs[0]!, new Float32Array(10)), /too small/);
});

test.run();
