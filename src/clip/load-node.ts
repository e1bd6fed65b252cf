// Loads a CLIP checkpoint from disk: a .safetensors file (OpenAI/open_clip or HF naming) or a
// Hugging Face model folder (model.safetensors + config.json + tokenizer files).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../gpu/index.js';
import { openSafetensors } from '../io/safetensors-node.js';
import { loadClipCheckpoint, type Activation, type ClipNaming } from './checkpoint.js';
import { ClipModel } from './model.js';
import { loadClipTokenizer } from './tokenizer-node.js';
import type { ClipTokenizer } from './tokenizer.js';

export interface LoadedClip {
  model: ClipModel;
  tokenizer: ClipTokenizer;
  naming: ClipNaming;
  /** Human-readable notes for the user (e.g. the activation default). */
  notes: string[];
  weightsFile: string;
}

export interface LoadClipOptions {
  activation?: Activation;
}

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
    if (existsSync(cfg)) {
      try {
        hfConfig = JSON.parse(readFileSync(cfg, 'utf8'));
      } catch (e) {
        throw new Error(`${cfg}: not valid JSON (${(e as Error).message})`);
      }
    }
    if (['tokenizer.json', 'vocab.json'].some((f) => existsSync(join(path, f)))) tokenizerPath = path;
  } else {
    const cfg = join(path, '..', 'config.json');
    if (path.endsWith('.safetensors') && existsSync(cfg) && existsSync(join(path, '..', 'model.safetensors'))) {
      hfConfig = JSON.parse(readFileSync(cfg, 'utf8'));
    }
  }
  const src = await openSafetensors(file);
  try {
    const ck = await loadClipCheckpoint(src, { ...(hfConfig ? { hfConfig } : {}), ...(opts.activation ? { activation: opts.activation } : {}) });
    const notes: string[] = [];
    if (ck.config.activationSource === 'default') {
      notes.push(`${file}: no config says which activation the model uses; using QuickGELU (OpenAI's). Pass --act gelu for open_clip models trained with GELU.`);
    }
    const model = ClipModel.fromTensors(gpu, ck.config, ck.tensors);
    const tokenizer = await loadClipTokenizer(tokenizerPath);
    return { model, tokenizer, naming: ck.naming, notes, weightsFile: file };
  } finally {
    src.close();
  }
}
