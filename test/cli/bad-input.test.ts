// Bad input to the CLIP commands: each case gives one clear error line naming the problem, a
// non-zero exit code, nothing on stdout, and no output file (nor a temporary one) left behind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { GOLDEN, PT, cli, hfFolder, scratch, tinyVocab, writePngs, writeTensors, type CliResult } from './helpers.js';

const { dir, cleanup } = scratch('bad-input');
test.after(cleanup);

const WEIGHTS = join(GOLDEN, 'weights.openai.safetensors');
const INPUTS = join(GOLDEN, 'inputs.safetensors');

/** A safetensors file from a header object and a data section. */
function rawSafetensors(path: string, header: object, dataBytes: number): string {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return path;
}

interface Case {
  name: string;
  args: (out: string) => string[];
  code: number;
  err: RegExp;
}

let n = 0;
function outPath(): string {
  return join(dir, 'out', `case${n++}.safetensors`);
}

/** Runs the cases a few at a time (most fail before the GPU starts; the rest wait on it). */
async function runCases(cases: Case[]): Promise<void> {
  mkdirSync(join(dir, 'out'), { recursive: true });
  const results: { c: Case; r: CliResult; out: string }[] = [];
  const queue = [...cases];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const out = outPath();
        results.push({ c, r: await cli(...c.args(out)), out });
      }
    }),
  );
  const errors: string[] = [];
  for (const { c, r, out } of results) {
    const problems: string[] = [];
    if (r.code !== c.code) problems.push(`exit ${r.code}, expected ${c.code}`);
    if (!c.err.test(r.err)) problems.push(`stderr ${JSON.stringify(r.err)} does not match ${c.err}`);
    if (r.out !== '') problems.push(`stdout ${JSON.stringify(r.out)}`);
    const cmd = c.args(out)[0];
    if (cmd && ['embed', 'zeroshot', 'convert'].includes(cmd) && !new RegExp(`^cliptune ${cmd}: `, 'm').test(r.err)) problems.push(`no "cliptune ${cmd}: " line`);
    const left = readdirSync(dirname(out)).filter((f) => f.startsWith(basename(out)));
    if (left.length) problems.push(`left behind: ${left.join(', ')}`);
    if (problems.length) errors.push(`${c.name}: ${problems.join('; ')}`);
  }
  assert.is(results.length, cases.length);
  assert.equal(errors, [], errors.join('\n'));
}

const embed = (...a: string[]) => (out: string) => ['embed', ...a, '--out', out];

