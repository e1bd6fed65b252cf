// Rasterising a scene in a domain: anti-aliased by supersampling (4x4 samples per pixel near an
// edge, found through the shapes' signed distances; interior and exterior pixels take one test).
// Everything is computed in float64/float32 and rounded to 8 bits once at the end.
import type { Rng } from '../../clip/rng.js';
import { newRgbImage, type RgbImage } from '../../clip/rgb-image.js';
import { luma, type Domain } from './attributes.js';
import { fillGaussian } from './keyed-rng.js';
import { tintedGrey, type Rgb, type WorldObject, type WorldScene } from './scene.js';
import { SHAPE_SDF, shapeSdfTable } from './shapes.js';

export interface RenderOptions {
  /** Supersampling factor per axis near edges (default 4, i.e. 16 samples). */
  supersample?: number;
}

/** Sketch stroke width in pixels for an image of `size` pixels. */
export function sketchStrokePx(size: number): number {
  return Math.max(1.25, 0.05 * size);
}

/** Standard deviation of the per-pixel noise of the `noise` domain (0..1 scale). */
export const NOISE_SIGMA = 0.12;

/** Low-resolution grid of the `pixelated` domain (then nearest-neighbour upscaled). */
export function pixelatedGrid(size: number): number {
  return Math.max(8, Math.round(size / 2));
}

interface DrawStyle {
  outline: boolean;
  strokeWidth: number; // image units
  wobble?: { amp: number; k: number; phase: number };
  light?: { ux: number; uy: number; strength: number };
}

/** The second tone of patterned backgrounds: `shift` in luma away from the objects when possible. */
function secondTone(rng: Rng, scene: WorldScene, shift: number): Rgb {
  const bgL = luma(scene.background);
  const objMean = scene.objects.reduce((t, o) => t + luma(o.rgb), 0) / scene.objects.length;
  const sign = bgL >= objMean ? 1 : -1;
  let l2 = Math.min(0.98, Math.max(0.02, bgL + sign * shift));
  if (Math.abs(l2 - bgL) < shift / 2) l2 = bgL - sign * shift;
  return tintedGrey(rng, l2);
}

type Pattern = (x: number, y: number) => number; // 0 = first tone, 1 = second tone (coverage)

function backgroundPattern(domain: Domain, rng: Rng): Pattern | undefined {
  switch (domain) {
    case 'stripes': {
      const angle = rng.uniformRange(0, Math.PI);
      const period = rng.uniformRange(0.12, 0.25);
      const phase = rng.uniform();
      const ca = Math.cos(angle) / period, sa = Math.sin(angle) / period;
      return (x, y) => {
        const u = x * ca + y * sa + phase;
        return u - Math.floor(u) < 0.5 ? 1 : 0;
      };
    }
    case 'checker': {
      const cell = rng.uniformRange(0.1, 0.2);
      const ox = rng.uniform(), oy = rng.uniform();
      return (x, y) => ((Math.floor(x / cell + ox) + Math.floor(y / cell + oy)) & 1);
    }
    case 'gradient': {
      const angle = rng.uniformRange(0, 2 * Math.PI);
      const ux = Math.cos(angle), uy = Math.sin(angle);
      // Projection of the unit square's corners onto the direction spans [lo, hi].
      const proj = [0, ux, uy, ux + uy];
      const lo = Math.min(...proj), hi = Math.max(...proj);
      return (x, y) => (x * ux + y * uy - lo) / (hi - lo);
    }
    default:
      return undefined;
  }
}

function fillBackground(buf: Float32Array, size: number, scene: WorldScene, domain: Domain, rng: Rng, ss: number): void {
  const [r0, g0, b0] = scene.background;
  const pattern = backgroundPattern(domain, rng);
  if (!pattern) {
    for (let i = 0; i < size * size; i++) {
      buf[3 * i] = r0; buf[3 * i + 1] = g0; buf[3 * i + 2] = b0;
    }
    return;
  }
  const [r1, g1, b1] = secondTone(rng, scene, domain === 'gradient' ? 0.18 : 0.12);
  const s = Math.min(ss, 3);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let t = 0;
      for (let sy = 0; sy < s; sy++) {
        for (let sx = 0; sx < s; sx++) t += pattern((px + (sx + 0.5) / s) / size, (py + (sy + 0.5) / s) / size);
      }
      t /= s * s;
      const i = 3 * (py * size + px);
      buf[i] = r0 + (r1 - r0) * t;
      buf[i + 1] = g0 + (g1 - g0) * t;
      buf[i + 2] = b0 + (b1 - b0) * t;
    }
  }
}

