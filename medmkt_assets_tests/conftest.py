"""Shared fixtures: a tiny hand-written canonical source whose answers are known."""
from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from medmkt_assets.defs.resources import (
    AlertFolder,
    ExportDir,
    InsightSnapshot,
    MlflowTracker,
    PseudonymKey,
    QualityDocs,
    SensitiveData,
    SourceFiles,
    Warehouse,
)
from medmkt_assets.settings import DEFAULTS

TEST_KEY = "test-key-0123456789"

TINY_SOURCE = {
    "patients": """\
        patient_id,full_name,gender,birth_date,phone,email,address,city,region,postal_code,insurance_type,registered_at
        P1,王芳,女,1950-03-04,+86 13800000001,a@example.com,1 Road,Shenzhen,Guangdong,518000,public,2023-01-01
          P2 ,Li Wei,male,1990-06-01,+86 13800000002,b@example.com,2 Road,Guangzhou,Guangdong,510000,commercial,2023-02-01
        P3,Zhang San,x,1985-13-40,+86 13800000003,c@example.com,3 Road,Beijing,Beijing,100000,self_pay,2023-03-01
        P4,Chen Jing,F,2001-01-01,+86 13800000004,d@example.com,4 Road,Beijing,Beijing,100001,public,2023-04-01
        P1,Duplicate,F,1950-03-04,,,,Shenzhen,Guangdong,518000,public,2023-01-01
        ,No Id,M,1970-01-01,,,,Beijing,Beijing,100000,public,2023-01-01
        P5,New Patient,U,1930-01-01,,,,Beijing,Beijing,100002,public,2024-01-01
        """,
    "products": """\
        product_id,name,category,kind,unit_price,rx_only,description
        A,Metformin,Diabetes Care,drug,10.0,true,diabetes tablets
        B,Glucose meter,diabetes_care,device,50,false,blood glucose meter
        C,Checkup,checkup,service,100,no,annual checkup
        D,Bad price,checkup,service,-5,no,negative price
        """,
    "orders": """\
        order_id,line_no,patient_id,product_id,ordered_at,quantity,unit_price,channel,facility_id
        O1,1,P1,A,2024-01-10T10:00:00,2,9.5,Store,F1
        O1,2,P1,B,2024-01-10T10:00:00,1,50,store,F1
        O2,1,P1,A,2024-03-01,1,10,web,F1
        O3,1,P2 ,C,2024-02-01,1,100,app,F2
        O3,1,P2,C,2024-02-01,1,100,app,F2
        O4,1,P9,A,2024-02-01,1,10,app,F2
        O5,1,P4,A,2024-02-01,-1,10,app,F2
        O6,1,P4,   ,2024-02-01,1,10,app,F2
        O7,1,P4,C,not-a-date,1,10,app,F2
        O8,1,P4,D,2024-02-01,1,10,app,F2
        O9,1,P4,C,2024-04-01,1,,clinic,F2
        """,
}


