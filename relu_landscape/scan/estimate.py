"""What a scan will cost before it runs: shards, instances, memory per shard and time
(``relu-landscape scan --dry-run``). The model is torch-free; only ``calibrate``
measures (lazily importing torch and the solvers).

Cost of one shard of B instances of shape (K, N) whose padded pattern count is P (the
largest alpha of its seeds: every instance of a shard computes on the shared, padded
pattern matrices, ``model.dot_shared``):

    solve  = iterations x (units x floor + B x work / flops_per_s)
    probes = sum over probes (B x p_solved x work / flops_per_s + launches x floor_gd)
    shard  = solve + probes + exact solvability (binary, N <= runner.SOLVABLE_MAX_N)
             + shard_overhead_s

- iterations: the solver's budget (``max_steps``, ``max_epochs``, ``sweeps``). A shard
  stops early only when *all* its instances are solved, and it holds every alpha of
  its seeds, so any grid reaching above capacity runs its full budget: this is an
  upper bound that such grids meet.
- units x floor: the per-iteration launch overhead, measured on this machine per
  (solver, activation, K) at a tiny size where the arithmetic is negligible; units:
  one per step or sweep (descent, BP), one per pattern presentation (SBPI: P per
  epoch), one per proposal (annealing: N per sweep), one per instance (LP).
- work: executed floating-point operations per instance and iteration counted from
  the kernels (``_solver_work``), divided by the sustained throughput of a batched
  GD step (``flops_per_s``, the marginal cost of more instances at N = 200 on the CPU,
  N = 1000 on CUDA). Other kernels (float64 BP channels, SBPI's elementwise updates)
  run at a different rate: their work is counted in GD-step flops, an approximation.
- probes run only on solved instances; p_solved = 1 for continuous weights (an upper
  bound) and min(1, 2^(N - P)) for binary weights, the first-moment bound: each of the
  2^N binary vectors is right on a pattern with a random label with probability at
  most 1/2. Every probe evaluation of a weight vector is a product with the P x N
  patterns, 2 N P flops.
- exact solvability enumerates the unsolved binary instances at N <= 24: counted for
  every instance (upper bound), 2^N vectors x 2 N P flops (the part tables do less).

The wall time spreads the shards over the workers costliest first (the order in which
``run_scan`` dispatches them, ``by_cost``) and reports the last worker's finish.
Calibrations are cached in ``$XDG_CACHE_HOME/relu-landscape/calibration.json`` (default
``~/.cache``), keyed by device, its name, torch version and threads; ``relu-landscape
bench`` refreshes them.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from relu_landscape.config import ScanSpec
from relu_landscape.scan.plan import Shard, bytes_per_instance, plan_shards

CACHE_VERSION = 1

BUDGET = {"gd": "max_steps", "replicated_gd": "max_steps", "clipped_sgd": "max_steps",
          "replicated_clipped_sgd": "max_steps", "bp": "max_steps",
          "sbpi": "max_epochs", "anneal": "sweeps", "lp": None}
"""The parameter that bounds each solver's iterations (None: one pass, LP)."""

SOLVABLE_MAX_N = 24  # runner.SOLVABLE_MAX_N, repeated so this module stays torch-free

H200_MEASURED = {"name": "NVIDIA H200 (measured with bench --gpu)", "device": "cuda",
                 "step_s": {16: 3.0e-3, 128: 3.7e-3}, "N": 1000, "P": 3750}
"""GD step time (median, ``bench.roofline``'s batch: K = 2, continuous ReLU, N = 1000,
P up to 3.75 N) measured on one H200: 3.0-3.7 ms for B = 16 .. 128, taken as 3.0 ms
at B = 16 and 3.7 ms at B = 128 (peak fp32 matmul there 47 TFLOP/s, bandwidth
4.0 TB/s: the step is launch-bound at these sizes). ``transferred`` builds a CUDA
calibration from it."""


@dataclass(frozen=True)
class Calibration:
    """Measured machine constants. floors: seconds per launch unit by
    ``floor_key(solver, activation, K)``; flops_per_s: marginal throughput of a
    batched GD step; shard_overhead_s: a one-instance shard's fixed cost (batch
    construction, checks, Parquet files)."""

    key: str
    device: str
    flops_per_s: float
    shard_overhead_s: float
    floors: dict[str, float] = field(default_factory=dict)
    source: str = "measured"


