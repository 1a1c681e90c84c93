"""The warehouse interface: the one way assets and lib/ talk to the SQL engine.

A `Session` runs a statement, queries to pandas or Arrow, writes a frame, says whether a
table exists, describes a table and wraps work in a transaction. DuckDB is the only
engine's module (with lib.engine.spark.lakehouse, the Spark engine's DuckDB side, the tests and the bench)
that imports it; Dagster hands sessions out through the `Warehouse` resource
(defs/resources.py), whose connections come from dagster-duckdb. The Spark engine
(lib.engine.spark.session.SparkWarehouseSession) implements the same small class.
Statements are DuckDB SQL; a result from `execute` is read with `fetchall`, `fetchone`
or `fetchdf` before the next statement.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import duckdb
import pandas as pd
import pyarrow as pa

# The errors the engine raises for a statement it cannot run: `except WarehouseError`.
WarehouseError: tuple[type[Exception], ...] = (duckdb.Error,)


class Session:
    """One connection to the warehouse."""

    engine = "duckdb"  # lib.engine.spark.session.SparkWarehouseSession: "spark"

    def __init__(self, connection: duckdb.DuckDBPyConnection):
        self._con = connection

    def execute(self, sql: str, params: Any = None):
        """Run one statement (parameters as a list for `?` or a dict for `$name`); returns its result."""
        return self._con.execute(sql, params) if params is not None else self._con.execute(sql)

    def query_df(self, sql: str, params: Any = None) -> pd.DataFrame:
        return self.execute(sql, params).fetchdf()

    def query_arrow(self, sql: str, params: Any = None) -> pa.Table:
        """Rows as Arrow: millions of strings cross without becoming Python objects (fetchdf makes one
        per cell). Through the relational API, which hands over its buffers without the extra copy a
        DB-API result makes."""
        return self._con.sql(sql, params=params).to_arrow_table()

    def write_frame(self, frame: pd.DataFrame | pa.Table, table: str, append: bool = False,
                    query: str = "SELECT * FROM frame") -> None:
        """Create (or append to) `table` from a frame, which `query` sees as `frame` (to join,
        filter or order it on the way in)."""
        self._con.register("frame", frame)
        try:
            statement = f"INSERT INTO {table} " if append else f"CREATE OR REPLACE TABLE {table} AS "
            self._con.execute(statement + query)
        finally:
            self._con.unregister("frame")

    def table_exists(self, table: str) -> bool:
        """Whether `schema.name` exists."""
        return table_exists(self, table)

    def describe(self, relation: str) -> list[str]:
        """Column names of a table, or of a query's result."""
        return [row[0] for row in self.execute(f"DESCRIBE {relation}").fetchall()]

    def close(self) -> None:
        self._con.close()

    @contextmanager
    def transaction(self) -> Iterator["Session"]:
        """All-or-nothing: a failure rolls back, so readers keep the previous tables."""
        self._con.execute("BEGIN TRANSACTION")
        try:
            yield self
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")


def scratch() -> Session:
    """An in-memory session for work that touches no warehouse (probing a file, say); close() it."""
    return Session(duckdb.connect())


def table_exists(con: Session, table: str) -> bool:
    """Whether `schema.name` exists (for code handed a session or a bare connection alike)."""
    schema, name = table.split(".")
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                            "AND table_name = ?", [schema, name]).fetchall()[0][0])
