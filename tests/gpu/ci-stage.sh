#!/usr/bin/env bash
# CI stage for the GPU backends on a machine without a GPU (meant to run as .ci/stages/30-gpu-pocl.sh, see
# .ci/stages/README.md): installs PoCL (OpenCL on the CPU) and the OpenCL headers, builds in its own
# directory with the OpenCL module required and warnings as errors, and runs the 'gpu' suite:
#   - the plugin loader (missing modules, broken modules, host-services error routing);
#   - the OpenCL backend on PoCL: every op, forward and backward, against the reference, with the CPU-device
#     kernels and again with the GPU kernels forced; the PyTorch goldens both ways; a trainer against the
#     reference; the no-runtime and no-platform paths;
#   - the CUDA module where nvcc and cuBLAS exist: it must load and report "no CUDA device"; its device
#     tests are skipped (exit 77), never counted as passed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
build_dir=build-ci-gpu
jobs=${ALEXNET_CI_JOBS:-2}
packages=(pocl-opencl-icd ocl-icd-opencl-dev opencl-c-headers clinfo)
if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 install -y --no-install-recommends \
        "${packages[@]}" </dev/null
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 install -y \
        --no-install-recommends "${packages[@]}" </dev/null
else
    echo "not root and no passwordless sudo: assuming ${packages[*]} are installed"
fi
clinfo -l || true
if [ ! -f "$build_dir/build.ninja" ]; then
    meson setup "$build_dir" -Dopencl=enabled -Dwerror_strict=true </dev/null
fi
ninja -C "$build_dir" -j "$jobs" </dev/null
meson test -C "$build_dir" --no-rebuild --suite gpu --print-errorlogs --num-processes "$jobs" </dev/null
grep -E 'worst errors|^golden ' "$build_dir/meson-logs/testlog.txt" || true
