"""The TOML scan spec: frozen dataclasses, validation before any compute, content hash.

Schema (every key optional unless marked; README "Scan spec" has the full table)::

    seed = 0                  # base seed, root of the seed derivation (instances.py)
    inputs = "binary"         # pattern entries: "binary" (+-1) or "gaussian" (N(0,1))
    [grid]
    K = {sign = [1, 3], relu = [2, 4]}   # required; the keys are the activations
                              # (any of activations.ACTIVATIONS, e.g. tanh = [2, 4])
    kappa = [0.0]             # margins, units of std(Delta) (docs/science.md §1)
    weights = ["binary", "continuous"]
    n = [15]                  # inputs per hidden unit (N = K n), or N = [...]: exactly one
    alpha = [0.2, 0.5]        # required; patterns per weight, P = round(alpha N); or a
                              # table by weight type, alpha = {binary = [..], continuous = [..]}
    seeds = 8                 # instances per cell: seed indices 0 .. seeds-1
    [solver.binary]           # and [solver.continuous]: name plus its parameters
    name = "anneal"           # [[solver.binary]] twice or more: several solvers train
                              # the same instances (the first gives the capacity)
    [probes.<name>]           # neighbourhood probes run on every solution found
    [execution]               # how, not what: excluded from the config hash
    backend = "ray"           # "ray" (embedded local Ray or --address) or "local"

``validate(raw)`` collects every problem as one line "key: what is wrong; how to fix"
and ``load_config`` raises ``InvalidConfigError`` holding all of them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from relu_landscape import activations as activation_registry
from relu_landscape.errors import InvalidConfigError
from relu_landscape.params import (
    PROBE_PARAMS,
    SOLVER_PARAMS,
    default_solver,
    solver_trains,
    variants_text,
)
from relu_landscape.presets import NAMES as PRESETS

ACTIVATIONS = tuple(activation_registry.ACTIVATIONS)
WEIGHTS = ("binary", "continuous")
INPUTS = ("binary", "gaussian")
BACKENDS = ("ray", "local")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class SolverSpec:
    """A solver by registry name with its validated parameter object."""

    name: str
    params: Any


@dataclass(frozen=True)
class ProbeSpec:
    """A probe by registry name with its validated parameter object."""

    name: str
    params: Any


@dataclass(frozen=True)
class Grid:
    """The scanned grid. ``K`` maps each activation to its hidden-layer sizes; kappa:
    the stability margins (a pattern is stored when sigma Delta > kappa std(Delta),
    docs/science.md §1), every one a cell of its own."""

    K: tuple[tuple[str, tuple[int, ...]], ...]
    weights: tuple[str, ...]
    # one list for every weight type, or (weights, list) pairs (``alphas``)
    alpha: tuple[float, ...] | tuple[tuple[str, tuple[float, ...]], ...]
    seeds: int
    n: tuple[int, ...] | None = None
    N: tuple[int, ...] | None = None
    kappa: tuple[float, ...] = (0.0,)

    def variants(self) -> list[tuple[str, int, float]]:
        """Every (activation, K, kappa) of the grid."""
        return [(act, K, kappa) for act, Ks in self.K for K in Ks for kappa in self.kappa]

    def alphas(self, weights: str) -> tuple[float, ...]:
        """The loads alpha scanned with ``weights``."""
        if self.alpha and isinstance(self.alpha[0], tuple):
            return dict(self.alpha)[weights]
        return self.alpha

    def sizes(self, K: int) -> list[tuple[int, int]]:
        """(N, n) pairs scanned at hidden-layer size K."""
        if self.n is not None:
            return [(K * n, n) for n in self.n]
        return [(N, N // K) for N in self.N or ()]


@dataclass(frozen=True)
class Execution:
    """How a scan runs; none of it changes a number in the results."""

    backend: str = "ray"
    address: str | None = None
    workers: int = 0
    shard_size: int = 0  # 0: from the memory budget (scan.plan.shard_size_for)
    device: str = "auto"
    gpus_per_worker: float = 1.0  # < 1 packs several workers on one GPU
    max_retries: int = 2
    torch_threads: int = 1
    # share of a worker's free GPU memory (or available RAM) a shard may use
    memory_fraction: float = 0.5


@dataclass(frozen=True)
class ScanSpec:
    """A validated scan spec. ``config_hash`` covers everything but ``execution``."""

    seed: int
    inputs: str
    grid: Grid
    solvers: tuple[tuple[str, SolverSpec], ...]
    probes: tuple[ProbeSpec, ...]
    execution: Execution

    def solvers_for(self, weights: str) -> tuple[SolverSpec, ...]:
        """Every solver of a weight type, in spec order; each trains every instance."""
        return tuple(spec for w, spec in self.solvers if w == weights)

    def solver_for(self, weights: str) -> SolverSpec:
        """The weight type's primary solver: the first listed."""
        return self.solvers_for(weights)[0]

    @property
    def config_hash(self) -> str:
        science = dataclasses.asdict(self)
        science.pop("execution")
        blob = json.dumps(science, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# ---------------------------------------------------------------- validation helpers


def _type_ok(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _describe(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}[
        kind
    ]


def _check_value(key: str, value: Any, kind: type, meta: dict, issues: list) -> bool:
    if not _type_ok(value, kind):
        issues.append(f"{key}: got {value!r}; must be {_describe(kind)}")
        return False
    if kind is float and not math.isfinite(value):
        issues.append(f"{key}: got {value!r}; must be a finite number")
        return False
    if "choices" in meta and value not in meta["choices"]:
        issues.append(f"{key}: unknown value {value!r}; use one of {list(meta['choices'])}")
        return False
    if "min" in meta and value < meta["min"]:
        issues.append(f"{key}: got {value!r}; must be >= {meta['min']}")
        return False
    if "gt" in meta and value <= meta["gt"]:
        issues.append(f"{key}: got {value!r}; must be > {meta['gt']}")
        return False
    if "max" in meta and value > meta["max"]:
        issues.append(f"{key}: got {value!r}; must be <= {meta['max']}")
        return False
    return True


def _unknown_keys(key: str, table: dict, allowed: list[str], issues: list) -> None:
    for k in table:
        if k not in allowed:
            where = f"{key}.{k}" if key else k
            issues.append(f"{where}: unknown key; allowed keys here are {sorted(allowed)}")


def _dataclass_from(cls: type, table: Any, key: str, issues: list, skip=()) -> Any:
    """Build a frozen dataclass from a TOML table, checking keys, types and ranges."""
    if not isinstance(table, dict):
        issues.append(f"{key}: must be a table, e.g. [{key}]")
        return None
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    _unknown_keys(key, {k: v for k, v in table.items() if k not in skip}, list(fields), issues)
    values, ok = {}, True
    for name, f in fields.items():
        if name not in table:
            continue
        kind = {"int": int, "float": float, "str": str, "bool": bool}.get(
            str(f.type).replace("str | None", "str"), str
        )
        ok &= _check_value(f"{key}.{name}", table[name], kind, dict(f.metadata), issues)
        values[name] = float(table[name]) if kind is float and ok else table[name]
    return cls(**values) if ok else None


def _list_of(key: str, raw: Any, kind: type, issues: list, **meta) -> tuple | None:
    if not isinstance(raw, list):
        raw = [raw]
    if not raw:
        issues.append(f"{key}: empty list; give at least one value")
        return None
    good = all([_check_value(f"{key}", v, kind, meta, issues) for v in raw])
    if good and len(set(raw)) != len(raw):
        issues.append(f"{key}: {raw!r} repeats a value; list each value once")
        return None
    return tuple(kind(v) for v in raw) if good else None


# ---------------------------------------------------------------- the spec's parts


def _validate_K(raw: Any, issues: list) -> tuple | None:
    if not isinstance(raw, dict) or not raw:
        issues.append(
            "grid.K: must be a table keyed by activation, e.g. K = {sign = [1, 3], relu = [2, 4]}"
        )
        return None
    out = []
    for act, Ks in raw.items():
        key = f"grid.K.{act}"
        if act not in ACTIVATIONS:
            issues.append(f"{key}: unknown activation {act!r}; use one of {list(ACTIVATIONS)}")
            continue
        values = _list_of(key, Ks, int, issues, min=1)
        if values is None:
            continue
        for K in values:
            if act == "sign" and K % 2 == 0:
                issues.append(f"{key}: K = {K} is even; sign units need odd K (majority vote)")
            elif not activation_registry.get(act).odd and K % 2 == 1:
                issues.append(
                    f"{key}: K = {K} is odd; {act} units need even K "
                    "(readout +1 on half, -1 on half)"
                )
        out.append((act, values))
    return tuple(out)


def _validate_grid(raw: Any, issues: list) -> Grid | None:
    if not isinstance(raw, dict):
        issues.append("grid: missing; add a [grid] table with K and alpha")
        return None
    _unknown_keys("grid", raw, ["K", "weights", "n", "N", "alpha", "seeds", "kappa"], issues)
    K = _validate_K(raw.get("K"), issues)
    weights = _list_of("grid.weights", raw.get("weights", list(WEIGHTS)), str, issues,
                       choices=WEIGHTS)
    if "alpha" not in raw:
        issues.append("grid.alpha: missing; give patterns per weight, e.g. alpha = [0.2, 0.5]")
        alpha = None
    else:
        alpha = _validate_alpha(raw["alpha"], weights, issues)
    # floats of either sign; a cell each (never a partition key: store.py)
    kappa = _list_of("grid.kappa", raw.get("kappa", [0.0]), float, issues)
    seeds = raw.get("seeds", 8)
    if not _check_value("grid.seeds", seeds, int, {"min": 1}, issues):
        seeds = None
    if ("n" in raw) == ("N" in raw):
        issues.append("grid.n / grid.N: give exactly one, n (inputs per unit) or N (total inputs)")
        return None
    size_key = "n" if "n" in raw else "N"
    sizes = _list_of(f"grid.{size_key}", raw[size_key], int, issues, min=1)
    if None in (K, weights, alpha, seeds, sizes, kappa):
        return None
    grid = Grid(K=K, weights=weights, alpha=alpha, seeds=seeds, kappa=kappa,
                **{size_key: sizes})
    _check_sizes(grid, issues)
    return grid


def _validate_alpha(raw: Any, weights: tuple | None, issues: list) -> tuple | None:
    if not isinstance(raw, dict):
        return _list_of("grid.alpha", raw, float, issues, gt=0.0)
    _unknown_keys("grid.alpha", raw, list(WEIGHTS), issues)
    missing = [w for w in weights or () if w not in raw]
    if missing:
        issues.append(f"grid.alpha: no list for {missing} weights; give alpha = "
                      "{binary = [..], continuous = [..]} for every grid.weights")
        return None
    lists = [(w, _list_of(f"grid.alpha.{w}", raw[w], float, issues, gt=0.0))
             for w in weights or ()]
    return None if any(a is None for _, a in lists) else tuple(lists)


def _check_sizes(grid: Grid, issues: list) -> None:
    for act, Ks in grid.K:
        for K in Ks:
            if grid.N is not None:
                for N in grid.N:
                    if N % K:
                        issues.append(
                            f"grid.N: N = {N} is not divisible by K = {K} ({act}); "
                            "use multiples of every K, or give n instead"
                        )
            for N, n in grid.sizes(K):
                if act == "sign" and "binary" in grid.weights and n % 2 == 0 and n:
                    issues.append(
                        f"grid.{'n' if grid.n else 'N'}: n = {n} per unit is even for sign "
                        f"units with binary weights (K = {K}); use odd n so no unit sits at 0"
                    )
                for a in sorted({a for w in grid.weights for a in grid.alphas(w)}):
                    if round(a * N) < 1:
                        issues.append(
                            f"grid.alpha: alpha = {a} at N = {N} gives P = 0 patterns; "
                            "raise alpha or N"
                        )


def _validate_solvers(raw: Any, weights: tuple[str, ...], issues: list,
                      variants: list = ()) -> tuple:
    raw = raw if raw is not None else {}
    if not isinstance(raw, dict):
        issues.append("solver: must be a table with [solver.binary] and/or [solver.continuous]")
        return ()
    _unknown_keys("solver", raw, list(WEIGHTS), issues)
    out = []
    for w in weights:
        tables = raw.get(w, {})
        tables = tables if isinstance(tables, list) else [tables]
        if not tables or not all(isinstance(t, dict) for t in tables):
            issues.append(f"solver.{w}: must be a table [solver.{w}] or one or more "
                          f"[[solver.{w}]] tables, each with a name")
            continue
        names = [t.get("name", default_solver(w, variants)) for t in tables]
        if len(set(map(str, names))) < len(names):
            issues.append(f"solver.{w}: a solver is listed twice in {names}; list each "
                          "solver once (the runs table tells solvers apart by name)")
            continue
        for k, (table, name) in enumerate(zip(tables, names, strict=True)):
            key = f"solver.{w}" if len(tables) == 1 else f"solver.{w}[{k}]"
            spec = _solver_spec(dict(table), name, w, key, issues)
            if spec is not None:
                out.append((w, spec))
    return tuple(out)


def _solver_spec(table: dict, name: Any, w: str, key: str, issues: list) -> SolverSpec | None:
    if name not in SOLVER_PARAMS:
        issues.append(f"{key}.name: unknown solver {name!r}; use one of {sorted(SOLVER_PARAMS)}")
        return None
    cls, trains = SOLVER_PARAMS[name]
    if w not in trains:
        ok = sorted(n for n, (_, t) in SOLVER_PARAMS.items() if w in t)
        issues.append(f"{key}.name: {name!r} does not train {w} weights; use one of {ok}")
        return None
    params = _dataclass_from(cls, table, key, issues, skip=("name",))
    return None if params is None else SolverSpec(name, params)


def _check_solver_variants(grid: Grid | None, solvers: tuple, issues: list) -> None:
    """One line per solver that cannot train some (activation, K, kappa) of the grid
    (lp, bp, sbpi: ``params.SOLVER_VARIANTS``, ``params.SOLVER_MIN_KAPPA``)."""
    for w, spec in solvers:
        bad = dict.fromkeys(
            f"{act} K = {K}" + (f" at kappa = {kappa}" if kappa else "")
            for act, K, kappa in (grid.variants() if grid else ())
            if not solver_trains(spec.name, act, K, kappa))
        if bad:
            issues.append(f"solver.{w}.name: {spec.name!r} trains only "
                          f"{variants_text(spec.name)}, not {'; '.join(bad)}; "
                          "use another solver or restrict grid.K / grid.kappa")


def _validate_probes(raw: Any, issues: list) -> tuple:
    raw = raw if raw is not None else {}
    if not isinstance(raw, dict):
        issues.append("probes: must be a table of [probes.<name>] tables")
        return ()
    out = []
    for name, table in raw.items():
        if name not in PROBE_PARAMS:
            issues.append(f"probes.{name}: unknown probe; use one of {sorted(PROBE_PARAMS)}")
            continue
        params = _dataclass_from(PROBE_PARAMS[name], table, f"probes.{name}", issues)
        if params is not None:
            out.append(ProbeSpec(name, params))
    return tuple(out)


_EXEC_META = {
    "backend": {"choices": BACKENDS},
    "device": {"choices": DEVICES},
    "workers": {"min": 0},
    "shard_size": {"min": 0},
    "gpus_per_worker": {"gt": 0.0, "max": 1.0},
    "max_retries": {"min": 0},
    "torch_threads": {"min": 1},
    "memory_fraction": {"gt": 0.0, "max": 1.0},
}


def _validate_execution(raw: Any, issues: list) -> Execution | None:
    raw = raw if raw is not None else {}
    if not isinstance(raw, dict):
        issues.append("execution: must be a table, e.g. [execution]")
        return None
    fields = {f.name: f for f in dataclasses.fields(Execution)}
    _unknown_keys("execution", raw, list(fields), issues)
    values = {}
    for name, value in raw.items():
        if name not in fields:
            continue
        kind = {"backend": str, "device": str, "address": str,
                "gpus_per_worker": float, "memory_fraction": float}.get(name, int)
        if _check_value(f"execution.{name}", value, kind, _EXEC_META.get(name, {}), issues):
            values[name] = float(value) if kind is float else value
    return Execution(**values)


def validate(raw: dict) -> tuple[ScanSpec | None, list[str]]:
    """Validate a parsed TOML spec; return the spec (None if invalid) and all issues."""
    issues: list[str] = []
    _unknown_keys("", raw, ["seed", "inputs", "grid", "solver", "probes", "execution"], issues)
    seed = raw.get("seed", 0)
    _check_value("seed", seed, int, {"min": 0}, issues)
    inputs = raw.get("inputs", "binary")
    _check_value("inputs", inputs, str, {"choices": INPUTS}, issues)
    grid = _validate_grid(raw.get("grid"), issues)
    solvers = _validate_solvers(raw.get("solver"), grid.weights if grid else (), issues,
                                grid.variants() if grid else ())
    _check_solver_variants(grid, solvers, issues)
    probes = _validate_probes(raw.get("probes"), issues)
    execution = _validate_execution(raw.get("execution"), issues)
    if issues:
        return None, issues
    spec = ScanSpec(seed, inputs, grid, solvers, probes, execution)
    return spec, []


def _parse(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidConfigError(f"{source}: not valid TOML ({exc}); fix the syntax") from None


def load_config(path: str | Path | None = None, *, preset: str | None = None,
                overrides: dict | None = None) -> ScanSpec:
    """Read and validate a spec from a TOML file or a named preset.

    ``overrides`` (e.g. ``{"execution": {"backend": "local"}}``) is merged table by
    table before validation. Raises ``InvalidConfigError`` listing every problem.
    """
    if (path is None) == (preset is None):
        raise InvalidConfigError("give a config file or --preset NAME, not both or neither")
    if preset is not None:
        if preset not in PRESETS:
            raise InvalidConfigError(f"--preset: unknown preset {preset!r}; "
                                     f"use one of {list(PRESETS)}")
        text = resources.files("relu_landscape.presets").joinpath(f"{preset}.toml").read_text()
        source = f"preset {preset}"
    else:
        p = Path(path)
        if not p.is_file():
            raise InvalidConfigError(f"config: no file at {str(p)!r}; check the path")
        text, source = p.read_text(), str(p)
    raw = _parse(text, source)
    for table, values in (overrides or {}).items():
        raw.setdefault(table, {})
        if isinstance(raw[table], dict):
            raw[table] = {**raw[table], **values}
    spec, issues = validate(raw)
    if issues:
        raise InvalidConfigError(issues)
    return spec
