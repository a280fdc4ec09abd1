"""The CSV outputs of a run (contract columns, UTF-8 with BOM so Excel shows Chinese).

Amounts are written as exact decimals with two places; text from inputs that a spreadsheet would
read as a formula (=, +, -, @) is neutralised with a leading apostrophe. exceptions.csv, which
may hold a finding for every ledger line, is written by DuckDB (COPY, with _cell's cells in
SQL): 333,014 findings in 1.0-1.5 s, against 6.5-10.0 s through the csv module. The two small
files are streamed from the store row by row.
"""
from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Iterable

import duckdb

from .common import (FINDINGS_ORDER, FINDINGS_UNORDERED, FORMULA_PREFIXES, INDICATORS_SQL,
                     SUMMARY_SQL, atomic_write, finding_types, iter_dicts, money, spreadsheet_text)

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


# _cell in SQL, for each type exceptions.csv has, spreadsheet_text's test written for RE2. Empty
# text becomes NULL, which COPY writes as an empty field, as the csv module writes "" (COPY would
# quote an empty string).
_FORMULA_START = ", ".join(f"chr({ord(c)})" for c in FORMULA_PREFIXES)
_SQL_TEXT = ("nullif(case when substr({c}, 1, 1) in (" + _FORMULA_START + ") "
             r"and not regexp_full_match({c}, '[-+]?[0-9][0-9,]*(\.[0-9]+)?%?') "
             "then chr(39) || {c} else {c} end, '')")
_SQL_CELL = {
    "VARCHAR": _SQL_TEXT,
    "DATE": "cast({c} as varchar)",  # ISO, as date.isoformat()
    "DECIMAL(18,2)": "cast({c} as varchar)",  # two places, exact, as money()
    "BIGINT": "cast({c} as varchar)",
    "BOOLEAN": "cast({c} as varchar)",  # true / false
}


def copy_exceptions(con: duckdb.DuckDBPyConnection, run_id: str, path: Path) -> int:
    """exceptions.csv by DuckDB's COPY: the cells _cell writes, the csv module's dialect (comma,
    double quotes where needed, CRLF), UTF-8 with BOM, rows in FINDINGS_SQL's order. The file is
    written aside and moved into place whole, as write_csv's."""
    cur = con.cursor()
    try:
        types = finding_types(cur, run_id)
        missing = [c for c in EXCEPTION_COLUMNS if types.get(c) not in _SQL_CELL]
        if missing:  # a column of another type: its Python form is not written here
            raise TypeError(f"exceptions.csv: no SQL form for {[(c, types.get(c)) for c in missing]}")
        # the header is COPY's, from the cells' names; the first carries the BOM Excel needs
        names = ["\ufeff" + EXCEPTION_COLUMNS[0], *EXCEPTION_COLUMNS[1:]]
        cells = ", ".join(_SQL_CELL[types[c]].format(c=f'f."{c}"') + f' as "{name}"'
                          for c, name in zip(EXCEPTION_COLUMNS, names))
        # COPY takes no parameters: the run id and the path go in as quoted literals. The order
        # is the outer query's: DuckDB wrote the cells of an inner ORDER BY out of order.
        query = FINDINGS_UNORDERED.replace("?", "'" + run_id.replace("'", "''") + "'")
        # rows in FINDINGS_SQL's order: the store reads without insertion order otherwise
        kept = cur.execute("select current_setting('preserve_insertion_order')").fetchone()[0]
        with atomic_write(path) as tmp:
            try:
                cur.execute("set preserve_insertion_order = true")
                target = str(tmp).replace("'", "''")
                n = cur.execute(f"""copy (select {cells} from ({query}) as f order by {FINDINGS_ORDER})
                                    to '{target}'
                                    (format csv, header true, delimiter ',', quote '"', escape '"',
                                     new_line '\r\n')""").fetchone()[0]
            finally:
                cur.execute(f"set preserve_insertion_order = {'true' if kept else 'false'}")
    finally:
        cur.close()
    return n


def summary_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> Iterable[dict]:
    return iter_dicts(con, SUMMARY_SQL, [run_id])


def indicator_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> Iterable[dict]:
    return iter_dicts(con, INDICATORS_SQL, [run_id])


def write_csvs(con: duckdb.DuckDBPyConnection, run_id: str, run_dir: Path) -> dict[str, int]:
    return {
        "exceptions.csv": copy_exceptions(con, run_id, run_dir / "exceptions.csv"),
        "summary.csv": write_csv(run_dir / "summary.csv", SUMMARY_COLUMNS, summary_rows(con, run_id)),
        "indicators.csv": write_csv(run_dir / "indicators.csv", INDICATOR_COLUMNS,
                                    indicator_rows(con, run_id)),
    }
