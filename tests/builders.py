"""Small builders for tests: the seed notice's rows and inline ledgers, straight into a store.

Rule tests use these to state a case in a few lines ("one rent subsidy booked to 22101") without
going through file parsing; loader tests cover parsing separately. Values mirror the seed notice
克区财综〔2024〕2号.
"""
from __future__ import annotations

import atexit
import datetime as dt
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import duckdb

from pipeline.findings import Finding
from pipeline.store import DISABLED_OPTIMIZERS, open_store
from pipeline.text import purpose_key

NOTICE_NO = "克区财综〔2024〕2号"
PROJECT_CODE = "10000013Z135080000028"
FUND_NAME = "2024年中央财政城镇保障性安居工程补助资金"
RENT = "2024年租赁补贴（中央直达）"
RENTAL_HOUSING = "2024年保障性租赁住房（中央直达）"
OLD_ESTATES = "2024年老旧小区改造（中央直达）"
DILAPIDATED = "2024年危旧房改造（中央直达）"
SEED_LINES = [
    (RENT, Decimal("172800.00"), "2210107"),
    (RENTAL_HOUSING, Decimal("1037200.00"), "2210110"),
    (OLD_ESTATES, Decimal("61110000.00"), "2210108"),
    (DILAPIDATED, Decimal("440000.00"), "2210103"),
]
ALLOWED = ["2210103", "2210106", "2210107", "2210108", "2210110", "2210199"]


_BLANK: list[Path] = []  # a store as open_store creates it, made once per test process
# A test reads the facts' views on the store as they are, where a run reads them through its
# snapshot (pipeline.run.materialised: the expenditure views as tables). Over the nested views,
# DuckDB's CTE inlining copies fct_expenditure into each of a view's references, and planning
# takes seconds on a store of a few lines (rpt_allocation_summary: 0.7 s, 0.13 s without; the
# suite took 986 s before the tests' stores kept it off, 557 s after). A store of a run keeps
# it: at 2M lines, without it the CTEs are materialised, the run takes 1.5 times as long and
# twice the memory. It changes plans, not results; a load keeps the connection's setting.
TEST_DISABLED_OPTIMIZERS = (*DISABLED_OPTIMIZERS, "cte_inlining")


def new_store(tmp_path):
    """The store at tmp_path/recon.duckdb, opened as any store is; a new one starts as a copy of
    a store open_store created in this process. Creating a store binds every view of facts.sql
    (0.2 s, paid once in a store's life, but by hundreds of tests); the copy has them, with
    their digest, so opening it binds none, unless the views' SQL has changed since. Tests of
    how a store is created and migrated go through open_store itself (test_store.py) and every
    run of execute_run or the CLI on a new folder."""
    path = Path(tmp_path) / "recon.duckdb"
    if not path.exists():
        if not _BLANK:
            folder = Path(tempfile.mkdtemp(prefix="recon-blank-"))
            atexit.register(shutil.rmtree, folder, True)
            open_store(folder / "blank.duckdb").close()
            _BLANK.append(folder / "blank.duckdb")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_BLANK[0], path)
        path.chmod(0o600)
    return _for_tests(open_store(path))


