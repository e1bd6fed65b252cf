// CoOp prompt assembly: for every class-token position, unified and class-specific contexts, random
// and word init, the gathered prompt embeddings equal rows assembled by hand from the token
// embedding table (CoOp's prefix / ctx / class / suffix concatenation), the EOT sits where the
// tokenized string has it, and d/d ctx sums the gradient of every row each context vector fills.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getGpu } from '../../src/gpu/index.js';
import { tensor, tidy } from '../../src/tensor/tensor.js';
import { mul } from '../../src/ops/elementwise.js';
import { sum } from '../../src/ops/reduce.js';
import { ClipModel } from '../../src/clip/model.js';
import { randomClipWeights } from '../../src/clip/configs.js';
import { loadClipTokenizer } from '../../src/clip/tokenizer-node.js';
import { PromptBank, planCoopPrompts, dasslStepsPerEpoch, imageBatches, shuffledOrder, epochRng, type ClassTokenPosition } from '../../src/adapt/coop.js';
import { COOP } from '../../src/adapt/coop.js';
import { MethodOptionError } from '../../src/adapt/method.js';
import { randArray, relErr } from '../helpers/parity.js';
import { TINY_CONFIG } from '../train/helpers.js';

const W = TINY_CONFIG.text.width;
const weights = randomClipWeights(TINY_CONFIG, 3);
const tokEmb = weights.get('token_embedding.weight')!;
const NAMES = ['red circle', 'hot_air balloon', 'x', 'a very long class name with words'];

/** CoOp's concatenation, by hand: [SOT] + layout of ctx and class tokens + the rest, as (kind, value) per position. */
function handLayout(tokens: Int32Array, M: number, n: number, position: ClassTokenPosition): ({ ctx: number } | { tok: number })[] {
  const prefix = [{ tok: tokens[0]! }];
  const ctx = Array.from({ length: M }, (_, m) => ({ ctx: m }));
  const cls = Array.from(tokens.slice(1 + M, 1 + M + n), (t) => ({ tok: t }));
  const rest = Array.from(tokens.slice(1 + M + n), (t) => ({ tok: t }));
  if (position === 'end') return [...prefix, ...ctx, ...cls, ...rest];
  if (position === 'front') return [...prefix, ...cls, ...ctx, ...rest];
  const h = Math.floor(M / 2);
  return [...prefix, ...ctx.slice(0, h), ...cls, ...ctx.slice(h), ...rest];
}

