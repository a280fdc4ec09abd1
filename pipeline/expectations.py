"""Expectation suites (expectations/*.json) run through Great Expectations against the store.

The suites are data: GX's own ExpectationSuite JSON, one per table they guard
(stg_ledger_lines: the staged inputs; stg_ledger_line_repeats: the staged lines that share a
voucher line's key, where one row per voucher line is checked; fct_recon_lines: the joined
reconciliation lines; rpt_allocation_control: the spending each allocation line, or pool of
batches' lines, is held to, as OVER_ALLOCATION holds it). Their `meta` says
which table, whether to materialise it first, and which columns identify a failing row. GX
validates them through its own validation API with every metric computed inside DuckDB; no table
is copied into Python, only the failing rows' identifiers come back (capped, see ROW_CAP).

Why the connection is borrowed: GX 1.x hands each query's connection back to the SQLAlchemy pool,
which rolls it back, and a DuckDB connection's pending result dies with that rollback (GX issues
10738 and 11579: "IndexError: list index out of range" in resolve_metric_bundle). DuckDB also
allows only one read-write connection to a file per process, and the run already holds it. So
the GX engine gets exactly one connection, the one it is handed, through a StaticPool whose DBAPI
wrapper ignores begin / commit / rollback / close (GX only reads; the caller keeps ownership).
In a run (start_suites) that is a cursor of the run's connection: a connection of its own to the
same database, on a thread of its own, so the suites run while the SQL checks do. Heavy views
are materialised once into a temp table on that connection, so GX's several metric queries do not
each recompute the joins.

Failures become findings with rule id EXPECTATION_FAILED (catalogue entry:
sql/checks/expectation_failed.sql):
- an expectation with `"mirrors": [RULE, ...]` states a SQL rule again. Where the rule reported
  the same rows, nothing more is said (the rule's findings already carry the evidence); a row the
  suite and the rule judge differently is a warning naming both, so the two implementations keep
  each other honest at run time as well as in tests/test_expectations.py;
- any other expectation reports each failing row (voucher, line, file, row), severity from its
  meta (default: the catalogue's), up to ROW_CAP rows, then one finding with the remaining count.

GX Data Docs (a static local site) are written to <run_dir>/data_docs. GX's page templates link
CSS/JS from public CDNs and a logo on S3; those references are removed after the build so that
opening the pages on an isolated network (政务内网) makes no request (the content is plain HTML
and reads fine unstyled). GX analytics are switched off and the context is ephemeral: nothing is
downloaded, sent or kept between runs.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import re
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .findings import Finding
from .paths import EXPECTATIONS_DIR

RULE_ID = "EXPECTATION_FAILED"
ROW_CAP = 200            # failing rows reported one by one per expectation
DISAGREEMENT_SEVERITY = "warning"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    table: str
    materialize: bool
    index_columns: list[str]
    identity: list[str]
    body: dict
    path: Path

    @property
    def source(self) -> str:
        """The table GX validates: the view itself, or its temp-table snapshot."""
        return f"gx_{self.name}" if self.materialize else self.table

    def columns(self) -> set[str] | None:
        """The columns the suite reads (its expectations' columns and row conditions, its
        identifying columns), or None when that cannot be told: an expectation on the table's
        own shape (expect_table_...), or a row condition written as a string."""
        names = {*self.index_columns, *self.identity}
        for expectation in self.body["expectations"]:
            if not expectation["type"].startswith(_COLUMN_EXPECTATIONS):
                return None
            kwargs = expectation.get("kwargs", {})
            condition = kwargs.get("row_condition")
            if condition is not None and not isinstance(condition, dict):
                return None
            names.update(kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs)
            names.update(kwargs.get("column_list", []))
            names.update(_condition_columns(condition))
        return names


# Expectations on some columns of each row (not on the table's shape): what SuiteSpec.columns reads.
_COLUMN_EXPECTATIONS = ("expect_column_", "expect_compound_columns_", "expect_multicolumn_",
                        "expect_select_column_values_")


def _condition_columns(condition) -> set[str]:
    """Column names in a structured row condition ({"column": {"name": ...}}, nested "conditions")."""
    if isinstance(condition, list):
        return set().union(*map(_condition_columns, condition))
    if not isinstance(condition, dict):
        return set()
    names = set().union(*(_condition_columns(v) for k, v in condition.items() if k != "column"))
    column = condition.get("column")
    if isinstance(column, dict) and isinstance(column.get("name"), str):
        names.add(column["name"])
    elif isinstance(column, str):
        names.add(column)
    return names


def load_suites(directory: Path | None = None) -> list[SuiteSpec]:
    """The suites in expectations/ (or `directory`), in file-name order."""
    specs = []
    for path in sorted(Path(directory or EXPECTATIONS_DIR).glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        meta = body.get("meta", {})
        name, table = body["name"], meta.get("table", body["name"])
        for ident in (name, table, *meta.get("index_columns", [])):
            if not _IDENT.match(ident):
                raise ValueError(f"{path}: {ident!r} is not a plain lowercase identifier")
        index_columns = list(meta.get("index_columns", []))
        specs.append(SuiteSpec(
            name=name, table=table, materialize=bool(meta.get("materialize", False)),
            index_columns=index_columns, identity=list(meta.get("identity", index_columns[:2])),
            body=body, path=path,
        ))
    return specs


def validate(con: duckdb.DuckDBPyConnection, run_id: str, run_dir: Path,
             found: str | None = None, *,
             suites: BackgroundSuites | None = None) -> list[Finding]:
    """Run every suite against the store; return findings (see module docstring).

    found: the table on `con` holding what the SQL checks found in this run (pipeline.run
    collects them there, see checks.create_found), so that mirrored expectations are compared
    without running their rules again; when None, the mirrored rules are run here. suites: the
    suites already started by start_suites (their results are awaited here, and their Data Docs
    are already in run_dir)."""
    specs = load_suites() if suites is None else suites.specs
    if not specs:
        return []
    results = run_suites(con, specs, Path(run_dir) / "data_docs") if suites is None else suites.results()
    findings: list[Finding] = []
    # a repeated voucher line is listed by its key, file_id among it: named by its file
    files = dict(con.execute("select file_id, name from input_files").fetchall())
    for spec in specs:
        mirrored: dict[tuple, list] = {}
        for expectation, outcome in zip(spec.body["expectations"], results[spec.name]):
            mirrors = tuple(expectation.get("meta", {}).get("mirrors") or ())
            if mirrors and not _raised(outcome):
                # expectations restating the same rules are compared with them together
                mirrored.setdefault(mirrors, []).append((expectation, outcome))
            else:
                findings.extend(_findings_for(spec, expectation, outcome, files))
        for mirrors, group in mirrored.items():
            findings.extend(_disagreements(con, spec, group, list(mirrors), found))
    return findings


# --- running GX -------------------------------------------------------------------------------

_gx_import: threading.Thread | None = None


def import_gx_early() -> threading.Thread:
    """Start importing Great Expectations on a thread (1.7-2.1 s of Python) while the caller's
    DuckDB work runs; run_suites' own import then finds it done (or waits for it). Started once
    per process: later calls return the same thread."""
    global _gx_import
    if _gx_import is not None:
        return _gx_import

    def work() -> None:
        _before_gx_import()
        try:
            import great_expectations  # noqa: F401
        except Exception:  # run_suites imports it again and reports what went wrong
            pass
    _gx_import = threading.Thread(target=work, name="import-gx", daemon=True)
    _gx_import.start()
    return _gx_import


CANCEL_POLL_SECONDS = 0.05


class BackgroundSuites:
    """The suites running on a thread of their own, on a connection of their own (see
    start_suites); results() waits for them and hands over what they returned or raised."""

    def __init__(self, con: duckdb.DuckDBPyConnection, specs: list[SuiteSpec], docs_dir: Path,
                 prepare=None) -> None:
        self.specs = specs
        self._cursor = con.cursor()  # the same database, its own temp schema and transactions
        self._outcome: tuple[bool, object] | None = None
        try:
            if prepare is not None:
                prepare(self._cursor)
        except BaseException:
            self._cursor.close()
            raise
        self._thread = threading.Thread(target=self._work, args=(docs_dir,), name="recon-suites",
                                        daemon=True)
        self._thread.start()

    def _work(self, docs_dir: Path) -> None:
        try:
            self._outcome = (True, run_suites(self._cursor, self.specs, docs_dir) if self.specs else {})
        except BaseException as exc:  # handed to the caller by results()
            self._outcome = (False, exc)

    def results(self) -> dict:
        """Wait for the suites; their results, or what they raised, raised here."""
        self._thread.join()
        self._cursor.close()
        ok, value = self._outcome
        if not ok:
            raise value
        return value

    def cancel(self) -> None:
        """Stop the suites if they still run and wait for their thread; the caller failed, or never
        asked for the results. Does nothing after results(). An interrupt stops only the query
        running at that moment (none while GX is in Python), so it is repeated until GX, its
        query failing, gives up."""
        while self._thread.is_alive():
            try:
                self._cursor.interrupt()
            except duckdb.Error:
                pass
            self._thread.join(CANCEL_POLL_SECONDS)
        self._cursor.close()


def start_suites(con: duckdb.DuckDBPyConnection, run_dir: Path, prepare=None) -> BackgroundSuites:
    """Start the suites on a thread, on a new connection to con's database (a DuckDB cursor), and
    return at once. They read only what the checks read, so they can run beside them: the checks
    are DuckDB's work and leave the interpreter to GX. prepare(cursor) runs first on the new
    connection (the run shadows its snapshot views there too). Data Docs go to run_dir."""
    return BackgroundSuites(con, load_suites(), Path(run_dir) / "data_docs", prepare)


def run_suites(con: duckdb.DuckDBPyConnection, specs: list[SuiteSpec], docs_dir: Path | None) -> dict:
    """Validate each suite; return {suite name: [ExpectationValidationResult, ...]} in suite order."""
    _before_gx_import()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    _teach_regex()
    _rows_only_when_some_fail()
    for spec in specs:
        if spec.materialize:
            con.execute(f"create or replace temp table {spec.source} as "
                        f"select {_select_list(con, spec)} from {spec.table}")
    engine = None
    try:
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        datasource = context.data_sources.add_sql(
            "store", connection_string="duckdb:///:memory:",
            kwargs={"creator": _borrowed(con), "poolclass": _static_pool(), "pool_reset_on_return": None},
        )
        definitions = []
        for spec in specs:
            asset = datasource.add_table_asset(spec.name, table_name=spec.source)
            batch = asset.add_batch_definition_whole_table("all")
            # GX reorders results; the position in the file, kept in meta, ties each one back
            expectations = [{**e, "meta": {**e.get("meta", {}), "recon_index": i}}
                            for i, e in enumerate(spec.body["expectations"])]
            suite = context.suites.add(gx.ExpectationSuite(
                name=spec.name, expectations=expectations, meta=spec.body.get("meta", {})))
            definitions.append(context.validation_definitions.add(
                gx.ValidationDefinition(name=spec.name, data=batch, suite=suite)))
        by_suite = {}
        for spec, definition in zip(specs, definitions):
            # each suite names its own identifying columns; failing rows come back capped
            result = definition.run(result_format={
                "result_format": "SUMMARY", "partial_unexpected_count": ROW_CAP,
                "unexpected_index_column_names": spec.index_columns})
            by_suite[spec.name] = sorted(result.results,
                                         key=lambda r: r.expectation_config.meta["recon_index"])
        if docs_dir is not None:
            # one build for all suites (the results are in the context's store); the pages show
            # ledger rows, so they are the running user's only, like every other output
            old_umask = os.umask(0o077)
            try:
                docs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                context.add_data_docs_site("local", {
                    "class_name": "SiteBuilder",
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                      "base_directory": str(docs_dir)},
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                })
                context.build_data_docs(site_names=["local"])
            finally:
                os.umask(old_umask)
        engine = datasource.get_execution_engine().engine
    finally:
        if engine is not None:
            engine.dispose()
        for spec in specs:
            if spec.materialize:
                con.execute(f"drop table if exists {spec.source}")
    if docs_dir is not None:
        make_offline(docs_dir)
    return by_suite


def _select_list(con: duckdb.DuckDBPyConnection, spec: SuiteSpec) -> str:
    """What a suite's temp table copies of its view: the columns the suite reads, in the view's
    order (fct_recon_lines at 10M lines: 14 of 28 columns, 1.08 s instead of 1.65 s), or all.
    A name the view lacks is left for GX to report, as it would be on the view itself."""
    wanted = spec.columns()
    if wanted is None:
        return "*"
    have = [r[0] for r in con.execute(f"select * from {spec.table} limit 0").description]
    picked = [c for c in have if c in wanted]
    return ", ".join('"' + c.replace('"', '""') + '"' for c in picked) if picked else "*"


# Imported by GX at start-up for expectations the suites do not use (KL divergence: its statistic
# and its chart): 1.0-1.3 s of GX's 2.2 s import, on every run.
UNUSED_BY_SUITES = ("scipy.stats", "altair")


class _DeferredModule(types.ModuleType):
    """Stands in sys.modules for a module until something reads one of its attributes; the first
    read imports the real module, which then takes its place (and answers this one's reads too).
    Importing the name, or `from package import name`, reads nothing, so it stays cheap."""

    def _deferred_load(self) -> types.ModuleType:
        real = self.__dict__.get("_deferred_real")
        if real is None:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
            self.__dict__["_deferred_real"] = real
        return real

    def __getattr__(self, attr: str):
        # called only for the attributes a bare module lacks: all of the real module's
        return getattr(self._deferred_load(), attr)

    def __dir__(self):
        return dir(self._deferred_load())


def _before_gx_import() -> None:
    """GX without analytics, and without the modules the suites do not use."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    _defer_imports(UNUSED_BY_SUITES)


def _defer_imports(names: tuple[str, ...]) -> None:
    """Put a stand-in in place of each module not imported yet (see _DeferredModule). A suite
    that comes to need one loses nothing: its first use imports it."""
    for name in names:
        if name in sys.modules:
            continue
        try:
            spec = importlib.util.find_spec(name)  # imports the parent package of a submodule
        except ModuleNotFoundError:  # no parent package: GX's own import will say what is missing
            spec = None
        if spec is None:
            continue
        module = sys.modules[name] = _DeferredModule(name)
        # inspect.getmodule(), which GX calls through inspect.stack(), reads every module's
        # __file__: the stand-in has its own, so that read imports nothing
        module.__file__ = spec.origin


_REGEX_MODULES = (
    "great_expectations.expectations.metrics.column_map_metrics.column_values_match_regex",
    "great_expectations.expectations.metrics.column_map_metrics.column_values_not_match_regex",
    "great_expectations.expectations.metrics.column_map_metrics.column_values_match_regex_list",
    "great_expectations.expectations.metrics.column_map_metrics.column_values_not_match_regex_list",
    "great_expectations.expectations.metrics.column_aggregate_metrics.column_values_match_regex_values",
    "great_expectations.expectations.metrics.column_aggregate_metrics.column_values_not_match_regex_values",
)


def _teach_regex() -> None:
    """GX builds regular-expression SQL per dialect and has no entry for DuckDB ("Regex is not
    supported for dialect duckdb"). The regex metrics get one: for the duckdb dialect,
    regexp_matches(column, pattern), DuckDB's own function (a match anywhere in the string, as
    in PostgreSQL's `~`; the suites anchor their patterns); every other dialect goes to GX's
    function unchanged. Installed once per process, in the modules that call it by name."""
    import importlib

    import sqlalchemy
    from great_expectations.expectations.metrics import util

    original = util.get_dialect_regex_expression
    if getattr(original, "_recon_duckdb", False):
        return

    def with_duckdb(column, regex, dialect, positive=True):
        name = getattr(getattr(dialect, "dialect", dialect), "name", None)
        if name == "duckdb":
            match = sqlalchemy.func.regexp_matches(column, sqlalchemy.literal(regex))
            return match if positive else sqlalchemy.not_(match)
        return original(column, regex, dialect, positive)

    with_duckdb._recon_duckdb = True
    util.get_dialect_regex_expression = with_duckdb
    for name in _REGEX_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "get_dialect_regex_expression"):
            module.get_dialect_regex_expression = with_duckdb


