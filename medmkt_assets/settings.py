"""Runtime settings from the environment (contract section 1), read in one place."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from medmkt_assets.lib.sources.as_of import parse_override

DEFAULTS = {
    "MEDMKT_SOURCE_DIR": "data/raw",
    "MEDMKT_SOURCE_FORMAT": "canonical",
    "MEDMKT_SOURCE_MAPPING": "",
    "MEDMKT_INCOMING_DIR": "data/incoming",
    "MEDMKT_WAREHOUSE": "data/warehouse.duckdb",
    "MLFLOW_TRACKING_URI": "sqlite:///data/mlflow/mlflow.db",
    "MEDMKT_EXPORT_DIR": "data/exports",
    "MEDMKT_QUALITY_DIR": "data/quality",
    "MEDMKT_ALERT_DIR": "data/alerts",
    "MEDMKT_MLFLOW_UI": "",          # empty: http://127.0.0.1:<MLFLOW_PORT> (mlflow_ui_url)
    "DAGSTER_PORT": "3000",
    "MLFLOW_PORT": "5000",
    "MEDMKT_DUCKDB_MEMORY": "4GB",
    "MEDMKT_INSIGHT_SNAPSHOT": "data/insight/insight.duckdb",
    "MEDMKT_QUALITY_DOCS_URL": "http://127.0.0.1:8765",
    "MEDMKT_APP_PORT": "8501",
    "MEDMKT_ENGINE": "duckdb",
    "MEDMKT_SPARK_REMOTE": "",
    "MEDMKT_SPARK_MASTER": "local[*]",
    "MEDMKT_LAKEHOUSE": "data/lakehouse",
    "MEDMKT_SPARK_DRIVER_MEMORY": "4g",
    "MEDMKT_SPARK_PARTITIONS": "8",
    "MEDMKT_SPARK_MAX_RESULT_SIZE": "1g",
    "MEDMKT_SPARK_METASTORE": "",
    "MEDMKT_SPARK_DATABASE_PREFIX": "",
    "MEDMKT_SENSITIVE_POLICY": "",   # empty: the policy packaged with medmkt (lib/privacy/sensitive_data.yaml)
    "MEDMKT_AS_OF": "",
    "MEDMKT_MAX_QUARANTINE_SHARE": "0.5",
    # Where the UIs listen (`make dev`, `make team-up`): loopback unless told otherwise.
    "MEDMKT_BIND_HOST": "127.0.0.1",
    "MEDMKT_APP_ADDRESS": "127.0.0.1",
    # The insight app beyond loopback: Streamlit's OIDC login, from the environment (app/access.py).
    "MEDMKT_APP_OIDC_METADATA_URL": "",
    "MEDMKT_APP_OIDC_CLIENT_ID": "",
    "MEDMKT_APP_OIDC_CLIENT_SECRET": "",
    "MEDMKT_APP_OIDC_REDIRECT_URI": "",
    "MEDMKT_APP_COOKIE_SECRET": "",
    # The team deployment (team.py): PostgreSQL behind Dagster and the MLflow server.
    "MEDMKT_TEAM_DIR": "data/team",
    "MEDMKT_PG_HOST": "127.0.0.1",
    "MEDMKT_PG_PORT": "5433",
    "MEDMKT_PG_USER": "medmkt",
    "MEDMKT_PG_PASSWORD": "",          # empty: team-up generates one into MEDMKT_TEAM_DIR/secrets/
    "MEDMKT_PG_DAGSTER_DB": "medmkt_dagster",
    "MEDMKT_PG_MLFLOW_DB": "medmkt_mlflow",
    "MEDMKT_PG_DATA": "",              # empty: MEDMKT_TEAM_DIR/pg
    "MEDMKT_MLFLOW_ARTIFACTS": "",      # empty: MEDMKT_TEAM_DIR/mlartifacts
    "MEDMKT_CODE_SERVER": "127.0.0.1:4000",
}
ENGINES = ("duckdb", "spark")
SOURCE_FORMATS = ("canonical", "synthea", "fhir", "omop", "mapped")


def env(name: str) -> str:
    """The variable's value, or its documented default when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or DEFAULTS[name]


def mlflow_ui_url() -> str:
    """Where the MLflow UI answers, for links and for `make dev`: MEDMKT_MLFLOW_UI, else the local UI
    on MLFLOW_PORT. One setting feeds both, so a link never points at a port nothing serves."""
    return env("MEDMKT_MLFLOW_UI") or f"http://127.0.0.1:{int(env('MLFLOW_PORT'))}"


def dagster_ui_url() -> str:
    """Where `make dev` serves the Dagster UI (DAGSTER_PORT)."""
    return f"http://127.0.0.1:{int(env('DAGSTER_PORT'))}"


