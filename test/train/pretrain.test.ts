// Pretraining on a tiny world CLIP (16 px images, one layer of width 64 per tower, batch 16): the
// loss falls, an interrupted and resumed run ends with bit-identical weights, optimiser state and
// log, the exported files load (plain loadClip for the full-vocabulary layout, the compact hook for
// the compact one) and give the trained model's embeddings, and a diverging run stops cleanly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { getGpu, type Gpu } from '../../src/gpu/index.js';
import { tensor, tidy } from '../../src/tensor/tensor.js';
import { noGrad } from '../../src/autograd/tape.js';
import { ClipModel } from '../../src/clip/model.js';
import { loadClip } from '../../src/clip/load-node.js';
import { loadClipTokenizer } from '../../src/clip/tokenizer-node.js';
import type { ClipTokenizer } from '../../src/clip/tokenizer.js';
import { clipTensorSpec } from '../../src/clip/checkpoint.js';
import { CompactVocab, OutOfVocabularyError, compactVocabOf } from '../../src/clip/compact-vocab.js';
import { toNormalizedChw } from '../../src/clip/transforms.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import {
  EXPORT_FILE, PRETRAIN_DEFAULTS, PretrainDivergedError, exportWorldClip, learningRate, lengthGroups, pretrain, decays,
  worldClipConfig, type PretrainOptions,
} from '../../src/train/pretrain.js';
import { parsePretrainArgs } from '../../src/cli/pretrain.js';
import { worldPairs } from '../../src/data/world/generate.js';
import { worldTokenIds } from '../../src/data/world/vocab.js';

