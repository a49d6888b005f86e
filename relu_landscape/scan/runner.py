"""Run one shard: instances -> solver -> (probes) -> Arrow tables -> store.

Plain Python and torch; the same function runs in-process (local backend) and inside a
Ray actor. Never imports ray.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable

import pyarrow as pa
import torch

from relu_landscape import model, store
from relu_landscape.errors import DeviceError
from relu_landscape.instances import InstanceId, make_batch, stream_key
from relu_landscape.probes import PROBES
from relu_landscape.probes import enumerate as enumeration
from relu_landscape.scan.plan import Shard
from relu_landscape.solvers import SOLVERS


def pick_device(preference: str = "auto") -> str:
    """'cuda' when asked for or available ('auto'), else 'cpu'; ``DeviceError`` when
    'cuda' is asked for and torch here sees none."""
    if preference == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"--device cuda: torch {torch.__version__} on {socket.gethostname()} sees no "
            "CUDA device; use --device auto or cpu, or a machine with a CUDA build of torch"
        )
    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return preference


def available_ram() -> int:
    """Bytes of RAM available to new allocations on this machine: MemAvailable of
    /proc/meminfo (free plus reclaimable cache) where there is one, else the free
    physical pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def memory_budget(device_kind: str, fraction: float, share: float = 1.0) -> int:
    """Bytes a shard may use on this machine: ``fraction`` of the free memory of the
    current CUDA device (``torch.cuda.mem_get_info``) or of the available RAM, times
    ``share``, this worker's part of it (several workers on one GPU or host)."""
    if device_kind == "cuda":
        free = torch.cuda.mem_get_info()[0]
    else:
        free = available_ram()
    return int(free * fraction * share)


# Binary instances up to this N are also decided exactly (runs.solvable). Only the
# instances the solver did not solve are enumerated; an unsolvable one at N = 24 takes
# 6-8 s on one (shared) CPU core, one at N = 20 about 16 times less.
SOLVABLE_MAX_N = 24


def exact_solvable(shard: Shard, batch: model.TorchBatch,
                   solved: torch.Tensor) -> list[bool | None]:
    """runs.solvable: True where solved, else decided by enumeration; None where the
    weights are continuous or N > SOLVABLE_MAX_N."""
    if shard.weights != "binary" or shard.N > SOLVABLE_MAX_N:
        return [None] * shard.size
    out = solved.clone()
    pick = torch.nonzero(~solved).flatten()
    if len(pick):
        out[pick] = enumeration.solvable(batch.rows(pick), shard.activation)
    return out.cpu().tolist()


def run_shard(shard: Shard, device: str) -> dict[str, pa.Table]:
    """Train every instance of ``shard`` on ``device``; return its tables by name."""
    ids = list(shard.ids)
    batch = model.to_torch(make_batch(ids), device, shard.kappa)
    solve = SOLVERS[shard.solver.name]
    keys = [stream_key(i, shard.solver.name) for i in ids]
    res = solve(batch, shard.activation, shard.solver.params, keys)
    with torch.no_grad():
        stab = batch.stability(res.weights, shard.activation)
        min_stab = torch.where(batch.mask, stab, torch.inf).min(-1).values
    P = [i.P for i in ids]
    runs = {
        "run_id": [i.run_id for i in ids],
        "N": [i.N for i in ids],
        "n": [i.n for i in ids],
        "P": P,
        "alpha": [i.alpha for i in ids],
        "kappa": [shard.kappa] * len(ids),
        "seed": [i.seed for i in ids],
        "s": [i.s for i in ids],
        "inputs": [i.inputs for i in ids],
        "solver": [shard.solver.name] * len(ids),
        "solver_params": [json.dumps(dataclasses.asdict(shard.solver.params),
                                     sort_keys=True)] * len(ids),
        "solved": res.solved.cpu().tolist(),
        "errors": res.errors.cpu().tolist(),
        "error_frac": (res.errors.cpu().double() / torch.tensor(P)).tolist(),
        "min_stability": min_stab.double().cpu().tolist(),
        "solvable": exact_solvable(shard, batch, res.solved),
        "steps": res.steps.cpu().tolist(),
        "wall_s": [res.wall_s] * len(ids),
        "batch_size": [len(ids)] * len(ids),
        "device": [device] * len(ids),
        "shard_id": [shard.shard_id] * len(ids),
    }
    tables = probe_tables(shard, batch, res.weights, res.solved)
    return {**tables, "runs": pa.Table.from_pydict(runs, schema=store.RUNS_SCHEMA)}


