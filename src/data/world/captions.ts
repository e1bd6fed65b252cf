// Captions for pretraining: true descriptions of a scene, in varied phrasings built from its
// attributes. Grammar (one family drawn per caption; weights in FAMILY_WEIGHTS):
//
//   coop         "a photo of a {C}."                                  (CoOp's template, verbatim)
//   select       one of the 7 IMAGENET_TEMPLATES_SELECT filled with C
//   ensemble     one of the 80 OpenAI ImageNet templates filled with C
//   descriptive  HEAD NP [DIRECTION] [POSITION] [BACKGROUND] "."
//                e.g. "a small red triangle in the top left corner.", "a sketch of a red triangle.",
//                "there is a blue star on a striped background."
//   long         OPENER "," CLAUSE ("," CLAUSE)* "," LEAD NP "."   with 14-26 tokens before C, the
//                class name last: the shape of a CoOp prompt with 16 context tokens
//                ("X X ... X {C}." -> SOT, 16 slots, C, ".", EOT)
//   attribute    colour and shape apart: "a triangle in red.", "a red shape, a triangle."
//   bare         "{C}." or "{C}"
//   pair         two objects: "a red triangle and a blue circle.", "a red triangle to the left of a
//                blue circle.", "two red triangles.", "a photo of many red triangle." ...
//
// C = "colour shape" (a class name), NP = article + optional size + C. Templates are kept truthful:
// those naming a size ("the small", "a large", "close-up") are used only for objects of that size,
// "sketch/drawing/doodle" only in the sketch domain, "pixelated" only in the pixelated domain,
// "low resolution/blurry/jpeg corrupted" only in the pixelated or noise domains, "bright/dark photo" only on light/dark
// backgrounds, "black and white" only for white, black and gray objects, and "many" only for two
// objects of the same class; the other templates (origami, video game, tattoo...) are neutral
// boilerplate, true of nothing in particular, as for real CLIP on most photos.
import type { Rng } from '../../clip/rng.js';
import { isAchromatic, luma, pluralShape, positionGrid, type Domain, type Position } from './attributes.js';
import { pick, pickWeighted } from './keyed-rng.js';
import type { WorldObject, WorldScene } from './scene.js';
import { COOP_TEMPLATE, IMAGENET_TEMPLATES_SELECT, OPENAI_IMAGENET_TEMPLATES, fillTemplate } from './templates.js';

export const CAPTION_FAMILIES = ['coop', 'select', 'ensemble', 'descriptive', 'long', 'attribute', 'bare', 'pair'] as const;
export type CaptionFamily = (typeof CAPTION_FAMILIES)[number];

export interface Caption {
  text: string;
  family: CaptionFamily;
}

/** Relative weights of the single-object families (two-object scenes always use `pair`). */
export const FAMILY_WEIGHTS: Readonly<Record<Exclude<CaptionFamily, 'pair'>, number>> = {
  coop: 0.14,
  select: 0.08,
  ensemble: 0.14,
  descriptive: 0.34,
  long: 0.2,
  attribute: 0.05,
  bare: 0.05,
};

// ---------------------------------------------------------------------------------------------
// Phrase pools. Every word a caption can contain is in one of these lists, in a template, or in a
// colour/shape/direction name: worldTextFragments() enumerates them for the vocabulary.

export const POSITION_PHRASES: Readonly<Record<Position, readonly string[]>> = {
  'top left': ['in the top left corner', 'at the top left', 'in the upper left'],
  top: ['at the top', 'near the top', 'in the upper middle'],
  'top right': ['in the top right corner', 'at the top right', 'in the upper right'],
  left: ['on the left', 'on the left side', 'at the left'],
  center: ['in the center', 'in the middle', 'right in the center'],
  right: ['on the right', 'on the right side', 'at the right'],
  'bottom left': ['in the bottom left corner', 'at the bottom left', 'in the lower left'],
  bottom: ['at the bottom', 'near the bottom', 'in the lower middle'],
  'bottom right': ['in the bottom right corner', 'at the bottom right', 'in the lower right'],
};

export const DIRECTION_PHRASES: Readonly<Record<string, readonly string[]>> = {
  right: ['pointing right', 'pointing to the right'],
  left: ['pointing left', 'pointing to the left'],
  up: ['pointing up', 'pointing upward'],
  down: ['pointing down', 'pointing downward'],
};

/** Words for the background's brightness (never a colour name, so colour words mean objects). */
export function backgroundTone(scene: WorldScene): 'dark' | 'light' | 'muted' {
  const l = luma(scene.background);
  return l < 0.35 ? 'dark' : l > 0.65 ? 'light' : 'muted';
}