@dataclass(frozen=True)
class GroupEstimate:
    """One (activation, weights, K, N) of the plan."""

    activation: str
    weights: str
    K: int
    N: int
    solver: str
    shards: int
    instances: int
    bytes_per_shard: int  # the largest shard's, bytes_per_instance x its size
    solve_s: float  # worker-seconds, summed over the group's shards
    probe_s: float
    other_s: float  # exact solvability and per-shard overhead


@dataclass(frozen=True)
class Estimate:
    """A scan's plan and predicted cost on ``workers`` workers (all times upper
    bounds, see the module docstring)."""

    device: str
    workers: int
    shard_size: int
    groups: tuple[GroupEstimate, ...]
    shard_s: tuple[float, ...]  # every shard's predicted seconds
    wall_s: float
    budget_bytes: int | None = None  # a worker's memory budget, when known

    @property
    def shards(self) -> int:
        return len(self.shard_s)

    @property
    def instances(self) -> int:
        return sum(g.instances for g in self.groups)

    @property
    def work_s(self) -> float:
        """Worker-seconds of the whole scan."""
        return sum(self.shard_s)


def floor_key(solver: str, activation: str, K: int) -> str:
    return f"{solver}/{activation}/{K}"


def _units(solver: str, N: int, P: int, B: int) -> int:
    """Launch units per iteration (see the module docstring)."""
    return {"sbpi": P, "anneal": N, "lp": B}.get(solver, 1)


def _solver_work(shard: Shard, P: int) -> float:
    """Executed flops per instance and iteration at padded pattern count P."""
    K, N, name, p = shard.K, shard.N, shard.solver.name, shard.solver.params
    if name in ("gd", "clipped_sgd", "replicated_gd", "replicated_clipped_sgd"):
        R = getattr(p, "replicas", 1)
        # forward and backward per replica; replicas check their centre separately
        return (4 * R + (2 if R > 1 else 0)) * N * P
    if name == "bp":
        # three products (means forward, fields back, sign(H) check) and the output
        # channel per (pattern, unit): ReLU integrates over C hidden combinations at
        # Q nodes (float64, ~20 operations each, as plan.bytes_per_instance counts C)
        C = 2 ** (K - 1) if K <= 6 else 2
        channel = 20 * K * C * p.quadrature if shard.activation == "relu" else 20 * K
        return (6 * N + channel) * P
    if name == "sbpi":
        return 12 * N * P  # P presentations of ~10 operations per synapse, the check
    if name == "anneal":
        return 2 * N * P * (K + 2)  # N proposals, each updating O(P K) cached fields
    return 2 * N * P * min(N, P)  # lp: a dense simplex/interior-point solve, rough


def _p_solved(weights: str, N: int, P: int) -> float:
    """Upper bound on the probability that an instance is solvable."""
    return 2.0 ** min(N - P, 0) if weights == "binary" else 1.0


