#!/usr/bin/env python3
"""Peer speed benchmark: the same VGG-5 in plain PyTorch, trained by backprop (CPU), synthetic data.

    python bench/peers/torch_vgg5.py [--batch 128] [--batches 20] [--warmup 3] [--classes 10]
        [--dataset cifar10|cifar100] [--loss ce|se] [--act NAME] [--threads N]

The network is PCX's VGG-5 (the `ConvNet` of examples/s4_1_discriminative_mode/VGG5/cifar10/
BP_CE.py and BP_SE.py, liukidar/pcx tag v0.6.1-public, commit
3e9742152f9e61b50af9a4d23b590597c48deccd): 4 x [Conv2d 3x3 pad 1 -> act -> MaxPool 2x2/2],
channels 128, 256, 512, 512 on [N, 3, 32, 32] (NCHW), flatten (2048) -> Linear(2048, classes).
PyTorch's default init (uniform +-1/sqrt(fan_in) for weights and biases) has the same
distribution as equinox's, which PCX uses.

Per batch: forward, loss, autograd backward, one AdamW step (optax/torch defaults b1 0.9,
b2 0.999, eps 1e-8), lr schedule = optax.warmup_cosine_decay_schedule(lr -> 1.1 lr over 10%,
cosine to 0.1 lr), computed over the warm-up + timed batches, as in the paper's BP scripts.
Loss as in those scripts: ce = mean over the batch of -sum(y * log_softmax(out)), i.e.
F.cross_entropy; se = mean over the batch of sum((out - y)^2). Hyperparameters default to the
published BP configs (VGG5_BP_CE.yaml / VGG5_BP_SE.yaml and the _cifar100 ones).

"gelu" is the tanh approximation, as jax.nn.gelu's default; "hard_tanh" is nn.Hardtanh;
"leaky_relu" has slope 0.01 in both libraries.

The data are the same arrays as bench/peers/pcx_vgg5.py draws: numpy.random.default_rng(seed),
images ~ N(0, 1) [N, 3, 32, 32] float32, then labels uniform in [0, classes).

Prints ONE JSON line on stdout (progress goes to stderr):

  {"library": "pytorch-bp", "net": "vgg5", "batch": 128, "T": null, "samples_per_second": ...,
   "seconds_per_batch": ..., "torch_version": ..., "torch_num_threads": ..., ...}

`T` is null: backprop has no inference steps. Timing covers the `--batches` timed batches
only; the `--warmup` batches before them are reported as `warmup_seconds`.
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
import torch.nn as nn
import torch.nn.functional as F

# Published BP configs (liukidar/pcx @ v0.6.1-public, examples/s4_1_discriminative_mode/VGG5/):
#   cifar10/VGG5_BP_CE.yaml, cifar10/VGG5_BP_SE.yaml,
#   cifar100/VGG5_BP_CE_cifar100.yaml, cifar100/VGG5_BP_SE_cifar100.yaml
CONFIGS = {
    ("cifar10", "ce"): dict(act="gelu", w_lr=0.0002942494542760219, w_wd=1.003434259988122e-05),
    ("cifar10", "se"): dict(act="gelu", w_lr=0.0002788215086724204, w_wd=0.00011081592082589031),
    ("cifar100", "ce"): dict(act="hard_tanh", w_lr=0.00020820447386646812, w_wd=2.2142560237670734e-05),
    ("cifar100", "se"): dict(act="gelu", w_lr=0.00019889634426085358, w_wd=0.00013051747032219178),
}
CHANNELS = (128, 256, 512, 512)
ACTS = {
    "gelu": lambda: nn.GELU(approximate="tanh"),  # jax.nn.gelu(approximate=True)
    "gelu_exact": lambda: nn.GELU(),
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "hard_tanh": nn.Hardtanh,
    "tanh": nn.Tanh,
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class VGG5(nn.Module):
    def __init__(self, classes: int, act: str) -> None:
        super().__init__()
        chans = (3,) + CHANNELS
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=1), ACTS[act](),
                       nn.MaxPool2d(kernel_size=2, stride=2)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(CHANNELS[-1] * 2 * 2, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def warmup_cosine(step: int, lr: float, total: int) -> float:
    """optax.warmup_cosine_decay_schedule(lr, 1.1 lr, int(0.1 total), total, 0.1 lr, exponent=1)."""
    init, peak, end = lr, 1.1 * lr, 0.1 * lr
    warm = int(0.1 * total)
    if step < warm:
        return init + (peak - init) * step / warm
    span = max(total - warm, 1)
    p = min(max(step - warm, 0) / span, 1.0)
    return end + (peak - end) * 0.5 * (1.0 + math.cos(math.pi * p))


def synthetic_batches(n: int, batch: int, classes: int, seed: int):
    """Identical to pcx_vgg5.synthetic_batches."""
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((n, batch, 3, 32, 32), dtype=np.float32)
    ys = rng.integers(0, classes, size=(n, batch)).astype(np.int64)
    return xs, ys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=None, help="accepted for symmetry with pcx_vgg5.py; ignored (BP)")
    ap.add_argument("--batches", type=int, default=20, help="timed batches")
    ap.add_argument("--warmup", type=int, default=3, help="untimed batches first")
    ap.add_argument("--classes", type=int, default=None, help="default: 10 for cifar10, 100 for cifar100")
    ap.add_argument("--dataset", choices=("cifar10", "cifar100"), default="cifar10",
                    help="which published hyperparameters to use")
    ap.add_argument("--loss", choices=("ce", "se"), default="ce", help="ce (BP_CE.py) or se (BP_SE.py)")
    ap.add_argument("--act", choices=sorted(ACTS), default=None, help="default: the config's")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.batch < 1 or args.batches < 1 or args.warmup < 0:
        ap.error("--batch and --batches must be >= 1, --warmup >= 0")

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    cfg = dict(CONFIGS[(args.dataset, args.loss)])
    act = args.act or cfg["act"]
    classes = args.classes or (10 if args.dataset == "cifar10" else 100)
    if classes < 2:
        ap.error("--classes must be >= 2")

    torch.manual_seed(args.seed)
    n_total = args.warmup + args.batches
    xs_np, ys_np = synthetic_batches(n_total, args.batch, classes, args.seed)
    xs = torch.from_numpy(xs_np)
    ys = torch.from_numpy(ys_np)
    ys_1h = F.one_hot(ys, classes).float()

    model = VGG5(classes, act)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["w_lr"], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=cfg["w_wd"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: warmup_cosine(s, cfg["w_lr"], n_total) / cfg["w_lr"])

    def step(i):
        opt.zero_grad(set_to_none=True)
        out = model(xs[i])
        if args.loss == "ce":
            loss = F.cross_entropy(out, ys[i])
        else:
            loss = ((out - ys_1h[i]) ** 2).sum(dim=1).mean()
        loss.backward()
        opt.step()
        sched.step()
        return loss

    log(f"torch vgg5 (backprop): batch {args.batch}, {args.dataset}/{args.loss}, act {act}, classes {classes}, "
        f"{args.warmup} warm-up + {args.batches} timed batches, {torch.get_num_threads()} threads")
    t0 = time.perf_counter()
    loss = None
    for i in range(args.warmup):
        loss = step(i)
    t1 = time.perf_counter()
    if loss is not None:
        log(f"torch vgg5: warm-up {t1 - t0:.2f} s, loss {loss.item():.4g}")
    for i in range(args.warmup, n_total):
        loss = step(i)
    t2 = time.perf_counter()  # CPU autograd is synchronous: nothing left in flight
    last = float(loss.item())
    if not np.isfinite(last):
        log(f"torch vgg5: non-finite loss {last}")
        return 1
    spb = (t2 - t1) / args.batches
    log(f"torch vgg5: {args.batches} batches in {t2 - t1:.2f} s, {spb:.3f} s/batch, last loss {last:.4g}")

    print(json.dumps({
        "library": "pytorch-bp",
        "net": "vgg5",
        "batch": args.batch,
        "T": None,
        "samples_per_second": round(args.batch / spb, 2),
        "seconds_per_batch": round(spb, 5),
        "torch_version": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "timed_batches": args.batches,
        "warmup_batches": args.warmup,
        "warmup_seconds": round(t1 - t0, 3),
        "classes": classes,
        "config": f"{args.dataset}-bp-{args.loss}",
        "loss": args.loss,
        "act": act,
        "w_lr": cfg["w_lr"],
        "w_wd": cfg["w_wd"],
        "last_loss": last,
        "seed": args.seed,
        "numpy_version": np.__version__,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cpu_count": os.cpu_count(),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
