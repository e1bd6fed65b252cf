// Learning-rate schedules as pure host-side functions of the epoch or step index.
//
// Dassl ("cosine" + warmup, stepped once per EPOCH) wraps torch's CosineAnnealingLR(T_max = MAX_EPOCH)
// in a warmup scheduler. With W warmup epochs and the default WARMUP_RECOUNT = True:
//   epochs 0..W-1: the warmup lr (constant: WARMUP_CONS_LR; linear: WARMUP_MIN_LR at 0, then base*k/W),
//   epoch W + j:   base * (1 + cos(pi j / MAX_EPOCH)) / 2,
// i.e. the cosine restarts its count after warmup but keeps T_max = MAX_EPOCH, so the last epoch
// never reaches 0 (methods.md 2.3: E = 5, base 0.0035 -> 1e-5, 0.0035, 0.0031658, 0.0022908, 0.0012092).
// With WARMUP_RECOUNT = False Dassl sets the cosine's last_epoch to W first, and torch's recursive
// ("chainable") cosine form, started from base at epoch W, gives base*(1+cos(pi k/E))/(1+cos(pi W/E)).
// We evaluate the same recursion torch runs, so both modes match it to float64 rounding.

export type WarmupType = 'constant' | 'linear';

export interface DasslCosineOptions {
  /** OPTIM.LR. */
  baseLr: number;
  /** OPTIM.MAX_EPOCH: T_max of the cosine. */
  maxEpoch: number;
  /** OPTIM.WARMUP_EPOCH (default 0: plain cosine). */
  warmupEpochs?: number;
  /** OPTIM.WARMUP_TYPE (default 'constant'). */
  warmupType?: WarmupType;
  /** WARMUP_CONS_LR for 'constant', WARMUP_MIN_LR for 'linear' (default 1e-5). */
  warmupLr?: number;
  /** OPTIM.WARMUP_RECOUNT (default true, Dassl's default). */
  warmupRecount?: boolean;
}

function check(what: string, v: number, integer: boolean, min: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    throw new RangeError(`${what} must be ${integer ? 'an integer' : 'a finite number'} >= ${min}, got ${v}`);
  }
}

/** One step of torch's CosineAnnealingLR.get_lr (chainable form), eta_min = 0, from the current lr. */
function cosineChain(e: number, lr: number, base: number, tMax: number): number {
  const m = 2 * tMax;
  if ((((e - 1 - tMax) % m) + m) % m === 0) return lr + (base * (1 - Math.cos(Math.PI / tMax))) / 2;
  return ((1 + Math.cos((Math.PI * e) / tMax)) / (1 + Math.cos((Math.PI * (e - 1)) / tMax))) * lr;
}

/** Learning rates of Dassl's cosine scheduler for epochs 0..epochs-1 (default maxEpoch). */
export function dasslCosineSchedule(o: DasslCosineOptions, epochs = o.maxEpoch): number[] {
  const base = o.baseLr;
  const w = o.warmupEpochs ?? 0;
  const type = o.warmupType ?? 'constant';
  const wlr = o.warmupLr ?? 1e-5;
  const recount = o.warmupRecount ?? true;
  check('dasslCosine: baseLr', base, false, 0);
  check('dasslCosine: maxEpoch', o.maxEpoch, true, 1);
  check('dasslCosine: warmupEpochs', w, true, 0);
  check('dasslCosine: warmupLr', wlr, false, 0);
  check('dasslCosine: epochs', epochs, true, 0);
  if (type !== 'constant' && type !== 'linear') throw new RangeError(`dasslCosine: unknown warmupType ${String(type)}`);
  const out: number[] = [];
  let lr = base;
  for (let k = 0; k < epochs; k++) {
    if (k < w) {
      out.push(type === 'constant' || k === 0 ? wlr : (base * k) / w);
      continue;
    }
    // The cosine's own epoch counter: 0 at epoch W (recount) or W (no recount, W > 0).
    const j = k - w;
    if (j > 0) lr = cosineChain((recount || w === 0 ? 0 : w) + j, lr, base, o.maxEpoch);
    out.push(lr);
  }
  return out;
}

/** Dassl's learning rate for one epoch (0-based); see dasslCosineSchedule. */
export function dasslCosineLr(epoch: number, o: DasslCosineOptions): number {
  check('dasslCosine: epoch', epoch, true, 0);
  return dasslCosineSchedule(o, epoch + 1)[epoch]!;
}

export interface CosineOptions {
  baseLr: number;
  /** Steps of the whole schedule (warmup included); the cosine spans totalSteps - warmupSteps. */
  totalSteps: number;
  /** Linear warmup steps (default 0). */
  warmupSteps?: number;
  /** Learning rate at step 0 of the warmup (default 0). */
  warmupStartLr?: number;
  /** Floor of the cosine (torch's eta_min, default 0). */
  minLr?: number;
}

/**
 * Per-step cosine with optional linear warmup: step s < W: start + (base - start) s / W; then
 * minLr + (base - minLr)(1 + cos(pi (s - W) / (T - W))) / 2, held at minLr from step T on.
 * With W = 0 this is torch's CosineAnnealingLR(T_max = T, eta_min = minLr) stepped per step
 * (ProLIP: T_max = 300, eta_min = 0).
 */
export function cosineLr(step: number, o: CosineOptions): number {
  const w = o.warmupSteps ?? 0;
  const start = o.warmupStartLr ?? 0;
  const min = o.minLr ?? 0;
  check('cosineLr: step', step, true, 0);
  check('cosineLr: baseLr', o.baseLr, false, 0);
  check('cosineLr: totalSteps', o.totalSteps, true, 1);
  check('cosineLr: warmupSteps', w, true, 0);
  check('cosineLr: warmupStartLr', start, false, 0);
  check('cosineLr: minLr', min, false, 0);
  if (w >= o.totalSteps) throw new RangeError(`cosineLr: warmupSteps ${w} must be below totalSteps ${o.totalSteps}`);
  if (step < w) return start + ((o.baseLr - start) * step) / w;
  const t = Math.min(step - w, o.totalSteps - w);
  return min + ((o.baseLr - min) * (1 + Math.cos((Math.PI * t) / (o.totalSteps - w)))) / 2;
}

/** A constant learning rate (for symmetry with the other schedules). */
export function constantLr(_step: number, o: { lr: number }): number {
  check('constantLr: lr', o.lr, false, 0);
  return o.lr;
}

export type ScheduleSpec =
  | ({ type: 'dassl-cosine' } & DasslCosineOptions)
  | ({ type: 'cosine' } & CosineOptions)
  | { type: 'constant'; lr: number };

/** A schedule as a function of the index it is stepped by (epoch for Dassl, step otherwise). */
export function makeSchedule(spec: ScheduleSpec): (index: number) => number {
  switch (spec.type) {
    case 'dassl-cosine': {
      const table = dasslCosineSchedule(spec);
      return (epoch) => (Number.isInteger(epoch) && epoch >= 0 && epoch < table.length ? table[epoch]! : dasslCosineLr(epoch, spec));
    }
    case 'cosine':
      return (step) => cosineLr(step, spec);
    case 'constant':
      return (step) => constantLr(step, spec);
    default:
      throw new RangeError(`makeSchedule: unknown type ${(spec as { type: string }).type}`);
  }
}
