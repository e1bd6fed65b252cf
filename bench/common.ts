// Shared by every bench suite: options, the timing protocol, and the two output formats.
// Timing protocol (the same for cliptune and every peer): after a warm-up call whose result is
// checked against float64 dot products (pipeline compile, first-use costs), one sample = encode R calls back to back, then ONE wait for the device; the
// per-call time is sample / R, so dispatch and submit overheads are amortised the same way for all.
// R is picked from the warm-up so a sample lasts about `sampleSeconds`; we report the median (and
// min-max) over the repeats. Slow peers get fewer repeats so a case stays within `caseBudget`.

export interface BenchOptions {
  json: boolean;
  repeats: number;
  /** Whether to load peers (false with --no-peers). */
  peers: boolean;
  /** Suite-specific arguments (everything run.mjs did not consume). */
  args: string[];
  /** Repository root. */
  root: string;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
  /** Samples taken and calls per sample. */
  samples: number;
  calls: number;
  /**
   * Median process CPU time per call (user + system, all threads: llvmpipe runs its rasterizer
   * threads in-process), or the matching rate after rate(). Steadier than wall time when other
   * processes load the machine.
   */
  cpu?: number;
}

/** A peer's result: a stat, or why it has none (not installed, failed, unsupported). */
export type PeerResult = Stat | { error: string };

export interface CaseResult {
  suite: string;
  case: string;
  unit: string;
  ours: Stat | { error: string };
  peers: Record<string, PeerResult>;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

export interface TimeOptions {
  repeats: number;
  /** Target length of one sample (calls per sample are chosen to fill it). */
  sampleSeconds?: number;
  /** Soft limit for the whole case after warm-up: fewer samples are taken beyond it (at least 1). */
  caseBudget?: number;
  maxCalls?: number;
}

/**
 * Times `call` (which encodes one unit of work and returns without waiting) with `sync` (waits for
 * the device). Returns seconds per call. The caller has already made one call and checked its
 * result (that warm-up pays compilation); the first timed call sizes the samples and, when one
 * call already fills a sample, is the first sample itself.
 */
export async function timeCalls(call: () => void, sync: () => Promise<void>, o: TimeOptions): Promise<Stat> {
  const sampleSeconds = o.sampleSeconds ?? 0.25;
  const caseBudget = o.caseBudget ?? 8;
  const c1 = process.cpuUsage();
  let t0 = performance.now();
  call();
  await sync();
  const one = Math.max(1e-6, (performance.now() - t0) / 1000);
  const c1d = process.cpuUsage(c1);
  const oneCpu = (c1d.user + c1d.system) / 1e6;
  const calls = Math.max(1, Math.min(o.maxCalls ?? 64, Math.round(sampleSeconds / one)));
  const per: number[] = [];
  const cpu: number[] = [];
  let spent = 0;
  if (calls === 1) {
    per.push(one);
    cpu.push(oneCpu);
    spent = one;
  }
  while (per.length < o.repeats && (per.length === 0 || spent + one * calls <= caseBudget)) {
    const c0 = process.cpuUsage();
    t0 = performance.now();
    for (let i = 0; i < calls; i++) call();
    await sync();
    const dt = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    spent += dt;
    per.push(dt / calls);
    cpu.push((c.user + c.system) / 1e6 / calls);
  }
  return { median: median(per), min: Math.min(...per), max: Math.max(...per), samples: per.length, calls, cpu: median(cpu) };
}

/** Converts seconds per call into a rate (e.g. GFLOP/s from the work per call). */
export function rate(s: Stat, workPerCall: number): Stat {
  const r: Stat = { ...s, median: workPerCall / s.median, min: workPerCall / s.max, max: workPerCall / s.min };
  if (s.cpu) r.cpu = workPerCall / s.cpu;
  return r;
}

function isStat(r: PeerResult | CaseResult['ours']): r is Stat {
  return typeof (r as Stat).median === 'number';
}

function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function cell(r: PeerResult): string {
  if (!isStat(r)) return `n/a (${r.error.replace(/\|/g, '/').replace(/\s+/g, ' ').slice(0, 120)})`;
  return `${fmt(r.median)} (${fmt(r.min)}–${fmt(r.max)})${r.samples < 3 ? ` [${r.samples} sample${r.samples > 1 ? 's' : ''}]` : ''}`;
}

/** One result per line: {"suite","case","unit","ours","peers":{name: number|null}} (+ ranges, errors). */
export function jsonLine(r: CaseResult): string {
  const num = (x: PeerResult) => (isStat(x) ? Number(x.median.toPrecision(4)) : null);
  const peers: Record<string, number | null> = {};
  const errors: Record<string, string> = {};
  const ranges: Record<string, [number, number]> = {};
  for (const [k, v] of Object.entries(r.peers)) {
    peers[k] = num(v);
    if (isStat(v)) ranges[k] = [Number(v.min.toPrecision(4)), Number(v.max.toPrecision(4))];
    else errors[k] = v.error;
  }
  const out: Record<string, unknown> = { suite: r.suite, case: r.case, unit: r.unit, ours: num(r.ours), peers };
  if (isStat(r.ours)) out.range = [Number(r.ours.min.toPrecision(4)), Number(r.ours.max.toPrecision(4))];
  else out.error = r.ours.error;
  if (Object.keys(ranges).length) out.peerRanges = ranges;
  const perCpu: Record<string, number> = {};
  if (isStat(r.ours) && r.ours.cpu) perCpu.ours = Number(r.ours.cpu.toPrecision(4));
  for (const [k, v] of Object.entries(r.peers)) if (isStat(v) && v.cpu) perCpu[k] = Number(v.cpu.toPrecision(4));
  if (Object.keys(perCpu).length) out.perCpuSecond = perCpu;
  if (Object.keys(errors).length) out.peerErrors = errors;
  return JSON.stringify(out);
}

/**
 * Markdown table: case | ours | each peer | ratio ours/ratioPeer | rates per CPU-second (ours, ratioPeer).
 * Cells are "median (min–max)".
 */
export function table(results: readonly CaseResult[], peerNames: readonly string[], ratioPeer?: string): string {
  if (!results.length) return '';
  const unit = results[0]!.unit;
  const head = ['case', `cliptune ${unit}`, ...peerNames.map((p) => `${p} ${unit}`)];
  if (ratioPeer) head.push(`cliptune / ${ratioPeer}`);
  head.push(`per CPU-second: cliptune${ratioPeer ? ` / ${ratioPeer}` : ''}`);
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of results) {
    const row = [r.case, cell(r.ours), ...peerNames.map((p) => cell(r.peers[p] ?? { error: 'not run' }))];
    if (ratioPeer) {
      const p = r.peers[ratioPeer];
      row.push(p && isStat(p) && isStat(r.ours) ? `${(r.ours.median / p.median).toFixed(1)}x` : '–');
    }
    const oc = isStat(r.ours) ? r.ours.cpu : undefined;
    const pr = ratioPeer ? r.peers[ratioPeer] : undefined;
    const pc = pr && isStat(pr) ? pr.cpu : undefined;
    row.push(oc ? `${fmt(oc)}${pc ? ` / ${fmt(pc)} (${(oc / pc).toFixed(1)}x)` : ''}` : '–');
    lines.push(`| ${row.join(' | ')} |`);
  }
  return lines.join('\n');
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0]! : String(e);
}
