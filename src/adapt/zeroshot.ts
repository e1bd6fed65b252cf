// Zero-shot CLIP classification with template ensembles (CLIP paper; CoOp's zsclip.py): for each
// template encode every class prompt, L2-normalise, average over templates, L2-normalise again.
import { GpuError } from '../gpu/index.js';
import { tidy, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { add, scale } from '../ops/elementwise.js';
import { l2normalize } from '../ops/distance.js';
import { concat } from '../ops/shape.js';
import type { ClipModel } from '../clip/model.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';

/** CoOp's prompt text for a class: "_" becomes a space. */
export function classPrompt(template: string, classname: string): string {
  if (!template.includes('{}')) throw new GpuError(`template "${template}" has no {} placeholder for the class name`);
  return template.replace('{}', classname.replace(/_/g, ' '));
}

/** Normalised class text features [C, E] from an ensemble of templates (no gradient). */
export function zeroShotWeights(model: ClipModel, tokenizer: ClipTokenizer, classnames: readonly string[], templates: readonly string[], chunk = 256): Tensor {
  if (!classnames.length) throw new GpuError('zero-shot: no class names');
  if (!templates.length) throw new GpuError('zero-shot: no templates');
  const L = model.config.text.contextLength;
  return noGrad(() =>
    tidy(() => {
      let sum: Tensor | null = null;
      for (const tpl of templates) {
        const texts = classnames.map((c) => classPrompt(tpl, c));
        const parts: Tensor[] = [];
        for (let s = 0; s < texts.length; s += chunk) {
          const rows = tokenizer.tokenize(texts.slice(s, s + chunk), { contextLength: L, rejectEmpty: true });
          const ids = new Int32Array(rows.length * L);
          rows.forEach((r, i) => ids.set(r, i * L));
          parts.push(l2normalize(model.encodeText({ ids, rows: rows.length, length: L }).embeds));
        }
        const feats = parts.length === 1 ? parts[0]! : concat(parts, 0);
        sum = sum ? add(sum, feats) : feats;
      }
      return l2normalize(scale(sum!, 1 / templates.length));
    }),
  );
}
