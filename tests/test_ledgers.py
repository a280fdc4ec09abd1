"""Ledger exports: every format, encoding, preset and value form loaded exactly, once."""
from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import shutil
import threading
import time
import zipfile
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from builders import (NOTICE_NO, OLD_ESTATES, PROJECT_CODE, RENT, new_store, run_findings, seed_notice,
                      set_context)
from hostile_corpus import SEED_NOTICE
from pipeline import ledgers
from pipeline.checks import run_rule
from pipeline.cli import main
from pipeline.ledgers import load_ledgers
from pipeline.rules import rule
from pipeline.store import open_store

CN = ["凭证号", "分录号", "凭证日期", "会计体系", "科目编码", "科目名称", "摘要", "借方金额", "贷方金额",
      "功能分类", "经济分类", "项目代码", "项目名称", "资金来源", "直达资金标识", "指标文号", "收款人"]
STD = list(ledgers.FIELDS)
FIXTURES = Path(__file__).parent / "fixtures"
DEFAULTS = dict(
    voucher_no="记-0001", line_no="1", posted_on="2024-03-15", book="预算会计", account_code="7201",
    account_name="事业支出", summary="发放3月租赁补贴", debit="480.00", credit="",
    function_code="2210107 保障性住房租金补贴", economic_code="30305", project_code=PROJECT_CODE,
    purpose=RENT, fund_source="中央直达资金", direct_flag="01 中央直达资金",
    budget_doc_no="克区财综[2024]2号", payee="张三",
)


def row(**override) -> list:
    values = {**DEFAULTS, **override}
    return [values[f] for f in ledgers.FIELDS]


def write_csv(path: Path, rows: list[list], header=CN, encoding="utf-8", delimiter=",") -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def lines(con, file_id=None) -> list[dict]:
    sql = "select * from ledger_lines" + (" where file_id = ?" if file_id else "") + " order by file_id, row_no"
    cur = con.execute(sql, [file_id] if file_id else [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def spent(con, purpose=RENT) -> Decimal:
    set_context(con)
    return con.execute("select spent from rpt_allocation_summary where purpose = ?", [purpose]).fetchone()[0]


@pytest.fixture
def con(tmp_path):
    c = new_store(tmp_path)
    yield c
    c.close()


# --- encodings and formats -------------------------------------------------------------------

@pytest.mark.parametrize("encoding, recorded", [
    ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gbk"), ("gb18030", "gb18030"),
])
def test_load_ledgers__csv_encoding_detected(con, tmp_path, encoding, recorded):
    # 𠮷 exists in GB18030 but not in GBK: the gb18030 file must be detected as such
    payee = "吉𠮷" if encoding != "gbk" else "王芳"
    path = write_csv(tmp_path / "l.csv", [row(payee=payee)], encoding=encoding)
    [out] = load_ledgers(con, [path])
    assert out.action == "loaded" and out.rows_loaded == 1
    [line] = lines(con)
    assert line["payee"] == payee and line["purpose"] == RENT and line["debit"] == Decimal("480.00")
    assert con.execute("select encoding, preset, format from input_files").fetchone() == (recorded, "cn-grp", "csv")


def test_load_ledgers__encoding_override(con, tmp_path):
    path = write_csv(tmp_path / "l.csv", [row()], encoding="gb18030")
    [out] = load_ledgers(con, [path], encoding="GB18030")
    assert out.action == "loaded"
    assert lines(con)[0]["account_name"] == "事业支出"


def test_load_ledgers__wrong_encoding_rejected_naming_line(con, tmp_path):
    path = tmp_path / "l.csv"
    path.write_bytes(",".join(CN).encode("utf-8") + b"\r\n" + b"\xff\xfe\xfa,1\r\n")
    [out] = load_ledgers(con, [path], encoding="utf-16-le")
    # utf-16 decoding of UTF-8 text gives garbage headings: the file is rejected, not half-read
    assert out.action == "rejected"
    path2 = tmp_path / "m.csv"
    path2.write_bytes(",".join(CN).encode("gbk") + b"\r\n" + b"\x81\x20\r\n")
    [out2] = load_ledgers(con, [path2], encoding="gbk")
    assert out2.action == "rejected" and "第2行" in out2.message and "line 2" in out2.message


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_load_ledgers__undetectable_text_names_the_line_of_its_bad_byte(con, tmp_path, encoding):
    # two good rows, then a byte no encoding accepts: most likely a damaged file in that encoding
    text = (",".join(CN) + "\r\n" + "\r\n".join(",".join(row()[: len(CN)]) for _ in range(2)) + "\r\n")
    path = tmp_path / "l.csv"
    path.write_bytes(text.encode(encoding) + "记-9,危".encode(encoding) + b"\xff\r\n")
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and "第4行" in out.message and "line 4" in out.message
    assert f"read as {encoding}" in out.message
    assert con.execute("select count(*) from ledger_lines").fetchone()[0] == 0


def test_load_ledgers__binary_file_is_not_given_a_line(con, tmp_path):
    # a newline early in binary data (control characters) does not make it text in some encoding
    path = tmp_path / "l.csv"
    path.write_bytes(b"\x89PNG\x1a\x00\n\x00\x00\xff\xfe\xff")  # a picture saved as .csv (a zip now says it is an XLSX)
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and "cannot detect the encoding" in out.message and "line" not in out.message


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_load_ledgers__utf16_without_a_bom_is_detected_as_for_notices(con, tmp_path, encoding):
    # a Windows tool's "Unicode" export without a BOM; before, refused: no encoding detected
    path = write_csv(tmp_path / "l.csv", [row(payee="吉𠮷"), row(voucher_no="记-2")], encoding=encoding)
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 2, 0), out.message
    assert [(r["voucher_no"], r["payee"], r["debit"]) for r in lines(con)] == [
        ("记-0001", "吉𠮷", Decimal("480.00")), ("记-2", "张三", Decimal("480.00"))]
    assert con.execute("select encoding from input_files").fetchone() == (encoding,)


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_detect_encoding__a_utf16_sample_cut_inside_a_character_is_still_utf16(tmp_path, monkeypatch, cut):
    # the 1 MB sample may end inside a character, or inside 𠮷's surrogate pair
    path = write_csv(tmp_path / "l.csv", [row(payee="吉𠮷")], encoding="utf-16-le")
    data = path.read_bytes()
    monkeypatch.setattr(ledgers, "SAMPLE_BYTES", data.index("𠮷".encode("utf-16-le")) + cut)
    assert ledgers.detect_encoding(path) == "utf-16-le"


@pytest.mark.parametrize("encoding", ["gb18030", "gbk", "utf-8"])
def test_detect_encoding__chinese_text_is_never_taken_for_utf16(tmp_path, encoding):
    # GB18030 / GBK / UTF-8 text has no NUL byte, and a stray one does not make it UTF-16: the
    # check needs NULs at one parity in many places, as UTF-16's ASCII gives
    payee = "吉祥如意" if encoding == "gbk" else "吉𠮷"  # 𠮷: GB18030's, not GBK's
    rows = [row(voucher_no=f"记-{i}", summary="发放租赁补贴冲销红字退回", payee=payee) for i in range(50)]
    path = write_csv(tmp_path / "l.csv", rows, encoding=encoding)
    assert ledgers.detect_encoding(path) == encoding
    text = path.read_bytes()
    at = text.index(b"\n", 1000) + 1
    path.write_bytes(text[:at] + b"\x00" + text[at:])
    assert ledgers.detect_encoding(path) == encoding


def _load_xls_fixture(con, tmp_path, fixture: str, name: str):
    """Load a copy of tests/fixtures/xls/<fixture>, named as an export would be."""
    path = tmp_path / name
    path.write_bytes((FIXTURES / "xls" / fixture).read_bytes())
    [out] = load_ledgers(con, [path])
    return out


def test_load_ledgers__an_excel_97_2003_workbook_loads_from_its_ledger_sheet(con, tmp_path):
    # tests/fixtures/xls/make_fixtures.py describes the workbook: a cover sheet, then the ledger
    out = _load_xls_fixture(con, tmp_path, "ledger_97_2003.xls", "GRP导出.xls")
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 3, 1), out.message
    got = [(r["row_no"], r["voucher_no"], r["posted_on"], r["account_code"], r["debit"], r["credit"],
            r["function_code"], r["direct_flag"]) for r in lines(con)]
    assert got == [
        (1, "记-0001", dt.date(2024, 3, 15), "7201", Decimal("1234.56"), Decimal("0"), "2210107", True),
        (2, "记-0002", dt.date(2024, 4, 1), "7201", Decimal("0"), Decimal("0.30"), "2210107", True),
        (3, "记-0003", dt.date(2024, 3, 15), "7201", Decimal("100"), Decimal("0"), "2210107", True),
    ]
    # the error cell is shown as Excel shows it, on the row it is on
    assert con.execute("select row_no, column_name, value from quarantine").fetchall() == [(4, "借方金额", "#DIV/0!")]
    assert con.execute("select format, encoding from input_files").fetchone() == ("xls", None)


def test_load_ledgers__an_excel_97_2003_workbook_with_merged_cells_reads_them_as_excel_shows_them(con, tmp_path):
    # make_fixtures.py: 记-0001's number, date and summary merged down over its three lines, its
    # debit of 960 merged over its two debit lines
    out = _load_xls_fixture(con, tmp_path, "ledger_merged_cells.xls", "明细账.xls")
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 4, 0), out.message
    got = [(r["row_no"], r["voucher_no"], r["line_no"], r["posted_on"], r["summary"], r["account_code"],
            r["debit"], r["credit"]) for r in lines(con)]
    assert got == [
        (1, "记-0001", "1", dt.date(2024, 3, 15), "发放3月租赁补贴", "7201", Decimal("960"), Decimal("0")),
        (2, "记-0001", "2", dt.date(2024, 3, 15), "发放3月租赁补贴", "7201", Decimal("0"), Decimal("0")),
        (3, "记-0001", "3", dt.date(2024, 3, 15), "发放3月租赁补贴", "8001", Decimal("0"), Decimal("960")),
        (4, "记-0002", "1", dt.date(2024, 4, 15), "发放4月租赁补贴", "7201", Decimal("480"), Decimal("0")),
    ]
    # an amount is shown once over its merged range, so it is counted once
    assert "merged cells: 6 cells read with the value of their merged range's first row" in out.message
    assert con.execute("select message from input_files").fetchone() == (out.message,)


def test_load_ledgers__an_excel_97_2003_workbook_kept_one_sheet_a_month_loads_each_sheet(con, tmp_path):
    # make_fixtures.py: 1月 holds 记-1 and 记-2, 2月 记-1 again, after a notes sheet
    out = _load_xls_fixture(con, tmp_path, "ledger_monthly_sheets.xls", "各月明细.xls")
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 3, 0), out.message
    got = con.execute("select source_file, row_no, voucher_no, posted_on from stg_ledger_lines "
                      "order by file_id, row_no").fetchall()
    assert got == [("各月明细.xls [1月]", 1, "记-1", dt.date(2024, 1, 10)),
                   ("各月明细.xls [1月]", 2, "记-2", dt.date(2024, 1, 20)),
                   ("各月明细.xls [2月]", 1, "记-1", dt.date(2024, 2, 10))]


def test_load_ledgers__an_encrypted_workbook_is_rejected_saying_so(con, tmp_path, monkeypatch):
    # xlrd's own words for a password-protected file; the message says what to do instead
    xlrd = pytest.importorskip("xlrd")

    def encrypted(*args, **kwargs):
        raise xlrd.XLRDError("Workbook is encrypted")

    monkeypatch.setattr(xlrd, "open_workbook", encrypted)
    out = _load_xls_fixture(con, tmp_path, "ledger_97_2003.xls", "locked.xls")
    assert out.action == "rejected" and "password-protected" in out.message and "设有密码" in out.message


def test_load_ledgers__a_password_protected_xlsx_is_rejected_saying_so(con, tmp_path):
    # Excel keeps an encrypted .xlsx in the 97-2003 container, with an EncryptionInfo stream
    path = tmp_path / "加密.xlsx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1016) + "EncryptionInfo".encode("utf-16-le")
                     + bytes(3000))
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and "password-protected" in out.message and "设有密码" in out.message


def test_load_ledgers__an_excel_97_2003_workbook_named_xlsx_loads(con, tmp_path):
    out = _load_xls_fixture(con, tmp_path, "ledger_97_2003.xls", "renamed.xlsx")
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 3, 1), out.message


def test_load_ledgers__an_xls_export_of_tab_separated_text_loads_as_csv(con, tmp_path):
    # what many accounting systems' "export to Excel" writes: GBK text, tab-separated, named .xls
    path = write_csv(tmp_path / "账簿导出.xls", [row(), row(voucher_no="记-2", debit="120")],
                     encoding="gbk", delimiter="\t")
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded) == ("loaded", 2), out.message
    assert con.execute("select format, encoding from input_files").fetchone() == ("csv", "gbk")
    assert [line["debit"] for line in lines(con)] == [Decimal("480.00"), Decimal("120.00")]


def test_load_ledgers__text_or_a_web_page_saved_as_xlsx_is_read_as_what_it_is(con, tmp_path):
    # an export saved under an .xlsx name, as a .xls is: before, "not a valid XLSX file (File is
    # not a zip file)", every night. An empty .xlsx and a damaged zip are still refused
    text = write_csv(tmp_path / "账簿导出.xlsx", [row(), row(voucher_no="记-2", debit="120")],
                     encoding="gbk", delimiter="\t")
    page = tmp_path / "网页导出.xlsx"
    page.write_bytes(("<html><body><table><tr>" + "".join(f"<th>{h}</th>" for h in CN) + "</tr><tr>"
                      + "".join(f"<td>{v}</td>" for v in row(voucher_no="记-3")) + "</tr></table></body></html>")
                     .encode("utf-8"))
    empty = tmp_path / "空.xlsx"
    empty.write_bytes(b"")
    outs = {Path(o.path).name: o for o in load_ledgers(con, [text, page, empty])}
    assert (outs["账簿导出.xlsx"].action, outs["账簿导出.xlsx"].rows_loaded) == ("loaded", 2)
    assert (outs["网页导出.xlsx"].action, outs["网页导出.xlsx"].rows_loaded) == ("loaded", 1)
    assert outs["空.xlsx"].action == "rejected" and "不是有效的 XLSX 文件" in outs["空.xlsx"].message
    assert dict(con.execute("select name, format from input_files where status = 'loaded'").fetchall()) == {
        "账簿导出.xlsx": "csv", "网页导出.xlsx": "html"}


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n", b"\r\n\r\n\r\n", b" \n\t\n",
                                     b",,,\n,,,\n"])
def test_load_ledgers__a_csv_of_blank_lines_only_is_said_to_be_empty(con, tmp_path, content):
    """A failed export that wrote a BOM and a line end, or blank lines only, is an empty file; it
    was refused for "required columns missing (preset standard)", which sends a user looking for
    a wrong header."""
    path = tmp_path / "ledger.csv"
    path.write_bytes(content)
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and "文件为空，没有表头" in out.message and "the file is empty" in out.message


def test_load_ledgers__a_web_page_export_named_xls_is_read_as_its_table(con, tmp_path):
    # a web system's "export to Excel": a page (GBK, as it declares) holding a table, named .xls.
    # Before, it was rejected ("open it in Excel and save it as .xlsx"), every night
    cells = lambda values: "".join(f"<td>{v}</td>" for v in values)  # noqa: E731
    first = row(summary="发放3月<br>租赁补贴")
    second = row(voucher_no="记-2", line_no="2", debit="1,000.00", payee="李&nbsp;四")
    rowspan = ('<tr><td rowspan="2">记-3</td>' + cells(row()[1:2]) + '<td rowspan="2">2024-03-20</td>'
               + cells(row()[3:]) + "</tr><tr>" + cells(["2"]) + cells(row(debit="x")[3:]) + "</tr>")
    page = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
            '<style>td { mso-number-format: "\\@"; }</style><script>var rows = "<td>";</script></head>'
            '<body><table><tr><td colspan="17">克拉玛依区住建局 凭证明细表</td></tr>'
            "<tr>" + "".join(f"<th>{h}</th>" for h in CN) + "</tr>"
            f"<tr>{cells(first)}</tr><tr>{cells(second)}</tr>{rowspan}"
            "</table><p>制表人：张三</p></body></html>")
    path = tmp_path / "凭证导出.xls"
    path.write_bytes(page.encode("gbk"))
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 3, 1), out.message
    got = [(r["row_no"], r["voucher_no"], r["line_no"], r["posted_on"], r["debit"], r["summary"], r["payee"])
           for r in lines(con)]
    assert got == [(1, "记-0001", "1", dt.date(2024, 3, 15), Decimal("480.00"), "发放3月 租赁补贴", "张三"),
                   (2, "记-2", "2", dt.date(2024, 3, 15), Decimal("1000.00"), DEFAULTS["summary"], "李 四"),
                   (3, "记-3", "1", dt.date(2024, 3, 20), Decimal("480.00"), DEFAULTS["summary"], "张三")]
    # the rowspan's voucher number and date belong to its second line too: quarantined for its amount
    assert con.execute("select row_no, column_name, value from quarantine").fetchall() == [(4, "借方金额", "x")]
    assert con.execute("select format from input_files").fetchone() == ("html",)


def test_load_ledgers__an_excel_2003_xml_spreadsheet_is_read_as_a_workbook(con, tmp_path):
    # SpreadsheetML, as programs write "Excel" without a library, named .xls: a notes sheet
    # before the ledger's, a title merged across, a row placed by ss:Index after an empty one, a
    # voucher number merged down over an entry's two lines, dates as DateTime. Before, rejected
    def cells(values, skip=()):
        return "".join(f'<Cell ss:Index="{i}"><Data ss:Type="String">{v}</Data></Cell>'
                       for i, v in enumerate(values, 1) if i not in skip)
    first = row(posted_on="2024-03-15T00:00:00.000")
    book = ('<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
            '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
            'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet">'
            '<Worksheet ss:Name="说明"><Table><Row><Cell><Data ss:Type="String">本表由系统导出</Data></Cell>'
            '</Row></Table></Worksheet><Worksheet ss:Name="凭证"><Table>'
            '<Row><Cell ss:MergeAcross="16"><Data ss:Type="String">凭证明细表</Data></Cell></Row>'
            f"<Row>{cells(CN)}</Row><Row>{cells(first)}</Row>"
            f'<Row ss:Index="5"><Cell ss:MergeDown="1"><Data ss:Type="String">记-2</Data></Cell>'
            f'{cells(row(line_no="1"), skip={1})}</Row>'
            f'<Row>{cells(row(line_no="2", debit="20"), skip={1})}</Row>'
            "</Table></Worksheet></Workbook>")
    path = tmp_path / "凭证导出.xls"
    path.write_text(book, encoding="utf-8")
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 3, 0), out.message
    assert [(r["row_no"], r["voucher_no"], r["line_no"], r["posted_on"], r["debit"]) for r in lines(con)] == [
        (1, "记-0001", "1", dt.date(2024, 3, 15), Decimal("480.00")),
        (3, "记-2", "1", dt.date(2024, 3, 15), Decimal("480.00")),
        (4, "记-2", "2", dt.date(2024, 3, 15), Decimal("20.00"))]
    assert con.execute("select format from input_files").fetchone() == ("xml",)


def _xml_spreadsheet(rows: list[list], workbook: str = "") -> str:
    """An Excel 2003 XML Spreadsheet of one sheet; a value is (type, text) or text (a String);
    workbook: the <ExcelWorkbook> element of options, if any."""
    def cell(v) -> str:
        kind, text = v if isinstance(v, tuple) else ("String", v)
        return f'<Cell><Data ss:Type="{kind}">{text}</Data></Cell>'
    return ('<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
            '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
            f'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet">{workbook}'
            '<Worksheet ss:Name="凭证"><Table>'
            + "".join(f"<Row>{''.join(cell(v) for v in r)}</Row>" for r in rows)
            + "</Table></Worksheet></Workbook>")


@pytest.mark.parametrize("workbook, date1904", [
    ('<ExcelWorkbook xmlns="urn:schemas-microsoft-com:office:excel"><WindowHeight>9000</WindowHeight>'
     "</ExcelWorkbook>", False),
    ('<ExcelWorkbook xmlns="urn:schemas-microsoft-com:office:excel"><WindowHeight>9000</WindowHeight>'
     "<Date1904/></ExcelWorkbook>", True),  # as Excel writes it
    ("<ExcelWorkbook><Date1904/></ExcelWorkbook>", True),  # a program's, in the sheet's namespace
    ('<Styles><Style ss:ID="Default"><Date1904/></Style></Styles>', False),  # no option there
], ids=["1900", "1904", "1904_unqualified", "not_an_option"])
def test_load_ledgers__an_excel_2003_xml_spreadsheet_of_the_1904_date_system(con, tmp_path, workbook,
                                                                             date1904):
    # Excel writes a date cell as ISO text (ss:Type="DateTime") whatever the date system, so those
    # are right either way; a serial left a number (a General cell) or typed as text counts from
    # 1904-01-01 in a workbook of the 1904 system (<Date1904/>), as in XLSX and XLS. Before, such
    # a serial was read by the 1900 system: 4 years and a day early
    serial = 45366 - 1462 if date1904 else 45366  # 2024-03-15 either way
    book = _xml_spreadsheet([
        CN,
        row(voucher_no="记-1", posted_on=("DateTime", "2024-03-15T00:00:00.000")),
        row(voucher_no="记-2", posted_on=("Number", str(serial))),
        row(voucher_no="记-3", posted_on=str(serial)),
    ], workbook)
    path = tmp_path / "导出.xml"
    path.write_text(book, encoding="utf-8")
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 3, 0), out.message
    assert [(r["voucher_no"], r["posted_on"]) for r in lines(con)] == [
        (f"记-{i}", dt.date(2024, 3, 15)) for i in (1, 2, 3)]
    assert ("1904 日期系统" in (out.message or "")) is date1904


@pytest.mark.parametrize("declared, encoding, name", [
    ("GB2312", "gb2312", "导出.xml"), ("GBK", "gbk", "导出.xls"), ("GB18030", "gb18030", "导出.xml"),
    ("UTF-16", "utf-16", "导出.xls"), ("UTF-8", "utf-8", "导出.xml"),
])
def test_load_ledgers__an_xml_spreadsheet_in_the_encoding_it_declares(con, tmp_path, declared, encoding, name):
    """Chinese software writes its XML spreadsheet in GB2312 / GBK and says so in the declaration.
    expat refuses multi-byte encodings ("multi-byte encodings are not supported"): that was an
    internal error (exit 70), and in `recon run` the night's run was lost with it. A UTF-16 file
    named .xls was taken for some other XML ("not an Excel 2003 XML spreadsheet")."""
    book = _xml_spreadsheet([CN, row(voucher_no="记-1", payee="张三"), row(voucher_no="记-2", payee="李四")])
    book = book.replace('<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{declared}"?>')
    path = tmp_path / name
    path.write_bytes(book.encode(encoding))
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 2, 0), out.message
    assert [(r["voucher_no"], r["payee"], r["debit"]) for r in lines(con)] == [
        ("记-1", "张三", Decimal("480.00")), ("记-2", "李四", Decimal("480.00"))]


@pytest.mark.parametrize("declared, content, says_zh", [
    ("x-nonsense", "张三".encode("utf-8"), "声明的编码 x-nonsense 无法识别"),
    ("GBK", "张三".encode("gbk") + b"\n\xff\xff", "第3行有不属于声明编码 GBK 的字节"),
])
def test_load_ledgers__an_xml_spreadsheet_not_in_its_declared_encoding_is_refused(con, tmp_path, declared,
                                                                                 content, says_zh):
    head = (f'<?xml version="1.0" encoding="{declared}"?>\n<Workbook xmlns="urn:schemas-microsoft-com:'
            f'office:spreadsheet"><Worksheet><Table><Row><Cell><Data>').encode("ascii")
    path = tmp_path / "导出.xml"
    path.write_bytes(head + content + b"</Data></Cell></Row></Table></Worksheet></Workbook>")
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and says_zh in out.message, out.message
    assert con.execute("select count(*) from ledger_lines").fetchone() == (0,)


@pytest.mark.parametrize("name, content, says_zh", [
    ("a.html", "<table><tr><td>凭证号</td></tr></table>", "网页（HTML）格式的导出过大"),
    ("b.xml", '<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"/>',
     "Excel 2003 XML 表格过大"),
])
def test_load_ledgers__a_page_or_xml_spreadsheet_beyond_the_limit_is_refused_unread(
        con, tmp_path, monkeypatch, name, content, says_zh):
    # both are read whole into memory: beyond the limit the message asks for CSV or .xlsx
    monkeypatch.setattr(ledgers, "HTML_MAX_BYTES", 16)
    (tmp_path / name).write_text(content, encoding="utf-8")
    [out] = load_ledgers(con, [tmp_path / name])
    assert out.action == "rejected" and says_zh in out.message and "export CSV or .xlsx" in out.message


