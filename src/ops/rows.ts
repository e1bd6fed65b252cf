// Shared plumbing of the row kernels (softmax, layer norm, losses, distances): which variant runs
// a row (one workgroup or one invocation), the workgroup tree prelude, and the dispatch grid.
import { GpuError, shaderSource, type Gpu } from '../gpu/index.js';
import { forcedVariant, LOOP_BUDGET, rowIterations, rowWorkgroupSize, shortRow, type ReduceVariant } from './reduce-core.js';

export interface RowPlan {
  variant: ReduceVariant;
  /** Workgroup size of the 'wg' variant (also fixes the tree prelude of both entry points). */
  wg: number;
}

/**
 * How a row op that loops `passes` times over each row of length n runs: one invocation per row
 * for short rows, one workgroup per row otherwise. A forced 'thread' variant falls back to 'wg'
 * where one invocation would run over the loop budget; rows too long even for the largest
 * workgroup throw (before anything is allocated or encoded).
 */
export function rowPlan(gpu: Gpu, op: string, n: number, passes: number): RowPlan {
  const wg = rowWorkgroupSize(gpu, n, passes);
  if (rowIterations(wg, n, passes) > LOOP_BUDGET) {
    throw new GpuError(`${op}: rows of ${n} elements are too long for one workgroup of ${wg} (over the ${LOOP_BUDGET}-iteration loop budget of software adapters)`);
  }
  const threadFits = rowIterations(1, n, passes) + Math.ceil(n / 64) <= LOOP_BUDGET;
  const f = forcedVariant();
  const variant: ReduceVariant = f === 'wg' || !threadFits ? 'wg' : (f ?? (n > shortRow(gpu) ? 'wg' : 'thread'));
  return { variant, wg };
}

/** The tree prelude (shaders/row_tree.wgsl) for workgroups of `wg`, followed by a kernel source. */
export function rowSource(wg: number, name: string, defines: Record<string, string | number | boolean>): string {
  return shaderSource('row_tree', { WG: wg }) + shaderSource(name, defines);
}

export function rowWorkgroups(gpu: Gpu, variant: ReduceVariant, rows: number): [number, number, number] {
  return gpu.grid(variant === 'wg' ? rows : Math.ceil(rows / 64));
}
