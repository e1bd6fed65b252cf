// Node-only helpers: files, images, checkpoints.
export { loadClip } from './clip/load-node.js';
export { loadClipTokenizer } from './clip/tokenizer-node.js';
export { loadImageForClip, loadBatchForClip } from './clip/preprocess-node.js';
export { openSafetensors, writeSafetensors } from './io/safetensors-node.js';
export { convertPtToSafetensors } from './io/torch-pt-node.js';
export { saveCheckpoint, loadCheckpoint } from './train/checkpoint.js';
