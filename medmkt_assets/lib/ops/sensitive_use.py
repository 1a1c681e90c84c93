"""Accountability for the sensitive-data policy: what was withheld, and proof that nothing leaked.

Staging moves every row of a sensitive family into `restricted.sensitive_<table>`. This module
counts those rows per family and table for `ops.sensitive_use` (suppressed like every count of
people), and looks for any trace of them where marketing reads: a withheld product id, condition
code, `risk:`/`condition:` target or a family's category as a value of a `marts` table, a name the
policy matches, or a feature column built from a withheld code or category.
"""
from __future__ import annotations

import pandas as pd

from medmkt_assets.lib.engine.sql import quote_ident, sql_literal
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.models.features import column_slug
from medmkt_assets.lib.privacy.sensitive import SensitivePolicy
from medmkt_assets.lib.privacy.suppression import SMALL_CELL_MAX
from medmkt_assets.lib.sources.staging_specs import SCREENED_TABLES

USE_COLUMNS = {"family": "str", "label": "str", "legal_basis": "str", "source_table": "str",
               "rows_withheld": "Int64", "patients": "Int64", "suppressed": "bool"}
# Every table the pipeline publishes in `marts` (test_sensitive_data checks this list against a run).
PUBLISHED_MARTS = ("association_rules", "audience_exclusions", "audiences", "campaign_catalog", "campaign_effects",
                   "campaign_effects_by_group", "condition_catalog", "demand_trends", "patient_profiles",
                   "patient_segments", "product_catalog", "propensity_scores", "recommendation_evaluation",
                   "recommendations", "segment_summary", "uplift_models", "uplift_scores",
                   # patient voice: topics, examples and search terms are words patients wrote
                   "comment_topics", "nps_summary", "satisfaction_drivers", "search_theme_terms", "search_themes",
                   "voice_examples", "voice_quality", "voice_topic_trends", "voice_topics")
# Feature tables whose column names are the marketing models' feature lists.
FEATURE_TABLES = ("features.patient_features", "features.campaign_training", "features.risk_training")


def withheld_counts(con: Session) -> pd.DataFrame:
    """Rows withheld and distinct patients per (family, source table), from restricted.sensitive_*."""
    parts = []
    for table in SCREENED_TABLES:
        withheld = f"restricted.sensitive_{table}"
        if not con.table_exists(withheld):
            continue
        patients = "count(DISTINCT patient_key)" if "patient_key" in con.describe(withheld) else "NULL"
        parts.append(f"SELECT sensitive_family AS family, '{table}' AS source_table, count(*) AS rows_withheld, "
                     f"CAST({patients} AS BIGINT) AS patients FROM {withheld} GROUP BY 1")
    if not parts:
        return pd.DataFrame(columns=["family", "source_table", "rows_withheld", "patients"])
    return con.execute(" UNION ALL ".join(parts) + " ORDER BY family, source_table").fetchdf()


def sensitive_use(counts: pd.DataFrame, policy: SensitivePolicy) -> pd.DataFrame:
    """One row per family and screened table (zero where nothing was withheld), with the family's legal
    basis; where rows are about patients, counts of 1-10 rows or patients are blanked (`suppressed`)."""
    index = pd.MultiIndex.from_product([[f.name for f in policy.families], SCREENED_TABLES],
                                       names=["family", "source_table"])
    table = counts.set_index(["family", "source_table"]).reindex(index).reset_index()
    rows = pd.to_numeric(table.rows_withheld).fillna(0).astype("Int64")
    patients = pd.to_numeric(table.patients).astype("Int64")
    # rows about patients are counts of people: 1-10 is hidden (products and campaigns are not people)
    about_people = patients.notna() & (table.source_table != "products") & (table.source_table != "campaigns")
    small = (about_people & (rows.between(1, SMALL_CELL_MAX) | patients.between(1, SMALL_CELL_MAX))).fillna(False)
    small = small.astype(bool)
    table["rows_withheld"] = rows.mask(small)
    table["patients"] = patients.mask(small)
    table["suppressed"] = small
    table["label"] = table.family.map({f.name: f.label for f in policy.families})
    table["legal_basis"] = table.family.map({f.name: f.why for f in policy.families})
    return table[list(USE_COLUMNS)].astype(USE_COLUMNS)


def _terms_sql(con: Session, policy: SensitivePolicy) -> str:
    """Every value that would show a withheld row: product ids, condition codes and their targets."""
    parts = [f"SELECT CAST(x AS VARCHAR) AS term FROM (VALUES {', '.join(f'({sql_literal(v)})' for v in _categories(policy))}) t(x)"]
    if con.table_exists("restricted.sensitive_products"):
        parts.append("SELECT product_id FROM restricted.sensitive_products")
    if con.table_exists("restricted.sensitive_diagnoses"):
        codes = "SELECT DISTINCT condition_code AS c FROM restricted.sensitive_diagnoses"
        parts += [f"SELECT c FROM ({codes})", f"SELECT 'risk:' || c FROM ({codes})",
                  f"SELECT 'condition:' || c FROM ({codes})"]
    return " UNION ".join(parts)


def _categories(policy: SensitivePolicy) -> list[str]:
    return sorted({c for f in policy.families for c in f.product_categories}) or ["(none)"]


def marts_leaks(con: Session, policy: SensitivePolicy, marts: list[str]) -> dict[str, int]:
    """Per `marts.<table>.<column>`: how many distinct values show a withheld row or match the policy."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _medmkt_sensitive_terms AS {_terms_sql(con, policy)}")
    leaks = {}
    for table in marts:
        name = f"marts.{quote_ident(table)}"
        for column, kind, *_ in con.execute(f"DESCRIBE {name}").fetchall():
            if column == "patient_key" or not str(kind).startswith("VARCHAR"):
                continue
            values = (f"SELECT DISTINCT unnest({quote_ident(column)}) AS v FROM {name}" if str(kind).endswith("[]")
                      else f"SELECT DISTINCT {quote_ident(column)} AS v FROM {name}")
            named = policy.product_family("NULL", "v", "v", "NULL")
            if "condition" in column:
                named = f"coalesce({named}, {policy.condition_family('v', 'v')})"
            (found,) = con.execute(f"SELECT count(*) FROM ({values}) d WHERE v IN (SELECT term FROM "
                                   f"_medmkt_sensitive_terms) OR {named} IS NOT NULL").fetchall()[0]
            if found:
                leaks[f"marts.{table}.{column}"] = int(found)
    con.execute("DROP TABLE _medmkt_sensitive_terms")
    return leaks


def feature_leaks(con: Session, policy: SensitivePolicy) -> list[str]:
    """Feature columns (the marketing models' inputs) named after a withheld condition code or a
    sensitive category."""
    slugs = {f"{prefix}__{column_slug(c)}" for c in _categories(policy) for prefix in ("cat", "evt")}
    if con.table_exists("restricted.sensitive_diagnoses"):
        slugs |= {f"cond__{column_slug(c)}" for (c,) in con.execute(
            "SELECT DISTINCT condition_code FROM restricted.sensitive_diagnoses").fetchall()}
    return [f"{table}.{column}" for table in FEATURE_TABLES if con.table_exists(table)
            for column in con.describe(table) if column in slugs]
