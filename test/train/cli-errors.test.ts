// Bad input to `cliptune train` / `cliptune eval`: each is a clear error (exit status 2) before any
// training, and nothing is written or overwritten.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { trainCommand } from '../../src/cli/train.js';
import { evalCommand } from '../../src/cli/eval.js';
import { removeDir, tempDir, writeTinyClip, writeWorld } from './helpers.js';

const root = tempDir('cli-errors');
const DATA = join(root, 'world');
const DUMMY_WEIGHTS = join(root, 'weights.safetensors');

async function run(cmd: typeof trainCommand | typeof evalCommand, args: string[]): Promise<{ code: number; err: string }> {
  const e = process.stderr.write.bind(process.stderr);
  const o = process.stdout.write.bind(process.stdout);
  let err = '';
  process.stderr.write = ((s: string | Uint8Array) => ((err += String(s)), true)) as typeof process.stderr.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    return { code: await cmd(args), err };
  } finally {
    process.stderr.write = e;
    process.stdout.write = o;
  }
}

const base = (out: string, extra: string[] = []) => ['--weights', DUMMY_WEIGHTS, '--data', DATA, '--out', out, '--quiet', ...extra];

test.before(async () => {
  await writeWorld(DATA, 4, { train: 8, val: 2, test: 4 });
  writeFileSync(DUMMY_WEIGHTS, 'not used: every error below comes before the weights are read');
});
test.after(() => removeDir(root));

async function expectError(args: string[], pattern: RegExp, cmd: typeof trainCommand | typeof evalCommand = trainCommand): Promise<void> {
  const out = args[args.indexOf('--out') + 1];
  const existed = out !== undefined && existsSync(out);
  const r = await run(cmd, args);
  assert.is(r.code, 2, `exit status for ${args.join(' ')}: ${r.err}`);
  assert.match(r.err, pattern);
  if (out !== undefined && !existed && args.includes('--out')) assert.not.ok(existsSync(out), `${out} was created`);
}

test('unknown method, unknown option, an option of another method, bad option values', async () => {
  const out = join(root, 'r1');
  await expectError(base(out, ['--method', 'frob']), /unknown method "frob"; known: zeroshot, coop, prolip/);
  await expectError(base(out, ['--method', 'coop', '--frobnicate']), /Unknown option '--frobnicate'/);
  await expectError(base(out, ['--method', 'prolip', '--n-ctx', '4']), /--n-ctx is not an option of prolip \(its options: --lr, --steps/);
  await expectError(base(out, ['--method', 'coop', '--epochs', '0']), /--epochs must be >= 1, got 0/);
  await expectError(base(out, ['--method', 'coop', '--lr', 'fast']), /--lr must be a number, got "fast"/);
  await expectError(base(out, ['--method', 'coop', '--class-token-position', 'side']), /--class-token-position must be one of end, middle, front/);
  await expectError(base(out, ['--method', 'coop', '--csc', '--base-to-novel', '--shots', '4']), /--csc cannot be used with --base-to-novel/);
  await expectError(base(out, ['--method', 'coop', '--shots=-1']), /--shots must be an integer >= 0/);
  await expectError(['--method', 'coop', '--data', DATA, '--out', out], /--weights PATH is required/);
  await expectError(['--weights', join(root, 'nope.safetensors'), '--data', DATA, '--method', 'coop', '--out', out], /--weights: .*nope.safetensors does not exist/);
});

test('wrong data layout, class-count mismatch, missing images, more shots than a class has', async () => {
  const out = join(root, 'r2');
  const empty = join(root, 'empty');
  mkdirSync(empty);
  await expectError(['--weights', DUMMY_WEIGHTS, '--data', empty, '--method', 'coop', '--out', out], /is not a dataset folder I know[\s\S]*accepted --data layouts/);
  await expectError(['--weights', DUMMY_WEIGHTS, '--data', join(root, 'missing'), '--method', 'coop', '--out', out], /--data: .*missing does not exist/);
  // The test split names a class the train split does not have.
  const split = JSON.parse(readFileSync(join(DATA, 'split_zhou_World.json'), 'utf8'));
  split.test.push([split.test[0][0], 7, 'mystery']);
  const bad = join(root, 'split_zhou_Bad.json');
  writeFileSync(bad, JSON.stringify(split));
  await expectError(base(out, ['--method', 'coop', '--split', bad]), /class-count mismatch: the test split has label\(s\) 7 but the train split has only 4 classes/);
  const gone = JSON.parse(readFileSync(join(DATA, 'split_zhou_World.json'), 'utf8'));
  gone.train[0][0] = 'red_circle/does-not-exist.png';
  const missing = join(root, 'split_zhou_Missing.json');
  writeFileSync(missing, JSON.stringify(gone));
  await expectError(base(out, ['--method', 'coop', '--split', missing]), /1 of \d+ listed images are missing, e.g. .*does-not-exist.png/);
  await expectError(base(out, ['--method', 'coop', '--shots', '9']), /--shots 9: 4 class\(es\) of the train split have fewer images: "red circle" has 8/);
});

test('a run folder that holds another run (or anything else) is refused and left untouched', async () => {
  const occupied = join(root, 'occupied');
  mkdirSync(occupied);
  const cfg = JSON.stringify({ format: 'cliptune-run-config/1', method: 'coop', datasetName: 'World', shots: 4, seed: 1, created: '2026-01-01' });
  writeFileSync(join(occupied, 'run.json'), cfg);
  await expectError(base(occupied, ['--method', 'prolip']), /already holds a run \(method coop, World, 4 shots, seed 1, started 2026-01-01\); pass --resume/);
  assert.is(readFileSync(join(occupied, 'run.json'), 'utf8'), cfg);
  assert.equal(readdirSync(occupied), ['run.json']);
  const other = join(root, 'other');
  mkdirSync(other);
  writeFileSync(join(other, 'notes.txt'), 'mine');
  await expectError(base(other, ['--method', 'prolip']), /is not empty \(notes.txt\)/);
  assert.equal(readdirSync(other), ['notes.txt']);
  // --resume: a folder without a run, and options that would change the run.
  await expectError(['--resume', '--out', other, '--quiet'], /is not a cliptune run \(no run.json\)/);
  await expectError(['--resume', '--out', occupied, '--lr', '0.1', '--quiet'], /--resume continues .* with its own options; do not pass --lr/);
});

test('eval: missing run, bad --split / --classes', async () => {
  await expectError(['--run', join(root, 'nope')], /is not a cliptune run/, evalCommand);
  const occupied = join(root, 'occupied');
  await expectError(['--run', occupied], /has no checkpoint/, evalCommand);
});

test('a class name too long for the text encoder is reported before anything is written', async () => {
  const weights = join(root, 'tiny.safetensors');
  await writeTinyClip(weights, 0);
  const data = join(root, 'longnames');
  await writeWorld(data, 2, { train: 2, val: 1, test: 1 });
  const split = JSON.parse(readFileSync(join(data, 'split_zhou_World.json'), 'utf8'));
  const long = Array.from({ length: 80 }, () => 'word').join(' ');
  for (const key of ['train', 'val', 'test']) for (const e of split[key]) if (e[1] === 1) e[2] = long;
  writeFileSync(join(data, 'split_zhou_World.json'), JSON.stringify(split));
  const out = join(root, 'r-long');
  await expectError(['--weights', weights, '--data', data, '--method', 'coop', '--shots', '1', '--out', out, '--quiet', '--no-cache'], /CoOp prompts do not fit the text encoder/);
});

test.run();
