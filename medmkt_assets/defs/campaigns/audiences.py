"""marts.audiences and the audience export files for planned campaigns (issue 8)."""
from datetime import datetime, timezone

import dagster as dg
from pydantic import Field

from medmkt_assets.defs.resources import ExportDir, Warehouse
from medmkt_assets.defs.warehouse import REFRESH_WHEN_INPUTS_CHANGE, WAREHOUSE_POOL, row_count
from medmkt_assets.lib.audiences import audience_sql, export_frame, write_private_csv, write_private_json
from medmkt_assets.lib.suppression import hide_complement, is_small_cell


class AudienceConfig(dg.Config):
    audience_share: float = Field(default=0.5, description="Share of eligible patients kept, best expected uplift first.")
    max_size: int = Field(default=0, description="Largest audience per campaign (0 = no cap).")
    holdout_share: float = Field(default=0.1, description="Random share of the audience held out, never contacted.")


@dg.asset(
    key=["marts", "audiences"], group_name="campaigns", kinds={"duckdb", "csv"}, pool=WAREHOUSE_POOL, automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    deps=[dg.AssetKey(["marts", k]) for k in ("uplift_scores", "propensity_scores", "patient_segments",
                                               "patient_profiles")]
    + [dg.AssetKey(["staging", t]) for t in ("consents", "campaigns", "orders", "products")],
)
def audiences(context: dg.AssetExecutionContext, config: AudienceConfig, warehouse: Warehouse,
              exports: ExportDir) -> dg.MaterializeResult:
    """Consent-aware audiences per planned campaign, ranked by expected uplift, with a holdout; exported as 0600 CSVs."""
    with warehouse.transaction() as con:
        planned = con.execute(
            "SELECT campaign_id, purpose, channel, target_category, name FROM staging.campaigns k WHERE NOT EXISTS "
            "(SELECT 1 FROM staging.campaign_contacts c WHERE c.campaign_id = k.campaign_id) "
            "ORDER BY campaign_id").fetchall()
        parts = [audience_sql(cid, purpose, channel, category, config.audience_share, config.max_size,
                              config.holdout_share) for cid, purpose, channel, category, _ in planned]
        if parts:
            con.execute("CREATE OR REPLACE TEMP TABLE _audience_judged AS "
                        + " UNION ALL ".join(f"SELECT * FROM ({p})" for p in parts))
        else:
            con.execute("CREATE OR REPLACE TEMP TABLE _audience_judged AS SELECT CAST(NULL AS VARCHAR) AS campaign_id, "
                        "CAST(NULL AS VARCHAR) AS patient_key, CAST(NULL AS INTEGER) AS segment_id, "
                        "CAST(NULL AS VARCHAR) AS segment_label, CAST(NULL AS DOUBLE) AS expected_uplift, "
                        "CAST(NULL AS DOUBLE) AS score, CAST(NULL AS VARCHAR) AS _exclusion, "
                        "CAST(NULL AS BIGINT) AS audience_rank, CAST(NULL AS VARCHAR) AS audience_group LIMIT 0")
        con.execute("CREATE OR REPLACE TABLE marts.audiences AS SELECT * EXCLUDE (_exclusion) FROM _audience_judged "
                    "WHERE _exclusion IS NULL ORDER BY campaign_id, audience_rank")
        counts = con.execute("SELECT campaign_id, coalesce(_exclusion, 'selected: ' || audience_group) AS reason, "
                             "count(*) AS n FROM _audience_judged GROUP BY ALL ORDER BY ALL").fetchdf()
        # the reasons of one campaign add up to every profiled patient: hide a lone small cell's sibling too
        hidden = hide_complement(counts.n.apply(is_small_cell), counts.n, counts[["campaign_id"]])
        exclusions = counts.assign(patients=counts.n.astype("Float64").mask(hidden), suppressed=hidden)
        con.write_frame(exclusions.drop(columns=["n"]), "marts.audience_exclusions")
        run_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        manifest = {"run_id": context.run.run_id, "written_at": run_at, "campaigns": []}
        for cid, purpose, channel, category, name in planned:
            frame = export_frame(con, cid, channel)
            path = exports.folder / f"audience_{cid}.csv"
            write_private_csv(path, frame)
            manifest["campaigns"].append({
                "campaign_id": cid, "name": name, "purpose": purpose, "channel": channel,
                "target_category": category, "file": path.name, "exported": len(frame),
                "counts": {r.reason: int(r.n) for r in counts.itertuples() if r.campaign_id == cid},
            })
        write_private_json(exports.folder / "audience_manifest.json", manifest)
        n = row_count(con, "marts.audiences")
        table = con.execute("SELECT campaign_id, reason, patients FROM marts.audience_exclusions "
                            "ORDER BY ALL").fetchdf()
    if not planned:
        context.log.warning("No planned campaigns (campaigns without contacts): no audiences to build.")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "export_dir": dg.MetadataValue.path(str(exports.folder)),
        "files": ", ".join(c["file"] for c in manifest["campaigns"]) or "(none)",
        "selection_and_exclusions": dg.MetadataValue.md(table.to_markdown(index=False) if len(table) else "(none)"),
    })
