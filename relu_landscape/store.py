"""The results dataset: versioned Arrow schemas, atomic shard files, reading with polars.

Layout (hive-partitioned by categorical / integer keys only, never by a float)::

    OUT/<table>/activation=<sign|relu>/weights=<binary|continuous>/K=<int>/<shard_id>.parquet
    OUT/scan.json      the validated spec of the scan that wrote OUT (provenance)
    OUT/.lock          the lease of the one scan writing OUT (WriterLock)

OUT is a local path or any URI ``pyarrow.fs`` opens (``s3://``, ``gs://``, ``hdfs://``,
query parameters included); every write, read, listing and lock goes through the
output's ``pyarrow.fs`` filesystem (``Output``). The partition keys are not stored
inside the files; every reader (polars, pyarrow, duckdb with ``hive_partitioning``)
recovers them from the path. A shard file is written under a hidden temporary name and
renamed into place (object stores publish an upload whole, so there it is written in
place), so a reader never sees a partial file, and a rerun of the same shard replaces
its file (idempotent). Each file's schema metadata holds ``relu_landscape`` provenance
(JSON): package version, git commit, config hash, torch and ray versions, device,
schema version, shard id, rows.

This module is the only one that writes results; it imports neither torch nor ray.
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePath, PurePosixPath

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from relu_landscape.errors import OutputError, ShardCorruptError, StoreLockedError

SCHEMA_VERSION = 3  # 2: runs.solvable; NaN stored as null; 3: kappa in runs and probes
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
        pa.field("kappa", pa.float64(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("s", pa.int64(), nullable=False),
        pa.field("inputs", pa.string(), nullable=False),
        pa.field("solver", pa.string(), nullable=False),
        pa.field("solver_params", pa.string(), nullable=False),
        pa.field("solved", pa.bool_(), nullable=False),
        pa.field("errors", pa.int64(), nullable=False),
        pa.field("error_frac", pa.float64(), nullable=False),
        pa.field("min_stability", pa.float64(), nullable=True),
        pa.field("solvable", pa.bool_(), nullable=True),
        pa.field("steps", pa.int64(), nullable=False),
        pa.field("wall_s", pa.float64(), nullable=False),
        pa.field("batch_size", pa.int64(), nullable=False),
        pa.field("device", pa.string(), nullable=False),
        pa.field("shard_id", pa.string(), nullable=False),
    ]
)
"""One row per instance (activation, weights, K come from the partition path).

run_id: joins probe rows (with kappa: the same instance is run at every kappa of the
grid); kappa: the stability margin, in units of std(Delta) (docs/science.md §1; a
column, never a partition key: it is a float); s: seed index; seed: the spec's base
seed; P = round(alpha N); solved: zero training errors (ties, and stabilities <=
kappa std(Delta), count as errors), checked by the model; errors and
error_frac: final training errors and errors / P; min_stability: min over patterns of
sigma*Delta (null where it is not a number: non-finite weights); solvable: whether
the instance has a solution at all, decided exactly by enumerating its 2^N weight
vectors (binary weights with N <= scan.runner.SOLVABLE_MAX_N; null otherwise), so
P(solvable) by alpha is the exact finite-N capacity curve; steps: solver
iterations; wall_s: seconds for the whole batch the instance was trained in,
batch_size instances."""

THEORY_SCHEMA = pa.schema(
    [
        pa.field("activation", pa.string(), nullable=False),
        pa.field("weights", pa.string(), nullable=False),
        pa.field("K", pa.int64(), nullable=True),
        pa.field("kappa", pa.float64(), nullable=True),
        pa.field("level", pa.string(), nullable=False),
        pa.field("tie", pa.string(), nullable=False),
        pa.field("precision", pa.string(), nullable=False),
        pa.field("theory_version", pa.int64(), nullable=False),
        pa.field("alpha_c", pa.float64(), nullable=False),
        pa.field("stderr", pa.float64(), nullable=False),
        pa.field("converged", pa.bool_(), nullable=False),
    ]
)
"""Theory capacities (relu_landscape.theory.capacity_table), one unpartitioned file.

