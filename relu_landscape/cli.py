"""`relu-landscape`: the command line. The only module that reads argv and sets exit codes.

Exit codes: 0 success; 1 work failed (e.g. shards that kept failing); 2 invalid input
(bad config, option or path: one line per problem on stderr, nothing computed or
written); 130 interrupted. Each subcommand imports its layer lazily, so ``query`` and
``theory`` start without loading torch or ray.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from relu_landscape.errors import InvalidConfigError, ReluLandscapeError, ScanFailedError


def _scan(args: argparse.Namespace) -> int:
    from relu_landscape.config import load_config

    execution = {k: v for k, v in {
        "backend": args.backend, "address": args.address, "workers": args.workers,
        "device": args.device, "shard_size": args.shard_size,
    }.items() if v is not None}
    spec = load_config(args.config, preset=args.preset, overrides={"execution": execution})

    from relu_landscape.scan import run_scan

    report = run_scan(spec, args.out, resume=args.resume, progress=not args.quiet)
    _print_scan_summary(report)
    if report.failed:
        raise ScanFailedError(
            f"{len(report.failed)} shard(s) failed after retries: "
            + "; ".join(f"{sid}: {err}" for sid, err in report.failed)
            + ". Fix the cause and rerun with --resume"
        )
    return 0


def _print_scan_summary(report) -> None:
    import polars as pl

    from relu_landscape import store
    from relu_landscape.analysis.capacity import solved_fraction

    print(f"shards: {report.shards} total, {report.run} run, {report.skipped} skipped "
          f"(complete), {len(report.retried)} retried, {len(report.failed)} failed; "
          f"{report.instances_run} instances in {report.wall_s:.1f} s "
          f"({report.instances_per_s:.1f} instances/s)")
    if "runs" not in store.tables(report.out):
        return
    cells = solved_fraction(store.scan_runs(report.out))
    table = cells.pivot(on="alpha", index=["activation", "weights", "K", "N", "solver"],
                        values="p_solved", sort_columns=True)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, float_precision=2):
        print("P(solved) by alpha:")
        print(table)
    print(f"results: {Path(report.out).resolve()}/runs  (query: relu-landscape query "
          f"{report.out} \"SELECT ... FROM runs\")")


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
    src.add_argument("--preset", help="a shipped spec: demo or paper")
    p.add_argument("--out", required=True, help="output directory (hive-partitioned Parquet)")
    p.add_argument("--resume", action="store_true",
                   help="complete an interrupted scan in --out (complete shards are kept)")
    p.add_argument("--backend", help="ray (default) or local (in-process, no Ray)")
    p.add_argument("--address", help="Ray address of an existing cluster, e.g. auto")
    p.add_argument("--workers", type=int, help="number of Ray workers (0: one per GPU/CPU)")
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument("--shard-size", dest="shard_size", type=int, help="instances per shard")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_scan)

    q = sub.add_parser("query", help="polars SQL over a results directory",
                       description="Run SQL over the tables of DIR (runs, probe tables, theory).")
    q.add_argument("dir", help="results directory written by `scan`")
    q.add_argument("sql", help='e.g. "SELECT K, avg(solved::int) FROM runs GROUP BY K"')
    fmt = q.add_mutually_exclusive_group()
    fmt.add_argument("--csv", help="write the result to this CSV file")
    fmt.add_argument("--parquet", help="write the result to this Parquet file")
    q.add_argument("--limit", type=int, default=50, help="rows to print (default 50)")
    q.set_defaults(func=_query)
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
