"""`make gpu-check`'s comparison logic (the CUDA run itself needs a GPU machine)."""

from __future__ import annotations

import polars as pl
import pytest
import torch

from relu_landscape import gpu_check


def _runs(solver: str, solved: list[bool], errors: list[int], P: int = 10):
    n = len(solved)
    return pl.DataFrame({"run_id": [f"r{i}" for i in range(n)],
                         "activation": ["sign"] * n, "weights": ["binary"] * n,
                         "K": [3] * n, "P": [P] * n, "solver": [solver] * n,
                         "solved": solved, "errors": errors})


def test_compare_counts_agreement_instance_by_instance():
    cpu = _runs("sbpi", [True, False, False], [0, 2, 3])
    cuda = _runs("sbpi", [True, True, False], [0, 0, 3])
    (row,) = gpu_check.compare(cpu, cuda)
    assert row == {"solver": "sbpi", "activation": "sign", "weights": "binary",
                   "K": 3, "instances": 3, "same_instances": True, "solved_cpu": 1,
                   "solved_cuda": 2, "solved_agree": 2, "errors_agree": 2,
                   "exact": True}


def test_compare_notices_other_instances():
    cpu = _runs("gd", [True, True], [0, 0])
    cuda = _runs("gd", [True, True], [0, 0], P=11)
    (row,) = gpu_check.compare(cpu, cuda)
    assert not row["same_instances"] and not row["exact"]


def test_without_cuda_it_exits_2_with_one_line(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert gpu_check.main(["--no-bench"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sees no CUDA device" in err[0]
