// Pretraining a small CLIP from scratch in the synthetic world: CLIP's symmetric contrastive loss
// (InfoNCE over the batch, learnable logit scale clamped at ln 100) on the world's (image, caption)
// stream, with the real CLIP tokenizer and a compact token embedding (only the world's 236 ids are
// rows; see src/clip/compact-vocab.ts). AdamW with linear warmup and per-step cosine decay; weight
// decay on the weight matrices only. Runs entirely on the engine; losses are read back every
// `logEvery` steps, one window behind, so the device never waits on the host per step. Checkpoints
// (atomic) carry the weights, both optimisers' state and the step: the data stream is a pure
// function of the pair index, so --resume continues to bit-identical weights.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../gpu/index.js';
import { tensor, zeros, keep, tidy, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { mapRaw } from '../ops/elementwise.js';
import { concat } from '../ops/shape.js';
import { AdamW, clipGradNorm, type AdamHyper, type OptimizerState } from '../nn/optim.js';
import { cosineLr } from '../nn/schedule.js';
import { ClipModel } from '../clip/model.js';
import { clipTensorSpec, type ClipConfig } from '../clip/checkpoint.js';
import { randomClipWeights } from '../clip/configs.js';
import { toNormalizedChw } from '../clip/transforms.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import { COMPACT_IDS_TENSOR, CompactVocab } from '../clip/compact-vocab.js';
import { f32ToF16Bits } from '../io/dtypes.js';
import { writeSafetensors, type WriteTensor } from '../io/safetensors-node.js';
import { saveCheckpoint, loadCheckpoint, type RunState } from './checkpoint.js';
import { worldPairs, WORLD_VERSION } from '../data/world/generate.js';
import { DOMAINS, type Domain } from '../data/world/attributes.js';
import { WORLD_CLASSES } from '../data/world/classes.js';
import { worldTokenIds } from '../data/world/vocab.js';
import { worldZeroShot, type WorldEvalResult } from './world-eval.js';
import { ACTIVATION_METADATA_KEY, loadClip } from '../clip/load-node.js';
import { Progress } from '../cli/progress.js';

/** CLIP clamps its logit scale at ln(100) (temperature 0.01). */
export const MAX_LOGIT_SCALE = Math.log(100);

export interface WorldClipShape {
  imageSize: number;
  patchSize: number;
  visionWidth: number;
  visionLayers: number;
  textWidth: number;
  textLayers: number;
  embedDim: number;
}

export interface PretrainOptions {
  shape: WorldClipShape;
  /** Optimiser steps of the whole run (the cosine spans them). */
  steps: number;
  /** Pairs per step (the contrastive batch: each caption's negatives are the other B - 1 images). */
  batch: number;
  lr: number;
  minLr: number;
  warmupSteps: number;
  /** Decoupled weight decay on weight matrices (not on gains, biases, embeddings, logit scale). */
  weightDecay: number;
  betas: [number, number];
  eps: number;
  /** Max global gradient norm (0: no clipping; the norm is still logged). */
  clipGrad: number;
  /** Seed of the initial weights. */
  seed: number;
  /** Seed of the world (pairs, held-out and test images). */
  worldSeed: number;
  /** Domain weights of the pair stream (default: the world's default mix, half plain). */
  domains?: Partial<Record<Domain, number>>;
  /** Steps per loss readback (and JSONL log window). */
  logEvery: number;
  /** Steps between zero-shot evaluations on held-out val images (0: none). */
  evalEvery: number;
  evalPerClass: number;
  /** Steps between checkpoints (each also after a readback, so only verified weights are saved). */
  checkpointEvery: number;
  /** Test images per class of the final evaluation (0: none). */
  finalEvalPerClass: number;
  /** Domains of the final evaluation (plain first, then the shifted ones). */
  finalEvalDomains: Domain[];
  exportDtype: 'f16' | 'f32';
  /** compact: token_embedding [K, W] + token ids (needs the loader hook); full: [49408, W], zeros outside the world. */
  exportVocab: 'compact' | 'full';
}

/** The shipped model's shape (weights/world-clip.md explains the choice). */
export const WORLD_CLIP_SHAPE: WorldClipShape = {
  imageSize: 32, patchSize: 8, visionWidth: 128, visionLayers: 4, textWidth: 128, textLayers: 4, embedDim: 128,
};

/** The full recipe (about 2 hours on 2 CPU cores with the software adapter). */
export const PRETRAIN_DEFAULTS: PretrainOptions = {
  shape: WORLD_CLIP_SHAPE,
  steps: 2200,
  batch: 128,
  lr: 1e-3,
  minLr: 1e-5,
  warmupSteps: 100,
  weightDecay: 0.2,
  betas: [0.9, 0.98],
  eps: 1e-6,
  clipGrad: 1,
  seed: 0,
  worldSeed: 0,
  logEvery: 10,
  evalEvery: 250,
  evalPerClass: 4,
  checkpointEvery: 100,
  finalEvalPerClass: 32,
  finalEvalDomains: ['plain', 'sketch', 'noise', 'stripes', 'checker', 'gradient', 'pixelated'],
  exportDtype: 'f16',
  exportVocab: 'compact',
};

/** `--quick`: the same model, a few minutes of training. */
export const QUICK_OVERRIDES: Partial<PretrainOptions> = {
  steps: 150,
  batch: 64,
  warmupSteps: 15,
  evalEvery: 50,
  checkpointEvery: 50,
  finalEvalPerClass: 16,
};

export class PretrainDivergedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PretrainDivergedError';
  }
}

