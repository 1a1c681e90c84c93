"""DuckDB SQL on Spark: the translation (no Spark needed) and, on a local Spark, that both
engines give the same answer for every engine-specific variant and every kind of statement."""
from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from medmkt_assets.lib.engine.spark import dialect
from medmkt_assets.lib.engine.sql import stable_hash_sql
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.privacy.pseudonym import hmac_sql, pseudonymize
from medmkt_assets.lib.privacy.sensitive import load_policy


def spark_text(sql: str, params=None, variables=None) -> str:
    return dialect.to_spark(dialect.bind(dialect.parse(sql), params, variables or {}))


def test_parameters_and_variables_become_literals():
    text = spark_text("SELECT * FROM t WHERE a = ? AND b IN (SELECT ?) AND c = getvariable('m')",
                      ["x'y", dt.date(2024, 1, 2)], {"m": 3})
    assert "'x\\'y'" in text and "CAST('2024-01-02' AS DATE)" in text and "c = 3" in text
    assert spark_text("SELECT $n AS n", {"n": None}) == "SELECT NULL AS n"
    with pytest.raises(ValueError, match=r"\$missing"):
        spark_text("SELECT $missing")


def test_engine_specific_variants_are_chosen():
    assert "TRY_TO_TIMESTAMP(s, 'yyyy-MM-dd HH:mm:ss')" in spark_text("SELECT try_strptime(s, '%Y-%m-%d %H:%M:%S')")
    assert "CONV(" in spark_text(f"SELECT {stable_hash_sql('k')}")
    assert "DATEDIFF(CAST(b AS DATE), CAST(a AS DATE))" in spark_text("SELECT date_diff('day', a, b)")
    assert "ARRAY_SORT(COLLECT_SET(c))" in spark_text("SELECT list(DISTINCT c ORDER BY c) FROM t GROUP BY g")


def test_table_references_are_renamed_keeping_what_the_query_calls_them():
    tree = dialect.rename_tables(dialect.parse("SELECT orders.x, p.y FROM staging.orders JOIN staging.p p USING (k)"),
                                   lambda t: f"{t.db}__{t.name}" if t.db else None)
    assert tree.sql(dialect="spark") == ("SELECT orders.x, p.y FROM `staging__orders` AS orders "
                                         "JOIN `staging__p` AS p USING (k)")


# --- both engines ---------------------------------------------------------------------------
SENSITIVE = load_policy()
PEOPLE = pd.DataFrame({
    "k": ["a", "b", "c", "d", "e"],
    "g": ["x", "x", "y", "y", None],
    "amount": [1.5, 2.5, 10.0, None, 3.0],
    "seen_at": pd.to_datetime(["2024-01-01 23:30", "2024-01-02 00:10", "2024-03-01 12:00", "2023-12-31 08:00",
                          "2024-02-29 00:00"]),
    "text": ["2024-01-31", "31/01/2024", "not a date", None, "2024-02-29"],
})
AGREEING_QUERIES = {
    "day differences count midnights": "SELECT k, date_diff('day', seen_at, TIMESTAMP '2024-03-02 00:05') AS d FROM t ORDER BY k",
    "text to time, bad text to NULL": "SELECT k, try_strptime(text, '%Y-%m-%d') AS ts FROM t ORDER BY k",
    "stable hash": f"SELECT k, {stable_hash_sql('k', 'g')} % 1000 AS bucket FROM t ORDER BY k",
    "pseudonym": f"SELECT k, {hmac_sql('k', 'secret-key')} AS patient_key FROM t ORDER BY k",
    "ordered lists": "SELECT g, list(DISTINCT k ORDER BY k) AS ks, string_agg(k, '|' ORDER BY amount DESC) AS by_amount "
                     "FROM t WHERE amount IS NOT NULL GROUP BY g ORDER BY g",
    "filtered aggregates and GROUP BY ALL": "SELECT g, count(*) FILTER (WHERE amount > 2) AS n, arg_max(k, amount) AS top "
                                             "FROM t GROUP BY ALL ORDER BY g NULLS LAST",
    "union by name": "SELECT k, 1 AS one FROM t WHERE g = 'x' UNION ALL BY NAME SELECT 2 AS two, k FROM t WHERE g = 'y' "
                     "ORDER BY k",
    "anti join and QUALIFY": "SELECT k, g FROM t ANTI JOIN (SELECT 'a' AS k) USING (k) "
                             "QUALIFY row_number() OVER (PARTITION BY g ORDER BY k DESC) = 1 ORDER BY k",
    "the sensitive-data policy's matching": (
        f"SELECT k, {SENSITIVE.condition_family('text', 'g')} AS by_code, "
        f"{SENSITIVE.product_family('k', 'g', 'g', 'NULL')} AS by_name FROM (SELECT k, CASE k WHEN 'a' THEN 'F11.20' "
        "WHEN 'b' THEN '72892002' ELSE text END AS text, CASE k WHEN 'c' THEN 'Sertraline 50 mg' WHEN 'd' THEN '孕检' "
        "ELSE g END AS g FROM t) ORDER BY k"),
    "division by zero is IEEE": "SELECT k, amount / 0 AS q, -amount / 0 AS r, 0.0 / 0 AS nan, amount / nullif(0, 0) AS s "
                                "FROM t WHERE k = 'a'",
}


