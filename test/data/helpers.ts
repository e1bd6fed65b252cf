// Shared helpers for the data-layer tests: fixture paths, scratch directories, tiny images.
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from dist/test/data/). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const DATA_FIXTURES = join(ROOT, 'test/fixtures/data');

export function fixtureJson<T = unknown>(name: string): T {
  return JSON.parse(readFileSync(join(DATA_FIXTURES, name), 'utf8')) as T;
}

export function scratchDir(): string {
  return mkdtempSync(join(tmpdir(), 'cliptune-data-'));
}

export { errorOf } from '../common.js';

/** Writes a small solid-colour-with-gradient image (PNG or JPEG by extension) with sharp. */
export async function writeImage(path: string, width: number, height: number, seed = 0): Promise<void> {
  const sharp = (await import('sharp')).default;
  mkdirSync(dirname(path), { recursive: true });
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      data[o] = (x * 7 + seed * 31) & 255;
      data[o + 1] = (y * 5 + seed * 17) & 255;
      data[o + 2] = (x * y + seed) & 255;
    }
  }
  const img = sharp(data, { raw: { width, height, channels: 3 } });
  await (path.endsWith('.png') ? img.png() : img.jpeg({ quality: 90 })).toFile(path);
}
