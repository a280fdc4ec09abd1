"""Nightly and audit operations: idempotent runs, change between runs, waivers, scope, logs."""
import csv
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from builders import (NOTICE_NO, OLD_ESTATES, RENT, SECOND_BATCH, add_ledger, new_store, seed_notice,
                      two_batches_of_rent)
from pipeline.cli import main
from pipeline.store import open_store


def _store_with_mistakes(tmp_path, extra=()):
    con = new_store(tmp_path)
    seed_notice(con)
    add_ledger(con, [
        dict(voucher_no="记-0001", debit=480, payee="王芳"),
        # booked to the old-estates code though it is rent subsidy: CODE_MISMATCH
        dict(voucher_no="记-0002", debit=480, payee="李强", function_code="2210108"),
        *extra,
    ])
    con.close()
    return tmp_path / "recon.duckdb"


def _check(db, tmp_path, *args):
    return CliRunner().invoke(main, ["check", "--db", str(db), "--outputs", str(tmp_path / "out"),
                                     "--as-of", "2024-12-31", *args])


def _exceptions(run_dir):
    with open(run_dir / "exceptions.csv", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _latest(tmp_path):
    return (tmp_path / "out" / "latest").resolve()


def test_runs__idempotent_second_run_changes_only_history(tmp_path):
    db = _store_with_mistakes(tmp_path)
    first = _check(db, tmp_path)
    rows1 = _exceptions(_latest(tmp_path))
    second = _check(db, tmp_path)
    rows2 = _exceptions(_latest(tmp_path))
    assert first.exit_code == second.exit_code == 1
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("change",)} for r in rows]  # noqa: E731
    assert strip(rows1) == strip(rows2)
    assert {r["change"] for r in rows1} == {"new"}
    assert {r["change"] for r in rows2} == {"persisting"}
    assert any(r["rule_id"] == "CODE_MISMATCH" and r["voucher_no"] == "记-0002" for r in rows2)
    con = new_store(tmp_path)
    assert con.execute("select count(*) from runs").fetchone()[0] == 2


def test_runs__resolved_after_correction_and_first_seen_kept(tmp_path):
    db = _store_with_mistakes(tmp_path)
    _check(db, tmp_path)
    con = new_store(tmp_path)
    # the accountant corrects the code (a new export replaces the line)
    con.execute("update ledger_lines set function_code = '2210107' where voucher_no = '记-0002'")
    con.close()
    result = _check(db, tmp_path)
    rows = _exceptions(_latest(tmp_path))
    resolved = [r for r in rows if r["rule_id"] == "CODE_MISMATCH"]
    assert [r["change"] for r in resolved] == ["resolved"]
    assert resolved[0]["first_seen"] == dt.date.today().isoformat()
    assert result.exit_code == 0  # a resolved finding is nothing to act on


def test_runs__a_back_dated_audit_run_leaves_the_nightly_series_as_it_was(tmp_path):
    # the nightly run (as of year end) finds 记-0002 and 记-0900; an auditor then runs the same
    # store as of 30 June. Before, the audit run called 记-0900 resolved (it is dated after June),
    # and the next night called it new again, with a new first-seen date
    db = _store_with_mistakes(tmp_path, extra=[
        dict(voucher_no="记-0900", debit=480, payee="赵六", function_code="2210110", posted_on=dt.date(2024, 9, 1))])

    def changes():
        return sorted((r["voucher_no"], r["change"]) for r in _exceptions(_latest(tmp_path))
                      if r["rule_id"] == "CODE_MISMATCH")

    _check(db, tmp_path)
    assert changes() == [("记-0002", "new"), ("记-0900", "new")]
    CliRunner().invoke(main, ["check", "--db", str(db), "--outputs", str(tmp_path / "out"), "--as-of", "2024-06-30"])
    assert changes() == [("记-0002", "new")]  # no run as of June or before: nothing resolved
    _check(db, tmp_path)
    assert changes() == [("记-0002", "persisting"), ("记-0900", "persisting")]


def test_waive__finding_stays_marked_and_stops_counting(tmp_path):
    db = _store_with_mistakes(tmp_path)
    assert _check(db, tmp_path).exit_code == 1
    key = next(r["finding_key"] for r in _exceptions(_latest(tmp_path)) if r["rule_id"] == "CODE_MISMATCH")
    errors = [r for r in _exceptions(_latest(tmp_path)) if r["severity"] == "error"]
    runner = CliRunner()
    out = runner.invoke(main, ["waive", key, "--reason", "财政局同意按2210108列支", "--by", "李会计",
                               "--db", str(db)])
    assert out.exit_code == 0, out.output
    for other in errors:
        if other["finding_key"] != key:
            runner.invoke(main, ["waive", other["finding_key"], "--reason", "核实", "--by", "李会计",
                                 "--db", str(db)])
    result = _check(db, tmp_path)
    assert result.exit_code == 0, result.output
    rows = _exceptions(_latest(tmp_path))
    waived = [r for r in rows if r["finding_key"] == key]
    assert waived and waived[0]["waived"] == "true"  # still reported, marked
    listing = runner.invoke(main, ["waivers", "--db", str(db)])
    assert key in listing.output and "李会计" in listing.output and "财政局同意" in listing.output


def test_waive__a_past_run_is_reported_again_as_it_was_and_the_next_run_goes_by_the_waiver(tmp_path):
    # before, `recon report RUN_ID` marked a finding waived by a waiver made after the run: the
    # past run's exceptions.csv, workbook and page changed, though its exit status had not
    db = _store_with_mistakes(tmp_path)
    assert _check(db, tmp_path).exit_code == 1
    run_dir = _latest(tmp_path)
    run_id = run_dir.name
    before = {name: (run_dir / name).read_bytes() for name in ("exceptions.csv", "report.html")}
    key = next(r["finding_key"] for r in _exceptions(run_dir) if r["rule_id"] == "CODE_MISMATCH")
    runner = CliRunner()
    assert runner.invoke(main, ["waive", key, "--reason", "事后核准", "--by", "李会计", "--db", str(db)]).exit_code == 0
    again = runner.invoke(main, ["report", run_id, "--db", str(db), "--outputs", str(tmp_path / "out")])
    assert again.exit_code == 0, again.output
    assert (run_dir / "exceptions.csv").read_bytes() == before["exceptions.csv"]
    assert b"\xe5\xb7\xb2\xe8\xb1\x81\xe5\x85\x8d" not in (run_dir / "report.html").read_bytes()  # 已豁免
    # the next run goes by it, and says so on its summary line
    result = _check(db, tmp_path)
    waived = [r for r in _exceptions(_latest(tmp_path)) if r["finding_key"] == key]
    assert [(r["waived"], r["waiver"].split(" (")[0]) for r in waived] == [("true", "事后核准")]
    assert "（其中已豁免 1 / 1 waived）" in result.output.splitlines()[-1]


@pytest.mark.parametrize("option, value, says_zh, says", [
    ("--notice", "克区财综〔2099〕9号", "通知 克区财综〔2099〕9号 未加载",
     "notice 克区财综〔2099〕9号 is not loaded (loaded: 克区财综〔2024〕2号)"),
    ("--purpose", "2024年租赁补助", "不是已加载通知的分配用途",
     "'2024年租赁补助' is none of the loaded notices' allocation lines (choose from: "),
])
def test_scope__a_notice_or_purpose_that_selects_nothing_is_refused(tmp_path, option, value, says_zh, says):
    # before, a mistyped --notice or --purpose reconciled nothing and said "0 errors", exit 0
    db = _store_with_mistakes(tmp_path)
    result = _check(db, tmp_path, option, value)
    assert result.exit_code == 2, result.output
    assert says_zh in result.stderr and says in result.stderr
    if option == "--purpose":
        assert RENT in result.stderr  # what there is to choose from
    import duckdb
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from runs").fetchone()[0] == 0  # no run recorded
    assert not (tmp_path / "out" / "latest").exists()


