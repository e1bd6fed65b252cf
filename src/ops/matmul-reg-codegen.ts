// Generates the unrolled parts of shaders/matmul_reg.wgsl for one register tile and operand layout.
// P(m,k) is stored row-major [M,K] ("k-contiguous") or, transposed, [K,M] ("m-contiguous");
// Q(k,n) is [K,N] ("n-contiguous") or, transposed, [N,K] ("k-contiguous"). A vectorised operand is
// bound as array<vec4<f32>> and read 4 contiguous words at a time; its offsets are in vec4 units.
// Each k computes C[i][j] += P(m0+i, k) * Q(k, n0+4j..n0+4j+3) as vec4 FMAs, so every layout
// reduces to "a scalar of P times a vec4 row of Q".
//
// k step: measured on llvmpipe (bench/README.md), reading 4 k at a time pays off only when Q is
// k-contiguous (its TN columns are then TN vec4 loads per 4 k instead of 4*TN scalar loads); for
// the other layouts a step of 1 is as fast and its shader is ~4x smaller (LLVM compiles it ~3x
// faster: seconds per pipeline for 16x16 tiles). So kstep = 4 exactly when Q is k-contiguous and
// vectorised, which requires K % 4 == 0, and P is then vectorised along k too when aligned.

export interface RegShape {
  tm: number;
  tn: number;
  wx: number;
  wy: number;
  /** Tile walk order: 'm' = consecutive workgroups go down M (a Q column block stays in cache). */
  order: 'm' | 'n';
}

export interface RegLayout {
  transP: boolean;
  transQ: boolean;
  vecP: boolean;
  vecQ: boolean;
  vecC: boolean;
}

const LANE = ['x', 'y', 'z', 'w'] as const;

function range(n: number): number[] {
  return [...Array(n).keys()];
}

function indent(lines: string[], n: number): string {
  const pad = ' '.repeat(n);
  return lines.map((l) => pad + l).join('\n');
}

/** 4 when Q is k-contiguous and vectorised (see above), else 1. */
export function kStep(l: RegLayout): 1 | 4 {
  return l.transQ && l.vecQ ? 4 : 1;
}

export function regDefines(s: RegShape, l: RegLayout): Record<string, string | number> {
  const { tm, tn } = s;
  const groupsN = tn / 4;
  const groupsM = tm / 4;

  const tile =
    s.order === 'm'
      ? ['let tm = t % u.tilesM;', 'let rest = t / u.tilesM;', 'let tn = rest % u.tilesN;', 'let ob = outerOffsets(rest / u.tilesN);']
      : ['let tn = t % u.tilesN;', 'let rest = t / u.tilesN;', 'let tm = rest % u.tilesM;', 'let ob = outerOffsets(rest / u.tilesM);'];

  const acc = range(tm).flatMap((i) => range(groupsN).map((j) => `var c${i}_${j} = vec4<f32>(0.0);`));

  // Per-invocation offsets, computed once per reduced batch (rows/columns past the edge are clamped
  // onto the last one; their results are never stored).
  const setup: string[] = [];
  if (!l.transP) {
    for (const i of range(tm)) {
      const row = `(pbase + min(m0 + ${i}u, mLast) * u.ldp)`;
      setup.push(`let pr${i} = ${l.vecP ? `${row} >> 2u` : row};`);
    }
  } else if (l.vecP) {
    for (const g of range(groupsM)) setup.push(`let pg${g} = min((m0 >> 2u) + ${g}u, mLast >> 2u);`);
  } else {
    for (const i of range(tm)) setup.push(`let pr${i} = min(m0 + ${i}u, mLast);`);
  }
  if (!l.transQ) {
    if (l.vecQ) for (const j of range(groupsN)) setup.push(`let qg${j} = min((n0 >> 2u) + ${j}u, nLast >> 2u);`);
    else for (const c of range(tn)) setup.push(`let qc${c} = min(n0 + ${c}u, nLast);`);
  } else {
    for (const c of range(tn)) {
      const col = `(qbase + min(n0 + ${c}u, nLast) * u.ldq)`;
      setup.push(`let qr${c} = ${l.vecQ ? `${col} >> 2u` : col};`);
    }
  }

  return {
    TM: tm,
    TN: tn,
    WX: s.wx,
    WY: s.wy,
    P_T: l.vecP ? 'vec4<f32>' : 'f32',
    Q_T: l.vecQ ? 'vec4<f32>' : 'f32',
    C_T: l.vecC ? 'vec4<f32>' : 'f32',
    TILE: indent(tile, 2),
    ACC: indent(acc, 2),
    SETUP: indent(setup, 4),
    KSTEP: kStep(l),
    STEP: indent(step(s, l), 6),
    STORE: indent(store(s, l), 2),
  };
}

