#!/usr/bin/env python3
"""Peer speed benchmark: PCX's VGG-5 predictive-coding network (JAX, CPU), synthetic CIFAR data.

    JAX_PLATFORMS=cpu python bench/peers/pcx_vgg5.py [--batch 128] [--steps T] [--batches 20]
        [--warmup 3] [--classes 10] [--dataset cifar10|cifar100] [--energy ce|se] [--act NAME]

The network and the training step are those of the PCX benchmark paper (Pinchetti et al.
2024, "Benchmarking Predictive Coding Networks -- Made Simple"), file
examples/s4_1_discriminative_mode/VGG5/cifar10/PC_CE.py (and PC_SE.py) of liukidar/pcx at
tag v0.6.1-public (commit 3e9742152f9e61b50af9a4d23b590597c48deccd), ported from the pcax
0.6.1 API to the pinned pcx 0.6.3 API in the same way as bench/peers/pcx_mnist_mlp.py:

  VGG-5: 4 x [Conv2d 3x3 pad 1 -> act -> MaxPool 2x2/2 -> Vode], channels 128, 256, 512,
  512, on 3x32x32 (channel-first, as equinox convs want), then flatten (512*2*2 = 2048)
  -> Linear(2048, classes) -> output Vode with ce_energy (cross-entropy) or se_energy,
  clamped to the one-hot label (its `h` is frozen). Hidden vodes use se_energy.

  per batch (one `pxf.jit`-compiled call):
    1. forward initialisation of every vode (STATUS.INIT), output vode set to the target;
    2. T inference steps: SGD with momentum on the vode values (state reset per batch),
       gradients of the batch-summed energy (= the paper's pmean energy with
       `scale_by_batch_size=True`, i.e. per-sample node gradients);
    3. one AdamW step on the weights, gradient of the batch-mean energy (paper: pmean),
       lr schedule optax.warmup_cosine_decay_schedule(lr -> 1.1 lr over 10%, cosine down to
       0.1 lr), computed here over the warm-up + timed batches.

Hyperparameters default to the published CIFAR-10 / CIFAR-100 PC configs (YAML files next
to those scripts; see docs/pcx-vgg5-notes.md). The data are random: images ~ N(0, 1) of
shape [N, 3, 32, 32] and uniform random labels from numpy.random.default_rng(seed), the same
arrays as bench/peers/torch_vgg5.py draws. All batches are made and put on the device
before the clock starts.

Prints ONE JSON line on stdout (progress goes to stderr):

  {"library": "pcx", "net": "vgg5", "batch": 128, "T": 8, "samples_per_second": ...,
   "seconds_per_batch": ..., "jax_version": ..., "pcx_version": ..., ...}

`seconds_per_batch` / `samples_per_second` cover the `--batches` timed batches only; the
`--warmup` batches before them (real training steps, including the JIT compilation) are
reported separately as `warmup_seconds`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

# CPU only, before JAX is imported. XLA's CPU client uses every core it is given.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import pcx as px  # noqa: E402
import pcx.functional as pxf  # noqa: E402
import pcx.nn as pxnn  # noqa: E402
import pcx.predictive_coding as pxc  # noqa: E402
import pcx.utils as pxu  # noqa: E402

# Published PC configs (liukidar/pcx @ v0.6.1-public, examples/s4_1_discriminative_mode/VGG5/):
#   cifar10/VGG5_PCN_CE.yaml, cifar10/VGG5_PCN_SE.yaml,
#   cifar100/VGG5_PCN_CE_cifar100.yaml, cifar100/VGG5_PCN_SE_cifar100.yaml
# (beta = 1, beta_factor = 1, beta_ir = 0 in all four: plain PC, target clamped to y.)
CONFIGS = {
    ("cifar10", "ce"): dict(T=8, act="gelu", h_lr=0.014708110891388754, h_momentum=0.05,
                            w_lr=0.0002641020393177285, w_wd=1.2107509557065504e-05),
    ("cifar10", "se"): dict(T=7, act="gelu", h_lr=0.02348681827141059, h_momentum=0.30000000000000004,
                            w_lr=0.0002657691155688603, w_wd=0.0066559627972820395),
    ("cifar100", "ce"): dict(T=12, act="hard_tanh", h_lr=0.011510981082033004, h_momentum=0.25,
                             w_lr=0.00021550147504766553, w_wd=0.007599378216624812),
    ("cifar100", "se"): dict(T=7, act="leaky_relu", h_lr=0.014971608777949093, h_momentum=0.35000000000000003,
                             w_lr=0.00014796725461384345, w_wd=0.00015400633791940761),
}
CHANNELS = (128, 256, 512, 512)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- model


class VGG5(pxc.EnergyModule):
    """The paper's `ConvNet`: x_l = vode_l(pool(act(conv_l(x_{l-1})))), then a linear classifier."""

    def __init__(self, nm_classes: int, act_fn, energy: str) -> None:
        super().__init__()
        self.nm_classes = px.static(nm_classes)
        self.act_fn = px.static(act_fn)
        chans = (3,) + CHANNELS
        self.feature_layers = [
            (
                pxnn.Conv2d(cin, cout, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)),
                pxnn.MaxPool2d(kernel_size=2, stride=2),
            )
            for cin, cout in zip(chans[:-1], chans[1:])
        ]
        self.classifier = pxnn.Linear(CHANNELS[-1] * 2 * 2, nm_classes)
        out_energy = pxc.ce_energy if energy == "ce" else pxc.se_energy
        self.vodes = [pxc.Vode() for _ in CHANNELS] + [pxc.Vode(out_energy)]
        # The output vode is clamped to the target during training: never optimised.
        self.vodes[-1].h.frozen = True

    def __call__(self, x, y):
        for (conv, pool), node in zip(self.feature_layers, self.vodes[:-1]):
            x = node(pool(self.act_fn(conv(x))))
        x = x.flatten()
        x = self.vodes[-1](self.classifier(x))
        if y is not None:
            # beta = 1 in the published configs: h = u - 1 * (u - y) = y.
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")


