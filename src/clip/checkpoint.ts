// CLIP checkpoint naming and architecture inference (CPU only, no I/O of its own).
//
// Takes any tensor source (safetensors file, .pt checkpoint, memory) in either
// OpenAI/open_clip naming or Hugging Face CLIPModel naming, and presents it as
// the canonical OpenAI-named f32 tensors plus a ClipConfig inferred from the
// shapes (and cross-checked against an HF config.json when given).
//
// Canonical layout (OpenAI clip/model.py):
//   visual.conv1.weight [W,3,P,P]   visual.class_embedding [W]   visual.positional_embedding [G*G+1,W]
//   visual.ln_pre.*, visual.transformer.resblocks.N.{ln_1, attn.in_proj_weight [3W,W] (q;k;v rows),
//   attn.in_proj_bias [3W], attn.out_proj.{weight [W,W], bias}, ln_2, mlp.c_fc [M,W], mlp.c_proj [W,M]},
//   visual.ln_post.*, visual.proj [W,E]; token_embedding.weight [V,Wt], positional_embedding [C,Wt],
//   transformer.resblocks.N.*, ln_final.*, text_projection [Wt,E], logit_scale [].
// HF differs by names, q/k/v split into q_proj/k_proj/v_proj, and the two
// projections stored as nn.Linear weights [E,W] (the transpose of OpenAI's).

import { formatShape, numel, type TensorSource } from '../io/dtypes.js';

export type Activation = 'quick_gelu' | 'gelu';

export interface ClipVisionConfig {
  resolution: number;
  patchSize: number;
  width: number;
  layers: number;
  heads: number;
  mlpHidden: number;
  eps: number;
}

export interface ClipTextConfig {
  contextLength: number;
  vocabSize: number;
  width: number;
  layers: number;
  heads: number;
  mlpHidden: number;
  eps: number;
}

export interface ClipConfig {
  embedDim: number;
  image: ClipVisionConfig;
  text: ClipTextConfig;
  activation: Activation;
  /** Where `activation` came from: the HF config, the caller's option, or the QuickGELU default (weights cannot tell). */
  activationSource: 'config' | 'option' | 'default';
}

export type ClipNaming = 'openai' | 'hf';

/** What the loader needs from a tensor source. */
export type ClipTensorSource = Pick<TensorSource, 'name' | 'names' | 'info' | 'getF32'>;

export interface ClipCheckpointOptions {
  /** A Hugging Face CLIPModel config.json object: its values are used and checked against the weights. */
  hfConfig?: unknown;
  /** Activation when the config does not say (weights cannot tell QuickGELU from GELU). */
  activation?: Activation;
  /** Head counts when there is no config and heads != width / 64 (e.g. open_clip ViT-H/14 vision: 16). */
  heads?: { image?: number; text?: number };
}

export interface ClipCheckpoint {
  config: ClipConfig;
  naming: ClipNaming;
  /** Source tensors deliberately skipped (position_ids, attn_mask, open_clip's int buffers). */
  ignored: string[];
  /** Canonical OpenAI names, in OpenAI state-dict order. */
  names: string[];
  shape(name: string): number[];
  /** One canonical tensor as f32 (read, and for HF concatenated/transposed, on demand). */
  getF32(name: string): Promise<Float32Array>;
}

export interface LoadedClipCheckpoint {
  config: ClipConfig;
  naming: ClipNaming;
  ignored: string[];
  /** Canonical OpenAI-named tensors in state-dict order. */
  tensors: Map<string, Float32Array>;
}

export interface TensorSpec {
  name: string;
  shape: number[];
}

// ------------------------------------------------------------ canonical spec

const BLOCK_PARTS = [
  'attn.in_proj_weight', 'attn.in_proj_bias', 'attn.out_proj.weight', 'attn.out_proj.bias',
  'ln_1.weight', 'ln_1.bias', 'mlp.c_fc.weight', 'mlp.c_fc.bias', 'mlp.c_proj.weight', 'mlp.c_proj.bias',
  'ln_2.weight', 'ln_2.bias',
] as const;

function blockShapes(w: number, m: number): Record<(typeof BLOCK_PARTS)[number], number[]> {
  return {
    'attn.in_proj_weight': [3 * w, w], 'attn.in_proj_bias': [3 * w],
    'attn.out_proj.weight': [w, w], 'attn.out_proj.bias': [w],
    'ln_1.weight': [w], 'ln_1.bias': [w],
    'mlp.c_fc.weight': [m, w], 'mlp.c_fc.bias': [m],
    'mlp.c_proj.weight': [w, m], 'mlp.c_proj.bias': [w],
    'ln_2.weight': [w], 'ln_2.bias': [w],
  };
}

