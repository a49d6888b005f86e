"""The results dataset: versioned Arrow schemas, atomic shard files, reading with polars.

Layout (hive-partitioned by categorical / integer keys only, never by a float)::

    OUT/<table>/activation=<sign|relu>/weights=<binary|continuous>/K=<int>/<shard_id>.parquet
    OUT/scan.json      the validated spec of the scan that wrote OUT (provenance)
    OUT/.lock          held by the one scan writing OUT

The partition keys are not stored inside the files; every reader (polars, pyarrow,
duckdb with ``hive_partitioning``) recovers them from the path. A shard file is
written under a hidden temporary name and renamed into place, so a reader never sees
a partial file, and a rerun of the same shard replaces its file (idempotent). Each
file's schema metadata holds ``relu_landscape`` provenance (JSON): package version, git
commit, config hash, torch and ray versions, device, schema version, shard id, rows.

This module is the only one that writes results; it imports neither torch nor ray.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from relu_landscape.errors import ShardCorruptError, StoreLockedError

SCHEMA_VERSION = 1
PARTITIONS = ("activation", "weights", "K")
HIVE_SCHEMA = {"activation": pl.String, "weights": pl.String, "K": pl.Int64}
META_KEY = b"relu_landscape"

RUNS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("N", pa.int64(), nullable=False),
        pa.field("n", pa.int64(), nullable=False),
        pa.field("P", pa.int64(), nullable=False),
        pa.field("alpha", pa.float64(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("s", pa.int64(), nullable=False),
        pa.field("inputs", pa.string(), nullable=False),
        pa.field("solver", pa.string(), nullable=False),
        pa.field("solver_params", pa.string(), nullable=False),
        pa.field("solved", pa.bool_(), nullable=False),
        pa.field("errors", pa.int64(), nullable=False),
        pa.field("error_frac", pa.float64(), nullable=False),
        pa.field("min_stability", pa.float64(), nullable=False),
        pa.field("steps", pa.int64(), nullable=False),
        pa.field("wall_s", pa.float64(), nullable=False),
        pa.field("batch_size", pa.int64(), nullable=False),
        pa.field("device", pa.string(), nullable=False),
        pa.field("shard_id", pa.string(), nullable=False),
    ]
)
"""One row per instance (activation, weights, K come from the partition path).

run_id: joins probe rows; s: seed index; seed: the spec's base seed; P = round(alpha N);
solved: zero training errors (ties count as errors), checked by the model; errors and
error_frac: final training errors and errors / P; min_stability: min over patterns of
sigma*Delta; steps: solver iterations; wall_s: seconds for the whole batch the instance
was trained in, batch_size instances."""

SCHEMAS: dict[str, pa.Schema] = {"runs": RUNS_SCHEMA}


@dataclass(frozen=True)
class Provenance:
    """Where a file came from; stored as JSON in every file's schema metadata."""

    config_hash: str
    package_version: str = field(default_factory=lambda: _version("relu-landscape"))
    git_commit: str | None = field(default_factory=lambda: _git_commit())
    torch_version: str | None = field(default_factory=lambda: _version("torch"))
    ray_version: str | None = field(default_factory=lambda: _version("ray"))
    schema_version: int = SCHEMA_VERSION


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=5, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def shard_path(root: str | Path, table: str, activation: str, weights: str, K: int,
               shard_id: str) -> Path:
    """Final path of one shard's file of ``table``."""
    return (Path(root) / table / f"activation={activation}" / f"weights={weights}"
            / f"K={K}" / f"{shard_id}.parquet")


def write_shard(root: str | Path, table: str, rows: pa.Table, *, activation: str,
                weights: str, K: int, shard_id: str, provenance: Provenance,
                device: str) -> Path:
    """Write one shard's rows atomically (temp file, fsync, rename); return the path.

    Rewriting the same shard replaces its file, so reruns never duplicate rows.
    """
    rows = rows.cast(SCHEMAS[table])
    meta = {**provenance.__dict__, "device": device, "shard_id": shard_id,
            "table": table, "rows": rows.num_rows, "created_unix": time.time()}
    rows = rows.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    final = shard_path(root, table, activation, weights, K, shard_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(rows, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def read_provenance(path: str | Path) -> dict:
    """The provenance dict of one shard file; ShardCorruptError if unreadable."""
    try:
        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta[META_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        raise ShardCorruptError(f"{path}: {exc}") from None


def shard_complete(path: Path, shard_id: str, expected_rows: int) -> bool:
    """True if ``path`` is a readable shard file with the expected id and row count."""
    if not path.is_file():
        return False
    try:
        meta = read_provenance(path)
        return (meta.get("shard_id") == shard_id and meta.get("rows") == expected_rows
                and pq.ParquetFile(path).metadata.num_rows == expected_rows)
    except (ShardCorruptError, OSError, pa.ArrowException):
        return False


def tables(root: str | Path) -> list[str]:
    """Names of the tables present under ``root`` (e.g. ``runs``)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.rglob("*.parquet")))


def scan_table(root: str | Path, table: str) -> pl.LazyFrame:
    """Lazily read one table with its hive partition columns (activation, weights, K)."""
    files = Path(root) / table
    if not any(files.rglob("*.parquet")):
        raise FileNotFoundError(f"no {table!r} table under {root}; run a scan first")
    return pl.scan_parquet(
        str(files / "**" / "*.parquet"), hive_partitioning=True, hive_schema=HIVE_SCHEMA
    )


def scan_runs(root: str | Path) -> pl.LazyFrame:
    """The per-instance runs table as a polars LazyFrame."""
    return scan_table(root, "runs")


def read_runs(root: str | Path) -> pl.DataFrame:
    """The per-instance runs table, collected."""
    return scan_runs(root).collect()


def sql(root: str | Path, query: str) -> pl.DataFrame:
    """Run polars SQL over every table under ``root``, each registered by its name."""
    ctx = pl.SQLContext({name: scan_table(root, name) for name in tables(root)})
    return ctx.execute(query, eager=True)


def write_json(path: str | Path, obj: dict) -> None:
    """Write a small JSON file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


class WriterLock:
    """Exclusive lock on an output directory: one scan writes it at a time.

    The lock file records host and pid; a lock left by a dead process on this host is
    taken over. Use as a context manager.
    """

    def __init__(self, root: str | Path):
        self.path = Path(root) / ".lock"

    def _stale(self) -> bool:
        try:
            host, pid = self.path.read_text().split(":")
        except (OSError, ValueError):
            return False
        if host != socket.gethostname():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError):
            return False
        return False

    def __enter__(self) -> WriterLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if self._stale():
                    self.path.unlink(missing_ok=True)
                    continue
                owner = self.path.read_text() if self.path.exists() else "?"
                raise StoreLockedError(
                    f"{self.path.parent} is being written by another scan ({owner}); "
                    "wait for it or choose another --out"
                ) from None
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{socket.gethostname()}:{os.getpid()}")
            return self
        raise StoreLockedError(f"could not take {self.path}; remove it if no scan runs")

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)
