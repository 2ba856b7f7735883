#!/usr/bin/env python3
"""Regenerate the JPEG fixture of the examples tests (needs Pillow; the tests themselves do not).

Writes tests/examples/sample_small.jpg, a 96x72 JPEG of a downscaled examples/data/sample.ppm, and
tests/examples/sample_small_decoded.ppm, the pixels Pillow (and so torchvision) decodes from it. The CLI must
classify both identically, which shows its libjpeg decoding matches the reference pipeline's.

    /usr/bin/python3 tests/examples/make_jpeg_fixture.py
"""
import pathlib

from PIL import Image

HERE = pathlib.Path(__file__).resolve().parent
SAMPLE = HERE.parent.parent / "examples" / "data" / "sample.ppm"


def main():
    small = Image.open(SAMPLE).convert("RGB").resize((96, 72), Image.BILINEAR)
    jpeg_path = HERE / "sample_small.jpg"
    small.save(jpeg_path, quality=90)
    decoded = Image.open(jpeg_path).convert("RGB")
    header = b"P6\n%d %d\n255\n" % decoded.size
    (HERE / "sample_small_decoded.ppm").write_bytes(header + decoded.tobytes())


if __name__ == "__main__":
    main()
