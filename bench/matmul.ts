// Bench suite "matmul": GFLOP/s (2*M*N*K per call) of cliptune's matmul against tfjs-webgpu and
// gpu.js on the same adapter. `npm run bench -- matmul [--json] [--repeats N] [--no-peers]
// [--variant reg:16x16:8x1] [--cases 1024,b32] [--peers tfjs-webgpu,gpu.js] [--peer-max-call 3]`.
// The square and CLIP shapes are plain row-major A[M,K] @ B[K,N] for every library; the two
// "linear" rows are the real CLIP layer layout, x[32*T, in] @ W[out, in]^T (+ bias for cliptune).
import { cpus, loadavg } from 'node:os';
import { getGpu, type Gpu } from '../src/gpu/index.js';
import { tensor, type Tensor } from '../src/tensor/tensor.js';
import { matmul, linear, variantName, autoVariant, parseVariant } from '../src/ops/matmul.js';
import { planProduct } from '../src/ops/matmul-plan.js';
import { errorText, jsonLine, rate, table, timeCalls, type BenchOptions, type CaseResult, type PeerResult } from './common.js';
import { loadGpuJs, loadTfjs } from './peers.js';

interface Case {
  name: string;
  M: number;
  K: number;
  N: number;
  /** B stored [N, K] (nn.Linear weight). */
  transB?: boolean;
}

const CASES: Case[] = [
  { name: '256³', M: 256, K: 256, N: 256 },
  { name: '512³', M: 512, K: 512, N: 512 },
  { name: '1024³', M: 1024, K: 1024, N: 1024 },
  { name: '50x768 @ 768x2304', M: 50, K: 768, N: 2304 },
  { name: '77x512 @ 512x2048', M: 77, K: 512, N: 2048 },
  { name: 'b32: 1600x768 @ 768x2304', M: 1600, K: 768, N: 2304 },
  { name: 'b32: 2464x512 @ 512x2048', M: 2464, K: 512, N: 2048 },
  { name: 'linear b32: 1600x768 @ (2304x768)^T', M: 1600, K: 768, N: 2304, transB: true },
  { name: 'linear b32: 2464x512 @ (2048x512)^T', M: 2464, K: 512, N: 2048, transB: true },
];

const PEERS = ['tfjs-webgpu', 'gpu.js'] as const;

/**
 * A peer whose last measured rate predicts more than this many seconds per call skips the case
 * (keeps a full run near a minute): tfjs-webgpu is the comparison that matters and always fits on
 * an idle machine; gpu.js's naive kernel needs ~5 s per b32 call even then.
 */
const MAX_CALL_SECONDS: Record<string, number> = { 'tfjs-webgpu': 10, 'gpu.js': 3 };

