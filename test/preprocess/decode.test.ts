// Decoding (sharp) against PIL's Image.open(p).convert('RGB'), JPEG through the whole transform,
// and clear errors for corrupt or unsupported files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { decodeImageBuffer, decodeImageFile } from '../../src/clip/image-decode-node.js';
import { ImageDecodeError, cmykToRgb, sniffImageFormat } from '../../src/clip/image-decode.js';
import { clipTestTransformU8, preprocessForClip } from '../../src/clip/preprocess.js';
import { loadBatchForClip, loadImageForClip } from '../../src/clip/preprocess-node.js';
import { expected, fixture, sha256 } from './helpers.js';

test('decode: RGB bytes identical to PIL for every PNG kind and JPEG variant', async () => {
  const failures: string[] = [];
  for (const c of expected.decode) {
    const img = await decodeImageFile(fixture(c.file));
    if (img.width !== c.width || img.height !== c.height || sha256(img.data) !== c.sha256) failures.push(`${c.file} (PIL mode ${c.mode})`);
  }
  assert.equal(failures, [], `decoded differently from PIL:\n${failures.join('\n')}`);
  const modes = new Set(expected.decode.map((d) => d.mode));
  for (const m of ['RGB', 'RGBA', 'L', 'LA', 'P', '1', 'I', 'CMYK']) assert.ok(modes.has(m), `no fixture of PIL mode ${m}`);
});

test('decode: JPEG through the test transform — measured max difference vs PIL (limit 1/255)', async () => {
  let worst = 0;
  const lines: string[] = [];
  for (const c of expected.jpegTransform) {
    const img = await decodeImageFile(fixture(c.src));
    const u8 = clipTestTransformU8(img, 224);
    let maxAbs = 0;
    if (c.ref) {
      const ref = await decodeImageFile(fixture(c.ref));
      for (let i = 0; i < ref.data.length; i++) maxAbs = Math.max(maxAbs, Math.abs(ref.data[i]! - u8.data[i]!));
    } else if (sha256(u8.data) !== c.u8sha256) {
      maxAbs = Infinity; // no reference pixels stored: any mismatch fails
    }
    worst = Math.max(worst, maxAbs);
    lines.push(`${c.src}: max |ours - PIL| = ${maxAbs}/255, uint8 ${sha256(u8.data) === c.u8sha256 ? 'identical' : 'differs'}, float32 ${sha256(preprocessForClip(img)) === c.f32sha256 ? 'identical' : 'differs'}`);
  }
  console.log('  JPEG vs PIL after decode+transform:\n    ' + lines.join('\n    '));
  assert.ok(worst <= 1, `JPEG max difference ${worst}/255 exceeds 1/255`);
});

test('decode: CMYK conversion is PIL\'s integer formula', () => {
  // nk = 255 - K; out = nk - MULDIV255(C, nk)
  assert.equal(Array.from(cmykToRgb(1, 1, [5, 61, 63, 0]).data), [250, 194, 192]);
  assert.equal(Array.from(cmykToRgb(1, 1, [0, 255, 128, 255]).data), [0, 0, 0]);
  assert.equal(Array.from(cmykToRgb(1, 1, [128, 0, 255, 100]).data), [77, 155, 0]);
});

test('decode: corrupt, empty, missing and unsupported files → ImageDecodeError naming the path', async () => {
  assert.ok(expected.corrupt.length >= 7);
  for (const name of [...expected.corrupt, 'does_not_exist.png']) {
    const p = fixture(name);
    try {
      await decodeImageFile(p);
      assert.unreachable(`${name} decoded`);
    } catch (e) {
      assert.instance(e, ImageDecodeError, `${name}: ${e}`);
      assert.ok((e as Error).message.includes(p), `${name}: message lacks path: ${(e as Error).message}`);
      assert.is((e as ImageDecodeError).source, p);
    }
  }
  try {
    await decodeImageFile(fixture('bad_format.gif'));
  } catch (e) {
    assert.match((e as Error).message, /unsupported format GIF/);
  }
  await decodeImageBuffer(new Uint8Array([1, 2, 3]), 'mem://x').then(
    () => assert.unreachable('decoded garbage'),
    (e: Error) => assert.match(e.message, /cannot decode image 'mem:\/\/x': unsupported or unrecognised format/),
  );
});

test('decode: format sniffing ignores file extensions', () => {
  assert.is(sniffImageFormat(readFileSync(fixture('mix_300x200.png'))), 'png');
  assert.is(sniffImageFormat(readFileSync(fixture('jpg_640x480_prog.jpg'))), 'jpeg');
  assert.is(sniffImageFormat(readFileSync(fixture('bad_format.gif'))), 'gif');
  assert.is(sniffImageFormat(new Uint8Array(0)), 'unknown');
});

test('node helpers: loadImageForClip / loadBatchForClip match the pure pipeline', async () => {
  const names = ['jpg_300x200_q90_420.jpg', 'mix_200x300.png', 'noise_20x30.png'];
  const single = await loadImageForClip(fixture(names[0]!), 224);
  const ref = expected.jpegTransform.find((j) => j.src === names[0])!;
  assert.is(sha256(single), ref.f32sha256);
  const batch = await loadBatchForClip(names.map(fixture), 64, 2);
  const per = 3 * 64 * 64;
  for (let b = 0; b < names.length; b++) {
    const one = await loadImageForClip(fixture(names[b]!), 64);
    assert.equal(sha256(batch.subarray(b * per, (b + 1) * per)), sha256(one));
  }
  await loadBatchForClip([fixture('mix_300x200.png'), fixture('bad_text.jpg')], 32).then(
    () => assert.unreachable('bad batch loaded'),
    (e: Error) => assert.match(e.message, /bad_text\.jpg/),
  );
});

test.run();
