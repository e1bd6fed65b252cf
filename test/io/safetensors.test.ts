import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { encodeSafetensors, readSafetensors, type EncodeTensor } from '../../src/io/safetensors.js';
import { openSafetensors, writeSafetensors } from '../../src/io/safetensors-node.js';
import { bytesToF32, f16BitsToF32, f32ToF16Bits } from '../../src/io/dtypes.js';
import { GOLDEN, errorOf, scratchDir } from './helpers.js';

const OPENAI = join(GOLDEN, 'weights.openai.safetensors');

test('golden file: lazy file reader and in-memory reader agree', async () => {
  const mem = readSafetensors(readFileSync(OPENAI), 'weights.openai.safetensors');
  const file = await openSafetensors(OPENAI);
  try {
    assert.equal(file.names, mem.names);
    assert.is(file.names.length, 62);
    assert.is(file.metadata.case, 'tiny-vit');
    assert.equal(file.info('visual.conv1.weight'), { dtype: 'F32', shape: [128, 3, 8, 8] });
    assert.equal(file.info('logit_scale'), { dtype: 'F32', shape: [] });
    for (const n of file.names) assert.equal(await file.getF32(n), await mem.getF32(n), n);
    const ls = await file.getF32('logit_scale');
    assert.ok(Math.abs(ls[0]! - Math.log(1 / 0.07)) < 1e-6, `logit_scale ${ls[0]}`);
  } finally {
    await file.close();
  }
  await file.close(); // idempotent
});

test('re-encoding the golden file reproduces it byte for byte', async () => {
  const bytes = readFileSync(OPENAI);
  const f = readSafetensors(bytes);
  const t: Record<string, EncodeTensor> = {};
  for (const n of f.names) t[n] = { ...f.info(n), data: await f.getBytes(n) };
  const again = encodeSafetensors(t, { ...f.metadata });
  assert.ok(Buffer.from(again).equals(bytes));
});

function sample(): Record<string, EncodeTensor> {
  return {
    'f32.a': { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, -0, 1e-30]) },
    u8: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 255]) },
    f16: { dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7c00]) }, // 1, -2, inf
    f64: { dtype: 'F64', shape: [2], data: new Float64Array([0.1, -1e300]) },
    bf16: { dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0x4049]) }, // 1, 3.140625
    i64: { dtype: 'I64', shape: [3], data: new BigInt64Array([-1n, 7n, 2147483647n]) },
    i32: { dtype: 'I32', shape: [], data: new Int32Array([-5]) },
    bool: { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
}

function checkSample(f: ReturnType<typeof readSafetensors>, got: Record<string, Float32Array | Int32Array>): void {
  assert.equal([...got['f32.a']!], [1, -2, 3.5, 0, -0, Math.fround(1e-30)]);
  assert.equal([...got.f16!], [1, -2, Infinity]);
  assert.equal([...got.f64!], [Math.fround(0.1), -Infinity]);
  assert.equal([...got.bf16!], [1, 3.140625]);
  assert.equal([...got.i64!], [-1, 7, 2147483647]);
  assert.equal([...got.i32!], [-5]);
  assert.equal([...got.u8!], [1, 2, 255]);
  assert.equal([...got.bool!], [1, 0]);
  assert.is(got.empty!.length, 0);
  assert.equal(f.metadata, { format: 'pt', note: 'héllo' });
  // Packed without gaps, 8-byte dtypes first; every offset a multiple of its element size.
  const byBegin = [...f.header.entries].sort((a, b) => a.begin - b.begin);
  let end = 0;
  for (const e of byBegin) {
    assert.is(e.begin, end, `${e.name} starts where the previous tensor ends`);
    end = e.end;
  }
  assert.equal(byBegin.slice(0, 2).map((e) => e.name).sort(), ['f64', 'i64']);
  assert.is(f.header.dataStart % 8, 0);
}

async function readAll(f: ReturnType<typeof readSafetensors>): Promise<Record<string, Float32Array | Int32Array>> {
  const got: Record<string, Float32Array | Int32Array> = {};
  for (const n of f.names) {
    const dt = f.info(n).dtype;
    got[n] = dt.startsWith('F') || dt === 'BF16' ? await f.getF32(n) : await f.getI32(n);
  }
  return got;
}