@pytest.mark.parametrize("name, content, says_zh, says_en", [
    ("damaged.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "另存为 .xlsx 后重试",
     "the Excel 97-2003 workbook cannot be opened"),
    ("damaged.et", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "另存为 .xlsx 后重试",
     "the Excel 97-2003 workbook cannot be opened"),
    ("web.xls", "\ufeff <html><table><tr><td>凭证号</td></tr></table>".encode("utf-8"),
     "网页（HTML）格式的导出：缺少必需的列", "web page (HTML) export: required columns missing"),
    ("report.xls", b'<?xml version="1.0"?>\n<report><line>1</line></report>',
     "这是 XML 格式的导出，但不是 Excel 2003 XML 表格", "an XML export, not an Excel 2003 XML spreadsheet"),
    ("cut.xls", b'<?xml version="1.0"?>\n<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"><Works',
     "Excel 2003 XML 表格无法读取", "the Excel 2003 XML spreadsheet cannot be read"),
    ("book.xls", b"PK\x03\x04" + bytes(60), "请改名为 .xlsx", "an XLSX workbook named .xls"),
    # a workbook or Parquet file under a text name: it said its encoding could not be told
    ("ledger.csv", b"PK\x03\x04" + bytes(60), "这是XLSX 工作簿，扩展名却是 .csv，请改名为 .xlsx",
     "an XLSX workbook named .csv"),
    ("ledger.txt", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "请改名为 .xls",
     "an Excel 97-2003 workbook named .txt"),
    ("ledger.csv", b"PAR1" + bytes(60), "请改名为 .parquet", "a Parquet file named .csv"),
    ("exports.zip", b"PK\x03\x04" + bytes(60), "请先解压", "unpack it"),
    ("ledger.dbf", b"\x03" + bytes(60), "不支持的文件类型 .dbf", "unsupported file type .dbf"),
])
def test_load_ledgers__a_file_of_a_type_that_cannot_be_read_is_rejected_saying_what_to_do(
        con, tmp_path, name, content, says_zh, says_en):
    path = tmp_path / name
    path.write_bytes(content)
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and says_zh in out.message and says_en in out.message
    assert con.execute("select status, name from input_files").fetchall() == [("rejected", name)]


@pytest.mark.parametrize("encoding, piece_bytes", [("gbk", 1 << 20), ("gb18030", 1 << 20), ("gb18030", 1000)])
def test_load_ledgers__iconv_in_pieces_and_python_codec_load_the_same(tmp_path, monkeypatch, encoding,
                                                                     piece_bytes):
    payee = "王芳" if encoding == "gbk" else "吉𠮷䶮"
    rows = [row(voucher_no=f"记-{i}", payee=payee, summary=f"第{i}笔　租赁补贴") for i in range(50)]
    path = write_csv(tmp_path / "l.csv", rows, encoding=encoding)
    monkeypatch.setattr(ledgers, "ICONV_PIECE_BYTES", piece_bytes)  # 1000 bytes: a piece per few rows
    calls = []
    real_popen = ledgers.subprocess.Popen
    monkeypatch.setattr(ledgers.subprocess, "Popen", lambda *a, **k: calls.append(a[0]) or real_popen(*a, **k))
    loaded = {}
    for iconv in ("1", "0"):
        monkeypatch.setenv("RECON_ICONV", iconv)
        c = new_store(tmp_path / f"iconv{iconv}")
        [out] = load_ledgers(c, [path])
        assert (out.action, out.rows_loaded) == ("loaded", 50)
        loaded[iconv] = [{k: v for k, v in line.items() if k != "file_id"} for line in lines(c)]
        c.close()
    assert loaded["1"] == loaded["0"]
    assert [r["voucher_no"] for r in loaded["1"]] == [f"记-{i}" for i in range(50)]  # pieces in order
    assert loaded["1"][0]["payee"] == payee and loaded["1"][0]["summary"] == "第0笔　租赁补贴"
    if ledgers.shutil.which("iconv"):  # only when RECON_ICONV is not 0
        pieces = ledgers._pieces_at_newlines(path, piece_bytes)
        assert calls and all(c[0].endswith("iconv") for c in calls)
        assert len(calls) == len(pieces) and (len(pieces) > 1) == (piece_bytes < path.stat().st_size)
        assert pieces[0][0] == 0 and pieces[-1][1] == path.stat().st_size
        assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))  # contiguous, no gap


def test_transcode__pieces_appended_whether_or_not_the_kernel_copies(tmp_path, monkeypatch):
    monkeypatch.setattr(ledgers, "ICONV_PIECE_BYTES", 300)
    text = ",".join(CN) + "\r\n" + "".join(f"记-{i},{i},吉𠮷\r\n" for i in range(200))
    path = tmp_path / "l.csv"
    path.write_bytes(text.encode("gb18030"))
    real = getattr(ledgers.os, "copy_file_range", None)
    calls = []

    def flaky(src, dst, count):  # the kernel copies the first piece, then refuses
        calls.append(count)
        if len(calls) > 1 or real is None:
            raise OSError(18, "Invalid cross-device link")
        return real(src, dst, count)

    monkeypatch.setattr(ledgers.os, "copy_file_range", flaky, raising=False)
    ledgers.transcode_to_utf8(path, "gb18030", tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes().decode("utf-8") == text
    assert len(calls) > 1 or not ledgers.shutil.which("iconv")
    assert [p.name for p in tmp_path.iterdir()] != [] and not list(tmp_path.glob("out.csv.*"))


def test_transcode__bad_byte_found_by_line_with_iconv_present(tmp_path, monkeypatch):
    monkeypatch.setattr(ledgers, "ICONV_PIECE_BYTES", 200)
    body = (",".join(CN) + "\r\n").encode("gb18030") + "记-1,1\r\n".encode("gb18030") * 30 + b"\x81\x20\r\n"
    path = tmp_path / "l.csv"
    path.write_bytes(body)
    with pytest.raises(ledgers.InputError) as err:
        ledgers.transcode_to_utf8(path, "gb18030", tmp_path / "out.csv")
    assert "第32行" in str(err.value) and "line 32" in str(err.value)


needs_iconv = pytest.mark.skipif(not ledgers.shutil.which("iconv"), reason="no iconv here")


def _hash_after_first_piece(monkeypatch, fail: OSError | None = None) -> list[bool]:
    """Make a load's hash wait until iconv has converted a piece (up to 5 s): done one after the
    other, the hash would wait in vain. Returns, per hash, whether a piece came first."""
    converted = threading.Event()
    real_append, real_sha = ledgers._append, ledgers.sha256_file
    monkeypatch.setattr(ledgers, "_append", lambda *a: (converted.set(), real_append(*a))[1])
    waited = []

    def sha256_file(path):
        waited.append(converted.wait(5))
        if fail is not None:
            raise fail
        return real_sha(path)

    monkeypatch.setattr(ledgers, "sha256_file", sha256_file)
    return waited


def _iconv_calls(monkeypatch) -> list:
    calls = []
    real_popen = ledgers.subprocess.Popen
    monkeypatch.setattr(ledgers.subprocess, "Popen", lambda *a, **k: calls.append(a[0]) or real_popen(*a, **k))
    return calls


def _load_folders(con) -> list[Path]:
    spill = con.execute("select current_setting('temp_directory')").fetchone()[0]
    return list(Path(spill).glob(f"{ledgers.LOAD_FOLDER_PREFIX}*"))


@needs_iconv
def test_load_ledgers__gb18030_hashed_while_iconv_transcodes_it(con, tmp_path, monkeypatch):
    monkeypatch.setattr(ledgers, "ICONV_PIECE_BYTES", 1000)
    path = write_csv(tmp_path / "l.csv", [row(voucher_no=f"记-{i}") for i in range(60)], encoding="gb18030")
    real_sha = ledgers.sha256_file(path)
    waited = _hash_after_first_piece(monkeypatch)
    calls = _iconv_calls(monkeypatch)
    [out] = load_ledgers(con, [path])
    assert waited == [True]
    assert (out.action, out.rows_loaded, out.sha256) == ("loaded", 60, real_sha)
    assert [r["voucher_no"] for r in lines(con)] == [f"记-{i}" for i in range(60)]
    assert len(calls) == len(ledgers._pieces_at_newlines(path, 1000))  # transcoded once, not again
    assert _load_folders(con) == []


@needs_iconv
def test_load_ledgers__transcoding_stops_when_the_hash_finds_the_content_loaded(con, tmp_path, monkeypatch):
    monkeypatch.setattr(ledgers, "ICONV_PIECE_BYTES", 1000)
    path = write_csv(tmp_path / "l.csv", [row(voucher_no=f"记-{i}") for i in range(300)], encoding="gb18030")
    [first] = load_ledgers(con, [path])
    copy = tmp_path / "凭证导出（副本）.csv"  # another name: nothing says it is the same file until the hash
    copy.write_bytes(path.read_bytes())
    waited = _hash_after_first_piece(monkeypatch)
    calls = _iconv_calls(monkeypatch)
    [again] = load_ledgers(con, [copy])
    assert (again.action, again.file_id) == ("skipped", first.file_id)
    assert waited == [True] and 0 < len(calls) < len(ledgers._pieces_at_newlines(copy, 1000)) / 2
    assert _load_folders(con) == []
    assert con.execute("select count(*) from ledger_lines").fetchone()[0] == 300


@needs_iconv
def test_load_ledgers__a_file_seen_again_is_hashed_before_anything_is_transcoded(con, tmp_path, monkeypatch):
    path = write_csv(tmp_path / "l.csv", [row(voucher_no=f"记-{i}") for i in range(20)], encoding="gb18030")
    load_ledgers(con, [path])
    calls = _iconv_calls(monkeypatch)
    [again] = load_ledgers(con, [path])  # the nightly run: same name, same size, same bytes
    assert again.action == "skipped" and calls == []
    # same name and size, other bytes (one amount edited in place): hashed first, then loaded
    path.write_bytes(path.read_bytes().replace(b"480.00", b"481.00", 1))
    [edited] = load_ledgers(con, [path])
    assert edited.action == "loaded" and calls
    assert con.execute("select sum(debit) from ledger_lines where file_id = ?",
                       [edited.file_id]).fetchone()[0] == Decimal("9601.00")


@needs_iconv
def test_load_ledgers__hash_failing_while_transcoding_rejects_the_file(con, tmp_path, monkeypatch):
    monkeypatch.setattr(ledgers, "ICONV_PIECE_BYTES", 1000)
    path = write_csv(tmp_path / "l.csv", [row(voucher_no=f"记-{i}") for i in range(300)], encoding="gb18030")
    waited = _hash_after_first_piece(monkeypatch, fail=OSError(5, "Input/output error"))
    calls = _iconv_calls(monkeypatch)
    [out] = load_ledgers(con, [path])
    assert waited == [True] and len(calls) < len(ledgers._pieces_at_newlines(path, 1000)) / 2
    assert out.action == "rejected"
    assert "文件无法读取：Input/output error" in out.message and "cannot be read: Input/output error" in out.message
    assert con.execute("select count(*) from ledger_lines").fetchone()[0] == 0
    assert _load_folders(con) == []


def test_load_ledgers__row_numbers_follow_the_file_across_parallel_reads(con, tmp_path, monkeypatch):
    # a small line limit makes DuckDB split the file into many buffers read by parallel threads
    monkeypatch.setattr(ledgers, "CSV_MAX_LINE_BYTES", 1 << 14)
    n = 20_000
    rows = [row(voucher_no=f"记-{i:06d}", debit=f"{i}.00") for i in range(1, n + 1)]
    rows[12_344] = row(voucher_no="记-012345", debit="十二元")  # one bad row, far into the file
    path = write_csv(tmp_path / "l.csv", rows)
    assert path.stat().st_size > 40 * (1 << 14)
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (n - 1, 1)
    mismatched = con.execute(
        "select count(*) from ledger_lines where voucher_no <> '记-' || lpad(cast(row_no as varchar), 6, '0')"
        " or debit <> row_no").fetchone()[0]
    assert mismatched == 0
    assert con.execute("select row_no, value from quarantine").fetchall() == [(12_345, "十二元")]


def test_load_ledgers__line_beyond_the_limit_rejected(con, tmp_path, monkeypatch):
    monkeypatch.setattr(ledgers, "CSV_MAX_LINE_BYTES", 1 << 16)
    path = write_csv(tmp_path / "l.csv", [row(), row(voucher_no="记-2", summary="危" * 30_000)])
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and "l.csv" in out.message
    assert con.execute("select count(*) from ledger_lines").fetchone()[0] == 0


def test_load_ledgers__tab_delimited_with_title_rows(con, tmp_path):
    path = tmp_path / "l.csv"
    body = "克拉玛依区住建局 凭证明细账\n单位：元\n" + "\t".join(CN) + "\n" + "\t".join(row()) + "\n"
    path.write_text(body, encoding="utf-8")
    [out] = load_ledgers(con, [path])
    assert out.action == "loaded" and out.rows_loaded == 1
    assert lines(con)[0]["row_no"] == 1


def test_load_ledgers__xlsx_real_dates_and_numbers(con, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["凭证明细账"])  # a title row above the header
    ws.append(CN)
    ws.append(["记-0001", 1, dt.datetime(2024, 3, 15), "预算会计", 7201, "事业支出", "租赁补贴", 1234.56, None,
               2210107, 30305, PROJECT_CODE, RENT, "中央直达资金", "01 中央直达资金", NOTICE_NO, "张三"])
    ws.append(["记-0002", 1, dt.date(2024, 4, 1), "预算会计", 7201, "事业支出", "冲销", None, 0.1 + 0.2,
               "[2210107]保障性住房租金补贴", "30305", PROJECT_CODE, RENT, "中央直达资金", True, NOTICE_NO, "张三"])
    ws.append(["记-0003", 1, 45366, "预算会计", 7201.0, "事业支出", "序列日期", 100, 0,
               2210107, 30305, PROJECT_CODE, RENT, "中央直达资金", 1, NOTICE_NO, "李四"])
    wb.create_sheet("第二页").append(["ignored"])
    path = tmp_path / "l.xlsx"
    wb.save(path)
    [out] = load_ledgers(con, [path])
    assert out.action == "loaded" and out.rows_loaded == 3, out
    got = [(r["row_no"], r["voucher_no"], r["line_no"], r["posted_on"], r["account_code"], r["debit"],
            r["credit"], r["function_code"], r["direct_flag"]) for r in lines(con)]
    assert got == [
        (1, "记-0001", "1", dt.date(2024, 3, 15), "7201", Decimal("1234.56"), Decimal("0"), "2210107", True),
        (2, "记-0002", "1", dt.date(2024, 4, 1), "7201", Decimal("0"), Decimal("0.30"), "2210107", True),
        (3, "记-0003", "1", dt.date(2024, 3, 15), "7201", Decimal("100"), Decimal("0"), "2210107", True),
    ]
    assert con.execute("select format, encoding from input_files").fetchone() == ("xlsx", None)


def test_load_ledgers__xlsx_of_the_1904_date_system_reads_serials_by_its_epoch(con, tmp_path):
    # a workbook saved with the 1904 date system (Mac Excel): its serials count from 1904-01-01,
    # 1,462 days after Windows Excel's. Before, a date left a number (a General cell) or typed as
    # a serial's text was read by the 1900 system: every such date 4 years and a day early
    openpyxl = pytest.importorskip("openpyxl")
    from openpyxl.utils.datetime import CALENDAR_MAC_1904

    wb = openpyxl.Workbook()
    wb.epoch = CALENDAR_MAC_1904
    ws = wb.active
    ws.append(CN)
    ws.append(row(voucher_no="记-1", posted_on=45366 - 1462))       # 2024-03-15 in a General cell
    ws.append(row(voucher_no="记-2", posted_on=str(45366 - 1462)))  # the serial as text
    ws.append(row(voucher_no="记-3", posted_on=dt.datetime(2024, 3, 15)))  # a date cell, read right before
    path = tmp_path / "mac.xlsx"
    wb.save(path)
    # a CSV loaded after it reads its serials by the 1900 system again
    serial = write_csv(tmp_path / "l.csv", [row(voucher_no="记-4", posted_on="45366")])
    mac, csv_out = load_ledgers(con, [path, serial])
    assert (mac.rows_loaded, mac.rows_quarantined, csv_out.rows_loaded) == (3, 0, 1), mac.message
    assert [(r["voucher_no"], r["posted_on"]) for r in lines(con)] == [
        (f"记-{i}", dt.date(2024, 3, 15)) for i in range(1, 5)]
    assert "1904 日期系统" in mac.message and "1904 date system" in mac.message
    assert csv_out.message is None or "1904" not in csv_out.message


def test_load_ledgers__an_excel_97_2003_workbook_of_the_1904_date_system_reads_serials_by_its_epoch(con, tmp_path):
    # the fixture's DATEMODE record set to 1 (1904): its date cell (row 1) and the same serial
    # typed as a number (row 3, 45366) are one day; before, the number was read by the 1900 system
    data = bytearray((FIXTURES / "xls" / "ledger_97_2003.xls").read_bytes())
    at = data.index(b"\x22\x00\x02\x00\x00\x00")  # BIFF DATEMODE: record 0x0022, 2 bytes, 0
    data[at + 4] = 1
    path = tmp_path / "mac.xls"
    path.write_bytes(bytes(data))
    [out] = load_ledgers(con, [path])
    assert out.rows_loaded == 3, out.message
    mac_day = dt.date(1904, 1, 1) + dt.timedelta(days=45366)
    assert [(r["voucher_no"], r["posted_on"]) for r in lines(con)] == [
        ("记-0001", mac_day), ("记-0002", dt.date(2024, 4, 1)), ("记-0003", mac_day)]
    assert "1904 日期系统" in out.message


def _red_theme() -> str:
    """openpyxl's default theme with its second accent colour (font theme colour 5) pure red."""
    from openpyxl.writer.theme import theme_xml

    accent2 = re.compile(r'(<a:accent2>\s*<a:srgbClr val=")C0504D(")')
    assert accent2.search(theme_xml)
    return accent2.sub(r"\g<1>FF0000\g<2>", theme_xml)


def test_load_ledgers__xlsx_red_ink_amounts_read_as_negative(con, tmp_path):
    # 红字: a reversal written as a positive amount in red, as a hand-kept workbook does. Before, it
    # read as positive, and the reversal added to the spending it took back
    openpyxl = pytest.importorskip("openpyxl")
    from openpyxl.styles import Color, Font

    wb = openpyxl.Workbook()
    wb.loaded_theme = _red_theme()
    ws = wb.active
    ws.append(CN)
    debit, credit, function = CN.index("借方金额") + 1, CN.index("贷方金额") + 1, CN.index("功能分类") + 1
    cases = [  # (debit, credit, font colour or None, number format or None, expected debit, credit)
        (480.0, None, None, None, "480", "0"),                        # black: as written
        (480.0, None, "FFFF0000", None, "-480", "0"),                 # a red font
        (None, 80.5, "FFFF0000", None, "0", "-80.5"),                 # ... in the credit column
        (480, None, "C00000", None, "-480", "0"),                     # Excel's 深红
        ("1,234.00", None, "FFFF0000", None, "-1234", "0"),           # an amount typed as text
        (480.0, None, Color(indexed=10), None, "-480", "0"),          # the palette's red
        (480.0, None, Color(theme=5), None, "-480", "0"),             # a theme colour that is red
        (480.0, None, None, "[Red]#,##0.00", "-480", "0"),            # a format showing it red
        (-480.0, None, None, "#,##0.00;[Red]-#,##0.00", "-480", "0"),  # negative, red by its format
        (480.0, None, None, "#,##0.00;[Red]-#,##0.00", "480", "0"),   # positive: black by it
        (-480.0, None, "FFFF0000", None, "-480", "0"),                # negative already
        (480.0, None, "FFC0504D", None, "480", "0"),                  # a soft red: not red ink
        (480.0, None, "FFFF6600", None, "480", "0"),                  # orange
        (0.0, None, "FFFF0000", None, "0", "0"),                      # nothing to negate
    ]
    for i, (dr, cr, colour, fmt, _, _) in enumerate(cases, 2):
        ws.append(row(voucher_no=f"记-{i - 1}", debit=dr, credit=cr))
        for col in (debit, credit, function):  # the code beside it red as well: read as written
            cell = ws.cell(i, col)
            if colour is not None:
                cell.font = Font(color=colour)
            if fmt is not None:
                cell.number_format = fmt
    path = tmp_path / "手工账.xlsx"
    wb.save(path)
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (len(cases), 0), out.message
    assert [(r["debit"], r["credit"]) for r in lines(con)] == [
        (Decimal(d), Decimal(c)) for *_, d, c in cases]
    assert {r["function_code"] for r in lines(con)} == {"2210107"}
    # said, Chinese first, with the rows to check (the sheet's, as Excel numbers them)
    note = next(n for n in out.message.split("; ") if n.startswith("红字"))
    assert note.startswith("红字金额：7 个正数金额") and "工作表第3、4、5、6、7…行" in note, note
    assert "red ink: 7 positive amount(s)" in note and "sheet row 3, 4, 5, 6, 7…" in note, note


def test_load_ledgers__xlsx_red_ink_amount_read_by_its_direction_keeps_the_direction(con, tmp_path):
    # 金额 | 借贷方向 with the direction as a number (1 借, 2 贷), the whole reversal's row in red:
    # the amount is negated, the direction is not (1 is not a positive amount)
    openpyxl = pytest.importorskip("openpyxl")
    from openpyxl.styles import Font

    header = _by_direction(CN, "金额", "借贷方向")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(header)
    ws.append(_by_direction(row(voucher_no="记-1"), 480.0, 1))
    ws.append(_by_direction(row(voucher_no="记-2", summary="冲销"), 480.0, 1))
    ws.append(_by_direction(row(voucher_no="记-3"), 80.0, 2))
    for cell in ws[3]:
        cell.font = Font(color="FFFF0000")
    path = tmp_path / "分录.xlsx"
    wb.save(path)
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (3, 0), out.message
    assert [(r["voucher_no"], r["debit"], r["credit"]) for r in lines(con)] == [
        ("记-1", Decimal("480"), Decimal("0")), ("记-2", Decimal("-480"), Decimal("0")),
        ("记-3", Decimal("0"), Decimal("80"))]
    assert "红字金额：1 个正数金额" in out.message


def test_load_ledgers__xlsx_amount_column_shown_red_whole_is_read_as_written(con, tmp_path):
    # a template styles the whole 贷方金额 column red (its look, not 红字): every amount in it is
    # red, zeros too. Before, each was read as negative. The debit column, with one red amount
    # among black ones, is red ink as before
    openpyxl = pytest.importorskip("openpyxl")
    from openpyxl.styles import Font

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(CN)
    debit, credit = CN.index("借方金额") + 1, CN.index("贷方金额") + 1
    amounts = [(480.0, 0), (480.0, 0), (None, 960.0), ("120.00", None), (0, "1,000.00")]
    for i, (dr, cr) in enumerate(amounts, 2):
        ws.append(row(voucher_no=f"记-{i - 1}", debit=dr, credit=cr))
        ws.cell(i, credit).font = Font(color="FFFF0000")
    ws.cell(3, debit).font = Font(color="FFFF0000")  # 记-2's debit: red ink
    path = tmp_path / "模板账.xlsx"
    wb.save(path)
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (5, 0), out.message
    assert [(r["debit"], r["credit"]) for r in lines(con)] == [
        (Decimal("480"), Decimal("0")), (Decimal("-480"), Decimal("0")), (Decimal("0"), Decimal("960")),
        (Decimal("120.00"), Decimal("0")), (Decimal("0"), Decimal("1000.00"))]
    # its four amounts (a blank is none), the zeros among them
    assert "整列红色：“贷方金额”列的全部 4 个金额都以红色显示" in out.message, out.message
    assert "all 4 amounts of '贷方金额' are shown in red" in out.message, out.message
    assert "红字金额：1 个正数金额" in out.message and "工作表第3行" in out.message, out.message


def test_load_ledgers__xlsx_a_few_amounts_all_red_are_still_red_ink(con, tmp_path):
    # two credits, both reversals shown red, and nothing else in the column: too few to take the
    # column's red for its look (RED_COLUMN_MIN_AMOUNTS), read as red ink
    openpyxl = pytest.importorskip("openpyxl")
    from openpyxl.styles import Font

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(CN)
    credit = CN.index("贷方金额") + 1
    for i, (dr, cr) in enumerate([(480.0, None), (None, 80.0), (None, 40.0), (480.0, None)], 2):
        ws.append(row(voucher_no=f"记-{i - 1}", debit=dr, credit=cr))
        ws.cell(i, credit).font = Font(color="FFFF0000")
    path = tmp_path / "手工账.xlsx"
    wb.save(path)
    [out] = load_ledgers(con, [path])
    assert [r["credit"] for r in lines(con)] == [Decimal("0"), Decimal("-80"), Decimal("-40"), Decimal("0")]
    assert "整列红色" not in out.message and "红字金额：2 个正数金额" in out.message, out.message


def _biff_records(data: bytes):
    """(offset, record id, length) of each BIFF record of a small .xls, from its workbook's first
    BOF on (xlwt writes the stream in one run of sectors)."""
    at = data.index(b"\x09\x08\x10\x00\x00\x06")  # BOF, BIFF8
    while at + 4 <= len(data):
        rid, length = _u16(data, at), _u16(data, at + 2)
        if rid == 0:
            return
        yield at, rid, length
        at += 4 + length


def _u16(data, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "little")


def _xls_in_red(fixture: str, cells: set[tuple[int, int]]) -> bytes:
    """The fixture (make_fixtures.py) with the cells (row, column: 0-based, on the ledger's sheet,
    its second) in a red font: its 5th FONT record (xlrd's font 5) given the palette's red (index
    10, FF0000), XF 16 (no cell's) given that font, and the cells' records (NUMBER, RK, LABELSST,
    BLANK, BOOLERR: row, column, XF; MULRK: row, first column, then XF and value by column) XF 16."""
    data = bytearray((FIXTURES / "xls" / fixture).read_bytes())
    fonts = xfs = sheet = 0
    for at, rid, length in _biff_records(bytes(data)):
        body = at + 4
        if rid == 0x0809:
            sheet += 1  # 1: the workbook's globals, 2: its first sheet …
        elif rid == 0x0031:
            fonts += 1
            if fonts == 5:
                data[body + 4:body + 6] = (10).to_bytes(2, "little")
        elif rid == 0x00E0:
            if xfs == 16:
                data[body:body + 2] = (5).to_bytes(2, "little")
            xfs += 1
        elif sheet == 3 and rid in (0x0203, 0x027E, 0x00FD, 0x0201, 0x0205):
            if (_u16(data, body), _u16(data, body + 2)) in cells:
                data[body + 4:body + 6] = (16).to_bytes(2, "little")
        elif sheet == 3 and rid == 0x00BD:
            r, first = _u16(data, body), _u16(data, body + 2)
            for k in range((length - 6) // 6):
                if (r, first + k) in cells:
                    data[body + 4 + 6 * k:body + 6 + 6 * k] = (16).to_bytes(2, "little")
    return bytes(data)


def test_load_ledgers__xls_red_ink_amounts_read_as_negative_as_in_xlsx(con, tmp_path):
    # ledger_97_2003.xls with 记-0001's debit (1234.56, the sheet's row 3) and its function code in
    # a red font: the amount is red ink, the code is read as written. Before, red was not read in
    # an .xls: the reversal counted as spending
    path = tmp_path / "手工账.xls"
    path.write_bytes(_xls_in_red("ledger_97_2003.xls", {(2, 7), (2, 9)}))
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (3, 1), out.message
    assert [(r["voucher_no"], r["debit"], r["function_code"]) for r in lines(con)] == [
        ("记-0001", Decimal("-1234.56"), "2210107"), ("记-0002", Decimal("0"), "2210107"),
        ("记-0003", Decimal("100"), "2210107")]
    assert "红字金额：1 个正数金额" in out.message and "工作表第3行" in out.message, out.message
    assert "sheet row 3)" in out.message, out.message


def test_load_ledgers__xls_amount_column_shown_red_whole_is_read_as_written(con, tmp_path):
    # the fixture's credit column in red on every row that has one (0.30, 0, 0): its look, read as
    # written, and said
    path = tmp_path / "模板账.xls"
    path.write_bytes(_xls_in_red("ledger_97_2003.xls", {(3, 8), (4, 8), (5, 8)}))
    [out] = load_ledgers(con, [path])
    assert [r["credit"] for r in lines(con)] == [Decimal("0"), Decimal("0.30"), Decimal("0")]
    assert "整列红色：“贷方金额”列的全部 3 个金额" in out.message and "红字金额" not in out.message, out.message


def _workbook(tmp_path, sheets: dict[str, list[list]]) -> Path:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(r)
    path = tmp_path / "账簿.xlsx"
    wb.save(path)
    return path


@contextmanager
def _loaded_alone(tmp_path: Path, kind: str, header: list, rows: list[list], stem: str = "账簿"):
    """The rows under the header written as a `kind` file (csv in GBK, xlsx, parquet) in a folder
    of their own, loaded into a fresh store with the seed notice: yields (store, outcome)."""
    folder = tmp_path / kind
    folder.mkdir()
    if kind == "csv":
        path = write_csv(folder / f"{stem}.csv", rows, header=header, encoding="gbk")
    elif kind == "xlsx":
        path = _workbook(folder, {"凭证": [header, *rows]})
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = folder / f"{stem}.parquet"
        pq.write_table(pa.table({str(h): [r[i] or None for r in rows] for i, h in enumerate(header)}), path)
    store = new_store(folder)
    try:
        seed_notice(store)
        [out] = load_ledgers(store, [path])
        yield store, out
    finally:
        store.close()


@pytest.mark.parametrize("data_rows", [19, 20, 21, 45])
def test_load_ledgers__xlsx_every_row_after_the_header_scan_loads(con, tmp_path, data_rows):
    # the header is looked for among the first 20 rows; the rows after them are read on from
    # there, and none is lost at the seam (the 21st row of a sheet once was)
    vouchers = [f"记-{i:03d}" for i in range(1, data_rows + 1)]
    path = _workbook(tmp_path, {"明细账": [CN, *(row(voucher_no=v) for v in vouchers)]})
    [out] = load_ledgers(con, [path])
    assert out.rows_loaded == data_rows
    assert [(r["row_no"], r["voucher_no"]) for r in lines(con)] == list(enumerate(vouchers, start=1))


@pytest.mark.parametrize("stated", ["A1", "A1:Q3"])
def test_load_ledgers__xlsx_rows_and_columns_beyond_the_sheets_stated_range_load(con, tmp_path, stated):
    # programs that write workbooks often state a sheet's range wrong (<dimension ref="A1"/>, or a
    # template's): every row and column the sheet holds is read all the same
    vouchers = [f"记-{i:03d}" for i in range(1, 31)]
    written = _workbook(tmp_path, {"明细账": [CN, *(row(voucher_no=v) for v in vouchers)]})
    path = tmp_path / "stated.xlsx"
    with zipfile.ZipFile(written) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet"):
                data, n = re.subn(rb'<dimension ref="[^"]*"/>', f'<dimension ref="{stated}"/>'.encode(), data)
                assert n == 1
            dst.writestr(item, data)
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded) == ("loaded", 30), out.message
    assert [r["voucher_no"] for r in lines(con)] == vouchers


def test_load_ledgers__xlsx_sheet_without_a_stated_range_is_parsed_once(con, tmp_path, monkeypatch):
    # openpyxl parses a sheet without <dimension> whole to look for it, before reading it (a
    # third of the load's time): the look is skipped while the workbook opens, and put back after
    openpyxl = pytest.importorskip("openpyxl")
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    wb = openpyxl.Workbook(write_only=True)  # writes no <dimension>, as some programs do
    ws = wb.create_sheet("明细账")
    vouchers = [f"记-{i:03d}" for i in range(1, 31)]
    for r in [CN, *(row(voucher_no=v) for v in vouchers)]:
        ws.append(r)
    path = tmp_path / "no_dimension.xlsx"
    wb.save(path)
    with zipfile.ZipFile(path) as zf:
        assert b"<dimension" not in zf.read("xl/worksheets/sheet1.xml")
    looks = []
    monkeypatch.setattr(ReadOnlyWorksheet, "_get_size", lambda self: looks.append(self))
    spy = ReadOnlyWorksheet.__dict__["_get_size"]
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded) == ("loaded", 30), out.message
    assert [r["voucher_no"] for r in lines(con)] == vouchers
    assert looks == [] and ReadOnlyWorksheet.__dict__["_get_size"] is spy