/** The canonical OpenAI-named tensors of a config, in OpenAI state-dict order. */
export function clipTensorSpec(c: ClipConfig): TensorSpec[] {
  const v = c.image, t = c.text;
  const grid = v.resolution / v.patchSize;
  const out: TensorSpec[] = [
    { name: 'positional_embedding', shape: [t.contextLength, t.width] },
    { name: 'text_projection', shape: [t.width, c.embedDim] },
    { name: 'logit_scale', shape: [] },
    { name: 'visual.class_embedding', shape: [v.width] },
    { name: 'visual.positional_embedding', shape: [grid * grid + 1, v.width] },
    { name: 'visual.proj', shape: [v.width, c.embedDim] },
    { name: 'visual.conv1.weight', shape: [v.width, 3, v.patchSize, v.patchSize] },
    { name: 'visual.ln_pre.weight', shape: [v.width] },
    { name: 'visual.ln_pre.bias', shape: [v.width] },
  ];
  const vb = blockShapes(v.width, v.mlpHidden);
  for (let i = 0; i < v.layers; i++) for (const p of BLOCK_PARTS) out.push({ name: `visual.transformer.resblocks.${i}.${p}`, shape: vb[p] });
  out.push({ name: 'visual.ln_post.weight', shape: [v.width] }, { name: 'visual.ln_post.bias', shape: [v.width] });
  const tb = blockShapes(t.width, t.mlpHidden);
  for (let i = 0; i < t.layers; i++) for (const p of BLOCK_PARTS) out.push({ name: `transformer.resblocks.${i}.${p}`, shape: tb[p] });
  out.push(
    { name: 'token_embedding.weight', shape: [t.vocabSize, t.width] },
    { name: 'ln_final.weight', shape: [t.width] },
    { name: 'ln_final.bias', shape: [t.width] },
  );
  return out;
}

// ------------------------------------------------------------ naming recipes

/** How one canonical tensor is made from source tensors. */
type Recipe =
  | { op: 'copy'; src: string }
  | { op: 'transpose'; src: string }
  | { op: 'concat'; srcs: [string, string, string] }; // q;k;v along dim 0

const HF_BLOCK: Record<string, string> = {
  'attn.out_proj.weight': 'self_attn.out_proj.weight', 'attn.out_proj.bias': 'self_attn.out_proj.bias',
  'ln_1.weight': 'layer_norm1.weight', 'ln_1.bias': 'layer_norm1.bias',
  'mlp.c_fc.weight': 'mlp.fc1.weight', 'mlp.c_fc.bias': 'mlp.fc1.bias',
  'mlp.c_proj.weight': 'mlp.fc2.weight', 'mlp.c_proj.bias': 'mlp.fc2.bias',
  'ln_2.weight': 'layer_norm2.weight', 'ln_2.bias': 'layer_norm2.bias',
};

const HF_TOP: Record<string, Recipe> = {
  positional_embedding: { op: 'copy', src: 'text_model.embeddings.position_embedding.weight' },
  text_projection: { op: 'transpose', src: 'text_projection.weight' },
  logit_scale: { op: 'copy', src: 'logit_scale' },
  'visual.class_embedding': { op: 'copy', src: 'vision_model.embeddings.class_embedding' },
  'visual.positional_embedding': { op: 'copy', src: 'vision_model.embeddings.position_embedding.weight' },
  'visual.proj': { op: 'transpose', src: 'visual_projection.weight' },
  'visual.conv1.weight': { op: 'copy', src: 'vision_model.embeddings.patch_embedding.weight' },
  'visual.ln_pre.weight': { op: 'copy', src: 'vision_model.pre_layrnorm.weight' }, // sic: HF's spelling
  'visual.ln_pre.bias': { op: 'copy', src: 'vision_model.pre_layrnorm.bias' },
  'visual.ln_post.weight': { op: 'copy', src: 'vision_model.post_layernorm.weight' },
  'visual.ln_post.bias': { op: 'copy', src: 'vision_model.post_layernorm.bias' },
  'token_embedding.weight': { op: 'copy', src: 'text_model.embeddings.token_embedding.weight' },
  'ln_final.weight': { op: 'copy', src: 'text_model.final_layer_norm.weight' },
  'ln_final.bias': { op: 'copy', src: 'text_model.final_layer_norm.bias' },
};

