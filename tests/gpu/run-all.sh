#!/bin/sh
# Everything a short GPU lease should run, in one command, with every log in one folder:
#   1. configure and build with the CUDA module required (a lease without nvcc and cuBLAS is a setup error,
#      not something to skip) and the OpenCL module where the headers are installed;
#   2. the GPU suite (meson test --suite gpu), with ALEXNET_GPU_TEST_REQUIRE=1 so that "no device" FAILS
#      instead of skipping: cuda-plugin, cuda-ops (every op against the reference, training ops, the
#      trainer), cuda-golden (the PyTorch goldens on CUDA), and the OpenCL tests;
#   3. the net, api and train suites again with ALEXNET_BACKEND=cuda (their "auto" contexts land on CUDA);
#   4. compute-sanitizer memcheck (and racecheck on the ops) over a short run, eager and with CUDA graphs;
#   5. the benchmark (bench/bench_gpu.sh): cuda, opencl, cpu-simd and PyTorch on the same GPU.
#
#   tests/gpu/run-all.sh [LOG_DIR]        (default $BUILD_DIR/gpu-logs/<date>; BUILD_DIR=build-gpu-lease)
#
# Exit status: non-zero when a step of 1, 2 or 4 failed. Step 3 is informative (tests that pin the
# reference backend by name may not expect CUDA under "auto") and step 5 only measures.
set -u
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build-gpu-lease}
LOG_DIR=${1:-$BUILD_DIR/gpu-logs/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$LOG_DIR"
LOG_DIR=$(cd "$LOG_DIR" && pwd)
status=0
step() { printf '\n=== %s\n' "$*" | tee -a "$LOG_DIR/summary.txt"; }
note() { printf '%s\n' "$*" | tee -a "$LOG_DIR/summary.txt"; }

step "machine"
{ uname -a; nvidia-smi 2>&1 || echo "nvidia-smi: not found"; /usr/local/cuda/bin/nvcc --version 2>&1 | tail -2; } \
    > "$LOG_DIR/machine.txt" 2>&1
head -20 "$LOG_DIR/machine.txt" | tee -a "$LOG_DIR/summary.txt"

step "1. build ($BUILD_DIR)"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    meson setup "$BUILD_DIR" --buildtype=release -Dcuda=enabled > "$LOG_DIR/meson-setup.log" 2>&1 ||
        { note "meson setup failed: see meson-setup.log"; tail -20 "$LOG_DIR/meson-setup.log"; exit 1; }
fi
ninja -C "$BUILD_DIR" > "$LOG_DIR/build.log" 2>&1 || { note "build failed: see build.log"; tail -30 "$LOG_DIR/build.log"; exit 1; }
note "built"

step "2. GPU suite"
ALEXNET_GPU_TEST_REQUIRE=1 meson test -C "$BUILD_DIR" --no-rebuild --suite gpu --print-errorlogs \
    > "$LOG_DIR/test-gpu.log" 2>&1 || status=1
cp "$BUILD_DIR/meson-logs/testlog.txt" "$LOG_DIR/test-gpu-testlog.txt" 2>/dev/null
grep -E '^ *[0-9]+/[0-9]+ ' "$LOG_DIR/test-gpu.log" | awk '!seen[$0]++' | tee -a "$LOG_DIR/summary.txt"
grep -E 'worst errors|^golden ' "$LOG_DIR/test-gpu-testlog.txt" | tee -a "$LOG_DIR/summary.txt"

step "3. net, api and train suites with ALEXNET_BACKEND=cuda (informative)"
ALEXNET_BACKEND=cuda ALEXNET_BACKEND_PATH="$PWD/$BUILD_DIR/lib/gpu" \
    meson test -C "$BUILD_DIR" --no-rebuild --suite net --suite api --suite train --print-errorlogs \
    > "$LOG_DIR/test-cuda-auto.log" 2>&1 || note "(some failed: see test-cuda-auto.log)"
grep -E '^ *[0-9]+/[0-9]+ ' "$LOG_DIR/test-cuda-auto.log" | awk '!seen[$0]++' | tee -a "$LOG_DIR/summary.txt"

step "4. compute-sanitizer"
SANITIZER=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [ -x "$SANITIZER" ]; then
    export ALEXNET_BACKEND_PATH="$PWD/$BUILD_DIR/lib/gpu" XDG_CACHE_HOME="$LOG_DIR/cache" ALEXNET_GPU_TEST_BACKEND=cuda
    for graphs in 0 1; do
        ALEXNET_CUDA_GRAPHS=$graphs "$SANITIZER" --tool memcheck --leak-check full --error-exitcode 99 \
            "$BUILD_DIR/tests/gpu/test_gpu_ops" > "$LOG_DIR/memcheck-ops-graphs$graphs.log" 2>&1 ||
            { status=1; note "memcheck (graphs=$graphs) FAILED: see memcheck-ops-graphs$graphs.log"; }
        tail -3 "$LOG_DIR/memcheck-ops-graphs$graphs.log" | tee -a "$LOG_DIR/summary.txt"
    done
    ALEXNET_CUDA_GRAPHS=0 "$SANITIZER" --tool racecheck --error-exitcode 99 "$BUILD_DIR/tests/gpu/test_gpu_ops" \
        > "$LOG_DIR/racecheck-ops.log" 2>&1 || { status=1; note "racecheck FAILED: see racecheck-ops.log"; }
    tail -3 "$LOG_DIR/racecheck-ops.log" | tee -a "$LOG_DIR/summary.txt"
    "$SANITIZER" --tool memcheck --error-exitcode 99 "$BUILD_DIR/bench/alexnet_bench" --backend cuda --batch 4 \
        --warmup 1 --iterations 2 --min-iterations 1 --profile-iterations 1 --load-repeats 0 --no-peak \
        > "$LOG_DIR/memcheck-bench.log" 2>&1 || { status=1; note "memcheck of alexnet_bench FAILED"; }
    tail -3 "$LOG_DIR/memcheck-bench.log" | tee -a "$LOG_DIR/summary.txt"
else
    note "compute-sanitizer not found: skipped"
fi

step "5. benchmark"
BUILD_DIR="$BUILD_DIR" bench/bench_gpu.sh "$LOG_DIR/bench" > "$LOG_DIR/bench-run.log" 2>&1 || note "benchmark failed: see bench-run.log"
cat "$LOG_DIR/bench/summary.md" 2>/dev/null | tee -a "$LOG_DIR/summary.txt"

step "done: status $status, logs in $LOG_DIR"
exit $status
