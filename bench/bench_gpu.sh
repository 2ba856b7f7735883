#!/bin/sh
# The GPU benchmark in one command: configure and build (CUDA and OpenCL modules where the machine has
# them), then bench/bench_gpu.py: libalexnet's cuda, opencl and cpu-simd backends and PyTorch on the same
# GPU, batches 1, 64 and 128, logs and a markdown summary in one folder.
#
#   bench/bench_gpu.sh [LOG_DIR] [extra bench_gpu.py options...]
#
# LOG_DIR defaults to $BUILD_DIR/gpu-logs/<date>/bench. BUILD_DIR (default build-gpu-bench) and PYTHON (default
# python3; use one with torch for the PyTorch column) may be set in the environment.
set -eu
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-gpu-bench}
LOG_DIR=${1:-$BUILD_DIR/gpu-logs/$(date +%Y%m%d-%H%M%S)/bench}
[ $# -gt 0 ] && shift
# The first interpreter whose PyTorch sees a CUDA device, else plain python3 (the PyTorch column then says why).
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    for candidate in python3 /usr/bin/python3; do
        if "$candidate" -c 'import sys, torch, torchvision; sys.exit(0 if torch.cuda.is_available() else 1)' \
            > /dev/null 2>&1; then
            PYTHON=$candidate
            break
        fi
    done
fi
mkdir -p "$LOG_DIR"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    meson setup "$BUILD_DIR" --buildtype=release -Dtests=false > "$LOG_DIR/meson-setup.log" 2>&1
fi
ninja -C "$BUILD_DIR" > "$LOG_DIR/build.log" 2>&1 || { tail -30 "$LOG_DIR/build.log"; exit 1; }
command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi > "$LOG_DIR/nvidia-smi.txt" 2>&1 || true
"$PYTHON" bench/bench_gpu.py --build "$BUILD_DIR" --out "$LOG_DIR" "$@" 2>&1 | tee "$LOG_DIR/bench.log"
