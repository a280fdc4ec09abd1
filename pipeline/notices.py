"""Allocation notices (分配下达通知): .txt or .docx -> Notice -> the store.

A notice passes money down with a table of allocation lines (purpose, amount, function code,
direct-fund flag), the rules of its clauses (which item codes the money goes to) and one
performance target table (项目支出绩效目标表) per purpose. Both input formats are first turned
into the same *document stream*, paragraphs and table rows in reading order, and one parser reads
that stream, so a .txt and a .docx of the same notice give the same `Notice`:

- .txt is text extracted from the issued document: a table cell is a tab-prefixed line, a blank
  line ends a table row, merged cells come out blank (UTF-8, UTF-8 with BOM or GB18030; UTF-16
  with or without a BOM, as Notepad's "Unicode" and some OA systems save it).
- .docx is the issued document: paragraphs and Word tables in body order; a vertically merged
  cell's continuation reads blank, a horizontally merged cell is one cell, as in the txt.

Tables are recognised by their content (the allocation table by its header row, a target table
by its 预算单位 row), never by where one Word table ends, because the txt export does not keep
table boundaries. Amounts are converted to 元 with Decimal using the unit the table states
(单位：万元 / 单位：元); a notice that lacks something required is rejected whole with an
InputError that says what was missing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import duckdb

from .loading import (FileOutcome, InputError, canonical_path, earlier_load, register_file,
                      reject_file, sha256_file, skipped_as_loaded)
from .text import decode_text, doc_no, find_doc_nos, purpose_key

KIND = "notice"
YUAN_PER_WAN = Decimal(10000)
CENT = Decimal("0.01")
MAX_YUAN = Decimal(10) ** 16  # amounts are DECIMAL(18,2)
# A notice is a few pages (the seed: 11 kB of text). Anything far larger is not one, and reading
# it whole (or unpacking a crafted .docx) must not exhaust a finance PC's memory.
MAX_TEXT_BYTES = 8 * 2**20
MAX_DOCX_UNPACKED = 64 * 2**20


# ---------------------------------------------------------------------------------------------
# The parsed notice


@dataclass(frozen=True)
class AllocationLine:
    """One row of the allocation table (分配表): money for one purpose."""

    seq: int                 # order in the table, from 1
    purpose: str             # as written, e.g. 2024年租赁补贴（中央直达）
    region: str | None
    amount: Decimal          # 元
    function_code: str       # item code as written (digits), '' when the cell was blank
    is_direct: bool          # （中央直达）


@dataclass(frozen=True)
class CodeRule:
    """Clause 三: spending whose purpose mentions `keyword` goes to `function_code`."""

    keyword: str
    function_code: str
    clause: str


@dataclass(frozen=True)
class Indicator:
    """One indicator row of a target table; levels already carried down over merged cells."""

    seq: int
    level1: str              # 一级指标
    level2: str              # 二级指标
    name: str                # 三级指标
    target_text: str         # 指标值 as written
    op: str | None           # >= <= = > < ; None when qualitative
    target_value: Decimal | None
    target_unit: str | None
    qualitative: bool
    basis: str | None        # 指标值设置依据
    last_year: str | None    # 上年完成值
    weight: Decimal | None   # 指标分值权重
    scoring_rule: str | None # 指标赋分规则
    evidence: str | None     # 佐证资料


@dataclass(frozen=True)
class TargetTable:
    """项目支出绩效目标表: the performance targets of one purpose."""

    seq: int
    purpose: str
    fiscal_year: int | None
    unit_name: str | None
    manager: str | None
    budget_total: Decimal | None   # 元
    budget_fiscal: Decimal | None
    budget_other: Decimal | None
    overall_goal: str | None
    indicators: tuple[Indicator, ...]


@dataclass(frozen=True)
class Notice:
    notice_no: str                 # 〔〕 brackets
    title: str
    fund_name: str | None
    issuer: str | None
    recipient: str | None
    fiscal_year: int
    project_code: str | None
    revenue_code: str | None
    revenue_name: str | None
    upstream_docs: tuple[str, ...]
    stated_total: Decimal          # 元
    amount_unit: str               # 万元 | 元, as the table was written
    reporting_deadline: str | None # MM-DD
    allowed_codes: tuple[str, ...]
    code_rules: tuple[CodeRule, ...]
    lines: tuple[AllocationLine, ...]
    target_tables: tuple[TargetTable, ...]


# ---------------------------------------------------------------------------------------------
# The document stream: what both formats are read into


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Row:
    cells: tuple[str, ...]

    @property
    def filled(self) -> list[str]:
        return [c for c in self.cells if c]


@dataclass(frozen=True)
class SourceDocument:
    items: tuple[Para | Row, ...]
    format: str                    # txt | docx
    encoding: str | None           # txt only
    images: tuple[int, ...] = ()   # docx: where a picture stands, as the number of items before it


class _Image:
    """Where a .docx has a picture (or an object shown as one) in its body: nothing to read, but
    a table pasted as a picture is then said to be one, not "missing"."""


def read_document(path: Path) -> SourceDocument:
    """Read a .txt or .docx notice into the common stream of paragraphs and table rows."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        text, encoding = _decode_text(path)
        return SourceDocument(tuple(_txt_items(text)), "txt", encoding)
    if suffix == ".docx":
        items: list[Para | Row] = []
        images: list[int] = []
        for it in _docx_items(path):
            if it is _Image:
                images.append(len(items))
            else:
                items.append(it)
        return SourceDocument(tuple(items), "docx", None, tuple(images))
    if suffix in (".doc", ".wps"):
        raise InputError(path, f"Word 97-2003 / WPS 格式的文档（{suffix}）无法读取，请另存为 .docx",
                         f"a Word 97-2003 / WPS document ({suffix}) cannot be read; save it as .docx")
    if suffix in (".pdf", ".ofd"):
        raise InputError(path, f"{suffix[1:].upper()} 版式文件无法可靠读取表格，请使用通知的 Word 文档"
                               f"（.docx）或文本（.txt）",
                         f"the tables of a {suffix[1:].upper()} file cannot be read reliably; use the "
                         f"notice's Word document (.docx) or its text (.txt)")
    raise InputError(path, f"不支持的通知文件类型 {suffix or '（无扩展名）'}，应为 .txt 或 .docx",
                     f"unsupported notice file type {suffix or '(none)'}; expected .txt or .docx")


def _decode_text(path: Path) -> tuple[str, str]:
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise InputError(path, f"文本超过 {MAX_TEXT_BYTES // 2**20} MB，不像一份分配通知，拒收",
                         f"the text is larger than {MAX_TEXT_BYTES // 2**20} MB; not an allocation notice, refused")
    raw = path.read_bytes()
    if not raw.strip():
        raise InputError(path, "文件为空", "the file is empty")
    decoded = decode_text(raw)
    if decoded is None:
        raise InputError(path, "无法识别文本编码（应为 UTF-8、GB18030 或 UTF-16 文本）",
                         "cannot decode the text (expected UTF-8, GB18030 or UTF-16 text)")
    text, encoding = decoded
    if encoding == "gb18030" and not any(w in text for w in _NOTICE_WORDS):
        # GB18030 decodes almost any bytes: a Big5 or Shift-JIS text reads as rare characters
        raise InputError(path, f"按 {encoding} 读出的文字不像一份通知（没有“通知”“财政”“资金”等字样）：文件可能是其他编码"
                               f"（如繁体 Big5），请另存为 UTF-8 或 GB18030",
                         f"read as {encoding}, the text holds none of the words a notice has (通知, 财政, 资金): "
                         f"it is probably in another encoding (such as Big5); save it as UTF-8 or GB18030")
    return decoded


_NOTICE_WORDS = ("通知", "财政", "资金", "预算", "文件")


def _txt_items(text: str):
    """Tab-prefixed lines are cells; a blank line ends a row; other lines are paragraphs."""
    row: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("\t"):
            row = row if row is not None else []
            row.extend(c.strip() for c in line[1:].split("\t"))
            continue
        if row is not None:
            yield Row(tuple(row))
            row = None
        if line.strip():
            yield Para(line.strip())
    if row is not None:
        yield Row(tuple(row))


