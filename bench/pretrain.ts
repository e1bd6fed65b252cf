// Bench suite "pretrain": steps/s of the world CLIP pretraining recipe (src/train/pretrain.ts,
// PRETRAIN_DEFAULTS: batch 128, the shipped model shape), with the step's counted FLOPs ÷ time
// against the engine's best matmul rate at the step's own sizes, measured in the same process.
// `npm run bench -- pretrain [--json] [--repeats N] [--warmup W] [--batch B]`.
//
// It runs `pretrain()` itself, unchanged except for a loss readback every step (logEvery 1), and
// stops it after W + N + 1 steps (the `stopAfter` test hook; the stop writes a checkpoint into a
// temporary folder, which is then removed). The `shouldStop` callback, polled after every step is
// encoded, stamps the time. With a readback per step the loop runs one step ahead of the device:
// encoding step k waits for step k-2's loss, so in the steady state the interval between two stamps
// is one step's period (device work, host-side data generation and encoding overlapped as in a real
// run). The W warm-up steps (pipeline compilation) are left out; the median of the next N
// intervals is reported.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { getGpu } from '../src/gpu/index.js';
import { ClipModel } from '../src/clip/model.js';
import { loadClipTokenizer } from '../src/clip/tokenizer-node.js';
import type { ClipTokenizer } from '../src/clip/tokenizer.js';
import { PRETRAIN_DEFAULTS, TEXT_GROUPS, lengthGroups, pretrain, worldClipConfig, type PretrainOptions } from '../src/train/pretrain.js';
import { worldPairs } from '../src/data/world/generate.js';
import { worldTokenIds } from '../src/data/world/vocab.js';
import { median, type BenchOptions, type Stat } from './common.js';
import { pretrainStep, type StepFlops } from './lib/flops.js';
import { ceiling, type Ceiling, type MatmulShape } from './lib/matmul-ceiling.js';
import { adapterLine, fmt, loadLine, markdownTable, option, statCell } from './lib/steps.js';

/** The text tower's length groups of step `step`, as trainStep forms them (captions sorted by length). */
function stepGroups(o: PretrainOptions, tokenizer: ClipTokenizer, step: number): { rows: number; tokens: number }[] {
  const B = o.batch;
  const pairs = [...worldPairs({ seed: o.worldSeed, size: o.shape.imageSize, start: step * B, count: B, ...(o.domains ? { domains: o.domains } : {}) })];
  const rows = tokenizer.tokenize(pairs.map((p) => p.caption), { contextLength: 77 });
  const lengths = rows.map((r) => ClipModel.eotPositions({ ids: r, rows: 1, length: 77 })[0]! + 1).sort((a, b) => a - b);
  return lengthGroups(lengths, TEXT_GROUPS).map(([a, b]) => ({ rows: b - a, tokens: lengths[b - 1]! }));
}

/** The step's own matrix products at their sizes: forward (NT, as nn.Linear), and a weight gradient (TN). */
function stepShapes(o: PretrainOptions): MatmulShape[] {
  const s = o.shape;
  const rows = o.batch * ((s.imageSize / s.patchSize) ** 2 + 1);
  return [
    { M: rows, K: s.visionWidth, N: 4 * s.visionWidth, transB: true, name: `${rows}x${s.visionWidth} @ (${4 * s.visionWidth}x${s.visionWidth})ᵀ (image MLP fc)` },
    { M: rows, K: 4 * s.visionWidth, N: s.visionWidth, transB: true, name: `${rows}x${4 * s.visionWidth} @ (${s.visionWidth}x${4 * s.visionWidth})ᵀ (image MLP proj)` },
    { M: 4 * s.visionWidth, K: rows, N: s.visionWidth, transA: true, name: `(${rows}x${4 * s.visionWidth})ᵀ @ ${rows}x${s.visionWidth} (MLP proj dW)` },
  ];
}

interface Stamp {
  t: number;
  cpu: number;
}

