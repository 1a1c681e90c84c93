"""Models on the executors (issue 26): segments fitted on a bounded sample, every patient labelled
where the rows live, and on Spark no patient-sized table collected to the driver.

The tests' Spark has spark.driver.maxResultSize = conftest.SPARK_MAX_RESULT_SIZE; the worlds here
(200,000 patients made in Spark for the segments; 60,000 patients' order lines for the
recommender) are far bigger than that, so collecting them fails, while the fit samples, the item
statistics and the per-segment aggregates fit.
"""
from __future__ import annotations

import uuid

import duckdb
import numpy as np
import pandas as pd
import pytest

from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.models import segment_assignment as assign
from medmkt_assets.lib.models.segments import segment_patients

WORLD = 200_000
FIT = 2_000
INPUTS_SQL = ("SELECT f.* FROM features.patient_features f "
              "JOIN marts.patient_profiles p USING (patient_key) ORDER BY patient_key")
# three kinds of buyer (by id % 3) and one patient in ten without orders; ids hashed into keys
WORLD_COLUMNS = (
    "CAST(md5(CAST(id AS STRING)) AS STRING) AS patient_key",
    "CAST(CASE WHEN id % 10 = 0 THEN 0 ELSE 1 + (id % 3) * 5 END AS BIGINT) AS frequency",
    "CASE WHEN id % 10 = 0 THEN 0.0 ELSE 30.0 + (id % 3) * 300.0 + rand(1) * 20 END AS monetary",
    "CASE WHEN id % 3 = 0 THEN 0.8 ELSE 0.1 END + rand(2) * 0.05 AS cat__diabetes_care",
    "CASE WHEN id % 3 = 1 THEN 0.8 ELSE 0.1 END + rand(3) * 0.05 AS cat__skin_care",
    "CASE WHEN id % 3 = 2 THEN 0.9 ELSE 0.2 END + rand(4) * 0.05 AS ch__online",
    "CASE WHEN id % 3 = 2 THEN 0.1 ELSE 0.8 END + rand(5) * 0.05 AS ch__store",
    "CAST(0 AS DOUBLE) AS digital_events",
)