@pytest.fixture
def engines(spark, tmp_path):
    from medmkt_assets.lib.engine.spark.session import SparkWarehouseSession
    from medmkt_assets_tests.conftest import isolated_lakehouse

    duck = Session(duckdb.connect())
    on_spark = SparkWarehouseSession(spark, isolated_lakehouse(tmp_path / "lake"), tmp_path / "w.duckdb")
    for session in (duck, on_spark):
        session.execute("CREATE SCHEMA IF NOT EXISTS staging")
        session.write_frame(PEOPLE, "staging.t")
    yield duck, on_spark
    duck.close()
    on_spark.close()


def _plain(value):
    """Lists as lists, NaN as a comparable marker."""
    if hasattr(value, "__len__") and not isinstance(value, str):
        return list(value)
    return "NaN" if isinstance(value, float) and value != value else value


def _rows(session, sql: str) -> list[tuple]:
    return [tuple(_plain(v) for v in row) for row in session.execute(sql.replace("FROM t", "FROM staging.t")).fetchall()]


@pytest.mark.parametrize("name", AGREEING_QUERIES)
def test_both_engines_give_the_same_rows(engines, name):
    duck, on_spark = engines
    assert _rows(on_spark, AGREEING_QUERIES[name]) == _rows(duck, AGREEING_QUERIES[name])


def test_the_pseudonym_computed_in_spark_is_the_reference_hmac(engines):
    _, on_spark = engines
    rows = _rows(on_spark, f"SELECT k, {hmac_sql('k', 'secret-key')} FROM t ORDER BY k")
    assert rows == [(k, pseudonymize(k, "secret-key")) for k in sorted(PEOPLE.k)]


def test_statements_parquet_cannot_run_in_place_give_duckdbs_result(engines):
    """INSERT, DELETE, UPDATE .. FROM, ALTER TABLE .. ADD COLUMN, temp tables, CREATE .. IF NOT EXISTS."""
    script = [
        "CREATE TABLE IF NOT EXISTS staging.log (name VARCHAR, n BIGINT)",
        "INSERT INTO staging.log SELECT k, 1 FROM staging.t WHERE g = 'x'",
        "INSERT INTO staging.log VALUES ('z', 9)",
        "DELETE FROM staging.log WHERE n = 9",
        "ALTER TABLE staging.log ADD COLUMN IF NOT EXISTS note VARCHAR",
        "CREATE OR REPLACE TEMP TABLE fix AS SELECT 'a' AS name, 'first' AS note",
        "UPDATE staging.log l SET note = f.note FROM fix f WHERE l.name = f.name",
        "UPDATE staging.log SET n = n + 10 WHERE name = 'b'",
        "CREATE TABLE IF NOT EXISTS staging.log (other VARCHAR)",
    ]
    results = []
    for session in engines:
        for statement in script:
            session.execute(statement)
        results.append(_rows(session, "SELECT * FROM staging.log ORDER BY name"))
    assert results[0] == results[1] == [("a", 1, "first"), ("b", 11, None)]


def test_a_failed_transaction_leaves_the_previous_version_readable(engines, tmp_path):
    _, on_spark = engines
    with pytest.raises(Exception, match="boom"):
        with on_spark.transaction():
            on_spark.execute("CREATE OR REPLACE TABLE staging.t AS SELECT 1 AS only_column")
            assert on_spark.describe("staging.t") == ["only_column"]  # the transaction sees its own write
            raise RuntimeError("boom")
    assert on_spark.describe("staging.t") == list(PEOPLE.columns)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as reader:  # the published view
        assert reader.execute("SELECT count(*) FROM staging.t").fetchall() == [(5,)]


def test_source_files_are_read_by_duckdb_and_land_in_load_order(engines, tmp_path):
    """read_csv runs in the embedded DuckDB; the raw table keeps DuckDB's rowid as its load order."""
    _, on_spark = engines
    csv = tmp_path / "in.csv"
    csv.write_text("id,v\n3,c\n1,a\n2,b\n", encoding="utf-8")
    on_spark.execute(f"CREATE TEMP TABLE landing AS SELECT * FROM read_csv('{csv}', all_varchar=true)")
    on_spark.execute("CREATE OR REPLACE TABLE raw.r AS SELECT id, v FROM landing")
    on_spark.execute("INSERT INTO raw.r BY NAME SELECT v, id FROM landing WHERE id = '1'")
    assert on_spark.describe("raw.r") == ["id", "v"]
    assert _rows(on_spark, "SELECT r.rowid, id FROM raw.r r ORDER BY r.rowid") == [
        (0, "3"), (1, "1"), (2, "2"), (3, "1")]