def test_findings__the_same_voucher_number_in_two_months_is_two_findings_waived_apart(tmp_path):
    # vouchers are numbered afresh each month: 记-1 line 1 of January and of February are two
    # lines, each booked to the wrong code. Before, they shared a key and February's was dropped
    db = _store_with_mistakes(tmp_path, extra=[
        dict(voucher_no="记-1", posted_on=dt.date(2024, 1, 10), debit=480, payee="王芳", function_code="2210108"),
        dict(voucher_no="记-1", posted_on=dt.date(2024, 2, 10), debit=480, payee="李强", function_code="2210108"),
    ])
    assert _check(db, tmp_path).exit_code == 1
    mismatched = [(r["voucher_no"], r["posted_on"], r["finding_key"]) for r in _exceptions(_latest(tmp_path))
                  if r["rule_id"] == "CODE_MISMATCH" and r["voucher_no"] == "记-1"]
    assert [(v, d) for v, d, _ in mismatched] == [("记-1", "2024-01-10"), ("记-1", "2024-02-10")]
    january, february = (k for _, _, k in mismatched)
    assert january != february
    runner = CliRunner()
    assert runner.invoke(main, ["waive", january, "--reason", "核实", "--by", "李会计", "--db", str(db)]).exit_code == 0
    _check(db, tmp_path)
    waived = {r["finding_key"]: r["waived"] for r in _exceptions(_latest(tmp_path))}
    assert (waived[january], waived[february]) == ("true", "false")


def test_findings__two_ledgers_numbering_vouchers_alike_keep_a_finding_each(tmp_path):
    # a unit's second account set (its 基建账) in the same store numbers vouchers as the first
    # does: 记-1 line 1 of March in each, both booked to the wrong code. Before, they shared a key
    # and the run kept only the first file's finding
    db = _store_with_mistakes(tmp_path, extra=[
        dict(voucher_no="记-1", posted_on=dt.date(2024, 3, 10), debit=480, payee="王芳", function_code="2210108"),
    ])
    con = new_store(tmp_path)
    add_ledger(con, [dict(voucher_no="记-1", posted_on=dt.date(2024, 3, 12), debit=960, payee="李强",
                          function_code="2210108")], name="基建账.csv")
    # the first ledger's line exported once more, in a file of its own: a repeat, not a third line
    add_ledger(con, [dict(voucher_no="记-1", posted_on=dt.date(2024, 3, 10), debit=480, payee="王芳",
                          function_code="2210108")], name="ledger_again.csv")
    con.close()
    assert _check(db, tmp_path).exit_code == 1
    rows = [r for r in _exceptions(_latest(tmp_path)) if r["rule_id"] == "CODE_MISMATCH"]
    ones = sorted((r["source_file"], r["amount"], r["finding_key"]) for r in rows if r["voucher_no"] == "记-1")
    assert [(f, a) for f, a, _ in ones] == [("ledger.csv", "480.00"), ("基建账.csv", "960.00")]
    keys = [k for _, _, k in ones]
    assert keys == ["CODE_MISMATCH|克区财综〔2024〕2号|记-1:1@202403~2024-03-10:480.00",
                    "CODE_MISMATCH|克区财综〔2024〕2号|记-1:1@202403~2024-03-12:960.00"]
    # a key no other line shares is as it was
    assert "CODE_MISMATCH|克区财综〔2024〕2号|记-0002:1@202403" in {r["finding_key"] for r in rows}
    runner = CliRunner()
    assert runner.invoke(main, ["waive", keys[1], "--reason", "基建账另行核实", "--by", "李会计",
                                "--db", str(db)]).exit_code == 0
    _check(db, tmp_path)
    waived = {r["finding_key"]: (r["waived"], r["change"]) for r in _exceptions(_latest(tmp_path))}
    assert (waived[keys[0]], waived[keys[1]]) == (("false", "persisting"), ("true", "persisting"))


def test_findings__a_second_ledger_coming_to_share_a_key_leaves_the_waived_finding_its_key(tmp_path):
    # 记-1 line 1 of March miscoded and waived; then the unit's 基建账, numbering vouchers alike,
    # is loaded with its own 记-1 line 1 of March miscoded. Before, both took ~date:amount keys:
    # the waived key was "resolved", the same unchanged line came back "new" and unwaived (exit 1)
    db = _store_with_mistakes(tmp_path, extra=[
        dict(voucher_no="记-1", posted_on=dt.date(2024, 3, 10), debit=480, payee="王芳", function_code="2210108"),
    ])
    assert _check(db, tmp_path).exit_code == 1
    plain = "CODE_MISMATCH|克区财综〔2024〕2号|记-1:1@202403"
    assert plain in {r["finding_key"] for r in _exceptions(_latest(tmp_path))}
    assert CliRunner().invoke(main, ["waive", plain, "--reason", "核实", "--by", "李会计",
                                     "--db", str(db)]).exit_code == 0
    con = new_store(tmp_path)
    add_ledger(con, [dict(voucher_no="记-1", posted_on=dt.date(2024, 3, 12), debit=960, payee="李强",
                          function_code="2210108")], name="基建账.csv")
    con.close()
    _check(db, tmp_path)
    rows = {r["finding_key"]: (r["source_file"], r["waived"], r["change"])
            for r in _exceptions(_latest(tmp_path)) if r["voucher_no"] == "记-1"}
    assert rows == {plain: ("ledger.csv", "true", "persisting"),
                    plain + "~2024-03-12:960.00": ("基建账.csv", "false", "new")}


def test_waive__unknown_key_is_refused(tmp_path):
    db = _store_with_mistakes(tmp_path)
    _check(db, tmp_path)
    out = CliRunner().invoke(main, ["waive", "NO_SUCH|x", "--reason", "r", "--by", "b", "--db", str(db)])
    assert out.exit_code == 2
    assert "no finding with key" in out.output


def test_waive__a_key_without_its_month_is_refused_naming_the_keys_it_may_mean(tmp_path):
    # keys end @yyyymm since vouchers are numbered afresh each month; `recon waive --help` showed
    # one without, and a key written so was refused without a word of what it lacked
    db = _store_with_mistakes(tmp_path, extra=[
        dict(voucher_no="记-1", posted_on=dt.date(2024, 1, 10), debit=480, payee="王芳", function_code="2210108"),
        dict(voucher_no="记-1", posted_on=dt.date(2024, 2, 10), debit=480, payee="李强", function_code="2210108"),
    ])
    _check(db, tmp_path)
    runner = CliRunner()
    one = runner.invoke(main, ["waive", f"CODE_MISMATCH|{NOTICE_NO}|记-0002:1", "--reason", "r", "--by", "b",
                               "--db", str(db)])
    assert one.exit_code == 2
    assert "no finding with key" in one.stderr and "是否指以下编号" in one.stderr and "did you mean" in one.stderr
    assert one.stderr.splitlines()[-1].strip() == f"CODE_MISMATCH|{NOTICE_NO}|记-0002:1@202403"
    two = runner.invoke(main, ["waive", f"CODE_MISMATCH|{NOTICE_NO}|记-1:1", "--reason", "r", "--by", "b",
                               "--db", str(db)])
    assert two.exit_code == 2
    assert [line.strip() for line in two.stderr.splitlines()[-2:]] == [
        f"CODE_MISMATCH|{NOTICE_NO}|记-1:1@202401", f"CODE_MISMATCH|{NOTICE_NO}|记-1:1@202402"]
    none = runner.invoke(main, ["waive", f"CODE_MISMATCH|{NOTICE_NO}|记-9:1", "--reason", "r", "--by", "b",
                                "--db", str(db)])
    assert none.exit_code == 2 and "no finding with key" in none.stderr and "did you mean" not in none.stderr
    con = open_store(db)
    assert con.execute("select count(*) from waivers").fetchone()[0] == 0
    con.close()


