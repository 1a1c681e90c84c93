"""Tables in Spark's catalog, their Parquet versions under MEDMKT_LAKEHOUSE, and their DuckDB views.

Every table the pipeline writes is a table in the session's catalog: one database per schema
(`<prefix>raw`, `<prefix>marts`, ...), data as Parquet under the lakehouse root, which may be a
local folder or any Hadoop filesystem URI (`s3a://`, `abfss://`, `gs://`, `hdfs://`). A write goes
to a fresh location `<root>/<schema>/<table>/v<time>-<id>`; only when it is complete does
`Catalog.publish` switch the table to it with one catalog operation (`ALTER TABLE .. SET
LOCATION`), so a failed step leaves the previous version readable. No symbolic or hard link, no
rename: nothing an object store lacks. The catalog remembers the previous location (a table
property) so a reader that opened it keeps it; the one before is deleted through Hadoop's
filesystem API (on Spark Connect, which has no JVM on this side, by overwriting it with nothing).

The contract's readers open `MEDMKT_WAREHOUSE` with DuckDB: `refresh_views` keeps a view per
lakehouse table there over the live location's Parquet files, so the contract checker, the
quality gates' readers, the insight snapshot and `make run`'s summary work the same on both
engines (over an object store, DuckDB reads the files with its httpfs/azure extensions).
"""
from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import duckdb

from medmkt_assets.lib.engine.sql import quote_ident, sql_literal

SCHEMAS = ("raw", "restricted", "quarantine", "staging", "features", "marts", "ops")
# The load order of a raw table: DuckDB's implicit rowid, stored as a column in the lakehouse.
ROWID = "rowid"
PREVIOUS = "medmkt.previous_location"  # the table property naming the version before the live one
# What DuckDB calls the object stores Hadoop names otherwise.
DUCKDB_SCHEMES = {"s3a": "s3", "s3n": "s3", "gs": "gcs"}


def is_uri(path: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path))


def local_path(location: str) -> str | None:
    """A `file:` location (or a plain path) as a local path, else None."""
    if location.startswith("file:"):
        rest = location[len("file:"):]
        return "/" + rest.lstrip("/") if rest.startswith("/") else rest
    return None if is_uri(location) else location


def duckdb_path(location: str) -> str:
    """How DuckDB names a location: a local path, or the object-store URI in DuckDB's spelling."""
    local = local_path(location)
    if local is not None:
        return local
    scheme, rest = location.split("://", 1)
    return f"{DUCKDB_SCHEMES.get(scheme.lower(), scheme)}://{rest}"


class Lakehouse:
    """Where the tables live: the root (a folder or a Hadoop filesystem URI) and the prefix of
    their databases in the catalog."""

    def __init__(self, root: str | Path, prefix: str = ""):
        root = str(root)
        if root.startswith("file:"):
            root = local_path(root)
        self.root = root.rstrip("/") if is_uri(root) else str(Path(root).resolve())
        if not re.fullmatch(r"[a-z0-9_]*", prefix):
            raise ValueError(f"database prefix {prefix!r}: lowercase letters, digits and _ only")
        self.prefix = prefix

    @property
    def is_local(self) -> bool:
        return not is_uri(self.root)

    def database(self, schema: str) -> str:
        return f"{self.prefix}{schema}"

    def catalog_name(self, table: str) -> str:
        """`schema.name` as the catalog knows it: `<prefix><schema>`.`name`."""
        schema, name = table.split(".")
        return f"`{self.database(schema)}`.`{name}`"

    def new_version(self, table: str) -> str:
        """A fresh, not yet live, location for a version of `table` (Spark creates it when it writes)."""
        schema, name = table.split(".")
        return f"{self.root}/{schema}/{name}/v{time.time_ns()}-{uuid.uuid4().hex[:8]}"

    def scratch(self) -> str:
        """A fresh location for one session's intermediate tables."""
        return f"{self.root}/_scratch/{uuid.uuid4().hex}"


