// Input checks shared by `cliptune embed` and `cliptune zeroshot`. Everything a command can check
// without the GPU is checked before a model is loaded, and everything is checked before any output
// is written, so a bad input costs no compute and leaves nothing behind.
import { closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { checkSupportedFormat } from '../clip/image-decode.js';
import { openSafetensors } from '../io/safetensors-node.js';
import type { ClipModel } from '../clip/model.js';

/** A mistake in the command line itself (exit code 2, with the usage line). */
export class UsageError extends Error {}

/**
 * Runs a command's body and turns its errors into an exit code: a UsageError prints
 * "cliptune <command>: message" and the usage line (2); any other error the message (1), with the
 * stack when CLIPTUNE_DEBUG is set.
 */
export async function exitCodeOf(command: string, usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (e) {
    const isUsage = e instanceof UsageError;
    process.stderr.write(`cliptune ${command}: ${(e as Error).message}\n${isUsage ? usage.split('\n')[0] + '\n' : ''}`);
    if (process.env.CLIPTUNE_DEBUG) process.stderr.write(`${(e as Error).stack ?? ''}\n`);
    return isUsage ? 2 : 1;
  }
}

export const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png']);

/** Image files named on the command line, folders expanded (sorted by name). */
export function listImages(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    let st;
    try {
      st = statSync(a);
    } catch {
      throw new Error(`--images: ${a} does not exist`);
    }
    if (st.isDirectory()) {
      const files = readdirSync(a)
        .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
        .sort()
        .map((f) => join(a, f));
      if (!files.length) throw new Error(`--images: no .jpg/.jpeg/.png files in ${a}`);
      out.push(...files);
    } else out.push(a);
  }
  return out;
}

/**
 * Reads the first bytes of every image: an empty file, a text file or an unsupported format is
 * reported now, naming the file, rather than after the images before it were encoded. (A file
 * that is damaged further in still fails when decoded; nothing is written then either.)
 */
export function sniffImages(paths: readonly string[]): void {
  const head = new Uint8Array(16);
  for (const p of paths) {
    let n: number;
    let fd: number | undefined;
    try {
      fd = openSync(p, 'r');
      n = readSync(fd, head, 0, head.length, 0);
    } catch (e) {
      throw new Error(`cannot read image '${p}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    checkSupportedFormat(head.subarray(0, n), p);
  }
}

/** An output path must name a file in an existing folder (checked before any work). */
export function checkOutPath(out: string, what = '--out'): void {
  const dir = dirname(resolve(out));
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new Error(`${what}: folder ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new Error(`${what}: ${dir} is not a folder`);
  try {
    if (statSync(out).isDirectory()) throw new Error(`${what}: ${out} is a folder; give a file name`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** An input path must be an existing file. */
export function checkInputFile(path: string, what: string): void {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new Error(`${what}: ${path} does not exist`);
  }
  if (!st.isFile()) throw new Error(`${what}: ${path} is not a file`);
}

/** --heads N or --heads IMAGE,TEXT: attention heads when the weights' widths are not multiples of 64. */
export function parseHeads(v: string | undefined): { image?: number; text?: number } | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(',');
  const nums = parts.map((p) => (/^\d+$/.test(p.trim()) ? Number(p) : NaN));
  if (parts.length > 2 || nums.some((n) => !(n >= 1))) throw new UsageError(`--heads must be N or IMAGE,TEXT (positive integers), got ${JSON.stringify(v)}`);
  return { image: nums[0]!, text: nums[nums.length - 1]! };
}

/** pixel_values [B, 3, H, W] from a safetensors file (checked against the model later). */
export async function readPixels(path: string): Promise<{ data: Float32Array; shape: number[] }> {
  checkInputFile(path, '--pixels');
  const f = await openSafetensors(path);
  try {
    if (!f.names.includes('pixel_values')) throw new Error(`--pixels ${path}: no tensor "pixel_values" (has ${f.names.join(', ') || 'none'})`);
    const shape = f.info('pixel_values').shape;
    if (shape.length !== 4 || shape[1] !== 3) throw new Error(`--pixels ${path}: pixel_values has shape [${shape}], expected [B, 3, H, W]`);
    if (shape[0] === 0) throw new Error(`--pixels ${path}: pixel_values holds no images`);
    const data = await f.getF32('pixel_values');
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw new Error(`--pixels ${path}: pixel_values has a non-finite value at flat index ${i}`);
    }
    return { data, shape };
  } finally {
    await f.close();
  }
}

/** input_ids [N, L] from a safetensors file (checked against the model later). */
export async function readInputIds(path: string): Promise<{ ids: Int32Array; rows: number; length: number }> {
  checkInputFile(path, '--input-ids');
  const f = await openSafetensors(path);
  try {
    if (!f.names.includes('input_ids')) throw new Error(`--input-ids ${path}: no tensor "input_ids" (has ${f.names.join(', ') || 'none'})`);
    const info = f.info('input_ids');
    if (info.shape.length !== 2 || info.shape[0] === 0 || info.shape[1] === 0) {
      throw new Error(`--input-ids ${path}: input_ids has shape [${info.shape}], expected [N, L] with N, L >= 1`);
    }
    if (!/^[IU]\d+$/.test(info.dtype)) throw new Error(`--input-ids ${path}: input_ids is ${info.dtype}, expected an integer dtype`);
    const ids = await f.getI32('input_ids');
    return { ids, rows: info.shape[0]!, length: info.shape[1]! };
  } finally {
    await f.close();
  }
}

/** Token ids fit the model: row length within the context, every id inside the vocabulary. */
export function checkIds(tokens: { ids: Int32Array; rows: number; length: number }, model: ClipModel, what: string): void {
  const { contextLength, vocabSize } = model.config.text;
  if (tokens.length > contextLength) throw new Error(`${what}: rows of ${tokens.length} ids exceed the model's context length ${contextLength}`);
  for (let i = 0; i < tokens.ids.length; i++) {
    const id = tokens.ids[i]!;
    if (id < 0 || id >= vocabSize) {
      throw new Error(`${what}: id ${id} (row ${Math.floor(i / tokens.length)}, position ${i % tokens.length}) is outside the model's vocabulary of ${vocabSize}`);
    }
  }
}

/** pixel_values fit the model's input resolution. */
export function checkPixels(shape: readonly number[], model: ClipModel, what: string): void {
  const res = model.config.image.resolution;
  if (shape[2] !== res || shape[3] !== res) throw new Error(`${what}: pixel_values has shape [${shape}], this model needs [B, 3, ${res}, ${res}]`);
}
