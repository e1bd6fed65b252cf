// `cliptune demo` (what `npm start` runs): the whole product on the embedded world, no downloads.
// Generates world datasets, adapts the shipped world CLIP with every method under the base-to-novel
// protocol through the same code as `cliptune train` and `cliptune eval` (each run is a normal run
// folder), evaluates every run on a cross-domain target, computes IIMM on several world domains
// against the gain a linear probe gets there, prints a table with per-phase times and writes the
// HTML report. The settings are a demo preset (printed), not the official defaults.
import { parseArgs } from 'node:util';
import { cpus, loadavg } from 'node:os';
import { createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { METHODS } from '../adapt/registry.js';
import { harmonicMean, mean, meanStd } from '../data/metrics.js';
import { RUN_FILES, evalFileName, writeFileAtomic } from '../train/run.js';
import { openSafetensors } from '../io/safetensors-node.js';
import { DOMAINS, isDomain, type Domain } from '../data/world/attributes.js';
import { NUM_BASE } from '../data/world/classes.js';
import { SPLIT_FILE, writeWorldDataset, type SplitCounts } from '../data/world/write-node.js';
import { trainCommand } from './train.js';
import { evalCommand } from './eval.js';
import { Progress, formatSecs } from './progress.js';
import { DEMO_BATCH, DEMO_LR_FACTOR, DEMO_MAX_VIEWS, DEMO_METHODS, DEMO_CROP_MIN, DEMO_TEXT_DEEP_INIT, DEMO_VISION_INIT, VIT_B16_PATCHES, demoFlags, demoMethod, type DemoMethod } from './demo-methods.js';
import { writeReport } from '../train/report-html.js';
import { IIMM_FILE, iimmCommand } from './iimm.js';

export interface DemoOptions {
  methods: string[];
  seeds: number;
  /** Optimiser steps every trained method gets. */
  steps: number;
  /** Every trained method's learning rate is its official one times this. */
  lrFactor: number;
  shots: number;
  /** Images per class written for each split. */
  counts: SplitCounts;
  /** The base-to-novel domain. */
  domain: Domain;
  /** The cross-domain target. */
  target: Domain;
  /** Domains whose IIMM and linear-probe gain are measured (empty: no IIMM phase). */
  iimmDomains: Domain[];
  out: string;
  weights: string;
  report: boolean;
  quick: boolean;
}

const ALL_METHODS = DEMO_METHODS.map((m) => m.name);
/** Shots of the linear probes behind the IIMM fit (48 classes on every IIMM domain). */
const IIMM_MAX_SHOTS = 8;

export const FULL: Omit<DemoOptions, 'out' | 'weights' | 'methods'> = {
  seeds: 1,
  steps: 60,
  lrFactor: DEMO_LR_FACTOR,
  shots: 16,
  counts: { train: 32, val: 4, test: 16 },
  domain: 'sketch',
  target: 'plain',
  iimmDomains: ['plain', 'sketch', 'noise', 'pixelated'],
  report: true,
  quick: false,
};

export const QUICK: Omit<DemoOptions, 'out' | 'weights' | 'methods'> = {
  seeds: 1,
  steps: 24,
  lrFactor: DEMO_LR_FACTOR,
  shots: 8,
  counts: { train: 16, val: 4, test: 8 },
  domain: 'sketch',
  target: 'plain',
  iimmDomains: ['plain', 'sketch', 'noise'],
  report: true,
  quick: true,
};

export const DEMO_USAGE = `usage: cliptune demo [--methods a,b,...] [--quick] [--seeds N] [--steps N] [--shots K]
                     [--domain D] [--target D] [--iimm-domains a,b|none] [--no-report] [--out DIR]

Runs every method end to end on the embedded synthetic world with the shipped world CLIP
(weights/world-clip.safetensors): base-to-novel on --domain (default ${FULL.domain}), each run also
evaluated on --target (default ${FULL.target}), IIMM on several domains against the linear probe's gain,
a table with per-phase times, and the HTML report (DIR/report.html). Each run is an ordinary run
folder under DIR/runs (cliptune eval/report accept them).

DEMO PRESET, not the official defaults: the same optimiser-step budget for every method (--steps,
default ${FULL.steps}, batches of ${DEMO_BATCH}), each method's official learning rate x ${DEMO_LR_FACTOR} (a short schedule), at most
${DEMO_MAX_VIEWS} ProLIP views, no random crops (--crop-min ${DEMO_CROP_MIN}: flips only) where a method has that option,
vision prompt counts scaled to the model's image sequence (max(1, round(M x patches / ${VIT_B16_PATCHES})): the
official counts were set for ViT-B/16's ${VIT_B16_PATCHES} patches; the world CLIP has 16, so 1 prompt), vision
prompts started from the class token's state (--vision-init ${DEMO_VISION_INIT}) and deeper text prompts
from the frozen tower's states (--text-deep-init ${DEMO_TEXT_DEEP_INIT}) where a method has them.
\`cliptune train\` keeps the official defaults.

  --methods LIST    default: ${ALL_METHODS.join(',')}
  --quick           smaller: ${QUICK.steps} steps, ${QUICK.shots} shots, ${QUICK.counts.test} test images per class, IIMM on ${QUICK.iimmDomains.length} domains
  --seeds N         few-shot seeds 1..N (default ${FULL.seeds}); accuracies are means over seeds
  --steps N         optimiser steps per trained method (default ${FULL.steps})
  --lr-factor X     every trained method's learning rate = its official one x X (default ${DEMO_LR_FACTOR})
  --shots K         training images per class (default ${FULL.shots})
  --domain D        base-to-novel domain (${DOMAINS.join(', ')})
  --target D        cross-domain target
  --iimm-domains L  domains for IIMM vs gain (default ${FULL.iimmDomains.join(',')}; none: skip)
  --weights PATH    default: the shipped weights/world-clip.safetensors
  --out DIR         default ./demo-out (a previous demo there is replaced)
  --no-report       skip the HTML report
`;

class UsageError extends Error {}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'weights'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new UsageError('cannot find the package folder (with weights/) above the demo module; pass --weights');
    dir = up;
  }
}

