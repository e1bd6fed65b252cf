// Browser (and worker) image decoding via createImageBitmap + OffscreenCanvas.
//
// UNTESTED: no browser runs in this project's CI; it only has to compile. Known limits
// versus PIL, by construction of the web platform:
// - The browser's JPEG decoder is libjpeg-turbo in Chromium and Firefox, so baseline JPEGs
//   usually match PIL, but this is not guaranteed (Safari uses ImageIO).
// - The 2D canvas stores premultiplied alpha in most engines: RGB under partially
//   transparent pixels comes back rounded (opaque images are unaffected).
// - 16-bit PNGs are reduced by the browser (not PIL's clamp for 16-bit grey); CMYK JPEGs
//   are colour-managed by the browser.
// We ask for no colour conversion and no EXIF orientation, which is what PIL does.

import type { RgbImage } from './rgb-image.js';
import { ImageDecodeError, channelsToRgb, checkSupportedFormat } from './image-decode.js';

/** Decodes JPEG/PNG bytes or a Blob in a browser/worker. `source` names it in errors. */
export async function decodeImageBrowser(input: Blob | Uint8Array | ArrayBuffer, source = '<blob>'): Promise<RgbImage> {
  let blob: Blob;
  if (input instanceof Blob) {
    blob = input;
    checkSupportedFormat(new Uint8Array(await input.slice(0, 16).arrayBuffer()), source);
  } else {
    const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
    checkSupportedFormat(bytes, source);
    // Copy into a fresh ArrayBuffer: Blob parts must not be views on SharedArrayBuffer.
    blob = new Blob([bytes.slice()]);
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'none' } as ImageBitmapOptions);
  } catch (e) {
    throw new ImageDecodeError(source, `corrupt or unreadable image data (${(e as Error).message})`, { cause: e });
  }
  try {
    const { width, height } = bitmap;
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new ImageDecodeError(source, 'OffscreenCanvas 2D context unavailable');
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, width, height, { colorSpace: 'srgb' }).data;
    return channelsToRgb(width, height, 4, rgba);
  } finally {
    bitmap.close();
  }
}

/** Fetches `url` and decodes it; errors name the URL. */
export async function loadImageBrowser(url: string): Promise<RgbImage> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new ImageDecodeError(url, `fetch failed (${(e as Error).message})`, { cause: e });
  }
  if (!res.ok) throw new ImageDecodeError(url, `HTTP ${res.status}`);
  return decodeImageBrowser(await res.blob(), url);
}
