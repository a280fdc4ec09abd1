"""Hostile and broken inputs, generated at test time, each with the behaviour the contract expects.

Exports are hand-edited in Excel, cut off by full disks, saved in the wrong encoding and sometimes
carry text crafted to attack whoever opens the report. Every case here writes one broken file
into a temporary inputs folder that also holds the good seed notice and a good small ledger
(`write_inputs`), and states what `recon run` must do with it (`Expect`):

* rejected     the file is refused whole: status `rejected` in input_files, nothing of it in
               ledger_lines, an INPUT_REJECTED finding naming it, its name on stderr, exit 2;
* rows         the file loads, the listed data rows are quarantined (INPUT_ROW_INVALID naming
               file and row, and the bad value), every other row loads;
* loaded       the file loads whole (it was only unusual, e.g. UTF-16), with the stated rows.

In every case the good files still load and reconcile exactly as without the bad file. Rows in
the hostile ledgers are booked to the 危旧房改造 line (which the good ledger does not touch), so
summary.csv shows precisely what of the hostile file was counted: `dilapidated_spent`.

Binary junk (random bytes, a zip bomb, a damaged workbook) is generated, never committed.
"""
from __future__ import annotations

import codecs
import csv
import io
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Callable

from builders import connect

SEED_NOTICE = Path(__file__).resolve().parents[1] / "inputs" / "notices" / "000_a45419bc3fccfd31.txt"
NOTICE_NO = "克区财综〔2024〕2号"
PROJECT_CODE = "10000013Z135080000028"
RENT = "2024年租赁补贴（中央直达）"
RENTAL_HOUSING = "2024年保障性租赁住房（中央直达）"
OLD_ESTATES = "2024年老旧小区改造（中央直达）"
DILAPIDATED = "2024年危旧房改造（中央直达）"

HEADER = ["凭证号", "分录号", "凭证日期", "会计体系", "科目编码", "科目名称", "摘要", "借方金额",
          "贷方金额", "功能分类", "经济分类", "项目代码", "项目名称", "资金来源", "直达资金标识",
          "指标文号", "收款人"]
COL = {name: i for i, name in enumerate(HEADER)}
AS_OF = "2024-06-30"


def budget_row(voucher: str, date: str, amount: str, purpose: str, code: str, payee: str,
               summary: str = "发放补贴", economic: str = "30305 生活补助", line_no: str = "1") -> list[str]:
    """One budget-book expenditure line (预算会计 7201 debit) tied to the seed notice."""
    return [voucher, line_no, date, "预算会计", "7201", "事业支出", summary, amount, "",
            code, economic, PROJECT_CODE, purpose, "中央直达资金", "01 中央直达资金", NOTICE_NO, payee]


def financial_row(voucher: str, date: str, amount: str, purpose: str, code: str, payee: str,
                  line_no: str = "3") -> list[str]:
    """The financial book's parallel line of the same payment: never counted as expenditure."""
    return [voucher, line_no, date, "财务会计", "5001", "业务活动费用", "发放补贴", amount, "",
            code, "30305 生活补助", PROJECT_CODE, purpose, "中央直达资金", "01 中央直达资金",
            NOTICE_NO, payee]


def good_rows() -> list[list[str]]:
    """A clean small year-to-date export: rent subsidies for two households Jan-Mar, one
    progress payment on the old estates, both books. Budget-book spending: rent 2,880.00,
    old estates 1,000,000.00, nothing else."""
    rows = []
    n = 0
    for month in (1, 2, 3):
        for payee in ("王芳", "李强"):
            n += 1
            v = f"记-{month:02d}{n:02d}"
            date = f"2024-{month:02d}-1{month}"
            rows.append(budget_row(v, date, "480.00", RENT, "2210107 保障性住房租金补贴", payee))
            rows.append(financial_row(v, date, "480.00", RENT, "2210107 保障性住房租金补贴", payee))
    rows.append(budget_row("记-0301", "2024-03-20", "1,000,000.00", OLD_ESTATES, "2210108 老旧小区改造",
                           "克拉玛依建工集团", summary="支付工程进度款", economic="31005 基础设施建设"))
    rows.append(financial_row("记-0301", "2024-03-20", "1,000,000.00", OLD_ESTATES,
                              "2210108 老旧小区改造", "克拉玛依建工集团"))
    return rows


GOOD_SPENT = {RENT: Decimal("2880.00"), RENTAL_HOUSING: Decimal("0.00"),
              OLD_ESTATES: Decimal("1000000.00")}


