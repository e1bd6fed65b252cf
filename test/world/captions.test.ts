// Captions: every template and prompt phrase the methods use occurs, everything fits CLIP's 77
// tokens, long captions put the class name where a 16-token CoOp context ends, and the exposed
// vocabulary covers every token.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ClipTokenizer } from '../../src/clip/tokenizer.js';
import { loadClipTokenizer } from '../../src/clip/tokenizer-node.js';
import {
  ALL_TEMPLATES, CAPTION_FAMILIES, COOP_PLACEHOLDER, COOP_TEMPLATE, IMAGENET_TEMPLATES_SELECT, OPENAI_IMAGENET_TEMPLATES,
  PROMPTSRC_TEMPLATES, PROMPT_INIT_PHRASES, WORLD_CLASSES, allCombinations, captionScene, fillTemplate, keyedRng,
  sampleScene, templateFits, worldPairCaption, worldTexts, worldTokenIds, type CaptionFamily,
} from '../../src/data/world/index.js';

let tok: ClipTokenizer;
const N = 30000;
interface Sample { caption: string; family: CaptionFamily; classes: string[] }
let samples: Sample[] = [];

test.before(async () => {
  tok = await loadClipTokenizer();
  samples = [];
  for (let i = 0; i < N; i++) {
    const c = worldPairCaption(i, { seed: 0 });
    samples.push({ caption: c.caption, family: c.family, classes: c.scene.objects.map((o) => `${o.colour} ${o.shape}`) });
  }
});

test('template lists: 80 OpenAI, 7 select, PromptSRC 60 starting with CoOp\'s', () => {
  assert.is(OPENAI_IMAGENET_TEMPLATES.length, 80);
  assert.is(new Set(OPENAI_IMAGENET_TEMPLATES).size, 80);
  assert.is(IMAGENET_TEMPLATES_SELECT.length, 7);
  assert.is(PROMPTSRC_TEMPLATES.length, 60);
  assert.is(PROMPTSRC_TEMPLATES[0], 'a photo of a {}.');
  assert.is(PROMPTSRC_TEMPLATES[1], 'a bad photo of a {}.');
  assert.is(PROMPTSRC_TEMPLATES[59], 'itap of the {}.');
  for (const t of IMAGENET_TEMPLATES_SELECT) assert.ok((OPENAI_IMAGENET_TEMPLATES as readonly string[]).includes(t), t);
  assert.is(ALL_TEMPLATES.length, 80);
  assert.is(ALL_TEMPLATES[0], COOP_TEMPLATE);
});

test('every template (CoOp, the 7, the 80, hence the 60) occurs filled with a class', () => {
  const texts = new Set(samples.map((s) => s.caption));
  const missing = ALL_TEMPLATES.filter((t) => !samples.some((s) => s.classes.some((c) => texts.has(fillTemplate(t, c)))));
  assert.equal(missing, [], `templates never produced: ${missing.join(' | ')}`);
  // ...and every class appears in the CoOp template itself.
  for (const c of WORLD_CLASSES) assert.ok(texts.has(fillTemplate(COOP_TEMPLATE, c)), c);
});

test('templates are kept truthful', () => {
  const small = sampleScene(keyedRng(0, 't', 1), [{ colour: 'red', shape: 'star', size: 'small' }]);
  const large = sampleScene(keyedRng(0, 't', 2), [{ colour: 'white', shape: 'star', size: 'large' }]);
  const pair = sampleScene(keyedRng(0, 't', 3), [{ colour: 'red', shape: 'star' }, { colour: 'red', shape: 'star' }]);
  assert.ok(templateFits('a photo of the small {}.', small, 'plain'));
  assert.not.ok(templateFits('a photo of the small {}.', large, 'plain'));
  assert.ok(templateFits('a photo of the large {}.', large, 'plain'));
  assert.not.ok(templateFits('a sketch of a {}.', small, 'plain'));
  assert.ok(templateFits('a sketch of a {}.', small, 'sketch'));
  assert.ok(templateFits('a pixelated photo of a {}.', small, 'pixelated'));
  assert.not.ok(templateFits('a black and white photo of a {}.', small, 'plain'));
  assert.ok(templateFits('a black and white photo of a {}.', large, 'plain'));
  assert.not.ok(templateFits('a photo of many {}.', small, 'plain'));
  assert.ok(templateFits('a photo of many {}.', pair, 'plain'));
  assert.ok(templateFits('a origami {}.', small, 'noise'));
});

function contextBeforeClass(caption: string, classes: string[]): number | undefined {
  // Tokens between SOT and the class name, for captions that end with "<class>.".
  for (const c of classes) {
    if (caption.endsWith(` ${c}.`)) return tok.encode(caption.slice(0, -(c.length + 1))).length;
  }
  return undefined;
}

