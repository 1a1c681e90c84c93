"""The demo world as OMOP CDM 5.3 or 5.4 tables."""
from __future__ import annotations

from medmkt_assets.demo_data.formats.common import (
    SNAPSHOT,
    Exporter,
    select_columns,
    udi_sql,
)
from medmkt_assets.lib.engine.sql import sql_literal

OMOP_COMMON = {
    "person": ("person_id", "gender_concept_id", "year_of_birth", "month_of_birth", "day_of_birth", "birth_datetime",
               "race_concept_id", "ethnicity_concept_id", "location_id", "provider_id", "care_site_id",
               "person_source_value", "gender_source_value", "gender_source_concept_id", "race_source_value",
               "race_source_concept_id", "ethnicity_source_value", "ethnicity_source_concept_id"),
    "observation_period": ("observation_period_id", "person_id", "observation_period_start_date",
                           "observation_period_end_date", "period_type_concept_id"),
    "drug_exposure": ("drug_exposure_id", "person_id", "drug_concept_id", "drug_exposure_start_date",
                      "drug_exposure_start_datetime", "drug_exposure_end_date", "drug_exposure_end_datetime",
                      "verbatim_end_date", "drug_type_concept_id", "stop_reason", "refills", "quantity",
                      "days_supply", "sig", "route_concept_id", "lot_number", "provider_id", "visit_occurrence_id",
                      "visit_detail_id", "drug_source_value", "drug_source_concept_id", "route_source_value",
                      "dose_unit_source_value"),
    "condition_occurrence": ("condition_occurrence_id", "person_id", "condition_concept_id", "condition_start_date",
                             "condition_start_datetime", "condition_end_date", "condition_end_datetime",
                             "condition_type_concept_id", "condition_status_concept_id", "stop_reason",
                             "provider_id", "visit_occurrence_id", "visit_detail_id", "condition_source_value",
                             "condition_source_concept_id", "condition_status_source_value"),
    "death": ("person_id", "death_date", "death_datetime", "death_type_concept_id", "cause_concept_id",
              "cause_source_value", "cause_source_concept_id"),
    "payer_plan_period": ("payer_plan_period_id", "person_id", "payer_plan_period_start_date",
                          "payer_plan_period_end_date", "payer_concept_id", "payer_source_value",
                          "payer_source_concept_id", "plan_concept_id", "plan_source_value", "plan_source_concept_id",
                          "sponsor_concept_id", "sponsor_source_value", "sponsor_source_concept_id",
                          "family_source_value", "stop_reason_concept_id", "stop_reason_source_value",
                          "stop_reason_source_concept_id"),
    "care_site": ("care_site_id", "care_site_name", "place_of_service_concept_id", "location_id",
                  "care_site_source_value", "place_of_service_source_value"),
    "cost": ("cost_id", "cost_event_id", "cost_domain_id", "cost_type_concept_id", "currency_concept_id",
             "total_charge", "total_cost", "total_paid", "paid_by_payer", "paid_by_patient", "paid_patient_copay",
             "paid_patient_coinsurance", "paid_patient_deductible", "paid_by_primary", "paid_ingredient_cost",
             "paid_dispensing_fee", "payer_plan_period_id", "amount_allowed", "revenue_code_concept_id",
             "revenue_code_source_value", "drg_concept_id", "drg_source_value"),
    "concept": ("concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id", "standard_concept",
                "concept_code", "valid_start_date", "valid_end_date", "invalid_reason"),
}
OMOP_LOCATION_53 = ("location_id", "address_1", "address_2", "city", "state", "zip", "county", "location_source_value")
OMOP_CDM_SOURCE_53 = ("cdm_source_name", "cdm_source_abbreviation", "cdm_holder", "source_description",
                      "source_documentation_reference", "cdm_etl_reference", "source_release_date",
                      "cdm_release_date", "cdm_version", "vocabulary_version")