# Voucher numbers of hostile rows carry the case's own prefix (set by Case.write), so two hostile
# files in one run never share a voucher and are never taken for successive year-to-date exports.
_voucher_prefix = "9"


def hostile_rows(n: int = 3, start: int = 1) -> list[list[str]]:
    """n clean rows booked to the 危旧房改造 line, 1,000.00 each, distinct vouchers and payees."""
    return [budget_row(f"记-{_voucher_prefix}-{start + i:03d}", f"2024-04-{10 + i:02d}", "1000.00", DILAPIDATED,
                       "2210103 棚户区改造", f"住户{start + i}号", summary="危旧房改造补助",
                       economic="31006 大型修缮")
            for i in range(n)]


def csv_text(rows: list[list[str]], header: list[str] = HEADER) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER,
              encoding: str = "utf-8") -> Path:
    path.write_bytes(csv_text(rows, header).encode(encoding))
    return path


def write_inputs(root: Path, good_ledger: bool = True) -> Path:
    """inputs/notices/<seed> and inputs/ledgers/good.csv under root; returns the inputs folder."""
    inputs = root / "inputs"
    (inputs / "notices").mkdir(parents=True)
    (inputs / "ledgers").mkdir(parents=True)
    (inputs / "notices" / SEED_NOTICE.name).write_bytes(SEED_NOTICE.read_bytes())
    if good_ledger:
        write_csv(inputs / "ledgers" / "good.csv", good_rows())
    return inputs


# --------------------------------------------------------------------------------------------
# Builders of broken files


def _rng(name: str) -> random.Random:
    return random.Random(f"hostile-{name}")


def tab_separated_text(path: Path) -> None:
    """An accounting system's "export to Excel": GBK text, tab-separated, under an .xls name."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\r\n")
    w.writerow(HEADER)
    w.writerows(hostile_rows(3))
    path.write_bytes(buf.getvalue().encode("gbk"))


OLE2_WORKBOOK = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4088)  # Office 97-2003's container, empty


def random_bytes(path: Path, size: int = 4096) -> None:
    path.write_bytes(_rng(path.name).randbytes(size))


def with_cell(rows: list[list[str]], row: int, column: str, value: str) -> list[list[str]]:
    """A copy of rows with data row `row` (1-based) column `column` set to value."""
    rows = [list(r) for r in rows]
    rows[row - 1][COL[column]] = value
    return rows


def truncated_mid_row(path: Path) -> None:
    """A full disk: the last row stops in the middle of its amount."""
    text = csv_text(hostile_rows(3))
    cut = text.rstrip("\r\n").rfind("1000.00")
    path.write_text(text[: cut + 2], encoding="utf-8")


def unbalanced_quote(path: Path) -> None:
    """The last row opens a quote that never closes (cut off inside a quoted summary)."""
    text = csv_text(hostile_rows(2))
    last = budget_row(f"记-{_voucher_prefix}-003", "2024-04-12", "1000.00", DILAPIDATED, "2210103 棚户区改造", "住户3号")
    line = ",".join(last[: COL["摘要"]]) + ',"危旧房改造补助，第'
    path.write_text(text + line, encoding="utf-8")


def damaged_gb18030(path: Path) -> None:
    """A GB18030 export with one damaged byte in its last row (physical line 4): 0xFF is never
    part of a GB18030 character."""
    lines = csv_text(hostile_rows(3)).encode("gb18030").split(b"\n")
    lines[3] = lines[3].replace("危".encode("gb18030"), b"\xff", 1)
    assert b"\xff" in lines[3]
    path.write_bytes(b"\n".join(lines))


def duplicated_columns(path: Path) -> None:
    """Two 借方金额 columns with different values: which one is the debit is unknowable."""
    header = HEADER + ["借方金额"]
    rows = [r + ["9999.00"] for r in hostile_rows(3)]
    write_csv(path, rows, header)


def xlsx_bytes(rows: list[list]) -> bytes:
    import openpyxl

    buf = io.BytesIO()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER)
    for r in rows:
        ws.append(r)
    wb.save(buf)
    return buf.getvalue()


def truncated_xlsx(path: Path) -> None:
    data = xlsx_bytes(hostile_rows(3))
    path.write_bytes(data[: len(data) // 2])


def csv_renamed_xlsx(path: Path) -> None:
    path.write_bytes(csv_text(hostile_rows(3)).encode("utf-8"))


# A zip bomb: a workbook a few hundred KB on disk whose sheet inflates to gigabytes of valid rows.

_XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '</Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        '</Relationships>'),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '</Relationships>'),
}


def _inline_row(cells: list[str]) -> str:
    from xml.sax.saxutils import escape

    return "<row>" + "".join(f'<c t="inlineStr"><is><t>{escape(c)}</t></is></c>' for c in cells) + "</row>"


def _deflate_independent(data: bytes, final: bool) -> bytes:
    """Raw deflate of data with an empty dictionary, byte-aligned: such pieces concatenate."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)


