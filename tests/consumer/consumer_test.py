#!/usr/bin/env python3
"""Install the built project into a temporary DESTDIR and build downstream programs against it.

usage: consumer_test.py --build-root DIR --source-dir DIR --meson MESON --pkg-config PKGCONF --cc CC --cxx CXX
                        [--header SOURCE_HEADER] [--keep]

Checks the installed tree (public header, libalexnet.so.0 link, libalexnet.a, alexnet.pc), then compiles
consumer.c (C11) and consumer.cpp (C++11) with nothing but `pkg-config --cflags --libs alexnet` from that
tree, runs them against the installed shared library only, and links the C program once more against the
static library with `pkg-config --static` to check Libs.private.

pkg-config is pointed at the DESTDIR with PKG_CONFIG_LIBDIR (nothing else is searched) and
PKG_CONFIG_SYSROOT_DIR (which prefixes -I and -L). Debian 12's pkgconf 1.8 handles that; its
--define-prefix does not, as it cannot see through the multiarch libdir (lib/x86_64-linux-gnu).
"""

import argparse
import filecmp
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

failures = []


def fail(message):
    print("FAIL: " + message)
    failures.append(message)


def run(cmd, env=None, check=True):
    print("$ " + " ".join(shlex.quote(c) for c in cmd))
    result = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if result.stdout.strip():
        print(result.stdout.rstrip())
    if check and result.returncode != 0:
        raise SystemExit("FAIL: exit status %d" % result.returncode)
    return result


def find_one(root, predicate, what):
    found = []
    for directory, dirs, files in os.walk(root):
        for name in files + dirs:
            path = os.path.join(directory, name)
            if predicate(path):
                found.append(path)
    if len(found) != 1:
        raise SystemExit("FAIL: expected one %s under %s, found %s" % (what, root, found))
    return found[0]


def loaded_libraries(exe, env):
    """What the dynamic loader would map for exe (ldd's mechanism, without needing ldd)."""
    trace_env = dict(env)
    trace_env["LD_TRACE_LOADED_OBJECTS"] = "1"
    return run([exe], env=trace_env).stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-root", required=True)
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--meson", required=True)
    parser.add_argument("--pkg-config", required=True)
    parser.add_argument("--cc", required=True)
    parser.add_argument("--cxx", required=True)
    parser.add_argument("--header")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    meson = shlex.split(args.meson)
    tmp = tempfile.mkdtemp(prefix="alexnet-consumer-")
    try:
        destdir = os.path.join(tmp, "root")
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PKG_CONFIG") and k not in ("LD_LIBRARY_PATH", "DESTDIR", "CPATH",
                                                                "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH",
                                                                "LIBRARY_PATH")}

        # -- install ---------------------------------------------------------------------------------------
        run(meson + ["install", "-C", args.build_root, "--destdir", destdir, "--no-rebuild", "--quiet"], env=env)
        installed = json.loads(run(meson + ["introspect", "--installed", args.build_root], env=env).stdout or "{}")
        for built, target in sorted(installed.items()):
            if not os.path.lexists(destdir + target):
                fail("%s should be installed as %s" % (built, target))

        # -- installed files -------------------------------------------------------------------------------
        pc = find_one(destdir, lambda p: p.endswith("/pkgconfig/alexnet.pc"), "alexnet.pc")
        pcdir = os.path.dirname(pc)
        libdir = os.path.dirname(pcdir)
        header = find_one(destdir, lambda p: p.endswith("/include/alexnet/alexnet.h"), "alexnet/alexnet.h")
        if args.header and not filecmp.cmp(header, args.header, shallow=False):
            fail("the installed header differs from " + args.header)
        soname_link = os.path.join(libdir, "libalexnet.so.0")
        if not os.path.islink(soname_link):
            fail("%s is not a symbolic link" % soname_link)
        elif not os.path.isfile(os.path.realpath(soname_link)):
            fail("%s is a dangling link" % soname_link)
        if not os.path.islink(os.path.join(libdir, "libalexnet.so")):
            fail("the development link libalexnet.so is missing")
        static_lib = os.path.join(libdir, "libalexnet.a")
        if not os.path.isfile(static_lib):
            fail("%s is missing" % static_lib)
        print("installed: %s, %s, %s" % (os.path.relpath(header, destdir), os.path.relpath(pc, destdir),
                                         ", ".join(sorted(n for n in os.listdir(libdir) if n.startswith("libalexnet")))))

        # -- pkg-config from the DESTDIR only --------------------------------------------------------------
        pkg_env = dict(env)
        pkg_env["PKG_CONFIG_LIBDIR"] = pcdir
        pkg_env["PKG_CONFIG_PATH"] = pcdir
        pkg_env["PKG_CONFIG_SYSROOT_DIR"] = destdir
        pkgconf = shlex.split(args.pkg_config)
        version = run(pkgconf + ["--modversion", "alexnet"], env=pkg_env).stdout.strip()
        with open(header, encoding="utf-8") as f:
            if '#define ALEXNET_VERSION_STRING "%s"' % version not in f.read():
                fail("alexnet.pc says version %s, the installed header disagrees" % version)
        flags = shlex.split(run(pkgconf + ["--cflags", "--libs", "alexnet"], env=pkg_env).stdout)
        static_flags = shlex.split(run(pkgconf + ["--static", "--cflags", "--libs", "alexnet"], env=pkg_env).stdout)
        for flag in flags:
            if flag.startswith(("-I", "-L")) and not flag[2:].startswith(destdir):
                fail("pkg-config flag %s points outside the install tree" % flag)

        run_env = dict(env)
        run_env["LD_LIBRARY_PATH"] = libdir
        real_libdir = os.path.realpath(libdir)

        programs = [
            ("c", shlex.split(args.cc) + ["-std=c11", "-pedantic-errors", "-Wall", "-Wextra", "-Werror"], "consumer.c"),
            ("cxx", shlex.split(args.cxx) + ["-std=c++11", "-pedantic-errors", "-Wall", "-Wextra", "-Werror"], "consumer.cpp"),
        ]
        for name, compiler, source in programs:
            exe = os.path.join(work, "consumer_" + name)
            run(compiler + [os.path.join(args.source_dir, source), "-o", exe] + flags, env=env)
            trace = loaded_libraries(exe, run_env)
            line = [l for l in trace.splitlines() if "libalexnet" in l]
            if not line or os.path.realpath(line[0].split("=>")[-1].split("(")[0].strip()).rsplit("/", 1)[0] != real_libdir:
                fail("consumer_%s does not load libalexnet from the install tree: %s" % (name, line))
            result = run([exe], env=run_env, check=False)
            if result.returncode != 0 or "ok:" not in result.stdout:
                fail("consumer_%s exited with %d" % (name, result.returncode))

        # The static library with Libs.private: only -lalexnet is made static, the C runtime stays shared.
        exe = os.path.join(work, "consumer_c_static")
        linked = []
        for flag in static_flags:
            linked += ["-Wl,-Bstatic", flag, "-Wl,-Bdynamic"] if flag == "-lalexnet" else [flag]
        run(shlex.split(args.cc) + ["-std=c11", "-Wall", "-Wextra", "-Werror",
                                    os.path.join(args.source_dir, "consumer.c"), "-o", exe] + linked, env=env)
        if "libalexnet" in loaded_libraries(exe, env):
            fail("consumer_c_static still needs the shared library")
        result = run([exe], env=env, check=False)
        if result.returncode != 0 or "ok:" not in result.stdout:
            fail("consumer_c_static exited with %d" % result.returncode)
    finally:
        if args.keep:
            print("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("ok: installed tree and pkg-config consumers (C, C++, C static)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
