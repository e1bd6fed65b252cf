// Keyed random generators: the Rng of one image is derived from (seed, key...) alone, never from a
// generator shared with other images. So image i of a class, or pair i of the caption stream, is a
// pure function of the seed and its key: independent of how many images were made before it, of
// generation order, and of which other classes or splits are written alongside it.
import { Rng } from '../../clip/rng.js';

export type KeyPart = string | number;

/** murmur3's 32-bit finaliser. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** murmur3_32 of a UTF-16 string (each code unit fed as one 32-bit block) with a lane seed. */
function hash32(text: string, laneSeed: number): number {
  let h = laneSeed >>> 0;
  for (let i = 0; i < text.length; i++) {
    let k = Math.imul(text.charCodeAt(i), 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= text.length;
  return fmix32(h);
}

/** Throws unless `seed` is a non-negative safe integer (the seeds the CLI and writer accept). */
export function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`world seed must be a non-negative integer, got ${seed}`);
}

/**
 * An Rng whose 128-bit state is a hash of (seed, ...key): four independent murmur3 lanes over the
 * key's canonical text. Distinct keys give unrelated streams (collisions need a 128-bit clash).
 */
export function keyedRng(seed: number, ...key: KeyPart[]): Rng {
  checkSeed(seed);
  const text = `cliptune-world\u0001${seed}\u0001${key.map((k) => (typeof k === 'number' ? `#${k}` : k)).join('\u0001')}`;
  const st: [number, number, number, number] = [
    hash32(text, 0x9e3779b9),
    hash32(text, 0x7f4a7c15),
    hash32(text, 0x85ebca6b),
    hash32(text, 0xc2b2ae35),
  ];
  if ((st[0] | st[1] | st[2] | st[3]) === 0) st[0] = 1;
  return Rng.fromState(st);
}

/**
 * Standard normal draws (Box-Muller), `n` of them into `out` (two per pair of uniforms).
 */
export function fillGaussian(rng: Rng, out: Float64Array | Float32Array, n = out.length): void {
  for (let i = 0; i < n; i += 2) {
    const u = 1 - rng.uniform(); // (0, 1]
    const v = rng.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
}

/** One element of a non-empty array, uniformly. */
export function pick<T>(rng: Rng, items: readonly T[]): T {
  if (items.length === 0) throw new RangeError('pick: empty list');
  return items[rng.randint(0, items.length)]!;
}

/** An index drawn with probability proportional to `weights` (non-negative, not all zero). */
export function pickWeighted(rng: Rng, weights: readonly number[]): number {
  let total = 0;
  for (const w of weights) total += w;
  if (!(total > 0)) throw new RangeError('pickWeighted: weights must have a positive sum');
  let x = rng.uniform() * total;
  for (let i = 0; i < weights.length; i++) {
    x -= weights[i]!;
    if (x < 0) return i;
  }
  // Rounding: the last index with a positive weight.
  for (let i = weights.length - 1; i >= 0; i--) if (weights[i]! > 0) return i;
  return 0;
}
