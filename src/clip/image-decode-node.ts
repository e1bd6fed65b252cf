// Node image decoding with sharp (libvips; JPEG through mozjpeg, whose decoder is
// libjpeg-turbo's — the library Pillow links). Measured against Debian's Pillow 9.4: JPEG
// (baseline 4:2:0/4:2:2/4:4:4, progressive, greyscale, CMYK) and PNG (every colour type and
// bit depth we generate) decode to identical RGB bytes. Settings that make that true:
// - ignoreIcc: PIL does not colour-manage; sharp would otherwise convert embedded profiles.
// - autoOrient off (sharp's default): PIL's Image.open ignores EXIF orientation too.
// - failOn 'truncated': like PIL (without LOAD_TRUNCATED_IMAGES) a cut-off file is an error,
//   while libjpeg's recoverable warnings are not.
// - CMYK JPEG and 16-bit greyscale PNG take PIL's own conversions (see image-decode.ts).

import { readFile } from 'node:fs/promises';
import type { RgbImage } from './rgb-image.js';
import { ImageDecodeError, channelsToRgb, checkSupportedFormat, cmykToRgb, grey16ToRgbPil } from './image-decode.js';

type SharpFactory = typeof import('sharp').default;
let sharpModule: Promise<SharpFactory> | undefined;

// Imported lazily so that importing this module (e.g. from the CLI) costs nothing until an
// image is decoded, and a missing native binary is reported with the image at hand.
function loadSharp(): Promise<SharpFactory> {
  sharpModule ??= import('sharp').then((m) => m.default);
  return sharpModule;
}

/** Decodes JPEG/PNG bytes to PIL-equivalent RGB. `source` names the data in error messages. */
export async function decodeImageBuffer(bytes: Uint8Array, source = '<buffer>'): Promise<RgbImage> {
  checkSupportedFormat(bytes, source);
  let sharp: SharpFactory;
  try {
    sharp = await loadSharp();
  } catch (e) {
    throw new ImageDecodeError(source, `the 'sharp' package could not be loaded (${(e as Error).message})`, { cause: e });
  }
  const input = { ignoreIcc: true, failOn: 'truncated' as const };
  try {
    const meta = await sharp(bytes, input).metadata();
    if (meta.space === 'cmyk') {
      // Keep libvips from colour-converting: we want the raw (Adobe-uninverted) CMYK that PIL sees.
      const { data, info } = await sharp(bytes, input).pipelineColourspace('cmyk').toColourspace('cmyk').raw().toBuffer({ resolveWithObject: true });
      if (info.channels !== 4) throw new Error(`expected 4 CMYK channels, got ${info.channels}`);
      return cmykToRgb(info.width, info.height, data);
    }
    if (meta.depth === 'ushort' && meta.channels === 1) {
      const { data, info } = await sharp(bytes, input).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
      const grey = new Uint16Array(data.buffer, data.byteOffset, data.length >> 1);
      return grey16ToRgbPil(info.width, info.height, grey);
    }
    const { data, info } = await sharp(bytes, input).raw().toBuffer({ resolveWithObject: true });
    return channelsToRgb(info.width, info.height, info.channels, new Uint8Array(data.buffer, data.byteOffset, data.length));
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    throw new ImageDecodeError(source, `corrupt or unreadable image data (${(e as Error).message})`, { cause: e });
  }
}

/** Reads and decodes an image file; errors are ImageDecodeError naming `path`. */
export async function decodeImageFile(path: string): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new ImageDecodeError(path, `cannot read file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  return decodeImageBuffer(bytes, path);
}
