"""Care programmes: the one use of a sensitive family the policy allows, and only with consent.

A planned campaign whose purpose is a care programme's (lib/privacy/sensitive_data.yaml) was
withheld by staging into `restricted.sensitive_campaigns`. Its audience is the living patients with
a diagnosis or a treatment fill of the programme's family whose latest consent for the programme's
purpose, on the campaign's channel or `all`, is `granted`, and who can be reached on that channel.
They are ranked by how long ago they last filled a treatment of the family (never first): for an
adherence or recovery programme, the longest gap is the most urgent. The audience lives in
`restricted` only; no marts table, marketing export or insight snapshot reads it.
"""
from __future__ import annotations

from medmkt_assets.lib.engine.sql import sql_literal
from medmkt_assets.lib.privacy.audiences import CONTACT_FIELD
from medmkt_assets.lib.privacy.sensitive import SensitivePolicy

AUDIENCE_TABLE = "restricted.care_programme_audiences"
# planned care-programme campaigns: withheld campaigns without contacts yet
PLANNED_CARE_SQL = ("SELECT campaign_id, purpose, channel FROM restricted.sensitive_campaigns k "
                    "WHERE NOT EXISTS (SELECT 1 FROM restricted.sensitive_campaign_contacts c "
                    "WHERE c.campaign_id = k.campaign_id) ORDER BY campaign_id")
EMPTY_SQL = (f"CREATE OR REPLACE TABLE {AUDIENCE_TABLE} AS SELECT CAST(NULL AS VARCHAR) AS campaign_id, "
             "CAST(NULL AS VARCHAR) AS programme, CAST(NULL AS VARCHAR) AS patient_key, CAST(NULL AS VARCHAR) AS family, "
             "CAST(NULL AS TIMESTAMP) AS last_activity_at, CAST(NULL AS INTEGER) AS days_since_last_fill, "
             "CAST(NULL AS BIGINT) AS priority_rank LIMIT 0")


def care_audience_sql(campaign_id: str, programme: str, family: str, purpose: str, channel: str | None) -> str:
    """SELECT of one care-programme campaign's audience (columns of AUDIENCE_TABLE)."""
    fam, ch = sql_literal(family), sql_literal(channel or "all")
    field = CONTACT_FIELD.get(channel or "")
    reachable = f"nullif(trim(r.{field}), '') IS NOT NULL" if field else "true"
    return f"""
    WITH as_of AS (SELECT max(as_of) AS as_of FROM marts.patient_profiles),
    activity AS (
        SELECT patient_key, CAST(diagnosed_at AS TIMESTAMP) AS happened_at, false AS fill
        FROM restricted.sensitive_diagnoses WHERE sensitive_family = {fam}
        UNION ALL
        SELECT patient_key, ordered_at AS happened_at, true AS fill FROM restricted.sensitive_orders WHERE sensitive_family = {fam}
    ),
    members AS (
        SELECT patient_key, max(happened_at) AS last_activity_at, max(CASE WHEN fill THEN happened_at END) AS last_fill_at
        FROM activity GROUP BY patient_key
    ),
    consent AS (
        SELECT patient_key, arg_max(status, recorded_at) AS latest_status FROM restricted.sensitive_consents
        WHERE purpose = {sql_literal(purpose)} AND channel IN ({ch}, 'all') GROUP BY patient_key
    ),
    eligible AS (
        SELECT m.patient_key, m.last_activity_at,
               CAST(date_diff('day', m.last_fill_at, (SELECT as_of FROM as_of)) AS INTEGER) AS days_since_last_fill
        FROM members m
        JOIN consent c USING (patient_key)
        JOIN staging.patients p USING (patient_key)
        JOIN restricted.patients r USING (patient_key)
        WHERE c.latest_status = 'granted' AND NOT coalesce(p.is_deceased, false) AND {reachable}
    )
    SELECT {sql_literal(campaign_id)} AS campaign_id, {sql_literal(programme)} AS programme, patient_key,
           {fam} AS family, last_activity_at, days_since_last_fill,
           row_number() OVER (ORDER BY days_since_last_fill DESC NULLS FIRST, patient_key) AS priority_rank
    FROM eligible"""


def build_care_audiences(con, policy: SensitivePolicy) -> list[tuple[str, str]]:
    """(Re)write AUDIENCE_TABLE for every planned care-programme campaign; returns (campaign, programme)."""
    planned = con.execute(PLANNED_CARE_SQL).fetchall() if con.table_exists("restricted.sensitive_campaigns") else []
    built = []
    con.execute(EMPTY_SQL)
    for campaign_id, purpose, channel in planned:
        programme = policy.programme_of(purpose)
        if programme is None:  # the policy changed since staging: the campaign is no programme now
            continue
        con.execute(f"INSERT INTO {AUDIENCE_TABLE} "
                    + care_audience_sql(campaign_id, programme.name, programme.family, purpose, channel))
        built.append((campaign_id, programme.name))
    return built