def write_tiny_source(folder: Path, tables: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for table, body in (tables or TINY_SOURCE).items():
        (folder / f"{table}.csv").write_text(textwrap.dedent(body), encoding="utf-8")
    return folder


def make_resources(source_dir: Path, warehouse: Path, mlflow_uri: str, engine: str = "duckdb",
                   policy_file: str = "", **spark: str) -> dict:
    """Every resource, in folders beside `warehouse`; `engine="spark"` runs the SQL on a local
    Spark with the lakehouse beside the warehouse (`spark`: more Warehouse settings, e.g.
    spark_remote or spark_master); `policy_file`: a sensitive-data policy other than the packaged one."""
    return {
        "sources": SourceFiles(source_dir=str(source_dir), incoming_dir=str(warehouse.parent / "incoming")),
        # the production buffer cap: a reader that needs more than the warehouse allows fails here too
        "warehouse": Warehouse(engine=DuckDBResource(
            database=str(warehouse), connection_config={"memory_limit": DEFAULTS["MEDMKT_DUCKDB_MEMORY"]}),
            compute=engine, **{"lakehouse": str(warehouse.parent / "lakehouse"), "spark_master": SPARK_MASTER,
                               "spark_partitions": 4, "spark_driver_memory": "2g",
                               "spark_max_result_size": SPARK_MAX_RESULT_SIZE, **spark}),
        "pseudonym": PseudonymKey(env_var="MEDMKT_TEST_PSEUDONYM_KEY"),
        "sensitive": SensitiveData(policy_file=policy_file),
        "tracker": MlflowTracker(tracking_uri=mlflow_uri),
        "exports": ExportDir(path=str(warehouse.parent / "exports")),
        "quality": QualityDocs(path=str(warehouse.parent / "quality")),
        "alerts": AlertFolder(path=str(warehouse.parent / "alerts")),
        "insight": InsightSnapshot(path=str(warehouse.parent / "insight" / "insight.duckdb")),
    }


def session_from_script(script: str):
    """An in-memory DuckDB session that has run `script` (statements separated by ';')."""
    import duckdb

    from medmkt_assets.lib.engine.warehouse import Session

    session = Session(duckdb.connect())
    for statement in script.split(";"):
        if statement.strip():
            session.execute(statement)
    return session


def row_accounting(con, table: str) -> tuple[int, int]:
    """(raw rows, staged + quarantined + withheld-as-sensitive rows) of a source table: equal when no
    row is lost (con: a DuckDB connection to a warehouse)."""
    def count(name: str) -> int:
        schema, rel = name.split(".")
        exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND "
                             "table_name = ?", [schema, rel]).fetchone()[0]
        return con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] if exists else 0
    return count(f"raw.{table}"), sum(count(f"{s}.{table}") for s in ("staging", "quarantine")) + count(
        f"restricted.sensitive_{table}")


SPARK_MASTER = "local[2]"
# spark.driver.maxResultSize of the tests' Spark: a patient-sized table of test_models_on_executors'
# world (200,000 patients) is far bigger, so collecting one fails; what the whole graph brings to the
# driver on the 3,000-patient demo world (training samples, per-segment and per-item aggregates) fits.
SPARK_MAX_RESULT_SIZE = "4m"


def require(missing: str, flag: str) -> None:
    """Skip, saying why, when `missing` names what is missing, except where the environment variable
    `flag` is 1 (CI): there it fails the test."""
    if missing:
        if os.environ.get(flag) == "1":
            pytest.fail(f"{flag}=1 but {missing}")
        pytest.skip(missing)


def require_spark(remote: str = "") -> None:
    """Skip (saying why) without PySpark or Java, except where MEDMKT_REQUIRE_SPARK=1 (CI)."""
    from medmkt_assets.lib.engine.spark.session import spark_missing

    require(spark_missing(remote), "MEDMKT_REQUIRE_SPARK")


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """The local Spark session of tests marked `spark`, its catalog an embedded Derby metastore in a
    temporary folder (see require_spark)."""
    from medmkt_assets.lib.engine.spark.session import spark_session

    require_spark()
    metastore = tmp_path_factory.mktemp("metastore")
    return spark_session(SPARK_MASTER, partitions=4, driver_memory="2g", metastore=str(metastore),
                         max_result_size=SPARK_MAX_RESULT_SIZE)


def isolated_lakehouse(folder: Path):
    """A lakehouse of its own for one test: the Spark fixture's catalog is shared, so its databases
    get a prefix no other test uses."""
    from medmkt_assets.lib.engine.spark.lakehouse import Lakehouse

    return Lakehouse(folder, prefix=f"t{uuid.uuid4().hex[:8]}_")


@pytest.fixture
def pseudonym_env(monkeypatch):
    monkeypatch.setenv("MEDMKT_TEST_PSEUDONYM_KEY", TEST_KEY)
    return TEST_KEY


@pytest.fixture
def workdir(tmp_path) -> dict:
    return {
        "source": tmp_path / "source",
        "warehouse": tmp_path / "warehouse.duckdb",
        "mlflow": f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}",
    }


def materialize_all(definitions: dg.Definitions, resources: dict,
                    selection: str | dg.AssetSelection = "*", checks: bool = True) -> dg.ExecuteInProcessResult:
    """Materialize the selected assets (and, unless `checks` is off, their quality checks: a tiny
    staging run that is not about the gates skips their Great Expectations work) in process."""
    assets = list(definitions.assets or [])
    checks = list(definitions.asset_checks or []) if checks else []
    return dg.materialize(
        assets=assets + checks, resources=resources, selection=selection, raise_on_error=False,
    )


