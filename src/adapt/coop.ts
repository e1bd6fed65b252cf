// CoOp (Zhou et al., IJCV 2022; KaiyangZhou/CoOp coop.py): M learnable context vectors in the text
// encoder's input, shared by all classes (unified) or per class (CSC), with the class name at the
// end, middle or front of the prompt; loss CE(s·cos(image, text_c)); SGD lr 0.002, batch 32, Dassl's
// cosine schedule with one constant warm-up epoch at 1e-5, stepped per epoch (methods.md 4.1, 2.3).
//
// Prompt assembly, as CoOp's PromptLearner: tokenize "X X ... X {class}." (or "{init} {class}."),
// embed it, and rearrange per class:
//   end:    [SOT] ctx_1..ctx_M [class tokens] [.] [EOT] ...
//   middle: [SOT] ctx_1..ctx_{M/2} [class tokens] ctx_{M/2+1}..ctx_M [.] [EOT] ...
//   front:  [SOT] [class tokens] ctx_1..ctx_M [.] [EOT] ...
// The rearrangement keeps the length, so the EOT position is that of the tokenized string. Here one
// gather builds every prompt: a table [ctx rows; frozen token embeddings of the prompts] and, per
// (class, position), the row to take; the gather's backward scatters into the ctx rows only.
import { resolve } from 'node:path';
import { GpuError } from '../gpu/index.js';
import { keep, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { scale as scaleBy } from '../ops/elementwise.js';
import { matmul } from '../ops/matmul.js';
import { l2normalize } from '../ops/distance.js';
import { crossEntropy } from '../ops/losses.js';
import { concat, reshape, slice } from '../ops/shape.js';
import { embedding } from '../ops/index-ops.js';
import { ClipModel } from '../clip/model.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import { ChunkedEncoder } from '../clip/chunked.js';
import { Rng } from '../clip/rng.js';
import { promptClassname } from '../data/datasets.js';
import type { AdaptMethod, Classifier, DefaultsContext, MethodEnv, MethodSpec, OptionValue, StepContext, StepOutput } from './method.js';
import { MethodOptionError } from './method.js';
import { initRunCtxCount, initTensor, readInitSource } from './init-from.js';
import { DASSL_SGD_DEFAULTS, DASSL_SGD_OPTIONS, DasslPromptMethod, SGD_LR_OPTION, chunkedText, sameClasses, wordEmbeddings, type ImageBatch } from './prompt-common.js';

export type ClassTokenPosition = 'end' | 'middle' | 'front';

export interface CoopPromptOptions {
  nCtx: number;
  position: ClassTokenPosition;
  csc: boolean;
  /** Init words ("a photo of a"): their embeddings start the context and the prompt text uses them. */
  init: string | null;
}

/** Where every (class, position) of the prompts takes its input embedding from. */
export interface PromptPlan {
  /** Token ids [C, L] of the tokenized prompt strings, cut after the longest EOT. */
  ids: Int32Array;
  classes: number;
  length: number;
  eot: number[];
  /** Per (class, position): the context row (unified: m; CSC: c·M + m), or -1 for a frozen token. */
  ctxRow: Int32Array;
  /** Per (class, position): the position in the tokenized row whose embedding is used (when ctxRow is -1). */
  srcPos: Int32Array;
  nameLens: number[];
  nCtx: number;
}

/** Token ids of the init words (what replaces the placeholders), checked against the context length. */
export function initTokens(tokenizer: ClipTokenizer, init: string): number[] {
  const ids = tokenizer.encode(init);
  if (!ids.length) throw new MethodOptionError(`--ctx-init "${init}" has no tokens`);
  return ids;
}

export function planCoopPrompts(tokenizer: ClipTokenizer, classnames: readonly string[], o: CoopPromptOptions, contextLength = 77): PromptPlan {
  const M = o.nCtx;
  if (!Number.isInteger(M) || M < 1) throw new MethodOptionError(`--n-ctx must be a positive integer, got ${M}`);
  if (o.init !== null) {
    const n = initTokens(tokenizer, o.init).length;
    if (n !== M) throw new MethodOptionError(`--ctx-init "${o.init}" is ${n} tokens but --n-ctx is ${M}; they must match`);
  }
  const prefix = o.init ?? Array.from({ length: M }, () => 'X').join(' ');
  const names = classnames.map(promptClassname);
  const texts = names.map((n) => `${prefix} ${n}.`);
  let rows: Int32Array[];
  try {
    rows = tokenizer.tokenize(texts, { contextLength, rejectEmpty: true });
  } catch (e) {
    throw new MethodOptionError(`CoOp prompts do not fit the text encoder: ${(e as Error).message}`);
  }
  const C = classnames.length;
  const eot = ClipModel.eotPositions({ ids: Int32Array.from(rows.flatMap((r) => [...r])), rows: C, length: contextLength });
  const L = Math.max(...eot) + 1;
  const nameLens = names.map((n) => tokenizer.encode(n).length);
  const ids = new Int32Array(C * L);
  const ctxRow = new Int32Array(C * L).fill(-1);
  const srcPos = new Int32Array(C * L);
  const half = Math.floor(M / 2);
  for (let c = 0; c < C; c++) {
    const n = nameLens[c]!;
    for (let t = 0; t < L; t++) {
      ids[c * L + t] = rows[c]![t]!;
      let m = -1;
      let p = t;
      if (t > 0) {
        if (o.position === 'end') {
          if (t <= M) m = t - 1;
        } else if (o.position === 'front') {
          if (t <= n) p = M + t;
          else if (t <= n + M) m = t - n - 1;
        } else {
          if (t <= half) m = t - 1;
          else if (t <= half + n) p = M + (t - half);
          else if (t <= M + n) m = half + (t - half - n - 1);
        }
      }
      if (m >= 0) ctxRow[c * L + t] = o.csc ? c * M + m : m;
      srcPos[c * L + t] = m >= 0 ? 0 : p;
    }
  }
  return { ids, classes: C, length: L, eot, ctxRow, srcPos, nameLens, nCtx: M };
}

/** The prompts of a class list in chunks: frozen token rows and gather indices, ready for any ctx. */
export class PromptBank {
  readonly chunks: { start: number; end: number; frozen: Tensor; index: Tensor; eot: number[] }[] = [];

  constructor(
    readonly model: ClipModel,
    readonly plan: PromptPlan,
    readonly csc: boolean,
    readonly chunk: number,
  ) {
    const { classes: C, length: L, nCtx: M } = plan;
    const W = model.config.text.width;
    const all = noGrad(() => model.tokenEmbeddings({ ids: plan.ids, rows: C, length: L }, L));
    for (let s = 0; s < C; s += chunk) {
      const e = Math.min(C, s + chunk);
      const n = e - s;
      const ctxRows = csc ? n * M : M;
      const idx = new Int32Array(n * L);
      for (let c = s; c < e; c++) {
        for (let t = 0; t < L; t++) {
          const k = c * L + t;
          const r = plan.ctxRow[k]!;
          idx[(c - s) * L + t] = r >= 0 ? (csc ? r - s * M : r) : ctxRows + (c - s) * L + plan.srcPos[k]!;
        }
      }
      const frozen = keep(noGrad(() => reshape(n === C ? all.share() : slice(all, 0, s, e), [n * L, W])));
      const index = keep(tensor(idx, [n, L], 'i32', model.gpu));
      this.chunks.push({ start: s, end: e, frozen, index, eot: plan.eot.slice(s, e) });
    }
    all.dispose();
  }

  /** Prompt embeddings [n, L, W] of chunk `i` with context `ctx` ([M, W] or CSC [C, M, W]). */
  embeddings(ctx: Tensor, i: number): Tensor {
    const ch = this.chunks[i]!;
    const M = this.plan.nCtx;
    const W = this.model.config.text.width;
    return tidy(() => {
      const rows = this.csc ? slice(reshape(ctx, [this.plan.classes * M, W]), 0, ch.start * M, ch.end * M) : ctx;
      return embedding(concat([rows, ch.frozen], 0), ch.index);
    });
  }

  /** Unnormalised text features [n, E] of chunk `i`. */
  encode(ctx: Tensor, i: number): Tensor {
    const ch = this.chunks[i]!;
    return tidy(() => this.model.encodeTextEmbeddings(this.embeddings(ctx, i), ch.eot).embeds);
  }

  /** Normalised features of every class, without gradient [C, E]. */
  encodeAllNoGrad(ctx: Tensor): Tensor {
    return noGrad(() =>
      tidy(() => {
        const parts = this.chunks.map((_, i) => this.encode(ctx, i));
        return l2normalize(parts.length === 1 ? parts[0]! : concat(parts, 0));
      }),
    );
  }

  dispose(): void {
    for (const c of this.chunks) {
      c.frozen.dispose();
      c.index.dispose();
    }
    this.chunks.length = 0;
  }
}

// Dassl's batching moved to prompt-common.ts (shared by the prompt methods); re-exported for callers.
export { dasslStepsPerEpoch, shuffledOrder, epochRng, imageBatches } from './prompt-common.js';

export class CoopMethod extends DasslPromptMethod implements AdaptMethod<ImageBatch> {
  readonly name = 'coop';
  readonly params = new Map<string, Tensor>();
  readonly caches = ['frozen token embeddings of the class prompts (memory)', 'pre-projection test features (test transform), at evaluation'];
  private bank: PromptBank | null = null;
  private chunked: ChunkedEncoder | null = null;
  private logitScale = 100;

  private get o() {
    const o = this.options;
    return {
      nCtx: o.nCtx as number,
      init: (o.ctxInit as string) || null,
      csc: o.csc as boolean,
      position: o.classTokenPosition as ClassTokenPosition,
      chunk: o.textChunk as number,
      initFrom: (o.initFrom as string | undefined) ?? '',
    };
  }

  private promptOptions(): CoopPromptOptions {
    const o = this.o;
    return { nCtx: o.nCtx, position: o.position, csc: o.csc, init: o.init };
  }

  async prepare(env: MethodEnv): Promise<void> {
    this.env = env;
    const { model, tokenizer } = env;
    const o = this.o;
    const C = env.classnames.length;
    const W = model.config.text.width;
    const plan = planCoopPrompts(tokenizer, env.classnames, this.promptOptions(), model.config.text.contextLength);
    this.bank = new PromptBank(model, plan, o.csc, Math.min(o.chunk, C));
    // Initial context: the init words' embeddings (replicated per class for CSC), else N(0, 0.02).
    let init: Float32Array;
    if (o.init) {
      const words = await wordEmbeddings(model, initTokens(tokenizer, o.init));
      init = new Float32Array((o.csc ? C : 1) * o.nCtx * W);
      for (let k = 0; k < (o.csc ? C : 1); k++) init.set(words, k * words.length);
    } else {
      init = gaussian(new Rng(`cliptune-coop-ctx\u0001${env.seed}`), (o.csc ? C : 1) * o.nCtx * W, 0.02);
    }
    // --init-from: the context another run learned (CoOp's ctx, or RPP's query/stream vectors, also
    // named ctx). Only for training: evaluation and --resume load this run's own checkpoint after prepare().
    if (o.initFrom && env.purpose === 'train') {
      const src = await readInitSource(o.initFrom);
      init = initTensor(src, 'ctx', o.csc ? [C, o.nCtx, W] : [o.nCtx, W], 'the context (--n-ctx x text width)');
      env.log(`coop: context initialised from ${src.path} (method ${src.method}, step ${src.step})`);
    }
    const ctx = keep(tensor(init, o.csc ? [C, o.nCtx, W] : [o.nCtx, W], 'f32', env.gpu)).param('ctx');
    this.params.set('ctx', ctx);
    this.logitScale = await noGrad(() => model.logitScale()).item();
    if (this.bank.chunks.length > 1) this.chunked = new ChunkedEncoder((s) => this.bank!.encode(ctx, s / this.bank!.chunk), C, this.bank.chunk);
  }

  step(b: ImageBatch, _ctx: StepContext): StepOutput {
    const env = this.env!;
    const { model, gpu } = env;
    const res = model.config.image.resolution;
    const ctx = this.params.get('ctx')!;
    const img = noGrad(() => l2normalize(model.encodeImage(tensor(b.pixels, [b.count, 3, res, res], 'f32', gpu)).embeds));
    const labels = tensor(b.labels, [b.count], 'i32', gpu);
    const { text, afterBackward } = chunkedText(this.chunked, () => this.bank!.encode(ctx, 0));
    const logits = scaleBy(matmul(img, l2normalize(text), { transB: true }), this.logitScale);
    return { loss: crossEntropy(logits, labels), afterBackward };
  }

  async classifier(classnames: readonly string[], env: MethodEnv): Promise<Classifier> {
    const ctx = this.params.get('ctx');
    if (!ctx || !this.bank) throw new GpuError('coop: classifier() before prepare()');
    if (this.o.csc && !sameClasses(classnames, env.classnames)) throw new MethodOptionError('class-specific contexts (--csc) exist only for the training classes; they cannot classify other (novel) classes');
    const text = keep(classPromptText(env, this.bank, ctx, classnames, this.promptOptions(), this.o.chunk));
    const proj = env.model.param('visual.proj');
    return { text, scale: this.logitScale, embedPooled: (p) => matmul(p, proj), dispose: () => text.dispose() };
  }

  dispose(): void {
    this.bank?.dispose();
    for (const t of this.params.values()) t.dispose();
    this.params.clear();
  }
}

/**
 * Normalised text features [C, E] of `classnames` with the unified context `ctx`, without gradient:
 * from the training prompts (`bank`) when these are the training classes, else from a bank built
 * for them with the same prompt options.
 */
export function classPromptText(env: MethodEnv, bank: PromptBank, ctx: Tensor, classnames: readonly string[], o: CoopPromptOptions, chunk: number): Tensor {
  if (sameClasses(classnames, env.classnames)) return bank.encodeAllNoGrad(ctx);
  const plan = planCoopPrompts(env.tokenizer, classnames, o, env.model.config.text.contextLength);
  const other = new PromptBank(env.model, plan, false, Math.min(chunk, classnames.length));
  try {
    return other.encodeAllNoGrad(ctx);
  } finally {
    other.dispose();
  }
}

/**
 * --init-from: stored as an absolute path (the run config must name it wherever --resume runs), and
 * M taken from the source run when neither --n-ctx nor --ctx-init was given (then the prompt text
 * uses placeholders: the loaded vectors replace them).
 */
export function finalizeInitFrom(opts: Record<string, OptionValue>, given: ReadonlySet<string>): void {
  if (!given.has('initFrom') || !opts.initFrom) return;
  const from = String(opts.initFrom);
  opts.initFrom = resolve(from);
  if (given.has('nCtx') || given.has('ctxInit')) return;
  const m = initRunCtxCount(from);
  if (m !== null && m !== opts.nCtx) {
    opts.nCtx = m;
    opts.ctxInit = '';
  }
}

/** n draws of N(0, std²) (Box-Muller) from our generator. */
export function gaussian(rng: Rng, n: number, std: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rng.uniform(), 1e-12);
    const v = rng.uniform();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    a[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) a[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return a;
}

/** CoOp's epochs by shots (ImageNet: always 50). */
export function coopEpochs(shots: number, datasetName: string): number {
  if (datasetName === 'ImageNet') return 50;
  if (shots <= 1) return 50;
  if (shots <= 4) return 100;
  return 200;
}

export const COOP: MethodSpec = {
  name: 'coop',
  summary: 'learn the text prompt context (CoOp): unified or class-specific, class token at the end, middle or front',
  options: [
    { key: 'nCtx', flag: 'n-ctx', type: 'int', min: 1, help: 'number of context vectors M' },
    { key: 'ctxInit', flag: 'ctx-init', type: 'string', help: 'init words, e.g. "a photo of a" (their count is M); empty: random N(0, 0.02)' },
    { key: 'csc', flag: 'csc', type: 'bool', help: 'class-specific contexts (one set per class)' },
    { key: 'classTokenPosition', flag: 'class-token-position', type: 'string', choices: ['end', 'middle', 'front'], help: 'where the class name goes in the prompt' },
    { key: 'epochs', flag: 'epochs', type: 'int', min: 1, help: 'training epochs (CoOp: 50 for 1 shot, 100 for 2-4, 200 for 8-16; ImageNet 50)' },
    SGD_LR_OPTION,
    ...DASSL_SGD_OPTIONS,
    { key: 'initFrom', flag: 'init-from', type: 'string', help: 'start the context from a CoOp or RPP run folder (its checkpoint\'s ctx); M follows that run unless --n-ctx is given' },
  ],
  defaults: (ctx: DefaultsContext) => ({
    nCtx: ctx.baseToNovel ? 4 : 16,
    ctxInit: ctx.baseToNovel ? 'a photo of a' : '',
    csc: false,
    classTokenPosition: 'end',
    epochs: coopEpochs(ctx.shots, ctx.datasetName),
    lr: 0.002,
    batchSize: 32,
    ...DASSL_SGD_DEFAULTS,
    initFrom: '',
  }),
  finalize: (opts, given) => {
    finalizeInitFrom(opts, given);
    // The init words decide M unless both are given (then they must agree, checked at prepare).
    if (given.has('ctxInit') && !given.has('nCtx') && opts.ctxInit) opts.nCtx = String(opts.ctxInit).trim().split(/\s+/).length;
    if (given.has('nCtx') && !given.has('ctxInit')) opts.ctxInit = '';
  },
  validate: (opts, ctx) => {
    if (ctx.baseToNovel && opts.csc) throw new MethodOptionError('--csc cannot be used with --base-to-novel: class-specific contexts do not exist for the novel classes');
  },
  create: (opts) => new CoopMethod(opts),
};
