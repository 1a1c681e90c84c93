"""Typed resources: where the data comes from, the warehouse, pseudonym key and MLflow."""

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import dagster as dg
import mlflow
from dagster_duckdb import DuckDBResource
from pydantic import Field

from medmkt_assets.defs.warehouse import describe_step_tables
from medmkt_assets.lib.engine.warehouse import Session
from medmkt_assets.lib.privacy.pseudonym import DEVELOPMENT_KEY
from medmkt_assets.lib.privacy.sensitive import SensitivePolicy, load_policy
from medmkt_assets.lib.sources.files import SOURCE_SUFFIXES, find_source_file
from medmkt_assets.lib.sources.staging import ensure_schemas
from medmkt_assets.lib.tracking import mlflow_runs
from medmkt_assets.settings import env, mlflow_ui_url


class SourceFiles(dg.ConfigurableResource):
    """The folder (and format) holding the source tables of the data contract."""

    source_dir: str = Field(description="Folder with <table>.csv / <table>.parquet (MEDMKT_SOURCE_DIR).")
    source_format: str = Field(default="canonical", description="canonical, synthea, fhir, omop or mapped (MEDMKT_SOURCE_FORMAT).")
    source_mapping: str = Field(default="", description="YAML mapping for the mapped format.")
    generate_demo_when_empty: bool = Field(
        default=False, description="Generate demo data into source_dir when it holds no source files.")
    demo_patients: int = Field(default=20_000, description="Patients in generated demo data.")
    incoming_dir: str = Field(default="data/incoming",
                              description="Drop zone of incoming batches (MEDMKT_INCOMING_DIR).")
    as_of: str = Field(default="", description="The export's as-of time, ISO date or timestamp (MEDMKT_AS_OF); "
                                               "empty: the latest event in the data.")
    max_quarantine_share: float = Field(
        default=0.5, description="A required table losing more than this share of its rows to quarantine fails "
                                 "the run (MEDMKT_MAX_QUARANTINE_SHARE).")

    @property
    def path(self) -> Path:
        return Path(self.source_dir)

    @property
    def incoming_path(self) -> Path:
        return Path(self.incoming_dir)

    @property
    def accepted_dir(self) -> Path:
        """Where the file sensor keeps batches it accepted; they are part of the source."""
        return Path(self.incoming_dir) / "_accepted"

    def locate(self, table: str) -> Path | None:
        """The table's main source file, if any."""
        return find_source_file(self.path, table)

    def batches(self, table: str) -> list[Path]:
        """Accepted incoming batches of the table, oldest name first."""
        folder = self.accepted_dir / table
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SOURCE_SUFFIXES)

    def native_batches(self) -> list[Path]:
        """Accepted drop-zone files in the source's own format (FHIR NDJSON / Bundles), oldest first."""
        folder = self.accepted_dir / "export"
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    def batch_of_run(self, run_tags: dict[str, str], table: str) -> Path | None:
        """The accepted batch file a run was started for (by the incoming-files sensor), if any."""
        if run_tags.get("medmkt/batch_table") != table or not run_tags.get("medmkt/batch_file"):
            return None
        path = self.accepted_dir / table / run_tags["medmkt/batch_file"]
        return path if path.is_file() else None

    def files(self, table: str) -> list[Path]:
        """Every file that makes up the table: the main file, then accepted batches."""
        main = self.locate(table)
        return ([main] if main else []) + self.batches(table)


