"""Ctrl-C a running scan (a real CLI process on Ray), then resume it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from relu_landscape import store
from relu_landscape.cli import main
from tests.conftest import tiny_spec_toml
from tests.scan.test_end_to_end import COMPARED

REPO = Path(__file__).parents[2]


def _complete(out: Path) -> int:
    return sum(p.parts[-5] == "runs" for p in store.shard_files(out))


@pytest.mark.ray
def test_interrupted_scan_resumes_to_the_uninterrupted_dataset(
    ray_local, tmp_path, capsys
):
    spec = tmp_path / "tiny.toml"
    spec.write_text(tiny_spec_toml(K="{ sign = [1], relu = [2] }"))
    out, ref = tmp_path / "out", tmp_path / "ref"
    args = ["scan", str(spec), "--workers", "1", "--shard-size", "2"]  # 12 shards
    proc = subprocess.Popen(
        [sys.executable, "-m", "relu_landscape", *args, "--out", str(out)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        # Each progress-bar refresh wakes this loop (blocking reads, no sleeping); stop
        # once 3 shards are on disk.
        while _complete(out) < 3:
            assert os.read(proc.stderr.fileno(), 4096), "the scan ended before 3 shards"
        # one writer per output: a second scan into the same directory is refused
        assert main([*args, "--out", str(out), "--quiet"]) == 2
        assert "is being written by another scan" in capsys.readouterr().err
        proc.send_signal(signal.SIGINT)
        tail = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 130, tail
    finally:
        proc.kill()
        proc.stderr.close()
    assert "interrupted; rerun" in tail
    done = _complete(out)
    assert 3 <= done < 12 and not (out / ".lock").exists()
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    assert f"{12 - done} run, {done} skipped" in capsys.readouterr().out
    assert main([*args, "--out", str(ref), "--quiet", "--backend", "local"]) == 0
    resumed = store.read_runs(out).select(COMPARED).sort("run_id")
    assert resumed.height == 24
    assert resumed.equals(store.read_runs(ref).select(COMPARED).sort("run_id"))
