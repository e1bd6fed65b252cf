// Dataset readers: CoOp/Dassl split JSONs, image folders, Dassl data roots; validation of bad
// layouts with errors that name the file and the problem; templates; class subsets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DATASET_TEMPLATES, IMAGENET_TEMPLATES_SELECT, ensembleTemplatesFor, formatPrompt, gatherSubsetLogits, joinPath, parseCatToName, parseClassnamesFile,
  parseFgvcAircraftSplit, parseSplitJson, promptClassname, promptsFor, resolveClassSubset, restrictToClasses, templateFor, validateSplits,
} from '../../src/data/datasets.js';
import { listDirPythonOrder, readDasslDataset, readImageFolder, readImageFolderDataset, readSplitDataset } from '../../src/data/datasets-node.js';
import { DATA_FIXTURES, errorOf, scratchDir, writeImage } from './helpers.js';

const touch = (p: string, s = 'x') => { mkdirSync(join(p, '..'), { recursive: true }); writeFileSync(p, s); };
const splitText = (o: unknown) => JSON.stringify(o);
const ok3 = {
  train: [['a/1.jpg', 0, 'abyssinian'], ['b/1.jpg', 1, 'great_pyrenees'], ['a/2.jpg', 0, 'abyssinian']],
  val: [['a/3.jpg', 0, 'abyssinian'], ['b/2.jpg', 1, 'great_pyrenees']],
  test: [['a/4.jpg', '0', 'abyssinian'], ['b/3.jpg', 1, 'great_pyrenees']],
};

test('parseSplitJson keeps order, joins the image dir, accepts integer-string labels', () => {
  const s = parseSplitJson(splitText(ok3), 'split_zhou_X.json', '/data/x/images/');
  assert.equal(s.train.map((d) => d.relpath), ['a/1.jpg', 'b/1.jpg', 'a/2.jpg']);
  assert.is(s.train[1]!.impath, '/data/x/images/b/1.jpg');
  assert.is(s.test[0]!.label, 0);
  assert.equal(validateSplits(s, 'split_zhou_X.json'), ['abyssinian', 'great_pyrenees']);
  assert.is(joinPath('', 'a.jpg'), 'a.jpg');
  assert.is(joinPath('/r', '/abs/a.jpg'), '/abs/a.jpg');
});

test('parseSplitJson: malformed files are errors naming the file, split and entry', async () => {
  const e = (o: unknown) => errorOf(() => parseSplitJson(typeof o === 'string' ? o : splitText(o), 'S.json', '/i'));
  assert.match(await e('{"train": ['), /S\.json: not valid JSON/);
  assert.match(await e([1, 2]), /S\.json: expected an object with "train", "val" and "test"/);
  assert.match(await e({ train: [], val: [] }), /S\.json: missing "test" list/);
  assert.match(await e({ ...ok3, val: {} }), /S\.json: "val" is not a list/);
  assert.match(await e({ ...ok3, train: [['a.jpg', 0]] }), /S\.json: train\[0\] must be \[image_path, label, classname\], got \["a\.jpg",0\]/);
  assert.match(await e({ ...ok3, test: [...ok3.test, ['c.jpg', -1, 'x']] }), /S\.json: test\[2\] \(c\.jpg\): label must be a non-negative integer, got -1/);
  assert.match(await e({ ...ok3, test: [['c.jpg', 1.5, 'x']] }), /label must be a non-negative integer, got 1\.5/);
  assert.match(await e({ ...ok3, val: [['', 0, 'x']] }), /val\[0\]: image path must be a non-empty string/);
  assert.match(await e({ ...ok3, val: [['a.jpg', 0, 7]] }), /val\[0\] \(a\.jpg\): class name must be a string/);
});

