// Optimisers that update parameters in place on the GPU, with torch.optim's exact update rules
// (the single-tensor code paths of torch 1.13/2.x): SGD (what Dassl uses), Adam and AdamW.
// step() encodes one dispatch per group of up to MAX_SLOTS parameter windows (shaders/optim_*.wgsl)
// and never reads anything back; the learning rate travels in the uniform block, so changing it
// compiles nothing. State tensors are allocated lazily on a parameter's first step with a gradient,
// as torch does, and parameters without a gradient are skipped.
import { GpuError, shaderSource, type Gpu, type Kernel } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';
import { empty, zeros, type Storage, type Tensor } from '../tensor/tensor.js';
import { groupSegments, planSegments, segmentElements, slotBindings, slotCases, slotsFor, windowOf, type SlotGroup, type SlotOptions } from './slots.js';

export { clipGradNorm } from './clip-grad.js';
export type { SlotOptions } from './slots.js';

export type OptimizerKind = 'sgd' | 'adam' | 'adamw';

export interface SGDHyper {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export interface AdamHyper {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
}

/**
 * Everything needed to resume bit-identically. `tensors` is keyed like torch's optimizer state_dict
 * (`state.<param index>.<name>`); `paramSteps[i]` is the number of steps parameter i has taken
 * (torch's per-parameter state['step']; 0 = no state yet). Numbers go in checkpoint metadata.
 */
export interface OptimizerState<H = SGDHyper | AdamHyper> {
  kind: OptimizerKind;
  /** Number of step() calls. */
  step: number;
  hyper: H;
  paramSteps: number[];
  tensors: Record<string, Tensor>;
}

export type SGDOptions = Partial<Omit<SGDHyper, 'lr'>> & { lr: number } & SlotOptions;
export type AdamOptions = Partial<Omit<AdamHyper, 'lr'>> & { lr: number } & SlotOptions;

/** Pipeline-cache key prefix and shader of an optimiser's step kernel. */
interface StepKernel {
  key: string;
  shader: string;
}

const WORKGROUP = 64;

function checkNumber(what: string, v: number, min: number, maxExclusive = Infinity): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v >= maxExclusive) {
    const range = maxExclusive === Infinity ? `>= ${min}` : `in [${min}, ${maxExclusive})`;
    throw new GpuError(`${what} must be a finite number ${range}, got ${v}`);
  }
}

export abstract class Optimizer<H extends SGDHyper | AdamHyper = SGDHyper | AdamHyper> {
  readonly params: readonly Tensor[];
  readonly gpu: Gpu;
  abstract readonly kind: OptimizerKind;
  protected hyper: H;
  /** Per parameter: its state tensors in stateNames() order, or null before its first step. */
  protected state: (Tensor[] | null)[];
  protected paramSteps: number[];
  private steps = 0;
  private readonly slotOpts: SlotOptions;

  protected constructor(params: readonly Tensor[], hyper: H, slotOpts: SlotOptions, name: string) {
    if (params.length === 0) throw new GpuError(`${name}: got an empty parameter list`);
    const seen = new Set<Storage>();
    for (const p of params) {
      p.assertAlive(name);
      if (p.dtype !== 'f32') throw new GpuError(`${name}: parameter ${p.describe()} must be f32`);
      if (seen.has(p.storage)) throw new GpuError(`${name}: parameter ${p.describe()} appears twice (or shares storage with another parameter)`);
      seen.add(p.storage);
    }
    this.params = [...params];
    this.gpu = params[0]!.gpu;
    for (const p of params) if (p.gpu !== this.gpu) throw new GpuError(`${name}: parameter ${p.describe()} lives on another device`);
    this.hyper = hyper;
    this.slotOpts = { ...slotOpts };
    this.state = params.map(() => null);
    this.paramSteps = params.map(() => 0);
    this.validateHyper(hyper);
  }

  get lr(): number {
    return this.hyper.lr;
  }
  set lr(v: number) {
    checkNumber(`${this.kind}: lr`, v, 0);
    this.hyper.lr = v;
  }
  setLr(lr: number): void {
    this.lr = lr;
  }

  /** Number of step() calls so far. */
  get stepCount(): number {
    return this.steps;
  }

  /** A copy of the hyperparameters. */
  get hyperparameters(): H {
    return structuredClone(this.hyper);
  }

