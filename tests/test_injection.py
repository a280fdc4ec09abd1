"""Text from inputs never becomes SQL, a spreadsheet formula, markup or a path.

Ledger cells, column headings, file names and notice text are all attacker-controlled: an export
is hand-edited in Excel and may carry text crafted for whoever opens the report. Every test runs
the real pipeline (`recon run` or `recon load`) and inspects the store and the written reports.
"""
from __future__ import annotations

import csv
import html.parser
import os
import re
import shutil
import zipfile
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

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
# xlsxwriter (constant-memory mode) writes a string that starts with <r> and ends with </r> into
# the sheet as raw XML: the second would add a formula cell, or break the file
XML_PAYLOADS = [
    "<r><t>富文本</t></r>",
    '<r></t></is></c><c r="Z1"><f>HYPERLINK("http://evil","x")</f></c><c r="Z2" t="inlineStr"><is><t></r>',
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


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


DEBIT_HEADING = '借方金额"; drop table ledger_lines; --'
JUNK_HEADINGS = ['凭证号"; drop table x; --', "'); drop table notices; --", "c0", "row_no", "#1", "`x`", "$file_id"]
HOSTILE_NAMES = [
    "x\\..\\..\\evil.csv",
    "evil\nname.csv",
    "$(touch pwned).csv",
    "; touch pwned2 #.csv",
    "-rf.csv",
    " .csv",
]
NOTICE_PURPOSE = "2024年<script>alert(5)</script>租赁补贴（中央直达）"


def _write_hostile_inputs(work: Path, outside: Path) -> Path:
    """Every kind of hostile text in one inputs folder (distinct vouchers: no file supersedes another)."""
    from pipeline.ledgers import FIELDS

    inputs = hc.write_inputs(work)
    ledgers = inputs / "ledgers"
    # SQL in every text cell
    hc.write_csv(ledgers / "sql.csv", [unmatched_row(p, p, p, p) for p in SQL_PAYLOADS])
    # SQL in headings: ignored ones, and one a site alias makes the real debit column
    (ledgers / "presets.toml").write_text(
        "[presets.cn-grp]\ndebit = ['借方金额\"; drop table ledger_lines; --']\n", encoding="utf-8")
    header = [DEBIT_HEADING if h == "借方金额" else h for h in HEADER] + JUNK_HEADINGS
    rows = [r + [f"v{i}" for i in range(len(JUNK_HEADINGS))] for r in hc.hostile_rows(3, start=1)]
    rows[1][HEADER.index("借方金额")] = "1.2.3"
    hc.write_csv(ledgers / "headings.csv", rows, header)
    # SQL in Parquet column names
    import duckdb

    con = duckdb.connect()
    names = list(FIELDS) + ['x"; drop table ledger_lines; --', "'); drop table notices; --"]
    con.execute("create table t (" + ", ".join(f'"{n.replace(chr(34), chr(34) * 2)}" varchar' for n in names) + ")")
    for r in hc.hostile_rows(2, start=10):
        con.execute(f"insert into t values ({', '.join('?' * len(names))})", r + ["a", "b"])
    con.execute("copy t to ? (format parquet)", [str(ledgers / "names.parquet")])
    con.close()
    # spreadsheet formulas, and one as a bad amount (quarantined: shown as the observed value)
    rows = [unmatched_row(p, f"{p}（中央直达）", p, p) for p in FORMULA_PAYLOADS]
    bad = hc.hostile_rows(1, start=50)[0]
    bad[HEADER.index("借方金额")] = '=HYPERLINK("http://evil","amount")'
    hc.write_csv(ledgers / "formulas.csv", rows + [bad])
    # markup
    hc.write_csv(ledgers / "markup.csv", [unmatched_row(p, f"{p}（中央直达）", p, p)
                                          for p in HTML_PAYLOADS + XML_PAYLOADS])
    # file names that are formulas or markup, rejected (empty): their names reach the reports
    (ledgers / "=1+2.csv").write_bytes(b"")
    (ledgers / "<img src=x onerror=alert(9)>.csv").write_bytes(b"")
    # file names that look like paths or shell, and text that looks like paths
    for i, name in enumerate(HOSTILE_NAMES):
        hc.write_csv(ledgers / name, [unmatched_row(f"记-P{i}", "../../etc/passwd", "/tmp/evil", "../../../evil")])
    hc.write_csv(ledgers / "..\\..\\evil.csv", [unmatched_row("记-PX", "x", "x", "x")])
    # terminal control sequences and a bidi override in a file name and in a bad cell: printed
    # on stderr (quarantined row, rejected file), they must arrive escaped
    rows = hc.hostile_rows(2, start=80)
    rows[1][HEADER.index("借方金额")] = "12\x1b[31ma\n拒收 / rejected: 伪造的一行"
    hc.write_csv(ledgers / "esc\x1b[2J\u202egnp.csv", rows)
    (ledgers / "\x1b]0;pwned\x07.csv").write_bytes(b"")
    # a symlink to an export outside the inputs folder (read, never written)
    hc.write_csv(outside, hc.hostile_rows(1, start=70))
    os.symlink(outside, ledgers / "link.csv")
    # markup in a notice (its own project code, so the good ledger does not tie to it)
    text = hc.notice_variant(93, {"2024年租赁补贴（中央直达）": NOTICE_PURPOSE,
                                  "10000013Z135080000028": "10000013Z135080000093"})
    (inputs / "notices" / "markup_notice.txt").write_text(text, encoding="utf-8")
    return inputs


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """One `recon run` over every hostile input, from an empty working folder; what it wrote."""
    root = tmp_path_factory.mktemp("injection")
    work = root / "work"
    work.mkdir()
    inputs = _write_hostile_inputs(work, root / "outside.csv")
    cwd = root / "cwd"
    cwd.mkdir()
    out = work / "out"
    before = _tree(root)
    before_inputs = _tree(inputs)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        ran = run(inputs, out)
    return SimpleNamespace(root=root, inputs=inputs, out=out, db=out / "recon.duckdb", ran=ran,
                           run_dir=(out / "latest").resolve(), before=before,
                           before_inputs=before_inputs, after=_tree(root), cwd=cwd)


def test_injection__run_survives_everything_hostile(hostile):
    assert hostile.ran.exit_code == 2  # the three empty files are rejected; everything else ran
    assert set(TABLES) <= tables_present(hostile.db)
    assert hc.store_consistency_problems(hostile.db) == []
    # headings.csv 2 rows + names.parquet 2 rows + the escapes file 1 row + the linked export
    # 1 row; the other hostile rows are unmatched or quarantined
    assert hc.spent_by_purpose(hostile.run_dir) == {**GOOD_SPENT, DILAPIDATED: Decimal("6000.00")}


def test_injection__no_terminal_control_sequences_on_stderr(hostile):
    """File names and cell values reach stderr (rejections, quarantined rows) escaped: no escape
    sequence, bell or bidi override gets through, and no input can forge a line of its own."""
    err = hostile.ran.stderr
    for ch in ("\x1b", "\x07", "\u202e"):
        assert ch not in err, repr(ch)
    assert "\\x1b[2J" in err and "\\u202e" in err and "\\x07" in err  # shown, escaped
    lines = err.splitlines()
    assert all(line.startswith(("拒收 / rejected:", "隔离 / quarantined:")) for line in lines), lines
    assert sum(line.startswith("拒收 / rejected:") for line in lines) == 3
    assert sum(line.startswith("隔离 / quarantined:") for line in lines) == len(
        hc.query(hostile.db, "select * from quarantine q join input_files f using (file_id) "
                             "where f.status = 'loaded'"))


def test_injection__no_forged_log_lines(hostile):
    """The log (outputs/logs/recon.log) gets one line per record whatever a file is called
    ("evil\\nname.csv") or contains: every line starts with its timestamp."""
    log = (hostile.out / "logs" / "recon.log").read_text(encoding="utf-8")
    assert "\x1b" not in log and "\u202e" not in log
    for line in log.splitlines():
        assert re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} pid=\d+ ", line), line
    assert "evil\\x0aname.csv" in log


