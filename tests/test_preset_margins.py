"""The margins preset: valid, and planned over every activation, K and kappa it lists
(configuration only; the scan itself is not part of CI)."""

from __future__ import annotations

import tomllib
from importlib import resources

from relu_landscape.config import PRESETS, load_config
from relu_landscape.scan.plan import cell_of, plan_shards, shard_size_for


def test_margins_preset_plans_every_cell_once_per_seed():
    assert "margins" in PRESETS
    raw = tomllib.loads(
        resources.files("relu_landscape.presets").joinpath("margins.toml").read_text()
    )
    g = raw["grid"]
    spec = load_config(preset="margins")
    shards = plan_shards(spec, shard_size_for(spec, "cpu"))
    seeds: dict[tuple, list[int]] = {}
    for shard in shards:
        assert shard.solver.name == "gd"
        for i in shard.ids:
            seeds.setdefault(cell_of(i, shard.kappa), []).append(i.s)
    expected = {
        (act, "continuous", K, N, float(a), float(kappa))
        for act, Ks in g["K"].items()
        for K in Ks
        for N in g["N"]
        for a in g["alpha"]
        for kappa in g["kappa"]
    }
    assert set(seeds) == expected
    assert all(sorted(s) == list(range(g["seeds"])) for s in seeds.values())
    assert {k for *_, k in expected} == {0.0, 0.5}
    assert {a for a, *_ in expected} == {"tanh", "erf", "linear"}
