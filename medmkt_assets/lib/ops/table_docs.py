"""What a published table's columns are, read from the warehouse itself after it is written.

Every staging, features and marts asset carries its column schema in Dagster (the asset's
`dagster/column_schema`, and for staging tables `dagster/column_lineage` back to the raw
table they were parsed from). The columns are read with DESCRIBE (DuckDB's type names on
both engines) once the step's transaction has committed, so they are the written table's,
never a list kept by hand; a few columns carry a note saying what they mean.
"""
from __future__ import annotations

from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.models.campaigns import COLUMN_NOTES as CAMPAIGN_EFFECT_NOTES
from medmkt_assets.lib.models.segment_summary import COLUMN_NOTES as SEGMENT_SUMMARY_NOTES
from medmkt_assets.lib.voice.sql import DRIVER_NOTES, TOPIC_NOTES

DOCUMENTED_SCHEMAS = ("staging", "features", "marts")
COLUMN_NOTES = {
    "marts.segment_summary": SEGMENT_SUMMARY_NOTES,
    "marts.campaign_effects": CAMPAIGN_EFFECT_NOTES,
    "marts.campaign_effects_by_group": CAMPAIGN_EFFECT_NOTES,
    "marts.satisfaction_drivers": DRIVER_NOTES,
    "marts.voice_topics": TOPIC_NOTES,
}
# Staging columns named otherwise than the raw column they come from.
RENAMED_FROM_RAW = {"patient_key": "patient_id"}


def table_columns(con: Session, table: str) -> list[tuple[str, str]]:
    """(name, type) of each column of `table` as written (columns starting with `_` are lineage, kept)."""
    return [(row[0], str(row[1])) for row in con.execute(f"DESCRIBE {table}").fetchall()]


def staging_lineage(columns: list[str], raw_columns: list[str]) -> dict[str, str]:
    """staging column -> the raw column of the same source table it is parsed from (where one is)."""
    raw = set(raw_columns)
    found = {c: RENAMED_FROM_RAW.get(c, c) for c in columns}
    return {c: source for c, source in found.items() if source in raw}
