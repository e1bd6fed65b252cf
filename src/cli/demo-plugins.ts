// The demo's link to the HTML report (src/train/report-html.ts), loaded when present so the demo runs (and says what it skipped) in a build that lacks them.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

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

export function loadReport(): Promise<ReportModule | null> {
  return optionalImport<ReportModule>('../train/report-html.js', 'writeReport');
}