export function worldClipConfig(s: WorldClipShape, vocabRows: number): ClipConfig {
  for (const [k, v] of Object.entries(s)) if (!Number.isInteger(v) || v <= 0) throw new RangeError(`model shape: ${k} must be a positive integer, got ${v}`);
  if (s.imageSize % s.patchSize !== 0) throw new RangeError(`model shape: image size ${s.imageSize} is not a multiple of the patch size ${s.patchSize}`);
  // Heads = width / 64, OpenAI's rule, which the checkpoint loader also infers.
  for (const [k, w] of [['visionWidth', s.visionWidth], ['textWidth', s.textWidth]] as const) {
    if (w % 64 !== 0) throw new RangeError(`model shape: ${k} ${w} must be a multiple of 64 (heads = width / 64)`);
  }
  return {
    embedDim: s.embedDim,
    image: { resolution: s.imageSize, patchSize: s.patchSize, width: s.visionWidth, layers: s.visionLayers, heads: s.visionWidth / 64, mlpHidden: 4 * s.visionWidth, eps: 1e-5 },
    text: { contextLength: 77, vocabSize: vocabRows, width: s.textWidth, layers: s.textLayers, heads: s.textWidth / 64, mlpHidden: 4 * s.textWidth, eps: 1e-5 },
    activation: 'quick_gelu',
    activationSource: 'option',
  };
}

/** Weight matrices get weight decay; gains, biases, embeddings and the logit scale do not. */
export function decays(name: string): boolean {
  return /(attn\.in_proj_weight|attn\.out_proj\.weight|mlp\.c_fc\.weight|mlp\.c_proj\.weight)$/.test(name)
    || name === 'visual.conv1.weight' || name === 'visual.proj' || name === 'text_projection';
}

