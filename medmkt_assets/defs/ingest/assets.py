"""Raw assets: an inventory of the source files, then one raw table per contract table."""

import hashlib
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from medmkt_assets.defs.resources import SourceFiles
from medmkt_assets.defs.warehouse import WAREHOUSE_POOL, preview, transaction
from medmkt_assets.lib.schema import SOURCE_TABLES
from medmkt_assets.lib.sources import SourceError, load_raw_table

SOURCE_INVENTORY = dg.AssetKey(["ops", "source_files"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dg.asset(key=SOURCE_INVENTORY, group_name="ingest", kinds={"duckdb", "file"}, pool=WAREHOUSE_POOL)
def source_files(context: dg.AssetExecutionContext, sources: SourceFiles,
                 warehouse: DuckDBResource) -> dg.MaterializeResult:
    """Inventory of the source files (path, size, content hash); demo data is generated when the default folder is empty."""
    if sources.source_format != "canonical":
        raise dg.Failure(f"MEDMKT_SOURCE_FORMAT={sources.source_format} is not available in this build; "
                         "use canonical source files (see README 'Bring your own data').")
    present = {t: sources.locate(t) for t in SOURCE_TABLES}
    if sources.generate_demo_when_empty and not any(present.values()):
        from medmkt_assets.demo_data import generate  # heavy import only when needed

        context.log.info("No source files in %s: generating %d demo patients there.",
                         sources.source_dir, sources.demo_patients)
        generate(sources.path, patients=sources.demo_patients)
        present = {t: sources.locate(t) for t in SOURCE_TABLES}

    missing = [t for t, spec in SOURCE_TABLES.items() if spec.required and present[t] is None]
    if missing:
        raise dg.Failure(
            f"Required source table(s) missing in {sources.source_dir}: "
            + ", ".join(f"{t} (expected {t}.csv or {t}.parquet)" for t in missing)
        )
    rows = [
        {"table": t, "required": SOURCE_TABLES[t].required, "present": p is not None,
         "file": str(p) if p else None, "bytes": p.stat().st_size if p else None,
         "sha256": _sha256(p) if p else None}
        for t, p in present.items()
    ]
    inventory = pd.DataFrame(rows)
    with transaction(warehouse) as con:
        con.register("inventory_df", inventory)
        con.execute("CREATE OR REPLACE TABLE ops.source_files AS SELECT *, now() AS inventoried_at FROM inventory_df")
        con.unregister("inventory_df")
    absent = [t for t, p in present.items() if p is None]
    if absent:
        context.log.warning("Optional source tables absent (their assets will be empty and say so): %s",
                            ", ".join(absent))
    return dg.MaterializeResult(metadata={
        "source_dir": str(sources.source_dir),
        "tables_present": int(inventory["present"].sum()),
        "tables_absent": dg.MetadataValue.text(", ".join(absent) or "none"),
        "inventory": dg.MetadataValue.md(inventory.drop(columns=["sha256"]).to_markdown(index=False)),
    })


def _raw_asset(table: str) -> dg.AssetsDefinition:
    spec = SOURCE_TABLES[table]

    @dg.asset(
        key=["raw", table], deps=[SOURCE_INVENTORY], group_name="ingest", kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        description=f"Source table {table} as text, every row with _source_file and _source_row"
                    f"{' (required)' if spec.required else ' (optional: empty when absent)'}.",
    )
    def _asset(context: dg.AssetExecutionContext, sources: SourceFiles,
               warehouse: DuckDBResource) -> dg.MaterializeResult:
        path = sources.locate(table)
        try:
            with transaction(warehouse) as con:
                load = load_raw_table(con, spec, path, f"raw.{table}")
                sample = preview(con, f"raw.{table}")
        except SourceError as exc:
            raise dg.Failure(description=str(exc)) from None
        if path is None:
            context.log.warning("Source table %s is absent from %s: raw.%s is empty, its dependants "
                                "will be empty too.", table, sources.source_dir, table)
        if load.extra_columns:
            context.log.info("%s: extra columns kept in raw.%s but not staged: %s",
                             path, table, ", ".join(load.extra_columns))
        return dg.MaterializeResult(metadata={
            "dagster/row_count": load.rows,
            "source_file": dg.MetadataValue.path(load.source_file) if load.source_file else "absent",
            "extra_columns": ", ".join(load.extra_columns) or "none",
            "missing_optional_columns": ", ".join(load.missing_optional_columns) or "none",
            "preview": sample,
        })

    return _asset


raw_assets = [_raw_asset(t) for t in SOURCE_TABLES]
