// Dataset descriptions shared with the PyTorch repos: the CoOp/Dassl split JSON
// (split_zhou_<Name>.json), class-name files, validation with errors that name the file and
// the problem, the per-dataset prompt templates, and class-subset targets (ImageNet-A/R).
// Pure: text in, records out (file access lives in datasets-node.ts).

export interface Datum {
  /** Full path of the image (image directory joined with relpath, as Dassl's read_split does). */
  impath: string;
  /** Path as written in the split file / relative to the image directory. */
  relpath: string;
  label: number;
  /** Class name as stored (CoOp keeps "_" here and replaces it when building prompts). */
  classname: string;
}

export interface SplitData {
  train: Datum[];
  val: Datum[];
  test: Datum[];
}

export interface ClassificationDataset extends SplitData {
  /** Dassl dataset name when known (e.g. "OxfordPets"), else a label for messages. */
  name: string;
  /** Class names by label (from the train split, as Dassl's get_lab2cname). */
  classnames: string[];
  /** Where the data came from (split file or folder), for messages. */
  source: string;
}

export class DatasetError extends Error {
  override name = 'DatasetError';
}

/** dir + "/" + rel (forward slashes; a rel that is already absolute is kept). */
export function joinPath(dir: string, rel: string): string {
  if (rel.startsWith('/') || /^[A-Za-z]:[\\/]/.test(rel)) return rel;
  if (dir === '') return rel;
  return dir.replace(/[\\/]+$/, '') + '/' + rel;
}

// ---------------------------------------------------------------------------------------------
// Split JSON

/**
 * Parses a CoOp/Dassl split file {"train": [[path, label, classname], ...], "val": ..., "test": ...}
 * unchanged (order kept: it decides the few-shot subsets). Labels may be ints or integer
 * strings (Dassl applies int()). Shape errors name the file, split and entry.
 */
export function parseSplitJson(text: string, source: string, imageDir: string): SplitData {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new DatasetError(`${source}: not valid JSON (${(e as Error).message})`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new DatasetError(`${source}: expected an object with "train", "val" and "test" lists`);
  }
  const o = doc as Record<string, unknown>;
  const read = (key: 'train' | 'val' | 'test'): Datum[] => {
    const list = o[key];
    if (list === undefined) throw new DatasetError(`${source}: missing "${key}" list (a split file has "train", "val" and "test")`);
    if (!Array.isArray(list)) throw new DatasetError(`${source}: "${key}" is not a list`);
    return list.map((e, i) => {
      if (!Array.isArray(e) || e.length !== 3) throw new DatasetError(`${source}: ${key}[${i}] must be [image_path, label, classname], got ${short(e)}`);
      const [p, l, c] = e as unknown[];
      if (typeof p !== 'string' || p === '') throw new DatasetError(`${source}: ${key}[${i}]: image path must be a non-empty string, got ${short(p)}`);
      const label = typeof l === 'number' ? l : typeof l === 'string' && /^\s*[+-]?\d+\s*$/.test(l) ? Number(l) : NaN;
      if (!Number.isInteger(label) || label < 0) throw new DatasetError(`${source}: ${key}[${i}] (${p}): label must be a non-negative integer, got ${short(l)}`);
      if (typeof c !== 'string') throw new DatasetError(`${source}: ${key}[${i}] (${p}): class name must be a string, got ${short(c)}`);
      return { impath: joinPath(imageDir, p), relpath: p, label, classname: c };
    });
  };
  return { train: read('train'), val: read('val'), test: read('test') };
}

function short(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? s.slice(0, 77) + '...' : s;
}

export interface ValidateOptions {
  /** Expected number of classes (e.g. 37 for OxfordPets); a mismatch is an error. */
  numClasses?: number;
  /** Splits allowed to be empty (e.g. ImageNet has no val). Default none. */
  allowEmpty?: readonly ('train' | 'val' | 'test')[];
  /** Allow val/test to miss some classes (a deliberately partial split). Default false. */
  allowMissingClasses?: boolean;
}

/**
 * Checks what Dassl silently assumes: train labels are 0..C-1 with no gaps (a class with no
 * train image is an "empty class"), val/test use the same classes, one class name per label
 * across all splits. Returns the class names by label. Errors name `source` and the problem.
 */
