"""Reports of a run, written from the store: CSV, Excel workbook, HTML page, run manifest.

Every writer reads what the run stored (findings, run_summary, run_indicators, runs), never
re-runs checks, so `recon report RUN_ID` rewrites a past run's reports exactly. Files are written
into a hidden staging folder and moved into `runs/<run_id>/` when complete.
"""
from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import duckdb

from .csv_files import write_csvs
from .manifest import write_manifest


def write_reports(con: duckdb.DuckDBPyConnection, run_id: str, outputs: Path,
                  staging_dir: Path | None = None) -> Path:
    from ..run import publish_dir, update_latest

    run_dir = outputs / "runs" / run_id
    staging_dir = staging_dir or outputs / "runs" / f".{run_id}.tmp"
    (outputs / "runs").mkdir(parents=True, exist_ok=True, mode=0o700)  # not left to the umask
    staging_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    old_docs = run_dir / "data_docs"
    if old_docs.is_dir() and not (staging_dir / "data_docs").exists():
        shutil.copytree(old_docs, staging_dir / "data_docs")  # rewriting: keep the run's GX docs
    write_csvs(con, run_id, staging_dir)
    for module in ("workbook", "html"):  # richer formats, when present
        try:
            mod = importlib.import_module(f"pipeline.reports.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"pipeline.reports.{module}":
                raise
            continue
        mod.write(con, run_id, staging_dir)
    write_manifest(con, run_id, staging_dir)
    publish_dir(staging_dir, run_dir)
    newest = con.execute("select run_id from runs order by started_at desc limit 1").fetchone()
    if newest and newest[0] == run_id:
        update_latest(outputs, run_dir)
    return run_dir
