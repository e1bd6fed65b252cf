// `cliptune embed`: image and/or text embeddings of a CLIP checkpoint, written as safetensors.
import { parseArgs } from 'node:util';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { getGpu } from '../gpu/index.js';
import { tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { loadClip } from '../clip/load-node.js';
import type { ClipModel } from '../clip/model.js';
import { loadImageForClip } from '../clip/preprocess-node.js';
import { openSafetensors, writeSafetensors } from '../io/safetensors-node.js';
import { Progress } from './progress.js';

const USAGE = `usage: cliptune embed --weights PATH [--images DIR|FILE...] [--texts FILE | --text STR...]
                     [--pixels F.safetensors] [--input-ids F.safetensors] --out OUT.safetensors
                     [--act quick_gelu|gelu] [--batch N]

Writes image_embeds [B, E] and text_embeds [N, E] (unnormalised, as CLIP's encode_image /
encode_text) and logits_per_image [B, N] when both are given.
  --weights PATH      a .safetensors file (OpenAI or Hugging Face naming) or a HF model folder
  --images ...        image files, or folders of them (JPEG, PNG; sorted by name)
  --texts FILE        one text per line;   --text STR  (repeatable) texts on the command line
  --pixels F          safetensors with pixel_values [B, 3, H, W] f32, already normalised
  --input-ids F       safetensors with input_ids [B, L] integer token ids
`;

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png']);

function listImages(args: string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    let st;
    try {
      st = statSync(a);
    } catch {
      throw new Error(`--images: ${a} does not exist`);
    }
    if (st.isDirectory()) {
      const files = readdirSync(a)
        .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
        .sort()
        .map((f) => join(a, f));
      if (!files.length) throw new Error(`--images: no .jpg/.jpeg/.png files in ${a}`);
      out.push(...files);
    } else out.push(a);
  }
  return out;
}

