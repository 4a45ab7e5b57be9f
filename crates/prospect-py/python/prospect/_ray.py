"""Distributed sweeps: a ``prospect repro`` experiment's cells as Ray tasks.

Every learning-rate-grid experiment (``depth``, ``online``, ``continual``, ``concept-drift``,
``data-efficiency``) is a list of independent (rule, condition, lr, seed) cells and a merge.
:func:`sweep` counts the cells, runs each missing one as a Ray task on whatever cluster
``address`` names (the task computes its cell in a scratch store on its node and returns the
cell file), writes each returned cell into the local cell store as it arrives (so a rerun skips
finished cells), retries failed tasks, and merges: ``NAME.csv`` and ``NAME.md`` are the same as
a single-process ``prospect.repro`` (byte for byte for the CSV). Experiments without a grid run
as one task.

    python -m prospect sweep depth --full --address auto --out repro/
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from . import _prospect, repro

__all__ = ["sweep", "main"]


def _run_cell(
    name: str,
    full: bool,
    seeds: Optional[int],
    lrs: Optional[List[float]],
    j: int,
    n: int,
    protocol: str = "ours",
    pretrained: Optional[str] = None,
) -> Dict[str, str]:
    """Computes cell ``j`` of ``n`` in a scratch store; returns ``{file name: text}``."""
    with tempfile.TemporaryDirectory(prefix="prospect-cell-") as tmp:
        res = _prospect.repro_run(
            name, tmp, full, seeds, lrs, tmp, (j, n), False, protocol, pretrained
        )
        if res["complete"]:
            raise RuntimeError(f"{name} has no cell grid to shard")
        sub = Path(res["store"])
        return {p.name: p.read_text() for p in sub.iterdir() if p.suffix == ".toml"}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def sweep(
    name: str,
    full: bool = False,
    address: Optional[str] = None,
    out: Union[str, os.PathLike] = "repro",
    cells: Union[str, os.PathLike, None] = None,
    seeds: Optional[int] = None,
    lrs: Optional[List[float]] = None,
    max_retries: int = 3,
    cpus_per_task: float = 1.0,
    progress: bool = True,
    protocol: str = "ours",
    pretrained: Union[str, os.PathLike, None] = None,
) -> Dict[str, Any]:
    """Runs experiment ``name`` on a Ray cluster and merges; returns :func:`prospect.repro`'s dict.

    Args:
        address: the Ray cluster (``"auto"``: the one this machine belongs to; ``None``: a
            local Ray started for the call; ``"ray://host:10001"``: a Ray client).
        out: where ``NAME.csv`` and ``NAME.md`` go.
        cells: the cell store (default ``<out>/cells``); rerunning with the same store skips
            every finished cell.
        max_retries: Ray retries of a task whose worker died or that raised.
        cpus_per_task: Ray CPUs per cell (a cell uses every core of its node it is given).
        protocol: ``"ours"`` or ``"authors"``, as in :func:`prospect.repro`.
        pretrained: as in :func:`prospect.repro` (every node reads the file at this path).
    Every node needs the data set (``$PROSPECT_DATA`` or ``data/`` on each node) and the same
    prospect version (cells record it; a mismatch is an error at the merge).
    """
    import ray  # the optional dependency: pip install "ray[default]"

    store = Path(cells) if cells is not None else Path(out) / "cells"
    pre = None if pretrained is None else os.fspath(pretrained)
    kw = dict(protocol=protocol, pretrained=pre)
    count = repro(name, full, out, seeds, lrs, cells=store, shard=(0, 0), **kw)
    if count["complete"]:
        return count  # no grid: `repro` ran it whole in this process
    total, missing = count["total"], list(count["missing"])
    sub = Path(count["store"])
    if missing:
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        task = ray.remote(num_cpus=cpus_per_task, max_retries=max_retries, retry_exceptions=True)(
            _run_cell
        )
        pending = {task.remote(name, full, seeds, lrs, j, total, protocol, pre): j for j in missing}
        bar = _Progress(len(pending), f"{name}: {total - len(missing)}/{total} cells stored", progress)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                pending.pop(ref)
                for fname, text in ray.get(ref).items():
                    _write_atomic(sub / fname, text)
                bar.step()
        bar.close()
    return repro(name, full, out, seeds, lrs, cells=store, **kw)


class _Progress:
    """tqdm when installed, else a line per finished cell on stderr."""

    def __init__(self, total: int, desc: str, on: bool):
        self.on, self.n, self.total = on, 0, total
        self.bar = None
        if on:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=desc, unit="cell")
            except ImportError:
                print(desc, file=sys.stderr)

    def step(self) -> None:
        self.n += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.on:
            print(f"  cell {self.n}/{self.total} done", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m prospect sweep", description="Run a repro experiment's cells on Ray."
    )
    p.add_argument("name", help="experiment (prospect repro --list)")
    p.add_argument("--full", action="store_true", help="the paper's settings")
    p.add_argument("--address", default=None, help="Ray cluster address (e.g. auto)")
    p.add_argument("--out", default="repro", help="output directory (default repro/)")
    p.add_argument("--cells", default=None, help="cell store (default OUT/cells)")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--lrs", default=None, help="comma-separated learning rates")
    p.add_argument("--max-retries", type=int, default=3)
    p.add_argument("--protocol", choices=["ours", "authors"], default="ours")
    p.add_argument("--pretrained", default=None, help="concept-drift, authors: start network")
    a = p.parse_args(argv)
    lrs = None if a.lrs is None else [float(v) for v in a.lrs.split(",")]
    res = sweep(
        a.name, a.full, a.address, a.out, a.cells, a.seeds, lrs, a.max_retries,
        protocol=a.protocol, pretrained=a.pretrained,
    )
    for c in res.get("claims", []):
        print(f"{c['quantity']}: paper {c['paper']}; ours {c['ours']}; holds {c['holds']}")
    print(f"wrote {res.get('csv')} and {res.get('md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