const BACKGROUND_PHRASES: Readonly<Record<Domain, readonly string[]>> = {
  plain: ['on a plain {tone} background', 'on a {tone} background', 'against a plain {tone} background'],
  sketch: ['on a plain {tone} background', 'on {tone} paper', 'drawn on a {tone} background'],
  noise: ['on a noisy background', 'with a lot of noise', 'covered in random noise'],
  stripes: ['on a striped background', 'on stripes', 'in front of diagonal stripes', 'on a background of stripes'],
  checker: ['on a checkered background', 'on a checkerboard', 'on a checkerboard pattern'],
  gradient: ['on a gradient background', 'on a smooth gradient', 'on a softly shaded background'],
  pixelated: ['made of big square pixels', 'in low resolution', 'on a {tone} background'],
};

/** Heads replacing "a photo of" in the shifted styles. */
const STYLE_HEADS: Readonly<Partial<Record<Domain, readonly string[]>>> = {
  sketch: ['a sketch of', 'an outline of', 'a line drawing of', 'a simple drawing of', 'a doodle of'],
  noise: ['a noisy photo of', 'a grainy image of', 'a noisy picture of'],
  pixelated: ['a pixelated photo of', 'a pixelated image of', 'a low resolution image of'],
  stripes: ['a photo with stripes behind'],
  checker: ['a checkered picture of'],
  gradient: ['a shaded picture of'],
};

/** Neutral heads: `true` when an article must follow. */
const HEADS: readonly (readonly [string, boolean])[] = [
  ['', true], ['', true], ['a photo of', true], ['an image of', true], ['a picture of', true], ['there is', true],
  ['this is', true], ['here is', true], ['i see', true], ['one', false], ['a single', false], ['a rendering of', true],
];

const LONG_OPENERS: readonly string[] = [
  'in this simple synthetic picture',
  'in this simple computer generated image',
  'in this picture from a toy world of shapes',
  'looking closely at this square image',
  'a photo of a synthetic scene',
  'this is a very simple picture of a made up world',
  'here is an image from a synthetic data set',
];
// No size words here: "small" and "large" only ever describe the object.
const LONG_CLAUSES: readonly string[] = [
  'with nothing else in view',
  'where everything is kept very simple',
  'with no other objects around it',
  'and there is very little detail',
  'made by a short computer program',
  'without any text or people',
  'as clean as it could possibly be',
  'which was rendered for a learning task',
  // Short ones, to fill the last few tokens up to the target.
  'at first glance',
  'as you can see',
  'in fact',
]
/** Leads: the words right before the noun phrase (which then ends the caption). */
const LONG_LEADS: readonly string[] = [
  'we can clearly see', 'there is', 'you can see', 'the only object is', 'the main shape is',
  'the thing to recognize is', 'the picture shows',
];
const SKETCH_LEADS: readonly string[] = ['someone has sketched', 'someone has drawn the outline of'];

const ATTRIBUTE_FORMS: readonly string[] = ['a {shape} in {colour}.', 'a {colour} shape, a {shape}.', 'a {shape} that is {colour}.', 'the shape is a {shape} and it is {colour}.'];

const PAIR_FORMS_DIFFERENT: readonly string[] = [
  '{A} and {B}.', 'a photo of {A} and {B}.', '{A} {rel} {B}.', '{A} {posA} and {B} {posB}.', 'two shapes: {A} and {B}.',
  '{head} {A} and {B}.',
];
const PAIR_FORMS_SAME: readonly string[] = [
  'two {colour} {plural}.', 'a pair of {colour} {plural}.', 'two {size} {colour} {plural}.', 'a photo of two {colour} {plural}.',
];
const RELATIONS = { left: 'to the left of', right: 'to the right of', above: 'above', below: 'below' } as const;

/** Fixed words glued in by code rather than taken from a pool (kept here for the vocabulary). */
const GLUE = ['a', 'an', 'one', 'two', 'and', 'the', 'shapes', ':', ',', '.', 'small', 'large'];

// ---------------------------------------------------------------------------------------------

export function className(o: Pick<WorldObject, 'colour' | 'shape'>): string {
  return `${o.colour} ${o.shape}`;
}

function article(next: string): string {
  return /^[aeiou]/.test(next) ? 'an' : 'a';
}

function withArticle(phrase: string): string {
  return `${article(phrase)} ${phrase}`;
}

function fillTone(phrase: string, scene: WorldScene): string {
  return phrase.replace('{tone}', backgroundTone(scene));
}

