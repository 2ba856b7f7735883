#!/usr/bin/env python3
"""Drive libalexnet's C ABI from Python through ctypes (standard library only).

usage: test_ctypes.py [LIBRARY] [--header alexnet.h] [--layout LAYOUT_PROGRAM]
LIBRARY defaults to $ALEXNET_SHARED_LIBRARY. The struct declarations below mirror
include/alexnet/alexnet.h field by field. LAYOUT_PROGRAM (tests/python/layout.c, built by meson) prints the
C compiler's offset and size of every field, which test_layout compares with the mirrors; without it, only
the sizes that alexnet_*_options_init() report through struct_size are checked.
"""

import ctypes
import math
import os
import random
import re
import subprocess
import sys
import threading
import traceback

c_size_t = ctypes.c_size_t
c_u32 = ctypes.c_uint32
c_i32 = ctypes.c_int32
c_u64 = ctypes.c_uint64
c_enum = ctypes.c_int  # C enums with small values are int-sized on every ABI we target

ALEXNET_OK = 0
ALEXNET_E_INVALID_ARGUMENT = 1
ALEXNET_E_NOT_FOUND = 9
STATUS_COUNT = 10

VARIANT_CUSTOM, VARIANT_ONE_TOWER, VARIANT_PAPER_2012, VARIANT_TORCHVISION = 0, 1, 2, 3
LAYER_SOFTMAX = 7
MAX_CONV_LAYERS = 8
MAX_HIDDEN_FC_LAYERS = 4

ALLOC_FN = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, c_size_t, c_size_t)
FREE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, c_size_t)


class Allocator(ctypes.Structure):
    _c_name_ = "alexnet_allocator"
    _fields_ = [("alloc", ALLOC_FN), ("free", FREE_FN), ("user", ctypes.c_void_p)]


class ConvLayerConfig(ctypes.Structure):
    _c_name_ = "alexnet_conv_layer_config"
    _fields_ = [("out_channels", c_u32), ("kernel_size", c_u32), ("stride", c_u32), ("padding", c_u32),
                ("groups", c_u32), ("lrn", c_u32), ("max_pool", c_u32)]


class Config(ctypes.Structure):
    _c_name_ = "alexnet_config"
    _fields_ = [("struct_size", c_size_t),
                ("variant", c_enum),
                ("input_channels", c_u32),
                ("input_height", c_u32), ("input_width", c_u32),
                ("conv_count", c_u32),
                ("conv", ConvLayerConfig * MAX_CONV_LAYERS),
                ("pool_kernel", c_u32), ("pool_stride", c_u32),
                ("lrn_size", c_u32),
                ("lrn_alpha", ctypes.c_float), ("lrn_beta", ctypes.c_float), ("lrn_k", ctypes.c_float),
                ("lrn_alpha_scaling", c_enum),
                ("adaptive_pool_size", c_u32),
                ("hidden_fc_count", c_u32),
                ("hidden_fc", c_u32 * MAX_HIDDEN_FC_LAYERS),
                ("num_classes", c_u32),
                ("dropout_rate", ctypes.c_float),
                ("dropout_placement", c_enum)]


class LayerInfo(ctypes.Structure):
    _c_name_ = "alexnet_layer_info"
    _fields_ = [("struct_size", c_size_t),
                ("name", ctypes.c_char * 16),
                ("type", c_enum),
                ("kernel_size", c_u32), ("stride", c_u32), ("padding", c_u32), ("groups", c_u32),
                ("channels", c_u32), ("height", c_u32), ("width", c_u32),
                ("parameter_count", c_u64),
                ("relu", c_u32)]


class ModelOptions(ctypes.Structure):
    _c_name_ = "alexnet_model_options"
    _fields_ = [("struct_size", c_size_t),
                ("variant", c_enum),
                ("config", ctypes.POINTER(Config)),
                ("num_classes", c_u32),
                ("init", c_enum),
                ("allocator", Allocator)]


class TensorInfo(ctypes.Structure):
    _c_name_ = "alexnet_tensor_info"
    _fields_ = [("struct_size", c_size_t),
                ("name", ctypes.c_char * 32),
                ("rank", c_u32),
                ("shape", c_u64 * 4),
                ("element_count", c_u64),
                ("data", ctypes.POINTER(ctypes.c_float))]


