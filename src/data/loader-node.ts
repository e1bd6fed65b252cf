// Streaming image loader (Node): batches of decoded + preprocessed images with a bounded
// prefetch window. Decoding is asynchronous (sharp/libvips threads) with bounded concurrency;
// the CLIP test transform or the seeded training augmentation then run on the main thread.
//
// Determinism: the visiting order (shuffle) and each item's augmentation generator (a fork of
// the loader's Rng, taken in visiting order when the item is scheduled) do not depend on the
// order in which decodes finish, so a seeded pass is reproducible. This is our Rng, not torch's:
// augmented views are reproducible within cliptune, not bit-identical to a PyTorch run.
//
// Bad images: a missing, unreadable or corrupt file is reported with its path. With
// onError 'fail' (default) the pass stops with an ImageLoadError; with 'skip' the image is left
// out (batches stay full, the last one may be short), logged when it happens, counted, and
// summarised at the end of the pass and in report(). Never silent.

import { ImageDecodeError } from '../clip/image-decode.js';
import { decodeImageFile } from '../clip/image-decode-node.js';
import { preprocessForClip } from '../clip/preprocess.js';
import { type AugmentOptions, type AugmentParams, augmentForClip } from '../clip/augment.js';
import type { RgbImage } from '../clip/rgb-image.js';
import type { Rng } from '../clip/rng.js';

export interface LoaderItem {
  impath: string;
  label: number;
}

export type SkipKind = 'missing' | 'unreadable' | 'corrupt';

export interface SkippedImage {
  /** Position in the loader's item list. */
  index: number;
  path: string;
  kind: SkipKind;
  message: string;
  /** Pass (0-based) in which it was skipped. */
  pass: number;
}

export class ImageLoadError extends Error {
  override name = 'ImageLoadError';
  constructor(readonly path: string, readonly kind: SkipKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface LoaderOptions {
  batchSize: number;
  /** 'test': resize + centre crop; 'train': random resized crop + flip from `rng`. */
  mode: 'test' | 'train';
  /** Output side. Default 224. */
  size?: number;
  /** Required for train mode and for shuffling. */
  rng?: Rng;
  /** Train augmentation options (scale range etc.; see clip/augment.ts). */
  augment?: AugmentOptions;
  /** Visit items in a random order each pass. Default: true in train mode, false in test mode. */
  shuffle?: boolean;
  /** Drop a last batch smaller than batchSize. Default false. */
  dropLast?: boolean;
  /** Batches prepared ahead of the consumer (bounded queue). Default 2. */
  prefetch?: number;
  /** Decodes in flight at once. Default 4. */
  concurrency?: number;
  /** What to do with a missing or corrupt image. Default 'fail'. */
  onError?: 'fail' | 'skip';
  /** Receives skip notices and end-of-pass summaries. Default console.warn. */
  log?: (message: string) => void;
  /** Image decoder (default: decodeImageFile, sharp). Injectable for tests. */
  decode?: (path: string) => Promise<RgbImage>;
}

export interface Batch {
  /** [count, 3, size, size] float32, CHW per image. */
  images: Float32Array;
  labels: Int32Array;
  /** Positions of the images in the loader's item list. */
  indices: Int32Array;
  paths: string[];
  count: number;
  /** Train mode: the augmentation parameters of each image (replayable with applyAugment). */
  augment?: AugmentParams[];
}

export interface LoaderReport {
  passes: number;
  /** Images delivered in batches, all passes. */
  delivered: number;
  skipped: SkippedImage[];
  /** Largest number of decodes in flight observed. */
  maxInFlight: number;
  /** Largest number of prepared-but-unconsumed images observed (bounded by prefetch·batchSize). */
  maxBuffered: number;
}

interface Loaded {
  ok: boolean;
  tensor?: Float32Array;
  params?: AugmentParams;
  error?: ImageLoadError;
}

export class ImageLoader implements AsyncIterable<Batch> {
  private readonly items: readonly LoaderItem[];
  private readonly opts: Required<Pick<LoaderOptions, 'batchSize' | 'mode' | 'size' | 'shuffle' | 'dropLast' | 'prefetch' | 'concurrency' | 'onError'>> & LoaderOptions;
  private readonly skippedList: SkippedImage[] = [];
  private passes = 0;
  private delivered = 0;
  private inFlight = 0;
  private maxInFlight = 0;
  private maxBuffered = 0;

  constructor(items: readonly LoaderItem[], opts: LoaderOptions) {
    const o = {
      ...opts,
      size: opts.size ?? 224,
      shuffle: opts.shuffle ?? opts.mode === 'train',
      dropLast: opts.dropLast ?? false,
      prefetch: opts.prefetch ?? 2,
      concurrency: opts.concurrency ?? 4,
      onError: opts.onError ?? 'fail',
    };
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${o.batchSize}`);
    if (!Number.isInteger(o.prefetch) || o.prefetch < 1) throw new RangeError(`prefetch must be a positive integer (batches ahead), got ${o.prefetch}`);
    if (!Number.isInteger(o.concurrency) || o.concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${o.concurrency}`);
    if (o.mode !== 'test' && o.mode !== 'train') throw new RangeError(`mode must be 'test' or 'train', got ${String(o.mode)}`);
    if (o.onError !== 'fail' && o.onError !== 'skip') throw new RangeError(`onError must be 'fail' or 'skip', got ${String(o.onError)}`);
    if ((o.mode === 'train' || o.shuffle) && !o.rng) throw new RangeError('a seeded rng is required for train mode and for shuffling');
    this.items = items;
    this.opts = o;
  }

  /** Number of batches per pass when nothing is skipped. */
  get batchesPerPass(): number {
    const n = this.items.length, b = this.opts.batchSize;
    return this.opts.dropLast ? Math.floor(n / b) : Math.ceil(n / b);
  }

  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    return this.pass();
  }

