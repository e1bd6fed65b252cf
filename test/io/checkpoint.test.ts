import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, encodeSafetensors } from '../../src/io/safetensors.js';
import { openSafetensors } from '../../src/io/safetensors-node.js';
import { convertPtToSafetensors, openTorchCheckpointFile } from '../../src/io/torch-pt-node.js';
import type { TensorInfo } from '../../src/io/dtypes.js';
import {
  loadClipCheckpoint, resolveClipCheckpoint, toHfTensors, toHfConfig, hfTensorSpec, clipTensorSpec,
  type ClipConfig, type ClipTensorSource,
} from '../../src/clip/checkpoint.js';
import { GOLDEN, PT, errorOf, scratchDir } from './helpers.js';

const openai = () => readSafetensors(readFileSync(join(GOLDEN, 'weights.openai.safetensors')), 'weights.openai.safetensors');
const hf = () => readSafetensors(readFileSync(join(GOLDEN, 'weights.hf.safetensors')), 'weights.hf.safetensors');
const hfConfig = JSON.parse(readFileSync(join(GOLDEN, 'config.json'), 'utf8'));
const manifest = JSON.parse(readFileSync(join(GOLDEN, 'manifest.json'), 'utf8'));

/** The golden config, from manifest.json's `config` section. */
function goldenConfig(activationSource: ClipConfig['activationSource']): ClipConfig {
  const c = manifest.config, a = c.clip_args;
  return {
    embedDim: a.embed_dim,
    image: { resolution: a.image_resolution, patchSize: a.vision_patch_size, width: a.vision_width, layers: a.vision_layers, heads: c.vision_heads, mlpHidden: c.mlp_hidden.vision, eps: c.layer_norm_eps },
    text: { contextLength: a.context_length, vocabSize: a.vocab_size, width: a.transformer_width, layers: a.transformer_layers, heads: c.text_heads, mlpHidden: c.mlp_hidden.text, eps: c.layer_norm_eps },
    activation: 'quick_gelu',
    activationSource,
  };
}

function assertBitwise(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  assert.equal([...a.keys()], [...b.keys()]);
  for (const [n, x] of a) {
    const y = b.get(n)!;
    assert.ok(Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength)), `bits of ${n}`);
  }
}

/** An in-memory source built from another, with edits (rename, drop, add, reshape). */
function edited(src: ClipTensorSource, edit: {
  rename?: (n: string) => string; drop?: string[]; add?: Record<string, number[]>; reshape?: Record<string, number[]>;
}): ClipTensorSource {
  const map = new Map<string, { info: TensorInfo; from?: string }>();
  for (const n of src.names) {
    if (edit.drop?.includes(n)) continue;
    const info = src.info(n);
    map.set(edit.rename ? edit.rename(n) : n, { info: { ...info, shape: edit.reshape?.[n] ?? info.shape }, from: n });
  }
  for (const [n, shape] of Object.entries(edit.add ?? {})) map.set(n, { info: { dtype: 'F32', shape } });
  return {
    name: 'edited.safetensors',
    names: [...map.keys()],
    info: (n) => map.get(n)!.info,
    getF32: (n) => src.getF32(map.get(n)!.from!),
  };
}

test('golden OpenAI weights: config matches manifest.json, activation defaulted', async () => {
  const ck = await loadClipCheckpoint(openai());
  assert.is(ck.naming, 'openai');
  assert.equal(ck.config, goldenConfig('default'));
  assert.equal(ck.ignored, []);
  assert.equal([...ck.tensors.keys()], clipTensorSpec(ck.config).map((s) => s.name));
  assert.equal([...ck.tensors.keys()], [...openai().names], 'canonical order is the OpenAI state-dict order');
});

test('golden HF weights + config.json give bitwise the same canonical tensors and config', async () => {
  const a = await loadClipCheckpoint(openai());
  const b = await loadClipCheckpoint(hf(), { hfConfig });
  assert.is(b.naming, 'hf');
  assert.equal(b.config, goldenConfig('config'));
  assertBitwise(a.tensors, b.tensors);
  // Without the config: shapes alone give the same architecture.
  const c = await loadClipCheckpoint(hf());
  assert.equal(c.config, goldenConfig('default'));
});

