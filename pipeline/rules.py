"""The rule catalogue, read from the headers of the files that implement the rules.

Every rule is one SQL file in `sql/checks/` whose header comment names it:

    -- rule: CODE_MISMATCH
    -- severity: error
    -- cites: 三
    -- zh: 支出记入了与分配用途不同的项级科目
    -- en: Expenditure of a purpose booked to another item code than the one allocated to it
    -- stage: ledger

`recon rules`, the reports and the README test all read this registry, so they cannot disagree.
`stage` says when the rule runs: `notice` (on load of a notice), `input` (after loading files),
`ledger` (reconciliation), `indicator` (after indicators are measured).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .paths import CHECKS_DIR

_HEADER = re.compile(r"^--\s*(\w+)\s*:\s*(.*?)\s*$")
REQUIRED_KEYS = ("rule", "severity", "cites", "zh", "en")


@dataclass(frozen=True)
class Rule:
    rule_id: str
    severity: str
    cites: str
    zh: str
    en: str
    stage: str
    path: Path
    sql: str
    version: str  # sha256 of the file, first 12 hex digits

    @property
    def description(self) -> str:
        return f"{self.zh} / {self.en}"


def parse_rule(path: Path) -> Rule:
    text = path.read_text(encoding="utf-8")
    meta: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        m = _HEADER.match(line)
        if m and m.group(1) not in meta:
            meta[m.group(1)] = m.group(2)
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ValueError(f"{path}: rule header lacks {', '.join(missing)}")
    if meta["severity"] not in ("error", "warning", "info"):
        raise ValueError(f"{path}: severity must be error, warning or info")
    return Rule(
        rule_id=meta["rule"],
        severity=meta["severity"],
        cites=meta["cites"],
        zh=meta["zh"],
        en=meta["en"],
        stage=meta.get("stage", "ledger"),
        path=path,
        sql=text,
        version=hashlib.sha256(text.encode("utf-8")).hexdigest()[:12],
    )


@lru_cache(maxsize=4)
def _load(checks_dir: Path) -> tuple[Rule, ...]:
    rules = tuple(parse_rule(p) for p in sorted(checks_dir.glob("*.sql")))
    ids = [r.rule_id for r in rules]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"rule ids defined twice in {checks_dir}: {sorted(dupes)}")
    return rules


def all_rules(checks_dir: Path = CHECKS_DIR) -> tuple[Rule, ...]:
    return _load(Path(checks_dir))


def rule(rule_id: str) -> Rule:
    for r in all_rules():
        if r.rule_id == rule_id:
            return r
    raise KeyError(rule_id)


def rules_for_stage(stage: str) -> list[Rule]:
    return [r for r in all_rules() if r.stage == stage]


def markdown_table() -> str:
    """The catalogue as the README shows it (tests/test_docs.py keeps the two equal)."""
    lines = ["| id | severity | cites | 说明 | description |", "|---|---|---|---|---|"]
    for r in all_rules():
        lines.append(f"| `{r.rule_id}` | {r.severity} | {r.cites} | {r.zh} | {r.en} |")
    return "\n".join(lines) + "\n"