  /** Skipped images so far (all passes). */
  get skipped(): readonly SkippedImage[] {
    return this.skippedList;
  }

  report(): LoaderReport {
    return { passes: this.passes, delivered: this.delivered, skipped: [...this.skippedList], maxInFlight: this.maxInFlight, maxBuffered: this.maxBuffered };
  }

  /** One pass over the items (an epoch). */
  async *pass(): AsyncGenerator<Batch> {
    const o = this.opts;
    const passNo = this.passes++;
    const order = this.items.map((_, i) => i);
    if (o.shuffle) {
      const rng = o.rng!;
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.randint(0, i + 1);
        const t = order[i]!;
        order[i] = order[j]!;
        order[j] = t;
      }
    }
    const per = 3 * o.size * o.size;
    const window = o.prefetch * o.batchSize;
    const pending: { index: number; result: Promise<Loaded> }[] = [];
    let next = 0;
    const limiter = new Limiter(o.concurrency);
    const schedule = () => {
      while (next < order.length && pending.length < window) {
        const index = order[next++]!;
        const childRng = o.mode === 'train' ? o.rng!.fork() : undefined;
        pending.push({ index, result: limiter.run(() => this.load(index, childRng)) });
      }
      this.maxBuffered = Math.max(this.maxBuffered, pending.length);
    };
    schedule();

    let batchIdx: number[] = [];
    let batchTensors: Float32Array[] = [];
    let batchParams: AugmentParams[] = [];
    const skippedHere: SkippedImage[] = [];
    const emit = (): Batch => {
      const count = batchIdx.length;
      const images = new Float32Array(count * per);
      batchTensors.forEach((t, k) => images.set(t, k * per));
      const b: Batch = {
        images,
        labels: Int32Array.from(batchIdx, (i) => this.items[i]!.label),
        indices: Int32Array.from(batchIdx),
        paths: batchIdx.map((i) => this.items[i]!.impath),
        count,
      };
      if (o.mode === 'train') b.augment = batchParams;
      this.delivered += count;
      batchIdx = [];
      batchTensors = [];
      batchParams = [];
      return b;
    };

    while (pending.length) {
      const head = pending.shift()!;
      const r = await head.result;
      schedule();
      if (!r.ok) {
        const err = r.error!;
        if (o.onError === 'fail') throw err;
        const s: SkippedImage = { index: head.index, path: err.path, kind: err.kind, message: err.message, pass: passNo };
        this.skippedList.push(s);
        skippedHere.push(s);
        (o.log ?? console.warn)(`skipping ${err.kind} image ${err.path}: ${err.message}`);
        continue;
      }
      batchIdx.push(head.index);
      batchTensors.push(r.tensor!);
      if (r.params) batchParams.push(r.params);
      if (batchIdx.length === o.batchSize) yield emit();
    }
    if (batchIdx.length > 0 && !o.dropLast) yield emit();
    if (skippedHere.length) {
      const kinds = countBy(skippedHere.map((s) => s.kind));
      (o.log ?? console.warn)(`pass ${passNo}: skipped ${skippedHere.length} of ${order.length} images (${Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(', ')}): ${skippedHere.slice(0, 5).map((s) => s.path).join(', ')}${skippedHere.length > 5 ? ', ...' : ''}`);
    }
  }

  private async load(index: number, rng: Rng | undefined): Promise<Loaded> {
    const o = this.opts;
    const path = this.items[index]!.impath;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let img: RgbImage;
    try {
      img = await (o.decode ?? decodeImageFile)(path);
    } catch (e) {
      return { ok: false, error: toLoadError(path, e) };
    } finally {
      this.inFlight--;
    }
    try {
      if (o.mode === 'train') {
        const { tensor, params } = augmentForClip(img, rng!, { ...o.augment, size: o.size });
        return { ok: true, tensor, params };
      }
      return { ok: true, tensor: preprocessForClip(img, o.size) };
    } catch (e) {
      return { ok: false, error: new ImageLoadError(path, 'corrupt', `cannot preprocess image '${path}': ${(e as Error).message}`, { cause: e }) };
    }
  }
}

function toLoadError(path: string, e: unknown): ImageLoadError {
  const cause = (e as { cause?: unknown }).cause as NodeJS.ErrnoException | undefined;
  const code = cause?.code ?? (e as NodeJS.ErrnoException).code;
  const kind: SkipKind = code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : code ? 'unreadable' : 'corrupt';
  const msg = e instanceof ImageDecodeError ? e.message : `cannot decode image '${path}': ${(e as Error)?.message ?? String(e)}`;
  return new ImageLoadError(path, kind, msg, { cause: e });
}

function countBy(xs: readonly string[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const x of xs) m[x] = (m[x] ?? 0) + 1;
  return m;
}

/** Runs at most `limit` tasks at once, in submission order. */
class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  run<T>(task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        this.active++;
        task().then(resolve, reject).finally(() => {
          this.active--;
          this.queue.shift()?.();
        });
      };
      if (this.active < this.limit) start();
      else this.queue.push(start);
    });
  }
}
