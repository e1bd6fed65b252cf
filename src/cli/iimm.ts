// `cliptune iimm`: the inter/intra-modal measure of a dataset (methods.md 7) under a CLIP checkpoint,
// and, from the user's earlier runs of the same backbone, least-squares lines IIMM -> gain and
// IIMM -> forgetting with their predictions for this dataset. Every input problem (flags, data
// layout, a folder that is not a run, an unreadable run file) is reported before any GPU work.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { getGpu } from '../gpu/index.js';
import { loadClip } from '../clip/load-node.js';
import type { ClipModel } from '../clip/model.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import { fileSha256 } from '../train/checkpoint.js';
import { ClipFeatures, FeatureCache, defaultCacheDir } from '../train/features.js';
import { evalSubset, openDataset } from '../train/data.js';
import { RUN_FILES, RunDirError, listDigest, readRunConfig, runFolders, writeFileAtomic, type RunConfig } from '../train/run.js';
import { evaluate } from '../train/evaluate.js';
import { ZeroShotMethod, resolveTemplates } from '../adapt/zeroshot.js';
import { FitError, iimmForDataset, olsFit, type IimmResult } from '../adapt/iimm.js';
import type { MethodEnv } from '../adapt/method.js';

export const IIMM_USAGE = `usage: cliptune iimm --weights PATH --data DIR [--split FILE] [--template T]
                     [--runs RUN_DIR...] [--method M] [--cache DIR | --no-cache] [--act A] [--json]

Prints IIMM, the inter/intra-modal measure (Niss et al., arXiv 2407.15731), of DIR's train split
(every class, CLIP's test transform) under the checkpoint: zero-shot image embeddings x_i and one
caption per class t_c, all L2-normalised,
  S_inter = mean over images of the mean similarity to the C − 1 wrong class captions,
  S_intra = mean similarity over distinct image pairs,  IIMM = (S_inter + S_intra) / 2.
A higher IIMM predicts a larger fine-tuning gain and more forgetting.

  --template T   the captions: "dataset" (default: the dataset's single CoOp template), "single"
                 ("a photo of a {}."), or one template with {}
  --runs DIR...  folders written by \`cliptune train\` (or folders holding such folders). Runs of
                 the same backbone (run.json's weightsHash = sha256 of --weights) and of one
                 method (--method M, default: each method found) give one point each:
                   x = IIMM of the run's dataset (its train split, every class, this --template;
                       computed once and cached in RUN_DIR/iimm.json),
                   gain = (acc − zs) / (100 − zs): the run's test accuracy on its training
                       classes (base classes for --base-to-novel runs, else all) vs zero-shot
                       accuracy zs on the same images and classes (a fraction; 1 = every
                       zero-shot error fixed, < 0 = worse than zero-shot),
                   forgetting = zs_novel − acc_novel: test accuracy lost on the held-out novel
                       classes, in points (base-to-novel runs only; > 0 = forgotten).
                 zs comes from a \`--method zeroshot\` run among --runs on the same data, split
                 and classes, else it is computed (template "dataset", cached in iimm.json).
                 With 3 or more points (and 2 distinct IIMM values) it prints the ordinary
                 least-squares line, R², n and the predicted gain and forgetting for DIR.
  --method M     fit only runs of method M
  --cache DIR    feature cache (default $CLIPTUNE_CACHE or ~/.cache/cliptune/features); --no-cache
  --act A        quick_gelu or gelu when the checkpoint does not say
  --json         print one JSON object instead of text

More in docs/iimm.md.
`;

class UsageError extends Error {
  override name = 'UsageError';
}

const OPTIONS = {
  weights: { type: 'string' },
  data: { type: 'string' },
  split: { type: 'string' },
  template: { type: 'string' },
  runs: { type: 'string', multiple: true },
  method: { type: 'string' },
  cache: { type: 'string' },
  'no-cache': { type: 'boolean' },
  act: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `--runs a b c` takes every following argument up to the next flag (parseArgs wants one per flag). */
function expandRunsFlag(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a !== '--runs') {
      out.push(a);
      continue;
    }
    let k = i + 1;
    while (k < argv.length && !argv[k]!.startsWith('--')) out.push('--runs', argv[k++]!);
    if (k === i + 1) out.push('--runs');
    i = k - 1;
  }
  return out;
}