def _docx_items(path: Path):
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        try:
            with open(path, "rb") as fh:
                head = fh.read(8)
        except OSError:
            head = b""
        if head == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":  # OLE2: a .doc / .wps named .docx
            raise InputError(path, "文件名为 .docx，实为 Word 97-2003 / WPS 格式的文档，无法读取，请在 Word 或 WPS "
                                   "中另存为 .docx",
                             "named .docx but a Word 97-2003 / WPS document; it cannot be read: save it as "
                             ".docx in Word or WPS") from None
        raise InputError(path, "无法打开 Word 文档（文件损坏或不是 .docx）",
                         f"cannot open the Word document (damaged or not a .docx): {exc}")
    if unpacked > MAX_DOCX_UNPACKED:
        raise InputError(path, f"Word 文档解压后超过 {MAX_DOCX_UNPACKED // 2**20} MB，不像一份分配通知，拒收",
                         f"the Word document unpacks to more than {MAX_DOCX_UNPACKED // 2**20} MB; "
                         "not an allocation notice, refused")
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InputError(path, "无法打开 Word 文档（文件损坏或不是 .docx）",
                         f"cannot open the Word document (damaged or not a .docx): {exc}")
    body = document.element.body
    _drop_moved_from(body)
    yield from _docx_block_items(body)


def _drop_moved_from(body) -> None:
    """Take the text a tracked move took away out of the document before it is read.

    Word keeps a deletion's text as w:delText, which is never read, but the text a move took
    away as w:t inside w:moveFrom: read as live, a "44" moved out of the cell of 103.72 made it
    44103.72 (441,037,200.00 元). Moved-away text is w:moveFrom around runs, and whatever lies
    between a w:moveFromRangeStart and the w:moveFromRangeEnd of the same id, which may span
    paragraphs and cells. w:moveTo, where the text went, is live text and stays. The tree is
    this read's own copy of the document, so nothing is written back."""
    from docx.oxml.ns import qn

    move_from, run = qn("w:moveFrom"), qn("w:r")
    range_start, range_end = qn("w:moveFromRangeStart"), qn("w:moveFromRangeEnd")
    run_content = {qn("w:t"), qn("w:tab"), qn("w:br"), qn("w:cr")}
    open_ranges: set[str | None] = set()
    moved = []
    for el in body.iter():
        if el.tag == range_start:
            open_ranges.add(el.get(qn("w:id")))
        elif el.tag == range_end:
            open_ranges.discard(el.get(qn("w:id")))
        elif el.tag == move_from:
            moved.append(el)
        elif open_ranges and el.tag in run_content and el.getparent().tag == run:
            moved.append(el)
    for el in moved:
        el.getparent().remove(el)


def _docx_block_items(parent):
    from docx.oxml.ns import qn

    for child in parent.iterchildren():
        if child.tag == qn("w:p"):
            for line in _paragraph_text(child).split("\n"):
                if line.strip():
                    yield Para(line.strip())
            if _holds_picture(child):
                yield _Image
        elif child.tag == qn("w:tbl"):
            rows = list(_within_controls(child, qn("w:tr")))
            if _holds_picture(child) and not any(any(_row_cells(tr)) for tr in rows):
                yield _Image  # a frame around a picture: a table of no text
            elif _is_wrapper(rows):
                for tc in (tc for tr in rows for tc in _within_controls(tr, qn("w:tc"))):
                    yield from _docx_block_items(tc)
            else:
                for tr in rows:
                    yield Row(_row_cells(tr))
        elif child.tag == qn("w:sdt"):
            content = child.find(qn("w:sdtContent"))
            if content is not None:
                yield from _docx_block_items(content)


_PICTURE_TAGS = ("{http://schemas.openxmlformats.org/drawingml/2006/main}blip",  # w:drawing's picture
                 "{urn:schemas-microsoft-com:vml}imagedata")  # w:pict's, and an object's (w:object) preview


def _holds_picture(el) -> bool:
    return next(el.iter(*_PICTURE_TAGS), None) is not None


def _is_wrapper(rows: list) -> bool:
    """Is this table a frame around another: one row (mostly of one cell) holding a table, as an
    Excel range pasted into a Word or WPS cell, or a PDF converted to Word, leaves it? A frame's
    cells are read as the body is, paragraphs and tables in order; read as a row, it was one
    cell of its own paragraphs' text, and the table inside was lost."""
    from docx.oxml.ns import qn

    return len(rows) == 1 and any(next(_within_controls(tc, qn("w:tbl")), None) is not None
                                  for tc in _within_controls(rows[0], qn("w:tc")))


def _within_controls(parent, tag: str):
    """The children of `parent` with `tag`, also those inside content controls (w:sdt, as a
    template's repeating row or a form field in a cell holds them) and custom XML."""
    from docx.oxml.ns import qn

    wrappers = (qn("w:sdt"), qn("w:sdtContent"), qn("w:customXml"))
    for child in parent.iterchildren():
        if child.tag == tag:
            yield child
        elif child.tag in wrappers:
            yield from _within_controls(child, tag)


def _row_cells(tr) -> tuple[str, ...]:
    """A table row's cells, one per grid column: a cell merged across columns (w:gridSpan, as a
    合计 written across 序号 and 项目) is followed by blanks for the columns it covers, and the
    columns a row leaves out before or after its cells (w:gridBefore / w:gridAfter) read blank,
    so that every cell stays under its heading."""
    from docx.oxml.ns import qn

    def grid(el, name: str) -> int:
        found = el.find(qn(name)) if el is not None else None
        try:
            return max(int(found.get(qn("w:val"))), 1) if found is not None else 0
        except (TypeError, ValueError):
            return 0

    tr_pr = tr.find(qn("w:trPr"))
    cells = [""] * grid(tr_pr, "w:gridBefore")
    for tc in _within_controls(tr, qn("w:tc")):
        cells.append(_cell_text(tc))
        cells.extend([""] * (grid(tc.find(qn("w:tcPr")), "w:gridSpan") - 1))
    cells.extend([""] * grid(tr_pr, "w:gridAfter"))
    return tuple(cells)


def _paragraph_text(p) -> str:
    """Text of a w:p, tracked insertions, hyperlinks, fields and text boxes included, deletions
    left out (text moved away is taken out before, by _drop_moved_from). A text box is saved
    twice (mc:Choice for new Word, mc:Fallback for old): read once."""
    from docx.oxml.ns import qn

    text_tag, run_tag = qn("w:t"), qn("w:r")
    fallback = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
    breaks = {qn("w:tab"): "\t", qn("w:br"): "\n", qn("w:cr"): "\n"}
    parts = []
    def in_fallback(el) -> bool:
        for a in el.iterancestors():
            if a is p:
                return False
            if a.tag == fallback:
                return True
        return False

    for el in p.iter(text_tag, *breaks):
        if in_fallback(el):
            continue
        if el.tag == text_tag:
            parts.append(el.text or "")
        elif el.getparent() is not None and el.getparent().tag == run_tag:  # not a tab stop in w:pPr
            parts.append(breaks[el.tag])
    return "".join(parts)


def _cell_text(tc) -> str:
    """A cell's text; the continuation of a vertically merged cell reads blank, as in the txt."""
    from docx.oxml.ns import qn

    tc_pr = tc.find(qn("w:tcPr"))
    if tc_pr is not None:
        v_merge = tc_pr.find(qn("w:vMerge"))
        if v_merge is not None and v_merge.get(qn("w:val")) in (None, "continue"):
            return ""
    lines = [_paragraph_text(p).strip() for p in _within_controls(tc, qn("w:p"))]
    return "\n".join(line for line in lines if line)


# ---------------------------------------------------------------------------------------------
# Small parsers


_ALNUM = str.maketrans({chr(0xFF10 + i): chr(0x30 + i) for i in range(10)}
                       | {chr(0xFF21 + i): chr(0x41 + i) for i in range(26)}
                       | {chr(0xFF41 + i): chr(0x61 + i) for i in range(26)})
