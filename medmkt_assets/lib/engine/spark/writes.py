"""Writes on Spark: CREATE, INSERT, DELETE, UPDATE, ALTER and DROP as new Parquet versions.

Parquet files cannot change in place: DELETE, UPDATE and ALTER TABLE .. ADD COLUMN rewrite the
table as a query into a new version, staged with the session's Tables and published at COMMIT.
INSERT is Spark's own INSERT INTO: into the live table outside a transaction, into the version
this transaction staged when there is one, else into a new version that starts as a copy of the
live one (a failed step must leave the live one as it was; without a table format such as Delta
or Iceberg, a copy is how Parquet keeps that promise).
"""
from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
from sqlglot import exp

from medmkt_assets.lib.engine.spark import dialect
from medmkt_assets.lib.engine.spark.lakehouse import ROWID
from medmkt_assets.lib.engine.spark.queries import SparkQueries
from medmkt_assets.lib.engine.spark.tables import Tables, target_of
from medmkt_assets.lib.engine.sql import quote_ident

STATEMENTS = (exp.Create, exp.Insert, exp.Delete, exp.Update, exp.Drop, exp.Alter)


class SparkWrites:
    """Carries out the statements that write a table (STATEMENTS) on Spark."""

    def __init__(self, spark, tables: Tables, queries: SparkQueries):
        self._spark = spark
        self._tables = tables
        self._queries = queries

    def run(self, tree: exp.Expression) -> None:
        handler = {exp.Create: self._create, exp.Insert: self._insert, exp.Delete: self._delete,
                   exp.Update: self._update, exp.Drop: self._drop, exp.Alter: self._alter}
        handler[next(kind for kind in STATEMENTS if isinstance(tree, kind))](tree)

    def write_frame(self, frame: pd.DataFrame, statement: str) -> None:
        """A CREATE/INSERT statement over a pandas frame the statement sees as `frame`."""
        schema = _spark_schema(frame) if frame.empty else None  # nothing to infer it from
        rows = self._spark.createDataFrame(_spark_ready(frame), schema=schema)
        naive = [c for c in frame.columns if pd.api.types.is_datetime64_dtype(frame[c])
                 and not isinstance(frame[c].dtype, pd.DatetimeTZDtype)]
        if naive:  # Spark Connect types a naive pandas time as TIMESTAMP (local); DuckDB's is without zone
            from pyspark.sql import functions as F

            rows = rows.withColumns({c: F.col(c).cast("timestamp_ntz") for c in naive})
        rows.createOrReplaceTempView("frame")
        try:
            self.run(dialect.parse(statement))
        finally:
            self._spark.catalog.dropTempView("frame")

    def drop_temps(self) -> None:
        """Drop the session's temp tables and delete their files."""
        for table in self._tables.spark_temps:
            self._spark.catalog.dropTempView(table)
        if self._tables.spark_temps:
            self._tables.catalog.remove(self._tables.scratch)
        self._tables.spark_temps.clear()

    # --- one version of a table -------------------------------------------------------------
    def _write(self, table: str, frame, temp: bool) -> None:
        """Write a query's rows as a new version of `table` (or a fresh temp table)."""
        if temp:
            folder = f"{self._tables.scratch}/{table}-{uuid.uuid4().hex[:8]}"
            frame.write.parquet(folder)
            old = self._tables.spark_temps.get(table)
            self._spark.read.parquet(folder).createOrReplaceTempView(table)
            self._tables.spark_temps[table] = folder
            if old is not None:
                self._tables.catalog.remove(old)
            return
        if table.startswith("raw.") and ROWID not in frame.columns:  # an absent source's empty raw table
            from pyspark.sql import functions as F

            frame = frame.withColumn(ROWID, F.monotonically_increasing_id())
        version = self._tables.lake.new_version(table)
        frame.write.parquet(version)
        self._tables.stage(table, version, [(f.name, f.dataType.simpleString()) for f in frame.schema.fields])

    def _current(self, table: str, temp: bool):
        return self._tables.spark_temps.get(table) if temp else self._tables.version(table)

    def _columns(self, table: str, temp: bool) -> list[str]:
        folder = self._current(table, temp)
        if folder is None:
            raise ValueError(f"{table}: the table does not exist")
        return self._spark.read.parquet(folder).columns

    def _rewrite(self, tree: exp.Expression, select: str) -> None:
        """Replace the target with the rows of `select` (DuckDB SQL over the target)."""
        table, temp = _target(tree)
        self._write(table, self._queries.frame(dialect.parse(select)), temp)

    # --- by statement -----------------------------------------------------------------------
    def _create(self, tree: exp.Create) -> None:
        kind = (tree.args.get("kind") or "").upper()
        if kind == "SCHEMA":
            return
        if kind != "TABLE":
            raise NotImplementedError(f"CREATE {kind} is not supported on the Spark engine")
        table, temp = _target(tree)
        if tree.args.get("exists") and self._current(table, temp) is not None:
            return
        if tree.expression is not None:
            self._write(table, self._queries.frame(tree.expression), temp)
            return
        columns = [exp.alias_(exp.cast(exp.null(), col.args["kind"]), col.name, quoted=True)
                   for col in tree.this.expressions if isinstance(col, exp.ColumnDef)]
        self._write(table, self._queries.frame(exp.select(*columns).limit(0)), temp)

    def _insert(self, tree: exp.Insert) -> None:
        table, temp = _target(tree)
        current = self._current(table, temp)
        if current is None:
            raise ValueError(f"INSERT INTO {table}: the table does not exist")
        existing = self._spark.read.parquet(current)
        names = ([c.name for c in tree.this.expressions] if isinstance(tree.this, exp.Schema)
                 else existing.columns)
        if ROWID in existing.columns and ROWID not in names:
            raise NotImplementedError(f"INSERT INTO {table} from Spark: a raw table is loaded from files")
        self._append(table, self._queries.frame(tree.expression).toDF(*names), existing, temp)

    def land(self, table: str, chunks: Iterator[pa.Table], append: bool) -> None:
        """Rows the DuckDB beside Spark made (from source files) into a lakehouse table: a new
        version, or appended (a raw table's load order continued after the rows already there).
        They come in chunks (bounded driver memory); more than one land as one version, all or
        nothing (in this session's transaction, or in one of their own)."""
        from pyspark.sql import functions as F

        first = next(chunks)
        second = next(chunks, None)
        own = second is not None and not self._tables.in_transaction
        offset = None
        if append:
            current = self._tables.version(table)
            if current is None:
                raise ValueError(f"INSERT INTO {table}: the table does not exist")
            if ROWID in self._spark.read.parquet(current).columns:
                offset = self._spark.read.parquet(current).agg(
                    F.coalesce(F.max(ROWID) + 1, F.lit(0))).collect()[0][0]
        if own:
            self._tables.begin()
        try:
            for number, rows in enumerate(itertools.chain([first], [second] if second is not None else [], chunks)):
                frame = self._spark.createDataFrame(rows)
                if offset is not None and ROWID in frame.columns:
                    frame = frame.withColumn(ROWID, F.col(ROWID) + F.lit(offset))
                if number == 0 and not append:
                    self._write(table, frame, temp=False)
                else:
                    self._append(table, frame, self._spark.read.parquet(self._tables.version(table)), temp=False)
        except BaseException:
            if own:
                self._tables.rollback()
            raise
        if own:
            self._tables.commit()

    def _append(self, table: str, rows, existing, temp: bool) -> None:
        """Spark's INSERT INTO (see the module docstring): `rows`' columns by name, in the table's
        columns and types (a missing one NULL)."""
        from pyspark.sql import functions as F

        fields = {f.name: f.dataType for f in existing.schema.fields}
        rows = rows.select(*[(F.col(n) if n in rows.columns else F.lit(None)).cast(fields[n]).alias(n)
                             for n in existing.columns])
        if temp:
            self._write(table, existing.unionByName(rows), temp=True)
        elif self._tables.staged(table):
            rows.write.mode("append").parquet(self._tables.version(table))
        elif not self._tables.in_transaction:
            rows.write.insertInto(self._tables.lake.catalog_name(table))
        else:
            version = self._tables.lake.new_version(table)
            existing.unionByName(rows).write.parquet(version)
            self._tables.stage(table, version)

    def _delete(self, tree: exp.Delete) -> None:
        table, _ = _target(tree)
        where = tree.args.get("where")
        keep = f"WHERE NOT coalesce(({where.this.sql(dialect='duckdb')}), false)" if where else "WHERE false"
        self._rewrite(tree, f"SELECT * FROM {table} {keep}")

    def _update(self, tree: exp.Update) -> None:
        table, temp = _target(tree)
        alias = tree.this.alias or tree.this.name
        columns = self._columns(table, temp)
        sets = {eq.this.name: eq.expression.sql(dialect="duckdb") for eq in tree.expressions}
        where = tree.args.get("where")
        condition = where.this.sql(dialect="duckdb") if where else "true"
        source = tree.args.get("from_") or tree.args.get("from")
        join, hit = "", f"coalesce(({condition}), false)"
        if source is not None:
            other = source.this
            other_alias = other.alias or other.name
            other_sql = exp.Table(this=other.this, db=other.args.get("db")).sql(dialect="duckdb")
            join = (f" LEFT JOIN (SELECT *, true AS _medmkt_hit FROM {other_sql}) {quote_ident(other_alias)} "
                    f"ON {condition}")
            hit = f"{quote_ident(other_alias)}._medmkt_hit IS NOT NULL"
        select = ", ".join(
            f"CASE WHEN {hit} THEN {sets[c]} ELSE {quote_ident(alias)}.{quote_ident(c)} END AS {quote_ident(c)}"
            if c in sets else f"{quote_ident(alias)}.{quote_ident(c)}" for c in columns)
        self._rewrite(tree, f"SELECT {select} FROM {table} {quote_ident(alias)}{join}")

    def _alter(self, tree: exp.Alter) -> None:
        table, temp = _target(tree)
        columns = self._columns(table, temp)
        added = []
        for action in tree.args.get("actions") or []:
            if not isinstance(action, exp.ColumnDef):
                raise NotImplementedError(f"ALTER TABLE {table}: only ADD COLUMN is supported on Spark")
            if action.name in columns:
                if action.args.get("exists"):
                    continue
                raise ValueError(f"ALTER TABLE {table}: column {action.name} exists")
            added.append(f"CAST(NULL AS {action.args['kind'].sql(dialect='duckdb')}) AS {quote_ident(action.name)}")
        if added:
            self._rewrite(tree, f"SELECT *, {', '.join(added)} FROM {table}")

    def _drop(self, tree: exp.Drop) -> None:
        table, temp = _target(tree)
        if temp:
            folder = self._tables.spark_temps.pop(table, None)
            if folder is not None:
                self._spark.catalog.dropTempView(table)
                self._tables.catalog.remove(folder)
            elif not tree.args.get("exists"):
                raise ValueError(f"DROP TABLE {table}: no such temp table")
            return
        if self._tables.version(table) is None and not tree.args.get("exists"):
            raise ValueError(f"DROP TABLE {table}: no such table")
        self._tables.stage(table, None)


def _target(tree: exp.Expression) -> tuple[str, bool]:
    """(table name, is a temp table) of a statement's target."""
    target = target_of(tree)
    return dialect.table_name(target), not target.db


def _spark_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns Spark cannot type from pandas (all-null objects) as text, like DuckDB's NULL VARCHAR."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object and frame[column].isna().all():
            frame[column] = frame[column].astype("string")
    return frame


def _spark_schema(frame: pd.DataFrame) -> str:
    """A Spark schema from pandas dtypes, for an empty frame (text where pandas knows no better)."""
    def kind(dtype) -> str:
        if pd.api.types.is_bool_dtype(dtype):
            return "boolean"
        if pd.api.types.is_integer_dtype(dtype):
            return "bigint"
        if pd.api.types.is_float_dtype(dtype):
            return "double"
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return "timestamp_ntz"
        return "string"
    return ", ".join(f"`{column}` {kind(dtype)}" for column, dtype in frame.dtypes.items())
