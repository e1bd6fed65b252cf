// Metrics and the papers' averaging conventions (methods.md §3.3, §3.6).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  accuracy, argmax, baseToNovelTable, forgetting, harmonicMean, macroF1, mean, meanStd, perClassAccuracy, roundTo, summarizeSeeds, topkAccuracy,
} from '../../src/data/metrics.js';
import { errorOf } from './helpers.js';

const near = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

test('HM(84.26, 76.10) = 79.97 (PromptSRC average row) and the other published rows of methods.md §3.6', () => {
  assert.is(roundTo(harmonicMean(84.26, 76.10)), 79.97);
  const rows: [number, number, number][] = [
    [69.34, 74.22, 71.70], [82.69, 63.22, 71.66], [80.47, 71.69, 75.83], [80.73, 73.60, 77.00],
    [82.28, 75.14, 78.55], [84.01, 73.86, 78.61], [82.15, 74.07, 77.90], [84.21, 71.79, 77.51],
  ];
  for (const [b, n, h] of rows) assert.is(roundTo(harmonicMean(b, n)), h, `HM(${b}, ${n})`);
  assert.is(harmonicMean(0, 0), 0);
  assert.is(harmonicMean(50, 50), 50);
});

test('accuracy, argmax (first max wins, NaN never), top-k', () => {
  const logits = new Float32Array([0.1, 0.9, 0.0, /**/ 2, 2, 1, /**/ NaN, 0, 1, /**/ -Infinity, -Infinity, -Infinity]);
  assert.equal(Array.from(argmax(logits, 4, 3)), [1, 0, 2, 0]);
  assert.is(accuracy([1, 0, 2, 0], [1, 1, 2, 0]), 75);
  assert.is(topkAccuracy(logits, [2, 1, 1, 2], 3, 1), 0);
  assert.is(topkAccuracy(logits, [2, 1, 1, 2], 3, 2), 50); // rows 1, 2 in the top 2; ties rank the lower index first
  assert.is(topkAccuracy(logits, [2, 1, 1, 2], 3, 3), 100);
  assert.match(await_(() => accuracy([1], [1, 2])), /1 predictions for 2 labels/);
  assert.match(await_(() => accuracy([], [])), /no samples/);
});

function await_(fn: () => unknown): string {
  try { fn(); } catch (e) { return (e as Error).message; }
  return '';
}

test('per-class accuracy: mean of per-class accuracies over classes present; macro F1 like sklearn', () => {
  const labels = [0, 0, 0, 0, 1, 2, 2];
  const pred = [0, 0, 0, 1, 1, 0, 2];
  const pc = perClassAccuracy(pred, labels);
  assert.equal([...pc.perClass], [[0, 75], [1, 100], [2, 50]]);
  near(pc.mean, 75);
  near(accuracy(pred, labels), (100 * 5) / 7);
  // sklearn: f1 per class = 2tp/(2tp+fp+fn): c0 6/8, c1 2/3, c2 2/3
  near(macroF1(pred, labels), (100 * (6 / 8 + 2 / 3 + 2 / 3)) / 3);
});

test('seed means, dataset means of seed means, std with ddof 0 (numpy)', async () => {
  const rs = [
    { dataset: 'A', seed: 1, value: 70 }, { dataset: 'A', seed: 2, value: 72 }, { dataset: 'A', seed: 3, value: 74 },
    { dataset: 'B', seed: 1, value: 90 }, { dataset: 'B', seed: 2, value: 91 }, { dataset: 'B', seed: 3, value: 95 },
  ];
  const s = summarizeSeeds(rs, [1, 2, 3]);
  assert.equal(s.datasets.map((d) => d.dataset), ['A', 'B']);
  near(s.datasets[0]!.mean, 72);
  near(s.datasets[0]!.std, Math.sqrt(8 / 3));
  near(s.average, (72 + 92) / 2);
  near(meanStd([1, 2, 3, 4], 1).std, Math.sqrt(5 / 3));
  assert.match(await errorOf(() => summarizeSeeds(rs.slice(0, 5), [1, 2, 3])), /dataset B: expected seeds 1, 2, 3; missing 3/);
  assert.match(await errorOf(() => summarizeSeeds([...rs, rs[0]!])), /dataset A: seed 1 reported twice/);
  assert.match(await errorOf(() => mean([])), /no values/);
});

test('base-to-novel table: per-dataset HM of seed means; average HM of averaged base and novel (not mean of HMs)', () => {
  const runs = [
    { dataset: 'A', seed: 1, base: 90, novel: 60 }, { dataset: 'A', seed: 2, base: 92, novel: 62 },
    { dataset: 'B', seed: 1, base: 70, novel: 80 }, { dataset: 'B', seed: 2, base: 72, novel: 84 },
  ];
  const t = baseToNovelTable(runs, { expectSeeds: [1, 2] });
  near(t.rows[0]!.base, 91);
  near(t.rows[0]!.novel, 61);
  near(t.rows[0]!.hm, harmonicMean(91, 61));
  near(t.average.base, 81);
  near(t.average.novel, 71.5);
  near(t.average.hm, harmonicMean(81, 71.5));
  assert.ok(Math.abs(t.average.hm - (t.rows[0]!.hm + t.rows[1]!.hm) / 2) > 0.01, 'differs from the mean of HMs');
  // Rounded-before-HM mode reproduces a table printed with two decimals.
  const p = baseToNovelTable([{ dataset: 'X', seed: 1, base: 84.2649, novel: 76.1049 }], { roundBeforeHm: 2 });
  assert.is(roundTo(p.average.hm), 79.97);
});

test('forgetting: accuracy change vs zero-shot on held-out targets', () => {
  const f = forgetting([
    { target: 'ImageNetA', zeroShot: 47.77, adapted: 50.90 },
    { target: 'EuroSAT', zeroShot: 48.0, adapted: 45.0 },
  ]);
  near(f.targets[0]!.change, 3.13, 1e-9);
  near(f.targets[1]!.forgetting, 3, 1e-12);
  near(f.meanChange, (3.13 - 3) / 2, 1e-9);
  near(f.meanForgetting, -f.meanChange, 1e-12);
  assert.match(await_(() => forgetting([])), /no held-out results/);
});

test('roundTo rounds decimal representations half away from zero', () => {
  assert.is(roundTo(79.9724), 79.97);
  assert.is(roundTo(1.005), 1.01); // 1.005 is 1.00499999... in binary; tables print 1.01 from the decimal
  assert.is(roundTo(-2.345), -2.35);
});

test.run();