test('OpenAI -> HF mapping reproduces the golden HF file and config.json', async () => {
  const a = await loadClipCheckpoint(openai());
  const out = toHfTensors(a.tensors, a.config);
  const g = hf();
  assert.equal([...out.keys()], [...g.names], 'transformers state-dict order');
  assert.equal(hfTensorSpec(a.config).map((s) => s.name), [...g.names]);
  for (const [n, t] of out) {
    assert.equal(t.shape, g.info(n).shape, n);
    assert.equal(t.data, await g.getF32(n), n);
  }
  const cfg = toHfConfig({ ...a.config, activationSource: 'config' }) as Record<string, Record<string, unknown>>;
  for (const tower of ['text_config', 'vision_config']) {
    for (const [k, v] of Object.entries(cfg[tower]!)) assert.equal(v, hfConfig[tower][k], `${tower}.${k}`);
  }
  assert.is(cfg.projection_dim, hfConfig.projection_dim);
  // And round trip: the HF tensors we write load back to the same canonical set.
  const back = await loadClipCheckpoint(readSafetensors(encodeSafetensors(out)), { hfConfig: cfg });
  assertBitwise(a.tensors, back.tensors);
});

test('activation and heads: option, config, conflicts', async () => {
  assert.is(resolveClipCheckpoint(openai(), { activation: 'gelu' }).config.activation, 'gelu');
  assert.is(resolveClipCheckpoint(openai(), { activation: 'gelu' }).config.activationSource, 'option');
  const gelu = { ...hfConfig, text_config: { ...hfConfig.text_config, hidden_act: 'gelu' }, vision_config: { ...hfConfig.vision_config, hidden_act: 'gelu' } };
  assert.equal(resolveClipCheckpoint(hf(), { hfConfig: gelu }).config.activation, 'gelu');
  assert.match(await errorOf(() => resolveClipCheckpoint(hf(), { hfConfig, activation: 'gelu' })),
    'weights.hf.safetensors: activation option gelu contradicts config.json hidden_act quick_gelu');
  const mixed = { ...hfConfig, text_config: { ...hfConfig.text_config, hidden_act: 'gelu' } };
  assert.match(await errorOf(() => resolveClipCheckpoint(hf(), { hfConfig: mixed })), 'uses quick_gelu for vision but gelu for text');
  const tanh = { ...gelu, text_config: { ...gelu.text_config, hidden_act: 'gelu_new' } };
  assert.match(await errorOf(() => resolveClipCheckpoint(hf(), { hfConfig: tanh })), 'config.json text_config.hidden_act "gelu_new" is not supported');
  const h = resolveClipCheckpoint(openai(), { heads: { image: 4, text: 1 } }).config;
  assert.equal([h.image.heads, h.text.heads], [4, 1]);
  const cfgHeads = { ...hfConfig, vision_config: { ...hfConfig.vision_config, num_attention_heads: 8 } };
  assert.is(resolveClipCheckpoint(hf(), { hfConfig: cfgHeads }).config.image.heads, 8);
  assert.match(await errorOf(() => resolveClipCheckpoint(openai(), { heads: { image: 3 } })), 'vision heads 3 does not divide width 128');
});

test('open_clip extras: module. prefix and ignored buffers', async () => {
  const src = edited(openai(), { rename: (n) => `module.${n}`, add: { 'module.attn_mask': [16, 16], 'module.transformer.resblocks.0.attn_mask': [16, 16], 'module.input_resolution': [], 'module.context_length': [], 'module.vocab_size': [] } });
  const ck = await loadClipCheckpoint(src);
  assert.equal(ck.config, goldenConfig('default'));
  assert.equal(ck.ignored.sort(), ['module.attn_mask', 'module.context_length', 'module.input_resolution', 'module.transformer.resblocks.0.attn_mask', 'module.vocab_size']);
  assertBitwise((await loadClipCheckpoint(openai())).tensors, ck.tensors);
  const hfIds = edited(hf(), { add: { 'text_model.embeddings.position_ids': [1, 16], 'vision_model.embeddings.position_ids': [1, 17] } });
  assert.equal(resolveClipCheckpoint(hfIds).ignored, ['text_model.embeddings.position_ids', 'vision_model.embeddings.position_ids']);
});

