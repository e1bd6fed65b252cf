import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { matmul, linear, setMatmulVariant, parseVariant, autoVariant, type MatmulVariant } from '../../src/ops/matmul.js';
import { planProduct } from '../../src/ops/matmul-plan.js';
import * as ref from '../ref/core.js';
import { checkOp, randArray, relErr } from '../helpers/parity.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { getGpu } from '../../src/gpu/index.js';
import { clearTape } from '../../src/autograd/tape.js';
import type { R } from '../ref/core.js';

// Every kernel, forced on this (CPU) adapter. The register-tiled kernel's code is generated from
// (TM, TN, WX, WY) by one generator, so the full matrix runs on small tiles that exercise every
// generator path (one or several vec4 groups per tile, 1-D and 2-D workgroups, both tile orders)
// and compile fast; the production tiles (the defaults measured fastest on llvmpipe, whose fully
// unrolled shaders take seconds each to JIT on llvmpipe) run every layout on fewer shapes. The
// workgroup-memory kernel runs the full matrix in a tiny shape (BK < K: several k tiles and
// barriers) and its GPU default on the production list.
const FULL = ['naive', 'reg:4x4:2x2:n', 'reg:8x8:2x4', 'shared:2x2:4x4:4'];
const PRODUCTION = ['reg:16x16:8x1', 'reg:8x16:8x1', 'reg:16x8:8x8', 'shared:4x4:16x16:16'];
const VARIANTS = [...FULL, ...PRODUCTION];
const TRANS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];
// [M, K, N]: sizes 1, primes, K or N not multiples of 4 (scalar paths and the K % 4 tail),
// aligned sizes (vec4 paths) that are not multiples of any tile, and a mix.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [1, 77, 3],
  [5, 3, 77],
  [17, 8, 36],
  [33, 20, 12],
  [20, 12, 9],
];

/** Reference of op(a) @ op(b) (+ bias) for stored operands. */
// Production tiles: every layout with aligned dims (vec4 paths, 4-k steps for NT/TT) and edge tiles
// in M and N; the scalar paths (K, N not multiples of 4) once, in NN (its backward runs NT and TN).
const PRODUCTION_SHAPES: [number, number, number][] = [[33, 20, 36]];
const PRODUCTION_SCALAR: [number, number, number] = [19, 13, 21];

function refMatmul(transA: boolean, transB: boolean) {
  return (a: R, b: R, bias?: R) => {
    const y = ref.matmul(transA ? ref.transpose(a) : a, transB ? ref.transpose(b) : b);
    return bias ? ref.add(y, bias) : y;
  };
}

function stored(M: number, K: number, N: number, transA: boolean, transB: boolean): [number[], number[]] {
  return [transA ? [K, M] : [M, K], transB ? [N, K] : [K, N]];
}

function tag(t: [boolean, boolean]): string {
  return `${t[0] ? 'T' : 'N'}${t[1] ? 'T' : 'N'}`;
}

async function withVariant<T>(v: string | MatmulVariant | null, fn: () => Promise<T>): Promise<T> {
  setMatmulVariant(v);
  try {
    return await fn();
  } finally {
    setMatmulVariant(null);
  }
}

