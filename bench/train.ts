// Bench suite "train" (issue #5): training-step time of the issue's two workflow methods, run
// through their MethodSpec and the training loop's step (bench/lib/method-env.ts):
//   - CoOp on ViT-B/32 shapes (random weights), 10 world classes, batch 8, 224 px images written
//     to a temporary folder (the method's own loader and augmentation; the first batch is reused);
//   - ProLIP, 16 shots x 100 classes = 1600 cached pre-projection features of ViT-B/32's width,
//     full batch (seeded random features stand in for the cache; `--views 2` instead of 300: the
//     step reads one view, so the count changes nothing but memory).
// Per row: ms per step (median of repeats after a warm-up step), counted GFLOP per step, GFLOP/s and
// its ratio to a plain 1600x768 @ 768x2304 matmul timed right before the case.
// `npm run bench -- train [--json] [--repeats N] [--budget S] [--cases coop,prolip] [--config ViT-B/32]`.
import { getGpu, type Gpu } from '../src/gpu/index.js';
import type { ClipConfig } from '../src/clip/checkpoint.js';
import { METHODS } from '../src/adapt/registry.js';
import type { DefaultsContext, ImageItem, OptionValue } from '../src/adapt/method.js';
import { errorText, type BenchOptions, type CaseResult, type Stat } from './common.js';
import { imageTower, logitsFlops, sum, textTower, type StepFlops } from './lib/flops.js';
import { benchEnv, benchModel, checkLastStep, methodOptions, prepareMethod, timeVariants, worldFolder, type BenchModel } from './lib/method-env.js';
import {
  adapterLine, fmt, jsonLineWith, loadLine, markdownTable, mib, option, referenceMatmulRate, REFERENCE_MATMUL, statCell, type StepStat,
} from './lib/steps.js';

interface TrainCase {
  key: string;
  name: string;
  method: string;
  overrides: Record<string, OptionValue>;
  shots: number;
  classnames: string[];
  train: ImageItem[];
  flops: StepFlops;
  /** Images or feature rows per step. */
  perStep: number;
}

interface Row {
  c: TrainCase;
  time: StepStat | { error: string };
  matmul: Stat | { error: string };
  problem: string | null;
}

function isStat<T extends Stat>(r: T | { error: string }): r is T {
  return typeof (r as T).median === 'number';
}

/** ProLIP's step: x W (fwd), logits against frozen text (fwd), dW = xᵀ·dz and dz from the logits (no dX, no text gradient). */
function prolipFlops(c: ClipConfig, n: number, classes: number): StepFlops {
  const proj = 2 * n * c.image.width * c.embedDim;
  const logits = 2 * n * classes * c.embedDim;
  return { forward: proj + logits, backward: proj + logits };
}

/** CoOp's step: image tower forward without grad, text tower forward + backward to the context, logits. */
function coopFlops(m: BenchModel, classnames: readonly string[], batch: number, nCtx: number): StepFlops {
  const c = m.model.config;
  // Prompt length: "X" x nCtx + name + "." between SOT and EOT, as planCoopPrompts tokenizes it.
  const len = Math.max(...classnames.map((n) => m.tokenizer.encode(n.replace(/_/g, ' ')).length)) + nCtx + 3;
  return sum(imageTower(c, batch), textTower(c, classnames.length, len, { train: true }), logitsFlops(c, batch, classnames.length, true));
}

async function runCase(gpu: Gpu, m: BenchModel, c: TrainCase, opts: BenchOptions, budget: number): Promise<Row> {
  const matmul = await referenceMatmulRate(gpu, opts.repeats).catch((e: unknown) => ({ error: errorText(e) }));
  const row: Row = { c, time: { error: 'not run' }, matmul, problem: null };
  const spec = METHODS[c.method];
  if (!spec) return { ...row, time: { error: `method ${c.method} is not in the registry` } };
  const ctx: DefaultsContext = { shots: c.shots, datasetName: 'World', baseToNovel: false };
  let p = null;
  try {
    const env = benchEnv(gpu, m, c.classnames, c.train, c.shots);
    p = await prepareMethod(spec, methodOptions(spec, ctx, c.overrides), ctx, env);
    if (p.batchSize !== c.perStep) throw new Error(`${c.method}: ${p.batchSize} images per step, expected ${c.perStep}`);
    const s = p.stepper;
    const [t] = await timeVariants([s], { repeats: opts.repeats, budget });
    row.time = t ?? { error: 'not run' };
    row.problem = await checkLastStep(p);
  } catch (e) {
    row.time = { error: errorText(e) };
  } finally {
    p?.dispose();
  }
  return row;
}

function jsonRow(r: Row): string {
  const t = r.time;
  const flop = r.c.flops.forward + r.c.flops.backward;
  const gflops = isStat(t) ? flop / 1e9 / t.median : null;
  const p3 = (x: number) => Number(x.toPrecision(3));
  // Stat.cpu holds CPU seconds per step here, not a rate: reported as gflopPerCpuS instead.
  const ours: Stat | { error: string } = isStat(t) ? { ...t, median: t.median * 1e3, min: t.min * 1e3, max: t.max * 1e3, cpu: undefined } : t;
  const cr: CaseResult = { suite: 'train', case: r.c.name, unit: 'ms/step', ours, peers: {} };
  return jsonLineWith(cr, {
    stepsPerSec: isStat(t) ? p3(1 / t.median) : null,
    once: isStat(t) ? t.once : null,
    gflop: p3(flop / 1e9),
    gflops: gflops === null ? null : p3(gflops),
    gflopPerCpuS: isStat(t) && t.cpu ? p3(flop / 1e9 / t.cpu) : null,
    matmulGflops: isStat(r.matmul) ? p3(r.matmul.median) : null,
    vsMatmul: gflops !== null && isStat(r.matmul) ? p3(gflops / r.matmul.median) : null,
    ...(r.problem ? { problem: r.problem } : {}),
  });
}

