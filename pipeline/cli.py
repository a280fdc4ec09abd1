"""The `recon` command line: a thin layer over the library.

Parses options, calls pipeline functions, prints a short summary and maps the outcome to the
contract's exit status: 0 nothing to act on, 1 findings at or above --fail-on, 2 bad usage or an
input that could not be read, or a run stopped by memory or disk space (_short_of_resources).
Library errors arrive as exceptions with bilingual messages and leave here as one line on
stderr, never a traceback.
"""
from __future__ import annotations

import atexit
import datetime as dt
import errno
import logging
import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import NoReturn

import click
import duckdb

from .console import EXIT_INTERRUPTED, EXIT_TERMINATED, INTERRUPTED
from .loading import InputError
from .logs import printable  # text from inputs, shown with control characters escaped
from .store import DEFAULT_MEMORY_LIMIT, LOAD_MEMORY_LIMIT, StoreError, out_of_disk


class ReconError(click.ClickException):
    """A user-facing failure: message on stderr, exit status 2 (contract: bad usage / input)."""

    exit_code = 2


def _date(ctx, param, value):
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"日期格式应为 YYYY-MM-DD / expected YYYY-MM-DD, got {value!r}")


def _seconds(ctx, param, value):
    """--wait: seconds, 0 or more (0: do not wait); nan, a negative number or inf is refused, as
    RECON_LOCK_TIMEOUT is (nan was an internal error, -1 waited without end)."""
    from .store import wait_seconds

    if value is None:
        return None
    seconds = wait_seconds(value)
    if seconds is None:
        raise click.BadParameter(f"应为等待的秒数（0 或以上，如 600）/ expected a number of seconds, 0 or more "
                                 f"(e.g. 600), got {value!r}")
    return seconds


def _db_path(outputs: str, db: str | None) -> Path:
    return Path(db) if db else Path(outputs) / "recon.duckdb"


store_options = [
    click.option("--outputs", default="outputs", show_default=True, type=click.Path(file_okay=False),
                 help="输出目录 / folder for runs and the default store"),
    click.option("--db", default=None, type=click.Path(dir_okay=False),
                 help="DuckDB 数据库文件 / store file [default: <outputs>/recon.duckdb]"),
    click.option("--wait", default=None, callback=_seconds,
                 help="数据库被占用时最多等待秒数 / seconds to wait for another run to release the store "
                      "[default: 60, env RECON_LOCK_TIMEOUT]"),
]
scope_options = [
    click.option("--as-of", "as_of", callback=_date, help="截止日期 / reconcile the books as of YYYY-MM-DD [default: today]"),
    click.option("--fail-on", type=click.Choice(["error", "warning", "never"]), default="error",
                 show_default=True, help="达到该级别即以状态1退出 / exit 1 on findings at or above this severity"),
    click.option("--notice", "notice_no", default=None, help="只核对该文号 / only this notice number"),
    click.option("--purpose", default=None, help="只核对该用途（分配表中的用途名称，或只属于一条用途的部分名称，如 租赁补贴）/ only this "
                      "purpose: an allocation line's name, or a part of it no other line's name has"),
    click.option("--from", "date_from", callback=_date, help="期间起 / period start YYYY-MM-DD"),
    click.option("--to", "date_to", callback=_date, help="期间止 / period end YYYY-MM-DD"),
    click.option("--quiet", "-q", is_flag=True,
                 help="退出状态为0时不打印，否则只打印一行摘要（cron 只在有输出时发邮件）/ print nothing "
                      "when the exit status is 0, else only the summary line (cron mails what a job prints)"),
]


def _apply(options):
    def deco(f):
        for opt in reversed(options):
            f = opt(f)
        return f
    return deco


def _short_of_resources(exc: BaseException) -> str | None:
    """The bilingual message for a run stopped by memory or disk space, or None for anything else.

    Either can stop a large load or run on a small machine. Nothing is left half-done: a ledger
    load is one transaction (rolled back), a run's findings are stored in one transaction, and
    reports are written aside and moved into place whole (`recon report` writes them again)."""
    text = str(exc).strip()
    detail = printable(text.splitlines()[0] if text else type(exc).__name__)
    kept = ("命令中止；已载入的文件保留，未载完的文件已回滚 / the command stopped; files already "
            "loaded are kept, a load not finished was rolled back")
    limits = f"RECON_MEMORY_LIMIT={DEFAULT_MEMORY_LIMIT}"
    load_limit = f"RECON_LOAD_MEMORY_LIMIT={LOAD_MEMORY_LIMIT}"
    if isinstance(exc, duckdb.OutOfMemoryException):
        return (f"内存不足：DuckDB 在内存上限内无法完成（{limits}，载入时 {load_limit}），"
                f"请调高上限后重试 / out of memory: DuckDB could not finish within its memory limit "
                f"({limits}, loads {load_limit}); raise it and run again. {kept}. ({detail})")
    if out_of_disk(exc):
        return ("磁盘空间不足：数据库、其溢出目录（数据库旁的 .tmp 目录）或输出目录所在磁盘已满，"
                "请释放空间后重试 / no space left on the disk of the store, its spill folder (the "
                f".tmp folder beside it) or the outputs; free some space and run again. {kept}. "
                f"({detail})")
    return None


