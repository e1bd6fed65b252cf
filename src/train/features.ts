// The feature cache: frozen-encoder features on disk in safetensors, so methods that train only a
// head or a projector (ProLIP, linear probe) train in seconds and evaluation reuses test features.
//
// A cache entry is keyed by the base checkpoint's sha256, the image list (paths, labels, file sizes
// and mtimes), the input resolution, and the view: CLIP's test transform, or augmented view v of
// seed s (random resized crop + flip from a generator keyed by (s, v), so a view is the same in
// every run and views are independent of each other). Class text features are keyed by the
// checkpoint, the class names and the templates. Each entry is one file whose metadata repeats its
// full key, checked on read (a hash collision or a stale file is recomputed, never used).
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { tensor, tidy } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import type { ClipModel } from '../clip/model.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import { Rng } from '../clip/rng.js';
import type { RgbImage } from '../clip/rgb-image.js';
import { decodeImageFile } from '../clip/image-decode-node.js';
import { ImageLoader } from '../data/loader-node.js';
import { openSafetensors, writeSafetensors } from '../io/safetensors-node.js';
import { zeroShotWeights } from '../adapt/zeroshot.js';
import type { FeatureSource, ImageItem, ViewSpec } from '../adapt/method.js';
import { Progress } from '../cli/progress.js';

export const FEATURE_FORMAT = 'cliptune-features/1';

/** $CLIPTUNE_CACHE, else $XDG_CACHE_HOME/cliptune, else ~/.cache/cliptune; features/ below it. */
export function defaultCacheDir(): string {
  const base = process.env.CLIPTUNE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'cliptune');
  return join(base, 'features');
}

/** The generator of augmented view `view` of run seed `seed` (the same for every method and run). */
export function viewRng(seed: number, view: number): Rng {
  return new Rng(`cliptune-view\u0001${seed}\u0001${view}`);
}

/** sha256 of the image list: path, label, file size and mtime of each (a changed file changes the key). */
export async function itemsDigest(items: readonly ImageItem[]): Promise<string> {
  const h = createHash('sha256');
  const stats = await mapLimit(items, 64, async (it) => {
    try {
      const s = await stat(it.impath);
      return `${s.size}\t${Math.round(s.mtimeMs)}`;
    } catch {
      return 'missing';
    }
  });
  items.forEach((it, i) => h.update(`${it.impath}\t${it.label}\t${stats[i]}\n`));
  return h.digest('hex');
}

async function mapLimit<T, R>(xs: readonly T[], limit: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(xs.length);
  let next = 0;
  const worker = async () => {
    while (next < xs.length) {
      const i = next++;
      out[i] = await f(xs[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, Math.max(1, xs.length)) }, worker));
  return out;
}

export interface CachedArray {
  shape: number[];
  data: Float32Array;
}

/** Float32 arrays on disk under `root`, one safetensors file per key. root null: nothing is stored. */
export class FeatureCache {
  hits = 0;
  misses = 0;
  constructor(readonly root: string | null) {}

  private fileFor(key: Record<string, unknown>): { path: string; text: string } | null {
    if (!this.root) return null;
    const text = JSON.stringify(key);
    const hex = createHash('sha256').update(text).digest('hex');
    const weights = typeof key.weights === 'string' ? key.weights.slice(0, 16) : 'misc';
    return { path: join(this.root, weights, `${String(key.kind)}-${hex.slice(0, 32)}.safetensors`), text };
  }

  async get(key: Record<string, unknown>): Promise<CachedArray | null> {
    const f = this.fileFor(key);
    if (!f) return null;
    let file;
    try {
      file = await openSafetensors(f.path);
    } catch {
      this.misses++;
      return null;
    }
    try {
      if (file.metadata.format !== FEATURE_FORMAT || file.metadata.key !== f.text || !file.names.includes('features')) {
        this.misses++;
        return null;
      }
      const shape = [...file.info('features').shape];
      const data = await file.getF32('features');
      this.hits++;
      return { shape, data };
    } catch {
      this.misses++;
      return null;
    } finally {
      file.close();
    }
  }

  async put(key: Record<string, unknown>, value: CachedArray): Promise<void> {
    const f = this.fileFor(key);
    if (!f) return;
    mkdirSync(join(f.path, '..'), { recursive: true });
    await writeSafetensors(f.path, { features: { dtype: 'F32', shape: value.shape, data: value.data } }, { format: FEATURE_FORMAT, key: f.text });
  }
}