# 科目 over 编码 | 名称 and 金额 over 借方 | 贷方, the other headings spanning both rows (merged
# vertically: only the upper cell holds the text), as many ledgers print their header
UPPER = [h if h not in ("科目编码", "科目名称", "借方金额", "贷方金额") else None for h in CN]
UPPER[CN.index("科目编码")], UPPER[CN.index("借方金额")] = "科目", "金额"
LOWER = [{"科目编码": "编码", "科目名称": "名称", "借方金额": "借方", "贷方金额": "贷方"}.get(h) for h in CN]


def test_load_ledgers__xlsx_header_on_two_rows(con, tmp_path):
    path = _workbook(tmp_path, {"明细账": [["凭证明细账"], UPPER, LOWER, row(), row(voucher_no="记-2", debit="120")]})
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded) == ("loaded", 2), out.message
    got = [(r["row_no"], r["voucher_no"], r["account_code"], r["account_name"], r["debit"]) for r in lines(con)]
    assert got == [(1, "记-0001", "7201", "事业支出", Decimal("480.00")), (2, "记-2", "7201", "事业支出", Decimal("120.00"))]


def test_load_ledgers__csv_header_on_two_rows_names_the_lower_rows_headings(con, tmp_path):
    path = write_csv(tmp_path / "two_rows.csv", [LOWER, row(), row(voucher_no="记-2", debit="bad")],
                     header=["" if h is None else h for h in UPPER], encoding="gbk")
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 1, 1), out.message
    # the bad amount is cited on data row 2 under the heading as the file spells it
    assert con.execute("select row_no, column_name, value from quarantine").fetchall() == [(2, "借方", "bad")]


def test_load_ledgers__xlsx_merged_cells_read_as_excel_shows_them(con, tmp_path):
    # a ledger printed for reading: a title merged across, the two-row header's headings merged
    # down over both rows, and each entry's voucher number, date and summary merged down over its
    # lines; the debit of 960 merged over the two debit lines is one amount, not two
    openpyxl = pytest.importorskip("openpyxl")
    col = {h: openpyxl.utils.get_column_letter(i + 1) for i, h in enumerate(CN)}
    entry = [row(line_no="1", debit="960", payee="张三"), row(line_no="2", debit=None, payee="李四"),
             row(line_no="3", debit=None, credit="960", account_code="8001", account_name="资金结存")]
    for r in entry[1:]:
        for h in ("凭证号", "凭证日期", "摘要"):
            r[CN.index(h)] = None
    path = _workbook(tmp_path, {"明细账": [["凭证明细账"], UPPER, LOWER, *entry,
                                           row(voucher_no="记-2", posted_on="2024-04-15", summary="4月")]})
    wb = openpyxl.load_workbook(path)
    ws = wb["明细账"]
    ws.merge_cells("A1:Q1")
    for h, up in zip(CN, UPPER):
        if up is not None and h not in ("科目编码", "借方金额"):
            ws.merge_cells(f"{col[h]}2:{col[h]}3")
    for h in ("凭证号", "凭证日期", "摘要"):
        ws.merge_cells(f"{col[h]}4:{col[h]}6")
    ws.merge_cells(f"{col['借方金额']}4:{col['借方金额']}5")
    wb.save(path)

    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 4, 0), out.message
    got = [(r["row_no"], r["voucher_no"], r["line_no"], r["posted_on"], r["summary"], r["account_code"],
            r["debit"], r["credit"], r["payee"]) for r in lines(con)]
    march, april = dt.date(2024, 3, 15), dt.date(2024, 4, 15)
    assert got == [
        (1, "记-0001", "1", march, "发放3月租赁补贴", "7201", Decimal("960"), Decimal("0"), "张三"),
        (2, "记-0001", "2", march, "发放3月租赁补贴", "7201", Decimal("0"), Decimal("0"), "李四"),
        (3, "记-0001", "3", march, "发放3月租赁补贴", "8001", Decimal("0"), Decimal("960"), "张三"),
        (4, "记-2", "1", april, "4月", "7201", Decimal("480.00"), Decimal("0"), "张三"),
    ]
    assert "merged cells: 6 cells read" in out.message and "合并单元格：6 个单元格" in out.message


def test_load_ledgers__xlsx_merged_ranges_found_across_the_scans_pieces(tmp_path, monkeypatch):
    # the sheet's XML is scanned in pieces: a merged range cut by a piece's end is still found
    openpyxl = pytest.importorskip("openpyxl")
    path = _workbook(tmp_path, {"明细账": [CN, *(row(voucher_no=f"记-{i}") for i in range(400))]})
    wb = openpyxl.load_workbook(path)
    refs = [f"G{r}:G{r + 1}" for r in range(2, 400, 2)]
    for ref in refs:
        wb["明细账"].merge_cells(ref)
    wb.save(path)
    monkeypatch.setattr(ledgers, "SCAN_PIECE_BYTES", 300)  # each piece cuts a range or two
    wb = openpyxl.load_workbook(path, read_only=True)
    has_formulas, merges = ledgers._scan_sheet_xml(wb, wb["明细账"])
    wb.close()
    assert not has_formulas
    assert merges == [(r - 1, r, 6) for r in range(2, 400, 2)]


def test_load_ledgers__xlsx_ledger_after_a_cover_sheet_is_found(con, tmp_path):
    # a cover sheet and a code list before the ledger's sheet, as some systems export them
    path = _workbook(tmp_path, {
        "封面": [["克拉玛依区住建局 2024年凭证明细账"], ["导出日期", "2024-11-30"]],
        "科目表": [["科目编码", "科目名称"], ["7201", "事业支出"]],
        "明细账": [CN, row(), row(voucher_no="记-2", debit="120")],
    })
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded) == ("loaded", 2), out.message
    assert [(r["row_no"], r["voucher_no"], r["debit"]) for r in lines(con)] == [
        (1, "记-0001", Decimal("480.00")), (2, "记-2", Decimal("120.00"))]


def _monthly_workbook(tmp_path: Path, name: str = "账簿.xlsx", year_sheet: bool = False,
                      april: bool = False) -> Path:
    """A unit's year kept one sheet a month, vouchers numbered afresh each month, after a notes
    sheet; March's second row has a bad amount. year_sheet: a 全年 sheet repeating every line."""
    months = {
        "1月": [row(voucher_no="记-1", posted_on="2024-01-10", payee="张三"),
                row(voucher_no="记-2", posted_on="2024-01-20", payee="李四")],
        "2月": [row(voucher_no="记-1", posted_on="2024-02-10", payee="张三")],
        "3月": [row(voucher_no="记-1", posted_on="2024-03-10", payee="张三"),
                row(voucher_no="记-2", posted_on="2024-03-12", debit="4８0.0.0", payee="王五")],
    }
    if april:  # the next night's export: April's sheet added
        months["4月"] = [row(voucher_no="记-1", posted_on="2024-04-10", payee="张三")]
    sheets = {"说明": [["各月明细账"]], **{m: [CN, *rows] for m, rows in months.items()}}
    if year_sheet:
        sheets["全年"] = [CN, *[r for rows in months.values() for r in rows]]
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    built = _workbook(tmp_path, sheets)
    return built.rename(tmp_path / name)


def test_load_ledgers__a_ledger_kept_one_sheet_a_month_loads_each_sheet_as_a_file(tmp_path):
    path = _monthly_workbook(tmp_path)
    store = new_store(tmp_path)
    try:
        seed_notice(store)
        [out] = load_ledgers(store, [path])
        assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 4, 1), out.message
        assert "3 ledger sheets, each read as a file of its own" in out.message
        assert "1月 (2 rows); 2月 (1 rows); 3月 (1 rows)" in out.message
        files = store.execute("select name, sha256 like ? || '#%', rows_loaded from input_files "
                              "where kind = 'ledger' order by file_id", [out.sha256]).fetchall()
        assert files == [("账簿.xlsx [1月]", True, 2), ("账簿.xlsx [2月]", True, 1), ("账簿.xlsx [3月]", True, 1),
                         ("账簿.xlsx", False, 4)]
        # rows are numbered and cited by sheet: March's second row, not the workbook's fourth
        set_context(store)
        [bad] = run_rule(store, rule("INPUT_ROW_INVALID"))
        assert (bad.source_file, bad.source_row) == ("账簿.xlsx [3月]", 2)
        assert "账簿.xlsx [3月] 数据第2行" in bad.message
        # 记-1 of each month is its own voucher: no duplicates; every month counts
        assert run_rule(store, rule("DUPLICATE_ENTRY")) == []
        assert spent(store) == Decimal("1920.00")
        # the same workbook again is skipped whole
        [again] = load_ledgers(store, [path])
        assert again.action == "skipped"
        assert store.execute("select count(*) from ledger_lines").fetchone() == (4,)
    finally:
        store.close()


def test_load_ledgers__the_next_nights_monthly_workbook_supersedes_last_nights_sheets(tmp_path):
    # the workbook is written over every night with one more month: each sheet supersedes the
    # same sheet of last night's workbook (same path), so every month counts once
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    path = _monthly_workbook(tmp_path / "v1")
    store = new_store(tmp_path)
    try:
        seed_notice(store)
        load_ledgers(store, [path])
        path.write_bytes(_monthly_workbook(tmp_path / "v2", april=True).read_bytes())
        [out] = load_ledgers(store, [path])
        assert (out.action, out.rows_loaded) == ("loaded", 5), out.message
        active = store.execute("select name from input_files where status = 'loaded' and name like '%[%' "
                               "order by file_id").fetchall()
        assert [n for (n,) in active] == [f"账簿.xlsx [{m}]" for m in ("1月", "2月", "3月", "4月")]
        assert store.execute("select count(*) from input_files where status = 'superseded'").fetchone() == (3,)
        assert spent(store) == Decimal("2400.00")  # 5 payments of 480
    finally:
        store.close()


def test_load_ledgers__a_month_sheet_that_lost_a_column_refuses_the_workbook_naming_it(con, tmp_path):
    # 2月's sheet lacks 凭证日期: loading 1月 alone would leave February's vouchers out unseen
    no_date = [h for h in CN if h != "凭证日期"]
    feb = [v for h, v in zip(CN, row(voucher_no="记-1")) if h != "凭证日期"]
    path = _workbook(tmp_path, {"1月": [CN, row(voucher_no="记-1")], "2月": [no_date, feb],
                                "科目余额表": [["科目编码", "科目名称", "借方", "贷方"], ["7201", "事业支出", "480", ""]]})
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected", out.message
    assert "2月 缺少 凭证日期(posted_on)" in out.message and "2月 lacks posted_on" in out.message
    # a sheet whose 科目名称 stands in for the missing 科目编码 but holds names only: named too
    (tmp_path / "names").mkdir()
    no_code = [h for h in CN if h != "科目编码"]
    feb = [v for h, v in zip(CN, row(voucher_no="记-1", posted_on="2024-02-10")) if h != "科目编码"]
    path = _workbook(tmp_path / "names", {"1月": [CN, row(voucher_no="记-1")], "2月": [no_code, feb]})
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and "工作表 2月：缺少必需的列：科目编码" in out.message, out.message
    assert "sheet 2月: required columns missing: account_code" in out.message
    assert con.execute("select count(*) from ledger_lines").fetchone() == (0,)
    # a balance sheet beside the ledger (no voucher number, no date) is not a ledger sheet
    (tmp_path / "ok").mkdir()
    path = _workbook(tmp_path / "ok", {"1月": [CN, row(voucher_no="记-1")],
                                       "科目余额表": [["科目编码", "科目名称", "借方", "贷方"], ["7201", "事业支出", "480", ""]]})
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded) == ("loaded", 1), out.message


# 3月's export renamed two headings (凭证日期 -> 业务日期, 借方金额 -> 借方本位币金额), or put a block
# of notes above its header (row 23)
RENAMED = [{"凭证日期": "业务日期", "借方金额": "借方本位币金额"}.get(h, h) for h in CN]
MARCH = [row(voucher_no=f"记-{i}", posted_on=f"2024-03-{i:02d}") for i in range(1, 5)]
NOTES = [["本月凭证已审核"] if i % 3 == 0 else [] for i in range(22)]


@pytest.mark.parametrize("march, says_zh, says_en", [
    ([RENAMED, *MARCH], "3月 缺少 凭证日期(posted_on)、借方金额(debit)（4 行有日期和金额",
     "3月 lacks posted_on, debit (4 rows with a date and an amount"),
    ([RENAMED, MARCH[0]], "3月 缺少 凭证日期(posted_on)、借方金额(debit)（1 行有日期和金额",  # named as a month
     "3月 lacks posted_on, debit (1 rows with a date and an amount"),
    ([*NOTES, CN, *MARCH], "3月 的表头在第23行，不在查找表头的前20行内",
     "3月 has its header on row 23, not within the first 20 rows"),
], ids=["renamed", "renamed_one_line", "header_at_row_23"])
def test_load_ledgers__a_month_sheet_whose_header_is_not_recognised_refuses_the_workbook(
        tmp_path, march, says_zh, says_en):
    # before, the sheet was passed over as a cover is: the workbook loaded without March, exit 0.
    # The notes sheet beside the months still is passed over.
    path = _workbook(tmp_path, {"说明": [["各月明细账"], ["金额单位：元"]],
                                "1月": [CN, row(voucher_no="记-1", posted_on="2024-01-10")],
                                "2月": [CN, row(voucher_no="记-1", posted_on="2024-02-10")], "3月": march})
    db = tmp_path / "recon.duckdb"
    result = CliRunner().invoke(main, ["load", "ledger", str(path), "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert "账簿.xlsx" in result.output and says_zh in result.output and says_en in result.output, result.output
    c = duckdb.connect(str(db))
    try:
        assert c.execute("select status from input_files").fetchall() == [("rejected",)]
        assert c.execute("select count(*) from ledger_lines").fetchone() == (0,)
    finally:
        c.close()


def test_load_ledgers__a_year_sheet_beside_the_months_is_not_counted_twice(tmp_path):
    # a 全年 sheet repeating every month's lines: the months it covers are superseded by it
    path = _monthly_workbook(tmp_path, year_sheet=True)
    store = new_store(tmp_path)
    try:
        seed_notice(store)
        [out] = load_ledgers(store, [path])
        assert out.action == "loaded", out.message
        status = dict(store.execute("select name, status from input_files").fetchall())
        assert status["账簿.xlsx [全年]"] == "loaded"
        assert {status[f"账簿.xlsx [{m}]"] for m in ("1月", "2月", "3月")} == {"superseded"}
        assert spent(store) == Decimal("1920.00")
    finally:
        store.close()


@pytest.mark.parametrize("state", ["hidden", "veryHidden"])
def test_load_ledgers__a_hidden_sheet_is_not_read_and_the_load_says_so(con, tmp_path, state):
    # a draft of vouchers not yet posted, kept hidden beside the ledger: before, it was loaded as
    # a month of its own and its payments counted
    openpyxl = pytest.importorskip("openpyxl")
    draft = [row(voucher_no=f"草-{i}", payee="王五") for i in range(1, 4)]
    path = _workbook(tmp_path, {"明细账": [CN, row(), row(voucher_no="记-2")], "草稿（未记账）": [CN, *draft]})
    wb = openpyxl.load_workbook(path)
    wb["草稿（未记账）"].sheet_state = state
    wb.save(path)
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded) == ("loaded", 2), out.message
    assert [r["voucher_no"] for r in lines(con)] == ["记-0001", "记-2"]
    says = ("隐藏的工作表未读取：草稿（未记账）", "hidden sheet not read: 草稿（未记账）")
    assert all(s in out.message for s in says), out.message
    assert con.execute("select name, message from input_files").fetchall() == [("账簿.xlsx", out.message)]
    # the ledger itself hidden, a cover shown: rejected, saying the hidden sheet was not read
    wb = openpyxl.load_workbook(path)
    del wb["草稿（未记账）"]
    wb["明细账"].sheet_state = state
    wb.create_sheet("封面", 0).append(["2024年凭证明细账"])
    wb.active = 0
    wb.save(path)
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and "隐藏的工作表未读取：明细账" in out.message, out.message


def test_load_ledgers__a_hidden_sheet_of_an_excel_97_2003_workbook_is_not_read(con, tmp_path):
    # make_fixtures.py: 1月 holds 记-1 and 记-2, 2月 记-1 again; 2月 hidden here (the visibility
    # byte of its BOUNDSHEET record, two bytes before its name's length)
    data = bytearray((FIXTURES / "xls" / "ledger_monthly_sheets.xls").read_bytes())
    at = data.find(bytes([2, 1]) + "2月".encode("utf-16-le"))
    assert data[at - 10:at - 8] == b"\x85\x00"  # the record's id
    data[at - 2] = 1
    path = tmp_path / "各月明细.xls"
    path.write_bytes(bytes(data))
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded) == ("loaded", 2), out.message
    assert "hidden sheet not read: 2月" in out.message and "隐藏的工作表未读取：2月" in out.message, out.message
    assert {r["posted_on"].month for r in lines(con)} == {1}


def test_load_ledgers__xlsx_blank_template_sheet_beside_the_ledger_is_passed_over(con, tmp_path):
    # a sheet holding the header and nothing under it (a template kept in the workbook) is not a
    # second ledger, before or after the ledger's sheet; a workbook of templates only loads empty
    openpyxl = pytest.importorskip("openpyxl")
    path = _workbook(tmp_path, {"模板": [CN], "明细账": [CN, row(), row(voucher_no="记-2")],
                                "空白": [["凭证明细账"], CN]})
    wb = openpyxl.load_workbook(path)  # the template's rows ruled: blank cells with borders
    thin = openpyxl.styles.Side(style="thin")
    for r in range(2, 53):
        for c in range(1, len(CN) + 1):
            wb["模板"].cell(r, c).border = openpyxl.styles.Border(top=thin, bottom=thin, left=thin, right=thin)
    wb.save(path)
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded) == ("loaded", 2), out.message
    assert [r["voucher_no"] for r in lines(con)] == ["记-0001", "记-2"]
    (tmp_path / "templates").mkdir()
    [out] = load_ledgers(con, [_workbook(tmp_path / "templates", {"模板": [CN], "空白": [CN]})])
    assert (out.action, out.rows_loaded) == ("loaded", 0), out.message


def test_load_ledgers__xlsx_without_a_complete_header_names_what_the_closest_sheet_lacks(con, tmp_path):
    # the ledger's sheet lacks 贷方金额; the cover before it lacks everything: the ledger's is named
    header = [h for h in CN if h != "贷方金额"]
    path = _workbook(tmp_path, {"封面": [["凭证明细账"]],
                                "明细账": [header, [v for h, v in zip(CN, row()) if h != "贷方金额"]]})
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and "required columns missing: credit " in out.message, out.message


