// Loads a CLIP checkpoint from disk: a .safetensors file (OpenAI/open_clip or HF naming) or a
// Hugging Face model folder (model.safetensors + config.json + tokenizer files).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../gpu/index.js';
import { openSafetensors } from '../io/safetensors-node.js';
import { loadClipCheckpoint, type Activation, type ClipNaming } from './checkpoint.js';
import { ClipModel } from './model.js';
import { loadClipTokenizer } from './tokenizer-node.js';
import { splitCompactVocab, type CompactVocab } from './compact-vocab.js';
import type { ClipTokenizer } from './tokenizer.js';

export interface LoadedClip {
  model: ClipModel;
  tokenizer: ClipTokenizer;
  naming: ClipNaming;
  /** Human-readable notes for the user (e.g. the activation default). */
  notes: string[];
  weightsFile: string;
  /** The compact vocabulary of a file that stores only some token rows (the world CLIP), else null. */
  vocab: CompactVocab | null;
}

export interface LoadClipOptions {
  activation?: Activation;
  /** Head counts when there is no config and a width is not a multiple of 64. */
  heads?: { image?: number; text?: number };
  /** Tokenizer files (see loadClipTokenizer); default: the folder's own, else OpenAI's vocabulary. */
  vocab?: string;
  /** An already loaded tokenizer to use instead of reading one (a compact-vocabulary file still wraps it). */
  tokenizer?: ClipTokenizer;
}

/**
 * Throws unless every id the tokenizer can emit is inside the model's vocabulary (a small or
 * custom model with the default OpenAI vocabulary would otherwise fail in the middle of a run).
 */
export function checkTokenizerFits(tokenizer: ClipTokenizer, model: ClipModel): void {
  const vocab = model.config.text.vocabSize;
  const top = Math.max(tokenizer.sotId, tokenizer.eotId, tokenizer.vocabSize - 1);
  if (top >= vocab) {
    throw new Error(
      `the tokenizer emits ids up to ${top} but the model's vocabulary has ${vocab} tokens: ` +
        `give the model's own tokenizer (--vocab, or tokenizer.json / vocab.json + merges.txt in the model folder), or token ids directly`,
    );
  }
}

/** Safetensors metadata key in which cliptune's exports record the MLP activation (quick_gelu or gelu). */
export const ACTIVATION_METADATA_KEY = 'cliptune.activation';

export async function loadClip(gpu: Gpu, path: string, opts: LoadClipOptions = {}): Promise<LoadedClip> {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new Error(`--weights: ${path} does not exist`);
  }
  let file = path;
  let hfConfig: unknown;
  let tokenizerPath: string | undefined;
  if (st.isDirectory()) {
    file = join(path, 'model.safetensors');
    if (!existsSync(file)) throw new Error(`--weights: folder ${path} has no model.safetensors`);
    const cfg = join(path, 'config.json');
    if (existsSync(cfg)) hfConfig = readJson(cfg);
    if (['tokenizer.json', 'vocab.json'].some((f) => existsSync(join(path, f)))) tokenizerPath = path;
  } else {
    const cfg = join(path, '..', 'config.json');
    if (path.endsWith('.safetensors') && existsSync(cfg) && existsSync(join(path, '..', 'model.safetensors'))) {
      hfConfig = readJson(cfg);
    }
  }
  const src = await openSafetensors(file);
  try {
    // A compact-vocabulary file (token_embedding.token_ids beside a K-row table) reads as an ordinary
    // checkpoint of K tokens; its tokenizer is wrapped below to emit row numbers.
    const { source, vocab } = await splitCompactVocab(src, { note: `${file} keeps only the tokens of the texts it was trained on` });
    // cliptune's own exports record their activation; an explicit option still wins (and a contradiction is an error in the reader).
    const metaAct = src.metadata[ACTIVATION_METADATA_KEY];
    if (metaAct !== undefined && metaAct !== 'quick_gelu' && metaAct !== 'gelu') {
      throw new Error(`${file}: metadata ${ACTIVATION_METADATA_KEY} is "${metaAct}", expected quick_gelu or gelu`);
    }
    const activation = opts.activation ?? (metaAct as Activation | undefined);
    const ck = await loadClipCheckpoint(source, {
      ...(hfConfig ? { hfConfig } : {}),
      ...(activation ? { activation } : {}),
      ...(opts.heads ? { heads: opts.heads } : {}),
    });
    const notes: string[] = [];
    if (ck.config.activationSource === 'default') {
      notes.push(`${file}: no config says which activation the model uses; using QuickGELU (OpenAI's). Pass --act gelu for open_clip models trained with GELU.`);
    }
    // The tokenizer first: a bad --vocab fails before any weights reach the GPU.
    const baseTokenizer = opts.tokenizer ?? (await loadClipTokenizer(opts.vocab ?? tokenizerPath));
    const tokenizer = vocab ? vocab.wrapTokenizer(baseTokenizer) : baseTokenizer;
    const model = ClipModel.fromTensors(gpu, ck.config, ck.tensors);
    return { model, tokenizer, naming: ck.naming, notes, weightsFile: file, vocab };
  } finally {
    src.close();
  }
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
}
