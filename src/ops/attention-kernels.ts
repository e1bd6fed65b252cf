// Generates the attention kernels (shaders/attention_*.wgsl skeletons + unrolled register tiles)
// and encodes their dispatches. Five kernel shapes serve the whole op:
//   qk (NT over the head dim): scores S = scale q.k with causal/padding marked, or dS;
//   softmax (per row, in place): S -> P and the log-sum-exp, or P from a saved log-sum-exp;
//   nn (over keys): P.V and dQ = scale dS.K;  tn (over queries): dV = P^T dO and dK = scale dS^T Q;
//   mask (adds an additive mask to S), delta (rowsum(dO * O)).
// Every sum runs inside one invocation in a fixed order: deterministic, no atomics.
//
// Why this shape (measured on llvmpipe, Mesa 22.3; numbers in the report and bench/):
// - A storage-buffer load or store compiles to a loop over the SIMD lanes with bounds checks. At
//   run time loads therefore cost per lane while arithmetic runs 8 lanes wide, so invocations own
//   register tiles (rows x keys or rows x head-dim columns) in which every loaded element feeds many
//   FMAs. No workgroup memory and no barriers (barriers are expensive on CPU adapters).
// - At compile time every access site costs ~10 ms and large unrolled bodies grow superlinearly:
//   a fused flash-attention kernel with q and o unrolled in registers ran ~2.5x faster but took
//   10-70 s to compile. So the loops over the head dim, keys and queries are runtime loops, and the
//   rows of a tile are loaded in a runtime loop and routed into the unrolled registers by selects
//   (one load site per operand; selects are cheap next to per-lane loads). The register tile is
//   compiled for a maximum size; the rows actually used come in as uniforms, which also balances
//   the tiles to the sequence length (50 rows -> 7 tiles of 8, not 4 of 16 with 14 idle).
// The scores of one call are materialised ([B*heads, Tq, ceil4(Tk)]) between the kernels.
import { GpuError, shaderSource, type Binding, type Gpu, type Kernel } from '../gpu/index.js';
import { Uniforms } from '../gpu/uniforms.js';

/** Tile sizes of the attention kernels (tests force each variant through setAttentionTiles). */
export interface AttentionTiles {
  /** Head-dim elements per load: 4 (vec4, needs headDim % 4 == 0) or 1 (scalar path, any headDim). */
  vec: 1 | 4;
  /** Scores / dS kernel: query rows x keys per invocation (keys a multiple of 4). */
  qkRows: number;
  qkKeys: number;
  /** P.V / dS.K kernel: query rows x head-dim elements (of `vec`) per invocation. */
  nnRows: number;
  nnCols: number;
  /** P^T.dO / dS^T.Q kernel: key rows (a multiple of 4) x head-dim elements per invocation. */
  tnKeys: number;
  tnCols: number;
  /** Invocations per workgroup. */
  wg: number;
}

let forced: Partial<AttentionTiles> | null = null;

/** Forces tile sizes for every following attention call (null restores the defaults). For tests and benchmarks. */
export function setAttentionTiles(t: Partial<AttentionTiles> | null): void {
  forced = t;
}

/**
 * Tiles for this device and head dim. CPU adapters get 8-16 row register tiles, measured with
 * bench/attention-ab.ts: 16x16 scores/dS tiles run 25-30% faster than 8x8 (they load half as much
 * per FMA) for ~1 s more compile each; bigger P.V / dV tiles gave nothing. A discrete GPU gets
 * light invocations. Forced overrides apply as given.
 */
