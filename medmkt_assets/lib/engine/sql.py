"""Quoting for SQL written as text: identifiers, literals and value lists, escaped the same way everywhere."""
from __future__ import annotations

from typing import Iterable


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values: Iterable[object]) -> str:
    """`'a', 'b'` for an IN (...) list."""
    return ", ".join(sql_literal(v) for v in values)


def stable_hash_sql(*exprs: str) -> str:
    """A non-negative BIGINT hash of the expressions' text, the same on every engine.

    DuckDB's hash() is engine-internal (Spark's differs), so a sample or a holdout drawn with it
    would change with the engine: this takes the first 15 hex digits of the MD5 of the values
    joined by '|' (lib.engine.spark.dialect translates the hex cast for Spark).
    """
    text = " || '|' || ".join(f"coalesce(CAST({e} AS VARCHAR), '')" for e in exprs)
    return f"CAST(('0x' || left(md5({text}), 15)) AS BIGINT)"