def test_load_ledgers__xlsx_formula_uses_excel_value_or_is_quarantined(con, tmp_path):
    """Excel saves a formula with the value it computed: that value loads. A program that writes
    formulas and never opens the file leaves no value: the row is quarantined showing the formula."""
    from xml.sax.saxutils import escape

    import hostile_corpus as hc

    def cell(value: str, index: int) -> str:
        if index == CN.index("借方金额") and value.startswith("="):
            formula, _, cached = value[1:].partition("|")
            return f"<c><f>{escape(formula)}</f>" + (f"<v>{cached}</v>" if cached else "") + "</c>"
        return f'<c t="inlineStr"><is><t>{escape(value)}</t></is></c>'

    rows = [CN, row(voucher_no="记-1", debit="=400+80|480"), row(voucher_no="记-2", debit="=500+500"),
            row(voucher_no="记-3")]
    sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             + "".join("<row>" + "".join(cell(v, i) for i, v in enumerate(r)) + "</row>" for r in rows)
             + "</sheetData></worksheet>")
    path = tmp_path / "formulas.xlsx"
    hc.sheet_xlsx(path, sheet)
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 2, 1)
    assert [(r["voucher_no"], r["debit"]) for r in lines(con)] == [
        ("记-1", Decimal("480.00")), ("记-3", Decimal("480.00"))]
    assert con.execute("select row_no, column_name, value from quarantine").fetchall() == [
        (2, "借方金额", "=500+500")]


def test_load_ledgers__xlsx_formula_computed_to_an_empty_string_is_a_blank_cell(con, tmp_path):
    """=IF(A2=0,"",A2), as a hand-kept ledger fills its amount columns: Excel saves the empty text
    it computed as a value of type text (t="str") holding nothing. Before, openpyxl's None for it
    was taken for a formula never computed, and every such row was quarantined. A formula never
    computed, as openpyxl writes one (an empty value of no type), still is."""
    from xml.sax.saxutils import escape

    import hostile_corpus as hc

    def cell(value: str) -> str:
        if value.startswith("="):  # formula|type of the value Excel saved|the value
            formula, kind, cached = value[1:].split("|")
            typed = f' t="{kind}"' if kind else ""
            return f"<c{typed}><f>{escape(formula)}</f><v>{cached}</v></c>"
        return f'<c t="inlineStr"><is><t>{escape(value)}</t></is></c>'

    rows = [CN, row(voucher_no="记-1", debit='=IF(480=0,"",480)||480', credit='=IF(0=0,"",0)|str|'),
            row(voucher_no="记-1", line_no="2", account_code="8001", debit='=IF(0=0,"",0)|str|',
                credit='=IF(480=0,"",480)||480'),
            row(voucher_no="记-2", debit="=500+500||")]
    sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             + "".join("<row>" + "".join(cell(v or "") for v in r) + "</row>" for r in rows)
             + "</sheetData></worksheet>")
    path = tmp_path / "if_blank.xlsx"
    hc.sheet_xlsx(path, sheet)
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 2, 1), out.message
    assert [(r["voucher_no"], r["account_code"], r["debit"], r["credit"]) for r in lines(con)] == [
        ("记-1", "7201", Decimal("480.00"), Decimal("0")), ("记-1", "8001", Decimal("0"), Decimal("480.00"))]
    assert con.execute("select row_no, column_name, value from quarantine").fetchall() == [
        (3, "借方金额", "=500+500")]


def test_load_ledgers__parquet_typed_columns(con, tmp_path):
    path = tmp_path / "l.parquet"
    src = duckdb.connect()
    src.execute(
        """
        copy (
            select * from (values
                ('V1', 1, date '2024-03-15', 'budget', '7201', 480.0::double, null::double, '2210107'),
                ('V2', 1, date '2024-03-16', 'budget', '7201', 0.0, 100.25, '2210107'))
            as t(voucher_no, line_no, posted_on, book, account_code, debit, credit, function_code)
        ) to '""" + str(path).replace("'", "''") + "' (format parquet)")
    src.close()
    [out] = load_ledgers(con, [path])
    assert out.action == "loaded" and out.rows_loaded == 2
    got = [(r["row_no"], r["voucher_no"], r["line_no"], r["posted_on"], r["debit"], r["credit"]) for r in lines(con)]
    assert got == [(1, "V1", "1", dt.date(2024, 3, 15), Decimal("480.00"), Decimal("0")),
                   (2, "V2", "1", dt.date(2024, 3, 16), Decimal("0"), Decimal("100.25"))]
    assert con.execute("select preset, format from input_files").fetchone() == ("standard", "parquet")


def test_load_ledgers__parquet_float_amounts_off_the_cent_are_quarantined_as_in_xlsx(con, tmp_path):
    # before, 1234.567 loaded as 1234.57 and 0.004 as 0.00 in silence (the same values in a CSV,
    # an XLSX or a DECIMAL(18,3) column are quarantined); binary noise (0.1 + 0.2) is still a cent
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "l.parquet"
    pq.write_table(pa.table({"voucher_no": ["V1", "V2", "V3", "V4"], "line_no": ["1"] * 4,
                             "posted_on": ["2024-03-15"] * 4, "book": ["budget"] * 4,
                             "account_code": ["7201"] * 4, "debit": [0.1 + 0.2, 1234.567, 0.004, 480.0],
                             "credit": [None] * 4}), path)
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (2, 2)
    assert [(r["voucher_no"], r["debit"]) for r in lines(con)] == [("V1", Decimal("0.30")), ("V4", Decimal("480.00"))]
    assert con.execute("select row_no, value from quarantine order by row_no").fetchall() == [
        (2, "1234.567"), (3, "0.004")]


