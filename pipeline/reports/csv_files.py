"""The CSV outputs of a run (contract columns, UTF-8 with BOM so Excel shows Chinese).

Amounts are written as exact decimals with two places; text from inputs that a spreadsheet would
read as a formula (=, +, -, @) is neutralised with a leading apostrophe. Rows are streamed from
the store, so a run with a million findings does not need a million rows in memory.
"""
from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Iterable

import duckdb

from .common import (FINDINGS_SQL, INDICATORS_SQL, SUMMARY_SQL, atomic_write, iter_dicts, money,
                     spreadsheet_text)

EXCEPTION_COLUMNS = [
    "rule_id", "severity", "notice_no", "purpose", "voucher_no", "line_no", "posted_on",
    "amount", "expected", "observed", "message",
    # beyond the contract's columns:
    "source_file", "source_row", "finding_key", "change", "first_seen", "waived", "waiver",
]
SUMMARY_COLUMNS = ["notice_no", "purpose", "function_code", "allocated", "spent", "balance",
                   "execution_rate"]
INDICATOR_COLUMNS = ["notice_no", "purpose", "indicator", "target", "observed", "status", "method"]
MONEY_COLUMNS = {"amount", "allocated", "spent", "balance"}


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if column in MONEY_COLUMNS:
        return money(value)
    if column == "execution_rate":
        return f"{Decimal(value):.4f}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return spreadsheet_text(str(value))


def write_csv(path: Path, columns: list[str], rows: Iterable[dict]) -> int:
    n = 0
    with atomic_write(path) as tmp:
        with open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_cell(c, row.get(c)) for c in columns])
                n += 1
    return n


def exception_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> Iterable[dict]:
    return iter_dicts(con, FINDINGS_SQL, [run_id])


def summary_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> Iterable[dict]:
    return iter_dicts(con, SUMMARY_SQL, [run_id])


def indicator_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> Iterable[dict]:
    return iter_dicts(con, INDICATORS_SQL, [run_id])


def write_csvs(con: duckdb.DuckDBPyConnection, run_id: str, run_dir: Path) -> dict[str, int]:
    return {
        "exceptions.csv": write_csv(run_dir / "exceptions.csv", EXCEPTION_COLUMNS,
                                    exception_rows(con, run_id)),
        "summary.csv": write_csv(run_dir / "summary.csv", SUMMARY_COLUMNS, summary_rows(con, run_id)),
        "indicators.csv": write_csv(run_dir / "indicators.csv", INDICATOR_COLUMNS,
                                    indicator_rows(con, run_id)),
    }
