"""Grid -> instances -> shards (torch- and ray-free).

A shard is the unit of work, of writing and of resume: instances that share
(activation, weights, K, N) and the solver, so they train as one batch. Instances are
ordered seed-major, so all alphas of a seed land in the same shard and share one
pattern matrix (alpha grid = prefixes). A shard's id is a content hash of its
instances, its solver and probe settings and the result-schema version.

Shard size is a number of instances: ``execution.shard_size``, or when that is 0 the
default for the device type the workers use (``DEFAULT_SHARD_SIZE``: a GPU call is
only efficient with a large batch, a CPU worker wants short shards for fine-grained
resume and load balance). The size chosen is recorded in ``OUT/scan.json`` and reused
on resume, since another size would plan other shards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from relu_landscape.config import ProbeSpec, ScanSpec, SolverSpec
from relu_landscape.instances import InstanceId
from relu_landscape.store import SCHEMA_VERSION

DEFAULT_SHARD_SIZE = {"cpu": 64, "cuda": 1024}
"""Instances per shard when ``execution.shard_size`` is 0, by device type."""


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

    @property
    def cells(self) -> dict[tuple, int]:
        """Instances of this shard per grid cell (``cell_of``)."""
        counts: dict[tuple, int] = {}
        for i in self.ids:
            counts[cell_of(i)] = counts.get(cell_of(i), 0) + 1
        return counts


def cell_of(i: InstanceId) -> tuple:
    """The grid cell of an instance: (activation, weights, K, N, alpha); seeds vary."""
    return (i.activation, i.weights, i.K, i.N, i.alpha)


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


def shard_size_for(spec: ScanSpec, device_kind: str) -> int:
    """Instances per shard: ``execution.shard_size``, else the device type's default."""
    return spec.execution.shard_size or DEFAULT_SHARD_SIZE[device_kind]


def plan_shards(spec: ScanSpec, size: int) -> list[Shard]:
    """Split the grid into shards of <= ``size`` instances of one shape and solver."""
    groups: dict[tuple, list[InstanceId]] = {}
    for i in instances(spec):
        groups.setdefault((i.activation, i.weights, i.K, i.N), []).append(i)
    shards = []
    for (act, w, K, N), ids in groups.items():
        solver = spec.solver_for(w)
        for start in range(0, len(ids), size):
            chunk = tuple(ids[start : start + size])
            sid = _shard_id(chunk, solver, spec.probes)
            shards.append(Shard(sid, act, w, K, N, solver, spec.probes, chunk))
    return shards
