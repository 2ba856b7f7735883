#!/usr/bin/python3
"""Generate tests/data/image_goldens.txt: what torchvision's evaluation transform makes of synthetic images.

Run with Debian's interpreter, which has torch, torchvision and PIL:

    /usr/bin/python3 tools/make_image_goldens.py [output path]

Each case is a synthetic image defined by a few integers (the C test regenerates the same pixels with the
same integer formula, see pattern_image below and make_pattern_image in tests/image/test_preprocess.c) and a
transform. The file stores, per case, the parameters, a hash of the whole 8-bit image after Resize +
CenterCrop (planar order; the C test recovers those bytes from its normalised output), the mean of every
output channel, and every `step`-th value of the normalised output tensor. That keeps the file small while
still checking every pixel.

File format (text, whitespace separated; lines starting with '#' are comments):
    cases N
then N records, each a header line
    case NAME WIDTH HEIGHT FORMAT ROW_PADDING SEED NOISE RESIZE CHANNELS OUT_H OUT_W MEAN0 MEAN1 MEAN2
         STD0 STD1 STD2 HASH CHANNEL_MEAN0 CHANNEL_MEAN1 CHANNEL_MEAN2 STEP COUNT
followed by COUNT values, output[i * STEP] for i in 0..COUNT-1 in C x H x W order, ten to a line.
FORMAT is the alexnet_pixel_format value the C test builds the image in (1 RGB8, 5 GRAY8); ROW_PADDING is
extra bytes at the end of every row (C side only: PIL never sees them). RESIZE 0 means no Resize step.
CHANNELS 1 for a colour image means PIL's convert('L') before the transform; CHANNELS 3 for a grey image
means convert('RGB'). HASH is the 64-bit FNV-1a (hex) of the 8-bit cropped image, planes one after another.
Unused means of one-channel cases are written as 0.
"""

import sys

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image
from torchvision import transforms

PIXEL_RGB8 = 1
PIXEL_GRAY8 = 5

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CUSTOM_MEAN = (0.5, 0.25, 0.125)
CUSTOM_STD = (0.5, 0.375, 0.25)

MASK32 = 0xFFFFFFFF


def pattern_hash(x, y, c, seed):
    """A 32-bit integer mix of (x, y, channel, seed); uint32 arrays wrap exactly like C's uint32_t."""
    v = (x * np.uint32(0x9E3779B1) + y * np.uint32(0x7F4A7C15) + np.uint32((c * 0x2545F491 + seed * 0x6A09E667) & MASK32))
    v ^= v >> np.uint32(15)
    v *= np.uint32(0x2C1B3C6D)
    v ^= v >> np.uint32(12)
    v *= np.uint32(0x297A2D39)
    v ^= v >> np.uint32(15)
    return v


