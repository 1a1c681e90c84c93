"""The export's as-of time, the quarantine-share gate and the empty-mart finding, with known answers."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pytest

from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.ops.contract_check import empty_findings, shape_findings
from medmkt_assets.lib.privacy.sensitive import load_policy
from medmkt_assets.lib.sources.as_of import (
    bulk_end,
    latest_day,
    parse_override,
    read_as_of,
    resolve_as_of,
    write_as_of,
)
from medmkt_assets.lib.sources.quarantine_share import quarantine_verdict
from medmkt_assets.lib.sources.staging import ensure_schemas, stage_table
from medmkt_assets.lib.sources.staging_specs import build_specs
from medmkt_assets_tests.shifted import shift_text

NOW = datetime(2026, 12, 6, 12, 0)


def _days(start: date, n: int, per_day: int = 10) -> dict[date, int]:
    return {start + timedelta(days=i): per_day for i in range(n)}


def test_bulk_end_is_the_day_by_which_the_share_of_events_happened():
    counts = {date(2026, 1, 1): 98, date(2026, 1, 2): 1, date(2099, 1, 1): 1}
    assert bulk_end(counts, 0.98) == date(2026, 1, 1)
    assert bulk_end(counts, 0.99) == date(2026, 1, 2)
    assert bulk_end(counts, 1.0) == date(2099, 1, 1)


def test_latest_day_leaves_out_a_stray_and_caps_an_unshifted_export_at_today():
    dense = _days(date(2024, 7, 1), 730)  # 2024-07-01 .. 2026-06-30
    assert latest_day(dense, NOW.date()) == date(2026, 6, 30)
    # a typo decades later is a stray, not the export's end
    assert latest_day({**dense, date(2099, 6, 30): 1}, NOW.date()) == date(2026, 6, 30)
    # within the stray gap but after today: an export that is not date-shifted stops at today
    assert latest_day({**dense, date(2027, 3, 1): 1}, NOW.date()) == NOW.date()


def test_a_typo_in_a_small_unshifted_export_does_not_make_it_look_shifted():
    small = {**_days(date(2024, 1, 1), 15, per_day=1), date(2124, 4, 1): 1}  # too few events for the 99 % rule
    assert bulk_end(small) == date(2124, 4, 1)
    assert latest_day(small, NOW.date()) == NOW.date()  # capped: the typo stays "in the future"


def test_latest_day_of_a_date_shifted_export_is_its_own_last_day():
    shifted = _days(date(2124, 7, 1), 730)
    assert latest_day(shifted, NOW.date()) == date(2126, 6, 30)
    assert latest_day({**shifted, date(2199, 1, 1): 1}, NOW.date()) == date(2126, 6, 30)
    # a few patients' late years (per-patient shifts) are not strays
    assert latest_day({**shifted, date(2131, 5, 5): 2}, NOW.date()) == date(2131, 5, 5)


def test_parse_override_takes_a_date_as_the_end_of_that_day():
    assert parse_override("2126-06-30") == datetime(2126, 6, 30, 23, 59, 59, 999999)
    assert parse_override(" 2126-06-30T08:00:00 ") == datetime(2126, 6, 30, 8)
    assert parse_override("2126-06-30T08:00:00+08:00") == datetime(2126, 6, 30, 8)  # as the data is read
    with pytest.raises(ValueError, match="MEDMKT_AS_OF='30/06/2126' is not an ISO 8601"):
        parse_override("30/06/2126")


@pytest.fixture
def con():
    session = Session(duckdb.connect())
    ensure_schemas(session)
    session.execute("CREATE TABLE raw.orders AS SELECT '2126-06-01 10:00:00' AS ordered_at FROM range(200)")
    session.execute("INSERT INTO raw.orders VALUES ('2126-06-30 09:30:00'), ('not a date'), ('2199-01-01')")
    session.execute("CREATE TABLE raw.diagnoses AS SELECT * FROM (VALUES ('2126-06-29'), (NULL)) t(diagnosed_at)")
    yield session
    session.close()


def test_resolve_as_of_reads_the_raw_event_dates(con):
    found = resolve_as_of(con, None, NOW)
    # 203 parsed events; 2199 is more than ten years after the bulk: a stray, counted as after the as-of time
    assert (found.as_of, found.events, found.events_after) == (datetime(2126, 6, 30, 9, 30), 203, 1)
    assert found.basis == "the latest event in the data"
    write_as_of(con, found)
    assert read_as_of(con) == datetime(2126, 6, 30, 9, 30)


def test_resolve_as_of_prefers_medmkt_as_of_and_falls_back_to_the_wall_clock(con):
    given = resolve_as_of(con, "2126-06-15", NOW)
    assert (given.as_of, given.basis, given.events_after) == (datetime(2126, 6, 15, 23, 59, 59, 999999),
                                                              "MEDMKT_AS_OF", 3)
    con.execute("DELETE FROM raw.orders")
    con.execute("DELETE FROM raw.diagnoses")
    empty = resolve_as_of(con, None, NOW)
    assert (empty.as_of, empty.events) == (NOW, 0) and "wall clock" in empty.basis


def test_days_on_both_sides_of_a_bound_are_read_to_the_second():
    """An export reaching today is capped at the wall clock (noon): the morning's times count, the
    afternoon's are after it; the day after the as-of time is split at the as-of time's hour."""
    session = Session(duckdb.connect())
    ensure_schemas(session)
    session.execute("CREATE TABLE raw.orders AS SELECT '2026-11-20 10:00:00' AS ordered_at FROM range(300)")
    session.execute("INSERT INTO raw.orders VALUES ('2026-12-06 09:15:00'), ('2026-12-06 13:00:00'), "
                    "('2026-12-07 09:00:00'), ('2026-12-07 10:00:00'), ('2026-12-09 00:00:00')")
    found = resolve_as_of(session, None, NOW)
    assert (found.as_of, found.basis) == (datetime(2026, 12, 6, 9, 15), "the latest event in the data, capped at the wall clock")
    # after 2026-12-07 09:15: 10:00 that day and the 9th; 13:00 on the 6th is within a day of it
    assert (found.events, found.events_after) == (305, 2)


def test_staging_judges_future_dates_and_birth_dates_against_the_as_of_time(con):
    con.execute("""CREATE TABLE raw.patients AS SELECT *, 'p.csv' AS _source_file, row_number() OVER () AS _source_row
                   FROM (VALUES ('P1', '2080-05-01', NULL), ('P2', '2127-01-01', NULL), ('P3', '2126-06-30', NULL))
                   t(patient_id, birth_date, registered_at)""")
    for column in ("full_name", "gender", "phone", "email", "address", "city", "region", "postal_code",
                   "insurance_type", "death_date"):
        con.execute(f"ALTER TABLE raw.patients ADD COLUMN {column} VARCHAR")
    result = stage_table(con, build_specs("k", datetime(2126, 6, 30, 9, 30), load_policy())["patients"], "raw.patients")
    assert result.reasons == {"birth_date is in the future (after the as-of time)": 1}
    assert sorted(r[0] for r in con.execute("SELECT birth_year FROM staging.patients").fetchall()) == [2080, 2126]
    # the same patients judged against the wall clock of 2026 would all have been "in the future"
    result = stage_table(con, build_specs("k", NOW, load_policy())["patients"], "raw.patients")
    assert result.quarantined_rows == 3


def test_quarantine_verdict_passes_up_to_the_limit_and_then_says_what_to_try():
    ok = quarantine_verdict("orders", 100, {"quantity is zero or negative (cancellation or return)": 50})
    assert ok.passed and ok.share == 0.5
    reasons = {"birth_date is in the future (after the as-of time)": 97, "birth_date is not a valid date": 2,
               "duplicate patient_id; the first row in file order was kept": 1, "patient_id is missing or blank": 0}
    bad = quarantine_verdict("patients", 100, reasons, 0.5, "2026-06-30 00:00:00", "MEDMKT_AS_OF")
    assert not bad.passed and bad.share == 1.0
    assert bad.message.startswith("patients: 100 of 100 rows (100%) quarantined in quarantine.patients, more than "
                                  "the 50% allowed (MEDMKT_MAX_QUARANTINE_SHARE)")
    assert "Top reasons: birth_date is in the future (after the as-of time) (97); birth_date is not a valid date " \
           "(2); duplicate patient_id; the first row in file order was kept (1)." in bad.message
    assert "(1) dates after the as-of time 2026-06-30 00:00:00 (MEDMKT_AS_OF): for a date-shifted" in bad.message
    assert "set MEDMKT_AS_OF" in bad.message and "(2) values that do not parse" in bad.message
    assert "missing" not in bad.message  # only the top three reasons get advice
    assert quarantine_verdict("orders", 0, {}).passed  # an empty table loses nothing


def test_empty_findings_name_the_marts_a_source_with_rows_cannot_leave_empty():
    con = Session(duckdb.connect())
    ensure_schemas(con)
    con.execute("CREATE TABLE staging.patients (patient_key VARCHAR)")
    con.execute("CREATE TABLE quarantine.patients AS SELECT 'x' AS _reason FROM range(100)")
    con.execute("CREATE TABLE staging.orders (order_id VARCHAR)")
    con.execute("CREATE TABLE quarantine.orders (_reason VARCHAR)")
    for table in ("patient_profiles", "patient_segments", "recommendations", "demand_trends", "campaign_effects"):
        con.execute(f"CREATE TABLE marts.{table} (patient_key VARCHAR)")
    findings = empty_findings(con, {tuple(r): {} for r in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables").fetchall()})
    assert findings == ["marts.patient_profiles is empty (staging.patients: 0 rows, quarantine.patients: 100 rows)",
                        "marts.patient_segments is empty (staging.patients: 0 rows, quarantine.patients: 100 rows)",
                        "marts.recommendations is empty (staging.patients: 0 rows, quarantine.patients: 100 rows)"]
    assert set(findings) <= set(shape_findings(con))  # the contract check reports them
    con.close()


def test_shift_text_moves_every_iso_date_by_whole_years():
    assert shift_text('{"birthDate": "2000-02-29", "start": "2024-02-29T10:00:00Z"}, 1998-4-1', 100) == \
        '{"birthDate": "2100-02-28", "start": "2124-02-29T10:00:00Z"}, 1998-4-1'
