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
from matplotlib.lines import Line2D  # noqa: E402

from relu_landscape.analysis.capacity import GROUP  # noqa: E402
from relu_landscape.analysis.geometry import (  # noqa: E402
    Curve,
    entropy_bound,
    entropy_limits,
)
from relu_landscape.params import DENSE_SEEKING  # noqa: E402

STYLE = {
    "figure.dpi": 110,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 9,
    "axes.titlesize": 10,
}
ACTIVATION_COLORS = {
    "sign": "tab:blue",
    "relu": "tab:red",
    "tanh": "tab:green",
    "erf": "tab:purple",
    "gelu": "tab:orange",
    "quadratic": "tab:brown",
    "linear": "tab:gray",
}
"""One colour per registered activation (relu_landscape.activations)."""
COLORS = {a: ACTIVATION_COLORS[a] for a in ("sign", "relu")}
"""The paper's two activations, which the capacity figures at kappa = 0 draw."""
POINTS = {"marker": "o", "ms": 3, "capsize": 2}
"""Measured points with error bars, in every figure."""
MARKERS = "osD^v<>"
"""Marker shapes that tell apart the series of one colour."""
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


SOLVER_STYLES = (
    {"ls": "-"},
    {"ls": "--", "mfc": "white"},
    {"ls": ":", "mfc": "white"},
    {"ls": "-.", "mfc": "white"},
)
"""Line style and marker fill of a panel's solvers, in ``solver_order``."""
SHADES = {
    "sign": "Blues",
    "relu": "Reds",
    "tanh": "Greens",
    "erf": "Purples",
    "gelu": "Oranges",
    "quadratic": "YlOrBr",
    "linear": "Greys",
}
"""A colour map per activation: the K of one activation are shades of its colour."""


def solver_order(solvers) -> list[str]:
    """Plain solvers before dense-seeking ones (``params.DENSE_SEEKING``), then by name:
    the order of ``SOLVER_STYLES`` and the solver a probe figure shows (the first)."""
    return sorted(set(solvers), key=lambda s: (s in DENSE_SEEKING, s))


def _solver_styles(solvers) -> dict[str, dict]:
    return {
        s: SOLVER_STYLES[i % len(SOLVER_STYLES)] for i, s in enumerate(solver_order(solvers))
    }


def _k_colors(Ks) -> dict:
    """One colour per K, from light to dark in K (viridis, its pale end left out)."""
    Ks = sorted(set(Ks))
    cmap = plt.get_cmap("viridis")
    return {K: cmap(0.85 * i / max(1, len(Ks) - 1)) for i, K in enumerate(Ks)}


def _shades(rows: pl.DataFrame) -> dict:
    """(activation, K) -> a shade of the activation's colour, darker for larger K."""
    out = {}
    for (act,), g in rows.group_by(["activation"]):
        Ks = sorted(set(g["K"].to_list()))
        cmap = plt.get_cmap(SHADES[act])
        out |= {(act, K): cmap(0.5 + 0.45 * i / max(1, len(Ks) - 1)) for i, K in enumerate(Ks)}
    return out