# Statuses beside the contract's 0 / 1 / 2 (README, "Exit status"): a shell's for a command
# stopped by SIGINT, SIGTERM or SIGPIPE (128 + the signal's number). The first two, and the
# message for them, are pipeline.console's: the installed command says the same while these
# modules are still being imported.
EXIT_BROKEN_PIPE = 141
# What the system refuses about a file or folder the user named (--outputs, --db, --inputs): a
# usage error, not a bug
_REFUSED_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST,
                   errno.ENAMETOOLONG}


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_signalled: list[int] = []  # the stop signals received; DuckDB may turn one into its own error


def _stop_on_signals() -> dict:
    """Ctrl-C and SIGTERM (a timeout's, `systemctl stop`) stop a command the same way: the main
    thread raises KeyboardInterrupt where it is. Returns the handlers to put back."""
    def stop(signum, frame):
        _signalled.append(signum)
        raise KeyboardInterrupt()

    old = {}
    for sig in _STOP_SIGNALS:
        try:
            old[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread (a test's runner): leave the signals as they are
            pass
    return old


def _interrupted_status() -> int:
    """Say that the command was stopped (stderr, and the log when there is one); its status."""
    status = EXIT_TERMINATED if signal.SIGTERM in _signalled else EXIT_INTERRUPTED
    log = logging.getLogger("recon")
    if log.handlers:
        log.warning("interrupted (exit %d)", status)
    click.echo(INTERRUPTED, err=True)
    return status


def _quiet_when_out_of_disk(previous):
    """sys.unraisablehook for the command: an error raised where Python cannot raise it (in an
    object's finaliser) is printed on stderr with a traceback. On a full disk one follows the
    command's own line about it: xlsxwriter leaves its zip file open when a write fails, and the
    file, collected, fails again to close. That one goes to the log (if it can), not to stderr;
    any other goes to `previous`."""
    def hook(unraisable) -> None:
        if unraisable.exc_value is not None and out_of_disk(unraisable.exc_value):
            log = logging.getLogger("recon")
            if log.handlers:
                log.warning("ignored on a full disk, in %r: %s", unraisable.object, unraisable.exc_value)
            return
        previous(unraisable)
    return hook


def _interrupted() -> NoReturn:
    sys.exit(_interrupted_status())


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit fails no more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _not_permitted(exc: BaseException) -> str | None:
    """The bilingual message for a file or folder the system refuses (no permission, a file where
    a folder is needed, a read-only disk), or None for anything else."""
    if not isinstance(exc, OSError) or exc.errno not in _REFUSED_ERRNOS:
        return None
    name = printable(str(exc.filename)) if exc.filename else ""
    reason = printable(exc.strerror or str(exc))
    return (f"无法读写 {name}：{reason}（请检查 --outputs、--db、--inputs 所指的路径及其权限）/ cannot "
            f"read or write {name}: {reason} (check the paths given to --outputs, --db and --inputs, and "
            f"their permissions)")


# click's own usage errors are in English; each gets its Chinese first, the English kept (it
# names the option, and click's "Did you mean …?"). Patterns of click 8.2 to 8.x.
_USAGE_ZH = (
    (re.compile(r"No such option:? '?([^'\s]+)'?"), "没有选项 {0}"),
    (re.compile(r"No such command:? '?([^'\s]+)'?"), "没有命令 {0}（可用命令见 recon --help）"),
    (re.compile(r"Missing argument:? '?([^'\s]+)'?"), "缺少参数 {0}"),
    (re.compile(r"Missing option:? '?([^'\s]+)'?"), "缺少选项 {0}"),
    (re.compile(r"Option '?([^'\s]+)'? requires an argument"), "选项 {0} 需要一个值"),
    (re.compile(r"Option '?([^'\s]+)'? does not take a value"), "选项 {0} 不带值"),
    (re.compile(r"Got unexpected extra arguments? \((.*)\)"), "多余的参数：{0}"),
    (re.compile(r"Invalid value for '?([^':]+)'?: (?:File|Path|Directory) '(.*)' does not exist"),
     "{0}：{1} 不存在"),
    (re.compile(r"Invalid value for '?([^':]+)'?: .* is not one of (.*)\.$"), "{0} 的值应为 {1} 之一"),
    (re.compile(r"Invalid value for '?([^':]+)'?"), "{0} 的值无效"),
)
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _usage_in_chinese(exc: click.UsageError) -> click.UsageError:
    """The same usage error, its message in Chinese then English; ours (BadParameter's) are
    already bilingual after click's English prefix, which gets its Chinese too."""
    english = exc.format_message()
    for pattern, zh in _USAGE_ZH:
        m = pattern.match(english)
        if m:
            chinese = zh.format(*m.groups())
            break
    else:
        chinese = "命令用法有误"
    if isinstance(exc, click.BadParameter) and _CJK.search(exc.message):
        text = f"{chinese}：{exc.message}"
    else:
        text = f"{chinese} / {english}"
    return click.UsageError(text, ctx=exc.ctx)


def _check_home() -> None:
    """RECON_HOME must hold the rules: elsewhere `recon rules` listed none, and a run found nothing."""
    from .paths import CHECKS_DIR, ROOT

    if not CHECKS_DIR.is_dir():
        raise ReconError(f"{printable(ROOT)} 下没有 sql/checks（规则目录），请检查 RECON_HOME / {printable(ROOT)} "
                         f"has no sql/checks (the rules): check RECON_HOME")


class ReconGroup(click.Group):
    """Click group that never shows a traceback: an unexpected error (a bug) is logged with its
    traceback to <outputs>/logs/recon.log when logging is set up, and exits 70 (EX_SOFTWARE).

    Every command runs under umask 077: whatever writes a file (the store, logs, CSV, workbook,
    HTML, the GX Data Docs) leaves it readable by the running user only (financial data)."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:  # recon's own options, before a command is chosen
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _usage_in_chinese(exc) from None

    def invoke(self, ctx):
        try:  # a command's name, arguments and options are read in here
            return self._invoke(ctx)
        except click.UsageError as exc:
            raise _usage_in_chinese(exc) from None

    def _invoke(self, ctx):
        _check_home()
        old_umask = os.umask(0o077)
        _signalled.clear()  # a process that runs several commands (a test's): this one's signals
        handlers = _stop_on_signals()
        log = logging.getLogger("recon")
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            _interrupted()
        except BrokenPipeError:
            # the reader of stdout has gone (`recon runs | head -1`): nothing more to say, and no
            # more to write; the status a shell gives a command stopped by SIGPIPE
            _drop_stdout()
            sys.exit(EXIT_BROKEN_PIPE)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if _signalled:  # DuckDB's "Query interrupted", raised for the signal
                _interrupted()
            short_of = _short_of_resources(exc) or _not_permitted(exc)
            if short_of is not None:  # the machine's limits, not a bug: say which and what to do
                if log.handlers:
                    log.error("%s", short_of)
                click.echo(short_of, err=True)
                sys.exit(ReconError.exit_code)
            log_file = next((h.baseFilename for h in log.handlers if hasattr(h, "baseFilename")), None)
            if log_file:  # only to the log file: without one, logging would print the traceback
                log.exception("internal error")
            see = f"; see {printable(log_file)}" if log_file else ""
            click.echo(f"内部错误 / internal error: {type(exc).__name__}: {printable(exc)} "
                       f"(请报告此问题 / please report this bug{see})", err=True)
            sys.exit(70)
        finally:
            os.umask(old_umask)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)


@click.group(cls=ReconGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="budget-recon")
def main():
    """budget-recon：预算指标与会计账簿对账 / reconcile budget ledgers against allocation notices.

    \b
    Example:
      recon run                      # reconcile the shipped demo inputs
      recon run --as-of 2024-06-30   # the books as they stood on 30 June
    """


@main.command()
@click.option("--inputs", default="inputs", show_default=True, type=click.Path(file_okay=False),
              help="输入目录（notices/、ledgers/）/ folder with notices/ and ledgers/")
@_apply(store_options)
@_apply(scope_options)
def run(inputs, outputs, db, wait, as_of, fail_on, notice_no, purpose, date_from, date_to, quiet):
    """加载新文件、对账并生成报告 / load new inputs, reconcile, write reports.

    \b
    Example:
      recon run --inputs inputs --outputs outputs --as-of 2024-12-31 --fail-on warning
      recon run --notice 克区财综〔2024〕2号 --from 2024-01-01 --to 2024-06-30 --quiet
    """
    from .logs import progress_reporter, setup_logging
    from .run import execute_run

    inputs_dir = Path(inputs)
    if not inputs_dir.is_dir():
        raise ReconError(f"输入目录不存在 / inputs folder not found: {inputs_dir}")
    if not (inputs_dir / "notices").is_dir() and not (inputs_dir / "ledgers").is_dir():
        # a folder of exports given as --inputs (inputs/ledgers): it ran as an empty one, and
        # INPUT_MISSING blamed inputs/notices/ and inputs/ledgers/, folders the user never named
        shown = printable(str(inputs_dir))
        raise ReconError(f"输入目录 {shown} 下没有 notices/ 和 ledgers/ 子目录：通知应放在 {shown}/notices/，"
                         f"账簿导出应放在 {shown}/ledgers/（--inputs 应指向二者的上一级目录）/ the inputs folder "
                         f"{shown} holds neither notices/ nor ledgers/: notices go in {shown}/notices/ and ledger "
                         f"exports in {shown}/ledgers/ (--inputs names the folder above them)")
    scope = _scope(as_of, notice_no, purpose, date_from, date_to)
    setup_logging(Path(outputs))
    with _errors(), progress_reporter(enabled=not quiet) as progress:
        result = execute_run(inputs_dir, Path(outputs), _db_path(outputs, db), scope, fail_on,
                             wait=wait, progress=progress)
    _print_result(result, quiet)
    sys.exit(result.exit_status)


def _scope(as_of, notice_no, purpose, date_from, date_to):
    from .run import Scope
    from .text import doc_no

    if notice_no is not None and doc_no(notice_no) is None:
        raise click.BadParameter(f"不是文号 / not a document number: {notice_no!r}", param_hint="--notice")
    if date_from and date_to and date_from > date_to:
        raise click.BadParameter("--from 晚于 --to / --from is after --to", param_hint="--from")
    return Scope(as_of=as_of or dt.date.today(), notice_no=doc_no(notice_no) if notice_no else None,
                 purpose=purpose, date_from=date_from, date_to=date_to)


class _errors:
    """Library errors become one bilingual line on stderr and the contract's exit status."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        from .store import StoreBusy

        if exc_type is None:
            return False
        if isinstance(exc, StoreBusy):
            click.echo(f"错误 / error: {exc}", err=True)
            sys.exit(2)  # the contract's statuses are 0, 1 and 2: the store could not be opened
        if isinstance(exc, (StoreError, InputError)):
            raise ReconError(str(exc)) from None
        return False


def _print_result(result, quiet: bool = False) -> None:
    """Rejected files and the first quarantined rows (RunResult carries a few, run.QUARANTINED_SHOWN)
    on stderr, for cron's mail, before pointing at exceptions.csv for the rest; then one line.

    --quiet leaves out the line on a clean run (exit 0) only: cron mails what a job prints, not
    its exit status, so a run with findings to act on (1) or a rejected file (2) that printed
    nothing would go unheard of. Notes on stdout (subfolders not read) are left out."""
    for o in result.outcomes:
        if o.action == "rejected":
            click.echo(f"拒收 / rejected: {printable(o.message)}", err=True)
    for f in result.quarantined:
        text = f.message if len(f.message) <= 400 else f.message[:400] + "…"
        click.echo(f"隔离 / quarantined: {printable(text)}", err=True)
    more = result.quarantined_total - len(result.quarantined)
    if more > 0:
        click.echo(f"隔离 / quarantined: 另有 {more} 处，见 exceptions.csv / "
                   f"{more} more, see exceptions.csv", err=True)
    if quiet and result.exit_status == 0:
        return
    if not quiet:
        for folder, files in result.unread_folders:  # by design (old exports are kept in one): stdout
            click.echo(f"未读取子文件夹 / subfolder not read: {printable(str(folder))} "
                       f"（{files} 个文件 / {files} file{'' if files == 1 else 's'}）")
    sev = result.by_severity
    waived = f"（其中已豁免 {result.waived} / {result.waived} waived）" if result.waived else ""
    click.echo(
        f"run {result.run_id}: 错误 {sev['error']} errors, 警告 {sev['warning']} warnings, "
        f"提示 {sev['info']} info{waived} -> {result.run_dir} (exit {result.exit_status})"
    )


@main.group()
def load():
    """只加载文件，不对账 / load files into the store without reconciling."""


@load.command("notice")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@_apply(store_options)
def load_notice(paths, outputs, db, wait):
    """解析并保存分配下达通知 / parse and store allocation notices (.txt or .docx).

    \b
    Example:
      recon load notice inputs/notices/000_a45419bc3fccfd31.txt
    """
    from .logs import setup_logging
    from .notices import load_notices, notice_findings

    with _store(outputs, db, wait) as con:
        if db is None:  # an internal error's traceback goes to <outputs>/logs/recon.log (with
            setup_logging(Path(outputs))  # --db alone, no outputs folder is made for it)
        outcomes = load_notices(con, [Path(p) for p in paths])
        findings = notice_findings(con, [o.file_id for o in outcomes if o.action == "loaded"])
    for f in findings:  # reported, not an exit status: `recon check` / `recon run` act on them
        click.echo(f"{f.severity} {f.rule_id} {f.notice_no}: {printable(f.message)}")
    _exit_for_outcomes(outcomes)


@load.command("ledger")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--preset", type=click.Choice(["standard", "cn-grp"]), default=None,
              help="列名预设（默认按表头识别）/ column preset [default: detected from the header]")
@click.option("--encoding", default=None, help="CSV 编码（默认自动识别）/ CSV encoding [default: detected]")
@_apply(store_options)
def load_ledger(paths, preset, encoding, outputs, db, wait):
    """加载账簿导出文件 / load ledger exports (.csv / .txt, .xlsx, .xls, .html, .xml, .parquet).

    \b
    Example:
      recon load ledger inputs/ledgers/*.csv --preset cn-grp
    """
    from .ledgers import load_ledgers
    from .logs import setup_logging

    with _store(outputs, db, wait) as con:
        if db is None:  # an internal error's traceback goes to <outputs>/logs/recon.log (with
            setup_logging(Path(outputs))  # --db alone, no outputs folder is made for it)
        before = con.execute("select coalesce(max(file_id), 0) from input_files").fetchone()[0]
        outcomes = load_ledgers(con, [Path(p) for p in paths], preset=preset, encoding=encoding)
        quarantined = _quarantined(con, before)
    _exit_for_outcomes(outcomes)
    for line in quarantined:
        click.echo(line, err=True)


@main.command()
@_apply(store_options)
@_apply(scope_options)
def check(outputs, db, wait, as_of, fail_on, notice_no, purpose, date_from, date_to, quiet):
    """对已加载的数据对账并生成报告 / reconcile what is loaded and write reports.

    \b
    Example:
      recon check --as-of 2024-06-30
      recon check --notice 克区财综〔2024〕2号 --purpose 2024年租赁补贴（中央直达）
    """
    from .logs import setup_logging
    from .run import reconcile

    scope = _scope(as_of, notice_no, purpose, date_from, date_to)
    with _store(outputs, db, wait, create=False) as con:
        setup_logging(Path(outputs))  # once the store is found: a mistyped --outputs stays empty
        result = reconcile(con, Path(outputs), scope, fail_on)
    _print_result(result, quiet)
    sys.exit(result.exit_status)


@main.command()
@click.argument("run_id", required=False)
@_apply(store_options)
def report(run_id, outputs, db, wait):
    """重新生成某次运行的报告（默认最近一次）/ rewrite the reports of a run (default: the latest).

    \b
    Example:
      recon report 20241231-020000-ab12
    """
    from .reports import write_reports

    with _store(outputs, db, wait, create=False) as con:
        if run_id is None:
            row = con.execute("select run_id from runs where finished_at is not null "
                              "order by started_at desc limit 1").fetchone()
            if row is None:
                raise ReconError("还没有任何运行记录 / no finished run in the store yet: run `recon run` first")
            run_id = row[0]
        elif con.execute("select count(*) from runs where run_id = ?", [run_id]).fetchone()[0] == 0:
            raise ReconError(f"找不到运行 / no run {run_id!r} in the store (see `recon runs`)")
        run_dir = write_reports(con, run_id, Path(outputs))
    click.echo(f"reports of run {run_id} -> {run_dir}")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "markdown"]), default="table",
              show_default=True)
