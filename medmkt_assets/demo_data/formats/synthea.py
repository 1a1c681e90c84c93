"""The demo world as a Synthea CSV export, in the 2.x or the 3.x layout."""
from __future__ import annotations

from medmkt_assets.demo_data.formats.common import (
    SNAPSHOT,
    Exporter,
    select_columns,
    udi_sql,
)

SYNTHEA_PATIENTS_2 = ("Id", "BIRTHDATE", "DEATHDATE", "SSN", "DRIVERS", "PASSPORT", "PREFIX", "FIRST", "LAST",
                      "SUFFIX", "MAIDEN", "MARITAL", "RACE", "ETHNICITY", "GENDER", "BIRTHPLACE", "ADDRESS", "CITY",
                      "STATE", "COUNTY", "ZIP", "LAT", "LON", "HEALTHCARE_EXPENSES", "HEALTHCARE_COVERAGE")
SYNTHEA_PAYER_STATS = ("AMOUNT_COVERED", "AMOUNT_UNCOVERED", "REVENUE", "COVERED_ENCOUNTERS", "UNCOVERED_ENCOUNTERS",
                       "COVERED_MEDICATIONS", "UNCOVERED_MEDICATIONS", "COVERED_PROCEDURES", "UNCOVERED_PROCEDURES",
                       "COVERED_IMMUNIZATIONS", "UNCOVERED_IMMUNIZATIONS", "UNIQUE_CUSTOMERS", "QOLS_AVG",
                       "MEMBER_MONTHS")
