// CLIP on the engine: OpenAI's ViT image encoder and causal text transformer, with the hooks prompt
// methods need (text given as embeddings, extra vision tokens, deep prompt rows replaced before a
// layer, unshared key/value prompt rows, the pre-projection image feature) and no model copies.
// Parameters keep their OpenAI checkpoint names; all are frozen until a method marks some trainable.
import { GpuError, type Gpu } from '../gpu/index.js';
import { tensor, tidy, keep, shapeStr, type Tensor } from '../tensor/tensor.js';
import { add, exp, mul } from '../ops/elementwise.js';
import { matmul } from '../ops/matmul.js';
import { layerNorm } from '../ops/layernorm.js';
import { concat, patchify, reshape, slice } from '../ops/shape.js';
import { embedding, gatherRows } from '../ops/index-ops.js';
import { l2normalize } from '../ops/distance.js';
import { crossEntropy } from '../ops/losses.js';
import { residualBlock, type BlockWeights, type KvOverride } from '../nn/transformer.js';
import { expandBatch, insertRows, replaceRows } from '../nn/tokens.js';
import { clipTensorSpec, type ClipConfig } from './checkpoint.js';

export type { ClipConfig } from './checkpoint.js';

/** Records named intermediate tensors (parity tests, debugging). Values are shared handles. */
export type Trace = Map<string, Tensor>;

export interface VisionOptions {
  /** Tokens appended after the patches, after the positional embedding, before ln_pre (VPT, IVLP layer 0): [M, W] or [B, M, W]. */
  appendTokens?: Tensor | null;
  /** Tokens inserted right after the class token, after ln_pre (DAPT): [M, W] or [B, M, W]. */
  insertAfterCls?: Tensor | null;
  /** Deep prompts: rows replacing the appended tokens (the last M positions) before layer l >= 1. */
  deepPrompts?: ((layer: number) => Tensor | null) | null;
  /** Key/value rows from separate vectors at layer l (RPP). */
  kvPrompts?: ((layer: number) => KvOverride | null) | null;
  trace?: Trace;
}

export interface TextOptions {
  /** Deep prompts: rows replacing positions [promptStart, promptStart + M) before layer l >= 1. */
  deepPrompts?: ((layer: number) => Tensor | null) | null;
  promptStart?: number;
  kvPrompts?: ((layer: number) => KvOverride | null) | null;
  trace?: Trace;
}

export interface ImageEncoding {
  /** encode_image: ln_post(class token) @ proj, not normalised. [B, E] */
  embeds: Tensor;
  /** The pre-projection feature ln_post(class token) (ProLIP trains the projector on these). [B, W] */
  pooled: Tensor;
}

export interface TextEncoding {
  /** encode_text: ln_final(x)[eot] @ text_projection, not normalised. [N, E] */
  embeds: Tensor;
  pooled: Tensor;
}

/** Host-side token ids: N rows of L ids (as the tokenizer returns them). */
export interface TokenIds {
  ids: Int32Array;
  rows: number;
  length: number;
}

function record(trace: Trace | undefined, name: string, t: Tensor): void {
  if (trace) trace.set(name, keep(t.share()));
}

export class ClipModel {
  private constructor(
    readonly gpu: Gpu,
    readonly config: ClipConfig,
    /** Parameters by OpenAI checkpoint name. */
    readonly params: ReadonlyMap<string, Tensor>,
  ) {}

  /** Uploads canonical (OpenAI-named) f32 tensors, checking every name and shape. */
  static fromTensors(gpu: Gpu, config: ClipConfig, tensors: ReadonlyMap<string, Float32Array>): ClipModel {
    const params = new Map<string, Tensor>();
    for (const spec of clipTensorSpec(config)) {
      const data = tensors.get(spec.name);
      if (!data) throw new GpuError(`CLIP weights: missing tensor "${spec.name}" (expected shape ${shapeStr(spec.shape)})`);
      const n = spec.shape.reduce((a, b) => a * b, 1);
      if (data.length !== n) throw new GpuError(`CLIP weights: tensor "${spec.name}" has ${data.length} values, expected shape ${shapeStr(spec.shape)}`);
      const t = keep(tensor(data, spec.shape, 'f32', gpu));
      t.name = spec.name;
      params.set(spec.name, t);
    }
    return new ClipModel(gpu, config, params);
  }

  /** A parameter by its checkpoint name (e.g. "visual.proj"). */
  param(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new GpuError(`CLIP has no parameter "${name}"`);
    return t;
  }

  /** Marks parameters trainable (by exact name or predicate); all others stay frozen. */
  setTrainable(select: (name: string) => boolean): Tensor[] {
    const out: Tensor[] = [];
    for (const [name, t] of this.params) {
      t.requiresGrad = select(name);
      if (t.requiresGrad) out.push(t);
    }
    return out;
  }

