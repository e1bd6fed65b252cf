// Node file layer for PyTorch checkpoints: open a .pt lazily and convert it to
// safetensors (used by `cliptune convert IN.pt OUT.safetensors`).
import { basename } from 'node:path';
import { openFileRandomAccess } from './file-node.js';
import { writeSafetensors } from './safetensors-node.js';
import { bytesToF32, FLOAT_DTYPES, type DType, type TensorData } from './dtypes.js';
import { openTorchCheckpoint, type TorchCheckpoint, type TorchCheckpointKind } from './torch-pt.js';

export type { TorchCheckpoint } from './torch-pt.js';

/** Opens a .pt checkpoint (torch.save zip or TorchScript archive); tensors are read on demand. */
export async function openTorchCheckpointFile(path: string): Promise<TorchCheckpoint> {
  return openTorchCheckpoint(await openFileRandomAccess(path), path);
}

export interface ConvertOptions {
  /**
   * 'keep' (default): every tensor keeps its stored dtype, so the output holds
   * exactly the checkpoint's bits (OpenAI's fp16 checkpoints stay F16, half the
   * size; the loaders widen to f32 exactly). 'f32': floating-point tensors
   * (F16, BF16, F64) are written as F32; integer tensors are kept.
   */
  dtype?: 'keep' | 'f32';
}

export interface ConvertResult {
  kind: TorchCheckpointKind;
  tensors: number;
  /** Output tensors per dtype. */
  dtypes: Partial<Record<DType, number>>;
}

/**
 * Converts a PyTorch checkpoint to safetensors, one tensor in memory at a
 * time, written atomically (see writeSafetensors). Tensor names are the
 * state-dict keys or, for TorchScript archives, the dotted attribute paths.
 */
export async function convertPtToSafetensors(inPath: string, outPath: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const mode = options.dtype ?? 'keep';
  if (mode !== 'keep' && mode !== 'f32') throw new Error(`convert: unknown dtype option ${JSON.stringify(mode)} (use "keep" or "f32")`);
  const src = await openTorchCheckpointFile(inPath);
  try {
    const dtypes: Partial<Record<DType, number>> = {};
    const entries = src.names.map((name) => {
      const info = src.info(name);
      const toF32 = mode === 'f32' && FLOAT_DTYPES.includes(info.dtype) && info.dtype !== 'F32';
      const dtype: DType = toF32 ? 'F32' : info.dtype;
      dtypes[dtype] = (dtypes[dtype] ?? 0) + 1;
      const data = async (): Promise<TensorData> => {
        const bytes = await src.getBytes(name);
        return toF32 ? bytesToF32(bytes, info.dtype, `${inPath}: tensor "${name}"`) : bytes;
      };
      return [name, { dtype, shape: info.shape, data }] as const;
    });
    await writeSafetensors(outPath, entries, {
      format: 'pt',
      source: basename(inPath),
      source_kind: src.kind,
      converter: 'cliptune convert',
    });
    return { kind: src.kind, tensors: entries.length, dtypes };
  } finally {
    await src.close();
  }
}
