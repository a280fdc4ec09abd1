"""Purpose aliases (pipeline/aliases.py): inputs/purpose_aliases.csv names the sub-accounts a
unit's ledger uses for an allocation line, and `recon run` matches the ledger by them."""
from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import hostile_corpus as hc
from hostile_corpus import AS_OF, NOTICE_NO, RENT, SEED_NOTICE, invoke

# the unit's sub-account for the rent subsidy, named neither as the notice names the line nor by
# its core name (租赁补贴)
OWN_NAME = "住房租赁补贴专户"


def _inputs(tmp_path: Path, aliases: str | None, encoding: str = "gbk") -> Path:
    inputs = tmp_path / "inputs"
    (inputs / "notices").mkdir(parents=True)
    shutil.copy(SEED_NOTICE, inputs / "notices")
    (inputs / "ledgers").mkdir()
    rows = [hc.budget_row("记-1", "2024-04-10", "480.00", OWN_NAME, "2210107 保障性住房租金补贴", "张三"),
            hc.budget_row("记-2", "2024-04-11", "960.00", RENT, "2210107 保障性住房租金补贴", "李四")]
    hc.write_csv(inputs / "ledgers" / "ledger.csv", rows)
    if aliases is not None:
        (inputs / "purpose_aliases.csv").write_bytes(aliases.encode(encoding))
    return inputs


def _run(tmp_path: Path, inputs: Path):
    out = tmp_path / "out"
    ran = invoke(["run", "--inputs", str(inputs), "--outputs", str(out), "--as-of", AS_OF])
    return ran, out


def _unmatched(out: Path) -> list[str]:
    rows = hc.read_csv_rows((out / "latest").resolve() / "exceptions.csv")
    return [r["voucher_no"] for r in rows if r["rule_id"] == "UNMATCHED_EXPENDITURE"]


def test_aliases__the_units_own_sub_account_name_counts_for_its_line(tmp_path):
    ran, out = _run(tmp_path, _inputs(tmp_path, None))
    assert _unmatched(out) == ["记-1"], ran.stdout  # without the alias: names no allocation line
    assert hc.spent_by_purpose((out / "latest").resolve())[RENT] == Decimal("960.00")

    aliases = f"文号,账簿项目名称,分配用途\r\n克区财综[2024]2号, {OWN_NAME} ,2024年租赁补贴(中央直达)\r\n"
    ran, out = _run(tmp_path / "with", _inputs(tmp_path / "with", aliases))  # GBK, as Excel saves it
    assert ran.exit_code in (0, 1), ran.stderr
    assert _unmatched(out) == []
    assert hc.spent_by_purpose((out / "latest").resolve())[RENT] == Decimal("1440.00")
    # the run says which aliases it went by
    manifest = json.loads(((out / "latest").resolve() / "run.json").read_text("utf-8"))
    assert manifest["purpose_aliases"] == [{"notice_no": NOTICE_NO, "alias_key": OWN_NAME, "purpose": RENT}]


def test_aliases__a_file_taken_away_takes_its_aliases_with_it(tmp_path):
    inputs = _inputs(tmp_path, f"文号,账簿项目名称,分配用途\n{NOTICE_NO},{OWN_NAME},{RENT}\n", "utf-8-sig")
    _, out = _run(tmp_path, inputs)
    assert _unmatched(out) == []
    first = (out / "latest").resolve()
    (inputs / "purpose_aliases.csv").unlink()
    _, out = _run(tmp_path, inputs)
    assert _unmatched(out) == ["记-1"]
    # the first run's run.json, written again, still lists the aliases that run went by (before,
    # `recon report` read those in the store now: none)
    assert invoke(["report", first.name, "--outputs", str(out)]).exit_code == 0
    manifest = json.loads((first / "run.json").read_text("utf-8"))
    assert manifest["purpose_aliases"] == [{"notice_no": NOTICE_NO, "alias_key": OWN_NAME, "purpose": RENT}]


def test_aliases__a_row_that_cannot_be_used_stops_the_run_naming_file_and_row(tmp_path):
    aliases = (f"文号,账簿项目名称,分配用途\n{NOTICE_NO},{OWN_NAME},{RENT}\n\n"
               f"{NOTICE_NO},补贴专户,2024年公租房维修\n")
    inputs = _inputs(tmp_path, aliases, "utf-8")
    ran, out = _run(tmp_path, inputs)
    assert ran.exit_code == 2
    assert "purpose_aliases.csv 第3行 / row 3" in ran.stderr and "2024年公租房维修" in ran.stderr, ran.stderr
    assert not (out / "latest").exists()  # nothing reconciled on a wrong mapping
    for bad, word in [(f"{NOTICE_NO},{OWN_NAME}\n", "column missing: purpose"),
                      (f"克区财综〔2023〕9号,{OWN_NAME},{RENT}\n", f"not a loaded notice (loaded: {NOTICE_NO})"),
                      (f"{NOTICE_NO},{OWN_NAME},{RENT}\n{NOTICE_NO},{OWN_NAME},2024年老旧小区改造（中央直达）\n",
                       "given to another purpose on row 1")]:
        header = "文号,账簿项目名称\n" if "column" in word else "文号,账簿项目名称,分配用途\n"
        (inputs / "purpose_aliases.csv").write_text(header + bad, encoding="utf-8")
        ran, _ = _run(tmp_path, inputs)
        assert ran.exit_code == 2 and word in ran.stderr, (word, ran.stderr)