function posInt(v: string | undefined, flag: string, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new UsageError(`--${flag} must be an integer >= ${min}, got "${v}"`);
  return n;
}

function posFloat(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${flag} must be a number > 0, got "${v}"`);
  return n;
}

function domainArg(v: string | undefined, flag: string): Domain | undefined {
  if (v === undefined) return undefined;
  if (!isDomain(v)) throw new UsageError(`--${flag}: unknown domain "${v}"; valid: ${DOMAINS.join(', ')}`);
  return v;
}

export function parseDemoArgs(argv: string[]): DemoOptions | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        methods: { type: 'string' },
        quick: { type: 'boolean' },
        seeds: { type: 'string' },
        steps: { type: 'string' },
        'lr-factor': { type: 'string' },
        shots: { type: 'string' },
        domain: { type: 'string' },
        target: { type: 'string' },
        'iimm-domains': { type: 'string' },
        weights: { type: 'string' },
        out: { type: 'string' },
        'no-report': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }) as { values: Record<string, string | boolean | undefined> });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) return 'help';
  const base = values.quick ? QUICK : FULL;
  const methods = values.methods === undefined ? ALL_METHODS : String(values.methods).split(',').map((s) => s.trim()).filter(Boolean);
  for (const m of methods) if (!demoMethod(m)) throw new UsageError(`--methods: "${m}" is not a demo method (${ALL_METHODS.join(', ')})`);
  if (!methods.length) throw new UsageError('--methods: empty list');
  const iimmArg = values['iimm-domains'] as string | undefined;
  const iimmDomains = iimmArg === undefined ? base.iimmDomains : iimmArg === 'none' ? [] : iimmArg.split(',').map((d) => domainArg(d.trim(), 'iimm-domains')!);
  if (iimmDomains.length === 1) throw new UsageError('--iimm-domains: a fit needs at least 2 domains (or none)');
  const shots = posInt(values.shots as string | undefined, 'shots') ?? base.shots;
  // Twice the shots per class, so that seeds draw different few-shot subsets.
  const counts = { ...base.counts, train: Math.max(base.counts.train, 2 * shots) };
  return {
    ...base,
    methods,
    seeds: posInt(values.seeds as string | undefined, 'seeds') ?? base.seeds,
    steps: posInt(values.steps as string | undefined, 'steps') ?? base.steps,
    lrFactor: posFloat(values['lr-factor'] as string | undefined, 'lr-factor') ?? base.lrFactor,
    shots,
    counts,
    domain: domainArg(values.domain as string | undefined, 'domain') ?? base.domain,
    target: domainArg(values.target as string | undefined, 'target') ?? base.target,
    iimmDomains,
    out: resolve((values.out as string | undefined) ?? 'demo-out'),
    weights: resolve((values.weights as string | undefined) ?? join(packageRoot(), 'weights', 'world-clip.safetensors')),
    report: !values['no-report'],
  };
}

// ---------------------------------------------------------------------------------------------
// Results

export interface Phase {
  name: string;
  wall: number;
  /** CPU seconds of this process (its GPU driver threads included). */
  cpu: number;
  /** 1-minute load average when the phase ended. */
  load: number;
}

export interface SeedResult {
  seed: number;
  runDir: string;
  base: number;
  novel: number | null;
  crossBase: number;
  crossNovel: number | null;
  steps: number | null;
  /** Seconds in the training loop (null: no optimiser steps). */
  trainSeconds: number | null;
  /** Wall seconds of the whole \`cliptune train\` command (caches, training, evaluation on the domain). */
  runWall: number;
}

export interface MethodRow {
  method: string;
  protocol: DemoMethod['protocol'];
  regularised: boolean;
  /** Means over seeds. */
  base: number;
  novel: number | null;
  hm: number | null;
  crossBase: number;
  crossNovel: number | null;
  /** Standard deviations over seeds (0 for one seed). */
  baseStd: number;
  novelStd: number | null;
  steps: number | null;
  trainSeconds: number | null;
  runWall: number;
  options: Record<string, string>;
  seeds: SeedResult[];
}

export interface IimmPoint {
  domain: Domain;
  iimm: IimmValue;
  zeroshot: number;
  probe: number;
  /** (probe − zero-shot) / (100 − zero-shot): the gain over zero-shot error. */
  gain: number;
}

export interface IimmValue {
  iimm: number;
  inter: number;
  intra: number;
  n: number;
  classes: number;
}

export interface IimmFit {
  slope: number;
  intercept: number;
  r2: number;
  n: number;
  /** The line's gain at the base-to-novel domain's IIMM. */
  predicted: number;
}

/** What `cliptune iimm --json` prints (the parts the demo reads). */
interface IimmJson extends IimmValue {
  runs: { dir: string; iimm: number | null; gain: number | null; target: number | null; zeroShot: Partial<Record<'all' | 'base' | 'novel', number>> }[];
  fits: { method: string; gain: IimmFit | null; gainNote: string | null }[];
}

export interface DemoResult {
  options: DemoOptions;
  rows: MethodRow[];
  skipped: { method: string; why: string }[];
  notes: string[];
  /** IIMM per domain with the linear probe's gain there, the OLS line and its prediction for the base-to-novel domain. */
  iimm: { points: IimmPoint[]; fit: IimmFit | null; at: IimmValue & { domain: Domain } } | null;
  report: string | null;
  phases: Phase[];
  wall: number;
  cpu: number;
  load: { start: number[]; end: number[] };
  table: string;
}

export interface DemoIo {
  /** Where the table goes (default stdout). */
  out?: { write(s: string): unknown };
  /** Progress and notes (default stderr). */
  err?: { write(s: string): unknown; isTTY?: boolean };
}

/** Population std over seeds (ddof 0), as the HTML report shows it. */
const std = (xs: number[]) => meanStd(xs, 0).std;

interface ReportJson {
  results: { classSet: 'all' | 'base' | 'novel'; accuracy: number }[];
  train?: { steps: number; seconds: number };
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

function accuracyOf(r: ReportJson, c: 'all' | 'base' | 'novel'): number | null {
  return r.results.find((x) => x.classSet === c)?.accuracy ?? null;
}

// ---------------------------------------------------------------------------------------------
// Running the CLI commands in this process, their output going to DIR/demo.log

class CommandLog {
  private readonly stream: WriteStream;
  private tail = '';
  constructor(path: string) {
    this.stream = createWriteStream(path, { flags: 'a' });
  }
  /** Runs `fn` with stdout and stderr going to the log; returns its value and what it wrote. */
  async capture<T>(title: string, fn: () => Promise<T>): Promise<{ value: T; text: string }> {
    const out = process.stdout.write;
    const err = process.stderr.write;
    let text = '';
    const sink = ((s: string | Uint8Array) => {
      const t = typeof s === 'string' ? s : Buffer.from(s).toString();
      text += t;
      this.stream.write(t);
      return true;
    }) as typeof process.stdout.write;
    this.stream.write(`\n$ ${title}\n`);
    process.stdout.write = sink;
    process.stderr.write = sink;
    try {
      return { value: await fn(), text };
    } finally {
      process.stdout.write = out;
      process.stderr.write = err;
      this.tail = text.slice(-2000);
    }
  }
  lastTail(): string {
    return this.tail;
  }
  close(): Promise<void> {
    return new Promise((r) => this.stream.end(r));
  }
}

class DemoError extends Error {}

/** The demo's folder: created, or a previous demo's replaced; anything else is refused. */
function prepareOut(dir: string): void {
  if (existsSync(dir)) {
    const entries = readdirSync(dir);
    if (entries.length && !entries.includes('demo-marker')) throw new UsageError(`--out: ${dir} is not empty and holds no previous demo; choose another folder`);
    for (const e of entries) rmSync(join(dir, e), { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'demo-marker'), 'written by cliptune demo; the folder is replaced by the next demo run\n');
}

/** A split file with the base classes of `dataDir` only (for methods trained and evaluated on them). */
function writeBaseSplit(dataDir: string, outDir: string): string {
  const doc = readJson<Record<'train' | 'val' | 'test', [string, number, string][]>>(join(dataDir, SPLIT_FILE));
  const keep = (rows: [string, number, string][]) => rows.filter((r) => r[1] < NUM_BASE);
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, SPLIT_FILE);
  writeFileAtomic(path, JSON.stringify({ train: keep(doc.train), val: keep(doc.val), test: keep(doc.test) }) + '\n');
  return path;
}

/** Image patches of the weights' vision tower: rows of its positional embedding less the class token's (header only). */
export async function imagePatches(weights: string): Promise<number> {
  const f = await openSafetensors(weights);
  try {
    const name = ['visual.positional_embedding', 'vision_model.embeddings.position_embedding.weight'].find((n) => f.has(n));
    if (!name) throw new UsageError(`--weights: ${weights} has no vision positional embedding (visual.positional_embedding): not a ViT CLIP`);
    const rows = f.info(name).shape[0]!;
    if (!(rows >= 2)) throw new UsageError(`--weights: ${weights}: ${name} has ${rows} rows, expected patches + 1`);
    return rows - 1;
  } finally {
    await f.close();
  }
}

// ---------------------------------------------------------------------------------------------

export async function runDemo(o: DemoOptions, io: DemoIo = {}): Promise<DemoResult> {
  const out = io.out ?? { write: process.stdout.write.bind(process.stdout) };
  // Bound now: the command log swaps process.stdout/stderr's write while a command runs.
  const err = io.err ?? { write: process.stderr.write.bind(process.stderr), isTTY: process.stderr.isTTY };
  const say = (s: string) => err.write(`${s}\n`);
  if (!existsSync(o.weights)) throw new UsageError(`--weights: ${o.weights} does not exist`);
  const patches = await imagePatches(o.weights);
  prepareOut(o.out);
  const log = new CommandLog(join(o.out, 'demo.log'));
  const cache = join(o.out, 'cache');
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const load = { start: loadavg(), end: [] as number[] };
  const phases: Phase[] = [];
  const notes: string[] = [];
  const skipped: { method: string; why: string }[] = [];

  const entries: DemoMethod[] = [];
  for (const name of o.methods) {
    const e = demoMethod(name)!;
    if (!METHODS[name]) {
      skipped.push({ method: name, why: `not in this build's method registry (src/adapt/registry.ts knows ${Object.keys(METHODS).join(', ')})` });
      continue;
    }
    entries.push(e);
  }

  const seeds = Array.from({ length: o.seeds }, (_, i) => i + 1);
  const trained = entries.filter((e) => e.name !== 'zeroshot');
  const totalTasks = 1 + (entries.some((e) => e.name === 'zeroshot') ? 1 : 0) + trained.length * seeds.length + (o.iimmDomains.length ? o.iimmDomains.length + 1 : 0) + (o.report ? 1 : 0);
  let task = 0;
  const header = (label: string) => say(`[${++task}/${totalTasks} · ${formatSecs((performance.now() - t0) / 1000)}] ${label}`);

  async function phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const w0 = performance.now();
    const c0 = process.cpuUsage();
    try {
      return await fn();
    } finally {
      const c = process.cpuUsage(c0);
      const existing = phases.find((p) => p.name === name);
      const wall = (performance.now() - w0) / 1000;
      const cpu = (c.user + c.system) / 1e6;
      if (existing) {
        existing.wall += wall;
        existing.cpu += cpu;
        existing.load = loadavg()[0]!;
      } else phases.push({ name, wall, cpu, load: loadavg()[0]! });
    }
  }

  const presetLine = `DEMO PRESET (not the official defaults): ${o.steps} optimiser steps (batches of ${DEMO_BATCH}) for every trained method, ${o.shots} shots, seeds ${seeds.join(',')}, official learning rates x ${o.lrFactor}, <= ${DEMO_MAX_VIEWS} ProLIP views, training crops off (--crop-min ${DEMO_CROP_MIN}) where a method has the option, vision prompt counts scaled to the model's ${patches} patches (ViT-B/16: ${VIT_B16_PATCHES}; IVLP/Prompt-OT --vision-tokens, DAPT --n-ctx-vision), vision prompts from the class token's state (--vision-init ${DEMO_VISION_INIT}) and deeper text prompts from the frozen states (--text-deep-init ${DEMO_TEXT_DEEP_INIT})${o.quick ? ' [--quick]' : ''}`;
  say(`cliptune demo: the world CLIP (${o.weights}) adapted on the synthetic world`);
  say(presetLine);
  const domainLine = `Base-to-novel on the ${o.domain} world domain (24 base / 24 novel classes, ${o.shots} shots), every run also evaluated on ${o.target} images; the world CLIP's zero-shot accuracy is lowest on sketches, so that is where adaptation has room (docs/demo.md).`;
  say(domainLine);
  say(`${cpus().length} CPUs, load average ${load.start.map((x) => x.toFixed(2)).join(' ')}`);
  for (const s of skipped) say(`note: ${s.method} skipped: ${s.why}`);

  // 1. World datasets: the base-to-novel domain, the target, and the IIMM domains.
  const dataDir = (d: Domain) => join(o.out, 'data', d);
  const domains = [...new Set([o.domain, o.target, ...o.iimmDomains])];
  header(`world: ${domains.length} datasets (${domains.join(', ')}), 48 classes x ${o.counts.train} train / ${o.counts.val} val / ${o.counts.test} test`);
  await phase('world datasets', async () => {
    const bar = new Progress('  world', domains.length, 'datasets', err);
    for (const d of domains) {
      await writeWorldDataset({ out: dataDir(d), domain: d, counts: o.counts, seed: 0, force: true });
      bar.tick(1);
    }
    bar.done();
  });
  const baseSplits = new Map<Domain, string>();
  if (entries.some((e) => e.protocol === 'base-only')) for (const d of new Set([o.domain, o.target])) baseSplits.set(d, writeBaseSplit(dataDir(d), join(o.out, 'data', `${d}-base`)));

  const common = (runDir: string) => ['--weights', o.weights, '--out', runDir, '--cache', cache, '--quiet'];
  const runCmd = async (title: string, fn: () => Promise<number>) => {
    const { value } = await log.capture(title, fn);
    if (value !== 0) throw new DemoError(`${title} failed (exit ${value}):\n${log.lastTail()}`);
  };

  // 2. Methods: train (base-to-novel) and evaluate on the cross-domain target.
  const rows: MethodRow[] = [];
  for (const e of entries) {
    const spec = METHODS[e.name]!;
    const trainImages = (e.protocol === 'base-to-novel' || e.protocol === 'base-only' ? NUM_BASE : 2 * NUM_BASE) * o.shots;
    const flags = e.name === 'zeroshot' ? { args: [], steps: null, missing: [], given: {} } : demoFlags(e, spec, { steps: o.steps, lrFactor: o.lrFactor, shots: o.shots, trainImages, datasetName: 'World', patches });
    if (flags.missing.length) notes.push(`${e.name}: no ${flags.missing.map((f) => `--${f}`).join(', ')} option in this build (official value used)`);
    const results: SeedResult[] = [];
    for (const seed of e.name === 'zeroshot' ? [1] : seeds) {
      const runDir = join(o.out, 'runs', e.name, `seed${seed}`);
      const baseOnly = e.protocol === 'base-only';
      const args = [...common(runDir), '--data', dataDir(o.domain), '--method', e.name, ...(baseOnly ? ['--split', baseSplits.get(o.domain)!] : ['--base-to-novel']), ...(e.name === 'zeroshot' ? [] : ['--shots', String(o.shots), '--seed', String(seed)]), ...flags.args];
      header(`${e.name}${e.name === 'zeroshot' ? '' : ` seed ${seed}`}: ${e.name === 'zeroshot' ? 'evaluate' : 'train'} on ${o.domain}${Object.keys(flags.given).length ? ` (${Object.entries(flags.given).map(([k, v]) => `--${k} ${v}`).join(' ')})` : ''}, then evaluate on ${o.target}`);
      let runWall = 0;
      await phase(`${e.name}: train + evaluate on ${o.domain}`, async () => {
        const bar = flags.steps ? new Progress(`  ${e.name}`, flags.steps, 'steps', err) : null;
        const w0 = performance.now();
        await runCmd(`cliptune train ${args.join(' ')}`, () => trainCommand(args, { progress: null, onStep: () => bar?.tick(1) }));
        runWall = (performance.now() - w0) / 1000;
        bar?.done();
      });
      const crossArgs = ['--run', runDir, '--data', dataDir(o.target), '--cache', cache, ...(baseOnly ? ['--split-file', baseSplits.get(o.target)!] : [])];
      await phase(`${e.name}: evaluate on ${o.target}`, () => runCmd(`cliptune eval ${crossArgs.join(' ')}`, () => evalCommand(crossArgs)));
      const rep = readJson<ReportJson>(join(runDir, RUN_FILES.report));
      const cross = readJson<ReportJson>(join(runDir, evalFileName('World', 'test')));
      results.push({
        seed,
        runDir,
        base: (baseOnly ? accuracyOf(rep, 'all') : accuracyOf(rep, 'base'))!,
        novel: baseOnly ? null : accuracyOf(rep, 'novel'),
        crossBase: (baseOnly ? accuracyOf(cross, 'all') : accuracyOf(cross, 'base'))!,
        crossNovel: baseOnly ? null : accuracyOf(cross, 'novel'),
        steps: rep.train?.steps || null,
        trainSeconds: rep.train?.steps ? rep.train.seconds : null,
        runWall,
      });
    }
    const base = mean(results.map((r) => r.base));
    const novel = results[0]!.novel === null ? null : mean(results.map((r) => r.novel!));
    rows.push({
      method: e.name,
      protocol: e.protocol,
      regularised: e.regularised,
      base,
      novel,
      hm: novel === null ? null : harmonicMean(base, novel),
      crossBase: mean(results.map((r) => r.crossBase)),
      crossNovel: results[0]!.crossNovel === null ? null : mean(results.map((r) => r.crossNovel!)),
      baseStd: std(results.map((r) => r.base)),
      novelStd: novel === null ? null : std(results.map((r) => r.novel!)),
      steps: results[0]!.steps,
      trainSeconds: results[0]!.trainSeconds === null ? null : mean(results.map((r) => r.trainSeconds!)),
      runWall: mean(results.map((r) => r.runWall)),
      options: flags.given,
      seeds: results,
    });
  }

  // 3. IIMM on several domains vs the gain a linear probe gets there (all 48 classes), through
  // `cliptune iimm --runs` (IIMM of each run's train split, gain over zero-shot error, OLS line).
  let iimm: DemoResult['iimm'] = null;
  if (o.iimmDomains.length) {
    const runDirs: string[] = [];
    // Cheaper than the main runs: 48-class probes on every domain.
    const iimmShots = Math.min(o.shots, IIMM_MAX_SHOTS);
    for (const d of o.iimmDomains) {
      header(`IIMM on ${d}: zero-shot and linear probe (${iimmShots} shots, all 48 classes)`);
      await phase('IIMM: zero-shot + linear probe per domain', async () => {
        for (const m of ['zeroshot', 'linear-probe']) {
          const runDir = join(o.out, 'runs', 'iimm', d, m);
          const probe = m === 'linear-probe' ? ['--shots', String(iimmShots), '--seed', '1', ...demoFlags(demoMethod(m)!, METHODS[m]!, { steps: o.steps, lrFactor: o.lrFactor, shots: o.shots, trainImages: 48 * iimmShots, datasetName: 'World', patches }).args] : [];
          const args = [...common(runDir), '--data', dataDir(d), '--method', m, ...probe];
          await runCmd(`cliptune train ${args.join(' ')}`, () => trainCommand(args, { progress: null }));
          runDirs.push(runDir);
        }
      });
    }
    header(`IIMM: cliptune iimm --data ${o.domain} --runs (${runDirs.length} runs) --method linear-probe`);
    await phase('IIMM: measure + fit', async () => {
      const args = ['--weights', o.weights, '--data', dataDir(o.domain), '--cache', cache, '--method', 'linear-probe', '--json', '--runs', ...runDirs];
      let json = '';
      await runCmd(`cliptune iimm ${args.join(' ')}`, () => iimmCommand(args, { stdout: { write: (t: string) => (json += t) } }));
      const doc = JSON.parse(json) as IimmJson;
      const points: IimmPoint[] = doc.runs
        .filter((p) => p.gain !== null && p.iimm !== null)
        .map((p) => {
          const file = readJson<{ iimm?: { result: IimmValue } }>(join(p.dir, IIMM_FILE));
          return { domain: o.iimmDomains[runDirs.indexOf(p.dir) >> 1]!, iimm: file.iimm?.result ?? { iimm: p.iimm!, inter: NaN, intra: NaN, n: 0, classes: 0 }, zeroshot: p.zeroShot.all!, probe: p.target!, gain: p.gain! };
        });
      const f = doc.fits.find((x) => x.method === 'linear-probe');
      if (f && !f.gain) notes.push(`IIMM fit: ${f.gainNote}`);
      iimm = { points, fit: f?.gain ?? null, at: { domain: o.domain, iimm: doc.iimm, inter: doc.inter, intra: doc.intra, n: doc.n, classes: doc.classes } };
    });
  }

  // 4. The HTML report over every run folder.
  let report: string | null = null;
  if (o.report) {
    header(`report: ${join(o.out, 'report.html')}`);
    const runDirs = rows.flatMap((r) => r.seeds.map((s) => s.runDir));
    await phase('report', async () => {
      const html = join(o.out, 'report.html');
      await log.capture(`writeReport(${runDirs.length} runs)`, () => writeReport(runDirs, html, { title: 'cliptune demo (demo preset)', notes: [presetLine, domainLine] }));
      report = html;
    });
  }

  const cpuUse = process.cpuUsage(cpu0);
  load.end = loadavg();
  const result: DemoResult = {
    options: o,
    rows,
    skipped,
    notes,
    iimm,
    report,
    phases,
    wall: (performance.now() - t0) / 1000,
    cpu: (cpuUse.user + cpuUse.system) / 1e6,
    load,
    table: '',
  };
  result.table = formatDemo(result, presetLine);
  writeFileAtomic(join(o.out, 'demo.md'), result.table);
  writeFileAtomic(join(o.out, 'demo.json'), JSON.stringify(result, null, 2) + '\n');
  await log.close();
  out.write(result.table);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Tables

