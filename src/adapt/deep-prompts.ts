// Deep multi-modal prompts (IVLP, methods.md 4.4 and 2.4; deep visual prompts, VPT, 4.3) as a
// reusable learner: the learned tensors, their initialisation and the model hooks that insert them.
//   text:   layer 0 = M_t context vectors at positions 1..M_t of "{init} {class}." (CoOp, class token
//           at the end), word-initialised from "a photo of a"; layers 1..J_t-1 = fresh vectors
//           N(0, 0.02) replacing positions 1..M_t before the layer runs.
//   vision: layer 0 = M_v vectors N(0, 0.02) appended after the patches (after the positional
//           embedding, before ln_pre); layers 1..J_v-1 = fresh vectors replacing the last M_v rows.
// Depth J counts the prompted layers including layer 0 (J = 1: shallow; J = 0: that tower is not
// prompted). J is clamped to the tower's layer count (the caller is told through `notes`).
// One tensor per (tower, layer), [M, W], named text.ctx / text.deep.l / vision.ctx / vision.deep.l:
// a later method (RPP's deep variant) can take the layer structure and add its own per-slot tensors.
import { GpuError } from '../gpu/index.js';
import { keep, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { concat } from '../ops/shape.js';
import { l2normalize } from '../ops/distance.js';
import type { ClipModel, ImageEncoding, TextOptions, Trace, VisionOptions } from '../clip/model.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import { Rng } from '../clip/rng.js';
import { PromptBank, gaussian, planCoopPrompts, type PromptPlan } from './coop.js';
import { MethodOptionError } from './method.js';
import { wordEmbeddings } from './prompt-common.js';

export type TextDeepInit = 'normal' | 'frozen';

export type VisionPromptInit = 'normal' | 'uniform' | 'class-token';

/** Support images (test transform) for data-dependent inits, in batches of [count, 3, R, R]. */
export type SupportPixels = () => AsyncIterable<{ pixels: Float32Array; count: number }>;

export interface DeepPromptConfig {
  text: {
    /** M_t context vectors per prompted layer. */
    tokens: number;
    /** Prompted text layers J_t (0: no text prompts). */
    depth: number;
    /** Layer-0 init words ("a photo of a"); null: N(0, 0.02) and "X" placeholders. */
    init: string | null;
    /**
     * Layers 1..J_t-1: 'normal' N(0, 0.02) (IVLP code); 'frozen': the frozen tower's own states at
     * the positions they replace (positions 1..M_t precede the class name, so under causal
     * attention those states are the same for every class), so the prompted text tower starts
     * exactly as the shallow-prompted one. Not in any official code.
     */
    deepInit?: TextDeepInit;
  };
  vision: {
    tokens: number;
    depth: number;
    /**
     * 'normal': N(0, 0.02) (IVLP code); 'uniform': U(±sqrt(6/(3p²+d))) (VPT's own init);
     * 'class-token': the class token's state where the prompts enter (classTokenStates) plus the
     * N(0, 0.02) draw of 'normal' (so the prompts of a layer differ and train apart). Not in any
     * official code: a new token that starts as a copy of the class token adds to every head what
     * the class token already gives, so it disturbs a frozen tower much less than a random one.
     */
    init: VisionPromptInit;
  };
}

/** How init words split into learned tokens (`head`, the first M_t tokens) and frozen words (`rest`). */
export interface TextInit {
  initIds: number[] | null;
  head: string | null;
  rest: string;
  note: string | null;
}

/**
 * IVLP's `ctx_init` handling (MaPLe/PromptSRC code): with init words and M_t <= their token count,
 * the prompt is "{init} {class}." and its first M_t tokens are learned, initialised from those
 * tokens' embeddings (the remaining init words stay frozen tokens, as MaPLe's 2-token "a photo" of
 * "a photo of a"); with more vectors than tokens, or no init, "X X ... X {class}." with N(0, 0.02).
 */
export function textInit(tokenizer: ClipTokenizer, tokens: number, init: string | null): TextInit {
  const words = (init ?? '').trim().split(/\s+/).filter(Boolean);
  if (!words.length) return { initIds: null, head: null, rest: '', note: null };
  const ids = tokenizer.encode(words.join(' '));
  if (tokens > ids.length) {
    return { initIds: null, head: null, rest: '', note: `${tokens} text context vectors exceed the ${ids.length} tokens of "${words.join(' ')}": random N(0, 0.02) init (as IVLP's code)` };
  }
  let k = 0;
  let n = 0;
  while (k < words.length && n < tokens) n += tokenizer.encode(words[k++]!).length;
  if (n !== tokens) throw new MethodOptionError(`${tokens} text context vectors do not end on a word boundary of "${words.join(' ')}"`);
  const head = words.slice(0, k).join(' ');
  const rest = words.slice(k).join(' ');
  return { initIds: ids.slice(0, tokens), head, rest, note: rest ? `text prompts "${head}" learned, "${rest}" kept as frozen words` : null };
}

/** The class prompt strings of the text branch, laid out as CoOp's (class token at the end). */
export function planDeepTextPrompts(tokenizer: ClipTokenizer, classnames: readonly string[], tokens: number, init: string | null, contextLength = 77): PromptPlan {
  const t = textInit(tokenizer, tokens, init);
  const names = t.rest ? classnames.map((c) => `${t.rest} ${c}`) : classnames;
  return planCoopPrompts(tokenizer, names, { nCtx: tokens, position: 'end', csc: false, init: t.head }, contextLength);
}

/** VPT's init bound sqrt(6 / (3 p² + d)) (0.0625 for ViT-B/16). */
export function vptUniformBound(patchSize: number, width: number): number {
  return Math.sqrt(6 / (3 * patchSize * patchSize + width));
}

/**
 * The frozen tower's class-token state where vision prompts enter layers 0..layers-1, [W] each.
 * Layer 0 does not depend on the image: the class embedding plus its position, before ln_pre
 * ('embeddings': where IVLP/VPT append their prompts) or after it ('ln_pre': where DAPT inserts
 * them). Layer l >= 1 (what deep prompts replace rows of) is the class token's input to block l,
 * averaged over the `support` images (needed when layers > 1).
 */
export async function classTokenStates(
  model: ClipModel,
  o: { layers: number; where: 'embeddings' | 'ln_pre'; support?: SupportPixels },
): Promise<Float32Array[]> {
  const c = model.config.image;
  const W = c.width;
  const R = c.resolution;
  const sums = Array.from({ length: o.layers }, () => new Float64Array(W));
  let images = 0;
  const add = async (pixels: Float32Array, count: number, layers: number) => {
    const trace: Trace = new Map();
    noGrad(() => tidy(() => model.encodeImage(tensor(pixels, [count, 3, R, R], 'f32', model.gpu), { trace }).embeds)).dispose();
    try {
      for (let l = 0; l < layers; l++) {
        const name = l === 0 ? (o.where === 'embeddings' ? 'vision.embeddings' : 'vision.ln_pre') : `vision.blocks.${l - 1}`;
        const t = trace.get(name);
        if (!t) throw new GpuError(`class-token init: the vision tower did not record ${name}`);
        const x = (await t.read()) as Float32Array;
        const T = t.shape[1]!;
        for (let i = 0; i < count; i++) for (let d = 0; d < W; d++) sums[l]![d]! += x[i * T * W + d]!;
      }
    } finally {
      for (const t of trace.values()) t.dispose();
    }
  };
  if (o.layers > 1) {
    if (!o.support) throw new MethodOptionError('class-token init of deep vision prompts needs the training images (the class token\'s mean state at each layer)');
    for await (const b of o.support()) {
      await add(b.pixels, b.count, o.layers);
      images += b.count;
    }
    if (!images) throw new MethodOptionError('class-token init: the training set is empty');
  } else {
    await add(new Float32Array(3 * R * R), 1, 1);
    images = 1;
  }
  return sums.map((s) => Float32Array.from(s, (v) => v / images));
}

/** Adds `row` [W] to every row of `rows` [M·W] in place (a class-token state onto a prompt draw); returns `rows`. */
export function addToEveryRow(rows: Float32Array, row: ArrayLike<number>): Float32Array {
  const W = row.length;
  if (rows.length % W !== 0) throw new GpuError(`addToEveryRow: ${rows.length} values are not rows of ${W}`);
  for (let i = 0; i < rows.length; i++) rows[i]! += row[i % W]!;
  return rows;
}

const VISION_INIT_NAMES: Record<VisionPromptInit, string> = { normal: 'N(0, 0.02)', uniform: 'VPT uniform', 'class-token': 'class-token states + N(0, 0.02)' };

export class DeepPrompts {
  /** Learned tensors in a fixed order: text layers 0.., then vision layers 0... */
  readonly params = new Map<string, Tensor>();
  /** Messages for the user (depth clamping, init choices). */
  readonly notes: string[] = [];
  readonly textDepth: number;
  readonly visionDepth: number;
  private textLayers: Tensor[] = [];
  private visionLayers: Tensor[] = [];
  private initIds: number[] | null = null;

  private constructor(
    readonly model: ClipModel,
    readonly tokenizer: ClipTokenizer,
    readonly config: DeepPromptConfig,
  ) {
    const c = model.config;
    const clamp = (tower: string, depth: number, layers: number) => {
      if (!Number.isInteger(depth) || depth < 0) throw new MethodOptionError(`${tower} prompt depth must be an integer >= 0, got ${depth}`);
      if (depth > layers) this.notes.push(`${tower} prompt depth ${depth} clamped to the model's ${layers} ${tower} layers`);
      return Math.min(depth, layers);
    };
    this.textDepth = clamp('text', config.text.depth, c.text.layers);
    this.visionDepth = clamp('vision', config.vision.depth, c.image.layers);
    for (const [t, m] of [['text', config.text.tokens], ['vision', config.vision.tokens]] as const) {
      if (!Number.isInteger(m) || m < 1) throw new MethodOptionError(`${t} prompt tokens must be a positive integer, got ${m}`);
    }
  }

  /**
   * Creates and initialises the prompts; `seed` fixes the random layers (per tower and layer, so
   * changing one depth leaves the other tensors' values unchanged). `support`: the training images,
   * for 'class-token' init of deep vision prompts; without them (evaluation, where the checkpoint's
   * values replace the init) the deep layers get the draw alone.
   */
  static async create(model: ClipModel, tokenizer: ClipTokenizer, config: DeepPromptConfig, seed: number, support?: SupportPixels): Promise<DeepPrompts> {
    const p = new DeepPrompts(model, tokenizer, config);
    await p.init(seed, support);
    return p;
  }

  private async init(seed: number, support?: SupportPixels): Promise<void> {
    const { model, config } = this;
    const gpu = model.gpu;
    const Wt = model.config.text.width;
    const Wv = model.config.image.width;
    const Mt = config.text.tokens;
    const Mv = config.vision.tokens;
    const rng = (tower: string, l: number) => new Rng(`cliptune-deep-prompts\u0001${seed}\u0001${tower}\u0001${l}`);
    const make = (name: string, data: Float32Array, shape: number[]) => {
      const t = keep(tensor(data, shape, 'f32', gpu)).param(name);
      this.params.set(name, t);
      return t;
    };
    if (this.textDepth > 0) {
      const layout = textInit(this.tokenizer, Mt, config.text.init);
      if (layout.note) this.notes.push(layout.note);
      this.initIds = layout.initIds;
      let ctx0: Float32Array;
      if (layout.initIds) ctx0 = await wordEmbeddings(model, layout.initIds);
      else ctx0 = gaussian(rng('text', 0), Mt * Wt, 0.02);
      this.textLayers.push(make('text.ctx', ctx0, [Mt, Wt]));
      const states = config.text.deepInit === 'frozen' && this.textDepth > 1 ? await this.frozenTextStates() : null;
      for (let l = 1; l < this.textDepth; l++) this.textLayers.push(make(`text.deep.${l}`, states ? states[l - 1]! : gaussian(rng('text', l), Mt * Wt, 0.02), [Mt, Wt]));
    }
    if (this.visionDepth > 0) {
      const bound = vptUniformBound(model.config.image.patchSize, Wv);
      const states =
        config.vision.init === 'class-token' ? await classTokenStates(model, { layers: support ? this.visionDepth : 1, where: 'embeddings', support }) : null;
      const draw = (l: number) => {
        if (config.vision.init === 'class-token') {
          const noise = gaussian(rng('vision', l), Mv * Wv, 0.02);
          const state = states![l];
          return state ? addToEveryRow(noise, state) : noise;
        }
        if (config.vision.init === 'normal') return gaussian(rng('vision', l), Mv * Wv, 0.02);
        const r = rng('vision', l);
        return Float32Array.from({ length: Mv * Wv }, () => (2 * r.uniform() - 1) * bound);
      };
      this.visionLayers.push(make('vision.ctx', draw(0), [Mv, Wv]));
      for (let l = 1; l < this.visionDepth; l++) this.visionLayers.push(make(`vision.deep.${l}`, draw(l), [Mv, Wv]));
    }
  }

  /**
   * The frozen text tower's states at positions 1..M_t entering layers 1..J_t-1, with the layer-0
   * prompts in place: [M_t·W] per layer. Any class name gives the same rows (causal attention).
   */
  private async frozenTextStates(): Promise<Float32Array[]> {
    const { model } = this;
    const Mt = this.config.text.tokens;
    const W = model.config.text.width;
    const plan = planDeepTextPrompts(this.tokenizer, ['object'], Mt, this.config.text.init, model.config.text.contextLength);
    const bank = new PromptBank(model, plan, false, 1);
    const trace: Trace = new Map();
    try {
      noGrad(() => tidy(() => model.encodeTextEmbeddings(bank.embeddings(this.textLayers[0]!, 0), bank.chunks[0]!.eot, { trace }).embeds)).dispose();
      const out: Float32Array[] = [];
      for (let l = 1; l < this.textDepth; l++) {
        const t = trace.get(`text.blocks.${l - 1}`);
        if (!t) throw new GpuError(`frozen text init: the text tower did not record text.blocks.${l - 1}`);
        const x = (await t.read()) as Float32Array;
        out.push(x.slice(W, (1 + Mt) * W));
      }
      return out;
    } finally {
      for (const t of trace.values()) t.dispose();
      bank.dispose();
    }
  }

  get textTokens(): number {
    return this.config.text.tokens;
  }
  get visionTokens(): number {
    return this.config.vision.tokens;
  }

  /** Text prompt rows of layer l (0: the input context), or null past the depth. */
  textLayer(l: number): Tensor | null {
    return this.textLayers[l] ?? null;
  }

  visionLayer(l: number): Tensor | null {
    return this.visionLayers[l] ?? null;
  }

  /** encodeImage options inserting the vision prompts (empty when the vision tower is not prompted). */
  visionOptions(): VisionOptions {
    if (!this.visionDepth) return {};
    return { appendTokens: this.visionLayers[0]!, deepPrompts: (l) => (l > 0 ? this.visionLayer(l) : null) };
  }

  /** encodeTextEmbeddings options replacing positions 1..M_t at layers 1..J_t-1. */
  textOptions(): TextOptions {
    if (this.textDepth <= 1) return {};
    return { promptStart: 1, deepPrompts: (l) => (l > 0 ? this.textLayer(l) : null) };
  }

  /** The image tower with the vision prompts (differentiable in them). */
  encodeImage(pixels: Tensor): ImageEncoding {
    return this.model.encodeImage(pixels, this.visionOptions());
  }

  /** The class prompts of `classnames` in chunks of `chunk` classes (needs text prompts). */
  textBank(classnames: readonly string[], chunk: number): PromptBank {
    if (!this.textDepth) throw new GpuError('deep prompts: no text prompts (text depth 0)');
    const plan = planDeepTextPrompts(this.tokenizer, classnames, this.textTokens, this.config.text.init, this.model.config.text.contextLength);
    return new PromptBank(this.model, plan, false, Math.max(1, Math.min(chunk, classnames.length)));
  }

  /** Unnormalised text features [n, E] of chunk i of `bank` (differentiable in the text prompts). */
  encodeTextChunk(bank: PromptBank, i: number): Tensor {
    const ch = bank.chunks[i]!;
    return tidy(() => this.model.encodeTextEmbeddings(bank.embeddings(this.textLayers[0]!, i), ch.eot, this.textOptions()).embeds);
  }

  /** Normalised text features of every class of `bank`, without gradient [C, E]. */
  encodeTextAllNoGrad(bank: PromptBank): Tensor {
    return noGrad(() =>
      tidy(() => {
        const parts = bank.chunks.map((_, i) => this.encodeTextChunk(bank, i));
        return l2normalize(parts.length === 1 ? parts[0]! : concat(parts, 0));
      }),
    );
  }

  /** Number of learned values. */
  get count(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.size;
    return n;
  }

  /** One line describing the prompts (for the log). */
  describe(): string {
    const deep = this.textDepth > 1 ? `, deeper layers ${this.config.text.deepInit === 'frozen' ? "from the frozen tower's states" : 'N(0, 0.02)'}` : '';
    const t = this.textDepth ? `text ${this.textTokens} tokens x depth ${this.textDepth}${this.initIds ? ` (layer 0 from "${this.config.text.init}"${deep})` : deep ? ` (${deep.slice(2)})` : ''}` : 'text not prompted';
    const v = this.visionDepth ? `vision ${this.visionTokens} tokens x depth ${this.visionDepth} (${VISION_INIT_NAMES[this.config.vision.init]})` : 'vision not prompted';
    return `deep prompts: ${t}; ${v}; ${this.count} learned values`;
  }

  dispose(): void {
    for (const t of this.params.values()) t.dispose();
    this.params.clear();
    this.textLayers = [];
    this.visionLayers = [];
  }
}