class BackendInfo(ctypes.Structure):
    _c_name_ = "alexnet_backend_info"
    _fields_ = [("struct_size", c_size_t),
                ("name", ctypes.c_char_p),
                ("kind", ctypes.c_char_p),
                ("description", ctypes.c_char_p),
                ("available", c_i32),
                ("score", c_i32)]


class ContextOptions(ctypes.Structure):
    _c_name_ = "alexnet_context_options"
    _fields_ = [("struct_size", c_size_t),
                ("backend", ctypes.c_char_p),
                ("batch", c_u32),
                ("height", c_u32), ("width", c_u32),
                ("capture_layers", ctypes.POINTER(ctypes.c_char_p)),
                ("allocator", Allocator),
                ("num_threads", c_u32),
                ("parallel_for", ctypes.c_void_p),
                ("parallel_for_host", ctypes.c_void_p),
                ("profile_layers", c_u32)]


class ClassScore(ctypes.Structure):
    _c_name_ = "alexnet_class_score"
    _fields_ = [("class_index", c_u32), ("score", ctypes.c_float)]


class ImageOptions(ctypes.Structure):
    _c_name_ = "alexnet_image_options"
    _fields_ = [("struct_size", c_size_t),
                ("resize_size", c_u32),
                ("mean", ctypes.c_float * 3),
                ("std", ctypes.c_float * 3)]


MIRRORS = [Allocator, ConvLayerConfig, Config, LayerInfo, ModelOptions, TensorInfo, BackendInfo,
           ContextOptions, ClassScore, ImageOptions]

P = ctypes.POINTER
VOIDP = ctypes.c_void_p

# name: (restype, argtypes)
PROTOTYPES = {
    "alexnet_version_number": (ctypes.c_uint, []),
    "alexnet_version_string": (ctypes.c_char_p, []),
    "alexnet_status_string": (ctypes.c_char_p, [c_enum]),
    "alexnet_last_error": (ctypes.c_char_p, []),
    "alexnet_config_preset": (c_enum, [c_enum, P(Config)]),
    "alexnet_config_validate": (c_enum, [P(Config)]),
    "alexnet_config_parameter_count": (c_enum, [P(Config), P(c_u64)]),
    "alexnet_config_min_input_size": (c_enum, [P(Config), P(c_u32)]),
    "alexnet_config_summary": (c_enum, [P(Config), c_u32, c_u32, P(LayerInfo), c_size_t, P(c_size_t)]),
    "alexnet_model_options_init": (None, [P(ModelOptions)]),
    "alexnet_model_create": (c_enum, [P(ModelOptions), c_u64, P(VOIDP)]),
    "alexnet_model_destroy": (None, [VOIDP]),
    "alexnet_model_get_config": (c_enum, [VOIDP, P(Config)]),
    "alexnet_model_parameter_count": (c_u64, [VOIDP]),
    "alexnet_model_num_classes": (c_u32, [VOIDP]),
    "alexnet_model_tensor_count": (c_size_t, [VOIDP]),
    "alexnet_model_tensor": (c_enum, [VOIDP, c_size_t, P(TensorInfo)]),
    "alexnet_backend_count": (c_size_t, []),
    "alexnet_backend_get_info": (c_enum, [c_size_t, P(BackendInfo)]),
    "alexnet_context_options_init": (None, [P(ContextOptions)]),
    "alexnet_context_create": (c_enum, [VOIDP, P(ContextOptions), P(VOIDP)]),
    "alexnet_context_destroy": (None, [VOIDP]),
    "alexnet_context_get_shape": (c_enum, [VOIDP, P(c_size_t), P(c_u32), P(c_u32)]),
    "alexnet_context_workspace_bytes": (c_size_t, [VOIDP]),
    "alexnet_context_backend_name": (ctypes.c_char_p, [VOIDP]),
    "alexnet_infer": (c_enum, [VOIDP, P(ctypes.c_float), c_size_t, P(ctypes.c_float), P(ctypes.c_float)]),
    "alexnet_top_k": (c_enum, [P(ctypes.c_float), c_size_t, c_size_t, P(ClassScore)]),
    "alexnet_image_options_init": (None, [P(ImageOptions)]),
}


