// Every case of cases.json (reference outputs of OpenAI's clip.simple_tokenizer / clip.tokenize)
// must match exactly, field by field.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ClipTokenizer, TokenizerError, cleanText, splitWords } from '../../src/clip/tokenizer.js';
import { defaultVocabPath, loadClipTokenizer } from '../../src/clip/tokenizer-node.js';
import { golden, label } from './fixtures.js';

const g = golden();
const known = new Set(['text', 'cleaned', 'words', 'bpe', 'ids', 'n_ids', 'too_long', 'tokens77', 'decoded']);
let tok: ClipTokenizer;
let passed = 0;

test.before(async () => {
  tok = await loadClipTokenizer();
});

test('shipped vocabulary is the one the cases were made with', () => {
  const sha = createHash('sha256').update(readFileSync(defaultVocabPath())).digest('hex');
  assert.is(sha, g.vocab_sha256);
  assert.is(tok.vocabSize, g.vocab_size);
  assert.is(tok.sotId, g.sot_token_id);
  assert.is(tok.eotId, g.eot_token_id);
  assert.is(g.context_length, 77);
  // Every field the fixture describes is checked below; a new one must be added here.
  assert.equal(Object.keys(g.fields).sort(), [...known].sort());
});

g.cases.forEach((c, i) => {
  test(`case ${i} ${label(c.text)}`, () => {
    assert.equal(Object.keys(c).filter((k) => !known.has(k)), [], 'unchecked field');
    assert.is(cleanText(c.text), c.cleaned, 'cleaned');
    assert.equal(splitWords(c.cleaned), c.words, 'words');
    assert.equal(tok.tokens(c.text), c.bpe, 'bpe');
    const ids = tok.encode(c.text);
    assert.equal(ids, c.ids, 'ids');
    assert.is(ids.length, c.n_ids, 'n_ids');
    assert.is(tok.decode(ids), c.decoded, 'decoded');
    const [row] = tok.tokenize(c.text, { truncate: true });
    assert.equal(Array.from(row!), c.tokens77, 'tokens77');
    if (c.too_long) {
      try {
        tok.tokenize(c.text);
        assert.unreachable('too long text must throw without truncate');
      } catch (e) {
        assert.instance(e, TokenizerError);
        assert.is((e as TokenizerError).kind, 'too-long');
        assert.ok((e as Error).message.includes(`Input ${c.text} is too long for context length 77`));
      }
    } else {
      assert.equal(Array.from(tok.tokenize(c.text)[0]!), c.tokens77, 'tokens77 without truncate');
    }
    passed++;
  });
});

g.decode_only.forEach((c, i) => {
  test(`decode_only ${i} ${JSON.stringify(c.ids)}`, () => {
    assert.is(tok.decode(c.ids), c.decoded);
    passed++;
  });
});

test('all golden cases passed', () => {
  const total = g.cases.length + g.decode_only.length;
  console.log(`  cases.json: ${passed}/${total} cases passed (${g.cases.length} encode cases, ${g.decode_only.length} decode-only)`);
  assert.is(passed, total);
});

test('a batch tokenizes into one contiguous buffer, rows in order', () => {
  const texts = g.cases.filter((c) => !c.too_long).map((c) => c.text);
  const rows = tok.tokenize(texts);
  assert.is(rows.length, texts.length);
  const flat = new Int32Array(rows[0]!.buffer);
  assert.is(flat.length, texts.length * 77);
  rows.forEach((row, i) => assert.equal(Array.from(row), Array.from(flat.subarray(i * 77, (i + 1) * 77))));
});

test.run();
