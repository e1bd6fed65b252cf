// Few-shot subsets vs Dassl: lists exported by tools/gen-data-fixtures.py (a plain-Python
// transcription of Dassl's generate_fewshot_dataset / CoOp's subsample_classes run with CPython's
// random) for a 37-class split with uneven class sizes, K in {1,2,4,8,16}, seeds {1,2,3}.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PyRandom } from '../../src/data/pyrandom.js';
import {
  FewshotError, compareCodePoints, fewshotIndices, fewshotSplit, formatFewshotIndexFile, generateFewshotDataset, groupIndicesByLabel,
  parseFewshotIndexFile, prolipImageNetFewshot, readAndSplitData, selectByIndices, subsampleClasses, subsampleClassnames,
} from '../../src/data/fewshot.js';
import { parseSplitJson, validateSplits, type Datum } from '../../src/data/datasets.js';
import { matchCachedItems, parseDasslFewshotPickle } from '../../src/data/dassl-pickle.js';
import { loadFewshotSubset } from '../../src/data/datasets-node.js';
import { DATA_FIXTURES, errorOf, fixtureJson, scratchDir } from './helpers.js';

interface Fx {
  fewshot: { repeat: boolean; seed: number; shots: number; train: string[]; val: string[] }[];
  base_to_novel: { seed: number; subsample: 'base' | 'new'; train: [string, number][]; val: [string, number][]; test: [string, number][] }[];
  prolip: { subsample: 'all' | 'base'; seed: number; shots: number; train: [string, number][]; val: [string, number][] }[];
  prolip_imagenet: { seed: number; shots: number; train: string[]; val: string[] }[];
  read_and_split: { listing: Record<string, string[]>; seed: number; new_cnames: Record<string, string>; train: [string, number, string][]; val: [string, number, string][]; test: [string, number, string][]; then_fewshot_2: string[] };
}
const fx = fixtureJson<Fx>('fewshot-synth37.json');
const SPLIT = join(DATA_FIXTURES, 'split_zhou_Synth37.json');
const split = parseSplitJson(readFileSync(SPLIT, 'utf8'), SPLIT, '/data/synth37/images');
const classnames = validateSplits(split, SPLIT, { numClasses: 37 });
const rel = (xs: readonly Datum[]) => xs.map((d) => d.relpath);
const relLabel = (xs: readonly Datum[]) => xs.map((d) => [d.relpath, d.label]);

test('synthetic split: 37 classes, labels interleaved (first appearance != label order)', () => {
  assert.is(classnames.length, 37);
  const order = [...groupIndicesByLabel(split.train).keys()];
  assert.is(order.length, 37);
  assert.not.equal(order, [...order].sort((a, b) => a - b));
});

test(`Dassl few-shot lists: ${fx.fewshot.length} (repeat, seed, K) cases, train K then val min(K,4), identical paths and order`, () => {
  for (const c of fx.fewshot) {
    const s = fewshotSplit(split.train, split.val, { seed: c.seed, numShots: c.shots, repeat: c.repeat });
    const tag = `repeat=${c.repeat} seed=${c.seed} K=${c.shots}`;
    assert.equal(rel(s.train), c.train, `${tag} train`);
    assert.equal(rel(s.val!), c.val, `${tag} val`);
    assert.is(s.valShots, Math.min(c.shots, 4));
    assert.equal(s.trainIndices.map((i) => split.train[i]!.relpath), c.train);
  }
});

test('classes with fewer than K images: all of them (repeat=false) or K with replacement (repeat=true)', () => {
  const small = fx.fewshot.find((c) => !c.repeat && c.seed === 1 && c.shots === 16)!;
  assert.is(small.train.filter((p) => p.startsWith('c00/')).length, 3); // class 0 has 3 train images
  const rep = fx.fewshot.find((c) => c.repeat && c.seed === 1 && c.shots === 16)!;
  assert.is(rep.train.filter((p) => p.startsWith('c00/')).length, 16);
  assert.is(rep.train.length, 37 * 16);
});

