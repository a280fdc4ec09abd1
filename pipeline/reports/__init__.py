"""Reports of a run, written from the store: CSV, Excel workbook, HTML page, run manifest.

Every writer reads what the run stored (findings, run_summary, run_indicators, runs), never
re-runs checks, so `recon report RUN_ID` rewrites a past run's reports exactly.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import duckdb

from .csv_files import write_csvs
from .manifest import write_manifest


def write_reports(con: duckdb.DuckDBPyConnection, run_id: str, outputs: Path) -> Path:
    from ..run import update_latest

    run_dir = outputs / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_csvs(con, run_id, run_dir)
    for module in ("workbook", "html"):  # richer formats, when present
        try:
            mod = importlib.import_module(f"pipeline.reports.{module}")
        except ModuleNotFoundError:
            continue
        mod.write(con, run_id, run_dir)
    write_manifest(con, run_id, run_dir)
    update_latest(outputs, run_dir)
    return run_dir
