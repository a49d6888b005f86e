"""Multi-node scans on a simulated Ray cluster (real raylets, fake GPUs)."""

from __future__ import annotations

import os
import signal

import pytest

from relu_landscape import store
from relu_landscape.cli import main
from relu_landscape.config import load_config
from relu_landscape.scan import plan, run_scan
from tests.conftest import make_bucket, moto_server, stop_cluster, tiny_spec_toml
from tests.scan.test_end_to_end import COMPARED


def _spec(tmp_path, backend, device="cpu", **grid):
    path = tmp_path / f"{backend}.toml"
    path.write_text(
        tiny_spec_toml(backend, K="{ relu = [2] }", weights='["binary"]', **grid)
    )
    return load_config(path, overrides={"execution": {"device": device}})


@pytest.mark.ray
def test_scan_spreads_over_nodes_survives_a_lost_node_and_refuses_fake_gpus(
    ray_cluster, tmp_path, capsys
):
    cluster, workers = ray_cluster
    spec = _spec(tmp_path, "ray", seeds="8")  # 16 instances, 4 shards of 4
    by_id = {w.node_id: w for w in workers}
    dispatched: list[str] = []
    lost: list[str] = []

    def lose_a_node(shard, worker):
        # Take a node down with a shard in flight the first time it is sent a second
        # shard: an actor is sent another shard only once its last one is done, so that
        # node has finished one (on a slow machine one actor may finish two shards
        # before the other has started, so "the third dispatch" is not enough). Kill
        # its process first (a tiny shard could otherwise finish before the worker
        # notices its raylet is gone), then the node. The replacement actor cannot be
        # placed (no free CPU left), and the surviving node reruns the lost shard and
        # finishes the scan. (--device cpu: the nodes' fake GPUs are not CUDA.)
        repeat = worker["node_id"] in dispatched
        dispatched.append(worker["node_id"])
        if repeat and not lost:
            lost.append(worker["node_id"])
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
    # The surviving node advertises a GPU that torch there cannot see: a scan on the
    # default device stops with exit 2 and why, rather than silently computing on CPU
    # on a GPU node (checked on the same cluster: starting one costs ~15 s).
    auto = tmp_path / "auto.toml"
    auto.write_text(tiny_spec_toml(K="{ relu = [2] }", weights='["binary"]'))
    assert main(["scan", str(auto), "--out", str(tmp_path / "auto"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds GPU" in err[0] and "sees no CUDA device" in err[0]
    assert not store.shard_files(tmp_path / "auto")


@pytest.mark.ray
def test_worker_checks_it_sees_this_scans_output_before_its_first_shard(
    ray_local, tmp_path
):
    """The cheap version of the next test: a worker whose view of OUT lacks this
    scan's scan.json (absent, or another scan's) refuses to start."""
    from relu_landscape.errors import OutputError
    from relu_landscape.scan.ray_backend import ShardWorker

    out = store.output(tmp_path / "out")
    worker = ray_local.remote(ShardWorker).options(num_cpus=0)
    # one actor asked three times (each check reads scan.json afresh; a refusal leaves
    # the actor alive), as one process start costs seconds
    actor = worker.remote(out.uri, store.Provenance(config_hash="this"), "cpu", 1)
    try:
        for marker in (None, {"config_hash": "another"}, {"config_hash": "this"}):
            if marker is not None:
                out.write_json("scan.json", marker)
            if marker == {"config_hash": "this"}:
                assert ray_local.get(actor.ready.remote())["pid"] > 0
                continue
            with pytest.raises(OutputError, match="must be reachable from every node"):
                ray_local.get(actor.ready.remote())
    finally:
        ray_local.kill(actor)


@pytest.mark.slow
@pytest.mark.ray
def test_node_that_cannot_see_the_output_stops_the_scan(
    _ray_session, s3_endpoint, tmp_path, capsys, monkeypatch
):
    """Two worker nodes, one CPU each: the first reaches the output's S3 endpoint, the
    second's environment names another S3 server (its own view, without the bucket),
    as a node with a wrong mount or wrong object-store settings would."""
    import ray
    from ray.cluster_utils import Cluster

    bucket = make_bucket(s3_endpoint)
    uri = f"s3://{bucket}/out?scheme=http&region=us-east-1"  # endpoint from the env
    ray.shutdown()
    with moto_server() as elsewhere:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{s3_endpoint}")
        cluster = Cluster(initialize_head=True, connect=False, head_node_args={
            "num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False})
        try:
            cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
            monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{elsewhere}")
            cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")  # its raylet's env
            monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{s3_endpoint}")
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, configure_logging=False,
                     log_to_driver=False)
            spec = tmp_path / "s.toml"
            spec.write_text(tiny_spec_toml(K="{ relu = [2] }", weights='["binary"]',
                                           seeds="8"))
            # 16 shards of one instance: the first node cannot finish them all before
            # the second node's worker has started and checked the output
            code = main(["scan", str(spec), "--out", uri, "--workers", "2", "--quiet",
                         "--device", "cpu", "--shard-size", "1"])
        finally:
            stop_cluster(cluster)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "must be reachable from every node" in err[0], err
    assert "cannot see" in err[0] and bucket in err[0]
    out = store.output(uri)
    assert out.read_json("scan.json") is not None  # the driver did see it
    assert not out.fs.get_file_info(out.join(".lock")).is_file


@pytest.mark.slow
@pytest.mark.ray
def test_device_cuda_asks_for_gpu_workers_before_any_gpu_node_exists(
    _ray_session, tmp_path
):
    """A cluster of CPU nodes: --device cuda still plans GPU workers (an autoscaler
    would add GPU nodes); they wait, and start on the GPU node that joins later. Its
    GPU is fake (torch sees no CUDA), so the worker then stops the scan with why."""
    import threading

    import ray
    from ray.cluster_utils import Cluster

    from relu_landscape.errors import DeviceError
    from relu_landscape.scan.progress import Progress
    from relu_landscape.scan.ray_backend import RayPool

    spec = _spec(tmp_path, "ray", device="cuda")
    shards = plan.plan_shards(spec, spec.execution.shard_size)
    ray.shutdown()
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={
        "num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False})
    raised: list[BaseException] = []
    try:
        ray.init(address=cluster.address, configure_logging=False, log_to_driver=False)
        pool = RayPool(spec.execution)
        assert pool.device_kind == "cuda" and "GPU" not in ray.cluster_resources()

        def run() -> None:
            try:
                pool.run(shards, str(tmp_path / "out"),
                         store.Provenance(config_hash=spec.config_hash),
                         Progress(shards, 1, enabled=False))
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                raised.append(exc)

        thread = threading.Thread(target=run)
        thread.start()  # the GPU workers are requested now, with no GPU anywhere
        cluster.add_node(num_cpus=1, num_gpus=1, node_ip_address="127.0.0.1")
        thread.join(timeout=240)
        assert not thread.is_alive()
    finally:
        stop_cluster(cluster)
    assert len(raised) == 1 and isinstance(raised[0], DeviceError), raised
    assert "holds GPU" in str(raised[0]) and not store.shard_files(tmp_path / "out")
