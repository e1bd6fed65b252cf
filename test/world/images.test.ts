// World images: determinism (pure functions of seed and key), and sanity of what is drawn.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import type { RgbImage } from '../../src/clip/rgb-image.js';
import {
  COLOURS, DOMAINS, MIN_CONTRAST, NUM_CLASSES, WORLD_CLASS_INFO, WORLD_VERSION, classImage, colourRgb255, luma,
  pixelatedGrid, positionGrid, renderScene, sampleScene, keyedRng, worldPair, worldPairs, type Colour, type Domain, type WorldScene,
} from '../../src/data/world/index.js';

const sha = (img: RgbImage) => createHash('sha256').update(img.data).digest('hex');

function img(classIndex: number, index: number, domain: Domain = 'plain', extra: { seed?: number; size?: number; split?: 'train' | 'val' | 'test' } = {}) {
  return classImage({ seed: extra.seed ?? 0, classIndex, split: extra.split ?? 'train', index, domain, size: extra.size ?? 32 });
}

/** Pixels that differ from the background colour by more than `tol` (sum of |diff| over RGB, 0..765). */
function objectMask(image: RgbImage, bg: readonly number[], tol = 40): boolean[] {
  const out: boolean[] = [];
  const b = bg.map((v) => Math.round(v * 255));
  for (let i = 0; i < image.width * image.height; i++) {
    const d = Math.abs(image.data[3 * i]! - b[0]!) + Math.abs(image.data[3 * i + 1]! - b[1]!) + Math.abs(image.data[3 * i + 2]! - b[2]!);
    out.push(d > tol);
  }
  return out;
}

/** Pixels at least halfway from the background colour to the (single) object's colour: coverage >= 1/2. */
function coverMask(image: RgbImage, scene: WorldScene): boolean[] {
  const o = scene.objects[0]!.rgb, b = scene.background;
  const full = Math.abs(o[0] - b[0]) + Math.abs(o[1] - b[1]) + Math.abs(o[2] - b[2]);
  return objectMask(image, b, (255 * full) / 2);
}

test('same seed and key -> identical bytes; other seeds, indices, splits differ', () => {
  const a = img(5, 3), b = img(5, 3);
  assert.equal(a.image.data, b.image.data);
  assert.is(a.image.width, 32);
  assert.is(a.image.height, 32);
  assert.is.not(sha(img(5, 3, 'plain', { seed: 1 }).image), sha(a.image));
  assert.is.not(sha(img(5, 4).image), sha(a.image));
  assert.is.not(sha(img(5, 3, 'plain', { split: 'test' }).image), sha(a.image));
  for (const d of DOMAINS) assert.equal(img(7, 1, d).image.data, img(7, 1, d).image.data, d);
});

test('image i does not depend on what was generated before it, nor on the order', () => {
  const alone = sha(img(11, 9).image);
  const forward: string[] = [];
  for (let i = 0; i < 12; i++) forward.push(sha(img(11, i).image));
  const backward: string[] = [];
  for (let i = 11; i >= 0; i--) backward.unshift(sha(img(11, i).image));
  assert.is(forward[9], alone);
  assert.equal(forward, backward);
  assert.is(new Set(forward).size, 12, 'images of a class differ');
});

test('pinned output (if this fails, the generator changed: bump WORLD_VERSION, then update the hashes)', () => {
  assert.is(WORLD_VERSION, 1);
  const h = createHash('sha256');
  for (const d of DOMAINS) h.update(img(0, 0, d).image.data).update(img(30, 2, d, { size: 64, split: 'test' }).image.data);
  for (const p of worldPairs({ seed: 3, count: 8 })) h.update(p.image.data).update(p.caption);
  assert.is(h.digest('hex'), '1579bd4e005b842f1d2b04a594b10760ed4eecb2e8cd89614c5516014ab385c8');
});

