// IIMM (methods.md 7): the 7.f sanity numbers, the GPU closed forms against the float64 pairwise
// definitions on random inputs, olsFit against a hand computation, iimmForDataset against a CPU
// computation from the same features, and `cliptune iimm` end to end on small world datasets with
// the shipped world CLIP (three quick ProLIP runs and a zero-shot run -> the fit; two runs -> why not).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getGpu } from '../../src/gpu/index.js';
import { tensor } from '../../src/tensor/tensor.js';
import { IimmAccumulator, iimmForDataset, iimmFromEmbeddings, olsFit, type IimmResult } from '../../src/adapt/iimm.js';
import { fitMethods, iimmCommand, type RunPoint } from '../../src/cli/iimm.js';
import { trainCommand } from '../../src/cli/train.js';
import { loadClip } from '../../src/clip/load-node.js';
import { ClipFeatures, FeatureCache } from '../../src/train/features.js';
import { openDataset } from '../../src/train/data.js';
import { fileSha256 } from '../../src/train/checkpoint.js';
import { writeWorldDataset } from '../../src/data/world/write-node.js';
import { randArray } from '../helpers/parity.js';
import { removeDir, tempDir } from '../train/helpers.js';

const WORLD_CLIP = fileURLToPath(new URL('../../../weights/world-clip.safetensors', import.meta.url));

// ---------------------------------------------------------------------------------------------
// float64 reference: the pairwise definitions (methods.md 7.b), no closed form.

function normalizeRows(x: ArrayLike<number>, rows: number, d: number): Float64Array {
  const out = Float64Array.from(x);
  for (let i = 0; i < rows; i++) {
    let n = 0;
    for (let k = 0; k < d; k++) n += out[i * d + k]! ** 2;
    const inv = 1 / Math.max(Math.sqrt(n), 1e-12);
    for (let k = 0; k < d; k++) out[i * d + k]! *= inv;
  }
  return out;
}

function pairwiseIimm(x: ArrayLike<number>, labels: ArrayLike<number>, t: ArrayLike<number>, n: number, c: number, d: number, normalize = true): IimmResult {
  const X = normalize ? normalizeRows(x, n, d) : Float64Array.from(x);
  const T = normalize ? normalizeRows(t, c, d) : Float64Array.from(t);
  const dot = (a: Float64Array, i: number, b: Float64Array, j: number) => {
    let s = 0;
    for (let k = 0; k < d; k++) s += a[i * d + k]! * b[j * d + k]!;
    return s;
  };
  let inter = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < c; k++) if (k !== labels[i]) s += dot(X, i, T, k);
    inter += s / (c - 1);
  }
  inter /= n;
  let intra = 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) intra += dot(X, i, X, j);
  intra = (2 * intra) / (n * (n - 1));
  return { iimm: (inter + intra) / 2, inter, intra, n, classes: c };
}

/** The closed forms in float64 (O(N·D)): checked against pairwise above, used where pairs are too many. */
function closedFormIimm(x: ArrayLike<number>, labels: ArrayLike<number>, t: ArrayLike<number>, n: number, c: number, d: number): IimmResult {
  const X = normalizeRows(x, n, d);
  const T = normalizeRows(t, c, d);
  const s = new Float64Array(d);
  const tsum = new Float64Array(d);
  let correct = 0;
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) {
    s[k]! += X[i * d + k]!;
    correct += X[i * d + k]! * T[labels[i]! * d + k]!;
  }
  for (let j = 0; j < c; j++) for (let k = 0; k < d; k++) tsum[k]! += T[j * d + k]!;
  let ss = 0;
  let all = 0;
  for (let k = 0; k < d; k++) {
    ss += s[k]! * s[k]!;
    all += s[k]! * tsum[k]!;
  }
  const intra = (ss - n) / (n * (n - 1));
  const inter = (all - correct) / (n * (c - 1));
  return { iimm: (inter + intra) / 2, inter, intra, n, classes: c };
}

