"""Where does `recon run` spend its time? Per-stage and per-rule timings, without editing the pipeline.

Runs `recon run` in this process after wrapping every function defined in the `pipeline`
package (each module's attributes, so `from .x import y` references are wrapped too) with a
timer that records calls and inclusive wall time. `run_rule` and `collect_rule` are keyed by rule
id. The pipeline's own code is unchanged; the wrappers cost about a microsecond a call, which
matters only for functions called per row (and a function called per row is itself a finding).

Prints a table of the slowest functions and, last, one JSON line with all timings
(bench/run.py keeps it).

Usage:
    python bench/profile_run.py --inputs D --outputs O [--as-of 2024-12-31]
"""
from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import json
import pkgutil
import re
import sys
import time
from collections import defaultdict

T0 = time.perf_counter()
TIMES: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)
FIRST: dict[str, float] = {}
_depth = [0]
TOP: list[tuple[int, str, float, float]] = []  # depth, name, start, seconds (depth <= 2)


def _wrap(fn, name):
    @functools.wraps(fn)
    def timed(*args, **kwargs):
        key = name
        if fn.__name__ in ("run_rule", "collect_rule") and len(args) > 1 and hasattr(args[1], "rule_id"):
            key = f"{name}[{args[1].rule_id}]"
        elif fn.__name__ in ("_timed", "run_stage") and args and isinstance(args[-1] if fn.__name__ == "run_stage" else args[0], str):
            key = f"{name}[{args[-1] if fn.__name__ == 'run_stage' else args[0]}]"
        start = time.perf_counter()
        FIRST.setdefault(key, start - T0)
        _depth[0] += 1
        try:
            return fn(*args, **kwargs)
        finally:
            _depth[0] -= 1
            took = time.perf_counter() - start
            TIMES[key] += took
            CALLS[key] += 1
            if _depth[0] <= 2 and took > 0.05:
                TOP.append((_depth[0], key, start - T0, took))
    timed.__wrapped_by_bench__ = True
    return timed


SQL_TIMES: dict[str, float] = defaultdict(float)
SQL_CALLS: dict[str, int] = defaultdict(int)


def _sql_label(sql: object) -> str:
    """First line of a statement that is not a comment, squashed: a readable key."""
    for line in str(sql).splitlines():
        line = line.strip()
        if line and not line.startswith("--"):
            return " ".join(line.split())[:90]
    return "?"


class TimedConnection:
    """A DuckDB connection that times each execute(); everything else is forwarded."""

    def __init__(self, con):
        self._con = con

    def _timed(self, method, sql, *args, **kwargs):
        # DuckDB's replacement scans find Python objects (Arrow tables, DataFrames) named in the
        # SQL among the *calling* frame's variables; that frame is now this one, so register the
        # caller's objects that the statement names, for the duration of the call.
        caller = sys._getframe(2).f_locals
        text = str(sql)
        registered = []
        for name, obj in caller.items():
            if (type(obj).__module__.split(".")[0] in ("pyarrow", "pandas", "polars")
                    and re.search(rf"\b{re.escape(name)}\b", text)):
                # execute() would discard a result the pipeline left half-read (a fetchone());
                # register() refuses to run beside one, so finish it first
                self._con.complete()
                self._con.register(name, obj)
                registered.append(name)
        start = time.perf_counter()
        try:
            result = getattr(self._con, method)(sql, *args, **kwargs)
        finally:
            for name in registered:
                self._con.unregister(name)
        key = _sql_label(sql)
        SQL_TIMES[key] += time.perf_counter() - start
        SQL_CALLS[key] += 1
        return self if result is self._con else result

    def execute(self, sql, *args, **kwargs):
        return self._timed("execute", sql, *args, **kwargs)

    def executemany(self, sql, *args, **kwargs):
        return self._timed("executemany", sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._con.__exit__(*exc)


def time_sql() -> None:
    import duckdb

    real_connect = duckdb.connect

    def connect(*args, **kwargs):
        return TimedConnection(real_connect(*args, **kwargs))

    duckdb.connect = connect


def instrument() -> None:
    import pipeline

    modules = [importlib.import_module(m.name)
               for m in pkgutil.walk_packages(pipeline.__path__, "pipeline.")
               if not m.name.endswith("__main__")]
    wrappers: dict[int, object] = {}
    for mod in modules:
        for attr, obj in list(vars(mod).items()):
            if (inspect.isfunction(obj) and obj.__module__.startswith("pipeline")
                    and not getattr(obj, "__wrapped_by_bench__", False)):
                if id(obj) not in wrappers:
                    wrappers[id(obj)] = _wrap(obj, f"{obj.__module__.removeprefix('pipeline.')}.{obj.__qualname__}")
                setattr(mod, attr, wrappers[id(obj)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--outputs", required=True)
    ap.add_argument("--as-of", default="2024-12-31")
    ap.add_argument("--no-sql-timing", action="store_true",
                    help="do not wrap the DuckDB connection (if a module needs the real type)")
    args = ap.parse_args(argv)
    if not args.no_sql_timing:
        time_sql()
    t_import0 = time.perf_counter()
    instrument()
    import_s = time.perf_counter() - t_import0
    from pipeline.cli import main as cli

    status = 0
    t1 = time.perf_counter()
    try:
        cli.main(["run", "--inputs", args.inputs, "--outputs", args.outputs, "--as-of", args.as_of,
                  "--fail-on", "never"], standalone_mode=False)
    except SystemExit as exc:
        status = exc.code or 0
    total = time.perf_counter() - t1
    rows = sorted(TIMES.items(), key=lambda kv: -kv[1])
    print(f"\nimport of pipeline modules {import_s:.2f} s; run {total:.2f} s (exit {status})")
    print(f"{'seconds':>9} {'calls':>8}  function (inclusive time)")
    for name, secs in rows[:45]:
        print(f"{secs:9.3f} {CALLS[name]:>8}  {name}")
    sql_rows = sorted(SQL_TIMES.items(), key=lambda kv: -kv[1])
    if sql_rows:
        print(f"\n{'seconds':>9} {'calls':>8}  SQL statement (first line), execute() only")
        for name, secs in sql_rows[:30]:
            print(f"{secs:9.3f} {SQL_CALLS[name]:>8}  {name}")
    print("\ntimeline (depth <= 2, > 50 ms):")
    for depth, name, start, took in sorted(TOP, key=lambda t: t[2]):
        print(f"  {start:8.2f} s +{took:7.2f} s  {'  ' * depth}{name}")
    print(json.dumps({"import_s": round(import_s, 3), "run_s": round(total, 3), "exit": status,
                      "functions": {k: {"s": round(v, 4), "calls": CALLS[k]} for k, v in rows},
                      "sql": {k: {"s": round(v, 4), "calls": SQL_CALLS[k]} for k, v in sql_rows},
                      "timeline": [[d, n, round(s, 3), round(t, 3)] for d, n, s, t in sorted(TOP, key=lambda t: t[2])]},
                     ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