const BLOCK_RE = /^(visual\.transformer|transformer)\.resblocks\.(\d+)\.(.+)$/;

function recipeFor(name: string, naming: ClipNaming, prefix: string): Recipe {
  if (naming === 'openai') return { op: 'copy', src: prefix + name };
  const top = HF_TOP[name];
  if (top && top.op !== 'concat') return { ...top, src: prefix + top.src };
  const m = BLOCK_RE.exec(name);
  if (!m) throw new Error(`no HF name for ${name}`);
  const base = `${prefix}${m[1] === 'visual.transformer' ? 'vision_model' : 'text_model'}.encoder.layers.${m[2]}.`;
  const part = m[3]!;
  if (part === 'attn.in_proj_weight' || part === 'attn.in_proj_bias') {
    const kind = part.endsWith('weight') ? 'weight' : 'bias';
    return { op: 'concat', srcs: [`${base}self_attn.q_proj.${kind}`, `${base}self_attn.k_proj.${kind}`, `${base}self_attn.v_proj.${kind}`] };
  }
  const hf = HF_BLOCK[part];
  if (!hf) throw new Error(`no HF name for ${name}`);
  return { op: 'copy', src: base + hf };
}

/** Source tensors a recipe reads, with the shapes they must have for canonical shape `shape`. */
function sourceSpec(r: Recipe, shape: number[]): TensorSpec[] {
  if (r.op === 'copy') return [{ name: r.src, shape }];
  if (r.op === 'transpose') return [{ name: r.src, shape: [...shape].reverse() }];
  const part = [shape[0]! / 3, ...shape.slice(1)];
  return r.srcs.map((name) => ({ name, shape: part }));
}

/** The canonical shape a recipe would produce from the source, or undefined if a source is missing or inconsistent. */
function recipeShape(r: Recipe, shapeOf: (n: string) => number[] | undefined): number[] | undefined {
  if (r.op === 'copy') return shapeOf(r.src);
  if (r.op === 'transpose') {
    const s = shapeOf(r.src);
    return s && s.length === 2 ? [s[1]!, s[0]!] : undefined;
  }
  const parts = r.srcs.map(shapeOf);
  if (parts.some((p) => !p || p.length === 0 || formatShape(p) !== formatShape(parts[0]!))) return undefined;
  return [3 * parts[0]![0]!, ...parts[0]!.slice(1)];
}

// ------------------------------------------------------------ detection

function isIgnored(name: string, naming: ClipNaming): boolean {
  if (naming === 'hf') return name.endsWith('.position_ids');
  // open_clip / OpenAI JIT extras: the causal mask (a plain attribute in TorchScript
  // archives) and the int buffers clip.build_model deletes.
  return name === 'attn_mask' || name.endsWith('.attn_mask') || name === 'input_resolution'
    || name === 'context_length' || name === 'vocab_size' || name.endsWith('.position_ids');
}

function detectNaming(names: readonly string[], file: string): ClipNaming {
  if (names.some((n) => n.startsWith('vision_model.') || n.startsWith('text_model.'))) return 'hf';
  // ResNet CLIP also has visual.conv1.weight (its stem), so rule it out first.
  if (names.some((n) => n.startsWith('visual.layer1.') || n.startsWith('visual.attnpool.'))) {
    throw new Error(`${file}: a ResNet CLIP checkpoint (visual.layer1 / visual.attnpool); only ViT CLIP is supported`);
  }
  if (names.some((n) => n.startsWith('visual.conv1.') || n.startsWith('visual.transformer.'))) return 'openai';
  if (names.some((n) => n.startsWith('visual.trunk.'))) {
    throw new Error(`${file}: an open_clip timm-backbone checkpoint (visual.trunk.*); only OpenAI-style ViT CLIP is supported`);
  }
  const sample = names.slice(0, 5).map((n) => `"${n}"`).join(', ');
  throw new Error(`${file}: unknown checkpoint naming: expected OpenAI/open_clip (visual.conv1.weight, ...) or Hugging Face CLIPModel (vision_model.*, text_model.*) tensors; found ${sample}${names.length > 5 ? ', ...' : ''}`);
}

