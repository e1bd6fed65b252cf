#!/usr/bin/python3
"""Generates test/preprocess/fixtures/: small synthetic input images (PNG/JPEG) and the
reference results PIL (and torchvision, when installed) give for them, in expected.json.

Only the generator needs Python; the tests read the committed files.

    apt-get install -y python3-pil python3-numpy   # python3-torchvision optional (cross-check)
    /usr/bin/python3 tools/gen-preprocess-fixtures.py

The torchvision pieces the tests need are reimplemented here in plain Python from
torchvision/transforms/functional.py (0.14..0.20) so the generator runs without torch:
  Resize(int):   short, long = (w, h) if w <= h else (h, w)
                 new_short, new_long = size, int(size * long / short)
  center_crop:   crop_top = int(round((H - h) / 2.0)); crop_left = int(round((W - w) / 2.0))
  resized_crop:  img.crop((j, i, j + w, i + h)).resize((size, size), interpolation)
  get_params:    w = int(round(math.sqrt(target_area * aspect_ratio)))
                 h = int(round(math.sqrt(target_area / aspect_ratio)))
                 fallback: in_ratio < min(ratio): w = W, h = int(round(w / min(ratio)))
                           in_ratio > max(ratio): h = H, w = int(round(h * max(ratio)))
                           else whole image; i = (H - h) // 2, j = (W - w) // 2
  ToTensor:      x.float().div(255);  Normalize: x.sub_(mean).div_(std), float32 throughout
If torchvision imports, each of these is also checked against the real thing.
"""
import hashlib
import io
import json
import math
import os
import struct
import sys
import zlib

import numpy as np
import PIL
from PIL import Image, ImageCms, features

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'preprocess', 'fixtures')
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)

try:
    import torch
    import torchvision
    import torchvision.transforms as T
    import torchvision.transforms.functional as TF
except Exception:  # noqa: BLE001 - torchvision is an optional cross-check
    torchvision = None

rng = np.random.default_rng(20240607)


def sha(b):
    return hashlib.sha256(bytes(b)).hexdigest()


def rgb_bytes(im):
    return np.asarray(im.convert('RGB'), dtype=np.uint8).tobytes()


def path(name):
    return os.path.join(OUT, name)