# --------------------------------------------------------------------------------------------
# SQL


def test_injection__sql_in_cells_loads_as_plain_text(hostile):
    stored = hc.query(hostile.db, "select voucher_no, purpose, payee, summary from ledger_lines l "
                                  "join input_files f using (file_id) where f.name = 'sql.csv' order by row_no")
    assert stored == [(p, p, p, p) for p in SQL_PAYLOADS]
    findings = hc.read_csv_rows(hostile.run_dir / "exceptions.csv")
    unmatched = {f["voucher_no"] for f in findings
                 if f["rule_id"] == "UNMATCHED_EXPENDITURE" and f["source_file"] == "sql.csv"}
    assert unmatched == set(SQL_PAYLOADS)


def test_injection__sql_in_column_headings_is_never_an_identifier(hostile):
    """Unknown headings are ignored, whatever they say; a hostile heading made a real column by a
    site alias (presets.toml beside the ledgers) is only ever data: it appears, verbatim, as the
    column named by a quarantined row's finding."""
    state = hc.file_state(hostile.db, "headings.csv")
    assert state["status"] == "loaded" and state["lines"] == 2 and state["bad_rows"] == (2,), state
    assert hc.query(hostile.db, "select column_name, value from quarantine where file_id = ?",
                    [state["file_id"]]) == [(DEBIT_HEADING, "1.2.3")]
    findings = hc.read_csv_rows(hostile.run_dir / "exceptions.csv")
    assert any(f["rule_id"] == "INPUT_ROW_INVALID" and DEBIT_HEADING in f["message"] for f in findings)


