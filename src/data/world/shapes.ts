// Shapes as signed distance functions in a local frame: x to the right, y up, the shape centred at
// the origin and fitting in the unit disc (every point within distance 1). Negative inside. Polygon
// distances are exact (Inigo Quilez's sdPolygon), so |sdf| bounds the distance to the outline: the
// rasteriser uses that to skip supersampling away from edges and to draw sketch outlines as
// |sdf| < stroke / 2.
import type { Shape } from './attributes.js';

export interface ShapeSdf {
  /** Signed distance at (x, y) in local units (the shape fits in the unit disc). */
  sdf(x: number, y: number): number;
  /** How the shape may be rotated: not at all, a little (stays recognisably upright), or freely. */
  rotation: 'none' | 'small' | 'full' | 'direction';
}

/** Exact signed distance to a closed polygon given as [x0, y0, x1, y1, ...]. */
function polygonSdf(v: Float64Array): (x: number, y: number) => number {
  const n = v.length / 2;
  // Per edge i (from vertex i to vertex i-1, as in sdPolygon): start, direction, 1/|e|^2.
  const sx = new Float64Array(n), sy = new Float64Array(n), ex = new Float64Array(n), ey = new Float64Array(n);
  const inv = new Float64Array(n), ny = new Float64Array(n);
  for (let i = 0, j = n - 1; i < n; j = i, i++) {
    sx[i] = v[2 * i]!; sy[i] = v[2 * i + 1]!;
    ex[i] = v[2 * j]! - sx[i]!; ey[i] = v[2 * j + 1]! - sy[i]!;
    inv[i] = 1 / (ex[i]! * ex[i]! + ey[i]! * ey[i]!);
    ny[i] = v[2 * j + 1]!;
  }
  return (px, py) => {
    let d = Infinity;
    let s = 1;
    for (let i = 0; i < n; i++) {
      const wx = px - sx[i]!, wy = py - sy[i]!;
      const exi = ex[i]!, eyi = ey[i]!;
      let t = (wx * exi + wy * eyi) * inv[i]!;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const bx = wx - exi * t, by = wy - eyi * t;
      const dd = bx * bx + by * by;
      if (dd < d) d = dd;
      const c1 = py >= sy[i]!, c2 = py < ny[i]!, c3 = exi * wy > eyi * wx;
      if ((c1 && c2 && c3) || (!c1 && !c2 && !c3)) s = -s;
    }
    return s * Math.sqrt(d);
  };
}

/** sqrt(x^2 + y^2) (Math.hypot is slow in V8 and avoids an overflow we never meet). */
function len(x: number, y: number): number {
  return Math.sqrt(x * x + y * y);
}

function poly(points: readonly (readonly [number, number])[]): Float64Array {
  return Float64Array.from(points.flat());
}

function regular(n: number, radius: number, phase: number): Float64Array {
  const pts: [number, number][] = [];
  for (let k = 0; k < n; k++) {
    const a = phase + (2 * Math.PI * k) / n;
    pts.push([radius * Math.cos(a), radius * Math.sin(a)]);
  }
  return poly(pts);
}

function starPolygon(points: number, outer: number, inner: number): Float64Array {
  const pts: [number, number][] = [];
  for (let k = 0; k < 2 * points; k++) {
    const r = k % 2 === 0 ? outer : inner;
    const a = Math.PI / 2 + (Math.PI * k) / points;
    pts.push([r * Math.cos(a), r * Math.sin(a)]);
  }
  return poly(pts);
}

/** The classic heart curve, centred on its bounding box and scaled to fit radius `fit`. */
function heartPolygon(n: number, fit: number): Float64Array {
  const raw: [number, number][] = [];
  for (let k = 0; k < n; k++) {
    const t = (2 * Math.PI * k) / n;
    const x = 16 * Math.sin(t) ** 3;
    const y = 13 * Math.cos(t) - 5 * Math.cos(2 * t) - 2 * Math.cos(3 * t) - Math.cos(4 * t);
    raw.push([x, y]);
  }
  const ys = raw.map((p) => p[1]);
  const cy = (Math.max(...ys) + Math.min(...ys)) / 2;
  const r = Math.max(...raw.map(([x, y]) => Math.hypot(x, y - cy)));
  // The curve runs clockwise; reverse to keep the vertex order counter-clockwise (sign is parity-based anyway).
  return poly(raw.map(([x, y]) => [(x * fit) / r, ((y - cy) * fit) / r] as [number, number]).reverse());
}

function ellipsePolygon(n: number, a: number, b: number): Float64Array {
  const pts: [number, number][] = [];
  for (let k = 0; k < n; k++) {
    const t = (2 * Math.PI * k) / n;
    pts.push([a * Math.cos(t), b * Math.sin(t)]);
  }
  return poly(pts);
}

