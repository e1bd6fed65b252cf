// Accuracy of a method's classifier on a list of images: cached pre-projection test features
// through the method's image head (or its own pixel path), cosine logits against its class weights.
import { GpuError } from '../gpu/index.js';
import { tensor, tidy } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { scale as scaleBy } from '../ops/elementwise.js';
import { matmul } from '../ops/matmul.js';
import { l2normalize } from '../ops/distance.js';
import { argmax } from '../ops/reduce.js';
import { ImageLoader } from '../data/loader-node.js';
import { accuracy, perClassAccuracy } from '../data/metrics.js';
import type { AdaptMethod, Classifier, ImageItem, MethodEnv } from '../adapt/method.js';

export interface EvalResult {
  /** Top-1 accuracy in percent. */
  accuracy: number;
  /** Mean of per-class accuracies (percent). */
  meanPerClass: number;
  correct: number;
  total: number;
  classes: number;
}

async function predict(clf: Classifier, env: MethodEnv, items: readonly ImageItem[], rowsPerCall: number): Promise<Int32Array> {
  const { gpu, model } = env;
  const out = new Int32Array(items.length);
  const head = (emb: import('../tensor/tensor.js').Tensor) => {
    if (!clf.text) throw new GpuError('evaluate: a cosine head needs class weights (text)');
    return argmax(scaleBy(matmul(l2normalize(emb), clf.text, { transB: true }), clf.scale ?? 100), -1);
  };
  const fromPooled = clf.logitsPooled ? (p: import('../tensor/tensor.js').Tensor) => argmax(clf.logitsPooled!(p), -1) : clf.embedPooled ? (p: import('../tensor/tensor.js').Tensor) => head(clf.embedPooled!(p)) : null;
  if (fromPooled) {
    const w = model.config.image.width;
    const pooled = await env.features.pooled(items, { mode: 'test' });
    for (let s = 0; s < items.length; s += rowsPerCall) {
      const e = Math.min(items.length, s + rowsPerCall);
      const t = noGrad(() => tidy(() => fromPooled(tensor(pooled.subarray(s * w, e * w), [e - s, w], 'f32', gpu))));
      out.set((await t.read()) as Int32Array, s);
      t.dispose();
    }
    return out;
  }
  if (!clf.embedPixels) throw new GpuError('evaluate: the classifier has neither logitsPooled, embedPooled nor embedPixels');
  const res = model.config.image.resolution;
  const loader = new ImageLoader(items, { batchSize: 64, mode: 'test', size: res });
  for await (const b of loader) {
    const t = noGrad(() => tidy(() => head(clf.embedPixels!(tensor(b.images, [b.count, 3, res, res], 'f32', gpu)))));
    const pred = (await t.read()) as Int32Array;
    t.dispose();
    b.indices.forEach((idx, k) => (out[idx] = pred[k]!));
  }
  return out;
}

/** Accuracy of `method` on `items` (labels index `classnames`). */
export async function evaluate(method: AdaptMethod, env: MethodEnv, items: readonly ImageItem[], classnames: readonly string[], rowsPerCall = 1024): Promise<EvalResult> {
  if (!items.length) throw new GpuError('evaluate: no images');
  const clf = await method.classifier(classnames, env);
  try {
    const pred = await predict(clf, env, items, rowsPerCall);
    const labels = Int32Array.from(items, (it) => it.label);
    const acc = accuracy(pred, labels);
    const per = perClassAccuracy(pred, labels);
    let correct = 0;
    for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) correct++;
    return { accuracy: acc, meanPerClass: per.mean, correct, total: items.length, classes: classnames.length };
  } finally {
    clf.dispose();
  }
}
