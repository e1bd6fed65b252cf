// `cliptune pretrain`: contrastive pretraining of the world CLIP (src/train/pretrain.ts).
import { parseArgs } from 'node:util';
import { getGpu } from '../gpu/index.js';
import { loadClipTokenizer } from '../clip/tokenizer-node.js';
import { DOMAINS, type Domain } from '../data/world/attributes.js';
import {
  PRETRAIN_DEFAULTS, QUICK_OVERRIDES, PretrainDivergedError, pretrain, validateOptions,
  type PretrainOptions, type WorldClipShape,
} from '../train/pretrain.js';

const D = PRETRAIN_DEFAULTS;
const Q = { ...D, ...QUICK_OVERRIDES };

export const PRETRAIN_USAGE = `usage: cliptune pretrain --out DIR [--quick] [options]
       cliptune pretrain --out DIR --resume

Pretrains a small CLIP from scratch on the synthetic world's (image, caption) stream with CLIP's
symmetric contrastive loss, AdamW, warmup and cosine decay, and exports it as
DIR/world-clip.safetensors (OpenAI tensor names). DIR also gets checkpoint.safetensors (every
--checkpoint-every steps and on Ctrl-C), log.jsonl (loss, lr, logit scale, gradient norm, evals),
run.json and results.json (test-set zero-shot accuracy of the exported model, throughput).

  --quick               a few-minute recipe: ${Q.steps} steps of ${Q.batch} (the full recipe: ${D.steps} of ${D.batch})
  --resume              continue DIR/checkpoint.safetensors to bit-identical weights
  --steps N             optimiser steps (default ${D.steps})
  --batch N             pairs per step (default ${D.batch})
  --lr X                peak learning rate (default ${D.lr}); --min-lr X (default ${D.minLr})
  --warmup N            linear warmup steps (default ${D.warmupSteps})
  --wd X                AdamW weight decay on weight matrices (default ${D.weightDecay})
  --clip-grad X         max gradient norm, 0 = off (default ${D.clipGrad})
  --seed N              initial weights (default ${D.seed}); --world-seed N: the world (default ${D.worldSeed})
  --log-every N         steps per loss readback (default ${D.logEvery})
  --eval-every N        held-out zero-shot eval interval, 0 = off (default ${D.evalEvery}); --eval-per-class N (default ${D.evalPerClass})
  --checkpoint-every N  (default ${D.checkpointEvery})
  --test-per-class N    test images per class of the final evaluation, 0 = none (default ${D.finalEvalPerClass})
  --test-domains A,B    domains of the final evaluation (default ${D.finalEvalDomains.join(',')})
  --export-dtype T      f16 or f32 (default ${D.exportDtype})
  --export-vocab V      compact (the world's ${'236'} token rows + their ids) or full (49408 rows) (default ${D.exportVocab})
  --image-size N --patch N --vision-width N --vision-layers N --text-width N --text-layers N --embed N
                        model shape (default ${D.shape.imageSize}, ${D.shape.patchSize}, ${D.shape.visionWidth}, ${D.shape.visionLayers}, ${D.shape.textWidth}, ${D.shape.textLayers}, ${D.shape.embedDim})

Ctrl-C saves a checkpoint at the end of the current step and exits; press it twice to quit at once.
`;

const NUMERIC: Record<string, keyof PretrainOptions> = {
  steps: 'steps', batch: 'batch', lr: 'lr', 'min-lr': 'minLr', warmup: 'warmupSteps', wd: 'weightDecay', 'clip-grad': 'clipGrad',
  seed: 'seed', 'world-seed': 'worldSeed', 'log-every': 'logEvery', 'eval-every': 'evalEvery', 'eval-per-class': 'evalPerClass',
  'checkpoint-every': 'checkpointEvery', 'test-per-class': 'finalEvalPerClass',
};
const SHAPE: Record<string, keyof WorldClipShape> = {
  'image-size': 'imageSize', patch: 'patchSize', 'vision-width': 'visionWidth', 'vision-layers': 'visionLayers',
  'text-width': 'textWidth', 'text-layers': 'textLayers', embed: 'embedDim',
};

