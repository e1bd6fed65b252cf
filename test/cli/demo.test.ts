// `cliptune demo` on a smaller configuration over 3 seeds, with the shipped world CLIP: what the
// demo must show (issue 7) — novel-class zero-shot accuracy at least 3x chance, every trained
// method above zero-shot on the base classes (mean over the seeds), and the novel-class change of
// CoOp and of the regularised methods measured and printed in the table. Also: argument errors, the
// run folders are ordinary runs, and a non-demo folder is never overwritten.
// The smaller configuration: 48 steps instead of 60, 16 training images per class generated instead
// of 32 (the same 16 shots), no IIMM phase; ~6.5 min on the 2-core machine.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEMO_USAGE, QUICK, parseDemoArgs, runDemo, type DemoResult } from '../../src/cli/demo.js';
import { DEMO_METHODS } from '../../src/cli/demo-methods.js';
import { METHODS } from '../../src/adapt/registry.js';
import { removeDir, tempDir } from '../train/helpers.js';

const root = tempDir('demo');
const WEIGHTS = fileURLToPath(new URL('../../../weights/world-clip.safetensors', import.meta.url));
const SEEDS = 3;
let result: DemoResult;
let out = '';
let err = '';

test.after(() => removeDir(root));

test('arguments: defaults, --quick, bad values', () => {
  const d = parseDemoArgs(['--out', join(root, 'x')]);
  if (d === 'help') throw new Error('unreachable');
  assert.equal(d.methods, DEMO_METHODS.map((m) => m.name));
  assert.is(d.domain, 'sketch');
  const q = parseDemoArgs(['--quick', '--methods', 'coop,prolip', '--iimm-domains', 'none']);
  if (q === 'help') throw new Error('unreachable');
  assert.ok(q.steps === QUICK.steps && q.methods.join() === 'coop,prolip' && q.iimmDomains.length === 0);
  assert.throws(() => parseDemoArgs(['--methods', 'coop,nope']), /"nope" is not a demo method/);
  assert.throws(() => parseDemoArgs(['--steps', '0']), /--steps must be an integer >= 1/);
  assert.throws(() => parseDemoArgs(['--domain', 'watercolour']), /unknown domain "watercolour"/);
  assert.throws(() => parseDemoArgs(['--iimm-domains', 'plain']), /at least 2 domains/);
  assert.is(parseDemoArgs(['--help']), 'help');
  assert.match(DEMO_USAGE, /DEMO PRESET/);
});

test('a folder that holds something else is refused, untouched', async () => {
  const dir = join(root, 'occupied');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'notes.txt'), 'mine');
  const o = parseDemoArgs(['--out', dir, '--weights', WEIGHTS]);
  if (o === 'help') throw new Error('unreachable');
  try {
    await runDemo(o, { out: { write: () => true }, err: { write: () => true } });
    assert.unreachable('should refuse');
  } catch (e) {
    assert.match((e as Error).message, /not empty and holds no previous demo/);
  }
  assert.ok(existsSync(join(dir, 'notes.txt')));
});

test(`smaller demo over ${SEEDS} seeds: every registered method, cross-domain, table`, async () => {
  const o = parseDemoArgs(['--out', join(root, 'demo'), '--weights', WEIGHTS, '--seeds', String(SEEDS), '--steps', '48', '--shots', '16', '--iimm-domains', 'none']);
  if (o === 'help') throw new Error('unreachable');
  o.counts = { train: 16, val: 4, test: 16 };
  const t0 = performance.now();
  result = await runDemo(o, { out: { write: (s: string) => (out += s) }, err: { write: (s: string) => (err += s) } });
  const secs = (performance.now() - t0) / 1000;
  process.stdout.write(`${out}\n(test demo: ${secs.toFixed(1)} s wall, ${result.cpu.toFixed(1)} CPU s)\n`);
  // Every method of the demo list is either run or skipped with a reason.
  for (const m of DEMO_METHODS) {
    const ran = result.rows.some((r) => r.method === m.name);
    const skipped = result.skipped.some((s) => s.method === m.name);
    assert.ok(ran !== skipped, `${m.name}: ran ${ran}, skipped ${skipped}`);
    assert.is(ran, !!METHODS[m.name], `${m.name} is ${METHODS[m.name] ? '' : 'not '}registered`);
  }
  for (const r of result.rows.filter((x) => x.method !== 'zeroshot')) {
    assert.is(r.seeds.length, SEEDS, r.method);
    for (const s of r.seeds) assert.ok(existsSync(join(s.runDir, 'run.json')) && existsSync(join(s.runDir, 'report.json')), s.runDir);
  }
  assert.ok(existsSync(join(o.out, 'demo.md')) && existsSync(join(o.out, 'demo.json')));
  assert.match(out, /DEMO PRESET/);
  assert.match(err, /\[1\/\d+ · /);
});

test('novel-class zero-shot accuracy is at least 3x chance', () => {
  const zs = result.rows.find((r) => r.method === 'zeroshot')!;
  assert.ok(zs.novel! >= 3 * (100 / 24), `zero-shot novel ${zs.novel}% vs 3x chance ${(300 / 24).toFixed(1)}%`);
});

// Measured at this configuration (means over seeds 1-3, base, zero-shot 75.5): linear probe +2.3,
// coop +2.3, prolip +3.1, ivlp +1.0, prompt-ot +1.2, dapt +2.1, rpp +2.0. IVLP, Prompt-OT and DAPT
// get there with the demo preset's prompt counts scaled to the model (1 vision prompt beside 16
// patches) and its prompt inits; with their official 4 and 16 vision prompts they stay below
// zero-shot on this model (docs/demo.md).
test('every trained method is above zero-shot on base classes (mean over seeds), and its table cell says so', () => {
  const zs = result.rows.find((r) => r.method === 'zeroshot')!;
  const trained = result.rows.filter((x) => x.method !== 'zeroshot');
  assert.is(trained.length, DEMO_METHODS.length - 1);
  for (const r of trained) {
    const d = r.base - zs.base;
    assert.ok(d > 0, `${r.method}: base ${r.base.toFixed(2)}% is not above zero-shot ${zs.base.toFixed(2)}%`);
    // The method's own row, base column: "mean±std (change)".
    const row = out.split('\n').find((l) => l.startsWith(`| ${r.method} `));
    const cell = `${r.base.toFixed(1)}±${r.baseStd.toFixed(1)} (+${d.toFixed(1)})`;
    assert.is(row?.split(' | ')[1], cell, `${r.method}: the table's base cell`);
  }
});

test("CoOp's and the regularised methods' novel-class changes are measured and printed", () => {
  const zs = result.rows.find((r) => r.method === 'zeroshot')!;
  const rows = result.rows.filter((r) => r.method === 'coop' || r.regularised);
  assert.ok(rows.length >= 1);
  for (const r of rows) {
    assert.ok(r.novel !== null && Number.isFinite(r.novel), `${r.method}: novel accuracy measured`);
    const d = r.novel! - zs.novel!;
    const cell = `${r.novel!.toFixed(1)}±${r.novelStd!.toFixed(1)} (${d >= 0 ? '+' : ''}${d.toFixed(1)})`;
    assert.ok(out.includes(cell), `${r.method}: the table shows its novel accuracy and change "${cell}"`);
  }
});

test.run();
