"""The insight snapshot: what the marketers' app may show, copied out of the warehouse whole.

The app reads its own DuckDB file, never the warehouse: DuckDB has a single writer, and a
reader of the warehouse would block a run or be blocked by it. The copy is built in a new
file beside the target and renamed over it (`os.replace`), so the app sees the previous
snapshot or the next one, never half of one; a copy that fails leaves the previous one.

Only what the app shows is copied: the aggregate marts with their `suppressed` flags,
pseudonymous segments and recommendation lists, the names of products, campaigns and
conditions, the counts of the audience export manifest, and the patient-voice marts (topics,
drivers, NPS, search themes). Never profiles, scores, audiences, staging, raw or restricted
tables, contact details or free text, but for one thing: the de-identified example comments of
topics more than 10 people wrote about (VOICE_WHERE holds them to that again).
"""
from __future__ import annotations

import os
import uuid
from datetime import datetime
from pathlib import Path

import pandas as pd

from medmkt_assets.lib.engine.sql import sql_literal
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.privacy.suppression import (
    SMALL_CELL_MAX,
    hide_complement,
    is_small_cell,
)

# The catalogues the app needs for names, published as marts so the snapshot reads only marts/ops.
# `name_zh`: a product's Chinese name where the source gives one in an extra `name_zh` column of
# products (kept in raw.products; the demo world has one); NULL otherwise.
PRODUCT_CATALOG_SQL = """
CREATE OR REPLACE TABLE marts.product_catalog AS
SELECT product_id, name, category, kind, CAST(NULL AS VARCHAR) AS name_zh FROM staging.products ORDER BY product_id
"""
PRODUCT_CATALOG_ZH_SQL = """
CREATE OR REPLACE TABLE marts.product_catalog AS
SELECT p.product_id, p.name, p.category, p.kind, z.name_zh
FROM staging.products p LEFT JOIN (
    SELECT trim(product_id) AS product_id, min(nullif(trim(name_zh), '')) AS name_zh
    FROM raw.products GROUP BY trim(product_id)) z ON z.product_id = p.product_id
ORDER BY p.product_id
"""


def product_catalog_sql(raw_product_columns: list[str]) -> str:
    """The product catalogue's SQL: with Chinese names when raw.products has a `name_zh` column."""
    return PRODUCT_CATALOG_ZH_SQL if "name_zh" in {c.lower() for c in raw_product_columns} else PRODUCT_CATALOG_SQL
# A campaign is past once it has contacts, planned before (as lib.privacy.audiences.PLANNED_CAMPAIGNS_SQL).
CAMPAIGN_CATALOG_SQL = """
CREATE OR REPLACE TABLE marts.campaign_catalog AS
SELECT campaign_id, name, purpose, channel, target_category, start_date, end_date,
       CASE WHEN campaign_id IN (SELECT campaign_id FROM staging.campaign_contacts) THEN 'past'
            ELSE 'planned' END AS status
FROM staging.campaigns ORDER BY campaign_id
"""
# Condition names for the `condition:` items of patient-scope rules: one name per code (the
# most common), and only codes more than SMALL_CELL_MAX patients have, so a rare code does
# not single anyone out.
CONDITION_CATALOG_SQL = f"""
CREATE OR REPLACE TABLE marts.condition_catalog AS
SELECT condition_code, mode(condition_name) AS condition_name
FROM staging.diagnoses WHERE condition_code IS NOT NULL
GROUP BY condition_code HAVING count(DISTINCT patient_key) > {SMALL_CELL_MAX}
ORDER BY condition_code
"""

