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

THEORY_SCHEMA = pa.schema(
    [
        pa.field("activation", pa.string(), nullable=False),
        pa.field("weights", pa.string(), nullable=False),
        pa.field("K", pa.int64(), nullable=True),
        pa.field("level", pa.string(), nullable=False),
        pa.field("tie", pa.string(), nullable=False),
        pa.field("alpha_c", pa.float64(), nullable=False),
        pa.field("stderr", pa.float64(), nullable=False),
    ]
)
"""Theory capacities (relu_landscape.theory.capacity_table), one unpartitioned file.

K: null for the wide limit K = infinity; level: "RS" or "1RSB"; tie: "error"
(Theta(0) = 0) or "success"; alpha_c: capacity in patterns per weight (inf where it
diverges); stderr: its quasi-Monte Carlo standard error (0 for quadrature)."""


THEORY_CURVE_SCHEMA = pa.schema(
    [
        pa.field("activation", pa.string(), nullable=False),
        pa.field("weights", pa.string(), nullable=False),
        pa.field("K", pa.int64(), nullable=True),
        pa.field("tie", pa.string(), nullable=False),
        pa.field("alpha", pa.float64(), nullable=False),
        pa.field("q", pa.float64(), nullable=True),
        pa.field("q_stderr", pa.float64(), nullable=True),
        pa.field("s", pa.float64(), nullable=True),
        pa.field("s_stderr", pa.float64(), nullable=True),
    ]
)
"""RS curves (relu_landscape.theory.curve_table): typical overlap q(alpha) within a
group, and for binary weights the entropy s(alpha) per weight (natural log); K null
for K = infinity; s columns null for continuous weights, q nan past the RS range."""

LOCAL_ENTROPY_THEORY_SCHEMA = pa.schema(
    [pa.field("kind", pa.string(), nullable=False),
     pa.field("activation", pa.string(), nullable=False),
     pa.field("weights", pa.string(), nullable=False),
     pa.field("K", pa.int64(), nullable=True),
     *(pa.field(c, pa.float64(), nullable=False) for c in ("alpha", "d", "local_entropy")),
     pa.field("converged", pa.bool_(), nullable=False),
     *(pa.field(c, pa.float64(), nullable=True) for c in (
         "p", "q1", "ph", "q0", "t", "th", "q1h", "omega", "q0h", "delta"))]
)
"""Theory local entropy (science.md §5; relu_landscape.theory.franz_parisi_curve and
dense_local_entropy_curve), binary weights. kind: "franz_parisi" (typical reference) or
"dense" (densest regions, y -> infinity); K null for K = infinity; local_entropy per
weight (natural log) at distance d, nan where not converged; p = 1 - 2d; q0, t, th,
q1h only for franz_parisi, omega, q0h, delta only for dense (null otherwise)."""


def _probe_schema(*columns: tuple[str, pa.DataType]) -> pa.Schema:
    """A probe table: the keys to join runs (run_id, N, alpha, solver), then ``columns``.

    Partitioned like runs (activation, weights, K in the path); one row per instance
    and probe setting; only solved instances are probed. A column may be null only
    where its docstring says so.
    """
    keys = [("run_id", pa.string()), ("N", pa.int64()), ("alpha", pa.float64()),
            ("solver", pa.string())]
    return pa.schema([pa.field(k, t, nullable=k in ("s", "D", "local_entropy",
                                                        "local_entropy_stderr"))
                      for k, t in [*keys, *columns]])


_F, _I = pa.float64(), pa.int64()

LOCAL_ENERGY_SCHEMA = _probe_schema(
    ("s", _F), ("D", _I), ("d", _F), ("overlap", _F), ("local_energy", _F),
    ("local_energy_stderr", _F), ("draws", _I))
"""relu_landscape.probes.local_energy, science.md §2. s: multiplicative noise scale
(continuous; null for binary); D: flipped weights (binary; null for continuous);
d: normalised Hamming distance D/N (binary) or (1 - q)/2 with q the mean overlap
W.W'/N of the perturbed weights (continuous); overlap = 1 - 2d; local_energy: mean
training error fraction over ``draws`` draws (ties are errors), and its standard error."""

ROBUSTNESS_SCHEMA = _probe_schema(
    ("noise", pa.string()), ("p", _F), ("robustness", _F), ("robustness_stderr", _F),
    ("draws", _I))
"""relu_landscape.probes.robustness, science.md §2. noise: "flip" (each +-1 input bit
flipped with probability p) or "gaussian" (N(0, p^2) added); robustness: mean over
``draws`` draws of the fraction of the P training patterns still correct, and its
standard error."""

LOCAL_ENTROPY_SCHEMA = _probe_schema(
    ("D", _I), ("d", _F), ("overlap", _F), ("draws", _I), ("hits", _I),
    ("solution_frac", _F), ("solution_frac_stderr", _F), ("solution_frac_upper", _F),
    ("resolved", pa.bool_()), ("local_entropy", _F), ("local_entropy_stderr", _F))
"""relu_landscape.probes.local_entropy (binary weights), science.md §2. hits: how many
of ``draws`` random D-flip neighbours are solutions; solution_frac = hits/draws with
binomial stderr and 95% Wilson upper bound; resolved: hits > 0; local_entropy:
(1/N) ln(solution_frac C(N, D)), delta-method stderr; both null where not resolved."""

WALKS_SCHEMA = _probe_schema(
    ("steps", _I), ("moves", _F), ("acceptance", _F), ("d", _F), ("d_stderr", _F),
    ("overlap", _F), ("walkers", _I))
