"""report.html: the page a finance officer reads the morning after a run, Chinese first.

One self-contained file: inline CSS, the chart as inline SVG drawn here on the server, no
script, no fonts or styles fetched from anywhere, so it opens on an isolated network and cannot
fail in the browser. Everything from inputs goes through Jinja2 with autoescape on, so a payee
or summary like `<script>…</script>` is shown as text.

Findings are grouped by rule; each group lists its first `FINDINGS_PER_RULE` findings and says
how many more there are (the workbook and exceptions.csv hold them all), so a run with a million
findings still gives a page a browser can open.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..findings import SEVERITY_RANK, SEVERITY_ZH
from ..rules import all_rules
from .common import (BLANK_PURPOSE, INDICATORS_SQL, PURPOSES_SQL, SEVERITY_LABEL, STATUS_ZH,
                     SUMMARY_SQL, UNALLOCATED_LABEL, WAIVED, atomic_write, change_label, data_docs_link,
                     fetch_dicts, iter_dicts, match_label, run_overview, status_zh)

FINDINGS_PER_RULE = 200
MAX_PURPOSE_ROWS = 200  # sub-account names listed on the page; the workbook lists them all
TEMPLATES = Path(__file__).resolve().parent / "templates"

# Chart geometry (SVG user units; the SVG scales to the page width).
CHART_WIDTH = 1000
LABEL_WIDTH = 300
VALUE_WIDTH = 190
BAR_HEIGHT = 16
BAR_GAP = 4
GROUP_GAP = 18
CHART_TOP = 34
LABEL_CHARS = 22


def _money(value) -> str:
    if value is None:
        return ""
    return f"{Decimal(value):,.2f}"


def _percent(value) -> str:
    if value is None:
        return "—"
    return f"{Decimal(value) * 100:.2f}%"


@functools.cache
def _environment() -> Environment:
    """One per process: the template is compiled once (0.1 s), also for a process that runs
    reconciliations one after another."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = _money
    env.filters["percent"] = _percent
    env.filters["severity_zh"] = lambda s: SEVERITY_ZH.get(s, s)
    env.globals["indicator_status_zh"] = status_zh
    env.filters["change"] = change_label
    return env


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    kind: str       # allocated | spent | over (spent above the allocation)
    label: str      # the amount, shown after the bar


@dataclass(frozen=True)
class BarGroup:
    purpose: str
    short_label: str
    notice_no: str
    y: float
    bars: tuple[Bar, ...]
    rate: str


def chart(summary: list[dict], show_notice: bool) -> dict:
    """Allocated vs spent per allocation line, as SVG geometry (the template draws it)."""
    top = max([Decimal(0)] + [max(r["allocated"], r["spent"], Decimal(0)) for r in summary])
    plot = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    groups = []
    y = CHART_TOP
    for r in summary:
        bars = []
        for i, key in enumerate(("allocated", "spent")):
            width = float(max(r[key], Decimal(0)) / top * plot) if top else 0.0
            kind = "over" if key == "spent" and r["spent"] > r["allocated"] else key
            bars.append(Bar(x=LABEL_WIDTH, y=y + i * (BAR_HEIGHT + BAR_GAP), width=round(max(width, 1.0), 1),
                            kind=kind, label=f"{_money(r[key])} 元"))
        purpose = r["purpose"]
        short = purpose if len(purpose) <= LABEL_CHARS else purpose[:LABEL_CHARS - 1] + "…"
        groups.append(BarGroup(purpose=purpose, short_label=short, notice_no=r["notice_no"] if show_notice else "",
                               y=y, bars=tuple(bars), rate=_percent(r["execution_rate"])))
        y += 2 * BAR_HEIGHT + BAR_GAP + GROUP_GAP
    return {
        "groups": groups,
        "width": CHART_WIDTH,
        "height": y + 4,
        "label_width": LABEL_WIDTH,
        "bar_height": BAR_HEIGHT,
    }


