// `cliptune report` on synthetic run folders (no GPU): grouping by (method, dataset, shots,
// options), mean ± std over seeds, HM of the averaged base and novel, dataset means of seed means,
// cross-dataset evaluations from eval-*.json, loss curves from log.jsonl (a resumed run's repeated
// steps counted once), HTML escaping of every string from files, self-contained output, atomic
// writes, and errors that name the run folder and the file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { RUN_CONFIG_FORMAT } from '../../src/train/run.js';
import { datasetAverages, summarizeRuns, writeReport, escapeHtml } from '../../src/train/report-html.js';
import { reportCommand } from '../../src/cli/report.js';
import { harmonicMean } from '../../src/data/metrics.js';
import { removeDir, tempDir } from './helpers.js';

const root = tempDir('report');
test.after(() => removeDir(root));

interface Fake {
  method?: string;
  dataset?: string;
  data?: string;
  shots?: number;
  seed: number;
  b2n?: boolean;
  options?: Record<string, unknown>;
  given?: string[];
  base?: number;
  novel?: number;
  all?: number;
  losses?: number[];
  logText?: string;
  classnames?: string[];
}

function makeRun(name: string, f: Fake): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const b2n = f.b2n ?? true;
  const cfg = {
    format: RUN_CONFIG_FORMAT,
    method: f.method ?? 'prolip',
    options: f.options ?? { lr: 1e-5, steps: 300 },
    given: f.given ?? [],
    weights: '/w/world-clip.safetensors',
    weightsHash: 'ab'.repeat(32),
    data: f.data ?? '/data/sketch',
    split: null,
    datasetName: f.dataset ?? 'World',
    shots: f.shots ?? 16,
    seed: f.seed,
    baseToNovel: b2n,
    classnames: f.classnames ?? ['red circle', 'blue square'],
    trainImages: 32,
    trainDigest: 'x',
    fewshotOrigin: 'generated',
    fewshotIndex: null,
    evalEpochs: 0,
    logEvery: 10,
    created: '2026-11-22T00:00:00.000Z',
  };
  writeFileSync(join(dir, 'run.json'), JSON.stringify(cfg));
  const r = (classSet: string, accuracy: number) => ({ split: 'test', classSet, accuracy, meanPerClass: accuracy, correct: 1, total: 2, classes: 2 });
  const results = b2n ? [r('base', f.base!), r('novel', f.novel!)] : [r('all', f.all!)];
  writeFileSync(join(dir, 'report.json'), JSON.stringify({ method: cfg.method, dataset: cfg.datasetName, results, train: { steps: 10, seconds: 1, msPerStep: 100 } }));
  const lines = [JSON.stringify({ type: 'config', ...cfg })];
  (f.losses ?? [2, 1.5, 1]).forEach((loss, step) => lines.push(JSON.stringify({ type: 'step', step, epoch: step, lr: 0.1, loss })));
  writeFileSync(join(dir, 'log.jsonl'), f.logText ?? lines.join('\n') + '\n');
  return dir;
}