def test_waive__the_example_in_its_help_is_a_key_as_keys_are_now(tmp_path):
    from pipeline.findings import Finding

    help_text = CliRunner().invoke(main, ["waive", "--help"]).output
    [example] = [line.split('"')[1] for line in help_text.splitlines() if line.strip().startswith("recon waive ")]
    made = Finding("DUPLICATE_ENTRY", "warning", "", notice_no=NOTICE_NO, voucher_no="记-08-0003", line_no="1",
                   posted_on=dt.date(2024, 8, 12)).finding_key
    assert example == made


def _waive(db, key, reason="核实", by="李会计"):
    return CliRunner().invoke(main, ["waive", key, "--reason", reason, "--by", by, "--db", str(db)])


def _unwaive(db, key, reason="复核后理由不再成立", by="王审计"):
    return CliRunner().invoke(main, ["unwaive", key, "--reason", reason, "--by", by, "--db", str(db)])


def _waivers(db, *args):
    listing = CliRunner().invoke(main, ["waivers", "--db", str(db), *args])
    assert listing.exit_code == 0, listing.output
    return listing.output


def _every_error_waived(tmp_path):
    """A store whose every error is waived (`recon check` exits 0), and the CODE_MISMATCH key."""
    db = _store_with_mistakes(tmp_path)
    assert _check(db, tmp_path).exit_code == 1
    rows = _exceptions(_latest(tmp_path))
    key = next(r["finding_key"] for r in rows if r["rule_id"] == "CODE_MISMATCH")
    for r in rows:
        if r["severity"] == "error":
            assert _waive(db, r["finding_key"]).exit_code == 0
    assert _check(db, tmp_path).exit_code == 0
    return db, key


def test_waive__a_key_waived_already_is_left_as_it_is_and_says_so(tmp_path):
    # before, each `recon waive` added a row: the key was listed twice, its waiver text twice
    db = _store_with_mistakes(tmp_path)
    _check(db, tmp_path)
    key = next(r["finding_key"] for r in _exceptions(_latest(tmp_path)) if r["rule_id"] == "CODE_MISMATCH")
    assert _waive(db, key, "财政局同意按2210108列支", "李会计").exit_code == 0
    again = _waive(db, key, "另一理由", "张会计")
    assert again.exit_code == 0, again.output  # already done, as `recon load` of a loaded file
    said = again.output
    assert said.index("已有生效的豁免，未作改动") < said.index("already waived, nothing changed")
    assert key in said and "李会计" in said and "财政局同意按2210108列支" in said and "张会计" not in said
    assert "recon unwaive" in said
    con = open_store(db)
    assert con.execute("select finding_key, waived_by from waivers").fetchall() == [(key, "李会计")]
    con.close()
    assert _waivers(db).count(key) == 1
    _check(db, tmp_path)
    [row] = [r for r in _exceptions(_latest(tmp_path)) if r["finding_key"] == key]
    assert (row["waived"], row["waiver"].split(" (")[0]) == ("true", "财政局同意按2210108列支")


def test_unwaive__the_finding_counts_again_from_the_next_run_and_the_waiver_is_kept(tmp_path):
    # before, a waiver could not be withdrawn short of editing the store
    db, key = _every_error_waived(tmp_path)
    waived_run = _latest(tmp_path)
    waived_csv = (waived_run / "exceptions.csv").read_bytes()
    assert json.loads((waived_run / "run.json").read_text(encoding="utf-8"))["findings"]["waived"] >= 1
    withdrawn = _unwaive(db, key)
    assert withdrawn.exit_code == 0, withdrawn.output
    assert "已撤销豁免 / waiver withdrawn" in withdrawn.output and key in withdrawn.output
    result = _check(db, tmp_path)
    assert result.exit_code == 1, result.output  # counts toward the exit status again
    [row] = [r for r in _exceptions(_latest(tmp_path)) if r["finding_key"] == key]
    assert (row["waived"], row["waiver"], row["change"]) == ("false", "", "persisting")
    manifest = json.loads((_latest(tmp_path) / "run.json").read_text(encoding="utf-8"))
    before = json.loads((waived_run / "run.json").read_text(encoding="utf-8"))
    assert manifest["exit_status"] == 1 and manifest["findings"]["waived"] == before["findings"]["waived"] - 1
    # nothing deleted: the waiver and its withdrawal are both in the store
    con = open_store(db)
    assert con.execute("select reason, waived_by from waivers where finding_key = ?", [key]).fetchall() == [
        ("核实", "李会计")]
    assert con.execute("select reason, withdrawn_by from waiver_withdrawals where finding_key = ?",
                       [key]).fetchall() == [("复核后理由不再成立", "王审计")]
    con.close()
    # the run made while it was in force is written again as it was
    again = CliRunner().invoke(main, ["report", waived_run.name, "--db", str(db), "--outputs", str(tmp_path / "out")])
    assert again.exit_code == 0, again.output
    assert (waived_run / "exceptions.csv").read_bytes() == waived_csv


def test_unwaive__a_key_without_a_waiver_in_force_is_refused(tmp_path):
    db = _store_with_mistakes(tmp_path)
    _check(db, tmp_path)
    key = next(r["finding_key"] for r in _exceptions(_latest(tmp_path)) if r["rule_id"] == "CODE_MISMATCH")
    for given in ("NO_SUCH|x", key):  # no such key; a finding never waived
        refused = _unwaive(db, given)
        assert refused.exit_code == 2, refused.output
        said = refused.stderr
        assert said.index("该编号没有生效的豁免") < said.index("no waiver in force for key") and given in said
    assert _waive(db, key).exit_code == 0
    assert _unwaive(db, key, by="王审计").exit_code == 0
    twice = _unwaive(db, key, by="赵审计")
    assert twice.exit_code == 2
    assert "最近一次豁免已于" in twice.stderr and "withdrawn at" in twice.stderr and "王审计" in twice.stderr
    blank = _unwaive(db, key, reason=" ")
    assert blank.exit_code == 2
    con = open_store(db)
    assert con.execute("select withdrawn_by from waiver_withdrawals").fetchall() == [("王审计",)]
    con.close()


