"""Fuzzing the ledger loader: a valid small export, mutated the way exports get mangled.

Hypothesis swaps columns, rewrites cells with arbitrary unicode, re-encodes the file (UTF-8, BOM,
GBK, GB18030, UTF-16) and then damages its bytes (drops, duplicates, garbles, cuts, stray quotes).
The mutated file is loaded with `recon load ledger` next to the good ledger into a store that
holds the seed notice, and whatever the mutation, these hold:

* no traceback, exit 0 or 2 (2 only when the mutated file is rejected, and then it is named);
* the store is consistent: a rejected file left no lines, a loaded file's counts match its lines
  and quarantine rows, every stored line is typed (voucher, date, account, amounts present);
* the good file is loaded whole and the spending it carries is exactly as before;
* metamorphic: when only columns moved and the encoding changed, the file loads exactly as the
  original (3,000.00 on the 危旧房改造 line); when only cells changed, every data row is either
  loaded or quarantined (nothing dropped silently) and untouched rows load with their values.

Bounded (derandomized, 20 examples, no deadline) to keep the suite fast and reproducible;
RECON_FUZZ_EXAMPLES=200 runs more (the same first 20, then others).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import hostile_corpus as hc
from builders import connect
from hostile_corpus import DILAPIDATED, GOOD_SPENT, HEADER, invoke

N_ROWS = 6
ROWS = hc.hostile_rows(N_ROWS, start=500)
ENCODINGS = ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A store holding the seed notice, and the good ledger's bytes."""
    root = tmp_path_factory.mktemp("fuzz-template")
    db = root / "recon.duckdb"
    ran = invoke(["load", "notice", str(hc.SEED_NOTICE), "--db", str(db)])
    assert ran.exit_code == 0, ran.stderr
    good = hc.write_csv(root / "good.csv", hc.good_rows())
    return dict(db=db, good=good)


