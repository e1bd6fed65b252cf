// Writes a world classification dataset in the layouts cliptune's training workflow reads:
//
//   DIR/images/<class_folder>/<nnnn>.png      class_folder = name with underscores ("red_circle")
//   DIR/split_zhou_World.json                 {"train": [[path, label, classname], ...], "val": [...], "test": [...]}
//                                             paths relative to DIR/images, labels 0..n-1 in selection order
//   DIR/classnames.txt                        one class name per line, in label order
//   DIR/world.json                            how it was made: generator version, seed, domain, size,
//                                             classes (label, name, world index, base/novel), counts,
//                                             and a SHA-256 of all pixels (a zlib-independent fingerprint)
//
// Within a class folder the files are numbered train first, then val, then test. Nothing in the
// output depends on time or machine: the same options give the same bytes (for a given zlib).
// The directory appears atomically: everything is written to a sibling temporary directory that is
// renamed into place at the end; a non-empty DIR is refused unless `force`.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DOMAINS, isDomain, type Domain } from './attributes.js';
import { WORLD_CLASS_INFO, parseClassSelection, type WorldClass } from './classes.js';
import { DEFAULT_IMAGE_SIZE, SPLITS, WORLD_VERSION, classImage, type Split } from './generate.js';
import { checkSeed } from './keyed-rng.js';
import { encodePng } from './png-node.js';

export const SPLIT_FILE = 'split_zhou_World.json';
export const CLASSNAMES_FILE = 'classnames.txt';
export const MANIFEST_FILE = 'world.json';
export const IMAGES_DIR = 'images';

export interface SplitCounts {
  train: number;
  val: number;
  test: number;
}

/** Images per class and split when none are given: 16-shot training fits twice, 32 test images per class. */
export const DEFAULT_COUNTS: Readonly<SplitCounts> = { train: 32, val: 8, test: 32 };

/** N images per class split as CoOp's read_and_split_data does: 50% train, 20% val, the rest test. */
export function splitPerClass(n: number): SplitCounts {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`images per class must be a positive integer, got ${n}`);
  const train = Math.round(n * 0.5);
  const val = Math.round(n * 0.2);
  return { train, val, test: n - train - val };
}

export class WorldWriteError extends Error {}

export interface WriteWorldOptions {
  out: string;
  /** 'all' (default), 'base', 'novel', or names / labels / ranges (see parseClassSelection). */
  classes?: string | readonly (string | number)[];
  domain?: Domain;
  /** Images per class and split (default DEFAULT_COUNTS; missing ones take their default). */
  counts?: Partial<SplitCounts>;
  size?: number;
  seed?: number;
  /** Replace a non-empty output directory. */
  force?: boolean;
  /** Called after each image with (images done, images in all). */
  onProgress?: (done: number, total: number) => void;
}

export interface WriteWorldResult {
  dir: string;
  classes: string[];
  domain: Domain;
  size: number;
  seed: number;
  perClass: SplitCounts;
  images: number;
  bytes: number;
  pixelsSha256: string;
  seconds: number;
}

export interface WorldManifest {
  generator: 'cliptune-world';
  version: number;
  seed: number;
  domain: Domain;
  size: number;
  classes: { label: number; name: string; folder: string; worldIndex: number; half: 'base' | 'novel' }[];
  perClass: SplitCounts;
  totals: SplitCounts & { images: number };
  files: { split: string; classnames: string; images: string };
  pixelsSha256: string;
}

function isNonEmptyDir(path: string): boolean {
  return readdirSync(path).length > 0;
}

function checkTarget(out: string, force: boolean): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new WorldWriteError(`${out} exists and is not a directory`);
  if (!force && isNonEmptyDir(out)) throw new WorldWriteError(`${out} is not empty; pass --force (force: true) to replace it`);
}

function checkCount(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0 || v > 1_000_000) throw new RangeError(`${name} images per class must be an integer in 0..1000000, got ${v}`);
}

/** The split JSON text: one entry per line, deterministic. */
function splitJson(entries: Record<Split, [string, number, string][]>): string {
  const parts = SPLITS.map((s) => {
    const rows = entries[s].map((e) => `    ${JSON.stringify(e)}`);
    return `  ${JSON.stringify(s)}: [${rows.length ? `\n${rows.join(',\n')}\n  ` : ''}]`;
  });
  return `{\n${parts.join(',\n')}\n}\n`;
}

