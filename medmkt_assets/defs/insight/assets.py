"""marts.product_catalog, marts.campaign_catalog, marts.condition_catalog and ops/insight_snapshot (issue 20)."""
import json
from datetime import datetime, timezone

import dagster as dg

from medmkt_assets.defs.resources import ExportDir, InsightSnapshot, Warehouse
from medmkt_assets.defs.warehouse import (
    REFRESH_WHEN_INPUTS_CHANGE,
    WAREHOUSE_POOL,
    markdown_counts,
    row_count,
)
from medmkt_assets.lib.ops.insight import (
    CAMPAIGN_CATALOG_SQL,
    CONDITION_CATALOG_SQL,
    MANIFEST_FILE,
    manifest_frame,
    product_catalog_sql,
    publish_snapshot,
)

# The assets that write the tables the snapshot copies. Some write more than their own table:
# marts/audiences also writes the export manifest, marts/uplift_scores
# marts.uplift_models, marts/recommendations marts.recommendation_evaluation.
SNAPSHOT_DEPS = [dg.AssetKey(["marts", t]) for t in (
    "segment_summary", "demand_trends", "association_rules", "recommendations", "patient_segments",
    "campaign_effects", "campaign_effects_by_group", "audiences", "audience_exclusions", "uplift_scores",
    "product_catalog", "campaign_catalog", "condition_catalog",
    # the Patient voice page
    "voice_topics", "voice_topic_trends", "voice_examples", "voice_quality", "satisfaction_drivers", "nps_summary",
    "search_themes", "search_theme_terms")] + [
    dg.AssetKey(["ops", "sensitive_use"])]  # its blocking check keeps a leak of sensitive data out of the app


def _catalog(warehouse: Warehouse, sql: str, table: str) -> dg.MaterializeResult:
    with warehouse.transaction() as con:
        con.execute(sql)
        return dg.MaterializeResult(metadata={"dagster/row_count": row_count(con, table)})


@dg.asset(key=["marts", "product_catalog"], group_name="insight", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
          automation_condition=REFRESH_WHEN_INPUTS_CHANGE, deps=[dg.AssetKey(["staging", "products"])])
def product_catalog(warehouse: Warehouse) -> dg.MaterializeResult:
    """Product names (and Chinese names where the source has a `name_zh` column), categories and kinds
    (no descriptions), so published tables can show names, not codes."""
    with warehouse.transaction() as con:
        columns = con.describe("raw.products") if con.table_exists("raw.products") else []
    return _catalog(warehouse, product_catalog_sql(columns), "marts.product_catalog")


@dg.asset(key=["marts", "campaign_catalog"], group_name="insight", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
          automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
          deps=[dg.AssetKey(["staging", "campaigns"]), dg.AssetKey(["staging", "campaign_contacts"])])
def campaign_catalog(warehouse: Warehouse) -> dg.MaterializeResult:
    """Campaign names, purposes, channels and dates, and whether each is past (has contacts) or planned."""
    return _catalog(warehouse, CAMPAIGN_CATALOG_SQL, "marts.campaign_catalog")


@dg.asset(key=["marts", "condition_catalog"], group_name="insight", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
          automation_condition=REFRESH_WHEN_INPUTS_CHANGE, deps=[dg.AssetKey(["staging", "diagnoses"])])
def condition_catalog(warehouse: Warehouse) -> dg.MaterializeResult:
    """One name per condition code held by more than 10 patients (readable patient-scope rules)."""
    return _catalog(warehouse, CONDITION_CATALOG_SQL, "marts.condition_catalog")


@dg.asset(key=["ops", "insight_snapshot"], group_name="insight", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
          automation_condition=REFRESH_WHEN_INPUTS_CHANGE, deps=SNAPSHOT_DEPS)
def insight_snapshot(context: dg.AssetExecutionContext, warehouse: Warehouse, insight: InsightSnapshot,
                     exports: ExportDir) -> dg.MaterializeResult:
    """The read-only copy of what the insight app shows, written beside its target and renamed over it whole."""
    path = exports.folder / MANIFEST_FILE
    manifest = manifest_frame(json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None)
    if not path.is_file():
        context.log.warning("No audience manifest at %s: the snapshot's manifest table is empty.", path)
    with warehouse.session() as con:
        counts = publish_snapshot(con, insight.file, manifest, context.run.run_id, datetime.now(timezone.utc))
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(insight.file.resolve())),
        "tables": markdown_counts(counts, key="table", value="rows"),
        "dagster/row_count": sum(counts.values()),
    })
