#!/usr/bin/python3
"""Generate tests/data/goldens.txt: PyTorch's float64 logits for seeded libalexnet models.

Run with Debian's interpreter, which has torch, torchvision and numpy, on a built library:

    /usr/bin/python3 tools/make_goldens.py --lib build-golden/lib/libalexnet.so

For every case below the script asks the library (through ctypes) for a seeded model, saves it with
alexnet_model_save, reads that safetensors file back with the small reader here, and loads the weights
into an equivalent PyTorch model: torchvision.models.alexnet for the torchvision variant, an nn.Sequential
built from the model's alexnet_config (with the library's own tensor names, conv1.weight ... fc8.bias)
for the others. Both load with load_state_dict(strict=True), so a missing, surplus or misshapen tensor
stops the script. The reference runs in float64 on the float32 inputs, so the goldens are the exact result
that the library's float32 arithmetic must approach; tests/net/test_golden.c checks that it does.

Models use ALEXNET_INIT_KAIMING: the paper's initialisation (weights N(0, 0.01), biases 1) makes the logits
almost independent of the input, which would make a comparison of top-5 lists vacuous.

Inputs are test_fill_input() of tests/support/test_support.c, reproduced bit for bit in numpy.

The weight checksum is FNV-1a 64 over the raw little-endian bytes of every tensor, in file order (which is
the library's tensor order). The C test recomputes it from alexnet_model_tensor(); when the seeded
initialisation changes it says so and asks for the goldens to be regenerated. Computing it in pure Python
takes about a minute per full-size model; that is the slow part of this script.

Finally the script tests tools/convert_torchvision.py: it converts state_dicts saved with torch.save (a
randomly initialised torchvision.models.alexnet, and a conv1...fc8-named one-tower net), loads each result
with the library and compares one inference with PyTorch. --skip-convert-check leaves that out.

File format (text; whitespace separated tokens; '#' starts a comment that runs to the end of its line):
    goldens 1 CASES
    then CASES times:
    case NAME CONFIG SEED INIT CHANNELS HEIGHT WIDTH BATCH INPUT_SCALE CLASSES PARAMETERS CHECKSUM
        CONFIG: one-tower | paper-2012 | torchvision (the presets) | custom-small (see custom_small_config)
        INIT: kaiming; INPUT_SCALE: a power of two the inputs are multiplied by; CHECKSUM: 16 hex digits
    then BATCH times:
    image INDEX INPUT_SEED TOP1 TOP2 TOP3 TOP4 TOP5
        followed by CLASSES logits (%.9g), ten per line
    end
Image b of case number k (1-based, in file order) is test_fill_input(INPUT_SEED = 1000 * k + b) times
INPUT_SCALE.
"""

import argparse
import collections
import ctypes
import json
import os
import shlex
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision
from torch import nn

TOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(TOOLS_DIR)
DEFAULT_OUTPUT = os.path.join(REPO_DIR, "tests", "data", "goldens.txt")

FORMAT_VERSION = 1
BATCH = 3
TOP_K = 5
# The C test allows max|out - ref| / max|ref| <= 1e-4. Within that error, the top-5 order is only
# guaranteed when neighbouring logits (ranks 1..6) are at least twice as far apart; cases are chosen so.
TOLERANCE = 1e-4

# ---- ctypes mirror of include/alexnet/alexnet.h (the parts used here) ---------------------------------

c_u32 = ctypes.c_uint32
c_u64 = ctypes.c_uint64
c_size_t = ctypes.c_size_t
c_enum = ctypes.c_int  # the header's enums hold small values: int-sized on every supported ABI

ALEXNET_OK = 0
VARIANT_CUSTOM, VARIANT_ONE_TOWER, VARIANT_PAPER_2012, VARIANT_TORCHVISION = 0, 1, 2, 3
INIT_KAIMING = 3
LRN_ALPHA_OVER_SIZE, LRN_ALPHA_ABSOLUTE = 0, 1
DROPOUT_BEFORE_HIDDEN_FC, DROPOUT_AFTER_HIDDEN_FC = 0, 1
MAX_CONV_LAYERS = 8
MAX_HIDDEN_FC_LAYERS = 4

ALLOC_FN = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, c_size_t, c_size_t)
FREE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, c_size_t)


class Allocator(ctypes.Structure):
    _fields_ = [("alloc", ALLOC_FN), ("free", FREE_FN), ("user", ctypes.c_void_p)]


