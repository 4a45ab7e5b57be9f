#!/usr/bin/env python3
"""A real safetensors client reads what `prospect` writes.

Trains a tiny run with the `prospect` binary, loads `model.safetensors` and
`optimizer.safetensors` with Python's `safetensors` (numpy backend), and checks names,
shapes, dtypes, metadata, and every value against what `prospect inspect --tensor` prints.

    python3 -m pip install safetensors numpy
    cargo build -p prospect-cli
    python3 tests/python/test_safetensors_client.py        # or: pytest tests/python

The binary is $PROSPECT_BIN, else target/{debug,release}/prospect of this repository.
Run by the Rust test crates/prospect-cli/tests/python_client.rs as part of `cargo test`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

REPO = Path(__file__).resolve().parents[2]


def prospect_bin() -> str:
    env = os.environ.get("PROSPECT_BIN")
    if env:
        return env
    for profile in ("debug", "release"):
        p = REPO / "target" / profile / "prospect"
        if p.is_file():
            return str(p)
    raise RuntimeError("no prospect binary: run `cargo build -p prospect-cli` or set PROSPECT_BIN")


def prospect(*args: str) -> str:
    out = subprocess.run([prospect_bin(), *args], check=True, capture_output=True, text=True)
    return out.stdout


def train(tmp: str) -> Path:
    run = Path(tmp) / "run"
    prospect("train", "--out", str(run), "--epochs", "2", "--batches-per-epoch", "5",
             "--threads", "1", "--no-plot", "--quiet")
    return run


def test_model_tensors_match_what_prospect_reports() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = train(tmp)
        tensors = load_file(str(run / "model.safetensors"))
        assert sorted(tensors) == ["edges.0.bias", "edges.0.weight", "edges.1.bias", "edges.1.weight"]
        shapes = {k: v.shape for k, v in tensors.items()}
        assert shapes == {
            "edges.0.weight": (128, 64),
            "edges.0.bias": (128,),
            "edges.1.weight": (10, 128),
            "edges.1.bias": (10,),
        }, shapes
        for name, array in tensors.items():
            assert array.dtype == np.float32, (name, array.dtype)
            reported = json.loads(prospect("inspect", "--run", str(run), "--tensor", name))
            assert reported["name"] == name
            assert tuple(reported["shape"]) == array.shape
            want = np.asarray(reported["values"], dtype=np.float32).reshape(array.shape)
            assert np.array_equal(want, array), f"{name}: numpy reads other values than prospect reports"
            assert np.isfinite(array).all()
        assert np.abs(tensors["edges.1.bias"]).max() > 0, "trained biases moved from zero"


def test_metadata_carries_the_config_and_epoch() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = train(tmp)
        with safe_open(str(run / "model.safetensors"), framework="np") as f:
            meta = f.metadata()
        assert meta["format"] == "prospect", meta
        assert meta["epoch"] == "2", meta
        assert meta["dtype"] == "f32", meta
        config = meta["config"]
        assert 'preset = "digits-mlp"' in config, config
        assert config == (run / "config.toml").read_text(), "stored config differs from config.toml"
        try:
            import tomllib  # Python 3.11+
        except ImportError:  # older Python: the same two keys, read as text
            assert "\nsizes = [64, 128, 10]\n" in config, config
            assert "\nbatches_per_epoch = 5\n" in config, config
        else:
            parsed = tomllib.loads(config)
            assert parsed["model"]["sizes"] == [64, 128, 10]
            assert parsed["train"]["batches_per_epoch"] == 5


def test_optimizer_state_loads() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = train(tmp)
        state = load_file(str(run / "optimizer.safetensors"))
        assert state and all(k.startswith("optim.layers.") for k in state), sorted(state)
        assert state["optim.layers.0.0.m"].shape == (128, 64)
        with safe_open(str(run / "optimizer.safetensors"), framework="np") as f:
            meta = f.metadata()
        assert meta["batches_done"] == "10", meta
        assert meta["update_counts"] == "10,10", meta
        assert json.loads(meta["metrics"])["epoch"] == 2


def main() -> int:
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_") and callable(v)]
    failed = 0
    for t in tests:
        try:
            t()
            print(f"ok   {t.__name__}")
        except Exception as e:  # noqa: BLE001 - report every failure, then exit non-zero
            failed += 1
            print(f"FAIL {t.__name__}: {type(e).__name__}: {e}")
    print(f"{len(tests) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
