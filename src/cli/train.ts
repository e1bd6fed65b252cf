// `cliptune train`: a CLIP checkpoint + a dataset folder + a method -> a trained adapter in a run
// folder, its accuracy under the standard protocol, and a report. Every input problem (data layout,
// class counts, unknown method or option, too many shots, an occupied run folder) is reported before
// anything is trained or written.
import { parseArgs } from 'node:util';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { getGpu } from '../gpu/index.js';
import { loadClip } from '../clip/load-node.js';
import { fileSha256, loadCheckpoint } from '../train/checkpoint.js';
import { ClipFeatures, FeatureCache, defaultCacheDir } from '../train/features.js';
import { JsonlLog, readStepRecords, trainLoop } from '../train/loop.js';
import { evaluate, type EvalResult } from '../train/evaluate.js';
import { evalSubset, openDataset, trainSubset, type TrainSubset } from '../train/data.js';
import { RUN_CONFIG_FORMAT, RUN_FILES, checkFreshRunDir, listDigest, readRunConfig, writeFileAtomic, writeRunConfig, type RunConfig } from '../train/run.js';
import { METHODS, methodNames } from '../adapt/registry.js';
import { MethodOptionError, parseOptionValue, type AdaptMethod, type MethodEnv, type MethodSpec, type OptionValue } from '../adapt/method.js';
import { harmonicMean } from '../data/metrics.js';
import type { ClipModel } from '../clip/model.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import type { Gpu } from '../gpu/index.js';
import { formatSecs } from './progress.js';

const COMMON_OPTIONS = {
  weights: { type: 'string' },
  data: { type: 'string' },
  split: { type: 'string' },
  method: { type: 'string' },
  shots: { type: 'string' },
  seed: { type: 'string' },
  'base-to-novel': { type: 'boolean' },
  out: { type: 'string' },
  resume: { type: 'boolean' },
  'eval-epochs': { type: 'string' },
  'log-every': { type: 'string' },
  'checkpoint-seconds': { type: 'string' },
  'fewshot-index': { type: 'string' },
  cache: { type: 'string' },
  'no-cache': { type: 'boolean' },
  act: { type: 'string' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function methodFlags(): Record<string, { type: 'string' | 'boolean' }> {
  const out: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const spec of Object.values(METHODS)) {
    for (const o of spec.options) {
      const type = o.type === 'bool' ? 'boolean' : 'string';
      if (out[o.flag] && out[o.flag]!.type !== type) throw new Error(`internal: --${o.flag} has two types`);
      out[o.flag] = { type };
    }
  }
  return out;
}

export function trainUsage(): string {
  const methods = Object.values(METHODS)
    .map((m) => `  ${m.name.padEnd(13)} ${m.summary}\n${m.options.map((o) => `      --${o.flag}${o.type === 'bool' ? '' : ' V'}`.padEnd(34) + o.help).join('\n')}`)
    .join('\n');
  return `usage: cliptune train --weights PATH --data DIR [--split FILE] --method M [--shots K] [--seed S]
                      [--base-to-novel] [method options] --out RUN_DIR
       cliptune train --resume --out RUN_DIR

Trains a method on a few-shot subset of DIR's train split (Dassl's sampler: K shots per class,
seed S), evaluates it on the test split (base and novel classes with --base-to-novel) and writes
RUN_DIR/{run.json, checkpoint.safetensors, log.jsonl, report.json, report.md}. Every option's
default is the method's official configuration; the resolved values are printed at the start.

  --shots K            images per class (default 16; 0 = all)      --seed S   (default 1)
  --base-to-novel      train on the base half of the classes; report base, novel and HM
  --eval-epochs N      evaluate on the few-shot val split every N epochs (default 0: only at the end)
  --log-every N        read the loss back every N steps (default 10)
  --checkpoint-seconds S   checkpoint at the end of an epoch when S seconds passed (default 120)
  --fewshot-index FILE pin the few-shot subset (JSON: train indices, or {"train": [...], "val": [...]})
  --cache DIR          feature cache (default $CLIPTUNE_CACHE or ~/.cache/cliptune/features); --no-cache
  --act A              quick_gelu or gelu when the checkpoint does not say
  --resume             continue RUN_DIR's run (Ctrl-C saves and exits; resuming gives the same weights)

methods:
${methods}
`;
}

class UsageError extends Error {}

function int(v: string | undefined, flag: string, min: number, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new UsageError(`--${flag} must be an integer >= ${min}, got "${v}"`);
  return n;
}

interface Parsed {
  values: Record<string, string | boolean | undefined>;
}

function parse(argv: string[]): Parsed {
  try {
    const { values } = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...methodFlags() }, strict: true, allowPositionals: false });
    return { values: values as Record<string, string | boolean | undefined> };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The method's options: official defaults for the context, then what the user gave. */
