"""The pipeline's expectation suites on GX's pandas engine: the other side of "GX on DuckDB".

Runs every suite in expectations/*.json the way a pandas user of Great Expectations would: the
table a suite guards is pulled into a pandas DataFrame, and the suite is validated by GX's
pandas execution engine (ephemeral context, pandas datasource, whole-dataframe batch). The data
comes from the store `recon run` just built (same rows, same types as the DuckDB side sees), so
both engines check exactly the same thing; pulling the table into pandas is part of the cost
of using the pandas engine and is reported apart (fetch_s vs validate_s). The tables are pulled
under the run's snapshot of the facts (pipeline.run.materialised, as recon run and bench/run.py's
gx_duckdb step validate: fct_expenditure computed once, not once per table pulled); making the
snapshot counts in fetch_s (snapshot_s). --no-snapshot pulls each table from the store's views.

Which table a suite guards: `meta.table` (or `meta.batch.table` / `meta.data_asset`) when the
suite says so, else the file name without `.json` (expectations/<table>.json, as style.md lays
out). A suite whose table is not in the store is reported and skipped.

Usage:
    python bench/gx_pandas.py --db outputs/recon.duckdb [--suites expectations] [--no-snapshot]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def suite_table(path: Path, suite: dict) -> str:
    meta = suite.get("meta") or {}
    for candidate in (meta.get("table"), (meta.get("batch") or {}).get("table"), meta.get("data_asset"),
                      meta.get("table_name")):
        if isinstance(candidate, str) and candidate:
            return candidate
    return path.stem


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--suites", type=Path, default=ROOT / "expectations")
    ap.add_argument("--no-snapshot", action="store_true", help="pull from the store's views, no snapshot")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # offline: no usage statistics
    import duckdb
    import great_expectations as gx

    import_s = time.perf_counter() - t0
    # read-only unless pulling under a snapshot: its scratch database is attached writable, which
    # a read-only connection cannot do (the bench runs its steps one after another: no lock)
    con = duckdb.connect(str(args.db), read_only=args.no_snapshot)
    # the fact views use the store's SQL macros; a read-only connection does not recreate them
    from pipeline.text import install_macros

    try:
        install_macros(con)  # temp macros are allowed on a read-only database
    except duckdb.Error:
        pass
    names = {r[0] for r in con.execute(
        "select table_name from information_schema.tables").fetchall()}

    context = gx.get_context(mode="ephemeral")
    try:  # no progress bars in a benchmark log
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    source = context.data_sources.add_pandas("bench_pandas")
    report: dict = {"import_s": round(import_s, 3), "suites": {}}
    with contextlib.ExitStack() as stack:
        t_snap = time.perf_counter()
        if not args.no_snapshot:
            from pipeline.run import SUITE_SNAPSHOT_VIEWS, materialised

            stack.enter_context(materialised(con, SUITE_SNAPSHOT_VIEWS))
        report["snapshot_s"] = round(time.perf_counter() - t_snap, 3)
        fetch_total, validate_total = _validate_all(con, gx, context, source, args.suites, names, report)
    report["fetch_s"] = round(report["snapshot_s"] + fetch_total, 3)
    report["validate_s"] = round(validate_total, 3)
    con.close()
    for name, s in report["suites"].items():
        print(name, s, file=sys.stderr)
    print(json.dumps(report, ensure_ascii=False))
    return 0


def _validate_all(con, gx, context, source, suites: Path, names: set, report: dict) -> tuple[float, float]:
    """Pull each suite's table and validate it, each suite's figures in report["suites"]; return
    (seconds pulling, seconds validating)."""
    fetch_total = validate_total = 0.0
    for path in sorted(suites.glob("*.json")):
        suite_doc = json.loads(path.read_text(encoding="utf-8"))
        table = suite_table(path, suite_doc)
        if table not in names:
            report["suites"][path.name] = {"skipped": f"table {table!r} not in the store"}
            continue
        t1 = time.perf_counter()
        # the table name was checked against the store's catalogue above, then quoted
        df = con.execute(f'select * from "{table}"').df()
        fetch_s = time.perf_counter() - t1
        t2 = time.perf_counter()
        suite = gx.ExpectationSuite(name=f"bench_{path.stem}",
                                    expectations=suite_doc.get("expectations", []),
                                    meta=suite_doc.get("meta"))
        suite = context.suites.add(suite)
        asset = source.add_dataframe_asset(name=f"asset_{path.stem}")
        batch_def = asset.add_batch_definition_whole_dataframe(f"all_{path.stem}")
        vd = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"vd_{path.stem}", data=batch_def, suite=suite))
        # the same result format the pipeline asks of GX on DuckDB (pipeline/expectations.py):
        # a summary plus up to 200 failing rows named by the suite's index columns
        index_columns = [c for c in (suite_doc.get("meta") or {}).get("index_columns", []) if c in df.columns]
        result_format = {"result_format": "SUMMARY", "partial_unexpected_count": 200}
        if index_columns:
            result_format["unexpected_index_column_names"] = index_columns
        result = vd.run(batch_parameters={"dataframe": df}, result_format=result_format)
        validate_s = time.perf_counter() - t2
        fetch_total += fetch_s
        validate_total += validate_s
        failed = [r.expectation_config.type for r in result.results if not r.success]
        report["suites"][path.name] = {
            "table": table, "rows": int(len(df)), "expectations": len(result.results),
            "failed": len(failed), "failed_types": sorted(set(failed)),
            "fetch_s": round(fetch_s, 3), "validate_s": round(validate_s, 3),
        }
        del df
    return fetch_total, validate_total


if __name__ == "__main__":
    sys.exit(main())
