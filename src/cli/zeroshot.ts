// `cliptune zeroshot`: classify images with a CLIP checkpoint and class-name prompts.
import { parseArgs } from 'node:util';
import { readdirSync, statSync } from 'node:fs';
import { extname, join, basename } from 'node:path';
import { getGpu } from '../gpu/index.js';
import { tensor, tidy } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { matmul } from '../ops/matmul.js';
import { l2normalize } from '../ops/distance.js';
import { argmax } from '../ops/reduce.js';
import { checkTokenizerFits, loadClip } from '../clip/load-node.js';
import { loadImageForClip } from '../clip/preprocess-node.js';
import { zeroShotWeights } from '../adapt/zeroshot.js';
import type { ClipModel } from '../clip/model.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import { Progress } from './progress.js';
import { IMAGE_EXT, UsageError, exitCodeOf, parseHeads, sniffImages } from './clip-inputs.js';

const USAGE = `usage: cliptune zeroshot --weights PATH --images DIR [--classes a,b,c] [--template T]... [--act A]
                        [--heads N|IMAGE,TEXT] [--vocab PATH] [--batch N] [--json]

Classifies images by cosine similarity with class prompts. If DIR holds one folder per class,
the folder names are the labels (and the class names unless --classes is given, "_" read as a
space) and accuracy is printed; otherwise each image's prediction is printed.
  --template T   prompt template with {} for the class name (repeatable: an ensemble,
                 averaged as in the CLIP paper); default "a photo of a {}."
  --act, --heads, --vocab  as for cliptune embed
`;

interface Item {
  path: string;
  label: number;
}

function collect(dir: string): { items: Item[]; folders: string[] } {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new Error(`--images: ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new Error(`--images: ${dir} is not a folder`);
  const entries = readdirSync(dir, { withFileTypes: true });
  const folders = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const items: Item[] = [];
  if (folders.length) {
    folders.forEach((f, label) => {
      for (const name of readdirSync(join(dir, f)).sort()) {
        if (IMAGE_EXT.has(extname(name).toLowerCase())) items.push({ path: join(dir, f, name), label });
      }
    });
  } else {
    for (const e of entries) if (e.isFile() && IMAGE_EXT.has(extname(e.name).toLowerCase())) items.push({ path: join(dir, e.name), label: -1 });
    items.sort((a, b) => a.path.localeCompare(b.path));
  }
  if (!items.length) throw new Error(`--images: no .jpg/.jpeg/.png images in ${dir}`);
  return { items, folders };
}

export async function zeroshotCommand(argv: string[]): Promise<number> {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        weights: { type: 'string' },
        images: { type: 'string' },
        classes: { type: 'string' },
        template: { type: 'string', multiple: true },
        act: { type: 'string' },
        heads: { type: 'string' },
        vocab: { type: 'string' },
        batch: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    process.stderr.write(`cliptune zeroshot: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  return exitCodeOf('zeroshot', USAGE, () => zeroshot(values));
}

async function zeroshot(values: Record<string, string | string[] | boolean | undefined>): Promise<number> {
  if (!values.weights) throw new UsageError('--weights is required');
  if (!values.images) throw new UsageError('--images is required');
  const act = values.act as string | undefined;
  if (act && act !== 'quick_gelu' && act !== 'gelu') throw new UsageError(`--act must be quick_gelu or gelu, got ${act}`);
  const batch = values.batch ? Number(values.batch) : 64;
  if (!Number.isInteger(batch) || batch < 1) throw new UsageError(`--batch must be a positive integer, got ${values.batch}`);
  const heads = parseHeads(values.heads as string | undefined);
  const { items, folders } = collect(values.images as string);
  let classes: string[];
  if (values.classes) {
    classes = (values.classes as string).split(',').map((c) => c.trim());
    if (classes.some((c) => !c)) throw new UsageError('--classes has an empty name');
    if (folders.length && folders.length !== classes.length) {
      throw new UsageError(`--classes names ${classes.length} classes but ${values.images} has ${folders.length} class folders`);
    }
  } else if (folders.length) {
    classes = folders.map((f) => f.replace(/_/g, ' '));
  } else throw new UsageError('--classes is required when the images are not in class folders');
  const templates = (values.template as string[] | undefined) ?? ['a photo of a {}.'];
  for (const t of templates) if (!t.includes('{}')) throw new UsageError(`--template "${t}" has no {} for the class name`);
  sniffImages(items.map((it) => it.path));

  const gpu = await getGpu();
  const { model, tokenizer, notes } = await loadClip(gpu, values.weights as string, {
    ...(act ? { activation: act as 'gelu' } : {}),
    ...(heads ? { heads } : {}),
    ...(values.vocab ? { vocab: values.vocab as string } : {}),
  });
  try {
    for (const n of notes) process.stderr.write(`note: ${n}\n`);
    checkTokenizerFits(tokenizer, model);
    return await classify(model, tokenizer, items, classes, templates, batch, !!values.json);
  } finally {
    model.dispose();
  }
}

async function classify(
  model: ClipModel, tokenizer: ClipTokenizer, items: Item[], classes: string[], templates: string[], batch: number, json: boolean,
): Promise<number> {
  const gpu = model.gpu;
  const res = model.config.image.resolution;
  const weights = zeroShotWeights(model, tokenizer, classes, templates);
  const preds: number[] = [];
  const progress = new Progress('zeroshot', items.length, 'images');
  for (let s = 0; s < items.length; s += batch) {
    const chunk = items.slice(s, s + batch);
    const px = new Float32Array(chunk.length * 3 * res * res);
    for (let i = 0; i < chunk.length; i++) px.set(await loadImageForClip(chunk[i]!.path, res), i * 3 * res * res);
    const pred = noGrad(() =>
      tidy(() => {
        const img = model.encodeImage(tensor(px, [chunk.length, 3, res, res], 'f32', gpu)).embeds;
        return argmax(matmul(l2normalize(img), weights, { transB: true }), -1);
      }),
    );
    preds.push(...((await pred.read()) as Int32Array));
    pred.dispose();
    progress.tick(chunk.length);
  }
  progress.done();
  weights.dispose();
  const labelled = items.every((it) => it.label >= 0);
  const correct = labelled ? items.filter((it, i) => preds[i] === it.label).length : 0;
  if (json) {
    process.stdout.write(
      JSON.stringify({
        classes,
        templates,
        predictions: items.map((it, i) => ({ image: it.path, predicted: classes[preds[i]!], ...(labelled ? { label: classes[it.label] } : {}) })),
        ...(labelled ? { accuracy: (100 * correct) / items.length } : {}),
      }) + '\n',
    );
  } else {
    if (!labelled || items.length <= 50) {
      for (let i = 0; i < items.length; i++) process.stdout.write(`${basename(items[i]!.path)}\t${classes[preds[i]!]}\n`);
    }
    if (labelled) process.stdout.write(`accuracy ${((100 * correct) / items.length).toFixed(2)}% (${correct}/${items.length}, ${classes.length} classes, chance ${(100 / classes.length).toFixed(2)}%)\n`);
  }
  return 0;
}