# Fixtures that materialize the whole graph: a test asking for one is marked `slow`, so
# `pytest -m "not slow"` is the quick tier a developer runs while editing.
WHOLE_GRAPH_FIXTURES = frozenset({"demo_pipeline", "whole_graph", "layout_run"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if WHOLE_GRAPH_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.spark)


@pytest.fixture
def whole_graph():
    """Materialize every asset and check on the given resources, with the real Definitions."""
    from medmkt_assets.definitions import build_definitions
    from medmkt_assets.settings import Settings

    return lambda resources: materialize_all(build_definitions(Settings.from_env()), resources, "*")


DEMO_PATIENTS = 3000


@pytest.fixture(scope="session")
def demo_pipeline(tmp_path_factory) -> dict:
    """The whole graph materialized once on a small generated demo source (shared by tests)."""
    from medmkt_assets.definitions import build_definitions
    from medmkt_assets.demo_data import generate
    from medmkt_assets.settings import Settings

    root = tmp_path_factory.mktemp("demo_pipeline")
    source = root / "source"
    manifest = generate(source, patients=DEMO_PATIENTS, seed=7)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDMKT_TEST_PSEUDONYM_KEY", TEST_KEY)
        resources = make_resources(source, root / "warehouse.duckdb", f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
        result = materialize_all(build_definitions(Settings.from_env()), resources)
    return {"root": root, "source": source, "warehouse": root / "warehouse.duckdb", "manifest": manifest,
            "result": result, "truth": source / "_truth", "key": TEST_KEY}


# --- a sensor batch after a whole-graph run ---------------------------------------------------
def demo_batch(source: Path) -> str:
    """An orders batch for a demo world: 30 new order lines copied from its orders file, one of them
    twice (a duplicate key) and one with quantity 0 (quarantined)."""
    import csv
    import io

    with (source / "orders.csv").open(encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = [row for _, row in zip(range(30), reader)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    for n, row in enumerate(rows):
        writer.writerow({**row, "order_id": f"BATCH{n:04d}", "ordered_at": "2026-01-05 10:00:00"})
    writer.writerow({**rows[0], "order_id": "BATCH0000", "ordered_at": "2026-01-05 10:00:00"})
    writer.writerow({**rows[1], "order_id": "BATCH9999", "quantity": "0", "ordered_at": "2026-01-05 10:00:00"})
    return out.getvalue()


def run_sensor_batch(definitions: dg.Definitions, resources: dict, body: str) -> dg.ExecuteInProcessResult:
    """Drop an orders batch in the drop zone, let the incoming-files sensor see it stop growing and
    accept it, and run what it requests (as the Dagster daemon would), its checks included."""
    from medmkt_assets.defs.automation.sensors import incoming_files

    sources = resources["sources"]
    folder = sources.incoming_path / "orders"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "day1.csv").write_text(body, encoding="utf-8")
    cursor, requests = None, []
    for _ in range(2):  # the first look remembers the size, the second accepts the file
        context = dg.build_sensor_context(cursor=cursor, resources={"sources": sources, "alerts": resources["alerts"]})
        result = incoming_files(context)
        requests = [r for r in (result if isinstance(result, list) else []) if isinstance(r, dg.RunRequest)]
        cursor = context.cursor
    (request,) = requests
    return dg.materialize(list(definitions.assets) + list(definitions.asset_checks), resources=resources,
                          selection=request.asset_selection, tags=request.tags, raise_on_error=False)


@pytest.fixture(scope="session")
def duckdb_batch_reference(demo_pipeline, tmp_path_factory) -> dict:
    """`demo_pipeline`'s warehouse (a copy) after the sensor batch of `demo_batch`, on DuckDB: the
    reference the Spark Connect and standalone cluster runs are held to."""
    import shutil

    from medmkt_assets.definitions import build_definitions
    from medmkt_assets.settings import Settings

    root = tmp_path_factory.mktemp("duckdb_batch")
    shutil.copy(demo_pipeline["warehouse"], root / "warehouse.duckdb")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDMKT_TEST_PSEUDONYM_KEY", TEST_KEY)
        resources = make_resources(demo_pipeline["source"], root / "warehouse.duckdb",
                                   f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
        result = run_sensor_batch(build_definitions(Settings.from_env()), resources, demo_batch(demo_pipeline["source"]))
    assert result.success, [e.step_key for e in result.all_events if e.is_step_failure]
    return {"root": root, "warehouse": root / "warehouse.duckdb"}