export function validateSplits(splits: SplitData, source: string, opts: ValidateOptions = {}): string[] {
  const allowEmpty = new Set(opts.allowEmpty ?? []);
  for (const key of ['train', 'val', 'test'] as const) {
    if (splits[key].length === 0 && !allowEmpty.has(key)) throw new DatasetError(`${source}: the ${key} split is empty`);
  }
  const names = new Map<number, string>();
  const where = new Map<number, string>();
  for (const key of ['train', 'val', 'test'] as const) {
    for (const d of splits[key]) {
      const prev = names.get(d.label);
      if (prev === undefined) {
        names.set(d.label, d.classname);
        where.set(d.label, `${key} (${d.relpath})`);
      } else if (prev !== d.classname) {
        throw new DatasetError(`${source}: label ${d.label} is named "${prev}" in ${where.get(d.label)} but "${d.classname}" in ${key} (${d.relpath})`);
      }
    }
  }
  const trainCounts = countLabels(splits.train);
  const numClasses = trainCounts.size === 0 ? 0 : Math.max(...trainCounts.keys()) + 1;
  const gaps: number[] = [];
  for (let y = 0; y < numClasses; y++) if (!trainCounts.has(y)) gaps.push(y);
  if (gaps.length) {
    throw new DatasetError(`${source}: train labels are not contiguous: ${numClasses} classes implied (max label ${numClasses - 1}) but label(s) ${listShort(gaps)} have no train image (empty classes)`);
  }
  if (opts.numClasses !== undefined && numClasses !== opts.numClasses) {
    throw new DatasetError(`${source}: expected ${opts.numClasses} classes, the train split has ${numClasses}`);
  }
  for (const key of ['val', 'test'] as const) {
    if (splits[key].length === 0) continue;
    const c = countLabels(splits[key]);
    const extra = [...c.keys()].filter((y) => y >= numClasses).sort((a, b) => a - b);
    if (extra.length) throw new DatasetError(`${source}: class-count mismatch: the ${key} split has label(s) ${listShort(extra)} but the train split has only ${numClasses} classes`);
    if (!opts.allowMissingClasses) {
      const missing: number[] = [];
      for (let y = 0; y < numClasses; y++) if (!c.has(y)) missing.push(y);
      if (missing.length) {
        throw new DatasetError(`${source}: class-count mismatch: the ${key} split has ${c.size} classes, train has ${numClasses}; missing label(s) ${listShort(missing.map((y) => `${y} ("${names.get(y)}")`))}`);
      }
    }
  }
  return Array.from({ length: numClasses }, (_, y) => names.get(y)!);
}

function countLabels(items: readonly { label: number }[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const d of items) m.set(d.label, (m.get(d.label) ?? 0) + 1);
  return m;
}

function listShort(xs: readonly (number | string)[], n = 8): string {
  return xs.length <= n ? xs.join(', ') : `${xs.slice(0, n).join(', ')}, ... (${xs.length} in all)`;
}

// ---------------------------------------------------------------------------------------------
// Class-name files

export interface ClassnameList {
  /** Class names in file order (label = position). */
  names: string[];
  /** Folder (e.g. WordNet id) of each class, when the file has them (ImageNet's classnames.txt). */
  folders: string[] | null;
}

/**
 * classnames.txt. Two layouts: "<folder> <class name with spaces>" per line (ImageNet's, read as
 * CoOp's read_classnames: first token = folder, the rest joined by single spaces), or one class
 * name per line. 'auto' picks the folder layout when every line starts with a WordNet id
 * (n + 8 digits) followed by a name. Blank lines are ignored.
 */
export function parseClassnamesFile(text: string, source: string, layout: 'auto' | 'folder-name' | 'lines' = 'auto'): ClassnameList {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length === 0) throw new DatasetError(`${source}: no class names`);
  const wnid = lines.every((l) => /^n\d{8}\s+\S/.test(l));
  const useFolders = layout === 'folder-name' || (layout === 'auto' && wnid);
  if (!useFolders) return { names: lines, folders: null };
  const names: string[] = [], folders: string[] = [];
  const seen = new Map<string, number>();
  lines.forEach((l, i) => {
    const parts = l.split(' ');
    const folder = parts[0]!;
    const name = parts.slice(1).join(' ');
    if (name === '') throw new DatasetError(`${source}: line ${i + 1} ("${l}") has a folder but no class name`);
    if (seen.has(folder)) throw new DatasetError(`${source}: folder ${folder} is listed twice (lines ${seen.get(folder)! + 1} and ${i + 1})`);
    seen.set(folder, i);
    folders.push(folder);
    names.push(name);
  });
  return { names, folders };
}

