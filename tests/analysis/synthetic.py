"""Synthetic results directories for the analysis tests (written through the store)."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from relu_landscape import store
from relu_landscape.analysis import theory_join
from relu_landscape.theory import THEORY_VERSION

PROV = store.Provenance(config_hash="synthetic")


def runs_rows(
    N: int,
    solved: dict[float, list[bool]],
    solver: str = "anneal",
    shard: str = "s",
    solvable: dict[float, list[bool | None]] | None = None,
    kappa: float = 0.0,
) -> pa.Table:
    """RUNS_SCHEMA rows: one per (alpha, instance) with the given solved flags (and
    solvable flags, null where not given), at margin ``kappa``."""
    cols = {f.name: [] for f in store.RUNS_SCHEMA}
    for alpha, flags in solved.items():
        P = round(alpha * N)
        exact = (solvable or {}).get(alpha, [None] * len(flags))
        for s, ok in enumerate(flags):
            row = dict(
                run_id=f"{shard}-{alpha}-{s}",
                N=N,
                n=N,
                P=P,
                alpha=alpha,
                kappa=kappa,
                seed=0,
                s=s,
                inputs="binary",
                solver=solver,
                solver_params="{}",
                solved=ok,
                errors=0 if ok else 1,
                error_frac=0.0 if ok else 1 / P,
                min_stability=0.1,
                solvable=exact[s],
                steps=5,
                wall_s=1.0,
                batch_size=len(flags),
                device="cpu",
                shard_id=shard,
            )
            for k, v in row.items():
                cols[k].append(v)
    return pa.Table.from_pydict(cols, schema=store.RUNS_SCHEMA)


def write_runs(
    root,
    activation: str,
    weights: str,
    K: int,
    N: int,
    solved: dict[float, list[bool]],
    solver: str = "anneal",
    solvable: dict[float, list[bool | None]] | None = None,
    kappa: float = 0.0,
) -> None:
    shard = f"{activation}-{weights}-{K}-{N}-{solver}" + (f"-{kappa}" if kappa else "")
    store.write_shard(
        root,
        "runs",
        runs_rows(N, solved, solver, shard, solvable, kappa),
        activation=activation,
        weights=weights,
        K=K,
        shard_id=shard,
        provenance=PROV,
        device="cpu",
    )


def flags(solved: int, total: int = 4) -> list[bool]:
    return [i < solved for i in range(total)]


def fake_alpha_c(K: int | None, kappa: float = 0.0) -> float:
    """alpha_c of the fake theory table: 0.5 + K/10 (K = inf: 3.0), minus kappa/4."""
    return (3.0 if K is None else 0.5 + K / 10) - kappa / 4


def write_fake_theory(
    root, data_K: dict[str, list[int]], extra: Iterable[theory_join.Variant] = ()
) -> None:
    """A theory table covering every figure variant and the ``extra`` ones, alpha_c =
    ``fake_alpha_c``, stderr 0.01."""
    rows = [
        {
            "activation": a,
            "weights": w,
            "K": "inf" if K is None else K,
            "kappa": kappa,
            "level": lvl,
            "tie": "error",
            "precision": "default",
            "theory_version": THEORY_VERSION,
            "alpha_c": fake_alpha_c(K, kappa),
            "stderr": 0.01,
            "converged": True,
        }
        for a, w, K, lvl, kappa in [*theory_join.figure_variants(data_K), *extra]
    ]
    store.write_table(root, "theory", theory_join.theory_frame(rows).to_arrow())


# local energy of the sign K = 1, N = 20 runs at alpha 0.2, 0.4 (seeds 0, 1): two
# settings, D = 2 and 4 flips (d = 0.1, 0.2), binary weights so the noise scale s is null
ENERGY_VALUES = [0.0, 0.1, 0.2, 0.4, 0.1, 0.3, 0.3, 0.5]


def energy_probe_rows() -> dict:
    """Columns of a small local_energy probe table keyed to ``write_runs``' run ids."""
    ids = [f"sign-binary-1-20-anneal-{a}-{s}" for a in (0.2, 0.4) for s in range(2)]
    return {
        "run_id": ids * 2,
        "solver": ["anneal"] * 8,
        "kappa": [0.0] * 8,
        "s": pa.nulls(8, pa.float64()),
        "D": [2] * 4 + [4] * 4,
        "d": [0.1] * 4 + [0.2] * 4,
        "local_energy": ENERGY_VALUES,
    }


