"""Known answers for the SQL normalizers and small-cell suppression."""
from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from medmkt_assets.lib.models.profiles import age_band_sql
from medmkt_assets.lib.privacy.pseudonym import clean_id, clean_id_sql
from medmkt_assets.lib.privacy.suppression import (
    hide_complement,
    is_small_cell,
    suppress_frame,
    suppressed_sql,
)
from medmkt_assets.lib.sources import parse as P


def one(expr: str, value):
    """Evaluate an expression over a one-row table whose column v holds the value."""
    return duckdb.connect().execute(f"SELECT {expr} FROM (SELECT ? AS v)", [value]).fetchall()[0][0]


@pytest.mark.parametrize("raw, expected", [
    ("F", "F"), ("female", "F"), (" Female ", "F"), ("女", "F"), ("f", "F"),
    ("M", "M"), ("male", "M"), ("男", "M"), ("m", "M"),
    ("x", "U"), ("", "U"), (None, "U"), ("unknown", "U"),
])
def test_gender(raw, expected):
    assert one(P.gender("v"), raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("Store", "store"), ("in-store", "store"), ("WEB", "online"), ("mobile app", "app"),
    ("telephone", "phone"), ("Hospital", "clinic"), ("carrier pigeon", "other"), (None, None),
])
def test_order_channel(raw, expected):
    assert one(P.order_channel("v"), raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("2024-03-05", dt.datetime(2024, 3, 5)), ("2024-03-05T10:11:12Z", dt.datetime(2024, 3, 5, 10, 11, 12)),
    ("2024/03/05", dt.datetime(2024, 3, 5)), ("20240305", dt.datetime(2024, 3, 5)),
    ("05.03.2024", dt.datetime(2024, 3, 5)), ("2024年03月05日", dt.datetime(2024, 3, 5)),
    ("03/05/2024", None), ("not-a-date", None), ("2024-13-40", None), ("  ", None),
])
def test_timestamp(raw, expected):
    assert one(P.timestamp("v"), raw) == expected


@pytest.mark.parametrize("raw, expected", [("3", 3), ("3.0", 3), ("3.5", None), ("-2", -2), ("x", None)])
def test_integer(raw, expected):
    assert one(P.integer("v"), raw) == expected


@pytest.mark.parametrize("raw, expected", [("true", True), ("Yes", True), ("0", False), ("n", False), ("maybe", None)])
def test_boolean(raw, expected):
    assert one(P.boolean("v"), raw) == expected


def test_category_snake_case():
    assert one(P.category("v"), " Diabetes Care ") == "diabetes_care"
    assert one(P.category("v"), "women's-health") == "women's_health"


@pytest.mark.parametrize("age, band", [(0, "0-9"), (9, "0-9"), (45, "40-49"), (89, "80-89"), (90, "90+"),
                                       (104, "90+"), (None, "unknown"), (-1, "unknown")])
def test_age_band(age, band):
    assert one(age_band_sql("CAST(v AS INTEGER)"), age) == band


@pytest.mark.parametrize("count, small", [(0, False), (1, True), (10, True), (11, False), (None, False)])
def test_small_cells(count, small):
    assert is_small_cell(count) is small
    assert one(suppressed_sql("CAST(v AS INTEGER)"), count) == (None if small else count)


def test_suppress_frame_hides_count_and_revealing_measures():
    frame = pd.DataFrame({"cell": ["a", "b", "c"], "patients": [0, 5, 25], "orders": [0, 7, 40]})
    out = suppress_frame(frame, "patients", also=["orders"])
    assert out["suppressed"].tolist() == [False, True, False]
    assert out["patients"].isna().tolist() == [False, True, False]
    assert out["orders"].isna().tolist() == [False, True, False]
    assert out.loc[2, "patients"] == 25


def test_hide_complement_widens_a_lone_hidden_cell_only():
    frame = pd.DataFrame({"g": ["a", "a", "a", "b", "b", "c"], "n": [5, 40, 30, 3, 4, 2]})
    hidden = hide_complement(frame.n.between(1, 10), frame.n, frame[["g"]])
    # a: 5 alone hidden -> 30 (smallest visible) joins; b: two hidden already; c: a single row
    assert hidden.tolist() == [True, False, True, True, True, True]
    empty = frame.iloc[:0]
    assert hide_complement(empty.n.between(1, 10), empty.n, empty[["g"]]).empty  # no campaigns, no cells


# Spellings around values that staging parses: every ID_WHITESPACE character, other Unicode
# spaces and line separators that are not stripped, inner spaces, and nothing at all.
_PADS = ["", " ", "\t", "\n", "\r", "\f", "\v", "\u00a0", "\u3000", " \t\u3000 ", "\r\n", "\u2003", "\u2028",
         "\u0085", "\x01", "x"]
_CORES = ["", "P001", "a b", " ", "2024-03-05", "2024-03-05 10:11:12", "2024-03-05T10:11:12+08:00",
          "2024-03-05 10:11:12.123456789", "20240305", "05.03.2024", "2024年03月05日", "2024.03.05", "03/05/2024",
          "2024-13-40", "李\u3000雷", "\u3000"]


def _spellings() -> list[str]:
    return [left + core + right for core in _CORES for left in _PADS for right in _PADS]


def test_text_is_clean_id():
    """P.text (one regex) strips exactly what clean_id_sql and Python's clean_id strip."""
    values = _spellings()
    con = duckdb.connect()
    got = con.execute(f"SELECT {P.text('v')}, {clean_id_sql('v')} FROM unnest(?) AS t(v)", [values]).fetchall()
    assert [g[0] for g in got] == [g[1] for g in got] == [clean_id(v) for v in values]


def test_timestamp_fast_path_changes_nothing():
    """Casting the untrimmed text first gives what the trimmed text alone gives, on every spelling."""
    values = _spellings()
    t = clean_id_sql("v")
    formats = ", ".join(f"'{f}'" for f in P._EXTRA_DATE_FORMATS)
    trimmed_only = f"coalesce(try_cast({t} AS TIMESTAMP), try_strptime({t}, [{formats}]))"
    got = duckdb.connect().execute(f"SELECT {P.timestamp('v')}, {trimmed_only} FROM unnest(?) AS t(v)",
                                   [values]).fetchall()
    assert [g[0] for g in got] == [g[1] for g in got]
    assert sum(g[0] is not None for g in got) > 100
