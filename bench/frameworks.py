#!/usr/bin/env python3
"""Framework side of bench/compare.py: PyTorch, ONNX Runtime and OpenCV-dnn runners for the same AlexNet
variants that libalexnet runs. Run it with the interpreter that has the framework (compare.py does):

    /usr/bin/python3 bench/frameworks.py versions
    /usr/bin/python3 bench/frameworks.py export --variant torchvision --out /tmp/alexnet.onnx
    /usr/bin/python3 bench/frameworks.py worker torch --variant torchvision --threads 2
    /usr/bin/python3 bench/frameworks.py worker torch-train --variant fashion --threads 2
    VENV/bin/python  bench/frameworks.py worker ort --variant torchvision --threads 2 --onnx /tmp/alexnet.onnx
    /usr/bin/python3 bench/frameworks.py worker opencv --variant torchvision --threads 2 --onnx /tmp/alexnet.onnx

A worker builds its model once, prints one JSON line {"ready": true, ...}, then answers each JSON line on
stdin ({"batch": B, "warmup": W, "min_iterations": K, "max_iterations": M, "max_seconds": S}) with one JSON
line of run times in milliseconds and its peak RSS so far; an empty line or {"quit": true} ends it. Keeping
the worker alive lets compare.py interleave A B A B blocks without paying the framework's import each time.
Weights are random (the frameworks' own initialisation): speed does not depend on their values.

"torch-train" times training steps instead (compare.py train): the network in train() mode, SGD (lr 0.01,
momentum 0.9, weight decay 5e-4), CrossEntropyLoss on the logits, and per step zero_grad + forward +
backward + optimizer.step on random inputs and labels (four batches in turn, as bench/train_bench.c does).
Its "fashion" variant is the network of examples/train_fashion_mnist.c on 1 x 28 x 28 images.

Only the Python standard library is used here besides the framework being measured.
"""
import argparse
import json
import os
import resource
import sys
import time

VARIANTS = ("torchvision", "one-tower", "paper", "fashion")
INPUT_SIZE = {"torchvision": 224, "one-tower": 227, "paper": 227, "fashion": 28}
INPUT_CHANNELS = {"fashion": 1}  # 3 for the others
TRAIN_BATCHES = 4  # random batches a training worker uses in turn


def build_torch_net(variant):
    """The PyTorch network (logits) for a libalexnet variant."""
    from torch import nn

    if variant == "fashion":
        # examples/train_fashion_mnist.c (make_model): five convolutions 32-64-96-96-64 with ReLU on
        # 1 x 28 x 28 (conv1 5 x 5 / 1 pad 2, the others 3 x 3 / 1 pad 1), 3 x 3 / 2 max pooling after conv1,
        # conv2 and conv5 (28 -> 13 -> 6 -> 2), then AlexNet's classifier at width 256 with dropout 0.5 before
        # fc1 and fc2, 10 classes.
        net = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 96, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(96, 96, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(96, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Flatten(),
            nn.Dropout(0.5), nn.Linear(64 * 2 * 2, 256), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(256, 256), nn.ReLU(inplace=True),
            nn.Linear(256, 10),
        )
    elif variant == "torchvision":
        import torchvision

        try:
            net = torchvision.models.alexnet(weights=None)
        except TypeError:  # torchvision < 0.13
            net = torchvision.models.alexnet(pretrained=False)
    elif variant in ("one-tower", "paper"):
        # The classic one-tower net, or the 2012 paper's two towers (groups=2) with LRN; torchvision's
        # classifier layout (dropout is the identity in eval mode). Same shapes as libalexnet's presets.
        paper = variant == "paper"
        g = 2 if paper else 1

        def lrn():
            return [nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)] if paper else []

        net = nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(inplace=True), *lrn(), nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, padding=2, groups=g), nn.ReLU(inplace=True), *lrn(), nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, padding=1, groups=g), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1, groups=g), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Flatten(),
            nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 1000),
        )
    else:
        raise SystemExit(f"unknown variant {variant}")
    return net


