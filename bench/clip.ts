// Bench suite "clip": whole-model workloads on ViT-B/32 and ViT-B/16 shapes with random weights:
// image and text forward throughput, a CoOp text step over 100 classes (all at once and chunked),
// and a deep visual-prompt image step. Each row reports time per step, counted GFLOP/s, that rate
// over a plain matmul's rate measured in the same process, and device-memory peaks.
// `npm run bench -- clip [--json] [--repeats N] [--budget S] [--configs ViT-B/32,ViT-B/16]
// [--cases image,text,coop,vpt]`.
// Both configs share the text tower (width 512, 12 layers), so the text rows run once, on ViT-B/32.
import { getGpu, type Gpu } from '../src/gpu/index.js';
import { keep, tensor, tidy, type Tensor } from '../src/tensor/tensor.js';
import { noGrad } from '../src/autograd/tape.js';
import { ClipModel, type TokenIds } from '../src/clip/model.js';
import { CLIP_CONFIGS, randomClipWeights } from '../src/clip/configs.js';
import type { ClipConfig } from '../src/clip/checkpoint.js';
import { ChunkedEncoder } from '../src/clip/chunked.js';
import { loadClipTokenizer } from '../src/clip/tokenizer-node.js';
import { replaceRows } from '../src/nn/tokens.js';
import { slice } from '../src/ops/shape.js';
import { crossEntropy } from '../src/ops/losses.js';
import { errorText, type BenchOptions, type CaseResult, type Stat } from './common.js';
import { imageTower, logitsFlops, sum, textTower, type StepFlops } from './lib/flops.js';
import {
  adapterLine, fmt, loadLine, jsonLineWith, markdownTable, memoryProbe, mib, option, referenceMatmulRate, REFERENCE_MATMUL,
  relMaxError, statCell, timeSteps, uniform, type MemoryPeak, type StepStat,
} from './lib/steps.js';

const IMAGE_BATCH = 8;
const TEXT_BATCH = 32;
const CONTEXT = 16;
const CHUNK = 25;
const VISION_PROMPTS = 8;

// CIFAR-100's classes: 100 real names of 1-3 BPE tokens, so prompts have CoOp's usual length.
const CLASSES = (
  'apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can castle ' +
  'caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin elephant flatfish ' +
  'forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle ' +
  'mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine ' +
  'possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar ' +
  'sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale ' +
  'willow_tree wolf woman worm'
)
  .split(' ')
  .map((c) => c.replace(/_/g, ' '));

/** CoOp's initial prompt: "X X ... X classname." with one X per learned context vector. */
const coopPrompt = (name: string) => `${'X '.repeat(CONTEXT)}${name}.`;

interface Workload {
  /** Encodes one step; returns without waiting. */
  step(): void;
  /** After the timed steps: null if the last step's output looks right, else what is wrong. */
  check(): Promise<string | null>;
  dispose(): void;
}

interface ClipCase {
  /** Short name for --cases: image, text, coop, coop-chunked, vpt. */
  key: string;
  name: string;
  /** Throughput unit for forward rows ('images/s', 'prompts/s'); training rows report ms/step. */
  unit: 'images/s' | 'prompts/s' | 'ms/step';
  perStep: number;
  flops: StepFlops;
  /** Products actually run when more than the model's forward + backward (chunked recompute). */
  executed?: number;
  note?: string;
  make(): Workload;
}

interface Row {
  config: string;
  c: ClipCase;
  time: StepStat | { error: string };
  memory: MemoryPeak | null;
  problem: string | null;
  /** The reference matmul's rate, timed right before this case (the machine's load drifts). */
  matmul: Stat | { error: string };
}

function finite(a: Float32Array, what: string): string | null {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return `${what}: non-finite value at ${i}`;
  return null;
}

function tokenIds(rows: Int32Array[]): TokenIds {
  const length = rows[0]!.length;
  const ids = new Int32Array(rows.length * length);
  rows.forEach((r, i) => ids.set(r, i * length));
  return { ids, rows: rows.length, length };
}

/** Keeps the newest of a series of tensors, disposing the one it replaces. */
class Last {
  t: Tensor | null = null;
  set(t: Tensor | null): void {
    this.t?.dispose();
    this.t = t;
  }
}

