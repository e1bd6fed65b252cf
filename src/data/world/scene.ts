// Scenes: what is in an image (objects with their attributes and exact geometry, and the background
// colour), sampled from an Rng. Rendering a scene in a domain is render.ts's job, so the same scene
// can be drawn in every style (the classification datasets of two domains hold the same scenes).
import type { Rng } from '../../clip/rng.js';
import {
  COLOUR_HSV, DIRECTIONS, POSITIONS, SIZES, hsvToRgb, isAchromatic, luma, positionGrid,
  type Colour, type Direction, type Position, type Shape, type Size,
} from './attributes.js';
import { pick } from './keyed-rng.js';
import { SHAPE_SDF } from './shapes.js';

export type Rgb = [number, number, number];

export interface WorldObject {
  colour: Colour;
  shape: Shape;
  size: Size;
  position: Position;
  /** Arrows only: where the arrow points (in the image: up is towards row 0). */
  direction?: Direction;
  /** Centre and radius in image units (0..1 across the image), y downwards. */
  cx: number;
  cy: number;
  radius: number;
  /** Counter-clockwise rotation of the shape, radians. */
  rotation: number;
  /** The jittered colour, RGB in 0..1. */
  rgb: Rgb;
}

export interface WorldScene {
  objects: WorldObject[];
  /** Background colour, RGB in 0..1: a weakly tinted grey (saturation <= 0.08) whose luma is far from every object's. */
  background: Rgb;
}

/** Object radius ranges (image units) per size. */
export const SIZE_RADIUS: Readonly<Record<Size, readonly [number, number]>> = {
  small: [0.17, 0.21],
  large: [0.28, 0.34],
};

/** Minimum luma difference between the background and every object (relaxed only if impossible). */
export const MIN_CONTRAST = 0.4;

export interface ObjectSpec {
  colour: Colour;
  shape: Shape;
  size?: Size;
  position?: Position;
}

/** The class colour with mild jitter: hue +-8 degrees, saturation and value a few percent. */
export function jitterColour(rng: Rng, colour: Colour): Rgb {
  const [h, s, v] = COLOUR_HSV[colour];
  if (isAchromatic(colour)) {
    // Greys: a faint random tint and +-0.04 value.
    const vv = Math.min(1, Math.max(0, v + rng.uniformRange(-0.04, 0.04)));
    return hsvToRgb(rng.uniformRange(0, 360), rng.uniformRange(0, 0.05), vv);
  }
  const hh = h + rng.uniformRange(-8, 8);
  const ss = Math.min(1, s * rng.uniformRange(0.88, 1.08));
  const vv = Math.min(1, v * rng.uniformRange(0.9, 1.06));
  return hsvToRgb(hh, ss, vv);
}

function rotationFor(rng: Rng, shape: Shape, direction: Direction | undefined): number {
  const deg = Math.PI / 180;
  switch (SHAPE_SDF[shape].rotation) {
    case 'none': return 0;
    case 'small': return rng.uniformRange(-15, 15) * deg;
    case 'full': return rng.uniformRange(0, 360) * deg;
    case 'direction': return (DIRECTIONS.indexOf(direction!) * 90 + rng.uniformRange(-10, 10)) * deg;
  }
}

/** Centre of an object of `radius` at grid `position`, with +-0.03 jitter, kept inside the image. */
function placeAt(rng: Rng, position: Position, radius: number): { cx: number; cy: number } {
  const { gx, gy } = positionGrid(position);
  const lo = radius + 0.015;
  const hi = 1 - radius - 0.015;
  const at = (g: number) => Math.min(hi, Math.max(lo, lo + (g / 2) * (hi - lo) + rng.uniformRange(-0.03, 0.03)));
  return { cx: at(gx), cy: at(gy) };
}