# ---------------------------------------------------------------- synthetic images
def scene(w, h, noise=(0.2, 0.2), variant=0):
    """Gradients, saturated hard-edged shapes, 1-px lines, a checkerboard and a noise patch:
    everything that makes a resampler's rounding, windows and clipping visible."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.int64)
    img[..., 0] = x * 255 // max(w - 1, 1)
    img[..., 1] = y * 255 // max(h - 1, 1)
    img[..., 2] = ((x + 2 * y) * 3 + variant * 40) % 256
    # hard-edged saturated rectangles (bicubic overshoot → clipping at 0 and 255)
    img[h // 5: h // 5 + h // 4, w // 6: w // 6 + w // 3] = (255, 0, 0)
    img[h // 2: h // 2 + h // 6, w // 2: w // 2 + w // 5] = (0, 0, 0)
    img[h // 2 + h // 12: h // 2 + h // 6, w // 2 + w // 10: w // 2 + w // 3] = (255, 255, 255)
    img[:, (w * 3) // 4] = (0, 255, 0)  # 1-px vertical line
    img[(h * 4) // 5, :] = (0, 0, 255)  # 1-px horizontal line
    # checkerboard of 2-px cells bottom-left
    cb = ((x // 2 + y // 2) % 2 == 0)
    region = (x < w // 4) & (y > (h * 3) // 4)
    img[region & cb] = (250, 250, 5)
    img[region & ~cb] = (5, 5, 250)
    # noise patch top-right
    nw, nh = max(1, int(w * noise[0])), max(1, int(h * noise[1]))
    img[0:nh, w - nw: w] = rng.integers(0, 256, (nh, nw, 3))
    return Image.fromarray(img.astype(np.uint8), 'RGB')


def noise_image(w, h):
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), 'RGB')


def png_chunk(t, d):
    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xFFFFFFFF)


def write_png(name, w, h, bit_depth, color_type, rows, extra=b'', interlace=False):
    """Minimal PNG writer for what PIL cannot save: 16-bit RGB(A)/LA, 4-bit grey, tRNS, Adam7.
    `rows(x0, y0, dx, dy)` returns the raw (unfiltered) scanlines of a (sub)image."""
    ihdr = struct.pack('>IIBBBBB', w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    if interlace:
        raw = b''
        for (x0, y0, dx, dy) in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
            if x0 < w and y0 < h:
                raw += b''.join(b'\x00' + r for r in rows(x0, y0, dx, dy))
    else:
        raw = b''.join(b'\x00' + r for r in rows(0, 0, 1, 1))
    data = b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', ihdr) + extra + png_chunk(b'IDAT', zlib.compress(raw, 9)) + png_chunk(b'IEND', b'')
    with open(path(name), 'wb') as f:
        f.write(data)


def array_rows(arr):
    def rows(x0, y0, dx, dy):
        return [arr[y, x0::dx].tobytes() for y in range(y0, arr.shape[0], dy)]
    return rows


# ---------------------------------------------------------------- torchvision rules (plain Python)
def tv_resize_size(w, h, size):
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def tv_center_crop(im, size):
    w, h = im.size
    assert w >= size and h >= size
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return im.crop((left, top, left + size, top + size)), top, left


def test_transform_u8(im, size):
    rw, rh = tv_resize_size(*im.size, size)
    r = im.resize((rw, rh), Image.BICUBIC)
    c, top, left = tv_center_crop(r, size)
    return c, (rw, rh), (top, left)


def to_normalized(im):
    a = np.asarray(im, dtype=np.uint8).astype(np.float32) / np.float32(255)
    a = (a - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return np.ascontiguousarray(a.transpose(2, 0, 1)).astype('<f4')


def tv_crop_size(area, ratio):
    return int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))


def tv_fallback(width, height, ratio):
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def samples(arr, n=48):
    flat = arr.reshape(-1)
    idx = sorted(set(int(i) for i in rng.integers(0, flat.size, n)) | {0, flat.size - 1})
    return [[i, float(flat[i])] for i in idx]


# ---------------------------------------------------------------- main
def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(path(f))
    exp = {
        'generator': {'pillow': PIL.__version__, 'numpy': np.__version__,
                      'torchvision': torchvision.__version__ if torchvision else None,
                      'libjpeg_turbo': features.version('jpg')},
    }

    # Source images for resize / transform tests (PNG, lossless).
    sources = {
        'edges_37x23.png': scene(37, 23, noise=(0.3, 0.3)),
        'noise_20x30.png': noise_image(20, 30),
        'mix_300x200.png': scene(300, 200, noise=(0.1, 0.12)),
        'mix_200x300.png': scene(200, 300, noise=(0.12, 0.1), variant=1),
        'mix_640x480.png': scene(640, 480, noise=(0.06, 0.06), variant=2),
        # Resize(224) gives 225 and 227 on the long side: centre-crop offsets 0.5 → 0, 1.5 → 2.
        'tie_302x300.png': scene(302, 300, noise=(0.05, 0.05), variant=3),
        'tie_300x305.png': scene(300, 305, noise=(0.05, 0.05), variant=4),
        'thin_7x90.png': scene(7, 90, noise=(1.0, 0.1), variant=5),
    }
    for name, im in sources.items():
        im.save(path(name), optimize=True)
    src = {name: Image.open(path(name)).convert('RGB') for name in sources}

    # 1) Raw Pillow resizes, both filters, up/down, one axis only, float boxes.
    resize = []
    for name, im in src.items():
        w, h = im.size
        sizes = {tv_resize_size(w, h, 224), (224, 224), (max(1, w // 2), max(1, h // 2)),
                 (max(1, int(w * 0.37)), max(1, int(h * 0.71))), (w * 3 // 2 + 1, h), (w, h * 2 - 3), (w, h), (1, 1)}
        for (ow, oh) in sorted(sizes):
            for filt in ('bicubic', 'bilinear'):
                if filt == 'bilinear' and (ow, oh) not in {(224, 224), (max(1, w // 2), max(1, h // 2)), (w * 3 // 2 + 1, h)}:
                    continue
                r = im.resize((ow, oh), Image.BICUBIC if filt == 'bicubic' else Image.BILINEAR)
                resize.append({'src': name, 'size': [ow, oh], 'filter': filt, 'box': None, 'sha256': sha(r.tobytes())})
    for name, box, size in [('edges_37x23.png', (2.5, 3.25, 30.75, 20.1), (50, 40)),
                            ('mix_300x200.png', (10.3, 0, 290.7, 200), (100, 200)),
                            ('mix_300x200.png', (0, 0, 300, 200), (300, 200)),
                            ('mix_640x480.png', (33.3, 44.4, 555.5, 466.6), (224, 224))]:
        for filt in ('bicubic', 'bilinear'):
            r = src[name].resize(size, Image.BICUBIC if filt == 'bicubic' else Image.BILINEAR, box=box)
            resize.append({'src': name, 'size': list(size), 'filter': filt, 'box': list(box), 'sha256': sha(r.tobytes())})
    exp['resize'] = resize

    # 2) The full CLIP test transform.
    transform = []
    for name, im in src.items():
        for size in (224,) + ((64,) if name in ('mix_300x200.png', 'noise_20x30.png') else ()):
            u8, rs, off = test_transform_u8(im, size)
            f32 = to_normalized(u8)
            if torchvision:
                ref = T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size)])(im)
                assert ref.tobytes() == u8.tobytes(), name
                t = T.Normalize(MEAN, STD)(T.ToTensor()(ref)).numpy()
                assert t.astype('<f4').tobytes() == f32.tobytes(), name
            transform.append({'src': name, 'size': size, 'resized': list(rs), 'offset': list(off),
                              'u8sha256': sha(u8.tobytes()), 'f32sha256': sha(f32.tobytes()), 'samples': samples(f32)})
    exp['testTransform'] = transform

    # 3) Normalisation table (uint8 value → float32, per channel).
    table = to_normalized(Image.fromarray(np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (1, 1, 3)), 'RGB'))
    exp['normalize'] = {'mean': MEAN, 'std': STD, 'table': [[float(v) for v in table[c, 0]] for c in range(3)]}

    # 4) Crop + resize (+ flip) with fixed RandomResizedCrop parameters.
    crops = []
    for name, top, left, ch, cw, flip, size, filt in [
        ('mix_300x200.png', 10, 20, 150, 200, False, 224, 'bicubic'),
        ('mix_300x200.png', 0, 0, 200, 300, True, 224, 'bicubic'),
        ('mix_300x200.png', 57, 3, 31, 77, True, 224, 'bicubic'),
        ('mix_300x200.png', 23, 41, 120, 97, False, 96, 'bicubic'),
        ('mix_200x300.png', 100, 30, 180, 150, True, 224, 'bicubic'),
        ('noise_20x30.png', 5, 5, 7, 5, False, 224, 'bicubic'),
        ('noise_20x30.png', 2, 1, 25, 19, True, 32, 'bilinear'),
        ('mix_640x480.png', 100, 50, 333, 444, True, 224, 'bicubic'),
        ('mix_640x480.png', 3, 600, 40, 40, False, 224, 'bilinear'),
    ]:
        im = src[name]
        r = im.crop((left, top, left + cw, top + ch)).resize((size, size), Image.BICUBIC if filt == 'bicubic' else Image.BILINEAR)
        if flip:
            r = r.transpose(Image.FLIP_LEFT_RIGHT)
        if torchvision:
            interp = T.InterpolationMode.BICUBIC if filt == 'bicubic' else T.InterpolationMode.BILINEAR
            ref = TF.resized_crop(im, top, left, ch, cw, [size, size], interp)
            if flip:
                ref = TF.hflip(ref)
            assert ref.tobytes() == r.tobytes(), (name, top, left)
        crops.append({'src': name, 'top': top, 'left': left, 'height': ch, 'width': cw, 'flip': flip, 'size': size,
                      'filter': filt, 'sha256': sha(r.tobytes())})
    exp['cropResize'] = crops

    # 5) get_params integer rules: crop sizes from (area, ratio) and the centre fallback.
    lr = (math.log(3 / 4), math.log(4 / 3))
    pairs = [(2.25, 1.0), (6.25, 1.0), (12.25, 1.0), (0.25, 1.0), (30.25, 1.0), (56.25, 1.0)]
    for _ in range(300):
        W, H = int(rng.integers(1, 800)), int(rng.integers(1, 800))
        pairs.append((W * H * float(rng.uniform(0.08, 1.0)), math.exp(float(rng.uniform(*lr)))))
    exp['cropSize'] = [[a, r, *tv_crop_size(a, r)] for a, r in pairs]
    fb = []
    for W, H in [(1000, 10), (10, 1000), (100, 100), (400, 300), (401, 300), (300, 401), (3, 4), (5, 3), (7, 5), (641, 480), (480, 641), (1, 1)]:
        i, j, h, w = tv_fallback(W, H, (3 / 4, 4 / 3))
        if torchvision:
            # scale ≥ 2 makes all 10 attempts fail, so get_params returns its fallback.
            assert T.RandomResizedCrop.get_params(Image.new('RGB', (W, H)), (2.0, 3.0), (3 / 4, 4 / 3)) == (i, j, h, w)
        fb.append([W, H, i, j, h, w])
    exp['fallback'] = fb

    # 6) Decoding: every PNG colour type / depth we can make, and JPEG variants.
    H, W = 23, 37
    a = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    a[0, :, 3] = 0
    a[1, :, 3] = 255
    Image.fromarray(a, 'RGBA').save(path('dec_rgba.png'))
    Image.fromarray(a[..., :2].copy(), 'LA').save(path('dec_la.png'))
    Image.fromarray(a[..., 0].copy(), 'L').save(path('dec_l.png'))
    pal = Image.fromarray(a[..., :3].copy(), 'RGB').quantize(50)
    pal.save(path('dec_pal.png'))
    pal.save(path('dec_paltr.png'), transparency=3)
    Image.fromarray(a[..., :3].copy(), 'RGB').quantize(12).save(path('dec_pal4.png'), bits=4)
    Image.fromarray(a[..., 0] > 128).save(path('dec_bit1.png'))
    g16 = rng.integers(0, 65536, (H, W)).astype(np.uint16)
    g16[0, :6] = [0, 100, 255, 256, 1000, 65535]
    g16[1, :] = rng.integers(0, 300, W)  # many values in PIL's unclamped range
    Image.fromarray(g16).save(path('dec_g16.png'))
    write_png('dec_la16.png', W, H, 16, 4, array_rows(rng.integers(0, 65536, (H, W, 2)).astype('>u2')))
    write_png('dec_rgb16.png', W, H, 16, 2, array_rows(rng.integers(0, 65536, (H, W, 3)).astype('>u2')))
    write_png('dec_rgba16.png', W, H, 16, 6, array_rows(rng.integers(0, 65536, (H, W, 4)).astype('>u2')))
    g4 = rng.integers(0, 16, (H, W + 1)).astype(np.uint8)  # W odd: pad nibble ignored
    write_png('dec_g4.png', W, H, 4, 0, lambda x0, y0, dx, dy: [bytes((g4[y, 2 * k] << 4) | g4[y, 2 * k + 1] for k in range((W + 1) // 2)) for y in range(H)])
    write_png('dec_rgbtrns.png', W, H, 8, 2, array_rows(a[..., :3].copy()), extra=png_chunk(b'tRNS', struct.pack('>HHH', *map(int, a[2, 2, :3]))))
    write_png('dec_interlaced.png', W, H, 8, 6, array_rows(a), interlace=True)
    xyz = ImageCms.ImageCmsProfile(ImageCms.createProfile('XYZ')).tobytes()
    Image.fromarray(a[..., :3].copy(), 'RGB').save(path('dec_icc.png'), icc_profile=xyz)

    jpeg_src = {
        'jpg_300x200_q90_420.jpg': (src['mix_300x200.png'], dict(quality=90)),
        'jpg_300x200_q75_444.jpg': (src['mix_300x200.png'], dict(quality=75, subsampling=0)),
        'jpg_200x300_q85_422.jpg': (src['mix_200x300.png'], dict(quality=85, subsampling=1)),
        'jpg_640x480_prog.jpg': (src['mix_640x480.png'], dict(quality=80, progressive=True)),
        'jpg_300x200_grey.jpg': (src['mix_300x200.png'].convert('L'), dict(quality=90)),
        'jpg_37x23_odd.jpg': (src['edges_37x23.png'], dict(quality=92)),
        'jpg_20x30_upscale.jpg': (src['noise_20x30.png'], dict(quality=95)),
        'jpg_64x48_cmyk.jpg': (scene(64, 48, variant=6).convert('CMYK'), dict(quality=90)),
        'jpg_64x48_icc.jpg': (scene(64, 48, variant=7), dict(quality=90, icc_profile=xyz)),
    }
    for name, (im, kw) in jpeg_src.items():
        im.save(path(name), **kw)

    decode = []
    for name in sorted(os.listdir(OUT)):
        if name.startswith('dec_') or name.startswith('jpg_') or name in sources:
            im = Image.open(path(name))
            decode.append({'file': name, 'mode': im.mode, 'width': im.size[0], 'height': im.size[1], 'sha256': sha(rgb_bytes(im))})
    exp['decode'] = decode

    # 7) JPEG through the whole test transform: PIL's uint8 result kept as PNG for measuring.
    jt = []
    for name in jpeg_src:
        im = Image.open(path(name)).convert('RGB')
        u8, rs, off = test_transform_u8(im, 224)
        ref_png = name.replace('.jpg', '.pil224.png')
        if name in ('jpg_300x200_q90_420.jpg', 'jpg_640x480_prog.jpg', 'jpg_200x300_q85_422.jpg'):
            u8.save(path(ref_png), optimize=True)
        else:
            ref_png = None
        jt.append({'src': name, 'ref': ref_png, 'resized': list(rs), 'offset': list(off), 'u8sha256': sha(u8.tobytes()),
                   'f32sha256': sha(to_normalized(u8).tobytes())})
    exp['jpegTransform'] = jt

    # 8) Corrupt / unsupported files: PIL must refuse each (checked here), and so must we.
    good_jpg = open(path('jpg_300x200_q90_420.jpg'), 'rb').read()
    good_png = open(path('mix_300x200.png'), 'rb').read()
    bad = {
        'bad_truncated.jpg': good_jpg[: len(good_jpg) * 6 // 10],
        'bad_truncated.png': good_png[: len(good_png) // 2],
        'bad_crc.png': good_png[:40] + bytes([good_png[40] ^ 0xFF]) + good_png[41:],
        'bad_garbage.png': good_png[:8] + bytes(rng.integers(0, 256, 200, dtype=np.uint8)),
        'bad_garbage.jpg': good_jpg[:2] + b'\xff' + bytes(rng.integers(0, 256, 300, dtype=np.uint8)),
        'bad_text.jpg': b'this is not an image\n',
        'bad_empty.png': b'',
    }
    gif = io.BytesIO()
    Image.new('RGB', (4, 4), (1, 2, 3)).save(gif, format='GIF')
    bad['bad_format.gif'] = gif.getvalue()
    for name, data in bad.items():
        with open(path(name), 'wb') as f:
            f.write(data)
        if not name.endswith('.gif'):
            try:
                Image.open(path(name)).convert('RGB')
                raise SystemExit(f'PIL unexpectedly decoded {name}')
            except SystemExit:
                raise
            except Exception:  # noqa: BLE001 - any PIL failure is the expected outcome
                pass
    exp['corrupt'] = sorted(bad)

    with open(path('expected.json'), 'w') as f:
        json.dump(exp, f, separators=(',', ':'))
    total = sum(os.path.getsize(path(n)) for n in os.listdir(OUT))
    print(f'wrote {len(os.listdir(OUT))} files, {total} bytes, torchvision cross-check: {bool(torchvision)}', file=sys.stderr)


if __name__ == '__main__':
    main()
