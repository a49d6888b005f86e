"""What a backend reports while it runs shards, and the live progress bar fed by it.

Backends call ``Events`` from the driver process only: ``on_dispatch`` when a shard
is handed to a worker (``worker`` = {"pid", "node_id"}), ``on_done`` with the
worker's summary when its files are written, ``on_retry`` when it failed and is
queued again. ``Progress`` turns these into a tqdm bar (instances, instances per
second and ETA from tqdm; shards and grid cells done, solved count) and the counts of
the final ``ScanReport``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Protocol

from tqdm import tqdm

from relu_landscape.scan.plan import Shard


class Events(Protocol):
    """Driver-side callbacks of a backend (see module docstring)."""

    def on_dispatch(self, shard: Shard, worker: dict) -> None: ...

    def on_done(self, summary: dict) -> None: ...

    def on_retry(self, shard: Shard, error: str) -> None: ...


class Progress:
    """Counts what a scan did and shows it live (disabled: counts only).

    ``cells_total`` and ``cells_left`` count grid cells (``plan.cell_of``); a cell is
    done when all its pending instances are. ``hook``, if given, is called on every
    dispatch after the bar is updated (monitoring; tests use it to inject faults).
    """

    def __init__(
        self,
        todo: list[Shard],
        cells_total: int,
        *,
        enabled: bool,
        hook: Callable[[Shard, dict], None] | None = None,
    ):
        self.by_id = {s.shard_id: s for s in todo}
        self.cells_left: Counter = Counter()
        for shard in todo:
            self.cells_left.update(shard.cells)
        self.cells_total = cells_total
        self.nodes: Counter = Counter()
        self.retried: list[tuple[str, str]] = []
        self.shards_done = self.solved = 0
        self.hook = hook
        self.bar = tqdm(
            total=sum(s.size for s in todo),
            unit="inst",
            disable=not enabled,
            desc=f"{len(todo)} shards",
            dynamic_ncols=True,
        )
        self._refresh()

    def _refresh(self) -> None:
        cells_done = self.cells_total - sum(1 for v in self.cells_left.values() if v)
        self.bar.set_postfix_str(
            f"shards {self.shards_done}/{len(self.by_id)}, cells {cells_done}/"
            f"{self.cells_total}, solved {self.solved}/{self.bar.n}"
        )

    def on_dispatch(self, shard: Shard, worker: dict) -> None:
        if self.hook is not None:
            self.hook(shard, worker)

    def on_done(self, summary: dict) -> None:
        shard = self.by_id[summary["shard_id"]]
        self.cells_left.subtract(shard.cells)
        self.nodes[summary["node_id"]] += 1
        self.shards_done += 1
        self.solved += summary["solved"]
        self.bar.update(summary["instances"])
        self._refresh()

    def on_retry(self, shard: Shard, error: str) -> None:
        self.retried.append((shard.shard_id, error))
        self.bar.write(f"retrying shard {shard.shard_id}: {error}")

    def close(self) -> None:
        self.bar.close()