def connect(path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A plain connection to a store, for a test's questions about it (no migration, no macros)."""
    return _for_tests(duckdb.connect(str(path), read_only=read_only))


def _for_tests(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    con.execute(f"set disabled_optimizers = '{','.join(TEST_DISABLED_OPTIMIZERS)}'")
    return con


def run_findings(store, run_id: str) -> list[Finding]:
    """A run's findings as it stored them (one per key; not those resolved since the run before),
    from a connection to the store or, after `execute_run` closed it, from the store's path."""
    con = duckdb.connect(str(store), read_only=True) if isinstance(store, (str, Path)) else store
    try:
        rows = con.execute(
            """
            select rule_id, severity, message, notice_no, purpose, voucher_no, line_no, posted_on,
                   amount, expected, observed, source_file, source_row
            from findings where run_id = ? and change <> 'resolved' order by finding_key
            """, [run_id]).fetchall()
    finally:
        if con is not store:
            con.close()
    return [Finding(*row) for row in rows]


def seed_notice(con, lines=SEED_LINES, notice_no=NOTICE_NO, project_code=PROJECT_CODE,
                fiscal_year=2024, stated_total=None):
    """Insert the seed notice header and allocation lines (no target tables)."""
    file_id = con.execute(
        "insert into input_files (sha256, kind, path, name, size_bytes, loaded_at, status, format) "
        "values (?, 'notice', 'seed.txt', 'seed.txt', 0, now(), 'loaded', 'txt') returning file_id",
        [f"notice-{notice_no}"],
    ).fetchone()[0]
    total = stated_total if stated_total is not None else sum(a for _, a, _ in lines)
    con.execute(
        "insert into notices (notice_no, file_id, title, fund_name, issuer, recipient, fiscal_year, "
        "project_code, revenue_code, revenue_name, upstream_docs, stated_total, amount_unit, "
        "reporting_deadline, allowed_codes) values (?, ?, ?, ?, '克拉玛依区财政局', '克拉玛依区住建局', ?, ?, "
        "'1100258', '住房保障共同财政事权转移支付收入', ['财综〔2024〕15号', '新财综〔2024〕16号'], ?, '万元', '05-31', ?)",
        [notice_no, file_id, f"关于克拉玛依区下达{FUND_NAME}预算的通知", FUND_NAME, fiscal_year,
         project_code, total, ALLOWED],
    )
    for seq, (purpose, amount, code) in enumerate(lines, start=1):
        con.execute(
            "insert into allocation_lines values (?, ?, ?, ?, '克拉玛依区', ?, ?, ?)",
            [notice_no, seq, purpose, purpose_key(purpose), amount, code, "中央直达" in purpose],
        )
    for keyword, code in (("配售型", "2210199"), ("城中村", "2210199"), ("棚户区", "2210103"),
                          ("危旧房", "2210103")):
        con.execute("insert into code_rules values (?, ?, ?, '三')", [notice_no, keyword, code])
    return file_id


SECOND_BATCH = "克区财综〔2024〕15号"


def two_batches_of_rent(tmp_path, first=Decimal("1000.00"), second=Decimal("500.00")):
    """A store with two batches of one year and one project code (提前下达 NOTICE_NO, 第二批
    SECOND_BATCH), both allocating rent, in scope: a line without 指标文号 is counted under each."""
    con = new_store(tmp_path)
    seed_notice(con, lines=[(RENT, first, "2210107")])
    seed_notice(con, notice_no=SECOND_BATCH, lines=[(RENT, second, "2210107")])
    set_context(con)
    return con


LEDGER_DEFAULTS = dict(
    voucher_no="记-0001", line_no="1", posted_on=dt.date(2024, 3, 15), book="budget",
    account_code="7201", account_name="事业支出", summary="发放租赁补贴", debit=Decimal("0"),
    credit=Decimal("0"), function_code="2210107", economic_code="30305", project_code=PROJECT_CODE,
    purpose=RENT, fund_source="中央直达资金", direct_flag=True, direct_flag_raw="01 中央直达资金",
    budget_doc_no=NOTICE_NO, payee="张三",
)


def add_ledger(con, rows: list[dict], name: str = "ledger.csv") -> int:
    """Insert inline ledger lines (dicts overriding LEDGER_DEFAULTS) as one loaded file."""
    file_id = con.execute(
        "insert into input_files (sha256, kind, path, name, size_bytes, loaded_at, status, format, "
        "preset, rows_loaded) values (?, 'ledger', ?, ?, 0, now(), 'loaded', 'csv', 'cn-grp', ?) "
        "returning file_id",
        [f"ledger-{name}-{id(rows)}", name, name, len(rows)],
    ).fetchone()[0]
    import pyarrow as pa

    full = [{**LEDGER_DEFAULTS, **override} for override in rows]
    columns = {k: [r[k] for r in full] for k in LEDGER_DEFAULTS}
    for k in ("debit", "credit"):
        columns[k] = [str(Decimal(str(v))) for v in columns[k]]
    batch = pa.table({"row_no": list(range(1, len(full) + 1)),  # noqa: F841  (read by DuckDB)
                      **{k: pa.array(v, pa.bool_() if k == "direct_flag" else None) for k, v in columns.items()}})
    # one statement, in ledger_lines' column order (a line at a time took 7 s for 3,000 lines)
    con.execute(
        """
        insert into ledger_lines
        select ?, row_no, voucher_no, line_no, cast(posted_on as date), book, account_code, account_name,
               summary, cast(debit as decimal(18,2)), cast(credit as decimal(18,2)), function_code,
               function_code, economic_code, project_code, purpose, purpose_key(purpose), fund_source,
               cast(direct_flag as boolean), direct_flag_raw, doc_no_key(budget_doc_no), payee
        from batch order by row_no
        """, [file_id])
    return file_id


def set_context(con, as_of=dt.date(2024, 12, 31), notice_no=None, purpose=None, date_from=None,
                date_to=None, run_id="test-run"):
    con.execute("delete from run_context")
    con.execute("insert into run_context values (?, ?, ?, purpose_key(?), ?, ?)",
                [run_id, as_of, notice_no, purpose, date_from, date_to])


# The seed's target table for 租赁补贴, as the notice parser stores it:
# (level1, level2, name, target_text, op, value, unit, weight). Weights add up to 90.
RENT_TARGETS = [
    ("产出指标", "数量指标", "发放租赁补贴户数", ">=30户", ">=", 30, "户", 6),
    ("产出指标", "数量指标", "补助发放次数", ">=12次", ">=", 12, "次", 6),
    ("产出指标", "质量指标", "补助覆盖率", "=100%", "=", 100, "%", 6),
    ("产出指标", "时效指标", "补贴发放起始时间", "<=1月", "<=", 1, "月", 7),
    ("产出指标", "时效指标", "补贴发放完成时间", "<=12月", "<=", 12, "月", 7),
    ("产出指标", "时效指标", "资金发放及时率", "=100%", "=", 100, "%", 8),
    ("成本指标", "经济成本指标", "每户补贴标准", "<=480元/户/月", "<=", 480, "元/户/月", 20),
    ("效益指标", "社会效益指标", "解决我区城市最低收入家庭的住房困难问题", "有效解决", None, None, None, 20),
    ("满意度指标", "满意度指标", "城镇最低收入住房困难家庭满意度", ">=90%", ">=", 90, "%", 10),
]


def add_target_table(con, purpose=RENT, indicators=RENT_TARGETS, notice_no=NOTICE_NO,
                     fiscal_year=2024, table_seq=None):
    """Insert one performance target table (项目支出绩效目标表) and its indicator rows."""
    if table_seq is None:
        table_seq = con.execute("select coalesce(max(table_seq), 0) + 1 from target_tables "
                                "where notice_no = ?", [notice_no]).fetchone()[0]
    con.execute(
        "insert into target_tables (notice_no, table_seq, purpose, purpose_key, fiscal_year, "
        "unit_name) values (?, ?, ?, purpose_key(?), ?, '克拉玛依市克拉玛依区住房和城乡建设局')",
        [notice_no, table_seq, purpose, purpose, fiscal_year],
    )
    for seq, (l1, l2, name, text, op, value, unit, weight) in enumerate(indicators, start=1):
        con.execute(
            "insert into target_indicators (notice_no, table_seq, indicator_seq, level1, level2, name, "
            "target_text, op, target_value, target_unit, qualitative, basis, weight, evidence) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '计划标准', ?, '工作资料')",
            [notice_no, table_seq, seq, l1, l2, name, text, op, value, unit, op is None, weight],
        )
    return table_seq
