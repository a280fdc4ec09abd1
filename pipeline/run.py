"""One reconciliation run: load what is new, check, measure, report.

The flow is one-way: files -> staging -> facts -> findings -> reports. `execute_run` is what
`recon run` does; `reconcile` is the part after loading (`recon check`). Both return a RunResult;
only the CLI turns it into an exit status.

Crash safety: every input file loads in its own transaction (fully or not at all, and a loaded
file is never loaded again), and a run's record (runs row, findings, summary) is written in one
final transaction. A run killed at any moment therefore leaves the store as it was, plus whole
files; the next run skips those files and completes normally. Reports are written into a
temporary folder and renamed into place, so `runs/<run_id>/` is complete or absent.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import secrets
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa

from . import expectations, indicators, ledgers, notices
from .aliases import ALIASES_FILE, apply_purpose_aliases
from .checks import FINDING_KEY_SQL, FOUND_COLUMNS, FOUND_TABLE, collect_stage, create_found, last_seq
from .findings import Finding
from .loading import FileOutcome
from .logs import printable
from .store import StoreError, session, transaction, working_folder

log = logging.getLogger("recon")

# Files in the inputs folders that are nobody's input: the desktop's own (Windows writes these into
# every shared folder it shows) and files still being written or downloaded, which a later run
# reads whole. Hidden files (".*", Office's "~$*" lock files) are never offered either.
NOT_INPUTS = {"thumbs.db", "ehthumbs.db", "desktop.ini"}
UNFINISHED_SUFFIXES = {".tmp", ".part", ".partial", ".crdownload", ".download"}

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT = 0, 1, 2


@dataclass(frozen=True)
class Scope:
    """What a run reconciles: the books as of a date, optionally one notice / purpose / period."""

    as_of: dt.date
    notice_no: str | None = None
    purpose: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    def key(self) -> str:
        """Canonical text of the slice (without as_of): runs on the same slice are compared."""
        data = {k: (v.isoformat() if isinstance(v, dt.date) else v)
                for k, v in self.__dict__.items() if k != "as_of" and v is not None}
        return json.dumps(data, ensure_ascii=False, sort_keys=True)


@dataclass
class RunResult:
    """What a run did. Its findings are in the store (table findings, this run_id) and in its
    reports; the result carries their counts and the first quarantined rows, for the CLI."""
    run_id: str
    run_dir: Path
    exit_status: int
    by_severity: dict[str, int]           # this run's findings (one per key), not the resolved
    quarantined: list[Finding] = field(default_factory=list)  # INPUT_ROW_INVALID, the first few
    quarantined_total: int = 0
    outcomes: list[FileOutcome] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    unread_folders: list[tuple[Path, int]] = field(default_factory=list)  # see unread_subfolders
    waived: int = 0                       # of by_severity's findings, those a waiver accepts


def discover_inputs(inputs_dir: Path) -> tuple[list[Path], list[Path]]:
    """The files under inputs/notices and under inputs/ledgers, each sorted by name.

    Every file is offered to its loader, whatever its type: the loader reads it or rejects it
    saying why (a web page saved as `.xls`, a `.pdf` notice), and the run reports the rejection.
    Left out: hidden files, the desktop's own (NOT_INPUTS), files still being written
    (UNFINISHED_SUFFIXES), the site's presets.toml beside the ledgers, and subfolders (an
    archive of old exports may live there). A link whose target is gone is offered: rejected as
    unreadable, it is named, where leaving it out would pass it over in silence."""
    def pick(sub: str) -> list[Path]:
        folder = inputs_dir / sub
        if not folder.is_dir():
            return []
        # a link to nothing (a share not mounted) is offered too: its loader rejects it as unreadable
        return sorted(p for p in folder.iterdir()
                      if (p.is_file() or (p.is_symlink() and not p.exists()))
                      and not p.name.startswith((".", "~$"))
                      and p.name.lower() not in NOT_INPUTS
                      and p.suffix.lower() not in UNFINISHED_SUFFIXES
                      and not (sub == "ledgers" and p.name == ledgers.SITE_PRESETS_NAME))
    return pick("notices"), pick("ledgers")


def unread_subfolders(inputs_dir: Path) -> list[tuple[Path, int]]:
    """The subfolders of inputs/notices and inputs/ledgers, which a run does not read, each with
    the number of files in it (at any depth): the run says so, so that an export put in one is not
    taken for reconciled."""
    found = []
    for sub in ("notices", "ledgers"):
        folder = inputs_dir / sub
        if folder.is_dir():
            found += [(d, sum(len(files) for _, _, files in os.walk(d)))
                      for d in sorted(folder.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    return found


def new_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def execute_run(inputs: Path, outputs: Path, db: Path, scope: Scope, fail_on: str = "error",
                *, wait: float | None = None, progress=None) -> RunResult:
    """`recon run`: load every new notice and ledger under `inputs`, then reconcile."""
    started = dt.datetime.now()
    kwargs = {} if wait is None else {"wait": wait}
    with session(db, **kwargs) as con, quick_handoffs():  # GX imports beside the load (on_read)
        notice_paths, ledger_paths = discover_inputs(inputs)
        unread = unread_subfolders(inputs)
        for folder, files in unread:
            log.info("subfolder not read: %s (%d file%s)", folder, files, "" if files == 1 else "s")
        outcomes = load_files(con, notice_paths, ledger_paths, progress,
                              on_read=expectations.import_gx_early)
        aliases = apply_purpose_aliases(con, inputs / ALIASES_FILE)
        log.info("purpose aliases: %d (%s)", aliases, inputs / ALIASES_FILE)
        result = reconcile(con, outputs, scope, fail_on, outcomes, started)
    result.unread_folders = unread
    return result


def load_files(con: duckdb.DuckDBPyConnection, notice_paths: list[Path], ledger_paths: list[Path],
               progress=None, on_read=None) -> list[FileOutcome]:
    """Notices first (ledgers are tied to them), one file at a time, each in its own transaction.
    on_read: see ledgers.load_ledgers (`recon run` starts GX's import there: the interpreter is
    free while DuckDB reads, and busy with the hash, the transcoding and the notices before)."""
    outcomes: list[FileOutcome] = []
    read_ledgers = functools.partial(ledgers.load_ledgers, on_read=on_read)
    for kind, paths, loader in (("notice", notice_paths, notices.load_notices),
                                ("ledger", ledger_paths, read_ledgers)):
        for path in paths:
            t0 = time.perf_counter()
            if progress:
                progress(f"加载 / loading {path.name}")
            for o in loader(con, [path]):
                outcomes.append(o)
                log.info("%s %s %s rows=%s quarantined=%s %.2fs%s", kind, o.action, o.path,
                         o.rows_loaded, o.rows_quarantined, time.perf_counter() - t0,
                         f" ({o.message})" if o.message else "")
    return outcomes


class ScopeError(StoreError):
    """--notice or --purpose names nothing loaded: a typing mistake, not a clean slice (exit 2)."""


def _check_scope(con: duckdb.DuckDBPyConnection, scope: Scope) -> Scope:
    """Refuse a scope that selects nothing, rather than reporting "0 errors" on it: a notice not
    loaded, or a purpose that no allocation line (of that notice) names. Each message lists what
    there is to choose from. A purpose may be given by a part of its name that no other line's
    name has (租赁补贴). The scope returned names the purpose as the notice writes it, so that runs
    on one purpose, however it was typed (（中央直达） or (中央直达), 租赁补贴), are one slice."""
    if scope.notice_no is not None:
        known = [r[0] for r in con.execute("select notice_no from notices order by notice_no").fetchall()]
        if scope.notice_no not in known:
            listed = printable("、".join(known) or "无 / none")
            raise ScopeError(f"--notice：通知 {scope.notice_no} 未加载（已加载：{listed}）/ notice "
                             f"{scope.notice_no} is not loaded (loaded: {listed})")
    if scope.purpose is not None:
        # an allocation line's name in any spelling; else a part of it that names one line only
        # (租赁补贴 for 2024年租赁补贴（中央直达）), as a short commit id names one commit
        named = con.execute(
            "select min(purpose), purpose_key = purpose_key($1), "
            "       contains(purpose_key, purpose_key($1)) and length(purpose_key($1)) > 0 "
            "from allocation_lines where $2 is null or notice_no = $2 "
            "group by purpose_key order by 1",
            [scope.purpose, scope.notice_no]).fetchall()
        exact = [p for p, same, _ in named if same]
        part_of = [p for p, _, within in named if within]
        purpose = printable(scope.purpose)
        if not exact and len(part_of) > 1:
            listed = printable("、".join(part_of))
            raise ScopeError(f"--purpose：“{purpose}”是多条分配用途的一部分，请写全其中一条（{listed}）/ "
                             f"{purpose!r} is part of several allocation lines; name one in full ({listed})")
        if not exact and not part_of:
            listed = printable("、".join(p for p, _, _ in named) or "无 / none")  # from the notices
            where = f"通知 {scope.notice_no} 的" if scope.notice_no else "已加载通知的"
            where_en = f"notice {scope.notice_no}'s" if scope.notice_no else "the loaded notices'"
            raise ScopeError(f"--purpose：“{purpose}”不是{where}分配用途（可选：{listed}）/ "
                             f"{purpose!r} is none of {where_en} allocation lines (choose from: {listed})")
        scope = replace(scope, purpose=(exact or part_of)[0])
    _check_dates(con, scope)
    return scope


def _check_dates(con: duckdb.DuckDBPyConnection, scope: Scope) -> None:
    """Refuse dates that leave every loaded ledger line outside the run (--as-of before the first
    line's date, --from after the last, --to before the first): a mistyped year (2014 for 2024)
    reconciled nothing and reported a clean night, exit 0. A store without ledger lines is left
    to INPUT_MISSING / INPUT_EMPTY. Dates within the lines' span are taken as given, a month
    without lines included."""
    first, last = con.execute(
        "select min(l.posted_on), max(l.posted_on) from ledger_lines as l "
        "join input_files as f on f.file_id = l.file_id where f.status = 'loaded'").fetchone()
    if first is None:
        return
    end = min(scope.as_of, scope.date_to) if scope.date_to else scope.as_of
    start = scope.date_from or first
    if end >= first and start <= last and start <= end:
        return
    asked = f"--as-of {scope.as_of}"
    if scope.date_from or scope.date_to:
        asked += f"，--from {scope.date_from or '—'} --to {scope.date_to or '—'}"
    raise ScopeError(f"{asked}：已加载账簿的分录日期为 {first} 至 {last}，所选日期内没有任何分录，对账将为空"
                     f"（日期是否写错？）/ {asked.replace('，', ', ')}: the loaded ledger lines are dated "
                     f"{first} to {last}; no line falls within the dates given, and nothing would be "
                     f"reconciled (a mistyped date?)")


# A file offered to this run, as the run saw it: where it was offered, the registry's status and
# message now (a later export may supersede it tomorrow; this run counted it). A file skipped
# under another path (a copy of a loaded file, a notice's .docx beside its .txt) is named by its
# own path and keeps the loader's message saying whose content it has.
_RECORD_INPUT = """
insert into run_inputs (run_id, file_id, action, path, status, message)
select $1, f.file_id, $2, $3, f.status,
       case when $2 = 'skipped' and $3 <> f.path then $5 || coalesce('；' || f.message, '')
            else f.message end
from input_files as f
where f.file_id = $4
"""
# A run that reads no inputs (`recon check`) still has the files the latest run that did read
# them rejected, unless one loaded since from the same path: their rejection stands, and
# INPUT_REJECTED keeps reporting them. Before, `recon check` between two nightly runs called them
# resolved, and the next night called them new again.
_STILL_REJECTED = """
insert into run_inputs (run_id, file_id, action, path, status, message)
select $1, i.file_id, 'rejected', i.path, f.status, coalesce(i.message, f.message)
from run_inputs as i
join input_files as f on f.file_id = i.file_id
where i.run_id = (select r.run_id from runs as r
                  where r.finished_at is not null
                    and exists (select 1 from run_inputs as o
                                where o.run_id = r.run_id and o.action <> 'earlier')
                  order by r.started_at desc
                  limit 1)
  and i.action = 'rejected'
  and f.status = 'rejected'
  and not exists (select 1 from input_files as g
                  where g.path = f.path and g.file_id > f.file_id and g.status <> 'rejected')
"""
# The files loaded before and counted now: with those offered, every file whose lines it read.
_RECORD_EARLIER = """
insert into run_inputs (run_id, file_id, action, path, status, message)
select ?, f.file_id, 'earlier', null, f.status, f.message
from input_files as f
where f.status = 'loaded'
  and f.file_id not in (select i.file_id from run_inputs as i where i.run_id = ?)
"""


def reconcile(con: duckdb.DuckDBPyConnection, outputs: Path, scope: Scope, fail_on: str = "error",
              outcomes: list[FileOutcome] | None = None, started: dt.datetime | None = None) -> RunResult:
    """Check what is loaded within `scope`, record the run and write its reports."""
    from .reports import write_reports  # reports import the rule registry; keep start-up light

    scope = _check_scope(con, scope)
    outputs = Path(outputs).absolute()  # later stages (GX Data Docs) need absolute paths
    _clear_stale_staging(outputs)
    _clear_orphans(con)
    offered = outcomes is not None  # `recon check` offers no files
    outcomes = outcomes or []
    started = started or dt.datetime.now()
    run_id = new_run_id(started)
    with transaction(con):
        con.execute("delete from run_context")
        con.execute(
            "insert into run_context values (?, ?, ?, purpose_key(?), ?, ?)",
            [run_id, scope.as_of, scope.notice_no, scope.purpose, scope.date_from, scope.date_to],
        )
        # before the checks: INPUT_REJECTED reports the files this run rejected (run_inputs)
        for o in outcomes:
            if o.file_id is not None:
                con.execute(_RECORD_INPUT, [run_id, o.action, o.path, o.file_id, o.message])
        if not offered:
            con.execute(_STILL_REJECTED, [run_id])
        con.execute(_RECORD_EARLIER, [run_id, run_id])

    # GX's import (Python) overlaps the snapshot (DuckDB's work); `recon run` started it already
    # when DuckDB began reading a ledger (load_files), unless it loaded none
    expectations.import_gx_early()
    staging_dir = outputs / "runs" / f".{run_id}.tmp"
    with materialised(con, SNAPSHOT_VIEWS) as shadow, quick_handoffs():
        # The suites run beside the checks, on a thread and a connection of their own: the checks
        # are DuckDB's work and leave the interpreter to GX. They read the same snapshot.
        suites = expectations.start_suites(con, staging_dir, prepare=shadow)
        try:
            # the findings stay in DuckDB until they are stored: a run may have millions
            create_found(con)
            for stage in ("input", "notice", "ledger"):
                _timed(stage, collect_stage, con, stage)
            # read from the snapshot while it is there; stored with the run below. The indicators
            # read the summary's copy: computed once
            con.execute(f"create or replace temp table {PURPOSES_TABLE} as select * from rpt_purpose_matches")
            con.execute(f"create or replace temp table {SUMMARY_TABLE} as select {SUMMARY_COLUMNS}, "
                        "pool_notice, pool_seq, pool_part_from, pool_part_to "  # for the indicators
                        f"from {indicators.SUMMARY}")
            _add_found(con, _timed("indicators", indicators.measure, con, run_id, scope, SUMMARY_TABLE))
            _timed("indicator", collect_stage, con, "indicator")
            # the suites are compared with the rules they restate: hand over what the rules found
            _add_found(con, _timed("expectations", expectations.validate, con, run_id, staging_dir,
                                   FOUND_TABLE, suites=suites))
        finally:
            suites.cancel()  # before the snapshot goes; nothing left to stop once validated

    rejected = any(o.action == "rejected" for o in outcomes)
    from .reports.manifest import definition_versions, purpose_aliases, rule_versions

    counts = {
        "rules": rule_versions(),  # the versions this run checked with, for run.json ever after
        "purpose_aliases": purpose_aliases(con),  # the aliases it matched by, likewise
        "definitions": definition_versions(),  # the views, suites, settings and codes, likewise
        "files": {a: sum(1 for o in outcomes if o.action == a) for a in ("loaded", "skipped", "rejected")},
        # ledger rows: a notice's outcome counts its allocation lines, which are no rows of a ledger
        "rows_loaded": sum(o.rows_loaded for o in outcomes if o.kind == "ledger"),
        "rows_quarantined": sum(o.rows_quarantined for o in outcomes if o.kind == "ledger"),
    }
    with transaction(con):
        con.execute(
            "insert into runs (run_id, started_at, as_of, fail_on, scope) values (?, ?, ?, ?, ?)",
            [run_id, started, scope.as_of, fail_on, scope.key()],
        )
        _store_findings(con, run_id, scope)
        con.execute(f"insert into run_summary (run_id, {SUMMARY_COLUMNS}) "
                    f"select ?, {SUMMARY_COLUMNS} from {SUMMARY_TABLE}", [run_id])
        con.execute(f"insert into run_purpose_matches select ?, * from {PURPOSES_TABLE}", [run_id])
        exit_status = exit_status_for(con, run_id, fail_on, rejected)
        counts["findings"] = dict(con.execute(
            "select change, count(*) from findings where run_id = ? group by change", [run_id]).fetchall())
        con.execute("update runs set finished_at = ?, exit_status = ?, counts = ? where run_id = ?",
                    [dt.datetime.now(), exit_status, json.dumps(counts), run_id])
    con.execute(f"drop table if exists {FOUND_TABLE}")
    con.execute(f"drop table if exists {PURPOSES_TABLE}")
    con.execute(f"drop table if exists {SUMMARY_TABLE}")
    run_dir = _timed("reports", write_reports, con, run_id, outputs, staging_dir=staging_dir)
    by_severity, quarantined, quarantined_total = _result_findings(con, run_id)
    log.info("run %s finished: exit %s, %s findings", run_id, exit_status, sum(by_severity.values()))
    from .reports.common import WAIVED

    waived = con.execute(f"select count(*) from findings as f where f.run_id = ? and f.change <> 'resolved' "
                         f"and {WAIVED}", [run_id]).fetchone()[0]
    return RunResult(run_id, run_dir, exit_status, by_severity, quarantined, quarantined_total,
                     outcomes, counts, waived=waived)


# Views that a dozen rules, the indicators and the suites each read whole: computed once per run
# into a scratch database, written compressed beside the store and read back by column, so the
# snapshot takes no memory from the queries that read it. Measured on the rules, then the suites
# (bench files): at 10M ledger lines 15.3-15.5 s with the views, 14.5-15.1 s with an in-memory
# temporary table, 11.4-13.2 s with the scratch database; at 2M 3.4-3.6 s, 3.0 s and 3.4-3.5 s,
# of which 0.34-0.37 s was the detach writing the snapshot out (now dropped first, see below).
# fct_reversed_lines (the lines mirror reversals cancel) is read by seven rules and by
# fct_recon_lines, which a suite validates; it is small, and computed from the snapshot before it.
# fct_wrong_lines (each wrong line, with what is left of its wrong booking of each kind: code, flag,
# source, sub-account) likewise, by seven rules (the three of codes, DIRECT_FLAG_MISSING,
# SOURCE_NOT_SEPARATED, COMMINGLED_ACCOUNT, UNMATCHED_EXPENDITURE) and fct_recon_lines: a row per
# wrong line, one pass over the snapshot instead of eight. Measured at 2M ledger lines (bench
# generator; 300,322 expenditure lines, 1,849 wrong), under the snapshot of the two views above:
# made in 18-24 ms; the seven rules and a query of fct_recon_lines took 150-168 ms reading the
# copy, 277-328 ms reading the view. With every expenditure line wrong (no fund source: 300,322
# rows) it is made in 138-208 ms, beside 2.3 s for SOURCE_NOT_SEPARATED to build its findings.
# (fct_wrong_nets, the groups alone, which it replaced: 14-27 ms, and 176-200 ms for the rules.)
# fct_expenditure_booked is the snapshot of the expenditure lines as booked; fct_expenditure, the
# lines counted (without another year's 文号, the prior years' refunds and the copies of a line
# loaded twice, line_copy), is a filter over it and so reads the snapshot too.
# fct_months_placed (the months each payment of a payee paid for a month other than the month
# posted pays) is read by SUBSIDY_CAP_EXCEEDED and the indicators: at 2M ledger lines (no back pay)
# the rule took 0.13-0.15 s and the indicators' part 0.06 s reading the view, 0.06-0.07 s and
# 1-2 ms reading the copy, which costs too little to show beside the snapshot's 0.72 s.
# The suites read SUITE_SNAPSHOT_VIEWS but the scratch one (fct_expenditure and fct_recon_lines
# through them); the bench times the suites on DuckDB and on pandas under those alone
# (bench/run.py, bench/gx_pandas.py).
# fct_expenditure_lines is snapshotted for fct_line_copies and fct_expenditure_booked (those lines
# and line_copy) to read, and dropped once they are made (SNAPSHOT_SCRATCH): no rule reads it.
SUITE_SNAPSHOT_VIEWS = ("fct_expenditure_lines", "fct_line_copies", "fct_expenditure_booked",
                        "fct_reversed_lines", "fct_wrong_lines")
SNAPSHOT_SCRATCH = ("fct_expenditure_lines",)
SNAPSHOT_VIEWS = (*SUITE_SNAPSHOT_VIEWS, "fct_months_placed")
PURPOSES_TABLE = "_run_purposes"  # rpt_purpose_matches, between the snapshot and the run's record
SUMMARY_TABLE = "_run_summary"  # rpt_allocation_summary, likewise
SUMMARY_COLUMNS = "notice_no, line_seq, purpose, function_code, allocated, spent, balance, execution_rate"
SNAPSHOT_DB = "recon_snapshot"
SNAPSHOT_FOLDER_PREFIX = "recon-snapshot-"  # in the store's spill folder, removed after the run


@contextmanager
def materialised(con: duckdb.DuckDBPyConnection, views: tuple[str, ...]):
    """Snapshot each view into a table of a scratch database for the block, and shadow the view
    with a temporary view of the same name that reads the snapshot. DuckDB looks a name up in
    the temporary schema first, so the rules' SQL, and the views built on these, read the
    snapshot unchanged; the block must not change what the views read (the run's scope and the
    loaded files are fixed by then). Everything is dropped, detached and deleted afterwards,
    also on error; what a killed run left is removed by the next run. Yields shadow(connection),
    which shadows the views the same way on another connection to the store."""
    if not views:
        yield lambda other: None
        return
    # the store's own view, by catalog: "main.<view>" alone would also find the temporary one
    store = '"' + con.execute("select current_database()").fetchone()[0].replace('"', '""') + '"'
    made = []
    with working_folder(con, SNAPSHOT_FOLDER_PREFIX) as folder:
        try:
            path = str(folder / "snapshot.duckdb").replace("'", "''")
            con.execute(f"attach '{path}' as {SNAPSHOT_DB}")
            for view in views:
                made.append(view)
                con.execute(f"create table {SNAPSHOT_DB}.{view} as select * from {store}.main.{view}")
                _shadow(con, view)
            for view in [v for v in made[:-1] if v in SNAPSHOT_SCRATCH]:
                # read only by the views made after it (made from the snapshot, not the view):
                # gone before anything else reads the snapshot
                made.remove(view)
                con.execute(f"drop view temp.{view}")
                con.execute(f"drop table {SNAPSHOT_DB}.{view}")

            def shadow(other: duckdb.DuckDBPyConnection) -> None:
                """The same shadowing on another connection to the store (temp views are per
                connection); it must be closed before the block ends."""
                for view in made:
                    _shadow(other, view)

            yield shadow
        finally:
            for view in made:
                con.execute(f"drop view if exists temp.{view}")
                # dropped before the detach, which would otherwise write it out again (0.35 s at 2M)
                con.execute(f"drop table if exists {SNAPSHOT_DB}.{view}")
            con.execute(f"detach database if exists {SNAPSHOT_DB}")


# While GX is imported beside the load, and while the suites run GX on their thread (Python, most
# of the time), every call this thread makes into DuckDB gives up the interpreter and waits to get
# it back; Python hands it over every switch interval, 5 ms by default. A trivial query took
# 0.44 ms alone and 23.5 ms beside a busy Python thread, 2.9 ms with an interval of 0.5 ms; a run
# makes hundreds of such calls beside GX (a statement a rule, the indicators', the run's records),
# and GX's own thread as many.
RUN_SWITCH_INTERVAL = 0.0005


@contextmanager
def quick_handoffs():
    """Python's switch interval at most RUN_SWITCH_INTERVAL for the block (see above)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, RUN_SWITCH_INTERVAL))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _shadow(con: duckdb.DuckDBPyConnection, view: str) -> None:
    con.execute(f"create or replace temp view {view} as select * from {SNAPSHOT_DB}.{view}")


def _clear_stale_staging(outputs: Path) -> None:
    """Half-written report folders of killed runs, and half-removed ones of a stopped
    `recon prune` (we hold the store lock: nobody else writes)."""
    runs_dir = outputs / "runs"
    if runs_dir.is_dir():
        for stale in runs_dir.glob(".*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)


def _clear_orphans(con: duckdb.DuckDBPyConnection) -> None:
    """Rows a killed run wrote ahead of its record (run_inputs, run_indicators): its run never
    happened, so they go. Finished runs' rows are never touched."""
    with transaction(con):
        for table in ("run_inputs", "run_indicators"):
            con.execute(f"delete from {table} where run_id not in (select run_id from runs)")


def _timed(name: str, func, *args, **kwargs):
    t0 = time.perf_counter()
    result = func(*args, **kwargs)
    log.info("stage %s %.2fs", name, time.perf_counter() - t0)
    return result


_ARROW_TYPES = {"varchar": pa.string(), "date": pa.date32(), "decimal(18,2)": pa.decimal128(18, 2),
                "bigint": pa.int64()}
_FOUND_SCHEMA = pa.schema([("seq", pa.int64())] + [(name, _ARROW_TYPES[sql_type])
                                                  for name, sql_type in FOUND_COLUMNS])
_CENT = Decimal("0.01")


def _add_found(con: duckdb.DuckDBPyConnection, findings: list[Finding], table: str = FOUND_TABLE) -> None:
    """Add findings made in Python (the suites') to the run's findings, after those there."""
    if not findings:
        return
    columns = {name: [] for name in _FOUND_SCHEMA.names}
    for n, f in enumerate(findings, last_seq(con, table) + 1):
        columns["seq"].append(n)
        for name, _ in FOUND_COLUMNS:
            value = getattr(f, name)
            if name == "amount" and value is not None:
                value = Decimal(value).quantize(_CENT)
            columns[name].append(value)
    found = pa.table(columns, schema=_FOUND_SCHEMA)  # noqa: F841  (read by DuckDB)
    con.execute(f"insert into {table} by name select * from found")


# The first finding of each key. A repeat adds nothing a person can act on: a voucher line
# exported twice breaks a rule once (DUPLICATE_ENTRY reports the copy). What the run stores,
# reports and prints is one finding per key, so the counts agree everywhere. Of repeats, the one
# from the earliest file and row is kept (a key includes its rule, so repeats share a rule).
#
# A repeat says the same: same date, amount and message. Two ledgers in one store (a unit's
# second account set, such as its 基建账, or another unit's export) number their vouchers alike,
# so 记-1 line 1 of March in each breaks a rule under one key while saying something different
# (another amount, date or code). Those are different lines: each keeps its finding, under the
# key followed by ~date:amount (`…|记-1:1@202403~2024-03-12:960.00`). Only such keys change:
# a key no other line shares stays as it is, and so do the waivers on it. A key that the previous
# run gave one line alone stays that line's (the line of its date and amount), when another line
# comes to share it (the second account set loaded later): its waiver still holds; the newcomer
# takes the ~date:amount key. The previous run's keys are read from `findings` of run `?`.
_SAYS = ("coalesce(cast(posted_on as varchar), '') || '|' || coalesce(cast(amount as varchar), '') "
         "|| '|' || coalesce(message, '')")
ONE_PER_KEY_SQL = f"""
    with keyed as (
        select {FINDING_KEY_SQL} as line_key, {_SAYS} as says, * from {FOUND_TABLE}
    ),
    known as (
        select finding_key, posted_on, amount from findings where run_id = ? and change <> 'resolved'
    ),
    told as (
        select k.*,
               min(k.says) over w <> max(k.says) over w as shared,
               -- what the line the previous run keyed so says (one of them, should two)
               min(case when p.finding_key is not null then k.says end) over w as plain_says
        from keyed as k
        left join known as p
          on p.finding_key = k.line_key and p.posted_on is not distinct from k.posted_on
         and p.amount is not distinct from k.amount
        window w as (partition by k.line_key)
    )
    select
        case when shared and coalesce(voucher_no, '') <> '' and says is distinct from plain_says
             then line_key || '~' || coalesce(cast(posted_on as varchar), '') || ':'
                  || coalesce(cast(amount as varchar), '')
             else line_key end as finding_key,
        * exclude (line_key, says, shared, plain_says)
    from told
    qualify row_number() over (partition by finding_key
                               order by source_file nulls last, source_row nulls last, seq) = 1
"""


def _store_findings(con: duckdb.DuckDBPyConnection, run_id: str, scope: Scope) -> None:
    """Insert this run's findings (one per key, from the run's table of findings), each marked
    new or persisting against the previous run on the same slice (with the date it was first
    seen), plus that run's findings now resolved. The previous run is the latest of those as of
    this run's date or before: an audit's run back-dated with --as-of is compared with the runs
    of its date, not with last night's (whose later findings it would call resolved), and the
    next nightly run is compared with the night before, not with the back-dated run."""
    previous = con.execute(
        "select run_id from runs where scope = ? and run_id <> ? and finished_at is not null "
        "and as_of <= ? order by as_of desc, started_at desc limit 1",
        [scope.key(), run_id, scope.as_of]).fetchone()
    prev_id = previous[0] if previous else None
    run_day = dt.date.today()
    con.execute(
        f"""
        insert into findings
        with this_run as ({ONE_PER_KEY_SQL}),
        prev as (
            select finding_key, first_seen from findings where run_id = ? and change <> 'resolved'
        )
        select ?, c.finding_key, c.rule_id, c.severity, c.notice_no, c.purpose, c.voucher_no,
               c.line_no, c.posted_on, c.amount, c.expected, c.observed, c.message,
               c.source_file, c.source_row,
               case when p.finding_key is null then 'new' else 'persisting' end,
               coalesce(p.first_seen, ?)
        from this_run as c
        left join prev as p on p.finding_key = c.finding_key
        """,
        [prev_id, prev_id, run_id, run_day],
    )
    if prev_id:
        con.execute(
            """
            insert into findings
            select ?, f.finding_key, f.rule_id, f.severity, f.notice_no, f.purpose, f.voucher_no,
                   f.line_no, f.posted_on, f.amount, f.expected, f.observed, f.message,
                   f.source_file, f.source_row, 'resolved', f.first_seen
            from findings as f
            where f.run_id = ? and f.change <> 'resolved'
              and f.finding_key not in (select finding_key from findings where run_id = ?)
            """,
            [run_id, prev_id, run_id],
        )


QUARANTINED_SHOWN = 20  # INPUT_ROW_INVALID findings a RunResult carries (the CLI prints them)


def _result_findings(con: duckdb.DuckDBPyConnection, run_id: str):
    """The run's findings by severity, and its first quarantined rows, from the store."""
    by_severity = {s: 0 for s in ("error", "warning", "info")}
    by_severity.update(con.execute(
        "select severity, count(*) from findings where run_id = ? and change <> 'resolved' "
        "group by severity", [run_id]).fetchall())
    rows = con.execute(
        """
        select rule_id, severity, message, notice_no, purpose, voucher_no, line_no, posted_on,
               amount, expected, observed, source_file, source_row, count(*) over () as total
        from findings
        where run_id = ? and change <> 'resolved' and rule_id = 'INPUT_ROW_INVALID'
        order by source_file, source_row, finding_key
        limit ?
        """, [run_id, QUARANTINED_SHOWN]).fetchall()
    return by_severity, [Finding(*row[:-1]) for row in rows], rows[0][-1] if rows else 0


def exit_status_for(con: duckdb.DuckDBPyConnection, run_id: str, fail_on: str, rejected: bool) -> int:
    """2 when an input was rejected; 1 when an open finding that no waiver in force accepts is at or
    above fail_on."""
    if rejected:
        return EXIT_INPUT
    if fail_on == "never":
        return EXIT_OK
    threshold = {"error": 2, "warning": 1}[fail_on]
    worst = con.execute(
        """
        select max(case severity when 'error' then 2 when 'warning' then 1 else 0 end)
        from findings as f
        where f.run_id = ? and f.change <> 'resolved'
          and not exists (select 1 from waivers_in_force as w where w.finding_key = f.finding_key)
        """,
        [run_id],
    ).fetchone()[0]
    return EXIT_FINDINGS if worst is not None and worst >= threshold else EXIT_OK


LATEST = "latest"  # outputs/latest: the symbolic link to the newest run's report folder


def update_latest(outputs: Path, run_dir: Path) -> None:
    """outputs/latest -> runs/<run_id>, replaced atomically."""
    link = outputs / LATEST
    tmp = outputs / f".latest-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(run_dir, outputs), tmp)
    os.replace(tmp, link)


def publish_dir(staging_dir: Path, run_dir: Path) -> None:
    """Move a fully written report folder into place (replacing an older copy of the same run)."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    os.replace(staging_dir, run_dir)