def rules(fmt):
    """规则目录：编号、级别、依据条款、说明 / the rule catalogue: id, severity, clause, description.

    \b
    Example:
      recon rules --format csv > rules.csv
    """
    from .rules import all_rules, markdown_table

    if fmt == "markdown":
        click.echo(markdown_table(), nl=False)
        return
    if fmt == "csv":
        import csv

        w = csv.writer(sys.stdout)
        w.writerow(["rule_id", "severity", "cites", "zh", "en", "version"])
        for r in all_rules():
            w.writerow([r.rule_id, r.severity, r.cites, r.zh, r.en, r.version])
        return
    for r in all_rules():
        click.echo(f"{r.rule_id:<24} {r.severity:<8} {r.cites:<16} {r.zh} / {r.en}")


@main.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1),
              help="显示最近几次 / how many runs to show")
@_apply(store_options)
def runs(limit, outputs, db, wait):
    """运行历史 / run history: id, time, as-of, inputs, findings by severity, exit status.

    \b
    Example:
      recon runs --limit 5
    """
    with _store(outputs, db, wait, read_only=True, writes_nothing=True) as con:
        rows = con.execute(
            """
            select r.run_id, r.started_at, r.as_of, r.exit_status,
                   (select count(*) from run_inputs i where i.run_id = r.run_id and i.action = 'loaded'),
                   count(*) filter (where f.severity = 'error' and f.change <> 'resolved'),
                   count(*) filter (where f.severity = 'warning' and f.change <> 'resolved'),
                   count(*) filter (where f.severity = 'info' and f.change <> 'resolved'),
                   count(*) filter (where f.change = 'new'),
                   count(*) filter (where f.change = 'resolved'),
                   r.scope
            from runs as r left join findings as f on f.run_id = r.run_id
            group by all order by r.started_at desc limit ?
            """, [limit]).fetchall()
    click.echo("run_id                  started              as_of       loaded  error  warning  info"
               "  new  resolved  exit  scope")
    for r in rows:
        started = r[1].strftime("%Y-%m-%d %H:%M:%S")
        status = "-" if r[3] is None else str(r[3])
        scope = "" if r[10] in (None, "{}") else r[10]
        click.echo(f"{r[0]:<23} {started}  {r[2]}  {r[4]:>6}  {r[5]:>5}  {r[6]:>7}  {r[7]:>4}"
                   f"  {r[8]:>3}  {r[9]:>8}  {status:>4}  {scope}")