export function validateOptions(o: PretrainOptions): void {
  const pos = (k: string, v: number) => {
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${k} must be a positive integer, got ${v}`);
  };
  const nonneg = (k: string, v: number) => {
    if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw new RangeError(`${k} must be a finite number >= 0, got ${v}`);
  };
  pos('steps', o.steps);
  pos('batch', o.batch);
  if (o.batch < 2) throw new RangeError('batch must be at least 2 (a contrastive batch needs negatives)');
  pos('logEvery', o.logEvery);
  pos('checkpointEvery', o.checkpointEvery);
  pos('evalPerClass', o.evalPerClass);
  for (const k of ['lr', 'minLr', 'weightDecay', 'eps', 'clipGrad'] as const) nonneg(k, o[k]);
  for (const k of ['warmupSteps', 'evalEvery', 'finalEvalPerClass', 'seed', 'worldSeed'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 0) throw new RangeError(`${k} must be a non-negative integer, got ${o[k]}`);
  }
  if (o.warmupSteps >= o.steps) throw new RangeError(`warmupSteps (${o.warmupSteps}) must be below steps (${o.steps})`);
  if (o.minLr > o.lr) throw new RangeError(`minLr ${o.minLr} is above lr ${o.lr}`);
  for (const d of o.finalEvalDomains) if (!DOMAINS.includes(d)) throw new RangeError(`unknown domain ${d}; valid: ${DOMAINS.join(', ')}`);
  if (o.exportDtype !== 'f16' && o.exportDtype !== 'f32') throw new RangeError(`exportDtype must be f16 or f32, got ${o.exportDtype}`);
  if (o.exportVocab !== 'compact' && o.exportVocab !== 'full') throw new RangeError(`exportVocab must be compact or full, got ${o.exportVocab}`);
  worldClipConfig(o.shape, 2);
}

export function learningRate(o: PretrainOptions, step: number): number {
  return cosineLr(step, { baseLr: o.lr, totalSteps: o.steps, warmupSteps: o.warmupSteps, minLr: o.minLr });
}

export interface PretrainIO {
  /** Output folder: checkpoint.safetensors, log.jsonl, world-clip.safetensors, results.json. */
  out: string;
  /** Continue from out/checkpoint.safetensors (its options win; `options` must agree or be omitted). */
  resume?: boolean;
  /** Polled after every step; true saves a checkpoint and stops (Ctrl-C). */
  shouldStop?: () => boolean;
  /** Human-readable messages (stderr in the CLI). */
  say?: (line: string) => void;
  /** Show a progress line on stderr. */
  progress?: boolean;
  /** The command line, recorded in results.json and the exported file's metadata. */
  command?: string;
  /** Stop (as if interrupted) after this many steps in total: tests. */
  stopAfter?: number;
}

export interface Throughput {
  steps: number;
  seconds: number;
  stepsPerSec: number;
  imagesPerSec: number;
  /** CPU seconds of this process (JS + the software adapter's threads) per step. */
  cpuSecondsPerStep: number;
  loadAverage: number[];
}

export interface PretrainResult {
  status: 'done' | 'interrupted';
  step: number;
  checkpoint: string;
  exported: string | null;
  finalEval: WorldEvalResult[];
  throughput: Throughput | null;
  options: PretrainOptions;
}

export interface LogLine {
  step: number;
  loss?: number;
  lr?: number;
  logit_scale?: number;
  grad_norm?: number;
  seconds?: number;
  eval?: WorldEvalResult;
}

interface Optimisers {
  decay: AdamW;
  noDecay: AdamW;
}

const CHECKPOINT = 'checkpoint.safetensors';
const LOG = 'log.jsonl';
export const EXPORT_FILE = 'world-clip.safetensors';

/** Runs (or resumes) a pretraining run. Throws PretrainDivergedError on a non-finite loss. */
export async function pretrain(gpu: Gpu, baseTokenizer: ClipTokenizer, options: PretrainOptions | null, io: PretrainIO): Promise<PretrainResult> {
  const say = io.say ?? (() => {});
  mkdirSync(io.out, { recursive: true });
  const ckptPath = join(io.out, CHECKPOINT);
  const logPath = join(io.out, LOG);
  const worldIds = worldTokenIds(baseTokenizer);
  const vocab = new CompactVocab(worldIds, baseTokenizer.vocabSize, "the world's texts");
  const tokenizer = vocab.wrapTokenizer(baseTokenizer);

  let o: PretrainOptions;
  let model: ClipModel;
  let opt: Optimisers;
  let step = 0;
  if (io.resume) {
    const ck = await loadCheckpoint(ckptPath);
    if (ck.state.method !== 'pretrain') throw new Error(`${ckptPath} is a ${ck.state.method} checkpoint, not a pretraining run`);
    o = ck.state.options as unknown as PretrainOptions;
    if (options) {
      const diff = Object.keys(o).filter((k) => JSON.stringify((o as unknown as Record<string, unknown>)[k]) !== JSON.stringify((options as unknown as Record<string, unknown>)[k]));
      if (diff.length) throw new Error(`--resume: the checkpoint's run used other options (${diff.map((k) => `${k}: ${JSON.stringify((o as unknown as Record<string, unknown>)[k])}`).join(', ')}); resume with the same ones`);
    }
    validateOptions(o);
    const ids = ck.state.extra.vocabIds as number[];
    if (JSON.stringify(ids) !== JSON.stringify(worldIds)) throw new Error(`--resume: the world's vocabulary changed since the checkpoint (${ids.length} vs ${worldIds.length} ids)`);
    if (ck.state.extra.worldVersion !== WORLD_VERSION) throw new Error(`--resume: the checkpoint was made with world version ${ck.state.extra.worldVersion}, this is ${WORLD_VERSION}`);
    step = ck.state.step;
    const config = worldClipConfig(o.shape, vocab.size);
    const weights = new Map<string, Float32Array>();
    for (const { name } of clipTensorSpec(config)) {
      const t = ck.tensors.get(`model/${name}`);
      if (!t) throw new Error(`${ckptPath}: missing model/${name}`);
      weights.set(name, t.data);
    }
    model = ClipModel.fromTensors(gpu, config, weights);
    opt = makeOptimisers(model, o);
    restoreOptimiser(gpu, opt.decay, 'decay', ck.state.extra.optim as Record<string, OptimizerState<AdamHyper>>, ck.tensors);
    restoreOptimiser(gpu, opt.noDecay, 'noDecay', ck.state.extra.optim as Record<string, OptimizerState<AdamHyper>>, ck.tensors);
    truncateLog(logPath, step);
    say(`resuming ${ckptPath} at step ${step}/${o.steps}`);
  } else {
    if (!options) throw new Error('pretrain: options are required for a new run');
    o = options;
    validateOptions(o);
    if (existsSync(ckptPath)) throw new Error(`${ckptPath} exists: pass --resume to continue that run, or choose another --out`);
    const config = worldClipConfig(o.shape, vocab.size);
    model = ClipModel.fromTensors(gpu, config, randomClipWeights(config, o.seed));
    opt = makeOptimisers(model, o);
    writeFileSync(logPath, '');
  }
  writeFileSync(join(io.out, 'run.json'), JSON.stringify({ command: io.command ?? null, options: o, worldVersion: WORLD_VERSION, vocabRows: vocab.size }, null, 2) + '\n');

  const cfg = model.config;
  const params = [...model.params.values()];
  const logitScale = model.param('logit_scale');
  const B = o.batch;
  const S = cfg.image.resolution;
  const L = cfg.text.contextLength;
  const pixels = new Float32Array(B * 3 * S * S);
  // Per step, 3 words: loss, gradient norm (before clipping), logit scale (after the clamp).
  const history = keep(zeros([o.logEvery * 3], 'f32', gpu));
  let windowStart = step;
  let pending: { read: Promise<ArrayBuffer>; first: number; count: number } | null = null;
  const lrs = new Map<number, number>();
  const stepTimes = new Map<number, number>();
  let lastLoss = NaN;
  let lastGoodCheckpoint = io.resume ? step : -1;
  const t0 = performance.now();

  const log = (line: LogLine) => appendFileSync(logPath, JSON.stringify(line) + '\n');
  const diverged = (what: string) => {
    const kept = lastGoodCheckpoint >= 0 ? `the last good checkpoint (step ${lastGoodCheckpoint}) is kept in ${ckptPath}` : 'no checkpoint was written yet';
    return new PretrainDivergedError(`${what}: training diverged; stopped without saving; ${kept}. Try a lower --lr or --clip-grad.`);
  };

  const process_ = (buf: ArrayBuffer, first: number, count: number) => {
    const v = new Float32Array(buf);
    for (let j = 0; j < count; j++) {
      const s = first + j;
      const [loss, gn, ls] = [v[3 * j]!, v[3 * j + 1]!, v[3 * j + 2]!];
      if (!Number.isFinite(loss) || !Number.isFinite(gn)) throw diverged(`step ${s + 1}: loss ${loss}, gradient norm ${gn}`);
      lastLoss = loss;
      log({ step: s + 1, loss, lr: lrs.get(s)!, logit_scale: ls, grad_norm: gn, seconds: round3(stepTimes.get(s)!) });
      lrs.delete(s);
      stepTimes.delete(s);
    }
  };
  /** Starts reading the current window (copied now, in stream order); finishes the previous read. */
  const launchRead = async () => {
    const count = step - windowStart;
    if (count === 0) return;
    const read = gpu.read(history.buffer, 0, count * 12, 'pretrain loss history');
    // Awaited at the next boundary; if the run stops first (divergence), a failed read must not
    // surface as an unhandled rejection.
    read.catch(() => {});
    const prev = pending;
    pending = { read, first: windowStart, count };
    windowStart = step;
    if (prev) process_(await prev.read, prev.first, prev.count);
  };
  const drain = async () => {
    await launchRead();
    const p = pending;
    pending = null;
    if (p) process_(await p.read, p.first, p.count);
  };

  const save = async () => {
    // A finite loss and gradient do not guarantee a finite update (a huge learning rate overflows):
    // check the weights themselves before they replace the last good checkpoint.
    for (const [name, t] of model.params) {
      const bad = ((await t.read()) as Float32Array).find((v) => !Number.isFinite(v));
      if (bad !== undefined) throw diverged(`step ${step}: the update left non-finite weights (${name} has ${bad})`);
    }
    const tensors = new Map<string, Tensor>();
    for (const [name, t] of model.params) tensors.set(`model/${name}`, t);
    const states: Record<string, OptimizerState<AdamHyper>> = {};
    const handles: Tensor[] = [];
    for (const [group, op] of Object.entries(opt) as [keyof Optimisers, AdamW][]) {
      const st = op.stateDict({ clone: false });
      for (const [k, t] of Object.entries(st.tensors)) {
        tensors.set(`optim/${group}/${k}`, t);
        handles.push(t);
      }
      states[group] = { ...st, tensors: {} };
    }
    const state: RunState = {
      method: 'pretrain',
      options: o as unknown as Record<string, unknown>,
      baseHash: '',
      classnames: [...WORLD_CLASSES],
      seed: o.seed,
      step,
      epoch: 0,
      extra: { optim: states, vocabIds: worldIds, worldVersion: WORLD_VERSION, pairsSeen: step * B },
    };
    try {
      await saveCheckpoint(ckptPath, state, tensors);
    } finally {
      for (const h of handles) h.dispose();
    }
    lastGoodCheckpoint = step;
  };

  const progress = io.progress ? new Progress('pretrain', o.steps - step, 'steps') : null;
  let timedFrom = -1;
  let timedT0 = 0;
  let timedCpu0 = 0;
  let pausedMs = 0;
  let interrupted = false;
  const cpuNow = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  try {
    while (step < o.steps) {
      // The first steps compile pipelines: time from the third on.
      if (timedFrom < 0 && step >= (io.resume ? lastGoodCheckpoint : 0) + 2) {
        timedFrom = step;
        timedT0 = performance.now();
        timedCpu0 = cpuNow();
        pausedMs = 0;
      }
      const lr = learningRate(o, step);
      lrs.set(step, lr);
      trainStep(gpu, model, tokenizer, opt, params, logitScale, o, step, lr, pixels, L, history, (step - windowStart) * 12);
      stepTimes.set(step, (performance.now() - t0) / 1000);
      step++;
      progress?.tick(1, Number.isFinite(lastLoss) ? `loss ${lastLoss.toFixed(4)} lr ${lr.toExponential(2)}` : '');
      const stop = (io.shouldStop?.() ?? false) || (io.stopAfter !== undefined && step >= io.stopAfter);
      const doEval = o.evalEvery > 0 && step % o.evalEvery === 0 && step < o.steps;
      const doCkpt = step % o.checkpointEvery === 0 || step === o.steps || stop;
      if (doEval || doCkpt) {
        const p0 = performance.now();
        await drain();
        if (doEval) {
          const ev = await worldZeroShot(gpu, model, tokenizer, { seed: o.worldSeed, split: 'val', perClass: o.evalPerClass });
          log({ step, eval: ev });
          say(`step ${step}: held-out zero-shot base ${ev.base.toFixed(1)}% novel ${ev.novel.toFixed(1)}% all ${ev.all.toFixed(1)}% (loss ${lastLoss.toFixed(4)})`);
        }
        if (doCkpt) await save();
        pausedMs += performance.now() - p0;
      } else if (step - windowStart >= o.logEvery) {
        await launchRead();
      }
      if (stop && step < o.steps) {
        interrupted = true;
        break;
      }
    }
    await drain();
  } finally {
    progress?.done(Number.isFinite(lastLoss) ? `loss ${lastLoss.toFixed(4)}` : '');
    history.dispose();
  }

  let throughput: Throughput | null = null;
  if (timedFrom >= 0 && step > timedFrom) {
    const n = step - timedFrom;
    const seconds = (performance.now() - timedT0 - pausedMs) / 1000;
    throughput = {
      steps: n,
      seconds: round3(seconds),
      stepsPerSec: n / seconds,
      imagesPerSec: (n * B) / seconds,
      cpuSecondsPerStep: (cpuNow() - timedCpu0) / n,
      loadAverage: loadAverage(),
    };
  }
  const result: PretrainResult = { status: interrupted ? 'interrupted' : 'done', step, checkpoint: ckptPath, exported: null, finalEval: [], throughput, options: o };
  for (const op of Object.values(opt)) op.dispose();
  if (interrupted) {
    model.dispose();
    say(`stopped at step ${step}/${o.steps}; checkpoint saved to ${ckptPath} (continue with --resume)`);
    return result;
  }

  const exported = join(io.out, EXPORT_FILE);
  await exportWorldClip(model, vocab, exported, {
    dtype: o.exportDtype,
    vocab: o.exportVocab,
    metadata: { command: io.command ?? '', seed: String(o.seed), world_seed: String(o.worldSeed), world_version: String(WORLD_VERSION), steps: String(step) },
  });
  model.dispose();
  result.exported = exported;
  if (o.finalEvalPerClass > 0) {
    // Evaluate what ships: the exported file, read back as the loader reads it.
    const loaded = await loadClip(gpu, exported, { tokenizer: baseTokenizer });
    try {
      for (const domain of o.finalEvalDomains) {
        const ev = await worldZeroShot(gpu, loaded.model, loaded.tokenizer, { seed: o.worldSeed, split: 'test', perClass: o.finalEvalPerClass, domain });
        result.finalEval.push(ev);
        log({ step, eval: ev });
        say(`test (${domain}): zero-shot base ${ev.base.toFixed(1)}% novel ${ev.novel.toFixed(1)}% all ${ev.all.toFixed(1)}% (chance ${(100 / 24).toFixed(1)}% / ${(100 / 24).toFixed(1)}% / ${(100 / 48).toFixed(1)}%)`);
      }
    } finally {
      loaded.model.dispose();
    }
  }
  writeFileSync(join(io.out, 'results.json'), JSON.stringify({ command: io.command ?? null, step, exported, finalEval: result.finalEval, throughput, options: o }, null, 2) + '\n');
  return result;
}

