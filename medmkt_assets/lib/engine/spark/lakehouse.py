"""Tables as Parquet folders under MEDMKT_LAKEHOUSE, replaced atomically, and their DuckDB views.

Layout: `<root>/<schema>/<table>/<version>/part-*.parquet` and `<root>/<schema>/<table>/current`,
a symbolic link to the live version. A write goes to a fresh version folder; only when it is
complete does `publish` swap the link (`os.replace` of a link is atomic on POSIX), so a failed
step leaves the previous version readable, and a reader that opened the old version keeps it
(the previous version is kept until the next swap).

The contract's readers open `MEDMKT_WAREHOUSE` with DuckDB: `refresh_views` keeps a view per
lakehouse table there (`marts.x` = `read_parquet('<root>/marts/x/current/*.parquet')`), so the
contract checker, the quality gates' readers, the insight snapshot and `make run`'s summary
work the same on both engines. The folder must be a local or shared (NFS, mounted) filesystem
that Spark's executors and this process both see.
"""
from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import duckdb

from medmkt_assets.lib.engine.sql import quote_ident, sql_literal

SCHEMAS = ("raw", "restricted", "quarantine", "staging", "features", "marts", "ops")
CURRENT = "current"
# The load order of a raw table: DuckDB's implicit rowid, stored as a column in the lakehouse.
ROWID = "rowid"


class Lakehouse:
    """The versioned Parquet tables under one root folder."""

    def __init__(self, root: str | Path):
        if "://" in str(root) and not str(root).startswith("file://"):
            raise ValueError(f"MEDMKT_LAKEHOUSE={root}: an object-store URI needs a table format with "
                             "atomic commits (Delta, Iceberg); use a folder every Spark worker mounts")
        self.root = Path(str(root).removeprefix("file://")).resolve()

    def folder(self, table: str) -> Path:
        schema, name = table.split(".")
        return self.root / schema / name

    def current(self, table: str) -> Path | None:
        """The live version's folder, or None when the table does not exist."""
        link = self.folder(table) / CURRENT
        return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None

    def exists(self, table: str) -> bool:
        return self.current(table) is not None

    def new_version(self, table: str) -> Path:
        """A fresh, not yet live, version folder path (not created: Spark creates it when it writes)."""
        folder = self.folder(table)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"v{time.time_ns()}-{uuid.uuid4().hex[:8]}"

    def publish(self, table: str, version: Path) -> None:
        """Make `version` the live one, atomically; versions older than the previous are removed."""
        folder = self.folder(table)
        previous = self.current(table)
        staged = folder / f".{CURRENT}-{uuid.uuid4().hex[:8]}"
        staged.symlink_to(version.name)
        os.replace(staged, folder / CURRENT)
        for old in folder.iterdir():
            if old.is_dir() and not old.is_symlink() and old not in (version, previous):
                shutil.rmtree(old, ignore_errors=True)

    def drop(self, table: str) -> None:
        shutil.rmtree(self.folder(table), ignore_errors=True)

    def tables(self) -> list[str]:
        """Every live table, as schema.name."""
        if not self.root.is_dir():
            return []
        return sorted(f"{schema.name}.{table.name}" for schema in self.root.iterdir() if schema.name in SCHEMAS
                      for table in schema.iterdir() if (table / CURRENT).is_symlink())

    def files_glob(self, table: str) -> str:
        """The Parquet files of the live version, through the stable `current` link."""
        return str(self.folder(table) / CURRENT / "*.parquet")


def view_sql(lakehouse: Lakehouse, table: str, columns: list[str]) -> str:
    """The DuckDB view of a lakehouse table (a raw table's stored load order stays hidden)."""
    schema, name = table.split(".")
    hidden = " EXCLUDE (rowid)" if ROWID in columns else ""
    return (f"CREATE OR REPLACE VIEW {quote_ident(schema)}.{quote_ident(name)} AS "
            f"SELECT *{hidden} FROM read_parquet({sql_literal(lakehouse.files_glob(table))})")


def refresh_views(lakehouse: Lakehouse, warehouse: Path, tables: list[str], dropped: list[str] = ()) -> None:
    """Create or replace the DuckDB views of `tables` (and drop those of `dropped`) in the warehouse file."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse))
    try:
        for table in tables:
            schema, name = table.split(".")
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
            columns = [r[0] for r in con.execute(
                f"DESCRIBE SELECT * FROM read_parquet({sql_literal(lakehouse.files_glob(table))})").fetchall()]
            if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND "
                           "table_name = ? AND table_type = 'BASE TABLE'", [schema, name]).fetchall()[0][0]:
                con.execute(f"DROP TABLE {quote_ident(schema)}.{quote_ident(name)}")  # left by a DuckDB run
            con.execute(view_sql(lakehouse, table, columns))
        for table in dropped:
            schema, name = table.split(".")
            con.execute(f"DROP VIEW IF EXISTS {quote_ident(schema)}.{quote_ident(name)}")
    finally:
        con.close()