@main.command()
@click.argument("finding_key")
@click.option("--reason", required=True, help="豁免理由 / why the finding is accepted")
@click.option("--by", "waived_by", required=True, help="豁免人 / who accepts it")
@_apply(store_options)
def waive(finding_key, reason, waived_by, outputs, db, wait):
    """豁免一条异常（保留记录，不再计入退出状态）/ accept a finding: it stays in reports, marked,
    and stops counting toward the exit status. Nothing is deleted.

    The key is the finding_key column of exceptions.csv: rule | notice | voucher:line@yyyymm
    (the month it was posted: vouchers are numbered afresh each month), or rule | notice |
    purpose. A key with a waiver in force is left as it is (exit 0); `recon unwaive` withdraws
    a waiver.

    \b
    Example:
      recon waive "DUPLICATE_ENTRY|克区财综〔2024〕2号|记-08-0003:1@202408" --reason "经核实为两笔独立发放" --by 李会计
    """
    from .waivers import waive as waive_key

    if not reason.strip() or not waived_by.strip():
        raise click.BadParameter("理由和豁免人不能为空 / --reason and --by must not be blank")
    with _store(outputs, db, wait, create=False) as con:
        known = con.execute("select count(*) from findings where finding_key = ?", [finding_key]).fetchone()[0]
        if not known:
            raise ReconError(f"找不到该异常编号 / no finding with key {finding_key!r} "
                             "(keys are in exceptions.csv, column finding_key)" + _keys_meant(con, finding_key))
        waiver, made = waive_key(con, finding_key, reason.strip(), waived_by.strip())
    if made:
        click.echo(f"已豁免 / waived: {printable(finding_key)}")
        return
    # already done, as `recon load` says of a file loaded before: nothing changed, exit 0
    click.echo(f"已有生效的豁免，未作改动 / already waived, nothing changed: {printable(finding_key)}\n"
               f"  {_waived_by(waiver)}\n"
               "  如需更改，请先用 recon unwaive 撤销 / to change it, withdraw it first with `recon unwaive`")