export function resolveMethodOptions(spec: MethodSpec, values: Record<string, string | boolean | undefined>, ctx: { shots: number; datasetName: string; baseToNovel: boolean }): { options: Record<string, OptionValue>; given: Set<string> } {
  const options = spec.defaults(ctx);
  const given = new Set<string>();
  for (const o of spec.options) {
    const v = values[o.flag];
    if (v === undefined) continue;
    options[o.key] = parseOptionValue(o, v);
    given.add(o.key);
  }
  spec.finalize?.(options, given);
  spec.validate?.(options, ctx);
  return { options, given };
}

/** Flags the user gave that the chosen method does not have. */
function foreignFlags(spec: MethodSpec, values: Record<string, unknown>): string[] {
  const own = new Set(spec.options.map((o) => o.flag));
  const all = new Set(Object.keys(methodFlags()));
  return Object.keys(values).filter((k) => values[k] !== undefined && all.has(k) && !own.has(k));
}

export function buildEnv(a: { gpu: Gpu; model: ClipModel; tokenizer: ClipTokenizer; features: ClipFeatures; cfg: RunConfig; subset: TrainSubset | null; purpose: 'train' | 'eval'; log: (m: string) => void }): MethodEnv {
  return {
    gpu: a.gpu,
    model: a.model,
    tokenizer: a.tokenizer,
    datasetName: a.cfg.datasetName,
    classnames: a.cfg.classnames,
    train: a.subset?.train ?? [],
    val: a.subset?.val ?? null,
    shots: a.cfg.shots,
    seed: a.cfg.seed,
    features: a.features,
    purpose: a.purpose,
    log: a.log,
  };
}

function fmtOption(v: OptionValue): string {
  return v === null ? 'auto' : typeof v === 'string' ? JSON.stringify(v) : String(v);
}

export interface ReportEntry extends EvalResult {
  split: string;
  /** Which classes: all, base or novel (`classes` is their count). */
  classSet: 'all' | 'base' | 'novel';
}

/** A run-level figure for report.md: integers as they are, others to 4 significant digits. */
function fmtFigure(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(4);
}

/**
 * report.json / report.md; `methodSummary`: the method's run-level figures (AdaptMethod.summarizeRun),
 * added as report.json's `methodSummary` and a line of report.md when given.
 */
export function formatReport(cfg: RunConfig, results: ReportEntry[], train: { steps: number; seconds: number; loss: number | null } | null, methodSummary: Record<string, number> | null = null): { json: Record<string, unknown>; md: string } {
  const byClasses = Object.fromEntries(results.map((r) => [r.classSet, r]));
  const hm = byClasses.base && byClasses.novel ? harmonicMean(byClasses.base.accuracy, byClasses.novel.accuracy) : null;
  const json = {
    method: cfg.method,
    dataset: cfg.datasetName,
    shots: cfg.shots,
    seed: cfg.seed,
    baseToNovel: cfg.baseToNovel,
    options: cfg.options,
    results,
    ...(hm !== null ? { hm } : {}),
    ...(train ? { train: { ...train, msPerStep: train.steps ? (1000 * train.seconds) / train.steps : null } } : {}),
    ...(methodSummary ? { methodSummary } : {}),
  };
  const lines = [
    `# cliptune run: ${cfg.method} on ${cfg.datasetName}`,
    '',
    `- weights: ${cfg.weights} (sha256 ${cfg.weightsHash.slice(0, 16)}…)`,
    `- data: ${cfg.data}${cfg.split ? ` (split ${cfg.split})` : ''}; ${cfg.shots || 'all'} shots, seed ${cfg.seed}${cfg.baseToNovel ? ', base-to-novel' : ''}; ${cfg.trainImages} training images, ${cfg.classnames.length} training classes`,
    `- options: ${Object.entries(cfg.options).map(([k, v]) => `${k}=${fmtOption(v)}`).join(', ') || '(none)'}`,
    ...(train ? [`- training: ${train.steps} steps in ${formatSecs(train.seconds)}${train.steps ? ` (${((1000 * train.seconds) / train.steps).toFixed(1)} ms/step)` : ''}${train.loss !== null ? `, final loss ${train.loss.toFixed(4)}` : ''}`] : []),
    ...(methodSummary ? [`- ${cfg.method} over the whole run: ${Object.entries(methodSummary).map(([k, v]) => `${k} ${fmtFigure(v)}`).join(', ')}`] : []),
    '',
    '| split | classes | accuracy | mean per class | correct / total |',
    '|---|---|---|---|---|',
    ...results.map((r) => `| ${r.split} | ${r.classSet} (${r.classes}) | ${r.accuracy.toFixed(2)} | ${r.meanPerClass.toFixed(2)} | ${r.correct} / ${r.total} |`),
    ...(hm !== null ? ['', `HM(base, novel) = ${hm.toFixed(2)}`] : []),
    '',
  ];
  return { json, md: lines.join('\n') };
}

