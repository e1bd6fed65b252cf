// Reading merges files: gzip via the standard DecompressionStream (Node 18+, Deno, browsers) and
// the "#version" + "a b" line format shared by OpenAI's file and Hugging Face's merges.txt.
import type { Merge } from './bpe.js';
import { TokenizerError } from './tokenizer-error.js';

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function gunzipStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  // Blob wants ArrayBuffer-backed bytes; copy the rare SharedArrayBuffer-backed view.
  const owned = bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
  return new Blob([owned]).stream().pipeThrough(new DecompressionStream('gzip'));
}

/** gzip -> bytes. */
export async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await new Response(gunzipStream(bytes)).arrayBuffer());
}

/**
 * UTF-8 text of `bytes` (gzip or not), stopping once it holds `lines` complete lines: OpenAI's file
 * is 3.2 MB unpacked but CLIP reads only its first 48895 lines (~0.5 MB).
 */
export async function readTextLines(bytes: Uint8Array, lines = Infinity): Promise<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  if (!isGzip(bytes)) return decoder.decode(bytes);
  const reader = gunzipStream(bytes).getReader();
  let text = '';
  let seen = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    const chunk = decoder.decode(value, { stream: true });
    for (let i = chunk.indexOf('\n'); i >= 0; i = chunk.indexOf('\n', i + 1)) seen++;
    text += chunk;
    if (seen >= lines) {
      await reader.cancel();
      return text;
    }
  }
}

/**
 * Merge pairs of a merges file, in rank order: a first line holding '#version' is a header and
 * skipped, blank lines are skipped, at most `limit` pairs are read.
 */
export function parseMerges(text: string, limit = Infinity): Merge[] {
  const merges: Merge[] = [];
  let start = 0;
  for (let lineNo = 1; start < text.length && merges.length < limit; lineNo++) {
    const nl = text.indexOf('\n', start);
    const end = nl < 0 ? text.length : nl;
    const raw = text.slice(start, end);
    start = end + 1;
    if (lineNo === 1 && raw.includes('#version')) continue;
    const line = raw.trim();
    if (line === '') continue;
    const parts = line.split(/\s+/);
    if (parts.length !== 2) throw new TokenizerError(`merges line ${lineNo} is not two symbols: ${JSON.stringify(raw)}`, 'bad-vocab');
    merges.push([parts[0]!, parts[1]!]);
  }
  return merges;
}