_WIDTH = str.maketrans("０１２３４５６７８９．，－：（）＞＜＝％", "0123456789.,-:()><=%")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_SPACES = re.compile(r"[\s\u3000\u00a0]+")
_UNIT = re.compile(r"单位\s*[:：]\s*(万元|元)")
# What stands between the parts of a table that goes on over a page, as a Word document or a
# text taken from one (a PDF's included) has it (squashed): 续表 / （续）, the unit again, a page
# number in the forms footers print it: — 2 —, 第2页, 第2页共6页, 共6页第2页, 2/6, Page 2 of 6.
_N = "[0-9０-９]+"
_PAGE = (f"[-－—–]*(?:第?{_N}页?(?:[,，]?共{_N}页)?|共{_N}页[,，]?第{_N}页|{_N}[/／]{_N}"
         f"|(?i:page){_N}(?:(?i:of){_N})?)[-－—–]*")
_CONTINUED = re.compile(r"[（(]?续表?[)）]?[一二三四五六七八九十0-9]*[:：]?|单位[:：](万元|元)|" + _PAGE)
_UNIT_IN_LABEL = re.compile(r"[（(](万元|元)[)）]")
_YEAR_ROW = re.compile(r"[（(]\s*((?:19|20)\d{2})\s*年(?:度)?\s*[)）]")
_CLAUSE = re.compile(r"^([一二三四五六七八九十]{1,3})\s*[、.．]")
_TOTAL_WORDS = ("总计", "合计", "小计")
# The allocation table's amount column, by its heading: 2024年下达数, 分配金额, 下达数（调减）, and a
# reduction or increase notice's 2024年调减数 / 调增数.
_AMOUNT_HEADINGS = ("下达", "金额", "分配", "预算数", "资金", "调减数", "调增数")
_TITLE_ENDS = ("通知", "通报", "决定", "批复", "函")


def _squash(text: str) -> str:
    """Text without any spaces, for recognising labels written with spacing (项  目)."""
    return _SPACES.sub("", text or "")


def parse_decimal(text: str | None) -> Decimal | None:
    """'6,111.00' / '６１１１' / '17.28万元' -> Decimal; None when blank; ValueError when not a number."""
    s = _squash((text or "").translate(_WIDTH)).replace(",", "")
    for suffix in ("万元", "元", "分"):
        s = s.removesuffix(suffix)
    if s in ("", "-", "—", "/"):
        return None
    if not _NUMBER.fullmatch(s):
        raise ValueError(text)
    try:
        return Decimal(s)
    except InvalidOperation as exc:  # pragma: no cover - fullmatch makes this unreachable
        raise ValueError(text) from exc


def unit_of(text: str | None, default: str) -> str:
    """The unit a cell writes after its number (440000元 or 44万元 in a table of another unit),
    else the table's: the cell's own unit wins, as a reader takes it."""
    s = _squash(text or "")
    return "万元" if s.endswith("万元") else "元" if s.endswith("元") else default


def to_yuan(value: Decimal, unit: str) -> Decimal:
    """Amount in 元 (two places) from a value in `unit`; ValueError if it is not whole cents."""
    yuan = value * YUAN_PER_WAN if unit == "万元" else value
    cents = yuan.quantize(CENT)
    if cents != yuan:
        raise ValueError(f"{value} {unit} is not a whole number of cents")
    if abs(cents) >= MAX_YUAN:
        raise ValueError(f"{value} {unit} is beyond what an amount can be")
    return cents


# Operators as targets write them: signs (≥ ≧ >= ＞＝ …) anywhere, words before the number
# (不少于 90%; longer words first where one begins another), or words after it (90%以上).
_OP_SIGNS = (("≥", ">="), ("≧", ">="), ("⩾", ">="), ("≮", ">="), ("≤", "<="), ("≦", "<="), ("⩽", "<="),
             ("≯", "<="), ("=>", ">="), ("=<", "<="), ("＞＝", ">="), ("＜＝", "<="))
_OP_WORDS = (("大于或等于", ">="), ("大于等于", ">="), ("不少于", ">="), ("不低于", ">="),
             ("不小于", ">="), ("至少", ">="), ("达到", ">="), ("小于或等于", "<="), ("小于等于", "<="),
             ("不超过", "<="), ("不高于", "<="), ("不多于", "<="), ("不大于", "<="), ("最多", "<="),
             ("大于", ">"), ("高于", ">"), ("超过", ">"), ("小于", "<"), ("低于", "<"), ("等于", "="))
# A deadline is a ceiling: 12月底前 (by the end of December) is <=12月, as the seed writes it.
_OP_SUFFIXES = (("及以上", ">="), ("以上", ">="), ("及以下", "<="), ("以下", "<="), ("以内", "<="),
                ("底之前", "<="), ("底以前", "<="), ("底前", "<="), ("之前", "<="), ("以前", "<="), ("前", "<="))
_TARGET = re.compile(r"^(>=|<=|=|>|<)?\s*([+-]?\d+(?:\.\d+)?)\s*(\D*)$")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")  # 18,382户
# A unit as Word or an input method writes it: 元／户／月 (full-width slashes), 元/户・月 (another
# middle dot); stored in the forms config/indicators.toml lists (元/户/月, 元/户·月).
_UNIT_WIDTH = str.maketrans({"／": "/", "・": "·", "•": "·", "∙": "·", "‧": "·", "⋅": "·"})


def parse_target(text: str) -> tuple[str | None, Decimal | None, str | None, bool]:
    """'>=97套' -> ('>=', 97, '套', False); '不低于90%' and '90%以上' -> ('>=', 90, '%', False);
    '≤480元／户／月' -> ('<=', 480, '元/户/月', False); '12月底前' -> ('<=', 12, '月', False);
    '≥18,382户' -> ('>=', 18382, '户', False); '有效解决' -> (None, None, None, True)."""
    s = _squash(text)
    for sign, op in _OP_SIGNS:
        s = s.replace(sign, op)
    s = _THOUSANDS.sub("", s.translate(_WIDTH))
    word = next(((w, op) for w, op in _OP_WORDS if s.startswith(w)), None)
    if word:
        s = word[1] + s[len(word[0]):]
    after = next(((w, op) for w, op in _OP_SUFFIXES if s.endswith(w)), None)
    if after and not s.startswith(("<", ">", "=")):
        s = after[1] + s[:-len(after[0])]
    m = _TARGET.match(s)
    if not m:
        return None, None, None, True
    return m.group(1) or "=", Decimal(m.group(2)), m.group(3).translate(_UNIT_WIDTH) or None, False


def _clauses(paragraphs: list[str]) -> tuple[list[str], dict[str, str]]:
    """Preamble paragraphs and the numbered clauses (一、二、…) of the notice body."""
    preamble: list[str] = []
    clauses: dict[str, str] = {}
    current = None
    for text in paragraphs:
        m = _CLAUSE.match(text)
        if m:
            current = m.group(1)
            clauses[current] = text
        elif current is None:
            preamble.append(text)
        else:
            clauses[current] += text
    return preamble, clauses


def _code_rules(clause: str, text: str) -> list[CodeRule]:
    """'其中，配售型保障性住房、城中村改造补助资金暂列入“2210199…”科目' -> 配售型, 城中村 -> 2210199."""
    rules: list[CodeRule] = []
    for part in re.split(r"[，,。；;]", text.translate(_WIDTH)):
        codes = re.findall(r"(?<!\d)(\d{7})(?!\d)", part)
        m = re.match(r"^(?:其中[:：]?)?(.+?)(?:补助资金|资金)?(?:暂|应|均|统一)?(?:列入|列支|计入|纳入)", part)
        if len(set(codes)) != 1 or not m:
            continue
        subject = m.group(1)
        for item in re.split(r"[、和及与]", subject):
            for keyword in _keywords(item):
                rule = CodeRule(keyword, codes[0], clause)
                if keyword and rule not in rules:
                    rules.append(rule)
    return rules


