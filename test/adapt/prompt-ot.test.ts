// Prompt-OT: the OT term against methods.md 5.f (exact and Sinkhorn), the whole loss and its
// gradients against a float64 CPU composition (identity and non-identity plans), the method on a tiny
// random CLIP (every prompt tensor gets a gradient, frozen weights stay bit-identical, the loss falls,
// lambda 0 removes the term), its defaults and schedule, and the CLI on the shipped world CLIP
// (runs, logs the plan statistics, resumes to bit-identical prompts; in 12 steps at lr 0.002 the
// OT term grows as the prompts move, so the total loss is printed, not asserted to fall).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getGpu } from '../../src/gpu/index.js';
import { tensor, tidy, type Tensor } from '../../src/tensor/tensor.js';
import { clearTape } from '../../src/autograd/tape.js';
import { l2normalize } from '../../src/ops/distance.js';
import { dasslCosineSchedule } from '../../src/nn/schedule.js';
import { otRunSummary, otTerm, promptOtLoss, PROMPT_OT, PromptOtRegulariser } from '../../src/adapt/prompt-ot.js';
import { readStepRecords } from '../../src/train/loop.js';
import { DeepPromptMethod } from '../../src/adapt/ivlp.js';
import { composeLoss } from '../../src/adapt/method.js';
import { METHODS } from '../../src/adapt/registry.js';
import { writeWorldDataset } from '../../src/data/world/write-node.js';
import { R } from '../ref/core.js';
import { promptOtRef } from '../ref/prompt-ot.js';
import { assertClose, randArray, rng } from '../helpers/parity.js';
import { checkpointParams, createMethod, haveWorldWeights, logLines, runSteps, snapshot, tinyBatch, tinyEnv, tinySetup, trainAndResume, WORLD_WEIGHTS } from './deep-prompt-helpers.js';

// ---------- the OT term: methods.md 5.f ----------

const X5F = [[1, 0], [0, 1], [0.6, 0.8]];
const Y5F = [[0.8, 0.6], [1, 0], [0, 1]];

/** otTerm on 5.f's 2-D joint features: the first column is the "image" half, the second the "text" half. */
async function fiveF(eta: number, lambda: number, ot: Parameters<typeof otTerm>[0]['ot']) {
  const gpu = await getGpu();
  const col = (m: number[][], k: number) => m.map((r) => r[k]!);
  const img = tensor(col(X5F, 0), [3, 1], 'f32', gpu).param('img');
  const txt = tensor(col(X5F, 1), [3, 1], 'f32', gpu).param('txt');
  const img0 = tensor(col(Y5F, 0), [3, 1], 'f32', gpu);
  const txt0 = tensor(col(Y5F, 1), [3, 1], 'f32', gpu);
  const out = tidy(() => {
    const t = otTerm({ image: img, text: txt, image0: img0, text0: txt0, eta, lambda, ot });
    return { ...t, total: composeLoss([t.term]).loss };
  });
  const value = await out.term.value.item();
  const total = await out.total.item();
  const cost = Array.from((await out.cost.read()) as Float32Array);
  const plan = Array.from((await out.plan.read()) as Float32Array);
  const logs: Record<string, number> = {};
  for (const [k, v] of Object.entries(out.logs)) logs[k] = await v.item();
  out.term.value.backward();
  const gi = (await img.grad!.read()) as Float32Array;
  const gt = (await txt.grad!.read()) as Float32Array;
  const grad = [0, 1, 2].flatMap((i) => [gi[i]!, gt[i]!]);
  for (const t of [out.term.value, out.total, out.cost, out.plan, out.stats, ...Object.values(out.logs), img, txt, img0, txt0]) if (!t.disposed) t.dispose();
  clearTape();
  return { value, total, cost, plan, logs, grad };
}