def test_load_ledgers__parquet_float32_amounts_beyond_the_fen_are_quarantined(con, tmp_path):
    """float32 amounts (pandas' astype('float32') before to_parquet): below 131,072 each cent is
    its own float32 and reads back exact; beyond, 4,619,527.60 is stored as 4,619,527.5, which
    looked like a whole cent and loaded 0.10 off in silence. Now such rows are quarantined, and the
    file's message says why."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "l.parquet"
    amounts = [480.01, 131071.99, 4619527.60, 131072.0]
    pq.write_table(pa.table({"voucher_no": ["V1", "V2", "V3", "V4"], "line_no": ["1"] * 4,
                             "posted_on": ["2024-03-15"] * 4, "book": ["budget"] * 4,
                             "account_code": ["7201"] * 4, "debit": pa.array(amounts, pa.float32()),
                             "credit": pa.array([None] * 4, pa.float32())}), path)
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (2, 2)
    assert [(r["voucher_no"], r["debit"]) for r in lines(con)] == [
        ("V1", Decimal("480.01")), ("V2", Decimal("131071.99"))]
    assert con.execute("select row_no, value from quarantine order by row_no").fetchall() == [
        (3, "4619527.5 (float32)"), (4, "131072.0 (float32)")]
    assert "为单精度浮点数（float32）" in out.message and "are float32" in out.message


def test_load_ledgers__parquet_date_times_dated_in_their_own_time_zone(con, tmp_path, monkeypatch):
    # 00:30 on 1 January in Beijing is 16:30 on 31 December in UTC: on a server kept in UTC the
    # line was dated 2023-12-31 (OUT_OF_PERIOD, and the wrong month)
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "l.parquet"
    times = pa.array([dt.datetime(2023, 12, 31, 16, 30), dt.datetime(2024, 3, 31, 17, 0)],
                     type=pa.timestamp("us", tz="Asia/Shanghai"))
    pq.write_table(pa.table({"voucher_no": ["V1", "V2"], "line_no": ["1", "1"], "posted_on": times,
                             "book": ["budget"] * 2, "account_code": ["7201"] * 2, "debit": ["480.00"] * 2,
                             "credit": [None, None]}), path)
    con.execute("set TimeZone = 'UTC'")
    [out] = load_ledgers(con, [path])
    assert out.rows_loaded == 2
    assert [r["posted_on"] for r in lines(con)] == [dt.date(2024, 1, 1), dt.date(2024, 4, 1)]


# --- presets -----------------------------------------------------------------------------------

def test_load_ledgers__standard_preset_detected(con, tmp_path):
    path = write_csv(tmp_path / "l.csv", [row(book="budget")], header=STD)
    [out] = load_ledgers(con, [path])
    assert out.action == "loaded"
    assert con.execute("select preset from input_files").fetchone() == ("standard",)
    assert lines(con)[0]["book"] == "budget"


def test_load_ledgers__forced_preset_that_does_not_fit_rejects(con, tmp_path):
    path = write_csv(tmp_path / "l.csv", [row()])
    [out] = load_ledgers(con, [path], preset="standard")
    assert out.action == "rejected" and "voucher_no" in out.message


@pytest.mark.parametrize("renamed", [
    {"借方金额": "借方发生额", "贷方金额": "贷方发生额"},
    {"借方金额": "本币借方", "贷方金额": "本币贷方"},      # 用友 exports: amounts in the home currency
    {"借方金额": "借方金额（元）", "贷方金额": "贷方金额(元)"},
    {"凭证日期": "制单日期", "凭证号": "凭证编号", "指标文号": "预算指标文号"},
    {"收款人": "收款人全称"}, {"收款人": "收款单位名称"}, {"收款人": "往来单位"},
])
def test_load_ledgers__headings_of_other_exports_name_the_same_fields(con, tmp_path, renamed):
    # the shipped cn-grp preset's aliases: each renamed column is read as its field, not left out
    # (a missing amount column rejects the file; a payee column not known leaves the payee blank)
    header = [renamed.get(h, h) for h in CN]
    path = write_csv(tmp_path / "l.csv", [row(debit="123.45")], header=header)
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded) == ("loaded", 1), out.message
    [line] = lines(con)
    assert (line["voucher_no"], line["posted_on"], line["debit"], line["budget_doc_no"], line["payee"]) == (
        "记-0001", dt.date(2024, 3, 15), Decimal("123.45"), NOTICE_NO, "张三")


def test_load_ledgers__alias_from_user_presets_file(con, tmp_path, monkeypatch):
    header = [("借方" if h == "借方金额" else "贷方发生数" if h == "贷方金额" else h) for h in CN]
    folder = tmp_path / "ledgers"
    folder.mkdir()
    path = write_csv(folder / "l.csv", [row(debit="5", credit="1")], header=header)
    # 借方 is a shipped alias; 贷方发生数 is not, until the site adds it
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and "credit" in out.message
    (folder / "presets.toml").write_text('[presets.cn-grp]\ncredit = ["贷方发生数"]\n', encoding="utf-8")
    [out] = load_ledgers(con, [path])
    assert out.action == "loaded"
    assert (lines(con)[0]["debit"], lines(con)[0]["credit"]) == (Decimal("5"), Decimal("1"))


def test_load_ledgers__alias_from_env_file(con, tmp_path, monkeypatch):
    header = ["单据号" if h == "凭证号" else h for h in CN]
    path = write_csv(tmp_path / "l.csv", [row()], header=header)
    user = tmp_path / "site.toml"
    user.write_text('[presets.cn-grp]\nvoucher_no = ["单据号"]\n', encoding="utf-8")
    monkeypatch.setenv("RECON_PRESETS", str(user))
    [out] = load_ledgers(con, [path])
    assert out.action == "loaded" and lines(con)[0]["voucher_no"] == "记-0001"


def test_load_ledgers__account_code_read_from_the_account_column_that_holds_code_and_name(con, tmp_path):
    # no 科目编码 column: 会计科目 holds the code and the name together, as many exports print it
    header = [h if h != "科目名称" else "会计科目" for h in CN if h != "科目编码"]

    def line(account: str, **fields) -> list:
        return [account if h == "科目名称" else v for h, v in zip(CN, row(**fields)) if h != "科目编码"]

    path = write_csv(tmp_path / "joined.csv", [
        line("720101 事业支出-基本支出"), line("[8001]资金结存", voucher_no="记-2", debit="", credit="480.00"),
        line("本月合计", voucher_no="", posted_on="", debit="480.00", credit="480.00"),
        line("事业支出", voucher_no="记-3"),  # a name alone: its code is missing
    ], header=header, encoding="gbk")
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 2, 1), out.message
    got = [(r["voucher_no"], r["account_code"], r["account_name"], r["book"]) for r in lines(con)]
    assert got == [("记-0001", "720101", "720101 事业支出-基本支出", "budget"), ("记-2", "8001", "[8001]资金结存", "budget")]
    assert con.execute("select row_no, column_name, value from quarantine").fetchall() == [(4, "会计科目", "事业支出")]


def test_load_ledgers__account_column_of_names_only_does_not_stand_in_for_the_code(con, tmp_path):
    header = [h if h != "科目名称" else "会计科目" for h in CN if h != "科目编码"]
    rows = [[v for h, v in zip(CN, row(voucher_no=f"记-{i}")) if h != "科目编码"] for i in range(3)]
    [out] = load_ledgers(con, [write_csv(tmp_path / "names.csv", rows, header=header)])
    assert out.action == "rejected" and "required columns missing: account_code" in out.message, out.message


def test_load_ledgers__voucher_word_printed_apart_joins_the_number(tmp_path):
    # 凭证字 | 凭证号, as some systems export them: 收 1 and 付 1 are two vouchers, not one voucher's
    # line twice (DUPLICATE_ENTRY). A number that already carries its word stays as written.
    header = ["凭证字", *CN]
    rows = [["收", *row(voucher_no="1", payee="张三")], ["付", *row(voucher_no="1", payee="李四")],
            ["记", *row(voucher_no="记-3", payee="王五")], ["", *row(voucher_no="4", payee="赵六")]]

    def duplicates(path: Path, expected_vouchers: list[str]) -> list:
        store = new_store(path.parent)
        try:
            seed_notice(store)
            [out] = load_ledgers(store, [path])
            assert (out.action, out.rows_loaded) == ("loaded", 4), out.message
            assert [r["voucher_no"] for r in lines(store)] == expected_vouchers
            set_context(store)
            return [(d.voucher_no, d.line_no) for d in run_rule(store, rule("DUPLICATE_ENTRY"))]
        finally:
            store.close()

    joined = ["收-1", "付-1", "记-3", "4"]
    for kind in ("csv", "xlsx", "parquet"):
        (tmp_path / kind).mkdir()
    assert duplicates(write_csv(tmp_path / "csv" / "words.csv", rows, header=header, encoding="gbk"), joined) == []
    assert duplicates(_workbook(tmp_path / "xlsx", {"凭证": [header, *rows]}), joined) == []
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({h: [r[i] or None for r in rows] for i, h in enumerate(header)}),
                   tmp_path / "parquet" / "words.parquet")
    assert duplicates(tmp_path / "parquet" / "words.parquet", joined) == []
    # the same export without its 凭证字 column: the two vouchers read as one line twice
    (tmp_path / "control").mkdir()
    alone = write_csv(tmp_path / "control" / "numbers.csv", [r[1:] for r in rows])
    assert duplicates(alone, ["1", "1", "记-3", "4"]) == [("1", "1")]


def _by_direction(fields: list, amount: str, direction: str) -> list:
    """A row of CN with 借方金额 | 贷方金额 replaced by 金额 | 方向."""
    values = [v for h, v in zip(CN, fields) if h not in ("借方金额", "贷方金额")]
    at = CN.index("借方金额")
    return [*values[:at], amount, direction, *values[at:]]


def test_load_ledgers__one_amount_column_with_its_direction_reads_as_debit_or_credit(tmp_path):
    # 金额 | 方向 (借 / 贷), as some systems export voucher lines, in place of 借方 | 贷方
    header = _by_direction(CN, "金额", "方向")
    rows = [_by_direction(row(voucher_no="记-1"), "480.00", "借"),
            _by_direction(row(voucher_no="记-2", summary="退回"), "80.00", " 贷 "),
            _by_direction(row(voucher_no="记-3"), "1,000.00", "借方"),
            _by_direction(row(voucher_no="记-4"), "5.00", "收"),       # neither 借 nor 贷
            _by_direction(row(voucher_no="记-5"), "5.00", ""),         # no direction
            _by_direction(row(voucher_no="记-6"), "5.0.0", "借")]      # no amount
    expected = [("记-1", Decimal("480.00"), Decimal("0")), ("记-2", Decimal("0"), Decimal("80.00")),
                ("记-3", Decimal("1000.00"), Decimal("0"))]
    quarantined = [(4, "方向", "收", "借贷方向无法识别（应为 借 或 贷） / unparsable debit-credit direction (借 or 贷 expected)"),
                   (5, "方向", None, "借贷方向为空 / debit-credit direction is blank"),
                   (6, "金额", "5.0.0", "金额无法识别 / unparsable amount")]
    for kind in ("csv", "xlsx", "parquet"):
        with _loaded_alone(tmp_path, kind, header, rows, stem="分录") as (store, out):
            assert (kind, out.action, out.rows_loaded, out.rows_quarantined) == (kind, "loaded", 3, 3), out.message
            assert "按借贷方向列" in out.message and "direction column" in out.message
            assert [(r["voucher_no"], r["debit"], r["credit"]) for r in lines(store)] == expected, kind
            assert store.execute("select row_no, column_name, value, reason from quarantine "
                                 "order by row_no").fetchall() == quarantined, kind
            assert spent(store) == Decimal("1400.00")  # 480 + 1,000 debited, 80 credited back


def test_load_ledgers__a_column_of_auxiliary_items_fills_the_fields_without_a_column(tmp_path):
    # 辅助项: the line's auxiliary items (辅助核算) in one column, label and value, as some systems
    # export them. Before, such a file loaded with no purpose, codes or flag: nothing tied to the notice
    header = ["凭证日期", "凭证号", "摘要", "科目编码", "科目名称", "借方金额", "贷方金额", "收款人", "辅助项"]
    rows = [
        ["2024-03-05", "记-1", "发放3月租赁补贴", "7201", "事业支出", "480.00", "", "张三",
         f"项目:{RENT};功能分类:2210107 保障性住房租金补贴;经济分类:30305 生活补助;项目代码:{PROJECT_CODE};"
         f"资金来源:中央直达资金;直达资金标识:是;指标文号:克区财综[2024]2号"],
        # brackets as labels, spaces between the items; an item of another kind (部门) before
        ["2024-03-06", "记-2", "老旧小区改造工程款", "7201", "事业支出", "100000.00", "", "某建筑公司",
         f"部门：住房保障科 【项目】[0108]{OLD_ESTATES} 【功能科目】2210108 【项目代码】{PROJECT_CODE} "
         f"【资金来源】中央直达资金 【直达资金标识】01 中央直达资金"],
        # a code that does not parse is quarantined under the column's heading
        ["2024-03-07", "记-3", "补贴", "7201", "事业支出", "480.00", "", "李四",
         f"预算项目:办公经费|项目:{RENT}|功能分类:22O1O7|项目代码:{PROJECT_CODE}"],
        ["2024-03-08", "记-4", "办公用品", "7201", "事业支出", "50.00", "", "文具店", ""],
        # 预算项目 is not 项目
        ["2024-03-09", "记-5", "补贴", "7201", "事业支出", "480.00", "", "王五",
         f"预算项目:办公经费|项目:{RENT}|功能分类:2210107|项目代码:{PROJECT_CODE}"],
        # in Excel's text form, as some systems write every cell
        ["2024-03-10", "记-6", "补贴", "7201", "事业支出", "480.00", "", "赵六",
         f'="项目:{RENT};功能分类:2210107;项目代码:{PROJECT_CODE}"'],
    ]
    expected = [
        ("记-1", "2210107", "30305", PROJECT_CODE, RENT, "中央直达资金", True, NOTICE_NO, "张三"),
        ("记-2", "2210108", None, PROJECT_CODE, f"[0108]{OLD_ESTATES}", "中央直达资金", True, None, "某建筑公司"),
        ("记-4", None, None, None, None, None, None, None, "文具店"),
        ("记-5", "2210107", None, PROJECT_CODE, RENT, None, None, None, "王五"),
        ("记-6", "2210107", None, PROJECT_CODE, RENT, None, None, None, "赵六"),
    ]
    for kind in ("csv", "xlsx", "parquet"):
        with _loaded_alone(tmp_path, kind, header, rows, stem="凭证") as (store, out):
            assert (kind, out.rows_loaded, out.rows_quarantined) == (kind, 5, 1), out.message
            assert "从辅助核算列读出" in out.message and "收款人" not in out.message.split(" / ")[0]
            got = [(r["voucher_no"], r["function_code"], r["economic_code"], r["project_code"], r["purpose"],
                    r["fund_source"], r["direct_flag"], r["budget_doc_no"], r["payee"]) for r in lines(store)]
            assert got == expected, kind
            assert store.execute("select row_no, column_name, value from quarantine").fetchall() == [
                (3, "辅助项（功能分类）", "22O1O7")], kind
            set_context(store)
            assert dict(store.execute("select purpose, spent from rpt_allocation_summary "
                                      "where spent <> 0").fetchall()) == {
                OLD_ESTATES: Decimal("100000.00"), RENT: Decimal("1440.00")}, kind

def test_load_ledgers__a_purpose_heading_over_auxiliary_items_is_read_as_them(tmp_path):
    # 辅助核算项目 is a purpose heading, and some systems put every auxiliary item under it. Before,
    # the whole cell was read as the purpose: no code, no project, nothing tied to the notice
    header = ["凭证日期", "凭证号", "摘要", "科目编码", "科目名称", "借方金额", "贷方金额", "辅助核算项目"]
    rows = [
        ["2024-03-05", "记-1", "发放3月租赁补贴", "7201", "事业支出", "480.00", "",
         f"项目:{RENT};功能分类:2210107;项目代码:{PROJECT_CODE}"],
        ["2024-03-06", "记-2", "发放3月租赁补贴", "7201", "事业支出", "480.00", "",
         f"【项目】{RENT} 【功能科目】2210107 【项目代码】{PROJECT_CODE}"],
        ["2024-03-07", "记-3", "办公用品", "7201", "事业支出", "50.00", "", ""],
    ]
    for kind in ("csv", "xlsx", "parquet"):
        with _loaded_alone(tmp_path, kind, header, rows, stem="凭证") as (store, out):
            assert (kind, out.rows_loaded, out.rows_quarantined) == (kind, 3, 0), out.message
            got = [(r["voucher_no"], r["function_code"], r["project_code"], r["purpose"]) for r in lines(store)]
            assert got == [("记-1", "2210107", PROJECT_CODE, RENT), ("记-2", "2210107", PROJECT_CODE, RENT),
                           ("记-3", None, None, None)], kind
            assert spent(store) == Decimal("960.00")
    # the control: names under the heading, one of them labelled, stay the purpose as written
    plain = [r[:7] + [v] for r, v in zip(rows, [RENT, f"项目:{RENT}", "办公经费"])]
    (tmp_path / "plain").mkdir()
    with _loaded_alone(tmp_path / "plain", "csv", header, plain, stem="凭证") as (store, out):
        assert [r["purpose"] for r in lines(store)] == [RENT, f"项目:{RENT}", "办公经费"]


@pytest.mark.parametrize("credit", ["0", "-1", "2"])
def test_load_ledgers__a_direction_written_as_a_number_reads_1_as_debit(tmp_path, credit):
    # 金额 | 借贷方向 as a database table holds it (Kingdee's FDC: 1 借, 0 or -1 贷; others 2 贷).
    # Before, the file was rejected: the direction's values were not 借 / 贷
    other = "2" if credit != "2" else "0"
    header = _by_direction(CN, "金额", "借贷方向")
    rows = [_by_direction(row(voucher_no="记-1"), "480.00", "1"),
            _by_direction(row(voucher_no="记-2", summary="退回"), "80.00", credit),
            _by_direction(row(voucher_no="记-3"), "1,000.00", "1"),
            *(_by_direction(row(voucher_no=f"记-{n}", payee=f"户{n}"), "480.00", "1") for n in range(4, 24)),
            # beyond the rows read under the header: a value that is not this file's 贷, and a word
            _by_direction(row(voucher_no="记-24"), "5.00", other),
            _by_direction(row(voucher_no="记-25"), "5.00", "借")]
    reason = (f"借贷方向无法识别（应为 1（借）或 {credit}（贷）） / unparsable debit-credit direction "
              f"(1 (debit) or {credit} (credit) expected)")
    for kind in ("csv", "xlsx", "parquet"):
        with _loaded_alone(tmp_path, kind, header, rows, stem="分录") as (store, out):
            assert (kind, out.action, out.rows_loaded, out.rows_quarantined) == (kind, "loaded", 23, 2), out.message
            assert f"（1 为借，{credit} 为贷）" in out.message
            assert [(r["voucher_no"], r["debit"], r["credit"]) for r in lines(store)][:3] == [
                ("记-1", Decimal("480.00"), Decimal("0")), ("记-2", Decimal("0"), Decimal("80.00")),
                ("记-3", Decimal("1000.00"), Decimal("0"))], kind
            assert store.execute("select row_no, value, reason from quarantine order by row_no").fetchall() == [
                (24, other, reason), (25, "借", reason)], kind
            assert spent(store) == Decimal(1400 + 20 * 480)


def test_load_ledgers__a_column_of_two_numbers_for_credit_is_not_a_direction(con, tmp_path):
    # 1 / 0 / 2 together: which is 贷 cannot be told, so the file is rejected, saying why
    header = _by_direction(CN, "金额", "方向")
    rows = [_by_direction(row(voucher_no=f"记-{i}"), "480.00", side) for i, side in enumerate("10210", 1)]
    path = write_csv(tmp_path / "分录.csv", rows, header=header)
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and "（或 1 / 0）" in out.message

def test_load_ledgers__a_direction_beside_debit_and_credit_is_the_balances_and_not_read(con, tmp_path):
    # a 明细账 prints 借方 | 贷方 | 方向 | 余额: 方向 is the balance's side, the amounts are read as they are
    header = [*CN, "方向", "余额", "金额"]
    path = write_csv(tmp_path / "明细账.csv", [row(debit="480.00") + ["贷", "520.00", "480.00"]], header=header)
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded) == ("loaded", 1), out.message
    assert (lines(con)[0]["debit"], lines(con)[0]["credit"]) == (Decimal("480.00"), Decimal("0"))
    assert out.message is None or "借贷方向" not in out.message


def test_load_ledgers__amount_over_debit_and_credit_beside_a_direction_reads_the_two_rows(con, tmp_path):
    # a 明细账's header on two rows: 金额 over 借方 | 贷方, then 方向 | 余额. The upper row alone
    # names an amount and a direction; the two rows name the debit and credit columns themselves.
    upper = [("金额" if h == "借方金额" else "" if h == "贷方金额" else h) for h in CN] + ["方向", "余额"]
    lower = [("借方" if h == "借方金额" else "贷方" if h == "贷方金额" else "") for h in CN] + ["", ""]
    path = write_csv(tmp_path / "明细账.csv", [lower, row(debit="480.00") + ["借", "480.00"],
                                               row(voucher_no="记-2", debit="", credit="80.00") + ["借", "400.00"]],
                     header=upper)
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 2, 0), out.message
    got = [(r["row_no"], r["voucher_no"], r["debit"], r["credit"]) for r in lines(con)]
    assert got == [(1, "记-0001", Decimal("480.00"), Decimal("0")), (2, "记-2", Decimal("0"), Decimal("80.00"))]


def test_load_ledgers__a_direction_column_not_of_debits_and_credits_is_not_read_as_one(con, tmp_path):
    # 金额 | 方向 where 方向 is the balance's side (借 / 贷 / 平), mostly 平: it cannot split the amounts
    header = _by_direction(CN, "金额", "方向")
    rows = [_by_direction(row(voucher_no=f"记-{i}"), "480.00", side) for i, side in enumerate("平平借")]
    [out] = load_ledgers(con, [write_csv(tmp_path / "余额方向.csv", rows, header=header)])
    assert out.action == "rejected", out.message
    assert "required columns missing: debit, credit" in out.message
    assert "大多不是 借 / 贷" in out.message and "cannot tell debits from credits" in out.message


def test_load_ledgers__one_amount_column_without_a_direction_is_rejected_saying_what_it_needs(con, tmp_path):
    header = [h for h in _by_direction(CN, "金额", "方向") if h != "方向"]
    rows = [[v for h, v in zip(_by_direction(CN, "金额", "方向"), _by_direction(row(), "480.00", "借"))
             if h != "方向"]]
    [out] = load_ledgers(con, [write_csv(tmp_path / "金额.csv", rows, header=header)])
    assert out.action == "rejected", out.message
    assert "required columns missing: debit, credit" in out.message
    assert "需要借贷方向列" in out.message and "a direction column" in out.message


def test_load_ledgers__duplicate_columns_rejected(con, tmp_path):
    header = CN + ["借方"]
    path = write_csv(tmp_path / "l.csv", [row() + ["1"]], header=header)
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and "借方金额 / 借方" in out.message


# --- value forms ---------------------------------------------------------------------------------

@pytest.mark.parametrize("field, raw, column, expected", [
    ("function_code", "2210107 保障性住房租金补贴", "function_code", "2210107"),
    ("function_code", "[2210107]保障性住房租金补贴", "function_code", "2210107"),
    ("function_code", "【2210107】保障性住房租金补贴", "function_code", "2210107"),
    ("function_code", "2210107保障性住房租金补贴", "function_code", "2210107"),
    ("function_code", "2210107-保障性住房租金补贴", "function_code", "2210107"),
    ("function_code", "２２１０１０７", "function_code", "2210107"),
    ("function_code", "22101", "function_code", "22101"),
    # by level, 类 款 项 apart: the levels joined (before, 221-01-07 read as the 类 code 221)
    ("function_code", "221-01-07", "function_code", "2210107"),
    ("function_code", "221.01.07 保障性住房租金补贴", "function_code", "2210107"),
    ("function_code", "[221 01 07]保障性住房租金补贴", "function_code", "2210107"),
    ("function_code", "221-01 住房改革支出", "function_code", "22101"),
    ("function_code", "221 住房保障支出", "function_code", "221"),
    ("function_code", "22101 07", "function_code", "2210107"),  # before, 22101
    ("function_code", "221-0107", "function_code", "2210107"),  # before, 221
    ("function_code", "221|01|07", "function_code", "2210107"),  # before, 221
    ("function_code", "2210107-01 保障性住房租金补贴", "function_code", "2210107"),  # nothing below 项
    ("function_code", "2210107 2024年租赁补贴", "function_code", "2210107"),  # a name of digits
    ("function_code", "2210107.0", "function_code", "2210107"),
    # a path of codes, each level under the one above: the deepest (before, the 类 code 221 / 208)
    ("function_code", "221 住房保障支出/22101 保障性安居工程支出/2210107 保障性住房租金补贴", "function_code", "2210107"),
    ("function_code", "[208]社会保障和就业支出\\[20802]民政管理事务\\[2080201]行政运行", "function_code", "2080201"),
    ("function_code", "221>22101>2210107", "function_code", "2210107"),
    ("economic_code", "303-05", "economic_code", "30305"),
    ("economic_code", "30201-01 办公用品", "economic_code", "30201"),  # nothing below 款
    ("economic_code", "302 商品和服务支出/30201 办公费", "economic_code", "30201"),
    ("function_code", "", "function_code", None),
    ("economic_code", "30305 生活补助", "economic_code", "30305"),
    ("account_code", "7201 事业支出", "account_code", "7201"),
    ("account_code", "7201.01", "account_code", "720101"),
    ("debit", "1,234.56", "debit", Decimal("1234.56")),
    ("debit", "-1,234.56", "debit", Decimal("-1234.56")),
    ("debit", "(1,234.56)", "debit", Decimal("-1234.56")),
    ("debit", "1,234.56-", "debit", Decimal("-1234.56")),  # a minus after: quarantined before
    ("debit", "480-", "debit", Decimal("-480")),
    ("debit", "−1,234.56", "debit", Decimal("-1234.56")),  # U+2212, a typeset minus
    ("debit", "'1234.56", "debit", Decimal("1234.56")),  # Excel's mark of a number kept as text
    ("debit", " 1 234.50 ", "debit", Decimal("1234.50")),
    ("debit", "１，２３４．５６", "debit", Decimal("1234.56")),
    ("debit", "¥480", "debit", Decimal("480")),
    ("debit", "480.000", "debit", Decimal("480")),
    ("debit", "", "debit", Decimal("0")),
    ("debit", "-", "debit", Decimal("0")),
    ("posted_on", "2024-03-15", "posted_on", dt.date(2024, 3, 15)),
    ("posted_on", "2024/3/5", "posted_on", dt.date(2024, 3, 5)),
    ("posted_on", "2024.3.15", "posted_on", dt.date(2024, 3, 15)),
    ("posted_on", "2024年3月15日", "posted_on", dt.date(2024, 3, 15)),
    ("posted_on", "20240315", "posted_on", dt.date(2024, 3, 15)),
    ("posted_on", "45366", "posted_on", dt.date(2024, 3, 15)),
    ("posted_on", "2024/3/15 0:00", "posted_on", dt.date(2024, 3, 15)),
    ("posted_on", "2024-03-15 00:00:00.000", "posted_on", dt.date(2024, 3, 15)),  # SQL Server's text
    ("posted_on", "2024-03-15T00:00:00.000", "posted_on", dt.date(2024, 3, 15)),
    ("posted_on", "2024/03/15 10:21:33.1234567", "posted_on", dt.date(2024, 3, 15)),
    ("posted_on", "2024年3月15日 10:00", "posted_on", dt.date(2024, 3, 15)),
    ("posted_on", "２０２４-０３-１５ ００:００:００.０００", "posted_on", dt.date(2024, 3, 15)),
    ("direct_flag", "是", "direct_flag", True),
    ("direct_flag", "否", "direct_flag", False),
    ("direct_flag", "Y", "direct_flag", True),
    ("direct_flag", "n", "direct_flag", False),
    ("direct_flag", "1", "direct_flag", True),
    ("direct_flag", "0", "direct_flag", False),
    ("direct_flag", "true", "direct_flag", True),
    ("direct_flag", "01 中央直达资金", "direct_flag", True),
    ("direct_flag", "01", "direct_flag", True),
    ("direct_flag", "02 中央参照直达资金", "direct_flag", True),
    ("direct_flag", "09 其他", "direct_flag", False),
    ("direct_flag", "", "direct_flag", None),
    ("direct_flag", "待定", "direct_flag", None),
    ("book", "预算会计", "book", "budget"),
    ("book", "budget", "book", "budget"),
    ("book", "预算", "book", "budget"),
    ("book", "财务会计", "book", "financial"),
    ("book", "financial", "book", "financial"),
    ("book", "财务", "book", "financial"),
    ("book", "", "book", "budget"),  # blank: 7201 is a budget-accounting account
    ("purpose", " 2024年 租赁补贴(中央直达) ", "purpose_key", "2024年租赁补贴(中央直达)"),
    ("budget_doc_no", "克区财综[2024]2号", "budget_doc_no", NOTICE_NO),
    ("budget_doc_no", "克区财综﹝2024﹞2号", "budget_doc_no", NOTICE_NO),
    ("project_code", " 10000013z135080000028 ", "project_code", PROJECT_CODE),
])
def test_load_ledgers__value_forms(con, tmp_path, field, raw, column, expected):
    path = write_csv(tmp_path / "l.csv", [row(**{field: raw})])
    [out] = load_ledgers(con, [path])
    assert out.rows_loaded == 1 and out.rows_quarantined == 0, out
    assert lines(con)[0][column] == expected


def test_load_ledgers__a_function_code_written_as_a_path_is_its_item_code_and_not_class_level(tmp_path):
    # an export writing each line's function code as its path: before, the 类 code 221 was stored,
    # and every line was reported as CODE_NOT_ITEM_LEVEL
    path_form = "221 住房保障支出/22101 保障性安居工程支出/2210107 保障性住房租金补贴"
    path = write_csv(tmp_path / "l.csv", [row(voucher_no=f"记-{i}", function_code=path_form) for i in range(1, 4)])
    store = new_store(tmp_path)
    try:
        seed_notice(store)
        [out] = load_ledgers(store, [path])
        assert (out.rows_loaded, out.rows_quarantined) == (3, 0), out.message
        assert store.execute("select distinct function_code, function_code_raw from ledger_lines").fetchall() == [
            ("2210107", path_form)]
        set_context(store)
        assert run_rule(store, rule("CODE_NOT_ITEM_LEVEL")) == []
    finally:
        store.close()


@pytest.mark.parametrize("field, raw, says", [
    # pieces that are not its levels (3, 5, 7 digits as they add up): 2210107? 2210 and 107?
    ("function_code", "2210-107", "功能分类科目分段书写，但各段不是逐级的类、款、项"),
    ("function_code", "2024-03", "功能分类科目分段书写，但各段不是逐级的类、款、项"),
    ("economic_code", "302-011", "经济分类科目分段书写，但各段不是逐级的类、款"),
    # a path whose codes do not nest: 2210108 or 2210107?
    ("function_code", "221 住房保障支出/2210108 老旧小区改造/2210107", "功能分类科目写成多级路径，但各级编码不是逐级细分"),
])
def test_load_ledgers__a_code_not_certain_from_its_pieces_or_path_is_quarantined_saying_why(
        con, tmp_path, field, raw, says):
    # before, 2210-107 was stored as 2210, 2024-03 as 2024, 302-011 as 302 and the path as 221
    path = write_csv(tmp_path / "l.csv", [row(summary="one"), row(summary="two", **{field: raw})])
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (1, 1), out.message
    [(row_no, value, reason)] = con.execute("select row_no, value, reason from quarantine").fetchall()
    assert (row_no, value) == (2, raw) and reason.startswith(says), reason
    assert f"unparsable {field.replace('_', ' ')}:" in reason and "is not certain" in reason, reason


def test_load_ledgers__a_code_after_its_name_in_brackets_is_read(tmp_path):
    # 事业支出(7201), 保障性住房租金补贴（2210107）: some systems print the name first and the
    # code after it in brackets. Before, every such line was quarantined as an unparsable code
    forms = [
        dict(account_code="事业支出(7201)"),
        dict(account_code="事业支出（7201）", function_code="保障性住房租金补贴（2210107）"),
        dict(account_code="事业支出（7201.01）", function_code="保障性住房租金补贴(221-01-07)"),
        dict(function_code="保障性住房租金补贴 [2210107]", economic_code="生活补助（30305）"),
        dict(function_code="住房保障支出/保障性安居工程支出/保障性住房租金补贴(2210107)"),  # names, then the code
    ]
    doubtful = [
        # the bracket holds more than the code, or the name codes of its own: not read
        dict(account_code="事业支出(基本支出)"),
        dict(account_code="事业支出(7201)(01)"),
        dict(function_code="住房保障支出(221)/保障性安居工程支出(22101)/保障性住房租金补贴(2210107)"),
        dict(function_code="租赁补贴(2024年)"),
        # the pieces in the bracket are not levels: quarantined saying so, as before the name
        dict(function_code="保障性住房租金补贴（2210-107）"),
    ]
    path = write_csv(tmp_path / "l.csv", [row(voucher_no=f"记-{i}", **f) for i, f in enumerate(forms + doubtful, 1)])
    store = new_store(tmp_path)
    try:
        seed_notice(store)
        [out] = load_ledgers(store, [path])
        assert (out.rows_loaded, out.rows_quarantined) == (len(forms), len(doubtful)), out.message
        got = [(r["voucher_no"], r["account_code"], r["book"], r["function_code"], r["economic_code"])
               for r in lines(store)]
        assert got == [("记-1", "7201", "budget", "2210107", "30305"), ("记-2", "7201", "budget", "2210107", "30305"),
                       ("记-3", "720101", "budget", "2210107", "30305"), ("记-4", "7201", "budget", "2210107", "30305"),
                       ("记-5", "7201", "budget", "2210107", "30305")]
        assert [(r["voucher_no"], r["function_code_raw"]) for r in lines(store)][1] == ("记-2", "保障性住房租金补贴（2210107）")
        quarantined = store.execute("select row_no, value, reason from quarantine order by row_no").fetchall()
        assert [(n, v) for n, v, _ in quarantined] == [
            (6, "事业支出(基本支出)"), (7, "事业支出(7201)(01)"),
            (8, "住房保障支出(221)/保障性安居工程支出(22101)/保障性住房租金补贴(2210107)"),
            (9, "租赁补贴(2024年)"), (10, "保障性住房租金补贴（2210-107）")]
        assert quarantined[-1][2].startswith("功能分类科目分段书写"), quarantined[-1]
        assert spent(store) == Decimal("480.00") * len(forms)
    finally:
        store.close()


def test_load_ledgers__an_account_column_of_names_with_their_codes_after_them_stands_in_for_the_code(con, tmp_path):
    # no 科目编码 column, and 会计科目 prints the name, then the code in brackets: the code is read
    # from it, as from 720101 事业支出-基本支出. Before, the file was rejected for want of a code
    header = [h if h != "科目名称" else "会计科目" for h in CN if h != "科目编码"]

    def line(account: str, **fields) -> list:
        return [account if h == "科目名称" else v for h, v in zip(CN, row(**fields)) if h != "科目编码"]

    path = write_csv(tmp_path / "named.csv", [
        line("事业支出（720101）"), line("资金结存(8001)", voucher_no="记-2", debit="", credit="480.00")],
        header=header, encoding="gbk")
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 2, 0), out.message
    assert [(r["account_code"], r["account_name"], r["book"]) for r in lines(con)] == [
        ("720101", "事业支出（720101）", "budget"), ("8001", "资金结存(8001)", "budget")]


def test_load_ledgers__a_year_of_two_digits_is_no_date(con, tmp_path):
    # strptime's %Y takes one to four digits: before, 24-03-15 loaded as 15 March of the year 24
    # (and such a line was out of every period, not quarantined). A date is quarantined, saying
    # why, unless its year has four digits
    path = write_csv(tmp_path / "l.csv", [row(posted_on="24-03-15"), row(posted_on="24/3/15"),
                                          row(posted_on="24年3月15日"), row(posted_on="0024-03-15"),
                                          row(posted_on="2024-03-15")])
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (1, 4), out.message
    assert [r["posted_on"] for r in lines(con)] == [dt.date(2024, 3, 15)]
    two = "日期的年份不是四位数，无法确定年份 / the year of the date is not written in four digits"
    assert con.execute("select row_no, reason from quarantine order by row_no").fetchall() == [
        (1, two), (2, two), (3, two), (4, "日期无法识别 / unparsable date")]


def test_load_ledgers__a_date_with_the_day_and_month_first_says_so(con, tmp_path):
    # 3/5/2024 is March or May: quarantined. Before, the reason said its year was not in four
    # digits, which it is
    path = write_csv(tmp_path / "l.csv", [row(posted_on="3/5/2024"), row(posted_on="05.03.2024")])
    [out] = load_ledgers(con, [path])
    assert out.rows_quarantined == 2
    reasons = {r for (r,) in con.execute("select reason from quarantine").fetchall()}
    assert reasons == {"日期应为年在前（如 2024-03-05），日、月在前无法确定月份 / a date must put the year first "
                       "(2024-03-05): with the day and month first, the month is not certain"}


def test_load_ledgers__values_in_excels_text_form_read_as_the_text_inside(con, tmp_path):
    # ="0001": some systems write codes so, for Excel to keep them as text (leading zeros, long
    # digit strings); before, every such row was quarantined for its date and codes
    def excel_text(**fields):
        return row(**{f: f'="{v}"' for f, v in fields.items()})

    path = write_csv(tmp_path / "text_form.csv", [
        excel_text(voucher_no="记-0001", posted_on="2024-03-15", account_code="7201",
                   function_code="2210107", economic_code="30305", project_code=PROJECT_CODE),
        excel_text(voucher_no="记-0002", posted_on="2024/04/01", account_code="7201", debit="480.00",
                   function_code="2210107 保障性住房租金补贴", direct_flag="是"),
        excel_text(voucher_no="记-0003", account_code=""),  # ="" is blank: quarantined as blank
    ], encoding="gbk")
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 2, 1), out.message
    got = [(r["voucher_no"], r["posted_on"], r["account_code"], r["debit"], r["function_code"],
            r["economic_code"], r["project_code"], r["direct_flag"]) for r in lines(con)]
    assert got == [("记-0001", dt.date(2024, 3, 15), "7201", Decimal("480.00"), "2210107", "30305", PROJECT_CODE, True),
                   ("记-0002", dt.date(2024, 4, 1), "7201", Decimal("480.00"), "2210107", "30305", PROJECT_CODE, True)]
    assert con.execute("select row_no, column_name, value from quarantine").fetchall() == [(3, "科目编码", None)]
    assert "Excel's text form" in out.message
    # decided per file, from the rows under its header: another file's values are as written
    other = write_csv(tmp_path / "plain.csv", [row(voucher_no=f"记-1{i:03d}") for i in range(30)]
                      + [row(voucher_no="记-2000", summary='="备注"')])
    [out] = load_ledgers(con, [other])
    assert (out.rows_loaded, out.message) == (31, None)
    assert lines(con, out.file_id)[-1]["summary"] == '="备注"'


def test_load_ledgers__voucher_word_in_excels_text_form_joins_the_number(tmp_path):
    # 凭证字 | 凭证号 exported as ="收" | ="1": the word joins the number as the text inside
    header = ["凭证字", *CN]
    rows = [['="收"', *row(voucher_no='="1"', posted_on='="2024-03-15"')],
            ['="付"', *row(voucher_no='="1"', posted_on='="2024-03-16"')],
            ['="记"', *row(voucher_no='="记-3"')]]
    for kind in ("csv", "xlsx"):
        with _loaded_alone(tmp_path, kind, header, rows) as (store, out):
            assert (out.action, out.rows_loaded) == ("loaded", 3), out.message
            assert [r["voucher_no"] for r in lines(store)] == ["收-1", "付-1", "记-3"], kind


def test_load_ledgers__raw_values_kept(con, tmp_path):
    path = write_csv(tmp_path / "l.csv", [row(direct_flag="02 中央参照直达资金")])
    load_ledgers(con, [path])
    line = lines(con)[0]
    assert line["function_code_raw"] == "2210107 保障性住房租金补贴"
    assert line["direct_flag_raw"] == "02 中央参照直达资金"


@pytest.mark.parametrize("left, right", [
    (" ", "　"), ("　", " "),   # half- and full-width spaces
    ("\t", "\t"),              # a tab put before a code so that Excel keeps it as text
    ("\xa0", "\xa0"),          # a no-break space, copied from a web page
    ("\ufeff", ""),             # a byte-order mark: a second export's first row, files put together
])
def test_load_ledgers__padded_values_trimmed_and_typed_the_same(con, tmp_path, left, right):
    # Padding around the fields typed through the lookup of distinct spellings: the padded and
    # bare spellings are different keys there, and must give the same line, raw text kept trimmed;
    # a date of blanks alone is blank, not unparsable. Before, a tab, a no-break space or a
    # byte-order mark stayed in the voucher number and the payee, and a date so padded was
    # quarantined as unparsable.
    pad = {f: left + value + right for f, value in dict(
        voucher_no="记-0001", posted_on="2024-03-15", account_code="7201",
        function_code="2210107 保障性住房租金补贴", economic_code="30305", direct_flag="01 中央直达资金",
        purpose=RENT, budget_doc_no="克区财综[2024]2号", payee=DEFAULTS["payee"]).items()}
    path = write_csv(tmp_path / "l.csv", [row(summary="bare"), row(summary="padded", **pad),
                                            row(summary="blank date", posted_on=left + right + left)])
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (2, 1)
    bare, padded = lines(con)
    differs = {k: (bare[k], padded[k]) for k in bare if k not in ("row_no", "summary") and bare[k] != padded[k]}
    assert differs == {}
    assert padded["purpose"] == RENT and padded["function_code_raw"] == "2210107 保障性住房租金补贴"
    assert padded["direct_flag_raw"] == "01 中央直达资金" and padded["direct_flag"] is True
    assert con.execute("select row_no, column_name, value, reason from quarantine").fetchall() == [
        (3, "凭证日期", None, "日期为空 / date is blank")]


def test_load_ledgers__financial_book_derived_from_account(con, tmp_path):
    path = write_csv(tmp_path / "l.csv", [row(book="", account_code="5001"), row(book="", account_code="1011")])
    load_ledgers(con, [path])
    assert [r["book"] for r in lines(con)] == ["financial", "financial"]


@pytest.mark.parametrize("field, raw, heading", [
    ("debit", "12,3a4.00", "借方金额"),
    ("credit", "1.2.3", "贷方金额"),
    ("debit", "12,34.00", "借方金额"),
    ("debit", "480.005", "借方金额"),
    ("debit", "99999999999999999999.99", "借方金额"),
    ("credit", "99,999,999,999,999,999,999.99", "贷方金额"),
    ("posted_on", "2024-02-30", "凭证日期"),
    ("posted_on", "2024-13-01", "凭证日期"),
    ("posted_on", "", "凭证日期"),
    ("function_code", "1.2.3", "功能分类"),
    ("function_code", "保障性住房租金补贴", "功能分类"),
    ("account_code", "事业支出", "科目编码"),
    ("voucher_no", "", "凭证号"),
])
def test_input_row_invalid__bad_value_quarantined(con, tmp_path, field, raw, heading):
    path = write_csv(tmp_path / "l.csv", [row(summary="one"), row(summary="two", **{field: raw}),
                                            row(summary="three")])
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (2, 1)
    assert [r["summary"] for r in lines(con)] == ["one", "three"]
    assert con.execute("select row_no, column_name, value from quarantine").fetchall() == [
        (2, heading, raw or None)]
    findings = run_rule(con, rule("INPUT_ROW_INVALID"))
    assert len(findings) == 1
    f = findings[0]
    assert (f.source_file, f.source_row, f.observed) == ("l.csv", 2, raw or None)
    assert "l.csv" in f.message and "第2行" in f.message and "row 2" in f.message and heading in f.message
    assert raw in f.message


def test_input_row_invalid__not_fired_for_clean_or_superseded_files(con, tmp_path):
    day1 = write_csv(tmp_path / "d1.csv", [row(voucher_no="记-1"), row(voucher_no="记-2", debit="x")])
    load_ledgers(con, [day1])
    assert len(run_rule(con, rule("INPUT_ROW_INVALID"))) == 1
    day2 = write_csv(tmp_path / "d2.csv", [row(voucher_no="记-1"), row(voucher_no="记-2", debit="5")])
    load_ledgers(con, [day2])
    assert run_rule(con, rule("INPUT_ROW_INVALID")) == []


def test_load_ledgers__blank_and_subtotal_rows_skipped(con, tmp_path):
    blank = [""] * len(CN)
    total = [""] * len(CN)
    total[CN.index("摘要")] = "本月合计"
    total[CN.index("借方金额")] = "960.00"
    path = write_csv(tmp_path / "l.csv", [row(), blank, row(voucher_no="记-2"), total])
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined, out.message) == (2, 0, None)
    assert [r["row_no"] for r in lines(con)] == [1, 3]  # the row of empty cells still counts


def _csv_with_empty_lines(path: Path, records: list, encoding="utf-8") -> Path:
    """A CSV under the CN header; None in records is an entirely empty line."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CN)
    for r in records:
        if r is None:
            buf.write("\r\n")
        else:
            w.writerow(r)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_load_ledgers__rows_after_an_empty_line_keep_the_number_excel_shows(con, tmp_path, encoding):
    # DuckDB's reader passes over an entirely empty line (a month's rows set apart, say), which
    # Excel shows as an empty row. Before, every row after one was cited a row too early: the
    # quarantined row below was 数据第5行, its message said 第4行, the row of 记-3
    path = _csv_with_empty_lines(tmp_path / "l.csv", [
        row(), None, row(voucher_no="记-2"),
        row(voucher_no="记-3", summary="摘要写在\n两行"),   # one row in Excel, two lines of text
        None, None, row(voucher_no="记-4", debit="四百八"),
        row(voucher_no="记-5"), None, None], encoding)        # empty lines at the end: nothing after
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (4, 1)
    assert [(r["row_no"], r["voucher_no"]) for r in lines(con)] == [
        (1, "记-0001"), (3, "记-2"), (4, "记-3"), (8, "记-5")]
    assert con.execute("select row_no, value from quarantine").fetchall() == [(7, "四百八")]
    [bad] = run_rule(con, rule("INPUT_ROW_INVALID"))
    assert bad.source_row == 7 and "数据第7行" in bad.message


