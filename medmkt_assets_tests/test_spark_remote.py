"""The whole graph on Spark as a team runs it beyond one machine: through the Spark Connect server
PySpark ships, and on a standalone cluster whose executors are other JVMs with their own Python
workers. Each runs the 3,000-patient demo world and then a sensor batch (graph_run.py, in a
process of its own), and must give what DuckDB gives for the same world and batch
(`duckdb_batch_reference`): every staging, features, quarantine, restricted and marts table,
under the parity rules of test_spark_engine.py. Servers bind to 127.0.0.1 on free ports and are
stopped in the fixtures' finalizers, whatever the tests do.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from medmkt_assets.bench.compare import differences
from medmkt_assets.spark_cluster import ConnectServer, StandaloneCluster
from medmkt_assets_tests.conftest import TEST_KEY, require_spark

RTOL = 1e-9
pytestmark = [pytest.mark.slow, pytest.mark.spark]


def run_graph(source: Path, root: Path, *spark_args: str) -> dict:
    """graph_run.py in a process of its own; its result.json, with its output on failure."""
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MEDMKT_TEST_PSEUDONYM_KEY": TEST_KEY, "PYSPARK_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1"}
    log = root / "graph_run.log"
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "medmkt_assets_tests.graph_run", "--source", str(source),
                               "--root", str(root), *spark_args], env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=2400, cwd=Path(__file__).parent.parent)
    result = root / "result.json"
    assert done.returncode == 0 and result.is_file(), log.read_text()[-5000:]
    return {**json.loads(result.read_text()), "warehouse": root / "warehouse.duckdb", "log": log}


# The batch's rows name their accepted file, `<drop zone>/_accepted/orders/<UTC time>_<hash>_day1.csv`:
# each run has its own drop zone and accepted the file at its own time, so there the runs differ, and
# only there: compared by `<hash>_day1.csv` and row.
BATCH_LINEAGE = ("staging.orders", "quarantine.orders")
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
        assert con.execute("SELECT count(*) FROM staging.orders WHERE order_id LIKE 'BATCH%'").fetchall() == [(30,)]
        assert con.execute("SELECT count(*) FROM quarantine.orders WHERE order_id LIKE 'BATCH%'").fetchall() == [(2,)]


# --- Spark Connect ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def connect_run(demo_pipeline, tmp_path_factory):
    require_spark()
    root = tmp_path_factory.mktemp("spark_connect")
    server = ConnectServer(root / "server", metastore=root / "metastore")
    try:
        server.start()
        run = run_graph(demo_pipeline["source"], root / "run", "--remote", server.url)
    finally:
        server.stop()  # the metastore is free again for the reader below
    return {**run, "root": root, "metastore": root / "metastore"}


def test_the_whole_graph_and_a_sensor_batch_through_spark_connect_equal_duckdb(connect_run, duckdb_batch_reference):
    assert_ran_and_matches_duckdb(connect_run, duckdb_batch_reference)


def test_an_independent_spark_reads_the_marts_by_name_from_the_servers_metastore(connect_run, demo_pipeline):
    """After the server stopped, a new Spark driver in another process opens the same metastore and
    reads marts.recommendations and marts.audiences by name: the catalog, not the run, holds them."""
    out = connect_run["root"] / "read"
    out.mkdir()
    done = subprocess.run([sys.executable, "-m", "medmkt_assets_tests.graph_run", "--root", str(out),
                           "--metastore", str(connect_run["metastore"]), "--read", "marts.recommendations",
                           "marts.audiences"], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).parent.parent, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
    assert done.returncode == 0, done.stderr[-3000:]
    with duckdb.connect(str(demo_pipeline["warehouse"]), read_only=True) as con:
        for table, key in (("recommendations", ["patient_key", "rank", "product_id"]),
                           ("audiences", ["campaign_id", "patient_key", "audience_rank", "audience_group"])):
            by_name = pd.read_parquet(out / f"marts.{table}.parquet")
            on_duckdb = con.execute(f"SELECT * FROM marts.{table}").fetchdf()
            assert list(by_name.columns) == list(on_duckdb.columns) and len(by_name) == len(on_duckdb) > 0
            assert (sorted(map(tuple, by_name[key].astype(str).values))
                    == sorted(map(tuple, on_duckdb[key].astype(str).values)))


# --- a standalone cluster ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster_run(demo_pipeline, tmp_path_factory):
    require_spark()
    root = tmp_path_factory.mktemp("spark_cluster")
    cluster = StandaloneCluster(root / "cluster", workers=2)
    try:
        cluster.start()
        run = run_graph(demo_pipeline["source"], root / "run", "--master", cluster.url)
        state = cluster.state()
    finally:
        cluster.stop()
    return {**run, "state": state}


def test_the_whole_graph_and_a_sensor_batch_on_a_standalone_cluster_equal_duckdb(cluster_run, duckdb_batch_reference):
    assert_ran_and_matches_duckdb(cluster_run, duckdb_batch_reference)


def test_the_cluster_run_used_both_workers(cluster_run):
    """The run was an application of the master, its executors the two workers' JVMs (one core each)."""
    workers = cluster_run["state"]["workers"]
    assert len(workers) == 2 and all(w["state"] == "ALIVE" and w["cores"] == 1 for w in workers)
    (app,) = [a for a in cluster_run["state"]["completedapps"] + cluster_run["state"]["activeapps"]
              if a["name"] == "medmkt"]
    assert app["cores"] == 2