async function gpuIimm(x: ArrayLike<number>, labels: Int32Array, t: ArrayLike<number>, n: number, c: number, d: number, normalize = true): Promise<IimmResult> {
  const gpu = await getGpu();
  const image = tensor(Float32Array.from(x), [n, d], 'f32', gpu);
  const text = tensor(Float32Array.from(t), [c, d], 'f32', gpu);
  try {
    return await iimmFromEmbeddings(image, labels, text, { normalize });
  } finally {
    image.dispose();
    text.dispose();
  }
}

// methods.md 7.f
const SX = [1, 0, 0.8, 0.6, 0, 1, 0.6, 0.8];
const SY = Int32Array.from([0, 0, 1, 1]);
const R = Math.SQRT1_2;

const round6 = (v: number) => Math.round(v * 1e6) / 1e6;

test('7.f sanity: t3 = (1/√2, 1/√2) gives S_inter 0.574264, S_intra 0.626667, IIMM 0.600465', async () => {
  const T = [1, 0, 0, 1, R, R];
  const r = await gpuIimm(SX, SY, T, 4, 3, 2);
  assert.is(round6(r.inter), 0.574264);
  assert.is(round6(r.intra), 0.626667);
  assert.is(round6(r.iimm), 0.600465);
  assert.is(r.n, 4);
  assert.is(r.classes, 3);
  const ref = pairwiseIimm(SX, SY, T, 4, 3, 2);
  assert.is(round6(ref.inter), 0.574264);
  assert.is(round6(ref.intra), 0.626667);
  assert.is(round6(ref.iimm), 0.600465);
});

test('7.f sanity, rounded literal 0.70711: 0.574266 / 0.600466 as given (un-normalised); normalising restores the exact values', async () => {
  const T = [1, 0, 0, 1, 0.70711, 0.70711];
  // The quoted variant uses the literal as given (no renormalisation of the text row).
  const raw = await gpuIimm(SX, SY, T, 4, 3, 2, false);
  assert.is(round6(raw.inter), 0.574266);
  assert.is(round6(raw.intra), 0.626667);
  assert.is(round6(raw.iimm), 0.600466);
  const ref = pairwiseIimm(SX, SY, T, 4, 3, 2, false);
  assert.is(round6(ref.inter), 0.574266);
  assert.is(round6(ref.iimm), 0.600466);
  // With rows L2-normalised (the default, as the official code does) the literal becomes 1/√2.
  const norm = await gpuIimm(SX, SY, T, 4, 3, 2);
  assert.is(round6(norm.inter), 0.574264);
  assert.is(round6(norm.iimm), 0.600465);
});