K: null for the wide limit K = infinity; kappa: the stability margin in units of the
field's std (docs/theory_activations.md §1; null in files written before it existed,
which were all at kappa = 0); level: "RS" or "1RSB"; tie: "error"
(Theta(0) = 0) or "success"; precision: "fast", "default" or "high";
theory_version: relu_landscape.theory.THEORY_VERSION of the code that computed the row
(the report recomputes rows of another precision, tie or version); alpha_c: capacity
in patterns per weight (inf where it diverges); stderr: its quasi-Monte Carlo standard
error (0 for quadrature); converged: False where the method missed its target (e.g.
the QMC point cap reached with stderr above the precision's target)."""


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
     *(pa.field(c, pa.float64(), nullable=False) for c in ("alpha", "d")),
     pa.field("local_entropy", pa.float64(), nullable=True),
     pa.field("converged", pa.bool_(), nullable=False),
     *(pa.field(c, pa.float64(), nullable=True) for c in (
         "p", "q1", "ph", "q0", "t", "th", "q1h", "omega", "q0h", "delta",
         "stderr", "external_entropy", "external_stderr", "d_zero_external", "y"))]
)
"""Theory local entropy (docs/science.md §5; relu_landscape.theory.franz_parisi_curve and
dense_local_entropy_curve), binary weights. kind: "franz_parisi" (typical reference) or
"dense" (densest regions, y -> infinity); K null for K = infinity; local_entropy per
weight (natural log) at distance d, null where not converged; p = 1 - 2d; q0, t, th,
q1h only for franz_parisi, omega, q0h, delta only for dense (null otherwise); stderr:
the QMC standard error of local_entropy (0 for quadrature: K = 1 and K = inf);
external_entropy: dense only, the log-number of dense regions per weight;
external_stderr: its QMC standard error (0 for quadrature, null where external_entropy is);
d_zero_external: dense only, the curve's d where external_entropy reaches 0 (rows below
it have external_entropy < 0: RS overestimates the dense regions there); y: dense only,
the finite number of real replicas (null for y -> infinity; external_entropy nan)."""

DENSE_BREAKUP_THEORY_SCHEMA = pa.schema(
    [pa.field("activation", pa.string(), nullable=False),
     pa.field("weights", pa.string(), nullable=False),
     pa.field("K", pa.int64(), nullable=True),
     *(pa.field(c, pa.float64(), nullable=True)
       for c in ("alpha_u", "d_at_onset", "stderr")),
     pa.field("converged", pa.bool_(), nullable=False)]
)
"""Break-up load of the dense regions (relu_landscape.theory.breakup,
docs/local_entropy.md §6): alpha_u and d_at_onset null where not bracketed (converged
false); stderr the bisection's resolution with, at finite K, the propagated QMC
error (null where not bracketed); K null for K = infinity."""


def _probe_schema(*columns: tuple[str, pa.DataType]) -> pa.Schema:
    """A probe table: the keys to join runs (run_id, N, alpha, kappa, solver), then
    ``columns``.

    Partitioned like runs (activation, weights, K in the path); one row per instance
    and probe setting; only solved instances are probed. A column may be null only
    where its docstring says so.
    """
    keys = [("run_id", pa.string()), ("N", pa.int64()), ("alpha", pa.float64()),
            ("kappa", pa.float64()), ("solver", pa.string())]
    return pa.schema([pa.field(k, t, nullable=k in ("s", "D", "local_entropy",
                                                        "local_entropy_stderr"))
                      for k, t in [*keys, *columns]])


_F, _I = pa.float64(), pa.int64()

LOCAL_ENERGY_SCHEMA = _probe_schema(
    ("s", _F), ("D", _I), ("d", _F), ("overlap", _F), ("local_energy", _F),
    ("local_energy_stderr", _F), ("draws", _I))
"""relu_landscape.probes.local_energy, docs/science.md §2. s: multiplicative noise scale
(continuous; null for binary); D: flipped weights (binary; null for continuous);
d: normalised Hamming distance D/N (binary) or (1 - q)/2 with q the mean overlap
W.W'/N of the perturbed weights (continuous); overlap = 1 - 2d; local_energy: mean
training error fraction over ``draws`` draws (ties are errors), and its standard error."""