def largest_N(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows of the largest N of each cell (``capacity.GROUP`` less N, across alpha).

    The figures other than the finite-size one draw these only: a multi-size scan would
    otherwise put a curve per N on every panel. The report's tables keep every N.
    """
    by = [k for k in GROUP if k != "N" and k in rows.columns]
    return rows.filter(pl.col("N") == pl.col("N").max().over(by))


def _legend(ax, handles: list, **kwargs) -> None:
    """A legend of proxy entries (colour = K, style = solver) and labelled extras."""
    ax.legend(handles=handles, fontsize=7, title_fontsize=7, **kwargs)


def _key_handles(colors: dict, styles: dict[str, dict], Ns: dict) -> list:
    """Legend entries: a coloured line per K (with its N) and a grey one per solver."""
    handles = [
        Line2D([], [], color=c, marker="o", ms=3, label=f"K={K}, N={Ns[K]}")
        for K, c in colors.items()
    ]
    return handles + [
        Line2D([], [], color="0.35", marker="o", ms=3, label=s, **style)
        for s, style in styles.items()
    ]


def plot_solved_fraction(cells: pl.DataFrame, theory: pl.DataFrame) -> Figure:
    """P(solved) versus alpha, one panel per (activation, weights), Wilson error bars,
    at the largest N of each K (the finite-size figure shows the trend in N).

    Colour: K; line style and marker fill: solver (``SOLVER_STYLES``). A dotted
    vertical line of the K's colour marks its RS capacity. Where every instance of a
    cell was decided exactly (``p_solvable``: binary weights at small N), the exact
    P(solvable) of the largest such N is drawn dash-dotted with squares: the gap to
    P(solved) is the solver's, not the network's.
    """
    fig, axes = _grid(2, 2)
    rs = theory.filter(pl.col("level") == "RS")
    shown = largest_N(cells)
    for ax, (act, wts) in zip(axes, PANELS, strict=True):
        ax.set(
            title=f"{act} units, {wts} weights (largest N per K)",
            xlabel="alpha = P/N (patterns per weight)",
            ylabel="P(solved)",
            ylim=(-0.05, 1.05),
        )
        here = (pl.col("activation") == act) & (pl.col("weights") == wts)
        panel = shown.filter(here).sort("alpha")
        if not panel.height:
            ax.text(0.5, 0.5, "not in this scan", ha="center", transform=ax.transAxes)
            continue
        colors, styles = _k_colors(panel["K"]), _solver_styles(panel["solver"])
        for (K, N, solver), g in panel.group_by(["K", "N", "solver"], maintain_order=True):
            p = g["p_solved"].to_numpy()
            # clip: Wilson bounds at p = 0 or 1 differ from p by rounding only
            err = np.clip(
                np.stack([p - g["p_low"].to_numpy(), g["p_high"].to_numpy() - p]), 0, None
            )
            ax.errorbar(g["alpha"], p, yerr=err, **POINTS, color=colors[K],
                        **styles[solver], label=f"K={K}, N={N}, {solver}")
        for K, color in colors.items():
            ac = rs.filter(here & (pl.col("K") == K))["alpha_c"]
            if ac.len() and np.isfinite(ac[0]):
                ax.axvline(ac[0], color=color, ls=":", lw=1)
        exact = (
            cells.filter(here & pl.col("p_solvable").is_not_null())
            .filter(pl.col("N") == pl.col("N").max().over("K"))
            .unique(["K", "N", "alpha"])
            .sort("alpha")
        )
        extra = []
        for (K, N), g in exact.group_by(["K", "N"], maintain_order=True):
            (line,) = ax.plot(g["alpha"], g["p_solvable"], ls="-.", marker="s", ms=3,
                              color=colors[K], label=f"exact P(solvable), K={K}, N={N}")
            extra.append(line)
        Ns = dict(panel.group_by("K").agg(pl.col("N").max()).iter_rows())
        _legend(ax, _key_handles(colors, styles, Ns) + extra, title="dotted: RS alpha_c")
    return fig


def plot_capacity_vs_K(joined: pl.DataFrame, theory: pl.DataFrame) -> Figure:
    """alpha_c versus K: RS theory curves and K = infinity asymptotes, alpha_50 on top.

    One panel per weight type; theory lines per activation, dashed horizontal lines
    for K = infinity (RS) and dotted ones for 1RSB; measured alpha_50 with its 95%
    interval at the largest N of each K, one marker per solver (filled: the first of
    ``solver_order``), shifted a little in K so the solvers' bars stay apart.
    """
    fig, axes = _grid(1, 2, width=5.5, height=4.0)
    for ax, wts in zip(axes, ("binary", "continuous"), strict=True):
        ax.set(
            title=f"{wts} weights",
            xlabel="K (hidden units)",
            ylabel="capacity alpha (patterns per weight)",
        )
        th = theory.filter(pl.col("weights") == wts)
        points = largest_N(joined.filter(pl.col("weights") == wts))
        order = solver_order(points["solver"])
        for act, color in COLORS.items():
            on = pl.col("activation") == act
            finite = th.filter(on & pl.col("K").is_not_null() & (pl.col("level") == "RS"))
            finite = finite.sort("K")
            ax.errorbar(finite["K"], finite["alpha_c"], yerr=finite["stderr"], color=color,
                        marker=".", label=f"{act}: RS theory")
            for level, ls in (("RS", "--"), ("1RSB", ":")):
                wide = th.filter(on & pl.col("K").is_null() & (pl.col("level") == level))
                wide = wide["alpha_c"]
                if wide.len() and np.isfinite(wide[0]):
                    ax.axhline(wide[0], color=color, ls=ls, lw=1,
                               label=f"{act}: {level}, K = inf ({wide[0]:.3f})")
            for i, solver in enumerate(order):
                g = points.filter(on & (pl.col("solver") == solver))
                g = g.filter(pl.col("alpha_50").is_finite()).sort("K")
                if not g.height:
                    continue
                a, err = _alpha_50_errors(g)
                ax.errorbar(g["K"].to_numpy() + 0.12 * (i - (len(order) - 1) / 2), a,
                            yerr=err, ls="none", marker=MARKERS[i % len(MARKERS)],
                            mfc=None if i == 0 else "white", color=color, capsize=3,
                            label=f"{act}: alpha_50, {solver} (largest N per K)")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    return fig


def plot_finite_size(thr: pl.DataFrame, trend: pl.DataFrame) -> Figure:
    """alpha_50 (95% intervals) versus N^-power, one panel per (activation, weights),
    for every fit of ``trend`` (``capacity.finite_size_trend``): the fitted line and
    alpha_50 at N = inf (its 95% interval: 1.96 stderr) at N^-power = 0. Colour: K;
    line style and marker fill: solver."""
    fig, axes = _grid(2, 2)
    powers = sorted(set(trend["power"].to_list()))
    xlabel = " / ".join(f"N^-{p:g}" for p in powers) + " (N = number of weights)"
    fit_keys = [k for k in GROUP if k != "N"]
    for ax, (act, wts) in zip(axes, PANELS, strict=True):
        ax.set(title=f"{act} units, {wts} weights: finite-size trend", xlabel=xlabel,
               ylabel="alpha_50 (patterns per weight)")
        fits = trend.filter((pl.col("activation") == act) & (pl.col("weights") == wts))
        if not fits.height:
            ax.text(0.5, 0.5, "fewer than 3 sizes with a finite alpha_50",
                    ha="center", transform=ax.transAxes)
            continue
        colors, styles = _k_colors(fits["K"]), _solver_styles(fits["solver"])
        handles = []
        for fit in fits.sort("K").iter_rows(named=True):
            g = thr.filter(
                *(pl.col(k) == fit[k] for k in fit_keys), pl.col("alpha_50").is_finite()
            ).sort("N")
            a = g["alpha_50"].to_numpy()
            low = np.nan_to_num(g["low"].to_numpy(), nan=a)
            high = np.nan_to_num(g["high"].to_numpy(), nan=a)
            x = g["N"].to_numpy().astype(float) ** -fit["power"]
            color, style = colors[fit["K"]], styles[fit["solver"]]
            margin = f", kappa={fit['kappa']:g}" if fit.get("kappa") else ""
            label = f"K={fit['K']}, {fit['solver']}{margin}"
            ax.errorbar(x, a, yerr=np.stack([a - low, high - a]), marker="o", ms=4,
                        ls="none", capsize=2, color=color, mfc=style.get("mfc"),
                        label=f"{label}: alpha_50")
            line = np.linspace(0, x.max(), 50)
            ax.plot(line, fit["alpha_50_inf"] + fit["slope"] * line, color=color, lw=1,
                    ls=style["ls"])
            handles.append(ax.errorbar(
                [0], [fit["alpha_50_inf"]], yerr=[[1.96 * fit["stderr"]]], marker="s",
                mfc="white", capsize=3, color=color, ls="none",
                label=f"{label}: N = inf, {fit['alpha_50_inf']:.3f} "
                f"+- {1.96 * fit['stderr']:.3f} (95%)"))
        ax.set_xlim(left=-0.02 * ax.get_xlim()[1])
        ax.set_ylim(bottom=max(0.0, ax.get_ylim()[0]))  # a 95% bar may reach below 0
        _legend(ax, handles, title="line: fit; square: N = inf")
    return fig


def plot_probe_curves(rows: pl.DataFrame, curve: Curve, compared: str = "") -> Figure:
    """``curve.y`` against ``curve.x``, one panel per weight type, ReLU against sign.

    ``rows`` come from ``geometry.compare`` (a ``load`` column) or
    ``geometry.probe_curve``; ``compared`` says how they were picked (equal alpha or
    equal load) and goes in the titles. Each panel draws the first solver of
    ``solver_order`` (the plain one: typical_vs_dense compares the dense-seeking one
    with it) at the largest N of each cell; colour: activation, darker for larger K.
    Error bars are one standard error across solutions.
    """
    fig, axes = _grid(1, 2, width=5.5, height=4.0)
    for ax, wts in zip(axes, ("binary", "continuous"), strict=True):
        panel = largest_N(rows.filter(pl.col("weights") == wts))
        solver = solver_order(panel["solver"])[:1]
        panel = panel.filter(pl.col("solver").is_in(solver))
        title = ", ".join([f"{wts} weights", *solver]) + (f"\n{compared}" if compared else "")
        ax.set(title=title, xlabel=curve.xlabel, ylabel=curve.ylabel)
        if not panel.height:
            ax.text(0.5, 0.5, "no rows for these weights", ha="center",
                    transform=ax.transAxes)
            continue
        shades = _shades(panel)
        groups = panel.sort("activation", "K").group_by(
            ["activation", "K", "N", "alpha"], maintain_order=True
        )
        for (act, K, N, alpha), g in groups:
            load = (
                f", alpha/alpha_c={g['load'][0]:.2f}"
                if "load" in g.columns and g["load"][0] is not None
                else ""
            )
            ax.errorbar(g[curve.x], g["value"], yerr=g["stderr"], **POINTS,
                        color=shades[(act, K)],
                        label=f"{act} K={K}, N={N}, alpha={alpha}{load}")
        ax.legend(fontsize=7)
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
    shows the sampled curves at the cell's largest N (one standard error; line style:
    solver), the Franz-Parisi and dense-region theory at the same alpha (labelled with
    the theory's K, so K = inf theory is marked as such beside finite-K data), the
    bound B(d) of N = inf, the finite-N ceiling (1/N) ln C(N, D) and the sampling
    floor, ln(draws)/N below it.
    """
    rows = largest_N(rows.filter(pl.col("weights") == "binary"))
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
        panel = rows.filter((pl.col("activation") == act) & (pl.col("K") == K)).sort("d")
        alphas = sorted(panel["alpha"].unique().to_list())
        ax.set(
            title=f"{act} units, K={K}, alpha={', '.join(map(str, alphas))}"
            + (f"\n{compared}" if compared else ""),
            xlabel="normalised Hamming distance d = D/N",
            ylabel="local entropy (1/N) ln #solutions (nats)",
        )
        styles = _solver_styles(panel["solver"])
        many = len(alphas) > 1  # else the title names the alpha
        for (N, solver, alpha, draws), g in panel.group_by(
            ["N", "solver", "alpha", "draws"], maintain_order=True
        ):
            ax.errorbar(
                g["d"],
                g["value"],
                yerr=g["stderr"],
                **POINTS,
                color=ACTIVATION_COLORS[act],
                **styles[solver],
                label=f"sampled, {solver} (N={N}, {draws} draws)"
                + (f", alpha={alpha}" if many else ""),
            )
        limits = panel.unique(["N", "draws", "D"]).sort("d")
        for (N, draws), g in limits.group_by(["N", "draws"], maintain_order=True):
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
                label=f"{name}, {theory_label(tK)}" + (f", alpha={alpha}" if many else ""),
            )
        d = np.linspace(1e-4, max(float(panel["d"].max() or 0.0) * 1.1, 1e-3), 100)
        ax.plot(
            d, entropy_bound(d), "k:", lw=1, label="B(d): all vectors at d, N = inf"
        )
        ax.legend(fontsize=6, loc="lower right")
    return fig


