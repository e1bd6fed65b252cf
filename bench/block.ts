// Bench suite "block": one CLIP transformer block (pre-LN residual attention, width 768, 12 heads,
// MLP 3072, QuickGELU; ViT-B/32's image block: 50 tokens, batch 8), forward + backward with every
// weight and the input trainable, cliptune against the same block written with tfjs ops and
// tf.variableGrads on the same adapter in the same process.
// `npm run bench -- block [--json] [--repeats N] [--no-peers] [--cases fwd+bwd,fwd] [--budget S]`.
// Both sides get the same weights and input; the loss is sum(out * R) for a fixed random R. The
// forward output and the input gradient are compared once per run (relative max error <= 1e-3)
// so the two timings are of the same computation; a mismatch prints a warning line.
import { getGpu, type Gpu } from '../src/gpu/index.js';
import { tensor, tidy, type Tensor } from '../src/tensor/tensor.js';
import { residualBlock, type BlockWeights } from '../src/nn/transformer.js';
import { mul } from '../src/ops/elementwise.js';
import { sum } from '../src/ops/reduce.js';
import { noGrad } from '../src/autograd/tape.js';
import { errorText, type BenchOptions, type CaseResult, type Stat } from './common.js';
import { loadTfjs } from './peers.js';
import { blockBackward, blockForward, total, type BlockShape } from './lib/flops.js';
import { adapterLine, fmt, loadLine, jsonLineWith, markdownTable, option, relMaxError, statCell, timeStepsInterleaved, uniform, type StepStat } from './lib/steps.js';

const SHAPE: BlockShape = { batch: 8, tokens: 50, width: 768, mlpHidden: 3072 };
const HEADS = 12;
const EPS = 1e-5;
const TOLERANCE = 1e-3;
const PEER = 'tfjs-webgpu';

type WeightName = keyof BlockWeights;

interface HostBlock {
  shapes: Record<WeightName, number[]>;
  data: Record<WeightName, Float32Array>;
  x: Float32Array;
  r: Float32Array;
}

/** CLIP-like init (normal stds replaced by uniform of the same std), non-trivial norms and biases. */
function hostBlock(s: BlockShape): HostBlock {
  const w = s.width;
  const m = s.mlpHidden;
  const u = (n: number, seed: number, std: number) => uniform(n, seed, std * Math.sqrt(3));
  const around1 = (n: number, seed: number) => uniform(n, seed, 0.1).map((v) => 1 + v);
  const shapes: Record<WeightName, number[]> = {
    ln1w: [w], ln1b: [w], inW: [3 * w, w], inB: [3 * w], outW: [w, w], outB: [w],
    ln2w: [w], ln2b: [w], fcW: [m, w], fcB: [m], projW: [w, m], projB: [w],
  };
  const data: Record<WeightName, Float32Array> = {
    ln1w: around1(w, 1), ln1b: u(w, 2, 0.02), inW: u(3 * w * w, 3, w ** -0.5), inB: u(3 * w, 4, 0.02),
    outW: u(w * w, 5, w ** -0.5 / 4), outB: u(w, 6, 0.02), ln2w: around1(w, 7), ln2b: u(w, 8, 0.02),
    fcW: u(m * w, 9, (2 * w) ** -0.5), fcB: u(m, 10, 0.02), projW: u(w * m, 11, w ** -0.5 / 4), projB: u(w, 12, 0.02),
  };
  const n = s.batch * s.tokens * w;
  return { shapes, data, x: uniform(n, 13), r: uniform(n, 14) };
}

function transposeHost(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j]!;
  return out;
}

interface Side {
  /** Encodes one forward+backward (or forward) step; returns without waiting. */
  step(backward: boolean): void;
  sync(): Promise<void>;
  /** Forward output and input gradient, for the agreement check. */
  check(): Promise<{ out: Float32Array; dx: Float32Array }>;
  dispose(): void;
}

