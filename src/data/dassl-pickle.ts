// Dassl/CoOp few-shot caches: <dataset>/split_fewshot/shot_{K}-seed_{S}.pkl, a pickled
// {"train": [Datum, ...], "val": [Datum, ...]} (ImageNet: train only). Once such a file exists
// the PyTorch repos load it instead of sampling, so it is the ground truth of a user's subset.
// Read with the project's code-free unpickler; the only global allowed is Dassl's Datum class,
// whose instances become plain records. Runtime-agnostic (bytes in, records out).

import { PyCallable, PyDict, PyObject, unpickle } from '../io/pickle.js';

export interface PickledDatum {
  /** The absolute path on the machine that wrote the cache. */
  impath: string;
  label: number;
  domain: number;
  classname: string;
}

export interface DasslFewshotCache {
  train: PickledDatum[];
  val: PickledDatum[] | null;
  /** Present in ImageNet's preprocessed.pkl ({"train", "test"}), which has the same shape. */
  test: PickledDatum[] | null;
}

export class DasslPickleError extends Error {
  override name = 'DasslPickleError';
}

const DATUM_MODULES = new Set(['dassl.data.datasets.base_dataset', 'dassl.data.datasets']);

/**
 * Parses a split_fewshot/*.pkl file's bytes (or CoOp ImageNet's preprocessed.pkl, which holds
 * the full train/test lists in the order CoOp listed them); `name` names it in errors.
 */
export function parseDasslFewshotPickle(bytes: Uint8Array, name: string): DasslFewshotCache {
  const root = unpickle(bytes, {
    name,
    resolveGlobal(module, qualname) {
      if (qualname === 'Datum' && DATUM_MODULES.has(module)) return new PyCallable(`${module}.Datum`, (args) => new PyObject(`${module}.Datum`, args));
      throw new DasslPickleError(`${name}: refers to ${module}.${qualname}; only Dassl's Datum is expected in a few-shot cache`);
    },
  });
  if (!(root instanceof PyDict)) throw new DasslPickleError(`${name}: expected a dict with "train" (and "val"), got ${describe(root)}`);
  const list = (key: string, required: boolean): PickledDatum[] | null => {
    if (!root.map.has(key)) {
      if (required) throw new DasslPickleError(`${name}: no "${key}" entry`);
      return null;
    }
    const v = root.map.get(key);
    if (!Array.isArray(v)) throw new DasslPickleError(`${name}: "${key}" is ${describe(v)}, expected a list of Datum`);
    return v.map((d, i) => toDatum(d, `${name}: ${key}[${i}]`));
  };
  return { train: list('train', true)!, val: list('val', false), test: list('test', false) };
}

function toDatum(v: unknown, where: string): PickledDatum {
  if (!(v instanceof PyObject) || !v.cls.endsWith('.Datum')) throw new DasslPickleError(`${where} is ${describe(v)}, expected a Datum`);
  const st = v.state;
  if (!(st instanceof PyDict)) throw new DasslPickleError(`${where}: Datum without its attribute dict`);
  const get = (k: string) => st.map.get(k);
  const impath = get('_impath'), label = get('_label'), domain = get('_domain') ?? 0, classname = get('_classname') ?? '';
  if (typeof impath !== 'string') throw new DasslPickleError(`${where}: _impath is not a string`);
  if (typeof label !== 'number' || !Number.isInteger(label)) throw new DasslPickleError(`${where}: _label is not an int`);
  if (typeof domain !== 'number') throw new DasslPickleError(`${where}: _domain is not an int`);
  if (typeof classname !== 'string') throw new DasslPickleError(`${where}: _classname is not a string`);
  return { impath, label, domain, classname };
}

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof PyObject) return `an instance of ${v.cls}`;
  if (v instanceof PyDict) return 'a dict';
  return typeof v;
}

/**
 * Positions of cached items in our split list. The cache holds absolute paths from the machine
 * that wrote it; items are matched by the longest trailing part of that path that equals an
 * item's path relative to the image directory (so a moved data root still matches). Labels
 * must agree. Errors list the first unmatched paths.
 */
export function matchCachedItems(
  cached: readonly PickledDatum[],
  items: readonly { relpath: string; label: number }[],
  what = 'cache',
): number[] {
  const byRel = new Map<string, number>();
  items.forEach((it, i) => {
    const key = normalise(it.relpath);
    if (!byRel.has(key)) byRel.set(key, i);
  });
  const out: number[] = [];
  const missing: string[] = [];
  for (const d of cached) {
    const parts = normalise(d.impath).split('/');
    let found = -1;
    for (let s = 0; s < parts.length && found < 0; s++) {
      const hit = byRel.get(parts.slice(s).join('/'));
      if (hit !== undefined) found = hit;
    }
    if (found < 0) {
      missing.push(d.impath);
      continue;
    }
    if (items[found]!.label !== d.label) {
      throw new DasslPickleError(`${what}: ${d.impath} has label ${d.label} in the cache but ${items[found]!.label} in the split`);
    }
    out.push(found);
  }
  if (missing.length) {
    throw new DasslPickleError(`${what}: ${missing.length} of ${cached.length} cached images are not in the split, e.g. ${missing.slice(0, 3).join(', ')}`);
  }
  return out;
}

function normalise(p: string): string {
  return p.replace(/\\/g, '/').replace(/^\.\//, '');
}