export function attentionTiles(gpu: Gpu, headDim: number): AttentionTiles {
  const vec: 1 | 4 = headDim % 4 === 0 ? 4 : 1;
  const cpu = gpu.isSoftware;
  const t: AttentionTiles = cpu
    ? { vec, qkRows: 16, qkKeys: 16, nnRows: 8, nnCols: 4, tnKeys: 16, tnCols: 4, wg: 16 }
    : { vec, qkRows: 4, qkKeys: 4, nnRows: 4, nnCols: 1, tnKeys: 4, tnCols: 1, wg: 64 };
  Object.assign(t, forced ?? {});
  if (t.vec !== 1 && t.vec !== 4) throw new GpuError(`attention: tile vec = ${t.vec} must be 1 or 4`);
  if (t.vec === 4 && headDim % 4 !== 0) throw new GpuError(`attention: forced vec4 tiles need headDim % 4 == 0 (headDim ${headDim})`);
  for (const k of ['qkRows', 'qkKeys', 'nnRows', 'nnCols', 'tnKeys', 'tnCols', 'wg'] as const) {
    if (!Number.isInteger(t[k]) || t[k] < 1) throw new GpuError(`attention: tile ${k} = ${t[k]} must be a positive integer`);
  }
  for (const k of ['qkKeys', 'tnKeys'] as const) {
    if (t[k] % 4 !== 0) throw new GpuError(`attention: tile ${k} = ${t[k]} must be a multiple of 4 (scores are read as vec4)`);
  }
  t.wg = Math.min(t.wg, gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX);
  return t;
}

const range = (n: number): number[] => [...Array(n).keys()];
const lines = (n: number, f: (i: number) => string): string => range(n).map(f).join('\n');
const pairs = (a: number, b: number, f: (i: number, j: number) => string): string => range(a).flatMap((i) => range(b).map((j) => f(i, j))).join('\n');
const comp = (e: number): string => 'xyzw'[e]!;

function source(name: string, t: AttentionTiles, defines: Record<string, string | number>): string {
  const V = t.vec === 4 ? 'vec4<f32>' : 'f32';
  return shaderSource('attention_common', { V, VDOT: t.vec === 4 ? 'dot(a, b)' : 'a * b' }) + shaderSource(name, { V, WG: t.wg, ...defines });
}

/** `name{i}` for i < n, as a select chain choosing the one whose index equals `idx` (runtime). */
function pick(n: number, idx: string, at: (i: number) => string): string {
  let e = at(0);
  for (let i = 1; i < n; i++) e = `select(${e}, ${at(i)}, ${idx} == ${i}u)`;
  return e;
}

/** Loads in a runtime loop routed into unrolled registers `reg{i}` (one load site, n selects per row). */
function routedLoads(n: number, bound: string, idx: string, load: string, reg: (i: number) => string, indent: string): string {
  return [
    `${indent}for (var ${idx} = 0u; ${idx} < ${bound}; ${idx}++) {`,
    `${indent}  let t = ${load};`,
    lines(n, (i) => `${indent}  ${reg(i)} = select(${reg(i)}, t, ${idx} == ${i}u);`),
    `${indent}}`,
  ].join('\n');
}

/**
 * Scores (S = scale q.k, causal and padding keys MASKED) or dS = P * (dO.v - delta), written in
 * place of P ('ds') or next to a P kept from the forward ('ds2', which must stay intact).
 */
