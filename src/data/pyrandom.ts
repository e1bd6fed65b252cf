// CPython's `random.Random` (the Mersenne Twister MT19937 of Modules/_randommodule.c plus the
// pure-Python methods of Lib/random.py that Dassl's data code calls), reimplemented so that a
// seeded run draws exactly the numbers Python draws. Written from the algorithms' descriptions;
// checked value-for-value against CPython 3.11.2 (test/data/fixtures/pyrandom.json).
//
// Version notes (from reading CPython's sources):
// - seed(int): init_by_array() over the absolute value's 32-bit words, least significant first
//   (seed 0 -> the single word 0). Unchanged since Python 3.2 (and in 2.x for ints).
// - random(): 53 bits from two draws, (a>>5)·2^26 + (b>>6), divided by 2^53. Unchanged.
// - getrandbits(k): k <= 32 -> one draw shifted right by 32-k; otherwise 32-bit words from the
//   least significant up, the last one keeping its top bits. k = 0 returns 0 from 3.9 on
//   (ValueError before).
// - _randbelow(n) = _randbelow_with_getrandbits: k = n.bit_length(), redraw getrandbits(k)
//   until < n. Used by randrange/randint/choice/shuffle/sample since 3.2.
// - sample(population, k): for a sequence population the selection rule (setsize threshold,
//   pool algorithm vs. rejection-set algorithm, and their draws) is the same in 3.2 through 3.13
//   (read in 3.4-era, 3.11 and current-main sources). 3.8-3.10 also accepted a *set* and
//   converted it to a tuple in iteration order first (3.9-3.10 with a DeprecationWarning); 3.11
//   removed that, so only sequences exist here. Python 2 used int(random()*n) instead and does
//   NOT match.
// - shuffle(x): Fisher-Yates from the end with _randbelow(i+1) (the `random=` argument, removed
//   in 3.11, is not supported). choice(seq): seq[_randbelow(len)]. randint(a, b) = a +
//   _randbelow(b-a+1). choices(population, k) (unweighted): population[floor(random()*n)].
//
// Integers: draws are exact in JS numbers for n <= 2^53; getrandbitsBig() gives any width.

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

/** Python's `int.bit_length()` for a non-negative safe integer. */
export function bitLength(n: number): number {
  if (n < 0x100000000) return 32 - Math.clz32(n);
  return 32 + bitLength(Math.floor(n / 0x100000000));
}

/** The 32-bit words CPython's random_seed() feeds to init_by_array() for an integer seed. */
export function seedWords(seed: number | bigint): number[] {
  let n: bigint;
  if (typeof seed === 'bigint') n = seed;
  else {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`PyRandom.seed: need an integer seed (a safe integer or a bigint), got ${seed}; Python hashes non-int seeds, which is not reproduced`);
    }
    n = BigInt(seed);
  }
  if (n < 0n) n = -n;
  const words: number[] = [];
  do {
    words.push(Number(n & 0xffffffffn));
    n >>= 32n;
  } while (n > 0n);
  return words;
}

/** A `random.Random` instance. Construct with a seed, as `random.Random(seed)` or `random.seed(seed)`. */
export class PyRandom {
  private readonly mt = new Uint32Array(N);
  private index = N + 1;

  constructor(seed: number | bigint = 0) {
    this.seed(seed);
  }

  /** `random.seed(a)` for an int `a` (negative seeds use the absolute value, as CPython does). */
  seed(seed: number | bigint): void {
    this.initByArray(seedWords(seed));
  }

