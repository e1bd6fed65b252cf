// `cliptune report`: one self-contained HTML page (inline CSS and SVG, no scripts, no external
// assets) over any number of run folders, plus a Markdown summary with the same tables next to it.
// Runs are grouped by (weights, method, dataset, shots, protocol, options); each group shows the
// mean ± std over its seeds of base / novel / all accuracy, HM of the averaged base and novel
// accuracies, evaluations on other datasets (`cliptune eval --run`), the change against a zero-shot
// group of the same weights and data where the report has one, and the seeds' loss curves.
// Every string that comes from a file is HTML-escaped.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { RUN_FILES, writeFileAtomic } from './run.js';
import { ReportError, datasetAverages, lossWindows, summarizeRuns, type ClassSet, type DatasetAverage, type ReportGroup, type Stat } from './report-data.js';
import { barChart, escapeXml, lineChart, PALETTE, type BarGroup, type Series } from './report-svg.js';
import type { OptionValue } from '../adapt/method.js';

export { summarizeRuns, datasetAverages, expandRunDirs, lossWindows, ReportError } from './report-data.js';
export type { ReportGroup, RunSummary, RunResult, RunEvaluation, Stat, CrossResult, DatasetAverage, ClassSet, LossPoint } from './report-data.js';

export interface ReportOptions {
  title?: string;
  /** Paragraphs shown under the title (plain text). */
  notes?: string[];
}

export const escapeHtml = escapeXml;

function fmtStat(s: Stat | undefined): string {
  if (!s) return '–';
  return s.n > 1 ? `${s.mean.toFixed(2)} ± ${s.std.toFixed(2)}` : s.mean.toFixed(2);
}

function fmtNum(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined ? '–' : v.toFixed(digits);
}

function fmtDelta(v: number | null): string {
  if (v === null) return '–';
  return `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)}`;
}