/** Loads and FMAs for k..k+kstep-1. */
function step(s: RegShape, l: RegLayout): string[] {
  const { tm, tn } = s;
  const kks = kStep(l);
  const groupsN = tn / 4;
  const out: string[] = [];
  let aval: (i: number, kk: number) => string;
  let bvec: (kk: number, j: number) => string;

  // P.
  if (!l.transP) {
    for (const i of range(tm)) {
      if (kks === 4) {
        out.push(
          l.vecP
            ? `let a${i} = P[pr${i} + (k >> 2u)];`
            : `let a${i} = vec4<f32>(P[pr${i} + k], P[pr${i} + k + 1u], P[pr${i} + k + 2u], P[pr${i} + k + 3u]);`,
        );
      } else {
        out.push(`let a${i} = P[pr${i} + k];`);
      }
    }
    aval = kks === 4 ? (i, kk) => `a${i}.${LANE[kk]}` : (i) => `a${i}`;
  } else {
    for (const kk of range(kks)) {
      const row = `(pbase + (k + ${kk}u) * u.ldp)`;
      out.push(`let pk${kk} = ${l.vecP ? `${row} >> 2u` : row};`);
      if (l.vecP) for (const g of range(tm / 4)) out.push(`let a${kk}_${g} = P[pk${kk} + pg${g}];`);
      else for (const i of range(tm)) out.push(`let a${kk}_${i} = P[pk${kk} + pr${i}];`);
    }
    aval = l.vecP ? (i, kk) => `a${kk}_${i >> 2}.${LANE[i & 3]}` : (i, kk) => `a${kk}_${i}`;
  }

  // Q.
  if (!l.transQ) {
    for (const kk of range(kks)) {
      const row = `(qbase + (k + ${kk}u) * u.ldq)`;
      out.push(`let qk${kk} = ${l.vecQ ? `${row} >> 2u` : row};`);
      for (const j of range(groupsN)) {
        out.push(
          l.vecQ
            ? `let b${kk}_${j} = Q[qk${kk} + qg${j}];`
            : `let b${kk}_${j} = vec4<f32>(${range(4).map((c) => `Q[qk${kk} + qc${4 * j + c}]`).join(', ')});`,
        );
      }
    }
    bvec = (kk, j) => `b${kk}_${j}`;
  } else {
    // k-contiguous Q: per column, 4 k at once (vec4) or 1 k (scalar); then columns 4j..4j+3 at each k.
    for (const c of range(tn)) out.push(kks === 4 ? `let b${c} = Q[qr${c} + (k >> 2u)];` : `let b${c} = Q[qr${c} + k];`);
    for (const kk of range(kks)) {
      for (const j of range(groupsN)) {
        const parts = range(4).map((c) => (kks === 4 ? `b${4 * j + c}.${LANE[kk]}` : `b${4 * j + c}`));
        out.push(`let bv${kk}_${j} = vec4<f32>(${parts.join(', ')});`);
      }
    }
    bvec = (kk, j) => `bv${kk}_${j}`;
  }

  for (const kk of range(kks)) {
    for (const i of range(tm)) {
      for (const j of range(groupsN)) {
        out.push(`c${i}_${j} = fma(vec4<f32>(${aval(i, kk)}), ${bvec(kk, j)}, c${i}_${j});`);
      }
    }
  }
  return out;
}

function store(s: RegShape, l: RegLayout): string[] {
  const { tm, tn } = s;
  const groupsN = tn / 4;
  const out: string[] = ['let hasBias = u.offs.w != 0u;'];
  // The bias slot is bound (to P) even without a bias; reads are clamped and unused then.
  for (const j of range(groupsN)) {
    const read = l.vecC
      ? `BIAS[min((n0 >> 2u) + ${j}u, nLast >> 2u)]`
      : `vec4<f32>(${range(4).map((c) => `BIAS[min(n0 + ${4 * j + c}u, nLast)]`).join(', ')})`;
    out.push(`let bs${j} = select(vec4<f32>(0.0), ${read}, hasBias);`);
  }
  for (const i of range(tm)) {
    out.push(`if (m0 + ${i}u < u.M) {`);
    out.push(`  let cr = cb + (m0 + ${i}u) * u.ldc;`);
    for (const j of range(groupsN)) {
      if (l.vecC) {
        out.push(`  if (n0 + ${4 * j}u < u.N) { C[(cr >> 2u) + (n0 >> 2u) + ${j}u] = c${i}_${j} + bs${j}; }`);
      } else {
        out.push(`  let v${j} = c${i}_${j} + bs${j};`);
        for (const c of range(4)) out.push(`  if (n0 + ${4 * j + c}u < u.N) { C[cr + n0 + ${4 * j + c}u] = v${j}.${LANE[c]}; }`);
      }
    }
    out.push('}');
  }
  return out;
}
