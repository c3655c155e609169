"""Select and weight samples with SQL over a dataset's metadata table (``Loader.query/sample_by``).

Queries run in DuckDB over the table ``dataset`` of :mod:`shardstream.loader.metadata` (columns
``index``, ``key``, every scalar field, ``size``). Deep Lake's style without a FROM clause is
accepted: the query is split into tokens (string literals, quoted names and comments are kept
whole), and every ``SELECT`` that has no ``FROM`` of its own gets ``FROM dataset`` inserted just
before the first of its clauses that follow the select list (``WHERE``, ``GROUP``, ``HAVING``,
``WINDOW``, ``QUALIFY``, ``ORDER``, ``LIMIT``, ``OFFSET``, a set operation ``UNION`` /
``INTERSECT`` / ``EXCEPT``, a closing parenthesis or the end). So
``select * where label != 5 order by score limit 10`` and
``(select * where label = 1 limit 3) union all (select * where label = 2 limit 3)`` both work, and
a query that names ``FROM dataset`` itself is left alone. ``==`` works as equality (DuckDB).

The result must have an ``index`` column (``select *`` and ``select index ...`` do); its values, in
the order the query returns them, are the selected sample indices. Without ``ORDER BY`` a plain
filter keeps sample order; set operations (``UNION``) return an order DuckDB chooses.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import QueryError, WeightsError
from ..order.samplers.seeds import sample_rng
from ..read.reader import Reader
from .metadata import TABLE_NAME, MetadataTable, metadata_table

__all__ = [
    "query_indices",
    "sample_by_indices",
    "rewrite_query",
    "weights_expression",
    "expression_weights",
]

Source = Reader | MetadataTable | str | os.PathLike

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<string>'(?:[^']|'')*')
    | (?P<quoted>"(?:[^"]|"")*")
    | (?P<word>[A-Za-z_][A-Za-z_0-9$]*)
    | (?P<cast>::)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_CLAUSE_AFTER_SELECT_LIST = frozenset(
    ["where", "group", "having", "window", "qualify", "order", "limit", "offset"]
    + ["union", "intersect", "except"]
)


def query_indices(source: Source, sql: str) -> np.ndarray:
    """Indices of the samples an SQL query selects, in the order the query returns them.

    Args:
        source: a Reader, a data file or manifest path, or a :class:`MetadataTable`.
        sql: a DuckDB query over the table ``dataset``; the FROM clause may be left out (see the
            module docstring), e.g. ``"select * where label != 5"``.

    Returns:
        int64 array of sample indices (repeats possible, e.g. with ``UNION ALL``).

    Raises:
        QueryError: ``sql`` is not a string, DuckDB rejects it (the message holds the SQL and
            DuckDB's message), or the result has no ``index`` column or NULL/out-of-range indices.
        MissingDependencyError: duckdb is not installed.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise QueryError(sql, "a query must be a non-empty SQL string")
    table = _table(source)
    _check_single_query(sql)
    rewritten = rewrite_query(sql)
    try:
        relation = table.connection.sql(rewritten)
        names = relation.columns
        if "index" not in names:
            raise QueryError(
                sql, f"the result has no 'index' column (columns: {names}); select * or index"
            )
        column = relation.project('"index"').fetchnumpy()["index"]
    except QueryError:
        raise
    except Exception as e:
        raise QueryError(sql, f"{type(e).__name__}: {e}") from e
    if np.ma.is_masked(column) or column.dtype.kind not in "iu":
        raise QueryError(sql, "the 'index' column holds NULLs or non-integers")
    out = np.asarray(column, dtype=np.int64)
    if out.size and (out.min() < 0 or out.max() >= len(table)):
        raise QueryError(sql, f"'index' values out of range for {len(table)} samples")
    return out


def sample_by_indices(
    source: Source,
    weights: str | Sequence[float] | np.ndarray,
    replace: bool = True,
    size: int | None = None,
    seed: int = 0,
    epoch: int = 0,
) -> np.ndarray:
    """Draw sample indices with probability proportional to per-sample weights.

    Args:
        source: a Reader, a data file or manifest path, or a :class:`MetadataTable` (only opened
            when ``weights`` is an SQL expression; a sequence needs only the sample count).
        weights: one non-negative weight per sample, or an SQL expression evaluated per row of
            the metadata table: a column name (``"score"``), any expression
            (``"CASE WHEN label = 1 THEN 10 ELSE 1 END"``), or Deep Lake's
            ``max_weight(cond: w, ...)`` / ``sum_weight(cond: w, ...)`` (see
            :func:`weights_expression`). NULL weights count as 0.
        replace: draw with replacement (repeats allowed).
        size: how many indices to draw; default the number of samples.
        seed: seed of the draw, in ``[0, 2**32)``.
        epoch: epoch of the draw, in ``[0, 2**32)`` (a new epoch draws anew).

    Returns:
        int64 array of ``size`` indices. The stream is ``sample_rng(seed, epoch, 0)`` of
        :mod:`shardstream.order.samplers.seeds`, so equal arguments give equal results.

    Raises:
        WeightsError: a weight is negative, NaN or infinite, the count differs from the number
            of samples, all weights are 0, ``size`` is negative, or ``replace=False`` asks for
            more indices than there are positive weights.
        QueryError: DuckDB rejects the expression.
        ConfigError: ``seed`` or ``epoch`` out of range.
    """
    if isinstance(weights, str):
        table = _table(source)
        n = len(table)
        w = expression_weights(table, weights)
    else:
        n = len(source) if not isinstance(source, (str, os.PathLike)) else len(_table(source))
        try:
            w = np.asarray(weights, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise WeightsError(f"weights must be numbers: {e}") from e
        if w.ndim != 1:
            raise WeightsError(f"weights must be 1-dimensional, got shape {w.shape}")
        if len(w) != n:
            raise WeightsError(f"got {len(w)} weights for {n} samples")
    bad = ~np.isfinite(w)
    if bad.any():
        raise WeightsError(f"weight of sample {int(np.argmax(bad))} is {w[bad][0]}")
    if (w < 0).any():
        first = int(np.argmax(w < 0))
        raise WeightsError(f"weight of sample {first} is negative ({w[first]})")
    positive = int(np.count_nonzero(w))
    if positive == 0:
        raise WeightsError(f"all {n} weights are 0: nothing to sample")
    if size is None:
        size = n
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise WeightsError(f"size must be a non-negative integer, got {size!r}")
    if not replace and size > positive:
        raise WeightsError(
            f"cannot draw {size} samples without replacement: only {positive} have weight > 0"
        )
    rng = sample_rng(seed, epoch, 0)
    p = w / w.sum()
    return rng.choice(n, size=int(size), replace=bool(replace), p=p).astype(np.int64)


def rewrite_query(sql: str) -> str:
    """``sql`` with ``FROM dataset`` inserted into every SELECT that has no FROM clause.

    Args:
        sql: the query as the user wrote it.

    Returns:
        The query DuckDB runs (unchanged if every SELECT has its FROM).
    """
    tokens = [m for m in _TOKEN.finditer(sql)]
    inserts: list[int] = []  # character positions where " FROM dataset " goes
    # stack of open SELECTs: [paren depth, saw FROM]
    selects: list[list[Any]] = []
    depth = 0

    def close(upto_depth: int, at: int) -> None:
        while selects and selects[-1][0] >= upto_depth:
            level, seen = selects.pop()
            if not seen:
                inserts.append(at)

    for m in tokens:
        kind = m.lastgroup
        text = m.group()
        if kind == "other" and text == "(":
            depth += 1
        elif kind == "other" and text == ")":
            close(depth, m.start())
            depth -= 1
        elif kind == "other" and text == ";":
            close(0, m.start())
        elif kind == "word":
            word = text.lower()
            if word == "select":
                selects.append([depth, False])
            elif word == "from" and selects and selects[-1][0] == depth:
                selects[-1][1] = True
            elif word in _CLAUSE_AFTER_SELECT_LIST and selects and selects[-1][0] == depth:
                level, seen = selects[-1]
                if not seen:
                    inserts.append(m.start())
                    selects[-1][1] = True
                if word in ("union", "intersect", "except"):
                    selects.pop()
    close(0, len(sql))
    for at in sorted(inserts, reverse=True):
        sql = f"{sql[:at]} FROM {TABLE_NAME} {sql[at:]}"
    return sql


def weights_expression(expression: str) -> str:
    """The SQL for a weight expression, with Deep Lake's weight functions expanded.

    ``max_weight(c1: w1, c2: w2, ...)`` becomes the largest ``w`` among the conditions ``c`` a row
    satisfies (0 if none); ``sum_weight(...)`` their sum. Anything else is returned unchanged.

    Args:
        expression: the per-row weight expression.

    Returns:
        Plain SQL.

    Raises:
        QueryError: a weight function whose argument is not ``condition: weight``.
    """
    match = re.match(r"\s*(max_weight|sum_weight)\s*\((.*)\)\s*$", expression, re.I | re.S)
    if not match:
        return expression
    function, body = match.group(1).lower(), match.group(2)
    cases = []
    for part in _split_top_level(body, ","):
        pieces = _split_top_level(part, ":")
        if len(pieces) != 2 or not pieces[0].strip() or not pieces[1].strip():
            raise QueryError(
                expression, f"{function} arguments are 'condition: weight', got {part!r}"
            )
        condition, weight = pieces
        cases.append(f"CASE WHEN ({condition}) THEN ({weight}) ELSE 0 END")
    if function == "max_weight":
        return f"GREATEST(0, {', '.join(cases)})"
    return " + ".join(cases)


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside parentheses, strings and quoted names (``::`` kept)."""
    parts, start, depth = [], 0, 0
    for m in _TOKEN.finditer(text):
        token = m.group()
        if m.lastgroup != "other":
            continue
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif token == separator and depth == 0:
            parts.append(text[start : m.start()])
            start = m.end()
    parts.append(text[start:])
    return parts


def _check_single_query(sql: str) -> None:
    """Refuse anything but one read-only query (a statement could change the table)."""
    words = [m for m in _TOKEN.finditer(sql) if m.lastgroup not in ("space", "comment")]
    first = words[0].group().lower() if words else ""
    if first not in ("select", "with", "from", "values", "table", "("):
        raise QueryError(sql, "only a query (SELECT ...) is allowed")
    semicolons = [i for i, m in enumerate(words) if m.group() == ";"]
    if semicolons and semicolons[0] != len(words) - 1:
        raise QueryError(sql, "only one statement is allowed")


def expression_weights(source: Source, expression: str) -> np.ndarray:
    """Per-sample weights (float64, in sample order) of an SQL expression over the metadata.

    Args:
        source: a Reader, a data file or manifest path, or a :class:`MetadataTable`.
        expression: as for :func:`sample_by_indices` (NULL counts as 0).

    Raises:
        QueryError: DuckDB rejects the expression.
    """
    table = _table(source)
    sql = weights_expression(expression)
    try:
        column = table.connection.execute(
            f"SELECT coalesce(CAST(({sql}) AS DOUBLE), 0) AS w FROM {TABLE_NAME} ORDER BY index"
        ).fetchnumpy()["w"]
    except Exception as e:
        raise QueryError(expression, f"{type(e).__name__}: {e}") from e
    return np.asarray(column, dtype=np.float64)


def _table(source: Source) -> MetadataTable:
    if isinstance(source, MetadataTable):
        return source
    return metadata_table(source)
