// File access for datasets (Node): image folders, CoOp/Dassl data roots (split JSONs, FGVC
// txt splits, ImageNet and its variants), existence checks, few-shot caches and index files.
//
// Directory order matters for reproducing Dassl: its folder readers use os.listdir (readdir
// order, not sorted) for the files inside a class folder. Node's fs.readdir returns names
// *sorted* (libuv sorts scandir results) while fs.opendir iterates in readdir order, so
// listDirPythonOrder uses opendir: on the same filesystem it yields os.listdir's order.

import { opendir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  type ClassificationDataset,
  type Datum,
  DatasetError,
  type SplitData,
  type ValidateOptions,
  parseClassnamesFile,
  parseFgvcAircraftSplit,
  parseSplitJson,
  validateSplits,
} from './datasets.js';
import { compareCodePoints, type FewshotOptions, type FewshotSplit, fewshotSplit, parseFewshotIndexFile, selectByIndices } from './fewshot.js';
import { matchCachedItems, parseDasslFewshotPickle } from './dassl-pickle.js';

/** Image file extensions accepted by folder readers (lower case). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp', '.tif', '.tiff', '.ppm'];

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DatasetError(code === 'ENOENT' ? `${what} not found: ${path}` : `cannot read ${what} ${path} (${code ?? (e as Error).message})`);
  }
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function requireDir(path: string, what: string): Promise<void> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DatasetError(code === 'ENOENT' ? `${what} not found: ${path}` : `cannot access ${what} ${path} (${code})`);
  }
  if (!st.isDirectory()) throw new DatasetError(`${what} is not a directory: ${path}`);
}

/**
 * Dassl's listdir_nohidden: entry names in os.listdir (readdir) order, names starting with "."
 * left out.
 */
export async function listDirPythonOrder(dir: string): Promise<string[]> {
  return (await listDirEntries(dir)).map((e) => e.name);
}