function writeEval(dir: string, data: string, dataset: string, classSet: string, accuracy: number): void {
  const results = [{ split: 'test', classSet, accuracy, meanPerClass: accuracy, correct: 1, total: 2, classes: 2 }];
  writeFileSync(join(dir, `eval-${dataset}-test.json`), JSON.stringify({ method: 'x', results, evaluatedOn: { data, dataset, split: 'test', classes: [classSet] } }));
}

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b}`);

test('groups by (method, dataset, shots, options); mean ± std over seeds; HM of the averaged base and novel', () => {
  const a = [makeRun('a1', { seed: 1, base: 80, novel: 70 }), makeRun('a2', { seed: 2, base: 84, novel: 60 }), makeRun('a3', { seed: 3, base: 82, novel: 65 })];
  const other = makeRun('b1', { seed: 1, base: 90, novel: 50, options: { lr: 1e-3, steps: 300 }, given: ['lr'] });
  const zs = makeRun('zs', { seed: 1, method: 'zeroshot', base: 75, novel: 76, options: { template: 'dataset' } });
  const groups = summarizeRuns([a[2]!, other, a[0]!, zs, a[1]!]);
  assert.is(groups.length, 3);
  const g = groups[0]!;
  assert.equal(g.seeds, [1, 2, 3], 'seeds sorted within the group');
  close(g.accuracy.base!.mean, 82, 'base mean');
  close(g.accuracy.base!.std, Math.sqrt(8 / 3), 'base std (population)');
  close(g.accuracy.novel!.mean, 65, 'novel mean');
  close(g.hm!, harmonicMean(82, 65), 'HM of the means');
  const meanOfHm = (harmonicMean(80, 70) + harmonicMean(84, 60) + harmonicMean(82, 65)) / 3;
  assert.ok(Math.abs(g.hm! - meanOfHm) > 0.05, 'not the mean of per-seed HMs');
  assert.equal(g.zeroShot, { base: 75, novel: 76 }, 'zero-shot reference for forgetting');
  assert.is(groups[1]!.options.lr, 1e-3);
  assert.equal(groups[1]!.given, ['lr']);
  // Loss windows: mean over the first and last 10% of steps (1 step each of 3).
  assert.equal(g.lossWindows, { first: 2, last: 1 });
});

test('dataset means of seed means, HM from the averaged base and novel; cross-dataset evaluations', () => {
  const runs = [
    makeRun('p1', { seed: 1, data: '/data/pets', dataset: 'OxfordPets', base: 90, novel: 80, given: ['steps'] }),
    makeRun('p2', { seed: 2, data: '/data/pets', dataset: 'OxfordPets', base: 92, novel: 70, given: ['steps'] }),
    makeRun('f1', { seed: 1, data: '/data/flowers', dataset: 'OxfordFlowers', base: 70, novel: 60, given: ['steps'] }),
  ];
  writeEval(runs[0]!, '/data/sketch', 'World', 'all', 40);
  writeEval(runs[1]!, '/data/sketch', 'World', 'all', 50);
  // An evaluation of the run's own test split repeats report.json and is not listed again.
  writeEval(runs[2]!, '/data/flowers', 'OxfordFlowers', 'base', 70);
  const groups = summarizeRuns(runs);
  const avgs = datasetAverages(groups);
  assert.is(avgs.length, 1);
  close(avgs[0]!.base!, (91 + 70) / 2, 'base: mean of the dataset means');
  close(avgs[0]!.novel!, (75 + 60) / 2, 'novel');
  close(avgs[0]!.hm!, harmonicMean(80.5, 67.5), 'HM of the averages');
  assert.is(groups[0]!.cross.length, 1);
  close(groups[0]!.cross[0]!.accuracy.mean, 45, 'cross-dataset mean');
  assert.is(groups[0]!.cross[0]!.target, 'World');
  assert.is(groups[1]!.cross.length, 0);
});

test('a resumed run logs steps again: the later value counts once; an unterminated last line is skipped', () => {
  const text = [
    { type: 'step', step: 0, loss: 3 },
    { type: 'step', step: 1, loss: 2.5 },
    { type: 'resume', step: 1 },
    { type: 'step', step: 1, loss: 2 },
    { type: 'step', step: 2, loss: 1 },
    { type: 'eval', epoch: 1, step: 2, val_accuracy: 55 },
  ].map((r) => JSON.stringify(r)).join('\n') + '\n{"type":"step","st';
  const d = makeRun('resumed', { seed: 1, base: 1, novel: 1, logText: text });
  const [g] = summarizeRuns([d]);
  assert.equal(g!.runs[0]!.loss, [{ step: 0, loss: 3 }, { step: 1, loss: 2 }, { step: 2, loss: 1 }]);
  assert.equal(g!.runs[0]!.periodic, [{ epoch: 1, step: 2, metrics: { val_accuracy: 55 } }]);
});

test('every string from the files is escaped; the page is self-contained; HTML and Markdown are written atomically', async () => {
  const evil = '<script>alert("x")</script>&';
  const d1 = makeRun('evil1', { seed: 1, method: evil, dataset: `<b>${evil}`, base: 60, novel: 50, options: { template: evil }, given: ['template'], losses: [3, 2.5, 2, 1.7, 1.5, 1.4, 1.3, 1.25, 1.2, 1.1, 1] });
  const d2 = makeRun('evil2', { seed: 2, method: evil, dataset: `<b>${evil}`, base: 64, novel: 54, options: { template: evil }, given: ['template'], losses: [3.1, 2.4, 2, 1.8, 1.5, 1.4, 1.3, 1.2, 1.2, 1.1, 0.9] });
  writeEval(d1, `/data/<i>`, `Evil<svg onload=x>`, 'all', 33);
  const outDir = join(root, 'out');
  const r = await writeReport([d1, d2], join(outDir, 'rep.html'), { title: `T ${evil}`, notes: [`note ${evil}`] });
  assert.is(r.markdown, join(outDir, 'rep.md'));
  const html = readFileSync(r.html, 'utf8');
  assert.not.match(html, /<script/i);
  assert.not.match(html, /<b>/);
  assert.not.match(html, /<i>/);
  assert.not.match(html, /<svg onload/);
  assert.match(html, new RegExp(escapeHtml(evil).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  assert.not.match(html, /(src|href)=/i, 'no external assets');
  assert.not.match(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, ''), /https?:/, 'no URLs besides the SVG namespace');
  assert.match(html, /<svg[^>]*aria-label="Training loss/);
  assert.match(html, /<path d="M[\d.]+ [\d.]+L/, 'a loss curve');
  assert.match(html, /62\.00 ± 2\.00/);
  const md = readFileSync(r.markdown, 'utf8');
  assert.match(md, /\| 62\.00 ± 2\.00 \| 52\.00 ± 2\.00 \| 56\.56 \|/);
  assert.match(md, /## Other datasets and splits/);
  assert.equal(readdirSync(outDir).sort(), ['rep.html', 'rep.md'], 'no temporary files left');
});

test('errors name the run folder and the file', async () => {
  const missing = makeRun('noreport', { seed: 1, base: 1, novel: 1 });
  removeDir(join(missing, 'report.json'));
  assert.throws(() => summarizeRuns([missing]), (e: Error) => e.name === 'ReportError' && e.message.includes(missing) && e.message.includes('report.json: missing'));
  const badLog = makeRun('badlog', { seed: 1, base: 1, novel: 1, logText: '{"type":"step","step":0,"loss":1}\nnot json\n' });
  assert.throws(() => summarizeRuns([badLog]), (e: Error) => e.message.includes(badLog) && /log\.jsonl: line 2 is not valid JSON/.test(e.message));
  const badEval = makeRun('badeval', { seed: 1, base: 1, novel: 1 });
  writeFileSync(join(badEval, 'eval-X-test.json'), '{"results": [{"classSet": "all", "accuracy": "high"}]}');
  assert.throws(() => summarizeRuns([badEval]), (e: Error) => e.message.includes(badEval) && e.message.includes('eval-X-test.json: results[0].accuracy is not a number'));
  const noRun = join(root, 'empty');
  mkdirSync(noRun);
  assert.throws(() => summarizeRuns([noRun]), /empty: run\.json: missing/);
  const badCfg = makeRun('badcfg', { seed: 1, base: 1, novel: 1 });
  writeFileSync(join(badCfg, 'run.json'), '{"format": "cliptune-run-config/1", "method": 3}');
  assert.throws(() => summarizeRuns([badCfg]), /badcfg: run\.json: "method" is not a string/);
  // The summary must not replace a run's own report.md.
  const ok = makeRun('ok', { seed: 1, base: 1, novel: 1 });
  await assert.throws(() => summarizeRuns([]), /no run folders/);
  let msg = '';
  await writeReport([ok], join(ok, 'report.html')).catch((e: Error) => (msg = e.message));
  assert.match(msg, /would replace .*report\.md/);
  assert.ok(existsSync(join(ok, 'report.json')));
});

test('cliptune report: a folder of runs stands for its runs; exit 2 with the message on a broken run', async () => {
  const parent = join(root, 'sweep');
  mkdirSync(parent);
  for (const s of [1, 2, 3]) makeRun(join('sweep', `seed${s}`), { seed: s, b2n: false, all: 70 + s, method: 'coop' });
  const out = join(root, 'cli', 'r.html');
  const err: string[] = [];
  const w = process.stderr.write.bind(process.stderr);
  const o = process.stdout.write.bind(process.stdout);
  process.stderr.write = ((s: string) => (err.push(String(s)), true)) as typeof process.stderr.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    assert.is(await reportCommand([parent, '--out', out]), 0);
    assert.match(err.join(''), /3 runs in 1 group/);
    assert.match(readFileSync(join(root, 'cli', 'r.md'), 'utf8'), /\| coop \| World \| 16 \| defaults \| 3 \| 72\.00 ± 0\.82 \|/);
    assert.is(await reportCommand([join(root, 'nonexistent')]), 2);
    assert.match(err.join(''), /nonexistent does not exist/);
    assert.is(await reportCommand([]), 2);
  } finally {
    process.stderr.write = w;
    process.stdout.write = o;
  }
});

test.run();