test('GPU closed forms vs float64 pairwise definitions on random inputs (several N, D, C)', async () => {
  const cases: [n: number, d: number, c: number, offset: number][] = [
    [2, 1, 2, 0],
    [3, 2, 2, 0.5],
    [7, 3, 5, 0],
    [97, 17, 3, 0.3],
    [257, 64, 10, 1],
    [1031, 33, 7, 0],
    [2053, 80, 48, 0.4],
  ];
  let worst = 0;
  for (const [n, d, c, offset] of cases) {
    // Positive offsets give large similarities (where cancellation in ‖s‖² − N would show).
    const x = randArray(n * d, n + d, -1, 1).map((v) => v + offset);
    const t = randArray(c * d, 7 * c + d, -1, 1).map((v) => v + offset);
    const labels = Int32Array.from(randArray(n, 3 * n + c, 0, c), (v) => Math.min(c - 1, Math.floor(v)));
    const ref = pairwiseIimm(x, labels, t, n, c, d);
    const got = await gpuIimm(x, labels, t, n, c, d);
    for (const k of ['inter', 'intra', 'iimm'] as const) {
      const err = Math.abs(got[k] - ref[k]);
      worst = Math.max(worst, err);
      assert.ok(err <= 1e-5, `N=${n} D=${d} C=${c}: ${k} ${got[k]} vs ${ref[k]} (|Δ| ${err.toExponential(2)})`);
    }
    assert.is(got.n, n);
    assert.is(got.classes, c);
    // Un-normalised rows of mixed scale: the closed form keeps Σ‖x_i‖² exact.
    if (n <= 257) {
      const xs = x.map((v, i) => v * (1 + (Math.floor(i / d) % 5)));
      const refRaw = pairwiseIimm(xs, labels, t, n, c, d, false);
      const gotRaw = await gpuIimm(xs, labels, t, n, c, d, false);
      for (const k of ['inter', 'intra'] as const) assert.ok(Math.abs(gotRaw[k] - refRaw[k]) <= 1e-5 * Math.max(1, Math.abs(refRaw[k])), `raw N=${n}: ${k} ${gotRaw[k]} vs ${refRaw[k]}`);
    }
  }
  // Larger N: the float64 closed form (equal to the pairwise one on the cases above) is the reference.
  for (const [n, d, c] of [[20011, 64, 48], [65537, 8, 3]] as const) {
    const x = randArray(n * d, n, -1, 1).map((v) => v + 0.3);
    const t = randArray(c * d, c, -1, 1);
    const labels = Int32Array.from(randArray(n, 5, 0, c), (v) => Math.min(c - 1, Math.floor(v)));
    const ref = closedFormIimm(x, labels, t, n, c, d);
    const got = await gpuIimm(x, labels, t, n, c, d);
    for (const k of ['inter', 'intra', 'iimm'] as const) {
      const err = Math.abs(got[k] - ref[k]);
      worst = Math.max(worst, err);
      assert.ok(err <= 1e-5, `N=${n} D=${d} C=${c}: ${k} ${got[k]} vs ${ref[k]} (|Δ| ${err.toExponential(2)})`);
    }
  }
  // The float64 closed form agrees with the pairwise definition (so it is a fair reference above).
  {
    const x = randArray(300 * 7, 1, -1, 1).map((v) => v + 0.3);
    const t = randArray(4 * 7, 2);
    const labels = Int32Array.from(randArray(300, 3, 0, 4), (v) => Math.min(3, Math.floor(v)));
    const a = closedFormIimm(x, labels, t, 300, 4, 7);
    const b = pairwiseIimm(x, labels, t, 300, 4, 7);
    assert.ok(Math.abs(a.inter - b.inter) < 1e-12 && Math.abs(a.intra - b.intra) < 1e-12);
  }
  console.log(`  iimm: worst |GPU − float64 reference| over ${cases.length + 2} cases ${worst.toExponential(2)}`);
});

test('chunked accumulation equals one pass; repeated runs are bit-identical', async () => {
  const gpu = await getGpu();
  const n = 613;
  const d = 40;
  const c = 9;
  const x = Float32Array.from(randArray(n * d, 11, -1, 1), (v) => v + 0.2);
  const labels = Int32Array.from(randArray(n, 12, 0, c), (v) => Math.min(c - 1, Math.floor(v)));
  const text = tensor(Float32Array.from(randArray(c * d, 13)), [c, d], 'f32', gpu);
  const whole = tensor(x, [n, d], 'f32', gpu);
  const a = await iimmFromEmbeddings(whole, labels, text);
  const b = await iimmFromEmbeddings(whole, labels, text);
  assert.equal(a, b);
  const acc = new IimmAccumulator(text);
  for (const [s, e] of [[0, 1], [1, 200], [200, 200], [200, 613]] as const) {
    const part = tensor(x.subarray(s * d, e * d), [e - s, d], 'f32', gpu);
    acc.add(part, labels.subarray(s, e));
    part.dispose();
  }
  const chunked = await acc.finish();
  acc.dispose();
  assert.is(chunked.n, n);
  for (const k of ['inter', 'intra', 'iimm'] as const) assert.ok(Math.abs(chunked[k] - a[k]) <= 1e-6, `${k}: chunked ${chunked[k]} vs whole ${a[k]}`);
  whole.dispose();
  text.dispose();
});