for (const v of VARIANTS) {
  const shapes = FULL.includes(v) ? SHAPES : PRODUCTION_SHAPES;
  test(`${v}: every transpose combination x shapes, forward and backward`, async () => {
    await withVariant(v, async () => {
      for (const tr of TRANS) {
        const extra = !FULL.includes(v) && !tr[0] && !tr[1] ? [PRODUCTION_SCALAR] : [];
        for (const [M, K, N] of [...shapes, ...extra]) {
          const [sa, sb] = stored(M, K, N, tr[0], tr[1]);
          await checkOp({
            name: `${v} ${tag(tr)} M${M} K${K} N${N}`,
            inputs: [{ shape: sa }, { shape: sb }],
            gpu: (a, b) => matmul(a, b, { transA: tr[0], transB: tr[1] }),
            ref: refMatmul(tr[0], tr[1]),
            fdCoords: 6,
          });
        }
      }
    });
  });

  test(`${v}: batched, broadcast batch dims, fused bias`, async () => {
    await withVariant(v, async () => {
      for (const tr of FULL.includes(v) ? TRANS : TRANS.slice(1, 2)) {
        const cases: [number[], number[], number, number, number][] = [
          // [a batch, b batch, M, K, N]
          [[2, 3], [], 6, 12, 20], // a 2-D weight shared across the batch (folds into M / into K)
          [[3], [3], 5, 7, 9], // plain batched
          [[], [4], 9, 8, 5], // a broadcast: dA sums over the batch
          [[2, 1], [3], 3, 5, 4], // both broadcast: output [2,3], dA and dB both reduce
          [[1, 3], [2, 1], 4, 4, 8],
        ];
        for (const [ab, bb, M, K, N] of cases) {
          const [sa, sb] = stored(M, K, N, tr[0], tr[1]);
          await checkOp({
            name: `${v} ${tag(tr)} batch a[${ab}] b[${bb}] M${M} K${K} N${N} + bias`,
            inputs: [{ shape: [...ab, ...sa] }, { shape: [...bb, ...sb] }, { shape: [N] }],
            gpu: (a, b, bias) => matmul(a, b, { transA: tr[0], transB: tr[1], bias }),
            ref: refMatmul(tr[0], tr[1]),
            fdCoords: 4,
          });
        }
      }
    });
  });
}

test('linear: x [2,5,7] @ W[3,7]^T + b, and a frozen weight computes no dW', async () => {
  for (const v of [null, 'naive', 'shared:4x4:16x16:16']) {
    await withVariant(v, async () => {
      await checkOp({
        name: `linear ${v ?? 'auto'}`,
        inputs: [{ shape: [2, 5, 7] }, { shape: [3, 7] }, { shape: [3] }],
        gpu: (x, w, b) => linear(x, w, b),
        ref: (x, w, b) => ref.add(ref.matmul(x, ref.transpose(w)), b),
      });
    });
  }
  await checkOp({
    name: 'linear, only x needs a gradient',
    inputs: [{ shape: [3, 50, 64] }, { shape: [24, 64], grad: false }, { shape: [24], grad: false }],
    gpu: (x, w, b) => linear(x, w, b),
    ref: (x, w, b) => ref.add(ref.matmul(x, ref.transpose(w)), b),
    fdCoords: 4,
  });
  const gpu = await getGpu();
  const x = tensor(randArray(12, 3), [3, 4], 'f32', gpu).param();
  const w = tensor(randArray(20, 4), [5, 4], 'f32', gpu);
  const before = gpu.counters.dispatches;
  const y = linear(x, w);
  y.backward({ gradient: tensor(new Float32Array(15).fill(1), [3, 5], 'f32', gpu) });
  // forward + dX only (no dW product, no dBias).
  assert.is(gpu.counters.dispatches - before, 2);
  for (const t of [x, w, y]) t.dispose();
});

test('CLIP-sized linear layers: auto kernel, forward and backward', async () => {
  // [B*T, in] rows with in and out multiples of 4: the vec4 fast path with the batch folded into M,
  // and dW with the batch folded into K.
  await checkOp({
    name: 'linear 2x50x768 -> 96',
    inputs: [{ shape: [2, 50, 128] }, { shape: [96, 128] }, { shape: [96] }],
    gpu: (x, w, b) => linear(x, w, b),
    ref: (x, w, b) => ref.add(ref.matmul(x, ref.transpose(w)), b),
    fdCoords: 3,
  });
});

test('long K: forward within f32 accumulation error', async () => {
  // K = 6144 products of values in [-1, 1] accumulated in f32 by FMA chains. The rounding error of a
  // length-K sum is about eps * sqrt(K) * (typical |partial sum| ~ sqrt(K)/3) relative to outputs of
  // size ~sqrt(K)/3, i.e. ~eps * sqrt(K) = 6e-8 * 78 = 4.7e-6 for random rounding (the worst case,
  // eps * K, is 3.7e-4). Outputs here reach ~|ref| max, so 2e-5 (4x the random estimate) is the bound.
  for (const v of ['reg:16x16:8x1', 'shared:4x4:16x16:16', 'naive']) {
    await withVariant(v, async () => {
      await checkOp({
        name: `${v} K=6144`,
        inputs: [{ shape: [9, 6144] }, { shape: [6144, 12] }],
        gpu: (a, b) => matmul(a, b),
        ref: (a, b) => ref.matmul(a, b),
        fwdTol: 2e-5,
        fdCoords: 2,
      });
    });
  }
});

