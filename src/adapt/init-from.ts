// Prompt initialisation from an earlier run (issue 6.6, composability): a prompt method can start
// from the context vectors another run learned (RPP-pretrained prompts as CoOp's initialisation,
// CoOp's as RPP's, ...). The run folder's checkpoint holds them as "param.<name>".
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { shapeStr } from '../tensor/tensor.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { RUN_FILES, readRunConfig } from '../train/run.js';
import { MethodOptionError } from './method.js';

export interface InitSource {
  /** The checkpoint file read. */
  path: string;
  /** The method that wrote it. */
  method: string;
  /** Its step. */
  step: number;
  /** Learned tensors by parameter name (without the "param." prefix). */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

/** The checkpoint of a run folder (or a checkpoint file given directly). */
export function initCheckpointPath(from: string): string {
  const p = resolve(from);
  if (!existsSync(p)) throw new MethodOptionError(`--init-from: ${p} does not exist`);
  return statSync(p).isDirectory() ? join(p, RUN_FILES.checkpoint) : p;
}

/** Reads a run's learned tensors for initialisation; errors name the file. */
export async function readInitSource(from: string): Promise<InitSource> {
  const path = initCheckpointPath(from);
  if (!existsSync(path)) throw new MethodOptionError(`--init-from: ${path} does not exist (is ${from} a cliptune run folder?)`);
  let ck;
  try {
    ck = await loadCheckpoint(path);
  } catch (e) {
    throw new MethodOptionError(`--init-from: ${(e as Error).message}`);
  }
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, v] of ck.tensors) if (k.startsWith('param.')) tensors.set(k.slice(6), v);
  return { path, method: ck.state.method, step: ck.state.step, tensors };
}

/** One tensor of the source, checked against the shape the receiving method needs. */
export function initTensor(src: InitSource, name: string, shape: readonly number[], what: string): Float32Array {
  const t = src.tensors.get(name);
  if (!t) {
    const have = [...src.tensors.keys()].map((k) => `param.${k}`).join(', ') || 'none';
    throw new MethodOptionError(`--init-from: ${src.path} (method ${src.method}) has no tensor param.${name} for ${what} (it holds: ${have})`);
  }
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new MethodOptionError(`--init-from: ${src.path}: tensor param.${name} has shape ${shapeStr(t.shape)}, but ${what} of this run is ${shapeStr(shape)}`);
  }
  return t.data;
}

/**
 * The number of context vectors of a run folder's method (its options.nCtx), or null when the
 * folder has no readable run.json or no such option: lets --init-from pick M when --n-ctx is not given.
 */
export function initRunCtxCount(from: string): number | null {
  try {
    const p = resolve(from);
    if (!existsSync(p) || !statSync(p).isDirectory()) return null;
    const n = readRunConfig(p).options.nCtx;
    return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}