def zip_bomb_xlsx(path: Path, uncompressed_bytes: int = 2_000_000_000, lie: bool = False) -> int:
    """Write an .xlsx whose first sheet is a header and millions of identical valid ledger rows,
    about `uncompressed_bytes` of XML deflated to a few MB. Returns the row count.

    With lie=True the archive declares the sheet to be 1 MB, with the CRC of its first MB: size
    checks that trust the directory pass it, and a reader that trusts them gets cut-off XML."""
    head = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
            + _inline_row(HEADER)).encode()
    row = _inline_row(hostile_rows(1)[0]).encode()
    parts = {name: text.encode() for name, text in _XLSX_PARTS.items()}
    units = _bomb_zip(path, parts, "xl/worksheets/sheet1.xml", head, row, b"</sheetData></worksheet>",
                      uncompressed_bytes, lie)
    return units


def zip_bomb_docx(path: Path, uncompressed_bytes: int = 1_000_000_000, lie: bool = False) -> None:
    """A .docx (a real one's parts) whose word/document.xml inflates to `uncompressed_bytes` of
    paragraphs repeating the notice number: a notice-sized file that would exhaust memory."""
    real = docx_bytes(["通知"])
    with zipfile.ZipFile(io.BytesIO(real)) as zf:
        parts = {n: zf.read(n) for n in zf.namelist() if n != "word/document.xml"}
        document = zf.read("word/document.xml").decode()
    open_tag = document[: document.index("<w:body>") + len("<w:body>")]
    head = open_tag.encode()
    unit = "<w:p><w:r><w:t>克区财综〔2024〕2号 关于下达资金的通知</w:t></w:r></w:p>".encode()
    _bomb_zip(path, parts, "word/document.xml", head, unit, b"</w:body></w:document>",
              uncompressed_bytes, lie)


def _bomb_zip(path: Path, parts: dict[str, bytes], big_name: str, head: bytes, unit: bytes,
              tail: bytes, uncompressed_bytes: int, lie: bool) -> int:
    """Write a zip of `parts` plus `big_name` = head + unit * N + tail (about uncompressed_bytes).

    The repeated block is deflated once and its bytes repeated, so a 2 GB member takes about a
    second to build; the CRC is computed over every byte, so the archive is valid (unless lie)."""
    per_block = max(1, (1 << 20) // len(unit))
    block = unit * per_block
    blocks = max(1, uncompressed_bytes // len(block))
    block_z = _deflate_independent(block, final=False)
    crc = zlib.crc32(head)
    for _ in range(blocks):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    size = len(head) + blocks * len(block) + len(tail)
    assert size < 0xFFFFFFFF, "keep the bomb below 4 GB (no zip64 needed)"
    head_z = _deflate_independent(head, final=False)
    tail_z = _deflate_independent(tail, final=True)
    compressed = len(head_z) + blocks * len(block_z) + len(tail_z)

    central = []
    with open(path, "wb") as out:
        def member(name: str, crc_: int, csize: int, usize: int, write_body: Callable[[], None]) -> None:
            offset = out.tell()
            raw = name.encode()
            out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc_, csize, usize,
                                  len(raw), 0) + raw)
            write_body()
            central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc_,
                                       csize, usize, len(raw), 0, 0, 0, 0, 0, offset) + raw)

        for name, data in parts.items():
            z = _deflate_independent(data, final=True)
            member(name, zlib.crc32(data), len(z), len(data), lambda z=z: out.write(z))

        def body() -> None:
            out.write(head_z)
            for _ in range(blocks):
                out.write(block_z)
            out.write(tail_z)

        if lie:
            prefix = (head + block * (1 + (1 << 20) // len(block)))[: 1 << 20]
            member(big_name, zlib.crc32(prefix), compressed, len(prefix), body)
        else:
            member(big_name, crc, compressed, size, body)
        cd_offset = out.tell()
        cd = b"".join(central)
        out.write(cd)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(cd),
                              cd_offset, 0))
    return blocks * per_block


