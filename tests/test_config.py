"""Config validation: every bad input is one clear line, exit code 2, nothing written."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from relu_landscape.cli import main
from relu_landscape.config import PRESETS, load_config, validate
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
    ("unknown activation", GOOD.replace("relu = [2]", "softsign = [2]"),
     "unknown activation 'softsign'"),
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
    ("solver listed twice", GOOD + '\n[[solver.continuous]]\nname = "gd"\n[[solver.continuous]]\nname = "gd"\n', "a solver is listed twice"),
    ("second solver unknown", GOOD + '\n[[solver.binary]]\nname = "bp"\n[[solver.binary]]\nname = "magic"\n', "solver.binary[1].name: unknown solver 'magic'"),
    ("solver not a table", GOOD + '\n[solver]\nbinary = "bp"\n', "solver.binary: must be a table"),
    ("bad backend", GOOD + '\n[execution]\nbackend = "spark"\n', "execution.backend: unknown value 'spark'"),
    ("bad shard size", GOOD + "\n[execution]\nshard_size = -1\n", "execution.shard_size: got -1"),
    ("unknown probe", GOOD + "\n[probes.nonsense]\n", "probes.nonsense: unknown probe"),
    ("bad inputs", 'inputs = "ternary"\n' + GOOD, "inputs: unknown value 'ternary'"),
    ("missing alpha", GOOD.replace("alpha = [0.2, 0.5]", ""), "grid.alpha: missing"),
    ("alpha table lacks a weight type", GOOD.replace("alpha = [0.2, 0.5]", "alpha = { binary = [0.2] }"), "grid.alpha: no list for ['continuous'] weights"),
    ("alpha table unknown key", GOOD.replace("alpha = [0.2, 0.5]", "alpha = { binary = [0.2], continuous = [1.0], ternary = [1] }"), "grid.alpha.ternary: unknown key"),
    ("alpha table bad value", GOOD.replace("alpha = [0.2, 0.5]", "alpha = { binary = [0.2], continuous = [-1.0] }"), "grid.alpha.continuous: got -1.0"),
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


@pytest.mark.parametrize("preset", ["demo", "paper", "paper-small"])
def test_presets_are_valid(preset):
    """Plan the preset (no compute) and check the plan against the TOML itself."""
    presets = resources.files("relu_landscape.presets")
    raw = tomllib.loads(presets.joinpath(f"{preset}.toml").read_text())
    g = raw["grid"]

    def alphas(w):
        return g["alpha"][w] if isinstance(g["alpha"], dict) else g["alpha"]

    def solvers(w):
        tables = raw["solver"][w]
        return [t["name"] for t in (tables if isinstance(tables, list) else [tables])]

    spec = load_config(preset=preset)
    assert set(g["K"]) == {"sign", "relu"}
    assert set(g["weights"]) == {"binary", "continuous"}
    size = shard_size_for(spec, "cpu")
    # a preset without a shard size takes it from the memory budget (the default here)
    assert size == raw["execution"].get("shard_size", DEFAULT_SHARD_SIZE["cpu"])
    shards = plan_shards(spec, size)
    # every cell of the TOML's grid, N = K n, with exactly seed indices 0 .. seeds-1,
    # once per solver of its weight type
    expected = {
        (act, w, K, K * n, float(a), 0.0, solver)
        for act, Ks in g["K"].items()
        for w in g["weights"]
        for K in Ks
        for n in g["n"]
        for a in alphas(w)
        for solver in solvers(w)
    }
    by_cell: dict[tuple, list[int]] = {}
    for shard in shards:
        for i in shard.ids:
            by_cell.setdefault((*cell_of(i, shard.kappa), shard.solver.name), []).append(i.s)
    assert set(by_cell) == expected
    assert all(sorted(s) == list(range(g["seeds"])) for s in by_cell.values())
    ids = {i for shard in shards for i in shard.ids}
    assert {(i.seed, i.inputs) for i in ids} == {(raw["seed"], raw["inputs"])}
    # K parity, N divisible by K, odd n for sign units with binary weights, P >= 1
    assert all(i.K % 2 == (i.activation == "sign") for i in ids)
    assert all(i.N % i.K == 0 and i.n in g["n"] for i in ids)
    assert all(i.n % 2 for i in ids if (i.activation, i.weights) == ("sign", "binary"))
    assert all(round(i.alpha * i.N) >= 1 for i in ids)
    # shards: one (activation, weights, K, N) group and one solver each, at most
    # ``size`` instances, ceil(group / size) per group and solver, distinct ids
    groups: dict[tuple, int] = {}
    for i in ids:
        key = (i.activation, i.weights, i.K, i.N)
        groups[key] = groups.get(key, 0) + 1
    assert all(count == len(alphas(w)) * g["seeds"] for (_, w, _, _), count in groups.items())
    assert len(shards) == sum(-(-count // size) * len(solvers(key[1]))
                              for key, count in groups.items())
    assert len({shard.shard_id for shard in shards}) == len(shards)
    for shard in shards:
        assert 0 < shard.size <= size
        assert {(i.activation, i.weights, i.K, i.N) for i in shard.ids} == {
            (shard.activation, shard.weights, shard.K, shard.N)
        }
        assert shard.solver.name in solvers(shard.weights)


def test_several_solvers_train_the_same_instances():
    """[[solver.continuous]] twice: every instance is planned once per solver, in
    shards of that solver alone; the first solver is the primary one. A single
    [[solver.x]] table is the same science, and the same hash, as [solver.x]."""
    raw = tomllib.loads(GOOD + '\n[[solver.continuous]]\nname = "gd"\n'
                        '[[solver.continuous]]\nname = "replicated_gd"\nreplicas = 3\n')
    spec, issues = validate(raw)
    assert not issues, issues
    assert [s.name for s in spec.solvers_for("continuous")] == ["gd", "replicated_gd"]
    assert spec.solver_for("continuous").name == "gd"
    shards = plan_shards(spec, 5)
    planned = {}
    for shard in shards:
        for i in shard.ids:
            planned.setdefault((shard.weights, shard.solver.name), []).append(i)
    gd, replicated = planned[("continuous", "gd")], planned[("continuous", "replicated_gd")]
    assert len(set(gd)) == len(gd) and set(gd) == set(replicated)
    assert set(planned) == {("binary", "bp"), ("continuous", "gd"),
                            ("continuous", "replicated_gd")}
    one = validate(tomllib.loads(GOOD + '\n[[solver.continuous]]\nname = "gd"\n'))[0]
    table = validate(tomllib.loads(GOOD + '\n[solver.continuous]\nname = "gd"\n'))[0]
    assert one.config_hash == table.config_hash


ANY_G = """
[grid]
K = { tanh = [2, 4], erf = [3], gelu = [2], linear = [1] }
weights = ["binary", "continuous"]
n = [11]
alpha = [0.2]
kappa = [0.0, 0.5]
seeds = 2
"""


def test_any_registered_activation_and_margins():
    """Every registered g is a grid key with its valid K; grid.kappa is a list of cells;
    the binary default falls back from bp (sign and relu only) to anneal."""
    spec, issues = validate(tomllib.loads(ANY_G))
    assert not issues, issues
    assert spec.grid.kappa == (0.0, 0.5)
    assert spec.solver_for("binary").name == "anneal"
    assert spec.solver_for("continuous").name == "gd"
    shards = plan_shards(spec, 100)
    # every (activation, K, kappa) has its own shards, on the same instances
    by_kappa = {k: {i for s in shards if s.kappa == k for i in s.ids} for k in (0.0, 0.5)}
    assert by_kappa[0.0] == by_kappa[0.5] and len(by_kappa[0.0]) == 5 * 2 * 2
    assert len({s.shard_id for s in shards}) == len(shards)
    assert {cell_of(i, s.kappa)[-1] for s in shards for i in s.ids} == {0.0, 0.5}
    # the paper's grid keeps its default solvers and kappa = 0
    spec = validate(tomllib.loads(GOOD))[0]
    assert spec.grid.kappa == (0.0,) and spec.solver_for("binary").name == "bp"


@pytest.mark.parametrize("text,fragment", [
    (ANY_G.replace("gelu = [2]", "gelu = [3]"), "grid.K.gelu: K = 3 is odd; gelu units"),
    (ANY_G + '\n[solver.binary]\nname = "bp"\n',
     "'bp' trains only sign, relu, not tanh K = 2; tanh K = 2 at kappa = 0.5"),
    (GOOD.replace("seeds = 2", "seeds = 2\nkappa = [-0.5]") + '\n[solver.continuous]\nname = "lp"\n',
     "(kappa >= 0), not sign K = 1 at kappa = -0.5;"),
    (ANY_G.replace("gelu = [2], ", "") + '\n[solver.binary]\nname = "sbpi"\n',
     "'sbpi' trains only sign, relu, not tanh K = 2"),
    (ANY_G + '\n[solver.continuous]\nname = "lp"\n',
     "'lp' trains only sign K = 1, linear K = 1 (kappa >= 0), not tanh K = 2"),
    (ANY_G.replace("[0.0, 0.5]", '["big"]'), "grid.kappa: got 'big'"),
])
def test_solvers_refuse_what_they_cannot_train(text, fragment):
    _, issues = validate(tomllib.loads(text))
    assert any(fragment in line for line in issues), issues


def test_lp_trains_the_linear_perceptron():
    spec, issues = validate(tomllib.loads(ANY_G.replace(
        "{ tanh = [2, 4], erf = [3], gelu = [2], linear = [1] }", "{ linear = [1] }").replace(
        "[0.0, 0.5]", "[0.0]") + '\n[solver.continuous]\nname = "lp"\n'))
    assert not issues and spec.solver_for("continuous").name == "lp"


def test_every_shipped_preset_is_listed_in_the_help_and_loads(capsys):
    from pathlib import Path

    import relu_landscape.presets

    files = sorted(p.stem for p in Path(relu_landscape.presets.__file__).parent.glob("*.toml"))
    assert list(PRESETS) == files and "margins" in files
    with pytest.raises(SystemExit) as done:
        main(["scan", "--help"])
    assert done.value.code == 0
    assert "a shipped spec: " + ", ".join(files) in " ".join(capsys.readouterr().out.split())
    for name in files:
        assert load_config(preset=name).grid.seeds >= 1