ROBUSTNESS_SCHEMA = _probe_schema(
    ("noise", pa.string()), ("p", _F), ("robustness", _F), ("robustness_stderr", _F),
    ("draws", _I))
"""relu_landscape.probes.robustness, docs/science.md §2. noise: "flip" (each +-1 input bit
flipped with probability p) or "gaussian" (N(0, p^2) added); robustness: mean over
``draws`` draws of the fraction of the P training patterns still correct, and its
standard error."""

LOCAL_ENTROPY_SCHEMA = _probe_schema(
    ("D", _I), ("d", _F), ("overlap", _F), ("draws", _I), ("hits", _I),
    ("solution_frac", _F), ("solution_frac_stderr", _F), ("solution_frac_upper", _F),
    ("resolved", pa.bool_()), ("local_entropy", _F), ("local_entropy_stderr", _F))
"""relu_landscape.probes.local_entropy (binary weights), docs/science.md §2. hits: how many
of ``draws`` random D-flip neighbours are solutions; solution_frac = hits/draws with
binomial stderr and 95% Wilson upper bound; resolved: hits > 0; local_entropy:
(1/N) ln(solution_frac C(N, D)), delta-method stderr; both null where not resolved."""

WALKS_SCHEMA = _probe_schema(
    ("steps", _I), ("moves", _F), ("acceptance", _F), ("d", _F), ("d_stderr", _F),
    ("overlap", _F), ("walkers", _I))
"""relu_landscape.probes.walks, docs/science.md §2. steps: proposals per walker so far;
moves: mean accepted moves per walker; acceptance: moves/steps; d: mean distance from
the start over ``walkers`` walkers (normalised Hamming, or (1 - q)/2 for continuous),
d_stderr its standard error; overlap = 1 - 2d."""

ENUMERATE_SCHEMA = _probe_schema(
    ("D", _I), ("d", _F), ("overlap", _F), ("solutions", _I), ("pairs", _I),
    ("neighbours", _I), ("solution_frac", _F), ("local_entropy", _F),
    ("local_energy", _F))
"""relu_landscape.probes.enumerate (binary weights, small N), docs/science.md §2, §5. Exact,
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
                                 "dense_breakup_theory": DENSE_BREAKUP_THEORY_SCHEMA,
                                 **PROBE_SCHEMAS}


@dataclass(frozen=True)
class Provenance:
    """Where a file came from; stored as JSON in every file's schema metadata."""

    config_hash: str
    package_version: str = field(default_factory=lambda: dist_version("relu-landscape"))
    git_commit: str | None = field(default_factory=lambda: _git_commit())
    torch_version: str | None = field(default_factory=lambda: dist_version("torch"))
    ray_version: str | None = field(default_factory=lambda: dist_version("ray"))
    schema_version: int = SCHEMA_VERSION


