// The data behind `cliptune report`: reads run folders (run.json, report.json, log.jsonl and the
// eval-*.json files `cliptune eval` writes), groups the runs by (weights, method, dataset, shots,
// base-to-novel, options) and summarises each group over its seeds: mean ± std of the accuracies,
// HM of the averaged base and novel accuracies (CoCoOp's average rows), the loss curves, and the
// evaluations on other datasets (cross-dataset / domain transfer). Averages over datasets are
// dataset means of seed means, with HM again computed from the averaged base and novel.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { harmonicMean } from '../data/metrics.js';
import type { OptionValue } from '../adapt/method.js';
import { EVAL_FILE_PATTERN, RUN_CONFIG_FORMAT, RUN_FILES, completeJsonlLines, runFolders, type RunConfig } from './run.js';

export class ReportError extends Error {
  override name = 'ReportError';
}

export type ClassSet = 'all' | 'base' | 'novel';

/** One accuracy figure of a run (the shape `cliptune train` and `cliptune eval` write). */
export interface RunResult {
  split: string;
  classSet: ClassSet;
  accuracy: number;
  meanPerClass: number;
  correct: number;
  total: number;
  classes: number;
}

/** An evaluation of a run on another dataset or split (`cliptune eval --run`). */
export interface RunEvaluation {
  file: string;
  /** Dataset name as the evaluated folder reports it. */
  dataset: string;
  /** The evaluated folder (absolute). */
  data: string;
  split: string;
  results: RunResult[];
}

export interface LossPoint {
  step: number;
  loss: number;
}

/** One run folder, read and checked. */
export interface RunSummary {
  dir: string;
  seed: number;
  results: RunResult[];
  /** HM of this run's base and novel accuracies (null unless base-to-novel). */
  hm: number | null;
  /** Training losses as read back (last entry per step wins after a resume). */
  loss: LossPoint[];
  /** Periodic evaluations during training (log "eval" rows). */
  periodic: { epoch: number; step: number; metrics: Record<string, number> }[];
  train: { steps: number; seconds: number; msPerStep: number | null } | null;
  evaluations: RunEvaluation[];
}

/** Mean and (population, as Dassl's parse_test_res.py: numpy's default ddof 0) std over seeds. */
export interface Stat {
  mean: number;
  std: number;
  n: number;
  values: number[];
}

export interface CrossResult {
  /** Label of the evaluated dataset (name, plus the folder's name when two folders share a name). */
  target: string;
  data: string;
  split: string;
  classSet: ClassSet;
  classes: number;
  accuracy: Stat;
  /** The same target's accuracy of a zero-shot group on the same weights (for forgetting), if any. */
  zeroShot: number | null;
}

export interface ReportGroup {
  /** Stable identifier of the group (also the HTML anchor). */
  id: string;
  method: string;
  dataset: string;
  /** Dataset label (name, plus the folder's name when two folders share a name). */
  datasetLabel: string;
  data: string;
  weights: string;
  weightsHash: string;
  shots: number;
  baseToNovel: boolean;
  options: Record<string, OptionValue>;
  /** Option keys the user gave (the rest are the method's defaults). */
  given: string[];
  seeds: number[];
  runs: RunSummary[];
  /** Accuracy on the run's own test split by class set, over seeds. */
  accuracy: Partial<Record<ClassSet, Stat>>;
  /** HM of the mean base and mean novel accuracy (null unless base-to-novel). */
  hm: number | null;
  /** Zero-shot accuracies of a zero-shot group on the same weights and data (null when none). */
  zeroShot: Partial<Record<ClassSet, number>> | null;
  /** Mean loss over the first and the last 10% of the steps, averaged over seeds (null: no steps logged). */
  lossWindows: { first: number; last: number } | null;
  cross: CrossResult[];
  warnings: string[];
}

/** Averages over datasets of groups that share method, weights, shots, protocol and given options. */
export interface DatasetAverage {
  method: string;
  shots: number;
  baseToNovel: boolean;
  weights: string;
  given: Record<string, OptionValue>;
  datasets: string[];
  base: number | null;
  novel: number | null;
  hm: number | null;
  all: number | null;
}

function fail(dir: string, file: string, what: string): never {
  throw new ReportError(`${dir}: ${file}: ${what}`);
}

