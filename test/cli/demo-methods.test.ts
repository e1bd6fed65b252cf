// The demo preset's flags per method (src/cli/demo-methods.ts): the step budget as --steps or
// --epochs, learning rates x the factor, and vision prompt counts scaled to the model's patches;
// and the patch count read from a weights file's header.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEMO_LR_FACTOR, VIT_B16_PATCHES, demoFlags, demoMethod, scaledVisionPrompts, type BudgetContext } from '../../src/cli/demo-methods.js';
import { imagePatches } from '../../src/cli/demo.js';
import { METHODS } from '../../src/adapt/registry.js';
import { writeSafetensors } from '../../src/io/safetensors-node.js';
import { TINY_CONFIG, removeDir, tempDir, writeTinyClip } from '../train/helpers.js';

const root = tempDir('demo-methods');
test.after(() => removeDir(root));
const WEIGHTS = fileURLToPath(new URL('../../../weights/world-clip.safetensors', import.meta.url));

const ctx = (patches: number): BudgetContext => ({ steps: 60, lrFactor: DEMO_LR_FACTOR, shots: 16, trainImages: 24 * 16, datasetName: 'World', patches });
const flagsOf = (name: string, patches: number) => demoFlags(demoMethod(name)!, METHODS[name]!, ctx(patches));

test('scaledVisionPrompts: the share of ViT-B/16 196 patches, at least 1', () => {
  assert.is(VIT_B16_PATCHES, 14 * 14);
  assert.is(scaledVisionPrompts(4, 196), 4);
  assert.is(scaledVisionPrompts(16, 196), 16);
  assert.is(scaledVisionPrompts(16, 49), 4); // ViT-B/32 at 224 px
  assert.is(scaledVisionPrompts(4, 49), 1);
  assert.is(scaledVisionPrompts(16, 16), 1); // 16·16/196 = 1.31
  assert.is(scaledVisionPrompts(4, 16), 1); // 0.33, raised to 1
  assert.is(scaledVisionPrompts(8, 256), 10); // ViT-L/14 at 224 px: 10.4
  assert.throws(() => scaledVisionPrompts(0, 16), /official count 0/);
  assert.throws(() => scaledVisionPrompts(4, 2.5), /patch count 2.5/);
});

test('IVLP and Prompt-OT get --vision-tokens, DAPT --n-ctx-vision, scaled to the patches; RPP (shallow) none', () => {
  for (const m of ['ivlp', 'prompt-ot']) {
    assert.is(flagsOf(m, 16).given['vision-tokens'], '1', m);
    assert.is(flagsOf(m, 196).given['vision-tokens'], '4', m);
    assert.not.ok('n-ctx-vision' in flagsOf(m, 16).given, m);
  }
  assert.is(flagsOf('dapt', 16).given['n-ctx-vision'], '1');
  assert.is(flagsOf('dapt', 49).given['n-ctx-vision'], '4');
  assert.is(flagsOf('dapt', 196).given['n-ctx-vision'], '16');
  for (const m of ['coop', 'prolip', 'rpp', 'linear-probe']) {
    const f = flagsOf(m, 16);
    assert.not.ok('vision-tokens' in f.given || 'n-ctx-vision' in f.given, m);
    assert.equal(f.missing, [], m);
  }
});

test('the step budget: --epochs from Dassl steps per epoch, or --steps; official lr x the factor', () => {
  // 384 images in batches of 32: 12 steps per epoch, 60 steps = 5 epochs.
  const coop = flagsOf('coop', 16);
  assert.is(coop.given.epochs, '5');
  assert.is(coop.given['batch-size'], '32');
  assert.is(coop.steps, 60);
  assert.is(Number(coop.given.lr), 0.002 * DEMO_LR_FACTOR);
  assert.is(coop.given['crop-min'], '1');
  // Prompt-OT's 40-epoch cosine evaluated at 30 keeps its ratio: 5 epochs of a 7-epoch cosine.
  const pot = flagsOf('prompt-ot', 16);
  assert.is(pot.given.epochs, '5');
  assert.is(pot.given['schedule-epochs'], '7');
  const prolip = flagsOf('prolip', 16);
  assert.is(prolip.given.steps, '60');
  assert.is(prolip.given.views, '16');
  assert.ok(prolip.args.includes('--steps') && !prolip.args.includes('--epochs'));
});

test('imagePatches: rows of the positional embedding less the class token, from the header', async () => {
  assert.is(await imagePatches(WEIGHTS), 16);
  const tiny = join(root, 'tiny.safetensors');
  await writeTinyClip(tiny);
  const g = TINY_CONFIG.image.resolution / TINY_CONFIG.image.patchSize;
  assert.is(await imagePatches(tiny), g * g);
  const other = join(root, 'other.safetensors');
  await writeSafetensors(other, { 'x.weight': { dtype: 'F32', shape: [2], data: new Float32Array(2) } });
  try {
    await imagePatches(other);
    assert.unreachable('should refuse');
  } catch (e) {
    assert.match((e as Error).message, /other\.safetensors has no vision positional embedding/);
  }
});

test.run();