def finding_groups(con: duckdb.DuckDBPyConnection, run_id: str, by_rule: dict[str, int],
                   per_rule: int | None = None) -> list[dict]:
    """Findings grouped by rule, worst rules first; the first `per_rule` of each group."""
    per_rule = FINDINGS_PER_RULE if per_rule is None else per_rule
    catalogue = {rule.rule_id: rule for rule in all_rules()}
    groups: dict[str, dict] = {}
    for rule_id, count in by_rule.items():
        # one top-N query per rule: DuckDB keeps only N rows in a heap, so a million findings
        # cost no more memory than a hundred
        rows = fetch_dicts(con, f"""
            select f.rule_id, f.severity, f.notice_no, f.purpose, f.voucher_no, f.line_no, f.posted_on,
                   f.amount, f.expected, f.observed, f.message, f.source_file, f.source_row, f.change,
                   f.first_seen, f.finding_key,
                   {WAIVED} as waived
            from findings as f
            where f.run_id = ? and f.rule_id = ? and f.change is distinct from 'resolved'
            order by f.notice_no, f.posted_on, f.voucher_no, f.line_no, f.source_file, f.source_row,
                     f.finding_key
            limit ?
            """, [run_id, rule_id, per_rule])
        if not rows:
            continue
        rule = catalogue.get(rule_id)
        groups[rule_id] = {
            "rule_id": rule_id,
            "severity": rows[0]["severity"],
            "zh": rule.zh if rule else "",
            "en": rule.en if rule else "",
            "cites": rule.cites if rule else "",
            "count": count,
            "rows": rows,
        }
    for g in groups.values():
        g["more"] = g["count"] - len(g["rows"])
        # a column no finding of the rule fills is left out (e.g. vouchers for notice rules)
        g["has"] = {col: any(r[col] not in (None, "") for r in g["rows"])
                    for col in ("purpose", "voucher_no", "posted_on", "amount", "expected", "observed",
                                "source_file", "change")}
    return sorted(groups.values(), key=lambda g: (-SEVERITY_RANK.get(g["severity"], 0), g["rule_id"]))


def resolved_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    """Findings of the previous run on this slice that this run no longer finds (first N)."""
    return fetch_dicts(con, """
        select f.rule_id, f.severity, f.notice_no, f.purpose, f.voucher_no, f.line_no, f.posted_on,
               f.amount, f.message, f.source_file, f.source_row, f.first_seen
        from findings as f
        where f.run_id = ? and f.change = 'resolved'
        order by f.rule_id, f.notice_no, f.posted_on, f.voucher_no, f.line_no, f.finding_key
        limit ?
        """, [run_id, FINDINGS_PER_RULE])


def render(con: duckdb.DuckDBPyConnection, run_id: str, run_dir: Path) -> str:
    ov = run_overview(con, run_id)
    summary = fetch_dicts(con, SUMMARY_SQL, [run_id])
    notices_in_summary = {r["notice_no"] for r in summary}
    indicators = fetch_dicts(con, INDICATORS_SQL, [run_id])
    purposes = list(itertools.islice(iter_dicts(con, PURPOSES_SQL, [run_id]), MAX_PURPOSE_ROWS + 1))
    status_counts = {s: sum(1 for i in indicators if i["status"] == s) for s in STATUS_ZH}
    rules = all_rules()
    known = {r.rule_id for r in rules}
    template = _environment().get_template("report.html.j2")
    return template.render(
        ov=ov,
        summary=summary,
        purposes=[{**p, "matched": match_label(p["match_kind"], p["match_by"])}
                  for p in purposes[:MAX_PURPOSE_ROWS]],
        purposes_more=(con.execute("select count(*) from run_purpose_matches where run_id = ?", [run_id])
                       .fetchone()[0] - MAX_PURPOSE_ROWS if len(purposes) > MAX_PURPOSE_ROWS else 0),
        blank_purpose=BLANK_PURPOSE,
        chart=chart(summary, show_notice=len(notices_in_summary) > 1),
        groups=finding_groups(con, run_id, ov.by_rule),
        many_notices=len(ov.notices) > 1,
        resolved=resolved_rows(con, run_id),
        indicators=indicators,
        status_counts={s: n for s, n in status_counts.items() if n},
        status_zh=STATUS_ZH,
        severity_label=SEVERITY_LABEL,
        unallocated_label=UNALLOCATED_LABEL,
        rules=rules,
        unknown_rules={k: v for k, v in ov.by_rule.items() if k not in known},
        data_docs=data_docs_link(run_dir),
    )


def write(con: duckdb.DuckDBPyConnection, run_id: str, run_dir: Path) -> Path:
    path = run_dir / "report.html"
    page = render(con, run_id, run_dir)
    with atomic_write(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