/**
 * OxfordFlowers' cat_to_name.json ({"1": "pink primrose", ...}, 1-based labels) -> names by
 * 0-based label. Keys must cover 1..N.
 */
export function parseCatToName(text: string, source: string): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new DatasetError(`${source}: not valid JSON (${(e as Error).message})`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new DatasetError(`${source}: expected an object {"1": "class name", ...}`);
  const entries = Object.entries(doc as Record<string, unknown>);
  const out: string[] = new Array<string>(entries.length);
  for (const [k, v] of entries) {
    const y = Number(k);
    if (!/^\d+$/.test(k) || y < 1 || y > entries.length) throw new DatasetError(`${source}: key "${k}" is not a label in 1..${entries.length}`);
    if (typeof v !== 'string') throw new DatasetError(`${source}: name of label ${k} is not a string`);
    out[y - 1] = v;
  }
  return out;
}

/**
 * FGVCAircraft as CoOp reads it: variants.txt (one class per line, label = position) and
 * images_variant_{split}.txt lines "<image id> <variant name with spaces>" -> images/<id>.jpg.
 */
export function parseFgvcAircraftSplit(variantsText: string, splitText: string, source: string, imageDir: string): Datum[] {
  const classnames = variantsText.split(/\r?\n/).map((l) => l.trim());
  while (classnames.length && classnames[classnames.length - 1] === '') classnames.pop();
  const lab = new Map(classnames.map((c, i) => [c, i]));
  const out: Datum[] = [];
  splitText.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const parts = line.split(' ');
    const rel = `${parts[0]}.jpg`;
    const classname = parts.slice(1).join(' ');
    const label = lab.get(classname);
    if (label === undefined) throw new DatasetError(`${source}: line ${i + 1}: variant "${classname}" is not in variants.txt`);
    out.push({ impath: joinPath(imageDir, rel), relpath: rel, label, classname });
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Prompts

/** CoOp's CUSTOM_TEMPLATES (zsclip.py): the single zero-shot template per Dassl dataset name. */
export const DATASET_TEMPLATES: Readonly<Record<string, string>> = Object.freeze({
  OxfordPets: 'a photo of a {}, a type of pet.',
  OxfordFlowers: 'a photo of a {}, a type of flower.',
  FGVCAircraft: 'a photo of a {}, a type of aircraft.',
  DescribableTextures: '{} texture.',
  EuroSAT: 'a centered satellite photo of {}.',
  StanfordCars: 'a photo of a {}.',
  Food101: 'a photo of {}, a type of food.',
  SUN397: 'a photo of a {}.',
  Caltech101: 'a photo of a {}.',
  UCF101: 'a photo of a person doing {}.',
  ImageNet: 'a photo of a {}.',
  ImageNetSketch: 'a photo of a {}.',
  ImageNetV2: 'a photo of a {}.',
  ImageNetA: 'a photo of a {}.',
  ImageNetR: 'a photo of a {}.',
});

export const DEFAULT_TEMPLATE = 'a photo of a {}.';

/** The dataset's single template; unknown names get "a photo of a {}.". */
export function templateFor(datasetName: string): string {
  return DATASET_TEMPLATES[datasetName] ?? DEFAULT_TEMPLATE;
}

/** CoOp's IMAGENET_TEMPLATES_SELECT: the 7-template ImageNet ensemble (ZeroshotCLIP2, ProLIP). */
export const IMAGENET_TEMPLATES_SELECT: readonly string[] = Object.freeze([
  'itap of a {}.',
  'a bad photo of the {}.',
  'a origami {}.',
  'a photo of the large {}.',
  'a {} in a video game.',
  'art of the {}.',
  'a photo of the small {}.',
]);

/**
 * Templates for zero-shot ensembling as CoOp's ZeroshotCLIP2 uses them: the 7 SELECT templates,
 * plus the dataset's own template for every dataset other than ImageNet. (ProLIP: the 7 for
 * ImageNet, the single template elsewhere; use templateFor.)
 */
export function ensembleTemplatesFor(datasetName: string): string[] {
  return datasetName === 'ImageNet' ? [...IMAGENET_TEMPLATES_SELECT] : [...IMAGENET_TEMPLATES_SELECT, templateFor(datasetName)];
}

/** Class name as it goes into a prompt: "_" -> " " (CoOp). */
export function promptClassname(classname: string): string {
  return classname.replace(/_/g, ' ');
}

/** template.format(classname with "_" -> " "), for CoOp's single-placeholder templates. */
export function formatPrompt(template: string, classname: string): string {
  const at = template.indexOf('{}');
  if (at < 0) throw new DatasetError(`template ${JSON.stringify(template)} has no {} placeholder`);
  return template.slice(0, at) + promptClassname(classname) + template.slice(at + 2);
}

/** One prompt per class for `template`. */
export function promptsFor(classnames: readonly string[], template: string): string[] {
  return classnames.map((c) => formatPrompt(template, c));
}

// ---------------------------------------------------------------------------------------------
// Class subsets (ImageNet-A / -R evaluation: the classifier restricted to their 200 classes)

export interface ClassSubset {
  /** Class names of the subset, by new label. */
  classnames: string[];
  /** Label in the full label space of each new label (new label = position). */
  fullLabels: number[];
}

/**
 * Resolves a subset given as class names, folders or full-space indices to full-space labels
 * (in the order given). `folders` (e.g. ImageNet WordNet ids) lets ImageNet-A/R folder names
 * select classes. Unknown or repeated entries are errors.
 */
export function resolveClassSubset(full: { names: readonly string[]; folders?: readonly string[] | null }, keep: readonly (string | number)[], source = 'class subset'): ClassSubset {
  const byName = new Map<string, number[]>();
  full.names.forEach((n, i) => byName.set(n, [...(byName.get(n) ?? []), i]));
  const byFolder = new Map<string, number>((full.folders ?? []).map((f, i) => [f, i]));
  const fullLabels: number[] = [];
  const seen = new Set<number>();
  keep.forEach((k, i) => {
    let y: number;
    if (typeof k === 'number') {
      if (!Number.isInteger(k) || k < 0 || k >= full.names.length) throw new DatasetError(`${source}: entry ${i} (${k}) is not a class index in 0..${full.names.length - 1}`);
      y = k;
    } else if (byFolder.has(k)) {
      y = byFolder.get(k)!;
    } else {
      const hits = byName.get(k);
      if (!hits) throw new DatasetError(`${source}: entry ${i} ("${k}") is neither a class name nor a folder of the full label space`);
      if (hits.length > 1) throw new DatasetError(`${source}: class name "${k}" is ambiguous (labels ${hits.join(', ')}); give indices or folders`);
      y = hits[0]!;
    }
    if (seen.has(y)) throw new DatasetError(`${source}: class ${y} ("${full.names[y]}") is listed twice`);
    seen.add(y);
    fullLabels.push(y);
  });
  return { classnames: fullLabels.map((y) => full.names[y]!), fullLabels };
}

/**
 * Restricts labelled items (in the full label space) to a class subset and relabels them by
 * subset position; items of other classes are dropped. Returns the items and the mapping.
 */
export function restrictToClasses<T extends { label: number }>(items: readonly T[], subset: ClassSubset): { items: T[]; subset: ClassSubset; dropped: number } {
  const relabel = new Map(subset.fullLabels.map((y, i) => [y, i]));
  const out: T[] = [];
  let dropped = 0;
  for (const it of items) {
    const y = relabel.get(it.label);
    if (y === undefined) dropped++;
    else out.push({ ...it, label: y });
  }
  return { items: out, subset, dropped };
}

/**
 * Maps logits over the full label space to the subset (column gather): out[i, j] =
 * logits[i, fullLabels[j]]. For models whose head covers all classes (ImageNet-A/R evaluation).
 */
export function gatherSubsetLogits(logits: Float32Array, rows: number, fullClasses: number, subset: ClassSubset): Float32Array {
  if (logits.length !== rows * fullClasses) throw new DatasetError(`gatherSubsetLogits: expected ${rows}x${fullClasses} logits, got ${logits.length} values`);
  const m = subset.fullLabels.length;
  const out = new Float32Array(rows * m);
  for (let i = 0; i < rows; i++) for (let j = 0; j < m; j++) out[i * m + j] = logits[i * fullClasses + subset.fullLabels[j]!]!;
  return out;
}