def _keywords(item: str) -> list[str]:
    """The core words a purpose is recognised by: '棚户区(城市危旧房)改造' -> 棚户区, 危旧房."""
    inner = re.findall(r"\(([^()]*)\)", item)
    outer = re.sub(r"\([^()]*\)", "", item)
    words = []
    for word in [outer, *inner]:
        word = _squash(word)
        for suffix in ("补助", "改造", "项目", "工程"):
            word = word.removesuffix(suffix)
        if word.endswith("保障性住房") and len(word) > len("保障性住房"):
            word = word.removesuffix("保障性住房")
        if word.startswith("城市") and len(word) > 3:
            word = word.removeprefix("城市")
        if len(word) >= 2:
            words.append(word)
    return words


# ---------------------------------------------------------------------------------------------
# The parser


def parse_notice(path: Path | str) -> Notice:
    """Parse a .txt or .docx allocation notice; InputError says what is missing."""
    path = Path(path)
    return parse_document(read_document(path), path)


def parse_document(doc: SourceDocument, path: Path | str) -> Notice:
    items = list(doc.items)
    if not items:
        raise InputError(path, "文件中没有文字", "the file contains no text")
    header_at = _allocation_header(items)
    # The text before the allocation table. Tab-prefixed lines there are indented paragraphs (some
    # exports indent body text with a tab), not table cells: the tables are in the attachment.
    paragraphs = [text for it in items[:header_at]
                  for text in ([it.text] if isinstance(it, Para) else it.filled)]

    # Header: issuer lines, the notice number, the title, the salutation.
    no_at = next((i for i, t in enumerate(paragraphs)
                  if len(_squash(t)) <= 40 and doc_no(t.translate(_WIDTH))), None)
    if no_at is None:
        raise InputError(path, "未找到通知文号（如 克区财综〔2024〕2号）",
                         "no notice number found (e.g. 克区财综〔2024〕2号)")
    notice_no = doc_no(paragraphs[no_at].translate(_WIDTH))
    title_at = next((i for i in range(no_at + 1, len(paragraphs))
                     if paragraphs[i].startswith("关于") or paragraphs[i].endswith(_TITLE_ENDS)), None)
    if title_at is None:
        raise InputError(path, "未找到通知标题（“关于……的通知”）", "no title found (关于……的通知)")
    title = _squash(paragraphs[title_at])
    # A long title wraps over lines: 关于……安居工程 / 补助资金预算的通知.
    while not title.endswith(_TITLE_ENDS) and title_at + 1 < len(paragraphs) and len(title) < 120:
        following = _squash(paragraphs[title_at + 1])
        if following.endswith(("：", ":")) or _CLAUSE.match(following):
            break
        title_at += 1
        title += following
    title_n = title.translate(_ALNUM)  # ２０２４年 as 2024年
    year_m = re.search(r"((?:19|20)\d{2})\s*年", title_n)
    fiscal_year = int(year_m.group(1)) if year_m else int(re.search(r"〔(\d{4})〕", notice_no).group(1))
    fund_m = re.search(r"((?:19|20)\d{2}年.*?资金)", title_n)
    fund_name = fund_m.group(1) if fund_m else None

    salute_at = next((i for i in range(title_at + 1, len(paragraphs))
                      if paragraphs[i].endswith(("：", ":")) and len(paragraphs[i]) <= 40
                      and not _UNIT.search(paragraphs[i])), None)
    recipient = paragraphs[salute_at].rstrip("：:").strip() if salute_at is not None else None
    body_from = (salute_at if salute_at is not None else title_at) + 1
    body_to = next((i for i in range(body_from, len(paragraphs)) if paragraphs[i].startswith("附件")),
                   len(paragraphs))
    # full-width digits and letters as ASCII, where codes and years are looked for
    body = [t.translate(_ALNUM) for t in paragraphs[body_from:body_to]]
    issuer = _issuer(paragraphs[:no_at], paragraphs[body_to:])

    # Clauses: upstream documents, codes, the rules of clause 三, the deadline.
    _preamble, clauses = _clauses(body)
    body_text = "".join(body)
    upstream = tuple(d for d in find_doc_nos(title + body_text) if d != notice_no)
    project_m = re.search(r"项目代码\s*(?:为|是)?\s*[:：]?\s*[“\"「]?\s*([0-9A-Za-z]{6,32})", body_text)
    revenue_code, revenue_name = _revenue(body_text)
    # Clause 三 in the seed; found by content (expenditure item codes named as 科目) so that a
    # notice numbering its clauses differently still yields its rules.
    code_clause = "三" if "三" in clauses and re.search(r"(?<!\d)2\d{6}(?!\d)", clauses["三"]) else next(
        (k for k, t in clauses.items() if "科目" in t and re.search(r"(?<!\d)2\d{6}(?!\d)", t)), None)
    code_text = clauses.get(code_clause, "") if code_clause else ""
    allowed = tuple(dict.fromkeys(re.findall(r"(?<!\d)(\d{7})(?!\d)", code_text)))
    rules = tuple(_code_rules(code_clause, code_text)) if code_clause else ()
    deadline = None
    for text in [t for t in clauses.values() if "绩效" in t] + [body_text]:
        m = re.search(r"(\d{1,2})\s*月\s*(\d{1,2})\s*日(?:前|之前)", text.translate(_WIDTH))
        if m:
            deadline = f"{int(m.group(1)):02d}-{int(m.group(2)):02d}"
            break

    if header_at is None and _table_as_image(items, doc.images):
        raise InputError(path, "通知的分配表是一张图片（或以图片显示的对象），其中的数字无法读取；请提供通知的文本（.txt），"
                               "或分配表为 Word 表格（而非图片）的 .docx 文件",
                         "the notice's allocation table is a picture (or an object shown as one), whose "
                         "figures cannot be read; provide the notice's text (.txt), or a Word file (.docx) "
                         "whose allocation table is a real table, not a picture")
    unit, lines, stated_total, after = _allocation_table(items, header_at, body_text, path)
    tables = tuple(_target_tables(items[after:], fiscal_year, unit, path))

    return Notice(
        notice_no=notice_no,
        title=title,
        fund_name=fund_name,
        issuer=issuer,
        recipient=recipient,
        fiscal_year=fiscal_year,
        project_code=project_m.group(1) if project_m else None,
        revenue_code=revenue_code,
        revenue_name=revenue_name,
        upstream_docs=upstream,
        stated_total=stated_total,
        amount_unit=unit,
        reporting_deadline=deadline,
        allowed_codes=allowed,
        code_rules=rules,
        lines=tuple(lines),
        target_tables=tables,
    )


_ISSUER = re.compile(r"^[\u4e00-\u9fff]{2,30}(局|厅|部|委员会|委|办公室|人民政府|政府|中心)$")


def _issuer(header: list[str], tail: list[str]) -> str | None:
    """The issuer from the header lines ('(' '克拉玛依' '区财政局' ')'), else the signature line."""
    joined = _squash("".join(header)).strip("()（）﹝﹞[]［］【】")
    joined = re.sub(r"文件$", "", joined)
    if _ISSUER.match(joined):
        return joined
    for text in tail:
        if _ISSUER.match(_squash(text)):
            return _squash(text)
    return joined or None


def _revenue(text: str) -> tuple[str | None, str | None]:
    """Clause 一's revenue classification: '“1100258住房保障共同财政事权转移支付收入”'."""
    m = re.search(r"[“\"「]\s*(1\d{6})\s*([^”\"」]*?)\s*[”\"」]", text)
    if not m:
        m = re.search(r"(?<!\d)(1\d{6})(?!\d)\s*([\u4e00-\u9fff]*收入)", text)
    if not m:
        return None, None
    return m.group(1), (m.group(2) or None)


