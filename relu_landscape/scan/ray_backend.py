"""The Ray backend: a pool of actors, one per GPU (or per CPU slot), running shards.

The only module of the package that imports ray. Each actor wraps the plain
``runner.execute`` and writes its shard's files itself (the output must be a path
every node sees: a shared filesystem, or a local path on one machine). The driver:

- waits for each actor to start before giving it work, and keeps one shard in flight
  per actor (``ray.wait`` backpressure);
- replaces an actor that dies (its process or its node) and re-queues its shard; a
  replacement that cannot be placed (the node is gone and nothing else fits) is not
  waited for once the queue is empty, so a lost node never hangs the scan;
- retries a failing shard up to ``execution.max_retries`` times, then reports it
  with its last error and goes on with the rest.

Writes are idempotent (one file per shard id, atomic rename), so a re-run never
duplicates rows. A local Ray (the default) binds every port to 127.0.0.1 and starts
no dashboard.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager

import ray

from relu_landscape.config import Execution
from relu_landscape.scan import runner
from relu_landscape.scan.plan import Shard
from relu_landscape.scan.progress import Events
from relu_landscape.store import Provenance


class ShardWorker:
    """Runs shards on its node's device and writes their files under ``root``."""

    def __init__(
        self, root: str, provenance: Provenance, device: str, torch_threads: int
    ):
        self.root, self.provenance = root, provenance
        self.device, self.torch_threads = device, torch_threads
        self.where = {
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
        }

    def ready(self) -> dict:
        """{"pid", "node_id"} of this worker; returns once the actor has started."""
        return self.where

    def run(self, shard: Shard) -> dict:
        summary = runner.execute(
            shard,
            self.root,
            self.provenance,
            device=self.device,
            torch_threads=self.torch_threads,
        )
        return {**summary, **self.where}


def init_local(num_cpus: int | None = None) -> None:
    """Start a new in-process Ray on 127.0.0.1 without the dashboard.

    ``address="local"``: never join another Ray found on this machine (Ray's default
    would connect to the latest ``ray start`` head, e.g. another user's).
    """
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        configure_logging=False,
        log_to_driver=False,
    )


class RayPool:
    """Actors on the connected Ray cluster; ``device_kind`` is what they compute on."""

    def __init__(self, execution: Execution):
        self.execution = execution
        resources = ray.cluster_resources()
        self.use_gpu = resources.get("GPU", 0) > 0 and execution.device != "cpu"
        self.device_kind = "cuda" if self.use_gpu else "cpu"
        if execution.workers:
            self.size = execution.workers
        elif self.use_gpu:
            self.size = max(1, int(resources["GPU"] / execution.gpus_per_worker))
        else:
            self.size = max(1, int(resources.get("CPU", 1) // execution.torch_threads))

    def run(
        self, shards: list[Shard], root: str, provenance: Provenance, events: Events
    ) -> list[tuple[str, str]]:
        """Run ``shards``; return (shard_id, last error) of those that kept failing."""
        ex = self.execution
        actor_cls = ray.remote(ShardWorker).options(
            num_gpus=ex.gpus_per_worker if self.use_gpu else 0,
            num_cpus=1 if self.use_gpu else ex.torch_threads,
            max_restarts=0,
        )
        driver = _Driver(
            lambda: actor_cls.remote(root, provenance, ex.device, ex.torch_threads),
            ex.max_retries,
            events,
        )
        try:
            return driver.drive(shards, min(self.size, len(shards)))
        finally:
            for actor in driver.actors:
                ray.kill(actor)


class _Driver:
    """The dispatch loop: actors start, run shards, die and are replaced."""

    def __init__(self, new_actor, max_retries: int, events: Events):
        self.new_actor, self.max_retries, self.events = new_actor, max_retries, events
        self.actors: list = []
        self.idle: list = []  # (actor, where) ready for a shard
        # ObjectRef -> (actor, where, shard); shard None while the actor starts
        self.inflight: dict = {}
        self.attempts: Counter = Counter()
        self.failures: list[tuple[str, str]] = []

    def _start(self) -> None:
        actor = self.new_actor()
        self.actors.append(actor)
        self.inflight[actor.ready.remote()] = (actor, None, None)

    def _running(self) -> bool:
        return any(shard is not None for _, _, shard in self.inflight.values())

    def drive(self, shards: list[Shard], pool_size: int) -> list[tuple[str, str]]:
        queue = deque(shards)
        for _ in range(pool_size):
            self._start()
        while queue or self._running():
            while self.idle and queue:
                (actor, where), shard = self.idle.pop(), queue.popleft()
                self.inflight[actor.run.remote(shard)] = (actor, where, shard)
                self.events.on_dispatch(shard, where)
            if not self.inflight:  # every actor died and none could be replaced
                self.failures += [(s.shard_id, "no worker left") for s in queue]
                break
            (ref,), _ = ray.wait(list(self.inflight), num_returns=1)
            self._settle(ref, queue)
        return self.failures

    def _settle(self, ref, queue: deque) -> None:
        actor, where, shard = self.inflight.pop(ref)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayError as exc:
            if shard is None:  # could not start: not replaced, to avoid a loop
                return
            if isinstance(exc, ray.exceptions.RayActorError):
                error = f"worker died ({type(exc).__name__})"
                self._start()
            else:
                cause = getattr(exc, "cause", None) or exc
                error = f"{type(cause).__name__}: {str(cause).splitlines()[-1]}"
                self.idle.append((actor, where))
        else:
            if shard is not None:
                self.events.on_done(result)
            self.idle.append((actor, where if shard is not None else result))
            return
        self.attempts[shard.shard_id] += 1
        if self.attempts[shard.shard_id] <= self.max_retries:
            queue.append(shard)
            self.events.on_retry(shard, error)
        else:
            self.failures.append((shard.shard_id, error))


@contextmanager
def connect(execution: Execution) -> Iterator[RayPool]:
    """A pool on ``execution.address``, else on the Ray of this process, else local.

    A Ray started here (local mode) is shut down on exit, also on Ctrl-C.
    """
    started_here = not ray.is_initialized()
    if started_here and execution.address:
        ray.init(address=execution.address, configure_logging=False)
    elif started_here:
        init_local(execution.workers * execution.torch_threads or None)
    try:
        yield RayPool(execution)
    finally:
        if started_here:
            ray.shutdown()
