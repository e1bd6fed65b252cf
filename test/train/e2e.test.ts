// End to end through the CLI entry points, on a small random CLIP (real vocabulary, 32x32 images)
// and a 4-class world dataset: CoOp and ProLIP train with a falling loss, a run interrupted mid-way
// and resumed ends with bit-identical weights, zero-shot and base-to-novel runs report, and
// `cliptune eval` reproduces the run's own test accuracy.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { trainCommand, type TrainIo } from '../../src/cli/train.js';
import { evalCommand } from '../../src/cli/eval.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { checkpointParams, cliTrain, logLines, quiet, removeDir, tempDir, writeTinyClip, writeWorld } from './helpers.js';

const root = tempDir('e2e');
const WEIGHTS = join(root, 'tiny.safetensors');
const DATA = join(root, 'world');
const CACHE = join(root, 'cache');

const train = (args: string[], io: TrainIo = {}) => cliTrain(args, CACHE, io);
const params = checkpointParams;

function steps(run: string): { step: number; loss: number }[] {
  return logLines(run).filter((l) => l.type === 'step') as unknown as { step: number; loss: number }[];
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

test.before(async () => {
  await writeTinyClip(WEIGHTS, 1);
  await writeWorld(DATA, 4, { train: 8, val: 2, test: 6 });
});

test.after(() => removeDir(root));

/** Trains uninterrupted and interrupted-at-`stopAt`-then-resumed; returns both run folders. */
async function trainTwice(name: string, args: string[], stopAt: number) {
  const a = join(root, `${name}-a`);
  const b = join(root, `${name}-b`);
  const t0 = performance.now();
  const r1 = await train([...args, '--out', a]);
  const secs = (performance.now() - t0) / 1000;
  assert.is(r1.value, 0, r1.err);
  const ctl = new AbortController();
  const r2 = await train([...args, '--out', b], { signal: ctl.signal, onStep: (s) => s === stopAt && ctl.abort() });
  assert.is(r2.value, 130, r2.err);
  assert.match(r2.err, new RegExp(`interrupted at step ${stopAt} of`));
  assert.match(r2.err, /resume with: cliptune train --resume --out/);
  const r3 = await train(['--resume', '--out', b]);
  assert.is(r3.value, 0, r3.err);
  return { a, b, secs, out: r1.out };
}

test('CoOp trains (loss falls) and a resumed run reaches bit-identical context vectors', async () => {
  const args = ['--weights', WEIGHTS, '--data', DATA, '--method', 'coop', '--shots', '4', '--seed', '1', '--epochs', '6', '--batch-size', '8', '--lr', '0.5', '--warmup-epochs', '0', '--n-ctx', '4', '--log-every', '3', '--eval-epochs', '2'];
  const { a, b, secs, out } = await trainTwice('coop', args, 5);
  const s = steps(a);
  assert.is(s.length, 12, '16 images / batch 8 = 2 steps x 6 epochs');
  const evals = logLines(a).filter((l) => l.type === 'eval') as Record<string, number>[];
  assert.equal(evals.map((e) => e.epoch), [2, 4], 'periodic evaluation on the few-shot val split every 2 epochs');
  for (const e of evals) assert.ok(e.val_accuracy >= 0 && e.val_accuracy <= 100);
  const first = mean(s.slice(0, 4).map((x) => x.loss));
  const last = mean(s.slice(-4).map((x) => x.loss));
  assert.ok(last < first - 0.05, `loss ${first.toFixed(4)} -> ${last.toFixed(4)}`);
  const pa = await params(a);
  const pb = await params(b);
  assert.equal([...pa.keys()], ['param.ctx']);
  assert.equal(pb.get('param.ctx'), pa.get('param.ctx'), 'resumed ctx equals the uninterrupted run');
  const report = JSON.parse(readFileSync(join(a, 'report.json'), 'utf8'));
  assert.is(report.results[0].total, 24);
  assert.match(out, /test all: accuracy/);
  console.log(`    coop: 12 steps + eval in ${secs.toFixed(1)} s, loss ${first.toFixed(3)} -> ${last.toFixed(3)}, test accuracy ${report.results[0].accuracy.toFixed(1)}%, ${report.train.msPerStep.toFixed(0)} ms/step`);
});

test('ProLIP trains on cached views (loss falls), resumes bit-identically, and eval reproduces its accuracy', async () => {
  const args = ['--weights', WEIGHTS, '--data', DATA, '--method', 'prolip', '--shots', '4', '--seed', '2', '--steps', '20', '--views', '3', '--lr', '0.01', '--log-every', '4'];
  const { a, b, secs } = await trainTwice('prolip', args, 7);
  const s = steps(a);
  assert.is(s.length, 20);
  const first = mean(s.slice(0, 3).map((x) => x.loss));
  const last = mean(s.slice(-3).map((x) => x.loss));
  assert.ok(last < first - 0.02, `loss ${first.toFixed(4)} -> ${last.toFixed(4)}`);
  const pa = await params(a);
  assert.equal([...pa.keys()], ['param.visual.proj']);
  assert.equal((await params(b)).get('param.visual.proj'), pa.get('param.visual.proj'), 'resumed W equals the uninterrupted run');
  const report = JSON.parse(readFileSync(join(a, 'report.json'), 'utf8'));
  console.log(`    prolip: 20 steps + eval in ${secs.toFixed(1)} s (3 views extracted and cached), loss ${first.toFixed(3)} -> ${last.toFixed(3)}, ${report.train.msPerStep.toFixed(1)} ms/step`);
  const ev = await quiet(() => evalCommand(['--run', a, '--cache', CACHE, '--json']));
  assert.is(ev.value, 0, ev.err);
  const res = JSON.parse(ev.out.trim().split('\n').pop()!);
  assert.is(res.results[0].accuracy, report.results[0].accuracy);
  assert.ok(existsSync(join(a, 'eval-World-test.json')));
});

test('zero-shot and base-to-novel runs report base, novel and HM', async () => {
  const z = join(root, 'zs');
  const r = await train(['--weights', WEIGHTS, '--data', DATA, '--method', 'zeroshot', '--base-to-novel', '--out', z]);
  assert.is(r.value, 0, r.err);
  const rep = JSON.parse(readFileSync(join(z, 'report.json'), 'utf8'));
  assert.equal(rep.results.map((x: { classSet: string; classes: number }) => [x.classSet, x.classes]), [['base', 2], ['novel', 2]]);
  assert.ok(Number.isFinite(rep.hm));
  const p = join(root, 'prolip-b2n');
  const r2 = await train(['--weights', WEIGHTS, '--data', DATA, '--method', 'prolip', '--base-to-novel', '--shots', '2', '--steps', '3', '--views', '2', '--out', p]);
  assert.is(r2.value, 0, r2.err);
  const rep2 = JSON.parse(readFileSync(join(p, 'report.json'), 'utf8'));
  assert.equal(rep2.results.map((x: { classSet: string; total: number }) => [x.classSet, x.total]), [['base', 12], ['novel', 12]]);
  assert.match(r2.out, /HM /);
  const ev = await quiet(() => evalCommand(['--run', p, '--cache', CACHE, '--classes', 'novel']));
  assert.is(ev.value, 0, ev.err);
  assert.match(ev.out, /test novel: accuracy/);
});

test('linear probe: C searched on the val split, L-BFGS on the GPU, report and eval', async () => {
  const lp = join(root, 'lp');
  const t0 = performance.now();
  const r = await quiet(() => trainCommand(['--weights', WEIGHTS, '--data', DATA, '--method', 'linear-probe', '--shots', '4', '--search-steps', '1', '--max-iter', '60', '--out', lp, '--cache', CACHE], { progress: null }));
  const secs = (performance.now() - t0) / 1000;
  assert.is(r.value, 0, r.err);
  assert.match(r.err, /linear probe: C = [\d.e+-]+, \d+ L-BFGS iterations/);
  assert.is((r.err.match(/val accuracy/g) ?? []).length >= 7, true, 'the 7-value grid was evaluated');
  const rep = JSON.parse(readFileSync(join(lp, 'report.json'), 'utf8'));
  const ev = await quiet(() => evalCommand(['--run', lp, '--cache', CACHE, '--json']));
  assert.is(ev.value, 0, ev.err);
  assert.is(JSON.parse(ev.out.trim().split('\n').pop()!).results[0].accuracy, rep.results[0].accuracy);
  console.log(`    linear probe: search (7 + 2 fits, <= 60 iterations each) + final fit + eval in ${secs.toFixed(1)} s, test accuracy ${rep.results[0].accuracy.toFixed(1)}%`);
});

test('Ctrl-C (SIGINT) on the command line saves a checkpoint and exits with status 130', async () => {
  const run = join(root, 'sigint');
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  // The CLI runs on Node (under Deno, execPath is deno's).
  const node = 'Deno' in globalThis ? 'node' : process.execPath;
  const child = spawn(node, [main, 'train', '--weights', WEIGHTS, '--data', DATA, '--method', 'prolip', '--shots', '4', '--steps', '100000', '--views', '2', '--lr', '0.001', '--log-every', '1', '--out', run, '--cache', CACHE, '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EGL_PLATFORM: process.env.EGL_PLATFORM ?? 'surfaceless' } });
  let err = '';
  child.stderr.on('data', (b) => (err += String(b)));
  const code = await new Promise<number | null>((resolve) => {
    // (Deno's child_process reports a child that got a signal with code null even when it handled it.)
    const poll = setInterval(() => {
      const log = join(run, 'log.jsonl');
      if (existsSync(log) && steps(run).length >= 3) {
        clearInterval(poll);
        child.kill('SIGINT');
      }
    }, 50);
    child.on('exit', (c) => {
      clearInterval(poll);
      resolve(c);
    });
  });
  if ('Deno' in globalThis && code === null) assert.match(err, /interrupted at step/);
  else assert.is(code, 130, err);
  assert.match(err, /interrupt: saving a checkpoint after this step/);
  const ck = await loadCheckpoint(join(run, 'checkpoint.safetensors'));
  assert.ok(ck.state.step >= 3 && ck.state.extra.done === false, `checkpoint at step ${ck.state.step}`);
});

test.run();
