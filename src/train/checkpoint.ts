// Training checkpoints: the learned tensors, the optimiser's tensors and the whole run state
// (method, hyperparameters, base checkpoint hash, class names, seed, step, RNG and optimiser
// state) in one safetensors file, written atomically (temp file + fsync + rename), so a crash or
// Ctrl-C never leaves a truncated checkpoint and --resume continues to bit-identical weights.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import type { Tensor } from '../tensor/tensor.js';
import { openSafetensors, writeSafetensors } from '../io/safetensors-node.js';

export const CHECKPOINT_FORMAT = 'cliptune-run/1';

export interface RunState {
  method: string;
  /** Every option the run used (defaults included), as printed at its start. */
  options: Record<string, unknown>;
  /** sha256 of the base CLIP weights file. */
  baseHash: string;
  classnames: string[];
  seed: number;
  step: number;
  epoch: number;
  /** Anything else a method or the loop must restore exactly (RNG states, optimiser scalars, ...). */
  extra: Record<string, unknown>;
}

export interface Checkpoint {
  state: RunState;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

/** Reads the tensors back from the GPU and writes the checkpoint atomically. */
export async function saveCheckpoint(path: string, state: RunState, tensors: ReadonlyMap<string, Tensor>): Promise<void> {
  const entries = new Map<string, { dtype: 'F32'; shape: number[]; data: () => Promise<Float32Array> }>();
  for (const [name, t] of tensors) {
    if (t.dtype !== 'f32') throw new Error(`checkpoint: tensor "${name}" is ${t.dtype}; only f32 is saved`);
    entries.set(name, { dtype: 'F32', shape: [...t.shape], data: async () => (await t.read()) as Float32Array });
  }
  await writeSafetensors(path, entries, { format: CHECKPOINT_FORMAT, state: JSON.stringify(state) });
}

export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  if (!existsSync(path)) throw new Error(`checkpoint ${path} does not exist`);
  const f = await openSafetensors(path);
  try {
    const meta = f.metadata ?? {};
    if (meta.format !== CHECKPOINT_FORMAT || typeof meta.state !== 'string') {
      throw new Error(`${path} is not a cliptune run checkpoint (metadata format ${JSON.stringify(meta.format)}, expected ${CHECKPOINT_FORMAT})`);
    }
    let state: RunState;
    try {
      state = JSON.parse(meta.state) as RunState;
    } catch (e) {
      throw new Error(`${path}: run state is not valid JSON (${(e as Error).message})`);
    }
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const name of f.names) tensors.set(name, { shape: [...f.info(name).shape], data: await f.getF32(name) });
    return { state, tensors };
  } finally {
    f.close();
  }
}

const hashCache = new Map<string, string>();

/** sha256 of a file (cached per path, size and mtime). */
export async function fileSha256(path: string): Promise<string> {
  const st = statSync(path);
  const key = `${path}:${st.size}:${st.mtimeMs}`;
  const hit = hashCache.get(key);
  if (hit) return hit;
  const h = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('end', () => resolve())
      .on('error', reject);
  });
  const hex = h.digest('hex');
  hashCache.set(key, hex);
  return hex;
}
