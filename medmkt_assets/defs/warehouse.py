"""Small helpers every asset uses to write the warehouse safely and describe the result."""

import dagster as dg

from medmkt_assets.lib.engine.warehouse import Session
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
