"""Typed staging with quarantine: every raw row ends up staged or quarantined, never lost.

A `StagingSpec` says, per source table, how raw text is parsed (`parsed`), which rows
are rejected and why (`rules`, first failing rule wins), which key must be unique
(later duplicates are quarantined, the first row in load order is kept) and what the
published staging table holds (`output`). `stage_table` runs it as SQL in DuckDB.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from medmkt_assets.lib import parse as P
from medmkt_assets.lib.pseudonym import hmac_sql
from medmkt_assets.lib.schema import (
    CAMPAIGN_CHANNELS, CAMPAIGN_PURPOSES, CONSENT_STATUSES, CONTACT_ARMS, EVENT_SOURCES,
    EVENT_TYPES, SOURCE_TABLES,
)
from medmkt_assets.lib.sources import sql_literal, table_exists

FUTURE_TOLERANCE = "INTERVAL 1 DAY"


@dataclass(frozen=True)
class StagingSpec:
    table: str
    parsed: dict[str, str]            # _s_<name> -> expression over raw columns
    rules: tuple[tuple[str, str], ...]  # (condition that makes a row bad, reason)
    unique_key: tuple[str, ...]       # parsed names; later duplicates are quarantined
    output: tuple[str, ...]           # select list of the staging table over parsed names
    restricted_output: tuple[str, ...] = ()  # select list of restricted.<table>, if any
    # name -> (condition over raw rows, costlier expression used only when some row meets it)
    parsed_if_needed: dict[str, tuple[str, str]] = field(default_factory=dict)
    # the unique key as (parsed name, staging column) pairs, when the staging table does not
    # hold the key under its own name (patients: patient_id is only kept in restricted)
    staged_key: tuple[tuple[str, str], ...] = ()


def _values(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _known(table: str, key: str, expr: str) -> str:
    return f"EXISTS (SELECT 1 FROM staging.{table} k WHERE k.{key} = {expr})"


def _future(expr: str) -> str:
    return f"{expr} > now()::TIMESTAMP + {FUTURE_TOLERANCE}"


def _bad_when_present(raw: str, parsed: str) -> str:
    return f"({P.text(raw)} IS NOT NULL AND {parsed} IS NULL)"


def build_specs(pseudonym_key: str) -> dict[str, StagingSpec]:
    """Staging rules for every canonical table; patient ids are pseudonymized with the key."""
    key = lambda col: hmac_sql(col, pseudonym_key)  # noqa: E731 - reads better inline
    patient_ref = (
        ("_s_patient_id IS NULL", "patient_id is missing or blank"),
        (f"NOT {_known('patients', 'patient_key', '_s_patient_key')}", "unknown patient_id (not in patients)"),
    )
    specs = [
        StagingSpec(
            "patients",
            {
                "patient_id": P.text("patient_id"), "patient_key": key("patient_id"),
                "gender": P.gender("gender"), "birth_date": P.date("birth_date"),
                "registered_at": P.date("registered_at"), "death_date": P.date("death_date"),
                "city": P.text("city"), "region": P.text("region"),
                "postal_code": P.text("postal_code"), "insurance_type": P.lower_text("insurance_type"),
            },
            (
                ("_s_patient_id IS NULL", "patient_id is missing or blank"),
                (_bad_when_present("birth_date", "_s_birth_date"), "birth_date is not a valid date"),
                ("_s_birth_date > current_date", "birth_date is in the future"),
                ("_s_birth_date < DATE '1900-01-01'", "birth_date is before 1900"),
                (_bad_when_present("registered_at", "_s_registered_at"), "registered_at is not a valid date"),
                (_bad_when_present("death_date", "_s_death_date"), "death_date is not a valid date"),
            ),
            ("_s_patient_id",),
            (
                "_s_patient_key AS patient_key", "_s_gender AS gender",
                "CAST(year(_s_birth_date) AS INTEGER) AS birth_year",
                "_s_city AS city", "_s_region AS region",
                "left(_s_postal_code, 3) AS postal_prefix", "_s_insurance_type AS insurance_type",
                "_s_registered_at AS registered_at", "_s_death_date IS NOT NULL AS is_deceased",
                "_source_file", "_source_row",
            ),
            (
                "_s_patient_key AS patient_key", "_s_patient_id AS patient_id", "full_name",
                "_s_gender AS gender", "_s_birth_date AS birth_date", "phone", "email", "address",
                "_s_city AS city", "_s_region AS region", "_s_postal_code AS postal_code",
                "_s_insurance_type AS insurance_type", "_s_registered_at AS registered_at",
                "_s_death_date AS death_date", "_source_file", "_source_row",
            ),
            staged_key=(("_s_patient_key", "patient_key"),),
        ),
        StagingSpec(
            "products",
            {
                "product_id": P.text("product_id"), "name": P.text("name"),
                "category": P.category("category"), "kind": P.lower_text("kind"),
                "unit_price": P.number("unit_price"), "rx_only": P.boolean("rx_only"),
                "description": P.text("description"),
            },
            (
                ("_s_product_id IS NULL", "product_id is missing or blank"),
                ("_s_name IS NULL", "name is missing"),
                ("_s_category IS NULL", "category is missing"),
                (_bad_when_present("unit_price", "_s_unit_price"), "unit_price is not a number"),
                ("_s_unit_price < 0", "unit_price is negative"),
            ),
            ("_s_product_id",),
            (
                "_s_product_id AS product_id", "_s_name AS name", "_s_category AS category",
                "_s_kind AS kind", "_s_unit_price AS unit_price",
                "coalesce(_s_rx_only, false) AS rx_only", "_s_description AS description",
            ),
        ),
        StagingSpec(
            "orders",
            {
                "order_id": P.text("order_id"), "patient_id": P.text("patient_id"),
                "patient_key": key("patient_id"), "product_id": P.text("product_id"),
                "line_no": P.integer("line_no"),
                "ordered_at": P.timestamp("ordered_at"), "quantity": P.integer("quantity"),
                "unit_price": P.number("unit_price"), "channel": P.order_channel("channel"),
                "facility_id": P.text("facility_id"),
            },
            (
                ("_s_order_id IS NULL", "order_id is missing or blank"),
                ("_s_line_no IS NULL OR _s_line_no < 1", "line_no is not a whole number ≥ 1"),
                patient_ref[0],
                ("_s_product_id IS NULL", "product_id is missing or blank"),
                ("_s_ordered_at IS NULL", "ordered_at is missing or not a valid timestamp"),
                (_future("_s_ordered_at"), "ordered_at is in the future"),
                (_bad_when_present("quantity", "_s_quantity"), "quantity is not a whole number"),
                ("_s_quantity <= 0", "quantity is zero or negative (cancellation or return)"),
                (_bad_when_present("unit_price", "_s_unit_price"), "unit_price is not a number"),
                ("_s_unit_price < 0", "unit_price is negative"),
                patient_ref[1],
                (f"NOT {_known('products', 'product_id', '_s_product_id')}", "unknown product_id (not in products)"),
            ),
            ("_s_order_id", "_s_line_no"),
            (
                "_s_order_id AS order_id", "CAST(_s_line_no AS INTEGER) AS line_no",
                "_s_patient_key AS patient_key", "_s_product_id AS product_id",
                "_s_ordered_at AS ordered_at", "CAST(coalesce(_s_quantity, 1) AS INTEGER) AS quantity",
                "coalesce(_s_unit_price, (SELECT p.unit_price FROM staging.products p "
                "WHERE p.product_id = _s_product_id)) AS unit_price",
                "_s_channel AS channel", "_s_facility_id AS facility_id",
                "_source_file", "_source_row",
            ),
            # exports without line numbers: number each order's lines in file order (a window
            # over every row, so only when some line number is actually blank)
            parsed_if_needed={"line_no": (
                f"{P.text('line_no')} IS NULL",
                f"coalesce({P.integer('line_no')}, CASE WHEN {P.text('line_no')} IS NULL THEN row_number() OVER "
                f"(PARTITION BY {P.text('order_id')} ORDER BY rowid) END)")},
        ),
        StagingSpec(
            "diagnoses",
            {
                "patient_id": P.text("patient_id"), "patient_key": key("patient_id"),
                "condition_code": P.text("condition_code"), "condition_name": P.text("condition_name"),
                "diagnosed_at": P.date("diagnosed_at"),
            },
            (
                patient_ref[0],
                ("_s_condition_code IS NULL", "condition_code is missing"),
                (_bad_when_present("diagnosed_at", "_s_diagnosed_at"), "diagnosed_at is not a valid date"),
                (_future("_s_diagnosed_at"), "diagnosed_at is in the future"),
                patient_ref[1],
            ),
            ("_s_patient_key", "_s_condition_code", "_s_diagnosed_at"),
            (
                "_s_patient_key AS patient_key", "_s_condition_code AS condition_code",
                "_s_condition_name AS condition_name", "_s_diagnosed_at AS diagnosed_at",
            ),
        ),
        StagingSpec(
            "campaigns",
            {
                "campaign_id": P.text("campaign_id"), "name": P.text("name"),
                "purpose": P.lower_text("purpose"), "channel": P.campaign_channel("channel"),
                "raw_channel": P.text("channel"), "target_category": P.category("target_category"),
                "start_date": P.date("start_date"), "end_date": P.date("end_date"),
                "cost_per_contact": P.number("cost_per_contact"),
            },
            (
                ("_s_campaign_id IS NULL", "campaign_id is missing or blank"),
                (f"_s_purpose IS NULL OR _s_purpose NOT IN ({_values(CAMPAIGN_PURPOSES)})",
                 f"purpose must be one of {', '.join(CAMPAIGN_PURPOSES)}"),
                ("_s_raw_channel IS NOT NULL AND _s_channel IS NULL",
                 f"channel must be one of {', '.join(CAMPAIGN_CHANNELS)}"),
                (_bad_when_present("start_date", "_s_start_date"), "start_date is not a valid date"),
                (_bad_when_present("end_date", "_s_end_date"), "end_date is not a valid date"),
                ("_s_end_date < _s_start_date", "end_date is before start_date"),
                (_bad_when_present("cost_per_contact", "_s_cost_per_contact"), "cost_per_contact is not a number"),
                ("_s_cost_per_contact < 0", "cost_per_contact is negative"),
            ),
            ("_s_campaign_id",),
            (
                "_s_campaign_id AS campaign_id", "_s_name AS name", "_s_purpose AS purpose",
                "_s_channel AS channel", "_s_target_category AS target_category",
                "_s_start_date AS start_date", "_s_end_date AS end_date",
                "coalesce(_s_cost_per_contact, 0) AS cost_per_contact",
            ),
        ),
        StagingSpec(
            "campaign_contacts",
            {
                "campaign_id": P.text("campaign_id"), "patient_id": P.text("patient_id"),
                "patient_key": key("patient_id"), "arm": P.lower_text("arm"),
                "contacted_at": P.timestamp("contacted_at"), "opened": P.boolean("opened"),
                "clicked": P.boolean("clicked"), "converted": P.boolean("converted"),
                "converted_at": P.timestamp("converted_at"), "revenue": P.number("revenue"),
            },
            (
                ("_s_campaign_id IS NULL", "campaign_id is missing or blank"),
                patient_ref[0],
                (f"_s_arm IS NULL OR _s_arm NOT IN ({_values(CONTACT_ARMS)})", "arm must be treatment or control"),
                (_bad_when_present("converted", "_s_converted"), "converted is not a boolean"),
                (_bad_when_present("contacted_at", "_s_contacted_at"), "contacted_at is not a valid timestamp"),
                (_bad_when_present("converted_at", "_s_converted_at"), "converted_at is not a valid timestamp"),
                (_bad_when_present("revenue", "_s_revenue"), "revenue is not a number"),
                ("_s_revenue < 0", "revenue is negative"),
                (f"NOT {_known('campaigns', 'campaign_id', '_s_campaign_id')}", "unknown campaign_id (not in campaigns)"),
                patient_ref[1],
            ),
            ("_s_campaign_id", "_s_patient_key"),
            (
                "_s_campaign_id AS campaign_id", "_s_patient_key AS patient_key", "_s_arm AS arm",
                "_s_contacted_at AS contacted_at", "coalesce(_s_opened, false) AS opened",
                "coalesce(_s_clicked, false) AS clicked", "coalesce(_s_converted, false) AS converted",
                "_s_converted_at AS converted_at", "coalesce(_s_revenue, 0) AS revenue",
            ),
        ),
        StagingSpec(
            "consents",
            {
                "patient_id": P.text("patient_id"), "patient_key": key("patient_id"),
                "purpose": P.lower_text("purpose"),
                "channel": f"coalesce(CASE WHEN {P.lower_text('channel')} = 'all' THEN 'all' END, "
                           f"{P.campaign_channel('channel')}, {P.lower_text('channel')}, 'all')",
                "status": P.lower_text("status"), "recorded_at": P.timestamp("recorded_at"),
            },
            (
                patient_ref[0],
                ("_s_purpose IS NULL", "purpose is missing"),
                (f"_s_status IS NULL OR _s_status NOT IN ({_values(CONSENT_STATUSES)})",
                 "status must be granted or revoked"),
                ("_s_recorded_at IS NULL", "recorded_at is missing or not a valid timestamp"),
                (_future("_s_recorded_at"), "recorded_at is in the future"),
                patient_ref[1],
            ),
            (),
            (
                "_s_patient_key AS patient_key", "_s_purpose AS purpose", "_s_channel AS channel",
                "_s_status AS status", "_s_recorded_at AS recorded_at",
            ),
        ),
        StagingSpec(
            "surveys",
            {
                "patient_id": P.text("patient_id"), "patient_key": key("patient_id"),
                "responded_at": P.timestamp("responded_at"), "satisfaction": P.integer("satisfaction"),
                "nps": P.integer("nps"), "comment": P.text("comment"),
            },
            (
                patient_ref[0],
                (_bad_when_present("responded_at", "_s_responded_at"), "responded_at is not a valid timestamp"),
                (_bad_when_present("satisfaction", "_s_satisfaction") + " OR _s_satisfaction NOT BETWEEN 1 AND 5",
                 "satisfaction must be a whole number 1-5"),
                (_bad_when_present("nps", "_s_nps") + " OR _s_nps NOT BETWEEN 0 AND 10",
                 "nps must be a whole number 0-10"),
                patient_ref[1],
            ),
            (),
            (
                "_s_patient_key AS patient_key", "_s_responded_at AS responded_at",
                "CAST(_s_satisfaction AS INTEGER) AS satisfaction", "CAST(_s_nps AS INTEGER) AS nps",
                "_s_comment AS comment",
            ),
        ),
        StagingSpec(
            "events",
            {
                "patient_id": P.text("patient_id"), "patient_key": key("patient_id"),
                "occurred_at": P.timestamp("occurred_at"), "event_type": P.lower_text("event_type"),
                "source": P.lower_text("source"), "product_id": P.text("product_id"),
                "category": P.category("category"), "query": P.text("query"),
            },
            (
                ("_s_occurred_at IS NULL", "occurred_at is missing or not a valid timestamp"),
                (_future("_s_occurred_at"), "occurred_at is in the future"),
                (f"_s_event_type IS NULL OR _s_event_type NOT IN ({_values(EVENT_TYPES)})",
                 f"event_type must be one of {', '.join(EVENT_TYPES)}"),
                (f"_s_source IS NOT NULL AND _s_source NOT IN ({_values(EVENT_SOURCES)})",
                 f"source must be one of {', '.join(EVENT_SOURCES)}"),
                (f"_s_patient_key IS NOT NULL AND NOT {_known('patients', 'patient_key', '_s_patient_key')}",
                 "unknown patient_id (not in patients)"),
            ),
            (),
            (
                "_s_patient_key AS patient_key", "_s_occurred_at AS occurred_at",
                "_s_event_type AS event_type", "_s_source AS source", "_s_product_id AS product_id",
                "_s_category AS category", "_s_query AS query",
            ),
        ),
    ]
    assert set(s.table for s in specs) == set(SOURCE_TABLES)
    return {s.table: s for s in specs}


@dataclass
class StagingResult:
    table: str
    raw_rows: int
    staged_rows: int
    quarantined_rows: int
    reasons: dict[str, int]
    batch_rows: int | None = None  # set when only one appended batch was staged


def stage_table(con: duckdb.DuckDBPyConnection, spec: StagingSpec, raw_table: str) -> StagingResult:
    """(Re)write staging.<t>, quarantine.<t> (and restricted.<t>) from every row of raw_table."""
    raw_columns = _columns(con, raw_table)
    _parse(con, spec, raw_table, "TRUE", _needed_expressions(con, spec, raw_table, "TRUE"))
    _judge(con, spec, already_staged=False)
    _publish(con, spec, raw_columns, append=False)
    return _result(con, spec, raw_table)


def stage_batch(con: duckdb.DuckDBPyConnection, spec: StagingSpec, raw_table: str,
                batch_file: str) -> StagingResult | None:
    """Stage only the rows of one batch file just appended to raw_table, or return None.

    Every other raw row must already be staged or quarantined and the batch must be the
    last file loaded; then the batch's rows are judged by the same rules, a key already in
    staging makes a row a duplicate (the earlier row was first in load order) and the
    verdicts are appended. The result equals a full restage except for rows judged against
    the clock ("in the future"), which keep their earlier verdict until the next full run.
    None means the shortcut does not apply (first load, new columns, a batch needing line
    numbers across files, ...) and the caller restages the whole table.
    """
    targets = [f"staging.{spec.table}", f"quarantine.{spec.table}"]
    targets += [f"restricted.{spec.table}"] if spec.restricted_output else []
    if not all(table_exists(con, t) for t in targets):
        return None
    raw_columns = _columns(con, raw_table)
    if _columns(con, f"quarantine.{spec.table}") != raw_columns + ["_reason"]:
        return None
    batch = f"_source_file = {sql_literal(batch_file)}"
    raw_rows, batch_rows, first_batch_row, last_other_row = con.execute(
        f"SELECT count(*), count(*) FILTER ({batch}), min(rowid) FILTER ({batch}), "
        f"max(rowid) FILTER (NOT ({batch})) FROM {raw_table}").fetchall()[0]
    judged_before = sum(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in targets[:2])
    if not batch_rows or judged_before != raw_rows - batch_rows or (last_other_row or -1) > first_batch_row:
        return None
    expressions = _needed_expressions(con, spec, raw_table, batch)
    if expressions != spec.parsed:  # e.g. line numbers counted over an order's rows in every file
        return None
    _parse(con, spec, raw_table, batch, expressions)
    _judge(con, spec, already_staged=True)
    _publish(con, spec, raw_columns, append=True)
    result = _result(con, spec, raw_table)
    result.batch_rows = batch_rows
    return result


def _needed_expressions(con: duckdb.DuckDBPyConnection, spec: StagingSpec, raw_table: str,
                        where: str) -> dict[str, str]:
    expressions = dict(spec.parsed)
    for name, (condition, costly) in spec.parsed_if_needed.items():
        if con.execute(f"SELECT bool_or({condition}) FROM {raw_table} WHERE {where}").fetchall()[0][0]:
            expressions[name] = costly
    return expressions


def _parse(con: duckdb.DuckDBPyConnection, spec: StagingSpec, raw_table: str, where: str,
           expressions: dict[str, str]) -> None:
    """Parse once into _medmkt_parsed, in load order (`_raw_order`), with an empty `_reason`.

    A table rather than a CTE: the rules refer to parsed values many times, and an inlined
    CTE would run the parsers again for each reference.
    """
    parsed = ",\n  ".join(f"{expr} AS _s_{name}" for name, expr in expressions.items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE _medmkt_parsed AS SELECT r.*, r.rowid AS _raw_order, {parsed}, "
                f"CAST(NULL AS VARCHAR) AS _reason FROM {raw_table} r WHERE {where}")


def _judge(con: duckdb.DuckDBPyConnection, spec: StagingSpec, already_staged: bool) -> None:
    """Set `_reason` on the rejected rows of _medmkt_parsed: the first failing rule, else a
    duplicate key (of an earlier row here, or, if already_staged, of a staged row).

    Rejected rows are few, so verdicts are collected in a small table and written back with
    one UPDATE; the good rows are never copied.
    """
    judged = " ".join(f"WHEN {cond} THEN '{reason}'" for cond, reason in spec.rules)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _medmkt_rejected AS
                    SELECT * FROM (SELECT _raw_order, CASE {judged} ELSE NULL END AS _reason FROM _medmkt_parsed)
                    WHERE _reason IS NOT NULL""")
    if spec.unique_key:
        keys = ", ".join(spec.unique_key)
        duplicate = (f"'duplicate {', '.join(k.removeprefix('_s_') for k in spec.unique_key)}; "
                     "the first row in file order was kept'")
        unjudged = "_medmkt_parsed p ANTI JOIN _medmkt_rejected r USING (_raw_order)"
        if already_staged:
            pairs = spec.staged_key or tuple((k, k.removeprefix("_s_")) for k in spec.unique_key)
            in_staging = " AND ".join(f"s.{col} IS NOT DISTINCT FROM p.{name}" for name, col in pairs)
            # probe staging with the batch's (few) keys instead of hashing the whole staged table
            con.execute(f"""INSERT INTO _medmkt_rejected
                            WITH earlier AS (SELECT DISTINCT {', '.join(f's.{c} AS {n}' for n, c in pairs)}
                                             FROM staging.{spec.table} s SEMI JOIN {unjudged} ON {in_staging})
                            SELECT p._raw_order, {duplicate} FROM {unjudged}
                            SEMI JOIN earlier e ON {' AND '.join(f'e.{n} IS NOT DISTINCT FROM p.{n}' for n, _ in pairs)}""")
        # Duplicates are rare: group the rows by a 64-bit hash of the key (a window or a group
        # by on the key itself would sort or hash millions of strings), then settle the few
        # clashing hashes on the key itself, keeping each key's first row in load order.
        same_key = " AND ".join(f"s.{k} IS NOT DISTINCT FROM f.{k}" for k in spec.unique_key)
        con.execute(f"""INSERT INTO _medmkt_rejected
                        WITH clash AS (SELECT hash({keys}) AS h FROM {unjudged} GROUP BY h HAVING count(*) > 1),
                        suspects AS (SELECT p._raw_order, {', '.join(f'p.{k}' for k in spec.unique_key)}
                                     FROM {unjudged} SEMI JOIN clash c ON hash({', '.join(f'p.{k}' for k in spec.unique_key)}) = c.h),
                        firsts AS (SELECT {keys}, min(_raw_order) AS first FROM suspects GROUP BY ALL HAVING count(*) > 1)
                        SELECT s._raw_order, {duplicate} FROM suspects s JOIN firsts f ON {same_key}
                        WHERE s._raw_order <> f.first""")
    con.execute("UPDATE _medmkt_parsed p SET _reason = r._reason FROM _medmkt_rejected r "
                "WHERE p._raw_order = r._raw_order")
    con.execute("DROP TABLE _medmkt_rejected")