@pytest.mark.parametrize("case_limit", [4096, 1])
def test_load_ledgers__empty_lines_across_parallel_reads(con, tmp_path, monkeypatch, case_limit):
    # the empty lines fall in different buffers of the parallel reader; numbered up by a CASE,
    # or beyond SHIFT_CASE_LIMIT places by a join
    monkeypatch.setattr(ledgers, "CSV_MAX_LINE_BYTES", 1 << 14)
    monkeypatch.setattr(ledgers, "SHIFT_CASE_LIMIT", case_limit)
    records = [row(voucher_no=f"记-{i:06d}") for i in range(1, 12_001)]
    for at in (9_000, 3_000, 3_000):
        records.insert(at, None)
    [out] = load_ledgers(con, [_csv_with_empty_lines(tmp_path / "l.csv", records)])
    assert out.rows_loaded == 12_000
    numbered = dict(con.execute("select voucher_no, row_no from ledger_lines").fetchall())
    assert [numbered[f"记-{i:06d}"] for i in (1, 3_000, 3_001, 9_000, 9_001, 12_000)] == [
        1, 3_000, 3_003, 9_002, 9_004, 12_003]


def test_load_ledgers__cells_of_several_lines_shift_no_row(con, tmp_path):
    # the file has more lines than rows, but no empty line between rows: one inside a quoted cell
    path = _csv_with_empty_lines(tmp_path / "l.csv", [
        row(summary="摘要\n\n空一行"), row(voucher_no="记-2", summary="两\n行"), row(voucher_no="记-3")])
    [out] = load_ledgers(con, [path])
    assert [(r["row_no"], r["voucher_no"], r["summary"]) for r in lines(con)] == [
        (1, "记-0001", "摘要\n\n空一行"), (2, "记-2", "两\n行"), (3, "记-3", DEFAULTS["summary"])]
    # Excel writes a cell's lines apart with \n in a file of \r\n: read as it is, not as a mix
    assert out.message is None


def _csv_line(record: list, end: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=end).writerow(record)
    return buf.getvalue()


def _load_text(con, path: Path, text: str, encoding: str = "utf-8"):
    """Write text (lines ending as written) to path in the encoding and load it: its outcome."""
    path.write_bytes(text.encode(encoding))
    [out] = load_ledgers(con, [path])
    return out


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
@pytest.mark.parametrize("ends", [
    ("\n", "\n", "\r\n", "\n"),       # a line added by hand in Notepad to an LF export
    ("\r\n", "\r\n", "\n", "\r\n"),   # two exports put together
    ("\r", "\r", "\r", "\r"),          # Excel for Mac's CSV (Macintosh)
])
def test_load_ledgers__lines_ending_in_more_than_one_way(con, tmp_path, encoding, ends):
    # before, DuckDB refused the first two whole ("the CSV Parser state machine reached an invalid
    # state"), and the third was "empty: no header row"
    records = [CN, row(), row(voucher_no="记-2"), row(voucher_no="记-3", debit="x")]
    path = tmp_path / "l.csv"
    out = _load_text(con, path, "".join(_csv_line(r, e) for r, e in zip(records, ends)), encoding)
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 2, 1), out.message
    assert "换行符不统一" in out.message
    assert [(r["row_no"], r["voucher_no"]) for r in lines(con)] == [(1, "记-0001"), (2, "记-2")]
    assert con.execute("select row_no, value from quarantine").fetchall() == [(3, "x")]


def test_load_ledgers__lines_ending_otherwise_far_below_the_header(con, tmp_path, monkeypatch):
    # the first lines end alike; DuckDB refuses the file where they stop doing so, and the file is
    # read again from a copy. An empty line there still counts
    monkeypatch.setattr(ledgers, "SAMPLE_BYTES", 4096)
    text = _csv_line(CN, "\n") + "".join(_csv_line(row(voucher_no=f"记-{i}"), "\n") for i in range(1, 201))
    text += _csv_line(row(voucher_no="记-201"), "\r\n") + "\r\n" + _csv_line(row(voucher_no="记-202"), "\n")
    path = tmp_path / "l.csv"
    path.write_bytes(text.encode())
    assert len(text.encode()) > 10 * 4096
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded) == ("loaded", 202), out.message
    assert "换行符不统一" in out.message
    assert [(r["row_no"], r["voucher_no"]) for r in lines(con)][-2:] == [(201, "记-201"), (203, "记-202")]


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
@pytest.mark.parametrize("blanks, end", [("   ", "\r\n"), ("\t", "\r\n"), ("　 ", "\n"), ("\xa0", "\r\n")])
def test_load_ledgers__a_line_of_blanks_only_is_an_empty_row(con, tmp_path, encoding, blanks, end):
    # a line "emptied" by hand, or an export's spacer row: Excel shows an empty row. Before, DuckDB
    # refused the whole file for it (one column where the header has 17). The rows under it keep
    # the number Excel shows, and a line of blanks at the end counts for nothing
    if blanks == "\xa0" and encoding == "gb18030":
        pytest.skip("GB18030 has no no-break space")
    text = "".join([_csv_line(CN, end), _csv_line(row(), end), blanks + end,
                    _csv_line(row(voucher_no="记-3", debit="x"), end), blanks + end,
                    _csv_line(row(voucher_no="记-4", summary=f"摘要\n{blanks}\n三行"), end), blanks + end])
    out = _load_text(con, tmp_path / "l.csv", text, encoding)
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 2, 1), out.message
    assert "文件第3行等 4 行只有空白字符" in out.message and "4 line(s) of the file hold only blanks" in out.message
    assert [(r["row_no"], r["voucher_no"], r["summary"]) for r in lines(con)] == [
        (1, "记-0001", "发放3月租赁补贴"), (5, "记-4", "摘要\n\n三行")]
    assert con.execute("select row_no, value from quarantine").fetchall() == [(3, "x")]


def test_load_ledgers__a_line_of_blanks_does_not_hide_a_row_cut_short(con, tmp_path):
    # the copy without the blanks is read again, and DuckDB's refusal of the short row stands
    end = "\r\n"
    text = "".join([_csv_line(CN, end), _csv_line(row(), end), "  " + end,
                    _csv_line(row()[:5], end), _csv_line(row(voucher_no="记-3"), end)])
    out = _load_text(con, tmp_path / "l.csv", text)
    assert out.action == "rejected"
    assert "文件第4行有 5 列，表头有 17 列" in out.message and "line 4 of the file has 5 columns" in out.message
    assert con.execute("select count(*) from ledger_lines").fetchone() == (0,)


def test_load_ledgers__a_bad_file_with_one_kind_of_line_end_is_refused_after_one_read(
        con, tmp_path, monkeypatch):
    # DuckDB refuses it, and its lines all end alike: no copy with other line ends is read again
    reads = []
    real = ledgers._read_or_reject
    monkeypatch.setattr(ledgers, "_read_or_reject",
                        lambda c, sql, *a: (reads.append(sql.startswith("copy")), real(c, sql, *a))[1])
    path = tmp_path / "l.csv"
    out = _load_text(con, path, _csv_line(CN, "\r\n") + _csv_line(row(), "\r\n") + '"unclosed,1\r\n')
    assert out.action == "rejected" and "换行符" not in out.message
    assert reads == [True]


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_load_ledgers__a_print_style_footer_under_the_rows_is_not_read(con, tmp_path, encoding):
    # 制表人 / 审核人 / 打印日期 signed off under the rows, in fewer columns than the header, as a
    # print-style export does (in a workbook such rows were already passed over). Before, DuckDB
    # refused the whole file for it
    text = "".join([_csv_line(CN, "\r\n"), _csv_line(row(), "\r\n"),
                    _csv_line(row(voucher_no="记-2", debit="x"), "\r\n"),
                    _csv_line(row(voucher_no="记-3", summary="摘要\n两行"), "\r\n"), "\r\n",
                    "制表人：张三    审核人：李四\r\n", '"打印日期：2024年12月31日","第1页"\r\n', "\r\n"])
    path = tmp_path / "l.csv"
    out = _load_text(con, path, text, encoding)
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 2, 1), out.message
    assert "文件末尾 2 行只有文字" in out.message and "制表人：张三" in out.message
    assert [(r["row_no"], r["voucher_no"]) for r in lines(con)] == [(1, "记-0001"), (3, "记-3")]
    assert con.execute("select row_no, value from quarantine").fetchall() == [(2, "x")]


def test_load_ledgers__a_last_row_cut_short_still_rejects_the_file(con, tmp_path):
    # its cells hold data (a date, an account code): not a footer, the export was cut off
    text = _csv_line(CN, "\r\n") + _csv_line(row(), "\r\n") + "记-2,1,2024-03-15,预算会计,7201\r\n"
    path = tmp_path / "l.csv"
    out = _load_text(con, path, text)
    assert out.action == "rejected"
    assert "文件第3行有 5 列，表头有 17 列" in out.message and "line 3 of the file has 5 columns" in out.message
    assert "记-2,1,2024-03-15" in out.message
    assert con.execute("select count(*) from ledger_lines").fetchone()[0] == 0


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_load_ledgers__a_row_of_another_width_is_quarantined_whole_and_the_rest_loads(con, tmp_path, encoding):
    # a delimiter typed into a cell unquoted (某公司,北京分公司), a row cut short: before, DuckDB
    # refused the whole file for one such row, every night until the export was mended. Now each is
    # quarantined whole, shown as written, and the rows under it keep the number Excel shows
    end = "\r\n"
    comma = ",".join(row(voucher_no="记-2", payee="某公司")) + ",北京分公司" + end
    short = ",".join(row(voucher_no="记-5")[:10]) + end
    text = "".join([_csv_line(CN, end), _csv_line(row(), end), comma, end, _csv_line(row(voucher_no="记-4"), end),
                    short, *(_csv_line(row(voucher_no=f"记-1{i:02d}"), end) for i in range(20))])
    out = _load_text(con, tmp_path / "l.csv", text, encoding)
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 22, 2), out.message
    assert "文件第3、6行共 2 行的列数与表头不同，整行隔离" in out.message
    assert "2 line(s) of the file (line 3, 6) have another number of columns" in out.message
    got = [(r["row_no"], r["voucher_no"]) for r in lines(con)]
    assert got[:3] == [(1, "记-0001"), (4, "记-4"), (6, "记-100")] and got[-1] == (25, "记-119")
    [(two, column, value, reason), (five, _, cut, why)] = con.execute(
        "select row_no, column_name, value, reason from quarantine order by row_no").fetchall()
    assert (two, column, five) == (2, "（整行）", 5)
    assert value.startswith("记-2,1,2024-03-15") and value.endswith("某公司,北京分公司")
    assert reason.startswith("该行有 18 列，表头有 17 列") and "the row has 18 columns where the header has 17" in reason
    assert cut.startswith("记-5,1,") and why.startswith("该行有 10 列，表头有 17 列")
    [finding] = [f for f in run_rule(con, rule("INPUT_ROW_INVALID")) if f.source_row == 2]
    assert "数据第2行" in finding.message and "北京分公司" in finding.message


@pytest.mark.parametrize("case", ["one_in_ten", "cells_of_several_lines", "cut_off_in_the_last_row"])
def test_load_ledgers__rows_of_another_width_still_reject_the_file_where_they_cannot_be_told(con, tmp_path, case):
    # more than one row in ten of another width: the file is not what its header says. Cells of
    # several lines: DuckDB numbers records, not lines, and the rows could not be cited by number
    end = "\r\n"
    comma = ",".join(row(voucher_no="记-2", payee="某公司")) + ",北京分公司" + end
    good = [_csv_line(row(voucher_no=f"记-1{i:02d}"), end) for i in range(20)]
    if case == "one_in_ten":
        body = [comma, *good[:9], comma, comma]
        says = "文件第2行有 18 列"
    elif case == "cells_of_several_lines":
        body = [_csv_line(row(summary="摘要\n两行"), end), comma, *good]
        says = "文件第3行有 18 列，表头有 17 列"
    else:  # a full disk: the export stops inside a row, the rows after it are lost
        body = [*good, _csv_line(row(voucher_no="记-9"), end)[:40]]
        says = "文件第22行有 "
    out = _load_text(con, tmp_path / "l.csv", _csv_line(CN, end) + "".join(body))
    assert out.action == "rejected"
    assert says in out.message, out.message
    assert con.execute("select count(*) from ledger_lines").fetchone()[0] == 0
    assert con.execute("select count(*) from quarantine").fetchone()[0] == 0


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_load_ledgers__a_heading_wrapped_onto_two_lines_in_its_cell(con, tmp_path, encoding):
    # Excel writes a wrapped heading (Alt+Enter) as "借方\n金额" in a file of \r\n. DuckDB then
    # read no row at all, and said nothing: the file loaded empty
    header = [h.replace("借方金额", "借方\n金额").replace("摘要", "摘\r\n要") for h in CN]
    text = "".join([_csv_line(["凭证明细表（2024年\n1-12月）"], "\r\n"), _csv_line(header, "\r\n"),
                    _csv_line(row(), "\r\n"), _csv_line(row(voucher_no="记-2", summary="两\n行"), "\r\n"),
                    "\r\n", _csv_line(row(voucher_no="记-3", debit="x"), "\r\n")])
    path = tmp_path / "l.csv"
    out = _load_text(con, path, text, encoding)
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 2, 1), out.message
    assert [(r["row_no"], r["voucher_no"], r["summary"]) for r in lines(con)] == [
        (1, "记-0001", DEFAULTS["summary"]), (2, "记-2", "两\n行")]
    assert con.execute("select row_no, value from quarantine").fetchall() == [(4, "x")]
    assert path.read_bytes() == text.encode(encoding)  # the user's file as it was


def test_load_ledgers__rows_the_reader_cannot_see_reject_the_file(con, tmp_path, monkeypatch):
    # the safety net under _one_line_header: without it, DuckDB reads no row of this file, and
    # the file must be refused, not loaded empty (a header-only export still loads: INPUT_EMPTY)
    monkeypatch.setattr(ledgers, "_one_line_header", lambda path, records, workdir: (path, 0))
    header = [h.replace("借方金额", "借方\n金额") for h in CN]
    path = tmp_path / "l.csv"
    out = _load_text(con, path, "".join([_csv_line(header, "\r\n"), _csv_line(row(), "\r\n"), "\r\n"]))
    assert out.action == "rejected" and "表头下有 1 行有内容，但读出 0 行" in out.message
    only_header = tmp_path / "h.csv"
    only_header.write_bytes((_csv_line(header, "\r\n") + "\r\n\r\n").encode())
    [out] = load_ledgers(con, [only_header])
    assert (out.action, out.rows_loaded) == ("loaded", 0)


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_load_ledgers__an_export_with_every_oddity_at_once(con, tmp_path, encoding):
    # a title, an empty line, a wrapped heading, an empty line between months, a cell of two
    # lines, a line added by hand with another line end, a footer: each handled as alone
    header = [h.replace("借方金额", "借方\n金额") for h in CN]
    text = "".join([_csv_line(["克拉玛依区住建局 凭证明细表"], "\r\n"), "\r\n", _csv_line(header, "\r\n"),
                    *(_csv_line(row(voucher_no=f"记-{i}"), "\r\n") for i in (1, 2, 3)), "\r\n",
                    _csv_line(row(voucher_no="记-4", summary="两\n行"), "\r\n"),
                    _csv_line(row(voucher_no="记-5", debit="x"), "\n"), _csv_line(row(voucher_no="记-6"), "\r\n"),
                    "\r\n", "制表人：张三  审核人：李四\r\n", "\r\n"])
    path = tmp_path / "l.csv"
    out = _load_text(con, path, text, encoding)
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 5, 1), out.message
    assert "文件末尾 1 行只有文字" in out.message and "换行符不统一" in out.message
    assert [(r["row_no"], r["voucher_no"]) for r in lines(con)] == [
        (1, "记-1"), (2, "记-2"), (3, "记-3"), (5, "记-4"), (7, "记-6")]
    assert con.execute("select row_no, value from quarantine").fetchall() == [(6, "x")]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1 << 20])
