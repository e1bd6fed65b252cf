// `npm test`: the whole uvu suite in Node, then the core subset in Deno (deno from npm).
// Prints one closing line "N passed, N failed" and exits non-zero on any failure.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const env = { ...process.env, EGL_PLATFORM: process.env.EGL_PLATFORM ?? 'surfaceless', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
const only = process.argv.slice(2);
let passed = 0, failed = 0, skipped = 0;
let exitCode = 0;

function run(label, cmd, args) {
  const t0 = Date.now();
  console.log(`\n== ${label}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 1 << 28 });
  // Dawn's GL backend prints a harmless limit notice on stderr; keep everything else.
  const clean = (s) => s.split('\n').filter((l) => !/artificially reduced/.test(l)).join('\n');
  process.stdout.write(clean(r.stdout ?? ''));
  process.stderr.write(clean(r.stderr ?? ''));
  const text = (r.stdout ?? '') + (r.stderr ?? '');
  const total = /Total:\s+(\d+)/g, pass = /Passed:\s+(\d+)/g, skip = /Skipped:\s+(\d+)/g;
  let m, t = 0, p = 0, s = 0;
  while ((m = total.exec(text))) t += +m[1];
  while ((m = pass.exec(text))) p += +m[1];
  while ((m = skip.exec(text))) s += +m[1];
  passed += p; skipped += s; failed += Math.max(0, t - p - s);
  if (r.status !== 0 || t === 0) { exitCode = 1; if (t - p - s === 0) failed += 1; }
  console.log(`== ${label}: ${p}/${t} passed in ${((Date.now() - t0) / 1000).toFixed(1)} s (exit ${r.status})`);
}

const pattern = only.length ? `(${only.join('|')}).*\\.test\\.js$` : '\\.test\\.js$';
run('node', process.execPath, [join(root, 'node_modules/uvu/bin.js'), 'dist/test', pattern]);
// The core subset under Deno (wgpu on lavapipe: core feature level, shader-f16). One process per
// file: uvu suites imported into one process interleave, which breaks leak checks and forced-variant
// settings.
const DENO_SUBSET = [
  'gpu/core', 'ops/elementwise', 'ops/matmul', 'ops/softmax', 'ops/layernorm', 'ops/shape', 'ops/attention', 'clip/golden',
];
const denoBin = join(root, 'node_modules/.bin/deno');
// deno is not in package-lock.json: its npm package lists every platform's binary as an optional
// dependency, and a lock missing any of them fails `npm ci` where a registry lacks some platforms.
// Install the pinned version on first use instead (a failure here fails the run).
if (!only.length && !existsSync(denoBin)) {
  console.log('\n== installing deno@2.9.6 for the Deno subset (npm install --no-save)');
  const r = spawnSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', 'deno@2.9.6'], { cwd: root, env, stdio: 'inherit' });
  if (r.status !== 0 || !existsSync(denoBin)) { console.log('could not install deno: the Deno subset cannot run'); failed++; exitCode = 1; }
}
if (!only.length && existsSync(denoBin)) {
  for (const f of DENO_SUBSET) {
    const file = `dist/test/${f}.test.js`;
    if (existsSync(join(root, file))) run(`deno ${f}`, denoBin, ['run', '-A', '--quiet', file]);
    else { console.log(`deno subset: ${file} is missing`); failed++; exitCode = 1; }
  }
}
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(exitCode);
