#!/usr/bin/env python3
"""Reads one of the authors' pretrained concept-drift checkpoints (a PyTorch `.pth` of the three
bias-free linear layers 784-32-32-10, e.g. `experiments/nature_concept_drift/
pre_model-FashionMNIST-2.pth` of YuhangSong/Prospective-Configuration, the one their drift runs
load) without PyTorch, and prints each layer's scale against Xavier's and the network's test
error on the whole Fashion-MNIST test set (`W2 sigmoid(W1 sigmoid(W0 x))`, x in [0, 1]).

    python3 scripts/authors-checkpoint.py PATH.pth [--data data/fashion-mnist] [--npz OUT.npz]
        [--safetensors OUT.safetensors]

`--safetensors` writes the weights as prospect reads them (`edges.{i}.weight`, layer i of the
state dict in order, `[d_out, d_in]`, f32), for `prospect repro concept-drift --protocol authors
--pretrained OUT.safetensors`. Needs numpy only. The checkpoint is not shipped here (their repository is AGPL-3.0).
"""
import argparse
import collections
import gzip
import json
import os
import pickle
import struct
import sys
import zipfile

import numpy as np


def load_pth(path):
    """The state dict of a zip-format `.pth` whose tensors are float32."""
    z = zipfile.ZipFile(path)
    pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
    prefix = pkl[: -len("data.pkl")]

    def rebuild(storage, offset, size, stride, *rest):
        data = np.frombuffer(z.read(prefix + "data/" + storage), dtype=np.float32)
        n = int(np.prod(size))
        return np.lib.stride_tricks.as_strided(
            data[offset:offset + n], shape=size, strides=[4 * s for s in stride]).copy()

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if name == "_rebuild_tensor_v2":
                return rebuild
            if name == "OrderedDict":
                return collections.OrderedDict
            if name.endswith("Storage"):
                return name
            return super().find_class(module, name)

        def persistent_load(self, pid):
            _, dtype, key, *_ = pid
            if dtype != "FloatStorage":
                sys.exit(f"{path}: tensor storage {dtype}, expected FloatStorage (float32)")
            return key

    return Unpickler(z.open(pkl)).load()


def write_safetensors(path, tensors, metadata):
    """Writes float32 `tensors` (name -> array) and string `metadata` in the safetensors format:
    an 8-byte little-endian header length, the JSON header (padded to 8 bytes), the data."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        b = np.ascontiguousarray(t, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


def idx(path, offset, shape):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset).reshape(shape)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pth")
    ap.add_argument("--data", default=os.path.join(os.environ.get("PROSPECT_DATA", "data"),
                                                   "fashion-mnist"))
    ap.add_argument("--npz", help="also write the weights here (keys as in the state dict)")
    ap.add_argument("--safetensors", help="also write the weights here, as prospect reads them")
    a = ap.parse_args()
    sd = load_pth(a.pth)
    ws = list(sd.values())
    for k, w in sd.items():
        xavier = np.sqrt(2.0 / sum(w.shape))
        print(f"{k}: {w.shape[1]} -> {w.shape[0]}, std {w.std():.4f} = {w.std() / xavier:.2f}x Xavier")
    x = idx(os.path.join(a.data, "t10k-images-idx3-ubyte.gz"), 16, (-1, 784)) / np.float32(255)
    y = idx(os.path.join(a.data, "t10k-labels-idx1-ubyte.gz"), 8, (-1,))
    h = x.astype(np.float32)
    for w in ws[:-1]:
        h = 1.0 / (1.0 + np.exp(-(h @ w.T)))
    out = h @ ws[-1].T
    print(f"test error on the {len(y)} Fashion-MNIST test images: {(out.argmax(1) != y).mean():.4f}")
    if a.npz:
        np.savez(a.npz, **sd)
    if a.safetensors:
        write_safetensors(a.safetensors, {f"edges.{i}.weight": w for i, w in enumerate(ws)},
                          {"source": os.path.basename(a.pth)})
        print(f"wrote {a.safetensors}")


if __name__ == "__main__":
    main()
