"""User-facing exceptions, one per failure a researcher can act on.

Each class docstring says the cause and the fix. ``cli.py`` turns any of them into
one line on stderr and exit code 2 (bad input) or 1 (failed work), never a traceback.
"""

from __future__ import annotations


class ReluLandscapeError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidConfigError(ReluLandscapeError, ValueError):
    """A scan spec, preset or command-line option is invalid.

    Cause: a key is unknown, misspelt, of the wrong type or out of range.
    Fix: each entry of ``issues`` names the key, the bad value and what is allowed;
    correct them all (validation collects every problem before reporting).
    """

    def __init__(self, issues: list[str] | str):
        self.issues = [issues] if isinstance(issues, str) else list(issues)
        super().__init__("; ".join(self.issues))


class ShardCorruptError(ReluLandscapeError):
    """A Parquet shard in the output directory cannot be read or fails its checks.

    Cause: a crash outside the atomic rename, a copy cut short, or an edit by hand.
    Fix: rerun the same scan command with ``--resume``; corrupt shards are recomputed.
    """


class StoreLockedError(ReluLandscapeError):
    """Another scan is writing to this output directory.

    Cause: one writer per output is allowed, and its lock file is held.
    Fix: wait for that scan to finish, or choose another ``--out`` directory.
    """


class ScanFailedError(ReluLandscapeError):
    """Some shards of a scan failed after all their retries.

    Cause: the message names each failed shard and its last error.
    Fix: correct the cause and rerun with ``--resume``; completed shards are kept.
    """


class OutputError(ReluLandscapeError):
    """The output location (``--out``) cannot be used.

    Cause: the path or URI is malformed, names a file, a missing bucket, or a place
    this user may not write; or a node of the cluster cannot see it.
    Fix: the message names the location and the reason; choose a writable location
    that every node reaches (a shared filesystem or an object store URI).
    """


class DeviceError(ReluLandscapeError):
    """The requested device is not available where the scan would compute.

    Cause: ``--device cuda`` where torch sees no CUDA device, or a Ray worker that
    holds a GPU on a node whose torch sees no CUDA (a CPU-only torch build, a driver
    problem).
    Fix: install a CUDA build of torch on the GPU nodes, or use ``--device auto``/``cpu``.
    """