function makeOptimisers(model: ClipModel, o: PretrainOptions): Optimisers {
  const all = model.setTrainable(() => true);
  const names = new Map([...model.params].map(([n, t]) => [t, n]));
  const common = { lr: learningRate(o, 0), betas: o.betas, eps: o.eps };
  return {
    decay: new AdamW(all.filter((t) => decays(names.get(t)!)), { ...common, weightDecay: o.weightDecay }),
    noDecay: new AdamW(all.filter((t) => !decays(names.get(t)!)), { ...common, weightDecay: 0 }),
  };
}

function restoreOptimiser(gpu: Gpu, op: AdamW, group: string, states: Record<string, OptimizerState<AdamHyper>>, tensors: Map<string, { shape: number[]; data: Float32Array }>): void {
  const st = states[group];
  if (!st) throw new Error(`checkpoint has no optimiser state for ${group}`);
  const uploads: Record<string, Tensor> = {};
  const prefix = `optim/${group}/`;
  for (const [name, t] of tensors) if (name.startsWith(prefix)) uploads[name.slice(prefix.length)] = tensor(t.data, t.shape, 'f32', gpu);
  try {
    op.loadStateDict({ ...st, tensors: uploads });
  } finally {
    for (const t of Object.values(uploads)) t.dispose();
  }
}

