// `cliptune embed`: image and/or text embeddings of a CLIP checkpoint, written as safetensors.
// Every input is checked before anything is encoded (files and flags before the model is loaded,
// token ids and pixel shapes against the model right after), and the output is written
// atomically at the end, so a failed run leaves no file behind.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { getGpu } from '../gpu/index.js';
import { tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { checkTokenizerFits, loadClip } from '../clip/load-node.js';
import type { ClipModel } from '../clip/model.js';
import { loadImageForClip } from '../clip/preprocess-node.js';
import { writeSafetensors } from '../io/safetensors-node.js';
import { Progress } from './progress.js';
import {
  UsageError, checkIds, exitCodeOf, checkOutPath, checkPixels, listImages, parseHeads, readInputIds, readPixels, sniffImages,
} from './clip-inputs.js';

const USAGE = `usage: cliptune embed --weights PATH [--images DIR|FILE...] [--texts FILE | --text STR...]
                     [--pixels F.safetensors] [--input-ids F.safetensors] --out OUT.safetensors
                     [--act quick_gelu|gelu] [--heads N|IMAGE,TEXT] [--vocab PATH] [--batch N]

Writes image_embeds [B, E] and text_embeds [N, E] (unnormalised, as CLIP's encode_image /
encode_text) and logits_per_image [B, N] when both are given.
  --weights PATH      a .safetensors file (OpenAI or Hugging Face naming) or a HF model folder
  --images ...        image files, or folders of them (JPEG, PNG; sorted by name)
  --texts FILE        one text per line;   --text STR  (repeatable) texts on the command line
  --pixels F          safetensors with pixel_values [B, 3, H, W] f32, already normalised
  --input-ids F       safetensors with input_ids [B, L] integer token ids
  --act A             the MLP activation when no config.json says (default quick_gelu, OpenAI's)
  --heads N           attention heads when a width is not a multiple of 64 and there is no config
  --vocab PATH        tokenizer files (default: the model folder's, else OpenAI's vocabulary)
`;

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

type Values = Record<string, string | string[] | boolean | undefined>;

export async function embedCommand(argv: string[]): Promise<number> {
  let values: Values;
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
        heads: { type: 'string' },
        vocab: { type: 'string' },
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
  return exitCodeOf('embed', USAGE, () => embed(values, positionals));
}

async function embed(values: Values, positionals: string[]): Promise<number> {
  // ---- the command line
  if (!values.weights) throw new UsageError('--weights is required');
  if (!values.out) throw new UsageError('--out is required');
  const out = values.out as string;
  const imageArgs = [...((values.images as string[] | undefined) ?? []), ...positionals];
  const hasImages = imageArgs.length > 0 || !!values.pixels;
  const hasTexts = !!values.texts || !!values.text || !!values['input-ids'];
  if (!hasImages && !hasTexts) throw new UsageError('nothing to embed: give --images/--pixels and/or --texts/--text/--input-ids');
  if (imageArgs.length && values.pixels) throw new UsageError('give either --images or --pixels, not both');
  const textSources = [values.texts, values.text, values['input-ids']].filter(Boolean).length;
  if (textSources > 1) throw new UsageError('give one of --texts, --text or --input-ids');
  const act = values.act as string | undefined;
  if (act && act !== 'quick_gelu' && act !== 'gelu') throw new UsageError(`--act must be quick_gelu or gelu, got ${act}`);
  const batch = values.batch ? Number(values.batch) : 32;
  if (!Number.isInteger(batch) || batch < 1) throw new UsageError(`--batch must be a positive integer, got ${values.batch}`);
  const heads = parseHeads(values.heads as string | undefined);

  // ---- inputs that need no model
  checkOutPath(out);
  const files = imageArgs.length ? listImages(imageArgs) : null;
  if (files) sniffImages(files);
  const pixels = values.pixels ? await readPixels(values.pixels as string) : null;
  const idsIn = values['input-ids'] ? await readInputIds(values['input-ids'] as string) : null;
  let texts: string[] | null = null;
  if (values.texts) {
    const path = values.texts as string;
    let body: string;
    try {
      body = readFileSync(path, 'utf8');
    } catch (e) {
      throw new Error(`--texts: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    texts = body.split(/\r?\n/).filter((l) => l.length > 0);
    if (!texts.length) throw new Error(`--texts ${path}: no texts (one per line)`);
  } else if (values.text) {
    texts = values.text as string[];
  }
  texts?.forEach((t, i) => {
    if (!t.trim()) throw new Error(`${values.texts ? `--texts ${values.texts}: line` : '--text'} ${i + 1} is empty`);
  });

  // ---- the model, and inputs checked against it
  const gpu = await getGpu();
  const { model, tokenizer, notes } = await loadClip(gpu, values.weights as string, {
    ...(act ? { activation: act as 'gelu' } : {}),
    ...(heads ? { heads } : {}),
    ...(values.vocab ? { vocab: values.vocab as string } : {}),
  });
  try {
    for (const n of notes) process.stderr.write(`note: ${n}\n`);
    if (pixels) checkPixels(pixels.shape, model, `--pixels ${values.pixels}`);
    let tokens: { ids: Int32Array; rows: number; length: number } | null = idsIn;
    if (idsIn) checkIds(idsIn, model, `--input-ids ${values['input-ids']}`);
    if (texts) {
      checkTokenizerFits(tokenizer, model);
      const length = model.config.text.contextLength;
      const rows = tokenizer.tokenize(texts, { contextLength: length, rejectEmpty: true });
      const ids = new Int32Array(rows.length * length);
      rows.forEach((r, i) => ids.set(r, i * length));
      tokens = { ids, rows: rows.length, length };
    }

    // ---- encode
    const res = model.config.image.resolution;
    const e = model.config.embedDim;
    const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
    let imageEmbeds: Float32Array | null = null;
    if (files) {
      imageEmbeds = await embedBatches(files.length, batch, 'images', async (s, end) => {
        const px = new Float32Array((end - s) * 3 * res * res);
        for (let i = s; i < end; i++) px.set(await loadImageForClip(files[i]!, res), (i - s) * 3 * res * res);
        return encodeImages(model, px, end - s);
      });
    } else if (pixels) {
      const per = 3 * res * res;
      imageEmbeds = await embedBatches(pixels.shape[0]!, batch, 'images', async (s, end) => encodeImages(model, pixels.data.subarray(s * per, end * per), end - s));
    }
    if (imageEmbeds) tensors.set('image_embeds', { dtype: 'F32', shape: [imageEmbeds.length / e, e], data: imageEmbeds });

    let textEmbeds: Float32Array | null = null;
    if (tokens) {
      const { ids, rows, length } = tokens;
      textEmbeds = await embedBatches(rows, batch * 2, 'texts', async (s, end) =>
        noGrad(() => model.encodeText({ ids: ids.subarray(s * length, end * length), rows: end - s, length }).embeds),
      );
      tensors.set('text_embeds', { dtype: 'F32', shape: [rows, e], data: textEmbeds });
    }
    if (imageEmbeds && textEmbeds) {
      const b = imageEmbeds.length / e;
      const n = textEmbeds.length / e;
      const img = imageEmbeds;
      const txt = textEmbeds;
      const logits = noGrad(() => tidy(() => model.logits(tensor(img, [b, e], 'f32', gpu), tensor(txt, [n, e], 'f32', gpu))));
      tensors.set('logits_per_image', { dtype: 'F32', shape: [b, n], data: (await logits.read()) as Float32Array });
      logits.dispose();
    }
    for (const [name, t] of tensors) {
      if (!t.data.every(Number.isFinite)) throw new Error(`${name} has non-finite values (are the weights or inputs damaged?); nothing written`);
    }
    await writeSafetensors(out, tensors, { format: 'pt', generator: 'cliptune embed' });
    process.stdout.write(`wrote ${out}: ${[...tensors].map(([k, v]) => `${k} [${v.shape}]`).join(', ')}\n`);
    return 0;
  } finally {
    model.dispose();
  }
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
