"""The paper-small preset: the paper's figures at small N, planned (not run) here."""

from __future__ import annotations

from relu_landscape.config import load_config
from relu_landscape.params import DENSE_SEEKING
from relu_landscape.scan.plan import DEFAULT_SHARD_SIZE, instances, plan_shards


def test_paper_small_plans_the_paper_figures_at_smaller_N():
    small, paper = (load_config(preset=p) for p in ("paper-small", "paper"))
    # the same variants, probes and solvers as the paper, so the same figures
    assert (
        {a for a, _ in small.grid.K} == {a for a, _ in paper.grid.K} == {"sign", "relu"}
    )
    assert set(small.grid.weights) == set(paper.grid.weights)
    assert {p.name for p in small.probes} == {p.name for p in paper.probes}
    # a plain and a dense-seeking solver per weight type (typical against dense);
    # binary: sbpi stands in for the paper's bp at small N, for time
    for w in ("binary", "continuous"):
        small_solvers = [s.name for s in small.solvers_for(w)]
        assert len(small_solvers) == 2 and small_solvers[1] in DENSE_SEEKING
        assert small_solvers[1] == paper.solvers_for(w)[1].name
        assert small_solvers[0] not in DENSE_SEEKING
    Ns = {
        act: {K: [N for N, _ in small.grid.sizes(K)] for K in Ks}
        for act, Ks in small.grid.K
    }
    for per_K in Ns.values():
        assert len(per_K) >= 3  # capacity versus K
        for K, sizes in per_K.items():
            # three sizes for the finite-size trend, the largest below the paper's
            assert len(sizes) == 3 and max(sizes) < max(
                N for N, _ in paper.grid.sizes(K)
            )
    # both activations share each weight type's alpha grid (the equal-alpha
    # comparison has cells); binary weights stop at the bound alpha = 1
    assert all(len(small.grid.alphas(w)) >= 8 for w in small.grid.weights)
    assert max(small.grid.alphas("binary")) <= 1.0 < max(small.grid.alphas("continuous"))
    ids = instances(small)
    assert len(ids) == 6 * 3 * small.grid.seeds * (10 + 8)  # (K, n) x seeds x alphas
    assert small.grid.seeds >= 10  # Wilson 95% half-width <= 0.3 at P(solved) = 1/2
    shards = plan_shards(small, DEFAULT_SHARD_SIZE["cpu"])
    assert sum(s.size for s in shards) == 2 * len(ids)  # two solvers per instance
    assert all(s.size <= DEFAULT_SHARD_SIZE["cpu"] for s in shards)
    # no larger N than 6 x 25, so the run stays within the README's measured time
    assert max(i.N for i in ids) <= 150