def _publish(con: duckdb.DuckDBPyConnection, spec: StagingSpec, raw_columns: list[str], append: bool) -> None:
    """Write _medmkt_parsed's verdicts to quarantine, staging (and restricted): replace or append."""
    into = (lambda t: f"INSERT INTO {t}") if append else (lambda t: f"CREATE OR REPLACE TABLE {t} AS")
    con.execute(f"{into(f'quarantine.{spec.table}')} {_quarantined(raw_columns)}")
    con.execute(f"{into(f'staging.{spec.table}')} {_staged(spec.output)}")
    if spec.restricted_output:
        con.execute(f"{into(f'restricted.{spec.table}')} {_staged(spec.restricted_output)}")
    con.execute("DROP TABLE _medmkt_parsed")


def _quarantined(raw_columns: list[str]) -> str:
    quoted = ", ".join(f'"{c}"' for c in raw_columns)
    return f"SELECT {quoted}, _reason FROM _medmkt_parsed WHERE _reason IS NOT NULL ORDER BY _raw_order"


def _staged(select_list: tuple[str, ...]) -> str:
    # ORDER BY: a parallel CTAS under memory pressure may write a row group out of order
    return f"SELECT {', '.join(select_list)} FROM _medmkt_parsed WHERE _reason IS NULL ORDER BY _raw_order"


def _result(con: duckdb.DuckDBPyConnection, spec: StagingSpec, raw_table: str) -> StagingResult:
    (raw_rows,) = con.execute(f"SELECT count(*) FROM {raw_table}").fetchall()[0]
    (staged,) = con.execute(f"SELECT count(*) FROM staging.{spec.table}").fetchall()[0]
    reasons = dict(con.execute(f"SELECT _reason, count(*) FROM quarantine.{spec.table} "
                               "GROUP BY 1 ORDER BY 2 DESC").fetchall())
    return StagingResult(spec.table, raw_rows, staged, sum(reasons.values()), reasons)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]


def ensure_schemas(con: duckdb.DuckDBPyConnection) -> None:
    for schema in ("raw", "restricted", "quarantine", "staging", "features", "marts", "ops"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