# The metrics that list a column expectation's failing rows (its values, the rows' index
# columns, the rows), and the name of the dependency _rows_only_when_some_fail gives them
_ROW_METRICS = (".unexpected_values", ".unexpected_index_list", ".unexpected_rows")
_COUNT_DEPENDENCY = "recon_unexpected_count"


def _rows_only_when_some_fail() -> None:
    """GX lists a column expectation's failing rows with a query of their own per expectation
    (values, then index columns: `... where not <condition> limit 200`), in the same pass as the
    query that counts them. Where nothing fails, each of those reads the whole table to find
    nothing: on the 2M staged lines of the bench, six such scans took 0.76 s of the suites' 2 s,
    and they grow with the ledger. On SQL, the row metrics of column map expectations are made to
    depend on the expectation's unexpected_count (the same metric GX computes for the result, in
    its one bundled query) and to return what they return for no rows when it is 0, without a
    query; when some fail they run as before. The results are the same (tests/test_expectations.py
    compares them with GX's own). Installed once per process."""
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine
    from great_expectations.expectations import registry
    from great_expectations.expectations.metrics.map_metric_provider.column_map_metric_provider import (
        ColumnMapMetricProvider,
    )
    from great_expectations.validator.metric_configuration import MetricConfiguration

    dependencies = ColumnMapMetricProvider.__dict__["_get_evaluation_dependencies"].__func__
    if getattr(dependencies, "_recon_counted", False):
        return

    def counted_first(cls, metric, configuration=None, execution_engine=None, runtime_configuration=None):
        found = dependencies(cls, metric=metric, configuration=configuration, execution_engine=execution_engine,
                             runtime_configuration=runtime_configuration)
        if isinstance(execution_engine, SqlAlchemyExecutionEngine) and metric.metric_name.endswith(_ROW_METRICS):
            condition = metric.metric_name.rsplit(".", 1)[0]
            found[_COUNT_DEPENDENCY] = MetricConfiguration(
                metric_name=f"{condition}.unexpected_count",
                metric_domain_kwargs=metric.metric_domain_kwargs,
                metric_value_kwargs={k: v for k, v in (metric.metric_value_kwargs or {}).items()
                                     if k != "result_format"})
        return found

    def none_when_none_fail(name: str, listing):
        def rows(*args, **kwargs):
            metrics = kwargs.get("metrics") or {}
            if metrics.get(_COUNT_DEPENDENCY) != 0:
                return listing(*args, **kwargs)
            if not name.endswith(".unexpected_index_list"):
                return []
            result_format = (kwargs.get("metric_value_kwargs") or {}).get("result_format") or {}
            if "unexpected_index_column_names" not in result_format:
                return None
            if not set(result_format["unexpected_index_column_names"]) <= set(metrics.get("table.columns", [])):
                return listing(*args, **kwargs)  # GX's own error names the missing column
            return []

        rows._recon_counted, rows._recon_original = True, listing
        return rows

    for name, definition in list(registry._registered_metrics.items()):
        if not name.endswith(_ROW_METRICS):
            continue
        provider = definition.get("providers", {}).get(SqlAlchemyExecutionEngine.__name__)
        if provider and issubclass(provider[0], ColumnMapMetricProvider) \
                and not getattr(provider[1], "_recon_counted", False):
            definition["providers"][SqlAlchemyExecutionEngine.__name__] = (
                provider[0], none_when_none_fail(name, provider[1]))
    counted_first._recon_counted, counted_first._recon_original = True, dependencies
    ColumnMapMetricProvider._get_evaluation_dependencies = classmethod(counted_first)