test('validateSplits: gaps, class-count mismatches, inconsistent names, empty splits', async () => {
  const v = (o: typeof ok3, opts = {}) => errorOf(() => validateSplits(parseSplitJson(splitText(o), 'S.json', '/i'), 'S.json', opts));
  const gap = { ...ok3, train: [...ok3.train, ['d/1.jpg', 3, 'dog']] };
  assert.match(await v(gap as typeof ok3), /S\.json: train labels are not contiguous: 4 classes implied \(max label 3\) but label\(s\) 2 have no train image \(empty classes\)/);
  assert.match(await v({ ...ok3, val: [['a/3.jpg', 0, 'abyssinian']] }), /S\.json: class-count mismatch: the val split has 1 classes, train has 2; missing label\(s\) 1 \("great_pyrenees"\)/);
  assert.match(await v({ ...ok3, test: [...ok3.test, ['c/1.jpg', 2, 'cat']] }), /S\.json: class-count mismatch: the test split has label\(s\) 2 but the train split has only 2 classes/);
  assert.match(await v({ ...ok3, val: [['a/3.jpg', 0, 'Abyssinian'], ['b/2.jpg', 1, 'great_pyrenees']] }), /S\.json: label 0 is named "abyssinian" in train \(a\/1\.jpg\) but "Abyssinian" in val \(a\/3\.jpg\)/);
  assert.match(await v(ok3, { numClasses: 37 }), /S\.json: expected 37 classes, the train split has 2/);
  assert.match(await v({ ...ok3, val: [] }), /S\.json: the val split is empty/);
  validateSplits(parseSplitJson(splitText({ ...ok3, val: [] }), 'S.json', '/i'), 'S.json', { allowEmpty: ['val'] });
  validateSplits(parseSplitJson(splitText({ ...ok3, val: [['a/3.jpg', 0, 'abyssinian']] }), 'S.json', '/i'), 'S.json', { allowMissingClasses: true });
});

test('readSplitDataset: missing split file, missing image dir, missing images are named', async () => {
  const root = scratchDir();
  const img = join(root, 'images');
  const split = join(root, 'split_zhou_Pets.json');
  assert.match(await errorOf(() => readSplitDataset(img, split)), new RegExp(`split file not found: ${split}`));
  writeFileSync(split, splitText(ok3));
  assert.match(await errorOf(() => readSplitDataset(img, split)), new RegExp(`image directory for ${split} not found: ${img}`));
  for (const [p] of [...ok3.train, ...ok3.val, ...ok3.test]) touch(join(img, p as string));
  const ds = await readSplitDataset(img, split, { name: 'OxfordPets' });
  assert.is(ds.name, 'OxfordPets');
  assert.equal(ds.classnames, ['abyssinian', 'great_pyrenees']);
  writeFileSync(split, splitText({ ...ok3, test: [...ok3.test, ['b/404.jpg', 1, 'great_pyrenees'], ['a/405.jpg', 0, 'abyssinian']] }));
  const msg = await errorOf(() => readSplitDataset(img, split));
  assert.match(msg, /split_zhou_Pets\.json \(image directory .*\): 2 of 9 listed images are missing, e\.g\. .*a\/405\.jpg, .*b\/404\.jpg/);
  await readSplitDataset(img, split, { checkFiles: false });
});

test('image folders: labels by sorted folder name, "_" kept in class names, hidden and non-image files reported', async () => {
  const root = scratchDir();
  for (const c of ['zebra', 'Great_Dane', 'apple_pie']) for (const f of ['b.jpg', 'a.JPG', 'c.png']) touch(join(root, 'train', c, f));
  touch(join(root, 'train', 'apple_pie', 'notes.txt'));
  touch(join(root, 'train', 'apple_pie', '.DS_Store'));
  touch(join(root, 'train', 'README.md'));
  mkdirSync(join(root, 'train', '.git'));
  const l = await readImageFolder(join(root, 'train'));
  assert.equal(l.folders, ['Great_Dane', 'apple_pie', 'zebra']);
  assert.equal(l.classnames, ['Great_Dane', 'apple_pie', 'zebra']);
  assert.equal(l.items.filter((d) => d.label === 1).map((d) => d.relpath), ['apple_pie/a.JPG', 'apple_pie/b.jpg', 'apple_pie/c.png']);
  assert.equal(l.ignored.sort(), ['README.md', 'apple_pie/notes.txt']);
  assert.is(promptClassname(l.classnames[1]!), 'apple pie');
  // readdir order = Python's os.listdir order on this filesystem
  const rd = await readImageFolder(join(root, 'train'), { fileOrder: 'readdir', extensions: null });
  const py = (await listDirPythonOrder(join(root, 'train', 'zebra')));
  assert.equal(rd.items.filter((d) => d.label === 2).map((d) => d.relpath.split('/')[1]), py);
  assert.ok(!py.includes('.DS_Store'));
});

