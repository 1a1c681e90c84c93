"""Small helpers every asset uses to write the warehouse safely and describe the result."""

from contextlib import contextmanager
from typing import Iterator

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from medmkt_assets.lib.schema import NOT_FOR_PREVIEW
from medmkt_assets.lib.staging import ensure_schemas

# Every asset that writes the warehouse runs in this pool; dagster.yaml limits it to one
# run step at a time because DuckDB allows a single writing process.
WAREHOUSE_POOL = "duckdb_warehouse"

# Everything downstream of staging refreshes by itself once its inputs change (a sensor
# batch, the nightly ingestion), through the `refresh_downstream` automation sensor.
REFRESH_WHEN_INPUTS_CHANGE = dg.AutomationCondition.eager()


@contextmanager
def transaction(warehouse: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """All-or-nothing writes: a failed asset leaves the previous tables untouched."""
    with warehouse.get_connection() as con:
        ensure_schemas(con)
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def write_frame(con: duckdb.DuckDBPyConnection, frame, table: str, append: bool = False,
                query: str = "SELECT * FROM frame") -> None:
    """Create (or append to) `table` from a pandas frame, seen as `frame` by `query` (which may
    join, filter or order it)."""
    con.register("frame", frame)
    try:
        statement = f"INSERT INTO {table} " if append else f"CREATE OR REPLACE TABLE {table} AS "
        con.execute(statement + query)
    finally:
        con.unregister("frame")


def row_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def preview(con: duckdb.DuckDBPyConnection, table: str, limit: int = 5,
            only: tuple[str, ...] | None = None) -> dg.MetadataValue:
    """A markdown preview without identifiers, pseudonyms or free text about patients.

    `only` restricts it to known columns: raw tables keep unknown extra source columns,
    which could be anything (a national id, a mobile number), so they are never shown.
    """
    columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()
               if r[0] not in NOT_FOR_PREVIEW and not r[0].startswith("_") and (only is None or r[0] in only)]
    if not columns:
        return dg.MetadataValue.md("(no columns to preview)")
    quoted = ", ".join(f'"{c}"' for c in columns[:12])
    frame = con.execute(f"SELECT {quoted} FROM {table} LIMIT {limit}").fetchdf()
    return dg.MetadataValue.md(frame.to_markdown(index=False) if len(frame) else "(empty table)")


def markdown_counts(counts: dict[str, int], key: str = "reason", value: str = "rows") -> dg.MetadataValue:
    if not counts:
        return dg.MetadataValue.md("(none)")
    lines = [f"| {key} | {value} |", "|---|---|"] + [f"| {k} | {v} |" for k, v in counts.items()]
    return dg.MetadataValue.md("\n".join(lines))
