"""Parity: the demo world through the whole graph on Spark gives what DuckDB gives.

`spark_pipeline` materializes every asset and check on a local Spark, on the same source and
pseudonym key as `demo_pipeline` (DuckDB). Every staged, feature, quarantine and contract table
must match: same columns and types, same keys and counts, every cell equal (floating-point
cells within 1e-9 relative: the engines add up in different orders).
"""
from __future__ import annotations

import stat

import duckdb
import pytest

from medmkt_assets.bench.compare import differences
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.ops.contract_check import privacy_findings, shape_findings

RTOL = 1e-9


def test_the_whole_graph_runs_on_spark(spark_pipeline):
    result = spark_pipeline["result"]
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    assert result.success, f"steps failed on Spark: {failed}"


def test_every_table_equals_the_duckdb_run(demo_pipeline, spark_pipeline):
    assert differences(str(demo_pipeline["warehouse"]), str(spark_pipeline["warehouse"]), rtol=RTOL) == []


def test_contract_tables_are_views_over_the_lakehouse_with_the_same_types(demo_pipeline, spark_pipeline):
    listing = ("SELECT table_name, column_name, data_type FROM information_schema.columns "
               "WHERE table_schema = 'marts' ORDER BY ALL")
    with duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True) as duck, \
            duckdb.connect(str(spark_pipeline["warehouse"]), read_only=True) as on_spark:
        assert on_spark.execute(listing).fetchall() == duck.execute(listing).fetchall()
        kinds = on_spark.execute("SELECT DISTINCT table_type FROM information_schema.tables "
                                 "WHERE table_schema = 'marts'").fetchall()
    assert kinds == [("VIEW",)]


@pytest.mark.parametrize("table", ["recommendations", "audiences"])
def test_a_second_spark_session_reads_the_published_marts_by_name_from_the_catalog(demo_pipeline, spark_pipeline,
                                                                                      spark, table):
    """Another session on the same metastore (none of the pipeline's temp views, its own catalog
    cache) finds marts.<table> by name and reads what DuckDB published."""
    other = spark.newSession()
    assert other.catalog.tableExists(f"marts.{table}")
    location = other.sql(f"DESCRIBE TABLE EXTENDED marts.{table}").where("col_name = 'Location'").collect()[0][1]
    assert location.startswith(f"file:{spark_pipeline['lakehouse'] / 'marts' / table}/v")
    on_spark = other.table(f"marts.{table}").toPandas()
    with duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True) as con:
        on_duckdb = con.execute(f"SELECT * FROM marts.{table}").fetchdf()
    assert len(on_spark) == len(on_duckdb) > 0 and sorted(on_spark.columns) == sorted(on_duckdb.columns)


def test_privacy_and_shape_rules_hold_on_the_spark_warehouse(spark_pipeline):
    con = Session(duckdb.connect(str(spark_pipeline["warehouse"]), read_only=True))
    try:
        assert shape_findings(con) == [] and privacy_findings(con) == []
    finally:
        con.close()


def test_quality_gates_ran_and_passed_as_on_duckdb(demo_pipeline, spark_pipeline):
    def verdicts(result):
        return sorted((e.asset_check_evaluation_data.check_name, e.asset_check_evaluation_data.passed)
                      for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION")

    on_spark = verdicts(spark_pipeline["result"])
    assert len(on_spark) > 30 and on_spark == verdicts(demo_pipeline["result"])


def test_audience_exports_stay_owner_only(spark_pipeline):
    exports = list((spark_pipeline["root"] / "exports").glob("*.csv"))
    assert exports and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in exports)


@pytest.mark.parametrize("schema", ["restricted", "raw"])
def test_private_schemas_live_in_the_lakehouse_too(spark_pipeline, spark, schema):
    assert any((spark_pipeline["lakehouse"] / schema).iterdir())
    assert spark.catalog.listTables(schema)