test('image folders: missing folder, empty class, no classes, class mismatch between splits', async () => {
  const root = scratchDir();
  assert.match(await errorOf(() => readImageFolder(join(root, 'nope'))), /image folder not found: .*nope/);
  mkdirSync(join(root, 'empty'));
  assert.match(await errorOf(() => readImageFolder(join(root, 'empty'))), /empty: no class folders/);
  touch(join(root, 'train', 'cat', '1.jpg'));
  mkdirSync(join(root, 'train', 'dog'));
  touch(join(root, 'train', 'dog', 'readme.txt'));
  assert.match(await errorOf(() => readImageFolder(join(root, 'train'))), /train: class folder "dog" contains no images \(empty class\)/);
  touch(join(root, 'train', 'dog', '1.jpg'));
  touch(join(root, 'test', 'cat', '1.jpg'));
  touch(join(root, 'test', 'cow', '1.jpg'));
  assert.match(await errorOf(() => readImageFolderDataset({ train: join(root, 'train'), test: join(root, 'test') })),
    /class-count mismatch: .*train has 2 class folders, .*test has 2; only in train: dog; only in test: cow/);
  touch(join(root, 'test', 'dog', '1.jpg'));
  assert.match(await errorOf(() => readImageFolderDataset({ train: join(root, 'train'), test: join(root, 'test') })), /train has 2 class folders, .*test has 3/);
  touch(join(root, 'train', 'cow', '1.jpg'));
  const ds = await readImageFolderDataset({ train: join(root, 'train'), test: join(root, 'test') }, { name: 'Farm' });
  assert.equal(ds.classnames, ['cat', 'cow', 'dog']);
  assert.is(ds.val.length, 0);
  assert.match(await errorOf(() => readImageFolder(join(root, 'train'), { classnames: new Map([['cat', 'Cat']]) })), /folder cow has no entry in the class-name list/);
});

test('Dassl data root: split-JSON dataset, FGVCAircraft, ImageNet (+ classnames.txt), ImageNet-A, ImageNetV2', async () => {
  const root = scratchDir();
  // OxfordPets needs 37 classes: build a minimal valid split.
  const pets: Record<string, [string, number, string][]> = { train: [], val: [], test: [] };
  for (let y = 0; y < 37; y++) for (const k of ['train', 'val', 'test']) pets[k]!.push([`c${y}_${k}.jpg`, y, `breed_${y}`]);
  mkdirSync(join(root, 'oxford_pets', 'images'), { recursive: true });
  writeFileSync(join(root, 'oxford_pets', 'split_zhou_OxfordPets.json'), splitText(pets));
  for (const k of ['train', 'val', 'test']) for (const [p] of pets[k]!) touch(join(root, 'oxford_pets', 'images', p));
  const op = await readDasslDataset(root, 'OxfordPets');
  assert.is(op.classnames.length, 37);
  assert.is(op.datasetDir, join(root, 'oxford_pets'));
  assert.is(templateFor(op.name), 'a photo of a {}, a type of pet.');
  // 36 classes is a class-count error for OxfordPets
  const short = { train: pets.train!.filter(([, y]) => y < 36), val: pets.val!.filter(([, y]) => y < 36), test: pets.test!.filter(([, y]) => y < 36) };
  writeFileSync(join(root, 'oxford_pets', 'split_zhou_OxfordPets.json'), splitText(short));
  assert.match(await errorOf(() => readDasslDataset(root, 'OxfordPets')), /split_zhou_OxfordPets\.json: expected 37 classes, the train split has 36/);
  assert.match(await errorOf(() => readDasslDataset(root, 'DescribableTextures')), /DescribableTextures folder not found: .*dtd/);
  assert.match(await errorOf(() => readDasslDataset(root, 'Pets')), /unknown Dassl dataset "Pets"/);

  // FGVCAircraft (100 variants; 1 image each per split)
  const fg = join(root, 'fgvc_aircraft');
  const variants = Array.from({ length: 100 }, (_, i) => `Model ${i}-${i % 3 ? 'A' : 'B 2'}`);
  touch(join(fg, 'variants.txt'), variants.join('\n') + '\n');
  for (const k of ['train', 'val', 'test']) {
    touch(join(fg, `images_variant_${k}.txt`), variants.map((v, i) => `${k}${i} ${v}`).join('\n') + '\n');
    variants.forEach((_, i) => touch(join(fg, 'images', `${k}${i}.jpg`)));
  }
  const fgv = await readDasslDataset(root, 'FGVCAircraft');
  assert.is(fgv.train[3]!.classname, 'Model 3-B 2');
  assert.is(fgv.train[3]!.label, 3);
  touch(join(fg, 'images_variant_val.txt'), '123 Unknown Plane\n');
  assert.match(await errorOf(() => readDasslDataset(root, 'FGVCAircraft')), /images_variant_val\.txt: line 1: variant "Unknown Plane" is not in variants\.txt/);

  // ImageNet (2 classes here; numClasses is not enforced for folder datasets)
  const inet = join(root, 'imagenet');
  touch(join(inet, 'classnames.txt'), 'n01440764 tench\nn01443537 goldfish\n');
  for (const s of ['train', 'val']) for (const w of ['n01443537', 'n01440764']) for (const f of ['x.JPEG', 'y.JPEG']) touch(join(inet, 'images', s, w, f));
  const im = await readDasslDataset(root, 'ImageNet');
  assert.equal(im.classnames, ['tench', 'goldfish']);
  assert.equal(im.folders, ['n01440764', 'n01443537']);
  assert.is(im.val.length, 0);
  assert.is(im.test.length, 4);
  assert.equal(ensembleTemplatesFor('ImageNet'), [...IMAGENET_TEMPLATES_SELECT]);
  touch(join(inet, 'images', 'val', 'n09999999', 'z.JPEG'));
  assert.match(await errorOf(() => readDasslDataset(root, 'ImageNet')), /folder n09999999 has no entry in the class-name list/);

  // ImageNet-A: README.txt at the top is ignored, classes by sorted folder
  const ia = join(root, 'imagenet-adversarial');
  touch(join(ia, 'classnames.txt'), 'n01440764 tench\nn01443537 goldfish\nn01484850 great white shark\n');
  touch(join(ia, 'imagenet-a', 'README.txt'));
  touch(join(ia, 'imagenet-a', 'n01484850', '1.jpg'));
  touch(join(ia, 'imagenet-a', 'n01443537', '1.jpg'));
  const a = await readDasslDataset(root, 'ImageNetA');
  assert.equal(a.classnames, ['goldfish', 'great white shark']);
  // restricted target: map ImageNet-A's classes into the full ImageNet label space by folder
  const sub = resolveClassSubset({ names: ['tench', 'goldfish', 'great white shark'], folders: ['n01440764', 'n01443537', 'n01484850'] }, a.folders!);
  assert.equal(sub.fullLabels, [1, 2]);

  // ImageNetV2: folders "0".."N-1" labelled by number, names from classnames.txt order
  const v2 = join(root, 'imagenetv2');
  touch(join(v2, 'classnames.txt'), 'n01440764 tench\nn01443537 goldfish\n');
  touch(join(v2, 'imagenetv2-matched-frequency-format-val', '1', 'a.jpeg'));
  touch(join(v2, 'imagenetv2-matched-frequency-format-val', '0', 'b.jpeg'));
  const iv2 = await readDasslDataset(root, 'ImageNetV2');
  assert.equal(iv2.test.map((d) => [d.relpath, d.label, d.classname]), [['0/b.jpeg', 0, 'tench'], ['1/a.jpeg', 1, 'goldfish']]);
});