def load(path):
    lib = ctypes.CDLL(path)
    for name, (restype, argtypes) in PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def check_ok(lib, status, what):
    if status != ALEXNET_OK:
        raise CheckFailed("%s returned %d (%s): %s" % (what, status, text(lib.alexnet_status_string(status)),
                                                       text(lib.alexnet_last_error())))


def text(raw):
    return raw.decode("utf-8", "replace") if raw is not None else None


def small_config(lib):
    """A 1-channel 28x28 AlexNet-family net with small widths: fast on any backend."""
    cfg = Config()
    check_ok(lib, lib.alexnet_config_preset(VARIANT_ONE_TOWER, ctypes.byref(cfg)), "alexnet_config_preset")
    cfg.variant = VARIANT_CUSTOM
    cfg.input_channels = 1
    cfg.input_height = cfg.input_width = 28
    layers = [(8, 5, 1, 2, 1, 1, 1), (16, 3, 1, 1, 1, 1, 1), (16, 3, 1, 1, 1, 0, 1)]
    cfg.conv_count = len(layers)
    for i in range(MAX_CONV_LAYERS):
        values = layers[i] if i < len(layers) else (0,) * 7
        cfg.conv[i] = ConvLayerConfig(*values)
    cfg.adaptive_pool_size = 0
    cfg.hidden_fc_count = 2
    for i, width in enumerate([32, 32, 0, 0]):
        cfg.hidden_fc[i] = width
    cfg.num_classes = 10
    return cfg


