// Few-shot subsets and class subsampling exactly as the PyTorch repos build them, so a user's
// existing data folder yields the same images for the same (shots, seed).
//
// Dassl.pytorch (CoOp, CoCoOp, MaPLe, PromptSRC, KgCoOp, DAPT, Prompt-OT):
//   set_random_seed(seed)                        # random.seed(seed); numpy/torch seeds play no part
//   train = generate_fewshot_dataset(train, num_shots=K)
//   val   = generate_fewshot_dataset(val, num_shots=min(K, 4))   # same generator, continued
//   train, val, test = subsample_classes(train, val, test, subsample=...)  # base-to-novel
// generate_fewshot_dataset groups items by label in order of first appearance (a defaultdict
// filled in list order), then per label: random.sample(items, K) when the label has >= K items,
// otherwise random.choices(items, k=K) if repeat else all its items (in list order). The
// `repeat` default is False in current Dassl and True in older snapshots (and in copies of that
// code, e.g. Tip-Adapter's): pass it explicitly when reproducing those. With the CoOp benchmark
// splits every class has >= 16 train and >= 4 val images, so the flag never matters there.
// CoOp caches the result in split_fewshot/shot_{K}-seed_{S}.pkl and reuses it afterwards; read
// such a cache with parseDasslFewshotPickle (dassl-pickle.ts) to get the identical subset even
// when it was produced under other conditions.
//
// ProLIP (astra-vision/ProLIP main.py): subsample_classes happens in the dataset constructor
// first, then random.seed(seed), then train K shots and val K shots (not min(K, 4)); its
// ImageNet draws 2K per class from the train split (first K train, last K val).

import { PyRandom } from './pyrandom.js';
import { roundHalfEven } from '../clip/transforms.js';

export interface LabeledItem {
  readonly label: number;
}

export class FewshotError extends Error {
  override name = 'FewshotError';
}

export interface FewshotOptions {
  /** Dassl's `repeat`: sample with replacement (random.choices) for classes with fewer than K items. Default false. */
  repeat?: boolean;
  /**
   * Error instead of Dassl's behaviour (take all items, or repeat) when a class has fewer than
   * K items; the message names the class and its count. Default false (Dassl-compatible).
   */
  strict?: boolean;
  /** Class names by label, for error messages. */
  classnames?: readonly string[];
  /** Names the list in error messages, e.g. "train split of split_zhou_OxfordPets.json". */
  what?: string;
}

/** Dassl's split_dataset_by_label: label -> item indices, labels in order of first appearance. */
export function groupIndicesByLabel(items: readonly LabeledItem[]): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  items.forEach((it, i) => {
    let g = groups.get(it.label);
    if (!g) groups.set(it.label, (g = []));
    g.push(i);
  });
  return groups;
}

function className(label: number, opts: FewshotOptions): string {
  const name = opts.classnames?.[label];
  return name === undefined ? `label ${label}` : `label ${label} ("${name}")`;
}

/**
 * The item indices Dassl's generate_fewshot_dataset selects from one data source, drawing from
 * `rng` in its current state (and advancing it exactly as Python would). numShots < 1 selects
 * everything, as Dassl does.
 */
export function fewshotIndices(rng: PyRandom, items: readonly LabeledItem[], numShots: number, opts: FewshotOptions = {}): number[] {
  if (!Number.isInteger(numShots)) throw new FewshotError(`number of shots must be an integer, got ${numShots}`);
  if (numShots < 1) return items.map((_, i) => i);
  const groups = groupIndicesByLabel(items);
  if (opts.strict) {
    const short = [...groups].filter(([, idx]) => idx.length < numShots).sort((a, b) => a[0] - b[0]);
    if (short.length) {
      const list = short.map(([y, idx]) => `${className(y, opts)} has ${idx.length}`).join(', ');
      throw new FewshotError(`${opts.what ?? 'dataset'}: ${numShots} shots requested but ${short.length} class(es) have fewer images: ${list}`);
    }
  }
  const out: number[] = [];
  for (const idx of groups.values()) {
    if (idx.length >= numShots) out.push(...rng.sample(idx, numShots));
    else if (opts.repeat) out.push(...rng.choices(idx, numShots));
    else out.push(...idx);
  }
  return out;
}