export function sampleObject(rng: Rng, spec: ObjectSpec): WorldObject {
  const size = spec.size ?? pick(rng, SIZES);
  const position = spec.position ?? pick(rng, POSITIONS);
  const direction = spec.shape === 'arrow' ? pick(rng, DIRECTIONS) : undefined;
  const [r0, r1] = SIZE_RADIUS[size];
  const radius = rng.uniformRange(r0, r1);
  const { cx, cy } = placeAt(rng, position, radius);
  const rotation = rotationFor(rng, spec.shape, direction);
  const rgb = jitterColour(rng, spec.colour);
  const obj: WorldObject = { colour: spec.colour, shape: spec.shape, size, position, cx, cy, radius, rotation, rgb };
  if (direction) obj.direction = direction;
  return obj;
}

/**
 * A background luma in [0.06, 0.94] at least `MIN_CONTRAST` from every object luma (uniform over the
 * allowed set; the margin shrinks by 0.05 steps if no value qualifies, e.g. for a white and a gray
 * object with black between them).
 */
export function sampleBackgroundLuma(rng: Rng, objectLumas: readonly number[]): number {
  const lo = 0.06, hi = 0.94;
  for (let margin = MIN_CONTRAST; margin >= 0; margin -= 0.05) {
    // Allowed intervals = [lo, hi] minus the union of (l - margin, l + margin).
    let intervals: [number, number][] = [[lo, hi]];
    for (const l of objectLumas) {
      const next: [number, number][] = [];
      for (const [a, b] of intervals) {
        if (l - margin > a) next.push([a, Math.min(b, l - margin)]);
        if (l + margin < b) next.push([Math.max(a, l + margin), b]);
      }
      intervals = next.filter(([a, b]) => b > a);
    }
    const total = intervals.reduce((t, [a, b]) => t + (b - a), 0);
    if (total > 1e-6) {
      let x = rng.uniform() * total;
      for (const [a, b] of intervals) {
        if (x < b - a) return a + x;
        x -= b - a;
      }
      return intervals[intervals.length - 1]![1];
    }
  }
  return 0.5;
}

/** A weakly tinted colour (saturation <= 0.08) with luma `target`. */
export function tintedGrey(rng: Rng, target: number): Rgb {
  const base = hsvToRgb(rng.uniformRange(0, 360), rng.uniformRange(0, 0.08), 1);
  const scale = target / luma(base);
  return base.map((c) => Math.min(1, c * scale)) as Rgb;
}

/**
 * Two objects must not overlap: both positions must differ by two grid steps along some axis
 * (left vs right column, or top vs bottom row).
 */
export function farApart(a: Position, b: Position): boolean {
  const pa = positionGrid(a), pb = positionGrid(b);
  return Math.abs(pa.gx - pb.gx) === 2 || Math.abs(pa.gy - pb.gy) === 2;
}

/**
 * A scene with the given objects. With two or more objects, unspecified positions are drawn so that
 * objects are far apart and unspecified sizes default to small (two large objects would overlap).
 */
export function sampleScene(rng: Rng, specs: readonly ObjectSpec[]): WorldScene {
  if (specs.length === 0 || specs.length > 2) throw new RangeError(`a world scene holds one or two objects, got ${specs.length}`);
  const objects: WorldObject[] = [];
  if (specs.length === 1) {
    objects.push(sampleObject(rng, specs[0]!));
  } else {
    // The center has no far-apart partner.
    const pa = specs[0]!.position ?? pick(rng, POSITIONS.filter((p) => p !== 'center'));
    const candidates = POSITIONS.filter((p) => farApart(pa, p));
    const pb = specs[1]!.position ?? (candidates.length ? pick(rng, candidates) : undefined);
    if (pb === undefined || !farApart(pa, pb)) throw new RangeError(`two objects at ${pa} and ${pb ?? 'anywhere'} would overlap`);
    objects.push(sampleObject(rng, { ...specs[0]!, size: specs[0]!.size ?? 'small', position: pa }));
    objects.push(sampleObject(rng, { ...specs[1]!, size: specs[1]!.size ?? 'small', position: pb }));
  }
  const bgLuma = sampleBackgroundLuma(rng, objects.map((o) => luma(o.rgb)));
  return { objects, background: tintedGrey(rng, bgLuma) };
}
