// `cliptune tokenize`, `zeroshot` and `convert` end to end (spawned like a user runs them).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { PT, cli, hfFolder, readTensors, scratch, tinyVocab, writeTensors } from './helpers.js';
import { writeWorldDataset } from '../../src/data/world/write-node.js';
import { Rng } from '../../src/clip/rng.js';

const { dir, cleanup } = scratch('commands');
test.after(cleanup);

test('--help of every CLIP command: usage on stdout, exit 0', async () => {
  const runs = await Promise.all([[], ['embed'], ['zeroshot'], ['convert'], ['tokenize']].map((c) => cli(...c, '--help')));
  for (const r of runs) {
    assert.is(r.code, 0, r.err);
    assert.match(r.out, /^usage: cliptune /);
    assert.is(r.err, '');
  }
  assert.match(runs[1]!.out, /--heads N .*\n.*\n?.*--vocab PATH/s);
});

test('tokenize: one JSON array per text and line; --context; --truncate', async () => {
  const r = await cli('tokenize', 'a photo of a cat', 'a dog');
  assert.is(r.code, 0, r.err);
  const lines = r.out.trimEnd().split('\n');
  assert.is(lines.length, 2);
  const rows = lines.map((l) => JSON.parse(l) as number[]);
  assert.equal(rows[0]!.slice(0, 8), [49406, 320, 1125, 539, 320, 2368, 49407, 0]);
  assert.equal(rows[1]!.slice(0, 4), [49406, 320, 1929, 49407]);
  for (const row of rows) assert.is(row.length, 77);

  const short = await cli('tokenize', '--context', '6', 'a dog');
  assert.equal(short.out, '[49406,320,1929,49407,0,0]\n');
  const long = 'a photo of a cat';
  const tooLong = await cli('tokenize', '--context', '4', long);
  assert.is(tooLong.code, 2);
  assert.is(tooLong.out, '');
  assert.match(tooLong.err, /cliptune tokenize: Input a photo of a cat is too long for context length 4/);
  const cut = await cli('tokenize', '--context', '4', '--truncate', long);
  assert.is(cut.code, 0, cut.err);
  assert.equal(cut.out, '[49406,320,1125,49407]\n');
});

test('zeroshot on a world dataset with the golden tiny model: prints predictions and an accuracy line', async () => {
  const world = join(dir, 'world');
  await writeWorldDataset({ out: world, classes: 'red_circle,green_square,blue_triangle', counts: { train: 2, val: 0, test: 1 }, size: 32, seed: 3 });
  // The tiny model's vocabulary has 512 tokens: the folder carries a matching tokenizer, and the
  // bare-name template keeps the prompts inside its 16-token context.
  const model = hfFolder(join(dir, 'tiny'), tinyVocab());
  const r = await cli('zeroshot', '--weights', model, '--images', join(world, 'images'), '--template', '{}', '--batch', '4');
  assert.is(r.code, 0, r.err);
  const lines = r.out.trimEnd().split('\n');
  assert.is(lines.length, 10);
  for (const l of lines.slice(0, 9)) assert.match(l, /^\d{4}\.png\t(red circle|green square|blue triangle)$/);
  assert.match(lines[9]!, /^accuracy \d+\.\d\d% \(\d\/9, 3 classes, chance 33\.33%\)$/);
  // --json: the same predictions, machine-readable; --classes renames the folders.
  const j = await cli('zeroshot', '--weights', model, '--images', join(world, 'images'), '--template', 'a {}', '--template', '{}', '--json', '--classes', 'red circle,green square,blue triangle');
  assert.is(j.code, 0, j.err);
  const doc = JSON.parse(j.out);
  assert.equal(doc.classes, ['red circle', 'green square', 'blue triangle']);
  assert.is(doc.predictions.length, 9);
  assert.is(doc.predictions[0].label, 'red circle');
  assert.ok(doc.accuracy >= 0 && doc.accuracy <= 100);
});

test('convert an OpenAI-style TorchScript .pt, then embed with the converted file', async () => {
  const st = join(dir, 'tiny_clip.safetensors');
  const c = await cli('convert', join(PT, 'tiny_clip.pt'), st);
  assert.is(c.code, 0, c.err);
  // OpenAI's layout: fp16 linear/conv weights, f32 norms and embeddings, three int buffers.
  assert.match(c.out, /^wrote .*tiny_clip\.safetensors: 53 tensors from a torchscript archive \(23 F32, 27 F16, 3 I64\)\n$/);
  // The converted tensors, widened to f32, are the reference state dict exactly.
  const expectedFile = join(PT, 'tiny_clip.expected.safetensors');
  const want = await readTensors(expectedFile);
  const got = await readTensors(st);
  for (const [name, t] of want) {
    assert.ok(got.has(name), name);
    assert.equal(got.get(name)!.shape, t.shape, name);
    assert.equal(got.get(name)!.data, t.data, name);
  }

  // The tiny CLIP: 8x8 images, 5-token context, 20-token vocabulary, width 32 (so --heads 2).
  const rng = new Rng('tiny clip inputs');
  const px = Float32Array.from({ length: 3 * 3 * 8 * 8 }, () => rng.uniform() * 4 - 2);
  const ids = Int32Array.from([1, 5, 7, 19, 0, 1, 3, 19, 0, 0]);
  const inputs = join(dir, 'tiny-inputs.safetensors');
  await writeTensors(inputs, { pixel_values: { shape: [3, 3, 8, 8], data: px }, input_ids: { shape: [2, 5], data: ids } });
  const run = async (weights: string, out: string) => {
    const r = await cli('embed', '--weights', weights, '--heads', '2', '--pixels', inputs, '--input-ids', inputs, '--out', out);
    assert.is(r.code, 0, r.err);
    assert.match(r.out, /image_embeds \[3,8\], text_embeds \[2,8\], logits_per_image \[3,2\]/);
    return readTensors(out);
  };
  const a = await run(st, join(dir, 'tiny-a.safetensors'));
  for (const t of a.values()) assert.ok(t.data.every(Number.isFinite));
  // Same embeddings as from the reference f32 state dict (the f16 weights widen exactly).
  const b = await run(expectedFile, join(dir, 'tiny-b.safetensors'));
  for (const [name, t] of a) assert.equal(t.data, b.get(name)!.data, name);

  // Without --heads the message says what to give.
  const r = await cli('embed', '--weights', st, '--pixels', inputs, '--out', join(dir, 'tiny-c.safetensors'));
  assert.is(r.code, 1);
  assert.match(r.err, /^cliptune embed: .*vision width 32 is not a multiple of 64; give the head count/m);
});

test('convert --f32 widens the fp16 tensors (ints kept)', async () => {
  const st = join(dir, 'tiny_clip_f32.safetensors');
  const c = await cli('convert', '--f32', join(PT, 'tiny_clip.pt'), st);
  assert.is(c.code, 0, c.err);
  assert.match(c.out, /: 53 tensors from a torchscript archive \(50 F32, 3 I64\)\n$/);
  const want = await readTensors(join(PT, 'tiny_clip.expected.safetensors'));
  const got = await readTensors(st);
  for (const [name, t] of want) assert.equal(got.get(name)!.data, t.data, name);
});

test.run();