function countLayers(names: readonly string[], re: RegExp): number {
  let n = 0;
  for (const name of names) {
    const m = re.exec(name);
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  return n;
}

// ------------------------------------------------------------ HF config

interface HfTower {
  hidden_size?: number; intermediate_size?: number; num_hidden_layers?: number; num_attention_heads?: number;
  layer_norm_eps?: number; hidden_act?: string; image_size?: number; patch_size?: number; num_channels?: number;
  max_position_embeddings?: number; vocab_size?: number; projection_dim?: number;
}

function hfTowers(cfg: unknown, file: string): { vision: HfTower; text: HfTower; projectionDim?: number } {
  if (cfg === null || typeof cfg !== 'object') throw new Error(`${file}: config.json is not an object`);
  const c = cfg as Record<string, unknown>;
  const vision = (c.vision_config ?? c.vision_config_dict) as HfTower | undefined;
  const text = (c.text_config ?? c.text_config_dict) as HfTower | undefined;
  if (!vision || typeof vision !== 'object' || !text || typeof text !== 'object') {
    throw new Error(`${file}: config.json has no vision_config/text_config (not a CLIPModel config)`);
  }
  const pd = c.projection_dim;
  return { vision, text, ...(typeof pd === 'number' ? { projectionDim: pd } : {}) };
}

function parseAct(v: unknown, where: string): Activation {
  if (v === 'quick_gelu' || v === 'gelu') return v;
  throw new Error(`${where} ${JSON.stringify(v)} is not supported (quick_gelu or gelu)`);
}

// ------------------------------------------------------------ resolve

/**
 * Detects the naming, infers the architecture from the tensor shapes, checks
 * every tensor (missing, unexpected, mis-shaped: each named with its expected
 * shape) and returns lazy access to the canonical OpenAI-named f32 tensors.
 * Reads no tensor data.
 */
export function resolveClipCheckpoint(src: ClipTensorSource, opts: ClipCheckpointOptions = {}): ClipCheckpoint {
  const file = src.name;
  // open_clip checkpoints saved from DistributedDataParallel prefix every name with "module.".
  const prefix = src.names.length > 0 && src.names.every((n) => n.startsWith('module.')) ? 'module.' : '';
  const names = src.names.map((n) => n.slice(prefix.length));
  const naming = detectNaming(names, file);
  const ignored = src.names.filter((n) => isIgnored(n.slice(prefix.length), naming));
  const ignoredSet = new Set(ignored);
  const present = new Map<string, number[]>();
  for (const n of src.names) if (!ignoredSet.has(n)) present.set(n, src.info(n).shape);
  const shapeOf = (n: string) => present.get(n);

  const vLayers = countLayers(names, naming === 'openai' ? /^visual\.transformer\.resblocks\.(\d+)\./ : /^vision_model\.encoder\.layers\.(\d+)\./);
  const tLayers = countLayers(names, naming === 'openai' ? /^transformer\.resblocks\.(\d+)\./ : /^text_model\.encoder\.layers\.(\d+)\./);

  // Shapes of the few tensors that determine the architecture, by canonical name.
  const key = (name: string, rank: number, fallback?: number[]): number[] => {
    const r = recipeFor(name, naming, prefix);
    const s = recipeShape(r, shapeOf);
    if (s && s.length === rank) return s;
    if (fallback) return fallback;
    const srcNames = r.op === 'concat' ? r.srcs.join(', ') : r.src;
    const have = r.op !== 'concat' && shapeOf(r.src) ? ` (it has shape ${formatShape(shapeOf(r.src)!)})` : ' (missing)';
    throw new Error(`${file}: cannot infer the CLIP architecture: need tensor ${srcNames} of rank ${rank}${have}`);
  };
  if (vLayers === 0) throw new Error(`${file}: no vision transformer blocks found (${naming === 'openai' ? 'visual.transformer.resblocks.N.*' : 'vision_model.encoder.layers.N.*'})`);
  if (tLayers === 0) throw new Error(`${file}: no text transformer blocks found (${naming === 'openai' ? 'transformer.resblocks.N.*' : 'text_model.encoder.layers.N.*'})`);
  const conv = key('visual.conv1.weight', 4);
  const vWidth = conv[0]!, patch = conv[2]!;
  const vPos = key('visual.positional_embedding', 2);
  const grid = Math.round(Math.sqrt(vPos[0]! - 1));
  if (grid * grid + 1 !== vPos[0]) {
    throw new Error(`${file}: vision positional embedding has ${vPos[0]} rows, not 1 + a square number of patches`);
  }
  const tok = key('token_embedding.weight', 2);
  const tPos = key('positional_embedding', 2);
  const tWidth = tok[1]!;
  const vMlp = key('visual.transformer.resblocks.0.mlp.c_fc.weight', 2, [4 * vWidth, vWidth])[0]!;
  const tMlp = key('transformer.resblocks.0.mlp.c_fc.weight', 2, [4 * tWidth, tWidth])[0]!;
  // Embedding width from visual.proj [W,E], else text_projection [Wt,E]: the first one whose
  // input side matches its tower, so a mis-shaped projection is reported as such below.
  const vProj = recipeShape(recipeFor('visual.proj', naming, prefix), shapeOf);
  const tProj = recipeShape(recipeFor('text_projection', naming, prefix), shapeOf);
  const embedDim = vProj?.length === 2 && vProj[0] === vWidth ? vProj[1]!
    : tProj?.length === 2 && tProj[0] === tWidth ? tProj[1]!
    : key('visual.proj', 2)[1]!;

  let vEps = 1e-5, tEps = 1e-5;
  let vHeads = opts.heads?.image, tHeads = opts.heads?.text;
  let activation: Activation = 'quick_gelu';
  let activationSource: ClipConfig['activationSource'] = 'default';
  if (opts.activation !== undefined) {
    activation = parseAct(opts.activation, 'activation option');
    activationSource = 'option';
  }
  const inferred = {
    vision: { hidden_size: vWidth, intermediate_size: vMlp, num_hidden_layers: vLayers, image_size: grid * patch, patch_size: patch, num_channels: conv[1]! },
    text: { hidden_size: tWidth, intermediate_size: tMlp, num_hidden_layers: tLayers, max_position_embeddings: tPos[0]!, vocab_size: tok[0]! },
  };
  if (opts.hfConfig !== undefined) {
    const hf = hfTowers(opts.hfConfig, file);
    for (const tower of ['vision', 'text'] as const) {
      const cfg = hf[tower] as Record<string, unknown>;
      for (const [field, value] of Object.entries(inferred[tower])) {
        if (cfg[field] !== undefined && cfg[field] !== value) {
          throw new Error(`${file}: config.json ${tower}_config.${field} is ${JSON.stringify(cfg[field])} but the weights have ${value}`);
        }
      }
    }
    if (hf.projectionDim !== undefined && hf.projectionDim !== embedDim) {
      throw new Error(`${file}: config.json projection_dim is ${hf.projectionDim} but the weights have ${embedDim}`);
    }
    vHeads = hf.vision.num_attention_heads ?? vHeads;
    tHeads = hf.text.num_attention_heads ?? tHeads;
    vEps = hf.vision.layer_norm_eps ?? vEps;
    tEps = hf.text.layer_norm_eps ?? tEps;
    // transformers' CLIPTextConfig / CLIPVisionConfig default hidden_act is quick_gelu.
    const va = parseAct(hf.vision.hidden_act ?? 'quick_gelu', `${file}: config.json vision_config.hidden_act`);
    const ta = parseAct(hf.text.hidden_act ?? 'quick_gelu', `${file}: config.json text_config.hidden_act`);
    if (va !== ta) throw new Error(`${file}: config.json uses ${va} for vision but ${ta} for text; one activation is supported`);
    if (opts.activation !== undefined && opts.activation !== va) {
      throw new Error(`${file}: activation option ${opts.activation} contradicts config.json hidden_act ${va}`);
    }
    activation = va;
    activationSource = 'config';
  }
  const heads = (given: number | undefined, width: number, tower: string): number => {
    if (given === undefined) {
      // OpenAI's rule (vision_heads = width // 64; text heads = width // 64).
      if (width % 64 !== 0) throw new Error(`${file}: ${tower} width ${width} is not a multiple of 64; give the head count (config.json or the heads option)`);
      return width / 64;
    }
    if (!Number.isInteger(given) || given <= 0 || width % given !== 0) throw new Error(`${file}: ${tower} heads ${given} does not divide width ${width}`);
    return given;
  };
  const config: ClipConfig = {
    embedDim,
    image: { resolution: grid * patch, patchSize: patch, width: vWidth, layers: vLayers, heads: heads(vHeads, vWidth, 'vision'), mlpHidden: vMlp, eps: vEps },
    text: { contextLength: tPos[0]!, vocabSize: tok[0]!, width: tWidth, layers: tLayers, heads: heads(tHeads, tWidth, 'text'), mlpHidden: tMlp, eps: tEps },
    activation,
    activationSource,
  };

  // Full check of every source tensor against what the config implies.
  const spec = clipTensorSpec(config);
  const recipes = new Map<string, Recipe>();
  const shapes = new Map<string, number[]>();
  const problems: string[] = [];
  const expected = new Set<string>();
  for (const { name, shape } of spec) {
    const r = recipeFor(name, naming, prefix);
    recipes.set(name, r);
    shapes.set(name, shape);
    for (const s of sourceSpec(r, shape)) {
      expected.add(s.name);
      const got = shapeOf(s.name);
      if (!got) problems.push(`missing tensor "${s.name}" (expected shape ${formatShape(s.shape)})`);
      else if (formatShape(got) !== formatShape(s.shape)) problems.push(`tensor "${s.name}" has shape ${formatShape(got)}, expected ${formatShape(s.shape)}`);
    }
  }
  for (const [n, s] of present) if (!expected.has(n)) problems.push(`unexpected tensor "${n}" ${formatShape(s)}`);
  if (problems.length) {
    const shown = problems.slice(0, 20).map((p) => `\n  ${p}`).join('');
    const more = problems.length > 20 ? `\n  ... and ${problems.length - 20} more` : '';
    throw new Error(`${file}: not a valid CLIP ViT checkpoint (${naming === 'hf' ? 'Hugging Face' : 'OpenAI'} naming, ${describe(config)}):${shown}${more}`);
  }

  return {
    config,
    naming,
    ignored,
    names: spec.map((s) => s.name),
    shape(name) {
      const s = shapes.get(name);
      if (!s) throw new Error(`${file}: no canonical CLIP tensor "${name}"`);
      return [...s];
    },
    async getF32(name) {
      const r = recipes.get(name);
      if (!r) throw new Error(`${file}: no canonical CLIP tensor "${name}"`);
      if (r.op === 'copy') return src.getF32(r.src);
      if (r.op === 'transpose') {
        const s = shapeOf(r.src)!;
        return transpose2d(await src.getF32(r.src), s[0]!, s[1]!);
      }
      const parts = await Promise.all(r.srcs.map((n) => src.getF32(n)));
      const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
      let o = 0;
      for (const p of parts) { out.set(p, o); o += p.length; }
      return out;
    },
  };
}

function describe(c: ClipConfig): string {
  return `vision ${c.image.layers}x${c.image.width} patch ${c.image.patchSize} @${c.image.resolution}px, text ${c.text.layers}x${c.text.width}, embed ${c.embedDim}`;
}

/** resolveClipCheckpoint, then every canonical tensor read into memory. */
export async function loadClipCheckpoint(src: ClipTensorSource, opts: ClipCheckpointOptions = {}): Promise<LoadedClipCheckpoint> {
  const ck = resolveClipCheckpoint(src, opts);
  const tensors = new Map<string, Float32Array>();
  for (const n of ck.names) {
    const data = await ck.getF32(n);
    if (data.length !== numel(ck.shape(n))) throw new Error(`${src.name}: tensor for "${n}" has ${data.length} values, expected ${numel(ck.shape(n))}`);
    tensors.set(n, data);
  }
  return { config: ck.config, naming: ck.naming, ignored: ck.ignored, tensors };
}

export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}

