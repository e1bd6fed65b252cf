// `npm run bench -- <suite> [--json] [--repeats N] [suite options]`: runs dist/bench/<suite>.js
// (built from bench/<suite>.ts by `npm run build`). Each suite exports
// `run(opts: BenchOptions): Promise<void>` and prints a Markdown table, or with --json one JSON
// object per case and line.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const distBench = join(root, 'dist', 'bench');
const HELPERS = new Set(['common', 'peers']);

function suites() {
  if (!existsSync(distBench)) return [];
  return readdirSync(distBench)
    .filter((f) => f.endsWith('.js') && !HELPERS.has(f.replace(/\.js$/, '')))
    .map((f) => f.replace(/\.js$/, ''))
    .sort();
}

const argv = process.argv.slice(2);
const suite = argv.find((a) => !a.startsWith('-'));
const usage = `usage: npm run bench -- <suite> [--json] [--repeats N] [--no-peers]\nsuites: ${suites().join(', ') || '(none built: run npm run build)'}`;
if (!suite || argv.includes('--help') || argv.includes('-h')) {
  console.log(usage);
  process.exit(suite ? 0 : 1);
}
const file = join(distBench, `${suite}.js`);
if (HELPERS.has(suite) || !existsSync(file)) {
  console.error(`unknown bench suite "${suite}"\n${usage}`);
  process.exit(1);
}
const opts = { json: false, repeats: 5, peers: true, args: [], root };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === suite) continue;
  if (a === '--json') opts.json = true;
  else if (a === '--no-peers') opts.peers = false;
  else if (a === '--repeats') {
    opts.repeats = Number(argv[++i]);
    if (!Number.isInteger(opts.repeats) || opts.repeats < 1) {
      console.error('--repeats needs a positive integer');
      process.exit(1);
    }
  } else opts.args.push(a);
}
// The software GL adapter needs these before Dawn starts (the engine sets them too).
process.env.EGL_PLATFORM ??= 'surfaceless';
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const mod = await import(pathToFileURL(file).href);
if (typeof mod.run !== 'function') {
  console.error(`dist/bench/${suite}.js does not export run()`);
  process.exit(1);
}
await mod.run(opts);
// Dawn keeps native handles alive; the suite is done.
process.exit(0);
