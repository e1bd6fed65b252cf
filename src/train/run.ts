// A run directory: run.json (the configuration, written once the run is set up), checkpoint.safetensors
// (learned tensors + optimiser + position, atomic), log.jsonl, report.json / report.md.
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import type { OptionValue } from '../adapt/method.js';

export const RUN_CONFIG_FORMAT = 'cliptune-run-config/1';
export const RUN_FILES = { config: 'run.json', checkpoint: 'checkpoint.safetensors', log: 'log.jsonl', report: 'report.json', reportMd: 'report.md' } as const;

/** The file `cliptune eval` writes into a run folder for a dataset and split. */
export function evalFileName(dataset: string, split: string): string {
  return `eval-${dataset}-${split}.json`;
}

/** What evalFileName gives, for readers that collect every evaluation of a run. */
export const EVAL_FILE_PATTERN = /^eval-.+-(test|val|train)\.json$/;

/**
 * Run folders named by arguments, in order and without repeats: a folder with run.json is a run; a
 * folder without one stands for the run folders directly inside it (sorted by name). `fail` makes
 * the error for an argument that is neither (`cliptune report`, `cliptune iimm --runs`).
 */
export function runFolders(args: readonly string[], fail: (message: string) => Error): string[] {
  const out: string[] = [];
  for (const a of args) {
    const dir = resolve(a);
    if (!existsSync(dir)) throw fail(`${dir} does not exist`);
    if (!statSync(dir).isDirectory()) throw fail(`${dir} is not a folder`);
    if (existsSync(join(dir, RUN_FILES.config))) {
      out.push(dir);
      continue;
    }
    const inner = readdirSync(dir)
      .sort()
      .map((e) => join(dir, e))
      .filter((p) => statSync(p).isDirectory() && existsSync(join(p, RUN_FILES.config)));
    if (!inner.length) throw fail(`${dir} is not a cliptune run (no ${RUN_FILES.config}) and holds none`);
    out.push(...inner);
  }
  return [...new Set(out)];
}

export interface RunConfig {
  format: typeof RUN_CONFIG_FORMAT;
  method: string;
  /** Every method option, defaults included. */
  options: Record<string, OptionValue>;
  /** The option keys the user gave. */
  given: string[];
  weights: string;
  weightsHash: string;
  data: string;
  split: string | null;
  datasetName: string;
  shots: number;
  seed: number;
  baseToNovel: boolean;
  /** Training classes by label. */
  classnames: string[];
  trainImages: number;
  /** sha256 of the few-shot training list (paths and labels): a resumed run must see the same images. */
  trainDigest: string;
  fewshotOrigin: string;
  /** --fewshot-index file, if the subset was pinned. */
  fewshotIndex: string | null;
  evalEpochs: number;
  logEvery: number;
  created: string;
}

export class RunDirError extends Error {
  override name = 'RunDirError';
}

/** Refuses a directory that holds another run or anything else (nothing is ever overwritten). */
export function checkFreshRunDir(dir: string): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new RunDirError(`--out: ${dir} exists and is not a folder`);
  const entries = readdirSync(dir);
  if (!entries.length) return;
  if (entries.includes(RUN_FILES.config) || entries.includes(RUN_FILES.checkpoint)) {
    let what = '';
    try {
      const c = readRunConfig(dir);
      what = ` (method ${c.method}, ${c.datasetName}, ${c.shots} shots, seed ${c.seed}, started ${c.created})`;
    } catch {
      // Unreadable config: the generic message still applies.
    }
    throw new RunDirError(`--out: ${dir} already holds a run${what}; pass --resume to continue it, or choose another --out`);
  }
  throw new RunDirError(`--out: ${dir} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); choose an empty or new folder`);
}

export function readRunConfig(dir: string): RunConfig {
  const p = join(dir, RUN_FILES.config);
  if (!existsSync(p)) throw new RunDirError(`${dir} is not a cliptune run (no ${RUN_FILES.config})`);
  let c: RunConfig;
  try {
    c = JSON.parse(readFileSync(p, 'utf8')) as RunConfig;
  } catch (e) {
    throw new RunDirError(`${p}: not valid JSON (${(e as Error).message})`);
  }
  if (c.format !== RUN_CONFIG_FORMAT) throw new RunDirError(`${p}: unknown format ${JSON.stringify(c.format)} (expected ${RUN_CONFIG_FORMAT})`);
  return c;
}

/** Writes a small file atomically (temp + rename). */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export function writeRunConfig(dir: string, c: RunConfig): void {
  writeFileAtomic(join(dir, RUN_FILES.config), JSON.stringify(c, null, 2) + '\n');
}

/** sha256 over "path\tlabel" lines of an image list. */
export function listDigest(items: readonly { impath: string; label: number }[]): string {
  const h = createHash('sha256');
  for (const it of items) h.update(`${it.impath}\t${it.label}\n`);
  return h.digest('hex');
}

/**
 * The complete lines of a JSONL log: split() leaves '' after a final newline; a last line without
 * one was cut short by a crash (and is dropped) unless it parses as a JSON object.
 */
export function completeJsonlLines(text: string): string[] {
  const lines = text.split('\n');
  const tail = lines.pop()!;
  if (!tail.trim()) return lines;
  try {
    const v: unknown = JSON.parse(tail);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return [...lines, tail];
  } catch {
    // cut short: dropped
  }
  return lines;
}