def test_aliases__with_no_notice_loaded_the_run_reports_that_not_the_aliases(tmp_path):
    inputs = _inputs(tmp_path, f"文号,账簿项目名称,分配用途\n{NOTICE_NO},{OWN_NAME},{RENT}\n", "utf-8")
    (inputs / "notices" / SEED_NOTICE.name).unlink()
    ran, out = _run(tmp_path, inputs)
    rows = hc.read_csv_rows((out / "latest").resolve() / "exceptions.csv")
    assert [r["rule_id"] for r in rows] == ["INPUT_MISSING"], ran.stderr


def test_aliases__excel_unicode_text_is_read_and_a_garbled_file_says_what_to_do(tmp_path):
    # Excel's "Unicode text" (UTF-16, tab-separated) reads as its CSV does; bytes that are no
    # text get the advice to save the file as CSV, not a traceback
    from builders import new_store, seed_notice
    from pipeline.aliases import apply_purpose_aliases
    from pipeline.loading import InputError

    con = new_store(tmp_path)
    seed_notice(con)
    path = tmp_path / "purpose_aliases.csv"
    path.write_bytes(f"文号\t账簿项目名称\t分配用途\r\n{NOTICE_NO}\t{OWN_NAME}\t{RENT}\r\n".encode("utf-16"))
    assert apply_purpose_aliases(con, path) == 1
    assert con.execute("select alias_key from purpose_aliases").fetchall() == [(OWN_NAME,)]
    path.write_bytes(bytes(range(256)) * 8)
    try:
        apply_purpose_aliases(con, path)
    except InputError as exc:
        assert "save it from Excel as CSV" in str(exc) and str(path) in str(exc)
    else:
        raise AssertionError("a garbled aliases file was used")
    assert con.execute("select count(*) from purpose_aliases").fetchone() == (1,)  # kept as it was
    con.close()


def test_reports__each_sub_account_name_says_how_it_was_matched_and_what_it_carried(tmp_path):
    # an auditor reads which ledger names the spent of each allocation line was counted from: by
    # the line's name, by an alias, by its core name; and which names counted for no line
    inputs = _inputs(tmp_path, f"文号,账簿项目名称,分配用途\n{NOTICE_NO},{OWN_NAME},{RENT}\n", "utf-8")
    hostile = '=HYPERLINK("http://x","<script>alert(1)</script>")'
    rows = [hc.budget_row("记-1", "2024-04-10", "480.00", OWN_NAME, "2210107 保障性住房租金补贴", "张三"),
            hc.budget_row("记-2", "2024-04-11", "960.00", RENT, "2210107 保障性住房租金补贴", "李四"),
            hc.budget_row("记-3", "2024-04-12", "480.00", RENT, "2210107 保障性住房租金补贴", "王五"),
            hc.budget_row("记-4", "2024-04-12", "100.00", "租赁补贴", "2210107 保障性住房租金补贴", "赵六"),
            hc.budget_row("记-5", "2024-04-13", "7.50", hostile, "2210107 保障性住房租金补贴", "钱七")]
    hc.write_csv(inputs / "ledgers" / "ledger.csv", rows)
    ran, out = _run(tmp_path, inputs)
    assert ran.exit_code == 1, ran.stderr  # the hostile name is unmatched
    run_dir = (out / "latest").resolve()
    import openpyxl

    sheet = openpyxl.load_workbook(run_dir / "report.xlsx")["项目对应"]
    got = [r for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert got == [
        (NOTICE_NO, RENT, "按项目名称 by its name", 1, RENT, 2, 1440),
        (NOTICE_NO, OWN_NAME, "按别名 by an alias (purpose_aliases.csv)", 1, RENT, 1, 480),
        (NOTICE_NO, "租赁补贴", "按核心名称 by its core name (year, 中央直达 left out)", 1, RENT, 1, 100),
        (NOTICE_NO, hostile, "未对应分配行 matches no allocation line (UNMATCHED_EXPENDITURE)", None, None, 1, 7.5),
    ]
    assert sheet["B5"].data_type == "s"  # text, never a formula
    # the spent of the line is what the names matched to it carried
    assert hc.spent_by_purpose(run_dir)[RENT] == Decimal("2020.00")
    page = (run_dir / "report.html").read_text("utf-8")
    assert "项目名称对应" in page and "按别名 by an alias" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # stored with the run: `recon report` writes the same sheet again
    (run_dir / "report.xlsx").unlink()
    again = invoke(["report", "--outputs", str(out), run_dir.name])
    assert again.exit_code == 0, again.stderr
    sheet = openpyxl.load_workbook(run_dir / "report.xlsx")["项目对应"]
    assert [r for r in sheet.iter_rows(min_row=2, values_only=True)] == got