class Catalog:
    """The lakehouse tables in one Spark session's catalog: where each lives, switching and dropping."""

    def __init__(self, spark, lake: Lakehouse):
        self.spark = spark
        self.lake = lake
        self._facts: dict[str, dict[str, str]] = {}  # table -> its catalog facts (_describe), looked up or published
        self._databases: set[str] = set()

    def location(self, table: str) -> str | None:
        """The live version's location (a local path for `file:`), or None when there is no such table."""
        return self._info(table).get("Location")

    def publish(self, table: str, location: str, columns: list[tuple[str, str]] | None = None) -> None:
        """Make `location` the live version of `table` with one catalog operation (creating the
        table on its first version); the version before the previous one is deleted. `columns`:
        the new version's (name, type) as written, when known (saves reading its files' schema)."""
        name = self.lake.catalog_name(table)
        info = self._info(table)
        previous = info.get("Location")
        if previous is None:
            self._ensure_database(table.split(".")[0])  # a table's database exists: only a new one may lack it
            self.spark.sql(f"CREATE TABLE {name} USING parquet LOCATION {sql_literal(location)}")
        else:
            self._match_columns(table, location, columns)
            self.spark.sql(f"ALTER TABLE {name} SET LOCATION {sql_literal(location)}")
        kept = info.get(PREVIOUS)
        if previous is not None and previous != location:
            self.spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ({sql_literal(PREVIOUS)} = {sql_literal(previous)})")
            if kept and kept not in (previous, location):
                self.remove(kept)
            kept = previous
        self._facts[table] = {"Location": location, **({PREVIOUS: kept} if kept else {})}

    def drop(self, table: str) -> None:
        """Drop the table from the catalog and delete its live and previous versions."""
        info = self._info(table)
        self.spark.sql(f"DROP TABLE IF EXISTS {self.lake.catalog_name(table)}")
        for location in (info.get("Location"), info.get(PREVIOUS)):
            if location:
                self.remove(location)
        self._facts[table] = {}

    def remove(self, location: str) -> None:
        """Delete a location through Hadoop's filesystem API (what any Spark filesystem has); through
        Spark Connect, which has no JVM here, by overwriting it with an empty Parquet file."""
        jsc = getattr(self.spark, "_jsc", None) if not _is_connect(self.spark) else None
        if jsc is None:
            self.spark.range(0).write.mode("overwrite").parquet(location)
            return
        jvm = self.spark._jvm
        path = jvm.org.apache.hadoop.fs.Path(location)
        path.getFileSystem(jsc.hadoopConfiguration()).delete(path, True)

    def tables(self) -> list[str]:
        """Every table of the lakehouse's databases, as schema.name."""
        found = []
        for schema in SCHEMAS:
            if self.spark.catalog.databaseExists(self.lake.database(schema)):
                found += [f"{schema}.{t.name}" for t in self.spark.catalog.listTables(self.lake.database(schema))
                          if not t.isTemporary]
        return sorted(found)

    # --- how -------------------------------------------------------------------------------
    def _info(self, table: str) -> dict[str, str]:
        """The table's catalog facts, looked up once per session: one writer at a time (the
        warehouse pool), and this session's own switches update them (publish, drop)."""
        if table not in self._facts:
            self._facts[table] = self._describe(table)
        return self._facts[table]

    def _describe(self, table: str) -> dict[str, str]:
        """The catalog's facts about a table (Location, and the previous location), {} when absent."""
        schema, name = table.split(".")
        database = self.lake.database(schema)
        if not self.spark.catalog.tableExists(f"`{database}`.`{name}`"):
            return {}
        rows = self.spark.sql(f"DESCRIBE TABLE EXTENDED {self.lake.catalog_name(table)}").collect()
        info = {row[0]: row[1] for row in rows if row[0]}
        facts = {}
        if info.get("Location"):
            facts["Location"] = _plain_location(info["Location"])
        props = self.spark.sql(f"SHOW TBLPROPERTIES {self.lake.catalog_name(table)} ({sql_literal(PREVIOUS)})").collect()
        if props and props[0][1] and not props[0][1].startswith("Table "):  # "Table .. does not have property"
            facts[PREVIOUS] = props[0][1]
        return facts

    def _ensure_database(self, schema: str) -> None:
        database = self.lake.database(schema)
        if database not in self._databases:
            self.spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}` "
                           f"LOCATION {sql_literal(f'{self.lake.root}/{schema}')}")
            self._databases.add(database)

    def _match_columns(self, table: str, location: str, written: list[tuple[str, str]] | None = None) -> None:
        """Bring the catalog's columns to the new version's before the switch: added columns are
        added (the table stays readable throughout); any other change of columns re-creates the
        table's entry (dropping an external table keeps its files), the one non-atomic case.
        Columns as written that equal the catalog's settle it without reading the files."""
        name = self.lake.catalog_name(table)
        old = [(f.name, f.dataType.simpleString()) for f in self.spark.table(name).schema.fields]
        if written == old:
            return
        new = [(f.name, f.dataType.simpleString()) for f in self.spark.read.parquet(location).schema.fields]
        if old == new:
            return
        if new[:len(old)] == old:
            columns = ", ".join(f"`{n}` {kind}" for n, kind in new[len(old):])
            self.spark.sql(f"ALTER TABLE {name} ADD COLUMNS ({columns})")
            return
        self.spark.sql(f"DROP TABLE {name}")
        self.spark.sql(f"CREATE TABLE {name} USING parquet LOCATION {sql_literal(location)}")


def _plain_location(location: str) -> str:
    local = local_path(location)
    return local if local is not None else location


def _is_connect(spark) -> bool:
    return type(spark).__module__.startswith("pyspark.sql.connect")


def view_sql(table: str, location: str, columns: list[str]) -> str:
    """The DuckDB view of a lakehouse table (a raw table's stored load order stays hidden)."""
    schema, name = table.split(".")
    hidden = " EXCLUDE (rowid)" if ROWID in columns else ""
    files = sql_literal(f"{duckdb_path(location)}/*.parquet")
    return f"CREATE OR REPLACE VIEW {quote_ident(schema)}.{quote_ident(name)} AS SELECT *{hidden} FROM read_parquet({files})"


def refresh_views(warehouse: Path, tables: dict[str, str], dropped: list[str] = ()) -> None:
    """Create or replace the DuckDB views of `tables` (table -> live location), and drop those of
    `dropped`, in the warehouse file."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse))
    try:
        for table, location in tables.items():
            schema, name = table.split(".")
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
            files = sql_literal(f"{duckdb_path(location)}/*.parquet")
            columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({files})").fetchall()]
            if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND "
                           "table_name = ? AND table_type = 'BASE TABLE'", [schema, name]).fetchall()[0][0]:
                con.execute(f"DROP TABLE {quote_ident(schema)}.{quote_ident(name)}")  # left by a DuckDB run
            con.execute(view_sql(table, location, columns))
        for table in dropped:
            schema, name = table.split(".")
            con.execute(f"DROP VIEW IF EXISTS {quote_ident(schema)}.{quote_ident(name)}")
    finally:
        con.close()