function qkSource(t: AttentionTiles, kind: 'scores' | 'ds' | 'ds2'): string {
  const TM = t.qkRows;
  const TN = t.qkKeys;
  const G = TN / 4;
  const zero = t.vec === 4 ? 'vec4<f32>(0.0)' : '0.0';
  const bindings =
    kind === 'scores'
      ? ['@group(0) @binding(2) var<storage, read_write> S: array<vec4<f32>>;', '@group(0) @binding(3) var<uniform> u: Params;']
      : kind === 'ds'
        ? [
            // dS overwrites P in place: each element is read and written by the same invocation.
            '@group(0) @binding(2) var<storage, read> DELTA: array<f32>;',
            '@group(0) @binding(3) var<storage, read_write> S: array<vec4<f32>>;',
            '@group(0) @binding(4) var<uniform> u: Params;',
          ]
        : [
            '@group(0) @binding(2) var<storage, read> DELTA: array<f32>;',
            '@group(0) @binding(3) var<storage, read> S: array<vec4<f32>>;',
            '@group(0) @binding(4) var<storage, read_write> DS: array<vec4<f32>>;',
            '@group(0) @binding(5) var<uniform> u: Params;',
          ];
  const prologue = [
    pairs(TM, TN, (r, c) => `  var x${r}_${c} = 0.0;`),
    lines(TM, (r) => `  var a${r} = ${zero};`),
    lines(TN, (c) => `  var b${c} = ${zero};`),
  ].join('\n');
  // The scale goes on q, as PyTorch and OpenAI CLIP do.
  const body = [
    routedLoads(TM, 'u.ra', 'r', `A[(b * u.tq + min(i0 + r, u.tq - 1u)) * u.rowv + hoff + v]${kind === 'scores' ? ' * u.scale' : ''}`, (r) => `a${r}`, '      '),
    routedLoads(TN, 'u.rb', 'c', `B[(b * u.tk + min(j0 + c, u.tk - 1u)) * u.rowv + hoff + v]`, (c) => `b${c}`, '      '),
    pairs(TM, TN, (r, c) => `      x${r}_${c} += vdot(a${r}, b${c});`),
  ].join('\n');
  const group = (r: number, g: number) => `vec4<f32>(${range(4).map((e) => `x${r}_${4 * g + e}`).join(', ')})`;
  const store =
    kind === 'scores'
      ? [
          `        let j = j0 + 4u * g;`,
          `        let vis = vec4<bool>(${range(4).map((e) => `j + ${e}u < u.tk && key_visible(i, j + ${e}u)`).join(', ')});`,
          `        S[srow + g] = select(vec4<f32>(MASKED), val, vis);`,
        ].join('\n')
      : `        ${kind === 'ds' ? 'S' : 'DS'}[srow + g] = S[srow + g] * (val - vec4<f32>(delta));`;
  const epilogue = [
    `  for (var r = 0u; r < u.ra; r++) {`,
    `    let i = i0 + r;`,
    `    if (i >= u.tq) { break; }`,
    `    let srow = (bh * u.tq + i) * (u.tk4 / 4u) + j0 / 4u;`,
    kind !== 'scores' ? `    let delta = DELTA[(bh + u.b0 * u.heads) * u.tq + i];` : '',
    lines(G, (g) => `    let row${g} = ${pick(TM, 'r', (r) => group(r, g))};`),
    `    for (var g = 0u; g < u.rb / 4u; g++) {`,
    `      if (j0 + 4u * g < u.tk4) {`,
    `        let val = ${pick(G, 'g', (g) => `row${g}`)};`,
    store,
    `      }`,
    `    }`,
    `  }`,
  ]
    .filter(Boolean)
    .join('\n');
  return source('attention_qk', t, { TM, TN, BINDINGS: bindings.join('\n'), PROLOGUE: prologue, BODY: body, EPILOGUE: epilogue });
}

/** Epilogue of the NN/TN kernels: row k of the tile, column x, picked from registers o{k}_{x}. */
function storeRows(TM: number, TNV: number, rowIndex: string, rowLimit: string, dst: string): string {
  return [
    `  for (var k = 0u; k < u.ra; k++) {`,
    `    if (${rowIndex} >= ${rowLimit}) { break; }`,
    lines(TNV, (x) => `    if (c0 + ${x}u < u.nv) { C[${dst} + c0 + ${x}u] = ${pick(TM, 'k', (k) => `o${k}_${x}`)} * u.scale; }`),
    `  }`,
  ].join('\n');
}