class ConvLayerConfig(ctypes.Structure):
    _fields_ = [("out_channels", c_u32), ("kernel_size", c_u32), ("stride", c_u32), ("padding", c_u32),
                ("groups", c_u32), ("lrn", c_u32), ("max_pool", c_u32)]


class Config(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("variant", c_enum), ("input_channels", c_u32),
                ("input_height", c_u32), ("input_width", c_u32), ("conv_count", c_u32),
                ("conv", ConvLayerConfig * MAX_CONV_LAYERS), ("pool_kernel", c_u32), ("pool_stride", c_u32),
                ("lrn_size", c_u32), ("lrn_alpha", ctypes.c_float), ("lrn_beta", ctypes.c_float),
                ("lrn_k", ctypes.c_float), ("lrn_alpha_scaling", c_enum), ("adaptive_pool_size", c_u32),
                ("hidden_fc_count", c_u32), ("hidden_fc", c_u32 * MAX_HIDDEN_FC_LAYERS), ("num_classes", c_u32),
                ("dropout_rate", ctypes.c_float), ("dropout_placement", c_enum)]


class ModelOptions(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("variant", c_enum), ("config", ctypes.POINTER(Config)),
                ("num_classes", c_u32), ("init", c_enum), ("allocator", Allocator)]


class TensorInfo(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("name", ctypes.c_char * 32), ("rank", c_u32), ("shape", c_u64 * 4),
                ("element_count", c_u64), ("data", ctypes.POINTER(ctypes.c_float))]


class ContextOptions(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("backend", ctypes.c_char_p), ("batch", c_u32), ("height", c_u32),
                ("width", c_u32), ("capture_layers", ctypes.POINTER(ctypes.c_char_p)), ("allocator", Allocator)]


P = ctypes.POINTER
VOIDP = ctypes.c_void_p
FLOATP = P(ctypes.c_float)
PROTOTYPES = {
    "alexnet_version_string": (ctypes.c_char_p, []),
    "alexnet_status_string": (ctypes.c_char_p, [c_enum]),
    "alexnet_last_error": (ctypes.c_char_p, []),
    "alexnet_config_preset": (c_enum, [c_enum, P(Config)]),
    "alexnet_config_validate": (c_enum, [P(Config)]),
    "alexnet_model_options_init": (None, [P(ModelOptions)]),
    "alexnet_model_create": (c_enum, [P(ModelOptions), c_u64, P(VOIDP)]),
    "alexnet_model_load": (c_enum, [ctypes.c_char_p, P(ModelOptions), P(VOIDP)]),
    "alexnet_model_save": (c_enum, [VOIDP, ctypes.c_char_p]),
    "alexnet_model_destroy": (None, [VOIDP]),
    "alexnet_model_get_config": (c_enum, [VOIDP, P(Config)]),
    "alexnet_model_parameter_count": (c_u64, [VOIDP]),
    "alexnet_model_tensor_count": (c_size_t, [VOIDP]),
    "alexnet_model_tensor": (c_enum, [VOIDP, c_size_t, P(TensorInfo)]),
    "alexnet_context_options_init": (None, [P(ContextOptions)]),
    "alexnet_context_create": (c_enum, [VOIDP, P(ContextOptions), P(VOIDP)]),
    "alexnet_context_destroy": (None, [VOIDP]),
    "alexnet_context_reshape": (c_enum, [VOIDP, c_size_t, c_u32, c_u32]),
    "alexnet_context_backend_name": (ctypes.c_char_p, [VOIDP]),
    "alexnet_infer": (c_enum, [VOIDP, FLOATP, c_size_t, FLOATP, FLOATP]),
}