// ------------------------------------------------------------ OpenAI -> HF (for writing)

/** HF CLIPModel tensor names and shapes for a config, in transformers' state-dict order. */
export function hfTensorSpec(c: ClipConfig): TensorSpec[] {
  const out: TensorSpec[] = [];
  const canon = new Map(clipTensorSpec(c).map((s) => [s.name, s.shape]));
  const add = (name: string) => {
    for (const s of sourceSpec(recipeFor(name, 'hf', ''), canon.get(name)!)) out.push(s);
  };
  const block = (base: string, i: number) => {
    const r = recipeFor(`${base}.${i}.attn.in_proj_weight`, 'hf', '') as Extract<Recipe, { op: 'concat' }>;
    const pre = r.srcs[0].slice(0, -'self_attn.q_proj.weight'.length);
    const w = base === 'visual.transformer.resblocks' ? c.image.width : c.text.width;
    const m = base === 'visual.transformer.resblocks' ? c.image.mlpHidden : c.text.mlpHidden;
    for (const p of ['k', 'v', 'q']) {
      out.push({ name: `${pre}self_attn.${p}_proj.weight`, shape: [w, w] }, { name: `${pre}self_attn.${p}_proj.bias`, shape: [w] });
    }
    for (const p of ['attn.out_proj.weight', 'attn.out_proj.bias', 'ln_1.weight', 'ln_1.bias', 'mlp.c_fc.weight', 'mlp.c_fc.bias', 'mlp.c_proj.weight', 'mlp.c_proj.bias', 'ln_2.weight', 'ln_2.bias']) {
      out.push({ name: pre + HF_BLOCK[p]!, shape: blockShapes(w, m)[p as (typeof BLOCK_PARTS)[number]] });
    }
  };
  add('token_embedding.weight');
  add('positional_embedding');
  for (let i = 0; i < c.text.layers; i++) block('transformer.resblocks', i);
  add('ln_final.weight'); add('ln_final.bias');
  add('visual.class_embedding'); add('visual.conv1.weight'); add('visual.positional_embedding');
  add('visual.ln_pre.weight'); add('visual.ln_pre.bias');
  for (let i = 0; i < c.image.layers; i++) block('visual.transformer.resblocks', i);
  add('visual.ln_post.weight'); add('visual.ln_post.bias');
  add('visual.proj'); add('text_projection'); add('logit_scale');
  return out;
}

