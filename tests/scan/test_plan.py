"""Shard planning: grouping by shape and solver, sizes, content-hash ids."""

from __future__ import annotations

import dataclasses

from relu_landscape.config import load_config
from relu_landscape.scan import plan
from tests.conftest import tiny_spec_toml


def _spec(tmp_path, **extra):
    path = tmp_path / "s.toml"
    path.write_text(tiny_spec_toml(**extra))
    return load_config(path)


def test_shards_group_one_shape_and_solver_and_cover_the_grid_once(tmp_path):
    spec = _spec(tmp_path)
    shards = plan.plan_shards(spec, 5)
    ids = [i for s in shards for i in s.ids]
    assert sorted(map(repr, ids)) == sorted(map(repr, plan.instances(spec)))
    for s in shards:
        assert 1 <= s.size <= 5 and s.solver == spec.solver_for(s.weights)
        assert {(i.activation, i.weights, i.K, i.N) for i in s.ids} == {
            (s.activation, s.weights, s.K, s.N)
        }
    assert len({s.shard_id for s in shards}) == len(shards)


def test_default_size_depends_on_the_device_type(tmp_path):
    spec = _spec(tmp_path)
    auto = dataclasses.replace(
        spec, execution=dataclasses.replace(spec.execution, shard_size=0)
    )
    assert plan.shard_size_for(auto, "cpu") == plan.DEFAULT_SHARD_SIZE["cpu"]
    assert plan.shard_size_for(auto, "cuda") == plan.DEFAULT_SHARD_SIZE["cuda"]
    assert plan.shard_size_for(spec, "cuda") == 4  # an explicit size wins


def test_shard_id_is_a_content_hash(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    first = [s.shard_id for s in plan.plan_shards(spec, 4)]
    assert first == [s.shard_id for s in plan.plan_shards(_spec(tmp_path), 4)]
    other_solver = load_config(
        tmp_path / "s.toml",
        overrides={"solver": {"binary": {"name": "sbpi", "max_epochs": 301}}},
    )
    changed = {s.shard_id for s in plan.plan_shards(other_solver, 4)}
    assert len(changed & set(first)) == 6  # only the binary shards changed id
    monkeypatch.setattr(plan, "SCHEMA_VERSION", plan.SCHEMA_VERSION + 1)
    assert not set(first) & {s.shard_id for s in plan.plan_shards(spec, 4)}


def test_pending_shards_are_dispatched_costliest_first(tmp_path, monkeypatch):
    from relu_landscape.scan import estimate, run_scan

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the nominal calibration
    path = tmp_path / "s.toml"  # 6 instances per shape at shard size 4: 4 + 2
    path.write_text(tiny_spec_toml("local", K="{ sign = [1], relu = [2] }",
                                   weights='["binary"]'))
    spec = load_config(path)
    shards: list = []
    report = run_scan(spec, tmp_path / "out", progress=False,
                      on_dispatch=lambda shard, worker: shards.append(shard))
    assert report.run == 4 and sorted(s.size for s in shards) == [2, 2, 4, 4]
    cal = estimate.dispatch_calibration("cpu", spec)
    costs = [sum(estimate.shard_seconds(s, cal)) for s in shards]
    assert costs == sorted(costs, reverse=True)  # plan order would be 4, 2, 4, 2