class Warehouse(dg.ConfigurableResource):
    """The warehouse every asset reads and writes, as lib.engine.warehouse sessions.

    On DuckDB (the default) connections come from dagster-duckdb, which retries while another
    process holds the file. On Spark (`compute="spark"`) a session runs the same statements on
    Spark over tables in Spark's catalog (Parquet in the lakehouse), and the DuckDB file holds views of them.
    """

    engine: DuckDBResource
    compute: str = Field(default="duckdb", description="duckdb or spark (MEDMKT_ENGINE).")
    spark_remote: str = Field(default="", description="Spark Connect URL (MEDMKT_SPARK_REMOTE).")
    spark_master: str = Field(default="local[*]", description="Spark master when no remote (MEDMKT_SPARK_MASTER).")
    lakehouse: str = Field(default="data/lakehouse", description=(
        "Where the Parquet tables live: a folder or a Hadoop filesystem URI (MEDMKT_LAKEHOUSE)."))
    spark_driver_memory: str = Field(default="4g", description="Driver heap of a local Spark.")
    spark_partitions: int = Field(default=8, description="Spark SQL shuffle partitions.")
    spark_max_result_size: str = Field(default="1g", description=(
        "spark.driver.maxResultSize of a Spark this process starts (MEDMKT_SPARK_MAX_RESULT_SIZE): no "
        "patient-sized table is collected, so a few hundred MB is plenty."))
    spark_metastore: str = Field(default="", description=(
        "Catalog of a Spark this process starts (MEDMKT_SPARK_METASTORE): a thrift:// Hive metastore, or "
        "the folder of the embedded Derby one; empty: `metastore` beside a local lakehouse, else data/metastore."))
    spark_database_prefix: str = Field(default="", description=(
        "Prefix of the catalog's databases, <prefix>marts and so on (MEDMKT_SPARK_DATABASE_PREFIX)."))

    @contextmanager
    def session(self) -> Iterator[Session]:
        if self.compute == "spark":
            with self._spark_session() as session:
                yield session
            return
        with self.engine.get_connection() as connection:
            try:
                yield Session(connection)
            finally:  # dagster-duckdb closes only when the body succeeds: a failed step kept the file open
                connection.close()

    @contextmanager
    def _spark_session(self) -> Iterator[Session]:
        from medmkt_assets.lib.engine.spark.lakehouse import Lakehouse
        from medmkt_assets.lib.engine.spark.session import (
            SparkWarehouseSession,
            spark_session,
        )

        lakehouse = Lakehouse(self.lakehouse, self.spark_database_prefix)
        metastore = self.spark_metastore or (str(Path(lakehouse.root).parent / "metastore") if lakehouse.is_local
                                             else "data/metastore")
        spark = spark_session(self.spark_master, self.spark_remote, self.spark_driver_memory, self.spark_partitions,
                              metastore, self.spark_max_result_size)
        session = SparkWarehouseSession(spark, lakehouse, Path(self.engine.database))
        try:
            yield session
        finally:
            session.close()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """All-or-nothing writes: a failed asset leaves the previous tables untouched."""
        with self.session() as session:
            ensure_schemas(session)
            with session.transaction():
                yield session
            describe_step_tables(session)  # the written tables' column schemas, in the asset's metadata


class PseudonymKey(dg.ConfigurableResource):
    """Reads the HMAC key from the environment at run time, so it never sits in run config."""

    env_var: str = Field(default="MEDMKT_PSEUDONYM_KEY", description="Variable holding the secret key.")

    def key(self, log) -> str:
        value = os.environ.get(self.env_var, "")
        if value:
            return value
        log.warning(
            "!!! %s is not set: patient pseudonyms use the PUBLIC development key. "
            "Anyone can reverse them. Set %s before processing real patient data. !!!",
            self.env_var, self.env_var,
        )
        return DEVELOPMENT_KEY


class SensitiveData(dg.ConfigurableResource):
    """The sensitive-data policy (lib.privacy.sensitive): which diagnoses and products never drive
    marketing, and the care programmes that may use one family with consent."""

    policy_file: str = Field(default="", description=(
        "YAML policy file (MEDMKT_SENSITIVE_POLICY); empty: the policy packaged with medmkt."))

    def policy(self) -> SensitivePolicy:
        return load_policy(self.policy_file or None)


def data_snapshot(instance: dg.DagsterInstance) -> str:
    """The content hash of the source files behind the warehouse (ops/source_files metadata)."""
    event = instance.get_latest_materialization_event(dg.AssetKey(["ops", "source_files"]))
    value = event.asset_materialization.metadata.get("data_snapshot") if event and event.asset_materialization else None
    return str(value.value) if value is not None else "unknown"