test('errors: missing, unexpected and mis-shaped tensors are named with the expected shape', async () => {
  const E = 'edited.safetensors: not a valid CLIP ViT checkpoint';
  let m = await errorOf(() => resolveClipCheckpoint(edited(openai(), { drop: ['visual.ln_post.bias'] })));
  assert.is(m, `${E} (OpenAI naming, vision 2x128 patch 8 @32px, text 2x128, embed 32):\n  missing tensor "visual.ln_post.bias" (expected shape [128])`);
  m = await errorOf(() => resolveClipCheckpoint(edited(hf(), { drop: ['text_model.encoder.layers.1.self_attn.k_proj.weight'] })));
  assert.match(m, `${E} (Hugging Face naming`);
  assert.match(m, '\n  missing tensor "text_model.encoder.layers.1.self_attn.k_proj.weight" (expected shape [128,128])');
  m = await errorOf(() => resolveClipCheckpoint(edited(openai(), { add: { 'visual.extra': [3] } })));
  assert.match(m, '\n  unexpected tensor "visual.extra" [3]');
  m = await errorOf(() => resolveClipCheckpoint(edited(openai(), { reshape: { 'ln_final.weight': [127] } })));
  assert.match(m, '\n  tensor "ln_final.weight" has shape [127], expected [128]');
  m = await errorOf(() => resolveClipCheckpoint(edited(hf(), { reshape: { 'visual_projection.weight': [128, 32] } })));
  assert.match(m, '\n  tensor "visual_projection.weight" has shape [128,32], expected [32,128]');
  m = await errorOf(() => resolveClipCheckpoint(edited(openai(), { drop: ['transformer.resblocks.0.mlp.c_fc.weight', 'transformer.resblocks.0.mlp.c_fc.bias'] })));
  assert.match(m, 'missing tensor "transformer.resblocks.0.mlp.c_fc.weight" (expected shape [512,128])');
  assert.match(m, 'missing tensor "transformer.resblocks.0.mlp.c_fc.bias" (expected shape [512])');
  m = await errorOf(() => resolveClipCheckpoint(edited(openai(), { drop: ['visual.conv1.weight'] })));
  assert.is(m, 'edited.safetensors: cannot infer the CLIP architecture: need tensor visual.conv1.weight of rank 4 (missing)');
  m = await errorOf(() => resolveClipCheckpoint(edited(openai(), { rename: (n) => n.replace(/^visual\./, 'vis.') })));
  assert.match(m, 'edited.safetensors: unknown checkpoint naming: expected OpenAI/open_clip (visual.conv1.weight, ...) or Hugging Face CLIPModel (vision_model.*, text_model.*) tensors; found "positional_embedding", "text_projection"');
  m = await errorOf(() => resolveClipCheckpoint(edited(openai(), { add: { 'visual.layer1.0.conv1.weight': [64, 64, 1, 1] } })));
  assert.match(m, 'ResNet CLIP checkpoint');
  m = await errorOf(() => resolveClipCheckpoint(hf(), { hfConfig: { ...hfConfig, vision_config: { ...hfConfig.vision_config, hidden_size: 768 } } }));
  assert.is(m, 'weights.hf.safetensors: config.json vision_config.hidden_size is 768 but the weights have 128');
  m = await errorOf(() => resolveClipCheckpoint(hf(), { hfConfig: { ...hfConfig, projection_dim: 512 } }));
  assert.is(m, 'weights.hf.safetensors: config.json projection_dim is 512 but the weights have 32');
  m = await errorOf(() => resolveClipCheckpoint(hf(), { hfConfig: { model_type: 'clip' } }));
  assert.match(m, 'config.json has no vision_config/text_config');
});

