"""One reconciliation run: load what is new, check, measure, report.

The flow is one-way: files -> staging -> facts -> findings -> reports. `execute_run` is what
`recon run` does; `reconcile` is the part after loading (`recon check`). Both return a RunResult;
only the CLI turns it into an exit status.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from . import ledgers, notices
from .checks import run_stage
from .findings import SEVERITY_RANK, Finding
from .loading import FileOutcome
from .store import open_store, transaction

NOTICE_SUFFIXES = {".txt", ".docx"}
LEDGER_SUFFIXES = {".csv", ".xlsx", ".parquet"}

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT = 0, 1, 2


@dataclass(frozen=True)
class Scope:
    as_of: dt.date
    notice_no: str | None = None
    purpose: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    def as_json(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, dt.date) else v)
                for k, v in self.__dict__.items() if k != "as_of" and v is not None}


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    exit_status: int
    findings: list[Finding]
    outcomes: list[FileOutcome] = field(default_factory=list)
    counts: dict = field(default_factory=dict)


def discover_inputs(inputs_dir: Path) -> tuple[list[Path], list[Path]]:
    """Notice files under inputs/notices and ledger exports under inputs/ledgers, sorted by name."""
    def pick(sub: str, suffixes: set[str]) -> list[Path]:
        folder = inputs_dir / sub
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir()
                      if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith((".", "~$")))
    return pick("notices", NOTICE_SUFFIXES), pick("ledgers", LEDGER_SUFFIXES)


def new_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def execute_run(inputs: Path, outputs: Path, db: Path, scope: Scope, fail_on: str = "error") -> RunResult:
    started = dt.datetime.now()
    con = open_store(db)
    try:
        notice_paths, ledger_paths = discover_inputs(inputs)
        outcomes = notices.load_notices(con, notice_paths)
        outcomes += ledgers.load_ledgers(con, ledger_paths)
        return reconcile(con, outputs, scope, fail_on, outcomes, started)
    finally:
        con.close()


def reconcile(con: duckdb.DuckDBPyConnection, outputs: Path, scope: Scope, fail_on: str = "error",
              outcomes: list[FileOutcome] | None = None, started: dt.datetime | None = None) -> RunResult:
    from .reports import write_reports  # reports import the rule registry; keep start-up light

    outcomes = outcomes or []
    started = started or dt.datetime.now()
    run_id = new_run_id(started)
    with transaction(con):
        con.execute(
            "insert into runs (run_id, started_at, as_of, fail_on, scope) values (?, ?, ?, ?, ?)",
            [run_id, started, scope.as_of, fail_on, json.dumps(scope.as_json(), ensure_ascii=False)],
        )
        con.execute("delete from run_context")
        con.execute(
            "insert into run_context values (?, ?, ?, purpose_key(?), ?, ?)",
            [run_id, scope.as_of, scope.notice_no, scope.purpose, scope.date_from, scope.date_to],
        )
        for o in outcomes:
            if o.file_id is not None:
                con.execute("insert into run_inputs values (?, ?, ?)", [run_id, o.file_id, o.action])

    findings = run_stage(con, "input") + run_stage(con, "notice") + run_stage(con, "ledger")
    findings += _optional_stage("indicators", "measure", con, run_id, scope)
    findings += run_stage(con, "indicator")
    findings += _optional_stage("expectations", "validate", con, run_id, outputs / "runs" / run_id)

    rejected = any(o.action == "rejected" for o in outcomes)
    with transaction(con):
        _store_findings(con, run_id, findings)
        con.execute(
            "insert into run_summary select ?, notice_no, line_seq, purpose, function_code, allocated, "
            "spent, balance, execution_rate from rpt_allocation_summary", [run_id])
        exit_status = exit_status_for(con, run_id, fail_on, rejected)
        counts = {
            "files": {a: sum(1 for o in outcomes if o.action == a) for a in ("loaded", "skipped", "rejected")},
            "rows_loaded": sum(o.rows_loaded for o in outcomes),
            "rows_quarantined": sum(o.rows_quarantined for o in outcomes),
            "findings": len(findings),
        }
        con.execute("update runs set finished_at = ?, exit_status = ?, counts = ? where run_id = ?",
                    [dt.datetime.now(), exit_status, json.dumps(counts), run_id])
    run_dir = write_reports(con, run_id, outputs)
    return RunResult(run_id, run_dir, exit_status, findings, outcomes, counts)


def _optional_stage(module: str, func: str, *args) -> list[Finding]:
    """Stages delivered by later modules; absent ones contribute nothing."""
    import importlib

    try:
        mod = importlib.import_module(f"pipeline.{module}")
    except ModuleNotFoundError:
        return []
    return list(getattr(mod, func)(*args))


def _store_findings(con: duckdb.DuckDBPyConnection, run_id: str, findings: list[Finding]) -> None:
    rows = [
        (run_id, f.finding_key, f.rule_id, f.severity, f.notice_no, f.purpose, f.voucher_no,
         f.line_no, f.posted_on, f.amount, f.expected, f.observed, f.message, f.source_file,
         f.source_row, None, None)
        for f in findings
    ]
    if rows:
        con.executemany("insert into findings values (" + ", ".join("?" * 17) + ")", rows)


def exit_status_for(con: duckdb.DuckDBPyConnection, run_id: str, fail_on: str, rejected: bool) -> int:
    """2 when an input was rejected; 1 when an unwaived finding is at or above fail_on; else 0."""
    if rejected:
        return EXIT_INPUT
    if fail_on == "never":
        return EXIT_OK
    worst = con.execute(
        """
        select max(case severity when 'error' then 2 when 'warning' then 1 else 0 end)
        from findings as f
        where f.run_id = ?
          and not exists (select 1 from waivers as w where w.finding_key = f.finding_key)
        """,
        [run_id],
    ).fetchone()[0]
    return EXIT_FINDINGS if worst is not None and worst >= SEVERITY_RANK[fail_on] else EXIT_OK


def update_latest(outputs: Path, run_dir: Path) -> None:
    """outputs/latest -> runs/<run_id>, replaced atomically."""
    link = outputs / "latest"
    tmp = outputs / f".latest-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(run_dir, outputs), tmp)
    os.replace(tmp, link)
