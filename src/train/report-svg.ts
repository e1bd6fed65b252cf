// Inline SVG charts for the HTML report (no scripts, no external assets): line charts of loss
// curves and grouped bar charts of accuracies with ±std whiskers. Every label passes through
// escapeXml; callers pass plain text.

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Colour-blind-safe palette (Okabe-Ito), cycled. */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'];

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    return niceTicks(lo - pad, hi + pad, count);
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  if (out[out.length - 1]! < hi) out.push(Number((out[out.length - 1]! + step).toPrecision(12)));
  return out;
}

function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

export interface Series {
  label: string;
  points: readonly (readonly [number, number])[];
  color?: string;
  /** Drawn thicker (e.g. the mean over seeds). */
  emphasis?: boolean;
}

/** Keeps at most `max` points, evenly spaced in index, always the first and the last. */
function thin(points: readonly (readonly [number, number])[], max: number): (readonly [number, number])[] {
  if (points.length <= max) return [...points];
  const out: (readonly [number, number])[] = [];
  for (let i = 0; i < max; i++) out.push(points[Math.round((i * (points.length - 1)) / (max - 1))]!);
  return out;
}

export function lineChart(series: readonly Series[], o: { title: string; xLabel: string; yLabel: string; width?: number; height?: number }): string {
  const W = o.width ?? 640;
  const H = o.height ?? 280;
  const m = { l: 56, r: 150, t: 28, b: 40 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const head = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeXml(o.title)}" font-family="sans-serif" font-size="11">`;
  const title = `<text x="${m.l}" y="16" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`;
  if (!all.length) return `${head}${title}<text x="${m.l}" y="${m.t + ph / 2}">no steps logged</text></svg>`;
  const xt = niceTicks(Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0])));
  const yt = niceTicks(Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1])));
  const [x0, x1, y0, y1] = [xt[0]!, xt[xt.length - 1]!, yt[0]!, yt[yt.length - 1]!];
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0 || 1)) * pw;
  const sy = (y: number) => m.t + ph - ((y - y0) / (y1 - y0 || 1)) * ph;
  const parts: string[] = [head, title];
  for (const t of yt) parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#ddd"/><text x="${m.l - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end">${fmtTick(t)}</text>`);
  for (const t of xt) parts.push(`<line x1="${sx(t).toFixed(1)}" x2="${sx(t).toFixed(1)}" y1="${m.t + ph}" y2="${m.t + ph + 4}" stroke="#333"/><text x="${sx(t).toFixed(1)}" y="${m.t + ph + 16}" text-anchor="middle">${fmtTick(t)}</text>`);
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 6}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    const pts = thin(s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)), 400);
    if (!pts.length) return;
    const d = pts.map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x).toFixed(1)} ${sy(y).toFixed(1)}`).join('');
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="${s.emphasis ? 2.5 : 1.3}"${s.emphasis ? '' : ' stroke-opacity="0.85"'}><title>${escapeXml(s.label)}</title></path>`);
    const ly = m.t + 10 + i * 16;
    parts.push(`<line x1="${m.l + pw + 10}" x2="${m.l + pw + 28}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="${s.emphasis ? 2.5 : 1.5}"/><text x="${m.l + pw + 32}" y="${ly}">${escapeXml(s.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

export interface BarGroup {
  label: string;
  bars: readonly { name: string; value: number; err?: number }[];
}

/** Grouped vertical bars on a 0-100 scale (accuracies in percent) with ±err whiskers. */
export function barChart(groups: readonly BarGroup[], o: { title: string; yLabel: string; width?: number; height?: number }): string {
  const names = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const bw = 16;
  const gap = 18;
  const gw = names.length * bw + gap;
  const m = { l: 48, r: 110, t: 28, b: 70 };
  const W = o.width ?? Math.max(320, m.l + m.r + groups.length * gw);
  const H = o.height ?? 280;
  const ph = H - m.t - m.b;
  const sy = (v: number) => m.t + ph - (Math.max(0, Math.min(100, v)) / 100) * ph;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeXml(o.title)}" font-family="sans-serif" font-size="11">`, `<text x="${m.l}" y="16" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`];
  for (let t = 0; t <= 100; t += 20) parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${sy(t)}" y2="${sy(t)}" stroke="#ddd"/><text x="${m.l - 6}" y="${sy(t) + 4}" text-anchor="end">${t}</text>`);
  parts.push(`<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`);
  groups.forEach((g, gi) => {
    const gx = m.l + gap / 2 + gi * gw;
    for (const b of g.bars) {
      const k = names.indexOf(b.name);
      const x = gx + k * bw;
      const color = PALETTE[k % PALETTE.length]!;
      const tip = `${g.label} ${b.name}: ${b.value.toFixed(2)}${b.err ? ` ± ${b.err.toFixed(2)}` : ''}`;
      parts.push(`<rect x="${x}" y="${sy(b.value).toFixed(1)}" width="${bw - 2}" height="${(m.t + ph - sy(b.value)).toFixed(1)}" fill="${color}"><title>${escapeXml(tip)}</title></rect>`);
      if (b.err) {
        const cx = x + (bw - 2) / 2;
        parts.push(`<path d="M${cx} ${sy(b.value - b.err).toFixed(1)}V${sy(b.value + b.err).toFixed(1)}M${cx - 3} ${sy(b.value + b.err).toFixed(1)}h6M${cx - 3} ${sy(b.value - b.err).toFixed(1)}h6" stroke="#222"/>`);
      }
    }
    const lx = gx + (names.length * bw) / 2;
    parts.push(`<text transform="translate(${lx} ${m.t + ph + 10}) rotate(30)" font-size="10">${escapeXml(g.label.length > 28 ? `${g.label.slice(0, 27)}…` : g.label)}<title>${escapeXml(g.label)}</title></text>`);
  });
  parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="#333"/>`);
  names.forEach((n, k) => parts.push(`<rect x="${W - m.r + 12}" y="${m.t + k * 16}" width="10" height="10" fill="${PALETTE[k % PALETTE.length]}"/><text x="${W - m.r + 26}" y="${m.t + k * 16 + 9}">${escapeXml(n)}</text>`));
  parts.push('</svg>');
  return parts.join('');
}