  /** Updates every parameter that has a gradient, in place, on the GPU (no readback). */
  step(): void {
    const active: number[] = [];
    for (let i = 0; i < this.params.length; i++) {
      const p = this.params[i]!;
      p.assertAlive(`${this.kind}.step`);
      const g = p.grad;
      if (!g) continue;
      g.assertAlive(`${this.kind}.step`);
      if (g.dtype !== 'f32' || g.size !== p.size) {
        throw new GpuError(`${this.kind}.step: gradient ${g.describe()} does not match parameter ${p.describe()}`);
      }
      if (g.storage === p.storage) throw new GpuError(`${this.kind}.step: gradient of ${p.describe()} is the parameter itself`);
      active.push(i);
    }
    const names = this.stateNames();
    for (const i of active) {
      if (!this.state[i]) this.state[i] = this.initState(this.params[i]!, names);
    }
    for (const i of active) this.paramSteps[i]!++;
    this.steps++;
    if (active.length === 0) return;

    const gpu = this.gpu;
    const perSlot = 2 + names.length;
    const slots = slotsFor(gpu, perSlot, 0, this.slotOpts.slotsPerDispatch);
    const segs = planSegments(this.params.map((p) => p.size), active, segmentElements(gpu, this.slotOpts.segmentElements));
    const { key, shader } = this.kernelInfo();
    for (const group of groupSegments(segs, slots, WORKGROUP)) {
      const k = group.segs.length;
      const kernel = this.kernel(`${key}:${k}`, shader, k, names.length);
      const buffers = group.segs.flatMap((s) => {
        const p = this.params[s.index]!;
        return [windowOf(p, s), windowOf(p.grad!, s), ...this.state[s.index]!.map((t) => windowOf(t, s))];
      });
      const u = new Uniforms().u32(k, group.workgroups);
      this.writeHeader(u);
      group.segs.forEach((s, j) => {
        u.u32(s.count, group.wg0[j]!);
        this.writeSlot(u, s.index);
      });
      gpu.dispatch({
        kernel,
        buffers,
        uniforms: u.done(),
        workgroups: gpu.grid(group.workgroups),
        label: `${this.kind} step ${describeGroup(group, this.params)}`,
      });
    }
  }

  /** Drops every gradient (torch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.params) {
      if (p.grad) {
        p.grad.dispose();
        p.grad = null;
      }
    }
  }

  /**
   * The optimiser state. With `clone` (default) the tensors are snapshots the caller owns and must
   * dispose (later steps do not change them); without, they are handles on the live state.
   */
  stateDict(opts: { clone?: boolean } = {}): OptimizerState<H> {
    const clone = opts.clone ?? true;
    const names = this.stateNames();
    const tensors: Record<string, Tensor> = {};
    this.state.forEach((st, i) => {
      if (!st) return;
      st.forEach((t, j) => {
        tensors[`state.${i}.${names[j]}`] = clone ? this.copyOf(t) : t.share();
      });
    });
    return { kind: this.kind, step: this.steps, hyper: structuredClone(this.hyper), paramSteps: [...this.paramSteps], tensors };
  }

  /** Restores a stateDict() (hyperparameters included, as torch does); tensors are copied. */
  loadStateDict(s: OptimizerState<H>): void {
    const what = `${this.kind}.loadStateDict`;
    if (s.kind !== this.kind) throw new GpuError(`${what}: state is for ${s.kind}`);
    if (!Number.isInteger(s.step) || s.step < 0) throw new GpuError(`${what}: bad step ${s.step}`);
    if (s.paramSteps.length !== this.params.length) {
      throw new GpuError(`${what}: state has ${s.paramSteps.length} parameters, this optimiser ${this.params.length}`);
    }
    this.validateHyper(s.hyper);
    const hyper = structuredClone(s.hyper);
    const names = this.stateNamesFor(hyper);
    // Validate everything before touching any state.
    const expected = new Set<string>();
    s.paramSteps.forEach((n, i) => {
      if (!Number.isInteger(n) || n < 0) throw new GpuError(`${what}: bad step count ${n} for parameter ${i}`);
      if (n === 0) return;
      for (const name of names) {
        const key = `state.${i}.${name}`;
        expected.add(key);
        const t = s.tensors[key];
        if (!t) throw new GpuError(`${what}: missing tensor ${key}`);
        t.assertAlive(what);
        if (t.dtype !== 'f32' || t.size !== this.params[i]!.size) {
          throw new GpuError(`${what}: ${key} is ${t.describe()}, parameter ${i} is ${this.params[i]!.describe()}`);
        }
      }
    });
    for (const key of Object.keys(s.tensors)) {
      if (!expected.has(key)) throw new GpuError(`${what}: unexpected tensor ${key}`);
    }
    this.hyper = hyper;
    this.steps = s.step;
    this.paramSteps = [...s.paramSteps];
    this.state.forEach((st, i) => {
      if (!st) return;
      for (const t of st) t.dispose();
      this.state[i] = null;
    });
    s.paramSteps.forEach((n, i) => {
      if (n === 0) return;
      this.state[i] = names.map((name) => this.copyOf(s.tensors[`state.${i}.${name}`]!));
    });
  }

