"""Crash safety: a run killed part-way (SIGKILL) leaves the store consistent, and the next run
completes as if nothing had happened."""
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
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


def _run(inputs, outputs, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "run", "--inputs", str(inputs), "--outputs", str(outputs),
         "--as-of", "2024-12-31", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
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


@pytest.mark.parametrize("sig, status, after", [(signal.SIGINT, 130, 0.2), (signal.SIGINT, 130, 1.5),
                                                (signal.SIGTERM, 143, 0.8)])
def test_crash__ctrl_c_or_sigterm_stops_the_run_with_its_own_status_and_a_message(big_inputs, tmp_path, sig,
                                                                                 status, after):
    # before, Ctrl-C left with "Aborted!" and exit 1, the status of a run that finished with
    # findings (a nightly job's success), and SIGTERM ended the process without a word
    outputs = tmp_path / "out"
    proc = _run(big_inputs, outputs)
    log_file = outputs / "logs" / "recon.log"
    for _ in range(600):  # the run has begun (its log is set up), however slow the start-up
        if log_file.exists() or proc.poll() is not None:
            break
        time.sleep(0.05)
    time.sleep(after)
    assert proc.poll() is None, "the run finished before it could be stopped"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == status, err
    assert "已中断" in err and "interrupted" in err and "Traceback" not in err and "internal error" not in err
    log = (outputs / "logs" / "recon.log").read_text(encoding="utf-8")
    assert f"interrupted (exit {status})" in log
    state = _assert_consistent(outputs / "recon.duckdb")
    assert state["lines"] in (0, LINES)
    done = _run(big_inputs, outputs)
    _, err = done.communicate(timeout=300)
    assert done.returncode in (0, 1), err
    assert _assert_consistent(outputs / "recon.duckdb") == {"ledger_files": 1, "lines": LINES}


def test_crash__out_of_memory_stops_the_run_with_a_message_and_loads_nothing_half(big_inputs, tmp_path):
    """A memory limit too low for the ledger: DuckDB runs out while loading it. The run stops
    with exit 2 and says which limit and what to do (not "internal error, please report this
    bug"); the load is rolled back, so the next run, with room, loads the file whole."""
    outputs = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("RECON_MEMORY_LIMIT", "RECON_LOAD_MEMORY_LIMIT")}
    starved = _run(big_inputs, outputs, env={**env, "RECON_MEMORY_LIMIT": "16MB"})
    _, err = starved.communicate(timeout=300)
    assert starved.returncode == 2, err
    assert "Traceback" not in err and "internal error" not in err
    assert "内存不足" in err and "out of memory" in err and "RECON_MEMORY_LIMIT=16MB" in err, err
    assert "内存不足" in (outputs / "logs" / "recon.log").read_text(encoding="utf-8")
    assert _assert_consistent(outputs / "recon.duckdb") == {"ledger_files": 0, "lines": 0}
    done = _run(big_inputs, outputs, env=env)
    _, err = done.communicate(timeout=300)
    assert done.returncode in (0, 1), err
    assert _assert_consistent(outputs / "recon.duckdb") == {"ledger_files": 1, "lines": LINES}


def _raised_from(error: BaseException, while_handling: BaseException) -> BaseException:
    """`error` as it comes out of an except block that was handling `while_handling`."""
    try:
        try:
            raise while_handling
        except BaseException:
            raise error
    except BaseException as raised:
        return raised