test('empty dims: M = 0 gives an empty output, K = 0 gives the bias', async () => {
  await checkOp({
    name: 'M = 0',
    inputs: [{ shape: [0, 5] }, { shape: [5, 3] }],
    gpu: (a, b) => matmul(a, b),
    ref: (a, b) => ref.matmul(a, b),
  });
  await checkOp({
    name: 'K = 0 with bias',
    inputs: [{ shape: [4, 0] }, { shape: [0, 6] }, { shape: [6] }],
    gpu: (a, b, bias) => matmul(a, b, { bias }),
    ref: refMatmul(false, false),
  });
});

test('more than 65535 workgroups: the grid splits over y', async () => {
  // reg 16x16 / (8,1): one tile per batch matrix, 70000 tiles.
  await withVariant('reg:16x16:8x1', async () => {
    await checkOp({
      name: 'reg 70000 batches',
      inputs: [{ shape: [70000, 1, 3] }, { shape: [70000, 3, 2] }],
      gpu: (a, b) => matmul(a, b),
      ref: (a, b) => ref.matmul(a, b),
      fdCoords: 3,
    });
  });
  // naive: 2100 x 2100 outputs / 64 per workgroup = 68907 workgroups.
  await withVariant('naive', async () => {
    await checkOp({
      name: 'naive 2100x1 @ 1x2100',
      inputs: [{ shape: [2100, 1] }, { shape: [1, 2100] }],
      gpu: (a, b) => matmul(a, b),
      ref: (a, b) => ref.matmul(a, b),
      fdCoords: 2,
    });
  });
});

test('determinism: repeated forward and backward are bit-identical', async () => {
  const gpu = await getGpu();
  for (const v of [null, 'shared:4x4:16x16:16']) {
    await withVariant(v, async () => {
      const run = async () => {
        const a = tensor(randArray(2 * 37 * 64, 11), [2, 37, 64], 'f32', gpu).param();
        const w = tensor(randArray(52 * 64, 12), [52, 64], 'f32', gpu).param();
        const b = tensor(randArray(52, 13), [52], 'f32', gpu).param();
        const y = linear(a, w, b);
        const g = tensor(randArray(2 * 37 * 52, 14), [2, 37, 52], 'f32', gpu);
        y.backward({ gradient: g });
        const out = [await y.read(), await a.grad!.read(), await w.grad!.read(), await b.grad!.read()];
        for (const t of [a, w, b, y, g]) t.dispose();
        return out.map((x) => new Uint32Array(x.buffer));
      };
      const r1 = await run();
      const r2 = await run();
      for (let i = 0; i < r1.length; i++) assert.equal(r1[i], r2[i], `${v ?? 'auto'}: output ${i} differs between runs`);
    });
  }
});

test('variants agree with each other', async () => {
  // The tiled kernels sum in a different order than the reference kernel; agreement within f32 error.
  const gpu = await getGpu();
  const a = tensor(randArray(45 * 64, 21), [45, 64], 'f32', gpu);
  const b = tensor(randArray(64 * 40, 22), [64, 40], 'f32', gpu);
  const outs: Float32Array[] = [];
  for (const v of VARIANTS) {
    const y = matmul(a, b, { variant: v });
    outs.push((await y.read()) as Float32Array);
    y.dispose();
  }
  for (let i = 1; i < outs.length; i++) assert.ok(relErr(outs[i]!, outs[0]!) < 1e-6, `${VARIANTS[i]} vs naive`);
  a.dispose();
  b.dispose();
});

