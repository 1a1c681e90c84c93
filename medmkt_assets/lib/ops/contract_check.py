"""Checks a warehouse against the published-table shapes and privacy rules of the contract.

Used by the integration tests and by a Dagster asset check on the marts, so a leak of a
direct identifier (as a column or as a value) fails loudly where it is made.
"""
from __future__ import annotations

from medmkt_assets.lib.engine.sql import quote_ident
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.privacy.identifiers import (
    DIRECT_IDENTIFIERS,
    PRIVATE_SCHEMA_PREFIXES,
)
from medmkt_assets.lib.privacy.suppression import SMALL_CELL_MAX

MART_COLUMNS: dict[str, tuple[str, ...]] = {
    "patient_profiles": ("patient_key", "age_band", "gender", "region", "recency_days", "frequency", "monetary",
                         "first_order_at", "last_order_at", "top_category", "preferred_channel"),
    "patient_segments": ("patient_key", "segment_id", "segment_label"),
    "segment_summary": ("segment_id", "patients"),
    "association_rules": ("rule_id", "antecedents", "consequents", "support", "confidence", "lift", "leverage",
                          "conviction", "antecedent_support", "consequent_support", "scope"),
    "recommendations": ("patient_key", "rank", "product_id", "score", "model"),
    "propensity_scores": ("patient_key", "target", "score", "model"),
    "campaign_effects": ("campaign_id", "treated", "control", "treated_conversion_rate", "control_conversion_rate",
                         "uplift", "uplift_ci_low", "uplift_ci_high", "p_value", "cost", "incremental_revenue",
                         "roi"),
    "demand_trends": ("month", "region", "category", "orders", "patients", "revenue"),
}
PEOPLE_COUNT_COLUMNS = ("patients", "treated", "control")
# Marts that have rows whenever the source has (their inputs named): an empty one means the
# run threw its source away (all patients quarantined, say) while every shape still checks out.
# The others may be empty for a good reason (no campaigns, too few baskets for a rule).
NEVER_EMPTY: dict[str, str] = {"patient_profiles": "staging.patients", "patient_segments": "staging.patients",
                               "recommendations": "staging.patients", "demand_trends": "staging.orders"}
# Values of these restricted columns must never appear in a shared table.
IDENTIFYING_VALUES = ("patient_id", "full_name", "phone", "email", "address")


def _columns(con: Session) -> dict[tuple[str, str], dict[str, str]]:
    found: dict[tuple[str, str], dict[str, str]] = {}
    for schema, table, column, dtype in con.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database()").fetchall():
        found.setdefault((schema, table), {})[column.lower()] = dtype
    return found


def is_private(schema: str) -> bool:
    return schema.startswith(PRIVATE_SCHEMA_PREFIXES)


def privacy_findings(con: Session) -> list[str]:
    """Identifier columns, identifier values, malformed keys and small people counts outside private schemas."""
    findings = []
    tables = _columns(con)
    has_restricted = ("restricted", "patients") in tables
    if has_restricted:
        union = " UNION ".join(f"SELECT CAST({c} AS VARCHAR) AS v FROM restricted.patients WHERE {c} IS NOT NULL"
                               for c in IDENTIFYING_VALUES)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _medmkt_identifiers AS {union}")
    for (schema, table), columns in sorted(tables.items()):
        if is_private(schema) or schema == "temp" or table.startswith("_medmkt"):
            continue
        name = f"{quote_ident(schema)}.{quote_ident(table)}"
        leaked = sorted(DIRECT_IDENTIFIERS & set(columns))
        if leaked:
            findings.append(f"{schema}.{table} carries identifier columns {leaked}")
        if "patient_key" in columns:
            bad = con.execute(f"SELECT count(*) FROM {name} WHERE NOT regexp_full_match("
                              "CAST(patient_key AS VARCHAR), '[0-9a-f]{64}')").fetchone()[0]
            if bad:
                findings.append(f"{schema}.{table}: {bad} patient_key values are not HMAC-SHA256 hex")
        if schema == "marts":
            for column in set(PEOPLE_COUNT_COLUMNS) & set(columns):
                small = con.execute(f"SELECT count(*) FROM {name} WHERE {quote_ident(column)} "
                                    f"BETWEEN 1 AND {SMALL_CELL_MAX}").fetchone()[0]
                if small:
                    findings.append(f"{schema}.{table}.{column}: {small} cells count 1-{SMALL_CELL_MAX} people")
        if has_restricted:
            for column, dtype in columns.items():
                if dtype == "VARCHAR" and column != "patient_key":
                    hits = con.execute(f"SELECT count(*) FROM {name} WHERE {quote_ident(column)} IN "
                                       "(SELECT v FROM _medmkt_identifiers)").fetchone()[0]
                    if hits:
                        findings.append(f"{schema}.{table}.{column}: {hits} values are direct identifiers")
    return findings


