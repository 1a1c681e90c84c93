"""SparkWarehouseSession: the Session interface on Spark, and the process's SparkSession.

A statement is parsed once (`dialect`) and handed to the part that carries out its kind: DuckDB
beside Spark (`beside`) for file reading and DuckDB's own tables, `writes` for statements that
write a table, `queries` for the rest; `tables` keeps the session's staged versions.
"""
from __future__ import annotations

import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pyarrow as pa
from sqlglot import exp

from medmkt_assets.lib.engine.spark import dialect
from medmkt_assets.lib.engine.spark.beside import DuckDBBeside, is_database_command
from medmkt_assets.lib.engine.spark.lakehouse import Catalog, Lakehouse
from medmkt_assets.lib.engine.spark.queries import SparkQueries, SparkResult, no_rows
from medmkt_assets.lib.engine.spark.tables import Tables
from medmkt_assets.lib.engine.spark.writes import STATEMENTS as WRITE_STATEMENTS
from medmkt_assets.lib.engine.spark.writes import SparkWrites
from medmkt_assets.lib.engine.warehouse import Session

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
SERVER_CONF = {"spark.ui.showConsoleProgress"}  # the server's own (static) settings



def spark_missing(remote: str = "") -> str | None:
    """Why this machine cannot run the Spark engine (no PySpark; no Java for a local Spark), or None."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        return "PySpark is not installed: `make setup-spark` (pip install -e '.[spark]')"
    if not remote and not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        return "no Java runtime for a local Spark (Debian: apt-get install default-jre-headless)"
    return None


def metastore_conf(metastore: str) -> dict[str, str]:
    """Spark settings for the catalog of a Spark this process starts: a Hive metastore service
    (`thrift://host:9083`, the cluster's own), else the embedded Derby metastore PySpark ships, in
    the folder `metastore` (one Spark driver at a time may open it)."""
    if metastore.startswith("thrift://"):
        return {"spark.hadoop.hive.metastore.uris": metastore}
    folder = Path(metastore).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={folder / 'metastore_db'};create=true",
        "spark.sql.warehouse.dir": str(folder / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={folder}",  # derby.log there, not in the cwd
    }


def size_bytes(size: str) -> int:
    """Bytes of a Spark size setting: `4m`, `512k`, `1g`, `1024` (bytes)."""
    units = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    text = size.strip().lower().removesuffix("b") or "0"
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def result_size_conf(max_result_size: str) -> dict[str, str]:
    """spark.driver.maxResultSize, and a broadcast-join threshold under it: a broadcast join collects
    its small side on the driver first, so a patient-sized table Spark thinks small (its files'
    compressed size) would hit the limit. Spark's own threshold (10 MB) when the limit allows."""
    limit = size_bytes(max_result_size)
    threshold = 10 << 20 if limit == 0 else min(10 << 20, limit // 4)
    return {"spark.driver.maxResultSize": max_result_size, "spark.sql.autoBroadcastJoinThreshold": str(threshold)}


def spark_session(master: str, remote: str = "", driver_memory: str = "4g", partitions: int = 8,
                  metastore: str = "data/metastore", max_result_size: str = "1g"):
    """The process's SparkSession: Spark Connect when `remote` is set (its server's catalog), else a
    local or cluster master with Hive support on `metastore` (metastore_conf).

    `max_result_size` is spark.driver.maxResultSize: an action that would bring more than that to
    the driver fails. No patient-sized table is collected (lib.models.on_spark), so it can be
    small; like the driver's memory it is fixed when the first session of the process starts, and
    a Spark Connect server keeps its own."""
    missing = spark_missing(remote)
    if missing:
        raise RuntimeError(f"MEDMKT_ENGINE=spark: {missing}")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("medmkt")
    if remote:
        builder = builder.remote(remote)
    else:
        builder = builder.master(master).config("spark.driver.memory", driver_memory)
        for key, value in result_size_conf(max_result_size).items():
            builder = builder.config(key, value)
        for key, value in metastore_conf(metastore).items():
            builder = builder.config(key, value)
        builder = builder.enableHiveSupport()
        if master.startswith("local"):  # Python workers (mapInPandas) in this environment, with medmkt
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in {**DUCKDB_COMPATIBLE_CONF, "spark.sql.shuffle.partitions": str(partitions)}.items():
        if not (remote and key in SERVER_CONF):  # a Spark Connect session cannot set its server's
            builder = builder.config(key, value)
    session = builder.getOrCreate()
    if not remote:
        session.sparkContext.setLogLevel("ERROR")
    return session


class SparkWarehouseSession(Session):
    """One unit of work on Spark: lib.engine.warehouse.Session's methods (its query_df, query_arrow and
    describe as they are, over this execute)."""

    engine = "spark"

    def __init__(self, spark, lakehouse: Lakehouse, warehouse_file: Path):
        self._spark = spark
        self._tables = Tables(Catalog(spark, lakehouse), warehouse_file, lakehouse.scratch())
        self._queries = SparkQueries(spark, self._tables)
        self._writes = SparkWrites(spark, self._tables, self._queries)
        self._duckdb = DuckDBBeside(self._tables, self._writes.land)
        self._variables: dict[str, Any] = {}   # SET VARIABLE, read by getvariable()

    def execute(self, sql: str, params: Any = None):
        tree = dialect.parse(sql)
        if is_database_command(tree):
            return self._duckdb.command(tree, sql, params)  # as written: an adapter's macro, or a database
        bound = dialect.bind(tree, params, self._variables)
        if self._duckdb.handles(bound):
            # getvariable() is known only here: such a statement runs bound, not as written
            as_written = None if "getvariable" in sql.lower() else sql
            result = self._duckdb.run(bound, as_written, params)
            return no_rows() if result is None else result
        return self._run_spark(bound)

    def dataframe(self, sql: str, params: Any = None):
        """A query's rows as a Spark DataFrame, for models that run in Spark (lib.models.on_spark)."""
        tree = dialect.bind(dialect.parse(sql), params, self._variables)
        if self._duckdb.handles(tree):
            raise ValueError("a query over source files or DuckDB temp tables has no Spark DataFrame")
        return self._queries.frame(tree)

    def register(self, name: str, frame) -> None:
        """A Spark DataFrame as a temp view later statements can read (closed with the session)."""
        self._queries.register(name, frame)

    def write_frame(self, frame: pd.DataFrame | pa.Table, table: str, append: bool = False,
                    query: str = "SELECT * FROM frame") -> None:
        statement = (f"INSERT INTO {table} " if append else f"CREATE OR REPLACE TABLE {table} AS ") + query
        if self._duckdb.writes_local(table):
            self._duckdb.write_frame(frame, statement)
        else:
            self._writes.write_frame(frame.to_pandas() if isinstance(frame, pa.Table) else frame, statement)

    def table_exists(self, table: str) -> bool:
        return self._tables.version(table) is not None

    def close(self) -> None:
        if self._tables.in_transaction:
            self._tables.rollback()
        self._queries.drop_views()
        self._writes.drop_temps()
        self._duckdb.close()

    @contextmanager
    def transaction(self) -> Iterator["SparkWarehouseSession"]:
        """All-or-nothing: new versions are published at the end, or deleted on failure."""
        self._tables.begin()
        try:
            yield self
        except BaseException:
            self._tables.rollback()
            raise
        self._tables.commit()

    def _run_spark(self, tree: exp.Expression):
        if isinstance(tree, WRITE_STATEMENTS):
            self._writes.run(tree)
        elif isinstance(tree, exp.Set):
            self._set(tree)
        elif isinstance(tree, exp.Describe):
            return self._queries.describe(tree)
        elif isinstance(tree, exp.Transaction):
            self._tables.begin()
        elif isinstance(tree, exp.Commit):
            self._tables.commit()
        elif isinstance(tree, exp.Rollback):
            self._tables.rollback()
        else:
            return SparkResult(self._queries.frame(tree))
        return no_rows()

    def _set(self, tree: exp.Set) -> None:
        for item in tree.expressions:
            if (item.args.get("kind") or "").upper() == "VARIABLE":
                value = item.this.expression
                self._variables[item.this.this.name] = (
                    value.to_py() if isinstance(value, (exp.Literal, exp.Boolean, exp.Null))
                    else self._queries.frame(exp.select(value)).collect()[0][0])
        # DuckDB's own settings (threads, memory_limit) mean nothing to Spark
