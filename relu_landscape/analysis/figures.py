"""Figures of the report (matplotlib, Agg backend): one function per figure, one style.

Each function takes analysis frames and returns a matplotlib Figure; ``save`` writes
a PNG and closes it. Axes carry units, error bars are 95% intervals (Wilson for
P(solved), those of ``stats.alpha_50`` for thresholds) or one standard error
(probe curves, as labelled).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from relu_landscape.analysis.geometry import (  # noqa: E402
    Curve,
    entropy_bound,
    entropy_limits,
)

STYLE = {
    "figure.dpi": 110,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 9,
    "axes.titlesize": 10,
}
COLORS = {"sign": "tab:blue", "relu": "tab:red"}
POINTS = {"marker": "o", "ms": 3, "capsize": 2}
"""Measured points with error bars, in every figure."""
PANELS = [
    ("sign", "binary"),
    ("sign", "continuous"),
    ("relu", "binary"),
    ("relu", "continuous"),
]


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG to ``path`` and release it."""
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def _grid(rows: int, cols: int, width: float = 5.0, height: float = 3.6):
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            rows,
            cols,
            figsize=(width * cols, height * rows),
            squeeze=False,
            layout="constrained",
        )
    return fig, axes.ravel()


def _label(key: dict) -> str:
    return ", ".join(f"{k}={key[k]}" for k in ("K", "N", "solver", "alpha") if k in key)


def plot_solved_fraction(cells: pl.DataFrame, theory: pl.DataFrame) -> Figure:
    """P(solved) versus alpha, one panel per (activation, weights), Wilson error bars.

    A dotted vertical line of the same colour marks the RS capacity of each K. Where
    every instance of a cell was decided exactly (``p_solvable``: binary weights at
    small N), the exact P(solvable) is drawn dashed in the same colour: the gap to
    P(solved) is the solver's, not the network's.
    """
    fig, axes = _grid(2, 2)
    rs = theory.filter(pl.col("level") == "RS")
    for ax, (act, wts) in zip(axes, PANELS, strict=True):
        ax.set(
            title=f"{act} units, {wts} weights",
            xlabel="alpha = P/N (patterns per weight)",
            ylabel="P(solved)",
            ylim=(-0.05, 1.05),
        )
        panel = cells.filter((pl.col("activation") == act) & (pl.col("weights") == wts))
        for i, ((K, N, solver), g) in enumerate(
            panel.group_by(["K", "N", "solver"], maintain_order=True)
        ):
            color = f"C{i}"
            p = g["p_solved"].to_numpy()
            # clip: Wilson bounds at p = 0 or 1 differ from p by rounding only
            err = np.clip(
                np.stack([p - g["p_low"].to_numpy(), g["p_high"].to_numpy() - p]),
                0,
                None,
            )
            ax.errorbar(
                g["alpha"],
                p,
                yerr=err,
                **POINTS,
                color=color,
                label=_label({"K": K, "N": N, "solver": solver}),
            )
            exact = g.filter(pl.col("p_solvable").is_not_null())
            if exact.height:
                ax.plot(exact["alpha"], exact["p_solvable"], ls="--", marker="s", ms=3,
                        color=color, label=f"K={K}, N={N}: exact P(solvable)")
            ac = rs.filter(
                (pl.col("activation") == act)
                & (pl.col("weights") == wts)
                & (pl.col("K") == K)
            )["alpha_c"]
            if ac.len() and np.isfinite(ac[0]):
                ax.axvline(ac[0], color=color, ls=":", lw=1)
        if panel.height:
            ax.legend(title="dotted: RS alpha_c", fontsize=7, title_fontsize=7)
        else:
            ax.text(0.5, 0.5, "not in this scan", ha="center", transform=ax.transAxes)
    return fig