export async function run(opts: BenchOptions): Promise<void> {
  const gpu = await getGpu();
  const warmup = Number(option(opts.args, '--warmup') ?? 2);
  const batch = Number(option(opts.args, '--batch') ?? PRETRAIN_DEFAULTS.batch);
  if (!Number.isInteger(warmup) || warmup < 1) throw new Error('--warmup needs an integer >= 1 (the first steps compile pipelines)');
  if (!Number.isInteger(batch) || batch < 2) throw new Error('--batch needs an integer >= 2');
  const steps = opts.repeats;
  const o: PretrainOptions = { ...PRETRAIN_DEFAULTS, batch, logEvery: 1, finalEvalPerClass: 0 };
  const say = (m: string) => {
    if (!opts.json) process.stderr.write(`  ${m}\n`);
  };
  const loadStart = loadLine('start');
  const loadStartAvg = loadavg().map((x) => Number(x.toFixed(2)));
  if (!opts.json) {
    console.log(`# pretrain: world CLIP pretraining steps (src/train/pretrain.ts, batch ${batch}); median of ${steps} step intervals after ${warmup} warm-up steps`);
    console.log(adapterLine(gpu));
    console.log(loadStart);
  }
  const tokenizer = await loadClipTokenizer();
  const config = worldClipConfig(o.shape, worldTokenIds(tokenizer).length);

  const shapes = stepShapes(o);
  say('matmul ceiling (before the steps)...');
  const before = await ceiling(gpu, shapes, 5);

  const out = mkdtempSync(join(tmpdir(), 'cliptune-bench-pretrain-'));
  const stamps: Stamp[] = [];
  const cpuNow = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  let result;
  const t0 = performance.now();
  try {
    say(`pretrain: ${warmup + steps + 1} steps of batch ${batch}...`);
    result = await pretrain(gpu, tokenizer, o, {
      out,
      stopAfter: warmup + steps + 1,
      shouldStop: () => {
        stamps.push({ t: performance.now(), cpu: cpuNow() });
        return false;
      },
    });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  const wallAll = (performance.now() - t0) / 1000;
  say('matmul ceiling (after the steps)...');
  const after = await ceiling(gpu, shapes, 5);

  // Interval k (stamp k-1 to stamp k, 1-based steps) ends with step k encoded after step k-2 finished.
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let k = warmup + 2; k <= warmup + steps + 1 && k - 1 < stamps.length; k++) {
    walls.push((stamps[k - 1]!.t - stamps[k - 2]!.t) / 1000);
    cpus.push(stamps[k - 1]!.cpu - stamps[k - 2]!.cpu);
  }
  if (!walls.length) throw new Error(`pretrain stopped after ${stamps.length} steps; no interval to time`);
  const time: Stat = { median: median(walls), min: Math.min(...walls), max: Math.max(...walls), samples: walls.length, calls: 1, cpu: median(cpus) };

  // FLOPs of the steps whose intervals were timed (their caption lengths differ).
  const perStep: StepFlops[] = [];
  for (let s = warmup; s < warmup + walls.length; s++) perStep.push(pretrainStep(config, batch, stepGroups(o, tokenizer, s)));
  const flop = perStep.reduce((a, f) => a + f.forward + f.backward, 0) / perStep.length;
  const fwd = perStep.reduce((a, f) => a + f.forward, 0) / perStep.length;
  const gflops = flop / 1e9 / time.median;
  const gflopsCpu = time.cpu ? flop / 1e9 / time.cpu : null;
  const best = (c: Ceiling) => c.best?.rate.median ?? NaN;
  const ceil = Math.max(best(before), best(after));
  const ceilBy = [before, after].flatMap((c) => (c.best ? [c.best] : [])).sort((a, b) => b.rate.median - a.rate.median)[0] ?? null;
  const loadEnd = loadLine('end');

  if (opts.json) {
    const p3 = (x: number | null) => (x === null || !Number.isFinite(x) ? null : Number(x.toPrecision(3)));
    console.log(JSON.stringify({
      suite: 'pretrain',
      case: `world CLIP pretraining step, batch ${batch}`,
      unit: 'steps/s',
      ours: p3(1 / time.median),
      msPerStep: p3(time.median * 1e3),
      range: [p3(time.min * 1e3), p3(time.max * 1e3)],
      samples: time.samples,
      imagesPerSec: p3(batch / time.median),
      gflopPerStep: p3(flop / 1e9),
      forwardGflopPerStep: p3(fwd / 1e9),
      gflops: p3(gflops),
      gflopPerCpuS: p3(gflopsCpu),
      matmulCeilingGflops: p3(ceil),
      matmulCeilingShape: ceilBy?.shape.name ?? null,
      vsMatmul: p3(gflops / ceil),
      matmul: [...before.shapes.map((s) => ({ when: 'before', shape: s.shape.name, gflops: 'median' in s.rate ? p3(s.rate.median) : null })), ...after.shapes.map((s) => ({ when: 'after', shape: s.shape.name, gflops: 'median' in s.rate ? p3(s.rate.median) : null }))],
      pretrainThroughput: result.throughput,
      loadAverage: { start: loadStartAvg, end: loadavg().map((x) => Number(x.toFixed(2))) },
    }));
    return;
  }
  console.log('');
  console.log(markdownTable(
    ['case', 'ms / step', 'steps/s', 'images/s', 'GFLOP / step (fwd)', 'GFLOP/s', 'per CPU-s', 'matmul ceiling GFLOP/s', '÷ ceiling'],
    [[
      `world CLIP pretraining step, batch ${batch}`,
      statCell(time, 1e3),
      fmt(1 / time.median),
      fmt(batch / time.median),
      `${fmt(flop / 1e9)} (${fmt(fwd / 1e9)})`,
      fmt(gflops),
      gflopsCpu === null ? '–' : fmt(gflopsCpu),
      Number.isFinite(ceil) ? fmt(ceil) : 'n/a',
      Number.isFinite(ceil) ? fmt(gflops / ceil) : '–',
    ]],
  ));
  console.log('');
  console.log(markdownTable(
    ['matmul (same process)', 'GFLOP/s before the steps', 'GFLOP/s after'],
    shapes.map((s, i) => {
      const c = (x: Ceiling) => {
        const r = x.shapes[i]!.rate;
        return 'median' in r ? statCell(r) : `n/a (${r.error.slice(0, 80)})`;
      };
      return [s.name, c(before), c(after)];
    }),
  ));
  const tp = result.throughput;
  console.log(
    `\nThe step is pretrain()'s own (PRETRAIN_DEFAULTS, loss read back every step), host-side world generation and tokenization included. ` +
      `GFLOP counts matrix products only (bench/lib/flops.ts pretrainStep): every weight trains, so linears cost 3x their forward, attention products 3x, ` +
      `the patch embedding 2x (no pixel gradient); the text tower counted per length group as run (mean over the timed steps). ` +
      `Ceiling = the fastest of the step's own matmul shapes, timed before and after the steps in this process. ` +
      `pretrain()'s own throughput figure over the same run: ${tp ? `${fmt(tp.stepsPerSec)} steps/s over ${tp.steps} steps (it excludes the final drain)` : 'n/a'}; whole run ${wallAll.toFixed(1)} s.`,
  );
  console.log(loadEnd);
}
