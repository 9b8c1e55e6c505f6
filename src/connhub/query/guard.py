"""The first of two locks on read-only SQL: parse in the target's dialect, then judge the AST.

``check(sql, dialect)`` returns a :class:`CheckedQuery` or raises ``QueryRefused`` with one of
these codes:

``parse_error``
    sqlglot cannot parse it (we never run what we could not read);
``multiple_statements``
    more than one statement (``SELECT 1; CREATE ...``, ``COMMIT; INSERT ...``);
``statement_not_read_only``
    the root is not a query/``SHOW``/``DESCRIBE``/plain ``EXPLAIN``, or a write, lock,
    ``SELECT ... INTO``, ``EXPLAIN ANALYZE`` or opaque command sits anywhere in the tree;
``denied_function``
    a function from :mod:`connhub.query.policy` is called anywhere (the message names it);
``unsupported_syntax``
    text the engine reads differently from the parser: MySQL/MariaDB executable comments
    (``/*! ... */``, ``/*M! ... */``) and PostgreSQL Unicode-escaped identifiers
    (``U&"pg_sl\\0065ep"``), both known ways to hide a name from a checker.

The database then enforces the same thing a second time (read-only transaction, statement
timeout; see ``runner.py``): the guard exists to give a clear 400 *before* anything runs and
to stop what a read-only transaction cannot (functions acting outside it).

What runs is the caller's own text, cut after its last token (trailing ``;`` and comments
dropped), never sqlglot's re-rendering, whose output may differ from the input in meaning.

``query_hash`` is the SHA-256 of sqlglot's normalised rendering of the statement
(``sql(dialect, normalize=True, comments=False)``: unquoted identifiers case-folded, keywords
upper-cased, whitespace and comments gone), so the same query typed differently hashes alike.
``table_refs`` are the ``exp.Table`` nodes of the tree that are not CTE names or table
functions; ``schema`` is the qualifier as written (``None`` when unqualified).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from connhub.errors import QueryRefused
from connhub.query import policy

# sqlglot warns with the statement text ("... contains unsupported syntax"): user data.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

PARSE_ERROR = "parse_error"
MULTIPLE_STATEMENTS = "multiple_statements"
NOT_READ_ONLY = "statement_not_read_only"
DENIED_FUNCTION = "denied_function"
UNSUPPORTED_SYNTAX = "unsupported_syntax"

_ROOTS: tuple[type[exp.Expr], ...] = (exp.Query, exp.Values)
_EXPLAIN_ANALYZE = frozenset({"ANALYZE", "ANALYSE"})
_MYSQL_EXECUTABLE_COMMENT = re.compile(r"/\*M?!")
_MAX_MESSAGE = 200


@dataclass(frozen=True)
class TableRef:
    schema: str | None
    table: str

    def wire(self) -> dict[str, str | None]:
        return {"schema": self.schema, "table": self.table}


@dataclass(frozen=True)
class CheckedQuery:
    """A statement the guard accepted: what to run, how, and what it reads."""

    sql: str  # the caller's text, trimmed after its last token
    dialect: str
    kind: str  # "select", "show", "describe" or "explain"
    query_hash: str
    table_refs: tuple[TableRef, ...]


def check(sql: str, dialect: str) -> CheckedQuery:
    """Accept one read-only statement in ``dialect`` or raise ``QueryRefused``.

    The verdict depends on nothing but the text and the dialect, so the last few hundred are
    kept: a dashboard re-running its queries does not pay for parsing each time.
    """
    verdict = _cached_check(sql, dialect)
    if isinstance(verdict, CheckedQuery):
        return verdict
    code, message = verdict
    raise QueryRefused(message, code=code)


@lru_cache(maxsize=512)
def _cached_check(sql: str, dialect: str) -> CheckedQuery | tuple[str, str]:
    try:
        return _check(sql, dialect)
    except QueryRefused as exc:
        return exc.code, exc.message


def _check(sql: str, dialect: str) -> CheckedQuery:
    tokens = _tokenize(sql, dialect)
    _check_lexical(sql, tokens, dialect)
    trees = _parse(sql, dialect)
    if len(trees) > 1:
        raise QueryRefused("Only one statement may be run at a time", code=MULTIPLE_STATEMENTS)
    tree = trees[0]
    refs: tuple[TableRef, ...] = ()
    if isinstance(tree, exp.Command):
        kind, end, explained = _check_command(tree, tokens, sql, dialect)
        if explained is not None:
            refs = explained.table_refs
    else:
        kind = _classify_root(tree)
        _walk(tree, dialect)
        end = _last_token(tokens).end + 1
        refs = table_refs(tree)
    return CheckedQuery(
        sql=sql[:end],
        dialect=dialect,
        kind=kind,
        query_hash=query_hash(tree, dialect),
        table_refs=refs,
    )


def query_hash(tree: exp.Expr, dialect: str) -> str:
    normalised = tree.sql(dialect=dialect, normalize=True, comments=False)
    return hashlib.sha256(normalised.encode()).hexdigest()


def table_refs(tree: exp.Expr) -> tuple[TableRef, ...]:
    """Tables read by the statement, in order of appearance, without CTE names."""
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found: list[tuple[int, TableRef]] = []
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # table functions (generate_series(...)) and the like
        schema = table.db or None
        if schema is None and table.name.lower() in ctes:
            continue
        start = table.this.meta.get("start")
        found.append((start if isinstance(start, int) else 1 << 62, TableRef(schema, table.name)))
    found.sort(key=lambda item: item[0])  # the parser keeps WITH last; the text order is clearer
    return tuple(dict.fromkeys(ref for _, ref in found))


# --- lexical checks ---------------------------------------------------------------------------


def _tokenize(sql: str, dialect: str) -> list[Token]:
    try:
        tokens = sqlglot.tokenize(sql, read=dialect)
    except (TokenError, ParseError) as exc:
        raise _parse_error(exc) from None
    if not any(t.token_type != TokenType.SEMICOLON for t in tokens):
        raise QueryRefused("The statement is empty", code=PARSE_ERROR)
    return tokens


def _last_token(tokens: list[Token]) -> Token:
    return next(t for t in reversed(tokens) if t.token_type != TokenType.SEMICOLON)


def _gaps(sql: str, tokens: list[Token]) -> list[str]:
    """The text between tokens: whitespace and comments only (strings are tokens)."""
    gaps, cursor = [], 0
    for token in tokens:
        gaps.append(sql[cursor : token.start])
        cursor = token.end + 1
    gaps.append(sql[cursor:])
    return gaps


def _check_lexical(sql: str, tokens: list[Token], dialect: str) -> None:
    if dialect == "mysql" and any(_MYSQL_EXECUTABLE_COMMENT.search(g) for g in _gaps(sql, tokens)):
        raise QueryRefused(
            "Executable comments (/*! ... */) are not allowed: MySQL runs their content",
            code=UNSUPPORTED_SYNTAX,
        )
    if dialect == "postgres":
        for first, amp, third in zip(tokens, tokens[1:], tokens[2:], strict=False):
            if (
                first.text.lower() == "u"
                and amp.token_type == TokenType.AMP
                and third.token_type == TokenType.IDENTIFIER
                and first.end + 1 == amp.start
                and amp.end + 1 == third.start
            ):
                raise QueryRefused(
                    'Unicode-escaped identifiers (U&"...") are not allowed', code=UNSUPPORTED_SYNTAX
                )


# --- parsing and the tree walk ----------------------------------------------------------------


def _parse(sql: str, dialect: str) -> list[exp.Expr]:
    try:
        trees = sqlglot.parse(sql, read=dialect)
    except (ParseError, TokenError) as exc:
        raise _parse_error(exc) from None
    # A lone ";" or a comment after the last ";" comes back as an empty Semicolon node.
    statements = [t for t in trees if t is not None and not isinstance(t, exp.Semicolon)]
    if not statements:
        raise QueryRefused("The statement is empty", code=PARSE_ERROR)
    return statements


def _classify_root(tree: exp.Expr) -> str:
    if isinstance(tree, _ROOTS):
        return "select"
    if isinstance(tree, exp.Show):
        return "show"
    if isinstance(tree, exp.Describe):
        style = str(tree.args.get("style") or "").upper()
        if style in _EXPLAIN_ANALYZE:
            raise _explain_analyze()
        if tree.this is not None and not isinstance(tree.this, (*_ROOTS, exp.Table, exp.Schema)):
            raise QueryRefused("Only queries may be described", code=NOT_READ_ONLY)
        return "describe"
    raise _not_read_only(tree)


def _not_read_only(tree: exp.Expr) -> QueryRefused:
    return QueryRefused(
        "Only read-only statements (SELECT, WITH ... SELECT, SHOW, DESCRIBE, EXPLAIN) may be "
        f"run; got {_describe(tree)}",
        code=NOT_READ_ONLY,
    )


def _check_command(
    tree: exp.Command, tokens: list[Token], sql: str, dialect: str
) -> tuple[str, int, CheckedQuery | None]:
    """PostgreSQL ``SHOW`` and ``EXPLAIN``, which sqlglot keeps as opaque commands.

    The tokenizer swallows a command's text whole, so the rest is tokenized again here and
    judged token by token (``EXPLAIN``'s query goes through :func:`check` itself). Returns the
    kind, where the statement's text ends and, for ``EXPLAIN``, the explained query.
    """
    keyword = str(tree.this or "").upper()
    if keyword not in ("SHOW", "EXPLAIN") or (keyword == "SHOW" and dialect != "postgres"):
        raise _not_read_only(tree)
    offset = tokens[0].end + 1
    rest = _tokenize(sql[offset:], dialect)
    end = offset + _last_token(rest).end + 1
    if keyword == "SHOW":
        _check_pg_show(rest)
        return "show", end, None
    return "explain", end, _check_explain(rest, sql[offset:], dialect)


def _check_pg_show(tokens: list[Token]) -> None:
    """``SHOW name`` / ``SHOW ALL``: nothing but names after the keyword."""
    rest = [t for t in tokens if t.token_type != TokenType.SEMICOLON]
    allowed = {TokenType.VAR, TokenType.ALL, TokenType.DOT, TokenType.IDENTIFIER}
    if not rest or any(t.token_type not in allowed for t in rest):
        raise QueryRefused("SHOW takes a setting name or ALL", code=NOT_READ_ONLY)


def _explain_analyze() -> QueryRefused:
    return QueryRefused("EXPLAIN ANALYZE runs the statement; use EXPLAIN", code=NOT_READ_ONLY)


def _check_explain(tokens: list[Token], sql: str, dialect: str) -> CheckedQuery:
    """Plain ``EXPLAIN [VERBOSE] [(options)] <query>``; the query is checked like any other."""
    i = 0
    if tokens and tokens[0].token_type == TokenType.L_PAREN:
        depth = 0
        while i < len(tokens):
            token = tokens[i]
            if token.text.upper() in _EXPLAIN_ANALYZE:
                raise _explain_analyze()
            depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(token.token_type, 0)
            i += 1
            if depth == 0:
                break
    while i < len(tokens) and tokens[i].text.upper() in (*_EXPLAIN_ANALYZE, "VERBOSE"):
        if tokens[i].text.upper() in _EXPLAIN_ANALYZE:
            raise _explain_analyze()
        i += 1
    if i >= len(tokens) or tokens[i].token_type == TokenType.SEMICOLON:
        raise QueryRefused("EXPLAIN needs a query", code=NOT_READ_ONLY)
    inner = check(sql[tokens[i].start :], dialect)
    if inner.kind != "select":
        raise QueryRefused("Only queries may be explained", code=NOT_READ_ONLY)
    return inner


def _walk(tree: exp.Expr, dialect: str) -> None:
    for node in tree.walk():
        if isinstance(node, policy.DENIED_NODES):
            raise QueryRefused(
                f"Only read-only statements may be run; found {_describe(node)}",
                code=NOT_READ_ONLY,
            )
        if isinstance(node, exp.Func):
            for name in _function_names(node):
                if policy.denied_function(name, dialect):
                    raise QueryRefused(f"Function {name}() is not allowed", code=DENIED_FUNCTION)


def _function_names(node: exp.Func) -> set[str]:
    """The names a call may be spelled with, lower case and unqualified."""
    if isinstance(node, exp.Anonymous):
        return {str(node.name).lower()}
    names = {node.sql_name().lower()}
    names.update(str(n).lower() for n in getattr(type(node), "_sql_names", ()) or ())
    return names


_DESCRIPTIONS: dict[str, str] = {
    "Into": "SELECT ... INTO (it writes a table or variables)",
    "Lock": "a row lock (FOR UPDATE / FOR SHARE)",
}


def _describe(node: exp.Expr) -> str:
    name = type(node).__name__
    if name in _DESCRIPTIONS:
        return _DESCRIPTIONS[name]
    if isinstance(node, exp.Command):
        return f"{str(node.this).upper()} statement"
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).upper()
    return f"{words} statement" if words else "a statement"


def _parse_error(exc: Exception) -> QueryRefused:
    return QueryRefused(f"Could not parse the statement: {_short(exc)}", code=PARSE_ERROR)


def _short(exc: Exception) -> str:
    """One line without sqlglot's ANSI underlining (the text may hold user data: keep it short)."""
    errors = getattr(exc, "errors", None)
    if errors:
        first = errors[0]
        text = f"{first.get('description')} (line {first.get('line')}, column {first.get('col')})"
    else:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."
