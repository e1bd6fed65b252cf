// The training loop shared by every method: epochs of steps from the method's batches, the engine's
// optimisers and the method's schedule, the loss and gradient health read back asynchronously every
// N steps (a GPU sync per step would cost more than a small step), a progress line with ETA and
// throughput, JSONL logs, periodic evaluation, atomic checkpoints, resume at any (epoch, step) to
// bit-identical weights, a clean stop on abort (Ctrl-C), and a stop on NaN/Inf that keeps the last
// checkpoint written while every loss and gradient up to it was finite.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { GpuError, type Gpu } from '../gpu/index.js';
import { keep, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { clearTape, noGrad } from '../autograd/tape.js';
import { add, square } from '../ops/elementwise.js';
import { sum } from '../ops/reduce.js';
import { concat, reshape } from '../ops/shape.js';
import { Rng } from '../clip/rng.js';
import type { Optimizer, OptimizerState } from '../nn/optim.js';
import type { AdaptMethod, StepContext, StepRecord } from '../adapt/method.js';
import { RunDirError, completeJsonlLines } from './run.js';
import { loadCheckpoint, saveCheckpoint, type Checkpoint, type RunState } from './checkpoint.js';
import { Progress, formatSecs } from '../cli/progress.js';

/** Appends one JSON object per line (sync: lines are small and must survive a crash). */
export class JsonlLog {
  constructor(readonly path: string | null) {}
  write(entry: Record<string, unknown>): void {
    if (!this.path) return;
    appendFileSync(this.path, JSON.stringify({ time: new Date().toISOString(), ...entry }) + '\n');
  }
}

/**
 * The "step" records of a run's log (every step is logged), one per step: when a run resumed from a
 * checkpoint older than its last logged step, the steps it ran again replace the first attempt's.
 * A last line cut short by a crash is skipped, as the report does.
 */
export function readStepRecords(path: string): StepRecord[] {
  if (!existsSync(path)) return [];
  const byStep = new Map<number, StepRecord>();
  for (const [i, line] of completeJsonlLines(readFileSync(path, 'utf8')).entries()) {
    if (!line.trim()) continue;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line) as Record<string, unknown>;
    } catch (e) {
      throw new RunDirError(`${path}: line ${i + 1} is not valid JSON (${(e as Error).message})`);
    }
    if (r.type !== 'step' || typeof r.step !== 'number') continue;
    const values: Record<string, number> = {};
    for (const [k, v] of Object.entries(r)) if (typeof v === 'number') values[k] = v;
    byStep.set(r.step, values);
  }
  return [...byStep.keys()].sort((a, b) => a - b).map((s) => byStep.get(s)!);
}

export interface LoopOptions {
  method: AdaptMethod;
  /** Where checkpoints go (written atomically; the previous one stays until the new one is complete). */
  checkpointPath: string;
  /** The run's identity, stored in every checkpoint. */
  run: Pick<RunState, 'method' | 'options' | 'baseHash' | 'classnames' | 'seed'>;
  /** Read the loss back every this many steps (default 10). */
  logEvery?: number;
  /** Evaluate every this many epochs (0: never). */
  evalEvery?: number;
  evaluate?: (epoch: number) => Promise<Record<string, number>>;
  /** Checkpoint at the end of an epoch when this many seconds passed since the last (default 120). */
  checkpointSeconds?: number;
  /** Also checkpoint every this many epochs (0: only by time). */
  checkpointEpochs?: number;
  /** Abort (Ctrl-C): the loop saves a checkpoint at the next step boundary and returns 'interrupted'. */
  signal?: AbortSignal;
  log?: JsonlLog;
  /** Where the progress line goes (default stderr; null: none). */
  progress?: { write(s: string): unknown; isTTY?: boolean } | null;
  /** Continue from this checkpoint. */
  resume?: Checkpoint | null;
  /** Called after every step (tests). */
  onStep?: (globalStep: number) => void;
}

export type LoopStatus = 'done' | 'interrupted' | 'diverged';

export interface LoopResult {
  status: LoopStatus;
  /** Steps completed in all (including those before a resume). */
  globalStep: number;
  /** Epoch the next step belongs to (= epochs when done). */
  epoch: number;
  stepsRun: number;
  seconds: number;
  lastLoss: number | null;
  message: string;
  /** Step of the checkpoint on disk when the loop returned (null: none written). */
  checkpointStep: number | null;
}

