#!/usr/bin/env python3
"""Tests of the `alexnet` command-line program and the minimal C++ example (standard library only).

Each test case is one meson test:

    python3 test_examples.py CASE --alexnet PATH --minimal PATH --data DIR

CASE is one of the names in CASES below. A case exits 0 when it passes; otherwise it prints what went wrong
(including the program's output) and exits 1.
"""
import argparse
import os
import re
import subprocess
import sys
import struct
import tempfile
import zlib

# "  0.001234    417  some label": probability, class index, label.
RESULT_LINE = re.compile(r"^  \d\.\d+\s+\d+\s+\S.*$", re.MULTILINE)
UNTRAINED_NOTICE = "untrained"
FIXTURE_DIR = os.path.dirname(os.path.abspath(__file__))
SKIP_EXIT_STATUS = 77  # what meson counts as a skipped test


class CaseFailure(Exception):
    pass


class CaseSkipped(Exception):
    pass


class Programs:
    def __init__(self, alexnet, minimal, data_dir):
        self.alexnet = alexnet
        self.minimal = minimal
        self.data_dir = data_dir

    @property
    def sample(self):
        return os.path.join(self.data_dir, "sample.ppm")


def run(command, timeout=120):
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    result.stdout = result.stdout.decode("utf-8", "replace")
    result.stderr = result.stderr.decode("utf-8", "replace")
    return result


def describe(result):
    return "command: %s\nexit status: %d\n--- stdout ---\n%s--- stderr ---\n%s" % (
        " ".join(result.args), result.returncode, result.stdout, result.stderr)


def expect(condition, message, result):
    if not condition:
        raise CaseFailure("%s\n%s" % (message, describe(result)))


def expect_exit(result, status):
    expect(result.returncode == status, "expected exit status %d" % status, result)


# ---- summary -------------------------------------------------------------------------------------------

def check_summary(programs, variant, total):
    result = run([programs.alexnet, "summary", "--variant", variant])
    expect_exit(result, 0)
    expect("Total parameters: %s" % total in result.stdout, "missing the total %s" % total, result)
    for layer in ("conv1", "conv5", "pool5", "fc6", "fc7", "fc8"):
        expect(re.search(r"^%s\s" % layer, result.stdout, re.MULTILINE), "no table row for %s" % layer, result)


def case_summary_one_tower(programs):
    check_summary(programs, "one-tower", "62,378,344")


def case_summary_paper(programs):
    check_summary(programs, "paper", "60,965,224")


def case_summary_torchvision(programs):
    check_summary(programs, "torchvision", "61,100,840")


def case_summary_default_is_one_tower(programs):
    result = run([programs.alexnet, "summary"])
    expect_exit(result, 0)
    expect("62,378,344" in result.stdout, "the default variant should be one-tower", result)


# ---- classify ------------------------------------------------------------------------------------------

def case_classify_sample(programs):
    result = run([programs.alexnet, "classify", programs.sample, "--top", "3"])
    expect_exit(result, 0)
    results = RESULT_LINE.findall(result.stdout)
    expect(len(results) == 3, "expected 3 result lines, found %d" % len(results), result)
    notice = result.stdout.find(UNTRAINED_NOTICE)
    expect(notice >= 0, "no notice that the weights are untrained", result)
    expect(notice < result.stdout.find(results[0]), "the untrained notice must come before the results", result)


def write_file(directory, name, data):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def gradient_pixels(width, height, channels):
    return bytes((x * 7 + y * 3 + c * 50) % 256 for y in range(height) for x in range(width) for c in range(channels))


def case_classify_batch_pgm_comments_labels(programs):
    """Two images in one batch: a PGM, and a PPM whose header is full of comments; custom labels."""
    with tempfile.TemporaryDirectory() as directory:
        pgm = write_file(directory, "grey.pgm", b"P5\n40 30\n255\n" + gradient_pixels(40, 30, 1))
        commented = write_file(directory, "commented.ppm",
                               b"P6 # magic\n# a whole comment line\n 50# width\n\t40 #height\n255\n"
                               + gradient_pixels(50, 40, 3))
        labels = write_file(directory, "labels.txt", "".join("name-%d\r\n" % i for i in range(1000)).encode())
        result = run([programs.alexnet, "classify", pgm, "--labels", labels, commented, "--top=2"])
        expect_exit(result, 0)
        results = RESULT_LINE.findall(result.stdout)
        expect(len(results) == 4, "expected 2 x 2 result lines, found %d" % len(results), result)
        expect(all(re.search(r"\bname-\d+$", line) for line in results), "labels not taken from --labels", result)
        expect("grey.pgm (40x30)" in result.stdout and "commented.ppm (50x40)" in result.stdout,
               "each image's name and size should head its results", result)