test('OT term, methods.md 5.f: squared distances, exact plan (x1->y2, x2->y3, x3->y1), L_OT 0.013333, lambda L_OT 0.133333, gradient', async () => {
  const r = await fiveF(0.5, 10, { solver: 'exact' });
  assertClose(r.cost, [0.4, 0, 2, 0.8, 2, 0, 0.08, 0.8, 0.4].map((v) => 0.5 * v), 1e-6, 'C = 0.5 ||x_i - y_j||^2');
  const third = Math.fround(1 / 3);
  assert.equal(r.plan, [0, third, 0, 0, 0, third, third, 0, 0], 'plan = permutation / 3');
  assert.ok(Math.abs(r.value - 0.013333) < 5e-7, `L_OT ${r.value}`);
  assert.ok(Math.abs(r.total - 0.133333) < 5e-6, `lambda L_OT ${r.total}`);
  assert.equal(r.logs, { ot_nonidentity: 1 });
  // d(eta <pi*, C>)/dX, plan held constant: rows [0, 0], [0, 0], [-0.066667, +0.066667].
  assertClose(r.grad, [0, 0, 0, 0, -0.066667, 0.066667], 1e-5, 'dL_OT/dX');
  assert.ok(Math.abs(r.grad[4]! + 0.066667) < 1e-6 && Math.abs(r.grad[5]! - 0.066667) < 1e-6);
});

test('OT term, methods.md 5.f: Sinkhorn on the ||.||^2 cost (eta 1) approaches the exact 0.026667 as epsilon falls', async () => {
  const a = await fiveF(1, 1, { solver: 'sinkhorn', epsilon: 0.1, iterations: 50 });
  assert.ok(Math.abs(a.value - 0.030089) < 2e-6, `eps 0.1, 50 iterations: ${a.value}`);
  assert.ok('ot_entropy' in a.logs && 'ot_offdiag' in a.logs);
  assert.ok(a.logs.ot_entropy! > Math.log(3) && a.logs.ot_entropy! < 2 * Math.log(3), `entropy ${a.logs.ot_entropy}`);
  const b = await fiveF(1, 1, { solver: 'sinkhorn', epsilon: 0.1, iterations: 1000 });
  assert.ok(Math.abs(b.value - 0.029412) < 2e-6, `eps 0.1, 1000 iterations: ${b.value}`);
  const c = await fiveF(1, 1, { solver: 'sinkhorn', epsilon: 0.05, iterations: 1000 });
  assert.ok(Math.abs(c.value - 0.026769) < 2e-6, `eps 0.05, 1000 iterations: ${c.value}`);
  const e = await fiveF(1, 1, { solver: 'exact' });
  assert.ok(a.value > b.value && b.value > c.value && c.value > e.value && Math.abs(e.value - 0.026667) < 5e-7);
});

// ---------- the whole loss against float64 ----------

function unit(rows: number, d: number, data: ArrayLike<number>): Float64Array {
  const out = new Float64Array(rows * d);
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += data[i * d + k]! ** 2;
    for (let k = 0; k < d; k++) out[i * d + k] = Math.fround(data[i * d + k]! / Math.sqrt(s));
  }
  return out;
}

for (const permuted of [false, true]) {
  test(`Prompt-OT loss and gradients = float64 composition (B 6, C 4, E 7; ${permuted ? 'frozen rows permuted: non-identity plan' : 'identity plan'})`, async () => {
    const gpu = await getGpu();
    const [B, C, E] = [6, 4, 7];
    const labels = [0, 3, 1, 1, 2, 0];
    const img = Float32Array.from(randArray(B * E, 31));
    const txt = Float32Array.from(randArray(C * E, 32));
    // Frozen features near the adapted ones (as at the start of training); optionally image rows
    // swapped between images of the same label (0 <-> 5, 2 <-> 3) so that the best match is not the identity.
    const r = rng(33);
    const vimg = unit(B, E, img);
    const order = permuted ? [5, 1, 3, 2, 4, 0] : [0, 1, 2, 3, 4, 5];
    const img0 = unit(B, E, Array.from({ length: B * E }, (_, k) => vimg[order[Math.floor(k / E)]! * E + (k % E)]! + 0.05 * (r() - 0.5)));
    const txt0 = unit(C, E, Array.from(unit(C, E, txt), (v) => v + 0.05 * (r() - 0.5)));
    const [s, lambda, eta] = [20, 10, 0.5];
    const imgR = R.from(img, [B, E]);
    const txtR = R.from(txt, [C, E]);
    const ref = promptOtRef({ img: imgR, txt: txtR, img0, txt0, labels, scale: s, lambda, eta });
    ref.loss.backward();
    const isId = Array.from(ref.perm).every((v, i) => v === i);
    assert.is(isId, !permuted, `reference plan ${Array.from(ref.perm)}`);

    const imgT = tensor(img, [B, E], 'f32', gpu).param('img');
    const txtT = tensor(txt, [C, E], 'f32', gpu).param('txt');
    const consts: Tensor[] = [tensor(img0, [B, E], 'f32', gpu), tensor(txt0, [C, E], 'f32', gpu), tensor(labels, [B], 'i32', gpu)];
    const out = tidy(() => promptOtLoss({ image: l2normalize(imgT), text: l2normalize(txtT), image0: consts[0]!, text0: consts[1]!, labels: consts[2]!, logitScale: s, lambda, eta, ot: { solver: 'exact' } }));
    assertClose([await out.loss.item()], [ref.loss.data[0]!], 1e-5, 'loss');
    assertClose([await out.terms.ce!.item()], [ref.ce.data[0]!], 1e-5, 'ce');
    assertClose([await out.terms.ot!.item()], [ref.ot.data[0]!], 1e-4, 'ot');
    assert.is(await out.terms.ot_nonidentity!.item(), permuted ? 1 : 0);
    const plan = (await out.plan.read()) as Float32Array;
    for (let i = 0; i < B; i++) for (let j = 0; j < B; j++) assert.is(plan[i * B + j], ref.perm[i] === j ? Math.fround(1 / B) : 0, `plan[${i},${j}]`);
    out.loss.backward();
    assertClose((await imgT.grad!.read()) as Float32Array, imgR.grad!, 1e-4, 'dL/d image embeddings');
    assertClose((await txtT.grad!.read()) as Float32Array, txtR.grad!, 1e-4, 'dL/d text embeddings');
    for (const t of [out.loss, ...Object.values(out.terms), out.stats, out.plan, imgT, txtT, ...consts]) if (!t.disposed) t.dispose();
    clearTape();
  });
}