export class DivergedError extends Error {
  override name = 'DivergedError';
}

interface Pending {
  globalStep: number;
  epoch: number;
  lr: number;
  names: string[];
  stats: Tensor;
}

/** Collects per-step scalars on the GPU and reads them back every `every` steps without waiting. */
class StatsReader {
  private pending: Pending[] = [];
  private chain: Promise<void> = Promise.resolve();
  inflight = 0;
  bad: { step: number; epoch: number; what: string; value: number } | null = null;
  lastLoss: number | null = null;
  lastStep = -1;

  constructor(
    private readonly every: number,
    private readonly onRow: (row: { globalStep: number; epoch: number; lr: number; values: Record<string, number> }) => void,
  ) {}

  push(p: Pending): void {
    this.pending.push(p);
    if (this.pending.length >= this.every) this.flush();
  }

  flush(): void {
    if (!this.pending.length) return;
    const batch = this.pending;
    this.pending = [];
    const all = noGrad(() => (batch.length === 1 ? batch[0]!.stats.share() : concat(batch.map((b) => b.stats), 0)));
    for (const b of batch) b.stats.dispose();
    const read = all.read();
    this.inflight++;
    this.chain = this.chain.then(async () => {
      let values: Float32Array;
      try {
        values = (await read) as Float32Array;
      } finally {
        all.dispose();
        this.inflight--;
      }
      let o = 0;
      for (const b of batch) {
        const row: Record<string, number> = {};
        for (const n of b.names) row[n] = values[o++]!;
        for (const n of b.names) {
          const v = row[n]!;
          if (!Number.isFinite(v) && !this.bad) this.bad = { step: b.globalStep, epoch: b.epoch, what: n, value: v };
        }
        this.lastLoss = row.loss ?? null;
        this.lastStep = b.globalStep;
        this.onRow({ globalStep: b.globalStep, epoch: b.epoch, lr: b.lr, values: row });
      }
    });
  }

  /** Reads back everything pending and waits for it. */
  async drain(): Promise<void> {
    this.flush();
    await this.chain;
  }
}

/** Writes a checkpoint's learned tensors into the method's parameters (after prepare()). */
export function loadParams(method: AdaptMethod, ck: Checkpoint): void {
  for (const [name, p] of method.params) {
    const t = ck.tensors.get(`param.${name}`);
    if (!t) throw new GpuError(`checkpoint: no tensor param.${name} for method ${method.name}`);
    if (t.data.length !== p.size) throw new GpuError(`checkpoint: param.${name} has ${t.data.length} values, the method's ${p.describe()} has ${p.size}`);
    p.gpu.write(p.buffer, 0, t.data, `load ${name}`);
  }
}

/** Loads a checkpoint's tensors into the method's parameters and builds the optimiser state. */
function restore(method: AdaptMethod, opt: Optimizer | null, ck: Checkpoint): void {
  loadParams(method, ck);
  const os = ck.state.extra.optimizer as Omit<OptimizerState, 'tensors'> | undefined;
  if (!opt) return;
  if (!os) throw new GpuError('resume: the checkpoint has no optimiser state');
  const temps: Record<string, Tensor> = {};
  for (const [name, t] of ck.tensors) {
    if (name.startsWith('optim.')) temps[name.slice(6)] = tensor(t.data, t.shape, 'f32', opt.gpu);
  }
  try {
    opt.loadStateDict({ ...os, tensors: temps } as OptimizerState);
  } finally {
    for (const t of Object.values(temps)) t.dispose();
  }
}

async function writeCheckpoint(path: string, o: LoopOptions, opt: Optimizer | null, pos: { epoch: number; stepInEpoch: number; globalStep: number }, extra: Record<string, unknown>): Promise<void> {
  const tensors = new Map<string, Tensor>();
  for (const [name, p] of o.method.params) tensors.set(`param.${name}`, p);
  let optimizer: Record<string, unknown> | null = null;
  const shares: Tensor[] = [];
  if (opt) {
    const sd = opt.stateDict({ clone: false });
    for (const [k, t] of Object.entries(sd.tensors)) {
      tensors.set(`optim.${k}`, t);
      shares.push(t);
    }
    optimizer = { kind: sd.kind, step: sd.step, hyper: sd.hyper, paramSteps: sd.paramSteps };
  }
  try {
    await saveCheckpoint(path, { ...o.run, step: pos.globalStep, epoch: pos.epoch, extra: { ...extra, stepInEpoch: pos.stepInEpoch, optimizer } }, tensors);
  } finally {
    for (const t of shares) t.dispose();
  }
}

