"""Small helpers every asset uses to write the warehouse safely and describe the result."""

import dagster as dg

from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.ops.table_docs import (
    COLUMN_NOTES,
    DOCUMENTED_SCHEMAS,
    staging_lineage,
    table_columns,
)
from medmkt_assets.lib.privacy.identifiers import NOT_FOR_PREVIEW

# Every asset that writes the warehouse runs in this pool; dagster.yaml limits it to one
# run step at a time because DuckDB allows a single writing process.
WAREHOUSE_POOL = "duckdb_warehouse"

# Everything downstream of staging refreshes by itself once its inputs change (a sensor
# batch, the nightly ingestion), through the `refresh_downstream` automation sensor.
REFRESH_WHEN_INPUTS_CHANGE = dg.AutomationCondition.eager()


def row_count(con: Session, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def preview(con: Session, table: str, limit: int = 5,
            only: tuple[str, ...] | None = None) -> dg.MetadataValue:
    """A markdown preview without identifiers, pseudonyms or free text about patients.

    `only` restricts it to known columns: raw tables keep unknown extra source columns,
    which could be anything (a national id, a mobile number), so they are never shown.
    """
    columns = [c for c in con.describe(table)
               if c not in NOT_FOR_PREVIEW and not c.startswith("_") and (only is None or c in only)]
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


def describe_step_tables(con: Session) -> None:
    """Give every staging, features and marts asset this step materializes its column schema (and a
    staging table its column lineage to the raw table), read from the written table. Called by the
    Warehouse resource after each committed transaction, so no asset lists its columns by hand;
    outside an asset step (a check, a test calling the resource) it does nothing."""
    try:
        context = dg.AssetExecutionContext.get()
        keys = context.selected_asset_keys
    except dg.DagsterInvariantViolationError:
        return
    for key in keys:
        if len(key.path) != 2 or key.path[0] not in DOCUMENTED_SCHEMAS:
            continue
        table = ".".join(key.path)
        if not con.table_exists(table):
            continue
        context.add_asset_metadata(table_metadata(con, table), asset_key=key)


def table_metadata(con: Session, table: str) -> dict:
    """dagster/column_schema of `table` (with the notes of lib.ops.table_docs), and for a staging table
    dagster/column_lineage back to raw.<table>."""
    columns = table_columns(con, table)
    notes = COLUMN_NOTES.get(table, {})
    metadata: dict = {"dagster/column_schema": dg.TableSchema(columns=[
        dg.TableColumn(name, dtype, description=notes.get(name)) for name, dtype in columns])}
    schema, name = table.split(".")
    if schema == "staging" and con.table_exists(f"raw.{name}"):
        sources = staging_lineage([c for c, _ in columns], con.describe(f"raw.{name}"))
        if sources:
            metadata["dagster/column_lineage"] = dg.TableColumnLineage(deps_by_column={
                column: [dg.TableColumnDep(asset_key=dg.AssetKey(["raw", name]), column_name=source)]
                for column, source in sources.items()})
    return metadata
