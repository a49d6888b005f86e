"""The Ray backend: a pool of actors, one per GPU (or per CPU slot), running shards.

The only module of the package that imports ray. Each actor wraps the plain
``runner.execute`` and writes its shard's files itself, so the output must be
reachable from every node (a shared filesystem, an object store URI, or a local path
on one machine). Before its first shard each actor checks that it sees
``OUT/scan.json`` with this scan's config hash, and that a GPU it holds is one torch
sees; either failure stops the scan (``OutputError``, ``DeviceError``). The driver:

- waits for each actor to start before giving it work, and keeps one shard in flight
  per actor (``ray.wait`` backpressure, with a timeout so the watchdog runs);
- replaces an actor that dies (its process or its node) and re-queues its shard; a
  replacement that cannot be placed (the node is gone and nothing else fits) is not
  waited for once the queue is empty, so a lost node never hangs the scan;
- kills and replaces an actor whose shard runs longer than ``hang_s`` (a hung GPU
  or filesystem), then retries the shard like any failure;
- retries a failing shard up to ``execution.max_retries`` times, then reports it
  with its last error and goes on with the rest.

Writes are idempotent (one file per shard id, atomic), so a re-run never duplicates
rows. A local Ray (the default) binds every port to 127.0.0.1 and starts no
dashboard.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager

import ray

from relu_landscape import store
from relu_landscape.config import Execution
from relu_landscape.errors import (
    DeviceError,
    InvalidConfigError,
    OutputError,
    ReluLandscapeError,
)
from relu_landscape.scan import interrupt_on_sigterm, runner
from relu_landscape.scan.plan import Shard
from relu_landscape.scan.progress import Events
from relu_landscape.store import Provenance

HANG_S = float(os.environ.get("RELU_LANDSCAPE_SHARD_TIMEOUT_S", 6 * 3600))
"""Seconds a shard may run before its actor is taken for hung, killed and replaced
(env ``RELU_LANDSCAPE_SHARD_TIMEOUT_S``; a GPU shard takes minutes, not hours)."""

WAIT_S = 5.0
"""Longest ``ray.wait`` between two watchdog checks."""


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
        """{"pid", "node_id"} of this worker, once it has checked that it can work:
        a GPU it holds is visible to torch, and it sees this scan's ``scan.json``."""
        node = _check_gpu_visible()
        if self.device == "cuda":
            runner.pick_device("cuda")
        try:
            marker = store.output(self.root).read_json("scan.json") or {}
            reason = f"scan.json has config hash {marker.get('config_hash')}"
        except (OSError, ValueError, ReluLandscapeError) as exc:
            marker, reason = {}, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        if marker.get("config_hash") != self.provenance.config_hash:
            raise OutputError(
                f"--out: node {node} cannot see {self.root}/scan.json of this scan "
                f"(config hash {self.provenance.config_hash}; {reason}); the output must "
                "be reachable from every node: a filesystem mounted at the same path on "
                "all nodes, or an object store URI (s3://, gs://)"
            )
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
    would connect to the latest ``ray start`` head, e.g. another user's). The workers
    run at the driver's priority: Ray nices them by 15 by default, which starved a
    local scan of the CPU whenever anything else ran (the demo took 9:27 instead of
    about 5 minutes beside other busy processes on two cores).
    """
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _system_config={"worker_niceness": 0},
        configure_logging=False,
        log_to_driver=False,
    )


BUDGET_WAIT_S = 120.0
"""Longest wait for a GPU task to report its device's free memory (``RayPool``)."""


def _check_gpu_visible() -> str:
    """This worker's node address; ``DeviceError`` if it holds a GPU that torch there
    cannot see (a CPU-only torch build or a driver problem)."""
    node = ray.util.get_node_ip_address()
    gpus = ray.get_gpu_ids()
    if gpus and runner.pick_device("auto") != "cuda":
        raise DeviceError(
            f"a Ray worker on node {node} holds GPU {gpus} but torch "
            f"{runner.torch.__version__} there sees no CUDA device (a CPU-only torch "
            "build or a driver problem); install a CUDA build of torch on the GPU "
            "nodes, or run with --device cpu"
        )
    return node


def _gpu_budget(fraction: float, share: float) -> int:
    _check_gpu_visible()
    return runner.memory_budget("cuda", fraction, share)


