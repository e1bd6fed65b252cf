// Storage-buffer pool with size buckets. Buffer creation costs milliseconds on SwiftShader and in
// Chromium (runtime.md section 4), and a training step allocates the same sizes every step, so
// released buffers are kept per bucket and handed out again.

/** A buffer owned by the pool. `bytes` is the bucket size (>= the size asked for). */
export interface PooledBuffer {
  readonly buffer: GPUBuffer;
  readonly bytes: number;
  readonly id: number;
}

export interface PoolStats {
  /** Bytes in buffers currently handed out. */
  liveBytes: number;
  /** Bytes the pool holds on the device: live + free-listed. */
  allocatedBytes: number;
  peakLiveBytes: number;
  peakAllocatedBytes: number;
  liveBuffers: number;
  freeBuffers: number;
}

const MIN_BUCKET = 256;

/**
 * Bucket sizes are 2^k x {1, 1.25, 1.5, 1.75}: at most 25% waste (pure powers of two would waste up
 * to 50% on large weights, e.g. a 101 MB token embedding rounded to 128 MiB).
 */
export function bucketSize(bytes: number): number {
  if (bytes <= MIN_BUCKET) return MIN_BUCKET;
  const p = 2 ** Math.floor(Math.log2(bytes));
  for (const f of [1, 1.25, 1.5, 1.75, 2]) {
    const s = p * f;
    if (s >= bytes) return Math.ceil(s / 4) * 4;
  }
  return 2 * p;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private nextId = 1;
  private stats: PoolStats = { liveBytes: 0, allocatedBytes: 0, peakLiveBytes: 0, peakAllocatedBytes: 0, liveBuffers: 0, freeBuffers: 0 };

  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
    private readonly maxBindingSize: number = maxBufferSize,
  ) {}

  acquire(bytes: number, label: string): PooledBuffer {
    if (bytes > this.maxBufferSize) {
      throw new Error(`${label}: needs a ${bytes}-byte buffer, over this device's maxBufferSize ${this.maxBufferSize}`);
    }
    // Never round a buffer that fits one storage binding up past the binding limit: ops bind whole
    // buffers, and only tensors that are themselves over the limit are bound in windows.
    let size = bucketSize(bytes);
    if (size > this.maxBindingSize && bytes <= this.maxBindingSize) size = Math.ceil(bytes / 4) * 4;
    size = Math.min(size, Math.max(bytes, this.maxBufferSize - (this.maxBufferSize % 4)));
    const list = this.free.get(size);
    let buffer = list?.pop();
    if (buffer) {
      this.stats.freeBuffers--;
    } else {
      buffer = this.device.createBuffer({
        size,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
        label,
      });
      this.stats.allocatedBytes += size;
      this.stats.peakAllocatedBytes = Math.max(this.stats.peakAllocatedBytes, this.stats.allocatedBytes);
    }
    this.stats.liveBytes += size;
    this.stats.liveBuffers++;
    this.stats.peakLiveBytes = Math.max(this.stats.peakLiveBytes, this.stats.liveBytes);
    return { buffer, bytes: size, id: this.nextId++ };
  }

  /**
   * Returns a buffer for reuse. Safe while commands reading it are still encoded but not submitted:
   * a later user either writes it with a dispatch in the same queue order, or uploads through
   * Gpu.write, which submits pending work first.
   */
  release(pb: PooledBuffer): void {
    let list = this.free.get(pb.bytes);
    if (!list) this.free.set(pb.bytes, (list = []));
    list.push(pb.buffer);
    this.stats.liveBytes -= pb.bytes;
    this.stats.liveBuffers--;
    this.stats.freeBuffers++;
  }

  /** Destroys every free-listed buffer (returns the bytes given back). */
  trim(): number {
    let freed = 0;
    for (const [size, list] of this.free) {
      for (const b of list) {
        b.destroy();
        freed += size;
      }
    }
    this.free.clear();
    this.stats.allocatedBytes -= freed;
    this.stats.freeBuffers = 0;
    return freed;
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }

  resetPeaks(): void {
    this.stats.peakLiveBytes = this.stats.liveBytes;
    this.stats.peakAllocatedBytes = this.stats.allocatedBytes;
  }
}