def _probe_cost(shard: Shard, P: int, cal: Calibration) -> float:
    """Seconds of the shard's probes at padded pattern count P."""
    N, floor = shard.N, cal.floors[floor_key("gd", shard.activation, shard.K)]
    solved = sum(_p_solved(shard.weights, N, i.P) for i in shard.ids)
    total = 0.0
    for probe in shard.probes:
        q = probe.params
        binary = shard.weights == "binary"
        if probe.name in ("local_energy", "robustness"):
            evals, launches = q.draws * q.points, q.points
        elif probe.name == "local_entropy" and binary:
            evals, launches = q.draws * q.D_max, q.D_max * -(-q.draws // 512)
        elif probe.name == "walks":
            # binary: flip-cache proposals, O(P K) each; continuous: every weight moves
            evals = q.walkers * q.steps * ((shard.K + 2) / N if binary else 1)
            launches = q.steps
        elif probe.name == "enumerate" and binary and N <= q.max_N:
            evals, launches = 2.0 ** N, 1
        else:
            continue
        total += solved * evals * 2 * N * P / cal.flops_per_s + launches * floor
    return total


def shard_seconds(shard: Shard, cal: Calibration) -> tuple[float, float, float]:
    """(solve, probes, other) predicted seconds of one shard on one worker."""
    name = shard.solver.name
    P = max(i.P for i in shard.ids)
    budget = BUDGET[name]
    iterations = getattr(shard.solver.params, budget) if budget else 1
    floor = cal.floors[floor_key(name, shard.activation, shard.K)]
    per_iteration = (_units(name, shard.N, P, shard.size) * floor
                     + shard.size * _solver_work(shard, P) / cal.flops_per_s)
    other = cal.shard_overhead_s
    if shard.weights == "binary" and shard.N <= SOLVABLE_MAX_N:
        other += shard.size * 2.0 ** shard.N * 2 * shard.N * P / cal.flops_per_s
    return iterations * per_iteration, _probe_cost(shard, P, cal), other


def makespan(costs: list[float], workers: int) -> float:
    """Finish time of the last worker when each takes the next shard, costliest
    first (``by_cost``, the dispatch order)."""
    finish = [0.0] * max(1, min(workers, len(costs)))
    for c in sorted(costs, reverse=True):
        heapq.heapreplace(finish, finish[0] + c)
    return max(finish)


def estimate(spec: ScanSpec, cal: Calibration, *, workers: int, shard_size: int,
             budget_bytes: int | None = None) -> Estimate:
    """The plan of ``spec`` at ``shard_size`` and its cost on ``workers`` workers
    with calibration ``cal`` (which must hold every floor the plan needs,
    ``needed_floors``); ``budget_bytes``, a worker's memory budget, is shown."""
    groups: dict[tuple, list] = {}
    costs = []
    for shard in plan_shards(spec, shard_size):
        P = max(i.P for i in shard.ids)
        mem = shard.size * bytes_per_instance(shard.K, shard.N, P, spec.inputs,
                                              shard.solver, shard.probes)
        solve, probe, other = shard_seconds(shard, cal)
        costs.append(solve + probe + other)
        key = (shard.activation, shard.weights, shard.K, shard.N, shard.solver.name)
        g = groups.setdefault(key, [0, 0, 0, 0.0, 0.0, 0.0])
        g[0] += 1
        g[1] += shard.size
        g[2] = max(g[2], mem)
        g[3] += solve
        g[4] += probe
        g[5] += other
    rows = tuple(GroupEstimate(*key, *vals) for key, vals in groups.items())
    return Estimate(cal.device, workers, shard_size, rows, tuple(costs),
                    makespan(costs, workers), budget_bytes)


def here(spec: ScanSpec) -> tuple[Estimate, Calibration]:
    """The estimate on the workers this machine gives a scan of ``spec``: one for the
    local backend, else ``execution.workers``, or one per visible GPU (over
    ``gpus_per_worker``) or per ``torch_threads`` CPUs, as a local Ray would start;
    the shard size and memory budget as ``run_scan`` would choose them. Starts no
    Ray and writes nothing but the calibration cache."""
    import torch

    from relu_landscape.scan import runner
    from relu_landscape.scan.plan import shard_size_for

    ex = spec.execution
    device = runner.pick_device(ex.device)
    if ex.backend == "local":
        workers = 1
    elif ex.workers:
        workers = ex.workers
    elif device == "cuda":
        workers = max(1, int(torch.cuda.device_count() / ex.gpus_per_worker))
    else:
        workers = max(1, (os.cpu_count() or 1) // ex.torch_threads)
    share = (ex.gpus_per_worker if device == "cuda"
             else 1 / workers if ex.backend == "ray" else 1.0)
    budget = runner.memory_budget(device, ex.memory_fraction, share)
    cal = calibrate(device, needed_floors(spec), threads=ex.torch_threads)
    size = shard_size_for(spec, device, budget)
    est = estimate(spec, cal, workers=workers, shard_size=size, budget_bytes=budget)
    return est, cal


def by_cost(shards: list[Shard], cal: Calibration) -> list[Shard]:
    """``shards`` costliest first by ``shard_seconds``: longest-processing-time-first
    dispatch, so the scan does not end on one worker finishing a long shard that a
    count of instances ranked low. Ties keep the given order."""
    return sorted(shards, key=lambda s: -sum(shard_seconds(s, cal)))


NOMINAL_FLOOR_S = {"sbpi": 5e-4, "anneal": 1e-4, "lp": 1e-2}
"""Launch floors (seconds per unit) assumed for ordering where nothing is measured:
this CPU's measured orders of magnitude (descent and BP steps 3e-3, the default)."""


def dispatch_calibration(device: str, spec: ScanSpec) -> Calibration:
    """A calibration to order shards by, without measuring (a scan must not stall
    on it): the cached one of a ``device`` machine where there is one, its missing
    floors and a machine never calibrated at the nominal values (2e9 flop/s on CPU,
    5e11 on CUDA; ``NOMINAL_FLOOR_S``). Only the order of shards depends on it."""
    cached = [Calibration(**c) for c in _load_cache().values() if c.get("device") == device]
    cal = cached[0] if cached else Calibration(
        "nominal", device, 5e11 if device == "cuda" else 2e9, 0.1, {}, source="nominal")
    nominal = {floor_key(*n): NOMINAL_FLOOR_S.get(n[0], 3e-3) for n in needed_floors(spec)}
    return dataclasses.replace(cal, floors={**nominal, **cal.floors})


# ------------------------------------------------------------------ calibration


def needed_floors(spec: ScanSpec) -> set[tuple[str, str, int]]:
    """(solver, activation, K) whose launch floor the plan of ``spec`` needs (gd's
    too: the probes' launches are costed at it)."""
    need = set()
    for act, Ks in spec.grid.K:
        for K in Ks:
            need.add(("gd", act, K))
            need.update((solver.name, act, K) for w in spec.grid.weights
                        for solver in spec.solvers_for(w))
    return need


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "relu-landscape" / "calibration.json"


def machine_key(device: str, threads: int) -> str:
    """Cache key: device kind and name, torch version, torch threads."""
    import torch

    from relu_landscape.bench import machine

    m = machine(device)
    name = m.get("gpu", m["cpu"])
    return (f"v{CACHE_VERSION}|{device}|{name}|torch {torch.__version__}"
            f"|threads {threads}")


def _load_cache() -> dict:
    try:
        return json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _save(cal: Calibration) -> None:
    """Write ``cal`` into the cache file (atomically; other keys kept)."""
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**_load_cache(), cal.key: dataclasses.asdict(cal)}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def _floor_seconds(solver: str, activation: str, K: int, device: str) -> float:
    """Seconds per launch unit of ``solver``: the median over 3 repeats of the extra
    time of a larger iteration budget on one tiny instance above capacity (n = 5,
    alpha = 6, so nothing stops early), per unit."""
    import torch

    from relu_landscape import model
    from relu_landscape.config import validate
    from relu_landscape.instances import InstanceId, make_batch, stream_key
    from relu_landscape.solvers import SOLVERS

    weights = "continuous" if solver in ("gd", "replicated_gd", "lp") else "binary"
    spec, issues = validate({"grid": {"K": {activation: [K]}, "weights": [weights],
                                      "n": [5], "alpha": [6.0], "seeds": 1},
                             "solver": {weights: {"name": solver}}})
    assert not issues, issues
    params = spec.solver_for(weights).params
    ids = [InstanceId(0, "binary", activation, weights, K, 5 * K, 6.0, 0)]
    batch = model.to_torch(make_batch(ids), device)
    keys = [stream_key(ids[0], solver)]
    budget = BUDGET[solver]
    small, large = (1, 3) if solver in ("sbpi", "anneal") else (2, 8)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run(iterations: int) -> float:
        p = dataclasses.replace(params, **{budget: iterations}) if budget else params
        t0 = time.perf_counter()
        SOLVERS[solver](batch, activation, p, keys)
        sync()
        return time.perf_counter() - t0

    run(small)  # warm-up
    if budget is None:
        return statistics.median(run(1) for _ in range(3))
    units = _units(solver, 5 * K, ids[0].P, 1) * (large - small)
    extra = statistics.median(max(run(large) - run(small), 0.0) for _ in range(3))
    return extra / units


def _throughput(device: str) -> float:
    """Marginal flop/s of a batched GD step between B = 8 and 32 at N = 200 (CPU) or
    B = 16 and 128 at N = 1000 (CUDA), executed flops 4 N P_max B (``bench``'s
    batch and step timer, median of 4 steps). The median of 3 such pairs, taken
    back to back: a difference of two timings on a loaded machine is noisy."""
    from relu_landscape.bench import _step_seconds, _unsolvable_batch

    N, sizes = (1000, (16, 128)) if device == "cuda" else (200, (8, 32))
    small, large = (_unsolvable_batch(B, N, device) for B in sizes)
    extra = 4 * N * large.xi_unique.shape[1] * (sizes[1] - sizes[0])
    return statistics.median(
        extra / max(_step_seconds(large, 4, device) - _step_seconds(small, 4, device),
                    1e-9)
        for _ in range(3))


def _shard_overhead(device: str) -> float:
    """Seconds of ``runner.execute`` on a one-instance gd shard with one step (batch,
    solve, checks, Parquet files into a temporary directory)."""
    import tempfile

    from relu_landscape import store
    from relu_landscape.config import validate
    from relu_landscape.scan import runner

    spec, issues = validate({"grid": {"K": {"relu": [2]}, "weights": ["continuous"],
                                      "n": [5], "alpha": [6.0], "seeds": 1},
                             "solver": {"continuous": {"max_steps": 1}}})
    assert not issues, issues
    shard = plan_shards(spec, 1)[0]
    times = []
    with tempfile.TemporaryDirectory(prefix="relu-landscape-calibrate-") as tmp:
        for i in range(3):
            t0 = time.perf_counter()
            runner.execute(shard, str(Path(tmp) / str(i)), store.Provenance("0"),
                           device=device)
            times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def calibrate(device: str, need: set[tuple[str, str, int]] = frozenset(), *,
              threads: int = 1, refresh: bool = False) -> Calibration:
    """The cached calibration of this machine for ``device``, measuring what is
    missing (every floor in ``need``; all of it with ``refresh``, which re-measures
    the cached floors too) and saving it. Seconds for a new machine, instant after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        key = machine_key(device, threads)
        cached = _load_cache().get(key)
        cal = Calibration(**cached) if cached and not refresh else None
        if cal is None:
            cal = Calibration(key, device, _throughput(device), _shard_overhead(device),
                              {})
            need = set(need) | {_parse(k) for k in (cached or {}).get("floors", {})}
        missing = {n for n in need if floor_key(*n) not in cal.floors}
        if missing or cached is None or refresh:
            floors = {**cal.floors, **{floor_key(*n): _floor_seconds(*n, device)
                                       for n in sorted(missing)}}
            cal = dataclasses.replace(cal, floors=floors)
            _save(cal)
        return cal
    finally:
        torch.set_num_threads(previous)


def _parse(key: str) -> tuple[str, str, int]:
    solver, activation, K = key.split("/")
    return solver, activation, int(K)


def transferred(cal: Calibration, reference: dict = H200_MEASURED) -> Calibration:
    """A calibration for the measured machine ``reference`` (GD step seconds at two
    batch sizes): its throughput and GD floor from those steps; every other floor
    scaled from ``cal`` by the ratio of the two GD floors (launch overheads taken to
    scale alike, an assumption). ``cal`` must hold gd's floor at relu K = 2."""
    (b0, t0), (b1, t1) = sorted(reference["step_s"].items())
    per_instance = 4 * reference["N"] * reference["P"]
    flops = per_instance * (b1 - b0) / (t1 - t0)
    gd_floor = t0 - per_instance * b0 / flops
    scale = gd_floor / cal.floors[floor_key("gd", "relu", 2)]
    return Calibration(reference["name"], reference["device"], flops,
                       cal.shard_overhead_s,
                       {k: v * scale for k, v in cal.floors.items()},
                       source=f"other floors scaled from {cal.key}")


# ------------------------------------------------------------------ the table


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def render(est: Estimate, cal: Calibration) -> str:
    """The dry-run's table: one row per (activation, weights, K, N), then the total."""
    head = (f"{'activation':<10} {'weights':<10} {'K':>3} {'N':>5} {'solver':<8} "
            f"{'shards':>6} {'instances':>9} {'mem/shard':>10} {'solve':>9} "
            f"{'probes':>9} {'other':>9}")
    lines = [f"dry run: {est.shards} shards of <= {est.shard_size} instances on "
             f"{est.workers} {est.device} worker(s); calibration {cal.key} "
             f"({cal.source}; {cal.flops_per_s:.3g} flop/s, "
             f"gd step floor {_floor_ms(cal)})", head]
    over = False
    for g in est.groups:
        big = est.budget_bytes is not None and g.bytes_per_shard > est.budget_bytes
        over |= big
        lines.append(
            f"{g.activation:<10} {g.weights:<10} {g.K:>3} {g.N:>5} {g.solver:<8} "
            f"{g.shards:>6} {g.instances:>9} "
            f"{('*' if big else '') + _bytes(g.bytes_per_shard):>10} "
            f"{_duration(g.solve_s):>9} {_duration(g.probe_s):>9} "
            f"{_duration(g.other_s):>9}")
    if over:
        lines.append(f"* above a worker's memory budget ({_bytes(est.budget_bytes)}, "
                     "memory_fraction of its free memory): such a shard may run out of "
                     "memory (CUDA: split in halves and retried); lower --shard-size")
    lines.append(
        f"total: {est.shards} shards, {est.instances} instances, "
        f"{_duration(est.work_s)} of worker time; about {_duration(est.wall_s)} on "
        f"{est.workers} worker(s) (an upper bound: full step budgets, probes on every "
        "instance that may be solvable)")
    return "\n".join(lines)


def _floor_ms(cal: Calibration) -> str:
    floor = cal.floors.get(floor_key("gd", "relu", 2))
    return "n/a" if floor is None else f"{floor * 1e3:.2f} ms"