class MlflowTracker(dg.ConfigurableResource):
    """One MLflow run per model fit, tagged with the Dagster run and asset that made it."""

    tracking_uri: str = Field(description="MLflow backend (MLFLOW_TRACKING_URI).")
    ui_url: str = Field(default="", description=(
        "Base URL of the MLflow UI for run links; empty: MEDMKT_MLFLOW_UI as set where the run executes "
        "(default http://127.0.0.1:<MLFLOW_PORT>, 5000), so links follow the UI without reloading the code "
        "location."))

    @property
    def ui(self) -> str:
        """The MLflow UI address for links, read when the run executes (dg.EnvVar would fail every
        run where the variable is unset; the documented default applies instead)."""
        return self.ui_url or mlflow_ui_url()

    @contextmanager
    def start_run(self, context: dg.AssetExecutionContext, experiment: str, run_name: str,
                  tags: dict[str, str] | None = None) -> Iterator[mlflow.ActiveRun]:
        experiment_id = mlflow_runs.ensure_experiment(self.tracking_uri, experiment)
        # a multi-asset's run names every asset the step writes
        asset = ", ".join(sorted(k.to_user_string() for k in context.selected_asset_keys))
        snapshot = data_snapshot(context.instance)
        all_tags = {
            "dagster.run_id": context.run.run_id,
            "dagster.asset_key": asset,
            "data_snapshot": snapshot,
            # the run's description in the MLflow UI (a caller's own note wins)
            mlflow_runs.NOTE: mlflow_runs.run_note(experiment, run_name, asset, context.run.run_id, snapshot,
                                                   tags or {}),
            **(tags or {}),
        }
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=all_tags) as run:
            yield run

    @contextmanager
    def resume(self, run: mlflow.ActiveRun | str) -> Iterator[mlflow.ActiveRun]:
        """Reopen a finished run, or a run id (e.g. to add the champion's model and plots to it)."""
        mlflow_runs.prepare_backend(self.tracking_uri)
        with mlflow.start_run(run_id=run if isinstance(run, str) else run.info.run_id) as resumed:
            yield resumed

    def run_url(self, run: mlflow.ActiveRun) -> str:
        return mlflow_runs.run_url(self.ui, run.info.experiment_id, run.info.run_id)

    def for_asset(self, context: dg.AssetExecutionContext) -> "AssetRuns":
        """This tracker for lib code (a lib.tracking.mlflow_runs.RunTracker): runs tagged with `context`."""
        return AssetRuns(self, context)


@dataclass(frozen=True)
class AssetRuns:
    """An MlflowTracker bound to the asset whose runs it starts (lib.tracking.mlflow_runs.RunTracker)."""

    tracker: MlflowTracker
    context: dg.AssetExecutionContext

    def start_run(self, experiment: str, run_name: str, tags: dict[str, str] | None = None):
        return self.tracker.start_run(self.context, experiment, run_name, tags)

    def resume(self, run: mlflow.ActiveRun | str):
        return self.tracker.resume(run)

    def run_url(self, run: mlflow.ActiveRun) -> str:
        return self.tracker.run_url(run)


class ExportDir(dg.ConfigurableResource):
    """Where audience export files are written (MEDMKT_EXPORT_DIR); files are owner-only."""

    path: str = Field(description="Folder for audience exports.")

    @property
    def folder(self) -> Path:
        return Path(self.path)


class QualityDocs(dg.ConfigurableResource):
    """Where Great Expectations keeps suites, results and the Data Docs site (MEDMKT_QUALITY_DIR)."""

    path: str = Field(description="Folder of the GX project and its Data Docs.")
    docs_url: str = Field(default="", description=(
        "Where `make dev` serves the Data Docs site over HTTP; check metadata links there. Empty: "
        "MEDMKT_QUALITY_DOCS_URL as set where the run executes (default http://127.0.0.1:8765)."))

    @property
    def folder(self) -> Path:
        return Path(self.path)

    @property
    def site(self) -> str:
        """The Data Docs server's address, read when the run executes (as MlflowTracker.ui)."""
        return self.docs_url or env("MEDMKT_QUALITY_DOCS_URL")

    def page_url(self, page: str) -> str:
        """The address of a Data Docs page, given as a URL path relative to the site root."""
        return f"{self.site.rstrip('/')}/{page}"


class InsightSnapshot(dg.ConfigurableResource):
    """The read-only copy of the published marts and ops tables the insight app reads
    (MEDMKT_INSIGHT_SNAPSHOT), replaced whole at the end of a run."""

    path: str = Field(description="DuckDB file of the snapshot.")

    @property
    def file(self) -> Path:
        return Path(self.path)


class AlertFolder(dg.ConfigurableResource):
    """Where alerts about failed runs and rejected batches are written (MEDMKT_ALERT_DIR)."""

    path: str = Field(description="Folder for alert files.")

    @property
    def folder(self) -> Path:
        return Path(self.path)
