"""Training rows for campaign models: each past contact with features as of its campaign's start.

Features come from `build_features_at` with the campaign start as cut-off, so no
order, diagnosis, survey or event on or after the start can leak into training. The
vocabulary (category, channel and condition columns) is the one of the current feature
table, so the rows a model is trained on and the rows it scores have the same columns.
"""
from __future__ import annotations

from medmkt_assets.lib.engine.sql import sql_literal
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.models.features import build_features_at, feature_columns, feature_names

TRAINING_TABLE = "features.campaign_training"


def vocabulary_of(con: Session, table: str) -> dict[str, list[str]]:
    columns = feature_columns(con, table)
    return {prefix: [c.split("__", 1)[1] for c in columns if c.startswith(f"{prefix}__")]
            for prefix in ("cat", "ch", "cond", "evt")}


def target_share_sql(target_category: str | None, columns: list[str]) -> str:
    """The patient's spend share in the campaign's target category (0 when it is not a feature)."""
    column = f"cat__{target_category}" if target_category else None
    return column if column in columns else "0.0"


def target_events_sql(target_category: str | None, columns: list[str]) -> str:
    """The patient's digital events in the campaign's target category (0 when it is not a feature)."""
    column = f"evt__{target_category}" if target_category else None
    return column if column in columns else "0.0"


def build_campaign_training(con: Session, current_features: str = "features.patient_features",
                            table: str = TRAINING_TABLE) -> int:
    """Write one row per contact of every campaign that has contacts; returns the number of campaigns."""
    vocabulary = vocabulary_of(con, current_features)
    campaigns = con.execute(
        "SELECT k.campaign_id, k.start_date, k.target_category FROM staging.campaigns k "
        "WHERE k.start_date IS NOT NULL AND EXISTS (SELECT 1 FROM staging.campaign_contacts c "
        "WHERE c.campaign_id = k.campaign_id) ORDER BY k.start_date, k.campaign_id").fetchall()
    if not campaigns:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT CAST(NULL AS VARCHAR) AS campaign_id, "
                    "CAST(NULL AS DATE) AS start_date, CAST(NULL AS VARCHAR) AS target_category, "
                    "CAST(NULL AS VARCHAR) AS campaign_channel, CAST(NULL AS VARCHAR) AS campaign_purpose, "
                    "CAST(NULL AS VARCHAR) AS arm, "
                    "CAST(NULL AS INTEGER) AS converted, CAST(NULL AS DOUBLE) AS revenue, "
                    "CAST(NULL AS VARCHAR) AS patient_key, CAST(NULL AS DOUBLE) AS target_share, "
                    "CAST(NULL AS DOUBLE) AS target_spend, CAST(NULL AS DOUBLE) AS target_events, "
                    "CAST(NULL AS DOUBLE) AS target_interest LIMIT 0")
        return 0
    # every contact of every campaign with its features, in one pass over the history
    contacts = " UNION ALL ".join(
        f"SELECT {i} AS _slice, c.patient_key, CAST({sql_literal(str(start))} AS TIMESTAMP) AS _cutoff, "
        f"c.campaign_id, k.start_date, k.target_category, k.channel AS campaign_channel, "
        f"k.purpose AS campaign_purpose, c.arm, CAST(c.converted AS INTEGER) AS converted, c.revenue "
        f"FROM staging.campaign_contacts c JOIN staging.campaigns k USING (campaign_id) "
        f"WHERE c.campaign_id = {sql_literal(campaign_id)}" for i, (campaign_id, start, _) in enumerate(campaigns))
    names = feature_names(vocabulary)

    def per_campaign(expression) -> str:  # the campaign's own expression, by its slice
        return "CASE _slice " + " ".join(f"WHEN {i} THEN {expression(target)}"
                                        for i, (_, _, target) in enumerate(campaigns)) + " END"
    build_features_at(
        con, table, contacts, vocabulary,
        carried=["campaign_id", "start_date", "target_category", "campaign_channel", "campaign_purpose", "arm",
                 "converted", "revenue"],
        extra=(f", {per_campaign(lambda t: target_share_sql(t, names))} AS target_share"
               f", {per_campaign(lambda t: f'{target_share_sql(t, names)} * monetary')} AS target_spend"
               f", {per_campaign(lambda t: target_events_sql(t, names))} AS target_events"
               f", {per_campaign(lambda t: f'{target_share_sql(t, names)} * order_lines + {target_events_sql(t, names)}')}"
               " AS target_interest"))
    return len(campaigns)
