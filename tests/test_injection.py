"""Text from inputs never becomes SQL, a spreadsheet formula, markup or a path.

Ledger cells, column headings, file names and notice text are all attacker-controlled: an export
is hand-edited in Excel and may carry text crafted for whoever opens the report. Every test runs
the real pipeline (`recon run` or `recon load`) and inspects the store and the written reports.
"""
from __future__ import annotations

import html.parser
import os
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest

import hostile_corpus as hc
from hostile_corpus import AS_OF, DILAPIDATED, GOOD_SPENT, HEADER, NOTICE_NO, invoke

SQL_PAYLOADS = [
    "'); drop table ledger_lines; --",
    "\"; drop table notices; --",
    "' or '1'='1",
    "1; delete from input_files where 1=1; --",
    "$file_id",
    "?",
    "{'a': 1}",
    "\\'; select 1; --",
]
FORMULA_PAYLOADS = [
    '=HYPERLINK("http://evil","click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1)",
    "-2+3",
    "=1+1",
    "\t=1+2",
    "\r=3+4",
]
HTML_PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\" onmouseover=\"alert(1)",
    "</td></tr></table><script>alert(2)</script>",
    "<svg onload=alert(3)>",
]
TABLES = ("input_files", "notices", "allocation_lines", "ledger_lines", "quarantine", "runs",
          "findings", "run_summary", "run_inputs", "waivers", "code_rules", "target_tables",
          "target_indicators")


def unmatched_row(voucher: str, purpose: str, payee: str, summary: str) -> list[str]:
    """A budget-book payment tied to the seed notice whose purpose names no allocation line: it
    becomes an UNMATCHED_EXPENDITURE finding that carries its voucher and purpose into every report."""
    return hc.budget_row(voucher, "2024-04-15", "100.00", purpose, "2210103 棚户区改造", payee,
                         summary=summary)


def run(inputs: Path, out: Path, *extra: str) -> hc.Ran:
    return invoke(["run", "--inputs", str(inputs), "--outputs", str(out), "--as-of", AS_OF, *extra])


def tables_present(db: Path) -> set[str]:
    return {r[0] for r in hc.query(db, "select table_name from information_schema.tables")}


# --------------------------------------------------------------------------------------------
# SQL


def test_injection__sql_in_cells_loads_as_plain_text(tmp_path):
    inputs = hc.write_inputs(tmp_path)
    rows = [unmatched_row(p, p, p, p) for p in SQL_PAYLOADS]
    hc.write_csv(inputs / "ledgers" / "sql.csv", rows)
    out = tmp_path / "out"
    ran = run(inputs, out)
    db = out / "recon.duckdb"
    assert ran.exit_code == 1  # the unmatched payments are findings, nothing else
    assert set(TABLES) <= tables_present(db)
    stored = hc.query(db, "select voucher_no, purpose, payee, summary from ledger_lines l "
                          "join input_files f using (file_id) where f.name = 'sql.csv' order by row_no")
    assert stored == [(p, p, p, p) for p in SQL_PAYLOADS]
    assert hc.query(db, "select count(*) from input_files where status = 'loaded'") == [(3,)]
    findings = hc.read_csv_rows((out / "latest").resolve() / "exceptions.csv")
    unmatched = {f["voucher_no"] for f in findings if f["rule_id"] == "UNMATCHED_EXPENDITURE"}
    assert unmatched == set(SQL_PAYLOADS)
    assert hc.spent_by_purpose((out / "latest").resolve()) == {**GOOD_SPENT, DILAPIDATED: 0}


def test_injection__sql_in_column_headings_is_never_an_identifier(tmp_path):
    """Unknown headings are ignored, whatever they say; a hostile heading made a real column by a
    site alias (presets.toml beside the ledgers) is only ever data: it appears, verbatim, as the
    column named by a quarantined row's finding."""
    inputs = hc.write_inputs(tmp_path)
    debit = '借方金额"; drop table ledger_lines; --'
    (inputs / "ledgers" / "presets.toml").write_text(
        "[presets.cn-grp]\ndebit = ['借方金额\"; drop table ledger_lines; --']\n", encoding="utf-8")
    junk = ['凭证号"; drop table x; --', "'); drop table notices; --", "c0", "row_no", "#1", "`x`", "$file_id"]
    header = [debit if h == "借方金额" else h for h in HEADER] + junk
    rows = [r + [f"v{i}" for i in range(len(junk))] for r in hc.hostile_rows(3)]
    rows[1][HEADER.index("借方金额")] = "1.2.3"
    hc.write_csv(inputs / "ledgers" / "headings.csv", rows, header)
    out = tmp_path / "out"
    ran = run(inputs, out)
    db = out / "recon.duckdb"
    assert set(TABLES) <= tables_present(db)
    state = hc.file_state(db, "headings.csv")
    assert state["status"] == "loaded" and state["lines"] == 2 and state["bad_rows"] == (2,), state
    assert hc.query(db, "select column_name, value from quarantine where file_id = ?",
                    [state["file_id"]]) == [(debit, "1.2.3")]
    findings = hc.read_csv_rows((out / "latest").resolve() / "exceptions.csv")
    assert any(f["rule_id"] == "INPUT_ROW_INVALID" and debit in f["message"] for f in findings)
    assert ran.exit_code == 1
    assert hc.spent_by_purpose((out / "latest").resolve())[DILAPIDATED] == 2000


