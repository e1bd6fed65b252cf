// `cliptune embed` end to end (spawned like a user runs it): the golden tiny model's embeddings and
// logits through --pixels / --input-ids for the OpenAI-named file and a Hugging Face folder, --text
// with the model's own tokenizer, and --images on PNG files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GOLDEN, OUT_TOL, cli, hfFolder, readTensors, relErr, scratch, tinyVocab, writePngs, writeTensors } from './helpers.js';
import { loadImageForClip } from '../../src/clip/preprocess-node.js';
import { loadClipTokenizer } from '../../src/clip/tokenizer-node.js';

const { dir, cleanup } = scratch('embed');
test.after(cleanup);

const INPUTS = join(GOLDEN, 'inputs.safetensors');

async function golden() {
  const outs = await readTensors(join(GOLDEN, 'outputs.safetensors'));
  return { image: outs.get('image_embeds')!, text: outs.get('text_embeds')!, logits: outs.get('logits_per_image')! };
}

async function checkAgainstGolden(file: string, what: string): Promise<void> {
  const got = await readTensors(file);
  const want = await golden();
  assert.equal([...got.keys()].sort(), ['image_embeds', 'logits_per_image', 'text_embeds'], what);
  for (const [name, ref] of [['image_embeds', want.image], ['text_embeds', want.text], ['logits_per_image', want.logits]] as const) {
    const t = got.get(name)!;
    assert.equal(t.shape, ref.shape, `${what}: ${name} shape`);
    const e = relErr(t.data, ref.data);
    assert.ok(e <= OUT_TOL, `${what}: ${name} err ${e} > ${OUT_TOL}`);
  }
}

test('--pixels and --input-ids with the OpenAI-named file reproduce the golden embeddings and logits', async () => {
  // inputs.safetensors holds pixel_values and input_ids (and labels, which embed ignores).
  const out = join(dir, 'openai.safetensors');
  const r = await cli('embed', '--weights', join(GOLDEN, 'weights.openai.safetensors'), '--pixels', INPUTS, '--input-ids', INPUTS, '--out', out);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^wrote .*openai\.safetensors: image_embeds \[4,32\], text_embeds \[4,32\], logits_per_image \[4,4\]\n$/);
  // The OpenAI file has no config: the activation default is announced.
  assert.match(r.err, /note: .*QuickGELU/);
  await checkAgainstGolden(out, 'openai');
});

test('a Hugging Face folder (model.safetensors + config.json) gives the same, batch size 1', async () => {
  const folder = hfFolder(join(dir, 'hf'));
  const out = join(dir, 'hf.safetensors');
  const r = await cli('embed', '--weights', folder, '--pixels', INPUTS, '--input-ids', INPUTS, '--out', out, '--batch', '1');
  assert.is(r.code, 0, r.err);
  assert.not.match(r.err, /note:/); // config.json says quick_gelu
  await checkAgainstGolden(out, 'hf folder');
  // The weights file inside the folder, named directly, picks up the config beside it.
  const out2 = join(dir, 'hf-file.safetensors');
  const r2 = await cli('embed', '--weights', join(folder, 'model.safetensors'), '--pixels', INPUTS, '--out', out2);
  assert.is(r2.code, 0, r2.err);
  const a = await readTensors(out2);
  assert.equal([...a.keys()], ['image_embeds']);
  assert.ok(relErr(a.get('image_embeds')!.data, (await golden()).image.data) <= OUT_TOL);
});

test('--text with the model folder\'s own tokenizer equals --input-ids of the same ids; --texts FILE too', async () => {
  const folder = hfFolder(join(dir, 'hf-vocab'), tinyVocab());
  const texts = ['red circle', 'blue triangle', 'green square'];
  const out = join(dir, 'text.safetensors');
  const r = await cli('embed', '--weights', folder, ...texts.flatMap((t) => ['--text', t]), '--out', out);
  assert.is(r.code, 0, r.err);
  const tok = await loadClipTokenizer(folder);
  const rows = tok.tokenize(texts, { contextLength: 16 });
  assert.equal([...rows[0]!].slice(0, 12), [510, 18, 5, 30, 3, 9, 18, 3, 12, 31, 511, 0]);
  const idsFile = join(dir, 'ids.safetensors');
  await writeTensors(idsFile, { input_ids: { shape: [3, 16], data: new Int32Array(rows[0]!.buffer) } });
  const out2 = join(dir, 'ids.out.safetensors');
  const r2 = await cli('embed', '--weights', folder, '--input-ids', idsFile, '--out', out2);
  assert.is(r2.code, 0, r2.err);
  const a = (await readTensors(out)).get('text_embeds')!;
  const b = (await readTensors(out2)).get('text_embeds')!;
  assert.equal(a.shape, [3, 32]);
  assert.equal(a.data, b.data);
  // --vocab names the tokenizer explicitly for a bare weights file; one text per line in --texts.
  const vocabDir = join(dir, 'vocab');
  mkdirSync(vocabDir);
  for (const [n, body] of Object.entries(tinyVocab())) writeFileSync(join(vocabDir, n), body);
  const list = join(dir, 'texts.txt');
  writeFileSync(list, texts.join('\n') + '\n');
  const out3 = join(dir, 'texts.out.safetensors');
  const r3 = await cli('embed', '--weights', join(GOLDEN, 'weights.openai.safetensors'), '--vocab', join(vocabDir, 'vocab.json'), '--texts', list, '--out', out3);
  assert.is(r3.code, 0, r3.err);
  const c = (await readTensors(out3)).get('text_embeds')!;
  assert.ok(relErr(c.data, a.data) <= OUT_TOL, 'OpenAI-named file + --vocab vs HF folder');
});

test('--images on PNG files (a folder, and files named one by one) equals --pixels of the same preprocessing', async () => {
  const imgDir = join(dir, 'pngs');
  const files = writePngs(imgDir, 3);
  const res = 32;
  const px = new Float32Array(3 * 3 * res * res);
  for (let i = 0; i < files.length; i++) px.set(await loadImageForClip(files[i]!, res), i * 3 * res * res);
  const pxFile = join(dir, 'px.safetensors');
  await writeTensors(pxFile, { pixel_values: { shape: [3, 3, res, res], data: px } });
  const weights = join(GOLDEN, 'weights.openai.safetensors');
  const [viaFolder, viaFiles, viaPixels] = [join(dir, 'i1.safetensors'), join(dir, 'i2.safetensors'), join(dir, 'i3.safetensors')];
  for (const [args, out] of [[['--images', imgDir], viaFolder], [['--batch', '2', ...files], viaFiles], [['--pixels', pxFile], viaPixels]] as const) {
    const r = await cli('embed', '--weights', weights, ...args, '--out', out);
    assert.is(r.code, 0, r.err);
    assert.match(r.out, /image_embeds \[3,32\]\n$/);
  }
  const ref = (await readTensors(viaPixels)).get('image_embeds')!;
  assert.ok(ref.data.every(Number.isFinite));
  for (const f of [viaFolder, viaFiles]) {
    const e = relErr((await readTensors(f)).get('image_embeds')!.data, ref.data);
    assert.ok(e <= 1e-6, `${f}: err ${e}`);
  }
  assert.ok(existsSync(viaFolder));
});

test.run();
