#!/usr/bin/python3
"""Convert a PyTorch AlexNet checkpoint into a safetensors file that libalexnet loads.

Run with Debian's interpreter, which has torch (torch is a tool here, never a library dependency):

    /usr/bin/python3 tools/convert_torchvision.py alexnet-owt-7be5be79.pth alexnet.safetensors

The input is torchvision's pretrained checkpoint (alexnet-owt-7be5be79.pth) or any AlexNet state_dict saved
with torch.save (a plain dict of tensors, or a dict holding one under "state_dict"; a whole pickled
nn.Module only with --trust-pickle, since unpickling can run code).
Every tensor is written as little-endian F32 under its own name, in the checkpoint's order, with the
metadata {"format": "libalexnet", "variant": VARIANT, "num_classes": "<n>"}; n is the length of the last
bias. The library expects torchvision's names (features.0.weight ... classifier.6.bias) for the torchvision
variant and its own (conv1.weight ... fc8.bias) for the others, so

    /usr/bin/python3 tools/convert_torchvision.py --variant one-tower my_state_dict.pt one_tower.safetensors

passes a state_dict that already uses conv1...fc8 names straight through. --strip-prefix removes a prefix
such as "module." that nn.DataParallel adds to every name.

Load the result with alexnet_model_load(path, options) where options.variant matches --variant
(ALEXNET_VARIANT_TORCHVISION by default); the class count is taken from the file.

How it is tested: tools/make_goldens.py saves the state_dict of a randomly initialised
torchvision.models.alexnet() (torch.manual_seed) with torch.save, runs this script on it, loads the result
through the library with ctypes, runs one inference and compares the logits with PyTorch's; it does the
same for a conv1...fc8 state_dict with --variant one-tower. The measured error is printed there.

The file is written atomically: a temporary file in the destination's directory, then os.replace().
"""

import argparse
import collections
import json
import os
import pickle
import struct
import sys
import tempfile

import numpy as np
import torch

VARIANTS = ("torchvision", "one-tower", "paper-2012", "custom")
# safetensors places the tensor data right after the header; padding the header to a multiple of 8 keeps
# every F32 tensor 8-byte aligned from the start of the file (the format allows trailing spaces).
HEADER_ALIGNMENT = 8


def load_state_dict(path, trust_pickle=False):
    """The checkpoint's tensors, in their stored order.

    torch.load unpickles, which can run arbitrary code, so by default only plain tensors and containers are
    accepted (weights_only); --trust-pickle lifts that for a whole pickled nn.Module from a trusted source."""
    if trust_pickle:
        obj = torch.load(path, map_location="cpu")
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise ValueError("%s: not a plain state_dict (torch refuses to load it with weights_only); save "
                             "model.state_dict(), or pass --trust-pickle if you trust the file" % path) from None
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise ValueError("%s: expected a state_dict (a dict of tensors), found %s" % (path, type(obj).__name__))
    return obj


def to_float32_arrays(state_dict, strip_prefix):
    """name -> C-contiguous little-endian float32 array, refusing anything that is not a float tensor."""
    arrays = collections.OrderedDict()
    for name, tensor in state_dict.items():
        if strip_prefix and name.startswith(strip_prefix):
            name = name[len(strip_prefix):]
        if not isinstance(tensor, torch.Tensor):
            raise ValueError("%s: not a tensor (%s)" % (name, type(tensor).__name__))
        if not tensor.is_floating_point():
            raise ValueError("%s: dtype %s is not a floating point type" % (name, tensor.dtype))
        if name in arrays:
            raise ValueError("%s: appears twice after removing the prefix %r" % (name, strip_prefix))
        array = tensor.detach().to(torch.float32).contiguous().numpy()
        arrays[name] = np.ascontiguousarray(array, dtype="<f4")
    return arrays


def class_count(arrays):
    """The length of the last bias in checkpoint order: the classifier's output features."""
    biases = [name for name in arrays if name.endswith(".bias")]
    if not biases or arrays[biases[-1]].ndim != 1:
        raise ValueError("cannot find the classifier's bias (no 1-D tensor named *.bias)")
    return arrays[biases[-1]].shape[0]


def serialize_header(arrays, metadata):
    """The JSON header, space-padded so that 8 + its length is a multiple of HEADER_ALIGNMENT."""
    header = collections.OrderedDict()
    header["__metadata__"] = metadata
    offset = 0
    for name, array in arrays.items():
        end = offset + array.nbytes
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, end]}
        offset = end
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % HEADER_ALIGNMENT)
    return text


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_safetensors(path, arrays, metadata):
    """Write atomically: a crash leaves either the old file or the new one, never half of one."""
    header = serialize_header(arrays, metadata)
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp_path = tempfile.mkstemp(prefix=".convert-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(struct.pack("<Q", len(header)))
            out.write(header)
            for array in arrays.values():
                out.write(array.tobytes(order="C"))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp_path, 0o666 & ~current_umask())  # mkstemp makes it private; give it a new file's mode
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.unlink(temp_path)
        raise


def convert(source, destination, variant="torchvision", strip_prefix="", trust_pickle=False):
    """Convert one checkpoint; returns (tensor count, class count)."""
    arrays = to_float32_arrays(load_state_dict(source, trust_pickle), strip_prefix)
    classes = class_count(arrays)
    metadata = collections.OrderedDict([("format", "libalexnet"), ("variant", variant),
                                        ("num_classes", str(classes))])
    write_safetensors(destination, arrays, metadata)
    return len(arrays), classes


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="checkpoint written by torch.save (e.g. alexnet-owt-7be5be79.pth)")
    parser.add_argument("destination", help="safetensors file to write")
    parser.add_argument("--variant", default="torchvision", choices=VARIANTS,
                        help="variant recorded in the metadata; names pass through unchanged (default torchvision)")
    parser.add_argument("--strip-prefix", default="", metavar="PREFIX",
                        help='remove PREFIX (e.g. "module.") from the start of every tensor name')
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow a pickled nn.Module (unpickling runs code: only for files you trust)")
    args = parser.parse_args(argv)
    try:
        count, classes = convert(args.source, args.destination, args.variant, args.strip_prefix,
                                 args.trust_pickle)
    except (OSError, ValueError) as error:
        print("convert_torchvision: %s" % error, file=sys.stderr)
        return 1
    print("%s: %d tensors, %d classes, variant %s" % (args.destination, count, classes, args.variant))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
