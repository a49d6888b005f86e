"""Run a scan: plan shards, skip the complete ones, run the rest on a backend.

``run_scan(spec, out, ...)`` is the library entry point behind ``relu-landscape scan``.
Backends: "ray" (``scan.ray_backend``: embedded local Ray, or a cluster address) and
"local" (``scan.local``: in-process). Both run ``scan.runner.execute`` per shard.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from relu_landscape import store
from relu_landscape.config import ScanSpec
from relu_landscape.errors import InvalidConfigError
from relu_landscape.scan.plan import Shard, plan_shards

BACKENDS = {"ray": "relu_landscape.scan.ray_backend", "local": "relu_landscape.scan.local"}


@dataclass
class ScanReport:
    """What a scan did. ``failed``: (shard_id, last error) of shards that kept failing."""

    out: str
    shards: int
    run: int
    skipped: int
    instances_run: int
    wall_s: float
    retried: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def instances_per_s(self) -> float:
        return self.instances_run / self.wall_s if self.wall_s > 0 else 0.0


def pending(shards: list[Shard], out: str | Path) -> list[Shard]:
    """Shards whose runs file is missing, truncated, corrupt or of another shard."""
    return [
        s for s in shards
        if not store.shard_complete(
            store.shard_path(out, "runs", s.activation, s.weights, s.K, s.shard_id),
            s.shard_id, s.size)
    ]


def _check_same_spec(spec: ScanSpec, out: Path, resume: bool) -> None:
    marker = out / "scan.json"
    if not marker.exists():
        return
    previous = json.loads(marker.read_text()).get("config_hash")
    if previous != spec.config_hash:
        raise InvalidConfigError(
            f"--out: {out} holds results of another spec (config hash {previous}, this one "
            f"{spec.config_hash}); choose a new --out directory"
        )
    if not resume:
        raise InvalidConfigError(
            f"--out: {out} already holds results of this spec; pass --resume to complete "
            "it (complete shards are kept) or choose a new --out directory"
        )


def run_scan(spec: ScanSpec, out: str | Path, *, resume: bool = False,
             progress: bool = True) -> ScanReport:
    """Run every pending shard of ``spec`` into ``out`` and return a report.

    One writer per output (``store.WriterLock``); complete shards are skipped, so an
    interrupted scan rerun with ``resume=True`` ends with the same dataset.
    """
    out = Path(out)
    shards = plan_shards(spec)
    backend = importlib.import_module(BACKENDS[spec.execution.backend])
    with store.WriterLock(out):
        _check_same_spec(spec, out, resume)
        provenance = store.Provenance(config_hash=spec.config_hash)
        store.write_json(out / "scan.json", {
            "config_hash": spec.config_hash, "spec": dataclasses.asdict(spec),
            "provenance": dataclasses.asdict(provenance),
        })
        todo = pending(shards, out)
        report = ScanReport(str(out), len(shards), len(todo), len(shards) - len(todo),
                            sum(s.size for s in todo), 0.0)
        bar = tqdm(total=report.instances_run, unit="inst", disable=not progress,
                   desc=f"{len(todo)} shards", dynamic_ncols=True)
        solved = [0]

        def on_done(summary: dict) -> None:
            solved[0] += summary["solved"]
            bar.update(summary["instances"])
            bar.set_postfix(solved=f"{solved[0]}/{bar.n}")

        def on_retry(shard_id: str, error: str) -> None:
            report.retried.append((shard_id, error))
            bar.write(f"retrying shard {shard_id}: {error}")

        started = time.perf_counter()
        report.failed = backend.run_shards(todo, str(out), provenance, spec.execution,
                                           on_done=on_done, on_retry=on_retry)
        report.wall_s = time.perf_counter() - started
        bar.close()
    return report
