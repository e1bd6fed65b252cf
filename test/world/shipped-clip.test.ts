// The shipped world CLIP (weights/world-clip.safetensors), loaded the way users load any checkpoint
// (loadClip): the compact vocabulary and the activation come from the file itself, and zero-shot
// accuracy on freshly generated test images (world seed 0, 32 per class) equals the numbers
// recorded by the pretraining run (docs/pretrain/full-run/results.json), image for image, and
// clears the bar of 3x chance on both halves, plain and domain-shifted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getGpu } from '../../src/gpu/index.js';
import { loadClip, type LoadedClip } from '../../src/clip/load-node.js';
import { OutOfVocabularyError } from '../../src/clip/compact-vocab.js';
import { worldZeroShot } from '../../src/train/world-eval.js';

const repo = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
const WEIGHTS = repo('weights/world-clip.safetensors');

interface Recorded {
  finalEval: { domain: string; perClass: number; base: number; novel: number; all: number; images: number }[];
}
const recorded = JSON.parse(readFileSync(repo('docs/pretrain/full-run/results.json'), 'utf8')) as Recorded;

let loaded: LoadedClip;
test.before(async () => {
  loaded = await loadClip(await getGpu(), WEIGHTS);
});
test.after(() => loaded?.model.dispose());

test('loads as an ordinary checkpoint: compact vocabulary, activation from the file, OpenAI naming', () => {
  assert.is(loaded.naming, 'openai');
  assert.is(loaded.model.config.activation, 'quick_gelu');
  assert.is(loaded.model.config.activationSource, 'option');
  assert.equal(loaded.notes, [], 'no "activation unknown" note for cliptune exports');
  assert.ok(loaded.vocab);
  assert.is(loaded.model.config.text.vocabSize, loaded.vocab!.size);
  assert.is(loaded.model.config.image.resolution, 32);
  // The wrapped tokenizer emits row numbers of the compact table; unknown words fail by name.
  const row = loaded.tokenizer.encode('a photo of a red circle.');
  assert.ok(row.every((id) => id >= 0 && id < loaded.vocab!.size));
  assert.throws(() => loaded.tokenizer.encode('a photo of a zebra.'), (e: unknown) => e instanceof OutOfVocabularyError && /"zebra"/.test((e as Error).message));
});

for (const domain of ['plain', 'sketch']) {
  test(`zero-shot on fresh ${domain} test images equals the recorded run and clears 3x chance`, async () => {
    const want = recorded.finalEval.find((r) => r.domain === domain);
    assert.ok(want, `results.json records ${domain}`);
    const got = await worldZeroShot(await getGpu(), loaded.model, loaded.tokenizer, { seed: 0, split: 'test', perClass: want!.perClass, domain: domain as 'plain' });
    assert.is(got.images, want!.images);
    // Same images, same weights: the same predictions, so the same counts (768 images per half).
    assert.is(Math.round((got.base * 768) / 100), Math.round((want!.base * 768) / 100), `base ${got.base} vs recorded ${want!.base}`);
    assert.is(Math.round((got.novel * 768) / 100), Math.round((want!.novel * 768) / 100), `novel ${got.novel} vs recorded ${want!.novel}`);
    assert.is(Math.round((got.all * 1536) / 100), Math.round((want!.all * 1536) / 100), `all ${got.all} vs recorded ${want!.all}`);
    const chance = 100 / 24;
    assert.ok(got.base >= 3 * chance && got.novel >= 3 * chance, `${domain}: base ${got.base}% novel ${got.novel}% vs 3x chance ${3 * chance}%`);
  });
}

test.run();
