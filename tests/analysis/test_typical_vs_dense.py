"""Typical against dense solutions: the paired comparison of a plain and a dense-seeking
solver on the same instances, recomputed by hand, and the report's figure and verdicts."""

from __future__ import annotations

import statistics

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from relu_landscape import store
from relu_landscape.analysis import geometry
from relu_landscape.analysis.report import write_report
from relu_landscape.params import DENSE_SEEKING
from tests.analysis.synthetic import flags, write_fake_theory, write_runs

N, ALPHA, SEEDS = 20, 0.4, 6
NOISE = (0.5, 1.0)  # the continuous local-energy probe's noise scales s


def energy(solver: str, s: int, noise: float) -> float:
    """A made-up local energy: the replicated solutions lower by 0.05 * noise, with an
    instance-dependent offset the pairing must cancel."""
    return 0.1 * s + 0.2 * noise - (0.05 * noise if solver == "replicated_gd" else 0.0)


def robustness(solver: str, s: int, noise: float) -> float:
    """Equal on average, alternating sign by instance: no clear difference."""
    return 0.9 - 0.1 * noise + (0.01 * (-1) ** s if solver == "replicated_gd" else 0.0)


def _write(root) -> None:
    solved = {"gd": flags(SEEDS - 1, SEEDS), "replicated_gd": flags(SEEDS, SEEDS)}
    for solver, fl in solved.items():
        write_runs(root, "relu", "continuous", 2, N, {ALPHA: fl}, solver)
    write_fake_theory(root, {"relu": [2]})
    for table, value in (("local_energy", energy), ("robustness", robustness)):
        # probes exist for solutions only: gd did not solve instance SEEDS - 1
        rows = [(solver, s, x) for solver, fl in solved.items() for s in range(SEEDS)
                for x in NOISE if fl[s]]
        ids = [f"relu-continuous-2-{N}-{solver}-{ALPHA}-{s}" for solver, s, _ in rows]
        cols = {"run_id": ids, "local_energy": {"s": [x for *_, x in rows],
                                                 "D": pa.nulls(len(rows), pa.int64()),
                                                 "d": [x / 4 for *_, x in rows]},
                "robustness": {"p": [x for *_, x in rows]}}
        data = {"run_id": ids, "solver": [solver for solver, *_ in rows],
                "kappa": [0.0] * len(rows), **cols[table],
                table: [value(*r) for r in rows]}
        path = root / table / "activation=relu" / "weights=continuous" / "K=2" / "x.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(pa.table(data), path)


def test_pairs_are_same_instance_differences_recomputed_by_hand(tmp_path):
    _write(tmp_path)
    curve = geometry.CURVES["local_energy"]
    pairs = geometry.paired_rows(store.scan_table(tmp_path, "local_energy"),
                                 store.scan_runs(tmp_path), curve, DENSE_SEEKING)
    # instance SEEDS - 1 has no plain solution, so it has no pair
    assert sorted(set(pairs["seed_index"])) == list(range(SEEDS - 1))
    assert set(pairs["solver"]) == {"gd vs replicated_gd"}
    points = geometry.paired_curve(pairs, curve)
    assert points.height == len(NOISE)
    for row in points.iter_rows(named=True):
        diffs = [energy("replicated_gd", s, row["s"]) - energy("gd", s, row["s"])
                 for s in range(SEEDS - 1)]
        assert abs(row["diff"] - statistics.mean(diffs)) < 1e-12
        assert row["diff_stderr"] < 1e-12  # the offset 0.1 s cancels in every pair
        plain = [energy("gd", s, row["s"]) for s in range(SEEDS - 1)]
        assert abs(row["plain"] - statistics.mean(plain)) < 1e-12
        assert abs(row["plain_stderr"] - statistics.stdev(plain) / (SEEDS - 1) ** 0.5) < 1e-12
        assert row["pairs"] == SEEDS - 1 and abs(row["d"] - row["s"] / 4) < 1e-12


