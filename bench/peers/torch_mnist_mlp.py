#!/usr/bin/env python3
"""Peer benchmark: the `mnist-mlp-pcx` network trained by *backprop* in plain PyTorch (CPU).

    python bench/peers/torch_mnist_mlp.py [--epochs N] [--data DIR] [--seed S] [--threads N]

What a PyTorch user would write for the same network and schedule as prospect's
`mnist-mlp-pcx` preset: nn.Sequential(Linear 784-128, GELU(tanh), Linear 128-128, GELU,
Linear 128-128, GELU, Linear 128-10), PyTorch's default init, loss 0.5·||out - y||² summed
over units and averaged over the batch (the energy of the output node of the PC net),
torch.optim.AdamW(lr 2.97e-4, weight decay 3.55e-4), warm-up (10%, to 1.1x) + cosine decay
to 0.1x, batch 128, shuffled each epoch, inputs (x/255 - 0.5)/0.5, autograd. Install:
`pip install -r bench/peers/requirements-torch.txt` (torch 2.15.0 from PyPI).

MNIST comes from the raw IDX files in `$PROSPECT_DATA/mnist/` (read as pcx_mnist_mlp.py does).
Prints one JSON line on stdout (progress on stderr):

  {"library": "pytorch-bp", "epochs": N, "train_samples_per_second": ..., "test_accuracy": ...}

`train_samples_per_second` counts training only (evaluation excluded, and the first
`--warmup-batches` batches of epoch 1).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn


BATCH = 128
W_LR = 2.97e-4
W_WD = 3.55e-4


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def read_idx(path: str) -> np.ndarray:
    """An unsigned-byte IDX file as an array, with its header checked."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (bad magic)")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {int(np.prod(dims))} bytes for shape {dims}, found {len(raw) - offset}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def load(root: str):
    d = os.path.join(root, "mnist")
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
    missing = [n for n in names if not os.path.isfile(os.path.join(d, n))]
    if missing:
        raise FileNotFoundError(f"MNIST IDX files missing under {d}: {', '.join(missing)} "
                                "(run `bash scripts/fetch-data.sh mnist`)")
    xtr, ytr, xte, yte = (read_idx(os.path.join(d, n)) for n in names)
    prep = lambda x: ((x.reshape(x.shape[0], -1).astype(np.float32) / 255.0) - 0.5) / 0.5  # noqa: E731
    return prep(xtr), ytr.astype(np.int64), prep(xte), yte.astype(np.int64)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--data", default=os.environ.get("PROSPECT_DATA", "data"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    ap.add_argument("--warmup-batches", type=int, default=5)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    xtr, ytr, xte, yte = load(args.data)
    xtr_t, xte_t = torch.from_numpy(xtr), torch.from_numpy(xte)
    ytr_1h = torch.nn.functional.one_hot(torch.from_numpy(ytr), 10).float()
    act = lambda: nn.GELU(approximate="tanh")  # noqa: E731
    model = nn.Sequential(nn.Linear(784, 128), act(), nn.Linear(128, 128), act(),
                          nn.Linear(128, 128), act(), nn.Linear(128, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=W_LR, weight_decay=W_WD)
    n_batches = xtr.shape[0] // BATCH
    total = n_batches * args.epochs
    warm = max(1, int(0.1 * total))

    def lr_at(step: int) -> float:
        if step < warm:
            return W_LR * (1.0 + 0.1 * step / warm)
        t = (step - warm) / max(1, total - warm)
        return W_LR * (0.1 + 0.5 * (1.1 - 0.1) * (1.0 + math.cos(math.pi * t)))

    step = 0
    timed_seconds, timed_samples, accs, secs = 0.0, 0, [], []
    for epoch in range(args.epochs):
        perm = torch.from_numpy(rng.permutation(xtr.shape[0]))
        model.train()
        t0 = time.perf_counter()
        t_timed = t0
        for b in range(n_batches):
            if epoch == 0 and b == args.warmup_batches:
                t_timed = time.perf_counter()
            idx = perm[b * BATCH:(b + 1) * BATCH]
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            out = model(xtr_t[idx])
            loss = 0.5 * ((out - ytr_1h[idx]) ** 2).sum(dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        t1 = time.perf_counter()
        secs.append(t1 - t0)
        timed_seconds += t1 - t_timed
        timed_samples += (n_batches - (args.warmup_batches if epoch == 0 else 0)) * BATCH
        model.eval()
        with torch.no_grad():
            acc = float((model(xte_t).argmax(1).numpy() == yte).mean())
        accs.append(acc)
        log(f"torch: epoch {epoch + 1}/{args.epochs}: train {t1 - t0:.2f} s, test accuracy {acc:.4f}")
    print(json.dumps({
        "library": "pytorch-bp",
        "epochs": args.epochs,
        "train_samples_per_second": round(timed_samples / timed_seconds, 2),
        "test_accuracy": accs[-1],
        "seconds_per_epoch": [round(s, 3) for s in secs],
        "torch_version": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "batch_size": BATCH,
        "seed": args.seed,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
