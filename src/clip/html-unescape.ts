// Python's html.unescape, rule for rule, because OpenAI's CLIP cleanup applies it twice to every
// prompt and any deviation changes token ids. Also the entity lookups ftfy's unescape_html needs.
import { HTML5_ENTITY_DATA } from './html-entities.js';

let entities: Map<string, string> | undefined;

/** Name (with its ';' when it has one, e.g. 'amp;' and legacy 'amp') -> replacement text. Built on first use. */
export function html5Entities(): ReadonlyMap<string, string> {
  if (entities) return entities;
  const m = new Map<string, string>();
  for (const entry of HTML5_ENTITY_DATA.split(/\s+/)) {
    if (!entry) continue;
    const eq = entry.indexOf('=');
    let name = entry.slice(0, eq);
    const value = String.fromCodePoint(...entry.slice(eq + 1).split('+').map((h) => parseInt(h, 16)));
    if (name.endsWith('!')) {
      name = name.slice(0, -1);
      m.set(name, value);
    }
    m.set(name + ';', value);
  }
  entities = m;
  return m;
}

// The numeric-reference fix-ups of the HTML5 parser (Python's html._invalid_charrefs): NUL and CR,
// and the C1 range read as Windows-1252, where 0x81, 0x8D, 0x8F, 0x90 and 0x9D map to themselves.
const WIN1252_C1 =
  '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';

/** Windows-1252 reading of a C1 code point 0x80..0x9F (undefined bytes stay as they are). */
export function win1252C1(cp: number): string {
  return WIN1252_C1[cp - 0x80]!;
}

// Python's html._invalid_codepoints: references to these decode to nothing.
function isDroppedCodePoint(n: number): boolean {
  return (
    (n >= 0x1 && n <= 0x8) || n === 0xb || (n >= 0xe && n <= 0x1f) || (n >= 0x7f && n <= 0x9f) ||
    (n >= 0xfdd0 && n <= 0xfdef) || (n & 0xfffe) === 0xfffe
  );
}

function numericRef(digits: string, radix: 10 | 16): string {
  // Python parses arbitrarily long numbers; anything past 0x10FFFF becomes U+FFFD, so only
  // the count of significant digits matters for huge values.
  const sig = digits.replace(/^0+/, '');
  const num = sig.length > (radix === 10 ? 7 : 6) ? Infinity : sig ? parseInt(sig, radix) : 0;
  if (num === 0) return '\ufffd';
  if (num === 0x0d) return '\r';
  if (num >= 0x80 && num <= 0x9f) return win1252C1(num);
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
  if (isDroppedCodePoint(num)) return '';
  return String.fromCodePoint(num);
}

function replaceCharref(ref: string): string {
  if (ref[0] === '#') {
    const body = ref.endsWith(';') ? ref.slice(0, -1) : ref;
    return body[1] === 'x' || body[1] === 'X' ? numericRef(body.slice(2), 16) : numericRef(body.slice(1), 10);
  }
  const table = html5Entities();
  const whole = table.get(ref);
  if (whole !== undefined) return whole;
  // Longest known prefix wins (the HTML5 rule for references without ';'), down to two chars.
  // Entity names are ASCII, so UTF-16 prefixes find the same match as Python's code-point ones.
  for (let x = ref.length - 1; x > 1; x--) {
    const hit = table.get(ref.slice(0, x));
    if (hit !== undefined) return hit + ref.slice(x);
  }
  return '&' + ref;
}

// Python's html._charref; the 'u' flag makes {1,32} count code points as Python does.
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

/** Exactly Python's `html.unescape(s)`. */
export function htmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(CHARREF, (_m, ref: string) => replaceCharref(ref));
}
