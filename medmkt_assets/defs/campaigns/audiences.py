"""marts.audiences and the audience export files for planned campaigns (issue 8)."""
from datetime import datetime, timezone

import dagster as dg
from pydantic import Field

from medmkt_assets.defs.resources import ExportDir, Warehouse
from medmkt_assets.defs.warehouse import (
    REFRESH_WHEN_INPUTS_CHANGE,
    WAREHOUSE_POOL,
    row_count,
)
from medmkt_assets.lib.privacy.audiences import (
    PLANNED_CAMPAIGNS_SQL,
    REASON_COUNTS_SQL,
    export_audience,
    judge_audiences,
    write_private_json,
)
from medmkt_assets.lib.privacy.suppression import hide_complement, is_small_cell


class AudienceConfig(dg.Config):
    audience_share: float = Field(default=0.5, description="Share of eligible patients kept, best expected uplift first.")
    max_size: int = Field(default=0, description="Largest audience per campaign (0 = no cap).")
    holdout_share: float = Field(default=0.1, description="Random share of the audience held out, never contacted.")


AUDIENCES = dg.AssetKey(["marts", "audiences"])
EXCLUSIONS = dg.AssetKey(["marts", "audience_exclusions"])
_INPUTS = [dg.AssetKey(["marts", k]) for k in ("uplift_scores", "propensity_scores", "patient_segments",
                                                "patient_profiles")] + [
    dg.AssetKey(["staging", t]) for t in ("consents", "campaigns", "orders", "products")]


# One step writes both tables (the exclusion counts come from the same judgement of every patient),
# so both are outputs of it: marts.audience_exclusions is materialized in every run that builds the
# audiences, and its blocking small_cells_hidden check runs with it (it never did as a side table).
@dg.multi_asset(
    specs=[
        dg.AssetSpec(AUDIENCES, group_name="campaigns", kinds={"duckdb", "csv"}, deps=_INPUTS,
                     automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
                     description="Consent-aware audiences per planned campaign, ranked by expected uplift, with a "
                                 "holdout; exported as 0600 CSVs."),
        dg.AssetSpec(EXCLUSIONS, group_name="campaigns", kinds={"duckdb"}, deps=_INPUTS,
                     automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
                     description="Patients per planned campaign and exclusion reason (1-10 suppressed, with the "
                                 "sibling that would give a hidden cell back)."),
    ],
    pool=WAREHOUSE_POOL, name="audiences",
)
def audiences(context: dg.AssetExecutionContext, config: AudienceConfig, warehouse: Warehouse,
              exports: ExportDir):
    """Consent-aware audiences per planned campaign, ranked by expected uplift, with a holdout; exported as
    0600 CSVs; and the patients per exclusion reason."""
    with warehouse.transaction() as con:
        planned = con.execute(PLANNED_CAMPAIGNS_SQL).fetchall()
        judge_audiences(con, planned, config.audience_share, config.max_size, config.holdout_share)
        counts = con.execute(REASON_COUNTS_SQL).fetchdf()
        # the reasons of one campaign add up to every profiled patient: hide a lone small cell's sibling too
        hidden = hide_complement(counts.n.apply(is_small_cell), counts.n, counts[["campaign_id"]])
        exclusions = counts.assign(patients=counts.n.astype("Float64").mask(hidden), suppressed=hidden)
        con.write_frame(exclusions.drop(columns=["n"]), "marts.audience_exclusions")
        manifest = _export(context, con, exports, planned, counts)
        n = row_count(con, "marts.audiences")
        table = con.execute("SELECT campaign_id, reason, patients FROM marts.audience_exclusions "
                            "ORDER BY ALL").fetchdf()
    if not planned:
        context.log.warning("No planned campaigns (campaigns without contacts): no audiences to build.")
    shown = dg.MetadataValue.md(table.to_markdown(index=False) if len(table) else "(none)")
    yield dg.MaterializeResult(asset_key=AUDIENCES, metadata={
        "dagster/row_count": n,
        "export_dir": dg.MetadataValue.path(str(exports.folder)),
        "files": ", ".join(c["file"] for c in manifest["campaigns"]) or "(none)",
        "selection_and_exclusions": shown,
    })
    yield dg.MaterializeResult(asset_key=EXCLUSIONS, metadata={
        "dagster/row_count": len(table), "exclusions": shown})


def _export(context: dg.AssetExecutionContext, con, exports: ExportDir, planned: list[tuple], counts) -> dict:
    """One owner-only CSV per planned campaign (contact details only here) and a manifest of counts."""
    run_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    manifest = {"run_id": context.run.run_id, "written_at": run_at, "campaigns": []}
    for cid, purpose, channel, category, name in planned:
        path = exports.folder / f"audience_{cid}.csv"
        exported = export_audience(con, cid, channel, path)
        manifest["campaigns"].append({
            "campaign_id": cid, "name": name, "purpose": purpose, "channel": channel,
            "target_category": category, "file": path.name, "exported": exported,
            "counts": {r.reason: int(r.n) for r in counts.itertuples() if r.campaign_id == cid},
        })
    write_private_json(exports.folder / "audience_manifest.json", manifest)
    return manifest