test('base-to-novel (CoOp order: few-shot on all classes, then subsample_classes) matches, labels relabelled', () => {
  for (const c of fx.base_to_novel) {
    const s = fewshotSplit(split.train, split.val, { seed: c.seed, numShots: 16 });
    const r = subsampleClasses([s.train, s.val!, split.test], c.subsample);
    assert.equal(relLabel(r.datasets[0]!), c.train, `seed ${c.seed} ${c.subsample} train`);
    assert.equal(relLabel(r.datasets[1]!), c.val, `seed ${c.seed} ${c.subsample} val`);
    assert.equal(relLabel(r.datasets[2]!), c.test, `seed ${c.seed} ${c.subsample} test`);
    assert.is(r.selected.length, c.subsample === 'base' ? 19 : 18); // ceil(37/2) = 19 base classes
  }
  const base = subsampleClasses([split.train], 'base');
  assert.equal(base.selected, Array.from({ length: 19 }, (_, i) => i));
  assert.equal(subsampleClassnames(classnames, subsampleClasses([split.train], 'new').selected)[0], classnames[19]);
  const all = subsampleClasses([split.train, split.test], 'all');
  assert.equal(all.datasets[0], split.train);
});

test('ProLIP order (subsample first, then train K and val K shots) matches', () => {
  for (const c of fx.prolip) {
    const sub = subsampleClasses([split.train, split.val], c.subsample);
    const s = fewshotSplit(sub.datasets[0]!, sub.datasets[1]!, { seed: c.seed, numShots: c.shots, valShots: c.shots });
    assert.equal(relLabel(s.train), c.train, `${c.subsample} seed ${c.seed} K=${c.shots} train`);
    assert.equal(relLabel(s.val!), c.val, `${c.subsample} seed ${c.seed} K=${c.shots} val`);
  }
});

