// Hostile, truncated and lying inputs: each must fail with a message naming the
// file (and the tensor, where there is one), never crash or misread.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { encodeSafetensors, readSafetensors } from '../../src/io/safetensors.js';
import { openSafetensors, writeSafetensors } from '../../src/io/safetensors-node.js';
import { readTorchCheckpoint } from '../../src/io/torch-pt.js';
import { convertPtToSafetensors, openTorchCheckpointFile } from '../../src/io/torch-pt-node.js';
import { unpickle } from '../../src/io/pickle.js';
import { GOLDEN, PT, errorOf, makeZip, scratchDir } from './helpers.js';

/** A safetensors file from a raw JSON header string and a data section of `dataBytes` bytes. */
function rawFile(header: string, dataBytes: number, declaredLength?: number): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setUint32(0, declaredLength ?? h.length, true);
  out.set(h, 8);
  return out;
}

const F = 'weights.safetensors';
const read = (b: Uint8Array) => () => readSafetensors(b, F);

test('safetensors: too short, header length past the end or over the limit', async () => {
  assert.match(await errorOf(read(new Uint8Array(5))), `${F}: file is 5 bytes, too short for a safetensors header`);
  assert.match(await errorOf(read(rawFile('{}', 0, 1000))), `${F}: header length 1000 runs past the end of the file (10 bytes`);
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setUint32(4, 1, true); // 2^32
  assert.match(await errorOf(read(huge)), `${F}: header length 4294967296 is over the 104857600-byte limit`);
});

test('safetensors: truncated file names the first tensor that no longer fits', async () => {
  const whole = readFileSync(join(GOLDEN, 'weights.openai.safetensors'));
  const cut = whole.subarray(0, 1_000_000);
  const msg = await errorOf(read(cut));
  assert.match(msg, /^weights\.safetensors: tensor "[^"]+": data_offsets \[\d+, \d+\] run past the end of the data section \(\d+ bytes; truncated file\?\)$/);
  // Through the file layer too, and the handle is released.
  const dir = scratchDir();
  const path = join(dir, 'cut.safetensors');
  writeFileSync(path, cut);
  assert.match(await errorOf(() => openSafetensors(path)), `${path}: tensor "`);
  const headerOnly = whole.subarray(0, 4);
  writeFileSync(path, headerOnly);
  assert.match(await errorOf(() => openSafetensors(path)), `${path}: file is 4 bytes, too short`);
});

test('safetensors: header that lies about sizes or offsets', async () => {
  const lieSize = rawFile('{"visual.proj":{"dtype":"F32","shape":[32,32],"data_offsets":[0,100]}}', 100);
  assert.is(await errorOf(read(lieSize)), `${F}: tensor "visual.proj": data_offsets [0, 100] span 100 bytes but shape [32,32] x F32 needs 4096`);
  const pastEnd = rawFile('{"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}', 16);
  assert.is(await errorOf(read(pastEnd)), `${F}: tensor "a": data_offsets [8, 24] run past the end of the data section (16 bytes; truncated file?)`);
  const reversed = rawFile('{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}', 16);
  assert.match(await errorOf(read(reversed)), `${F}: tensor "a": data_offsets must be [begin, end] with 0 <= begin <= end, got [8,4]`);
  const negShape = rawFile('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}', 0);
  assert.match(await errorOf(read(negShape)), `${F}: tensor "a": shape must be an array of non-negative integers, got [-1]`);
  const frac = rawFile('{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,6]}}', 6);
  assert.match(await errorOf(read(frac)), `${F}: tensor "a": shape must be an array`);
  const extra = rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"foo":1}}', 4);
  assert.is(await errorOf(read(extra)), `${F}: tensor "a": unexpected field "foo"`);
  const notObj = rawFile('{"a":[1,2]}', 0);
  assert.is(await errorOf(read(notObj)), `${F}: tensor "a": entry is not an object`);
});

test('safetensors: overlapping tensors', async () => {
  const b = rawFile('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', 16);
  assert.is(await errorOf(read(b)), `${F}: tensors "a" data_offsets [0, 16] and "b" [8, 16] overlap`);
  // Zero-size tensors inside another's range take no bytes and are fine; gaps are tolerated.
  const ok = rawFile('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"c":{"dtype":"U8","shape":[2],"data_offsets":[20,22]}}', 24);
  assert.equal(readSafetensors(ok).names, ['a', 'z', 'c']);
});