  private initGenrand(s: number): void {
    const mt = this.mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1]!;
      mt[i] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + i) >>> 0;
    }
    this.index = N;
  }

  private initByArray(key: readonly number[]): void {
    const mt = this.mt;
    this.initGenrand(19650218);
    let i = 1, j = 0;
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const prev = mt[i - 1]!;
      mt[i] = ((mt[i]! ^ Math.imul(prev ^ (prev >>> 30), 1664525)) + key[j]! + j) >>> 0;
      i++; j++;
      if (i >= N) { mt[0] = mt[N - 1]!; i = 1; }
      if (j >= key.length) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1]!;
      mt[i] = ((mt[i]! ^ Math.imul(prev ^ (prev >>> 30), 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) { mt[0] = mt[N - 1]!; i = 1; }
    }
    mt[0] = 0x80000000; // MSB is 1, assuring a non-zero initial array
  }

  /** The next raw 32-bit output (genrand_uint32). */
  nextU32(): number {
    const mt = this.mt;
    if (this.index >= N) {
      let kk = 0;
      for (; kk < N - M; kk++) {
        const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK);
        mt[kk] = mt[kk + M]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      }
      for (; kk < N - 1; kk++) {
        const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK);
        mt[kk] = mt[kk + (M - N)]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      }
      const y = (mt[N - 1]! & UPPER_MASK) | (mt[0]! & LOWER_MASK);
      mt[N - 1] = mt[M - 1]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      this.index = 0;
    }
    let y = mt[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** `random.random()`: a float in [0, 1) with 53 random bits. */
  random(): number {
    const a = this.nextU32() >>> 5, b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** `random.getrandbits(k)` for 0 <= k <= 53, as a number (use getrandbitsBig for wider). */
  getrandbits(k: number): number {
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`getrandbits: number of bits must be a non-negative integer, got ${k}`);
    if (k === 0) return 0;
    if (k <= 32) return this.nextU32() >>> (32 - k);
    if (k > 53) throw new RangeError(`getrandbits(${k}): more than 53 bits do not fit a number; use getrandbitsBig`);
    const lo = this.nextU32();
    const hi = this.nextU32() >>> (64 - k);
    return hi * 0x100000000 + lo;
  }

  /** `random.getrandbits(k)` for any k >= 0, as a bigint. */
  getrandbitsBig(k: number): bigint {
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`getrandbits: number of bits must be a non-negative integer, got ${k}`);
    let out = 0n;
    let shift = 0n;
    for (let left = k; left > 0; left -= 32, shift += 32n) {
      let r = this.nextU32();
      if (left < 32) r >>>= 32 - left;
      out |= BigInt(r) << shift;
    }
    return out;
  }

  /** `Random._randbelow(n)` (= _randbelow_with_getrandbits): uniform integer in [0, n), n >= 1. */
  randbelow(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`randbelow: need a positive safe integer, got ${n}`);
    const k = bitLength(n);
    let r = this.getrandbits(k);
    while (r >= n) r = this.getrandbits(k);
    return r;
  }

  /** `random.randrange(start, stop, step)` (integers; `randrange(stop)` when stop is omitted). */
  randrange(start: number, stop?: number, step = 1): number {
    for (const [name, v] of [['start', start], ['stop', stop ?? 0], ['step', step]] as const) {
      if (!Number.isSafeInteger(v)) throw new RangeError(`randrange: ${name} must be an integer, got ${v}`);
    }
    if (stop === undefined) {
      if (start > 0) return this.randbelow(start);
      throw new RangeError('empty range for randrange()');
    }
    const width = stop - start;
    if (step === 1) {
      if (width > 0) return start + this.randbelow(width);
      throw new RangeError(`empty range in randrange(${start}, ${stop})`);
    }
    let n: number;
    if (step > 0) n = Math.floor((width + step - 1) / step);
    else if (step < 0) n = Math.floor((width + step + 1) / step);
    else throw new RangeError('zero step for randrange()');
    if (n <= 0) throw new RangeError(`empty range in randrange(${start}, ${stop}, ${step})`);
    return start + step * this.randbelow(n);
  }

  /** `random.randint(a, b)`: integer in [a, b], both ends included. */
  randint(a: number, b: number): number {
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b)) throw new RangeError(`randint: need integers, got ${a}, ${b}`);
    if (b < a) throw new RangeError(`empty range in randint(${a}, ${b})`);
    return a + this.randbelow(b - a + 1);
  }

  /** `random.uniform(a, b)`. */
  uniform(a: number, b: number): number {
    return a + (b - a) * this.random();
  }

  /** `random.choice(seq)`. */
  choice<T>(seq: ArrayLike<T>): T {
    if (seq.length === 0) throw new RangeError('Cannot choose from an empty sequence');
    return seq[this.randbelow(seq.length)]!;
  }

  /** `random.choices(population, k=k)` without weights: k draws with replacement. */
  choices<T>(population: ArrayLike<T>, k = 1): T[] {
    const n = population.length;
    if (!Number.isInteger(k)) throw new RangeError(`choices: k must be an integer, got ${k}`);
    if (n === 0 && k > 0) throw new RangeError('choices: cannot choose from an empty population');
    const out: T[] = [];
    for (let i = 0; i < k; i++) out.push(population[Math.floor(this.random() * n)]!);
    return out;
  }

  /** `random.shuffle(x)`: in place, returns x for convenience (Python returns None). */
  shuffle<T>(x: T[]): T[] {
    for (let i = x.length - 1; i > 0; i--) {
      const j = this.randbelow(i + 1);
      const t = x[i]!;
      x[i] = x[j]!;
      x[j] = t;
    }
    return x;
  }

  /**
   * `random.sample(population, k)`: k distinct positions, in selection order. Uses CPython's two
   * algorithms with its exact switch: a pool (partial Fisher-Yates) when n <= setsize, otherwise
   * rejection sampling against a set of chosen positions.
   */
  sample<T>(population: ArrayLike<T>, k: number): T[] {
    const n = population.length;
    if (!Number.isInteger(k) || k < 0 || k > n) {
      throw new RangeError(`Sample larger than population or is negative (k=${k}, population of ${n})`);
    }
    const result: T[] = new Array<T>(k);
    if (sampleUsesPool(n, k)) {
      const pool = Array.from(population);
      for (let i = 0; i < k; i++) {
        const j = this.randbelow(n - i);
        result[i] = pool[j]!;
        pool[j] = pool[n - i - 1]!; // move the non-selected item into the vacancy
      }
    } else {
      const selected = new Set<number>();
      for (let i = 0; i < k; i++) {
        let j = this.randbelow(n);
        while (selected.has(j)) j = this.randbelow(n);
        selected.add(j);
        result[i] = population[j]!;
      }
    }
    return result;
  }

  /**
   * `random.getstate()[1]`: the 624 state words followed by the position, as Python returns them
   * (JSON-safe). `setState` accepts the same (e.g. copied from a Python session).
   */
  getState(): number[] {
    return [...this.mt, this.index];
  }

  setState(state: readonly number[]): void {
    if (state.length !== N + 1) throw new RangeError(`PyRandom state must have ${N + 1} entries, got ${state.length}`);
    for (let i = 0; i < N; i++) {
      const v = state[i]!;
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`PyRandom state word ${i} is not a uint32: ${v}`);
    }
    const index = state[N]!;
    if (!Number.isInteger(index) || index < 0 || index > N) throw new RangeError(`PyRandom state index must be in [0, ${N}], got ${index}`);
    this.mt.set(state.slice(0, N));
    this.index = index;
  }
}

/**
 * Whether CPython's sample(population of n, k) takes the pool path: n <= setsize with
 * setsize = 21, plus 4**ceil(log(3k, 4)) when k > 5 (math.log(x, b) = log(x)/log(b)). The
 * float log cannot land on the wrong side of an integer for k < 10^13 (3k is never a power of 4).
 */
export function sampleUsesPool(n: number, k: number): boolean {
  let setsize = 21;
  if (k > 5) setsize += 4 ** Math.ceil(Math.log(k * 3) / Math.log(4));
  return n <= setsize;
}
