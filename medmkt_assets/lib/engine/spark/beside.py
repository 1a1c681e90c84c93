"""Statements an embedded DuckDB carries out beside Spark: reading source files (read_csv,
read_json, an adapter's macros), DuckDB temp tables and attached databases (the insight snapshot).

Such a statement runs as written when it reads nothing of Spark's (sqlglot's round trip can change
a JSON path or a macro call); otherwise its lakehouse tables and Spark temp tables are pointed at
their Parquet files where DuckDB sees them (a local or mounted lakehouse), else handed over by Spark
as Arrow. What it writes into the lakehouse is handed to Spark as Arrow, a million rows at a time, and
written by Spark (SparkWrites.land), so the lakehouse may be any filesystem Spark writes.
"""
from __future__ import annotations

import uuid
from typing import Any, Callable, Iterator

import duckdb
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from medmkt_assets.lib.engine.spark import dialect
from medmkt_assets.lib.engine.spark.lakehouse import ROWID, local_path
from medmkt_assets.lib.engine.spark.tables import Tables, target_of
from medmkt_assets.lib.engine.sql import quote_ident, sql_literal

WRITES = (exp.Insert, exp.Create, exp.Drop)
# Rows handed to Spark at once when a source file lands: the driver holds one chunk, not the file
# (20 million order lines as one Arrow table overflowed a 4 GB driver at 1,000,000 patients).
LAND_ROWS = 1_000_000


def arrow_chunks(reader: pa.RecordBatchReader, rows: int) -> Iterator[pa.Table]:
    """A reader's batches gathered into tables of about `rows` rows (at least one table, for the schema)."""
    batches, gathered, any_rows = [], 0, False
    for batch in reader:
        batches.append(batch)
        gathered += batch.num_rows
        if gathered >= rows:
            yield pa.Table.from_batches(batches, reader.schema)
            batches, gathered, any_rows = [], 0, True
    if batches or not any_rows:
        yield pa.Table.from_batches(batches, reader.schema)


def is_database_command(tree: exp.Expression) -> bool:
    """ATTACH, DETACH, CHECKPOINT and CREATE MACRO/FUNCTION: DuckDB's own, run as written."""
    return isinstance(tree, (exp.Attach, exp.Detach, exp.Command, exp.Alias)) or (
        isinstance(tree, exp.Create) and (tree.args.get("kind") or "").upper() in ("MACRO", "FUNCTION"))