@main.command()
@click.argument("finding_key")
@click.option("--reason", required=True, help="撤销理由 / why the waiver no longer holds")
@click.option("--by", "withdrawn_by", required=True, help="撤销人 / who withdraws it")
@_apply(store_options)
def unwaive(finding_key, reason, withdrawn_by, outputs, db, wait):
    """撤销一条豁免（保留豁免及撤销记录，重新计入退出状态）/ withdraw a waiver: from the next run on
    the finding counts toward the exit status again and the reports show it unwaived. Nothing is
    deleted: the waiver and its withdrawal (who, when, why) are kept, `recon waivers --all` lists
    them, and the key can be waived again.

    \b
    Example:
      recon unwaive "DUPLICATE_ENTRY|克区财综〔2024〕2号|记-08-0003:1@202408" --reason "复核发现为重复发放" --by 王审计
    """
    from .waivers import history, withdraw

    if not reason.strip() or not withdrawn_by.strip():
        raise click.BadParameter("理由和撤销人不能为空 / --reason and --by must not be blank")
    with _store(outputs, db, wait, create=False) as con:
        withdrawn = withdraw(con, finding_key, reason.strip(), withdrawn_by.strip())
        if withdrawn is None:
            past = history(con, finding_key)
            zh, en = "", ""
            if past:  # all withdrawn: say when and by whom the last was
                at, by = f"{past[-1].withdrawn_at:%Y-%m-%d %H:%M}", printable(past[-1].withdrawn_by)
                zh = f"（最近一次豁免已于 {at} 由 {by} 撤销）"
                en = f"its last waiver was withdrawn at {at} by {by}; "
            raise ReconError(f"该编号没有生效的豁免{zh} / no waiver in force for key {finding_key!r} "
                             f"({en}see `recon waivers --all`)")
    click.echo(f"已撤销豁免 / waiver withdrawn: {printable(finding_key)}\n  {_waived_by(withdrawn)}")