# Snapshot table (`<schema>_<table>`) -> its SELECT from the warehouse. Aggregate marts are
# published whole; patient-level ones only as the pseudonym, the segment and the list.
SNAPSHOT_SQL: dict[str, str] = {
    "marts_segment_summary": "SELECT * FROM marts.segment_summary",
    "marts_demand_trends": "SELECT * FROM marts.demand_trends",
    "marts_association_rules": "SELECT * FROM marts.association_rules",
    "marts_recommendations": "SELECT patient_key, rank, product_id, score, model FROM marts.recommendations",
    "marts_patient_segments": "SELECT patient_key, segment_id, segment_label FROM marts.patient_segments",
    "marts_campaign_effects": "SELECT * FROM marts.campaign_effects",
    "marts_campaign_effects_by_group": "SELECT * FROM marts.campaign_effects_by_group",
    "marts_audience_exclusions": "SELECT * FROM marts.audience_exclusions",
    "marts_uplift_models": "SELECT * FROM marts.uplift_models",
    "marts_recommendation_evaluation": "SELECT * FROM marts.recommendation_evaluation",
    "marts_product_catalog": "SELECT product_id, name, category, kind, name_zh FROM marts.product_catalog",
    "marts_campaign_catalog": ("SELECT campaign_id, name, purpose, channel, target_category, start_date, end_date, "
                               "status FROM marts.campaign_catalog"),
    "marts_condition_catalog": "SELECT condition_code, condition_name FROM marts.condition_catalog",
}
# The patient-voice marts (survey comments, satisfaction and NPS, site searches) and their columns.
# A source without surveys or searches has none of them: each is copied when the warehouse has it
# and is written as an empty table of these columns when it does not, so the app's voice page says
# there is nothing to show and every other page is as before. Only the listed columns are copied.
VOICE_COLUMNS: dict[str, dict[str, str]] = {
    "voice_topics": {"topic_id": "INTEGER", "label": "VARCHAR", "label_zh": "VARCHAR", "top_terms": "VARCHAR[]",
                     "comments": "INTEGER", "authors": "INTEGER", "share": "DOUBLE", "avg_satisfaction": "DOUBLE",
                     "avg_nps": "DOUBLE", "positive_share": "DOUBLE", "neutral_share": "DOUBLE",
                     "negative_share": "DOUBLE", "examples_shown": "BOOLEAN"},
    "voice_topic_trends": {"month": "DATE", "topic_id": "INTEGER", "comments": "INTEGER", "authors": "INTEGER",
                           "share": "DOUBLE", "avg_satisfaction": "DOUBLE"},
    "voice_examples": {"topic_id": "INTEGER", "rank": "INTEGER", "comment": "VARCHAR", "language": "VARCHAR",
                       "sentiment": "VARCHAR", "satisfaction": "INTEGER"},
    "satisfaction_drivers": {"outcome": "VARCHAR", "factor": "VARCHAR", "level": "VARCHAR",
                             "reference_level": "VARCHAR", "respondents": "INTEGER", "effect": "DOUBLE",
                             "ci_low": "DOUBLE", "ci_high": "DOUBLE", "p_value": "DOUBLE", "model": "VARCHAR"},
    "nps_summary": {"dimension": "VARCHAR", "level": "VARCHAR", "respondents": "INTEGER",
                    "promoters_share": "DOUBLE", "passives_share": "DOUBLE", "detractors_share": "DOUBLE",
                    "nps": "DOUBLE", "nps_ci_low": "DOUBLE", "nps_ci_high": "DOUBLE"},
    "search_themes": {"month": "DATE", "region": "VARCHAR", "theme": "VARCHAR", "searches": "INTEGER",
                      "searchers": "INTEGER"},
    "search_theme_terms": {"theme": "VARCHAR", "term": "VARCHAR", "searches": "INTEGER"},
    "voice_quality": {"metric": "VARCHAR", "value": "DOUBLE"},
}
# Held again on the way out (the marts already do): examples only of topics whose examples are
# shown, written by more than SMALL_CELL_MAX people; search terms only searched more often than that.
VOICE_WHERE: dict[str, tuple[str, tuple[str, ...]]] = {
    "voice_examples": (f"topic_id IN (SELECT topic_id FROM marts.voice_topics WHERE examples_shown "
                       f"AND authors > {SMALL_CELL_MAX})", ("voice_topics",)),
    "search_theme_terms": (f"searches > {SMALL_CELL_MAX}", ()),
}
VOICE_TABLES = tuple(f"marts_{t}" for t in VOICE_COLUMNS)
MANIFEST_TABLE = "ops_audience_manifest"
INFO_TABLE = "snapshot_info"
SNAPSHOT_TABLES = (*SNAPSHOT_SQL, *VOICE_TABLES, MANIFEST_TABLE, INFO_TABLE)


def voice_sql(con: Session, table: str) -> str:
    """The statement that writes `snap.marts_<table>`: a copy of its columns when the warehouse has
    the mart (and what its filter reads), else an empty table of the same columns."""
    columns = VOICE_COLUMNS[table]
    where, needs = VOICE_WHERE.get(table, ("", ()))
    if all(con.table_exists(f"marts.{t}") for t in (table, *needs)):
        return (f"CREATE TABLE snap.marts_{table} AS SELECT {', '.join(columns)} FROM marts.{table}"
                + (f" WHERE {where}" if where else ""))
    return f"CREATE TABLE snap.marts_{table} ({', '.join(f'{c} {kind}' for c, kind in columns.items())})"