def formula_xlsx(path: Path) -> None:
    """Cells holding formulas with no computed value (written by a library, never opened in
    Excel): the debit of data row 2 is =500+500, the date of data row 3 is =DATE(2024,4,12).
    Reading them as blank would book 0.00 or lose the date: they must be quarantined."""
    rows = hostile_rows(3)
    rows[1][COL["借方金额"]] = "=500+500"
    rows[2][COL["凭证日期"]] = "=DATE(2024,4,12)"
    path.write_bytes(xlsx_bytes(rows))  # openpyxl writes formulas without computing them


def malformed_sheet_xlsx(path: Path) -> None:
    """A valid archive whose sheet XML stops in the middle of a row (a half-written save)."""
    sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             + _inline_row(HEADER) + "".join(_inline_row(r) for r in hostile_rows(3)))
    sheet_xlsx(path, sheet[: len(sheet) - 40])


def malformed_late_sheet_xlsx(path: Path) -> None:
    """The same, stating its range (as Excel does) and cut in its 60th row: past the rows read for
    the header, so the damage is found only while the rows stream into the store."""
    rows = hostile_rows(60)
    sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             f'<dimension ref="A1:Q{len(rows) + 1}"/><sheetData>'
             + _inline_row(HEADER) + "".join(_inline_row(r) for r in rows))
    sheet_xlsx(path, sheet[: len(sheet) - 40])