const root = mkdtempSync(join(tmpdir(), 'cliptune-pretrain-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

const STEPS = 24;
const TINY: PretrainOptions = {
  ...PRETRAIN_DEFAULTS,
  shape: { imageSize: 16, patchSize: 8, visionWidth: 64, visionLayers: 1, textWidth: 64, textLayers: 1, embedDim: 32 },
  steps: STEPS,
  batch: 16,
  lr: 5e-4,
  warmupSteps: 4,
  logEvery: 4,
  evalEvery: 12,
  evalPerClass: 1,
  checkpointEvery: 8,
  finalEvalPerClass: 1,
  finalEvalDomains: ['plain'],
  exportDtype: 'f32',
  exportVocab: 'full',
};

let gpu: Gpu;
let tok: ClipTokenizer;
const ctx = async () => {
  gpu ??= await getGpu();
  tok ??= await loadClipTokenizer();
  return { gpu, tok };
};

interface Line { step: number; loss?: number; lr?: number; logit_scale?: number; grad_norm?: number; seconds?: number; eval?: { base: number } }
const readLog = (dir: string): Line[] => readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

const full = join(root, 'full');

test('a tiny world CLIP trains: the loss falls, lr follows warmup + cosine, logs and evals are written', async () => {
  const { gpu, tok } = await ctx();
  const live = gpu.stats().liveBytes;
  const r = await pretrain(gpu, tok, TINY, { out: full });
  assert.is(gpu.stats().liveBytes, live, 'every device buffer is released');
  assert.is(r.status, 'done');
  assert.is(r.step, STEPS);
  const steps = readLog(full).filter((l) => l.loss !== undefined);
  assert.equal(steps.map((l) => l.step), Array.from({ length: STEPS }, (_, i) => i + 1));
  for (const l of steps) {
    assert.ok(Number.isFinite(l.loss) && Number.isFinite(l.grad_norm), `step ${l.step} finite`);
    assert.is(l.lr, learningRate(TINY, l.step - 1), `lr of step ${l.step}`);
    assert.ok(l.logit_scale! > 0 && l.logit_scale! <= Math.log(100));
  }
  assert.is(steps[0]!.lr, 0);
  assert.is(steps[TINY.warmupSteps]!.lr, TINY.lr);
  // Criterion: mean loss of the last quarter < 0.9 x that of the first. From CLIP's initial logit
  // scale the loss starts near 3.6 (> ln 16 = 2.77: confident random similarities) and falls to
  // about ln 16 within these steps; getting well below ln B takes longer (the --quick recipe).
  const q = STEPS / 4;
  const first = mean(steps.slice(0, q).map((l) => l.loss!));
  const last = mean(steps.slice(-q).map((l) => l.loss!));
  assert.ok(last < 0.9 * first, `loss fell: first quarter ${first.toFixed(4)}, last quarter ${last.toFixed(4)}`);
  const evals = readLog(full).filter((l) => l.eval);
  assert.equal(evals.map((l) => l.step), [12, STEPS]); // held-out at 12, test at the end
  assert.is(r.finalEval.length, 1);
  assert.is(r.finalEval[0]!.images, 48);
  assert.ok(existsSync(join(full, EXPORT_FILE)) && existsSync(join(full, 'results.json')));
});

test('Ctrl-C (a stop request) mid-run saves a checkpoint; --resume ends bit-identical to an uninterrupted run', async () => {
  const { gpu, tok } = await ctx();
  const dir = join(root, 'resumed');
  // Stop at 10: between checkpoints (every 8) and between readbacks (every 4).
  let polls = 0;
  const first = await pretrain(gpu, tok, TINY, { out: dir, shouldStop: () => ++polls >= 10 });
  assert.is(first.status, 'interrupted');
  assert.is(first.step, 10);
  assert.is((await loadCheckpoint(join(dir, 'checkpoint.safetensors'))).state.step, 10);
  assert.not.ok(existsSync(join(dir, EXPORT_FILE)));
  const err = await pretrain(gpu, tok, TINY, { out: dir }).then(() => '', (e: Error) => e.message);
  assert.match(err, /exists: pass --resume/);
  const changed = await pretrain(gpu, tok, { ...TINY, lr: 1e-3 }, { out: dir, resume: true }).then(() => '', (e: Error) => e.message);
  assert.match(changed, /other options \(lr: 0.0005\)/);
  const second = await pretrain(gpu, tok, null, { out: dir, resume: true });
  assert.is(second.status, 'done');

  const a = await loadCheckpoint(join(full, 'checkpoint.safetensors'));
  const b = await loadCheckpoint(join(dir, 'checkpoint.safetensors'));
  assert.is(b.state.step, STEPS);
  assert.equal([...b.tensors.keys()].sort(), [...a.tensors.keys()].sort());
  assert.ok([...a.tensors.keys()].some((k) => k.startsWith('optim/decay/')) && [...a.tensors.keys()].some((k) => k.startsWith('optim/noDecay/')));
  for (const [name, t] of a.tensors) assert.ok(bits(t.data).equals(bits(b.tensors.get(name)!.data)), `bits of ${name}`);
  assert.equal(b.state.extra.optim, a.state.extra.optim);
  const strip = (ls: Line[]) => ls.map(({ seconds: _s, ...rest }) => rest);
  assert.equal(strip(readLog(dir)), strip(readLog(full)));
  assert.ok(readFileSync(join(dir, EXPORT_FILE)).equals(readFileSync(join(full, EXPORT_FILE))), 'exported files are identical');
});

/** Image and text embeddings of a few world pairs (text through `tokenizer`, whatever ids it speaks). */
async function embeddings(gpu: Gpu, model: ClipModel, tokenizer: ClipTokenizer): Promise<Float32Array[]> {
  const S = model.config.image.resolution;
  const pairs = [...worldPairs({ seed: 5, size: S, start: 1000, count: 6 })];
  const px = new Float32Array(pairs.length * 3 * S * S);
  pairs.forEach((p, i) => toNormalizedChw(p.image, px, i * 3 * S * S));
  const rows = tokenizer.tokenize(pairs.map((p) => p.caption));
  const ids = new Int32Array(rows[0]!.buffer, 0, rows.length * 77);
  const [img, txt] = noGrad(() => tidy(() => [model.encodeImage(tensor(px, [pairs.length, 3, S, S], 'f32', gpu)).embeds, model.encodeText({ ids, rows: rows.length, length: 77 }).embeds]));
  const out = [(await img!.read()) as Float32Array, (await txt!.read()) as Float32Array];
  img!.dispose();
  txt!.dispose();
  return out;
}

test('exports load and give the trained model\'s embeddings: full layout via loadClip, compact via the hook; f16 close', async () => {
  const { gpu, tok } = await ctx();
  const vocab = new CompactVocab(worldTokenIds(tok));
  const ck = await loadCheckpoint(join(full, 'checkpoint.safetensors'));
  const config = worldClipConfig(TINY.shape, vocab.size);
  const weights = new Map(clipTensorSpec(config).map((s) => [s.name, ck.tensors.get(`model/${s.name}`)!.data]));
  const trained = ClipModel.fromTensors(gpu, config, weights);
  const ref = await embeddings(gpu, trained, vocab.wrapTokenizer(tok));

  const viaLoadClip = await loadClip(gpu, join(full, EXPORT_FILE));
  assert.is(viaLoadClip.model.config.text.vocabSize, 49408);
  const got = await embeddings(gpu, viaLoadClip.model, viaLoadClip.tokenizer);
  viaLoadClip.model.dispose();
  assert.ok(bits(got[0]!).equals(bits(ref[0]!)) && bits(got[1]!).equals(bits(ref[1]!)), 'full export via loadClip: same embeddings');

  for (const dtype of ['f32', 'f16'] as const) {
    const path = join(root, `compact-${dtype}.safetensors`);
    await exportWorldClip(trained, vocab, path, { dtype, vocab: 'compact' });
    const loaded = await loadClip(gpu, path, { tokenizer: tok });
    assert.ok(loaded.vocab && compactVocabOf(loaded.tokenizer) === loaded.vocab);
    assert.is(loaded.model.config.text.vocabSize, vocab.size);
    const e = await embeddings(gpu, loaded.model, loaded.tokenizer);
    loaded.model.dispose();
    if (dtype === 'f32') assert.ok(bits(e[0]!).equals(bits(ref[0]!)) && bits(e[1]!).equals(bits(ref[1]!)), 'compact f32: same embeddings');
    else {
      for (let k = 0; k < 2; k++) {
        const err = Math.max(...e[k]!.map((v, i) => Math.abs(v - ref[k]![i]!))) / Math.max(...ref[k]!.map(Math.abs));
        assert.ok(err < 1e-2, `compact f16 embeddings within 1% (${err})`);
      }
    }
  }
  trained.dispose();
});

test('compact vocabulary: order-preserving rows, tokenizer in rows, out-of-vocabulary words named', async () => {
  const { tok } = await ctx();
  const ids = worldTokenIds(tok);
  const vocab = new CompactVocab(ids);
  const wrapped = vocab.wrapTokenizer(tok);
  assert.is(wrapped.eotId, vocab.size - 1);
  assert.is(wrapped.sotId, vocab.size - 2);
  assert.is(wrapped.vocabSize, vocab.size);
  const text = 'a photo of a red circle.';
  const [row] = wrapped.tokenize(text);
  const [plain] = tok.tokenize(text);
  assert.equal([...row!], [...plain!].map((id) => vocab.row(id)));
  assert.is(ClipModel.eotPositions({ ids: row!, rows: 1, length: 77 })[0], ClipModel.eotPositions({ ids: plain!, rows: 1, length: 77 })[0]);
  assert.is(wrapped.decode(wrapped.encode(text)), tok.decode(tok.encode(text)));
  try {
    wrapped.tokenize('a photo of a purple zebra.');
    assert.unreachable('zebra is not a world word');
  } catch (e) {
    assert.instance(e, OutOfVocabularyError);
    assert.is((e as OutOfVocabularyError).word, 'zebra');
    assert.match((e as Error).message, /"zebra" \(in "a photo of a purple zebra\."\) is not in this model's vocabulary/);
  }
  const table = Float32Array.from({ length: vocab.size * 2 }, (_, i) => i + 1);
  assert.equal(vocab.compactEmbedding(vocab.expandEmbedding(table, 2), 2), table);
  assert.throws(() => new CompactVocab([3, 3]), /appears twice/);
  assert.throws(() => vocab.mapIds([ids[1]!, 49000]), /token id 49000 \(position 1\)/);
});

test('length groups: optimal contiguous split of sorted caption lengths', () => {
  assert.equal(lengthGroups([2, 2, 3, 10, 10], 2), [[0, 3], [3, 5]]);
  assert.equal(lengthGroups([2, 2, 3, 10, 10], 4), [[0, 2], [2, 3], [3, 5]]);
  assert.equal(lengthGroups([7, 7, 7, 7], 4), [[0, 4]], 'no group that saves nothing');
  assert.equal(lengthGroups([5], 3), [[0, 1]]);
  // Brute force over all splits of a random sorted list.
  const xs = [3, 4, 4, 6, 9, 11, 12, 12, 20, 29];
  const padded = (gs: [number, number][]) => gs.reduce((c, [a, b]) => c + (b - a) * xs[b - 1]!, 0);
  let bestCost = Infinity;
  for (let mask = 0; mask < 1 << (xs.length - 1); mask++) {
    if (new Array(xs.length - 1).fill(0).filter((_, i) => mask & (1 << i)).length > 2) continue;
    const gs: [number, number][] = [];
    let a = 0;
    for (let i = 1; i < xs.length; i++) if (mask & (1 << (i - 1))) { gs.push([a, i]); a = i; }
    gs.push([a, xs.length]);
    bestCost = Math.min(bestCost, padded(gs));
  }
  const got = lengthGroups(xs, 3);
  assert.ok(got.length <= 3);
  assert.is(padded(got), bestCost);
  assert.is(got[0]![0], 0);
  assert.is(got.at(-1)![1], xs.length);
});

test('weight decay only on weight matrices', () => {
  const decayed = clipTensorSpec(worldClipConfig(TINY.shape, 10)).filter((s) => decays(s.name)).map((s) => s.name);
  assert.ok(decayed.every((n) => /weight$|proj(ection)?$/.test(n) && !/ln_|embedding/.test(n)));
  assert.ok(decayed.includes('visual.conv1.weight') && decayed.includes('text_projection') && decayed.includes('transformer.resblocks.0.attn.in_proj_weight'));
  assert.not.ok(decays('logit_scale') || decays('token_embedding.weight') || decays('visual.ln_post.weight') || decays('transformer.resblocks.0.mlp.c_fc.bias'));
});

test('a diverging run stops with a clear message and keeps the last good checkpoint', async () => {
  const { gpu, tok } = await ctx();
  const dir = join(root, 'nan');
  // Step 1 runs at lr 0 (warmup from 0), step 2 at 1e38: its update overflows.
  const o: PretrainOptions = { ...TINY, lr: 1e38, warmupSteps: 1, checkpointEvery: 1, logEvery: 1, evalEvery: 0 };
  const err = await pretrain(gpu, tok, o, { out: dir }).then(() => null, (e: Error) => e);
  assert.instance(err, PretrainDivergedError);
  assert.match(err!.message, /^step (\d+): (loss|the update left non-finite weights).*: training diverged; stopped without saving; the last good checkpoint \(step (\d+)\) is kept/);
  const [, bad, kept] = /^step (\d+):.*\(step (\d+)\)/.exec(err!.message)!;
  assert.is(Number(kept), Number(bad) - 1);
  const ck = await loadCheckpoint(join(dir, 'checkpoint.safetensors'));
  assert.is(ck.state.step, Number(kept));
  for (const [name, t] of ck.tensors) assert.ok(t.data.every(Number.isFinite), `${name} finite`);
});

test('cliptune pretrain: SIGINT saves a checkpoint and exits 130; --resume finishes', async () => {
  const dir = join(root, 'cli');
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  // Under Deno, execPath is deno itself, which runs scripts through `deno run`.
  const isDeno = 'Deno' in globalThis;
  const launcher = isDeno ? ['run', '-A', '--quiet', main] : [main];
  // Deno's child_process reports exit status 130 (128 + SIGINT) as the signal, with code null.
  const interrupted = (code: number | null, signal: string | null) => code === 130 || (isDeno && code === null && signal === 'SIGINT');
  const args = ['pretrain', '--out', dir, '--image-size', '16', '--patch', '8', '--vision-width', '64', '--vision-layers', '1',
    '--text-width', '64', '--text-layers', '1', '--embed', '32', '--batch', '8', '--warmup', '2', '--log-every', '2',
    '--eval-every', '0', '--checkpoint-every', '1000', '--test-per-class', '0'];
  const run = (extra: string[], interrupt: boolean) => new Promise<{ code: number | null; signal: string | null; err: string }>((resolve) => {
    const child = spawn(process.execPath, [...launcher, ...args, ...extra], { env: { ...process.env, EGL_PLATFORM: 'surfaceless', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code, signal) => resolve({ code, signal, err }));
    if (interrupt) {
      // Interrupt once steps are being logged (the log gets lines from step 2 on).
      const poll = setInterval(() => {
        if (existsSync(join(dir, 'log.jsonl')) && readFileSync(join(dir, 'log.jsonl'), 'utf8').length > 0) {
          clearInterval(poll);
          child.kill('SIGINT');
        }
      }, 100);
      child.on('exit', () => clearInterval(poll));
    }
  });
  const first = await run(['--steps', '400'], true);
  assert.ok(interrupted(first.code, first.signal), `exit ${first.code} ${first.signal}: ${first.err}`);
  assert.match(first.err, /stopping after this step and saving a checkpoint/);
  assert.match(first.err, /stopped at step (\d+)\/400; checkpoint saved to .*checkpoint\.safetensors \(continue with --resume\)/);
  const at = (await loadCheckpoint(join(dir, 'checkpoint.safetensors'))).state.step;
  assert.ok(at >= 2 && at < 400, `stopped at ${at}`);
  const bad = await run(['--steps', '300', '--resume'], false);
  assert.is(bad.code, 1);
  assert.match(bad.err, /other options \(steps: 400\)/);
  // Finish quickly: the run's options are in the checkpoint; nothing else is needed.
  const rest = await new Promise<{ code: number | null; signal: string | null; out: string; err: string }>((resolve) => {
    const child = spawn(process.execPath, [...launcher, 'pretrain', '--out', dir, '--resume'], { env: { ...process.env, EGL_PLATFORM: 'surfaceless', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      // Only a few steps are needed to show the resume works: stop it again.
      if (/resuming .* at step/.test(err) && !child.killed) setTimeout(() => child.kill('SIGINT'), 300);
    });
    child.on('exit', (code, signal) => resolve({ code, signal, out, err }));
  });
  assert.ok(interrupted(rest.code, rest.signal), `exit ${rest.code} ${rest.signal}: ${rest.err}`);
  assert.match(rest.err, new RegExp(`resuming .*checkpoint\\.safetensors at step ${at}/400`));
  assert.ok((await loadCheckpoint(join(dir, 'checkpoint.safetensors'))).state.step > at);
});

test('CLI arguments: defaults, --quick, overrides, errors', () => {
  const d = parsePretrainArgs(['--out', 'x']);
  assert.equal(d.options, PRETRAIN_DEFAULTS);
  const q = parsePretrainArgs(['--out', 'x', '--quick', '--steps', '70', '--patch', '4', '--test-domains', 'plain,sketch']);
  assert.is(q.options!.steps, 70);
  assert.is(q.options!.batch, 64);
  assert.is(q.options!.shape.patchSize, 4);
  assert.equal(q.options!.finalEvalDomains, ['plain', 'sketch']);
  assert.is(PRETRAIN_DEFAULTS.shape.patchSize, 8, 'defaults untouched');
  assert.is(parsePretrainArgs(['--out', 'x', '--resume']).options, null);
  assert.throws(() => parsePretrainArgs([]), /--out DIR is required/);
  assert.throws(() => parsePretrainArgs(['--out', 'x', '--batch', '1']), /batch must be at least 2/);
  assert.throws(() => parsePretrainArgs(['--out', 'x', '--vision-width', '100']), /multiple of 64/);
  assert.throws(() => parsePretrainArgs(['--out', 'x', '--test-domains', 'plain,watercolour']), /unknown domain "watercolour"/);
  assert.throws(() => parsePretrainArgs(['--out', 'x', '--lr', 'fast']), /--lr must be a number/);
  assert.throws(() => parsePretrainArgs(['--out', 'x', '--bogus']), /bogus/);
});

test.run();