function imageForward(model: ClipModel, gpu: Gpu): Workload {
  const px = tensor(uniform(IMAGE_BATCH * 3 * 224 * 224, 21, 2), [IMAGE_BATCH, 3, 224, 224], 'f32', gpu);
  const last = new Last();
  return {
    step() {
      const r = noGrad(() => model.encodeImage(px));
      r.pooled.dispose();
      last.set(r.embeds);
    },
    check: async () => finite(await last.t!.readF32(), 'image embeddings'),
    dispose() {
      last.set(null);
      px.dispose();
    },
  };
}

function textForward(model: ClipModel, tokens: TokenIds): Workload {
  const last = new Last();
  return {
    step() {
      const r = noGrad(() => model.encodeText(tokens));
      r.pooled.dispose();
      last.set(r.embeds);
    },
    check: async () => finite(await last.t!.readF32(), 'text embeddings'),
    dispose: () => last.set(null),
  };
}

/** CoOp's state: learned context, frozen prompt embeddings, cached image features and labels. */
interface Coop {
  ctx: Tensor;
  embeds: Tensor;
  eot: number[];
  imageFeatures: Tensor;
  labels: Tensor;
  dispose(): void;
}

function coopState(model: ClipModel, gpu: Gpu, tokens: TokenIds): Coop {
  const eot = ClipModel.eotPositions(tokens);
  const length = Math.max(...eot) + 1;
  const w = model.config.text.width;
  const ctx = tensor(uniform(CONTEXT * w, 31, 0.02 * Math.sqrt(3)), [CONTEXT, w], 'f32', gpu).param('ctx');
  // CoOp computes the prompts' token embeddings once (its token_prefix / token_suffix buffers).
  const embeds = keep(noGrad(() => model.tokenEmbeddings(tokens, length)));
  const imageFeatures = tensor(uniform(IMAGE_BATCH * model.config.embedDim, 32), [IMAGE_BATCH, model.config.embedDim], 'f32', gpu);
  const labels = tensor(Int32Array.from({ length: IMAGE_BATCH }, (_, i) => (i * 37) % tokens.rows), [IMAGE_BATCH], 'i32', gpu);
  return {
    ctx, embeds, eot, imageFeatures, labels,
    dispose() {
      for (const t of [ctx, embeds, imageFeatures, labels]) t.dispose();
    },
  };
}

/** Host copy of the last whole-batch CoOp gradient, to check the chunked one against. */
let wholeGrad: Float32Array | null = null;

function coopWhole(model: ClipModel, gpu: Gpu, tokens: TokenIds): Workload {
  const s = coopState(model, gpu, tokens);
  const loss = new Last();
  const grad = new Last();
  return {
    step() {
      const l = tidy(() => {
        const x = replaceRows(s.embeds, 1, s.ctx, 'CoOp context');
        const text = model.encodeTextEmbeddings(x, s.eot).embeds;
        return crossEntropy(model.logits(s.imageFeatures, text), s.labels);
      });
      l.backward();
      loss.set(l);
      grad.set(s.ctx.grad);
      s.ctx.grad = null;
    },
    async check() {
      wholeGrad = await grad.t!.readF32();
      return finite(await loss.t!.readF32(), 'loss') ?? finite(wholeGrad, 'context gradient');
    },
    dispose() {
      loss.set(null);
      grad.set(null);
      s.dispose();
    },
  };
}

function coopChunked(model: ClipModel, gpu: Gpu, tokens: TokenIds): Workload {
  const s = coopState(model, gpu, tokens);
  const enc = new ChunkedEncoder(
    (a, b) => model.encodeTextEmbeddings(replaceRows(slice(s.embeds, 0, a, b), 1, s.ctx, 'CoOp context'), s.eot.slice(a, b)).embeds,
    tokens.rows,
    CHUNK,
  );
  const loss = new Last();
  const grad = new Last();
  return {
    step() {
      const f = enc.forward();
      const l = tidy(() => crossEntropy(model.logits(s.imageFeatures, f), s.labels));
      l.backward();
      enc.backward();
      loss.set(l);
      grad.set(s.ctx.grad);
      s.ctx.grad = null;
    },
    async check() {
      const g = await grad.t!.readF32();
      const bad = finite(await loss.t!.readF32(), 'loss') ?? finite(g, 'context gradient');
      if (bad || !wholeGrad) return bad;
      const e = relMaxError(g, wholeGrad);
      return e <= 1e-4 ? null : `chunked context gradient differs from the whole-batch one: rel. max error ${e.toExponential(2)}`;
    },
    dispose() {
      loss.set(null);
      grad.set(null);
      s.dispose();
    },
  };
}

