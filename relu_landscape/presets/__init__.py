"""Shipped scan specs, one TOML file each (``relu-landscape scan --preset NAME``)."""

from importlib import resources

NAMES = tuple(
    sorted(
        f.name.removesuffix(".toml")
        for f in resources.files(__name__).iterdir()
        if f.name.endswith(".toml")
    )
)
"""Every preset's name: its file name without .toml."""