test('OpenAI-style TorchScript .pt (mixed fp16/fp32, like clip.load downloads) loads directly and after convert', async () => {
  const want = readSafetensors(readFileSync(join(PT, 'tiny_clip.expected.safetensors')));
  const wantMap = new Map<string, Float32Array>();
  const opts = { heads: { image: 2, text: 2 } }; // width 32 is not a multiple of 64
  const pt = await openTorchCheckpointFile(join(PT, 'tiny_clip.pt'));
  try {
    const ck = await loadClipCheckpoint(pt, opts);
    for (const n of ck.tensors.keys()) wantMap.set(n, await want.getF32(n));
    assert.equal([...wantMap.keys()].sort(), [...want.names].sort());
    assertBitwise(ck.tensors, wantMap);
    assert.equal(ck.ignored, ['input_resolution', 'context_length', 'vocab_size']);
    assert.equal(ck.config, {
      embedDim: 8,
      image: { resolution: 8, patchSize: 4, width: 32, layers: 2, heads: 2, mlpHidden: 128, eps: 1e-5 },
      text: { contextLength: 5, vocabSize: 20, width: 32, layers: 1, heads: 2, mlpHidden: 128, eps: 1e-5 },
      activation: 'quick_gelu', activationSource: 'default',
    });
    assert.match(await errorOf(() => resolveClipCheckpoint(pt)), 'tiny_clip.pt: vision width 32 is not a multiple of 64; give the head count');
  } finally {
    await pt.close();
  }
  const out = join(scratchDir(), 'tiny_clip.safetensors');
  await convertPtToSafetensors(join(PT, 'tiny_clip.pt'), out);
  const f = await openSafetensors(out);
  try {
    assert.is(f.info('visual.conv1.weight').dtype, 'F16');
    assertBitwise((await loadClipCheckpoint(f, opts)).tensors, wantMap);
  } finally {
    await f.close();
  }
});

/** A data-less source with exactly the tensors (and shapes) of `names`. */
function shapesOnly(specs: { name: string; shape: number[] }[]): ClipTensorSource {
  const m = new Map(specs.map((s) => [s.name, s.shape]));
  return { name: 'shapes', names: [...m.keys()], info: (n) => ({ dtype: 'F16', shape: m.get(n)! }), getF32: async () => new Float32Array(0) };
}

test('real architectures are inferred from shapes alone, in both namings', () => {
  const arch = (embed: number, res: number, patch: number, vw: number, vl: number, tw: number, tl: number): ClipConfig => ({
    embedDim: embed,
    image: { resolution: res, patchSize: patch, width: vw, layers: vl, heads: vw / 64, mlpHidden: 4 * vw, eps: 1e-5 },
    text: { contextLength: 77, vocabSize: 49408, width: tw, layers: tl, heads: tw / 64, mlpHidden: 4 * tw, eps: 1e-5 },
    activation: 'quick_gelu', activationSource: 'default',
  });
  const cases: Record<string, ClipConfig> = {
    'ViT-B/32': arch(512, 224, 32, 768, 12, 512, 12),
    'ViT-B/16': arch(512, 224, 16, 768, 12, 512, 12),
    'ViT-L/14': arch(768, 224, 14, 1024, 24, 768, 12),
    'ViT-L/14@336px': arch(768, 336, 14, 1024, 24, 768, 12),
  };
  for (const [label, cfg] of Object.entries(cases)) {
    const a = resolveClipCheckpoint(shapesOnly(clipTensorSpec(cfg)));
    assert.equal(a.config, cfg, `${label} (OpenAI naming)`);
    assert.is(a.names.length, 6 + 1 + 2 + 12 * cfg.image.layers + 2 + 12 * cfg.text.layers + 3);
    const b = resolveClipCheckpoint(shapesOnly(hfTensorSpec(cfg)), { hfConfig: toHfConfig(cfg) });
    assert.equal(b.config, { ...cfg, activationSource: 'config' }, `${label} (HF naming)`);
  }
  assert.equal(cases['ViT-B/32']!.text.heads, 8);
  assert.equal(cases['ViT-L/14']!.image.heads, 16);
});

test.run();
