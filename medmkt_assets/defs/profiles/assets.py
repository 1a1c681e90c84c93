"""marts.patient_profiles and marts.demand_trends (contract section 4)."""

import dagster as dg

from medmkt_assets.defs.resources import Warehouse
from medmkt_assets.defs.warehouse import (
    REFRESH_WHEN_INPUTS_CHANGE,
    WAREHOUSE_POOL,
    preview,
    row_count,
)
from medmkt_assets.lib.models.features import build_patient_features, feature_columns
from medmkt_assets.lib.models.profiles import DEMAND_TRENDS_SQL, PATIENT_PROFILES_SQL
from medmkt_assets.lib.privacy.suppression import suppress_frame


def _staging(*tables: str) -> list[dg.AssetKey]:
    return [dg.AssetKey(["staging", t]) for t in tables]


@dg.asset(
    key=["marts", "patient_profiles"], group_name="profiles", kinds={"duckdb"}, pool=WAREHOUSE_POOL, automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    deps=_staging("as_of", "patients", "products", "orders", "diagnoses", "surveys", "events", "consents"),
)
def patient_profiles(warehouse: Warehouse) -> dg.MaterializeResult:
    """Patient 360: one row per valid patient with RFM, top category, channel, conditions, surveys, digital use and consent."""
    with warehouse.transaction() as con:
        con.execute(PATIENT_PROFILES_SQL)
        n = row_count(con, "marts.patient_profiles")
        buyers, as_of = con.execute(
            "SELECT count(*) FILTER (WHERE frequency > 0), max(as_of) FROM marts.patient_profiles").fetchall()[0]
        bands = con.execute("SELECT age_band, count(*) AS patients FROM marts.patient_profiles "
                            "GROUP BY 1 ORDER BY 1").fetchdf()
        sample = preview(con, "marts.patient_profiles")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "patients_with_orders": buyers,
        "as_of": str(as_of),
        "age_bands": dg.MetadataValue.md(suppress_frame(bands, "patients").to_markdown(index=False)),
        "preview": sample,
    })


@dg.asset(
    key=["marts", "demand_trends"], group_name="profiles", kinds={"duckdb"}, pool=WAREHOUSE_POOL, automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    deps=_staging("patients", "products", "orders"),
)
def demand_trends(warehouse: Warehouse) -> dg.MaterializeResult:
    """Monthly orders, patients and revenue per region and category; cells of 1-10 patients suppressed."""
    with warehouse.transaction() as con:
        con.execute(DEMAND_TRENDS_SQL)
        n = row_count(con, "marts.demand_trends")
        suppressed = con.execute("SELECT count(*) FROM marts.demand_trends WHERE suppressed").fetchall()[0][0]
        by_category = con.execute(
            "SELECT category, sum(orders) AS orders, round(sum(revenue), 2) AS revenue FROM marts.demand_trends "
            "GROUP BY 1 ORDER BY revenue DESC NULLS LAST LIMIT 10").fetchdf()
        sample = preview(con, "marts.demand_trends")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "suppressed_cells": suppressed,
        "top_categories_published": dg.MetadataValue.md(by_category.to_markdown(index=False)),
        "preview": sample,
    })


@dg.asset(
    key=["features", "patient_features"], group_name="profiles", kinds={"duckdb"}, pool=WAREHOUSE_POOL, automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    deps=_staging("as_of", "patients", "products", "orders", "diagnoses", "surveys", "events"),
)
def patient_features(warehouse: Warehouse) -> dg.MaterializeResult:
    """Model-ready features per patient (RFM, category and channel shares, conditions, surveys, digital use)."""
    with warehouse.transaction() as con:
        vocabulary = build_patient_features(con, "features.patient_features")
        n = row_count(con, "features.patient_features")
        columns = feature_columns(con, "features.patient_features")
        sample = preview(con, "features.patient_features")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "feature_columns": len(columns),
        "categories": ", ".join(vocabulary["cat"]),
        "conditions": ", ".join(vocabulary["cond"]) or "(no diagnoses)",
        "preview": sample,
    })
