"""Grid -> instances -> shards (torch- and ray-free).

A shard is the unit of work, of writing and of resume: instances that share
(activation, weights, K, N) and the solver, so they train as one batch. Instances are
ordered seed-major, so all alphas of a seed land in the same shard and share one
pattern matrix (alpha grid = prefixes). A shard's id is a content hash of its
instances, its solver and probe settings and the result-schema version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from relu_landscape.config import ProbeSpec, ScanSpec, SolverSpec
from relu_landscape.instances import InstanceId
from relu_landscape.store import SCHEMA_VERSION


@dataclass(frozen=True)
class Shard:
    """One batch of instances with everything needed to run it anywhere."""

    shard_id: str
    activation: str
    weights: str
    K: int
    N: int
    solver: SolverSpec
    probes: tuple[ProbeSpec, ...]
    ids: tuple[InstanceId, ...]

    @property
    def size(self) -> int:
        return len(self.ids)


def _shard_id(ids, solver: SolverSpec, probes) -> str:
    blob = json.dumps(
        {
            "schema": SCHEMA_VERSION,
            "ids": [dataclasses.astuple(i) for i in ids],
            "solver": [solver.name, dataclasses.asdict(solver.params)],
            "probes": [[p.name, dataclasses.asdict(p.params)] for p in probes],
        },
        sort_keys=True,
    ).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def instances(spec: ScanSpec) -> list[InstanceId]:
    """Every (cell, seed) instance of the grid, in plan order."""
    g = spec.grid
    return [
        InstanceId(spec.seed, spec.inputs, act, w, K, N, alpha, s)
        for act, Ks in g.K
        for w in g.weights
        for K in Ks
        for N, _ in g.sizes(K)
        for s in range(g.seeds)
        for alpha in g.alpha
    ]


def plan_shards(spec: ScanSpec) -> list[Shard]:
    """Split the grid into shards of at most ``execution.shard_size`` instances."""
    groups: dict[tuple, list[InstanceId]] = {}
    for i in instances(spec):
        groups.setdefault((i.activation, i.weights, i.K, i.N), []).append(i)
    size = spec.execution.shard_size
    shards = []
    for (act, w, K, N), ids in groups.items():
        solver = spec.solver_for(w)
        for start in range(0, len(ids), size):
            chunk = tuple(ids[start : start + size])
            sid = _shard_id(chunk, solver, spec.probes)
            shards.append(Shard(sid, act, w, K, N, solver, spec.probes, chunk))
    return shards