def _static_pool():
    from sqlalchemy.pool import StaticPool

    return StaticPool


def _borrowed(con: duckdb.DuckDBPyConnection):
    """A creator handing GX the run's own DuckDB connection, never to be ended by GX."""
    from duckdb_engine import ConnectionWrapper

    class Borrowed(ConnectionWrapper):
        def begin(self) -> None:        # read-only validation: no transaction to manage
            pass

        def commit(self) -> None:
            pass

        def rollback(self) -> None:     # a rollback would drop the pending result (GX 10738)
            pass

        def close(self) -> None:        # the run owns the connection
            pass

    wrapper = Borrowed(con)
    return lambda: wrapper


_REMOTE_TAG = re.compile(
    r"<link[^>]+href=\"https?://[^\"]*\"[^>]*>|<script[^>]+src=\"https?://[^\"]*\"[^>]*>\s*</script>",
    re.I)
_REMOTE_IMG = re.compile(r"src=\"https?://[^\"]*\"", re.I)
_REMOTE_URL = re.compile(r"url\(\s*['\"]?https?://[^)]*\)", re.I)


def make_offline(docs_dir: Path) -> None:
    """Make the site private to the running user, and remove every remote resource a browser
    would fetch on its own (stylesheets, scripts, images, CSS url()) from the pages; plain
    links stay, they are only followed when clicked."""
    for path in [Path(docs_dir), *Path(docs_dir).rglob("*")]:
        if not path.is_symlink():   # GX copies its static files with their installed modes
            path.chmod(0o700 if path.is_dir() else 0o600)
    for page in [*Path(docs_dir).rglob("*.html"), *Path(docs_dir).rglob("*.css")]:
        text = page.read_text(encoding="utf-8")
        cleaned = _REMOTE_URL.sub("none", _REMOTE_IMG.sub('src=""', _REMOTE_TAG.sub("", text)))
        if cleaned != text:
            page.write_text(cleaned, encoding="utf-8")


