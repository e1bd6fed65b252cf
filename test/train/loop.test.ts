// The training loop with a small synthetic method (a quadratic with per-step random targets from
// the step's generator, Adam, a per-step learning rate): losses read back every N steps without a
// sync per step, JSONL, interrupt + resume to bit-identical weights (mid-epoch), NaN/Inf in the loss
// or the gradient stopping the run with the last good checkpoint kept.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getGpu, type Gpu } from '../../src/gpu/index.js';
import { keep, tensor, type Tensor } from '../../src/tensor/tensor.js';
import { add, mul, sqrt, square, sub } from '../../src/ops/elementwise.js';
import { sum } from '../../src/ops/reduce.js';
import { Adam, type Optimizer } from '../../src/nn/optim.js';
import type { AdaptMethod, Classifier, StepContext, StepOutput, TrainPlan } from '../../src/adapt/method.js';
import { trainLoop, JsonlLog, type LoopOptions } from '../../src/train/loop.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { removeDir, tempDir } from './helpers.js';

class QuadMethod implements AdaptMethod<{ k: number }> {
  readonly name = 'quad';
  readonly options = {};
  readonly caches = [];
  readonly params = new Map<string, Tensor>();
  constructor(
    readonly gpu: Gpu,
    readonly o: { epochs: number; steps: number; nanAt?: number; gradNanAt?: number },
  ) {
    this.params.set('w', keep(tensor([0.5, -1, 2, 0, 0.25, 1.5], [6], 'f32', gpu)).param('w'));
  }
  async prepare(): Promise<void> {}
  plan(): TrainPlan {
    return { epochs: this.o.epochs, stepsPerEpoch: this.o.steps, imagesPerStep: 1 };
  }
  createOptimizer(): Optimizer {
    return new Adam([this.params.get('w')!], { lr: 0.05 });
  }
  learningRate(_e: number, _s: number, g: number): number {
    return 0.05 * (1 - g / (this.o.epochs * this.o.steps + 1));
  }
  async *batches(epoch: number, start: number) {
    for (let k = start; k < this.o.steps; k++) yield { k: epoch * 10 + k };
  }
  step(b: { k: number }, ctx: StepContext): StepOutput {
    const w = this.params.get('w')!;
    const target = tensor(Array.from({ length: 6 }, () => ctx.rng.uniform() + 0.01 * b.k), [6], 'f32', this.gpu);
    let loss = sum(square(sub(w, target)));
    if (ctx.globalStep === this.o.nanAt) loss = mul(loss, tensor([NaN], [1], 'f32', this.gpu));
    // Value 0, gradient 0/0: NaN only in the gradient.
    if (ctx.globalStep === this.o.gradNanAt) loss = add(loss, sum(sqrt(mul(square(w), tensor([0], [1], 'f32', this.gpu)))));
    return { loss, terms: { aux: sum(w) } };
  }
  async classifier(): Promise<Classifier> {
    throw new Error('unused');
  }
  dispose(): void {
    for (const t of this.params.values()) t.dispose();
  }
}

function opts(m: QuadMethod, dir: string, extra: Partial<LoopOptions> = {}): LoopOptions {
  return {
    method: m,
    checkpointPath: join(dir, 'checkpoint.safetensors'),
    run: { method: 'quad', options: {}, baseHash: 'test', classnames: [], seed: 7 },
    logEvery: 4,
    progress: null,
    log: new JsonlLog(join(dir, 'log.jsonl')),
    checkpointSeconds: 1e9,
    ...extra,
  };
}

