"""Public API: validation, tables, ties and the import-layer rule."""

import math
import subprocess
import sys

import pytest

from relu_landscape.errors import InvalidConfigError
from relu_landscape.theory import (
    THEORY_VERSION,
    capacity_table,
    curve_table,
    energetic_term,
    kappa,
    rs_capacity,
    rs_entropy,
    rs_overlap,
    rsb1_capacity,
)


@pytest.mark.parametrize(
    "call,option",
    [
        (lambda: rs_capacity("sign", "continuous", 2), "K=2"),
        (lambda: rs_capacity("relu", "binary", 3), "K=3"),
        (lambda: rs_capacity("relu", "continuous", 1), "K=1"),
        (lambda: rs_capacity("swish", "binary", 3), "activation"),
        (lambda: rs_capacity("sign", "ternary", 3), "weights"),
        (lambda: rs_capacity("sign", "binary", 3, tie="maybe"), "tie"),
        (lambda: rs_capacity("sign", "binary", 3, precision="ultra"), "precision"),
        (lambda: rs_overlap("sign", "binary", 3, 0.0), "alpha"),
        (lambda: rs_entropy("sign", 3, -1.0), "alpha"),
        (lambda: energetic_term("sign", 3, 1.0), "q"),
        (lambda: rsb1_capacity("relu", "continuous", 4), "K=4"),
        (lambda: rsb1_capacity("relu", "binary"), "weights"),
        (lambda: capacity_table(["relu"], ["binary"], [4], levels=["2RSB"]), "level"),
        (lambda: curve_table("relu", "binary", 4, [0.5, -1]), "alphas"),
        (lambda: kappa("swish", 0.5), "activation"),
    ],
)
def test_invalid_arguments_name_the_option(call, option):
    with pytest.raises(InvalidConfigError) as info:
        call()
    assert any(option in issue for issue in info.value.issues)


def test_all_problems_reported_at_once():
    with pytest.raises(InvalidConfigError) as info:
        rs_capacity("sign", "ternary", 2, tie="maybe")
    assert len(info.value.issues) == 3


def test_capacity_table_rows_and_skip():
    with pytest.raises(InvalidConfigError):
        capacity_table(
            ["sign", "relu"], ["continuous"], [1, 2, math.inf], levels=("RS", "1RSB")
        )
    rows = capacity_table(
        ["sign", "relu"],
        ["continuous"],
        [1, 2, math.inf],
        levels=("RS", "1RSB"),
        tie="success",
        skip_invalid=True,
    )
    keys = {(r["activation"], r["K"], r["level"]) for r in rows}
    assert keys == {
        ("sign", 1, "RS"),
        ("sign", "inf", "RS"),
        ("sign", "inf", "1RSB"),
        ("relu", 2, "RS"),
        ("relu", "inf", "RS"),
        ("relu", "inf", "1RSB"),
    }
    assert all(
        r["tie"] == "success"
        and r["precision"] == "default"
        and r["theory_version"] == THEORY_VERSION
        and r["converged"] is True
        and r["kappa"] == 0.0
        and set(r)
        == {"activation", "weights", "K", "kappa", "level", "tie", "precision",
            "theory_version", "alpha_c", "stderr", "converged"}
        for r in rows
    )


def test_curve_table_binary_has_entropy():
    rows = curve_table("sign", "binary", 1, [0.2, 0.6])
    assert [set(r) for r in rows] == [{"alpha", "q", "q_stderr", "s", "s_stderr"}] * 2
    assert rows[0]["q"] < rows[1]["q"] and rows[0]["s"] > rows[1]["s"]
    assert set(curve_table("sign", "continuous", 1, [1.0])[0]) == {
        "alpha",
        "q",
        "q_stderr",
    }


def test_import_loads_no_torch_ray_polars():
    code = (
        "import sys, relu_landscape.theory; "
        "print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('torch', 'ray', 'polars')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_full_capacity_table():
    rows = capacity_table(
        ["sign", "relu"],
        ["continuous", "binary"],
        list(range(1, 17)) + [math.inf],
        levels=("RS", "1RSB"),
        skip_invalid=True,
    )
    assert len(rows) == 38  # 8 finite K per activation, inf, and 2 1RSB rows
    rs = [r for r in rows if r["level"] == "RS"]
    assert all(r["converged"] for r in rs)
    # binary weights: the annealed bound (2^N weights, each pattern right w.p. 1/2)
    assert all(0.5 < r["alpha_c"] <= 1.0 for r in rs if r["weights"] == "binary")
    sign_cont = [r["alpha_c"] for r in rs if r["weights"] == "continuous"
                 and r["activation"] == "sign"]
    assert sign_cont[0] == pytest.approx(2.0)  # Gardner's perceptron, K = 1
    assert sign_cont == sorted(sign_cont) and sign_cont[-1] == math.inf
