"""Runs the rule catalogue's SQL checks and turns their rows into findings.

A check (`sql/checks/<rule>.sql`) is one query that returns exactly the rows breaking its rule,
with evidence columns chosen from FINDING_FIELDS below; severity and the default message come
from the file's header (pipeline.rules). Checks read only staged / fact views and the
`run_context` row, never raw strings or Python parameters.
"""
from __future__ import annotations

from decimal import Decimal

import duckdb

from .findings import Finding
from .rules import Rule, rules_for_stage

FINDING_FIELDS = (
    "notice_no", "purpose", "voucher_no", "line_no", "posted_on", "amount",
    "expected", "observed", "message", "source_file", "source_row", "key_detail",
)


def run_rule(con: duckdb.DuckDBPyConnection, rule: Rule) -> list[Finding]:
    cur = con.execute(rule.sql)
    columns = [d[0] for d in cur.description]
    unknown = set(columns) - set(FINDING_FIELDS)
    if unknown:
        raise ValueError(f"{rule.path}: unexpected columns {sorted(unknown)}")
    findings = []
    for row in cur.fetchall():
        values = dict(zip(columns, row))
        detail = values.pop("message", None)
        message = detail or rule.description  # a check's own message is bilingual too
        amount = values.pop("amount", None)
        if amount is not None and not isinstance(amount, Decimal):
            amount = Decimal(str(amount))
        for k in ("expected", "observed", "line_no", "voucher_no"):
            if values.get(k) is not None and not isinstance(values[k], str):
                values[k] = str(values[k])
        findings.append(
            Finding(rule_id=rule.rule_id, severity=rule.severity, message=message,
                    amount=amount, **values)
        )
    return findings


def run_stage(con: duckdb.DuckDBPyConnection, stage: str) -> list[Finding]:
    findings: list[Finding] = []
    for rule in rules_for_stage(stage):
        findings.extend(run_rule(con, rule))
    return findings
