// Node implementation of RandomAccess on a file handle (positional reads, no
// whole-file buffering). Node-only; the core readers never import this.
import { open } from 'node:fs/promises';
import { checkRange, type RandomAccess } from './random-access.js';

// One read call is kept under 2 GiB, the most a single fs read accepts everywhere.
const MAX_CHUNK = 1 << 30;

export async function openFileRandomAccess(path: string): Promise<RandomAccess> {
  const fh = await open(path, 'r');
  let size: number;
  try {
    size = (await fh.stat()).size;
  } catch (e) {
    await fh.close();
    throw e;
  }
  let closed = false;
  return {
    size,
    async read(offset, length) {
      if (closed) throw new Error(`${path}: read after close`);
      checkRange(offset, length, size);
      // A fresh ArrayBuffer per read (not Buffer's shared pool) keeps typed views aligned.
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        // fs reads may return short counts; loop until the range is filled.
        const chunk = Math.min(length - done, MAX_CHUNK);
        const { bytesRead } = await fh.read(out, done, chunk, offset + done);
        if (bytesRead === 0) throw new Error(`${path}: unexpected end of file at byte ${offset + done} (file shrank while reading?)`);
        done += bytesRead;
      }
      return out;
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}
