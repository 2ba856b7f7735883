#!/usr/bin/env bash
# CI stage: the NEON (AArch64) kernel set, cross-compiled with Debian's aarch64-linux-gnu toolchain and run
# under qemu-aarch64 (user mode). .ci/run runs it after its main stages; by hand (root, Debian 12):
#   bash .ci/stages/neon.sh            (ALEXNET_CI_JOBS=2, build in build-ci-neon)
#
#   install    the cross compilers, qemu-user and Check for arm64 (multiarch: check:arm64 beside check:amd64)
#   configure  meson setup --cross-file cross/aarch64-linux-gnu.ini (qemu-aarch64 -L /usr/aarch64-linux-gnu is
#              meson's exe_wrapper), strict warnings, GPU modules off
#   compile    the library, its NEON kernels and the tests below with -Werror (fatal), then the rest of the
#              tree (reported, not fatal)
#   tests      a subset chosen to run in a few minutes under qemu, which emulates floating point in software
#              (20-50x slower than native for this code):
#                - through meson test (the cross file's exe_wrapper is qemu): the NEON kernel tests against the
#                  scalar reference (tests/cpu/test_cpu_kernels with ALEXNET_CPU_ISA=neon: GEMM tiles,
#                  im2col, Winograd transforms, FC, pooling, LRN, softmax, ReLU, and the convolution drivers
#                  with 1-3 threads), the portable set the same way (=scalar), the training ops on the NEON
#                  GEMM microkernel against the reference backend's (tests/cpu/test_cpu_backward), and the
#                  public API tests
#                  (tests/api/test_api), whose seeded-initialisation hashes (INIT_HASH_PAPER /
#                  INIT_HASH_KAIMING) prove the weights are bit-identical on AArch64;
#                - the PyTorch goldens (tests/net/test_golden, which also checks each model's weight checksum)
#                  on cpu-simd with the NEON kernels and on the reference backend, for the small custom
#                  network and one full AlexNet (ALEXNET_NEON_GOLDEN_CASES), from a copy of
#                  tests/data/goldens.txt that holds only those cases.
# Each step prints its time; the stage prints its total. Knobs: ALEXNET_CI_JOBS, ALEXNET_NEON_BUILD_DIR,
# ALEXNET_NEON_GOLDEN_CASES (space-separated case names of tests/data/goldens.txt).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
cd "$repo_root"

build_dir=${ALEXNET_NEON_BUILD_DIR:-build-ci-neon}
jobs=${ALEXNET_CI_JOBS:-2}
golden_cases=${ALEXNET_NEON_GOLDEN_CASES:-custom-small paper-2012}
sysroot=/usr/aarch64-linux-gnu
# as in the cross file: the cross toolchain's loader and libc (not the multiarch libc6:arm64)
qemu=(qemu-aarch64 -L "$sysroot" -E LD_LIBRARY_PATH="$sysroot/lib")

neon_start=$SECONDS
step_start=$SECONDS
step_name=""
times=()

step() {
    end_step
    step_name=$1
    step_start=$SECONDS
    printf '\n---- neon: %s\n' "$step_name"
}
end_step() {
    if [ -n "$step_name" ]; then
        times+=("$(printf '%-64s %4ds' "$step_name" $((SECONDS - step_start)))")
        step_name=""
    fi
}
on_exit() {
    local rc=$?
    [ -n "$step_name" ] && [ "$rc" -ne 0 ] && times+=("$(printf '%-64s %4ds  FAILED' "$step_name" $((SECONDS - step_start)))")
    step_name=""
    printf '\n---- neon: step times\n'
    local line
    for line in "${times[@]}"; do
        printf '  %s\n' "$line"
    done
    printf -- '---- neon: %s in %ds\n' "$([ "$rc" -eq 0 ] && echo passed || echo FAILED)" $((SECONDS - neon_start))
}
trap on_exit EXIT

# ---------------------------------------------------------------------------------------------------------
step "install cross toolchain, qemu-user, check:arm64"
packages=(meson ninja-build pkg-config check gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross
          qemu-user check:arm64)
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        env DEBIAN_FRONTEND=noninteractive "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n env DEBIAN_FRONTEND=noninteractive "$@"
    else
        return 1
    fi
}
if as_root true; then
    # Check for arm64 comes from Debian's arm64 archive through multiarch (Multi-Arch: same, so it installs
    # beside the amd64 one the main build uses).
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        as_root dpkg --add-architecture arm64
    fi
    as_root apt-get update -q </dev/null
    as_root apt-get install -y -q --no-install-recommends "${packages[@]}" </dev/null
else
    echo "not root and no passwordless sudo: assuming ${packages[*]} are installed"
fi
aarch64-linux-gnu-gcc --version | head -n 1
qemu-aarch64 --version | head -n 1
echo "check for arm64: $(PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig pkg-config --modversion check)"