for (const position of ['end', 'middle', 'front'] as const) {
  for (const csc of [false, true]) {
    test(`prompt assembly: position ${position}, ${csc ? 'class-specific' : 'unified'} context (M = 5)`, async () => {
      const gpu = await getGpu();
      const tok = await loadClipTokenizer();
      const model = ClipModel.fromTensors(gpu, TINY_CONFIG, weights);
      const M = 5;
      const plan = planCoopPrompts(tok, NAMES, { nCtx: M, position, csc, init: null });
      const C = NAMES.length;
      const L = plan.length;
      const ctxData = randArray((csc ? C : 1) * M * W, 11);
      const ctx = tensor(ctxData, csc ? [C, M, W] : [M, W], 'f32', gpu).param('ctx');
      // Two chunks (3 + 1 classes) to exercise chunk offsets of class-specific rows.
      const bank = new PromptBank(model, plan, csc, 3);
      const expected = new Float32Array(C * L * W);
      for (let c = 0; c < C; c++) {
        const toks = tok.tokenize(`X X X X X ${NAMES[c]!.replace(/_/g, ' ')}.`, { contextLength: 77 })[0]!;
        const n = tok.encode(NAMES[c]!.replace(/_/g, ' ')).length;
        assert.is(plan.nameLens[c], n);
        // EOT after SOT, M ctx, n class tokens and ".".
        assert.is(plan.eot[c], 1 + M + n + 1, `EOT of class ${c}`);
        const layout = handLayout(toks, M, n, position);
        for (let t = 0; t < L; t++) {
          const e = layout[t]!;
          const src = 'ctx' in e ? ctxData.subarray(((csc ? c * M : 0) + e.ctx) * W, ((csc ? c * M : 0) + e.ctx + 1) * W) : tokEmb.subarray(e.tok * W, (e.tok + 1) * W);
          expected.set(Array.from(src, Math.fround), (c * L + t) * W);
        }
      }
      const seed = randArray(C * L * W, 12);
      const parts = [];
      for (let i = 0; i < bank.chunks.length; i++) parts.push(tidy(() => bank.embeddings(ctx, i)));
      const got = new Float32Array(C * L * W);
      let o = 0;
      for (const p of parts) {
        const v = (await p.read()) as Float32Array;
        got.set(v, o);
        o += v.length;
      }
      assert.equal(Array.from(got), Array.from(expected), 'gathered prompt embeddings');
      // Gradient: d/dctx Σ emb ⊙ R = Σ of R's rows at the positions each ctx row fills (one backward
      // per chunk; gradients accumulate into ctx.grad).
      for (let i = 0; i < bank.chunks.length; i++) {
        const ch = bank.chunks[i]!;
        const l = tidy(() => sum(mul(bank.embeddings(ctx, i), tensor(seed.subarray(ch.start * L * W, ch.end * L * W), [ch.end - ch.start, L, W], 'f32', gpu))));
        l.backward();
        l.dispose();
      }
      const gradRef = new Float64Array(ctxData.length);
      for (let c = 0; c < C; c++) {
        for (let t = 0; t < L; t++) {
          const r = plan.ctxRow[c * L + t]!;
          if (r < 0) continue;
          for (let k = 0; k < W; k++) gradRef[r * W + k]! += seed[(c * L + t) * W + k]!;
        }
      }
      const g = (await ctx.grad!.read()) as Float32Array;
      assert.ok(relErr(g, gradRef) < 1e-6, `d/dctx ${relErr(g, gradRef)}`);
      for (const p of parts) p.dispose();
      ctx.dispose();
      bank.dispose();
      model.dispose();
    });
  }
}

test('word init "a photo of a": M = 4, prompts "a photo of a {class}.", mismatched --n-ctx is an error', async () => {
  const tok = await loadClipTokenizer();
  const plan = planCoopPrompts(tok, ['red circle'], { nCtx: 4, position: 'end', csc: false, init: 'a photo of a' });
  const ids = tok.tokenize('a photo of a red circle.', { contextLength: 77 })[0]!;
  assert.equal(Array.from(plan.ids), Array.from(ids.slice(0, plan.length)));
  assert.equal(Array.from(plan.ctxRow.slice(0, 6)), [-1, 0, 1, 2, 3, -1]);
  assert.throws(() => planCoopPrompts(tok, ['red circle'], { nCtx: 16, position: 'end', csc: false, init: 'a photo of a' }), (e: Error) => e instanceof MethodOptionError && /is 4 tokens but --n-ctx is 16/.test(e.message));
  const long = Array.from({ length: 80 }, () => 'word').join(' ');
  assert.throws(() => planCoopPrompts(tok, [long], { nCtx: 16, position: 'end', csc: false, init: null }), /do not fit the text encoder/);
});

test('CoOp defaults: epochs by shots, base-to-novel uses 4 ctx initialised from "a photo of a"; --ctx-init sets M', () => {
  const d = COOP.defaults({ shots: 16, datasetName: 'OxfordPets', baseToNovel: false });
  assert.equal([d.nCtx, d.ctxInit, d.epochs, d.lr, d.batchSize, d.classTokenPosition, d.csc], [16, '', 200, 0.002, 32, 'end', false]);
  assert.is(COOP.defaults({ shots: 1, datasetName: 'OxfordPets', baseToNovel: false }).epochs, 50);
  assert.is(COOP.defaults({ shots: 4, datasetName: 'OxfordPets', baseToNovel: false }).epochs, 100);
  assert.is(COOP.defaults({ shots: 16, datasetName: 'ImageNet', baseToNovel: false }).epochs, 50);
  const b = COOP.defaults({ shots: 16, datasetName: 'X', baseToNovel: true });
  assert.equal([b.nCtx, b.ctxInit], [4, 'a photo of a']);
  const o = COOP.defaults({ shots: 16, datasetName: 'X', baseToNovel: false });
  o.ctxInit = 'a photo';
  COOP.finalize!(o, new Set(['ctxInit']));
  assert.is(o.nCtx, 2);
  assert.throws(() => COOP.validate!({ ...o, csc: true }, { shots: 16, datasetName: 'X', baseToNovel: true }), /--csc cannot be used with --base-to-novel/);
});