async function listDirEntries(dir: string): Promise<{ name: string; isDir: boolean }[]> {
  let d;
  try {
    d = await opendir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DatasetError(code === 'ENOENT' ? `directory not found: ${dir}` : code === 'ENOTDIR' ? `not a directory: ${dir}` : `cannot list ${dir} (${code ?? (e as Error).message})`);
  }
  const out: { name: string; isDir: boolean }[] = [];
  for await (const ent of d) {
    if (ent.name.startsWith('.')) continue;
    let dirLike = ent.isDirectory();
    if (ent.isSymbolicLink()) dirLike = await isDir(join(dir, ent.name));
    out.push({ name: ent.name, isDir: dirLike });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Image folders: <dir>/<class>/<image>, labels by sorted folder name.

export interface ImageFolderOptions {
  /**
   * Order of the files inside a class folder, which decides few-shot subsets: 'sorted' (default;
   * stable everywhere) or 'readdir' (Python's os.listdir order on this filesystem, what Dassl's
   * ImageNet-style readers see).
   */
  fileOrder?: 'sorted' | 'readdir';
  /** Accepted extensions (case-insensitive); null accepts every non-hidden file, as Dassl does. */
  extensions?: readonly string[] | null;
  /** Class name per folder; default the folder name itself. Folders absent from a Map are an error. */
  classnames?: ReadonlyMap<string, string> | ((folder: string) => string);
  /** Top-level names to skip (e.g. ImageNet-A's README.txt). */
  ignore?: readonly string[];
  /** Explicit class folders in label order (instead of all sub-folders, sorted). */
  folders?: readonly string[];
}

export interface ImageFolderListing {
  items: Datum[];
  /** Class folder of each label. */
  folders: string[];
  classnames: string[];
  /** Entries that were not used: top-level files, files with other extensions (relative paths). */
  ignored: string[];
}

/** Reads one image-folder split. Missing folder or an empty class folder is an error naming it. */
export async function readImageFolder(dir: string, opts: ImageFolderOptions = {}): Promise<ImageFolderListing> {
  await requireDir(dir, 'image folder');
  const ignore = new Set(opts.ignore ?? []);
  const entries = (await listDirEntries(dir)).filter((e) => !ignore.has(e.name));
  const ignored: string[] = entries.filter((e) => !e.isDir).map((e) => e.name);
  let folders: string[];
  if (opts.folders) {
    const present = new Set(entries.filter((e) => e.isDir).map((e) => e.name));
    const absent = opts.folders.filter((f) => !present.has(f));
    if (absent.length) throw new DatasetError(`${dir}: class folder(s) ${absent.slice(0, 5).join(', ')}${absent.length > 5 ? ` ... (${absent.length})` : ''} not found`);
    folders = [...opts.folders];
  } else {
    folders = entries.filter((e) => e.isDir).map((e) => e.name).sort(compareCodePoints);
  }
  if (folders.length === 0) throw new DatasetError(`${dir}: no class folders (expected one sub-folder per class)`);
  const exts = opts.extensions === undefined ? IMAGE_EXTENSIONS : opts.extensions;
  const nameOf = (folder: string): string => {
    const c = opts.classnames;
    if (!c) return folder;
    if (typeof c === 'function') return c(folder);
    const n = c.get(folder);
    if (n === undefined) throw new DatasetError(`${dir}: folder ${folder} has no entry in the class-name list`);
    return n;
  };
  const items: Datum[] = [];
  const classnames: string[] = [];
  for (let label = 0; label < folders.length; label++) {
    const folder = folders[label]!;
    const classname = nameOf(folder);
    classnames.push(classname);
    const fdir = join(dir, folder);
    let files = await listDirEntries(fdir);
    if (opts.fileOrder !== 'readdir') files = files.sort((a, b) => compareCodePoints(a.name, b.name));
    let n = 0;
    for (const f of files) {
      const rel = `${folder}/${f.name}`;
      if (f.isDir || (exts !== null && !exts.includes(extOf(f.name)))) {
        ignored.push(rel);
        continue;
      }
      items.push({ impath: join(dir, folder, f.name), relpath: rel, label, classname });
      n++;
    }
    if (n === 0) throw new DatasetError(`${dir}: class folder "${folder}" contains no images (empty class)`);
  }
  return { items, folders, classnames, ignored };
}

function extOf(name: string): string {
  const i = name.lastIndexOf('.');
  return i < 0 ? '' : name.slice(i).toLowerCase();
}

/**
 * A dataset from image folders, one per split (val optional). All splits must have the same
 * class folders (a class-count mismatch names both folders).
 */
export async function readImageFolderDataset(dirs: { train: string; val?: string; test: string }, opts: ImageFolderOptions & { name?: string } = {}): Promise<ClassificationDataset & { ignored: string[] }> {
  const train = await readImageFolder(dirs.train, opts);
  const others: Partial<Record<'val' | 'test', ImageFolderListing>> = {};
  for (const key of ['val', 'test'] as const) {
    const d = dirs[key];
    if (!d) continue;
    const l = await readImageFolder(d, { ...opts, folders: opts.folders ?? undefined });
    const a = train.folders.join('\n'), b = l.folders.join('\n');
    if (a !== b) {
      const onlyTrain = train.folders.filter((f) => !l.folders.includes(f));
      const onlyOther = l.folders.filter((f) => !train.folders.includes(f));
      throw new DatasetError(`class-count mismatch: ${dirs.train} has ${train.folders.length} class folders, ${d} has ${l.folders.length}` +
        (onlyTrain.length ? `; only in train: ${onlyTrain.slice(0, 5).join(', ')}` : '') + (onlyOther.length ? `; only in ${key}: ${onlyOther.slice(0, 5).join(', ')}` : ''));
    }
    others[key] = l;
  }
  return {
    name: opts.name ?? basename(dirs.train),
    source: dirs.train,
    train: train.items,
    val: others.val?.items ?? [],
    test: others.test!.items,
    classnames: train.classnames,
    ignored: [...train.ignored, ...(others.val?.ignored ?? []), ...others.test!.ignored],
  };
}

// ---------------------------------------------------------------------------------------------
// Split JSON datasets

export interface SplitDatasetOptions extends ValidateOptions {
  /** Dassl dataset name (for templates and messages). */
  name?: string;
  /** Check that every listed image exists (as Dassl's Datum asserts). Default true. */
  checkFiles?: boolean;
}

/** Reads <imageDir> + split JSON unchanged, validates it, and (by default) checks the images exist. */
export async function readSplitDataset(imageDir: string, splitFile: string, opts: SplitDatasetOptions = {}): Promise<ClassificationDataset> {
  const text = await readText(splitFile, 'split file');
  await requireDir(imageDir, `image directory for ${splitFile}`);
  const splits = parseSplitJson(text, splitFile, imageDir);
  const classnames = validateSplits(splits, splitFile, opts);
  if (opts.checkFiles !== false) await checkImagesExist([...splits.train, ...splits.val, ...splits.test], `${splitFile} (image directory ${imageDir})`);
  return { name: opts.name ?? basename(splitFile).replace(/^split_zhou_|\.json$/g, ''), source: splitFile, ...splits, classnames };
}

/** Errors when any listed image is missing (or not a file), naming how many and the first few. */
export async function checkImagesExist(items: readonly { impath: string }[], source: string, concurrency = 64): Promise<void> {
  const unique = [...new Set(items.map((d) => d.impath))];
  const missing: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < unique.length) {
      const p = unique[next++]!;
      try {
        if (!(await stat(p)).isFile()) missing.push(p);
      } catch {
        missing.push(p);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, unique.length)) }, worker));
  if (missing.length) {
    missing.sort();
    throw new DatasetError(`${source}: ${missing.length} of ${unique.length} listed images are missing, e.g. ${missing.slice(0, 3).join(', ')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// CoOp/Dassl data roots (DATASETS.md layouts)

export interface DasslLayout {
  /** Folder under the data root. */
  dir: string;
  /** Image directory inside it ('' = the dataset folder itself). */
  images: string;
  /** Split JSON file name, when the dataset uses one. */
  split?: string;
  numClasses: number;
  kind: 'split-json' | 'fgvc' | 'imagenet' | 'imagenet-variant' | 'imagenet-v2';
}

/** CoOp's DATASETS.md layouts, keyed by Dassl dataset name. */
export const DASSL_LAYOUTS: Readonly<Record<string, DasslLayout>> = Object.freeze({
  Caltech101: { dir: 'caltech-101', images: '101_ObjectCategories', split: 'split_zhou_Caltech101.json', numClasses: 100, kind: 'split-json' },
  OxfordPets: { dir: 'oxford_pets', images: 'images', split: 'split_zhou_OxfordPets.json', numClasses: 37, kind: 'split-json' },
  StanfordCars: { dir: 'stanford_cars', images: '', split: 'split_zhou_StanfordCars.json', numClasses: 196, kind: 'split-json' },
  OxfordFlowers: { dir: 'oxford_flowers', images: 'jpg', split: 'split_zhou_OxfordFlowers.json', numClasses: 102, kind: 'split-json' },
  Food101: { dir: 'food-101', images: 'images', split: 'split_zhou_Food101.json', numClasses: 101, kind: 'split-json' },
  SUN397: { dir: 'sun397', images: 'SUN397', split: 'split_zhou_SUN397.json', numClasses: 397, kind: 'split-json' },
  DescribableTextures: { dir: 'dtd', images: 'images', split: 'split_zhou_DescribableTextures.json', numClasses: 47, kind: 'split-json' },
  EuroSAT: { dir: 'eurosat', images: '2750', split: 'split_zhou_EuroSAT.json', numClasses: 10, kind: 'split-json' },
  UCF101: { dir: 'ucf101', images: 'UCF-101-midframes', split: 'split_zhou_UCF101.json', numClasses: 101, kind: 'split-json' },
  FGVCAircraft: { dir: 'fgvc_aircraft', images: 'images', numClasses: 100, kind: 'fgvc' },
  ImageNet: { dir: 'imagenet', images: 'images', numClasses: 1000, kind: 'imagenet' },
  ImageNetSketch: { dir: 'imagenet-sketch', images: 'images', numClasses: 1000, kind: 'imagenet-variant' },
  ImageNetA: { dir: 'imagenet-adversarial', images: 'imagenet-a', numClasses: 200, kind: 'imagenet-variant' },
  ImageNetR: { dir: 'imagenet-rendition', images: 'imagenet-r', numClasses: 200, kind: 'imagenet-variant' },
  ImageNetV2: { dir: 'imagenetv2', images: 'imagenetv2-matched-frequency-format-val', numClasses: 1000, kind: 'imagenet-v2' },
});

export interface DasslDatasetOptions {
  /** Check that every image exists (split-JSON and FGVC datasets). Default true. */
  checkFiles?: boolean;
  /** Order of files in class folders (ImageNet family): default 'readdir' = Dassl's os.listdir order. */
  fileOrder?: 'sorted' | 'readdir';
  /**
   * ImageNet: when <imagenet>/preprocessed.pkl exists (CoOp writes it on first use and reads it
   * afterwards), take the train/test lists from it, in its order, so few-shot sampling sees
   * exactly the list the PyTorch runs saw even on another filesystem. Default true.
   */
  usePreprocessedPickle?: boolean;
}

export interface DasslDataset extends ClassificationDataset {
  /** <root>/<layout.dir>, where split_fewshot/ lives. */
  datasetDir: string;
  imageDir: string;
  layout: DasslLayout;
  /** ImageNet family: the class folder (WordNet id) of each label. */
  folders?: string[];
}

/**
 * Reads a dataset from a CoOp/Dassl data root (the folder passed as DATASET.ROOT) by its Dassl
 * name, exactly as the PyTorch readers list it: split JSONs unchanged; FGVCAircraft from its txt
 * splits; ImageNet from images/train and images/val (val = test; no val split) with
 * classnames.txt; ImageNet-Sketch/-A/-R/-V2 as test-only sets (train = test, as Dassl does).
 */
export async function readDasslDataset(root: string, name: string, opts: DasslDatasetOptions = {}): Promise<DasslDataset> {
  const layout = DASSL_LAYOUTS[name];
  if (!layout) throw new DatasetError(`unknown Dassl dataset "${name}"; known: ${Object.keys(DASSL_LAYOUTS).join(', ')}`);
  const datasetDir = join(root, layout.dir);
  await requireDir(datasetDir, `${name} folder`);
  const imageDir = layout.images ? join(datasetDir, layout.images) : datasetDir;
  const base = { datasetDir, imageDir, layout };
  switch (layout.kind) {
    case 'split-json': {
      const ds = await readSplitDataset(imageDir, join(datasetDir, layout.split!), { name, numClasses: layout.numClasses, checkFiles: opts.checkFiles });
      return { ...ds, ...base };
    }
    case 'fgvc': {
      const variants = join(datasetDir, 'variants.txt');
      const vtext = await readText(variants, 'FGVCAircraft class list');
      await requireDir(imageDir, 'FGVCAircraft image directory');
      const splits: Partial<SplitData> = {};
      for (const key of ['train', 'val', 'test'] as const) {
        const f = join(datasetDir, `images_variant_${key}.txt`);
        splits[key] = parseFgvcAircraftSplit(vtext, await readText(f, 'FGVCAircraft split file'), f, imageDir);
      }
      const s = splits as SplitData;
      const classnames = validateSplits(s, datasetDir, { numClasses: layout.numClasses });
      if (opts.checkFiles !== false) await checkImagesExist([...s.train, ...s.val, ...s.test], `FGVCAircraft (${imageDir})`);
      return { name, source: datasetDir, ...s, classnames, ...base };
    }
    case 'imagenet': {
      if (opts.usePreprocessedPickle !== false) {
        const fromPkl = await readImageNetPreprocessed(datasetDir, imageDir, opts);
        if (fromPkl) return { ...fromPkl, ...base, name };
      }
      const cn = await readClassnames(join(datasetDir, 'classnames.txt'), 'folder-name');
      const map = new Map(cn.folders!.map((f, i) => [f, cn.names[i]!]));
      const fileOrder = opts.fileOrder ?? 'readdir';
      const train = await readImageFolder(join(imageDir, 'train'), { classnames: map, fileOrder, extensions: null });
      const test = await readImageFolder(join(imageDir, 'val'), { classnames: map, fileOrder, extensions: null });
      if (train.folders.join('\n') !== test.folders.join('\n')) {
        throw new DatasetError(`class-count mismatch: ${join(imageDir, 'train')} has ${train.folders.length} class folders, ${join(imageDir, 'val')} has ${test.folders.length}`);
      }
      return { name, source: datasetDir, train: train.items, val: [], test: test.items, classnames: train.classnames, folders: train.folders, ...base };
    }
    case 'imagenet-variant': {
      const cn = await readClassnames(join(datasetDir, 'classnames.txt'), 'folder-name');
      const map = new Map(cn.folders!.map((f, i) => [f, cn.names[i]!]));
      const l = await readImageFolder(imageDir, { classnames: map, fileOrder: opts.fileOrder ?? 'readdir', extensions: null, ignore: ['README.txt'] });
      return { name, source: imageDir, train: l.items, val: [], test: l.items, classnames: l.classnames, folders: l.folders, ...base };
    }
    case 'imagenet-v2': {
      const cn = await readClassnames(join(datasetDir, 'classnames.txt'), 'folder-name');
      const folders = cn.names.map((_, i) => String(i));
      const l = await readImageFolder(imageDir, { folders, classnames: (f) => cn.names[Number(f)]!, fileOrder: opts.fileOrder ?? 'readdir', extensions: null });
      return { name, source: imageDir, train: l.items, val: [], test: l.items, classnames: l.classnames, folders: cn.folders!, ...base };
    }
  }
}

/** CoOp's ImageNet preprocessed.pkl -> train/test lists (paths re-rooted at our image dir), or null if absent. */
async function readImageNetPreprocessed(datasetDir: string, imageDir: string, opts: DasslDatasetOptions): Promise<Omit<DasslDataset, 'datasetDir' | 'imageDir' | 'layout' | 'name'> | null> {
  const pkl = join(datasetDir, 'preprocessed.pkl');
  let bytes: Uint8Array;
  try {
    bytes = await readFile(pkl);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new DatasetError(`cannot read ${pkl} (${(e as NodeJS.ErrnoException).code})`);
  }
  const cache = parseDasslFewshotPickle(bytes, pkl);
  if (!cache.test) throw new DatasetError(`${pkl}: no "test" list (expected CoOp's ImageNet {"train", "test"})`);
  const convert = (xs: readonly { impath: string; label: number; classname: string }[], what: string): Datum[] =>
    xs.map((d, i) => {
      const parts = d.impath.replace(/\\/g, '/').split('/');
      if (parts.length < 3) throw new DatasetError(`${pkl}: ${what}[${i}] path ${d.impath} is not <split>/<folder>/<file>`);
      const relpath = parts.slice(-3).join('/');
      return { impath: join(imageDir, relpath), relpath, label: d.label, classname: d.classname };
    });
  const train = convert(cache.train, 'train'), test = convert(cache.test, 'test');
  const classnames = validateSplits({ train, val: [], test }, pkl, { allowEmpty: ['val'] });
  if (opts.checkFiles !== false) await checkImagesExist([...train, ...test], `${pkl} (image directory ${imageDir})`);
  const folders = Array.from({ length: classnames.length }, () => '');
  for (const d of train) folders[d.label] ||= d.relpath.split('/')[1]!;
  return { source: pkl, train, val: [], test, classnames, folders };
}

/** Reads a class-name file (see parseClassnamesFile for the layouts). */
export async function readClassnames(path: string, layout: 'auto' | 'folder-name' | 'lines' = 'auto') {
  return parseClassnamesFile(await readText(path, 'class-name file'), path, layout);
}

// ---------------------------------------------------------------------------------------------
// Few-shot subsets from a data folder

export interface FewshotSubsetOptions extends FewshotOptions {
  seed: number | bigint;
  numShots: number;
  /** Val shots: default min(K, 4); null = no val subset. */
  valShots?: number | null;
  /** An index file (JSON) pinning the subset; takes precedence. */
  indexFile?: string;
  /** Use <datasetDir>/split_fewshot/shot_{K}-seed_{S}.pkl when present (default true). */
  useDasslCache?: boolean;
  /** Where split_fewshot/ lives (a DasslDataset's datasetDir). */
  datasetDir?: string;
}

export interface FewshotSubset extends FewshotSplit<Datum> {
  /** Where the subset came from. */
  origin: 'index-file' | 'dassl-cache' | 'generated';
  /** The file it was read from, if any. */
  originPath?: string;
}

/**
 * The few-shot subset a PyTorch run on this data folder would use: an index file if given,
 * else Dassl's cached split_fewshot/shot_{K}-seed_{S}.pkl if present (what CoOp loads instead
 * of sampling), else Dassl's sampling with CPython's generator.
 */
export async function loadFewshotSubset(ds: Pick<ClassificationDataset, 'train' | 'val' | 'classnames' | 'name'>, opts: FewshotSubsetOptions): Promise<FewshotSubset> {
  const valList = opts.valShots === null || ds.val.length === 0 ? null : ds.val;
  if (opts.indexFile) {
    const parsed = parseFewshotIndexFile(await readText(opts.indexFile, 'few-shot index file'), opts.indexFile, { train: ds.train.length, val: valList ? valList.length : null });
    return {
      train: selectByIndices(ds.train, parsed.train, 'train list'),
      val: parsed.val && valList ? selectByIndices(valList, parsed.val, 'val list') : null,
      trainIndices: parsed.train,
      valIndices: parsed.val,
      seed: opts.seed,
      numShots: opts.numShots,
      valShots: parsed.val ? opts.valShots ?? Math.min(opts.numShots, 4) : null,
      origin: 'index-file',
      originPath: opts.indexFile,
    };
  }
  if (opts.useDasslCache !== false && opts.datasetDir) {
    const pkl = join(opts.datasetDir, 'split_fewshot', `shot_${opts.numShots}-seed_${opts.seed}.pkl`);
    let bytes: Uint8Array | null = null;
    try {
      bytes = await readFile(pkl);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new DatasetError(`cannot read ${pkl} (${(e as NodeJS.ErrnoException).code})`);
    }
    if (bytes) {
      const cache = parseDasslFewshotPickle(bytes, pkl);
      const trainIndices = matchCachedItems(cache.train, ds.train, `${pkl} (train)`);
      const valIndices = cache.val && valList ? matchCachedItems(cache.val, valList, `${pkl} (val)`) : null;
      return {
        train: trainIndices.map((i) => ds.train[i]!),
        val: valIndices && valList ? valIndices.map((i) => valList[i]!) : null,
        trainIndices,
        valIndices,
        seed: opts.seed,
        numShots: opts.numShots,
        valShots: valIndices ? opts.valShots ?? Math.min(opts.numShots, 4) : null,
        origin: 'dassl-cache',
        originPath: pkl,
      };
    }
  }
  const split = fewshotSplit(ds.train, valList, { ...opts, classnames: opts.classnames ?? ds.classnames, what: opts.what ?? ds.name });
  return { ...split, origin: 'generated' };
}
