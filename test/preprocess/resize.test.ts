// Pillow's resize reimplemented: output bytes must equal Image.resize(..., BICUBIC|BILINEAR[, box]).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { axisCoeffs, resizePil } from '../../src/clip/resize.js';
import { expected, load, sha256 } from './helpers.js';

test('resize: byte-exact vs PIL for every fixture case (up/down, both orientations, one axis, boxes, both filters)', async () => {
  const failures: string[] = [];
  for (const c of expected.resize) {
    const img = await load(c.src);
    const out = resizePil(img, c.size[0], c.size[1], c.filter, c.box ?? undefined);
    assert.is(out.width, c.size[0]);
    assert.is(out.height, c.size[1]);
    if (sha256(out.data) !== c.sha256) failures.push(`${c.src} -> ${c.size.join('x')} ${c.filter}${c.box ? ' box ' + c.box.join(',') : ''}`);
  }
  assert.equal(failures, [], `mismatching cases:\n${failures.join('\n')}`);
  assert.ok(expected.resize.length >= 80, `only ${expected.resize.length} resize cases`);
});

test('resize: coefficient windows stay inside the image and sum to ~1 in fixed point', () => {
  for (const [inSize, outSize] of [[37, 224], [640, 224], [20, 7], [5, 5], [1, 9], [9, 1]] as const) {
    for (const f of ['bicubic', 'bilinear'] as const) {
      const c = axisCoeffs(inSize, 0, inSize, outSize, f);
      for (let i = 0; i < outSize; i++) {
        assert.ok(c.start[i]! >= 0 && c.start[i]! + c.count[i]! <= inSize);
        let s = 0;
        for (let k = 0; k < c.count[i]!; k++) s += c.weights[i * c.ksize + k]!;
        assert.ok(Math.abs(s - (1 << 22)) <= c.count[i]!, `sum ${s} for ${inSize}->${outSize} ${f} @${i}`);
      }
    }
  }
});

test('resize: same size is a copy; constant image stays constant', () => {
  const data = new Uint8Array(5 * 4 * 3).map((_, i) => (i * 37) & 255);
  const img = { width: 5, height: 4, data };
  const same = resizePil(img, 5, 4);
  assert.equal(Array.from(same.data), Array.from(data));
  assert.is.not(same.data, data);
  const flat = { width: 7, height: 3, data: new Uint8Array(7 * 3 * 3).fill(200) };
  for (const [w, h] of [[30, 2], [3, 11], [1, 1]]) {
    assert.ok(resizePil(flat, w!, h!).data.every((v) => v === 200));
  }
});

test('resize: rejects bad sizes and malformed images', () => {
  const img = { width: 2, height: 2, data: new Uint8Array(12) };
  assert.throws(() => resizePil(img, 0, 3), /positive integers/);
  assert.throws(() => resizePil(img, 2.5, 3), /positive integers/);
  assert.throws(() => resizePil({ width: 2, height: 2, data: new Uint8Array(11) }, 3, 3), /12 RGB bytes/);
});

test.run();