function trainStep(
  gpu: Gpu, model: ClipModel, tokenizer: ClipTokenizer, opt: Optimisers, params: Tensor[], logitScale: Tensor,
  o: PretrainOptions, step: number, lr: number, pixels: Float32Array, L: number, history: Tensor, slotByte: number,
): void {
  const B = o.batch;
  const S = model.config.image.resolution;
  const per = 3 * S * S;
  const pairs = [...worldPairs({ seed: o.worldSeed, size: S, start: step * B, count: B, ...(o.domains ? { domains: o.domains } : {}) })];
  const rows = tokenizer.tokenize(pairs.map((p) => p.caption), { contextLength: L });
  const lengths = rows.map((r) => ClipModel.eotPositions({ ids: r, rows: 1, length: L })[0]! + 1);
  // The loss is invariant to permuting images and captions together: order the batch by caption
  // length so the text tower can run in length groups (a stable sort keeps this deterministic).
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const ids = new Int32Array(B * L);
  order.forEach((src, dst) => {
    toNormalizedChw(pairs[src]!.image, pixels, dst * per);
    ids.set(rows[src]!, dst * L);
  });
  const groups = lengthGroups(order.map((i) => lengths[i]!), TEXT_GROUPS);
  const loss = tidy(() => {
    const img = model.encodeImage(tensor(pixels, [B, 3, S, S], 'f32', gpu)).embeds;
    const parts = groups.map(([a, b]) => model.encodeText({ ids: ids.subarray(a * L, b * L), rows: b - a, length: L }).embeds);
    const txt = parts.length === 1 ? parts[0]! : concat(parts, 0);
    return model.contrastiveLoss(img, txt);
  });
  loss.backward();
  const norm = clipGradNorm(params, o.clipGrad > 0 ? o.clipGrad : Infinity);
  opt.decay.setLr(lr);
  opt.noDecay.setLr(lr);
  opt.decay.step();
  opt.noDecay.step();
  opt.decay.zeroGrad();
  opt.noDecay.zeroGrad();
  noGrad(() => {
    // CLIP: logit_scale.data.clamp_(0, ln 100) after every step.
    const clamped = mapRaw('clamp(a, alpha, beta)', logitScale, null, 0, MAX_LOGIT_SCALE, 'logit scale clamp');
    gpu.copy(clamped.buffer, 0, logitScale.buffer, 0, 4, 'logit scale clamp');
    clamped.dispose();
  });
  gpu.copy(loss.buffer, 0, history.buffer, slotByte, 4, 'loss history');
  gpu.copy(norm.buffer, 0, history.buffer, slotByte + 4, 4, 'grad norm history');
  gpu.copy(logitScale.buffer, 0, history.buffer, slotByte + 8, 4, 'logit scale history');
  loss.dispose();
  norm.dispose();
}