test("ProLIP's ImageNet protocol (2K per class from train: first K train, last K val) matches", () => {
  const counts = new Map<number, number>();
  for (const d of split.train) counts.set(d.label, (counts.get(d.label) ?? 0) + 1);
  const big = split.train.filter((d) => counts.get(d.label)! >= 32);
  for (const c of fx.prolip_imagenet) {
    const s = prolipImageNetFewshot(big, c.seed, c.shots);
    assert.equal(rel(s.train), c.train, `seed ${c.seed} K=${c.shots} train`);
    assert.equal(rel(s.val!), c.val, `seed ${c.seed} K=${c.shots} val`);
  }
  assert.match(prolipErr(), /train split: ProLIP's ImageNet protocol needs 32 images per class, label \d+ \("class_\d+_[a-z_]+"\) has \d+/);
  function prolipErr() {
    try { prolipImageNetFewshot(split.train, 1, 16, { classnames }); } catch (e) { return (e as Error).message; }
    return '';
  }
});

test("CoOp's read_and_split_data (shuffle per sorted category, round half to even) and the draws after it match", () => {
  const r = fx.read_and_split;
  const rng = new PyRandom(r.seed);
  const s = readAndSplitData(rng, r.listing, { newCnames: r.new_cnames });
  const tuples = (xs: { impath: string; label: number; classname: string }[]) => xs.map((d) => [d.impath, d.label, d.classname]);
  assert.equal(tuples(s.train), r.train);
  assert.equal(tuples(s.val), r.val);
  assert.equal(tuples(s.test), r.test);
  assert.equal(generateFewshotDataset(rng, s.train, 2).map((d) => d.impath), r.then_fewshot_2);
  assert.match(await_(() => readAndSplitData(new PyRandom(1), { tiny: ['a.jpg', 'b.jpg'] })), /category "tiny" has 2 images/);
});

function await_(fn: () => unknown): string {
  try { fn(); } catch (e) { return (e as Error).message; }
  return '';
}

test('strict: more shots than a class has is an error naming each short class and its count', async () => {
  const msg = await errorOf(() => fewshotSplit(split.train, split.val, { seed: 1, numShots: 16, strict: true, classnames, what: 'split_zhou_Synth37.json' }));
  assert.match(msg, /split_zhou_Synth37\.json \(train\): 16 shots requested but 4 class\(es\) have fewer images/);
  assert.match(msg, /label 0 \("class_00_abyssinian"\) has 3/);
  assert.match(msg, /label 13 \("class_13_great_pyrenees"\) has 1/);
  // val: min(4, 4) = 4 and some val classes have fewer
  const v = await errorOf(() => fewshotSplit(split.train.filter((d) => ![0, 1, 13, 14].includes(d.label)), split.val, { seed: 1, numShots: 16, strict: true }));
  assert.match(v, /val split: 4 shots requested but 3 class\(es\) have fewer images: label 0 has 1, label 1 has 3, label 5 has 2/);
  // not strict: Dassl's behaviour, no error
  fewshotSplit(split.train, split.val, { seed: 1, numShots: 16 });
  assert.throws(() => fewshotIndices(new PyRandom(1), split.train, 1.5), (e: unknown) => e instanceof FewshotError && /must be an integer/.test((e as Error).message));
});

test('numShots < 1 keeps everything (Dassl); valShots null leaves val out (ImageNet)', () => {
  const s = fewshotSplit(split.train, split.val, { seed: 1, numShots: 0 });
  assert.is(s.train.length, split.train.length);
  const t = fewshotSplit(split.train, split.val, { seed: 1, numShots: 4, valShots: null });
  assert.is(t.val, null);
  assert.equal(rel(t.train), fx.fewshot.find((c) => !c.repeat && c.seed === 1 && c.shots === 4)!.train);
});

test('index file: round trip pins the same subset; bare arrays accepted; bad indices named', async () => {
  const s = fewshotSplit(split.train, split.val, { seed: 2, numShots: 8 });
  const text = formatFewshotIndexFile(s, 'Synth37');
  const p = parseFewshotIndexFile(text, 'pin.json', { train: split.train.length, val: split.val.length });
  assert.equal(p.train, s.trainIndices);
  assert.equal(p.val, s.valIndices);
  assert.equal(p.meta, { dataset: 'Synth37', seed: 2, numShots: 8, valShots: 4 });
  assert.equal(selectByIndices(split.train, p.train), s.train);
  assert.equal(parseFewshotIndexFile('[3, 1, 4]', 'a.json', { train: 5 }).train, [3, 1, 4]);
  assert.match(await errorOf(() => parseFewshotIndexFile('[3, 9]', 'a.json', { train: 5 })), /a\.json: train\[1\] = 9 is not an index into the train list of 5 items/);
  assert.match(await errorOf(() => parseFewshotIndexFile('[1.5]', 'a.json', { train: 5 })), /train\[0\] = 1\.5/);
  assert.match(await errorOf(() => parseFewshotIndexFile('{"val": [1]}', 'b.json', { train: 5, val: 5 })), /b\.json: missing "train"/);
  assert.match(await errorOf(() => parseFewshotIndexFile('{"train": [0], "val": [1]}', 'c.json', { train: 5 })), /c\.json: has "val" indices but the dataset has no val split/);
  assert.match(await errorOf(() => parseFewshotIndexFile('nope', 'd.json', { train: 5 })), /d\.json: not valid JSON/);
  assert.match(await errorOf(() => parseFewshotIndexFile('{"format": "x", "train": []}', 'e.json', { train: 5 })), /unknown format/);
});

test('Dassl cache split_fewshot/shot_4-seed_1.pkl (protocol 5 and 2) reads to the same subset', () => {
  const want = fx.fewshot.find((c) => !c.repeat && c.seed === 1 && c.shots === 4)!;
  for (const f of ['shot_4-seed_1.pkl', 'shot_4-seed_1.proto2.pkl']) {
    const cache = parseDasslFewshotPickle(readFileSync(join(DATA_FIXTURES, f)), f);
    assert.ok(cache.train[0]!.impath.startsWith('/home/someone/data/synth37/images/'));
    assert.equal(cache.train[0]!.classname, classnames[cache.train[0]!.label]);
    const ti = matchCachedItems(cache.train, split.train, f);
    assert.equal(ti.map((i) => split.train[i]!.relpath), want.train, f);
    const vi = matchCachedItems(cache.val!, split.val, f);
    assert.equal(vi.map((i) => split.val[i]!.relpath), want.val, f);
  }
});

test('Dassl cache: hostile or mismatched content is a clear error', async () => {
  const cache = parseDasslFewshotPickle(readFileSync(join(DATA_FIXTURES, 'shot_4-seed_1.pkl')), 'x.pkl');
  assert.match(await errorOf(() => matchCachedItems([{ ...cache.train[0]!, impath: '/elsewhere/zzz/none.jpg' }], split.train, 'x.pkl')), /x\.pkl: 1 of 1 cached images are not in the split, e\.g\. \/elsewhere\/zzz\/none\.jpg/);
  assert.match(await errorOf(() => matchCachedItems([{ ...cache.train[0]!, label: 99 }], split.train, 'x.pkl')), /label 99 in the cache but/);
  // A pickle naming some other global is refused (no code runs).
  const evil = new Uint8Array([0x80, 0x02, 0x63, ...Buffer.from('os\nsystem\n'), 0x29, 0x52, 0x2e]);
  assert.match(await errorOf(() => parseDasslFewshotPickle(evil, 'evil.pkl')), /evil\.pkl: refers to os\.system/);
  const notDict = new Uint8Array([0x80, 0x02, 0x5d, 0x2e]);
  assert.match(await errorOf(() => parseDasslFewshotPickle(notDict, 'l.pkl')), /l\.pkl: expected a dict/);
});

test('loadFewshotSubset: index file > Dassl cache > generated, each with its origin', async () => {
  const dir = scratchDir();
  mkdirSync(join(dir, 'split_fewshot'));
  const ds = { train: split.train, val: split.val, classnames, name: 'Synth37' };
  const gen = await loadFewshotSubset(ds, { seed: 1, numShots: 4, datasetDir: dir });
  assert.is(gen.origin, 'generated');
  copyFileSync(join(DATA_FIXTURES, 'shot_4-seed_1.pkl'), join(dir, 'split_fewshot', 'shot_4-seed_1.pkl'));
  const cached = await loadFewshotSubset(ds, { seed: 1, numShots: 4, datasetDir: dir });
  assert.is(cached.origin, 'dassl-cache');
  assert.equal(cached.trainIndices, gen.trainIndices);
  assert.equal(cached.valIndices, gen.valIndices);
  const pin = join(dir, 'pin.json');
  writeFileSync(pin, JSON.stringify({ train: [5, 6, 7] }));
  const pinned = await loadFewshotSubset(ds, { seed: 1, numShots: 4, datasetDir: dir, indexFile: pin });
  assert.is(pinned.origin, 'index-file');
  assert.equal(pinned.train, [split.train[5], split.train[6], split.train[7]]);
  assert.match(await errorOf(() => loadFewshotSubset(ds, { seed: 1, numShots: 4, indexFile: join(dir, 'none.json') })), /few-shot index file not found: .*none\.json/);
});

test('compareCodePoints orders like Python str (code points, not UTF-16 units)', () => {
  const xs = ['b', 'a', '\u{1F600}', '\uFF61', 'B', 'ab', ''];
  assert.equal([...xs].sort(compareCodePoints), ['', 'B', 'a', 'ab', 'b', '\uFF61', '\u{1F600}']);
});

test.run();
