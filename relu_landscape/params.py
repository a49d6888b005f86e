"""Hyperparameters of every solver and probe, as frozen dataclasses (torch-free).

The TOML spec's ``[solver.<weights>]`` and ``[probes.<name>]`` tables are validated
against these classes by ``config.py``: every field may be set there, every field has
a default, and field metadata gives its range (``min``/``gt``/``max``) or ``choices``.
The implementations live in ``solvers/`` and ``probes/``; they receive these objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def _f(default, **meta):
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DescentParams:
    """Surrogate-loss descent (Adam), shared by gd, clipped_sgd and their replicated forms.

    ``margin`` is in units of the output field Delta (docs/science.md §1); the hinge
    margin anneals geometrically from ``margin`` to ``margin_end`` over ``max_steps``
    (set them equal for a fixed margin, which caps the capacity descent can reach at
    that margin's Gardner capacity); the loss is the
    mean over patterns of ``relu(margin - sigma*Delta)`` (hinge) or
    ``softplus(-beta*sigma*Delta)/beta`` (cross_entropy), where Delta is computed with
    the surrogates tanh(slope*lambda) + 0.1 lambda (sign, as the straight-through
    gradient of the true sign; lambda itself for the perceptron, K = 1),
    softplus(slope*lambda)/slope (ReLU) and g itself with the registry's g' (any other
    g), the slope raised
    geometrically from 1 to ``slope_end`` over ``max_steps``. The defaults (margin 0.1,
    lr 0.01) came from a comparison at N = 200-1000 near the thresholds: a margin of
    0.5 is infeasible there and left every instance unsolved. Annealing to
    ``margin_end`` = 0.001 (ReLU: to the surrogate's floor, ``descent.relu_floor``)
    took the continuous perceptron at N = 200 from 1/12 to 9/12 solved at alpha = 1.9
    (LP: 10/12); docs/solvers.md has the measurements. With a model margin kappa
    (``grid.kappa``) the hinge targets kappa s_g plus this annealed margin.
    ``batch_fraction`` < 1 makes it SGD: each step uses a random fraction of the
    patterns. Stops at zero training errors (judged with the true activation).
    """

    loss: str = _f("hinge", choices=("hinge", "cross_entropy"))
    margin: float = _f(0.1, min=0.0)
    margin_end: float = _f(1e-3, gt=0.0)
    beta: float = _f(5.0, gt=0.0)
    lr: float = _f(0.01, gt=0.0)
    max_steps: int = _f(3000, min=1)
    slope_end: float = _f(10.0, gt=0.0)
    batch_fraction: float = _f(1.0, gt=0.0, max=1.0)


@dataclass(frozen=True)
class GDParams(DescentParams):
    """Gradient descent on the per-unit-sphere parametrisation, continuous weights."""


@dataclass(frozen=True)
class ClippedSGDParams(DescentParams):
    """Clipped / straight-through descent, binary weights: hidden h in [-1, 1], W = sign(h).

    ``init_scale``: the hidden weights start at init_scale * W0.
    """

    lr: float = _f(0.02, gt=0.0)
    init_scale: float = _f(0.5, gt=0.0, max=1.0)


@dataclass(frozen=True)
class ReplicaParams:
    """Replicas coupled to their centre (robust ensemble; docs/science.md §3).

    ``replicas`` copies start from independent random perturbations of W0 and feel
    an elastic pull ``gamma * |u_r - centre|^2 / N`` towards their mean, gamma growing
    geometrically from ``gamma_start`` to ``gamma_end``; the centre is the solution.
    """

    replicas: int = _f(5, min=2)
    gamma_start: float = _f(0.01, gt=0.0)
    gamma_end: float = _f(10.0, gt=0.0)


@dataclass(frozen=True)
class ReplicatedGDParams(ReplicaParams, GDParams):
    """``gd`` on coupled replicas; the centre is projected onto the spheres."""


@dataclass(frozen=True)
class ReplicatedClippedSGDParams(ReplicaParams, ClippedSGDParams):
    """``clipped_sgd`` on coupled replicas; the centre is the sign of the mean hidden h."""


@dataclass(frozen=True)
class AnnealParams:
    """Simulated annealing with single-weight Metropolis flips, binary weights.

    ``energy``: "errors" (number of misclassified patterns, a tie is an error) or
    "stability" (summed violation of the margins, ``model.violation``, with ``margin``
    in units of lambda for sign units and of Delta for the others; added to the model's
    margin kappa s_g). The inverse
    temperature grows geometrically from ``beta_start`` to ``beta_end`` over ``sweeps``
    sweeps of N proposals each; a chain stops at zero errors. The default energy is
    "stability": on the binary perceptron at N = 1001 (100 sweeps) it solves 4/4
    instances at alpha = 0.3, where the error count solves 0/4 even at alpha = 0.2.
    """

    sweeps: int = _f(300, min=1)
    beta_start: float = _f(0.5, gt=0.0)
    beta_end: float = _f(20.0, gt=0.0)
    energy: str = _f("stability", choices=("errors", "stability"))
    margin: float = _f(0.1, gt=0.0)


@dataclass(frozen=True)
class SBPIParams:
    """Stochastic belief-propagation-inspired rule (SBPI), binary weights.

    Baldassi, Braunstein, Brunel & Zecchina, PNAS 104, 11079 (2007), extended to the
    committee by the least-action choice of the hidden units (docs/science.md §3;
    details in ``solvers/sbpi.py``). Integer
    hidden states h (odd, |h| <= ``max_state``), W = sign(h); patterns are presented
    one at a time in a fresh random order each epoch. A wrong pattern moves every
    synapse of the chosen units by 2 sigma c_l xi; a barely right one (stability in
    (0, ``theta``], in units of the unnormalised W.xi, so integers) moves, with
    probability ``p_s``, only the synapses that already agree. Stops after an epoch
    with zero errors or ``max_epochs``. The defaults were compared with max_state 11
    to 201, theta 1 to 15 and p_s 0.03 to 0.3 on the binary perceptron at N = 501
    (docs/solvers.md, "SBPI settings"): only theta = 5 with p_s = 0.1 and
    max_state >= 31 solved any instance in 100 epochs, and 31 to 201 states tie; at
    N = 1001, 51 states and theta = 7 were no better within the statistics.
    """

    max_epochs: int = _f(500, min=1)
    max_state: int = _f(101, min=1)
    theta: int = _f(5, min=0)
    p_s: float = _f(0.1, min=0.0, max=1.0)


@dataclass(frozen=True)
class BPParams:
    """Reinforced belief propagation (AMP form), binary weights, every variant
    (``solvers/bp.py``). ``rate``: the reinforcement gamma_t = 1 - exp(-rate t) of the
    external field along the marginals; ``damping``: the weight of the old
    magnetisations in each update; ``init_scale``: the magnetisations start at
    init_scale W0; ``quadrature``: Gauss-Hermite nodes of the ReLU output factor.
    Stops at the first sweep whose sign(H) has zero errors (at the margin kappa, which
    the output factor also integrates), or after ``max_steps``.
    """

    max_steps: int = _f(2000, min=1)
    rate: float = _f(0.003, gt=0.0)
    damping: float = _f(0.5, min=0.0, max=0.99)
    init_scale: float = _f(0.1, min=0.0, max=1.0)
    quadrature: int = _f(16, min=2, max=200)


@dataclass(frozen=True)
class LPParams:
    """Exact for the perceptron (K = 1, continuous weights): linear programming (scipy
    HiGHS) at kappa = 0, non-negative least squares for the linear unit's margin
    kappa > 0 (``solvers/lp.py``). No parameters: it decides solvability exactly."""


# name -> (parameter class, weight types it trains)
SOLVER_PARAMS: dict[str, tuple[type, tuple[str, ...]]] = {
    "gd": (GDParams, ("continuous",)),
    "replicated_gd": (ReplicatedGDParams, ("continuous",)),
    "anneal": (AnnealParams, ("binary",)),
    "clipped_sgd": (ClippedSGDParams, ("binary",)),
    "replicated_clipped_sgd": (ReplicatedClippedSGDParams, ("binary",)),
    "sbpi": (SBPIParams, ("binary",)),
    "lp": (LPParams, ("continuous",)),
    "bp": (BPParams, ("binary",)),
}

DENSE_SEEKING = frozenset({"replicated_gd", "replicated_clipped_sgd"})
"""Solvers whose objective seeks dense regions of solutions (replicated); the report
compares their solutions with the other solvers' on the same instances."""

# solvers that train only some (activation, K): name -> the variants they accept
# (K None: every valid K). Their update rules are written for these units (BP's output
# channels, SBPI's least-action choice); the others use only g, g' and the margin.
SOLVER_VARIANTS: dict[str, tuple[tuple[str, int | None], ...]] = {
    "lp": (("sign", 1), ("linear", 1)),
    "bp": (("sign", None), ("relu", None)),
    "sbpi": (("sign", None), ("relu", None)),
}

# solvers that train only margins kappa >= a bound: name -> the bound. lp: at kappa < 0
# the sphere |w|^2 = N is an active, non-convex constraint that no LP decides
# (solvers/lp.py); every other solver trains any kappa (bp: the vote or the threshold
# its output factor integrates moves with it)
SOLVER_MIN_KAPPA: dict[str, float] = {"lp": 0.0}


def solver_trains(name: str, activation: str, K: int, kappa: float = 0.0) -> bool:
    """Whether solver ``name`` trains the (activation, K) variant at margin kappa
    (weights aside)."""
    if kappa < SOLVER_MIN_KAPPA.get(name, -math.inf):
        return False
    variants = SOLVER_VARIANTS.get(name)
    return variants is None or (activation, K) in variants or (activation, None) in variants


def variants_text(name: str) -> str:
    """What solver ``name`` trains, in words: "sign K = 1, linear K = 1 (kappa >= 0)"."""
    parts = [a if K is None else f"{a} K = {K}" for a, K in SOLVER_VARIANTS.get(name, ())]
    text = ", ".join(parts) or "every activation"
    bound = SOLVER_MIN_KAPPA.get(name)
    return text + (f" (kappa >= {bound:g})" if bound is not None else "")


@dataclass(frozen=True)
class LocalEnergyParams:
    """Local energy under weight perturbations (docs/science.md §2), ``draws`` per setting.

    Continuous weights: W_li -> W_li (1 + s z_li), z ~ N(0, 1), each unit renormalised,
    for ``points`` noise scales s evenly spaced in [0, s_max]. Binary weights: flip
    D = round(d N) distinct weights, for ``points`` values of d evenly spaced in
    [0, d_max].
    """

    draws: int = _f(64, min=2, max=10_000)
    points: int = _f(9, min=2)
    s_max: float = _f(2.0, gt=0.0)
    d_max: float = _f(0.5, gt=0.0, max=1.0)


@dataclass(frozen=True)
class RobustnessParams:
    """Fraction of training patterns still correct under input noise (docs/science.md §2).

    +-1 inputs: each bit flipped with probability p; Gaussian inputs: noise of std p;
    ``points`` values of p evenly spaced in [0, p_max], ``draws`` noise draws each.
    """

    draws: int = _f(32, min=2, max=10_000)
    points: int = _f(9, min=2)
    p_max: float = _f(0.3, gt=0.0, max=1.0)


@dataclass(frozen=True)
class LocalEntropyParams:
    """Sampled local entropy (binary weights): fraction of ``draws`` random D-flip
    neighbours that are solutions, for D = 1 .. D_max (docs/science.md §2, §5)."""

    draws: int = _f(2000, min=1)
    D_max: int = _f(4, min=1)


@dataclass(frozen=True)
class WalksParams:
    """Random walks inside the solution space, ``walkers`` per solution (docs/science.md §2).

    ``steps`` proposals per walker, distance recorded at ``checkpoints`` evenly spaced
    proposal counts. Binary: single uniform flips; continuous: W_l -> sphere-projected
    W_l + step z, z ~ N(0, 1) per weight. A move is accepted only if every pattern
    stays correct.
    """

    walkers: int = _f(4, min=1)
    steps: int = _f(2000, min=1)
    checkpoints: int = _f(10, min=1)
    step: float = _f(0.05, gt=0.0)


@dataclass(frozen=True)
class EnumerateParams:
    """Exact enumeration of all 2^N binary weight vectors, instances with N <= max_N.

    Larger instances get no rows (a scan over several N enumerates the small ones).
    About 2^24 vectors take minutes on a CPU; more needs a GPU.
    """

    max_N: int = _f(20, min=1, max=40)


# name -> parameter class (implementations: relu_landscape.probes.PROBES)
PROBE_PARAMS: dict[str, type] = {
    "local_energy": LocalEnergyParams,
    "robustness": RobustnessParams,
    "local_entropy": LocalEntropyParams,
    "walks": WalksParams,
    "enumerate": EnumerateParams,
}

# each weight type's best measured solver (docs/solvers.md has the table)
DEFAULT_SOLVER = {"binary": "bp", "continuous": "gd"}
# the default where the best one does not train every variant of the grid (an
# activation other than sign and relu, or a margin): these train every one
FALLBACK_SOLVER = {"binary": "anneal", "continuous": "gd"}


def default_solver(weights: str, variants) -> str:
    """The default solver of a weight type for the grid's (activation, K, kappa)
    ``variants``: ``DEFAULT_SOLVER`` if it trains them all, else ``FALLBACK_SOLVER``."""
    best = DEFAULT_SOLVER[weights]
    if all(solver_trains(best, *v) for v in variants):
        return best
    return FALLBACK_SOLVER[weights]