class Suite:
    def __init__(self, lib, header, layout):
        self.lib = lib
        self.header = header
        self.layout = layout
        self.handles = []  # (destroy function, handle), destroyed at the end in reverse order

    # -- helpers ---------------------------------------------------------------------------------------
    def create_model(self, cfg, seed):
        lib = self.lib
        opts = ModelOptions()
        lib.alexnet_model_options_init(ctypes.byref(opts))
        opts.variant = VARIANT_CUSTOM
        opts.config = ctypes.pointer(cfg)
        model = VOIDP()
        check_ok(lib, lib.alexnet_model_create(ctypes.byref(opts), seed, ctypes.byref(model)), "alexnet_model_create")
        check(model.value, "alexnet_model_create returned OK but no model")
        self.handles.append((lib.alexnet_model_destroy, model))
        return model

    def create_context(self, model, batch):
        lib = self.lib
        copts = ContextOptions()
        lib.alexnet_context_options_init(ctypes.byref(copts))
        copts.batch = batch
        ctx = VOIDP()
        check_ok(lib, lib.alexnet_context_create(model, ctypes.byref(copts), ctypes.byref(ctx)), "alexnet_context_create")
        check(ctx.value, "alexnet_context_create returned OK but no context")
        self.handles.append((lib.alexnet_context_destroy, ctx))
        return ctx

    def destroy_all(self):
        while self.handles:
            destroy, handle = self.handles.pop()
            destroy(handle)

    # -- tests -----------------------------------------------------------------------------------------
    def test_layout(self):
        if not self.layout:
            print("  (no layout program given: field offsets not checked)")
            return
        result = subprocess.run([self.layout], stdout=subprocess.PIPE, universal_newlines=True)
        check(result.returncode == 0, "%s exited with %d" % (self.layout, result.returncode))
        c_fields = {}
        for line in result.stdout.splitlines():
            struct, field, a, b = line.split()
            c_fields.setdefault(struct, {})[field] = (int(a), int(b))
        check(c_fields.get("enum", {}).get("sizeof") == (ctypes.sizeof(c_enum), ctypes.alignment(c_enum)),
              "C enums are %r, the mirror uses c_int" % (c_fields.get("enum"),))
        for cls in MIRRORS:
            c = c_fields.get(cls._c_name_)
            check(c is not None, "the layout program does not describe " + cls._c_name_)
            mirror = {"sizeof": (ctypes.sizeof(cls), ctypes.alignment(cls))}
            for name, _ in cls._fields_:
                descriptor = getattr(cls, name)
                mirror[name] = (descriptor.offset, descriptor.size)
            for field in sorted(set(c) | set(mirror)):
                check(c.get(field) == mirror.get(field),
                      "%s.%s: C has (offset, size) %r, the ctypes mirror %r"
                      % (cls._c_name_, field, c.get(field), mirror.get(field)))

    def test_version(self):
        lib = self.lib
        number = lib.alexnet_version_number()
        string = text(lib.alexnet_version_string())
        major, minor, patch = number // 10000, number // 100 % 100, number % 100
        check(string == "%d.%d.%d" % (major, minor, patch),
              "version string %r does not match version number %d" % (string, number))
        if self.header:
            with open(self.header, encoding="utf-8") as f:
                header_text = f.read()
            m = re.search(r'#define\s+ALEXNET_VERSION_STRING\s+"([^"]*)"', header_text)
            check(m is not None, "ALEXNET_VERSION_STRING not found in " + self.header)
            check(m.group(1) == string, "header says %s, library says %s" % (m.group(1), string))
        print("  libalexnet %s (%d)" % (string, number))

    def test_status_strings(self):
        lib = self.lib
        seen = set()
        for status in range(STATUS_COUNT):
            s = text(lib.alexnet_status_string(status))
            check(s, "status %d has an empty string" % status)
            check(s not in seen, "status %d repeats the text %r" % (status, s))
            seen.add(s)
        for status in (STATUS_COUNT, 1000, -1):
            check(lib.alexnet_status_string(status) is not None, "status_string(%d) returned NULL" % status)

    def test_last_error_after_failure(self):
        lib = self.lib
        cfg = Config()
        status = lib.alexnet_config_preset(99, ctypes.byref(cfg))
        check(status != ALEXNET_OK, "alexnet_config_preset(99) succeeded")
        message = text(lib.alexnet_last_error())
        check(message, "alexnet_last_error() is empty after a failure")

        opts = ModelOptions()
        lib.alexnet_model_options_init(ctypes.byref(opts))
        opts.variant = 99
        sentinel = 0x5A5A50
        model = VOIDP(sentinel)
        status = lib.alexnet_model_create(ctypes.byref(opts), 1, ctypes.byref(model))
        check(status != ALEXNET_OK, "alexnet_model_create with variant 99 succeeded")
        if status == ALEXNET_OK and model.value:
            lib.alexnet_model_destroy(model)
        check(text(lib.alexnet_last_error()), "alexnet_last_error() is empty after a failed model_create")
        check(model.value == sentinel, "alexnet_model_create changed its output on failure")
        print("  variant 99: %s: %s" % (text(lib.alexnet_status_string(status)), text(lib.alexnet_last_error())))

    def test_last_error_is_per_thread(self):
        lib = self.lib
        check(lib.alexnet_config_preset(99, None) != ALEXNET_OK, "alexnet_config_preset(99, NULL) succeeded")
        main_message = text(lib.alexnet_last_error())
        result = {}

        def worker():
            result["initial"] = text(lib.alexnet_last_error())
            result["status"] = lib.alexnet_config_validate(None)
            result["after"] = text(lib.alexnet_last_error())

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        check(result.get("initial") == "", "a new thread's last error is %r, not empty" % result.get("initial"))
        check(result.get("status") != ALEXNET_OK, "alexnet_config_validate(NULL) succeeded")
        check(result.get("after"), "the thread's last error is empty after its failure")
        check(text(lib.alexnet_last_error()) == main_message,
              "the main thread's last error changed from %r to %r" % (main_message, text(lib.alexnet_last_error())))

    def test_struct_sizes(self):
        lib = self.lib
        for cls, init in ((ModelOptions, lib.alexnet_model_options_init),
                          (ContextOptions, lib.alexnet_context_options_init),
                          (ImageOptions, lib.alexnet_image_options_init)):
            obj = cls()
            init(ctypes.byref(obj))
            check(obj.struct_size == ctypes.sizeof(cls),
                  "%s: the library says sizeof is %d, the ctypes mirror has %d"
                  % (cls.__name__, obj.struct_size, ctypes.sizeof(cls)))
        cfg = Config()
        check_ok(lib, lib.alexnet_config_preset(VARIANT_ONE_TOWER, ctypes.byref(cfg)), "alexnet_config_preset")
        check(cfg.struct_size == ctypes.sizeof(Config),
              "alexnet_config: the library says sizeof is %d, the ctypes mirror has %d"
              % (cfg.struct_size, ctypes.sizeof(Config)))
        opts = ModelOptions()
        lib.alexnet_model_options_init(ctypes.byref(opts))
        check(opts.variant == VARIANT_ONE_TOWER and not opts.config and opts.num_classes == 0,
              "alexnet_model_options_init defaults: variant %d, config %r, num_classes %d"
              % (opts.variant, bool(opts.config), opts.num_classes))
        img = ImageOptions()
        lib.alexnet_image_options_init(ctypes.byref(img))
        check(img.resize_size == 256, "image options resize_size %d, expected 256" % img.resize_size)
        check(abs(img.mean[0] - 0.485) < 1e-6 and abs(img.std[2] - 0.225) < 1e-6, "image options mean/std")

    def test_presets(self):
        lib = self.lib
        expected = {VARIANT_ONE_TOWER: 62378344, VARIANT_PAPER_2012: 60965224, VARIANT_TORCHVISION: 61100840}
        for variant, count in expected.items():
            cfg = Config()
            check_ok(lib, lib.alexnet_config_preset(variant, ctypes.byref(cfg)), "alexnet_config_preset(%d)" % variant)
            check_ok(lib, lib.alexnet_config_validate(ctypes.byref(cfg)), "alexnet_config_validate(%d)" % variant)
            n = c_u64()
            check_ok(lib, lib.alexnet_config_parameter_count(ctypes.byref(cfg), ctypes.byref(n)),
                     "alexnet_config_parameter_count")
            check(n.value == count, "variant %d has %d parameters, expected %d" % (variant, n.value, count))
            check(cfg.num_classes == 1000, "variant %d has %d classes" % (variant, cfg.num_classes))

    def test_backends(self):
        lib = self.lib
        count = lib.alexnet_backend_count()
        check(count >= 1, "no backends")
        names = {}
        for i in range(count):
            info = BackendInfo()
            info.struct_size = ctypes.sizeof(BackendInfo)
            check_ok(lib, lib.alexnet_backend_get_info(i, ctypes.byref(info)), "alexnet_backend_get_info(%d)" % i)
            check(info.name and info.kind in (b"cpu", b"gpu") and info.description is not None,
                  "backend %d: name %r kind %r" % (i, info.name, info.kind))
            names[text(info.name)] = bool(info.available)
        check(names.get("reference") is True, "the reference backend is missing or unavailable: %r" % names)
        info = BackendInfo()
        info.struct_size = ctypes.sizeof(BackendInfo)
        check(lib.alexnet_backend_get_info(count, ctypes.byref(info)) != ALEXNET_OK,
              "alexnet_backend_get_info(count) succeeded")
        print("  backends: " + ", ".join("%s%s" % (n, "" if a else " (unavailable)") for n, a in names.items()))

    def test_summary(self):
        lib = self.lib
        cfg = small_config(lib)
        check_ok(lib, lib.alexnet_config_validate(ctypes.byref(cfg)), "alexnet_config_validate(small)")
        count = c_size_t()
        check_ok(lib, lib.alexnet_config_summary(ctypes.byref(cfg), 0, 0, None, 0, ctypes.byref(count)),
                 "alexnet_config_summary(count)")
        check(count.value >= 3 + 3 + 1, "summary has only %d rows" % count.value)
        rows = (LayerInfo * count.value)()
        for row in rows:
            row.struct_size = ctypes.sizeof(LayerInfo)
        check_ok(lib, lib.alexnet_config_summary(ctypes.byref(cfg), 0, 0, rows, count.value, ctypes.byref(count)),
                 "alexnet_config_summary")
        last = rows[count.value - 1]
        check(last.type == LAYER_SOFTMAX and last.channels == 10,
              "last row %r has type %d and %d channels" % (last.name, last.type, last.channels))
        total = c_u64()
        check_ok(lib, lib.alexnet_config_parameter_count(ctypes.byref(cfg), ctypes.byref(total)),
                 "alexnet_config_parameter_count")
        check(sum(r.parameter_count for r in rows) == total.value,
              "summary rows add up to %d parameters, config says %d"
              % (sum(r.parameter_count for r in rows), total.value))

    def test_infer(self):
        lib = self.lib
        cfg = small_config(lib)
        model = self.create_model(cfg, 2012)
        classes = lib.alexnet_model_num_classes(model)
        check(classes == 10, "model has %d classes" % classes)
        expected = c_u64()
        check_ok(lib, lib.alexnet_config_parameter_count(ctypes.byref(cfg), ctypes.byref(expected)),
                 "alexnet_config_parameter_count")
        check(lib.alexnet_model_parameter_count(model) == expected.value, "model parameter count")
        back = Config()
        check_ok(lib, lib.alexnet_model_get_config(model, ctypes.byref(back)), "alexnet_model_get_config")
        check(back.input_channels == 1 and back.conv_count == 3 and back.conv[0].out_channels == 8,
              "alexnet_model_get_config returned a different architecture")

        tensors = lib.alexnet_model_tensor_count(model)
        check(tensors == 2 * (3 + 3), "model has %d tensors, expected 12" % tensors)
        elements = 0
        for i in range(tensors):
            info = TensorInfo()
            info.struct_size = ctypes.sizeof(TensorInfo)
            check_ok(lib, lib.alexnet_model_tensor(model, i, ctypes.byref(info)), "alexnet_model_tensor(%d)" % i)
            check(info.name and 1 <= info.rank <= 4 and info.data, "tensor %d: %r rank %d" % (i, info.name, info.rank))
            product = 1
            for d in range(info.rank):
                product *= info.shape[d]
            check(product == info.element_count, "tensor %r: shape and element count disagree" % info.name)
            check(all(math.isfinite(info.data[j]) for j in range(min(64, info.element_count))),
                  "tensor %r has non-finite values" % info.name)
            elements += info.element_count
        check(elements == expected.value, "tensors hold %d values, parameter count is %d" % (elements, expected.value))

        batch = 2
        ctx = self.create_context(model, batch)
        shape_batch, shape_h, shape_w = c_size_t(), c_u32(), c_u32()
        check_ok(lib, lib.alexnet_context_get_shape(ctx, ctypes.byref(shape_batch), ctypes.byref(shape_h),
                                                    ctypes.byref(shape_w)), "alexnet_context_get_shape")
        check((shape_batch.value, shape_h.value, shape_w.value) == (batch, 28, 28),
              "context shape %r" % ((shape_batch.value, shape_h.value, shape_w.value),))
        check(lib.alexnet_context_workspace_bytes(ctx) > 0, "workspace is 0 bytes")
        backend = text(lib.alexnet_context_backend_name(ctx))
        check(backend, "context has no backend name")

        rng = random.Random(7)
        per_image = 1 * 28 * 28
        values = [rng.uniform(-2.0, 2.0) for _ in range(batch * per_image)]
        inputs = (ctypes.c_float * len(values))(*values)
        logits = (ctypes.c_float * (batch * classes))()
        probs = (ctypes.c_float * (batch * classes))()
        check_ok(lib, lib.alexnet_infer(ctx, inputs, batch, logits, probs), "alexnet_infer")
        for b in range(batch):
            lg = logits[b * classes:(b + 1) * classes]
            pr = probs[b * classes:(b + 1) * classes]
            check(all(math.isfinite(v) for v in lg), "image %d: non-finite logits %r" % (b, lg))
            check(all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in pr), "image %d: probabilities %r" % (b, pr))
            check(abs(sum(pr) - 1.0) < 1e-5, "image %d: probabilities sum to %.9g" % (b, sum(pr)))
            check(max(range(classes), key=lambda i: pr[i]) == max(range(classes), key=lambda i: lg[i]),
                  "image %d: argmax of probabilities differs from argmax of logits" % b)
            top = max(lg)
            exps = [math.exp(v - top) for v in lg]
            softmax = [e / sum(exps) for e in exps]
            check(max(abs(a - s) for a, s in zip(pr, softmax)) < 1e-5, "image %d: probabilities are not softmax(logits)" % b)

            scores = (ClassScore * 3)()
            row = (ctypes.c_float * classes).from_buffer(probs, b * classes * ctypes.sizeof(ctypes.c_float))
            check_ok(lib, lib.alexnet_top_k(row, classes, 3, scores), "alexnet_top_k")
            order = sorted(range(classes), key=lambda i: (-pr[i], i))[:3]
            check([s.class_index for s in scores] == order, "top-3 %r, expected %r"
                  % ([s.class_index for s in scores], order))

        # The same seed gives the same weights, hence bit-identical outputs; batch 1 equals image 0 of batch 2.
        model2 = self.create_model(cfg, 2012)
        ctx2 = self.create_context(model2, 1)
        logits2 = (ctypes.c_float * classes)()
        check_ok(lib, lib.alexnet_infer(ctx2, inputs, 1, logits2, None), "alexnet_infer (second model)")
        check(max(abs(logits2[i] - logits[i]) for i in range(classes)) <= 1e-5 * max(1.0, max(abs(v) for v in logits[:classes])),
              "a second model from the same seed disagrees: %r vs %r" % (list(logits2), list(logits[:classes])))

        # Too large a batch and no outputs are rejected, with a message, and outputs are left alone.
        guard = (ctypes.c_float * (4 * classes))(*([-7.0] * (4 * classes)))
        status = lib.alexnet_infer(ctx, (ctypes.c_float * (4 * per_image))(), 4, guard, None)
        check(status != ALEXNET_OK and text(lib.alexnet_last_error()), "alexnet_infer accepted batch 4 > 2")
        check(all(v == -7.0 for v in guard), "a failed alexnet_infer wrote its output")
        status = lib.alexnet_infer(ctx, inputs, 1, None, None)
        check(status != ALEXNET_OK, "alexnet_infer accepted no outputs at all")
        print("  backend %s, logits[0] = %s" % (backend, ", ".join("%.4f" % v for v in logits[:classes])))

    def test_destroy_null(self):
        self.lib.alexnet_model_destroy(None)
        self.lib.alexnet_context_destroy(None)
        check(self.lib.alexnet_model_parameter_count(None) == 0, "parameter count of NULL")
        check(self.lib.alexnet_context_backend_name(None) is None, "backend name of NULL")


