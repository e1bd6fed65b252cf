// Helpers for suites whose unit of work is a whole training or inference step (seconds, not
// microseconds): step timing with a time budget, device-memory peaks, the same-process matmul
// reference rate, seeded data, and table/JSON formatting. The microsecond protocol (many calls per
// sample) lives in ../common.ts; a multi-second step needs no amortising, but it does need a budget.
import { cpus, loadavg } from 'node:os';
import type { Gpu } from '../../src/gpu/index.js';
import { jsonLine, median, type CaseResult, type Stat } from '../common.js';
import { matmulRateAt } from './matmul-ceiling.js';

export interface StepStat extends Stat {
  /** Seconds of the first (warm-up) step: pipeline compilation and first-use costs included. */
  warmup: number;
  /** True when the warm-up step alone went over the budget and is the only sample reported. */
  once: boolean;
}

export interface StepTiming {
  repeats: number;
  /** Seconds a case may take in all (warm-up included). */
  budget?: number;
  /** A warm-up step slower than this is reported as the single sample (default: budget). */
  onceOver?: number;
}

export interface Stepper {
  /** Encodes one step; returns without waiting. */
  step(): void;
  sync(): Promise<void>;
}

/**
 * Times `step` followed by `sync`: one warm-up step, then as many timed samples (one step each) as
 * fit in the budget, at least one and at most `repeats`. Returns seconds per step (and `cpu`:
 * process CPU seconds per step, llvmpipe's threads included).
 */
export async function timeSteps(step: () => void, sync: () => Promise<void>, o: StepTiming): Promise<StepStat> {
  const [r] = await timeStepsInterleaved([{ step, sync }], o);
  if (!r || !('median' in r)) throw new Error(r?.error ?? 'no result');
  return r;
}

interface Sample {
  wall: number;
  cpu: number;
}

async function timeOne(s: Stepper): Promise<Sample> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  s.step();
  await s.sync();
  const c = process.cpuUsage(c0);
  return { wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
}

const message = (e: unknown) => (e instanceof Error ? e.message.split('\n')[0]! : String(e));

/**
 * timeSteps for several implementations of the same step, with their samples interleaved
 * (A, B, A, B, ...) so that a machine whose load drifts slows all of them alike. The budget is per
 * implementation; one whose warm-up exceeds `onceOver` reports that warm-up step alone.
 */
export async function timeStepsInterleaved(list: readonly Stepper[], o: StepTiming): Promise<(StepStat | { error: string })[]> {
  const budget = o.budget ?? 60;
  const onceOver = o.onceOver ?? budget;
  const warm: (Sample | { error: string })[] = [];
  for (const s of list) warm.push(await timeOne(s).catch((e: unknown) => ({ error: message(e) })));
  const wallOf = (w: Sample | { error: string }) => ('wall' in w ? w.wall : Infinity);
  const active = warm.map((w) => wallOf(w) <= onceOver);
  const warmSum = warm.reduce((a, w, i) => a + (active[i] ? wallOf(w) : 0), 0);
  const n = active.filter(Boolean).length;
  const samples = n ? Math.max(1, Math.min(o.repeats, Math.floor((budget * n - warmSum) / warmSum))) : 0;
  const per: Sample[][] = list.map(() => []);
  const failed: (string | null)[] = list.map(() => null);
  for (let k = 0; k < samples; k++) {
    for (let i = 0; i < list.length; i++) {
      if (!active[i] || failed[i]) continue;
      try {
        per[i]!.push(await timeOne(list[i]!));
      } catch (e) {
        failed[i] = message(e);
      }
    }
  }
  return list.map((_, i) => {
    const w = warm[i]!;
    if (!('wall' in w)) return w;
    if (failed[i]) return { error: failed[i]! };
    if (!active[i]) return { median: w.wall, min: w.wall, max: w.wall, samples: 1, calls: 1, cpu: w.cpu, warmup: w.wall, once: true };
    const ps = per[i]!;
    const wall = ps.map((p) => p.wall);
    return { median: median(wall), min: Math.min(...wall), max: Math.max(...wall), samples: ps.length, calls: 1, cpu: median(ps.map((p) => p.cpu)), warmup: w.wall, once: false };
  });
}

export interface MemoryPeak {
  /** Bytes live when the case started (weights, cached inputs). */
  baseLiveBytes: number;
  peakLiveBytes: number;
  peakAllocatedBytes: number;
}

/**
 * Starts a device-memory measurement: frees the pool's free lists (so the allocated peak is this
 * case's, not an earlier case's leftovers) and resets the peaks. Call the result after the case.
 */
export function memoryProbe(gpu: Gpu): () => MemoryPeak {
  gpu.pool.trim();
  gpu.pool.resetPeaks();
  const baseLiveBytes = gpu.pool.snapshot().liveBytes;
  return () => {
    const s = gpu.pool.snapshot();
    return { baseLiveBytes, peakLiveBytes: s.peakLiveBytes, peakAllocatedBytes: s.peakAllocatedBytes };
  };
}

/** "adapter: llvmpipe (…), backend opengles, compatibility", as the matmul suite prints it. */
export function adapterLine(gpu: Gpu): string {
  return `adapter: ${gpu.kind} (${gpu.info.description || gpu.info.device || gpu.info.vendor}), backend ${gpu.info.backend}, ${gpu.info.featureLevel}`;
}

/** "load average at start: 5.1 4.8 7.0 on 2 CPUs", as the matmul suite prints it. */
export function loadLine(when: 'start' | 'end'): string {
  return `load average at ${when}: ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} CPUs`;
}

/** Uniform values in [-scale, scale) from a seeded LCG (no Math.random: runs are repeatable). */
export function uniform(n: number, seed: number, scale = 1): Float32Array {
  let s = (seed * 2654435761) >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 31 - 1) * scale;
  }
  return out;
}

export const REFERENCE_MATMUL = { M: 1600, K: 768, N: 2304, name: '1600x768 @ 768x2304' } as const;

/**
 * GFLOP/s of one plain 1600x768 @ 768x2304 matmul (ViT-B/32's qkv projection at batch 32), timed in
 * this process with the matmul suite's protocol: the yardstick the step rates are divided by.
 */
export function referenceMatmulRate(gpu: Gpu, repeats: number): Promise<Stat> {
  return matmulRateAt(gpu, REFERENCE_MATMUL, repeats);
}

/** The common JSON line plus suite-specific fields. */
export function jsonLineWith(r: CaseResult, extra: Record<string, unknown>): string {
  return JSON.stringify({ ...(JSON.parse(jsonLine(r)) as Record<string, unknown>), ...extra });
}

export function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(2);
}

/** "median (min–max)" of a stat scaled by `k`, with the sample count when below 3. */
export function statCell(s: Stat | StepStat, k = 1): string {
  const note = 'once' in s && s.once
    ? ' [1 run, warm-up incl.]'
    : s.samples < 3 ? ` [${s.samples} sample${s.samples > 1 ? 's' : ''}]` : '';
  return s.min === s.max ? `${fmt(s.median * k)}${note}` : `${fmt(s.median * k)} (${fmt(s.min * k)}–${fmt(s.max * k)})${note}`;
}

export function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(0);
}

export function markdownTable(head: string[], rows: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, '/');
  return [`| ${head.map(esc).join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

export function option(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Relative max error: max |a - b| / max |b| (b is the reference). */
export function relMaxError(a: Float32Array, b: Float32Array): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return a.length !== b.length ? Infinity : err / Math.max(scale, 1e-30);
}
