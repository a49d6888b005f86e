"""Errors that are the user's to fix: exit 2, one line, nothing written (issue #12)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from relu_landscape import store
from relu_landscape.cli import env_ray_address, main
from relu_landscape.scan import plan
from tests.conftest import free_port, tiny_spec_toml

REPO = Path(__file__).parents[2]
NO_CUDA = "torch.cuda.is_available() is false here"


@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_spec_toml(K="{ relu = [2] }", weights='["binary"]', seeds="2"))
    return path


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real command in a fresh process (no Ray of the test session in it)."""
    return subprocess.run([sys.executable, "-m", "relu_landscape", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason=NO_CUDA)
@pytest.mark.parametrize("backend", ["ray", "local"])
def test_device_cuda_without_cuda_exits_2_before_writing(spec_path, tmp_path, backend):
    out = tmp_path / "out"
    proc = _cli("scan", str(spec_path), "--out", str(out), "--device", "cuda",
                "--backend", backend, "--quiet")
    assert proc.returncode == 2
    line = _one_line(proc.stderr)
    assert line.startswith("relu-landscape: error: --device cuda:") and "no CUDA" in line
    assert not out.exists()  # no scan.json, no lock, no directory


def test_unreachable_address_exits_2_before_writing(spec_path, tmp_path):
    out = tmp_path / "out"
    proc = _cli("scan", str(spec_path), "--out", str(out), "--address",
                f"127.0.0.1:{free_port()}", "--quiet")
    assert proc.returncode == 2
    assert "--address: nothing answers at 127.0.0.1:" in _one_line(proc.stderr)
    assert not out.exists()


def test_http_ray_address_is_not_a_cluster_address(monkeypatch):
    # a shell that exports the Jobs API address for `ray job submit`
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8265")
    assert env_ray_address() is None
    monkeypatch.setenv("RAY_ADDRESS", "https://head.example:8265")
    assert env_ray_address() is None
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")  # inside `ray job submit`
    assert env_ray_address() == "10.0.0.5:6379"
    monkeypatch.delenv("RAY_ADDRESS")
    assert env_ray_address() is None


@pytest.mark.slow
@pytest.mark.ray
def test_scan_with_http_ray_address_runs_on_a_local_ray(spec_path, tmp_path):
    out = tmp_path / "out"
    proc = _cli("scan", str(spec_path), "--out", str(out), "--workers", "1",
                "--quiet", env={"RAY_ADDRESS": f"http://127.0.0.1:{free_port()}"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert store.read_runs(out).height == 4


def test_output_paths_that_cannot_be_used_exit_2(spec_path, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    for out, message in ((blocker, "is a file; give a directory"),
                         (blocker / "out", "is a file, so"),
                         ("nosuchscheme://bucket/out", "pyarrow.fs cannot open")):
        code = main(["scan", str(spec_path), "--out", str(out), "--backend", "local",
                     "--quiet"])
        assert code == 2
        assert message in _one_line(capsys.readouterr().err)
    assert blocker.read_text() == "not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_output_without_write_permission_exits_2(spec_path, tmp_path, capsys):
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    code = main(["scan", str(spec_path), "--out", str(locked / "out"), "--backend",
                 "local", "--quiet"])
    assert code == 2 and "no permission to write" in _one_line(capsys.readouterr().err)
    assert not (locked / "out").exists()


def test_shard_files_of_an_older_schema_version_are_refused(spec_path, tmp_path,
                                                             capsys, monkeypatch):
    out = tmp_path / "out"
    args = ["scan", str(spec_path), "--out", str(out), "--backend", "local", "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    files = sorted(map(str, store.shard_files(out)))
    marker = (out / "scan.json").read_text()
    # the package's result schema moves on: the same spec now plans other shard ids
    monkeypatch.setattr(plan, "SCHEMA_VERSION", plan.SCHEMA_VERSION + 1)
    assert main(args) == 2
    line = _one_line(capsys.readouterr().err)
    assert "shard file(s) under" in line and "not in this scan's plan" in line
    # refused before writing: the old files and the plan are untouched, no lock left
    assert sorted(map(str, store.shard_files(out))) == files
    assert (out / "scan.json").read_text() == marker
    assert not (out / ".lock").exists()


def test_sigterm_ends_a_scan_like_ctrl_c_and_leaves_no_lock(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(tiny_spec_toml())  # 18 shards of 2 below
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "relu_landscape", "scan", str(spec), "--out", str(out),
         "--backend", "local", "--shard-size", "2"],
        cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        # each progress-bar refresh wakes this loop; stop once a shard is on disk
        while not any(p.parts[-5] == "runs" for p in store.shard_files(out)):
            assert os.read(proc.stderr.fileno(), 4096), "the scan ended before a shard"
        assert (out / ".lock").exists()
        proc.send_signal(signal.SIGTERM)
        tail = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 130, tail
    finally:
        proc.kill()
        proc.stderr.close()
    assert "interrupted; rerun" in tail and "Traceback" not in tail
    assert not (out / ".lock").exists()
    done = sum(p.parts[-5] == "runs" for p in store.shard_files(out))
    assert 1 <= done < 18
