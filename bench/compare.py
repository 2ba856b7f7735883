#!/usr/bin/env python3
"""libalexnet against PyTorch and ONNX Runtime, measured in the same session and interleaved.

    python3 bench/compare.py sweep       libalexnet alone: one alexnet_bench process per configuration
                                         (FMA peak, per-layer GFLOP/s, latency/throughput, peak RSS, load)
    python3 bench/compare.py compare     libalexnet vs PyTorch (default and tuned glibc malloc) vs ONNX
                                         Runtime (or OpenCV dnn), A B A B ... per round, ratios per round
    python3 bench/compare.py contention  a busy loop pinned to CPU 0; 1-thread vs 2-thread batch-1 latency
                                         of libalexnet and of PyTorch
    python3 bench/compare.py all         the three, one JSON object and one markdown report
    python3 bench/compare.py train       training images/s (alexnet_trainer_step) vs PyTorch (default and
                                         tuned glibc malloc) on the Fashion-MNIST network and torchvision's
                                         AlexNet, interleaved rounds, ratios per round (not part of "all")

Build the C program first (its own build directory, release):
    meson setup build-bench --buildtype=release && ninja -C build-bench

Every mode writes a markdown report to stdout (and --markdown FILE) and a JSON object to --json FILE.
The machine is shared and noisy: each figure is the median over rounds of per-round medians, with the
min-max over rounds as its spread, and every ratio is taken within one round (same minutes, same noise)
before the median of ratios is taken.

Frameworks: PyTorch is Debian's (--torch-python, default /usr/bin/python3); ONNX Runtime is pip's, in a
virtual environment created on first use (--ort-venv, default ~/.cache/alexnet-bench-venv, made with
--system-site-packages so Debian's numpy and torch stay visible); if pip cannot install it, OpenCV's dnn
module from Debian's python3-opencv is used instead, and the report says so; where both are available,
OpenCV dnn runs as a second anchor beside ONNX Runtime (--no-opencv leaves it out). The ONNX model is exported
with torch.onnx.export from Debian's torch. Only the Python standard library is used in this file.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FRAMEWORKS_PY = os.path.join(HERE, "frameworks.py")
DEFAULT_BENCH = os.path.join(ROOT, "build-bench", "bench", "alexnet_bench")
DEFAULT_VENV = os.path.join(os.path.expanduser("~"), ".cache", "alexnet-bench-venv")
BIG = str(1 << 30)
TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": BIG, "MALLOC_TRIM_THRESHOLD_": BIG, "MALLOC_TOP_PAD_": BIG}

# The targets of the performance issue (docs/PERFORMANCE.md).
TARGETS = {
    "latency_vs_pytorch_best": 0.5,     # batch-1 latency libalexnet / PyTorch best <= 0.5
    "latency_vs_ort": 0.6,              # ... / ONNX Runtime (or OpenCV) <= 0.6
    "throughput_vs_pytorch_best": 1.2,  # batch-64 throughput libalexnet / PyTorch best >= 1.2
    "fraction_of_compute_floor": 0.8,   # batch-64 throughput >= 80% of peak / FLOPs-per-image
    "conv_fraction_of_peak": 0.75,      # convolution layers >= 75% of the FMA peak
    "contention_2t_over_1t": 1.3,       # under contention, 2-thread latency <= 1.3x 1-thread
    "rss_over_weights": 1.25,           # batch-1 peak RSS <= 1.25x the fp32 weight bytes
    "load_seconds": 0.5,                # alexnet_model_load <= 0.5 s
    "train_vs_pytorch_best": 1.2,       # training images/s libalexnet / PyTorch best >= 1.2
}
# train mode: the networks and their default batches (--batches replaces them for every variant)
TRAIN_VARIANTS = ("fashion", "torchvision", "one-tower", "paper")
TRAIN_BATCHES = {"fashion": [64, 128], "torchvision": [64], "one-tower": [64], "paper": [64]}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def spread(values):
    """{median, min, max, n} of a list (None-free), or None when empty."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(s, digits=1, unit=""):
    if s is None:
        return "n/a"
    return f"{s['median']:.{digits}f}{unit} [{s['min']:.{digits}f}-{s['max']:.{digits}f}]"


def csv_ints(text):
    return [int(x) for x in text.split(",") if x.strip()]


def csv_strs(text):
    return [x.strip() for x in text.split(",") if x.strip()]


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[:3]
    except OSError:
        return None


def wait_for_quiet(threshold, max_wait):
    """Wait (at most max_wait s) until the 1-minute load average is below threshold. Returns the seconds
    waited and whether it got there: the report says so, since a busy machine hurts spinning thread pools
    (PyTorch's OpenMP, ONNX Runtime's) more than libalexnet's sleeping one."""
    start = time.time()
    while True:
        avg = loadavg()
        if avg is None or float(avg[0]) < threshold:
            return {"waited_s": time.time() - start, "quiet": True, "threshold": threshold}
        if time.time() - start >= max_wait:
            return {"waited_s": time.time() - start, "quiet": False, "threshold": threshold}
        log(f"compare.py: load average {avg[0]} >= {threshold}, waiting ...")
        time.sleep(10)


def machine_info():
    info = {"platform": platform.platform(), "python": sys.version.split()[0]}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        keep = ("Architecture", "Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket", "Socket(s)",
                "CPU max MHz", "Hypervisor vendor", "L1d cache", "L2 cache", "L3 cache")
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in keep:
                info[key.strip()] = value.strip()
        flags = next((l.split(":", 1)[1].split() for l in out.splitlines() if l.startswith("Flags")), [])
        info["simd"] = [f for f in ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                                    "avx512_vnni", "avx512_bf16") if f in flags]
    except (OSError, subprocess.SubprocessError):
        pass
    return info


# ---- libalexnet: one alexnet_bench process per block ---------------------------------------------------------

class Lib:
    def __init__(self, args, tmp):
        self.bench = os.path.abspath(args.bench)
        if not os.access(self.bench, os.X_OK):
            raise SystemExit(f"compare.py: {self.bench} is not built: meson setup build-bench "
                             f"--buildtype=release && ninja -C build-bench")
        self.backend = args.backend
        self.isa = args.isa
        self.tmp = tmp
        self.weights = {}

    def base_argv(self, variant):
        argv = [self.bench, "--variant", variant, "--backend", self.backend, "--quiet", "--json", "-"]
        if self.isa:
            argv += ["--isa", self.isa]
        return argv

    def weights_for(self, variant):
        """Seeded weights saved once per variant, so that each block only loads (0.2 s, not 1.5 s)."""
        if variant not in self.weights:
            path = os.path.join(self.tmp, f"{variant}.safetensors")
            subprocess.run([self.bench, "--variant", variant, "--save-weights", path, "--quiet"], check=True)
            self.weights[variant] = path
        return self.weights[variant]

    def run(self, variant, batch, threads, warmup, min_iterations, max_seconds, full=False, cold_load=False,
            env=None):
        argv = self.base_argv(variant) + ["--batch", str(batch), "--threads", str(threads), "--warmup",
                                          str(warmup), "--min-iterations", str(min_iterations), "--iterations",
                                          "10000", "--max-seconds", str(max_seconds)]
        if full:
            argv += ["--profile-iterations", "3", "--load-repeats", "3"] + (["--cold-load"] if cold_load else [])
        else:
            argv += ["--no-peak", "--profile-iterations", "0", "--load-repeats", "1", "--weights",
                     self.weights_for(variant)]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env)
        try:
            result = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise SystemExit(f"compare.py: alexnet_bench failed ({proc.returncode}): {proc.stderr.strip()}")
        if not result.get("ok"):
            raise SystemExit(f"compare.py: alexnet_bench failed: {result.get('error')}")
        return result