/** At most this many text groups per batch (each costs one more pass of dispatches). */
export const TEXT_GROUPS = 4;

/**
 * Splits sorted sequence lengths into at most `k` contiguous groups [start, end) minimising the
 * padded token count sum(group size x longest length) (the text tower's cost: each group runs
 * only up to its own longest caption instead of the batch's). Exact dynamic program, O(k n^2).
 */
export function lengthGroups(sorted: readonly number[], k: number): [number, number][] {
  const n = sorted.length;
  const cost = (a: number, b: number) => (b - a) * sorted[b - 1]!;
  // best[g][i]: cheapest split of the first i lengths into g groups.
  const best: number[][] = [Array.from({ length: n + 1 }, (_, i) => (i === 0 ? 0 : Infinity))];
  const cut: number[][] = [new Array<number>(n + 1).fill(0)];
  for (let g = 1; g <= k; g++) {
    best.push(new Array<number>(n + 1).fill(Infinity));
    cut.push(new Array<number>(n + 1).fill(0));
    for (let i = 1; i <= n; i++) {
      for (let j = 0; j < i; j++) {
        const c = best[g - 1]![j]! + cost(j, i);
        if (c < best[g]![i]!) {
          best[g]![i] = c;
          cut[g]![i] = j;
        }
      }
    }
  }
  let g = 1;
  for (let h = 2; h <= k; h++) if (best[h]![n]! < best[g]![n]!) g = h;
  const out: [number, number][] = [];
  for (let i = n; i > 0; g--) {
    const j = cut[g]![i]!;
    out.unshift([j, i]);
    i = j;
  }
  return out;
}