/** generate_fewshot_dataset for one data source: the selected items, in Dassl's order. */
export function generateFewshotDataset<T extends LabeledItem>(rng: PyRandom, items: readonly T[], numShots: number, opts: FewshotOptions = {}): T[] {
  return fewshotIndices(rng, items, numShots, opts).map((i) => items[i]!);
}

export interface FewshotSplitOptions extends FewshotOptions {
  /** The run's seed (Dassl cfg.SEED / ProLIP --seed); random.seed(seed) happens right before sampling. */
  seed: number | bigint;
  /** K: images per class from the train split. */
  numShots: number;
  /**
   * Images per class from the val split: default min(K, 4) (Dassl/CoOp); ProLIP uses K.
   * null: leave val out (CoOp's ImageNet, whose val is the test split).
   */
  valShots?: number | null;
}

export interface FewshotSplit<T> {
  train: T[];
  val: T[] | null;
  /** Positions in the input train / val lists (what an index file pins). */
  trainIndices: number[];
  valIndices: number[] | null;
  seed: number | bigint;
  numShots: number;
  valShots: number | null;
}

/**
 * The few-shot train (and val) subset of one run, as Dassl builds it: a fresh generator seeded
 * with `seed`, train sampled first, then val with the same generator.
 */
export function fewshotSplit<T extends LabeledItem>(train: readonly T[], val: readonly T[] | null, opts: FewshotSplitOptions): FewshotSplit<T> {
  const rng = new PyRandom(opts.seed);
  const valShots = val === null || opts.valShots === null ? null : opts.valShots ?? Math.min(opts.numShots, 4);
  const trainIndices = fewshotIndices(rng, train, opts.numShots, { ...opts, what: opts.what ? `${opts.what} (train)` : 'train split' });
  const valIndices = valShots === null || val === null ? null : fewshotIndices(rng, val, valShots, { ...opts, what: opts.what ? `${opts.what} (val)` : 'val split' });
  return {
    train: trainIndices.map((i) => train[i]!),
    val: valIndices && val ? valIndices.map((i) => val[i]!) : null,
    trainIndices,
    valIndices,
    seed: opts.seed,
    numShots: opts.numShots,
    valShots,
  };
}

/**
 * ProLIP's ImageNet support set: per label (first appearance) random.sample(items, 2K); the first
 * K are train, the last K val. (ProLIP lists ImageNet with torchvision's ImageFolder: classes
 * by sorted folder name, files sorted.) Errors if a class has fewer than 2K images, as Python does.
 */
export function prolipImageNetFewshot<T extends LabeledItem>(train: readonly T[], seed: number | bigint, numShots: number, opts: FewshotOptions = {}): FewshotSplit<T> {
  const rng = new PyRandom(seed);
  const trainIndices: number[] = [];
  const valIndices: number[] = [];
  for (const [y, idx] of groupIndicesByLabel(train)) {
    if (idx.length < 2 * numShots) {
      throw new FewshotError(`${opts.what ?? 'train split'}: ProLIP's ImageNet protocol needs ${2 * numShots} images per class, ${className(y, opts)} has ${idx.length}`);
    }
    const s = rng.sample(idx, 2 * numShots);
    trainIndices.push(...s.slice(0, numShots));
    valIndices.push(...s.slice(numShots));
  }
  return {
    train: trainIndices.map((i) => train[i]!),
    val: valIndices.map((i) => train[i]!),
    trainIndices,
    valIndices,
    seed,
    numShots,
    valShots: numShots,
  };
}

export type Subsample = 'all' | 'base' | 'new';

export interface SubsampleResult<T> {
  /** The inputs filtered to the selected classes and relabelled 0..m-1 (same order as given). */
  datasets: T[][];
  /** Old label of each new label (new label = position). */
  selected: number[];
}

/**
 * CoOp's subsample_classes: labels of the first dataset sorted, base = the first ceil(n/2),
 * new = the rest; every dataset is filtered to the chosen labels and relabelled by position.
 * 'all' returns the datasets unchanged. Items are copied with the new label.
 */
