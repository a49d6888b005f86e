"""Run a scan: plan shards, skip the complete ones, run the rest on a backend.

``run_scan(spec, out, ...)`` is the library entry point behind ``relu-landscape scan``.
Backends: "ray" (``scan.ray_backend``: embedded local Ray, or a cluster address) and
"local" (``scan.local``: in-process). Both run ``scan.runner.execute`` per shard and
expose ``connect(execution)``, a context manager yielding a pool with
``device_kind`` and ``run(shards, root, provenance, events)``.

Rerunning the same spec into the same output resumes it: every shard whose files are
complete and valid is skipped, missing or corrupt ones are recomputed, so the final
dataset equals that of an uninterrupted run.

Order of a run: checks that only read (the output is usable and not leased, its
``scan.json`` is this spec's, no shard files from another plan), then the backend
connects (device, cluster address), then the lease is taken and the plan written.
So an error that is the user's to fix leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import importlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from relu_landscape import store
from relu_landscape.config import ScanSpec
from relu_landscape.errors import InvalidConfigError
from relu_landscape.scan import estimate
from relu_landscape.scan.plan import (
    Shard,
    cell_of,
    instances,
    largest_instance_bytes,
    plan_shards,
    shard_size_for,
)
from relu_landscape.scan.progress import Progress

BACKENDS = {
    "ray": "relu_landscape.scan.ray_backend",
    "local": "relu_landscape.scan.local",
}


@dataclass
class ScanReport:
    """What a scan did. ``failed``/``retried``: (shard_id, error); ``nodes``: shards
    completed per Ray node id ("local" for the local backend)."""

    out: str
    shards: int
    run: int
    skipped: int
    instances_run: int
    wall_s: float
    retried: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    nodes: dict[str, int] = field(default_factory=dict)

    @property
    def instances_per_s(self) -> float:
        return self.instances_run / self.wall_s if self.wall_s > 0 else 0.0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    """Make SIGTERM end this process like Ctrl-C (main thread only; elsewhere no-op)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler or ``kill``) ends the scan like Ctrl-C: workers stopped,
    the lease released, exit code 130; the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def pending(shards: list[Shard], out: str | Path | store.Output) -> list[Shard]:
    """Shards with a missing, truncated or corrupt file in any table.

    The runs file, written last, must be complete with one row per instance; every
    other table's file of the shard, where present, must be valid too.
    """
    out = store.output(out)
    others = {}
    for path in store.shard_files(out):
        if path.parents[3].name != "runs":
            others.setdefault(path.stem, []).append(path)
    return [
        s
        for s in shards
        if not store.shard_complete(
            store.shard_path(out, "runs", s.activation, s.weights, s.K, s.shard_id),
            s.shard_id,
            s.size,
            out.fs,
        )
        or not all(
            store.shard_complete(p, s.shard_id, fs=out.fs)
            for p in others.get(s.shard_id, [])
        )
    ]


def _previous(out: store.Output, spec: ScanSpec) -> dict:
    """The ``scan.json`` of ``out`` if any; refuses one written for another spec."""
    previous = out.read_json("scan.json")
    if previous is None:
        return {}
    if previous.get("config_hash") != spec.config_hash:
        raise InvalidConfigError(
            f"--out: {out} holds results of another spec (config hash "
            f"{previous.get('config_hash')}, this one {spec.config_hash}); "
            "choose a new --out directory"
        )
    size = spec.execution.shard_size
    if size and previous.get("shard_size") not in (None, size):
        raise InvalidConfigError(
            f"execution.shard_size: {out} was planned with shard_size = "
            f"{previous['shard_size']}, not {size}; omit it or pass "
            f"{previous['shard_size']} to resume (another size would plan other shards)"
        )
    return previous


def _check_no_strangers(shards: list[Shard], out: store.Output) -> None:
    known = {s.shard_id for s in shards}
    strangers = [p for p in store.shard_files(out) if p.stem not in known]
    if strangers:
        raise InvalidConfigError(
            f"--out: {len(strangers)} shard file(s) under {out} "
            f"(e.g. {strangers[0]}) are "
            "not in this scan's plan (another package version or shard size); "
            "choose a new --out directory or move them away"
        )


