// The core subset of the suite, run under Deno (its own WebGPU: wgpu on lavapipe, core feature
// level, shader-f16) by `npm test`. Each imported file runs its uvu suite on import.
const files = ['../gpu/core.test.js', '../ops/elementwise.test.js'];
for (const f of files) await import(f);