class RayPool:
    """Actors on the connected Ray cluster; ``device_kind`` is what they compute on.

    ``--device cuda`` asks for GPU actors even while the cluster has no GPU node yet
    (an autoscaler starts them); ``auto`` uses GPUs when the cluster has some.
    ``memory_budget``: bytes one worker's shard may use. GPU: asked of one GPU task
    (its free memory times ``gpus_per_worker``), None (the default shard size) when
    no GPU answers within ``BUDGET_WAIT_S``. CPU: the cluster's Ray ``memory``
    resource over the workers, or this machine's available RAM over them.
    """

    def __init__(self, execution: Execution):
        self.execution, self.hang_s = execution, HANG_S
        resources = ray.cluster_resources()
        gpus = resources.get("GPU", 0)
        self.use_gpu = execution.device == "cuda" or (
            execution.device == "auto" and gpus > 0
        )
        self.device_kind = "cuda" if self.use_gpu else "cpu"
        if execution.workers:
            self.size = execution.workers
        elif self.use_gpu:
            self.size = max(1, int(gpus / execution.gpus_per_worker))
        else:
            self.size = max(1, int(resources.get("CPU", 1) // execution.torch_threads))
        if self.use_gpu and not gpus:
            print(
                "relu-landscape: no GPU in the Ray cluster yet; the GPU workers start "
                "when GPU nodes join (autoscaler)",
                file=sys.stderr,
            )
        self.memory_budget = self._budget(resources)

    def _budget(self, resources: dict) -> int | None:
        ex = self.execution
        if not self.use_gpu:
            ram = resources.get("memory") or runner.available_ram()
            return int(ram * ex.memory_fraction / self.size)
        task = ray.remote(_gpu_budget).options(num_gpus=ex.gpus_per_worker, num_cpus=0)
        ref = task.remote(ex.memory_fraction, ex.gpus_per_worker)
        ready, _ = ray.wait([ref], timeout=BUDGET_WAIT_S)
        if not ready:
            ray.cancel(ref, force=True)
            return None
        try:
            return ray.get(ready[0])
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, ReluLandscapeError):  # the user's to fix: stop
                raise exc.cause from None
            raise

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
            self.hang_s,
        )
        try:
            return driver.drive(shards, min(self.size, len(shards)))
        finally:
            for actor in driver.actors:
                ray.kill(actor)


class _Driver:
    """The dispatch loop: actors start, run shards, die, hang and are replaced."""

    def __init__(self, new_actor, max_retries: int, events: Events, hang_s: float):
        self.new_actor, self.max_retries, self.events = new_actor, max_retries, events
        self.hang_s = hang_s
        self.actors: list = []
        self.idle: list = []  # (actor, where) ready for a shard
        # ObjectRef -> (actor, where, shard); shard None while the actor starts
        self.inflight: dict = {}
        self.since: dict = {}  # ObjectRef of a shard -> when it was dispatched
        self.hung: set = set()  # refs whose actor the watchdog killed
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
                ref = actor.run.remote(shard)
                self.inflight[ref], self.since[ref] = (actor, where, shard), time.time()
                self.events.on_dispatch(shard, where)
            if not self.inflight:  # every actor died and none could be replaced
                self.failures += [(s.shard_id, "no worker left") for s in queue]
                break
            ready, _ = ray.wait(list(self.inflight), num_returns=1, timeout=WAIT_S)
            if ready:
                self._settle(ready[0], queue)
            self._watchdog()
        return self.failures

    def _watchdog(self) -> None:
        """Kill the actor of every shard running longer than ``hang_s``; its ref then
        fails with RayActorError and ``_settle`` replaces it and retries the shard."""
        now = time.time()
        for ref, started in list(self.since.items()):
            if now - started > self.hang_s and ref not in self.hung:
                self.hung.add(ref)
                ray.kill(self.inflight[ref][0])

    def _settle(self, ref, queue: deque) -> None:
        actor, where, shard = self.inflight.pop(ref)
        self.since.pop(ref, None)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None) or exc
            if shard is None:
                if isinstance(cause, ReluLandscapeError):  # the user's to fix: stop
                    raise cause from None
                return  # could not start: not replaced, to avoid a loop
            if ref in self.hung:
                error = f"worker hung (no result after {self.hang_s:.0f} s); replaced"
                self._start()
            elif isinstance(exc, ray.exceptions.RayActorError):
                error = f"worker died ({type(exc).__name__})"
                self._start()
            else:
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


def _check_reachable(address: str) -> None:
    """Refuse a HOST:PORT nothing listens on at once (Ray itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    if "://" in address or not port.isdigit():
        return  # "auto", ray:// client addresses: left to ray.init
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise InvalidConfigError(
            f"--address: nothing answers at {address} ({exc.strerror or exc}); give the "
            "head's GCS address (HOST:6379) or auto, or omit it for a local Ray"
        ) from None


@contextmanager
def connect(execution: Execution) -> Iterator[RayPool]:
    """A pool on ``execution.address``, else on the Ray of this process, else local.

    Before starting anything: a local Ray with ``--device cuda`` needs CUDA on this
    machine (``DeviceError``), an address must answer (``InvalidConfigError``). A Ray
    started here (local mode) is shut down on exit, also on Ctrl-C or SIGTERM.
    """
    started_here = not ray.is_initialized()
    if started_here and execution.address:
        _check_reachable(execution.address)
        try:
            ray.init(address=execution.address, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InvalidConfigError(
                f"--address: cannot join the Ray cluster at {execution.address!r} "
                f"({first}); check the address, or omit it for a local Ray"
            ) from None
    elif started_here:
        if execution.device == "cuda":  # this machine is the only node
            runner.pick_device("cuda")
        init_local(execution.workers * execution.torch_threads or None)
    if started_here:
        interrupt_on_sigterm()  # ray.init replaced it by a plain exit
    try:
        yield RayPool(execution)
    finally:
        if started_here:
            ray.shutdown()
