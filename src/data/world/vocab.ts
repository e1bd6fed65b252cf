// The token ids the world's texts use: every caption, template, prompt-initialisation phrase, class
// name and CoOp's "X" placeholder. A model pretrained here only ever sees these ids, so a shipped
// checkpoint may keep just these rows of its token embedding (worldTokenIds()).
//
// Completeness: CLIP's BPE works word by word (the cleaner splits text into words and punctuation
// before BPE), so the ids of a caption are the union of the ids of the fragments it was glued from,
// as long as fragments meet at spaces or punctuation, which the grammar guarantees.
// test/world/captions.test.ts checks it on many sampled captions.
import { COLOURS, DIRECTIONS, DOMAINS, SHAPES, pluralShape } from './attributes.js';
import { captionFragments } from './captions.js';
import { WORLD_CLASSES } from './classes.js';
import { ALL_TEMPLATES, COOP_PLACEHOLDER, PROMPT_INIT_PHRASES } from './templates.js';

/** What worldTokenIds needs of a tokenizer (ClipTokenizer has it). */
export interface TokenEncoder {
  encode(text: string): number[];
  readonly sotId: number;
  readonly eotId: number;
}

/** Every text fragment of the world: templates, phrases, names, the placeholder. */
export function worldTexts(): string[] {
  const out = new Set<string>([
    ...ALL_TEMPLATES,
    ...PROMPT_INIT_PHRASES,
    COOP_PLACEHOLDER,
    ...WORLD_CLASSES,
    ...COLOURS,
    ...SHAPES,
    ...SHAPES.map(pluralShape),
    ...DIRECTIONS,
    ...DOMAINS,
    ...captionFragments(),
  ]);
  return [...out];
}

/**
 * Sorted ids of every token the world's texts use, plus start, end and id 0 (OpenAI's padding id,
 * whose embedding is computed at padded positions even though the causal mask hides it).
 */
export function worldTokenIds(tokenizer: TokenEncoder): number[] {
  const ids = new Set<number>([0, tokenizer.sotId, tokenizer.eotId]);
  for (const text of worldTexts()) for (const id of tokenizer.encode(text)) ids.add(id);
  return [...ids].sort((a, b) => a - b);
}
