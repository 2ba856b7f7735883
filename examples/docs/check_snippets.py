#!/usr/bin/env python3
"""Check that the user documentation cannot drift from code that compiles.

usage: check_snippets.py --root SOURCE_ROOT

For README.md and docs/{GETTING_STARTED,API,WEIGHTS,VARIANTS}.md:
  - every fenced block tagged c or cpp must be text from one file among examples/docs/*.c, *.cpp and
    include/alexnet/alexnet.h (which the docs test compiles and runs). Lines are compared with surrounding
    whitespace removed and blank lines ignored; a line that is only "/* ... */" or "// ..." in a block
    stands for lines left out, so a block may quote several pieces of one file, in order;
  - every relative link must name a file or directory that exists.
Exits 1 with a list of problems, 0 when there are none.
"""

import argparse
import glob
import os
import re
import sys

DOCUMENTS = ["README.md", "docs/GETTING_STARTED.md", "docs/API.md", "docs/WEIGHTS.md", "docs/VARIANTS.md"]
ELISIONS = {"/* ... */", "// ..."}
FENCE = re.compile(r"^```(\S*)\s*$")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def normalise(lines):
    return [line.strip() for line in lines if line.strip()]


def code_blocks(text):
    """(language, first line number, lines) for every fenced block."""
    blocks, language, start, lines = [], None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if language is None and match:
            language, start, lines = match.group(1), number + 1, []
        elif language is not None and line.strip() == "```":
            blocks.append((language, start, lines))
            language = None
        elif language is not None:
            lines.append(line)
    return blocks


def find_in_order(haystack, segments):
    """True if the segments occur in haystack contiguously each, one after another."""
    position = 0
    for segment in segments:
        if not segment:
            continue
        found = None
        for start in range(position, len(haystack) - len(segment) + 1):
            if haystack[start:start + len(segment)] == segment:
                found = start
                break
        if found is None:
            return False
        position = found + len(segment)
    return True


def split_segments(lines):
    segments, current = [], []
    for line in lines:
        if line.strip() in ELISIONS:
            segments.append(normalise(current))
            current = []
        else:
            current.append(line)
    segments.append(normalise(current))
    return segments


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    args = parser.parse_args()
    root = args.root
    sources = sorted(glob.glob(os.path.join(root, "examples", "docs", "*.c")) +
                     glob.glob(os.path.join(root, "examples", "docs", "*.cpp")) +
                     [os.path.join(root, "include", "alexnet", "alexnet.h")])
    source_lines = {}
    for path in sources:
        with open(path, encoding="utf-8") as handle:
            source_lines[os.path.relpath(path, root)] = normalise(handle.read().splitlines())

    problems, checked = [], 0
    for document in DOCUMENTS:
        path = os.path.join(root, document)
        if not os.path.exists(path):
            problems.append("%s: missing" % document)
            continue
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        for language, line, lines in code_blocks(text):
            if language not in ("c", "cpp"):
                continue
            checked += 1
            segments = split_segments(lines)
            if not any(find_in_order(body, segments) for body in source_lines.values()):
                problems.append("%s:%d: this %s block is not text from examples/docs/ or alexnet.h"
                                % (document, line, language))
        in_code = False
        for number, text_line in enumerate(text.splitlines(), 1):
            if FENCE.match(text_line) or (in_code and text_line.strip() == "```"):
                in_code = not in_code
                continue
            if in_code:
                continue
            for target in LINK.findall(text_line):
                if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                    continue
                target_path = os.path.join(os.path.dirname(path), target.split("#")[0])
                if not os.path.exists(target_path):
                    problems.append("%s:%d: link to %s, which does not exist" % (document, number, target))
    for problem in problems:
        print(problem)
    print("%d code blocks checked in %d documents; %d problems" % (checked, len(DOCUMENTS), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