test('bad inputs are refused before any dispatch, naming the shapes', async () => {
  const gpu = await getGpu();
  const img = tensor(new Float32Array(12), [4, 3], 'f32', gpu);
  const one = tensor(new Float32Array(3), [1, 3], 'f32', gpu);
  const txt = tensor(new Float32Array(9), [3, 3], 'f32', gpu);
  const txt1 = tensor(new Float32Array(3), [1, 3], 'f32', gpu);
  const txtWide = tensor(new Float32Array(12), [3, 4], 'f32', gpu);
  const before = gpu.counters.dispatches;
  const cases: [() => Promise<unknown>, RegExp][] = [
    [() => iimmFromEmbeddings(img, Int32Array.from([0, 1, 2, 3]), txt), /label 3 of row 3 is outside 0\.\.2/],
    [() => iimmFromEmbeddings(img, Int32Array.from([0, 1, 2]), txt), /f32\[4,3\] has 4 rows but 3 labels/],
    [() => iimmFromEmbeddings(img, Int32Array.from([0, 1, 2, 0]), txtWide), /embedding widths 3 vs 4/],
    [() => iimmFromEmbeddings(img, Int32Array.from([0, 0, 0, 0]), txt1), /at least 2 classes/],
    [() => iimmFromEmbeddings(one, Int32Array.from([0]), txt), /at least 2 images/],
    [() => iimmFromEmbeddings(img, Int32Array.from([0, -1, 0, 0]), txt), /label -1 of row 1/],
  ];
  for (const [f, re] of cases) {
    try {
      await f();
      assert.unreachable(`accepted (${re})`);
    } catch (e) {
      assert.match((e as Error).message, re);
    }
  }
  assert.is(gpu.counters.dispatches, before);
  for (const t of [img, one, txt, txt1, txtWide]) t.dispose();
});

test('olsFit: a hand-computed line, R², prediction and its errors', () => {
  // x̄ 2.5, ȳ 3.5, Sxx 5, Sxy 4 -> slope 0.8, intercept 1.5; SS_res 1.8, SS_tot 5 -> R² 0.64.
  const f = olsFit([1, 2, 3, 4], [2, 3, 5, 4]);
  assert.ok(Math.abs(f.slope - 0.8) < 1e-12);
  assert.ok(Math.abs(f.intercept - 1.5) < 1e-12);
  assert.ok(Math.abs(f.r2 - 0.64) < 1e-12);
  assert.is(f.n, 4);
  assert.ok(Math.abs(f.predict(5) - 5.5) < 1e-12);
  const exact = olsFit([0.1, 0.2, 0.4], [-0.7, -0.4, 0.2]);
  assert.ok(Math.abs(exact.slope - 3) < 1e-12 && Math.abs(exact.intercept + 1) < 1e-12 && Math.abs(exact.r2 - 1) < 1e-12);
  assert.is(olsFit([1, 2], [3, 3]).r2, 1);
  assert.throws(() => olsFit([0.3, 0.3, 0.3], [1, 2, 3]), /at least 2 distinct x values, got 3 point\(s\) with 1 distinct x/);
  assert.throws(() => olsFit([1], [1]), /at least 2 distinct x/);
  assert.throws(() => olsFit([1, 2], [1]), /2 x values but 1 y values/);
  assert.throws(() => olsFit([1, NaN], [1, 2]), /point 1 .* not finite/);
});

test('fitMethods: per method; fewer than 3 points and a single dataset say why', () => {
  const pt = (method: string, iimm: number, gain: number, forgetting: number | null): RunPoint => ({
    dir: `/r/${method}${iimm}`, method, dataset: 'X', baseToNovel: forgetting !== null, iimm, iimmSource: 'computed', zeroShot: {}, zeroShotSource: 'computed',
    target: 50, novel: null, gain, forgetting, skipped: null,
  });
  const fits = fitMethods([pt('a', 0.1, 0.2, 1), pt('a', 0.2, 0.3, 2), pt('a', 0.4, 0.5, null), pt('b', 0.1, 0.1, null), pt('b', 0.1, 0.2, null), pt('b', 0.1, 0.3, null), pt('c', 0.5, 0.5, 3)], 0.3);
  const a = fits.find((f) => f.method === 'a')!;
  assert.ok(a.gain && Math.abs(a.gain.slope - 1) < 1e-12 && Math.abs(a.gain.predicted - 0.4) < 1e-12 && a.gain.n === 3);
  assert.is(a.forgetting, null);
  assert.match(a.forgettingNote!, /2 usable run\(s\); a fit needs at least 3/);
  assert.is(fits.find((f) => f.method === 'b')!.gain, null);
  assert.match(fits.find((f) => f.method === 'b')!.gainNote!, /span 1 distinct IIMM value/);
  assert.match(fits.find((f) => f.method === 'c')!.gainNote!, /1 usable run\(s\)/);
});