def plot_capacity_vs_K(joined: pl.DataFrame, theory: pl.DataFrame) -> Figure:
    """alpha_c versus K: RS theory curves and K = infinity asymptotes, alpha_50 on top.

    One panel per weight type; theory lines per activation, dashed horizontal lines
    for K = infinity (RS) and dotted ones for 1RSB; measured alpha_50 with its 95%
    interval as points (one marker shape per N and solver).
    """
    fig, axes = _grid(1, 2, width=5.5, height=4.0)
    for ax, wts in zip(axes, ("binary", "continuous"), strict=True):
        ax.set(
            title=f"{wts} weights",
            xlabel="K (hidden units)",
            ylabel="capacity alpha (patterns per weight)",
        )
        th = theory.filter(pl.col("weights") == wts)
        for act, color in COLORS.items():
            finite = th.filter(
                (pl.col("activation") == act)
                & pl.col("K").is_not_null()
                & (pl.col("level") == "RS")
            ).sort("K")
            ax.errorbar(
                finite["K"],
                finite["alpha_c"],
                yerr=finite["stderr"],
                color=color,
                marker=".",
                label=f"{act}: RS theory",
            )
            for level, ls in (("RS", "--"), ("1RSB", ":")):
                wide = th.filter(
                    (pl.col("activation") == act)
                    & pl.col("K").is_null()
                    & (pl.col("level") == level)
                )["alpha_c"]
                if wide.len() and np.isfinite(wide[0]):
                    ax.axhline(
                        wide[0],
                        color=color,
                        ls=ls,
                        lw=1,
                        label=f"{act}: {level}, K = inf ({wide[0]:.3f})",
                    )
            _thresholds(
                ax,
                joined.filter(
                    (pl.col("weights") == wts) & (pl.col("activation") == act)
                ),
                color,
            )
        ax.legend(loc="best", fontsize=7)
    return fig


def _thresholds(ax, rows: pl.DataFrame, color: str) -> None:
    markers = "osD^v<>"
    for i, ((N, solver), g) in enumerate(
        rows.group_by(["N", "solver"], maintain_order=True)
    ):
        g = g.filter(pl.col("alpha_50").is_finite())
        if not g.height:
            continue
        a = g["alpha_50"].to_numpy()
        # Intervals are clipped at 0 and at 2 alpha_50: a flat fit cannot hide the plot.
        low = np.clip(np.nan_to_num(g["low"].to_numpy(), nan=a), 0, a)
        high = np.clip(np.nan_to_num(g["high"].to_numpy(), nan=a), a, 2 * a)
        ax.errorbar(
            g["K"],
            a,
            yerr=np.stack([a - low, high - a]),
            ls="none",
            marker=markers[i % len(markers)],
            mfc="white",
            color=color,
            capsize=3,
            label=f"alpha_50 (N={N}, {solver})",
        )


def plot_finite_size(thr: pl.DataFrame, trend: pl.DataFrame) -> Figure:
    """alpha_50 (95% intervals) versus N^-power for every group of ``trend``
    (``capacity.finite_size_trend``), with the fitted line and alpha_50 at N = inf
    (its 95% interval: 1.96 stderr) at N^-power = 0."""
    fig, axes = _grid(1, 1, width=6.0, height=4.0)
    ax = axes[0]
    keys = ["activation", "weights", "K", "solver"]
    powers = sorted(set(trend["power"].to_list()))
    ax.set(
        xlabel=" / ".join(f"N^-{p:g}" for p in powers) + " (N = number of weights)",
        ylabel="alpha_50 (patterns per weight)",
        title="finite-size trend of the algorithmic threshold",
    )
    for i, fit in enumerate(trend.iter_rows(named=True)):
        color = f"C{i % 10}"
        g = thr.filter(
            *(pl.col(k) == fit[k] for k in keys), pl.col("alpha_50").is_finite()
        ).sort("N")
        a = g["alpha_50"].to_numpy()
        low = np.nan_to_num(g["low"].to_numpy(), nan=a)
        high = np.nan_to_num(g["high"].to_numpy(), nan=a)
        x = g["N"].to_numpy().astype(float) ** -fit["power"]
        label = " ".join(str(fit[k]) for k in keys)
        ax.errorbar(x, a, yerr=np.stack([a - low, high - a]), marker="o", ls="none",
                    capsize=2, color=color, label=label)
        line = np.linspace(0, x.max(), 50)
        ax.plot(line, fit["alpha_50_inf"] + fit["slope"] * line, color=color, lw=1)
        ax.errorbar([0], [fit["alpha_50_inf"]], yerr=[[1.96 * fit["stderr"]]],
                    marker="s", mfc="white", capsize=3, color=color,
                    label=f"{label}: N = inf, {fit['alpha_50_inf']:.3f} "
                    f"+- {1.96 * fit['stderr']:.3f} (95%)")
    ax.set_xlim(left=-0.005 * ax.get_xlim()[1])
    ax.legend(fontsize=7)
    return fig