# ---- frameworks: persistent workers ---------------------------------------------------------------------------

class Worker:
    def __init__(self, name, python, framework, variant, threads, tmp, onnx=None, env_extra=None):
        self.name = name
        env = dict(os.environ)
        env.update(env_extra or {})
        argv = [python, FRAMEWORKS_PY, "worker", framework, "--variant", variant, "--threads", str(threads)]
        if onnx:
            argv += ["--onnx", onnx]
        self.log_path = os.path.join(tmp, f"{name}-{variant}-{threads}t.log")
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log_file,
                                     text=True, env=env)
        line = self.proc.stdout.readline()
        if not line:
            self.fail("did not start")
        self.ready = json.loads(line)
        self.first_batch1_rss = None

    def fail(self, what):
        self.log_file.flush()
        with open(self.log_path) as f:
            tail = f.read()[-2000:]
        raise SystemExit(f"compare.py: worker {self.name} {what}:\n{tail}")

    def measure(self, batch, warmup, min_iterations, max_seconds):
        request = {"batch": batch, "warmup": warmup, "min_iterations": min_iterations, "max_iterations": 10000,
                   "max_seconds": max_seconds}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.fail("died")
        reply = json.loads(line)
        if batch == 1 and self.first_batch1_rss is None:
            self.first_batch1_rss = reply.get("vm_hwm_kib") or reply.get("ru_maxrss_kib")
        return reply

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def framework_versions(python):
    try:
        out = subprocess.run([python, FRAMEWORKS_PY, "versions"], capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError):
        return None


def ensure_ort(args):
    """(python, kind, note): the interpreter for the ONNX side and whether it is ONNX Runtime or OpenCV."""
    if args.no_ort:
        return None, None, "ONNX Runtime / OpenCV comparison disabled (--no-ort)"
    if args.onnx_engine == "opencv":
        versions = framework_versions(args.torch_python)
        if versions and versions.get("cv2"):
            return args.torch_python, "opencv", f"OpenCV {versions['cv2']} dnn (Debian python3-opencv), asked for"
        return None, None, "OpenCV asked for, but python3-opencv is not installed"
    venv_python = os.path.join(args.ort_venv, "bin", "python")
    versions = framework_versions(venv_python) if os.access(venv_python, os.X_OK) else None
    if not (versions and versions.get("onnxruntime")):
        log(f"compare.py: creating {args.ort_venv} and pip-installing onnxruntime ...")
        try:
            subprocess.run([args.torch_python, "-m", "venv", "--system-site-packages", args.ort_venv], check=True)
            subprocess.run([venv_python, "-m", "pip", "install", "--quiet", "onnxruntime"], check=True,
                           timeout=900)
            versions = framework_versions(venv_python)
        except (OSError, subprocess.SubprocessError) as e:
            log(f"compare.py: pip could not install onnxruntime: {e}")
            versions = None
    if versions and versions.get("onnxruntime"):
        return venv_python, "ort", f"ONNX Runtime {versions['onnxruntime']} (pip, {args.ort_venv})"
    versions = framework_versions(args.torch_python)
    if versions and versions.get("cv2"):
        return args.torch_python, "opencv", (f"OpenCV {versions['cv2']} dnn (Debian python3-opencv): "
                                             f"ONNX Runtime could not be installed with pip")
    return None, None, "neither ONNX Runtime (pip) nor OpenCV (apt-get install python3-opencv) is available"


