// CLIP's tokenizer, id for id as OpenAI's clip.simple_tokenizer.SimpleTokenizer and clip.tokenize.
// Runtime-agnostic (Node, Deno, browsers): no file system here; callers hand over the vocabulary's
// bytes (see tokenizer-node.ts for Node's loader of the shipped file).
// Pipeline: cleanText (text-clean.ts: ftfy subset, html.unescape twice, whitespace, lower), then
// splitWords (OpenAI's regex), then byte-level BPE per word (bpe.ts). Steps that depend on Unicode
// data (NFC, lower-casing, \p{L}/\p{N}) use the JS runtime's tables; Python's can be older (3.11 has
// Unicode 14), so only characters assigned after that can tokenize differently.
import {
  BpeModel, EOT_TEXT, END_OF_WORD, OPENAI_MERGE_COUNT, SOT_TEXT, charsToBytes, openaiBaseVocab,
  type Merge,
} from './bpe.js';
import { cleanText, splitWords } from './text-clean.js';
import { TokenizerError } from './tokenizer-error.js';
import { parseMerges, readTextLines } from './vocab-text.js';

export { SOT_TEXT, EOT_TEXT, OPENAI_MERGE_COUNT, type Merge } from './bpe.js';
export { cleanText, splitWords } from './text-clean.js';
export { htmlUnescape } from './html-unescape.js';
export { fixText } from './text-fix.js';
export { TokenizerError, type TokenizerErrorKind } from './tokenizer-error.js';
export { gunzip, parseMerges, readTextLines } from './vocab-text.js';

export interface TokenizeOptions {
  /** Row length, 77 for every CLIP. */
  contextLength?: number;
  /** Cut a too-long text to contextLength and make its last token EOT, instead of throwing. */
  truncate?: boolean;
  /**
   * Id written after EOT: 0 as in OpenAI's clip.tokenize (default); Hugging Face's CLIP pads with
   * EOT (49407). Both give the same text features: CLIP pools the position of the *first* maximum id
   * (argmax), and EOT is the largest id, so the real EOT wins over any EOT padding after it.
   */
  padId?: number;
  /** Throw for a text that cleans to no tokens (OpenAI encodes it as just SOT, EOT). */
  rejectEmpty?: boolean;
}

const utf8Lenient = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

export class ClipTokenizer {
  readonly sotId: number;
  readonly eotId: number;
  /** One past the largest id (49408 for CLIP). */
  readonly vocabSize: number;

  constructor(private readonly model: BpeModel) {
    this.sotId = model.encoder.get(SOT_TEXT)!;
    this.eotId = model.encoder.get(EOT_TEXT)!;
    this.vocabSize = model.decoder.length;
  }

  /** OpenAI's layout: 256 byte chars, the same with '</w>', one token per merge, SOT, EOT. */
  static fromOpenAIMerges(merges: readonly Merge[]): ClipTokenizer {
    const vocab = openaiBaseVocab();
    for (const [a, b] of merges) vocab.push(a + b);
    vocab.push(SOT_TEXT, EOT_TEXT);
    // Later duplicates win, as in Python's dict(zip(vocab, range(...))).
    const encoder = new Map<string, number>();
    vocab.forEach((tok, id) => encoder.set(tok, id));
    return new ClipTokenizer(new BpeModel(encoder, merges, [SOT_TEXT, EOT_TEXT]));
  }

  /** An explicit vocabulary (e.g. Hugging Face's vocab.json) plus its merges, in rank order. */
  static fromVocab(vocab: ReadonlyMap<string, number> | Readonly<Record<string, number>>, merges: readonly Merge[]): ClipTokenizer {
    const encoder = vocab instanceof Map ? new Map(vocab) : new Map(Object.entries(vocab));
    for (const [tok, id] of encoder) {
      if (!Number.isInteger(id) || id < 0) throw new TokenizerError(`vocabulary id of ${JSON.stringify(tok)} is not a non-negative integer: ${id}`, 'bad-vocab');
    }
    for (const sp of [SOT_TEXT, EOT_TEXT]) {
      if (!encoder.has(sp)) throw new TokenizerError(`not a CLIP vocabulary: no ${sp} token`, 'bad-vocab');
    }
    return new ClipTokenizer(new BpeModel(encoder, merges, [SOT_TEXT, EOT_TEXT]));
  }

  /** The words of `text` as vocabulary strings (byte-mapped, '</w>' ends a word): OpenAI's bpe() output. */
  tokens(text: string): string[] {
    return this.encode(text).map((id) => this.model.decoder[id]!);
  }

