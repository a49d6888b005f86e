"""Layers import one way: what each layer must NOT load."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

RULES = {
    "relu_landscape.config": {"torch", "ray", "polars"},
    "relu_landscape.errors": {"torch", "ray", "polars"},
    "relu_landscape.store": {"torch", "ray"},
    "relu_landscape.scan.plan": {"torch", "ray"},
    "relu_landscape.model": {"ray"},
    "relu_landscape.solvers": {"ray"},
    "relu_landscape.scan.runner": {"ray"},
    "relu_landscape.analysis.capacity": {"torch", "ray"},
    "relu_landscape.analysis.report": {"torch", "ray"},
    "relu_landscape.stats": {"torch", "ray", "polars"},
    "relu_landscape.cli": {"torch", "ray", "polars"},
}


@pytest.mark.parametrize("module", sorted(RULES))
def test_module_does_not_load(module):
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", code])))
    assert not (RULES[module] & loaded), f"{module} loads {RULES[module] & loaded}"