OMOP_HEADERS = {
    "5.3": {
        **OMOP_COMMON,
        "visit_occurrence": ("visit_occurrence_id", "person_id", "visit_concept_id", "visit_start_date",
                             "visit_start_datetime", "visit_end_date", "visit_end_datetime", "visit_type_concept_id",
                             "provider_id", "care_site_id", "visit_source_value", "visit_source_concept_id",
                             "admitting_source_concept_id", "admitting_source_value", "discharge_to_concept_id",
                             "discharge_to_source_value", "preceding_visit_occurrence_id"),
        "procedure_occurrence": ("procedure_occurrence_id", "person_id", "procedure_concept_id", "procedure_date",
                                 "procedure_datetime", "procedure_type_concept_id", "modifier_concept_id",
                                 "quantity", "provider_id", "visit_occurrence_id", "visit_detail_id",
                                 "procedure_source_value", "procedure_source_concept_id", "modifier_source_value"),
        "device_exposure": ("device_exposure_id", "person_id", "device_concept_id", "device_exposure_start_date",
                            "device_exposure_start_datetime", "device_exposure_end_date",
                            "device_exposure_end_datetime", "device_type_concept_id", "unique_device_id",
                            "quantity", "provider_id", "visit_occurrence_id", "visit_detail_id",
                            "device_source_value", "device_source_concept_id"),
        "location": OMOP_LOCATION_53,
        "cdm_source": OMOP_CDM_SOURCE_53,
    },
    "5.4": {
        **OMOP_COMMON,
        "visit_occurrence": ("visit_occurrence_id", "person_id", "visit_concept_id", "visit_start_date",
                             "visit_start_datetime", "visit_end_date", "visit_end_datetime", "visit_type_concept_id",
                             "provider_id", "care_site_id", "visit_source_value", "visit_source_concept_id",
                             "admitted_from_concept_id", "admitted_from_source_value", "discharged_to_concept_id",
                             "discharged_to_source_value", "preceding_visit_occurrence_id"),
        "procedure_occurrence": ("procedure_occurrence_id", "person_id", "procedure_concept_id", "procedure_date",
                                 "procedure_datetime", "procedure_end_date", "procedure_end_datetime",
                                 "procedure_type_concept_id", "modifier_concept_id", "quantity", "provider_id",
                                 "visit_occurrence_id", "visit_detail_id", "procedure_source_value",
                                 "procedure_source_concept_id", "modifier_source_value"),
        "device_exposure": ("device_exposure_id", "person_id", "device_concept_id", "device_exposure_start_date",
                            "device_exposure_start_datetime", "device_exposure_end_date",
                            "device_exposure_end_datetime", "device_type_concept_id", "unique_device_id",
                            "production_id", "quantity", "provider_id", "visit_occurrence_id", "visit_detail_id",
                            "device_source_value", "device_source_concept_id", "unit_concept_id",
                            "unit_source_value", "unit_source_concept_id"),
        "location": (*OMOP_LOCATION_53, "country_concept_id", "country_source_value", "latitude", "longitude"),
        "cdm_source": (*OMOP_CDM_SOURCE_53[:9], "cdm_version_concept_id", "vocabulary_version"),
    },
}
CDM_VERSION = {"5.3": ("v5.3.1", None), "5.4": ("v5.4", 756265)}  # cdm_version, cdm_version_concept_id
EHR = "32817"  # Type Concept "EHR": the provenance of every record here
# concept_id, name, domain, vocabulary, class, standard, code: the fixed concepts the tables use
FIXED_CONCEPTS = (
    (8507, "MALE", "Gender", "Gender", "Gender", "S", "M"),
    (8532, "FEMALE", "Gender", "Gender", "Gender", "S", "F"),
    (9202, "Outpatient Visit", "Visit", "Visit", "Visit", "S", "OP"),
    (5083, "Telehealth", "Visit", "CMS Place of Service", "Visit", "S", "02"),
    (581476, "Home Visit", "Visit", "Visit", "Visit", "S", "OH"),
)