def _world(spark, tmp_path):
    """A SparkWarehouseSession whose features.patient_features and marts.patient_profiles hold WORLD
    patients, written by Spark from spark.range (no row passes through the driver)."""
    from medmkt_assets.lib.engine.spark.session import SparkWarehouseSession, result_size_conf
    from medmkt_assets_tests.conftest import SPARK_MAX_RESULT_SIZE, isolated_lakehouse

    # The broadcast threshold is a runtime setting of the shared session, which a session started
    # for another test (with Spark's 1g limit) may have raised: put back the one under this limit.
    threshold = "spark.sql.autoBroadcastJoinThreshold"
    spark.conf.set(threshold, result_size_conf(SPARK_MAX_RESULT_SIZE)[threshold])
    con = SparkWarehouseSession(spark, isolated_lakehouse(tmp_path / "lake"), tmp_path / "w.duckdb")
    people = spark.range(WORLD)
    con.register("_features", people.selectExpr(*WORLD_COLUMNS))
    con.register("_profiles", people.selectExpr(WORLD_COLUMNS[0], WORLD_COLUMNS[2], "CASE WHEN id % 7 = 0 THEN "
                                                "'unknown' ELSE concat(CAST(20 + (id % 5) * 10 AS STRING), '-29') "
                                                "END AS age_band", "CASE WHEN id % 3 = 2 THEN 'online' ELSE 'store' "
                                                "END AS preferred_channel"))
    # a few order lines: the label's category is the segment's most spend (segment_summary.SEGMENT_WORDS)
    con.register("_orders", spark.range(300).selectExpr(
        WORLD_COLUMNS[0], "CASE WHEN id % 3 = 0 THEN 'D' ELSE 'S' END AS product_id", "1 AS quantity",
        "CAST(10.0 AS DOUBLE) AS unit_price"))
    con.register("_products", spark.createDataFrame([("D", "diabetes_care"), ("S", "skin_care")],
                                                    "product_id string, category string"))
    for schema in ("features", "marts", "staging"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute("CREATE OR REPLACE TABLE features.patient_features AS SELECT * FROM _features")
    con.execute("CREATE OR REPLACE TABLE marts.patient_profiles AS SELECT * FROM _profiles")
    con.execute("CREATE OR REPLACE TABLE staging.orders AS SELECT * FROM _orders")
    con.execute("CREATE OR REPLACE TABLE staging.products AS SELECT * FROM _products")
    return con


def test_the_fit_sample_is_everyone_when_few_else_the_same_keys_on_both_engines(spark, tmp_path):
    assert assign.fit_inputs_sql(INPUTS_SQL, 3_000, 3_000) == INPUTS_SQL
    con = _world(spark, tmp_path)
    duck = Session(duckdb.connect())
    try:
        duck.execute("CREATE SCHEMA features; CREATE SCHEMA marts")
        duck.execute(f"CREATE TABLE features.patient_features AS SELECT md5(CAST(range AS VARCHAR)) AS patient_key, "
                     f"1 AS frequency FROM range({WORLD})")
        duck.execute("CREATE TABLE marts.patient_profiles AS SELECT patient_key, '20-29' AS age_band "
                     "FROM features.patient_features")
        sql = f"SELECT patient_key FROM ({assign.fit_inputs_sql(INPUTS_SQL, WORLD, FIT)}) AS s"
        on_spark, on_duckdb = con.execute(sql).fetchdf(), duck.execute(sql).fetchdf()
        assert len(on_spark) == FIT
        assert on_spark.patient_key.tolist() == on_duckdb.patient_key.tolist()
    finally:
        duck.close()
        con.close()


def test_segments_are_assigned_in_the_executors_and_no_patient_table_reaches_the_driver(spark, tmp_path):
    con = _world(spark, tmp_path)
    try:
        with pytest.raises(Exception, match="maxResultSize"):  # the proof's premise: a patient table is too big
            con.execute(INPUTS_SQL).fetchdf()
        patients, buyers = con.execute(assign.counts_sql(INPUTS_SQL)).fetchone()
        assert (patients, buyers) == (WORLD, WORLD - WORLD // 10)
        features = con.execute(assign.fit_inputs_sql(INPUTS_SQL, patients, FIT)).fetchdf()
        keys = features.pop("patient_key")
        result = segment_patients(features, (2, 5), sample_size=1_000, seed=42)
        with con.transaction():
            labels = assign.publish_segments(con, result, INPUTS_SQL, features, keys, whole=False,
                                             model_name="kmeans_k3")
        sizes = con.execute("SELECT segment_id, count(*) AS n, count(DISTINCT segment_label) AS labels "
                            "FROM marts.patient_segments GROUP BY segment_id ORDER BY segment_id").fetchdf()
        assert sizes.n.sum() == WORLD and (sizes.labels == 1).all()
        assert sizes.segment_id.tolist() == list(range(result.k + 1))  # k clusters and the no-orders segment
        assert labels.index.tolist() == sizes.segment_id.tolist() and labels.is_unique
        # the fitted patients keep the fit's own labels (the executors' predict is the fit's labelling)
        fitted = con.execute("SELECT patient_key, segment_id FROM marts.patient_segments WHERE patient_key IN "
                             f"(SELECT patient_key FROM ({assign.fit_inputs_sql(INPUTS_SQL, patients, FIT)}) AS s) "
                             "ORDER BY patient_key").fetchdf()
        assert fitted.patient_key.tolist() == keys.tolist()
        assert (fitted.segment_id.to_numpy() == result.labels).all()
        assert labels[result.k].startswith("no purchases yet")
    finally:
        con.close()


def test_publishing_on_duckdb_labels_every_patient_from_what_the_summary_shows():
    """publish_segments on DuckDB (in pandas): memberships written, then named from LABEL_WORDS_SQL,
    the same numbers segment_summary shows; every patient labelled, the fit's labels kept."""
    rng = np.random.default_rng(3)
    n = 900
    group = np.arange(n) % 3
    keys = pd.Series([f"p{i:04d}" for i in range(n)])
    features = pd.DataFrame({
        "frequency": np.where(np.arange(n) % 10 == 0, 0, 1 + group * 5),
        "monetary": np.where(np.arange(n) % 10 == 0, 0.0, 30 + group * 300 + rng.random(n) * 20),
        "cat__diabetes_care": np.where(group == 0, 0.8, 0.1) + rng.random(n) * 0.05,
        "ch__store": np.where(group == 2, 0.1, 0.8) + rng.random(n) * 0.05,
        "digital_events": 0.0,
    })
    result = segment_patients(features, (2, 5), sample_size=500)
    raw = duckdb.connect()
    con = Session(raw)
    for schema in ("features", "marts", "staging"):
        con.execute(f"CREATE SCHEMA {schema}")
    raw.register("f", features.assign(patient_key=keys))
    con.execute("CREATE TABLE features.patient_features AS SELECT * FROM f")
    raw.register("p", pd.DataFrame({"patient_key": keys, "monetary": features.monetary,
                                    "age_band": np.where(group == 1, "70-79", "30-39"),
                                    "preferred_channel": np.where(group == 2, "online", "store")}))
    con.execute("CREATE TABLE marts.patient_profiles AS SELECT * FROM p")
    con.execute("CREATE TABLE staging.products AS SELECT 'D' AS product_id, 'diabetes_care' AS category")
    con.execute("CREATE TABLE staging.orders AS SELECT patient_key, 'D' AS product_id, 1 AS quantity, "
                "10.0 AS unit_price FROM f WHERE frequency > 0")
    labels = assign.publish_segments(con, result, "SELECT * FROM features.patient_features ORDER BY patient_key",
                                     features, keys, whole=True, model_name="m")
    rows = con.execute("SELECT patient_key, segment_id, segment_label FROM marts.patient_segments "
                       "ORDER BY patient_key").fetchdf()
    assert len(rows) == n and (rows.segment_id.to_numpy() == result.labels).all()
    assert (rows.segment_label == labels.reindex(rows.segment_id).to_numpy()).all()
    assert labels[result.k].startswith("no purchases yet") and labels.is_unique


def test_the_fitted_model_labels_its_own_patients_as_the_fit_did():
    """Labelling everyone with the fitted pipeline (the executors' function) keeps the fit's labels
    for the patients it saw, whichever method won."""
    rng = np.random.default_rng(5)
    n = 1_200
    group = np.arange(n) % 4
    features = pd.DataFrame({
        "frequency": np.where(np.arange(n) % 9 == 0, 0, 1 + group * 3),
        "monetary": np.where(np.arange(n) % 9 == 0, 0.0, 20 + group * 150 + rng.random(n) * 40),
        "cat__a": np.where(group < 2, 0.7, 0.2) + rng.random(n) * 0.1,
        "ch__store": np.where(group % 2 == 0, 0.9, 0.1) + rng.random(n) * 0.1,
    })
    result = segment_patients(features, (2, 6), sample_size=600)
    batch = features.assign(patient_key=[f"k{i}" for i in range(n)], _age_band="30-39")
    assigned = pd.concat([assign.assign(result.model, part) for part in np.array_split(batch, 7)])
    assert (assigned.segment_id.to_numpy() == result.labels).all()
    assert assigned.patient_key.tolist() == batch.patient_key.tolist()


def test_the_campaign_models_learn_from_a_bounded_sample_of_contacts_the_same_on_both_engines(spark, tmp_path):
    """Past contacts beyond max_campaign_contacts are sampled by a hash of the patient key: on Spark
    the whole contact table is too big to collect, the sample is not, and DuckDB picks the same."""
    from medmkt_assets.lib.engine.spark.session import SparkWarehouseSession
    from medmkt_assets.lib.models.campaign_features import TRAINING_TABLE
    from medmkt_assets.lib.models.targets import training_contacts_sql
    from medmkt_assets_tests.conftest import isolated_lakehouse

    contacts, cap = 90_000, 2_000
    columns = ("CAST(md5(CAST({n} % 60000 AS {text})) AS {text}) AS patient_key",
               "concat('C', CAST({n} % 3 AS {text})) AS campaign_id", "CAST({n} % 2 AS INTEGER) AS converted",
               "CAST({n} % 17 AS DOUBLE) AS frequency", "CAST({n} % 101 AS DOUBLE) * 1.5 AS monetary")
    con = SparkWarehouseSession(spark, isolated_lakehouse(tmp_path / "lake"), tmp_path / "w.duckdb")
    duck = Session(duckdb.connect())
    try:
        con.register("_contacts", spark.range(contacts).selectExpr(*(c.format(n="id", text="STRING") for c in columns)))
        con.execute("CREATE SCHEMA IF NOT EXISTS features")
        con.execute(f"CREATE OR REPLACE TABLE {TRAINING_TABLE} AS SELECT * FROM _contacts")
        duck.execute("CREATE SCHEMA features")
        duck.execute(f"CREATE TABLE {TRAINING_TABLE} AS SELECT "
                     + ", ".join(c.format(n="range", text="VARCHAR") for c in columns)
                     + f" FROM range({contacts})")
        with pytest.raises(Exception, match="maxResultSize"):
            con.execute(training_contacts_sql(contacts, contacts)).fetchdf()
        on_spark = con.execute(training_contacts_sql(contacts, cap)).fetchdf()
        on_duckdb = duck.execute(training_contacts_sql(contacts, cap)).fetchdf()
        assert len(on_spark) == cap and on_spark.campaign_id.nunique() == 3
        assert on_spark[["campaign_id", "patient_key"]].equals(on_duckdb[["campaign_id", "patient_key"]])
        assert training_contacts_sql(cap, cap) == f"SELECT * FROM {TRAINING_TABLE} ORDER BY campaign_id, patient_key"
    finally:
        duck.close()
        con.close()


def test_an_audience_as_large_as_the_patients_is_exported_a_page_at_a_time_as_duckdb_exports_it(spark, tmp_path):
    """An audience export comes to the driver a page of ranks at a time, never collected whole:
    60,000 patients (their contacts over maxResultSize) make the same 0600 CSV on Spark and DuckDB."""
    from medmkt_assets.lib.engine.spark.session import SparkWarehouseSession
    from medmkt_assets.lib.privacy.audiences import export_audience, export_sql
    from medmkt_assets_tests.conftest import isolated_lakehouse

    audience = ("CAST(md5(CAST({n} AS {text})) AS {text}) AS patient_key", "'C1' AS campaign_id",
                "CAST({n} + 1 AS BIGINT) AS audience_rank",
                "CASE WHEN {n} % 5 = 0 THEN NULL ELSE concat('segment ', CAST({n} % 3 AS {text})) END AS segment_label",
                "CASE WHEN {n} % 7 = 0 THEN NULL ELSE 1.0 / ({n} + 3) END AS score",
                "CAST({n} % 11 AS DOUBLE) / 13 AS expected_uplift",
                "CASE WHEN {n} % 10 = 0 THEN 'holdout' ELSE 'contact' END AS audience_group")
    patients = ("CAST(md5(CAST({n} AS {text})) AS {text}) AS patient_key",
                "concat('+86 138 ', CAST(10000000 + {n} AS {text})) AS phone")
    con = SparkWarehouseSession(spark, isolated_lakehouse(tmp_path / "lake"), tmp_path / "w.duckdb")
    duck = Session(duckdb.connect())
    try:
        for table, columns in (("marts.audiences", audience), ("restricted.patients", patients)):
            con.register("_rows", spark.range(60_000).selectExpr(*(c.format(n="id", text="STRING") for c in columns)))
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _rows")
            duck.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
            duck.execute(f"CREATE TABLE {table} AS SELECT "
                         + ", ".join(c.format(n="range", text="VARCHAR") for c in columns) + " FROM range(60000)")
        with pytest.raises(Exception, match="maxResultSize"):
            con.execute(export_sql("C1", "sms")).fetchdf()
        written = [export_audience(session, "C1", "sms", tmp_path / name / "audience_C1.csv", page=20_000)
                   for session, name in ((con, "spark"), (duck, "duckdb"))]
        assert written == [54_000, 54_000]
        on_spark, on_duckdb = ((tmp_path / name / "audience_C1.csv").read_bytes() for name in ("spark", "duckdb"))
        assert on_spark == on_duckdb and on_spark.count(b"\n") == 54_001
        assert (tmp_path / "spark" / "audience_C1.csv").stat().st_mode & 0o777 == 0o600
        assert export_audience(con, "C9", None, tmp_path / "none.csv") == 0            # an empty audience:
        assert (tmp_path / "none.csv").read_text().startswith("subscriber_key,campaign_id")  # the header alone
    finally:
        duck.close()
        con.close()


RECOMMEND_WORLD = 60_000


def _recommend_world(n: int) -> dict[str, pd.DataFrame]:
    """The recommender's inputs for `n` patients (64-character keys, as pseudonyms are): four tastes
    over 30 products, 2 to 6 order lines each, one patient in ten without orders, one in seven
    without a segment; some products prescription-only or services."""
    rng = np.random.default_rng(7)
    keys = np.array([f"{i:064x}" for i in range(n)], dtype=object)
    buyers = np.flatnonzero(np.arange(n) % 10 != 0)
    lines = rng.integers(2, 7, len(buyers))
    who = np.repeat(buyers, lines)
    taste = who % 4
    product = taste * 6 + rng.integers(0, 9, len(who)) % 9
    orders = pd.DataFrame({
        "order_id": [f"o{w}-{j}" for w, j in zip(who, np.concatenate([np.arange(m) for m in lines]))],
        "line_no": 1, "patient_key": keys[who], "product_id": [f"P{p:02d}" for p in product],
        "quantity": rng.integers(0, 4, len(who)),
        "ordered_at": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 600, len(who)), unit="D")})
    products = pd.DataFrame({"product_id": [f"P{p:02d}" for p in range(30)],
                             "name": [f"product {p}" for p in range(30)],
                             "category": [f"c{p % 6}" for p in range(30)],
                             "kind": ["service" if p % 11 == 0 else "drug" for p in range(30)],
                             "rx_only": [p % 13 == 5 for p in range(30)],
                             "description": [f"taste {p // 6}" for p in range(30)]})
    profiles = pd.DataFrame({"patient_key": keys})
    segments = pd.DataFrame({"patient_key": keys, "segment_label": [None if i % 7 == 0 else f"s{i % 3}"
                                                                     for i in range(n)]})
    return {"staging.orders": orders, "staging.products": products, "marts.patient_profiles": profiles,
            "marts.patient_segments": segments}


