"""The export's as-of time: the one "now" that every date in the pipeline is judged against.

De-identified research exports (MIMIC, OMOP demos) shift every date, often into the 22nd
century, and a historical export is processed long after it was taken. Judged against the
wall clock, the first would be quarantined whole ("in the future") and the second would
age every patient. So "now" is the export's own as-of time, resolved once per run by the
`staging/as_of` asset into `staging.as_of` and read from there by staging (dates after it
are quarantined), the quality gates, profiles (age, recency), features and disease-risk
horizons:

- `MEDMKT_AS_OF` when given (an ISO date or timestamp);
- else the latest dated event of the source (registrations, order lines, diagnoses, consent
  events, digital events), leaving out strays: an event more than `STRAY_GAP_DAYS` after the day by
  which `BULK_SHARE` of all events had happened is a typo, not the export's end;
- and, for an export whose events mostly lie before today (not date-shifted), never later
  than the wall clock, so a stray date past today is still caught (in an export too small
  for the 99 % rule to see a stray, too).

An export without a single dated event falls back to the wall clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Mapping

import pandas as pd

from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.sources import parse as P

AS_OF_TABLE = "staging.as_of"
# A scalar subquery: the run's as-of time, for SQL anywhere after staging/as_of.
AS_OF_SQL = f"(SELECT max(as_of) FROM {AS_OF_TABLE})"
# Dated events that say how far an export reaches: (raw table, its event date column).
EVENT_DATES = (("patients", "registered_at"), ("orders", "ordered_at"), ("diagnoses", "diagnosed_at"),
               ("consents", "recorded_at"), ("events", "occurred_at"))
BULK_SHARE = 0.99
STRAY_GAP_DAYS = 3653  # ten years


@dataclass(frozen=True)
class AsOf:
    """The resolved as-of time, how it was found (shown in metadata and error messages), and
    the event rows after it (they are quarantined as "in the future")."""

    as_of: datetime
    basis: str
    events: int = 0
    events_after: int = 0

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"as_of": [pd.Timestamp(self.as_of)], "basis": [self.basis],
                             "events": [self.events], "events_after": [self.events_after]})


def bulk_end(day_counts: Mapping[date, int], share: float = BULK_SHARE) -> date:
    """The day by which `share` of the events had happened (the share-quantile of event days)."""
    days = sorted(day_counts)
    needed, running = share * sum(day_counts.values()), 0
    for day in days:
        running += day_counts[day]
        if running >= needed:
            return day
    return days[-1]


def is_shifted(day_counts: Mapping[date, int], today: date) -> bool:
    """Most events lie after today: a date-shifted export (the median, not the bulk end, decides,
    so one typo in an export of a few dozen events does not make it look shifted)."""
    return bulk_end(day_counts, 0.5) > today


def latest_day(day_counts: Mapping[date, int], today: date) -> date:
    """The export's last day: its latest event day that is no stray, capped at today unless
    the export is date-shifted."""
    bound = bulk_end(day_counts) + timedelta(days=STRAY_GAP_DAYS)  # once, not once per day (10,000 days)
    last = max(d for d in day_counts if d <= bound)
    return last if is_shifted(day_counts, today) else min(last, today)


def parse_override(text: str) -> datetime:
    """MEDMKT_AS_OF as a timestamp: a date means the end of that day."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise ValueError(f"MEDMKT_AS_OF={text!r} is not an ISO 8601 date or timestamp "
                         "(expected e.g. 2026-06-30 or 2026-06-30T23:59:59)") from error
    if len(text.strip()) == 10:
        value += timedelta(days=1, microseconds=-1)
    # a zone is dropped, the time kept as written: the warehouse reads the data's timestamps so
    # (try_cast('…T08:00:00+08:00' AS TIMESTAMP) is 08:00)
    return value.replace(tzinfo=None)


def _event_times_sql(con: Session) -> str:
    """Every parsed event time of the raw tables (tables or columns an export lacks are left out)."""
    parts = [f"SELECT {P.timestamp(column)} AS t FROM raw.{table}" for table, column in EVENT_DATES
             if con.table_exists(f"raw.{table}") and column in con.describe(f"raw.{table}")]
    return " UNION ALL ".join(parts) or "SELECT CAST(NULL AS TIMESTAMP) AS t"


def as_of_bound(day_counts: Mapping[date, int], now: datetime) -> datetime:
    """The (exclusive) bound below which the export's latest event is its as-of time: the end of
    its last day, or now for an export that is not date-shifted and reaches today."""
    until = datetime.combine(latest_day(day_counts, now.date()) + timedelta(days=1), time())
    return until if is_shifted(day_counts, now.date()) else min(until, now)


def resolve_as_of(con: Session, override: str | None, now: datetime) -> AsOf:
    """The run's as-of time from MEDMKT_AS_OF or the raw event dates (see the module docstring).

    One pass parses every event time into counts and latest times per day (29 M times at
    1,000,000 patients; storing them to read three times took longer than parsing them). The raw
    times are read again only where a day holds times on both sides of a bound (the day the wall
    clock caps, the day after the as-of time)."""
    events = f"SELECT t FROM ({_event_times_sql(con)}) AS event_times WHERE t IS NOT NULL"
    days = {day: (count, latest) for day, count, latest in con.execute(
        f"SELECT CAST(t AS DATE), count(*), max(t) FROM ({events}) AS e GROUP BY 1").fetchall()}
    day_counts = {day: count for day, (count, _) in days.items()}
    if override:
        as_of, basis = parse_override(override), "MEDMKT_AS_OF"
    elif not day_counts:
        as_of, basis = now, "the wall clock (the source has no dated events)"
    else:
        until = as_of_bound(day_counts, now)
        before = [latest for day, (_, latest) in days.items() if day < until.date()]
        if until.time() != time() and until.date() in days:  # that day's times lie on both sides of it
            (latest,) = con.execute(f"SELECT max(t) FROM ({events}) AS e WHERE t >= ? AND t < ?",
                                    [datetime.combine(until.date(), time()), until]).fetchall()[0]
            before += [latest] if latest is not None else []
        as_of = max(before, default=None) or now
        basis = "the latest event in the data" + (", capped at the wall clock" if until == now else "")
    bound = as_of + timedelta(days=1)
    after = sum(count for day, (count, _) in days.items() if day > bound.date())
    if bound.date() in days and days[bound.date()][1] > bound:
        (after_that_day,) = con.execute(f"SELECT count(*) FROM ({events}) AS e WHERE t > ? AND t < ?",
                                        [bound, datetime.combine(bound.date() + timedelta(days=1), time())]
                                        ).fetchall()[0]
        after += after_that_day
    return AsOf(as_of, basis, sum(day_counts.values()), after)


def write_as_of(con: Session, as_of: AsOf) -> None:
    # typed in SQL: a pandas timestamp would land as TIMESTAMP_NS on DuckDB and TIMESTAMP on Spark
    con.write_frame(as_of.frame(), AS_OF_TABLE, query="SELECT CAST(as_of AS TIMESTAMP) AS as_of, "
                    "CAST(basis AS VARCHAR) AS basis, CAST(events AS BIGINT) AS events, "
                    "CAST(events_after AS BIGINT) AS events_after FROM frame")


def read_as_of(con: Session) -> datetime:
    """The as-of time staging/as_of resolved for this run."""
    (value,) = con.execute(f"SELECT {AS_OF_SQL}").fetchall()[0]
    if value is None:
        raise ValueError(f"{AS_OF_TABLE} is empty: materialize staging/as_of first")
    return value
