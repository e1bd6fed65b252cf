// The feature cache: entries keyed by checkpoint hash + image list + view, verified on read;
// augmented views are reproducible and distinct; a changed image file changes the key.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, utimesSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { getGpu } from '../../src/gpu/index.js';
import { ClipModel } from '../../src/clip/model.js';
import { randomClipWeights } from '../../src/clip/configs.js';
import { loadClipTokenizer } from '../../src/clip/tokenizer-node.js';
import { ClipFeatures, FeatureCache } from '../../src/train/features.js';
import { PROLIP_RRC_SCALE } from '../../src/clip/augment.js';
import { removeDir, tempDir, TINY_CONFIG, writeWorld } from './helpers.js';

const root = tempDir('features');
test.after(() => removeDir(root));

test('FeatureCache: round trip, other keys miss, a file whose stored key differs is not used, root null stores nothing', async () => {
  const c = new FeatureCache(join(root, 'c1'));
  const key = { kind: 'pooled', weights: 'abc', items: 'x', view: { mode: 'test' } };
  assert.is(await c.get(key), null);
  await c.put(key, { shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) });
  const hit = await c.get(key);
  assert.equal(hit?.shape, [2, 3]);
  assert.equal(Array.from(hit!.data), [1, 2, 3, 4, 5, 6]);
  assert.is(await c.get({ ...key, items: 'y' }), null);
  // Overwrite the entry's file with another key's content: the stored key no longer matches.
  const other = new FeatureCache(join(root, 'c2'));
  await other.put({ ...key, items: 'z' }, { shape: [1], data: Float32Array.of(9) });
  const dir1 = join(root, 'c1', 'abc');
  const dir2 = join(root, 'c2', 'abc');
  const f1 = join(dir1, readdirSync(dir1)[0]!);
  writeFileSync(f1, readFileSync(join(dir2, readdirSync(dir2)[0]!)));
  assert.is(await c.get(key), null, 'a stale or colliding entry is recomputed, not used');
  const none = new FeatureCache(null);
  await none.put(key, { shape: [1], data: Float32Array.of(1) });
  assert.is(await none.get(key), null);
});

test('ClipFeatures: cached pre-projection features, reproducible distinct views, a changed image changes the key', async () => {
  const gpu = await getGpu();
  const data = join(root, 'world');
  await writeWorld(data, 2, { train: 3, val: 0, test: 1 });
  const split = JSON.parse(readFileSync(join(data, 'split_zhou_World.json'), 'utf8'));
  const items = (split.train as [string, number][]).map(([p, y]) => ({ impath: join(data, 'images', p), label: y }));
  const model = ClipModel.fromTensors(gpu, TINY_CONFIG, randomClipWeights(TINY_CONFIG, 5));
  const tok = await loadClipTokenizer();
  const dir = join(root, 'cache');
  const a = new FeatureCache(dir);
  const fa = new ClipFeatures(model, tok, { cache: a, weightsHash: 'h1', progressFrom: Infinity });
  const view = (v: number) => ({ mode: 'train' as const, scale: PROLIP_RRC_SCALE, flipP: 0.5, seed: 3, view: v });
  const t0 = await fa.pooled(items, { mode: 'test' });
  assert.is(t0.length, items.length * TINY_CONFIG.image.width);
  const v0 = await fa.pooled(items, view(0));
  const v1 = await fa.pooled(items, view(1));
  assert.not.equal(Array.from(v0), Array.from(v1), 'two views differ');
  assert.is(a.misses, 3);
  // A fresh cache object on the same folder (another run) hits and returns the same numbers.
  const b = new FeatureCache(dir);
  const fb = new ClipFeatures(model, tok, { cache: b, weightsHash: 'h1', progressFrom: Infinity });
  assert.equal(Array.from(await fb.pooled(items, view(0))), Array.from(v0));
  assert.equal(Array.from(await fb.pooled(items, { mode: 'test' })), Array.from(t0));
  assert.is(b.hits, 2);
  // Recomputed without the cache: the same view again (views are keyed, not drawn in sequence).
  const fc = new ClipFeatures(model, tok, { cache: new FeatureCache(null), weightsHash: 'h1', progressFrom: Infinity });
  assert.equal(Array.from(await fc.pooled(items, view(1))), Array.from(v1));
  // Another checkpoint hash misses.
  const fd = new ClipFeatures(model, tok, { cache: new FeatureCache(dir), weightsHash: 'h2', progressFrom: Infinity });
  const c2 = (fd as unknown as { opts: { cache: FeatureCache } }).opts.cache;
  await fd.pooled(items, { mode: 'test' });
  assert.is(c2.misses, 1);
  // Touching an image (new mtime) changes the key.
  utimesSync(items[0]!.impath, new Date(), new Date(Date.now() + 5000));
  const e = new FeatureCache(dir);
  await new ClipFeatures(model, tok, { cache: e, weightsHash: 'h1', progressFrom: Infinity }).pooled(items, { mode: 'test' });
  assert.is(e.misses, 1);
  // Class text features are cached too.
  const tw = await fb.textWeights(['red circle', 'green square'], ['a photo of a {}.']);
  assert.is(tw.length, 2 * TINY_CONFIG.embedDim);
  assert.equal(Array.from(await fa.textWeights(['red circle', 'green square'], ['a photo of a {}.'])), Array.from(tw));
  model.dispose();
});

test.run();