def test_injection__sql_in_parquet_column_names(tmp_path):
    import duckdb

    from pipeline.ledgers import FIELDS

    inputs = hc.write_inputs(tmp_path)
    path = inputs / "ledgers" / "names.parquet"
    con = duckdb.connect()
    names = list(FIELDS) + ['x"; drop table ledger_lines; --', "'); drop table notices; --"]
    con.execute("create table t (" + ", ".join(f'"{n.replace(chr(34), chr(34) * 2)}" varchar' for n in names) + ")")
    for r in hc.hostile_rows(2):
        con.execute(f"insert into t values ({', '.join('?' * len(names))})", r + ["a", "b"])
    con.execute("copy t to ? (format parquet)", [str(path)])
    con.close()
    out = tmp_path / "out"
    ran = run(inputs, out)
    db = out / "recon.duckdb"
    assert ran.exit_code == 0, ran.stderr
    assert set(TABLES) <= tables_present(db)
    assert hc.file_state(db, "names.parquet")["lines"] == 2
    assert hc.spent_by_purpose((out / "latest").resolve())[DILAPIDATED] == 2000


@pytest.mark.parametrize("payload", ["'); drop table ledger_lines; --", "%' or 1=1 --"])
def test_injection__sql_in_scope_options(tmp_path, payload):
    """--purpose and --notice are user text too: parameters, never SQL."""
    inputs = hc.write_inputs(tmp_path)
    out = tmp_path / "out"
    run(inputs, out)
    ran = invoke(["check", "--outputs", str(out), "--as-of", AS_OF, "--purpose", payload])
    assert ran.exit_code in (0, 1)
    db = out / "recon.duckdb"
    assert set(TABLES) <= tables_present(db)
    # the scope matched nothing: no allocation line is summarised under that purpose
    assert hc.read_csv_rows((out / "latest").resolve() / "summary.csv") == []
    ran = invoke(["check", "--outputs", str(out), "--as-of", AS_OF, "--notice", "克区财综〔2024〕2号" + payload])
    assert ran.exit_code in (0, 1, 2)
    assert hc.query(db, "select count(*) from ledger_lines") == [(len(hc.good_rows()),)]


# --------------------------------------------------------------------------------------------
# Spreadsheet formulas


def _formula_inputs(tmp_path) -> Path:
    inputs = hc.write_inputs(tmp_path)
    rows = [unmatched_row(p, f"{p}（中央直达）", p, p) for p in FORMULA_PAYLOADS]
    # a quarantined row: the bad value itself is shown in exceptions.csv (observed, message)
    bad = hc.hostile_rows(1, start=50)[0]
    bad[HEADER.index("借方金额")] = '=HYPERLINK("http://evil","amount")'
    hc.write_csv(inputs / "ledgers" / "formulas.csv", rows + [bad])
    # a file whose very name is a formula, rejected: its name is in INPUT_REJECTED's source_file
    (inputs / "ledgers" / "=1+2.csv").write_bytes(b"")
    return inputs


def _dangerous(cell: str) -> bool:
    from pipeline.reports.common import _PLAIN_NUMBER

    return bool(cell) and cell[0] in "=+-@\t\r" and not _PLAIN_NUMBER.fullmatch(cell)


def test_injection__no_formula_in_csv_reports(tmp_path):
    inputs = _formula_inputs(tmp_path)
    out = tmp_path / "out"
    ran = run(inputs, out)
    assert ran.exit_code == 2  # the empty "=1+2.csv" is rejected
    run_dir = (out / "latest").resolve()
    seen = set()
    for name in ("exceptions.csv", "summary.csv", "indicators.csv"):
        import csv

        with open(run_dir / name, encoding="utf-8-sig", newline="") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    assert not _dangerous(cell), f"{name}: {cell!r} would run as a formula"
                    seen.add(cell)
    for p in FORMULA_PAYLOADS:  # each payload is present (cells are trimmed at load), neutralised
        assert "'" + p.strip() in seen, p
    assert "'=1+2.csv" in seen
    assert any('=HYPERLINK("http://evil","amount")' in c for c in seen)


def test_injection__no_formula_in_workbook(tmp_path):
    inputs = _formula_inputs(tmp_path)
    out = tmp_path / "out"
    run(inputs, out)
    path = (out / "latest").resolve() / "report.xlsx"
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if name.startswith("xl/worksheets/"):
                assert not re.search(rb"<f[ >]", zf.read(name)), f"{name} has a formula element"
    wb = openpyxl.load_workbook(path)
    texts = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    texts.append(cell.value)
    for p in FORMULA_PAYLOADS:  # each payload is there, as text
        assert any(p.strip() in t for t in texts), p


# --------------------------------------------------------------------------------------------
# HTML