def test_empty_lines__found_across_read_chunks(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(ledgers, "CHUNK_BYTES", chunk)
    data = b"h\r\n\r\na\n\n\nb\r\n\r\nc\r\n\r\n"
    (tmp_path / "f.csv").write_bytes(data)
    found, ends = ledgers._empty_lines(str(tmp_path / "f.csv"))
    assert found == [i for i, text in enumerate(data.split(b"\n")[:-1]) if text.strip(b"\r") == b""]
    assert found == [1, 3, 4, 6, 8] and (ends.newlines, ends.physical_lines()) == (9, 8)


def test_line_ends__what_the_bytes_say_of_the_lines(tmp_path):
    def ends(data: bytes):
        (tmp_path / "f.csv").write_bytes(data)
        found = ledgers.line_ends(tmp_path / "f.csv")
        return found.newlines, found.physical_lines()
    assert ends(b"h\r\na\r\nb\r\n") == (3, 3)
    assert ends(b"h\na\nb") == (2, 3)                       # the last line without its newline
    assert ends(b"h\r\na\r\n\r\n\n\r\n") == (5, 2)          # empty lines at the end are not lines
    assert ends(b"h\na\n\nb\n") == (4, 4)                  # one in the middle is
    assert ends(b"") == (0, 1)


def test_load_ledgers__a_detail_ledgers_dated_balance_and_total_rows_are_not_voucher_lines(con, tmp_path):
    # a 明细账 prints 期初余额 on the first day, 本月合计 / 本年累计 on each month's last, 承前页 at a
    # page's top: dated, of no voucher. Before, each was quarantined (the nightly run warned, exit 1)
    def balance(summary: str, date: str, debit: str = "", credit: str = "") -> list:
        return row(voucher_no="", line_no="", posted_on=date, summary=summary, debit=debit, credit=credit)

    seed_notice(con)
    lost = row(voucher_no="", summary="支付3月补贴合计")  # a voucher line that lost its number
    path = write_csv(tmp_path / "明细账.csv", [
        balance("期初余额", "2024-01-01"), row(), balance("本月合计", "2024-03-31", "480.00"),
        balance("  本年累计", "2024-03-31", "480.00"), balance("（承前页）", "2024-04-01", "480.00"),
        lost, row(voucher_no="记-2", posted_on="2024-04-02"),
    ], encoding="gbk")
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (2, 1), out.message
    assert [r["row_no"] for r in lines(con)] == [2, 7]
    assert con.execute("select row_no, column_name from quarantine").fetchall() == [(6, "凭证号")]
    assert spent(con) == Decimal("960.00")  # the totals are not counted again


def test_load_ledgers__header_repeated_on_every_page_is_not_a_voucher_line(con, tmp_path):
    # an export laid out for printing: the header again on each page, with a page line between
    page = [""] * len(CN)
    page[CN.index("摘要")] = "第 2 页，共 3 页"
    path = write_csv(tmp_path / "pages.csv", [row(), page, CN, row(voucher_no="记-2"), page, CN,
                                              row(voucher_no="记-3", posted_on="bad")])
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (2, 1), out.message
    assert [r["row_no"] for r in lines(con)] == [1, 4]
    assert con.execute("select row_no, value from quarantine").fetchall() == [(7, "bad")]
    assert "the header appears 2 more times" in out.message and "2 rows hold only text" in out.message


@pytest.mark.parametrize("where, number", [("贷方金额", "第2页"), ("借方金额", "第2页 共5页"),
                                           ("贷方金额", "共5页，第2页"), ("科目编码", "Page 2 of 5")])
def test_load_ledgers__a_page_heading_with_its_number_in_an_amount_column_is_text(con, tmp_path, where, number):
    # each printed page headed by the unit's name, its page number under an amount or the account
    # column (单位名称：… | … | 第2页): before, it was quarantined on every page as an unparsable amount
    heading = text_row(凭证号="单位名称：克拉玛依区住房和城乡建设局", **{where: number})
    pages = [text_row(凭证号="明细账"), heading, CN]
    path = write_csv(tmp_path / "pages.csv", [row(), *pages, row(voucher_no="记-2"), *pages,
                                              row(voucher_no="记-3", debit="第3页")], encoding="gbk")
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (2, 1), out.message
    assert [r["row_no"] for r in lines(con)] == [1, 5]
    # a voucher line (it has a voucher number and a date) with a page number for its amount is bad
    assert con.execute("select row_no, value from quarantine").fetchall() == [(9, "第3页")]
    assert "4 rows hold only text" in out.message and "the header appears 2 more times" in out.message


def test_load_ledgers__header_on_two_rows_repeated_on_every_page_is_not_a_voucher_line(con, tmp_path):
    # both rows of a two-row header again on each page: the lower (编码 | 名称 | 借方 | 贷方) has no
    # date and was quarantined for it, so every printed export warned (exit 1)
    upper = ["" if h is None else h for h in UPPER]
    rows = [LOWER, row(), upper, LOWER, row(voucher_no="记-2"), upper, LOWER, row(voucher_no="记-3", debit="bad")]
    for kind in ("csv", "xlsx"):
        with _loaded_alone(tmp_path, kind, upper, rows) as (store, out):
            assert (kind, out.rows_loaded, out.rows_quarantined) == (kind, 2, 1), out.message
            assert [r["row_no"] for r in lines(store)] == [1, 4]
            assert store.execute("select row_no, column_name, value from quarantine").fetchall() == [(7, "借方", "bad")]
            assert "the header appears 2 more times" in out.message


def text_row(**cells):
    """A cn-grp row holding only the given cells, by heading."""
    r = [""] * len(CN)
    for heading, text in cells.items():
        r[CN.index(heading)] = text
    return r


def test_load_ledgers__signature_and_note_rows_under_the_ledger_are_not_voucher_lines(con, tmp_path):
    # what many exports print under the ledger: no date, account or amount, nothing to book. Before,
    # each was quarantined, and every night's run warned (exit 1) about them
    undated = row(voucher_no="记-3", posted_on="")  # a voucher line without its date: still bad
    path = write_csv(tmp_path / "signed.csv", [
        row(), row(voucher_no="记-2"), undated,
        text_row(凭证号="制表人：张三", 摘要="审核人：李四", 收款人="会计主管：王五"),
        text_row(摘要="注：本表金额单位为元"), [""] * len(CN),
    ], encoding="gb18030")
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (2, 1), out.message
    assert con.execute("select row_no, column_name from quarantine").fetchall() == [(3, "凭证日期")]
    assert "2 rows hold only text, no date, account or amount" in out.message
    assert "2 行只有文字" in out.message


def test_load_ledgers__sign_off_labels_across_the_code_and_amount_columns_are_text(con, tmp_path):
    # 制表人：张三 | 审核：李四 under 科目编码 | 记账：王五 under 借方金额, as a voucher list prints its
    # sign-off row across the page. Before, the row was quarantined three times (date blank, the
    # code and the amount unreadable). A line with an unreadable amount is still quarantined
    path = write_csv(tmp_path / "signed.csv", [
        row(), row(voucher_no="记-2", debit="四百八"),
        text_row(凭证号="制表人：张三", 科目编码="审核：李四", 借方金额="记账：王五", 贷方金额="出纳：赵六"),
    ], encoding="gb18030")
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (1, 1), out.message
    assert con.execute("select row_no, column_name from quarantine").fetchall() == [(2, "借方金额")]
    assert "1 rows hold only text" in out.message


@pytest.mark.parametrize("where, label", [("凭证号", "合计"), ("凭证号", "合  计"), ("凭证号", "本年累计"),
                                          ("凭证日期", "合计"), ("凭证日期", "本月合计")])
def test_load_ledgers__a_total_labelled_in_the_voucher_or_date_column_is_no_line(con, tmp_path, where, label):
    # a voucher list's total row: the label in its first column, the sums under the amounts. Before,
    # it was quarantined (date blank, account blank, or the label an unreadable date)
    total = row(voucher_no="", posted_on="", account_code="", account_name="", summary="", debit="960.00",
                credit="960.00")
    total[CN.index(where)] = label
    path = write_csv(tmp_path / "total.csv", [row(), row(voucher_no="记-2"), total], encoding="gb18030")
    [out] = load_ledgers(con, [path])
    assert (out.rows_loaded, out.rows_quarantined) == (2, 0), out.message
    assert con.execute("select sum(debit) from ledger_lines").fetchone()[0] == Decimal("960.00")


# --- expenditure semantics ---------------------------------------------------------------------

def test_load_ledgers__books_not_double_counted_and_reversal_netted(con, tmp_path):
    seed_notice(con)
    path = write_csv(tmp_path / "l.csv", [
        row(voucher_no="记-1", line_no="1", debit="480.00"),
        row(voucher_no="记-1", line_no="2", book="财务会计", account_code="5001", account_name="业务活动费用",
            debit="480.00"),
        row(voucher_no="记-1", line_no="3", book="财务会计", account_code="1011", debit="", credit="480.00"),
        row(voucher_no="记-2", line_no="1", debit="480.00"),
        row(voucher_no="记-3", line_no="1", summary="红字冲销记-2", debit="-480.00"),
        row(voucher_no="记-4", line_no="1", summary="冲销", debit="", credit="100.00"),
        row(voucher_no="记-5", line_no="1", purpose="办公经费", project_code="OTHER", budget_doc_no="",
            function_code="2010301", debit="999.00"),
    ])
    [out] = load_ledgers(con, [path])
    assert out.rows_loaded == 7
    assert spent(con) == Decimal("380.00")


def test_load_ledgers__red_ink_debit_nets(con, tmp_path):
    seed_notice(con)
    path = write_csv(tmp_path / "l.csv", [row(voucher_no="记-1", debit="1,000.00"),
                                            row(voucher_no="记-2", debit="(500.00)")])
    load_ledgers(con, [path])
    set_context(con)
    amounts = con.execute("select amount from fct_expenditure order by voucher_no").fetchall()
    assert amounts == [(Decimal("1000.00"),), (Decimal("-500.00"),)]
    assert spent(con) == Decimal("500.00")


# --- exactly once --------------------------------------------------------------------------------

def test_load_ledgers__the_store_runs_on_with_its_own_optimizer_settings(tmp_path):
    # a load disables two more optimizers for its joins; after it, the checks must run as the
    # store set them (without projection_pullup, seconds of planning each over the facts' views),
    # not with DuckDB's defaults. Before, the load reset them: `recon run` planned its checks
    # with projection_pullup back on. A connection set otherwise (the tests' stores) keeps its set
    from pipeline.store import DISABLED_OPTIMIZERS

    con = open_store(tmp_path / "own.duckdb")  # as a run opens it, not as new_store's tests do
    seed_notice(con)
    before = con.execute("select current_setting('disabled_optimizers')").fetchone()[0]
    assert set(before.split(",")) == set(DISABLED_OPTIMIZERS) == {"projection_pullup"}
    load_ledgers(con, [write_csv(tmp_path / "l.csv", [row(debit="480")])])
    assert con.execute("select current_setting('disabled_optimizers')").fetchone()[0] == before
    con.execute("set disabled_optimizers = 'projection_pullup,cte_inlining'")
    load_ledgers(con, [write_csv(tmp_path / "m.csv", [row(debit="240")])])
    after = con.execute("select current_setting('disabled_optimizers')").fetchone()[0]
    assert set(after.split(",")) == {"projection_pullup", "cte_inlining"}
    con.close()


def test_load_ledgers__same_file_twice_skipped(con, tmp_path):
    seed_notice(con)
    path = write_csv(tmp_path / "l.csv", [row(debit="480")])
    copy = tmp_path / "copy.csv"
    copy.write_bytes(path.read_bytes())
    [first] = load_ledgers(con, [path])
    [again, renamed] = load_ledgers(con, [path, copy])
    assert first.action == "loaded"
    assert (again.action, again.file_id) == ("skipped", first.file_id)
    assert renamed.action == "skipped"
    # named as the user knows them (was "same content as file 1", the store's internal id)
    assert again.message.startswith("同一文件已加载") and "file 1" not in again.message
    assert renamed.message == ("与已加载的 l.csv 内容相同，未重复读入 / "
                               "same content as l.csv, loaded before; not read again")
    assert con.execute("select count(*) from input_files where kind = 'ledger'").fetchone() == (1,)
    assert spent(con) == Decimal("480.00")


HOUR_AGO = time.time() - 3600


def _hashes(monkeypatch) -> list:
    """Count the files hashed from here on."""
    seen = []
    real = ledgers.sha256_file
    monkeypatch.setattr(ledgers, "sha256_file", lambda path: seen.append(Path(path).name) or real(path))
    return seen


def test_load_ledgers__unchanged_file_is_skipped_without_being_read(con, tmp_path, monkeypatch):
    # the nightly folder keeps earlier exports: same name, size and time, so not hashed again
    path = write_csv(tmp_path / "ytd_20241129.csv", [row(debit="480")])
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    [first] = load_ledgers(con, [path])
    hashed = _hashes(monkeypatch)
    [again] = load_ledgers(con, [path])
    assert hashed == []
    assert (again.action, again.file_id, again.sha256) == ("skipped", first.file_id, first.sha256)
    assert "not read again" in again.message


def test_load_ledgers__an_unchanged_file_named_another_way_is_not_read_again(con, tmp_path, monkeypatch):
    # the cron job names it from the project folder, an auditor by its full path through a link
    project = tmp_path / "srv"
    (project / "ledgers").mkdir(parents=True)
    (tmp_path / "link").symlink_to(project)
    path = write_csv(project / "ledgers" / "ledger.csv", [row(debit="480")])
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    monkeypatch.chdir(project)
    [first] = load_ledgers(con, [Path("ledgers") / "ledger.csv"])
    hashed = _hashes(monkeypatch)
    [again] = load_ledgers(con, [tmp_path / "link" / "ledgers" / ".." / "ledgers" / "ledger.csv"])
    assert hashed == []
    assert (again.action, again.file_id) == ("skipped", first.file_id)
    assert first.path == again.path == str(project.resolve() / "ledgers" / "ledger.csv")


def test_load_ledgers__a_file_changed_since_is_read_again(con, tmp_path, monkeypatch):
    path = write_csv(tmp_path / "ledger.csv", [row(debit="480")])
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    [first] = load_ledgers(con, [path])
    write_csv(path, [row(debit="490")])  # the same size, a later time
    os.utime(path, (HOUR_AGO + 60, HOUR_AGO + 60))
    hashed = _hashes(monkeypatch)
    [second] = load_ledgers(con, [path])
    assert hashed == ["ledger.csv"]
    assert second.action == "loaded" and second.file_id != first.file_id


def test_load_ledgers__a_file_of_the_same_name_size_and_time_elsewhere_is_read(con, tmp_path):
    # another unit's export, named and sized alike, with the same time (unpacked from archives)
    first, other = tmp_path / "unit_a" / "ledger.csv", tmp_path / "unit_b" / "ledger.csv"
    for path, payee in ((first, "甲住户"), (other, "乙住户")):
        path.parent.mkdir()
        write_csv(path, [row(debit="480", payee=payee)])
        os.utime(path, (HOUR_AGO, HOUR_AGO))
    [a] = load_ledgers(con, [first])
    [b] = load_ledgers(con, [other])
    assert (a.action, b.action) == ("loaded", "loaded") and a.sha256 != b.sha256


def test_load_ledgers__recon_rehash_reads_a_file_whatever_its_time(con, tmp_path, monkeypatch):
    # content changed with the time set back: only the hash can tell, and RECON_REHASH asks for it
    path = write_csv(tmp_path / "ledger.csv", [row(debit="480")])
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    [first] = load_ledgers(con, [path])
    write_csv(path, [row(debit="490")])
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    assert load_ledgers(con, [path])[0].action == "skipped"
    monkeypatch.setenv("RECON_REHASH", "1")
    [reread] = load_ledgers(con, [path])
    assert reread.action == "loaded" and reread.file_id != first.file_id


def test_load_ledgers__a_file_modified_just_before_it_was_read_is_read_again(con, tmp_path, monkeypatch):
    path = write_csv(tmp_path / "ledger.csv", [row(debit="480")])  # written now: maybe still changing
    [first] = load_ledgers(con, [path])
    assert con.execute("select mtime_ns from input_files where file_id = ?", [first.file_id]).fetchone() == (None,)
    hashed = _hashes(monkeypatch)
    [again] = load_ledgers(con, [path])
    assert hashed == ["ledger.csv"] and (again.action, again.file_id) == ("skipped", first.file_id)


def test_load_ledgers__a_file_loaded_without_its_time_gets_it_at_the_next_hash(con, tmp_path, monkeypatch):
    # a store from before the times were kept: hashed once more, then known
    path = write_csv(tmp_path / "ledger.csv", [row(debit="480")])
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    [first] = load_ledgers(con, [path])
    con.execute("update input_files set mtime_ns = null")
    hashed = _hashes(monkeypatch)
    assert load_ledgers(con, [path])[0].action == "skipped" and hashed == ["ledger.csv"]
    assert load_ledgers(con, [path])[0].action == "skipped" and hashed == ["ledger.csv"]
    assert con.execute("select mtime_ns from input_files where file_id = ?", [first.file_id]).fetchone() == (
        path.stat().st_mtime_ns,)


def test_load_ledgers__year_to_date_export_supersedes_yesterday(con, tmp_path):
    seed_notice(con)
    yesterday = write_csv(tmp_path / "ytd_20241129.csv", [
        row(voucher_no="记-1", posted_on="2024-01-15", debit="480"),
        row(voucher_no="记-2", posted_on="2024-06-15", debit="480"),   # voided on 11-30
        row(voucher_no="记-3", posted_on="2024-11-29", debit="480"),
    ])
    today = write_csv(tmp_path / "ytd_20241130.csv", [
        row(voucher_no="记-1", posted_on="2024-01-15", debit="480"),
        row(voucher_no="记-3", posted_on="2024-11-29", debit="480"),
        row(voucher_no="记-4", posted_on="2024-11-30", debit="400"),
    ])
    [y] = load_ledgers(con, [yesterday])
    assert spent(con) == Decimal("1440.00")
    [t] = load_ledgers(con, [today])
    assert spent(con) == Decimal("1360.00")  # today's lines only; 记-2 has disappeared
    assert con.execute("select status, superseded_by from input_files where file_id = ?",
                       [y.file_id]).fetchone() == ("superseded", t.file_id)
    assert con.execute("select count(*) from ledger_lines").fetchone() == (6,)  # nothing deleted
    assert con.execute("select count(*) from stg_ledger_lines where voucher_no = '记-2'").fetchone() == (0,)


def test_load_ledgers__year_to_date_export_with_its_vouchers_renumbered_supersedes_yesterday(con, tmp_path):
    # 记-2 deleted on 11-30 and the vouchers after it numbered afresh (断号整理): 记-3 … 记-5 are now
    # 记-2 … 记-4. Only 记-1 repeats with its number; before, both exports counted (spending twice)
    seed_notice(con)
    days = ["2024-01-15", "2024-06-15", "2024-09-15", "2024-10-15", "2024-11-29"]
    yesterday = write_csv(tmp_path / "ytd_20241129.csv", [
        row(voucher_no=f"记-{n}", posted_on=d, debit="480", payee=f"住户{n}") for n, d in enumerate(days, 1)])
    kept = [(d, f"住户{n}") for n, d in enumerate(days, 1) if n != 2]
    today = write_csv(tmp_path / "ytd_20241130.csv", [
        row(voucher_no=f"记-{n}", posted_on=d, debit="480", payee=p) for n, (d, p) in enumerate(kept, 1)]
        + [row(voucher_no="记-5", posted_on="2024-11-30", debit="400", payee="住户6")])
    [y] = load_ledgers(con, [yesterday])
    [t] = load_ledgers(con, [today])
    assert spent(con) == Decimal("2320.00")  # today's lines only: 4 × 480 + 400
    assert con.execute("select status, superseded_by from input_files where file_id = ?",
                       [y.file_id]).fetchone() == ("superseded", t.file_id)
    message = con.execute("select message from input_files where file_id = ?", [y.file_id]).fetchone()[0]
    assert "凭证已重新编号" in message and "its vouchers renumbered" in message
    # another unit paying the same households the same on the same days, its vouchers numbered its
    # own way and its summary its own: still another ledger
    other = write_csv(tmp_path / "unit_b_20241130.csv", [
        row(voucher_no=f"记-{100 + n}", posted_on=d, debit="480", payee=p, summary="乙单位发放租赁补贴")
        for n, (d, p) in enumerate(kept, 1)] + [row(voucher_no="记-105", posted_on="2024-11-30", debit="400")])
    [o] = load_ledgers(con, [other])
    assert o.action == "loaded" and con.execute(
        "select count(*) from input_files where kind = 'ledger' and status = 'loaded'").fetchone() == (2,)
    # nor one whose lines name no payee: alike by content, such lines tell no export from another
    blank = write_csv(tmp_path / "unit_c_20241130.csv", [
        row(voucher_no=f"记-{200 + n}", posted_on=d, debit="480", payee="") for n, (d, _) in enumerate(kept, 1)])
    for f in (today, blank):
        con.execute("update ledger_lines set payee = null where file_id = (select file_id from input_files "
                    "where name = ?)", [f.name])
    [c] = load_ledgers(con, [blank])
    assert c.action == "loaded" and con.execute(
        "select count(*) from input_files where kind = 'ledger' and status = 'loaded'").fetchone() == (3,)
    # the same two files under names without dates, from two paths: nothing says they are two
    # exports of one ledger, so both count (the payments twice are DUPLICATE_ENTRY's to report)
    store = new_store(tmp_path / "undated")
    seed_notice(store)
    first, second = (tmp_path / "undated" / "a.csv", tmp_path / "undated" / "b.csv")
    shutil.copyfile(yesterday, first)
    shutil.copyfile(today, second)
    assert [o.action for o in load_ledgers(store, [first, second])] == ["loaded", "loaded"]
    assert store.execute("select count(*) from input_files where status = 'superseded'").fetchone() == (0,)
    store.close()


def test_load_ledgers__older_export_loaded_late_is_superseded_itself(con, tmp_path):
    seed_notice(con)
    old = write_csv(tmp_path / "old.csv", [row(voucher_no="记-1", posted_on="2024-01-15", debit="480")])
    new = write_csv(tmp_path / "new.csv", [row(voucher_no="记-1", posted_on="2024-01-15", debit="480"),
                                           row(voucher_no="记-2", posted_on="2024-02-15", debit="480")])
    [n] = load_ledgers(con, [new])
    [o] = load_ledgers(con, [old])
    assert con.execute("select status, superseded_by from input_files where file_id = ?",
                       [o.file_id]).fetchone() == ("superseded", n.file_id)
    assert spent(con) == Decimal("960.00")


def test_load_ledgers__another_units_export_with_the_same_voucher_numbers_supersedes_nothing(con, tmp_path):
    # two units' year-to-date exports: vouchers numbered alike, the same dates, other payees and
    # amounts. Sharing voucher keys and covering dates used to be enough to drop the first file.
    seed_notice(con)
    dates = ("2024-01-15", "2024-06-15", "2024-11-29")
    unit_a = write_csv(tmp_path / "unit_a.csv", [
        row(voucher_no=f"记-{n}", posted_on=d, debit="480", payee=f"甲住户{n}") for n, d in enumerate(dates, 1)])
    unit_b = write_csv(tmp_path / "unit_b.csv", [
        row(voucher_no=f"记-{n}", posted_on=d, debit="400", payee=f"乙住户{n}") for n, d in enumerate(dates, 1)])
    [a, b] = load_ledgers(con, [unit_a, unit_b])
    assert (a.action, b.action) == ("loaded", "loaded") and b.message is None
    assert con.execute("select count(*) from input_files where kind = 'ledger' and status = 'loaded'").fetchone() == (2,)
    assert spent(con) == Decimal("2640.00")  # 3 × 480 + 3 × 400


def test_load_ledgers__a_file_repeating_under_half_of_anothers_lines_is_kept_and_noted(con, tmp_path):
    seed_notice(con)
    first = write_csv(tmp_path / "first.csv", [
        row(voucher_no="记-1", posted_on="2024-01-15", debit="480", payee="住户1"),
        row(voucher_no="记-2", posted_on="2024-06-15", debit="480", payee="住户2"),
        row(voucher_no="记-3", posted_on="2024-11-29", debit="480", payee="住户3"),
    ])
    second = write_csv(tmp_path / "second.csv", [
        row(voucher_no="记-1", posted_on="2024-01-15", debit="480", payee="住户1"),  # the same line
        row(voucher_no="记-2", posted_on="2024-06-15", debit="300", payee="他户2"),
        row(voucher_no="记-3", posted_on="2024-11-29", debit="300", payee="他户3"),
    ])
    [f, s] = load_ledgers(con, [first, second])
    assert (f.action, s.action) == ("loaded", "loaded")
    assert s.message == (f"与文件 first.csv（#{f.file_id}） 日期范围相互覆盖，但只有 1/3 行相同：视为另一本账（另一单位？），"
                      f"两者都计入 / dates nest with file first.csv（#{f.file_id}）'s but only 1 of 3 lines are the "
                      f"same: kept as another "
                      f"ledger (another unit?), both counted")
    assert con.execute("select message from input_files where file_id = ?", [s.file_id]).fetchone() == (s.message,)
    # both counted, but the one line both files carry, the same in every column, once (a voucher
    # line is booked once: fct_line_copies); DUPLICATE_ENTRY says so
    assert spent(con) == Decimal("2040.00")  # 3 × 480 + 2 × 300
    assert [(d.voucher_no, d.source_file) for d in run_rule(con, rule("DUPLICATE_ENTRY"))] == [
        ("记-1", "second.csv")]


def _status(con, outcome) -> tuple:
    return con.execute("select status, superseded_by from input_files where file_id = ?",
                       [outcome.file_id]).fetchone()


YESTERDAY = [row(voucher_no="记-1", posted_on="2024-01-15", debit="480"),
             row(voucher_no="记-3", posted_on="2024-11-29", debit="480")]
TODAY_LAST_VOIDED = [row(voucher_no="记-1", posted_on="2024-01-15", debit="480")]  # 记-3 voided, nothing new


@pytest.mark.parametrize("today_first", [False, True], ids=["in_order", "yesterday_loaded_late"])
def test_load_ledgers__the_later_name_date_wins_though_its_dates_are_covered(con, tmp_path, today_first):
    # today's last voucher was voided and nothing posted since: yesterday's dates cover today's, and
    # only the dates in the names tell which export is newer, in whichever order they are loaded
    seed_notice(con)
    yesterday = write_csv(tmp_path / "ytd_20241129.csv", YESTERDAY)
    today = write_csv(tmp_path / "ytd_20241130.csv", TODAY_LAST_VOIDED)
    by_name = {Path(o.path).name: o for o in load_ledgers(con, [today, yesterday] if today_first else [yesterday, today])}
    y, t = by_name["ytd_20241129.csv"], by_name["ytd_20241130.csv"]
    assert (_status(con, y), _status(con, t)) == (("superseded", t.file_id), ("loaded", None))
    why = (f"被较新的年初至今导出文件 ytd_20241130.csv（#{t.file_id}） 取代（文件名日期 2024-11-30 晚于本文件的 "
           f"2024-11-29），未计入 / superseded by file ytd_20241130.csv（#{t.file_id}）, a newer year-to-date "
           f"export (its name's date 2024-11-30 is later "
           f"than this file's 2024-11-29); not counted")
    assert con.execute("select message from input_files where file_id = ?", [y.file_id]).fetchone() == (why,)
    # the file loaded second says what happened: it superseded the first, or was superseded at once
    second, says = (y, why) if today_first else (
        t, f"取代文件 ytd_20241129.csv（#{y.file_id}） / supersedes file ytd_20241129.csv（#{y.file_id}）")
    assert second.message == says
    assert spent(con) == Decimal("480.00")  # the voided 记-3 is no longer counted


def test_recon_load_ledger__says_when_the_file_loaded_is_superseded_at_once(tmp_path):
    # an older export loaded late: loaded, but not counted, and the command says so
    db = str(tmp_path / "recon.duckdb")
    today = write_csv(tmp_path / "ytd_20241130.csv", TODAY_LAST_VOIDED)
    yesterday = write_csv(tmp_path / "ytd_20241129.csv", YESTERDAY)
    first = CliRunner().invoke(main, ["load", "ledger", str(today), "--db", db])
    late = CliRunner().invoke(main, ["load", "ledger", str(yesterday), "--db", db])
    assert (first.exit_code, late.exit_code) == (0, 0), late.output
    assert first.output.strip().endswith("(1 rows, 0 quarantined)")
    assert "ytd_20241129.csv (2 rows, 0 quarantined): 被较新的年初至今导出文件 ytd_20241130.csv（#1） 取代" in late.output
    assert "not counted" in late.output


def test_load_ledgers__without_dates_in_the_names_the_covering_export_is_taken_for_the_newer(con, tmp_path):
    # the limitation the names lift: the export after the void is taken for an older one
    seed_notice(con)
    [y] = load_ledgers(con, [write_csv(tmp_path / "yesterday.csv", YESTERDAY)])
    [t] = load_ledgers(con, [write_csv(tmp_path / "today.csv", TODAY_LAST_VOIDED)])
    assert (_status(con, y), _status(con, t)) == (("loaded", None), ("superseded", y.file_id))
    assert t.message.startswith(f"被较新的年初至今导出文件 yesterday.csv（#{y.file_id}） 取代（日期范围覆盖本文件）")
    assert spent(con) == Decimal("960.00")


def test_load_ledgers__an_export_overwriting_the_same_file_is_the_newer_though_its_dates_are_covered(con, tmp_path):
    # the nightly export written over one file without a date in its name: what is at the path
    # now replaced what was read from it yesterday, so the voided 记-3 stops counting
    seed_notice(con)
    path = tmp_path / "ledger.csv"
    [y] = load_ledgers(con, [write_csv(path, YESTERDAY)])
    write_csv(path, TODAY_LAST_VOIDED)
    [t] = load_ledgers(con, [path])
    assert (_status(con, y), _status(con, t)) == (("superseded", t.file_id), ("loaded", None))
    assert t.message == f"取代文件 ledger.csv（#{y.file_id}） / supersedes file ledger.csv（#{y.file_id}）"
    assert con.execute("select message from input_files where file_id = ?", [y.file_id]).fetchone() == (
        f"被较新的年初至今导出文件 ledger.csv（#{t.file_id}） 取代（同一路径的文件，读入晚于本文件），未计入 / "
        f"superseded by file ledger.csv（#{t.file_id}）, a newer year-to-date export (read later from the same path); "
        f"not counted",)
    assert spent(con) == Decimal("480.00")


def test_load_ledgers__an_overwritten_export_named_another_way_is_still_the_same_path(con, tmp_path, monkeypatch):
    # yesterday's export read relatively by the cron job, today's by an auditor's absolute path
    # through a linked folder: the overwrite still replaces yesterday's, voided 记-3 and all
    seed_notice(con)
    project = tmp_path / "srv"
    (project / "ledgers").mkdir(parents=True)
    (tmp_path / "link").symlink_to(project)
    monkeypatch.chdir(project)
    [y] = load_ledgers(con, [write_csv(Path("ledgers") / "ledger.csv", YESTERDAY)])
    write_csv(project / "ledgers" / "ledger.csv", TODAY_LAST_VOIDED)
    [t] = load_ledgers(con, [tmp_path / "link" / "ledgers" / "ledger.csv"])
    assert (_status(con, y), _status(con, t)) == (("superseded", t.file_id), ("loaded", None))
    assert spent(con) == Decimal("480.00")


def test_load_ledgers__a_store_from_before_canonical_paths_still_knows_the_export_by_its_path(con, tmp_path, monkeypatch):
    # a store upgraded in place: yesterday's row holds the path as the cron job gave it, relative
    # to the project folder the job runs in
    seed_notice(con)
    monkeypatch.chdir(tmp_path)
    export = Path("ledgers") / "ledger.csv"
    export.parent.mkdir()
    [y] = load_ledgers(con, [write_csv(export, YESTERDAY)])
    con.execute("update input_files set path = ? where file_id = ?", [str(export), y.file_id])
    write_csv(export, TODAY_LAST_VOIDED)
    [t] = load_ledgers(con, [export])
    assert (_status(con, y), _status(con, t)) == (("superseded", t.file_id), ("loaded", None))
    assert con.execute("select path from input_files where file_id = ?", [y.file_id]).fetchone() == (t.path,)
    assert spent(con) == Decimal("480.00")


def test_recon_run__nightly_export_overwriting_one_file_replaces_the_night_before(tmp_path):
    # as cron runs it: the seed notice and one export file, rewritten between two nightly runs
    # with its last voucher voided and nothing posted since
    inputs = tmp_path / "inputs"
    (inputs / "notices").mkdir(parents=True)
    (inputs / "ledgers").mkdir()
    (inputs / "notices" / SEED_NOTICE.name).write_bytes(SEED_NOTICE.read_bytes())
    export = inputs / "ledgers" / "ledger.csv"

    def nightly(rows) -> Decimal:
        write_csv(export, rows)
        os.utime(export, (HOUR_AGO, HOUR_AGO))
        ran = CliRunner().invoke(main, ["run", "--inputs", str(inputs), "--outputs", str(tmp_path / "out"),
                                        "--as-of", "2024-12-31", "--fail-on", "never"])
        assert ran.exit_code == 0, ran.output
        with open(tmp_path / "out" / "latest" / "summary.csv", encoding="utf-8-sig") as fh:
            return next(Decimal(r["spent"]) for r in csv.DictReader(fh) if r["purpose"] == RENT)

    assert nightly(YESTERDAY) == Decimal("960.00")
    assert nightly(TODAY_LAST_VOIDED) == Decimal("480.00")  # 记-3, voided, no longer counted


def test_load_ledgers__another_units_export_at_the_same_path_supersedes_nothing(con, tmp_path):
    # the path says which export is newer, not whether two files are exports of one ledger
    seed_notice(con)
    path = tmp_path / "ledger.csv"
    [a] = load_ledgers(con, [write_csv(path, YESTERDAY)])
    write_csv(path, [row(voucher_no="记-1", posted_on="2024-01-15", debit="300", payee="他户")])
    [b] = load_ledgers(con, [path])
    assert (_status(con, a), _status(con, b)) == (("loaded", None), ("loaded", None))
    assert spent(con) == Decimal("1260.00")  # 2 × 480 + 300: both counted


@pytest.mark.parametrize("name, date", [
    ("ledger_2024_ytd_20241130.csv", dt.date(2024, 11, 30)),  # the year alone is no date
    ("账簿_2024-11-30.xlsx", dt.date(2024, 11, 30)),
    ("凭证2024年11月30日.csv", dt.date(2024, 11, 30)),
    ("20241130 (1).csv", dt.date(2024, 11, 30)),
    ("l_20240101_20241130.csv", None),  # a range of dates: which is the export's?
    ("x_20241301.csv", None),           # no month 13
    ("a2024113012.csv", None),          # a longer number
    ("ledger.csv", None),
])
def test_export_date__read_from_the_file_name(name, date):
    assert ledgers.export_date(name) == date


def test_load_ledgers__monthly_exports_do_not_supersede(con, tmp_path):
    seed_notice(con)
    jan = write_csv(tmp_path / "jan.csv", [row(voucher_no="记-1", posted_on="2024-01-15", debit="480")])
    feb = write_csv(tmp_path / "feb.csv", [row(voucher_no="记-1", posted_on="2024-02-15", debit="480")])
    load_ledgers(con, [jan, feb])
    assert con.execute("select count(*) from input_files where kind = 'ledger' and status = 'loaded'").fetchone() == (2,)
    assert spent(con) == Decimal("960.00")


@pytest.mark.parametrize("ytd_at, part_at", [("ytd_20241129.csv", "11月凭证_2024-11-30.csv"),
                                             ("ytd.csv", "ytd.csv")])
def test_load_ledgers__a_months_export_never_replaces_the_year_to_date(con, tmp_path, ytd_at, part_at):
    # November's export beside the year to date (a later date in its name), or written over the
    # year-to-date file's path: before, it superseded the year, and January to October's spending
    # vanished from the reconciliation (findings "resolved" though nothing was fixed)
    seed_notice(con)
    year = [row(voucher_no=f"记-{m}", posted_on=f"2024-{m:02d}-15", debit="480") for m in range(1, 12)]
    ytd = write_csv(tmp_path / ytd_at, year)
    [y] = load_ledgers(con, [ytd])
    part = write_csv(tmp_path / part_at, year[-1:])
    [p] = load_ledgers(con, [part])
    assert spent(con) == Decimal("5280.00")  # 11 months of 480, November once
    status = dict(con.execute("select file_id, status from input_files where kind = 'ledger'").fetchall())
    assert (status[y.file_id], status[p.file_id]) == ("loaded", "superseded")
    assert "本文件只是其中自 2024-11-15 起的一段" in p.message and f"{ytd_at}（#" in p.message


def test_load_ledgers__failure_mid_file_leaves_store_unchanged(con, tmp_path, monkeypatch):
    path = write_csv(tmp_path / "l.csv", [row(), row(voucher_no="记-2", debit="bad")])

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ledgers, "_supersede", boom)
    with pytest.raises(RuntimeError):
        load_ledgers(con, [path])
    for table in ("input_files", "ledger_lines", "quarantine"):
        assert con.execute(f"select count(*) from {table}").fetchone() == (0,), table
    monkeypatch.undo()
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded, out.rows_quarantined) == ("loaded", 1, 1)