def test_waivers__lists_those_in_force_and_with_all_the_withdrawn_ones_too(tmp_path):
    # waived, withdrawn, waived again: the new waiver is the one in force
    db, key = _every_error_waived(tmp_path)
    assert _unwaive(db, key, reason="凭证已更正前误豁免").exit_code == 0
    assert _check(db, tmp_path).exit_code == 1
    assert _waive(db, key, reason="财政局书面同意", by="周科长").exit_code == 0
    assert _check(db, tmp_path).exit_code == 0
    [row] = [r for r in _exceptions(_latest(tmp_path)) if r["finding_key"] == key]
    assert (row["waived"], row["waiver"].split(" (")[0]) == ("true", "财政局书面同意")
    in_force = _waivers(db).splitlines()
    [line] = [x for x in in_force if key in x]
    assert "周科长" in line and "财政局书面同意" in line
    assert "凭证已更正前误豁免" not in "".join(in_force) and "withdrawn" not in "".join(in_force)
    history = _waivers(db, "--all").splitlines()
    first = next(i for i, x in enumerate(history) if key in x and "李会计" in x)
    assert history[first + 1].strip().startswith("已撤销 / withdrawn")
    assert "王审计" in history[first + 1] and "凭证已更正前误豁免" in history[first + 1]
    assert any(key in x and "周科长" in x for x in history[first + 2:])
    # with every waiver withdrawn, the plain list says where the withdrawn ones are
    assert _unwaive(db, key).exit_code == 0
    con = open_store(db)
    others = [k for (k,) in con.execute("select distinct finding_key from waivers where finding_key <> ?",
                                        [key]).fetchall()]
    con.close()
    for other in others:
        assert _unwaive(db, other).exit_code == 0
    assert "no waivers in force (withdrawn ones: --all)" in _waivers(db)


def test_scope__as_of_leaves_out_later_lines(tmp_path):
    db = _store_with_mistakes(tmp_path, extra=[
        dict(voucher_no="记-0900", debit=480, payee="赵六", function_code="2210110",
             posted_on=dt.date(2024, 9, 1)),
    ])
    res = CliRunner().invoke(main, ["check", "--db", str(db), "--outputs", str(tmp_path / "out"),
                                    "--as-of", "2024-06-30"])
    assert res.exit_code == 1
    vouchers = {r["voucher_no"] for r in _exceptions(_latest(tmp_path))}
    assert "记-0002" in vouchers and "记-0900" not in vouchers
    summary = list(csv.DictReader(open(_latest(tmp_path) / "summary.csv", encoding="utf-8-sig")))
    rent = next(r for r in summary if r["purpose"] == RENT)
    assert rent["spent"] == "960.00"


def test_scope__purpose_and_period_slice(tmp_path):
    db = _store_with_mistakes(tmp_path, extra=[
        dict(voucher_no="记-0100", debit=1000, purpose=OLD_ESTATES, function_code="22101",
             posted_on=dt.date(2024, 5, 10)),
        dict(voucher_no="记-0200", debit=480, payee="赵敏", posted_on=dt.date(2024, 6, 15)),  # June's own
    ])
    res = _check(db, tmp_path, "--purpose", "2024年老旧小区改造(中央直达)")  # half-width brackets
    rows = _exceptions(_latest(tmp_path))
    assert {r["voucher_no"] for r in rows if r["voucher_no"]} == {"记-0100"}
    assert res.exit_code == 1
    _check(db, tmp_path, "--from", "2024-06-01", "--to", "2024-06-30")
    assert not [r for r in _exceptions(_latest(tmp_path)) if r["voucher_no"] == "记-0100"]
    manifest = json.loads((_latest(tmp_path) / "run.json").read_text(encoding="utf-8"))
    assert manifest["scope"] == {"date_from": "2024-06-01", "date_to": "2024-06-30"}


def test_scope__one_purpose_typed_two_ways_is_one_slice(tmp_path):
    # （中央直达） then (中央直达): both select the same allocation line, so the second run is
    # compared with the first. Before, its findings were all "new", their first-seen dates reset
    db = _store_with_mistakes(tmp_path)
    assert _check(db, tmp_path, "--purpose", RENT).exit_code == 1
    first = _exceptions(_latest(tmp_path))
    half_width = RENT.replace("（", "(").replace("）", ")")
    assert half_width != RENT and _check(db, tmp_path, "--purpose", half_width).exit_code == 1
    second = _exceptions(_latest(tmp_path))
    assert first and {r["change"] for r in first} == {"new"}
    assert {r["change"] for r in second} == {"persisting"}
    manifest = json.loads((_latest(tmp_path) / "run.json").read_text(encoding="utf-8"))
    assert manifest["scope"] == {"purpose": RENT}  # as the notice writes it


def test_scope__a_part_of_one_purposes_name_selects_it_a_part_of_several_is_refused(tmp_path):
    # 租赁补贴 for 2024年租赁补贴（中央直达）: the same slice as the full name. Before, refused
    # ("not an allocation line"); 租赁, part of two lines' names, is refused naming both
    db = _store_with_mistakes(tmp_path)
    assert _check(db, tmp_path, "--purpose", RENT).exit_code == 1
    first = _exceptions(_latest(tmp_path))
    assert _check(db, tmp_path, "--purpose", "租赁补贴").exit_code == 1
    manifest = json.loads((_latest(tmp_path) / "run.json").read_text(encoding="utf-8"))
    assert manifest["scope"] == {"purpose": RENT}
    second = _exceptions(_latest(tmp_path))
    assert first and [r["finding_key"] for r in second] == [r["finding_key"] for r in first]
    assert {r["change"] for r in second} == {"persisting"}
    several = _check(db, tmp_path, "--purpose", "租赁")
    assert several.exit_code == 2, several.output
    assert "是多条分配用途的一部分" in several.stderr and "is part of several allocation lines" in several.stderr
    assert RENT in several.stderr and "2024年保障性租赁住房（中央直达）" in several.stderr
    assert "老旧小区" not in several.stderr


def test_scope__a_run_of_one_batch_says_of_it_what_the_run_of_both_says(tmp_path):
    # 提前下达 (2号, 1,000) and 第二批 (15号, 500) of one fund both allocate rent; lines without
    # 指标文号 are counted under each. An auditor's `recon check --notice` of either batch must say
    # of it what the nightly run of both says. Before, the chosen batch took every shared line:
    # 15号 alone read 2,000 spent of 500
    con = two_batches_of_rent(tmp_path)
    add_ledger(con, [dict(voucher_no="记-1", budget_doc_no=None, debit=900),
                     dict(voucher_no="记-2", budget_doc_no=None, debit=400, payee="李四"),
                     dict(voucher_no="记-3", budget_doc_no=SECOND_BATCH, debit=600, payee="王五"),
                     dict(voucher_no="记-4", budget_doc_no=None, debit=100, payee="赵六",
                          function_code="2210101")])
    con.close()
    db = tmp_path / "recon.duckdb"

    def run(*args):
        res = _check(db, tmp_path, *args)
        assert res.exit_code == 1, res.output
        latest = _latest(tmp_path)
        summary = list(csv.DictReader(open(latest / "summary.csv", encoding="utf-8-sig")))
        found = {(r["rule_id"], r["notice_no"], r["voucher_no"], r["expected"]) for r in _exceptions(latest)}
        return {r["notice_no"]: r for r in summary}, found

    summary, found = run()
    assert (summary[NOTICE_NO]["spent"], summary[SECOND_BATCH]["spent"]) == ("1000.00", "1000.00")
    # 1,900 of the 1,500 together crossed by 记-3 (said on 2号, the first as issued); 15号's own
    # 600 over its 500
    assert {f for f in found if f[0] == "OVER_ALLOCATION"} == {
        ("OVER_ALLOCATION", NOTICE_NO, "记-3", "1500.00"), ("OVER_ALLOCATION", SECOND_BATCH, "记-3", "500.00")}
    for notice_no in (SECOND_BATCH, NOTICE_NO):
        alone, found_alone = run("--notice", notice_no)
        assert alone == {notice_no: summary[notice_no]}, notice_no
        assert {f[1] for f in found_alone} == {notice_no}
        assert [f[2] for f in found_alone if f[0] == "CODE_MISMATCH"] == ["记-4"]
        # its own breach as in the run of both; the batches' together said on the one chosen
        assert {f for f in found_alone if f[0] == "OVER_ALLOCATION"} == (
            {("OVER_ALLOCATION", notice_no, "记-3", "1500.00"), ("OVER_ALLOCATION", notice_no, "记-3", "500.00")}
            if notice_no == SECOND_BATCH else {("OVER_ALLOCATION", notice_no, "记-3", "1500.00")})