def pattern_channel(width, height, c, seed, noise):
    """One channel: a gradient (different per channel) blended with hash noise, noise in 0..4 (quarters)."""
    y, x = np.meshgrid(np.arange(height, dtype=np.uint32), np.arange(width, dtype=np.uint32), indexing="ij")
    if c == 0:
        smooth = x * 255 // max(width - 1, 1)
    elif c == 1:
        smooth = y * 255 // max(height - 1, 1)
    else:
        smooth = (x + y) * 255 // max(width + height - 2, 1)
    rough = pattern_hash(x, y, c, seed) & np.uint32(255)
    return ((smooth * (4 - noise) + rough * noise) // 4).astype(np.uint8)


def pattern_image(width, height, fmt, seed, noise):
    if fmt == PIXEL_GRAY8:
        return Image.fromarray(pattern_channel(width, height, 0, seed, noise), mode="L")
    planes = [pattern_channel(width, height, c, seed, noise) for c in range(3)]
    return Image.fromarray(np.stack(planes, axis=2), mode="RGB")


def fnv1a64(data):
    """64-bit FNV-1a of a byte string (the C test hashes the same planar bytes the same way)."""
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


# name, width, height, format, row padding, seed, noise, resize, channels, (out_h, out_w) list, mean, std
CASES = [
    ("landscape_upscale", 300, 200, PIXEL_RGB8, 0, 1, 2, 256, 3, [(224, 224), (227, 227)], IMAGENET_MEAN, IMAGENET_STD),
    ("small_upscale", 97, 131, PIXEL_RGB8, 0, 2, 1, 256, 3, [(224, 224), (227, 227)], IMAGENET_MEAN, IMAGENET_STD),
    ("vga_downscale", 640, 480, PIXEL_RGB8, 0, 3, 2, 256, 3, [(224, 224), (227, 227)], IMAGENET_MEAN, IMAGENET_STD),
    ("square_identity", 256, 256, PIXEL_RGB8, 0, 4, 3, 256, 3, [(224, 224), (227, 227)], IMAGENET_MEAN, IMAGENET_STD),
    ("strong_downscale", 2400, 1800, PIXEL_RGB8, 0, 5, 4, 256, 3, [(224, 224), (227, 227)], IMAGENET_MEAN, IMAGENET_STD),
    ("grey_portrait", 333, 500, PIXEL_GRAY8, 0, 6, 2, 256, 3, [(224, 224), (227, 227)], IMAGENET_MEAN, IMAGENET_STD),
    ("grey_one_channel", 333, 500, PIXEL_GRAY8, 0, 6, 2, 256, 1, [(224, 224)], IMAGENET_MEAN, IMAGENET_STD),
    ("luminance", 500, 375, PIXEL_RGB8, 0, 7, 3, 256, 1, [(224, 224), (227, 227)], IMAGENET_MEAN, IMAGENET_STD),
    ("padded_rows", 401, 257, PIXEL_RGB8, 13, 8, 2, 256, 3, [(224, 224), (227, 227)], IMAGENET_MEAN, IMAGENET_STD),
    # resized long side 347: (347 - 224) / 2 = 61.5 rounds to 62 (half to even, upwards here)
    ("crop_rounds_up", 120, 163, PIXEL_RGB8, 0, 9, 2, 256, 3, [(224, 224)], IMAGENET_MEAN, IMAGENET_STD),
    # resize 200 < crop 227: torchvision pads with zero pixels (height only: the image becomes 250 x 200)
    ("pad_small_resize", 150, 120, PIXEL_RGB8, 0, 10, 2, 200, 3, [(227, 227)], CUSTOM_MEAN, CUSTOM_STD),
    ("pad_both_sides", 64, 48, PIXEL_GRAY8, 3, 11, 1, 100, 3, [(131, 140)], CUSTOM_MEAN, CUSTOM_STD),
    ("no_resize_crop", 260, 240, PIXEL_RGB8, 0, 12, 2, 0, 3, [(224, 224), (227, 227)], IMAGENET_MEAN, IMAGENET_STD),
    ("non_square_crop", 640, 480, PIXEL_RGB8, 0, 13, 2, 256, 3, [(200, 240)], CUSTOM_MEAN, CUSTOM_STD),
    ("odd_resize_downscale", 1031, 769, PIXEL_RGB8, 0, 14, 2, 233, 3, [(224, 224)], IMAGENET_MEAN, IMAGENET_STD),
    ("large_downscale", 4000, 3000, PIXEL_RGB8, 0, 15, 2, 256, 3, [(224, 224)], IMAGENET_MEAN, IMAGENET_STD),
    # a 3100x downscale: each output pixel averages ~6200 x 6200 source pixels (the library's wide-filter path)
    ("huge_factor", 6200, 6200, PIXEL_GRAY8, 0, 16, 4, 2, 1, [(1, 1)], IMAGENET_MEAN, IMAGENET_STD),
]

# Roughly 1200 stored values per case keeps the file near 350 KB in all; the hash covers the rest.
TARGET_VALUES = 1200


def transform_for(resize, out_h, out_w, mean, std):
    steps = []
    if resize:
        steps.append(transforms.Resize(resize))  # bilinear, PIL's antialiased resampling
    steps.append(transforms.CenterCrop((out_h, out_w)))
    crop = transforms.Compose(steps)
    tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    return crop, tensor


def run_case(case, out_h, out_w):
    name, width, height, fmt, padding, seed, noise, resize, channels, _, mean, std = case
    image = pattern_image(width, height, fmt, seed, noise)
    if channels == 1 and image.mode != "L":
        image = image.convert("L")
    if channels == 3 and image.mode != "RGB":
        image = image.convert("RGB")
    crop, to_tensor = transform_for(resize, out_h, out_w, list(mean[:channels]), list(std[:channels]))
    cropped = crop(image)
    output = to_tensor(cropped)
    assert tuple(output.shape) == (channels, out_h, out_w), output.shape
    pixels = np.asarray(cropped, dtype=np.uint8)
    planar = pixels[None, :, :] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    flat = output.numpy().reshape(-1)
    step = max(1, flat.size // TARGET_VALUES) | 1  # odd, so the samples do not line up with the columns
    samples = flat[::step]
    channel_means = [float(output[c].double().mean()) for c in range(channels)] + [0.0] * (3 - channels)
    header = (
        f"case {name}_{out_h}x{out_w} {width} {height} {fmt} {padding} {seed} {noise} {resize} {channels} "
        f"{out_h} {out_w} " + " ".join(f"{v:.9g}" for v in mean) + " " + " ".join(f"{v:.9g}" for v in std) +
        f" {fnv1a64(np.ascontiguousarray(planar).tobytes()):016x} " + " ".join(f"{m:.12g}" for m in channel_means) +
        f" {step} {samples.size}"
    )
    lines = [header]
    for i in range(0, samples.size, 10):
        lines.append(" ".join(f"{v:.9g}" for v in samples[i:i + 10]))
    return lines


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/image_goldens.txt"
    records = []
    for case in CASES:
        for out_h, out_w in case[9]:
            records.append(run_case(case, out_h, out_w))
    with open(path, "w") as f:
        f.write("# libalexnet image preprocessing goldens, generated by tools/make_image_goldens.py\n")
        f.write(f"# torch {torch.__version__} torchvision {torchvision.__version__} PIL {PIL.__version__} "
                f"numpy {np.__version__}\n")
        f.write("# transform: Resize(resize) (omitted when 0), CenterCrop((out_h, out_w)), ToTensor(), "
                "Normalize(mean, std)\n")
        f.write(f"cases {len(records)}\n")
        for lines in records:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