/** Decodes each image once and keeps the pixels (up to a byte budget) for later views and epochs. */
export class DecodeMemo {
  private readonly images = new Map<string, RgbImage>();
  private bytes = 0;
  constructor(private readonly budget = 512 * 2 ** 20) {}
  readonly decode = async (path: string): Promise<RgbImage> => {
    const hit = this.images.get(path);
    if (hit) return hit;
    const img = await decodeImageFile(path);
    if (this.bytes + img.data.length <= this.budget) {
      this.images.set(path, img);
      this.bytes += img.data.length;
    }
    return img;
  };
}

export interface ClipFeaturesOptions {
  cache: FeatureCache;
  /** sha256 of the base checkpoint file (part of every key). */
  weightsHash: string;
  /** Images per encoder call. Default 64. */
  batch?: number;
  /** Decoded images kept in memory across views (bytes). Default 512 MiB. */
  decodeBudget?: number;
  /** Progress lines on stderr for extractions of at least this many images (default 256; Infinity: never). */
  progressFrom?: number;
  log?: (m: string) => void;
}

/** FeatureSource over a CLIP model, a tokenizer and the on-disk cache. */
export class ClipFeatures implements FeatureSource {
  private readonly digests = new WeakMap<readonly ImageItem[], Promise<string>>();

  private readonly decode: (path: string) => Promise<RgbImage>;

  constructor(
    readonly model: ClipModel,
    readonly tokenizer: ClipTokenizer,
    readonly opts: ClipFeaturesOptions,
  ) {
    this.decode = new DecodeMemo(opts.decodeBudget).decode;
  }

  private digest(items: readonly ImageItem[]): Promise<string> {
    let d = this.digests.get(items);
    if (!d) this.digests.set(items, (d = itemsDigest(items)));
    return d;
  }

  async pooled(items: readonly ImageItem[], view: ViewSpec): Promise<Float32Array> {
    const res = this.model.config.image.resolution;
    const width = this.model.config.image.width;
    const key = { kind: 'pooled', weights: this.opts.weightsHash, items: await this.digest(items), count: items.length, resolution: res, view };
    const hit = await this.opts.cache.get(key);
    if (hit && hit.data.length === items.length * width) return hit.data;
    const data = await this.extract(items, view);
    await this.opts.cache.put(key, { shape: [items.length, width], data });
    return data;
  }

  private async extract(items: readonly ImageItem[], view: ViewSpec): Promise<Float32Array> {
    const model = this.model;
    const res = model.config.image.resolution;
    const width = model.config.image.width;
    const batch = this.opts.batch ?? 64;
    const loader = new ImageLoader(items, {
      batchSize: batch,
      mode: view.mode,
      size: res,
      shuffle: false,
      ...(view.mode === 'train' ? { rng: viewRng(view.seed, view.view), augment: { scale: view.scale, flipP: view.flipP } } : {}),
      decode: this.decode,
    });
    const out = new Float32Array(items.length * width);
    const what = view.mode === 'test' ? 'features (test transform)' : `features (view ${view.view})`;
    const progress = items.length >= (this.opts.progressFrom ?? 256) ? new Progress(what, items.length, 'images') : null;
    for await (const b of loader) {
      const t = noGrad(() => tidy(() => model.encodeImage(tensor(b.images, [b.count, 3, res, res], 'f32', model.gpu)).pooled));
      const rows = (await t.read()) as Float32Array;
      t.dispose();
      b.indices.forEach((idx, k) => out.set(rows.subarray(k * width, (k + 1) * width), idx * width));
      progress?.tick(b.count);
    }
    progress?.done();
    return out;
  }

  async textWeights(classnames: readonly string[], templates: readonly string[]): Promise<Float32Array> {
    const key = { kind: 'text', weights: this.opts.weightsHash, classnames: [...classnames], templates: [...templates] };
    const e = this.model.config.embedDim;
    const hit = await this.opts.cache.get(key);
    if (hit && hit.data.length === classnames.length * e) return hit.data;
    const t = zeroShotWeights(this.model, this.tokenizer, classnames, templates);
    const data = (await t.read()) as Float32Array;
    t.dispose();
    await this.opts.cache.put(key, { shape: [classnames.length, e], data });
    return data;
  }
}