test('Dassl batches: drop_last only with a full batch; an epoch is fixed by (seed, epoch); skipping replays the same images', async () => {
  assert.is(dasslStepsPerEpoch(100, 32), 3);
  assert.is(dasslStepsPerEpoch(20, 32), 1);
  assert.is(dasslStepsPerEpoch(0, 32), 0);
  const a = shuffledOrder(10, epochRng(1, 3));
  assert.equal(a, shuffledOrder(10, epochRng(1, 3)));
  assert.not.equal(a, shuffledOrder(10, epochRng(1, 4)));
  // Synthetic images: a decoder that needs no files.
  const items = Array.from({ length: 10 }, (_, i) => ({ impath: `img${i}`, label: i % 3 }));
  const decode = async (p: string) => {
    const v = Number(p.slice(3));
    return { width: 12, height: 10, data: Uint8Array.from({ length: 360 }, (_, k) => (k * 7 + v * 31) % 256) };
  };
  const opts = { seed: 5, epoch: 2, batch: 4, size: 8, scale: [0.08, 1] as const, decode };
  const full = [];
  for await (const b of imageBatches(items, { ...opts, startStep: 0 })) full.push(b);
  assert.is(full.length, 2, 'drop_last: 10 images, batch 4 -> 2 batches');
  const resumed = [];
  for await (const b of imageBatches(items, { ...opts, startStep: 1 })) resumed.push(b);
  assert.is(resumed.length, 1);
  assert.equal(Array.from(resumed[0]!.labels), Array.from(full[1]!.labels));
  assert.equal(Array.from(resumed[0]!.pixels), Array.from(full[1]!.pixels), 'skipped batches leave the generator where an uninterrupted epoch has it');
});

test('CoOp step: the chunked text encoder (2 chunks) gives the loss and d loss / d ctx of the unchunked one', async () => {
  const gpu = await getGpu();
  const tok = await loadClipTokenizer();
  const model = ClipModel.fromTensors(gpu, TINY_CONFIG, weights);
  const classnames = ['red circle', 'green square', 'blue triangle', 'yellow star', 'purple cross'];
  const env = { gpu, model, tokenizer: tok, datasetName: 'World', classnames, train: [], val: null, shots: 1, seed: 3, features: null as never, purpose: 'train' as const, log: () => {} };
  const res = TINY_CONFIG.image.resolution;
  const batch = { pixels: Float32Array.from(randArray(3 * 3 * res * res, 21)), labels: Int32Array.of(0, 4, 2), count: 3 };
  const run = async (chunk: number) => {
    const opts = { ...COOP.defaults({ shots: 1, datasetName: 'World', baseToNovel: false }), nCtx: 3, textChunk: chunk };
    const m = COOP.create(opts, { shots: 1, datasetName: 'World', baseToNovel: false });
    await m.prepare(env);
    const out = tidy(() => m.step(batch, { epoch: 0, stepInEpoch: 0, globalStep: 0, rng: epochRng(0, 0) }));
    const loss = await out.loss.item();
    out.loss.backward();
    out.afterBackward?.();
    const g = (await m.params.get('ctx')!.grad!.read()) as Float32Array;
    out.loss.dispose();
    m.dispose();
    return { loss, g, chunked: !!out.afterBackward };
  };
  const whole = await run(128);
  const chunked = await run(2);
  assert.is(whole.chunked, false);
  assert.is(chunked.chunked, true);
  assert.ok(Math.abs(whole.loss - chunked.loss) <= 1e-6 * Math.abs(whole.loss), `loss ${whole.loss} vs ${chunked.loss}`);
  assert.ok(relErr(chunked.g, whole.g) < 1e-5, `d/dctx ${relErr(chunked.g, whole.g)}`);
  model.dispose();
});

test.run();
