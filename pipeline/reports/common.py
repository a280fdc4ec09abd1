"""What every report format shares: safe spreadsheet text, labels in Chinese and English, and the
queries that read a run back from the store.

The reports are written from what a run stored (runs, findings, run_summary, run_indicators,
run_inputs), never from live views, so `recon report RUN_ID` rewrites a past run exactly.
Nothing here reads the clock: the same run gives the same report content.
"""
from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Iterator

import duckdb

from ..findings import SEVERITY_ZH

# A cell that starts with one of these is read as a formula by Excel / LibreOffice (CSV included).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A plain number ("-12.50", "+3", "-1,234.00", "-5%") is not a formula: leave it readable. ASCII
# digits only: Excel reads no other digits as a number ("-١٢" would be a formula there).
_PLAIN_NUMBER = re.compile(r"[-+]?[0-9][0-9,]*(\.[0-9]+)?%?")

SEVERITIES = ("error", "warning", "info")
SEVERITY_LABEL = {s: f"{SEVERITY_ZH[s]} {s}" for s in SEVERITIES}

# run_indicators.status -> Chinese label (contract: met / not_met / on_track / behind / needs_evidence)
STATUS_ZH = {
    "met": "已完成",
    "not_met": "未完成",
    "on_track": "进度正常",
    "behind": "进度滞后",
    "needs_evidence": "需佐证材料",
}
# A `behind` indicator whose ceiling is already broken during the year (run_indicators.over_ceiling:
# 480元/户/月 exceeded) is not late: it is over. Its status stays `behind` (the contract: never
# failed before year end), its label says what happened.
OVER_CEILING_ZH = "已超上限"


def status_zh(status: str, over_ceiling: bool | None = False) -> str:
    if status == "behind" and over_ceiling:
        return OVER_CEILING_ZH
    return STATUS_ZH.get(status, status)


# findings.change -> Chinese label (compared with the previous run of the same scope)
CHANGE_ZH = {"new": "新增", "persisting": "持续", "resolved": "已解决"}
EXIT_ZH = {
    0: "通过：无达到阈值的异常 / passed: nothing at or above --fail-on",
    1: "发现异常 / findings at or above --fail-on",
    2: "有输入文件被拒收 / an input file was rejected",
}


def spreadsheet_text(value):
    """Neutralise formula injection: text that a spreadsheet would evaluate gets a leading '.

    Plain numbers written as text (e.g. "-12.50" in an evidence column) are left alone: a
    spreadsheet reads them as numbers, never as formulas.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def money(value) -> str:
    """Amount in 元 with two decimals, as text (exact: never through float)."""
    if value is None:
        return ""
    return f"{Decimal(value):.2f}"


def change_label(change: str | None) -> str:
    if not change:
        return ""
    return f"{CHANGE_ZH.get(change, change)} {change}"


@contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; replace `path` with it only when the block succeeds,
    so a crash never leaves a half-written report where the old one was. Reports hold financial
    data: the file is readable by the running user only (0600)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def fetch_dicts(con: duckdb.DuckDBPyConnection, sql: str, params=()) -> list[dict]:
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def iter_dicts(con: duckdb.DuckDBPyConnection, sql: str, params=(), batch: int = 10_000) -> Iterator[dict]:
    """Stream a query's rows as dicts, `batch` at a time (a run may hold a million findings).

    The query runs on its own cursor, so the caller may query `con` while it iterates."""
    cur = con.cursor()
    try:
        cur.execute(sql, list(params))
        cols = [d[0] for d in cur.description]
        while True:
            rows = cur.fetchmany(batch)
            if not rows:
                return
            for r in rows:
                yield dict(zip(cols, r))
    finally:
        cur.close()


# A finding row is open unless it records one the previous run had and this run no longer has.
OPEN = "f.change is distinct from 'resolved'"

# A finding of the run (f) that a waiver in force when the run finished accepts (run_waivers).
WAIVED = "f.finding_key in (select w.finding_key from run_waivers as w where w.run_id = f.run_id)"

# Findings of a run with the waiver in force when it finished: open ones worst first, then those
# resolved since the previous run; shared by exceptions.csv and report.xlsx. Of a key waived twice
# before version 9 (two waivers in force), the earliest is the one shown.
FINDINGS_SQL = """
with waived as (
    select run_id, finding_key,
           arg_min(reason || ' (' || waived_by || ', ' || strftime(waived_at, '%Y-%m-%d') || ')',
                   waived_at) as waiver
    from run_waivers
    group by run_id, finding_key
)
select f.rule_id, f.severity, f.notice_no, f.purpose, f.voucher_no, f.line_no, f.posted_on,
       f.amount, f.expected, f.observed, f.message, f.source_file, f.source_row, f.finding_key,
       f.change, f.first_seen, w.waiver is not null as waived, w.waiver
