"""prospect: predictive coding networks trained by prospective configuration, from Python.

The engine is the Rust library `prospect`; this package calls it (numpy float32 in and out,
the GIL released while it computes). Errors keep the library's message: ``ValueError`` for bad
configs, shapes and dtypes, ``FileNotFoundError`` for missing data or runs, ``RuntimeError``
when training diverges.

    import prospect
    run = prospect.train(preset="digits-mlp", set={"train.epochs": 5}, out="runs/py")
    print(run.metrics[-1]["test_accuracy"])
    x, labels = prospect.data.load("digits", "test")
    pred = run.model.predict(x).argmax(axis=1)
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from . import _prospect
from . import data

__all__ = [
    "train",
    "load",
    "repro",
    "sweep",
    "experiments",
    "Run",
    "Model",
    "Trainer",
    "data",
    "presets",
    "__version__",
]
__version__: str = _prospect.__version__

ConfigLike = Union[Mapping[str, Any], str, os.PathLike, None]


def _sets(set: Optional[Mapping[str, Any]]) -> List[str]:
    """``{"inference.steps": 16}`` as the CLI's ``--set key=value`` strings."""
    if set is None:
        return []
    if not isinstance(set, Mapping):
        raise ValueError("set must be a dict of dotted keys to values, e.g. {'train.epochs': 3}")
    out = []
    for key, value in set.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value)
        out.append(f"{key}={text}")
    return out


def _config(config: ConfigLike) -> Any:
    if config is None or isinstance(config, Mapping):
        return None if config is None else dict(config)
    return os.fspath(config)


def presets() -> str:
    """The presets (names with one-line descriptions), as ``prospect presets`` prints them."""
    return _prospect.preset_names()


