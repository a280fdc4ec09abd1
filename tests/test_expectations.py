"""Expectation suites (expectations/*.json) run through Great Expectations on the store, and
agree with the SQL rules they restate: the same ledger fails the same lines in both."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import socket
import sys
import threading
import time

import duckdb
import pytest

from builders import (DILAPIDATED, FUND_NAME, NOTICE_NO, OLD_ESTATES, RENT, RENTAL_HOUSING, SECOND_BATCH,
                      add_ledger, new_store, run_findings, seed_notice, set_context, two_batches_of_rent)
from pipeline import expectations
from pipeline.checks import run_rule
from pipeline.rules import all_rules, rule
from test_checks import clean_year

MISTAKES = [
    # rent booked to the old-estates code: CODE_MISMATCH
    dict(voucher_no="记-0912", posted_on=dt.date(2024, 9, 12), function_code="2210108", debit=480,
         payee="住户99"),
    # works booked to the subclass: CODE_NOT_ITEM_LEVEL
    dict(voucher_no="记-0902", posted_on=dt.date(2024, 9, 2), purpose=OLD_ESTATES,
         function_code="22101", debit=5000, payee="设计院"),
    # a code from no classification: CODE_UNKNOWN
    dict(voucher_no="记-0903", posted_on=dt.date(2024, 9, 3), purpose=OLD_ESTATES,
         function_code="2210188", debit=6000, payee="设计院"),
    # pooled account and a sub-account naming two lines: COMMINGLED_ACCOUNT
    dict(voucher_no="记-0904", posted_on=dt.date(2024, 9, 4), purpose=FUND_NAME,
         function_code="2210108", debit=7000, payee="设计院"),
    dict(voucher_no="记-0905", posted_on=dt.date(2024, 9, 5),
         purpose="2024年租赁补贴及保障性租赁住房", function_code="2210110", debit=800, payee="住户98"),
    # an unknown sub-account: UNMATCHED_EXPENDITURE
    dict(voucher_no="记-0906", posted_on=dt.date(2024, 9, 6), purpose="2024年公租房维修",
         function_code="2210106", debit=900, payee="物业"),
    # flag dropped, project code dropped: DIRECT_FLAG_MISSING
    dict(voucher_no="记-0907", posted_on=dt.date(2024, 9, 7), purpose=RENTAL_HOUSING,
         function_code="2210110", direct_flag=None, direct_flag_raw=None, debit=1000, payee="恒信"),
    dict(voucher_no="记-0908", posted_on=dt.date(2024, 9, 8), purpose=RENTAL_HOUSING,
         function_code="2210110", project_code=None, debit=1100, payee="恒信"),
    # the flag changed to 02 中央参照直达资金 on central direct money: DIRECT_FLAG_MISSING
    dict(voucher_no="记-0914", posted_on=dt.date(2024, 9, 14), purpose=RENTAL_HOUSING,
         function_code="2210110", direct_flag=True, direct_flag_raw="02 中央参照直达资金", debit=1150,
         payee="恒信"),
    # blank and mixed sources: SOURCE_NOT_SEPARATED
    dict(voucher_no="记-0909", posted_on=dt.date(2024, 9, 9), purpose=DILAPIDATED,
         function_code="2210103", fund_source=None, debit=1200, payee="独山子建安"),
    dict(voucher_no="记-0911", posted_on=dt.date(2024, 9, 11), purpose=DILAPIDATED,
         function_code="2210103", fund_source="中央直达资金+地方配套资金", debit=1300, payee="独山子建安"),
    # local matching money booked in the central direct sub-account: SOURCE_NOT_SEPARATED
    dict(voucher_no="记-0913", posted_on=dt.date(2024, 9, 13), purpose=DILAPIDATED, function_code="2210103",
         fund_source="地方配套资金", direct_flag=False, direct_flag_raw="09", debit=1600, payee="独山子建安"),
    # December 2023 prepayment: OUT_OF_PERIOD
    dict(voucher_no="记-1228", posted_on=dt.date(2023, 12, 28), purpose=RENTAL_HOUSING,
         function_code="2210110", debit=1400, payee="恒信"),
    # a slip and its red-ink reversal: neither the rules nor the suite see a breach
    dict(voucher_no="记-0920", posted_on=dt.date(2024, 9, 20), purpose=OLD_ESTATES,
         function_code="2210107", direct_flag=None, fund_source=None, debit=1500, payee="监理"),
    dict(voucher_no="记-0921", posted_on=dt.date(2024, 9, 21), purpose=OLD_ESTATES,
         function_code="2210107", direct_flag=None, fund_source=None, credit=1500, payee="监理"),
    # a refund of a prior year's payment (以前年度支出收回) credited to this year's account, and
    # miscoded: no spending of the year, so only OUT_OF_PERIOD reports it, and the suite fails it
    # there alone (its other expectations pass over it, as the other rules do)
    dict(voucher_no="记-0301", posted_on=dt.date(2024, 3, 1), function_code="2210108", credit=480,
         payee="住户96", summary="收回以前年度多发租赁补贴"),
    # last year's allocation paid late, its 文号 of 2023: not this notice's line, in no suite of it
    dict(voucher_no="记-0302", posted_on=dt.date(2024, 3, 2), budget_doc_no="克区财综〔2023〕2号",
         function_code="221", debit=480, payee="住户95"),
    # a reversal of nothing, miscoded: both report it
    dict(voucher_no="记-0930", posted_on=dt.date(2024, 9, 30), purpose=OLD_ESTATES,
         function_code="221", credit=50, payee="监理"),
    # a red-ink line before any payment it could reverse, then the payment, both miscoded: it
    # cancels nothing after its day, so the rules and the suite report both lines
    dict(voucher_no="记-0601", posted_on=dt.date(2024, 6, 1), purpose=OLD_ESTATES,
         function_code="221", credit=70, payee="监理"),
    dict(voucher_no="记-0605", posted_on=dt.date(2024, 6, 5), purpose=OLD_ESTATES,
         function_code="221", debit=70, payee="监理"),
    # one household's rent without the flag every month; August paid twice and the second paid
    # back in August: the reversal cancels August's duplicate, not July's payment
    *[dict(voucher_no=f"记-{day:%m%d}", posted_on=day, direct_flag=None, direct_flag_raw=None,
           debit=480, payee="住户97")
      for day in (dt.date(2024, 7, 15), dt.date(2024, 8, 15), dt.date(2024, 8, 16))],
    dict(voucher_no="记-0820", posted_on=dt.date(2024, 8, 20), direct_flag=None, direct_flag_raw=None,
         credit=480, payee="住户97"),
]


@pytest.fixture(scope="module")
def mistaken_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gx")
    con = new_store(tmp)
    seed_notice(con)
    set_context(con)
    add_ledger(con, clean_year() + MISTAKES, name="2024全年.csv")
    yield con, tmp
    con.close()


def test_suites__are_gx_suites_naming_existing_rules():
    specs = {s.name: s for s in expectations.load_suites()}
    assert set(specs) == {"stg_ledger_lines", "stg_ledger_line_keys", "fct_recon_lines",
                          "rpt_allocation_control"}
    rule_ids = {r.rule_id for r in all_rules()}
    assert "EXPECTATION_FAILED" in rule_ids
    assert rule("EXPECTATION_FAILED").stage == "expectation"
    mirrored = set()
    for spec in specs.values():
        assert spec.body["expectations"], spec.name
        for e in spec.body["expectations"]:
            assert e["type"].startswith("expect_")
            mirrored.update(e.get("meta", {}).get("mirrors", []))
    assert mirrored <= rule_ids
    assert mirrored == {"UNMATCHED_EXPENDITURE", "COMMINGLED_ACCOUNT", "CODE_NOT_ITEM_LEVEL",
                        "CODE_UNKNOWN", "CODE_MISMATCH", "DIRECT_FLAG_MISSING",
                        "SOURCE_NOT_SEPARATED", "OUT_OF_PERIOD", "OVER_ALLOCATION"}


def _failing(spec, outcome):
    rows = outcome.result.get("partial_unexpected_index_list") or []
    assert outcome.result.get("unexpected_count", 0) == len(rows)
    return {tuple(r[c] for c in spec.identity) for r in rows}


def _reported(con, rule_ids, identity):
    keys = set()
    for rule_id in rule_ids:
        for f in run_rule(con, rule(rule_id)):
            values = {"source_file": f.source_file, "row_no": f.source_row,
                      "notice_no": f.notice_no, "purpose": f.purpose}
            if values[identity[0]] is not None:
                keys.add(tuple(values[c] for c in identity))
    return keys


def test_suites_and_rules__fail_the_same_lines(mistaken_store):
    con, _ = mistaken_store
    specs = expectations.load_suites()
    results = expectations.run_suites(con, specs, None)
    by_name = {s.name: s for s in specs}
    groups: dict[tuple, set] = {}
    for spec in specs:
        for e, outcome in zip(spec.body["expectations"], results[spec.name]):
            assert not outcome.exception_info.get("raised_exception"), (spec.name, e)
            mirrors = tuple(e.get("meta", {}).get("mirrors", ()))
            if mirrors:
                groups.setdefault((spec.name, mirrors), set()).update(_failing(spec, outcome))
            elif spec.name in ("stg_ledger_lines", "stg_ledger_line_keys"):
                assert outcome.success, e     # clean staged input
    for (suite, mirrors), failing in groups.items():
        assert failing == _reported(con, mirrors, by_name[suite].identity), mirrors
    # the rows behind each rule, by voucher, for a reader of this test
    def vouchers(suite, column):
        spec = by_name[suite]
        for e, outcome in zip(spec.body["expectations"], results[suite]):
            if column in (e["kwargs"].get("column"), e["kwargs"].get("column_A")):
                return sorted(r.get("voucher_no") or r.get("purpose")
                              for r in outcome.result["partial_unexpected_index_list"])
    assert vouchers("fct_recon_lines", "booked_item_code") == ["记-0912"]
    assert vouchers("fct_recon_lines", "function_code_status") == [
        "记-0601", "记-0605", "记-0902", "记-0903", "记-0930"]
    assert vouchers("fct_recon_lines", "match_kind") == ["记-0904", "记-0905", "记-0906"]
    assert vouchers("fct_recon_lines", "direct_flag_carried") == ["记-0715", "记-0815", "记-0907", "记-0908",
                                                                  "记-0914"]
    assert vouchers("fct_recon_lines", "posted_year") == ["记-1228"]
    assert vouchers("fct_recon_lines", "prior_year_refund") == ["记-0301"]
    assert vouchers("fct_recon_lines", "local_money_apart") == ["记-0913"]
    # the clean year spends every allocation to the yuan, so each mistake tips its purpose over
    assert vouchers("rpt_allocation_control", "allocated") == sorted(
        [RENT, RENTAL_HOUSING, OLD_ESTATES, DILAPIDATED])


def _gx_statements(monkeypatch) -> list[str]:
    """The SQL statements GX sends to DuckDB from now on."""
    import duckdb_engine

    sent, execute = [], duckdb_engine.CursorWrapper.execute

    def recorded(self, statement, *args, **kwargs):
        sent.append(" ".join(str(statement).split()))
        return execute(self, statement, *args, **kwargs)

    monkeypatch.setattr(duckdb_engine.CursorWrapper, "execute", recorded)
    return sent


def _plain_gx(monkeypatch) -> None:
    """GX as installed, without _rows_only_when_some_fail, for the rest of the test."""
    from great_expectations.expectations import registry
    from great_expectations.expectations.metrics.map_metric_provider.column_map_metric_provider import (
        ColumnMapMetricProvider,
    )

    expectations._rows_only_when_some_fail()  # installed, so there is something to take off
    for definition in registry._registered_metrics.values():
        provider = definition.get("providers", {}).get("SqlAlchemyExecutionEngine")
        if provider and hasattr(provider[1], "_recon_original"):
            monkeypatch.setitem(definition["providers"], "SqlAlchemyExecutionEngine",
                                (provider[0], provider[1]._recon_original))
    patched = ColumnMapMetricProvider.__dict__["_get_evaluation_dependencies"].__func__
    monkeypatch.setattr(ColumnMapMetricProvider, "_get_evaluation_dependencies",
                        classmethod(patched._recon_original))
    monkeypatch.setattr(expectations, "_rows_only_when_some_fail", lambda: None)


def _unordered(result: dict) -> dict:
    """A result with its lists of failing rows in one order: GX lists them as its query returns
    them (no order by), and DuckDB returns them in another order from one plan to the next."""
    return {key: sorted(value, key=repr) if key in ("partial_unexpected_list", "partial_unexpected_counts",
                                                    "partial_unexpected_index_list",
                                                    "unexpected_list", "unexpected_index_list")
            and isinstance(value, list) else value
            for key, value in result.items()}


def test_suites__list_failing_rows_only_where_some_fail_with_gx_s_own_results(mistaken_store, monkeypatch):
    # GX's queries listing an expectation's failing rows each read the whole table; where its
    # count says none fail, they are not sent, and every result is what GX gives without this
    con, _ = mistaken_store
    specs = [s for s in expectations.load_suites() if s.name in ("stg_ledger_lines", "fct_recon_lines")]

    def validated():
        sent = _gx_statements(monkeypatch)
        results = expectations.run_suites(con, specs, None)
        listing = [s for s in sent if "stg_ledger_lines" in s and " WHERE " in s.upper() and " LIMIT " in s.upper()]
        return {name: [(r.expectation_config.type, r.expectation_config.kwargs.get("column"), r.success,
                        _unordered(r.result), r.exception_info) for r in rs]
                for name, rs in results.items()}, listing

    ours, ours_listing = validated()
    _plain_gx(monkeypatch)
    gx_own, gx_listing = validated()
    assert ours == gx_own
    passed = [r for r in ours["stg_ledger_lines"] if r[2]]
    failed = [r for r in ours["fct_recon_lines"] if not r[2] and r[3].get("unexpected_count")]
    assert passed and failed and all(r[3]["partial_unexpected_list"] for r in failed)
    assert ours_listing == [] and len(gx_listing) >= len(passed)


def test_allocation_suite__judges_batches_of_one_purpose_together_as_the_rule_does(tmp_path):
    # two batches of one year both allocate rent; lines without 指标文号 are counted under each.
    # The suite holds each allocation line to its own lines and the batches to their lines together,
    # as OVER_ALLOCATION does; judged on the per-line summary (each batch counting every shared
    # line) it failed both batches where the rule saw no breach: a disagreement every run
    con = two_batches_of_rent(tmp_path)
    [spec] = [s for s in expectations.load_suites() if s.name == "rpt_allocation_control"]

    def failing():
        [outcome] = expectations.run_suites(con, [spec], None)[spec.name]
        return _failing(spec, outcome)

    add_ledger(con, [dict(voucher_no="记-1", budget_doc_no=None, debit=900),
                     dict(voucher_no="记-2", budget_doc_no=None, debit=400, payee="李四")], name="a.csv")
    assert failing() == set() == _reported(con, ["OVER_ALLOCATION"], spec.identity)  # 1,300 of 1,500
    # a run of either batch alone (--notice) counts the other too: before, 1,300 of 500 failed 15号
    for scope in (SECOND_BATCH, NOTICE_NO, None):
        set_context(con, notice_no=scope)
        assert failing() == set() == _reported(con, ["OVER_ALLOCATION"], spec.identity), scope
    add_ledger(con, [dict(voucher_no="记-3", budget_doc_no=None, debit=300, payee="王五"),
                     dict(voucher_no="记-4", budget_doc_no=SECOND_BATCH, debit=600, payee="赵六")], name="b.csv")
    # 2,200 of 1,500 together (said on 2号, the first as issued), and 15号's own 600 over its 500
    assert failing() == {(SECOND_BATCH, RENT), (NOTICE_NO, RENT)} == _reported(con, ["OVER_ALLOCATION"], spec.identity)
    # a run of one batch (--notice) counts the other too, and judges only its own: the pool on it
    set_context(con, notice_no=NOTICE_NO)
    assert failing() == {(NOTICE_NO, RENT)} == _reported(con, ["OVER_ALLOCATION"], spec.identity)
    con.close()


def test_line_suite__a_line_counted_under_two_batches_fails_once_as_the_rules_report_it(tmp_path):
    # a line without 指标文号 of a purpose both batches allocate is counted under each; the rules
    # of single lines report it once (under the first batch), and the suite of lines checks it once
    # too: before, GX counted it under each batch, twice what the rules reported
    con = two_batches_of_rent(tmp_path)
    [spec] = [s for s in expectations.load_suites() if s.name == "fct_recon_lines"]
    add_ledger(con, [dict(voucher_no="记-1", budget_doc_no=None, debit=300, function_code="2210101"),
                     dict(voucher_no="记-2", budget_doc_no=None, debit=200, direct_flag=None, payee="李四"),
                     dict(voucher_no="记-3", budget_doc_no=None, debit=200, fund_source=None, payee="王五")])
    failed = []
    for e, outcome in zip(spec.body["expectations"], expectations.run_suites(con, [spec], None)[spec.name]):
        mirrors = tuple(e.get("meta", {}).get("mirrors", ()))
        if mirrors and not outcome.success:
            rows = _failing(spec, outcome)
            assert rows == _reported(con, mirrors, spec.identity), mirrors
            failed.append((mirrors, outcome.result["unexpected_count"], len(rows)))
    # 记-1's code, 记-2's flag, 记-3's blank fund source: each line failed once
    assert sorted(failed) == [(("CODE_MISMATCH",), 1, 1), (("DIRECT_FLAG_MISSING",), 1, 1),
                              (("SOURCE_NOT_SEPARATED",), 1, 1)]
    # a run of the second batch alone counts the first too: the lines are still checked once, under
    # it, and a line of the first batch's own (its 指标文号) not at all
    add_ledger(con, [dict(voucher_no="记-4", debit=100, function_code="2210101", payee="赵六")], name="b.csv")
    set_context(con, notice_no=SECOND_BATCH)
    outcomes = expectations.run_suites(con, [spec], None)[spec.name]
    for e, outcome in zip(spec.body["expectations"], outcomes):
        mirrors = tuple(e.get("meta", {}).get("mirrors", ()))
        if mirrors and not outcome.success:
            assert _failing(spec, outcome) == _reported(con, mirrors, spec.identity), mirrors
    assert [(f.notice_no, f.voucher_no) for f in run_rule(con, rule("CODE_MISMATCH"))] == [(SECOND_BATCH, "记-1")]
    code = next(o for e, o in zip(spec.body["expectations"], outcomes)
                if "CODE_MISMATCH" in e.get("meta", {}).get("mirrors", ()))
    assert code.result["unexpected_count"] == 1
    con.close()


def test_line_suite__a_wrong_code_corrected_in_bulk_fails_nowhere_as_the_rules_say(tmp_path):
    # a batch on a wrong code taken off by one red line without payee (红字冲销 of the batch) is
    # corrected: the rules of codes report none of its lines and the suite's code expectations
    # pass over them (code_corrected); a batch half taken off fails in both, line by line. Before,
    # both failed every line of the corrected batch too
    con = new_store(tmp_path)
    seed_notice(con)
    [spec] = [s for s in expectations.load_suites() if s.name == "fct_recon_lines"]

    def batch(voucher, day, purpose, code, taken_off):
        lines = [dict(voucher_no=voucher, line_no=str(n), posted_on=day, purpose=purpose, function_code=code,
                      debit=480, payee=f"住户{n}") for n in (1, 2)]
        return lines + [dict(voucher_no=voucher + "红", posted_on=dt.date(2024, 5, 10), purpose=purpose,
                             function_code=code, credit=taken_off, payee=None)]
    add_ledger(con, batch("记-01", dt.date(2024, 1, 5), RENT, "2210108", 960)          # CODE_MISMATCH, corrected
               + batch("记-02", dt.date(2024, 2, 5), RENTAL_HOUSING, "2210107", 480)  # CODE_MISMATCH, 480 left
               + batch("记-03", dt.date(2024, 3, 5), OLD_ESTATES, "22101", 960)       # CODE_NOT_ITEM_LEVEL, corrected
               + batch("记-04", dt.date(2024, 4, 5), DILAPIDATED, "221", 480))        # CODE_NOT_ITEM_LEVEL, 480 left

    def failing(column):
        found = {}
        for e, outcome in zip(spec.body["expectations"], expectations.run_suites(con, [spec], None)[spec.name]):
            mirrors = tuple(e.get("meta", {}).get("mirrors", ()))
            if mirrors:
                assert _failing(spec, outcome) == _reported(con, mirrors, spec.identity), mirrors
            if column in (e["kwargs"].get("column"), e["kwargs"].get("column_A")):
                found = {r["voucher_no"] for r in outcome.result.get("partial_unexpected_index_list") or []}
        return found

    set_context(con)
    assert failing("booked_item_code") == {"记-02", "记-02红"}
    assert failing("function_code_status") == {"记-04", "记-04红"}
    # as of a day before the red lines (10 May), every batch is on its wrong code
    set_context(con, as_of=dt.date(2024, 5, 1))
    assert failing("booked_item_code") == {"记-01", "记-02"}
    assert failing("function_code_status") == {"记-03", "记-04"}
    con.close()


def test_line_suite__a_wrong_booking_corrected_in_bulk_fails_nowhere_as_the_rules_say(tmp_path):
    # batches without the flag, with a blank source, in the pooled account and in a sub-account of
    # no purpose, each taken off by one red line without payee (红字冲销 of the batch): corrected,
    # their rules report none of their lines and the suite's expectations pass over them
    # (flag_corrected, source_corrected, account_corrected); the same batches half taken off fail
    # in both, line by line. Before, both failed every line of the corrected batches too
    con = new_store(tmp_path)
    seed_notice(con)
    [spec] = [s for s in expectations.load_suites() if s.name == "fct_recon_lines"]

    def batch(voucher, day, taken_off, **mistake):
        lines = [dict(voucher_no=voucher, line_no=str(n), posted_on=day, debit=480, payee=f"住户{n}", **mistake)
                 for n in (1, 2)]
        return lines + [dict(voucher_no=voucher + "红", posted_on=dt.date(2024, 6, 10), credit=taken_off,
                             payee=None, **mistake)]
    no_flag = dict(purpose=RENTAL_HOUSING, function_code="2210110", direct_flag=None, direct_flag_raw=None)
    add_ledger(con, batch("记-01", dt.date(2024, 1, 5), 960, **no_flag)                     # corrected
               + batch("记-02", dt.date(2024, 2, 5), 480, **{**no_flag, "purpose": RENT,  # 480 left
                                                               "function_code": "2210107"})
               + batch("记-03", dt.date(2024, 3, 5), 960, fund_source=None)                  # corrected
               + batch("记-04", dt.date(2024, 4, 5), 480, purpose=DILAPIDATED, function_code="2210103",
                       fund_source=None)                                                      # 480 left
               + batch("记-05", dt.date(2024, 5, 5), 960, purpose=FUND_NAME)                 # corrected
               + batch("记-06", dt.date(2024, 5, 6), 480, purpose="2024年公租房维修"))       # 480 left

    def failing():
        # the vouchers failing the expectations of each column; and, for each rule, the lines
        # failing the expectations that mirror it are the lines it reports (SOURCE_NOT_SEPARATED:
        # three expectations)
        found, groups = {}, {}
        for e, outcome in zip(spec.body["expectations"], expectations.run_suites(con, [spec], None)[spec.name]):
            mirrors = tuple(e.get("meta", {}).get("mirrors", ()))
            if mirrors:
                groups.setdefault(mirrors, set()).update(_failing(spec, outcome))
            found.setdefault(e["kwargs"].get("column"), set()).update(
                r["voucher_no"] for r in outcome.result.get("partial_unexpected_index_list") or [])
        for mirrors, lines in groups.items():
            assert lines == _reported(con, mirrors, spec.identity), mirrors
        return found

    set_context(con)
    found = failing()
    assert found["direct_flag_carried"] == {"记-02"}
    assert found["fund_source_named"] == {"记-04"}
    assert found["match_kind"] == {"记-06", "记-06红"}
    # as of a day before the red lines (10 June), every batch is wrong
    set_context(con, as_of=dt.date(2024, 6, 1))
    found = failing()
    assert found["direct_flag_carried"] == {"记-01", "记-02"}
    assert found["fund_source_named"] == {"记-03", "记-04"}
    assert found["match_kind"] == {"记-05", "记-06"}
    con.close()

def test_materialised_suites__copy_only_the_columns_they_read_and_judge_as_on_the_view(mistaken_store):
    con, _ = mistaken_store
    spec = {s.name: s for s in expectations.load_suites()}["fct_recon_lines"]
    view = [d[0] for d in con.execute("select * from fct_recon_lines limit 0").description]
    copied = [c.strip('"') for c in expectations._select_list(con, spec).split(", ")]
    assert copied == [c for c in view if c in spec.columns()] and len(copied) < len(view)
    assert {"reversed", "amount", "row_no", "source_file", "posted_year", "fiscal_year"} <= set(copied)
    on_copy = expectations.run_suites(con, [spec], None)[spec.name]
    on_view = expectations.run_suites(
        con, [dataclasses.replace(spec, materialize=False)], None)[spec.name]

    def judged(outcomes):  # rows in any order: DuckDB returns them as its threads finish
        return [(o.success, o.result.get("unexpected_count"),
                 sorted(str(sorted(r.items())) for r in o.result.get("partial_unexpected_index_list") or []),
                 bool(o.exception_info.get("raised_exception"))) for o in outcomes]
    assert judged(on_copy) == judged(on_view)
    assert [failed for ok, _, failed, _ in judged(on_copy) if not ok] and not any(
        raised for *_, raised in judged(on_copy))


@pytest.mark.parametrize("expectation, reads", [
    ({"type": "expect_column_values_to_not_be_null",
      "kwargs": {"column": "a", "row_condition": {"type": "and", "conditions": [
          {"type": "comparison", "column": {"name": "b"}, "operator": "==", "parameter": False},
          {"type": "or", "conditions": [
              {"type": "comparison", "column": {"name": "c"}, "operator": ">", "parameter": 0}]}]}}},
     {"a", "b", "c", "k"}),
    ({"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["a", "b"]}},
     {"a", "b", "k"}),
    ({"type": "expect_column_pair_values_to_be_equal", "kwargs": {"column_A": "a", "column_B": "b"}},
     {"a", "b", "k"}),
    # the table's shape, or a condition GX parses from text: every column is copied
    ({"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["a"]}}, None),
    ({"type": "expect_column_values_to_not_be_null",
      "kwargs": {"column": "a", "row_condition": 'b == "x"', "condition_parser": "great_expectations"}},
     None),
])
def test_suite_columns__what_a_suite_reads_or_none_when_it_cannot_be_told(expectation, reads, tmp_path):
    spec = expectations.SuiteSpec(name="t", table="t", materialize=True, index_columns=["k"],
                                  identity=["k"], body={"expectations": [expectation]},
                                  path=tmp_path / "t.json")
    assert spec.columns() == reads
    con = duckdb.connect()
    con.execute("create table t (k int, a int, b varchar, c int, d int)")
    assert expectations._select_list(con, spec) == (
        "*" if reads is None else ", ".join(f'"{c}"' for c in "kabcd" if c in reads))


def test_validate__agreeing_suites_add_no_finding_and_write_offline_docs(mistaken_store, monkeypatch):
    con, tmp = mistaken_store
    run_dir = tmp / "run"

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    # an isolated government network: GX must neither phone home nor fetch anything
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert expectations.validate(con, "test-run", run_dir) == []
    assert (run_dir / "data_docs" / "index.html").is_file()
    pages = list((run_dir / "data_docs").rglob("*.html"))
    assert len(pages) >= 4     # index, three suites' expectation pages and validation results
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "https://cdn" not in text and "amazonaws.com" not in text and "unpkg.com" not in text
    # temp tables of the validation are gone, the connection is still the run's
    assert con.execute("select count(*) from duckdb_tables() where table_name like 'gx_%'").fetchone()[0] == 0
    assert con.execute("select 1").fetchone() == (1,)


def test_stg_suite__malformed_staged_rows_become_findings(tmp_path):
    con = new_store(tmp_path)
    seed_notice(con)
    set_context(con)
    add_ledger(con, [
        dict(voucher_no="记-0001", debit=480),
        dict(voucher_no="记-0002", account_code="预算支出", debit=480, payee="李四"),
        dict(voucher_no="记-0003", line_no="1", function_code="22101X", debit=480, payee="王五",
             project_code="20240001", budget_doc_no=None, purpose="办公经费"),
        dict(voucher_no="记-0003", line_no="1", function_code="22101X", debit=480, payee="王五",
             project_code="20240001", budget_doc_no=None, purpose="办公经费"),
    ], name="bad.csv")
    found = expectations.validate(con, "test-run", tmp_path / "run")
    con.close()
    got = sorted((f.severity, f.voucher_no, f.source_row or 0, f.expected.split("(")[0]) for f in found)
    assert got == [
        ("error", "记-0002", 2, "stg_ledger_lines: expect_column_values_to_match_regex"),
        ("warning", "记-0003", 0, "stg_ledger_line_keys: expect_compound_columns_to_be_unique"),
        ("warning", "记-0003", 3, "stg_ledger_lines: expect_column_values_to_match_regex"),
        ("warning", "记-0003", 4, "stg_ledger_lines: expect_column_values_to_match_regex"),
    ]
    dup = next(f for f in found if "compound" in f.expected)
    assert "times=2" in dup.observed
    f = next(f for f in found if f.voucher_no == "记-0002")
    assert f.rule_id == "EXPECTATION_FAILED" and f.source_file == "bad.csv"
    assert "科目编码" in f.message and "account code" in f.message and "预算支出" in f.observed
    assert len({x.finding_key for x in found}) == len(found)


def test_line_keys_suite__fails_what_gx_fails_on_the_whole_staged_table(tmp_path):
    # one row per voucher line is checked on stg_ledger_line_repeats (the lines whose key another
    # line shares), not on all staged lines: the same rows must fail, counted the same way
    con = new_store(tmp_path)
    seed_notice(con)
    set_context(con)
    add_ledger(con, [
        dict(voucher_no="记-1"), dict(voucher_no="记-1"), dict(voucher_no="记-1"),  # three copies
        dict(voucher_no="记-2", book="budget"), dict(voucher_no="记-2", book="financial"),
        dict(voucher_no="记-3", line_no=None), dict(voucher_no="记-3", line_no=None),
        dict(voucher_no="记-4", book=None), dict(voucher_no="记-4", book=None),
        dict(voucher_no="记-5", line_no="1"), dict(voucher_no="记-5", line_no="2"),
        dict(voucher_no="记-6"),
    ], name="a.csv")
    add_ledger(con, [dict(voucher_no="记-6"), dict(voucher_no="记-7"), dict(voucher_no="记-7")],
               name="b.csv")
    whole_dir = tmp_path / "whole"
    whole_dir.mkdir()
    keys = next(s for s in expectations.load_suites() if s.name == "stg_ledger_line_keys")
    (whole_dir / "whole.json").write_text(json.dumps({
        **keys.body, "name": "whole", "meta": {**keys.body["meta"], "table": "stg_ledger_lines",
                                               "materialize": False}}), encoding="utf-8")
    whole = expectations.load_suites(whole_dir)
    got = expectations.run_suites(con, [keys], None)[keys.name]
    want = expectations.run_suites(con, whole, None)["whole"]

    def failing(outcome):
        rows, count = expectations._unexpected(outcome)
        return count, sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)

    assert failing(got[0]) == failing(want[0])
    count, rows = failing(got[0])
    assert count == 5 and len(rows) == 2      # 记-1 three times in a.csv, 记-7 twice in b.csv
    assert {json.loads(r)["voucher_no"] for r in rows} == {"记-1", "记-7"}
    # the table GX reads holds only the lines that share a key
    assert con.execute("select count(*) from stg_ledger_line_repeats").fetchone() == (5,)
    con.close()


def _suite_restating_code_mismatch(tmp_path, monkeypatch, name: str, expectation: dict) -> None:
    """The only suite of the test: one expectation on fct_recon_lines that claims to restate
    CODE_MISMATCH, its failing rows identified by file and row."""
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / f"{name}.json").write_text(json.dumps({
        "name": name, "meta": {"table": "fct_recon_lines", "materialize": True,
                               "index_columns": ["source_file", "row_no", "voucher_no", "line_no"],
                               "identity": ["source_file", "row_no"]},
        "expectations": [{**expectation, "meta": {"mirrors": ["CODE_MISMATCH"]}}]}), encoding="utf-8")
    monkeypatch.setattr(expectations, "EXPECTATIONS_DIR", suites)


def test_disagreement__suite_stricter_than_its_rule_is_reported(tmp_path, monkeypatch):
    # a suite claiming to restate CODE_MISMATCH but comparing raw codes also fails 22101 lines
    _suite_restating_code_mismatch(tmp_path, monkeypatch, "strict", {
        "type": "expect_column_pair_values_to_be_equal",
        "kwargs": {"column_A": "function_code", "column_B": "allocated_code",
                   "ignore_row_if": "either_value_is_missing"}})
    con = new_store(tmp_path)
    seed_notice(con)
    set_context(con)
    add_ledger(con, [
        dict(voucher_no="记-0001", function_code="22101", debit=480),
        dict(voucher_no="记-0002", function_code="2210108", debit=480, payee="李四"),
    ])
    found = expectations.validate(con, "test-run", tmp_path / "run")
    con.close()
    assert [(f.rule_id, f.severity, f.voucher_no, f.observed) for f in found] == [
        ("EXPECTATION_FAILED", "warning", "记-0001", "suite only")]
    assert "CODE_MISMATCH" in found[0].message


@pytest.mark.parametrize("miscoded", [2, expectations.ROW_CAP + 10])
def test_disagreement__rule_stricter_than_its_suite_listed_by_row_or_counted(tmp_path, monkeypatch,
                                                                          miscoded):
    # a suite claiming to restate CODE_MISMATCH that fails nothing: each line the rule reports is
    # a disagreement, named one by one while the rule reports no more rows than GX may list,
    # else counted once (the rule's own findings list the rows; none is read into Python)
    _suite_restating_code_mismatch(tmp_path, monkeypatch, "lax", {
        "type": "expect_column_values_to_not_be_null", "kwargs": {"column": "row_no"}})
    con = new_store(tmp_path)
    seed_notice(con)
    set_context(con)
    add_ledger(con, [dict(voucher_no=f"记-{i:04d}", function_code="2210108", debit=480, payee=f"户{i}")
                     for i in range(miscoded)] + [dict(voucher_no="记-9999", debit=480)])
    found = expectations.validate(con, "test-run", tmp_path / "run")
    con.close()
    if miscoded <= expectations.ROW_CAP:
        assert sorted((f.voucher_no, f.observed) for f in found) == [
            (f"记-{i:04d}", "CODE_MISMATCH only") for i in range(miscoded)]
    else:
        assert [(f.voucher_no, f.observed) for f in found] == [(None, f"0 / {miscoded}")]
        assert f"规则 CODE_MISMATCH 报告 {miscoded} 行" in found[0].message


def test_stg_suite__more_failing_rows_than_listed_give_one_stable_count(tmp_path):
    # GX lists at most ROW_CAP failing rows, and which ones depends on DuckDB's scan order: beyond
    # the cap only the count is reported, so two identical runs report identical findings
    con = new_store(tmp_path)
    seed_notice(con)
    set_context(con)
    bad = expectations.ROW_CAP + 50
    add_ledger(con, [dict(voucher_no=f"记-{i:04d}", account_code="预算支出", debit=480, payee=f"户{i}")
                     for i in range(bad)] + [dict(voucher_no="记-9999", debit=480)], name="many.csv")
    runs = [expectations.validate(con, f"run-{n}", tmp_path / f"run{n}") for n in (1, 2)]
    con.close()
    mine = [[f for f in found if "account_code" in (f.key_detail or "")] for found in runs]
    assert [(f.observed, f.source_row, f.voucher_no) for f in mine[0]] == [(f"{bad} rows", None, None)]
    assert f"共 {bad} 行" in mine[0][0].message and f"{bad} in all" in mine[0][0].message
    assert sorted(f.finding_key for f in runs[0]) == sorted(f.finding_key for f in runs[1])


def test_gx_import__leaves_unused_heavy_modules_deferred_until_first_use():
    # In a fresh interpreter: GX imports scipy.stats and altair at start-up (about 1 s) for the
    # KL-divergence expectation only. The stand-ins must survive GX's import, and the first
    # attribute read must give the real module, for `import x` and `from x import y` alike.
    import subprocess
    import sys

    script = """
