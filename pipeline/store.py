"""The DuckDB store: schema, migrations, views and transactions.

One embedded DuckDB file holds everything a run needs (default `outputs/recon.duckdb`); nothing
else has to be running. Tables are defined in `sql/schema.sql` and versioned in `schema_meta`;
an older store is migrated by the numbered scripts in `sql/migrations/`, a newer one is refused
(a downgrade would lose data). Views (`sql/staging.sql`, `sql/facts.sql`) hold no data and are
re-created on every writable open, so changing them needs no migration.

A DuckDB file with tables of its own and no `schema_meta` of budget-recon's is another
program's: it is refused before anything is written to it (only an empty file becomes a store).
The commands that only read (`recon runs`, `waivers`, `prune`) open a store read-only, so they
cannot migrate it: they read an older store as it is (the columns they read, of runs,
run_inputs, findings and waivers, are the same from version 1 on; a migration that changes them
must make them refuse older stores; waiver_withdrawals, of version 9, is read as empty before
it), and refuse a newer one as the others do.
"""
from __future__ import annotations

import errno
import hashlib
import math
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator

import duckdb
from filelock import FileLock, Timeout

from .paths import REFERENCE_DIR, SQL_DIR
from .text import install_macros

SCHEMA_VERSION = 9
VIEW_FILES = ("staging.sql", "facts.sql")
# DuckDB's optimizers a store runs without (open_store says why); a load that disables more puts
# these back after it, not DuckDB's defaults
DISABLED_OPTIMIZERS = ("projection_pullup",)
# DuckDB settings for a store that must not exhaust a finance PC: bounded memory, spill to disk.
DEFAULT_MEMORY_LIMIT = os.environ.get("RECON_MEMORY_LIMIT", "1GB")
# A ledger load (reading the file's text, collecting its distinct values, typing every row) runs
# under this limit and spills to disk beyond it; by default the store's own. A lower limit costs
# time, mostly in writing the file's text in file order (10M lines: 18.2-19.5 s under 320MB,
# 13.0-15.7 s under 1GB). `recon load ledger` of 10M lines (bench/README.md): 43.4 s under 320MB,
# 27.2-39.0 s under 1GB, peak RSS 405 / 680-714 MiB; of 1M lines: 277 / 388 MiB.
LOAD_MEMORY_LIMIT = os.environ.get("RECON_LOAD_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT


class StoreError(Exception):
    """The store cannot be opened or is not one this version understands (exit status 2)."""


class NotAStore(StoreError):
    """A DuckDB file that is not a budget-recon store (exit status 2); it is left as it was."""


class StoreBusy(StoreError):
    """Another recon process holds the store and did not let go in time (exit status 2)."""


def wait_seconds(text: str) -> float | None:
    """A wait in seconds, 0 or more and finite (--wait, RECON_LOCK_TIMEOUT); None when it is not."""
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if 0 <= seconds < math.inf else None


def default_wait() -> float:
    """Seconds to wait for another run to release the store: RECON_LOCK_TIMEOUT, or 60. Read when
    a store is opened, so that a mistyped value is a usage error there, not a traceback at import."""
    text = os.environ.get("RECON_LOCK_TIMEOUT", "60")
    seconds = wait_seconds(text)
    if seconds is None:
        raise StoreError(f"RECON_LOCK_TIMEOUT 应为等待的秒数（如 600）/ RECON_LOCK_TIMEOUT must be a "
                         f"number of seconds (e.g. 600): {text!r}")
    return seconds


@contextmanager
def memory_limit(con: duckdb.DuckDBPyConnection, limit: str) -> Iterator[None]:
    """Run a block under another DuckDB memory limit; the store's limit is restored after."""
    con.execute(f"set memory_limit = '{_checked_limit(limit)}'")
    try:
        yield
    finally:
        con.execute(f"set memory_limit = '{_checked_limit(DEFAULT_MEMORY_LIMIT)}'")


def _spill_folder(con: duckdb.DuckDBPyConnection) -> str | None:
    """The store's spill folder (<store>.tmp, the running user's only, on the store's disk), or
    None (the system's temporary folder) when the store has none."""
    folder = con.execute("select current_setting('temp_directory')").fetchone()[0]
    return folder if folder and os.path.isdir(folder) and os.access(folder, os.W_OK) else None


@contextmanager
def working_folder(con: duckdb.DuckDBPyConnection, prefix: str) -> Iterator[Path]:
    """A folder `prefix*` in the store's spill folder for the block, deleted after it, also on
    error: for working files as large as the data (a load's transcoded copy and Parquet text,
    a run's snapshot). Folders of the same prefix already there are what a killed load or run
    left: only one process writes to a store (it holds the lock), so they are stale, and they
    go first (the folder is not /tmp: nothing else clears it)."""
    spill = _spill_folder(con)
    if spill:
        for stale in Path(spill).glob(f"{prefix}*"):
            shutil.rmtree(stale, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=spill))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# How a full disk is worded where no errno is kept: the C library's strerror (in DuckDB's
