"""Franz-Parisi local entropy at finite K (relu_landscape.theory.franz_parisi,
committee_fields), docs/local_entropy.md §4.

Independent numbers: the exact majority inner probability of ``energetic`` (its
gradient by finite differences), rejection sampling of the conditioned reference
noise, the quadrature perceptron curve (K = 1 run through the finite-K QMC
machinery), theory I's RS entropy s(alpha) at d0 = (1 - q0)/2 and the bound
-d ln d - (1-d) ln(1-d). QMC tolerances are multiples of the reported stderr.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from relu_landscape.errors import InvalidConfigError
from relu_landscape.theory import committee_fields as cf
from relu_landscape.theory import franz_parisi as fp
from relu_landscape.theory import franz_parisi_curve, rs_entropy
from relu_landscape.theory.energetic import log_inner_relu, log_inner_sign, relu_cells
from tests.theory.conftest import assert_approaches_wide_limit, bound


def test_sign_inner_gradient_and_curvature_match_finite_differences():
    rng = np.random.default_rng(1)
    h, sigma, eps = rng.normal(size=(6, 5)), 0.4, 1e-4
    log_z, grad, hess = cf.sign_inner(h, sigma)
    assert np.allclose(log_z, log_inner_sign(h, sigma), atol=1e-12)
    for unit in range(5):
        e = np.zeros(5)
        e[unit] = eps
        up, down = log_inner_sign(h + e, sigma), log_inner_sign(h - e, sigma)
        assert np.allclose(grad[:, unit], (up - down) / (2 * eps), atol=1e-7)
        assert np.allclose(hess[:, unit], (up - 2 * log_z + down) / eps**2, atol=1e-4)


@pytest.mark.parametrize("K", [2, 4])
def test_relu_inner_matches_central_differences_of_the_lattice_value(K):
    """The Franz-Parisi route (K = 2 exact, K >= 4 analytic lattice derivatives)
    equals the former one, central differences (step 0.01 sigma) of the lattice
    value ``log_inner_relu``, within that one's error: lattice O(delta^2) ~ 1e-5 in
    ln Z, truncation ~ step^2 ~ 1e-4 in the gradient, rounding / step^2 ~ 1e-3 in
    the curvature (measured: 4e-6, 4e-5, 3e-4). Where Z < 1e-8 neither lattice is
    Richardson-extrapolated: O(delta^2) errors, 100 times the tolerance (measured
    3e-3 in the gradient at ln Z = -21)."""
    rng = np.random.default_rng(2)
    for sigma in (0.5, 0.3):
        h = rng.normal(size=(6, K))
        cells = relu_cells(64, 1.0 - sigma * sigma)
        log_z, grad, diag = cf.inner("relu", h, sigma, cells=cells)
        step, eye = 0.01 * sigma, np.eye(K)
        centre = log_inner_relu(h, sigma, "error", cells)
        up = np.stack([log_inner_relu(h + step * e, sigma, "error", cells) for e in eye], 1)
        down = np.stack([log_inner_relu(h - step * e, sigma, "error", cells) for e in eye], 1)
        scale = np.where(centre > math.log(1e-8), 1.0, 100.0)[:, None]
        assert np.all(np.abs(log_z - centre) < 1e-5 * scale[:, 0])
        assert np.all(np.abs(grad - (up - down) / (2 * step)) < 1e-4 * scale)
        assert np.all(np.abs(diag - (up - 2 * centre[:, None] + down) / step**2) < 1e-3 * scale)


def _rejection(z: np.ndarray, q0: float, correct, rng, n: int) -> np.ndarray:
    x = rng.normal(size=(n, z.size))
    return x[correct(math.sqrt(q0) * z + math.sqrt(1 - q0) * x)]


@pytest.mark.parametrize(
    ("activation", "z", "tol"),
    [
        ("sign", [0.3, -1.0, 0.5], 0.02),  # exact sampler: MC error only
        ("relu", [0.3, -1.0], 0.04),  # lattice sampler: about one cell of bias
        ("relu", [0.3, -1.0, 0.5, 0.2], 0.04),
    ],
)
def test_reference_sampler_matches_rejection_sampling(activation, z, tol):
    """x | z conditioned on a correct output: moments against rejection sampling."""
    rng = np.random.default_rng(3)
    K, q0, M = len(z), 0.6, 10000
    zz = np.tile(np.asarray(z, dtype=float), (M, 1))
    x = cf.reference(activation, zz, rng.random((M, 2 * K)), q0)
    k = K // 2

    def correct(u: np.ndarray) -> np.ndarray:
        if activation == "sign":
            return (u > 0).sum(1) > K // 2
        r = np.maximum(u, 0.0)
        return r[:, :k].sum(1) > r[:, k:].sum(1)

    ref = _rejection(np.asarray(z), q0, correct, rng, 8 * M)
    assert correct(math.sqrt(q0) * zz + math.sqrt(1 - q0) * x).mean() > 0.97
    assert np.allclose(x.mean(0), ref.mean(0), atol=tol)
    assert np.allclose(x.std(0), ref.std(0), atol=tol)


def test_term_derivatives_match_finite_differences_on_the_points():
    """The Stein / heat-equation derivatives hold in expectation: per batch they
    differ from finite differences of the sampled G by QMC noise only."""
    pts = fp.FieldPoints.sobol(3, 10, 8, seed=3)
    term = fp.FiniteKTerm("sign", 0.3, pts)
    p, t, q1, eps = 0.9, 0.25, 0.85, 1e-5  # B^2 = 0.04 > 0: inside the domain
    _, d_t, d_q1 = term.evaluate(p, t, q1)
    fd_t = (term.batches(p, t + eps, q1) - term.batches(p, t - eps, q1)) / (2 * eps)
    fd_q1 = (term.batches(p, t, q1 + eps) - term.batches(p, t, q1 - eps)) / (2 * eps)
    for diff in (d_t - fd_t, d_q1 - fd_q1):
        se = diff.std(ddof=1) / math.sqrt(diff.size)
        assert abs(diff.mean()) < 4 * se + 1e-6
        assert se < 0.05  # the check has power: noise well below |dG| ~ 0.6


def test_finite_k_machinery_at_K1_reproduces_the_perceptron():
    """K = 1 through QMC, conditioned sampling and the DP: the quadrature curve."""
    q0, q_batches, s, term = fp.finite_k_setup("sign", 1, 0.5, "fast")
    q_exact, s_exact = fp.equilibrium("sign", 1, 0.5)
    se_q = q_batches.std(ddof=1) / math.sqrt(q_batches.size)
    assert q0 == pytest.approx(q_exact, abs=4 * se_q + 1e-6)
    assert s.value == pytest.approx(s_exact, abs=4 * s.stderr + 1e-6)
    p = 0.8
    sd = fp.solve_saddle(term, 0.5, q0, p, fp.independent_start(q0, p))
    exact = fp.solve_saddle("linear", 0.5, q0, p, fp.independent_start(q0, p))
    assert sd.converged and exact.converged
    se = fp.saddle_stderr(term, 0.5, q_batches, sd)
    assert 0 < se < 0.01
    assert sd.local_entropy == pytest.approx(exact.local_entropy, abs=4 * se)


def test_finite_k_curve_meets_rs_entropy_at_d0_and_stays_below_bound():
    q0, _, _, _ = fp.finite_k_setup("sign", 3, 0.5, "fast")
    d0 = (1.0 - q0) / 2.0
    rows = franz_parisi_curve("sign", 3, 0.5, [d0, 0.3], precision="fast")
    s = rs_entropy("sign", 3, 0.5)  # quadrature at K = 3
    assert all(r["converged"] and r["K"] == 3 for r in rows)
    at_d0, at_02 = rows
    assert at_d0["local_entropy"] == pytest.approx(s.value, abs=4 * at_d0["stderr"])
    assert at_d0["t"] == pytest.approx(q0, abs=0.01)
    assert at_d0["q1"] == pytest.approx(q0, abs=0.01)
    assert 0 < at_02["stderr"] < 0.01
    assert at_02["local_entropy"] < bound(0.3)


def test_unsupported_cases_are_rejected():
    with pytest.raises(InvalidConfigError) as err:
        franz_parisi_curve("relu", 3, 0.5, [0.1])
    assert "K=3" in " ".join(err.value.issues)
    with pytest.raises(InvalidConfigError) as err:
        franz_parisi_curve("sign", 3, 0.5, [0.1], precision="huge")
    assert "precision='huge'" in " ".join(err.value.issues)


@pytest.mark.slow
def test_relu_finite_k_meets_rs_entropy_at_d0_and_keeps_the_former_values():
    """At d0, S_FP = s(alpha); at d = 0.1 the value of the former route (central
    differences of the lattice value, same "fast" points, docs/local_entropy.md §8:
    0.055(2)) within the stderr."""
    q0, _, _, _ = fp.finite_k_setup("relu", 2, 0.5, "fast")
    at_d0, at_01 = franz_parisi_curve("relu", 2, 0.5, [(1 - q0) / 2, 0.1], precision="fast")
    s = rs_entropy("relu", 2, 0.5)
    assert at_d0["converged"] and at_01["converged"]
    assert at_d0["local_entropy"] == pytest.approx(s.value, abs=4 * at_d0["stderr"] + 2e-3)
    assert at_01["local_entropy"] == pytest.approx(0.055, abs=at_01["stderr"])


def test_cli_rows_carry_K_stderr_converged_and_external_entropy(tmp_path, capsys):
    import json

    import polars as pl

    from relu_landscape.cli import main

    out = tmp_path / "fp.parquet"
    argv = ["theory", "franz-parisi", "--activation", "sign", "--K", "1,3"]
    argv += ["--alpha", "0.5", "--d", "0.3", "--precision", "fast"]
    assert main([*argv, "--format", "json", "--out", str(out)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["K"] for r in rows] == [1, 3]
    assert all({"K", "stderr", "converged", "local_entropy"} <= set(r) for r in rows)
    assert rows[0]["stderr"] == 0.0 and rows[1]["stderr"] > 0.0
    table = pl.read_parquet(out)
    assert table["stderr"].to_list() == pytest.approx([r["stderr"] for r in rows])
    argv = ["theory", "local-entropy", "--activation", "sign", "--K", "1"]
    assert main([*argv, "--alpha", "0.5", "--d", "0.2", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["converged"] and row["external_entropy"] < 0  # RS overestimates


@pytest.mark.slow
def test_sign_curves_approach_the_wide_limit_as_K_grows():
    """d = 0.1, alpha = 0.5: |S_K - S_inf| shrinks with K (K = 1 .. 15)."""
    (wide,) = franz_parisi_curve("sign", math.inf, 0.5, [0.1])
    rows = {
        K: franz_parisi_curve("sign", K, 0.5, [0.1], precision="fast")[0]
        for K in (1, 3, 7, 15)
    }
    assert_approaches_wide_limit(wide, rows)
    assert all(r["local_entropy"] < bound(0.1) for r in rows.values())


def test_beyond_capacity_rows_are_unconverged_not_numbers():
    """sign K = 3 at alpha = 2, above its binary RS capacity: no equilibrium."""
    (row,) = franz_parisi_curve("sign", 3, 2.0, [0.1], precision="fast")
    assert row["converged"] is False
    assert math.isnan(row["local_entropy"]) and math.isnan(row["stderr"])
