"""Multi-node scans on a simulated Ray cluster (real raylets, fake GPUs)."""

from __future__ import annotations

import os
import signal

import pytest

from relu_landscape import store
from relu_landscape.config import load_config
from relu_landscape.scan import plan, run_scan
from tests.conftest import tiny_spec_toml
from tests.scan.test_end_to_end import COMPARED


def _spec(tmp_path, backend, **grid):
    path = tmp_path / f"{backend}.toml"
    path.write_text(
        tiny_spec_toml(backend, K="{ relu = [2] }", weights='["binary"]', **grid)
    )
    return load_config(path)


@pytest.mark.ray
def test_scan_spreads_over_nodes_and_survives_a_lost_node(ray_cluster, tmp_path):
    cluster, workers = ray_cluster
    spec = _spec(tmp_path, "ray", seeds="8")  # 16 instances, 4 shards of 4
    by_id = {w.node_id: w for w in workers}
    dispatched: list[str] = []

    def lose_a_node(shard, worker):
        # The third dispatch goes to a worker that has finished a shard; the other
        # worker holds (or has finished) its first. Take this worker's node down with
        # the shard in flight: its process first (a tiny shard could otherwise finish
        # before the worker notices its raylet is gone), then the node. The
        # replacement actor cannot be placed (no free GPU left), and the surviving
        # node finishes the scan.
        dispatched.append(worker["node_id"])
        if len(dispatched) == 3:
            os.kill(worker["pid"], signal.SIGKILL)
            cluster.remove_node(by_id[worker["node_id"]], allow_graceful=False)

    report = run_scan(spec, tmp_path / "out", progress=False, on_dispatch=lose_a_node)
    assert not report.failed and report.run == report.shards == 4
    assert len(report.retried) == 1 and "worker died" in report.retried[0][1]
    assert (
        len(report.nodes) == 2 and sum(report.nodes.values()) == 4
    )  # both nodes worked
    runs = store.read_runs(tmp_path / "out")
    assert runs.height == 16 and runs["run_id"].n_unique() == 16
    # fake GPUs: the actors took GPU slots yet computed on CPU (torch sees no CUDA)
    assert set(runs["device"]) == {"cpu"}
    # values equal those of a plain in-process run
    ref = run_scan(
        _spec(tmp_path, "local", seeds="8"), tmp_path / "ref", progress=False
    )
    assert ref.run == 4
    assert (
        runs.select(COMPARED)
        .sort("run_id")
        .equals(store.read_runs(tmp_path / "ref").select(COMPARED).sort("run_id"))
    )
    assert len(plan.instances(spec)) == 16