def test_quiet__nothing_on_a_clean_run_the_summary_line_when_there_is_something_to_act_on(tmp_path):
    # cron mails what a job prints: before, `--quiet` printed nothing at exit 1 either, and the
    # nightly run's findings reached nobody
    db = _store_with_mistakes(tmp_path)
    found = _check(db, tmp_path, "--quiet")
    assert found.exit_code == 1
    [line] = found.stdout.splitlines()
    assert line.startswith("run ") and "错误 2 errors" in line and line.endswith("(exit 1)")
    log = (tmp_path / "out" / "logs" / "recon.log").read_text(encoding="utf-8")
    assert "finished: exit 1" in log
    clean = _check(db, tmp_path, "--quiet", "--fail-on", "never")
    assert clean.exit_code == 0 and clean.stdout == "" and clean.stderr == ""
    loud = _check(db, tmp_path)
    assert loud.stdout.count("\n") == 1 and "exit 1" in loud.stdout


def test_quiet__a_rejected_file_is_named_on_stderr_and_the_summary_line_printed(tmp_path):
    root = Path(__file__).resolve().parent.parent
    inputs = tmp_path / "inputs"
    shutil.copytree(root / "inputs", inputs)
    (inputs / "ledgers" / "notes.csv").write_text("甲,乙\n1,2\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["run", "--inputs", str(inputs), "--outputs", str(tmp_path / "out"),
                                       "--as-of", "2024-12-31", "--quiet", "--fail-on", "never"])
    assert result.exit_code == 2, result.output
    assert "拒收 / rejected" in result.stderr and "notes.csv" in result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith("run ") and line.endswith("(exit 2)")


def test_runs_listing__shows_history(tmp_path):
    db = _store_with_mistakes(tmp_path)
    _check(db, tmp_path)
    _check(db, tmp_path, "--fail-on", "never")
    out = CliRunner().invoke(main, ["runs", "--db", str(db)])
    assert out.exit_code == 0
    lines = out.output.strip().splitlines()
    assert len(lines) == 3  # header + two runs
    assert lines[1].split()[-1] == "0" and lines[2].split()[-1] == "1"


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_runs_listing__limit_must_be_at_least_one(tmp_path, limit):
    # before: -1 reached DuckDB's LIMIT and exit 70, "internal error"
    db = _store_with_mistakes(tmp_path)
    refused = CliRunner().invoke(main, ["runs", "--db", str(db), "--limit", limit])
    assert refused.exit_code == 2, refused.output
    assert "--limit 的值无效" in refused.stderr and f"{limit} is not in the range x>=1" in refused.stderr
    assert "internal error" not in refused.stderr


def _run_ids(db) -> list[str]:
    out = CliRunner().invoke(main, ["runs", "--db", str(db)])
    return [line.split()[0] for line in out.output.strip().splitlines()[1:]]  # newest first


def test_prune__removes_older_report_folders_and_the_store_keeps_their_runs(tmp_path):
    db = _store_with_mistakes(tmp_path)
    for _ in range(3):
        assert _check(db, tmp_path).exit_code == 1
    newest, middle, oldest = _run_ids(db)
    runs_dir = tmp_path / "out" / "runs"
    (runs_dir / "notes").mkdir()  # not a run of this store: never touched
    prune = ["prune", "--db", str(db), "--outputs", str(tmp_path / "out"), "--keep", "1"]

    dry = CliRunner().invoke(main, [*prune, "--dry-run"])
    assert dry.exit_code == 0 and f"would remove: {runs_dir / middle} (" in dry.output
    assert {p.name for p in runs_dir.iterdir()} == {newest, middle, oldest, "notes"}

    done = CliRunner().invoke(main, prune)
    assert done.exit_code == 0, done.output
    assert "removed 2 report folders" in done.output
    assert {p.name for p in runs_dir.iterdir()} == {newest, "notes"}  # nothing half-removed left
    assert _latest(tmp_path) == runs_dir / newest
    assert _run_ids(db) == [newest, middle, oldest]  # the history stays whole
    # a removed run's reports are written again from the store
    again = CliRunner().invoke(main, ["report", oldest, "--db", str(db), "--outputs", str(tmp_path / "out")])
    assert again.exit_code == 0, again.output
    assert any(r["rule_id"] == "CODE_MISMATCH" for r in _exceptions(runs_dir / oldest))
    assert _latest(tmp_path) == runs_dir / newest


def test_prune__keeps_the_folder_latest_points_to(tmp_path):
    db = _store_with_mistakes(tmp_path)
    for _ in range(2):
        _check(db, tmp_path)
    newest, oldest = _run_ids(db)
    out = tmp_path / "out"
    (out / "latest").unlink()
    (out / "latest").symlink_to(Path("runs") / oldest)  # pointed back by hand, say
    done = CliRunner().invoke(main, ["prune", "--db", str(db), "--outputs", str(out), "--keep", "1"])
    assert done.exit_code == 0 and "removed 0 report folders" in done.output
    assert {p.name for p in (out / "runs").iterdir()} == {newest, oldest}


def test_prune__a_folder_that_cannot_be_removed_is_named_and_the_others_go(tmp_path, monkeypatch):
    db = _store_with_mistakes(tmp_path)
    for _ in range(3):
        _check(db, tmp_path)
    newest, middle, oldest = _run_ids(db)
    runs_dir = tmp_path / "out" / "runs"
    real_replace = os.replace

    def replace(src, dst):
        if Path(src).name == middle:
            raise PermissionError(13, "Permission denied")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    done = CliRunner().invoke(main, ["prune", "--db", str(db), "--outputs", str(tmp_path / "out"), "--keep", "1"])
    assert done.exit_code == 2
    assert f"cannot remove {runs_dir / middle}: Permission denied" in done.stderr
    assert "removed 1 report folder (" in done.stdout
    assert {p.name for p in runs_dir.iterdir()} == {newest, middle}


