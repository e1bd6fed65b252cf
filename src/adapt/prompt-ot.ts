// Prompt-OT (Chen et al. 2025, arXiv 2503.08906; ChongQingNoSubway/Prompt-OT, methods.md 5): IVLP
// deep prompts at depth 12 in both towers (4 + 4 tokens, init "a photo of a"), loss
//   L = CE + λ·<π*, C>,  C_ij = η‖z_i − z⁰_j‖²,  z_i = [v_i; t_{y_i}],  z⁰_j = [v⁰_j; t⁰_{y_j}],
// v = normalised prompted image features of the batch, t = normalised prompted text features,
// v⁰ = normalised frozen-CLIP features of the same augmented images (this step's pixels, no prompts),
// t⁰ = normalised frozen "a photo of a {c}." features (template 0 only); uniform marginals 1/B, π*
// the exact OT plan held constant in backward (otLoss in ot.ts: GPU enumeration for B <= 8,
// Hungarian beyond, no readback; log-domain Sinkhorn as an option). λ = 10, η = 0.5; SGD lr 0.005,
// warm-up 1 epoch at 1e-4, batch 4; the official config trains 40 epochs and its base-to-novel script
// evaluates epoch 30: here the default runs the 40-epoch cosine and stops (and evaluates) at 30
// (--epochs 40 gives the epoch-40 model of the same run).
//
// The OT term is a separable piece: otTerm() builds it from any adapted/frozen feature pairs and
// returns a LossTerm plus its stats, PromptOtRegulariser plugs it into any deep-prompt method.
// λ = 0 (`lambda`, --lambda) removes the term and its frozen image pass from the step entirely.
import { tidy, keep, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { scale as scaleBy } from '../ops/elementwise.js';
import { matmul } from '../ops/matmul.js';
import { l2normalize, pairwiseSqDist } from '../ops/distance.js';
import { crossEntropy } from '../ops/losses.js';
import { concat, slice } from '../ops/shape.js';
import { indexSelect } from '../ops/index-ops.js';
import { OT_STAT, OtStatsAccumulator, otLoss, type ExactAlgorithm, type OtOptions, type OtSolver } from './ot.js';
import { zeroShotWeights } from './zeroshot.js';
import { DEEP_PROMPT_OPTIONS, DeepPromptMethod, PHOTO_TEMPLATE, validateSchedule, type DeepPromptRegulariser, type DeepPromptStep } from './ivlp.js';
import { DASSL_SGD_DEFAULTS } from './prompt-common.js';
import { composeLoss, MethodOptionError, type DefaultsContext, type LossTerm, type MethodEnv, type MethodSpec, type OptionValue, type StepRecord } from './method.js';

export interface OtTermInputs {
  /** Adapted joint-feature halves [B, E1] and [B, E2] (normalised; on the tape). */
  image: Tensor;
  text: Tensor;
  /** Frozen halves of the same items [B, E1], [B, E2] (no gradient). */
  image0: Tensor;
  text0: Tensor;
  /** Cost scale η (0.5). */
  eta: number;
  /** Weight λ of the term in the loss (10). */
  lambda: number;
  ot: OtOptions;
  /** Term name in the log (default "ot"). */
  name?: string;
}

export interface OtTerm {
  /** λ·<π*, C>: value = <π*, C> (scalar), weight = λ. */
  term: LossTerm;
  /** C [B, B] = η‖z_i − z⁰_j‖². */
  cost: Tensor;
  /** π* [B, B] (constant). */
  plan: Tensor;
  /** f32[9] indexed by OT_STAT. */
  stats: Tensor;
  /** Scalars for the log: <name>_nonidentity (exact) or <name>_entropy and <name>_offdiag (Sinkhorn). */
  logs: Record<string, Tensor>;
}

/** The OT regulariser between adapted joint features [image; text] and frozen ones (methods.md 5.b). */
export function otTerm(i: OtTermInputs): OtTerm {
  const name = i.name ?? 'ot';
  const z = concat([i.image, i.text], 1);
  const z0 = concat([i.image0, i.text0], 1);
  const cost = i.eta === 1 ? pairwiseSqDist(z, z0) : scaleBy(pairwiseSqDist(z, z0), i.eta);
  const r = otLoss(cost, i.ot);
  const stat = (k: number) => slice(r.stats, 0, k, k + 1);
  const logs: Record<string, Tensor> =
    i.ot.solver === 'sinkhorn'
      ? { [`${name}_entropy`]: stat(OT_STAT.entropy), [`${name}_offdiag`]: stat(OT_STAT.offDiagonalMass) }
      : { [`${name}_nonidentity`]: stat(OT_STAT.nonIdentity) };
  return { term: { name, weight: i.lambda, value: r.loss }, cost, plan: r.plan, stats: r.stats, logs };
}

export interface PromptOtLossInputs {
  /** Normalised adapted image features [B, E]. */
  image: Tensor;
  /** Normalised adapted text features of all classes [C, E]. */
  text: Tensor;
  /** Normalised frozen image features of the same images [B, E]. */
  image0: Tensor;
  /** Normalised frozen text features of all classes [C, E]. */
  text0: Tensor;
  labels: Tensor;
  logitScale: number;
  lambda: number;
  eta: number;
  ot: OtOptions;
}

/** The OT term of Prompt-OT from class-level text features: z pairs each image with its label's text. */
export function promptOtTerm(i: Omit<PromptOtLossInputs, 'logitScale'>): OtTerm {
  return otTerm({
    image: i.image,
    text: indexSelect(i.text, 0, i.labels),
    image0: i.image0,
    text0: indexSelect(i.text0, 0, i.labels),
    eta: i.eta,
    lambda: i.lambda,
    ot: i.ot,
  });
}

/** Prompt-OT's whole loss from features: CE(s·v tᵀ, y) + λ·<π*, η‖z − z⁰‖²> (tests and benches). */
export function promptOtLoss(i: PromptOtLossInputs): { loss: Tensor; terms: Record<string, Tensor>; stats: Tensor; plan: Tensor } {
  const ce = crossEntropy(scaleBy(matmul(i.image, i.text, { transB: true }), i.logitScale), i.labels);
  const ot = promptOtTerm(i);
  const { loss, terms } = composeLoss([{ name: 'ce', weight: 1, value: ce }, ot.term]);
  return { loss, terms: { ...terms, ...ot.logs }, stats: ot.stats, plan: ot.plan };
}

/**
 * The OT term over a whole run from its logged steps: with the exact solver the fraction of steps
 * whose plan was not the identity (`<name>_nonidentity` is 0 or 1 per step), with Sinkhorn the
 * mean plan entropy and off-diagonal mass. Null when no step logged the term.
 */
export function otRunSummary(steps: readonly StepRecord[], solver: OtSolver): Record<string, number> | null {
  const mean = (key: string) => {
    const v = steps.map((s) => s[key]).filter((x): x is number => typeof x === 'number');
    return v.length ? { n: v.length, mean: v.reduce((a, b) => a + b, 0) / v.length } : null;
  };
  if (solver === 'sinkhorn') {
    const h = mean('ot_entropy');
    const off = mean('ot_offdiag');
    return h ? { otSteps: h.n, otMeanEntropy: h.mean, ...(off ? { otMeanOffDiagonalMass: off.mean } : {}) } : null;
  }
  const f = mean('ot_nonidentity');
  return f ? { otSteps: f.n, otNonIdentityFraction: f.mean } : null;
}

export function otOptionsFrom(o: Readonly<Record<string, OptionValue>>): OtOptions {
  return {
    solver: o.otSolver as OtSolver,
    epsilon: o.otEpsilon as number,
    iterations: o.otIterations as number,
    exactAlgorithm: (o.otExact as ExactAlgorithm) ?? 'auto',
  };
}

/** Prompt-OT's regulariser for a DeepPromptMethod: frozen pass on the step's pixels, OT term, stats. */
export class PromptOtRegulariser implements DeepPromptRegulariser {
  readonly name = 'ot';
  readonly caches = [`frozen text features of "${PHOTO_TEMPLATE}" for the training classes (memory)`];
  private text0: Tensor | null = null;
  private stats: OtStatsAccumulator | null = null;
  private env: MethodEnv | null = null;
  private summarised = 0;

  constructor(
    readonly lambda: number,
    readonly eta: number,
    readonly ot: OtOptions,
  ) {}

  async prepare(env: MethodEnv): Promise<void> {
    this.env = env;
    if (this.lambda === 0) {
      env.log('  OT term disabled (lambda 0): CE only, no frozen image pass');
      return;
    }
    this.text0 = keep(zeroShotWeights(env.model, env.tokenizer, env.classnames, [PHOTO_TEMPLATE]));
    this.stats = new OtStatsAccumulator(env.gpu);
    const solver = this.ot.solver === 'sinkhorn' ? `log-domain Sinkhorn (epsilon ${this.ot.epsilon}, ${this.ot.iterations} iterations)` : `exact (${this.ot.exactAlgorithm ?? 'auto'}: enumeration for B <= 8, Hungarian beyond)`;
    env.log(`  OT term: lambda ${this.lambda} x <plan, ${this.eta}·||z - z0||^2>, ${solver}, plan held constant in backward`);
  }

  terms(s: DeepPromptStep): { terms: LossTerm[]; logs?: Record<string, Tensor> } {
    if (this.lambda === 0) return { terms: [] };
    const model = this.env!.model;
    const image0 = noGrad(() => tidy(() => l2normalize(model.encodeImage(s.pixels).embeds)));
    const t = promptOtTerm({ image: s.image, text: s.text, image0, text0: this.text0!, labels: s.labels, lambda: this.lambda, eta: this.eta, ot: this.ot });
    this.stats!.add(t.stats);
    return { terms: [t.term], logs: t.logs };
  }

  /** Means over the steps this process ran (a resumed run counts from the resume). */
  async summary(): Promise<string | null> {
    const acc = this.stats;
    if (!acc || !acc.steps || acc.steps === this.summarised) return null;
    this.summarised = acc.steps;
    const m = await acc.read();
    if (this.ot.solver === 'sinkhorn') {
      return `OT over ${acc.steps} steps: mean plan entropy ${m.entropy.toFixed(4)} (log B for a permutation), off-diagonal mass ${m.offDiagonalMass.toFixed(4)}, rows whose largest entry is off the diagonal in ${(100 * m.nonIdentity).toFixed(1)}% of steps, mean cost ${m.cost.toExponential(3)}`;
    }
    return `OT over ${acc.steps} steps: the exact plan was not the identity in ${(100 * m.nonIdentity).toFixed(1)}% of steps (fraction ${m.nonIdentity.toFixed(4)}), mean OT cost ${m.cost.toExponential(3)}`;
  }

  /** Over the whole run (resume included), from the logged steps. */
  summarizeRun(steps: readonly StepRecord[]): Record<string, number> | null {
    return this.lambda === 0 ? null : otRunSummary(steps, this.ot.solver);
  }

  /** Step means of the OT stats since the start (tests, reports). */
  async readStats(): Promise<{ steps: number; values: Record<keyof typeof OT_STAT, number> } | null> {
    if (!this.stats) return null;
    return { steps: this.stats.steps, values: await this.stats.read() };
  }

  dispose(): void {
    this.text0?.dispose();
    this.text0 = null;
    this.stats?.reset();
  }
}

export const PROMPT_OT: MethodSpec = {
  name: 'prompt-ot',
  summary: 'Prompt-OT: IVLP deep prompts (depth 12 in both towers) with CE + lambda x exact OT between adapted and frozen joint [image; text] features of the batch',
  options: [
    ...DEEP_PROMPT_OPTIONS,
    { key: 'lambda', flag: 'lambda', type: 'float', min: 0, help: 'weight of the OT term (0: CE only)' },
    { key: 'eta', flag: 'eta', type: 'float', min: 0, exclusiveMin: true, help: 'cost scale: C = eta·||z - z0||^2' },
    { key: 'otSolver', flag: 'ot-solver', type: 'string', choices: ['exact', 'sinkhorn'], help: 'exact OT (the official code) or log-domain Sinkhorn' },
    { key: 'otExact', flag: 'ot-exact', type: 'string', choices: ['auto', 'enumerate', 'hungarian'], help: 'exact solver: auto = permutation enumeration for B <= 8, Hungarian beyond' },
    { key: 'otEpsilon', flag: 'ot-epsilon', type: 'float', min: 0, exclusiveMin: true, help: 'Sinkhorn regularisation epsilon (units of C)' },
    { key: 'otIterations', flag: 'ot-iterations', type: 'int', min: 1, help: 'Sinkhorn iterations' },
  ],
  defaults: (_ctx: DefaultsContext) => ({
    textTokens: 4,
    textDepth: 12,
    ctxInit: 'a photo of a',
    textDeepInit: 'normal',
    visionTokens: 4,
    visionDepth: 12,
    visionInit: 'normal',
    epochs: 30,
    scheduleEpochs: 40,
    lr: 0.005,
    batchSize: 4,
    // Dassl's SGD recipe (and its crop range), with Prompt-OT's own warm-up rate.
    ...DASSL_SGD_DEFAULTS,
    warmupLr: 1e-4,
    lambda: 10,
    eta: 0.5,
    otSolver: 'exact',
    otExact: 'auto',
    otEpsilon: 0.05,
    otIterations: 100,
  }),
  validate: (opts) => {
    validateSchedule(opts);
    if ((opts.textDepth as number) < 1 || (opts.visionDepth as number) < 1) {
      throw new MethodOptionError('prompt-ot needs prompts in both towers (--text-depth and --vision-depth >= 1)');
    }
  },
  create: (opts) => new DeepPromptMethod({ name: 'prompt-ot', options: opts, regulariser: new PromptOtRegulariser(opts.lambda as number, opts.eta as number, otOptionsFrom(opts)) }),
};