def _table_as_image(items: list, images: tuple[int, ...]) -> bool:
    """Does a picture stand where the allocation table would: straight after the line that
    introduces a table (its unit, 单位：万元, or a title ending in 表, or 附件)? A letterhead or a
    seal (公章) stands after the issuer's or the date's line, not one of these."""
    for at in images:
        before = items[at - 1] if at > 0 else None
        if isinstance(before, Para):
            text = _squash(before.text)
        elif isinstance(before, Row) and len(before.filled) == 1:  # a title typed into a table row
            text = _squash(before.filled[0])
        else:
            continue
        if _UNIT.search(text) or _is_table_title(text):
            return True
    return False


def _is_target_start(row: Row) -> bool:
    joined = _squash("".join(row.cells))
    filled = row.filled
    return ("绩效目标表" in joined or bool(_YEAR_ROW.fullmatch(joined))
            or (bool(filled) and _squash(filled[0]).rstrip(":：") == "预算单位"))


def _cell(cells, col: int | None) -> str:
    """A cell's text on one line: a Word cell wraps a long name over lines (2024年租赁补贴 /
    （中央直达）), which is one name; lines are joined as written, with a space only between two
    ASCII letters or digits (Sample / Project)."""
    text = cells[col].strip() if col is not None and col < len(cells) else ""
    if "\n" not in text:
        return text
    joined = ""
    for line in (part.strip() for part in text.split("\n")):
        if line:
            ascii_pair = joined[-1:].isascii() and joined[-1:].isalnum() and line[0].isascii() and line[0].isalnum()
            joined += (" " if ascii_pair else "") + line
    return joined


def _find_col(header: list[str], *words: str, exclude: tuple[str, ...] = ()) -> int | None:
    for i, cell in enumerate(header):
        if any(w in cell for w in words) and not any(x in cell for x in exclude):
            return i
    return None


def _allocation_header(items: list) -> int | None:
    """Index of the allocation table's header row: an amount column and a function-code column."""
    for i, it in enumerate(items):
        if isinstance(it, Row) and not _is_target_start(it):
            cells = [_squash(c) if len(_squash(c)) <= 20 else "" for c in it.cells]  # labels are short
            if (_find_col(cells, "科目", "功能分类") is not None
                    and _find_col(cells, *_AMOUNT_HEADINGS, exclude=("科目",)) is not None):
                return i
    return None


def _allocation_table(items: list, header_at: int | None, body_text: str,
                      path) -> tuple[str, list[AllocationLine], Decimal, int]:
    """(unit, lines, stated total, index of the first item after the table)."""
    if header_at is None:
        raise InputError(path, "未找到分配表（含“下达数”“预算支出功能科目”等列的表格）",
                         "no allocation table found (a table with amount and function-code columns)")
    header = [_squash(c) for c in items[header_at].cells]
    col_code = _find_col(header, "科目", "功能分类")
    col_amount = _find_col(header, *_AMOUNT_HEADINGS, exclude=("科目", "名称"))
    col_purpose = _find_col(header, "项目", "用途", "资金名称", "名称", exclude=("科目", "代码"))
    col_region = _find_col(header, "地区", "单位")
    col_direct = _find_col(header, "直达")  # 是否直达资金: the flag in a column of its own
    if col_purpose is None:
        col_purpose, col_region = col_region, None
    if col_purpose is None or col_amount is None:
        raise InputError(path, "分配表缺少项目（地区）列或金额列",
                         "the allocation table lacks a purpose (region) column or an amount column")

    # The unit: in the amount column's header, or the line just above the table.
    unit = None
    m = _UNIT_IN_LABEL.search(header[col_amount])
    if m:
        unit = m.group(1)
    for it in reversed(items[max(0, header_at - 4):header_at]):
        if unit:
            break
        text = it.text if isinstance(it, Para) else "".join(it.cells)
        m = _UNIT.search(_squash(text))
        unit = m.group(1) if m else None
    if unit is None:
        raise InputError(path, "分配表未注明金额单位（单位：万元 或 单位：元）",
                         "the allocation table does not state its unit (单位：万元 or 单位：元)")
    # A reduction (2024年调减数, 下达数（调减）) takes money back: its amounts, the total's too, are
    # negative allocations, whether written with a minus or not. A column of increases and
    # reductions both (调增调减数) is read as written.
    reduction = "调减" in header[col_amount] and "调增" not in header[col_amount]

    def signed(amount: Decimal | None) -> Decimal | None:
        return -abs(amount) if reduction and amount else amount  # 0.00, not -0.00

    lines: list[AllocationLine] = []
    totals: list[tuple[str, str, str | None, Decimal]] = []  # word, place in its label, region, amount
    regions: list[str] = []
    region = None
    end = len(items)
    for i in range(header_at + 1, len(items)):
        it = items[i]
        # Where the table ends. What may stand between the parts of a table that goes on over a
        # page (续表, a page number, the unit again) does not end it, nor does its header again;
        # what begins another table does, though only its unit stands between them (an annex, a
        # 绩效目标表 of another form): another unit, a title of its own, a header of its own.
        line = _squash(it.text) if isinstance(it, Para) else (
            _squash(it.filled[0]) if len(it.filled) == 1 else None)
        unit_m = _UNIT.fullmatch(line) if line else None
        if unit_m and unit_m.group(1) != unit:
            end = i  # a table in other units: not this one going on
            break
        if unit_m or (isinstance(it, Para) and _CONTINUED.fullmatch(line)):
            continue  # between the parts of a table continued on the next page
        if (isinstance(it, Para) or _is_target_start(it)
                or (line is not None and _is_table_title(line))):
            end = i
            break
        cells = list(it.cells)
        squashed = [_squash(c) for c in cells]
        if not it.filled or squashed == header:
            continue  # an empty row; the header again, atop the part on the next page
        if _is_header_row(it):
            if header[col_amount] in squashed:
                continue  # the header again, its cells merged or laid out otherwise
            end = i  # another table's header
            break
        purpose, amount_text, code_text = (_cell(cells, col_purpose), _cell(cells, col_amount),
                                           _cell(cells, col_code))
        if _cell(cells, col_region):
            region = _cell(cells, col_region)
        try:
            value = parse_decimal(amount_text)
            amount = signed(to_yuan(value, unit_of(amount_text, unit)) if value is not None else None)
        except ValueError:
            raise InputError(path, f"分配表“{purpose or amount_text}”一行的金额“{amount_text}”无法识别",
                             f"allocation table: cannot read the amount {amount_text!r} of {purpose!r}")
        label, total_word = _total_label(cells, col_amount, col_code, purpose)
        if total_word:
            if amount is None and len(cells) < len(header):
                # a total cell merged across columns, in a text that keeps no empty cell for them:
                # its amount is the number after it
                amount = signed(_amount_after(cells, cells.index(label), unit))
            if amount is None:
                raise InputError(path, f"分配表合计行“{label}”没有金额",
                                 f"allocation table: the total row {label!r} has no amount")
            place = _squash(label).replace(total_word, "").strip()
            totals.append((total_word, place, _cell(cells, col_region) or None, amount))
            if place:
                region = region if col_region is not None else place
                regions.append(place)
            continue
        if not purpose and amount is None:
            continue
        if not purpose:
            raise InputError(path, f"分配表中金额 {amount_text} 的一行没有项目名称",
                             f"allocation table: the row with amount {amount_text} names no purpose")
        if amount is None:
            raise InputError(path, f"分配表“{purpose}”一行没有金额",
                             f"allocation table: the line {purpose!r} has no amount")
        lines.append(AllocationLine(
            seq=len(lines) + 1,
            purpose=purpose,
            region=region,
            amount=amount,
            function_code=_function_code(code_text),
            is_direct=(_is_yes(_cell(cells, col_direct)) if col_direct is not None
                       else "中央直达" in _squash(purpose) and "参照" not in purpose),
        ))
    if not lines:
        raise InputError(path, "分配表中没有分配行", "the allocation table has no allocation lines")
    if len(set(regions)) == 1:
        lines = [ln if ln.region else AllocationLine(ln.seq, ln.purpose, regions[0], ln.amount,
                                                     ln.function_code, ln.is_direct) for ln in lines]

    stated_total = _grand_total(totals)
    if stated_total is None:
        stated_total = signed(_total_in_text(body_text))
        if stated_total is None and len(lines) == 1:
            stated_total = lines[0].amount  # one line is its own total
        if stated_total is None:
            raise InputError(path, "分配表未找到合计行，正文也未写明合计金额",
                             "no total row in the allocation table and no total stated in the text")
    return unit, lines, stated_total, end


