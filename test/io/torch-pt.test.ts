import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.js';
import { openSafetensors } from '../../src/io/safetensors-node.js';
import { readTorchCheckpoint, gather } from '../../src/io/torch-pt.js';
import { convertPtToSafetensors, openTorchCheckpointFile } from '../../src/io/torch-pt-node.js';
import type { TensorSource } from '../../src/io/dtypes.js';
import { PT, scratchDir } from './helpers.js';

/** Every tensor of `expected` (written by tools/make_pt_fixtures.py) is in `got` with the same dtype, shape and bytes. */
async function assertSameTensors(got: TensorSource, expected: TensorSource): Promise<void> {
  assert.equal([...got.names].sort(), [...expected.names].sort());
  for (const n of expected.names) {
    assert.equal(got.info(n), expected.info(n), n);
    const a = await got.getBytes(n), b = await expected.getBytes(n);
    assert.ok(Buffer.from(a).equals(Buffer.from(b)), `bytes of ${n}`);
  }
}

const expected = (stem: string) => readSafetensors(readFileSync(join(PT, `${stem}.expected.safetensors`)), `${stem}.expected`);

test('torch.save state dict: fp16, bf16, f64, i64, transposed, shared storage with offsets, expand', async () => {
  const ck = await openTorchCheckpointFile(join(PT, 'state_dict.pt'));
  try {
    assert.is(ck.kind, 'state_dict');
    await assertSameTensors(ck, expected('state_dict'));
    assert.equal(ck.names.slice(0, 3), ['scale', 'lin.weight', 'lin.bias'], 'dict order kept (own buffers, then children)');
    assert.equal(ck.info('transposed'), { dtype: 'F32', shape: [6, 4] });
    assert.equal(ck.info('half.transposed'), { dtype: 'F16', shape: [5, 3] });
    assert.equal(ck.info('bn.num_batches_tracked'), { dtype: 'I64', shape: [] });
    assert.equal([...(await ck.getF32('shared.c'))], [6, 8, 10, 12, 14, 16, 18, 20, 22].map((i) => i * 0.5));
    assert.equal([...(await ck.getI32('ids'))], [-3, -2, -1, 0, 1, 2, 3]);
    assert.equal([...(await ck.getF32('expanded'))], [1, 2, 3, 1, 2, 3]);
  } finally {
    await ck.close();
  }
});

test('training checkpoint layout: tensors under "state_dict" (module. prefix kept), other keys skipped', async () => {
  const ck = await readTorchCheckpoint(readFileSync(join(PT, 'nested.pt')), 'nested.pt');
  assert.is(ck.kind, 'state_dict');
  await assertSameTensors(ck, expected('nested'));
  assert.ok(ck.names.every((n) => n.startsWith('module.')));
});

test('TorchScript archive (torch.jit.save): tensors by attribute path, fp16 kept', async () => {
  const ck = await openTorchCheckpointFile(join(PT, 'scripted.pt'));
  try {
    assert.is(ck.kind, 'torchscript');
    await assertSameTensors(ck, expected('scripted'));
    assert.ok(ck.has('resblocks.0.attn.in_proj_weight'));
    assert.ok(ck.has('resblocks.1.mlp.c_fc.weight'));
    assert.equal(ck.info('resblocks.0.attn.in_proj_weight'), { dtype: 'F16', shape: [12, 4] });
    assert.equal(ck.info('resblocks.1.attn.in_proj_weight'), { dtype: 'F32', shape: [12, 4] });
    assert.ok(!ck.has('heads') && !ck.has('training'));
  } finally {
    await ck.close();
  }
});

test('convertPtToSafetensors keeps dtypes by default, or widens floats to F32', async () => {
  const dir = scratchDir();
  for (const stem of ['state_dict', 'scripted']) {
    const out = join(dir, `${stem}.safetensors`);
    const r = await convertPtToSafetensors(join(PT, `${stem}.pt`), out);
    assert.is(r.kind, stem === 'scripted' ? 'torchscript' : 'state_dict');
    const f = await openSafetensors(out);
    try {
      await assertSameTensors(f, expected(stem));
      assert.is(f.metadata.source, `${stem}.pt`);
    } finally {
      await f.close();
    }
  }
  const out = join(dir, 'f32.safetensors');
  const r = await convertPtToSafetensors(join(PT, 'state_dict.pt'), out, { dtype: 'f32' });
  assert.is(r.dtypes.F16, undefined);
  assert.is(r.dtypes.I64, 2);
  const f = await openSafetensors(out);
  const want = expected('state_dict');
  try {
    for (const n of want.names) {
      const dt = want.info(n).dtype;
      assert.is(f.info(n).dtype, dt === 'F16' || dt === 'BF16' || dt === 'F64' ? 'F32' : dt, n);
      if (dt.startsWith('F') || dt === 'BF16') assert.equal(await f.getF32(n), await want.getF32(n), n);
    }
  } finally {
    await f.close();
  }
});

test('gather: transposed, stepped and broadcast views', () => {
  // storage 0..11 as bytes (es = 1) viewed as [3,4] transposed -> [4,3] strides (1,4)
  const span = Uint8Array.from({ length: 12 }, (_, i) => i);
  assert.equal([...gather(span, [4, 3], [1, 4], 1)], [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
  assert.equal([...gather(span, [2, 2], [6, 2], 1)], [0, 2, 6, 8]);
  assert.equal([...gather(span, [2, 3], [0, 1], 1)], [0, 1, 2, 0, 1, 2]);
  assert.equal([...gather(span, [2, 1, 2], [3, 1, 1], 2)], [0, 1, 2, 3, 6, 7, 8, 9]);
  assert.equal([...gather(span, [], [], 4)], [0, 1, 2, 3]);
});

test.run();
