// Positional reads from a file or a byte array. The checkpoint readers only ever
// ask for byte ranges, so a 600 MB checkpoint is never read whole or twice:
// the header (or zip directory) first, then each tensor's bytes when asked.
// Runtime-agnostic; the Node file implementation is in file-node.ts.

export interface RandomAccess {
  /** Total size in bytes. */
  readonly size: number;
  /**
   * Reads exactly `length` bytes at `offset` into a fresh Uint8Array (its own
   * ArrayBuffer, so typed views of it are aligned). Rejects if the range
   * leaves the file.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A RandomAccess over bytes already in memory (browsers, tests). Reads copy. */
export function bytesRandomAccess(bytes: Uint8Array): RandomAccess {
  return {
    size: bytes.byteLength,
    async read(offset, length) {
      checkRange(offset, length, bytes.byteLength);
      return bytes.slice(offset, offset + length);
    },
    async close() {},
  };
}

export function checkRange(offset: number, length: number, size: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new RangeError(`read of ${length} bytes at ${offset} is outside the ${size}-byte file`);
  }
}
