"""DuckDB SQL to Spark SQL: the pipeline's SQL is written once, in DuckDB's dialect.

sqlglot transpiles most of it. What it cannot translate faithfully has an engine-specific
variant here, next to the rule that picks it, and `test_spark_sql.py` proves the two engines
agree on it:

- parameters (`?`, `$name`) and `getvariable('name')` become literals (Spark Connect and
  classic Spark bind parameters differently; literals behave the same on both);
- `try_strptime(text, '%Y-%m-%d')` becomes `try_to_timestamp(text, 'yyyy-MM-dd')`;
- the stable hash of lib.engine.sql.stable_hash_sql (`CAST('0x' || left(md5(..), n) AS BIGINT)`)
  becomes `conv(left(md5(..), n), 16, 10)`: DuckDB reads hex literals, Spark does not;
- `hash(..)` (duplicate detection only, never stored) stays: Spark's own `hash`;
- `date_diff('day', a, b)` counts midnights crossed (Spark's counts 24-hour spans);
- `list(.. ORDER BY ..)` and `string_agg(.. ORDER BY ..)` sort what Spark collects unordered;
- `x / 0` is ±inf or NaN as in DuckDB, where Spark would give NULL;
- `avg(..)` and `row_number()`/`rank()` keep DuckDB's result types (DOUBLE, BIGINT);
- `UNION BY NAME` (lib.engine.spark.session: DataFrame.unionByName).

Table references are rewritten by the caller (`rename_tables`), because where a table lives
is the session's business, not the dialect's.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Callable

import sqlglot
from sqlglot import exp


def parse(sql: str) -> exp.Expression:
    """One DuckDB statement as a syntax tree."""
    return sqlglot.parse_one(sql, read="duckdb")


def literal(value: Any) -> exp.Expression:
    """A Python value as a SQL literal (what a bound parameter would have been)."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float, Decimal)):
        return exp.Literal.number(value)
    if isinstance(value, (list, tuple)):
        return exp.Array(expressions=[literal(v) for v in value])
    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    return exp.Literal.string(str(value))


def bind(tree: exp.Expression, params: Any, variables: dict[str, Any]) -> exp.Expression:
    """Replace `?` / `$name` placeholders and getvariable('name') with literals."""
    positional = iter(params) if isinstance(params, (list, tuple)) else None
    named = params if isinstance(params, dict) else {}

    def substitute(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder):
            name = node.name
            if name and name != "?":
                if name not in named:
                    raise ValueError(f"no value bound for ${name}")
                return literal(named[name])
            if positional is None:
                raise ValueError("a ? placeholder but no positional parameters")
            return literal(next(positional))
        if isinstance(node, exp.Anonymous) and node.name.lower() == "getvariable":
            return literal(variables.get(node.expressions[0].name))
        return node

    return tree.transform(substitute)


def _is_hex_cast(node: exp.Expression) -> exp.Expression | None:
    """The hex digits of `CAST('0x' || digits AS <integer>)`, else None."""
    if not (isinstance(node, exp.Cast) and node.to.is_type(*exp.DataType.INTEGER_TYPES)):
        return None
    inner = node.this.unnest()
    if isinstance(inner, exp.DPipe) and isinstance(inner.this, exp.Literal) and inner.this.this.lower() == "0x":
        return inner.expression
    return None


def _spark_variant(node: exp.Expression) -> exp.Expression:
    """The engine-specific variants listed in the module docstring."""
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name in ("try_strptime", "strptime") and len(node.expressions) == 2:
            text, fmt = node.expressions
            spark_fmt = _spark_time_format(fmt.name)
            function = "try_to_timestamp" if name == "try_strptime" else "to_timestamp"
            return exp.Anonymous(this=function, expressions=[text, exp.Literal.string(spark_fmt)])
        if name == "now":
            return exp.CurrentTimestamp()
    if isinstance(node, exp.DateDiff) and node.args.get("date_part_boundary") and node.unit \
            and node.unit.name.upper() == "DAY":
        # DuckDB counts midnights crossed; Spark's DATEDIFF(DAY, ..) counts whole 24-hour spans
        return exp.Anonymous(this="datediff", expressions=[
            exp.cast(node.this, "DATE"), exp.cast(node.expression, "DATE")])
    if isinstance(node, exp.Avg) and not isinstance(node.this, exp.Distinct):
        return exp.Avg(this=exp.cast(node.this, "DOUBLE"))  # DuckDB's avg is DOUBLE, Spark's avg of a DECIMAL is not
    if isinstance(node, exp.Window) and isinstance(node.this, (exp.RowNumber, exp.Rank, exp.DenseRank)):
        return exp.cast(node.copy(), "BIGINT")  # BIGINT in DuckDB, INT in Spark
    if isinstance(node, exp.Div):
        return _ieee_division(node)
    if isinstance(node, (exp.ArrayAgg, exp.GroupConcat)) and isinstance(node.this, exp.Order):
        return _ordered_aggregate(node)
    digits = _is_hex_cast(node)
    if digits is not None:
        return exp.cast(exp.Anonymous(this="conv", expressions=[
            digits, exp.Literal.number(16), exp.Literal.number(10)]), node.to)
    return node