export function subsampleClasses<T extends LabeledItem>(datasets: readonly (readonly T[])[], subsample: Subsample): SubsampleResult<T> {
  if (subsample !== 'all' && subsample !== 'base' && subsample !== 'new') {
    throw new FewshotError(`subsample must be 'all', 'base' or 'new', got ${JSON.stringify(subsample)}`);
  }
  if (datasets.length === 0) throw new FewshotError('subsampleClasses: no datasets given');
  const labels = [...new Set(datasets[0]!.map((it) => it.label))].sort((a, b) => a - b);
  if (subsample === 'all') return { datasets: datasets.map((d) => [...d]), selected: labels };
  const m = Math.ceil(labels.length / 2);
  const selected = subsample === 'base' ? labels.slice(0, m) : labels.slice(m);
  const relabel = new Map(selected.map((y, i) => [y, i]));
  const out = datasets.map((d) => {
    const kept: T[] = [];
    for (const it of d) {
      const y = relabel.get(it.label);
      if (y !== undefined) kept.push({ ...it, label: y });
    }
    return kept;
  });
  return { datasets: out, selected };
}

/** Class names of the relabelled classes after subsampleClasses (classnames indexed by old label). */
export function subsampleClassnames(classnames: readonly string[], selected: readonly number[]): string[] {
  return selected.map((y) => {
    const c = classnames[y];
    if (c === undefined) throw new FewshotError(`no class name for label ${y}`);
    return c;
  });
}

// ---------------------------------------------------------------------------------------------
// Index files: pin a subset (positions in the train / val lists) so it can be reused or shared.

export const FEWSHOT_INDEX_FORMAT = 'cliptune-fewshot-indices';

export interface FewshotIndexFile {
  format: typeof FEWSHOT_INDEX_FORMAT;
  version: 1;
  dataset?: string;
  seed?: number | string;
  numShots?: number;
  valShots?: number | null;
  train: number[];
  val?: number[] | null;
}

/** Serialises a subset's indices (with optional provenance) as JSON. */
export function formatFewshotIndexFile(split: Pick<FewshotSplit<unknown>, 'trainIndices' | 'valIndices'> & Partial<Pick<FewshotSplit<unknown>, 'seed' | 'numShots' | 'valShots'>>, dataset?: string): string {
  const file: FewshotIndexFile = {
    format: FEWSHOT_INDEX_FORMAT,
    version: 1,
    ...(dataset !== undefined ? { dataset } : {}),
    ...(split.seed !== undefined ? { seed: typeof split.seed === 'bigint' ? split.seed.toString() : split.seed } : {}),
    ...(split.numShots !== undefined ? { numShots: split.numShots } : {}),
    ...(split.valShots !== undefined ? { valShots: split.valShots } : {}),
    train: [...split.trainIndices],
    val: split.valIndices ? [...split.valIndices] : null,
  };
  return JSON.stringify(file) + '\n';
}

export interface ParsedIndexFile {
  train: number[];
  val: number[] | null;
  meta: Omit<FewshotIndexFile, 'format' | 'version' | 'train' | 'val'>;
}

/**
 * Reads an index file: either a bare JSON array (train indices) or the object that
 * formatFewshotIndexFile writes ({"train": [...], "val": [...]}). Indices are validated against
 * the list sizes; `source` names the file in errors.
 */
export function parseFewshotIndexFile(text: string, source: string, sizes: { train: number; val?: number | null }): ParsedIndexFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new FewshotError(`${source}: not valid JSON (${(e as Error).message})`);
  }
  const check = (v: unknown, key: string, size: number | null | undefined): number[] => {
    if (!Array.isArray(v)) throw new FewshotError(`${source}: "${key}" must be an array of indices`);
    if (size === null || size === undefined) throw new FewshotError(`${source}: has "${key}" indices but the dataset has no ${key} split`);
    v.forEach((x, i) => {
      if (!Number.isInteger(x) || (x as number) < 0 || (x as number) >= size) {
        throw new FewshotError(`${source}: ${key}[${i}] = ${JSON.stringify(x)} is not an index into the ${key} list of ${size} items`);
      }
    });
    return v as number[];
  };
  if (Array.isArray(doc)) return { train: check(doc, 'train', sizes.train), val: null, meta: {} };
  if (doc === null || typeof doc !== 'object') throw new FewshotError(`${source}: expected an array of indices or an object with "train"`);
  const o = doc as Record<string, unknown>;
  if (o.format !== undefined && o.format !== FEWSHOT_INDEX_FORMAT) throw new FewshotError(`${source}: unknown format ${JSON.stringify(o.format)}`);
  if (!('train' in o)) throw new FewshotError(`${source}: missing "train" indices`);
  const train = check(o.train, 'train', sizes.train);
  const val = o.val === undefined || o.val === null ? null : check(o.val, 'val', sizes.val);
  const meta: ParsedIndexFile['meta'] = {};
  if (typeof o.dataset === 'string') meta.dataset = o.dataset;
  if (typeof o.seed === 'number' || typeof o.seed === 'string') meta.seed = o.seed;
  if (typeof o.numShots === 'number') meta.numShots = o.numShots;
  if (typeof o.valShots === 'number' || o.valShots === null) meta.valShots = o.valShots as number | null;
  return { train, val, meta };
}

