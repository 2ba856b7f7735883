#!/usr/bin/env python3
"""Generate examples/data/sample.ppm: a small synthetic scene for the `alexnet` demo and tests.

The picture (a sky gradient, a sun, two rolling hills and a striped ball) is drawn with integer
arithmetic only, so every run on every machine writes the same bytes. It is not meant to look like any
ImageNet class: the demo runs untrained weights, and the point is a reproducible, realistic-sized input
with smooth areas and sharp edges for the resize/crop path. Standard library only:

    python3 tools/make_sample_image.py            # writes examples/data/sample.ppm
"""
import argparse
import pathlib

WIDTH, HEIGHT = 320, 240


def distance_squared(x, y, cx, cy):
    return (x - cx) * (x - cx) + (y - cy) * (y - cy)


def hill_top(x, base, amplitude, period, phase):
    """Height of a hill outline at column x: a triangle wave smoothed into a parabola, integers only."""
    t = (x + phase) % period
    half = period // 2
    d = t - half  # -half .. half
    return base - amplitude + (amplitude * d * d) // (half * half)


def pixel(x, y):
    # Sky: blue at the top fading to pale near the horizon.
    r = 90 + (120 * y) // HEIGHT
    g = 140 + (90 * y) // HEIGHT
    b = 230 - (30 * y) // HEIGHT

    # Sun with a soft-edged halo.
    d2 = distance_squared(x, y, 250, 55)
    if d2 <= 28 * 28:
        r, g, b = 255, 222, 90
    elif d2 <= 40 * 40:
        r, g, b = (r + 255) // 2, (g + 222) // 2, (b + 90) // 2

    # Two hills, the nearer one darker.
    if y >= hill_top(x, 175, 30, 220, 40):
        r, g, b = 70, 150 - (y - 140) // 3, 60
    if y >= hill_top(x, 215, 25, 160, 0):
        r, g, b = 40, 110 - (y - 190) // 3, 35

    # A striped ball resting on the near hill.
    d2 = distance_squared(x, y, 110, 170)
    if d2 <= 34 * 34:
        stripe = ((x - y + 400) // 12) % 2
        r, g, b = (220, 40, 40) if stripe else (245, 245, 240)
        if d2 >= 31 * 31:  # dark rim
            r, g, b = r // 3, g // 3, b // 3

    return bytes((max(0, min(255, r)), max(0, min(255, g)), max(0, min(255, b))))


def render():
    rows = []
    for y in range(HEIGHT):
        rows.append(b"".join(pixel(x, y) for x in range(WIDTH)))
    return b"".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = pathlib.Path(__file__).resolve().parent.parent / "examples" / "data" / "sample.ppm"
    parser.add_argument("--output", type=pathlib.Path, default=default)
    args = parser.parse_args()

    header = b"P6\n# libalexnet synthetic sample (tools/make_sample_image.py)\n%d %d\n255\n" % (WIDTH, HEIGHT)
    args.output.write_bytes(header + render())


if __name__ == "__main__":
    main()