_CODE_GROUPS = re.compile(r"(?<=\d)[\s\-–—.]+(?=\d)")  # 221 01 03, 221-01-03, 221.01.03


def _function_code(text: str) -> str:
    """An allocation line's function code from its cell: '2210107 保障性住房租金补贴', '[2210110]…',
    '2210107', its class / subclass / item groups written apart ('221 01 03', '221-01-03') read as
    one code. Two codes in one cell ('2210103、2210199') are stored as written: no one code is the
    line's, and NOTICE_CODE_INVALID says so rather than the first being taken."""
    s = text.translate(_WIDTH)
    grouped = _CODE_GROUPS.sub("", s)
    if len(re.findall(r"\d+", s)) > 1 and re.match(r"^\D{0,2}\d{7}(?!\d)", grouped):
        s = grouped
    if len(re.findall(r"\d{5,}", s)) > 1:
        return _squash(text)
    m = re.match(r"^\D{0,2}(\d+)", s)
    return m.group(1) if m else _squash(text)


def _grand_total(totals: list[tuple[str, str, str | None, Decimal]]) -> Decimal | None:
    """The table's grand total from its total rows (word, place named in the label, region cell,
    amount): 总计 if written; else the 合计 rows: a bare 合计 beside regions' 合计 (克拉玛依区合计,
    白碱滩区合计) is the grand total, the regions' add up to it; the regions' alone (in the label,
    or a bare 合计 under each region's cell) are added up; else the 小计 rows likewise. None: no
    total row."""
    for word in _TOTAL_WORDS:
        rows = [t for t in totals if t[0] == word]
        if not rows:
            continue
        if word == "总计":
            return rows[0][3]
        bare = [t for t in rows if not t[1]]
        named = [t for t in rows if t[1]]
        if bare and named:
            return bare[-1][3]  # the grand total, above or below the regions' (the last if repeated)
        if len(bare) > 1 and len({t[2] for t in bare}) == 1:
            return bare[-1][3]  # the same total again (atop and below the table)
        return sum((t[3] for t in rows), Decimal("0.00"))
    return None


# A table's title, as a row of one cell: 附件2, 附表, ……分配明细表, ……目标表（2024年）; not 续表,
# which continues one, nor a purpose that ends in 代表.
_TABLE_TITLE = re.compile(r"^(附件|附表)|(?<!代)表(?:[（(][^()（）]*[)）])?[:：]?$")
# Words of a table's column headings.
_HEADING_WORDS = ("序号", "项目", "名称", "地区", "单位", "金额", "资金", "下达", "科目", "分类", "备注",
                  "指标", "用途", "类别", "代码", "编码", "数量", "内容", "预算", "标准", "权重", "分值",
                  "说明", "依据")


def _is_table_title(text: str) -> bool:
    """Is this line (squashed) a table's title, or an annex's heading (附件2)?"""
    return bool(_TABLE_TITLE.search(text)) and not _CONTINUED.fullmatch(text)


def _is_header_row(row: Row) -> bool:
    """Does this row read as a table's column headings: short labels, no number among them, and
    two or more of them column headings' words? An allocation line has its amount (a number),
    and one whose amount is missing or text (待定) still has no second heading word."""
    filled = [_squash(c) for c in row.filled]
    if len(filled) < 2 or any(len(c) > 20 for c in filled):
        return False
    for c in filled:
        try:
            if parse_decimal(c) is not None:
                return False
        except ValueError:
            pass
    return sum(1 for c in filled if any(w in c for w in _HEADING_WORDS)) >= 2


def _total_label(cells: list[str], col_amount: int, col_code: int | None,
                 purpose: str) -> tuple[str, str | None]:
    """The cell that makes a row the table's total, and its word (合计 …): the purpose's, or
    another short cell's (合计 under 序号 or 地区, or across both)."""
    for cell in [purpose] + [c for i, c in enumerate(cells) if i not in (col_amount, col_code)]:
        word = next((w for w in _TOTAL_WORDS if w in cell), None)
        if word and (cell == purpose or len(_squash(cell)) <= 20):
            return cell, word
    return purpose, None


def _amount_after(cells: list[str], at: int, unit: str) -> Decimal | None:
    for cell in cells[at + 1:]:
        try:
            value = parse_decimal(cell)
        except ValueError:
            continue
        if value is not None:
            return to_yuan(value, unit_of(cell, unit))
    return None


def _is_yes(text: str) -> bool:
    return _squash(text).translate(_WIDTH).upper() in ("是", "Y", "YES", "√", "✓", "1", "直达", "中央直达")


def _total_in_text(body_text: str) -> Decimal | None:
    """The total the body states: 共计 / 合计 / 总计 N 万元, else the amount of 下达 … N 万元 in one
    sentence (现下达你单位…资金6276万元)."""
    text = body_text.translate(_WIDTH)
    amount = r"[^。；;：:]*?(?<![\d.])(\d[\d,，]*(?:\.\d+)?)\s*(万元|元)"
    m = (re.search(r"(?:共计|合计|总计)\s*([\d,，.]+)\s*(万元|元)", text)
         or re.search(r"[现特][^。；;，,]{0,4}下达" + amount, text)  # not 上级下达我区 … 万元
         or re.search(r"下达" + amount, text))
    if not m:
        return None
    return to_yuan(parse_decimal(m.group(1)), m.group(2))


_LABELS = {
    "预算单位": "unit_name", "项目名称": "purpose", "项目负责人": "manager", "负责人": "manager",
    "项目总体目标": "overall_goal", "总体目标": "overall_goal", "年度绩效目标": "overall_goal",
    "年度预算总额": "budget_total", "预算总额": "budget_total", "资金总额": "budget_total",
    "其中财政拨款": "budget_fiscal", "财政拨款": "budget_fiscal",
    "其他资金": "budget_other",
}
_IND_COLS = {
    "level1": (("一级指标",), ()), "level2": (("二级指标",), ()), "name": (("三级指标",), ()),
    "target": (("指标值",), ("依据",)), "basis": (("依据",), ()), "last_year": (("上年",), ()),
    "weight": (("权重", "分值"), ()), "scoring_rule": (("赋分", "评分"), ()),
    "evidence": (("佐证",), ()),
}