// ---------------------------------------------------------------------------------------------
// With the shipped world CLIP on small world datasets.

const root = tempDir('iimm');
const CACHE = join(root, 'cache');
const DOMAINS = ['plain', 'sketch', 'noise'] as const;
const data = (d: string) => join(root, `world-${d}`);

test.before(async () => {
  for (const domain of DOMAINS) await writeWorldDataset({ out: data(domain), domain, counts: { train: 8, val: 1, test: 4 }, size: 32, seed: 0 });
});

test.after(() => removeDir(root));
let tStart = 0;
test.before.each(() => {
  tStart = performance.now();
});
test.after.each(() => {
  if (process.env.IIMM_TIMES) console.log(`  [${((performance.now() - tStart) / 1000).toFixed(1)} s]`);
});

async function capture(fn: (io: { stdout: { write(s: string): boolean }; stderr: { write(s: string): boolean } }) => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await fn({ stdout: { write: (s) => ((out += s), true) }, stderr: { write: (s) => ((err += s), true) } });
  return { code, out, err };
}

/** trainCommand writes to process.stdout/stderr: captured here. */
async function train(args: string[]): Promise<void> {
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  let err = '';
  process.stdout.write = (() => true) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => ((err += String(s)), true)) as typeof process.stderr.write;
  let code: number;
  try {
    code = await trainCommand([...args, '--weights', WORLD_CLIP, '--cache', CACHE, '--quiet'], { progress: null });
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
  assert.is(code, 0, err);
}

test('iimmForDataset equals the float64 pairwise IIMM of the same features (world CLIP, chunked)', async () => {
  const gpu = await getGpu();
  const { model, tokenizer } = await loadClip(gpu, WORLD_CLIP);
  const ds = await openDataset(data('plain'));
  const items = ds.train;
  // The checkpoint's real hash: the CLI test below then finds these features in the cache.
  const features = new ClipFeatures(model, tokenizer, { cache: new FeatureCache(CACHE), weightsHash: await fileSha256(WORLD_CLIP), progressFrom: Infinity });
  const template = 'a photo of a {}.';
  const got = await iimmForDataset(model, tokenizer, items, ds.classnames, { template, features, rowsPerChunk: 100 });
  const pooled = await features.pooled(items, { mode: 'test' });
  const text = await features.textWeights(ds.classnames, [template]);
  const proj = (await model.param('visual.proj').read()) as Float32Array;
  const W = model.config.image.width;
  const E = model.config.embedDim;
  const emb = new Float64Array(items.length * E);
  for (let i = 0; i < items.length; i++) for (let k = 0; k < W; k++) for (let e = 0; e < E; e++) emb[i * E + e]! += pooled[i * W + k]! * proj[k * E + e]!;
  const ref = pairwiseIimm(emb, Int32Array.from(items, (it) => it.label), text, items.length, ds.classnames.length, E);
  assert.is(got.n, 384);
  assert.is(got.classes, 48);
  for (const k of ['inter', 'intra', 'iimm'] as const) assert.ok(Math.abs(got[k] - ref[k]) <= 1e-5, `${k}: ${got[k]} vs ${ref[k]}`);
  // Without a feature source it extracts the same features itself.
  const few = items.slice(0, 40);
  const direct = await iimmForDataset(model, tokenizer, few, ds.classnames, { template });
  const viaCache = await iimmForDataset(model, tokenizer, few, ds.classnames, { template, features });
  assert.equal(direct, viaCache);
  model.dispose();
});

