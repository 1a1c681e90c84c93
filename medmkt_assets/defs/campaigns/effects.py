"""marts.campaign_effects and marts.campaign_effects_by_group (issue 8)."""
import dagster as dg
import pandas as pd

from medmkt_assets.defs.resources import Warehouse
from medmkt_assets.defs.warehouse import REFRESH_WHEN_INPUTS_CHANGE, WAREHOUSE_POOL
from medmkt_assets.lib.models.campaigns import ROI_FLAGS, campaign_effects, suppress_effects

ARM_TOTALS = """
    count(*) FILTER (WHERE c.arm = 'treatment') AS treated,
    count(*) FILTER (WHERE c.arm = 'control') AS control,
    count(*) FILTER (WHERE c.arm = 'treatment' AND c.converted) AS treated_conversions,
    count(*) FILTER (WHERE c.arm = 'control' AND c.converted) AS control_conversions,
    coalesce(sum(c.revenue) FILTER (WHERE c.arm = 'treatment'), 0) AS treated_revenue,
    coalesce(sum(c.revenue) FILTER (WHERE c.arm = 'control'), 0) AS control_revenue,
    coalesce(sum(k.cost_per_contact) FILTER (WHERE c.arm = 'treatment'), 0) AS cost
"""
BY_CAMPAIGN_SQL = f"""
SELECT c.campaign_id, any_value(k.name) AS name, any_value(k.purpose) AS purpose,
       any_value(k.channel) AS channel, any_value(k.target_category) AS target_category,
       any_value(k.start_date) AS start_date, {ARM_TOTALS}
FROM staging.campaign_contacts c JOIN staging.campaigns k USING (campaign_id)
GROUP BY c.campaign_id ORDER BY c.campaign_id
"""
BY_GROUP_SQL = f"""
SELECT c.campaign_id, 'segment' AS group_type, s.segment_label AS group_value, {ARM_TOTALS}
FROM staging.campaign_contacts c JOIN staging.campaigns k USING (campaign_id)
JOIN marts.patient_segments s USING (patient_key)
GROUP BY ALL
UNION ALL BY NAME
SELECT 'all campaigns' AS campaign_id, 'channel' AS group_type, coalesce(k.channel, 'unknown') AS group_value,
       {ARM_TOTALS}
FROM staging.campaign_contacts c JOIN staging.campaigns k USING (campaign_id)
GROUP BY ALL
ORDER BY campaign_id, group_type, group_value
"""
# The published rows as a reader wants them: which campaign (name, channel, purpose), which group.
BY_GROUP_SHOWN_SQL = """
SELECT g.campaign_id, k.name, k.channel, k.purpose, g.group_type, g.group_value, g.treated, g.control,
       round(g.uplift, 4) AS uplift, round(g.uplift_ci_low, 4) AS uplift_ci_low,
       round(g.uplift_ci_high, 4) AS uplift_ci_high, g.suppressed
FROM marts.campaign_effects_by_group g LEFT JOIN staging.campaigns k USING (campaign_id)
ORDER BY g.group_type DESC, g.campaign_id, g.group_value"""
COLUMNS = ("treated", "control", "treated_conversion_rate", "control_conversion_rate", "uplift", "uplift_ci_low",
           "uplift_ci_high", "p_value", "cost", "incremental_conversions", "incremental_revenue", "roi", "suppressed",
           "cost_per_contact", "roi_plausible", "roi_flag")
_TYPES = {"suppressed": "boolean", "roi_plausible": "boolean", "roi_flag": "string"}


def _no_effects(arms: pd.DataFrame) -> pd.DataFrame:
    """The effect columns of no campaign, typed (an untyped empty column would be text on Spark)."""
    return arms.assign(**{c: pd.Series(dtype=_TYPES.get(c, "float64")) for c in COLUMNS})


@dg.asset(
    key=["marts", "campaign_effects"], group_name="campaigns", kinds={"duckdb"}, pool=WAREHOUSE_POOL, automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    deps=[dg.AssetKey(["staging", "campaigns"]), dg.AssetKey(["staging", "campaign_contacts"])],
)
def campaign_effects_mart(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Uplift of each campaign's treated arm over its random control arm, with a 95% CI (Newcombe), p-value and ROI."""
    with warehouse.transaction() as con:
        arms = con.execute(BY_CAMPAIGN_SQL).fetchdf()
        effects = suppress_effects(campaign_effects(arms)) if len(arms) else _no_effects(arms)
        effects["ci_method"] = "Newcombe hybrid score (method 10), 95%"
        published = effects[["campaign_id", "name", "purpose", "channel", "target_category", "start_date",
                             *COLUMNS, "ci_method"]]
        con.write_frame(published, "marts.campaign_effects")
    if published.empty:
        context.log.warning("No campaign contacts in the source: campaign_effects is empty.")
    shown = published[["campaign_id", "name", "channel", "purpose", "treated", "control", "uplift", "uplift_ci_low",
                       "uplift_ci_high", "p_value", "cost_per_contact", "roi", "roi_flag"]].round(4)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(published),
        "effects": dg.MetadataValue.md(shown.to_markdown(index=False) if len(shown) else "(no campaigns with contacts)"),
        "significant_at_5pct": int((published.p_value < 0.05).sum()) if len(published) else 0,
        "roi_flags": dg.MetadataValue.md("\n".join(f"- `{k}`: {v}" for k, v in ROI_FLAGS.items())),
    })


@dg.asset(
    key=["marts", "campaign_effects_by_group"], group_name="campaigns", kinds={"duckdb"}, pool=WAREHOUSE_POOL, automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    deps=[dg.AssetKey(["staging", "campaigns"]), dg.AssetKey(["staging", "campaign_contacts"]),
          dg.AssetKey(["marts", "patient_segments"])],
)
def campaign_effects_by_group(warehouse: Warehouse) -> dg.MaterializeResult:
    """The same effect measures per campaign and segment, and per channel across campaigns; small cells hidden."""
    with warehouse.transaction() as con:
        arms = con.execute(BY_GROUP_SQL).fetchdf()
        effects = (suppress_effects(campaign_effects(arms), partition=["campaign_id", "group_type"]) if len(arms)
                   else _no_effects(arms))
        published = effects[["campaign_id", "group_type", "group_value", *COLUMNS]]
        con.write_frame(published, "marts.campaign_effects_by_group")
        shown = con.execute(BY_GROUP_SHOWN_SQL).fetchdf()
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(published),
        "suppressed_cells": int(published.suppressed.fillna(False).sum()) if len(published) else 0,
        "effects_by_group": dg.MetadataValue.md(shown.to_markdown(index=False) if len(shown)
                                                else "(no campaigns with contacts)"),
    })