def _target_tables(items: list, notice_year: int, default_unit: str, path):
    """Every 项目支出绩效目标表 after the allocation table, in document order."""
    tables: list[dict] = []
    table = None
    year = None
    for it in items:
        text = it.text if isinstance(it, Para) else "".join(it.cells)
        joined = _squash(text)
        m = _YEAR_ROW.fullmatch(joined)
        if m:
            year = int(m.group(1))
            table = None
            continue
        if "绩效目标表" in joined:
            table = None
            continue
        if isinstance(it, Para):
            if not _CONTINUED.fullmatch(joined):  # 续表, a page number: the table goes on
                table = None  # a paragraph between tables ends the current one
            continue
        filled = it.filled
        if not filled:
            continue
        if _squash(filled[0]).rstrip(":：") == "预算单位":
            # straight under a table's rows (no title, year or paragraph between): perhaps its
            # head again, atop the part of it on the next page (merged below)
            table = {"fields": {}, "budget_unit": default_unit, "columns": None, "rows": [],
                     "fiscal_year": year or notice_year, "continues": table}
            tables.append(table)
            year = None
        if table is None:
            continue
        cells = [_squash(c) for c in it.cells]
        is_column_header = any("一级指标" in c for c in cells) and any("三级指标" in c for c in cells)
        continued = table["continues"]
        if (table["columns"] is None and not is_column_header and continued is not None
                and continued["columns"] is not None and not _is_label_row(filled)):
            table["columns"] = continued["columns"]  # indicators under a head repeated without theirs
        if table["columns"] is None:
            if is_column_header:
                table["columns"] = {key: _find_col(cells, *words, exclude=excl)
                                    for key, (words, excl) in _IND_COLS.items()}
                continue
            _read_labels(it.cells, table)
        elif not is_column_header:  # the indicators' header again, atop the next page's part
            table["rows"].append(it.cells)
    # A table's head repeated atop the part of it on the next page: that part's rows are its own
    merged: list[dict] = []
    for t in tables:
        head = t["continues"]
        if any(head is m for m in merged) and t["fields"].get("purpose") in (None, head["fields"].get("purpose")):
            head["rows"].extend(t["rows"])
            continue
        merged.append(t)
    tables = merged

    result = []
    for seq, t in enumerate(tables, start=1):
        f = t["fields"]
        if not f.get("purpose"):
            raise InputError(path, f"第{seq}张绩效目标表缺少项目名称",
                             f"performance target table {seq} names no project (项目名称)")
        budget = {}
        for key in ("budget_total", "budget_fiscal", "budget_other"):
            try:
                value = parse_decimal(f.get(key))
                budget[key] = to_yuan(value, unit_of(f.get(key), t["budget_unit"])) if value is not None else None
            except ValueError:
                raise InputError(path, f"绩效目标表“{f['purpose']}”的项目资金“{f.get(key)}”无法识别",
                                 f"target table {f['purpose']!r}: cannot read the budget amount {f.get(key)!r}")
        indicators = _indicators(t["columns"], t["rows"]) if t["columns"] else ()
        result.append(TargetTable(
            seq=seq, purpose=f["purpose"], fiscal_year=t["fiscal_year"], unit_name=f.get("unit_name"),
            manager=f.get("manager"), overall_goal=f.get("overall_goal"), indicators=indicators, **budget))
    return result


def _is_label_row(filled: list[str]) -> bool:
    """A row of a target table's head: it begins with one of its labels."""
    label = _squash(filled[0]).translate(_WIDTH).rstrip(":").replace(":", "")
    return label in _LABELS or label.startswith(("预算单位", "项目资金", "项目预算"))


def _read_labels(cells: tuple[str, ...], table: dict) -> None:
    """Label / value pairs of a target table's head: 项目名称 | 2024年… | 项目负责人 | 周恒毅."""
    for i, cell in enumerate(cells):
        label = _squash(cell).translate(_WIDTH).rstrip(":").replace(":", "")
        if label.startswith("项目资金") or label.startswith("项目预算"):
            m = _UNIT_IN_LABEL.search(label)
            if m:
                table["budget_unit"] = m.group(1)
            continue
        key = _LABELS.get(label)
        if key and key not in table["fields"]:
            value = cells[i + 1].strip() if i + 1 < len(cells) else ""
            if _squash(value).translate(_WIDTH).rstrip(":").replace(":", "") in _LABELS:
                value = ""
            table["fields"][key] = value or None


def _indicators(columns: dict, rows: list) -> tuple[Indicator, ...]:
    result = []
    level1 = level2 = ""
    for cells in rows:
        def cell(key):
            return _cell(cells, columns.get(key))

        if cell("level1"):
            # a 一级 label with no 二级 beside it is written across both (满意度指标)
            level1, level2 = cell("level1"), cell("level1")
        if cell("level2"):
            level2 = cell("level2")
        name, target = cell("name"), cell("target")
        if not name and not target:
            continue
        op, value, unit, qualitative = parse_target(target)
        try:
            weight = parse_decimal(cell("weight").rstrip("%％ "))  # 10, 10分, 10%
        except ValueError:
            weight = None
        result.append(Indicator(
            seq=len(result) + 1, level1=level1, level2=level2, name=name, target_text=target,
            op=op, target_value=value, target_unit=unit, qualitative=qualitative,
            basis=cell("basis") or None, last_year=cell("last_year") or None, weight=weight,
            scoring_rule=cell("scoring_rule") or None, evidence=cell("evidence") or None,
        ))
    return tuple(result)


# ---------------------------------------------------------------------------------------------
# Loading


def load_notices(con: duckdb.DuckDBPyConnection, paths) -> list[FileOutcome]:
    """Parse and store each notice file; one outcome per file (loaded | skipped | rejected).

    A file already loaded (same sha256) is skipped; so is another file of a notice already
    stored (its 文号) that says the same (the .docx beside the .txt, another encoding), with a
    message. Another file of a stored 文号 that says something else (a revised notice, a draft)
    is rejected, naming both files: a notice is stored once, and the one stored is not replaced
    behind the user's back. A file that cannot be parsed is rejected whole.
    """
    outcomes = []
    for path in map(canonical_path, paths):
        try:
            sha = sha256_file(path)
        except OSError as exc:  # unreadable: nothing can be registered under a content hash
            error = InputError(path, f"无法读取文件（{exc.strerror or exc}）", f"cannot read the file ({exc})")
            try:  # registered without a hash, so the run reports it as INPUT_REJECTED
                outcomes.append(reject_file(con, path, "", KIND, error))
            except OSError:  # gone altogether: nothing to register
                outcomes.append(FileOutcome(str(path), KIND, "rejected", message=str(error)))
            continue
        earlier = earlier_load(con, sha)
        if earlier is not None:
            outcomes.append(skipped_as_loaded(path, KIND, earlier, sha))
            continue
        try:
            doc = read_document(path)
            notice = parse_document(doc, path)
        except InputError as exc:
            outcomes.append(reject_file(con, path, sha, KIND, exc))
            continue
        except Exception as exc:  # a parser bug must still name the file, never a traceback
            error = InputError(path, f"无法解析通知（{type(exc).__name__}: {exc}）",
                               f"cannot parse the notice ({type(exc).__name__}: {exc})")
            outcomes.append(reject_file(con, path, sha, KIND, error))
            continue
        stored = con.execute(
            "select n.file_id, f.path from notices as n join input_files as f on f.file_id = n.file_id "
            "where n.notice_no = ?", [notice.notice_no]).fetchone()
        if stored is None:
            outcomes.append(_store_notice(con, path, sha, doc, notice))
            continue
        differs = _differs_from_stored(con, notice)
        if differs is None:
            outcomes.append(FileOutcome(
                str(path), KIND, "skipped", stored[0], sha,
                message=f"通知 {notice.notice_no} 已由 {stored[1]} 加载，跳过 / "
                        f"notice {notice.notice_no} is already loaded from {stored[1]}; skipped"))
            continue
        part_zh, part_en = differs
        outcomes.append(reject_file(con, path, sha, KIND, InputError(
            path,
            f"文号 {notice.notice_no} 已由 {stored[1]} 载入，本文件内容不同（{part_zh}），未替换"
            f"（如为更正文件，请用新的数据库（--db 新路径）重新载入全部文件；如为误放的旧稿，请将其移出通知文件夹）",
            f"notice {notice.notice_no} is already loaded from {stored[1]}; this file differs ({part_en}) "
            f"and was not loaded (if it is a correction, load all files again into a new store, "
            f"--db NEW_PATH; if it is a stray draft, move it out of the notices folder)")))
    return outcomes


# What a notice stores, table by table: its columns (the notices row's file_id aside: that is
# the file's, not the notice's), the columns its rows are ordered by, and what the part is
# called in a message saying that a file of the same 文号 differs from the notice stored.
_STORED = {
    "notices": (("notice_no", "title", "fund_name", "issuer", "recipient", "fiscal_year",
                 "project_code", "revenue_code", "revenue_name", "upstream_docs", "stated_total",
                 "amount_unit", "reporting_deadline", "allowed_codes"),
                ("notice_no",), "通知要素", "the notice's particulars"),
    "allocation_lines": (("notice_no", "line_seq", "purpose", "purpose_key", "region", "amount",
                          "function_code", "is_direct"),
                         ("line_seq",), "分配表", "allocation table"),
    "code_rules": (("notice_no", "keyword", "function_code", "clause"),
                   ("keyword", "function_code", "clause"), "科目规则", "code rules"),
    "target_tables": (("notice_no", "table_seq", "purpose", "purpose_key", "fiscal_year", "unit_name",
                       "manager", "budget_total", "budget_fiscal", "budget_other", "overall_goal"),
                      ("table_seq",), "绩效目标表", "performance target tables"),
    "target_indicators": (("notice_no", "table_seq", "indicator_seq", "level1", "level2", "name",
                           "target_text", "op", "target_value", "target_unit", "qualitative", "basis",
                           "last_year", "weight", "scoring_rule", "evidence"),
                          ("table_seq", "indicator_seq"), "绩效指标", "performance indicators"),
}


