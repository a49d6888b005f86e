"""The store: atomic shard files, provenance, and readers beyond polars."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from relu_landscape import store
from relu_landscape.errors import StoreLockedError


def fake_runs(n: int, shard: str = "abc") -> pa.Table:
    cols = {f.name: [] for f in store.RUNS_SCHEMA}
    for i in range(n):
        row = dict(run_id=f"r{i}", N=30, n=10, P=6, alpha=0.2, kappa=0.0, seed=0, s=i,
                   inputs="binary",
                   solver="anneal", solver_params="{}", solved=i % 2 == 0, errors=i % 2,
                   error_frac=(i % 2) / 6, min_stability=0.1, solvable=None, steps=10, wall_s=1.0,
                   batch_size=n, device="cpu", shard_id=shard)
        for k, v in row.items():
            cols[k].append(v)
    return pa.Table.from_pydict(cols, schema=store.RUNS_SCHEMA)


def write(root, shard="abc", n=4, K=3, activation="sign"):
    prov = store.Provenance(config_hash="deadbeef")
    return store.write_shard(root, "runs", fake_runs(n, shard), activation=activation,
                             weights="binary", K=K, shard_id=shard, provenance=prov,
                             device="cpu")


def test_provenance_round_trips(tmp_path):
    path = write(tmp_path)
    meta = store.read_provenance(path)
    assert meta["config_hash"] == "deadbeef" and meta["shard_id"] == "abc"
    assert meta["rows"] == 4 and meta["schema_version"] == store.SCHEMA_VERSION
    assert meta["package_version"] and meta["torch_version"] and meta["device"] == "cpu"
    assert store.shard_complete(path, "abc", 4)
    assert not store.shard_complete(path, "abc", 5)


def test_hive_layout_read_by_polars_pyarrow_duckdb(tmp_path):
    write(tmp_path, "s1", 4, K=3, activation="sign")
    write(tmp_path, "s2", 3, K=2, activation="relu")
    df = store.read_runs(tmp_path)
    assert df.height == 7
    assert df.schema["K"] == pl.Int64 and df.schema["alpha"] == pl.Float64
    assert sorted(df["activation"].unique()) == ["relu", "sign"]
    table = ds.dataset(tmp_path / "runs", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 7 and "K" in table.column_names
    glob = str(tmp_path / "runs" / "**" / "*.parquet")
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning=true) "
                   "WHERE activation = 'relu'").fetchall()[0][0]
    assert n == 3


def test_rewrite_is_idempotent(tmp_path):
    write(tmp_path)
    write(tmp_path)
    assert store.read_runs(tmp_path).height == 4


def test_writer_killed_midway_leaves_no_visible_file(tmp_path):
    # The child dies (hard exit, no cleanup) after the temporary file is written and
    # before the rename: exactly the window a crash could hit.
    code = textwrap.dedent(f"""
        import os, sys
        from relu_landscape import store
        import tests.test_store as t
        os.fsync = lambda fd: os._exit(9)
        t.write({str(tmp_path)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(store.Path(__file__).parents[1]))
    assert proc.returncode == 9
    leftovers = list((tmp_path / "runs").rglob("*"))
    assert any(p.name.endswith(".tmp") for p in leftovers)   # the partial file exists...
    assert not list((tmp_path / "runs").rglob("*.parquet"))  # ...but is never visible
    assert store.tables(tmp_path) == []
    assert ds.dataset(tmp_path / "runs", format="parquet").count_rows() == 0


def test_truncated_file_is_not_complete(tmp_path):
    path = write(tmp_path)
    path.write_bytes(path.read_bytes()[:100])
    assert not store.shard_complete(path, "abc", 4)


def test_one_writer_per_output(tmp_path):
    with store.WriterLock(tmp_path):
        with pytest.raises(StoreLockedError, match="another scan"):
            with store.WriterLock(tmp_path):
                pass
    with store.WriterLock(tmp_path):  # released, so it can be taken again
        pass


def _lease(root, host, pid, heartbeat, ttl_s=60.0):
    (root / ".lock").write_text(json.dumps({"host": host, "pid": pid, "token": "other",
                                            "heartbeat": heartbeat, "ttl_s": ttl_s}))


def test_stale_lock_of_dead_process_is_taken_over(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    _lease(tmp_path, store.socket.gethostname(), int(proc.stdout), time.time())
    with store.WriterLock(tmp_path) as lock:
        assert lock.holder()["token"] == lock.token
    assert not (tmp_path / ".lock").exists()


def test_lease_of_another_host_is_taken_over_only_after_expiry(tmp_path):
    # another host's process cannot be probed: its lease holds while its heartbeat is
    # fresh, and is taken over once the heartbeat is older than the lease's ttl
    _lease(tmp_path, "node-far-away", 1, time.time() - 30, ttl_s=60)
    with pytest.raises(StoreLockedError, match=r"node-far-away:1"):
        store.WriterLock(tmp_path).check()
    with pytest.raises(StoreLockedError, match="another scan"):
        with store.WriterLock(tmp_path):
            pass
    _lease(tmp_path, "node-far-away", 1, time.time() - 61, ttl_s=60)
    store.WriterLock(tmp_path).check()  # expired: nothing to refuse
    with store.WriterLock(tmp_path) as lock:
        lease = json.loads((tmp_path / ".lock").read_text())
        assert lease["token"] == lock.token and lease["host"] == store.socket.gethostname()


def test_holder_renews_its_heartbeat(tmp_path):
    with store.WriterLock(tmp_path, ttl_s=1.0) as lock:
        first = lock.holder()["heartbeat"]
        # the renewal thread rewrites the lease every ttl/4; wait for one rewrite by
        # polling the file (bounded), not by sleeping a fixed time
        deadline = time.time() + 10
        while lock.holder()["heartbeat"] == first and time.time() < deadline:
            time.sleep(0.01)
        assert lock.holder()["heartbeat"] > first and not lock.lost
        with pytest.raises(StoreLockedError):  # renewed, so never expired
            store.WriterLock(tmp_path, ttl_s=1.0).__enter__()


def test_sql_over_tables(tmp_path):
    write(tmp_path)
    out = store.sql(tmp_path, "SELECT K, avg(CAST(solved AS INT)) AS p FROM runs GROUP BY K")
    assert out.row(0) == (3, 0.5)


def test_write_file_fills_absent_nullable_columns(tmp_path):
    # a continuous-weights curve has no entropy: s and s_stderr are written as nulls
    rows = pa.table({"activation": ["relu"], "weights": ["continuous"], "K": [4],
                     "tie": ["error"], "alpha": [0.5], "q": [0.3], "q_stderr": [0.0]})
    path = store.write_file(tmp_path / "c.parquet", "theory_curve", rows)
    back = pl.read_parquet(path)
    assert back.columns == store.SCHEMAS["theory_curve"].names
    assert back["s"].is_null().all() and back["q"].to_list() == [0.3]
    assert store.read_provenance(path)["table"] == "theory_curve"
    with pytest.raises(KeyError):  # a required column is never invented
        store.write_file(tmp_path / "d.parquet", "theory_curve", rows.drop(["alpha"]))


def test_output_locations(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = store.output("results/rel")  # made absolute where it is given (the driver)
    assert out.local and out.uri == str(tmp_path / "results" / "rel")
    assert out.path == out.uri and out.join("runs", "x") == f"{out.uri}/runs/x"
    s3 = store.output("s3://bucket/a/b?endpoint_override=127.0.0.1:9&scheme=http"
                      "&region=us-east-1")
    assert type(s3.fs).__name__ == "S3FileSystem" and s3.path == "bucket/a/b"
    assert s3.uri.startswith("s3://bucket/a/b?") and not s3.local
    path = write(out.uri)  # a string root works like a Path
    assert store.shard_files(out) == [path] and store.tables(out) == ["runs"]
