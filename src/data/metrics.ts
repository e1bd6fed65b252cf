// Evaluation metrics and the averaging conventions of the papers' tables. Accuracies are in
// percent (Dassl's evaluator: 100 · correct / total).
//
// Conventions (methods.md §3.2-3.3):
// - A dataset's number is the mean over its seeds (CoOp family: seeds 1-3; ProLIP: 1-10).
// - An average row is the mean over datasets of those seed means.
// - Base-to-novel: HM = 2·B·N/(B+N); a dataset's HM and the average row's HM are computed from
//   the (seed- resp. dataset-) averaged base and novel accuracies, not averaged HMs
//   (e.g. HM(84.26, 76.10) = 79.97).
// - Forgetting: accuracy change of the adapted model vs. zero-shot CLIP on held-out classes or
//   datasets (change = adapted − zero-shot; forgetting = −change).

export class MetricsError extends Error {
  override name = 'MetricsError';
}

/** Row-wise argmax of a [rows, cols] row-major matrix (first maximum wins; NaN never wins). */
export function argmax(logits: ArrayLike<number>, rows: number, cols: number): Int32Array {
  if (logits.length !== rows * cols) throw new MetricsError(`argmax: expected ${rows}x${cols} = ${rows * cols} values, got ${logits.length}`);
  const out = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    let best = -1, bv = -Infinity;
    for (let j = 0; j < cols; j++) {
      const v = logits[i * cols + j]!;
      if (v > bv || (best < 0 && v === -Infinity)) { bv = v; best = j; }
    }
    out[i] = best < 0 ? 0 : best;
  }
  return out;
}

function checkPairs(pred: ArrayLike<number>, labels: ArrayLike<number>, what: string): void {
  if (pred.length !== labels.length) throw new MetricsError(`${what}: ${pred.length} predictions for ${labels.length} labels`);
  if (labels.length === 0) throw new MetricsError(`${what}: no samples`);
}

/** Top-1 accuracy in percent. */
export function accuracy(pred: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkPairs(pred, labels, 'accuracy');
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) correct++;
  return (100 * correct) / labels.length;
}

/** Top-k accuracy in percent from [rows, cols] logits (ties broken by lower index). */
export function topkAccuracy(logits: ArrayLike<number>, labels: ArrayLike<number>, cols: number, k: number): number {
  const rows = labels.length;
  if (logits.length !== rows * cols) throw new MetricsError(`topkAccuracy: expected ${rows}x${cols} logits, got ${logits.length}`);
  if (rows === 0) throw new MetricsError('topkAccuracy: no samples');
  let correct = 0;
  for (let i = 0; i < rows; i++) {
    const y = labels[i]!;
    const vy = logits[i * cols + y]!;
    let above = 0;
    for (let j = 0; j < cols; j++) {
      const v = logits[i * cols + j]!;
      if (v > vy || (v === vy && j < y)) above++;
    }
    if (above < k) correct++;
  }
  return (100 * correct) / rows;
}

export interface PerClassAccuracy {
  /** Accuracy (percent) of each class present in `labels`, keyed by label, ascending. */
  perClass: Map<number, number>;
  /** Count of samples per class. */
  counts: Map<number, number>;
  /** Mean of the per-class accuracies (Dassl's "average" with per_class_result). */
  mean: number;
}

/** Per-class accuracy and its mean over the classes present in `labels`. */
export function perClassAccuracy(pred: ArrayLike<number>, labels: ArrayLike<number>): PerClassAccuracy {
  checkPairs(pred, labels, 'perClassAccuracy');
  const total = new Map<number, number>(), hit = new Map<number, number>();
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    total.set(y, (total.get(y) ?? 0) + 1);
    if (pred[i] === y) hit.set(y, (hit.get(y) ?? 0) + 1);
  }
  const keys = [...total.keys()].sort((a, b) => a - b);
  const perClass = new Map(keys.map((y) => [y, (100 * (hit.get(y) ?? 0)) / total.get(y)!]));
  const mean = keys.reduce((s, y) => s + perClass.get(y)!, 0) / keys.length;
  return { perClass, counts: new Map(keys.map((y) => [y, total.get(y)!])), mean };
}

/** Macro F1 in percent over the classes present in `labels` (sklearn f1_score average="macro", labels=unique(y_true)). */
export function macroF1(pred: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkPairs(pred, labels, 'macroF1');
  const classes = [...new Set(Array.from(labels))].sort((a, b) => a - b);
  let sum = 0;
  for (const c of classes) {
    let tp = 0, fp = 0, fn = 0;
    for (let i = 0; i < labels.length; i++) {
      const p = pred[i] === c, t = labels[i] === c;
      if (p && t) tp++;
      else if (p) fp++;
      else if (t) fn++;
    }
    const denom = 2 * tp + fp + fn;
    sum += denom === 0 ? 0 : (2 * tp) / denom;
  }
  return (100 * sum) / classes.length;
}

/** Harmonic mean 2·B·N/(B+N) of base and novel accuracy (0 when both are 0). */
export function harmonicMean(base: number, novel: number): number {
  if (!Number.isFinite(base) || !Number.isFinite(novel) || base < 0 || novel < 0) throw new MetricsError(`harmonicMean: need non-negative accuracies, got ${base}, ${novel}`);
  return base + novel === 0 ? 0 : (2 * base * novel) / (base + novel);
}