def test_load_ledgers__scratch_text_beside_the_store_and_gone_after_load_reject_or_kill(con, tmp_path, monkeypatch):
    # The transcoded copy and the scratch Parquet file of text are as large as the file: they go
    # in the store's private spill folder (not a possibly memory-backed /tmp), and nothing of them
    # is left on disk, whether the file loaded or was rejected.
    spill = Path(con.execute("select current_setting('temp_directory')").fetchone()[0])
    seen = []
    real_load_one = ledgers._load_one

    def load_one(con, path, sha, preset, encoding, presets_file, workdir, *rest):
        seen.append(workdir)
        return real_load_one(con, path, sha, preset, encoding, presets_file, workdir, *rest)

    monkeypatch.setattr(ledgers, "_load_one", load_one)
    killed = spill / "recon-ledger-killed"  # what a load killed mid-way leaves
    killed.mkdir()
    (killed / "ledger-utf8.csv").write_text("half a file", encoding="utf-8")
    good = write_csv(tmp_path / "good.csv", [row(), row(voucher_no="记-2")], encoding="gbk")
    cut = tmp_path / "cut.csv"
    cut.write_text(",".join(CN) + "\n" + ",".join(row()[:8]) + "\n", encoding="utf-8")
    written = []
    real_read_or_reject = ledgers._read_or_reject

    def read_or_reject(con, sql, *rest):
        real_read_or_reject(con, sql, *rest)
        # the workdir of the load now running (those of earlier files are gone)
        written.extend(p for p in seen[-1].iterdir() if p.name == ledgers.SCRATCH_TEXT)

    monkeypatch.setattr(ledgers, "_read_or_reject", read_or_reject)
    outcomes = load_ledgers(con, [good, cut])
    assert [o.action for o in outcomes] == ["loaded", "rejected"]
    assert [w.parent for w in seen] == [spill, spill]
    assert written and all(p.parent == seen[0] for p in written)  # the good file's text was there
    assert not any(w.exists() for w in seen) and not killed.exists()
    assert con.execute("select count(*) from ledger_lines").fetchone() == (2,)


# --- rejected files -------------------------------------------------------------------------------

def test_input_rejected__missing_column_exit_2(tmp_path):
    header = [h for h in CN if h != "贷方金额"]
    rows = [[v for h, v in zip(CN, row()) if h != "贷方金额"]]
    path = write_csv(tmp_path / "bad.csv", rows, header=header)
    db = tmp_path / "recon.duckdb"
    result = CliRunner().invoke(main, ["load", "ledger", str(path), "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert "bad.csv" in result.output and "贷方金额" in result.output and "credit" in result.output
    c = duckdb.connect(str(db))
    try:
        assert c.execute("select status, name from input_files").fetchall() == [("rejected", "bad.csv")]
        assert c.execute("select count(*) from ledger_lines").fetchone() == (0,)
        assert c.execute("select count(*) from quarantine").fetchone() == (0,)
    finally:
        c.close()


def test_input_rejected__reported_for_this_run_only(con, tmp_path):
    path = write_csv(tmp_path / "bad.csv", [["x", "y"]], header=["凭证号", "摘要"])
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected"
    set_context(con, run_id="r1")
    con.execute("insert into run_inputs (run_id, file_id, action) values ('r1', ?, 'rejected')", [out.file_id])
    [f] = run_rule(con, rule("INPUT_REJECTED"))
    assert f.source_file == "bad.csv" and "凭证日期" in f.message and "posted_on" in f.message
    set_context(con, run_id="r2")
    assert run_rule(con, rule("INPUT_REJECTED")) == []


def test_input_missing__an_empty_store_says_what_is_missing(con, tmp_path):
    found = run_rule(con, rule("INPUT_MISSING"))
    assert [(f.observed, f.severity) for f in found] == [("notice", "error"), ("ledger", "error")]
    assert "no allocation notice is loaded" in found[0].message and "没有分配下达通知" in found[0].message
    assert len({f.finding_key for f in found}) == 2  # two keys: each can be waived apart
    seed_notice(con)
    # a ledger offered but rejected is still missing
    load_ledgers(con, [write_csv(tmp_path / "bad.csv", [row()], header=["凭证号", "摘要"])])
    assert [f.observed for f in run_rule(con, rule("INPUT_MISSING"))] == ["ledger"]
    # a header-only export is loaded (INPUT_EMPTY warns of it): nothing is missing
    load_ledgers(con, [write_csv(tmp_path / "empty.csv", [])])
    assert run_rule(con, rule("INPUT_MISSING")) == []


def test_input_empty__header_only_export_warned_once(con, tmp_path):
    blank = [""] * len(CN)
    empty = write_csv(tmp_path / "empty.csv", [])
    only_blank = write_csv(tmp_path / "blank.csv", [blank, blank])
    bad_only = write_csv(tmp_path / "bad.csv", [row(debit="x")])
    full = write_csv(tmp_path / "full.csv", [row()])
    outs = load_ledgers(con, [empty, only_blank, bad_only, full])
    assert [(o.action, o.rows_loaded) for o in outs] == [("loaded", 0)] * 3 + [("loaded", 1)]
    set_context(con, run_id="r1")
    for o in outs:
        con.execute("insert into run_inputs (run_id, file_id, action) values ('r1', ?, 'loaded')", [o.file_id])
    found = run_rule(con, rule("INPUT_EMPTY"))
    # a file of quarantined rows is not empty: INPUT_ROW_INVALID speaks for it
    assert [f.source_file for f in found] == ["empty.csv", "blank.csv"]
    assert rule("INPUT_EMPTY").severity == "warning"
    assert "没有数据行" in found[0].message and "no data rows" in found[0].message
    set_context(con, run_id="r2")  # offered again the next night: skipped, not repeated
    [again] = load_ledgers(con, [empty])
    con.execute("insert into run_inputs (run_id, file_id, action) values ('r2', ?, ?)", [again.file_id, again.action])
    assert again.action == "skipped" and run_rule(con, rule("INPUT_EMPTY")) == []


def test_load_ledgers__rejected_file_can_be_offered_again(con, tmp_path):
    path = write_csv(tmp_path / "l.csv", [row()], header=["单据号" if h == "凭证号" else h for h in CN])
    assert load_ledgers(con, [path])[0].action == "rejected"
    assert load_ledgers(con, [path])[0].action == "rejected"  # same bytes: tried again, not skipped
    assert con.execute("select count(*) from input_files where status = 'rejected'").fetchone() == (2,)


def test_run__rejected_ledger_exit_2_other_files_load(tmp_path, monkeypatch):
    from pipeline import run as run_mod
    from pipeline.run import Scope, execute_run

    # the expectation suites take seconds to start and are tested elsewhere; loading counts here
    monkeypatch.setattr(run_mod.expectations, "run_suites", lambda con, specs, docs: {s.name: [] for s in specs})

    inputs = tmp_path / "inputs"
    (inputs / "ledgers").mkdir(parents=True)
    write_csv(inputs / "ledgers" / "a_good.csv", [row()])
    write_csv(inputs / "ledgers" / "b_bad.csv", [["x"]], header=["摘要"])
    result = execute_run(inputs, tmp_path / "out", tmp_path / "out" / "recon.duckdb",
                         Scope(as_of=dt.date(2024, 12, 31)))
    assert result.exit_status == 2
    assert [o.action for o in result.outcomes] == ["loaded", "rejected"]
    rejected = [f for f in run_findings(tmp_path / "out" / "recon.duckdb", result.run_id)
                if f.rule_id == "INPUT_REJECTED"]
    assert [f.source_file for f in rejected] == ["b_bad.csv"]


# --- hardening -----------------------------------------------------------------------------------

def test_load_ledgers__long_cell_loads(con, tmp_path):
    path = write_csv(tmp_path / "l.csv", [row(summary="危" * 300_000), row(voucher_no="记-2")])
    [out] = load_ledgers(con, [path])
    assert (out.action, out.rows_loaded) == ("loaded", 2)
    assert len(lines(con)[0]["summary"]) == 300_000


def test_load_ledgers__xlsx_inflating_beyond_limits_rejected(con, tmp_path, monkeypatch):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    wb.active.append(CN)
    for i in range(2000):
        wb.active.append(row(voucher_no=f"记-{i}"))
    path = tmp_path / "big.xlsx"
    wb.save(path)
    monkeypatch.setattr(ledgers, "XLSX_MAX_PART_BYTES", 100_000)
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and "xl/worksheets/sheet1.xml" in out.message
    assert con.execute("select count(*) from ledger_lines").fetchone() == (0,)


def test_load_ledgers__damaged_xlsx_rejected(con, tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and "XLSX" in out.message


# --- the shipped demo ledger ---------------------------------------------------------------------

def test_demo__rebuilds_the_shipped_file_byte_for_byte(tmp_path):
    from pipeline import demo

    out = tmp_path / "demo.csv"
    n = demo.generate_ledger(out)
    assert n > 600
    assert out.read_bytes() == demo.DEMO_FILE.read_bytes(), "run `python -m pipeline.demo` and commit"


def test_demo__loads_clean_within_allocations_with_planted_mistakes(con):
    from builders import DILAPIDATED, RENTAL_HOUSING
    from pipeline import demo

    seed_notice(con)
    [out] = load_ledgers(con, [demo.DEMO_FILE])
    assert (out.action, out.rows_quarantined) == ("loaded", 0) and out.rows_loaded > 600
    # GB18030 text that uses only GBK characters is recorded as gbk (decoded as GB18030 either way)
    assert con.execute("select encoding, preset from input_files where kind = 'ledger'").fetchone() in (
        ("gbk", "cn-grp"), ("gb18030", "cn-grp"))
    set_context(con)
    summary = dict(con.execute("select purpose, spent from rpt_allocation_summary").fetchall())
    allocated = dict(con.execute("select purpose, amount from allocation_lines").fetchall())
    for purpose in (RENT, RENTAL_HOUSING, OLD_ESTATES, DILAPIDATED):
        assert 0 < summary[purpose] < allocated[purpose], purpose
    q = lambda sql: con.execute(sql).fetchall()  # noqa: E731
    # both books, receipts and out-of-scope office costs are there
    assert {r[0] for r in q("select distinct account_code from ledger_lines")} >= {
        "7201", "8001", "5001", "1613", "1011", "6001", "4001"}
    assert q("select count(distinct payee) from ledger_lines where purpose = '2024年租赁补贴（中央直达）' "
             "and book = 'budget' and account_code = '7201'") == [(30,)]
    assert q("select count(*) from ledger_lines where function_code = '2120101'")[0][0] > 0
    # a red-ink reversal nets out
    assert q("select count(*) from ledger_lines where book = 'budget' and account_code = '7201' "
             "and debit < 0") == [(1,)]
    # planted mistakes
    assert q("select count(*) from ledger_lines where book = 'budget' and account_code = '7201' "
             "and function_code = '22101'") == [(1,)]
    assert q("select count(*) from ledger_lines where book = 'budget' and account_code = '7201' "
             "and purpose = '2024年中央财政城镇保障性安居工程补助资金'") == [(1,)]
    assert q("select count(*) from ledger_lines where book = 'budget' and account_code = '7201' "
             "and direct_flag is null") == [(1,)]
    assert q("""select count(*) from (
                  select payee, strftime(posted_on, '%Y-%m') as month
                  from ledger_lines
                  where book = 'budget' and account_code = '7201' and purpose_key like '%租赁补贴%'
                  group by all having sum(debit - credit) > 480)""") == [(1,)]


def test_demo__generator_scales_and_is_seeded(tmp_path):
    from pipeline import demo

    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    n = demo.generate_ledger(a, seed=7, target_lines=3000, encoding="utf-8")
    demo.generate_ledger(b, seed=7, target_lines=3000, encoding="utf-8")
    demo.generate_ledger(c, seed=8, target_lines=3000, encoding="utf-8")
    assert 2800 <= n <= 3200
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_load_ledgers__broken_csv_rejected_naming_the_line(con, tmp_path):
    path = tmp_path / "cut.csv"
    body = ",".join(CN) + "\r\n" + ",".join(row()) + "\r\n" + ",".join(row()[:8]) + "\r\n"
    path.write_text(body, encoding="utf-8")
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected"
    assert "cut.csv" in out.message and "第3行" in out.message and "line 3" in out.message
    assert con.execute("select count(*) from ledger_lines").fetchone() == (0,)


def test_load_ledgers__unreadable_file_rejected(con, tmp_path):
    import os

    path = write_csv(tmp_path / "locked.csv", [row()])
    path.chmod(0)
    if os.access(path, os.R_OK):  # running as root: permissions do not stop reads
        path.chmod(0o600)
        path = tmp_path / "folder.csv"
        path.mkdir()
    [out] = load_ledgers(con, [path])
    assert out.action == "rejected" and path.name in out.message
    assert con.execute("select count(*) from ledger_lines").fetchone() == (0,)


def test_load_ledgers__on_read_when_duckdb_starts_reading_the_rows(con, tmp_path):
    """`recon run` starts GX's import in on_read: after the hash, the transcoding and a workbook's
    Python read, when the interpreter is free; once per file read, not for a skipped file."""
    openpyxl = pytest.importorskip("openpyxl")
    gbk = write_csv(tmp_path / "gbk.csv", [row(voucher_no="记-0001")], encoding="gb18030")
    wb = openpyxl.Workbook()
    wb.active.append(CN)
    wb.active.append(row(voucher_no="记-0002"))
    book = tmp_path / "l.xlsx"
    wb.save(book)
    seen = []

    def on_read():
        transcoded = [p.name for d in _load_folders(con) for p in d.glob(ledgers.UTF8_COPY)]
        raw = con.execute("select count(*) from duckdb_tables() where table_name = '_ledger_raw'").fetchone()[0]
        seen.append((con.execute("select count(*) from ledger_lines").fetchone()[0], transcoded, raw))

    outcomes = load_ledgers(con, [gbk, book, gbk], on_read=on_read)
    assert [o.action for o in outcomes] == ["loaded", "loaded", "skipped"]
    # the CSV: its UTF-8 copy written, nothing typed yet; the workbook: its rows read by Python
    assert seen == [(0, ["ledger-utf8.csv"], 0), (1, [], 1)]
    assert [r["voucher_no"] for r in lines(con)] == ["记-0001", "记-0002"]


def test_run__gx_import_starts_when_duckdb_reads_the_ledger(tmp_path, monkeypatch):
    from pipeline import expectations
    from pipeline import run as run_mod

    inputs = tmp_path / "inputs"
    (inputs / "ledgers").mkdir(parents=True)
    (inputs / "notices").mkdir()
    seed = Path(__file__).resolve().parent.parent / "inputs" / "notices" / "000_a45419bc3fccfd31.txt"
    (inputs / "notices" / seed.name).write_bytes(seed.read_bytes())
    write_csv(inputs / "ledgers" / "a.csv", [row()], encoding="gb18030")
    calls = []
    monkeypatch.setattr(expectations, "import_gx_early", lambda: calls.append(len(calls)))
    monkeypatch.setattr(expectations, "run_suites", lambda con, specs, docs: {s.name: [] for s in specs})
    real_load = ledgers.load_ledgers

    def load(con, paths, *args, **kwargs):
        notices_loaded = con.execute("select count(*) from notices").fetchone()[0]
        before = len(calls)
        out = real_load(con, paths, *args, **kwargs)
        loads.append((notices_loaded, before, len(calls)))
        return out

    loads = []
    monkeypatch.setattr(ledgers, "load_ledgers", load)
    run_mod.execute_run(inputs, tmp_path / "out", tmp_path / "out" / "recon.duckdb",
                        run_mod.Scope(as_of=dt.date(2024, 12, 31)), fail_on="never")
    # not before or during the notice's load: inside the ledger's, then again (a no-op) at the checks
    assert loads == [(1, 0, 1)] and len(calls) == 2


def test_read_or_reject__disk_full_stops_the_load_without_blaming_the_file(tmp_path):
    """DuckDB writes a CSV's text into a scratch Parquet file as it reads it: a full disk there is the
    machine's problem (the run stops and says so), while an I/O error reading the file rejects it."""
    class Raising:
        def __init__(self, message):
            self.message = message

        def execute(self, *args):
            raise duckdb.IOException(self.message)

    path = tmp_path / "l.csv"
    full = Raising('IO Error: Could not write file "ledger-text.parquet": No space left on device')
    with pytest.raises(duckdb.IOException):
        ledgers._read_or_reject(full, "create table t as select 1", {}, path, "csv", "gb18030")
    gone = Raising('IO Error: Could not read from file "l.csv": Input/output error')
    with pytest.raises(ledgers.InputError) as err:
        ledgers._read_or_reject(gone, "create table t as select 1", {}, path, "csv", "gb18030")
    assert "l.csv" in str(err.value) and "cannot be read" in str(err.value)


def test_run__quarantined_rows_on_stderr_the_first_twenty_then_a_count(tmp_path, monkeypatch):
    """cron mails stderr: it names the first quarantined rows, in file order, and counts the rest."""
    from pipeline import run as run_mod

    monkeypatch.setattr(run_mod.expectations, "run_suites", lambda con, specs, docs: {s.name: [] for s in specs})
    inputs = tmp_path / "inputs"
    (inputs / "ledgers").mkdir(parents=True)
    rows = [row(voucher_no=f"记-{i:04d}", debit=("十二元" if i % 2 else "12.00")) for i in range(1, 55)]
    write_csv(inputs / "ledgers" / "ledger.csv", rows)
    result = CliRunner().invoke(main, ["run", "--inputs", str(inputs), "--outputs", str(tmp_path / "out"),
                                       "--as-of", "2024-12-31"])
    shown = [line for line in result.stderr.splitlines() if line.startswith("隔离 / quarantined:")]
    assert len(shown) == 21, result.stderr
    assert all("十二元" in line for line in shown[:20])
    rows_named = [int(re.search(r"第 ?(\d+) ?行", line).group(1)) for line in shown[:20]]
    assert rows_named == list(range(1, 40, 2))  # the bad rows, 1, 3, 5 …, in the file's order
    assert "另有 7 处" in shown[20] and "7 more" in shown[20]


def test_load_ledger_command__quarantined_rows_on_stderr_as_recon_run_names_them(tmp_path):
    # before, `recon load ledger` said only "(27 rows, 27 quarantined)": which rows, it did not say
    path = tmp_path / "ledger.csv"
    write_csv(path, [row(voucher_no=f"记-{i:04d}", debit=("十二元" if i % 2 else "12.00")) for i in range(1, 55)])
    result = CliRunner().invoke(main, ["load", "ledger", str(path), "--outputs", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "(27 rows, 27 quarantined)" in result.output
    shown = [line for line in result.stderr.splitlines() if line.startswith("隔离 / quarantined:")]
    assert len(shown) == 21, result.stderr
    assert [int(re.search(r"数据第(\d+)行", line).group(1)) for line in shown[:20]] == list(range(1, 40, 2))
    assert all("“十二元”" in line and "ledger.csv" in line for line in shown[:20])
    assert "另有 7 处" in shown[20] and "7 more" in shown[20]
    # a ledger kept one sheet a month: its bad row is under its sheet's own registry row
    sheets = CliRunner().invoke(main, ["load", "ledger", str(_monthly_workbook(tmp_path / "wb")),
                                       "--outputs", str(tmp_path / "out")])
    assert [line for line in sheets.stderr.splitlines() if line.startswith("隔离 / quarantined:")] == [
        "隔离 / quarantined: 文件 账簿.xlsx [3月] 数据第2行 借方金额 的值“4８0.0.0”：金额无法识别，该行未计入 / "
        "file 账簿.xlsx [3月] data row 2, column 借方金额 value \"4８0.0.0\": unparsable amount; "
        "the row is not counted"]
    clean = tmp_path / "clean.csv"
    write_csv(clean, [row(voucher_no="记-0001")])
    quiet = CliRunner().invoke(main, ["load", "ledger", str(clean), "--outputs", str(tmp_path / "out")])
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_load_ledgers__an_export_without_line_numbers_numbers_each_vouchers_lines(con, tmp_path):
    # no 分录号 column: before, every line of a voucher had one key, and thirty households paid in
    # one voucher read as one line repeated (DUPLICATE_ENTRY, and the key suite, on every line)
    seed_notice(con)
    without = [i for i, h in enumerate(CN) if h != "分录号"]
    rows = [row(voucher_no="记-1", payee=f"户{i}") for i in range(1, 4)]
    rows += [row(voucher_no="记-1", posted_on="2024-04-15", payee="户1"),  # April's 记-1: another voucher
             row(voucher_no="记-2", payee="户4")]
    path = write_csv(tmp_path / "no_line_no.csv", [[r[i] for i in without] for r in rows],
                     header=[CN[i] for i in without])
    [out] = load_ledgers(con, [path])
    assert out.rows_loaded == 5 and "文件没有分录号列，按每张凭证内的行序编号" in out.message
    assert [(ln["voucher_no"], ln["line_no"]) for ln in lines(con)] == [
        ("记-1", "1"), ("记-1", "2"), ("记-1", "3"), ("记-1", "1"), ("记-2", "1")]
    set_context(con)
    assert run_rule(con, rule("DUPLICATE_ENTRY")) == []


def test_load_ledgers__a_file_read_in_the_wrong_encoding_says_so(con, tmp_path):
    # a GBK export loaded with --encoding utf-8: before, "required columns missing … add an alias
    # in presets.toml", which no alias could mend
    path = write_csv(tmp_path / "gbk.csv", [row()], encoding="gbk")
    [out] = load_ledgers(con, [path], encoding="utf-8")
    assert out.action == "rejected" and "表头含有无法按所读编码解码的字节" in out.message
    assert "presets.toml" not in out.message
    [again] = load_ledgers(con, [path])  # detected, it loads
    assert (again.action, again.rows_loaded) == ("loaded", 1)
