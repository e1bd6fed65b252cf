// A compact token embedding: only the rows of the tokenizer ids a model was trained on (the world's
// 236 ids instead of CLIP's 49,408), stored as `token_embedding.weight` [K, W] next to
// `token_embedding.token_ids` i32 [K], the sorted tokenizer id of each row. For a width-128 text
// tower that is 121 KB instead of 25 MB (f32) or 12.6 MB (f16).
//
// The model itself is an ordinary ClipModel whose vocabulary is the K rows (config.text.vocabSize =
// K); what changes is the tokenizer: `wrapTokenizer` gives a ClipTokenizer that emits row numbers
// instead of tokenizer ids, and throws an OutOfVocabularyError naming the word for any text that
// needs a token outside the K. Because the ids are sorted, the map preserves order: the end token
// (the largest id) stays the largest row, so CLIP's argmax pooling finds the same position, and
// the start token and padding id 0 keep their roles. Runtime-agnostic (no Node APIs).
import type { ClipTensorSource } from './checkpoint.js';
import { ClipTokenizer, cleanText, splitWords } from './tokenizer.js';

/** Name of the i32 [K] tensor that maps embedding rows to tokenizer ids. */
export const COMPACT_IDS_TENSOR = 'token_embedding.token_ids';

/** OpenAI CLIP's vocabulary size. */
export const CLIP_VOCAB_SIZE = 49408;

export class OutOfVocabularyError extends Error {
  constructor(
    message: string,
    /** The word of the text that needs the missing token(s). */
    readonly word: string,
    /** The tokenizer ids that are missing. */
    readonly ids: readonly number[],
  ) {
    super(message);
    this.name = 'OutOfVocabularyError';
  }
}

/** What the compact vocabulary needs of the tokenizer it wraps. */
type BaseTokenizer = ClipTokenizer;

export class CompactVocab {
  /** Sorted tokenizer ids; embedding row r is the token ids[r]. */
  readonly ids: Int32Array;
  /** Tokenizer id -> row, -1 where absent. */
  private readonly rowOf: Int32Array;

  /**
   * @param ids tokenizer ids kept (any order, no duplicates; sorted here)
   * @param fullSize size of the tokenizer's vocabulary (49408 for CLIP)
   * @param note appended to out-of-vocabulary errors (e.g. where the vocabulary comes from)
   */
  constructor(ids: ArrayLike<number>, readonly fullSize = CLIP_VOCAB_SIZE, readonly note = '') {
    const sorted = Int32Array.from(ids).sort();
    if (sorted.length === 0) throw new RangeError('compact vocabulary: no ids');
    this.rowOf = new Int32Array(fullSize).fill(-1);
    sorted.forEach((id, r) => {
      if (!Number.isInteger(id) || id < 0 || id >= fullSize) throw new RangeError(`compact vocabulary: id ${id} is outside 0..${fullSize - 1}`);
      if (r > 0 && sorted[r - 1] === id) throw new RangeError(`compact vocabulary: id ${id} appears twice`);
      this.rowOf[id] = r;
    });
    this.ids = sorted;
  }

  /** Number of rows (the model's vocabulary size). */
  get size(): number {
    return this.ids.length;
  }

  has(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.fullSize && this.rowOf[id]! >= 0;
  }

  /** Row of a tokenizer id, or -1. */
  row(id: number): number {
    return this.has(id) ? this.rowOf[id]! : -1;
  }