def test_recommendations_are_served_in_the_executors_as_duckdb_serves_them(spark, tmp_path):
    """The recommendations asset on Spark: its candidates compared on a bounded sample (the same
    patients as DuckDB's), the champion fitted on item statistics counted in Spark and every patient
    served in the executors; the order lines are too big to collect, and the published lists equal
    DuckDB's, which fits and serves from every order line in pandas."""
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from medmkt_assets.defs.recommend.assets import recommendations
    from medmkt_assets.defs.resources import MlflowTracker, Warehouse
    from medmkt_assets.lib.engine.spark.lakehouse import Lakehouse
    from medmkt_assets.lib.engine.spark.session import SparkWarehouseSession
    from medmkt_assets_tests.conftest import SPARK_MASTER, SPARK_MAX_RESULT_SIZE

    tables = _recommend_world(RECOMMEND_WORLD)
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    lake = tmp_path / "spark" / "lakehouse"
    con = SparkWarehouseSession(spark, Lakehouse(lake, prefix), tmp_path / "spark" / "warehouse.duckdb")
    duck = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        for table, frame in tables.items():
            con.register("_world", spark.createDataFrame(frame))
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _world")
            duck.register("_world", frame)
            duck.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
            duck.execute(f"CREATE TABLE {table} AS SELECT * FROM _world")
            duck.unregister("_world")
        with pytest.raises(Exception, match="maxResultSize"):  # the premise: the order lines are too big
            con.execute("SELECT * FROM staging.orders").fetchdf()
    finally:
        con.close()
        duck.close()
    config = {"ops": {"marts__recommendations": {"config": {"selection_users": 3_000, "eval_users": 1_000}}}}
    for engine, folder in (("duckdb", tmp_path), ("spark", tmp_path / "spark")):
        warehouse = Warehouse(engine=DuckDBResource(database=str(folder / "warehouse.duckdb")), compute=engine,
                              lakehouse=str(lake), spark_master=SPARK_MASTER, spark_partitions=4,
                              spark_driver_memory="2g", spark_max_result_size=SPARK_MAX_RESULT_SIZE,
                              spark_database_prefix=prefix)
        result = dg.materialize([recommendations], run_config=config, resources={
            "warehouse": warehouse, "tracker": MlflowTracker(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")})
        assert result.success
    read = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    for table, columns in (("recommendations", "patient_key, rank, product_id, round(score, 9), model"),
                           ("recommendation_evaluation", "model, split, round(ndcg_at_10, 12), round(recall_at_10, 12)")):
        on_spark = f"read_parquet('{lake}/marts/{table}/*/*.parquet')"  # the table's one version
        differ = read.execute(f"SELECT (SELECT count(*) FROM (SELECT {columns} FROM marts.{table} EXCEPT ALL "
                              f"SELECT {columns} FROM {on_spark})) + (SELECT count(*) FROM (SELECT {columns} "
                              f"FROM {on_spark} EXCEPT ALL SELECT {columns} FROM marts.{table}))").fetchone()[0]
        assert differ == 0, table
    patients = read.execute("SELECT count(DISTINCT patient_key) FROM marts.recommendations").fetchone()[0]
    read.close()
    assert patients == RECOMMEND_WORLD
