// The class list: fixed order, the documented construction, and the base/novel coverage property.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CLASS_OFFSETS, COLOURS, NUM_BASE, NUM_CLASSES, SHAPES, WORLD_CLASSES, WORLD_CLASS_INFO, ClassSelectionError,
  allCombinations, baseClassIndices, findClass, novelClassIndices, parseClassSelection,
} from '../../src/data/world/index.js';

test('48 classes named "colour shape", built from the documented diagonals', () => {
  assert.is(NUM_CLASSES, 48);
  assert.is(NUM_BASE, 24);
  const expected: string[] = [];
  for (const d of CLASS_OFFSETS) for (let c = 0; c < 12; c++) expected.push(`${COLOURS[c]} ${SHAPES[(c + d) % 12]}`);
  assert.equal([...WORLD_CLASSES], expected);
  assert.is(new Set(WORLD_CLASSES).size, 48, 'no duplicate classes');
  assert.equal(WORLD_CLASSES.slice(0, 3), ['red circle', 'green square', 'blue triangle']);
  assert.is(WORLD_CLASSES[24], 'red triangle');
  for (const c of WORLD_CLASS_INFO) {
    assert.is(c.name, `${c.colour} ${c.shape}`);
    assert.is(c.folder, c.name.replace(' ', '_'));
    assert.is(c.half, c.index < 24 ? 'base' : 'novel');
  }
});

test('base/novel: every colour and shape twice in each half; novel attributes all seen in base', () => {
  const base = baseClassIndices().map((i) => WORLD_CLASS_INFO[i]!);
  const novel = novelClassIndices().map((i) => WORLD_CLASS_INFO[i]!);
  assert.equal(base.map((c) => c.index), [...Array(24).keys()]);
  assert.equal(novel.map((c) => c.index), [...Array(24).keys()].map((i) => i + 24));
  for (const half of [base, novel]) {
    for (const colour of COLOURS) assert.is(half.filter((c) => c.colour === colour).length, 2, colour);
    for (const shape of SHAPES) assert.is(half.filter((c) => c.shape === shape).length, 2, shape);
  }
  const baseColours = new Set(base.map((c) => c.colour));
  const baseShapes = new Set(base.map((c) => c.shape));
  const baseNames = new Set(base.map((c) => c.name));
  for (const c of novel) {
    assert.ok(baseColours.has(c.colour), `${c.name}: colour seen in base`);
    assert.ok(baseShapes.has(c.shape), `${c.name}: shape seen in base`);
    assert.not.ok(baseNames.has(c.name));
  }
  // Every block of 12 labels holds all colours and all shapes.
  for (let b = 0; b < 4; b++) {
    const block = WORLD_CLASS_INFO.slice(12 * b, 12 * b + 12);
    assert.is(new Set(block.map((c) => c.colour)).size, 12);
    assert.is(new Set(block.map((c) => c.shape)).size, 12);
  }
});

test('all 144 combinations, classes included', () => {
  const combos = allCombinations();
  assert.is(combos.length, 144);
  const names = new Set(combos.map((c) => `${c.colour} ${c.shape}`));
  for (const n of WORLD_CLASSES) assert.ok(names.has(n));
});

test('findClass and parseClassSelection', () => {
  assert.is(findClass('Red_Circle')?.index, 0);
  assert.is(findClass(' cyan  ring ')?.index, 47);
  assert.is(findClass('red square'), undefined);
  assert.equal(parseClassSelection('all'), [...Array(48).keys()]);
  assert.equal(parseClassSelection('base'), baseClassIndices());
  assert.equal(parseClassSelection('NOVEL'), novelClassIndices());
  assert.equal(parseClassSelection('cyan_ring,red circle,3,5-7'), [0, 3, 5, 6, 7, 47]);
  assert.equal(parseClassSelection('2..4'), [2, 3, 4]);
  assert.equal(parseClassSelection([1, 'red_circle', 1]), [0, 1]);
  assert.throws(() => parseClassSelection('red_circle,purple_blob,99'), (e: Error) =>
    e instanceof ClassSelectionError && /"purple_blob", "99"/.test(e.message) && /red_circle, green_square/.test(e.message));
  assert.throws(() => parseClassSelection('7-3'), (e: Error) => e instanceof ClassSelectionError);
  assert.throws(() => parseClassSelection(''), /no classes/);
});

test.run();