# ---------------------------------------------------------------------------------------------------------
step "configure (cross/aarch64-linux-gnu.ini)"
rm -rf "$build_dir"
meson setup "$build_dir" --cross-file cross/aarch64-linux-gnu.ini -Dwerror_strict=true \
    --buildtype=debugoptimized -Dopencl=disabled -Dcuda=disabled </dev/null

step "compile (library and the tests run here)"
# -Werror on AArch64 for the library, its NEON kernels and the test programs below: a failure here fails
# the stage.
meson compile -C "$build_dir" -j "$jobs" alexnet:shared_library alexnet:static_library test_cpu_kernels \
    test_cpu_backward test_api test_golden </dev/null
# The build must really have the NEON set in it (a build without it would skip the NEON tests).
grep -q -- '-DAN_HAVE_NEON_KERNELS=1' "$build_dir/compile_commands.json" || {
    echo "neon: the cross build did not enable the NEON kernels (lib/cpu/meson.build)" >&2
    exit 1
}

step "compile (the rest of the tree)"
# Everything else is compiled too, to catch AArch64-only warnings early, but a failure outside what this
# stage tests is reported rather than fatal: that code has its own stages on x86.
if ! ninja -C "$build_dir" -j "$jobs" -k 0 </dev/null >"$build_dir/neon-rest-of-tree.log" 2>&1; then
    echo "neon: NOTE: parts of the tree do not compile for AArch64 with -Werror (not fatal here):"
    grep -E '^FAILED|error:' "$build_dir/neon-rest-of-tree.log" | head -n 20
else
    echo "the whole tree compiles for AArch64 with -Werror"
fi

# ---------------------------------------------------------------------------------------------------------
# One test program under qemu: NAME then environment assignments, then -- PROGRAM [ARGS]. A program that
# exits 77 (Check tests for a kernel set this CPU cannot run) would be a skip: here that is a failure, since
# qemu-aarch64 always runs NEON.
tests_passed=0
run_test() {
    local name=$1
    shift
    local envs=()
    while [ "$1" != "--" ]; do
        envs+=("$1")
        shift
    done
    shift
    step "test $name"
    local rc=0
    env ALEXNET_TEST_DATA_DIR="$repo_root/tests/data" CK_DEFAULT_TIMEOUT=900 "${envs[@]}" \
        "${qemu[@]}" "$@" </dev/null || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "neon: $name failed (exit $rc) under ${qemu[*]}" >&2
        exit 1
    fi
    tests_passed=$((tests_passed + 1))
}

# Through meson, whose exe_wrapper (the cross file) is qemu: the kernel sets against the scalar reference, and
# the public API (its seeded-initialisation hashes). Every one must pass: a skip (exit 77, a set this build or
# CPU cannot run) counts as a failure here, since qemu-aarch64 always runs NEON.
step "tests through meson: cpu_kernels_neon, cpu_kernels_scalar, cpu_backward_neon, api"
meson test -C "$build_dir" --no-rebuild --print-errorlogs --num-processes "$jobs" \
    cpu_kernels_neon cpu_kernels_scalar cpu_backward_neon api </dev/null
python3 - "$build_dir/meson-logs/testlog.json" <<'EOF_PY'
import json, sys
results = [json.loads(line) for line in open(sys.argv[1])]
bad = [r["name"] + ": " + r["result"] for r in results if r["result"] != "OK"]
if len(results) != 4 or bad:
    sys.exit("neon: expected 4 tests to pass, got %d results; not OK: %s" % (len(results), ", ".join(bad) or "none"))
EOF_PY
tests_passed=$((tests_passed + 4))

step "goldens subset ($golden_cases)"
# The goldens for the chosen cases only: the same file format, the case count rewritten.
golden_dir="$build_dir/neon-goldens"
mkdir -p "$golden_dir"
awk -v keep=" $golden_cases " '
    /^goldens / { header = 1; count = 0; n = split(keep, names, " "); print "goldens", $2, n; next }
    /^case / { on = index(keep, " " $2 " ") > 0; count += on }
    !header || on { print }
    END { if (count != n) { print "neon: golden cases not found: " keep > "/dev/stderr"; exit 1 } }
' tests/data/goldens.txt >"$golden_dir/goldens.txt"
grep '^case ' "$golden_dir/goldens.txt"

# Directly under qemu, with the goldens subset: meson's registration pins ALEXNET_TEST_DATA_DIR, and the
# per-ISA golden registration goes through tests/cpu/isa_gate, whose execv of an AArch64 program needs
# binfmt_misc, which a CI container does not have.
run_test "goldens on cpu-simd, neon ($golden_cases)" ALEXNET_TEST_DATA_DIR="$golden_dir" ALEXNET_BACKEND=cpu-simd \
    ALEXNET_CPU_ISA=neon -- "$build_dir/tests/net/test_golden"
run_test "goldens on reference ($golden_cases)" ALEXNET_TEST_DATA_DIR="$golden_dir" ALEXNET_BACKEND=reference \
    -- "$build_dir/tests/net/test_golden"
end_step
echo "neon: $tests_passed test programs passed under qemu-aarch64"
