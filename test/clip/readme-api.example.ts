// The README's "Library API" example, verbatim but for import paths (readme-api.test.ts checks that
// and runs it in a folder holding a tiny model and two images).
import { getGpu } from '../../src/gpu/index.js';
import { tensor, tidy } from '../../src/tensor/tensor.js';
import { loadClip } from '../../src/clip/load-node.js';
import { loadBatchForClip } from '../../src/clip/preprocess-node.js';

const MODEL = 'models/vit-b-32';
const IMAGES = ['cat.jpg', 'dog.jpg'];
const TEXTS = ['a photo of a cat', 'a photo of a dog'];

const gpu = await getGpu();
const { model, tokenizer } = await loadClip(gpu, MODEL);
const res = model.config.image.resolution;
const ctx = model.config.text.contextLength;
const pixels = tensor(await loadBatchForClip(IMAGES, res), [IMAGES.length, 3, res, res]);
const rows = tokenizer.tokenize(TEXTS, { contextLength: ctx });
const text = { ids: new Int32Array(rows[0]!.buffer), rows: rows.length, length: ctx };

// Parameters keep their OpenAI checkpoint names; all are frozen until marked trainable.
model.setTrainable((name) => name === 'visual.proj' || name === 'logit_scale');
const loss = tidy(() => model.contrastiveLoss(model.encodeImage(pixels).embeds, model.encodeText(text).embeds));
console.log(`loss ${(await loss.item()).toFixed(4)}`);
loss.backward();

const grad = model.param('visual.proj').grad!; // same shape as the weight: [width, embedDim]
const g = (await grad.read()) as Float32Array;
console.log(`grad visual.proj [${grad.shape}] norm ${Math.sqrt(g.reduce((s, v) => s + v * v, 0)).toExponential(3)}`);
model.dispose();