test('cliptune iimm: three ProLIP runs + a zero-shot run -> the fit and predictions; two runs -> why not', async () => {
  const runs = join(root, 'runs');
  mkdirSync(runs);
  const quick = ['--method', 'prolip', '--base-to-novel', '--shots', '2', '--steps', '4', '--views', '2', '--lr', '2e-3'];
  await train(['--data', data('plain'), '--method', 'zeroshot', '--base-to-novel', '--out', join(runs, 'zs-plain')]);
  for (const d of DOMAINS) await train(['--data', data(d), ...quick, '--out', join(runs, `prolip-${d}`)]);

  const args = ['--weights', WORLD_CLIP, '--cache', CACHE, '--quiet'];
  const two = await capture((io) => iimmCommand([...args, '--data', data('plain'), '--runs', join(runs, 'prolip-plain'), join(runs, 'prolip-sketch')], io));
  assert.is(two.code, 0, two.err);
  assert.match(two.out, /IIMM 0\.\d{6}  \(inter-modal S_inter -?0\.\d{6}, intra-modal S_intra -?0\.\d{6}\)/);
  assert.match(two.out, /no gain fit: gain: 2 usable run\(s\); a fit needs at least 3/);
  assert.match(two.out, /no forgetting fit: .*2 usable run\(s\); a fit needs at least 3/);
  assert.not.match(two.out, /^  gain += /m);

  const t0 = performance.now();
  const full = await capture((io) => iimmCommand([...args, '--data', data('sketch'), '--runs', runs], io));
  assert.is(full.code, 0, full.err);
  console.log(`  cliptune iimm --runs (4 runs, 3 datasets): ${((performance.now() - t0) / 1000).toFixed(1)} s\n${full.out.replace(/^/gm, '    | ')}`);
  assert.match(full.out, /prolip \(3 runs\):\n  gain       = -?\d+\.\d{4}·IIMM [+−] \d+\.\d{4}   R² \d\.\d{4}, n 3; predicted for World: -?\d+\.\d{4}\n  forgetting = .*R² \d\.\d{4}, n 3; predicted for World: -?\d+\.\d{2} points/);
  for (const d of DOMAINS) assert.ok(existsSync(join(runs, `prolip-${d}`, 'iimm.json')), `iimm.json in prolip-${d}`);

  // JSON: the points and the fit agree with each other, the reports and a direct IIMM per dataset.
  const js = await capture((io) => iimmCommand([...args, '--data', data('sketch'), '--runs', runs, '--json'], io));
  assert.is(js.code, 0, js.err);
  const doc = JSON.parse(js.out) as { iimm: number; runs: RunPoint[]; fits: { method: string; gain: { slope: number; intercept: number; r2: number; n: number; predicted: number }; forgetting: { n: number } }[] };
  assert.is(doc.runs.length, 3);
  for (const p of doc.runs) {
    assert.is(p.iimmSource, 'iimm.json', 'second call reads the cached IIMM');
    const report = JSON.parse(readFileSync(join(p.dir, 'report.json'), 'utf8')) as { results: { classSet: string; accuracy: number }[] };
    const acc = (s: string) => report.results.find((r) => r.classSet === s)!.accuracy;
    assert.is(p.target, acc('base'));
    assert.ok(Math.abs(p.gain! - (acc('base') - p.zeroShot.base!) / (100 - p.zeroShot.base!)) < 1e-12);
    assert.ok(Math.abs(p.forgetting! - (p.zeroShot.novel! - acc('novel'))) < 1e-12);
  }
  const plain = doc.runs.find((p) => p.dir.endsWith('prolip-plain'))!;
  assert.is(plain.zeroShotSource, join(runs, 'zs-plain'), 'zero-shot from the zeroshot run on the same data');
  const zsReport = JSON.parse(readFileSync(join(runs, 'zs-plain', 'report.json'), 'utf8')) as { results: { classSet: string; accuracy: number }[] };
  assert.is(plain.zeroShot.base, zsReport.results.find((r) => r.classSet === 'base')!.accuracy);
  const sketch = doc.runs.find((p) => p.dir.endsWith('prolip-sketch'))!;
  assert.match(sketch.zeroShotSource!, /iimm\.json/);
  const sketchSelf = doc.runs.find((p) => p.dir.endsWith('prolip-sketch'))!.iimm!;
  assert.ok(Math.abs(sketchSelf - doc.iimm) < 1e-12, 'the run on --data has this dataset\'s IIMM');
  assert.is(new Set(doc.runs.map((p) => p.iimm)).size, 3);
  const fit = doc.fits.find((f) => f.method === 'prolip')!;
  const ref = olsFit(doc.runs.map((p) => p.iimm!), doc.runs.map((p) => p.gain!));
  assert.ok(Math.abs(fit.gain.slope - ref.slope) < 1e-12 && Math.abs(fit.gain.r2 - ref.r2) < 1e-12 && fit.gain.n === 3);
  assert.ok(Math.abs(fit.gain.predicted - ref.predict(doc.iimm)) < 1e-12);
  assert.is(fit.forgetting.n, 3);
  const cached = JSON.parse(readFileSync(join(runs, 'prolip-noise', 'iimm.json'), 'utf8')) as { iimm: { result: IimmResult } };
  const noise = doc.runs.find((p) => p.dir.endsWith('prolip-noise'))!;
  assert.is(cached.iimm.result.iimm, noise.iimm);
});