# --- results -> findings ----------------------------------------------------------------------

def _describe(expectation: dict) -> str:
    kwargs = {k: v for k, v in expectation.get("kwargs", {}).items() if k != "row_condition"}
    return f"{expectation['type']}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


def _raised(outcome) -> bool:
    info = outcome.exception_info or {}
    return bool(info.get("raised_exception") or any(
        isinstance(v, dict) and v.get("raised_exception") for v in info.values()))


def _unexpected(outcome) -> tuple[list[dict], int]:
    """The failing rows GX listed (identifying columns and values) and how many failed in all.

    Multi-column expectations (compound uniqueness) list values, not indices: each distinct
    combination is listed once, with how often it occurs."""
    result = outcome.result or {}
    count = int(result.get("unexpected_count") or 0)
    rows = result.get("partial_unexpected_index_list") or result.get("unexpected_index_list")
    if rows:
        return list(rows), count or len(rows)
    values = [v for v in result.get("partial_unexpected_list") or [] if isinstance(v, dict)]
    distinct: dict[tuple, dict] = {}
    for v in values:
        key = tuple(sorted((k, str(x)) for k, x in v.items()))
        distinct.setdefault(key, {**v, "times": 0})["times"] += 1
    return list(distinct.values()), count if values else 0


def _findings_for(spec: SuiteSpec, expectation: dict, outcome, files: dict | None = None) -> list[Finding]:
    """Each failing row of an expectation that restates no rule (capped), or why it could not run.
    files: file_id -> name, for rows that name their file by id (a compound key's values)."""
    if outcome.success:
        return []
    meta = expectation.get("meta", {})
    label = f"{spec.name}: {_describe(expectation)}"
    if _raised(outcome):
        return [Finding(
            rule_id=RULE_ID, severity="error", purpose=spec.name, expected=label,
            observed="exception", key_detail=label,
            message=(f"数据期望无法执行：{label} / expectation could not run: {label} "
                     f"({_exception_text(outcome.exception_info or {})})"))]
    rows, count = _unexpected(outcome)
    if count > sum(int(r.get("times", 1)) for r in rows):
        # GX lists the first rows DuckDB happens to return, which differ between identical runs:
        # only a complete list is reported row by row, so re-running never changes the findings.
        rows = []
    severity = meta.get("severity", "error")
    zh, en = meta.get("zh", label), meta.get("en", label)
    detail = expectation["type"] + ":" + _column(expectation)
    findings = []
    for row in rows:
        if row.get("source_file") is None and files and _i(row.get("file_id")) in files:
            row = {**row, "source_file": files[_i(row.get("file_id"))]}
        observed = _observed(row, spec)
        findings.append(Finding(
            rule_id=RULE_ID, severity=severity, notice_no=_s(row.get("notice_no")),
            voucher_no=_s(row.get("voucher_no")), line_no=_s(row.get("line_no")),
            source_file=_s(row.get("source_file")), source_row=_i(row.get("row_no")),
            purpose=_s(row.get("purpose")) or spec.name, expected=label, observed=observed,
            key_detail=detail + _where_key(row),
            message=(f"{spec.name} {_where(row, 'zh')}{zh}（{observed}） / "
                     f"{spec.name} {_where(row, 'en')}{en} ({observed})"),
        ))
    listed = sum(int(r.get("times", 1)) for r in rows)
    if count > listed:
        rest = count - listed
        findings.append(Finding(
            rule_id=RULE_ID, severity=severity, purpose=spec.name, expected=label,
            observed=f"{count} rows", key_detail=detail + ":rest",
            message=(f"{spec.name}：另有 {rest} 行{zh}（共 {count} 行） / "
                     f"{spec.name}: {rest} more rows where {en} ({count} in all)")))
    return findings


