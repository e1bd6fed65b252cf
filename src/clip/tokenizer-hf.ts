// Hugging Face's CLIP tokenizer files -> the same ClipTokenizer. HF's CLIP vocabulary is OpenAI's
// (same strings, same ids, same merges), so ids come out identical. The text cleanup applied is
// always OpenAI's (ftfy subset, html.unescape twice, whitespace, lower); HF's own normalizer and
// pre-tokenizer settings in tokenizer.json are not read. HF pads with EOT: pass
// { padId: tokenizer.eotId } to tokenize() for identical rows.
import type { Merge } from './bpe.js';
import { ClipTokenizer } from './tokenizer.js';
import { TokenizerError } from './tokenizer-error.js';
import { parseMerges } from './vocab-text.js';

function parseJson(source: string | object, what: string): unknown {
  if (typeof source !== 'string') return source;
  try {
    return JSON.parse(source);
  } catch (e) {
    throw new TokenizerError(`${what} is not valid JSON: ${(e as Error).message}`, 'bad-vocab');
  }
}

function asVocab(v: unknown, what: string): Record<string, number> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new TokenizerError(`${what} must be an object of token -> id`, 'bad-vocab');
  }
  return v as Record<string, number>;
}

/** vocab.json (text or parsed) + merges.txt (text) -> tokenizer. */
export function loadHFVocabMerges(vocabJson: string | object, mergesTxt: string): ClipTokenizer {
  return ClipTokenizer.fromVocab(asVocab(parseJson(vocabJson, 'vocab.json'), 'vocab.json'), parseMerges(mergesTxt));
}

interface HFTokenizerJson {
  model?: { type?: string; vocab?: unknown; merges?: unknown; end_of_word_suffix?: string | null };
  added_tokens?: { id: number; content: string }[];
}

/** tokenizer.json (text or parsed) with a BPE model -> tokenizer. Merges may be "a b" or ["a", "b"]. */
export function loadHFTokenizerJson(json: string | object): ClipTokenizer {
  const doc = parseJson(json, 'tokenizer.json') as HFTokenizerJson;
  const model = doc?.model;
  if (!model || model.type !== 'BPE') {
    throw new TokenizerError(`tokenizer.json: expected a BPE model, found ${JSON.stringify(model?.type)}`, 'bad-vocab');
  }
  if (model.end_of_word_suffix != null && model.end_of_word_suffix !== '</w>') {
    // GPT-2-style vocabularies mark word starts instead; CLIP's BPE would give wrong ids with them.
    throw new TokenizerError(`tokenizer.json: end_of_word_suffix is ${JSON.stringify(model.end_of_word_suffix)}, CLIP's is "</w>"`, 'bad-vocab');
  }
  const vocab = new Map(Object.entries(asVocab(model.vocab, 'tokenizer.json model.vocab')));
  // Special tokens may live only in added_tokens.
  for (const t of doc.added_tokens ?? []) if (!vocab.has(t.content)) vocab.set(t.content, t.id);
  if (!Array.isArray(model.merges)) throw new TokenizerError('tokenizer.json: model.merges must be an array', 'bad-vocab');
  const merges: Merge[] = model.merges.map((m: unknown, i: number) => {
    const pair = typeof m === 'string' ? m.split(' ') : m;
    if (!Array.isArray(pair) || pair.length !== 2 || pair.some((p) => typeof p !== 'string')) {
      throw new TokenizerError(`tokenizer.json: merge ${i} is not a pair: ${JSON.stringify(m)}`, 'bad-vocab');
    }
    return [pair[0], pair[1]] as const;
  });
  return ClipTokenizer.fromVocab(vocab, merges);
}
