"""Purpose aliases (项目名称别名): the sub-account names a unit's ledger uses for an allocation line
where they are neither the line's own name nor its core name (the contract: "aliases may be
configured"; sql/facts.sql, fct_purpose_match, matches by them).

`inputs/purpose_aliases.csv`, kept by the finance staff beside the notices and ledgers (edit it
in Excel; UTF-8, UTF-8 with BOM, GBK or GB18030), one row per alias under a header:

    文号,账簿项目名称,分配用途
    克区财综〔2024〕2号,租赁补贴专户,2024年租赁补贴（中央直达）

`recon run` reads it after loading the notices, before reconciling, and replaces the store's
aliases with it in one transaction (with no file, there are none); `recon check` uses what the
last run stored. Names compare as purposes do (brackets, width and spaces folded: purpose_key).
A row whose notice is not loaded (while others are: a mistyped number), whose 分配用途 names no
allocation line of that notice, or whose alias another row gives to another line, rejects the
file whole (InputError naming the file and row: exit 2), and nothing is reconciled until it is
mended. With no notice loaded at all the file is not used, and the run reports that instead. Row 1 is the first row
under the header, as in ledgers.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb

from .ledgers import header_key
from .loading import InputError
from .store import transaction
from .text import decode_text, doc_no, purpose_key

ALIASES_FILE = "purpose_aliases.csv"  # in the inputs folder
MAX_BYTES = 4 << 20  # a few hundred rows is large for this file
HEADINGS = {
    "notice_no": ("文号", "通知文号", "指标文号", "notice_no"),
    "alias": ("账簿项目名称", "项目名称", "别名", "alias", "ledger_purpose"),
    "purpose": ("分配用途", "用途", "分配表用途", "purpose"),
}


def apply_purpose_aliases(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Replace the store's purpose aliases with those of the file at `path` (none when there is
    no file there); return how many there are. InputError when a row cannot be used."""
    lines = {}
    for notice_no, line_seq, key in con.execute(
            "select notice_no, line_seq, purpose_key from allocation_lines").fetchall():
        lines.setdefault(notice_no, {})[key] = line_seq
    # with no notice loaded the run says so (INPUT_MISSING, INPUT_REJECTED): nothing to map
    rows = _read(path) if lines and path.is_file() else []
    aliases: dict[tuple[str, str], tuple[int, int]] = {}  # (notice, alias key) -> (line, row)
    for row, notice_text, alias, purpose in rows:
        notice_no = doc_no(notice_text)
        if notice_no not in lines:
            loaded = "、".join(sorted(lines))
            raise InputError(path, f"文号 {notice_text!r} 不是已加载的通知（已加载：{loaded}）",
                             f"notice {notice_text!r} is not a loaded notice (loaded: {loaded})", row=row)
        line_seq = lines[notice_no].get(purpose_key(purpose))
        if line_seq is None:
            raise InputError(path, f"分配用途 {purpose!r} 不是通知 {notice_no} 分配表中的用途",
                             f"{purpose!r} is not a purpose of notice {notice_no}'s allocation "
                             f"table", row=row)
        key = (notice_no, purpose_key(alias))
        if aliases.get(key, (line_seq, row))[0] != line_seq:
            raise InputError(path, f"账簿项目名称 {alias!r} 已在第 {aliases[key][1]} 行指向另一用途",
                             f"{alias!r} is given to another purpose on row {aliases[key][1]}",
                             row=row)
        aliases.setdefault(key, (line_seq, row))
    with transaction(con):
        con.execute("delete from purpose_aliases")
        if aliases:
            con.executemany("insert into purpose_aliases (notice_no, alias_key, line_seq) "
                            "values (?, ?, ?)",
                            [[notice_no, alias_key, line_seq]
                             for (notice_no, alias_key), (line_seq, _) in aliases.items()])
    return len(aliases)


def _read(path: Path) -> list[tuple[int, str, str, str]]:
    """The file's rows as (row, notice, alias, purpose); blank rows are passed over."""
    if path.stat().st_size > MAX_BYTES:
        raise InputError(path, f"文件超过 {MAX_BYTES >> 20} MB，不像别名表",
                         f"larger than {MAX_BYTES >> 20} MB: not an alias table")
    decoded = decode_text(path.read_bytes())
    if decoded is None:
        raise InputError(path, "无法识别文件编码；请在 Excel 中另存为 CSV（UTF-8 或 GBK）",
                         "cannot tell the file's encoding; save it from Excel as CSV (UTF-8 or "
                         "GBK)")
    text = decoded[0]
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","  # Excel's "Unicode text" is tabbed
    table = [[c.strip() for c in r] for r in csv.reader(io.StringIO(text), delimiter=delimiter)]
    filled = [i for i, r in enumerate(table) if any(r)]
    if not filled:
        return []
    header, where = filled[0], {}
    for field, headings in HEADINGS.items():
        keys = {header_key(h) for h in headings}
        found = [i for i, cell in enumerate(table[header]) if header_key(cell) in keys]
        if not found:
            raise InputError(path, f"缺少列：{headings[0]}（表头应为 文号,账簿项目名称,分配用途）",
                             f"column missing: {headings[-1]} (the header is 文号,账簿项目名称,分配用途)")
        where[field] = found[0]
    rows = []
    for row, cells in enumerate(table[header + 1:], start=1):
        if not any(cells):
            continue
        values = [cells[where[f]] if where[f] < len(cells) else "" for f in HEADINGS]
        if not all(values):
            raise InputError(path, "文号、账簿项目名称、分配用途都要填写",
                             "notice, alias and purpose are each required", row=row)
        rows.append((row, *values))
    return rows