  dispose(): void {
    for (const t of this.params.values()) t.dispose();
  }

  private block(prefix: string): BlockWeights {
    const p = (n: string) => this.param(`${prefix}.${n}`);
    return {
      ln1w: p('ln_1.weight'),
      ln1b: p('ln_1.bias'),
      inW: p('attn.in_proj_weight'),
      inB: p('attn.in_proj_bias'),
      outW: p('attn.out_proj.weight'),
      outB: p('attn.out_proj.bias'),
      ln2w: p('ln_2.weight'),
      ln2b: p('ln_2.bias'),
      fcW: p('mlp.c_fc.weight'),
      fcB: p('mlp.c_fc.bias'),
      projW: p('mlp.c_proj.weight'),
      projB: p('mlp.c_proj.bias'),
    };
  }

  /** exp(logit_scale) as a [1] tensor (differentiable in logit_scale). */
  logitScale(): Tensor {
    return exp(reshape(this.param('logit_scale'), [1]));
  }

  // ---- image tower ----

  encodeImage(pixels: Tensor, o: VisionOptions = {}): ImageEncoding {
    const c = this.config.image;
    if (pixels.rank !== 4 || pixels.shape[1] !== 3 || pixels.shape[2] !== c.resolution || pixels.shape[3] !== c.resolution) {
      throw new GpuError(`encodeImage: pixels ${pixels.describe()} must be [B, 3, ${c.resolution}, ${c.resolution}]`);
    }
    const b = pixels.shape[0]!;
    const w = c.width;
    const grid = c.resolution / c.patchSize;
    return tidy(() => {
      // conv1 with stride = kernel is a matmul over patches.
      const convW = reshape(this.param('visual.conv1.weight'), [w, 3 * c.patchSize * c.patchSize]);
      const patches = matmul(patchify(pixels, c.patchSize), convW, { transB: true });
      record(o.trace, 'vision.patch_embeds', patches);
      const cls = expandBatch(reshape(this.param('visual.class_embedding'), [1, w]), b, 'class embedding');
      let x = add(concat([cls, patches], 1), this.param('visual.positional_embedding'));
      let promptStart = -1;
      if (o.appendTokens) {
        promptStart = x.shape[1]!;
        x = insertRows(x, promptStart, o.appendTokens, 'appended vision tokens');
      }
      record(o.trace, 'vision.embeddings', x);
      x = layerNorm(x, this.param('visual.ln_pre.weight'), this.param('visual.ln_pre.bias'), c.eps);
      if (o.insertAfterCls) x = insertRows(x, 1, o.insertAfterCls, 'vision prompts after the class token');
      record(o.trace, 'vision.ln_pre', x);
      for (let l = 0; l < c.layers; l++) {
        if (l > 0 && o.deepPrompts) {
          const rows = o.deepPrompts(l);
          if (rows) {
            if (promptStart < 0) throw new GpuError('deep vision prompts need appendTokens at layer 0 (the slots they replace)');
            x = replaceRows(x, promptStart, rows, `vision deep prompts at layer ${l}`);
          }
        }
        // Per-block scope: a block's intermediates are freed at its end (the tape keeps its own
        // handles on what backward needs), so a no-grad forward holds about one block at a time.
        const xin = x;
        x = tidy(() => residualBlock(xin, this.block(`visual.transformer.resblocks.${l}`), {
          heads: c.heads,
          causal: false,
          act: this.config.activation,
          eps: c.eps,
          kv: o.kvPrompts?.(l) ?? null,
        }));
        record(o.trace, `vision.blocks.${l}`, x);
      }
      const clsOut = reshape(slice(x, 1, 0, 1), [b, w]);
      const pooled = layerNorm(clsOut, this.param('visual.ln_post.weight'), this.param('visual.ln_post.bias'), c.eps);
      record(o.trace, 'vision.ln_post', pooled);
      const embeds = matmul(pooled, this.param('visual.proj'));
      return { embeds, pooled };
    });
  }

  // ---- text tower ----

  /** Token embeddings [N, T, W] of host ids (rows truncated to T). */
  tokenEmbeddings(tokens: TokenIds, length = tokens.length): Tensor {
    const { rows, ids } = tokens;
    const vocab = this.config.text.vocabSize;
    const cut = new Int32Array(rows * length);
    for (let r = 0; r < rows; r++) {
      for (let t = 0; t < length; t++) {
        const id = ids[r * tokens.length + t]!;
        if (id < 0 || id >= vocab) throw new GpuError(`token id ${id} (row ${r}, position ${t}) is outside the vocabulary of ${vocab}`);
        cut[r * length + t] = id;
      }
    }
    const idT = tensor(cut, [rows, length], 'i32', this.gpu);
    const e = embedding(this.param('token_embedding.weight'), idT);
    idT.dispose();
    return e;
  }

