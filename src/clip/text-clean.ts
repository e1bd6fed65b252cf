// OpenAI CLIP's text cleanup before BPE: whitespace_clean(basic_clean(text)).lower(), where
// basic_clean = ftfy.fix_text -> html.unescape twice -> strip.
import { fixText } from './text-fix.js';
import { htmlUnescape } from './html-unescape.js';

// The `regex` module's \s is Unicode White_Space; Python's str.strip() also drops U+001C..U+001F
// (str.isspace), which JS's trim() does not and which trim() would get wrong for U+FEFF.
const STRIP = /^[\p{White_Space}\x1c-\x1f]+|[\p{White_Space}\x1c-\x1f]+$/gu;
const WHITESPACE_RUN = /\p{White_Space}+/gu;

function pyStrip(s: string): string {
  return s.replace(STRIP, '');
}

/** OpenAI's basic_clean: ftfy (see text-fix.ts for the subset), html.unescape twice, strip. */
export function basicClean(text: string): string {
  return pyStrip(htmlUnescape(htmlUnescape(fixText(text))));
}

/** OpenAI's whitespace_clean: every whitespace run becomes one space, then strip. */
export function whitespaceClean(text: string): string {
  return pyStrip(text.replace(WHITESPACE_RUN, ' '));
}

/**
 * The exact string OpenAI's SimpleTokenizer.encode splits into words.
 * JS toLowerCase and Python str.lower agree (full case mapping, final sigma) up to Unicode version.
 */
export function cleanText(text: string): string {
  return whitespaceClean(basicClean(text)).toLowerCase();
}

// The pre-tokenisation pattern of OpenAI's SimpleTokenizer, which is compiled IGNORECASE with the
// `regex` module. Its input is already lower-cased, so case-insensitivity only matters where
// simple case folding maps a lowercase non-ASCII char onto a pattern letter; the only such char is
// U+017F (long s), which matches the 's' of "'s" and of "<|startoftext|>". The JS 'i' flag is
// deliberately not used: under it \p{L} would also match U+0345 (it folds to iota), while Python
// matches U+0345 with no alternative at all and so drops it; hence U+0345 is also excluded from
// the "other symbols" class.
const WORDS =
  /<\|[s\u017f]tartoftext\|>|<\|endoftext\|>|'[s\u017f]|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\p{White_Space}\p{L}\p{N}\u0345]+/gu;

/** The pieces `regex.findall(pat, cleaned)` yields for an already cleaned string. */
export function splitWords(cleaned: string): string[] {
  return cleaned.match(WORDS) ?? [];
}
