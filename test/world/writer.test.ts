// The dataset writer: layout, split JSON, manifest, PNG round trip, determinism, atomicity and the
// refusal to overwrite.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { decodeImageFile } from '../../src/clip/image-decode-node.js';
import {
  DEFAULT_COUNTS, SPLIT_FILE, splitPerClass, writeWorldDataset, WorldWriteError, type WorldManifest,
} from '../../src/data/world/write-node.js';
import { classImage, WORLD_VERSION } from '../../src/data/world/index.js';
import { encodePng } from '../../src/data/world/png-node.js';

const root = mkdtempSync(join(tmpdir(), 'cliptune-world-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)));
    }
  };
  walk(dir);
  return out.sort();
}

function digest(dir: string): string {
  const h = createHash('sha256');
  for (const f of files(dir)) h.update(f).update(readFileSync(join(dir, f)));
  return h.digest('hex');
}

test('splitPerClass follows CoOp (50/20/30) and the defaults are sensible', () => {
  assert.equal(splitPerClass(10), { train: 5, val: 2, test: 3 });
  assert.equal(splitPerClass(1), { train: 1, val: 0, test: 0 });
  assert.equal(splitPerClass(64), { train: 32, val: 13, test: 19 });
  assert.ok(DEFAULT_COUNTS.train >= 16, '16-shot training fits');
  assert.throws(() => splitPerClass(0), /positive/);
});

test('layout: images in class folders, CoOp split JSON, classnames.txt, world.json', async () => {
  const out = join(root, 'ds');
  const r = await writeWorldDataset({ out, classes: 'cyan_ring,0-2', domain: 'sketch', counts: { train: 3, val: 1, test: 2 }, size: 24, seed: 9 });
  assert.equal(r.classes, ['red circle', 'green square', 'blue triangle', 'cyan ring']);
  assert.is(r.images, 4 * 6);
  const split = JSON.parse(readFileSync(join(out, SPLIT_FILE), 'utf8')) as Record<string, [string, number, string][]>;
  assert.equal(Object.keys(split), ['train', 'val', 'test']);
  assert.is(split.train!.length, 12);
  assert.is(split.val!.length, 4);
  assert.is(split.test!.length, 8);
  assert.equal(split.train![0], ['red_circle/0000.png', 0, 'red circle']);
  assert.equal(split.val![0], ['red_circle/0003.png', 0, 'red circle']);
  assert.equal(split.test![7], ['cyan_ring/0005.png', 3, 'cyan ring']);
  const seen = new Set<string>();
  for (const [name, entries] of Object.entries(split)) {
    for (const [path, label, classname] of entries) {
      assert.ok(existsSync(join(out, 'images', path)), `${name}: ${path}`);
      assert.is(path.split('/')[0], classname.replace(/ /g, '_'));
      assert.is(r.classes[label], classname);
      assert.not.ok(seen.has(path), 'each file in one split only');
      seen.add(path);
    }
  }
  assert.is(files(join(out, 'images')).length, 24);
  assert.is(readFileSync(join(out, 'classnames.txt'), 'utf8'), 'red circle\ngreen square\nblue triangle\ncyan ring\n');
  const m = JSON.parse(readFileSync(join(out, 'world.json'), 'utf8')) as WorldManifest;
  assert.is(m.generator, 'cliptune-world');
  assert.is(m.version, WORLD_VERSION);
  assert.is(m.seed, 9);
  assert.is(m.domain, 'sketch');
  assert.is(m.size, 24);
  assert.equal(m.perClass, { train: 3, val: 1, test: 2 });
  assert.equal(m.totals, { train: 12, val: 4, test: 8, images: 24 });
  assert.equal(m.classes[3], { label: 3, name: 'cyan ring', folder: 'cyan_ring', worldIndex: 47, half: 'novel' });
  assert.is(m.pixelsSha256, r.pixelsSha256);
  // The files hold exactly the generator's pixels: val image 0 of class 47 is file 0003.
  const decoded = await decodeImageFile(join(out, 'images', 'cyan_ring', '0003.png'));
  const expected = classImage({ seed: 9, classIndex: 47, split: 'val', index: 0, domain: 'sketch', size: 24 }).image;
  assert.is(decoded.width, 24);
  assert.equal(decoded.data, expected.data);
  // No temporary directories left beside it.
  assert.equal(readdirSync(root).filter((n) => n.includes('.tmp-') || n.includes('.old-')), []);
});