/** Whether a template is true of a one-object scene (see the header), or of a same-class pair for "many". */
export function templateFits(template: string, scene: WorldScene, domain: Domain): boolean {
  const objs = scene.objects;
  const o = objs[0]!;
  const single = objs.length === 1;
  if (/\bmany\b/.test(template)) return objs.length === 2 && className(objs[0]!) === className(objs[1]!);
  if (!single) return false;
  if (/\bsmall\b/.test(template) && o.size !== 'small') return false;
  if (/\b(large|big|close-up)\b/.test(template) && o.size !== 'large') return false;
  if (/\b(sketch|drawing|doodle)\b/.test(template) && domain !== 'sketch') return false;
  if (/\bpixelated\b/.test(template) && domain !== 'pixelated') return false;
  if (/\b(low resolution|blurry|jpeg)\b/.test(template) && domain !== 'pixelated' && domain !== 'noise') return false;
  if (/\bhard to see\b/.test(template) && o.size !== 'small' && domain !== 'noise') return false;
  if (/\bbright photo\b/.test(template) && backgroundTone(scene) !== 'light') return false;
  if (/\bdark photo\b/.test(template) && backgroundTone(scene) !== 'dark') return false;
  if (/\bblack and white\b/.test(template) && !isAchromatic(o.colour)) return false;
  return true;
}

function pickTemplate(rng: Rng, list: readonly string[], scene: WorldScene, domain: Domain): string {
  for (let tries = 0; tries < 64; tries++) {
    const t = pick(rng, list);
    if (templateFits(t, scene, domain)) return t;
  }
  return COOP_TEMPLATE;
}

function nounPhrase(rng: Rng, o: WorldObject, pSize: number, pDirection: number): string {
  let np = className(o);
  if (rng.bernoulli(pSize)) np = `${o.size} ${np}`;
  if (o.direction && rng.bernoulli(pDirection)) np += ` ${pick(rng, DIRECTION_PHRASES[o.direction]!)}`;
  return np;
}

function descriptive(rng: Rng, scene: WorldScene, domain: Domain): string {
  const o = scene.objects[0]!;
  const styled = STYLE_HEADS[domain];
  let head: string;
  let needArticle: boolean;
  if (styled && rng.bernoulli(domain === 'sketch' || domain === 'noise' || domain === 'pixelated' ? 0.6 : 0.25)) {
    head = pick(rng, styled);
    needArticle = true;
  } else {
    [head, needArticle] = pick(rng, HEADS);
  }
  const np = nounPhrase(rng, o, 0.5, 0.6);
  let text = (head ? `${head} ` : '') + (needArticle ? withArticle(np) : np);
  if (rng.bernoulli(0.5)) text += ` ${pick(rng, POSITION_PHRASES[o.position])}`;
  const pBg = domain === 'plain' || domain === 'sketch' ? 0.3 : 0.55;
  if (rng.bernoulli(pBg)) text += ` ${fillTone(pick(rng, BACKGROUND_PHRASES[domain]), scene)}`;
  return rng.bernoulli(0.9) ? `${text}.` : text;
}

// Words of the pools that CLIP's BPE splits, with their extra token counts (checked by
// test/world/captions.test.ts through the token counts of long captions).
const EXTRA_TOKENS: Readonly<Record<string, number>> = {
  computer: 1, checkered: 1, checkerboard: 2, diagonal: 1, pixelated: 1, grainy: 1,
};

/** CLIP token count of pool text: one per word and comma, plus the known splits. */
function roughTokens(text: string): number {
  let n = text.match(/,/g)?.length ?? 0;
  for (const w of text.split(' ')) if (w) n += 1 + (EXTRA_TOKENS[w.replace(/,$/, '')] ?? 0);
  return n;
}

/**
 * OPENER (, PIECE)* , LEAD NP "." where the pieces (the background, the position, filler clauses)
 * are taken in random order, each only while the text before the class name stays within a target
 * drawn from 16..22 tokens; so most long captions put the class name right after 16 to 23 tokens.
 */
function long(rng: Rng, scene: WorldScene, domain: Domain): string {
  const o = scene.objects[0]!;
  const target = rng.randint(16, 23);
  const lead = pick(rng, domain === 'sketch' && rng.bernoulli(0.5) ? SKETCH_LEADS : LONG_LEADS);
  const size = rng.bernoulli(0.5) ? `${o.size} ` : '';
  const npHead = `${article(size || o.colour)} ${size}`.trimEnd(); // "a small" / "an" / "a"
  const parts: string[] = [pick(rng, LONG_OPENERS)];
  const assemble = () => `${parts.join(', ')}, ${lead} ${npHead}`;
  const pieces = [fillTone(pick(rng, BACKGROUND_PHRASES[domain]), scene), pick(rng, POSITION_PHRASES[o.position]), ...LONG_CLAUSES];
  while (pieces.length > 0 && roughTokens(assemble()) < target) {
    const piece = pieces.splice(rng.randint(0, pieces.length), 1)[0]!;
    parts.push(piece);
    if (roughTokens(assemble()) > target + 1) parts.pop();
  }
  return `${assemble()} ${className(o)}.`;
}