test('the pretraining stream: pair i is the same from worldPair, from start 0 and from start i', () => {
  const opts = { seed: 7 };
  const all = [...worldPairs({ ...opts, count: 10 })];
  assert.is(all.length, 10);
  const tail = [...worldPairs({ ...opts, start: 6, count: 4 })];
  for (let i = 6; i < 10; i++) {
    const single = worldPair(i, opts);
    assert.equal(all[i]!.image.data, single.image.data);
    assert.is(all[i]!.caption, single.caption);
    assert.equal(tail[i - 6]!.image.data, single.image.data);
    assert.is(tail[i - 6]!.index, i);
  }
  assert.is.not(worldPair(0, { seed: 8 }).caption + sha(worldPair(0, { seed: 8 }).image), all[0]!.caption + sha(all[0]!.image));
  // Infinite when count is omitted.
  const it = worldPairs(opts);
  for (let i = 0; i < 3; i++) assert.not.ok(it.next().done);
});

test('one scene, every domain: styles change the pixels, not the objects', () => {
  const plain = img(20, 5);
  for (const d of DOMAINS) {
    const x = img(20, 5, d);
    assert.equal(x.scene, plain.scene, d);
    if (d !== 'plain') assert.is.not(sha(x.image), sha(plain.image), d);
  }
});

function nearestColour(rgb: readonly number[]): Colour {
  let best: Colour = 'red', bestD = Infinity;
  for (const c of COLOURS) {
    const n = colourRgb255(c);
    const d = (n[0] - rgb[0]!) ** 2 + (n[1] - rgb[1]!) ** 2 + (n[2] - rgb[2]!) ** 2;
    if (d < bestD) { bestD = d; best = c; }
  }
  return best;
}