function randomData(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Checks 64 entries of C against float64 dot products (a wrong kernel must not post a number). */
function spotCheck(c: Float32Array, a: Float32Array, b: Float32Array, cs: Case): string | null {
  let worst = 0;
  let scale = 0;
  for (let t = 0; t < 64; t++) {
    const i = (t * 7919) % cs.M;
    const j = (t * 104729) % cs.N;
    let s = 0;
    for (let k = 0; k < cs.K; k++) s += a[i * cs.K + k]! * (cs.transB ? b[j * cs.K + k]! : b[k * cs.N + j]!);
    worst = Math.max(worst, Math.abs(s - c[i * cs.N + j]!));
    scale = Math.max(scale, Math.abs(s));
  }
  return worst <= 1e-5 * Math.max(scale, 1) ? null : `wrong result (max error ${worst.toExponential(2)} at scale ${scale.toFixed(2)})`;
}

async function ours(gpu: Gpu, cs: Case, a: Float32Array, b: Float32Array, opts: BenchOptions, variant?: string): Promise<CaseResult['ours']> {
  const ta = tensor(a, [cs.M, cs.K], 'f32', gpu);
  const tb = tensor(b, cs.transB ? [cs.N, cs.K] : [cs.K, cs.N], 'f32', gpu);
  const bias: Tensor | undefined = cs.transB ? tensor(new Float32Array(cs.N), [cs.N], 'f32', gpu) : undefined;
  const run = () => (cs.transB ? linear(ta, tb, bias) : matmul(ta, tb, variant ? { variant } : {}));
  try {
    const check = run();
    const err = spotCheck((await check.read()) as Float32Array, a, b, cs);
    check.dispose();
    if (err) return { error: err };
    const s = await timeCalls(() => run().dispose(), () => gpu.sync(), { repeats: opts.repeats });
    return rate(s, (2 * cs.M * cs.N * cs.K) / 1e9);
  } catch (e) {
    return { error: errorText(e) };
  } finally {
    ta.dispose();
    tb.dispose();
    bias?.dispose();
  }
}

async function tfjsCase(gpu: Gpu, cs: Case, a: Float32Array, b: Float32Array, opts: BenchOptions): Promise<PeerResult> {
  try {
    const { tf, sync } = await loadTfjs(opts.root, gpu);
    const ta = tf.tensor2d(a, [cs.M, cs.K]);
    const tb = tf.tensor2d(b, cs.transB ? [cs.N, cs.K] : [cs.K, cs.N]);
    try {
      const check = tf.matMul(ta, tb, false, cs.transB ?? false);
      const err = spotCheck(await check.data(), a, b, cs);
      check.dispose();
      if (err) return { error: err };
      const s = await timeCalls(() => tf.matMul(ta, tb, false, cs.transB ?? false).dispose(), sync, { repeats: opts.repeats, caseBudget: 6 });
      return rate(s, (2 * cs.M * cs.N * cs.K) / 1e9);
    } finally {
      ta.dispose();
      tb.dispose();
    }
  } catch (e) {
    return { error: errorText(e) };
  }
}

async function gpujsCase(gpu: Gpu, cs: Case, a: Float32Array, b: Float32Array, opts: BenchOptions): Promise<PeerResult> {
  if (cs.transB) return { error: 'not run (its naive kernel is the same for either layout)' };
  try {
    const { GPU, input, device } = await loadGpuJs(opts.root, gpu);
    const g = new GPU({ mode: 'webgpu' });
    // Upload once through identity kernels so the timed calls read GPU-resident inputs.
    const upload = (w: number, h: number) =>
      g.createKernel(
        function (this: { thread: { x: number; y: number } }, x: number[][]) {
          return x[this.thread.y]![this.thread.x]!;
        },
        { output: [w, h], pipeline: true },
      );
    const ua = upload(cs.K, cs.M);
    const ub = upload(cs.N, cs.K);
    const ga = await ua(input(a, [cs.K, cs.M]));
    const gb = await ub(input(b, [cs.N, cs.K]));
    const mm = g.createKernel(
      function (this: { thread: { x: number; y: number }; constants: { K: number } }, x: number[][], y: number[][]) {
        let sum = 0;
        for (let k = 0; k < this.constants.K; k++) sum += x[this.thread.y]![k]! * y[k]![this.thread.x]!;
        return sum;
      },
      { output: [cs.N, cs.M], constants: { K: cs.K }, pipeline: true },
    );
    const dev = await device();
    try {
      const first = await mm(ga, gb);
      const rows = (await first.toArray()) as Float32Array[];
      const err = spotCheck(Float32Array.from(rows.flatMap((r) => Array.from(r))), a, b, cs);
      if (err) return { error: err };
      // Calls run synchronously up to queue.submit and resolve later; only the last one is awaited.
      let last: Promise<unknown> = Promise.resolve();
      const s = await timeCalls(
        () => {
          last = mm(ga, gb);
        },
        async () => {
          await last;
          await dev.queue.onSubmittedWorkDone();
        },
        { repeats: opts.repeats, caseBudget: 6 },
      );
      return rate(s, (2 * cs.M * cs.N * cs.K) / 1e9);
    } finally {
      g.destroy();
    }
  } catch (e) {
    return { error: errorText(e) };
  }
}

export async function run(opts: BenchOptions): Promise<void> {
  const gpu = await getGpu();
  const variant = option(opts.args, '--variant');
  if (variant) parseVariant(variant);
  const filter = option(opts.args, '--cases')?.split(',');
  const peerList = opts.peers ? (option(opts.args, '--peers')?.split(',') ?? [...PEERS]) : [];
  const cases = CASES.filter((c) => !filter || filter.some((f) => c.name.includes(f)));
  const maxCallOpt = option(opts.args, '--peer-max-call');
  const lastRate: Record<string, number> = {};
  if (!opts.json) {
    console.log(`# matmul, GFLOP/s = 2·M·N·K / time per call; median (min–max) of ${opts.repeats} samples`);
    console.log(`adapter: ${gpu.kind} (${gpu.info.description || gpu.info.device || gpu.info.vendor}), backend ${gpu.info.backend}, ${gpu.info.featureLevel}`);
    console.log(`load average at start: ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} CPUs`);
  }
  const results: CaseResult[] = [];
  for (const cs of cases) {
    const a = randomData(cs.M * cs.K, 1);
    const b = randomData(cs.K * cs.N, 2);
    const plan = planProduct({ M: cs.M, N: cs.N, K: cs.K, transP: false, transQ: cs.transB ?? false, batch: [], pBatch: [], qBatch: [], cBatch: [], what: cs.name });
    const kernel = variant ?? variantName(autoVariant(gpu, plan));
    const r: CaseResult = { suite: 'matmul', case: cs.name, unit: 'GFLOP/s', ours: await ours(gpu, cs, a, b, opts, variant), peers: {} };
    for (const p of peerList) {
      const gflop = (2 * cs.M * cs.N * cs.K) / 1e9;
      const estimate = lastRate[p] ? gflop / lastRate[p]! : 0;
      const maxCall = maxCallOpt ? Number(maxCallOpt) : (MAX_CALL_SECONDS[p] ?? 3);
      if (estimate > maxCall) {
        r.peers[p] = { error: `skipped: ~${estimate.toFixed(0)} s per call at its last rate (--peer-max-call ${maxCall})` };
        continue;
      }
      if (p === 'tfjs-webgpu') r.peers[p] = await tfjsCase(gpu, cs, a, b, opts);
      else if (p === 'gpu.js') r.peers[p] = await gpujsCase(gpu, cs, a, b, opts);
      else r.peers[p] = { error: `unknown peer (known: ${PEERS.join(', ')})` };
      const got = r.peers[p]!;
      if ('median' in got) lastRate[p] = got.median;
    }
    if (opts.json) console.log(jsonLine({ ...r, case: `${r.case}` }));
    else process.stderr.write(`  ${cs.name}: ${kernel} done\n`);
    results.push(r);
  }
  if (!opts.json) {
    console.log(`load average at end: ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    console.log('');
    console.log(table(results, peerList, peerList.includes('tfjs-webgpu') ? 'tfjs-webgpu' : undefined));
    const errs = results.flatMap((r) => Object.entries(r.peers).filter(([, v]) => 'error' in v).map(([k, v]) => `${k}: ${(v as { error: string }).error}`));
    const hint = errs.find((e) => /npm install --prefix bench/.test(e));
    if (hint) console.log(`\n${hint}`);
  }
}
