// Hugging Face formats: a vocab.json + merges.txt and a tokenizer.json built here from OpenAI's
// vocabulary (HF's CLIP files hold the same BPE) must give OpenAI's ids on every golden case.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClipTokenizer, TokenizerError, gunzip, parseMerges, OPENAI_MERGE_COUNT } from '../../src/clip/tokenizer.js';
import { loadHFTokenizerJson, loadHFVocabMerges } from '../../src/clip/tokenizer-hf.js';
import { defaultVocabPath, loadClipTokenizer } from '../../src/clip/tokenizer-node.js';
import { golden } from './fixtures.js';

const g = golden();
let openai: ClipTokenizer;
let vocab: Record<string, number>;
let mergeLines: string[];
let dir: string;

test.before(async () => {
  openai = await loadClipTokenizer();
  vocab = {};
  for (let id = 0; id < openai.vocabSize; id++) vocab[openai.idToToken(id)!] = id;
  const text = new TextDecoder().decode(await gunzip(readFileSync(defaultVocabPath())));
  mergeLines = parseMerges(text, OPENAI_MERGE_COUNT).map(([a, b]) => `${a} ${b}`);
  dir = mkdtempSync(join(tmpdir(), 'cliptune-hf-'));
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

const mergesTxt = () => '#version: 0.2\n' + mergeLines.join('\n') + '\n';
const tokenizerJson = (arrays: boolean) => ({
  version: '1.0',
  added_tokens: [
    { id: 49406, content: '<|startoftext|>', special: true },
    { id: 49407, content: '<|endoftext|>', special: true },
  ],
  model: {
    type: 'BPE', dropout: null, unk_token: '<|endoftext|>', continuing_subword_prefix: '', end_of_word_suffix: '</w>',
    vocab, merges: arrays ? mergeLines.map((m) => m.split(' ')) : mergeLines,
  },
});

function sameIdsOnAllCases(tok: ClipTokenizer) {
  assert.is(tok.vocabSize, 49408);
  assert.is(tok.sotId, 49406);
  assert.is(tok.eotId, 49407);
  for (const c of g.cases) {
    assert.equal(tok.encode(c.text), c.ids, c.text);
    assert.equal(Array.from(tok.tokenize(c.text, { truncate: true })[0]!), c.tokens77, c.text);
    assert.is(tok.decode(c.ids), c.decoded);
  }
}

test('vocab.json + merges.txt give identical ids on all cases', () => {
  sameIdsOnAllCases(loadHFVocabMerges(JSON.stringify(vocab), mergesTxt()));
});

test('tokenizer.json, merges as "a b" strings and as pairs, give identical ids', () => {
  sameIdsOnAllCases(loadHFTokenizerJson(JSON.stringify(tokenizerJson(false))));
  sameIdsOnAllCases(loadHFTokenizerJson(tokenizerJson(true)));
});

test('special tokens found in added_tokens only', () => {
  const v = { ...vocab };
  delete v['<|startoftext|>'];
  delete v['<|endoftext|>'];
  const doc = tokenizerJson(false);
  doc.model.vocab = v;
  const tok = loadHFTokenizerJson(doc);
  assert.is(tok.sotId, 49406);
  assert.equal(tok.encode('<|startoftext|>a photo<|endoftext|>'), [49406, 320, 1125, 49407]);
});

test('node loader: folder, vocab.json and tokenizer.json paths', async () => {
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
  writeFileSync(join(dir, 'merges.txt'), mergesTxt());
  const c = g.cases[3]!;
  assert.equal((await loadClipTokenizer(dir)).encode(c.text), c.ids);
  assert.equal((await loadClipTokenizer(join(dir, 'vocab.json'))).encode(c.text), c.ids);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson(false)));
  assert.equal((await loadClipTokenizer(join(dir, 'tokenizer.json'))).encode(c.text), c.ids);
  assert.equal((await loadClipTokenizer(dir)).encode(c.text), c.ids); // tokenizer.json preferred
});

test('HF padding with EOT (padId 49407); first-max pooling finds the true EOT for both paddings', () => {
  const texts = g.cases.map((c) => c.text);
  const zero = openai.tokenize(texts, { truncate: true });
  const eot = openai.tokenize(texts, { truncate: true, padId: openai.eotId });
  const argmax = (row: Int32Array) => row.reduce((best, v, i) => (v > row[best]! ? i : best), 0); // first max, as torch
  zero.forEach((row, i) => {
    const n = Math.min(g.cases[i]!.n_ids + 2, 77);
    assert.equal(Array.from(eot[i]!.subarray(0, n)), Array.from(row.subarray(0, n)));
    assert.ok(eot[i]!.subarray(n).every((v) => v === 49407));
    assert.ok(row.subarray(n).every((v) => v === 0));
    // The EOT position (n - 1) unless the text itself contains <|endoftext|>, where both pick the same earlier one.
    assert.is(argmax(eot[i]!), argmax(row));
    if (!g.cases[i]!.text.toLowerCase().includes('<|endoftext|>')) assert.is(argmax(row), n - 1);
  });
});

test('rejects vocabularies that are not CLIP BPE', () => {
  const gpt2 = tokenizerJson(false);
  gpt2.model.end_of_word_suffix = null as unknown as string;
  loadHFTokenizerJson(gpt2); // absent suffix is accepted (old files), the vocabulary decides
  const wrong = tokenizerJson(false);
  wrong.model.end_of_word_suffix = 'Ġ';
  assert.throws(() => loadHFTokenizerJson(wrong), (e: unknown) => e instanceof TokenizerError && /end_of_word_suffix/.test((e as Error).message));
  assert.throws(() => loadHFTokenizerJson({ model: { type: 'WordPiece', vocab: {} } }), /expected a BPE model/);
  assert.throws(() => loadHFTokenizerJson('{not json'), /not valid JSON/);
  assert.throws(() => loadHFVocabMerges('{"a": 0}', 'a b\n'), /no <\|startoftext\|> token/);
  assert.throws(() => loadHFVocabMerges(JSON.stringify(vocab), '#version: 0.2\na b c\n'), /merges line 2/);
});

test.run();
