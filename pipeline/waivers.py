"""Waivers: an auditor's acceptance of a finding, and its withdrawal, kept as an audit trail.

A waiver (豁免) records who accepted a finding, when and why; the finding stays in the reports,
marked, and stops counting toward the exit status. A withdrawal (撤销豁免) records who ended a
waiver, when and why; from the next run on the finding counts again. Nothing is deleted or
changed: a waiver is a row of `waivers`, a withdrawal a row of `waiver_withdrawals` naming the
waiver it ends by its key and time (schema version 9).

A key has one waiver in force at most. Waiving it again changes nothing; once its waiver is
withdrawn, it can be waived anew. A store from before version 9 may hold a key waived twice (the
old `recon waive` added a row each time): the earliest is the one in force, the later ones are
repeats, and a withdrawal ends them all.

These functions only read and append; the caller holds the store (`store.session`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from .store import schema_version, transaction

WITHDRAWALS_SINCE = 9  # the schema version that added waiver_withdrawals


@dataclass(frozen=True)
class Waiver:
    finding_key: str
    reason: str
    waived_by: str
    waived_at: dt.datetime
    status: str = "in_force"                 # in_force | withdrawn | repeat (of the key's waiver in force)
    withdrawn_by: str | None = None
    withdrawn_at: dt.datetime | None = None
    withdrawal_reason: str | None = None


def _withdrawals(con: duckdb.DuckDBPyConnection) -> str:
    """waiver_withdrawals, or no rows where the store is older (read as it is by `recon waivers`)."""
    if schema_version(con) >= WITHDRAWALS_SINCE:
        return "waiver_withdrawals"
    return ("(select cast(null as varchar) as finding_key, cast(null as timestamp) as waived_at, "
            "cast(null as varchar) as reason, cast(null as varchar) as withdrawn_by, "
            "cast(null as timestamp) as withdrawn_at where false)")


def history(con: duckdb.DuckDBPyConnection, finding_key: str | None = None) -> list[Waiver]:
    """Every waiver (of one key, or of all), oldest first, each with its status and withdrawal."""
    where, params = ("where w.finding_key = ?", [finding_key]) if finding_key is not None else ("", [])
    rows = con.execute(
        f"""
        select w.finding_key, w.reason, w.waived_by, w.waived_at,
               x.withdrawn_by, x.withdrawn_at, x.reason
        from waivers as w
        left join {_withdrawals(con)} as x on x.finding_key = w.finding_key and x.waived_at = w.waived_at
        {where}
        order by w.waived_at, w.finding_key
        """, params).fetchall()
    in_force: set[str] = set()
    waivers = []
    for key, reason, by, at, withdrawn_by, withdrawn_at, withdrawal_reason in rows:
        if withdrawn_at is not None:
            status = "withdrawn"
        elif key in in_force:
            status = "repeat"
        else:
            status = "in_force"
            in_force.add(key)
        waivers.append(Waiver(key, reason, by, at, status, withdrawn_by, withdrawn_at, withdrawal_reason))
    return waivers


def in_force(con: duckdb.DuckDBPyConnection, finding_key: str) -> Waiver | None:
    """The key's waiver in force, or None."""
    return next((w for w in history(con, finding_key) if w.status == "in_force"), None)


def waive(con: duckdb.DuckDBPyConnection, finding_key: str, reason: str, waived_by: str) -> tuple[Waiver, bool]:
    """Waive the key unless a waiver of it is in force: (the waiver in force, whether it is new)."""
    with transaction(con):
        current = in_force(con, finding_key)
        if current is not None:
            return current, False
        made = Waiver(finding_key, reason, waived_by, dt.datetime.now())
        con.execute("insert into waivers (finding_key, reason, waived_by, waived_at) values (?, ?, ?, ?)",
                    [made.finding_key, made.reason, made.waived_by, made.waived_at])
    return made, True


def withdraw(con: duckdb.DuckDBPyConnection, finding_key: str, reason: str,
             withdrawn_by: str) -> Waiver | None:
    """Withdraw the key's waiver in force (and its repeats, in a store from before version 9):
    the waiver withdrawn, or None when none is in force (nothing is recorded)."""
    with transaction(con):
        ended = [w for w in history(con, finding_key) if w.status in ("in_force", "repeat")]
        if not ended:
            return None
        at = dt.datetime.now()
        con.executemany("insert into waiver_withdrawals (finding_key, waived_at, reason, withdrawn_by, withdrawn_at) "
                        "values (?, ?, ?, ?, ?)",
                        [[w.finding_key, w.waived_at, reason, withdrawn_by, at] for w in ended])
    first = ended[0]
    return Waiver(first.finding_key, first.reason, first.waived_by, first.waived_at, "withdrawn",
                  withdrawn_by, at, reason)
