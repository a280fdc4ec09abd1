"""Build a Word (.docx) copy of a text notice, as the issuing office would have typed it.

Used by tests/test_notices.py at test time (into tmp_path), so no binary is committed. The text
layout is the seed's (table cells are tab-prefixed lines, a blank line ends a row); the document
gets:

- paragraphs for the text lines;
- one Word table for the allocation table and one for each 项目支出绩效目标表, whose title and
  "(2024年)" lines become paragraphs above the table (or, on request, its first rows);
- a fixed grid per table: a row with fewer cells than the grid has its last cell spanning the rest
  (horizontal merge); blank 一级指标 / 二级指标 cells are merged into the cell above (vertical merge),
  which is what "merged cells come out blank" in the text export means.

The tokenising below is deliberately independent of pipeline.notices, so a bug there cannot hide
itself by being copied into the fixture.
"""
from __future__ import annotations

import re
from pathlib import Path

import docx

_TITLE_ROW = re.compile(r"绩效目标表|^[（(]\s*\d{4}\s*年\s*[)）]$")


def _tokens(text: str) -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = []
    row: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("\t"):
            row = (row or []) + [line[1:].strip()]
            continue
        if row is not None:
            items.append(("row", row))
            row = None
        if line.strip():
            items.append(("p", line.strip()))
    if row is not None:
        items.append(("row", row))
    return items


def _blocks(text: str, titles_in_table: bool) -> list[tuple[str, object]]:
    """('p', text) and ('table', rows) in document order."""
    blocks: list[tuple[str, object]] = []
    for kind, value in _tokens(text):
        title = kind == "row" and "绩效目标表" in re.sub(r"\s+", "", "".join(value))
        if kind == "row" and _TITLE_ROW.search(re.sub(r"\s+", "", "".join(value))) and not titles_in_table:
            # the table title and year, typed with spacing: keep the text as written
            blocks.append(("p", " ".join(c for c in value if c)))
        elif kind == "row":
            if blocks and blocks[-1][0] == "table" and not title:
                blocks[-1][1].append(value)
            else:
                blocks.append(("table", [value]))
        else:
            blocks.append((kind, value))
    return blocks


def _add_table(document, rows: list[list[str]], merge: bool) -> None:
    width = max(len(r) for r in rows)
    table = document.add_table(rows=len(rows), cols=width)
    table.style = "Table Grid"
    for r, cells in enumerate(rows):
        for c, value in enumerate(cells):
            table.cell(r, c).text = value
    # horizontal merges: the last cell of a short row spans the rest of the grid
    for r, cells in enumerate(rows):
        if len(cells) < width:
            table.cell(r, len(cells) - 1).merge(table.cell(r, width - 1))
    if not merge:
        return
    # vertical merges of blank level cells in the indicator rows of a target table
    header = next((i for i, cells in enumerate(rows) if "一级指标" in cells), None)
    if header is None:
        return
    for col in (0, 1):
        top = None
        for r in range(header + 1, len(rows)):
            cells = rows[r]
            if len(cells) < width:
                top = None
            elif cells[col]:
                top = r
            elif top is not None:
                table.cell(top, col).merge(table.cell(r, col))


def build_notice_docx(text: str, out: Path, *, merge: bool = True, titles_in_table: bool = False) -> Path:
    """Write `text` (the seed's layout) as a .docx at `out` and return the path.

    merge: blank level cells become vertical merges (else they stay blank cells);
    titles_in_table: the 项目支出绩效目标表 title and year are the first rows of each target
    table (merged across it) instead of paragraphs above it.
    """
    document = docx.Document()
    for kind, value in _blocks(text, titles_in_table):
        if kind == "p":
            document.add_paragraph(value)
        else:
            _add_table(document, value, merge)
    out = Path(out)
    document.save(str(out))
    return out