# messages: its IOException, and TransactionException on a commit the WAL could not take),
# Windows' and SQLite's words, or the errno's name
_DISK_FULL = re.compile(r"no space left on device|disk quota exceeded|disk (is )?full|not enough space on the disk"
                        r"|\bENOSPC\b|\bEDQUOT\b", re.IGNORECASE)
# DuckDB's errors about what it read quote it ("Original Line: …", a cell): their words are the
# input's, and a ledger's line that says "disk full" must still reject the file, not stop the run
_QUOTES_INPUT = (duckdb.InvalidInputException, duckdb.ConversionException)


def out_of_disk(exc: BaseException) -> bool:
    """Did this error come from a full disk (the store's, its spill folder's, the outputs')?

    Read from the error and the errors it was raised from or while handling (__cause__,
    __context__): a library wraps the OSError (xlsxwriter's FileCreateError), or keeps only its
    text (DuckDB: an IOException, a TransactionException when a commit cannot write the WAL)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno is not None:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                return True  # else its text is the errno's and a file name: nothing to read there
        elif not isinstance(exc, _QUOTES_INPUT) and _DISK_FULL.search(str(exc)):
            return True
        exc = exc.__cause__ if exc.__cause__ is not None else exc.__context__
    return False


def _checked_limit(limit: str) -> str:
    # a unit is needed: DuckDB refuses a bare number ("512"), which stopped the run as a bug
    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*[KMGT]i?B?\s*", limit, flags=re.IGNORECASE):
        raise StoreError(f"内存上限格式不对，须带单位（如 1GB、512MB）/ not a memory limit, which needs its "
                         f"unit (e.g. 1GB, 512MB): {limit!r} (RECON_MEMORY_LIMIT, RECON_LOAD_MEMORY_LIMIT)")
    return limit.strip()


@contextmanager
def session(db_path: str | Path, *, wait: float | None = None, read_only: bool = False,
            create: bool = True, writes_nothing: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """The store, held by this process alone for the block: one writer at a time. create=False
    (and read_only) refuse a store that does not exist yet rather than make an empty one.

    A second recon on the same store waits up to `wait` seconds for the first to finish, then
    gives up with StoreBusy. The lock is a file beside the store (`<db>.lock`), released by the
    operating system even when the holder is killed, so a crashed run never blocks the next one.

    writes_nothing (read_only, for a command that changes nothing anywhere: `recon runs`,
    `recon waivers`) may read a store whose lock file cannot be written: see _read_hold.
    """
    db_path = Path(db_path)
    wait = default_wait() if wait is None else wait
    if not read_only and create:
        db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    elif not db_path.exists():
        raise StoreError(f"数据库不存在 / store not found: {db_path} (run `recon run` first)")
    lock_path = Path(str(db_path) + ".lock")
    lock_existed = os.path.lexists(lock_path)
    lock = FileLock(str(lock_path), mode=0o600)
    unwritable = None
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise _busy(db_path, wait) from None
    except OSError as exc:
        if not (read_only and writes_nothing and exc.errno in _READ_ONLY_ERRNOS):
            raise
        unwritable = exc
    if unwritable is not None:
        with _read_hold(lock_path, db_path, wait, unwritable):
            con = open_store(db_path, read_only=True)
            try:
                yield con
            finally:
                con.close()
        return
    foreign = False
    try:
        try:
            con = open_store(db_path, read_only=read_only)
        except NotAStore:
            foreign = True
            raise
        try:
            yield con
        finally:
            con.close()
    finally:
        lock.release()
        if foreign and not lock_existed:  # nothing of ours is left beside another program's file
            with suppress(OSError):
                lock_path.unlink()


# The lock file cannot be made or opened to write: read-only media, or a folder (or lock file)
# this user may not write
_READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


def _busy(db_path: Path, wait: float) -> StoreBusy:
    return StoreBusy(
        f"数据库正被另一个 recon 进程使用，等待 {wait:g} 秒后放弃，请稍后重试 / "
        f"store {db_path} is in use by another recon process; gave up after {wait:g}s, try again later")


@contextmanager
def _read_hold(lock_path: Path, db_path: Path, wait: float, unwritable: OSError) -> Iterator[None]:
    """Hold the store's lock for a reader that cannot write the lock file (a store on read-only
    media, an auditor's copy in a folder of someone else's).

    A lock file that is there is opened to read and locked shared (flock needs no right to
    write): a recon that writes locks it exclusively (filelock), so each waits for the other as
    usual, and readers do not wait for one another. With no lock file, and none to be made, no
    recon can hold the store's lock either (a writer needs to make that file first, and the WAL
    and spill folder beside the store): the store is read without one. Even so DuckDB's own lock
    on the store's file keeps a writer and a reader from having it open at once. A lock file
    that is there but cannot be read either leaves the reader nothing to wait on: it is refused
    as before (`unwritable`, exit 2), rather than read while a writer may hold it."""
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except FileNotFoundError:
        yield
        return
    except OSError:
        raise unwritable from None
    try:
        import fcntl
    except ImportError:  # not POSIX: no shared lock to take, refused as before
        os.close(fd)
        raise unwritable from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _busy(db_path, wait) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # and with it the lock


def open_store(db_path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the store at db_path and bring it to the current schema."""
    db_path = Path(db_path)
    if read_only:
        if not db_path.exists():
            raise StoreError(f"数据库不存在 / store not found: {db_path} (run `recon run` first)")
    else:
        db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    old_umask = os.umask(0o077)  # financial data: readable by the running user only
    try:
        con = duckdb.connect(str(db_path), read_only=read_only)
    except duckdb.IOException as exc:
        raise StoreError(f"无法打开数据库 / cannot open store {db_path}: {exc}") from exc
    finally:
        os.umask(old_umask)
    try:
        _check_store(con, db_path, read_only)  # before anything is written to it
    except BaseException:
        con.close()
        raise
    # Work beyond the memory limit spills to <store>.tmp: ledger text, so the folder is the
    # running user's only (DuckDB would create it 0755 with files readable under the umask).
    spill = db_path.with_name(db_path.name + ".tmp")
    try:
        spill.mkdir(mode=0o700, exist_ok=True)
        os.chmod(spill, 0o700)
    except OSError:  # a read-only copy of a store, opened to read: DuckDB's default then
        pass
    else:
        con.execute("set temp_directory = '" + str(spill.absolute()).replace("'", "''") + "'")
    con.execute(f"set memory_limit = '{_checked_limit(DEFAULT_MEMORY_LIMIT)}'")
    con.execute("set preserve_insertion_order = false")
    # DuckDB 2.0's projection_pullup optimizer takes seconds over the facts' nested views (2.5 of
    # the 3.2 s the indicators' line figures spent planning a 360-line store, against 0.1 s
    # executing); without it the same plan is made in 0.7 s. It only moves projections, so the
    # results are the same.
    con.execute(f"set disabled_optimizers = '{','.join(DISABLED_OPTIMIZERS)}'")
    # DuckDB draws its own progress bar on stderr in some interpreters: never in a cron log
    con.execute("set enable_progress_bar = false")
    if not read_only:
        install_macros(con)  # before the migrations, which may key values as the loaders do
        _migrate(con, db_path)
        _load_reference(con)
        _create_views(con)
    return con


