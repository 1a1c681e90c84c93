"""Raw assets: an inventory of the source files, then one raw table per contract table."""
import hashlib
from pathlib import Path

import dagster as dg
import pandas as pd

from medmkt_assets.defs.resources import SourceFiles, Warehouse
from medmkt_assets.defs.warehouse import WAREHOUSE_POOL, preview, row_count
from medmkt_assets.lib.sources.adapters import open_adapter
from medmkt_assets.lib.sources.files import (
    RawLoad,
    SourceError,
    append_batches,
    load_raw_from_select,
    load_raw_table,
)
from medmkt_assets.lib.sources.incoming import sha256
from medmkt_assets.lib.sources.schema import SOURCE_TABLES

SOURCE_INVENTORY = dg.AssetKey(["ops", "source_files"])


def _canonical_inventory(context: dg.AssetExecutionContext, sources: SourceFiles) -> list[dict]:
    present = {t: sources.files(t) for t in SOURCE_TABLES}
    if sources.generate_demo_when_empty and not any(present.values()):
        from medmkt_assets.demo_data import generate  # heavy import only when needed

        context.log.info("No source files in %s: generating %d demo patients there.",
                         sources.source_dir, sources.demo_patients)
        generate(sources.path, patients=sources.demo_patients)
        present = {t: sources.files(t) for t in SOURCE_TABLES}
    missing = [t for t, spec in SOURCE_TABLES.items() if spec.required and not present[t]]
    if missing:
        raise dg.Failure(
            f"Required source table(s) missing in {sources.source_dir}: "
            + ", ".join(f"{t} (expected {t}.csv or {t}.parquet)" for t in missing)
        )
    absent = [t for t, files in present.items() if not files]
    if absent:
        context.log.warning("Optional source tables absent (their assets will be empty and say so): %s",
                            ", ".join(absent))
    return [{"table": t, "file": str(p)} for t, files in present.items() for p in files]


@dg.asset(key=SOURCE_INVENTORY, group_name="ingest", kinds={"duckdb", "file"}, pool=WAREHOUSE_POOL)
def source_files(context: dg.AssetExecutionContext, sources: SourceFiles,
                 warehouse: Warehouse) -> dg.MaterializeResult:
    """Inventory of the source files (path, size, content hash); demo data is generated when the default folder is empty."""
    notes: dict[str, str] = {}
    with warehouse.transaction() as con:
        if sources.source_format == "canonical":
            rows = _canonical_inventory(context, sources)
        else:
            try:
                adapter = open_adapter(con, sources.source_format, sources.path, sources.source_mapping,
                                       sources.native_batches())
            except SourceError as exc:
                raise dg.Failure(description=str(exc)) from None
            rows = [{"table": None, "file": str(p)} for p in adapter.files]
            rows += [{"table": t, "file": str(p)} for t in SOURCE_TABLES  # side files, then canonical batches
                     for p in (_side_files(sources, t) if adapter.select(t) is None else []) + sources.batches(t)]
            notes = adapter.notes
        inventory = pd.DataFrame(rows, columns=["table", "file"])
        inventory["bytes"] = [Path(f).stat().st_size for f in inventory["file"]]
        inventory["sha256"] = [sha256(Path(f)) for f in inventory["file"]]
        con.write_frame(inventory, "ops.source_files", query="SELECT *, now() AS inventoried_at FROM frame")
    # One id for this exact set of inputs (content hashes only): MLflow runs carry it as a tag,
    # so a reviewer can tell runs on the same data from runs on new data.
    snapshot = hashlib.sha256("\n".join(sorted(inventory["sha256"])).encode()).hexdigest()[:16]
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(inventory),
        "data_snapshot": snapshot,
        "source_dir": str(sources.source_dir),
        "source_format": sources.source_format,
        "files": len(inventory),
        "inventory": dg.MetadataValue.md(inventory.drop(columns=["sha256"]).to_markdown(index=False)),
        **{f"source_{k}": v for k, v in notes.items()},
    })


def _side_files(sources: SourceFiles, table: str) -> list[Path]:
    """A canonical `<table>.csv|.parquet` beside a Synthea, FHIR or OMOP export, for the tables the
    format lacks (campaigns, consents, ...: a CRM's files next to the EHR's export)."""
    main = sources.locate(table) if sources.source_format in ("synthea", "fhir", "omop") else None
    return [main] if main else []


def _load_export_table(con, sources: SourceFiles, table: str) -> tuple[RawLoad, dict[str, str]]:
    """raw.<table> from the export's adapter, or from a canonical file beside it when the format has
    no such table; accepted drop-zone batches appended either way."""
    spec = SOURCE_TABLES[table]
    adapter = open_adapter(con, sources.source_format, sources.path, sources.source_mapping,
                           sources.native_batches())
    select = adapter.select(table)
    if select is None:
        load = load_raw_table(con, spec, _side_files(sources, table), f"raw.{table}")
    else:
        load = load_raw_from_select(con, spec, select, f"raw.{table}",
                                    f"{sources.source_format} export {sources.source_dir}")
    return append_batches(con, spec, sources.batches(table), f"raw.{table}", load), adapter.notes


def _loaded_without(con, table: str, batch: Path) -> bool:
    """raw.<table> exists and does not hold the batch yet (else a full reload is the safe path)."""
    return con.table_exists(f"raw.{table}") and con.execute(f"SELECT count(*) FROM raw.{table} WHERE _source_file = ?",
                                        [str(batch)]).fetchall()[0][0] == 0


def _raw_asset(table: str) -> dg.AssetsDefinition:
    spec = SOURCE_TABLES[table]

    @dg.asset(
        key=["raw", table], deps=[SOURCE_INVENTORY], group_name="ingest", kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        description=f"Source table {table} as text, every row with _source_file and _source_row"
                    f"{' (required)' if spec.required else ' (optional: empty when absent)'}.",
    )
    def _asset(context: dg.AssetExecutionContext, sources: SourceFiles,
               warehouse: Warehouse) -> dg.MaterializeResult:
        notes: dict[str, str] = {}
        try:
            with warehouse.transaction() as con:
                batch = sources.batch_of_run(context.run.tags, table)
                if batch is not None and _loaded_without(con, table, batch):
                    # a run the file sensor started for one new batch: append it, do not reload everything
                    load = append_batches(con, spec, [batch], f"raw.{table}",
                                          RawLoad(table, [], row_count(con, f"raw.{table}")))
                elif sources.source_format == "canonical":
                    load = load_raw_table(con, spec, sources.files(table), f"raw.{table}")
                else:
                    load, notes = _load_export_table(con, sources, table)
                sample = preview(con, f"raw.{table}", only=spec.columns)
        except SourceError as exc:
            raise dg.Failure(description=str(exc)) from None
        if not load.source_files:
            context.log.warning("Source table %s is absent (%s source): raw.%s is empty, its dependants "
                                "will be empty too.", table, sources.source_format, table)
        if load.extra_columns:
            context.log.info("%s: extra columns kept in raw.%s but not staged: %s",
                             table, table, ", ".join(load.extra_columns))
        return dg.MaterializeResult(metadata={
            "dagster/row_count": load.rows,
            "source_files": dg.MetadataValue.text("\n".join(load.source_files) or "absent"),
            "extra_columns": ", ".join(load.extra_columns) or "none",
            "missing_optional_columns": ", ".join(load.missing_optional_columns) or "none",
            "preview": sample,
            **{f"source_{k}": v for k, v in notes.items()},
        })

    return _asset


raw_assets = [_raw_asset(t) for t in SOURCE_TABLES]
