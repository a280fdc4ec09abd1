"""The `recon` command line: a thin layer over the library.

Parses options, calls pipeline functions, prints a short summary and maps the outcome to the
contract's exit status: 0 nothing to act on, 1 findings at or above --fail-on, 2 bad usage or an
input that could not be read. Library errors arrive as exceptions with bilingual messages and
leave here as one line on stderr, never a traceback.
"""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from .loading import InputError
from .store import StoreError


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


def _db_path(outputs: str, db: str | None) -> Path:
    return Path(db) if db else Path(outputs) / "recon.duckdb"


store_options = [
    click.option("--outputs", default="outputs", show_default=True, type=click.Path(file_okay=False),
                 help="输出目录 / folder for runs and the default store"),
    click.option("--db", default=None, type=click.Path(dir_okay=False),
                 help="DuckDB 数据库文件 / store file [default: <outputs>/recon.duckdb]"),
]
scope_options = [
    click.option("--as-of", "as_of", callback=_date, help="截止日期 / reconcile the books as of YYYY-MM-DD [default: today]"),
    click.option("--fail-on", type=click.Choice(["error", "warning", "never"]), default="error",
                 show_default=True, help="达到该级别即以状态1退出 / exit 1 on findings at or above this severity"),
]


def _apply(options):
    def deco(f):
        for opt in reversed(options):
            f = opt(f)
        return f
    return deco


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
def run(inputs, outputs, db, as_of, fail_on):
    """加载新文件、对账并生成报告 / load new inputs, reconcile, write reports.

    \b
    Example:
      recon run --inputs inputs --outputs outputs --as-of 2024-12-31 --fail-on warning
    """
    from .run import Scope, execute_run

    inputs_dir = Path(inputs)
    if not inputs_dir.is_dir():
        raise ReconError(f"输入目录不存在 / inputs folder not found: {inputs_dir}")
    scope = Scope(as_of=as_of or dt.date.today())
    try:
        result = execute_run(inputs_dir, Path(outputs), _db_path(outputs, db), scope, fail_on)
    except (StoreError, InputError) as exc:
        raise ReconError(str(exc))
    _print_result(result)
    sys.exit(result.exit_status)


def _print_result(result) -> None:
    for o in result.outcomes:
        if o.action == "rejected":
            click.echo(f"拒收 / rejected: {o.message}", err=True)
    sev = {s: sum(1 for f in result.findings if f.severity == s) for s in ("error", "warning", "info")}
    click.echo(
        f"run {result.run_id}: 错误 {sev['error']} errors, 警告 {sev['warning']} warnings, "
        f"提示 {sev['info']} info -> {result.run_dir} (exit {result.exit_status})"
    )


@main.group()
def load():
    """只加载文件，不对账 / load files into the store without reconciling."""


@load.command("notice")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@_apply(store_options)
def load_notice(paths, outputs, db):
    """解析并保存分配下达通知 / parse and store allocation notices (.txt or .docx).

    \b
    Example:
      recon load notice inputs/notices/000_a45419bc3fccfd31.txt
    """
    from .notices import load_notices

    with _store(outputs, db) as con:
        outcomes = load_notices(con, [Path(p) for p in paths])
    _exit_for_outcomes(outcomes)


@load.command("ledger")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--preset", type=click.Choice(["standard", "cn-grp"]), default=None,
              help="列名预设（默认按表头识别）/ column preset [default: detected from the header]")
@click.option("--encoding", default=None, help="CSV 编码（默认自动识别）/ CSV encoding [default: detected]")
@_apply(store_options)
def load_ledger(paths, preset, encoding, outputs, db):
    """加载账簿导出文件 / load ledger exports (.csv, .xlsx, .parquet).

    \b
    Example:
      recon load ledger inputs/ledgers/*.csv --preset cn-grp
    """
    from .ledgers import load_ledgers

    with _store(outputs, db) as con:
        outcomes = load_ledgers(con, [Path(p) for p in paths], preset=preset, encoding=encoding)
    _exit_for_outcomes(outcomes)


@main.command()
@_apply(store_options)
@_apply(scope_options)
def check(outputs, db, as_of, fail_on):
    """对已加载的数据对账并生成报告 / reconcile what is loaded and write reports.

    \b
    Example:
      recon check --as-of 2024-06-30
    """
    from .run import Scope, reconcile

    with _store(outputs, db) as con:
        result = reconcile(con, Path(outputs), Scope(as_of=as_of or dt.date.today()), fail_on)
    _print_result(result)
    sys.exit(result.exit_status)


@main.command()
@click.argument("run_id", required=False)
@_apply(store_options)
def report(run_id, outputs, db):
    """重新生成某次运行的报告（默认最近一次）/ rewrite the reports of a run (default: the latest).

    \b
    Example:
      recon report 20241231-020000-ab12
    """
    from .reports import write_reports

    with _store(outputs, db) as con:
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
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True)
def rules(fmt):
    """规则目录：编号、级别、依据条款、说明 / the rule catalogue: id, severity, clause, description.

    \b
    Example:
      recon rules --format csv > rules.csv
    """
    from .rules import all_rules

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
@click.option("--limit", default=20, show_default=True, help="显示最近几次 / how many runs to show")
@_apply(store_options)
def runs(limit, outputs, db):
    """运行历史 / run history: id, time, as-of, inputs, findings by severity, exit status.

    \b
    Example:
      recon runs --limit 5
    """
    from .store import open_store

    path = _db_path(outputs, db)
    try:
        con = open_store(path, read_only=True)
    except StoreError as exc:
        raise ReconError(str(exc))
    try:
        rows = con.execute(
            """
            select r.run_id, r.started_at, r.as_of, r.exit_status,
                   (select count(*) from run_inputs i where i.run_id = r.run_id and i.action = 'loaded'),
                   (select count(*) from findings f where f.run_id = r.run_id and f.severity = 'error'),
                   (select count(*) from findings f where f.run_id = r.run_id and f.severity = 'warning'),
                   (select count(*) from findings f where f.run_id = r.run_id and f.severity = 'info')
            from runs as r order by r.started_at desc limit ?
            """, [limit]).fetchall()
    finally:
        con.close()
    click.echo("run_id                  started              as_of       loaded  error  warning  info  exit")
    for r in rows:
        started = r[1].strftime("%Y-%m-%d %H:%M:%S")
        status = "-" if r[3] is None else str(r[3])
        click.echo(f"{r[0]:<23} {started}  {r[2]}  {r[4]:>6}  {r[5]:>5}  {r[6]:>7}  {r[7]:>4}  {status:>4}")


class _store:
    """Open the store for a command; store errors become exit status 2 with a clear message."""

    def __init__(self, outputs, db):
        self.path = _db_path(outputs, db)

    def __enter__(self):
        from .store import open_store

        try:
            self.con = open_store(self.path)
        except StoreError as exc:
            raise ReconError(str(exc))
        return self.con

    def __exit__(self, *exc):
        self.con.close()
        return False


def _exit_for_outcomes(outcomes) -> None:
    for o in outcomes:
        if o.action == "rejected":
            click.echo(f"拒收 / rejected: {o.message}", err=True)
        elif o.action == "skipped":
            click.echo(f"已加载过，跳过 / already loaded, skipped: {o.path}")
        else:
            click.echo(f"已加载 / loaded: {o.path} ({o.rows_loaded} rows, {o.rows_quarantined} quarantined)")
    if any(o.action == "rejected" for o in outcomes):
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