RunShard = Callable[[Shard, str], dict[str, pa.Table]]


def run_split(shard: Shard, device: str,
              run: RunShard = run_shard) -> dict[str, pa.Table]:
    """``run(shard, device)``; on a CUDA out-of-memory error, the two halves of the
    shard's instances one after the other (recursively, down to one instance, which
    re-raises), their tables concatenated in instance order.

    Every instance gives the same numbers in any batch (the solvers' and probes'
    contract), so the rows equal an unsplit run's but for ``wall_s`` and
    ``batch_size``, which report the batch actually trained. ``run``: a seam for tests.
    """
    try:
        return run(shard, device)
    except torch.cuda.OutOfMemoryError:
        if shard.size == 1:
            raise
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    half = shard.size // 2
    parts = [run_split(dataclasses.replace(shard, ids=ids), device, run)
             for ids in (shard.ids[:half], shard.ids[half:])]
    names = dict.fromkeys(name for part in parts for name in part)
    return {name: pa.concat_tables([p[name] for p in parts if name in p])
            for name in names}


def probe_tables(shard: Shard, batch: model.TorchBatch, weights: torch.Tensor,
                 solved: torch.Tensor) -> dict[str, pa.Table]:
    """Run every configured probe that applies to the shard's weight type on its solved
    instances; one table per probe (none when no row), keyed by run_id."""
    pick = torch.nonzero(solved).flatten()
    ids: list[InstanceId] = [shard.ids[b] for b in pick.tolist()]
    sub = batch.rows(pick)
    tables = {}
    for spec in shard.probes:
        probe = PROBES[spec.name]
        if not ids or shard.weights not in probe.weights:
            continue
        keys = [stream_key(i, f"probe/{spec.name}") for i in ids]
        with torch.no_grad():
            result = probe.run(sub, weights[pick], activation=shard.activation,
                               weights=shard.weights, params=spec.params, keys=keys)
        if len(result.instance) == 0:
            continue
        rows = [ids[r] for r in result.instance]
        columns = {"run_id": [i.run_id for i in rows], "N": [i.N for i in rows],
                   "alpha": [i.alpha for i in rows], "kappa": [shard.kappa] * len(rows),
                   "solver": [shard.solver.name] * len(rows),
                   **{k: pa.array(v, from_pandas=True) for k, v in result.columns.items()}}
        tables[spec.name] = pa.table(columns).cast(store.SCHEMAS[spec.name])
    return tables


def execute(shard: Shard, root: str, provenance: store.Provenance, *,
            device: str = "auto", torch_threads: int = 1) -> dict:
    """Run a shard and write its files; return a small summary for the driver.

    The runs file is written last: its presence marks the shard complete for resume.
    """
    torch.set_num_threads(torch_threads)
    dev = pick_device(device)
    started = time.perf_counter()
    out = run_split(shard, dev)
    for name in sorted(out, key=lambda t: t == "runs"):
        store.write_shard(root, name, out[name], activation=shard.activation,
                          weights=shard.weights, K=shard.K, shard_id=shard.shard_id,
                          provenance=provenance, device=dev)
    solved = sum(out["runs"].column("solved").to_pylist())
    return {"shard_id": shard.shard_id, "instances": shard.size, "solved": solved,
            "wall_s": time.perf_counter() - started, "device": dev}