function fmtOption(v: OptionValue): string {
  return v === null ? 'auto' : typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** The options the user gave (the rest are the method's official defaults). */
function givenOptions(g: ReportGroup): string {
  const parts = g.given.filter((k) => k in g.options).map((k) => `${k}=${fmtOption(g.options[k]!)}`);
  return parts.length ? parts.join(', ') : 'defaults';
}

function protocol(g: ReportGroup): string {
  return g.baseToNovel ? 'base-to-novel' : 'all classes';
}

function shotsText(g: { method: string; shots: number }): string {
  return g.method === 'zeroshot' ? '–' : g.shots === 0 ? 'all' : String(g.shots);
}

type Cell = string;
interface Table {
  head: string[];
  rows: Cell[][];
  /** Columns holding numbers (right-aligned). */
  numeric?: Set<number>;
}

function b2nTable(groups: readonly ReportGroup[]): Table | null {
  const gs = groups.filter((g) => g.accuracy.base || g.accuracy.novel);
  if (!gs.length) return null;
  return {
    head: ['method', 'dataset', 'shots', 'options', 'seeds', 'base', 'novel', 'HM', 'Δ base vs ZS', 'Δ novel vs ZS', 'loss first → last 10%'],
    numeric: new Set([2, 4, 5, 6, 7, 8, 9]),
    rows: gs.map((g) => [
      g.method,
      g.datasetLabel,
      shotsText(g),
      givenOptions(g),
      String(g.runs.length),
      fmtStat(g.accuracy.base),
      fmtStat(g.accuracy.novel),
      fmtNum(g.hm),
      fmtDelta(delta(g, 'base')),
      fmtDelta(delta(g, 'novel')),
      g.lossWindows ? `${g.lossWindows.first.toFixed(4)} → ${g.lossWindows.last.toFixed(4)}` : '–',
    ]),
  };
}

function allTable(groups: readonly ReportGroup[]): Table | null {
  const gs = groups.filter((g) => g.accuracy.all);
  if (!gs.length) return null;
  return {
    head: ['method', 'dataset', 'shots', 'options', 'seeds', 'accuracy', 'Δ vs ZS', 'loss first → last 10%'],
    numeric: new Set([2, 4, 5, 6]),
    rows: gs.map((g) => [
      g.method,
      g.datasetLabel,
      shotsText(g),
      givenOptions(g),
      String(g.runs.length),
      fmtStat(g.accuracy.all),
      fmtDelta(delta(g, 'all')),
      g.lossWindows ? `${g.lossWindows.first.toFixed(4)} → ${g.lossWindows.last.toFixed(4)}` : '–',
    ]),
  };
}

function delta(g: ReportGroup, cls: ClassSet): number | null {
  const z = g.zeroShot?.[cls];
  const a = g.accuracy[cls];
  return z === undefined || !a ? null : a.mean - z;
}

function averagesTable(avgs: readonly DatasetAverage[]): Table | null {
  if (!avgs.length) return null;
  return {
    head: ['method', 'shots', 'protocol', 'options given', 'datasets', 'base', 'novel', 'HM', 'all'],
    numeric: new Set([1, 5, 6, 7, 8]),
    rows: avgs.map((a) => [
      a.method,
      shotsText(a),
      a.baseToNovel ? 'base-to-novel' : 'all classes',
      Object.entries(a.given).map(([k, v]) => `${k}=${fmtOption(v)}`).join(', ') || 'defaults',
      `${a.datasets.length}: ${a.datasets.join(', ')}`,
      fmtNum(a.base),
      fmtNum(a.novel),
      fmtNum(a.hm),
      fmtNum(a.all),
    ]),
  };
}

function crossTable(groups: readonly ReportGroup[]): Table | null {
  const rows: Cell[][] = [];
  for (const g of groups) {
    for (const c of g.cross) {
      rows.push([g.method, g.datasetLabel, shotsText(g), givenOptions(g), c.target, c.split, `${c.classSet} (${c.classes})`, String(c.accuracy.n), fmtStat(c.accuracy), fmtDelta(c.zeroShot === null ? null : c.accuracy.mean - c.zeroShot)]);
    }
  }
  if (!rows.length) return null;
  return { head: ['method', 'trained on', 'shots', 'options', 'evaluated on', 'split', 'classes', 'seeds', 'accuracy', 'Δ vs ZS'], numeric: new Set([2, 7, 8, 9]), rows };
}

function seedTable(g: ReportGroup): Table {
  const b2n = g.baseToNovel;
  return {
    head: ['seed', ...(b2n ? ['base', 'novel', 'HM'] : ['accuracy']), 'steps', 'ms/step', 'loss first → last 10%', 'run folder'],
    numeric: new Set(b2n ? [0, 1, 2, 3, 4, 5] : [0, 1, 2, 3]),
    rows: g.runs.map((r) => {
      const acc = (c: ClassSet) => fmtNum(r.results.find((x) => x.classSet === c && x.split === 'test')?.accuracy);
      const w = lossWindows(r.loss);
      return [
        String(r.seed),
        ...(b2n ? [acc('base'), acc('novel'), fmtNum(r.hm)] : [acc('all')]),
        r.train ? String(r.train.steps) : '–',
        fmtNum(r.train?.msPerStep ?? null, 1),
        w ? `${w.first.toFixed(4)} → ${w.last.toFixed(4)}` : '–',
        r.dir,
      ];
    }),
  };
}

function htmlTable(t: Table): string {
  const cls = (i: number) => (t.numeric?.has(i) ? ' class="n"' : '');
  return `<table><thead><tr>${t.head.map((h, i) => `<th${cls(i)}>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${t.rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${escapeHtml(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function mdTable(t: Table): string {
  const align = t.head.map((_, i) => (t.numeric?.has(i) ? '---:' : '---'));
  return [`| ${t.head.map(mdCell).join(' | ')} |`, `| ${align.join(' | ')} |`, ...t.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`)].join('\n');
}

function lossSeries(g: ReportGroup): Series[] {
  const series: Series[] = g.runs.map((r, i) => ({ label: `seed ${r.seed}`, color: PALETTE[i % PALETTE.length]!, points: r.loss.map((p) => [p.step, p.loss] as const) }));
  // The mean curve over seeds where every seed logged the same steps.
  if (g.runs.length > 1) {
    const steps = g.runs[0]!.loss.map((p) => p.step);
    const same = g.runs.every((r) => r.loss.length === steps.length && r.loss.every((p, k) => p.step === steps[k]));
    if (same && steps.length) series.push({ label: 'mean', color: '#000000', emphasis: true, points: steps.map((s, k) => [s, g.runs.reduce((a, r) => a + r.loss[k]!.loss, 0) / g.runs.length] as const) });
  }
  return series;
}

function groupTitle(g: ReportGroup): string {
  return `${g.method} · ${g.datasetLabel} · ${shotsText(g)} shots · ${protocol(g)} · ${givenOptions(g)}`;
}

function accuracyBars(groups: readonly ReportGroup[]): string {
  const bars: BarGroup[] = groups.map((g) => ({
    label: `${g.id.slice(1)}. ${g.method} ${g.datasetLabel} ${shotsText(g)}`,
    bars: [
      ...(g.accuracy.base ? [{ name: 'base', value: g.accuracy.base.mean, err: g.accuracy.base.std }] : []),
      ...(g.accuracy.novel ? [{ name: 'novel', value: g.accuracy.novel.mean, err: g.accuracy.novel.std }] : []),
      ...(g.hm !== null ? [{ name: 'HM', value: g.hm }] : []),
      ...(g.accuracy.all ? [{ name: 'all', value: g.accuracy.all.mean, err: g.accuracy.all.std }] : []),
    ],
  }));
  return barChart(bars, { title: 'Test accuracy (mean ± std over seeds)', yLabel: 'accuracy (%)' });
}

const CSS = `body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:12px}
section{border-top:1px solid #ddd;margin-top:24px}.warn{color:#a40}.muted{color:#666;font-size:13px}svg{max-width:100%;height:auto}`;

export function renderHtml(groups: readonly ReportGroup[], opts: ReportOptions = {}, generated = new Date()): string {
  const title = opts.title ?? 'cliptune report';
  const t1 = b2nTable(groups);
  const t2 = allTable(groups);
  const t3 = averagesTable(datasetAverages(groups));
  const t4 = crossTable(groups);
  const p: string[] = [];
  p.push(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${CSS}</style></head><body>`);
  p.push(`<h1>${escapeHtml(title)}</h1>`);
  for (const n of opts.notes ?? []) p.push(`<p>${escapeHtml(n)}</p>`);
  p.push(`<p class="muted">${groups.reduce((a, g) => a + g.runs.length, 0)} runs in ${groups.length} groups; generated ${escapeHtml(generated.toISOString())}. Mean ± std over seeds (std: population, as Dassl's parse_test_res); HM from the mean base and novel accuracies; Δ vs ZS: change against a zero-shot run on the same weights and data in this report (negative on held-out classes or datasets = forgetting).</p>`);
  if (t1) p.push('<h2>Base-to-novel</h2>', htmlTable(t1));
  if (t2) p.push('<h2>All classes</h2>', htmlTable(t2));
  if (t3) p.push('<h2>Averages over datasets</h2><p class="muted">Dataset means of seed means; HM of the averaged base and novel.</p>', htmlTable(t3));
  if (t4) p.push('<h2>Other datasets and splits (cliptune eval)</h2>', htmlTable(t4));
  p.push(accuracyBars(groups));
  for (const g of groups) {
    p.push(`<section id="${g.id}"><h2>${g.id.slice(1)}. ${escapeHtml(groupTitle(g))}</h2>`);
    p.push(`<p class="muted">weights <code>${escapeHtml(g.weights)}</code> (sha256 ${escapeHtml(g.weightsHash.slice(0, 16))}…)<br>data <code>${escapeHtml(g.data)}</code> (${escapeHtml(g.dataset)})<br>options: ${escapeHtml(Object.entries(g.options).map(([k, v]) => `${k}=${fmtOption(v)}${g.given.includes(k) ? '*' : ''}`).join(', ') || 'none')} (* = given)</p>`);
    for (const w of g.warnings) p.push(`<p class="warn">${escapeHtml(w)}</p>`);
    p.push(htmlTable(seedTable(g)));
    if (g.runs.some((r) => r.loss.length)) p.push(lineChart(lossSeries(g), { title: `Training loss: ${g.method}, ${g.datasetLabel}`, xLabel: 'step', yLabel: 'loss' }));
    const periodic = g.runs.flatMap((r) => r.periodic.map((e) => ({ seed: r.seed, ...e })));
    if (periodic.length) {
      const keys = [...new Set(periodic.flatMap((e) => Object.keys(e.metrics)))];
      p.push('<h3>Evaluations during training</h3>', htmlTable({ head: ['seed', 'epoch', 'step', ...keys], numeric: new Set(keys.map((_, i) => i + 3).concat([0, 1, 2])), rows: periodic.map((e) => [String(e.seed), String(e.epoch), String(e.step), ...keys.map((k) => fmtNum(e.metrics[k]))]) }));
    }
    p.push('</section>');
  }
  p.push('</body></html>\n');
  return p.join('\n');
}

export function renderMarkdown(groups: readonly ReportGroup[], opts: ReportOptions = {}, generated = new Date()): string {
  const title = opts.title ?? 'cliptune report';
  const out: string[] = [`# ${title.replace(/\r?\n/g, ' ')}`, ''];
  for (const n of opts.notes ?? []) out.push(n, '');
  out.push(`${groups.reduce((a, g) => a + g.runs.length, 0)} runs in ${groups.length} groups; generated ${generated.toISOString()}. Mean ± std over seeds (population std); HM from the mean base and novel accuracies; Δ vs ZS against a zero-shot run on the same weights and data.`, '');
  const t1 = b2nTable(groups);
  const t2 = allTable(groups);
  const t3 = averagesTable(datasetAverages(groups));
  const t4 = crossTable(groups);
  if (t1) out.push('## Base-to-novel', '', mdTable(t1), '');
  if (t2) out.push('## All classes', '', mdTable(t2), '');
  if (t3) out.push('## Averages over datasets', '', 'Dataset means of seed means; HM of the averaged base and novel.', '', mdTable(t3), '');
  if (t4) out.push('## Other datasets and splits (cliptune eval)', '', mdTable(t4), '');
  out.push('## Runs by group', '');
  for (const g of groups) {
    out.push(`### ${mdCell(groupTitle(g))}`, '', `- weights \`${g.weights}\` (sha256 ${g.weightsHash.slice(0, 16)}…); data \`${g.data}\` (${g.dataset})`, `- options: ${Object.entries(g.options).map(([k, v]) => `${k}=${fmtOption(v)}${g.given.includes(k) ? '*' : ''}`).join(', ') || 'none'} (* = given)`);
    for (const w of g.warnings) out.push(`- warning: ${w}`);
    out.push('', mdTable(seedTable(g)), '');
  }
  return out.join('\n');
}

/** The Markdown summary's path: FILE.html -> FILE.md. */
export function markdownPathFor(outHtml: string): string {
  return /\.html?$/i.test(outHtml) ? outHtml.replace(/\.html?$/i, '.md') : `${outHtml}.md`;
}

/**
 * Reads the runs, writes the HTML page to `outHtml` and the Markdown summary next to it (same name,
 * .md), both atomically, and returns their absolute paths and the groups.
 */
export async function writeReport(runDirs: readonly string[], outHtml: string, opts: ReportOptions = {}): Promise<{ html: string; markdown: string; groups: ReportGroup[] }> {
  const groups = summarizeRuns(runDirs);
  const html = resolve(outHtml);
  const markdown = markdownPathFor(html);
  // A run's own report.md must never be replaced by the summary.
  for (const g of groups) for (const r of g.runs) if (resolve(r.dir, RUN_FILES.reportMd) === markdown) throw new ReportError(`--out ${html}: its Markdown summary would replace ${markdown}, the run's own report; choose another name`);
  const now = new Date();
  const page = renderHtml(groups, opts, now);
  const md = renderMarkdown(groups, opts, now);
  mkdirSync(dirname(html), { recursive: true });
  writeFileAtomic(html, page);
  writeFileAtomic(markdown, md);
  return { html, markdown, groups };
}