def build_torch_model(variant):
    """The PyTorch network for a libalexnet variant, followed by softmax as libalexnet computes it."""
    from torch import nn

    net = build_torch_net(variant)
    model = nn.Sequential(net, nn.Softmax(dim=1))
    model.eval()
    parameters = sum(p.numel() for p in net.parameters())
    return model, parameters


def peak_rss_kib():
    hwm = None
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, hwm


def versions():
    out = {"python": sys.version.split()[0], "executable": sys.executable}
    for name in ("torch", "torchvision", "onnxruntime", "cv2", "numpy"):
        try:
            module = __import__(name)
            out[name] = getattr(module, "__version__", "?")
        except Exception as e:  # noqa: BLE001 - any import failure just means "absent"
            out[name] = None
            out[name + "_error"] = f"{type(e).__name__}: {e}"[:200]
    return out


def export_onnx(variant, path, opset):
    import torch

    model, _ = build_torch_model(variant)
    size = INPUT_SIZE[variant]
    x = torch.randn(1, INPUT_CHANNELS.get(variant, 3), size, size)
    with torch.no_grad():
        torch.onnx.export(model, x, path, input_names=["input"], output_names=["probabilities"],
                          dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}},
                          opset_version=opset, do_constant_folding=True)


class TorchRunner:
    def __init__(self, variant, threads):
        import torch

        torch.set_num_threads(threads)
        self.torch = torch
        self.model, self.parameters = build_torch_model(variant)
        self.size = INPUT_SIZE[variant]
        self.channels = INPUT_CHANNELS.get(variant, 3)
        self.inputs = {}
        info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                "mkldnn": bool(torch.backends.mkldnn.is_available())}
        try:
            import torchvision

            info["torchvision"] = torchvision.__version__
        except ImportError:
            pass
        self.info = info

    def input(self, batch):
        if batch not in self.inputs:
            g = self.torch.Generator().manual_seed(batch)
            self.inputs[batch] = self.torch.randn(batch, self.channels, self.size, self.size, generator=g)
        return self.inputs[batch]

    def run(self, batch):
        x = self.input(batch)
        with self.torch.no_grad():
            self.model(x)


class TorchTrainRunner:
    """One training step per run(): zero_grad, forward, loss, backward, SGD step."""

    def __init__(self, variant, threads):
        import torch

        torch.set_num_threads(threads)
        self.torch = torch
        self.model = build_torch_net(variant)
        self.model.train()
        self.parameters = sum(p.numel() for p in self.model.parameters())
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.shape = (INPUT_CHANNELS.get(variant, 3), INPUT_SIZE[variant], INPUT_SIZE[variant])
        self.classes = 10 if variant == "fashion" else 1000
        self.inputs = {}
        self.step = 0
        self.last_loss = None
        info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                "mkldnn": bool(torch.backends.mkldnn.is_available()), "mode": "train",
                "optimizer": "SGD(lr=0.01, momentum=0.9, weight_decay=5e-4)", "loss": "CrossEntropyLoss"}
        try:
            import torchvision

            info["torchvision"] = torchvision.__version__
        except ImportError:
            pass
        self.info = info

    def input(self, batch):
        if batch not in self.inputs:
            g = self.torch.Generator().manual_seed(batch)
            # random uint8 pixels scaled to about zero mean and unit deviation, and random labels
            pixels = self.torch.randint(0, 256, (TRAIN_BATCHES, batch) + self.shape, generator=g)
            x = (pixels.float() / 255.0 - 0.5) / 0.29
            y = self.torch.randint(0, self.classes, (TRAIN_BATCHES, batch), generator=g)
            self.inputs[batch] = [(x[i].contiguous(), y[i].contiguous()) for i in range(TRAIN_BATCHES)]
        return self.inputs[batch]

    def run(self, batch):
        x, y = self.input(batch)[self.step % TRAIN_BATCHES]
        self.step += 1
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        self.last_loss = loss.item()


