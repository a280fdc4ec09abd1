"""Runs the rule catalogue's SQL checks and turns their rows into findings.

A check (`sql/checks/<rule>.sql`) is one query that returns exactly the rows breaking its rule,
with evidence columns chosen from FINDING_FIELDS below; severity and the default message come
from the file's header (pipeline.rules). Checks read only staged / fact views and the
`run_context` row, never raw strings or Python parameters.

A check's rows become findings in SQL (`finding_sql`): the rule's id and severity, its default
message where a row has none, every evidence column in its stored type. A run collects them into
a temporary table (`collect_stage`) and stores them from there, so a run with a million findings
holds none of them in Python; `run_rule` reads the same rows as `Finding` objects, for the
notice loader's few findings and for tests.
"""
from __future__ import annotations

import duckdb

from .findings import Finding
from .rules import Rule, rules_for_stage

FINDING_FIELDS = (
    "notice_no", "purpose", "voucher_no", "line_no", "posted_on", "amount",
    "expected", "observed", "message", "source_file", "source_row", "key_detail",
)

# A finding's columns, in the order of Finding's fields, with their types in the store.
FOUND_COLUMNS = (
    ("rule_id", "varchar"), ("severity", "varchar"), ("message", "varchar"),
    ("notice_no", "varchar"), ("purpose", "varchar"), ("voucher_no", "varchar"),
    ("line_no", "varchar"), ("posted_on", "date"), ("amount", "decimal(18,2)"),
    ("expected", "varchar"), ("observed", "varchar"), ("source_file", "varchar"),
    ("source_row", "bigint"), ("key_detail", "varchar"),
)
FOUND_TABLE = "run_found"  # a run's findings before they are stored (temporary, per connection)

# Finding.finding_key in SQL, over a row with FOUND_COLUMNS: rule | notice | voucher:line (and
# @yyyymm, the voucher's period, when it has a date: vouchers are numbered afresh each month),
# else file:row, else purpose; then | key_detail when there is one. Empty text counts as absent,
# as Python's truth test does there; tests/test_checks.py holds the two together.
FINDING_KEY_SQL = """(
    rule_id || '|' || coalesce(notice_no, '') || '|' ||
    case when coalesce(voucher_no, '') <> ''
              then voucher_no || ':' || coalesce(line_no, '') || coalesce('@' || cast(
                   extract(year from posted_on) * 100 + extract(month from posted_on) as varchar), '')
         when coalesce(source_file, '') <> ''
              then source_file || ':' || coalesce(cast(nullif(source_row, 0) as varchar), '')
         else coalesce(purpose, '') end ||
    case when coalesce(key_detail, '') <> '' then '|' || key_detail else '' end
)"""


def finding_sql(rule: Rule) -> tuple[str, list]:
    """The rule's query as findings: FOUND_COLUMNS, plus the rule's parameters.

    A check returns the evidence columns it has; `union all by name` with an empty row of them
    all gives the others as NULL, without binding the query a second time to learn its columns
    (DuckDB's syntax: a port to another engine names the columns here instead). That checks
    return no other columns is tested (tests/test_checks.py). Findings on a notice out of the
    run's scope are left out: a run of one batch counts its fund's other batches too
    (fct_notices_counted), and reports on its own."""
    evidence = [(name, sql_type) for name, sql_type in FOUND_COLUMNS if name in FINDING_FIELDS]
    empty = ", ".join(f"cast(null as {sql_type}) as {name}" for name, sql_type in evidence)
    select = ", ".join(
        "coalesce(nullif(cast(r.message as varchar), ''), cast(? as varchar)) as message"  # else the rule's
        if name == "message" else f"cast(r.{name} as {sql_type}) as {name}"
        for name, sql_type in evidence)
    body = rule.sql.rstrip().rstrip(";")
    sql = (f"select cast(? as varchar) as rule_id, cast(? as varchar) as severity, {select}\n"
           f"from ((\n{body}\n) union all by name (select {empty} where 1 = 0)) as r\n"
           f"where r.notice_no is null or r.notice_no in (select notice_no from fct_notices)")
    return sql, [rule.rule_id, rule.severity, rule.description]


def run_rule(con: duckdb.DuckDBPyConnection, rule: Rule) -> list[Finding]:
    sql, params = finding_sql(rule)
    return [Finding(*row) for row in con.execute(sql, params).fetchall()]


def run_stage(con: duckdb.DuckDBPyConnection, stage: str) -> list[Finding]:
    findings: list[Finding] = []
    for rule in rules_for_stage(stage):
        findings.extend(run_rule(con, rule))
    return findings


def create_found(con: duckdb.DuckDBPyConnection, table: str = FOUND_TABLE) -> None:
    """An empty temporary table for a run's findings, in arrival order (`seq`)."""
    columns = ", ".join(f"{name} {sql_type}" for name, sql_type in FOUND_COLUMNS)
    con.execute(f"create or replace temp table {table} (seq bigint, {columns})")


def last_seq(con: duckdb.DuckDBPyConnection, table: str = FOUND_TABLE) -> int:
    """The `seq` of the last finding in `table` (0 when empty): what comes next follows it."""
    return int(con.execute(f"select coalesce(max(seq), 0) from {table}").fetchone()[0])


def collect_rule(con: duckdb.DuckDBPyConnection, rule: Rule, table: str = FOUND_TABLE) -> int:
    """Insert the rule's findings into `table` (see create_found); returns how many."""
    sql, params = finding_sql(rule)
    # the seq to follow on, read by the insert itself: one statement a rule (each call into DuckDB
    # from this thread waits for the interpreter while the suites run GX beside it, ~5 ms)
    return con.execute(
        f"insert into {table} select (select coalesce(max(seq), 0) from {table}) + row_number() over (), * "
        f"from ({sql})", params
    ).fetchone()[0]


def collect_stage(con: duckdb.DuckDBPyConnection, stage: str, table: str = FOUND_TABLE) -> int:
    return sum(collect_rule(con, rule, table) for rule in rules_for_stage(stage))