  /** Tokenizer ids -> rows (a new array); throws a RangeError for an id outside the vocabulary. */
  mapIds(ids: ArrayLike<number>): Int32Array {
    const out = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const r = this.row(ids[i]!);
      if (r < 0) throw new RangeError(`token id ${ids[i]} (position ${i}) is not in the compact vocabulary of ${this.size} tokens${this.note ? ` (${this.note})` : ''}`);
      out[i] = r;
    }
    return out;
  }

  /** A [fullSize, W] table with the K rows in place and zeros elsewhere (for tools that need CLIP's layout). */
  expandEmbedding(compact: Float32Array, width: number): Float32Array {
    if (compact.length !== this.size * width) throw new RangeError(`expandEmbedding: ${compact.length} values, expected [${this.size}, ${width}]`);
    const full = new Float32Array(this.fullSize * width);
    this.ids.forEach((id, r) => full.set(compact.subarray(r * width, (r + 1) * width), id * width));
    return full;
  }

  /** The K rows of a [fullSize, W] table. */
  compactEmbedding(full: Float32Array, width: number): Float32Array {
    if (full.length !== this.fullSize * width) throw new RangeError(`compactEmbedding: ${full.length} values, expected [${this.fullSize}, ${width}]`);
    const out = new Float32Array(this.size * width);
    this.ids.forEach((id, r) => out.set(full.subarray(id * width, (id + 1) * width), r * width));
    return out;
  }

  /**
   * A tokenizer that speaks rows: encode/tokenize return row numbers, sotId/eotId/vocabSize are the
   * rows' (so zeroShotWeights, prompt builders and eotPositions work unchanged on a compact model),
   * idToToken/decode take rows. A text needing a token outside the vocabulary throws an
   * OutOfVocabularyError that names the word.
   */
  wrapTokenizer(base: BaseTokenizer): ClipTokenizer {
    if (base.vocabSize !== this.fullSize) {
      throw new RangeError(`compact vocabulary indexes a ${this.fullSize}-token vocabulary, the tokenizer has ${base.vocabSize}`);
    }
    const vocab = this;
    const sot = vocab.row(base.sotId);
    const eot = vocab.row(base.eotId);
    if (sot < 0 || eot < 0) throw new RangeError('compact vocabulary lacks the start or end token');
    const encode = (text: string): number[] => {
      const ids = base.encode(text);
      const rows = ids.map((id) => vocab.row(id));
      if (rows.every((r) => r >= 0)) return rows;
      throw vocab.oovError(base, text);
    };
    // The wrapper inherits tokenize/decode/tokens from the base instance; they call this.encode,
    // this.sotId, this.eotId and this.idToToken, which are overridden here.
    const wrapped = Object.create(base, {
      sotId: { value: sot, enumerable: true },
      eotId: { value: eot, enumerable: true },
      vocabSize: { value: vocab.size, enumerable: true },
      compactVocab: { value: vocab, enumerable: false },
      encode: { value: encode },
      idToToken: { value: (row: number) => (Number.isInteger(row) && row >= 0 && row < vocab.size ? base.idToToken(vocab.ids[row]!) : undefined) },
      tokenToId: {
        value: (token: string) => {
          const id = base.tokenToId(token);
          return id === undefined || !vocab.has(id) ? undefined : vocab.row(id);
        },
      },
      tokens: { value: (text: string) => encode(text).map((r) => base.idToToken(vocab.ids[r]!)!) },
    }) as ClipTokenizer;
    return wrapped;
  }

  /** The error for a text with a token outside the vocabulary: names the first such word. */
  private oovError(base: BaseTokenizer, text: string): OutOfVocabularyError {
    for (const word of splitWords(cleanText(text))) {
      const missing = base.encode(word).filter((id) => !this.has(id));
      if (missing.length) {
        return new OutOfVocabularyError(
          `"${word}" (in ${JSON.stringify(text)}) is not in this model's vocabulary: it knows only the ${this.size} tokens ` +
            `of the texts it was trained on${this.note ? ` (${this.note})` : ''}; missing token id${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`,
          word,
          missing,
        );
      }
    }
    // BPE is per word, so some word above has the missing token; this is only a safety net.
    const missing = base.encode(text).filter((id) => !this.has(id));
    return new OutOfVocabularyError(`${JSON.stringify(text)} needs tokens outside this model's vocabulary (ids ${missing.join(', ')})`, text, missing);
  }
}

/** The compact vocabulary a tokenizer from wrapTokenizer uses, or null for a plain tokenizer. */
export function compactVocabOf(tokenizer: ClipTokenizer): CompactVocab | null {
  return (tokenizer as { compactVocab?: CompactVocab }).compactVocab ?? null;
}

/** A tensor source that can also give i32 data (safetensors files can). */
export type CompactAwareSource = ClipTensorSource & { getI32(tensor: string): Promise<Int32Array> };

/**
 * The loader hook: if `src` holds `token_embedding.token_ids`, returns its compact vocabulary and a
 * view of `src` without that tensor (so the CLIP checkpoint reader sees an ordinary OpenAI-named
 * checkpoint whose vocabulary is K rows); otherwise `src` itself and null.
 */
export async function splitCompactVocab(src: CompactAwareSource, opts: { fullSize?: number; note?: string } = {}): Promise<{ source: ClipTensorSource; vocab: CompactVocab | null }> {
  if (!src.names.includes(COMPACT_IDS_TENSOR)) return { source: src, vocab: null };
  const info = src.info(COMPACT_IDS_TENSOR);
  if (info.shape.length !== 1) throw new Error(`${src.name}: ${COMPACT_IDS_TENSOR} must be 1-D, has shape [${info.shape.join(',')}]`);
  const emb = src.names.includes('token_embedding.weight') ? src.info('token_embedding.weight').shape : undefined;
  if (!emb || emb[0] !== info.shape[0]) {
    throw new Error(`${src.name}: ${COMPACT_IDS_TENSOR} has ${info.shape[0]} ids but token_embedding.weight has shape [${emb?.join(',') ?? 'missing'}]`);
  }
  let vocab: CompactVocab;
  try {
    vocab = new CompactVocab(await src.getI32(COMPACT_IDS_TENSOR), opts.fullSize ?? CLIP_VOCAB_SIZE, opts.note ?? src.name);
  } catch (e) {
    throw new Error(`${src.name}: bad ${COMPACT_IDS_TENSOR}: ${(e as Error).message}`);
  }
  const names = src.names.filter((n) => n !== COMPACT_IDS_TENSOR);
  const source: ClipTensorSource = {
    name: src.name,
    names,
    info: (n) => src.info(n),
    getF32: (n) => src.getF32(n),
  };
  return { source, vocab };
}
