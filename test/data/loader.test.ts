// Streaming loader: batch assembly, equality with the existing preprocess functions,
// determinism of seeded augmentation under out-of-order decodes, the prefetch bound, and
// missing / corrupt images (fail with the path, or skip with counts and a summary).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageLoadError, ImageLoader, type Batch, type LoaderItem } from '../../src/data/loader-node.js';
import { loadAugmentedForClip, loadImageForClip } from '../../src/clip/preprocess-node.js';
import { decodeImageFile } from '../../src/clip/image-decode-node.js';
import { Rng } from '../../src/clip/rng.js';
import { ROOT, errorOf, scratchDir, writeImage } from './helpers.js';

const SIZE = 32;
const dir = scratchDir();
const items: LoaderItem[] = [];
for (let i = 0; i < 10; i++) {
  const p = join(dir, `img${i}.${i % 2 ? 'png' : 'jpg'}`);
  await writeImage(p, 40 + i * 3, 30 + i * 5, i);
  items.push({ impath: p, label: i % 3 });
}

async function collect(loader: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader) out.push(b);
  return out;
}

const per = 3 * SIZE * SIZE;
const slice = (b: Batch, k: number) => b.images.subarray(k * per, (k + 1) * per);

test('test mode: batches in order, last one short, tensors equal loadImageForClip', async () => {
  const loader = new ImageLoader(items, { batchSize: 4, mode: 'test', size: SIZE });
  const bs = await collect(loader);
  assert.equal(bs.map((b) => b.count), [4, 4, 2]);
  assert.equal(bs.flatMap((b) => Array.from(b.indices)), [...items.keys()]);
  assert.equal(bs.flatMap((b) => Array.from(b.labels)), items.map((d) => d.label));
  assert.equal(bs[1]!.paths, items.slice(4, 8).map((d) => d.impath));
  for (let i = 0; i < items.length; i++) {
    const want = await loadImageForClip(items[i]!.impath, SIZE);
    assert.equal(Array.from(slice(bs[Math.floor(i / 4)]!, i % 4)), Array.from(want), `image ${i}`);
  }
  assert.is(loader.batchesPerPass, 3);
  const dl = await collect(new ImageLoader(items, { batchSize: 4, mode: 'test', size: SIZE, dropLast: true }));
  assert.equal(dl.map((b) => b.count), [4, 4]);
});

// A decoder that finishes in a scrambled order, to prove results do not depend on timing.
function jitteryDecode(seed: number) {
  const r = new Rng(seed);
  return async (p: string) => {
    await new Promise((res) => setTimeout(res, r.randint(0, 15)));
    return decodeImageFile(p);
  };
}

test('train mode: seeded shuffle + augmentation reproducible regardless of decode completion order', async () => {
  const run = async (decodeSeed: number) => collect(new ImageLoader(items, { batchSize: 3, mode: 'train', size: SIZE, rng: new Rng(5), decode: jitteryDecode(decodeSeed), concurrency: 5 }));
  const a = await run(1), b = await run(2);
  assert.equal(a.map((x) => Array.from(x.indices)), b.map((x) => Array.from(x.indices)));
  for (let k = 0; k < a.length; k++) {
    assert.equal(a[k]!.augment, b[k]!.augment);
    assert.ok(a[k]!.images.every((v, i) => v === b[k]!.images[i]), `batch ${k} pixels`);
  }
  const order = a.flatMap((x) => Array.from(x.indices));
  assert.equal([...order].sort((x, y) => x - y), [...items.keys()], 'a permutation of all items');
  assert.not.equal(order, [...items.keys()], 'shuffled');
  const c = await collect(new ImageLoader(items, { batchSize: 3, mode: 'train', size: SIZE, rng: new Rng(6) }));
  assert.not.equal(c.map((x) => x.augment), a.map((x) => x.augment), 'another seed, other views');
});

test('train mode: each view equals loadAugmentedForClip with the per-item fork (test mode without shuffle)', async () => {
  const rng = new Rng(11);
  const bs = await collect(new ImageLoader(items.slice(0, 4), { batchSize: 4, mode: 'train', size: SIZE, rng, shuffle: false, augment: { scale: [0.5, 1] } }));
  const ref = new Rng(11);
  for (let i = 0; i < 4; i++) {
    const v = await loadAugmentedForClip(items[i]!.impath, ref.fork(), { size: SIZE, scale: [0.5, 1] });
    assert.equal(bs[0]!.augment![i], v.params);
    assert.equal(Array.from(slice(bs[0]!, i)), Array.from(v.tensor));
  }
});