  /** Position of each row's end token: the first maximum id, as CLIP pools (argmax). */
  static eotPositions(tokens: TokenIds): number[] {
    const out: number[] = [];
    for (let r = 0; r < tokens.rows; r++) {
      let best = -Infinity;
      let at = 0;
      for (let t = 0; t < tokens.length; t++) {
        const v = tokens.ids[r * tokens.length + t]!;
        if (v > best) {
          best = v;
          at = t;
        }
      }
      out.push(at);
    }
    return out;
  }

  encodeText(tokens: TokenIds, o: TextOptions = {}): TextEncoding {
    if (tokens.ids.length !== tokens.rows * tokens.length) throw new GpuError(`encodeText: ${tokens.ids.length} ids for ${tokens.rows} rows of ${tokens.length}`);
    const eot = ClipModel.eotPositions(tokens);
    // Causal attention makes positions after the last end token irrelevant: run only up to it.
    const len = Math.max(...eot) + 1;
    return tidy(() => this.encodeTextEmbeddings(this.tokenEmbeddings(tokens, len), eot, o));
  }

  /** The text transformer from input embeddings [N, T, W] (e.g. with learned context rows) pooled at `eot`. */
  encodeTextEmbeddings(embeds: Tensor, eot: readonly number[], o: TextOptions = {}): TextEncoding {
    const c = this.config.text;
    if (embeds.rank !== 3 || embeds.shape[2] !== c.width) throw new GpuError(`encodeText: embeddings ${embeds.describe()} must be [N, T, ${c.width}]`);
    const [n, t] = embeds.shape as [number, number, number];
    if (t > c.contextLength) throw new GpuError(`encodeText: ${t} tokens exceed the context length ${c.contextLength}`);
    if (eot.length !== n) throw new GpuError(`encodeText: ${eot.length} end positions for ${n} sequences`);
    for (const e of eot) if (e < 0 || e >= t) throw new GpuError(`encodeText: end position ${e} outside ${t} tokens`);
    const start = o.promptStart ?? 1;
    return tidy(() => {
      const pos = t === c.contextLength ? this.param('positional_embedding') : slice(this.param('positional_embedding'), 0, 0, t);
      let x = add(embeds, pos);
      record(o.trace, 'text.embeddings', x);
      for (let l = 0; l < c.layers; l++) {
        if (l > 0 && o.deepPrompts) {
          const rows = o.deepPrompts(l);
          if (rows) x = replaceRows(x, start, rows, `text deep prompts at layer ${l}`);
        }
        const xin = x;
        x = tidy(() => residualBlock(xin, this.block(`transformer.resblocks.${l}`), {
          heads: c.heads,
          causal: true,
          act: this.config.activation,
          eps: c.eps,
          kv: o.kvPrompts?.(l) ?? null,
        }));
        record(o.trace, `text.blocks.${l}`, x);
      }
      x = layerNorm(x, this.param('ln_final.weight'), this.param('ln_final.bias'), c.eps);
      record(o.trace, 'text.ln_final', x);
      const idx = tensor(Int32Array.from(eot), [n], 'i32', this.gpu);
      const pooled = gatherRows(x, idx);
      record(o.trace, 'text.pooled', pooled);
      const embeds2 = matmul(pooled, this.param('text_projection'));
      return { embeds: embeds2, pooled };
    });
  }

  // ---- heads ----

  /** exp(logit_scale) * normalize(img) @ normalize(txt)^T: [Bi, Bt]. */
  logits(imageEmbeds: Tensor, textEmbeds: Tensor): Tensor {
    return tidy(() => mul(matmul(l2normalize(imageEmbeds), l2normalize(textEmbeds), { transB: true }), this.logitScale()));
  }

  /** CLIP's symmetric contrastive loss over a batch of matching (image i, text i) pairs. */
  contrastiveLoss(imageEmbeds: Tensor, textEmbeds: Tensor): Tensor {
    const b = imageEmbeds.shape[0]!;
    if (textEmbeds.shape[0] !== b) throw new GpuError(`contrastiveLoss: ${imageEmbeds.describe()} and ${textEmbeds.describe()} differ in batch`);
    return tidy(() => {
      const labels = tensor(Int32Array.from({ length: b }, (_, i) => i), [b], 'i32', this.gpu);
      const li = this.logits(imageEmbeds, textEmbeds);
      const lt = this.logits(textEmbeds, imageEmbeds);
      const loss = mul(add(crossEntropy(li, labels), crossEntropy(lt, labels)), tensor([0.5], [1], 'f32', this.gpu));
      return loss;
    });
  }
}