/** C = scale * X B over keys (X = P or dS). */
function nnSource(t: AttentionTiles): string {
  const TM = t.nnRows;
  const TNV = t.nnCols;
  const zero = t.vec === 4 ? 'vec4<f32>(0.0)' : '0.0';
  const prologue = [
    lines(TNV, (x) => `  let cv${x} = min(c0 + ${x}u, u.nv - 1u);`),
    pairs(TM, TNV, (r, x) => `  var o${r}_${x} = ${zero};`),
    lines(TM, (r) => `  var p${r} = vec4<f32>(0.0);`),
  ].join('\n');
  const body = [
    routedLoads(TM, 'u.ra', 'r', `X[(bh * u.tq + min(i0 + r, u.tq - 1u)) * row4 + j / 4u]`, (r) => `p${r}`, '    '),
    // The 4 keys of the group in a runtime loop (unrolling them would quadruple the B load sites);
    // each row's probability for key e is extracted once.
    `    for (var e = 0u; e < 4u; e++) {`,
    `      let kb = (b * u.tk + min(j + e, u.tk - 1u)) * u.rowv + hoff;`,
    lines(TNV, (x) => `      let y${x} = B[kb + cv${x}];`),
    lines(TM, (r) => `      let pe${r} = p${r}[e];`),
    pairs(TM, TNV, (r, x) => `      o${r}_${x} += pe${r} * y${x};`),
    `    }`,
  ].join('\n');
  const epilogue = storeRows(TM, TNV, 'i0 + k', 'u.tq', '(b * u.tq + i0 + k) * u.rowv + hoff');
  return source('attention_nn', t, { TM, TNV, PROLOGUE: prologue, BODY: body, EPILOGUE: epilogue });
}

/** C = scale * X^T B over queries (X = P or dS). */
function tnSource(t: AttentionTiles): string {
  const TM = t.tnKeys;
  const TNV = t.tnCols;
  const G = TM / 4;
  const zero = t.vec === 4 ? 'vec4<f32>(0.0)' : '0.0';
  const prologue = [
    lines(TNV, (x) => `  let cv${x} = min(c0 + ${x}u, u.nv - 1u);`),
    pairs(TM, TNV, (k, x) => `  var o${k}_${x} = ${zero};`),
    lines(G, (g) => `  var p${g} = vec4<f32>(0.0);`),
  ].join('\n');
  const body = [
    `    let xrow = (bh * u.tq + i) * row4;`,
    routedLoads(G, 'u.ra / 4u', 'g', `X[xrow + min(j0 / 4u + g, row4 - 1u)]`, (g) => `p${g}`, '    '),
    `    let qb = (b * u.tq + i) * u.rowv + hoff;`,
    lines(TNV, (x) => `    let y${x} = B[qb + cv${x}];`),
    pairs(TM, TNV, (k, x) => `    o${k}_${x} += p${k >> 2}.${comp(k & 3)} * y${x};`),
  ].join('\n');
  const epilogue = storeRows(TM, TNV, 'j0 + k', 'u.tk', '(b * u.tk + j0 + k) * u.rowv + hoff');
  return source('attention_tn', t, { TM, TNV, PROLOGUE: prologue, BODY: body, EPILOGUE: epilogue });
}

// ---- dispatch -----------------------------------------------------------------------------------

/** Shapes and flags of one attention call, shared by its kernels. */
export interface AttnDims {
  batch: number;
  tq: number;
  tk: number;
  dModel: number;
  heads: number;
  headDim: number;
  causal: boolean;
  scale: number;
  /** Mask element strides for (batch, head, query, key), or null without a mask. */
  maskStrides: readonly [number, number, number, number] | null;
}

/** Keys rounded up to 4: the row length of the scores buffer. */
export function paddedKeys(tk: number): number {
  return Math.ceil(tk / 4) * 4;
}

interface Grid {
  /** Tiles per (batch, head) along the two axes, and rows/keys per tile along them. */
  ta: number;
  tb: number;
  ra: number;
  rb: number;
  total: number;
}