/**
 * Canonical OpenAI-named tensors to HF CLIPModel tensors (q/k/v split from
 * in_proj, projections transposed), ready for writeSafetensors.
 */
export function toHfTensors(tensors: ReadonlyMap<string, Float32Array>, c: ClipConfig): Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> {
  const spec = clipTensorSpec(c);
  const fromHf = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const { name, shape } of spec) {
    const data = tensors.get(name);
    if (!data) throw new Error(`toHfTensors: missing tensor "${name}" (expected shape ${formatShape(shape)})`);
    if (data.length !== numel(shape)) throw new Error(`toHfTensors: tensor "${name}" has ${data.length} values, expected shape ${formatShape(shape)}`);
    const r = recipeFor(name, 'hf', '');
    if (r.op === 'copy') fromHf.set(r.src, { data, shape });
    else if (r.op === 'transpose') fromHf.set(r.src, { data: transpose2d(data, shape[0]!, shape[1]!), shape: [shape[1]!, shape[0]!] });
    else {
      const part = data.length / 3;
      r.srcs.forEach((n, i) => fromHf.set(n, { data: data.slice(i * part, (i + 1) * part), shape: [shape[0]! / 3, ...shape.slice(1)] }));
    }
  }
  const out = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  for (const { name } of hfTensorSpec(c)) {
    const t = fromHf.get(name)!;
    out.set(name, { dtype: 'F32', shape: t.shape, data: t.data });
  }
  return out;
}

