// Running the built CLI (`node dist/src/cli/main.js ...`) from tests, and the small files the CLI
// tests feed it: safetensors inputs cut from the golden fixtures, PNGs, a tiny tokenizer.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSafetensors, writeSafetensors } from '../../src/io/safetensors-node.js';
import { encodePng } from '../../src/data/world/png-node.js';
import { Rng } from '../../src/clip/rng.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const MAIN = join(ROOT, 'dist/src/cli/main.js');
export const GOLDEN = join(ROOT, 'test/fixtures/golden/tiny-vit');
export const PT = join(ROOT, 'test/fixtures/pt');
export const manifest = JSON.parse(readFileSync(join(GOLDEN, 'manifest.json'), 'utf8'));
/** The golden fixtures' tolerance for outputs (max |x - ref| / max |ref| per tensor). */
export const OUT_TOL = manifest.tolerances.outputs_and_intermediates_float32 as number;

// The environment of scripts/test.mjs (Dawn's GL backend needs these on headless machines).
const ENV: NodeJS.ProcessEnv = { ...process.env, EGL_PLATFORM: process.env.EGL_PLATFORM ?? 'surfaceless', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
delete ENV.CLIPTUNE_DEBUG;

export interface CliResult {
  code: number | null;
  out: string;
  /** stderr without Dawn's adapter notices. */
  err: string;
  ms: number;
}

/** Dawn prints adapter warnings (with indented detail lines) on stderr; they are not ours. */
function cleanStderr(s: string): string {
  const out: string[] = [];
  let inWarning = false;
  for (const line of s.split('\n')) {
    if (/^Warning: /.test(line)) {
      inWarning = true;
      continue;
    }
    if (inWarning && (/^\s/.test(line) || line === '')) continue;
    inWarning = false;
    out.push(line);
  }
  return out.join('\n');
}

/** Runs `node dist/src/cli/main.js ...args`. */
export function cli(...args: string[]): Promise<CliResult> {
  return runNode([MAIN, ...args]);
}

/** Runs `node ...args` in `cwd` (default: the repository root). */
export function runNode(args: string[], cwd = ROOT): Promise<CliResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { cwd, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out, err: cleanStderr(err), ms: performance.now() - t0 }));
  });
}

/** A fresh temporary folder, removed by the returned function. */
export function scratch(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `cliptune-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes named f32/i32 tensors as safetensors. */
export async function writeTensors(path: string, tensors: Record<string, { shape: number[]; data: Float32Array | Int32Array }>): Promise<void> {
  await writeSafetensors(
    path,
    Object.entries(tensors).map(([name, t]) => [name, { dtype: t.data instanceof Int32Array ? 'I32' : 'F32', shape: t.shape, data: t.data }] as const),
  );
}

/** All tensors of a safetensors file as f32 (ints widened), with shapes. */
export async function readTensors(path: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const f = await openSafetensors(path);
  try {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const n of f.names) {
      const info = f.info(n);
      const data = /^[IU]/.test(info.dtype) ? Float32Array.from(await f.getI32(n)) : await f.getF32(n);
      out.set(n, { shape: info.shape, data });
    }
    return out;
  } finally {
    await f.close();
  }
}

/** max |a - b| / max |b| (the golden fixtures' metric). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return den === 0 ? num : num / den;
}

/** A Hugging Face model folder of the golden tiny model: model.safetensors + config.json (+ files). */
export function hfFolder(dir: string, extra: Record<string, string> = {}): string {
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(GOLDEN, 'weights.hf.safetensors'), join(dir, 'model.safetensors'));
  copyFileSync(join(GOLDEN, 'config.json'), join(dir, 'config.json'));
  for (const [name, body] of Object.entries(extra)) writeFileSync(join(dir, name), body);
  return dir;
}

/**
 * A CLIP-format tokenizer (vocab.json + merges.txt) whose ids fit the golden tiny model's 512-token
 * vocabulary: single letters and '.', with and without the end-of-word mark, and start/end tokens at 510
 * and 511 as in the golden config. No merges, so every letter is a token: "red circle" is 10.
 */
export function tinyVocab(): Record<string, string> {
  const vocab: Record<string, number> = {};
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  [...letters].forEach((c, i) => {
    vocab[c] = 1 + i;
    vocab[`${c}</w>`] = 27 + i;
  });
  vocab['.'] = 53;
  vocab['.</w>'] = 54;
  vocab['<|startoftext|>'] = 510;
  vocab['<|endoftext|>'] = 511;
  return { 'vocab.json': JSON.stringify(vocab), 'merges.txt': '#version: 0.2\n' };
}

/** Deterministic noise-and-gradient PNGs of assorted sizes (the CLI resizes and crops them). */
export function writePngs(dir: string, n: number, seed = 'pngs'): string[] {
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(seed);
  const files: string[] = [];
  for (let k = 0; k < n; k++) {
    const width = 30 + 7 * k;
    const height = 41 - 3 * k;
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 3;
        data[i] = (x * 255) / width;
        data[i + 1] = (y * 255) / height;
        data[i + 2] = Math.floor(rng.uniform() * 256);
      }
    }
    const f = join(dir, `img${k}.png`);
    writeFileSync(f, encodePng({ width, height, data }));
    files.push(f);
  }
  return files;
}
