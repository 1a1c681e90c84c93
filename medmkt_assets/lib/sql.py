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