function params(d: AttnDims, t: AttentionTiles, g: Grid, scale: number, b0: number): Uint32Array {
  const ms = d.maskStrides ?? [0, 0, 0, 0];
  return new Uniforms()
    .u32(d.batch, d.tq, d.tk, d.dModel / t.vec)
    .u32(d.heads, paddedKeys(d.tk), d.headDim / t.vec, g.total)
    .u32(g.ta, g.tb, d.causal ? 1 : 0)
    .i32v(d.tk - d.tq)
    .f32v(scale)
    .u32(g.ra, g.rb, b0)
    .vec4u(ms, 1)
    .done();
}

/**
 * Splits n rows into tiles of at most `max` rows, as evenly as possible, the tile a multiple of
 * `step`: the register tile is compiled for `max`, the rows actually used come in as a uniform.
 */
function split(n: number, max: number, step = 1): { tiles: number; rows: number } {
  const tiles = Math.ceil(n / max);
  const rows = Math.min(max, Math.ceil(Math.ceil(n / tiles) / step) * step);
  return { tiles: Math.ceil(n / rows), rows };
}

function describe(d: AttnDims): string {
  return `B${d.batch} Tq${d.tq} Tk${d.tk} D${d.dModel} h${d.heads}${d.causal ? ' causal' : ''}${d.maskStrides ? ' masked' : ''}`;
}

/** A buffer, or a tensor's storage bound at its own size (pooled buffers can be larger than the tensor). */
type Buf = Binding | GPUBuffer;

/**
 * Encodes the kernels of one call. `d.batch` elements starting at `b0` are processed: the scores
 * buffers passed in hold those only (see `chunk`), all other tensors span the whole batch.
 */
export class AttentionKernels {
  constructor(
    private readonly gpu: Gpu,
    private readonly t: AttentionTiles,
    private readonly d: AttnDims,
    private readonly b0 = 0,
  ) {}

  /** The same call restricted to batch elements [b0, b0 + batch). */
  chunk(b0: number, batch: number): AttentionKernels {
    return new AttentionKernels(this.gpu, this.t, { ...this.d, batch }, b0);
  }

  private kernel(name: string, build: () => string, bindings: number): Kernel {
    const t = this.t;
    const key = `attn_${name}:v${t.vec}:${t.qkRows}x${t.qkKeys}:${t.nnRows}x${t.nnCols}:${t.tnKeys}x${t.tnCols}:w${t.wg}`;
    return this.gpu.kernel(key, () => ({
      label: `attention ${name}`,
      code: build(),
      bindings: [...Array(bindings - 1).fill('read'), 'rw'] as ('read' | 'rw')[],
      uniform: true,
    }));
  }

  private run(kernel: Kernel, buffers: Buf[], g: Omit<Grid, 'total'>, perBh: boolean, scale: number, what: string): void {
    const total = (perBh ? this.d.batch * this.d.heads : 1) * g.ta * g.tb;
    this.gpu.dispatch({
      kernel,
      buffers,
      uniforms: params(this.d, this.t, { ...g, total }, scale, this.b0),
      workgroups: this.gpu.grid(Math.ceil(total / this.t.wg)),
      label: `attention ${what} ${describe(this.d)}${this.b0 ? ` from batch ${this.b0}` : ''}`,
    });
  }

  /** Lane grid of the scores/dS kernel: query-row tiles x key tiles (keys in multiples of 4). */
  private qkGrid(): Omit<Grid, 'total'> {
    const { t, d } = this;
    const a = split(d.tq, t.qkRows);
    const b = split(paddedKeys(d.tk), t.qkKeys, 4);
    return { ta: a.tiles, tb: b.tiles, ra: a.rows, rb: b.rows };
  }

  /** Lane grid of a row-wise kernel (one invocation per row). */
  private rowGrid(rows: number): Omit<Grid, 'total'> {
    return { ta: rows, tb: 1, ra: 1, rb: 1 };
  }

