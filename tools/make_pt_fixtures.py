#!/usr/bin/python3
"""Generate the tiny PyTorch checkpoint fixtures for test/io/torch-pt.test.ts.

Run with Debian's torch (apt-get install python3-torch):
    /usr/bin/python3 tools/make_pt_fixtures.py test/fixtures/pt

Writes, for each case, the checkpoint (`*.pt`) and the values torch itself sees,
as `*.expected.safetensors` (each tensor made contiguous, same dtype, raw
little-endian bytes; written by the tiny writer below so that no safetensors
package is needed). Tests compare the converter's output to these bit for bit.
Not run by the tests: the outputs are committed.
"""
import collections
import json
import os
import struct
import sys

import torch
import torch.nn as nn

DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
    torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
    torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}


def raw_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)  # numpy has no bfloat16; same bits
    return t.numpy().tobytes()


def write_safetensors(path, tensors):
    """Minimal safetensors writer: 8-byte-element tensors first so offsets stay aligned."""
    items = sorted(tensors.items(), key=lambda kv: -kv[1].element_size())
    header, blobs, off = {}, [], 0
    for name, t in items:
        b = raw_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.block = nn.Sequential(nn.Linear(3, 5), nn.LayerNorm(5))
        self.bn = nn.BatchNorm1d(3)  # num_batches_tracked: an int64 scalar buffer
        self.register_buffer("scale", torch.tensor([1.5, -2.0]))


def state_dict_case():
    m = Tiny()
    sd = m.state_dict()  # an OrderedDict carrying a _metadata attribute
    sd["half.weight"] = torch.randn(3, 4).half()
    sd["half.transposed"] = torch.randn(3, 5).half().t()  # fp16, non-contiguous
    sd["transposed"] = torch.randn(4, 6).t()  # [6, 4] with strides (1, 6)
    shared = torch.arange(30, dtype=torch.float32) * 0.5
    sd["shared.a"] = shared[2:8]  # offset 2 into a storage shared by four tensors
    sd["shared.b"] = shared[10:22].view(3, 4)
    sd["shared.c"] = shared.view(5, 6)[1:4, ::2]  # offset and a step: gathered
    sd["shared.all"] = shared
    sd["double"] = torch.randn(2, 3, dtype=torch.float64)
    sd["bf16"] = torch.randn(5).bfloat16()
    sd["ids"] = torch.arange(7) - 3  # int64 with negatives
    sd["int32"] = torch.tensor([1, -2, 3], dtype=torch.int32)
    sd["scalar"] = torch.tensor(3.25)
    sd["expanded"] = torch.tensor([1.0, 2.0, 3.0]).expand(2, 3)  # stride 0
    return sd


class Attn(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.in_proj_weight = nn.Parameter(torch.randn(3 * w, w))
        self.in_proj_bias = nn.Parameter(torch.randn(3 * w))
        self.out_proj = nn.Linear(w, w)

    def forward(self, x):
        q = x @ self.in_proj_weight[: x.shape[-1]].t() + self.in_proj_bias[: x.shape[-1]]
        return self.out_proj(q)


class Block(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.ln_1 = nn.LayerNorm(w)
        self.attn = Attn(w)
        self.mlp = nn.Sequential(collections.OrderedDict(
            [("c_fc", nn.Linear(w, 2 * w)), ("gelu", nn.GELU()), ("c_proj", nn.Linear(2 * w, w))]))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(x)


class Scripted(nn.Module):
    def __init__(self, w=4):
        super().__init__()
        self.heads = 2  # a plain int attribute: skipped
        self.resblocks = nn.Sequential(Block(w), Block(w))
        self.proj = nn.Parameter(torch.randn(w, 3))
        self.register_buffer("attn_mask", torch.triu(torch.full((3, 3), float("-inf")), 1))

    def forward(self, x):
        return self.resblocks(x) @ self.proj


def main(out):
    torch.manual_seed(0)
    os.makedirs(out, exist_ok=True)

    sd = state_dict_case()
    torch.save(sd, os.path.join(out, "state_dict.pt"))
    write_safetensors(os.path.join(out, "state_dict.expected.safetensors"), sd)

    # The open_clip training checkpoint layout: tensors under "state_dict" with a "module." prefix.
    nested = collections.OrderedDict((f"module.{k}", v) for k, v in Tiny().state_dict().items())
    torch.save({"epoch": 3, "name": "tiny", "state_dict": nested}, os.path.join(out, "nested.pt"))
    write_safetensors(os.path.join(out, "nested.expected.safetensors"), nested)

    # What clip.load downloads: a TorchScript archive, fp16 like OpenAI's (one block kept f32).
    m = Scripted()
    m.resblocks[0].half()
    m.proj.data = m.proj.data.half()
    sm = torch.jit.script(m)
    torch.jit.save(sm, os.path.join(out, "scripted.pt"))
    write_safetensors(os.path.join(out, "scripted.expected.safetensors"), sm.state_dict())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/pt")
