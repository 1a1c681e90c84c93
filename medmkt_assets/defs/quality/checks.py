"""Asset checks from the quality suites: one Dagster check per gate, ERROR gates blocking."""
import dagster as dg

from medmkt_assets.defs.resources import QualityDocs, Warehouse
from medmkt_assets.defs.warehouse import WAREHOUSE_POOL
from medmkt_assets.lib.ops.quality import (
    Check,
    ensure_baselines,
    feature_checks,
    measure,
    record_baselines,
    staged_checks,
    validate,
    voice_checks,
)
from medmkt_assets.lib.sources.schema import SOURCE_TABLES

SEVERITY = {"ERROR": dg.AssetCheckSeverity.ERROR, "WARN": dg.AssetCheckSeverity.WARN}


def _suite_checks(asset_key: dg.AssetKey, table: str, checks: list[Check]) -> dg.AssetChecksDefinition:
    suite = table  # e.g. staging.orders: the GX suite and Data Docs page are named for the table

    @dg.multi_asset_check(
        specs=[dg.AssetCheckSpec(name=c.name, asset=asset_key, blocking=c.blocking,
                                 description=f"{c.description} ({c.severity}; allowed {c.allowed})")
               for c in checks],
        name=f"quality_{table.replace('.', '_')}", pool=WAREHOUSE_POOL,  # it writes ops.quality_baselines
        description=f"Great Expectations suite '{suite}': metrics computed in DuckDB, judged by GX.",
    )
    def _checks(context: dg.AssetCheckExecutionContext, warehouse: Warehouse, quality: QualityDocs):
        # Baselines are keyed by the materialization judged: a check run again on the same data
        # compares with the same previous materialization (re-running a check changes nothing).
        event = context.instance.get_latest_materialization_event(asset_key)
        materialization = event.run_id if event else ""
        with warehouse.transaction() as con:
            ensure_baselines(con)
            observed = measure(con, checks, materialization)
            record_baselines(con, table, materialization)
        for outcome in validate(suite, checks, observed, quality.folder, run_name=context.run.run_id):
            yield dg.AssetCheckResult(
                asset_key=asset_key, check_name=outcome.check.name, passed=outcome.passed,
                severity=SEVERITY[outcome.check.severity],
                metadata={"observed": outcome.observed, "allowed": outcome.check.allowed,
                          "guards": outcome.check.description, "gx_suite": suite,
                          # this validation's result page over HTTP (a file:// link does not open from the UI)
                          "data_docs": dg.MetadataValue.url(quality.page_url(outcome.report))},
            )

    return _checks


staged_quality_checks = [_suite_checks(dg.AssetKey(["staging", t]), f"staging.{t}", staged_checks(t))
                         for t in SOURCE_TABLES]
feature_quality_checks = _suite_checks(dg.AssetKey(["features", "patient_features"]), "features.patient_features",
                                       feature_checks())
voice_quality_checks = [_suite_checks(dg.AssetKey(table.split(".")), table, checks)
                        for table, checks in voice_checks().items()]