@pytest.mark.parametrize("full", [
    OSError(28, "No space left on device"),
    duckdb.IOException('IO Error: Could not write file "recon.duckdb.tmp/duckdb_temp_storage-0.tmp": '
                       "No space left on device"),
    # a commit the WAL could not take: before, exit 70 with a traceback
    duckdb.TransactionException('TransactionContext Error: Failed to commit: Could not write file '
                                '"recon.duckdb.wal": No space left on device'),
    # xlsxwriter writing report.xlsx wraps the OSError: before, exit 70
    "xlsxwriter",
    # only the error it was raised while handling says so
    "chained",
], ids=["python", "duckdb", "duckdb_commit", "xlsxwriter", "chained"])
def test_crash__disk_full_is_named_not_reported_as_a_bug(tmp_path, monkeypatch, full):
    from click.testing import CliRunner
    from xlsxwriter.exceptions import FileCreateError

    from pipeline import ledgers
    from pipeline.cli import main

    enospc = OSError(28, "No space left on device")
    if full == "xlsxwriter":
        full = _raised_from(FileCreateError(enospc), enospc)
    elif full == "chained":
        full = _raised_from(RuntimeError("could not finish the workbook"), enospc)

    def spill(*args, **kwargs):
        raise full

    monkeypatch.setattr(ledgers, "load_ledgers", spill)
    path = tmp_path / "l.csv"
    path.write_text("凭证号\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["load", "ledger", str(path), "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert "磁盘空间不足" in result.stderr and "no space left" in result.stderr, result.stderr


def test_crash__a_ledger_line_that_says_disk_full_rejects_its_file_and_stops_nothing(tmp_path):
    # the text of any error is read for a full disk's words, but not the input's own text that
    # DuckDB's reader quotes: the file is rejected, the run goes on (exit 2, not "no space left")
    from click.testing import CliRunner

    from pipeline.cli import main

    ledger = tmp_path / "l.csv"
    ledger.write_text("凭证号,分录号,凭证日期,会计体系,科目编码,科目名称,摘要,借方金额,贷方金额\n"
                      "记-1,1,2024-03-10,预算会计,7201,支出,租赁补贴,480,0\n"
                      "记-2,1,2024-03-10,预算会计,7201,支出,No space left on device,480,0,Disk full\n",
                      encoding="utf-8")
    result = CliRunner().invoke(main, ["load", "ledger", str(ledger), "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2, result.output
    assert "拒收 / rejected" in result.stderr and "文件第3行有 10 列" in result.stderr, result.stderr
    assert "磁盘空间不足" not in result.stderr and "internal error" not in result.stderr


_REPORTS_ON_A_FULL_DISK = """
import sys
from xlsxwriter import workbook
zip_file = workbook.ZipFile
workbook.ZipFile = lambda path, *args, **kwargs: zip_file("/dev/full", *args, **kwargs)
sys.argv = ["recon", *sys.argv[1:]]
from pipeline.cli import entry
entry()
"""


def test_crash__disk_full_while_the_reports_and_the_log_are_written_is_one_line_exit_2(tmp_path):
    """The outputs' disk fills during `recon check`: each log record, then report.xlsx, fail to
    be written (to /dev/full, which says ENOSPC to every write). Before: exit 70 ("please report
    this bug"), a "--- Logging error ---" traceback on stderr for every record, and xlsxwriter's
    zip file, left open, one more ("Exception ignored in: ZipFile.__del__") as it was collected."""
    from builders import add_ledger, new_store, seed_notice

    con = new_store(tmp_path)
    seed_notice(con)
    add_ledger(con, [dict(voucher_no="记-0001", debit=480, payee="王芳")])
    con.close()
    out = tmp_path / "out"
    (out / "logs").mkdir(parents=True)
    (out / "logs" / "recon.log").symlink_to("/dev/full")
    done = subprocess.run(
        [sys.executable, "-c", _REPORTS_ON_A_FULL_DISK, "check", "--db", str(tmp_path / "recon.duckdb"),
         "--outputs", str(out), "--as-of", "2024-12-31"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("磁盘空间不足") and "no space left" in lines[0], done.stderr


def test_crash__a_log_that_cannot_be_written_says_nothing_on_stderr(tmp_path, capsys):
    # before: "--- Logging error ---" and a traceback on stderr for every record
    import logging

    from pipeline.logs import setup_logging

    setup_logging(tmp_path / "out")
    log = logging.getLogger("recon")
    [handler] = [h for h in log.handlers if h.__class__.__name__ == "_LogFile"]  # pytest adds its own
    handler.stream.close()
    handler.stream = open("/dev/full", "w", encoding="utf-8")  # the disk full
    try:
        log.info("stage ledger 0.44s")
        log.error("一条中文 / a line")
    finally:
        log.removeHandler(handler)
        stream, handler.stream = handler.stream, None
        with contextlib.suppress(OSError):
            stream.close()
    assert capsys.readouterr().err == ""


def test_crash__a_library_s_error_goes_to_the_log_not_to_stderr(tmp_path, capsys):
    # Great Expectations logs each Data Docs page it cannot write on a full disk at ERROR with its
    # traceback: before, logging's last resort printed it on stderr, into cron's mail
    import logging

    from pipeline.logs import setup_logging

    path = setup_logging(tmp_path / "out")
    gx = logging.getLogger("great_expectations.render.renderer.site_builder")
    try:
        gx.error('An unexpected Exception occurred during data docs rendering.  OSError: "[Errno 28] No '
                 'space left on device".  Traceback: "Traceback (most recent call last):\n  File …"')
    finally:
        for name in ("recon", "great_expectations"):
            for handler in logging.getLogger(name).handlers[:]:
                if handler.__class__.__name__ == "_LogFile":
                    logging.getLogger(name).removeHandler(handler)
                    handler.close()
    assert capsys.readouterr().err == ""
    [line] = path.read_text(encoding="utf-8").splitlines()
    assert "ERROR An unexpected Exception occurred during data docs rendering" in line