def _preflight(spec: ScanSpec, out: store.Output) -> tuple[int, list[Shard] | None]:
    """Every check that reads only: the output is usable and not locked, its
    ``scan.json`` is this spec's, and no stranger shard files. Returns (shard size,
    pending shards), both unknown (0, None) until the workers' device type is."""
    store.check_writable(out)
    store.WriterLock(out).check()
    size = _previous(out, spec).get("shard_size") or spec.execution.shard_size
    if not size:
        return 0, None
    shards = plan_shards(spec, size)
    _check_no_strangers(shards, out)
    return size, pending(shards, out)


def _plan(
    spec: ScanSpec, out: store.Output, size: int, provenance: store.Provenance,
    budget: int | None = None, device: str = "cpu",
) -> tuple[list[Shard], list[Shard]]:
    """(all shards, pending shards costliest first) of ``spec`` at this shard size;
    records the plan in ``OUT/scan.json`` with the memory budget it came from (bytes
    per worker, None when not measured) and the estimate per instance; a resumed
    scan keeps its first record (None for scans from before the budget). The order is
    ``estimate.by_cost`` on the workers' ``device`` kind. Runs under the writer lock."""
    previous = _previous(out, spec)  # again: another scan may have written OUT since
    shards = plan_shards(spec, size)
    _check_no_strangers(shards, out)
    out.write_json(
        "scan.json",
        {
            "config_hash": spec.config_hash,
            "shard_size": size,
            "memory": previous.get("memory") if previous else {
                "budget_bytes": budget,
                "fraction": spec.execution.memory_fraction,
                "bytes_per_instance": largest_instance_bytes(spec),
            },
            "spec": dataclasses.asdict(spec),
            "provenance": dataclasses.asdict(provenance),
        },
    )
    store.remove_temporaries(out)
    cal = estimate.dispatch_calibration(device, spec)
    return shards, estimate.by_cost(pending(shards, out), cal)


def run_scan(
    spec: ScanSpec,
    out: str | Path,
    *,
    progress: bool = True,
    on_dispatch: Callable[[Shard, dict], None] | None = None,
) -> ScanReport:
    """Run every pending shard of ``spec`` into ``out`` and return a report.

    ``out``: a local path (made absolute here) or a ``pyarrow.fs`` URI. Whatever is
    the user's to fix (the output, the device, the cluster address) is refused with a
    ``ReluLandscapeError`` before anything is written. One writer per output
    (``store.WriterLock``, else ``StoreLockedError``). Complete shards are skipped, so
    rerunning an interrupted scan completes it; when nothing is pending no backend is
    started. ``on_dispatch(shard, {"pid", "node_id"})`` is called whenever a shard is
    handed to a worker (monitoring; fault injection).
    """
    target = store.output(out)
    backend = importlib.import_module(BACKENDS[spec.execution.backend])
    size, todo = _preflight(spec, target)
    with ExitStack() as stack:
        stack.enter_context(_sigterm_as_interrupt())
        pool = None
        if todo is None or todo:  # work to do: connect first (device, address)
            pool = stack.enter_context(backend.connect(spec.execution))
            size = size or shard_size_for(spec, pool.device_kind, pool.memory_budget)
        stack.enter_context(store.WriterLock(target))
        provenance = store.Provenance(config_hash=spec.config_hash)
        budget = getattr(pool, "memory_budget", None)
        device = getattr(pool, "device_kind", "cpu")
        shards, todo = _plan(spec, target, size, provenance, budget, device)
        report = ScanReport(
            target.uri,
            len(shards),
            len(todo),
            len(shards) - len(todo),
            sum(s.size for s in todo),
            0.0,
        )
        if todo and pool is None:  # a shard went missing since the preflight
            pool = stack.enter_context(backend.connect(spec.execution))
        cells = len({cell_of(i, k) for i in instances(spec) for k in spec.grid.kappa})
        events = Progress(
            todo, cells, enabled=progress and bool(todo), hook=on_dispatch
        )
        started = time.perf_counter()
        try:
            if todo:
                report.failed = pool.run(todo, target.uri, provenance, events)
        finally:
            report.wall_s = time.perf_counter() - started
            events.close()
        report.retried, report.nodes = events.retried, dict(events.nodes)
    return report
