"""Financial data stays with the running user: the store, its lock, the log and every report.

The README promises folders 0700 and files 0600 whatever the user's umask. The test runs the real
pipeline under the most permissive umask (000) and walks everything it created.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import hostile_corpus as hc
from hostile_corpus import AS_OF, invoke


@pytest.fixture
def open_umask():
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _modes(root: Path) -> dict[str, int]:
    """Mode bits of everything under root (symlinks themselves are skipped: their mode is moot)."""
    found = {".": stat.S_IMODE(root.lstat().st_mode)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink():
                continue
            found[str(p.relative_to(root))] = stat.S_IMODE(p.lstat().st_mode)
    return found


def test_permissions__run_outputs_private_under_open_umask(tmp_path, open_umask):
    inputs = hc.write_inputs(tmp_path)
    out = tmp_path / "out"
    ran = invoke(["run", "--inputs", str(inputs), "--outputs", str(out), "--as-of", AS_OF])
    assert ran.exit_code == 0, ran.stderr
    invoke(["report", "--outputs", str(out)])  # rewriting a run's reports keeps them private too
    modes = _modes(out)
    run_id = (out / "latest").resolve().name
    for must in ("recon.duckdb", "logs", "logs/recon.log", "runs", f"runs/{run_id}",
                 f"runs/{run_id}/exceptions.csv", f"runs/{run_id}/report.xlsx",
                 f"runs/{run_id}/report.html", f"runs/{run_id}/run.json"):
        assert must in modes, f"{must} was not written"
    leaks = {p: oct(m) for p, m in modes.items() if m & 0o077}
    assert leaks == {}, f"readable by group or others: {leaks}"


def test_permissions__load_into_new_store_private(tmp_path, open_umask):
    db = tmp_path / "new" / "store.duckdb"
    ran = invoke(["load", "notice", str(hc.SEED_NOTICE), "--db", str(db)])
    assert ran.exit_code == 0, ran.stderr
    modes = _modes(tmp_path / "new")
    assert "store.duckdb" in modes
    leaks = {p: oct(m) for p, m in modes.items() if m & 0o077}
    assert leaks == {}, f"readable by group or others: {leaks}"


def test_permissions__spill_folder_private_in_a_shared_folder(tmp_path, open_umask):
    from pipeline.store import open_store

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    con = open_store(shared / "recon.duckdb")
    spill = shared / "recon.duckdb.tmp"
    assert con.execute("select current_setting('temp_directory')").fetchone()[0] == str(spill)
    con.execute("set memory_limit = '64MB'")  # make DuckDB spill ledger-sized text
    con.execute("create temp table big as select repeat('账', 100) || cast(range as varchar) as s "
                "from range(2000000)")
    assert con.execute("select count(distinct s) from big").fetchone()[0] == 2_000_000
    assert stat.S_IMODE(spill.stat().st_mode) == 0o700
    con.close()
