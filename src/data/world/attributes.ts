// The attributes a world object is made of, in their fixed documented orders. Changing any list or
// any order changes the class list and the images: bump WORLD_VERSION (generate.ts) when you do.

/** Colour names, in the order used to build the class list. */
export const COLOURS = [
  'red', 'green', 'blue', 'yellow', 'purple', 'orange', 'pink', 'brown', 'white', 'black', 'gray', 'cyan',
] as const;
export type Colour = (typeof COLOURS)[number];

/** Shape names, in the order used to build the class list. */
export const SHAPES = [
  'circle', 'square', 'triangle', 'star', 'cross', 'heart', 'diamond', 'hexagon', 'ring', 'arrow', 'moon', 'oval',
] as const;
export type Shape = (typeof SHAPES)[number];

export const SIZES = ['small', 'large'] as const;
export type Size = (typeof SIZES)[number];

/** The 3x3 grid of positions, row by row (grid x, grid y in 0..2). */
export const POSITIONS = [
  'top left', 'top', 'top right', 'left', 'center', 'right', 'bottom left', 'bottom', 'bottom right',
] as const;
export type Position = (typeof POSITIONS)[number];

export function positionGrid(p: Position): { gx: number; gy: number } {
  const i = POSITIONS.indexOf(p);
  return { gx: i % 3, gy: Math.floor(i / 3) };
}

/** Directions an arrow can point to (the only shape with a caption-visible orientation). */
export const DIRECTIONS = ['right', 'up', 'left', 'down'] as const;
export type Direction = (typeof DIRECTIONS)[number];

/**
 * Rendering styles. `plain` is the source domain; the others are shifted targets:
 * - sketch: outline only (no fill), a stroke about 5% of the image wide;
 * - noise: strong per-pixel colour noise over the whole image;
 * - stripes: the object over a striped background (random angle and period);
 * - checker: the object over a checkerboard;
 * - gradient: a two-tone gradient background and a shaded (lit) object;
 * - pixelated: rendered at half resolution and upscaled with nearest-neighbour blocks.
 */
export const DOMAINS = ['plain', 'sketch', 'noise', 'stripes', 'checker', 'gradient', 'pixelated'] as const;
export type Domain = (typeof DOMAINS)[number];

export function isColour(s: string): s is Colour {
  return (COLOURS as readonly string[]).includes(s);
}
export function isShape(s: string): s is Shape {
  return (SHAPES as readonly string[]).includes(s);
}
export function isDomain(s: string): s is Domain {
  return (DOMAINS as readonly string[]).includes(s);
}

/**
 * Colour definitions in HSV (hue in degrees, saturation and value in 0..1). Chosen so that every
 * pair stays apart after jitter: brown is a dark orange (value 0.5 vs 0.98), pink a pale red
 * (saturation 0.45 vs 0.86); white, gray and black differ in value only.
 */
export const COLOUR_HSV: Readonly<Record<Colour, readonly [number, number, number]>> = {
  red: [0, 0.86, 0.88],
  green: [125, 0.75, 0.68],
  blue: [225, 0.82, 0.9],
  yellow: [54, 0.88, 0.95],
  purple: [280, 0.7, 0.72],
  orange: [28, 0.9, 0.98],
  pink: [330, 0.45, 0.98],
  brown: [25, 0.75, 0.5],
  white: [0, 0, 0.96],
  black: [0, 0, 0.07],
  gray: [0, 0, 0.5],
  cyan: [184, 0.85, 0.9],
};

export function isAchromatic(c: Colour): boolean {
  return COLOUR_HSV[c][1] === 0;
}

/** HSV (h in degrees) -> RGB in 0..1. */
export function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const hh = (((h % 360) + 360) % 360) / 60;
  const i = Math.floor(hh);
  const f = hh - i;
  const p = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  switch (i) {
    case 0: return [v, t, p];
    case 1: return [q, v, p];
    case 2: return [p, v, t];
    case 3: return [p, q, v];
    case 4: return [t, p, v];
    default: return [v, p, q];
  }
}

/** The nominal (unjittered) RGB of a colour, 0..255. */
export function colourRgb255(c: Colour): [number, number, number] {
  const [h, s, v] = COLOUR_HSV[c];
  return hsvToRgb(h, s, v).map((x) => Math.round(x * 255)) as [number, number, number];
}

/** Rec. 601 luma of an RGB in 0..1. */
export function luma(rgb: readonly [number, number, number]): number {
  return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
}

/** English plural of a shape name ("cross" -> "crosses"). */
export function pluralShape(s: Shape): string {
  return s.endsWith('s') ? `${s}es` : `${s}s`;
}