from findings as f
left join waived as w on w.run_id = f.run_id and w.finding_key = f.finding_key
where f.run_id = ?
order by f.change is not distinct from 'resolved',
         case f.severity when 'error' then 0 when 'warning' then 1 else 2 end,
         f.rule_id, f.notice_no, f.posted_on, f.voucher_no, f.line_no, f.source_file, f.source_row,
         f.finding_key
"""

# FINDINGS_SQL without its ORDER BY, and that order: for a query that reads the findings in
# this order itself (COPY keeps an outer query's order only; the workbook numbers the rows)
FINDINGS_UNORDERED, FINDINGS_ORDER = FINDINGS_SQL.rsplit("order by", 1)


def finding_types(cur: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, str]:
    """FINDINGS_SQL's columns and their DuckDB types, as DuckDB names them ('VARCHAR', ...)."""
    cur.execute(f"select * from ({FINDINGS_UNORDERED}) limit 0", [run_id])
    return {d[0]: str(d[1]).upper() for d in cur.description}


SUMMARY_SQL = """
select notice_no, line_seq, purpose, function_code, allocated, spent, balance, execution_rate
from run_summary
where run_id = ?
order by notice_no, line_seq
"""

PURPOSES_SQL = """
select notice_no, purpose, match_kind, match_by, line_seq, allocated_purpose, lines, amount
from run_purpose_matches
where run_id = ?
order by notice_no, line_seq nulls last, amount desc, purpose_key nulls last
"""

# run_purpose_matches (match_kind, match_by) -> how a sub-account name was matched, in Chinese
# and English, with the rule that reports the names matched to no line
MATCH_LABEL = {
    ("line", "purpose"): "按项目名称 by its name",
    ("line", "alias"): "按别名 by an alias (purpose_aliases.csv)",
    ("line", "code"): "按项目名称，不计前面的项目编码 by its name, the project code before it left out",
    ("line", "core"): "按核心名称 by its core name (year, 中央直达 left out)",
    ("pooled", None): "汇总户，未分用途 pooled account (COMMINGLED_ACCOUNT)",
    ("multi", None): "一个名称含多个用途 several purposes in one name (COMMINGLED_ACCOUNT)",
    ("unmatched", None): "未对应分配行 matches no allocation line (UNMATCHED_EXPENDITURE)",
}
BLANK_PURPOSE = "（空白 blank）"


def match_label(kind: str, by: str | None) -> str:
    return MATCH_LABEL.get((kind, by if kind == "line" else None), f"{kind} {by or ''}".strip())


# The files a run read: those offered to it (loaded, skipped as loaded before, rejected), then
# those loaded before and counted (earlier), as the run saw them (run_inputs' path, status and
# message; a run recorded before they were kept reads the registry).
INPUTS_SQL = """
select case when ri.path is null or ri.path = f.path then f.name
            else regexp_extract(ri.path, '[^/\\\\]+$') end as name,
       coalesce(ri.path, f.path) as path, f.path as registered_path,
       f.kind, f.format, f.encoding, f.preset, f.sha256, f.size_bytes,
       coalesce(ri.status, f.status) as status, ri.action, f.rows_loaded, f.rows_quarantined,
       case when ri.status is null then f.message else ri.message end as message
from run_inputs as ri
join input_files as f on f.file_id = ri.file_id
where ri.run_id = ?
order by f.kind, ri.action = 'earlier', name, f.sha256
"""
ACTION_ZH = {
    "loaded": "本次加载 loaded",
    "skipped": "已加载过，跳过 skipped",
    "rejected": "拒收 rejected",
    "earlier": "先前加载，本次计入 earlier",
}


INDICATORS_SQL = """
select notice_no, purpose, indicator, target, observed, status, method,
       coalesce(over_ceiling, false) as over_ceiling
from run_indicators
where run_id = ?
order by notice_no, table_seq, indicator_seq, purpose, indicator
"""


