"""Shared fixtures: one real local Ray per test session (started on first use)."""

from __future__ import annotations

import os

import pytest

# Tests start their own heads; keep Ray's token auth consistent between driver and CLI.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="session")
def ray_local():
    """A real in-process Ray bound to 127.0.0.1 (2 CPUs, no dashboard), shared by tests.

    Tests that need a different Ray (a simulated cluster) must not use this fixture in
    the same session slot; they call ``ray.shutdown()`` first and restart nothing.
    """
    import ray

    from relu_landscape.scan.ray_backend import init_local

    if not ray.is_initialized():
        init_local(num_cpus=2)
    yield ray
    ray.shutdown()


def tiny_spec_toml(out_backend: str = "ray", **grid) -> str:
    """A small valid spec as TOML text (easy instances), for end-to-end tests."""
    g = {"K": "{ sign = [1, 3], relu = [2] }", "weights": '["binary", "continuous"]',
         "n": "[11]", "alpha": "[0.1, 0.2]", "seeds": "3", **grid}
    lines = ["seed = 7", "[grid]", *[f"{k} = {v}" for k, v in g.items()],
             "[solver.binary]", "sweeps = 300", "[solver.continuous]", "max_steps = 1500",
             "[execution]", f'backend = "{out_backend}"', "shard_size = 4"]
    return "\n".join(lines) + "\n"
