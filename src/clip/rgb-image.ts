// The one in-memory image type of the preprocessing pipeline: 8-bit RGB, row-major,
// interleaved (R,G,B per pixel), no padding between rows. This is what PIL's
// `Image.convert('RGB')` holds, so every stage can be compared byte for byte with PIL.

export interface RgbImage {
  width: number;
  height: number;
  /** length = width * height * 3 */
  data: Uint8Array;
}

/** Throws unless `img` is a well-formed RgbImage (positive integer sizes, right byte count). */
export function assertRgbImage(img: RgbImage, what = 'image'): void {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`${what}: width and height must be positive integers, got ${width}x${height}`);
  }
  if (!(data instanceof Uint8Array) || data.length !== width * height * 3) {
    throw new RangeError(`${what}: expected ${width * height * 3} RGB bytes for ${width}x${height}, got ${data?.length}`);
  }
}

export function newRgbImage(width: number, height: number): RgbImage {
  return { width, height, data: new Uint8Array(width * height * 3) };
}
