"""One staging asset per source table, plus its row-accounting check."""

import dagster as dg

from medmkt_assets.defs.resources import (
    PseudonymKey,
    SensitiveData,
    SourceFiles,
    Warehouse,
)
from medmkt_assets.defs.warehouse import (
    WAREHOUSE_POOL,
    markdown_counts,
    preview,
    row_count,
)
from medmkt_assets.lib.privacy.suppression import suppressed_counts
from medmkt_assets.lib.sources.schema import SOURCE_TABLES
from medmkt_assets.lib.sources.staging import stage_batch, stage_table
from medmkt_assets.lib.sources.staging_specs import SCREENED_TABLES, build_specs

# Staged tables a table's referential checks read.
PARENTS = {
    "orders": ("patients", "products"),
    "diagnoses": ("patients",),
    "campaign_contacts": ("campaigns", "patients"),
    "consents": ("patients",),
    "surveys": ("patients",),
    "events": ("patients", "products"),  # an event about a withheld product is withheld too
}


def _staging_asset(table: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["staging", table],
        deps=[dg.AssetKey(["raw", table])] + [dg.AssetKey(["staging", p]) for p in PARENTS.get(table, ())],
        group_name="staging", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
        description=f"Typed, pseudonymized {table}; rows that fail validation go to quarantine.{table} "
                    "with a _reason" + (" (identifiers kept only in restricted.patients)" if table == "patients" else "")
                    + "; rows of a sensitive family (the sensitive-data policy) go to restricted.sensitive_"
                    + f"{table}, never to staging.",
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: Warehouse, pseudonym: PseudonymKey,
               sources: SourceFiles, sensitive: SensitiveData) -> dg.MaterializeResult:
        spec = build_specs(pseudonym.key(context.log), sensitive.policy())[table]
        batch = sources.batch_of_run(context.run.tags, table)
        with warehouse.transaction() as con:
            # a run the file sensor started for one batch stages just that batch when it can
            result = batch and stage_batch(con, spec, f"raw.{table}", str(batch))
            if not result:
                result = stage_table(con, spec, f"raw.{table}")
            sample = preview(con, f"staging.{table}")
        if result.quarantined_rows:
            context.log.warning("%s: %d of %d rows quarantined in quarantine.%s", table,
                                result.quarantined_rows, result.raw_rows, table)
        if result.raw_rows == 0 and not SOURCE_TABLES[table].required:
            context.log.info("%s: no source rows (table absent or empty); staging.%s is empty.", table, table)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": result.staged_rows,
            "raw_rows": result.raw_rows,
            "quarantined_rows": result.quarantined_rows,
            "quarantine_reasons": markdown_counts(result.reasons),
            **({"withheld_as_sensitive": result.withheld_rows,
                "withheld_by_family": markdown_counts(suppressed_counts(result.withheld))}
               if spec.withheld_table else {}),
            "staged_this_run": dg.MetadataValue.text(
                f"only the new batch ({result.batch_rows} rows)" if result.batch_rows is not None else "every raw row"),
            "preview": sample,
        })

    return _asset


def _row_accounting_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["staging", table]), name="check_row_accounting", blocking=True, pool=WAREHOUSE_POOL,
        description=f"raw.{table} rows = staging.{table} rows + quarantine.{table} rows (+ rows withheld as "
                    f"sensitive in restricted.sensitive_{table}): no row is lost.",
    )
    def _check(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.session() as con:
            raw = row_count(con, f"raw.{table}")
            staged = row_count(con, f"staging.{table}")
            quarantined = row_count(con, f"quarantine.{table}")
            withheld = row_count(con, f"restricted.sensitive_{table}") if table in SCREENED_TABLES else 0
        return dg.AssetCheckResult(
            passed=raw == staged + quarantined + withheld,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"raw_rows": raw, "staged_rows": staged, "quarantined_rows": quarantined,
                      "withheld_rows": withheld, "unaccounted_rows": raw - staged - quarantined - withheld},
        )

    return _check


staging_assets = [_staging_asset(t) for t in SOURCE_TABLES]
staging_checks = [_row_accounting_check(t) for t in SOURCE_TABLES]
