// Node-only loading of tokenizer files: the vocabulary shipped in weights/, or a path to OpenAI's or
// Hugging Face's files. Everything else lives in the runtime-agnostic tokenizer.ts.
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClipTokenizer, TokenizerError, loadOpenAITokenizer } from './tokenizer.js';
import { loadHFTokenizerJson, loadHFVocabMerges } from './tokenizer-hf.js';

export const OPENAI_VOCAB_FILE = 'bpe_simple_vocab_16e6.txt.gz';

/**
 * weights/bpe_simple_vocab_16e6.txt.gz of this package. Found by walking up from this module, so it
 * works from src/clip (run as TypeScript) and from dist/src/clip (compiled) alike.
 */
export function defaultVocabPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'weights', OPENAI_VOCAB_FILE);
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new TokenizerError(`cannot find weights/${OPENAI_VOCAB_FILE} above ${fileURLToPath(import.meta.url)}`, 'bad-vocab');
    dir = up;
  }
}

let shipped: Promise<ClipTokenizer> | undefined;

/**
 * A tokenizer from `path`, or the shipped OpenAI vocabulary (loaded once and shared) when omitted.
 * `path` may be: OpenAI's merges file (.txt.gz or .txt); HF's tokenizer.json; HF's vocab.json (with
 * merges.txt beside it); or a folder holding tokenizer.json, vocab.json + merges.txt, or OpenAI's file.
 */
export async function loadClipTokenizer(path?: string): Promise<ClipTokenizer> {
  if (path === undefined) {
    // Shared, but a failed load is not cached.
    shipped ??= Promise.resolve().then(() => loadFile(defaultVocabPath())).catch((e: unknown) => {
      shipped = undefined;
      throw e;
    });
    return shipped;
  }
  return loadFile(path);
}

async function loadFile(path: string): Promise<ClipTokenizer> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new TokenizerError(`vocabulary not found: ${path}`, 'bad-vocab');
  }
  if (info.isDirectory()) {
    for (const name of ['tokenizer.json', 'vocab.json', OPENAI_VOCAB_FILE, 'bpe_simple_vocab_16e6.txt']) {
      if (existsSync(join(path, name))) return loadFile(join(path, name));
    }
    throw new TokenizerError(`no tokenizer.json, vocab.json + merges.txt or ${OPENAI_VOCAB_FILE} in ${path}`, 'bad-vocab');
  }
  const name = basename(path);
  if (name === 'vocab.json') {
    const merges = join(dirname(path), 'merges.txt');
    if (!existsSync(merges)) throw new TokenizerError(`${path} needs merges.txt beside it`, 'bad-vocab');
    return loadHFVocabMerges(await readFile(path, 'utf8'), await readFile(merges, 'utf8'));
  }
  if (name.endsWith('.json')) return loadHFTokenizerJson(await readFile(path, 'utf8'));
  return loadOpenAITokenizer(await readFile(path));
}