def plot_probe_curves(rows: pl.DataFrame, curve: Curve, compared: str = "") -> Figure:
    """``curve.y`` against ``curve.x``, one panel per weight type, ReLU against sign.

    ``rows`` come from ``geometry.compare`` (a ``load`` column) or
    ``geometry.probe_curve``;
    ``compared`` says how they were picked (equal alpha or equal load) and goes in the
    titles. Error bars are one standard error across solutions. Local-entropy panels
    also draw the bound -d ln d - (1-d) ln(1-d).
    """
    fig, axes = _grid(1, 2, width=5.5, height=4.0)
    for ax, wts in zip(axes, ("binary", "continuous"), strict=True):
        title = f"{wts} weights" + (f", {compared}" if compared else "")
        ax.set(title=title, xlabel=curve.xlabel, ylabel=curve.ylabel)
        panel = rows.filter(pl.col("weights") == wts)
        for i, (key, g) in enumerate(
            panel.group_by(
                ["activation", "K", "N", "solver", "alpha"], maintain_order=True
            )
        ):
            act, K, N, solver, alpha = key
            load = (
                f", alpha/alpha_c={g['load'][0]:.2f}"
                if "load" in g.columns and g["load"][0] is not None
                else ""
            )
            ax.errorbar(
                g[curve.x],
                g["value"],
                yerr=g["stderr"],
                **POINTS,
                color=COLORS[act],
                alpha=1.0 - 0.25 * (i % 3),
                label=f"{act} {_label({'K': K, 'N': N, 'solver': solver})}, "
                f"alpha={alpha}{load}",
            )
        if curve.y == "local_entropy" and panel.height:
            d = np.linspace(0, max(panel[curve.x].max(), 1e-3), 100)
            ax.plot(d, entropy_bound(d), "k--", lw=1, label="bound: all vectors at d")
        if panel.height:
            ax.legend(fontsize=7)
        else:
            ax.text(
                0.5,
                0.5,
                "no rows for these weights",
                ha="center",
                transform=ax.transAxes,
            )
    return fig


THEORY_STYLE = {
    "franz_parisi": ("tab:green", "--", "Franz-Parisi (typical solution)"),
    "dense": ("tab:purple", "-", "dense regions (y -> inf)"),
}


def theory_label(K) -> str:
    """How a theory curve names its K: "K = inf theory" or "K = 4 theory"."""
    return "K = inf theory" if K is None else f"K = {K} theory"