/** Arithmetic mean. */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) throw new MetricsError('mean of no values');
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Mean and standard deviation (ddof 0 = numpy's np.std default, as CoOp's parse_test_res.py; ddof 1 for the sample std). */
export function meanStd(xs: readonly number[], ddof: 0 | 1 = 0): { mean: number; std: number; n: number } {
  const m = mean(xs);
  if (xs.length - ddof <= 0) return { mean: m, std: 0, n: xs.length };
  const v = xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - ddof);
  return { mean: m, std: Math.sqrt(v), n: xs.length };
}

/** Round half away from zero to `digits` decimals, on the decimal representation (what tables print). */
export function roundTo(x: number, digits = 2): number {
  return Number(`${Math.round(Number(`${Math.abs(x)}e${digits}`))}e-${digits}`) * Math.sign(x);
}

export interface SeedResult {
  dataset: string;
  seed: number;
  value: number;
}

export interface DatasetSummary {
  dataset: string;
  mean: number;
  std: number;
  seeds: number[];
}

function groupByDataset<T extends { dataset: string; seed: number }>(results: readonly T[]): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const r of results) {
    const g = m.get(r.dataset) ?? [];
    if (g.some((x) => x.seed === r.seed)) throw new MetricsError(`dataset ${r.dataset}: seed ${r.seed} reported twice`);
    g.push(r);
    m.set(r.dataset, g);
  }
  return m;
}

/**
 * Per-dataset seed means (with std, ddof 0) and the average row = mean of the dataset means.
 * `expectSeeds` (e.g. [1, 2, 3]) makes a missing seed an error instead of a silently smaller mean.
 */
export function summarizeSeeds(results: readonly SeedResult[], expectSeeds?: readonly number[]): { datasets: DatasetSummary[]; average: number } {
  if (results.length === 0) throw new MetricsError('no results');
  const datasets: DatasetSummary[] = [];
  for (const [dataset, rs] of groupByDataset(results)) {
    const seeds = rs.map((r) => r.seed).sort((a, b) => a - b);
    checkSeeds(dataset, seeds, expectSeeds);
    const { mean: m, std } = meanStd(rs.map((r) => r.value));
    datasets.push({ dataset, mean: m, std, seeds });
  }
  return { datasets, average: mean(datasets.map((d) => d.mean)) };
}

function checkSeeds(dataset: string, seeds: readonly number[], expect?: readonly number[]): void {
  if (!expect) return;
  const missing = expect.filter((s) => !seeds.includes(s));
  const extra = seeds.filter((s) => !expect.includes(s));
  if (missing.length || extra.length) {
    throw new MetricsError(`dataset ${dataset}: expected seeds ${expect.join(', ')}` + (missing.length ? `; missing ${missing.join(', ')}` : '') + (extra.length ? `; unexpected ${extra.join(', ')}` : ''));
  }
}

export interface BaseNovelResult {
  dataset: string;
  seed: number;
  base: number;
  novel: number;
}

export interface BaseNovelRow {
  dataset: string;
  base: number;
  novel: number;
  hm: number;
}

export interface BaseNovelOptions {
  expectSeeds?: readonly number[];
  /**
   * Round base and novel to this many decimals before computing HM, as the published tables
   * do when their HM column is derived from printed numbers. Default: no rounding.
   */
  roundBeforeHm?: number;
}

/**
 * Base-to-novel table: per dataset the seed means of base and novel and HM of those means; the
 * average row's base/novel are means over datasets and its HM is HM(avg base, avg novel).
 */
export function baseToNovelTable(results: readonly BaseNovelResult[], opts: BaseNovelOptions = {}): { rows: BaseNovelRow[]; average: BaseNovelRow } {
  if (results.length === 0) throw new MetricsError('no results');
  const r = (x: number) => (opts.roundBeforeHm === undefined ? x : roundTo(x, opts.roundBeforeHm));
  const rows: BaseNovelRow[] = [];
  for (const [dataset, rs] of groupByDataset(results)) {
    checkSeeds(dataset, rs.map((x) => x.seed).sort((a, b) => a - b), opts.expectSeeds);
    const base = mean(rs.map((x) => x.base)), novel = mean(rs.map((x) => x.novel));
    rows.push({ dataset, base, novel, hm: harmonicMean(r(base), r(novel)) });
  }
  const base = mean(rows.map((x) => x.base)), novel = mean(rows.map((x) => x.novel));
  return { rows, average: { dataset: 'Average', base, novel, hm: harmonicMean(r(base), r(novel)) } };
}

export interface HeldOutResult {
  /** Held-out dataset or class group, e.g. "ImageNetA" or "novel". */
  target: string;
  zeroShot: number;
  adapted: number;
}

/**
 * Accuracy change vs. zero-shot on held-out targets: change = adapted − zeroShot (negative =
 * forgotten), forgetting = zeroShot − adapted; plus their means over targets.
 */
export function forgetting(results: readonly HeldOutResult[]): { targets: (HeldOutResult & { change: number; forgetting: number })[]; meanChange: number; meanForgetting: number } {
  if (results.length === 0) throw new MetricsError('forgetting: no held-out results');
  const targets = results.map((x) => ({ ...x, change: x.adapted - x.zeroShot, forgetting: x.zeroShot - x.adapted }));
  return { targets, meanChange: mean(targets.map((t) => t.change)), meanForgetting: mean(targets.map((t) => t.forgetting)) };
}
