// Parity with OpenAI's CLIP (test/fixtures/golden/tiny-vit, computed in float64 by the reference
// code): every stored intermediate, the embeddings, logits, the contrastive loss, the gradient of
// every parameter and of the pixels, and the CoOp prompt case; for the OpenAI- and HF-named files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getGpu } from '../../src/gpu/index.js';
import { keep, tensor, tidy, type Tensor } from '../../src/tensor/tensor.js';
import { clearTape } from '../../src/autograd/tape.js';
import { openSafetensors } from '../../src/io/safetensors-node.js';
import { loadClipCheckpoint } from '../../src/clip/checkpoint.js';
import { ClipModel, type Trace } from '../../src/clip/model.js';
import { replaceRows } from '../../src/nn/tokens.js';
import { crossEntropy } from '../../src/ops/losses.js';
import { relErr } from '../helpers/parity.js';

const GOLDEN = fileURLToPath(new URL('../../../test/fixtures/golden/tiny-vit/', import.meta.url));
const manifest = JSON.parse(readFileSync(join(GOLDEN, 'manifest.json'), 'utf8'));
const TOL = manifest.tolerances as { outputs_and_intermediates_float32: number; loss_float32: number; gradients_float32: number };

async function loadModel(naming: 'openai' | 'hf'): Promise<ClipModel> {
  const gpu = await getGpu();
  const src = await openSafetensors(join(GOLDEN, `weights.${naming}.safetensors`));
  const hfConfig = naming === 'hf' ? JSON.parse(readFileSync(join(GOLDEN, 'config.json'), 'utf8')) : undefined;
  const ck = await loadClipCheckpoint(src, hfConfig ? { hfConfig } : {});
  src.close();
  return ClipModel.fromTensors(gpu, ck.config, ck.tensors);
}

async function golden(file: string) {
  return openSafetensors(join(GOLDEN, file));
}

function check(got: ArrayLike<number>, ref: ArrayLike<number>, tol: number, what: string, errs: string[]): void {
  const e = relErr(got, ref);
  if (!(e <= tol)) errs.push(`${what}: err ${e.toExponential(3)} > ${tol}`);
}

for (const naming of ['openai', 'hf'] as const) {
  test(`forward, loss and every gradient equal OpenAI CLIP (${naming} naming)`, async () => {
    const gpu = await getGpu();
    const model = await loadModel(naming);
    const inputs = await golden('inputs.safetensors');
    const outputs = await golden('outputs.safetensors');
    const grads = await golden('grads.safetensors');
    const ids = await inputs.getI32('input_ids');
    const [rows, length] = inputs.info('input_ids').shape as [number, number];
    const pixels = tensor(await inputs.getF32('pixel_values'), inputs.info('pixel_values').shape, 'f32', gpu).param('pixel_values');
    for (const t of model.params.values()) t.requiresGrad = true;

    const trace: Trace = new Map();
    const loss = tidy(() => {
      const img = model.encodeImage(pixels, { trace });
      const txt = model.encodeText({ ids, rows, length }, { trace });
      trace.set('image_embeds', img.embeds.share());
      trace.set('text_embeds', txt.embeds.share());
      trace.set('logits_per_image', keep(model.logits(img.embeds, txt.embeds)));
      return model.contrastiveLoss(img.embeds, txt.embeds);
    });
    const errs: string[] = [];
    for (const [name, t] of trace) {
      if (!outputs.names.includes(name)) continue;
      let ref = await outputs.getF32(name);
      let got = (await t.read()) as Float32Array;
      if (name.startsWith('text.') && name !== 'text.pooled' && got.length !== ref.length) {
        // The engine runs text only up to the longest end token; compare those positions.
        const [, tRef, w] = outputs.info(name).shape as [number, number, number];
        const tGot = got.length / (rows * w);
        const cut = new Float32Array(rows * tGot * w);
        for (let r = 0; r < rows; r++) cut.set(ref.subarray(r * tRef * w, (r * tRef + tGot) * w), r * tGot * w);
        ref = cut;
      }
      check(got, ref, TOL.outputs_and_intermediates_float32, name, errs);
    }
    assert.ok(trace.size >= 12, `traced ${trace.size} intermediates`);
    check([await loss.item()], [(await grads.getF32('loss'))[0]!], TOL.loss_float32, 'loss', errs);

    loss.backward();
    let checked = 0;
    for (const [name, t] of model.params) {
      assert.ok(t.grad, `no gradient for ${name}`);
      check((await t.grad!.read()) as Float32Array, await grads.getF32(`grad.${name}`), TOL.gradients_float32, `grad.${name}`, errs);
      checked++;
    }
    check((await pixels.grad!.read()) as Float32Array, await grads.getF32('grad.pixel_values'), TOL.gradients_float32, 'grad.pixel_values', errs);
    assert.is(checked, grads.names.filter((n) => n.startsWith('grad.') && !n.endsWith('.f64') && n !== 'grad.pixel_values').length);
    assert.equal(errs, [], errs.join('\n'));

    for (const t of trace.values()) t.dispose();
    loss.dispose();
    pixels.dispose();
    model.dispose();
    clearTape();
    for (const f of [inputs, outputs, grads]) f.close();
  });
}

test('CoOp prompt case: learned context replaces the placeholder rows (loss and d loss / d ctx)', async () => {
  const gpu = await getGpu();
  const model = await loadModel('openai');
  const inputs = await golden('inputs.safetensors');
  const prompt = await golden('prompt.safetensors');
  const ids = await prompt.getI32('input_ids');
  const [rows, length] = prompt.info('input_ids').shape as [number, number];
  const nCtx = manifest.prompt.n_ctx as number;
  const ctx = tensor(await prompt.getF32('ctx'), prompt.info('ctx').shape, 'f32', gpu).param('ctx');
  const pixels = tensor(await inputs.getF32('pixel_values'), inputs.info('pixel_values').shape, 'f32', gpu);
  const labels = tensor(await prompt.getI32('labels'), [4], 'i32', gpu);
  const eot = ClipModel.eotPositions({ ids, rows, length });
  const errs: string[] = [];
  const { loss, logits, textFeatures } = tidy(() => {
    const len = Math.max(...eot) + 1;
    const emb = replaceRows(model.tokenEmbeddings({ ids, rows, length }, len), 1, ctx);
    const txt = model.encodeTextEmbeddings(emb, eot);
    const img = model.encodeImage(pixels);
    const logits = model.logits(img.embeds, txt.embeds);
    return { loss: crossEntropy(logits, labels), logits, textFeatures: txt.embeds };
  });
  check((await textFeatures.read()) as Float32Array, await prompt.getF32('text_features'), TOL.outputs_and_intermediates_float32, 'text_features', errs);
  check((await logits.read()) as Float32Array, await prompt.getF32('logits'), TOL.outputs_and_intermediates_float32, 'logits', errs);
  check([await loss.item()], await prompt.getF32('loss'), TOL.loss_float32, 'loss', errs);
  loss.backward();
  check((await ctx.grad!.read()) as Float32Array, await prompt.getF32('grad.ctx'), TOL.gradients_float32, 'grad.ctx', errs);
  // Frozen model: no parameter got a gradient.
  for (const [name, t] of model.params) assert.is(t.grad, null, `${name} is frozen`);
  assert.equal(errs, [], errs.join('\n'));
  assert.ok(nCtx === 4);
  for (const t of [loss, logits, textFeatures, ctx, pixels, labels] as Tensor[]) t.dispose();
  model.dispose();
  inputs.close();
  prompt.close();
});

test.run();
