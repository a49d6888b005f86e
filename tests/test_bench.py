"""`relu-landscape bench --quick`: a smoke run; every headline field is present.

No benchmark speed is asserted (they are ratios for the closing note, not tests);
only that each was measured, is a positive finite number, and is possible: an
efficiency in (0, 1], and baselines that solve the same instances as the batched runs.
"""

from __future__ import annotations

import json
import math

import pytest

from relu_landscape.cli import main

HEADLINES = ["roofline_efficiency", "batched_vs_naive", "incremental_vs_recompute",
             "scan_vs_ray_tune", "theory_table_seconds", "compaction_speedup",
             "scan_kernel_fraction"]
STEPS = {"gd", "clipped_sgd", "bp", "sbpi", "anneal", "local_energy", "robustness"}


@pytest.mark.slow
@pytest.mark.ray
def test_bench_quick_writes_every_field(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    for key in HEADLINES:
        assert key in printed
        assert isinstance(result[key], float) and math.isfinite(result[key]) and result[key] > 0
    assert {"cpu", "cores", "torch", "ray", "device"} <= set(result["machine"])
    # the Tune trials and the scan ran the same solver on the same instances
    assert result["scan_vs_ray_tune_detail"]["same_results"] is True
    for row in result["roofline"]:
        assert 0 < row["efficiency"] <= 1
        assert row["pattern_bytes"] == 1  # +-1 patterns stored as int8
    _sane_baseline(result["batched_vs_naive_detail"])
    _sane_efficiencies(result["solver_efficiency"])
    kernels = result["scan_kernel_fraction_detail"]
    assert 0 < kernels["fraction"] <= 1 and kernels["solve_s"] > 0 and kernels["probe_s"] > 0
    assert kernels["solve_s"] + kernels["probe_s"] <= kernels["wall_s"]


def _sane_efficiencies(steps: dict) -> None:
    assert set(steps) == STEPS
    for entry in steps.values():
        assert 0 < entry["efficiency"] <= 1 and entry["bound"] in ("compute", "memory")
        assert entry["bound_s"] == pytest.approx(entry["efficiency"] * entry["step_s"])


def _sane_baseline(naive: dict) -> None:
    assert naive["same_solved"] is True
    # same instances, same code: only the matmul layout's float rounding may differ,
    # here by at most 2% of the largest P
    assert naive["max_error_diff"] <= 0.02 * naive["N"] * 3.75


def test_roofline_and_baseline_are_within_their_sanity_bounds():
    """The CI-sized check of the two figures a mismeasurement could flatter: the
    efficiency lies in (0, 1] (a BenchmarkError otherwise) with patterns counted at
    their int8 width, and the naive loop solves the same instances as the batch."""
    import torch

    from relu_landscape import bench

    torch.set_num_threads(1)
    peak = bench.peak_matmul_flops("cpu", 256)
    bw = bench.bandwidth("cpu", 16)
    row = bench.roofline("cpu", B=16, N=200, steps=3, peak=peak, bw=bw)
    assert 0 < row["efficiency"] <= 1 and row["pattern_bytes"] == 1
    _sane_baseline(bench.batched_vs_naive("cpu", B=8, N=100, steps=5))


def test_every_solver_step_is_within_its_roofline():
    """CI-sized solver_efficiency: every solver's and probe's step lies in (0, 1] of
    its own roofline, and names the bound it is held to."""
    import torch

    from relu_landscape import bench

    torch.set_num_threads(1)
    peak = bench.peak_matmul_flops("cpu", 256)
    bw = bench.bandwidth("cpu", 16)
    _sane_efficiencies(bench.solver_efficiency("cpu", B=8, N=48, steps=2, peak=peak, bw=bw,
                                               draws=2))


def test_an_impossible_efficiency_is_an_error():
    """A step faster than its roofline allows is a mismeasurement, never a figure:
    1e9 flops at 1e9 flop/s take at least 1 s, memory-bound 2 s here."""
    from relu_landscape import bench

    row = bench._against_roofline("x", 4.0, 1e9, 2e9, peak=1e9, bw=1e9)
    assert row["bound"] == "memory" and row["efficiency"] == pytest.approx(0.5)
    with pytest.raises(bench.BenchmarkError, match="outside"):
        bench._against_roofline("x", 1.0, 1e9, 2e9, peak=1e9, bw=1e9)


def test_bench_gpu_without_cuda_is_a_clean_error(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --gpu is valid here")
    assert main(["bench", "--gpu"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_scan_kernel_fraction_quick_runs_the_demo_grid(tmp_path):
    """The quick kernel-fraction scan: every solver table of the demo preset (one or
    a list per weight type) cut to a tenth of its budget; kernels inside the wall."""
    import torch

    from relu_landscape import bench

    torch.set_num_threads(1)
    kernels = bench.scan_kernel_fraction(tmp_path, quick=True, device="cpu")
    assert kernels["instances"] > 0 and kernels["solve_s"] > 0 and kernels["probe_s"] > 0
    assert 0 < kernels["fraction"] <= 1
    assert kernels["solve_s"] + kernels["probe_s"] <= kernels["wall_s"]
