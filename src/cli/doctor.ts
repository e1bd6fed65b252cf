// `cliptune doctor`: what WebGPU adapter this machine gives us, whether our kernels compute correct
// results on it, and how fast a matmul runs. The first thing to run on a new machine.
import { parseArgs } from 'node:util';
import { createGpu, type Gpu } from '../gpu/index.js';
import { tensor } from '../tensor/tensor.js';
import * as ew from '../ops/elementwise.js';
import { matmul } from '../ops/matmul.js';

const USAGE = `usage: cliptune doctor [--backend NAME] [--json]

Prints the WebGPU adapter (name, backend, feature level, limits, features), runs a kernel
self-test against CPU results, and a short matmul benchmark.
  --backend NAME   Node only: Dawn backend (vulkan, opengles, metal, d3d12); env CLIPTUNE_BACKEND
  --json           one JSON object instead of text
`;

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

async function selfTest(gpu: Gpu): Promise<Check[]> {
  const checks: Check[] = [];
  const n = 1000;
  const a = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  const b = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.5));
  const ta = tensor(a, [n], 'f32', gpu);
  const tb = tensor(b, [n], 'f32', gpu);
  const cases: [string, (x: typeof ta, y: typeof tb) => typeof ta, (x: number, y: number) => number][] = [
    ['add', ew.add, (x, y) => x + y],
    ['mul', ew.mul, (x, y) => x * y],
    ['exp', (x) => ew.exp(x), (x) => Math.exp(x)],
    ['quickGelu', (x) => ew.quickGelu(x), (x) => x / (1 + Math.exp(-1.702 * x))],
  ];
  for (const [name, op, ref] of cases) {
    const out = op(ta, tb);
    const v = (await out.read()) as Float32Array;
    out.dispose();
    let err = 0;
    for (let i = 0; i < n; i++) err = Math.max(err, Math.abs(v[i]! - ref(a[i]!, b[i]!)) / Math.max(1, Math.abs(ref(a[i]!, b[i]!))));
    checks.push({ name, ok: err < 1e-5, detail: `max rel err ${err.toExponential(2)}` });
  }
  ta.dispose();
  tb.dispose();
  // A matmul with a remainder in every dimension, against a float64 loop.
  const [m, k, n2] = [37, 29, 53];
  const x = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i * 0.37));
  const y = Float32Array.from({ length: k * n2 }, (_, i) => Math.cos(i * 0.11));
  const tx = tensor(x, [m, k], 'f32', gpu);
  const ty = tensor(y, [k, n2], 'f32', gpu);
  const tz = matmul(tx, ty);
  const z = (await tz.read()) as Float32Array;
  let err = 0;
  let scale = 0;
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n2; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) s += x[i * k + q]! * y[q * n2 + j]!;
      err = Math.max(err, Math.abs(z[i * n2 + j]! - s));
      scale = Math.max(scale, Math.abs(s));
    }
  checks.push({ name: 'matmul', ok: err / scale < 1e-5, detail: `max rel err ${(err / scale).toExponential(2)}` });
  for (const t of [tx, ty, tz]) t.dispose();
  return checks;
}

export async function doctorCommand(argv: string[]): Promise<number> {
  let values: { backend?: string; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, options: { backend: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    process.stderr.write(`cliptune doctor: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const t0 = performance.now();
  const gpu = await createGpu(values.backend ? { backend: values.backend } : {});
  const startMs = performance.now() - t0;
  const checks = await selfTest(gpu);
  const bench = await matmulBench(gpu);
  const report = {
    adapter: { ...gpu.info, kind: gpu.kind, software: gpu.isSoftware, startMs: Math.round(startMs) },
    limits: gpu.limits,
    features: [...gpu.features].sort(),
    selfTest: checks,
    matmul: bench,
  };
  const ok = checks.every((c) => c.ok);
  if (values.json) {
    process.stdout.write(JSON.stringify(report) + '\n');
  } else {
    const lines = [
      `adapter   ${gpu.info.device || gpu.info.description || '(unnamed)'} (${gpu.info.description || gpu.info.vendor})`,
      `kind      ${gpu.kind}${gpu.isSoftware ? ' (software: runs on the CPU)' : ''}, backend ${gpu.info.backend}, feature level ${gpu.info.featureLevel}, device ready in ${Math.round(startMs)} ms`,
      `features  ${report.features.join(', ') || '(none)'}`,
      'limits',
      ...Object.entries(gpu.limits).map(([k, v]) => `  ${k.padEnd(36)} ${v}`),
      'self-test',
      ...checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(12)} ${c.detail}`),
      'matmul benchmark (median of 5)',
      ...bench.map((b) => `  ${b.shape.padEnd(22)} ${b.gflops.toFixed(1)} GFLOP/s (${b.ms.toFixed(2)} ms)`),
    ];
    process.stdout.write(lines.join('\n') + '\n');
    if (!ok) process.stdout.write('\nSELF-TEST FAILED: results on this adapter are wrong; please report the output above.\n');
  }
  gpu.destroy();
  return ok ? 0 : 1;
}

interface BenchRow {
  shape: string;
  gflops: number;
  ms: number;
}

/** Times a few matmul shapes: encode one, wait, median of 5. */
async function matmulBench(gpu: Gpu): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const [M, K, N] of [
    [256, 256, 256],
    [512, 512, 512],
    [1600, 768, 2304],
  ] as const) {
    const a = tensor(new Float32Array(M * K).fill(0.01), [M, K], 'f32', gpu);
    const b = tensor(new Float32Array(K * N).fill(0.02), [K, N], 'f32', gpu);
    matmul(a, b).dispose();
    await gpu.sync();
    const times: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t = performance.now();
      matmul(a, b).dispose();
      await gpu.sync();
      times.push(performance.now() - t);
    }
    times.sort((x, y) => x - y);
    const ms = times[2]!;
    rows.push({ shape: `${M}x${K} @ ${K}x${N}`, gflops: (2 * M * N * K) / (ms * 1e6), ms });
    a.dispose();
    b.dispose();
  }
  return rows;
}