def png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def encode_png_rgb(width, height, pixels):
    """A minimal 8-bit RGB PNG (filter type 0 on every row), enough to exercise the CLI's libpng path."""
    rows = b"".join(b"\0" + pixels[y * width * 3:(y + 1) * width * 3] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows))
            + png_chunk(b"IEND", b""))


def supported_formats(programs):
    result = run([programs.alexnet, "classify", "--help"])
    match = re.search(r"^Image formats: (.*)$", result.stdout, re.MULTILINE)
    expect(match, "classify --help should list the image formats", result)
    return match.group(1)


def results_by_image(result):
    """{image path: [result lines]} from classify's output."""
    blocks = {}
    current = None
    for line in result.stdout.splitlines():
        header = re.match(r"^(.*) \(\d+x\d+\):$", line)
        if header:
            current = blocks.setdefault(header.group(1), [])
        elif current is not None and RESULT_LINE.match(line):
            current.append(line)
    return blocks


def case_classify_png_jpeg_match_ppm(programs):
    """PNG and JPEG files must classify exactly like PPMs of the pixels PIL (torchvision's loader) decodes."""
    formats = supported_formats(programs)
    if "PNG" not in formats and "JPEG" not in formats:
        raise CaseSkipped("built without libpng and libjpeg")
    with tempfile.TemporaryDirectory() as directory:
        pairs = []
        if "PNG" in formats:
            width, height = 64, 48
            pixels = gradient_pixels(width, height, 3)
            ppm = write_file(directory, "gradient.ppm", b"P6\n%d %d\n255\n" % (width, height) + pixels)
            png = write_file(directory, "gradient.png", encode_png_rgb(width, height, pixels))
            pairs.append((png, ppm))
        if "JPEG" in formats:
            pairs.append((os.path.join(FIXTURE_DIR, "sample_small.jpg"),
                          os.path.join(FIXTURE_DIR, "sample_small_decoded.ppm")))
        paths = [path for pair in pairs for path in pair]
        # All 1000 classes of the torchvision variant: untrained weights barely depend on the input, but the
        # full ordering to 6 decimals does change when many pixels are off by one (a decoder difference).
        result = run([programs.alexnet, "classify", "--variant", "torchvision", "--top", "1000"] + paths)
        expect_exit(result, 0)
        blocks = results_by_image(result)
        for encoded, decoded in pairs:
            expect(len(blocks.get(encoded, [])) == 1000, "no results for %s" % encoded, result)
            expect(blocks[encoded] == blocks.get(decoded),
                   "%s and %s hold the same pixels but classify differently" % (encoded, decoded), result)


MALFORMED_FILES = {
    "truncated.ppm": (b"P6\n320 240\n255\n" + bytes(1000), "truncated"),
    "garbage.ppm": (b"\x00\x01garbage, not an image at all\n", "not a recognised image"),
    "empty.ppm": (b"", "not a recognised image"),
    "maxval.ppm": (b"P6\n2 2\n65535\n" + bytes(24), "maximum value"),
    "ascii.ppm": (b"P3\n1 1\n255\n0 0 0\n", "ASCII"),
    "width.ppm": (b"P6\nwide 2\n255\n", "width"),
    "header.ppm": (b"P6\n4 4", "maximum value"),
    "zero.ppm": (b"P6\n0 4\n255\n", "size"),
    "huge.ppm": (b"P6\n99999999 99999999\n255\n", "size"),
    "magic.ppm": (b"P61 1 255\n\0\0\0", "magic number"),
    "raster.ppm": (b"P6\n1 1\n255", "whitespace after the maximum value"),
}


def case_classify_malformed(programs):
    with tempfile.TemporaryDirectory() as directory:
        for name, (data, reason) in sorted(MALFORMED_FILES.items()):
            path = write_file(directory, name, data)
            result = run([programs.alexnet, "classify", path])
            expect_exit(result, 1)
            expect(name in result.stderr and reason in result.stderr,
                   "%s: expected a message naming the file and saying '%s'" % (name, reason), result)
            expect(not RESULT_LINE.search(result.stdout), "%s: printed results for a bad file" % name, result)
        result = run([programs.alexnet, "classify", os.path.join(directory, "missing.ppm")])
        expect_exit(result, 1)
        expect("cannot open" in result.stderr, "a missing file should say it cannot be opened", result)