/** VPT-deep: VISION_PROMPTS tokens appended at layer 0 and replaced before every later layer. */
function visualPrompts(model: ClipModel, gpu: Gpu, classes: number): Workload {
  const c = model.config;
  const w = c.image.width;
  const prompts = Array.from({ length: c.image.layers }, (_, l) =>
    tensor(uniform(VISION_PROMPTS * w, 40 + l, 0.02 * Math.sqrt(3)), [VISION_PROMPTS, w], 'f32', gpu).param(`prompt${l}`),
  );
  const px = tensor(uniform(IMAGE_BATCH * 3 * 224 * 224, 22, 2), [IMAGE_BATCH, 3, 224, 224], 'f32', gpu);
  // Class text features are computed once and cached by prompt methods that tune the image side.
  const textFeatures = tensor(uniform(classes * c.embedDim, 33), [classes, c.embedDim], 'f32', gpu);
  const labels = tensor(Int32Array.from({ length: IMAGE_BATCH }, (_, i) => (i * 37) % classes), [IMAGE_BATCH], 'i32', gpu);
  const loss = new Last();
  return {
    step() {
      const l = tidy(() => {
        const img = model.encodeImage(px, { appendTokens: prompts[0]!, deepPrompts: (layer) => prompts[layer]! });
        return crossEntropy(model.logits(img.embeds, textFeatures), labels);
      });
      l.backward();
      loss.set(l);
      for (const p of prompts) {
        p.grad?.dispose();
        p.grad = null;
      }
    },
    check: async () => finite(await loss.t!.readF32(), 'loss'),
    dispose() {
      loss.set(null);
      for (const t of [...prompts, px, textFeatures, labels]) t.dispose();
    },
  };
}

function casesFor(cfgName: string, c: ClipConfig, model: ClipModel, gpu: Gpu, text: { batch: TokenIds; classes: TokenIds } | null): ClipCase[] {
  const out: ClipCase[] = [
    {
      key: 'image',
      name: `image forward, batch ${IMAGE_BATCH}`,
      unit: 'images/s',
      perStep: IMAGE_BATCH,
      flops: imageTower(c, IMAGE_BATCH),
      make: () => imageForward(model, gpu),
    },
  ];
  if (text) {
    const len = (t: TokenIds) => Math.max(...ClipModel.eotPositions(t)) + 1;
    const coop = sum(textTower(c, text.classes.rows, len(text.classes), { train: true }), logitsFlops(c, IMAGE_BATCH, text.classes.rows, true));
    out.push(
      {
        key: 'text',
        name: `text forward, ${TEXT_BATCH} prompts × ${len(text.batch)} tokens`,
        unit: 'prompts/s',
        perStep: TEXT_BATCH,
        flops: textTower(c, TEXT_BATCH, len(text.batch)),
        make: () => textForward(model, text.batch),
      },
      {
        key: 'coop',
        name: `CoOp text step, ${text.classes.rows} classes × ${len(text.classes)} tokens, whole`,
        unit: 'ms/step',
        perStep: 1,
        flops: coop,
        make: () => coopWhole(model, gpu, text.classes),
      },
      {
        key: 'coop-chunked',
        name: `CoOp text step, ${text.classes.rows} classes × ${len(text.classes)} tokens, chunks of ${CHUNK}`,
        unit: 'ms/step',
        perStep: 1,
        flops: coop,
        executed: coop.forward * 2 + coop.backward,
        note: 'recomputes the forward in backward',
        make: () => coopChunked(model, gpu, text.classes),
      },
    );
  }
  out.push({
    key: 'vpt',
    name: `VPT-deep image step, ${VISION_PROMPTS} prompts × ${c.image.layers} layers, batch ${IMAGE_BATCH}`,
    unit: 'ms/step',
    perStep: 1,
    flops: sum(imageTower(c, IMAGE_BATCH, { prompts: VISION_PROMPTS, train: true }), logitsFlops(c, IMAGE_BATCH, CLASSES.length, true)),
    make: () => visualPrompts(model, gpu, CLASSES.length),
  });
  // The text rows stand for both configs: they share the text tower.
  const shared = Object.keys(CLIP_CONFIGS).filter((k) => JSON.stringify(CLIP_CONFIGS[k]!.text) === JSON.stringify(c.text) && CLIP_CONFIGS[k]!.embedDim === c.embedDim);
  return out.map((x) => ({ ...x, name: `${/^(text|CoOp)/.test(x.name) ? shared.join(' = ') : cfgName} ${x.name}` }));
}