  /** S [B*h, Tq, tk4] = scale q.k (+ mask), masked entries MASKED. */
  scores(q: Buf, k: Buf, s: Buf, mask: Buf | null): void {
    const { t, d } = this;
    this.run(this.kernel('scores', () => qkSource(t, 'scores'), 3), [q, k, s], this.qkGrid(), true, d.scale, 'scores');
    if (mask) {
      const kernel = this.gpu.kernel(`attn_mask:v${t.vec}:w${t.wg}`, () => ({ label: 'attention mask', code: source('attention_mask', t, {}), bindings: ['rw', 'read'], uniform: true }));
      this.run(kernel, [s, mask], this.rowGrid((d.batch * d.heads * d.tq * paddedKeys(d.tk)) / 4), false, 1, 'mask');
    }
  }

  /** S -> P in place; writes lse [B*h*Tq], or (useLse) reads the forward's lse instead. */
  softmax(s: Buf, lse: Buf, useLse: boolean): void {
    const { t, d } = this;
    const kernel = this.gpu.kernel(`attn_softmax:${useLse ? 1 : 0}:v${t.vec}:w${t.wg}`, () => ({
      label: 'attention softmax',
      code: source('attention_softmax', t, { USE_LSE: useLse ? 'true' : 'false' }),
      bindings: ['rw', 'rw'],
      uniform: true,
    }));
    this.run(kernel, [s, lse], this.rowGrid(d.batch * d.heads * d.tq), false, 1, 'softmax');
  }

  /** out [B,Tq,D] = P.V (scale 1) or dS.K (scale: dQ). */
  nn(x: Buf, b: Buf, out: Buf, scale: number, what: string): void {
    const { t, d } = this;
    const a = split(d.tq, t.nnRows);
    const g = { ta: a.tiles, tb: Math.ceil(d.headDim / t.vec / t.nnCols), ra: a.rows, rb: 1 };
    this.run(this.kernel('nn', () => nnSource(t), 3), [x, b, out], g, true, scale, what);
  }

  /** out [B,Tk,D] = P^T.dO (scale 1: dV) or dS^T.Q (scale: dK). */
  tn(x: Buf, b: Buf, out: Buf, scale: number, what: string): void {
    const { t, d } = this;
    const a = split(d.tk, t.tnKeys, 4);
    const g = { ta: a.tiles, tb: Math.ceil(d.headDim / t.vec / t.tnCols), ra: a.rows, rb: 1 };
    this.run(this.kernel('tn', () => tnSource(t), 3), [x, b, out], g, true, scale, what);
  }

  /** delta [B*h*Tq] = rowsum(dO * O) per head. */
  delta(o: Buf, dO: Buf, delta: Buf): void {
    const { t, d } = this;
    const kernel = this.gpu.kernel(`attn_delta:v${t.vec}:w${t.wg}`, () => ({ label: 'attention delta', code: source('attention_delta', t, {}), bindings: ['read', 'read', 'rw'], uniform: true }));
    this.run(kernel, [o, dO, delta], this.rowGrid(d.batch * d.heads * d.tq), false, 1, 'delta');
  }

  /** dS = P * (dO.v - delta) [B*h, Tq, tk4], over P in place (ds = null) or into `ds`. */
  dScores(dO: Buf, v: Buf, delta: Buf, p: Buf, ds: Buf | null): void {
    if (ds) this.run(this.kernel('ds2', () => qkSource(this.t, 'ds2'), 5), [dO, v, delta, p, ds], this.qkGrid(), true, 1, 'dS');
    else this.run(this.kernel('ds', () => qkSource(this.t, 'ds'), 4), [dO, v, delta, p], this.qkGrid(), true, 1, 'dS');
  }
}

/** For tests: the generated WGSL of every kernel of one tile configuration. */
export function attentionSources(t: AttentionTiles): Record<string, string> {
  return {
    scores: qkSource(t, 'scores'),
    ds: qkSource(t, 'ds'),
    ds2: qkSource(t, 'ds2'),
    nn: nnSource(t),
    tn: tnSource(t),
  };
}
