"""`relu-landscape`: the command line. The only module that reads argv and sets exit codes.

Exit codes: 0 success; 1 work failed (e.g. shards that kept failing); 2 invalid input
(bad config, option or path: one line per problem on stderr, nothing computed or
written); 130 interrupted. Each subcommand imports its layer lazily, so ``query`` and
``theory`` start without loading torch or ray.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from relu_landscape.errors import InvalidConfigError, ReluLandscapeError, ScanFailedError
from relu_landscape.presets import NAMES as PRESETS


def env_ray_address() -> str | None:
    """The cluster address in RAY_ADDRESS (set by `ray job submit` inside a job), or
    None. An http(s):// value is the Jobs API a submitter talks to, not a cluster to
    join: it is ignored, so a shell that exports it for `ray job submit` still scans
    locally."""
    address = os.environ.get("RAY_ADDRESS", "").strip()
    return None if not address or address.startswith(("http://", "https://")) else address


def _scan(args: argparse.Namespace) -> int:
    from relu_landscape.config import load_config

    execution = {k: v for k, v in {
        "backend": args.backend, "address": args.address or env_ray_address(),
        "workers": args.workers, "device": args.device, "shard_size": args.shard_size,
        "gpus_per_worker": args.gpus_per_worker,
    }.items() if v is not None}
    spec = load_config(args.config, preset=args.preset, overrides={"execution": execution})
    if args.dry_run:
        from relu_landscape.scan import estimate

        print(estimate.render(*estimate.here(spec)))
        return 0
    if not args.out:
        raise InvalidConfigError("--out: required (where the results go); only "
                                 "--dry-run runs without it")

    from relu_landscape.scan import run_scan

    report = run_scan(spec, args.out, progress=not args.quiet)
    _print_scan_summary(report)
    if report.failed:
        raise ScanFailedError(
            f"{len(report.failed)} shard(s) failed after retries: "
            + "; ".join(f"{sid}: {err}" for sid, err in report.failed)
            + ". Fix the cause and rerun the same command (complete shards are kept)"
        )
    return 0


def _print_scan_summary(report) -> None:
    import polars as pl

    from relu_landscape import store
    from relu_landscape.analysis.capacity import GROUP, solved_fraction

    print(f"shards: {report.shards} total, {report.run} run, {report.skipped} skipped "
          f"(complete), {len(report.retried)} retried, {len(report.failed)} failed; "
          f"{report.instances_run} instances in {report.wall_s:.1f} s "
          f"({report.instances_per_s:.1f} instances/s) on {len(report.nodes)} node(s)")
    if "runs" not in store.tables(report.out):
        return
    cells = solved_fraction(store.scan_runs(report.out))
    table = cells.pivot(on="alpha", index=GROUP,
                        values="p_solved", sort_columns=True)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, float_precision=2):
        print("P(solved) by alpha:")
        print(table)
    print(f"results: table runs in {report.out}  (query: relu-landscape query "
          f"'{report.out}' \"SELECT ... FROM runs\")")


def _query(args: argparse.Namespace) -> int:
    import polars as pl

    from relu_landscape import store

    if not store.tables(args.dir):
        raise InvalidConfigError(f"DIR: no result tables under {args.dir!r}; run a scan first")
    try:
        df = store.sql(args.dir, args.sql)
    except (pl.exceptions.PolarsError, FileNotFoundError) as exc:
        msg = str(exc).strip().splitlines()[0]
        raise InvalidConfigError(f"SQL: {msg}; tables are {store.tables(args.dir)}") from None
    if args.csv:
        df.write_csv(args.csv)
    elif args.parquet:
        df.write_parquet(args.parquet)
    else:
        with pl.Config(tbl_rows=args.limit, tbl_cols=-1, tbl_hide_dataframe_shape=True):
            print(df)
    return 0


def _report(args: argparse.Namespace) -> int:
    from relu_landscape.analysis.report import write_report

    result = write_report(args.dir, args.out, precision=args.precision,
                          compare=args.compare, alpha=args.alpha, load=args.load)
    print(f"report: {result.path.resolve()} ({len(result.figures)} figures, "
          f"{len(result.notes)} note(s))")
    for note in result.notes:
        print(f"  skipped: {note}")
    return 0


def _parse_K(text: str) -> list[float]:
    out = []
    for item in text.split(","):
        item = item.strip()
        if item.lower() in ("inf", "infinity"):
            out.append(math.inf)
        elif item.isdigit():
            out.append(int(item))
        else:
            raise InvalidConfigError(f"--K: {item!r} is not a positive integer or 'inf'; "
                                     "e.g. --K 2,4,inf")
    return out


def _parse_floats(option: str, text: str) -> list[float]:
    """'0.1,0.2' or a range 'start:stop:step' (stop included)."""
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            count = int(round((stop - start) / step)) + 1
            return [round(start + i * step, 12) for i in range(max(count, 0))]
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise InvalidConfigError(f"{option}: {text!r} is not a list of numbers; "
                                 "e.g. 0.1,0.2 or 0.1:1.0:0.1") from None


def _emit_rows(rows: list[dict], args: argparse.Namespace, table: str) -> None:
    """Print theory rows as JSON or a table; write them to --out FILE.parquet if given."""
    import json

    if args.out:
        import polars as pl

        from relu_landscape import store

        frame = pl.DataFrame([{**r, "K": None if r["K"] == "inf" else r["K"]} for r in rows])
        store.write_file(args.out, table, frame.to_arrow())
    if args.format == "json":
        # NaN (an unconverged or undefined value) is not JSON: it is written as null
        clean = [{k: None if isinstance(v, float) and math.isnan(v) else v
                  for k, v in r.items()} for r in rows]
        print(json.dumps(clean, indent=1, default=float))
    else:
        import polars as pl

        with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_hide_dataframe_shape=True,
                       float_precision=5):
            print(pl.DataFrame([{**r, "K": str(r["K"])} for r in rows]))


def _theory_capacity(args: argparse.Namespace) -> int:
    from relu_landscape.theory import capacity_table

    acts, weights, Ks = args.activation.split(","), args.weights.split(","), _parse_K(args.K)
    levels = args.level.split(",")
    unknown = [lv for lv in levels if lv not in ("RS", "1RSB")]
    if unknown:
        raise InvalidConfigError(f"--level: unknown level(s) {unknown}; use RS, 1RSB or RS,1RSB")
    kappas = _parse_floats("--kappa", args.kappa)
    opts = {"tie": args.tie, "precision": args.precision, "kappas": kappas}
    rows = capacity_table(acts, weights, Ks, levels=("RS",), **opts) if "RS" in levels else []
    if "1RSB" in levels:
        # 1RSB exists for continuous weights at K = inf only: computed there, beside RS
        if math.inf not in Ks or "continuous" not in weights:
            raise InvalidConfigError("--level 1RSB: available for continuous weights at "
                                     "K = inf; add inf to --K and continuous to --weights")
        rows += capacity_table(acts, ["continuous"], [math.inf], levels=("1RSB",), **opts)
    from relu_landscape.theory.table import stability_note

    for note in dict.fromkeys(stability_note(r["weights"], r["level"], r["kappa"])
                              for r in rows):
        if note:
            print(f"warning: {note}", file=sys.stderr)
    _emit_rows(rows, args, "theory")
    return 0


def _theory_curve(args: argparse.Namespace) -> int:
    from relu_landscape.theory import curve_table

    Ks = _parse_K(args.K)
    if len(Ks) != 1:
        raise InvalidConfigError("--K: give one K for a curve, e.g. --K 4")
    K = Ks[0]
    rows = curve_table(args.activation, args.weights, K,
                       _parse_floats("--alpha", args.alpha), tie=args.tie,
                       precision=args.precision)
    key = {"activation": args.activation, "weights": args.weights,
           "K": "inf" if K == math.inf else K, "tie": args.tie}
    no_entropy = {"s": None, "s_stderr": None}  # continuous weights have no s column
    _emit_rows([{**key, **r, **(no_entropy if "s" not in r else {})} for r in rows],
               args, "theory_curve")
    return 0


def _local_entropy_rows(args: argparse.Namespace, curve, **extra) -> int:
    Ks, alphas = _parse_K(args.K), _parse_floats("--alpha", args.alpha)
    if len(alphas) != 1:
        raise InvalidConfigError("--alpha: give one load, e.g. --alpha 0.5")
    ds = _parse_floats("--d", args.d)
    rows = [row for K in Ks
            for row in curve(args.activation, K, alphas[0], ds, weights=args.weights,
                             damping=args.damping, **extra)]
    _emit_rows(rows, args, "local_entropy_theory")
    return 0


def _theory_franz_parisi(args: argparse.Namespace) -> int:
    from relu_landscape.theory import franz_parisi_curve

    return _local_entropy_rows(args, franz_parisi_curve, precision=args.precision)


def _theory_local_entropy(args: argparse.Namespace) -> int:
    from relu_landscape.theory import dense_local_entropy_curve
    from relu_landscape.theory.franz_parisi import exact

    if args.precision is not None and all(
            exact(args.activation, K) for K in _parse_K(args.K)):
        raise InvalidConfigError("--precision: local-entropy at K = 1 and K = inf is "
                                 "fixed quadrature (converged to ~1e-7); the option "
                                 "applies to finite K > 1 only, drop it")
    ys = _parse_floats("--y", args.y)  # float() reads "inf"
    if len(ys) != 1:
        raise InvalidConfigError("--y: give one y > 1, or inf (the default)")
    return _local_entropy_rows(args, dense_local_entropy_curve, y=ys[0],
                               precision=args.precision or "default")


def _theory_alpha_u(args: argparse.Namespace) -> int:
    from relu_landscape.theory.breakup import alpha_u_rows

    bracket = None
    if args.bracket is not None:
        bracket = tuple(_parse_floats("--bracket", args.bracket))
        if len(bracket) != 2:
            raise InvalidConfigError("--bracket: give two loads, e.g. 0.735,0.75")
    rows = alpha_u_rows(args.activation, args.weights, _parse_K(args.K),
                        precision=args.precision, bracket=bracket)
    _emit_rows(rows, args, "dense_breakup_theory")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import tempfile

    import torch

    from relu_landscape import bench

    if args.gpu and not torch.cuda.is_available():
        raise InvalidConfigError("--gpu: torch sees no CUDA device on this machine; "
                                 "run without --gpu for the CPU table")
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="relu-landscape-bench-") as work:
        result = bench.run(quick=args.quick, device="cuda" if args.gpu else "cpu",
                           workdir=Path(work))
    print(f"relu-landscape bench on {result['machine']['cpu']} "
          f"({result['machine']['cores']} cores, device {result['machine']['device']})")
    for name, value, target in bench.summary_rows(result):
        shown = "skipped" if value is None else f"{value:.3g}"
        print(f"  {name:<26} {shown:>10}   target {target}")
    if args.json:
        from relu_landscape import store

        store.write_json(args.json, result)
        print(f"details: {args.json}")
    return 0


def _theory_options(p: argparse.ArgumentParser, *, many: bool) -> None:
    p.add_argument("--activation", required=True,
                   help="sign, relu, tanh, erf, gelu, quadratic or linear "
                        "(relu_landscape.activations)"
                        + (" (comma-separated list)" if many else ""))
    p.add_argument("--weights", required=True,
                   help="binary or continuous" + (" (comma-separated list)" if many else ""))
    p.add_argument("--K", required=True,
                   help="hidden units: " + ("a list like 1,3,5,inf; each K must suit every "
                                            "listed activation (sign odd, relu even)"
                                            if many else "one K or inf"))
    p.add_argument("--tie", default="error",
                   help="error (Delta = 0 is an error, default) or success")
    p.add_argument("--precision", default="default", help="fast, default or high")
    p.add_argument("--format", choices=("json", "table"), default="table")
    p.add_argument("--out", help="also write the rows to this Parquet file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relu-landscape",
        description="Capacity and solution-space geometry of tree committee machines.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("scan", help="run a parameter scan and write Parquet results",
                       description="Run a scan (a TOML spec or a preset) into --out.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("config", nargs="?", help="TOML scan spec")
    src.add_argument("--preset", help="a shipped spec: " + ", ".join(PRESETS))
    p.add_argument("--out",
                   help="output directory or pyarrow.fs URI (s3://, gs://, hdfs://; "
                        "hive-partitioned Parquet); every node must reach it. "
                        "Required unless --dry-run")
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="validate, then print the plan (shards, instances, memory per "
                        "shard) and an upper bound of its time on the workers here "
                        "(calibrated once per machine, cached); starts nothing, "
                        "writes nothing to --out")
    p.add_argument("--resume", action="store_true",
                   help="complete an interrupted scan in --out; rerunning the same "
                        "command does the same (complete shards are always kept)")
    p.add_argument("--backend", help="ray (default) or local (in-process, no Ray)")
    p.add_argument("--address", help="Ray address of an existing cluster, e.g. auto")
    p.add_argument("--workers", type=int, help="number of Ray workers (0: one per GPU/CPU)")
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument("--shard-size", dest="shard_size", type=int,
                   help="instances per shard (default: what fits the memory budget, "
                        "at most 64 on CPU, 1024 on GPU)")
    p.add_argument("--gpus-per-worker", dest="gpus_per_worker", type=float,
                   help="GPU share of one Ray worker (default 1; 0.5 packs two per GPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_scan)

    q = sub.add_parser("query", help="polars SQL over a results directory",
                       description="Run SQL over the tables of DIR (runs, probe tables, theory).")
    q.add_argument("dir", help="results directory or URI written by `scan`")
    q.add_argument("sql", help='e.g. "SELECT K, avg(solved::int) FROM runs GROUP BY K"')
    fmt = q.add_mutually_exclusive_group()
    fmt.add_argument("--csv", help="write the result to this CSV file")
    fmt.add_argument("--parquet", help="write the result to this Parquet file")
    q.add_argument("--limit", type=int, default=50, help="rows to print (default 50)")
    q.set_defaults(func=_query)

    t = sub.add_parser("theory", help="replica theory: capacities and curves",
                       description="Replica-symmetric (and 1RSB) theory, docs/science.md §4-5.")
    tsub = t.add_subparsers(dest="theory_command", required=True)
    tc = tsub.add_parser("capacity", help="alpha_c per (activation, weights, K, level)")
    _theory_options(tc, many=True)
    tc.add_argument("--level", default="RS", help="RS, 1RSB or RS,1RSB (default RS)")
    tc.add_argument("--kappa", default="0",
                    help="stability margin(s) in units of the std of Delta, a list like "
                         "0,0.5; a list starting with a negative number needs '=': "
                         "--kappa=-0.5,0,0.5 (default 0; docs/theory_activations.md)")
    tc.set_defaults(func=_theory_capacity)
    tv = tsub.add_parser("curve", help="typical overlap q(alpha) (and entropy s for binary)")
    _theory_options(tv, many=False)
    tv.add_argument("--alpha", required=True, help="0.1,0.2,... or start:stop:step")
    tv.set_defaults(func=_theory_curve)
    for name, func, what in (
            ("franz-parisi", _theory_franz_parisi, "local entropy of a typical solution"),
            ("local-entropy", _theory_local_entropy, "local entropy of the densest regions")):
        tl = tsub.add_parser(name, help=f"{what} vs distance d (binary weights, §5)")
        tl.add_argument("--activation", required=True, help="sign or relu")
        tl.add_argument("--weights", default="binary", help="binary (the only choice)")
        tl.add_argument("--K", required=True,
                        help="hidden units, a list like 3,5,inf (sign odd, relu even)")
        tl.add_argument("--alpha", required=True, help="one load, e.g. 0.5")
        tl.add_argument("--d", required=True, help="distances, e.g. 0.1,0.05,0.02")
        tl.add_argument("--damping", type=float, default=0.5,
                        help="weight of the old iterate in the damped steps (default 0.5)")
        if name == "franz-parisi":
            tl.add_argument("--precision", default="default",
                            help="QMC points at finite K: fast, default or high")
        else:  # K = 1 and K = inf are fixed quadrature: refused there, not ignored
            tl.add_argument("--precision", default=None,
                            help="QMC points at finite K > 1: fast, default or high")
            tl.add_argument("--y", default="inf",
                            help="real replicas y > 1 of the large deviation, or inf "
                                 "(default; docs/local_entropy.md §7; finite K > 1: "
                                 "§8)")
        tl.add_argument("--format", choices=("json", "table"), default="table")
        tl.add_argument("--out", help="also write the rows to this Parquet file")
        tl.set_defaults(func=func)
    tu = tsub.add_parser("alpha-u", help="load where the dense regions break up "
                         "(binary weights, docs/local_entropy.md §6)")
    tu.add_argument("--activation", required=True, help="sign or relu")
    tu.add_argument("--weights", default="binary", help="binary (the only choice)")
    tu.add_argument("--K", required=True,
                    help="hidden units, a list like 1,3,inf (sign odd, relu even)")
    tu.add_argument("--precision", default="fast",
                    help="QMC points at finite K > 1: fast (default), default or high")
    tu.add_argument("--bracket", default=None,
                    help="loads LO,HI to bisect between (default 0.72 and 0.96 times "
                         "the RS capacity); a narrow one saves profiles at finite K")
    tu.add_argument("--format", choices=("json", "table"), default="table")
    tu.add_argument("--out", help="also write the rows to this Parquet file")
    tu.set_defaults(func=_theory_alpha_u)

    b = sub.add_parser("bench", help="throughput ratios measured in one run",
                       description="Benchmarks: roofline efficiency, batched vs naive, "
                       "incremental vs recompute, scan vs Ray Tune, theory table time.")
    b.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    b.add_argument("--gpu", action="store_true", help="measure on CUDA")
    b.add_argument("--json", help="write every figure and its details to this JSON file")
    b.set_defaults(func=_bench)

    r = sub.add_parser("report", help="figures and report.md from a results directory",
                       description="Analyse DIR (runs, probe tables, theory) into PNG "
                                   "figures and report.md; missing tables are skipped "
                                   "with a note.")
    r.add_argument("dir", help="results directory written by `scan`")
    r.add_argument("--out", help="report directory (default: DIR/report)")
    r.add_argument("--precision", default="default", choices=("fast", "default", "high"),
                   help="precision of the RS capacities computed for the report "
                   "(local-entropy curves at finite K are computed at 'fast')")
    r.add_argument("--compare", default="alpha", choices=("alpha", "load"),
                   help="geometry figures: ReLU vs sign at equal alpha (the paper's "
                        "choice) or at equal alpha/alpha_c")
    r.add_argument("--alpha", type=float, help="--compare alpha: the grid alpha closest "
                   "to this (default: the largest alpha every group has)")
    r.add_argument("--load", type=float, default=0.5,
                   help="--compare load: the target alpha/alpha_c (default 0.5)")
    r.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InvalidConfigError as exc:
        for issue in exc.issues:
            print(f"relu-landscape: error: {issue}", file=sys.stderr)
        return 2
    except ScanFailedError as exc:
        print(f"relu-landscape: error: {exc}", file=sys.stderr)
        return 1
    except ReluLandscapeError as exc:
        print(f"relu-landscape: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("relu-landscape: interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130


def console() -> None:
    """Console-script entry point."""
    sys.exit(main())
