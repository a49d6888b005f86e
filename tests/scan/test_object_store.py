"""Outputs on an object store: an S3 API (moto's standalone server) through pyarrow.fs."""

from __future__ import annotations

import json
import time

import pytest

from relu_landscape import store
from relu_landscape.cli import main
from relu_landscape.config import load_config
from relu_landscape.errors import StoreLockedError
from relu_landscape.scan import pending, plan, run_scan
from tests.conftest import inside_first_page, make_bucket, s3_uri, tiny_spec_toml
from tests.scan.test_end_to_end import COMPARED


@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_spec_toml(K="{ sign = [1], relu = [2] }", weights='["binary"]'))
    return path  # 2 (activation, K) x 2 alphas x 3 seeds = 12 instances, 4 shards


def _values(out):
    return store.read_runs(out).select(COMPARED).sort("run_id")


@pytest.mark.ray
def test_scan_resume_and_corrupt_shards_on_s3(ray_local, s3_endpoint, spec_path,
                                               tmp_path, capsys):
    uri = s3_uri(s3_endpoint, make_bucket(s3_endpoint), "results/tiny")
    out = store.output(uri)
    assert main(["scan", str(spec_path), "--out", uri, "--quiet"]) == 0  # Ray workers
    assert "4 run, 0 skipped" in capsys.readouterr().out
    spec = load_config(spec_path, overrides={"execution": {"backend": "local"}})
    run_scan(spec, tmp_path / "ref", progress=False)
    before = _values(uri)
    assert before.height == 12 and before.equals(_values(tmp_path / "ref"))
    assert out.read_json("scan.json")["config_hash"] == spec.config_hash
    assert not out.fs.get_file_info(out.join(".lock")).is_file  # lease released
    # the same objects, read straight from the bucket by pyarrow: one per shard
    files = store.shard_files(uri)
    assert len(files) == 4 and all(out.fs.get_file_info(str(f)).size > 0 for f in files)

    # damage the bucket: a truncated object, flipped bytes, a missing one
    truncated, flipped, missing = map(str, files[:3])
    with out.fs.open_input_stream(truncated) as fh:
        data = fh.read()
    with out.fs.open_output_stream(truncated) as fh:
        fh.write(data[:-40])
    with out.fs.open_input_stream(flipped) as fh:
        data = bytearray(fh.read())
    data[inside_first_page(data)] ^= 0xFF  # caught by the page CRC
    with out.fs.open_output_stream(flipped) as fh:
        fh.write(bytes(data))
    out.fs.delete_file(missing)
    shards = plan.plan_shards(spec, spec.execution.shard_size)
    assert {s.shard_id for s in pending(shards, uri)} == {
        f.stem for f in files[:3]}
    again = run_scan(spec, uri, progress=False)  # resume (local backend, same spec)
    assert again.run == 3 and again.skipped == 1
    assert _values(uri).equals(before)
    assert main(["query", uri, "SELECT count(*) AS n FROM runs"]) == 0
    assert "12" in capsys.readouterr().out


def test_lease_on_s3_refuses_a_second_scan_and_expires(s3_endpoint, spec_path, capsys):
    uri = s3_uri(s3_endpoint, make_bucket(s3_endpoint), "out")
    out = store.output(uri)
    spec = load_config(spec_path, overrides={"execution": {"backend": "local"}})
    with store.WriterLock(uri):
        with pytest.raises(StoreLockedError, match="being written by another scan"):
            run_scan(spec, uri, progress=False)
        assert main(["scan", str(spec_path), "--out", uri, "--backend", "local"]) == 2
        assert "being written by another scan" in capsys.readouterr().err
    assert not out.fs.get_file_info(out.join(".lock")).is_file
    # a lease left by a crashed node on another host: refused while fresh...
    lease = {"host": "lost-node", "pid": 1, "token": "x", "ttl_s": 60}
    with out.fs.open_output_stream(out.join(".lock")) as fh:
        fh.write(json.dumps({**lease, "heartbeat": time.time()}).encode())
    with pytest.raises(StoreLockedError, match="lost-node:1"):
        run_scan(spec, uri, progress=False)
    # ...and taken over once its heartbeat is older than its ttl
    with out.fs.open_output_stream(out.join(".lock")) as fh:
        fh.write(json.dumps({**lease, "heartbeat": time.time() - 61}).encode())
    report = run_scan(spec, uri, progress=False)
    assert report.run == 4 and not report.failed and _values(uri).height == 12
    assert not out.fs.get_file_info(out.join(".lock")).is_file


def test_missing_bucket_exits_2_and_writes_nothing(s3_endpoint, spec_path, capsys):
    uri = s3_uri(s3_endpoint, "rl-no-such-bucket", "out")
    assert main(["scan", str(spec_path), "--out", uri, "--backend", "local"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bucket 'rl-no-such-bucket'" in err[0]