def _waived_by(w) -> str:
    """Who waived it, when and why, on one line."""
    return (f"豁免人 / by: {printable(w.waived_by)}；时间 / at: {w.waived_at:%Y-%m-%d %H:%M}；"
            f"理由 / reason: {printable(w.reason)}")


KEYS_SUGGESTED = 10  # of the keys a key without its @yyyymm may mean, the first shown


def _keys_meant(con, given: str) -> str:
    """The findings' keys that `given` names but for the @yyyymm its voucher:line lacks (a key
    written as keys were before the period was in them, or copied short), as lines to add to the
    message; "" when there is none."""
    parts = given.split("|")
    if len(parts) < 3 or "@" in parts[2] or ":" not in parts[2]:
        return ""
    head, tail = "|".join(parts[:3]), "|".join(parts[3:])
    # the voucher's month, then the date and amount by which two ledgers' lines of one key differ
    meant = re.compile(re.escape(head) + r"@\d{6}(~[^|]*)?" + (re.escape("|" + tail) if tail else ""))
    keys = [k for (k,) in con.execute("select distinct finding_key from findings "
                                      "where starts_with(finding_key, ?) order by 1", [head + "@"]).fetchall()
            if meant.fullmatch(k)]
    if not keys:
        return ""
    lines = [f"\n  {printable(k)}" for k in keys[:KEYS_SUGGESTED]]
    if len(keys) > KEYS_SUGGESTED:
        more = len(keys) - KEYS_SUGGESTED
        lines.append(f"\n  …另有 {more} 个 / {more} more")
    return "\n是否指以下编号（带凭证月份 @yyyymm）/ did you mean (with the voucher's month, @yyyymm):" + "".join(lines)


