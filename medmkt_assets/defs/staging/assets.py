"""The run's as-of time, one staging asset per source table, their row-accounting checks and,
on the required tables, the check that stops a run which quarantined most of a table."""
from datetime import datetime, timedelta

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
from medmkt_assets.lib.privacy.pseudonym import DEVELOPMENT_KEY
from medmkt_assets.lib.privacy.suppression import suppressed_counts
from medmkt_assets.lib.sources.as_of import (
    AS_OF_TABLE,
    EVENT_DATES,
    read_as_of,
    resolve_as_of,
    write_as_of,
)
from medmkt_assets.lib.sources.quarantine_share import quarantine_verdict
from medmkt_assets.lib.sources.schema import SOURCE_TABLES
from medmkt_assets.lib.sources.staging import stage_batch, stage_table
from medmkt_assets.lib.sources.staging_specs import SCREENED_TABLES, build_specs, holds_patients

# Staged tables a table's referential checks read.
PARENTS = {
    "orders": ("patients", "products"),
    "diagnoses": ("patients",),
    "campaign_contacts": ("campaigns", "patients"),
    "consents": ("patients",),
    "surveys": ("patients",),
    "events": ("patients", "products"),  # an event about a withheld product is withheld too
}
AS_OF_KEY = dg.AssetKey(["staging", "as_of"])


@dg.asset(key=AS_OF_KEY, deps=[dg.AssetKey(["raw", t]) for t, _ in EVENT_DATES], group_name="staging",
          kinds={"duckdb"}, pool=WAREHOUSE_POOL)
def as_of(context: dg.AssetExecutionContext, warehouse: Warehouse, sources: SourceFiles) -> dg.MaterializeResult:
    """The export's as-of time (MEDMKT_AS_OF, else its latest event): what "in the future", ages and recency mean."""
    now = datetime.now()
    with warehouse.transaction() as con:
        found = resolve_as_of(con, sources.as_of or None, now)
        write_as_of(con, found)
    if found.as_of > now + timedelta(days=1):
        context.log.info("As-of time %s (%s) is after today: a date-shifted export is judged by its own dates.",
                         found.as_of, found.basis)
    if found.events_after:
        context.log.warning("%d dated events lie after the as-of time %s (%s); staging quarantines them as in the "
                            "future (set MEDMKT_AS_OF to judge them otherwise).", found.events_after, found.as_of,
                            found.basis)
    return dg.MaterializeResult(metadata={
        "as_of": str(found.as_of), "basis": found.basis, "dated_events": found.events,
        "events_after_as_of": found.events_after, "table": AS_OF_TABLE})


def _staging_asset(table: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["staging", table],
        deps=[dg.AssetKey(["raw", table]), AS_OF_KEY] + [dg.AssetKey(["staging", p]) for p in PARENTS.get(table, ())],
        group_name="staging", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
        description=f"Typed, pseudonymized {table}; rows that fail validation go to quarantine.{table} "
                    "with a _reason" + (" (identifiers kept only in restricted.patients)" if table == "patients" else "")
                    + "; rows of a sensitive family (the sensitive-data policy) go to restricted.sensitive_"
                    + f"{table}, never to staging.",
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: Warehouse, pseudonym: PseudonymKey,
               sources: SourceFiles, sensitive: SensitiveData) -> dg.MaterializeResult:
        batch = sources.batch_of_run(context.run.tags, table)
        with warehouse.transaction() as con:
            # only a table that holds patients needs the key (and warns when it is the development key)
            key = pseudonym.key(context.log) if holds_patients(table) else DEVELOPMENT_KEY
            spec = build_specs(key, read_as_of(con), sensitive.policy())[table]
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


def _quarantine_share_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["staging", table]), name="check_quarantine_share", blocking=True, pool=WAREHOUSE_POOL,
        description=f"At most MEDMKT_MAX_QUARANTINE_SHARE (default half) of raw.{table} quarantined: a run that "
                    "threw most of a required table away fails, naming the top reasons and what to try.",
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: Warehouse,
               sources: SourceFiles) -> dg.AssetCheckResult:
        with warehouse.session() as con:
            raw = row_count(con, f"raw.{table}")
            reasons = dict(con.execute(f"SELECT _reason, count(*) FROM quarantine.{table} GROUP BY 1").fetchall())
            as_of_time, basis = con.execute(f"SELECT as_of, basis FROM {AS_OF_TABLE} LIMIT 1").fetchall()[0]
        verdict = quarantine_verdict(table, raw, reasons, sources.max_quarantine_share, str(as_of_time), basis)
        if not verdict.passed:
            context.log.error(verdict.message)
        return dg.AssetCheckResult(
            passed=verdict.passed, severity=dg.AssetCheckSeverity.ERROR, description=verdict.message,
            metadata={"quarantined_share": verdict.share, "max_allowed": sources.max_quarantine_share,
                      "raw_rows": raw, "as_of": str(as_of_time), "as_of_basis": basis,
                      "quarantine_reasons": markdown_counts(reasons)},
        )

    return _check


staging_assets = [as_of] + [_staging_asset(t) for t in SOURCE_TABLES]
staging_checks = ([_row_accounting_check(t) for t in SOURCE_TABLES]
                  + [_quarantine_share_check(t) for t, spec in SOURCE_TABLES.items() if spec.required])