class Model:
    """A trained network, loaded from a run directory or a ``model.safetensors`` file."""

    def __init__(self, path: Union[str, os.PathLike]):
        self._inner = _prospect.Model(os.fspath(path))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The network's output for inputs ``x`` (float32, ``[batch, d_in]``): ``[batch, d_out]``.

        A forward pass where that is the network's answer; otherwise inference with the
        input clamped, as ``prospect eval`` does.
        """
        return self._inner.predict(x)

    def query(
        self,
        clamp: Mapping[str, np.ndarray],
        init: Optional[Mapping[str, np.ndarray]] = None,
        mask: Optional[Mapping[str, np.ndarray]] = None,
        read: Optional[List[str]] = None,
        steps: Optional[int] = None,
    ) -> Dict[str, np.ndarray]:
        """Any-subset query of a PC network (as ``prospect query``).

        Args:
            clamp: node name -> float32 ``[batch, size]``: fixed during inference.
            init: node name -> array: the node starts there and is inferred.
            mask: node name -> float32 0/1 array for a clamped node: only the entries at 1
                are fixed, the others inferred (completion).
            read: nodes to return (default: the output node).
            steps: inference steps (default: the run's ``inference.steps``).

        Every other node is free. Returns node name -> ``[batch, size]`` after inference.
        """
        return self._inner.query(
            dict(clamp),
            None if init is None else dict(init),
            None if mask is None else dict(mask),
            None if read is None else list(read),
            steps,
        )

    @property
    def nodes(self) -> List[str]:
        """Names of the nodes."""
        return self._inner.nodes

    @property
    def sizes(self) -> List[int]:
        """Widths of the nodes, input first."""
        return self._inner.sizes

    @property
    def config(self) -> str:
        """The resolved config of the run, as TOML text."""
        return self._inner.config_toml

    @property
    def path(self) -> Path:
        """The checkpoint file."""
        return Path(self._inner.path)

    def __repr__(self) -> str:
        return f"prospect.Model(sizes={self.sizes}, path='{self.path}')"


def load(path: Union[str, os.PathLike]) -> Model:
    """Loads a trained network from a run directory or a ``model.safetensors`` file."""
    return Model(path)


@dataclass
class Run:
    """A run directory written by :func:`train` (the same files as ``prospect train``)."""

    dir: Path
    metrics: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def model(self) -> Model:
        """The trained network."""
        return Model(self.dir)

    @classmethod
    def open(cls, dir: Union[str, os.PathLike]) -> "Run":
        """Reads an existing run directory (its ``metrics.jsonl``)."""
        d = Path(dir)
        metrics_file = d / "metrics.jsonl"
        if not metrics_file.is_file():
            raise FileNotFoundError(f"{metrics_file}: not a run directory")
        lines = metrics_file.read_text().splitlines()
        return cls(d, [json.loads(line) for line in lines if line.strip()])


def train(
    preset: Optional[str] = None,
    config: ConfigLike = None,
    set: Optional[Mapping[str, Any]] = None,
    out: Union[str, os.PathLike, None] = None,
    progress: bool = False,
) -> Run:
    """Trains a network as ``prospect train`` does and returns the run.

    Args:
        preset: preset to start from (see :func:`presets`; default ``digits-mlp``).
        config: a dict (same keys as the TOML files) or the path of a TOML file, merged over
            the preset.
        set: overrides by dotted key, e.g. ``{"train.epochs": 3, "algo": "bp"}``.
        out: run directory (default ``runs/<preset>-<UTC time>``); must not hold a run.
        progress: print one line per epoch on stderr.
    """
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        out = Path("runs") / f"{preset or 'run'}-{stamp}"
    _prospect.train_run(os.fspath(out), preset, _config(config), _sets(set), progress)
    return Run.open(out)


def _targets(y: np.ndarray, classes: int) -> np.ndarray:
    """Labels ``[batch]`` (integers) as one-hot float32 targets; 2-D float32 targets as they are."""
    y = np.asarray(y)
    if y.ndim == 1:
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"1-D y must hold integer class labels, got dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= classes):
            raise ValueError(f"labels must be in [0, {classes}), got {y.min()}..{y.max()}")
        t = np.zeros((y.shape[0], classes), dtype=np.float32)
        t[np.arange(y.shape[0]), y] = 1.0
        return t
    return y


class Trainer:
    """Trains a network batch by batch on your own arrays.

        t = prospect.Trainer(preset="digits-mlp")
        stats = t.train_batch(x, labels)      # x float32 [batch, d_in]; labels int [batch]
        acc = t.evaluate(x_test, labels_test)["accuracy"]
        t.save("runs/mine")                   # prospect eval --run runs/mine reads it
    """

    def __init__(
        self,
        config: ConfigLike = None,
        preset: Optional[str] = None,
        set: Optional[Mapping[str, Any]] = None,
        total_batches: int = 0,
    ):
        """Builds the network, optimiser and rule of a config (preset, dict or TOML path,
        then overrides). ``total_batches`` sizes a learning-rate schedule (0: keep it constant
        in effect; give epochs x batches per epoch for warm-up/cosine schedules)."""
        self._inner = _prospect.Trainer(preset, _config(config), _sets(set), total_batches)

    @property
    def sizes(self) -> List[int]:
        """Widths of the nodes, input first."""
        return self._inner.sizes

    @property
    def batches(self) -> int:
        """Batches trained so far."""
        return self._inner.batches

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> Dict[str, float]:
        """One training step on a batch: ``x`` float32 ``[batch, d_in]``, ``y`` integer labels
        ``[batch]`` or float32 targets ``[batch, d_out]``. Returns loss, energy (per example),
        accuracy of the forward pass and the inference steps taken."""
        t = _targets(y, self.sizes[-1])
        loss, energy, correct, examples, steps = self._inner.train_batch(x, t)
        n = max(examples, 1)
        return {"loss": loss / n, "energy": energy / n, "accuracy": correct / n, "steps": steps}

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> Dict[str, float]:
        """Accuracy and mean loss on ``x``, ``y`` (labels or targets)."""
        accuracy, loss = self._inner.evaluate(x, _targets(y, self.sizes[-1]))
        return {"accuracy": accuracy, "loss": loss}

    def save(self, dir: Union[str, os.PathLike]) -> Run:
        """Writes a run directory (``config.toml``, model and optimiser checkpoints)."""
        self._inner.save(os.fspath(dir))
        d = Path(dir)
        if not (d / "metrics.jsonl").exists():
            (d / "metrics.jsonl").write_text("")
        return Run.open(d)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Outputs for ``x`` (float32 ``[batch, d_in]``) with the current weights."""
        return self._inner.predict(x)


def experiments() -> List[Tuple[str, str]]:
    """The experiments of :func:`repro`: ``(name, description)`` pairs."""
    return list(_prospect.experiment_names())


def repro(
    name: str,
    full: bool = False,
    out: Union[str, os.PathLike] = "repro",
    seeds: Optional[int] = None,
    lrs: Optional[List[float]] = None,
    cells: Union[str, os.PathLike, None] = None,
    shard: Optional[Tuple[int, int]] = None,
    progress: bool = False,
    protocol: str = "ours",
    pretrained: Union[str, os.PathLike, None] = None,
) -> Dict[str, Any]:
    """Runs a paper experiment as ``prospect repro NAME`` does and writes ``NAME.csv`` and
    ``NAME.md`` into ``out`` (the figure ``NAME.png`` is drawn by the CLI only).

    Args:
        name: one of :func:`experiments`.
        full: the paper's settings instead of the quick defaults.
        seeds, lrs: override the number of seeds and the learning-rate grid.
        cells: a cell store directory: finished (rule, condition, lr, seed) cells are saved
            there and skipped on a rerun.
        shard: ``(i, n)``: compute only the cells ``j`` with ``j % n == i`` into ``cells`` and
            return without writing the report (a rerun without ``shard`` merges).
        protocol: ``"ours"`` or ``"authors"`` (the authors' code detail for detail, where an
            experiment differs: ``continual``, ``concept-drift``; files ``NAME-authors.*``).
        pretrained: ``concept-drift`` with ``protocol="authors"`` only: start from the network
            in this safetensors file instead of pretraining one (its cells are stored apart).

    Returns a dict: ``complete`` and, when complete, ``csv``, ``md``, ``title``, ``claims``
    (a list of dicts: quantity, paper, ours, holds) and ``seconds``; otherwise ``ran``,
    ``stored``, ``total`` and ``missing`` (indices of the cells not stored yet).
    """
    if shard is not None and cells is None:
        raise ValueError("a sharded run needs a cell store: give cells=DIR")
    return _prospect.repro_run(
        name,
        os.fspath(out),
        full,
        seeds,
        None if lrs is None else [float(v) for v in lrs],
        None if cells is None else os.fspath(cells),
        None if shard is None else (int(shard[0]), int(shard[1])),
        progress,
        protocol,
        None if pretrained is None else os.fspath(pretrained),
    )


def sweep(*args: Any, **kwargs: Any) -> Dict[str, Any]:
    """Runs a :func:`repro` experiment's cells as Ray tasks (see :func:`prospect.sweep.sweep`)."""
    from ._ray import sweep as _sweep

    return _sweep(*args, **kwargs)
