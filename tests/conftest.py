"""Shared fixtures: one real local Ray per test session (started on first use), a
simulated cluster, and a moto S3 server for object-store outputs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
# S3 credentials for the moto server the object-store tests start (any value is
# accepted there); set before any Ray starts so its workers inherit them. No instance
# metadata lookups (they would wait for a timeout off EC2).
for _key, _value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                     ("AWS_EC2_METADATA_DISABLED", "true")):
    os.environ.setdefault(_key, _value)


if os.environ.get("PYTEST_XDIST_WORKER"):
    # two test processes share the cores: one torch thread each (two busy processes
    # with a thread per core each ran many times slower than with one)
    import torch

    torch.set_num_threads(1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen) -> None:
    """Return once ``port`` accepts connections; fail if ``proc`` exits first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # a server process starting, not Ray
    pytest.fail(f"nothing listens on port {port} after 60 s")


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's standalone S3 server on 127.0.0.1 and a free port; yields HOST:PORT and
    stops it (by its pid) afterwards."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_port(port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """HOST:PORT of a moto S3 server shared by the session's tests."""
    with moto_server() as endpoint:
        yield endpoint


def make_bucket(endpoint: str | None) -> str:
    """A new empty bucket (a fresh name per call); returns its name. ``endpoint``
    None: the endpoint comes from AWS_ENDPOINT_URL."""
    import uuid

    import pyarrow.fs as pafs

    bucket = f"rl-{uuid.uuid4().hex[:12]}"
    query = "region=us-east-1&allow_bucket_creation=true"
    if endpoint:
        query += f"&endpoint_override={endpoint}&scheme=http"
    fs, _ = pafs.FileSystem.from_uri(f"s3://{bucket}?{query}")
    fs.create_dir(bucket)
    return bucket


def s3_uri(endpoint: str, bucket: str, key: str) -> str:
    """The URI of ``key`` in ``bucket`` on the moto server at ``endpoint``."""
    return (f"s3://{bucket}/{key}?endpoint_override={endpoint}&scheme=http"
            "&region=us-east-1")


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
    """A real in-process Ray on 127.0.0.1 (1 CPU, so one worker per scan: under
    ``make test`` the other core runs the other test process, and a second worker
    only oversubscribed the two cores; no dashboard), shared by tests.

    Started on first use and kept for the next test; a test that needs another Ray
    (``ray_cluster``) shuts it down, and the next user of this fixture restarts it.
    """
    import ray

    from relu_landscape.scan.ray_backend import init_local

    if not ray.is_initialized():
        init_local(num_cpus=1)
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
        stop_cluster(cluster)


def stop_cluster(cluster) -> None:
    """Disconnect the driver and stop a ``ray.cluster_utils.Cluster``.

    Cluster records its head as "the latest Ray on this machine"; leave no pointer to
    a dead head for other users' ray.init().
    """
    import ray

    ray.shutdown()
    cluster.shutdown()
    marker = Path(ray._private.utils.get_ray_address_file(None))
    if marker.exists() and marker.read_text() == cluster.address:
        marker.unlink()


def inside_first_page(data: bytes) -> int:
    """An offset in the middle of a Parquet file's first column chunk (its pages),
    where a flipped byte must fail a page checksum."""
    import io

    import pyarrow.parquet as pq

    column = pq.ParquetFile(io.BytesIO(bytes(data))).metadata.row_group(0).column(0)
    start = (column.dictionary_page_offset if column.has_dictionary_page
             else column.data_page_offset)
    return start + column.total_compressed_size // 2


def tiny_spec_toml(
    out_backend: str = "ray", *, tables: dict[str, str] | None = None, **grid
) -> str:
    """A small valid spec as TOML text (easy instances), for end-to-end tests; the
    solvers are named, so a change of the package's default solver leaves it valid.
    ``grid`` replaces or adds [grid] keys; ``tables`` replaces or adds whole tables by
    name, e.g. {"solver.binary": 'name = "anneal"\\nsweeps = 200', "probes.enumerate": ""}."""
    g = {"K": "{ sign = [1, 3], relu = [2] }", "weights": '["binary", "continuous"]',
         "n": "[11]", "alpha": "[0.1, 0.2]", "seeds": "3", **grid}
    t = {"solver.binary": 'name = "sbpi"\nmax_epochs = 200',
         "solver.continuous": "max_steps = 500",
         "execution": f'backend = "{out_backend}"\nshard_size = 4', **(tables or {})}
    lines = ["seed = 7", "[grid]", *[f"{k} = {v}" for k, v in g.items()],
             *[f"[{name}]\n{body}" for name, body in t.items()]]
    return "\n".join(lines) + "\n"


# fixtures that start or hold a Ray
RAY_FIXTURES = frozenset({"ray_local", "ray_cluster", "_ray_session", "ray_head"})


def _uses_ray(item: pytest.Item) -> bool:
    return bool(item.get_closest_marker("ray")) or bool(RAY_FIXTURES & set(item.fixturenames))


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup``), every test that
    starts Ray runs on one worker: they share that worker's Ray session and would
    otherwise start a second Ray beside it. Every other test, the scan engine's on the
    local backend included, goes to whichever worker is free."""
    for item in items:
        if _uses_ray(item):
            item.add_marker(pytest.mark.xdist_group("ray"))


def _ray_running() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


@pytest.fixture(autouse=True)
def _ray_only_where_marked(request):
    """A test outside the Ray group must not start Ray in this process (it could land
    beside the Ray group's session): such a test fails here, with what to do."""
    before = _ray_running()
    yield
    if not before and _ray_running() and not _uses_ray(request.node):
        sys.modules["ray"].shutdown()
        pytest.fail("this test started Ray in-process: mark it @pytest.mark.ray")