function isStat<T extends Stat>(r: T | { error: string } | null | undefined): r is T {
  return typeof (r as T | null | undefined)?.median === 'number';
}

async function runCase(gpu: Gpu, cfg: string, c: ClipCase, opts: BenchOptions, budget: number): Promise<Row> {
  const matmul = await referenceMatmulRate(gpu, opts.repeats).catch((e: unknown) => ({ error: errorText(e) }));
  const probe = memoryProbe(gpu);
  let work: Workload | null = null;
  const row: Row = { config: cfg, c, time: { error: 'not run' }, memory: null, problem: null, matmul };
  try {
    const w = (work = c.make());
    row.time = await timeSteps(() => w.step(), () => gpu.sync(), { repeats: opts.repeats, budget, onceOver: budget / 2 });
    row.memory = probe();
    row.problem = await w.check();
  } catch (e) {
    row.time = { error: errorText(e) };
  } finally {
    work?.dispose();
  }
  return row;
}

function jsonRow(r: Row): string {
  const t = r.time;
  const matmul = r.matmul;
  const ours: Stat | { error: string } = !isStat(t)
    ? t
    : r.c.unit === 'ms/step'
      ? { ...t, median: t.median * 1e3, min: t.min * 1e3, max: t.max * 1e3 }
      : { ...t, median: r.c.perStep / t.median, min: r.c.perStep / t.max, max: r.c.perStep / t.min };
  const flop = r.c.flops.forward + r.c.flops.backward;
  const gflops = isStat(t) ? flop / 1e9 / t.median : null;
  const cr: CaseResult = { suite: 'clip', case: r.c.name, unit: r.c.unit, ours, peers: {} };
  const p3 = (x: number) => Number(x.toPrecision(3));
  return jsonLineWith(cr, {
    msPerStep: isStat(t) ? p3(t.median * 1e3) : null,
    once: isStat(t) ? t.once : null,
    gflop: p3(flop / 1e9),
    ...(r.c.executed ? { executedGflop: p3(r.c.executed / 1e9) } : {}),
    gflops: gflops === null ? null : p3(gflops),
    gflopPerCpuS: isStat(t) && t.cpu ? p3(flop / 1e9 / t.cpu) : null,
    matmulGflops: isStat(matmul) ? p3(matmul.median) : null,
    matmulGflopPerCpuS: isStat(matmul) && matmul.cpu ? p3(matmul.cpu) : null,
    vsMatmul: gflops !== null && isStat(matmul) ? p3(gflops / matmul.median) : null,
    vsMatmulCpu: isStat(t) && t.cpu && isStat(matmul) && matmul.cpu ? p3(flop / 1e9 / t.cpu / matmul.cpu) : null,
    ...(r.memory ?? {}),
    ...(r.problem ? { problem: r.problem } : {}),
  });
}