class _Elements(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.script_text.append(data)


def test_injection__no_markup_in_html_report(tmp_path):
    inputs = hc.write_inputs(tmp_path)
    rows = [unmatched_row(p, f"{p}（中央直达）", p, p) for p in HTML_PAYLOADS]
    hc.write_csv(inputs / "ledgers" / "markup.csv", rows)
    (inputs / "ledgers" / "<img src=x onerror=alert(9)>.csv").write_bytes(b"")
    out = tmp_path / "out"
    run(inputs, out)
    page = ((out / "latest").resolve() / "report.html").read_text(encoding="utf-8")
    parser = _Elements()
    parser.feed(page)
    for tag, attrs in parser.tags:
        assert tag not in ("script", "svg") or "alert" not in "".join(parser.script_text), tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, attrs)
        if tag == "img":
            assert attrs.get("src") != "x", attrs
    assert "alert" not in "".join(parser.script_text)
    assert "<script>alert" not in page and "<img src=x" not in page and "<svg onload" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;img src=x onerror=alert(9)&gt;.csv" in page  # the rejected file's name, escaped


def test_injection__no_markup_from_notice_text(tmp_path):
    """Notice text (title, purposes) reaches the report too; it is escaped like ledger text."""
    inputs = hc.write_inputs(tmp_path)
    purpose = "2024年<script>alert(5)</script>租赁补贴（中央直达）"
    text = hc.notice_variant(93, {"2024年租赁补贴（中央直达）": purpose})
    (inputs / "notices" / "markup_notice.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    ran = run(inputs, out)
    db = out / "recon.duckdb"
    state = hc.file_state(db, "markup_notice.txt")
    page = ((out / "latest").resolve() / "report.html").read_text(encoding="utf-8")
    assert "<script>alert(5)" not in page
    if state["status"] == "loaded":
        assert hc.query(db, "select count(*) from allocation_lines where purpose = ?", [purpose]) == [(1,)]
        assert "&lt;script&gt;alert(5)&lt;/script&gt;" in page
    else:
        assert ran.exit_code == 2


# --------------------------------------------------------------------------------------------
# Paths


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


HOSTILE_NAMES = [
    "x\\..\\..\\evil.csv",
    "evil\nname.csv",
    "$(touch pwned).csv",
    "; touch pwned2 #.csv",
    "-rf.csv",
    " .csv",
]


def test_injection__paths_from_inputs_stay_in_outputs(tmp_path, monkeypatch):
    """File names, notice numbers and text from inputs never become a path: a run writes only
    under --outputs (nothing in the inputs, the working folder or beside them)."""
    work = tmp_path / "work"
    work.mkdir()
    inputs = hc.write_inputs(work)
    for i, name in enumerate(HOSTILE_NAMES):
        rows = [unmatched_row(f"记-P{i}", "../../etc/passwd", "/tmp/evil", "../../../evil")]
        hc.write_csv(inputs / "ledgers" / name, rows)
    hc.write_csv(inputs / "ledgers" / "..\\..\\evil.csv", [unmatched_row("记-PX", "x", "x", "x")])
    # a symlink named like a traversal, pointing at a good export outside inputs
    outside = tmp_path / "outside.csv"
    hc.write_csv(outside, hc.hostile_rows(1, start=70))
    os.symlink(outside, inputs / "ledgers" / "link.csv")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = work / "out"
    before_inputs = _tree(inputs)
    before_root = _tree(tmp_path)
    ran = run(inputs, out)
    assert ran.exit_code in (0, 1, 2)
    after_root = _tree(tmp_path)
    new = {p for p in after_root - before_root if not p.startswith(str(Path("work") / "out"))}
    assert new == set(), f"written outside --outputs: {sorted(new)}"
    assert _tree(inputs) == before_inputs
    assert list(cwd.iterdir()) == []
    # run ids are generated, never taken from inputs
    runs = list((out / "runs").iterdir())
    assert len(runs) == 1 and re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", runs[0].name), runs
    db = out / "recon.duckdb"
    loaded = hc.query(db, "select name from input_files where kind = 'ledger' and status = 'loaded'")
    assert sorted(n for (n,) in loaded) == sorted(["good.csv", "link.csv", *HOSTILE_NAMES])
    # names starting with a dot are hidden files, never offered (so `..\\..\\evil.csv` is ignored)
    assert hc.query(db, "select count(*) from input_files where name like '..%'") == [(0,)]


def test_injection__notice_number_never_a_path(tmp_path):
    """A notice number given on the command line is checked as a document number; one that
    smuggles a path is refused as bad usage (exit 2), writing nothing."""
    inputs = hc.write_inputs(tmp_path)
    out = tmp_path / "out"
    for bad in ("../../x〔2024〕2号", "/etc/passwd", "克区财综〔2024〕2号/../../../evil"):
        before = _tree(tmp_path)
        ran = invoke(["run", "--inputs", str(inputs), "--outputs", str(out), "--as-of", AS_OF,
                      "--notice", bad])
        created = {p for p in _tree(tmp_path) - before if not p.startswith("out")}
        assert created == set(), created
        if ran.exit_code == 2:
            continue
        # accepted only as the canonical number it contains: reports under runs/<generated id>
        for d in (out / "runs").iterdir():
            assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", d.name), d