def dist_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``; None when it is not installed."""
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


@dataclass(frozen=True, eq=False)
class Output:
    """A results location: ``uri`` as given (a local path made absolute), the
    ``pyarrow.fs`` filesystem it names and the base ``path`` inside that filesystem."""

    uri: str
    fs: pafs.FileSystem
    path: str

    @property
    def local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def join(self, *parts: object) -> str:
        """The filesystem path of ``parts`` below the base path."""
        return "/".join([self.path.rstrip("/"), *map(str, parts)])

    def as_path(self, path: str) -> PurePath:
        """``path`` (inside this output) as a ``Path`` when local, else a pure path."""
        return Path(path) if self.local else PurePosixPath(path)

    def read_json(self, name: str) -> dict | None:
        """The small JSON file ``name`` below the base path; None if it does not exist."""
        data = _read_bytes(self.fs, self.join(name))
        return None if data is None else json.loads(data)

    def write_json(self, name: str, obj: dict) -> None:
        """Write the small JSON file ``name`` below the base path, atomically."""
        _put_bytes(self, self.join(name), json.dumps(obj, indent=2, sort_keys=True,
                                                     default=str).encode())

    def __str__(self) -> str:
        return self.uri


def output(root: str | Path | Output) -> Output:
    """The ``Output`` of a local path (relative ones made absolute here, on the driver)
    or of a URI ``pyarrow.fs.FileSystem.from_uri`` understands, query parameters
    included (``s3://bucket/path?endpoint_override=host:port&scheme=http``); the
    standard AWS environment variables apply. ``OutputError`` if it cannot be opened."""
    if isinstance(root, Output):
        return root
    text = str(root)
    if "://" not in text:
        text = str(Path(text).expanduser().absolute())
    return _open_output(text)


@functools.lru_cache(maxsize=32)
def _open_output(uri: str) -> Output:
    # cached: an object-store filesystem resolves its region and credentials once
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise OutputError(f"--out: pyarrow.fs cannot open {uri!r} ({_first_line(exc)}); "
                          "give a local path or a URI such as s3://bucket/path") from None
    return Output(uri, fs, path.rstrip("/") or "/")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def check_writable(out: Output) -> None:
    """Refuse, with ``OutputError`` and before anything is written, an output that
    is a file, lies under a file, needs a missing bucket or a directory this user may
    not write."""
    try:
        info = out.fs.get_file_info(out.path)
        if info.type == pafs.FileType.File:
            raise OutputError(f"--out: {out.uri} is a file; give a directory")
        if out.local:
            probe = Path(out.path)
            while not probe.exists():
                probe = probe.parent
            if not probe.is_dir():
                raise OutputError(f"--out: {probe} is a file, so {out.uri} cannot be "
                                  "created; choose another --out")
            if not os.access(probe, os.W_OK | os.X_OK):
                raise OutputError(f"--out: no permission to write in {probe}; choose "
                                  "another --out")
        elif (info.type == pafs.FileType.NotFound
              and type(out.fs).__name__ == "S3FileSystem"):
            bucket = out.path.split("/")[0]
            if out.fs.get_file_info(bucket).type == pafs.FileType.NotFound:
                raise OutputError(f"--out: bucket {bucket!r} of {out.uri} does not exist "
                                  "(or is not visible with these credentials); create it")
    except (OSError, pa.ArrowException) as exc:
        raise OutputError(f"--out: cannot reach {out.uri} ({_first_line(exc)})") from None


def _renames_atomically(fs: pafs.FileSystem) -> bool:
    # Object stores have no atomic rename (a move is copy + delete) but publish an
    # object whole when its upload completes, so there a file is written in place.
    stores = tuple(getattr(pafs, name) for name in ("S3FileSystem", "GcsFileSystem")
                   if hasattr(pafs, name))  # a pyarrow build may lack either
    return not isinstance(fs, stores)


def _put(out: Output, final: str, write) -> None:
    """Create ``final`` atomically with ``write(path)``: a hidden temporary file,
    fsync (local) and rename; on object stores the upload itself is atomic."""
    fs = out.fs
    parent, name = final.rsplit("/", 1)
    fs.create_dir(parent, recursive=True)
    if not _renames_atomically(fs):
        write(final)
        return
    tmp = f"{parent}/.{name}.{os.getpid()}.tmp"
    try:
        write(tmp)
        if out.local:  # durable before it becomes visible
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fs.move(tmp, final)
    finally:
        if fs.get_file_info(tmp).type != pafs.FileType.NotFound:
            fs.delete_file(tmp)


def _put_bytes(out: Output, final: str, data: bytes) -> None:
    def write(path: str) -> None:
        with out.fs.open_output_stream(path) as fh:
            fh.write(data)

    _put(out, final, write)


def _read_bytes(fs: pafs.FileSystem, path: str) -> bytes | None:
    """The content of ``path``, None if it does not exist."""
    try:
        with fs.open_input_stream(path) as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def shard_path(root: str | Path | Output, table: str, activation: str, weights: str,
               K: int, shard_id: str) -> PurePath:
    """Final path (inside the output's filesystem) of one shard's file of ``table``."""
    out = output(root)
    return out.as_path(out.join(table, f"activation={activation}", f"weights={weights}",
                                f"K={K}", f"{shard_id}.parquet"))


def write_shard(root: str | Path | Output, table: str, rows: pa.Table, *,
                activation: str, weights: str, K: int, shard_id: str,
                provenance: Provenance, device: str) -> PurePath:
    """Write one shard's rows atomically; return the path.

    Rewriting the same shard replaces its file, so reruns never duplicate rows.
    """
    out = output(root)
    rows = _stamped(rows, table, {**provenance.__dict__, "device": device,
                                  "shard_id": shard_id})
    final = shard_path(out, table, activation, weights, K, shard_id)
    _write_atomic(rows, out, str(final))
    return final


def _stamped(rows: pa.Table, table: str, meta: dict) -> pa.Table:
    """``rows`` in ``table``'s schema with ``meta`` (plus table, rows, time) attached.

    A nullable schema column absent from ``rows`` is added as nulls; NaN becomes
    null in a nullable float column and is a ValueError in a required one.
    """
    schema = SCHEMAS[table]
    for f in schema:
        if f.name not in rows.column_names and f.nullable:
            rows = rows.append_column(f.name, pa.nulls(rows.num_rows, f.type))
    rows = rows.select(schema.names).cast(schema)
    # NaN is not a value: null where the column may be null, refused where it may not
    columns = []
    for f, col in zip(schema, rows.columns, strict=True):
        if pa.types.is_floating(f.type) and pc.any(pc.is_nan(col)).as_py():
            if not f.nullable:
                raise ValueError(f"{table}.{f.name}: NaN in a required column")
            col = pc.if_else(pc.is_nan(col), pa.scalar(None, f.type), col)
        columns.append(col)
    rows = pa.table(columns, schema=schema)
    meta = {**meta, "table": table, "rows": rows.num_rows, "created_unix": time.time()}
    return rows.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})


def _write_atomic(rows: pa.Table, out: Output, final: str) -> None:
    """Write ``rows`` as Parquet (page checksums on) to ``final``, atomically."""
    _put(out, final, lambda path: pq.write_table(rows, path, filesystem=out.fs,
                                                 write_page_checksum=True))


def write_table(root: str | Path | Output, table: str, rows: pa.Table) -> PurePath:
    """Write a whole unpartitioned table (e.g. ``theory``) atomically; return its path.

    The file is OUT/<table>/<table>.parquet and holds its key columns (activation,
    weights, K) itself; a rewrite replaces it.
    """
    out = output(root)
    final = out.join(table, f"{table}.parquet")
    _write_atomic(_stamped(rows, table, _file_meta()), out, final)
    return out.as_path(final)


def write_file(path: str | Path, table: str, rows: pa.Table) -> PurePath:
    """Write ``rows`` with ``table``'s schema to one Parquet file at ``path`` (a local
    path or URI), atomically.

    Nullable columns the rows lack (e.g. the dense-only order parameters of a
    Franz-Parisi curve) are written as nulls.
    """
    out = output(path)
    _write_atomic(_stamped(rows, table, _file_meta()), out, out.path)
    return out.as_path(out.path)


def _file_meta() -> dict:
    return {"schema_version": SCHEMA_VERSION, "package_version": dist_version("relu-landscape")}


def read_provenance(path: str | PurePath, fs: pafs.FileSystem | None = None) -> dict:
    """The provenance dict of one shard file; ShardCorruptError if unreadable."""
    try:
        meta = pq.read_schema(str(path), filesystem=fs).metadata or {}
        return json.loads(meta[META_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        raise ShardCorruptError(f"{path}: {exc}") from None


def shard_complete(path: str | PurePath, shard_id: str, expected_rows: int | None = None,
                   fs: pafs.FileSystem | None = None) -> bool:
    """True if ``path`` (on ``fs``, default local) is a valid file of shard
    ``shard_id`` with the expected rows.

    Valid means fully readable: every page is decoded and its CRC checked (files are
    written with page checksums), so truncation, a damaged footer or flipped bytes in
    the data all count as incomplete, and resume recomputes the shard.
    ``expected_rows=None`` accepts the row count recorded in the file's provenance.
    """
    fs = fs or pafs.LocalFileSystem()
    try:
        if fs.get_file_info(str(path)).type != pafs.FileType.File:
            return False
        meta = read_provenance(path, fs)
        rows = pq.read_table(str(path), filesystem=fs, page_checksum_verification=True)
    except (ShardCorruptError, OSError, pa.ArrowException):
        return False
    expected = meta.get("rows") if expected_rows is None else expected_rows
    ids = (set(rows.column("shard_id").to_pylist()) if "shard_id" in rows.column_names
           else {shard_id})
    return (meta.get("shard_id") == shard_id and meta.get("rows") == expected
            and rows.num_rows == expected and ids <= {shard_id})


_PARTITIONED = r"[^/.][^/]*/activation=[^/]+/weights=[^/]+/K=[^/]+/"
_SHARD_FILE = re.compile(_PARTITIONED + r"[^/.][^/]*\.parquet")
_TEMPORARY = re.compile(_PARTITIONED + r"\.[^/]*\.tmp")


def _listing(out: Output) -> list[str]:
    """Paths of every file below the output, relative to its base path."""
    selector = pafs.FileSelector(out.path, recursive=True, allow_not_found=True)
    try:
        infos = out.fs.get_file_info(selector)
    except (NotADirectoryError, FileNotFoundError):
        return []
    base = len(out.path.rstrip("/")) + 1
    return [i.path[base:] for i in infos if i.type == pafs.FileType.File]


def shard_files(root: str | Path | Output) -> list[PurePath]:
    """Every visible shard file under ``root`` (all tables and partitions)."""
    out = output(root)
    return sorted(out.as_path(out.join(rel)) for rel in _listing(out)
                  if _SHARD_FILE.fullmatch(rel))


def remove_temporaries(root: str | Path | Output) -> int:
    """Delete temporary files left by writers that died before their rename.

    Only safe while holding the output's ``WriterLock`` (no writer is active).
    Returns how many were removed.
    """
    out = output(root)
    leftovers = [rel for rel in _listing(out) if _TEMPORARY.fullmatch(rel)]
    for rel in leftovers:
        out.fs.delete_file(out.join(rel))
    return len(leftovers)


def tables(root: str | Path | Output) -> list[str]:
    """Names of the tables present under ``root`` (e.g. ``runs``)."""
    try:
        out = output(root)
        files = _listing(out)
    except (OutputError, OSError):
        return []
    return sorted({rel.split("/", 1)[0] for rel in files if "/" in rel
                   and rel.endswith(".parquet") and not rel.rsplit("/", 1)[1].startswith(".")})


_HIVE_ARROW = pa.schema([("activation", pa.string()), ("weights", pa.string()),
                         ("K", pa.int64())])


def scan_table(root: str | Path | Output, table: str) -> pl.LazyFrame:
    """Lazily read one table with its hive partition columns (activation, weights, K).

    Local outputs are read by polars directly; others through a ``pyarrow.dataset``
    on the output's filesystem.
    """
    out = output(root)
    if table not in tables(out):
        raise FileNotFoundError(f"no {table!r} table under {root}; run a scan first")
    if out.local:
        return pl.scan_parquet(out.join(table, "**", "*.parquet"), hive_partitioning=True,
                               hive_schema=HIVE_SCHEMA)
    partitioned = any(rel.startswith(f"{table}/activation=") for rel in _listing(out))
    data = ds.dataset(out.join(table), filesystem=out.fs, format="parquet",
                      partitioning=ds.partitioning(_HIVE_ARROW, flavor="hive")
                      if partitioned else None, exclude_invalid_files=False)
    return pl.scan_pyarrow_dataset(data)


def scan_runs(root: str | Path | Output) -> pl.LazyFrame:
    """The per-instance runs table as a polars LazyFrame."""
    return scan_table(root, "runs")


def read_runs(root: str | Path | Output) -> pl.DataFrame:
    """The per-instance runs table, collected."""
    return scan_runs(root).collect()


def sql(root: str | Path | Output, query: str) -> pl.DataFrame:
    """Run polars SQL over every table under ``root``, each registered by its name."""
    ctx = pl.SQLContext({name: scan_table(root, name) for name in tables(root)})
    return ctx.execute(query, eager=True)


def write_json(path: str | Path, obj: dict) -> None:
    """Write a small JSON file (a local path or URI) atomically."""
    out = output(path)
    parent, name = out.path.rsplit("/", 1)
    Output(out.uri, out.fs, parent).write_json(name, obj)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WriterLock:
    """A lease on an output: one scan writes it at a time. Use as a context manager.

    ``OUT/.lock`` holds JSON {host, pid, token, heartbeat (unix seconds), ttl_s}; the
    holder renews the heartbeat every ttl_s/4 from a daemon thread. Another scan takes
    the lease over when its holder is a dead process on the same host, or from any
    host once the heartbeat is older than ttl_s (a lost node never releases its
    lease); the hosts' clocks must agree to well within ttl_s. Taking the lease is
    exclusive on local and mounted filesystems (O_EXCL); on object stores it is
    write, then read back, so two scans started within the same instant could both
    pass: start one scan per output.
    """

    TTL_S = 120.0

    def __init__(self, root: str | Path | Output, ttl_s: float | None = None):
        self.out = output(root)
        self.path = self.out.as_path(self.out.join(".lock"))
        self.ttl_s = float(ttl_s or self.TTL_S)
        self.token = uuid.uuid4().hex
        self.lost = False  # set when another scan took the lease over
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> dict | None:
        """The current lease ({} if unreadable), or None if there is none."""
        data = _read_bytes(self.out.fs, str(self.path))
        if data is None:
            return None
        try:
            return dict(json.loads(data))
        except ValueError:  # a writer died between create and write
            return {}

    def _expired(self, lease: dict) -> bool:
        if lease.get("host") == socket.gethostname() and "pid" in lease:
            if not _pid_alive(int(lease["pid"])):
                return True
        if "heartbeat" in lease:
            heartbeat = float(lease["heartbeat"])
        else:  # unreadable: judge by the file's age
            mtime = self.out.fs.get_file_info(str(self.path)).mtime
            heartbeat = mtime.timestamp() if mtime else time.time()
        return time.time() - heartbeat > float(lease.get("ttl_s", self.ttl_s))

    def _refuse(self, lease: dict) -> StoreLockedError:
        owner = f"{lease.get('host', '?')}:{lease.get('pid', '?')}"
        return StoreLockedError(
            f"{self.out.uri} is being written by another scan ({owner}); wait for it or "
            f"choose another --out (its lease expires {self.ttl_s:.0f} s after its "
            "last heartbeat)")

    def check(self) -> None:
        """Raise ``StoreLockedError`` if a live lease is held (reads only)."""
        lease = self.holder()
        if lease is not None and not self._expired(lease):
            raise self._refuse(lease)

    def _lease(self) -> bytes:
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                           "token": self.token, "heartbeat": time.time(),
                           "ttl_s": self.ttl_s}).encode()

    def _create(self) -> bool:
        path = str(self.path)
        if self.out.local:
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as fh:
                fh.write(self._lease())
            return True
        if self.holder() is not None:
            return False
        _put_bytes(self.out, path, self._lease())
        return (self.holder() or {}).get("token") == self.token

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            if (self.holder() or {}).get("token") != self.token:
                self.lost = True
                return
            _put_bytes(self.out, str(self.path), self._lease())

    def __enter__(self) -> WriterLock:
        try:
            self.out.fs.create_dir(self.out.path, recursive=True)
            for _ in range(2):
                if self._create():
                    self._thread = threading.Thread(target=self._renew, daemon=True,
                                                    name="relu-landscape-lease")
                    self._thread.start()
                    return self
                lease = self.holder()
                if lease is not None and not self._expired(lease):
                    raise self._refuse(lease)
                if lease is not None:
                    self.out.fs.delete_file(str(self.path))
        except (PermissionError, pa.ArrowException) as exc:
            raise OutputError(f"--out: cannot write {self.out.uri} "
                              f"({_first_line(exc)})") from None
        raise StoreLockedError(f"could not take {self.path}; remove it if no scan runs")

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if (self.holder() or {}).get("token") == self.token:
            self.out.fs.delete_file(str(self.path))
