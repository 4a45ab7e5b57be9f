#!/usr/bin/env python3
"""Peer benchmark: the `mnist-mlp-pcx` config trained with the PCX library (JAX, CPU).

    python bench/peers/pcx_mnist_mlp.py [--epochs N] [--data DIR] [--seed S] ...

Trains a 784-128-128-128-10 GELU MLP with predictive coding exactly as PCX's own
examples do (pcx 0.6 API: `pxc.EnergyModule` + `pxc.Vode`, `pxu.step`,
`pxf.value_and_grad`, `pxu.Optim` around optax, everything inside one `pxf.jit`):

  per batch of 128:
    1. forward initialisation of every vode (STATUS.INIT), output vode clamped to the
       one-hot target (its `h` is frozen);
    2. T = 8 inference steps: SGD with momentum 0.65, lr 0.0105 on the vode values,
       gradients of the energy summed over the batch (per-sample node gradients);
       the momentum buffer is reset every batch (`optim_h.init` / `optim_h.clear`);
    3. one AdamW step on the weights (lr 2.97e-4, weight decay 3.55e-4, gradient of
       the batch-summed energy scaled by 1/batch), lr schedule: 10% linear warm-up,
       then cosine decay to 0.1x over the whole run.

The energy is PCX's `se_energy` (0.5 * ||h - u||^2) at every vode, prediction
`u = f(W x + b)` with GELU on the hidden layers and a linear output layer.

MNIST comes from the raw IDX files in `$PROSPECT_DATA/mnist/` (default `data/mnist/`,
fetched by `bash scripts/fetch-data.sh mnist`), read with numpy; nothing is downloaded.

Prints one JSON line on stdout (everything else goes to stderr):

  {"library": "pcx", "epochs": N, "train_samples_per_second": ..., "test_accuracy": ...,
   "seconds_per_epoch": [...], ...}

`train_samples_per_second` counts training only: evaluation is excluded, and so are the
first `--warmup-batches` batches of epoch 1, which include the JIT compilation (they are
real training steps, just not timed). `seconds_per_epoch` is the wall time of each
epoch's training loop, epoch 1 including compilation.
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

# The mnist-mlp-pcx config.
SIZES = (784, 128, 128, 128, 10)
BATCH = 128
T_STEPS = 8
H_LR = 0.0105
H_MOMENTUM = 0.65
W_LR = 2.97e-4
W_WD = 3.55e-4
WARMUP = 0.1
FINAL_FACTOR = 0.1
NUM_CLASSES = 10


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- data


def read_idx(path: str) -> np.ndarray:
    """Read a raw (uncompressed) IDX file: magic 0x0000TTDD, DD dims as big-endian u32."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic)")
    if raw[2] != 0x08:
        raise ValueError(f"{path}: only unsigned-byte IDX files are supported (type 0x{raw[2]:02x})")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    n = int(np.prod(dims))
    if len(raw) - offset != n:
        raise ValueError(f"{path}: expected {n} bytes of data for shape {dims}, found {len(raw) - offset}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def load_mnist(root: str, input_norm: str):
    d = os.path.join(root, "mnist")
    names = {
        "xtr": "train-images-idx3-ubyte",
        "ytr": "train-labels-idx1-ubyte",
        "xte": "t10k-images-idx3-ubyte",
        "yte": "t10k-labels-idx1-ubyte",
    }
    missing = [n for n in names.values() if not os.path.isfile(os.path.join(d, n))]
    if missing:
        raise FileNotFoundError(
            f"MNIST IDX files missing under {d}: {', '.join(missing)} "
            "(run `bash scripts/fetch-data.sh mnist`)"
        )
    arr = {k: read_idx(os.path.join(d, v)) for k, v in names.items()}

    def prep(x):
        x = x.reshape(x.shape[0], -1).astype(np.float32) / 255.0  # ToTensor(): [0, 1]
        if input_norm == "pcx":
            x = (x - 0.5) / 0.5  # Normalize((0.5,), (0.5,)) of the PCX MNIST MLP example
        return x

    return (
        prep(arr["xtr"]),
        arr["ytr"].astype(np.int32),
        prep(arr["xte"]),
        arr["yte"].astype(np.int32),
    )


# ---------------------------------------------------------------------------- model


class MLP(pxc.EnergyModule):
    """PCX's MLP: `x_l = vode_l(act(W_l x_{l-1} + b_l))`, linear last layer, se_energy."""

    def __init__(self, sizes, act_fn) -> None:
        super().__init__()
        self.act_fn = px.static(act_fn)
        self.layers = [pxnn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        self.vodes = [pxc.Vode() for _ in sizes[1:-1]] + [pxc.Vode(pxc.se_energy)]
        # The output vode is clamped to the target during training: never optimised.
        self.vodes[-1].h.frozen = True

    def __call__(self, x, y):
        for v, layer in zip(self.vodes[:-1], self.layers[:-1]):
            x = v(self.act_fn(layer(x)))
        x = self.vodes[-1](self.layers[-1](x))
        if y is not None:
            self.vodes[-1].set("h", y)
        return self.vodes[-1].get("u")


@pxf.vmap(pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0)), in_axes=(0, 0), out_axes=0)
def forward(x, y, *, model: MLP):
    return model(x, y)


