"""Config validation: every bad input is one clear line, exit code 2, nothing written."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from relu_landscape.cli import main
from relu_landscape.config import load_config, validate
from relu_landscape.scan.plan import (
    DEFAULT_SHARD_SIZE,
    cell_of,
    plan_shards,
    shard_size_for,
)

GOOD = """
seed = 1
[grid]
K = { sign = [1, 3], relu = [2] }
weights = ["binary", "continuous"]
n = [11]
alpha = [0.2, 0.5]
seeds = 2
"""

# (what is wrong, the TOML, a fragment the message must contain)
INVALID = [
    ("even K for sign", GOOD.replace("sign = [1, 3]", "sign = [2]"), "grid.K.sign: K = 2 is even"),
    ("odd K for relu", GOOD.replace("relu = [2]", "relu = [3]"), "grid.K.relu: K = 3 is odd"),
    ("unknown activation", GOOD.replace("relu = [2]", "tanh = [2]"), "unknown activation 'tanh'"),
    ("N not divisible by K", GOOD.replace("n = [11]", "N = [22]"), "N = 22 is not divisible by K = 3"),
    ("alpha <= 0", GOOD.replace("[0.2, 0.5]", "[0.0, 0.5]"), "grid.alpha: got 0.0; must be > 0"),
    ("negative alpha", GOOD.replace("[0.2, 0.5]", "[-1]"), "grid.alpha: got -1"),
    ("unknown top key", GOOD + "\nfoo = 1\n", "foo: unknown key"),
    ("unknown grid key", GOOD.replace("seeds = 2", "seeds = 2\nalphas = [1]"), "grid.alphas: unknown key"),
    ("empty alpha list", GOOD.replace("[0.2, 0.5]", "[]"), "grid.alpha: empty list"),
    ("empty K table", GOOD.replace("{ sign = [1, 3], relu = [2] }", "{}"), "grid.K: must be a table"),
    ("bad type seeds", GOOD.replace("seeds = 2", 'seeds = "two"'), "grid.seeds: got 'two'; must be an integer"),
    ("unknown weights", GOOD.replace('"binary", "continuous"', '"ternary"'), "unknown value 'ternary'"),
    ("both n and N", GOOD.replace("n = [11]", "n = [11]\nN = [33]"), "give exactly one"),
    ("even n for sign binary", GOOD.replace("n = [11]", "n = [10]"), "n = 10 per unit is even"),
    ("P rounds to 0", GOOD.replace("[0.2, 0.5]", "[0.01]"), "gives P = 0 patterns"),
    ("unknown solver", GOOD + '\n[solver.binary]\nname = "magic"\n', "solver.binary.name: unknown solver 'magic'"),
    ("solver for wrong weights", GOOD + '\n[solver.binary]\nname = "gd"\n', "'gd' does not train binary"),
    ("unknown solver param", GOOD + "\n[solver.continuous]\nlearning_rate = 1\n", "solver.continuous.learning_rate: unknown key"),
    ("solver param range", GOOD + "\n[solver.continuous]\nlr = -1.0\n", "solver.continuous.lr: got -1.0; must be > 0"),
    ("bad backend", GOOD + '\n[execution]\nbackend = "spark"\n', "execution.backend: unknown value 'spark'"),
    ("bad shard size", GOOD + "\n[execution]\nshard_size = -1\n", "execution.shard_size: got -1"),
    ("unknown probe", GOOD + "\n[probes.nonsense]\n", "probes.nonsense: unknown probe"),
    ("bad inputs", 'inputs = "ternary"\n' + GOOD, "inputs: unknown value 'ternary'"),
    ("missing alpha", GOOD.replace("alpha = [0.2, 0.5]", ""), "grid.alpha: missing"),
    ("repeated alpha", GOOD.replace("[0.2, 0.5]", "[0.2, 0.2]"), "repeats a value"),
    ("not TOML", "[grid\nK = 1", "not valid TOML"),
    ("bool as int", GOOD.replace("seeds = 2", "seeds = true"), "grid.seeds: got True"),
]


def test_good_config_validates(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(GOOD)
    spec = load_config(path)
    assert dict(spec.grid.K) == {"sign": (1, 3), "relu": (2,)}
    assert spec.solver_for("binary").name == "bp"
    # the hash covers science, not execution
    other = load_config(path, overrides={"execution": {"backend": "local"}})
    assert other.config_hash == spec.config_hash
    path.write_text(GOOD.replace("seed = 1", "seed = 2"))
    assert load_config(path).config_hash != spec.config_hash


@pytest.mark.parametrize("case,text,fragment", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_config_one_line_exit_2_nothing_written(tmp_path, capsys, case, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "out"
    code = main(["scan", str(path), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, case
    assert fragment in err, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert all(line.startswith("relu-landscape: error: ") for line in lines)
    assert not out.exists()


def test_all_problems_reported_at_once():
    raw = {"grid": {"K": {"sign": [2], "relu": [3]}, "n": [11], "alpha": [-1.0]}, "bogus": 1}
    spec, issues = validate(raw)
    assert spec is None
    assert len(issues) >= 4, issues


def test_unknown_preset_and_missing_file(tmp_path, capsys):
    assert main(["scan", "--preset", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert main(["scan", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "no file at" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["demo", "paper"])
def test_presets_are_valid(preset):
    """Plan the preset (no compute) and check the plan against the TOML itself."""
    presets = resources.files("relu_landscape.presets")
    raw = tomllib.loads(presets.joinpath(f"{preset}.toml").read_text())
    g = raw["grid"]
    spec = load_config(preset=preset)
    assert set(g["K"]) == {"sign", "relu"}
    assert set(g["weights"]) == {"binary", "continuous"}
    size = shard_size_for(spec, "cpu")
    # a preset without a shard size takes it from the memory budget (the default here)
    assert size == raw["execution"].get("shard_size", DEFAULT_SHARD_SIZE["cpu"])
    shards = plan_shards(spec, size)
    ids = [i for shard in shards for i in shard.ids]
    # every cell of the TOML's grid, N = K n, with exactly seed indices 0 .. seeds-1
    expected = {
        (act, w, K, K * n, float(a))
        for act, Ks in g["K"].items()
        for w in g["weights"]
        for K in Ks
        for n in g["n"]
        for a in g["alpha"]
    }
    by_cell: dict[tuple, list[int]] = {}
    for i in ids:
        by_cell.setdefault(cell_of(i), []).append(i.s)
    assert set(by_cell) == expected
    assert all(sorted(s) == list(range(g["seeds"])) for s in by_cell.values())
    assert len(ids) == len(expected) * g["seeds"]  # so no instance is planned twice
    assert {(i.seed, i.inputs) for i in ids} == {(raw["seed"], raw["inputs"])}
    # K parity, N divisible by K, odd n for sign units with binary weights, P >= 1
    assert all(i.K % 2 == (i.activation == "sign") for i in ids)
    assert all(i.N % i.K == 0 and i.n in g["n"] for i in ids)
    assert all(i.n % 2 for i in ids if (i.activation, i.weights) == ("sign", "binary"))
    assert all(round(i.alpha * i.N) >= 1 for i in ids)
    # shards: one (activation, weights, K, N) group and its solver each, at most
    # ``size`` instances, ceil(group / size) per group, distinct ids
    groups: dict[tuple, int] = {}
    for i in ids:
        key = (i.activation, i.weights, i.K, i.N)
        groups[key] = groups.get(key, 0) + 1
    assert set(groups.values()) == {len(g["alpha"]) * g["seeds"]}
    assert len(shards) == sum(-(-count // size) for count in groups.values())
    assert len({shard.shard_id for shard in shards}) == len(shards)
    for shard in shards:
        assert 0 < shard.size <= size
        assert {(i.activation, i.weights, i.K, i.N) for i in shard.ids} == {
            (shard.activation, shard.weights, shard.K, shard.N)
        }
        assert shard.solver.name == raw["solver"][shard.weights]["name"]
