#!/usr/bin/env python3
"""GPU benchmark: libalexnet's GPU backends against its CPU backends and PyTorch on the same machine.

    python3 bench/bench_gpu.py --build build-gpu --out gpu-logs/bench            # everything found
    python3 bench/bench_gpu.py --backends opencl,cpu-simd --batches 1,64 --no-torch # e.g. PoCL vs the CPU
    python3 bench/bench_gpu.py --variants one-tower,torchvision --train-batches 16 --no-torch

For every (backend, variant, batch) it runs build/bench/alexnet_bench in its own process with
ALEXNET_BACKEND_PATH pointing at the build's GPU modules, and keeps its JSON. With PyTorch and a CUDA device
present it also times torchvision-shaped AlexNet on the GPU in FP32 (TF32 off, as libalexnet's CUDA backend
computes; cudnn.benchmark on), eval mode, no autograd: the batch is already on the device for both
(libalexnet's time includes the upload of the input and the download of the logits, PyTorch's does not).
Training: for every (backend, variant, --train-batches entry) it also runs alexnet_bench --train, one
alexnet_trainer_step (forward, backward, SGD update) per timed run; a backend that cannot train is listed with
its reason. It writes OUT/summary.md (a table: median ms per batch and images/s) and OUT/results.json.
Backends that are unavailable are listed with their reason, never silently skipped.

Only the standard library is needed besides PyTorch (optional).
"""
import argparse
import json
import os
import subprocess
import sys
import time


def csv_list(text):
    return [item for item in text.split(",") if item]


def run_library(args, backend, variant, batch, train=False):
    """One alexnet_bench process (inference, or training steps); returns its JSON object (or an error record)."""
    bench = os.path.join(args.build, "bench", "alexnet_bench")
    env = dict(os.environ)
    env["ALEXNET_BACKEND_PATH"] = os.path.join(os.path.abspath(args.build), "lib", "gpu")
    env.setdefault("XDG_CACHE_HOME", os.path.join(os.path.abspath(args.out), "cache"))
    command = [bench, "--variant", variant, "--backend", backend, "--batch", str(batch), "--threads", "0",
               "--warmup", str(args.warmup), "--iterations", str(args.iterations), "--min-iterations", "1",
               "--max-seconds", str(args.max_seconds), "--profile-iterations", "1", "--load-repeats", "0",
               "--no-peak", "--quiet", "--json", "-"] + (["--train"] if train else [])
    started = time.time()
    try:
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "timed out after %.0f s" % args.timeout}
    log = os.path.join(args.out, "alexnet_bench-%s-%s-%s%d.json" % (backend, variant, "train-b" if train else "b",
                                                                       batch))
    with open(log, "w") as f:
        f.write(done.stdout)
        if done.stderr:
            f.write("\n/* stderr:\n%s*/\n" % done.stderr)
    try:
        result = json.loads(done.stdout)
    except ValueError:
        result = {"ok": False, "error": (done.stderr or done.stdout).strip()[-400:]}
    result["wall_s"] = time.time() - started
    return result


def median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def run_torch(args, variant, batch):
    """PyTorch on the GPU, or None with a reason."""
    try:
        import torch
        import torchvision
    except ImportError as error:
        return None, "PyTorch/torchvision not importable: %s" % error
    if not torch.cuda.is_available():
        return None, "PyTorch sees no CUDA device"
    if variant != "torchvision":
        return None, "only the torchvision variant is compared with PyTorch"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    try:
        net = torchvision.models.alexnet(weights=None)
    except TypeError:
        net = torchvision.models.alexnet(pretrained=False)
    net = net.cuda().eval()
    x = torch.randn(batch, 3, 224, 224, device="cuda")
    times = []
    with torch.inference_mode():
        for _ in range(max(args.warmup, 3)):
            torch.softmax(net(x), dim=1)
        torch.cuda.synchronize()
        deadline = time.time() + args.max_seconds
        while len(times) < args.iterations and (len(times) < 3 or time.time() < deadline):
            start = time.perf_counter()
            torch.softmax(net(x), dim=1)
            torch.cuda.synchronize()
            times.append(1e3 * (time.perf_counter() - start))
    return {"ok": True, "backend": "pytorch-cuda", "batch": batch, "runs_ms": times,
            "device": torch.cuda.get_device_name(0), "torch": torch.__version__}, None


def library_median_ms(result):
    runs = result.get("runs_ms")
    if isinstance(runs, list) and runs:
        return median(runs)
    time_ms = result.get("time_ms")
    if isinstance(time_ms, dict):
        return time_ms.get("median")
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build-gpu", help="meson build directory (default build-gpu)")
    parser.add_argument("--out", default="gpu-logs/bench", help="directory for the logs and the summary")
    parser.add_argument("--backends", type=csv_list, default=["cuda", "opencl", "cpu-simd"],
                        help="libalexnet backends, in order (default cuda,opencl,cpu-simd)")
    parser.add_argument("--variants", type=csv_list, default=["torchvision"], help="default torchvision")
    parser.add_argument("--batches", type=lambda t: [int(b) for b in csv_list(t)], default=[1, 64, 128],
                        help="default 1,64,128")
    parser.add_argument("--train-batches", type=lambda t: [int(b) for b in csv_list(t)], default=[64],
                        help="batches of the timed training step (default 64; '' for none)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--max-seconds", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per alexnet_bench process")
    parser.add_argument("--no-torch", action="store_true", help="do not time PyTorch")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    rows, results = [], []
    for variant in args.variants:
        for batch in args.batches:
            for backend in args.backends:
                r = run_library(args, backend, variant, batch)
                results.append(r)
                ms = library_median_ms(r) if r.get("ok") else None
                why = "" if r.get("ok") else (r.get("error") or "failed")
                rows.append((variant, "infer", batch, backend, r.get("backend_description", ""), ms, why))
                print("%-11s b%-4d %-10s %s" % (variant, batch, backend,
                                                 "%.3f ms" % ms if ms is not None else "n/a: " + why[:160]),
                      flush=True)
            if not args.no_torch:
                t, why = run_torch(args, variant, batch)
                ms = median(t["runs_ms"]) if t else None
                if t:
                    results.append(t)
                rows.append((variant, "infer", batch, "pytorch", t["device"] + ", torch " + t["torch"] if t else "",
                             ms, why or ""))
                print("%-11s b%-4d %-10s %s" % (variant, batch, "pytorch",
                                                 "%.3f ms" % ms if ms is not None else "n/a: " + why), flush=True)

        for batch in args.train_batches:
            for backend in args.backends:
                r = run_library(args, backend, variant, batch, train=True)
                results.append(r)
                ms = library_median_ms(r) if r.get("ok") else None
                why = "" if r.get("ok") else (r.get("error") or "failed")
                rows.append((variant, "train", batch, backend, r.get("backend_description", ""), ms, why))
                print("%-11s train b%-4d %-10s %s" % (variant, batch, backend,
                                                       "%.3f ms" % ms if ms is not None else "n/a: " + why[:160]),
                      flush=True)

    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    lines = ["| variant | mode | batch | system | median ms / batch | images/s | device or reason |",
             "|---|---|---:|---|---:|---:|---|"]
    for variant, mode, batch, system, description, ms, why in rows:
        if ms is not None:
            lines.append("| %s | %s | %d | %s | %.3f | %.1f | %s |" % (variant, mode, batch, system, ms,
                                                                       1e3 * batch / ms, description))
        else:
            lines.append("| %s | %s | %d | %s | n/a | n/a | %s |" % (variant, mode, batch, system,
                                                                     why.replace("|", "/")))
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