@main.command()
@click.option("--all", "show_all", is_flag=True,
              help="也列出已撤销的豁免及其撤销人、时间、理由 / also the withdrawn waivers, with who withdrew "
                   "them, when and why")
@_apply(store_options)
def waivers(show_all, outputs, db, wait):
    """生效的豁免 / list the waivers in force: finding key, who, when, why.

    \b
    Example:
      recon waivers
      recon waivers --all    # with those withdrawn (recon unwaive)
    """
    from .waivers import history

    with _store(outputs, db, wait, read_only=True, writes_nothing=True) as con:
        rows = history(con)
    shown = rows if show_all else [w for w in rows if w.status == "in_force"]
    if not shown:
        if rows:
            click.echo("没有生效的豁免（已撤销的见 --all）/ no waivers in force (withdrawn ones: --all)")
        else:
            click.echo("没有豁免记录 / no waivers")
    for w in shown:
        click.echo(f"{w.waived_at:%Y-%m-%d %H:%M}  {printable(w.waived_by)}  {printable(w.finding_key)}  "
                   f"{printable(w.reason)}")
        if w.status == "withdrawn":
            click.echo(f"  已撤销 / withdrawn {w.withdrawn_at:%Y-%m-%d %H:%M}  {printable(w.withdrawn_by)}  "
                       f"{printable(w.withdrawal_reason)}")
        elif w.status == "repeat":  # the old `recon waive` added a row each time
            click.echo("  重复豁免，以该编号最早的豁免为准 / a repeat: the key's earliest waiver is the one in force")


@main.command()
@click.option("--keep", type=click.IntRange(min=1), required=True,
              help="保留最近几次运行的报告 / keep the report folders of this many newest runs")
@click.option("--dry-run", is_flag=True, help="只列出，不删除 / list what would go, remove nothing")
@_apply(store_options)
def prune(keep, dry_run, outputs, db, wait):
    """删除较早运行的报告文件夹，运行记录仍在数据库中 / remove the report folders of older runs.

    The store keeps every run: `recon runs`, new / persisting / resolved and waivers are
    unchanged, and `recon report RUN_ID` writes a removed run's reports again (all but its GX
    Data Docs). The folder `latest` points to is never removed.

    \b
    Example (after the nightly run, keeping two months):
      recon prune --keep 60
    """
    from .reports import prune_reports

    # read-only: it reads the run history, and a mistyped --outputs creates no store; the store's
    # lock is taken all the same, so no run writes reports meanwhile
    with _store(outputs, db, wait, read_only=True) as con:
        outcomes = prune_reports(con, Path(outputs), keep, dry_run)
    pruned = [p for p in outcomes if p.error is None]
    verb_zh, verb_en = ("将删除", "would remove") if dry_run else ("已删除", "removed")
    for p in pruned:
        click.echo(f"{verb_zh} / {verb_en}: {printable(str(p.folder))} ({_mib(p.size_bytes)})")
    total = _mib(sum(p.size_bytes for p in pruned))
    click.echo(f"{verb_zh} {len(pruned)} 个报告文件夹（{total}），运行记录保留在数据库中 / "
               f"{verb_en} {len(pruned)} report folder{'' if len(pruned) == 1 else 's'} ({total}); "
               f"the store keeps their runs")
    failed = [p for p in outcomes if p.error is not None]
    for p in failed:
        click.echo(f"无法删除 / cannot remove {printable(str(p.folder))}: {printable(p.error)}", err=True)
    if failed:
        sys.exit(2)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