test('same options -> identical bytes; other seeds differ', async () => {
  const opts = { classes: 'novel', counts: { train: 1, val: 1, test: 1 }, seed: 3 };
  const a = await writeWorldDataset({ ...opts, out: join(root, 'det-a') });
  const b = await writeWorldDataset({ ...opts, out: join(root, 'det-b') });
  assert.is(digest(a.dir), digest(b.dir));
  const c = await writeWorldDataset({ ...opts, seed: 4, out: join(root, 'det-c') });
  assert.is.not(c.pixelsSha256, a.pixelsSha256);
  // A bigger dataset starts with the same images (image i is independent of the counts).
  const d = await writeWorldDataset({ ...opts, counts: { train: 3, val: 1, test: 1 }, out: join(root, 'det-d') });
  assert.equal(readFileSync(join(d.dir, 'images', 'red_triangle', '0000.png')), readFileSync(join(a.dir, 'images', 'red_triangle', '0000.png')));
});

test('refuses a non-empty directory unless forced; accepts an empty one', async () => {
  const out = join(root, 'busy');
  mkdirSync(out);
  writeFileSync(join(out, 'keep.txt'), 'mine');
  const small = { classes: '0', counts: { train: 1, val: 0, test: 1 } };
  try {
    await writeWorldDataset({ ...small, out });
    assert.unreachable('should refuse');
  } catch (e) {
    assert.ok(e instanceof WorldWriteError);
    assert.match((e as Error).message, /not empty.*--force/);
  }
  assert.equal(readdirSync(out), ['keep.txt']);
  await writeWorldDataset({ ...small, out, force: true });
  assert.not.ok(existsSync(join(out, 'keep.txt')));
  assert.ok(existsSync(join(out, SPLIT_FILE)));
  const empty = join(root, 'empty');
  mkdirSync(empty);
  await writeWorldDataset({ ...small, out: empty });
  assert.ok(statSync(join(empty, 'images', 'red_circle')).isDirectory());
  const file = join(root, 'a-file');
  writeFileSync(file, 'x');
  try {
    await writeWorldDataset({ ...small, out: file, force: true });
    assert.unreachable('should refuse a file');
  } catch (e) {
    assert.match((e as Error).message, /not a directory/);
  }
  assert.equal(readdirSync(root).filter((n) => n.includes('.tmp-') || n.includes('.old-')), []);
});

test('bad options fail before anything is written', async () => {
  const out = join(root, 'never');
  for (const [opts, re] of [
    [{ classes: 'red_square' }, /unknown class "red_square"/],
    [{ domain: 'oil' as never }, /unknown domain "oil"/],
    [{ size: 7 }, /8\.\.1024/],
    [{ seed: -1 }, /seed/],
    [{ counts: { train: 0, val: 0, test: 0 } }, /nothing to write/],
    [{ counts: { train: 1.5 } }, /train images per class/],
  ] as const) {
    try {
      await writeWorldDataset({ out, ...(opts as object) });
      assert.unreachable(String(re));
    } catch (e) {
      assert.match((e as Error).message, re);
    }
    assert.not.ok(existsSync(out));
  }
});

test('PNG encoder round-trips every domain exactly', async () => {
  const { decodeImageBuffer } = await import('../../src/clip/image-decode-node.js');
  for (const domain of ['plain', 'noise', 'stripes', 'pixelated'] as const) {
    const { image } = classImage({ seed: 1, classIndex: 5, split: 'test', index: 2, domain, size: 40 });
    const png = encodePng(image);
    const back = await decodeImageBuffer(png);
    assert.equal(back.data, image.data, domain);
  }
});

test.run();