def export_onnx(args, variant, tmp):
    path = os.path.join(tmp, f"{variant}.onnx")
    if not os.path.exists(path):
        log(f"compare.py: exporting {variant} to ONNX ...")
        subprocess.run([args.torch_python, FRAMEWORKS_PY, "export", "--variant", variant, "--out", path],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


def block_plan(args, batch):
    """(warmup, min_iterations, max_seconds) of one measuring block at this batch."""
    if batch == 1:
        return args.warmup, max(args.min_iterations, 5), args.block_seconds
    return 1, args.min_iterations, args.block_seconds


# ---- compare ---------------------------------------------------------------------------------------------------

def run_compare(args, tmp):
    lib = Lib(args, tmp)
    ort_python, ort_kind, ort_note = ensure_ort(args)
    torch_versions = framework_versions(args.torch_python) or {}
    # OpenCV dnn as a second anchor beside ONNX Runtime (the issue names either) where Debian's is installed
    opencv_version = None
    if ort_kind == "ort" and args.opencv:
        opencv_version = (framework_versions(args.torch_python) or {}).get("cv2")
    systems = ["libalexnet", "pytorch", "pytorch-tuned"] + (["onnx"] if ort_python else []) + \
        (["opencv"] if opencv_version else [])
    labels = {"libalexnet": "libalexnet", "pytorch": "PyTorch", "pytorch-tuned": "PyTorch, tuned malloc",
              "onnx": "ONNX Runtime" if ort_kind == "ort" else "OpenCV dnn", "opencv": "OpenCV dnn"}
    if opencv_version:
        ort_note += f"; OpenCV {opencv_version} dnn (Debian python3-opencv) on the same ONNX file"
    result = {"mode": "compare", "threads": args.threads, "rounds": args.rounds, "batches": args.batches,
              "systems": systems, "labels": labels, "onnx_note": ort_note,
              "pytorch": {k: torch_versions.get(k) for k in ("torch", "torchvision", "numpy")},
              "tuned_malloc_env": TUNED_MALLOC, "variants": {}}
    for variant in args.variants:
        log(f"compare.py: {variant}: starting workers ...")
        workers = {
            "pytorch": Worker("pytorch", args.torch_python, "torch", variant, args.threads, tmp),
            "pytorch-tuned": Worker("pytorch-tuned", args.torch_python, "torch", variant, args.threads, tmp,
                                    env_extra=TUNED_MALLOC),
        }
        if ort_python:
            workers["onnx"] = Worker("onnx", ort_python, ort_kind, variant, args.threads, tmp,
                                     onnx=export_onnx(args, variant, tmp))
        if opencv_version:
            workers["opencv"] = Worker("opencv", args.torch_python, "opencv", variant, args.threads, tmp,
                                       onnx=export_onnx(args, variant, tmp))
        # cells[batch][system] = list of per-round medians (ms per batch); rss from the first batch-1 block
        cells = {b: {s: [] for s in systems} for b in args.batches}
        lib_info = {}
        skipped = {}
        try:
            for r in range(args.rounds):
                for batch in args.batches:
                    order = systems[r % len(systems):] + systems[:r % len(systems)]  # rotate: A B C, B C A, ...
                    warmup, min_it, max_s = block_plan(args, batch)
                    for system in order:
                        if system == "libalexnet":
                            if batch in skipped:
                                continue
                            per_image = lib_info.get("per_image_ms")
                            if per_image is not None:
                                estimate = (warmup + min_it) * batch * per_image / 1e3
                                if estimate > args.max_block_seconds:
                                    skipped[batch] = estimate
                                    log(f"compare.py: skipping libalexnet batch {batch}: ~{estimate:.0f} s a "
                                        f"block (> --max-block-seconds {args.max_block_seconds})")
                                    continue
                            out = lib.run(variant, batch, args.threads, warmup, min_it, max_s)
                            med = out["time_ms"]["median"]
                            lib_info.setdefault("backend", out["backend"])
                            lib_info.setdefault("backend_description", out["backend_description"])
                            lib_info.setdefault("isa_env", out["isa_env"])
                            lib_info.setdefault("per_image_ms", med / batch)
                            if batch == 1 and "rss_kib" not in lib_info:
                                lib_info["rss_kib"] = out["memory"]["vm_hwm_kib"]
                                lib_info["weight_bytes"] = out["model"]["weight_bytes"]
                        else:
                            reply = workers[system].measure(batch, warmup, min_it, max_s)
                            med = statistics.median(reply["runs_ms"])
                        cells[batch][system].append(med)
                        log(f"  round {r + 1}/{args.rounds} {variant} batch {batch:3d} {system:14s} "
                            f"{med:10.2f} ms/batch  {batch * 1e3 / med:8.2f} img/s")
                        time.sleep(args.pause)
        finally:
            for w in workers.values():
                w.close()
        vresult = {"libalexnet": lib_info, "skipped_lib_batches": skipped, "batches": {},
                   "framework_info": {k: w.ready["info"] for k, w in workers.items()},
                   "batch1_peak_rss_kib": {"libalexnet": lib_info.get("rss_kib"),
                                           **{k: w.first_batch1_rss for k, w in workers.items()}}}
        for batch in args.batches:
            per_round = cells[batch]
            entry = {"ms_per_batch": {s: spread(per_round[s]) for s in systems},
                     "images_per_s": {s: spread([batch * 1e3 / m for m in per_round[s]]) for s in systems},
                     "per_round_ms": per_round}
            n = min(len(v) for v in per_round.values()) if per_round else 0
            lib_rounds = per_round["libalexnet"]
            ratios = {}
            if lib_rounds:
                best = [min(per_round["pytorch"][i], per_round["pytorch-tuned"][i]) for i in range(n)]
                # time ratio lib/other (latency: lower is better); throughput ratio = its inverse
                ratios["pytorch_best"] = [lib_rounds[i] / best[i] for i in range(n)]
                ratios["pytorch"] = [lib_rounds[i] / per_round["pytorch"][i] for i in range(n)]
                ratios["pytorch-tuned"] = [lib_rounds[i] / per_round["pytorch-tuned"][i] for i in range(n)]
                for anchor in ("onnx", "opencv"):
                    if anchor in systems:
                        ratios[anchor] = [lib_rounds[i] / per_round[anchor][i] for i in range(n)]
            entry["latency_ratio"] = {k: spread(v) for k, v in ratios.items()}
            entry["throughput_ratio"] = {k: spread([1.0 / x for x in v]) for k, v in ratios.items()}
            vresult["batches"][str(batch)] = entry
        result["variants"][variant] = vresult
    return result


def markdown_compare(res):
    labels = res["labels"]
    systems = res["systems"]
    lines = [f"### libalexnet vs frameworks ({res['threads']} threads, {res['rounds']} interleaved rounds)", ""]
    lines.append(f"PyTorch {res['pytorch'].get('torch')} / torchvision {res['pytorch'].get('torchvision')} "
                 f"(Debian); {res['onnx_note']}. Tuned malloc: "
                 + " ".join(f"{k}={v}" for k, v in res["tuned_malloc_env"].items()) + ".")
    lines.append("Cells: median over rounds of each round's median [min-max over rounds]. Batch 1: latency in ms "
                 "and the time ratio libalexnet/other (lower is better); larger batches: images/s and the "
                 "throughput ratio libalexnet/other (higher is better). \"best\" = the faster PyTorch setting in "
                 "each round.")
    lines.append("")
    head = ["variant", "batch"] + [labels[s] for s in systems] + ["vs PyTorch best"] + \
        [f"vs {labels[s]}" for s in systems if s in ("onnx", "opencv")]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for variant, v in res["variants"].items():
        for batch, e in v["batches"].items():
            b = int(batch)
            row = [variant, batch]
            for s in systems:
                row.append(fmt(e["ms_per_batch"][s], 2, " ms") if b == 1 else fmt(e["images_per_s"][s], 1, " img/s"))
            key = "latency_ratio" if b == 1 else "throughput_ratio"
            for k in ["pytorch_best"] + [s for s in systems if s in ("onnx", "opencv")]:
                row.append(fmt(e[key].get(k), 2, "x"))
            lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for variant, v in res["variants"].items():
        rss = v["batch1_peak_rss_kib"]
        lib = v["libalexnet"]
        parts = [f"{labels.get(k, k)} {val / 1024:.0f} MiB" for k, val in rss.items() if val]
        if not parts:
            continue
        lines.append(f"- {variant}: libalexnet backend `{lib.get('backend')}` ({lib.get('backend_description')}); "
                     f"batch-1 peak RSS (fresh process, VmHWM): " + ", ".join(parts))
        for batch, est in v["skipped_lib_batches"].items():
            lines.append(f"  - libalexnet batch {batch} skipped: a block would take ~{est:.0f} s")
    return "\n".join(lines)


# ---- train -----------------------------------------------------------------------------------------------------

class TrainLib:
    """libalexnet's side of train mode: one process per block, alexnet_bench --train where that program
    knows the variant (it has no "fashion"), else bench/train_bench (--train-driver chooses). "auto" is
    resolved first with train_bench --which-backend (the public API does not say which backend a trainer
    got, and alexnet_bench reports only the request), and the resolved name is what both programs get."""

    def __init__(self, args, tmp):
        self.bench = os.path.abspath(args.bench)
        self.train_bench = os.path.abspath(args.train_bench or os.path.join(os.path.dirname(self.bench),
                                                                              "train_bench"))
        self.driver = args.train_driver
        self.tmp = tmp
        self.isa = args.isa
        self.weights = {}
        self.bench_variants = self._bench_train_variants()
        self.has_train_bench = os.access(self.train_bench, os.X_OK)
        if not self.has_train_bench and not self.bench_variants:
            raise SystemExit(f"compare.py: neither {self.train_bench} nor an alexnet_bench with --train is built: "
                             f"meson setup build-bench --buildtype=release && ninja -C build-bench")
        self.requested_backend = args.backend
        self.backend = args.backend
        self.resolve_note = None
        if self.has_train_bench and args.backend in ("auto", "cpu"):
            proc = subprocess.run([self.train_bench, "--which-backend", "--backend", args.backend, "--threads",
                                   str(args.threads)], capture_output=True, text=True, env=self.env())
            if proc.returncode == 0 and proc.stdout.strip():
                self.backend = proc.stdout.strip().splitlines()[-1]
                self.resolve_note = f'"{args.backend}" trains on {self.backend}'
            else:
                raise SystemExit(f"compare.py: no backend can train: {proc.stderr.strip()}")

    def env(self):
        env = dict(os.environ)
        if self.isa:
            env["ALEXNET_CPU_ISA"] = self.isa
        return env

    def _bench_train_variants(self):
        """The variants alexnet_bench --train takes (none if it has no --train)."""
        if not os.access(self.bench, os.X_OK):
            return set()
        proc = subprocess.run([self.bench, "--help"], capture_output=True, text=True)
        text = proc.stdout + proc.stderr
        if "--train" not in text:
            return set()
        line = next((l for l in text.splitlines() if l.strip().startswith("--variant")), "")
        words = line.split()
        return set(words[1].split("|")) if len(words) > 1 else set()

    def driver_for(self, variant):
        if self.driver == "alexnet_bench" or (self.driver == "auto" and variant in self.bench_variants):
            if variant not in self.bench_variants:
                raise SystemExit(f"compare.py: {self.bench} has no --train for variant {variant}")
            return "alexnet_bench"
        if not self.has_train_bench:
            raise SystemExit(f"compare.py: {self.train_bench} is not built (needed for variant {variant})")
        return "train_bench"

    def weights_for(self, variant):
        if variant not in self.weights:
            path = os.path.join(self.tmp, f"{variant}.safetensors")
            subprocess.run([self.bench, "--variant", variant, "--save-weights", path, "--quiet"], check=True)
            self.weights[variant] = path
        return self.weights[variant]

    def run(self, variant, batch, threads, warmup, min_steps, max_seconds, timeout):
        """{ms (median per step), backend, description, driver, cpu_per_wall, losses}, or None on timeout."""
        driver = self.driver_for(variant)
        if driver == "alexnet_bench":
            argv = [self.bench, "--train", "--variant", variant, "--backend", self.backend, "--quiet", "--json", "-",
                    "--batch", str(batch), "--threads", str(threads), "--warmup", str(warmup), "--min-iterations",
                    str(min_steps), "--iterations", "10000", "--max-seconds", str(max_seconds), "--no-peak",
                    "--profile-iterations", "0", "--load-repeats", "1", "--weights", self.weights_for(variant)]
        else:
            argv = [self.train_bench, "--variant", variant, "--backend", self.backend, "--quiet", "--json", "-",
                    "--batch", str(batch), "--threads", str(threads), "--warmup", str(warmup), "--min-steps",
                    str(min_steps), "--max-steps", "10000", "--max-seconds", str(max_seconds)]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=self.env(), timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        try:
            out = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise SystemExit(f"compare.py: {driver} failed ({proc.returncode}): {proc.stderr.strip()}")
        if not out.get("ok"):
            raise SystemExit(f"compare.py: {driver} failed: {out.get('error')}")
        backend = out.get("backend")
        if backend in (None, "", "auto", "cpu"):
            backend = self.backend
        return {"ms": out["time_ms"]["median"], "backend": backend,
                "description": out.get("backend_description") or "", "driver": driver,
                "cpu_per_wall": out.get("cpu_per_wall"), "steps": out["time_ms"].get("n"),
                "parameters": out.get("parameters") or (out.get("model") or {}).get("parameters"),
                "first_loss": (out.get("train") or {}).get("first_loss"),
                "last_loss": (out.get("train") or {}).get("last_loss")}


def run_train(args, tmp):
    lib = TrainLib(args, tmp)
    torch_versions = framework_versions(args.torch_python) or {}
    systems = ["libalexnet", "pytorch", "pytorch-tuned"]
    labels = {"libalexnet": "libalexnet", "pytorch": "PyTorch", "pytorch-tuned": "PyTorch, tuned malloc"}
    result = {"mode": "train", "threads": args.threads, "rounds": args.rounds, "systems": systems,
              "labels": labels, "backend_request": lib.requested_backend, "backend_resolved": lib.backend,
              "backend_note": lib.resolve_note, "driver": args.train_driver,
              "block": {"warmup_steps": args.warmup, "min_steps": args.min_iterations,
                        "seconds": args.block_seconds},
              "pytorch": {k: torch_versions.get(k) for k in ("torch", "torchvision", "numpy")},
              "pytorch_step": "model.train(); optimizer.zero_grad(); CrossEntropyLoss(model(x), y).backward(); "
                              "optimizer.step() with SGD(lr=0.01, momentum=0.9, weight_decay=5e-4)",
              "tuned_malloc_env": TUNED_MALLOC, "batches": {}, "variants": {}}
    log(f"compare.py: train: libalexnet backend {lib.backend}"
        + (f" (requested {lib.requested_backend})" if lib.backend != lib.requested_backend else ""))
    for variant in args.variants:
        batches = args.batches or TRAIN_BATCHES[variant]
        result["batches"][variant] = batches
        log(f"compare.py: train {variant}: starting PyTorch workers ...")
        workers = {
            "pytorch": Worker("pytorch-train", args.torch_python, "torch-train", variant, args.threads, tmp),
            "pytorch-tuned": Worker("pytorch-train-tuned", args.torch_python, "torch-train", variant, args.threads,
                                    tmp, env_extra=TUNED_MALLOC),
        }
        cells = {b: {s: [] for s in systems} for b in batches}
        lib_cpu = {b: [] for b in batches}
        lib_info = {}
        skipped = {}
        try:
            for r in range(args.rounds):
                for batch in batches:
                    order = systems[r % len(systems):] + systems[:r % len(systems)]  # rotate: A B C, B C A, ...
                    warmup, min_steps, max_s = args.warmup, args.min_iterations, args.block_seconds
                    for system in order:
                        if system == "libalexnet":
                            if batch in skipped:
                                continue
                            per_image = lib_info.get("per_image_ms")
                            if per_image is not None:
                                estimate = (warmup + min_steps) * batch * per_image / 1e3
                                if estimate > args.max_block_seconds:
                                    skipped[batch] = estimate
                                    log(f"compare.py: skipping libalexnet {variant} batch {batch}: ~{estimate:.0f} s "
                                        f"a block (> --max-block-seconds {args.max_block_seconds})")
                                    continue
                            # the first block has no estimate: a time limit instead
                            timeout = max(3 * args.max_block_seconds, 120.0)
                            out = lib.run(variant, batch, args.threads, warmup, min_steps, max_s, timeout)
                            if out is None:
                                skipped[batch] = timeout
                                log(f"compare.py: libalexnet {variant} batch {batch} ran past {timeout:.0f} s: skipped")
                                continue
                            med = out["ms"]
                            lib_cpu[batch].append(out["cpu_per_wall"])
                            for k in ("backend", "description", "driver", "parameters"):
                                lib_info.setdefault(k, out[k])
                            lib_info.setdefault("per_image_ms", med / batch)
                            lib_info.setdefault("losses", []).append([out["first_loss"], out["last_loss"]])
                        else:
                            reply = workers[system].measure(batch, warmup, min_steps, max_s)
                            med = statistics.median(reply["runs_ms"])
                        cells[batch][system].append(med)
                        log(f"  train round {r + 1}/{args.rounds} {variant} batch {batch:3d} {system:14s} "
                            f"{med:10.2f} ms/step  {batch * 1e3 / med:8.2f} img/s")
                        time.sleep(args.pause)
        finally:
            for w in workers.values():
                w.close()
        vresult = {"libalexnet": lib_info, "skipped_lib_batches": skipped, "batches": {},
                   "framework_info": {k: w.ready["info"] for k, w in workers.items()},
                   "parameters": {"libalexnet": lib_info.get("parameters"),
                                  "pytorch": workers["pytorch"].ready.get("parameters")}}
        for batch in batches:
            per_round = cells[batch]
            entry = {"ms_per_step": {s: spread(per_round[s]) for s in systems},
                     "images_per_s": {s: spread([batch * 1e3 / m for m in per_round[s]]) for s in systems},
                     "per_round_ms": per_round, "libalexnet_cpu_per_wall": spread(lib_cpu[batch])}
            n = min(len(v) for v in per_round.values())
            ratios = {}
            if n:
                lib_rounds = per_round["libalexnet"]
                # throughput ratio libalexnet / other = other's ms / libalexnet's ms, within each round
                ratios["pytorch_best"] = [min(per_round["pytorch"][i], per_round["pytorch-tuned"][i]) / lib_rounds[i]
                                          for i in range(n)]
                for other in ("pytorch", "pytorch-tuned"):
                    ratios[other] = [per_round[other][i] / lib_rounds[i] for i in range(n)]
            entry["throughput_ratio"] = {k: spread(v) for k, v in ratios.items()}
            vresult["batches"][str(batch)] = entry
        result["variants"][variant] = vresult
    return result


def markdown_train(res):
    labels = res["labels"]
    systems = res["systems"]
    block = res.get("block", {})
    lines = [f"### Training: libalexnet vs PyTorch ({res['threads']} threads, {res['rounds']} interleaved rounds)", ""]
    lines.append(f"Images/s of one training step (forward, backward, SGD update with momentum 0.9 and weight decay "
                 f"5e-4, dropout 0.5). PyTorch {res['pytorch'].get('torch')} / torchvision "
                 f"{res['pytorch'].get('torchvision')} (Debian): `{res['pytorch_step']}`. Tuned malloc: "
                 + " ".join(f"{k}={v}" for k, v in res["tuned_malloc_env"].items()) + ".")
    lines.append(f"Each block: {block.get('warmup_steps')} warm-up steps, then timed steps (at least "
                 f"{block.get('min_steps')}, until {block.get('seconds')} s), median. Cells: median over rounds "
                 f"of each round's median [min-max over rounds]; ratios libalexnet/other are taken within a round "
                 f"(higher is better); \"best\" = the faster PyTorch setting in each round.")
    lines.append("")
    head = ["variant", "batch"] + [labels[s] for s in systems] + ["vs PyTorch best", "vs PyTorch",
                                                                   "vs PyTorch, tuned malloc"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for variant, v in res["variants"].items():
        for batch, e in sorted(v["batches"].items(), key=lambda kv: int(kv[0])):
            row = [variant, batch] + [fmt(e["images_per_s"][s], 1, " img/s") for s in systems]
            row += [fmt(e["throughput_ratio"].get(k), 2, "x") for k in ("pytorch_best", "pytorch", "pytorch-tuned")]
            lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for variant, v in res["variants"].items():
        lib = v["libalexnet"]
        params = v.get("parameters") or {}
        cpu = [e["libalexnet_cpu_per_wall"]["median"] for e in v["batches"].values()
               if e.get("libalexnet_cpu_per_wall")]
        lines.append(f"- {variant}: libalexnet trained on backend `{lib.get('backend')}` "
                     f"({lib.get('description') or 'no description'}), driver `{lib.get('driver')}`"
                     + (f", CPU s / wall s {', '.join(f'{c:.2f}' for c in cpu)}" if cpu else "")
                     + f"; parameters libalexnet {params.get('libalexnet')}, PyTorch {params.get('pytorch')}")
        for batch, est in v["skipped_lib_batches"].items():
            lines.append(f"  - libalexnet batch {batch} skipped: a block would take ~{est:.0f} s")
    if res.get("backend_note"):
        lines.append(f"- backend: {res['backend_note']}")
    return "\n".join(lines)


# ---- contention ------------------------------------------------------------------------------------------------

def start_hog(cpu, max_seconds=900):
    # It stops by itself when compare.py is gone (its parent changes) or after max_seconds, whatever
    # happens to compare.py.
    code = ("import os, time\n"
            f"parent, deadline = os.getppid(), time.time() + {max_seconds}\n"
            "while os.getppid() == parent and time.time() < deadline:\n"
            "    for _ in range(100000): pass\n")
    if shutil.which("taskset"):
        argv = ["taskset", "-c", str(cpu), sys.executable, "-c", code]
        return subprocess.Popen(argv)
    return subprocess.Popen([sys.executable, "-c", code], preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))


def run_contention(args, tmp):
    lib = Lib(args, tmp)
    variant = args.variants[0]
    threads_pair = (1, args.threads if args.threads > 1 else 2)
    result = {"mode": "contention", "variant": variant, "rounds": args.rounds, "threads": list(threads_pair),
              "hog": f"busy loop pinned to CPU {args.hog_cpu} (taskset)", "phases": {}}
    workers = {t: Worker("pytorch-contention", args.torch_python, "torch", variant, t, tmp)
               for t in threads_pair}
    phases = ["idle", "contended"] if args.baseline else ["contended"]
    lib_backend = None
    try:
        for phase in phases:
            hog = start_hog(args.hog_cpu) if phase == "contended" else None
            try:
                if hog:
                    time.sleep(0.5)
                runs = {f"{sys_}-{t}t": [] for sys_ in ("libalexnet", "pytorch") for t in threads_pair}
                for r in range(args.rounds):
                    order = list(runs)
                    if r % 2:
                        order.reverse()  # A B C D, D C B A, ...: linear drift cancels
                    for key in order:
                        system, t = key.rsplit("-", 1)
                        t = int(t[:-1])
                        if system == "libalexnet":
                            out = lib.run(variant, 1, t, args.warmup, 5, args.block_seconds)
                            lib_backend = out["backend"]
                            med = out["time_ms"]["median"]
                        else:
                            reply = workers[t].measure(1, args.warmup, 5, args.block_seconds)
                            med = statistics.median(reply["runs_ms"])
                        runs[key].append(med)
                        log(f"  {phase:9s} round {r + 1}/{args.rounds} {key:15s} {med:10.2f} ms")
                        time.sleep(args.pause)
            finally:
                if hog:
                    hog.send_signal(signal.SIGTERM)
                    hog.wait()
            t1, t2 = threads_pair
            entry = {"latency_ms": {k: spread(v) for k, v in runs.items()}, "per_round_ms": runs}
            for system in ("libalexnet", "pytorch"):
                a, b = runs[f"{system}-{t1}t"], runs[f"{system}-{t2}t"]
                entry[f"{system}_{t2}t_over_{t1}t"] = spread([b[i] / a[i] for i in range(min(len(a), len(b)))])
            result["phases"][phase] = entry
    finally:
        for w in workers.values():
            w.close()
    result["libalexnet_backend"] = lib_backend
    return result


def markdown_contention(res):
    t1, t2 = res["threads"]
    lines = [f"### Contention: {res['hog']}, {res['variant']}, batch 1, {res['rounds']} rounds", "",
             f"| phase | libalexnet {t1}t | libalexnet {t2}t | lib {t2}t/{t1}t | PyTorch {t1}t | PyTorch {t2}t | "
             f"PyTorch {t2}t/{t1}t |", "|---|---|---|---|---|---|---|"]
    for phase, e in res["phases"].items():
        lat = e["latency_ms"]
        lines.append(f"| {phase} | {fmt(lat[f'libalexnet-{t1}t'], 2, ' ms')} | {fmt(lat[f'libalexnet-{t2}t'], 2, ' ms')}"
                     f" | {fmt(e[f'libalexnet_{t2}t_over_{t1}t'], 2, 'x')} | {fmt(lat[f'pytorch-{t1}t'], 2, ' ms')}"
                     f" | {fmt(lat[f'pytorch-{t2}t'], 2, ' ms')} | {fmt(e[f'pytorch_{t2}t_over_{t1}t'], 2, 'x')} |")
    lines.append("")
    lines.append(f"libalexnet backend: `{res.get('libalexnet_backend')}`. Target: {t2}-thread latency within "
                 f"{TARGETS['contention_2t_over_1t']}x of {t1}-thread under contention.")
    return "\n".join(lines)


# ---- sweep -----------------------------------------------------------------------------------------------------

def probe_peaks(run):
    """(peak GFLOP/s, bandwidth GB/s) that one alexnet_bench JSON measured by itself (0 where absent)."""
    peak = run.get("peak") or {}
    threads = min(run["threads"], run["cpu"]["online"] or run["threads"])
    gflops = 0.0
    for isa in ("avx2", "avx512"):
        p = peak.get(isa)
        if p:
            gflops = max(gflops, p["threads"]["best_gflops"], threads * p["single_thread"]["best_gflops"])
    bw = run.get("bandwidth") or {}
    gbps = max(bw.get("single_thread", {}).get("best_gbps", 0.0), bw.get("threads", {}).get("best_gbps", 0.0))
    return gflops, gbps


def rebase(run, gflops, gbps):
    """Recompute a run's fractions against the session's peak and bandwidth (the best any probe of the
    session saw: a probe that ran while the machine was busy reads low and would flatter the fractions)."""
    run["own_peak_gflops"], run["own_bandwidth_gbps"] = probe_peaks(run)
    run["peak_gflops_used"], run["bandwidth_gbps_used"] = gflops, gbps
    fpi = run.get("flops_per_image") or 0.0
    t = run["time_ms"]["median"]
    if gflops > 0 and fpi > 0:
        run["compute_floor_images_per_s"] = gflops * 1e9 / fpi
        run["fraction_of_compute_floor"] = (run["batch"] * 1e3 / t) / run["compute_floor_images_per_s"]
    if gbps > 0:
        run["weight_stream_floor_ms"] = run["model"]["weight_bytes"] / (gbps * 1e9) * 1e3
    for layer in run.get("layers") or []:
        if layer["flops"] and gflops > 0:
            layer["fraction_of_peak"] = layer["gflops"] / gflops
    if run.get("conv") and gflops > 0:
        run["conv"]["fraction_of_peak"] = run["conv"]["gflops"] / gflops


def run_sweep(args, tmp):
    lib = Lib(args, tmp)
    runs = []
    skipped = []
    # A longer probe first; every run also probes, and the best of all of them is the session's peak.
    probe = subprocess.run([lib.bench, "--peak-only", "--peak-trials", "40", "--threads", str(args.threads),
                            "--quiet", "--json", "-"], capture_output=True, text=True)
    probe = json.loads(probe.stdout)
    best_gflops, best_gbps = probe_peaks(probe)
    best_gflops = max(best_gflops, args.peak_gflops)
    best_gbps = max(best_gbps, args.bandwidth_gbps)
    for r in range(args.sweep_rounds):
        for variant in args.variants:
            per_image_ms = None
            for batch in args.batches:
                warmup, min_it, max_s = block_plan(args, batch)
                if per_image_ms is not None:
                    # warm-up + timed runs + 1 + 3 profiled runs
                    estimate = (warmup + min_it + 4) * batch * per_image_ms / 1e3
                    if estimate > args.max_block_seconds:
                        log(f"compare.py: sweep: skipping {variant} batch {batch}: ~{estimate:.0f} s "
                            f"(> --max-block-seconds {args.max_block_seconds})")
                        skipped.append({"variant": variant, "batch": batch, "estimated_seconds": estimate})
                        continue
                out = lib.run(variant, batch, args.threads, warmup, min_it, max(max_s, args.sweep_seconds),
                              full=True, cold_load=batch == 1)
                g, b = probe_peaks(out)
                best_gflops, best_gbps = max(best_gflops, g), max(best_gbps, b)
                if per_image_ms is None:
                    per_image_ms = out["time_ms"]["median"] / batch
                out["round"] = r
                runs.append(out)
                log(f"  sweep {variant} batch {batch}: {out['time_ms']['median']:.2f} ms/batch "
                    f"({out['backend']}), RSS {out['memory']['vm_hwm_kib'] / 1024:.0f} MiB")
    for out in runs:
        rebase(out, best_gflops, best_gbps)
    return {"mode": "sweep", "threads": args.threads, "runs": runs, "skipped": skipped, "probe": probe,
            "peak_gflops": best_gflops, "bandwidth_gbps": best_gbps}


def markdown_sweep(res):
    lines = [f"### libalexnet alone ({res['threads']} threads; one process per row)", ""]
    runs = res["runs"]
    if res.get("probe", {}).get("peak"):
        p = res["probe"]["peak"]
        parts = []
        for isa in ("avx2", "avx512"):
            if p.get(isa):
                parts.append(f"{isa}: {p[isa]['single_thread']['best_gflops']:.1f} GFLOP/s on 1 thread, "
                             f"{p[isa]['threads']['best_gflops']:.1f} on {p[isa]['threads']['threads']} "
                             f"(median {p[isa]['threads']['median_gflops']:.1f})")
        lines.append("FMA peak probe before the sweep: " + "; ".join(parts) + ".")
        bw = res["probe"].get("bandwidth")
        if bw:
            lines.append(f"Memory read bandwidth: {bw['single_thread']['best_gbps']:.1f} GB/s on 1 thread, "
                         f"{bw['threads']['best_gbps']:.1f} on {bw['threads']['threads']}.")
        lines.append(f"Fractions below use the best any probe of this session saw: {res['peak_gflops']:.1f} GFLOP/s "
                     f"(the larger of the N-thread best and N x the 1-thread best) and "
                     f"{res['bandwidth_gbps']:.1f} GB/s.")
        lines.append("")
    lines.append("| variant | batch | backend | ISA env | ms/batch median [min-max] | img/s | % of compute floor "
                 "| x weight-stream floor | conv % of peak | CPU s / wall s | peak RSS MiB (x weights) "
                 "| load ms [min-max] | cold load ms |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for o in runs:
        t = o["time_ms"]
        conv = o.get("conv") or {}
        floor = o.get("fraction_of_compute_floor")
        mem = o["memory"]
        load = o["model"].get("load_ms")
        cells = [o["variant"], str(o["batch"]), o["backend"], o["isa_env"] or "auto",
                 f"{t['median']:.2f} [{t['min']:.2f}-{t['max']:.2f}]",
                 f"{o['throughput_images_per_s']['median']:.2f}",
                 f"{100 * floor:.1f}%" if floor is not None else "n/a",
                 f"{t['median'] / o['weight_stream_floor_ms']:.2f}x" if o.get("weight_stream_floor_ms") else "n/a",
                 f"{100 * conv['fraction_of_peak']:.1f}%" if conv.get("fraction_of_peak") is not None else "n/a",
                 f"{o['cpu_per_wall']:.2f}" if o.get("cpu_per_wall") is not None else "n/a",
                 f"{mem['vm_hwm_kib'] / 1024:.0f} ({mem['ratio_to_weights']:.2f}x)",
                 f"{load['median']:.0f} [{load['min']:.0f}-{load['max']:.0f}]" if load else "n/a",
                 f"{o['model']['cold_load_ms']:.0f}" if o["model"].get("cold_load_ms") is not None else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    for o in runs:
        if o.get("warning"):
            lines.append(f"\n**Warning** ({o['variant']} batch {o['batch']}): {o['warning']}")
    for sk in res.get("skipped", []):
        lines.append(f"\n{sk['variant']} batch {sk['batch']} skipped: it would take ~{sk['estimated_seconds']:.0f} s.")
    lines.append("")
    for o in runs:
        if not o.get("layers"):
            continue
        lines.append(f"Per layer, {o['variant']} batch {o['batch']} ({o['backend']}, median of "
                     f"{o['profile_runs']} profiled runs):")
        lines.append("")
        lines.append("| layer | ms | GFLOP/s | % of peak | weight GB/s |")
        lines.append("|---|---|---|---|---|")
        for layer in o["layers"]:
            frac = layer.get("fraction_of_peak")
            wgb = layer.get("weight_gbps") if layer["type"] == "fc" else None
            lines.append("| " + " | ".join([
                layer["name"], f"{layer['ms']:.3f}",
                f"{layer['gflops']:.1f}" if layer["flops"] else "",
                f"{100 * frac:.1f}%" if layer["flops"] and frac is not None else "",
                f"{wgb:.1f}" if wgb else ""]) + " |")
        lines.append("")
    return "\n".join(lines)


# ---- targets ---------------------------------------------------------------------------------------------------

def check_targets(report):
    """One row per target that this report has data for: (name, measured, target, ok)."""
    rows = []
    cmp_ = report.get("compare")
    if cmp_:
        for variant, v in cmp_["variants"].items():
            e1 = v["batches"].get("1")
            if e1:
                lr = e1["latency_ratio"]
                if lr.get("pytorch_best"):
                    m = lr["pytorch_best"]["median"]
                    rows.append((f"{variant}: batch-1 latency / PyTorch best", f"{m:.2f}x",
                                 f"<= {TARGETS['latency_vs_pytorch_best']}x", m <= TARGETS["latency_vs_pytorch_best"]))
                for anchor in ("onnx", "opencv"):
                    if lr.get(anchor):
                        m = lr[anchor]["median"]
                        rows.append((f"{variant}: batch-1 latency / {cmp_['labels'][anchor]}", f"{m:.2f}x",
                                     f"<= {TARGETS['latency_vs_ort']}x", m <= TARGETS["latency_vs_ort"]))
            e64 = v["batches"].get("64")
            if e64 and e64["throughput_ratio"].get("pytorch_best"):
                m = e64["throughput_ratio"]["pytorch_best"]["median"]
                rows.append((f"{variant}: batch-64 throughput / PyTorch best", f"{m:.2f}x",
                             f">= {TARGETS['throughput_vs_pytorch_best']}x", m >= TARGETS["throughput_vs_pytorch_best"]))
    train = report.get("train")
    if train:
        for variant, v in train["variants"].items():
            for batch, e in v["batches"].items():
                s = e["throughput_ratio"].get("pytorch_best")
                if s:
                    m = s["median"]
                    rows.append((f"{variant} batch {batch}: training images/s / PyTorch best", f"{m:.2f}x",
                                 f">= {TARGETS['train_vs_pytorch_best']}x", m >= TARGETS["train_vs_pytorch_best"]))
    sweep = report.get("sweep")
    if sweep:
        for o in sweep["runs"]:
            name = f"{o['variant']} batch {o['batch']}"
            if o["batch"] == 64 and o.get("fraction_of_compute_floor") is not None:
                m = o["fraction_of_compute_floor"]
                rows.append((f"{name}: throughput / compute floor", f"{100 * m:.1f}%",
                             f">= {100 * TARGETS['fraction_of_compute_floor']:.0f}%",
                             m >= TARGETS["fraction_of_compute_floor"]))
            if o.get("conv") and o["conv"].get("fraction_of_peak") is not None:
                m = o["conv"]["fraction_of_peak"]
                rows.append((f"{name}: conv layers / FMA peak", f"{100 * m:.1f}%",
                             f">= {100 * TARGETS['conv_fraction_of_peak']:.0f}%", m >= TARGETS["conv_fraction_of_peak"]))
            if o["batch"] == 1:
                m = o["memory"]["ratio_to_weights"]
                rows.append((f"{name}: peak RSS / fp32 weights", f"{m:.3f}x", f"<= {TARGETS['rss_over_weights']}x",
                             m <= TARGETS["rss_over_weights"]))
                if o["model"].get("load_ms"):
                    m = o["model"]["load_ms"]["median"] / 1e3
                    rows.append((f"{o['variant']}: model load (warm page cache)", f"{m:.3f} s",
                                 f"<= {TARGETS['load_seconds']} s", m <= TARGETS["load_seconds"]))
    cont = report.get("contention")
    if cont and "contended" in cont["phases"]:
        t1, t2 = cont["threads"]
        s = cont["phases"]["contended"].get(f"libalexnet_{t2}t_over_{t1}t")
        if s:
            m = s["median"]
            rows.append((f"contention: libalexnet {t2}t / {t1}t latency", f"{m:.2f}x",
                         f"<= {TARGETS['contention_2t_over_1t']}x", m <= TARGETS["contention_2t_over_1t"]))
    return rows


def markdown_targets(rows):
    lines = ["### Targets", "", "| target | measured | goal | met |", "|---|---|---|---|"]
    for name, measured, goal, ok in rows:
        lines.append(f"| {name} | {measured} | {goal} | {'yes' if ok else 'no'} |")
    return "\n".join(lines)


# ---- main ------------------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", default="compare",
                        choices=("sweep", "compare", "contention", "all", "train"))
    parser.add_argument("--bench", default=DEFAULT_BENCH, help="the alexnet_bench program (%(default)s)")
    parser.add_argument("--backend", default="auto", help="libalexnet backend (default auto)")
    parser.add_argument("--isa", help="ALEXNET_CPU_ISA for libalexnet (scalar, avx2, avx512; default: auto)")
    parser.add_argument("--variants", type=csv_strs,
                        help="comma-separated: torchvision, one-tower, paper (default torchvision,one-tower); "
                             "contention uses the first; train also takes fashion (default fashion,torchvision)")
    parser.add_argument("--batches", type=csv_ints,
                        help="default 1,8,64; train: 64,128 for fashion and 64 for the others")
    parser.add_argument("--threads", type=int, default=2, help="threads for every system (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up runs per batch-1 block (default 2)")
    parser.add_argument("--min-iterations", type=int, default=3, help="timed runs per block at least (default 3)")
    parser.add_argument("--block-seconds", type=float, default=1.5,
                        help="a block stops timing after this once min-iterations ran (default 1.5)")
    parser.add_argument("--max-block-seconds", type=float,
                        help="skip a libalexnet block estimated to take longer (default 60, train 300; the "
                             "reference backend at batch 64)")
    parser.add_argument("--sweep-rounds", type=int, default=1, help="processes per sweep configuration (default 1)")
    parser.add_argument("--sweep-seconds", type=float, default=3.0, help="timing budget per sweep process (default 3)")
    parser.add_argument("--pause", type=float, default=0.1, help="seconds between blocks (default 0.1)")
    parser.add_argument("--peak-gflops", type=float, default=0.0,
                        help="sweep: fractions use at least this peak (GFLOP/s), e.g. from a quiet moment")
    parser.add_argument("--bandwidth-gbps", type=float, default=0.0,
                        help="sweep: the weight-streaming floor uses at least this bandwidth (GB/s)")
    parser.add_argument("--hog-cpu", type=int, default=0, help="CPU the contention busy loop is pinned to")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="contention: skip the idle phase")
    parser.add_argument("--train-driver", choices=("auto", "alexnet_bench", "train_bench"), default="auto",
                        help="train: libalexnet's program; auto: alexnet_bench --train where it knows the variant, "
                             "else train_bench")
    parser.add_argument("--train-bench", help="train: the train_bench program (default: beside --bench)")
    parser.add_argument("--torch-python", default="/usr/bin/python3", help="interpreter with Debian's torch")
    parser.add_argument("--ort-venv", default=DEFAULT_VENV, help="virtual environment for onnxruntime")
    parser.add_argument("--no-ort", action="store_true", help="leave ONNX Runtime / OpenCV out")
    parser.add_argument("--onnx-engine", choices=("auto", "opencv"), default="auto",
                        help="auto: ONNX Runtime, else OpenCV dnn; opencv: OpenCV dnn only")
    parser.add_argument("--no-opencv", dest="opencv", action="store_false",
                        help="with ONNX Runtime, do not also run OpenCV dnn (it runs where python3-opencv is "
                             "installed)")
    parser.add_argument("--quiet-load", type=float, default=0.0,
                        help="first wait until the 1-minute load average is below this (0 = do not wait)")
    parser.add_argument("--quiet-wait", type=float, default=300.0, help="... for at most this many seconds")
    parser.add_argument("--json", help="write the JSON object here")
    parser.add_argument("--from-json", action="append", metavar="FILE",
                        help="measure nothing: print the markdown of saved JSON report(s), merged in order")
    parser.add_argument("--markdown", help="write the markdown report here too")
    args = parser.parse_args()
    # Ascending, so that each framework worker's first batch-1 block comes before any larger batch and its
    # peak RSS then is the batch-1 figure (libalexnet runs a fresh process per block anyway).
    if args.max_block_seconds is None:
        args.max_block_seconds = 300.0 if args.mode == "train" else 60.0
    if args.mode == "train":
        args.variants = args.variants or ["fashion", "torchvision"]
        known = TRAIN_VARIANTS
    else:
        args.variants = args.variants or ["torchvision", "one-tower"]
        args.batches = args.batches or [1, 8, 64]
        known = ("torchvision", "one-tower", "paper")
    if args.batches:
        args.batches = sorted(set(args.batches))
    for v in args.variants:
        if v not in known:
            parser.error(f"unknown variant {v} for {args.mode}")

    # SIGTERM / SIGHUP (and SIGINT where a background shell ignored it) unwind through the finally blocks,
    # which stop the busy loop and the framework workers.
    def stop(signum, frame):
        raise SystemExit(f"compare.py: stopped by signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, stop)
    if args.from_json:
        report = {}
        for path in args.from_json:
            with open(path) as f:
                part = json.load(f)
            olds = {mode: report.get(mode) for mode in ("compare", "train")}
            report.update(part)
            for mode, old in olds.items():
                if not (old and mode in part):
                    continue
                # two compare (or train) runs, say batches 1,8 and batch 64: keep both, batch by batch
                new = part[mode]
                merged = json.loads(json.dumps(old))
                for variant, v in new["variants"].items():
                    mv = merged["variants"].setdefault(variant, v)
                    if mv is not v:
                        mv["batches"].update(v["batches"])
                        mv["skipped_lib_batches"].update(v["skipped_lib_batches"])
                if mode == "compare":
                    merged["batches"] = sorted(set(old["batches"]) | set(new["batches"]))
                else:
                    for variant, b in new["batches"].items():
                        merged["batches"][variant] = sorted(set(merged["batches"].get(variant, [])) | set(b))
                merged["rounds"] = f"{old['rounds']}/{new['rounds']}"
                merged["seconds"] = old.get("seconds", 0) + new.get("seconds", 0)
                merged["loadavg_end"] = new.get("loadavg_end")
                report[mode] = merged
        report.pop("partial", None)
        print(render(report))
        return 0
    quiet = wait_for_quiet(args.quiet_load, args.quiet_wait) if args.quiet_load > 0 else None
    started = time.time()
    report = {"tool": "bench/compare.py",
              "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "machine": machine_info(), "loadavg_start": loadavg(), "quiet_wait": quiet, "argv": sys.argv[1:]}

    def save_partial():
        # After each mode: a run stopped later still leaves what it measured.
        if args.json:
            with open(args.json, "w") as f:
                json.dump(dict(report, partial=True), f, indent=1)

    def timed(run):
        date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        before, t0 = loadavg(), time.time()
        result = run(args, tmp)
        result.update(date=date, seconds=time.time() - t0, loadavg_start=before, loadavg_end=loadavg())
        return result

    with tempfile.TemporaryDirectory(prefix="alexnet-compare-") as tmp:
        if args.mode in ("sweep", "all"):
            report["sweep"] = timed(run_sweep)
            save_partial()
        if args.mode in ("compare", "all"):
            report["compare"] = timed(run_compare)
            save_partial()
        if args.mode in ("contention", "all"):
            report["contention"] = timed(run_contention)
        if args.mode == "train":
            report["train"] = timed(run_train)
    report["loadavg_end"] = loadavg()
    report["seconds"] = time.time() - started
    report["targets"] = [{"name": n, "measured": m, "goal": g, "met": ok} for n, m, g, ok in check_targets(report)]
    text = render(report)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    return 0


def render(report):
    """The markdown report of a (possibly merged) JSON report."""
    targets = check_targets(report)

    m = report["machine"]
    parts = [f"## libalexnet benchmark report ({report['date']})", "",
             f"Machine: {m.get('Model name', '?')}, {m.get('CPU(s)', '?')} CPUs, SIMD {' '.join(m.get('simd', []))}; "
             f"load average {' '.join(report.get('loadavg_start') or [])} at the start, "
             f"{' '.join(report.get('loadavg_end') or [])} at the end; {report.get('seconds', 0):.0f} s in all.", ""]
    for mode, render_mode in (("sweep", markdown_sweep), ("compare", markdown_compare),
                              ("contention", markdown_contention), ("train", markdown_train)):
        if mode in report:
            r = report[mode]
            parts += [render_mode(r), ""]
            if r.get("date"):
                parts += [f"_{mode}: {r['date']}, {r['seconds']:.0f} s, load average (1, 5, 15 min) "
                          f"{' '.join(r['loadavg_start'] or [])} before, {' '.join(r['loadavg_end'] or [])} after._", ""]
    if targets:
        parts += [markdown_targets(targets), ""]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
