// The world's two entry points: classification images (class, split, index) and the pretraining
// stream of (image, caption) pairs. Both are pure functions of (seed, key): see keyed-rng.ts.
import type { RgbImage } from '../../clip/rgb-image.js';
import { DOMAINS, isDomain, type Colour, type Domain, type Shape } from './attributes.js';
import { captionScene, type Caption, type CaptionFamily } from './captions.js';
import { NUM_CLASSES, WORLD_CLASS_INFO, allCombinations, type WorldClass } from './classes.js';
import { checkSeed, keyedRng, pick, pickWeighted } from './keyed-rng.js';
import { renderScene, type RenderOptions } from './render.js';
import { sampleScene, type WorldScene } from './scene.js';

/**
 * Version of the generator's output. Bump it whenever any image or caption for a given seed and key
 * changes (attribute tables, geometry, rendering, caption grammar, key layout): datasets record it.
 */
export const WORLD_VERSION = 1;

export const DEFAULT_IMAGE_SIZE = 32;

export type Split = 'train' | 'val' | 'test';
export const SPLITS: readonly Split[] = ['train', 'val', 'test'];

export interface ClassImageOptions {
  seed: number;
  /** Label in the 48-class list, or the class itself. */
  classIndex: number;
  split: Split;
  /** Image number within (class, split): any non-negative integer. */
  index: number;
  domain?: Domain;
  size?: number;
  render?: RenderOptions;
}

export interface ClassImage {
  image: RgbImage;
  scene: WorldScene;
  cls: WorldClass;
  domain: Domain;
}

function checkIndex(index: number, what: string): void {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`${what} must be a non-negative integer, got ${index}`);
}

function checkDomain(domain: string): asserts domain is Domain {
  if (!isDomain(domain)) throw new RangeError(`unknown domain ${JSON.stringify(domain)}; valid: ${DOMAINS.join(', ')}`);
}

/**
 * Image `index` of class `classIndex` in `split`: one object of the class, random size and position,
 * jittered colour and pose. The scene is keyed by (seed, class name, split, index), so it is the same
 * in every domain; the style's randomness is keyed by the domain as well.
 */
export function classImage(opts: ClassImageOptions): ClassImage {
  const { seed, classIndex, split, index } = opts;
  const domain = opts.domain ?? 'plain';
  checkSeed(seed);
  checkDomain(domain);
  checkIndex(index, 'image index');
  if (!Number.isInteger(classIndex) || classIndex < 0 || classIndex >= NUM_CLASSES) {
    throw new RangeError(`class index must be in 0..${NUM_CLASSES - 1}, got ${classIndex}`);
  }
  if (split !== 'train' && split !== 'val' && split !== 'test') throw new RangeError(`unknown split ${JSON.stringify(split)}`);
  const cls = WORLD_CLASS_INFO[classIndex]!;
  const scene = sampleScene(keyedRng(seed, 'class-scene', cls.name, split, index), [{ colour: cls.colour, shape: cls.shape }]);
  const image = renderScene(scene, opts.size ?? DEFAULT_IMAGE_SIZE, domain, keyedRng(seed, 'class-style', cls.name, split, index, domain), opts.render);
  return { image, scene, cls, domain };
}

// ---------------------------------------------------------------------------------------------
// Pretraining pairs.

/** Default mix of styles in the pretraining stream: half plain, the rest shifted. */
export const DEFAULT_PAIR_DOMAIN_WEIGHTS: Readonly<Record<Domain, number>> = {
  plain: 0.5, sketch: 0.1, noise: 0.08, stripes: 0.09, checker: 0.08, gradient: 0.08, pixelated: 0.07,
};

export interface PairOptions {
  seed: number;
  size?: number;
  /** Relative weights of the domains (missing = 0); default DEFAULT_PAIR_DOMAIN_WEIGHTS. */
  domains?: Partial<Record<Domain, number>>;
  /** Probability of a two-object scene (default 0.2). */
  twoObjectProb?: number;
  /** Probability that the two objects are of the same class (default 0.15). */
  sameClassProb?: number;
  /**
   * Colour-shape combinations objects are drawn from, uniformly (default: all 144, so every class,
   * base or novel, is seen in pretraining, as real CLIP has seen the novel classes' names).
   * Pass a subset to hold compositions out.
   */
  combinations?: readonly { colour: Colour; shape: Shape }[];
  render?: RenderOptions;
}

