"""The Python API against the CLI and the library: round trips, errors, the step trainer.

Needs the package installed (`pip install ./crates/prospect-py`) and the `prospect` binary
(`PROSPECT_BIN`, else target/{release,debug}/prospect of this repository).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import prospect

REPO = Path(__file__).resolve().parents[3]


def cli() -> str:
    env = os.environ.get("PROSPECT_BIN")
    if env:
        return env
    for p in (REPO / "target" / "debug" / "prospect", REPO / "target" / "release" / "prospect"):
        if p.is_file():
            return str(p)
    pytest.fail("no prospect binary: build it (cargo build -p prospect-cli) or set PROSPECT_BIN")


def cli_eval(run_dir: Path) -> dict:
    out = subprocess.run(
        [cli(), "eval", "--run", str(run_dir), "--json"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> prospect.Run:
    out = tmp_path_factory.mktemp("runs") / "digits"
    return prospect.train(preset="digits-mlp", set={"train.epochs": 4}, out=out)


def test_train_writes_the_cli_run_directory_and_metrics(digits_run):
    files = {p.name for p in digits_run.dir.iterdir()}
    assert {"config.toml", "metrics.jsonl", "model.safetensors", "optimizer.safetensors"} <= files
    assert [m["epoch"] for m in digits_run.metrics] == [1, 2, 3, 4]
    assert digits_run.metrics[-1]["test_accuracy"] > 0.8


def test_load_predict_equals_prospect_eval(digits_run):
    model = prospect.load(digits_run.dir)
    x, labels = prospect.data.load("digits", "test", scale="standardize")
    assert x.dtype == np.float32 and x.shape == (360, 64) and labels.shape == (360,)
    pred = model.predict(x)
    assert pred.shape == (360, 10) and pred.dtype == np.float32
    acc = float((pred.argmax(axis=1) == labels).mean())
    report = cli_eval(digits_run.dir)
    assert acc == pytest.approx(report["accuracy"], abs=1e-12)
    assert acc == pytest.approx(digits_run.metrics[-1]["test_accuracy"], abs=1e-12)
    # The checkpoint file alone (config in its metadata) gives the same answers.
    same = prospect.load(digits_run.dir / "model.safetensors").predict(x)
    np.testing.assert_array_equal(same, pred)


def test_predict_takes_non_contiguous_arrays_and_keeps_rows(digits_run):
    model = prospect.load(digits_run.dir)
    x, _ = prospect.data.load("digits", "test", scale="standardize")
    wide = np.zeros((x.shape[0], 128), dtype=np.float32)
    wide[:, ::2] = x
    np.testing.assert_array_equal(model.predict(wide[:, ::2]), model.predict(x))
    np.testing.assert_array_equal(model.predict(x[:7]), model.predict(x)[:7])


def test_wrong_dtype_and_shape_are_clear_value_errors(digits_run):
    model = prospect.load(digits_run.dir)
    x, _ = prospect.data.load("digits", "test", scale="standardize")
    with pytest.raises(ValueError, match="float32.*float64"):
        model.predict(x.astype(np.float64))
    with pytest.raises(ValueError, match=r"2-D"):
        model.predict(x[0])
    with pytest.raises(ValueError, match=r"inputs x.*64"):
        model.predict(x[:, :10])


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match=r"inference\.stpes"):
        prospect.Trainer(preset="digits-mlp", set={"inference.stpes": 3})
    with pytest.raises(ValueError, match="unknown preset|preset"):
        prospect.Trainer(preset="no-such-preset")
    with pytest.raises(ValueError, match=r"train\.epochs"):
        prospect.train(config={"train": {"epochs": "many"}}, out="/nonexistent/never")


def test_missing_data_and_runs_are_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        prospect.load(tmp_path / "nothing-here")
    with pytest.raises(FileNotFoundError, match="mnist"):
        prospect.data.load("mnist", "train", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError):
        prospect.Trainer(config=tmp_path / "absent.toml")


def test_divergence_is_a_runtime_error():
    t = prospect.Trainer(
        preset="digits-mlp", set={"inference.gamma": 1e30, "optimizer.lr": 1e30}
    )
    x, labels = prospect.data.load("digits", "train", scale="standardize")
    with pytest.raises(RuntimeError, match="non-finite|NaN|inf"):
        for _ in range(20):
            t.train_batch(x[:32] * 1e20, labels[:32])


def test_step_trainer_matches_the_cli_run_with_the_same_seed(tmp_path):
    """The same config trained batch by batch from Python, in the CLI's batch order, gives
    the CLI's run: the same weights' answers and the same accuracy."""
    epochs, bs = 3, 32
    sets = {"train.epochs": epochs, "train.shuffle": False, "train.batch_size": bs}
    run = prospect.train(preset="digits-mlp", set=sets, out=tmp_path / "cli")
    x, labels = prospect.data.load("digits", "train", scale="standardize")
    xt, lt = prospect.data.load("digits", "test", scale="standardize")
    n = x.shape[0]
    per_epoch = -(-n // bs)  # the preset keeps the last, smaller batch
    t = prospect.Trainer(preset="digits-mlp", set=sets, total_batches=epochs * per_epoch)
    for _ in range(epochs):
        for i in range(0, n, bs):
            stats = t.train_batch(x[i : i + bs], labels[i : i + bs])
    assert t.batches == epochs * per_epoch
    assert set(stats) == {"loss", "energy", "accuracy", "steps"}
    acc = t.evaluate(xt, lt)["accuracy"]
    assert acc == pytest.approx(run.metrics[-1]["test_accuracy"], abs=1e-12)
    np.testing.assert_allclose(t.predict(xt), run.model.predict(xt), rtol=0, atol=1e-6)
    # Saved from Python, read by the CLI.
    saved = t.save(tmp_path / "py")
    assert cli_eval(saved.dir)["accuracy"] == pytest.approx(acc, abs=1e-12)


def test_config_as_dict_and_toml_file_agree(tmp_path):
    cfg = {"model": {"sizes": [64, 32, 10]}, "train": {"epochs": 1, "batch_size": 16}}
    a = prospect.train(config=cfg, out=tmp_path / "dict")
    toml = tmp_path / "c.toml"
    toml.write_text("[model]\nsizes = [64, 32, 10]\n[train]\nepochs = 1\nbatch_size = 16\n")
    b = prospect.train(config=toml, out=tmp_path / "file")
    assert prospect.load(a.dir).sizes == [64, 32, 10]
    assert a.metrics[0]["test_accuracy"] == b.metrics[0]["test_accuracy"]


def test_labels_out_of_range_and_float_labels_are_rejected():
    t = prospect.Trainer(preset="digits-mlp")
    x, labels = prospect.data.load("digits", "train", scale="standardize")
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        t.train_batch(x[:4], np.array([0, 1, 2, 10]))
    with pytest.raises(ValueError, match="integer"):
        t.train_batch(x[:4], labels[:4].astype(np.float32))


def test_the_wheel_is_portable():
    """Built without -C target-cpu=native (pyproject.toml): no SIMD feature is assumed at
    compile time, and the run-time level is the CPU's."""
    assert prospect._prospect.compiled_features() == []
    assert prospect._prospect.simd_level() in ("Base", "Avx2", "Avx512")


