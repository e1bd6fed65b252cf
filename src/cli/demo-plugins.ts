// The demo's links to IIMM (src/adapt/iimm.ts) and the HTML report (src/train/report-html.ts),
// loaded when present so the demo runs (and says what it skipped) in a build that lacks them.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ClipModel } from '../clip/model.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import type { FeatureSource, ImageItem } from '../adapt/method.js';

export interface IimmValue {
  iimm: number;
  inter: number;
  intra: number;
  n: number;
  classes: number;
}

export interface LineFit {
  slope: number;
  intercept: number;
  r2: number;
  n: number;
  predict(x: number): number;
}

export interface IimmModule {
  iimmForDataset(model: ClipModel, tokenizer: ClipTokenizer, items: readonly ImageItem[], classnames: readonly string[], o: { template: string; features?: FeatureSource }): Promise<IimmValue>;
  olsFit(x: readonly number[], y: readonly number[]): LineFit;
}

export interface ReportModule {
  writeReport(runDirs: readonly string[], outHtml: string, opts?: Record<string, unknown>): Promise<{ html: string; markdown: string; groups: unknown }>;
}

/** Imports a sibling module by a path the compiler does not resolve (it may not exist in this build). */
async function optionalImport<T>(relative: string, exportName: string): Promise<T | null> {
  const url = new URL(relative, import.meta.url);
  if (!existsSync(fileURLToPath(url))) return null;
  const mod = (await import(url.href)) as Record<string, unknown>;
  return typeof mod[exportName] === 'function' ? (mod as T) : null;
}

export function loadIimm(): Promise<IimmModule | null> {
  return optionalImport<IimmModule>('../adapt/iimm.js', 'iimmForDataset');
}

export function loadReport(): Promise<ReportModule | null> {
  return optionalImport<ReportModule>('../train/report-html.js', 'writeReport');
}
