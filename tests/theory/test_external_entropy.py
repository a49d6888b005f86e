"""External entropy (complexity) of the dense regions, y -> infinity
(relu_landscape.theory.dense), docs/local_entropy.md §5.

Independent number: the finite-y free entropy ln Z(y) / (N y) of the binary
perceptron evaluated directly at fixed scaled order parameters (the eta averages
as brute-force integrals on a fine grid, no Laplace approximation), whose 1/y
coefficient is the complexity Sigma: y (Phi_y - phi_inf) -> Sigma, extrapolated
in 1/y. Grid integrals converge spectrally; the tolerance is the O(1/y^2)
remainder after extrapolation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from relu_landscape.theory import dense as de
from relu_landscape.theory import dense_local_entropy_curve
from relu_landscape.theory.gauss import hermite_1d

# scaled order parameters (q1, omega, ph, q0h, delta) of a generic point, p = 0.8
POINT = (0.7, 0.9, 0.6, 0.8, 1.2)
ALPHA, P = 0.5, 0.8


def log_mean_exp_y(fn, centre: np.ndarray, spread: float, y: float) -> np.ndarray:
    """(1/y) ln E_eta exp(y fn(centre + spread eta / sqrt(y))) on an eta grid."""
    eta = np.linspace(-4.0 * math.sqrt(y), 4.0 * math.sqrt(y), 40001)
    log_w = -0.5 * eta**2 - 0.5 * math.log(2 * math.pi) + math.log(eta[1] - eta[0])
    vals = y * fn(centre[:, None] + spread * eta[None, :] / math.sqrt(y)) + log_w
    return special.logsumexp(vals, axis=1) / y


def finite_y(y: float) -> float:
    """ln Z(y) / (N y) of the K = 1 model at POINT (q1h = q0h + delta/y,
    q0 = q1 - omega/y), by direct integration."""
    q1, omega, ph, q0h, delta = POINT
    conj = (
        -ph * P
        - 0.5 * (delta * q1 + q0h * omega)
        - 0.5 * q0h * (1 - q1)
        - 0.5 * delta * (1 - q1) / y
    )
    # the sum over the centre X makes the entropic integrand even in zeta with a
    # kink at 0: Gauss-Legendre on the half-line (Gauss-Hermite would miss the kink)
    half, w_half = de._half_line()
    zeta = math.sqrt(q0h) * half

    def log_cosh2(u):
        return np.logaddexp(u, -u)

    per_x = [
        log_mean_exp_y(log_cosh2, zeta + ph * x, math.sqrt(delta), y) for x in (1, -1)
    ]
    entropic = float(w_half @ (np.logaddexp(y * per_x[0], y * per_x[1]) / y))
    z, w = hermite_1d(64)
    q0 = q1 - omega / y
    sigma = math.sqrt(1 - q1)

    def log_phi(h):
        return special.log_ndtr(h / sigma)

    shifted = log_mean_exp_y(log_phi, math.sqrt(q0) * z, math.sqrt(omega), y)
    energetic = float(w @ shifted)
    return conj + entropic + ALPHA * energetic


def test_complexity_is_the_1_over_y_coefficient_of_the_free_entropy():
    q1, omega, ph, q0h, delta = POINT
    phi_inf = de.free_entropy("linear", ALPHA, P, q1, omega, ph, q0h, delta)
    sigma = de.entropic_external(q0h, delta, ph, q1) + ALPHA * de.energetic_external(
        "linear", q1, omega
    )
    coeff = {y: y * (finite_y(y) - phi_inf) for y in (200.0, 400.0)}
    extrapolated = 2 * coeff[400.0] - coeff[200.0]  # removes the O(1/y) remainder
    assert abs(coeff[400.0] - coeff[200.0]) < 0.05  # the expansion is in 1/y
    assert extrapolated == pytest.approx(sigma, abs=2e-3)


def test_rows_report_the_external_entropy():
    (row,) = dense_local_entropy_curve("sign", 1, 0.5, [0.1])
    assert row["converged"] and math.isfinite(row["external_entropy"])
    sd = de.solve_saddle("linear", 0.5, 0.8, (row["q1"], row["omega"]))
    assert row["external_entropy"] == pytest.approx(
        de.external_entropy("linear", 0.5, sd), abs=1e-8
    )


def test_external_stderr_is_written_to_parquet_and_json(tmp_path, capsys):
    """`theory local-entropy --out FILE` carries external_stderr: 0 for the quadrature
    perceptron; the JSON rows have it too; rows without it (Franz-Parisi) get null."""
    import json

    import polars as pl

    from relu_landscape import store
    from relu_landscape.cli import main

    args = ["--activation", "sign", "--K", "1", "--alpha", "0.5", "--d", "0.1,0.05"]
    dense_file = tmp_path / "dense.parquet"
    assert main(["theory", "local-entropy", *args, "--format", "json",
                 "--out", str(dense_file)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["external_stderr"] for r in rows] == [0.0, 0.0]
    frame = pl.read_parquet(dense_file)
    assert frame["external_stderr"].to_list() == [0.0, 0.0]
    assert frame["external_entropy"].to_list() == pytest.approx(
        [r["external_entropy"] for r in rows])
    without = frame.drop("external_stderr").with_columns(kind=pl.lit("franz_parisi"))
    store.write_file(tmp_path / "fp.parquet", "local_entropy_theory", without.to_arrow())
    assert pl.read_parquet(tmp_path / "fp.parquet")["external_stderr"].null_count() == 2