@pxf.vmap(pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0)), in_axes=(0, 0), out_axes=0)
def forward(x, y, *, model: VGG5):
    return model(x, y)


@pxf.vmap(
    pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0)),
    in_axes=(0,),
    out_axes=(None, 0),
    axis_name="batch",
)
def energy(x, *, model: VGG5):
    y_ = model(x, None)
    return jax.lax.psum(model.energy(), "batch"), y_


@pxf.jit(static_argnums=0)
def train_on_batch(T: int, x: jax.Array, y: jax.Array, *, model: VGG5, optim_w: pxu.Optim, optim_h: pxu.Optim):
    model.train()

    # Forward initialisation; the output vode is set to the target.
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(x, y, model=model)

    optim_h.init(pxu.M_hasnot(pxc.VodeParam, frozen=True)(model))

    # Inference: T node steps on the batch-summed energy (per-sample node gradients).
    for _ in range(T):
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            _, g = pxf.value_and_grad(
                pxu.M_hasnot(pxc.VodeParam, frozen=True).to([False, True]), has_aux=True
            )(energy)(x, model=model)
        optim_h.step(model, g["model"])

    optim_h.clear()

    # Learning: one weight step at the relaxed nodes, batch-mean gradient.
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        e, g = pxf.value_and_grad(pxu.M(pxnn.LayerParam).to([False, True]), has_aux=True)(energy)(x, model=model)
    optim_w.step(model, g["model"], scale_by=1.0 / x.shape[0])
    return e[0] if isinstance(e, tuple) else e


