"""`make gpu-check`: the CUDA paths checked against the CPU on one GPU machine.

Runs, in a few minutes on one GPU:

- the per-instance random streams made on the GPU (``rng.block_uniforms``) against
  numpy's on the host, bit for bit;
- a small scan of every variant (sign K = 1, 3; ReLU K = 2, 4; binary and continuous
  weights) under each solver, once with ``--device cuda`` and once with ``--device
  cpu``, on the local backend, compared instance by instance: the same instances
  (run_id, P), and equal solved flags and error counts where the solver's arithmetic
  is exact on both devices (see ``EXACT``);
- ``bench --gpu`` (its headline figures).

Prints one JSON line; exits 1 when a check that must hold fails, 2 without CUDA.

    python -m relu_landscape.gpu_check [--out DIR] [--no-bench]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import polars as pl
import torch

from relu_landscape import bench, store
from relu_landscape.config import validate
from relu_landscape.errors import DeviceError, ReluLandscapeError
from relu_landscape.instances import uniform_block
from relu_landscape.rng import block_uniforms
from relu_landscape.scan import run_scan

# The scans compared, one per (weight type, solver).
SOLVER_RUNS = (("binary", "sbpi"), ("continuous", "gd"), ("binary", "anneal"),
               ("binary", "bp"), ("binary", "clipped_sgd"),
               ("continuous", "replicated_gd"))

# Solvers whose result is decided by exact arithmetic on both devices: their states are
# +-1 weights and integer-valued fields (sums of +-1 products, exact in float32 below
# 2**24) driven by the bit-identical random streams, so CPU and CUDA must agree on every
# instance. The others (descent on float weights, BP messages) round differently on the
# two devices (reduction order), so they are reported as agreement fractions only.
EXACT = frozenset({"sbpi", "anneal"})

GRID = {"K": {"sign": [1, 3], "relu": [2, 4]}, "n": [25], "alpha": [0.5, 1.0],
        "seeds": 4}

# Probed in the first scan of each weight type only (they do not depend on the solver).
PROBES = {"local_energy": {"draws": 16}, "robustness": {"draws": 16}}


def rng_identical(device: str, *, keys: int = 64, n: int = 4096) -> bool:
    """``block_uniforms`` on ``device`` equals numpy's ``uniform_block`` bit for bit."""
    ks = [(7919 * i) ** 3 + i for i in range(keys)]
    for block in (0, 1, 12345):
        mine = block_uniforms(ks, block, (n,), device).cpu().numpy()
        ref = uniform_block(ks, block, (n,))
        if not (mine == ref).all():
            return False
    return True


def _scan(out: Path, device: str, weights: str, solver: str,
          probes: dict) -> pl.DataFrame:
    spec, issues = validate({
        "grid": {**GRID, "weights": [weights]},
        "solver": {weights: {"name": solver}},
        "probes": probes,
        "execution": {"backend": "local", "device": device},
    })
    if issues:
        raise ReluLandscapeError("; ".join(issues))
    t0 = time.perf_counter()
    run_scan(spec, out, progress=False)
    runs = store.read_runs(out).select(
        "run_id", "activation", "weights", "K", "P", "solver", "solved", "errors")
    return runs.with_columns(pl.lit(time.perf_counter() - t0).alias("scan_s"))


def compare(cpu: pl.DataFrame, cuda: pl.DataFrame) -> list[dict]:
    """One row per (solver, activation, weights, K): instances, and how many agree."""
    both = cpu.join(cuda, on="run_id", how="full", suffix="_cuda", coalesce=True)
    rows = []
    for key, g in both.group_by("solver", "activation", "weights", "K",
                                maintain_order=True):
        solver = key[0]
        same_inst = g.filter(pl.col("P").is_not_null() & pl.col("P_cuda").is_not_null()
                             & (pl.col("P") == pl.col("P_cuda")))
        rows.append({
            "solver": solver, "activation": key[1], "weights": key[2], "K": key[3],
            "instances": g.height, "same_instances": same_inst.height == g.height,
            "solved_cpu": int(g["solved"].sum()),
            "solved_cuda": int(g["solved_cuda"].sum()),
            "solved_agree": int((g["solved"] == g["solved_cuda"]).sum()),
            "errors_agree": int((g["errors"] == g["errors_cuda"]).sum()),
            "exact": solver in EXACT,
        })
    return rows


def _scans(out: Path, device: str, runs: tuple[tuple[str, str], ...]) -> list:
    """The comparison scans of ``runs`` on ``device`` in order: (runs, seconds) each."""
    frames = []
    for i, (weights, solver) in enumerate(runs):
        tag = f"{weights}-{solver}"
        print(f"gpu-check: scan {tag} on {device}", file=sys.stderr, flush=True)
        frame = _scan(out / f"{tag}-{device}", device, weights, solver,
                      PROBES if i < 2 else {})
        frames.append((frame.drop("scan_s"), frame["scan_s"][0]))
    return frames


def run(out: Path, *, with_bench: bool = True,
        runs: tuple[tuple[str, str], ...] = SOLVER_RUNS) -> dict:
    """Every check; returns the JSON-ready result with ``ok``."""
    if not torch.cuda.is_available():
        raise DeviceError(f"gpu-check: torch {torch.__version__} sees no CUDA device")
    t0 = time.perf_counter()
    result: dict = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                    "rng_bit_identical": rng_identical("cuda")}
    # the CPU side runs in a process of its own, beside the CUDA side
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        cpu_side = pool.submit(_scans, out, "cpu", runs)
        cuda = _scans(out, "cuda", runs)
        cpu = cpu_side.result()
    result["scan"] = [row for (a, _), (b, _) in zip(cpu, cuda, strict=True)
                      for row in compare(a, b)]
    result["scan_seconds"] = {f"{w}-{s}": {"cpu": a, "cuda": b}
                              for (w, s), (_, a), (_, b) in zip(runs, cpu, cuda,
                                                                strict=True)}
    ok = result["rng_bit_identical"] and all(
        r["same_instances"]
        and (not r["exact"] or r["solved_agree"] == r["errors_agree"] == r["instances"])
        for r in result["scan"])
    if with_bench:
        print("gpu-check: bench --gpu", file=sys.stderr, flush=True)
        b = bench.run(quick=False, device="cuda", workdir=out / "bench")
        result["bench"] = {k: b[k] for k in (*bench.TARGETS, "theory_table_seconds",
                                              "peak_matmul_flops_per_s",
                                              "bandwidth_bytes_per_s",
                                              "peak_bytes_per_instance")}
        result["bench"]["roofline"] = b["roofline"]
        result["bench"]["batched_vs_naive_detail"] = b["batched_vs_naive_detail"]
        ok = ok and b["batched_vs_naive_detail"]["same_solved"]
    result["ok"] = bool(ok)
    result["seconds"] = time.perf_counter() - t0
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m relu_landscape.gpu_check",
                                description=__doc__.split("\n")[0])
    p.add_argument("--out", help="keep the scans here (default: a temporary directory)")
    p.add_argument("--no-bench", action="store_true", help="skip bench --gpu")
    p.add_argument("--solvers", help="compare only these solvers (comma-separated)")
    args = p.parse_args(argv)
    runs = SOLVER_RUNS
    if args.solvers:
        runs = tuple(r for r in SOLVER_RUNS if r[1] in args.solvers.split(","))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(Path(args.out or tmp).absolute(), with_bench=not args.no_bench,
                         runs=runs)
    except ReluLandscapeError as exc:
        print(f"gpu-check: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, default=float))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