test('cliptune iimm: bad input is a clear error naming the flag or file (exit 2, nothing computed)', async () => {
  const base = ['--weights', WORLD_CLIP, '--cache', CACHE, '--quiet'];
  const notRun = join(root, 'not-a-run');
  mkdirSync(notRun, { recursive: true });
  const badReport = join(root, 'bad-report');
  mkdirSync(badReport, { recursive: true });
  writeFileSync(join(badReport, 'run.json'), readFileSync(join(root, 'runs', 'prolip-plain', 'run.json')));
  writeFileSync(join(badReport, 'report.json'), '{ nope');
  const cases: [string[], RegExp][] = [
    [['--data', data('plain')], /--weights PATH is required/],
    [['--weights', WORLD_CLIP], /--data DIR is required/],
    [['--weights', join(root, 'missing.safetensors'), '--data', data('plain')], /--weights: .*missing\.safetensors does not exist/],
    [[...base, '--data', join(root, 'nowhere')], /--data: .*nowhere does not exist/],
    [[...base, '--data', data('plain'), '--template', 'ensemble'], /--template: IIMM uses one caption per class/],
    [[...base, '--data', data('plain'), '--template', 'a photo'], /--template "a photo" has no \{\}/],
    [[...base, '--data', data('plain'), '--runs', notRun], /--runs: .*not-a-run is not a cliptune run \(no run\.json\) and holds none/],
    [[...base, '--data', data('plain'), '--runs', join(root, 'gone')], /--runs: .*gone does not exist/],
    [[...base, '--data', data('plain'), '--runs', badReport], /bad-report\/report\.json: not valid JSON/],
    [[...base, '--data', data('plain'), '--runs', join(root, 'runs'), '--method', 'coop'], /--method coop: none of the 4 run\(s\)/],
    [[...base, '--data', data('plain'), '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [argv, re] of cases) {
    const r = await capture((io) => iimmCommand(argv, io));
    assert.is(r.code, 2, `${argv.join(' ')}: ${r.err}`);
    assert.match(r.err, re);
    assert.is(r.out, '');
  }
  const help = await capture((io) => iimmCommand(['--help'], io));
  assert.is(help.code, 0);
  assert.match(help.out, /gain = \(acc − zs\) \/ \(100 − zs\)/);
  assert.match(help.out, /forgetting = zs_novel − acc_novel/);
});

test.run();
