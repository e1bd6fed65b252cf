// `cliptune eval`: accuracy of a trained run on a dataset folder (its test split by default; base and
// novel classes for base-to-novel runs; any other dataset's classes for cross-dataset transfer).
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { getGpu } from '../gpu/index.js';
import { loadClip } from '../clip/load-node.js';
import { fileSha256, loadCheckpoint } from '../train/checkpoint.js';
import { ClipFeatures, FeatureCache, defaultCacheDir } from '../train/features.js';
import { loadParams } from '../train/loop.js';
import { evalSubset, openDataset, type ClassChoice } from '../train/data.js';
import { RUN_FILES, evalFileName, readRunConfig, writeFileAtomic } from '../train/run.js';
import { METHODS } from '../adapt/registry.js';
import { MethodOptionError } from '../adapt/method.js';
import { buildEnv, formatReport, formatResultLine, protocolEval } from './train.js';

const USAGE = `usage: cliptune eval --run RUN_DIR [--data DIR] [--split test|val|train] [--classes base|novel|all]
                     [--split-file FILE] [--weights PATH] [--cache DIR | --no-cache] [--json]

Evaluates RUN_DIR's trained method on DIR (default: the run's dataset). --classes defaults to
base and novel for base-to-novel runs, all otherwise. A dataset with other classes than the run's
is evaluated on its own classes (cross-dataset transfer). Writes RUN_DIR/eval-<dataset>-<split>.json.
`;

export async function evalCommand(argv: string[]): Promise<number> {
  const err = (m: string) => process.stderr.write(`cliptune eval: ${m}\n`);
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        run: { type: 'string' },
        data: { type: 'string' },
        split: { type: 'string' },
        'split-file': { type: 'string' },
        classes: { type: 'string' },
        weights: { type: 'string' },
        cache: { type: 'string' },
        'no-cache': { type: 'boolean' },
        act: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }) as { values: Record<string, string | boolean | undefined> });
  } catch (e) {
    err(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    return await runEval(values);
  } catch (e) {
    const name = (e as Error).name;
    if (e instanceof MethodOptionError || ['DatasetError', 'FewshotError', 'RunDirError', 'UsageError'].includes(name)) {
      err((e as Error).message);
      return 2;
    }
    throw e;
  }
}

class UsageError extends Error {
  override name = 'UsageError';
}

async function runEval(values: Record<string, string | boolean | undefined>): Promise<number> {
  if (!values.run) throw new UsageError('--run RUN_DIR is required');
  const runDir = resolve(values.run as string);
  const cfg = readRunConfig(runDir);
  const spec = METHODS[cfg.method];
  if (!spec) throw new UsageError(`${runDir}: unknown method "${cfg.method}"`);
  const ckPath = join(runDir, RUN_FILES.checkpoint);
  if (!existsSync(ckPath)) throw new UsageError(`${runDir} has no checkpoint (the run never started training)`);
  const split = (values.split as string | undefined) ?? 'test';
  if (!['test', 'val', 'train'].includes(split)) throw new UsageError(`--split must be test, val or train, got "${split}"`);
  const classesArg = values.classes as string | undefined;
  if (classesArg && !['all', 'base', 'novel'].includes(classesArg)) throw new UsageError(`--classes must be base, novel or all, got "${classesArg}"`);
  const dataDir = resolve((values.data as string | undefined) ?? cfg.data);
  const splitFile = (values['split-file'] as string | undefined) ?? (dataDir === cfg.data ? cfg.split ?? undefined : undefined);
  const ds = await openDataset(dataDir, splitFile);
  const runClasses = cfg.baseToNovel ? evalSubset(ds, 'train', 'base').classnames : ds.classnames;
  const same = runClasses.join('\n') === cfg.classnames.join('\n');
  if (!same && dataDir === cfg.data) {
    throw new UsageError(`class-count mismatch: ${runDir} was trained on ${cfg.classnames.length} classes of ${cfg.data}, which now gives ${runClasses.length}${runClasses.length === cfg.classnames.length ? ' with other names' : ''}`);
  }
  const classes: ClassChoice[] = classesArg ? [classesArg as ClassChoice] : cfg.baseToNovel && same ? ['base', 'novel'] : ['all'];
  if (!same) process.stderr.write(`note: ${dataDir} has other classes than the run (${ds.classnames.length} vs ${cfg.classnames.length}): cross-dataset evaluation on its own classes\n`);

  const ck = await loadCheckpoint(ckPath);
  if (!ck.state.extra.done) process.stderr.write(`note: the run stopped at step ${ck.state.step} before finishing; evaluating its last checkpoint\n`);
  const gpu = await getGpu();
  const weights = values.weights ? resolve(values.weights as string) : cfg.weights;
  const act = values.act as 'quick_gelu' | 'gelu' | undefined;
  const { model, tokenizer } = await loadClip(gpu, weights, act ? { activation: act } : {});
  const hash = await fileSha256(existsSync(join(weights, 'model.safetensors')) ? join(weights, 'model.safetensors') : weights);
  if (hash !== cfg.weightsHash) throw new UsageError(`--weights: ${weights} is not the checkpoint this run was trained from (sha256 ${hash.slice(0, 16)}… vs ${cfg.weightsHash.slice(0, 16)}…)`);
  const cache = new FeatureCache(values['no-cache'] ? null : resolve((values.cache as string | undefined) ?? defaultCacheDir()));
  const features = new ClipFeatures(model, tokenizer, { cache, weightsHash: hash });
  const env = buildEnv({ gpu, model, tokenizer, features, cfg, subset: null, purpose: 'eval', log: (m) => process.stderr.write(`${m}\n`) });
  const method = spec.create(cfg.options, { shots: cfg.shots, datasetName: cfg.datasetName, baseToNovel: cfg.baseToNovel });
  await method.prepare(env);
  loadParams(method, ck);
  // Dataset-specific templates follow the evaluated dataset (cross-dataset transfer).
  const evalEnv = { ...env, datasetName: ds.name };
  const results = await protocolEval(method, evalEnv, ds, cfg, classes, split as 'test' | 'val' | 'train');
  const { json } = formatReport(cfg, results, null);
  const out = { ...json, evaluatedOn: { data: dataDir, dataset: ds.name, split, classes } };
  writeFileAtomic(join(runDir, evalFileName(ds.name, split)), JSON.stringify(out, null, 2) + '\n');
  if (values.json) process.stdout.write(JSON.stringify(out) + '\n');
  else {
    for (const r of results) process.stdout.write(formatResultLine(r));
    if (json.hm !== undefined) process.stdout.write(`HM ${(json.hm as number).toFixed(2)}\n`);
  }
  method.dispose();
  model.dispose();
  return 0;
}
