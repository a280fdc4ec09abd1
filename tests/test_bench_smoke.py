"""The benchmark's inputs and its pandas comparison are trustworthy.

bench/generate.py must produce a cn-grp export the loader accepts, with the planted faults it
promises and GB18030 text; bench/pandas_checks.py must find exactly what the SQL checks find on
it, or the speed comparison in bench/README.md compares different work.
"""
from __future__ import annotations

import csv
import datetime as dt
import sys
from pathlib import Path

import pytest

from builders import run_findings, set_context
from pipeline import ledgers, notices
from pipeline.checks import run_rule
from pipeline.rules import rule
from pipeline.store import open_store

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
import generate  # noqa: E402
import pandas_checks  # noqa: E402

SEED = Path(__file__).resolve().parents[1] / "inputs" / "notices" / "000_a45419bc3fccfd31.txt"
CORE_RULES = ("CODE_MISMATCH", "OVER_ALLOCATION", "DIRECT_FLAG_MISSING", "DUPLICATE_ENTRY")
LINES = 40_000  # 10,000 vouchers: a handful of every planted fault


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    return generate.generate(LINES, tmp_path_factory.mktemp("bench") / "ledger.csv", "gb18030")


def test_generate__gb18030_cn_grp_file_of_exactly_n_lines(ledger):
    with open(ledger, encoding="gb18030", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == generate.HEADER
    assert len(rows) == LINES + 1
    with pytest.raises(UnicodeDecodeError):
        ledger.read_bytes()[:1 << 16].decode("utf-8")
    body = rows[1:]
    assert {r[3] for r in body} == {"预算会计", "财务会计"}
    assert any(r[7].count(",") for r in body)                        # thousands separators
    assert any(r[9] == "2210107 保障性住房租金补贴" for r in body)   # code with its name
    in_scope = sum(r[11] == generate.PROJECT_CODE for r in body) / len(body)
    assert 0.55 < in_scope < 0.65                                     # ~40% out of scope
    planted = {"22101 保障性安居工程支出", "2210119 保障性安居工程"}
    assert planted <= {r[9] for r in body}
    assert any(r[12] == generate.FUND_NAME for r in body)            # the pooled account
    assert any(r[2].startswith("2023-12") for r in body)             # out of period
    summaries = {r[6] for r in body}                                   # rent paid for more months
    assert any(s.startswith("补发") for s in summaries) and any("季度" in s for s in summaries)


def test_pandas_checks__find_what_the_sql_checks_find(ledger, tmp_path):
    con = open_store(tmp_path / "recon.duckdb")
    notices.load_notices(con, [SEED])
    outcomes = ledgers.load_ledgers(con, [ledger])
    assert [o.rows_loaded for o in outcomes] == [LINES]
    set_context(con, as_of=dt.date(2024, 12, 31))
    sql = {(f.rule_id, f.voucher_no, f.line_no) for r in CORE_RULES for f in run_rule(con, rule(r))}
    con.close()

    found = pandas_checks.run_checks(ledger, "gb18030", dt.date(2024, 12, 31))
    ours = {tuple(x) for x in found["findings"]}
    assert {r for r, _, _ in sql} == set(CORE_RULES)  # every core rule fires on the generated file
    assert ours == sql


def test_pandas_checks__a_reversal_cancels_the_latest_payment_before_it_as_the_sql_does(tmp_path):
    # a household's rent booked to the old-estates code without the flag, every month; March paid
    # twice and paid back on 20 March, and a red-ink line on 10 January before any payment. The
    # generated ledger has no such case (its reversals follow their payments one to one), so the
    # two implementations are compared on it here
    def line(voucher, day, debit, credit):
        return [voucher, "1", day, "预算会计", "7201", "事业支出", "发放租赁补贴", debit, credit,
                "2210108 老旧小区改造", "30309", generate.PROJECT_CODE, "2024年租赁补贴（中央直达）",
                "中央直达资金", "", generate.NOTICE_NO, "住户01"]
    ledger = tmp_path / "ledger.csv"
    with open(ledger, "w", encoding="gb18030", newline="") as f:
        csv.writer(f).writerows([generate.HEADER,
                                 line("记-0110", "2024-01-10", "", "480.00"),
                                 line("记-0115", "2024-01-15", "480.00", ""),
                                 line("记-0315", "2024-03-15", "480.00", ""),
                                 line("记-0316", "2024-03-16", "480.00", ""),
                                 line("记-0320", "2024-03-20", "", "480.00")])
    con = open_store(tmp_path / "recon.duckdb")
    notices.load_notices(con, [SEED])
    ledgers.load_ledgers(con, [ledger])
    set_context(con, as_of=dt.date(2024, 12, 31))
    rules = ("CODE_MISMATCH", "DIRECT_FLAG_MISSING")
    sql = {(f.rule_id, f.voucher_no, f.line_no) for r in rules for f in run_rule(con, rule(r))}
    con.close()
    found = {tuple(x) for x in pandas_checks.run_checks(ledger, "gb18030")["findings"] if x[0] in rules}
    # the reversal on 20 March cancels 16 March's payment; the one of 10 January cancels nothing
    # (CODE_MISMATCH reports it, a wrong credit; DIRECT_FLAG_MISSING judges payments only)
    assert found == sql == {("CODE_MISMATCH", "记-0110", "1"), ("CODE_MISMATCH", "记-0115", "1"),
                            ("CODE_MISMATCH", "记-0315", "1"), ("DIRECT_FLAG_MISSING", "记-0115", "1"),
                            ("DIRECT_FLAG_MISSING", "记-0315", "1")}


def test_pandas_checks__lines_alike_only_in_voucher_and_amount_are_both_spent_as_the_sql_says(tmp_path):
    # two households paid on one voucher line number (two units' ledgers numbered alike), both on
    # the wrong code: no copy of one line, so each is spent and each is reported, as the SQL
    # checks do (fct_line_copies compares every column a rule reads); a row exported twice is one
    def line(payee):
        return ["记-0500", "1", "2024-05-10", "预算会计", "7201", "事业支出", "发放租赁补贴", "480.00", "",
                "2210108 老旧小区改造", "30309", generate.PROJECT_CODE, "2024年租赁补贴（中央直达）",
                "中央直达资金", "01", generate.NOTICE_NO, payee]
    ledger = tmp_path / "ledger.csv"
    with open(ledger, "w", encoding="gb18030", newline="") as f:
        csv.writer(f).writerows([generate.HEADER, line("住户01"), line("住户02"), line("住户02")])
    con = open_store(tmp_path / "recon.duckdb")
    notices.load_notices(con, [SEED])
    ledgers.load_ledgers(con, [ledger])
    set_context(con, as_of=dt.date(2024, 12, 31))
    sql = sorted((f.rule_id, f.voucher_no, f.line_no) for f in run_rule(con, rule("CODE_MISMATCH")))
    con.close()
    found = sorted(tuple(x) for x in pandas_checks.run_checks(ledger, "gb18030")["findings"]
                   if x[0] == "CODE_MISMATCH")
    assert found == sql == [("CODE_MISMATCH", "记-0500", "1")] * 2


def test_pandas_checks__a_wrong_code_reversed_in_bulk_is_corrected_as_the_sql_says(tmp_path):
    # two households' rent booked to the old-estates code, taken off by one red line for the batch
    # (no payee) and rebooked: nothing is left on 2210108, nothing reported. The same batch of
    # rental housing on 2210107 half taken off: 480 left, every line reported. The generated
    # ledger corrects only by mirrors, so the two implementations are compared on it here
    def line(voucher, day, purpose, code, debit, credit, payee):
        return [voucher, "1", day, "预算会计", "7201", "事业支出", "发放补贴", debit, credit, code, "30305",
                generate.PROJECT_CODE, purpose, "中央直达资金", "01 中央直达资金", generate.NOTICE_NO, payee]
    rent, housing = "2024年租赁补贴（中央直达）", "2024年保障性租赁住房（中央直达）"
    ledger = tmp_path / "ledger.csv"
    with open(ledger, "w", encoding="gb18030", newline="") as f:
        csv.writer(f).writerows([generate.HEADER,
                                 line("记-0105", "2024-01-05", rent, "2210108", "480.00", "", "住户01"),
                                 line("记-0106", "2024-01-05", rent, "2210108", "480.00", "", "住户02"),
                                 line("记-0209", "2024-02-09", rent, "2210108", "", "960.00", ""),
                                 line("记-0210", "2024-02-10", rent, "2210107", "480.00", "", "住户01"),
                                 line("记-0211", "2024-02-10", rent, "2210107", "480.00", "", "住户02"),
                                 line("记-0305", "2024-03-05", housing, "2210107", "480.00", "", "住户03"),
                                 line("记-0306", "2024-03-05", housing, "2210107", "480.00", "", "住户04"),
                                 line("记-0309", "2024-03-09", housing, "2210107", "", "480.00", "")])
    sql, found = _both_find(ledger, tmp_path, "CODE_MISMATCH")
    assert found == sql == {("CODE_MISMATCH", v, "1") for v in ("记-0305", "记-0306", "记-0309")}


def test_pandas_checks__a_batch_without_the_flag_taken_off_in_bulk_is_corrected_as_the_sql_says(tmp_path):
    # two households' rent paid without the flag, taken off by one red line for the batch (no
    # payee) and paid again with it: nothing is left of the booking, nothing reported. The same
    # batch of rental housing half taken off: 480 left, both payments reported (the red line is
    # no spending). The generated ledger corrects only by mirrors, so the two implementations are
    # compared on it here
    def line(voucher, day, purpose, code, flag, debit, credit, payee):
        return [voucher, "1", day, "预算会计", "7201", "事业支出", "发放补贴", debit, credit, code, "30305",
                generate.PROJECT_CODE, purpose, "中央直达资金", flag, generate.NOTICE_NO, payee]
    rent, housing = "2024年租赁补贴（中央直达）", "2024年保障性租赁住房（中央直达）"
    ledger = tmp_path / "ledger.csv"
    with open(ledger, "w", encoding="gb18030", newline="") as f:
        csv.writer(f).writerows([generate.HEADER,
                                 line("记-0105", "2024-01-05", rent, "2210107", "", "480.00", "", "住户01"),
                                 line("记-0106", "2024-01-05", rent, "2210107", "", "480.00", "", "住户02"),
                                 line("记-0209", "2024-02-09", rent, "2210107", "", "", "960.00", ""),
                                 line("记-0210", "2024-02-10", rent, "2210107", "01", "480.00", "", "住户01"),
                                 line("记-0211", "2024-02-10", rent, "2210107", "01", "480.00", "", "住户02"),
                                 line("记-0305", "2024-03-05", housing, "2210110", "", "480.00", "", "住户03"),
                                 line("记-0306", "2024-03-05", housing, "2210110", "", "480.00", "", "住户04"),
                                 line("记-0309", "2024-03-09", housing, "2210110", "", "", "480.00", "")])
    sql, found = _both_find(ledger, tmp_path, "DIRECT_FLAG_MISSING")
    assert found == sql == {("DIRECT_FLAG_MISSING", v, "1") for v in ("记-0305", "记-0306")}

def test_pandas_checks__02_is_not_the_direct_flag_01_as_the_sql_says(tmp_path):
    # 02 中央参照直达资金 on a 中央直达 line is the flag changed (the generated ledger writes no 02,
    # so the two implementations are compared on it here): a 02 payment is reported, one
    # cancelled by its 02 mirror is not, and a 01 reversal is no mirror of a 02 payment
    def line(voucher, day, flag, debit, credit, payee):
        return [voucher, "1", day, "预算会计", "7201", "事业支出", "发放租赁补贴", debit, credit,
                "2210107 保障性住房租金补贴", "30305", generate.PROJECT_CODE, "2024年租赁补贴（中央直达）",
                "中央直达资金", flag, generate.NOTICE_NO, payee]
    ledger = tmp_path / "ledger.csv"
    with open(ledger, "w", encoding="gb18030", newline="") as f:
        csv.writer(f).writerows([generate.HEADER,
                                 line("记-0110", "2024-01-10", "01 中央直达资金", "480.00", "", "住户01"),
                                 line("记-0111", "2024-01-11", "是", "480.00", "", "住户02"),
                                 line("记-0112", "2024-01-12", "02 中央参照直达资金", "480.00", "", "住户03"),
                                 line("记-0113", "2024-01-13", "中央参照直达资金", "480.00", "", "住户04"),
                                 line("记-0114", "2024-01-14", "09 其他", "480.00", "", "住户05"),
                                 line("记-0201", "2024-02-01", "02 中央参照直达资金", "480.00", "", "住户06"),
                                 line("记-0202", "2024-02-02", "02 中央参照直达资金", "", "480.00", "住户06"),
                                 line("记-0301", "2024-03-01", "02 中央参照直达资金", "480.00", "", "住户07"),
                                 line("记-0302", "2024-03-02", "01 中央直达资金", "", "480.00", "住户07")])
    sql, found = _both_find(ledger, tmp_path, "DIRECT_FLAG_MISSING")
    assert found == sql == {("DIRECT_FLAG_MISSING", v, "1") for v in ("记-0112", "记-0113", "记-0114", "记-0301")}


def _both_find(ledger, tmp_path, rule_id: str) -> tuple[set, set]:
    """(rule, voucher, line) of what the SQL rule and the pandas checks find on a small ledger."""
    con = open_store(tmp_path / "recon.duckdb")
    notices.load_notices(con, [SEED])
    ledgers.load_ledgers(con, [ledger])
    set_context(con, as_of=dt.date(2024, 12, 31))
    sql = {(f.rule_id, f.voucher_no, f.line_no) for f in run_rule(con, rule(rule_id))}
    con.close()
    found = {tuple(x) for x in pandas_checks.run_checks(ledger, "gb18030")["findings"] if x[0] == rule_id}
    return sql, found


def test_run__facts_snapshot_gives_the_same_findings_as_the_views(ledger, tmp_path, monkeypatch, capsys):
    # A run computes fct_expenditure once into a temporary table that shadows the view; every
    # rule, indicator and suite must find exactly what it finds on the view itself. The bench's
    # file plants a handful of every fault, so most rules have something to say.
    import shutil

    from pipeline import run

    inputs = tmp_path / "inputs"
    (inputs / "notices").mkdir(parents=True)
    (inputs / "ledgers").mkdir()
    shutil.copy(SEED, inputs / "notices")
    shutil.copy(ledger, inputs / "ledgers")

    def reconciled(name):
        out = tmp_path / name
        result = run.execute_run(inputs, out, out / "recon.duckdb", run.Scope(as_of=dt.date(2024, 12, 31)),
                                 fail_on="never")
        return sorted((f.rule_id, f.severity, f.notice_no or "", f.voucher_no or "", f.line_no or "",
                       f.expected or "", f.observed or "", f.message)
                      for f in run_findings(out / "recon.duckdb", result.run_id))

    with_snapshot = reconciled("snapshot")
    # bench/gx_pandas.py pulls its DataFrames under the same snapshot (as the gx_duckdb step
    # validates): the same rows and the same failures as pulled from the views
    import json

    import gx_pandas

    def pulled(*flags):
        capsys.readouterr()
        assert gx_pandas.main(["--db", str(tmp_path / "snapshot" / "recon.duckdb"), *flags]) == 0
        report = json.loads(capsys.readouterr().out)
        return report, {name: (s["rows"], s["failed"]) for name, s in report["suites"].items()}

    under_snapshot, suites = pulled()
    on_views, suites_on_views = pulled("--no-snapshot")
    assert suites == suites_on_views
    assert suites["stg_ledger_lines.json"][0] == LINES and suites["fct_recon_lines.json"][1] > 0
    assert under_snapshot["snapshot_s"] > 0 and on_views["snapshot_s"] == 0

    monkeypatch.setattr(run, "SNAPSHOT_VIEWS", ())
    with_views = reconciled("views")
    rules = {f[0] for f in with_snapshot}
    assert {"CODE_MISMATCH", "OVER_ALLOCATION", "DIRECT_FLAG_MISSING", "DUPLICATE_ENTRY",
            "COMMINGLED_ACCOUNT", "OUT_OF_PERIOD", "CODE_NOT_ITEM_LEVEL"} <= rules, rules
    assert with_snapshot == with_views


def test_runner__median_round_is_a_measured_pair():
    import run as bench_run

    def pair(floor, recon):
        return {"floor": {"wall_s": floor}, "recon_run": {"wall_s": recon}}
    rounds = [pair(4.0, 12.0), pair(3.0, 9.3), pair(3.5, 9.8), pair(4.4, 11.0)]  # 3.0, 3.1, 2.8, 2.5
    assert bench_run.median_round(rounds) == 2  # ratios in order 2.5, 2.8, 3.0, 3.1: the lower middle
    assert bench_run.median_round(rounds[:3]) == 0  # 3.0, 3.1, 2.8: the middle one is 3.0


def test_runner__repeat_runs_floor_and_a_fresh_recon_run_in_rounds(tmp_path):
    import json

    import run as bench_run
    args = ["--sizes", "2000", "--steps", "floor", "recon_run", "--repeat", "3", "--no-snapshot",
            "--data", str(tmp_path / "data"), "--results", str(tmp_path / "results")]
    assert bench_run.main(args) == 0
    [report] = (tmp_path / "results").glob("bench-*.json")
    [res] = json.loads(report.read_text(encoding="utf-8"))["results"]
    rounds = res["rounds"]
    assert len(rounds) == 3 and all(r["recon_run_exit"] in (0, 1) for r in rounds)
    assert res["steps"]["recon_run"]["ratio_to_floor"] == sorted(r["ratio"] for r in rounds)[1]
    # every round loads the ledger into a fresh store: the last one did not skip it as loaded
    assert res["recon_run_summary"]["counts"]["files"] == {"loaded": 2, "skipped": 0, "rejected": 0}


def test_runner__nightly_step_runs_the_next_night_on_the_same_store(tmp_path):
    import json

    import run as bench_run
    args = ["--sizes", "2000", "--steps", "floor", "recon_run", "nightly", "--no-snapshot",
            "--data", str(tmp_path / "data"), "--results", str(tmp_path / "results")]
    assert bench_run.main(args) == 0
    [report] = (tmp_path / "results").glob("bench-*.json")
    [res] = json.loads(report.read_text(encoding="utf-8"))["results"]
    assert res["steps"]["nightly"]["exit"] in (0, 1) and res["steps"]["nightly"]["ratio_to_floor"] > 0
    night = res["nightly_summary"]
    # the notice and yesterday's export were loaded already; tonight's replaces yesterday's
    assert night["counts"]["files"] == {"loaded": 1, "skipped": 2, "rejected": 0}
    ledgers = {f["name"]: (f["status"], f["action"]) for f in night["inputs"] if f["name"].startswith("ledger")}
    assert ledgers == {"ledger_2k_gb18030.csv": ("superseded", "skipped"),
                       "ledger_2k_gb18030_night2.csv": ("loaded", "loaded")}