import sys
from pipeline import expectations as E
E.import_gx_early().join()  # as a run does it: stand-ins, then GX, on a thread
assert "great_expectations" in sys.modules
import inspect
inspect.stack()  # GX calls it when it serialises a Decimal; it reads every module's __file__
kinds = {n: type(sys.modules[n]).__name__ for n in E.UNUSED_BY_SUITES}
assert kinds == {n: "_DeferredModule" for n in E.UNUSED_BY_SUITES}, kinds
from scipy import stats
assert round(float(stats.entropy([0.5, 0.5], [0.9, 0.1])), 6) == 0.510826
from scipy.stats import norm
assert norm.cdf(0) == 0.5
assert type(sys.modules["scipy.stats"]).__name__ == "module"
E._defer_imports(("no_such_package.sub", "no_such_module"))  # absent: no stand-in, no error
assert "no_such_package.sub" not in sys.modules and "no_such_module" not in sys.modules
import altair
assert altair.Chart.__name__ == "Chart" and type(sys.modules["altair"]).__name__ == "module"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# --- the suites beside the checks (pipeline.run.reconcile) -------------------------------------

def _store_for_run(tmp_path):
    con = new_store(tmp_path)
    seed_notice(con)
    # the mistakes the rules find, and two that only the suites do (a malformed account code,
    # a voucher line exported twice)
    add_ledger(con, clean_year() + MISTAKES + [
        dict(voucher_no="记-0950", account_code="预算支出", debit=480, payee="李四"),
        dict(voucher_no="记-0951", line_no="1", debit=480, payee="王五"),
        dict(voucher_no="记-0951", line_no="1", debit=480, payee="王五"),
    ], name="2024全年.csv")
    return con


