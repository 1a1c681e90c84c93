"""The lakehouse: tables in Spark's catalog switch versions with one catalog operation, the previous
version stays readable, DuckDB views follow, and an object-store root needs no local filesystem."""
from __future__ import annotations

import os

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from medmkt_assets.defs.resources import Warehouse
from medmkt_assets.lib.engine.spark.lakehouse import (
    Lakehouse,
    duckdb_path,
    local_path,
    refresh_views,
    view_sql,
)
from medmkt_assets_tests.conftest import isolated_lakehouse


def _write_parquet(location: str, values: list[int], column: str = "x") -> str:
    os.makedirs(location)
    duckdb.execute(f"COPY (SELECT unnest({values}) AS {column}) TO '{location}/part-0.parquet' (FORMAT parquet)")
    return location


def test_an_object_store_root_is_accepted_and_named_without_touching_the_local_filesystem(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lake = Lakehouse("s3a://bucket/medmkt/", prefix="prod_")
    version = lake.new_version("marts.recommendations")
    assert version.startswith("s3a://bucket/medmkt/marts/recommendations/v") and not lake.is_local
    assert lake.scratch().startswith("s3a://bucket/medmkt/_scratch/")
    assert lake.catalog_name("marts.recommendations") == "`prod_marts`.`recommendations`"
    assert duckdb_path(version).startswith("s3://bucket/medmkt/") and duckdb_path("gs://b/x") == "gcs://b/x"
    assert duckdb_path("abfss://c@a.dfs.core.windows.net/x") == "abfss://c@a.dfs.core.windows.net/x"
    assert "read_parquet('s3://bucket/medmkt/marts/t/v1/*.parquet')" in view_sql("marts.t", "s3a://bucket/medmkt/marts/t/v1", ["x"])
    assert list(tmp_path.iterdir()) == []
    assert local_path("file:/data/lake/v1") == "/data/lake/v1" and local_path("hdfs://nn/x") is None
    with pytest.raises(ValueError, match="prefix"):
        Lakehouse("s3a://bucket/medmkt", prefix="Prod-")


def test_views_in_the_warehouse_read_the_live_location(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("CREATE SCHEMA marts; CREATE TABLE marts.t AS SELECT 0 AS x")  # left by a DuckDB run
    con.close()
    refresh_views(warehouse, {"marts.t": _write_parquet(str(tmp_path / "v1"), [1, 2])})
    refresh_views(warehouse, {"marts.t": _write_parquet(str(tmp_path / "v2"), [5, 6, 7])})
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT sum(x), count(*) FROM marts.t").fetchall() == [(18, 3)]
        assert con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 't'"
                           ).fetchall() == [("VIEW",)]
    refresh_views(warehouse, {}, dropped=["marts.t"])
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 't'").fetchall() == [(0,)]


def test_a_raw_tables_stored_load_order_is_hidden_from_readers(tmp_path):
    warehouse, version = tmp_path / "w.duckdb", str(tmp_path / "v1")
    os.makedirs(version)
    duckdb.execute(f"COPY (SELECT 'a' AS v, 0 AS rowid) TO '{version}/p.parquet' (FORMAT parquet)")
    refresh_views(warehouse, {"raw.t": version})
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert [r[0] for r in con.execute("DESCRIBE raw.t").fetchall()] == ["v"]


# --- in Spark's catalog ----------------------------------------------------------------------
@pytest.fixture
def catalog(spark, tmp_path):
    from medmkt_assets.lib.engine.spark.lakehouse import Catalog

    return Catalog(spark, isolated_lakehouse(tmp_path / "lake"))


def _by_name(spark, catalog, table: str) -> list:
    """The table's rows as another, independent session reads them: by name, through the catalog."""
    other = spark.newSession()
    return sorted(tuple(r) for r in other.table(catalog.lake.catalog_name(table)).collect())


def test_a_version_is_invisible_until_published_and_the_previous_one_survives_the_switch(spark, catalog):
    lake = catalog.lake
    first = _write_parquet(lake.new_version("marts.t"), [1, 2])
    assert catalog.location("marts.t") is None and catalog.tables() == []
    catalog.publish("marts.t", first)
    second = _write_parquet(lake.new_version("marts.t"), [3])
    assert catalog.location("marts.t") == first and _by_name(spark, catalog, "marts.t") == [(1,), (2,)]
    catalog.publish("marts.t", second)
    assert _by_name(spark, catalog, "marts.t") == [(3,)] and os.path.isdir(first)  # kept for a reader of it
    catalog.publish("marts.t", _write_parquet(lake.new_version("marts.t"), [4]))
    assert not os.path.exists(first) and os.path.isdir(second)
    assert catalog.tables() == ["marts.t"]
    assert spark.catalog.databaseExists(lake.database("marts"))


def test_a_version_with_other_columns_changes_the_catalogs_columns(spark, catalog):
    lake = catalog.lake
    catalog.publish("staging.t", _write_parquet(lake.new_version("staging.t"), [1]))
    wider = lake.new_version("staging.t")
    os.makedirs(wider)
    duckdb.execute(f"COPY (SELECT 2 AS x, 'b' AS note) TO '{wider}/p.parquet' (FORMAT parquet)")
    catalog.publish("staging.t", wider)  # a column added: ADD COLUMNS, then the switch
    assert _by_name(spark, catalog, "staging.t") == [(2, "b")]
    catalog.publish("staging.t", _write_parquet(lake.new_version("staging.t"), [7], column="other"))
    assert _by_name(spark, catalog, "staging.t") == [(7,)]
    assert spark.newSession().table(lake.catalog_name("staging.t")).columns == ["other"]


def test_a_dropped_table_leaves_the_catalog_and_its_files_go(spark, catalog):
    version = _write_parquet(catalog.lake.new_version("ops.t"), [1])
    catalog.publish("ops.t", version)
    catalog.drop("ops.t")
    assert catalog.location("ops.t") is None and not os.path.exists(version)
    assert not spark.catalog.tableExists(f"{catalog.lake.database('ops')}.t")


def test_a_failed_asset_step_leaves_the_previous_version_readable(spark, tmp_path):
    """An asset that writes a new version of its table and then fails: readers by name in the
    catalog, and through the warehouse's DuckDB view, still get the previous version."""
    from medmkt_assets.lib.engine.spark.lakehouse import Catalog

    lake = isolated_lakehouse(tmp_path / "lake")
    warehouse = Warehouse(engine=DuckDBResource(database=str(tmp_path / "w.duckdb")), compute="spark",
                          lakehouse=lake.root, spark_database_prefix=lake.prefix, spark_master="local[2]")

    def step(rows: int, fail: bool):
        @dg.asset(name="scores", key_prefix="marts")
        def scores(warehouse: Warehouse) -> None:
            with warehouse.transaction() as con:
                con.execute(f"CREATE OR REPLACE TABLE marts.scores AS SELECT range AS n FROM range({rows})")
                if fail:
                    raise RuntimeError("the model failed after the table was written")
        return dg.materialize([scores], resources={"warehouse": warehouse}, raise_on_error=False)

    assert step(3, fail=False).success
    assert not step(5, fail=True).success
    assert len(_by_name(spark, Catalog(spark, lake), "marts.scores")) == 3
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM marts.scores").fetchall() == [(3,)]
    assert len(os.listdir(tmp_path / "lake" / "marts" / "scores")) == 1  # the failed version was removed