@dataclass
class RunOverview:
    """The head of every report: which run, as of when, how it ended, what it read, totals."""

    run_id: str
    started_at: object
    finished_at: object
    as_of: object
    fail_on: str
    scope: dict
    exit_status: int | None
    counts: dict
    notices: list[dict] = field(default_factory=list)
    inputs: list[dict] = field(default_factory=list)
    by_severity: dict = field(default_factory=dict)   # open findings
    rows_total: int = 0                                # finding rows, resolved ones included
    by_change: dict = field(default_factory=dict)
    by_rule: dict = field(default_factory=dict)       # open findings
    waived: int = 0                                    # open findings with a waiver
    resolved: int = 0
    allocated: Decimal = Decimal("0.00")
    spent: Decimal = Decimal("0.00")
    balance: Decimal = Decimal("0.00")
    # spending tied to the run's notices under a sub-account matched to no allocation line (a
    # pooled account, several purposes, unmatched): not in `spent`, among the exceptions
    unallocated: Decimal = Decimal("0.00")
    unallocated_lines: int = 0

    @property
    def execution_rate(self) -> Decimal | None:
        if not self.allocated:
            return None
        return (self.spent / self.allocated).quantize(Decimal("0.0001"), ROUND_HALF_UP)  # as the summary

    @property
    def findings_total(self) -> int:
        """Open findings (what the run found); resolved ones are counted in `resolved`."""
        return sum(self.by_severity.values())

    @property
    def exit_label(self) -> str:
        if self.exit_status is None:
            return "未完成 / not finished"
        return EXIT_ZH.get(self.exit_status, str(self.exit_status))


def run_overview(con: duckdb.DuckDBPyConnection, run_id: str) -> RunOverview:
    run = con.execute(
        "select run_id, started_at, finished_at, as_of, fail_on, scope, exit_status, counts "
        "from runs where run_id = ?", [run_id]
    ).fetchone()
    if run is None:
        raise KeyError(run_id)
    ov = RunOverview(
        run_id=run[0], started_at=run[1], finished_at=run[2], as_of=run[3], fail_on=run[4],
        scope=json.loads(run[5]) if run[5] else {}, exit_status=run[6],
        counts=json.loads(run[7]) if run[7] else {},
    )
    # The notices this run reconciled: those in its summary, else (a run that stopped before the
    # summary) the ones its findings name.
    ov.notices = fetch_dicts(con, """
        with run_notices as (
            select distinct notice_no from run_summary where run_id = ?
            union
            select distinct notice_no from findings where run_id = ? and notice_no is not null
        )
        select r.notice_no, n.title, n.issuer, n.recipient, n.fiscal_year, n.project_code,
               n.revenue_code, n.stated_total
        from run_notices as r
        left join notices as n on n.notice_no = r.notice_no
        order by r.notice_no
        """, [run_id, run_id])
    ov.inputs = [{**f, "action_label": ACTION_ZH.get(f["action"], f["action"])}
                 for f in fetch_dicts(con, INPUTS_SQL, [run_id])]
    by_sev = dict(con.execute(
        f"select severity, count(*) from findings as f where f.run_id = ? and {OPEN} group by severity",
        [run_id]).fetchall())
    ov.by_severity = {s: by_sev.get(s, 0) for s in SEVERITIES}
    ov.by_change = dict(con.execute(
        "select change, count(*) from findings where run_id = ? and change is not null "
        "group by change order by case change when 'new' then 0 when 'persisting' then 1 else 2 end",
        [run_id]).fetchall())
    ov.resolved = ov.by_change.get("resolved", 0)
    ov.rows_total = con.execute("select count(*) from findings where run_id = ?", [run_id]).fetchone()[0]
    ov.by_rule = dict(con.execute(
        f"select rule_id, count(*) from findings as f where f.run_id = ? and {OPEN} "
        "group by rule_id order by rule_id", [run_id]).fetchall())
    ov.waived = con.execute(
        f"select count(*) from findings as f where f.run_id = ? and {OPEN} "
        f"and {WAIVED}", [run_id]).fetchone()[0]
    totals = con.execute(
        "select coalesce(sum(allocated), 0), coalesce(sum(spent), 0), coalesce(sum(balance), 0) "
        "from run_summary where run_id = ?", [run_id]).fetchone()
    ov.allocated, ov.spent, ov.balance = (Decimal(t).quantize(Decimal("0.01")) for t in totals)
    amount, lines = con.execute(
        "select coalesce(sum(amount), 0), coalesce(sum(lines), 0) from run_purpose_matches "
        "where run_id = ? and match_kind <> 'line'", [run_id]).fetchone()
    ov.unallocated, ov.unallocated_lines = Decimal(amount).quantize(Decimal("0.01")), int(lines)
    return ov


UNALLOCATED_LABEL = ("另有未对应分配行的支出（汇总户、多用途或未对应的项目名称，不计入已支出，见“项目对应”和异常明细） / "
                     "besides, spending under sub-accounts matched to no allocation line (pooled, several "
                     "purposes, unmatched): not in Spent; see the sub-account matches and the exceptions")


def data_docs_link(run_dir: Path) -> str | None:
    """Relative link to the run's Great Expectations Data Docs, when the run wrote them."""
    docs = run_dir / "data_docs"
    if not docs.is_dir():
        return None
    index = docs / "index.html"
    if index.is_file():
        return "data_docs/index.html"
    found = sorted(docs.rglob("index.html"), key=lambda p: (len(p.parts), str(p)))
    return found[0].relative_to(run_dir).as_posix() if found else None
