// `cliptune world` through its exported command function.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { worldCommand } from '../../src/cli/world.js';

const root = mkdtempSync(join(tmpdir(), 'cliptune-world-cli-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

async function run(...argv: string[]) {
  let out = '';
  let err = '';
  const code = await worldCommand(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  return { code, out, err };
}

test('writes a dataset and says what it wrote', async () => {
  const dir = join(root, 'ok');
  const r = await run('--out', dir, '--classes', 'base', '--train', '2', '--val', '1', '--test', '1', '--size', '16', '--seed', '4');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /wrote 96 images to .*ok: 24 classes x 2 train \/ 1 val \/ 1 test, domain plain, 16x16, seed 4/);
  assert.match(r.out, /images\/s/);
  const split = JSON.parse(readFileSync(join(dir, 'split_zhou_World.json'), 'utf8'));
  assert.is(split.train.length, 48);
  assert.is(readFileSync(join(dir, 'classnames.txt'), 'utf8').split('\n')[23], 'cyan cross');
});

test('--per-class N splits like CoOp; --domain; --force', async () => {
  const dir = join(root, 'pc');
  const r = await run('--out', dir, '--classes', 'red_circle,blue_oval', '--per-class', '10', '--domain', 'noise');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /wrote 20 images .* 2 classes x 5 train \/ 2 val \/ 3 test, domain noise/);
  const again = await run('--out', dir, '--classes', '0', '--per-class', '2');
  assert.is(again.code, 2);
  assert.match(again.err, /not empty; pass --force/);
  const forced = await run('--out', dir, '--classes', '0', '--per-class', '2', '--force');
  assert.is(forced.code, 0, forced.err);
  assert.match(readFileSync(join(dir, 'world.json'), 'utf8'), /"domain": "plain"/);
});

test('clear errors, exit code 2, nothing written', async () => {
  const dir = join(root, 'bad');
  const cases: [string[], RegExp][] = [
    [[], /--out DIR is required/],
    [['--out', dir, '--classes', 'red_square,green_blob'], /unknown classes "red_square", "green_blob"; use all, base, novel.*red_circle, green_square/],
    [['--out', dir, '--domain', 'watercolour'], /unknown domain "watercolour"; valid: plain, sketch, noise, stripes, checker, gradient, pixelated/],
    [['--out', dir, '--train', '-1'], /--train/],
    [['--out', dir, '--train', 'ten'], /--train must be a non-negative integer, got "ten"/],
    [['--out', dir, '--size', '4'], /--size must be in 8\.\.1024, got 4/],
    [['--out', dir, '--seed', '1e3'], /--seed must be a non-negative integer/],
    [['--out', dir, '--per-class', '0'], /--per-class must be in 1\.\./],
    [['--out', dir, '--per-class', '10', '--test', '3'], /cannot be combined/],
    [['--out', dir, '--train', '0', '--val', '0', '--test', '0'], /nothing to write/],
    [['--out', dir, '--bogus'], /Unknown option '--bogus'/],
    [['--out', dir, 'extra'], /positional/],
  ];
  for (const [argv, re] of cases) {
    const r = await run(...argv);
    assert.is(r.code, 2, argv.join(' '));
    assert.match(r.err, re);
    assert.match(r.err, /^cliptune world: /);
    assert.is(r.out, '');
  }
  assert.not.ok(existsSync(dir));
  const file = join(root, 'file');
  writeFileSync(file, '');
  mkdirSync(join(root, 'dir-with-file'));
  writeFileSync(join(root, 'dir-with-file', 'x'), '');
  assert.is((await run('--out', file)).code, 2);
  assert.is((await run('--out', join(root, 'dir-with-file'))).code, 2);
});

test('--help, --list, --preview', async () => {
  const h = await run('--help');
  assert.is(h.code, 0);
  assert.match(h.out, /^usage: cliptune world --out DIR/);
  const l = await run('--list');
  assert.is(l.code, 0);
  const lines = l.out.trimEnd().split('\n');
  assert.is(lines.length, 49);
  assert.match(lines[0]!, /^ 0 {2}red_circle +base$/);
  assert.match(lines[47]!, /^47 {2}cyan_ring +novel$/);
  assert.match(lines[48]!, /^domains: plain, sketch/);
  const png = join(root, 'sheet.png');
  const p = await run('--preview', png, '--classes', '0-3', '--domain', 'sketch');
  assert.is(p.code, 0, p.err);
  assert.match(p.out, /wrote .*sheet\.png \(\d+x\d+; domains: sketch\)/);
  assert.equal([...readFileSync(png).subarray(1, 4)], [0x50, 0x4e, 0x47]);
  assert.is((await run('--preview', png, '--domain', 'oil')).code, 2);
});

test.run();