def _where_key(row: dict) -> str:
    """What tells one failing row's finding from another's beyond its voucher line: copies of
    one voucher line differ only by file and row; a key repeated in a file (the key suite's
    rows carry no row) by its file."""
    if row.get("row_no") is not None:
        return f"@{row.get('source_file')}:{row.get('row_no')}"
    if row.get("source_file") is not None:
        return f"@{row.get('source_file')}"
    return ""


def _disagreements(con, spec: SuiteSpec, group: list, mirrors: list[str],
                   found: str | None = None) -> list[Finding]:
    """Rows the expectations fail but the mirrored rules do not report, and the other way round.

    The rules' findings (in table `found`, or the rules run here) are keyed by the suite's
    identity columns (file and row of a ledger line; notice and purpose for a per-purpose
    table); findings of a rule that belong to no row (e.g. a COMMINGLED_ACCOUNT sub-account
    finding) are outside the comparison. Rows are compared one by one when both sides are
    short lists (GX listed every failing row, and the rules report at most as many rows as GX
    may list); otherwise the counts are, and the rows are in the Data Docs and the rules'
    findings. The rules' findings stay in DuckDB: only a short list comes into Python."""
    from .checks import collect_rule, create_found
    from .rules import rule

    if found is None:  # the rules run here, into a table of their own
        found = "_mirrored_found"
        create_found(con, found)
        try:
            for rule_id in mirrors:
                collect_rule(con, rule(rule_id), found)
            return _disagreements(con, spec, group, mirrors, found)
        finally:
            con.execute(f"drop table if exists {found}")
    label = " + ".join(f"{spec.name}: {_describe(e)}" for e, _ in group)
    # one finding per identity, the last to arrive (as a dict keyed by identity keeps it)
    ident = [_IDENTITY_COLUMN[c] for c in spec.identity]
    reported_sql = f"""
        select {", ".join(ident)}, {", ".join(_REPORTED)}
        from {found}
        where rule_id in ({", ".join("?" for _ in mirrors)}) and {ident[0]} is not null
        qualify row_number() over (partition by {", ".join(ident)} order by seq desc) = 1
    """
    n_reported = con.execute(f"select count(*) from ({reported_sql})", mirrors).fetchone()[0]
    failed: dict[tuple, dict] = {}
    complete, total = True, 0
    for _, outcome in group:
        rows, count = _unexpected(outcome)
        complete = complete and count <= len(rows)
        total += count
        for row in rows:
            failed[tuple(_i(row.get(c)) if c == "row_no" else _s(row.get(c))
                         for c in spec.identity)] = row
    rules = "、".join(mirrors)
    out = []
    if not complete or n_reported > ROW_CAP * len(group):
        # GX listed only ROW_CAP rows per expectation, or the rules report more rows than that:
        # compare counts; the rows are in the Data Docs and in the rules' findings
        if total < n_reported or len(failed) > n_reported:
            out.append(Finding(
                rule_id=RULE_ID, severity=DISAGREEMENT_SEVERITY, purpose=spec.name, expected=label,
                observed=f"{total} / {n_reported}", key_detail=label,
                message=(f"期望 {label} 判定 {total} 行不符，规则 {rules} 报告 {n_reported} 行 / "
                         f"expectations {label} fail {total} rows, rules {', '.join(mirrors)} "
                         f"report {n_reported}")))
        return out
    reported = {tuple(row[:len(ident)]): dict(zip(_REPORTED, row[len(ident):]))
                for row in con.execute(reported_sql, mirrors).fetchall()}
    for key, row in failed.items():
        if key not in reported:
            out.append(Finding(
                rule_id=RULE_ID, severity=DISAGREEMENT_SEVERITY, voucher_no=_s(row.get("voucher_no")),
                line_no=_s(row.get("line_no")), source_file=_s(row.get("source_file")),
                source_row=_i(row.get("row_no")), purpose=_s(row.get("purpose")) or spec.name,
                notice_no=_s(row.get("notice_no")), expected=label, observed="suite only",
                key_detail=label,
                message=(f"期望 {label} 判定{_where(row, 'zh')}不符，但规则 {rules} 未报告 / "
                         f"expectation {label} fails {_where(row, 'en')}but rules "
                         f"{', '.join(mirrors)} do not report it")))
    for key, f in reported.items():
        if key not in failed:
            rule_id, voucher, line = f.pop("rule_id"), f["voucher_no"] or "", f["line_no"] or ""
            out.append(Finding(
                rule_id=RULE_ID, severity=DISAGREEMENT_SEVERITY, **f, expected=label,
                observed=f"{rule_id} only", key_detail=label,
                message=(f"规则 {rule_id} 报告了凭证 {voucher} 第{line}行，但期望 {label} 未判定不符 / "
                         f"rule {rule_id} reports voucher {voucher} line {line} but expectation "
                         f"{label} passes it")))
    return out


