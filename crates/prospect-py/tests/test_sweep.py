"""Sharded and distributed repro runs give the single-process result.

The Ray tests start a local two-node cluster (a head and a second node on 127.0.0.1, one CPU
each, via ray.cluster_utils.Cluster) and shut it down afterwards. They need Fashion-MNIST
(`bash scripts/fetch-data.sh fashion-mnist`) and `ray`; without them they skip, or fail under
PROSPECT_REQUIRE_EXTERNAL=1 (what CI sets).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import prospect

REPO = Path(__file__).resolve().parents[3]
os.environ.setdefault("PROSPECT_DATA", str(REPO / "data"))

# The `online` experiment at one seed and two rates: 12 cells of 1-8 s on one core.
GRID = dict(seeds=1, lrs=[0.01, 0.005])


def need(what: str, ok: bool) -> None:
    if ok:
        return
    if os.environ.get("PROSPECT_REQUIRE_EXTERNAL") == "1":
        pytest.fail(f"{what} is required (PROSPECT_REQUIRE_EXTERNAL=1)")
    pytest.skip(f"{what} missing")


@pytest.fixture(scope="module")
def fashion():
    root = Path(os.environ["PROSPECT_DATA"]) / "fashion-mnist"
    need("Fashion-MNIST", (root / "train-images-idx3-ubyte.gz").is_file())


@pytest.fixture(scope="module")
def single(tmp_path_factory, fashion):
    """The single-process run the sharded and distributed ones must equal."""
    res = prospect.repro("online", out=tmp_path_factory.mktemp("single"), **GRID)
    assert res["complete"] and res["claims"] and all("holds" in c for c in res["claims"])
    return Path(res["csv"]).read_bytes()


def test_cells_are_counted_and_a_shard_needs_a_store(tmp_path, fashion):
    # (Shards then merge = one run is checked on a cheap grid in experiments::util's tests,
    # and through Ray below.)
    cells = tmp_path / "cells"
    count = prospect.repro("online", out=tmp_path, cells=cells, shard=(0, 0), **GRID)
    assert not count["complete"] and count["total"] == 12 and count["missing"] == list(range(12))
    assert count["ran"] == 0 and not any(cells.rglob("*.toml"))
    with pytest.raises(ValueError, match="cell store"):
        prospect.repro("online", out=tmp_path, shard=(0, 2))
    with pytest.raises(ValueError, match="unknown experiment"):
        prospect.repro("no-such-experiment", out=tmp_path)


def test_the_authors_protocol_has_its_own_store_and_is_refused_elsewhere(tmp_path, fashion):
    cells = tmp_path / "cells"
    count = prospect.repro(
        "continual", out=tmp_path, cells=cells, shard=(0, 0), seeds=1, protocol="authors"
    )
    assert not count["complete"] and count["store"].endswith("continual-quick-authors")
    with pytest.raises(ValueError, match="protocol"):
        prospect.repro("online", out=tmp_path, protocol="authors")
    with pytest.raises(ValueError, match="ours"):
        prospect.repro("continual", out=tmp_path, protocol="mine")


@pytest.fixture(scope="module")
def cluster():
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        need("ray", False)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    second = c.add_node(num_cpus=1)
    c.wait_for_nodes()
    yield c, second
    ray.shutdown()
    c.shutdown()


def test_sweep_on_two_nodes_equals_the_single_run(tmp_path, single, cluster):
    import ray

    c, _ = cluster
    ray.init(address=c.address, ignore_reinit_error=True)
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    res = prospect.sweep("online", address=c.address, out=tmp_path, progress=False, **GRID)
    assert Path(res["csv"]).read_bytes() == single
    # A rerun finds every cell stored: nothing goes to the cluster, the CSV is the same.
    again = prospect.sweep("online", address=c.address, out=tmp_path / "again",
                           cells=tmp_path / "cells", progress=False, **GRID)
    assert Path(again["csv"]).read_bytes() == single


def test_sweep_survives_losing_a_node_mid_sweep(tmp_path, single, cluster):
    """Runs after the test above, on the same cluster: its second node dies mid-sweep."""
    import ray

    c, second = cluster
    ray.init(address=c.address, ignore_reinit_error=True)
    store = tmp_path / "cells" / "online-quick"
    killed = threading.Event()

    def kill_when_started():
        # Remove the second node (its raylet and workers die, tasks in flight with them)
        # as soon as the first cell has come back.
        deadline = time.time() + 120
        while time.time() < deadline:
            if store.is_dir() and any(store.glob("*.toml")):
                c.remove_node(second, allow_graceful=False)
                killed.set()
                return
            time.sleep(0.05)

    t = threading.Thread(target=kill_when_started)
    t.start()
    res = prospect.sweep("online", address=c.address, out=tmp_path, progress=False, **GRID)
    t.join()
    assert killed.is_set(), "the sweep ended before a node could be removed"
    assert len(list(store.glob("*.toml"))) == 12
    assert Path(res["csv"]).read_bytes() == single