// ---------- the method on a tiny random CLIP ----------

// Prompt gradients are large on a random CLIP (LayerNorm of N(0, 0.02) prompt rows scales them by ~50).
const LR = 1e-5;

test('prompt-ot on a tiny CLIP: every prompt tensor gets a gradient, frozen weights bit-identical, loss falls, plan stats logged', async () => {
  const { gpu, model, tokenizer } = await tinySetup();
  const logs: string[] = [];
  const env = tinyEnv(gpu, model, tokenizer, logs);
  const before = await snapshot(model);
  const m = (await createMethod(PROMPT_OT, env, { warmupEpochs: 0 })) as DeepPromptMethod;
  // Depth 12 clamped to the 3 layers, and said so.
  assert.ok(logs.some((l) => /text prompt depth 12 clamped to the model's 3 text layers/.test(l)), logs.join('\n'));
  assert.ok(logs.some((l) => /vision prompt depth 12 clamped to the model's 3 vision layers/.test(l)));
  assert.equal([...m.params.keys()], ['text.ctx', 'text.deep.1', 'text.deep.2', 'vision.ctx', 'vision.deep.1', 'vision.deep.2']);
  const run = await runSteps(m, tinyBatch(4), 6, LR);
  for (const [k, g] of run.firstGrad) assert.ok(g > 0, `${k}: first-step gradient max |g| = ${g}`);
  assert.ok(run.live.slice(1).every((b) => b === run.live[1]), `device bytes after each step ${run.live.join(', ')}`);
  assert.equal(Object.keys(run.terms[0]!), ['ce', 'ot', 'ot_nonidentity']);
  for (const t of run.terms) assert.ok(Math.abs(t.ce! + 10 * t.ot! - run.losses[run.terms.indexOf(t)]!) < 1e-4 * (1 + t.ce!), 'loss = ce + 10 ot');
  assert.ok(run.losses[5]! < run.losses[0]! - 1e-3, `loss ${run.losses.map((v) => v.toFixed(4)).join(' -> ')}`);
  const after = await snapshot(model);
  for (const [k, v] of before) assert.equal(after.get(k), v, `frozen ${k} changed`);
  const st = await (m.regulariser as PromptOtRegulariser).readStats();
  assert.is(st!.steps, 6);
  assert.ok(st!.values.nonIdentity >= 0 && st!.values.nonIdentity <= 1);
  const expectFrac = run.terms.reduce((a, t) => a + t.ot_nonidentity!, 0) / 6;
  assert.ok(Math.abs(st!.values.nonIdentity - expectFrac) < 1e-6, 'accumulated non-identity fraction = mean of the logged flags');
  const summary = await (m.regulariser as PromptOtRegulariser).summary();
  assert.match(summary!, /exact plan was not the identity in [\d.]+% of steps/);
  m.dispose();
  model.dispose();
  clearTape();
  console.log(`    prompt-ot tiny: loss ${run.losses.map((v) => v.toFixed(3)).join(' ')}`);
});

test('prompt-ot with lambda 0: CE only (no OT term, no frozen pass), same CE as with the term on the first step', async () => {
  const { gpu, model, tokenizer } = await tinySetup();
  const env = tinyEnv(gpu, model, tokenizer);
  const a = await createMethod(PROMPT_OT, env, { lambda: 0 });
  const b = await createMethod(PROMPT_OT, env, {});
  const d0 = gpu.counters.dispatches;
  const ra = await runSteps(a, tinyBatch(4), 1, 0.01);
  const d1 = gpu.counters.dispatches;
  const rb = await runSteps(b, tinyBatch(4), 1, 0.01);
  const d2 = gpu.counters.dispatches;
  assert.equal(Object.keys(ra.terms[0]!), ['ce'], 'only CE when the OT term is off');
  assert.ok(Math.abs(ra.losses[0]! - rb.terms[0]!.ce!) < 1e-6, `CE ${ra.losses[0]} vs ${rb.terms[0]!.ce}`);
  assert.ok(d2 - d1 > d1 - d0, `the OT term costs dispatches (${d1 - d0} vs ${d2 - d1})`);
  a.dispose();
  b.dispose();
  model.dispose();
  clearTape();
});

test('prompt-ot with --ot-solver sinkhorn: the step logs plan entropy and off-diagonal mass, and the summary says so', async () => {
  const { gpu, model, tokenizer } = await tinySetup();
  const env = tinyEnv(gpu, model, tokenizer);
  const m = (await createMethod(PROMPT_OT, env, { otSolver: 'sinkhorn', otEpsilon: 0.1, otIterations: 20 })) as DeepPromptMethod;
  const run = await runSteps(m, tinyBatch(4), 2, LR);
  assert.equal(Object.keys(run.terms[0]!), ['ce', 'ot', 'ot_entropy', 'ot_offdiag']);
  for (const t of run.terms) assert.ok(t.ot_entropy! >= Math.log(4) - 1e-4 && t.ot_entropy! <= 2 * Math.log(4) + 1e-4, `entropy ${t.ot_entropy}`);
  assert.match((await (m.regulariser as PromptOtRegulariser).summary())!, /mean plan entropy [\d.]+/);
  m.dispose();
  model.dispose();
  clearTape();
});

test('prompt-ot defaults (methods.md 5.a, 5.c): 4+4 tokens, depth 12, lambda 10, eta 0.5, SGD 0.005, warm-up 1e-4, batch 4, 40-epoch cosine evaluated at 30', () => {
  const d = PROMPT_OT.defaults({ shots: 16, datasetName: 'X', baseToNovel: true });
  assert.equal(
    [d.textTokens, d.textDepth, d.ctxInit, d.visionTokens, d.visionDepth, d.lambda, d.eta, d.otSolver, d.lr, d.warmupLr, d.warmupEpochs, d.batchSize, d.epochs, d.scheduleEpochs, d.momentum, d.weightDecay],
    [4, 12, 'a photo of a', 4, 12, 10, 0.5, 'exact', 0.005, 1e-4, 1, 4, 30, 40, 0.9, 5e-4],
  );
  assert.ok(PROMPT_OT.options.some((o) => o.key === 'lambda' && o.flag === 'lambda'));
  assert.is(METHODS['prompt-ot'], PROMPT_OT);
  // The learning rates of the first 30 epochs of the 40-epoch schedule.
  const lrs = dasslCosineSchedule({ baseLr: 0.005, maxEpoch: 40, warmupEpochs: 1, warmupType: 'constant', warmupLr: 1e-4 }, 30);
  assert.is(lrs.length, 30);
  assert.is(lrs[0], 1e-4);
  assert.ok(Math.abs(lrs[29]! - (0.005 * (1 + Math.cos((Math.PI * 28) / 40))) / 2) < 1e-12);
  assert.throws(() => PROMPT_OT.validate!({ ...d, scheduleEpochs: 20 }, { shots: 16, datasetName: 'X', baseToNovel: true }), /--schedule-epochs 20 must be 0 or >= --epochs 30/);
  assert.throws(() => PROMPT_OT.validate!({ ...d, visionDepth: 0 }, { shots: 16, datasetName: 'X', baseToNovel: true }), /needs prompts in both towers/);
});

test('run-level OT figures: one record per step (a re-run step replaces the first attempt), exact fraction and Sinkhorn means', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cliptune-otsum-'));
  try {
    const log = join(dir, 'log.jsonl');
    const line = (o: Record<string, unknown>) => JSON.stringify({ time: 't', ...o }) + '\n';
    // Steps 0-2, a crash, a resume from the checkpoint at step 1 that runs steps 1-3 again.
    writeFileSync(
      log,
      [line({ type: 'config' }), ...[0, 1, 2].map((s) => line({ type: 'step', step: s, epoch: 0, loss: 1, ot_nonidentity: 1, ot_entropy: 9 })), line({ type: 'resume', step: 1 }),
        ...[1, 2, 3].map((s) => line({ type: 'step', step: s, epoch: 0, loss: 1, ot_nonidentity: s === 3 ? 1 : 0, ot_entropy: s })), line({ type: 'end', step: 4 })].join(''),
    );
    const steps = readStepRecords(log);
    assert.equal(steps.map((s) => s.step), [0, 1, 2, 3]);
    assert.equal(otRunSummary(steps, 'exact'), { otSteps: 4, otNonIdentityFraction: 0.5 });
    assert.equal(otRunSummary(steps, 'sinkhorn'), { otSteps: 4, otMeanEntropy: (9 + 1 + 2 + 3) / 4 });
    assert.is(otRunSummary(steps.map(({ ot_nonidentity: _a, ot_entropy: _b, ...rest }) => rest), 'exact'), null, 'no OT term logged: nothing to report');
    assert.equal(readStepRecords(join(dir, 'missing.jsonl')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------- CLI on the shipped world CLIP ----------

test('cliptune train --method prompt-ot on the world CLIP: runs 12 steps (CE + OT terms logged), logs plan stats, resumes to bit-identical prompts', async () => {
  if (!haveWorldWeights()) throw new Error(`missing ${WORLD_WEIGHTS}`);
  const root = mkdtempSync(join(tmpdir(), 'cliptune-promptot-'));
  try {
    const data = join(root, 'world');
    await writeWorldDataset({ out: data, classes: Array.from({ length: 48 }, (_, i) => i), counts: { train: 4, val: 1, test: 4 }, size: 32, seed: 0 });
    const args = ['--weights', WORLD_WEIGHTS, '--data', data, '--method', 'prompt-ot', '--base-to-novel', '--shots', '1', '--seed', '1', '--epochs', '2', '--schedule-epochs', '0', '--lr', '0.002', '--warmup-epochs', '0', '--log-every', '2'];
    const r = await trainAndResume(root, 'prompt-ot', args, 7, join(root, 'cache'));
    assert.match(r.err, /text prompt depth 12 clamped to the model's 4 text layers/);
    assert.match(r.err, /exact plan was not the identity in [\d.]+% of steps/);
    assert.match(r.out, /test base: accuracy/);
    const steps = logLines(r.a).filter((l) => l.type === 'step');
    assert.is(steps.length, 12, '24 base images / batch 4 = 6 steps x 2 epochs');
    for (const s of steps) assert.ok('ce' in s && 'ot' in s && (s.ot_nonidentity === 0 || s.ot_nonidentity === 1));
    const ck = await checkpointParams(r.a);
    assert.equal([...ck.keys()], ['param.text.ctx', 'param.text.deep.1', 'param.text.deep.2', 'param.text.deep.3', 'param.vision.ctx', 'param.vision.deep.1', 'param.vision.deep.2', 'param.vision.deep.3']);
    // The report's run-level figure counts every step of the run, those before a resume included.
    const frac = steps.reduce((a, s) => a + (s.ot_nonidentity as number), 0) / steps.length;
    for (const run of [r.a, r.b]) {
      const rep = JSON.parse(readFileSync(join(run, 'report.json'), 'utf8'));
      assert.equal(rep.methodSummary, { otSteps: 12, otNonIdentityFraction: frac }, `${run}: methodSummary`);
      assert.ok(rep.results && rep.train && rep.options, 'the existing fields stay');
      assert.match(readFileSync(join(run, 'report.md'), 'utf8'), /- prompt-ot over the whole run: otSteps 12, otNonIdentityFraction [\d.]+/);
    }
    const first = steps.slice(0, 3).reduce((a, s) => a + (s.loss as number), 0) / 3;
    const last = steps.slice(-3).reduce((a, s) => a + (s.loss as number), 0) / 3;
    console.log(`    prompt-ot world CLI: 12 steps + eval in ${r.secs.toFixed(1)} s, loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
