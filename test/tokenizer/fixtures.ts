// Shared by the tokenizer tests: the repository root (found from this compiled file) and fixtures.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'test', 'fixtures', 'tokenizer', 'cases.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find test/fixtures/tokenizer/cases.json');
    dir = up;
  }
  return dir;
})();

export function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(join(repoRoot, 'test', 'fixtures', 'tokenizer', name), 'utf8')) as T;
}

export interface GoldenCase {
  text: string; cleaned: string; words: string[]; bpe: string[]; ids: number[]; n_ids: number;
  too_long: boolean; tokens77: number[]; decoded: string;
}
export interface Golden {
  vocab_sha256: string; vocab_size: number; sot_token_id: number; eot_token_id: number; context_length: number;
  fields: Record<string, string>; cases: GoldenCase[]; decode_only: { ids: number[]; decoded: string }[];
}
export const golden = (): Golden => fixture<Golden>('cases.json');

/** Python repr-ish label for test names. */
export const label = (s: string): string => JSON.stringify(s.length > 40 ? s.slice(0, 40) + '…' : s);
