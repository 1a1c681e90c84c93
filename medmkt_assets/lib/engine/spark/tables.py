"""Where each table a Spark session names lives, and the versions its transaction has staged."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from sqlglot import exp

from medmkt_assets.lib.engine.spark.lakehouse import SCHEMAS, Lakehouse, refresh_views


class Tables:
    """The lakehouse tables (live and staged versions), Spark's temp tables and DuckDB's, and the
    databases attached to the DuckDB beside Spark, for one session."""

    def __init__(self, lake: Lakehouse, warehouse_file: Path, scratch: Path):
        self.lake = lake
        self.warehouse_file = warehouse_file
        self.scratch = scratch                          # Spark temp tables' Parquet, removed at close
        self.spark_temps: dict[str, Path] = {}          # Spark temp table -> its folder
        self.local_temps: set[str] = set()              # DuckDB temp tables
        self.attached: set[str] = set()                 # databases attached to the DuckDB beside Spark
        self.pending: dict[str, Path | None] = {}       # table -> staged version (None: dropped)
        self.in_transaction = False

    def is_lake(self, table: exp.Table) -> bool:
        return table.db in SCHEMAS and not table.catalog

    def version(self, table: str) -> Path | None:
        """The version of `schema.name` this session reads: its staged one, else the live one."""
        if table in self.pending:
            return self.pending[table]
        return self.lake.current(table)

    def begin(self) -> None:
        self.in_transaction = True

    def stage(self, table: str, version: Path | None) -> None:
        """A new version of `table` (None: the table is dropped), published at COMMIT (at once
        outside a transaction)."""
        old = self.pending.get(table)
        self.pending[table] = version
        if old is not None and old != version and old != self.lake.current(table):
            shutil.rmtree(old, ignore_errors=True)  # an earlier uncommitted version of this transaction
        if not self.in_transaction:
            self.commit()

    def commit(self) -> None:
        written = [t for t, v in self.pending.items() if v is not None]
        dropped = [t for t, v in self.pending.items() if v is None]
        for table in written:
            self.lake.publish(table, self.pending[table])
        for table in dropped:
            self.lake.drop(table)
        self.pending.clear()
        self.in_transaction = False
        if written or dropped:
            refresh_views(self.lake, self.warehouse_file, written, dropped)

    def rollback(self) -> None:
        for table, version in self.pending.items():
            if version is not None and version != self.lake.current(table):
                shutil.rmtree(version, ignore_errors=True)
        self.pending.clear()
        self.in_transaction = False


def target_of(tree: exp.Expression) -> exp.Table:
    """The table a CREATE, INSERT, DELETE, UPDATE, ALTER or DROP writes."""
    if isinstance(tree, exp.Drop):
        return tree.args["tables"][0]
    return tree.this.this if isinstance(tree.this, exp.Schema) else tree.this


def link_files(source: Path, target: Path) -> None:
    """Hard-link (or copy, across filesystems) the Parquet files of one version into another."""
    target.mkdir(parents=True, exist_ok=True)
    for part in source.glob("*.parquet"):
        destination = target / f"{part.stem}-{uuid.uuid4().hex[:6]}.parquet"
        try:
            os.link(part, destination)
        except OSError:
            shutil.copy2(part, destination)
