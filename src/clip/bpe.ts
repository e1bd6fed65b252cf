// CLIP's byte-level BPE (GPT-2 style, with '</w>' marking the end of a word), independent of where
// the vocabulary came from: OpenAI's merges list or Hugging Face's vocab.json + merges.
export const SOT_TEXT = '<|startoftext|>';
export const EOT_TEXT = '<|endoftext|>';
export const END_OF_WORD = '</w>';
/** How many merges OpenAI's SimpleTokenizer reads from bpe_simple_vocab_16e6.txt (49152 - 256 - 2). */
export const OPENAI_MERGE_COUNT = 49152 - 256 - 2;

/**
 * GPT-2's bytes_to_unicode: byte b -> a printable char, so BPE never sees whitespace or control
 * chars. Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves, the other 68 to
 * U+0100.. in byte order. Index = byte.
 */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const table: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : next++);
  }
  return table;
})();

/** OpenAI's vocabulary order for the first 512 ids: the byte chars (bs order), then each + '</w>'. */
export function openaiBaseVocab(): string[] {
  // bytes_to_unicode() lists the printable bytes first, then the remapped ones.
  const printable: string[] = [];
  const remapped: string[] = [];
  for (let b = 0; b < 256; b++) {
    const ch = BYTE_TO_CHAR[b]!;
    (ch.charCodeAt(0) === b ? printable : remapped).push(ch);
  }
  const base = [...printable, ...remapped];
  return [...base, ...base.map((c) => c + END_OF_WORD)];
}

const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

export type Merge = readonly [string, string];

const CACHE_LIMIT = 1 << 17;

/** A BPE vocabulary (token string <-> id) with merge ranks and a per-word cache. */
export class BpeModel {
  readonly encoder: ReadonlyMap<string, number>;
  /** id -> token string; a hole where no string has that id. */
  readonly decoder: readonly (string | undefined)[];
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, readonly number[]>();
  private readonly specials = new Map<string, readonly number[]>();

  /**
   * @param specials token strings (e.g. '<|startoftext|>') that a pre-tokenised word equal to them
   *   maps to directly, as OpenAI's pre-seeded BPE cache does; each must be in `encoder`.
   */
  constructor(encoder: ReadonlyMap<string, number>, merges: readonly Merge[], specials: readonly string[]) {
    this.encoder = encoder;
    const decoder: (string | undefined)[] = [];
    for (const [tok, id] of encoder) decoder[id] = tok;
    this.decoder = decoder;
    // Later duplicates win, as in Python's dict(zip(merges, range(...))).
    merges.forEach(([a, b], i) => this.ranks.set(a + ' ' + b, i));
    for (const sp of specials) {
      const id = encoder.get(sp);
      if (id === undefined) throw new Error(`vocabulary has no ${JSON.stringify(sp)} token`);
      this.specials.set(sp, [id]);
    }
  }

  /**
   * Token strings for one pre-tokenised word given as byte chars (see BYTE_TO_CHAR). Same merge
   * rule as OpenAI's bpe(): repeatedly merge every non-overlapping occurrence, left to right, of the
   * lowest-ranked adjacent pair, until no adjacent pair has a rank.
   */
  bpe(word: string): string[] {
    const chars = Array.from(word);
    if (chars.length === 0) return [];
    let parts = chars.slice(0, -1);
    parts.push(chars[chars.length - 1]! + END_OF_WORD);
    while (parts.length > 1) {
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = this.ranks.get(parts[i]! + ' ' + parts[i + 1]!);
        if (r !== undefined && r < best) {
          best = r;
          first = parts[i]!;
          second = parts[i + 1]!;
        }
      }
      if (best === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < parts.length; ) {
        if (parts[i] === first && i + 1 < parts.length && parts[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(parts[i]!);
          i += 1;
        }
      }
      parts = merged;
    }
    return parts;
  }

  /**
   * Ids for one pre-tokenised word (raw text, before byte mapping). Cached by raw text; the cache is
   * cleared when it reaches 131072 words so a long-running process doesn't grow without bound
   * (OpenAI's never shrinks; the ids are the same either way).
   */
  wordIds(word: string): readonly number[] {
    const hit = this.cache.get(word) ?? this.specials.get(word);
    if (hit) return hit;
    const ids = this.bpe(bytesToChars(utf8.encode(word))).map((tok) => {
      const id = this.encoder.get(tok);
      if (id === undefined) throw new Error(`BPE produced ${JSON.stringify(tok)}, which is not in the vocabulary`);
      return id;
    });
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(word, ids);
    return ids;
  }
}

const utf8 = new TextEncoder();

/** UTF-8 bytes -> the byte-char string BPE works on. */
export function bytesToChars(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += BYTE_TO_CHAR[b];
  return s;
}

/**
 * Byte-char string -> bytes. Chars outside the byte alphabet (never produced by CLIP's vocabulary,
 * only by foreign vocabularies) are kept as their own UTF-8 rather than failing.
 */
export function charsToBytes(chars: string): Uint8Array {
  const out: number[] = [];
  for (const ch of chars) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b !== undefined) out.push(b);
    else out.push(...utf8.encode(ch));
  }
  return Uint8Array.from(out);
}