function logLines(dir: string): Record<string, unknown>[] {
  return readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

test('full run: losses read back every N steps (no sync per step), JSONL per step, final checkpoint', async () => {
  const gpu = await getGpu();
  const dir = tempDir('loop');
  const m = new QuadMethod(gpu, { epochs: 3, steps: 5 });
  const before = gpu.counters.readbacks;
  const r = await trainLoop(opts(m, dir));
  const reads = gpu.counters.readbacks - before;
  assert.is(r.status, 'done');
  assert.is(r.globalStep, 15);
  // ceil(15/4) = 4 loss read-backs, plus two checkpoints (start, end) reading w and Adam's two moments.
  assert.ok(reads <= 4 + 2 * 3, `${reads} read-backs`);
  const steps = logLines(dir).filter((l) => l.type === 'step');
  assert.equal(steps.map((l) => l.step), Array.from({ length: 15 }, (_, i) => i));
  for (const l of steps) for (const k of ['loss', 'aux', 'grad_sq', 'lr']) assert.ok(Number.isFinite(l[k] as number), `${k} in ${JSON.stringify(l)}`);
  const ck = await loadCheckpoint(join(dir, 'checkpoint.safetensors'));
  assert.is(ck.state.step, 15);
  assert.is(ck.state.extra.done, true);
  assert.equal(Array.from(ck.tensors.get('param.w')!.data), Array.from((await m.params.get('w')!.read()) as Float32Array));
  m.dispose();
  removeDir(dir);
});

test('interrupt mid-epoch, then resume: bit-identical weights and optimiser state', async () => {
  const gpu = await getGpu();
  const ref = tempDir('loop-ref');
  const a = new QuadMethod(gpu, { epochs: 3, steps: 5 });
  await trainLoop(opts(a, ref));
  const want = (await a.params.get('w')!.read()) as Float32Array;
  const dir = tempDir('loop-int');
  const b = new QuadMethod(gpu, { epochs: 3, steps: 5 });
  const ctl = new AbortController();
  const r1 = await trainLoop(opts(b, dir, { signal: ctl.signal, onStep: (s) => s === 7 && ctl.abort() }));
  assert.is(r1.status, 'interrupted');
  assert.is(r1.globalStep, 7);
  assert.match(r1.message, /interrupted at step 7 of 15/);
  b.dispose();
  const c = new QuadMethod(gpu, { epochs: 3, steps: 5 });
  const ck = await loadCheckpoint(join(dir, 'checkpoint.safetensors'));
  assert.is(ck.state.epoch, 1);
  assert.is(ck.state.extra.stepInEpoch, 2);
  const r2 = await trainLoop(opts(c, dir, { resume: ck }));
  assert.is(r2.status, 'done');
  assert.is(r2.stepsRun, 8);
  const got = (await c.params.get('w')!.read()) as Float32Array;
  assert.equal(Array.from(got), Array.from(want), 'resumed weights equal the uninterrupted run bit for bit');
  const ca = await loadCheckpoint(join(ref, 'checkpoint.safetensors'));
  const cb = await loadCheckpoint(join(dir, 'checkpoint.safetensors'));
  for (const k of ca.tensors.keys()) assert.equal(Array.from(cb.tensors.get(k)!.data), Array.from(ca.tensors.get(k)!.data), k);
  const lines = logLines(dir);
  assert.ok(lines.some((l) => l.type === 'interrupted') && lines.some((l) => l.type === 'resume'));
  a.dispose();
  c.dispose();
  removeDir(ref);
  removeDir(dir);
});

test('NaN loss: the run stops with a clear message and keeps the last good checkpoint', async () => {
  const gpu = await getGpu();
  const dir = tempDir('loop-nan');
  const m = new QuadMethod(gpu, { epochs: 4, steps: 5, nanAt: 8 });
  const r = await trainLoop(opts(m, dir, { checkpointEpochs: 1 }));
  assert.is(r.status, 'diverged');
  assert.match(r.message, /the loss became NaN at step 8 \(epoch 2\)/);
  assert.match(r.message, /last good checkpoint \(step 5\)/);
  const ck = await loadCheckpoint(join(dir, 'checkpoint.safetensors'));
  assert.is(ck.state.step, 5);
  assert.ok(Array.from(ck.tensors.get('param.w')!.data).every(Number.isFinite));
  assert.ok(logLines(dir).some((l) => l.type === 'diverged' && l.step === 8));
  m.dispose();
  removeDir(dir);
});

test('NaN in the gradient only (finite loss) also stops the run', async () => {
  const gpu = await getGpu();
  const dir = tempDir('loop-gnan');
  const m = new QuadMethod(gpu, { epochs: 2, steps: 5, gradNanAt: 2 });
  const r = await trainLoop(opts(m, dir));
  assert.is(r.status, 'diverged');
  assert.match(r.message, /the gradient became NaN at step 2/);
  assert.match(r.message, /last good checkpoint \(step 0\)/);
  m.dispose();
  removeDir(dir);
});

test.run();