def test_simd_levels_give_the_same_training(tmp_path):
    """The wheel is built without -C target-cpu=native and picks its element-wise kernels at
    run time (prospect::tensor::simd): the baseline build (PROSPECT_SIMD=base) and the widest
    level of this CPU train the same network to the same outputs up to rounding."""
    script = (
        "import sys, numpy as np, prospect\n"
        "t = prospect.Trainer(preset='digits-mlp', set={'train.shuffle': False})\n"
        "x, y = prospect.data.load('digits', 'train', scale='standardize')\n"
        "for i in range(0, 320, 32):\n"
        "    t.train_batch(x[i:i + 32], y[i:i + 32])\n"
        "np.save(sys.argv[1], t.predict(x[:200]))\n"
        "print(prospect._prospect.simd_level())\n"
    )
    outs = []
    for level in ("base", "avx512"):  # avx512 = no cap: the widest this CPU has
        path = tmp_path / f"{level}.npy"
        env = dict(os.environ, PROSPECT_SIMD=level)
        r = subprocess.run([sys.executable, "-c", script, str(path)], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        if level == "base":
            assert r.stdout.strip() == "Base"
        outs.append(np.load(path))
    scale = np.abs(outs[0]).max()
    np.testing.assert_allclose(outs[1], outs[0], rtol=0, atol=1e-4 * scale)


def test_query_on_a_graph_equals_prospect_query(tmp_path):
    """A graph model (image <-> hidden <-> label, digits-graph) answers the query image ->
    label from Python as `prospect query` does; masked entries stay at their data."""
    run = prospect.train(preset="digits-graph", set={"train.epochs": 3}, out=tmp_path / "g")
    model = prospect.load(run.dir)
    assert set(model.nodes) == {"image", "hidden", "label"}
    x, labels = prospect.data.load("digits", "test", scale="standardize")
    got = model.query(clamp={"image": x[:20]}, read=["label", "hidden"])
    assert got["label"].shape == (20, 10) and got["hidden"].shape[0] == 20
    out = subprocess.run(
        [cli(), "query", "--run", str(run.dir), "--clamp", "image=test:0..20", "--read", "label",
         "--out", str(tmp_path / "q")],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    want = np.array(json.loads((tmp_path / "q" / "query-label.json").read_text())["values"])
    np.testing.assert_allclose(got["label"], want, rtol=0, atol=1e-4 * np.abs(want).max())
    assert (got["label"].argmax(1) == labels[:20]).mean() > 0.5
    # Half the image known: those entries are the data, the rest inferred.
    known = np.zeros_like(x[:5])
    known[:, :32] = 1.0
    part = model.query(clamp={"image": x[:5]}, mask={"image": known}, read=["image"])["image"]
    np.testing.assert_array_equal(part[:, :32], x[:5, :32])
    assert not np.allclose(part[:, 32:], x[:5, 32:])
    with pytest.raises(ValueError, match="no node `lable`.*image"):
        model.query(clamp={"image": x[:5]}, read=["lable"])
    with pytest.raises(ValueError, match="clamp that node"):
        model.query(clamp={"image": x[:5]}, mask={"label": np.ones((5, 10), np.float32)})


def _fake_pth(path: Path, tensors: dict, monkeypatch) -> None:
    """Writes `tensors` (name -> float32 array) as PyTorch's zip `.pth` of a state dict would
    hold them, without PyTorch: a stand-in `torch` module lets pickle name its globals."""
    import collections
    import io
    import pickle
    import types
    import zipfile

    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # never called: only its name is pickled
        raise AssertionError

    class FloatStorage:
        pass

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    utils._rebuild_tensor_v2, torch.FloatStorage, torch._utils = _rebuild_tensor_v2, FloatStorage, utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)

    class Storage:
        def __init__(self, key, n):
            self.key, self.n = key, n

    class Tensor:
        def __init__(self, storage, shape):
            self.storage, self.shape = storage, shape

        def __reduce__(self):
            stride = tuple(int(np.prod(self.shape[i + 1:])) for i in range(len(self.shape)))
            args = (self.storage, 0, self.shape, stride, False, collections.OrderedDict())
            return (_rebuild_tensor_v2, args)

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                return ("storage", FloatStorage, obj.key, "cpu", obj.n)
            return None

    sd = collections.OrderedDict()
    with zipfile.ZipFile(path, "w") as z:
        for i, (name, t) in enumerate(tensors.items()):
            z.writestr(f"archive/data/{i}", np.ascontiguousarray(t, "<f4").tobytes())
            sd[name] = Tensor(Storage(str(i), t.size), tuple(t.shape))
        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump(sd)
        z.writestr("archive/data.pkl", buf.getvalue())


def test_authors_checkpoint_converts_to_what_prospect_reads(tmp_path, monkeypatch):
    """scripts/authors-checkpoint.py reads a `.pth` state dict and writes the safetensors file
    `prospect repro concept-drift --protocol authors --pretrained` loads: layer i of the state
    dict in order as `edges.{i}.weight`, values bit for bit."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "authors_checkpoint", REPO / "scripts" / "authors-checkpoint.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rng = np.random.default_rng(3)
    ws = {k: rng.standard_normal(s).astype(np.float32)
          for k, s in [("0.weight", (32, 784)), ("1.weight", (32, 32)), ("2.weight", (10, 32))]}
    _fake_pth(tmp_path / "pre.pth", ws, monkeypatch)
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.delitem(sys.modules, "torch._utils")
    sd = mod.load_pth(str(tmp_path / "pre.pth"))
    assert list(sd) == list(ws)
    for k in ws:
        np.testing.assert_array_equal(sd[k], ws[k])
    out = tmp_path / "pre.safetensors"
    mod.write_safetensors(str(out), {f"edges.{i}.weight": w for i, w in enumerate(sd.values())},
                          {"source": "pre.pth"})
    for i, w in enumerate(ws.values()):
        res = subprocess.run(
            [cli(), "inspect", "--checkpoint", str(out), "--tensor", f"edges.{i}.weight"],
            capture_output=True, text=True,
        )
        assert res.returncode == 0, res.stderr
        got = json.loads(res.stdout)
        assert got["shape"] == list(w.shape)
        np.testing.assert_array_equal(np.array(got["values"], np.float32).reshape(w.shape), w)
