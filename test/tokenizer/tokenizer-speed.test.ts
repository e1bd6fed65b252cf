// Speed sanity: prompt-tuning batches re-tokenize the same short prompts over and over.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadClipTokenizer } from '../../src/clip/tokenizer-node.js';

test('10k short prompts tokenize in well under a second', async () => {
  const tok = await loadClipTokenizer();
  const classes = ['cat', 'dog', 'golden retriever', 'tabby cat', 'airliner', 'fire truck', 'red panda', 'sea lion',
    'espresso', 'Granny Smith', 'jack-o\'-lantern', 'café au lait', 'Yorkshire terrier', 'school bus', 'daisy', 'volcano'];
  const templates = ['a photo of a {}.', 'a blurry photo of the {}.', 'art of a {}', 'a close-up photo of a {}, a type of pet.',
    'itap of my {}', 'a {} in a video game', 'a low resolution photo of the {}.', 'a good photo of a big {}.'];
  const prompts: string[] = [];
  for (let i = 0; prompts.length < 10_000; i++) {
    prompts.push(templates[i % templates.length]!.replace('{}', classes[(i * 7) % classes.length]! + (i % 100 === 0 ? ` ${i}` : '')));
  }
  const t0 = performance.now();
  const rows = tok.tokenize(prompts);
  const ms = performance.now() - t0;
  console.log(`  10000 prompts in ${ms.toFixed(1)} ms (${((ms * 1000) / prompts.length).toFixed(2)} µs each)`);
  assert.is(rows.length, 10_000);
  assert.ok(ms < 1000, `took ${ms} ms`);
});

test.run();