def shape_findings(con: Session, tables: tuple[str, ...] = tuple(MART_COLUMNS)) -> list[str]:
    """Missing marts tables or columns, and coverage of the per-patient tables."""
    findings = []
    columns = _columns(con)
    for table in tables:
        have = columns.get(("marts", table))
        if have is None:
            findings.append(f"missing table marts.{table}")
            continue
        missing = [c for c in MART_COLUMNS[table] if c not in have]
        if missing:
            findings.append(f"marts.{table} lacks columns {missing}")
    findings += empty_findings(con, columns, tables)
    if ("marts", "patient_profiles") not in columns:
        return findings
    coverage = {
        "patient_segments": "SELECT 'all', count(DISTINCT s.patient_key) FROM marts.patient_segments s",
        "recommendations": "SELECT 'all', count(DISTINCT s.patient_key) FROM marts.recommendations s",
        "propensity_scores": "SELECT target, count(DISTINCT s.patient_key) FROM marts.propensity_scores s "
                             "GROUP BY target",
    }
    profiled = con.execute("SELECT count(*) FROM marts.patient_profiles").fetchone()[0]
    for table, sql in coverage.items():
        if table in tables and ("marts", table) in columns:
            for target, covered in con.execute(sql).fetchall():
                if covered < profiled:
                    findings.append(f"marts.{table} ({target}) covers {covered} of {profiled} profiled patients")
    if "propensity_scores" in tables and ("marts", "propensity_scores") in columns:
        findings += _risk_findings(con, columns[("marts", "propensity_scores")])
    return findings


def empty_findings(con: Session, columns: dict, tables: tuple[str, ...] = tuple(MART_COLUMNS)) -> list[str]:
    """Marts of NEVER_EMPTY without a row, with what was quarantined (an empty mart over a source
    that had rows is an analysis of nothing, however green the run)."""
    findings = []
    for table, source in NEVER_EMPTY.items():
        if table not in tables or ("marts", table) not in columns:
            continue
        if con.execute(f"SELECT count(*) FROM marts.{table}").fetchone()[0]:
            continue
        origin = source.split(".")[1]
        staged = (con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
                  if tuple(source.split(".")) in columns else 0)
        quarantined = (con.execute(f"SELECT count(*) FROM quarantine.{origin}").fetchone()[0]
                       if ("quarantine", origin) in columns else 0)
        if staged == 0 and quarantined == 0 and table == "demand_trends":
            continue  # a source without a single order line: nothing to trend, nothing lost
        findings.append(f"marts.{table} is empty ({source}: {staged} rows, quarantine.{origin}: "
                        f"{quarantined} rows)")
    return findings


def _risk_findings(con, have: set[str]) -> list[str]:
    """Disease-risk rows say whether the patient already has the condition; only those go unscored."""
    risk = con.execute("SELECT count(*) FROM marts.propensity_scores WHERE target LIKE 'risk:%'").fetchone()[0]
    if not risk:
        return []
    if "already_diagnosed" not in have:
        return ["marts.propensity_scores has risk targets but no already_diagnosed column"]
    bad = con.execute("SELECT count(*) FROM marts.propensity_scores WHERE target LIKE 'risk:%' AND "
                      "((already_diagnosed AND score IS NOT NULL) OR "
                      "(NOT coalesce(already_diagnosed, false) AND score IS NULL))").fetchone()[0]
    return [f"marts.propensity_scores: {bad} risk rows where score is not NULL exactly for the already diagnosed"
            ] if bad else []
