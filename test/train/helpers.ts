// Shared fixtures for the training tests: a small random CLIP with the real vocabulary (so the
// real tokenizer works) saved as safetensors, a few-class world dataset on disk, and the CLI runner
// with what end-to-end tests read back from a run folder (log lines, checkpoint parameters).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomClipWeights } from '../../src/clip/configs.js';
import { clipTensorSpec, type ClipConfig } from '../../src/clip/checkpoint.js';
import { writeSafetensors } from '../../src/io/safetensors-node.js';
import { writeWorldDataset } from '../../src/data/world/write-node.js';
import { trainCommand, type TrainIo } from '../../src/cli/train.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';

/** 32x32 images, patch 8, widths 64, two layers per tower, the full 49408-token vocabulary. */
export const TINY_CONFIG: ClipConfig = {
  embedDim: 32,
  image: { resolution: 32, patchSize: 8, width: 64, layers: 2, heads: 1, mlpHidden: 256, eps: 1e-5 },
  text: { contextLength: 77, vocabSize: 49408, width: 64, layers: 2, heads: 1, mlpHidden: 256, eps: 1e-5 },
  activation: 'quick_gelu',
  activationSource: 'option',
};

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `cliptune-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export async function writeTinyClip(path: string, seed = 0): Promise<void> {
  const w = randomClipWeights(TINY_CONFIG, seed);
  const entries = new Map(clipTensorSpec(TINY_CONFIG).map((s) => [s.name, { dtype: 'F32' as const, shape: s.shape, data: w.get(s.name)! }]));
  await writeSafetensors(path, entries);
}

/** World classes 0..classes-1 at 32x32. */
export async function writeWorld(out: string, classes = 4, counts = { train: 8, val: 2, test: 6 }): Promise<void> {
  await writeWorldDataset({ out, classes: Array.from({ length: classes }, (_, i) => i), counts, size: 32, seed: 0 });
}

/** Runs a command with stdout/stderr captured. */
export async function quiet<T>(fn: () => Promise<T>): Promise<{ value: T; out: string; err: string }> {
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  let out = '';
  let err = '';
  process.stdout.write = ((s: string | Uint8Array) => ((out += String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => ((err += String(s)), true)) as typeof process.stderr.write;
  try {
    return { value: await fn(), out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

/** Runs `cliptune train` with its output captured (`verbose`: keep the messages, which --quiet drops). */
export async function cliTrain(args: string[], cache: string, io: TrainIo = {}, verbose = false) {
  return quiet(() => trainCommand([...args, '--cache', cache, ...(verbose ? [] : ['--quiet'])], { progress: null, ...io }));
}

/** The records of a run's log.jsonl. */
export function logLines(run: string): Record<string, unknown>[] {
  return readFileSync(join(run, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

/** The learned tensors of a run's checkpoint ("param.<name>"), as plain arrays. */
export async function checkpointParams(run: string): Promise<Map<string, number[]>> {
  const ck = await loadCheckpoint(join(run, 'checkpoint.safetensors'));
  return new Map([...ck.tensors].filter(([k]) => k.startsWith('param.')).map(([k, v]) => [k, Array.from(v.data)]));
}