def _omop_people() -> dict[str, tuple[dict[str, str], str]]:
    """person, observation_period, death, payer_plan_period, location, care_site."""
    person = {
        "person_id": "person_id", "gender_concept_id": "CASE sex WHEN 'M' THEN 8507 WHEN 'F' THEN 8532 ELSE 0 END",
        "year_of_birth": "year(birth_date)", "month_of_birth": "month(birth_date)", "day_of_birth": "day(birth_date)",
        "birth_datetime": "omop_ts(CAST(birth_date AS TIMESTAMP))", "race_concept_id": "0",
        "ethnicity_concept_id": "0", "location_id": "l.location_id", "person_source_value": "patient_id",
        "gender_source_value": "gender_source", "gender_source_concept_id": "0", "race_source_concept_id": "0",
        "ethnicity_source_concept_id": "0",
    }
    period = {"observation_period_id": "person_id", "person_id": "person_id",
              "observation_period_start_date": "iso_day(registered_at)",
              "observation_period_end_date": f"'{SNAPSHOT}'", "period_type_concept_id": EHR}
    death = {"person_id": "person_id", "death_date": "iso_day(death_date)",
             "death_datetime": "omop_ts(CAST(death_date AS TIMESTAMP))", "death_type_concept_id": EHR}
    plan = {"payer_plan_period_id": "person_id", "person_id": "person_id",
            "payer_plan_period_start_date": "iso_day(registered_at)", "payer_plan_period_end_date": f"'{SNAPSHOT}'",
            "payer_concept_id": "0", "payer_source_value": "omop_payer", "payer_source_concept_id": "0"}
    location = {"location_id": "location_id", "city": "city", "state": "region", "zip": "postal_code",
                "location_source_value": "concat_ws('|', region, city, postal_code)", "country_source_value": "'CN'"}
    care_site = {"care_site_id": "care_site_id", "care_site_name": "name", "care_site_source_value": "facility_id"}
    place = "l.city IS NOT DISTINCT FROM p.city AND l.region IS NOT DISTINCT FROM p.region " \
            "AND l.postal_code IS NOT DISTINCT FROM p.postal_code"
    return {
        "person": (person, f"pat p LEFT JOIN loc l ON {place} ORDER BY person_id"),
        "observation_period": (period, "pat ORDER BY person_id"),
        "death": (death, "pat WHERE death_date IS NOT NULL ORDER BY person_id"),
        "payer_plan_period": (plan, "member JOIN pat USING (patient_id, person_id) ORDER BY person_id"),
        "location": (location, "loc ORDER BY location_id"),
        "care_site": (care_site, "fac ORDER BY care_site_id"),
    }


def _omop_visits() -> dict[str, tuple[dict[str, str], str]]:
    """visit_occurrence and condition_occurrence."""
    visit = {
        "visit_occurrence_id": "visit_id", "person_id": "person_id", "visit_concept_id": "visit_concept_id",
        "visit_start_date": "iso_day(start_at)", "visit_start_datetime": "omop_ts(start_at)",
        "visit_end_date": "iso_day(end_at)", "visit_end_datetime": "omop_ts(end_at)", "visit_type_concept_id": EHR,
        "care_site_id": "f.care_site_id", "visit_source_value": "order_id", "visit_source_concept_id": "0",
        "admitting_source_concept_id": "0", "admitted_from_concept_id": "0",
        "discharge_to_concept_id": "0", "discharged_to_concept_id": "0",
        "preceding_visit_occurrence_id": "lag(visit_id) OVER (PARTITION BY person_id ORDER BY start_at, visit_id)",
    }
    condition = {
        "condition_occurrence_id": "dx_id", "person_id": "p.person_id", "condition_concept_id": "c.concept_id",
        "condition_start_date": "iso_day(dx.diagnosed_at)",
        "condition_start_datetime": "omop_ts(CAST(dx.diagnosed_at AS TIMESTAMP))",
        "condition_type_concept_id": EHR, "condition_status_concept_id": "0", "condition_source_value": "dx.code",
        "condition_source_concept_id": "c.concept_id",
    }
    return {
        "visit_occurrence": (visit, "visit LEFT JOIN fac f USING (facility_id) ORDER BY visit_id"),
        "condition_occurrence": (condition, "dx JOIN pat p USING (patient_id) JOIN cond c USING (code) ORDER BY dx_id"),
    }