def plot_local_entropy(
    rows: pl.DataFrame, theory: pl.DataFrame, compared: str = ""
) -> Figure:
    """Sampled local entropy (binary weights) beside theory, a panel per activation, K.

    ``rows``: ``geometry.compare`` rows of the local_entropy curve (columns d, D, draws,
    N, value, stderr); ``theory``: ``geometry.local_entropy_theory`` rows. Each panel
    shows the sampled curves (one standard error), the Franz-Parisi and dense-region
    theory at the same alpha (labelled with the theory's K, so K = inf theory is
    marked as such beside finite-K data), the bound B(d) of N = inf, and per N the
    finite-N ceiling (1/N) ln C(N, D) and the sampling floor, ln(draws)/N below it.
    """
    rows = rows.filter(pl.col("weights") == "binary")
    cells = (
        rows.select("activation", "K")
        .unique()
        .sort(pl.col("activation") == "relu", "K")
    )
    cols = max(1, min(3, cells.height))
    fig, axes = _grid(max(1, -(-cells.height // cols)), cols, width=5.0, height=3.8)
    for ax in axes[cells.height :]:
        ax.set_axis_off()
    if not cells.height:
        axes[0].set_axis_on()
        axes[0].text(
            0.5, 0.5, "no binary-weight rows", ha="center", transform=axes[0].transAxes
        )
    for ax, (act, K) in zip(axes, cells.iter_rows(), strict=False):
        panel = rows.filter((pl.col("activation") == act) & (pl.col("K") == K))
        alphas = sorted(panel["alpha"].unique().to_list())
        ax.set(
            title=f"{act} units, K={K}, alpha={', '.join(map(str, alphas))}"
            + (f"\n{compared}" if compared else ""),
            xlabel="normalised Hamming distance d = D/N",
            ylabel="local entropy (1/N) ln #solutions (nats)",
        )
        for i, ((N, solver, alpha, draws), g) in enumerate(
            panel.sort("d").group_by(
                ["N", "solver", "alpha", "draws"], maintain_order=True
            )
        ):
            ax.errorbar(
                g["d"],
                g["value"],
                yerr=g["stderr"],
                **POINTS,
                color=COLORS[act],
                alpha=1.0 - 0.3 * (i % 3),
                label=f"sampled N={N}, {solver}, alpha={alpha}, {draws} draws",
            )
            ceiling, floor = entropy_limits(N, g["D"].to_numpy(), draws)
            ax.plot(
                g["d"],
                ceiling,
                color="0.4",
                lw=1,
                marker="_",
                label=f"ceiling (1/N) ln C(N, D), N={N}",
            )
            ax.plot(
                g["d"],
                floor,
                color="0.4",
                lw=1,
                ls="-.",
                label=f"sampling floor: ceiling - ln({draws})/N",
            )
        th = theory.filter((pl.col("activation") == act) & (pl.col("K") == K))
        for (kind, tK, alpha), g in th.sort("d").group_by(
            ["kind", "theory_K", "alpha"], maintain_order=True
        ):
            color, ls, name = THEORY_STYLE[kind]
            ax.plot(
                g["d"],
                g["local_entropy"],
                color=color,
                ls=ls,
                marker=".",
                label=f"{name}, {theory_label(tK)}, alpha={alpha}",
            )
        d = np.linspace(1e-4, max(float(panel["d"].max() or 0.0) * 1.1, 1e-3), 100)
        ax.plot(
            d, entropy_bound(d), "k:", lw=1, label="B(d): all vectors at d, N = inf"
        )
        ax.legend(fontsize=6)
    return fig


def plot_typical_vs_dense(panels: dict[str, tuple[pl.DataFrame, Curve]], compared: str) -> Figure:
    """Paired difference dense - plain of each probe (rows) by weight type (columns).

    ``panels``: probe name -> (``geometry.paired_curve`` rows, its Curve). A point is
    the mean over instances solved by both solvers, the bar one standard error of the
    paired difference; below zero the dense-seeking solver's solutions have the lower
    value (for local energy: flatter), above zero the higher (for robustness: more
    robust).
    """
    fig, axes = _grid(len(panels), 2, width=5.5, height=3.8)
    for r, (name, (rows, curve)) in enumerate(panels.items()):
        for ax, wts in zip(axes[2 * r : 2 * r + 2], ("binary", "continuous"), strict=True):
            ax.set(title=f"{name}, {wts} weights", xlabel=curve.xlabel,
                   ylabel=f"dense - plain: {curve.y.replace('_', ' ')}")
            ax.axhline(0.0, color="k", lw=0.8)
            panel = rows.filter(pl.col("weights") == wts)
            for i, (key, g) in enumerate(panel.group_by(
                    ["activation", "K", "N", "solver", "alpha"], maintain_order=True)):
                act, K, N, pair, alpha = key
                ax.errorbar(g[curve.x], g["diff"], yerr=g["diff_stderr"], **POINTS,
                            color=COLORS[act], alpha=1.0 - 0.25 * (i % 3),
                            label=f"{act} K={K}, N={N}, {pair}, alpha={alpha}")
            if panel.height:
                ax.legend(fontsize=7)
            else:
                ax.text(0.5, 0.5, "no instance solved by both kinds of solver",
                        ha="center", transform=ax.transAxes)
    fig.suptitle(f"typical (plain solver) against dense (replicated), {compared}")
    return fig
