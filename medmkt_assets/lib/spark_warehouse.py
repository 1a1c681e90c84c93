"""The warehouse interface (lib.warehouse.Session) on Apache Spark, tables in the lakehouse.

Statements arrive in DuckDB's dialect, exactly as on the embedded engine; each is parsed once
(lib.spark_sql) and carried out by its kind:

- queries run as Spark SQL, transpiled by sqlglot, over the live Parquet version of every table
  they name; `CREATE TABLE .. AS` writes a new version and publishes it (at COMMIT inside a
  transaction, so a failed step leaves the previous tables readable);
- Parquet tables cannot be updated in place, so `INSERT` writes the new rows beside hard links
  to the old files, and `DELETE`, `UPDATE` and `ALTER TABLE .. ADD COLUMN` rewrite the table
  as a query (what Delta Lake would do file by file);
- reading source files (read_csv, read_json, read_parquet of an export) is DuckDB's job on both
  engines: a statement that reads files, or a DuckDB temp table made from them, runs in an
  embedded DuckDB beside Spark (it reads lakehouse tables through their Parquet files), and
  what it writes to the lakehouse lands there as Parquet. Heavy work from staging on never
  touches it.

After every publish the DuckDB views in MEDMKT_WAREHOUSE are refreshed (lib.lakehouse).
"""
from __future__ import annotations

import os
import shutil
import sys
import uuid
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from medmkt_assets.lib import spark_sql
from medmkt_assets.lib.lakehouse import ROWID, SCHEMAS, Lakehouse, refresh_views
from medmkt_assets.lib.sql import quote_ident, sql_literal
from medmkt_assets.lib.warehouse import Session

# Spark settings that make Spark SQL behave like the DuckDB SQL it is translated from.
DUCKDB_COMPATIBLE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",        # DuckDB's TIMESTAMP has no time zone
    "spark.sql.ansi.enabled": "false",                 # x / 0 is NULL, as in DuckDB
    "spark.sql.caseSensitive": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
}



def spark_missing(remote: str = "") -> str | None:
    """Why this machine cannot run the Spark engine (no PySpark; no Java for a local Spark), or None."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        return "PySpark is not installed: `make setup-spark` (pip install -e '.[spark]')"
    if not remote and not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        return "no Java runtime for a local Spark (Debian: apt-get install default-jre-headless)"
    return None


def spark_session(master: str, remote: str = "", driver_memory: str = "4g", partitions: int = 8):
    """The process's SparkSession: Spark Connect when `remote` is set, else a local/cluster master."""
    missing = spark_missing(remote)
    if missing:
        raise RuntimeError(f"MEDMKT_ENGINE=spark: {missing}")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("medmkt")
    if remote:
        builder = builder.remote(remote)
    else:
        builder = builder.master(master).config("spark.driver.memory", driver_memory)
        if master.startswith("local"):  # Python workers (mapInPandas) in this environment, with medmkt
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in {**DUCKDB_COMPATIBLE_CONF, "spark.sql.shuffle.partitions": str(partitions)}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    if not remote:
        session.sparkContext.setLogLevel("ERROR")
    return session


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
        for field in self._frame.schema.fields:  # as DuckDB hands them to pandas: DECIMAL as float, DATE as datetime64
            kind = field.dataType.simpleString()
            if kind.startswith("decimal"):
                frame[field.name] = frame[field.name].map(_plain).astype("float64")
            elif kind == "date":
                frame[field.name] = pd.to_datetime(frame[field.name])
        return frame

    def fetch_arrow_table(self) -> pa.Table:
        return pa.Table.from_pandas(self.fetchdf(), preserve_index=False)