def test_prune__stopped_half_way_leaves_no_run_folder_half_removed_and_the_next_run_clears_it(tmp_path, monkeypatch):
    db = _store_with_mistakes(tmp_path)
    for _ in range(2):
        _check(db, tmp_path)
    newest, oldest = _run_ids(db)
    runs_dir = tmp_path / "out" / "runs"
    real_rmtree = shutil.rmtree

    def stopped(path, ignore_errors=False, **kwargs):
        if not ignore_errors:  # the removal proper, after the move
            raise KeyboardInterrupt
        return real_rmtree(path, ignore_errors=ignore_errors, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", stopped)
    CliRunner().invoke(main, ["prune", "--db", str(db), "--outputs", str(tmp_path / "out"), "--keep", "1"])
    monkeypatch.undo()
    assert {p.name for p in runs_dir.iterdir()} == {newest, f".{oldest}.pruned.tmp"}  # out of view
    _check(db, tmp_path)
    assert not list(runs_dir.glob(".*"))


@pytest.mark.parametrize("command", [["check", "--as-of", "2024-12-31"], ["report"],
                                     ["waive", "K", "--reason", "r", "--by", "b"],
                                     ["unwaive", "K", "--reason", "r", "--by", "b"], ["prune", "--keep", "3"]],
                         ids=["check", "report", "waive", "unwaive", "prune"])
def test_store_commands__a_mistyped_outputs_is_refused_and_no_store_is_made(tmp_path, command):
    # only `recon run` and `recon load` make a store; the others need one
    out = tmp_path / "typo"
    refused = CliRunner().invoke(main, [*command, "--outputs", str(out)])
    assert refused.exit_code == 2 and "store not found" in refused.output
    assert not out.exists()  # no store, no log folder: nothing left at the mistyped path


def test_prune__keep_must_be_at_least_one(tmp_path):
    db = _store_with_mistakes(tmp_path)
    refused = CliRunner().invoke(main, ["prune", "--db", str(db), "--keep", "0"])
    assert refused.exit_code == 2 and "--keep" in refused.output


# The `recon` command as installed: pipeline.console.entry, which imports pipeline.cli.entry and
# runs it; that ends the process with os._exit once the command is done. It must still run the
# exit handlers, flush what it printed and keep the command's exit status.
_ENTRY = """
import atexit, pathlib, sys
marker = pathlib.Path(sys.argv[1])
atexit.register(lambda: marker.write_text("exit handlers ran"))
sys.argv = ["recon", *sys.argv[2:]]
from pipeline.console import entry
entry()
print("not reached", file=sys.stderr)
"""


def _entry(tmp_path, *args):
    root = Path(__file__).resolve().parent.parent
    marker = tmp_path / "marker.txt"
    done = subprocess.run([sys.executable, "-c", _ENTRY, str(marker), *args], cwd=root,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    return done, marker


def test_recon_command__demo_run_exits_1_with_summary_log_and_exit_handlers(tmp_path):
    done, marker = _entry(tmp_path, "run", "--outputs", str(tmp_path / "out"))
    assert done.returncode == 1, done.stderr  # the demo's findings are errors: something to act on
    assert "(exit 1)" in done.stdout.splitlines()[-1]  # printed into a pipe, so it was flushed
    assert "not reached" not in done.stderr and "Traceback" not in done.stderr
    assert marker.read_text() == "exit handlers ran"
    log = (tmp_path / "out" / "logs" / "recon.log").read_text(encoding="utf-8").splitlines()
    assert log[-1].endswith("finished: exit 1, 12 findings")
    assert not (tmp_path / "out" / "recon.duckdb.wal").exists()  # the store was closed, checkpointed


def test_recon_command__usage_error_keeps_click_status_2(tmp_path):
    done, marker = _entry(tmp_path, "run", "--as-of", "not-a-date")
    assert done.returncode == 2
    assert "not-a-date" in done.stderr
    assert marker.read_text() == "exit handlers ran"


@pytest.mark.parametrize("name, value, said", [
    # before: a traceback at import and exit 1 (read by cron as "findings")
    ("RECON_LOCK_TIMEOUT", "xyz", "RECON_LOCK_TIMEOUT 应为等待的秒数"),
    # before: DuckDB refused the bare number as a bug, exit 70
    ("RECON_MEMORY_LIMIT", "512", "内存上限格式不对，须带单位"),
    # before: an empty catalogue and exit 0 (and a run that checked nothing)
    ("RECON_HOME", "/nonexistent", "/nonexistent 下没有 sql/checks"),
])
def test_recon_command__a_mistyped_setting_is_a_usage_error(tmp_path, monkeypatch, name, value, said):
    monkeypatch.setenv(name, value)
    db = tmp_path / "recon.duckdb"
    open_store(db).close()
    for args in (["rules"], ["runs", "--db", str(db)]):
        done, _ = _entry(tmp_path, *args)
        if name != "RECON_HOME" and args == ["rules"]:
            assert done.returncode == 0, done.stderr  # the catalogue needs no store
            continue
        assert done.returncode == 2, done.stderr
        assert said in done.stderr and "Traceback" not in done.stderr and name in done.stderr


def test_check__dates_that_leave_every_ledger_line_out_are_refused(tmp_path):
    """--as-of 2014-12-31 for 2024 (a slip of the keyboard) reconciled nothing and reported
    "0 errors", exit 0: a green night. Dates leaving every loaded line out are refused (exit 2),
    saying the lines' span; dates within it run as before."""
    import hostile_corpus as hc

    inputs = hc.write_inputs(tmp_path)
    out = str(tmp_path / "out")
    assert CliRunner().invoke(main, ["run", "--inputs", str(inputs), "--outputs", out, "--as-of",
                                     "2024-12-31"]).exit_code in (0, 1)
    first, last = duckdb.connect(f"{out}/recon.duckdb", read_only=True).execute(
        "select min(posted_on), max(posted_on) from ledger_lines").fetchone()
    for dates in (["--as-of", "2014-12-31"], ["--as-of", str(first - dt.timedelta(days=1))],
                  ["--as-of", "2024-12-31", "--from", str(last + dt.timedelta(days=1))],
                  ["--as-of", "2024-12-31", "--to", "2023-12-31"]):
        done = CliRunner().invoke(main, ["check", "--outputs", out, *dates])
        assert done.exit_code == 2, (dates, done.output)
        assert f"已加载账簿的分录日期为 {first} 至 {last}" in done.stderr and "a mistyped date?" in done.stderr
    runs = duckdb.connect(f"{out}/recon.duckdb", read_only=True).execute("select count(*) from runs").fetchone()
    assert runs == (1,)  # nothing recorded for the refused ones
    for dates in (["--as-of", str(first)], ["--as-of", "2024-12-31", "--from", str(last), "--to", "2025-03-31"]):
        assert CliRunner().invoke(main, ["check", "--outputs", out, *dates]).exit_code in (0, 1), dates


def test_load__a_file_loaded_as_the_other_kind_is_refused_not_skipped(tmp_path):
    """`recon load notice` given a ledger already loaded said "already loaded, skipped" (exit 0),
    while the same ledger not yet loaded was refused; likewise a notice given to `load ledger`."""
    import hostile_corpus as hc

    inputs = hc.write_inputs(tmp_path)
    out = str(tmp_path / "out")
    [ledger] = (inputs / "ledgers").iterdir()
    [notice] = (inputs / "notices").iterdir()
    assert CliRunner().invoke(main, ["load", "ledger", str(ledger), "--outputs", out]).exit_code == 0
    assert CliRunner().invoke(main, ["load", "notice", str(notice), "--outputs", out]).exit_code == 0
    wrong = CliRunner().invoke(main, ["load", "notice", str(ledger), "--outputs", out])
    assert wrong.exit_code == 2 and "该文件已作为账簿加载" in wrong.output and "not a notice" in wrong.output
    wrong = CliRunner().invoke(main, ["load", "ledger", str(notice), "--outputs", out])
    assert wrong.exit_code == 2 and "该文件已作为通知加载" in wrong.output and "not a ledger" in wrong.output


def test_run__inputs_naming_a_folder_of_exports_is_refused_saying_where_files_go(tmp_path):
    """--inputs inputs/ledgers (the exports' own folder): it ran as an empty inputs folder, exit 1,
    INPUT_MISSING blaming inputs/notices/ and inputs/ledgers/; now refused (exit 2), naming the
    folder given and where notices and exports go, and no store or outputs are made."""
    import hostile_corpus as hc

    inputs = hc.write_inputs(tmp_path)
    out = tmp_path / "out"
    done = CliRunner().invoke(main, ["run", "--inputs", str(inputs / "ledgers"), "--outputs", str(out)])
    assert done.exit_code == 2, done.output
    assert f"输入目录 {inputs / 'ledgers'} 下没有 notices/ 和 ledgers/ 子目录" in done.output
    assert f"notices go in {inputs / 'ledgers'}/notices/" in done.output and not out.exists()
    (inputs / "notices" / next((inputs / "notices").iterdir()).name).unlink()
    (inputs / "notices").rmdir()  # one of the two is enough: the run reports the other missing
    assert CliRunner().invoke(main, ["run", "--inputs", str(inputs), "--outputs", str(out),
                                     "--as-of", "2024-12-31"]).exit_code == 1


@pytest.mark.parametrize("value", ["nan", "-1", "inf", "abc"])
def test_recon_command__a_wait_that_is_no_number_of_seconds_is_a_usage_error(tmp_path, value):
    """--wait as RECON_LOCK_TIMEOUT: nan was an internal error (exit 70), -1 waited without end."""
    db = tmp_path / "recon.duckdb"
    open_store(db).close()
    done = CliRunner().invoke(main, ["runs", "--db", str(db), "--wait", value])
    assert done.exit_code == 2, done.output
    assert "应为等待的秒数" in done.stderr and "expected a number of seconds" in done.stderr
    assert "internal error" not in done.stderr


@pytest.mark.parametrize("args, chinese, english", [
    (["--bogus"], "没有选项 --bogus", "No such option"),
    (["rnu"], "没有命令 rnu（可用命令见 recon --help）", "No such command 'rnu'"),  # (8.2.0 suggests none)
    (["waive"], "缺少参数 FINDING_KEY", "Missing argument 'FINDING_KEY'"),
    (["waive", "K", "--by", "x"], "缺少选项 --reason", "Missing option '--reason'"),
    (["run", "--as-of"], "选项 --as-of 需要一个值", "requires an argument"),
    (["runs", "extra"], "多余的参数：extra", "unexpected extra argument"),
    (["run", "--fail-on", "bad"], "--fail-on 的值应为 'error', 'warning', 'never' 之一", "is not one of"),
    (["run", "--as-of", "2024-13-01"], "--as-of 的值无效：日期格式应为 YYYY-MM-DD", "expected YYYY-MM-DD"),
    (["load", "ledger", "/nonexistent/账簿.csv"], "PATHS...：/nonexistent/账簿.csv 不存在", "does not exist"),
])
def test_recon_command__click_usage_errors_are_in_chinese_and_english(tmp_path, args, chinese, english):
    # before, click's own errors were English only: "Error: No such option '--bogus'."
    if args[0] in ("run", "runs"):  # nothing written outside tmp_path if it were to run
        args = [args[0], "--outputs", str(tmp_path), *args[1:]]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"Error: {chinese}") and english in error, error


def test_recon_command__output_piped_into_a_reader_that_stops_early(tmp_path):
    # `recon rules | head -1`: before, the closed pipe was reported as an internal error (70)
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-c", _ENTRY, str(tmp_path / "marker.txt"), "rules"], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err  # as a shell reports a command stopped by SIGPIPE
    assert "internal error" not in err and "Traceback" not in err


@pytest.mark.parametrize("where", ["a_file/sub", "outputs_with_a_file_for_logs"])
def test_recon_command__an_outputs_folder_that_cannot_be_written_is_a_usage_error(tmp_path, where):
    # before: "internal error … please report this bug", exit 70
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "outputs_with_a_file_for_logs").mkdir()
    (tmp_path / "outputs_with_a_file_for_logs" / "logs").write_text("x")
    done, _ = _entry(tmp_path, "run", "--outputs", str(tmp_path / where))
    assert done.returncode == 2, done.stderr
    assert "无法读写" in done.stderr and "cannot read or write" in done.stderr
    assert str(tmp_path / where.split("/")[0]) in done.stderr and "internal error" not in done.stderr


