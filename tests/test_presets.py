"""The paper-small preset: the paper's figures at small N, planned (not run) here."""

from __future__ import annotations

from relu_landscape.config import load_config
from relu_landscape.scan.plan import DEFAULT_SHARD_SIZE, instances, plan_shards


def test_paper_small_plans_the_paper_figures_at_smaller_N():
    small, paper, demo = (
        load_config(preset=p) for p in ("paper-small", "paper", "demo")
    )
    # the same variants, probes and solvers as the paper, so the same figures
    assert (
        {a for a, _ in small.grid.K} == {a for a, _ in paper.grid.K} == {"sign", "relu"}
    )
    assert set(small.grid.weights) == set(paper.grid.weights)
    assert {p.name for p in small.probes} == {p.name for p in paper.probes}
    assert [small.solver_for(w).name for w in ("binary", "continuous")] == [
        paper.solver_for(w).name for w in ("binary", "continuous")
    ]
    Ns = {
        act: {K: [N for N, _ in small.grid.sizes(K)] for K in Ks}
        for act, Ks in small.grid.K
    }
    for per_K in Ns.values():
        assert len(per_K) >= 3  # capacity versus K
        for K, sizes in per_K.items():
            # two sizes for the finite-size trend, each below the paper's at this K
            assert len(sizes) == 2 and max(sizes) < min(
                N for N, _ in paper.grid.sizes(K)
            )
    # both activations share the alpha grid: the equal-alpha comparison has cells
    assert len(small.grid.alpha) >= 8
    ids = instances(small)
    assert len(ids) == 2880
    shards = plan_shards(small, DEFAULT_SHARD_SIZE["cpu"])
    assert sum(s.size for s in shards) == len(ids)
    assert all(s.size <= DEFAULT_SHARD_SIZE["cpu"] for s in shards)
    # the size argument for <= 30 minutes on 2 cores (unmeasured): a bounded multiple
    # of the demo's instances (about 1.5 minutes), with no larger N than 6 x 25
    assert len(ids) <= 5 * len(instances(demo))
    assert max(i.N for i in ids) <= 150
