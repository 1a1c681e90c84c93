"""The medmkt Definitions: every stage's assets and checks, resources from the environment."""
from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from medmkt_assets import defs as stages
from medmkt_assets.defs import automation
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
from medmkt_assets.settings import DEFAULTS, Settings


def build_resources(settings: Settings) -> dict:
    return {
        "sources": SourceFiles(
            source_dir=str(settings.source_dir),
            source_format=settings.source_format,
            source_mapping=settings.source_mapping,
            generate_demo_when_empty=str(settings.source_dir) == DEFAULTS["MEDMKT_SOURCE_DIR"],
            incoming_dir=str(settings.incoming_dir),
            as_of=settings.as_of,
            max_quarantine_share=settings.max_quarantine_share,
        ),
        # DuckDB would take 80 % of the machine for its buffers; a cap (spilling to disk
        # beyond it) leaves room for the models that share the process.
        "warehouse": Warehouse(
            engine=DuckDBResource(database=str(settings.warehouse),
                                  connection_config={"memory_limit": settings.duckdb_memory}),
            compute=settings.engine, spark_remote=settings.spark_remote, spark_master=settings.spark_master,
            lakehouse=settings.lakehouse, spark_driver_memory=settings.spark_driver_memory,
            spark_partitions=settings.spark_partitions,
            spark_max_result_size=settings.spark_max_result_size, spark_metastore=settings.spark_metastore,
            spark_database_prefix=settings.spark_database_prefix),
        "pseudonym": PseudonymKey(),
        "sensitive": SensitiveData(policy_file=settings.sensitive_policy),
        # The MLflow UI and Data Docs addresses in links are read where each run executes
        # (MEDMKT_MLFLOW_UI, MEDMKT_QUALITY_DOCS_URL), not fixed when this module is loaded.
        "tracker": MlflowTracker(tracking_uri=settings.mlflow_tracking_uri),
        "exports": ExportDir(path=str(settings.export_dir)),
        "quality": QualityDocs(path=str(settings.quality_dir)),
        "insight": InsightSnapshot(path=str(settings.insight_snapshot)),
        "alerts": AlertFolder(path=str(settings.alert_dir)),
    }


# Who answers for each stage (shown in the Dagster UI, used to route questions and alerts).
OWNERS_BY_GROUP = {
    "ingest": "team:data-engineering", "staging": "team:data-engineering",
    "profiles": "team:data-science", "segments": "team:data-science", "rules": "team:data-science",
    "recommend": "team:data-science", "campaigns": "team:marketing-analytics", "insight": "team:marketing-analytics",
    "voice": "team:patient-experience",
}


def _owned(spec: dg.AssetSpec) -> dg.AssetSpec:
    return spec.replace_attributes(owners=[OWNERS_BY_GROUP.get(spec.group_name, "team:data-engineering")])


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    return dg.Definitions(
        assets=dg.map_asset_specs(_owned, dg.load_assets_from_package_module(stages)),
        asset_checks=dg.load_asset_checks_from_package_module(stages),
        jobs=automation.jobs,
        schedules=automation.schedules,
        sensors=automation.sensors,
        resources=build_resources(settings),
        executor=dg.in_process_executor,
    )


defs = build_definitions()
