// A small deterministic PRNG for data augmentation: xoshiro128** 1.1 (Blackman & Vigna,
// https://prng.di.unimi.it/xoshiro128starstar.c), seeded through splitmix32. Chosen because it
// needs only 32-bit integer ops (fast, exact in JS without BigInt), has a 128-bit state that is
// trivial to export for resuming a run, and passes BigCrush. It is *not* torch's generator: runs
// are reproducible within cliptune, not bit-for-bit with a PyTorch run.

/** splitmix32 step (Vigna's 32-bit variant of splitmix64), used only to expand seeds. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) >>> 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

export type RngState = readonly [number, number, number, number];

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** `seed`: any integer (taken modulo 2^32) or a string (hashed with FNV-1a). */
  constructor(seed: number | string = 0) {
    let s: number;
    if (typeof seed === 'string') {
      s = 0x811c9dc5;
      for (let i = 0; i < seed.length; i++) s = Math.imul(s ^ seed.charCodeAt(i), 0x01000193) >>> 0;
    } else {
      if (!Number.isFinite(seed)) throw new RangeError(`Rng seed must be finite, got ${seed}`);
      // Mix the high part too, so seeds that differ only above 2^32 still differ.
      s = ((Math.trunc(seed) >>> 0) ^ Math.imul(Math.trunc(seed / 4294967296) >>> 0, 0x9e3779b1)) >>> 0;
    }
    const st = { s };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    // The all-zero state is a fixed point; splitmix32 practically never yields it, but be safe.
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  /** The 128-bit state as four uint32s, JSON-safe; `Rng.fromState` resumes exactly here. */
  getState(): RngState {
    return [this.a, this.b, this.c, this.d];
  }

  setState(state: RngState): void {
    if (state.length !== 4 || state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
      throw new RangeError('Rng state must be four uint32 values');
    }
    if ((state[0] | state[1] | state[2] | state[3]) === 0) throw new RangeError('Rng state must not be all zero');
    [this.a, this.b, this.c, this.d] = state;
  }

  /** Next uint32 (xoshiro128**). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    this.a >>>= 0; this.b >>>= 0; this.c >>>= 0; this.d >>>= 0;
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform double in [lo, hi). */
  uniformRange(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Uniform integer in [lo, hi) (like torch.randint(lo, hi)); unbiased by rejection. */
  randint(lo: number, hi: number): number {
    const n = hi - lo;
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || n <= 0 || n > 0x100000000) {
      throw new RangeError(`randint: need integers lo < hi with hi - lo <= 2^32, got [${lo}, ${hi})`);
    }
    // Reject the top partial bucket of the 2^32 range.
    const limit = 0x100000000 - (0x100000000 % n);
    let x: number;
    do x = this.nextU32(); while (x >= limit);
    return lo + (x % n);
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    return this.uniform() < p;
  }

  /**
   * An independent child generator (e.g. one per data-loader worker or per epoch), derived
   * deterministically from this one; advances this generator by four draws.
   */
  fork(): Rng {
    // Four parent draws, each scrambled by the splitmix32 finaliser, become the child's state:
    // children of different draws (or different parents) start in unrelated places.
    const st: [number, number, number, number] = [0, 0, 0, 0];
    for (let i = 0; i < 4; i++) st[i] = splitmix32({ s: (this.nextU32() + Math.imul(i, 0x632be5ab)) >>> 0 });
    if ((st[0] | st[1] | st[2] | st[3]) === 0) st[0] = 1;
    return Rng.fromState(st);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