# What a disagreement names of the rule's finding.
_REPORTED = ("rule_id", "notice_no", "purpose", "voucher_no", "line_no", "source_file", "source_row")
# A suite's identity column -> the finding's column holding the same value.
_IDENTITY_COLUMN = {"source_file": "source_file", "row_no": "source_row", "notice_no": "notice_no",
                    "purpose": "purpose", "voucher_no": "voucher_no", "line_no": "line_no"}


def _column(expectation: dict) -> str:
    kw = expectation.get("kwargs", {})
    return str(kw.get("column") or kw.get("column_list") or f"{kw.get('column_A')},{kw.get('column_B')}")


def _observed(row: dict, spec: SuiteSpec) -> str:
    values = {k: v for k, v in row.items() if k not in spec.index_columns}
    return "; ".join(f"{k}={'' if v is None else v}" for k, v in values.items()) or "-"


# Where a failing row is, per language: its voucher line, else its purpose; then file and row.
_WHERE = {
    "zh": ("凭证 {voucher_no} 第{line_no}行", "用途 {purpose}", "（{source_file} 第{row_no}行）"),
    "en": ("voucher {voucher_no} line {line_no}", "purpose {purpose}", " ({source_file} row {row_no})"),
}


def _where(row: dict, lang: str) -> str:
    line, purpose, place = _WHERE[lang]
    values = {k: "" if row.get(k) is None else row.get(k)
              for k in ("voucher_no", "line_no", "purpose", "source_file", "row_no")}
    if row.get("voucher_no") is not None:
        where = line.format(**values)
    elif row.get("purpose") is not None:
        where = purpose.format(**values)
    else:
        where = ""
    if row.get("source_file") is not None:
        where += (place.format(**{**values, "row_no": row.get("row_no")}) if row.get("row_no") is not None
                  else _IN_FILE[lang].format(source_file=values["source_file"]))
    return where + " " if where else ""


_IN_FILE = {"zh": "（{source_file}）", "en": " (in {source_file})"}


def _exception_text(info: dict) -> str:
    if "exception_message" in info:
        return str(info.get("exception_message"))
    for v in info.values():
        if isinstance(v, dict) and v.get("exception_message"):
            return str(v["exception_message"])
    return "unknown error"


def _s(value) -> str | None:
    return None if value is None else str(value)


def _i(value) -> int | None:
    return None if value is None else int(value)
