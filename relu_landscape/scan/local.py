"""The in-process backend: the same shard loop without Ray (debugging, quick runs)."""

from __future__ import annotations

from typing import Callable

from relu_landscape.config import Execution
from relu_landscape.scan import runner
from relu_landscape.scan.plan import Shard
from relu_landscape.store import Provenance


def run_shards(shards: list[Shard], root: str, provenance: Provenance,
               execution: Execution, *, on_done: Callable[[dict], None],
               on_retry: Callable[[str, str], None] | None = None) -> list[tuple[str, str]]:
    """Run shards one after another; return (shard_id, last error) of failed ones."""
    failures = []
    for shard in shards:
        for attempt in range(execution.max_retries + 1):
            try:
                on_done(runner.execute(shard, root, provenance, device=execution.device,
                                       torch_threads=execution.torch_threads))
                break
            except Exception as exc:  # noqa: BLE001 - reported per shard, scan goes on
                error = f"{type(exc).__name__}: {exc}"
                if attempt < execution.max_retries and on_retry is not None:
                    on_retry(shard.shard_id, error)
        else:
            failures.append((shard.shard_id, error))
    return failures
