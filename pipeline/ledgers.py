"""Ledger exports (账簿导出) -> ledger_lines, typed and normalised once, each file exactly once.

Finance staff drop whatever their accounting system exports into `inputs/ledgers/`: CSV (UTF-8,
UTF-8 with BOM, GBK / GB18030, UTF-16; also named .txt, .tsv, or .xls when an "export to Excel"
writes text), XLSX or XLS (the ledger's sheet) or Parquet. This module reads it, maps its
columns to the fields of `ledger_lines` through a preset, types every value in one set-based
statement and records what it did in `input_files`. Checks never re-parse strings.

How a file is read
    * CSV: the encoding is taken from `encoding=` or detected from a 1 MB sample (BOM, then UTF-16
      without a BOM when the sample plainly is that, as some Windows tools export it and as
      notices are read, then strict UTF-8, then GB18030, which is a superset of GBK; `gbk` is
      recorded when the sample is plain GBK). DuckDB reads only UTF-8 natively, so any other
      encoding is transcoded to a temporary UTF-8 file first, by the system's iconv when there is
      one (RECON_ICONV=0 turns it off), else by Python's streaming codec. iconv starts at once,
      while a thread computes the file's hash (see load_ledgers), unless a file of the same name
      and size is already loaded; it stops if the hash shows the content loaded. DuckDB then reads
      it with an explicit dialect (delimiter sniffed from the header row among `,` TAB `;` `|`,
      double-quote quoting), every column as VARCHAR, lines up to CSV_MAX_LINE_BYTES.
    * XLSX: the sheet whose header is complete (_ledger_sheets), with openpyxl in read-only mode
      (DuckDB's read_xlsx needs a downloaded extension), streamed into a temporary table in Arrow
      batches of 50,000 rows. Real date cells become ISO dates, number cells exact decimals
      (amounts rounded half-up to the cent only when the float is within 1e-6 of it), so nothing
      depends on how a cell was formatted, with one exception: a positive amount shown red (a red
      font, or a number format red for positive numbers) is 红字, red ink, a reversal, and is read
      as negative (_red_ink_styles; the outcome says how many and on which rows), unless every
      amount of its column is shown red, as a template styles a whole 贷方 column (its look, read as
      written, and said: RED_COLUMN_MIN_AMOUNTS). A workbook saved
      with the 1904 date system (Mac Excel) has its serials read from 1904-01-01 (_serial_epoch;
      openpyxl dates its date cells by it already). A range merged down over several data rows
      holds its value in its first row only: each row under it reads that value, as Excel shows it (a
      voucher number, date or summary printed once per entry), except in the amount columns,
      where the amount is shown once and so counts once (_merged_down; the outcome says how many
      cells). openpyxl's read-only mode does not read merged ranges: _scan_sheet_xml finds them.
    * XLS (Excel 97-2003, also under an .xlsx name): the same, read with xlrd (_read_xls), the
      1904 date system and red ink included (xlrd's formatting_info gives each cell's font colour
      and number format: _xls_red_ink_xfs; a workbook xlrd can read only without it has its merged
      cells and red ink unread).
    * A web page holding a table (.htm / .html, or named .xls by a web system's "export to
      Excel"): its rows read as a sheet's, colspan / rowspan as merged cells (_read_html).
    * An Excel 2003 XML Spreadsheet (.xml, or named .xls): its worksheets read as a workbook's
      (_read_xml_spreadsheet), the 1904 date system included (its date cells are ISO text either
      way; it matters to serials left numbers).
    * A workbook with the ledger on several sheets (one a month, as a unit keeps its year): each
      sheet is loaded as a file of its own, registered as `账簿.xlsx [3月]` (path `…#3月`, sha256
      `<workbook's>#<n>`), so its rows are numbered and cited by sheet and a sheet supersedes or
      is superseded as an export does (a 全年 sheet repeating the months supersedes them). The
      workbook's own registry row holds no lines and lists its sheets; it makes the same workbook
      skipped when offered again (_register_workbook). All sheets load in one transaction.
    * Parquet: DuckDB's read_parquet, columns cast to text (amount doubles to the cent as XLSX
      numbers are; date-times with a time zone dated in that zone).
    The header is the first of the first 20 rows that names every required field of a preset;
    rows above it (a report title, the unit name) are ignored. A header printed on two rows (科目
    over 编码 | 名称, 金额 over 借方 | 贷方) is read as one (_stacked_heading); data starts under
    its lower row.
    Typing is set-based SQL, never Python per row. A CSV is first read in parallel into a Parquet
    file of text beside the transcoded copy (SCRATCH_TEXT, deleted after the load), in file order:
    a row's position in it (file_row_number) numbers the row, since a row_number() window would
    read the file on one thread. DuckDB passes over entirely empty lines, which Excel shows as
    rows: where the file has any under its header, the rows after one are numbered up
    (_blank_line_shift). Parquet stores the text once, compressed, and each later scan
    reads only the columns it needs (a temporary table spills whole, uncompressed, and at 10M
    lines made the load 11 s slower; a table in a scratch database file, used before, is slower
    to write: bench/README.md, thirteenth session). Then one scan per field collects the distinct
    spellings of the fields that repeat (dates, codes, direct flags, purposes, document numbers),
    which are parsed once each (_ledger_lookup), and one INSERT streams every typed, valid row into
    ledger_lines (hash-join probes into the small lookup); only when some rows did not load are
    they typed again for the quarantine. Every value first meets a cheap exact test and only
    values that fail it take the slow path. A load runs under a DuckDB memory limit
    (RECON_LOAD_MEMORY_LIMIT, by default the store's RECON_MEMORY_LIMIT of 1GB) and spills to disk
    beyond it: on the 2-core development machine a 1M-line GB18030 export loads in about 3.4-3.6 s
    in 371-380 MiB, 10M lines in about 30 s in 551 MiB (`recon load ledger`, thirteenth session).

Presets and aliases (`config/presets.toml`)
    `standard` and `cn-grp` map each field to the headings it may have. The preset is detected from
    the header (the one naming all required fields, and the most fields); `preset=` forces one.
    A site adds aliases without a patch, in a TOML file of the same layout found in (all apply):
    the file named by the environment variable RECON_PRESETS; `presets.toml` in the same folder as
    the ledger file (so `inputs/ledgers/presets.toml` serves `recon run`); or
    `load_ledgers(..., presets_file=PATH)`. Required fields: voucher_no, posted_on,
    account_code, debit, credit. Without an account code column, the account code is read from
    the account name column (会计科目) when most of its values under the header begin with a code
    (`720101 事业支出-基本支出`: STANDS_IN). A 凭证字 column (voucher_word, 收 / 付 / 转 / 记)
    printed apart from 凭证号 joins the number: 收-1 (_voucher_sql). One amount column with a
    direction column (金额 | 方向, 借 / 贷) stands in for 借方 | 贷方 (SPLIT_BY): the amount is the
    line's debit or credit by its direction, and a row whose direction is neither is quarantined.
    A direction may be written as a number (1 for 借, and 0, -1 or 2 for 贷: NUMERIC_CREDIT).
    A column of auxiliary items (辅助项: `项目:… ;功能分类:…`, `【项目】… 【功能科目】…`) gives the
    fields of AUX_FIELDS that have no column of their own, each by its headings as labels
    (_aux_sql): its quarantined values are named `辅助项（功能分类）`.
    `book` is optional: when the column is absent or
    blank, the account code decides (政府会计制度: 6xxx/7xxx/8xxx are budget accounting, 1xxx-5xxx
    financial).
    A file lacking a required column, or with two columns for the same field, is rejected whole.

Normalisation (once, at load; SQL below)
    codes      `2210107 保障性住房租金补贴`, `[2210107]…`, `【2210107】…`, `2210107.0`, by level
               `221-01-07`, `221.01.07`, `221 01 07`, `22101-07` -> `2210107` (`303-05` ->
               `30305`), and as a path `221 住房保障支出/22101 …/2210107 …` -> `2210107` (the
               deepest); pieces that are not levels (`2210-107`) and a path whose codes do not nest
               are quarantined, saying so (ledger_code_doubt), rather than read as a wrong code;
               the raw function code is kept in function_code_raw. Account codes may carry
               sub-account separators (`7201.01` -> `720101`). A code may follow its name in
               brackets of either width that hold only the code (and the separators above):
               `事业支出(7201)`, `事业支出（7201.01）`, `保障性住房租金补贴（2210107）`, `…(221-01-07)`;
               read only when no code comes first and the name holds no digit (so a path of
               names each with its code, `住房保障支出(221)/…(2210107)`, stays quarantined).
    amounts    `1,234.56`, `-1,234.56`, `(1,234.56)` (accounting negative), full-width digits,
               `¥`/`元`/spaces; blank, `-` or `—` -> 0. More than two decimals (other than trailing
               zeros) or misplaced thousands separators make the value unparsable. In XLSX and
               XLS, a positive amount shown red (红字: a font FF0000 or close, or `[Red]#,##0.00`)
               -> its negative, said in the outcome; a negative shown red by its format stays
               negative; a column whose every amount is red (3 at least) is read as written.
    dates      `2024-03-15`, `2024/3/15`, `2024.3.15`, `2024年3月15日`, `20240315`, a trailing time
               of any precision (`2024-03-15 00:00:00.000` as SQL Server writes it, ISO's `T`),
               Excel serials (`45366` = 2024-03-15; `43904` in a workbook of the 1904 date
               system, whether a number or text) and real date cells.
    direct     是/Y/yes/1/true/√, `01 中央直达资金`, and `02 中央参照直达资金` -> true (a flag is
               present); 否/N/0/false, `09 其他`, 非直达 -> false; anything else -> null. The raw
               value is kept in direct_flag_raw, and it alone tells 02 from 01: 02 money is managed
               like direct funds but is not central direct money, and spending from a 中央直达
               allocation line must carry 01 unchanged, so the facts read 02 from the raw value
               (fct_expenditure.direct_flag_referenced) and DIRECT_FLAG_MISSING reports it there.
    book       预算会计/预算/budget -> budget, 财务会计/财务/financial -> financial.
    purpose    kept as written; purpose_key = purpose_key(purpose) (brackets, width, spaces).
    ="0001"    Excel's text form, as some systems export codes: when the rows under a file's header
               hold it, every value of the file is read as the text inside (_EXCEL_TEXT_TRIM), and
               the outcome says so.
    doc no     budget_doc_no = doc_no_key(指标文号): brackets normalised to 〔〕.
    Rows that are skipped: rows without a date that hold nothing to book (no account code, debit
    or credit: blank rows, a signature line 制表人：… 审核：… under the ledger, a note; a label or
    a page number, 第2页 共5页, where a code or amount would be: a printed page's heading); subtotal
    rows (no voucher number and no date, with 合计 / 累计 / 小计 / 总计 / 期初余额 … in them); a
    detail ledger's (明细账) balance and total rows, dated but of no voucher, whose summary begins
    with 期初余额, 本月合计, 本年累计, 承前页 … (BALANCE_ROWS); the header again
    (the date column holding its heading: an export laid out for printing repeats the header on
    every page), and a two-row header's lower row again (no date, the amount columns holding
    their headings: 借方 | 贷方). The outcome counts the skipped rows that hold some text, and the
    headers.

Bad rows
    A row with an unparsable amount, date or code, or without voucher number, date or account
    code, is kept out of ledger_lines and written to `quarantine` (one row per bad cell: file,
    row, heading as written in the file, value, reason); the rest of the file loads.
    Row numbers count data rows: row 1 is the first row under the header (in a spreadsheet with
    the header on line 1, data row N is line N+1). INPUT_ROW_INVALID reports them. Limitation: in
    a CSV, DuckDB's reader passes over a line that is entirely empty (no delimiters at all), so
    the rows after such a line are numbered one less than a spreadsheet shows them; finding it
    would take a scan of the whole file (5.4 s for the 10M-line bench file). Every finding also
    names the voucher and its line, which do not move.

Exactly once
    A file whose sha256 is already loaded (or superseded) is skipped; so, without being read, is a
    file at the path, of the size and modification time of a loaded one (pipeline/loading.py). Each
    file loads in one transaction: a failure mid-file leaves the store as it was, and a rejected
    file leaves only its registry row (status `rejected`, with the reason), reported as
    INPUT_REJECTED.

Year-to-date exports (supersession)
    The accounting system exports the year to date every night, so today's file repeats
    yesterday's lines. After a ledger file F loads, each other active ledger file E whose
    posting-date range covers F's, or is covered by it, is compared with F line by line: the
    file whose range is covered must have more than half of its lines repeated whole in the other
    (voucher line key, date, account, amounts, payee), or, where the system numbered its vouchers
    afresh between two exports that are plainly successive (read from one path, or named with two
    dates) (断号整理: a voucher deleted, those after it renumbered), more than half repeated but
    for the voucher number (date, book, account, amounts, payee and summary, each line once, lines
    without a payee not counted; the outcome says the vouchers were renumbered; without the path
    or the dates, the same payments under other voucher numbers are a double booking, which
    DUPLICATE_ENTRY reports). If so, the older of the two exports is
    marked `superseded` (superseded_by = the newer). Where the covered file begins in a later
    month than the other (a month's export beside the year to date), it is the part, and the
    other stays counted, whatever the names or paths say. Between two that begin in one month
    (two year-to-date exports), the newer is the one whose file name carries
    the later date, when both names carry one (ytd_20241130.csv, 账簿_2024-11-30.xlsx); else F,
    when E was read from the same path (the export overwrites one file every night: what is at
    the path now replaced what was read from it before); else the one whose range covers the
    other's (F.first <= E.first and F.last >= E.last; E covering F means F is an older export
    loaded late). Superseded lines stay in ledger_lines (nothing is deleted) but drop out of
    stg_ledger_lines, so spending is today's export only and a voucher voided between the two
    exports disappears. Monthly exports do not supersede one another: their
    date ranges are disjoint. Another unit's ledger loaded into the same store numbers its
    vouchers alike (记-1, 记-2 ...) but repeats hardly a whole line, so it never supersedes this
    one; the outcome notes a file that repeats some lines of another but not half.
    The names' dates matter when the vouchers on the last posting date of yesterday's export are
    voided and today's export has no later posting: today's range is then covered by yesterday's.
    So does the path, when the export overwrites one file. Limitation: with neither (other names
    without dates, or the same date in both), today's file is taken for an older export loaded
    late and marked superseded (its outcome says so), and the voided lines stay counted until the
    next export with a later posting supersedes yesterday's. Paths compare as registered
    (loading.canonical_path): one file named relatively by the cron job and absolutely by an
    auditor, or through a linked folder, is one path.
"""
from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
import io
import itertools
import os
import re
import shutil
import subprocess
import tomllib
import zipfile
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field as dataclass_field
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable, Iterator

import duckdb
import numpy as np

from .loading import (FileOutcome, InputError, canonical_path, canonicalise_registered_paths,
                      file_stamp, loaded_by_name_and_size, earlier_load, record_stamp,
                      register_file, reject_file, sha256_file, skipped_as_loaded,
                      unchanged_file)
from .store import LOAD_MEMORY_LIMIT, memory_limit, out_of_disk, working_folder
from .paths import CONFIG_DIR
from .text import decode_text, utf16_without_bom

FIELDS = (
    "voucher_no", "line_no", "posted_on", "book", "account_code", "account_name", "summary",
    "debit", "credit", "function_code", "economic_code", "project_code", "purpose",
    "fund_source", "direct_flag", "budget_doc_no", "payee",
)
# Fields a header may name that are not columns of their own: 凭证字 (收 / 付 / 转 / 记), where the
# export prints it apart from the number (it joins the voucher number: _voucher_sql); one amount
# column with a direction column (金额 | 方向 借 / 贷) in place of 借方 | 贷方 (SPLIT_BY); one
# column holding the auxiliary items together (辅助项: 项目:… ; 功能分类:… : AUX_FIELDS).
HEADER_FIELDS = FIELDS + ("voucher_word", "amount", "direction", "aux")
FIELD_ZH = {
    "voucher_word": "凭证字", "amount": "金额", "direction": "借贷方向", "aux": "辅助核算",
    "voucher_no": "凭证号",
    "line_no": "分录号", "posted_on": "凭证日期", "book": "会计体系",
    "account_code": "科目编码", "account_name": "科目名称", "summary": "摘要", "debit": "借方金额",
    "credit": "贷方金额", "function_code": "功能分类", "economic_code": "经济分类",
    "project_code": "项目代码", "purpose": "项目名称", "fund_source": "资金来源",
    "direct_flag": "直达资金标识", "budget_doc_no": "指标文号", "payee": "收款人",
}
AMOUNT_FIELDS = ("debit", "credit")
PRESETS_FILE = CONFIG_DIR / "presets.toml"
SITE_PRESETS_NAME = "presets.toml"  # a site's own aliases, beside its ledgers (not a ledger)
HEADER_SCAN_ROWS = 20
SAMPLE_BYTES = 1 << 20
CHUNK_BYTES = 4 << 20
XLSX_BATCH_ROWS = 50_000
# A CSV line may hold a long summary; beyond this DuckDB refuses the line (the file is rejected).
# An Excel cell holds at most 32,767 characters, so even 17 full cells stay under 2 MB. The
# reader's buffer is twice this, per thread: the limit is most of the load's memory.
CSV_MAX_LINE_BYTES = 4 << 20
# Size limits for XLSX parts, checked before anything is inflated: a real ledger sheet of a
# million lines is well under 1 GiB of XML and compresses about 10:1; a zip bomb does not.
XLSX_MAX_PART_BYTES = int(os.environ.get("RECON_XLSX_MAX_BYTES", 1 << 30))
XLSX_MAX_RATIO = 100
XLSX_RATIO_FROM_BYTES = 64 << 20
_CSV_DELIMITERS = (",", "\t", ";", "|")


# --------------------------------------------------------------------------------------------
# Presets

@dataclass(frozen=True)
class Presets:
    """Column headings per field for each preset, and the fields every file must have."""

    presets: dict[str, dict[str, tuple[str, ...]]]
    required: tuple[str, ...]


def header_key(text: object) -> str:
    """A heading as compared: trimmed, full-width folded, spaces removed, lower case."""
    from .text import purpose_key

    return purpose_key(str(text).replace("\ufeff", "")) or ""


def load_presets(extra_files: Iterable[Path] = ()) -> Presets:
    """The shipped presets plus the aliases (or whole presets) of extra_files, in order."""
    presets: dict[str, dict[str, list[str]]] = {}
    required: list[str] = []
    for path in [PRESETS_FILE, *extra_files]:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InputError(path, f"列名预设文件无法读取：{exc}",
                             f"presets file cannot be read: {exc}") from exc
        for name, table in (data.get("presets") or {}).items():
            target = presets.setdefault(name, {})
            for field, headings in table.items():
                if field not in HEADER_FIELDS:
                    raise InputError(path, f"列名预设 {name} 中的字段 {field} 不存在（可用：{', '.join(HEADER_FIELDS)}）",
                                     f"preset {name}: unknown field {field} (known: {', '.join(HEADER_FIELDS)})")
                if isinstance(headings, str):
                    headings = [headings]
                target.setdefault(field, []).extend(str(h) for h in headings)
        req = (data.get("required") or {}).get("fields")
        if req:
            required = [f for f in req if f in FIELDS]
    return Presets(
        {name: {f: tuple(h) for f, h in table.items()} for name, table in presets.items()},
        tuple(required or ("voucher_no", "posted_on", "account_code", "debit", "credit")),
    )


def _user_preset_files(path: Path, presets_file: Path | None) -> list[Path]:
    files = []
    env = os.environ.get("RECON_PRESETS")
    if env:
        files.append(Path(env))
    beside = path.parent / SITE_PRESETS_NAME
    if beside.is_file():
        files.append(beside)
    if presets_file is not None:
        files.append(Path(presets_file))
    return files


@dataclass(frozen=True)
class ColumnMap:
    """Which column of the file (by position) holds each field, and the heading it had."""

    preset: str
    header_index: int                  # 0-based row of the header among the file's rows
    columns: dict[str, int]            # field -> 0-based column position
    headings: dict[str, str]           # field -> heading as written
    width: int                         # number of columns in the header row
    note: str | None = None            # what reading changed, for the load's outcome
    excel_text: bool = False           # values in Excel's text form ="0001" under the header
    by_direction: bool = False         # debit is one amount column, credit its direction (SPLIT_BY)
    numeric_credit: tuple[str, ...] | None = None  # ... written 1 (借) and one of these (贷)
    aux_labels: dict[str, str] = dataclass_field(default_factory=dict)  # field -> its labels in the 辅助项 column
    date1904: bool = False             # a workbook of the 1904 date system: serials count from 1904-01-01


def _match_row(cells: list, lookup: dict[str, str]) -> tuple[dict[str, int], list[str]]:
    """Fields found in one header row under one preset (its _alias_lookup), and duplicate-field
    problems."""
    found: dict[str, int] = {}
    dupes: list[str] = []
    for i, cell in enumerate(cells):
        if cell is None or str(cell).strip() == "":
            continue
        field = lookup.get(header_key(cell))
        if field is None:
            continue
        if field in found:
            dupes.append(f"{cells[found[field]]} / {cell}")
        else:
            found[field] = i
    return found, dupes


def match_header(path: Path, rows: list[list], presets: Presets, preset: str | None) -> ColumnMap:
    """Find the header among the first rows and map it; InputError when a required field is missing."""
    best = _best_header(path, rows, presets, preset)
    if best is None or not any(_text(c).strip("\ufeff") for r in rows for c in r):  # blank lines only
        raise InputError(path, "文件为空，没有表头", "the file is empty: no header row")
    (complete, _), idx, name, found, dupes, cells = best
    for field, other in STANDS_IN.items():
        if complete and field in found and found[field] == found.get(other) \
                and not _stand_in_holds_codes(rows[idx + 1:], found[field]):
            complete = False  # the column holds names only: the field is missing after all
            found = {f: i for f, i in found.items() if f != field}
    sides = _direction_sides(rows[idx + 1:], found["direction"]) if _split(found) else None
    if complete and _split(found) and sides is None:
        complete = False  # a 方向 that is not the line's side: debit and credit are missing
        found = {f: i for f, i in found.items() if f not in SPLIT_BY}
    if not complete and any(isinstance(c, str) and "\ufffd" in c for r in rows[:idx + 2] for c in r):
        # bytes the encoding read could not decode (a GBK file read as UTF-8 under --encoding):
        # no heading could match, and "columns missing" would send the user to presets.toml
        raise InputError(path, "表头含有无法按所读编码解码的字节：文件的编码不是所用的编码（请去掉 --encoding 让程序检测，"
                               "或指定正确的编码，如 gb18030）",
                         "the header holds bytes the encoding read could not decode: the file is in "
                         "another encoding (leave out --encoding to have it detected, or give the right "
                         "one, such as gb18030)")
    if not complete:
        missing = [f for f in presets.required if f not in found]
        zh = "、".join(f"{FIELD_ZH[f]}({f})" for f in missing)
        hint_zh = hint_en = ""
        if "debit" in missing and "credit" in missing and "amount" in found:
            if "direction" not in found:
                hint_zh = "；只有一列金额时，需要借贷方向列（方向：借 / 贷）"
                hint_en = "; with one amount column, a direction column (方向: 借 / 贷) is needed"
            else:
                heading = _text(cells[found["direction"]])
                hint_zh = f"；“{heading}”列的值大多不是 借 / 贷（或 1 / 0），不能用来区分借方与贷方"
                hint_en = (f"; most values of the column {heading!r} are not 借 / 贷 (or 1 / 0), so it "
                           f"cannot tell debits from credits")
        raise InputError(
            path,
            f"缺少必需的列：{zh}（预设 {name}；可在 presets.toml 中添加列名别名{hint_zh}）",
            f"required columns missing: {', '.join(missing)} (preset {name}; "
            f"add an alias in presets.toml if the export names them differently{hint_en})",
        )
    if dupes:
        raise InputError(path, f"列重复：{'；'.join(dupes)}", f"duplicate columns: {'; '.join(dupes)}")
    excel_text = any(isinstance(c, str) and _EXCEL_TEXT.fullmatch(c) for r in rows[idx + 1:] for c in r)
    if "aux" not in found and "purpose" in found \
            and _holds_aux_items(rows[idx + 1:], found["purpose"], presets):
        found["aux"] = found.pop("purpose")  # 辅助核算项目 holding 项目:… ;功能分类:… is a 辅助项 column
    by_direction = _split(found)
    columns = {f: i for f, i in found.items() if f not in SPLIT_BY.values() and f != "aux"}
    headings = {f: str(cells[i]).strip() for f, i in columns.items()}
    aux_labels = {}
    if "aux" in found:  # the fields without a column of their own are read from the 辅助项 column
        aux_heading = str(cells[found["aux"]]).strip()
        for f in AUX_FIELDS:
            if f not in columns:
                columns[f] = found["aux"]
                headings[f] = f"{aux_heading}（{FIELD_ZH[f]}）"
                aux_labels[f] = _aux_labels(presets, f)
    return ColumnMap(name, idx, columns, headings, len(cells), excel_text=excel_text,
                     by_direction=by_direction, aux_labels=aux_labels,
                     numeric_credit=sides or None)


