// Node file layer for safetensors: lazy reading through a file handle and
// atomic writing. The format logic lives in safetensors.ts.
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openFileRandomAccess } from './file-node.js';
import {
  openSafetensorsFrom, planSafetensors, tensorBytes,
  type SafeTensorFile, type TensorEntries, type WriteTensor,
} from './safetensors.js';

export type { SafeTensorFile, WriteTensor } from './safetensors.js';

/**
 * Opens a safetensors file: reads and validates the header now, each tensor's
 * bytes only when asked (positional reads, so a large file is never read whole).
 * Call `close()` when done.
 */
export async function openSafetensors(path: string): Promise<SafeTensorFile> {
  return openSafetensorsFrom(await openFileRandomAccess(path), path);
}

/**
 * Writes `tensors` (+ string metadata) to `path` atomically: the bytes go to
 * `path.tmp-<pid>-<random>`, which is fsynced and then renamed over `path`.
 * If anything throws (bad data, a lazy tensor that fails, a full disk), the
 * temporary file is removed and `path` is untouched: a crash never leaves a
 * truncated file under the final name. Lazy `data` functions are called one
 * tensor at a time, in file order, so a converter holds one tensor in memory.
 */
export async function writeSafetensors(
  path: string, tensors: TensorEntries<WriteTensor>, metadata?: Record<string, string>,
): Promise<void> {
  const plan = planSafetensors(tensors, metadata, path);
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  const fh = await open(tmp, 'wx');
  let ok = false;
  try {
    await writeAll(fh, plan.head);
    for (const p of plan.order) {
      const d = p.tensor.data;
      const data = typeof d === 'function' ? await d() : d;
      await writeAll(fh, tensorBytes(p.tensor, data, path, p.name));
    }
    await fh.sync();
    ok = true;
  } finally {
    await fh.close().catch(() => {});
    if (!ok) await unlink(tmp).catch(() => {});
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dirname(path));
}

async function writeAll(fh: import('node:fs/promises').FileHandle, bytes: Uint8Array): Promise<void> {
  const CHUNK = 1 << 30;
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(CHUNK, bytes.byteLength - done));
    done += bytesWritten;
  }
}

/** fsync the directory so the rename itself survives a power cut; best effort (not possible on every OS). */
async function syncDir(dir: string): Promise<void> {
  try {
    const d = await open(dir, 'r');
    try { await d.sync(); } finally { await d.close(); }
  } catch { /* e.g. Windows cannot open directories */ }
}
