"""Findings: what a check reports, one frozen record per breach.

Checks return findings; they never raise, print or exit. Only the CLI turns findings into an exit
status. A finding's key is stable across runs (rule + notice + voucher/line, or rule + notice +
purpose for findings that belong to no single voucher), so waivers and the new / persisting /
resolved comparison survive re-runs.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from decimal import Decimal

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
SEVERITY_ZH = {"error": "错误", "warning": "警告", "info": "提示"}


@dataclass(frozen=True, slots=True)  # small: a finding made in Python (a run's stay in DuckDB)
class Finding:
    rule_id: str
    severity: str
    message: str                      # Chinese first, then English
    notice_no: str | None = None
    purpose: str | None = None
    voucher_no: str | None = None
    line_no: str | None = None
    posted_on: dt.date | None = None
    amount: Decimal | None = None
    expected: str | None = None
    observed: str | None = None
    source_file: str | None = None
    source_row: int | None = None
    key_detail: str | None = field(default=None, compare=False)

    @property
    def finding_key(self) -> str:
        """Stable identity across runs: rule | notice | voucher:line@period (or file:row, or
        purpose; then detail). A voucher is its number within its month (yyyymm): accounting
        systems number vouchers afresh each month."""
        if self.voucher_no:
            where = f"{self.voucher_no}:{self.line_no or ''}"
            if self.posted_on is not None:
                where += f"@{self.posted_on.year * 100 + self.posted_on.month}"
        elif self.source_file:
            where = f"{self.source_file}:{self.source_row or ''}"
        else:
            where = self.purpose or ""
        parts = [self.rule_id, self.notice_no or "", where]
        if self.key_detail:
            parts.append(self.key_detail)
        return "|".join(parts)


FINDING_COLUMNS = [f.name for f in fields(Finding) if f.name != "key_detail"]


def worst_severity(findings) -> str | None:
    worst = None
    for f in findings:
        if worst is None or SEVERITY_RANK[f.severity] > SEVERITY_RANK[worst]:
            worst = f.severity
    return worst
