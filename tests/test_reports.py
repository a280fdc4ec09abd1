"""Reports written from the store: report.xlsx, the CSVs, run.json and `recon report`.

The store is filled by direct inserts (a notice, its allocation lines, one run with its summary,
findings and indicators), so these tests do not depend on the loaders or the checks. Some input
text is hostile on purpose: `=HYPERLINK(...)` must stay text in every spreadsheet, and
`<script>` must stay text in the page (tests/test_reports_html.py).
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import re
import sys
import zipfile
import zlib
from decimal import Decimal
from itertools import islice
from pathlib import Path

import duckdb
import openpyxl
import pytest
import xlsxwriter.workbook
from click.testing import CliRunner

from pipeline.findings import SEVERITY_ZH
from pipeline.reports import html as html_report
from pipeline.reports import manifest, workbook, write_reports
from pipeline.reports.common import FINDINGS_SQL, change_label, iter_dicts, spreadsheet_text
from pipeline.rules import all_rules
from pipeline.store import open_store

RUN_ID = "20240701-020000-ab12"
NOTICE = "克区财综〔2024〕2号"
HYPERLINK = '=HYPERLINK("http://x","y")'
SCRIPT = "<script>alert(1)</script>"

FINDING_COLUMNS = ("run_id, finding_key, rule_id, severity, notice_no, purpose, voucher_no, line_no, "
                   "posted_on, amount, expected, observed, message, source_file, source_row, change, "
                   "first_seen")

RULE_FILES = {
    "code_mismatch.sql": ("CODE_MISMATCH", "error", "三", "支出记入了与分配用途不同的项级科目",
                          "Expenditure booked to another item code than the one allocated"),
    "over_allocation.sql": ("OVER_ALLOCATION", "error", "项目预算控制率", "用途累计支出超过分配金额",
                            "Cumulative spending of a purpose exceeds its allocation"),
    "duplicate_entry.sql": ("DUPLICATE_ENTRY", "warning", "—", "重复记账", "The same line twice"),
    "input_row_invalid.sql": ("INPUT_ROW_INVALID", "error", "—", "行无法解析", "Row could not be parsed"),
    "indicator_behind.sql": ("INDICATOR_BEHIND", "warning", "绩效目标表", "进度滞后", "Progress lags"),
}

LINES = [  # line_seq, purpose, function_code, allocated, spent
    (1, "2024年租赁补贴（中央直达）", "2210107", "172800.00", "86400.00"),
    (2, "2024年保障性租赁住房（中央直达）", "2210110", "1037200.00", "1100000.00"),
    (3, "2024年老旧小区改造（中央直达）", "2210108", "61110000.00", "20000000.00"),
    (4, "2024年危旧房改造（中央直达）", "2210103", "440000.00", "0.00"),
]

# rule_id, severity, purpose, voucher, line, date, amount, expected, observed, message, file, row, change, first_seen
FINDINGS = [
    ("CODE_MISMATCH", "error", LINES[0][1], "记-0042", "1", dt.date(2024, 3, 15), "-1234.50",
     "2210107", "2210199", "支出记入 2210199，应为 2210107 / booked to 2210199, expected 2210107",
     "ledger.csv", 42, "new", dt.date(2024, 7, 1)),
    ("OVER_ALLOCATION", "error", LINES[1][1], "记-0100", "2", dt.date(2024, 6, 20), "62800.00",
     "<= 1037200.00", "1100000.00", "累计支出超过分配 / cumulative spending exceeds allocation",
     "ledger.csv", 100, "persisting", dt.date(2024, 6, 1)),
    ("DUPLICATE_ENTRY", "warning", HYPERLINK, "记-0077", "1", dt.date(2024, 4, 2), "480.00",
     HYPERLINK, "@SUM(A1:A2)", f"收款人 {HYPERLINK} 重复 / duplicate payee", "ledger.csv", 77, None, None),
    ("DUPLICATE_ENTRY", "warning", SCRIPT, "记-0078", "1", dt.date(2024, 4, 3), "480.00",
     "+1+2", SCRIPT, f"摘要 {SCRIPT} 重复 / duplicate summary", "ledger.csv", 78, None, None),
    ("INPUT_ROW_INVALID", "error", None, None, None, None, None,
     "YYYY-MM-DD", "2024-13-45", "日期无法解析 / unparsable date", "ledger.csv", 9, None, None),
    ("INDICATOR_BEHIND", "warning", LINES[2][1], None, None, None, None,
     ">= 49.18%", "32.73%", "支出进度落后于时间进度 / spending lags the year", None, None, None, None),
]

INDICATORS = [
    (LINES[0][1], "项目预算控制率", "<=100%", "50.00%", "met", "spent / allocated"),
    (LINES[1][1], "项目预算控制率", "<=100%", "106.05%", "not_met", "spent / allocated"),
    (LINES[0][1], "发放租赁补贴户数", ">=30户", "18户", "behind", "distinct payees"),
    (LINES[0][1], "补助发放次数", ">=12次", "6次", "on_track", "distinct months"),
    (LINES[0][1], "服务对象满意度", ">=90%", None, "needs_evidence", f"survey {SCRIPT}"),
]


def _write_rules(folder: Path) -> None:
    folder.mkdir()
    for name, (rid, sev, cites, zh, en) in RULE_FILES.items():
        (folder / name).write_text(
            f"-- rule: {rid}\n-- severity: {sev}\n-- cites: {cites}\n-- zh: {zh}\n-- en: {en}\n"
            f"-- stage: ledger\nselect 1 where false;\n", encoding="utf-8")


@pytest.fixture
def rules(tmp_path, monkeypatch):
    """A small rule catalogue of its own, so these tests do not depend on sql/checks/."""
    folder = tmp_path / "checks"
    _write_rules(folder)
    catalogue = all_rules(folder)
    for module in (workbook, html_report, manifest):
        monkeypatch.setattr(module, "all_rules", lambda: catalogue)
    return catalogue


def seed_run(con, run_id: str = RUN_ID, findings=FINDINGS) -> None:
    """One notice, its allocation lines and one finished run with everything a report reads."""
    con.execute(
        "insert into input_files (sha256, kind, path, name, size_bytes, loaded_at, status, encoding, "
        "format, rows_loaded, rows_quarantined) values "
        "(?, 'notice', 'inputs/notices/n.txt', 'n.txt', 1000, ?, 'loaded', 'utf-8', 'txt', 1, 0), "
        "(?, 'ledger', 'inputs/ledgers/ledger.csv', 'ledger.csv', 52000, ?, 'loaded', 'gb18030', 'csv', 400, 1)",
        ["a" * 64, dt.datetime(2024, 7, 1, 1), "b" * 64, dt.datetime(2024, 7, 1, 1)])
    con.execute(
        "insert into notices (notice_no, file_id, title, issuer, recipient, fiscal_year, project_code, "
        "revenue_code, stated_total, amount_unit) values (?, 1, ?, '克拉玛依区财政局', '克拉玛依区住建局', "
        "2024, '10000013Z135080000028', '1100258', 62760000.00, '万元')",
        [NOTICE, "关于下达2024年中央财政城镇保障性安居工程补助资金的通知"])
    for seq, purpose, code, allocated, spent in LINES:
        con.execute("insert into allocation_lines (notice_no, line_seq, purpose, purpose_key, region, amount, "
                    "function_code, is_direct) values (?, ?, ?, purpose_key(?), '克拉玛依区', ?, ?, true)",
                    [NOTICE, seq, purpose, purpose, Decimal(allocated), code])
    con.execute(
        "insert into runs (run_id, started_at, finished_at, as_of, fail_on, scope, exit_status, counts) "
        "values (?, ?, ?, ?, 'error', '{}', 1, ?)",
        [run_id, dt.datetime(2024, 7, 1, 2, 0, 0), dt.datetime(2024, 7, 1, 2, 0, 5), dt.date(2024, 6, 30),
         json.dumps({"files": {"loaded": 2, "skipped": 0, "rejected": 0}, "findings": len(findings)})])
    con.execute("insert into run_inputs (run_id, file_id, action) values (?, 1, 'loaded'), (?, 2, 'loaded')", [run_id, run_id])
    for seq, purpose, code, allocated, spent in LINES:
        a, s = Decimal(allocated), Decimal(spent)
        con.execute("insert into run_summary (run_id, notice_no, line_seq, purpose, function_code, allocated, "
                    "spent, balance, execution_rate) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [run_id, NOTICE, seq, purpose, code, a, s, a - s, (s / a).quantize(Decimal("0.0001"))])
    rows = []
    for i, (rid, sev, purpose, voucher, line, date, amount, exp, obs, msg, src, srow, change, first) in enumerate(findings):
        rows.append((run_id, f"{rid}|{NOTICE}|{voucher or purpose or src}:{line or srow}|{i}", rid, sev, NOTICE,
                     purpose, voucher, line, date, None if amount is None else Decimal(amount), exp, obs, msg,
                     src, srow, change, first))
    if rows:
        con.executemany(f"insert into findings ({FINDING_COLUMNS}) values (" + ", ".join("?" * 17) + ")", rows)
    for purpose, name, target, observed, status, method in INDICATORS:
        con.execute("insert into run_indicators (run_id, notice_no, purpose, indicator, target, observed, "
                    "status, method) values (?, ?, ?, ?, ?, ?, ?, ?)",
                    [run_id, NOTICE, purpose, name, target, observed, status, method])
    if findings is FINDINGS:  # the OVER_ALLOCATION finding is waived
        con.execute("insert into waivers (finding_key, reason, waived_by, waived_at) "
                    "values (?, '已报批追加预算', 'auditor', ?)",
                    [rows[1][1], dt.datetime(2024, 6, 28, 9)])  # before the run: it went by it


@pytest.fixture
def store(tmp_path, rules):
    con = open_store(tmp_path / "recon.duckdb")
    seed_run(con)
    yield con
    con.close()


@pytest.fixture
def run_dir(store, tmp_path):
    return write_reports(store, RUN_ID, tmp_path / "outputs")


def _sheet_rows(ws):
    return [list(r) for r in ws.iter_rows(values_only=True)]


def test_workbook__sheets_and_headers(run_dir):
    wb = openpyxl.load_workbook(run_dir / "report.xlsx")
    assert wb.sheetnames == ["概览", "分配执行", "项目对应", "异常明细", "绩效指标", "规则说明"]
    header = [c.value for c in wb["异常明细"][1]]
    assert header[:8] == ["规则编号 rule_id", "级别 severity", "文号 notice_no", "用途 purpose",
                          "凭证号 voucher_no", "分录号 line_no", "日期 posted_on", "金额（元） amount"]
    # optional columns appear because some finding has them
    assert {"变化 change", "首次发现 first_seen", "豁免说明 waiver"} <= set(header)
    assert [c.value for c in wb["分配执行"][1]][-1] == "执行率 execution_rate"
    assert [c.value for c in wb["规则说明"][1]][:3] == ["规则编号 rule_id", "级别 severity", "依据条款 cites"]


def test_workbook__no_cell_is_a_formula(run_dir):
    wb = openpyxl.load_workbook(run_dir / "report.xlsx")
    seen_hyperlink = False
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{ws.title}!{cell.coordinate} is a formula: {cell.value!r}"
                if cell.value == HYPERLINK:
                    seen_hyperlink = True
                    assert cell.data_type == "s"
                    assert cell.quotePrefix  # editing the cell in Excel keeps it text
    assert seen_hyperlink, "the =HYPERLINK text is shown verbatim, as text"


def test_workbook__findings_have_typed_cells(run_dir):
    wb = openpyxl.load_workbook(run_dir / "report.xlsx")
    ws = wb["异常明细"]
    header = [c.value for c in ws[1]]
    col = {h.split(" ")[-1]: i for i, h in enumerate(header)}
    rows = _sheet_rows(ws)[1:]
    assert len(rows) == len(FINDINGS)
    # errors first, Chinese severities
    assert [r[col["severity"]] for r in rows] == ["错误"] * 3 + ["警告"] * 3
    by_voucher = {r[col["voucher_no"]]: r for r in rows if r[col["voucher_no"]]}
    cm = by_voucher["记-0042"]
    assert cm[col["amount"]] == pytest.approx(-1234.50) and isinstance(cm[col["amount"]], float)
    assert cm[col["posted_on"]] == dt.datetime(2024, 3, 15)
    assert cm[col["source_row"]] == 42
    assert cm[col["change"]] == "新增 new"
    cell = ws.cell(row=rows.index(cm) + 2, column=col["amount"] + 1)
    assert cell.number_format == "#,##0.00"
    assert ws.cell(row=rows.index(cm) + 2, column=col["posted_on"] + 1).is_date
    assert "已报批追加预算" in by_voucher["记-0100"][col["waiver"]]
    assert by_voucher["记-0078"][col["observed"]] == SCRIPT
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(header))}{len(rows) + 1}"
    assert ws.column_dimensions["K"].width >= 40  # message column is wide


def test_workbook__allocation_sheet(run_dir):
    ws = openpyxl.load_workbook(run_dir / "report.xlsx")["分配执行"]
    rows = _sheet_rows(ws)
    assert [r[2] for r in rows[1:5]] == [line[1] for line in LINES]
    assert rows[2][4] == pytest.approx(1037200.00)
    assert rows[2][7] == pytest.approx(1.0605)
    assert ws.cell(row=3, column=8).number_format == "0.00%"
    assert rows[5][0] == "合计 Total"
    assert rows[5][4] == pytest.approx(sum(float(line[3]) for line in LINES))


def test_workbook__overview(run_dir):
    ws = openpyxl.load_workbook(run_dir / "report.xlsx")["概览"]
    rows = _sheet_rows(ws)
    labels = {r[0]: r[1] for r in rows if r[0]}
    assert labels["运行编号 Run id"] == RUN_ID
    assert labels["截止日期 As of"] == dt.datetime(2024, 6, 30)
    assert labels["错误 error"] == 3 and labels["警告 warning"] == 3 and labels["提示 info"] == 0
    assert labels["其中已豁免 of which waived"] == 1
    flat = [v for r in rows for v in r if v is not None]
    assert NOTICE in flat and "b" * 64 in flat
    total_row = next(i for i, r in enumerate(rows) if r[0] == "分配金额（元） Allocated")
    assert rows[total_row + 1][0] == pytest.approx(62760000.00)
    assert rows[total_row + 1][1] == pytest.approx(21186400.00)


def test_workbook__indicators_and_rules(run_dir, rules):
    wb = openpyxl.load_workbook(run_dir / "report.xlsx")
    ind = _sheet_rows(wb["绩效指标"])
    expected = sorted(INDICATORS, key=lambda i: (i[0], i[1]))  # the sheet's order: purpose, indicator
    zh = {"met": "已完成", "not_met": "未完成", "on_track": "进度正常", "behind": "进度滞后",
          "needs_evidence": "需佐证材料"}
    assert [r[5] for r in ind[1:6]] == [zh[i[4]] for i in expected]
    assert [r[6] for r in ind[1:6]] == [i[4] for i in expected]
    assert f"survey {SCRIPT}" in [r[7] for r in ind[1:6]]
    rule_rows = _sheet_rows(wb["规则说明"])[1:]
    assert [r[0] for r in rule_rows] == [r.rule_id for r in rules]
    over = next(r for r in rule_rows if r[0] == "OVER_ALLOCATION")
    assert over[1:5] == ["错误", "项目预算控制率", "用途累计支出超过分配金额",
                         "Cumulative spending of a purpose exceeds its allocation"]
    assert over[7] == 1


def test_reports__a_ceiling_broken_during_the_year_reads_over_it_not_late(store, tmp_path):
    # 960 paid to one household in May, as of June: the status stays "behind" (the contract: never
    # failed before year end), but the workbook and the page said 进度滞后 (late) of a standard
    # already exceeded, while the finding said it was over
    store.execute("insert into run_indicators (run_id, notice_no, purpose, indicator, target, observed, "
                  "status, method, over_ceiling) values (?, ?, ?, '每户补贴标准', '<=480元/户/月', "
                  "'960.00元/户/月', 'behind', 'max per payee-month', true)",
                  [RUN_ID, NOTICE, LINES[0][1]])
    run_dir = write_reports(store, RUN_ID, tmp_path / "outputs")
    rows = {r[2]: r for r in _sheet_rows(openpyxl.load_workbook(run_dir / "report.xlsx")["绩效指标"])}
    assert rows["每户补贴标准"][5:7] == ["已超上限", "behind"]
    assert rows["发放租赁补贴户数"][5:7] == ["进度滞后", "behind"]  # lagging the calendar is late
    assert ["已超上限", "behind"] in [r[:2] for r in rows.values()]  # the sheet's legend
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    cap = page[page.index("<td>每户补贴标准</td>"):]
    assert cap[:cap.index("</tr>")].count("已超上限") == 1 and "进度滞后" not in cap[:cap.index("</tr>")]
    with (run_dir / "indicators.csv").open(encoding="utf-8-sig") as fh:
        assert {r["indicator"]: r["status"] for r in csv.DictReader(fh)}["每户补贴标准"] == "behind"


def test_workbook__truncates_at_the_row_limit(store, tmp_path, monkeypatch):
    monkeypatch.setattr(workbook, "MAX_FINDING_ROWS", 4)
    out = tmp_path / "trunc"
    out.mkdir()
    workbook.write(store, RUN_ID, out)
    rows = _sheet_rows(openpyxl.load_workbook(out / "report.xlsx")["异常明细"])
    assert len(rows) == 1 + 3 + 1  # header, 3 findings, the note
    assert rows[-1][0].startswith("另有 3 条未列出")


def test_html__the_names_left_out_of_the_page_are_counted(store, tmp_path, monkeypatch):
    """The page lists the first names of 项目名称对应 and says how many more there are (it said
    "the first 200 names" only, where the findings' list says 另有 N 条)."""
    monkeypatch.setattr(html_report, "MAX_PURPOSE_ROWS", 2)
    store.executemany("insert into run_purpose_matches values (?, ?, ?, ?, 'unmatched', null, null, null, 1, 1.00)",
                      [[RUN_ID, NOTICE, f"名称{i}", f"名称{i}"] for i in range(7)])
    page = (write_reports(store, RUN_ID, tmp_path / "o") / "report.html").read_text(encoding="utf-8")
    assert "只列出前 2 个名称，另有 5 个" in page and "the first 2 names, 5 more" in page


def test_workbook__constant_memory_many_findings(tmp_path, rules):
    """20,000 findings stream through (the same path a million take) and all arrive."""
    con = open_store(tmp_path / "big.duckdb")
    seed_run(con, findings=[])
    con.execute(
        """
        insert into findings (run_id, finding_key, rule_id, severity, notice_no, purpose, voucher_no,
                              line_no, posted_on, amount, expected, observed, message, source_file,
                              source_row, change, first_seen)
        select ?, 'k' || i, 'DUPLICATE_ENTRY', 'warning', ?, '2024年租赁补贴（中央直达）', 'V' || i, '1',
               date '2024-01-01' + cast(i % 300 as integer), cast(i as decimal(18,2)) / 100, null, null,
               '重复 / duplicate', 'ledger.csv', i, null, null
        from range(20000) as t(i)
        """, [RUN_ID, NOTICE])
    run_dir = write_reports(con, RUN_ID, tmp_path / "out")
    con.close()
    ws = openpyxl.load_workbook(run_dir / "report.xlsx", read_only=True)["异常明细"]
    assert ws.max_row == 20001
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "另有 19800 条" in page  # the page lists the first 200 of the rule

    # the exceptions sheet is deflated at the fast level, and xlsxwriter's ZipFile is its own again
    with zipfile.ZipFile(run_dir / "report.xlsx") as xlsx:
        info = xlsx.getinfo("xl/worksheets/sheet3.xml")
        sheet = xlsx.read(info)
    deflate = zlib.compressobj(workbook.DEFLATE_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert info.compress_size == len(deflate.compress(sheet) + deflate.flush())
    assert xlsxwriter.workbook.ZipFile is zipfile.ZipFile


def test_csv__bom_and_neutralised_text(run_dir):
    raw = (run_dir / "exceptions.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader((run_dir / "exceptions.csv").open(encoding="utf-8-sig")))
    assert len(rows) == len(FINDINGS)
    dup = next(r for r in rows if r["voucher_no"] == "记-0077")
    assert dup["purpose"] == "'" + HYPERLINK and dup["expected"] == "'" + HYPERLINK
    assert dup["observed"] == "'@SUM(A1:A2)"
    assert next(r for r in rows if r["voucher_no"] == "记-0078")["expected"] == "'+1+2"
    cm = next(r for r in rows if r["voucher_no"] == "记-0042")
    assert cm["amount"] == "-1234.50"  # a negative amount stays a number
    assert cm["posted_on"] == "2024-03-15"
    waived = next(r for r in rows if r["voucher_no"] == "记-0100")
    assert waived["waived"] == "true" and waived["waiver"] == "已报批追加预算 (auditor, 2024-06-28)"
    assert cm["waived"] == "false" and cm["waiver"] == ""
    summary = list(csv.DictReader((run_dir / "summary.csv").open(encoding="utf-8-sig")))
    assert summary[1]["balance"] == "-62800.00" and summary[1]["execution_rate"] == "1.0605"
    indicators = list(csv.DictReader((run_dir / "indicators.csv").open(encoding="utf-8-sig")))
    assert [r["status"] for r in indicators] == [i[4] for i in sorted(INDICATORS, key=lambda i: (i[0], i[1]))]


def test_spreadsheet_text__cases():
    assert spreadsheet_text("=1+1") == "'=1+1"
    assert spreadsheet_text("-1+cmd") == "'-1+cmd"
    assert spreadsheet_text("@x") == "'@x"
    assert spreadsheet_text("-12.50") == "-12.50"
    assert spreadsheet_text("+3") == "+3"
    # digits Excel does not read as a number: a formula there, quoted here
    assert spreadsheet_text("-١٢") == "'-١٢" and spreadsheet_text("-１２") == "'-１２"
    assert spreadsheet_text("普通文本") == "普通文本"
    assert spreadsheet_text(Decimal("-1")) == Decimal("-1")


def test_manifest__inputs_rules_counts(run_dir, rules, store):
    data = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert data["run_id"] == RUN_ID and data["as_of"] == "2024-06-30" and data["exit_status"] == 1
    # times with their zone (were naive: 09:00 of which clock?), the instant the store recorded
    started = dt.datetime.fromisoformat(data["started_at"])
    assert started.utcoffset() is not None
    [(stored,)] = store.execute("select started_at from runs where run_id = ?", [RUN_ID]).fetchall()
    assert started == stored.astimezone() and started.replace(tzinfo=None) == stored
    assert [i["sha256"] for i in data["inputs"]] == ["b" * 64, "a" * 64]  # ledger, notice by kind
    assert data["findings"]["by_severity"] == {"error": 3, "warning": 3, "info": 0}
    assert set(data["rules"]) == {r.rule_id for r in rules}
    assert all(len(v["sha256"]) == 64 and v["version"] == v["sha256"][:12] for v in data["rules"].values())


def _findings_sheet(run_dir):
    ws = openpyxl.load_workbook(run_dir / "report.xlsx")["异常明细"]
    header = [c.value for c in ws[1]]
    return {h.split(" ")[-1] for h in header}, [dict(zip((h.split(" ")[-1] for h in header), r))
                                               for r in _sheet_rows(ws)[1:]]


def _waiver_key(store, voucher):
    return store.execute("select finding_key from findings where run_id = ? and voucher_no = ?",
                         [RUN_ID, voucher]).fetchone()[0]


def test_reports__a_waiver_withdrawn_before_the_run_finished_is_not_shown(store, tmp_path):
    # the fixture's waiver of 记-0100 (28 June), withdrawn on 30 June: the run (1 July) went
    # without it. Before, a waiver could not be withdrawn
    key = _waiver_key(store, "记-0100")
    store.execute("insert into waiver_withdrawals (finding_key, waived_at, reason, withdrawn_by, withdrawn_at) "
                  "values (?, ?, '追加预算未获批', 'auditor2', ?)",
                  [key, dt.datetime(2024, 6, 28, 9), dt.datetime(2024, 6, 30, 9)])
    run_dir = write_reports(store, RUN_ID, tmp_path / "outputs")
    rows = list(csv.DictReader((run_dir / "exceptions.csv").open(encoding="utf-8-sig")))
    assert {(r["waived"], r["waiver"]) for r in rows} == {("false", "")}
    columns, _ = _findings_sheet(run_dir)
    assert "waiver" not in columns  # no finding of the run is waived
    overview = {r[0] for r in _sheet_rows(openpyxl.load_workbook(run_dir / "report.xlsx")["概览"])}
    assert "其中已豁免 of which waived" not in overview
    assert "已豁免 waived" not in (run_dir / "report.html").read_text(encoding="utf-8")
    assert json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["findings"]["waived"] == 0


def test_reports__show_the_waiver_in_force_when_the_run_finished(store, tmp_path):
    # 记-0100: waived, withdrawn, waived again before the run: the new waiver is the one shown.
    # 记-0042: waived twice by the old `recon waive` (a store from before version 9): the
    # earliest, once. A withdrawal after the run changes nothing in its reports. Before, both
    # waivers of a key were shown, joined by "; "
    oa, cm = _waiver_key(store, "记-0100"), _waiver_key(store, "记-0042")
    store.execute("insert into waiver_withdrawals values (?, ?, '依据有误', 'auditor2', ?)",
                  [oa, dt.datetime(2024, 6, 28, 9), dt.datetime(2024, 6, 29, 9)])
    store.execute("insert into waivers values (?, '追加预算已批复', '审计组', ?)", [oa, dt.datetime(2024, 6, 30, 9)])
    store.execute("insert into waivers values (?, '首次核实', 'auditor', ?), (?, '重复核实', 'auditor', ?)",
                  [cm, dt.datetime(2024, 6, 1, 9), cm, dt.datetime(2024, 6, 2, 9)])
    store.execute("insert into waiver_withdrawals values (?, ?, '事后撤销', 'auditor2', ?)",
                  [cm, dt.datetime(2024, 6, 1, 9), dt.datetime(2024, 7, 2, 9)])  # after the run
    run_dir = write_reports(store, RUN_ID, tmp_path / "outputs")
    rows = {r["voucher_no"]: r for r in csv.DictReader((run_dir / "exceptions.csv").open(encoding="utf-8-sig"))}
    assert (rows["记-0100"]["waived"], rows["记-0100"]["waiver"]) == ("true", "追加预算已批复 (审计组, 2024-06-30)")
    assert (rows["记-0042"]["waived"], rows["记-0042"]["waiver"]) == ("true", "首次核实 (auditor, 2024-06-01)")
    _, sheet = _findings_sheet(run_dir)
    waivers = {r["voucher_no"]: r["waiver"] for r in sheet if r["voucher_no"] in ("记-0100", "记-0042")}
    assert waivers == {"记-0100": "追加预算已批复 (审计组, 2024-06-30)", "记-0042": "首次核实 (auditor, 2024-06-01)"}
    assert json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["findings"]["waived"] == 2


def _contents(run_dir: Path) -> dict[str, object]:
    """What a report says, independent of zip timestamps: csv/json/html text, workbook cell values."""
    out = {}
    for name in ("exceptions.csv", "summary.csv", "indicators.csv", "run.json", "report.html"):
        out[name] = (run_dir / name).read_bytes()
    wb = openpyxl.load_workbook(run_dir / "report.xlsx")
    out["report.xlsx"] = {ws.title: _sheet_rows(ws) for ws in wb.worksheets}
    return out


def test_recon_report__rewrites_from_store(run_dir, store, tmp_path):
    from pipeline.cli import main

    before = _contents(run_dir)
    xlsx_before = (run_dir / "report.xlsx").read_bytes()
    store.close()  # the CLI opens the store itself
    for name in before:
        (run_dir / name).unlink()
    result = CliRunner().invoke(main, ["report", RUN_ID, "--db", str(tmp_path / "recon.duckdb"),
                                       "--outputs", str(tmp_path / "outputs")])
    assert result.exit_code == 0, result.output
    assert RUN_ID in result.output
    assert _contents(run_dir) == before
    assert (run_dir / "report.xlsx").read_bytes() == xlsx_before  # byte for byte, even the zip
    assert (tmp_path / "outputs" / "latest").resolve() == run_dir.resolve()


def test_recon_report__unknown_run_is_exit_2(run_dir, store, tmp_path):
    from pipeline.cli import main

    store.close()
    result = CliRunner().invoke(main, ["report", "nope", "--db", str(tmp_path / "recon.duckdb"),
                                       "--outputs", str(tmp_path / "outputs")])
    assert result.exit_code == 2
    assert "nope" in result.output


RESOLVED = ("CODE_MISMATCH", "error", LINES[3][1], "记-0005", "1", dt.date(2024, 2, 1), "100.00",
            "2210103", "2210199", "已更正 / corrected since", "ledger.csv", 5, "resolved", dt.date(2024, 6, 1))


def test_reports__resolved_findings_listed_apart_and_not_counted(tmp_path, rules):
    con = open_store(tmp_path / "recon.duckdb")
    seed_run(con, findings=FINDINGS + [RESOLVED])
    run_dir = write_reports(con, RUN_ID, tmp_path / "outputs")
    con.close()
    wb = openpyxl.load_workbook(run_dir / "report.xlsx")
    overview = {r[0]: r[1] for r in _sheet_rows(wb["概览"]) if r[0]}
    assert overview["错误 error"] == 3 and overview["合计 Total"] == 6
    assert overview["已解决（不计入合计）resolved since the previous run"] == 1
    rows = _sheet_rows(wb["异常明细"])
    header = rows[0]
    assert len(rows) == 1 + len(FINDINGS) + 1
    assert rows[-1][header.index("凭证号 voucher_no")] == "记-0005"  # resolved ones come last
    assert rows[-1][header.index("变化 change")] == "已解决 resolved"
    rule_counts = {r[0]: r[7] for r in _sheet_rows(wb["规则说明"])[1:]}
    assert rule_counts["CODE_MISMATCH"] == 1
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    groups = page.split('id="resolved"')
    assert len(groups) == 2 and "记-0005" not in groups[0] and "记-0005" in groups[1]
    data = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert data["findings"]["by_severity"]["error"] == 3
    assert data["findings"]["by_change"]["resolved"] == 1


def test_reports__files_readable_by_owner_only(run_dir):
    for name in ("report.xlsx", "report.html", "exceptions.csv", "summary.csv", "indicators.csv", "run.json"):
        assert (run_dir / name).stat().st_mode & 0o077 == 0, name


def test_reports__empty_run(tmp_path, rules):
    """A run that found nothing and read nothing still gets every report."""
    con = open_store(tmp_path / "recon.duckdb")
    con.execute("insert into runs (run_id, started_at, finished_at, as_of, fail_on, scope, exit_status, counts) "
                "values ('empty', ?, ?, ?, 'error', '{}', 0, '{}')",
                [dt.datetime(2024, 7, 1, 2), dt.datetime(2024, 7, 1, 2, 0, 1), dt.date(2024, 6, 30)])
    run_dir = write_reports(con, "empty", tmp_path / "outputs")
    con.close()
    wb = openpyxl.load_workbook(run_dir / "report.xlsx")
    assert wb.sheetnames == ["概览", "分配执行", "项目对应", "异常明细", "绩效指标", "规则说明"]
    assert len(_sheet_rows(wb["异常明细"])) == 1
    assert _sheet_rows(wb["项目对应"])[1][0].startswith("（本次运行没有与通知相关的支出")
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "未发现异常" in page and "bar-group" not in page and "项目名称对应" not in page
    assert (run_dir / "exceptions.csv").read_text(encoding="utf-8-sig").splitlines() == [
        ",".join(["rule_id", "severity", "notice_no", "purpose", "voucher_no", "line_no", "posted_on",
                  "amount", "expected", "observed", "message", "source_file", "source_row",
                  "finding_key", "change", "first_seen", "waived", "waiver"])]


def test_workbook__date_before_excel_epoch_is_text(tmp_path, rules):
    odd = list(FINDINGS[0])
    odd[3], odd[5] = "记-1899", dt.date(1899, 12, 1)
    con = open_store(tmp_path / "recon.duckdb")
    seed_run(con, findings=[tuple(odd)])
    run_dir = write_reports(con, RUN_ID, tmp_path / "outputs")
    con.close()
    rows = _sheet_rows(openpyxl.load_workbook(run_dir / "report.xlsx")["异常明细"])
    assert rows[1][rows[0].index("日期 posted_on")] == "1899-12-01"


def test_recon_report__latest_run_by_default(run_dir, store, tmp_path):
    from pipeline.cli import main

    store.close()
    (run_dir / "report.html").unlink()
    result = CliRunner().invoke(main, ["report", "--db", str(tmp_path / "recon.duckdb"),
                                       "--outputs", str(tmp_path / "outputs")])
    assert result.exit_code == 0, result.output
    assert RUN_ID in result.output and (run_dir / "report.html").is_file()


def test_csv__exceptions_by_copy_are_the_csv_modules_bytes(tmp_path, rules):
    """exceptions.csv is written by DuckDB's COPY; its bytes are those the csv module writes from
    _cell (write_csv, as summary.csv is written: the reference), for text a spreadsheet would take for a formula or a number in any
    script, quotes, commas, line breaks, empty and missing values, waivers, in the report order."""
    from pipeline.reports import csv_files

    texts = ["=1+1", "+3", "-12.50", "-1,234.00%", "-１２", "-٣٤", "-", "-%", "@x", "\tTAB", "\rCR",
             'say "hi", then', "第一行\n第二行", "行\r\n尾", "", " 前后空格 ", "'已引", "普通文本", "-1e5",
             "+-1", "=", "٣٤"]
    severities = ("error", "warning", "info")
    findings = []
    for i in range(660):
        text = texts[i % len(texts)]
        findings.append((
            ("CODE_MISMATCH", "DUPLICATE_ENTRY", "INPUT_ROW_INVALID")[i % 3], severities[i % 2],
            text if i % 5 else None, f"记-{i % 97:04d}" if i % 7 else None, str(i % 4) if i % 11 else None,
            dt.date(2024, 1 + i % 12, 1 + i % 28) if i % 13 else None,
            None if i % 17 == 0 else f"{(-1) ** i * (i * 1234567) % 10 ** 9}.{i % 100:02d}",
            text, texts[(i + 3) % len(texts)], f"说明 {text} / note {i}", "ledger.csv" if i % 3 else None,
            i if i % 3 else None, (None, "new", "persisting", "resolved")[i % 4],
            dt.date(2024, 6, 1) if i % 2 else None))
    con = open_store(tmp_path / "recon.duckdb")
    seed_run(con, findings=findings)
    con.execute("insert into waivers (finding_key, reason, waived_by, waived_at) "
                "select finding_key, '=已报批', 'auditor', timestamp '2024-06-28 09:00' "
                "from findings where rule_id = 'CODE_MISMATCH' and source_row % 2 = 0")
    folder = tmp_path / "张三's 报表"  # COPY takes the path as a quoted literal
    folder.mkdir()
    reference, copied = tmp_path / "reference.csv", folder / "copied.csv"
    n = csv_files.write_csv(reference, csv_files.EXCEPTION_COLUMNS, iter_dicts(con, FINDINGS_SQL, [RUN_ID]))
    assert csv_files.copy_exceptions(con, RUN_ID, copied) == n == 660
    assert copied.read_bytes() == reference.read_bytes()
    # the connection's own setting is left as it was (the store reads without insertion order)
    assert con.execute("select current_setting('preserve_insertion_order')").fetchone()[0] is False
    assert [p.name for p in folder.iterdir()] == ["copied.csv"]  # no temporary file left
    con.close()


def test_csv__exceptions_of_a_large_run_keep_the_report_order(tmp_path):
    """More findings than a DuckDB row group (122,880) are read in parallel: the COPY must still
    write them in FINDINGS_SQL's order (errors first, then by rule, notice, date, voucher)."""
    from pipeline.reports import csv_files
    from pipeline.reports.common import FINDINGS_SQL

    con = open_store(tmp_path / "recon.duckdb")
    con.execute("insert into runs (run_id, started_at, finished_at, as_of, fail_on, scope, exit_status, counts) "
                "values (?, now(), now(), current_date, 'error', '{}', 1, '{}')", [RUN_ID])
    con.execute(
        "insert into findings (run_id, finding_key, rule_id, severity, notice_no, purpose, voucher_no, line_no, "
        "posted_on, amount, expected, observed, message, source_file, source_row, change, first_seen) "
        "select ?, 'k' || range, ['CODE_MISMATCH', 'DUPLICATE_ENTRY', 'INPUT_ROW_INVALID'][range % 3 + 1], "
        "['error', 'warning'][range % 2 + 1], ?, case when range % 5 = 0 then '=x' || range else 'p' || range end, "
        "'记-' || lpad(cast(range % 9973 as varchar), 6, '0'), cast(range % 4 as varchar), "
        "date '2024-01-01' + cast(range % 366 as integer), cast(range as decimal(18,2)) / 100, 'e', 'o', "
        "'说明 ' || range, 'l.csv', range, ['new', 'persisting'][range % 2 + 1], null from range(130000)",
        [RUN_ID, NOTICE])
    expected = [r[0] for r in con.execute(f"select finding_key from ({FINDINGS_SQL})", [RUN_ID]).fetchall()]
    assert csv_files.copy_exceptions(con, RUN_ID, tmp_path / "exceptions.csv") == 130000
    with open(tmp_path / "exceptions.csv", encoding="utf-8-sig", newline="") as fh:
        written = [r["finding_key"] for r in csv.DictReader(fh)]
    assert written == expected
    con.close()


class _FindingRowsByCell(workbook._FindingRows):
    """The reference for _FindingRows: the same findings, cell by cell through xlsxwriter."""

    def write(self, con, run_id, limit):
        ws, fmt, w, n = self.ws, self.fmt, workbook._Writer(self.ws, self.fmt), 0
        for r, row in enumerate(islice(iter_dicts(con, FINDINGS_SQL, [run_id]), limit), 1):
            for c, (key, _, _, kind) in enumerate(self.cols):
                value = row.get(key)
                if kind == "text":
                    w.text(r, c, value, wrap=(key == "message"))
                elif kind == "severity":
                    ws.write_string(r, c, SEVERITY_ZH.get(value, value), fmt.severity.get(value, fmt.text))
                elif kind == "money":
                    w.money(r, c, value)
                elif kind == "date":
                    w.date(r, c, value)
                elif kind == "int":
                    w.number(r, c, value)
                elif kind == "change":
                    w.text(r, c, change_label(value))
            n = r
        return n


def test_workbook__text_with_an_edge_space_is_left_to_python():
    """xlsxwriter marks text with a space at either end (Python's \\s: Unicode's spaces) to be
    kept; the exceptions sheet's rows made in SQL must leave every such text to _row."""
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if re.match(r"\s", chr(c))]
    con = duckdb.connect()
    caught = con.execute(
        "select list(c) filter (where regexp_matches(c || '文', $p) and regexp_matches('文' || c, $p)) "
        "from unnest($spaces) as t(c)", {"p": workbook._NOT_PLAIN_SQL, "spaces": spaces}).fetchone()[0]
    assert len(spaces) == 29 and sorted(caught) == sorted(spaces)
    plain = ["普通文本", 'say "hi" & <b>', "=1+1", "x]]>y", "a_x41_b", "记-0001"]
    assert con.execute("select list(regexp_matches(t, $p)) from unnest($t) as u(t)",
                       {"p": workbook._NOT_PLAIN_SQL, "t": plain}).fetchone()[0] == [False] * len(plain)


# DuckDB's settings for how Arrow holds text, which the SQL-made rows are read through
ARROW_TEXT = {"string": [],
              "large_string": ["set arrow_large_buffer_size = true"],
              "string_view": ["set produce_arrow_string_view = true", "set arrow_output_version = '1.4'"]}


@pytest.mark.parametrize("max_rows, arrow_text", [(workbook.MAX_FINDING_ROWS, "string"),
                                                  (500, "large_string"), (500, "string_view")])
def test_workbook__fast_finding_rows_are_xlsxwriters_bytes(tmp_path, rules, monkeypatch, max_rows,
                                                           arrow_text):
    """The exceptions sheet's rows are written by _FindingRows (made in SQL where the values allow,
    else in Python), not cell by cell through xlsxwriter; the workbook must be the one xlsxwriter
    writes, byte for byte, for text that XML, Excel's escapes or a spreadsheet treat specially,
    every cell type, past the row limit, and however DuckDB's Arrow holds the text."""
    texts = ["=1+1", "+3", "-12.50", "@x", "\tTAB", "\rCR", 'say "hi" & <b>', "第一行\n第二行",
             "", " 前后空格 ", "普通文本", "\x00\x07\x1f控制", "_x0041_", "a_x00e9_b", "\ufffe\uffff",
             "<r><t>富文本</t></r>", "<r></t></is></c><c r=\"Z1\"><f>1+1</f></c><c><is><t></r>", "<r>",
             "长" * 20_000 + "😀" * 10, "<r>" + "长" * 40_000 + "</r>", "x]]>y", "\u2028\u00a0nbsp",
             "😀" * 16_384 + "x", "<r>短</r>"]
    dates = [dt.date(2024, 3, 15), dt.date(1899, 12, 31), dt.date(1900, 1, 15), dt.date(1900, 3, 1), None]
    findings = []
    for i in range(660):
        text = texts[i % len(texts)]
        findings.append((
            ("CODE_MISMATCH", "DUPLICATE_ENTRY", "INPUT_ROW_INVALID")[i % 3], ("error", "warning", "info")[i % 3],
            text if i % 5 else None, (text if i % 4 == 0 else f"记-{i % 97:04d}") if i % 7 else None,
            str(i % 4) if i % 11 else None, dates[i % len(dates)],
            None if i % 17 == 0 else f"{(-1) ** i * (i * 1234567) % 10 ** 13}.{i % 100:02d}",
            text, texts[(i + 3) % len(texts)], f"说明 {text} / note {i}", text if i % 3 else None,
            i * 10 ** (i % 12) if i % 3 else None, (None, "new", "persisting", "resolved")[i % 4],
            dates[(i + 1) % len(dates)] if i % 2 else None))
    con = open_store(tmp_path / "recon.duckdb")
    for setting in ARROW_TEXT[arrow_text]:
        con.execute(setting)
    seed_run(con, findings=findings)
    con.execute("insert into waivers (finding_key, reason, waived_by, waived_at) "
                "select finding_key, '=已报批 <r>x</r>', 'auditor', timestamp '2024-06-28 09:00' "
                "from findings where rule_id = 'CODE_MISMATCH' and source_row % 2 = 0")
    monkeypatch.setattr(workbook, "MAX_FINDING_ROWS", max_rows)
    fast, by_cell = tmp_path / "fast", tmp_path / "by_cell"
    fast.mkdir()
    by_cell.mkdir()
    made_in_python = []
    row_in_python = workbook._FindingRows._row

    def counted_row(self, r, row, cells):
        made_in_python.append(r)
        return row_in_python(self, r, row, cells)
    monkeypatch.setattr(workbook._FindingRows, "_row", counted_row)
    workbook.write(con, RUN_ID, fast)
    # most rows here hold text that only _row writes (620 of the 660); the plain ones are made in SQL
    in_sql = min(660, max_rows) - len(made_in_python)
    assert in_sql >= 20 and len(made_in_python) >= 20
    monkeypatch.setattr(workbook, "_FindingRows", _FindingRowsByCell)
    workbook.write(con, RUN_ID, by_cell)
    con.close()
    with zipfile.ZipFile(fast / "report.xlsx") as a, zipfile.ZipFile(by_cell / "report.xlsx") as b:
        assert a.namelist() == b.namelist()
        for name in a.namelist():
            assert a.read(name) == b.read(name), name
    ws = openpyxl.load_workbook(fast / "report.xlsx")["异常明细"]
    cells = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert texts[15] in cells and texts[16] in cells  # XML in a cell is text, not cells of its own
    assert "😀" * 16_383 in cells  # cut at Excel's 32,767 UTF-16 units, not inside a character
    assert not any(c.data_type == "f" for row in ws.iter_rows() for c in row)
    assert ws.max_row == (661 if max_rows > 660 else max_rows + 1)