test('prefetch window and decode concurrency stay bounded; several passes', async () => {
  const many = Array.from({ length: 40 }, (_, i) => items[i % items.length]!);
  const loader = new ImageLoader(many, { batchSize: 4, mode: 'test', size: SIZE, prefetch: 2, concurrency: 3, decode: jitteryDecode(3) });
  let consumed = 0;
  for await (const b of loader) {
    consumed += b.count;
    await new Promise((res) => setTimeout(res, 5)); // slow consumer
  }
  for await (const b of loader.pass()) consumed += b.count;
  const r = loader.report();
  assert.is(consumed, 80);
  assert.is(r.passes, 2);
  assert.is(r.delivered, 80);
  assert.ok(r.maxBuffered <= 8, `buffered ${r.maxBuffered} <= prefetch·batch = 8`);
  assert.ok(r.maxInFlight <= 3 && r.maxInFlight >= 2, `in flight ${r.maxInFlight}`);
});

const bad = [...items.slice(0, 3)];
const corrupt = join(dir, 'corrupt.jpg');
copyFileSync(join(ROOT, 'test/preprocess/fixtures/bad_truncated.jpg'), corrupt);
bad.splice(1, 0, { impath: join(dir, 'gone.jpg'), label: 7 });
bad.push({ impath: corrupt, label: 8 });
bad.push(...items.slice(3, 6));

test("onError 'fail' (default): the first bad image stops the pass with its path and kind", async () => {
  const loader = new ImageLoader(bad, { batchSize: 2, mode: 'test', size: SIZE });
  let err: unknown;
  try { await collect(loader); } catch (e) { err = e; }
  assert.ok(err instanceof ImageLoadError);
  assert.is((err as ImageLoadError).kind, 'missing');
  assert.is((err as ImageLoadError).path, join(dir, 'gone.jpg'));
  assert.match((err as Error).message, /gone\.jpg/);
  const l2 = new ImageLoader(bad.filter((d) => !d.impath.endsWith('gone.jpg')), { batchSize: 2, mode: 'test', size: SIZE });
  const e2 = await errorOf(() => collect(l2));
  assert.match(e2, /corrupt\.jpg/);
});

test("onError 'skip': bad images left out, each logged with its path, counted, summarised at the end", async () => {
  const logs: string[] = [];
  const loader = new ImageLoader(bad, { batchSize: 2, mode: 'test', size: SIZE, onError: 'skip', log: (m) => logs.push(m) });
  const bs = await collect(loader);
  assert.equal(bs.map((b) => b.count), [2, 2, 2]);
  assert.equal(bs.flatMap((b) => b.paths), [...items.slice(0, 6)].map((d) => d.impath));
  const r = loader.report();
  assert.equal(r.skipped.map((s) => [s.index, s.kind]), [[1, 'missing'], [4, 'corrupt']]);
  assert.is(logs.length, 3);
  assert.match(logs[0]!, /skipping missing image .*gone\.jpg/);
  assert.match(logs[1]!, /skipping corrupt image .*corrupt\.jpg/);
  assert.match(logs[2]!, /pass 0: skipped 2 of 8 images \(1 missing, 1 corrupt\): .*gone\.jpg, .*corrupt\.jpg/);
  assert.equal(loader.skipped.length, 2);
});

test('option errors', async () => {
  assert.match(await errorOf(() => new ImageLoader(items, { batchSize: 2, mode: 'train' })), /seeded rng is required/);
  assert.match(await errorOf(() => new ImageLoader(items, { batchSize: 2, mode: 'test', shuffle: true })), /seeded rng is required/);
  assert.match(await errorOf(() => new ImageLoader(items, { batchSize: 0, mode: 'test' })), /batchSize must be a positive integer/);
  assert.match(await errorOf(() => new ImageLoader(items, { batchSize: 1, mode: 'test', prefetch: 0 })), /prefetch must be a positive integer/);
  assert.match(await errorOf(() => new ImageLoader(items, { batchSize: 1, mode: 'test', onError: 'ignore' as 'skip' })), /onError must be 'fail' or 'skip'/);
});

test.run();