/** A transformers CLIPModel config.json for a ClipConfig (EOT = vocab-1, SOT = vocab-2 as in OpenAI's tokenizer). */
export function toHfConfig(c: ClipConfig): Record<string, unknown> {
  const common = { hidden_act: c.activation, attention_dropout: 0, dropout: 0, projection_dim: c.embedDim };
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: c.embedDim,
    logit_scale_init_value: 2.6592,
    initializer_factor: 1,
    torch_dtype: 'float32',
    text_config: {
      model_type: 'clip_text_model',
      hidden_size: c.text.width,
      intermediate_size: c.text.mlpHidden,
      num_attention_heads: c.text.heads,
      num_hidden_layers: c.text.layers,
      max_position_embeddings: c.text.contextLength,
      vocab_size: c.text.vocabSize,
      layer_norm_eps: c.text.eps,
      bos_token_id: c.text.vocabSize - 2,
      eos_token_id: c.text.vocabSize - 1,
      pad_token_id: 0, // OpenAI's tokenize() pads with 0
      ...common,
    },
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: c.image.width,
      intermediate_size: c.image.mlpHidden,
      num_attention_heads: c.image.heads,
      num_hidden_layers: c.image.layers,
      image_size: c.image.resolution,
      patch_size: c.image.patchSize,
      num_channels: 3,
      layer_norm_eps: c.image.eps,
      ...common,
    },
  };
}