def test_a_large_source_lands_a_chunk_at_a_time_as_one_version_in_load_order(engines, tmp_path, monkeypatch):
    """Source rows reach Spark LAND_ROWS at a time (the driver holds a chunk, not the file): the
    table is one version with every row in DuckDB's load order, appends continue it, and a failed
    chunk leaves the previous version as it was."""
    from medmkt_assets.lib.engine.spark import beside

    monkeypatch.setattr(beside, "LAND_ROWS", 1_000)  # DuckDB hands over batches of 122,880 rows at most
    duck, on_spark = engines
    csv = tmp_path / "in.csv"
    csv.write_text("id,v\n" + "".join(f"{i},{i % 7}\n" for i in range(2_500, 0, -1)), encoding="utf-8")
    for session in (duck, on_spark):
        session.execute(f"CREATE TEMP TABLE landing AS SELECT * FROM read_csv('{csv}', all_varchar=true)")
        session.execute("CREATE SCHEMA IF NOT EXISTS raw")
        session.execute("CREATE OR REPLACE TABLE raw.r AS SELECT id, v FROM landing")
    versions = lambda: {p.parent for p in (tmp_path / "lake" / "raw" / "r").glob("*/*.parquet")}  # noqa: E731
    assert len(versions()) == 1
    on_spark.execute("INSERT INTO raw.r BY NAME SELECT v, id FROM landing WHERE CAST(id AS INTEGER) <= 1200")
    duck.execute("INSERT INTO raw.r BY NAME SELECT v, id FROM landing WHERE CAST(id AS INTEGER) <= 1200")
    query = "SELECT r.rowid, id, v FROM raw.r r ORDER BY r.rowid"
    assert _rows(on_spark, query) == _rows(duck, query) and len(_rows(on_spark, query)) == 3_700
    before = _rows(on_spark, query)
    monkeypatch.setattr(on_spark._writes, "_spark", _FailsOnSecondChunk(on_spark._writes._spark))
    with pytest.raises(RuntimeError, match="second chunk"):
        on_spark.execute("CREATE OR REPLACE TABLE raw.r AS SELECT id, v FROM landing")
    assert _rows(on_spark, query) == before


class _FailsOnSecondChunk:
    """A Spark session whose second createDataFrame fails, as a lost executor would."""

    def __init__(self, spark):
        self._spark, self._calls = spark, 0

    def createDataFrame(self, *args, **kwargs):
        self._calls += 1
        if self._calls == 2:
            raise RuntimeError("the second chunk failed")
        return self._spark.createDataFrame(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._spark, name)


def test_a_landing_table_declared_by_columns_is_filled_by_duckdb_and_read_by_spark(engines, tmp_path):
    """The FHIR adapter's pattern: a typed temp table, rows inserted from a file, then a raw table from it."""
    _, on_spark = engines
    lines = tmp_path / "r.ndjson"
    lines.write_text('{"id": "a"}\n{"id": "b"}\n', encoding="utf-8")
    on_spark.execute("CREATE OR REPLACE TEMP TABLE landing (n INTEGER, res JSON)")
    on_spark.execute(f"INSERT INTO landing SELECT row_number() OVER (), json FROM read_json_objects('{lines}')")
    on_spark.execute("CREATE OR REPLACE TABLE raw.r AS SELECT n, res ->> '$.id' AS id FROM landing")
    assert _rows(on_spark, "SELECT n, id FROM raw.r ORDER BY n") == [(1, "a"), (2, "b")]


def test_an_empty_frame_keeps_its_column_types(engines):
    _, on_spark = engines
    on_spark.write_frame(pd.DataFrame({"k": pd.Series(dtype=object), "x": pd.Series(dtype=float)}), "marts.e")
    assert on_spark.execute("DESCRIBE marts.e").fetchall()[:2] == [
        ("k", "VARCHAR", "YES", None, None, None), ("x", "DOUBLE", "YES", None, None, None)]


def test_a_frame_goes_into_an_attached_duckdb_file_as_the_insight_snapshot_does(engines, tmp_path):
    _, on_spark = engines
    snapshot = tmp_path / "snap.duckdb"
    on_spark.execute(f"ATTACH '{snapshot}' AS snap")
    on_spark.execute("CREATE TABLE snap.people AS SELECT k, g FROM staging.t")
    on_spark.write_frame(pd.DataFrame({"n": [1, 2]}), "snap.numbers", query="SELECT n * 10 AS n FROM frame")
    on_spark.write_frame(pd.DataFrame({"k": ["a", "b"]}), "snap.joined",  # a frame joined to a lakehouse table
                         query="SELECT f.k, t.g FROM frame f JOIN staging.t t USING (k) ORDER BY f.k")
    on_spark.execute("DETACH snap")
    with duckdb.connect(str(snapshot), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM people").fetchall() == [(5,)]
        assert con.execute("SELECT sum(n) FROM numbers").fetchall() == [(30,)]
        assert con.execute("SELECT * FROM joined").fetchall() == [("a", "x"), ("b", "x")]