def test_summary_averages_settings_per_instance_and_gives_a_verdict(tmp_path):
    _write(tmp_path)
    runs = store.scan_runs(tmp_path)
    out = {}
    for name in ("local_energy", "robustness"):
        curve = geometry.CURVES[name]
        pairs = geometry.paired_rows(store.scan_table(tmp_path, name), runs, curve,
                                     DENSE_SEEKING)
        out[name] = geometry.paired_summary(pairs, curve).row(0, named=True)
    # local energy: every instance's mean difference is -0.05 * mean(NOISE) (lower is
    # better, zero spread); robustness: +-0.01 alternating, mean 0.002 with stderr
    # stdev/sqrt(5) = 0.0049: no clear difference
    assert abs(out["local_energy"]["diff"] + 0.05 * statistics.mean(NOISE)) < 1e-12
    assert out["local_energy"]["verdict"] == "dense more robust"
    per_instance = [0.01 * (-1) ** s for s in range(SEEDS - 1)]
    assert abs(out["robustness"]["diff"] - statistics.mean(per_instance)) < 1e-12
    stderr = statistics.stdev(per_instance) / (SEEDS - 1) ** 0.5
    assert abs(out["robustness"]["diff_stderr"] - stderr) < 1e-12
    assert out["robustness"]["verdict"] == "no difference at 2 stderr"


def test_verdict_follows_the_sign_and_the_probes_direction():
    for name, diff, want in (("local_energy", -0.1, "dense more robust"),
                             ("local_energy", 0.1, "plain more robust"),
                             ("robustness", 0.1, "dense more robust"),
                             ("robustness", -0.1, "plain more robust")):
        curve = geometry.CURVES[name]
        # two instances with differences diff +- 0.01: stderr 0.01, |mean| 10 stderr
        pairs = pl.DataFrame({
            "activation": ["relu"] * 2, "weights": ["binary"] * 2, "K": [2, 2],
            "N": [20, 20], "solver": ["a vs b"] * 2, "alpha": [0.4, 0.4], "kappa": [0.0] * 2,
            "seed": [0, 0],
            "seed_index": [0, 1], "plain_solver": ["a"] * 2, "dense_solver": ["b"] * 2,
            "plain": [0.5, 0.5], "dense": [0.5 + diff - 0.01, 0.5 + diff + 0.01],
            "diff": [diff - 0.01, diff + 0.01]})
        assert geometry.paired_summary(pairs, curve)["verdict"][0] == want, (name, diff)


def test_report_draws_typical_vs_dense_and_says_what_the_data_show(tmp_path):
    _write(tmp_path)
    res = write_report(tmp_path)
    assert any(p.name == "typical_vs_dense.png" for p in res.figures)
    text = res.path.read_text()
    assert ("local_energy: of 1 cells, the dense-seeking solver's solutions are more "
            "robust in 1, less robust in 0, and indistinguishable at two standard "
            "errors in 0.") in text
    assert "- robustness: of 1 cells" in text and "errors in 1." in text


def test_report_notes_when_no_dense_solver_ran(tmp_path):
    write_runs(tmp_path, "relu", "continuous", 2, N, {ALPHA: flags(2)}, "gd")
    write_fake_theory(tmp_path, {"relu": [2]})
    res = write_report(tmp_path)
    assert not any(p.name == "typical_vs_dense.png" for p in res.figures)
    assert any(n.startswith("typical_vs_dense: no instance solved") for n in res.notes)


def test_a_real_scan_with_two_solvers_feeds_the_figure(tmp_path):
    """A local scan lists gd and replicated_gd: every instance is trained by both, and
    the pairs are exactly the instances both solved (counted from the runs table)."""
    from relu_landscape.config import load_config
    from relu_landscape.scan import run_scan

    spec = tmp_path / "spec.toml"
    spec.write_text("""
seed = 3
[grid]
K = { relu = [2] }
weights = ["continuous"]
n = [8]
alpha = [0.3, 0.6]
seeds = 4
[[solver.continuous]]
name = "gd"
max_steps = 400
[[solver.continuous]]
name = "replicated_gd"
replicas = 3
max_steps = 400
[probes.local_energy]
draws = 4
points = 2
[probes.robustness]
draws = 4
points = 2
[execution]
backend = "local"
""")
    out = tmp_path / "out"
    assert not run_scan(load_config(spec), out, progress=False).failed
    runs = store.read_runs(out)
    assert runs.group_by("solver").len().sort("solver")["len"].to_list() == [8, 8]
    both = (runs.filter(pl.col("solved")).group_by("alpha", "s").len()
            .filter(pl.col("len") == 2).height)
    assert both > 0
    curve = geometry.CURVES["robustness"]
    pairs = geometry.paired_rows(store.scan_table(out, "robustness"), store.scan_runs(out),
                                 curve, DENSE_SEEKING)
    assert pairs.select("alpha", "seed_index").unique().height == both
    assert pairs.height == both * 2  # two noise levels each
    res = write_report(out, precision="fast")  # the theory is not what is tested here
    assert any(p.name == "typical_vs_dense.png" for p in res.figures)