function oursSide(gpu: Gpu, h: HostBlock, s: BlockShape): Side {
  const weights = {} as Record<WeightName, Tensor>;
  for (const k of Object.keys(h.shapes) as WeightName[]) weights[k] = tensor(h.data[k], h.shapes[k], 'f32', gpu).param(k);
  const x = tensor(h.x, [s.batch, s.tokens, s.width], 'f32', gpu).param('x');
  const r = tensor(h.r, [s.batch, s.tokens, s.width], 'f32', gpu);
  const leaves = [...Object.values(weights), x];
  const opts = { heads: HEADS, causal: false, act: 'quick_gelu' as const, eps: EPS };
  const dropGrads = () => {
    for (const t of leaves) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  return {
    step(backward) {
      if (!backward) {
        noGrad(() => tidy(() => void residualBlock(x, weights, opts)));
        return;
      }
      tidy(() => sum(mul(residualBlock(x, weights, opts), r)).backward());
      dropGrads();
    },
    sync: () => gpu.sync(),
    async check() {
      const out = tidy(() => {
        const o = residualBlock(x, weights, opts);
        sum(mul(o, r)).backward();
        return o;
      });
      const res = { out: await out.readF32(), dx: await x.grad!.readF32() };
      out.dispose();
      dropGrads();
      return res;
    },
    dispose() {
      for (const t of leaves) t.dispose();
      r.dispose();
    },
  };
}

/* eslint-disable @typescript-eslint/no-explicit-any */
async function tfjsSide(gpu: Gpu, h: HostBlock, s: BlockShape, root: string): Promise<Side> {
  const { tf, sync } = await loadTfjs(root, gpu, { gradients: true });
  // Linear weights in tfjs's own layout, [in, out] as tf.layers.dense keeps its kernel: its
  // matMul with transposeB is ~1.7x slower than the plain one on this adapter, and a tfjs user
  // would not pay that.
  const v: Record<string, any> = {};
  for (const k of Object.keys(h.shapes) as WeightName[]) {
    const shape = h.shapes[k];
    const t = shape.length === 2 ? tf.tensor(transposeHost(h.data[k], shape[0]!, shape[1]!), [shape[1]!, shape[0]!]) : tf.tensor(h.data[k], shape);
    v[k] = tf.variable(t, true, `block_${k}`);
  }
  const x = tf.variable(tf.tensor(h.x, [s.batch * s.tokens, s.width]), true, 'block_x');
  const r = tf.tensor(h.r, [s.batch * s.tokens, s.width]);
  const vars = [...Object.values(v), x];
  const hd = s.width / HEADS;
  const layerNorm = (t: any, g: any, b: any) => {
    const { mean, variance } = tf.moments(t, -1, true);
    return tf.add(tf.mul(tf.div(tf.sub(t, mean), tf.sqrt(tf.add(variance, EPS))), g), b);
  };
  // nn.Linear: x @ Wᵀ + b, with Wᵀ stored.
  const linear = (t: any, wT: any, b: any) => tf.add(tf.matMul(t, wT), b);
  const heads = (t: any) => tf.transpose(tf.reshape(t, [s.batch, s.tokens, HEADS, hd]), [0, 2, 1, 3]);
  const block = () => {
    const qkv = linear(layerNorm(x, v.ln1w, v.ln1b), v.inW, v.inB);
    const [q, k, val] = tf.split(qkv, 3, 1);
    const scores = tf.matMul(tf.mul(heads(q), 1 / Math.sqrt(hd)), heads(k), false, true);
    const att = tf.matMul(tf.softmax(scores), heads(val));
    const a = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [s.batch * s.tokens, s.width]);
    const x1 = tf.add(x, linear(a, v.outW, v.outB));
    const f = linear(layerNorm(x1, v.ln2w, v.ln2b), v.fcW, v.fcB);
    const g = tf.mul(f, tf.sigmoid(tf.mul(f, 1.702)));
    return tf.add(x1, linear(g, v.projW, v.projB));
  };
  const loss = () => tf.sum(tf.mul(block(), r));
  return {
    step(backward) {
      tf.tidy(() => {
        if (backward) tf.variableGrads(loss, vars);
        else block();
      });
    },
    sync,
    async check() {
      const out = tf.tidy(() => block());
      const { value, grads } = tf.variableGrads(loss, vars);
      const res = { out: (await out.data()) as Float32Array, dx: (await grads[x.name].data()) as Float32Array };
      out.dispose();
      value.dispose();
      for (const g of Object.values(grads)) (g as any).dispose();
      return res;
    },
    dispose() {
      for (const t of vars) t.dispose();
      r.dispose();
    },
  };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

interface Row {
  name: string;
  backward: boolean;
  flop: number;
  ours: StepStat | { error: string };
  peer: StepStat | { error: string } | null;
}

function isStat<T extends Stat>(r: T | { error: string } | null | undefined): r is T {
  return typeof (r as T | null | undefined)?.median === 'number';
}

export async function run(opts: BenchOptions): Promise<void> {
  const gpu = await getGpu();
  const budget = Number(option(opts.args, '--budget') ?? 60);
  const filter = option(opts.args, '--cases')?.split(',');
  const s = SHAPE;
  const fwd = blockForward(s);
  const cases = [
    { name: 'fwd+bwd', backward: true, flop: total(fwd) + blockBackward(s, { input: true, weights: true }) },
    { name: 'fwd', backward: false, flop: total(fwd) },
  ].filter((c) => !filter || filter.includes(c.name));
  const title = `CLIP block W${s.width} H${HEADS} MLP${s.mlpHidden} QuickGELU, T${s.tokens} B${s.batch}`;
  if (!opts.json) {
    console.log(`# block: ${title}; all weights and the input trainable, loss = sum(out * R)`);
    console.log(adapterLine(gpu));
    console.log(loadLine('start'));
    console.log(`GFLOP counted (matmul products only): fwd ${fmt(total(fwd) / 1e9)}, fwd+bwd ${fmt(cases[0] ? cases[0].flop / 1e9 : (3 * total(fwd)) / 1e9)}; median (min–max) of up to ${opts.repeats} samples after a warm-up step, the libraries' samples interleaved, ${budget} s budget per case and library`);
  }
  const host = hostBlock(s);
  const ours = oursSide(gpu, host, s);
  let peer: Side | { error: string } | null = null;
  if (opts.peers) {
    try {
      peer = await tfjsSide(gpu, host, s, opts.root);
    } catch (e) {
      peer = { error: errorText(e) };
    }
  }
  // Same computation on both sides, checked before any number is posted.
  let agreement: Record<string, number> | null = null;
  if (peer && !('error' in peer)) {
    try {
      const [a, b] = [await ours.check(), await peer.check()];
      agreement = { out: relMaxError(a.out, b.out), dx: relMaxError(a.dx, b.dx) };
      const bad = Object.entries(agreement).filter(([, e]) => !(e <= TOLERANCE));
      const msg = `agreement with ${PEER}: forward output rel. max error ${agreement.out!.toExponential(2)}, input gradient ${agreement.dx!.toExponential(2)}`;
      if (bad.length) console.log(`WARNING: cliptune and ${PEER} disagree (> ${TOLERANCE}): ${msg}`);
      else if (!opts.json) console.log(msg);
    } catch (e) {
      console.log(`WARNING: agreement check failed: ${errorText(e)}`);
    }
  }
  const rows: Row[] = [];
  for (const c of cases) {
    const row: Row = { ...c, ours: { error: 'not run' }, peer: null };
    const sides: Side[] = [ours];
    if (peer && 'error' in peer) row.peer = peer;
    else if (peer) sides.push(peer);
    // Interleaved samples: on a loaded machine both libraries see the same load.
    const stats = await timeStepsInterleaved(
      sides.map((side) => ({ step: () => side.step(c.backward), sync: () => side.sync() })),
      { repeats: opts.repeats, budget },
    );
    row.ours = stats[0]!;
    if (stats[1]) row.peer = stats[1];
    rows.push(row);
    if (opts.json) {
      const ms = (x: StepStat | { error: string }): Stat | { error: string } => (isStat(x) ? { ...x, median: x.median * 1e3, min: x.min * 1e3, max: x.max * 1e3 } : x);
      const r: CaseResult = { suite: 'block', case: `${title} ${c.name}`, unit: 'ms', ours: ms(row.ours), peers: row.peer ? { [PEER]: ms(row.peer) } : {} };
      const gflops = (x: StepStat | { error: string } | null) => (isStat(x) ? Number((c.flop / 1e9 / x.median).toPrecision(4)) : null);
      const perCpu = (x: StepStat | { error: string } | null) => (isStat(x) && x.cpu ? Number((c.flop / 1e9 / x.cpu).toPrecision(4)) : null);
      console.log(
        jsonLineWith(r, {
          gflop: Number((c.flop / 1e9).toPrecision(4)),
          oursGflops: gflops(row.ours),
          peerGflops: row.peer ? { [PEER]: gflops(row.peer) } : {},
          oursGflopPerCpuS: perCpu(row.ours),
          peerGflopPerCpuS: row.peer ? { [PEER]: perCpu(row.peer) } : {},
          speedup: isStat(row.ours) && isStat(row.peer) ? Number((row.peer.median / row.ours.median).toPrecision(3)) : null,
          ...(agreement ? { agreement } : {}),
        }),
      );
    } else process.stderr.write(`  ${c.name} done\n`);
  }
  const cpuCell = (r: Row) => {
    const o = isStat(r.ours) && r.ours.cpu ? r.flop / 1e9 / r.ours.cpu : null;
    const p = isStat(r.peer) && r.peer.cpu ? r.flop / 1e9 / r.peer.cpu : null;
    return o === null ? '–' : p === null ? fmt(o) : `${fmt(o)} / ${fmt(p)} (${(o / p).toFixed(2)}x)`;
  };
  if (!opts.json) {
    const cell = (x: StepStat | { error: string } | null, f: (s: StepStat) => string) => (x === null ? 'not run' : isStat(x) ? f(x) : `n/a (${x.error.slice(0, 100)})`);
    const head = ['case', 'cliptune ms', `${PEER} ms`, 'cliptune GFLOP/s', `${PEER} GFLOP/s`, `${PEER} ms / cliptune ms`, `GFLOP per CPU-s: cliptune / ${PEER}`];
    const table = rows.map((r) => [
      r.name,
      cell(r.ours, (x) => statCell(x, 1e3)),
      cell(r.peer, (x) => statCell(x, 1e3)),
      cell(r.ours, (x) => fmt(r.flop / 1e9 / x.median)),
      cell(r.peer, (x) => fmt(r.flop / 1e9 / x.median)),
      isStat(r.ours) && isStat(r.peer) ? `${(r.peer.median / r.ours.median).toFixed(2)}x` : '–',
      cpuCell(r),
    ]);
    console.log('');
    console.log(markdownTable(head, table));
    if (peer && 'error' in peer) console.log(`\n${PEER}: ${peer.error}`);
    console.log(loadLine('end'));
  }
  ours.dispose();
  if (peer && !('error' in peer)) peer.dispose();
}
