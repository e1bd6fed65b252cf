// A contact sheet: image `index` of every selected class, 12 per row, one block of rows per domain,
// upscaled for viewing. For eyeballing the generator (cliptune world --preview FILE.png).
import { newRgbImage, type RgbImage } from '../../clip/rgb-image.js';
import type { Domain } from './attributes.js';
import { classImage, type Split } from './generate.js';

export interface ContactSheetOptions {
  seed: number;
  classes: readonly number[];
  domains: readonly Domain[];
  size?: number;
  split?: Split;
  index?: number;
  /** Nearest-neighbour upscale factor (default: 2 at 32 px, 1 from 64 px). */
  scale?: number;
  columns?: number;
}

export function contactSheet(opts: ContactSheetOptions): RgbImage {
  const size = opts.size ?? 32;
  const cols = Math.min(opts.columns ?? 12, opts.classes.length);
  const rowsPerDomain = Math.ceil(opts.classes.length / cols);
  const scale = opts.scale ?? (size < 64 ? 2 : 1);
  const pad = 2;
  const cell = size * scale + pad;
  const width = cols * cell + pad, height = opts.domains.length * rowsPerDomain * cell + pad;
  const sheet = newRgbImage(width, height);
  sheet.data.fill(255);
  opts.domains.forEach((domain, di) => {
    opts.classes.forEach((classIndex, k) => {
      const { image } = classImage({ seed: opts.seed, classIndex, split: opts.split ?? 'train', index: opts.index ?? 0, domain, size });
      const ox = pad + (k % cols) * cell;
      const oy = pad + (di * rowsPerDomain + Math.floor(k / cols)) * cell;
      for (let y = 0; y < size * scale; y++) {
        for (let x = 0; x < size * scale; x++) {
          const s = 3 * (Math.floor(y / scale) * size + Math.floor(x / scale));
          const d = 3 * ((oy + y) * width + ox + x);
          sheet.data[d] = image.data[s]!; sheet.data[d + 1] = image.data[s + 1]!; sheet.data[d + 2] = image.data[s + 2]!;
        }
      }
    });
  });
  return sheet;
}
