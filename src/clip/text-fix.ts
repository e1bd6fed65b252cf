// The part of ftfy.fix_text (ftfy 6.3, default config) that acts on ordinary text, in ftfy's order,
// because OpenAI's CLIP tokenizer runs every prompt through it before html.unescape.
//
// Covered, each exactly as ftfy does it: line-by-line segments with the sticky "a '<' turns HTML
// unescaping off" rule; unescape_html (only ';'-terminated entities, plus ftfy's all-caps forms such
// as &EACUTE;); fix_c1_controls (C1 controls read as Windows-1252); fix_latin_ligatures;
// fix_character_width (fullwidth/halfwidth forms, U+3000 -> space); uncurl_quotes; fix_line_breaks;
// fix_surrogates (lone surrogates -> U+FFFD); remove_terminal_escapes; remove_control_chars; NFC;
// all repeated until nothing changes.
// Not covered: fix_encoding, ftfy's mojibake repair (e.g. 'cafÃ©' -> 'café'), with its badness
// heuristic and its sub-steps restore_byte_a0, replace_lossy_sequences and decode_inconsistent_utf8;
// it leaves text that does not look like mojibake unchanged. Nor the 1M-character segment cap.
import { html5Entities, htmlUnescape, win1252C1 } from './html-unescape.js';

let ftfyEntities: Map<string, string> | undefined;

// ftfy's HTML_ENTITIES: '&name;' for every ';'-terminated HTML5 name, plus the upper-cased form of
// each all-lowercase name when that form means nothing to html.unescape (so &EACUTE; -> 'É').
function ftfyEntityTable(): Map<string, string> {
  if (ftfyEntities) return ftfyEntities;
  const m = new Map<string, string>();
  for (const [name, value] of html5Entities()) {
    if (!name.endsWith(';')) continue;
    m.set('&' + name, value);
  }
  for (const [name, value] of html5Entities()) {
    if (!name.endsWith(';') || name !== name.toLowerCase()) continue;
    const upper = '&' + name.toUpperCase();
    if (htmlUnescape(upper) === upper) m.set(upper, value.toUpperCase());
  }
  ftfyEntities = m;
  return m;
}

const FTFY_ENTITY = /&#?[0-9A-Za-z]{1,24};/g;

function unescapeHtml(text: string): string {
  if (!text.includes('&')) return text;
  const table = ftfyEntityTable();
  return text.replace(FTFY_ENTITY, (ent) => {
    const hit = table.get(ent);
    if (hit !== undefined) return hit;
    if (ent.startsWith('&#')) {
      // Numeric: html.unescape's answer, unless it stopped before the ';'.
      const un = htmlUnescape(ent);
      return un.includes(';') ? ent : un;
    }
    return ent;
  });
}

const C1 = /[\x80-\x9f]/g;
const LIGATURES: Readonly<Record<string, string>> = {
  '\u0132': 'IJ', '\u0133': 'ij', '\u0149': '\u02bcn', '\u01f1': 'DZ', '\u01f2': 'Dz', '\u01f3': 'dz',
  '\u01c4': 'D\u017d', '\u01c5': 'D\u017e', '\u01c6': 'd\u017e', '\u01c7': 'LJ', '\u01c8': 'Lj',
  '\u01c9': 'lj', '\u01ca': 'NJ', '\u01cb': 'Nj', '\u01cc': 'nj', '\ufb00': 'ff', '\ufb01': 'fi',
  '\ufb02': 'fl', '\ufb03': 'ffi', '\ufb04': 'ffl', '\ufb05': '\u017ft', '\ufb06': 'st',
};
const LIGATURE_RE = /[\u0132\u0133\u0149\u01c4-\u01cc\u01f1-\u01f3\ufb00-\ufb06]/g;

let widthMap: Map<string, string> | undefined;
// ftfy builds this from NFKC of U+FF01..U+FFEF; so do we, from the runtime's Unicode tables.
function widthTable(): Map<string, string> {
  if (widthMap) return widthMap;
  const m = new Map<string, string>([['\u3000', ' ']]);
  for (let cp = 0xff01; cp < 0xfff0; cp++) {
    const ch = String.fromCharCode(cp);
    const alt = ch.normalize('NFKC');
    if (alt !== ch) m.set(ch, alt);
  }
  widthMap = m;
  return m;
}
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;

const SINGLE_QUOTES = /[\u02bc\u2018-\u201b]/g;
const DOUBLE_QUOTES = /[\u201c-\u201f]/g;
const LINE_BREAKS = /\r\n|[\r\u2028\u2029\x85]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
// ftfy uses Python's re, whose \d is any Unicode decimal digit.
const ANSI_ESCAPE = /\x1b\[(?:\p{Nd}|;)*[a-zA-Z]/gu;
const CONTROL_CHARS = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

function fixSegment(segment: string, unescape: boolean): string {
  let text = segment;
  for (;;) {
    const before = text;
    if (unescape) text = unescapeHtml(text);
    text = text.replace(C1, (c) => win1252C1(c.charCodeAt(0)));
    text = text.replace(LIGATURE_RE, (c) => LIGATURES[c]!);
    text = text.replace(WIDTH_RE, (c) => widthTable().get(c) ?? c);
    text = text.replace(DOUBLE_QUOTES, '"').replace(SINGLE_QUOTES, "'");
    text = text.replace(LINE_BREAKS, '\n');
    text = text.replace(LONE_SURROGATE, '\ufffd');
    text = text.replace(ANSI_ESCAPE, '');
    text = text.replace(CONTROL_CHARS, '');
    text = text.normalize('NFC');
    if (text === before) return text;
  }
}

// Printable ASCII without '&' (plus tab, LF, FF) is a fixed point of every step above.
const TRIVIAL = /^[\t\n\f\x20-\x25\x27-\x7e]*$/;

/** ftfy.fix_text(text) for ordinary text (see the header for what is and isn't covered). */
export function fixText(text: string): string {
  if (TRIVIAL.test(text)) return text;
  let unescape = true; // ftfy's unescape_html="auto"
  let out = '';
  let pos = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const end = nl < 0 ? text.length : nl + 1;
    const segment = text.slice(pos, end);
    // As in ftfy.fix_text, once a segment holds a literal '<' the text is taken for HTML and
    // entities are left alone from there on.
    if (unescape && segment.includes('<')) unescape = false;
    out += fixSegment(segment, unescape);
    pos = end;
  }
  return out;
}