function attribute(rng: Rng, scene: WorldScene): string {
  const o = scene.objects[0]!;
  // These forms are ours, so they take English articles ("an arrow", "an orange shape").
  return pick(rng, ATTRIBUTE_FORMS).replace('{shape}', o.shape).replace('{colour}', o.colour).replace(/\ba (?=[aeiou])/g, 'an ');
}

function relation(a: WorldObject, b: WorldObject, rng: Rng): string {
  const pa = positionGrid(a.position), pb = positionGrid(b.position);
  const horizontal = Math.abs(pa.gx - pb.gx) === 2;
  const vertical = Math.abs(pa.gy - pb.gy) === 2;
  if (horizontal && (!vertical || rng.bernoulli(0.5))) return pa.gx < pb.gx ? RELATIONS.left : RELATIONS.right;
  return pa.gy < pb.gy ? RELATIONS.above : RELATIONS.below;
}

function pair(rng: Rng, scene: WorldScene, domain: Domain): string {
  let [a, b] = scene.objects as [WorldObject, WorldObject];
  if (rng.bernoulli(0.5)) [a, b] = [b, a];
  if (className(a) === className(b)) {
    if (rng.bernoulli(0.2)) return fillTemplate('a photo of many {}.', className(a));
    return pick(rng, PAIR_FORMS_SAME)
      .replace('{colour}', a.colour)
      .replace('{plural}', pluralShape(a.shape))
      .replace('{size}', a.size === b.size ? a.size : 'small');
  }
  const styled = STYLE_HEADS[domain];
  const form = pick(rng, PAIR_FORMS_DIFFERENT);
  const head = styled && rng.bernoulli(0.6) ? pick(rng, styled) : pick(rng, ['a photo of', 'an image of', 'a picture of']);
  return form
    .replace('{head}', head)
    .replace('{A}', withArticle(nounPhrase(rng, a, 0.2, 0.3)))
    .replace('{B}', withArticle(nounPhrase(rng, b, 0.2, 0.3)))
    .replace('{rel}', relation(a, b, rng))
    .replace('{posA}', pick(rng, POSITION_PHRASES[a.position]))
    .replace('{posB}', pick(rng, POSITION_PHRASES[b.position]));
}

/** One caption for `scene` drawn in `domain`, its family drawn by FAMILY_WEIGHTS. */
export function captionScene(scene: WorldScene, domain: Domain, rng: Rng): Caption {
  if (scene.objects.length === 2) return { text: pair(rng, scene, domain), family: 'pair' };
  const families = Object.keys(FAMILY_WEIGHTS) as Exclude<CaptionFamily, 'pair'>[];
  const family = families[pickWeighted(rng, families.map((f) => FAMILY_WEIGHTS[f]))]!;
  const c = className(scene.objects[0]!);
  switch (family) {
    case 'coop': return { text: fillTemplate(COOP_TEMPLATE, c), family };
    case 'select': return { text: fillTemplate(pickTemplate(rng, IMAGENET_TEMPLATES_SELECT, scene, domain), c), family };
    case 'ensemble': return { text: fillTemplate(pickTemplate(rng, OPENAI_IMAGENET_TEMPLATES, scene, domain), c), family };
    case 'descriptive': return { text: descriptive(rng, scene, domain), family };
    case 'long': return { text: long(rng, scene, domain), family };
    case 'attribute': return { text: attribute(rng, scene), family };
    case 'bare': return { text: rng.bernoulli(0.5) ? `${c}.` : c, family };
  }
}

/**
 * Every text fragment a caption can be assembled from (pools, templates, glue words), without the
 * colour/shape/direction names: the vocabulary is the union of their BPE ids with those names'.
 */
export function captionFragments(): string[] {
  const out = new Set<string>(GLUE);
  const add = (list: Iterable<string>) => {
    for (const s of list) out.add(s.replace(/\{[a-zA-Z]*\}/g, ' ').replace(/\s+/g, ' ').trim());
  };
  add(Object.values(POSITION_PHRASES).flat());
  add(Object.values(DIRECTION_PHRASES).flat());
  add(Object.values(BACKGROUND_PHRASES).flat());
  add(['dark', 'light', 'muted']);
  add(Object.values(STYLE_HEADS).flat());
  add(HEADS.map(([h]) => h));
  add(LONG_OPENERS);
  add(LONG_CLAUSES);
  add(LONG_LEADS);
  add(SKETCH_LEADS);
  add(ATTRIBUTE_FORMS);
  add(PAIR_FORMS_DIFFERENT);
  add(PAIR_FORMS_SAME);
  add(Object.values(RELATIONS));
  add(['a photo of many {}.']);
  out.delete('');
  return [...out];
}
