"""run.json: what a run read, what it found and how it ended, for machines and auditors."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import duckdb

from .. import __version__
from ..loading import sha256_file
from ..paths import ROOT
from ..rules import all_rules
from .common import INPUTS_SQL, OPEN, WAIVED, atomic_write, fetch_dicts


def build_manifest(con: duckdb.DuckDBPyConnection, run_id: str) -> dict:
    run = con.execute(
        "select run_id, started_at, finished_at, as_of, fail_on, scope, exit_status, counts "
        "from runs where run_id = ?", [run_id]
    ).fetchone()
    if run is None:
        raise KeyError(run_id)
    inputs = fetch_dicts(con, INPUTS_SQL, [run_id])
    # Counts are of open findings; those resolved since the previous run are counted apart.
    by_sev = dict(con.execute(
        "select severity, count(*) from findings where run_id = ? "
        "and change is distinct from 'resolved' group by severity", [run_id]
    ).fetchall())
    by_rule = dict(con.execute(
        "select rule_id, count(*) from findings where run_id = ? "
        "and change is distinct from 'resolved' group by rule_id order by rule_id",
        [run_id]).fetchall())
    by_change = dict(con.execute(
        "select change, count(*) from findings where run_id = ? and change is not null "
        "group by change order by change", [run_id]).fetchall())
    # of the open findings, those a waiver in force when the run finished accepts
    waived = con.execute(f"select count(*) from findings as f where f.run_id = ? and {OPEN} and {WAIVED}",
                         [run_id]).fetchone()[0]
    counts = json.loads(run[7]) if run[7] else {}
    # the aliases the run matched sub-accounts by, as recorded with it (a run recorded before
    # they were kept: those in the store now)
    aliases = counts.get("purpose_aliases")
    if aliases is None:
        aliases = purpose_aliases(con)
    return {
        "run_id": run[0],
        "tool": {"name": "budget-recon", "version": __version__},
        # the store keeps the machine's local time; run.json says which zone that was
        "started_at": run[1].astimezone().isoformat() if run[1] else None,
        "finished_at": run[2].astimezone().isoformat() if run[2] else None,
        "as_of": run[3].isoformat(),
        "fail_on": run[4],
        "scope": json.loads(run[5]) if run[5] else {},
        "exit_status": run[6],
        "counts": {k: v for k, v in counts.items() if k not in RECORDED_APART},
        "findings": {"by_severity": {s: by_sev.get(s, 0) for s in ("error", "warning", "info")},
                     "by_rule": by_rule, "by_change": by_change, "waived": waived},
        "inputs": inputs,
        "purpose_aliases": aliases,
        "rules": _rule_versions(counts),
        # null for a run recorded before they were kept: which they were is not known
        "definitions": counts.get("definitions"),
    }


def purpose_aliases(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The aliases sub-accounts are matched by now (inputs/purpose_aliases.csv, pipeline/aliases.py);
    pipeline/run.py records them with each run."""
    return fetch_dicts(con, """
        select al.notice_no, al.alias_key, a.purpose
        from purpose_aliases as al
        join allocation_lines as a on a.notice_no = al.notice_no and a.line_seq = al.line_seq
        order by al.notice_no, a.line_seq, al.alias_key
        """)


# what else than its inputs a run's results follow from: the views the rules read (the rules
# themselves are in "rules"), the expectation suites, the settings (indicators, presets) and the
# function codes of reference/
DEFINITIONS = ("sql/*.sql", "expectations/*.json", "config/*.toml", "reference/*.csv")
RECORDED_APART = ("rules", "purpose_aliases", "definitions")  # of runs.counts: not in run.json's counts


def definition_versions() -> dict:
    """sha256 and size of each file of DEFINITIONS now, by its path in the project (RECON_HOME),
    and of a site's presets named by RECON_PRESETS (by its own path); pipeline/run.py records them
    with each run, so an auditor can tell whether tonight's run read the settings last night's did.
    A site's presets.toml beside its ledgers changes how a file loads, which its inputs record."""
    files = {p.relative_to(ROOT).as_posix(): p for pattern in DEFINITIONS for p in sorted(ROOT.glob(pattern))}
    presets = os.environ.get("RECON_PRESETS")
    if presets and Path(presets).is_file():
        files[str(Path(presets).resolve())] = Path(presets)
    versions = {}
    for name, path in files.items():
        try:
            versions[name] = {"sha256": sha256_file(path), "size_bytes": path.stat().st_size}
        except OSError as exc:  # named but unreadable: the run reads it, or fails on it, itself
            versions[name] = {"sha256": None, "error": exc.strerror or str(exc)}
    return versions


def rule_versions() -> dict:
    """The catalogue's rule versions now; pipeline/run.py records them with each run."""
    return {r.rule_id: {"version": r.version, "sha256": hashlib.sha256(r.sql.encode("utf-8")).hexdigest(),
                        "file": r.path.name, "severity": r.severity}
            for r in all_rules()}


def _rule_versions(counts: dict) -> dict:
    """The rule versions the run used (recorded in runs.counts["rules"]); for a run recorded
    before versions were kept, the current catalogue's."""
    if isinstance(counts.get("rules"), dict):
        return counts["rules"]
    return rule_versions()


def write_manifest(con: duckdb.DuckDBPyConnection, run_id: str, run_dir: Path) -> None:
    data = build_manifest(con, run_id)
    with atomic_write(run_dir / "run.json") as tmp:
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