@pxf.vmap(
    pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0)),
    in_axes=(0,),
    out_axes=(None, 0),
    axis_name="batch",
)
def energy(x, *, model: MLP):
    y_ = model(x, None)
    return jax.lax.psum(model.energy(), "batch"), y_


@pxf.vmap(
    pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0)),
    in_axes=(0,),
    out_axes=(None, 0),
    axis_name="batch",
)
def energy_mean(x, *, model: MLP):
    # The older PCX MLP script (pcax API): mean over the batch, so every node gradient, and
    # with it the effective inference step, is 1/batch of the per-sample one.
    y_ = model(x, None)
    return jax.lax.pmean(model.energy(), "batch"), y_


@pxf.jit(static_argnums=(0, 1))
def train_on_batch(T: int, reduction: str, x: jax.Array, y: jax.Array, *, model: MLP, optim_w: pxu.Optim,
                   optim_h: pxu.Optim):
    model.train()
    energy_fn = energy if reduction == "sum" else energy_mean

    # Forward initialisation; the output vode is set to the target.
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(x, y, model=model)

    optim_h.init(pxu.M_hasnot(pxc.VodeParam, frozen=True)(model))

    # Inference.
    for _ in range(T):
        with pxu.step(model, clear_params=pxc.VodeParam.Cache):
            _, g = pxf.value_and_grad(
                pxu.M_hasnot(pxc.VodeParam, frozen=True).to([False, True]), has_aux=True
            )(energy_fn)(x, model=model)
        optim_h.step(model, g["model"])

    optim_h.clear()

    # Learning: one weight step at the relaxed nodes.
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        _, g = pxf.value_and_grad(pxu.M(pxnn.LayerParam).to([False, True]), has_aux=True)(energy_fn)(x, model=model)
    # Weight gradients are the batch mean either way.
    optim_w.step(model, g["model"], scale_by=1.0 / x.shape[0] if reduction == "sum" else None)


@pxf.jit()
def eval_on_batch(x: jax.Array, y: jax.Array, *, model: MLP):
    model.eval()
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        y_ = forward(x, None, model=model).argmax(axis=-1)
    return (y_ == y).sum()


def make_schedule(kind: str, total_steps: int):
    """Weight learning rate per optimiser step (optax passes the step count, from 0)."""
    if kind == "pcx-example":
        # What PCX's MLP example uses: lr -> 1.1 lr over 10%, cosine down to 0.1 lr.
        return optax.warmup_cosine_decay_schedule(
            init_value=W_LR,
            peak_value=1.1 * W_LR,
            warmup_steps=int(WARMUP * total_steps),
            decay_steps=total_steps,
            end_value=FINAL_FACTOR * W_LR,
            exponent=1.0,
        )
    # The mnist-mlp-pcx config (same formula as prospect's `warmup_cosine`):
    # (t + 1) / warm for t < warm, then cosine from lr down to 0.1 lr over the rest.
    warm = float(round(WARMUP * total_steps))
    span = max(float(total_steps) - warm, 1.0)

    def schedule(count):
        t = jnp.asarray(count, jnp.float32)
        up = (t + 1.0) / max(warm, 1.0)
        p = jnp.minimum((t - warm) / span, 1.0)
        down = FINAL_FACTOR + (1.0 - FINAL_FACTOR) * 0.5 * (1.0 + jnp.cos(jnp.pi * p))
        return W_LR * jnp.where(t < warm, up, down)

    return schedule