"""relu_landscape.probes.walks, science.md §2. steps: proposals per walker so far;
moves: mean accepted moves per walker; acceptance: moves/steps; d: mean distance from
the start over ``walkers`` walkers (normalised Hamming, or (1 - q)/2 for continuous),
d_stderr its standard error; overlap = 1 - 2d."""

ENUMERATE_SCHEMA = _probe_schema(
    ("D", _I), ("d", _F), ("overlap", _F), ("solutions", _I), ("pairs", _I),
    ("neighbours", _I), ("solution_frac", _F), ("local_entropy", _F),
    ("local_energy", _F))
"""relu_landscape.probes.enumerate (binary weights, small N), science.md §2, §5. Exact,
rows D = 0..N. solutions: all solutions of the instance; pairs: unordered pairs of
solutions at distance D; neighbours: solutions at distance D from the solver's
solution; solution_frac = neighbours / C(N, D); local_entropy: (1/N) ln neighbours
(null where 0); local_energy: mean error fraction over all vectors at distance D."""

PROBE_SCHEMAS: dict[str, pa.Schema] = {
    "local_energy": LOCAL_ENERGY_SCHEMA,
    "robustness": ROBUSTNESS_SCHEMA,
    "local_entropy": LOCAL_ENTROPY_SCHEMA,
    "walks": WALKS_SCHEMA,
    "enumerate": ENUMERATE_SCHEMA,
}

SCHEMAS: dict[str, pa.Schema] = {"runs": RUNS_SCHEMA, "theory": THEORY_SCHEMA,
                                 "theory_curve": THEORY_CURVE_SCHEMA,
                                 "local_entropy_theory": LOCAL_ENTROPY_THEORY_SCHEMA,
                                 **PROBE_SCHEMAS}


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
    rows = _stamped(rows, table, {**provenance.__dict__, "device": device,
                                  "shard_id": shard_id})
    final = shard_path(root, table, activation, weights, K, shard_id)
    _write_atomic(rows, final)
    return final


def _stamped(rows: pa.Table, table: str, meta: dict) -> pa.Table:
    """``rows`` in ``table``'s schema with ``meta`` (plus table, rows, time) attached.

    A nullable schema column absent from ``rows`` is added as nulls.
    """
    schema = SCHEMAS[table]
    for f in schema:
        if f.name not in rows.column_names and f.nullable:
            rows = rows.append_column(f.name, pa.nulls(rows.num_rows, f.type))
    rows = rows.select(schema.names).cast(schema)
    meta = {**meta, "table": table, "rows": rows.num_rows, "created_unix": time.time()}
    return rows.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})


def _write_atomic(rows: pa.Table, final: Path) -> None:
    """Write ``rows`` to ``final`` via a hidden temp file, fsync and rename."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(rows, tmp, write_page_checksum=True)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_table(root: str | Path, table: str, rows: pa.Table) -> Path:
    """Write a whole unpartitioned table (e.g. ``theory``) atomically; return its path.

    The file is OUT/<table>/<table>.parquet and holds its key columns (activation,
    weights, K) itself; a rewrite replaces it.
    """
    return write_file(Path(root) / table / f"{table}.parquet", table, rows)


def write_file(path: str | Path, table: str, rows: pa.Table) -> Path:
    """Write ``rows`` with ``table``'s schema to one Parquet file at ``path``, atomically.

    Nullable columns the rows lack (e.g. the dense-only order parameters of a
    Franz-Parisi curve) are written as nulls.
    """
    rows = _stamped(rows, table, {"schema_version": SCHEMA_VERSION,
                                  "package_version": _version("relu-landscape")})
    _write_atomic(rows, Path(path))
    return Path(path)


def read_provenance(path: str | Path) -> dict:
    """The provenance dict of one shard file; ShardCorruptError if unreadable."""
    try:
        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta[META_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        raise ShardCorruptError(f"{path}: {exc}") from None


def shard_complete(path: Path, shard_id: str, expected_rows: int | None = None) -> bool:
    """True if ``path`` is a valid file of shard ``shard_id`` with the expected rows.

    Valid means fully readable: every page is decoded and its CRC checked (files are
    written with page checksums), so truncation, a damaged footer or flipped bytes in
    the data all count as incomplete, and resume recomputes the shard.
    ``expected_rows=None`` accepts the row count recorded in the file's provenance.
    """
    if not path.is_file():
        return False
    try:
        meta = read_provenance(path)
        rows = pq.read_table(path, page_checksum_verification=True)
    except (ShardCorruptError, OSError, pa.ArrowException):
        return False
    expected = meta.get("rows") if expected_rows is None else expected_rows
    ids = (set(rows.column("shard_id").to_pylist()) if "shard_id" in rows.column_names
           else {shard_id})
    return (meta.get("shard_id") == shard_id and meta.get("rows") == expected
            and rows.num_rows == expected and ids <= {shard_id})


def shard_files(root: str | Path) -> list[Path]:
    """Every visible shard file under ``root`` (all tables and partitions)."""
    return sorted(Path(root).glob("*/activation=*/weights=*/K=*/*.parquet"))


def remove_temporaries(root: str | Path) -> int:
    """Delete temporary files left by writers that died before their rename.

    Only safe while holding the output's ``WriterLock`` (no writer is active).
    Returns how many were removed.
    """
    leftovers = list(Path(root).glob("*/activation=*/weights=*/K=*/.*.tmp"))
    for path in leftovers:
        path.unlink(missing_ok=True)
    return len(leftovers)


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