const circleR = 0.95;

export const SHAPE_SDF: Readonly<Record<Shape, ShapeSdf>> = {
  circle: { rotation: 'none', sdf: (x, y) => len(x, y) - circleR },
  // Outer radius 0.95, inner 0.47.
  ring: { rotation: 'none', sdf: (x, y) => Math.abs(len(x, y) - 0.71) - 0.24 },
  square: { rotation: 'small', sdf: polygonSdf(poly([[-0.69, -0.69], [0.69, -0.69], [0.69, 0.69], [-0.69, 0.69]])) },
  // Equilateral, circumradius 1, one vertex up (rotated freely anyway).
  triangle: { rotation: 'full', sdf: polygonSdf(regular(3, 1, Math.PI / 2)) },
  star: { rotation: 'full', sdf: polygonSdf(starPolygon(5, 1, 0.42)) },
  // A plus sign (kept near upright so it does not become an "x").
  cross: {
    rotation: 'small',
    sdf: polygonSdf(poly([
      [-0.26, -0.94], [0.26, -0.94], [0.26, -0.26], [0.94, -0.26], [0.94, 0.26], [0.26, 0.26],
      [0.26, 0.94], [-0.26, 0.94], [-0.26, 0.26], [-0.94, 0.26], [-0.94, -0.26], [-0.26, -0.26],
    ])),
  },
  heart: { rotation: 'small', sdf: polygonSdf(heartPolygon(56, 0.98)) },
  // A tall rhombus, so that it differs from a rotated square.
  diamond: { rotation: 'small', sdf: polygonSdf(poly([[0, -0.98], [0.66, 0], [0, 0.98], [-0.66, 0]])) },
  hexagon: { rotation: 'full', sdf: polygonSdf(regular(6, 0.96, 0)) },
  // Pointing right (+x) at rotation 0; rotated to its direction.
  arrow: {
    rotation: 'direction',
    sdf: polygonSdf(poly([[-0.95, -0.26], [0.02, -0.26], [0.02, -0.68], [0.95, 0], [0.02, 0.68], [0.02, 0.26], [-0.95, 0.26]])),
  },
  // A crescent: the unit disc minus a disc of radius 0.8 at (0.55, 0) (horns to the right at
  // rotation 0), shifted right by 0.2 to centre its bounding box and scaled by 0.87 to fit the unit
  // disc (horn tips at radius 0.98); its mass centre sits 0.15 left of the origin.
  moon: {
    rotation: 'full',
    sdf: (x, y) => {
      const k = 0.87;
      const u = x / k - 0.2, v = y / k;
      return k * Math.max(len(u, v) - 1, -(len(u - 0.55, v) - 0.8));
    },
  },
  oval: { rotation: 'full', sdf: polygonSdf(ellipsePolygon(40, 0.96, 0.54)) },
};

/**
 * A shape's signed distance sampled on a regular grid over [-TABLE_EXTENT, TABLE_EXTENT]^2 (local
 * units) and read back bilinearly: O(1) per sample whatever the polygon's vertex count, which makes
 * supersampling cheap. Spacing 3/384 = 0.0078 local units, i.e. under 0.2 px for a large object in a
 * 64x64 image; the rasteriser uses the exact function instead when a grid cell would exceed 0.25 px.
 * Outside the grid the exact function answers (only far from the shape).
 */
export const TABLE_EXTENT = 1.5;
export const TABLE_CELLS = 384;

export interface SdfTable {
  /** Grid spacing in local units. */
  readonly spacing: number;
  sample(x: number, y: number): number;
}

const tables = new Map<Shape, SdfTable>();

export function shapeSdfTable(shape: Shape): SdfTable {
  let t = tables.get(shape);
  if (t) return t;
  const exact = SHAPE_SDF[shape].sdf;
  const n = TABLE_CELLS + 1; // grid points per axis
  const h = (2 * TABLE_EXTENT) / TABLE_CELLS;
  const grid = new Float32Array(n * n); // 590 kB per shape
  for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) grid[j * n + i] = exact(-TABLE_EXTENT + i * h, -TABLE_EXTENT + j * h);
  const inv = 1 / h;
  t = {
    spacing: h,
    sample(x, y) {
      const gx = (x + TABLE_EXTENT) * inv, gy = (y + TABLE_EXTENT) * inv;
      if (!(gx >= 0 && gy >= 0 && gx < TABLE_CELLS && gy < TABLE_CELLS)) return exact(x, y);
      const i = Math.floor(gx), j = Math.floor(gy);
      const fx = gx - i, fy = gy - j;
      const k = j * n + i;
      const a = grid[k]!, b = grid[k + 1]!, c = grid[k + n]!, d = grid[k + n + 1]!;
      return (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy;
    },
  };
  tables.set(shape, t);
  return t;
}