def test_run__a_link_to_a_file_that_is_gone_is_rejected_by_name(tmp_path):
    # inputs/ledgers/ytd.csv -> a share not mounted tonight: before, the link was passed over in
    # silence and the run reported yesterday's numbers, exit 1, as if nothing were missing
    root = Path(__file__).resolve().parent.parent
    inputs = tmp_path / "inputs"
    shutil.copytree(root / "inputs", inputs)
    (inputs / "ledgers" / "ytd_20241130.csv").symlink_to(tmp_path / "share" / "ytd_20241130.csv")
    result = CliRunner().invoke(main, ["run", "--inputs", str(inputs), "--outputs", str(tmp_path / "out"),
                                       "--as-of", "2024-12-31"])
    assert result.exit_code == 2, result.output
    assert "ytd_20241130.csv" in result.stderr and "cannot be read" in result.stderr
    rejected = [r for r in _exceptions(_latest(tmp_path)) if r["rule_id"] == "INPUT_REJECTED"]
    assert [r["source_file"] for r in rejected] == ["ytd_20241130.csv"]


NOTICE_FILE = "000_a45419bc3fccfd31.txt"


def test_run__run_json_names_every_file_it_read_as_it_saw_it(tmp_path):
    # a copy of the ledger beside it, then `recon check`, then the export superseded later.
    # Before: both rows named the copy (the file loaded first), `recon check` listed no file at
    # all, and `recon report` of a past run showed today's status of its files
    root = Path(__file__).resolve().parent.parent
    inputs = tmp_path / "inputs"
    shutil.copytree(root / "inputs", inputs)
    [ledger] = (inputs / "ledgers").glob("*.csv")
    shutil.copy(ledger, inputs / "ledgers" / "a_copy.csv")  # read first: loaded; the export skipped
    out = tmp_path / "out"
    args = ["--outputs", str(out), "--as-of", "2024-12-31"]
    assert CliRunner().invoke(main, ["run", "--inputs", str(inputs), *args]).exit_code == 1

    def inputs_of(run_dir):
        manifest = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        return {(i["name"], i["action"]): i for i in manifest["inputs"]}

    first_dir = _latest(tmp_path)
    read = inputs_of(first_dir)
    assert set(read) == {("a_copy.csv", "loaded"), (ledger.name, "skipped"), (NOTICE_FILE, "loaded")}
    skipped = read[(ledger.name, "skipped")]
    assert skipped["path"] == str(ledger) and skipped["registered_path"].endswith("a_copy.csv")
    assert skipped["message"].startswith("与已加载的 a_copy.csv 内容相同")
    assert read[("a_copy.csv", "loaded")]["sha256"] == skipped["sha256"]

    assert CliRunner().invoke(main, ["check", *args]).exit_code == 1
    checked = inputs_of(_latest(tmp_path))
    assert set(checked) == {("a_copy.csv", "earlier"), (NOTICE_FILE, "earlier")}
    assert checked[("a_copy.csv", "earlier")]["status"] == "loaded"

    con = duckdb.connect(str(out / "recon.duckdb"))
    con.execute("update input_files set status = 'superseded', message = 'later' where kind = 'ledger'")
    con.close()
    assert CliRunner().invoke(main, ["report", first_dir.name, "--outputs", str(out)]).exit_code == 0
    again = inputs_of(first_dir)
    assert again[("a_copy.csv", "loaded")]["status"] == "loaded"  # as the first run counted it
    assert again[("a_copy.csv", "loaded")]["message"] is None


