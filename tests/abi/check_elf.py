#!/usr/bin/env python3
"""ABI guards for the built shared library (standard library only; uses binutils' readelf).

Modes (one meson test each):
  symbols  the dynamic symbols the library defines are exactly the functions the public header declares
           with ALEXNET_API, all named alexnet_*, all functions, each bound to a version node of the
           version script;
  soname   DT_SONAME is the expected name;
  needed   DT_NEEDED lists only the C runtime (libc, libm, libpthread, libdl, and the dynamic loader,
           which glibc >= 2.34 names for __tls_get_addr);
  structs  every public *_options / *_info / config struct begins with `size_t struct_size`.
"""

import argparse
import re
import subprocess
import sys

ALLOWED_NEEDED = [
    re.compile(r"^libc\.so\.\d+$"),
    re.compile(r"^libm\.so\.\d+$"),
    re.compile(r"^libpthread\.so\.\d+$"),
    re.compile(r"^libdl\.so\.\d+$"),
    re.compile(r"^ld-linux[-\w.]*\.so\.\d+$"),
    re.compile(r"^ld64\.so\.\d+$"),
]


def fail(message):
    print("FAIL: " + message)
    return 1


def strip_c(text):
    """The header without comments and preprocessor lines (continuations included)."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    kept = []
    in_directive = False
    for line in text.splitlines():
        if in_directive or line.lstrip().startswith("#"):
            in_directive = line.rstrip().endswith("\\")
            continue
        kept.append(line)
    return "\n".join(kept)


def header_functions(header_path):
    with open(header_path, encoding="utf-8") as f:
        code = strip_c(f.read())
    # ALEXNET_API <return type> name(   -- the return type never contains '(' or ';'.
    names = re.findall(r"\bALEXNET_API\b[^;(]*?\b([A-Za-z_]\w*)\s*\(", code)
    return names


def version_nodes(script_path):
    with open(script_path, encoding="utf-8") as f:
        text = re.sub(r"/\*.*?\*/", " ", f.read(), flags=re.S)
    return re.findall(r"(?:^|\})\s*([A-Za-z_][\w.]*)\s*\{", text, flags=re.M)


def run(cmd):
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if result.returncode != 0:
        raise SystemExit("FAIL: %s exited with %d: %s" % (" ".join(cmd), result.returncode, result.stderr))
    return result.stdout


def defined_dynamic_symbols(readelf, library):
    """[(name, version or None, type, bind, ndx)] for every defined .dynsym entry."""
    out = run([readelf, "--dyn-syms", "--wide", library])
    symbols = []
    for line in out.splitlines():
        fields = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(fields) < 8 or not fields[0].endswith(":") or not fields[0][:-1].isdigit():
            continue
        sym_type, bind, ndx, name = fields[3], fields[4], fields[6], fields[7]
        if ndx == "UND" or not name:
            continue
        version = None
        m = re.match(r"^([^@]+)@@?(.+)$", name)
        if m:
            name, version = m.group(1), m.group(2)
        symbols.append((name, version, sym_type, bind, ndx))
    return symbols


def dynamic_entries(readelf, library, tag):
    out = run([readelf, "--dynamic", "--wide", library])
    values = []
    for line in out.splitlines():
        if "(%s)" % tag in line:
            m = re.search(r"\[([^\]]*)\]", line)
            if m:
                values.append(m.group(1))
    return values


def check_symbols(args):
    declared = header_functions(args.header)
    errors = 0
    if len(declared) < 10:
        errors += fail("only %d ALEXNET_API functions parsed from %s; the parser is broken" % (len(declared), args.header))
    duplicates = sorted({n for n in declared if declared.count(n) > 1})
    if duplicates:
        errors += fail("declared more than once in the header: " + ", ".join(duplicates))
    for name in declared:
        if not name.startswith("alexnet_"):
            errors += fail("header declares %s with ALEXNET_API, which does not start with alexnet_" % name)
    nodes = version_nodes(args.version_script)
    if not nodes:
        errors += fail("no version node found in " + args.version_script)
    if args.require_node and args.require_node not in nodes:
        errors += fail("version script %s lacks node %s (has %s)" % (args.version_script, args.require_node, nodes))

    exported = {}
    for name, version, sym_type, bind, ndx in defined_dynamic_symbols(args.readelf, args.library):
        if ndx == "ABS" and name in nodes:
            continue  # the version definition's own marker symbol
        if bind == "LOCAL":
            continue
        exported[name] = (version, sym_type, bind)

    for name in sorted(exported):
        version, sym_type, bind = exported[name]
        if not name.startswith("alexnet_"):
            errors += fail("exported symbol %s does not start with alexnet_" % name)
        if sym_type != "FUNC":
            errors += fail("exported symbol %s is a %s, not a function" % (name, sym_type))
        if version is None:
            errors += fail("exported symbol %s carries no version" % name)
        elif version not in nodes:
            errors += fail("exported symbol %s has version %s, not one of the script's nodes %s" % (name, version, nodes))
    missing = sorted(set(declared) - set(exported))
    extra = sorted(set(exported) - set(declared))
    for name in missing:
        errors += fail("declared in the header but not exported: " + name)
    for name in extra:
        errors += fail("exported but not declared with ALEXNET_API in the header: " + name)
    if errors == 0:
        print("ok: %d functions declared, %d exported, all versioned with %s" % (len(declared), len(exported), "/".join(nodes)))
    return errors


def check_soname(args):
    sonames = dynamic_entries(args.readelf, args.library, "SONAME")
    if sonames != [args.soname]:
        return fail("SONAME is %s, expected %s" % (sonames, args.soname))
    print("ok: SONAME " + args.soname)
    return 0


def check_needed(args):
    needed = dynamic_entries(args.readelf, args.library, "NEEDED")
    errors = 0
    for lib in needed:
        if not any(p.match(lib) for p in ALLOWED_NEEDED):
            errors += fail("the library needs %s; only the C runtime is allowed" % lib)
    if errors == 0:
        print("ok: NEEDED " + (", ".join(needed) if needed else "(none)"))
    return errors


def check_structs(args):
    with open(args.header, encoding="utf-8") as f:
        code = strip_c(f.read())
    errors = 0
    count = 0
    for m in re.finditer(r"\btypedef\s+struct\s+(\w+)\s*\{([^}]*)\}", code):
        name, body = m.group(1), m.group(2)
        if not (name.endswith("_options") or name.endswith("_info") or name == "alexnet_config"):
            continue
        count += 1
        first = body.strip().split(";", 1)[0].split()
        if first != ["size_t", "struct_size"]:
            errors += fail("%s begins with '%s', not 'size_t struct_size'" % (name, " ".join(first)))
    if count < 5:
        errors += fail("only %d options/info structs parsed; the parser is broken" % count)
    if errors == 0:
        print("ok: %d options/info structs begin with size_t struct_size" % count)
    return errors


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["symbols", "soname", "needed", "structs"])
    parser.add_argument("--header")
    parser.add_argument("--library")
    parser.add_argument("--version-script")
    parser.add_argument("--require-node", default="ALEXNET_0.1")
    parser.add_argument("--soname")
    parser.add_argument("--readelf", default="readelf")
    args = parser.parse_args()
    errors = {"symbols": check_symbols, "soname": check_soname, "needed": check_needed,
              "structs": check_structs}[args.mode](args)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