test('safetensors: bad JSON, non-object JSON, bad UTF-8, bad metadata, unknown dtype', async () => {
  assert.match(await errorOf(read(rawFile('{"a": {', 0))), `${F}: header is not valid UTF-8 JSON (`);
  assert.is(await errorOf(read(rawFile('[1, 2, 3]', 0))), `${F}: header is not a JSON object`);
  assert.is(await errorOf(read(rawFile('null', 0))), `${F}: header is not a JSON object`);
  const badUtf8 = rawFile('{"a":1}', 0);
  badUtf8[10] = 0xff;
  assert.match(await errorOf(read(badUtf8)), `${F}: header is not valid UTF-8 JSON`);
  assert.is(await errorOf(read(rawFile('{"__metadata__":{"n":3}}', 0))), `${F}: "__metadata__" value for "n" is not a string`);
  assert.is(await errorOf(read(rawFile('{"__metadata__":[]}', 0))), `${F}: "__metadata__" must be an object of strings`);
  const f8 = rawFile('{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', 1);
  assert.match(await errorOf(read(f8)), `${F}: tensor "w": unknown dtype "F8_E4M3" (supported: `);
});

test('atomic writer: a failing write leaves nothing under the final name, and keeps an old file intact', async () => {
  const dir = scratchDir();
  const path = join(dir, 'model.safetensors');
  const tensors = {
    good: { dtype: 'F32' as const, shape: [4], data: new Float32Array(4) },
    short: { dtype: 'F32' as const, shape: [1000], data: new Float32Array(999) },
  };
  assert.is(await errorOf(() => writeSafetensors(path, tensors)), `${path}: tensor "short": data has 3996 bytes but shape [1000] x F32 needs 4000`);
  assert.equal(readdirSync(dir), [], 'no final file and no temporary left behind');
  // A lazy tensor that throws halfway through the write.
  const failing = { ...tensors, short: { dtype: 'F32' as const, shape: [2], data: async () => { throw new Error('disk on fire'); } } };
  assert.is(await errorOf(() => writeSafetensors(path, failing)), 'disk on fire');
  assert.equal(readdirSync(dir), []);
  // An existing file survives a failed overwrite.
  const before = encodeSafetensors({ x: { dtype: 'I32', shape: [1], data: new Int32Array([7]) } });
  writeFileSync(path, before);
  await errorOf(() => writeSafetensors(path, tensors));
  assert.ok(readFileSync(path).equals(Buffer.from(before)));
  assert.equal(readdirSync(dir), ['model.safetensors']);
});

// ---------------------------------------------------------------- .pt

const enc = new TextEncoder();
const bytes = (...parts: (number[] | string | Uint8Array)[]) => {
  const chunks = parts.map((p) => (typeof p === 'string' ? enc.encode(p) : Uint8Array.from(p)));
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
};
/** SHORT_BINUNICODE */
const s = (x: string) => bytes([0x8c, enc.encode(x).length], x);
/** GLOBAL module\nname\n */
const g = (m: string, n: string) => bytes('c', `${m}\n${n}\n`);
/** A data.pkl for {"w": tensor(storage "0" of `type`, offset, size, stride)}. */
function tensorPickle(size: number[], stride: number[], offset = 0, type = 'FloatStorage'): Uint8Array {
  const tup = (xs: number[]) => bytes([0x28], ...xs.map((x) => [0x4b, x]), [0x74]);
  return bytes([0x80, 0x02, 0x7d], s('w'), g('torch._utils', '_rebuild_tensor_v2'), [0x28],
    [0x28], s('storage'), g('torch', type), s('0'), s('cpu'), [0x4b, 2, 0x74, 0x51],
    [0x4b, offset], tup(size), tup(stride), [0x89], g('collections', 'OrderedDict'), [0x29, 0x52],
    [0x74, 0x52, 0x73, 0x2e]);
}
const pt = (pkl: Uint8Array, storage = new Uint8Array(8)) => makeZip({ 'archive/data.pkl': pkl, 'archive/data/0': storage, 'archive/version': '3\n' });
const P = 'model.pt';

test('.pt: the hand-built tensor pickle itself is valid', async () => {
  const ck = await readTorchCheckpoint(pt(tensorPickle([2], [1]), new Uint8Array(new Float32Array([1.5, -2]).buffer)), P);
  assert.equal([...(await ck.getF32('w'))], [1.5, -2]);
});

test('.pt: not a zip, legacy format, truncated, no data.pkl', async () => {
  assert.match(await errorOf(() => readTorchCheckpoint(enc.encode('hello world, not a checkpoint'), P)), `${P}: not a PyTorch checkpoint (not a zip archive; starts with bytes 68 65 6c 6c)`);
  assert.match(await errorOf(() => readTorchCheckpoint(bytes([0x80, 0x02, 0x8a, 0x0a]), P)), `${P}: legacy (pre-1.6, non-zip) torch.save format is not supported`);
  const whole = readFileSync(join(PT, 'state_dict.pt'));
  assert.match(await errorOf(() => readTorchCheckpoint(whole.subarray(0, whole.length - 300), P)), `${P}: not a zip archive (no end-of-central-directory record)`);
  assert.match(await errorOf(() => readTorchCheckpoint(makeZip({ 'x/readme.txt': 'hi' }), P)), `${P}: zip has no data.pkl; not a PyTorch checkpoint`);
  // A non-zip file through the Node converter: named by its path, and nothing written.
  const dir = scratchDir();
  const inPath = join(dir, 'bad.pt');
  writeFileSync(inPath, 'garbage');
  assert.match(await errorOf(() => convertPtToSafetensors(inPath, join(dir, 'out.safetensors'))), `${inPath}: not a PyTorch checkpoint`);
  assert.ok(!existsSync(join(dir, 'out.safetensors')));
  assert.match(await errorOf(() => openTorchCheckpointFile(join(dir, 'missing.pt'))), 'ENOENT');
});