/** Σ over the parameters of Σ grad² (a parameter without a gradient counts 0). */
function gradSquares(params: Iterable<Tensor>, gpu: Gpu): Tensor {
  return noGrad(() =>
    tidy(() => {
      let total: Tensor | null = null;
      for (const p of params) {
        if (!p.grad) continue;
        const s = sum(square(p.grad));
        total = total ? add(total, s) : s;
      }
      return total ? reshape(total, [1]) : tensor([0], [1], 'f32', gpu);
    }),
  );
}

/** The step context of global step `globalStep`: its generator depends on (seed, step) only, so a resumed run replays it. */
export function stepContext(seed: number, epoch: number, stepInEpoch: number, globalStep: number): StepContext {
  return { epoch, stepInEpoch, globalStep, rng: new Rng(`cliptune-step\u0001${seed}\u0001${globalStep}`) };
}

/**
 * One optimiser step, all on the device: the method's loss, backward (and its afterBackward), the
 * scalars to read back later ([loss, ...terms, Σ‖grad‖²] in `names` order, one kept tensor), then
 * the optimiser. Nothing is read back here. The bench times exactly this.
 */
export function trainStep(
  method: AdaptMethod, batch: unknown, ctx: StepContext, params: Iterable<Tensor>, opt: Optimizer | null, gpu: Gpu | null,
): { names: string[]; stats: Tensor } {
  const out = tidy(() => method.step(batch, ctx));
  const owned = new Set<Tensor>([out.loss, ...Object.values(out.terms ?? {})]);
  try {
    out.loss.backward();
    out.afterBackward?.();
  } catch (e) {
    clearTape();
    for (const t of owned) t.dispose();
    throw e;
  }
  const names = ['loss', ...Object.keys(out.terms ?? {}), 'grad_sq'];
  const stats = noGrad(() =>
    tidy(() => keep(concat([reshape(out.loss, [1]), ...Object.values(out.terms ?? {}).map((t) => reshape(t, [1])), gradSquares(params, gpu ?? out.loss.gpu)], 0))),
  );
  for (const t of owned) t.dispose();
  opt?.step();
  opt?.zeroGrad();
  return { names, stats };
}