function truncateLog(path: string, step: number): void {
  if (!existsSync(path)) return;
  const keep = readFileSync(path, 'utf8').split('\n').filter((l) => {
    if (!l.trim()) return false;
    try {
      return (JSON.parse(l) as LogLine).step <= step;
    } catch {
      return false;
    }
  });
  writeFileSync(path, keep.map((l) => l + '\n').join(''));
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function loadAverage(): number[] {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    return [];
  }
}

// ------------------------------------------------------------------ export and load

export interface ExportOptions {
  dtype: 'f16' | 'f32';
  vocab: 'compact' | 'full';
  metadata?: Record<string, string>;
}

/**
 * Writes the model as a plain OpenAI-named safetensors file (atomically). Compact: token_embedding
 * [K, W] plus token_embedding.token_ids i32 [K]; full: CLIP's [49408, W] layout with zero rows
 * outside the world's ids (loadable by any OpenAI-layout reader, but silent on unknown words).
 */
export async function exportWorldClip(model: ClipModel, vocab: CompactVocab, path: string, o: ExportOptions): Promise<void> {
  const cfg = model.config;
  if (cfg.text.vocabSize !== vocab.size) throw new Error(`exportWorldClip: the model has ${cfg.text.vocabSize} token rows, the vocabulary ${vocab.size}`);
  const entries = new Map<string, WriteTensor>();
  for (const spec of clipTensorSpec(cfg)) {
    let shape = spec.shape;
    let data = (await model.param(spec.name).read()) as Float32Array;
    if (spec.name === 'token_embedding.weight' && o.vocab === 'full') {
      data = vocab.expandEmbedding(data, cfg.text.width);
      shape = [vocab.fullSize, cfg.text.width];
    }
    entries.set(spec.name, o.dtype === 'f16' ? { dtype: 'F16', shape, data: f32ToF16Bits(data) } : { dtype: 'F32', shape, data });
  }
  if (o.vocab === 'compact') entries.set(COMPACT_IDS_TENSOR, { dtype: 'I32', shape: [vocab.size], data: vocab.ids });
  await writeSafetensors(path, entries, { format: 'pt', 'cliptune.model': 'world-clip', 'cliptune.vocab': o.vocab, [ACTIVATION_METADATA_KEY]: 'quick_gelu', ...(o.metadata ?? {}) });
}

