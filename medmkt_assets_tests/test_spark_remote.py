"""The whole graph on Spark as a team runs it beyond one machine: through the Spark Connect server
PySpark ships, and on a standalone cluster whose executors are other JVMs with their own Python
workers. Each runs the 3,000-patient demo world's assets and then a sensor batch with its quality
gates (graph_run.py, in a process of its own, started by spark_runs.py; the two side by side, which
keeps CI's wall time down), the cluster run the whole graph's quality gates too (their verdicts must be DuckDB's), and must give
what DuckDB gives for the same world and batch (`duckdb_batch_reference`): every staging, features,
quarantine, restricted and marts table, same columns and types, same keys and counts, every cell equal
(floating-point cells within 1e-9 relative: the engines add up in different orders). After each run,
an independent Spark on its metastore finds the published marts by name. Servers bind to 127.0.0.1
on free ports and are stopped in the fixtures' finalizers, whatever the tests do.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from medmkt_assets.bench.compare import differences
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.ops.contract_check import privacy_findings, shape_findings
from medmkt_assets_tests.conftest import require_spark
from medmkt_assets_tests.graph_run import check_verdicts
from medmkt_assets_tests.spark_runs import RemoteRuns

RTOL = 1e-9
pytestmark = [pytest.mark.slow, pytest.mark.spark]


# The batch's rows name their accepted file, `<drop zone>/_accepted/orders/<UTC time>_<hash>_day1.csv`:
# each run has its own drop zone and accepted the file at its own time, so there the runs differ, and
# only there: compared by `<hash>_day1.csv` and row.
# the batch's order lines land in these (restricted.sensitive_orders: those of a withheld product)
BATCH_LINEAGE = ("staging.orders", "quarantine.orders", "restricted.sensitive_orders")
ACCEPTED_AS = r"regexp_replace(regexp_replace(_source_file, '^.*/', ''), '^[0-9]{8}T[0-9]{6}_', '')"


def assert_ran_and_matches_duckdb(run: dict, reference: dict) -> None:
    assert run["graph_success"], f"steps failed: {run['graph']}"
    assert run["batch_success"], f"batch steps failed: {run['batch']}"
    found = differences(str(reference["warehouse"]), str(run["warehouse"]), rtol=RTOL)
    assert [f for f in found if f not in [f"{t}: columns differ: ['_source_file']" for t in BATCH_LINEAGE]] == []
    for table in BATCH_LINEAGE:
        lineage = f"SELECT {ACCEPTED_AS} AS f, _source_row, count(*) FROM {table} GROUP BY ALL ORDER BY ALL"
        with duckdb.connect(str(reference["warehouse"]), read_only=True) as a, \
                duckdb.connect(str(run["warehouse"]), read_only=True) as b:
            assert a.execute(lineage).fetchall() == b.execute(lineage).fetchall()
    with duckdb.connect(str(run["warehouse"]), read_only=True) as con:  # the batch is in, quarantine included
        # 30 good lines: staged, or withheld as sensitive (a line of a withheld product)
        assert con.execute("SELECT (SELECT count(*) FROM staging.orders WHERE order_id LIKE 'BATCH%') + "
                           "(SELECT count(*) FROM restricted.sensitive_orders WHERE order_id LIKE 'BATCH%')"
                           ).fetchall() == [(30,)]
        assert con.execute("SELECT count(*) FROM quarantine.orders WHERE order_id LIKE 'BATCH%'").fetchall() == [(2,)]


# --- the two runs, at once: a Spark run spends much of its time waiting on its driver -------------
@pytest.fixture(scope="module")
def remote_runs(demo_pipeline, tmp_path_factory) -> dict:
    """The demo world and its sensor batch through a Spark Connect server and on a standalone
    cluster of two one-core workers, side by side; every server stopped at the end, whatever happened."""
    require_spark()
    runs = RemoteRuns(tmp_path_factory.mktemp("spark_remote"))
    try:
        return runs.start(demo_pipeline["source"]).finish()
    finally:
        runs.stop()


@pytest.fixture
def connect_run(remote_runs) -> dict:
    return remote_runs["connect"]


@pytest.fixture
def cluster_run(remote_runs) -> dict:
    return remote_runs["cluster"]


# --- Spark Connect ---------------------------------------------------------------------------
def test_the_whole_graph_and_a_sensor_batch_through_spark_connect_equal_duckdb(connect_run, duckdb_batch_reference):
    assert_ran_and_matches_duckdb(connect_run, duckdb_batch_reference)


# --- a standalone cluster ----------------------------------------------------------------------
def test_the_whole_graph_and_a_sensor_batch_on_a_standalone_cluster_equal_duckdb(cluster_run, duckdb_batch_reference):
    assert_ran_and_matches_duckdb(cluster_run, duckdb_batch_reference)


def test_the_cluster_run_used_both_workers(cluster_run):
    """The run was an application of the master, its executors the two workers' JVMs (one core each)."""
    workers = cluster_run["state"]["workers"]
    assert len(workers) == 2 and all(w["state"] == "ALIVE" and w["cores"] == 1 for w in workers)
    (app,) = [a for a in cluster_run["state"]["completedapps"] + cluster_run["state"]["activeapps"]
              if a["name"] == "medmkt"]
    assert app["cores"] == 2


