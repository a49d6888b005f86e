"""Franz-Parisi local entropy (relu_landscape.theory.franz_parisi), docs/science.md §5.

Independent numbers: theory I's RS entropy s(alpha) at d0 = (1 - q0)/2, the binary
entropy bound -d ln d - (1-d) ln(1-d), finite differences of the free entropy (the
saddle equations are its stationarity conditions), and Huang & Kabashima (2014):
typical binary-perceptron solutions are isolated (negative local entropy at small d).
Quadrature throughout: the tolerances are the quadrature error (~1e-8), not
statistical.
"""

from __future__ import annotations

import math

import pytest

from relu_landscape.errors import InvalidConfigError
from relu_landscape.theory import franz_parisi as fp
from relu_landscape.theory import franz_parisi_curve, rs_entropy
from tests.theory.conftest import bound


@pytest.mark.parametrize(("activation", "K"), [("sign", 1), ("relu", math.inf)])
def test_equals_equilibrium_entropy_at_typical_distance(activation, K):
    q0, _ = fp.equilibrium(activation, K, 0.5)
    d0 = (1.0 - q0) / 2.0
    (row,) = franz_parisi_curve(activation, K, 0.5, [d0])
    s = rs_entropy(activation, K, 0.5).value
    assert row["converged"]
    assert row["local_entropy"] == pytest.approx(s, abs=1e-7)
    assert row["t"] == pytest.approx(q0, abs=1e-6)
    assert row["q1"] == pytest.approx(q0, abs=1e-6)


def test_energetic_derivatives_match_finite_differences():
    point, eps = (0.6, 0.95, 0.58, 0.92), 1e-5
    _, d_t, d_q1 = fp.energetic(*point)
    q0, p, t, q1 = point
    fd_t = fp.energetic(q0, p, t + eps, q1)[0] - fp.energetic(q0, p, t - eps, q1)[0]
    fd_q1 = fp.energetic(q0, p, t, q1 + eps)[0] - fp.energetic(q0, p, t, q1 - eps)[0]
    assert d_t == pytest.approx(fd_t / (2 * eps), rel=1e-6)
    assert d_q1 == pytest.approx(fd_q1 / (2 * eps), rel=1e-6)


def test_saddle_is_stationary_point_of_free_entropy():
    q0, _ = fp.equilibrium("sign", 1, 0.5)
    sd = fp.solve_saddle("linear", 0.5, q0, 0.6, fp.independent_start(q0, 0.6))
    assert sd.converged
    args = dict(t=sd.t, q1=sd.q1, ph=sd.ph, th=sd.th, q1h=sd.q1h)
    for name in args:
        eps = 1e-5
        hi = fp.free_entropy("linear", 0.5, q0, 0.6, **{**args, name: args[name] + eps})
        lo = fp.free_entropy("linear", 0.5, q0, 0.6, **{**args, name: args[name] - eps})
        assert (hi - lo) / (2 * eps) == pytest.approx(0.0, abs=1e-6), name


def test_two_starts_and_dampings_agree():
    q0, _ = fp.equilibrium("sign", math.inf, 0.5)
    p = 0.8
    a = fp.solve_saddle("sign", 0.5, q0, p, (q0, q0), damping=0.2)
    b = fp.solve_saddle("sign", 0.5, q0, p, fp.independent_start(q0, p), damping=0.8)
    assert a.converged and b.converged
    assert a.local_entropy == pytest.approx(b.local_entropy, abs=1e-8)
    assert (a.t, a.q1) == pytest.approx((b.t, b.q1), abs=1e-6)


def test_invalid_arguments_are_all_reported():
    with pytest.raises(InvalidConfigError) as err:
        franz_parisi_curve("relu", 3, -1.0, [0.0, 0.6], weights="continuous")
    text = " ".join(err.value.issues)
    for key in ("alpha=-1.0", "weights='continuous'", "K=3", "d=0.0", "d=0.6"):
        assert key in text


@pytest.mark.slow
def test_perceptron_curve_below_bound_and_negative_at_small_d():
    """Huang & Kabashima 2014: the curve turns negative at small d > 0."""
    ds = [0.3, 0.1, 0.05, 0.02, 0.01, 0.003]
    rows = franz_parisi_curve("sign", 1, 0.5, ds)
    assert all(r["converged"] for r in rows)
    for r in rows:
        assert r["local_entropy"] < bound(r["d"])
    by_d = {r["d"]: r["local_entropy"] for r in rows}
    assert by_d[0.003] < 0 < by_d[0.02]


def test_cli_prints_json_and_writes_parquet(tmp_path, capsys):
    import json

    import polars as pl

    from relu_landscape.cli import main

    out = tmp_path / "fp.parquet"
    rc = main(
        [
            "theory",
            "franz-parisi",
            "--activation",
            "sign",
            "--K",
            "1",
            "--alpha",
            "0.5",
            "--d",
            "0.3",
            "--format",
            "json",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert {
        "activation",
        "weights",
        "K",
        "alpha",
        "d",
        "local_entropy",
        "converged",
        "t",
        "q1",
        "ph",
        "th",
        "q1h",
    } <= set(row)
    table = pl.read_parquet(out)
    assert table["kind"].to_list() == ["franz_parisi"] and table["K"].to_list() == [1]
    assert table["local_entropy"][0] == pytest.approx(row["local_entropy"])
    assert table["local_entropy"][0] < bound(0.3)
    bad = main(
        [
            "theory",
            "local-entropy",
            "--activation",
            "relu",
            "--K",
            "3",
            "--alpha",
            "0.5",
            "--d",
            "0.1",
        ]
    )
    assert bad == 2 and "K=3" in capsys.readouterr().err
