// Runtime-agnostic parts of image decoding: format sniffing, the error type, and the
// channel conversions PIL's `Image.open(p).convert('RGB')` performs after decoding.
// The platform adapters (image-decode-node.ts: sharp/libvips; image-decode-browser.ts:
// createImageBitmap) produce raw channels and call these to land on PIL's RGB bytes.

import type { RgbImage } from './rgb-image.js';

export type ImageFormat = 'jpeg' | 'png' | 'gif' | 'webp' | 'bmp' | 'tiff' | 'unknown';

/** Raised for unreadable, corrupt or unsupported images; the message names the source. */
export class ImageDecodeError extends Error {
  readonly source: string;
  constructor(source: string, reason: string, options?: { cause?: unknown }) {
    super(`cannot decode image '${source}': ${reason}`, options);
    this.name = 'ImageDecodeError';
    this.source = source;
  }
}

/** Identifies the container from its magic bytes (file extensions lie: datasets ship PNGs named .jpg). */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat {
  const b = bytes;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return 'png';
  if (b.length >= 6 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x38) return 'gif';
  if (b.length >= 12 && b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return 'webp';
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) return 'bmp';
  if (b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 0x2a))) return 'tiff';
  return 'unknown';
}

/** Only these are decoded; their results are verified against PIL. */
export const SUPPORTED_FORMATS: readonly ImageFormat[] = ['jpeg', 'png'];

/** Throws ImageDecodeError unless `bytes` look like a supported image. Returns the format. */
export function checkSupportedFormat(bytes: Uint8Array, source: string): ImageFormat {
  if (bytes.length === 0) throw new ImageDecodeError(source, 'file is empty');
  const fmt = sniffImageFormat(bytes);
  if (!SUPPORTED_FORMATS.includes(fmt)) {
    throw new ImageDecodeError(source, fmt === 'unknown'
      ? 'unsupported or unrecognised format (expected JPEG or PNG)'
      : `unsupported format ${fmt.toUpperCase()} (only JPEG and PNG are supported)`);
  }
  return fmt;
}

/**
 * 8-bit interleaved channels → RGB as PIL's convert('RGB') does for modes L (1 ch),
 * LA (2), RGB (3) and RGBA (4): grey is replicated, alpha is dropped (not composited).
 */
export function channelsToRgb(width: number, height: number, channels: number, src: ArrayLike<number>): RgbImage {
  const n = width * height;
  if (src.length < n * channels) throw new RangeError(`channelsToRgb: ${src.length} values for ${width}x${height}x${channels}`);
  const out = new Uint8Array(n * 3);
  if (channels === 3 && src instanceof Uint8Array) {
    out.set(src.subarray(0, n * 3));
  } else if (channels === 1 || channels === 2) {
    for (let i = 0; i < n; i++) {
      const v = src[i * channels]!;
      out[i * 3] = v; out[i * 3 + 1] = v; out[i * 3 + 2] = v;
    }
  } else if (channels === 3 || channels === 4) {
    for (let i = 0; i < n; i++) {
      out[i * 3] = src[i * channels]!; out[i * 3 + 1] = src[i * channels + 1]!; out[i * 3 + 2] = src[i * channels + 2]!;
    }
  } else {
    throw new RangeError(`channelsToRgb: unsupported channel count ${channels}`);
  }
  return { width, height, data: out };
}

/**
 * PIL's CMYK → RGB (Convert.c cmyk2rgb): with nk = 255 − K, each channel is
 * nk − MULDIV255(C, nk), where MULDIV255(a, b) = (t + (t >> 8)) >> 8, t = a·b + 128.
 * Input is PIL's (non-inverted) CMYK as in mode "CMYK".
 */
export function cmykToRgb(width: number, height: number, cmyk: ArrayLike<number>): RgbImage {
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const nk = 255 - cmyk[i * 4 + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = cmyk[i * 4 + c]! * nk + 128;
      const v = nk - (((t >> 8) + t) >> 8);
      out[i * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width, height, data: out };
}

/**
 * 16-bit greyscale PNG: PIL opens it as mode "I" (Pillow ≤ 10) or "I;16" and convert('RGB')
 * *clamps* the value to 255 rather than scaling it — kept here so results match PIL,
 * surprising as it is. (16-bit RGB/RGBA/LA PNGs are instead reduced to their high byte.)
 */
export function grey16ToRgbPil(width: number, height: number, grey: ArrayLike<number>): RgbImage {
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const g = grey[i]!;
    const v = g > 255 ? 255 : g;
    out[i * 3] = v; out[i * 3 + 1] = v; out[i * 3 + 2] = v;
  }
  return { width, height, data: out };
}