def _create_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create the views of VIEW_FILES, unless the store has them as these files say already.

    Binding facts.sql's views takes 0.4 s, at every open of a store for writing (each `recon run`,
    each `recon load`); the store keeps the digest of the text it was given (and of the DuckDB
    that bound it), and an unchanged text is not executed again. A new version of the files, of
    DuckDB, or a migration (_migrate forgets the digest) creates them again.
    """
    texts = [(SQL_DIR / name).read_text(encoding="utf-8") for name in VIEW_FILES if (SQL_DIR / name).exists()]
    digest = hashlib.sha256("\0".join([duckdb.__version__, *texts]).encode("utf-8")).hexdigest()
    stored = con.execute("select value from schema_meta where key = 'views_sha256'").fetchone()
    if stored is not None and stored[0] == digest:
        return
    with transaction(con):
        for text in texts:
            con.execute(text)
        con.execute("insert or replace into schema_meta values ('views_sha256', ?)", [digest])


def _load_reference(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)load reference/function_codes_<year>.csv into ref_function_codes (small, every open)."""
    rows = []
    for path in sorted(REFERENCE_DIR.glob("function_codes_*.csv")):
        m = re.search(r"(\d{4})", path.stem)
        if not m:
            continue
        lines = path.read_text(encoding="utf-8-sig").splitlines()[1:]
        for line in lines:
            if line.strip():
                code, name, level = (c.strip() for c in line.split(",")[:3])
                rows.append((int(m.group(1)), code, name, level))
    con.execute("create or replace table ref_function_codes "
                "(fiscal_year integer, code varchar, name varchar, level varchar)")
    if rows:
        con.executemany("insert into ref_function_codes values (?, ?, ?, ?)", rows)


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The store's schema version; 0 for a database without budget-recon's schema_meta (a new,
    empty file, or another program's, whose own table of that name may hold anything)."""
    columns = {name for (name,) in con.execute(
        "select column_name from information_schema.columns where table_catalog = current_database() "
        "and table_schema = 'main' and table_name = 'schema_meta'").fetchall()}
    if not {"key", "value"} <= columns:
        return 0
    row = con.execute("select cast(value as varchar) from schema_meta "
                      "where cast(key as varchar) = 'schema_version'").fetchone()
    try:
        return int(row[0]) if row else 0
    except (TypeError, ValueError):
        return 0


def _check_store(con: duckdb.DuckDBPyConnection, db_path: Path, read_only: bool) -> None:
    """Refuse what this release must not write to (or, read-only, cannot read): another program's
    database, or a store of a newer schema. An empty file is a new store, except to a reader."""
    version = schema_version(con)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"数据库版本 {version} 高于本程序支持的 {SCHEMA_VERSION}，请升级 budget-recon / "
            f"store {db_path} has schema {version}, newer than this release ({SCHEMA_VERSION}); upgrade budget-recon"
        )
    if version == 0 and (read_only or _has_tables(con)):
        raise NotAStore(
            f"不是 budget-recon 的数据库 / not a budget-recon store: {db_path} (其中没有 budget-recon 的 "
            f"schema_meta，未作任何改动，请检查 --db / it has no budget-recon schema_meta and was left as "
            f"it was; check --db)")


