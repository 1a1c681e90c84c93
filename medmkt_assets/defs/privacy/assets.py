"""ops.sensitive_use: what the sensitive-data policy withheld this run, and the blocking check that no
marts table and no marketing feature list carries a trace of it (lib.ops.sensitive_use)."""
import dagster as dg

from medmkt_assets.defs.resources import SensitiveData, Warehouse
from medmkt_assets.defs.warehouse import (
    REFRESH_WHEN_INPUTS_CHANGE,
    WAREHOUSE_POOL,
    markdown_counts,
)
from medmkt_assets.lib.ops.sensitive_use import (
    PUBLISHED_MARTS,
    feature_leaks,
    marts_leaks,
    sensitive_use,
    withheld_counts,
)
from medmkt_assets.lib.privacy.care_programmes import (
    AUDIENCE_TABLE,
    build_care_audiences,
)
from medmkt_assets.lib.privacy.suppression import suppressed_counts
from medmkt_assets.lib.sources.staging_specs import SCREENED_TABLES

# The assets that write the marts and feature tables the check reads (some write more than one:
# marts/uplift_scores also writes marts.uplift_models,
# marts/recommendations marts.recommendation_evaluation).
MARKETING_OUTPUTS = [dg.AssetKey(["marts", t]) for t in (
    "patient_profiles", "patient_segments", "segment_summary", "association_rules", "recommendations",
    "propensity_scores", "uplift_scores", "campaign_effects", "campaign_effects_by_group", "demand_trends",
    "audiences", "audience_exclusions", "product_catalog", "campaign_catalog", "condition_catalog",
    "comment_topics", "voice_topics", "voice_topic_trends", "voice_examples", "voice_quality", "satisfaction_drivers",
    "nps_summary", "search_themes", "search_theme_terms")] + [
    dg.AssetKey(["features", t]) for t in ("patient_features", "campaign_training", "risk_training")]


@dg.asset(key=["ops", "sensitive_use"], group_name="privacy", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
          automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
          deps=[dg.AssetKey(["staging", t]) for t in SCREENED_TABLES] + MARKETING_OUTPUTS)
def sensitive_use_asset(warehouse: Warehouse, sensitive: SensitiveData) -> dg.MaterializeResult:
    """Rows withheld from marketing by the sensitive-data policy, per family and source table, with the
    rule behind each family (counts of 1-10 suppressed)."""
    policy = sensitive.policy()
    with warehouse.transaction() as con:
        table = sensitive_use(withheld_counts(con), policy)
        con.write_frame(table, "ops.sensitive_use")
    shown = table[table.rows_withheld.fillna(1) > 0].drop(columns=["legal_basis"])
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(table),
        "policy": dg.MetadataValue.path(policy.source),
        "families": ", ".join(f.name for f in policy.families),
        "care_programmes": ", ".join(f"{p.name} ({p.purpose})" for p in policy.care_programmes) or "(none)",
        "withheld": dg.MetadataValue.md(shown.to_markdown(index=False) if len(shown) else "(nothing withheld)"),
    })


@dg.asset_check(asset=dg.AssetKey(["ops", "sensitive_use"]), name="no_sensitive_data_in_marketing", blocking=True,
                pool=WAREHOUSE_POOL,
                description="No marts table carries a withheld product, condition code, risk target, sensitive "
                            "category or a name the policy matches, and no marketing feature list (the columns of "
                            "features.*) is built from a withheld code or category.")
def no_sensitive_data_in_marketing(warehouse: Warehouse, sensitive: SensitiveData) -> dg.AssetCheckResult:
    policy = sensitive.policy()
    with warehouse.session() as con:
        leaks = marts_leaks(con, policy, [t for t in PUBLISHED_MARTS if con.table_exists(f"marts.{t}")])
        features = feature_leaks(con, policy)
    return dg.AssetCheckResult(passed=not leaks and not features, severity=dg.AssetCheckSeverity.ERROR, metadata={
        "marts_columns_with_sensitive_values": dg.MetadataValue.json(leaks),
        "sensitive_feature_columns": ", ".join(features) or "(none)",
        "marts_tables_checked": len(PUBLISHED_MARTS),
    })


@dg.asset(key=["restricted", "care_programme_audiences"], group_name="privacy", kinds={"duckdb"},
          pool=WAREHOUSE_POOL, automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
          deps=[dg.AssetKey(["staging", t]) for t in ("patients", "diagnoses", "orders", "campaigns",
                                                      "campaign_contacts", "consents")]
          + [dg.AssetKey(["marts", "patient_profiles"])])
def care_programme_audiences(context: dg.AssetExecutionContext, warehouse: Warehouse,
                             sensitive: SensitiveData) -> dg.MaterializeResult:
    """Audiences of planned care-programme campaigns (the policy's care_programmes): patients of the
    programme's family who consented to that programme, longest since their last treatment fill first.
    Kept in `restricted`: never a marts table, a marketing export or the insight app."""
    with warehouse.transaction() as con:
        built = build_care_audiences(con, sensitive.policy())
        sizes = dict(con.execute(f"SELECT campaign_id, count(*) FROM {AUDIENCE_TABLE} GROUP BY 1").fetchall())
    if not built:
        context.log.info("No planned care-programme campaign: %s is empty.", AUDIENCE_TABLE)
    shown = suppressed_counts({f"{cid} ({programme})": sizes.get(cid, 0) for cid, programme in built})
    return dg.MaterializeResult(metadata={
        "dagster/row_count": sum(sizes.values()),
        "campaigns": markdown_counts(shown, key="campaign (programme)", value="patients"),
    })