test('.pt: disallowed globals are named and never executed', async () => {
  // os.system("echo pwned") via GLOBAL + REDUCE
  const osSystem = bytes([0x80, 0x02], g('os', 'system'), s('echo pwned'), [0x85, 0x52, 0x2e]);
  assert.is(await errorOf(() => readTorchCheckpoint(pt(osSystem), P)),
    `${P}: pickle global "os.system" is not allowed (a checkpoint should only reference torch tensor and storage rebuild functions); nothing was executed`);
  // builtins.eval via STACK_GLOBAL
  const evalPkl = bytes([0x80, 0x04], s('builtins'), s('eval'), [0x93], s('1+1'), [0x85, 0x52, 0x2e]);
  assert.match(await errorOf(() => readTorchCheckpoint(pt(evalPkl), P)), `${P}: pickle global "builtins.eval" is not allowed`);
  // A whole pickled module (torch.save(model)).
  const mod = bytes([0x80, 0x02], g('torch.nn.modules.linear', 'Linear'), [0x29, 0x81, 0x2e]);
  assert.match(await errorOf(() => readTorchCheckpoint(pt(mod), P)), 'torch.save(model): save model.state_dict() instead');
  // Calling something that is not a whitelisted callable.
  const notCallable = bytes([0x80, 0x02], s('x'), [0x29, 0x52, 0x2e]);
  assert.match(await errorOf(() => readTorchCheckpoint(pt(notCallable), P)), `${P}: pickle: REDUCE of something that is not a known callable`);
});

test('.pt: tensor views past their storage, missing storages, malformed pickles', async () => {
  // [4] F32 needs 16 bytes; the storage has 8.
  assert.is(await errorOf(() => readTorchCheckpoint(pt(tensorPickle([4], [1])), P)),
    `${P}: tensor "w": shape [4] stride [1] offset 0 reaches element 3 of storage "0" which has 2`);
  assert.match(await errorOf(() => readTorchCheckpoint(pt(tensorPickle([2], [1], 1)), P)), `${P}: tensor "w": shape [2] stride [1] offset 1 reaches element 2`);
  assert.match(await errorOf(() => readTorchCheckpoint(pt(tensorPickle([2], [1]), new Uint8Array(7)), P)), `${P}: storage "0": 7 bytes is not a whole number of F32 elements`);
  assert.match(await errorOf(() => readTorchCheckpoint(makeZip({ 'archive/data.pkl': tensorPickle([2], [1]) }), P)), `${P}: storage "0" (FloatStorage) has no zip entry archive/data/0`);
  assert.match(await errorOf(() => readTorchCheckpoint(pt(tensorPickle([2], [1], 0, 'ComplexFloatStorage')), P)), `${P}: pickle global "torch.ComplexFloatStorage" is not allowed`);
  const good = tensorPickle([2], [1]);
  assert.match(await errorOf(() => readTorchCheckpoint(pt(good.subarray(0, good.length - 5)), P)), `${P}: pickle: truncated`);
  assert.match(await errorOf(() => readTorchCheckpoint(pt(bytes([0x80, 0x02, 0x69, 0x2e])), P)), `${P}: pickle: opcode INST is not supported`);
  assert.match(await errorOf(() => readTorchCheckpoint(pt(bytes([0x80, 0x02, 0xff])), P)), `${P}: pickle: unknown opcode (opcode 0xff at byte 2)`);
  assert.match(await errorOf(() => readTorchCheckpoint(pt(bytes([0x80, 0x02, 0x7d, 0x2e])), P)), `${P}: the checkpoint holds no tensors`);
  assert.match(await errorOf(() => readTorchCheckpoint(pt(bytes([0x80, 0x02, 0x68, 0x05, 0x2e])), P)), `${P}: pickle: memo key 5 is not defined`);
});

test('pickle: plain values decode without any globals', () => {
  const v = unpickle(bytes([0x80, 0x02, 0x28], s('a'), [0x4a, 0xff, 0xff, 0xff, 0xff], [0x8a, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x01],
    [0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0], [0x88, 0x4e], [0x43, 0x02, 0x01, 0x02], [0x5d, 0x4b, 0x07, 0x61], [0x6c, 0x2e]), {
    name: 'x', resolveGlobal: () => { throw new Error('no'); },
  });
  assert.equal(v, ['a', -1, 1n << 64n, 1.5, true, null, new Uint8Array([1, 2]), [7]]);
});

test.run();
