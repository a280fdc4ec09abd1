"""The store: schema versioning, one writer at a time, permissions."""
import csv
import datetime as dt
from decimal import Decimal
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.store import SCHEMA_VERSION, StoreError, memory_limit, open_store, schema_version, session


def _record_run(con, run_id, as_of=None, exit_status=0):
    """A finished run in the store's record, as any version kept it."""
    con.execute("insert into runs (run_id, started_at, finished_at, as_of, fail_on, scope, exit_status, counts) "
                "values (?, now(), now(), ?, 'error', '{}', ?, '{}')",
                [run_id, as_of or dt.date.today(), exit_status])


def test_schema__created_on_first_use_and_versioned(tmp_path):
    con = open_store(tmp_path / "s.duckdb")
    assert schema_version(con) == SCHEMA_VERSION
    tables = {r[0] for r in con.execute("show tables").fetchall()}
    assert {"notices", "allocation_lines", "ledger_lines", "findings", "runs", "waivers"} <= tables
    con.close()
    # reopening an up-to-date store changes nothing and keeps data
    con = open_store(tmp_path / "s.duckdb")
    con.execute("insert into waivers values ('k', 'r', 'b', now())")
    con.close()
    con = open_store(tmp_path / "s.duckdb")
    assert con.execute("select count(*) from waivers").fetchone()[0] == 1


