"""Cluster submission: `ray job submit` to a real head on 127.0.0.1 (cluster/README)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from relu_landscape import store
from tests.conftest import tiny_spec_toml

REPO = Path(__file__).parents[2]
RAY = str(Path(sys.executable).with_name("ray"))


def _free_ports(k: int) -> list[int]:
    socks = [socket.socket() for _ in range(k)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture
def ray_head():
    """A `ray start --head --block` on 127.0.0.1 with its own ports and temp dir
    (so no other Ray on this machine is touched); stopped by its pid in a finally."""
    gcs, dash, client, agent, metrics = _free_ports(5)
    temp = tempfile.mkdtemp(prefix="rl-ray-", dir="/tmp")  # socket paths must be short
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    head = subprocess.Popen(
        [
            RAY,
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={gcs}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dash}",
            f"--ray-client-server-port={client}",
            f"--dashboard-agent-listen-port={agent}",
            f"--metrics-export-port={metrics}",
            "--num-cpus=2",
            f"--temp-dir={temp}",
            "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        for line in head.stdout:  # returns once the head reports it is up
            if "block forever" in line:
                break
        else:
            pytest.fail(f"ray start exited with {head.wait()}")
        yield f"http://127.0.0.1:{dash}", env
    finally:
        head.send_signal(signal.SIGTERM)  # --block: the head stops its own processes
        try:
            head.wait(timeout=60)
        finally:
            os.killpg(head.pid, signal.SIGKILL) if head.poll() is None else None
            head.stdout.close()
            shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.ray
def test_job_submit_runs_a_scan_on_the_head(ray_head, tmp_path):
    address, env = ray_head
    spec = tmp_path / "tiny.toml"
    spec.write_text(tiny_spec_toml(K="{ sign = [1] }", weights='["binary"]'))
    out = tmp_path / "out"
    job = subprocess.run(
        [
            RAY,
            "job",
            "submit",
            "--address",
            address,
            "--working-dir",
            str(REPO),
            "--",
            "relu-landscape",
            "scan",
            str(spec),
            "--out",
            str(out),
            "--quiet",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert job.returncode == 0, job.stdout[-2000:] + job.stderr[-2000:]
    assert "succeeded" in job.stdout and "2 run, 0 skipped" in job.stdout
    runs = store.read_runs(out)
    assert runs.height == 6 and runs["solved"].all()