test('plain images: the dominant non-background colour is the class colour', () => {
  for (let k = 0; k < NUM_CLASSES; k++) {
    for (let i = 0; i < 6; i++) {
      const { image, scene } = img(k, i, 'plain', { seed: i });
      const mask = objectMask(image, scene.background);
      const counts = new Map<string, number>();
      for (let p = 0; p < mask.length; p++) {
        if (!mask[p]) continue;
        const key = `${image.data[3 * p]},${image.data[3 * p + 1]},${image.data[3 * p + 2]}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const mode = [...counts].sort((a, b) => b[1] - a[1])[0]![0].split(',').map(Number);
      assert.is(nearestColour(mode), WORLD_CLASS_INFO[k]!.colour, `${WORLD_CLASS_INFO[k]!.name} #${i}: mode ${mode}`);
      // The interior is exactly the jittered colour.
      assert.equal(mode, scene.objects[0]!.rgb.map((v) => Math.round(v * 255)));
    }
  }
});

test('background contrast: luma at least MIN_CONTRAST from every single object', () => {
  for (let i = 0; i < 400; i++) {
    const scene = sampleScene(keyedRng(0, 'contrast-test', i), [{ colour: COLOURS[i % 12]!, shape: 'circle' }]);
    assert.ok(Math.abs(luma(scene.background) - luma(scene.objects[0]!.rgb)) >= MIN_CONTRAST - 1e-9);
  }
});

test('sketch images have far fewer object pixels than filled ones; large objects more than small', () => {
  let filled = 0, sketched = 0;
  const area = { small: [] as number[], large: [] as number[] };
  for (let k = 0; k < NUM_CLASSES; k++) {
    for (let i = 0; i < 4; i++) {
      const a = img(k, i), s = img(k, i, 'sketch');
      const nf = coverMask(a.image, a.scene).filter(Boolean).length;
      const ns = coverMask(s.image, s.scene).filter(Boolean).length;
      if (a.scene.objects[0]!.size === 'large') { filled += nf; sketched += ns; }
      area[a.scene.objects[0]!.size].push(nf);
      assert.ok(ns > 10, `${WORLD_CLASS_INFO[k]!.name}: the sketch is visible`);
    }
  }
  assert.ok(sketched < 0.6 * filled, `sketch ${sketched} vs filled ${filled}`);
  const mean = (v: number[]) => v.reduce((t, x) => t + x, 0) / v.length;
  assert.ok(mean(area.large) > 1.8 * mean(area.small), `large ${mean(area.large)} vs small ${mean(area.small)}`);
});

test('objects sit at their named position', () => {
  for (let i = 0; i < 120; i++) {
    const { image, scene } = img(i % NUM_CLASSES, i, 'plain', { size: 48 });
    const o = scene.objects[0]!;
    const mask = objectMask(image, scene.background);
    let sx = 0, sy = 0, n = 0;
    mask.forEach((m, p) => { if (m) { sx += p % 48; sy += Math.floor(p / 48); n++; } });
    const cx = sx / n / 48, cy = sy / n / 48;
    const { gx, gy } = positionGrid(o.position);
    // Mass centres of asymmetric shapes (moon, triangle) drift from the placement centre a little.
    const tol = 0.1;
    if (gx === 0) assert.ok(cx < 0.5 - tol / 2, `${o.position}: x ${cx}`);
    if (gx === 2) assert.ok(cx > 0.5 + tol / 2, `${o.position}: x ${cx}`);
    if (gx === 1) assert.ok(Math.abs(cx - 0.5) < tol, `${o.position}: x ${cx}`);
    if (gy === 0) assert.ok(cy < 0.5 - tol / 2, `${o.position}: y ${cy}`);
    if (gy === 2) assert.ok(cy > 0.5 + tol / 2, `${o.position}: y ${cy}`);
    if (gy === 1) assert.ok(Math.abs(cy - 0.5) < tol, `${o.position}: y ${cy}`);
  }
});

test('domains: noise is noisy, pixelated is blocky, patterns vary the background, sizes are options', () => {
  const plain = img(3, 0), noise = img(3, 0, 'noise');
  let diff = 0;
  for (let i = 0; i < plain.image.data.length; i++) diff += Math.abs(plain.image.data[i]! - noise.image.data[i]!);
  assert.ok(diff / plain.image.data.length > 15, `noise mean |diff| ${diff / plain.image.data.length}`);

  assert.is(pixelatedGrid(32), 16);
  const px = img(3, 0, 'pixelated').image;
  for (let y = 0; y < 32; y += 2) {
    for (let x = 0; x < 32; x += 2) {
      for (const [dx, dy] of [[1, 0], [0, 1], [1, 1]] as const) {
        for (let c = 0; c < 3; c++) assert.is(px.data[3 * ((y + dy) * 32 + x + dx) + c], px.data[3 * (y * 32 + x) + c]);
      }
    }
  }
  for (const d of ['stripes', 'checker', 'gradient'] as const) {
    const { image, scene } = img(3, 0, d);
    const colours = new Set<string>();
    const mask = objectMask(image, scene.background, 200);
    for (let p = 0; p < 32 * 32; p++) if (!mask[p]) colours.add(image.data.subarray(3 * p, 3 * p + 3).join());
    assert.ok(colours.size >= 2, `${d}: background has ${colours.size} colours`);
  }
  const big = img(3, 0, 'plain', { size: 64 }).image;
  assert.is(big.width, 64);
  assert.is(big.data.length, 64 * 64 * 3);
  assert.throws(() => img(3, 0, 'plain', { size: 4 }), /8\.\.1024/);
  assert.throws(() => img(3, 0, 'watercolour' as Domain), /unknown domain "watercolour"; valid: plain, sketch/);
  assert.throws(() => img(48, 0), /class index/);
  assert.throws(() => img(0, -1), /non-negative/);
  assert.throws(() => img(0, 0, 'plain', { seed: 1.5 }), /seed/);
});

test('two-object scenes never overlap and keep both objects visible', () => {
  for (let i = 0; i < 200; i++) {
    const rng = keyedRng(1, 'two', i);
    const scene = sampleScene(rng, [{ colour: COLOURS[i % 12]!, shape: 'square' }, { colour: COLOURS[(i + 5) % 12]!, shape: 'star' }]);
    const [a, b] = scene.objects as [typeof scene.objects[0], typeof scene.objects[0]];
    assert.ok(Math.hypot(a.cx - b.cx, a.cy - b.cy) > a.radius + b.radius, `scene ${i} overlaps`);
    const image = renderScene(scene, 32, 'plain', keyedRng(1, 'two-style', i));
    assert.ok(objectMask(image, scene.background).filter(Boolean).length > 60);
  }
});

test('rendering speed (informational)', () => {
  const n = 300;
  for (const d of ['plain', 'sketch', 'noise'] as const) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) img(i % NUM_CLASSES, 1000 + i, d);
    const ms = performance.now() - t0;
    console.log(`    ${d}: ${((n / ms) * 1000).toFixed(0)} images/s at 32x32`);
  }
});

test.run();
