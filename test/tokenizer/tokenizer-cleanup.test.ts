// The cleanup half of the pipeline on inputs cases.json doesn't reach (ftfy's fixes, html.unescape's
// edge rules, long s, U+0345, lone surrogates, C1 controls...), against cleanup-cases.json, made by
// make_cleanup_cases.py with Python's ftfy, html and regex (ftfy without its mojibake repair).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClipTokenizer, cleanText, fixText, htmlUnescape, splitWords } from '../../src/clip/tokenizer.js';
import { loadClipTokenizer } from '../../src/clip/tokenizer-node.js';
import { fixture, label } from './fixtures.js';

interface CleanupCase {
  text: string; html_unescape: string; ftfy: string; cleaned: string; words: string[]; ids: number[]; decoded: string;
  ftfy_fix_encoding_differs?: boolean;
}
const data = fixture<{ cases: CleanupCase[] }>('cleanup-cases.json');
let tok: ClipTokenizer;
test.before(async () => {
  tok = await loadClipTokenizer();
});

data.cases.forEach((c, i) => {
  test(`cleanup ${i} ${label(c.text)}`, () => {
    assert.is(htmlUnescape(c.text), c.html_unescape, 'html.unescape');
    assert.is(fixText(c.text), c.ftfy, 'ftfy.fix_text (fix_encoding=False)');
    assert.is(cleanText(c.text), c.cleaned, 'cleaned');
    assert.equal(splitWords(c.cleaned), c.words, 'words');
    assert.equal(tok.encode(c.text), c.ids, 'ids');
    assert.is(tok.decode(c.ids), c.decoded, 'decoded');
  });
});

test('ftfy examples from its documentation', () => {
  assert.is(fixText('Broken text&hellip; it&#x2019;s \ufb02ubberi\ufb01c!'), "Broken text\u2026 it's flubberific!");
  assert.is(fixText('\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33'), 'LOUD NOISES');
  assert.is(fixText('&ntilde; &Ntilde; &NTILDE; &nTILDE;'), '\u00f1 \u00d1 \u00d1 &nTILDE;');
  assert.is(fixText('BUNDESSTRA&SZLIG;E'), 'BUNDESSTRASSE');
  // A literal '<' means HTML: entities are left for html.unescape, from that line on.
  assert.is(fixText('&amp;amp;\n<p>&amp;amp;\n&amp;amp;'), '&\n<p>&amp;amp;\n&amp;amp;');
});

test('curly quotes become the contractions CLIP knows', () => {
  assert.equal(tok.encode('it\u2019s'), tok.encode("it's"));
  assert.equal(tok.encode('\u201ccat\u201d'), tok.encode('"cat"'));
});

test.run();