def case_library_failure_message(programs):
    result = run([programs.alexnet, "classify", programs.sample, "--backend", "no-such-backend"])
    expect_exit(result, 1)
    expect(re.search(r"^alexnet: [^:\n]+: .+", result.stderr, re.MULTILINE),
           "a library failure should print 'alexnet: <status>: <detail>'", result)
    # torchvision's convolutions need at least 63 x 63.
    result = run([programs.alexnet, "summary", "--variant", "torchvision", "--size", "10"])
    expect_exit(result, 1)
    expect(result.stderr.startswith("alexnet: "), "a rejected size should be reported", result)


# ---- usage ---------------------------------------------------------------------------------------------

def case_usage_errors(programs):
    bad_command_lines = [
        ["summary", "--no-such-option"],
        ["classify", programs.sample, "--bogus", "1"],
        ["summary", "--top", "3"],               # an option of another command
        ["no-such-command"],
        [],
        ["summary", "--variant"],                # missing value
        ["summary", "--variant", "alexnet-9000"],
        ["classify", programs.sample, "--top", "0"],
        ["classify", programs.sample, "--top", "-3"],
        ["bench", "--iterations", "many"],
        ["classify"],                            # no image
        ["summary", "stray-argument"],
        ["summary", "-x"],
    ]
    for arguments in bad_command_lines:
        result = run([programs.alexnet] + arguments)
        expect_exit(result, 2)
        expect("Usage: alexnet" in result.stderr, "usage should be printed to stderr", result)
        expect(result.stdout == "", "nothing should go to stdout on a usage error", result)


def case_help(programs):
    for arguments in (["--help"], ["help"], ["summary", "--help"], ["classify", "-h"], ["help", "bench"],
                      ["demo", "--help"], ["backends", "--help"]):
        result = run([programs.alexnet] + arguments)
        expect_exit(result, 0)
        expect(result.stdout.startswith("Usage: alexnet"), "help should print usage to stdout", result)
    result = run([programs.alexnet, "classify", "--help"])
    expect("--weights" in result.stdout and "--labels" in result.stdout, "classify help lists its options", result)


# ---- other commands ------------------------------------------------------------------------------------

def case_backends(programs):
    result = run([programs.alexnet, "backends"])
    expect_exit(result, 0)
    expect(re.search(r"^reference\s+cpu\s+yes", result.stdout, re.MULTILINE),
           "the reference backend should be listed as available", result)


def case_bench(programs):
    result = run([programs.alexnet, "bench", "--iterations", "2", "--backend", "reference"])
    expect_exit(result, 0)
    expect(re.search(r"^backend:\s+reference$", result.stdout, re.MULTILINE), "backend name missing", result)
    expect(re.search(r"^per image:\s+median\s+\d+\.\d+ ms", result.stdout, re.MULTILINE),
           "per-image median missing", result)


def case_demo(programs):
    result = run([programs.alexnet, "demo"])
    expect_exit(result, 0)
    expect("Total parameters: 62,378,344" in result.stdout, "the demo starts with the one-tower summary", result)
    expect(UNTRAINED_NOTICE in result.stdout, "the demo must say its weights are untrained", result)
    expect(len(RESULT_LINE.findall(result.stdout)) == 5, "the demo prints the top 5", result)


def case_minimal_cpp(programs):
    result = run([programs.minimal])
    expect_exit(result, 0)
    expect(len(re.findall(r"^  \d\.\d+\s+class \d+$", result.stdout, re.MULTILINE)) == 5,
           "minimal_cpp should print 5 classes", result)


CASES = {name[len("case_"):].replace("_", "-"): function
         for name, function in globals().items() if name.startswith("case_")}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--alexnet", required=True)
    parser.add_argument("--minimal", required=True)
    parser.add_argument("--data", required=True, help="examples/data in the source tree")
    args = parser.parse_args()
    try:
        CASES[args.case](Programs(args.alexnet, args.minimal, args.data))
    except CaseFailure as failure:
        print("FAIL %s: %s" % (args.case, failure))
        return 1
    except CaseSkipped as reason:
        print("SKIP %s: %s" % (args.case, reason))
        return SKIP_EXIT_STATUS
    print("PASS %s" % args.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