test('bad shapes and variants throw before any dispatch', async () => {
  const gpu = await getGpu();
  const a = tensor(new Float32Array(12), [3, 4], 'f32', gpu);
  const b = tensor(new Float32Array(30), [5, 6], 'f32', gpu);
  const c = tensor(new Float32Array(24), [4, 6], 'f32', gpu);
  const v = tensor(new Float32Array(4), [4], 'f32', gpu);
  const i = tensor(new Int32Array(24), [4, 6], 'i32', gpu);
  const b3 = tensor(new Float32Array(2 * 4 * 6), [2, 4, 6], 'f32', gpu);
  const a3 = tensor(new Float32Array(3 * 3 * 4), [3, 3, 4], 'f32', gpu);
  const live = gpu.pool.snapshot().liveBytes;
  const before = gpu.counters.dispatches;
  assert.throws(() => matmul(a, b), /matmul: a tensor#\d+ f32\[3,4\] and b tensor#\d+ f32\[5,6\]: inner dims 4 vs 5/);
  assert.throws(() => matmul(a, c, { transA: true }), /inner dims 3 vs 4/);
  assert.throws(() => matmul(a, v), /at least 2 dims/);
  assert.throws(() => matmul(a, i), /b tensor#\d+ i32\[4,6\] must be f32/);
  assert.throws(() => matmul(a3, b3), /batch dims.*do not broadcast/);
  assert.throws(() => matmul(a, c, { bias: v }), /bias tensor#\d+ f32\[4\] must be \[6\]/);
  assert.throws(() => linear(a, b), /linear: input tensor#\d+ f32\[3,4\] does not end in 6/);
  assert.throws(() => matmul(a, c, { variant: 'reg:6x4:8x1' }), /multiples of 4/);
  assert.throws(() => matmul(a, c, { variant: 'reg:4x4:64x64' }), /4096 invocations per workgroup, over this device's maxComputeInvocationsPerWorkgroup/);
  assert.throws(() => matmul(a, c, { variant: 'shared:8x8:16x16:64' }), /bytes of workgroup memory, over this device's maxComputeWorkgroupStorageSize/);
  assert.throws(() => parseVariant('tiled:4'), /expected naive, reg/);
  assert.is(gpu.counters.dispatches, before, 'no dispatch');
  assert.is(gpu.pool.snapshot().liveBytes, live, 'no output allocated');
  a.dispose();
  assert.throws(() => matmul(a, c), /matmul: tensor#\d+ f32\[3,4\] was disposed/);
  for (const t of [b, c, v, i, b3, a3]) t.dispose();
  clearTape();
});

test('plans: batch folds into M for a shared weight, into K for its gradient; broadcast dims merge', () => {
  const fwd = planProduct({ M: 50, N: 2304, K: 768, transP: false, transQ: true, batch: [32], pBatch: [32], qBatch: [], cBatch: [32], what: 't' });
  assert.equal([fwd.M, fwd.outer.shape, fwd.reduce.shape], [1600, [], []]);
  const dW = planProduct({ M: 2304, N: 768, K: 50, transP: true, transQ: false, batch: [32], pBatch: [32], qBatch: [32], cBatch: [], what: 't' });
  assert.equal([dW.K, dW.outer.shape, dW.reduce.shape], [1600, [], []]);
  const merged = planProduct({ M: 4, N: 4, K: 4, transP: false, transQ: false, batch: [2, 3, 5], pBatch: [2, 3, 5], qBatch: [2, 3, 5], cBatch: [2, 3, 5], what: 't' });
  assert.equal(merged.outer.shape, [30]);
  const bcast = planProduct({ M: 4, N: 4, K: 4, transP: true, transQ: false, batch: [2, 3], pBatch: [2, 1], qBatch: [3], cBatch: [2, 3], what: 't' });
  assert.equal([bcast.outer.shape, bcast.outer.sp, bcast.outer.sq], [[2, 3], [16, 0], [0, 16]]);
  // Alternating broadcast dims cannot merge: 5 strided dims exceed the kernel's 4.
  assert.throws(
    () => planProduct({ M: 2, N: 2, K: 2, transP: false, transQ: false, batch: [2, 3, 2, 3, 2], pBatch: [2, 1, 2, 1, 2], qBatch: [1, 3, 1, 3, 1], cBatch: [2, 3, 2, 3, 2], what: 'mm' }),
    /mm: batch dims \[2,3,2,3,2\] need more than 4 strided dims/,
  );
});

test('auto choice: register tiles on CPU adapters, workgroup memory on GPUs', async () => {
  const gpu = await getGpu();
  const plan = planProduct({ M: 1600, N: 2304, K: 768, transP: false, transQ: true, batch: [], pBatch: [], qBatch: [], cBatch: [], what: 't' });
  assert.is(autoVariant(gpu, plan).kind, gpu.isSoftware ? 'reg' : 'shared');
});

test.run();