class Library:
    """The loaded libalexnet with typed prototypes and a status check that raises with the library's detail."""

    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        for name, (restype, argtypes) in PROTOTYPES.items():
            fn = getattr(self.lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        self.check_struct_sizes()

    def __getattr__(self, name):
        return getattr(self.lib, name)

    def ok(self, status, what):
        if status != ALEXNET_OK:
            raise RuntimeError("%s: %s: %s" % (what, self.lib.alexnet_status_string(status).decode(),
                                               self.lib.alexnet_last_error().decode()))

    def check_struct_sizes(self):
        """The *_init functions and presets write sizeof() into struct_size: a wrong mirror shows here."""
        for struct_type, init in ((ModelOptions, self.lib.alexnet_model_options_init),
                                  (ContextOptions, self.lib.alexnet_context_options_init)):
            value = struct_type()
            init(ctypes.byref(value))
            if value.struct_size != ctypes.sizeof(struct_type):
                raise RuntimeError("ctypes mirror of %s has %d bytes, the library's has %d" %
                                   (struct_type.__name__, ctypes.sizeof(struct_type), value.struct_size))
        config = self.preset(VARIANT_ONE_TOWER)
        if config.struct_size != ctypes.sizeof(Config):
            raise RuntimeError("ctypes mirror of alexnet_config has %d bytes, the library's has %d" %
                               (ctypes.sizeof(Config), config.struct_size))

    def preset(self, variant):
        config = Config()
        self.ok(self.lib.alexnet_config_preset(variant, ctypes.byref(config)), "alexnet_config_preset")
        return config

    def model_options(self, variant, config=None):
        options = ModelOptions()
        self.lib.alexnet_model_options_init(ctypes.byref(options))
        options.variant = variant
        options.init = INIT_KAIMING
        if config is not None:
            options.config = ctypes.pointer(config)
        return options

    def create_model(self, options, seed):
        model = VOIDP()
        self.ok(self.lib.alexnet_model_create(ctypes.byref(options), seed, ctypes.byref(model)),
                "alexnet_model_create")
        return model

    def load_model(self, path, options):
        model = VOIDP()
        self.ok(self.lib.alexnet_model_load(path.encode(), ctypes.byref(options), ctypes.byref(model)),
                "alexnet_model_load(%s)" % path)
        return model

    def model_config(self, model):
        config = Config()
        self.ok(self.lib.alexnet_model_get_config(model, ctypes.byref(config)), "alexnet_model_get_config")
        return config

    def tensor_names(self, model):
        names = []
        for i in range(self.lib.alexnet_model_tensor_count(model)):
            info = TensorInfo()
            info.struct_size = ctypes.sizeof(TensorInfo)
            self.ok(self.lib.alexnet_model_tensor(model, i, ctypes.byref(info)), "alexnet_model_tensor")
            names.append(info.name.decode())
        return names

    def infer(self, model, inputs, height, width):
        """Logits of a float32 NCHW batch, on the backend "auto" picks (ALEXNET_BACKEND may override);
        returns (logits, backend name, seconds per image)."""
        batch = inputs.shape[0]
        options = ContextOptions()
        self.lib.alexnet_context_options_init(ctypes.byref(options))
        options.batch = batch
        context = VOIDP()
        self.ok(self.lib.alexnet_context_create(model, ctypes.byref(options), ctypes.byref(context)),
                "alexnet_context_create")
        try:
            self.ok(self.lib.alexnet_context_reshape(context, batch, height, width), "alexnet_context_reshape")
            data = np.ascontiguousarray(inputs, dtype=np.float32)
            classes = self.model_config(model).num_classes
            logits = np.zeros((batch, classes), dtype=np.float32)
            start = time.perf_counter()
            self.ok(self.lib.alexnet_infer(context, data.ctypes.data_as(FLOATP), batch,
                                           logits.ctypes.data_as(FLOATP), None), "alexnet_infer")
            seconds = (time.perf_counter() - start) / batch
            backend = self.lib.alexnet_context_backend_name(context).decode()
        finally:
            self.lib.alexnet_context_destroy(context)
        return logits, backend, seconds


# ---- the cases ------------------------------------------------------------------------------------------


def custom_small_config(lib):
    """A 1-channel 28 x 28 net with the AlexNet layout at small widths, to cover CUSTOM configurations.

    Mirrored exactly by custom_small_config() in tests/net/test_golden.c. Beyond the presets it exercises
    grouped convolutions in layers that are not the paper's, an even LRN size (the window is then asymmetric:
    2 channels before, 1 after, as in PyTorch), the paper's absolute alpha with k = 2, no adaptive pooling
    and Caffe's dropout placement. Its inputs are scaled by 512 (see CASES), and alpha is chosen so that
    norm1 works in its nonlinear range on them (it shrinks activations by about 0.4 where a constant
    k^-beta would give 0.59); the presets' LRN (alpha 1e-4 on activations of order 1) is nearly the identity
    and would let a wrong LRN pass."""
    config = lib.preset(VARIANT_ONE_TOWER)
    config.variant = VARIANT_CUSTOM
    config.input_channels = 1
    config.input_height = config.input_width = 28
    # out_channels, kernel, stride, padding, groups, lrn, max_pool
    layers = [(16, 3, 1, 1, 1, 1, 1), (32, 3, 1, 1, 2, 1, 1), (48, 3, 1, 1, 1, 0, 0), (48, 3, 1, 1, 2, 0, 0),
              (32, 3, 1, 1, 1, 0, 0)]
    config.conv_count = len(layers)
    for i in range(MAX_CONV_LAYERS):
        config.conv[i] = ConvLayerConfig(*(layers[i] if i < len(layers) else (0,) * 7))
    config.lrn_size = 4
    config.lrn_alpha = 5e-6
    config.lrn_beta = 0.75
    config.lrn_k = 2.0
    config.lrn_alpha_scaling = LRN_ALPHA_ABSOLUTE
    config.adaptive_pool_size = 0
    config.hidden_fc_count = 2
    config.hidden_fc[0] = config.hidden_fc[1] = 64
    config.hidden_fc[2] = config.hidden_fc[3] = 0
    config.num_classes = 10
    config.dropout_placement = DROPOUT_AFTER_HIDDEN_FC
    lib.ok(lib.alexnet_config_validate(ctypes.byref(config)), "custom-small config")
    return config


Case = collections.namedtuple("Case", "name config seed height width input_scale")

# Seeds are arbitrary, but each case's top-5 margins and distinct top-5 lists are checked (report_case).
# input_scale multiplies test_fill_input's values; a power of two, so the scaled floats are exact in C
# and numpy alike. The small net needs it: with KAIMING init each layer keeps about 1/6 of the signal's
# variance while adding biases of variance 1/(3 fan_in), so at its small fan-ins an input of order 1 leaves
# logits that are almost all bias (the same top-5 for every image); the full-size nets do not need it.
CASES = [
    Case("one-tower", "one-tower", 11, 227, 227, 1),
    Case("paper-2012", "paper-2012", 22, 227, 227, 1),
    Case("torchvision", "torchvision", 33, 224, 224, 1),
    Case("torchvision-160x200", "torchvision", 44, 160, 200, 1),
    Case("custom-small", "custom-small", 60, 28, 28, 512),
]

PRESETS = {"one-tower": VARIANT_ONE_TOWER, "paper-2012": VARIANT_PAPER_2012, "torchvision": VARIANT_TORCHVISION}


def case_model_options(lib, case):
    """Model options for a case; the config (if any) is returned too, so it outlives the options."""
    if case.config == "custom-small":
        config = custom_small_config(lib)
        return lib.model_options(VARIANT_CUSTOM, config), config
    return lib.model_options(PRESETS[case.config]), None


# ---- inputs: test_fill_input() in numpy ----------------------------------------------------------------


def splitmix64(x):
    """test_splitmix64 on a uint64 array; numpy's uint64 arithmetic wraps modulo 2^64 exactly like C's."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def fill_input(count, seed):
    """x[i] = (float)((h >> 40) * 2^-24 * 4 - 2) with h = splitmix64(seed * golden + i): exact in float64
    (24-bit mantissa), then rounded to float32 as C's cast does."""
    with np.errstate(over="ignore"):
        base = np.uint64((seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
        h = splitmix64(base + np.arange(count, dtype=np.uint64))
    unit = (h >> np.uint64(40)).astype(np.float64) * (1.0 / 16777216.0)
    return (unit * 4.0 - 2.0).astype(np.float32)


def case_inputs(case_number, channels, height, width, scale):
    """The batch of one case: image b from seed 1000 * case_number + b, times scale (a power of two)."""
    count = channels * height * width
    seeds = [1000 * case_number + b for b in range(BATCH)]
    images = [fill_input(count, seed).reshape(channels, height, width) * np.float32(scale) for seed in seeds]
    return np.stack(images), seeds


# ---- safetensors, read back in Python ----------------------------------------------------------------------


def read_safetensors(path):
    """(metadata, OrderedDict name -> (float32 array, raw bytes)) in data order; F32 only, as the library
    saves. Also checks the layout the library promises: header padded to 8, data packed back to back."""
    with open(path, "rb") as f:
        blob = f.read()
    (header_length,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8:8 + header_length].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    data = memoryview(blob)[8 + header_length:]
    entries = sorted(header.items(), key=lambda item: item[1]["data_offsets"][0])
    tensors = collections.OrderedDict()
    expected_begin = 0
    for name, entry in entries:
        begin, end = entry["data_offsets"]
        if entry["dtype"] != "F32" or begin != expected_begin:
            raise RuntimeError("%s: %s is %s at byte %d (expected F32 at %d)" %
                               (path, name, entry["dtype"], begin, expected_begin))
        raw = bytes(data[begin:end])
        array = np.frombuffer(raw, dtype="<f4").reshape(entry["shape"])
        tensors[name] = (array, raw)
        expected_begin = end
    if expected_begin != len(data):
        raise RuntimeError("%s: %d data bytes, tensors cover %d" % (path, len(data), expected_begin))
    return metadata, tensors


FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = 0xFFFFFFFFFFFFFFFF


def fnv1a64(chunks):
    """FNV-1a 64 over the concatenated byte strings (pure Python: about 4 MB/s, fine for a tool)."""
    h = FNV_OFFSET
    for chunk in chunks:
        for byte in chunk:
            h = ((h ^ byte) * FNV_PRIME) & MASK64
    return h


# ---- the PyTorch models ----------------------------------------------------------------------------------


def sequential_from_config(config):
    """An nn.Sequential equivalent to the library's network for `config`, with submodules named like the
    library's layers so that its state_dict keys are the library's tensor names (conv1.weight ...)."""
    layers = collections.OrderedDict()
    channels = config.input_channels
    # ALEXNET_LRN_ALPHA_OVER_SIZE is PyTorch's convention; the absolute form multiplies alpha by the size.
    lrn_alpha = config.lrn_alpha * (config.lrn_size if config.lrn_alpha_scaling == LRN_ALPHA_ABSOLUTE else 1)
    for i in range(config.conv_count):
        conv, n = config.conv[i], i + 1
        layers["conv%d" % n] = nn.Conv2d(channels, conv.out_channels, conv.kernel_size, conv.stride,
                                         conv.padding, groups=conv.groups)
        layers["relu%d" % n] = nn.ReLU()
        if conv.lrn:
            layers["norm%d" % n] = nn.LocalResponseNorm(config.lrn_size, lrn_alpha, config.lrn_beta, config.lrn_k)
        if conv.max_pool:
            layers["pool%d" % n] = nn.MaxPool2d(config.pool_kernel, config.pool_stride)
        channels = conv.out_channels
    if config.adaptive_pool_size:
        layers["avgpool"] = nn.AdaptiveAvgPool2d(config.adaptive_pool_size)
    layers["flatten"] = nn.Flatten()
    # The first FC layer's input size, computed the way the library's layer table does.
    size_h, size_w = config.input_height, config.input_width
    for i in range(config.conv_count):
        conv = config.conv[i]
        size_h = (size_h + 2 * conv.padding - conv.kernel_size) // conv.stride + 1
        size_w = (size_w + 2 * conv.padding - conv.kernel_size) // conv.stride + 1
        if conv.max_pool:
            size_h = (size_h - config.pool_kernel) // config.pool_stride + 1
            size_w = (size_w - config.pool_kernel) // config.pool_stride + 1
    if config.adaptive_pool_size:
        size_h = size_w = config.adaptive_pool_size
    features = channels * size_h * size_w
    first_fc = config.conv_count + 1
    for j in range(config.hidden_fc_count):
        layers["fc%d" % (first_fc + j)] = nn.Linear(features, config.hidden_fc[j])
        layers["relu%d" % (first_fc + j)] = nn.ReLU()
        features = config.hidden_fc[j]
    layers["fc%d" % (first_fc + config.hidden_fc_count)] = nn.Linear(features, config.num_classes)
    return nn.Sequential(layers)


def torch_model(config, tensors):
    """The float64 PyTorch model holding exactly the saved weights (strict: every name, every shape)."""
    if config.variant == VARIANT_TORCHVISION:
        model = torchvision.models.alexnet(num_classes=config.num_classes)
    else:
        model = sequential_from_config(config)
    state = collections.OrderedDict((name, torch.from_numpy(array.copy())) for name, (array, _) in tensors.items())
    model.load_state_dict(state, strict=True)
    return model.double().eval()


def reference_logits(model, inputs):
    with torch.no_grad():
        return model(torch.from_numpy(inputs.astype(np.float64))).numpy()


def top_k(logits, k):
    """Indices of the k largest, largest first; ties to the lower index (as alexnet_top_k)."""
    return [int(i) for i in np.argsort(-logits, kind="stable")[:k]]


def min_top_gap(logits):
    """The smallest gap between neighbouring logits among the best k + 1, relative to max |logit|."""
    best = np.sort(logits)[::-1][:TOP_K + 1]
    return float(np.min(best[:-1] - best[1:]) / np.max(np.abs(logits)))


def relative_error(out, ref):
    return float(np.max(np.abs(out.astype(np.float64) - ref)) / np.max(np.abs(ref)))


# ---- one case ----------------------------------------------------------------------------------------------


def make_case(lib, case_number, case, temp_dir):
    options, config_keepalive = case_model_options(lib, case)
    model = lib.create_model(options, case.seed)
    try:
        config = lib.model_config(model)
        parameters = lib.alexnet_model_parameter_count(model)
        path = os.path.join(temp_dir, "%s.safetensors" % case.name)
        lib.ok(lib.alexnet_model_save(model, path.encode()), "alexnet_model_save")
        metadata, tensors = read_safetensors(path)
        os.unlink(path)
        if list(tensors) != lib.tensor_names(model):
            raise RuntimeError("%s: file order %s differs from the library's tensor order" % (case.name, list(tensors)))
        if metadata.get("num_classes") != str(config.num_classes):
            raise RuntimeError("%s: metadata %s" % (case.name, metadata))
        inputs, seeds = case_inputs(case_number, config.input_channels, case.height, case.width,
                                     case.input_scale)
        reference = reference_logits(torch_model(config, tensors), inputs)
        library, backend, seconds = lib.infer(model, inputs, case.height, case.width)
    finally:
        lib.alexnet_model_destroy(model)
    del config_keepalive
    started = time.perf_counter()
    checksum = fnv1a64(raw for _, raw in tensors.values())
    checksum_seconds = time.perf_counter() - started
    tops = [top_k(reference[b], TOP_K) for b in range(BATCH)]
    record = {"case": case, "config": config, "parameters": parameters, "checksum": checksum, "seeds": seeds,
              "reference": reference, "tops": tops}
    report_case(case, reference, library, tops, backend, seconds, checksum_seconds)
    return record


def report_case(case, reference, library, tops, backend, seconds, checksum_seconds):
    """Print what the C test will check, and refuse a case whose check would be vacuous or fragile."""
    error = relative_error(library, reference)
    library_tops = [top_k(library[b].astype(np.float64), TOP_K) for b in range(BATCH)]
    gap = min(min_top_gap(reference[b]) for b in range(BATCH))
    spread = max(float(np.max(np.abs(reference[a] - reference[b])))
                 for a in range(BATCH) for b in range(a + 1, BATCH)) / float(np.max(np.abs(reference)))
    print("%-20s rel error %.3e  top-5 %s  min top-6 gap %.2e  image spread %.2e  %s %.3f s/image  "
          "(checksum %.0f s)" % (case.name, error, "match" if library_tops == tops else "DIFFER", gap, spread,
                                 backend, seconds, checksum_seconds), flush=True)
    if len({tuple(t) for t in tops}) != BATCH:
        raise RuntimeError("%s: images share a top-5 list %s; pick another seed" % (case.name, tops))
    if gap <= 2 * TOLERANCE:
        raise RuntimeError("%s: top-5 margin %.2e is within twice the tolerance; pick another seed" %
                           (case.name, gap))


# ---- the file ----------------------------------------------------------------------------------------------


def write_goldens(path, records, command):
    lines = [
        "# libalexnet inference goldens: float64 PyTorch logits for seeded libalexnet models (KAIMING init),",
        "# generated by tools/make_goldens.py; checked by tests/net/test_golden.c. Do not edit by hand.",
        "# command: %s" % command,
        "# torch %s  torchvision %s  numpy %s" % (torch.__version__, torchvision.__version__, np.__version__),
        "# format: see the docstring of tools/make_goldens.py. Image b of case k (1-based) is",
        "# test_fill_input(seed 1000 * k + b) times the case's input scale.",
        "goldens %d %d" % (FORMAT_VERSION, len(records)),
    ]
    for record in records:
        case, config = record["case"], record["config"]
        lines.append("case %s %s %d kaiming %d %d %d %d %d %d %d %016x" % (
            case.name, case.config, case.seed, config.input_channels, case.height, case.width, BATCH,
            case.input_scale, config.num_classes, record["parameters"], record["checksum"]))
        for b in range(BATCH):
            lines.append("image %d %d %s" % (b, record["seeds"][b], " ".join(str(i) for i in record["tops"][b])))
            values = ["%.9g" % v for v in record["reference"][b]]
            lines.extend(" ".join(values[i:i + 10]) for i in range(0, len(values), 10))
        lines.append("end")
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp_path = tempfile.mkstemp(prefix=".goldens-", suffix=".tmp", dir=directory)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(temp_path, 0o666 & ~mask)  # mkstemp makes the file private; give it a new file's mode
    os.replace(temp_path, path)


# ---- tools/convert_torchvision.py, end to end ------------------------------------------------------------


def convert_and_compare(lib, label, torch_net, variant_name, library_options, temp_dir, height, width):
    """torch.save(state_dict) -> convert_torchvision.py -> alexnet_model_load -> one inference vs PyTorch."""
    checkpoint = os.path.join(temp_dir, "%s.pth" % label)
    converted = os.path.join(temp_dir, "%s.safetensors" % label)
    torch.save(torch_net.state_dict(), checkpoint)
    subprocess.run([sys.executable, os.path.join(TOOLS_DIR, "convert_torchvision.py"), "--variant", variant_name,
                    checkpoint, converted], check=True, stdout=subprocess.DEVNULL)
    model = lib.load_model(converted, library_options)
    try:
        channels = lib.model_config(model).input_channels
        inputs = fill_input(channels * height * width, 9000).reshape(1, channels, height, width)
        library, backend, _ = lib.infer(model, inputs, height, width)
    finally:
        lib.alexnet_model_destroy(model)
    reference = reference_logits(torch_net.double().eval(), inputs)
    match = top_k(library[0].astype(np.float64), TOP_K) == top_k(reference[0], TOP_K)
    print("convert %-12s rel error %.3e  top-5 %s  (%s)" % (label, relative_error(library, reference),
                                                           "match" if match else "DIFFER", backend), flush=True)


def check_converter(lib, temp_dir):
    """Both naming schemes; returns the number of failures (each is reported, the other still runs)."""
    torch.manual_seed(2012)
    torchvision_net = torchvision.models.alexnet()
    torch.manual_seed(2013)
    one_tower_net = sequential_from_config(lib.preset(VARIANT_ONE_TOWER))
    checks = [("torchvision", torchvision_net, "torchvision", lib.model_options(VARIANT_TORCHVISION), 224, 224),
              ("one-tower", one_tower_net, "one-tower", lib.model_options(VARIANT_ONE_TOWER), 227, 227)]
    failures = 0
    for label, net, variant_name, options, height, width in checks:
        try:
            convert_and_compare(lib, label, net, variant_name, options, temp_dir, height, width)
        except (RuntimeError, subprocess.CalledProcessError) as error:
            print("convert %-12s FAILED: %s" % (label, error), flush=True)
            failures += 1
    return failures


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lib", default=os.environ.get("ALEXNET_SHARED_LIBRARY", "build/lib/libalexnet.so"),
                        help="the built shared library (default $ALEXNET_SHARED_LIBRARY or build/lib/libalexnet.so)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="file to write (default tests/data/goldens.txt)")
    parser.add_argument("--skip-convert-check", action="store_true",
                        help="do not test tools/convert_torchvision.py")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    lib = Library(os.path.abspath(args.lib))
    print("libalexnet %s, torch %s, torchvision %s, numpy %s" % (lib.alexnet_version_string().decode(),
                                                                 torch.__version__, torchvision.__version__,
                                                                 np.__version__), flush=True)
    command = "/usr/bin/python3 tools/make_goldens.py " + " ".join(shlex.quote(a) for a in argv)
    with tempfile.TemporaryDirectory(prefix="alexnet-goldens-") as temp_dir:
        records = [make_case(lib, number, case, temp_dir) for number, case in enumerate(CASES, start=1)]
        write_goldens(args.output, records, command.strip())
        print("wrote %s (%d bytes)" % (args.output, os.path.getsize(args.output)), flush=True)
        failures = 0 if args.skip_convert_check else check_converter(lib, temp_dir)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
