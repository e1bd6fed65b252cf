// Empty texts, too-long texts, bad ids, bad options and bad vocabulary files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClipTokenizer, TokenizerError, loadOpenAITokenizer } from '../../src/clip/tokenizer.js';
import { loadClipTokenizer } from '../../src/clip/tokenizer-node.js';

let tok: ClipTokenizer;
test.before(async () => {
  tok = await loadClipTokenizer();
});

function throwsKind(fn: () => unknown, kind: string, message: RegExp, index?: number) {
  try {
    fn();
  } catch (e) {
    assert.instance(e, TokenizerError);
    assert.is((e as TokenizerError).kind, kind);
    assert.match((e as Error).message, message);
    if (index !== undefined) assert.is((e as TokenizerError).index, index);
    return;
  }
  assert.unreachable(`expected a ${kind} error`);
}

test('empty and whitespace-only texts encode as OpenAI does: SOT, EOT, padding', () => {
  for (const text of ['', '   ', '\t\n\r ', '\u3000\xa0', '\x00\x07']) {
    assert.equal(tok.encode(text), []);
    const row = tok.tokenize(text)[0]!;
    assert.equal(Array.from(row.subarray(0, 3)), [49406, 49407, 0]);
  }
});

test('rejectEmpty names the index of the empty text', () => {
  throwsKind(() => tok.tokenize(['a cat', '  \n ', 'a dog'], { rejectEmpty: true }), 'empty', /text 1 is empty/, 1);
  assert.is(tok.tokenize(['a cat'], { rejectEmpty: true }).length, 1);
});

test('too long: OpenAI message naming the text, plus its length; truncate keeps EOT last', () => {
  const text = Array(76).fill('a').join(' '); // 76 ids + SOT + EOT = 78
  throwsKind(() => tok.tokenize(['ok', text]), 'too-long', /^Input a a a .* is too long for context length 77 \(78 tokens/, 1);
  const row = tok.tokenize(text, { truncate: true })[0]!;
  assert.is(row.length, 77);
  assert.is(row[0], 49406);
  assert.is(row[76], 49407);
  assert.is(row[75], 320);
  // Exactly fitting is fine: 75 ids.
  assert.is(tok.tokenize(Array(75).fill('a').join(' '))[0]![76], 49407);
});

test('other context lengths', () => {
  assert.equal(Array.from(tok.tokenize('a photo of a cat', { contextLength: 5, truncate: true })[0]!), [49406, 320, 1125, 539, 49407]);
  assert.equal(Array.from(tok.tokenize('a photo', { contextLength: 4 })[0]!), [49406, 320, 1125, 49407]);
  assert.equal(Array.from(tok.tokenize('a photo', { contextLength: 6, padId: -1 })[0]!), [49406, 320, 1125, 49407, -1, -1]);
  // As clip.tokenize: a one-slot row holds just EOT.
  assert.equal(Array.from(tok.tokenize('cat', { contextLength: 1, truncate: true })[0]!), [49407]);
  assert.equal(tok.tokenize([]), []);
});

test('bad options', () => {
  for (const contextLength of [0, -3, 1.5, NaN]) throwsKind(() => tok.tokenize('x', { contextLength }), 'bad-option', /contextLength/);
  for (const padId of [0.5, 2 ** 31, NaN]) throwsKind(() => tok.tokenize('x', { padId }), 'bad-option', /padId/);
});

test('decode: ids outside the vocabulary are named', () => {
  throwsKind(() => tok.decode([320, 49408]), 'unknown-id', /token id 49408 \(position 1\) is not in the vocabulary \(0\.\.49407\)/, 1);
  throwsKind(() => tok.decode([-1]), 'unknown-id', /token id -1 /, 0);
  throwsKind(() => tok.decode([1.5]), 'unknown-id', /token id 1\.5 /, 0);
  assert.is(tok.decode([]), '');
  assert.is(tok.decode(new Int32Array([49406, 320, 49407])), '<|startoftext|>a <|endoftext|>');
});

test('decode keeps a leading BOM and replaces broken UTF-8 as Python does', () => {
  // The byte chars of EF BB BF: Python's utf-8 codec keeps U+FEFF where TextDecoder would drop it.
  const ids = [tok.tokenToId('\u00ef')!, tok.tokenToId('\u00bb')!, tok.tokenToId('\u00bf</w>')!];
  assert.is(tok.decode(ids), '\ufeff ');
  assert.is(tok.decode([tok.tokenToId('\u00ef')!]), '\ufffd');
  assert.is(tok.decode([tok.tokenToId('\u00ef')!, 320]), '\ufffda ');
});

test('bad vocabulary files', async () => {
  const enc = new TextEncoder();
  try {
    await loadOpenAITokenizer(enc.encode('#version: 0.2\na b\n'));
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /has 1 merges; CLIP's has 48894/);
  }
  try {
    await loadOpenAITokenizer(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]));
    assert.unreachable();
  } catch (e) {
    assert.instance(e, TokenizerError);
    assert.match((e as Error).message, /cannot read the vocabulary file/);
  }
  try {
    await loadClipTokenizer('/nonexistent/vocab.txt.gz');
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /vocabulary not found: \/nonexistent/);
  }
});

test.run();