SYNTHEA_COMMON = {
    "encounters": ("Id", "START", "STOP", "PATIENT", "ORGANIZATION", "PROVIDER", "PAYER", "ENCOUNTERCLASS", "CODE",
                   "DESCRIPTION", "BASE_ENCOUNTER_COST", "TOTAL_CLAIM_COST", "PAYER_COVERAGE", "REASONCODE",
                   "REASONDESCRIPTION"),
    "medications": ("START", "STOP", "PATIENT", "PAYER", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST",
                    "PAYER_COVERAGE", "DISPENSES", "TOTALCOST", "REASONCODE", "REASONDESCRIPTION"),
    "immunizations": ("DATE", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST"),
    "devices": ("START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "UDI"),
    "organizations": ("Id", "NAME", "ADDRESS", "CITY", "STATE", "ZIP", "LAT", "LON", "PHONE", "REVENUE",
                      "UTILIZATION"),
}
SYNTHEA_HEADERS = {
    "2": {
        **SYNTHEA_COMMON,
        "patients": SYNTHEA_PATIENTS_2,
        "payers": ("Id", "NAME", "ADDRESS", "CITY", "STATE_HEADQUARTERED", "ZIP", "PHONE", *SYNTHEA_PAYER_STATS),
        "payer_transitions": ("PATIENT", "MEMBERID", "START_YEAR", "END_YEAR", "PAYER", "SECONDARY_PAYER",
                              "OWNERSHIP", "OWNERNAME"),
        "procedures": ("DATE", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST", "REASONCODE",
                       "REASONDESCRIPTION"),
        "conditions": ("START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION"),
    },
    "3": {
        **SYNTHEA_COMMON,
        "patients": (*SYNTHEA_PATIENTS_2[:20], "FIPS", *SYNTHEA_PATIENTS_2[20:], "INCOME"),
        "payers": ("Id", "NAME", "OWNERSHIP", "ADDRESS", "CITY", "STATE_HEADQUARTERED", "ZIP", "PHONE",
                   *SYNTHEA_PAYER_STATS),
        "payer_transitions": ("PATIENT", "MEMBERID", "START_DATE", "END_DATE", "PAYER", "SECONDARY_PAYER",
                              "PLAN_OWNERSHIP", "OWNER_NAME"),
        "procedures": ("START", "STOP", "PATIENT", "ENCOUNTER", "SYSTEM", "CODE", "DESCRIPTION", "BASE_COST",
                       "REASONCODE", "REASONDESCRIPTION"),
        "conditions": ("START", "STOP", "PATIENT", "ENCOUNTER", "SYSTEM", "CODE", "DESCRIPTION"),
    },
}
# Synthea has no quantity for procedures, vaccines and devices: n units are n rows (as a
# procedure done twice is two rows), so adapters recover the quantity by counting rows.
UNITS = "(SELECT *, unnest(range(greatest(quantity, 1))) AS unit FROM line WHERE dest = '{dest}')"


def _synthea_people() -> dict[str, tuple[dict[str, str], str]]:
    """patients, payers, payer_transitions and organizations: (column expressions, source)."""
    patients = {
        "Id": "patient_id", "BIRTHDATE": "iso_day(birth_date)", "DEATHDATE": "iso_day(death_date)",
        "SSN": "'999-' || lpad(CAST(person_id % 97 AS VARCHAR), 2, '0') "
               "|| '-' || lpad(CAST(person_id % 9973 AS VARCHAR), 4, '0')",
        "FIRST": "given", "LAST": "family", "RACE": "'asian'", "ETHNICITY": "'nonhispanic'", "GENDER": "sex",
        "ADDRESS": "address", "CITY": "city", "STATE": "region", "ZIP": "postal_code",
        "HEALTHCARE_EXPENSES": "CAST(spend AS DECIMAL(18, 2))", "HEALTHCARE_COVERAGE": "'0.00'",
    }
    payers = {"Id": "y.payer_id", "NAME": "y.payer_name", "OWNERSHIP": "y.ownership",
              **{c: "'0.00'" if c.startswith(("AMOUNT", "REVENUE")) else "0" for c in SYNTHEA_PAYER_STATS},
              "AMOUNT_UNCOVERED": "coalesce(m.spend, 0)", "UNIQUE_CUSTOMERS": "coalesce(m.members, 0)"}
    transitions = {
        "PATIENT": "patient_id", "START_DATE": "iso_ts(CAST(registered_at AS TIMESTAMP))",
        "END_DATE": f"iso_ts(TIMESTAMP '{SNAPSHOT}')", "START_YEAR": "year(registered_at)",
        "END_YEAR": f"year(DATE '{SNAPSHOT}')", "PAYER": "payer_id",
        # 2.x OWNERSHIP and 3.x PLAN_OWNERSHIP name who holds the plan, not the payer type
        "OWNERSHIP": "plan_owner", "PLAN_OWNERSHIP": "plan_owner",
        "OWNERNAME": "CASE plan_owner WHEN 'Self' THEN full_name END",
        "OWNER_NAME": "CASE plan_owner WHEN 'Self' THEN full_name END",
    }
    organizations = {"Id": "facility_id", "NAME": "name", "REVENUE": "CAST(revenue AS DECIMAL(18, 2))",
                     "UTILIZATION": "encounters"}
    return {
        "patients": (patients, "pat JOIN member USING (patient_id, person_id) ORDER BY person_id"),
        "payers": (payers, "payer y LEFT JOIN (SELECT payer_id, count(*) AS members, sum(spend) AS spend "
                           "FROM member GROUP BY payer_id) m USING (payer_id) ORDER BY y.payer_name"),
        "payer_transitions": (transitions, "pat JOIN member USING (patient_id, person_id) ORDER BY person_id"),
        "organizations": (organizations, "fac ORDER BY facility_id"),
    }


def _synthea_events() -> dict[str, tuple[dict[str, str], str]]:
    """encounters, conditions and the four item files: (column expressions, source)."""
    item = {"PATIENT": "patient_id", "ENCOUNTER": "order_id", "CODE": "product_id", "DESCRIPTION": "name",
            "BASE_COST": "unit_price"}  # what every item file shares
    encounters = {
        "Id": "order_id", "START": "iso_ts(start_at)", "STOP": "iso_ts(end_at)", "PATIENT": "patient_id",
        "ORGANIZATION": "facility_id", "PAYER": "m.payer_id", "ENCOUNTERCLASS": "synthea_class", "CODE": "type_code",
        "DESCRIPTION": "type_display", "BASE_ENCOUNTER_COST": "'0.00'", "TOTAL_CLAIM_COST": "total",
        "PAYER_COVERAGE": "'0.00'",
    }
    medications = {**item, "START": "iso_ts(ordered_at)", "PAYER": "m.payer_id", "PAYER_COVERAGE": "'0.00'",
                   "DISPENSES": "quantity", "TOTALCOST": "total"}
    procedures = {**item, "DATE": "iso_ts(ordered_at)", "START": "iso_ts(ordered_at)",
                  "STOP": "iso_ts(finished_at)", "SYSTEM": "'SNOMED-CT'"}
    conditions = {"START": "iso_day(diagnosed_at)", "PATIENT": "patient_id", "SYSTEM": "'ICD-10'", "CODE": "code",
                  "DESCRIPTION": "name"}
    with_payer = "{} JOIN member m USING (patient_id) ORDER BY order_id, line_no"
    return {
        "encounters": (encounters, "visit JOIN member m USING (patient_id) ORDER BY order_id"),
        "conditions": (conditions, "dx ORDER BY dx_id"),
        "medications": (medications, with_payer.format("(SELECT * FROM line WHERE dest = 'medication')")),
        "procedures": (procedures, UNITS.format(dest="procedure") + " ORDER BY order_id, line_no, unit"),
        "immunizations": ({**item, "DATE": "iso_ts(ordered_at)"},
                          UNITS.format(dest="immunization") + " ORDER BY order_id, line_no, unit"),
        "devices": ({**item, "START": "iso_ts(ordered_at)", "UDI": udi_sql("unit")},
                    UNITS.format(dest="device") + " ORDER BY order_id, line_no, unit"),
    }


def write_synthea(exporter: Exporter, version: str) -> None:
    """The Synthea CSV export of that major version (2 or 3), one file per Synthea table."""
    headers = SYNTHEA_HEADERS[version]
    for name, (exprs, source) in {**_synthea_people(), **_synthea_events()}.items():
        exporter.csv(f"{name}.csv", select_columns(headers[name], exprs, source))