class _store:
    """Hold the store for a command (one writer at a time); a busy store exits 2, other store
    errors exit 2, each with a clear message."""

    def __init__(self, outputs, db, wait=None, read_only=False, create=True, writes_nothing=False):
        from .store import session

        kwargs = {"read_only": read_only, "create": create, "writes_nothing": writes_nothing}
        if wait is not None:
            kwargs["wait"] = wait
        self._session = session(_db_path(outputs, db), **kwargs)
        self._errors = _errors()

    def __enter__(self):
        try:
            return self._session.__enter__()
        except BaseException as exc:
            self._errors.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def __exit__(self, *exc):
        self._session.__exit__(*exc)
        return self._errors.__exit__(*exc)


def _quarantined(con, before: int) -> list[str]:
    """The first quarantined cells of the files this command loaded (registered after file_id
    `before`: a workbook's sheets too), as INPUT_ROW_INVALID words them in `recon run` (the first
    run.QUARANTINED_SHOWN), then how many more."""
    from .rules import rule
    from .run import QUARANTINED_SHOWN

    rows = con.execute(
        f"""
        select r.message, count(*) over () as total
        from ({rule("INPUT_ROW_INVALID").sql}) as r
        where r.source_file in (select name from input_files where file_id > ?)
        order by r.source_file, r.source_row, r.key_detail
        limit ?
        """, [before, QUARANTINED_SHOWN]).fetchall()
    lines = [f"隔离 / quarantined: {printable(message)}" for message, _ in rows]
    more = rows[0][-1] - len(rows) if rows else 0
    if more > 0:
        lines.append(f"隔离 / quarantined: 另有 {more} 处，见 `recon run` 的 exceptions.csv / {more} more, "
                     f"see exceptions.csv of `recon run`")
    return lines


def _exit_for_outcomes(outcomes) -> None:
    for o in outcomes:
        if o.action == "rejected":
            click.echo(f"拒收 / rejected: {printable(o.message)}", err=True)
        elif o.action == "skipped":
            click.echo(f"已加载过，跳过 / already loaded, skipped: {printable(o.path)}"
                       + (f" ({printable(o.message)})" if o.message else ""))
        else:
            # a year-to-date note: this file supersedes an earlier export, or is itself superseded
            click.echo(f"已加载 / loaded: {printable(o.path)} ({o.rows_loaded} rows, {o.rows_quarantined} quarantined)"
                       + (f": {printable(o.message)}" if o.message else ""))
    if any(o.action == "rejected" for o in outcomes):
        sys.exit(2)


def entry() -> None:
    """The `recon` command: main(), then leave without tearing the interpreter down.

    Once a command has finished, its store is closed and its files are written; what is left
    is Python freeing every module it imported, one object at a time. After Great Expectations
    has been imported that takes 0.6-0.8 s (`import great_expectations` then a normal exit: 3.91 s
    against 2.55 s leaving this way), paid by every `recon run` and `recon check`. So the exit
    handlers run as usual (logging's flush among them), the output streams are flushed, threads
    that are not daemons are waited for, and the process ends with os._exit.
    """
    _stop_on_signals()  # from the start: a signal while click reads the arguments is one too
    sys.unraisablehook = _quiet_when_out_of_disk(sys.unraisablehook)
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # what sys.exit("message") does
        print(code, file=sys.stderr)
        code = 1
    if _signalled and code not in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        # after the command's own handling: while click read the arguments ("Aborted!", 1), or
        # as the command returned (a signal held back until a long DuckDB call ended)
        code = _interrupted_status()
    _exit_now(code)


def _exit_now(code: int) -> NoReturn:
    for sig in _STOP_SIGNALS:  # leaving already: a late signal is noted, not raised mid-exit
        try:
            signal.signal(sig, lambda signum, frame: _signalled.append(signum))
        except ValueError:
            pass
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's own exit step
    if run_exit_handlers is not None:
        run_exit_handlers()
    else:
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`recon runs | head`): nothing more to say
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