class UsageError extends Error {}

function num(name: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got ${JSON.stringify(v)}`);
  return n;
}

/** Parses argv into options (null with --resume and no option given). Exported for tests. */
export function parsePretrainArgs(argv: string[]): { out: string; resume: boolean; options: PretrainOptions | null; help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    out: { type: 'string' }, quick: { type: 'boolean' }, resume: { type: 'boolean' }, help: { type: 'boolean' },
    'test-domains': { type: 'string' }, 'export-dtype': { type: 'string' }, 'export-vocab': { type: 'string' },
  };
  for (const k of [...Object.keys(NUMERIC), ...Object.keys(SHAPE)]) options[k] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }) as { values: Record<string, string | boolean | undefined> });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) return { out: '', resume: false, options: null, help: true };
  if (typeof values.out !== 'string' || !values.out) throw new UsageError('--out DIR is required');
  const resume = !!values.resume;
  const given = Object.keys(values).filter((k) => !['out', 'resume', 'help'].includes(k) && values[k] !== undefined);
  if (resume && given.length === 0) return { out: values.out, resume, options: null, help: false };
  const o: PretrainOptions = structuredClone(values.quick ? Q : D);
  for (const [flag, key] of Object.entries(NUMERIC)) {
    const v = values[flag];
    if (typeof v === 'string') (o as unknown as Record<string, number>)[key] = num(flag, v);
  }
  for (const [flag, key] of Object.entries(SHAPE)) {
    const v = values[flag];
    if (typeof v === 'string') o.shape[key] = num(flag, v);
  }
  if (typeof values['test-domains'] === 'string') {
    const list = values['test-domains'].split(',').map((s) => s.trim()).filter(Boolean);
    for (const d of list) if (!(DOMAINS as readonly string[]).includes(d)) throw new UsageError(`--test-domains: unknown domain ${JSON.stringify(d)}; valid: ${DOMAINS.join(', ')}`);
    o.finalEvalDomains = list as Domain[];
  }
  if (values['export-dtype'] !== undefined) o.exportDtype = values['export-dtype'] as 'f16';
  if (values['export-vocab'] !== undefined) o.exportVocab = values['export-vocab'] as 'compact';
  try {
    validateOptions(o);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return { out: values.out, resume, options: o, help: false };
}

export async function pretrainCommand(argv: string[]): Promise<number> {
  let args;
  try {
    args = parsePretrainArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`cliptune pretrain: ${e.message}\n${PRETRAIN_USAGE.split('\n').slice(0, 2).join('\n')}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(PRETRAIN_USAGE);
    return 0;
  }
  let stop = false;
  const onSigint = () => {
    stop = true;
    process.stderr.write('\ncliptune pretrain: stopping after this step and saving a checkpoint (Ctrl-C again quits at once)\n');
  };
  process.once('SIGINT', onSigint);
  try {
    const gpu = await getGpu();
    const tokenizer = await loadClipTokenizer();
    const res = await pretrain(gpu, tokenizer, args.options, {
      out: args.out,
      resume: args.resume,
      shouldStop: () => stop,
      say: (l) => process.stderr.write(`${l}\n`),
      progress: true,
      command: `cliptune pretrain ${argv.join(' ')}`,
    });
    if (res.status === 'interrupted') return 130;
    const t = res.throughput;
    if (t) {
      process.stdout.write(`throughput: ${t.stepsPerSec.toFixed(3)} steps/s, ${t.imagesPerSec.toFixed(1)} images/s, ${t.cpuSecondsPerStep.toFixed(2)} CPU s/step (load average ${t.loadAverage.join(' ')})\n`);
    }
    for (const e of res.finalEval) {
      process.stdout.write(`zero-shot ${e.domain.padEnd(9)} base ${e.base.toFixed(2)}%  novel ${e.novel.toFixed(2)}%  all ${e.all.toFixed(2)}%  (${e.images} test images)\n`);
    }
    process.stdout.write(`exported ${res.exported}\n`);
    return 0;
  } catch (e) {
    if (e instanceof PretrainDivergedError) {
      process.stderr.write(`cliptune pretrain: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}
