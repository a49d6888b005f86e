"""Synthetic results directories for the analysis tests (written through the store)."""

from __future__ import annotations

import pyarrow as pa

from relu_landscape import store
from relu_landscape.analysis import theory_join

PROV = store.Provenance(config_hash="synthetic")


def runs_rows(
    N: int, solved: dict[float, list[bool]], solver: str = "anneal", shard: str = "s"
) -> pa.Table:
    """RUNS_SCHEMA rows: one per (alpha, instance) with the given solved flags."""
    cols = {f.name: [] for f in store.RUNS_SCHEMA}
    for alpha, flags in solved.items():
        P = round(alpha * N)
        for s, ok in enumerate(flags):
            row = dict(
                run_id=f"{shard}-{alpha}-{s}",
                N=N,
                n=N,
                P=P,
                alpha=alpha,
                seed=0,
                s=s,
                inputs="binary",
                solver=solver,
                solver_params="{}",
                solved=ok,
                errors=0 if ok else 1,
                error_frac=0.0 if ok else 1 / P,
                min_stability=0.1,
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
) -> None:
    shard = f"{activation}-{weights}-{K}-{N}-{solver}"
    store.write_shard(
        root,
        "runs",
        runs_rows(N, solved, solver, shard),
        activation=activation,
        weights=weights,
        K=K,
        shard_id=shard,
        provenance=PROV,
        device="cpu",
    )


def flags(solved: int, total: int = 4) -> list[bool]:
    return [i < solved for i in range(total)]


def write_fake_theory(root, data_K: dict[str, list[int]]) -> None:
    """A theory table covering every figure variant, alpha_c = 0.5 + K/10 (inf: 3.0)."""
    rows = [
        {
            "activation": a,
            "weights": w,
            "K": "inf" if K is None else K,
            "level": lvl,
            "tie": "error",
            "alpha_c": 3.0 if K is None else 0.5 + K / 10,
            "stderr": 0.01,
        }
        for a, w, K, lvl in theory_join.figure_variants(data_K)
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
        "s": pa.nulls(8, pa.float64()),
        "D": [2] * 4 + [4] * 4,
        "d": [0.1] * 4 + [0.2] * 4,
        "local_energy": ENERGY_VALUES,
    }