def main(argv):
    args = list(argv[1:])
    options = {"--header": None, "--layout": None}
    for option in options:
        if option in args:
            i = args.index(option)
            options[option] = args[i + 1]
            del args[i:i + 2]
    path = args[0] if args else os.environ.get("ALEXNET_SHARED_LIBRARY")
    if not path:
        print("usage: test_ctypes.py LIBRARY (or set ALEXNET_SHARED_LIBRARY)")
        return 2
    try:
        lib = load(path)
    except (OSError, AttributeError) as e:
        print("FAIL: cannot load %s: %s" % (path, e))
        print("0 passed, 1 failed")
        return 1
    suite = Suite(lib, options["--header"], options["--layout"])
    tests = [getattr(suite, n) for n in dir(Suite) if n.startswith("test_")]
    order = ["test_layout", "test_version", "test_status_strings", "test_struct_sizes"]
    tests.sort(key=lambda t: (order.index(t.__name__) if t.__name__ in order else len(order), t.__name__))
    passed = failed = 0
    for test in tests:
        try:
            test()
            passed += 1
            print("ok   %s" % test.__name__)
        except CheckFailed as e:
            failed += 1
            print("FAIL %s: %s" % (test.__name__, e))
        except Exception:  # a bug in the test or a crash-free misbehaviour: report, keep going
            failed += 1
            print("FAIL %s: unexpected exception" % test.__name__)
            traceback.print_exc(file=sys.stdout)
        finally:
            suite.destroy_all()
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