@dataclass(frozen=True)
class Settings:
    source_dir: Path
    source_format: str
    source_mapping: str
    incoming_dir: Path
    warehouse: Path
    mlflow_tracking_uri: str
    export_dir: Path
    mlflow_ui: str
    quality_dir: Path
    alert_dir: Path
    duckdb_memory: str
    insight_snapshot: Path     # the read-only copy of marts/ops the insight app reads
    quality_docs_url: str      # where `make dev` serves the Data Docs over HTTP
    app_port: int
    dagster_port: int
    engine: str                # duckdb (embedded) or spark
    spark_remote: str          # a Spark Connect URL (sc://host:15002); empty: spark_master
    spark_master: str
    lakehouse: str             # where Spark keeps the tables (a folder every worker sees)
    spark_driver_memory: str
    spark_partitions: int      # shuffle partitions (Spark's 200 suits a cluster, not a laptop)
    spark_max_result_size: str  # spark.driver.maxResultSize: the most one action may bring to the driver
    spark_metastore: str       # the catalog of a Spark this process starts: a Derby folder or thrift:// URI
    spark_database_prefix: str  # the catalog's databases are <prefix><schema>
    sensitive_policy: str = ""  # the sensitive-data policy file; empty: the packaged one
    # The export's "now" (ISO date or timestamp): dates after it are "in the future", ages and
    # recency are measured at it. Empty: the latest event in the data (lib.sources.as_of), so a
    # date-shifted de-identified export is judged by its own dates, not the wall clock.
    as_of: str = ""
    # A required table losing more than this share of its rows to quarantine fails the run.
    max_quarantine_share: float = 0.5

    @classmethod
    def from_env(cls) -> "Settings":
        fmt = env("MEDMKT_SOURCE_FORMAT").lower()
        if fmt not in SOURCE_FORMATS:
            raise ValueError(f"MEDMKT_SOURCE_FORMAT={fmt!r}: expected one of {', '.join(SOURCE_FORMATS)}")
        engine = env("MEDMKT_ENGINE").lower()
        if engine not in ENGINES:
            raise ValueError(f"MEDMKT_ENGINE={engine!r}: expected one of {', '.join(ENGINES)}")
        return cls(
            source_dir=Path(env("MEDMKT_SOURCE_DIR")),
            source_format=fmt,
            source_mapping=env("MEDMKT_SOURCE_MAPPING"),
            incoming_dir=Path(env("MEDMKT_INCOMING_DIR")),
            warehouse=Path(env("MEDMKT_WAREHOUSE")),
            mlflow_tracking_uri=env("MLFLOW_TRACKING_URI"),
            export_dir=Path(env("MEDMKT_EXPORT_DIR")),
            mlflow_ui=mlflow_ui_url(),
            quality_dir=Path(env("MEDMKT_QUALITY_DIR")),
            alert_dir=Path(env("MEDMKT_ALERT_DIR")),
            duckdb_memory=env("MEDMKT_DUCKDB_MEMORY"),
            insight_snapshot=Path(env("MEDMKT_INSIGHT_SNAPSHOT")),
            quality_docs_url=env("MEDMKT_QUALITY_DOCS_URL"),
            app_port=int(env("MEDMKT_APP_PORT")),
            dagster_port=int(env("DAGSTER_PORT")),
            engine=engine,
            spark_remote=env("MEDMKT_SPARK_REMOTE"),
            spark_master=env("MEDMKT_SPARK_MASTER"),
            lakehouse=env("MEDMKT_LAKEHOUSE"),
            spark_driver_memory=env("MEDMKT_SPARK_DRIVER_MEMORY"),
            spark_partitions=int(env("MEDMKT_SPARK_PARTITIONS")),
            spark_max_result_size=env("MEDMKT_SPARK_MAX_RESULT_SIZE"),
            spark_metastore=env("MEDMKT_SPARK_METASTORE"),
            spark_database_prefix=env("MEDMKT_SPARK_DATABASE_PREFIX"),
            sensitive_policy=env("MEDMKT_SENSITIVE_POLICY"),
            as_of=_as_of(env("MEDMKT_AS_OF")),
            max_quarantine_share=_share("MEDMKT_MAX_QUARANTINE_SHARE"),
        )


def _as_of(text: str) -> str:
    """MEDMKT_AS_OF as given, once it parses (a typo fails here, before any run, with the variable named)."""
    if text:
        parse_override(text)
    return text


def _share(name: str) -> float:
    """A share in [0, 1] from the environment; anything else is refused with the variable named."""
    try:
        value = float(env(name))
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise ValueError(f"{name}={env(name)!r}: expected a share between 0 and 1 (e.g. 0.5)")
    return value
