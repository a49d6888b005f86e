"""The in-process backend: the same shard loop without Ray (debugging, quick runs)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from relu_landscape.config import Execution
from relu_landscape.scan import runner
from relu_landscape.scan.plan import Shard
from relu_landscape.scan.progress import Events
from relu_landscape.store import Provenance

NODE_ID = "local"


class LocalPool:
    """Runs shards one after another in this process, on ``execution.device``.

    memory_budget: bytes a shard may use (``runner.memory_budget``, the one worker
    has the whole device)."""

    def __init__(self, execution: Execution):
        self.execution = execution
        self.device_kind = runner.pick_device(execution.device)
        self.memory_budget = runner.memory_budget(self.device_kind,
                                                  execution.memory_fraction)

    def run(
        self, shards: list[Shard], root: str, provenance: Provenance, events: Events
    ) -> list[tuple[str, str]]:
        """Run ``shards``; return (shard_id, last error) of those that kept failing."""
        failures = []
        worker = {"pid": os.getpid(), "node_id": NODE_ID}
        for shard in shards:
            for attempt in range(self.execution.max_retries + 1):
                events.on_dispatch(shard, worker)
                try:
                    summary = runner.execute(
                        shard,
                        root,
                        provenance,
                        device=self.execution.device,
                        torch_threads=self.execution.torch_threads,
                    )
                except Exception as exc:  # noqa: BLE001 - reported per shard, scan goes on
                    error = f"{type(exc).__name__}: {exc}"
                    if attempt < self.execution.max_retries:
                        events.on_retry(shard, error)
                    continue
                events.on_done({**summary, **worker})
                break
            else:
                failures.append((shard.shard_id, error))
        return failures


@contextmanager
def connect(execution: Execution) -> Iterator[LocalPool]:
    """The local pool (nothing to start or stop)."""
    yield LocalPool(execution)