test('embed: bad weights files', async () => {
  const truncated = join(dir, 'truncated.safetensors');
  const bytes = readFileSync(WEIGHTS);
  writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  // Headers that lie: a tensor running past the data, and one whose byte span does not fit its shape.
  const pastEnd = rawSafetensors(join(dir, 'past-end.safetensors'), { 'visual.proj': { dtype: 'F32', shape: [128, 32], data_offsets: [0, 16384] } }, 64);
  const badSpan = rawSafetensors(join(dir, 'bad-span.safetensors'), { 'visual.proj': { dtype: 'F32', shape: [128, 32], data_offsets: [0, 64] } }, 64);
  const hugeHeader = join(dir, 'huge-header.safetensors');
  const lie = Buffer.alloc(64);
  lie.writeBigUInt64LE(10_000n);
  writeFileSync(hugeHeader, lie);
  const unrelated = join(dir, 'unrelated.safetensors');
  await writeTensors(unrelated, { 'encoder.layer.0.weight': { shape: [4, 4], data: new Float32Array(16) }, 'head.bias': { shape: [4], data: new Float32Array(4) } });
  const noModel = join(dir, 'empty-folder');
  mkdirSync(noModel);
  const badConfig = hfFolder(join(dir, 'bad-config'), { 'config.json': '{"model_type": "clip",' });
  const px = join(dir, 'px.safetensors');
  await writeTensors(px, { pixel_values: { shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) } });
  await runCases([
    { name: 'missing file', args: embed('--weights', join(dir, 'nope.safetensors'), '--pixels', px), code: 1, err: /^cliptune embed: --weights: .*nope\.safetensors does not exist\n$/m },
    { name: 'truncated', args: embed('--weights', truncated, '--pixels', px), code: 1, err: /^cliptune embed: .*truncated\.safetensors: tensor ".*": data_offsets \[\d+, \d+\] run past the end of the data section \(\d+ bytes; truncated file\?\)\n$/m },
    { name: 'offsets past the end', args: embed('--weights', pastEnd, '--pixels', px), code: 1, err: /past-end\.safetensors: tensor "visual\.proj": data_offsets \[0, 16384\] run past the end of the data section \(64 bytes/ },
    { name: 'span vs shape', args: embed('--weights', badSpan, '--pixels', px), code: 1, err: /bad-span\.safetensors: tensor "visual\.proj": data_offsets \[0, 64\] span 64 bytes but shape \[128,32\] x F32 needs 16384/ },
    { name: 'header length', args: embed('--weights', hugeHeader, '--pixels', px), code: 1, err: /huge-header\.safetensors: header length 10000 runs past the end of the file \(64 bytes/ },
    { name: 'unknown naming', args: embed('--weights', unrelated, '--pixels', px), code: 1, err: /^cliptune embed: .*unrelated\.safetensors: unknown checkpoint naming: .*found "encoder\.layer\.0\.weight", "head\.bias"/m },
    { name: 'folder without weights', args: embed('--weights', noModel, '--pixels', px), code: 1, err: /--weights: folder .*empty-folder has no model\.safetensors/ },
    { name: 'broken config.json', args: embed('--weights', badConfig, '--pixels', px), code: 1, err: /bad-config\/config\.json: not valid JSON/ },
    { name: 'not a safetensors file', args: embed('--weights', join(PT, 'tiny_clip.pt'), '--pixels', px), code: 1, err: /^cliptune embed: .*tiny_clip\.pt: header length \d+ is over the/m },
  ]);
});

test('embed: bad images, texts, ids and pixels', async () => {
  const imgs = join(dir, 'imgs');
  writePngs(imgs, 2);
  writeFileSync(join(imgs, 'z-garbage.png'), 'this is not a PNG\n');
  const cut = join(dir, 'cut');
  const [good] = writePngs(cut, 1);
  const png = readFileSync(good!);
  writeFileSync(join(cut, 'z-cut.png'), png.subarray(0, Math.floor(png.length / 2)));
  writeFileSync(join(dir, 'empty.png'), '');
  const bigIds = join(dir, 'big-ids.safetensors');
  await writeTensors(bigIds, { input_ids: { shape: [2, 4], data: Int32Array.from([510, 5, 6, 511, 510, 7, 512, 511]) } });
  const negIds = join(dir, 'neg-ids.safetensors');
  await writeTensors(negIds, { input_ids: { shape: [1, 3], data: Int32Array.from([510, -1, 511]) } });
  const longIds = join(dir, 'long-ids.safetensors');
  await writeTensors(longIds, { input_ids: { shape: [1, 20], data: new Int32Array(20) } });
  const floatIds = join(dir, 'float-ids.safetensors');
  await writeTensors(floatIds, { input_ids: { shape: [1, 3], data: new Float32Array(3) } });
  const smallPx = join(dir, 'small-px.safetensors');
  await writeTensors(smallPx, { pixel_values: { shape: [1, 3, 16, 16], data: new Float32Array(3 * 16 * 16) } });
  const nanPx = join(dir, 'nan-px.safetensors');
  await writeTensors(nanPx, { pixel_values: { shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32).fill(NaN) } });
  const emptyTexts = join(dir, 'texts.txt');
  writeFileSync(emptyTexts, 'a b\n   \nc\n');
  const vocabFolder = hfFolder(join(dir, 'vocab-model'), tinyVocab());
  await runCases([
    { name: 'not an image', args: embed('--weights', WEIGHTS, '--images', imgs), code: 1, err: /^cliptune embed: cannot decode image '.*z-garbage\.png': unsupported or unrecognised format \(expected JPEG or PNG\)\n$/m },
    { name: 'truncated PNG', args: embed('--weights', WEIGHTS, '--images', cut), code: 1, err: /^cliptune embed: cannot decode image '.*z-cut\.png': corrupt or unreadable image data/m },
    { name: 'empty image file', args: embed('--weights', WEIGHTS, join(dir, 'empty.png')), code: 1, err: /cannot decode image '.*empty\.png': file is empty/ },
    { name: 'missing image', args: embed('--weights', WEIGHTS, '--images', join(dir, 'nope.jpg')), code: 1, err: /--images: .*nope\.jpg does not exist/ },
    { name: 'empty --text', args: embed('--weights', WEIGHTS, '--text', ''), code: 1, err: /^cliptune embed: --text 1 is empty\n$/m },
    { name: 'blank --text', args: embed('--weights', WEIGHTS, '--text', 'a', '--text', '   '), code: 1, err: /^cliptune embed: --text 2 is empty\n$/m },
    { name: 'blank line in --texts', args: embed('--weights', WEIGHTS, '--texts', emptyTexts), code: 1, err: /--texts .*texts\.txt: line 2 is empty/ },
    { name: 'missing --texts file', args: embed('--weights', WEIGHTS, '--texts', join(dir, 'nope.txt')), code: 1, err: /--texts: cannot read .*nope\.txt \(ENOENT\)/ },
    { name: 'text with no tokens', args: embed('--weights', vocabFolder, '--text', '!!!'), code: 1, err: /^cliptune embed: BPE produced|^cliptune embed: text 0 is empty/m },
    { name: 'text too long', args: embed('--weights', vocabFolder, '--text', 'a very long text for this tiny model'), code: 1, err: /too long for context length 16/ },
    { name: 'tokenizer vs model vocabulary', args: embed('--weights', WEIGHTS, '--text', 'a photo of a cat'), code: 1, err: /the tokenizer emits ids up to 49407 but the model's vocabulary has 512 tokens: give the model's own tokenizer/ },
    { name: 'id past the vocabulary', args: embed('--weights', WEIGHTS, '--input-ids', bigIds), code: 1, err: /^cliptune embed: --input-ids .*big-ids\.safetensors: id 512 \(row 1, position 2\) is outside the model's vocabulary of 512\n$/m },
    { name: 'negative id', args: embed('--weights', WEIGHTS, '--input-ids', negIds), code: 1, err: /id -1 \(row 0, position 1\) is outside/ },
    { name: 'ids longer than the context', args: embed('--weights', WEIGHTS, '--input-ids', longIds), code: 1, err: /rows of 20 ids exceed the model's context length 16/ },
    { name: 'float ids', args: embed('--weights', WEIGHTS, '--input-ids', floatIds), code: 1, err: /input_ids is F32, expected an integer dtype/ },
    { name: 'no input_ids tensor', args: embed('--weights', WEIGHTS, '--input-ids', smallPx), code: 1, err: /no tensor "input_ids" \(has pixel_values\)/ },
    { name: 'pixels of the wrong size', args: embed('--weights', WEIGHTS, '--pixels', smallPx), code: 1, err: /pixel_values has shape \[1,3,16,16\], this model needs \[B, 3, 32, 32\]/ },
    { name: 'missing --pixels file', args: embed('--weights', WEIGHTS, '--pixels', join(dir, 'nope.safetensors')), code: 1, err: /^cliptune embed: --pixels: .*nope\.safetensors does not exist\n$/ },
    { name: '--input-ids is a folder', args: embed('--weights', WEIGHTS, '--input-ids', dir), code: 1, err: /^cliptune embed: --input-ids: .* is not a file\n$/ },
    { name: 'non-finite pixels', args: embed('--weights', WEIGHTS, '--pixels', nanPx), code: 1, err: /pixel_values has a non-finite value at flat index 0/ },
    { name: 'good images, bad ids: nothing written', args: embed('--weights', WEIGHTS, '--pixels', INPUTS, '--input-ids', bigIds), code: 1, err: /id 512/ },
  ]);
});

test('command line mistakes: exit 2 with the usage line', async () => {
  await runCases([
    { name: 'unknown command', args: () => ['embedd', '--weights', WEIGHTS], code: 2, err: /^cliptune: unknown command "embedd"\n\nusage: cliptune <command>/ },
    { name: 'no command', args: () => [], code: 2, err: /^usage: cliptune <command>/ },
    { name: 'unknown option', args: embed('--weights', WEIGHTS, '--pixel', INPUTS), code: 2, err: /^cliptune embed: Unknown option '--pixel'.*\nusage: cliptune embed/m },
    { name: 'no --out', args: () => ['embed', '--weights', WEIGHTS, '--pixels', INPUTS], code: 2, err: /^cliptune embed: --out is required\nusage: cliptune embed/m },
    { name: 'no --weights', args: embed('--pixels', INPUTS), code: 2, err: /--weights is required/ },
    { name: 'nothing to embed', args: embed('--weights', WEIGHTS), code: 2, err: /nothing to embed/ },
    { name: 'two text sources', args: embed('--weights', WEIGHTS, '--text', 'a', '--input-ids', INPUTS), code: 2, err: /give one of --texts, --text or --input-ids/ },
    { name: 'images and pixels', args: embed('--weights', WEIGHTS, '--pixels', INPUTS, GOLDEN), code: 2, err: /either --images or --pixels/ },
    { name: 'bad --act', args: embed('--weights', WEIGHTS, '--pixels', INPUTS, '--act', 'relu'), code: 2, err: /--act must be quick_gelu or gelu, got relu/ },
    { name: 'bad --batch', args: embed('--weights', WEIGHTS, '--pixels', INPUTS, '--batch', '0'), code: 2, err: /--batch must be a positive integer, got 0/ },
    { name: 'bad --heads', args: embed('--weights', WEIGHTS, '--pixels', INPUTS, '--heads', '2,x'), code: 2, err: /--heads must be N or IMAGE,TEXT/ },
    { name: '--out in a missing folder', args: () => ['embed', '--weights', WEIGHTS, '--pixels', INPUTS, '--out', join(dir, 'no-such-dir', 'x.safetensors')], code: 1, err: /--out: folder .*no-such-dir does not exist/ },
    { name: '--out is a folder', args: () => ['embed', '--weights', WEIGHTS, '--pixels', INPUTS, '--out', dir], code: 1, err: /--out: .* is a folder; give a file name/ },
  ]);
});

test('zeroshot and convert: bad input', async () => {
  const imgs = join(dir, 'zs');
  writePngs(join(imgs, 'red_circle'), 1);
  writePngs(join(imgs, 'blue_square'), 1);
  writeFileSync(join(imgs, 'blue_square', 'x.png'), 'garbage');
  const good = join(dir, 'zs-good');
  writePngs(join(good, 'red_circle'), 1);
  writePngs(join(good, 'blue_square'), 1);
  const garbagePt = join(dir, 'garbage.pt');
  writeFileSync(garbagePt, 'not a zip archive at all');
  const cutPt = join(dir, 'cut.pt');
  const pt = readFileSync(join(PT, 'tiny_clip.pt'));
  writeFileSync(cutPt, pt.subarray(0, pt.length - 4000));
  const ptCopy = join(dir, 'copy.pt');
  copyFileSync(join(PT, 'tiny_clip.pt'), ptCopy);
  const zs = (...a: string[]) => () => ['zeroshot', ...a];
  await runCases([
    { name: 'zeroshot: missing folder', args: zs('--weights', WEIGHTS, '--images', join(dir, 'nope')), code: 1, err: /^cliptune zeroshot: --images: .*nope does not exist\n$/m },
    { name: 'zeroshot: corrupt image', args: zs('--weights', WEIGHTS, '--images', imgs, '--vocab', join(dir, 'vocab-model')), code: 1, err: /^cliptune zeroshot: cannot decode image '.*x\.png': unsupported or unrecognised format/m },
    { name: 'zeroshot: tokenizer vs model', args: zs('--weights', WEIGHTS, '--images', good), code: 1, err: /^cliptune zeroshot: the tokenizer emits ids up to 49407 but the model's vocabulary has 512 tokens/m },
    { name: 'zeroshot: prompt too long', args: zs('--weights', hfFolder(join(dir, 'zs-model'), tinyVocab()), '--images', good), code: 1, err: /^cliptune zeroshot: Input a photo of a blue square\. is too long for context length 16 \(22 tokens/m },
    { name: 'zeroshot: template without {}', args: zs('--weights', WEIGHTS, '--images', good, '--template', 'a photo'), code: 2, err: /--template "a photo" has no \{\}/ },
    { name: 'zeroshot: classes vs folders', args: zs('--weights', WEIGHTS, '--images', good, '--classes', 'a,b,c'), code: 2, err: /--classes names 3 classes but .* has 2 class folders/ },
    { name: 'zeroshot: unknown option', args: zs('--weights', WEIGHTS, '--images', good, '--out', 'x'), code: 2, err: /^cliptune zeroshot: Unknown option '--out'/m },
    { name: 'convert: missing input', args: (out) => ['convert', join(dir, 'nope.pt'), out], code: 1, err: /^cliptune convert: IN\.pt: .*nope\.pt does not exist\n$/ },
    { name: 'convert: output folder missing', args: () => ['convert', ptCopy, join(dir, 'nope', 'x.safetensors')], code: 1, err: /^cliptune convert: OUT\.safetensors: folder .*nope does not exist\n$/ },
    { name: 'convert: not an archive', args: (out) => ['convert', garbagePt, out], code: 1, err: /^cliptune convert: .*garbage\.pt: not a PyTorch checkpoint \(not a zip archive; starts with bytes 6e 6f 74 20\)\n$/ },
    { name: 'convert: truncated archive', args: (out) => ['convert', cutPt, out], code: 1, err: /^cliptune convert: .*cut\.pt: not a zip archive \(no end-of-central-directory record\)\n$/ },
    { name: 'convert: one argument', args: () => ['convert', ptCopy], code: 2, err: /expected IN\.pt and OUT\.safetensors/ },
  ]);
});

test.run();
