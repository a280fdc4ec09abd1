"""What every loader shares: content hashes, the file registry and per-file outcomes.

A file is identified by the sha256 of its bytes. A file whose hash is already in the store with
status `loaded` or `superseded` is skipped, so nothing is loaded twice whatever its name. A
rejected file leaves only its registry row (status `rejected`, with the reason) behind, so the
run can report it; everything else it would have written is rolled back.

Unchanged files are not read again. A nightly inputs folder keeps the exports of earlier nights,
and hashing each one again every night makes the run longer night after night (a 2M-line export
is 0.4 GB). So the registry keeps each file's modification time as it was before the file was
hashed (mtime_ns), and a file at the same path, of the same size and modification time as a
loaded one is skipped without being read, the way make and rsync judge a file unchanged. (The
same path: another unit's export of the same name and size elsewhere is always read.) A
file modified less than RACY_SECONDS before it was hashed may have been changing while it was
read: its time is not kept, and it is hashed again next time. RECON_REHASH=1 hashes every file
whatever its time.

A file is registered under its canonical path (canonical_path): absolute, with its folder's
symbolic links and `..` resolved, its own name as given. The nightly cron job and an auditor's
run name the same export differently (`inputs/ledgers/x.csv` from the project folder,
`/srv/budget-recon/inputs/ledgers/x.csv` from elsewhere, through a linked folder); both meet the
same registry row. The file's own name is kept even when it is a link (a `latest.csv` pointing
at each night's export is the same path every night, as the user named it).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import duckdb


class InputError(Exception):
    """A file that cannot be loaded. The message is bilingual and names the file (and row)."""

    def __init__(self, path: Path | str, reason_zh: str, reason_en: str, row: int | None = None):
        self.path = str(path)
        self.row = row
        self.reason_zh = reason_zh
        self.reason_en = reason_en
        where = f"{self.path}" + (f" 第{row}行 / row {row}" if row is not None else "")
        super().__init__(f"{where}: {reason_zh} / {reason_en}")


@dataclass(frozen=True)
class FileOutcome:
    path: str
    kind: str                # notice | ledger
    action: str              # loaded | skipped | rejected
    file_id: int | None = None
    sha256: str | None = None
    rows_loaded: int = 0
    rows_quarantined: int = 0
    message: str | None = None


# Hashing releases the interpreter only while a chunk is read or hashed. With another thread
# busy in Python (GX's import, which `recon run` starts at the first ledger's read, beside the
# next file's hash) every chunk waits for it again, so chunks are large: a 2M-line file took
# 1.42 s with 1 MB chunks, 0.52 s with 16 MB, 0.34-0.37 s alone. Beside iconv, which a ledger's
# hash runs with, the threads feeding iconv take it back at every sendfile call: the hash took
# 0.63-0.70 s there, still inside the 1.2-1.3 s the transcoding took.
HASH_CHUNK_BYTES = 16 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    buf = bytearray(HASH_CHUNK_BYTES)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


class EarlierLoad(NamedTuple):
    """The registry row of an earlier load of the same content: its id, and the path and name
    the user knows it by (skipped_as_loaded names it)."""
    file_id: int
    path: str
    name: str
    kind: str = ""


def earlier_load(con: duckdb.DuckDBPyConnection, sha256: str) -> EarlierLoad | None:
    """The earlier load of the same content, or None."""
    row = con.execute(
        "select file_id, path, name, kind from input_files where sha256 = ? and status in ('loaded', 'superseded') "
        "order by file_id limit 1",
        [sha256],
    ).fetchone()
    return EarlierLoad(*row) if row else None


def skipped_as_loaded(path: Path, kind: str, earlier: EarlierLoad, sha256: str) -> FileOutcome:
    """The outcome of a file whose content is loaded already (as `earlier`), named as the user
    knows it: the same file again, or a copy of the loaded one (by its name, and its path when
    the name alone does not tell them apart). The run record keeps this message. Content loaded
    as the other kind (a ledger given to `recon load notice`) is refused, not skipped: it was
    "already loaded, skipped", exit 0, while the same file not yet loaded was refused."""
    if earlier.kind and earlier.kind != kind:
        zh = {"notice": "通知", "ledger": "账簿"}
        return FileOutcome(str(path), kind, "rejected", earlier.file_id, sha256, message=(
            f"{path}: 该文件已作为{zh.get(earlier.kind, earlier.kind)}加载（{earlier.name}），不是"
            f"{zh.get(kind, kind)} / already loaded as a {earlier.kind} ({earlier.name}), not a {kind}"))
    if earlier.path == str(path):
        message = "同一文件已加载，未重复读入 / the same file is already loaded; not read again"
    else:
        name = earlier.name if earlier.name != Path(path).name else earlier.path
        message = (f"与已加载的 {name} 内容相同，未重复读入 / "
                   f"same content as {name}, loaded before; not read again")
    return FileOutcome(str(path), kind, "skipped", earlier.file_id, sha256, message=message)


RACY_SECONDS = 2


def canonical_path(path: Path | str) -> Path:
    """The path a file is registered and compared under (see the module docstring)."""
    path = Path(path)
    try:
        folder = path.parent.resolve()
    except (OSError, RuntimeError):  # a loop of links (RuntimeError before Python 3.13)
        folder = Path(os.path.abspath(path.parent))
    return folder / path.name


def canonicalise_registered_paths(con: duckdb.DuckDBPyConnection) -> None:
    """Give registry rows written before paths were canonical (the path as it was given, mostly
    relative to the folder the cron job runs in) their canonical path, where the old path, read
    from the current folder, still names a file. Without it, an upgraded store's nightly run
    would never again meet yesterday's row by path: every kept export hashed every night, and an
    overwritten export no longer known for the same path. Rows whose old path names nothing here
    (another folder's relative path, a file since removed) keep it."""
    for file_id, path in con.execute("select file_id, path from input_files").fetchall():
        if path and not Path(path).is_absolute():
            canonical = canonical_path(path)
            if canonical.is_file():
                con.execute("update input_files set path = ? where file_id = ?",
                            [str(canonical), file_id])


def file_stamp(path: Path) -> tuple[int, int | None]:
    """(size, mtime_ns) of a file, taken before it is hashed; mtime_ns is None when the file was
    modified less than RACY_SECONDS ago (it may still be being written)."""
    st = path.stat()
    recent = time.time_ns() - st.st_mtime_ns < RACY_SECONDS * 1_000_000_000
    return st.st_size, None if recent else st.st_mtime_ns


def unchanged_file(con: duckdb.DuckDBPyConnection, path: Path, kind: str,
                   stamp: tuple[int, int | None]) -> tuple[int, str] | None:
    """(file_id, sha256) of a loaded file at the same path, of the same size and modification
    time, or None (also when RECON_REHASH=1 asks for every file to be hashed)."""
    size, mtime_ns = stamp
    if mtime_ns is None or os.environ.get("RECON_REHASH", "") not in ("", "0"):
        return None
    return con.execute(
        "select file_id, sha256 from input_files where kind = ? and path = ? and size_bytes = ? "
        "and mtime_ns = ? and status in ('loaded', 'superseded') order by file_id limit 1",
        [kind, str(path), size, mtime_ns]).fetchone()


def record_stamp(con: duckdb.DuckDBPyConnection, file_id: int, path: Path,
                 stamp: tuple[int, int | None]) -> None:
    """Keep the stamp taken before hashing with a loaded file's registry row, when the row is
    this file's (same path and size) and has none yet."""
    size, mtime_ns = stamp
    if mtime_ns is not None:
        con.execute("update input_files set mtime_ns = ? where file_id = ? and path = ? "
                    "and size_bytes = ? and mtime_ns is null", [mtime_ns, file_id, str(path), size])


def loaded_by_name_and_size(con: duckdb.DuckDBPyConnection, name: str, size: int, kind: str) -> bool:
    """Is a file of this name and size loaded already? Probably this one again (the nightly run
    offers yesterday's files too, and this one kept no time); only the hash can tell."""
    return con.execute(
        "select count(*) from input_files where kind = ? and name = ? and size_bytes = ? "
        "and status in ('loaded', 'superseded')", [kind, name, size],
    ).fetchone()[0] > 0


def register_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    sha256: str,
    kind: str,
    status: str,
    *,
    fmt: str | None = None,
    encoding: str | None = None,
    preset: str | None = None,
    message: str | None = None,
    sheet: str | None = None,
) -> int:
    """Insert the registry row for a file and return its file_id (call inside a transaction).
    sheet: one of a workbook's ledger sheets, registered as a file of its own, under the path
    `<path>#<sheet>` and the name `<name> [<sheet>]`."""
    return con.execute(
        """
        insert into input_files (sha256, kind, path, name, size_bytes, loaded_at, status,
                                 encoding, format, preset, message)
        values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        returning file_id
        """,
        [sha256, kind, str(path) if sheet is None else f"{path}#{sheet}",
         Path(path).name if sheet is None else f"{Path(path).name} [{sheet}]", _size(path),
         dt.datetime.now(), status, encoding, fmt, preset, message],
    ).fetchone()[0]


def _size(path: Path) -> int:
    """The file's size; 0 for one that is gone (a link to a share not mounted), which is
    registered only to be rejected by name."""
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def reject_file(con: duckdb.DuckDBPyConnection, path: Path, sha256: str, kind: str,
                error: InputError) -> FileOutcome:
    """Record a rejected file (nothing else of it is stored) and return its outcome."""
    con.execute("begin transaction")
    try:
        file_id = register_file(con, path, sha256, kind, "rejected", message=str(error))
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return FileOutcome(str(path), kind, "rejected", file_id, sha256, message=str(error))