test('encode/read round trip over every dtype, scalars and empty tensors', async () => {
  const bytes = encodeSafetensors(sample(), { format: 'pt', note: 'héllo' });
  const f = readSafetensors(bytes);
  checkSample(f, await readAll(f));
});

test('writeSafetensors writes the same bytes atomically, openSafetensors reads them lazily', async () => {
  const dir = scratchDir();
  const path = join(dir, 'out.safetensors');
  const t = sample();
  // Lazy data: one function per tensor, resolved while writing.
  const lazy = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, { ...v, data: async () => v.data }]));
  await writeSafetensors(path, lazy, { format: 'pt', note: 'héllo' });
  assert.ok(readFileSync(path).equals(Buffer.from(encodeSafetensors(t, { format: 'pt', note: 'héllo' }))));
  assert.equal(readdirSync(dir), ['out.safetensors']);
  const f = await openSafetensors(path);
  try {
    checkSample(f, await readAll(f));
  } finally {
    await f.close();
  }
});

test('f16 to f32 is exact for all 65536 patterns and f32 to f16 rounds back', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const f = f16BitsToF32(all);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
    const want = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
    if (!Object.is(f[h], want)) assert.unreachable(`f16 0x${h.toString(16)}: ${f[h]} != ${want}`);
  }
  const back = f32ToF16Bits(f);
  for (let h = 0; h < 65536; h++) {
    if (((h >> 10) & 31) === 31 && h & 1023) continue; // NaN payloads are not kept
    if (back[h] !== h) assert.unreachable(`f16 0x${h.toString(16)} -> 0x${back[h]!.toString(16)}`);
  }
  // Round to nearest even at a tie: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
  assert.is(f32ToF16Bits(new Float32Array([1 + 2 ** -11]))[0], 0x3c00);
  assert.is(f32ToF16Bits(new Float32Array([1 + 3 * 2 ** -11]))[0], 0x3c02);
  assert.is(f32ToF16Bits(new Float32Array([65520]))[0], 0x7c00);
});

test('conversions reject what they cannot represent', async () => {
  const f = readSafetensors(encodeSafetensors({
    big: { dtype: 'I64', shape: [2], data: new BigInt64Array([1n, 1n << 40n]) },
    ids: { dtype: 'I32', shape: [1], data: new Int32Array([3]) },
  }), 'w.safetensors');
  assert.match(await errorOf(() => f.getI32('big')), 'w.safetensors: tensor "big": I64 value 1099511627776 at element 1 does not fit in i32');
  assert.match(await errorOf(() => f.getF32('ids')), 'w.safetensors: tensor "ids": dtype I32 is not a floating-point type');
  assert.match(await errorOf(() => f.getF32('nope')), 'w.safetensors: no tensor "nope"');
  assert.throws(() => bytesToF32(new Uint8Array(3), 'F32', 'x'), /3 bytes is not a whole number of F32 elements/);
});

test('writer validates data type and size against dtype and shape', async () => {
  assert.throws(() => encodeSafetensors({ a: { dtype: 'F32', shape: [2], data: new Float64Array(2) } }, undefined, 'o.safetensors'),
    /o\.safetensors: tensor "a": F32 data must be a Float32Array \(or raw bytes in a Uint8Array\), got a Float64Array/);
  assert.throws(() => encodeSafetensors({ a: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }, undefined, 'o.safetensors'),
    /o\.safetensors: tensor "a": data has 12 bytes but shape \[2,2\] x F32 needs 16/);
  assert.throws(() => encodeSafetensors({ a: { dtype: 'F8' as never, shape: [1], data: new Uint8Array(1) } }), /unknown dtype "F8"/);
  assert.throws(() => encodeSafetensors({ __metadata__: { dtype: 'U8', shape: [1], data: new Uint8Array(1) } }), /invalid tensor name/);
});

test('overwrite keeps the old file until the new one is complete', async () => {
  const dir = scratchDir();
  const path = join(dir, 'w.safetensors');
  writeFileSync(path, 'old');
  await writeSafetensors(path, new Map([['x', { dtype: 'F32' as const, shape: [1], data: new Float32Array([2]) }]]));
  const f = await openSafetensors(path);
  assert.equal([...(await f.getF32('x'))], [2]);
  await f.close();
  assert.ok(existsSync(path));
});

test.run();