def _comparable(findings):
    return sorted((f.rule_id, f.severity, f.voucher_no or "", f.line_no or "", f.expected or "",
                   f.observed or "", f.message) for f in findings)


def test_reconcile__suites_run_beside_the_checks_on_their_own_connection_and_the_snapshot(
        tmp_path, monkeypatch):
    from pipeline import run

    con = _store_for_run(tmp_path)
    suites_started = threading.Event()
    seen = {}
    real_run_suites, real_collect_stage = expectations.run_suites, run.collect_stage

    def run_suites(cur, specs, docs_dir):
        suites_started.set()
        seen["thread"] = threading.current_thread().name
        seen["own connection"] = cur is not con
        # fct_expenditure_booked (which fct_expenditure filters) on the suites' connection is the
        # run's snapshot, not the view
        seen["reads"] = cur.execute(
            "select sql from duckdb_views() where temporary and view_name = 'fct_expenditure_booked'"
        ).fetchall()
        return real_run_suites(cur, specs, docs_dir)

    def collect_stage(c, stage):
        if stage == "ledger":  # sequential suites would start only after this returns
            seen["beside the checks"] = suites_started.wait(timeout=30)
            # the interpreter handed between the threads often (each call into DuckDB waits for it)
            seen["switch interval"] = sys.getswitchinterval()
        return real_collect_stage(c, stage)

    monkeypatch.setattr(expectations, "run_suites", run_suites)
    monkeypatch.setattr(run, "collect_stage", collect_stage)
    before = sys.getswitchinterval()
    result = run.reconcile(con, tmp_path / "out", run.Scope(as_of=dt.date(2024, 12, 31)))
    assert seen["beside the checks"] and seen["own connection"] and seen["thread"] == "recon-suites"
    assert seen["switch interval"] == min(before, run.RUN_SWITCH_INTERVAL) < 0.005
    assert sys.getswitchinterval() == before
    assert len(seen["reads"]) == 1 and run.SNAPSHOT_DB in seen["reads"][0][0]
    assert (result.run_dir / "data_docs" / "index.html").is_file()
    assert not [t for t in threading.enumerate() if t.name == "recon-suites"]

    # the same findings as the suites validated after the checks, on the run's own connection
    found = run_findings(con, result.run_id)
    set_context(con)
    alone = expectations.validate(con, "test-run", tmp_path / "alone")
    con.close()
    assert _comparable(f for f in found if f.rule_id == "EXPECTATION_FAILED") == _comparable(alone)
    assert {f.voucher_no for f in alone} >= {"记-0950", "记-0951"}


