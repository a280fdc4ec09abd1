"""The CSV outputs of a run (contract columns, UTF-8 with BOM so Excel shows Chinese)."""
from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import duckdb

from .common import money, spreadsheet_text

EXCEPTION_COLUMNS = [
    "rule_id", "severity", "notice_no", "purpose", "voucher_no", "line_no", "posted_on",
    "amount", "expected", "observed", "message",
    # beyond the contract's columns:
    "source_file", "source_row", "finding_key", "change", "first_seen", "waived",
]
SUMMARY_COLUMNS = ["notice_no", "purpose", "function_code", "allocated", "spent", "balance",
                   "execution_rate"]
INDICATOR_COLUMNS = ["notice_no", "purpose", "indicator", "target", "observed", "status", "method"]


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return spreadsheet_text(str(value))


def write_csv(path: Path, columns: list[str], rows) -> int:
    n = 0
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
            n += 1
    return n


def exception_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    cur = con.execute(
        """
        select f.*, exists (select 1 from waivers w where w.finding_key = f.finding_key) as waived
        from findings as f
        where f.run_id = ?
        order by case f.severity when 'error' then 0 when 'warning' then 1 else 2 end,
                 f.rule_id, f.notice_no, f.posted_on, f.voucher_no, f.line_no
        """,
        [run_id],
    )
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    for r in rows:
        r["amount"] = money(r["amount"]) if r["amount"] is not None else None
    return rows


def summary_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    cur = con.execute("select * from run_summary where run_id = ? order by notice_no, line_seq",
                      [run_id])
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    for r in rows:
        for k in ("allocated", "spent", "balance"):
            r[k] = money(r[k])
        r["execution_rate"] = None if r["execution_rate"] is None else f"{r['execution_rate']:.4f}"
    return rows


def indicator_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    cur = con.execute("select * from run_indicators where run_id = ? order by notice_no, purpose",
                      [run_id])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def write_csvs(con: duckdb.DuckDBPyConnection, run_id: str, run_dir: Path) -> dict[str, int]:
    return {
        "exceptions.csv": write_csv(run_dir / "exceptions.csv", EXCEPTION_COLUMNS,
                                    exception_rows(con, run_id)),
        "summary.csv": write_csv(run_dir / "summary.csv", SUMMARY_COLUMNS, summary_rows(con, run_id)),
        "indicators.csv": write_csv(run_dir / "indicators.csv", INDICATOR_COLUMNS,
                                    indicator_rows(con, run_id)),
    }
