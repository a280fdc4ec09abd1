"""The checks stay in portable SQL (issue 8): every function a check or a view it reads calls is
standard or listed, with its equivalents, in sql/PORTABILITY.md; no DuckDB-only syntax is used.

The SQL is read with sqlglot's DuckDB tokenizer (comments and string literals are tokens of their
own, so a word inside a message is never taken for a call).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlglot
from sqlglot.tokens import Token, TokenType

from pipeline.paths import ROOT

SQL = ROOT / "sql"
PORTABILITY = SQL / "PORTABILITY.md"
# the checks and the staging / fact views they read
PORTABLE_FILES = sorted(SQL.glob("checks/*.sql")) + [SQL / "staging.sql", SQL / "facts.sql"]

# Functions of the SQL standard (ISO/IEC 9075) that DuckDB accepts (PORTABILITY.md: where an engine lacks one).
STANDARD_FUNCTIONS = {
    "abs", "any_value", "avg", "cardinality", "cast", "ceiling", "char_length", "coalesce",
    "count", "cume_dist", "dense_rank", "extract", "first_value", "floor", "lag", "last_value",
    "lead", "lower", "max", "min", "mod", "nullif", "percent_rank", "position", "rank",
    "row_number", "substring", "sum", "trim", "unnest", "upper",
}

# DuckDB-only syntax, by token type (names looked up so that a sqlglot without one still runs).
_FORBIDDEN_TOKENS = {
    "DCOLON": "`::` cast", "QUALIFY": "QUALIFY", "L_BRACKET": "list literal or index `[…]`",
    "L_BRACE": "struct literal `{…}`", "ARROW": "lambda or JSON `->`", "DARROW": "JSON `->>`",
    "PIVOT": "PIVOT",
    "UNPIVOT": "UNPIVOT", "ASOF": "ASOF join", "POSITIONAL": "POSITIONAL join",
    "TABLE_SAMPLE": "USING SAMPLE", "DIV": "`//`", "DSTAR": "`**`", "HASH": "positional `#n`",
}
FORBIDDEN = {getattr(TokenType, name): what for name, what in _FORBIDDEN_TOKENS.items()
             if hasattr(TokenType, name)}
# words the tokenizer takes for keywords that are also called as functions
_KEYWORD_FUNCTIONS = {"replace", "left", "right", "unnest", "date", "array", "list", "map", "struct",
                      "format"}


@dataclass(frozen=True)
class Use:
    name: str    # a function as called, a planner hint, or a piece of DuckDB-only syntax
    line: int
    args: tuple[tuple[Token, ...], ...] = ()


def scan(sql: str) -> tuple[list[Use], list[Use]]:
    """(calls, DuckDB-only syntax) of a SQL text. Calls carry their top-level arguments;
    `as [not] materialized (` is reported as the call `materialized`, LIMIT as `limit`."""
    tokens = sqlglot.tokenize(sql, read="duckdb")
    calls, syntax = [], []
    for i, tok in enumerate(tokens):
        prev = tokens[i - 1] if i else None
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.token_type in FORBIDDEN:
            syntax.append(Use(FORBIDDEN[tok.token_type], tok.line))
        if tok.token_type == TokenType.GROUP_BY and nxt is not None and nxt.token_type == TokenType.ALL:
            syntax.append(Use("GROUP BY ALL", tok.line))
        if tok.token_type == TokenType.STAR and nxt is not None and nxt.text.lower() in ("exclude", "replace"):
            syntax.append(Use(f"SELECT * {nxt.text.upper()}", tok.line))
        if tok.token_type == TokenType.FROM and (prev is None or prev.token_type in (
                TokenType.SEMICOLON, TokenType.L_PAREN, TokenType.ALIAS)):
            syntax.append(Use("FROM-first query", tok.line))
        if tok.token_type == TokenType.COMMA and nxt is not None and nxt.token_type in (
                TokenType.FROM, TokenType.R_PAREN):
            syntax.append(Use("trailing comma", tok.line))
        if tok.token_type == TokenType.LIMIT:
            calls.append(Use("limit", tok.line))
        if nxt is None or nxt.token_type != TokenType.L_PAREN:
            continue
        name = tok.text.lower()
        if name == "materialized" and prev is not None and prev.token_type in (TokenType.ALIAS, TokenType.NOT):
            calls.append(Use("materialized", tok.line))
        elif ((tok.token_type == TokenType.VAR or name in _KEYWORD_FUNCTIONS)
              and (prev is None or prev.token_type != TokenType.ALIAS)):  # `as t(col)` names columns
            calls.append(Use(name, tok.line, _arguments(tokens, i + 1)))
    return calls, syntax


def _arguments(tokens: list[Token], open_paren: int) -> tuple[tuple[Token, ...], ...]:
    args, current, depth = [], [], 0
    for tok in tokens[open_paren + 1:]:
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            if depth == 0:
                break
            depth -= 1
        elif tok.token_type == TokenType.COMMA and depth == 0:
            args.append(tuple(current))
            current = []
            continue
        current.append(tok)
    if current:
        args.append(tuple(current))
    return tuple(args)


def documented() -> set[str]:
    """The names in the first column of PORTABILITY.md's table."""
    names = set()
    for line in PORTABILITY.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*`([a-z_]+)`\s*\|", line)
        if match:
            names.add(match.group(1))
    return names