def plot_typical_vs_dense(panels: dict[str, tuple[pl.DataFrame, Curve]], compared: str) -> Figure:
    """Paired difference dense - plain of each probe (rows) by weight type (columns).

    ``panels``: probe name -> (``geometry.paired_curve`` rows, its Curve), drawn at the
    largest N of each cell (colour: activation, darker for larger K; report.md's table
    has every N). A point is
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
            panel = largest_N(rows.filter(pl.col("weights") == wts)).sort("activation", "K")
            shades = _shades(panel)
            for (act, K, N, pair, alpha), g in panel.group_by(
                    ["activation", "K", "N", "solver", "alpha"], maintain_order=True):
                ax.errorbar(g[curve.x], g["diff"], yerr=g["diff_stderr"], **POINTS,
                            color=shades[(act, K)],
                            label=f"{act} K={K}, N={N}, {pair}, alpha={alpha}")
            if panel.height:  # below the axes: the curves fill the panel
                ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
            else:
                ax.text(0.5, 0.5, "no instance solved by both kinds of solver",
                        ha="center", transform=ax.transAxes)
    fig.suptitle(f"typical (plain solver) against dense (replicated), {compared}")
    return fig



def _alpha_50_errors(g: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """alpha_50 and its asymmetric error bars [2, n], the interval clipped at 0 and at
    2 alpha_50 (a flat fit cannot hide the plot) and a nan bound drawn as no bar."""
    a = g["alpha_50"].to_numpy()
    low = np.clip(np.nan_to_num(g["low"].to_numpy(), nan=a), 0, a)
    high = np.clip(np.nan_to_num(g["high"].to_numpy(), nan=a), a, 2 * a)
    return a, np.stack([a - low, high - a])


def _theory_label(act: str, K) -> str:
    return f"{act}: RS theory, " + ("K = inf" if K is None else f"finite K = {K}")


def plot_capacity_vs_kappa(table: pl.DataFrame) -> Figure:
    """alpha_50 (95% interval) and RS alpha_c against the margin kappa, a panel per
    weight type.

    ``table``: ``margins.margin_table`` rows. One colour per activation; measured
    points one marker per (K, N, solver); theory at the data's finite K as lines with
    dots (solid, dash-dotted, dotted by K; labelled "finite K"), at K = inf dashed,
    both at the measured kappas (error bars: the QMC stderr where there is one).
    Theory the package refuses is absent (report.md's notes say which).
    """
    weights = [w for w in ("binary", "continuous") if w in table["weights"].to_list()]
    fig, axes = _grid(1, max(1, len(weights)), width=5.5, height=4.0)
    for ax, wts in zip(axes, weights, strict=False):
        ax.set(title=f"{wts} weights", xlabel="margin kappa (units of std(Delta))",
               ylabel="capacity alpha (patterns per weight)")
        panel = table.filter(pl.col("weights") == wts)
        for act in [a for a in ACTIVATION_COLORS if a in panel["activation"].to_list()]:
            color = ACTIVATION_COLORS[act]
            rows = panel.filter(pl.col("activation") == act).sort("kappa")
            for i, ((K, N, solver), g) in enumerate(
                    rows.group_by(["K", "N", "solver"], maintain_order=True)):
                g = g.filter(pl.col("alpha_50").is_finite())
                if g.height:
                    a, err = _alpha_50_errors(g)
                    ax.errorbar(g["kappa"], a, yerr=err,
                                **{**POINTS, "marker": MARKERS[i % len(MARKERS)]},
                                ls="none", mfc="white", color=color,
                                label=f"{act}: alpha_50 (K={K}, N={N}, {solver})")
            finite = rows.select("K", "kappa", "alpha_c", "alpha_c_stderr").unique()
            for j, ((K,), g) in enumerate(finite.filter(pl.col("alpha_c").is_not_null())
                                          .sort("K", "kappa").group_by("K", maintain_order=True)):
                ax.errorbar(g["kappa"], g["alpha_c"], yerr=g["alpha_c_stderr"], color=color,
                            marker=".", lw=1, ls=("-", "-.", ":")[j % 3],
                            label=_theory_label(act, K))
            wide = rows.select("kappa", "alpha_c_inf").unique().filter(
                pl.col("alpha_c_inf").is_not_null()).sort("kappa")
            if wide.height:
                ax.plot(wide["kappa"], wide["alpha_c_inf"], color=color, ls="--",
                        marker="x", lw=1, label=_theory_label(act, None))
        ax.legend(fontsize=6)
    return fig


def plot_capacity_by_activation(table: pl.DataFrame) -> Figure:
    """alpha_50 (95% interval) per activation beside RS theory, a panel per (kappa,
    weight type).

    ``table``: ``margins.margin_table`` rows. Activations side by side on the x axis
    (registry order); within one, a slot per (K, N, solver) in its own colour: the
    measured point and, at the same x, the RS alpha_c at that finite K (a wide bar,
    "finite K theory"); the K = inf value is a black cross at the activation's centre.
    """
    panels = table.select("kappa", "weights").unique().sort("kappa", "weights")
    cols = panels["weights"].n_unique()
    fig, axes = _grid(max(1, -(-panels.height // max(cols, 1))), max(cols, 1),
                      width=6.0, height=4.0)
    for ax, (kappa, wts) in zip(axes, panels.iter_rows(), strict=False):
        panel = table.filter((pl.col("kappa") == kappa) & (pl.col("weights") == wts))
        acts = [a for a in ACTIVATION_COLORS if a in panel["activation"].to_list()]
        ax.set(title=f"{wts} weights, kappa = {kappa:g}", xticks=range(len(acts)),
               xticklabels=acts, xlim=(-0.5, len(acts) - 0.5), xlabel="hidden activation g",
               ylabel="capacity alpha (patterns per weight)")
        slots = panel.select("K", "N", "solver").unique().sort("K", "N", "solver")
        width = 0.7 / max(slots.height, 1)
        for j, (K, N, solver) in enumerate(slots.iter_rows()):
            g = panel.filter((pl.col("K") == K) & (pl.col("N") == N)
                             & (pl.col("solver") == solver))
            x = np.array([acts.index(a) for a in g["activation"]]) + (
                j - (slots.height - 1) / 2) * width
            color = f"C{j % 10}"
            seen = g["alpha_50"].is_finite().to_numpy()
            if seen.any():
                a, err = _alpha_50_errors(g.filter(seen))
                ax.errorbar(x[seen], a, yerr=err, **POINTS, ls="none", color=color,
                            label=f"alpha_50 (K={K}, N={N}, {solver})")
            known = g["alpha_c"].is_not_null().to_numpy()
            if known.any():
                ax.plot(x[known], g["alpha_c"].to_numpy()[known], ls="none", marker="_",
                        ms=14, mew=2, color=color, label=f"RS theory, finite K = {K}")
        wide = panel.select("activation", "alpha_c_inf").unique().filter(
            pl.col("alpha_c_inf").is_not_null())
        if wide.height:
            ax.plot([acts.index(a) for a in wide["activation"]], wide["alpha_c_inf"],
                    ls="none", marker="x", color="k", label="RS theory, K = inf")
        ax.legend(fontsize=6)
    return fig