def _has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """Does the database hold tables or views (macros aside: a store's first open installs them
    before its schema, and a run killed between the two left a file that is still a new store)?"""
    return con.execute(
        "select (select count(*) from duckdb_tables() where database_name = current_database()"
        "        and not temporary)"
        "     + (select count(*) from duckdb_views() where database_name = current_database()"
        "        and not internal and not temporary)").fetchone()[0] > 0


def _migrate(con: duckdb.DuckDBPyConnection, db_path: Path) -> None:
    version = schema_version(con)  # not newer: _check_store refused that
    if version == SCHEMA_VERSION:
        return
    with transaction(con):
        if version == 0:
            con.execute((SQL_DIR / "schema.sql").read_text(encoding="utf-8"))
        else:
            for step in _migrations(version):
                con.execute(step.read_text(encoding="utf-8"))
        con.execute(
            "insert or replace into schema_meta values ('schema_version', ?)", [str(SCHEMA_VERSION)]
        )
        con.execute("delete from schema_meta where key = 'views_sha256'")  # views made again


def _migrations(from_version: int) -> list[Path]:
    """Scripts sql/migrations/NNN_*.sql that take a store from from_version to SCHEMA_VERSION."""
    steps = []
    for path in sorted((SQL_DIR / "migrations").glob("*.sql")):
        m = re.match(r"(\d+)_", path.name)
        if m and from_version < int(m.group(1)) <= SCHEMA_VERSION:
            steps.append(path)
    return steps


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: commit when the block ends, roll back when it raises."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    else:
        con.execute("commit")