def test_injection__sql_in_parquet_column_names(hostile):
    state = hc.file_state(hostile.db, "names.parquet")
    assert state["status"] == "loaded" and state["lines"] == 2, state


def test_injection__sql_in_scope_options(hostile, tmp_path):
    """--purpose and --notice are user text too: parameters, never SQL."""
    db = tmp_path / "recon.duckdb"
    shutil.copy2(hostile.db, db)
    lines = hc.query(db, "select count(*) from ledger_lines")
    out = tmp_path / "out"
    ran = invoke(["check", "--db", str(db), "--outputs", str(out), "--as-of", AS_OF,
                  "--purpose", "'); drop table ledger_lines; --"])
    # the scope matches no allocation line: refused, naming it as text
    assert ran.exit_code == 2 and "'); drop table ledger_lines; --" in ran.stderr
    assert "\x1b" not in ran.stderr  # the purposes it lists come from the notice: printable
    ran = invoke(["check", "--db", str(db), "--outputs", str(out), "--as-of", AS_OF,
                  "--notice", "克区财综〔2024〕2号%' or 1=1 --"])
    assert ran.exit_code in (0, 1)
    assert {r["notice_no"] for r in hc.read_csv_rows((out / "latest").resolve() / "summary.csv")} == {NOTICE_NO}
    assert set(TABLES) <= tables_present(db)
    assert hc.query(db, "select count(*) from ledger_lines") == lines


# --------------------------------------------------------------------------------------------
# Spreadsheet formulas


def _dangerous(cell: str) -> bool:
    from pipeline.reports.common import _PLAIN_NUMBER

    return bool(cell) and cell[0] in "=+-@\t\r" and not _PLAIN_NUMBER.fullmatch(cell)