class DuckDBBeside:
    """The embedded DuckDB of one Spark session."""

    def __init__(self, tables: Tables, land: Callable[[str, Iterator[pa.Table], bool], None]):
        self._tables = tables
        self._land_rows = land  # SparkWrites.land: (table, rows, append)
        self._con = duckdb.connect()

    def handles(self, tree: exp.Expression) -> bool:
        """Whether DuckDB carries out a (bound) statement: it reads files, DuckDB temp tables or an
        attached database, or declares a temp table by its columns."""
        if isinstance(tree, (exp.Attach, exp.Detach, exp.Command, exp.Alias)):
            return True
        if isinstance(tree, exp.Create) and tree.expression is None and not target_of(tree).db \
                and (tree.args.get("kind") or "").upper() == "TABLE":
            return True  # a temp table declared by its columns: an adapter's landing table for file rows
        ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if not isinstance(table.this, exp.Identifier):
                if isinstance(table.this, exp.Func):  # read_csv, read_json, sniff_csv, glob: DuckDB's
                    return True
                continue
            if table.db in self._tables.attached or (not table.db and table.name in self._tables.local_temps
                                                     and table.name not in ctes):
                return True
        return False

    def writes_local(self, table: str) -> bool:
        """Whether `table` lives in DuckDB (an attached database's, or a DuckDB temp table)."""
        return table.split(".")[0] in self._tables.attached or "." not in table and table in self._tables.local_temps

    def command(self, tree: exp.Expression, sql: str, params: Any):
        """A database command (is_database_command), as written; ATTACH and DETACH are remembered."""
        if isinstance(tree, exp.Attach):
            self._tables.attached.add(tree.this.alias if isinstance(tree.this, exp.Alias) else tree.this.name)
        if isinstance(tree, exp.Detach):
            self._tables.attached.discard(tree.this.name)
        return self._execute(sql, params)

    def run(self, tree: exp.Expression, sql: str | None = None, params: Any = None):
        """A statement DuckDB carries out: as written (`sql`, `params`) when it reads nothing of Spark's
        and the caller has its text, else `tree`, bound, pointed at the Parquet files."""
        as_written = None if sql is None or self._reads_spark(tree) else (sql, params)
        target = target_of(tree) if isinstance(tree, WRITES) else None
        if isinstance(target, exp.Table) and self._tables.is_lake(target) and not isinstance(tree, exp.Drop):
            return self._land(tree, target, as_written)
        if isinstance(tree, exp.Create) and isinstance(target, exp.Table) and not target.db:
            self._tables.local_temps.add(target.name)
        if isinstance(tree, exp.Drop) and not target.db:
            self._tables.local_temps.discard(target.name)
        return self._run(tree, as_written)

    def write_frame(self, frame: pd.DataFrame | pa.Table, statement: str) -> None:
        """A CREATE/INSERT into a DuckDB table over a frame the statement sees as `frame`."""
        self._con.register("frame", frame)
        try:
            self.run(dialect.parse(statement), statement)
        finally:
            self._con.unregister("frame")

    def close(self) -> None:
        self._con.close()

    # --- how -------------------------------------------------------------------------------
    def _execute(self, sql: str, params: Any = None):
        return self._con.execute(sql, params) if params is not None else self._con.execute(sql)

    def _reads_spark(self, tree: exp.Expression) -> bool:
        """Whether a statement reads a lakehouse table or a Spark temp table (not counting its target)."""
        target = target_of(tree) if isinstance(tree, WRITES) else None
        return any(table is not target and isinstance(table.this, exp.Identifier)
                   and (self._tables.is_lake(table) or (not table.db and table.name in self._tables.spark_temps))
                   for table in tree.find_all(exp.Table))

    def _run(self, tree: exp.Expression, as_written: tuple[str, Any] | None):
        if as_written is None:
            return self._con.execute(self._pointed_at_files(tree))
        return self._execute(*as_written)

    def _pointed_at_files(self, tree: exp.Expression) -> str:
        """The statement in DuckDB SQL, each lakehouse or Spark temp table it reads as read_parquet."""
        tree = tree.copy()
        target = target_of(tree) if isinstance(tree, WRITES) else None
        for table in list(tree.find_all(exp.Table)):
            if table is target:
                continue
            if isinstance(table.this, exp.Identifier) and (source := self._files_of(table)):
                alias = table.alias or table.name
                this = (exp.maybe_parse(source, dialect="duckdb") if source.startswith("read_parquet(")
                        else exp.to_identifier(source))
                table.replace(exp.Table(this=this, alias=exp.TableAlias(this=exp.to_identifier(alias))))
        return tree.sql(dialect="duckdb")

    def _files_of(self, table: exp.Table) -> str | None:
        """How DuckDB reads a lakehouse table or a Spark temp table: its Parquet files."""
        if self._tables.is_lake(table):
            version = self._tables.version(dialect.table_name(table))
            if version is None:
                raise duckdb.CatalogException(f"Table {dialect.table_name(table)} does not exist")
        elif not table.db and table.name in self._tables.spark_temps:
            version = self._tables.spark_temps[table.name]
        else:
            return None
        return self._relation(version)

    def _relation(self, location: str, empty: bool = False) -> str:
        """A version as a DuckDB relation: read_parquet of its files where DuckDB sees them, else the
        name of its rows (or, `empty`, just its columns) from Spark as Arrow, registered here."""
        local = local_path(location)
        if local is not None:
            return f"read_parquet({sql_literal(local + '/*.parquet')})"
        frame = self._tables.catalog.spark.read.parquet(location)
        name = f"_medmkt_{uuid.uuid4().hex[:8]}"
        self._con.register(name, (frame.limit(0) if empty else frame).toArrow())
        return name

    def _land(self, tree: exp.Expression, target: exp.Table, as_written: tuple[str, Any] | None):
        """CREATE/INSERT into a lakehouse table: the statement fills a DuckDB table of the same name
        (for INSERT, an empty one shaped like the lakehouse table, so BY NAME and casts behave as
        DuckDB's), whose rows Spark writes (SparkWrites.land)."""
        table = dialect.table_name(target)
        schema, name = quote_ident(target.db), quote_ident(target.name)
        append = isinstance(tree, exp.Insert)
        previous = self._tables.version(table) if append else None
        if append and previous is None:
            raise ValueError(f"INSERT INTO {table}: the table does not exist")
        self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        self._con.execute(f"DROP TABLE IF EXISTS {schema}.{name}")
        if previous is not None:
            shape = self._relation(previous, empty=True)
            stored = [r[0] for r in self._con.execute(f"DESCRIBE SELECT * FROM {shape}").fetchall()]
            hidden = " EXCLUDE (rowid)" if ROWID in stored else ""
            self._con.execute(f"CREATE TABLE {schema}.{name} AS SELECT *{hidden} FROM {shape} LIMIT 0")
        try:
            self._run(tree, as_written)
            order = ", rowid AS rowid" if target.db == "raw" else ""  # the load order (continued by land)
            reader = self._con.sql(f"SELECT *{order} FROM {schema}.{name}").to_arrow_reader(LAND_ROWS)
            try:
                self._land_rows(table, arrow_chunks(reader, LAND_ROWS), append)
            finally:
                reader.close()  # the connection runs nothing else while a result is open
        finally:
            self._con.execute(f"DROP TABLE IF EXISTS {schema}.{name}")
        return None
