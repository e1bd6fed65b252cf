// Shared by the preprocess tests: fixture paths, expected.json, hashing.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeImageFile } from '../../src/clip/image-decode-node.js';
import type { RgbImage } from '../../src/clip/rgb-image.js';

// Compiled tests live in dist/test/preprocess; the fixtures stay in the source tree.
export const FIXTURES = fileURLToPath(new URL('../../../test/preprocess/fixtures/', import.meta.url));

export function fixture(name: string): string {
  return FIXTURES + name;
}

export interface Expected {
  generator: Record<string, string | null>;
  resize: { src: string; size: [number, number]; filter: 'bicubic' | 'bilinear'; box: [number, number, number, number] | null; sha256: string }[];
  testTransform: { src: string; size: number; resized: [number, number]; offset: [number, number]; u8sha256: string; f32sha256: string; samples: [number, number][] }[];
  normalize: { mean: number[]; std: number[]; table: number[][] };
  cropResize: { src: string; top: number; left: number; height: number; width: number; flip: boolean; size: number; filter: 'bicubic' | 'bilinear'; sha256: string }[];
  cropSize: [number, number, number, number][];
  fallback: [number, number, number, number, number, number][];
  decode: { file: string; mode: string; width: number; height: number; sha256: string }[];
  jpegTransform: { src: string; ref: string | null; resized: [number, number]; offset: [number, number]; u8sha256: string; f32sha256: string }[];
  corrupt: string[];
}

export const expected: Expected = JSON.parse(readFileSync(fixture('expected.json'), 'utf8'));

export function sha256(data: Uint8Array | Float32Array): string {
  return createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');
}

const cache = new Map<string, Promise<RgbImage>>();
/** Decoded fixture (decoding itself is checked byte-exact against PIL in decode.test). */
export function load(name: string): Promise<RgbImage> {
  let p = cache.get(name);
  if (!p) cache.set(name, (p = decodeImageFile(fixture(name))));
  return p;
}