class SparkWarehouseSession(Session):
    """One unit of work on Spark: lib.warehouse.Session's methods (its query_df, query_arrow and
    describe as they are, over this execute)."""

    engine = "spark"

    def __init__(self, spark, lakehouse: Lakehouse, warehouse_file: Path):
        self._spark = spark
        self._lake = lakehouse
        self._warehouse_file = warehouse_file
        self._local = duckdb.connect()          # file reading and DuckDB-only statements
        self._local_temps: set[str] = set()
        self._attached: set[str] = set()
        self._spark_temps: dict[str, Path] = {}
        self._views: dict[str, Path] = {}      # Spark temp view -> the version it reads
        self._pending: dict[str, Path | None] = {}
        self._in_transaction = False
        self._variables: dict[str, Any] = {}
        self._scratch = lakehouse.root / "_scratch" / uuid.uuid4().hex

    # --- the Session interface -------------------------------------------------------------
    def execute(self, sql: str, params: Any = None):
        tree = spark_sql.parse(sql)
        if isinstance(tree, (exp.Attach, exp.Detach, exp.Command, exp.Alias)) or (
                isinstance(tree, exp.Create) and (tree.args.get("kind") or "").upper() in ("MACRO", "FUNCTION")):
            return self._database_command(tree, sql, params)  # as written: an adapter's macro, or a database
        bound = spark_sql.bind(tree, params, self._variables)
        if self._is_local(bound):
            # DuckDB runs its own SQL as written (sqlglot's round trip can change a JSON path or a macro
            # call) unless the statement reads lakehouse or Spark tables, which only the bound, rewritten
            # statement can find
            as_written = None if self._reads_elsewhere(bound) or "getvariable" in sql.lower() else (sql, params)
            return self._run_local(bound, as_written)
        return self._run_spark(bound)

    def dataframe(self, sql: str, params: Any = None):
        """A query's rows as a Spark DataFrame, for models that run in Spark (lib.spark_models)."""
        tree = spark_sql.bind(spark_sql.parse(sql), params, self._variables)
        if self._is_local(tree):
            raise ValueError("a query over source files or DuckDB temp tables has no Spark DataFrame")
        return self._frame(tree)

    def register(self, name: str, frame) -> None:
        """A Spark DataFrame as a temp view later statements can read (closed with the session)."""
        frame.createOrReplaceTempView(name)
        self._views[name] = Path(name)

    def write_frame(self, frame: pd.DataFrame | pa.Table, table: str, append: bool = False,
                    query: str = "SELECT * FROM frame") -> None:
        statement = f"INSERT INTO {table} " if append else f"CREATE OR REPLACE TABLE {table} AS "
        if table.split(".")[0] in self._attached or "." not in table and table in self._local_temps:
            self._local.register("frame", frame)
            try:
                tree = spark_sql.parse(statement + query)
                self._run_local(tree, None if self._reads_elsewhere(tree) else (statement + query, None))
            finally:
                self._local.unregister("frame")
            return
        pandas_frame = frame.to_pandas() if isinstance(frame, pa.Table) else frame
        schema = _spark_schema(pandas_frame) if pandas_frame.empty else None  # nothing to infer it from
        self._spark.createDataFrame(_spark_ready(pandas_frame), schema=schema).createOrReplaceTempView("frame")
        try:
            self._run_spark(spark_sql.parse(statement + query))
        finally:
            self._spark.catalog.dropTempView("frame")

    def table_exists(self, table: str) -> bool:
        return self._version(table) is not None

    def close(self) -> None:
        if self._in_transaction:
            self._rollback()
        for view in list(self._views) + list(self._spark_temps):
            self._spark.catalog.dropTempView(view)
        self._local.close()
        shutil.rmtree(self._scratch, ignore_errors=True)

    @contextmanager
    def transaction(self) -> Iterator["SparkWarehouseSession"]:
        """All-or-nothing: new versions are published at the end, or deleted on failure."""
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            self._rollback()
            raise
        self._commit()

    # --- where a table lives ----------------------------------------------------------------
    def _is_lake(self, table: exp.Table) -> bool:
        return table.db in SCHEMAS and not table.catalog

    def _version(self, table: str) -> Path | None:
        if table in self._pending:
            return self._pending[table]
        return self._lake.current(table)

    def _is_local(self, tree: exp.Expression) -> bool:
        """Statements DuckDB carries out: reading files, DuckDB temp tables, attached databases."""
        if isinstance(tree, (exp.Attach, exp.Detach, exp.Command, exp.Alias)):
            return True
        if isinstance(tree, exp.Create) and tree.expression is None and not _target_of(tree).db \
                and (tree.args.get("kind") or "").upper() == "TABLE":
            return True  # a temp table declared by its columns: an adapter's landing table for file rows
        ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if not isinstance(table.this, exp.Identifier):
                if isinstance(table.this, exp.Func):  # read_csv, read_json, sniff_csv, glob: DuckDB's
                    return True
                continue
            if table.db in self._attached or (not table.db and table.name in self._local_temps
                                               and table.name not in ctes):
                return True
        return False

    # --- DuckDB, beside Spark ---------------------------------------------------------------
    def _local_source(self, table: exp.Table) -> str | None:
        """How DuckDB reads a lakehouse table or a Spark temp table: its Parquet files."""
        if self._is_lake(table):
            version = self._version(spark_sql.table_name(table))
            if version is None:
                raise duckdb.CatalogException(f"Table {spark_sql.table_name(table)} does not exist")
        elif not table.db and table.name in self._spark_temps:
            version = self._spark_temps[table.name]
        else:
            return None
        return f"read_parquet({sql_literal(str(version / '*.parquet'))})"

    def _local_sql(self, tree: exp.Expression) -> str:
        tree = tree.copy()
        target = _target_of(tree) if isinstance(tree, (exp.Insert, exp.Create, exp.Drop)) else None
        for table in list(tree.find_all(exp.Table)):
            if table is target:
                continue
            if isinstance(table.this, exp.Identifier) and (source := self._local_source(table)):
                alias = table.alias or table.name
                table.replace(exp.Table(this=exp.maybe_parse(source, dialect="duckdb"),
                                        alias=exp.TableAlias(this=exp.to_identifier(alias))))
        return tree.sql(dialect="duckdb")

    def _database_command(self, tree: exp.Expression, sql: str, params: Any):
        """ATTACH, DETACH, CHECKPOINT (DuckDB databases beside the lakehouse: the insight snapshot) and
        CREATE MACRO (the FHIR adapter's, used by its file-reading statements), run in DuckDB as written."""
        if isinstance(tree, exp.Attach):
            self._attached.add(tree.this.alias if isinstance(tree.this, exp.Alias) else tree.this.name)
        if isinstance(tree, exp.Detach):
            self._attached.discard(tree.this.name)
        return self._local.execute(sql, params) if params is not None else self._local.execute(sql)

    def _reads_elsewhere(self, tree: exp.Expression) -> bool:
        """Whether a statement reads a lakehouse table or a Spark temp table (not counting its target)."""
        target = _target_of(tree) if isinstance(tree, (exp.Insert, exp.Create, exp.Drop)) else None
        return any(table is not target and isinstance(table.this, exp.Identifier)
                   and (self._is_lake(table) or (not table.db and table.name in self._spark_temps))
                   for table in tree.find_all(exp.Table))

    def _run_local(self, tree: exp.Expression, as_written: tuple[str, Any] | None):
        """A statement DuckDB runs: as written when it can, else bound and pointed at the Parquet files."""
        target = _target_of(tree) if isinstance(tree, (exp.Create, exp.Insert, exp.Drop)) else None
        if isinstance(target, exp.Table) and self._is_lake(target) and not isinstance(tree, exp.Drop):
            return self._land_from_local(tree, target, as_written)
        if isinstance(tree, exp.Create) and isinstance(target, exp.Table) and not target.db:
            self._local_temps.add(target.name)
        if isinstance(tree, exp.Drop) and not target.db:
            self._local_temps.discard(target.name)
        return self._run_in_duckdb(tree, as_written)

    def _run_in_duckdb(self, tree: exp.Expression, as_written: tuple[str, Any] | None):
        if as_written is None:
            return self._local.execute(self._local_sql(tree))
        sql, params = as_written
        return self._local.execute(sql, params) if params is not None else self._local.execute(sql)

    def _land_from_local(self, tree: exp.Expression, target: exp.Table, as_written: tuple[str, Any] | None):
        """CREATE/INSERT into a lakehouse table by a statement DuckDB runs (a file-reading one): the
        statement fills a DuckDB table of the same name (for INSERT, an empty one shaped like the
        lakehouse table, so BY NAME and casts behave as DuckDB's), whose rows land as a Parquet file."""
        table = spark_sql.table_name(target)
        schema, name = quote_ident(target.db), quote_ident(target.name)
        previous = self._version(table) if isinstance(tree, exp.Insert) else None
        if isinstance(tree, exp.Insert) and previous is None:
            raise ValueError(f"INSERT INTO {table}: the table does not exist")
        files = sql_literal(str(previous / "*.parquet")) if previous is not None else ""
        stored = ([r[0] for r in self._local.execute(f"DESCRIBE SELECT * FROM read_parquet({files})").fetchall()]
                  if previous is not None else [])
        self._local.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        self._local.execute(f"DROP TABLE IF EXISTS {schema}.{name}")
        if previous is not None:
            hidden = " EXCLUDE (rowid)" if ROWID in stored else ""
            self._local.execute(f"CREATE TABLE {schema}.{name} AS SELECT *{hidden} FROM read_parquet({files}) LIMIT 0")
        try:
            self._run_in_duckdb(tree, as_written)
            order = ""
            if target.db == "raw":  # the load order, continued after the rows already there
                offset = (self._local.execute(f"SELECT coalesce(max(rowid) + 1, 0) FROM read_parquet({files})")
                          .fetchall()[0][0] if ROWID in stored else 0)
                order = f", rowid + {offset} AS rowid"
            version = self._lake.new_version(table)
            version.mkdir()
            part = version / f"part-{uuid.uuid4().hex}.parquet"
            self._local.execute(f"COPY (SELECT *{order} FROM {schema}.{name}) TO {sql_literal(str(part))} "
                                "(FORMAT parquet)")
            if previous is not None:
                _link_files(previous, version)
            self._stage(table, version)
        finally:
            self._local.execute(f"DROP TABLE IF EXISTS {schema}.{name}")
        return SparkResult(rows=[], columns=[])

    # --- Spark ------------------------------------------------------------------------------
    def _spark_name(self, table: exp.Table) -> str | None:
        """The Spark temp view a table reference reads (registered on demand), or None to leave it."""
        if not self._is_lake(table):
            return None
        name = spark_sql.table_name(table)
        version = self._version(name)
        if version is None:
            return None  # Spark then fails with "table or view not found", naming it
        view = f"{table.db}__{table.name}"
        if self._views.get(view) != version:
            self._spark.read.parquet(str(version)).createOrReplaceTempView(view)
            self._views[view] = version
        return view

    def _sql(self, tree: exp.Expression) -> str:
        return spark_sql.to_spark(spark_sql.rename_tables(tree.copy(), self._spark_name))

    def _frame(self, tree: exp.Expression):
        tree = tree.unnest() if isinstance(tree, exp.Subquery) and not tree.alias else tree
        by_name = next((u for u in tree.find_all(exp.Union) if u.args.get("by_name")), None)
        if by_name is None:
            return self._spark.sql(self._sql(tree))
        # Spark SQL has no UNION BY NAME: the DataFrame's unionByName (missing columns as NULL)
        frame = self._frame(by_name.this).unionByName(self._frame(by_name.expression), allowMissingColumns=True)
        if by_name.args.get("distinct"):
            frame = frame.distinct()
        view = f"_medmkt_union_{uuid.uuid4().hex[:8]}"
        frame.createOrReplaceTempView(view)
        self._views[view] = Path(view)
        rest = exp.select("*").from_(view)
        for modifier in ("order", "limit", "offset"):
            if by_name.args.get(modifier) is not None:
                rest.set(modifier, by_name.args[modifier])
        if by_name is tree:
            return self._frame(rest)
        tree = tree.copy()
        next(u for u in tree.find_all(exp.Union) if u.args.get("by_name")).replace(exp.paren(rest))
        return self._frame(tree)

    def _run_spark(self, tree: exp.Expression):
        handler = {exp.Create: self._create, exp.Insert: self._insert, exp.Delete: self._delete,
                   exp.Update: self._update, exp.Drop: self._drop, exp.Alter: self._alter,
                   exp.Set: self._set, exp.Describe: self._describe, exp.Transaction: self._begin,
                   exp.Commit: lambda _: self._commit(), exp.Rollback: lambda _: self._rollback()}
        for kind, handle in handler.items():
            if isinstance(tree, kind):
                result = handle(tree)
                return result if result is not None else SparkResult(rows=[], columns=[])
        return SparkResult(self._frame(tree))

    def _write(self, table: str, frame, temp: bool) -> None:
        """Write a query's rows as a new version of `table` (or a fresh temp table)."""
        if temp:
            folder = self._scratch / f"{table}-{uuid.uuid4().hex[:8]}"
            frame.write.parquet(str(folder))
            old = self._spark_temps.get(table)
            self._spark.read.parquet(str(folder)).createOrReplaceTempView(table)
            self._spark_temps[table] = folder
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            return
        if table.startswith("raw.") and ROWID not in frame.columns:  # an absent source's empty raw table
            from pyspark.sql import functions as F

            frame = frame.withColumn(ROWID, F.monotonically_increasing_id())
        version = self._lake.new_version(table)
        frame.write.parquet(str(version))
        self._stage(table, version)

    def _target(self, tree: exp.Expression) -> tuple[str, bool]:
        """(table name, is a temp table) of a statement's target."""
        target = _target_of(tree)
        temp = not target.db
        return spark_sql.table_name(target), temp

    def _create(self, tree: exp.Create):
        kind = (tree.args.get("kind") or "").upper()
        if kind == "SCHEMA":
            return None
        if kind != "TABLE":
            raise NotImplementedError(f"CREATE {kind} is not supported on the Spark engine")
        table, temp = self._target(tree)
        exists = self._spark_temps.get(table) if temp else self._version(table)
        if tree.args.get("exists") and exists is not None:
            return None
        if tree.expression is not None:
            self._write(table, self._frame(tree.expression), temp)
            return None
        columns = [exp.alias_(exp.cast(exp.null(), col.args["kind"]), col.name, quoted=True)
                   for col in tree.this.expressions if isinstance(col, exp.ColumnDef)]
        self._write(table, self._frame(exp.select(*columns).limit(0)), temp)
        return None

    def _insert(self, tree: exp.Insert):
        table, temp = self._target(tree)
        current = self._spark_temps.get(table) if temp else self._version(table)
        if current is None:
            raise ValueError(f"INSERT INTO {table}: the table does not exist")
        existing = self._spark.read.parquet(str(current))
        names = ([c.name for c in tree.this.expressions] if isinstance(tree.this, exp.Schema)
                 else existing.columns)
        if ROWID in existing.columns and ROWID not in names:
            raise NotImplementedError(f"INSERT INTO {table} from Spark: a raw table is loaded from files")
        rows = self._frame(tree.expression)
        fields = {f.name: f.dataType for f in existing.schema.fields}
        from pyspark.sql import functions as F

        rows = rows.toDF(*names).select(*[
            (F.col(n) if n in names else F.lit(None)).cast(fields[n]).alias(n) for n in existing.columns])
        if temp:
            self._write(table, existing.unionByName(rows), temp=True)
            return None
        version = self._lake.new_version(table)
        rows.write.parquet(str(version))
        _link_files(current, version)
        self._stage(table, version)
        return None

    def _rewrite(self, tree: exp.Expression, select: str) -> None:
        """Replace the target with the rows of `select` (DuckDB SQL over the target)."""
        table, temp = self._target(tree)
        self._write(table, self._frame(spark_sql.parse(select)), temp)

    def _delete(self, tree: exp.Delete):
        table, _ = self._target(tree)
        where = tree.args.get("where")
        keep = f"WHERE NOT coalesce(({where.this.sql(dialect='duckdb')}), false)" if where else "WHERE false"
        self._rewrite(tree, f"SELECT * FROM {table} {keep}")

    def _update(self, tree: exp.Update):
        table, temp = self._target(tree)
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

    def _alter(self, tree: exp.Alter):
        table, temp = self._target(tree)
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

    def _columns(self, table: str, temp: bool) -> list[str]:
        folder = self._spark_temps.get(table) if temp else self._version(table)
        if folder is None:
            raise ValueError(f"{table}: the table does not exist")
        return self._spark.read.parquet(str(folder)).columns

    def _drop(self, tree: exp.Drop):
        table, temp = self._target(tree)
        if temp:
            folder = self._spark_temps.pop(table, None)
            if folder is not None:
                self._spark.catalog.dropTempView(table)
                shutil.rmtree(folder, ignore_errors=True)
            elif not tree.args.get("exists"):
                raise ValueError(f"DROP TABLE {table}: no such temp table")
            return None
        if self._version(table) is None and not tree.args.get("exists"):
            raise ValueError(f"DROP TABLE {table}: no such table")
        self._pending[table] = None
        if not self._in_transaction:
            self._commit()
        return None

    def _set(self, tree: exp.Set):
        for item in tree.expressions:
            if (item.args.get("kind") or "").upper() == "VARIABLE":
                value = item.this.expression
                self._variables[item.this.this.name] = (
                    value.to_py() if isinstance(value, (exp.Literal, exp.Boolean, exp.Null))
                    else self._frame(exp.select(value)).collect()[0][0])
        return None  # DuckDB's own settings (threads, memory_limit) mean nothing to Spark

    def _describe(self, tree: exp.Describe):
        target = tree.this
        if isinstance(target, exp.Table) and not target.db and target.name in self._spark_temps:
            frame = self._spark.table(target.name)
        elif isinstance(target, exp.Table):
            frame = self._frame(exp.select("*").from_(target))
        else:
            frame = self._frame(target)
        rows = [(f.name, duckdb_type(f.dataType.simpleString()), "YES", None, None, None)
                for f in frame.schema.fields if f.name != ROWID]
        return SparkResult(rows=rows, columns=["column_name", "column_type", "null", "key", "default", "extra"])

    # --- transactions -----------------------------------------------------------------------
    def _begin(self, _tree=None):
        self._in_transaction = True

    def _stage(self, table: str, version: Path) -> None:
        old = self._pending.get(table)
        self._pending[table] = version
        if old is not None and old != version and old != self._lake.current(table):
            shutil.rmtree(old, ignore_errors=True)  # an earlier uncommitted version of this transaction
        if not self._in_transaction:
            self._commit()

    def _commit(self) -> None:
        written = [t for t, v in self._pending.items() if v is not None]
        dropped = [t for t, v in self._pending.items() if v is None]
        for table in written:
            self._lake.publish(table, self._pending[table])
        for table in dropped:
            self._lake.drop(table)
        self._pending.clear()
        self._in_transaction = False
        if written or dropped:
            refresh_views(self._lake, self._warehouse_file, written, dropped)

    def _rollback(self) -> None:
        for table, version in self._pending.items():
            if version is not None and version != self._lake.current(table):
                shutil.rmtree(version, ignore_errors=True)
        self._pending.clear()
        self._in_transaction = False


def _target_of(tree: exp.Expression) -> exp.Table:
    """The table a CREATE, INSERT, DELETE, UPDATE, ALTER or DROP writes."""
    if isinstance(tree, exp.Drop):
        return tree.args["tables"][0]
    return tree.this.this if isinstance(tree.this, exp.Schema) else tree.this


def _link_files(source: Path, target: Path) -> None:
    """Hard-link (or copy, across filesystems) the Parquet files of one version into another."""
    target.mkdir(parents=True, exist_ok=True)
    for part in source.glob("*.parquet"):
        destination = target / f"{part.stem}-{uuid.uuid4().hex[:6]}.parquet"
        try:
            os.link(part, destination)
        except OSError:
            shutil.copy2(part, destination)


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
