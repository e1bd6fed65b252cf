// Zero-shot CLIP classification with template ensembles (CLIP paper; CoOp's zsclip.py): for each
// template encode every class prompt, L2-normalise, average over templates, L2-normalise again.
import { GpuError } from '../gpu/index.js';
import { keep, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { add, scale } from '../ops/elementwise.js';
import { l2normalize } from '../ops/distance.js';
import { concat } from '../ops/shape.js';
import { matmul } from '../ops/matmul.js';
import type { ClipModel } from '../clip/model.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import { DEFAULT_TEMPLATE, IMAGENET_TEMPLATES_SELECT, ensembleTemplatesFor, templateFor } from '../data/datasets.js';
import type { AdaptMethod, Classifier, MethodEnv, MethodSpec, OptionValue, StepOutput, TrainPlan } from './method.js';
import type { Optimizer } from '../nn/optim.js';

/** CoOp's prompt text for a class: "_" becomes a space. */
export function classPrompt(template: string, classname: string): string {
  if (!template.includes('{}')) throw new GpuError(`template "${template}" has no {} placeholder for the class name`);
  return template.replace('{}', classname.replace(/_/g, ' '));
}

/**
 * The text tower's outputs for prompt strings, tokenised and encoded in chunks of `chunk` (bounds
 * memory), without gradient: `embeds` (projected) or `pooled` (ln_final at the EOT token) [N, ·].
 */
export function encodePromptTexts(model: ClipModel, tokenizer: ClipTokenizer, texts: readonly string[], which: 'embeds' | 'pooled', chunk = 256): Tensor {
  if (!texts.length) throw new GpuError('text prompts: nothing to encode');
  const L = model.config.text.contextLength;
  return noGrad(() =>
    tidy(() => {
      const parts: Tensor[] = [];
      for (let s = 0; s < texts.length; s += chunk) {
        const rows = tokenizer.tokenize(texts.slice(s, s + chunk), { contextLength: L, rejectEmpty: true });
        const ids = new Int32Array(rows.length * L);
        rows.forEach((r, i) => ids.set(r, i * L));
        parts.push(model.encodeText({ ids, rows: rows.length, length: L })[which]);
      }
      return parts.length === 1 ? parts[0]! : concat(parts, 0);
    }),
  );
}

/** Normalised class text features [C, E] from an ensemble of templates (no gradient). */
export function zeroShotWeights(model: ClipModel, tokenizer: ClipTokenizer, classnames: readonly string[], templates: readonly string[], chunk = 256): Tensor {
  if (!classnames.length) throw new GpuError('zero-shot: no class names');
  if (!templates.length) throw new GpuError('zero-shot: no templates');
  return noGrad(() =>
    tidy(() => {
      let sum: Tensor | null = null;
      for (const tpl of templates) {
        const feats = l2normalize(encodePromptTexts(model, tokenizer, classnames.map((c) => classPrompt(tpl, c)), 'embeds', chunk));
        sum = sum ? add(sum, feats) : feats;
      }
      return l2normalize(scale(sum!, 1 / templates.length));
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// The zero-shot "method": nothing to train; evaluation uses template-ensemble class weights.


/**
 * The templates a `--template` value names: "dataset" = the dataset's single CoOp template (for
 * ProLIP, ImageNet takes the 7-template SELECT ensemble, as its code does); "ensemble" = CoOp's
 * ZeroshotCLIP2 list (the 7 SELECT templates plus the dataset's own, except for ImageNet);
 * "single" = "a photo of a {}."; anything else is one literal template with {}; "|" separates several.
 */
export function resolveTemplates(option: string, datasetName: string, method: string): string[] {
  if (option === 'dataset') return method === 'prolip' && datasetName === 'ImageNet' ? [...IMAGENET_TEMPLATES_SELECT] : [templateFor(datasetName)];
  if (option === 'ensemble') return ensembleTemplatesFor(datasetName);
  if (option === 'single') return [DEFAULT_TEMPLATE];
  const list = option.split('|').map((t) => t.trim());
  for (const t of list) if (!t.includes('{}')) throw new GpuError(`--template "${t}" has no {} for the class name (or use dataset, ensemble, single)`);
  return list;
}

export class ZeroShotMethod implements AdaptMethod<never> {
  readonly name = 'zeroshot';
  readonly params = new Map<string, Tensor>();
  readonly caches = ['class text features (template ensemble)', 'image embeddings of the evaluation images (test transform)'];
  private templates: string[] = [];
  private logitScale = 100;

  constructor(readonly options: Readonly<Record<string, OptionValue>>) {}

  async prepare(env: MethodEnv): Promise<void> {
    this.templates = resolveTemplates(this.options.template as string, env.datasetName, 'zeroshot');
    this.logitScale = await noGrad(() => env.model.logitScale()).item();
  }

  plan(): TrainPlan {
    return { epochs: 0, stepsPerEpoch: 0, imagesPerStep: 0 };
  }

  createOptimizer(): Optimizer {
    throw new GpuError('zero-shot has nothing to optimise');
  }

  learningRate(): number {
    return 0;
  }

  async *batches(): AsyncIterable<never> {}

  step(): StepOutput {
    throw new GpuError('zero-shot has no training step');
  }

  async classifier(classnames: readonly string[], env: MethodEnv): Promise<Classifier> {
    const proj = env.model.param('visual.proj');
    const templates = resolveTemplates(this.options.template as string, env.datasetName, 'zeroshot');
    const text = keep(tensor(await env.features.textWeights(classnames, templates), [classnames.length, env.model.config.embedDim], 'f32', env.gpu));
    return { text, scale: this.logitScale, embedPooled: (p) => matmul(p, proj), dispose: () => text.dispose() };
  }

  dispose(): void {}
}

export const ZEROSHOT: MethodSpec = {
  name: 'zeroshot',
  summary: 'zero-shot CLIP with the dataset template or a template ensemble (no training)',
  options: [{ key: 'template', flag: 'template', type: 'string', help: 'class prompts: "dataset" (its CoOp template), "ensemble" (7 SELECT templates + the dataset\'s), "single", or templates with {} separated by |' }],
  defaults: () => ({ template: 'dataset' }),
  create: (opts) => new ZeroShotMethod(opts),
};