def test_the_cluster_run_held_every_quality_gate_as_duckdb_did(cluster_run, demo_pipeline):
    assert len(cluster_run["graph_checks"]) > 30
    assert cluster_run["graph_checks"] == check_verdicts(demo_pipeline["result"])


def test_contract_tables_are_views_over_the_lakehouse_with_the_same_types(cluster_run, demo_pipeline):
    listing = ("SELECT table_name, column_name, data_type FROM information_schema.columns "
               "WHERE table_schema = 'marts' ORDER BY ALL")
    with duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True) as duck, \
            duckdb.connect(str(cluster_run["warehouse"]), read_only=True) as on_spark:
        assert on_spark.execute(listing).fetchall() == duck.execute(listing).fetchall()
        kinds = on_spark.execute("SELECT DISTINCT table_type FROM information_schema.tables "
                                 "WHERE table_schema = 'marts'").fetchall()
    assert kinds == [("VIEW",)]


def test_privacy_and_shape_rules_hold_on_the_spark_warehouse(cluster_run):
    con = Session(duckdb.connect(str(cluster_run["warehouse"]), read_only=True))
    try:
        assert shape_findings(con) == [] and privacy_findings(con) == []
    finally:
        con.close()


def test_audience_exports_stay_owner_only(cluster_run):
    exports = list((cluster_run["root"] / "run" / "exports").glob("*.csv"))
    assert exports and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in exports)


# --- after a run: another Spark, on the run's metastore ------------------------------------------
@pytest.mark.parametrize("run", ["connect", "cluster"])
def test_an_independent_spark_reads_the_marts_by_name_from_the_runs_metastore(remote_runs, run, demo_pipeline):
    """After the run (and the Connect server) stopped, a new Spark driver in another process opens the
    same metastore and reads marts.recommendations and marts.audiences by name: the catalog, not the
    run, holds them, each at a version folder of the run's lakehouse; the private schemas are in the
    catalog and the lakehouse too."""
    spark_run = remote_runs[run]
    out = spark_run["root"] / "read"
    out.mkdir()
    done = subprocess.run([sys.executable, "-m", "medmkt_assets_tests.graph_run", "--root", str(out),
                           "--metastore", str(spark_run["metastore"]), "--read", "marts.recommendations",
                           "marts.audiences"], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).parent.parent, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
    assert done.returncode == 0, done.stderr[-3000:]
    catalog = json.loads((out / "catalog.json").read_text())
    with duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True) as con:
        for table, key in (("recommendations", ["patient_key", "rank", "product_id"]),
                           ("audiences", ["campaign_id", "patient_key", "audience_rank", "audience_group"])):
            assert catalog["locations"][f"marts.{table}"].startswith(
                f"file:{spark_run['lakehouse'] / 'marts' / table}/v")
            by_name = pd.read_parquet(out / f"marts.{table}.parquet")
            on_duckdb = con.execute(f"SELECT * FROM marts.{table}").fetchdf()
            assert list(by_name.columns) == list(on_duckdb.columns) and len(by_name) == len(on_duckdb) > 0
            assert (sorted(map(tuple, by_name[key].astype(str).values))
                    == sorted(map(tuple, on_duckdb[key].astype(str).values)))
    for schema in ("raw", "restricted"):
        assert catalog["schemas"].get(schema) and any((spark_run["lakehouse"] / schema).iterdir()), schema


# --- make spark-cluster / make spark-cluster-stop ------------------------------------------------
def test_make_spark_cluster_starts_a_cluster_it_names_and_stop_ends_it(tmp_path):
    """What the make targets run (`python -m medmkt_assets.spark_cluster start|stop`), here with its
    data/spark-cluster under tmp_path."""
    require_spark()

    def cli(action: str, *more: str) -> str:
        done = subprocess.run([sys.executable, "-m", "medmkt_assets.spark_cluster", action, *more], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    printed = cli("start", "--workers", "1", "--worker-memory", "1g")
    state = json.loads((tmp_path / "data" / "spark-cluster" / "cluster.json").read_text())
    try:
        assert f"Spark master {state['master']}" in printed and f"web UI: {state['ui']}" in printed
        assert state["master"].startswith("spark://127.0.0.1:") and state["ui"].startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{state['ui']}/json/", timeout=10) as response:
            assert [w["state"] for w in json.load(response)["workers"]] == ["ALIVE"]
    finally:
        assert cli("stop").strip() == "stopped"
    assert not (tmp_path / "data" / "spark-cluster" / "cluster.json").exists()
    for group in state["process_groups"]:
        with pytest.raises(ProcessLookupError):
            os.killpg(group, 0)