test('token lengths: all within 77; long captions reach the 16-token CoOp context', () => {
  const lengths = samples.map((s) => tok.encode(s.caption).length + 2);
  const max = Math.max(...lengths);
  const mean = lengths.reduce((t, x) => t + x, 0) / lengths.length;
  assert.ok(max <= 77, `longest caption ${max} tokens`);
  const pre = samples.map((s) => contextBeforeClass(s.caption, s.classes));
  const reach16 = pre.filter((n) => n !== undefined && n >= 16).length / N;
  const longOnes = samples.filter((s) => s.family === 'long');
  const longPre = longOnes.map((s) => contextBeforeClass(s.caption, s.classes));
  assert.ok(longPre.every((n) => n !== undefined), 'long captions end with "<class>."');
  const lp = longPre as number[];
  const hist = new Map<number, number>();
  for (const n of lp) hist.set(n, (hist.get(n) ?? 0) + 1);
  console.log(`    tokens with SOT/EOT: mean ${mean.toFixed(1)}, max ${max}; ${(100 * reach16).toFixed(1)}% of captions have >= 16 tokens before a final "<class>."`);
  console.log(`    long family: tokens before the class ${[...hist].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${k}:${v}`).join(' ')}`);
  assert.ok(reach16 >= 0.1, `share reaching 16 context tokens: ${reach16}`);
  assert.ok(lp.filter((n) => n >= 16).length / lp.length >= 0.75);
  assert.ok(Math.max(...lp) <= 30);
  // SOT + 16 + the longest class name + "." + EOT fits easily.
  assert.ok(Math.max(...WORLD_CLASSES.map((c) => tok.encode(c).length)) + 19 <= 77);
});

test('families, "a photo of a" starts, classes and combinations all occur', () => {
  const fam = new Map<string, number>();
  for (const s of samples) fam.set(s.family, (fam.get(s.family) ?? 0) + 1);
  for (const f of CAPTION_FAMILIES) assert.ok((fam.get(f) ?? 0) > 0.02 * N, `${f}: ${fam.get(f)}`);
  console.log(`    families: ${[...fam].map(([k, v]) => `${k} ${((100 * v) / N).toFixed(1)}%`).join(', ')}`);
  const photo = samples.filter((s) => s.caption.startsWith('a photo of a')).length / N;
  assert.ok(photo > 0.15, `"a photo of a" share ${photo}`);
  const mentioned = new Set(samples.flatMap((s) => s.classes));
  assert.is(mentioned.size, allCombinations().length, 'all 144 colour-shape combinations are pretrained');
  for (const s of samples) for (const c of s.classes) {
    if (s.family !== 'attribute' && s.family !== 'pair') assert.ok(s.caption.includes(c), `${s.caption} names ${c}`);
  }
});

test('captions are truthful about domains and sizes', () => {
  for (let i = 0; i < 3000; i++) {
    const c = worldPairCaption(i, { seed: 1 });
    if (/\b(sketch|doodle|outline|drawing|drawn)\b/.test(c.caption)) assert.is(c.domain, 'sketch', c.caption);
    if (/\bstripe/.test(c.caption)) assert.is(c.domain, 'stripes', c.caption);
    if (/\bcheckerboard|checkered\b/.test(c.caption)) assert.is(c.domain, 'checker', c.caption);
    if (/\bpixelated\b/.test(c.caption)) assert.is(c.domain, 'pixelated', c.caption);
    const o = c.scene.objects[0]!;
    if (c.scene.objects.length === 1 && /\bsmall\b/.test(c.caption)) assert.is(o.size, 'small', c.caption);
    if (c.scene.objects.length === 1 && /\blarge\b/.test(c.caption)) assert.is(o.size, 'large', c.caption);
  }
});

test('vocabulary: every caption token, template, init phrase, class name and "X" is in worldTokenIds', () => {
  const ids = worldTokenIds(tok);
  const set = new Set(ids);
  assert.equal(ids, [...set].sort((a, b) => a - b));
  for (const s of samples) for (const id of tok.encode(s.caption)) assert.ok(set.has(id), `${s.caption}: id ${id} (${tok.idToToken(id)})`);
  for (const t of [...ALL_TEMPLATES, ...PROMPT_INIT_PHRASES, ...WORLD_CLASSES, COOP_PLACEHOLDER, 'X X X X red circle.']) {
    for (const id of tok.encode(t)) assert.ok(set.has(id), t);
  }
  assert.ok(set.has(0) && set.has(tok.sotId) && set.has(tok.eotId));
  assert.is(tok.encode(COOP_PLACEHOLDER).length, 1);
  assert.ok(worldTexts().length > 100);
  console.log(`    vocabulary: ${ids.length} token ids`);
  assert.ok(ids.length < 600);
});

test('captions are deterministic and independent of order', () => {
  const a = worldPairCaption(1234, { seed: 5 }).caption;
  for (let i = 0; i < 5; i++) worldPairCaption(i, { seed: 5 });
  assert.is(worldPairCaption(1234, { seed: 5 }).caption, a);
  const scene = sampleScene(keyedRng(0, 'x'), [{ colour: 'red', shape: 'arrow' }]);
  assert.equal(captionScene(scene, 'plain', keyedRng(0, 'c')), captionScene(scene, 'plain', keyedRng(0, 'c')));
});

test.run();