export interface WorldPair {
  index: number;
  image: RgbImage;
  caption: string;
  family: CaptionFamily;
  scene: WorldScene;
  domain: Domain;
}

interface ResolvedPairOptions {
  seed: number;
  size: number;
  domainList: Domain[];
  domainWeights: number[];
  twoObjectProb: number;
  sameClassProb: number;
  combinations: readonly { colour: Colour; shape: Shape }[];
  render: RenderOptions;
}

function resolvePairOptions(opts: PairOptions): ResolvedPairOptions {
  checkSeed(opts.seed);
  const weights = opts.domains ?? DEFAULT_PAIR_DOMAIN_WEIGHTS;
  for (const [d, w] of Object.entries(weights)) {
    checkDomain(d);
    if (!(typeof w === 'number' && w >= 0 && Number.isFinite(w))) throw new RangeError(`domain weight of ${d} must be a non-negative number, got ${w}`);
  }
  const domainList = DOMAINS.filter((d) => (weights[d] ?? 0) > 0);
  if (domainList.length === 0) throw new RangeError('at least one domain needs a positive weight');
  const p2 = opts.twoObjectProb ?? 0.2;
  const ps = opts.sameClassProb ?? 0.15;
  for (const [name, p] of [['twoObjectProb', p2], ['sameClassProb', ps]] as const) {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`${name} must be in [0, 1], got ${p}`);
  }
  const combinations = opts.combinations ?? allCombinations();
  if (combinations.length === 0) throw new RangeError('combinations must not be empty');
  return {
    seed: opts.seed, size: opts.size ?? DEFAULT_IMAGE_SIZE, domainList, domainWeights: domainList.map((d) => weights[d]!),
    twoObjectProb: p2, sameClassProb: ps, combinations, render: opts.render ?? {},
  };
}

function pairScene(index: number, o: ResolvedPairOptions): { scene: WorldScene; domain: Domain } {
  checkIndex(index, 'pair index');
  const rng = keyedRng(o.seed, 'pair-scene', index);
  const domain = o.domainList[pickWeighted(keyedRng(o.seed, 'pair-domain', index), o.domainWeights)]!;
  const first = pick(rng, o.combinations);
  const specs = [first];
  if (rng.bernoulli(o.twoObjectProb)) specs.push(rng.bernoulli(o.sameClassProb) ? first : pick(rng, o.combinations));
  return { scene: sampleScene(rng, specs), domain };
}

function makePair(index: number, o: ResolvedPairOptions): WorldPair {
  const { scene, domain } = pairScene(index, o);
  const image = renderScene(scene, o.size, domain, keyedRng(o.seed, 'pair-style', index, domain), o.render);
  const caption: Caption = captionScene(scene, domain, keyedRng(o.seed, 'pair-caption', index));
  return { index, image, caption: caption.text, family: caption.family, scene, domain };
}

/** Pair `index` of the stream of `opts` (a pure function of the options and the index). */
export function worldPair(index: number, opts: PairOptions): WorldPair {
  return makePair(index, resolvePairOptions(opts));
}

/**
 * The pretraining stream: pairs start, start + 1, ... (count of them, or forever). Nothing is kept:
 * each pair is made when asked for. Shard it by index ranges or strides; pair i is the same either way.
 */
export function* worldPairs(opts: PairOptions & { start?: number; count?: number }): Generator<WorldPair, void, undefined> {
  const o = resolvePairOptions(opts);
  const start = opts.start ?? 0;
  checkIndex(start, 'start');
  const end = opts.count === undefined ? Infinity : start + opts.count;
  if (opts.count !== undefined) checkIndex(opts.count, 'count');
  for (let i = start; i < end; i++) yield makePair(i, o);
}

/** Just the caption of pair `index` (renders nothing; for caption statistics). Same text as worldPair's. */
export function worldPairCaption(index: number, opts: PairOptions): { caption: string; family: CaptionFamily; domain: Domain; scene: WorldScene } {
  const { scene, domain } = pairScene(index, resolvePairOptions(opts));
  const c = captionScene(scene, domain, keyedRng(opts.seed, 'pair-caption', index));
  return { caption: c.text, family: c.family, domain, scene };
}
