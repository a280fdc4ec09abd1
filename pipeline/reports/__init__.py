"""Reports of a run, written from the store: CSV, Excel workbook, HTML page, run manifest.

Every writer reads what the run stored (findings, run_summary, run_indicators, runs), never
re-runs checks, so `recon report RUN_ID` rewrites a past run's reports exactly. Files are written
into a hidden staging folder and moved into `runs/<run_id>/` when complete.
"""
from __future__ import annotations

import importlib
import os
import shutil
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PrunedRun:
    run_id: str
    folder: Path
    size_bytes: int
    error: str | None = None  # why the folder could not be removed (it is then left in place)


def prune_reports(con: duckdb.DuckDBPyConnection, outputs: Path, keep: int,
                  dry_run: bool = False) -> list[PrunedRun]:
    """Remove the report folders (runs/<run_id>/) of all but the `keep` newest runs; return them.

    A nightly run adds a folder of a few MB (more with many findings) that nothing removes. Only
    the files go: the store keeps every run (`recon runs`, each finding's new / persisting /
    resolved, waivers), and `recon report RUN_ID` writes a removed run's reports again, all but
    its GX Data Docs. The folder `latest` points to stays, and so does anything in runs/ that is
    not a run of this store. A folder is first renamed to a hidden `.<run_id>.pruned.tmp`, which
    the next run clears if this one is stopped half-way, so no half-removed run folder is left
    in view. A folder that cannot be moved or removed (permissions) is returned with the
    reason, and the others are still removed. Call it holding the store (no run writes reports
    meanwhile)."""
    from ..run import LATEST

    runs_dir = Path(outputs) / "runs"
    order = [r[0] for r in con.execute("select run_id from runs order by started_at desc, run_id desc").fetchall()]
    kept = set(order[:keep])
    latest = Path(outputs) / LATEST
    if latest.is_symlink():
        kept.add(Path(os.readlink(latest)).name)
    pruned = []
    for run_id in order[keep:]:
        folder = runs_dir / run_id
        if run_id in kept or folder.is_symlink() or not folder.is_dir():
            continue
        error = None
        try:
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())
            if not dry_run:
                doomed = runs_dir / f".{run_id}.pruned.tmp"
                shutil.rmtree(doomed, ignore_errors=True)  # left by a prune stopped half-way
                os.replace(folder, doomed)
                shutil.rmtree(doomed)
        except OSError as exc:
            size, error = 0, exc.strerror or str(exc)
        pruned.append(PrunedRun(run_id, folder, size, error))
    return pruned
