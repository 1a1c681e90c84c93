"""The lakehouse: versions swap atomically, the previous one stays readable, DuckDB views follow."""
from __future__ import annotations

import duckdb
import pytest

from medmkt_assets.lib.engine.spark.lakehouse import Lakehouse, refresh_views


def _write_version(lake: Lakehouse, table: str, values: list[int]):
    version = lake.new_version(table)
    version.mkdir()
    duckdb.execute(f"COPY (SELECT unnest({values}) AS x) TO '{version / 'part-0.parquet'}' (FORMAT parquet)")
    return version


def test_a_version_is_invisible_until_published_and_the_previous_one_survives_the_swap(tmp_path):
    lake = Lakehouse(tmp_path / "lake")
    first = _write_version(lake, "marts.t", [1, 2])
    assert lake.current("marts.t") is None and lake.tables() == []
    lake.publish("marts.t", first)
    second = _write_version(lake, "marts.t", [3])
    assert lake.current("marts.t") == first  # written but not published: readers still see the first
    lake.publish("marts.t", second)
    assert lake.current("marts.t") == second and first.is_dir()  # kept for a reader that opened it
    third = _write_version(lake, "marts.t", [4])
    lake.publish("marts.t", third)
    assert not first.exists() and second.is_dir()
    assert lake.tables() == ["marts.t"]


def test_views_in_the_warehouse_read_the_live_version(tmp_path):
    lake, warehouse = Lakehouse(tmp_path / "lake"), tmp_path / "w.duckdb"
    lake.publish("marts.t", _write_version(lake, "marts.t", [1, 2]))
    con = duckdb.connect(str(warehouse))
    con.execute("CREATE SCHEMA marts; CREATE TABLE marts.t AS SELECT 0 AS x")  # left by a DuckDB run
    con.close()
    refresh_views(lake, warehouse, ["marts.t"])
    lake.publish("marts.t", _write_version(lake, "marts.t", [5, 6, 7]))  # the view follows `current`
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT sum(x), count(*) FROM marts.t").fetchall() == [(18, 3)]
        assert con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 't'"
                           ).fetchall() == [("VIEW",)]
    lake.drop("marts.t")
    refresh_views(lake, warehouse, [], dropped=["marts.t"])
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 't'").fetchall() == [(0,)]


def test_a_raw_tables_stored_load_order_is_hidden_from_readers(tmp_path):
    lake, warehouse = Lakehouse(tmp_path / "lake"), tmp_path / "w.duckdb"
    version = lake.new_version("raw.t")
    version.mkdir()
    duckdb.execute(f"COPY (SELECT 'a' AS v, 0 AS rowid) TO '{version / 'p.parquet'}' (FORMAT parquet)")
    lake.publish("raw.t", version)
    refresh_views(lake, warehouse, ["raw.t"])
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert [r[0] for r in con.execute("DESCRIBE raw.t").fetchall()] == ["v"]


def test_an_object_store_uri_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="atomic commits"):
        Lakehouse("s3a://bucket/medmkt")