# Some systems export a line's auxiliary items (辅助核算) in one column, each item as its label
# and value: `项目:2024年租赁补贴（中央直达）;功能分类:2210107 保障性住房租金补贴`, `【项目】… 【功能科目】…`,
# `项目：… 部门：…`. A field without a column of its own is read from it, by the labels its
# column may have (the presets' headings of the field), when the header has such a column.
AUX_FIELDS = ("function_code", "economic_code", "project_code", "purpose", "fund_source",
              "direct_flag", "budget_doc_no", "payee")


def _holds_aux_items(rows: list[list], column: int, presets: Presets) -> bool:
    """Whether most values under the header in a column (headed as the purpose: 项目, 辅助核算项目)
    hold two or more labelled items of different fields, as a 辅助项 column does."""
    labels = {f: re.compile(_aux_label_pattern(_aux_labels(presets, f))) for f in AUX_FIELDS}
    values = [_text(r[column]) for r in rows if column < len(r) and _text(r[column])]
    itemised = sum(1 for v in values if sum(1 for p in labels.values() if p.search(v)) >= 2)
    return bool(values) and 2 * itemised > len(values)


def _aux_label_pattern(labels: str) -> str:
    """A label as it begins an item in a 辅助项 cell (the label part of _aux_sql's pattern):
    【项目】, [项目], or 项目: / 项目： / 项目= after the start or a separator (not 预算项目:)."""
    return (rf"(?:【(?:{labels})】|[\[［](?:{labels})[\]］]"
            rf"|(?:^|[^\w])(?:{labels})\s*[:：=])")


def _aux_labels(presets: Presets, field_name: str) -> str:
    """The field's labels as a regular-expression alternation, longest first (RE2 takes the first
    alternative that matches): every heading the presets give the field, and its Chinese name."""
    labels = {FIELD_ZH[field_name]}
    for headings in presets.presets.values():
        labels.update(h.strip() for h in headings.get(field_name, ()) if h.strip())
    return "|".join(re.escape(x) for x in sorted(labels, key=lambda x: (-len(x), x)))


def _aux_sql(column: str, labels: str) -> str:
    """SQL for one item of a 辅助项 cell: the text after its label (`项目:`, `项目：`, `【项目】`,
    `[项目]`, the colon form only after a separator, so that 预算项目: is not 项目:) up to the next
    separator (; ； | , ， or a line break) or the next item's label."""
    pattern = (rf"(?:【(?:{labels})】|[\[［](?:{labels})[\]］]|(?:^|[^\p{{Han}}A-Za-z0-9])(?:{labels})\s*[:：=])"
               rf"\s*[:：]?\s*([^;；|,，\n\r]*)")
    cut = r"\s*(?:【|[\[［]\p{Han}|[\p{Han}A-Za-z]{1,10}\s*[:：=]).*$"
    pattern, cut = pattern.replace("'", "''"), cut.replace("'", "''")
    return f"regexp_replace(regexp_extract({column}, '{pattern}', 1), '{cut}', '')"


def _best_header(path: Path, rows: list[list], presets: Presets, preset: str | None):
    """The row among the first that best matches a preset's headings, as
    ((complete, fields found), row index, preset, found, duplicates, cells); None for no rows."""
    if preset is not None and preset not in presets.presets:
        raise InputError(path, f"未知的列名预设 {preset}（可用：{', '.join(presets.presets)}）",
                         f"unknown preset {preset} (known: {', '.join(presets.presets)})")
    names = [preset] if preset else list(presets.presets)
    lookups = {name: _alias_lookup(presets, name) for name in names}  # once: 0.13 ms each
    best = None
    for idx, cells in enumerate(rows[:HEADER_SCAN_ROWS]):
        cells = list(cells)
        for name, lookup in lookups.items():
            score, found, dupes = _scored(cells, lookup, presets.required)
            if best is None or score > best[0]:
                best = (score, idx, name, found, dupes, cells)
        if best[0][0] and not _split(best[3]):
            break  # the first complete header row wins
        if idx + 1 < len(rows):  # else a header of two rows, this one over the next
            for name, lookup in lookups.items():
                stacked = _stacked_heading(cells, list(rows[idx + 1]), lookup)
                score, found, dupes = _scored(stacked, lookup, presets.required)
                # 金额 over 借方 | 贷方 beside 方向: the row above is complete by SPLIT_BY, but the
                # two rows name the debit and credit columns themselves
                if score[0] and (score > best[0] or _split(best[3]) and not _split(found)):
                    best = (score, idx + 1, name, found, dupes, stacked)
            if best[0][0]:
                break
    return best


def _scored(cells: list, lookup: dict[str, str],
            required: tuple[str, ...]) -> tuple[tuple[bool, int], dict[str, int], list[str]]:
    """How well a header row matches a preset: ((complete, fields found), found, duplicates).
    A field missing from the row is read from the column of the field that stands in for it
    (STANDS_IN), if that is there; match_header then checks the column's values."""
    found, dupes = _match_row(cells, lookup)
    for field, other in STANDS_IN.items():
        if field not in found and other in found:
            found = {**found, field: found[other]}
    if not any(f in found for f in SPLIT_BY) and all(f in found for f in SPLIT_BY.values()):
        found = {**found, **{f: found[other] for f, other in SPLIT_BY.items()}}
    return (all(f in found for f in required), len(found)), found, dupes


# Many exports have no account code column, only 会计科目 holding the code and the name together
# (`720101 事业支出-基本支出`, or the name first: `事业支出(7201)`): the code is read from it
# (ledger_account), when the values under the header begin with a code (CODE_FIRST) or end with
# one in brackets after a name (CODE_AFTER_NAME, as ledger_account reads it).
STANDS_IN = {"account_code": "account_name"}
CODE_FIRST = re.compile(r"\s*[\[(（【［]?\s*\d{4}")
CODE_AFTER_NAME = re.compile(r"[^0-9０-９]*[^\s0-9０-９]\s*[\[(（【［〔]\s*[0-9０-９]{4}[0-9０-９.．\-－]*\s*[\])）】］〕]\s*")


# Some systems export a voucher line's amount in one column with its side in another (金额 | 方向,
# 借 / 贷) instead of 借方 | 贷方. Then the debit field reads the amount column and the credit
# field the direction column, and typing splits the amount by the direction (_BY_DIRECTION). A
# ledger that also has 借方 and 贷方 is read by those (a 方向 beside them is the balance's, as in
# a 明细账).
SPLIT_BY = {"debit": "amount", "credit": "direction"}


def _split(found: dict[str, int]) -> bool:
    """Is the debit field read from an amount column, by its direction (SPLIT_BY)?"""
    return "amount" in found and found.get("debit") == found["amount"]


# A direction's spellings, lower case: _direction_sides looks for them under the header, and the
# macro ledger_side reads each line's by them (_WORD_SIDE), so the two cannot differ.
DEBIT_SIDE = ("借", "借方", "借方金额", "d", "dr", "dr.", "debit")
CREDIT_SIDE = ("贷", "贷方", "贷方金额", "c", "cr", "cr.", "credit")
DIRECTIONS = frozenset(DEBIT_SIDE + CREDIT_SIDE)


# A direction written as a number, as a database table holds it and an auditor's data collection
# pulls it (Kingdee's FDC: 1 for 借, 0 or -1 for 贷; other systems write 2 for 贷): 1 is taken
# for 借 and the one of 0, -1 or 2 the file holds for 贷. A column holding two of these, or
# mostly other values, is not a direction: the file is rejected saying so. The macro ledger_side
# reads them so for such a file (_numeric_side).
NUMERIC_DEBIT = "1"
NUMERIC_CREDIT = ("0", "-1", "2")


def _direction_sides(rows: list[list], column: int) -> tuple[str, ...] | None:
    """How the values in `column` of the rows read under the header give a line's side: () when
    most read as 借 or 贷; the numbers for 贷 when most are 1 or the one of NUMERIC_CREDIT there is
    (and no other of them: that one, or all of them when none is there yet); else None."""
    values = [_text(r[column]).lower() for r in rows if column < len(r) and _text(r[column])]
    if 2 * sum(1 for v in values if v in DIRECTIONS) >= len(values):
        return ()
    numbers = [re.sub(r"^\+|\.0*$", "", v) for v in values]
    credits = tuple(sorted({v for v in numbers if v in NUMERIC_CREDIT}))
    if len(credits) <= 1 and 2 * sum(1 for v in numbers if v == NUMERIC_DEBIT or v in credits) >= len(values):
        return credits or NUMERIC_CREDIT
    return None


def _stand_in_holds_codes(rows: list[list], column: int) -> bool:
    """Do most of the values in `column` of the rows read under the header begin with a code, or
    end with one in brackets after the name (a subtotal or note row may not)? With no values to
    look at, nothing speaks against it."""
    values = [_text(r[column]) for r in rows if column < len(r) and _text(r[column])]
    return 2 * sum(1 for v in values if CODE_FIRST.match(v) or CODE_AFTER_NAME.fullmatch(v)) >= len(values)


def _alias_lookup(presets: Presets, name: str) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for field, headings in presets.presets[name].items():
        for h in headings:
            lookup.setdefault(header_key(h), field)
    return lookup


def _text(cell) -> str:
    return "" if cell is None else str(cell).strip()


def _stacked_heading(upper: list, lower: list, lookup: dict[str, str]) -> list:
    """One heading per column of a header written on two rows, as many ledgers print it: 科目
    over 编码 | 名称, 金额 over 借方 | 贷方, 凭证号 spanning both rows. A column's heading is the
    lower row's where that names a field, else the upper's (carried right across the empty cells a
    merged heading leaves) joined to it where that does (科目 + 编码), else whichever row has one."""
    headings, parent = [], ""
    for j in range(max(len(upper), len(lower))):
        up = _text(upper[j]) if j < len(upper) else ""
        low = _text(lower[j]) if j < len(lower) else ""
        parent = up or parent
        if low and header_key(low) in lookup:
            headings.append(low)
        elif low and parent and header_key(parent + low) in lookup:
            headings.append(parent + low)
        else:
            headings.append(low or up or None)
    return headings


# --------------------------------------------------------------------------------------------
# Encodings

_BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def detect_encoding(path: Path) -> str:
    """utf-8-sig / utf-16 by BOM, else utf-16-le / utf-16-be when a 1 MB sample is plainly UTF-16
    without a BOM (text.utf16_without_bom, as notices are read: only a sample holding NUL bytes,
    which UTF-8 and GB18030 text never does), else utf-8 if the sample is valid UTF-8, else gbk /
    gb18030. InputError when the sample is none of them: naming the physical line of the first
    bad byte when the lines before it are text in one of them."""
    with open(path, "rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        # UTF-16's ASCII (delimiters, digits, line ends) is half NUL bytes; UTF-8 would read them
        # as NUL characters, and GBK some of the pairs as characters
        found = utf16_without_bom(sample, sample=True)
        if found is not None:
            return found[1]
    valid_to = {}  # encoding -> where its first undecodable byte is
    for enc in ("utf-8", "gbk", "gb18030"):
        try:
            codecs.getincrementaldecoder(enc)("strict").decode(sample, final=False)
            return enc
        except UnicodeDecodeError as exc:
            valid_to[enc] = exc.start
    # A file that reads as UTF-8 or GB18030 for whole lines of text and then does not is most
    # likely that encoding, damaged (or hand-edited in another): name the line. GBK is GB18030's
    # subset. Binary data (control characters) keeps the general message.
    enc = max(("utf-8", "gb18030"), key=lambda e: valid_to[e])
    text = sample[: valid_to[enc]].decode(enc)
    if "\n" in text and not _BINARY_CONTROLS.search(text):
        line = text.count("\n") + 1
        raise InputError(
            path,
            f"第{line}行（物理行）含有无法解码的字节：此前各行按 {enc} 可读，请检查文件是否损坏，"
            f"或用 --encoding 指定编码",
            f"physical line {line} has bytes that cannot be decoded; the lines before it read as "
            f"{enc}: check whether the file is damaged, or pass --encoding")
    raise InputError(path, "无法识别文件编码（不是 UTF-8、GBK 或 GB18030），请用 --encoding 指定",
                     "cannot detect the encoding (not UTF-8, GBK or GB18030); pass --encoding")


def _normalise_encoding(path: Path, encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise InputError(path, f"未知的编码 {encoding}", f"unknown encoding {encoding}") from None
    return {"utf_8": "utf-8", "utf-8": "utf-8", "utf_8_sig": "utf-8-sig", "gbk": "gbk",
            "gb2312": "gb18030", "gb18030": "gb18030"}.get(name, name)


# GB18030 (and GBK, its subset) never uses the byte 0x0A inside a character, so a file can be cut
# after any newline and each piece transcoded on its own.
ICONV_PIECE_BYTES = 32 << 20
ICONV_WORKERS = 2


def transcode_to_utf8(path: Path, encoding: str, target: Path) -> None:
    """Write path (in encoding) to target as UTF-8; InputError naming the line of a bad byte.

    GBK / GB18030 go through the system's iconv (glibc, on every Linux; RECON_ICONV=0 turns it
    off) in 32 MB pieces cut at newlines, two at a time, the kernel feeding each its piece: about
    three times as fast as Python's codec, and in little memory (iconv holds its whole input, so
    one call on a 2 GB file would take 2 GB). When iconv is missing or refuses a piece, Python's
    streaming codec does the whole file, and it is that codec which finds the bad byte and names
    its line.
    """
    iconv = _usable_iconv(encoding)
    if iconv and _transcode_iconv(iconv, path, target) == TRANSCODED:
        return
    _transcode_python(path, encoding, target)


# What _transcode_iconv did: target holds all the file; iconv refused a piece (the file has a bad
# byte, or iconv a quirk: Python's codec decides); stop() turned true first.
TRANSCODED, REFUSED, STOPPED = "transcoded", "refused", "stopped"


def _usable_iconv(encoding: str) -> str | None:
    if encoding not in ("gbk", "gb18030") or os.environ.get("RECON_ICONV", "1") == "0" \
            or not hasattr(os, "sendfile"):
        return None
    return shutil.which("iconv")


def _transcode_iconv(iconv: str, path: Path, target: Path, stop=None) -> str:
    """GB18030 -> UTF-8 piece by piece into target, in file order (see transcode_to_utf8).

    stop(), if given, is asked before each piece is appended; when it answers true the pieces not
    yet started are dropped and STOPPED is returned (target is then incomplete)."""
    def convert(k: int, start: int, end: int) -> Path | None:
        out = target.with_name(f"{target.name}.{k}")
        with open(path, "rb") as src, open(out, "wb") as dst:
            proc = subprocess.Popen([iconv, "-f", "GB18030", "-t", "UTF-8"], stdin=subprocess.PIPE,
                                    stdout=dst, stderr=subprocess.DEVNULL)
            try:
                while start < end:  # the kernel copies file -> pipe; Python never holds the bytes
                    sent = os.sendfile(proc.stdin.fileno(), src.fileno(), start, end - start)
                    if sent == 0:
                        break
                    start += sent
            except BrokenPipeError:  # iconv stopped at a bad byte
                pass
            finally:
                proc.stdin.close()
            ok = proc.wait() == 0 and start == end
        if not ok:
            out.unlink()
        return out if ok else None

    outcome = TRANSCODED
    with open(target, "wb") as dst, ThreadPoolExecutor(ICONV_WORKERS, "recon-iconv") as pool:
        pieces = [pool.submit(convert, k, a, b)
                  for k, (a, b) in enumerate(_pieces_at_newlines(path, ICONV_PIECE_BYTES))]
        try:
            for piece in pieces:
                if stop is not None and stop():
                    outcome = STOPPED
                    break
                out = piece.result()
                if out is None:
                    outcome = REFUSED
                    break
                _append(out, dst)
                out.unlink()
        finally:
            pool.shutdown(cancel_futures=True)  # the pieces already converting finish first
            for piece in pieces:
                if not piece.cancelled() and piece.exception() is None and piece.result() is not None:
                    piece.result().unlink(missing_ok=True)
    return outcome


def _append(part_path: Path, dst) -> None:
    """Append a file to an open file: in the kernel where it can, else through a buffer."""
    with open(part_path, "rb") as part:
        left = os.fstat(part.fileno()).st_size
        try:
            while left > 0:
                copied = os.copy_file_range(part.fileno(), dst.fileno(), left)
                if copied == 0:
                    break
                left -= copied
        except (AttributeError, OSError):  # not Linux, or not between these filesystems
            pass
        if left > 0:
            part.seek(os.fstat(part.fileno()).st_size - left)
            dst.seek(0, os.SEEK_END)
            shutil.copyfileobj(part, dst, 8 << 20)
            dst.flush()  # the next piece may go through the kernel again


def _pieces_at_newlines(path: Path, size: int) -> list[tuple[int, int]]:
    """(start, end) byte ranges of about `size` bytes covering the file, each cut after a newline."""
    total = path.stat().st_size
    ranges, start = [], 0
    with open(path, "rb") as fh:
        while total - start > size:
            fh.seek(start + size)
            cut = None
            while cut is None:
                at, block = fh.tell(), fh.read(1 << 16)
                if not block:
                    break
                newline = block.find(b"\n")
                if newline >= 0:
                    cut = at + newline + 1
            if cut is None or cut >= total:
                break
            ranges.append((start, cut))
            start = cut
    ranges.append((start, total))
    return ranges


def _transcode_python(path: Path, encoding: str, target: Path) -> None:
    """Stream path (in encoding) into target as UTF-8, 4 MB at a time; InputError on a bad byte."""
    # GB18030 decodes everything GBK / GB2312 does, so a file labelled gbk that uses a GB18030
    # character still loads.
    decoder = codecs.getincrementaldecoder("gb18030" if encoding == "gbk" else encoding)("strict")
    lines = 0
    first = True
    with open(path, "rb") as src, open(target, "w", encoding="utf-8", newline="") as dst:
        while True:
            chunk = src.read(CHUNK_BYTES)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                line = lines + chunk[: exc.start].count(b"\n") + 1
                raise InputError(
                    path,
                    f"第{line}行（物理行）含有 {encoding} 无法解码的字节，请确认编码或用 --encoding 指定",
                    f"physical line {line} has bytes that are not valid {encoding}; check the "
                    f"encoding or pass --encoding",
                ) from exc
            lines += chunk.count(b"\n")
            if text:
                dst.write(text.lstrip("\ufeff") if first else text)
                first = False
            if not chunk:
                break


# --------------------------------------------------------------------------------------------
# Readers: each fills the table _ledger_raw (row_no, one VARCHAR column per field)

def _raw_columns_sql() -> str:
    return ", ".join(f"{f} varchar" for f in FIELDS)


@contextmanager
def _naming_sheet(title: str, sheets: int, hidden: tuple[str, str] | None = None) -> Iterator[None]:
    """A sheet's InputError (its header) names the sheet, where the workbook has several, and
    says which hidden sheets were not read (`hidden`: _hidden_note), where it has such."""
    try:
        yield
    except InputError as exc:
        if sheets < 2 and hidden is None:
            raise
        zh, en = exc.reason_zh, exc.reason_en
        if sheets >= 2:
            zh, en = f"工作表 {title}：{zh}", f"sheet {title}: {en}"
        if hidden is not None:
            zh, en = f"{zh}；{hidden[0]}", f"{en}; {hidden[1]}"
        raise InputError(exc.path, zh, en, exc.row) from exc


def _hidden(ws) -> bool:
    """Is the sheet hidden (a draft, a stale copy, a lookup the workbook's formulas read)?"""
    return getattr(ws, "sheet_state", "visible") != "visible"


def _hidden_note(book) -> tuple[str, str] | None:
    """What the load says of the workbook's hidden sheets, which are not read (zh, en)."""
    titles = [ws.title for ws in book.worksheets if _hidden(ws)]
    if not titles:
        return None
    return (f"隐藏的工作表未读取：{'、'.join(titles)}（其中如有要对账的凭证，请取消隐藏后重新加载）",
            f"hidden sheet{'s' if len(titles) > 1 else ''} not read: {', '.join(titles)} (if one holds "
            f"vouchers to reconcile, unhide it and load the workbook again)")


def _new_raw_table(con) -> None:
    """An empty _ledger_raw, for a workbook's sheet."""
    con.execute(f"create or replace temp table _ledger_raw (row_no bigint, {_raw_columns_sql()})")


def _csv_header(path: Path, utf8_path: Path, presets: Presets, preset: str | None) -> tuple[ColumnMap, str]:
    with open(utf8_path, "rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    text = codecs.getincrementaldecoder("utf-8-sig")("replace").decode(sample, final=False)
    if len(sample) == SAMPLE_BYTES and "\n" in text:
        text = text[: text.rfind("\n") + 1]  # whole lines only
    first_error = None
    fallback = None
    csv.field_size_limit(max(csv.field_size_limit(), 4 * SAMPLE_BYTES))
    for delim in _CSV_DELIMITERS:
        rows = _sample_rows(text, delim)
        try:
            return match_header(path, rows, presets, preset), delim
        except InputError as exc:
            width = max((len(r) for r in rows), default=0)
            if fallback is None or width > fallback[0]:
                fallback = (width, exc)
            first_error = first_error or exc
    raise (fallback[1] if fallback and fallback[0] > 1 else first_error)


def _sample_rows(text: str, delim: str) -> list[list[str]]:
    """The first rows of a text sample; a row cut off by the end of the sample is dropped."""
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text), delimiter=delim, quotechar='"')
    try:
        for r in reader:
            rows.append(r)
            if len(rows) >= HEADER_SCAN_ROWS:
                break
    except csv.Error:
        pass
    return rows


def _take(it: Iterator, n: int) -> Iterator:
    """The first n items of it, leaving the rest in it: the item after them is not drawn (a
    sheet's rows are read on from where the header scan stopped)."""
    return itertools.islice(it, n)


def _read_csv(path: Path, encoding: str, presets: Presets, preset: str | None,
              workdir: Path, transcoded: str | None = None) -> tuple[ColumnMap, str, dict]:
    """The header's column map and the SELECT that reads the fields of every row, in file order.
    transcoded: what iconv made of the file beside its hash (see load_ledgers), if it ran."""
    if encoding in ("utf-8", "utf-8-sig"):
        utf8_path = path
    else:
        utf8_path = workdir / UTF8_COPY
        if transcoded == REFUSED:  # Python's codec decides, and names the line of a bad byte
            _transcode_python(path, encoding, utf8_path)
        elif transcoded != TRANSCODED:
            transcode_to_utf8(path, encoding, utf8_path)
    with open(utf8_path, "rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    # \r alone (no header is found without this); lines ending in \r\n and \n are read as they
    # are, unless DuckDB refuses them (_load_in_transaction): a cell of several lines, as Excel
    # writes it, holds \n in a file of \r\n
    mixed = b"\r" in sample and b"\n" not in sample
    if mixed:
        utf8_path = _lines_ending_in_lf(utf8_path, workdir) or utf8_path
    cmap, delim = _csv_header(path, utf8_path, presets, preset)
    if mixed:
        cmap = _noting(cmap, NEWLINES_NOTE)
    # The column spec and the positional names c0..cN are ours; the path and dialect are parameters.
    # No row number here: row_number() over () would read the file on one thread. The rows are
    # written in file order instead (preserve_insertion_order is on during a load) and numbered by
    # their position in the scratch Parquet file.
    spec = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(cmap.width)) + "}"
    picks = ", ".join(
        (f"c{cmap.columns[f]}" if f in cmap.columns else "cast(null as varchar)") + f" as {f}"
        for f in FIELDS
    )
    if "voucher_word" in cmap.columns:
        picks = picks.replace(f"c{cmap.columns['voucher_no']} as voucher_no",
                              _voucher_sql(f"c{cmap.columns['voucher_word']}",
                                           f"c{cmap.columns['voucher_no']}") + " as voucher_no", 1)
    source = f"""
        select {picks}
        from read_csv($path, header = true, skip = $skip, auto_detect = false, columns = {spec},
                      delim = $delim, quote = '"', escape = '"', strict_mode = true,
                      null_padding = false, max_line_size = $max_line, buffer_size = $buffer)"""
    return cmap, source, {"path": str(utf8_path), "skip": cmap.header_index, "delim": delim,
                          "max_line": CSV_MAX_LINE_BYTES, "buffer": 2 * CSV_MAX_LINE_BYTES}


# Lines ending in more than one way (\r\n and \n: a file edited by hand, or exports of two systems
# put together), or in \r alone (Excel for Mac's "CSV (Macintosh)"): DuckDB's reader refuses the
# first ("the CSV Parser state machine reached an invalid state"), and Python's csv module finds
# no header in the second. Such a file is read from a copy whose lines all end in \n.
LF_COPY = "ledger-lf.csv"
NEWLINES_NOTE = ("换行符不统一（Windows 与 Unix 换行混用）或为旧式 Mac 回车，已统一后读取 / line ends "
                 "mixed (Windows and Unix) or old Mac carriage returns: each read as a line end")


def _lines_ending_in_lf(src: Path, workdir: Path) -> Path | None:
    """A copy of src in workdir whose every line end (\r\n, \r) is \n, when src mixes them; else
    None. A transcoded copy in workdir is replaced by it."""
    target = workdir / LF_COPY
    crlf = bare_lf = bare_cr = False
    carry = b""
    with open(src, "rb") as fi, open(target, "wb") as fo:
        while True:
            data = fi.read(CHUNK_BYTES)
            buf = carry + data
            carry = b"\r" if data and buf.endswith(b"\r") else b""  # its \n may begin the next piece
            buf = buf[: len(buf) - len(carry)]
            pairs = buf.count(b"\r\n")
            crlf |= pairs > 0
            bare_lf |= buf.count(b"\n") > pairs
            bare_cr |= buf.count(b"\r") > pairs
            fo.write(buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
            if not data:
                break
    if not (bare_cr or (crlf and bare_lf)):
        target.unlink()
        return None
    if src == workdir / UTF8_COPY:
        src.unlink()
    return target


# A line holding only blanks (spaces, tabs, an ideographic space: a line "emptied" by hand in an
# editor, or an export's spacer row) is an empty row to a user, who sees nothing in it in Excel,
# but DuckDB's reader refuses the whole file for it (one column where the header has many). Such a
# file is read again from a copy in which those lines are empty; the empty lines are then passed
# over and the rows under them keep their numbers (_blank_line_shift). A cell of several lines
# one of which holds only blanks loses those blanks in the copy.
BLANKED_COPY = "ledger-blanked.csv"
_BLANKS_ONLY = re.compile(rb"(?m)^(?:[ \t\x0b\x0c]|\xe3\x80\x80|\xc2\xa0)+(?=\r?$)")


def _blank_lines_emptied(src: Path, workdir: Path) -> tuple[Path, str] | None:
    """A copy of src (UTF-8) in workdir whose lines holding only blanks are empty, with the load's
    note of them; None when it has none. A copy of ours in workdir is replaced by it."""
    target = workdir / BLANKED_COPY
    emptied, first, newlines = 0, 0, 0
    carry = b""
    with open(src, "rb") as fi, open(target, "wb") as fo:
        while True:
            data = fi.read(CHUNK_BYTES)
            buf = carry + data
            cut = buf.rfind(b"\n") + 1 if data else len(buf)  # whole lines; the rest goes on
            if data and cut == 0 and len(buf) > 2 * CSV_MAX_LINE_BYTES:
                cut = len(buf)  # a line longer than any the reader takes: not one of blanks
            piece, carry = buf[:cut], buf[cut:]
            if not emptied and (m := _BLANKS_ONLY.search(piece)):
                first = newlines + piece.count(b"\n", 0, m.start()) + 1
            piece, n = _BLANKS_ONLY.subn(b"", piece)
            emptied += n
            newlines += piece.count(b"\n")
            fo.write(piece)
            if not data:
                break
    if not emptied:
        target.unlink()
        return None
    if src.parent == workdir:
        src.unlink()
    note = (f"文件第{first}行等 {emptied} 行只有空白字符（空格、制表符），按空行读取 / {emptied} line(s) of the "
            f"file hold only blanks (spaces, tabs; line {first} the first): read as empty lines")
    return target, note


# Lines at the end of a CSV that are not rows of the ledger: a print-style export signs off under
# its rows (制表人：张三   审核人：李四, 打印日期：…) in one or two cells, not in the header's columns,
# and DuckDB's reader refuses the whole file for it. Such lines, text only (no cell an amount, a
# code or a date) and of another width than the header, are cut off before reading and the load
# says so; a row cut short whose cells hold data still rejects the file. Read from the end, a
# line with an odd number of quotes ends a cell of several lines: the footer is below it.
FOOTER_TAIL_BYTES = 64 << 10
FOOTER_MAX_LINES = 20
BODY_COPY = "ledger-body.csv"  # a CSV without its footer lines, or with its header on one line
_DATA_CELL = re.compile(r"[-+(（]?[¥￥]?\d[\d,]*(\.\d+)?[)）]?|\d{4}\s*[-/.年]\s*\d{1,2}([-/.月]\s*\d{1,2}日?)?")


@dataclass(frozen=True)
class _Footer:
    offset: int        # where the footer (with any empty lines above it) begins
    lines: int         # its lines that hold something
    newlines: int      # newlines from offset to the end
    first: str         # its first line, for the note


def _footer(path: str, delim: str, width: int) -> _Footer | None:
    """The text-only lines of another width than the header at the end of the file (with the
    empty lines among and above them), if any."""
    size = os.path.getsize(path)
    start = max(0, size - FOOTER_TAIL_BYTES)
    with open(path, "rb") as fh:
        fh.seek(start)
        tail = fh.read()
    pieces = tail.split(b"\n")
    starts = list(itertools.accumulate((len(p) + 1 for p in pieces[:-1]), initial=start))
    cut, found, first = None, 0, ""
    for i in range(len(pieces) - 1, 0 if start > 0 else -1, -1):  # the first piece may be cut
        text = pieces[i].decode("utf-8", "replace").strip("\r\ufeff")
        if text.strip():
            cells = next(csv.reader([text], delimiter=delim), [])
            filled = [c.strip() for c in cells if c.strip()]
            if text.count('"') % 2 or len(cells) == width or found >= FOOTER_MAX_LINES \
                    or any(_DATA_CELL.fullmatch(c) for c in filled):
                if not found:
                    return None
                cut = starts[i + 1]
                break
            found, first = found + 1, text.strip()
    if not found or cut is None:
        return None
    return _Footer(cut, found, tail.count(b"\n", cut - start), first)


def _without_footer(path: str, footer: _Footer, workdir: Path) -> str:
    """The file without its footer: a copy of ours cut short, or the user's copied up to it."""
    if Path(path).parent == workdir:
        os.truncate(path, footer.offset)
        return path
    target = workdir / BODY_COPY
    with open(path, "rb") as src, open(target, "wb") as dst:
        left = footer.offset
        while left > 0:
            block = src.read(min(CHUNK_BYTES, left))
            if not block:
                break
            dst.write(block)
            left -= len(block)
    return str(target)


# A heading of several lines in a cell ("借方\n金额", as Excel writes a wrapped heading: \n in a
# file of \r\n). DuckDB 2.0's reader then returns no row at all, and says nothing (it takes the
# first line break it meets, the one inside the quotes, for the file's). The lines of such cells
# in the header and the rows above it are joined with spaces, in place in a copy of ours (the same
# number of bytes), or in a copy of the user's file.
def _one_line_header(path: str, records: int, workdir: Path) -> tuple[str, int]:
    """The file to read, with the line breaks inside the cells of its first `records` rows made
    spaces, and how many \n were so replaced (0: path itself)."""
    with open(path, "rb") as fh:
        head = bytearray(fh.read(SAMPLE_BYTES))
    quoted, done, replaced, changed = False, 0, 0, False
    for i, byte in enumerate(head):
        if byte == 0x22:  # "
            quoted = not quoted  # an escaped "" turns it twice
        elif byte in (0x0A, 0x0D) and quoted:
            replaced += byte == 0x0A
            changed = True
            head[i] = 0x20
        elif byte == 0x0A:
            done += 1
            if done == records:
                head = head[: i + 1]
                break
    else:
        return path, 0  # the header does not end within the sample: leave it to the reader
    if not changed:
        return path, 0
    if Path(path).parent == workdir:
        with open(path, "r+b") as fh:
            fh.write(head)
        return path, replaced
    target = workdir / BODY_COPY
    with open(path, "rb") as src, open(target, "wb") as dst:
        src.seek(len(head))
        dst.write(head)
        shutil.copyfileobj(src, dst, CHUNK_BYTES)
    return str(target), replaced


def _refuse_unread_lines(path: Path, text_path: str, delim: str, above: int) -> None:
    """InputError when the reader read no row though rows under the header hold something (as
    Python's csv module reads them): a file it misread (as it did a wrapped heading,
    _one_line_header) must not load empty."""
    try:
        held = sum(1 for record in _records_under_header(text_path, delim, above)
                   if any(c.strip() for c in record))
    except csv.Error:
        held = 1
    if held > 0:
        raise InputError(
            path,
            f"表头下有 {held} 行有内容，但读出 0 行：文件的格式未能识别（如引号、换行），请用 Excel 另存为 CSV 后重新加载",
            f"{held} row(s) under the header hold something, but none was read: the file's layout "
            f"was not understood (quotes, line ends); save it again as CSV from Excel and reload")


def _noting(cmap: ColumnMap, note: str) -> ColumnMap:
    return dataclasses.replace(cmap, note=note if not cmap.note else f"{cmap.note}; {note}")  # as notes join


def _voucher_sql(word: str, number: str) -> str:
    """The voucher number, where the export prints 凭证字 apart from 凭证号 (收 / 付 / 转 vouchers
    are numbered apart, so 收 1 and 付 1 are two vouchers): 收-1. A number that already begins with
    its word, or has none, stays as written; a blank number stays blank (quarantined)."""
    w, n = f"ledger_trim({word})", f"ledger_trim({number})"
    return (f"case when {w} is null or {n} is null or starts_with({n}, {w}) then {number} "
            f"else {w} || '-' || {n} end")


def _voucher_text(word: str | None, number: str | None) -> str | None:
    """_voucher_sql for a workbook's cells, as _cell_text gives them."""
    w, n = (word or "").strip(), (number or "").strip()
    return number if not w or not n or n.startswith(w) else f"{w}-{n}"


def _cell_text(value, field: str) -> str | None:
    """An XLSX cell as the text staging parses: dates ISO, numbers exact, amounts to the cent."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        exact = Decimal(repr(value))
        if field in AMOUNT_FIELDS:
            cents = exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            if abs(exact - cents) < Decimal("0.000001"):  # binary float noise, not a third decimal
                return str(cents)
        return format(exact, "f")
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


# 红字 (red ink): a hand-kept or re-typed workbook writes a reversal as a positive amount shown in
# red, as Chinese bookkeeping has always written it, where the accounting system would export a
# negative one. Read as positive, a reversal adds to the spending it takes back. So, in a workbook
# (XLSX, and XLS read with its formatting: _xls_red_ink_xfs), a positive amount in a debit or
# credit column (or the amount column read by its direction) is read as negative when its cell
# shows it red: an explicitly red font (FF0000 or close: _red_rgb; a palette or theme colour only
# when it is such a red), or a number format that shows positive numbers red ([Red]#,##0.00). A
# negative number shown red by its format (the usual #,##0.00;[Red]-#,##0.00) is negative already
# and stays so; red shown by conditional formatting is not read. The outcome says how many amounts
# were read so, and on which rows, so that they can be checked. The cells' styles are looked at
# only in a workbook that has a red style at all (_red_ink_styles), and only the amount columns'
# values change.
# A column whose every amount is shown red (RED_COLUMN_MIN_AMOUNTS of them at least: a template
# styles the whole 贷方 column red, as a look) holds no red ink: its amounts are read as written,
# and the outcome says so. A column with some red amounts among black ones is read as above.
class _RedInk(float):
    """A positive number in a cell shown red (an amount there is a reversal)."""


class _RedInkText(str):
    """A positive amount written as text in a cell shown red."""


class _RedShown(float):
    """A number not above zero in a cell shown red: nothing to negate, but an amount shown red
    (a column shown red whole is read as written)."""


class _RedShownText(str):
    """Text holding a digit, not a positive amount, in a cell shown red (as _RedShown)."""


_RED_INK = (_RedInk, _RedInkText)
_RED_SHOWN = (_RedShown, _RedShownText)  # red, but not red ink
_POSITIVE_TEXT = re.compile(r"\s*[+＋]?\s*[¥￥]?\s*[0-9０-９]")
_NONZERO_DIGIT = re.compile(r"[1-9１-９]")
_ANY_DIGIT = re.compile(r"[0-9０-９]")
RED_INK_ROWS_NAMED = 5
RED_COLUMN_MIN_AMOUNTS = 3  # fewer amounts, all red, may well be reversals only: read as red ink


def _red_ink(value):
    """The value of a cell shown red: marked red ink when it is a positive number (or such text),
    else marked shown red when it is a number or text holding a digit."""
    kind = type(value)
    if kind is int or kind is float:
        return _RedInk(value) if value > 0 else _RedShown(value)
    if kind is str and _ANY_DIGIT.search(value):
        if _POSITIVE_TEXT.match(value) and _NONZERO_DIGIT.search(value):
            return _RedInkText(value)
        return _RedShownText(value)
    return value


@dataclass
class _RedColumn:
    """What one amount column of a sheet with red styles shows (see _insert_rows)."""

    field: str
    pos: int
    amounts: int = 0      # its amounts: numbers, or text holding a digit
    negated: int = 0      # ... positive and shown red, read as negative (红字)
    rows: list = dataclass_field(default_factory=list)  # the sheet's rows of the first few of those
    # the data rows of every negated amount while each amount so far is shown red; None after the
    # first that is not (the column then is not red whole)
    whole: list | None = dataclass_field(default_factory=list)

    def read(self, values: list, row_no: int, sheet_row: int) -> None:
        """Count the row's amount, and negate it when it is red ink."""
        v = values[self.pos]
        kind = type(v)
        if kind is _RedInk or kind is _RedInkText:
            values[self.pos] = _negated(v)
            self.amounts += 1
            self.negated += 1
            if len(self.rows) < RED_INK_ROWS_NAMED:
                self.rows.append(sheet_row)
            if self.whole is not None:
                self.whole.append(row_no)
        elif kind is _RedShown or kind is _RedShownText:
            self.amounts += 1
        elif (kind is str and _ANY_DIGIT.search(v)) or kind in (int, float, Decimal):
            self.amounts += 1
            self.whole = None

    def red_whole(self) -> bool:
        """Every amount of the column is shown red, and some was read as red ink."""
        return self.whole is not None and self.negated > 0 and self.amounts >= RED_COLUMN_MIN_AMOUNTS


def _negated(value) -> float | str:
    """A red-ink amount (_red_ink) as the negative amount it stands for."""
    if type(value) is _RedInk:
        return -float(value)
    return "-" + re.sub(r"^\s*[+＋]", "", value)


def _cell_values(row, red: frozenset) -> tuple:
    """A row of openpyxl cells as values; those of the styles in `red` marked by _red_ink."""
    if not red:
        return tuple(c.value for c in row)
    return tuple(_red_ink(c.value) if getattr(c, "_style_id", 0) in red else c.value for c in row)


def _red_rgb(rgb) -> bool:
    """Is an RGB or ARGB colour (hex) red: FF0000 or close (Excel's 深红 C00000 is; its 橙色
    FFC000, the 2007 theme's soft red C0504D and a dark 800000 are not)?"""
    if not isinstance(rgb, str) or not re.fullmatch(r"(?:[0-9A-Fa-f]{2})?[0-9A-Fa-f]{6}", rgb):
        return False
    r, g, b = (int(rgb[-6:][i:i + 2], 16) for i in (0, 2, 4))
    return r >= 0xC0 and g <= 0x40 and b <= 0x40


# a theme colour's number, as a font gives it, names these of the theme's colour scheme
_THEME_COLOURS = ("lt1", "dk1", "lt2", "dk2", "accent1", "accent2", "accent3", "accent4", "accent5",
                  "accent6", "hlink", "folHlink")
_DRAWINGML = "{http://schemas.openxmlformats.org/drawingml/2006/main}"


def _theme_rgbs(theme) -> list:
    """The workbook theme's colours (hex RGB, or None), in the order fonts number them."""
    import xml.etree.ElementTree as ET

    try:
        scheme = ET.fromstring(theme).find(f".//{_DRAWINGML}clrScheme") if theme else None
    except ET.ParseError:
        return []
    if scheme is None:
        return []
    rgbs = []
    for name in _THEME_COLOURS:
        colour = scheme.find(_DRAWINGML + name)
        first = colour[0] if colour is not None and len(colour) else None
        rgbs.append(None if first is None else first.get("val") if first.tag == _DRAWINGML + "srgbClr"
                    else first.get("lastClr"))
    return rgbs


def _tinted(rgb: str, tint: float) -> str:
    """A theme colour lightened (tint > 0) or darkened (tint < 0) as Excel does, in HLS."""
    import colorsys

    if not tint:
        return rgb
    h, lum, sat = colorsys.rgb_to_hls(*(int(rgb[-6:][i:i + 2], 16) / 255 for i in (0, 2, 4)))
    lum = lum * (1 + tint) if tint < 0 else lum * (1 - tint) + tint
    return "".join(f"{round(c * 255):02X}" for c in colorsys.hls_to_rgb(h, lum, sat))


def _red_colour(colour, palette, theme: list) -> bool:
    """Is a font's colour (openpyxl's Color: rgb, indexed or theme) red, by _red_rgb?"""
    kind = getattr(colour, "type", None)
    if kind == "rgb":
        return _red_rgb(colour.rgb)
    if kind == "indexed":
        return 0 <= colour.indexed < len(palette) and _red_rgb(palette[colour.indexed])
    if kind == "theme":
        rgb = theme[colour.theme] if 0 <= colour.theme < len(theme) else None
        return _red_rgb(rgb) and _red_rgb(_tinted(rgb, colour.tint or 0))
    return False


_FORMAT_TOKEN = re.compile(r'"[^"]*"?|\\.|\[[^\]]*\]?|;|[^"\\\[;]+')


def _red_when_positive(number_format: str | None) -> bool:
    """Does a number format show positive numbers red: [Red] (WPS: [红色]) in its first section,
    the one for positive numbers (and for all when it is the only one)? Not when a condition
    ([<0], [>=100]) decides which section is which."""
    if not number_format or "[" not in number_format:
        return False
    first, red = True, False
    for token in _FORMAT_TOKEN.findall(number_format):
        if token == ";":
            first = False
        elif token.startswith("["):
            inner = token[1:].rstrip("]").strip().lower()
            if inner[:1] in ("<", ">", "="):
                return False
            red = red or first and inner in ("red", "红色")
    return red


def _red_ink_styles(wb) -> frozenset:
    """The cell styles (openpyxl's style ids) of a workbook that show a positive number red: a red
    font, or a number format red for positive numbers. Empty for most workbooks, which then are
    read as before, without looking at a cell's style."""
    from openpyxl.styles.colors import COLOR_INDEX
    from openpyxl.styles.numbers import BUILTIN_FORMATS, BUILTIN_FORMATS_MAX_SIZE

    styles, fonts = getattr(wb, "_cell_styles", None), getattr(wb, "_fonts", None)
    if not styles or not fonts:
        return frozenset()
    palette = getattr(wb, "_colors", None) or COLOR_INDEX
    theme = _theme_rgbs(getattr(wb, "loaded_theme", None))
    red_fonts = {i for i, font in enumerate(fonts) if _red_colour(getattr(font, "color", None), palette, theme)}
    formats = getattr(wb, "_number_formats", ())

    def number_format(i: int) -> str | None:
        if i < BUILTIN_FORMATS_MAX_SIZE:
            return BUILTIN_FORMATS.get(i)
        return formats[i - BUILTIN_FORMATS_MAX_SIZE] if i - BUILTIN_FORMATS_MAX_SIZE < len(formats) else None

    return frozenset(i for i, style in enumerate(styles)
                     if style.fontId in red_fonts or _red_when_positive(number_format(style.numFmtId)))


def _red_ink_note(cells: int, rows: list[int], more_rows: bool) -> str:
    named = "、".join(map(str, rows)) + ("…" if more_rows else "")
    return (f"红字金额：{cells:,} 个正数金额以红色显示（红色字体或数字格式），按红字冲销读作负数（工作表第{named}行），"
            f"请核对 / red ink: {cells:,} positive amount(s) shown in red (font or number format) read "
            f"as negative, as reversals (sheet row {named.replace('、', ', ')}): please check them")


def _red_column_note(heading: str, amounts: int) -> str:
    return (f"整列红色：“{heading}”列的全部 {amounts:,} 个金额都以红色显示，是表格的样式而不是红字，按所写读取，"
            f"未读作负数 / a column shown red whole: all {amounts:,} amounts of {heading!r} are shown in "
            f"red, the workbook's look rather than red ink, and are read as written, not as negative")


def _red_ink_read(con, cmap: ColumnMap, columns: list[_RedColumn]) -> ColumnMap:
    """After a sheet's rows are in _ledger_raw: a column shown red whole is read as written (its
    amounts negated as they streamed in get their sign back), and the outcome says what was read
    as red ink and what was not."""
    import pyarrow as pa

    inked = []
    for column in columns:
        if not column.red_whole():
            inked.append(column)
            continue
        # the negated text is "-" and the amount as written (_negated): take the sign off again
        con.register("_red_rows", pa.table({"row_no": pa.array(column.whole, pa.int64())}))
        try:
            con.execute(f"update _ledger_raw set {column.field} = substr({column.field}, 2) "
                        f"where row_no in (select row_no from _red_rows)")
        finally:
            con.unregister("_red_rows")
        cmap = _noting(cmap, _red_column_note(cmap.headings[column.field], column.amounts))
    cells = sum(c.negated for c in inked)
    if cells:
        # the first rows of each column hold the first rows of all, and more exist when any
        # column has more than it names or the columns name more between them
        rows = sorted({r for c in inked for r in c.rows})
        more = len(rows) > RED_INK_ROWS_NAMED or any(c.negated > len(c.rows) for c in inked)
        cmap = _noting(cmap, _red_ink_note(cells, rows[:RED_INK_ROWS_NAMED], more))
    return cmap


def _check_xlsx_sizes(path: Path) -> None:
    """Refuse a workbook whose parts would inflate beyond the limits (zip bombs) before reading."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(path, f"不是有效的 XLSX 文件（{exc}）", f"not a valid XLSX file ({exc})") from exc
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > XLSX_MAX_PART_BYTES or (
                info.file_size > XLSX_RATIO_FROM_BYTES and ratio > XLSX_MAX_RATIO):
            mb = info.file_size / (1 << 20)
            raise InputError(
                path,
                f"工作簿部件 {info.filename} 解压后 {mb:,.0f} MB（压缩比 {ratio:,.0f}:1），超过限制，"
                f"拒绝读取；请导出为 CSV 或设置 RECON_XLSX_MAX_BYTES",
                f"workbook part {info.filename} inflates to {mb:,.0f} MB (ratio {ratio:,.0f}:1), beyond "
                f"the limits; export as CSV or raise RECON_XLSX_MAX_BYTES",
            )


def _read_xlsx(con, path: Path, presets: Presets, preset: str | None, each) -> None:
    """Stream each ledger sheet in turn into the temporary table _ledger_raw, and call
    each(column map, the SELECT over it, its parameters, the sheet's title) after each (the
    title None when the workbook holds one ledger sheet)."""
    from openpyxl.utils.datetime import CALENDAR_MAC_1904

    _check_xlsx_sizes(path)
    try:
        wb = _open_read_only(path, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise InputError(path, f"XLSX 文件无法打开：{exc}", f"the XLSX file cannot be opened: {exc}") from exc
    formulas_wb = None
    try:
        if not wb.worksheets:
            raise InputError(path, "工作簿没有工作表", "the workbook has no sheet")
        sheets = _ledger_sheets(path, wb, presets, preset)
        hidden = _hidden_note(wb)
        date1904 = getattr(wb, "epoch", None) == CALENDAR_MAC_1904
        red = _red_ink_styles(wb)
        for ws in sheets:
            # with red styles, the cells (and their styles) are read: a few per cent slower
            rows = ((_cell_values(r, red) for r in ws.iter_rows(values_only=False)) if red
                    else ws.iter_rows(values_only=True))
            has_formulas, merges = _scan_sheet_xml(wb, ws)
            if has_formulas:
                # a formula's value is what Excel last computed; a file written by a program and
                # never opened in Excel has none, and the formula's text stands in for it
                # (quarantined); one computed to an empty string is a blank cell
                formulas_wb = formulas_wb or _open_read_only(path, data_only=False)
                rows = _with_uncomputed_formulas(ws.iter_rows(values_only=False),
                                                 formulas_wb[ws.title].iter_rows(values_only=True), red)
            _new_raw_table(con)
            with _naming_sheet(ws.title, len(sheets), hidden):
                cmap = _insert_rows(con, path, rows, presets, preset, merges, red_ink=bool(red))
            if hidden is not None and ws is sheets[0]:
                cmap = _noting(cmap, " / ".join(hidden))
            if date1904:
                cmap = _in_1904_system(cmap)
            each(cmap, "select * from _ledger_raw", {}, ws.title if len(sheets) > 1 else None)
    except _DAMAGED_XLSX as exc:  # found only when the rows get there: the sheet is read as it streams
        raise _damaged(path, exc) from exc
    finally:
        wb.close()
        if formulas_wb is not None:
            formulas_wb.close()


# What a damaged workbook raises while its sheet is read: XML cut short or malformed (expat's and
# lxml's errors are SyntaxErrors), a zip entry that fails its CRC or stops short.
_DAMAGED_XLSX = (SyntaxError, zipfile.BadZipFile, zlib.error, EOFError)


def _damaged(path: Path, exc: BaseException) -> InputError:
    return InputError(path, f"工作簿已损坏，读取中途出错（{type(exc).__name__}: {exc}）；请重新导出或在 Excel / "
                            f"WPS 中打开后另存",
                      f"the workbook is damaged: reading stopped ({type(exc).__name__}: {exc}); export "
                      f"it again, or open it in Excel or WPS and save it")


def _open_read_only(path: Path, data_only: bool):
    """openpyxl's read-only workbook, reading every row and column each sheet holds, not the range
    its <dimension> states: openpyxl's read-only mode stops at that range, and programs that write
    workbooks often state it wrong (A1, or a template's range): the rows beyond it were dropped
    unseen, the columns beyond it made the header incomplete. openpyxl looks for that element as
    it opens each sheet, and parses a sheet that has none (some programs leave it out, openpyxl's
    own write-only mode among them) whole for it, before it is read: 16 s of a 44 s load of
    150,000 rows. Since the range is not used, that look is skipped while the workbook opens (the
    loads run one at a time, and nothing else in the process reads workbooks meanwhile)."""
    import openpyxl
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    size_look = ReadOnlyWorksheet.__dict__.get("_get_size")
    if size_look is not None:
        ReadOnlyWorksheet._get_size = lambda self: None
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=data_only)
    finally:
        if size_look is not None:
            ReadOnlyWorksheet._get_size = size_look
    for ws in wb.worksheets:
        ws.reset_dimensions()  # where the look ran all the same (another openpyxl version)
    return wb


def _read_xls(con, path: Path, presets: Presets, preset: str | None, each) -> None:
    """An Excel 97-2003 workbook, as many accounting systems still export: each ledger sheet
    into _ledger_raw in turn, as for XLSX. xlrd reads a sheet whole, and the format holds at most
    65,536 rows a sheet, so memory stays small. A formula counts with the value Excel saved with
    it."""
    import xlrd

    try:
        try:  # formatting_info for the merged cells: 0.15 s more on a sheet of 65,000 rows
            book = xlrd.open_workbook(str(path), on_demand=True, formatting_info=True)
        except Exception:  # xlrd reads less of a file without it: merged cells are then unknown
            book = xlrd.open_workbook(str(path), on_demand=True)
    except Exception as exc:  # xlrd raises many types for a damaged file
        if "encrypted" in str(exc).lower() or _holds_encryption_info(path):
            raise InputError(path, "工作簿设有密码（已加密），无法读取；请去掉密码后重新导出或另存",
                             "the workbook is password-protected (encrypted); save it without "
                             "a password") from exc
        raise InputError(path, f"Excel 97-2003 工作簿无法打开：{exc}；"
                               f"可在 Excel 或 WPS 中另存为 .xlsx 后重试",
                         f"the Excel 97-2003 workbook cannot be opened: {exc}; save it as .xlsx in "
                         f"Excel or WPS and try again") from exc
    try:
        _read_sheets(con, path, _XlsBook(book, path), presets, preset, each,
                     date1904=getattr(book, "datemode", 0) == 1)
    finally:
        book.release_resources()


def _read_sheets(con, path: Path, book, presets: Presets, preset: str | None, each,
                 date1904: bool = False) -> None:
    """Each ledger sheet of a workbook read whole (book.worksheets: each with title, iter_rows
    and vertical_merges) into _ledger_raw in turn, as for XLSX (date1904: the workbook's serials
    count from 1904-01-01). A book whose red_ink is true gives values marked by _red_ink."""
    if not book.worksheets:
        raise InputError(path, "工作簿没有工作表", "the workbook has no sheet")
    chosen = _ledger_sheets(path, book, presets, preset)
    hidden = _hidden_note(book)
    red_ink = getattr(book, "red_ink", False)
    for ws in chosen:
        _new_raw_table(con)
        with _naming_sheet(ws.title, len(chosen), hidden):
            cmap = _insert_rows(con, path, ws.iter_rows(values_only=True), presets, preset,
                                ws.vertical_merges(), red_ink=red_ink)
        if hidden is not None and ws is chosen[0]:
            cmap = _noting(cmap, " / ".join(hidden))
        if date1904:
            cmap = _in_1904_system(cmap)
        each(cmap, "select * from _ledger_raw", {}, ws.title if len(chosen) > 1 else None)


# A web system's "export to Excel" is often a web page holding a table, named .xls (Excel opens
# it). Its rows are read as a sheet's: <td> / <th> cells, colspan as merged cells across (the
# cells to the right empty), rowspan as merged cells down (_merged_down: a voucher number merged
# over an entry's lines belongs to each; an amount counts once). The page is read whole: beyond
# HTML_MAX_BYTES the message asks for another format.
HTML_MAX_BYTES = 256 << 20
EXCEL_MAX_ROWS, EXCEL_MAX_COLUMNS = 1_048_576, 16_384  # bounds on spans, merges and ss:Index


def _read_html(con, path: Path, presets: Presets, preset: str | None, each) -> None:
    _refuse_beyond_read_whole_limit(path, "网页（HTML）格式的导出", "the web page (HTML) export")
    text = _html_text(path, path.read_bytes())
    table = _HtmlTable()
    table.feed(text)
    table.close()
    if not table.rows:
        raise InputError(path, "网页（HTML）格式的导出中没有表格", "the web page (HTML) export holds no table")
    _new_raw_table(con)
    try:
        cmap = _insert_rows(con, path, iter(table.rows), presets, preset, table.merges)
    except InputError as exc:
        raise InputError(exc.path, f"网页（HTML）格式的导出：{exc.reason_zh}",
                         f"web page (HTML) export: {exc.reason_en}", exc.row) from exc
    each(cmap, "select * from _ledger_raw", {}, None)


def _refuse_beyond_read_whole_limit(path: Path, what_zh: str, what_en: str) -> None:
    """A page or XML spreadsheet is read whole: beyond HTML_MAX_BYTES, ask for another format."""
    size = path.stat().st_size
    if size > HTML_MAX_BYTES:
        raise InputError(path, f"{what_zh}过大（{size >> 20} MB），请导出为 CSV 或 .xlsx",
                         f"{what_en} is too large ({size >> 20} MB); export CSV or .xlsx instead")


def _html_text(path: Path, raw: bytes) -> str:
    """The page's text: by its BOM, else by the charset it declares, else UTF-8, else GB18030."""
    declared = re.search(rb"charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", raw[:HTML_SNIFF_BYTES])
    if declared and not raw.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            name = codecs.lookup(declared.group(1).decode("ascii")).name
            return raw.decode("gb18030" if name in ("gbk", "gb2312") else name)
        except (LookupError, UnicodeDecodeError):
            pass  # a charset that does not read it: as if none were declared
    decoded = decode_text(raw)
    if decoded is None:
        raise InputError(path, "网页（HTML）格式的导出无法识别编码（不是 UTF-8 或 GB18030）",
                         "the web page (HTML) export's encoding is not UTF-8 or GB18030")
    return decoded[0]


class _HtmlTable(HTMLParser):
    """The rows of every table in a page, in order (a table's rows after another's), with the
    vertical merges its rowspans make, as (first row, last row, column), 0-based."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple] = []
        self.merges: list[tuple[int, int, int]] = []
        self._row: list | None = None
        self._cell: list[str] | None = None
        self._span = (1, 1)
        self._down: dict[int, int] = {}  # column -> the last row a rowspan above covers
        self._hidden = 0  # inside <script> / <style>

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        elif tag == "tr":
            self._end_row()
            self._row = []
        elif tag in ("td", "th"):
            self._end_cell()
            if self._row is None:
                self._row = []
            found = dict(attrs)
            self._cell = []
            self._span = (_count_attribute(found.get("colspan"), 1, EXCEL_MAX_COLUMNS),
                          _count_attribute(found.get("rowspan"), 1, EXCEL_MAX_ROWS))
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden = max(0, self._hidden - 1)
        elif tag in ("td", "th"):
            self._end_cell()
        elif tag in ("tr", "table"):
            self._end_row()

    def handle_data(self, data: str) -> None:
        if self._cell is not None and not self._hidden:
            self._cell.append(data)

    def close(self) -> None:
        super().close()
        self._end_row()

    def _end_cell(self) -> None:
        if self._cell is None or self._row is None:
            return
        text = " ".join("".join(self._cell).split()) or None  # HTML's own spacing is layout
        self._cell = None
        r = len(self.rows)
        self._skip_covered(r)
        col = len(self._row)
        across, down = self._span
        self._row.extend([text] + [None] * max(0, min(across - 1, EXCEL_MAX_COLUMNS - col - 1)))
        if down > 1:
            for c in range(col, col + across):
                self._down[c] = r + down - 1
            self.merges.append((r, r + down - 1, col))

    def _skip_covered(self, r: int) -> None:
        while self._down.get(len(self._row), -1) >= r:  # a cell of a rowspan above
            self._row.append(None)

    def _end_row(self) -> None:
        self._end_cell()
        if self._row is not None:
            self.rows.append(tuple(self._row))
            self._row = None


# Excel 2003 XML Spreadsheet (SpreadsheetML): <Worksheet ss:Name> / <Table> / <Row> / <Cell> /
# <Data ss:Type>, a row or cell placed by ss:Index where rows or cells are left out, merged cells
# by ss:MergeAcross / ss:MergeDown. Read whole, as a web page is, up to HTML_MAX_BYTES; expat
# resolves no external entity and bounds entity expansion. A date cell holds ISO text
# (ss:Type="DateTime") whatever the workbook's date system; a workbook of the 1904 system
# (<ExcelWorkbook><Date1904/>) has its serials left numbers, or typed as text, counted from
# 1904-01-01, as in XLSX and XLS.
SPREADSHEET_NS = "urn:schemas-microsoft-com:office:spreadsheet"
EXCEL_NS = "urn:schemas-microsoft-com:office:excel"  # <ExcelWorkbook>'s options


@dataclass
class _RowsSheet:
    """A sheet read whole: its rows and vertical merges, as _read_sheets takes a sheet."""

    title: str
    rows: list = dataclass_field(default_factory=list)
    merges: list = dataclass_field(default_factory=list)

    def iter_rows(self, values_only: bool = True) -> Iterator[tuple]:
        return iter(self.rows)

    def vertical_merges(self) -> list[tuple[int, int, int]]:
        return self.merges


@dataclass
class _RowsBook:
    worksheets: list


def _read_xml_spreadsheet(con, path: Path, presets: Presets, preset: str | None, each) -> None:
    import xml.etree.ElementTree as ET

    _refuse_beyond_read_whole_limit(path, "Excel 2003 XML 表格", "the Excel 2003 XML spreadsheet")
    ss = "{" + SPREADSHEET_NS + "}"
    # Excel writes the options in its own namespace; a program may leave them in the sheet's
    options = {"{" + ns + "}ExcelWorkbook" for ns in (EXCEL_NS, SPREADSHEET_NS)}
    date1904_tag = {"{" + ns + "}Date1904" for ns in (EXCEL_NS, SPREADSHEET_NS)}
    sheets: list[_RowsSheet] = []
    in_options = date1904 = False
    source = _xml_in_expat_encoding(path)
    try:
        for event, element in ET.iterparse(source, events=("start", "end")):
            if event == "start":
                if element.tag == ss + "Worksheet":
                    sheets.append(_RowsSheet(element.get(ss + "Name") or f"Sheet{len(sheets) + 1}"))
                elif element.tag in options:
                    in_options = True
                elif element.tag in date1904_tag and in_options:
                    date1904 = True
            elif element.tag == ss + "Row" and sheets:
                _xml_row(sheets[-1], element, ss)
                element.clear()
            elif element.tag in options:
                in_options = False
    except (ET.ParseError, ValueError, LookupError) as exc:  # expat's refusals of an encoding too
        raise InputError(path, f"Excel 2003 XML 表格无法读取：{exc}",
                         f"the Excel 2003 XML spreadsheet cannot be read: {exc}") from exc
    _read_sheets(con, path, _RowsBook(sheets), presets, preset, each, date1904=date1904)


_XML_ENCODING = re.compile(rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
# What expat reads itself; any other encoding a declaration names (GB2312, GBK, GB18030, as Chinese
# software writes its XML) is decoded here (expat refuses multi-byte encodings: "multi-byte
# encodings are not supported", which was an internal error and took the night's run with it).
_EXPAT_ENCODINGS = {"utf-8", "utf-16", "utf-16-le", "utf-16-be", "latin-1", "iso8859-1", "ascii"}


def _xml_in_expat_encoding(path: Path):
    """The XML spreadsheet as expat can read it: the path itself, or its text decoded by the
    encoding its declaration names (GB2312 / GBK read as GB18030, their superset) and given as
    UTF-8 under a declaration saying so. InputError for an encoding unknown or bytes not in it."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    m = _XML_ENCODING.match(head)
    if m is None:
        return path
    declared = m.group(1).decode("ascii")
    try:
        codec = codecs.lookup(declared).name
    except LookupError:
        raise InputError(path, f"Excel 2003 XML 表格声明的编码 {declared} 无法识别",
                         f"the Excel 2003 XML spreadsheet declares an unknown encoding {declared!r}") from None
    if codec in _EXPAT_ENCODINGS:
        return path
    if codec in ("gb2312", "gbk"):
        codec = "gb18030"
    raw = path.read_bytes()
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise InputError(path, f"第{line}行有不属于声明编码 {declared} 的字节，无法读取",
                         f"line {line} holds bytes that are not {declared}, as the file declares; "
                         f"it cannot be read") from None
    declaration = re.match(r"""\ufeff?\s*<\?xml[^>]*?\?>""", text)
    body = text[declaration.end():] if declaration else text
    return io.BytesIO(('<?xml version="1.0" encoding="UTF-8"?>' + body).encode("utf-8"))




def _xml_row(sheet: _RowsSheet, row, ss: str) -> None:
    """Add a <Row> to the sheet: rows and cells left out (ss:Index) as empty ones."""
    at = _count_attribute(row.get(ss + "Index"), 0, EXCEL_MAX_ROWS)
    while at and len(sheet.rows) < at - 1:
        sheet.rows.append(())
    r = len(sheet.rows)
    values: list = []
    for cell in row.iter(ss + "Cell"):
        at = _count_attribute(cell.get(ss + "Index"), 0, EXCEL_MAX_COLUMNS)
        if at and at - 1 > len(values):
            values.extend([None] * (at - 1 - len(values)))
        data = cell.find(ss + "Data")
        col = len(values)
        values.append(None if data is None else _xml_value(data, ss))
        across = _count_attribute(cell.get(ss + "MergeAcross"), 0, EXCEL_MAX_COLUMNS)
        values.extend([None] * max(0, min(across, EXCEL_MAX_COLUMNS - len(values))))  # a sheet's width at most
        down = _count_attribute(cell.get(ss + "MergeDown"), 0, EXCEL_MAX_ROWS)
        if down:
            sheet.merges.append((r, r + down, col))
    sheet.rows.append(tuple(values))


def _xml_value(data, ss: str) -> str | None:
    """A <Data> cell's text; a DateTime at midnight as its date."""
    text = "".join(data.itertext()).strip()
    if data.get(ss + "Type") == "DateTime":
        day, _, time = text.partition("T")
        text = day if time.rstrip("0.:") == "" else f"{day} {time}"
    return text or None


def _count_attribute(value: str | None, least: int, most: int) -> int:
    """A count in an attribute (colspan, rowspan, ss:Index, ss:MergeDown …) within bounds; the
    least when absent or not a number."""
    try:
        return max(least, min(int(value or least), most))
    except ValueError:
        return least




# Excel saves a password-protected .xlsx inside the 97-2003 container (so it is read as one, see
# _format_of), with a stream of this name where the workbook would be.
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")


def _holds_encryption_info(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return any(_ENCRYPTION_INFO in piece
                       for piece in _overlapping_pieces(fh, len(_ENCRYPTION_INFO)))
    except OSError:
        return False


class _XlsBook:
    """An xlrd workbook seen as _ledger_sheet and _insert_rows see an openpyxl one: .worksheets,
    each with .title and .iter_rows(values_only=True) giving the values openpyxl would (those of
    cells shown red marked by _red_ink: red_ink is then true)."""

    def __init__(self, book, path: Path):
        red = _xls_red_ink_xfs(book)
        self.red_ink = bool(red)
        self.worksheets = [_XlsSheet(book, i, name, path, red) for i, name in enumerate(book.sheet_names())]


def _xls_red_ink_xfs(book) -> frozenset:
    """The cell formats (XF records, by index) of an xlrd workbook that show a positive number
    red, as _red_ink_styles finds an XLSX's: a red font (by the workbook's palette) or a number
    format red for positive numbers. xlrd knows them only when the workbook was opened with
    formatting_info (see _read_xls): else there are none, and red ink is not read."""
    fonts, xfs = getattr(book, "font_list", None), getattr(book, "xf_list", None)
    if not fonts or not xfs:
        return frozenset()
    palette = getattr(book, "colour_map", None) or {}
    formats = getattr(book, "format_map", None) or {}

    def red_font(i: int) -> bool:
        rgb = palette.get(fonts[i].colour_index) if 0 <= i < len(fonts) else None
        return rgb is not None and _red_rgb("".join(f"{c:02X}" for c in rgb))

    def red_format(key: int) -> bool:
        fmt = formats.get(key)
        return fmt is not None and _red_when_positive(getattr(fmt, "format_str", None))

    return frozenset(i for i, xf in enumerate(xfs) if red_font(xf.font_index) or red_format(xf.format_key))


class _XlsSheet:
    def __init__(self, book, index: int, title: str, path: Path, red: frozenset = frozenset()):
        self._book, self._index, self.title, self._path, self._red = book, index, title, path, red
        # as openpyxl names it; xlrd keeps each sheet's (0, 1, 2) as the workbook lists its sheets
        visibility = getattr(book, "_sheet_visibility", ())
        self.sheet_state = {1: "hidden", 2: "veryHidden"}.get(
            visibility[index] if index < len(visibility) else 0, "visible")

    def iter_rows(self, values_only: bool = True) -> Iterator[tuple]:
        import xlrd

        book = self._book
        try:  # xlrd reads the sheet here (on_demand), and raises many types for a damaged one
            sheet = book.sheet_by_index(self._index)
        except Exception as exc:
            raise _damaged(self._path, exc) from exc
        blank, date, boolean, error = ((xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK), xlrd.XL_CELL_DATE,
                                       xlrd.XL_CELL_BOOLEAN, xlrd.XL_CELL_ERROR)

        def value(cell):
            """As openpyxl gives it: dates as datetime, booleans as bool, an error as its text
            (#DIV/0!: quarantined where a value is required), blanks as None."""
            kind = cell.ctype
            if kind in blank:
                return None
            if kind == date:
                try:
                    return xlrd.xldate.xldate_as_datetime(cell.value, book.datemode)
                except (xlrd.xldate.XLDateError, ValueError, OverflowError):
                    return cell.value
            if kind == boolean:
                return bool(cell.value)
            if kind == error:
                return xlrd.error_text_from_code.get(cell.value, "#ERROR")
            return cell.value

        red = self._red
        for r in range(sheet.nrows):
            if red:
                yield tuple(_red_ink(value(cell)) if cell.xf_index in red else value(cell)
                            for cell in sheet.row(r))
            else:
                yield tuple(value(cell) for cell in sheet.row(r))

    def vertical_merges(self) -> list[tuple[int, int, int]]:
        """The sheet's merged ranges of more than one row, as _scan_sheet_xml gives them (none
        when the workbook was opened without formatting_info)."""
        sheet = self._book.sheet_by_index(self._index)
        return [(rlo, rhi - 1, clo) for rlo, rhi, clo, _ in getattr(sheet, "merged_cells", ())
                if rhi - rlo > 1]


def _insert_rows(con, path: Path, rows: Iterator[tuple], presets: Presets, preset: str | None,
                 merges: list[tuple[int, int, int]] = (), red_ink: bool = False) -> ColumnMap:
    """Find the header among a sheet's first rows (rows[0] is the sheet's first), then stream the
    rows under it into the temporary table _ledger_raw in Arrow batches, each numbered (1 = the
    first under the header). Cells under a vertical merge take its value (_merged_down). red_ink:
    the rows may hold values marked by _red_ink, read as negative in the amount columns."""
    import pyarrow as pa

    head = list(_take(rows, HEADER_SCAN_ROWS))
    cmap = match_header(path, [list(r) for r in head], presets, preset)
    picks = [(f, cmap.columns.get(f)) for f in FIELDS]
    filled = [0]

    def data_rows() -> Iterator[tuple]:
        below = itertools.chain(head[cmap.header_index + 1:], rows)
        # an amount merged over several lines is shown once, so it counts once
        read = {pos for f, pos in cmap.columns.items() if f not in AMOUNT_FIELDS}
        if any(m[2] in read for m in merges):
            below = _merged_down(below, cmap.header_index + 1, [m for m in merges if m[2] in read],
                                 filled)
        return below

    batch: list[list] = [[] for _ in range(len(FIELDS) + 1)]
    row_no = 0

    def flush() -> None:
        table = pa.table(
            {"row_no": pa.array(batch[0], pa.int64()),
             **{f: pa.array(batch[i + 1], pa.string()) for i, f in enumerate(FIELDS)}}
        )
        con.register("_ledger_batch", table)
        try:
            con.execute("insert into _ledger_raw select * from _ledger_batch")
        finally:
            con.unregister("_ledger_batch")
        for col in batch:
            col.clear()

    # Most cells are text or blank, taken as they are; _cell_text converts the rest. The fields
    # the file lacks are blank on every row.
    present = [(batch[i + 1], pos, f) for i, (f, pos) in enumerate(picks) if pos is not None]
    absent = [batch[i + 1] for i, (f, pos) in enumerate(picks) if pos is None]
    word_at = cmap.columns.get("voucher_word")
    vouchers = batch[1 + FIELDS.index("voucher_no")]
    unwrap = _excel_text_inside if cmap.excel_text else (lambda text: text)
    # the amount columns: debit and credit, or the one amount read by its direction (whose
    # direction column may hold numbers: 1 for 借)
    amount_fields = ("debit",) if cmap.by_direction else AMOUNT_FIELDS
    red_columns = [_RedColumn(f, cmap.columns[f]) for f in amount_fields] if red_ink else []
    for values in data_rows():
        row_no += 1
        batch[0].append(row_no)
        n = len(values)
        if red_columns:
            values = list(values)
            for red in red_columns:
                if red.pos < n and values[red.pos] is not None:
                    # the sheet's row, as Excel numbers it
                    red.read(values, row_no, cmap.header_index + 1 + row_no)
        for column, pos, field in present:
            v = values[pos] if pos < n else None
            column.append(v if v is None or type(v) is str else _cell_text(v, field))
        for column in absent:
            column.append(None)
        if word_at is not None and word_at < n:
            vouchers[-1] = _voucher_text(unwrap(_cell_text(values[word_at], "voucher_word")),
                                         unwrap(vouchers[-1]))
        if len(batch[0]) >= XLSX_BATCH_ROWS:
            flush()
    if batch[0]:
        flush()
    if filled[0]:
        cmap = _noting(cmap, (
            f"合并单元格：{filled[0]:,} 个单元格按其合并区域首行的值读取（金额列除外） / merged cells: "
            f"{filled[0]:,} cells read with the value of their merged range's first row "
            f"(amount columns excepted)"))
    if red_columns:
        cmap = _red_ink_read(con, cmap, red_columns)
    return cmap


def _merged_down(rows: Iterator[tuple], first: int, merges: list[tuple[int, int, int]],
                 filled: list[int]) -> Iterator[tuple]:
    """The rows (rows' first is the sheet's row `first`, 0-based) with each vertical merge's value
    written into the rows under its first, as Excel shows it: a voucher number or date merged down
    over an entry's lines belongs to each line. merges are (first row, last row, column), 0-based;
    those starting above `first` (in the header) are left alone. filled[0] counts the cells."""
    pending = sorted((m for m in merges if m[0] >= first), reverse=True)  # next to start last
    active: list[tuple[int, int, object]] = []  # (last row, column, value)
    for r, values in enumerate(rows, start=first):
        if active:
            active = [a for a in active if a[0] >= r]
        if active:
            values = list(values)
            for _, col, value in active:
                if col >= len(values):
                    values.extend([None] * (col + 1 - len(values)))
                values[col] = value
                filled[0] += 1
        while pending and pending[-1][0] == r:
            _, last, col = pending.pop()
            value = values[col] if col < len(values) else None
            if value is not None:
                active.append((last, col, value))
        yield values


def _ledger_sheets(path: Path, wb, presets: Presets, preset: str | None) -> list:
    """The sheets holding the ledger: those whose first rows hold a complete header. Sheets
    beside them (a cover, notes, a code list, a balance sheet) are passed over, and so is a sheet
    that holds the header and nothing under it (a blank template) beside one that holds rows.
    Several sheets with rows (one per month) are each loaded as a file of their own
    (_load_in_transaction). With none, the sheet that came closest, whose header then fails with
    the columns it lacks (the first sheet when all are empty). A sheet beside ledger sheets whose
    header is not recognised but which is part of the ledger all the same (_unread_ledger_sheet:
    a month whose columns were renamed or lost, or whose header is below the rows scanned for
    one) refuses the workbook, naming it and what it lacks, rather than loading the workbook
    without that month. Hidden sheets (a draft not yet posted, a stale copy) are not read: the
    load says so (_hidden_note)."""
    visible = [ws for ws in wb.worksheets if not _hidden(ws)]
    if not visible:
        raise InputError(path, "工作簿的工作表都是隐藏的：请取消隐藏账簿所在的工作表后重新加载",
                         "every sheet of the workbook is hidden: unhide the ledger's sheet and load it again")
    complete, header_only, unread, closest = [], [], [], (None, visible[0])
    for ws in visible:
        rows = ws.iter_rows(values_only=True)
        head = [list(r) for r in _take(rows, HEADER_SCAN_ROWS)]
        best = _best_header(path, head, presets, preset)
        if best is None:
            continue
        if best[0][0]:
            (complete if _holds_rows(head[best[1] + 1:], rows) else header_only).append(ws)
            continue
        if closest[0] is None or best[0] > closest[0]:
            closest = (best[0], ws)
        why = _unread_ledger_sheet(path, ws.title, head, best, rows, presets, preset)
        if why is not None:
            unread.append(why)
    if (complete or header_only) and unread:
        hints_zh, hints_en = [], []
        if not all(low for _, _, low in unread):
            hints_zh.append("列名与预设不同的，在 presets.toml 中添加列名别名（或补齐、改回列名）")
            hints_en.append("add an alias in presets.toml for a column named otherwise (or add the "
                            "column, or restore its heading)")
        if any(low for _, _, low in unread):
            hints_zh.append(f"表头不在前{HEADER_SCAN_ROWS}行内的，删去表头上方的行")
            hints_en.append(f"delete the rows above a header that is not within the first {HEADER_SCAN_ROWS} rows")
        raise InputError(
            path,
            f"工作簿中的账簿工作表有的表头未能识别，未读取：{'；'.join(zh for zh, _, _ in unread)}；"
            f"{'；'.join(hints_zh)}；不属于账簿的工作表，移出工作簿；然后重新加载，以免漏掉这些工作表的凭证",
            f"some of the workbook's ledger sheets have a header that was not recognised, and were not "
            f"read: {'; '.join(en for _, en, _ in unread)}; {'; '.join(hints_en)}; move a sheet that is "
            f"not part of the ledger out of the workbook; then load it again, so that their vouchers "
            f"are not left out")
    if not complete:
        complete = header_only[:1]  # the export holds no rows: loaded, and warned about as empty
    return complete or [closest[1]]


# A sheet without a recognised header is taken for part of the ledger (_unread_ledger_sheet) when
# a complete header stands below the rows scanned for one, within LOW_HEADER_SCAN_ROWS more rows
# (a block of notes above it), or when its rows read like voucher lines, a date and an amount in
# each: LEDGER_LIKE_ROWS of them, or one in a sheet named as a month, 明细 or 凭证 is.
LOW_HEADER_SCAN_ROWS = 200
LEDGER_LIKE_ROWS = 3
LEDGER_SHEET_NAME = re.compile(
    r"^\s*(?:(?:19|20)\d{2}\s*[年.\-_]?\s*)?(?:0?[1-9]|1[0-2]|[一二三四五六七八九十]|十[一二])\s*月份?\s*$"
    r"|^\s*(?:19|20)\d{2}\s*[.\-_]?\s*(?:0[1-9]|1[0-2])\s*$|明细|凭证|日记账|序时账")
_DATE_TEXT = re.compile(r"(?:19|20)\d{2}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?"
                        r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_NUMBER_TEXT = re.compile(r"[-+(（]?[¥￥]?\d[\d,]*(?:\.\d+)?[)）]?")


def _unread_ledger_sheet(path: Path, title: str, head: list[list], best, rest: Iterator[tuple],
                         presets: Presets, preset: str | None) -> tuple[str, str, bool] | None:
    """For a sheet whose first rows (`head`; `rest` the rows after them) hold no complete header
    (`best`, as _best_header gives it): None when it is no part of the ledger (a cover, notes, a
    code list, a balance sheet: no voucher lines); else what is wrong with it, as (zh, en, whether
    its header is below the rows scanned). It is part of the ledger when it holds rows and its
    header lacks one required column only (a month whose column was lost), when a complete header
    stands below the rows scanned for one, or when its rows read like voucher lines (a month
    whose headings were renamed: LEDGER_LIKE_ROWS)."""
    more = list(_take(rest, LOW_HEADER_SCAN_ROWS)) if len(head) == HEADER_SCAN_ROWS else []
    low = _low_header(path, head[-1:] + more, presets, preset)
    if low is not None:
        at = len(head) + low  # the sheet's row (1-based) of the header found below
        if _holds_rows(more[low:], rest):
            return (f"{title} 的表头在第{at}行，不在查找表头的前{HEADER_SCAN_ROWS}行内",
                    f"{title} has its header on row {at}, not within the first {HEADER_SCAN_ROWS} "
                    f"rows where a header is looked for", True)
        return None
    below = head[best[1] + 1:] + more
    if not _holds_rows(below, rest):
        return None
    missing = [f for f in presets.required if f not in best[3]]
    lines = sum(1 for r in below if _dated_amount(r))
    if len(missing) == 1:
        why_zh = why_en = ""
    elif lines >= LEDGER_LIKE_ROWS or lines and LEDGER_SHEET_NAME.search(title):
        why_zh = f"（{lines} 行有日期和金额，像凭证行）"
        why_en = f" ({lines} rows with a date and an amount, as voucher lines have)"
    else:
        return None
    return (f"{title} 缺少 {'、'.join(f'{FIELD_ZH[f]}({f})' for f in missing)}{why_zh}",
            f"{title} lacks {', '.join(missing)}{why_en}", False)


def _low_header(path: Path, rows: list[list], presets: Presets, preset: str | None) -> int | None:
    """The index among `rows` of the first complete header (its lower row, for a header on two
    rows), looked for HEADER_SCAN_ROWS rows at a time, each stretch beginning with the last row
    of the one before (the upper row of a header on two); None when there is none."""
    for start in range(0, max(len(rows) - 1, 0), HEADER_SCAN_ROWS - 1):
        best = _best_header(path, rows[start:start + HEADER_SCAN_ROWS], presets, preset)
        if best is not None and best[0][0]:
            return start + best[1]
    return None


def _dated_amount(values) -> bool:
    """Does a row hold a date and, in another cell, a number, as a voucher line does?"""
    dated = numbered = False
    for v in values:
        if isinstance(v, dt.date) or isinstance(v, str) and _DATE_TEXT.fullmatch(v.strip()):
            dated = True
        elif isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) \
                or isinstance(v, str) and _NUMBER_TEXT.fullmatch(v.strip()):
            numbered = True
    return dated and numbered


TEMPLATE_SCAN_ROWS = 1_000  # blank rows read past a header before taking the sheet to hold rows


def _holds_rows(below: list[list], rest: Iterator[tuple]) -> bool:
    """Does a sheet hold a row under its header, or may it? `below` are the rows read after the
    header, `rest` the sheet's rows after those. A template's rows are often blank cells with
    borders: up to TEMPLATE_SCAN_ROWS of them are read on; a sheet with more is taken to hold rows
    (refused, rather than passed over unseen, beside another)."""
    if any(_text(c) for r in below for c in r):
        return True
    for values in _take(rest, TEMPLATE_SCAN_ROWS):
        if any(_text(c) for c in values):
            return True
    return next(rest, None) is not None  # more blank rows than were read


_FORMULA_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?f[\s>/]")
_MERGE_CELL = re.compile(rb'<(?:[A-Za-z_][\w.-]*:)?mergeCell\s[^>]*?ref="([A-Za-z]+[0-9]+:[A-Za-z]+[0-9]+)"')


def _scan_sheet_xml(wb, ws) -> tuple[bool, list[tuple[int, int, int]]]:
    """Does the sheet's XML hold a formula element, and which of its merged ranges span more than
    one row, as (first row, last row, first column), 0-based? openpyxl's read-only mode reads
    neither; the merged ranges follow the rows in the XML. One pass in 1 MB pieces (a sheet can be
    large); when openpyxl's internals are not as expected, formulas are assumed and no merges."""
    from openpyxl.utils.cell import range_boundaries

    archive, part = getattr(wb, "_archive", None), getattr(ws, "_worksheet_path", None)
    if archive is None or part is None:
        return True, []
    has_formulas, refs = False, set()
    with archive.open(part) as src:
        for piece in _overlapping_pieces(src, 256):
            has_formulas = has_formulas or _FORMULA_TAG.search(piece) is not None
            if b"mergeCell" in piece:
                refs.update(_MERGE_CELL.findall(piece))
    merges = []
    for ref in refs:
        min_col, min_row, _, max_row = range_boundaries(ref.decode("ascii"))
        if max_row > min_row:
            merges.append((min_row - 1, max_row - 1, min_col - 1))
    return has_formulas, sorted(merges)


SCAN_PIECE_BYTES = 1 << 20


def _overlapping_pieces(src, overlap: int) -> Iterator[bytes]:
    """The binary stream src in pieces of SCAN_PIECE_BYTES, each read with the last `overlap`
    bytes of the one before (so a match cut in two is seen; one within the overlap is seen twice)."""
    size = SCAN_PIECE_BYTES
    tail = b""
    for chunk in iter(lambda: src.read(size), b""):
        yield tail + chunk
        tail = chunk[-overlap:]


def _with_uncomputed_formulas(cells: Iterator[tuple], formulas: Iterator[tuple],
                              red: frozenset = frozenset()) -> Iterator[tuple]:
    """Rows of cached values (`cells`: the rows of cells, with their types), with the formula's
    text where a formula cell has no cached value. A formula whose cached value is an empty string
    (`=IF(A2=0,"",A2)`: Excel saves it as text, t="str", with an empty value) was computed, and is
    a blank cell. openpyxl gives None for both: the type tells them apart (openpyxl itself writes a
    formula it cannot compute with an empty value of no type; other programs write no value).
    Values of the styles in `red` are marked (_red_ink)."""
    for row, frow in zip(cells, formulas):
        values = _cell_values(row, red)
        if any(v is None and _formula_text(f) for v, f in zip(values, frow)):
            values = tuple(_formula_text(frow[i]) if v is None and i < len(frow) and row[i].data_type != "str"
                           else v for i, v in enumerate(values))
        yield values


def _formula_text(cell) -> str | None:
    if isinstance(cell, str):
        return cell if cell.startswith("=") else None
    text = getattr(cell, "text", None)  # ArrayFormula
    return text if isinstance(text, str) and text.startswith("=") else None


def _parquet_time_zones(path: Path) -> dict[str, str]:
    """The time zone of each column of date-times with one (pandas writes Asia/Shanghai into the
    file's Arrow schema); DuckDB reads such a column as instants, and dates them in the session's
    zone. Only zone names of letters, digits, / + - _ are taken (they go into the SQL)."""
    try:
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
    except Exception:  # noqa: BLE001 - DuckDB's own read says what is wrong with the file
        return {}
    zones = {}
    for f in schema:
        tz = getattr(f.type, "tz", None)
        if tz and re.fullmatch(r"[A-Za-z0-9/+\-_]{1,64}", tz):
            zones[f.name] = tz
    return zones


FLOAT32_EXACT_BELOW = 131072  # 2^17: a float32's neighbours are less than a cent apart below it
FLOAT32_NOTE = ("金额列 {columns} 为单精度浮点数（float32）：131,072 元及以上的金额无法精确到分，这些行已隔离"
                "（请以 decimal 或 double 导出） / the amount column(s) {columns_en} are float32: amounts of "
                "131,072 yuan and more cannot be held to the fen, and their rows are quarantined (export "
                "them as decimal or double)")


def _read_parquet(con, path: Path, presets: Presets, preset: str | None) -> tuple[ColumnMap, str, dict]:
    try:
        described = con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()
    except duckdb.Error as exc:
        detail = str(exc).strip().splitlines()[0][:300]
        raise InputError(path, f"Parquet 文件无法读取：{detail}",
                         f"the Parquet file cannot be read: {detail}") from exc
    names = [r[0] for r in described]
    types = [str(r[1]).upper() for r in described]
    # the first rows too, as under a CSV's header: what a column holds can decide what it is
    # (a 方向 of 借 / 贷 or of 1 / 0, a 会计科目 holding codes)
    first = con.execute(f"select * from read_parquet(?) limit {HEADER_SCAN_ROWS - 1}", [str(path)]).fetchall()
    cmap = match_header(path, [names, *(list(r) for r in first)], presets, preset)

    def expr(field: str) -> str:
        if field not in cmap.columns:
            return f"cast(null as varchar) as {field}"
        pos = cmap.columns[field] + 1  # positional reference: no file-supplied name enters the SQL
        typ = types[pos - 1]
        if field == "voucher_no" and "voucher_word" in cmap.columns:
            word = f"cast(#{cmap.columns['voucher_word'] + 1} as varchar)"
            return f"{_voucher_sql(word, f'cast(#{pos} as varchar)')} as {field}"
        if field in AMOUNT_FIELDS and typ in ("DOUBLE", "FLOAT", "REAL"):
            # to the cent when within 1e-6 of one (binary noise), as an XLSX number; else as
            # written (1234.567, nan, 1e+30), which typing quarantines
            exact = f"try_cast(#{pos} as decimal(38,10))"
            # a float32 is one cent apart from its neighbours only below 2^17 (131,072): beyond,
            # 4,619,527.60 is stored as 4,619,527.5, which the test above takes for exact; such a
            # value is quarantined, marked (FLOAT32_NOTE says why)
            beyond = (f"when abs(#{pos}) >= {FLOAT32_EXACT_BELOW} then cast(#{pos} as varchar) || ' (float32)' "
                      if typ in ("FLOAT", "REAL") else "")
            return (f"case {beyond}when abs({exact} - round({exact}, 2)) < 0.000001 "
                    f"then cast(round({exact}, 2) as varchar) else cast(#{pos} as varchar) end as {field}")
        if typ.startswith("TIMESTAMP") and field == "posted_on":
            zone = zones.get(names[pos - 1])
            if zone:  # the day in the file's own zone, not the machine's (a server kept in UTC)
                return f"cast(cast(timezone('{zone}', #{pos}) as date) as varchar) as {field}"
            return f"cast(cast(#{pos} as date) as varchar) as {field}"
        return f"cast(#{pos} as varchar) as {field}"

    zones = _parquet_time_zones(path)
    singles = [cmap.headings[f] for f in AMOUNT_FIELDS
               if f in cmap.columns and types[cmap.columns[f]] in ("FLOAT", "REAL")]
    if singles:
        cmap = _noting(cmap, FLOAT32_NOTE.format(columns="、".join(singles), columns_en=", ".join(singles)))

    # #n refers to the n-th column of the file; file_row_number is appended after them.
    row_col = len(names) + 1
    source = f"""
        select #{row_col} + 1 as row_no, {", ".join(expr(f) for f in FIELDS)}
        from read_parquet($path, file_row_number = true)"""
    return cmap, source, {"path": str(path)}


# --------------------------------------------------------------------------------------------
# Typing: one set-based pass from _ledger_raw to ledger_lines / quarantine

# Typing is written for millions of rows: every value first meets a cheap exact test (a plain
# number, an ISO or slash date, a bare code) and only values that fail it take the slow path
# (full-width folding, brackets, separators, Excel serials). CASE and COALESCE evaluate a branch
# only for the rows that reach it. Macro arguments are columns, never expressions: DuckDB expands
# macros textually, so an expression argument would be re-evaluated at each use.
_MACROS = r"""
create or replace temp macro ledger_trim_plain(s) as
    -- the cheap tests first: s < '!' is a first byte of ASCII blank or control (a tab put before
    -- a code so that Excel keeps it as text, a line break); then spaces, a tab, an ideographic or
    -- no-break space at either end, a byte-order mark at the start (two exports put together)
    case when s < '!' or s like '% ' or s like ('%' || chr(9)) or s like '　%' or s like '%　'
              or s like (chr(65279) || '%') or s like (chr(160) || '%') or s like ('%' || chr(160))
         then nullif(regexp_replace(s, '^[\s\x{3000}\x{feff}\x{a0}]+|[\s\x{3000}\x{feff}\x{a0}]+$', '', 'g'), '')
         else nullif(s, '') end;
create or replace temp macro ledger_trim(s) as ledger_trim_plain(s);
create or replace temp macro ledger_ascii(s) as
    case when regexp_matches(s, '[０-９．，－＋（）／：]')
         then translate(s, '０１２３４５６７８９．，－＋（）／：', '0123456789.,-+()/:') else s end;
create or replace temp macro ledger_dec(u) as
    case when regexp_full_match(u, '[+-]?(\d+(\.\d*)?|\.\d+)')  -- no exponent, no '_' separators
          and try_cast(u as decimal(38,10)) = try_cast(u as decimal(18,2))
         then try_cast(u as decimal(18,2)) end;
create or replace temp macro ledger_amount_plain(u) as
    case when not contains(u, ',') then ledger_dec(u)
         when regexp_full_match(u, '[+-]?\d{1,3}(,\d{3})+(\.\d*)?') then ledger_dec(replace(u, ',', ''))
    end;
create or replace temp macro ledger_amount_slow(t) as
    case
        when t is null or t in ('-', '--', '—', '–') then cast(0 as decimal(18,2))
        when starts_with(t, '(') and ends_with(t, ')')
            then -ledger_amount_plain(substr(t, 2, length(t) - 2))
        -- a minus after the number (5,217.28-, as some systems print a credit balance), or Excel's
        -- text mark before it (an apostrophe: 5217.28 kept as text)
        when ends_with(t, '-') and length(t) > 1 and not starts_with(t, '-')
            then -ledger_amount_plain(substr(t, 1, length(t) - 1))
        when starts_with(t, chr(39)) then ledger_amount_plain(substr(t, 2))
        else ledger_amount_plain(t)
    end;
create or replace temp macro ledger_amount(c) as
    case
        when c is null then cast(0 as decimal(18,2))
        when regexp_full_match(c, '-?\d+(\.\d{1,2})?') then try_cast(c as decimal(18,2))
        when regexp_full_match(c, '-?\d{1,3}(,\d{3})+(\.\d{1,2})?')
            then try_cast(replace(c, ',', '') as decimal(18,2))
        -- the text cleaned once, named in a lambda (ledger_amount_slow names it many times)
        else list_transform([nullif(regexp_replace(
                 translate(c, '０１２３４５６７８９．，－＋（）−', '0123456789.,-+()-'),
                 '[\s\x{3000}¥￥元]', '', 'g'), '')], lambda t: ledger_amount_slow(t))[1]
    end;
create or replace temp macro ledger_date_slow(t) as
    case
        when try_cast(t as double) between 10000 and 99999.999999 and not contains(t, '-')
            then ledger_serial_epoch() + cast(floor(try_cast(t as double)) as integer)
        else coalesce(
            cast(try_strptime(t, ['%Y-%m-%d', '%Y/%m/%d', '%Y.%m.%d', '%Y%m%d', '%Y年%m月%d日',
                                  '%Y-%m-%d %H:%M:%S', '%Y/%m/%d %H:%M:%S', '%Y-%m-%d %H:%M',
                                  '%Y/%m/%d %H:%M', '%Y-%m-%dT%H:%M:%S']) as date),
            -- a date with a time of any precision (SQL Server's text 2024-03-15 00:00:00.000,
            -- ISO's 2024-03-15T00:00:00.000), or a time after a date in another form: the date
            cast(try_strptime(regexp_extract(t, '^(\S+?)[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?$', 1),
                              ['%Y-%m-%d', '%Y/%m/%d', '%Y.%m.%d', '%Y%m%d', '%Y年%m月%d日']) as date))
    end;
-- the day an Excel serial counts from (set per file, as ledger_trim is: _serial_epoch)
create or replace temp macro ledger_serial_epoch() as date '1899-12-30';
create or replace temp macro ledger_date_any(c) as
    case when c is null then null
         else coalesce(cast(try_strptime(c, ['%Y-%m-%d', '%Y/%m/%d']) as date),
                       ledger_date_slow(ledger_ascii(c)))
    end;
-- %Y takes a year of one to four digits: 24-03-15 would be 15 March of the year 24. A date before
-- the year 1000 is taken for a year not written in four digits, and is no date (greatest() passes
-- over a null, so the date is worked out once)
create or replace temp macro ledger_date(c) as
    nullif(greatest(ledger_date_any(c), date '0999-12-31'), date '0999-12-31');
-- A function or economic classification code (功能分类 / 经济分类), `deepest` the digits of its
-- deepest level (7 for a function's 项, 5 for an economic 款). Read from the text with full-width
-- digits folded and Excel's 2210107.0 taken as 2210107:
--   * a path of codes, each level's under the one above (221 住房保障支出/22101 …/2210107 …,
--     [208]…\[20802]…\[2080201]…): the deepest, when each code begins with the one before;
--   * a code written by level, 类 款 项 apart (221-01-07, 221.01.07, 221 01 07, 22101-07,
--     221|01|07, 303-05): the pieces joined, when each ends a level (3, 5 or 7 digits so far; a
--     piece after the deepest level is not one: 2210107-01 is 2210107);
--   * else the leading code (2210107 保障性住房租金补贴, [2210107]…, 2210107-保障性住房租金补贴);
--   * else, with no code before it, the code after the name in brackets that hold only the code
--     (保障性住房租金补贴(2210107), …（221-01-07）, …[2210107]), as some systems print it: a name
--     of no digits, so that 住房保障支出(221)/…(2210107), or a bracket after another code, is not
--     read as its last bracket.
-- Null when there is none, or when which code is meant is not certain (ledger_code_doubt says
-- why: a path whose codes do not nest, pieces that do not end levels, 2210-107), rather than a
-- wrong code.
create or replace temp macro ledger_code_text(c) as
    regexp_replace(ledger_ascii(c), '^(\d+)\.0+$', '\1');
create or replace temp macro ledger_code_path(t) as
    regexp_extract_all(t, '(?:^|[/\\＼>＞→])\s*[\[(【［〔]?\s*(\d{3}(?:\d{2}){0,2})\b', 1);
create or replace temp macro ledger_code_nests(path) as
    list_bool_and(list_transform(range(1, len(path)), lambda i: starts_with(path[i + 1], path[i])
                                                                and length(path[i + 1]) > length(path[i])));
-- the leading code's pieces: digits, then more apart by . - | (spaces allowed around), or by spaces
-- when two digits (22101 07; not the 2024 of 221 2024年…, a name)
create or replace temp macro ledger_code_pieces(t) as
    string_split_regex(coalesce(nullif(regexp_extract(t,
        '^(?:[\[(【［〔]\s*)?(\d+(?:\s*[.\-|]\s*\d+|\s+\d{2}\b)*)(?:\s*[\])】］〕])?(?:$|[\s:_|/\\、\-—]|[^\x00-\x7f])', 1), ''),
        regexp_extract(t, '^[^0-9]*[^\s0-9]\s*[\[(【［〔]\s*(\d+(?:\s*[.\-|]\s*\d+|\s+\d{2}\b)*)\s*[\])】］〕]$', 1)),
        '\s*[.\-|]\s*|\s+');
-- how many digits the pieces make, piece by piece
create or replace temp macro ledger_code_sums(pieces) as
    list_transform(range(1, len(pieces) + 1), lambda i: length(array_to_string(pieces[1:i], '')));
-- the pieces up to the deepest level, or all of them
create or replace temp macro ledger_code_depth(sums, deepest) as
    coalesce(list_position(sums, deepest), len(sums));
create or replace temp macro ledger_code_levels(sums, deepest) as
    list_bool_and(list_transform(sums[1:ledger_code_depth(sums, deepest)],
                                 lambda n: n in (3, 5, 7) and n <= deepest));
-- (path, pieces and their sums are each computed once and named in a lambda, DuckDB's `let`: a
-- macro's body is copied wherever it is named, and naming the pieces in one another bound each
-- query that read a code into hundreds of expressions, 20 ms to plan ledger_code alone)
create or replace temp macro ledger_code_read(path, pieces, deepest) as
    list_transform([{'path': path, 'pieces': pieces}], lambda p:
        list_transform([ledger_code_sums(p.pieces)], lambda sums:
            case when len(p.path) >= 2 then case when ledger_code_nests(p.path) then p.path[-1] end
                 when len(p.pieces) = 1 then nullif(p.pieces[1], '')
                 when ledger_code_levels(sums, deepest)
                     then array_to_string(p.pieces[1:ledger_code_depth(sums, deepest)], '')
            end)[1])[1];
create or replace temp macro ledger_code(c, deepest) as
    case when c is null then null
         when regexp_full_match(c, '\d+') then c
         else list_transform([ledger_code_text(c)],
                             lambda t: ledger_code_read(ledger_code_path(t), ledger_code_pieces(t), deepest))[1]
    end;
-- why ledger_code is null though the text begins with a code: 'path' (codes that do not nest) or
-- 'levels' (pieces that do not end levels); null otherwise
create or replace temp macro ledger_code_doubt_of(path, pieces, deepest) as
    list_transform([{'path': path, 'pieces': pieces}], lambda p:
        case when len(p.path) >= 2 then case when not ledger_code_nests(p.path) then 'path' end
             when len(p.pieces) > 1 and not ledger_code_levels(ledger_code_sums(p.pieces), deepest) then 'levels'
        end)[1];
create or replace temp macro ledger_code_doubt(c, deepest) as
    case when c is null or regexp_full_match(c, '\d+') then null
         else list_transform([ledger_code_text(c)],
                             lambda t: ledger_code_doubt_of(ledger_code_path(t), ledger_code_pieces(t), deepest))[1]
    end;
-- An account code (科目编码): the leading code (7201 事业支出, [7201]事业支出, 7201.01), else, with no
-- code before it, the code after the name in brackets that hold only the code (事业支出(7201),
-- 事业支出（7201.01）; a name of no digits, as for ledger_code), sub-account separators dropped.
create or replace temp macro ledger_account_read(t) as
    nullif(regexp_replace(coalesce(nullif(regexp_extract(t,
        '^(?:[\[(【［〔]\s*)?(\d+(?:[.\-]\d+)*)(?:\s*[\])】］〕])?(?:$|[\s:_|/、\-—]|[^\x00-\x7f])', 1), ''),
        regexp_extract(t, '^[^0-9]*[^\s0-9]\s*[\[(【［〔]\s*(\d+(?:[.\-]\d+)*)\s*[\])】］〕]$', 1)),
        '[.\-]', '', 'g'), '');
create or replace temp macro ledger_account(c) as
    case when c is null then null
         when regexp_full_match(c, '\d+') then c
         else ledger_account_read(regexp_replace(ledger_ascii(c), '^(\d+)\.0+$', '\1'))
    end;
create or replace temp macro ledger_direct_flag(t) as
    case
        when t is null then null
        when regexp_matches(t, '^0?[12](\D|$)') then true
        when regexp_matches(t, '^0?[09](\D|$)') then false
        when lower(t) in ('是', 'y', 'yes', 'true', 't', '√', '✓') then true
        when lower(t) in ('否', 'n', 'no', 'false', 'f', '×', '✗') then false
        when contains(t, '非直达') or contains(t, '不是直达') then false
        when contains(t, '直达') then true
    end;
create or replace temp macro ledger_book(b, account) as
    case
        when lower(b) in ('budget', 'b') or contains(b, '预算') then 'budget'
        when lower(b) in ('financial', 'finance', 'f') or contains(b, '财务') then 'financial'
        when left(account, 1) in ('6', '7', '8') then 'budget'
        when left(account, 1) in ('1', '2', '3', '4', '5') then 'financial'
    end;
"""

# A file whose values are written in Excel's text form, ="0001" (some systems export codes so,
# to keep Excel from dropping their leading zeros or reading them as numbers), is read with this
# ledger_trim: the text inside. Only such files pay for the test (ColumnMap.excel_text).
_EXCEL_TEXT_TRIM = r"""
create or replace temp macro ledger_trim(s) as
    ledger_trim_plain(case when s like '="%"' then substr(s, 3, length(s) - 3) else s end);
"""
_PLAIN_TRIM = "create or replace temp macro ledger_trim(s) as ledger_trim_plain(s);"


# Excel serials (45366 = 2024-03-15) count days from 1899-12-30; in a workbook saved with the 1904
# date system (Mac Excel's, workbookPr date1904; xlrd's datemode 1) from 1904-01-01, 1,462 days
# later. openpyxl and xlrd date the cells formatted as dates by the workbook's system; a date left
# a number (a General cell) or typed as text reaches the lookup as a serial, read by this.
def _serial_epoch(date1904: bool) -> str:
    return (f"create or replace temp macro ledger_serial_epoch() as "
            f"date '{'1904-01-01' if date1904 else '1899-12-30'}';")


DATE1904_NOTE = ("工作簿使用 1904 日期系统（Mac 版 Excel），数字形式的日期按 1904-01-01 起算 / the workbook "
                 "uses the 1904 date system (Mac Excel): dates written as numbers count from 1904-01-01")


def _in_1904_system(cmap: ColumnMap) -> ColumnMap:
    return _noting(dataclasses.replace(cmap, date1904=True), DATE1904_NOTE)
_EXCEL_TEXT = re.compile(r'\s*="[^"]*"\s*')


def _excel_text_inside(text: str | None) -> str | None:
    """The text inside Excel's text form ="…", as _EXCEL_TEXT_TRIM reads it; other text as it is."""
    if text is not None:
        stripped = text.strip()
        if stripped.startswith('="') and stripped.endswith('"') and len(stripped) >= 3:
            return stripped[2:-1]
    return text


# The trimmed text of every field of `source` (the scratch Parquet file of a CSV, the temporary
# table of an XLSX sheet, read_parquet). A CTE body: each pass below trims as it reads, and no
# trimmed copy is stored.
_TEXTS = r"""
select
    src.row_no,
    ledger_trim(src.voucher_no) as voucher_no,
    ledger_trim(src.line_no) as line_no,
    ledger_trim(src.posted_on) as posted_on,
    ledger_trim(src.book) as book,
    ledger_trim(src.account_code) as account_code,
    ledger_trim(src.account_name) as account_name,
    ledger_trim(src.summary) as summary,
    ledger_trim(src.debit) as debit,
    ledger_trim(src.credit) as credit,
    ledger_trim(src.function_code) as function_code,
    ledger_trim(src.economic_code) as economic_code,
    ledger_trim(src.project_code) as project_code,
    ledger_trim(src.purpose) as purpose,
    ledger_trim(src.fund_source) as fund_source,
    ledger_trim(src.direct_flag) as direct_flag,
    ledger_trim(src.budget_doc_no) as budget_doc_no,
    ledger_trim(src.payee) as payee
from ({source}) as src
"""


# Rows that are not voucher lines (see "Rows that are skipped" in the module docstring), but for
# the header repeated, which the date's lookup finds (_type_and_insert): a test here would cost
# every dated row a comparison.
_IS_SKIPPED = r"""
    -- a total row labelled in the voucher number's or the date's column (合计, 本月合计, 本年累计:
    -- a voucher list prints it in its first column); no voucher number or date begins so
    case when regexp_matches(coalesce(t.voucher_no, ''), '{balance_rows}')
              or regexp_matches(coalesce(t.posted_on, ''), '{balance_rows}') then true
         when t.posted_on is not null and t.voucher_no is not null then false
         -- a balance or total row of a detail ledger (明细账), dated but of no voucher: named at
         -- the start of its summary (BALANCE_ROWS)
         when t.posted_on is not null then regexp_matches(coalesce(t.summary, ''), '{balance_rows}')
         -- the lower row of a header on two rows, repeated on every page under its upper row
         -- (which the date's lookup finds, as it finds a header of one row): 借方 | 贷方 in the
         -- amount columns ($debit_heading, $credit_heading)
         when t.debit = $debit_heading and t.credit = $credit_heading then true
         -- nothing to book: an empty row, or one of text only (a signature line under the
         -- ledger, 制表人：… 审核：…, a note, a section heading)
         when t.account_code is null and t.debit is null and t.credit is null then true
         -- ... also when its labels run across the columns (制表人：张三 | 审核：李四 under 科目编码 |
         -- 记账：王五 under 借方), or a page's heading does (单位名称：… | 第2页 under 贷方): no date,
         -- no voucher number (or a label without digits where it would be), and no code or amount
         -- but text with a label's colon, or a page number
         when t.posted_on is null
              and (t.voucher_no is null or (regexp_matches(t.voucher_no, {label})
                                            and not regexp_matches(t.voucher_no, '[0-9]')))
              and coalesce(t.account_code, t.debit, t.credit) is not null
              and {no_code_or_amount} then true
         -- a subtotal or balance row
         when t.voucher_no is null
             then regexp_matches(concat_ws(' ', t.summary, t.account_code, t.account_name),
                                 '合\s*计|累\s*计|小\s*计|总\s*计|期初余额|年初余额|期末余额|上年结转|承前页|过次页')
         else false end"""
# The summaries that make a dated row without voucher number a detail ledger's balance or total
# (期初余额 on the first day, 本月合计 / 本年累计 at each month's end, 承前页 / 过次页 at a printed
# page's top and foot): at the start of the summary only, so a voucher line that lost its number
# ("支付3月补贴合计") is still quarantined, not passed over.
BALANCE_ROWS = (r"^[\s（(【\[]*(期初余额|年初余额|期末余额|上年结转|承前页|过次页|本月合计|本月累计|本年累计|"
                r"本期合计|本期累计|本期发生额?|合\s*计|累\s*计|小\s*计|总\s*计)")
# No code or amount in a row: each of those cells blank, a label's text (审核：李四), or a page
# number as an export laid out for printing heads each page with it (第2页, 第2页 共5页, 共5页 第2页,
# Page 2 of 5). Unlike notices.py's _PAGE, a number alone is not one: here it is an amount.
_LABEL = "'^[^0-9]{1,8}[:：]'"  # a label's text: a few characters, no digit, then a colon
_PAGE_NO = r"\s*[0-9０-９]+\s*"
_PAGE = (rf"'^[-－—–\s]*(?:第{_PAGE_NO}页(?:[,，/／]?\s*共{_PAGE_NO}页)?|共{_PAGE_NO}页[,，/／]?\s*第{_PAGE_NO}页"
         rf"|(?i:page){_PAGE_NO}(?:(?i:of){_PAGE_NO})?)[-－—–\s]*$'")
_NO_CODE_OR_AMOUNT = " and ".join(
    f"(t.{c} is null or regexp_matches(t.{c}, {_LABEL}) or regexp_matches(t.{c}, {_PAGE}))"
    for c in ("account_code", "debit", "credit"))
_IS_SKIPPED = (_IS_SKIPPED.replace("{balance_rows}", BALANCE_ROWS)
               .replace("{no_code_or_amount}", _NO_CODE_OR_AMOUNT).replace("{label}", _LABEL))

# The fields whose spellings repeat (a year has 366 days, a ledger a few hundred codes, purposes
# and document numbers): each distinct spelling is parsed once and joined back. One scan per
# field, each reading one column: cheaper than one scan feeding seven hash tables.
LOOKUP_FIELDS = ("posted_on", "account_code", "function_code", "economic_code", "direct_flag",
                 "purpose", "budget_doc_no")

_LOOKUP = r"""
create or replace temp table _ledger_lookup as
with vals as (
    {distinct_values}
)
select
    v.field,
    v.raw,
    case when v.field = 'posted_on' then ledger_date(v.raw) end as v_date,
    case v.field when 'account_code' then ledger_account(v.raw)
                 when 'function_code' then ledger_code(v.raw, 7)
                 when 'economic_code' then ledger_code(v.raw, 5)
                 when 'purpose' then purpose_key(v.raw)
                 when 'budget_doc_no' then doc_no_key(v.raw) end as v_code,
    case when v.field = 'direct_flag' then ledger_direct_flag(v.raw) end as v_flag,
    case v.field when 'function_code' then ledger_code_doubt(v.raw, 7)
                 when 'economic_code' then ledger_code_doubt(v.raw, 5) end as v_doubt
from vals as v
where v.raw is not null
"""


def _lookup_sql(source: str) -> str:
    distinct = "\n    union all\n    ".join(
        f"select distinct '{field}' as field, ledger_trim(src.{field}) as raw from ({source}) as src"
        for field in LOOKUP_FIELDS)  # field names are ours, not the file's
    return _LOOKUP.replace("{distinct_values}", distinct)


def _with_aux_items(cmap: ColumnMap, source: str) -> str:
    """`source` with each field read from a 辅助项 column (cmap.aux_labels) as its item of it:
    the cell trimmed (Excel's text form taken off), then the item taken out, in a query of its
    own, so that every pass trims a column, never the expression (macros expand textually)."""
    if not cmap.aux_labels:
        return source
    fields = ", ".join(
        f"{_aux_sql(f'ledger_trim(src.{f})', cmap.aux_labels[f])} as {f}" if f in cmap.aux_labels else f"src.{f}"
        for f in FIELDS)
    return f"select src.row_no, {fields} from ({source}) as src"


# The rows passed over, and how many of them hold some text (the outcome says so; empty,
# subtotal and balance rows go unmentioned). The filter reads two columns, and only the rare
# rows without a date or a voucher number are looked at whole.
_SKIPPED_ROWS = r"""
select count(*),
       count(*) filter (where t.posted_on is null and {no_code_or_amount}
                        and concat_ws('', t.voucher_no, t.line_no, t.book, t.account_code, t.account_name,
                                      t.summary, t.debit, t.credit,
                                      t.function_code, t.economic_code, t.project_code, t.purpose,
                                      t.fund_source, t.direct_flag, t.budget_doc_no, t.payee) <> '')
from ({texts}) as t
where (t.posted_on is null or t.voucher_no is null) and {is_skipped}
""".replace("{no_code_or_amount}", _NO_CODE_OR_AMOUNT)

# The header again, on every page of an export laid out for printing: rows whose date column
# holds the header's date heading. They fail to type (no date), so the insert leaves them out;
# they are not counted as rows to type, nor quarantined ($date_heading).
_HEADER_REPEATS = r"""
select count(*) from ({texts}) as t where t.posted_on = $date_heading
"""

# The insert (and, only when some rows are bad, the quarantine): every row of `source` typed
# through the lookup and, per field, why a value is unusable (null when it is fine); the text of
# a bad row's fields is kept for the quarantine message. A streaming pipeline (scan, hash-join
# probes into the small lookup, insert), so memory does not grow with the file.
_TYPED = r"""
with texts as ({texts}),
amounts as (
    select t.*, {amounts}
    from texts as t
    where not ({is_skipped})
),
joined as (
    select
        t.*,
        d.v_date as v_posted_on,
        a.v_code as v_account_code,
        fc.v_code as v_function_code,
        fc.v_doubt as d_function_code,
        ec.v_code as v_economic_code,
        ec.v_doubt as d_economic_code,
        df.v_flag as v_direct_flag,
        pk.v_code as v_purpose_key,
        dk.v_code as v_budget_doc_no
    from amounts as t
    left join _ledger_lookup as d on d.field = 'posted_on' and d.raw = t.posted_on
    left join _ledger_lookup as a on a.field = 'account_code' and a.raw = t.account_code
    left join _ledger_lookup as fc on fc.field = 'function_code' and fc.raw = t.function_code
    left join _ledger_lookup as ec on ec.field = 'economic_code' and ec.raw = t.economic_code
    left join _ledger_lookup as df on df.field = 'direct_flag' and df.raw = t.direct_flag
    left join _ledger_lookup as pk on pk.field = 'purpose' and pk.raw = t.purpose
    left join _ledger_lookup as dk on dk.field = 'budget_doc_no' and dk.raw = t.budget_doc_no
),
checked as (
    select
        p.*,
        case when p.voucher_no is null then '凭证号为空 / voucher number is blank' end as e_voucher_no,
        case when p.posted_on is null then '日期为空 / date is blank'
             -- 3/5/2024: day and month first, read neither way (March or May?)
             when p.v_posted_on is null and regexp_matches(p.posted_on, '^\d{1,2}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{4}$')
                 then '日期应为年在前（如 2024-03-05），日、月在前无法确定月份 / a date must put the year first '
                      || '(2024-03-05): with the day and month first, the month is not certain'
             when p.v_posted_on is null and regexp_matches(p.posted_on, '^\d{1,3}\s*[-/.年]')
                 then '日期的年份不是四位数，无法确定年份 / the year of the date is not written in four digits'
             when p.v_posted_on is null then '日期无法识别 / unparsable date' end as e_posted_on,
        case when p.account_code is null then '科目编码为空 / account code is blank'
             when p.v_account_code is null then '科目编码无法识别 / unparsable account code' end
            as e_account_code,
        {amount_errors},
        -- a path whose codes do not nest, or pieces that are not levels (ledger_code_doubt): which
        -- code is meant is not certain, and the reason says so
        case when p.function_code is not null and p.v_function_code is null
             then case p.d_function_code
                 when 'path' then '功能分类科目写成多级路径，但各级编码不是逐级细分（下一级应以上一级开头），无法确定是哪一个 / '
                                  || 'unparsable function code: a path of codes that do not nest (each should begin with '
                                  || 'the one before), so which is meant is not certain'
                 when 'levels' then '功能分类科目分段书写，但各段不是逐级的类、款、项（合起来依次为 3、5、7 位，如 221-01-07），'
                                    || '无法确定编码 / unparsable function code: written in pieces that are not its levels '
                                    || '(3, 5 and 7 digits as they add up, as in 221-01-07), so the code is not certain'
                 else '功能分类科目无法识别 / unparsable function code' end end as e_function_code,
        case when p.economic_code is not null and p.v_economic_code is null
             then case p.d_economic_code
                 when 'path' then '经济分类科目写成多级路径，但各级编码不是逐级细分（下一级应以上一级开头），无法确定是哪一个 / '
                                  || 'unparsable economic code: a path of codes that do not nest (each should begin with '
                                  || 'the one before), so which is meant is not certain'
                 when 'levels' then '经济分类科目分段书写，但各段不是逐级的类、款（合起来依次为 3、5 位，如 303-05），'
                                    || '无法确定编码 / unparsable economic code: written in pieces that are not its levels '
                                    || '(3 and 5 digits as they add up, as in 303-05), so the code is not certain'
                 else '经济分类科目无法识别 / unparsable economic code' end end as e_economic_code
    from joined as p
)
select
    k.row_no,
    coalesce(k.e_voucher_no, k.e_posted_on, k.e_account_code, k.e_debit, k.e_credit,
             k.e_function_code, k.e_economic_code) is null as is_valid,
    k.voucher_no,
    case when contains(k.line_no, '.') then regexp_replace(ledger_ascii(k.line_no), '\.0+$', '')
         else k.line_no end as line_no,
    k.v_posted_on as posted_on,
    ledger_book(k.book, k.v_account_code) as book,
    k.v_account_code as account_code,
    k.account_name,
    k.summary,
    k.v_debit as debit,
    k.v_credit as credit,
    k.v_function_code as function_code,
    k.function_code as function_code_raw,
    k.v_economic_code as economic_code,
    case when regexp_matches(k.project_code, '[\sa-z]')
         then upper(regexp_replace(k.project_code, '[\s\x{3000}]', '', 'g'))
         else k.project_code end as project_code,
    k.purpose,
    k.v_purpose_key as purpose_key,
    k.fund_source,
    k.v_direct_flag as direct_flag,
    k.direct_flag as direct_flag_raw,
    k.v_budget_doc_no as budget_doc_no,
    k.payee,
    k.e_voucher_no, k.e_posted_on, k.e_account_code, k.e_debit, k.e_credit, k.e_function_code,
    k.e_economic_code,
    k.posted_on as posted_on_text,
    k.account_code as account_code_text,
    k.debit as debit_text,
    k.credit as credit_text,
    k.economic_code as economic_code_text
from checked as k
"""

# The amounts (in `amounts`), and why one is unusable (in `checked`): debit and credit each in a
# column of its own ...
_AMOUNTS = "ledger_amount(t.debit) as v_debit, ledger_amount(t.credit) as v_credit"
_AMOUNT_ERRORS = r"""
        case when p.v_debit is null then '金额无法识别 / unparsable amount' end as e_debit,
        case when p.v_credit is null then '金额无法识别 / unparsable amount' end as e_credit"""
# ... or one amount (in debit) and its direction (in credit: SPLIT_BY). The amount is the line's
# debit or its credit, the other side 0; a direction that is neither 借 nor 贷 is quarantined.
_BY_DIRECTION = r"""
    case ledger_side(t.credit) when 'D' then ledger_amount(t.debit) when 'C' then 0 end as v_debit,
    case ledger_side(t.credit) when 'C' then ledger_amount(t.debit) when 'D' then 0 end as v_credit"""
_BY_DIRECTION_ERRORS = r"""
        case when ledger_amount(p.debit) is null then '金额无法识别 / unparsable amount' end as e_debit,
        case when p.credit is null then '借贷方向为空 / debit-credit direction is blank'
             when ledger_side(p.credit) is null
                 then '借贷方向无法识别（应为 {sides_zh}） / unparsable debit-credit direction ({sides_en} expected)'
        end as e_credit"""

# ledger_side for a file's direction column (set per file, as ledger_trim is): 借 / 贷 in words,
# or 1 and the file's number for 贷 (NUMERIC_CREDIT; any of them where the rows read under the
# header held none).
_WORD_SIDE = (
    "create or replace temp macro ledger_side(t) as case when lower(t) in ({debit_side}) then 'D' "
    "when lower(t) in ({credit_side}) then 'C' end;"
    .replace("{debit_side}", ", ".join(f"'{w}'" for w in DEBIT_SIDE))
    .replace("{credit_side}", ", ".join(f"'{w}'" for w in CREDIT_SIDE)))


def _numeric_side(credits: tuple[str, ...]) -> str:
    return (f"create or replace temp macro ledger_side(t) as case when try_cast(t as decimal(4, 1)) = "
            f"{NUMERIC_DEBIT} then 'D' when try_cast(t as decimal(4, 1)) in ({', '.join(credits)}) "
            f"then 'C' end;")


def _direction_errors(cmap: ColumnMap) -> str:
    if cmap.numeric_credit is None:
        zh, en = "借 或 贷", "借 or 贷"
    else:
        credits = " / ".join(cmap.numeric_credit)
        zh, en = f"1（借）或 {credits}（贷）", f"1 (debit) or {credits} (credit)"
    return _BY_DIRECTION_ERRORS.replace("{sides_zh}", zh).replace("{sides_en}", en)

_INSERT_LINES = r"""
insert into ledger_lines
with typed as ({typed})
select
    $file_id as file_id,
    v.row_no, v.voucher_no, v.line_no, v.posted_on, v.book, v.account_code, v.account_name,
    v.summary, v.debit, v.credit, v.function_code, v.function_code_raw, v.economic_code,
    v.project_code, v.purpose, v.purpose_key, v.fund_source, v.direct_flag, v.direct_flag_raw,
    v.budget_doc_no, v.payee
from typed as v
where v.is_valid
"""

# An export without a line-number column (分录号): each voucher's lines are numbered in the
# file's order, as the voucher prints them. Without it every line of a voucher had one key: the
# key suite and DUPLICATE_ENTRY read thirty households paid in one voucher as one line repeated.
# A voucher is its number within its month (vouchers are numbered afresh each month).
_NUMBER_LINES = r"""
update ledger_lines as l
set line_no = n.line_no
from (select row_no,
             cast(row_number() over (partition by voucher_no, year(posted_on), month(posted_on)
                                     order by row_no) as varchar) as line_no
      from ledger_lines
      where file_id = $file_id) as n
where l.file_id = $file_id and l.row_no = n.row_no
"""

_INSERT_QUARANTINE = r"""
insert into quarantine
with typed as ({typed}),
bad as (
    select * from typed where not is_valid and posted_on_text is distinct from $date_heading
),
cells as (
    select b.row_no, unnest([
        {'field': 'voucher_no', 'value': b.voucher_no, 'reason': b.e_voucher_no},
        {'field': 'posted_on', 'value': b.posted_on_text, 'reason': b.e_posted_on},
        {'field': 'account_code', 'value': b.account_code_text, 'reason': b.e_account_code},
        {'field': 'debit', 'value': b.debit_text, 'reason': b.e_debit},
        {'field': 'credit', 'value': b.credit_text, 'reason': b.e_credit},
        {'field': 'function_code', 'value': b.function_code_raw, 'reason': b.e_function_code},
        {'field': 'economic_code', 'value': b.economic_code_text, 'reason': b.e_economic_code}
    ]) as cell
    from bad as b
)
select $file_id as file_id, c.row_no, coalesce(h.heading, c.cell.field) as column_name,
       c.cell.value as value, c.cell.reason as reason
from cells as c
left join _ledger_headings as h on h.field = c.cell.field
where c.cell.reason is not null
"""

# Active ledger files whose posting-date range covers, or is covered by, the new file's.
_SUPERSEDE_CANDIDATES = r"""
with ranges as (
    select l.file_id, f.name, f.path, min(l.posted_on) as first_on, max(l.posted_on) as last_on
    from ledger_lines as l
    join input_files as f on f.file_id = l.file_id
    where f.kind = 'ledger' and f.status = 'loaded'
    group by l.file_id, f.name, f.path
),
new_file as (
    select * from ranges where file_id = $file_id
)
select
    r.file_id,
    (n.first_on <= r.first_on and n.last_on >= r.last_on) as new_covers_old,
    r.name as old_name,
    n.name as new_name,
    r.path = n.path as same_path,
    -- both begin in one month (the year's start): two year-to-date exports, one perhaps with its
    -- last vouchers voided; otherwise the covered one is a part (a month's export) of the other
    date_trunc('month', r.first_on) = date_trunc('month', n.first_on) as same_start,
    case when n.first_on <= r.first_on and n.last_on >= r.last_on then r.first_on else n.first_on end
        as covered_from
from ranges as r
cross join new_file as n
where r.file_id <> n.file_id
  and ((n.first_on <= r.first_on and n.last_on >= r.last_on)
       or (r.first_on <= n.first_on and r.last_on >= n.last_on))
order by r.file_id
"""

# How many lines of the covered file the covering one repeats whole: same voucher line key, date,
# account, amounts and payee. A year-to-date export repeats all of an earlier export's lines but
# the voided ones. Another unit's ledger shares voucher keys (units number vouchers alike: 记-1,
# 记-2 ...) but hardly a whole line, so it never replaces this one however its dates fall.
_LINES_REPEATED = r"""
select
    (select count(*) from ledger_lines where file_id = $covered) as lines,
    (select count(*)
     from ledger_lines as o
     where o.file_id = $covered
       and exists (
           select 1 from ledger_lines as n
           where n.file_id = $covering
             and n.voucher_no = o.voucher_no
             and n.line_no is not distinct from o.line_no
             and n.book is not distinct from o.book
             and n.posted_on = o.posted_on
             and n.account_code = o.account_code
             and n.debit = o.debit
             and n.credit = o.credit
             and n.payee is not distinct from o.payee)) as repeated
"""


# The same, but for the voucher number: the lines of an export whose system renumbered its
# vouchers since (断号整理 closes the gap a deleted voucher left). A line is known by its content
# alone here (date, book, account, amounts, payee, summary), so only lines naming a payee count,
# and each line of the covering file repeats one line of the covered file at most: thirty lines
# alike (a template's summary, 480 each) match thirty, not one. Another unit's ledger shares no
# payee and summary and amount on a date.
_LINES_REPEATED_RENUMBERED = r"""
with covered as (
    select book, posted_on, account_code, debit, credit, payee, summary, count(*) as n
    from ledger_lines
    where file_id = $covered and payee is not null
    group by all
),
covering as (
    select book, posted_on, account_code, debit, credit, payee, summary, count(*) as n
    from ledger_lines
    where file_id = $covering and payee is not null
    group by all
)
select coalesce(sum(least(o.n, c.n)), 0)
from covered as o
join covering as c
  on c.book is not distinct from o.book
 and c.posted_on = o.posted_on
 and c.account_code = o.account_code
 and c.debit = o.debit
 and c.credit = o.credit
 and c.payee = o.payee
 and c.summary is not distinct from o.summary
"""


# An export date in a file's name: ytd_20241130.csv, 账簿_2024-11-30.xlsx, 凭证2024年11月30日.csv.
_NAME_DATE = re.compile(r"(?<!\d)(20\d{2})(?:[-_.]?(0[1-9]|1[0-2])[-_.]?(0[1-9]|[12]\d|3[01])"
                        r"|年(\d{1,2})月(\d{1,2})日)(?!\d)")


def export_date(name: str) -> dt.date | None:
    """The date a file's name carries, when it carries exactly one (a name with a range of dates,
    or none, tells nothing)."""
    found = set()
    for m in _NAME_DATE.finditer(name):
        try:
            found.add(dt.date(int(m[1]), int(m[2] or m[4]), int(m[3] or m[5])))
        except ValueError:
            pass
    return found.pop() if len(found) == 1 else None


def _supersede(con, file_id: int) -> str | None:
    """Apply the year-to-date rule of the module docstring; return a note for the outcome."""
    notes = []
    candidates = con.execute(_SUPERSEDE_CANDIDATES, {"file_id": file_id}).fetchall()
    for old_id, new_covers_old, old_name, new_name, same_path, same_start, covered_from in candidates:
        old_file = f"{old_name}（#{old_id}）"
        covered, covering = (old_id, file_id) if new_covers_old else (file_id, old_id)
        lines, repeated = con.execute(_LINES_REPEATED, {"covered": covered, "covering": covering}).fetchone()
        new_date, old_date = export_date(new_name), export_date(old_name)
        renumbered = False
        if 2 * repeated <= lines and same_start and (same_path or (new_date and old_date and new_date != old_date)):
            # two year-to-date exports, by their path or their names' dates (without either, the
            # same payments under other voucher numbers are a double booking: DUPLICATE_ENTRY's):
            # renumbered since?
            again = con.execute(_LINES_REPEATED_RENUMBERED, {"covered": covered, "covering": covering}).fetchone()[0]
            renumbered = 2 * again > lines
        if 2 * repeated <= lines and not renumbered:
            if repeated:
                notes.append(
                    f"与文件 {old_file} 日期范围相互覆盖，但只有 {repeated}/{lines} 行相同：视为另一本账"
                    f"（另一单位？），两者都计入 / dates nest with file {old_file}'s but only {repeated} "
                    f"of {lines} lines are the same: kept as another ledger (another unit?), both counted")
            continue
        # The newer export wins (its last vouchers may have been voided, so that its dates are the
        # covered ones): the one whose name carries the later date when both names carry one; else
        # the one read later from the same path (the nightly export overwrites one file: what is
        # there now replaced what was read before); else the one whose dates cover the other's.
        # A part that begins later (a month's export beside the year to date) is never the newer
        # export, whatever its name or path: its lines are in the other, which stays counted.
        if not same_start:
            new_is_newer = bool(new_covers_old)
            zh_why = f"本文件只是其中自 {covered_from} 起的一段，所含的行该文件都有"
            en_why = f"this file is only its part from {covered_from}, whose lines it holds"
        elif new_date and old_date and new_date != old_date:
            new_is_newer = new_date > old_date
            zh_why = f"文件名日期 {max(new_date, old_date)} 晚于本文件的 {min(new_date, old_date)}"
            en_why = f"its name's date {max(new_date, old_date)} is later than this file's {min(new_date, old_date)}"
        elif same_path:
            new_is_newer = True  # file_id is the later load
            zh_why, en_why = "同一路径的文件，读入晚于本文件", "read later from the same path"
        else:
            new_is_newer = bool(new_covers_old)
            zh_why, en_why = "日期范围覆盖本文件", "its dates cover this file's"
        if renumbered:
            zh_why += "；凭证已重新编号"
            en_why += "; its vouchers renumbered"
        newer, older = (file_id, old_id) if new_is_newer else (old_id, file_id)
        newer_file = f"{new_name}（#{file_id}）" if new_is_newer else old_file
        con.execute(
            "update input_files set status = 'superseded', superseded_by = ?, message = ? where file_id = ?",
            [newer, f"被{'较新的' if same_start else ''}年初至今导出文件 {newer_file} 取代（{zh_why}），未计入 / "
                    f"superseded by file {newer_file}, {'a newer' if same_start else 'the'} year-to-date "
                    f"export ({en_why}); not counted", older])
        if new_is_newer:
            notes.append(f"取代文件 {old_file} / supersedes file {old_file}")
        else:
            notes.append(f"已被文件 {old_file} 取代（{zh_why}）/ superseded by file {old_file} ({en_why})")
            break
    return "; ".join(notes) or None


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        # a workbook or Parquet file saved under a text name: say what it is, not that its
        # encoding cannot be told
        head = _head(path, len(_OLE2_SIGNATURE))  # read once for the three signatures
        for signature, kind in ((b"PK\x03\x04", ".xlsx"), (_OLE2_SIGNATURE, ".xls"), (b"PAR1", ".parquet")):
            if head.startswith(signature):
                what = {".xlsx": "XLSX 工作簿", ".xls": "Excel 97-2003 工作簿", ".parquet": "Parquet 文件"}[kind]
                what_en = {".xlsx": "an XLSX workbook", ".xls": "an Excel 97-2003 workbook",
                           ".parquet": "a Parquet file"}[kind]
                raise InputError(path, f"这是{what}，扩展名却是 {suffix}，请改名为 {kind}",
                                 f"{what_en} named {suffix}; rename it to {kind}")
        return "csv"
    if suffix in (".xlsx", ".xlsm"):
        # an Excel 97-2003 workbook named .xlsx, or a password-protected .xlsx (which Excel keeps
        # in the 97-2003 container): _read_xls reads the one and names the other. A text or web
        # page saved under the name (no zip inside) is read as what it is, as an `.xls` is
        if _starts_with(path, _OLE2_SIGNATURE):
            return "xls"
        try:
            empty = path.stat().st_size == 0
        except OSError:
            return "xlsx"  # the XLSX reader names the error
        if empty or _starts_with(path, b"PK"):
            return "xlsx"  # a zip, damaged or not, or nothing at all: the XLSX reader says why
        return _xls_format(path, suffix)
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".xls", ".et"):
        return _xls_format(path, suffix)
    if suffix in (".htm", ".html"):
        return "html"
    if suffix == ".xml":
        return _xls_format(path, suffix)  # an Excel 2003 XML Spreadsheet, or it says what it is
    if suffix in (".zip", ".rar", ".7z", ".gz", ".tar"):
        raise InputError(path, f"这是压缩文件（{suffix}），请先解压，把其中的导出文件放入 ledgers 目录",
                         f"an archive ({suffix}): unpack it and put the export inside into the "
                         f"ledgers folder")
    shown = suffix or "（无扩展名）"
    raise InputError(path, f"不支持的文件类型 {shown}（支持 .csv、.txt、.xlsx、.xls、.html、.xml、.parquet）",
                     f"unsupported file type {suffix or '(none)'} (use .csv, .txt, .xlsx, .xls, .html, .xml or "
                     f".parquet)")


_OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 (and WPS .et) workbooks


def _is_csv(path: Path) -> bool:
    """Whether the file is read as CSV text (its load then counts its newlines, line_ends)."""
    try:
        return _format_of(path) == "csv"
    except InputError:
        return False  # the load rejects it


def _head(path: Path, size: int) -> bytes:
    """The file's first bytes; none when it cannot be read (the reader that follows names the error)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError:
        return b""


def _starts_with(path: Path, signature: bytes) -> bool:
    return _head(path, len(signature)) == signature


HTML_SNIFF_BYTES = 64 << 10  # a page's <head> (styles, scripts) may come before its <table>


def _xls_format(path: Path, suffix: str) -> str:
    """An `.xls` / `.et` export by what it holds: Excel's own 97-2003 format ("xls"), the
    tab-separated text that many accounting systems' "export to Excel" writes under that name
    ("csv"), or the web page holding a table that web systems write so ("html"). An XML
    spreadsheet or an XLSX workbook misnamed cannot be read, and the message says what to do."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HTML_SNIFF_BYTES)
    except OSError as exc:
        raise InputError(path, f"文件无法读取：{exc.strerror or exc}",
                         f"the file cannot be read: {exc.strerror or exc}") from exc
    if head.startswith(_OLE2_SIGNATURE):
        return "xls"
    if head.startswith(b"PK\x03\x04"):
        raise InputError(path, f"这是 XLSX 工作簿，扩展名却是 {suffix}，请改名为 .xlsx",
                         f"an XLSX workbook named {suffix}; rename it to .xlsx")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 (an XML spreadsheet saved so): sniff its text
        head = head[:len(head) // 2 * 2].decode("utf-16", "ignore").encode("utf-8")
    text = head.lstrip(b"\xef\xbb\xbf\xff\xfe \t\r\n").lower()
    if text.startswith(b"<"):
        if SPREADSHEET_NS.encode() in text:
            return "xml"  # Excel 2003 XML Spreadsheet, as programs write "Excel" without a library
        if b"<table" in text or b"<html" in text or b"<!doctype html" in text:
            return "html"  # a web system's "export to Excel": a page holding a table
        raise InputError(path, f"这是 XML 格式的导出，但不是 Excel 2003 XML 表格，扩展名却是 {suffix}，请在 "
                               f"Excel 中打开后另存为 .xlsx 或 CSV",
                         f"an XML export, not an Excel 2003 XML spreadsheet, named {suffix}; "
                         f"open it in Excel and save it as .xlsx or CSV")
    return "csv"  # text: the CSV reader finds its encoding and delimiter, tab included


class RaggedLineError(InputError):
    """DuckDB's reader refused a CSV for a line of another width than the header's."""


_WIDTH_ERROR = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")  # DuckDB's words


def _read_or_reject(con, sql: str, params: dict, path: Path, fmt: str, enc: str | None) -> None:
    """Run a statement that reads the file; a reader error rejects the file, naming its line."""
    try:
        con.execute(sql, params)
    except duckdb.OutOfMemoryException:
        raise
    except duckdb.Error as exc:
        if out_of_disk(exc):
            raise  # the disk the text is written to, not the file: the run stops and says so
        line = re.search(r"on Line: (\d+)", str(exc))
        width = _WIDTH_ERROR.search(str(exc))
        if line and width:
            original = re.search(r"Original Line:\s*(.*)", str(exc))
            text = original.group(1).strip()[:80] if original else ""
            raise RaggedLineError(
                path,
                f"文件第{line.group(1)}行有 {width.group(2)} 列，表头有 {width.group(1)} 列（该行被截断，或多了"
                f"分隔符）：“{text}”，整个文件未加载，请更正该行后重新导出或加载",
                f"line {line.group(1)} of the file has {width.group(2)} columns where the header has "
                f"{width.group(1)} (the row is cut short, or has a delimiter too many): {text!r}; the "
                f"file is not loaded: correct the line, or export again") from exc
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip() and not ln.startswith("LINE ")]
        detail = " ".join(lines[:3])[:400]
        where_zh = f"文件第{line.group(1)}行附近：" if line else ""
        where_en = f"near line {line.group(1)} of the file: " if line else ""
        what = f"CSV（{enc}）" if fmt == "csv" else fmt.upper()
        raise InputError(path, f"{what} 文件无法读取，{where_zh}{detail}",
                         f"the {fmt.upper()} file cannot be read ({enc or fmt}), {where_en}{detail}") from exc


@dataclass(frozen=True)
class LineEnds:
    """What a file's bytes say of its lines: its newline bytes (0x0A), and how many of them end
    the empty lines at its very end (nothing follows them). Counted beside the hash."""

    newlines: int
    trailing_empty: int
    ends_with_newline: bool

    def physical_lines(self) -> int:
        """Lines up to the last one that holds something."""
        return self.newlines + (0 if self.ends_with_newline else 1) - self.trailing_empty


def line_ends(path: Path) -> LineEnds:
    """Count a file's newline bytes (for a CSV: see _blank_line_shift). numpy compares 16 or 32
    bytes at a time: 0.13 s for a 2M-line file against 0.24 s by bytes.count, reading included."""
    newlines = 0
    buf = bytearray(CHUNK_BYTES)
    bytes_ = np.frombuffer(buf, np.uint8)
    tail = b""
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            newlines += int(np.count_nonzero(bytes_[:n] == 0x0A))
            tail = (tail + bytes(buf[max(0, n - 64):n]))[-64:]
    return _line_ends(newlines, tail)


def _line_ends(newlines: int, tail: bytes) -> LineEnds:
    """LineEnds from the count of newlines and the file's last bytes (a run of empty lines
    longer than them counts as lines: the caller then reads the file, as for one between rows)."""
    end = tail.rstrip(b"\r\n")
    trailing = tail[len(end):].count(b"\n")
    return LineEnds(newlines, max(0, trailing - 1), tail.endswith(b"\n"))


# A CSV's empty lines: DuckDB's reader passes over them, so the rows after one would be numbered
# one less than the row a user sees in Excel (which shows the empty line as an empty row) and
# counts under the header ("数据第N行"). A file without them (every export seen) costs a count of
# its newline bytes beside the hash: its lines are then the header's and the rows read. Otherwise
# the transcoded text is searched for empty lines (_empty_lines). When they are all the extra
# lines, each row is numbered up by those above it; when some extra lines are inside quoted cells
# too, Python's csv module reads the file to tell which empty lines fall between rows.
_EMPTY_LINE = re.compile(rb"\n(?=\r?\n)")  # a newline that an empty line follows


def _empty_lines(path: str) -> tuple[list[int], LineEnds]:
    """The 0-based indices of a file's empty lines, and its line ends."""
    found: list[int] = []
    newlines = 0
    carry = tail = b""
    with open(path, "rb") as fh:
        while True:
            data = fh.read(CHUNK_BYTES)
            buf = carry + data
            limit = len(buf) if not data else max(0, len(buf) - 2)  # the lookahead needs 2 bytes
            at = 0
            for m in _EMPTY_LINE.finditer(buf):
                if m.start() >= limit:
                    break
                newlines += buf.count(b"\n", at, m.start())
                at = m.start()
                found.append(newlines + 1)
            newlines += buf.count(b"\n", at, limit)
            carry = buf[limit:]
            tail = (tail + data[-64:])[-64:]
            if not data:
                break
    return found, _line_ends(newlines, tail)


def _blank_line_shift(utf8_path: str, delim: str, cmap: ColumnMap, rows_read: int,
                      ends: LineEnds | None, ragged: list[int] = ()) -> dict[int, int] | None:
    """For each count of rows read before an empty line between rows (or a ragged line passed
    over: its 0-based index), the lines not read up to there; empty when there are none
    (DuckDB's row numbers stand). None when ragged lines cannot be placed among the rows: cells
    of several lines, where DuckDB numbers records rather than lines."""
    above = cmap.header_index + 1  # the header's line and those above it (title rows)
    if ends is not None and not ragged and ends.physical_lines() == above + rows_read:
        return {}
    empty, ends = _empty_lines(utf8_path)
    empty = [i for i in empty if above <= i < ends.physical_lines()]  # under the header, rows after
    unread = sorted({*empty, *ragged})
    if not unread:
        return {}  # the extra lines are inside quoted cells
    if ends.physical_lines() - above - rows_read == len(unread):
        before = [i - above - k for k, i in enumerate(unread)]
    elif ragged:
        return None
    else:
        before = _empty_records(utf8_path, delim, above, rows_read) or []
    return {b: k for k, b in enumerate(before, start=1)}


# Up to this many places where rows are numbered up, the number is a CASE of nested comparisons
# (log2 of them a row); beyond, an ASOF join to a table of them, which sorts the file's rows
# (a 2M-line load took twice as long).
SHIFT_CASE_LIMIT = 4096
BLANK_LINES_TABLE = "_ledger_blank_lines"


def _shifted_row_no(row: str, shift: dict[int, int]) -> str:
    """SQL for row + the empty lines above it: shift maps rows before an empty line (ascending)
    to the empty lines up to there."""
    bounds, counts = list(shift), list(shift.values())

    def tree(lo: int, hi: int, base: int) -> str:
        if lo == hi:
            return str(base)
        mid = (lo + hi) // 2
        return (f"case when {row} > {bounds[mid]} then {tree(mid + 1, hi, counts[mid])} "
                f"else {tree(lo, mid, base)} end")

    return f"{row} + {tree(0, len(bounds), 0)}"


def _records_under_header(text_path: str, delim: str, above: int) -> Iterator[list[str]]:
    """The records of a CSV (UTF-8) under its first `above` ones, as Python's csv module reads
    them (an empty line is an empty record); csv.Error where it cannot."""
    csv.field_size_limit(max(csv.field_size_limit(), 2 * CSV_MAX_LINE_BYTES))
    with open(text_path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=delim, quotechar='"')
        for _ in range(above):
            next(reader, None)
        yield from reader


def _empty_records(utf8_path: str, delim: str, above: int, rows_read: int) -> list[int] | None:
    """For each empty line between rows, the rows before it, read by Python's csv module (None
    when it does not read the rows DuckDB did)."""
    before: list[int] = []
    read = 0
    try:
        for record in _records_under_header(utf8_path, delim, above):
            if record:
                read += 1
            else:
                before.append(read)
    except csv.Error:
        return None
    if read != rows_read:
        return None
    return [b for b in before if b < read]  # empty lines at the end shift nothing


def _load_one(con, path: Path, sha: str, preset: str | None, encoding: str | None,
              presets_file: Path | None, workdir: Path, on_read=None,
              transcoded: str | None = None, ends: LineEnds | None = None) -> FileOutcome:
    fmt = _format_of(path)
    presets = load_presets(_user_preset_files(path, presets_file))
    enc = None
    if fmt == "csv":
        enc = _normalise_encoding(path, encoding) if encoding else detect_encoding(path)
    con.execute(_MACROS)
    with memory_limit(con, LOAD_MEMORY_LIMIT):
        return _load_in_transaction(con, path, sha, fmt, enc, presets, preset, workdir, on_read,
                                    transcoded, ends)


# The scratch Parquet file a CSV's text is read into (see the module docstring), in the load's
# workdir. Written in file order, DuckDB holds each thread's row groups until those before them
# are out: row groups of 32,768 rows (not 122,880) keep a load's peak memory below what the
# scratch table took (a 10M-line load 551 MiB against 688, 1M 371-380 MiB against 380-451).
SCRATCH_TEXT = "ledger-text.parquet"
SCRATCH_ROW_GROUP = 32_768
UTF8_COPY = "ledger-utf8.csv"  # a CSV in another encoding, transcoded, in the load's workdir
LOAD_FOLDER_PREFIX = "recon-ledger-"  # a load's workdir in the store's spill folder


def _one_line_end(src: Path, workdir: Path) -> tuple[Path, str] | None:
    """_lines_ending_in_lf with the load's note, as _blank_lines_emptied answers (None for the
    copy it made itself up front, see _read_csv)."""
    lf = None if src == workdir / LF_COPY else _lines_ending_in_lf(src, workdir)
    return None if lf is None else (lf, NEWLINES_NOTE)


def _read_mended(con, copy: str, reader_params: dict, cmap: ColumnMap, path: Path, fmt: str,
                 enc: str | None, workdir: Path, refused: InputError
                 ) -> tuple[dict, ColumnMap, list[_Ragged], InputError | None]:
    """Read a CSV that DuckDB refused into the scratch file again from copies mended one way and
    then the other (see _blank_lines_emptied, _lines_ending_in_lf), each note added as it is
    read, and at last without its lines of another width than the header's (returned, with the
    refusal that passing them over answered: see _read_passing_ragged_lines); the last refusal
    when none is read."""
    mended = Path(reader_params["path"])
    notes: list[str] = []
    for step in (_blank_lines_emptied, _one_line_end):
        made = step(mended, workdir)
        if made is None:
            continue
        mended, notes = made[0], notes + [made[1]]
        reader_params = {**reader_params, "path": str(mended)}
        try:
            _read_or_reject(con, copy, reader_params, path, fmt, enc)
        except InputError as again:
            refused = again
            continue
        for note in notes:
            cmap = _noting(cmap, note)
        return reader_params, cmap, [], None
    ragged = _read_passing_ragged_lines(con, copy, reader_params, cmap.width, refused)
    for note in notes:
        cmap = _noting(cmap, note)
    return reader_params, cmap, ragged, refused


# A row of another width than the header's (a delimiter typed into a cell unquoted, as in 某公司,
# 北京分公司; a row cut short): DuckDB's reader refuses the whole file for it. Where a few such rows
# are all it refuses, the file is read without them, and each is quarantined whole, named by its
# row and shown as written (INPUT_ROW_INVALID): one bad row no longer holds back a night's
# reconciliation of the rest, and its money is reported as not counted, like that of a row whose
# amount does not parse. Many such rows (more than RAGGED_MAX, or one row in RAGGED_SHARE) say the
# file is not what its header says: it is refused whole, as before. So is a file with cells of
# several lines, where DuckDB's line numbers are not the file's (_blank_line_shift), and a file
# that stops inside its last row, with no line end (cut off by a full disk: the rows that should
# follow are lost, and one quarantined row would hide that).
RAGGED_MAX = 100
RAGGED_SHARE = 10
RAGGED_COLUMN = "（整行）"
_REJECTS = ("_ledger_rejects", "_ledger_reject_scans")
_STRICT = "strict_mode = true,"


@dataclass(frozen=True)
class _Ragged:
    line: int       # the line of the file (1-based), as DuckDB's reader numbers it
    found: int      # its columns
    expected: int   # the header's
    text: str       # the line as written


def _read_passing_ragged_lines(con, copy: str, reader_params: dict, width: int,
                               refused: InputError) -> list[_Ragged]:
    """Read the CSV into the scratch file without its lines of another width than the header's,
    when they are all DuckDB refused and few; those lines. Else the refusal."""
    if not isinstance(refused, RaggedLineError):
        raise refused
    table, scan = _REJECTS
    # a row cut short is one error per column it lacks: room for that many of each line
    lenient = copy.replace(_STRICT, f"{_STRICT} store_rejects = true, rejects_table = '{table}', "
                                    f"rejects_scan = '{scan}', "
                                    f"rejects_limit = {(RAGGED_MAX + 1) * (width + 1)},", 1)
    try:
        con.execute(lenient, reader_params)
        rows = con.execute(f"select line, error_type, error_message, csv_line from {table} order by line").fetchall()
    except duckdb.Error:
        raise refused from None
    finally:
        for name in _REJECTS:
            con.execute(f"drop table if exists {name}")
    lines: dict[int, _Ragged] = {}
    for line, kind, message, text in rows:
        m = _WIDTH_ERROR.search(message or "")
        if kind not in ("MISSING COLUMNS", "TOO MANY COLUMNS") or m is None:
            raise refused
        found = int(m.group(2))
        if line not in lines or found < lines[line].found:  # the first of a short row's errors
            lines[line] = _Ragged(int(line), found, int(m.group(1)), (text or "").strip("\r\n"))
    if not lines or len(lines) > RAGGED_MAX:
        raise refused
    ragged = sorted(lines.values(), key=lambda r: r.line)
    if ragged[-1].found < ragged[-1].expected and _cut_off_in(reader_params["path"], ragged[-1].text):
        raise refused  # the file stops inside its last row (a full disk): the rows after it are lost
    return ragged


def _cut_off_in(path: str, text: str) -> bool:
    """Whether the file stops inside the line `text`: its last line, with no line end after it."""
    line = text.encode("utf-8")
    with open(path, "rb") as fh:
        fh.seek(max(0, os.path.getsize(path) - len(line) - 1))
        tail = fh.read()  # the line and the byte before it
    return tail.endswith(line) and (len(tail) == len(line) or tail[0] in b"\r\n")


def _ragged_note(ragged: list[_Ragged]) -> str:
    rows = "、".join(str(r.line) for r in ragged[:5]) + ("…" if len(ragged) > 5 else "")
    return (f"文件第{rows}行共 {len(ragged)} 行的列数与表头不同，整行隔离，其余各行照常读取 / "
            f"{len(ragged)} line(s) of the file (line {rows.replace('、', ', ')}) have another number "
            f"of columns than the header: each quarantined whole, the other rows read")


def _load_in_transaction(con, path: Path, sha: str, fmt: str, enc: str | None, presets: Presets,
                         preset: str | None, workdir: Path, on_read=None,
                         transcoded: str | None = None, ends: LineEnds | None = None) -> FileOutcome:
    # A CSV's rows are numbered by their place in the scratch Parquet file, which follows the file
    # only while preserve_insertion_order is on. The store's default (false) is restored whatever
    # happens, outside the transaction so an aborted one can't block it.
    con.execute("set preserve_insertion_order = true")
    # A reader's row estimate can be far off (a CSV reader has none), and the optimizer may then
    # take the file for the small side of a join and build a hash table of all of it. The joins
    # below are written with the file's rows as the probe side and the lookup as the build side,
    # and are kept that way. The connection's own set (the store's, DISABLED_OPTIMIZERS) is put
    # back after the load.
    own_optimizers = con.execute("select current_setting('disabled_optimizers')").fetchone()[0]
    con.execute("set disabled_optimizers = '"
                + ",".join(name for name in (own_optimizers, "join_order", "build_side_probe_side") if name)
                + "'")
    ragged: list[_Ragged] = []  # a CSV's lines of another width than the header's, passed over
    refusal: InputError | None = None  # DuckDB's refusal of the file, when ragged lines were
    try:
        if fmt == "csv":
            cmap, reader, reader_params = _read_csv(path, enc, presets, preset, workdir, transcoded)
            one_line, joined = _one_line_header(reader_params["path"], cmap.header_index + 1, workdir)
            if joined:
                reader_params = {**reader_params, "path": one_line}
                if ends is not None:
                    ends = LineEnds(ends.newlines - joined, ends.trailing_empty, ends.ends_with_newline)
            footer = _footer(reader_params["path"], reader_params["delim"], cmap.width)
            if footer is not None:
                reader_params = {**reader_params,
                                 "path": _without_footer(reader_params["path"], footer, workdir)}
                cmap = _noting(cmap, f"文件末尾 {footer.lines} 行只有文字，列数与表头不同（如“{footer.first[:40]}”："
                                     f"表尾签字、注释等），不作为凭证行读取 / {footer.lines} line(s) at the end "
                                     f"hold only text, not in the header's columns (such as "
                                     f"{footer.first[:40]!r}: signatures, notes): not read as voucher lines")
                if ends is not None:
                    ends = LineEnds(ends.newlines - footer.newlines, 0, True)
            # Read in parallel into the scratch Parquet file, in file order.
            scratch = str(workdir / SCRATCH_TEXT).replace("'", "''")
            if on_read is not None:
                on_read()
            if cmap.excel_text:  # the copy joins 凭证字 to 凭证号 (_voucher_sql), trimming as it goes
                con.execute(_EXCEL_TEXT_TRIM)
            copy = (f"copy ({reader}) to '{scratch}' (format parquet, compression lz4_raw, "
                    f"row_group_size {SCRATCH_ROW_GROUP})")
            try:
                _read_or_reject(con, copy, reader_params, path, fmt, enc)
            except InputError as refused:
                # Read again from a copy whose lines of blanks only are empty, and then from one
                # whose lines all end in \n, when they end in more than one way below the first
                # lines; the file is refused as DuckDB last refused it
                reader_params, cmap, ragged, refusal = _read_mended(con, copy, reader_params, cmap, path,
                                                                    fmt, enc, workdir, refused)
            rows_read = con.execute(f"select count(*) from read_parquet('{scratch}')").fetchone()[0]
            if ragged and len(ragged) * RAGGED_SHARE > rows_read + len(ragged):
                raise refusal
            if rows_read == 0:
                _refuse_unread_lines(path, reader_params["path"], reader_params["delim"], cmap.header_index + 1)
            shift = _blank_line_shift(reader_params["path"], reader_params["delim"], cmap, rows_read, ends,
                                      [r.line - 1 for r in ragged])
            if shift is None:
                raise refusal
            if ragged:
                cmap = _noting(cmap, _ragged_note(ragged))
            if len(shift) > SHIFT_CASE_LIMIT:
                con.execute(f"create or replace temp table {BLANK_LINES_TABLE} "
                            f"(rows_before bigint, blank_lines bigint)")
                con.executemany(f"insert into {BLANK_LINES_TABLE} values (?, ?)", list(shift.items()))
                source = (f"select t.file_row_number + 1 + coalesce(b.blank_lines, 0) as row_no, "
                          f"{', '.join('t.' + f for f in FIELDS)} "
                          f"from read_parquet('{scratch}', file_row_number = true) as t "
                          f"asof left join {BLANK_LINES_TABLE} as b "
                          f"on t.file_row_number + 1 > b.rows_before")
            elif shift:
                source = (f"select {_shifted_row_no('(file_row_number + 1)', shift)} as row_no, "
                          f"{', '.join(FIELDS)} "
                          f"from read_parquet('{scratch}', file_row_number = true)")
            else:
                source = (f"select file_row_number + 1 as row_no, {', '.join(FIELDS)} "
                          f"from read_parquet('{scratch}', file_row_number = true)")
            params = {}
        con.execute("begin transaction")
        try:
            if fmt in ("xlsx", "xls", "html", "xml"):
                sheets: list[tuple[str | None, FileOutcome]] = []

                def each(cmap: ColumnMap, source: str, params: dict, title: str | None) -> None:
                    if on_read is not None and not sheets:
                        on_read()
                    # each sheet typed as soon as it is read: the next one reuses _ledger_raw
                    sheet = None if title is None else (title, len(sheets) + 1)
                    sheets.append((title, _type_and_insert(con, path, sha, fmt, enc, cmap, source,
                                                           params, sheet=sheet)))

                read = {"xlsx": _read_xlsx, "xls": _read_xls, "html": _read_html,
                        "xml": _read_xml_spreadsheet}[fmt]
                read(con, path, presets, preset, each)
                outcome = sheets[0][1] if len(sheets) == 1 else _register_workbook(con, path, sha, fmt, sheets)
            else:
                if fmt == "parquet":
                    cmap, source, params = _read_parquet(con, path, presets, preset)
                    if on_read is not None:
                        on_read()
                outcome = _type_and_insert(con, path, sha, fmt, enc, cmap, source, params,
                                           ragged=[(r.line - cmap.header_index - 1, r) for r in ragged])
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        for table in ("_ledger_raw", "_ledger_lookup", "_ledger_headings", BLANK_LINES_TABLE):
            con.execute(f"drop table if exists {table}")
        con.execute("set preserve_insertion_order = false")
        con.execute(f"set disabled_optimizers = '{own_optimizers}'")
    return outcome


def _type_and_insert(con, path: Path, sha: str, fmt: str, enc: str | None, cmap: ColumnMap,
                     source: str, params: dict, sheet: tuple[str, int] | None = None,
                     ragged: list[tuple[int, _Ragged]] = ()) -> FileOutcome:
    """Type the rows of `source` into ledger_lines and quarantine; register the file. sheet:
    (title, number) of one of a workbook's ledger sheets, registered as a file of its own.
    ragged: rows of a CSV not read for their width (row number, line), quarantined whole."""
    source = _with_aux_items(cmap, source)
    texts = _TEXTS.replace("{source}", source)
    typed = (_TYPED.replace("{texts}", texts).replace("{is_skipped}", _IS_SKIPPED)
             .replace("{amounts}", _BY_DIRECTION if cmap.by_direction else _AMOUNTS)
             .replace("{amount_errors}", _direction_errors(cmap) if cmap.by_direction else _AMOUNT_ERRORS))
    notes = [cmap.note]
    if cmap.by_direction:
        if cmap.numeric_credit is None:
            zh = en = ""
        else:
            credits = " / ".join(cmap.numeric_credit)
            zh, en = f"（1 为借，{credits} 为贷）", f" (1 debit, {credits} credit)"
        notes.append(f"金额列“{cmap.headings['debit']}”按借贷方向列“{cmap.headings['credit']}”{zh}记为借方或贷方 / "
                     f"the amount column {cmap.headings['debit']!r} read as debit or credit by the "
                     f"direction column {cmap.headings['credit']!r}{en}")
    con.execute(_EXCEL_TEXT_TRIM if cmap.excel_text else _PLAIN_TRIM)  # per file, or sheet
    con.execute(_serial_epoch(cmap.date1904))
    con.execute(_WORD_SIDE if cmap.numeric_credit is None else _numeric_side(cmap.numeric_credit))
    if cmap.aux_labels:
        aux = "、".join(FIELD_ZH[f] for f in cmap.aux_labels)
        aux_en = ", ".join(cmap.aux_labels)
        notes.append(f"{aux} 从辅助核算列读出 / {aux_en} read from the column of auxiliary items")
    if cmap.excel_text:
        notes.append('Excel 文本写法 ="…" 按引号内的文本读取 / values in Excel\'s text form ="…" read '
                     'as the text inside')
    _read_or_reject(con, _lookup_sql(source), params, path, fmt, enc)
    skip = {"debit_heading": cmap.headings["debit"], "credit_heading": cmap.headings["credit"]}  # _IS_SKIPPED
    rows = con.execute(f"select count(*) from ({source}) as s", params).fetchone()[0]
    con.execute("create or replace temp table _ledger_headings (field varchar, heading varchar)")
    con.executemany("insert into _ledger_headings values (?, ?)", list(cmap.headings.items()))
    file_id = register_file(con, path, sha if sheet is None else f"{sha}#{sheet[1]}", "ledger", "loaded",
                            fmt=fmt, encoding=enc, preset=cmap.preset,
                            sheet=None if sheet is None else sheet[0])
    loaded = con.execute(_INSERT_LINES.replace("{typed}", typed),
                         {**params, **skip, "file_id": file_id}).fetchone()[0]
    if "line_no" not in cmap.columns and loaded:
        con.execute(_NUMBER_LINES, {"file_id": file_id})
        notes.append("文件没有分录号列，按每张凭证内的行序编号 / no line-number column: lines numbered "
                     "within each voucher in the file's order")
    # Every row a voucher line (every export seen): none skipped, none bad. Only otherwise are
    # the skipped rows counted (a scan of the rows' dates and voucher numbers: 0.2-0.5 s a 2M
    # file), and the rows typed again for the bad ones.
    heading = {"date_heading": cmap.headings["posted_on"]}
    data_rows = loaded
    if loaded < rows:
        skipped, text_only = con.execute(
            _SKIPPED_ROWS.replace("{texts}", texts).replace("{is_skipped}", _IS_SKIPPED),
            {**params, **skip}).fetchone()
        data_rows = rows - skipped
        headers = 0
        if con.execute("select count(*) from _ledger_lookup where field = 'posted_on' and raw = $date_heading",
                       heading).fetchone()[0]:  # a spelling of the date column: looked for only then
            headers = con.execute(_HEADER_REPEATS.replace("{texts}", texts), {**params, **heading}).fetchone()[0]
            data_rows -= headers
        if text_only:
            notes.append(f"{text_only:,} 行只有文字，没有日期、科目和金额（表尾签字、注释等），不作为凭证行读取 / "
                         f"{text_only:,} rows hold only text, no date, account or amount (signatures, "
                         f"notes): not read as voucher lines")
        if headers:
            notes.append(f"表头在文件中又出现 {headers:,} 次（按页打印的导出），不作为凭证行读取 / the header "
                         f"appears {headers:,} more times (an export laid out in pages): not read as "
                         f"voucher lines")
    bad_rows = 0
    if loaded < data_rows:  # only then are the rows typed again, for the bad ones
        con.execute(_INSERT_QUARANTINE.replace("{typed}", typed),
                    {**params, **skip, **heading, "file_id": file_id})
    if ragged:
        con.executemany("insert into quarantine values (?, ?, ?, ?, ?)", [
            [file_id, row_no, RAGGED_COLUMN, r.text[:200],
             f"该行有 {r.found} 列，表头有 {r.expected} 列（单元格中多了分隔符，或该行被截断），整行未读取 / the row "
             f"has {r.found} columns where the header has {r.expected} (a delimiter inside a cell, or the "
             f"row cut short): not read"] for row_no, r in ragged])
    if loaded < data_rows or ragged:
        bad_rows = con.execute("select count(distinct row_no) from quarantine where file_id = ?",
                               [file_id]).fetchone()[0]
    con.execute("update input_files set rows_loaded = ?, rows_quarantined = ? where file_id = ?",
                [loaded, bad_rows, file_id])
    # kept with the file (the reports list it): whether it supersedes another (or, if it was
    # superseded, why), and what reading changed
    message = con.execute(
        "update input_files set message = nullif(concat_ws('; ', coalesce(message, ?), ?), '') "
        "where file_id = ? returning message",
        [_supersede(con, file_id), "; ".join(n for n in notes if n) or None, file_id]).fetchone()[0]
    return FileOutcome(str(path), "ledger", "loaded", file_id, sha, loaded, bad_rows, message)


def _register_workbook(con, path: Path, sha: str, fmt: str,
                       sheets: list[tuple[str, FileOutcome]]) -> FileOutcome:
    """Register a workbook whose ledger is on several sheets (one per month, as a unit keeps
    them), each loaded as a file of its own (`账簿.xlsx [3月]`: its rows are numbered, cited and
    superseded by sheet). The workbook's own row holds no lines; it is what makes the same
    workbook skipped when offered again, and what the run lists, with its sheets."""
    loaded = sum(o.rows_loaded for _, o in sheets)
    bad = sum(o.rows_quarantined for _, o in sheets)
    each_zh = "；".join(f"{t}（{o.rows_loaded:,} 行）" for t, o in sheets)
    each_en = "; ".join(f"{t} ({o.rows_loaded:,} rows)" for t, o in sheets)
    message = (f"{len(sheets)} 个账簿工作表，各作为一个文件读取，行号按工作表计：{each_zh} / "
               f"{len(sheets)} ledger sheets, each read as a file of its own, rows numbered by "
               f"sheet: {each_en}")
    file_id = register_file(con, path, sha, "ledger", "loaded", fmt=fmt, preset=None, message=message)
    con.execute("update input_files set rows_loaded = ?, rows_quarantined = ? where file_id = ?",
                [loaded, bad, file_id])
    notes = [o.message for _, o in sheets if o.message]
    return FileOutcome(str(path), "ledger", "loaded", file_id, sha, loaded, bad,
                       "; ".join([message, *notes]))


def load_ledgers(con: duckdb.DuckDBPyConnection, paths, preset: str | None = None,
                 encoding: str | None = None, *, presets_file: Path | None = None,
                 on_read=None) -> list[FileOutcome]:
    """Load ledger exports into ledger_lines, each exactly once; one outcome per path.

    A file already loaded (same sha256) is skipped; a file that cannot be read or lacks a
    required column is rejected (registered with the reason, nothing else stored). `preset`
    forces a column preset, `encoding` a CSV encoding; both are detected otherwise. on_read() is
    called when DuckDB starts reading a file's rows, the long part of a load that leaves the
    interpreter free (after the hash and the transcoding, or the Python read of a workbook).

    The hash is computed on a thread of its own while iconv transcodes a GBK / GB18030 file
    (_transcode_beside_hash): hashing takes one core, and the transcoding leaves part of the
    other idle. For a 10M-line file the hash took 3 s before a 7.5 s transcoding; beside it, the
    two took 7.1 s (bench/README.md).
    """
    outcomes: list[FileOutcome] = []
    canonicalise_registered_paths(con)  # a store from before canonical paths
    with ThreadPoolExecutor(2, "recon-hash") as hasher:
        for path in map(canonical_path, paths):
            try:
                stamp = file_stamp(path)  # before the hash: a change while it is read shows next time
            except OSError as exc:
                outcomes.append(_unreadable(con, path, exc))
                continue
            known = unchanged_file(con, path, "ledger", stamp)
            if known is not None:
                outcomes.append(FileOutcome(
                    str(path), "ledger", "skipped", known[0], known[1],
                    message="自加载后未变（路径、大小、修改时间均相同），未重新读取 / "
                            "unchanged since loaded (same path, size and time); not read again"))
                continue
            with working_folder(con, LOAD_FOLDER_PREFIX) as workdir:
                hashing = hasher.submit(sha256_file, path)
                counting = hasher.submit(line_ends, path) if _is_csv(path) else None
                transcoded = _transcode_beside_hash(con, path, stamp[0], encoding, workdir, hashing)
                try:
                    sha = hashing.result()
                except OSError as exc:
                    outcomes.append(_unreadable(con, path, exc))
                    continue
                earlier = earlier_load(con, sha)
                if earlier is not None:
                    record_stamp(con, earlier.file_id, path, stamp)  # a file loaded before stamps were kept
                    outcomes.append(skipped_as_loaded(path, "ledger", earlier, sha))
                    continue
                try:
                    ends = counting.result() if counting and counting.exception() is None else None
                    outcome = _load_one(con, path, sha, preset, encoding, presets_file,
                                        workdir, on_read, transcoded, ends)
                except InputError as exc:
                    outcomes.append(reject_file(con, path, sha, "ledger", exc))
                    continue
                except READER_BUGS as exc:
                    outcomes.append(reject_file(con, path, sha, "ledger", _reader_bug(path, exc)))
                    continue
                record_stamp(con, outcome.file_id, path, stamp)
                outcomes.append(outcome)
    return outcomes


# A bug of a reader meeting a file it was not written for (Python's own errors; not the machine's
# limits, OSError, MemoryError, nor DuckDB's, which stop the command as before): that file is
# rejected, naming it and the error, with the traceback in the log; the other files load and the
# night's run still reconciles them and writes its reports (a bug used to lose the whole run).
# The load was one transaction, rolled back: nothing of the file is kept.
READER_BUGS = (ValueError, LookupError, TypeError, AttributeError, ArithmeticError, AssertionError,
               RecursionError, NotImplementedError)


def _reader_bug(path: Path, exc: BaseException) -> InputError:
    import logging

    logging.getLogger("recon").error("internal error reading %s", path, exc_info=exc)
    what = f"{type(exc).__name__}: {exc}"[:300]
    return InputError(path, f"读取该文件时出现内部错误（{what}），整个文件未加载，其他文件照常核对；请报告此问题"
                            f"（详见 logs/recon.log）",
                      f"an internal error while reading the file ({what}): nothing of it was loaded, the "
                      f"other files are reconciled as usual; please report this bug (see logs/recon.log)")


def _unreadable(con, path: Path, exc: OSError) -> FileOutcome:
    reason = exc.strerror or str(exc)
    error = InputError(path, f"文件无法读取：{reason}", f"the file cannot be read: {reason}")
    try:
        return reject_file(con, path, "", "ledger", error)
    except OSError:  # gone altogether: nothing to register
        return FileOutcome(str(path), "ledger", "rejected", message=str(error))


def _transcode_beside_hash(con, path: Path, size: int, encoding: str | None, workdir: Path,
                           hashing: Future) -> str | None:
    """Transcode a GBK / GB18030 CSV into workdir with iconv while `hashing` computes its sha256
    (size: the file's, as stamped before the hash).

    Returns what _transcode_iconv did, or None when it did not run: another format or encoding,
    no iconv, the file unreadable, or a file of the same name and size already loaded (probably
    this one again, as in every nightly run: then the hash goes first and nothing is transcoded
    in vain). When the hash shows the content already loaded, or fails, the transcoding stops at
    the next piece; the load then skips or rejects the file as it would have."""
    try:
        if _format_of(path) != "csv":
            return None
        enc = _normalise_encoding(path, encoding) if encoding else detect_encoding(path)
        iconv = _usable_iconv(enc)
        if iconv is None or loaded_by_name_and_size(con, path.name, size, "ledger"):
            return None
        verdict: list[bool] = []

        def stop() -> bool:
            if hashing.done() and not verdict:
                verdict.append(hashing.exception() is not None
                               or earlier_load(con, hashing.result()) is not None)
            return bool(verdict) and verdict[0]

        return _transcode_iconv(iconv, path, workdir / UTF8_COPY, stop)
    except (InputError, OSError):  # the load proper reports it
        return None
