"""Where each table a Spark session names lives, and the versions its transaction has staged."""
from __future__ import annotations

from pathlib import Path

from sqlglot import exp

from medmkt_assets.lib.engine.spark.lakehouse import SCHEMAS, Catalog, refresh_views


class Tables:
    """The lakehouse tables (live and staged versions), Spark's temp tables and DuckDB's, and the
    databases attached to the DuckDB beside Spark, for one session."""

    def __init__(self, catalog: Catalog, warehouse_file: Path, scratch: str):
        self.catalog = catalog
        self.lake = catalog.lake
        self.warehouse_file = warehouse_file
        self.scratch = scratch                          # Spark temp tables' Parquet, removed at close
        self.spark_temps: dict[str, str] = {}           # Spark temp table -> its location
        self.local_temps: set[str] = set()              # DuckDB temp tables
        self.attached: set[str] = set()                 # databases attached to the DuckDB beside Spark
        self.pending: dict[str, str | None] = {}        # table -> staged version (None: dropped)
        self.columns: dict[str, list[tuple[str, str]]] = {}  # staged version -> its (name, type) as written
        self.in_transaction = False

    def is_lake(self, table: exp.Table) -> bool:
        return table.db in SCHEMAS and not table.catalog

    def version(self, table: str) -> str | None:
        """The location of the version of `schema.name` this session reads: its staged one, else the live one."""
        if table in self.pending:
            return self.pending[table]
        return self.catalog.location(table)

    def staged(self, table: str) -> bool:
        """Whether this transaction has written a version of `table` not yet published."""
        return self.pending.get(table) is not None

    def begin(self) -> None:
        self.in_transaction = True

    def stage(self, table: str, version: str | None, columns: list[tuple[str, str]] | None = None) -> None:
        """A new version of `table` (None: the table is dropped), published at COMMIT (at once
        outside a transaction); `columns`: its (name, type) as written, when known."""
        old = self.pending.get(table)
        self.pending[table] = version
        if version is not None and columns is not None:
            self.columns[version] = columns
        if old is not None and old != version and old != self.catalog.location(table):
            self.catalog.remove(old)  # an earlier uncommitted version of this transaction
        if not self.in_transaction:
            self.commit()

    def commit(self) -> None:
        written = {t: v for t, v in self.pending.items() if v is not None}
        dropped = [t for t, v in self.pending.items() if v is None]
        for table, version in written.items():
            self.catalog.publish(table, version, self.columns.get(version))
        for table in dropped:
            self.catalog.drop(table)
        self.pending.clear()
        self.columns.clear()
        self.in_transaction = False
        if written or dropped:
            refresh_views(self.warehouse_file, written, dropped)

    def rollback(self) -> None:
        for table, version in self.pending.items():
            if version is not None and version != self.catalog.location(table):
                self.catalog.remove(version)
        self.pending.clear()
        self.columns.clear()
        self.in_transaction = False


def target_of(tree: exp.Expression) -> exp.Table:
    """The table a CREATE, INSERT, DELETE, UPDATE, ALTER or DROP writes."""
    if isinstance(tree, exp.Drop):
        return tree.args["tables"][0]
    return tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