  /** Frees the state tensors (the parameters and their gradients are the caller's). */
  dispose(): void {
    for (const st of this.state) if (st) for (const t of st) t.dispose();
    this.state = this.params.map(() => null);
  }

  protected stateNames(): string[] {
    return this.stateNamesFor(this.hyper);
  }

  protected abstract stateNamesFor(h: H): string[];
  protected abstract validateHyper(h: H): void;
  protected abstract kernelInfo(): StepKernel;
  /** Fresh state for a parameter's first step. */
  protected abstract initState(p: Tensor, names: readonly string[]): Tensor[];
  /** The uniform header after (nslots, total): to 8 words for SGD, 12 for Adam. */
  protected abstract writeHeader(u: Uniforms): void;
  /** Two words per slot after (n, wg0), for parameter `i` (its step count is already incremented). */
  protected abstract writeSlot(u: Uniforms, i: number): void;

  /**
   * The step kernel for `slots` slots. Per slot s it binds P<s> (param, rw), G<s> (grad, read) and
   * S<j>_<s> (state j, rw), and each case loads a Cell, calls the shader's update() and stores back.
   */
  private kernel(key: string, shader: string, slots: number, nState: number): Kernel {
    return this.gpu.kernel(key, () => {
      const state = Array.from({ length: nState }, (_, j) => `S${j}_`);
      const names = ['P', 'G', ...state];
      const kinds = names.map((n) => (n === 'G' ? 'read' : 'rw') as 'read' | 'rw');
      const cases = slotCases(slots, (s) => {
        const cell = [`P${s}[i]`, `G${s}[i]`, ...[0, 1, 2].map((j) => (j < nState ? `${state[j]}${s}[i]` : '0.0'))];
        const stores = [`P${s}[i] = r.p;`, ...state.map((n, j) => `${n}${s}[i] = r.s${j};`)];
        const arg = shader === 'optim_sgd' ? 'slot.first' : 'slot';
        return `let r = update(Cell(${cell.join(', ')}), ${arg}); ${stores.join(' ')}`;
      });
      return {
        label: key,
        code: shaderSource(shader, { K: slots, UNIFORM: slots * names.length, BINDINGS: slotBindings(slots, names, kinds), CASES: cases }),
        bindings: Array.from({ length: slots }, () => kinds).flat(),
        uniform: true,
      };
    });
  }

  private copyOf(t: Tensor): Tensor {
    const c = empty(t.shape, t.dtype, this.gpu, 'optimizer state');
    this.gpu.copy(t.buffer, 0, c.buffer, 0, t.bytes, `copy ${t.describe()}`);
    return c;
  }
}

function describeGroup(g: SlotGroup, params: readonly Tensor[]): string {
  return g.segs.map((s) => `${params[s.index]!.describe()}${s.count === params[s.index]!.size ? '' : `@${s.offset}+${s.count}`}`).join(', ');
}

/** torch.optim.SGD: d = g + wd p; buf = d (first step) or momentum buf + (1 - dampening) d; d = nesterov ? d + momentum buf : buf; p -= lr d. */
export class SGD extends Optimizer<SGDHyper> {
  readonly kind = 'sgd' as const;

  constructor(params: readonly Tensor[], opts: SGDOptions) {
    const { lr, momentum = 0.9, weightDecay = 5e-4, dampening = 0, nesterov = false, ...slot } = opts;
    super(params, { lr, momentum, dampening, weightDecay, nesterov }, slot, 'SGD');
  }