def _notice_rows(n: Notice) -> dict[str, list[list]]:
    """The rows a notice is stored as, in the columns of _STORED."""
    return {
        "notices": [[n.notice_no, n.title, n.fund_name, n.issuer, n.recipient, n.fiscal_year,
                     n.project_code, n.revenue_code, n.revenue_name, list(n.upstream_docs),
                     n.stated_total, n.amount_unit, n.reporting_deadline, list(n.allowed_codes)]],
        "allocation_lines": [[n.notice_no, ln.seq, ln.purpose, purpose_key(ln.purpose), ln.region,
                              ln.amount, ln.function_code, ln.is_direct] for ln in n.lines],
        "code_rules": [[n.notice_no, r.keyword, r.function_code, r.clause] for r in n.code_rules],
        "target_tables": [[n.notice_no, t.seq, t.purpose, purpose_key(t.purpose), t.fiscal_year,
                           t.unit_name, t.manager, t.budget_total, t.budget_fiscal, t.budget_other,
                           t.overall_goal] for t in n.target_tables],
        "target_indicators": [[n.notice_no, t.seq, i.seq, i.level1, i.level2, i.name, i.target_text,
                               i.op, i.target_value, i.target_unit, i.qualitative, i.basis,
                               i.last_year, i.weight, i.scoring_rule, i.evidence]
                              for t in n.target_tables for i in t.indicators],
    }


def _insert_sql(table: str, *leading: str) -> str:
    columns = (*leading, *_STORED[table][0])  # names from _STORED only; values are parameters
    return f"insert into {table} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})"


def _differs_from_stored(con: duckdb.DuckDBPyConnection, notice: Notice) -> tuple[str, str] | None:
    """The first part (zh, en) in which `notice` differs from the notice of its 文号 stored, or
    None when it says the same. Amounts are compared as stored (to the column's places)."""
    def same(new, old) -> bool:
        if isinstance(new, Decimal) and isinstance(old, Decimal):
            try:
                return new.quantize(old, rounding=ROUND_HALF_UP) == old
            except InvalidOperation:  # more digits than the column holds
                return False
        return new == old

    new_rows = _notice_rows(notice)
    for table, (columns, order, part_zh, part_en) in _STORED.items():
        stored = con.execute(f"select {', '.join(columns)} from {table} where notice_no = ?",
                             [notice.notice_no]).fetchall()

        def key(row, columns=columns, order=order):
            return [row[columns.index(c)] for c in order]

        new, old = sorted(new_rows[table], key=key), sorted(stored, key=key)
        if len(new) != len(old) or not all(same(value, stored_value) for row, stored_row in zip(new, old)
                                           for value, stored_value in zip(row, stored_row)):
            return part_zh, part_en
    return None


def _wan(yuan: Decimal) -> str:
    """元 as 万元, as a notice writes it: 172800.00 -> 17.28, 61110000.00 -> 6111."""
    text = f"{yuan / YUAN_PER_WAN:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _reading_notes(notice: Notice) -> str | None:
    """What a user should know of a notice that loads, though nothing in it is refused: no target
    table (no indicator is measured), a target table budgeting other than its line allocates (a
    slip in one of the two tables), a target table naming no allocation line (its indicators are
    not measured, unless an alias in purpose_aliases.csv names the line), a purpose allocated on
    several lines (a ledger names the purpose, not the line: each line counts all its spending)."""
    notes = []
    keys = [purpose_key(ln.purpose) for ln in notice.lines]
    if not notice.target_tables:
        notes.append("通知中未找到绩效目标表，绩效指标不作测算 / no performance target table found in the "
                     "notice: no indicator is measured")
    for table in notice.target_tables:
        budget = table.budget_fiscal if table.budget_fiscal is not None else table.budget_total
        allocated = [ln.amount for ln, k in zip(notice.lines, keys) if k == purpose_key(table.purpose)]
        if budget is not None and len(allocated) == 1 and budget != allocated[0]:
            notes.append(f"绩效目标表“{table.purpose}”的年度预算（财政拨款）{_wan(budget)} 万元，与分配额 "
                         f"{_wan(allocated[0])} 万元不同，请核对通知 / the target table {table.purpose!r} "
                         f"budgets {_wan(budget)} 万元 (fiscal) where the line allocates {_wan(allocated[0])} "
                         f"万元: check the notice")
        if purpose_key(table.purpose) not in keys:
            notes.append(f"绩效目标表“{table.purpose}”的项目名称不对应分配表中的任何用途，其指标不作测算"
                         f"（名称不同的，可在 purpose_aliases.csv 中配置别名） / the target table "
                         f"{table.purpose!r} names no allocation line: its indicators are not measured "
                         f"(where the names differ, configure an alias in purpose_aliases.csv)")
    for key in dict.fromkeys(k for k in keys if keys.count(k) > 1):
        shared = [ln for ln, k in zip(notice.lines, keys) if k == key]
        where = "、".join(f"第{ln.seq}行" + (f"（{ln.region}）" if ln.region else "") for ln in shared)
        where_en = ", ".join(f"line {ln.seq}" + (f" ({ln.region})" if ln.region else "") for ln in shared)
        notes.append(f"分配表中“{shared[0].purpose}”分配在 {len(shared)} 行（{where}）：账簿只记用途，分不出"
                     f"是哪一行的资金，每行都计入该用途的全部支出 / {shared[0].purpose!r} is allocated on "
                     f"{len(shared)} lines ({where_en}): a ledger names the purpose, not the line, so each "
                     f"line counts all of its spending")
    return "; ".join(notes) or None


def _store_notice(con, path: Path, sha: str, doc: SourceDocument, notice: Notice) -> FileOutcome:
    con.execute("begin transaction")
    try:
        note = _reading_notes(notice)
        file_id = register_file(con, path, sha, KIND, "loaded", fmt=doc.format, encoding=doc.encoding,
                                message=note)
        rows = _notice_rows(notice)
        con.execute(_insert_sql("notices", "file_id"), [file_id, *rows["notices"][0]])
        for table in ("allocation_lines", "code_rules", "target_tables", "target_indicators"):
            if rows[table]:
                con.executemany(_insert_sql(table), rows[table])
        con.execute("update input_files set rows_loaded = ? where file_id = ?", [len(notice.lines), file_id])
        con.execute("commit")
    except duckdb.Error as exc:
        con.execute("rollback")
        error = InputError(path, f"无法保存通知 {notice.notice_no}（{exc}）",
                           f"cannot store notice {notice.notice_no} ({exc})")
        return reject_file(con, path, sha, KIND, error)
    except BaseException:
        con.execute("rollback")
        raise
    return FileOutcome(str(path), KIND, "loaded", file_id, sha, rows_loaded=len(notice.lines), message=note)


def notice_findings(con: duckdb.DuckDBPyConnection, file_ids) -> list:
    """The notice-stage findings (NOTICE_* rules) of the notices loaded from these files.

    Runs whatever the last run's scope was.

    The fact views read run_context; the checks run with it cleared inside a transaction that is
    rolled back, so loading never changes the scope a later `recon check` sees.
    """
    from .checks import run_stage

    ids = [i for i in file_ids if i is not None]
    if not ids:
        return []
    wanted = {row[0] for row in con.execute(
        "select notice_no from notices where list_contains(?, file_id)", [ids]).fetchall()}
    con.execute("begin transaction")
    try:
        con.execute("delete from run_context")
        findings = run_stage(con, "notice")
    finally:
        con.execute("rollback")
    return [f for f in findings if f.notice_no in wanted]