/** Items at `indices` (in that order); errors name `what` and the bad index. */
export function selectByIndices<T>(items: readonly T[], indices: readonly number[], what = 'list'): T[] {
  return indices.map((i, k) => {
    if (!Number.isInteger(i) || i < 0 || i >= items.length) throw new FewshotError(`index ${k} (${i}) is outside the ${what} of ${items.length} items`);
    return items[i]!;
  });
}

// ---------------------------------------------------------------------------------------------
// CoOp's read_and_split_data (used when a dataset has no split_zhou_*.json yet).

export interface ReadAndSplitOptions {
  pTrain?: number;
  pVal?: number;
  ignored?: readonly string[];
  /** Folder name -> class name replacements (EuroSAT's NEW_CNAMES). */
  newCnames?: Readonly<Record<string, string>>;
}

export interface SplitItem {
  /** Path relative to the image directory: "<category>/<file>". */
  impath: string;
  label: number;
  classname: string;
}

/**
 * CoOp's DescribableTextures.read_and_split_data: categories sorted (code-point order), labels
 * by position; per category the file list (in os.listdir order: use readdir order, see
 * listDirPythonOrder in datasets-node.ts) is random.shuffle'd, then n_train = round(n·pTrain),
 * n_val = round(n·pVal) (Python's round: half to even), the rest test. `rng` is advanced as
 * Python's would be; CoOp seeds it with cfg.SEED beforehand.
 */
export function readAndSplitData(rng: PyRandom, listing: ReadonlyMap<string, readonly string[]> | Readonly<Record<string, readonly string[]>>, opts: ReadAndSplitOptions = {}): { train: SplitItem[]; val: SplitItem[]; test: SplitItem[] } {
  const pTrain = opts.pTrain ?? 0.5, pVal = opts.pVal ?? 0.2;
  const map: ReadonlyMap<string, readonly string[]> = listing instanceof Map ? listing : new Map(Object.entries(listing as Record<string, readonly string[]>));
  const categories = [...map.keys()].filter((c) => !(opts.ignored ?? []).includes(c)).sort(compareCodePoints);
  const train: SplitItem[] = [], val: SplitItem[] = [], test: SplitItem[] = [];
  categories.forEach((category, label) => {
    const images = map.get(category)!.map((f) => `${category}/${f}`);
    rng.shuffle(images);
    const n = images.length;
    const nTrain = roundHalfEven(n * pTrain);
    const nVal = roundHalfEven(n * pVal);
    const nTest = n - nTrain - nVal;
    if (!(nTrain > 0 && nVal > 0 && nTest > 0)) {
      throw new FewshotError(`category "${category}" has ${n} images: too few for a ${pTrain}/${pVal}/rest split (CoOp asserts n_train, n_val, n_test > 0)`);
    }
    const classname = opts.newCnames?.[category] ?? category;
    const collate = (ims: string[]) => ims.map((impath) => ({ impath, label, classname }));
    train.push(...collate(images.slice(0, nTrain)));
    val.push(...collate(images.slice(nTrain, nTrain + nVal)));
    test.push(...collate(images.slice(nTrain + nVal)));
  });
  return { train, val, test };
}

/** Python's str ordering (by code point; JS's default sort compares UTF-16 units). */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator](), ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next(), y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const cx = x.value.codePointAt(0)!, cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx - cy;
  }
}