def evaluate(xte, yte, model) -> float:
    """Accuracy on the whole test set; the last partial batch is padded, not dropped."""
    correct = 0
    n = xte.shape[0]
    for i in range(0, n, BATCH):
        xb, yb = xte[i: i + BATCH], yte[i: i + BATCH]
        k = xb.shape[0]
        if k < BATCH:  # keep one batch shape (no recompilation); padded rows never match
            xb = np.concatenate([xb, np.zeros((BATCH - k, xb.shape[1]), xb.dtype)])
            yb = np.concatenate([yb, np.full((BATCH - k,), -1, yb.dtype)])
        correct += int(eval_on_batch(jnp.asarray(xb), jnp.asarray(yb), model=model))
    return correct / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--data", default=os.environ.get("PROSPECT_DATA", "data"), help="data root (holds mnist/)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup-batches", type=int, default=5,
                    help="batches of epoch 1 left out of the throughput (JIT compile)")
    ap.add_argument("--input-norm", choices=("pcx", "unit"), default="pcx",
                    help="pcx: (x/255 - 0.5)/0.5 in [-1, 1] as PCX's example; unit: x/255 in [0, 1]")
    ap.add_argument("--schedule", choices=("config", "pcx-example"), default="config",
                    help="config: warm-up 0 -> lr, cosine to 0.1 lr; pcx-example: lr -> 1.1 lr, cosine to 0.1 lr")
    ap.add_argument("--energy-reduction", choices=("sum", "mean"), default="sum",
                    help="sum: psum over the batch, per-sample node steps (pcx 0.6 examples, prospect); "
                         "mean: pmean as the older PCX MLP script, node steps 1/batch as large")
    ap.add_argument("--max-batches", type=int, default=0, help="stop each epoch after this many batches (testing)")
    args = ap.parse_args()
    if args.epochs < 1:
        ap.error("--epochs must be >= 1")

    px.RKG.seed(args.seed)
    rng = np.random.default_rng(args.seed)

    xtr, ytr, xte, yte = load_mnist(args.data, args.input_norm)
    ytr_1h = np.eye(NUM_CLASSES, dtype=np.float32)[ytr]
    n_batches = xtr.shape[0] // BATCH  # drop_last=True, as the PCX dataloader
    if args.max_batches:
        n_batches = min(n_batches, args.max_batches)
    if args.warmup_batches >= n_batches:
        ap.error("--warmup-batches must be smaller than the batches per epoch")
    total_steps = n_batches * args.epochs

    model = MLP(SIZES, jax.nn.gelu)
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
        forward(jnp.zeros((BATCH, SIZES[0])), None, model=model)
        optim_h = pxu.Optim(lambda: optax.sgd(H_LR, momentum=H_MOMENTUM))
        optim_w = pxu.Optim(
            lambda: optax.adamw(make_schedule(args.schedule, total_steps), weight_decay=W_WD),
            pxu.M(pxnn.LayerParam)(model),
        )

    def sync():
        jax.block_until_ready(model.layers[-1].nn.weight.get())

    seconds_per_epoch = []
    accuracies = []
    timed_seconds = 0.0
    timed_samples = 0
    compile_seconds = None
    for epoch in range(args.epochs):
        perm = rng.permutation(xtr.shape[0])
        model.train()  # same static structure as inside the jitted step: no recompile after eval
        t0 = time.perf_counter()
        t_timed = t0
        for b in range(n_batches):
            if epoch == 0 and b == args.warmup_batches:
                sync()
                t_timed = time.perf_counter()
                compile_seconds = t_timed - t0
            idx = perm[b * BATCH: (b + 1) * BATCH]
            train_on_batch(T_STEPS, args.energy_reduction, jnp.asarray(xtr[idx]), jnp.asarray(ytr_1h[idx]),
                           model=model, optim_w=optim_w, optim_h=optim_h)
        sync()
        t1 = time.perf_counter()
        seconds_per_epoch.append(t1 - t0)
        timed_seconds += t1 - t_timed
        timed_samples += (n_batches - (args.warmup_batches if epoch == 0 else 0)) * BATCH
        acc = evaluate(xte, yte, model)
        accuracies.append(acc)
        note = " (incl. JIT compile)" if epoch == 0 else ""
        log(f"pcx: epoch {epoch + 1}/{args.epochs}: train {t1 - t0:.2f} s, "
            f"{(n_batches * BATCH) / (t1 - t0):.0f} samples/s{note}, test accuracy {acc:.4f}")

    sps = timed_samples / timed_seconds
    steady = seconds_per_epoch[1:]
    result = {
        "library": "pcx",
        "epochs": args.epochs,
        "train_samples_per_second": round(sps, 2),
        "test_accuracy": accuracies[-1],
        "seconds_per_epoch": [round(s, 3) for s in seconds_per_epoch],
        "first_epoch_seconds": round(seconds_per_epoch[0], 3),
        "compile_and_warmup_seconds": round(compile_seconds, 3),
        "warmup_batches": args.warmup_batches,
        "steady_state_samples_per_second": (
            round(n_batches * BATCH * len(steady) / sum(steady), 2) if steady else None
        ),
        "test_accuracy_per_epoch": accuracies,
        "train_samples_per_epoch": n_batches * BATCH,
        "batch_size": BATCH,
        "inference_steps": T_STEPS,
        "input_norm": args.input_norm,
        "schedule": args.schedule,
        "energy_reduction": args.energy_reduction,
        "seed": args.seed,
        "versions": {
            "pcx": _version("pcx"),
            "jax": jax.__version__,
            "jaxlib": _version("jaxlib"),
            "optax": optax.__version__,
            "equinox": _version("equinox"),
            "numpy": np.__version__,
        },
        "devices": [str(d) for d in jax.devices()],
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(result), flush=True)
    return 0


def _version(dist: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001
        return None


if __name__ == "__main__":
    sys.exit(main())