byte_op = st.one_of(
    st.tuples(st.just("drop"), st.integers(0, 10**6), st.integers(1, 40)),
    st.tuples(st.just("dup"), st.integers(0, 10**6), st.integers(1, 40)),
    st.tuples(st.just("garble"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("quote"), st.integers(0, 10**6), st.sampled_from([b'"', b'""', b'",', b'\r', b'\n'])),
)
mutation = st.fixed_dictionaries({
    "swaps": st.lists(st.tuples(st.integers(0, len(HEADER) - 1), st.integers(0, len(HEADER) - 1)), max_size=3),
    "edits": st.dictionaries(st.integers(0, N_ROWS - 1),
                             st.tuples(st.integers(0, len(HEADER) - 1), st.text(max_size=12)), max_size=3),
    "encoding": st.sampled_from(ENCODINGS),
    "bytes": st.lists(byte_op, max_size=3),
    "good_first": st.booleans(),
})


def mutate(m: dict) -> tuple[bytes, list[int], str]:
    """The mutated file's bytes, the data rows left untouched, and the encoding used."""
    header = list(HEADER)
    rows = [list(r) for r in ROWS]
    for i, j in m["swaps"]:
        for r in [header, *rows]:
            r[i], r[j] = r[j], r[i]
    for row, (col, text) in m["edits"].items():
        rows[row][col] = text
    text = hc.csv_text(rows, header)
    encoding = m["encoding"]
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:  # GBK cannot spell every character; GB18030 can
        encoding = "gb18030"
        data = text.encode(encoding)
    for op, pos, arg in m["bytes"]:
        pos = pos % (len(data) + 1)
        if op == "drop":
            data = data[:pos] + data[pos + arg:]
        elif op == "dup":
            data = data[:pos] + data[pos:pos + arg] + data[pos:]
        elif op == "garble":
            data = data[:pos] + arg + data[pos + len(arg):]
        elif op == "cut":
            data = data[:pos]
        else:
            data = data[:pos] + arg + data[pos:]
    untouched = [i + 1 for i in range(N_ROWS) if i not in m["edits"]]
    return data, untouched, encoding


# No shrinking: a failure prints its (unshrunk) example, and the suite's time stays bounded.
@settings(max_examples=int(os.environ.get("RECON_FUZZ_EXAMPLES", "20")), deadline=None, derandomize=True, database=None,
          phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(m=mutation)
def test_fuzz__mutated_ledger_never_crashes_or_disturbs_good_files(template, m):
    data, untouched, encoding = mutate(m)
    with tempfile.TemporaryDirectory(prefix="recon-fuzz-") as tmp:
        tmp = Path(tmp)
        db = tmp / "recon.duckdb"
        shutil.copy2(template["db"], db)
        good = tmp / "good.csv"
        shutil.copy2(template["good"], good)
        bad = tmp / "mutated.csv"
        bad.write_bytes(data)
        order = [good, bad] if m["good_first"] else [bad, good]
        ran = invoke(["load", "ledger", *map(str, order), "--db", str(db)])
        con = connect(db)  # one connection for every check of this example
        try:
            _check(con, ran, m, untouched, encoding)
        finally:
            con.close()


def _check(db, ran, m: dict, untouched: list[int], encoding: str) -> None:
    """The invariants, on one open connection to the store `db`."""
    assert hc.store_consistency_problems(db) == []
    g = hc.file_state(db, "good.csv")
    assert g["status"] == "loaded" and g["lines"] == len(hc.good_rows()) and not g["bad_rows"], g
    b = hc.file_state(db, "mutated.csv")
    if b["status"] == "rejected":
        assert ran.exit_code == 2 and "mutated.csv" in ran.stderr, ran
        assert b["lines"] == 0 and not b["bad_rows"]
    else:
        assert ran.exit_code == 0, ran
        assert b["status"] == "loaded", b
    assert hc.query(db, "select count(*) from ledger_lines where voucher_no is null or posted_on is null "
                        "or account_code is null or debit is null or credit is null") == [(0,)]
    totals = hc.spent_in_store(db, as_of="2024-12-31")
    for purpose, amount in GOOD_SPENT.items():
        assert totals[purpose] == amount, (purpose, totals)

    if not m["bytes"] and not m["edits"]:
        # columns moved, encoding changed: the same export, loaded exactly
        assert b["status"] == "loaded" and b["lines"] == N_ROWS, (encoding, b)
        assert totals[DILAPIDATED] == Decimal("6000.00"), totals
    elif not m["bytes"] and b["status"] == "loaded":
        # cells changed: every data row is accounted for, untouched rows load as they were
        stored = dict(hc.query(db, "select row_no, debit from ledger_lines where file_id = ?", [b["file_id"]]))
        assert set(stored) | set(b["bad_rows"]) == set(range(1, N_ROWS + 1)), (stored, b)
        for row in untouched:
            assert stored.get(row) == Decimal("1000.00"), (row, stored, b)


def test_fuzz__mutations_are_applied():
    """The mutator really changes what it claims (a fuzz test of a no-op proves nothing)."""
    base = {"swaps": [], "edits": {}, "encoding": "utf-8", "bytes": [], "good_first": True}
    original, _, _ = mutate(base)
    assert original == hc.csv_text(ROWS).encode()
    swapped, _, _ = mutate({**base, "swaps": [(0, 7)]})
    assert swapped.splitlines()[0].startswith("借方金额".encode())
    cut, _, _ = mutate({**base, "bytes": [("cut", 100, 0)]})
    assert cut == original[:100]
    edited, untouched, _ = mutate({**base, "edits": {2: (7, "１２３ａ")}})
    assert "１２３ａ".encode() in edited and untouched == [1, 2, 4, 5, 6]
    utf16, _, enc = mutate({**base, "encoding": "utf-16"})
    assert enc == "utf-16" and utf16.decode("utf-16") == original.decode()
    fallback, _, enc = mutate({**base, "encoding": "gbk", "edits": {0: (6, "😀")}})
    assert enc == "gb18030" and "😀".encode("gb18030") in fallback