test("ImageNet: CoOp's preprocessed.pkl, when present, fixes the list order (paths re-rooted here)", async () => {
  const root = scratchDir();
  const inet = join(root, 'imagenet');
  touch(join(inet, 'classnames.txt'), 'n01440764 tench\nn01443537 goldfish\n');
  for (const f of ['x1', 'x2']) touch(join(inet, 'images', 'train', 'n01440764', `${f}.JPEG`));
  for (const f of ['y1', 'y2', 'y3']) touch(join(inet, 'images', 'train', 'n01443537', `${f}.JPEG`));
  touch(join(inet, 'images', 'val', 'n01440764', 'v1.JPEG'));
  touch(join(inet, 'images', 'val', 'n01443537', 'v2.JPEG'));
  copyFileSync(join(DATA_FIXTURES, 'imagenet-preprocessed.pkl'), join(inet, 'preprocessed.pkl'));
  const ds = await readDasslDataset(root, 'ImageNet');
  assert.is(ds.source, join(inet, 'preprocessed.pkl'));
  assert.equal(ds.train.map((d) => d.relpath), ['train/n01440764/x2.JPEG', 'train/n01440764/x1.JPEG', 'train/n01443537/y3.JPEG', 'train/n01443537/y1.JPEG', 'train/n01443537/y2.JPEG']);
  assert.is(ds.train[0]!.impath, join(inet, 'images', 'train', 'n01440764', 'x2.JPEG'));
  assert.equal(ds.classnames, ['tench', 'goldfish']);
  assert.equal(ds.folders, ['n01440764', 'n01443537']);
  const listed = await readDasslDataset(root, 'ImageNet', { usePreprocessedPickle: false, fileOrder: 'sorted' });
  assert.equal(listed.train.map((d) => d.relpath.split('/').pop()), ['x1.JPEG', 'x2.JPEG', 'y1.JPEG', 'y2.JPEG', 'y3.JPEG']);
  rmSync(join(inet, 'images', 'train', 'n01443537', 'y2.JPEG'));
  assert.match(await errorOf(() => readDasslDataset(root, 'ImageNet')), /preprocessed\.pkl \(image directory .*\): 1 of 7 listed images are missing, e\.g\. .*y2\.JPEG/);
});