export async function run(opts: BenchOptions): Promise<void> {
  const gpu = await getGpu();
  const budget = Number(option(opts.args, '--budget') ?? 60);
  const configs = option(opts.args, '--configs')?.split(',') ?? ['ViT-B/32', 'ViT-B/16'];
  const filter = option(opts.args, '--cases')?.split(',');
  for (const c of configs) if (!CLIP_CONFIGS[c]) throw new Error(`unknown CLIP config "${c}" (known: ${Object.keys(CLIP_CONFIGS).join(', ')})`);
  if (CLASSES.length !== 100) throw new Error(`class list has ${CLASSES.length} names`);
  if (!opts.json) {
    console.log(`# clip: random-weight CLIP workloads; median (min–max) of up to ${opts.repeats} steps after a warm-up step, ${budget} s budget per case`);
    console.log(adapterLine(gpu));
    console.log(loadLine('start'));
  }
  const tok = await loadClipTokenizer();
  const classes = tokenIds(tok.tokenize(CLASSES.map(coopPrompt)));
  const batch = tokenIds(tok.tokenize(CLASSES.slice(0, TEXT_BATCH).map(coopPrompt)));
  const rows: Row[] = [];
  let textDone = false;
  for (const cfgName of configs) {
    const cfg = CLIP_CONFIGS[cfgName]!;
    const t0 = performance.now();
    const model = ClipModel.fromTensors(gpu, cfg, randomClipWeights(cfg, 0));
    const weightBytes = gpu.pool.snapshot().liveBytes;
    if (!opts.json) process.stderr.write(`  ${cfgName}: random weights (${mib(weightBytes)} MiB live) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    const text = textDone ? null : { batch, classes };
    textDone = true;
    const cases = casesFor(cfgName, cfg, model, gpu, text).filter((c) => !filter || filter.includes(c.key));
    for (const c of cases) {
      const row = await runCase(gpu, cfgName, c, opts, budget);
      rows.push(row);
      if (opts.json) console.log(jsonRow(row));
      else process.stderr.write(`  ${c.name}: ${isStat(row.time) ? `${(row.time.median).toFixed(2)} s/step` : row.time.error}\n`);
      if (row.problem) console.log(`WARNING: ${c.name}: ${row.problem}`);
    }
    model.dispose();
    gpu.pool.trim();
  }
  if (opts.json) return;
  const head = ['case', 'ms / step', 'throughput', 'GFLOP / step', 'GFLOP/s', 'per CPU-s', 'matmul GFLOP/s', 'matmul per CPU-s', '÷ matmul (wall / CPU)', 'peak live MiB', 'peak alloc MiB'];
  const table = rows.map((r) => {
    const t = r.time;
    const flop = r.c.flops.forward + r.c.flops.backward;
    const gf = isStat(t) ? flop / 1e9 / t.median : null;
    const name = r.c.note ? `${r.c.name} (${r.c.note})` : r.c.name;
    const matmul = r.matmul;
    const mm = isStat(matmul) ? statCell(matmul) : `n/a (${matmul.error.slice(0, 60)})`;
    const mmCpu = isStat(matmul) && matmul.cpu ? fmt(matmul.cpu) : '–';
    if (!isStat(t)) return [name, `n/a (${t.error.slice(0, 100)})`, '–', fmt(flop / 1e9), '–', '–', mm, mmCpu, '–', '–', '–'];
    const perCpu = t.cpu ? flop / 1e9 / t.cpu : null;
    const throughput = r.c.unit === 'ms/step' ? `${fmt(1 / t.median)} steps/s` : `${fmt(r.c.perStep / t.median)} ${r.c.unit}`;
    return [
      name,
      statCell(t, 1e3),
      throughput,
      r.c.executed ? `${fmt(flop / 1e9)} (${fmt(r.c.executed / 1e9)} run)` : fmt(flop / 1e9),
      fmt(gf!),
      perCpu === null ? '–' : fmt(perCpu),
      mm,
      mmCpu,
      isStat(matmul) ? `${fmt(gf! / matmul.median)} / ${perCpu !== null && matmul.cpu ? fmt(perCpu / matmul.cpu) : '–'}` : '–',
      r.memory ? mib(r.memory.peakLiveBytes) : '–',
      r.memory ? mib(r.memory.peakAllocatedBytes) : '–',
    ];
  });
  console.log('');
  console.log(markdownTable(head, table));
  console.log(
    `\nGFLOP counts matrix products only (bench/lib/flops.ts); backward counts dX for frozen linear layers and both operands of the attention products. ` +
      `matmul = one ${REFERENCE_MATMUL.name} matmul timed right before the case; ÷ matmul = the case's rate over that rate (wall clock / per CPU-second of the process). ` +
      `Peaks include the model weights (live before each case: ${rows[0]?.memory ? mib(rows[0].memory.baseLiveBytes) : '?'} MiB).`,
  );
  console.log(loadLine('end'));
}
