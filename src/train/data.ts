// Dataset folders as `cliptune train/eval --data DIR [--split FILE]` accepts them, and the protocol
// subsets a run uses (few-shot train/val, base-to-novel classes, evaluation lists). Every layout
// problem is a DatasetError naming the folder and what was expected, raised before any training.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DatasetError, type ClassificationDataset, type Datum } from '../data/datasets.js';
import { DASSL_LAYOUTS, loadFewshotSubset, readDasslDataset, readImageFolderDataset, readSplitDataset } from '../data/datasets-node.js';
import { FewshotError, groupIndicesByLabel, subsampleClasses, subsampleClassnames, type Subsample } from '../data/fewshot.js';
import { readFileSync } from 'node:fs';

export const LAYOUTS_HELP = `accepted --data layouts:
  - a folder with one split_zhou_<Name>.json (CoOp/Dassl split: {"train", "val", "test"} lists of
    [path, label, classname]) and its images (in images/, the Dassl image folder, or the folder itself);
    or any folder plus --split FILE;
  - a CoOp dataset folder by its Dassl name (fgvc_aircraft, imagenet, ...) inside a data root;
  - a folder with train/ and test/ (and optionally val/) holding one sub-folder per class.`;

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The Dassl name a split file belongs to (split_zhou_OxfordPets.json -> OxfordPets). */
function splitName(file: string): string {
  return basename(file).replace(/^split_zhou_/, '').replace(/\.json$/, '');
}

/** The image folder a split file's relative paths live in: the first candidate holding its first image. */
function imageDirFor(dir: string, splitFile: string): string {
  const name = splitName(splitFile);
  const candidates = [DASSL_LAYOUTS[name]?.images ? join(dir, DASSL_LAYOUTS[name]!.images) : null, join(dir, 'images'), dir].filter((d): d is string => !!d && isDir(d));
  let first: string | null = null;
  try {
    const doc = JSON.parse(readFileSync(splitFile, 'utf8')) as { train?: unknown[][] };
    const e = doc.train?.[0];
    if (Array.isArray(e) && typeof e[0] === 'string') first = e[0];
  } catch {
    // readSplitDataset reports a bad file with its own message.
  }
  if (first) for (const c of candidates) if (existsSync(join(c, first))) return c;
  return candidates[0] ?? dir;
}

/** Opens a dataset folder (see LAYOUTS_HELP). */
export async function openDataset(dirArg: string, splitFile?: string): Promise<ClassificationDataset & { datasetDir: string }> {
  const dir = resolve(dirArg);
  if (!existsSync(dir)) throw new DatasetError(`--data: ${dir} does not exist`);
  if (!isDir(dir)) throw new DatasetError(`--data: ${dir} is not a folder`);
  if (splitFile) {
    const f = resolve(splitFile);
    if (!existsSync(f)) throw new DatasetError(`--split: ${f} does not exist`);
    const ds = await readSplitDataset(imageDirFor(dir, f), f, { name: splitName(f) });
    return { ...ds, datasetDir: dir };
  }
  const splits = readdirSync(dir).filter((f) => /^split_zhou_.+\.json$/.test(f));
  if (splits.length > 1) throw new DatasetError(`--data: ${dir} holds several split files (${splits.join(', ')}); choose one with --split`);
  if (splits.length === 1) {
    const f = join(dir, splits[0]!);
    const name = splitName(f);
    const layout = DASSL_LAYOUTS[name];
    const ds = await readSplitDataset(imageDirFor(dir, f), f, { name, ...(layout ? { numClasses: layout.numClasses } : {}) });
    return { ...ds, datasetDir: dir };
  }
  const byDir = Object.entries(DASSL_LAYOUTS).find(([, l]) => l.dir === basename(dir));
  if (byDir) {
    const ds = await readDasslDataset(dirname(dir), byDir[0]);
    return { ...ds, datasetDir: ds.datasetDir };
  }
  if (isDir(join(dir, 'train')) && isDir(join(dir, 'test'))) {
    const ds = await readImageFolderDataset({ train: join(dir, 'train'), test: join(dir, 'test'), ...(isDir(join(dir, 'val')) ? { val: join(dir, 'val') } : {}) }, { name: basename(dir) });
    return { ...ds, datasetDir: dir };
  }
  throw new DatasetError(`--data: ${dir} is not a dataset folder I know.\n${LAYOUTS_HELP}`);
}

export interface TrainSubset {
  /** Training classes by label (base classes in base-to-novel runs). */
  classnames: string[];
  train: Datum[];
  val: Datum[] | null;
  /** Where the few-shot subset came from (generated, Dassl cache, index file). */
  origin: string;
}

/**
 * The few-shot training subset, as Dassl builds it: K shots per class (val: min(K, 4)) sampled with
 * CPython's generator seeded by `seed` from all classes, then (base-to-novel) the base half of the
 * classes, relabelled. shots 0 = every training image. More shots than a class has is an error
 * naming the class (Dassl would silently take fewer).
 */
export async function trainSubset(ds: ClassificationDataset & { datasetDir: string }, o: { shots: number; seed: number; baseToNovel: boolean; indexFile?: string }): Promise<TrainSubset> {
  // Too few train images is an error; a small val split is used whole (Dassl's behaviour).
  if (o.shots > 0 && !o.indexFile) {
    const short = [...groupIndicesByLabel(ds.train)].filter(([, idx]) => idx.length < o.shots).sort((a, b) => a[0] - b[0]);
    if (short.length) {
      const list = short.slice(0, 5).map(([y, idx]) => `"${ds.classnames[y]}" has ${idx.length}`).join(', ');
      throw new FewshotError(`--shots ${o.shots}: ${short.length} class(es) of the train split have fewer images: ${list}${short.length > 5 ? ', ...' : ''}`);
    }
  }
  const fs = await loadFewshotSubset(ds, { seed: o.seed, numShots: o.shots, datasetDir: ds.datasetDir, ...(o.indexFile ? { indexFile: o.indexFile } : {}) });
  let train = fs.train;
  let val = fs.val;
  let classnames = ds.classnames;
  if (o.baseToNovel) {
    const sub = subsampleClasses([train, val ?? []], 'base');
    train = sub.datasets[0]!;
    val = val ? sub.datasets[1]! : null;
    classnames = subsampleClassnames(ds.classnames, sub.selected);
  }
  return { classnames, train, val: val && val.length ? val : null, origin: fs.originPath ? `${fs.origin} (${fs.originPath})` : fs.origin };
}

export type ClassChoice = 'all' | 'base' | 'novel';

/** An evaluation list: a split restricted to all, base or novel classes (relabelled as CoCoOp does). */
export function evalSubset(ds: ClassificationDataset, split: 'train' | 'val' | 'test', classes: ClassChoice): { items: Datum[]; classnames: string[] } {
  const list = ds[split];
  if (!list.length) throw new DatasetError(`${ds.source}: the ${split} split is empty`);
  const mode: Subsample = classes === 'novel' ? 'new' : classes;
  // Base/novel are decided by the train split's labels, as subsample_classes does.
  const sub = subsampleClasses([ds.train, list], mode);
  return { items: sub.datasets[1]!, classnames: subsampleClassnames(ds.classnames, sub.selected) };
}