export async function run(opts: BenchOptions): Promise<void> {
  const gpu = await getGpu();
  const budget = Number(option(opts.args, '--budget') ?? 120);
  const config = option(opts.args, '--config') ?? 'ViT-B/32';
  const filter = option(opts.args, '--cases')?.split(',');
  if (!opts.json) {
    console.log(`# train: CoOp and ProLIP training steps (method spec + the loop's step); median (min–max) of up to ${opts.repeats} samples after a warm-up step, ${budget} s budget per case`);
    console.log(adapterLine(gpu));
    console.log(loadLine('start'));
  }
  const t0 = performance.now();
  const m = await benchModel(gpu, config, opts.root);
  if (!opts.json) process.stderr.write(`  ${m.label}: ${mib(gpu.pool.snapshot().liveBytes)} MiB live in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  const cfg = m.model.config;
  const res = cfg.image.resolution;
  const cases: TrainCase[] = [];
  const folders: { dispose(): void }[] = [];
  try {
    if (!filter || filter.includes('coop')) {
      // 10 classes, 1 image each: one batch of 8 per epoch.
      const world = await worldFolder(10, 1, res);
      folders.push(world);
      const coopBatch = 8;
      const nCtx = METHODS.coop ? (methodOptions(METHODS.coop, { shots: 1, datasetName: 'World', baseToNovel: false }, {}).nCtx as number) : 16;
      cases.push({
        key: 'coop',
        name: `CoOp step, ${config}, 10 classes, batch ${coopBatch} (${res} px, ${nCtx} context vectors)`,
        method: 'coop',
        overrides: { batchSize: coopBatch },
        shots: 1,
        classnames: world.classnames,
        train: world.train,
        flops: coopFlops(m, world.classnames, coopBatch, nCtx),
        perStep: coopBatch,
      });
    }
    if (!filter || filter.includes('prolip')) {
      const shots = 16;
      const classes = 100;
      const classnames = Array.from({ length: classes }, (_, i) => `class ${i}`);
      const train = Array.from({ length: shots * classes }, (_, i) => ({ impath: `synthetic/${i}.png`, label: i % classes }));
      cases.push({
        key: 'prolip',
        name: `ProLIP step, ${config}, ${shots} shots x ${classes} classes, cached features (full batch ${shots * classes})`,
        method: 'prolip',
        overrides: { views: 2 },
        shots,
        classnames,
        train,
        flops: prolipFlops(cfg, shots * classes, classes),
        perStep: shots * classes,
      });
    }
    const rows: Row[] = [];
    for (const c of cases) {
      const row = await runCase(gpu, m, c, opts, budget);
      rows.push(row);
      if (opts.json) console.log(jsonRow(row));
      else process.stderr.write(`  ${c.name}: ${isStat(row.time) ? `${(row.time.median * 1e3).toFixed(0)} ms/step` : row.time.error}\n`);
      if (row.problem) console.log(`WARNING: ${c.name}: ${row.problem}`);
    }
    if (opts.json) return;
    const head = ['case', 'ms / step', 'steps/s', 'GFLOP / step', 'GFLOP/s', 'per CPU-s', 'matmul GFLOP/s', '÷ matmul'];
    console.log('');
    console.log(markdownTable(head, rows.map((r) => {
      const t = r.time;
      const flop = (r.c.flops.forward + r.c.flops.backward) / 1e9;
      const mm = isStat(r.matmul) ? statCell(r.matmul) : `n/a (${r.matmul.error.slice(0, 60)})`;
      if (!isStat(t)) return [r.c.name, `n/a (${t.error.slice(0, 100)})`, '–', fmt(flop), '–', '–', mm, '–'];
      const gf = flop / t.median;
      return [r.c.name, `${statCell(t, 1e3)}${t.calls > 1 ? ` [${t.calls} steps/sample]` : ''}`, fmt(1 / t.median), fmt(flop), fmt(gf), t.cpu ? fmt(flop / t.cpu) : '–', mm, isStat(r.matmul) ? fmt(gf / r.matmul.median) : '–'];
    })));
    console.log(
      `\nSteps run the method's step(), backward, afterBackward, the loop's on-device stats and the optimiser step; the first batch of epoch 0 is reused (image decoding and augmentation are not timed). ` +
        `GFLOP counts matrix products only (bench/lib/flops.ts): CoOp = image tower forward (no grad) + text tower forward and dX backward over the class prompts + logits; ` +
        `ProLIP = x·W and the logits, forward and backward (dW, no dX). matmul = one ${REFERENCE_MATMUL.name} matmul timed right before the case.`,
    );
    console.log(loadLine('end'));
  } finally {
    for (const f of folders) f.dispose();
    m.model.dispose();
  }
}
