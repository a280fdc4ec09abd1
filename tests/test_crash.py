"""Crash safety: a run killed part-way (SIGKILL) leaves the store consistent, and the next run
completes as if nothing had happened."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from generate import generate  # noqa: E402  (bench/generate.py: the benchmark's ledger generator)

from pipeline.store import open_store  # noqa: E402

SEED = ROOT / "inputs" / "notices" / "000_a45419bc3fccfd31.txt"
LINES = 100_000


@pytest.fixture(scope="module")
def big_inputs(tmp_path_factory):
    inputs = tmp_path_factory.mktemp("inputs")
    (inputs / "notices").mkdir()
    shutil.copy(SEED, inputs / "notices" / SEED.name)
    generate(LINES, inputs / "ledgers" / "ytd.csv", encoding="gb18030", threads=1)
    return inputs


def _run(inputs, outputs):
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "run", "--inputs", str(inputs), "--outputs", str(outputs),
         "--as-of", "2024-12-31", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )


def _assert_consistent(db: Path) -> dict:
    con = open_store(db)
    try:
        files = con.execute(
            "select f.file_id, f.status, f.rows_loaded, count(l.file_id) "
            "from input_files f left join ledger_lines l using (file_id) "
            "where f.kind = 'ledger' group by all").fetchall()
        for file_id, status, rows_loaded, lines in files:
            assert status in ("loaded", "superseded")
            assert lines == rows_loaded > 0, f"file {file_id}: {lines} lines stored, {rows_loaded} recorded"
        orphans = con.execute(
            "select count(*) from ledger_lines where file_id not in (select file_id from input_files)"
        ).fetchone()[0]
        assert orphans == 0
        shas = con.execute("select sha256, count(*) from input_files where status = 'loaded' "
                           "group by sha256 having count(*) > 1").fetchall()
        assert shas == []
        unfinished = con.execute("select count(*) from runs where finished_at is null").fetchone()[0]
        assert unfinished == 0
        return {"ledger_files": len(files),
                "lines": con.execute("select count(*) from ledger_lines").fetchone()[0]}
    finally:
        con.close()


@pytest.mark.parametrize("kill_after", [0.5, 1.5, 3.0])
def test_crash__sigkill_part_way_then_next_run_completes(big_inputs, tmp_path, kill_after):
    outputs = tmp_path / "out"
    proc = _run(big_inputs, outputs)
    time.sleep(kill_after)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    db = outputs / "recon.duckdb"
    if db.exists():
        state = _assert_consistent(db)
        assert state["lines"] in (0, LINES)  # the file is fully loaded or not at all
    # the next run completes normally and loads everything exactly once
    done = _run(big_inputs, outputs)
    out, err = done.communicate(timeout=300)
    assert done.returncode in (0, 1), err
    assert "Traceback" not in err
    state = _assert_consistent(db)
    assert state == {"ledger_files": 1, "lines": LINES}
    assert (outputs / "latest" / "run.json").exists()
    assert not list((outputs / "runs").glob(".*.tmp"))  # a killed run's half-written reports are cleared