# Sampled local entropy (binary weights, N = 20): sign K = 1 solved at alpha 0.2 (4/4)
# and 0.4 (2 of 4); ReLU K = 2 at 0.2, 0.4, 0.6 (4, 3, 1 of 4). D = 1 .. 3, 100 draws.
LOCAL_ENTROPY_RUNS = {
    ("sign", 1): {0.2: flags(4), 0.4: flags(2)},
    ("relu", 2): {0.2: flags(4), 0.4: flags(3), 0.6: flags(1)},
}
LOCAL_ENTROPY_DRAWS = 100


def sampled_local_entropy(act: str, alpha: float, s: int, D: int) -> float:
    """The synthetic probe value of one (solution, D): distinct for every row."""
    return 0.05 * D - 0.1 * alpha + 0.003 * s + (0.01 if act == "relu" else 0.0)


def write_local_entropy(root) -> None:
    """Runs and a local_entropy probe table for ``LOCAL_ENTROPY_RUNS`` (solved ones)."""
    for (act, K), solved in LOCAL_ENTROPY_RUNS.items():
        write_runs(root, act, "binary", K, 20, solved)
        ids, Ds, values = [], [], []
        for alpha, ok in solved.items():
            for s in range(sum(ok)):
                for D in (1, 2, 3):
                    ids.append(f"{act}-binary-{K}-20-anneal-{alpha}-{s}")
                    Ds.append(D)
                    values.append(sampled_local_entropy(act, alpha, s, D))
        n = len(ids)
        path = (
            root / "local_entropy" / f"activation={act}" / "weights=binary" / f"K={K}"
        )
        path.mkdir(parents=True)
        pq.write_table(
            pa.table(
                {
                    "run_id": ids,
                    "solver": ["anneal"] * n,
                    "kappa": [0.0] * n,
                    "N": [20] * n,
                    "D": Ds,
                    "d": [D / 20 for D in Ds],
                    "draws": [LOCAL_ENTROPY_DRAWS] * n,
                    "local_entropy": values,
                }
            ),
            path / "x.parquet",
        )


def fake_local_entropy_theory(
    kind: str, K: int | None, alpha: float, d: float
) -> float:
    """Theory value of the fake table: distinct per kind, theory K, alpha and d."""
    return (0.9 if kind == "dense" else 0.4) * d + 0.01 * (K or 9) - 0.02 * alpha


def write_fake_local_entropy_theory(root) -> None:
    """OUT/local_entropy_theory covering every (activation, alpha, d) of
    ``write_local_entropy``, both kinds at K = inf (null), and at the data's K where
    the theory has it: Franz-Parisi at every K, dense regions only at K = 1."""
    rows = [
        {
            "kind": kind,
            "activation": act,
            "weights": "binary",
            "K": tK,
            "alpha": alpha,
            "d": D / 20,
            "converged": True,
            "local_entropy": fake_local_entropy_theory(kind, tK, alpha, D / 20),
        }
        for (act, K), solved in LOCAL_ENTROPY_RUNS.items()
        for tK in (K, None)
        for alpha in solved
        for kind in ("franz_parisi", "dense")
        for D in (1, 2, 3)
        if not (kind == "dense" and tK not in (None, 1))
    ]
    store.write_table(root, "local_entropy_theory", pa.Table.from_pylist(rows))