def _omop_exposures() -> dict[str, tuple[dict[str, str], str]]:
    """drug_exposure (drugs and vaccines), procedure_occurrence, device_exposure and their cost rows."""
    common = {"person_id": "v.person_id", "quantity": "quantity", "visit_occurrence_id": "v.visit_id"}
    drug = {**common, "drug_exposure_id": "event_id", "drug_concept_id": "concept_id",
            "drug_exposure_start_date": "iso_day(ordered_at)", "drug_exposure_start_datetime": "omop_ts(ordered_at)",
            "drug_exposure_end_date": "iso_day(ordered_at)", "drug_exposure_end_datetime": "omop_ts(ordered_at)",
            "drug_type_concept_id": EHR, "refills": "0", "route_concept_id": "0", "drug_source_value": "product_id",
            "drug_source_concept_id": "concept_id"}
    procedure = {**common, "procedure_occurrence_id": "event_id", "procedure_concept_id": "concept_id",
                 "procedure_date": "iso_day(ordered_at)", "procedure_datetime": "omop_ts(ordered_at)",
                 "procedure_end_date": "iso_day(finished_at)", "procedure_end_datetime": "omop_ts(finished_at)",
                 "procedure_type_concept_id": EHR, "modifier_concept_id": "0", "procedure_source_value": "product_id",
                 "procedure_source_concept_id": "concept_id"}
    device = {**common, "device_exposure_id": "event_id", "device_concept_id": "concept_id",
              "device_exposure_start_date": "iso_day(ordered_at)",
              "device_exposure_start_datetime": "omop_ts(ordered_at)",
              "device_type_concept_id": EHR, "unique_device_id": udi_sql("0"), "device_source_value": "product_id",
              "device_source_concept_id": "concept_id"}
    cost = {"cost_id": "row_number() OVER (ORDER BY omop_domain, event_id)", "cost_event_id": "event_id",
            "cost_domain_id": "omop_domain", "cost_type_concept_id": EHR, "total_charge": "l.total",
            "payer_plan_period_id": "v.person_id"}
    lines = "line l JOIN visit v USING (order_id) WHERE omop_domain = '{}' ORDER BY event_id"
    return {
        "drug_exposure": (drug, lines.format("Drug")),
        "procedure_occurrence": (procedure, lines.format("Procedure")),
        "device_exposure": (device, lines.format("Device")),
        "cost": (cost, "line l JOIN visit v USING (order_id) ORDER BY omop_domain, event_id"),
    }


def _omop_vocabulary(version: str) -> dict[str, tuple[dict[str, str], str]]:
    """concept (the fixed concepts, one per product, one ICD10CM concept per condition) and cdm_source."""
    fixed = " UNION ALL ".join(
        "SELECT " + ", ".join(sql_literal(v) if isinstance(v, str) else str(v) for v in row) for row in FIXED_CONCEPTS)
    concepts = f"""(
        SELECT * FROM ({fixed}) AS f(concept_id, concept_name, domain_id, vocabulary_id, concept_class_id,
                                     standard_concept, concept_code)
        UNION ALL SELECT concept_id, name, omop_domain, vocabulary, concept_class, 'S', product_id FROM prod
        UNION ALL SELECT concept_id, name, 'Condition', 'ICD10CM',
                         CASE WHEN length(code) = 3 THEN '3-char nonbill code' ELSE 'ICD10 code' END, NULL, code
                  FROM cond) ORDER BY concept_id"""
    # Athena's vocabulary download writes dates as YYYYMMDD; CDM 5.4 exports write ISO dates
    start, end = ("'19700101'", "'20991231'") if version == "5.3" else ("'1970-01-01'", "'2099-12-31'")
    concept = {c: c for c in OMOP_COMMON["concept"]} | {"valid_start_date": start, "valid_end_date": end,
                                                       "invalid_reason": "NULL"}
    cdm_version, version_concept = CDM_VERSION[version]
    cdm_source = {
        "cdm_source_name": "'medmkt demo world'", "cdm_source_abbreviation": "'medmkt'", "cdm_holder": "'medmkt'",
        "source_description": "'Synthetic healthcare-marketing world written by medmkt_assets.demo_data'",
        "cdm_etl_reference": "'medmkt_assets/demo_data/formats.py'", "source_release_date": f"'{SNAPSHOT}'",
        "cdm_release_date": f"'{SNAPSHOT}'", "cdm_version": f"'{cdm_version}'",
        "cdm_version_concept_id": str(version_concept), "vocabulary_version": "'medmkt demo subset'",
    }
    return {"concept": (concept, concepts), "cdm_source": (cdm_source, "(SELECT 1)")}


def write_omop(exporter: Exporter, version: str) -> None:
    """The CDM tables of that version: 5.4 with upper-case file names, 5.3 lower-case with the
    concept file tab-separated as Athena writes it."""
    headers = OMOP_HEADERS[version]
    tables = {**_omop_people(), **_omop_visits(), **_omop_exposures(), **_omop_vocabulary(version)}
    for table, (exprs, source) in tables.items():
        name = f"{table.upper() if version == '5.4' else table}.csv"
        delimiter = "\t" if table == "concept" and version == "5.3" else ","
        exporter.csv(name, select_columns(headers[table], exprs, source), delimiter=delimiter)


# ---------------------------------------------------------------------------------------