export async function trainLoop(o: LoopOptions): Promise<LoopResult> {
  const method = o.method;
  const plan = method.plan();
  const params = [...method.params.values()];
  const gpu = params[0]?.gpu ?? null;
  // Methods solved in prepare() (linear probe) have parameters but no steps: no optimiser.
  const opt = params.length && plan.epochs * plan.stepsPerEpoch > 0 ? method.createOptimizer() : null;
  const log = o.log ?? new JsonlLog(null);
  let epoch = 0;
  let stepInEpoch = 0;
  let globalStep = 0;
  let checkpointStep: number | null = null;
  const extra: Record<string, unknown> = {};
  if (o.resume) {
    const st = o.resume.state;
    restore(method, opt, o.resume);
    epoch = st.epoch;
    globalStep = st.step;
    stepInEpoch = Number(st.extra.stepInEpoch ?? 0);
    checkpointStep = st.step;
    if (Array.isArray(st.extra.evals)) extra.evals = st.extra.evals;
    log.write({ type: 'resume', step: globalStep, epoch, stepInEpoch });
  }
  const totalSteps = plan.epochs * plan.stepsPerEpoch;
  const t0 = performance.now();
  let stepsRun = 0;
  const progressStream = o.progress === undefined ? process.stderr : o.progress;
  const progress = progressStream && totalSteps > globalStep ? new Progress(`train ${method.name}`, totalSteps - globalStep, 'steps', progressStream) : null;
  let shownLoss = '';
  const reader = new StatsReader(Math.max(1, o.logEvery ?? 10), (row) => {
    shownLoss = `loss ${row.values.loss!.toFixed(4)}`;
    log.write({ type: 'step', step: row.globalStep, epoch: row.epoch, lr: row.lr, ...row.values });
  });
  const result = (status: LoopStatus, message: string): LoopResult => ({
    status,
    globalStep,
    epoch,
    stepsRun,
    seconds: (performance.now() - t0) / 1000,
    lastLoss: reader.lastLoss,
    message,
    checkpointStep,
  });
  const save = async (done: boolean) => {
    await reader.drain();
    if (reader.bad) return false;
    await writeCheckpoint(o.checkpointPath, o, opt, { epoch, stepInEpoch, globalStep }, { ...extra, done });
    checkpointStep = globalStep;
    log.write({ type: 'checkpoint', step: globalStep, epoch, done });
    return true;
  };
  const diverged = (): LoopResult => {
    const b = reader.bad!;
    const where = checkpointStep === null ? 'no checkpoint was written' : `the last good checkpoint (step ${checkpointStep}) is kept in ${o.checkpointPath}`;
    const msg = `training stopped: ${b.what === 'loss' ? 'the loss' : b.what === 'grad_sq' ? 'the gradient' : `the loss term "${b.what}"`} became ${b.value} at step ${b.step} (epoch ${b.epoch + 1}); ${where}. Try a lower --lr.`;
    log.write({ type: 'diverged', step: b.step, epoch: b.epoch, what: b.what, value: String(b.value), checkpointStep });
    return result('diverged', msg);
  };

  // A fresh run keeps its starting point, so there is always a good checkpoint to fall back to.
  if (!o.resume && opt) await save(false);
  let lastSave = performance.now();

  while (epoch < plan.epochs) {
    for await (const batch of method.batches(epoch, stepInEpoch)) {
      if (stepInEpoch >= plan.stepsPerEpoch) break;
      const lr = method.learningRate(epoch, stepInEpoch, globalStep);
      opt?.setLr(lr);
      const { names, stats } = trainStep(method, batch, stepContext(o.run.seed, epoch, stepInEpoch, globalStep), params, opt, gpu);
      reader.push({ globalStep, epoch, lr, names, stats });
      globalStep++;
      stepInEpoch++;
      stepsRun++;
      const secs = (performance.now() - t0) / 1000;
      progress?.tick(1, [shownLoss, `${((stepsRun * plan.imagesPerStep) / Math.max(secs, 1e-9)).toFixed(0)} img/s`].filter(Boolean).join(' '));
      o.onStep?.(globalStep);
      // Let read-backs resolve (they complete on the event loop, not in microtasks).
      if (reader.inflight) await new Promise<void>((r) => setImmediate(r));
      if (reader.bad) {
        progress?.done();
        return diverged();
      }
      if (o.signal?.aborted) {
        progress?.done();
        if (!(await save(false))) return diverged();
        log.write({ type: 'interrupted', step: globalStep, epoch, stepInEpoch });
        return result('interrupted', `interrupted at step ${globalStep} of ${totalSteps} (epoch ${epoch + 1}); checkpoint saved to ${o.checkpointPath}`);
      }
    }
    epoch++;
    stepInEpoch = 0;
    if (o.evalEvery && o.evaluate && epoch % o.evalEvery === 0 && epoch < plan.epochs) {
      await reader.drain();
      if (reader.bad) return diverged();
      const metrics = await o.evaluate(epoch);
      log.write({ type: 'eval', epoch, step: globalStep, ...metrics });
      extra.evals = [...((extra.evals as unknown[]) ?? []), { epoch, step: globalStep, ...metrics }];
    }
    const byEpochs = (o.checkpointEpochs ?? 0) > 0 && epoch % o.checkpointEpochs! === 0;
    const byTime = performance.now() - lastSave >= (o.checkpointSeconds ?? 120) * 1000;
    if (opt && epoch < plan.epochs && (byEpochs || byTime)) {
      if (!(await save(false))) {
        progress?.done();
        return diverged();
      }
      lastSave = performance.now();
    }
  }
  progress?.done(reader.lastLoss !== null ? `loss ${reader.lastLoss.toFixed(4)}` : '');
  if (!(await save(true))) return diverged();
  const secs = (performance.now() - t0) / 1000;
  log.write({ type: 'end', step: globalStep, seconds: secs, loss: reader.lastLoss });
  return result('done', `trained ${stepsRun} steps in ${formatSecs(secs)}`);
}

/** Reads a run's checkpoint (for --resume and eval). */
export { loadCheckpoint };