def test_injection__no_formula_in_csv_reports(hostile):
    seen = set()
    for name in ("exceptions.csv", "summary.csv", "indicators.csv"):
        with open(hostile.run_dir / name, encoding="utf-8-sig", newline="") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    assert not _dangerous(cell), f"{name}: {cell!r} would run as a formula"
                    seen.add(cell)
    for p in FORMULA_PAYLOADS:  # each payload is present (trimmed at load or not), neutralised
        assert {"'" + p, "'" + p.strip()} & seen, (p, sorted(c for c in seen if c.startswith("'")))
    assert "'=1+2.csv" in seen
    assert any('=HYPERLINK("http://evil","amount")' in c for c in seen)


def test_injection__no_formula_in_workbook(hostile):
    path = hostile.run_dir / "report.xlsx"
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
    assert any("=1+2.csv" in t for t in texts)
    for p in XML_PAYLOADS:  # a voucher number that is XML is a cell of its own, as written
        assert p in texts, p


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


def test_injection__no_markup_in_html_report(hostile):
    page = (hostile.run_dir / "report.html").read_text(encoding="utf-8")
    parser = _Elements()
    parser.feed(page)
    for tag, attrs in parser.tags:
        for name in attrs:
            assert not name.startswith("on"), (tag, attrs)
        if tag == "img":
            assert attrs.get("src") != "x", attrs
    assert "alert" not in "".join(parser.script_text)
    assert "<script>alert" not in page and "<img src=x" not in page and "<svg onload" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;img src=x onerror=alert(9)&gt;.csv" in page  # the rejected file's name, escaped


def test_injection__no_markup_from_notice_text(hostile):
    """Notice text (purposes) reaches the report too; it is escaped like ledger text."""
    state = hc.file_state(hostile.db, "markup_notice.txt")
    page = (hostile.run_dir / "report.html").read_text(encoding="utf-8")
    assert "<script>alert(5)" not in page
    assert state["status"] == "loaded", state
    assert hc.query(hostile.db, "select count(*) from allocation_lines where purpose = ?", [NOTICE_PURPOSE]) == [(1,)]
    assert "&lt;script&gt;alert(5)&lt;/script&gt;" in page


# --------------------------------------------------------------------------------------------
# Paths


def test_injection__paths_from_inputs_stay_in_outputs(hostile):
    """File names, notice numbers and text from inputs never become a path: a run writes only
    under --outputs (nothing in the inputs, the working folder or beside them)."""
    new = {p for p in hostile.after - hostile.before if not p.startswith(str(Path("work") / "out"))}
    assert new == set(), f"written outside --outputs: {sorted(new)}"
    assert _tree(hostile.inputs) == hostile.before_inputs
    assert list(hostile.cwd.iterdir()) == []
    # run ids are generated, never taken from inputs
    runs = list((hostile.out / "runs").iterdir())
    assert len(runs) == 1 and re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", runs[0].name), runs
    loaded = hc.query(hostile.db, "select name from input_files where kind = 'ledger' and status = 'loaded'")
    assert set(HOSTILE_NAMES) | {"link.csv"} <= {n for (n,) in loaded}
    # names starting with a dot are hidden files, never offered (so `..\..\evil.csv` is ignored)
    assert hc.query(hostile.db, "select count(*) from input_files where name like '..%'") == [(0,)]


def test_injection__notice_number_never_a_path():
    """A notice number given on the command line is read as a document number: one that smuggles
    a path is refused as bad usage, or reduced to the canonical number it contains."""
    import click

    from pipeline.cli import _scope

    for bad in ("../../x〔2024〕2号", "/etc/passwd", "..\\..\\"):
        with pytest.raises(click.BadParameter):
            _scope(None, bad, None, None, None)
    scope = _scope(None, "克区财综〔2024〕2号/../../../evil", None, None, None)
    assert scope.notice_no == NOTICE_NO
    ran = invoke(["check", "--notice", "../../x〔2024〕2号", "--db", "/nonexistent/never-created.duckdb"])
    assert ran.exit_code == 2 and not Path("/nonexistent").exists()