def sheet_xlsx(path: Path, sheet_xml: str) -> None:
    """A minimal workbook whose only sheet is sheet_xml, exactly as given."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in _XLSX_PARTS.items():
            zf.writestr(name, text)
        zf.writestr("xl/worksheets/sheet1.xml", sheet_xml)


def docx_bytes(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    import docx

    d = docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    if table:
        t = d.add_table(rows=len(table), cols=len(table[0]))
        for i, cells in enumerate(table):
            for j, c in enumerate(cells):
                t.cell(i, j).text = c
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def seed_text() -> str:
    return SEED_NOTICE.read_text(encoding="utf-8")


def notice_variant(number: int, replace: dict[str, str]) -> str:
    """The seed notice under another number (克区财综〔2024〕<number>号) with text replaced."""
    text = seed_text().replace("克区财综﹝2024﹞2号", f"克区财综﹝2024﹞{number}号")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


# --------------------------------------------------------------------------------------------
# The cases


@dataclass(frozen=True)
class Expect:
    action: str                                   # rejected | rows | loaded
    bad_rows: tuple[int, ...] = ()                # data rows quarantined (1 = first under the header)
    bad_values: tuple[str, ...] = ()              # values the INPUT_ROW_INVALID findings must show
    dilapidated_spent: Decimal = Decimal("0.00")  # what of the file counts on the 危旧房改造 line
    reason: str = ""                              # a word the rejection message must contain
    line: int | None = None                       # the physical line a rejection must name
    input_warnings: tuple[str, ...] = ()          # INPUT_ warnings a loaded file must raise


@dataclass(frozen=True)
class Case:
    id: str
    folder: str                                   # ledgers | notices
    filename: str
    build: Callable[[Path], object]
    expect: Expect
    alternatives: tuple[Expect, ...] = field(default=())  # other outcomes the contract allows

    def write(self, inputs: Path) -> Path:
        global _voucher_prefix
        path = inputs / self.folder / self.filename
        _voucher_prefix = f"9{[c.id for c in CASES].index(self.id):02d}" if self in CASES else "9"
        try:
            self.build(path)
        finally:
            _voucher_prefix = "9"
        return path


def _csv(rows_fn, header=HEADER, encoding="utf-8"):
    return lambda p: write_csv(p, rows_fn(), header, encoding)


def _text(text_fn, encoding="utf-8"):
    return lambda p: p.write_bytes(text_fn().encode(encoding))


R3 = Decimal("3000.00")
R2 = Decimal("2000.00")
R1 = Decimal("1000.00")

CASES: list[Case] = [
    # -- unreadable or structurally wrong ledgers: rejected whole --------------------------------
    Case("empty_file", "ledgers", "empty.csv", lambda p: p.write_bytes(b""), Expect("rejected")),
    Case("random_bytes", "ledgers", "junk.csv", random_bytes, Expect("rejected")),
    Case("required_columns_missing", "ledgers", "no_debit.csv",
         _csv(lambda: [r[:7] + r[9:] for r in hostile_rows(3)], HEADER[:7] + HEADER[9:]),
         Expect("rejected", reason="借方金额")),
    Case("duplicated_columns", "ledgers", "dup_cols.csv", duplicated_columns,
         Expect("rejected", reason="借方金额")),
    Case("truncated_mid_row", "ledgers", "cut.csv", truncated_mid_row, Expect("rejected", line=4),
         alternatives=(Expect("rows", bad_rows=(3,), dilapidated_spent=R2),)),
    Case("unbalanced_quote", "ledgers", "quote.csv", unbalanced_quote, Expect("rejected", line=4),
         alternatives=(Expect("rows", bad_rows=(3,), dilapidated_spent=R2),)),
    Case("xlsx_truncated_zip", "ledgers", "broken.xlsx", truncated_xlsx, Expect("rejected")),
    # CSV text saved under an .xlsx name is read as what it is, as under .xls
    Case("xlsx_really_csv", "ledgers", "renamed.xlsx", csv_renamed_xlsx,
         Expect("loaded", dilapidated_spent=R3)),
    Case("xlsx_random_bytes", "ledgers", "junk.xlsx", random_bytes, Expect("rejected")),
    Case("xlsx_lying_zip_sizes", "ledgers", "liar.xlsx",
         lambda p: zip_bomb_xlsx(p, uncompressed_bytes=200_000_000, lie=True), Expect("rejected")),
    Case("xlsx_sheet_xml_cut_mid_row", "ledgers", "half_saved.xlsx", malformed_sheet_xlsx,
         Expect("rejected")),
    Case("xlsx_sheet_xml_cut_after_the_header_scan", "ledgers", "half_saved_late.xlsx",
         malformed_late_sheet_xlsx, Expect("rejected", reason="damaged")),
    Case("xlsx_formula_without_value", "ledgers", "formulas.xlsx", formula_xlsx,
         Expect("rows", bad_rows=(2, 3), bad_values=("=500+500",), dilapidated_spent=R1),
         alternatives=(Expect("rejected"),)),
    Case("parquet_random_bytes", "ledgers", "junk.parquet", random_bytes, Expect("rejected")),
    # -- files of other types in the ledgers folder: read when they can be, else rejected saying
    # what to do (never passed over in silence) ------------------------------------------------
    Case("xls_damaged_97_2003", "ledgers", "damaged.xls", lambda p: p.write_bytes(OLE2_WORKBOOK),
         Expect("rejected", reason="Excel 97-2003")),
    Case("xls_web_page", "ledgers", "web.xls",
         lambda p: p.write_bytes("<html><body><table><tr><td>凭证号</td></tr></table>".encode("gbk")),
         Expect("rejected", reason="HTML")),
    Case("xls_tab_separated_text", "ledgers", "export.xls", tab_separated_text,
         Expect("loaded", dilapidated_spent=R3)),
    Case("ledger_archive", "ledgers", "exports.zip", random_bytes, Expect("rejected", reason="unpack")),
    Case("utf16_without_bom", "ledgers", "utf16_no_bom.csv",  # read as notices are (detect_encoding)
         lambda p: p.write_bytes(csv_text(hostile_rows(3)).encode("utf-16-le")),
         Expect("loaded", dilapidated_spent=R3)),
    # -- header only: a readable export with no lines ----------------------------------------
    Case("header_only", "ledgers", "header_only.csv", _csv(lambda: []),
         Expect("loaded", input_warnings=("INPUT_EMPTY",))),
    # -- bad cells: the row is quarantined, the rest loads ----------------------------------
    Case("amount_letters", "ledgers", "amount_letters.csv",
         _csv(lambda: with_cell(hostile_rows(3), 2, "借方金额", "12,3a4.00")),
         Expect("rows", bad_rows=(2,), bad_values=("12,3a4.00",), dilapidated_spent=R2)),
    Case("amount_two_points", "ledgers", "amount_points.csv",
         _csv(lambda: with_cell(hostile_rows(3), 3, "借方金额", "1.2.3")),
         Expect("rows", bad_rows=(3,), bad_values=("1.2.3",), dilapidated_spent=R2)),
    Case("amount_misplaced_separator", "ledgers", "amount_sep.csv",
         _csv(lambda: with_cell(hostile_rows(3), 1, "借方金额", "1,00,0.00")),
         Expect("rows", bad_rows=(1,), bad_values=("1,00,0.00",), dilapidated_spent=R2)),
    # full-width digits are normalised (the loader folds width), exactly: 123.00, not 12300
    Case("amount_fullwidth_digits", "ledgers", "amount_fullwidth.csv",
         _csv(lambda: with_cell(hostile_rows(3), 2, "借方金额", "１２３.００")),
         Expect("loaded", dilapidated_spent=Decimal("2123.00")),
         alternatives=(Expect("rows", bad_rows=(2,), bad_values=("１２３.００",), dilapidated_spent=R2),)),
    Case("amount_fullwidth_letters", "ledgers", "amount_fullwidth_letters.csv",
         _csv(lambda: with_cell(hostile_rows(3), 2, "借方金额", "１２３ａ")),
         Expect("rows", bad_rows=(2,), bad_values=("１２３ａ",), dilapidated_spent=R2)),
    Case("amount_overflow", "ledgers", "amount_overflow.csv",
         _csv(lambda: with_cell(hostile_rows(3), 2, "借方金额", "99999999999999999999.99")),
         Expect("rows", bad_rows=(2,), bad_values=("99999999999999999999.99",), dilapidated_spent=R2)),
    Case("amount_three_decimals", "ledgers", "amount_mills.csv",
         _csv(lambda: with_cell(hostile_rows(3), 2, "借方金额", "1000.005")),
         Expect("rows", bad_rows=(2,), bad_values=("1000.005",), dilapidated_spent=R2)),
    # Excel shows big numbers in General format as 1.23457E+11 and saves that display text to
    # CSV: six significant digits of 123,456,789,012.34. Reading it as 123,457,000,000.00 is
    # silently wrong, so scientific notation is quarantined (an exact 1E+3 may also be read).
    Case("amount_excel_scientific_display", "ledgers", "amount_sci_display.csv",
         _csv(lambda: with_cell(hostile_rows(3), 3, "借方金额", "1.23457E+11")),
         Expect("rows", bad_rows=(3,), bad_values=("1.23457E+11",), dilapidated_spent=R2)),
    Case("amount_scientific_exact", "ledgers", "amount_sci.csv",
         _csv(lambda: with_cell(hostile_rows(3), 3, "借方金额", "1E+3")),
         Expect("rows", bad_rows=(3,), bad_values=("1E+3",), dilapidated_spent=R2),
         alternatives=(Expect("loaded", dilapidated_spent=R3),)),
    Case("amount_underscore", "ledgers", "amount_underscore.csv",
         _csv(lambda: with_cell(hostile_rows(3), 1, "借方金额", "12_34.00")),
         Expect("rows", bad_rows=(1,), bad_values=("12_34.00",), dilapidated_spent=R2)),
    Case("date_feb_30", "ledgers", "date_feb30.csv",
         _csv(lambda: with_cell(hostile_rows(3), 1, "凭证日期", "2024-02-30")),
         Expect("rows", bad_rows=(1,), bad_values=("2024-02-30",), dilapidated_spent=R2)),
    Case("date_month_13", "ledgers", "date_m13.csv",
         _csv(lambda: with_cell(hostile_rows(3), 3, "凭证日期", "2024-13-01")),
         Expect("rows", bad_rows=(3,), bad_values=("2024-13-01",), dilapidated_spent=R2)),
    Case("date_chinese_impossible", "ledgers", "date_cn.csv",
         _csv(lambda: with_cell(hostile_rows(3), 2, "凭证日期", "2024年2月31日")),
         Expect("rows", bad_rows=(2,), bad_values=("2024年2月31日",), dilapidated_spent=R2)),
    Case("date_not_leap_year", "ledgers", "date_2023_02_29.csv",
         _csv(lambda: with_cell(hostile_rows(3), 2, "凭证日期", "2023-02-29")),
         Expect("rows", bad_rows=(2,), bad_values=("2023-02-29",), dilapidated_spent=R2)),
    # -- odd bytes ---------------------------------------------------------------------------
    Case("nul_bytes_in_cell", "ledgers", "nul.csv",
         _csv(lambda: with_cell(hostile_rows(3), 2, "摘要", "危旧房\x00改造")),
         Expect("loaded", dilapidated_spent=R3), alternatives=(Expect("rejected"),)),
    Case("cr_only_line_endings", "ledgers", "old_mac.csv",
         lambda p: p.write_bytes(csv_text(hostile_rows(3)).replace("\r\n", "\r").encode("utf-8")),
         Expect("loaded", dilapidated_spent=R3), alternatives=(Expect("rejected"),)),
    # -- encodings ------------------------------------------------------------------------------
    Case("utf16_with_bom", "ledgers", "utf16.csv",
         lambda p: p.write_bytes(codecs.BOM_UTF16_LE + csv_text(hostile_rows(3)).encode("utf-16-le")),
         Expect("loaded", dilapidated_spent=R3),
         alternatives=(Expect("rejected"),)),
    Case("gbk_bytes_in_csv", "ledgers", "gbk.csv", _csv(lambda: hostile_rows(3), encoding="gbk"),
         Expect("loaded", dilapidated_spent=R3)),
    Case("gb18030_with_a_damaged_byte", "ledgers", "damaged.csv", damaged_gb18030,
         Expect("rejected", line=4, reason="gb18030")),
    Case("gb18030_bytes_in_csv", "ledgers", "gb18030.csv",
         _csv(lambda: hostile_rows(3, start=1) + [with_cell(hostile_rows(1, start=4), 1, "收款人", "䶮𠀀")[0]],
              encoding="gb18030"),
         Expect("loaded", dilapidated_spent=Decimal("4000.00"))),
    # -- a huge cell ----------------------------------------------------------------------------
    Case("cell_1mb", "ledgers", "cell_1mb.csv",
         _csv(lambda: with_cell(hostile_rows(3), 2, "摘要", "危" * (1 << 20))),
         Expect("loaded", dilapidated_spent=R3),
         alternatives=(Expect("rows", bad_rows=(2,), dilapidated_spent=R2),)),
    Case("cell_200kb_in_header_sample", "ledgers", "cell_200kb.csv",
         _csv(lambda: with_cell(hostile_rows(3), 1, "摘要", "x" * 200_000)),
         Expect("loaded", dilapidated_spent=R3),
         alternatives=(Expect("rows", bad_rows=(1,), dilapidated_spent=R2),)),
    # -- notices that are not notices ------------------------------------------------------------
    Case("notice_is_ledger_csv", "notices", "ledger_renamed.txt",
         _text(lambda: csv_text(hostile_rows(3))), Expect("rejected")),
    Case("notice_empty", "notices", "empty.txt", lambda p: p.write_bytes(b""), Expect("rejected")),
    Case("notice_random_bytes_txt", "notices", "junk.txt", random_bytes, Expect("rejected")),
    Case("notice_random_docx", "notices", "memo.docx",
         lambda p: p.write_bytes(docx_bytes(["会议纪要", "今天讨论了食堂菜单。"], [["菜名", "价格"], ["拉条子", "18"]])),
         Expect("rejected")),
    Case("notice_docx_zip_bomb", "notices", "bomb.docx", lambda p: zip_bomb_docx(p, 300_000_000),
         Expect("rejected")),
    Case("notice_docx_lying_zip_sizes", "notices", "liar.docx",
         lambda p: zip_bomb_docx(p, 100_000_000, lie=True), Expect("rejected")),
    Case("notice_docx_random_bytes", "notices", "junk.docx", random_bytes, Expect("rejected")),
    Case("notice_word_97_2003", "notices", "通知.doc", lambda p: p.write_bytes(OLE2_WORKBOOK),
         Expect("rejected", reason=".docx")),
    Case("notice_pdf", "notices", "通知.pdf", lambda p: p.write_bytes(b"%PDF-1.7\n" + bytes(100)),
         Expect("rejected", reason="PDF")),
    # -- notices whose allocation table is malformed ----------------------------------------
    Case("notice_line_without_amount", "notices", "no_amount.txt",
         _text(lambda: notice_variant(97, {"\t17.28\n\t2210107": "\t\n\t2210107"})), Expect("rejected")),
    Case("notice_line_text_amount", "notices", "text_amount.txt",
         _text(lambda: notice_variant(96, {"\t103.72\n\t2210110": "\t待定\n\t2210110"})), Expect("rejected")),
    Case("notice_table_missing", "notices", "no_table.txt",
         _text(lambda: seed_text().replace("克区财综﹝2024﹞2号", "克区财综﹝2024﹞95号").split(" 附件")[0]),
         Expect("rejected")),
]


# --------------------------------------------------------------------------------------------
# Running recon and reading back what it did


@dataclass
class Ran:
    """One recon invocation: exit status, stdout, stderr."""

    exit_code: int
    stdout: str
    stderr: str


def invoke(args: list[str]) -> Ran:
    """Run the recon CLI in-process and fail loudly on anything a user must never see: a
    traceback, an exception escaping the CLI, or an exit status outside the contract's 0/1/2."""
    import traceback

    from click.testing import CliRunner

    from pipeline.cli import main

    result = CliRunner().invoke(main, args, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(f"recon {' '.join(args)} raised:\n{tb}")
    out, err = result.stdout, result.stderr
    assert "Traceback" not in out and "Traceback" not in err, err or out
    assert result.exit_code in (0, 1, 2), (
        f"exit {result.exit_code} is not a contract status (0/1/2): {err.strip() or out.strip()}")
    return Ran(result.exit_code, out, err)


def read_csv_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def spent_by_purpose(run_dir: Path, notice_no: str = NOTICE_NO) -> dict[str, Decimal]:
    return {r["purpose"]: Decimal(r["spent"]) for r in read_csv_rows(run_dir / "summary.csv")
            if r["notice_no"] == notice_no}


def query(db, sql: str, params=()) -> list[tuple]:
    """Rows of a query on a store: `db` is its path (opened read-only for this query) or an open
    connection (reused: checks that ask many questions open the store once)."""
    import duckdb

    if isinstance(db, duckdb.DuckDBPyConnection):
        return db.execute(sql, list(params)).fetchall()
    con = connect(db, read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def file_state(db, name: str) -> dict:
    """The registry row of the newest file called `name`, with what of it is in the store."""
    rows = query(db, """
        select f.file_id, f.status, f.rows_loaded, f.rows_quarantined, coalesce(f.message, ''),
               (select count(*) from ledger_lines l where l.file_id = f.file_id),
               (select list(distinct q.row_no order by q.row_no) from quarantine q where q.file_id = f.file_id),
               (select count(*) from notices n where n.file_id = f.file_id)
        from input_files f where f.name = ? order by f.file_id desc limit 1""", [name])
    assert rows, f"{name} is not in input_files: it was neither loaded nor rejected"
    fid, status, loaded, quarantined, message, lines, bad_rows, notices = rows[0]
    return dict(file_id=fid, status=status, rows_loaded=loaded, rows_quarantined=quarantined,
                message=message, lines=lines, bad_rows=tuple(bad_rows or ()), notices=notices)


def store_consistency_problems(db) -> list[str]:
    """Invariants of the file registry that hold whatever was offered to the store."""
    problems = []
    for name, status, rows_loaded, rows_q, lines, quarantined, notices in query(db, """
        select f.name, f.status, f.rows_loaded, f.rows_quarantined,
               (select count(*) from ledger_lines l where l.file_id = f.file_id),
               (select count(distinct q.row_no) from quarantine q where q.file_id = f.file_id),
               (select count(*) from notices n where n.file_id = f.file_id)
        from input_files f order by f.file_id"""):
        if status not in ("loaded", "superseded", "rejected"):
            problems.append(f"{name}: unknown status {status!r}")
        if status == "rejected" and (lines or quarantined or notices):
            problems.append(f"{name}: rejected but {lines} lines / {quarantined} quarantined rows / "
                            f"{notices} notices stored")
        if status != "rejected" and (rows_loaded != lines and not notices):
            problems.append(f"{name}: rows_loaded={rows_loaded} but {lines} ledger lines stored")
        if status != "rejected" and rows_q != quarantined:
            problems.append(f"{name}: rows_quarantined={rows_q} but {quarantined} rows in quarantine")
    orphans = query(db, """
        select (select count(*) from ledger_lines l where l.file_id not in (select file_id from input_files)),
               (select count(*) from quarantine q where q.file_id not in (select file_id from input_files))""")[0]
    if any(orphans):
        problems.append(f"lines / quarantine rows of no registered file: {orphans}")
    dupes = query(db, """
        select sha256, count(*) from input_files where status in ('loaded', 'superseded')
        group by sha256 having count(*) > 1""")
    if dupes:
        problems.append(f"the same content loaded twice: {dupes}")
    return problems


def spent_in_store(db, as_of: str = AS_OF, notice_no: str = NOTICE_NO) -> dict[str, Decimal]:
    """Spending per allocation line as summary.csv would show it, read straight from a store
    (path, or an open writable connection: the probe sets run_context)."""
    import duckdb

    con = db if isinstance(db, duckdb.DuckDBPyConnection) else connect(db)
    try:
        con.execute("delete from run_context")
        con.execute("insert into run_context values ('hostile-probe', ?, null, null, null, null)", [as_of])
        return dict(con.execute("select purpose, spent from rpt_allocation_summary where notice_no = ?",
                                [notice_no]).fetchall())
    finally:
        if con is not db:
            con.close()
