"""Shared fixtures: one real local Ray per test session (started on first use)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Every Ray the tests start (in-process, simulated clusters, `ray start` heads, `ray job
# submit`) inherits this: token auth off, so drivers, CLIs and heads agree without a
# token file. Deliberate: test heads are short-lived and their hand-picked ports are
# only used on this machine; production keeps Ray's token auth on (cluster/README.md).
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# Ray rewrites a 127.0.0.1 address to the machine's outward IP before connecting, while
# a head started on 127.0.0.1 listens on loopback only; this keeps every test driver,
# node and job on loopback (read when ray is first imported, hence here).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture(scope="session")
def _ray_session():
    """Shuts down whatever Ray this process holds at the end of the session."""
    import ray

    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def ray_local(_ray_session):
    """A real in-process Ray on 127.0.0.1 (2 CPUs, no dashboard), shared by tests.

    Started on first use and kept for the next test; a test that needs another Ray
    (``ray_cluster``) shuts it down, and the next user of this fixture restarts it.
    """
    import ray

    from relu_landscape.scan.ray_backend import init_local

    if not ray.is_initialized():
        init_local(num_cpus=2)
    yield ray


@pytest.fixture
def ray_cluster(_ray_session):
    """A simulated multi-node Ray: a head without resources and two worker nodes with
    one CPU and one fake GPU each; the driver is connected. Torn down after the test."""
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()  # a Cluster cannot share this process with the session's Ray
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={
        "num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False,
        # notice a removed node within a second or two, not the default ~30 s
        "_system_config": {"health_check_period_ms": 200,
                           "health_check_failure_threshold": 5}})
    try:
        workers = [cluster.add_node(num_cpus=1, num_gpus=1, node_ip_address="127.0.0.1")
                   for _ in range(2)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, configure_logging=False, log_to_driver=False)
        yield cluster, workers
    finally:
        ray.shutdown()
        cluster.shutdown()
        # Cluster records its head as "the latest Ray on this machine"; leave no pointer
        # to a dead head for other users' ray.init().
        marker = Path(ray._private.utils.get_ray_address_file(None))
        if marker.exists() and marker.read_text() == cluster.address:
            marker.unlink()


def tiny_spec_toml(out_backend: str = "ray", **grid) -> str:
    """A small valid spec as TOML text (easy instances), for end-to-end tests."""
    g = {"K": "{ sign = [1, 3], relu = [2] }", "weights": '["binary", "continuous"]',
         "n": "[11]", "alpha": "[0.1, 0.2]", "seeds": "3", **grid}
    lines = ["seed = 7", "[grid]", *[f"{k} = {v}" for k, v in g.items()],
             "[solver.binary]", "max_epochs = 200", "[solver.continuous]", "max_steps = 1500",
             "[execution]", f'backend = "{out_backend}"', "shard_size = 4"]
    return "\n".join(lines) + "\n"
