// The data and protocol layer, runtime-agnostic parts (no Node APIs). Node file access:
// ./datasets-node.js (readers, few-shot subsets from a data folder) and ./loader-node.js
// (streaming batches of preprocessed images).
export * from './pyrandom.js';
export * from './fewshot.js';
export * from './datasets.js';
export * from './dassl-pickle.js';
export * from './metrics.js';
