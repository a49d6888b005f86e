"""The Ray backend: a pool of actors, one per GPU (or per CPU slot), running shards.

The only module of the package that imports ray. Each actor wraps the plain
``runner.execute``; the driver keeps one shard in flight per actor (``ray.wait``
backpressure), replaces an actor that dies and re-queues its shard, and retries a
failing shard up to ``execution.max_retries`` times before reporting it.
Writes are idempotent (one file per shard id, atomic rename), so a re-run never
duplicates rows.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from typing import Callable

import ray

from relu_landscape.config import Execution
from relu_landscape.scan import runner
from relu_landscape.scan.plan import Shard
from relu_landscape.store import Provenance


class ShardWorker:
    """Runs shards on its node's device and writes their files under ``root``."""

    def __init__(self, root: str, provenance: Provenance, device: str, torch_threads: int):
        self.root, self.provenance = root, provenance
        self.device, self.torch_threads = device, torch_threads

    def pid(self) -> int:
        return os.getpid()

    def run(self, shard: Shard) -> dict:
        summary = runner.execute(shard, self.root, self.provenance, device=self.device,
                                 torch_threads=self.torch_threads)
        summary["node_id"] = ray.get_runtime_context().get_node_id()
        summary["pid"] = os.getpid()
        return summary


def init_local(num_cpus: int | None = None) -> None:
    """Start an in-process Ray bound to 127.0.0.1, without the dashboard."""
    ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             configure_logging=False, log_to_driver=False)


def _pool_size(execution: Execution, use_gpu: bool, resources: dict) -> int:
    if execution.workers:
        return execution.workers
    if use_gpu:
        return int(resources.get("GPU", 0))
    return max(1, int(resources.get("CPU", 1) // execution.torch_threads))


def run_shards(shards: list[Shard], root: str, provenance: Provenance,
               execution: Execution, *, on_done: Callable[[dict], None],
               on_retry: Callable[[str, str], None] | None = None) -> list[tuple[str, str]]:
    """Run ``shards`` on Ray; return (shard_id, last error) of those that kept failing.

    Connects to ``execution.address`` when set, else to a running Ray in this process,
    else starts a local one (and shuts it down at the end).
    """
    started_here = not ray.is_initialized()
    if started_here:
        if execution.address:
            ray.init(address=execution.address, configure_logging=False)
        else:
            init_local()
    pool: list = []
    try:
        resources = ray.cluster_resources()
        use_gpu = resources.get("GPU", 0) >= 1 and execution.device != "cpu"
        actor_cls = ray.remote(ShardWorker).options(
            num_gpus=1 if use_gpu else 0,
            num_cpus=1 if use_gpu else execution.torch_threads,
            max_restarts=0,
        )
        args = (root, provenance, execution.device, execution.torch_threads)
        pool = [actor_cls.remote(*args)
                for _ in range(min(_pool_size(execution, use_gpu, resources), len(shards)))]
        return _drive(shards, pool, lambda: actor_cls.remote(*args), execution.max_retries,
                      on_done, on_retry)
    finally:
        for actor in pool:
            ray.kill(actor)
        if started_here:
            ray.shutdown()


def _drive(shards, pool, new_actor, max_retries, on_done, on_retry):
    queue, idle = deque(shards), list(pool)
    inflight: dict = {}
    attempts: Counter = Counter()
    failures = []
    while queue or inflight:
        while idle and queue:
            actor, shard = idle.pop(), queue.popleft()
            inflight[actor.run.remote(shard)] = (actor, shard)
        (ref,), _ = ray.wait(list(inflight), num_returns=1)
        actor, shard = inflight.pop(ref)
        try:
            on_done(ray.get(ref))
            idle.append(actor)
            continue
        except ray.exceptions.RayActorError as exc:
            pool.append(replacement := new_actor())
            idle.append(replacement)
            error = f"worker died: {type(exc).__name__}"
        except ray.exceptions.RayTaskError as exc:
            idle.append(actor)
            error = str(exc.cause if exc.cause is not None else exc).splitlines()[-1]
        attempts[shard.shard_id] += 1
        if attempts[shard.shard_id] <= max_retries:
            queue.append(shard)
            if on_retry is not None:
                on_retry(shard.shard_id, error)
        else:
            failures.append((shard.shard_id, error))
    return failures