  /** SimpleTokenizer.encode: cleaned, split and BPE'd ids, without SOT/EOT. */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const word of splitWords(cleanText(text))) {
      for (const id of this.model.wordIds(word)) ids.push(id);
    }
    return ids;
  }

  /** The vocabulary string of one id (byte-mapped form), or undefined outside the vocabulary. */
  idToToken(id: number): string | undefined {
    return Number.isInteger(id) ? this.model.decoder[id] : undefined;
  }

  tokenToId(token: string): number | undefined {
    return this.model.encoder.get(token);
  }

  /**
   * SimpleTokenizer.decode: the ids' strings concatenated, read back as UTF-8 bytes with invalid
   * sequences replaced by U+FFFD, then every '</w>' turned into a space (so words end in a space).
   * SOT/EOT and padding ids are decoded like any other id.
   */
  decode(ids: Iterable<number>): string {
    let chars = '';
    let i = 0;
    for (const id of ids) {
      const tok = this.idToToken(id);
      if (tok === undefined) {
        throw new TokenizerError(`decode: token id ${id} (position ${i}) is not in the vocabulary (0..${this.vocabSize - 1})`, 'unknown-id', i);
      }
      chars += tok;
      i++;
    }
    return utf8Lenient.decode(charsToBytes(chars)).replaceAll(END_OF_WORD, ' ');
  }

  /**
   * clip.tokenize: one row per text, [SOT, ...ids, EOT] then padding, contextLength long. The rows
   * are views into one contiguous Int32Array (rows[0].buffer), ready for a [texts, contextLength]
   * upload. A text longer than contextLength throws unless `truncate`.
   */
  tokenize(texts: string | readonly string[], options: TokenizeOptions = {}): Int32Array[] {
    const list = typeof texts === 'string' ? [texts] : texts;
    const ctx = options.contextLength ?? 77;
    const padId = options.padId ?? 0;
    if (!Number.isInteger(ctx) || ctx < 1) throw new TokenizerError(`contextLength must be a positive integer, got ${ctx}`, 'bad-option');
    if (!Number.isInteger(padId) || padId < -(2 ** 31) || padId >= 2 ** 31) throw new TokenizerError(`padId must be an int32, got ${padId}`, 'bad-option');
    const data = new Int32Array(list.length * ctx);
    const rows: Int32Array[] = [];
    list.forEach((text, i) => {
      const ids = this.encode(text);
      if (options.rejectEmpty && ids.length === 0) {
        throw new TokenizerError(`text ${i} is empty: ${JSON.stringify(text)} has no tokens after cleanup`, 'empty', i);
      }
      const row = data.subarray(i * ctx, (i + 1) * ctx);
      const n = ids.length + 2;
      if (n > ctx && !options.truncate) {
        // OpenAI's message, plus the length.
        throw new TokenizerError(
          `Input ${text} is too long for context length ${ctx} (${n} tokens with start and end; the truncate option cuts it)`,
          'too-long', i,
        );
      }
      row[0] = this.sotId;
      const kept = Math.min(ids.length, ctx - 1);
      for (let k = 0; k < kept; k++) row[k + 1] = ids[k]!;
      // The EOT goes right after the ids, or over the last kept token when cut (or at 0 if ctx is 1).
      row[Math.min(kept + 1, ctx - 1)] = this.eotId;
      if (padId !== 0) row.fill(padId, Math.min(n, ctx));
      rows.push(row);
    });
    return rows;
  }
}

/**
 * OpenAI's vocabulary file (bpe_simple_vocab_16e6.txt.gz, or its uncompressed text) -> tokenizer,
 * reading the first 48894 merges as SimpleTokenizer does.
 */
export async function loadOpenAITokenizer(data: Uint8Array | ArrayBuffer): Promise<ClipTokenizer> {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  let text: string;
  try {
    text = await readTextLines(bytes, OPENAI_MERGE_COUNT + 1); // the header line, then the merges
  } catch (e) {
    throw new TokenizerError(`cannot read the vocabulary file (corrupt gzip or not UTF-8): ${(e as Error).message}`, 'bad-vocab');
  }
  const merges = parseMerges(text, OPENAI_MERGE_COUNT);
  if (merges.length !== OPENAI_MERGE_COUNT) {
    throw new TokenizerError(`vocabulary file has ${merges.length} merges; CLIP's has ${OPENAI_MERGE_COUNT}`, 'bad-vocab');
  }
  return ClipTokenizer.fromOpenAIMerges(merges);
}
