// The core subset of the suite, run under Deno (its own WebGPU: wgpu on lavapipe, core feature
// level, shader-f16) by `npm test`: the engine core, elementwise, matmul, reductions, softmax,
// layer norm, shape ops and the golden CLIP parity. Each imported file runs its uvu suite.
const files = [
  '../gpu/core.test.js',
  '../ops/elementwise.test.js',
  '../ops/matmul.test.js',
  '../ops/softmax.test.js',
  '../ops/layernorm.test.js',
  '../ops/shape.test.js',
  '../clip/golden.test.js',
];
for (const f of files) await import(f);