def _regex_problems(use: Use) -> list[str]:
    """regexp_replace: three arguments, the pattern a literal anchored at ^ or $; regexp_matches:
    two arguments (see PORTABILITY.md: what the engines agree on)."""
    if use.name == "regexp_matches" and len(use.args) != 2:
        return ["regexp_matches with a flag argument"]
    if use.name != "regexp_replace":
        return []
    if len(use.args) != 3:
        return ["regexp_replace with a flag argument (engines differ on first / every match)"]
    pattern = use.args[1]
    if len(pattern) != 1 or pattern[0].token_type != TokenType.STRING:
        return ["regexp_replace with a pattern that is not a literal"]
    text = pattern[0].text
    if not (text.startswith("^") or text.endswith("$")):
        return [f"regexp_replace with the unanchored pattern {text!r} (engines differ on first / every match)"]
    return []


def problems(path: Path, allowed: set[str]) -> list[str]:
    calls, syntax = scan(path.read_text(encoding="utf-8"))
    out = [f"{path.name}:{u.line}: DuckDB-only syntax: {u.name}" for u in syntax]
    for use in calls:
        if use.name not in STANDARD_FUNCTIONS and use.name not in allowed:
            out.append(f"{path.name}:{use.line}: {use.name}() is neither standard nor in "
                       f"sql/PORTABILITY.md")
        out += [f"{path.name}:{use.line}: {p}" for p in _regex_problems(use)]
    return out


# --- the repository's SQL --------------------------------------------------------------------

def test_checks_and_views_use_only_standard_or_documented_sql():
    assert len(PORTABLE_FILES) > 20 and all(p.is_file() for p in PORTABLE_FILES)
    allowed = documented()
    found = [p for path in PORTABLE_FILES for p in problems(path, allowed)]
    assert found == []


def test_portability_table_lists_only_what_is_used():
    """An item no file uses any more is dropped from the table, which stays the list a port reads."""
    used = {u.name for path in PORTABLE_FILES for u in scan(path.read_text(encoding="utf-8"))[0]}
    assert documented() - used == set()
    # the scanner sees the calls at all: standard ones and listed ones are both there
    assert {"coalesce", "row_number", "position"} <= used and {"hash", "string_agg"} <= used


# --- the scanner itself ----------------------------------------------------------------------

@pytest.mark.parametrize("sql, expected", [
    ("select list_contains(codes, '2210107') from t", "list_contains() is neither standard"),
    ("select x::varchar from t", "DuckDB-only syntax: `::` cast"),
    ("select * from t qualify row_number() over (order by x) = 1", "DuckDB-only syntax: QUALIFY"),
    ("select [1, 2] as codes", "DuckDB-only syntax: list literal"),
    ("select {'a': 1} as s", "DuckDB-only syntax: struct literal"),
    ("select a, count(*) from t group by all", "DuckDB-only syntax: GROUP BY ALL"),
    ("select * exclude (a) from t", "DuckDB-only syntax: SELECT * EXCLUDE"),
    ("from t select a", "DuckDB-only syntax: FROM-first query"),
    ("select regexp_replace(s, '[ ]', '', 'g') from t", "regexp_replace with a flag argument"),
    ("select regexp_replace(s, ' +', '') from t", "unanchored pattern"),
    ("select regexp_matches(s, '^a', 'i') from t", "regexp_matches with a flag argument"),
    ("select strftime(d, '%Y') from t", "strftime() is neither standard"),
    ("select list(a) from t", "list() is neither standard"),
    ("select 7 // 2", "DuckDB-only syntax: `//`"),
    ("select #1 from t", "DuckDB-only syntax: positional `#n`"),
    ("select list_transform(l, x -> x + 1) from t", "DuckDB-only syntax: lambda or JSON `->`"),
    ("select left(a, 2) from t", "left() is neither standard"),
    ("select a, b, from t", "DuckDB-only syntax: trailing comma"),
    ("select coalesce(a, b,) from t", "DuckDB-only syntax: trailing comma"),
])
def test_scanner_flags_duckdb_only_sql(tmp_path, sql, expected):
    path = tmp_path / "check.sql"
    path.write_text(sql, encoding="utf-8")
    found = problems(path, documented())
    assert any(expected in p for p in found), found


def test_scanner_passes_standard_sql_and_reads_no_words_in_strings_or_comments(tmp_path):
    path = tmp_path / "check.sql"
    path.write_text(
        "-- strftime(d, '%Y') in a comment\n"
        "with lines as materialized (select a from t)\n"
        "select cast(a as varchar) || ' list_contains(x) ' as message,\n"
        "       position('x' in a) as p, regexp_replace(a, '\\.00$', '') as r,\n"
        "       row_number() over w as n\n"
        "from lines as l cross join unnest(l.codes) as u(code)\n"
        "window w as (order by a)\n"
        "limit 1", encoding="utf-8")
    assert problems(path, documented()) == []
    assert {u.name for u in scan(path.read_text(encoding="utf-8"))[0]} == {
        "materialized", "cast", "position", "regexp_replace", "row_number", "unnest", "limit"}
