"""Grid -> instances -> shards (torch- and ray-free).

A shard is the unit of work, of writing and of resume: instances that share
(activation, weights, K, N), the margin kappa and the solver, so they train as one
batch (the instances, and so the patterns, are the same at every kappa). Instances are
ordered seed-major, so all alphas of a seed land in the same shard and share one
pattern matrix (alpha grid = prefixes). A shard's id is a content hash of its
instances, its solver and probe settings and the result-schema version.

Shard size is a number of instances: ``execution.shard_size``, or when that is 0 the
largest size whose estimated memory (``bytes_per_instance`` of the grid's largest
shape) fits the workers' memory budget, capped by the device type's default
(``DEFAULT_SHARD_SIZE``: a GPU call is only efficient with a large batch, a CPU worker
wants short shards for fine-grained resume and load balance). The size chosen is
recorded in ``OUT/scan.json`` and reused on resume, since another size would plan
other shards; the instances and their seeds never depend on it.
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
"""Most instances per shard when ``execution.shard_size`` is 0, by device type."""


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
    kappa: float = 0.0

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def cells(self) -> dict[tuple, int]:
        """Instances of this shard per grid cell (``cell_of``)."""
        counts: dict[tuple, int] = {}
        for i in self.ids:
            cell = cell_of(i, self.kappa)
            counts[cell] = counts.get(cell, 0) + 1
        return counts


def cell_of(i: InstanceId, kappa: float = 0.0) -> tuple:
    """The grid cell of an instance at margin kappa: (activation, weights, K, N, alpha,
    kappa); seeds vary."""
    return (i.activation, i.weights, i.K, i.N, i.alpha, kappa)


def _shard_id(ids, solver: SolverSpec, probes, kappa: float = 0.0) -> str:
    blob = json.dumps(
        {
            "schema": SCHEMA_VERSION,
            "kappa": kappa,
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
        for alpha in g.alphas(w)
    ]


def bytes_per_instance(K: int, N: int, P: int, inputs: str, solver: SolverSpec,
                       probes: tuple[ProbeSpec, ...] = ()) -> int:
    """Estimated device memory (bytes) one instance adds to a shard: an upper bound of
    what grows with the batch, not the fixed chunked work (``model.WORK_BYTES``).

    Terms: its pattern matrix counted as its own (int8 or float32), a transposed copy
    (flip cache) and the float32 unit-major copy the training kernels read; weights
    and optimiser state (32 bytes a weight per replica); the solver's per-(pattern,
    unit) fields (float32 fields of every replica and their autograd temporaries for
    descent, float64 messages and the ReLU output factor's quadrature for BP); the
    walks' per-walker state and normals (the other probes work in chunks of
    instances). bench's ``peak_bytes_per_instance`` measures it.
    """
    x = 1 if inputs == "binary" else 4
    replicas = getattr(solver.params, "replicas", 1)
    if solver.name == "bp":
        Q, C = solver.params.quadrature, 2 ** (K - 1) if K <= 6 else 2
        per_field = 8 * (32 + K + 4 * Q + 3 * C * Q)
    else:
        per_field = 64 * replicas
    total = (2 * x + 4) * P * N + 32 * replicas * N + per_field * P * K
    for probe in probes:
        p = probe.params
        if probe.name == "walks":
            # flip cache per walker, the positions at every checkpoint, and one
            # checkpoint's normals (continuous weights: float64 uniforms and float32)
            stride = -(-p.steps // p.checkpoints)
            total += p.walkers * (4 * P * (K + 3) + 4 * N * (p.checkpoints + 2)
                                  + 12 * N * stride)
        elif probe.name == "enumerate" and N <= p.max_N:
            total += 2 * K * 4096 * P
    return total


def largest_instance_bytes(spec: ScanSpec) -> int:
    """``bytes_per_instance`` of the grid's most demanding (shape, solver, P)."""
    worst: dict[tuple, int] = {}
    for i in instances(spec):
        key = (i.weights, i.K, i.N)
        worst[key] = max(worst.get(key, 0), i.P)
    return max(
        bytes_per_instance(K, N, P, spec.inputs, solver, spec.probes)
        for (w, K, N), P in worst.items()
        for solver in spec.solvers_for(w)
    )


def shard_size_for(spec: ScanSpec, device_kind: str, budget: int | None = None) -> int:
    """Instances per shard: ``execution.shard_size``, else as many as fit in
    ``budget`` bytes (``largest_instance_bytes`` each), at least 1 and at most the
    device type's default; the default when the budget is unknown (None)."""
    if spec.execution.shard_size:
        return spec.execution.shard_size
    cap = DEFAULT_SHARD_SIZE[device_kind]
    if budget is None:
        return cap
    return max(1, min(cap, budget // largest_instance_bytes(spec)))


def plan_shards(spec: ScanSpec, size: int) -> list[Shard]:
    """Split the grid into shards of <= ``size`` instances of one shape and solver;
    with several solvers per weight type each trains every instance."""
    groups: dict[tuple, list[InstanceId]] = {}
    for i in instances(spec):
        groups.setdefault((i.activation, i.weights, i.K, i.N), []).append(i)
    shards = []
    for (act, w, K, N), ids in groups.items():
        for kappa in spec.grid.kappa:
            for solver in spec.solvers_for(w):
                for start in range(0, len(ids), size):
                    chunk = tuple(ids[start : start + size])
                    sid = _shard_id(chunk, solver, spec.probes, kappa)
                    shards.append(Shard(sid, act, w, K, N, solver, spec.probes, chunk,
                                        kappa))
    return shards