def _ieee_division(node: exp.Div) -> exp.Expression:
    """x / 0 is ±inf or NaN in DuckDB (IEEE), NULL in Spark: spelled out so both agree."""
    a, b = to_spark(node.this), to_spark(node.expression)
    return sqlglot.parse_one(
        f"CASE WHEN ({b}) = 0 THEN CASE WHEN ({a}) > 0 THEN double('inf') WHEN ({a}) < 0 THEN double('-inf') "
        f"WHEN ({a}) = 0 THEN double('NaN') END ELSE ({a}) / ({b}) END", read="spark")


def _ordered_aggregate(node: exp.ArrayAgg | exp.GroupConcat) -> exp.Expression:
    """list(.. ORDER BY ..) / string_agg(.. ORDER BY ..): Spark's collect_list keeps no order, so
    the values are collected with their sort key, sorted, then stripped of it."""
    order = node.this
    value, distinct = order.this, isinstance(order.this, exp.Distinct)
    if distinct:
        value = value.expressions[0]
    (key,) = order.expressions
    ascending = not key.args.get("desc")
    if distinct:
        if key.this != value:
            raise NotImplementedError("an aggregate of DISTINCT values ordered by another column")
        values = f"array_sort(collect_set({to_spark(value)}))"
        values = values if ascending else f"reverse({values})"
    else:
        before, after = ("-1", "1") if ascending else ("1", "-1")
        values = (f"transform(array_sort(collect_list(named_struct('k', {to_spark(key.this)}, 'v', {to_spark(value)})), "
                  f"(l, r) -> CASE WHEN l.k < r.k THEN {before} WHEN l.k > r.k THEN {after} ELSE 0 END), x -> x.v)")
    if isinstance(node, exp.GroupConcat):
        separator = node.args.get("separator")
        values = f"concat_ws({to_spark(separator) if separator is not None else repr(',')}, {values})"
    return sqlglot.parse_one(values, read="spark")


def _spark_time_format(duckdb_format: str) -> str:
    """A strftime format (%Y-%m-%d) as a Spark datetime pattern (yyyy-MM-dd)."""
    parts = {"%Y": "yyyy", "%m": "MM", "%d": "dd", "%H": "HH", "%M": "mm", "%S": "ss", "%y": "yy",
             "%b": "MMM", "%B": "MMMM", "%f": "SSSSSS", "%z": "XX", "%-m": "M", "%-d": "d"}
    out, i = [], 0
    while i < len(duckdb_format):
        two, three = duckdb_format[i:i + 2], duckdb_format[i:i + 3]
        if three in parts:
            out.append(parts[three])
            i += 3
        elif two in parts:
            out.append(parts[two])
            i += 2
        elif duckdb_format[i].isalpha():
            out.append(f"'{duckdb_format[i]}'")
            i += 1
        else:
            out.append(duckdb_format[i])
            i += 1
    return "".join(out)


def rename_tables(tree: exp.Expression, rename: Callable[[exp.Table], str | None]) -> exp.Expression:
    """Point every table reference `rename` knows at a new name, keeping what the query calls it
    (an unaliased `staging.orders` stays addressable as `orders`)."""
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            continue
        target = rename(table)
        if target is None:
            continue
        alias = table.alias or table.name
        table.replace(exp.Table(this=exp.to_identifier(target, quoted=True),
                                alias=exp.TableAlias(this=exp.to_identifier(alias))))
    return tree


def to_spark(tree: exp.Expression) -> str:
    """Spark SQL for a (bound, renamed) DuckDB statement."""
    return tree.transform(_spark_variant).sql(dialect="spark")


def table_name(table: exp.Table) -> str:
    """`schema.name` (or bare `name`) of a table reference."""
    return f"{table.db}.{table.name}" if table.db else table.name