class OrtRunner:
    def __init__(self, variant, threads, onnx_path):
        import numpy as np
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(onnx_path, sess_options=options, providers=["CPUExecutionProvider"])
        self.name = self.session.get_inputs()[0].name
        self.np = np
        self.size = INPUT_SIZE[variant]
        self.inputs = {}
        self.parameters = None
        self.info = {"onnxruntime": ort.__version__, "threads": threads,
                     "providers": self.session.get_providers()}

    def input(self, batch):
        if batch not in self.inputs:
            rng = self.np.random.default_rng(batch)
            self.inputs[batch] = rng.standard_normal((batch, 3, self.size, self.size), dtype=self.np.float32)
        return self.inputs[batch]

    def run(self, batch):
        self.session.run(None, {self.name: self.input(batch)})


class OpenCvRunner:
    def __init__(self, variant, threads, onnx_path):
        import cv2
        import numpy as np

        cv2.setNumThreads(threads)
        self.cv2 = cv2
        self.net = cv2.dnn.readNetFromONNX(onnx_path)
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self.np = np
        self.size = INPUT_SIZE[variant]
        self.inputs = {}
        self.parameters = None
        self.info = {"opencv": cv2.__version__, "threads": cv2.getNumThreads()}

    def input(self, batch):
        if batch not in self.inputs:
            rng = self.np.random.default_rng(batch)
            self.inputs[batch] = rng.standard_normal((batch, 3, self.size, self.size), dtype=self.np.float32)
        return self.inputs[batch]

    def run(self, batch):
        self.net.setInput(self.input(batch))
        self.net.forward()


def worker(args):
    # The protocol goes to a private copy of stdout; anything a native library prints goes to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    start = time.perf_counter()
    if args.framework == "torch":
        runner = TorchRunner(args.variant, args.threads)
    elif args.framework == "torch-train":
        runner = TorchTrainRunner(args.variant, args.threads)
    elif args.framework == "ort":
        runner = OrtRunner(args.variant, args.threads, args.onnx)
    elif args.framework == "opencv":
        runner = OpenCvRunner(args.variant, args.threads, args.onnx)
    else:
        raise SystemExit(f"unknown framework {args.framework}")
    maxrss, hwm = peak_rss_kib()
    ready = {"ready": True, "framework": args.framework, "variant": args.variant, "setup_s":
             time.perf_counter() - start, "parameters": runner.parameters, "info": runner.info,
             "ru_maxrss_kib": maxrss, "vm_hwm_kib": hwm, "pid": os.getpid(),
             "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}}
    proto.write(json.dumps(ready) + "\n")
    for line in sys.stdin:
        line = line.strip()
        if not line:
            break
        request = json.loads(line)
        if request.get("quit"):
            break
        batch = int(request["batch"])
        for _ in range(int(request.get("warmup", 1))):
            runner.run(batch)
        runs = []
        min_iterations = int(request.get("min_iterations", 3))
        max_iterations = int(request.get("max_iterations", 1000))
        max_seconds = float(request.get("max_seconds", 2.0))
        begin = time.perf_counter()
        while len(runs) < max_iterations:
            if len(runs) >= min_iterations and time.perf_counter() - begin > max_seconds:
                break
            t0 = time.perf_counter()
            runner.run(batch)
            runs.append((time.perf_counter() - t0) * 1e3)
        maxrss, hwm = peak_rss_kib()
        reply = {"batch": batch, "runs_ms": runs, "ru_maxrss_kib": maxrss, "vm_hwm_kib": hwm}
        if getattr(runner, "last_loss", None) is not None:
            reply["last_loss"] = runner.last_loss
        proto.write(json.dumps(reply) + "\n")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("versions")
    p = sub.add_parser("export")
    p.add_argument("--variant", choices=VARIANTS, default="torchvision")
    p.add_argument("--out", required=True)
    p.add_argument("--opset", type=int, default=13)
    p = sub.add_parser("worker")
    p.add_argument("framework", choices=("torch", "torch-train", "ort", "opencv"))
    p.add_argument("--variant", choices=VARIANTS, default="torchvision")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--onnx")
    args = parser.parse_args()
    if args.command == "versions":
        print(json.dumps(versions()))
        return 0
    if args.command == "export":
        export_onnx(args.variant, args.out, args.opset)
        return 0
    return worker(args)


if __name__ == "__main__":
    sys.exit(main())
