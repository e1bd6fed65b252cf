// The synthetic image-caption world (runtime-agnostic; file output lives in write-node.ts).
export * from './attributes.js';
export * from './classes.js';
export * from './scene.js';
export * from './shapes.js';
export * from './render.js';
export * from './templates.js';
export * from './captions.js';
export * from './generate.js';
export * from './vocab.js';
export { keyedRng, checkSeed } from './keyed-rng.js';
export * from './preview.js';