def _version(dist: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001
        return None


def synthetic_batches(n: int, batch: int, classes: int, seed: int):
    """n batches of N(0, 1) images [batch, 3, 32, 32] (float32) and labels in [0, classes)."""
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((n, batch, 3, 32, 32), dtype=np.float32)
    ys = rng.integers(0, classes, size=(n, batch)).astype(np.int64)
    return xs, ys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=None, help="inference steps T (default: the published config's)")
    ap.add_argument("--batches", type=int, default=20, help="timed batches")
    ap.add_argument("--warmup", type=int, default=3, help="untimed batches first (include the JIT compile)")
    ap.add_argument("--classes", type=int, default=None, help="default: 10 for cifar10, 100 for cifar100")
    ap.add_argument("--dataset", choices=("cifar10", "cifar100"), default="cifar10",
                    help="which published hyperparameters to use")
    ap.add_argument("--energy", choices=("ce", "se"), default="ce",
                    help="output energy: ce (PC_CE.py, cross-entropy) or se (PC_SE.py, squared error)")
    ap.add_argument("--act", default=None, help="jax.nn activation name (default: the config's)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.batch < 1 or args.batches < 1 or args.warmup < 1:
        ap.error("--batch and --batches must be >= 1, --warmup >= 1 (the first call compiles)")

    cfg = dict(CONFIGS[(args.dataset, args.energy)])
    T = cfg["T"] if args.steps is None else args.steps
    act = args.act or cfg["act"]
    classes = args.classes or (10 if args.dataset == "cifar10" else 100)
    if T < 1 or classes < 2:
        ap.error("--steps must be >= 1 and --classes >= 2")

    px.RKG.seed(args.seed)
    n_total = args.warmup + args.batches
    xs_np, ys_np = synthetic_batches(n_total, args.batch, classes, args.seed)
    xs = [jnp.asarray(x) for x in xs_np]
    ys = [jax.nn.one_hot(jnp.asarray(y), classes) for y in ys_np]
    jax.block_until_ready((xs, ys))

    model = VGG5(classes, getattr(jax.nn, act), args.energy)
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(jnp.zeros((args.batch, 3, 32, 32), jnp.float32), None, model=model)
        schedule = optax.warmup_cosine_decay_schedule(
            init_value=cfg["w_lr"],
            peak_value=1.1 * cfg["w_lr"],
            warmup_steps=int(0.1 * n_total),
            decay_steps=n_total,
            end_value=0.1 * cfg["w_lr"],
            exponent=1.0,
        )
        optim_h = pxu.Optim(lambda: optax.sgd(cfg["h_lr"], momentum=cfg["h_momentum"]))
        optim_w = pxu.Optim(
            lambda: optax.adamw(schedule, weight_decay=cfg["w_wd"]),
            pxu.M(pxnn.LayerParam)(model),
        )

    def step(i):
        return train_on_batch(T, xs[i], ys[i], model=model, optim_w=optim_w, optim_h=optim_h)

    def sync():
        jax.block_until_ready(model.classifier.nn.weight.get())

    log(f"pcx vgg5: batch {args.batch}, T {T}, {args.dataset}/{args.energy}, act {act}, classes {classes}, "
        f"{args.warmup} warm-up + {args.batches} timed batches, devices {jax.devices()}")
    t0 = time.perf_counter()
    e = None
    for i in range(args.warmup):
        e = step(i)
    sync()
    t1 = time.perf_counter()
    log(f"pcx vgg5: warm-up (incl. compile) {t1 - t0:.2f} s, energy {float(e):.4g}")
    for i in range(args.warmup, n_total):
        e = step(i)
    sync()
    t2 = time.perf_counter()
    e_last = float(e)
    if not np.isfinite(e_last):
        log(f"pcx vgg5: non-finite energy {e_last}")
        return 1
    spb = (t2 - t1) / args.batches
    log(f"pcx vgg5: {args.batches} batches in {t2 - t1:.2f} s, {spb:.3f} s/batch, last energy {e_last:.4g}")

    print(json.dumps({
        "library": "pcx",
        "net": "vgg5",
        "batch": args.batch,
        "T": T,
        "samples_per_second": round(args.batch / spb, 2),
        "seconds_per_batch": round(spb, 5),
        "jax_version": jax.__version__,
        "pcx_version": _version("pcx"),
        "timed_batches": args.batches,
        "warmup_batches": args.warmup,
        "warmup_seconds": round(t1 - t0, 3),
        "classes": classes,
        "config": f"{args.dataset}-pc-{args.energy}",
        "energy": args.energy,
        "act": act,
        "h_lr": cfg["h_lr"],
        "h_momentum": cfg["h_momentum"],
        "w_lr": cfg["w_lr"],
        "w_wd": cfg["w_wd"],
        "last_energy": e_last,
        "seed": args.seed,
        "jaxlib_version": _version("jaxlib"),
        "optax_version": optax.__version__,
        "equinox_version": _version("equinox"),
        "devices": [str(d) for d in jax.devices()],
        "cpu_count": os.cpu_count(),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