test('class-name files: ImageNet folder layout, one name per line, cat_to_name.json', async () => {
  const inet = parseClassnamesFile('n01440764 tench\nn01443537 goldfish\r\nn01484850 great white shark\n\n', 'classnames.txt');
  assert.equal(inet.folders, ['n01440764', 'n01443537', 'n01484850']);
  assert.equal(inet.names[2], 'great white shark');
  assert.equal(parseClassnamesFile('Annual Crop Land\nForest\n', 'c.txt'), { names: ['Annual Crop Land', 'Forest'], folders: null });
  assert.match(await errorOf(() => parseClassnamesFile('\n\n', 'c.txt')), /c\.txt: no class names/);
  assert.match(await errorOf(() => parseClassnamesFile('n01440764 a\nn01440764 b\n', 'c.txt')), /c\.txt: folder n01440764 is listed twice \(lines 1 and 2\)/);
  assert.equal(parseCatToName('{"2": "hard-leaved pocket orchid", "1": "pink primrose"}', 'cat_to_name.json'), ['pink primrose', 'hard-leaved pocket orchid']);
  assert.match(await errorOf(() => parseCatToName('{"0": "x"}', 'cat_to_name.json')), /key "0" is not a label in 1\.\.1/);
  assert.equal(parseFgvcAircraftSplit('A 1\nB\n', '7 B\n3 A 1\n', 'f.txt', '/img').map((d) => [d.impath, d.label]), [['/img/7.jpg', 1], ['/img/3.jpg', 0]]);
});

test("templates: CoOp's per-dataset table, default, ensembles, '_' -> space", () => {
  assert.is(Object.keys(DATASET_TEMPLATES).length, 15);
  assert.is(templateFor('DescribableTextures'), '{} texture.');
  assert.is(templateFor('EuroSAT'), 'a centered satellite photo of {}.');
  assert.is(templateFor('MyOwnData'), 'a photo of a {}.');
  assert.is(IMAGENET_TEMPLATES_SELECT.length, 7);
  const e = ensembleTemplatesFor('Food101');
  assert.is(e.length, 8);
  assert.is(e[7], 'a photo of {}, a type of food.');
  assert.is(formatPrompt('{} texture.', 'banded_pattern'), 'banded pattern texture.');
  assert.equal(promptsFor(['great_pyrenees', 'pug'], templateFor('OxfordPets')), ['a photo of a great pyrenees, a type of pet.', 'a photo of a pug, a type of pet.']);
  assert.throws(() => formatPrompt('no placeholder', 'x'), /no \{\} placeholder/);
});

test('class subsets: by name, folder or index; relabel; logit gather; errors', async () => {
  const full = { names: ['tench', 'goldfish', 'crane', 'crane', 'shark'], folders: ['n1', 'n2', 'n3', 'n4', 'n5'] };
  const s = resolveClassSubset(full, ['shark', 'n2', 0], 'A.txt');
  assert.equal(s, { classnames: ['shark', 'goldfish', 'tench'], fullLabels: [4, 1, 0] });
  const items = [{ label: 0 }, { label: 2 }, { label: 4 }, { label: 1 }];
  const r = restrictToClasses(items, s);
  assert.equal(r.items.map((d) => d.label), [2, 0, 1]);
  assert.is(r.dropped, 1);
  const logits = new Float32Array([0, 1, 2, 3, 4, /**/ 10, 11, 12, 13, 14]);
  assert.equal(Array.from(gatherSubsetLogits(logits, 2, 5, s)), [4, 1, 0, 14, 11, 10]);
  assert.match(await errorOf(() => resolveClassSubset(full, ['crane'], 'A.txt')), /A\.txt: class name "crane" is ambiguous \(labels 2, 3\)/);
  assert.match(await errorOf(() => resolveClassSubset(full, ['whale'], 'A.txt')), /A\.txt: entry 0 \("whale"\) is neither a class name nor a folder/);
  assert.match(await errorOf(() => resolveClassSubset(full, [5], 'A.txt')), /A\.txt: entry 0 \(5\) is not a class index in 0\.\.4/);
  assert.match(await errorOf(() => resolveClassSubset(full, [1, 'goldfish'], 'A.txt')), /A\.txt: class 1 \("goldfish"\) is listed twice/);
  assert.match(await errorOf(() => gatherSubsetLogits(logits, 3, 5, s)), /expected 3x5 logits/);
});

test('real images on disk are listed like any file (smoke)', async () => {
  const root = scratchDir();
  await writeImage(join(root, 'c', 'x.png'), 8, 6);
  const l = await readImageFolder(root);
  assert.is(l.items.length, 1);
});

test.run();