def test_run__run_json_records_the_definitions_the_run_read(tmp_path, monkeypatch):
    # an auditor asks whether tonight's run read the settings, codes and suites last night's did:
    # run.json had only the inputs and the rules' SQL
    import hashlib

    root = Path(__file__).resolve().parent.parent
    presets = tmp_path / "site_presets.toml"
    presets.write_text("[presets.cn-grp]\npurpose = [\"明细项目\"]\n", encoding="utf-8")
    monkeypatch.setenv("RECON_PRESETS", str(presets))
    out = tmp_path / "out"
    args = ["--outputs", str(out), "--as-of", "2024-12-31"]
    ran = CliRunner().invoke(main, ["run", "--inputs", str(root / "inputs"), *args])
    assert ran.exit_code == 1, ran.output
    first = _latest(tmp_path)
    recorded = json.loads((first / "run.json").read_text(encoding="utf-8"))["definitions"]
    for name in ("sql/facts.sql", "sql/staging.sql", "config/indicators.toml", "config/presets.toml",
                 "reference/function_codes_2024.csv", "expectations/fct_recon_lines.json"):
        data = (root / name).read_bytes()
        assert recorded[name] == {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}, name
    assert recorded[str(presets.resolve())]["sha256"] == hashlib.sha256(presets.read_bytes()).hexdigest()
    assert not any(name.startswith("sql/checks/") for name in recorded)  # the rules say theirs
    assert "definitions" not in json.loads((first / "run.json").read_text(encoding="utf-8"))["counts"]

    # written again later, run.json says what that run read, not what is there now
    monkeypatch.delenv("RECON_PRESETS")
    assert CliRunner().invoke(main, ["run", "--inputs", str(root / "inputs"), *args]).exit_code == 1
    assert str(presets.resolve()) not in json.loads((_latest(tmp_path) / "run.json").read_text("utf-8"))["definitions"]
    assert CliRunner().invoke(main, ["report", first.name, "--outputs", str(out)]).exit_code == 0
    assert json.loads((first / "run.json").read_text(encoding="utf-8"))["definitions"] == recorded
    # a run recorded before they were kept: not known, rather than today's
    con = duckdb.connect(str(out / "recon.duckdb"))
    con.execute("update runs set counts = json_object('files', json_extract(counts, '$.files')) "
                "where run_id = ?", [first.name])
    con.close()
    assert CliRunner().invoke(main, ["report", first.name, "--outputs", str(out)]).exit_code == 0
    assert json.loads((first / "run.json").read_text(encoding="utf-8"))["definitions"] is None


def test_run__a_notices_docx_beside_its_txt_is_recorded_as_that_notice_not_as_a_copy(tmp_path):
    # the .docx is another file of the same notice, not the same bytes: the run record said
    # "与已加载的 … 内容相同" (same content) of it, whatever the loader had said
    from notice_docx import build_notice_docx

    root = Path(__file__).resolve().parent.parent
    inputs = tmp_path / "inputs"
    shutil.copytree(root / "inputs", inputs)
    txt = inputs / "notices" / NOTICE_FILE
    build_notice_docx(txt.read_text(encoding="utf-8"), inputs / "notices" / "zz_notice.docx")
    out = tmp_path / "out"
    ran = CliRunner().invoke(main, ["run", "--inputs", str(inputs), "--outputs", str(out),
                                    "--as-of", "2024-12-31"])
    assert ran.exit_code == 1, ran.output
    manifest = json.loads((_latest(tmp_path) / "run.json").read_text(encoding="utf-8"))
    [docx] = [i for i in manifest["inputs"] if i["name"] == "zz_notice.docx"]
    assert docx["action"] == "skipped"
    assert "内容相同" not in docx["message"] and f"已由 {txt} 加载" in docx["message"], docx


def test_check__a_file_the_nightly_run_rejected_stays_reported_between_runs(tmp_path):
    # run (rejects broken.csv), an auditor's check, the next night's run. Before, the check
    # called INPUT_REJECTED resolved, and the next night called it new, its first-seen reset
    root = Path(__file__).resolve().parent.parent
    inputs = tmp_path / "inputs"
    shutil.copytree(root / "inputs", inputs)
    (inputs / "ledgers" / "broken.csv").write_text("no,columns,here\n1,2,3\n", encoding="utf-8")
    out = ["--outputs", str(tmp_path / "out"), "--as-of", "2024-12-31"]
    changes = []
    for command, status in ((["run", "--inputs", str(inputs)], 2), (["check"], 1),
                            (["run", "--inputs", str(inputs)], 2)):
        result = CliRunner().invoke(main, [*command, *out])
        assert result.exit_code == status, result.output
        changes.append([(r["source_file"], r["change"]) for r in _exceptions(_latest(tmp_path))
                        if r["rule_id"] == "INPUT_REJECTED"])
    assert changes == [[("broken.csv", "new")], [("broken.csv", "persisting")], [("broken.csv", "persisting")]]


def test_recon_command__installed_script_is_the_entry_point():
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["recon"] == "pipeline.console:entry"


# A signal while the command's modules are still being imported (the first 0.1-0.2 s): the import
# of pipeline.cli is where it arrives, as a user's Ctrl-C or a timeout's SIGTERM would
_SIGNAL_WHILE_IMPORTING = """
import importlib.abc, os, signal, sys
sent = getattr(signal, sys.argv[1])
class Signal(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "pipeline.cli":
            os.kill(os.getpid(), sent)
        return None
sys.meta_path.insert(0, Signal())
sys.argv = ["recon", "rules"]
from pipeline.console import entry
entry()
print("not reached", file=sys.stderr)
"""


@pytest.mark.parametrize("sig, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_recon_command__a_signal_while_it_imports_stops_it_without_a_traceback(sig, status):
    from pipeline import cli

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", _SIGNAL_WHILE_IMPORTING, sig], cwd=root,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == status
    assert done.stderr == cli.INTERRUPTED + "\n" and done.stdout == ""


def test_runs__many_findings_go_from_the_checks_to_the_store_without_python_objects(tmp_path, monkeypatch):
    """A run with thousands of findings (here every line of a ledger miscoded) stores and
    reports every one, and marks them new, persisting and resolved across runs, without a rule's
    findings ever being read into Python (a million of them would take gigabytes there)."""
    from pipeline import checks

    def no_python(*args, **kwargs):
        raise AssertionError("a run read a rule's findings into Python")

    monkeypatch.setattr(checks, "run_rule", no_python)
    lines = [dict(voucher_no=f"记-{n:04d}", debit=480, payee=f"户{n}", function_code="2210108")
             for n in range(1, 3001)]
    db = _store_with_mistakes(tmp_path, extra=lines)
    first = _check(db, tmp_path)
    assert first.exit_code == 1, first.output
    rows1 = _exceptions(_latest(tmp_path))
    miscoded = {r["voucher_no"] for r in rows1 if r["rule_id"] == "CODE_MISMATCH"}
    assert miscoded == {"记-0002"} | {line["voucher_no"] for line in lines}
    assert {r["change"] for r in rows1} == {"new"}
    errors = sum(r["severity"] == "error" for r in rows1)
    assert errors > 3000 and f"错误 {errors} errors, 警告 {len(rows1) - errors} warnings" in first.output

    con = new_store(tmp_path)  # the accountant corrects one of the miscoded lines, days later
    con.execute("update ledger_lines set function_code = '2210107' where voucher_no = '记-0002'")
    con.execute("update findings set first_seen = date '2024-12-02'")
    con.close()
    _check(db, tmp_path)
    rows2 = _exceptions(_latest(tmp_path))
    changes = {(r["voucher_no"], r["change"]) for r in rows2 if r["rule_id"] == "CODE_MISMATCH"}
    assert ("记-0002", "resolved") in changes and ("记-3000", "persisting") in changes
    assert not {c for _, c in changes} - {"persisting", "resolved"}
    persisting = [r["first_seen"] for r in rows2 if r["change"] == "persisting"]
    assert len(persisting) == len(rows1) - 1  # all but the corrected line
    assert set(persisting) == {"2024-12-02"}  # first seen by the first run, not today