def test_reconcile__a_failing_check_stops_the_suites_before_the_snapshot_goes(tmp_path, monkeypatch):
    from pipeline import run

    con = _store_for_run(tmp_path)
    in_suites, cancelling = threading.Event(), threading.Event()
    seen = []
    real_run_suites, real_cancel = expectations.run_suites, expectations.BackgroundSuites.cancel

    def cancel(self):
        cancelling.set()
        real_cancel(self)

    def slow_suites(cur, specs, docs_dir):
        in_suites.set()
        # still in Python when the run starts cancelling: its first interrupt finds no query
        assert cancelling.wait(timeout=60)
        time.sleep(0.2)
        try:  # a query of a minute or more, interrupted when the run fails
            cur.execute("select count(*) from range(20000000000) as a(i) where i % 7 = 3").fetchall()
        except duckdb.InterruptException:
            seen.append("interrupted")
            raise
        return real_run_suites(cur, specs, docs_dir)

    def failing_stage(c, stage):
        if stage == "ledger":
            assert in_suites.wait(timeout=60)
            raise RuntimeError("check failed")
        return []

    monkeypatch.setattr(expectations, "run_suites", slow_suites)
    monkeypatch.setattr(expectations.BackgroundSuites, "cancel", cancel)
    monkeypatch.setattr(run, "collect_stage", failing_stage)
    with pytest.raises(RuntimeError, match="check failed"):
        run.reconcile(con, tmp_path / "out", run.Scope(as_of=dt.date(2024, 12, 31)))
    assert seen == ["interrupted"]
    assert not [t for t in threading.enumerate() if t.name == "recon-suites"]
    assert run.SNAPSHOT_DB not in {r[0] for r in con.execute("select database_name from duckdb_databases()").fetchall()}
    assert con.execute("select count(*) from runs").fetchone()[0] == 0
    con.close()


def test_reconcile__an_error_in_the_suites_fails_the_run(tmp_path, monkeypatch):
    from pipeline import run

    con = _store_for_run(tmp_path)

    def broken(cur, specs, docs_dir):
        raise ValueError("suite broke")

    monkeypatch.setattr(expectations, "run_suites", broken)
    with pytest.raises(ValueError, match="suite broke"):
        run.reconcile(con, tmp_path / "out", run.Scope(as_of=dt.date(2024, 12, 31)))
    assert con.execute("select count(*) from runs").fetchone()[0] == 0
    assert run.SNAPSHOT_DB not in {r[0] for r in con.execute("select database_name from duckdb_databases()").fetchall()}
    con.close()
