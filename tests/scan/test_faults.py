"""Fault tolerance: killed workers, shards that keep failing, corrupt files."""

from __future__ import annotations

import os
import signal

import pytest

from relu_landscape import store
from relu_landscape.cli import main
from relu_landscape.config import load_config
from relu_landscape.scan import pending, plan, run_scan
from tests.conftest import inside_first_page, tiny_spec_toml
from tests.scan.test_end_to_end import COMPARED


@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_spec_toml())
    return path


def _values(out):
    return store.read_runs(out).select(COMPARED).sort("run_id")


@pytest.mark.ray
def test_killed_worker_is_replaced_and_its_shard_rerun(ray_local, spec_path, tmp_path):
    spec = load_config(spec_path)
    killed = []

    def kill_first_worker(shard, worker):
        if not killed:  # SIGKILL the actor process that was just handed a shard
            os.kill(worker["pid"], signal.SIGKILL)
            killed.append(shard.shard_id)

    report = run_scan(
        spec, tmp_path / "out", progress=False, on_dispatch=kill_first_worker
    )
    assert not report.failed and report.run == report.shards == 12
    assert [sid for sid, _ in report.retried] == killed
    assert "worker died" in report.retried[0][1]
    runs = store.read_runs(tmp_path / "out")
    assert runs.height == len(plan.instances(spec)) == 36
    assert runs["run_id"].n_unique() == 36  # the re-run shard left no duplicate rows
    assert runs.filter(runs["shard_id"] == killed[0]).height == 4


@pytest.mark.slow
@pytest.mark.ray
def test_hung_worker_is_killed_and_replaced_by_the_watchdog(
    ray_local, tmp_path, monkeypatch
):
    from relu_landscape.scan import ray_backend

    # a tiny shard takes about a second; 30 s leaves room for a loaded machine
    monkeypatch.setattr(ray_backend, "HANG_S", 30.0)
    monkeypatch.setattr(ray_backend, "WAIT_S", 0.5)
    path = tmp_path / "s.toml"
    path.write_text(tiny_spec_toml(K="{ relu = [2] }", weights='["binary"]'))
    spec = load_config(path)  # 6 instances, 2 shards
    stopped = []

    def hang_first_worker(shard, worker):
        if not stopped:  # freeze (not kill) the actor handed the first shard
            os.kill(worker["pid"], signal.SIGSTOP)
            stopped.append(shard.shard_id)

    report = run_scan(
        spec, tmp_path / "out", progress=False, on_dispatch=hang_first_worker
    )
    assert not report.failed and report.run == report.shards == 2, report
    assert [sid for sid, e in report.retried if "worker hung" in e] == stopped, report
    runs = store.read_runs(tmp_path / "out")
    assert runs.height == 6 and runs["run_id"].n_unique() == 6


@pytest.mark.ray
def test_shard_that_keeps_failing_is_reported_and_the_rest_completes(
    ray_local, spec_path, tmp_path, capsys
):
    out = tmp_path / "out"
    # sign K = 1 and relu K = 2, one retry: 8 shards of which 4 relu fail twice
    spec_path.write_text(tiny_spec_toml(
        K="{ sign = [1], relu = [2] }",
        tables={"execution": 'backend = "ray"\nshard_size = 4\nmax_retries = 1'}))
    # A file where the relu partition directory must go: every relu shard fails to
    # write, on every attempt, with a real OSError inside the worker.
    (out / "runs").mkdir(parents=True)
    (out / "runs" / "activation=relu").write_text("in the way")
    assert main(["scan", str(spec_path), "--out", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    # every relu shard was retried once, then reported
    assert "8 total, 8 run, 0 skipped (complete), 4 retried, 4 failed" in captured.out
    assert "4 shard(s) failed after retries" in captured.err
    assert "NotADirectoryError" in captured.err
    runs = store.read_runs(out)
    assert set(runs["activation"]) == {"sign"} and runs.height == 12
    # the cause removed, rerunning the same command completes only what is missing
    (out / "runs" / "activation=relu").unlink()
    assert main(["scan", str(spec_path), "--out", str(out), "--quiet"]) == 0
    assert "4 run, 4 skipped" in capsys.readouterr().out
    assert store.read_runs(out).height == 24


def test_corrupt_truncated_and_missing_files_are_recomputed(spec_path, tmp_path):
    spec = load_config(spec_path, overrides={"execution": {"backend": "local"}})
    out = tmp_path / "out"
    run_scan(spec, out, progress=False)
    before = _values(out)
    files = store.shard_files(out)
    truncated, flipped, missing = files[0], files[1], files[2]
    truncated.write_bytes(truncated.read_bytes()[:-40])
    data = bytearray(flipped.read_bytes())
    data[inside_first_page(data)] ^= 0xFF  # caught by the page CRC
    flipped.write_bytes(bytes(data))
    missing.unlink()
    leftover = truncated.with_name(f".{truncated.name}.12345.tmp")  # a dead writer's
    leftover.write_bytes(b"partial")
    shards = plan.plan_shards(spec, spec.execution.shard_size)
    assert {s.shard_id for s in pending(shards, out)} == {
        truncated.stem,
        flipped.stem,
        missing.stem,
    }
    again = run_scan(spec, out, progress=False)
    assert again.run == 3 and again.skipped == 9
    assert not leftover.exists()
    assert _values(out).equals(before)