export async function writeWorldDataset(opts: WriteWorldOptions): Promise<WriteWorldResult> {
  const t0 = performance.now();
  const out = resolve(opts.out);
  const domain = opts.domain ?? 'plain';
  if (!isDomain(domain)) throw new RangeError(`unknown domain ${JSON.stringify(domain)}; valid: ${DOMAINS.join(', ')}`);
  const size = opts.size ?? DEFAULT_IMAGE_SIZE;
  if (!Number.isInteger(size) || size < 8 || size > 1024) throw new RangeError(`image size must be an integer in 8..1024, got ${size}`);
  const seed = opts.seed ?? 0;
  checkSeed(seed);
  const perClass: SplitCounts = { ...DEFAULT_COUNTS, ...Object.fromEntries(Object.entries(opts.counts ?? {}).filter(([, v]) => v !== undefined)) };
  for (const s of SPLITS) checkCount(s, perClass[s]);
  const perClassTotal = perClass.train + perClass.val + perClass.test;
  if (perClassTotal === 0) throw new RangeError('nothing to write: every split count is 0');
  const selected: WorldClass[] = parseClassSelection(opts.classes ?? 'all').map((i) => WORLD_CLASS_INFO[i]!);
  const force = opts.force ?? false;
  checkTarget(out, force);

  const parent = dirname(out);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(out)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(join(tmp, IMAGES_DIR), { recursive: true });
  const total = selected.length * perClassTotal;
  const digits = Math.max(4, String(perClassTotal - 1).length);
  const pixels = createHash('sha256');
  const entries: Record<Split, [string, number, string][]> = { train: [], val: [], test: [] };
  let bytes = 0;
  let done = 0;
  try {
    for (const [label, cls] of selected.entries()) {
      mkdirSync(join(tmp, IMAGES_DIR, cls.folder));
      let fileNo = 0;
      for (const split of SPLITS) {
        for (let index = 0; index < perClass[split]; index++) {
          const { image } = classImage({ seed, classIndex: cls.index, split, index, domain, size });
          pixels.update(image.data);
          const rel = `${cls.folder}/${String(fileNo++).padStart(digits, '0')}.png`;
          const png = encodePng(image);
          writeFileSync(join(tmp, IMAGES_DIR, rel), png);
          bytes += png.length;
          entries[split].push([rel, label, cls.name]);
          done++;
          opts.onProgress?.(done, total);
        }
      }
      // Let other work (timers, output) run between classes of long jobs.
      await new Promise<void>((r) => setImmediate(r));
    }
    const pixelsSha256 = pixels.digest('hex');
    const manifest: WorldManifest = {
      generator: 'cliptune-world',
      version: WORLD_VERSION,
      seed,
      domain,
      size,
      classes: selected.map((c, label) => ({ label, name: c.name, folder: c.folder, worldIndex: c.index, half: c.half })),
      perClass,
      totals: {
        train: perClass.train * selected.length,
        val: perClass.val * selected.length,
        test: perClass.test * selected.length,
        images: total,
      },
      files: { split: SPLIT_FILE, classnames: CLASSNAMES_FILE, images: IMAGES_DIR },
      pixelsSha256,
    };
    const texts: [string, string][] = [
      [SPLIT_FILE, splitJson(entries)],
      [CLASSNAMES_FILE, selected.map((c) => c.name).join('\n') + '\n'],
      [MANIFEST_FILE, JSON.stringify(manifest, null, 2) + '\n'],
    ];
    for (const [name, text] of texts) {
      writeFileSync(join(tmp, name), text);
      bytes += Buffer.byteLength(text);
    }

    // Move into place. The target is checked again: it may have appeared while we worked.
    checkTarget(out, force);
    if (existsSync(out)) {
      if (!isNonEmptyDir(out)) rmdirSync(out);
      else {
        const trash = join(parent, `.${basename(out)}.old-${process.pid}-${randomBytes(4).toString('hex')}`);
        renameSync(out, trash);
        renameSync(tmp, out);
        rmSync(trash, { recursive: true, force: true });
      }
    }
    if (existsSync(tmp)) renameSync(tmp, out);
    return {
      dir: out, classes: selected.map((c) => c.name), domain, size, seed, perClass, images: total, bytes, pixelsSha256,
      seconds: (performance.now() - t0) / 1000,
    };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