export function formatResultLine(r: ReportEntry): string {
  return `${r.split} ${r.classSet}: accuracy ${r.accuracy.toFixed(2)}% (${r.correct}/${r.total}, ${r.classes} classes, chance ${(100 / r.classes).toFixed(2)}%)\n`;
}

/** Evaluates on the standard protocol of the run: test split, all classes (or base + novel). */
export async function protocolEval(method: AdaptMethod, env: MethodEnv, ds: Awaited<ReturnType<typeof openDataset>>, cfg: RunConfig, classes: ('all' | 'base' | 'novel')[], split: 'train' | 'val' | 'test' = 'test'): Promise<ReportEntry[]> {
  const out: ReportEntry[] = [];
  for (const c of classes) {
    const { items, classnames } = evalSubset(ds, split, c);
    const r = await evaluate(method, env, items, classnames);
    out.push({ split, classSet: c, ...r });
  }
  return out;
}

export interface TrainIo {
  /** Aborting it stops the run like Ctrl-C (checkpoint, exit status 130). */
  signal?: AbortSignal;
  progress?: { write(s: string): unknown; isTTY?: boolean } | null;
  /** Called after every training step (tests). */
  onStep?: (globalStep: number) => void;
}

export async function trainCommand(argv: string[], io: TrainIo = {}): Promise<number> {
  const err = (m: string) => process.stderr.write(`cliptune train: ${m}\n`);
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parse(argv));
  } catch (e) {
    err(`${(e as Error).message}\n\n${trainUsage()}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(trainUsage());
    return 0;
  }
  try {
    return await runTrain(values, io);
  } catch (e) {
    if (e instanceof UsageError || e instanceof MethodOptionError) {
      err(e.message);
      return 2;
    }
    const name = (e as Error).name;
    if (['DatasetError', 'FewshotError', 'RunDirError', 'TokenizerError'].includes(name)) {
      err((e as Error).message);
      return 2;
    }
    throw e;
  }
}

async function runTrain(values: Record<string, string | boolean | undefined>, io: TrainIo): Promise<number> {
  const say = (m: string) => {
    if (!values.quiet) process.stderr.write(`${m}\n`);
  };
  if (!values.out) throw new UsageError('--out RUN_DIR is required');
  const outDir = resolve(values.out as string);
  let cfg: RunConfig;
  let spec: MethodSpec;
  let resume = null as Awaited<ReturnType<typeof loadCheckpoint>> | null;
  const logEvery = int(values['log-every'] as string | undefined, 'log-every', 1, 10);
  const checkpointSeconds = int(values['checkpoint-seconds'] as string | undefined, 'checkpoint-seconds', 0, 120);

  let ds: Awaited<ReturnType<typeof openDataset>>;
  let subset: TrainSubset;
  if (values.resume) {
    cfg = readRunConfig(outDir);
    spec = METHODS[cfg.method]!;
    if (!spec) throw new UsageError(`${outDir}: unknown method "${cfg.method}"`);
    const stray = [...foreignFlags(spec, values), ...spec.options.map((o) => o.flag).filter((f) => values[f] !== undefined)];
    for (const f of ['method', 'shots', 'seed', 'base-to-novel', 'split', 'eval-epochs', 'fewshot-index'] as const) if (values[f] !== undefined) stray.push(f);
    if (stray.length) throw new UsageError(`--resume continues ${outDir} with its own options; do not pass ${stray.map((f) => `--${f}`).join(', ')}`);
    const ckPath = join(outDir, RUN_FILES.checkpoint);
    if (!existsSync(ckPath)) throw new UsageError(`${outDir} has no checkpoint to resume from`);
    resume = await loadCheckpoint(ckPath);
    if (resume.state.extra.done) {
      say(`${outDir}: the run already finished (step ${resume.state.step}); nothing to resume. Use cliptune eval to evaluate it.`);
      return 0;
    }
    if (values.weights) cfg.weights = resolve(values.weights as string);
    if (values.data) cfg.data = resolve(values.data as string);
    ds = await openDataset(cfg.data, cfg.split ?? undefined);
    subset = cfg.method === 'zeroshot'
      ? { classnames: cfg.classnames, train: [], val: null, origin: 'none' }
      : await trainSubset(ds, { shots: cfg.shots, seed: cfg.seed, baseToNovel: cfg.baseToNovel, ...(cfg.fewshotIndex ? { indexFile: cfg.fewshotIndex } : {}) });
    if (subset.classnames.join('\n') !== cfg.classnames.join('\n')) throw new UsageError(`class-count mismatch: ${outDir} was trained on ${cfg.classnames.length} classes, ${cfg.data} gives ${subset.classnames.length} (or other names)`);
    if (listDigest(subset.train) !== cfg.trainDigest) throw new UsageError(`${cfg.data} no longer gives the few-shot images ${outDir} was trained on (the dataset or its split changed); resuming would not reproduce the run`);
  } else {
    if (!values.method) throw new UsageError(`--method is required (one of ${methodNames().join(', ')})`);
    const m = values.method as string;
    const found = METHODS[m];
    if (!found) throw new UsageError(`unknown method "${m}"; known: ${methodNames().join(', ')}`);
    spec = found;
    const foreign = foreignFlags(spec, values);
    if (foreign.length) throw new UsageError(`${foreign.map((f) => `--${f}`).join(', ')} ${foreign.length > 1 ? 'are not options' : 'is not an option'} of ${m} (its options: ${spec.options.map((o) => `--${o.flag}`).join(', ') || 'none'})`);
    // Option values are checked before anything is read (their defaults may depend on the data).
    for (const o of spec.options) if (values[o.flag] !== undefined) parseOptionValue(o, values[o.flag]!);
    if (!values.weights) throw new UsageError('--weights PATH is required');
    if (!values.data) throw new UsageError('--data DIR is required');
    const shots = int(values.shots as string | undefined, 'shots', 0, 16);
    const seed = int(values.seed as string | undefined, 'seed', 0, 1);
    const evalEpochs = int(values['eval-epochs'] as string | undefined, 'eval-epochs', 0, 0);
    const act = values.act as string | undefined;
    if (act && act !== 'quick_gelu' && act !== 'gelu') throw new UsageError(`--act must be quick_gelu or gelu, got ${act}`);
    checkFreshRunDir(outDir);
    const weights = resolve(values.weights as string);
    if (!existsSync(weights)) throw new UsageError(`--weights: ${weights} does not exist`);
    ds = await openDataset(values.data as string, values.split as string | undefined);
    const baseToNovel = !!values['base-to-novel'];
    // Zero-shot trains nothing: no few-shot subset to draw (and no shots to check).
    subset = spec.name === 'zeroshot'
      ? { classnames: baseToNovel ? evalSubset(ds, 'train', 'base').classnames : ds.classnames, train: [], val: null, origin: 'none' }
      : await trainSubset(ds, { shots, seed, baseToNovel, ...(values['fewshot-index'] ? { indexFile: values['fewshot-index'] as string } : {}) });
    const { options, given } = resolveMethodOptions(spec, values, { shots, datasetName: ds.name, baseToNovel });
    cfg = {
      format: RUN_CONFIG_FORMAT,
      method: spec.name,
      options,
      given: [...given],
      weights,
      weightsHash: '',
      data: resolve(values.data as string),
      split: values.split ? resolve(values.split as string) : null,
      datasetName: ds.name,
      shots,
      seed,
      baseToNovel,
      classnames: subset.classnames,
      trainImages: subset.train.length,
      trainDigest: listDigest(subset.train),
      fewshotOrigin: subset.origin,
      fewshotIndex: values['fewshot-index'] ? resolve(values['fewshot-index'] as string) : null,
      evalEpochs,
      logEvery,
      created: new Date().toISOString(),
    };
  }

  const givenSet = new Set(cfg.given);
  say(`cliptune train: ${cfg.method} on ${cfg.datasetName} (${cfg.classnames.length} training classes${cfg.baseToNovel ? ', base-to-novel' : ''}), ${cfg.method === 'zeroshot' ? 'no training' : `${cfg.shots || 'all'} shots, seed ${cfg.seed}, ${cfg.trainImages} images (${cfg.fewshotOrigin})`}`);
  say(`  weights ${cfg.weights}`);
  say(`  options (official defaults; * = given):`);
  for (const o of spec.options) say(`    --${o.flag} ${fmtOption(cfg.options[o.key]!)}${givenSet.has(o.key) ? ' *' : ''}`);
  say(`  run folder ${outDir}${resume ? ` (resuming at step ${resume.state.step})` : ''}`);

  const gpu = await getGpu();
  const act = values.act as 'quick_gelu' | 'gelu' | undefined;
  const { model, tokenizer, notes } = await loadClip(gpu, cfg.weights, act ? { activation: act } : {});
  for (const n of notes) say(`note: ${n}`);
  const hash = await fileSha256(existsSync(join(cfg.weights, 'model.safetensors')) ? join(cfg.weights, 'model.safetensors') : cfg.weights);
  if (resume && hash !== cfg.weightsHash) throw new UsageError(`--weights: ${cfg.weights} is not the checkpoint this run was trained from (sha256 ${hash.slice(0, 16)}… vs ${cfg.weightsHash.slice(0, 16)}…)`);
  cfg.weightsHash = hash;
  const cache = new FeatureCache(values['no-cache'] ? null : resolve((values.cache as string | undefined) ?? defaultCacheDir()));
  const features = new ClipFeatures(model, tokenizer, { cache, weightsHash: hash, progressFrom: values.quiet ? Infinity : 256 });
  const env = buildEnv({ gpu, model, tokenizer, features, cfg, subset, purpose: 'train', log: say });
  const method = spec.create(cfg.options, { shots: cfg.shots, datasetName: cfg.datasetName, baseToNovel: cfg.baseToNovel });
  const tPrep = performance.now();
  await method.prepare(env);
  say(`  caches: ${method.caches.join('; ')} (prepared in ${formatSecs((performance.now() - tPrep) / 1000)}; cache ${cache.root ?? 'off'}: ${cache.hits} hits, ${cache.misses} misses)`);

  if (!resume) {
    mkdirSync(outDir, { recursive: true });
    writeRunConfig(outDir, cfg);
  }
  const log = new JsonlLog(join(outDir, RUN_FILES.log));
  if (!resume) log.write({ type: 'config', ...cfg });

  const controller = new AbortController();
  const onAbort = () => controller.abort();
  io.signal?.addEventListener('abort', onAbort);
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write('\ninterrupt: saving a checkpoint after this step (Ctrl-C again to quit without saving)\n');
      controller.abort();
    } else process.exit(130);
  };
  process.on('SIGINT', onSigint);
  let result;
  try {
    const evalList = env.val && env.val.length ? env.val : null;
    result = await trainLoop({
      method,
      checkpointPath: join(outDir, RUN_FILES.checkpoint),
      run: { method: cfg.method, options: cfg.options, baseHash: cfg.weightsHash, classnames: cfg.classnames, seed: cfg.seed },
      logEvery: cfg.logEvery,
      evalEvery: cfg.evalEpochs,
      evaluate: async () => {
        const items = evalList ?? evalSubset(ds, 'test', cfg.baseToNovel ? 'base' : 'all').items;
        const r = await evaluate(method, env, items, cfg.classnames);
        return { [evalList ? 'val_accuracy' : 'test_accuracy']: r.accuracy };
      },
      checkpointSeconds,
      signal: controller.signal,
      log,
      progress: values.quiet ? null : io.progress === undefined ? process.stderr : io.progress,
      resume,
      ...(io.onStep ? { onStep: io.onStep } : {}),
    });
  } finally {
    process.off('SIGINT', onSigint);
    io.signal?.removeEventListener('abort', onAbort);
  }
  if (result.status !== 'done') {
    process.stderr.write(`cliptune train: ${result.message}\n`);
    if (result.status === 'interrupted') process.stderr.write(`resume with: cliptune train --resume --out ${outDir}\n`);
    method.dispose();
    model.dispose();
    return result.status === 'interrupted' ? 130 : 1;
  }
  say(`cliptune train: ${result.message}`);
  const classes: ('all' | 'base' | 'novel')[] = cfg.baseToNovel ? ['base', 'novel'] : ['all'];
  const results = await protocolEval(method, env, ds, cfg, classes);
  // The method's own figures over every step of the run (a resumed run's earlier steps included).
  const methodSummary = method.summarizeRun?.(readStepRecords(join(outDir, RUN_FILES.log))) ?? null;
  const { json, md } = formatReport(cfg, results, { steps: result.stepsRun, seconds: result.seconds, loss: result.lastLoss }, methodSummary);
  writeFileAtomic(join(outDir, RUN_FILES.report), JSON.stringify(json, null, 2) + '\n');
  writeFileAtomic(join(outDir, RUN_FILES.reportMd), md);
  log.write({ type: 'report', ...json });
  for (const r of results) process.stdout.write(formatResultLine(r));
  if (json.hm !== undefined) process.stdout.write(`HM ${(json.hm as number).toFixed(2)}\n`);
  method.dispose();
  model.dispose();
  return 0;
}
