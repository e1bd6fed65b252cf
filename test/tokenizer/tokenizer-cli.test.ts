// `cliptune tokenize` through its exported command function.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tokenizeCommand } from '../../src/cli/tokenize.js';
import { gunzip, parseMerges, OPENAI_MERGE_COUNT } from '../../src/clip/tokenizer.js';
import { defaultVocabPath, loadClipTokenizer } from '../../src/clip/tokenizer-node.js';
import { golden } from './fixtures.js';

async function run(...argv: string[]) {
  let out = '';
  let err = '';
  const code = await tokenizeCommand(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  const rows = () => (out.trim() === '' ? [] : out.trimEnd().split('\n').map((l) => JSON.parse(l) as number[]));
  return { code, out, err, get rows() { return rows(); } };
}

const g = golden();

test('prints one padded JSON array per text', async () => {
  const r = await run(g.cases[0]!.text, g.cases[2]!.text);
  assert.is(r.code, 0);
  assert.is(r.err, '');
  assert.equal(r.rows, [g.cases[0]!.tokens77, g.cases[2]!.tokens77]);
  assert.ok(r.out.endsWith('\n'));
  assert.not.match(r.out, / /); // compact: one line per text
});

test('--context, --truncate, --pad-id, and -- before a text starting with "-"', async () => {
  assert.equal((await run('--context', '8', 'a photo of a cat')).rows, [[49406, 320, 1125, 539, 320, 2368, 49407, 0]]);
  assert.equal((await run('--context=4', '--truncate', 'a photo of a cat')).rows, [[49406, 320, 1125, 49407]]);
  assert.equal((await run('--context', '6', '--pad-id', '49407', 'a cat')).rows, [[49406, 320, 2368, 49407, 49407, 49407]]);
  const dash = await run('--', '-42');
  assert.is(dash.code, 0);
  assert.equal(dash.rows[0]!.slice(0, 5), [49406, 268, 275, 273, 49407]);
});

test('too long without --truncate: exit 2, message names the text and its length', async () => {
  const c = g.cases.find((x) => x.too_long)!;
  const r = await run('fine', c.text);
  assert.is(r.code, 2);
  assert.is(r.out, '');
  assert.match(r.err, /^cliptune tokenize: Input .* is too long for context length 77 \(\d+ tokens/);
  assert.is((await run('--truncate', c.text)).rows[0]!.length, 77);
});

test('an empty text is an error naming its index', async () => {
  const r = await run('a cat', '   ');
  assert.is(r.code, 2);
  assert.match(r.err, /text 1 is empty/);
});

test('usage errors: no text, unknown flag, bad numbers', async () => {
  for (const argv of [[], ['--bogus', 'x'], ['--context', 'abc', 'x'], ['--context', '0', 'x'], ['--pad-id', '1.5', 'x'], ['--context']]) {
    const r = await run(...argv);
    assert.is(r.code, 2, argv.join(' '));
    assert.match(r.err, /^cliptune tokenize: .*\nusage: cliptune tokenize/);
  }
  const help = await run('--help');
  assert.is(help.code, 0);
  assert.match(help.out, /^usage: cliptune tokenize TEXT\.\.\./);
});

test('--vocab: OpenAI file, HF folder, missing path', async () => {
  assert.equal((await run('--vocab', defaultVocabPath(), 'a photo of a cat')).rows, [g.cases[0]!.tokens77]);
  const dir = mkdtempSync(join(tmpdir(), 'cliptune-cli-'));
  try {
    const tok = await loadClipTokenizer();
    const vocab: Record<string, number> = {};
    for (let id = 0; id < tok.vocabSize; id++) vocab[tok.idToToken(id)!] = id;
    const merges = parseMerges(new TextDecoder().decode(await gunzip(readFileSync(defaultVocabPath()))), OPENAI_MERGE_COUNT);
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\n' + merges.map((m) => m.join(' ')).join('\n') + '\n');
    assert.equal((await run('--vocab', dir, g.cases[3]!.text)).rows, [g.cases[3]!.tokens77]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const missing = await run('--vocab', '/nonexistent/x.gz', 'a');
  assert.is(missing.code, 2);
  assert.match(missing.err, /vocabulary not found/);
});

test.run();