def test_schema__newer_store_is_refused_not_damaged(tmp_path):
    con = open_store(tmp_path / "s.duckdb")
    con.execute("update schema_meta set value = ? where key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    with pytest.raises(StoreError, match="newer than this release"):
        open_store(tmp_path / "s.duckdb")


def test_schema__version_1_store_is_migrated_keeping_its_files(tmp_path):
    # a store as version 1 left it: input_files without mtime_ns
    con = open_store(tmp_path / "s.duckdb")
    con.execute("insert into input_files (sha256, kind, path, name, size_bytes, loaded_at, status) "
                "values ('abc', 'ledger', '/in/l.csv', 'l.csv', 10, now(), 'loaded')")
    con.execute("alter table input_files drop column mtime_ns")
    con.execute("update schema_meta set value = '1' where key = 'schema_version'")
    con.close()
    con = open_store(tmp_path / "s.duckdb")
    assert schema_version(con) == SCHEMA_VERSION == 9
    assert con.execute("select name, status, mtime_ns from input_files").fetchall() == [("l.csv", "loaded", None)]
    con.close()


def test_views__made_once_and_again_when_their_sql_changes(tmp_path, monkeypatch):
    # binding facts.sql takes 0.4 s: a store opened again with the same files keeps its views
    # (the one altered here stays as it was altered), a changed file is made again at the next open
    import shutil

    from pipeline import store

    db = tmp_path / "recon.duckdb"
    open_store(db).close()
    con = open_store(db)
    con.execute("create or replace view fct_expenditure as select 42 as marker")
    con.close()
    con = open_store(db)
    assert con.execute("select * from fct_expenditure").fetchall() == [(42,)]
    con.close()

    sql = tmp_path / "sql"
    shutil.copytree(store.SQL_DIR, sql)
    with open(sql / "facts.sql", "a", encoding="utf-8") as f:
        f.write("\ncreate or replace view probe_view as select 1 as x;\n")
    monkeypatch.setattr(store, "SQL_DIR", sql)
    con = open_store(db)
    assert con.execute("select x from probe_view").fetchall() == [(1,)]
    assert "marker" not in [d[0] for d in con.execute("select * from fct_expenditure limit 0").description]
    con.close()


def test_schema__version_2_store_is_migrated_and_runs(tmp_path):
    # a store as version 2 left it, with a run recorded: no run_purpose_matches table
    from hostile_corpus import AS_OF, invoke, write_inputs

    inputs = write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    first = invoke(["run", "--inputs", str(inputs), "--outputs", str(out), "--as-of", AS_OF])
    assert first.exit_code in (0, 1), first.stderr
    con = open_store(out / "recon.duckdb")
    con.execute("drop table run_purpose_matches")
    con.execute("update schema_meta set value = '2' where key = 'schema_version'")
    con.close()
    again = invoke(["run", "--inputs", str(inputs), "--outputs", str(out), "--as-of", AS_OF])
    assert again.exit_code in (0, 1), again.stderr
    con = open_store(out / "recon.duckdb")
    assert schema_version(con) == SCHEMA_VERSION == 9
    runs = [r[0] for r in con.execute("select run_id from runs order by started_at").fetchall()]
    assert len(runs) == 2
    matched = dict(con.execute("select run_id, count(*) from run_purpose_matches group by run_id").fetchall())
    con.close()
    assert runs[0] not in matched and matched[runs[1]] > 0
    # the run recorded before the migration still gets its reports written again
    rewritten = invoke(["report", "--outputs", str(out), runs[0]])
    assert rewritten.exit_code == 0, rewritten.stderr


def test_schema__version_3_findings_and_waivers_are_keyed_by_period(tmp_path):
    # a version 3 store keyed findings rule | notice | voucher:line; version 4 adds @yyyymm. The
    # stored findings and waivers are keyed again, so the next run finds the same finding
    # persisting, and the waiver still applies
    from builders import add_ledger, seed_notice
    from click.testing import CliRunner
    from pipeline.cli import main

    db = tmp_path / "recon.duckdb"
    con = open_store(db)
    seed_notice(con)
    add_ledger(con, [dict(voucher_no="记-0002", posted_on=dt.date(2024, 3, 15), debit=480, payee="李强",
                          function_code="2210108")])
    con.close()
    check = ["check", "--db", str(db), "--outputs", str(tmp_path / "out"), "--as-of", "2024-12-31"]
    assert CliRunner().invoke(main, check).exit_code == 1
    con = open_store(db)
    [key] = [k for (k,) in con.execute("select finding_key from findings where rule_id = 'CODE_MISMATCH'").fetchall()]
    assert key.endswith("记-0002:1@202403")
    old = key.removesuffix("@202403")
    con.execute("update findings set finding_key = regexp_replace(finding_key, '@[0-9]{6}', '')")
    con.execute("insert into waivers values (?, '财政局同意', '李会计', now())", [old])
    con.execute("update schema_meta set value = '3' where key = 'schema_version'")
    con.close()
    con = open_store(db)
    assert schema_version(con) == SCHEMA_VERSION == 9
    assert con.execute("select finding_key from waivers").fetchall() == [(key,)]
    assert con.execute("select count(*) from findings where finding_key = ?", [key]).fetchone() == (1,)
    con.close()
    CliRunner().invoke(main, check)
    con = open_store(db)
    last = con.execute("select change from findings where finding_key = ? order by run_id desc limit 1",
                       [key]).fetchone()
    con.close()
    assert last == ("persisting",)


def test_schema__version_4_lines_keep_their_notices_number_as_now_keyed(tmp_path):
    # a version 4 store keyed a line's 指标文号 without forgiving a leading zero or full-width
    # digits: 克区财综〔2024〕02号 named no notice, and the line was tied by its project code
    from builders import NOTICE_NO, add_ledger, seed_notice, set_context

    db = tmp_path / "recon.duckdb"
    con = open_store(db)
    seed_notice(con)
    seed_notice(con, notice_no="克区财综〔2024〕07号", project_code="X")  # as an older parse stored it
    add_ledger(con, [dict(voucher_no="记-1", debit=480), dict(voucher_no="记-2", debit=480, payee="李四"),
                     dict(voucher_no="记-3", debit=480, payee="王五")])
    for voucher, stored in (("记-1", "克区财综〔2024〕02号"), ("记-2", "克区财综〔2024〕07号"),
                            ("记-3", "克区财预〔2024〕05号")):  # as version 4's loader keyed them
        con.execute("update ledger_lines set budget_doc_no = ? where voucher_no = ?", [stored, voucher])
    con.execute("update schema_meta set value = '4' where key = 'schema_version'")
    con.close()
    con = open_store(db)
    assert schema_version(con) == SCHEMA_VERSION == 9
    assert con.execute("select voucher_no, budget_doc_no from ledger_lines order by voucher_no").fetchall() == [
        ("记-1", NOTICE_NO),                       # now names its notice
        ("记-2", "克区财综〔2024〕07号"),            # named its notice's stored number: left so
        ("记-3", "克区财预〔2024〕05号")]            # names no notice either way: left as it was
    set_context(con)
    tied = dict(con.execute("select voucher_no, tied_by from fct_expenditure where notice_no = ?",
                            [NOTICE_NO]).fetchall())
    assert tied == {"记-1": "budget_doc_no", "记-3": "project_code"}
    con.close()


def test_store__files_readable_by_owner_only(tmp_path):
    with session(tmp_path / "out" / "s.duckdb"):
        pass
    mode = stat.S_IMODE(os.stat(tmp_path / "out" / "s.duckdb").st_mode)
    assert mode & 0o077 == 0
    assert stat.S_IMODE(os.stat(tmp_path / "out").st_mode) & 0o077 == 0


HOLDER = """
import sys, time
from pipeline.store import session
with session(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_lock__second_writer_waits_then_exits_2_with_message(tmp_path):
    db = tmp_path / "s.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), "30"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        result = CliRunner().invoke(main, ["check", "--db", str(db), "--outputs", str(tmp_path / "o"),
                                           "--wait", "1"])
        waited = time.monotonic() - t0
        assert result.exit_code == 2  # the contract's status for what could not be opened
        assert "in use by another recon process" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert 1 <= waited < 20
    finally:
        holder.kill()
        holder.wait()


def test_lock__released_when_holder_is_killed(tmp_path):
    db = tmp_path / "s.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), "60"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    # the store is empty (INPUT_MISSING): --fail-on never, so that 0 says only that the check ran
    result = CliRunner().invoke(main, ["check", "--db", str(db), "--outputs", str(tmp_path / "o"),
                                       "--wait", "5", "--as-of", "2024-12-31", "--fail-on", "never"])
    assert result.exit_code == 0, result.output


def test_lock__two_runs_racing_for_one_store_both_finish_nothing_loaded_twice(tmp_path):
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    shutil.copytree(root / "inputs", tmp_path / "inputs")
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--inputs", str(tmp_path / "inputs"),
           "--outputs", str(tmp_path / "out"), "--as-of", "2024-12-31", "--wait", "120"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root)
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [1, 1], results  # both reconciled the demo's findings
    assert all("Traceback" not in err for _, err in results)
    con = open_store(tmp_path / "out" / "recon.duckdb")
    try:
        assert con.execute("select count(*) from runs where finished_at is not null").fetchone()[0] == 2
        loaded = con.execute("select count(*), count(distinct sha256) from input_files "
                             "where status = 'loaded'").fetchone()
        assert loaded[0] == loaded[1] == 2  # the notice and the ledger, once each
        actions = con.execute("select action, count(*) from run_inputs group by action order by 1").fetchall()
        assert actions == [("loaded", 2), ("skipped", 2)]
    finally:
        con.close()


def test_memory_limit__block_runs_under_its_limit_and_the_store_limit_comes_back(tmp_path):
    con = open_store(tmp_path / "s.duckdb")
    limit = lambda: con.execute("select current_setting('memory_limit')").fetchone()[0]  # noqa: E731
    store_limit = limit()
    with pytest.raises(RuntimeError):
        with memory_limit(con, "320MB"):
            assert limit() == "305.1 MiB"
            raise RuntimeError("a load fails")
    assert limit() == store_limit
    with pytest.raises(StoreError, match="not a memory limit"):
        with memory_limit(con, "320MB'; drop table ledger_lines; --"):
            pass
    assert con.execute("select count(*) from ledger_lines").fetchone()[0] == 0
    con.close()


_LOAD_LIMIT_SPY = """
import sys
from pipeline import ledgers, store
seen = []
original = ledgers._load_in_transaction
def spy(con, *args, **kwargs):
    seen.append(con.execute("select current_setting('memory_limit')").fetchone()[0])
    return original(con, *args, **kwargs)
ledgers._load_in_transaction = spy
con = store.open_store(sys.argv[1])
[outcome] = ledgers.load_ledgers(con, [sys.argv[2]])
after = con.execute("select current_setting('memory_limit')").fetchone()[0]
print(outcome.action, seen[0], after, sep="|")
"""


@pytest.mark.parametrize("load_limit, during", [
    (None, "667.5 MiB"),     # by default a load runs under the store's limit
    ("320MB", "305.1 MiB"),  # RECON_LOAD_MEMORY_LIMIT lowers it for loads only
])
def test_load_memory_limit__store_limit_unless_set_for_loads(tmp_path, load_limit, during):
    from pipeline.paths import ROOT

    env = {k: v for k, v in os.environ.items() if k != "RECON_LOAD_MEMORY_LIMIT"}
    env["RECON_MEMORY_LIMIT"] = "700MB"
    if load_limit:
        env["RECON_LOAD_MEMORY_LIMIT"] = load_limit
    ledger = ROOT / "inputs" / "ledgers" / "ledger_2024_ytd_20241130.csv"
    done = subprocess.run([sys.executable, "-c", _LOAD_LIMIT_SPY, str(tmp_path / "s.duckdb"), str(ledger)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"loaded|{during}|667.5 MiB"


def test_store__draws_no_progress_bar_into_logs(tmp_path):
    con = open_store(tmp_path / "s.duckdb")
    assert con.execute("select current_setting('enable_progress_bar')").fetchone()[0] is False
    con.close()


def test_sha256_file__whole_file_in_chunks(tmp_path, monkeypatch):
    import hashlib
    import os

    from pipeline import loading

    monkeypatch.setattr(loading, "HASH_CHUNK_BYTES", 1000)  # many chunks, the last one short
    data = os.urandom(10_500)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert loading.sha256_file(path) == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert loading.sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_schema__version_5_run_summary_takes_rates_of_any_size(tmp_path):
    # version 5 kept execution_rate as decimal(9,4): a line that spent 100,000 times its
    # allocation (a slip of a few zeros) stopped the run with a conversion error, exit 70, and
    # every run after it, since the ledger stayed loaded
    from builders import RENT, add_ledger, seed_notice
    from click.testing import CliRunner
    from pipeline.cli import main

    db = tmp_path / "recon.duckdb"
    con = open_store(db)
    seed_notice(con)
    _record_run(con, "old")
    con.execute("insert into run_summary values ('old', ?, 1, ?, '2210107', 172800, 86400, 86400, 0.5)",
                ["克区财综〔2024〕2号", RENT])
    con.execute("alter table run_summary alter column execution_rate type decimal(9,4)")
    con.execute("update schema_meta set value = '5' where key = 'schema_version'")
    add_ledger(con, [dict(voucher_no="记-1", debit=17_280_000_000)])  # 100,000 times the allocation
    con.close()
    con = open_store(db)
    assert schema_version(con) == SCHEMA_VERSION == 9
    assert con.execute("select typeof(execution_rate), execution_rate from run_summary").fetchall() == [
        ("DECIMAL(18,4)", Decimal("0.5000"))]
    con.close()
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["check", "--db", str(db), "--outputs", str(out), "--as-of", "2024-12-31"])
    assert result.exit_code == 1, result.stderr
    summary = (out / "latest" / "summary.csv").read_text(encoding="utf-8-sig")
    assert f"{RENT},2210107,172800.00,17280000000.00,-17279827200.00,100000.0000" in summary


def test_schema__version_6_indicators_keep_their_rows_and_old_reports_still_write(tmp_path):
    # version 7 added run_indicators.over_ceiling; a run made before it reads as lagging
    db = tmp_path / "recon.duckdb"
    con = open_store(db)
    _record_run(con, "old")
    con.execute("alter table run_indicators drop column over_ceiling")
    con.execute("insert into run_indicators (run_id, notice_no, purpose, indicator, target, observed, status) "
                "values ('old', 'N', 'P', '每户补贴标准', '<=480元/户/月', '960.00元/户/月', 'behind')")
    con.execute("update schema_meta set value = '6' where key = 'schema_version'")
    con.close()
    con = open_store(db)
    assert schema_version(con) == SCHEMA_VERSION == 9
    assert con.execute("select indicator, status, over_ceiling from run_indicators").fetchall() == [
        ("每户补贴标准", "behind", None)]
    con.close()
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["report", "old", "--db", str(db), "--outputs", str(out)])
    assert result.exit_code == 0, result.stderr
    with (out / "runs" / "old" / "indicators.csv").open(encoding="utf-8-sig") as fh:
        assert [r["status"] for r in csv.DictReader(fh)] == ["behind"]


def test_schema__version_8_waivers_stay_in_force_and_can_be_withdrawn(tmp_path):
    # version 9 added waiver_withdrawals. A version 8 store's waivers are all in force; a key the
    # old `recon waive` waived twice is one waiver in force (the earliest), and withdrawing it
    # withdraws both rows
    key = "CODE_MISMATCH|N|记-1:1@202403"
    db = tmp_path / "recon.duckdb"
    con = open_store(db)
    _record_run(con, "old", dt.date(2024, 12, 31), exit_status=0)
    con.execute("insert into findings (run_id, rule_id, severity, message, finding_key, change) "
                "values ('old', 'CODE_MISMATCH', 'error', 'm', ?, 'new')", [key])
    con.execute("insert into waivers values (?, '财政局同意', '李会计', timestamp '2024-06-01 09:00')", [key])
    con.execute("insert into waivers values (?, '再次确认', '张会计', timestamp '2024-06-02 09:00')", [key])
    con.execute("drop table waiver_withdrawals")
    con.execute("update schema_meta set value = '8' where key = 'schema_version'")
    con.close()
    # read as it is by `recon waivers` (read-only): one waiver in force
    listed = CliRunner().invoke(main, ["waivers", "--db", str(db)])
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines() == [f"2024-06-01 09:00  李会计  {key}  财政局同意"]
    con = open_store(db, read_only=True)
    assert schema_version(con) == 8
    con.close()
    con = open_store(db)
    assert schema_version(con) == SCHEMA_VERSION == 9
    assert con.execute("select count(*) from waiver_withdrawals").fetchone() == (0,)
    assert con.execute("select count(*) from waivers").fetchone() == (2,)
    con.close()
    withdrawn = CliRunner().invoke(main, ["unwaive", key, "--reason", "误豁免", "--by", "王审计", "--db", str(db)])
    assert withdrawn.exit_code == 0, withdrawn.output
    con = open_store(db)
    assert con.execute("select waived_at, withdrawn_by from waiver_withdrawals order by waived_at").fetchall() == [
        (dt.datetime(2024, 6, 1, 9), "王审计"), (dt.datetime(2024, 6, 2, 9), "王审计")]
    con.close()
    history = CliRunner().invoke(main, ["waivers", "--all", "--db", str(db)]).output.splitlines()
    assert [line.strip().split(" ")[0] for line in history[1::2]] == ["已撤销", "已撤销"]


def _another_programs_database(folder):
    import duckdb

    folder.mkdir()
    path = folder / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table schema_meta (key integer, value integer)")  # a name others use too
    con.execute("create table budget (account varchar, amount decimal(18, 2))")
    con.execute("insert into budget values ('2210107', 480)")
    con.close()
    return path


@pytest.mark.parametrize("command", [
    ["runs"], ["waivers"], ["prune", "--keep", "1"],
    ["check", "--as-of", "2024-12-31"], ["run", "--as-of", "2024-12-31"], ["report"],
    ["waive", "K", "--reason", "r", "--by", "b"], ["unwaive", "K", "--reason", "r", "--by", "b"],
    ["load", "ledger", "LEDGER"],
], ids=["runs", "waivers", "prune", "check", "run", "report", "waive", "unwaive", "load"])
def test_store__a_duckdb_file_of_another_program_is_refused_and_left_as_it_was(tmp_path, command):
    # before: `recon runs` exit 70 (a DuckDB error), `recon check` wrote its ~35 tables and views
    # into the file and exit 1
    import hashlib

    other = _another_programs_database(tmp_path / "other")
    before = hashlib.sha256(other.read_bytes()).hexdigest()
    (tmp_path / "in" / "ledgers").mkdir(parents=True)
    ledger = tmp_path / "in" / "ledgers" / "l.csv"
    ledger.write_text("凭证号,分录号\n记-1,1\n", encoding="utf-8")
    args = [str(ledger) if a == "LEDGER" else a for a in command]
    if command[0] == "run":
        args += ["--inputs", str(tmp_path / "in")]
    result = CliRunner().invoke(main, [*args, "--db", str(other), "--outputs", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"不是 budget-recon 的数据库 / not a budget-recon store: {other}" in result.stderr
    assert "Traceback" not in result.output
    assert hashlib.sha256(other.read_bytes()).hexdigest() == before
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["other.duckdb"]  # no lock, wal, .tmp


def test_store__an_empty_duckdb_file_becomes_a_store_but_is_not_read_as_one(tmp_path):
    import duckdb

    empty = tmp_path / "new.duckdb"
    duckdb.connect(str(empty)).close()
    refused = CliRunner().invoke(main, ["runs", "--db", str(empty)])
    assert refused.exit_code == 2 and "not a budget-recon store" in refused.stderr
    con = open_store(empty)  # what `recon run --db new.duckdb` does with it
    assert schema_version(con) == SCHEMA_VERSION
    con.close()


@pytest.mark.parametrize("command", [["runs"], ["waivers"], ["prune", "--keep", "1"]],
                         ids=["runs", "waivers", "prune"])
def test_schema__a_newer_store_is_refused_by_the_commands_that_only_read(tmp_path, command):
    # before, they read it as if it were this release's (`check` and `run` refused it)
    db = tmp_path / "recon.duckdb"
    con = open_store(db)
    con.execute("update schema_meta set value = ? where key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    result = CliRunner().invoke(main, [*command, "--db", str(db), "--outputs", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert f"数据库版本 {SCHEMA_VERSION + 1} 高于本程序支持的 {SCHEMA_VERSION}" in result.stderr
    assert "newer than this release" in result.stderr and "upgrade budget-recon" in result.stderr


def test_schema__an_older_store_is_read_as_it_is_by_the_commands_that_only_read(tmp_path):
    # they open the store read-only, so they cannot migrate it: they read it, and leave it as it was
    db = tmp_path / "recon.duckdb"
    con = open_store(db)
    _record_run(con, "old", dt.date(2024, 6, 30), exit_status=1)
    con.execute("insert into waivers values ('CODE_MISMATCH|N|记-1:1', '核实', '李会计', now())")
    con.execute("alter table run_indicators drop column over_ceiling")
    con.execute("update schema_meta set value = '6' where key = 'schema_version'")
    con.close()
    runs = CliRunner().invoke(main, ["runs", "--db", str(db)])
    assert runs.exit_code == 0, runs.output
    assert runs.output.splitlines()[1].startswith("old ")
    waivers = CliRunner().invoke(main, ["waivers", "--db", str(db)])
    assert waivers.exit_code == 0 and "CODE_MISMATCH|N|记-1:1" in waivers.output
    con = open_store(db, read_only=True)
    assert schema_version(con) == 6
    con.close()


class _LockFileNotWritable:
    """FileLock where `<db>.lock` cannot be made or opened to write (read-only media, a folder
    of someone else's): it raises as filelock does there, at once."""

    errno = None

    def __init__(self, path, **kwargs):
        self.path = path

    def acquire(self, timeout=None):
        raise OSError(self.errno, os.strerror(self.errno), self.path)

    def release(self):
        pass


def _store_with_a_run_and_a_waiver(db):
    con = open_store(db)
    _record_run(con, "night", dt.date(2024, 12, 31), exit_status=1)
    con.execute("insert into waivers values ('CODE_MISMATCH|N|记-1:1@202403', '核实', '李会计', now())")
    con.close()


@pytest.mark.parametrize("refused", ["EROFS", "EACCES"])
def test_store__runs_and_waivers_read_a_store_whose_lock_file_cannot_be_made(tmp_path, monkeypatch, refused):
    # a store on read-only media, or an auditor's copy in a folder of someone else's: before,
    # `recon runs` and `recon waivers` exited 2 ("cannot read or write <db>.lock")
    import errno
    import hashlib

    from pipeline import store

    db = tmp_path / "media" / "recon.duckdb"
    db.parent.mkdir()
    _store_with_a_run_and_a_waiver(db)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    files = sorted(p.name for p in db.parent.iterdir())
    monkeypatch.setattr(_LockFileNotWritable, "errno", getattr(errno, refused))
    monkeypatch.setattr(store, "FileLock", _LockFileNotWritable)
    runs = CliRunner().invoke(main, ["runs", "--db", str(db)])
    assert runs.exit_code == 0, runs.output
    assert runs.output.splitlines()[1].startswith("night ")
    waivers = CliRunner().invoke(main, ["waivers", "--db", str(db)])
    assert waivers.exit_code == 0, waivers.output
    assert "CODE_MISMATCH|N|记-1:1@202403" in waivers.output
    # prune removes report folders and check writes the store: they still need the lock
    for command in (["prune", "--keep", "1", "--outputs", str(tmp_path / "out")],
                    ["check", "--outputs", str(tmp_path / "out")]):
        refused_too = CliRunner().invoke(main, [*command, "--db", str(db)])
        assert refused_too.exit_code == 2 and "cannot read or write" in refused_too.stderr, refused_too.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in db.parent.iterdir()) == files  # no lock file, nor anything else


def test_lock__a_reader_that_cannot_write_the_lock_file_waits_for_the_writer_holding_it(tmp_path, monkeypatch):
    from pipeline import store

    db = tmp_path / "s.duckdb"
    _store_with_a_run_and_a_waiver(db)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), "30"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(_LockFileNotWritable, "errno", 30)  # EROFS
        monkeypatch.setattr(store, "FileLock", _LockFileNotWritable)
        busy = CliRunner().invoke(main, ["runs", "--db", str(db), "--wait", "1"])
        assert busy.exit_code == 2, busy.output
        assert "in use by another recon process" in busy.stderr
    finally:
        holder.kill()
        holder.wait()
    done = CliRunner().invoke(main, ["runs", "--db", str(db), "--wait", "1"])
    assert done.exit_code == 0, done.output


def test_lock__a_reader_that_can_neither_write_nor_read_the_lock_file_is_refused(tmp_path, monkeypatch):
    # someone else's lock file: nothing to wait on, so not read while its owner may be writing
    from pipeline import store

    db = tmp_path / "s.duckdb"
    _store_with_a_run_and_a_waiver(db)
    lock = f"{db}.lock"
    Path(lock).touch()
    real_open = os.open

    def no_read(path, flags, *args):
        if str(path) == lock:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(_LockFileNotWritable, "errno", 13)  # EACCES
    monkeypatch.setattr(store, "FileLock", _LockFileNotWritable)
    monkeypatch.setattr(store.os, "open", no_read)
    refused = CliRunner().invoke(main, ["runs", "--db", str(db)])
    assert refused.exit_code == 2, refused.output
    assert f"cannot read or write {lock}" in refused.stderr
