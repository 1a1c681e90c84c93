"""Queries on Spark: DuckDB SQL over lakehouse tables, as Spark DataFrames and DuckDB-like results."""
from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlglot import exp

from medmkt_assets.lib.engine.spark import dialect
from medmkt_assets.lib.engine.spark.lakehouse import ROWID
from medmkt_assets.lib.engine.spark.tables import Tables

DUCKDB_TYPES = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "smallint": "SMALLINT",
                "tinyint": "TINYINT", "double": "DOUBLE", "float": "FLOAT", "boolean": "BOOLEAN",
                "date": "DATE", "timestamp_ntz": "TIMESTAMP", "timestamp": "TIMESTAMP WITH TIME ZONE",
                "binary": "BLOB", "void": "NULL"}


def duckdb_type(spark_type: str) -> str:
    """A Spark type's simpleString as the DuckDB type name code compares against."""
    if spark_type.startswith("decimal"):
        return spark_type.upper()
    if spark_type.startswith("array<"):
        return duckdb_type(spark_type[6:-1]) + "[]"
    return DUCKDB_TYPES.get(spark_type, spark_type.upper())


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


class SparkResult:
    """A query's result with the DuckDB result methods the pipeline reads."""

    def __init__(self, frame=None, rows: list[tuple] | None = None, columns: list[str] | None = None):
        self._frame, self._rows, self._columns = frame, rows, columns

    def fetchall(self) -> list[tuple]:
        if self._rows is None:
            self._rows = [tuple(row) for row in self._frame.collect()]
        return self._rows

    def fetchone(self) -> tuple | None:
        rows = self.fetchall() if self._rows is not None else [tuple(r) for r in self._frame.take(1)]
        return rows[0] if rows else None

    def fetchdf(self) -> pd.DataFrame:
        if self._frame is None:
            return pd.DataFrame(self._rows, columns=self._columns)
        frame = self._frame.toPandas()
        for field in self._frame.schema.fields:  # as DuckDB hands them to pandas: DECIMAL as float, DATE as datetime
            kind = field.dataType.simpleString()
            if kind.startswith("decimal"):
                frame[field.name] = frame[field.name].map(_plain).astype("float64")
            elif kind == "date":
                frame[field.name] = pd.to_datetime(frame[field.name])
        return frame

    def fetch_arrow_table(self) -> pa.Table:
        return pa.Table.from_pandas(self.fetchdf(), preserve_index=False)


def no_rows() -> SparkResult:
    """The result of a statement that returns nothing."""
    return SparkResult(rows=[], columns=[])


class SparkQueries:
    """Turns a parsed statement into a Spark DataFrame over the versions the session reads."""

    def __init__(self, spark, tables: Tables):
        self._spark = spark
        self._tables = tables
        self._views: dict[str, str] = {}  # Spark temp view -> the version (location) it reads

    def frame(self, tree: exp.Expression):
        """The DataFrame of a query (a SELECT, a UNION, a subquery)."""
        tree = tree.unnest() if isinstance(tree, exp.Subquery) and not tree.alias else tree
        by_name = next((u for u in tree.find_all(exp.Union) if u.args.get("by_name")), None)
        if by_name is None:
            return self._spark.sql(dialect.to_spark(dialect.rename_tables(tree.copy(), self._spark_name)))
        # Spark SQL has no UNION BY NAME: the DataFrame's unionByName (missing columns as NULL)
        frame = self.frame(by_name.this).unionByName(self.frame(by_name.expression), allowMissingColumns=True)
        if by_name.args.get("distinct"):
            frame = frame.distinct()
        view = f"_medmkt_union_{uuid.uuid4().hex[:8]}"
        self.register(view, frame)
        rest = exp.select("*").from_(view)
        for modifier in ("order", "limit", "offset"):
            if by_name.args.get(modifier) is not None:
                rest.set(modifier, by_name.args[modifier])
        if by_name is tree:
            return self.frame(rest)
        tree = tree.copy()
        next(u for u in tree.find_all(exp.Union) if u.args.get("by_name")).replace(exp.paren(rest))
        return self.frame(tree)

    def describe(self, tree: exp.Describe) -> SparkResult:
        """DESCRIBE of a table or a query, with DuckDB's type names (the load order column hidden)."""
        target = tree.this
        if isinstance(target, exp.Table) and not target.db and target.name in self._tables.spark_temps:
            frame = self._spark.table(target.name)
        elif isinstance(target, exp.Table):
            frame = self.frame(exp.select("*").from_(target))
        else:
            frame = self.frame(target)
        rows = [(f.name, duckdb_type(f.dataType.simpleString()), "YES", None, None, None)
                for f in frame.schema.fields if f.name != ROWID]
        return SparkResult(rows=rows, columns=["column_name", "column_type", "null", "key", "default", "extra"])

    def register(self, name: str, frame) -> None:
        """A DataFrame as a temp view later statements can read (dropped with the session)."""
        frame.createOrReplaceTempView(name)
        self._views[name] = name

    def drop_views(self) -> None:
        for view in self._views:
            self._spark.catalog.dropTempView(view)
        self._views.clear()

    def _spark_name(self, table: exp.Table) -> str | None:
        """The Spark temp view a table reference reads (registered on demand), or None to leave it."""
        if not self._tables.is_lake(table):
            return None
        version = self._tables.version(dialect.table_name(table))
        if version is None:
            return None  # Spark then fails with "table or view not found", naming it
        view = f"{table.db}__{table.name}"
        if self._views.get(view) != version:
            self._spark.read.parquet(version).createOrReplaceTempView(view)
            self._views[view] = version
        return view
