// Shared helpers for the data-layer tests: fixture paths, scratch directories, tiny images.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from dist/test/data/). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const DATA_FIXTURES = join(ROOT, 'test/fixtures/data');

export function fixtureJson<T = unknown>(name: string): T {
  return JSON.parse(readFileSync(join(DATA_FIXTURES, name), 'utf8')) as T;
}

export function scratchDir(): string {
  return mkdtempSync(join(tmpdir(), 'cliptune-data-'));
}

/** Runs `fn` and returns the error message it throws (fails if it does not throw). */
export async function errorOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error, none was thrown');
}
