#!/usr/bin/python3
"""Generate the tiny PyTorch checkpoint fixtures for test/io/torch-pt.test.ts.

Run with Debian's torch (apt-get install python3-torch):
    /usr/bin/python3 tools/make_pt_fixtures.py test/fixtures/pt

Cases: state_dict.pt (torch.save of a dict with fp16/bf16/f64/i64, transposed,
shared-storage and expanded tensors), nested.pt (open_clip training layout),
scripted.pt (torch.jit.script of nested modules), tiny_clip.pt (a tiny CLIP laid
out like OpenAI's, traced to TorchScript with OpenAI's fp16 selection, as
clip.load downloads are). Writes, for each case, the checkpoint (`*.pt`) and the values torch itself sees,
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


# ---- A tiny CLIP laid out like OpenAI's clip/model.py, saved the way clip.load's
# downloads were made: traced to TorchScript, with convert_weights' fp16 selection
# (conv/linear/attention weights and the two projections fp16; LayerNorms and
# embeddings fp32), the attn_mask attribute, and the int buffers clip.build_model drops.

class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d, n_head, attn_mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, n_head)
        self.ln_1 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(collections.OrderedDict(
            [("c_fc", nn.Linear(d, d * 4)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(d * 4, d))]))
        self.ln_2 = nn.LayerNorm(d)
        self.attn_mask = attn_mask

    def forward(self, x):
        m = self.attn_mask.to(dtype=x.dtype) if self.attn_mask is not None else None
        x = x + self.attn(self.ln_1(x), self.ln_1(x), self.ln_1(x), need_weights=False, attn_mask=m)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, attn_mask=None):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, attn_mask) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, res, patch, width, layers, heads, out):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width) * 0.1)
        self.positional_embedding = nn.Parameter(torch.randn((res // patch) ** 2 + 1, width) * 0.1)
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, out) * 0.1)

    def forward(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)
        cls = self.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1])
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding).permute(1, 0, 2)
        x = self.transformer(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class TinyClip(nn.Module):
    def __init__(self, embed=8, res=8, patch=4, vwidth=32, vlayers=2, ctx=5, vocab=20, twidth=32, tlayers=1, heads=2):
        super().__init__()
        self.visual = VisionTransformer(res, patch, vwidth, vlayers, heads, embed)
        mask = torch.full((ctx, ctx), float("-inf")).triu_(1)
        self.transformer = Transformer(twidth, tlayers, heads, mask)
        self.token_embedding = nn.Embedding(vocab, twidth)
        self.positional_embedding = nn.Parameter(torch.randn(ctx, twidth) * 0.01)
        self.ln_final = nn.LayerNorm(twidth)
        self.text_projection = nn.Parameter(torch.randn(twidth, embed) * 0.1)
        self.logit_scale = nn.Parameter(torch.tensor(2.6592))
        for k, v in {"input_resolution": res, "context_length": ctx, "vocab_size": vocab}.items():
            self.register_buffer(k, torch.tensor(v))

    def forward(self, image, text):
        img = self.visual(image)
        x = (self.token_embedding(text) + self.positional_embedding).permute(1, 0, 2)
        x = self.ln_final(self.transformer(x).permute(1, 0, 2))
        txt = x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection
        return self.logit_scale.exp() * img @ txt.t()


def convert_weights(model):
    """OpenAI's clip.model.convert_weights selection, applied to the traced module."""
    for name, p in model.named_parameters():
        leaf = name.split(".")[-1]
        is_linear_or_conv = (".conv1." in f".{name}" or ".c_fc." in name or ".c_proj." in name or ".out_proj." in name)
        if is_linear_or_conv or leaf in ("in_proj_weight", "in_proj_bias", "text_projection", "proj"):
            p.data = p.data.half()


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

    clip = TinyClip().eval()
    traced = torch.jit.trace(clip, (torch.randn(2, 3, 8, 8), torch.randint(0, 19, (2, 5))))
    convert_weights(traced)
    torch.jit.save(traced, os.path.join(out, "tiny_clip.pt"))
    drop = ("input_resolution", "context_length", "vocab_size")
    canonical = {k: v.float() for k, v in traced.state_dict().items() if k not in drop}
    write_safetensors(os.path.join(out, "tiny_clip.expected.safetensors"), canonical)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/pt")
