// The README's "Library API" example cannot rot: its code block must equal readme-api.example.ts
// (which tsc type-checks with the build) up to import paths, and the compiled example runs here
// in a folder laid out as the README assumes (models/vit-b-32, cat.jpg, dog.jpg), with the golden
// tiny model in place of ViT-B/32. Its printed loss must be the contrastive loss computed here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { ROOT, hfFolder, runNode, scratch, tinyVocab } from '../cli/helpers.js';
import { getGpu } from '../../src/gpu/index.js';
import { tensor, tidy } from '../../src/tensor/tensor.js';
import { loadClip } from '../../src/clip/load-node.js';
import { loadBatchForClip } from '../../src/clip/preprocess-node.js';

const { dir, cleanup } = scratch('readme');
test.after(cleanup);

function readmeBlock(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf('### Library API');
  assert.ok(at >= 0, 'README has a "### Library API" section');
  const m = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, 'a ```ts block follows it');
  return m![1]!;
}

test('the README block is readme-api.example.ts, import paths aside', () => {
  const block = readmeBlock();
  const example = readFileSync(join(ROOT, 'test/clip/readme-api.example.ts'), 'utf8')
    .split('\n')
    .filter((l, i, all) => !(l.startsWith('//') && all.slice(0, i).every((p) => p.startsWith('//'))))
    .join('\n');
  assert.fixture(example.replaceAll("from '../../src/", "from 'cliptune/dist/src/"), block);
});

test('the example runs: prints the loss and the shape and norm of a named gradient', async () => {
  const model = hfFolder(join(dir, 'models', 'vit-b-32'), tinyVocab());
  const px = (seed: number) => {
    const data = Buffer.alloc(48 * 40 * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * seed + (i >> 7)) & 255;
    return data;
  };
  await sharp(px(7), { raw: { width: 48, height: 40, channels: 3 } }).jpeg({ quality: 90 }).toFile(join(dir, 'cat.jpg'));
  await sharp(px(13), { raw: { width: 48, height: 40, channels: 3 } }).jpeg({ quality: 90 }).toFile(join(dir, 'dog.jpg'));

  const r = await runNode([join(ROOT, 'dist/test/clip/readme-api.example.js')], dir);
  assert.is(r.code, 0, r.err);
  const m = /^loss (\d+\.\d{4})\ngrad visual\.proj \[128,32\] norm (\d\.\d{3}e[-+]\d+)\n$/.exec(r.out);
  assert.ok(m, r.out);
  assert.ok(Number(m![2]) > 0);

  // The same loss computed here.
  const gpu = await getGpu();
  const { model: clip, tokenizer } = await loadClip(gpu, model);
  const ctx = clip.config.text.contextLength;
  const rows = tokenizer.tokenize(['a photo of a cat', 'a photo of a dog'], { contextLength: ctx });
  const pixels = tensor(await loadBatchForClip([join(dir, 'cat.jpg'), join(dir, 'dog.jpg')], 32), [2, 3, 32, 32], 'f32', gpu);
  const loss = tidy(() => clip.contrastiveLoss(clip.encodeImage(pixels).embeds, clip.encodeText({ ids: new Int32Array(rows[0]!.buffer), rows: 2, length: ctx }).embeds));
  assert.is((await loss.item()).toFixed(4), m![1]);
  loss.dispose();
  pixels.dispose();
  clip.dispose();
});

test.run();
