"""Break-up of the dense regions (relu_landscape.theory.breakup) and the end of the
binding range (dense.binding_end, d_zero_external), docs/local_entropy.md §5-6.

Independent numbers: finite differences of the local entropy along the curve
(dphi/dd = 2 ph, the basis of the alpha_U criterion), the RS equilibrium of theory I
(q, s(alpha)) at the end of the binding range, and, for alpha_U itself, a scan of
the same curve on a five times finer d grid on both sides of the bisected load.
Literature anchor (centre constrained to be a solution, another formulation):
alpha_U ~ 0.77-0.78 for the binary perceptron (Baldassi et al., PRL 115, 128101
(2015); Stojnic, arXiv:2506.19276 (2025): the local entropy breaks down for alpha
in (0.77, 0.78)).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from relu_landscape import theory
from relu_landscape.cli import main
from relu_landscape.theory import breakup, rs_entropy
from relu_landscape.theory import dense as de
from relu_landscape.theory.estimate import Estimate


def test_local_entropy_slope_is_twice_ph():
    """Central differences of phi(d) equal 2 ph to O(h^2) (h = 2.5e-3)."""
    pr = breakup.profile("linear", 0.7, d_hi=0.05, d_lo=0.04, step=0.0025)
    assert pr.complete and len(pr.d) == 5
    slope = (pr.local_entropy[2:] - pr.local_entropy[:-2]) / (pr.d[2:] - pr.d[:-2])
    assert slope == pytest.approx(2 * pr.ph[1:-1], rel=2e-3)


def test_profile_below_and_above_the_break_up():
    """alpha = 0.7: ph > 0 all the way down (min ~0.31 near d = 0.045); alpha =
    0.8: the branch continued downwards ends where ph -> 0 (at d ~ 0.043), and the
    point beyond is reported unconverged, not as a number."""
    below = breakup.profile("linear", 0.7, d_hi=0.055, d_lo=0.035, step=0.005)
    assert not below.broken and 0.25 < below.ph_min < 0.35
    last = de.solve_saddle("linear", 0.8, 0.91, (0.91**2, 1.0))  # d = 0.045
    assert last.converged and 0 < last.ph < 0.03
    beyond = de.solve_saddle("linear", 0.8, 0.92, (last.q1, last.omega))  # d = 0.04
    assert not beyond.converged and math.isnan(beyond.local_entropy)


@pytest.mark.slow
def test_profile_ends_where_ph_vanishes():
    """alpha = 0.8 with step halving down to MIN_STEP: ph -> 0 at the end."""
    above = breakup.profile("linear", 0.8, d_hi=0.0475, d_lo=0.04, step=0.0025)
    assert above.broken and not above.complete
    assert above.ph[-1] < 0.01 and np.all(np.diff(above.ph) < 0)


def test_binding_end_is_the_rs_equilibrium():
    """Just below d_max the dense saddle is theory I's: ph -> 0, phi -> s(alpha),
    Sigma -> 0 (from below), q1 -> q."""
    alpha = 0.6
    d_max = de.binding_end("sign", 1, alpha)
    s = rs_entropy("sign", 1, alpha).value
    start = None
    for d in (d_max - 0.01, d_max - 0.002):
        p = 1 - 2 * d
        sd = de.solve_saddle("linear", alpha, p, start or (p * p, 1.0))
        start = (sd.q1, sd.omega)
        sigma = de.external_entropy("linear", alpha, sd)
        assert sd.converged and sigma < 0
    assert sd.ph < 0.01 and abs(sigma) < 1e-5
    assert sd.local_entropy == pytest.approx(s, abs=1e-4)


def test_dense_rows_carry_d_zero_external(capsys):
    argv = ["theory", "local-entropy", "--activation", "sign", "--K", "1"]
    assert main([*argv, "--alpha", "0.6", "--d", "0.2", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    d_max = de.binding_end("sign", 1, 0.6)
    assert all(r["d_zero_external"] == pytest.approx(d_max) for r in rows)
    assert all(r["external_entropy"] < 0 and r["d"] < d_max for r in rows)


def test_external_zero_prefers_a_sign_change():
    rows = [
        {"d": 0.1, "external_entropy": -0.02, "converged": True},
        {"d": 0.2, "external_entropy": 0.02, "converged": True},
        {"d": 0.3, "external_entropy": math.nan, "converged": False},
    ]
    assert de.external_zero(rows, 0.4) == pytest.approx(0.15)
    assert de.external_zero(rows[:1], 0.4) == 0.4


def test_local_entropy_refuses_precision(capsys):
    argv = ["theory", "local-entropy", "--activation", "sign", "--K", "1",
            "--alpha", "0.5", "--d", "0.1", "--precision", "fast"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--precision" in err and "Traceback" not in err


def test_alpha_u_cli_keys_and_errors(capsys, monkeypatch):
    """Plumbing (the bisection itself is the slow test): an unbracketed result is
    reported as null with converged false; an invalid K (even K for sign units)
    exits 2 with one line."""
    monkeypatch.setattr(breakup, "alpha_u",
                        lambda *a, **k: breakup.BreakUp(None, None, False, None, None))
    monkeypatch.setattr(theory, "rs_capacity", lambda *a, **k: Estimate(0.8))
    argv = ["theory", "alpha-u", "--activation", "sign", "--K", "1,3,inf"]
    assert main([*argv, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["K"] for r in rows] == [1, 3, "inf"]
    assert all(set(r) == {"activation", "weights", "K", "alpha_u", "d_at_onset",
                          "stderr", "converged"} for r in rows)
    assert all(r["alpha_u"] is None and r["converged"] is False for r in rows)
    assert main(["theory", "alpha-u", "--activation", "sign", "--K", "4"]) == 2
    err = capsys.readouterr().err
    assert "K=4" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_alpha_u_of_the_perceptron_against_a_finer_scan():
    """Bisected alpha_U (~0.756) against the curve on a 5x finer grid at
    alpha_U -+ 2 tol: unbroken with a small positive minimum below, ph -> 0 at
    the branch end above; the onset d agrees with the finer grid's minimum.
    Within 0.03 of the constrained-centre anchor 0.77-0.78 (another formulation)."""
    (row,) = breakup.alpha_u_rows("sign", "binary", [1])
    a_u, d_on = row["alpha_u"], row["d_at_onset"]
    assert row["converged"] and abs(a_u - 0.775) < 0.03
    tol, fine = breakup.ALPHA_TOL, breakup.STEP / 5
    below = breakup.profile("linear", a_u - 2 * tol, step=fine)
    above = breakup.profile("linear", a_u + 2 * tol, step=fine)
    assert not below.broken and 0 < below.ph_min < 0.05
    assert above.broken and above.ph[-1] < 0.01
    assert abs(below.d_min - d_on) < 0.005


def test_finite_k_alpha_u_uses_its_window_and_needs_an_interior_minimum(monkeypatch):
    """Finite K bisects on FINITE_K_WINDOW (ReLU: RELU_FINITE_K_WINDOW; K = 1 and
    inf on the full grid); a minimum of ph on the edge of the window is not a
    resolved onset."""
    seen = {}

    def fake(activation, K, bracket, **kw):
        seen[K] = kw
        return breakup.BreakUp(None, None, False, None, None)

    monkeypatch.setattr(breakup, "alpha_u", fake)
    monkeypatch.setattr(theory, "rs_capacity", lambda *a, **k: Estimate(0.9))
    breakup.alpha_u_rows("sign", "binary", [1, 5])
    assert seen[1] == {"precision": "fast"}
    assert seen[5] == {"precision": "fast", **breakup.FINITE_K_WINDOW}
    breakup.alpha_u_rows("relu", "binary", [2])  # its onset lies below the sign window
    assert seen[2] == {"precision": "fast", **breakup.RELU_FINITE_K_WINDOW}
    assert seen[2]["d_lo"] < breakup.FINITE_K_WINDOW["d_lo"]
    d = np.array([0.1, 0.09, 0.08])
    inner = breakup.Profile(0.7, d, np.array([0.3, 0.2, 0.25]), d, True, 0.2, 0.09)
    edge = breakup.Profile(0.7, d, np.array([0.3, 0.25, 0.2]), d, True, 0.2, 0.08)
    assert inner.interior and not edge.interior


def test_alpha_u_cli_bracket(capsys, monkeypatch):
    """--bracket LO,HI is passed as the loads to bisect between; a bad one exits 2."""
    seen = []

    def fake(activation, K, bracket, **kw):
        seen.append(bracket)
        return breakup.BreakUp(None, None, False, None, None)

    monkeypatch.setattr(breakup, "alpha_u", fake)
    argv = ["theory", "alpha-u", "--activation", "sign", "--K", "5", "--format", "json"]
    assert main([*argv, "--bracket", "0.735,0.75"]) == 0
    assert seen == [(0.735, 0.75)] and json.loads(capsys.readouterr().out)[0]["K"] == 5
    assert main([*argv, "--bracket", "0.75,0.7"]) == 2
    assert "bracket" in capsys.readouterr().err


@pytest.mark.slow
def test_relu_k2_profiles_bracket_its_break_up():
    """ReLU K = 2, "fast" points (alpha_c = 0.575, bisected alpha_U = 0.523 with
    d_at_onset 0.020, docs/local_entropy.md §8): at 0.515 (1.5 % below) the profile
    to D_LO is complete with an interior minimum of ph near d = 0.02 (positive), and
    dphi/dd = 2 ph there too; 0.53 (1.3 % above) breaks before D_LO. ~1 minute."""
    from relu_landscape.theory import dense_finite_k as dk

    term = dk.DenseTerm("relu", dk.points(2, "fast"))
    window = {k: v for k, v in breakup.RELU_FINITE_K_WINDOW.items() if k != "tol"}
    below = breakup.profile(term, 0.515, **window)
    assert below.complete and not below.broken and below.interior
    assert 0 < below.ph_min < 0.1 and 0.015 < below.d_min < 0.03
    slope = (below.local_entropy[0] - below.local_entropy[2]) / (below.d[0] - below.d[2])
    assert slope == pytest.approx(2 * below.ph[1], rel=5e-3)
    above = breakup.profile(term, 0.53, **window)
    assert above.broken


def _profile(alpha, ph_min, batches=None, complete=True):
    d = np.array([0.06, 0.055, 0.05])
    ph = np.array([ph_min + 0.05, ph_min, ph_min + 0.02])
    return breakup.Profile(alpha, d, ph, d, complete, ph_min, 0.055, batches)


def test_ph_min_stderr_and_alpha_u_stderr_closed_forms():
    """Batches G_r(d) = G(d) + c_r d: each batch moves ph by alpha (c_r - mean c) / 2,
    so stderr(ph_min) = alpha std(c) / (2 sqrt(R)); alpha_u's stderr divides it by
    the slope of min ph in alpha (here -2 through three loads) and adds the
    bisection's resolution (half-bracket / sqrt 3) in quadrature. Quadrature
    profiles (no batches) have the resolution alone."""
    c = np.array([0.3, -0.1, 0.2, -0.4, 0.0, 0.1, 0.25, -0.2])
    d = np.array([0.06, 0.055, 0.05])
    batches = np.array([1.0, 2.0, 3.0])[:, None] + d[:, None] * c
    below = _profile(0.7, 0.02, batches)
    se = breakup.ph_min_stderr(below)
    assert se == pytest.approx(0.7 * c.std(ddof=1) / (2 * math.sqrt(8)), rel=1e-12)
    assert breakup.ph_min_stderr(_profile(0.7, 0.02)) is None
    fits = (_profile(0.68, 0.06), below, _profile(0.72, -0.02))
    above = _profile(0.71, 0.0, complete=False)
    found = breakup.BreakUp(0.705, 0.055, True, below, above, (*fits, above))
    resolution = 0.005 / math.sqrt(3)
    assert found.stderr == pytest.approx(math.hypot(resolution, se / 2.0), rel=1e-9)
    exact = breakup.BreakUp(0.705, 0.055, True, _profile(0.7, 0.02), above)
    assert exact.stderr == pytest.approx(resolution)
    assert breakup.BreakUp(None, None, False, below, above).stderr is None


@pytest.mark.slow
def test_ph_min_stderr_against_one_saddle_per_batch():
    """Sign K = 3, alpha = 0.74 (below alpha_U = 0.770), "fast" points: the profile
    solved on each QMC batch alone has ph at the pooled grid minimum within a
    quarter of the batches' spread of the linear-response prediction ph + move_r
    (second order in the batch deviations; observed within 0.11 of it, correlation
    0.998), and the per-batch minima's std / sqrt(R) is within 40 % of
    ph_min_stderr (observed 0.0039 against 0.0034: the batch minima also move in
    d). ~90 s."""
    from relu_landscape.theory import dense_finite_k as dk
    from relu_landscape.theory.gauss import GaussPoints

    pts = dk.points(3, "fast")
    window = {"d_hi": 0.075, "d_lo": 0.035, "step": 0.005}
    full = breakup.profile(dk.DenseTerm("sign", pts), 0.74, **window)
    assert full.interior
    k = int(np.argmin(full.ph))
    dev = 0.74 * (full.batches - full.batches.mean(axis=1, keepdims=True))
    moves = 0.5 * np.gradient(dev[k - 1 : k + 2], full.d[k - 1 : k + 2], axis=0)[1]
    at_k, minima = [], []
    for r in range(pts.z.shape[0]):
        one = GaussPoints(pts.z[r : r + 1], pts.w, False)
        alone = breakup.profile(dk.DenseTerm("sign", one), 0.74, **window)
        at_k.append(alone.ph[np.flatnonzero(np.isclose(alone.d, full.d[k]))[0]])
        minima.append(alone.ph_min)
    at_k = np.array(at_k)
    assert np.max(np.abs(at_k - full.ph[k] - moves)) < 0.25 * at_k.std()
    direct = np.std(minima, ddof=1) / math.sqrt(len(minima))
    assert direct == pytest.approx(breakup.ph_min_stderr(full), rel=0.4)