export interface IimmCommandIo {
  stdout?: { write(s: string): unknown };
  stderr?: { write(s: string): unknown };
}

export async function iimmCommand(argv: string[], io: IimmCommandIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const err = (m: string) => stderr.write(`cliptune iimm: ${m}\n`);
  let values: Values;
  try {
    ({ values } = parseArgs({ args: expandRunsFlag(argv), options: OPTIONS, strict: true, allowPositionals: false }) as { values: Values });
  } catch (e) {
    err(`${(e as Error).message}\n\n${IIMM_USAGE}`);
    return 2;
  }
  if (values.help) {
    stdout.write(IIMM_USAGE);
    return 0;
  }
  try {
    return await runIimm(values, stdout, stderr);
  } catch (e) {
    if (['UsageError', 'DatasetError', 'RunDirError', 'TokenizerError', 'OutOfVocabularyError'].includes((e as Error).name)) {
      err((e as Error).message);
      return 2;
    }
    throw e;
  }
}

interface Values {
  weights?: string;
  data?: string;
  split?: string;
  template?: string;
  runs?: string[];
  method?: string;
  cache?: string;
  'no-cache'?: boolean;
  act?: string;
  json?: boolean;
  quiet?: boolean;
  help?: boolean;
}

/** One template, as IIMM uses (a named ensemble or several templates is an error naming the flag). */
export function singleTemplate(option: string, datasetName: string): string {
  if (option === 'ensemble') throw new UsageError('--template: IIMM uses one caption per class; "ensemble" names several templates');
  let list: string[];
  try {
    list = resolveTemplates(option, datasetName, 'iimm');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (list.length !== 1) throw new UsageError(`--template: IIMM uses one caption per class; "${option}" gives ${list.length} templates`);
  return list[0]!;
}

// ---------------------------------------------------------------------------------------------
// Earlier runs.

interface ReportResult {
  split: string;
  classSet: 'all' | 'base' | 'novel';
  accuracy: number;
}

interface RunRecord {
  dir: string;
  cfg: RunConfig;
  /** Test accuracies by class set (null: no report.json yet). */
  test: Partial<Record<'all' | 'base' | 'novel', number>> | null;
}

/** Run folders named by --runs: each a run, or a folder whose sub-folders hold runs. */
export function collectRunDirs(args: readonly string[]): string[] {
  return runFolders(args, (m) => new UsageError(`--runs: ${m}`));
}

function readRun(dir: string): RunRecord {
  const cfg = readRunConfig(dir);
  const p = join(dir, RUN_FILES.report);
  if (!existsSync(p)) return { dir, cfg, test: null };
  let doc: { results?: unknown };
  try {
    doc = JSON.parse(readFileSync(p, 'utf8')) as { results?: unknown };
  } catch (e) {
    throw new RunDirError(`${p}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(doc.results)) throw new RunDirError(`${p}: no "results" list (not a cliptune report)`);
  const test: Partial<Record<'all' | 'base' | 'novel', number>> = {};
  for (const r of doc.results as ReportResult[]) {
    if (r && r.split === 'test' && ['all', 'base', 'novel'].includes(r.classSet) && Number.isFinite(r.accuracy)) test[r.classSet] = r.accuracy;
  }
  return { dir, cfg, test };
}

export const IIMM_FILE = 'iimm.json';
export const IIMM_FILE_FORMAT = 'cliptune-iimm/1';

interface IimmFile {
  format: typeof IIMM_FILE_FORMAT;
  weightsHash: string;
  iimm?: { template: string; trainDigest: string; result: IimmResult };
  zeroShot?: { template: string; testDigest: string; accuracy: Partial<Record<'all' | 'base' | 'novel', number>> };
}

function readIimmFile(dir: string, weightsHash: string): IimmFile | null {
  try {
    const f = JSON.parse(readFileSync(join(dir, IIMM_FILE), 'utf8')) as IimmFile;
    return f.format === IIMM_FILE_FORMAT && f.weightsHash === weightsHash ? f : null;
  } catch {
    return null;
  }
}

export interface RunPoint {
  dir: string;
  method: string;
  dataset: string;
  baseToNovel: boolean;
  /** IIMM of the run's dataset (null when it could not be had). */
  iimm: number | null;
  iimmSource: 'computed' | 'iimm.json' | null;
  zeroShot: Partial<Record<'all' | 'base' | 'novel', number>>;
  zeroShotSource: string | null;
  /** The run's test accuracy on its training classes (base or all) and on novel classes. */
  target: number | null;
  novel: number | null;
  gain: number | null;
  forgetting: number | null;
  /** Why the run gives no gain point (null: it does). */
  skipped: string | null;
}

interface FitOut {
  slope: number;
  intercept: number;
  r2: number;
  n: number;
  predicted: number;
}

export interface MethodFit {
  method: string;
  runs: number;
  gain: FitOut | null;
  gainNote: string | null;
  forgetting: FitOut | null;
  forgettingNote: string | null;
}

/** Fits y on x over the points that have both; a note says why there is no line. */
function fitOrWhy(points: readonly { x: number; y: number }[], what: string, at: number): { fit: FitOut | null; note: string | null } {
  if (points.length < 3) return { fit: null, note: `${what}: ${points.length} usable run(s); a fit needs at least 3` };
  try {
    const f = olsFit(points.map((p) => p.x), points.map((p) => p.y));
    return { fit: { slope: f.slope, intercept: f.intercept, r2: f.r2, n: f.n, predicted: f.predict(at) }, note: null };
  } catch (e) {
    if (e instanceof FitError) return { fit: null, note: `${what}: the ${points.length} runs span ${new Set(points.map((p) => p.x)).size} distinct IIMM value(s) (one dataset?); a line needs runs on at least 2 datasets` };
    throw e;
  }
}

/** The OLS lines of each method over its run points, evaluated at `at` (this dataset's IIMM). */
export function fitMethods(points: readonly RunPoint[], at: number): MethodFit[] {
  const methods = [...new Set(points.map((p) => p.method))];
  return methods.map((method) => {
    const mine = points.filter((p) => p.method === method);
    const gain = fitOrWhy(mine.filter((p) => p.iimm !== null && p.gain !== null).map((p) => ({ x: p.iimm!, y: p.gain! })), 'gain', at);
    const forgetting = fitOrWhy(mine.filter((p) => p.iimm !== null && p.forgetting !== null).map((p) => ({ x: p.iimm!, y: p.forgetting! })), 'forgetting (base-to-novel runs)', at);
    return { method, runs: mine.length, gain: gain.fit, gainNote: gain.note, forgetting: forgetting.fit, forgettingNote: forgetting.note };
  });
}

// ---------------------------------------------------------------------------------------------

interface Ctx {
  model: ClipModel;
  tokenizer: ClipTokenizer;
  features: ClipFeatures;
  weightsHash: string;
  templateOption: string;
  say: (m: string) => void;
}

type Dataset = Awaited<ReturnType<typeof openDataset>>;

async function datasetIimm(ctx: Ctx, ds: Dataset): Promise<{ result: IimmResult; template: string }> {
  const template = singleTemplate(ctx.templateOption, ds.name);
  if (!ds.train.length) throw new UsageError(`${ds.source}: the train split is empty (IIMM is measured on the data one fine-tunes on)`);
  const result = await iimmForDataset(ctx.model, ctx.tokenizer, ds.train, ds.classnames, { template, features: ctx.features });
  return { result, template };
}

/** Zero-shot test accuracies (template "dataset") on a dataset's all/base/novel classes. */
async function zeroShotAccuracy(ctx: Ctx, ds: Dataset, sets: readonly ('all' | 'base' | 'novel')[]): Promise<Partial<Record<'all' | 'base' | 'novel', number>>> {
  const method = new ZeroShotMethod({ template: 'dataset' });
  const env: MethodEnv = {
    gpu: ctx.model.gpu,
    model: ctx.model,
    tokenizer: ctx.tokenizer,
    datasetName: ds.name,
    classnames: ds.classnames,
    train: [],
    val: null,
    shots: 0,
    seed: 0,
    features: ctx.features,
    purpose: 'eval',
    log: ctx.say,
  };
  await method.prepare(env);
  const out: Partial<Record<'all' | 'base' | 'novel', number>> = {};
  for (const s of sets) {
    const { items, classnames } = evalSubset(ds, 'test', s);
    out[s] = (await evaluate(method, env, items, classnames)).accuracy;
  }
  return out;
}

function dataKey(cfg: { data: string; split: string | null }): string {
  return `${cfg.data}\u0001${cfg.split ?? ''}`;
}

/** Gain and forgetting points of the runs (zero-shot runs are references, not points). */
async function runPoints(ctx: Ctx, runs: RunRecord[], methodFilter: string | undefined, known: ReadonlyMap<string, IimmResult>): Promise<{ points: RunPoint[]; ignored: string[] }> {
  const ignored: string[] = [];
  const same = runs.filter((r) => {
    if (r.cfg.weightsHash !== ctx.weightsHash) {
      ignored.push(`${r.dir}: trained from another checkpoint (sha256 ${r.cfg.weightsHash.slice(0, 12)}…, --weights is ${ctx.weightsHash.slice(0, 12)}…)`);
      return false;
    }
    return true;
  });
  // Zero-shot references from zeroshot runs: by (data, split) and class set.
  const zsRuns = new Map<string, { acc: Partial<Record<'all' | 'base' | 'novel', number>>; dir: string }>();
  for (const r of same) {
    if (r.cfg.method !== 'zeroshot' || !r.test) continue;
    const k = dataKey(r.cfg);
    const prev = zsRuns.get(k) ?? { acc: {}, dir: r.dir };
    zsRuns.set(k, { acc: { ...r.test, ...prev.acc }, dir: prev.dir });
  }
  const datasets = new Map<string, Promise<Dataset | null>>();
  const iimms = new Map<string, Promise<IimmResult>>([...known].map(([k, v]) => [k, Promise.resolve(v)]));
  const openData = (cfg: RunConfig) => {
    const k = dataKey(cfg);
    if (!datasets.has(k)) datasets.set(k, openDataset(cfg.data, cfg.split ?? undefined).catch(() => null));
    return datasets.get(k)!;
  };
  const points: RunPoint[] = [];
  for (const r of same) {
    if (r.cfg.method === 'zeroshot') continue;
    if (methodFilter && r.cfg.method !== methodFilter) {
      ignored.push(`${r.dir}: method ${r.cfg.method} (--method ${methodFilter})`);
      continue;
    }
    const b2n = r.cfg.baseToNovel;
    const p: RunPoint = {
      dir: r.dir, method: r.cfg.method, dataset: r.cfg.datasetName, baseToNovel: b2n,
      iimm: null, iimmSource: null, zeroShot: {}, zeroShotSource: null,
      target: r.test ? (r.test[b2n ? 'base' : 'all'] ?? null) : null,
      novel: r.test && b2n ? (r.test.novel ?? null) : null,
      gain: null, forgetting: null, skipped: null,
    };
    points.push(p);
    if (!r.test) {
      p.skipped = `no ${RUN_FILES.report} (unfinished run?)`;
      continue;
    }
    if (p.target === null) {
      p.skipped = `${RUN_FILES.report} has no test accuracy on the ${b2n ? 'base' : 'all'} classes`;
      continue;
    }
    const ds = await openData(r.cfg);
    const cached = readIimmFile(r.dir, ctx.weightsHash);
    const file: IimmFile = cached ?? { format: IIMM_FILE_FORMAT, weightsHash: ctx.weightsHash };
    let dirty = false;
    // IIMM of the run's dataset: one computation per dataset, cached in each run folder.
    const template = ds ? singleTemplate(ctx.templateOption, ds.name) : null;
    const trainDigest = ds ? listDigest(ds.train) : null;
    if (file.iimm && (ds ? file.iimm.template === template && file.iimm.trainDigest === trainDigest : file.iimm.template === singleTemplate(ctx.templateOption, r.cfg.datasetName))) {
      p.iimm = file.iimm.result.iimm;
      p.iimmSource = 'iimm.json';
    } else if (ds) {
      const k = `${dataKey(r.cfg)}\u0001${template}`;
      if (!iimms.has(k)) {
        ctx.say(`IIMM of ${r.cfg.data} (for ${r.dir}) ...`);
        iimms.set(k, datasetIimm(ctx, ds).then((v) => v.result));
      }
      const result = await iimms.get(k)!;
      p.iimm = result.iimm;
      p.iimmSource = 'computed';
      file.iimm = { template: template!, trainDigest: trainDigest!, result };
      dirty = true;
    } else {
      p.skipped = `its data ${r.cfg.data} cannot be opened and ${IIMM_FILE} holds no IIMM for this template`;
      continue;
    }
    // Zero-shot reference on the same images and classes.
    const sets: ('all' | 'base' | 'novel')[] = b2n ? ['base', 'novel'] : ['all'];
    const fromRun = zsRuns.get(dataKey(r.cfg));
    const testDigest = ds ? listDigest(ds.test) : null;
    if (fromRun && sets.every((s) => fromRun.acc[s] !== undefined)) {
      p.zeroShot = Object.fromEntries(sets.map((s) => [s, fromRun.acc[s]!]));
      p.zeroShotSource = fromRun.dir;
    } else if (file.zeroShot && sets.every((s) => file.zeroShot!.accuracy[s] !== undefined) && (!ds || file.zeroShot.testDigest === testDigest)) {
      p.zeroShot = Object.fromEntries(sets.map((s) => [s, file.zeroShot!.accuracy[s]!]));
      p.zeroShotSource = `${IIMM_FILE} (computed earlier)`;
    } else if (ds) {
      ctx.say(`zero-shot accuracy on ${r.cfg.data} (${sets.join(', ')} classes) ...`);
      const acc = await zeroShotAccuracy(ctx, ds, sets);
      p.zeroShot = acc;
      p.zeroShotSource = 'computed';
      file.zeroShot = { template: 'dataset', testDigest: testDigest!, accuracy: { ...(file.zeroShot?.testDigest === testDigest ? file.zeroShot?.accuracy : {}), ...acc } };
      dirty = true;
    } else {
      p.skipped = `no zero-shot reference: no zeroshot run on ${r.cfg.data} among --runs and the data cannot be opened`;
    }
    if (dirty) writeFileAtomic(join(r.dir, IIMM_FILE), JSON.stringify(file, null, 2) + '\n');
    if (p.skipped) continue;
    const zsTarget = p.zeroShot[b2n ? 'base' : 'all']!;
    if (zsTarget >= 100) p.skipped = 'zero-shot accuracy is already 100% (gain undefined)';
    else p.gain = (p.target - zsTarget) / (100 - zsTarget);
    if (b2n && p.novel !== null && p.zeroShot.novel !== undefined) p.forgetting = p.zeroShot.novel - p.novel;
  }
  return { points, ignored };
}

// ---------------------------------------------------------------------------------------------

function f(x: number, d = 4): string {
  return x.toFixed(d);
}

function signed(x: number, d = 4): string {
  return `${x < 0 ? '−' : '+'} ${Math.abs(x).toFixed(d)}`;
}

async function runIimm(values: Values, stdout: { write(s: string): unknown }, stderr: { write(s: string): unknown }): Promise<number> {
  const say = (m: string) => {
    if (!values.quiet) stderr.write(`${m}\n`);
  };
  if (!values.weights) throw new UsageError('--weights PATH is required');
  if (!values.data) throw new UsageError('--data DIR is required');
  const weights = resolve(values.weights);
  if (!existsSync(weights)) throw new UsageError(`--weights: ${weights} does not exist`);
  if (values.act && values.act !== 'quick_gelu' && values.act !== 'gelu') throw new UsageError(`--act must be quick_gelu or gelu, got ${values.act}`);
  if (values.cache !== undefined && values['no-cache']) throw new UsageError('--cache and --no-cache exclude each other');
  const templateOption = values.template ?? 'dataset';
  const ds = await openDataset(values.data, values.split);
  const template = singleTemplate(templateOption, ds.name);
  if (!ds.train.length) throw new UsageError(`--data: ${ds.source}: the train split is empty (IIMM is measured on the data one fine-tunes on)`);
  if (ds.classnames.length < 2) throw new UsageError(`--data: ${ds.source} has ${ds.classnames.length} class; IIMM needs at least 2`);
  const runDirs = values.runs ? collectRunDirs(values.runs) : [];
  const runs = runDirs.map(readRun);
  if (values.method && !runs.length) throw new UsageError('--method selects among --runs; give --runs too');
  if (values.method && !runs.some((r) => r.cfg.method === values.method)) throw new UsageError(`--method ${values.method}: none of the ${runs.length} run(s) given by --runs used it`);

  const hash = await fileSha256(existsSync(join(weights, 'model.safetensors')) ? join(weights, 'model.safetensors') : weights);
  const gpu = await getGpu();
  const { model, tokenizer, notes } = await loadClip(gpu, weights, values.act ? { activation: values.act as 'quick_gelu' | 'gelu' } : {});
  for (const n of notes) say(`note: ${n}`);
  const cache = new FeatureCache(values['no-cache'] ? null : resolve(values.cache ?? defaultCacheDir()));
  const features = new ClipFeatures(model, tokenizer, { cache, weightsHash: hash, progressFrom: values.quiet ? Infinity : 256 });
  const ctx: Ctx = { model, tokenizer, features, weightsHash: hash, templateOption, say };
  try {
    const t0 = performance.now();
    const { result } = await datasetIimm(ctx, ds);
    const secs = (performance.now() - t0) / 1000;
    // This dataset's IIMM is reused for runs on the same data (same key as runPoints uses).
    const known = new Map([[`${dataKey({ data: resolve(values.data), split: values.split ? resolve(values.split) : null })}\u0001${template}`, result]]);
    const { points, ignored } = runs.length ? await runPoints(ctx, runs, values.method, known) : { points: [], ignored: [] };
    const fits = fitMethods(points, result.iimm);
    const why: string[] = [];
    if (!runs.length) why.push('no --runs given: pass folders of earlier `cliptune train` runs (3 or more, on 2 or more datasets) to predict gain and forgetting');
    else if (!points.length) why.push(`none of the ${runs.length} run(s) is a trained run of this backbone${values.method ? ` and method ${values.method}` : ''} (zero-shot runs only serve as references)`);
    if (values.json) {
      stdout.write(JSON.stringify({
        weights, weightsHash: hash, data: resolve(values.data), split: values.split ? resolve(values.split) : null, dataset: ds.name, template,
        ...result, seconds: secs,
        runs: points, ignored, fits, notes: why,
      }, null, 2) + '\n');
      return 0;
    }
    const w = stdout.write.bind(stdout);
    w(`${ds.name} (${ds.source}): train split, ${result.n} images, ${result.classes} classes; captions "${template}"\n`);
    w(`IIMM ${f(result.iimm, 6)}  (inter-modal S_inter ${f(result.inter, 6)}, intra-modal S_intra ${f(result.intra, 6)})\n`);
    for (const m of why) w(`${m}\n`);
    for (const m of ignored) w(`ignored ${m}\n`);
    if (points.length) {
      w(`\nruns (gain = (acc − zs)/(100 − zs) on the training classes; forgetting = zs − acc on novel classes, points):\n`);
      w(`  ${'method'.padEnd(12)} ${'dataset'.padEnd(12)} ${'IIMM'.padStart(8)} ${'zs'.padStart(6)} ${'acc'.padStart(6)} ${'gain'.padStart(8)} ${'forget'.padStart(7)}  run\n`);
      for (const p of points) {
        if (p.skipped) {
          w(`  ${p.method.padEnd(12)} ${p.dataset.padEnd(12)} skipped: ${p.skipped}  ${p.dir}\n`);
          continue;
        }
        const zs = p.zeroShot[p.baseToNovel ? 'base' : 'all']!;
        w(`  ${p.method.padEnd(12)} ${p.dataset.padEnd(12)} ${f(p.iimm!).padStart(8)} ${zs.toFixed(2).padStart(6)} ${p.target!.toFixed(2).padStart(6)} ${(p.gain === null ? '-' : f(p.gain)).padStart(8)} ${(p.forgetting === null ? '-' : p.forgetting.toFixed(2)).padStart(7)}  ${p.dir}\n`);
      }
    }
    for (const fit of fits) {
      w(`\n${fit.method} (${fit.runs} run${fit.runs === 1 ? '' : 's'}):\n`);
      if (fit.gain) w(`  gain       = ${f(fit.gain.slope)}·IIMM ${signed(fit.gain.intercept)}   R² ${f(fit.gain.r2)}, n ${fit.gain.n}; predicted for ${ds.name}: ${f(fit.gain.predicted)}\n`);
      else w(`  no gain fit: ${fit.gainNote}\n`);
      if (fit.forgetting) w(`  forgetting = ${f(fit.forgetting.slope, 3)}·IIMM ${signed(fit.forgetting.intercept, 3)}   R² ${f(fit.forgetting.r2)}, n ${fit.forgetting.n}; predicted for ${ds.name}: ${fit.forgetting.predicted.toFixed(2)} points\n`);
      else w(`  no forgetting fit: ${fit.forgettingNote}\n`);
    }
    return 0;
  } finally {
    model.dispose();
  }
}