function drawObject(buf: Float32Array, size: number, obj: WorldObject, style: DrawStyle, ss: number): void {
  const { cx, cy, radius: R } = obj;
  const pxPerLocal = R * size;
  // The tabulated distance unless a grid cell would span more than a quarter pixel (huge images).
  const table = shapeSdfTable(obj.shape);
  const local = table.spacing * pxPerLocal <= 0.25 ? (x: number, y: number) => table.sample(x, y) : SHAPE_SDF[obj.shape].sdf;
  const c = Math.cos(obj.rotation), s = Math.sin(obj.rotation);
  const wob = style.wobble;
  // Pixel (px, py) -> local frame: dx = (x - cx) / R, dy = -(y - cy) / R, then rotate by -rotation.
  // Distance in pixels at pixel coordinates (px, py), plus `offset` (local units).
  const sdf = (px: number, py: number, offset: number): number => {
    const dx = (px / size - cx) / R, dy = -(py / size - cy) / R;
    return (local(c * dx + s * dy, -s * dx + c * dy) + offset) * pxPerLocal;
  };
  // The sketch wobble, a slow function of the angle around the centre, is evaluated once per pixel
  // (at its centre) and shared by its samples: within a pixel the distance stays 1-Lipschitz.
  const wobbleAt = (px: number, py: number): number => {
    if (!wob) return 0;
    const dx = (px / size - cx) / R, dy = -(py / size - cy) / R;
    return wob.amp * Math.sin(wob.k * Math.atan2(-s * dx + c * dy, c * dx + s * dy) + wob.phase);
  };
  const halfW = (style.strokeWidth * size) / 2; // pixels
  // Beyond this distance (pixels) from the painted region's edge, all of a pixel's samples agree:
  // samples lie within ((ss-1)/2ss)*sqrt2 px of the pixel centre (0.53 for 4x4) and the distance is
  // 1-Lipschitz (its bilinear table very nearly so: 10% slack).
  const margin = ((ss - 1) / (2 * ss)) * Math.SQRT2 * 1.1 + 0.02;
  const reach = R * size * (1 + (wob ? wob.amp : 0)) + halfW + 2;
  const x0 = Math.max(0, Math.floor(cx * size - reach)), x1 = Math.min(size - 1, Math.ceil(cx * size + reach));
  const y0 = Math.max(0, Math.floor(cy * size - reach)), y1 = Math.min(size - 1, Math.ceil(cy * size + reach));
  const outline = style.outline;
  const [cr, cg, cb] = obj.rgb;
  const nss = ss * ss;
  for (let py = y0; py <= y1; py++) {
    for (let px = x0; px <= x1; px++) {
      const w = wobbleAt(px + 0.5, py + 0.5);
      const d = sdf(px + 0.5, py + 0.5, w);
      const e = outline ? Math.abs(d) - halfW : d; // signed distance to the painted region, pixels
      let cov: number;
      if (e > margin) continue;
      if (e < -margin) cov = 1;
      else {
        let n = 0;
        for (let sy = 0; sy < ss; sy++) {
          for (let sx = 0; sx < ss; sx++) {
            const ds = sdf(px + (sx + 0.5) / ss, py + (sy + 0.5) / ss, w);
            if (outline ? Math.abs(ds) < halfW : ds < 0) n++;
          }
        }
        if (n === 0) continue;
        cov = n / nss;
      }
      let f = 1;
      if (style.light) f = 1 + style.light.strength * ((((px + 0.5) / size - cx) * style.light.ux + ((py + 0.5) / size - cy) * style.light.uy) / R);
      const i = 3 * (py * size + px);
      buf[i] = buf[i]! * (1 - cov) + Math.min(1, cr * f) * cov;
      buf[i + 1] = buf[i + 1]! * (1 - cov) + Math.min(1, cg * f) * cov;
      buf[i + 2] = buf[i + 2]! * (1 - cov) + Math.min(1, cb * f) * cov;
    }
  }
}

function toImage(buf: Float32Array, size: number): RgbImage {
  const img = newRgbImage(size, size);
  for (let i = 0; i < buf.length; i++) {
    const v = buf[i]!;
    img.data[i] = v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
  }
  return img;
}

function renderFloat(scene: WorldScene, size: number, domain: Domain, rng: Rng, ss: number): Float32Array {
  const buf = new Float32Array(size * size * 3);
  fillBackground(buf, size, scene, domain, rng, ss);
  const sketch = domain === 'sketch';
  for (const obj of scene.objects) {
    const style: DrawStyle = { outline: sketch, strokeWidth: sketch ? sketchStrokePx(size) / size : 0 };
    if (sketch) style.wobble = { amp: rng.uniformRange(0.01, 0.03), k: rng.randint(3, 7), phase: rng.uniformRange(0, 2 * Math.PI) };
    if (domain === 'gradient') {
      const a = rng.uniformRange(0, 2 * Math.PI);
      style.light = { ux: Math.cos(a), uy: Math.sin(a), strength: 0.12 };
    }
    drawObject(buf, size, obj, style, ss);
  }
  if (domain === 'noise') {
    const noise = new Float64Array(buf.length);
    fillGaussian(rng, noise);
    for (let i = 0; i < buf.length; i++) buf[i] = buf[i]! + NOISE_SIGMA * noise[i]!;
  }
  return buf;
}

/**
 * Draws `scene` as a size x size RGB image in `domain`. `rng` supplies the style's own randomness
 * (stripe angle, noise, sketch wobble...): pass a generator keyed by the domain, so that the scene
 * (objects, background colour) stays the same across domains.
 */
export function renderScene(scene: WorldScene, size: number, domain: Domain, rng: Rng, options: RenderOptions = {}): RgbImage {
  if (!Number.isInteger(size) || size < 8 || size > 1024) throw new RangeError(`image size must be an integer in 8..1024, got ${size}`);
  const ss = options.supersample ?? 4;
  if (!Number.isInteger(ss) || ss < 1 || ss > 16) throw new RangeError(`supersample must be an integer in 1..16, got ${ss}`);
  if (domain === 'pixelated') {
    const low = pixelatedGrid(size);
    const small = renderFloat(scene, low, 'plain', rng, ss);
    const buf = new Float32Array(size * size * 3);
    for (let y = 0; y < size; y++) {
      const sy = Math.floor((y * low) / size);
      for (let x = 0; x < size; x++) {
        const sx = Math.floor((x * low) / size);
        const o = 3 * (y * size + x), i = 3 * (sy * low + sx);
        buf[o] = small[i]!; buf[o + 1] = small[i + 1]!; buf[o + 2] = small[i + 2]!;
      }
    }
    return toImage(buf, size);
  }
  return toImage(renderFloat(scene, size, domain, rng, ss), size);
}
