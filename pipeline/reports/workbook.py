"""report.xlsx: the audit pack, in Chinese first, one sheet per table of the run.

Sheets: 概览 (overview), 分配执行 (allocation and execution), 异常明细 (exceptions), 绩效指标
(performance indicators), 规则说明 (rule catalogue). Written with xlsxwriter in constant-memory
mode, so a run with a million findings streams through without holding them in memory.

Every text cell is written with `write_string`, never `write`, so text from inputs such as
`=HYPERLINK(...)` stays text; such cells also carry Excel's quote prefix, so editing the cell
does not turn it into a formula either. In constant-memory mode xlsxwriter writes a string that
starts with `<r>` and ends with `</r>` into the sheet as raw XML (its rich-string form): text from
an input could add cells or break the file. `_literal` hands such a string over as one escaped
rich-text run instead, so it too reads as written. Amounts are Decimal until the cell, written
as numbers with two decimals; dates are real date cells. Nothing here reads the clock: the
workbook's creation time is the run's start, so rewriting a run's report gives the same workbook.

The exceptions sheet's rows, the bulk of a run with many findings, are written by `_FindingRows`:
the XML xlsxwriter writes for the same cells, byte for byte (tests/test_reports.py compares the
two workbooks), without its per-cell machinery, which took 43 s for 333,014 findings. DuckDB
makes the XML of every row whose values need no escape beyond & < > and copies it into the row
file as the bytes it holds; Python makes the rest. The workbook of those findings took 4.8-5.3 s
(12.8-13.3 s with every row made in Python, 44-50 s cell by cell); zipped at deflate level 1.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from ..findings import SEVERITY_ZH
from ..rules import all_rules
from .common import (BLANK_PURPOSE, CHANGE_ZH, FINDINGS_ORDER, FINDINGS_UNORDERED, FORMULA_PREFIXES,
                     INDICATORS_SQL, OVER_CEILING_ZH, PURPOSES_SQL, SEVERITY_LABEL, STATUS_ZH, SUMMARY_SQL,
                     UNALLOCATED_LABEL, WAIVED, RunOverview, atomic_write, change_label, finding_types,
                     iter_dicts, match_label, run_overview, status_zh)

# Excel's sheet holds 1,048,576 rows; row 1 is the header, so this many findings fit.
MAX_FINDING_ROWS = 1_048_575

SHEET_OVERVIEW = "概览"
SHEET_SUMMARY = "分配执行"
SHEET_PURPOSES = "项目对应"
SHEET_FINDINGS = "异常明细"
SHEET_INDICATORS = "绩效指标"
SHEET_RULES = "规则说明"

STATUS_COLOURS = {  # font, fill
    "met": ("#1E6B34", "#DFF2E3"),
    "not_met": ("#9C1C1C", "#FBE0E0"),
    "on_track": ("#1E6B34", "#EAF6EC"),
    "behind": ("#8A5300", "#FFF1D6"),
    "needs_evidence": ("#3E4A59", "#E8ECF2"),
}
SEVERITY_COLOURS = {"error": "#9C1C1C", "warning": "#8A5300", "info": "#3E4A59"}

# (key, header, width, kind); kind picks the cell writer.
FINDING_COLUMNS = [
    ("rule_id", "规则编号 rule_id", 24, "text"),
    ("severity", "级别 severity", 9, "severity"),
    ("notice_no", "文号 notice_no", 18, "text"),
    ("purpose", "用途 purpose", 30, "text"),
    ("voucher_no", "凭证号 voucher_no", 14, "text"),
    ("line_no", "分录号 line_no", 9, "text"),
    ("posted_on", "日期 posted_on", 12, "date"),
    ("amount", "金额（元） amount", 16, "money"),
    ("expected", "预期 expected", 24, "text"),
    ("observed", "实际 observed", 24, "text"),
    ("message", "说明 message", 60, "text"),
    ("source_file", "来源文件 source_file", 26, "text"),
    ("source_row", "来源行 source_row", 10, "int"),
]
# Shown only when some finding of the run has them (change tracking and waivers are optional).
OPTIONAL_FINDING_COLUMNS = {
    "change": ("change", "变化 change", 14, "change"),
    "first_seen": ("first_seen", "首次发现 first_seen", 12, "date"),
    "waived": ("waiver", "豁免说明 waiver", 36, "text"),
}
FINDING_KEY_COLUMN = ("finding_key", "标识 finding_key", 40, "text")


class _Formats:
    def __init__(self, wb: xlsxwriter.Workbook):
        base = {"font_name": "等线", "font_size": 10, "valign": "top"}
        self.title = wb.add_format({**base, "bold": True, "font_size": 14})
        self.section = wb.add_format({**base, "bold": True, "font_size": 11, "font_color": "#1F3864"})
        self.header = wb.add_format({**base, "bold": True, "bg_color": "#DDE4EE", "border": 1,
                                     "text_wrap": True, "valign": "vcenter"})
        self.label = wb.add_format({**base, "bold": True})
        self.text = wb.add_format(base)
        self.text_quoted = wb.add_format({**base, "quote_prefix": True})
        self.wrap = wb.add_format({**base, "text_wrap": True})
        self.wrap_quoted = wb.add_format({**base, "text_wrap": True, "quote_prefix": True})
        self.money = wb.add_format({**base, "num_format": "#,##0.00"})
        self.money_bold = wb.add_format({**base, "num_format": "#,##0.00", "bold": True, "top": 1})
        self.percent = wb.add_format({**base, "num_format": "0.00%"})
        self.percent_bold = wb.add_format({**base, "num_format": "0.00%", "bold": True, "top": 1})
        self.int = wb.add_format({**base, "num_format": "0"})
        self.date = wb.add_format({**base, "num_format": "yyyy-mm-dd"})
        self.datetime = wb.add_format({**base, "num_format": "yyyy-mm-dd hh:mm:ss"})
        self.total_label = wb.add_format({**base, "bold": True, "top": 1})
        self.note = wb.add_format({**base, "italic": True, "font_color": "#9C1C1C"})
        self.status = {s: wb.add_format({**base, "font_color": fg, "bg_color": bg, "bold": True})
                       for s, (fg, bg) in STATUS_COLOURS.items()}
        self.severity = {s: wb.add_format({**base, "font_color": c, "bold": True})
                         for s, c in SEVERITY_COLOURS.items()}
        # Style indices in creation order, not in order of first use: the cells written by
        # _FindingRows and by xlsxwriter then name the same styles.
        for value in vars(self).values():
            for f in value.values() if isinstance(value, dict) else [value]:
                f._get_xf_index()

    def text_styles(self, wrap: bool = False) -> tuple:
        """A text cell's format, and the quoted one for text a spreadsheet would take for a
        formula (FORMULA_PREFIXES): every text cell of the workbook is styled by this pair."""
        return (self.wrap, self.wrap_quoted) if wrap else (self.text, self.text_quoted)


XLSX_MAX_TEXT = 32_767  # UTF-16 units in a cell
_RICH_RUN = ('<r><t xml:space="preserve">', "</t></r>")


def _utf16_len(value: str) -> int:
    return len(value) + sum(1 for ch in value if ord(ch) > 0xFFFF)


def _utf16_truncate(value: str, limit: int) -> str:
    """The longest start of `value` of at most `limit` UTF-16 units (a character above U+FFFF
    takes two; none is cut in half)."""
    units = 0
    for i, ch in enumerate(value):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return value[:i]
    return value


def _literal(value: str) -> str:
    """The string to give xlsxwriter so that the cell shows `value` as it is: cut at Excel's
    limit, and a string xlsxwriter would write as raw rich-text XML (it starts with <r> and ends
    with </r>) wrapped in a rich-text run of its own, escaped."""
    if len(value) > XLSX_MAX_TEXT // 2 and _utf16_len(value) > XLSX_MAX_TEXT:
        value = _utf16_truncate(value, XLSX_MAX_TEXT)
    if value.startswith("<r>") and value.endswith("</r>"):
        room = XLSX_MAX_TEXT - len(_RICH_RUN[0]) - len(_RICH_RUN[1])
        if _utf16_len(value) > room:
            value = _utf16_truncate(value, room)
        escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        value = _RICH_RUN[0] + escaped + _RICH_RUN[1]
    return value


class _Writer:
    """Typed cell writers: text is always a string cell, amounts and dates always real values."""

    def __init__(self, ws, fmt: _Formats):
        self.ws = ws
        self.fmt = fmt

    def text(self, r: int, c: int, value, fmt=None, wrap: bool = False) -> None:
        if value is None or value == "":
            return
        value = str(value)
        if fmt is None:
            plain, quoted = self.fmt.text_styles(wrap)
            fmt = quoted if value.startswith(FORMULA_PREFIXES) else plain
        self.ws.write_string(r, c, _literal(value), fmt)

    def money(self, r: int, c: int, value, fmt=None) -> None:
        if value is None:
            return
        # Decimal until here: the cell is the only place an amount becomes a binary number.
        self.ws.write_number(r, c, float(Decimal(value)), fmt or self.fmt.money)

    def percent(self, r: int, c: int, value, fmt=None) -> None:
        if value is None:
            return
        self.ws.write_number(r, c, float(Decimal(value)), fmt or self.fmt.percent)

    def number(self, r: int, c: int, value, fmt=None) -> None:
        if value is None:
            return
        self.ws.write_number(r, c, value, fmt or self.fmt.int)

    def date(self, r: int, c: int, value) -> None:
        if value is None:
            return
        if value.year < 1900:  # before Excel's epoch: a date cell would show nonsense
            self.ws.write_string(r, c, value.isoformat(), self.fmt.text)
            return
        if isinstance(value, dt.datetime):
            self.ws.write_datetime(r, c, value, self.fmt.datetime)
        else:
            self.ws.write_datetime(r, c, value, self.fmt.date)

    def header(self, r: int, headers: list[str]) -> None:
        for c, h in enumerate(headers):
            self.ws.write_string(r, c, h, self.fmt.header)


def _print_setup(ws) -> None:
    """Printed for the audit file: landscape, A4, one page wide, header row on every page."""
    ws.set_landscape()
    ws.set_paper(9)
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(0)


def _table_sheet(wb, fmt: _Formats, name: str, headers: list[str], widths: list[int]):
    """A sheet that is one table: column widths, frozen and repeated header row, print setup."""
    ws = wb.add_worksheet(name)
    w = _Writer(ws, fmt)
    for c, width in enumerate(widths):
        ws.set_column(c, c, width)
    ws.freeze_panes(1, 0)
    ws.set_row(0, 30)
    _print_setup(ws)
    w.header(0, headers)
    return ws, w


def write(con: duckdb.DuckDBPyConnection, run_id: str, run_dir: Path) -> Path:
    ov = run_overview(con, run_id)
    path = run_dir / "report.xlsx"
    with atomic_write(path) as tmp:
        wb = xlsxwriter.Workbook(str(tmp), {
            "constant_memory": True,
            # belt and braces: even a stray write() never turns text into a formula, number or link
            "strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False,
            "tmpdir": str(run_dir),
        })
        wb.set_properties({
            "title": f"预算指标对账报告 {run_id}",
            "subject": "Budget reconciliation report",
            "author": "budget-recon",
            "created": ov.started_at if isinstance(ov.started_at, dt.datetime)
                       else dt.datetime(2000, 1, 1),
        })
        fmt = _Formats(wb)
        truncated = max(0, ov.rows_total - MAX_FINDING_ROWS)
        _overview_sheet(wb, fmt, ov, truncated)
        _summary_sheet(con, wb, fmt, ov)
        _purposes_sheet(con, wb, fmt, run_id)
        _findings_sheet(con, wb, fmt, run_id, ov)
        _indicators_sheet(con, wb, fmt, run_id)
        _rules_sheet(wb, fmt, ov)
        with _deflate_fast():
            wb.close()
    return path


# xlsxwriter zips the workbook at zlib's default level (6). Level 1 zipped the 435 MB exceptions
# sheet of a run with 333,014 findings in 3.2-3.4 s instead of 6.0-6.2 s, into 47 MB instead of
# 37 MB (bench/README.md); a run's usual workbook is a few hundred kB either way.
DEFLATE_LEVEL = 1


@contextmanager
def _deflate_fast():
    """While the block runs, xlsxwriter's ZipFile deflates at DEFLATE_LEVEL. xlsxwriter has no
    option for it; it opens the zip through the name `ZipFile` in its workbook module, which is
    swapped for the block (should a later xlsxwriter open it otherwise, the level is its own)."""
    from xlsxwriter import workbook as xlsx_workbook

    original = xlsx_workbook.ZipFile
    xlsx_workbook.ZipFile = functools.partial(original, compresslevel=DEFLATE_LEVEL)
    try:
        yield
    finally:
        xlsx_workbook.ZipFile = original


def _overview_sheet(wb, fmt: _Formats, ov: RunOverview, truncated: int) -> None:
    ws = wb.add_worksheet(SHEET_OVERVIEW)
    w = _Writer(ws, fmt)
    ws.set_column(0, 0, 26)
    ws.set_column(1, 1, 40)
    ws.set_column(2, 7, 18)
    ws.set_column(8, 8, 40)
    r = 0
    ws.write_string(r, 0, "预算指标对账报告 Budget reconciliation report", fmt.title)
    r += 2
    scope = "；".join(f"{k}={v}" for k, v in ov.scope.items()) or "全部 / everything loaded"
    head = [
        ("运行编号 Run id", ov.run_id, "text"),
        ("截止日期 As of", ov.as_of, "date"),
        ("开始时间 Started", ov.started_at, "date"),
        ("结束时间 Finished", ov.finished_at, "date"),
        ("退出状态 Exit status", None if ov.exit_status is None else f"{ov.exit_status} — {ov.exit_label}", "text"),
        ("失败阈值 Fail on", ov.fail_on, "text"),
        ("范围 Scope", scope, "text"),
    ]
    for label, value, kind in head:
        ws.write_string(r, 0, label, fmt.label)
        w.date(r, 1, value) if kind == "date" else w.text(r, 1, value)
        r += 1

    r += 1
    ws.write_string(r, 0, "分配下达通知 Notices", fmt.section)
    r += 1
    w.header(r, ["文号 Notice no", "标题 Title", "下达单位 Issuer", "接收单位 Recipient",
                 "年度 Fiscal year", "项目代码 Project code", "收入分类 Revenue code",
                 "通知总额（元） Stated total"])
    r += 1
    for n in ov.notices:
        w.text(r, 0, n["notice_no"])
        w.text(r, 1, n["title"])
        w.text(r, 2, n["issuer"])
        w.text(r, 3, n["recipient"])
        w.number(r, 4, n["fiscal_year"])
        w.text(r, 5, n["project_code"])
        w.text(r, 6, n["revenue_code"])
        w.money(r, 7, n["stated_total"])
        r += 1
    if not ov.notices:
        w.text(r, 0, "（本次运行未涉及通知 / no notice in this run）")
        r += 1

    r += 1
    ws.write_string(r, 0, "金额合计 Totals", fmt.section)
    r += 1
    w.header(r, ["分配金额（元） Allocated", "已支出（元） Spent", "余额（元） Balance", "执行率 Execution rate"])
    r += 1
    w.money(r, 0, ov.allocated)
    w.money(r, 1, ov.spent)
    w.money(r, 2, ov.balance)
    w.percent(r, 3, ov.execution_rate)
    r += 1
    if ov.unallocated_lines:
        w.text(r, 0, f"{UNALLOCATED_LABEL}：{ov.unallocated_lines} 行 lines")
        w.money(r, 1, ov.unallocated)
        r += 1
    r += 1

    ws.write_string(r, 0, "异常数量 Findings", fmt.section)
    r += 1
    w.header(r, ["级别 Severity", "数量 Count"])
    r += 1
    for sev in ("error", "warning", "info"):
        ws.write_string(r, 0, SEVERITY_LABEL[sev], fmt.severity[sev])
        w.number(r, 1, ov.by_severity[sev])
        r += 1
    ws.write_string(r, 0, "合计 Total", fmt.total_label)
    ws.write_number(r, 1, ov.findings_total, fmt.total_label)
    r += 1
    if ov.waived:
        ws.write_string(r, 0, "其中已豁免 of which waived", fmt.label)
        w.number(r, 1, ov.waived)
        r += 1
    for change, n in ov.by_change.items():
        label = (f"其中{CHANGE_ZH.get(change, change)} of which {change}" if change != "resolved"
                 else "已解决（不计入合计）resolved since the previous run")
        ws.write_string(r, 0, label, fmt.label)
        w.number(r, 1, n)
        r += 1
    if truncated:
        w.text(r, 0, f"异常明细仅列出前 {MAX_FINDING_ROWS - 1:,} 条，另有 {truncated + 1:,} 条见 exceptions.csv / "
                     f"the exceptions sheet lists the first {MAX_FINDING_ROWS - 1:,}; "
                     f"{truncated + 1:,} more are in exceptions.csv", fmt.note)
        r += 1

    if ov.by_rule:
        r += 1
        ws.write_string(r, 0, "按规则 By rule", fmt.section)
        r += 1
        w.header(r, ["规则编号 Rule", "说明 Description", "数量 Count"])
        r += 1
        catalogue = {rule.rule_id: rule for rule in all_rules()}
        for rule_id, n in ov.by_rule.items():
            rule = catalogue.get(rule_id)
            w.text(r, 0, rule_id)
            w.text(r, 1, rule.description if rule else "")
            w.number(r, 2, n)
            r += 1

    r += 1
    ws.write_string(r, 0, "输入文件 Inputs", fmt.section)
    r += 1
    w.header(r, ["文件 File", "路径 Path", "类型 Kind", "本次处理 Action", "格式 Format", "编码 Encoding",
                 "已加载行 Rows loaded", "隔离行 Rows quarantined", "SHA-256", "大小（字节） Size", "说明 Message"])
    r += 1
    for f in ov.inputs:
        w.text(r, 0, f["name"])
        w.text(r, 1, f["path"])
        w.text(r, 2, f["kind"])
        w.text(r, 3, f["action_label"])
        w.text(r, 4, f["format"])
        w.text(r, 5, f["encoding"])
        w.number(r, 6, f["rows_loaded"])
        w.number(r, 7, f["rows_quarantined"])
        w.text(r, 8, f["sha256"])
        w.number(r, 9, f["size_bytes"])
        w.text(r, 10, f["message"])
        r += 1
    if not ov.inputs:
        w.text(r, 0, "（本次运行没有记录输入文件 / no input files recorded for this run）")


def _summary_sheet(con, wb, fmt: _Formats, ov: RunOverview) -> None:
    headers = ["文号 notice_no", "序号 line_seq", "用途 purpose", "功能科目 function_code",
               "分配金额（元） allocated", "已支出（元） spent", "余额（元） balance", "执行率 execution_rate"]
    ws, w = _table_sheet(wb, fmt, SHEET_SUMMARY, headers, [18, 8, 36, 14, 18, 18, 18, 12])
    r = 1
    total = {"allocated": Decimal(0), "spent": Decimal(0), "balance": Decimal(0)}
    for row in iter_dicts(con, SUMMARY_SQL, [ov.run_id]):
        w.text(r, 0, row["notice_no"])
        w.number(r, 1, row["line_seq"])
        w.text(r, 2, row["purpose"])
        w.text(r, 3, row["function_code"])
        for c, k in ((4, "allocated"), (5, "spent"), (6, "balance")):
            w.money(r, c, row[k])
            total[k] += row[k]
        w.percent(r, 7, row["execution_rate"])
        r += 1
    ws.autofilter(0, 0, max(r - 1, 1), len(headers) - 1)
    ws.write_string(r, 0, "合计 Total", fmt.total_label)
    for c in (1, 2, 3):
        ws.write_blank(r, c, None, fmt.total_label)
    for c, k in ((4, "allocated"), (5, "spent"), (6, "balance")):
        w.money(r, c, total[k], fmt.money_bold)
    rate = (total["spent"] / total["allocated"]).quantize(Decimal("0.0001")) if total["allocated"] else None
    if rate is None:
        ws.write_blank(r, 7, None, fmt.percent_bold)
    else:
        w.percent(r, 7, rate, fmt.percent_bold)
    if ov.unallocated_lines:  # what the total leaves out: the balance is not all that is left
        w.text(r + 1, 2, f"{UNALLOCATED_LABEL}：{ov.unallocated_lines} 行 lines")
        w.money(r + 1, 5, ov.unallocated)


def _purposes_sheet(con, wb, fmt: _Formats, run_id: str) -> None:
    """Each sub-account name of the spending tied to a notice: how it was matched to an allocation
    line, and its lines and amount (what 分配执行's spent counts, and what it does not)."""
    headers = ["文号 notice_no", "账簿项目名称 ledger purpose", "对应方式 matched", "序号 line_seq",
               "分配用途 allocated purpose", "行数 lines", "金额（元） amount"]
    ws, w = _table_sheet(wb, fmt, SHEET_PURPOSES, headers, [18, 36, 44, 8, 36, 10, 18])
    r = 1
    for row in iter_dicts(con, PURPOSES_SQL, [run_id]):
        w.text(r, 0, row["notice_no"])
        w.text(r, 1, BLANK_PURPOSE if row["purpose"] is None else row["purpose"])
        w.text(r, 2, match_label(row["match_kind"], row["match_by"]))
        w.number(r, 3, row["line_seq"])
        w.text(r, 4, row["allocated_purpose"])
        w.number(r, 5, row["lines"])
        w.money(r, 6, row["amount"])
        r += 1
    if r == 1:
        w.text(r, 0, "（本次运行没有与通知相关的支出 / no spending tied to a notice in this run）")
        return
    ws.autofilter(0, 0, r - 1, len(headers) - 1)


def _finding_columns(con, run_id: str) -> list[tuple]:
    present = con.execute(
        f"""
        select count(f.change), count(f.first_seen),
               count(*) filter (where {WAIVED})
        from findings as f where f.run_id = ?
        """, [run_id]).fetchone()
    cols = list(FINDING_COLUMNS)
    for name, n in zip(("change", "first_seen", "waived"), present):
        if n:
            cols.append(OPTIONAL_FINDING_COLUMNS[name])
    cols.append(FINDING_KEY_COLUMN)
    return cols


def _findings_sheet(con, wb, fmt: _Formats, run_id: str, ov: RunOverview) -> None:
    cols = _finding_columns(con, run_id)
    ws, w = _table_sheet(wb, fmt, SHEET_FINDINGS, [h for _, h, _, _ in cols],
                         [width for _, _, width, _ in cols])
    limit = MAX_FINDING_ROWS if ov.rows_total <= MAX_FINDING_ROWS else MAX_FINDING_ROWS - 1
    written = _FindingRows(ws, fmt, cols).write(con, run_id, limit)
    if ov.rows_total > limit:
        more = ov.rows_total - written
        w.text(written + 1, 0, f"另有 {more:,} 条未列出（超出 Excel 行数上限），完整清单见 exceptions.csv / "
                               f"{more:,} more findings not listed (Excel row limit); see exceptions.csv",
               fmt.note)
    ws.autofilter(0, 0, max(written, 1), len(cols) - 1)


# What xlsxwriter escapes in a string as Excel does: a literal escape `_xHHHH_` (its underscore
# becomes _x005F_), control characters (_xHHHH_) and the non-characters U+FFFE and U+FFFF.
_LITERAL_ESCAPE = re.compile("(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile("([\x00-\x08\x0b-\x1f\ufffe\uffff])")
_EDGE_SPACE = re.compile("^\\s|\\s$")  # xml:space="preserve" keeps it
# A string that needs none of _inline_cell's escapes (most need none): one search tells.
_NOT_PLAIN = re.compile("[\x00-\x1f\ufffe\uffff&<>]|_x[0-9a-fA-F]{4}_|^\\s|\\s$")


# The exceptions sheet's rows are made in SQL when every value is plain: text with nothing
# _inline_cell escapes but & < > (no control character, no literal _xHHHH_, no <r> run, no
# space at either end: Python's \s, which is Unicode's, listed here), short enough that no cut at
# Excel's limit can apply, and dates from 1900 on. _row makes the others. The SQL cells are
# tested against _row's (tests/test_reports.py writes both, and compares with xlsxwriter's).
_SPACE_CLASS = (r"[\s\x{0b}\x{1c}-\x{1f}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}"
                r"\x{202f}\x{205f}\x{3000}]")
_NOT_PLAIN_SQL = (r"[\x00-\x1f\x{fffe}\x{ffff}]|_x[0-9a-fA-F]{4}_|^<r>|^" + _SPACE_CLASS
                  + "|" + _SPACE_CLASS + "$")
PLAIN_SQL_MAX = XLSX_MAX_TEXT // 4  # characters: at most two UTF-16 units each, far from the cut
_SQL_TYPES = {"text": "VARCHAR", "change": "VARCHAR", "severity": "VARCHAR",
              "money": "DECIMAL(18,2)", "int": "BIGINT", "date": "DATE"}


class _FindingRows:
    """The exceptions sheet's rows as xlsxwriter writes them in constant-memory mode (one <row>
    of inline-string and number cells per finding, into the sheet's row file), with the cells
    _Writer would write, at a fraction of the cost: made in SQL (_rows_sql) where the values
    allow, else by _row.

    It relies on how xlsxwriter 3 keeps a constant-memory sheet: the row file `fh`, the last row
    written `previous_row`, the used range `_check_dimensions`. tests/test_reports.py holds the
    workbook it writes to the one xlsxwriter writes cell by cell, byte for byte."""

    def __init__(self, ws, fmt: _Formats, cols: list[tuple]):
        self.ws = ws
        self.fmt = fmt
        self.cols = cols
        self.dates: dict = {}
        # each cell's style index (a format equal to another has no index of its own: ask)
        self.text, self.text_quoted = (f._get_xf_index() for f in fmt.text_styles(wrap=False))
        self.wrap, self.wrap_quoted = (f._get_xf_index() for f in fmt.text_styles(wrap=True))
        self.money, self.int = fmt.money._get_xf_index(), fmt.int._get_xf_index()
        self.date, self.datetime = fmt.date._get_xf_index(), fmt.datetime._get_xf_index()
        self.severity = {s: (SEVERITY_ZH.get(s, s), f._get_xf_index()) for s, f in fmt.severity.items()}

    def write(self, con: duckdb.DuckDBPyConnection, run_id: str, limit: int) -> int:
        """Write the run's findings (FINDINGS_SQL), at most `limit`, from row 1 on; returns how many."""
        ws, n = self.ws, 0
        cur = con.cursor()
        try:
            rows = cur.sql(self._rows_sql(cur, run_id), params=[run_id, limit])
            batches = rows.to_arrow_reader(10_000)
            position = {name: i for i, name in enumerate(batches.schema.names)}  # a row's columns
            cells = [(key, kind, xl_col_to_name(c), position[key])
                     for c, (key, _, _, kind) in enumerate(self.cols)]
            for batch in batches:
                if n == 0:
                    ws._write_single_row(1)  # xlsxwriter writes out the header row it holds
                self._write_batch(batch, n, cells)
                n += batch.num_rows
        finally:
            cur.close()
        if n:
            ws._check_dimensions(n, 0)
            ws.previous_row = n
        return n

    def _write_batch(self, batch: pa.RecordBatch, n: int, cells: list[tuple]) -> None:
        """Rows n + 1 ... of a batch of _rows_sql into the row file: the XML DuckDB made, as the
        UTF-8 bytes it holds (one slice of the batch's text for a run of such rows, no Python
        string), and each other row as _row makes it."""
        xml = batch.column(0)
        self.ws.fh.flush()  # the text layer's pending writes first, then bytes beside it
        out = self.ws.fh.buffer
        width = {pa.string(): "i", pa.large_string(): "q"}.get(xml.type)  # offsets: int32, int64
        if width is None:  # another Arrow layout of text: row by row
            for i, text in enumerate(xml.to_pylist()):
                if text is None:
                    text = self._row(n + 1 + i, [column[i].as_py() for column in batch.columns], cells)
                out.write(text.encode("utf-8"))
            return
        _, offsets_buffer, data = xml.buffers()
        end = (xml.offset + len(xml) + 1) * (4 if width == "i" else 8)
        offsets = memoryview(offsets_buffer)[:end].cast(width)[xml.offset:]
        text, start = memoryview(data), 0
        made_here = pc.indices_nonzero(xml.is_null()).to_pylist() if xml.null_count else ()
        for i in made_here:
            out.write(text[offsets[start]:offsets[i]])
            row = [column[i].as_py() for column in batch.columns]
            out.write(self._row(n + 1 + i, row, cells).encode("utf-8"))
            start = i + 1
        out.write(text[offsets[start]:offsets[len(xml)]])

    def _rows_sql(self, cur: duckdb.DuckDBPyConnection, run_id: str) -> str:
        """The query of the sheet's rows, in FINDINGS_SQL's order, at most `?` of them: a row's XML
        made in SQL, as _row makes it, when every value is one SQL makes the same way (see
        _NOT_PLAIN_SQL); otherwise NULL and the row's values, for _row. Bound to (run_id, limit)."""
        types = finding_types(cur, run_id)
        cells, plain = [], []
        for c, (key, _, _, kind) in enumerate(self.cols):
            v, col = f'f."{key}"', xl_col_to_name(c)
            ok = types.get(key) == _SQL_TYPES[kind]

            def cell(*parts: str) -> str:  # '<c r="B12"' then the parts (SQL expressions)
                return f"concat('<c r=\"{col}', f.r, '\"', {', '.join(parts)})"
            if kind == "text":
                risky = " or ".join(f"starts_with({v}, chr({ord(p)}))" for p in FORMULA_PREFIXES)
                style, quoted = self._text_styles(key)
                cells.append(f"case when {v} <> '' then " + cell(
                    f"' s=\"', case when {risky} then '{quoted}' else '{style}' end, "
                    "'\" t=\"inlineStr\"><is><t>'",
                    f"replace(replace(replace({v}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')",
                    "'</t></is></c>'") + " end")
                plain.append(f"({v} is null or (length({v}) <= {PLAIN_SQL_MAX} "
                             f"and not regexp_matches({v}, '{_NOT_PLAIN_SQL}')))" if ok else "false")
            elif kind in ("severity", "change"):
                labels = (self.severity if kind == "severity" else
                          {ch: (change_label(ch), self.text) for ch in CHANGE_ZH})
                # the cell of each known value, from _inline_cell itself (the labels are ours)
                whens = " ".join(
                    f"when '{value}' then "
                    + cell("'" + _inline_cell("", style, label).removeprefix('<c r=""')
                           .replace("'", "''") + "'")
                    for value, (label, style) in labels.items())
                cells.append(f"case {v} {whens} end")
                known = ", ".join(f"'{value}'" for value in labels)
                blank = f" or {v} = ''" if kind == "change" else ""
                plain.append(f"({v} is null{blank} or {v} in ({known}))" if ok else "false")
            elif kind in ("money", "int"):
                style = self.money if kind == "money" else self.int
                cells.append(f"case when {v} is not null then " + cell(
                    f"' s=\"{style}\"><v>'", f"printf('%.16G', cast({v} as double))",
                    "'</v></c>'") + " end")
                plain.append("true" if ok else "false")
            elif kind == "date":
                # xlsxwriter's serial: days from 1899-12-31, one more from 1900-03-01 (Excel's
                # 29 February 1900); a date before 1900 is a text cell, made by _row
                cells.append(f"case when {v} is not null then " + cell(
                    f"' s=\"{self.date}\"><v>'",
                    f"date_diff('day', date '1899-12-31', {v}) "
                    f"+ case when {v} >= date '1900-03-01' then 1 else 0 end",
                    "'</v></c>'") + " end")
                plain.append(f"({v} is null or {v} >= date '1900-01-01')" if ok else "false")
            else:
                raise ValueError(f"no cell writer for {kind!r}")
        raw = ", ".join(f'case when f.py then f."{name}" end as "{name}"' for name in types)
        return f"""
            with f as (
                select f.*, row_number() over (order by {FINDINGS_ORDER}) as n
                from ({FINDINGS_UNORDERED}) as f
            ),
            g as (
                select f.*, cast(f.n + 1 as varchar) as r, not ({" and ".join(plain)}) as py
                from f
                where f.n <= ?
            )
            select case when not f.py then concat('<row r="', f.r, '">', {", ".join(cells)},
                                                  '</row>') end as xml,
                   {raw}
            from g as f
            order by f.n"""

    def _row(self, r: int, row: tuple, cells: list[tuple]) -> str:
        out, line = [f'<row r="{r + 1}">'], str(r + 1)
        for key, kind, col, i in cells:
            value = row[i]
            if value is None:
                continue
            ref = col + line
            if kind == "text" or kind == "change":
                if kind == "change":
                    value = change_label(value)
                elif not isinstance(value, str):
                    value = str(value)
                if value == "":
                    continue
                style, quoted = self._text_styles(key)
                out.append(_inline_cell(ref, quoted if value.startswith(FORMULA_PREFIXES) else style,
                                        _literal(value)))
            elif kind == "severity":
                label, style = self.severity.get(value, (value, self.text))
                out.append(_inline_cell(ref, style, label))
            elif kind == "money":
                out.append(f'<c r="{ref}" s="{self.money}"><v>{float(Decimal(value)):.16G}</v></c>')
            elif kind == "int":
                out.append(f'<c r="{ref}" s="{self.int}"><v>{value:.16G}</v></c>')
            elif kind == "date":
                out.append(self._date_cell(ref, value))
        out.append("</row>")
        return "".join(out)

    def _text_styles(self, key: str) -> tuple[int, int]:
        """A text column's style index, and the quoted one for text a spreadsheet would take for
        a formula (_Formats.text_styles): the message wraps, as _Writer.text(wrap=True)."""
        return (self.wrap, self.wrap_quoted) if key == "message" else (self.text, self.text_quoted)

    def _date_cell(self, ref: str, value) -> str:
        if value.year < 1900:  # as _Writer.date: a text cell
            return _inline_cell(ref, self.text, value.isoformat())
        style = self.datetime if isinstance(value, dt.datetime) else self.date
        number = self.dates.get(value)
        if number is None:
            number = self.dates[value] = self.ws._convert_date_time(value)
        return f'<c r="{ref}" s="{style}"><v>{number:.16G}</v></c>'


def _inline_cell(ref: str, xf_index: int, string: str) -> str:
    """One inline-string cell, as xlsxwriter's _write_cell writes it in constant-memory mode."""
    if not _NOT_PLAIN.search(string):
        return f'<c r="{ref}" s="{xf_index}" t="inlineStr"><is><t>{string}</t></is></c>'
    string = _LITERAL_ESCAPE.sub(r"_x005F\1", string)
    string = _CONTROL.sub(lambda m: f"_x{ord(m.group(1)):04X}_", string)
    if string.startswith("<r>") and string.endswith("</r>"):  # a run from _literal, already escaped
        return f'<c r="{ref}" s="{xf_index}" t="inlineStr"><is>{string}</is></c>'
    preserve = ' xml:space="preserve"' if _EDGE_SPACE.search(string) else ""
    if "&" in string or "<" in string or ">" in string:
        string = string.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<c r="{ref}" s="{xf_index}" t="inlineStr"><is><t{preserve}>{string}</t></is></c>'


def _indicators_sheet(con, wb, fmt: _Formats, run_id: str) -> None:
    headers = ["文号 notice_no", "用途 purpose", "指标 indicator", "目标值 target", "实际值 observed",
               "状态 status", "状态代码 status code", "测算方法 method"]
    ws, w = _table_sheet(wb, fmt, SHEET_INDICATORS, headers, [18, 30, 26, 16, 22, 12, 16, 50])
    r = 1
    for row in iter_dicts(con, INDICATORS_SQL, [run_id]):
        w.text(r, 0, row["notice_no"])
        w.text(r, 1, row["purpose"])
        w.text(r, 2, row["indicator"])
        w.text(r, 3, row["target"])
        w.text(r, 4, row["observed"])
        status = row["status"]
        ws.write_string(r, 5, status_zh(status, row["over_ceiling"]), fmt.status.get(status, fmt.text))
        w.text(r, 6, status)
        w.text(r, 7, row["method"], wrap=True)
        r += 1
    ws.autofilter(0, 0, max(r - 1, 1), len(headers) - 1)
    r += 1
    ws.write_string(r, 0, "状态说明 Statuses", fmt.section)
    for status, zh in STATUS_ZH.items():
        r += 1
        ws.write_string(r, 0, zh, fmt.status[status])
        ws.write_string(r, 1, status, fmt.text)
    r += 1
    ws.write_string(r, 0, OVER_CEILING_ZH, fmt.status["behind"])
    ws.write_string(r, 1, "behind", fmt.text)
    ws.write_string(r, 2, "年度中已超出上限（如单户单月超标准） / over its ceiling during the year", fmt.text)


def _rules_sheet(wb, fmt: _Formats, ov: RunOverview) -> None:
    headers = ["规则编号 rule_id", "级别 severity", "依据条款 cites", "说明 zh", "Description en",
               "阶段 stage", "版本 version", "本次发现 findings"]
    ws, w = _table_sheet(wb, fmt, SHEET_RULES, headers, [26, 10, 18, 50, 60, 10, 14, 10])
    r = 1
    rules = all_rules()
    for rule in rules:
        w.text(r, 0, rule.rule_id)
        ws.write_string(r, 1, SEVERITY_ZH.get(rule.severity, rule.severity),
                        fmt.severity.get(rule.severity, fmt.text))
        w.text(r, 2, rule.cites)
        w.text(r, 3, rule.zh, wrap=True)
        w.text(r, 4, rule.en, wrap=True)
        w.text(r, 5, rule.stage)
        w.text(r, 6, rule.version)
        w.number(r, 7, ov.by_rule.get(rule.rule_id, 0))
        r += 1
    known = {rule.rule_id for rule in rules}
    for rule_id, n in ov.by_rule.items():  # findings of a rule no longer in the catalogue
        if rule_id not in known:
            w.text(r, 0, rule_id)
            w.text(r, 3, "（规则目录中无此规则 / not in the current rule catalogue）")
            w.number(r, 7, n)
            r += 1
    ws.autofilter(0, 0, max(r - 1, 1), len(headers) - 1)