function readJson(dir: string, file: string, required: boolean): unknown {
  const p = join(dir, file);
  if (!existsSync(p)) {
    if (!required) return undefined;
    fail(dir, file, file === RUN_FILES.report ? 'missing (the run did not finish: resume it with cliptune train --resume, or evaluate it with cliptune eval)' : 'missing');
  }
  try {
    return JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    fail(dir, file, `not valid JSON (${(e as Error).message})`);
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function checkConfig(dir: string, raw: unknown): RunConfig {
  const f = RUN_FILES.config;
  if (!isObj(raw)) fail(dir, f, 'not a JSON object');
  if (raw.format !== RUN_CONFIG_FORMAT) fail(dir, f, `unknown format ${JSON.stringify(raw.format)} (expected ${RUN_CONFIG_FORMAT})`);
  for (const k of ['method', 'datasetName', 'data', 'weights', 'weightsHash'] as const) if (typeof raw[k] !== 'string') fail(dir, f, `"${k}" is not a string`);
  for (const k of ['shots', 'seed'] as const) if (!finite(raw[k])) fail(dir, f, `"${k}" is not a number`);
  if (typeof raw.baseToNovel !== 'boolean') fail(dir, f, '"baseToNovel" is not true/false');
  if (!isObj(raw.options)) fail(dir, f, '"options" is not an object');
  if (raw.given !== undefined && !(Array.isArray(raw.given) && raw.given.every((g) => typeof g === 'string'))) fail(dir, f, '"given" is not a list of option names');
  return raw as unknown as RunConfig;
}

function checkResults(dir: string, file: string, raw: unknown): RunResult[] {
  if (!isObj(raw) || !Array.isArray(raw.results)) fail(dir, file, 'no "results" list');
  return raw.results.map((r: unknown, i: number) => {
    if (!isObj(r)) fail(dir, file, `results[${i}] is not an object`);
    if (!['all', 'base', 'novel'].includes(r.classSet as string)) fail(dir, file, `results[${i}].classSet is ${JSON.stringify(r.classSet)} (expected all, base or novel)`);
    for (const k of ['accuracy', 'meanPerClass', 'correct', 'total', 'classes'] as const) if (!finite(r[k])) fail(dir, file, `results[${i}].${k} is not a number`);
    if ((r.accuracy as number) < 0 || (r.accuracy as number) > 100) fail(dir, file, `results[${i}].accuracy ${r.accuracy} is not a percentage`);
    return { split: typeof r.split === 'string' ? r.split : 'test', classSet: r.classSet as ClassSet, accuracy: r.accuracy as number, meanPerClass: r.meanPerClass as number, correct: r.correct as number, total: r.total as number, classes: r.classes as number };
  });
}

/** Step losses and periodic evaluations from log.jsonl; an unterminated last line (a crash mid-write) is skipped. */
function readLog(dir: string): { loss: LossPoint[]; periodic: RunSummary['periodic'] } {
  const f = RUN_FILES.log;
  const p = join(dir, f);
  if (!existsSync(p)) fail(dir, f, 'missing');
  const complete = completeJsonlLines(readFileSync(p, 'utf8'));
  const byStep = new Map<number, number>();
  const periodic: RunSummary['periodic'] = [];
  complete.forEach((line, i) => {
    if (!line.trim()) return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      fail(dir, f, `line ${i + 1} is not valid JSON (${(e as Error).message})`);
    }
    if (!isObj(row)) fail(dir, f, `line ${i + 1} is not a JSON object`);
    if (row.type === 'step') {
      if (!Number.isInteger(row.step) || typeof row.loss !== 'number') fail(dir, f, `line ${i + 1}: a step row needs an integer "step" and a numeric "loss"`);
      // A resumed run may log a step again (from its checkpoint on): the later value is the run's.
      byStep.set(row.step as number, row.loss as number);
    } else if (row.type === 'eval') {
      const metrics: Record<string, number> = {};
      for (const [k, v] of Object.entries(row)) if (finite(v) && k !== 'epoch' && k !== 'step') metrics[k] = v;
      periodic.push({ epoch: Number(row.epoch), step: Number(row.step), metrics });
    }
  });
  const loss = [...byStep].sort((a, b) => a[0] - b[0]).map(([step, l]) => ({ step, loss: l }));
  return { loss, periodic };
}

function readEvaluations(dir: string, cfg: RunConfig): RunEvaluation[] {
  const out: RunEvaluation[] = [];
  for (const file of readdirSync(dir).filter((n) => EVAL_FILE_PATTERN.test(n)).sort()) {
    const raw = readJson(dir, file, true);
    const results = checkResults(dir, file, raw);
    const on = (raw as Record<string, unknown>).evaluatedOn;
    if (!isObj(on) || typeof on.data !== 'string' || typeof on.dataset !== 'string' || typeof on.split !== 'string') fail(dir, file, 'no "evaluatedOn" {data, dataset, split}');
    const data = resolve(on.data);
    // The run's own test split is already in report.json.
    if (data === resolve(cfg.data) && on.split === 'test') continue;
    out.push({ file, dataset: on.dataset, data, split: on.split, results });
  }
  return out;
}

/** Reads one run folder; errors name the folder and the file. */
export function readRun(dir: string): { cfg: RunConfig; run: RunSummary } {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new ReportError(`${abs}: not a folder`);
  const cfg = checkConfig(abs, readJson(abs, RUN_FILES.config, true));
  const rep = readJson(abs, RUN_FILES.report, true);
  const results = checkResults(abs, RUN_FILES.report, rep);
  const r = rep as Record<string, unknown>;
  if (r.method !== undefined && r.method !== cfg.method) fail(abs, RUN_FILES.report, `method ${JSON.stringify(r.method)} differs from run.json's ${JSON.stringify(cfg.method)}`);
  const byCls = Object.fromEntries(results.map((x) => [x.classSet, x.accuracy]));
  const hm = byCls.base !== undefined && byCls.novel !== undefined ? harmonicMean(byCls.base, byCls.novel) : null;
  const t = isObj(r.train) ? r.train : null;
  const train = t && finite(t.steps) && finite(t.seconds) ? { steps: t.steps, seconds: t.seconds, msPerStep: finite(t.msPerStep) ? t.msPerStep : null } : null;
  const { loss, periodic } = readLog(abs);
  return { cfg, run: { dir: abs, seed: cfg.seed, results, hm, loss, periodic, train, evaluations: readEvaluations(abs, cfg) } };
}

/** JSON with sorted keys (option records compare by content). */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObj(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

export function stat(values: readonly number[]): Stat {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  return { mean, std, n, values: [...values] };
}

/** Mean loss over the first and the last 10% of the logged steps (at least one step each). */
export function lossWindows(loss: readonly LossPoint[]): { first: number; last: number } | null {
  if (!loss.length) return null;
  const k = Math.max(1, Math.round(loss.length / 10));
  const m = (xs: readonly LossPoint[]) => xs.reduce((a, b) => a + b.loss, 0) / xs.length;
  return { first: m(loss.slice(0, k)), last: m(loss.slice(-k)) };
}

/** Labels datasets by name, adding the folder's name where two folders share a dataset name. */
function datasetLabeler(pairs: Iterable<{ dataset: string; data: string }>): (dataset: string, data: string) => string {
  const folders = new Map<string, Set<string>>();
  for (const { dataset, data } of pairs) {
    if (!folders.has(dataset)) folders.set(dataset, new Set());
    folders.get(dataset)!.add(data);
  }
  return (dataset, data) => ((folders.get(dataset)?.size ?? 0) > 1 ? `${dataset} (${basename(data)})` : dataset);
}

/**
 * Reads and groups the runs. Pure data (no output written): groups in the order their first run
 * was given, seeds sorted within a group.
 */
export function summarizeRuns(runDirs: readonly string[]): ReportGroup[] {
  if (!runDirs.length) throw new ReportError('no run folders given');
  const seen = new Set<string>();
  const read: { cfg: RunConfig; run: RunSummary }[] = [];
  for (const d of runDirs) {
    const abs = resolve(d);
    if (seen.has(abs)) continue;
    seen.add(abs);
    read.push(readRun(abs));
  }
  const label = datasetLabeler(read.flatMap(({ cfg, run }) => [{ dataset: cfg.datasetName, data: resolve(cfg.data) }, ...run.evaluations.map((e) => ({ dataset: e.dataset, data: e.data }))]));
  const byKey = new Map<string, { cfg: RunConfig; runs: RunSummary[] }>();
  for (const { cfg, run } of read) {
    const key = canonical([cfg.weightsHash, cfg.method, cfg.datasetName, resolve(cfg.data), cfg.split, cfg.shots, cfg.baseToNovel, cfg.options]);
    if (!byKey.has(key)) byKey.set(key, { cfg, runs: [] });
    byKey.get(key)!.runs.push(run);
  }
  const groups: ReportGroup[] = [];
  let n = 0;
  for (const { cfg, runs } of byKey.values()) {
    runs.sort((a, b) => a.seed - b.seed || a.dir.localeCompare(b.dir));
    const warnings: string[] = [];
    const seeds = runs.map((r) => r.seed);
    const dup = seeds.filter((s, i) => seeds.indexOf(s) !== i);
    if (dup.length) warnings.push(`seed ${[...new Set(dup)].join(', ')} appears in more than one run; each run counts once in the mean`);
    const accuracy: Partial<Record<ClassSet, Stat>> = {};
    for (const cls of ['base', 'novel', 'all'] as const) {
      const vals = runs.map((r) => r.results.find((x) => x.classSet === cls && x.split === 'test')?.accuracy);
      const have = vals.filter((v): v is number => v !== undefined);
      if (have.length && have.length < runs.length) warnings.push(`${runs.length - have.length} run(s) have no ${cls} accuracy`);
      if (have.length) accuracy[cls] = stat(have);
    }
    const hm = accuracy.base && accuracy.novel ? harmonicMean(accuracy.base.mean, accuracy.novel.mean) : null;
    const windows = runs.map((r) => lossWindows(r.loss)).filter((w): w is { first: number; last: number } => w !== null);
    const lw = windows.length ? { first: stat(windows.map((w) => w.first)).mean, last: stat(windows.map((w) => w.last)).mean } : null;
    const crossMap = new Map<string, { e: RunEvaluation; r: RunResult; accs: number[] }>();
    for (const run of runs) {
      for (const e of run.evaluations) {
        for (const r of e.results) {
          const k = canonical([e.data, e.split, r.classSet]);
          if (!crossMap.has(k)) crossMap.set(k, { e, r, accs: [] });
          crossMap.get(k)!.accs.push(r.accuracy);
        }
      }
    }
    const cross: CrossResult[] = [...crossMap.values()].map(({ e, r, accs }) => {
      if (accs.length < runs.length) warnings.push(`${label(e.dataset, e.data)} ${e.split} ${r.classSet}: evaluated for ${accs.length} of ${runs.length} runs`);
      return { target: label(e.dataset, e.data), data: e.data, split: e.split, classSet: r.classSet, classes: r.classes, accuracy: stat(accs), zeroShot: null };
    });
    groups.push({
      id: `g${++n}`,
      method: cfg.method,
      dataset: cfg.datasetName,
      datasetLabel: label(cfg.datasetName, resolve(cfg.data)),
      data: resolve(cfg.data),
      weights: cfg.weights,
      weightsHash: cfg.weightsHash,
      shots: cfg.shots,
      baseToNovel: cfg.baseToNovel,
      options: cfg.options,
      given: cfg.given ?? [],
      seeds,
      runs,
      accuracy,
      hm,
      zeroShot: null,
      lossWindows: lw,
      cross,
      warnings,
    });
  }
  attachZeroShot(groups);
  return groups;
}

/** Forgetting / gain references: a zero-shot group on the same weights, data and protocol. */
function attachZeroShot(groups: ReportGroup[]): void {
  // Zero-shot runs with the default template first (a run with another --template is a variant).
  const zs = groups.filter((g) => g.method === 'zeroshot').sort((a, b) => a.given.length - b.given.length);
  for (const g of groups) {
    if (g.method === 'zeroshot') continue;
    const ref = zs.find((z) => z.weightsHash === g.weightsHash && z.data === g.data && z.baseToNovel === g.baseToNovel);
    if (ref) {
      g.zeroShot = {};
      for (const [k, s] of Object.entries(ref.accuracy)) g.zeroShot[k as ClassSet] = s.mean;
    }
    for (const c of g.cross) {
      // A zero-shot run on the target itself, or a zero-shot run evaluated on it.
      const own = zs.find((z) => z.weightsHash === g.weightsHash && z.data === c.data && c.split === 'test' && z.accuracy[c.classSet]);
      if (own) c.zeroShot = own.accuracy[c.classSet]!.mean;
      else {
        const ev = zs.flatMap((z) => (z.weightsHash === g.weightsHash ? z.cross : [])).find((x) => x.data === c.data && x.split === c.split && x.classSet === c.classSet);
        if (ev) c.zeroShot = ev.accuracy.mean;
      }
    }
  }
}

/** Dataset means of seed means for groups sharing method, weights, shots, protocol and the options the user gave (only where 2+ datasets). */
export function datasetAverages(groups: readonly ReportGroup[]): DatasetAverage[] {
  const byKey = new Map<string, ReportGroup[]>();
  for (const g of groups) {
    const given = Object.fromEntries(g.given.map((k) => [k, g.options[k] ?? null]));
    const key = canonical([g.method, g.weightsHash, g.shots, g.baseToNovel, given]);
    if (!byKey.has(key)) byKey.set(key, []);
    byKey.get(key)!.push(g);
  }
  const out: DatasetAverage[] = [];
  for (const gs of byKey.values()) {
    const datasets = new Set(gs.map((g) => g.data));
    if (datasets.size < 2 || datasets.size !== gs.length) continue;
    const avg = (cls: ClassSet) => (gs.every((g) => g.accuracy[cls]) ? gs.reduce((a, g) => a + g.accuracy[cls]!.mean, 0) / gs.length : null);
    const base = avg('base');
    const novel = avg('novel');
    const g0 = gs[0]!;
    out.push({
      method: g0.method,
      shots: g0.shots,
      baseToNovel: g0.baseToNovel,
      weights: g0.weights,
      given: Object.fromEntries(g0.given.map((k) => [k, g0.options[k] ?? null])),
      datasets: gs.map((g) => g.datasetLabel),
      base,
      novel,
      hm: base !== null && novel !== null ? harmonicMean(base, novel) : null,
      all: avg('all'),
    });
  }
  return out;
}

/** Run folders from the arguments (runFolders: a folder without run.json stands for the runs inside it). */
export function expandRunDirs(args: readonly string[]): string[] {
  return runFolders(args, (m) => new ReportError(m));
}