async function embedBatches(n: number, batch: number, label: string, run: (start: number, end: number) => Promise<Tensor>): Promise<Float32Array> {
  const progress = new Progress(label, n, 'items');
  const parts: Float32Array[] = [];
  for (let s = 0; s < n; s += batch) {
    const e = Math.min(n, s + batch);
    const t = await run(s, e);
    parts.push((await t.read()) as Float32Array);
    t.dispose();
    progress.tick(e - s);
  }
  progress.done();
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Float32Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export async function embedCommand(argv: string[]): Promise<number> {
  let values: Record<string, string | string[] | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        weights: { type: 'string' },
        images: { type: 'string', multiple: true },
        texts: { type: 'string' },
        text: { type: 'string', multiple: true },
        pixels: { type: 'string' },
        'input-ids': { type: 'string' },
        out: { type: 'string' },
        act: { type: 'string' },
        batch: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    process.stderr.write(`cliptune embed: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const fail = (msg: string) => {
    process.stderr.write(`cliptune embed: ${msg}\n`);
    return 2;
  };
  if (!values.weights) return fail('--weights is required');
  if (!values.out) return fail('--out is required');
  const imageArgs = [...((values.images as string[] | undefined) ?? []), ...positionals];
  const hasImages = imageArgs.length > 0 || !!values.pixels;
  const hasTexts = !!values.texts || !!values.text || !!values['input-ids'];
  if (!hasImages && !hasTexts) return fail('nothing to embed: give --images/--pixels and/or --texts/--text/--input-ids');
  if (imageArgs.length && values.pixels) return fail('give either --images or --pixels, not both');
  const textSources = [values.texts, values.text, values['input-ids']].filter(Boolean).length;
  if (textSources > 1) return fail('give one of --texts, --text or --input-ids');
  const act = values.act as string | undefined;
  if (act && act !== 'quick_gelu' && act !== 'gelu') return fail(`--act must be quick_gelu or gelu, got ${act}`);
  const batch = values.batch ? Number(values.batch) : 32;
  if (!Number.isInteger(batch) || batch < 1) return fail(`--batch must be a positive integer, got ${values.batch}`);

  const gpu = await getGpu();
  const { model, tokenizer, notes } = await loadClip(gpu, values.weights as string, act ? { activation: act as 'gelu' } : {});
  for (const n of notes) process.stderr.write(`note: ${n}\n`);
  const res = model.config.image.resolution;
  const out = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  const e = model.config.embedDim;

  let imageEmbeds: Float32Array | null = null;
  if (imageArgs.length) {
    const files = listImages(imageArgs);
    imageEmbeds = await embedBatches(files.length, batch, 'images', async (s, end) => {
      const px = new Float32Array((end - s) * 3 * res * res);
      for (let i = s; i < end; i++) px.set(await loadImageForClip(files[i]!, res), (i - s) * 3 * res * res);
      return encodeImages(model, px, end - s);
    });
  } else if (values.pixels) {
    const f = await openSafetensors(values.pixels as string);
    try {
      if (!f.names.includes('pixel_values')) throw new Error(`${values.pixels}: no tensor "pixel_values" (has ${f.names.join(', ')})`);
      const shape = f.info('pixel_values').shape;
      if (shape.length !== 4 || shape[1] !== 3 || shape[2] !== res || shape[3] !== res) {
        throw new Error(`${values.pixels}: pixel_values has shape [${shape}], this model needs [B, 3, ${res}, ${res}]`);
      }
      const px = await f.getF32('pixel_values');
      const per = 3 * res * res;
      imageEmbeds = await embedBatches(shape[0]!, batch, 'images', async (s, end) => encodeImages(model, px.subarray(s * per, end * per), end - s));
    } finally {
      f.close();
    }
  }
  if (imageEmbeds) out.set('image_embeds', { dtype: 'F32', shape: [imageEmbeds.length / e, e], data: imageEmbeds });

  let textEmbeds: Float32Array | null = null;
  let ids: Int32Array | null = null;
  let rows = 0;
  let length = 0;
  if (values['input-ids']) {
    const f = await openSafetensors(values['input-ids'] as string);
    try {
      if (!f.names.includes('input_ids')) throw new Error(`${values['input-ids']}: no tensor "input_ids" (has ${f.names.join(', ')})`);
      const shape = f.info('input_ids').shape;
      if (shape.length !== 2) throw new Error(`${values['input-ids']}: input_ids has shape [${shape}], expected [B, L]`);
      [rows, length] = shape as [number, number];
      ids = await f.getI32('input_ids');
    } finally {
      f.close();
    }
  } else if (values.texts || values.text) {
    const texts = values.texts ? readFileSync(values.texts as string, 'utf8').split(/\r?\n/).filter((l) => l.length > 0) : (values.text as string[]);
    if (!texts.length) throw new Error(`${values.texts}: no texts (one per line)`);
    texts.forEach((t, i) => {
      if (!t.trim()) throw new Error(`text ${i + 1} is empty`);
    });
    const tok = tokenizer.tokenize(texts, { contextLength: model.config.text.contextLength, rejectEmpty: true });
    rows = tok.length;
    length = model.config.text.contextLength;
    ids = new Int32Array(rows * length);
    tok.forEach((r, i) => ids!.set(r, i * length));
  }
  if (ids) {
    const all = ids;
    textEmbeds = await embedBatches(rows, batch * 2, 'texts', async (s, end) =>
      noGrad(() => model.encodeText({ ids: all.subarray(s * length, end * length), rows: end - s, length }).embeds),
    );
    out.set('text_embeds', { dtype: 'F32', shape: [rows, e], data: textEmbeds });
  }
  if (imageEmbeds && textEmbeds) {
    const b = imageEmbeds.length / e;
    const img = imageEmbeds;
    const txt = textEmbeds;
    const logits = noGrad(() => tidy(() => model.logits(tensor(img, [b, e], 'f32', gpu), tensor(txt, [rows, e], 'f32', gpu))));
    out.set('logits_per_image', { dtype: 'F32', shape: [b, rows], data: (await logits.read()) as Float32Array });
    logits.dispose();
  }
  await writeSafetensors(values.out as string, out, { format: 'pt', generator: 'cliptune embed' });
  process.stdout.write(`wrote ${values.out}: ${[...out].map(([k, v]) => `${k} [${v.shape}]`).join(', ')}\n`);
  model.dispose();
  return 0;
}

function encodeImages(model: ClipModel, px: Float32Array, b: number): Tensor {
  const res = model.config.image.resolution;
  return noGrad(() =>
    tidy(() => {
      const t = tensor(px, [b, 3, res, res], 'f32', model.gpu);
      return model.encodeImage(t).embeds;
    }),
  );
}