const f1 = (x: number | null) => (x === null ? '—' : x.toFixed(1));
const delta = (x: number | null, ref: number | null) => (x === null || ref === null ? '' : ` (${x - ref >= 0 ? '+' : ''}${(x - ref).toFixed(1)})`);

export function formatDemo(r: DemoResult, presetLine: string): string {
  const o = r.options;
  const zs = r.rows.find((x) => x.method === 'zeroshot') ?? null;
  const pm = (x: number, s: number | null) => (o.seeds > 1 && s !== null ? `${x.toFixed(1)}±${s.toFixed(1)}` : x.toFixed(1));
  const lines: string[] = [];
  lines.push('', `## cliptune demo`, '', presetLine, '');
  lines.push(`Base-to-novel on **${o.domain}** world images (trained on 24 base classes, ${o.shots} shots; tested on ${o.counts.test} images per class), cross-domain: the same runs on **${o.target}** images. Accuracy in %, (change vs zero-shot); novel and ${o.target} columns never saw training images of those classes / that domain.`, '');
  lines.push(`| method | base | novel | HM | ${o.target} base | ${o.target} novel | steps | train loop | run |`);
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const x of r.rows) {
    const name = `${x.method}${x.regularised ? ' (reg.)' : ''}${x.protocol === 'base-only' ? ' (base only)' : ''}`;
    const isZs = x.method === 'zeroshot';
    lines.push(
      `| ${name} | ${pm(x.base, x.baseStd)}${isZs ? '' : delta(x.base, zs?.base ?? null)} | ${x.novel === null ? '—' : pm(x.novel, x.novelStd) + (isZs ? '' : delta(x.novel, zs?.novel ?? null))} | ${f1(x.hm)}${isZs ? '' : delta(x.hm, zs?.hm ?? null)} | ${f1(x.crossBase)}${isZs ? '' : delta(x.crossBase, zs?.crossBase ?? null)} | ${x.crossNovel === null ? '—' : f1(x.crossNovel) + (isZs ? '' : delta(x.crossNovel, zs?.crossNovel ?? null))} | ${x.steps ?? '—'} | ${x.trainSeconds === null ? '—' : `${x.trainSeconds.toFixed(1)} s`} | ${x.runWall.toFixed(1)} s |`,
    );
  }
  for (const s of r.skipped) lines.push(`| ${s.method} | skipped: ${s.why} | | | | | | | |`);
  lines.push('', `Chance is ${(100 / NUM_BASE).toFixed(1)}% (24-way). "train loop": the optimiser steps alone; "run": the whole \`cliptune train\` command (feature caches, training, test evaluation), means over seeds. Frozen features are cached on disk and shared between methods, so the first method to need a feature set pays for it.`);
  if (r.iimm) {
    lines.push('', `### IIMM vs linear-probe gain (48 classes, ${Math.min(o.shots, IIMM_MAX_SHOTS)} shots per domain)`, '');
    lines.push('| domain | IIMM | S_inter | S_intra | zero-shot | linear probe | gain / zero-shot error |', '|---|---|---|---|---|---|---|');
    for (const p of r.iimm.points) lines.push(`| ${p.domain} | ${p.iimm.iimm.toFixed(4)} | ${p.iimm.inter.toFixed(4)} | ${p.iimm.intra.toFixed(4)} | ${p.zeroshot.toFixed(1)} | ${p.probe.toFixed(1)} | ${p.gain.toFixed(3)} |`);
    const f = r.iimm.fit;
    lines.push('', f ? `OLS fit over ${f.n} domains: gain = ${f.slope.toFixed(3)} · IIMM ${f.intercept >= 0 ? '+' : '−'} ${Math.abs(f.intercept).toFixed(3)}, R² = ${f.r2.toFixed(3)}; predicted gain at ${r.iimm.at.domain} (IIMM ${r.iimm.at.iimm.toFixed(4)}): ${f.predicted.toFixed(3)}` : 'no IIMM fit (see notes)');
  }
  lines.push('', '### Phases', '', '| phase | wall | CPU | load (1 min) |', '|---|---|---|---|');
  for (const p of r.phases) lines.push(`| ${p.name} | ${p.wall.toFixed(1)} s | ${p.cpu.toFixed(1)} s | ${p.load.toFixed(2)} |`);
  lines.push(`| **total** | **${formatSecs(r.wall)}** (${r.wall.toFixed(0)} s) | ${r.cpu.toFixed(0)} s | start ${r.load.start[0]!.toFixed(2)}, end ${r.load.end[0]!.toFixed(2)} |`);
  lines.push('', `CPU is this process's CPU time (the software adapter's threads included). On an otherwise idle machine a CPU-bound run needs at most about that much wall time; the wall time above includes waiting for the ${cpus().length} shared CPUs.`);
  if (r.notes.length) lines.push('', 'Notes:', ...r.notes.map((n) => `- ${n}`));
  if (r.report) lines.push('', `Report: ${r.report}`);
  lines.push(`Run folders: ${join(o.out, 'runs')}; commands' output: ${join(o.out, 'demo.log')}`, '');
  return lines.join('\n');
}

export async function demoCommand(argv: string[]): Promise<number> {
  const err = (m: string) => process.stderr.write(`cliptune demo: ${m}\n`);
  let o: DemoOptions | 'help';
  try {
    o = parseDemoArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`${e.message}\n\n${DEMO_USAGE}`);
      return 2;
    }
    throw e;
  }
  if (o === 'help') {
    process.stdout.write(DEMO_USAGE);
    return 0;
  }
  try {
    await runDemo(o);
    return 0;
  } catch (e) {
    if (e instanceof UsageError || e instanceof DemoError) {
      err(e.message);
      return e instanceof UsageError ? 2 : 1;
    }
    throw e;
  }
}