# The audiences asset writes this file into the export folder (defs/campaigns/audiences.py).
MANIFEST_FILE = "audience_manifest.json"
MANIFEST_COLUMNS = {"campaign_id": "str", "file": "str", "written_at": "str", "reason": "str",
                    "patients": "Float64", "exported": "Float64", "suppressed": "bool"}
# How each audience was ranked, as the audience SQL decides it (lib.privacy.audiences.audience_sql).
MANIFEST_SQL = ("SELECT f.*, CASE WHEN coalesce(m.ranks_audience, false) THEN 'expected uplift' "
                "ELSE 'propensity score' END AS ranked_by FROM frame f "
                "LEFT JOIN marts.uplift_models m USING (campaign_id) ORDER BY f.campaign_id, f.reason")


def manifest_frame(manifest: dict | None) -> pd.DataFrame:
    """The export manifest as rows per (campaign, reason), without anything about a person.

    Its counts are the raw ones, so they are suppressed as marts.audience_exclusions is:
    1-10 patients hidden, and a campaign's lone hidden reason takes its smallest sibling
    (the reasons add up to every profiled patient). `exported` (the contact group) is
    hidden with its reason.
    """
    rows = [{"campaign_id": c["campaign_id"], "file": c["file"], "written_at": manifest.get("written_at"),
             "reason": reason, "n": int(n), "exported": int(c["exported"])}
            for c in (manifest or {}).get("campaigns", []) for reason, n in c.get("counts", {}).items()]
    frame = pd.DataFrame(rows, columns=["campaign_id", "file", "written_at", "reason", "n", "exported"])
    hidden = hide_complement(frame.n.apply(is_small_cell).astype(bool), frame.n, frame[["campaign_id"]])
    contact_hidden = frame.campaign_id.isin(frame.campaign_id[hidden & (frame.reason == "selected: contact")])
    exported_hidden = contact_hidden | frame.exported.apply(is_small_cell).astype(bool)
    return frame.assign(
        patients=frame.n.astype("Float64").mask(hidden),
        exported=frame.exported.astype("Float64").mask(exported_hidden),
        suppressed=hidden,
    )[list(MANIFEST_COLUMNS)].astype(MANIFEST_COLUMNS)


def publish_snapshot(con: Session, target: Path, manifest: pd.DataFrame, run_id: str,
                     published_at: datetime) -> dict[str, int]:
    """Copy SNAPSHOT_SQL, the voice marts (empty where missing), the manifest rows and a
    `snapshot_info` table into a new DuckDB file beside `target`, then rename it over `target`.
    Returns the row count of each table."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    con.execute(f"ATTACH {sql_literal(str(partial))} AS snap")
    try:
        for table, select in SNAPSHOT_SQL.items():
            con.execute(f"CREATE TABLE snap.{table} AS {select}")
        for table in VOICE_COLUMNS:
            con.execute(voice_sql(con, table))
        con.write_frame(manifest, f"snap.{MANIFEST_TABLE}", query=MANIFEST_SQL)
        counts = {t: con.execute(f"SELECT count(*) FROM snap.{t}").fetchall()[0][0]
                  for t in (*SNAPSHOT_SQL, *VOICE_TABLES, MANIFEST_TABLE)}
        info = pd.DataFrame({"table_name": list(counts), "row_count": list(counts.values())})
        con.write_frame(info, f"snap.{INFO_TABLE}",
                        query=f"SELECT CAST({sql_literal(published_at.isoformat())} AS TIMESTAMPTZ) AS published_at, "
                              f"{sql_literal(run_id)} AS run_id, table_name, row_count FROM frame")
        con.execute("CHECKPOINT snap")
        con.execute("DETACH snap")
    except BaseException:
        _discard(con, partial)
        raise
    os.replace(partial, target)
    return counts


def _discard(con: Session, partial: Path) -> None:
    """Detach and delete a half-written snapshot (the previous one stays where it is)."""
    if con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = 'snap'").fetchall()[0][0]:
        con.execute("DETACH snap")
    for path in (partial, partial.with_name(partial.name + ".wal")):
        path.unlink(missing_ok=True)