  protected validateHyper(h: SGDHyper): void {
    checkNumber('SGD: lr', h.lr, 0);
    checkNumber('SGD: momentum', h.momentum, 0);
    checkNumber('SGD: dampening', h.dampening, -Infinity);
    checkNumber('SGD: weightDecay', h.weightDecay, 0);
    if (typeof h.nesterov !== 'boolean') throw new GpuError(`SGD: nesterov must be a boolean`);
    if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) throw new GpuError('SGD: Nesterov momentum requires a momentum and zero dampening');
  }

  protected stateNamesFor(h: SGDHyper): string[] {
    return h.momentum !== 0 ? ['momentum_buffer'] : [];
  }

  protected kernelInfo(): StepKernel {
    return { key: `optim:sgd:${this.hyper.momentum !== 0 ? 'mom' : 'plain'}`, shader: 'optim_sgd' };
  }

  protected initState(p: Tensor, names: readonly string[]): Tensor[] {
    // The first step writes buf = d, so the buffer needs no clearing.
    return names.map(() => empty(p.shape, 'f32', this.gpu, 'momentum_buffer'));
  }

  protected writeHeader(u: Uniforms): void {
    const h = this.hyper;
    u.f32v(-h.lr, h.weightDecay, h.momentum, 1 - h.dampening).u32(h.nesterov ? 1 : 0, h.momentum !== 0 ? 1 : 0);
  }

  protected writeSlot(u: Uniforms, i: number): void {
    u.u32(this.paramSteps[i] === 1 ? 1 : 0, 0);
  }
}

abstract class AdamBase extends Optimizer<AdamHyper> {
  protected abstract readonly decoupled: boolean;

  protected validateHyper(h: AdamHyper): void {
    const n = this.constructor.name;
    checkNumber(`${n}: lr`, h.lr, 0);
    if (!Array.isArray(h.betas) || h.betas.length !== 2) throw new GpuError(`${n}: betas must be [beta1, beta2]`);
    checkNumber(`${n}: betas[0]`, h.betas[0], 0, 1);
    checkNumber(`${n}: betas[1]`, h.betas[1], 0, 1);
    checkNumber(`${n}: eps`, h.eps, 0);
    checkNumber(`${n}: weightDecay`, h.weightDecay, 0);
    if (typeof h.amsgrad !== 'boolean') throw new GpuError(`${n}: amsgrad must be a boolean`);
  }

  protected stateNamesFor(h: AdamHyper): string[] {
    return h.amsgrad ? ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'] : ['exp_avg', 'exp_avg_sq'];
  }

  protected kernelInfo(): StepKernel {
    return { key: `optim:adam:${this.hyper.amsgrad ? 'ams' : 'plain'}`, shader: 'optim_adam' };
  }

  protected initState(p: Tensor, names: readonly string[]): Tensor[] {
    return names.map(() => zeros(p.shape, 'f32', this.gpu));
  }

  protected writeHeader(u: Uniforms): void {
    const h = this.hyper;
    const [b1, b2] = h.betas;
    const l2 = this.decoupled ? 0 : h.weightDecay;
    const decay = this.decoupled ? 1 - h.lr * h.weightDecay : 1;
    u.f32v(l2, decay, b1, 1 - b1, b2, 1 - b2, h.eps).u32(h.amsgrad ? 1 : 0, 0, 0);
  }

  protected writeSlot(u: Uniforms, i: number): void {
    const t = this.paramSteps[i]!;
    const [b1, b2] = this.hyper.betas;
    const bc1 = 1 - b1 ** t;
    const bc2 = 1 - b2 ** t;
    u.f32v(-(this.hyper.lr / bc1), Math.sqrt(bc2));
  }
}

/** torch.optim.Adam: L2 weight decay added to the gradient, bias-corrected moments per parameter step. */
export class Adam extends AdamBase {
  readonly kind = 'adam' as const;
  protected readonly decoupled = false;

  constructor(params: readonly Tensor[], opts: AdamOptions) {
    const { lr, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0, amsgrad = false, ...slot } = opts;
    super(params, { lr, betas: [betas[0], betas[1]], eps, weightDecay, amsgrad }, slot, 'Adam');
  }
}

/** torch.optim.AdamW: decoupled weight decay p *= 1 - lr wd before the Adam update. */
export class AdamW extends AdamBase {
  readonly kind = 'adamw' as const;
  protected readonly decoupled = true;

  constructor(params: readonly Tensor[], opts: AdamOptions) {
    const { lr, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0.01, amsgrad = false, ...slot } = opts;
    super(params, { lr, betas: [betas[0], betas[1]], eps, weightDecay, amsgrad }, slot, 'AdamW');
  }
}
