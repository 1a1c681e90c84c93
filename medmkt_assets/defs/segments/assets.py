"""marts.patient_segments and marts.segment_summary (contract section 4, issue 5)."""
import dagster as dg
import pandas as pd
from mlflow import log_metrics, log_params
from pydantic import Field

from medmkt_assets.defs.resources import MlflowTracker, Warehouse
from medmkt_assets.defs.warehouse import (
    REFRESH_WHEN_INPUTS_CHANGE,
    WAREHOUSE_POOL,
    row_count,
)
from medmkt_assets.lib.models import segment_assignment as assign
from medmkt_assets.lib.models.segment_summary import SEGMENT_SUMMARY_SQL
from medmkt_assets.lib.models.segments import segment_patients
from medmkt_assets.lib.tracking import mlflow_runs, plots

MODEL_NAME = "medmkt-segmentation"
# The model inputs: the features of every profiled patient.
SEGMENT_INPUTS_SQL = ("SELECT f.* FROM features.patient_features f "
                      "JOIN marts.patient_profiles p USING (patient_key) ORDER BY patient_key")
MIN_BUYERS = 20  # fewer patients with orders than this cannot be clustered meaningfully


class SegmentationConfig(dg.Config):
    k_min: int = Field(default=3, description="Smallest number of segments tried.")
    k_max: int = Field(default=8, description="Largest number of segments tried.")
    sample_size: int = Field(default=10_000, description="Patients sampled for silhouettes and plots.")
    max_fit_patients: int = Field(default=200_000, description=(
        "Most patients the segmentation is fitted on (all when fewer; else a sample by a hash of the key). "
        "Every patient is then labelled by the fitted model, on Spark in the executors."))
    seed: int = Field(default=42, description="Random seed for sampling and clustering.")


@dg.asset(
    key=["marts", "patient_segments"], group_name="segments", kinds={"duckdb", "scikitlearn", "mlflow"},
    pool=WAREHOUSE_POOL, automation_condition=REFRESH_WHEN_INPUTS_CHANGE, deps=[dg.AssetKey(["features", "patient_features"]), dg.AssetKey(["marts", "patient_profiles"])],
)
def patient_segments(context: dg.AssetExecutionContext, config: SegmentationConfig, warehouse: Warehouse,
                     tracker: MlflowTracker) -> dg.MaterializeResult:
    """K-means and micro-cluster Ward segments compared; the better one labels every profiled patient.

    Fitted on at most `max_fit_patients` patients (all of them when there are no more); every
    patient is then labelled where the rows live (on Spark, in the executors)."""
    with warehouse.session() as con:
        patients, buyers = con.execute(assign.counts_sql(SEGMENT_INPUTS_SQL)).fetchone()
        if buyers < MIN_BUYERS:
            return _single_segment(context, warehouse, int(patients), int(buyers))
        features = con.execute(assign.fit_inputs_sql(SEGMENT_INPUTS_SQL, patients, config.max_fit_patients)).fetchdf()
    keys = features.pop("patient_key")
    result = segment_patients(features, (config.k_min, config.k_max), config.sample_size, config.seed)
    model_name = f"{result.method}_k{result.k}"
    with warehouse.transaction() as con:
        labels = assign.publish_segments(con, result, SEGMENT_INPUTS_SQL, features, keys,
                                         whole=len(features) == patients, model_name=model_name)
        n = row_count(con, "marts.patient_segments")
    run, version = _log_segmentation(context, tracker, config, result, labels, features, model_name)
    context.log.info("Segmented %d patients (fitted on %d) into %d segments with %s (silhouette %.3f).",
                     n, len(features), len(labels), model_name, result.metrics["silhouette"])
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n,
        "patients_fitted": len(features),
        "model": model_name,
        "silhouette": result.metrics["silhouette"],
        "stability_ari": result.metrics["stability_ari"],
        "elbow_k": int(result.metrics["elbow_k"]),
        "method_comparison": dg.MetadataValue.md(result.comparison.to_markdown(index=False)),
        "mlflow_run": dg.MetadataValue.url(tracker.run_url(run)),
        "mlflow_run_id": run.info.run_id,
        "registered_model": f"{MODEL_NAME} v{version} (alias champion)",
    })


def _single_segment(context: dg.AssetExecutionContext, warehouse: Warehouse, patients: int,
                    buyers: int) -> dg.MaterializeResult:
    """Too few buyers to cluster: everyone in one segment, and the metadata says why."""
    context.log.warning("Only %d patients with orders (need %d to cluster): everyone is put in one segment.",
                        buyers, MIN_BUYERS)
    with warehouse.transaction() as con:
        con.execute(assign.single_segment_sql(SEGMENT_INPUTS_SQL))
    return dg.MaterializeResult(metadata={"dagster/row_count": patients, "model": "single_segment",
                                          "reason": f"{buyers} patients with orders; {MIN_BUYERS} needed"})


def _log_segmentation(context: dg.AssetExecutionContext, tracker: MlflowTracker, config: SegmentationConfig,
                      result, labels: pd.Series, features: pd.DataFrame, model_name: str):
    """One run per method (K-means, Ward) so the MLflow UI compares them side by side; the published
    one (tagged champion=true) holds the elbow/silhouette/projection plots and the registered model."""
    params = {"k_min": config.k_min, "k_max": config.k_max, "sample_size": config.sample_size,
              "seed": config.seed, "features": len(features.columns)}
    for row in result.comparison.itertuples():
        if row.method == result.method:
            continue
        with tracker.start_run(context, "medmkt-segmentation", f"{row.method}_k{row.k}",
                               tags={"method": row.method, "champion": "false"}):
            log_params({**params, "method": row.method})
            log_metrics({"k": float(row.k), "silhouette": row.silhouette, "stability_ari": row.stability_ari})
            mlflow_runs.log_dataset(features, "profiled patients' features")
    with tracker.start_run(context, "medmkt-segmentation", model_name,
                           tags={"method": result.method, "champion": "true"}) as run:
        log_params({**params, "method": result.method})
        log_metrics(result.metrics)
        mlflow_runs.log_dataset(features, "profiled patients' features")
        mlflow_runs.log_figure(plots.k_scan_plot(result.k_scan, "inertia", result.k, "Elbow (K-means inertia)"),
                            "elbow.png")
        mlflow_runs.log_figure(plots.k_scan_plot(result.k_scan, "silhouette", result.k, "Silhouette by k (sample)"),
                            "silhouette.png")
        mlflow_runs.log_figure(plots.projection_plot(result.sample_transformed, result.sample_labels,
                                                  labels.to_dict()), "projection.png")
        mlflow_runs.log_frame(result.k_scan, "k_scan.csv")
        mlflow_runs.log_frame(result.comparison, "method_comparison.csv")
        version = mlflow_runs.log_model(
            result.model, features.head(200), MODEL_NAME,
            what="Patient segments: predict(patient features) → segment id (labels in segment_summary.csv).",
            why=f"{model_name}: silhouette {result.metrics['silhouette']:.3f}, stability ARI "
                f"{result.metrics['stability_ari']:.3f} (the other method's run and method_comparison.csv).")
    return run, version


@dg.asset(
    key=["marts", "segment_summary"], group_name="segments", kinds={"duckdb"}, pool=WAREHOUSE_POOL, automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    deps=[dg.AssetKey(["marts", "patient_segments"]), dg.AssetKey(["staging", "campaign_contacts"])],
)
def segment_summary(context: dg.AssetExecutionContext, warehouse: Warehouse,
                    tracker: MlflowTracker) -> dg.MaterializeResult:
    """Size, profile means, common and distinctive categories and channels, response per segment; small cells hidden."""
    with warehouse.transaction() as con:
        con.execute(SEGMENT_SUMMARY_SQL)
        published = con.execute("SELECT * FROM marts.segment_summary ORDER BY segment_id").fetchdf()
        table = con.execute("SELECT segment_id, segment_label, patients, round(avg_monetary, 1) AS avg_monetary, "
                            "round(avg_frequency, 1) AS avg_frequency, top_categories, distinctive_category, "
                            "preferred_channel, distinctive_channel, "
                            "round(campaign_conversion_rate, 3) AS conversion_rate FROM marts.segment_summary "
                            "ORDER BY segment_id").fetchdf()
        hidden = con.execute("SELECT count(*) FROM marts.segment_summary WHERE suppressed").fetchall()[0][0]
    # its column schema, with which column is "most common" and which "sets the segment apart"
    # (segment_summary.COLUMN_NOTES), comes from the Warehouse resource like every table's
    metadata = {"dagster/row_count": len(table), "suppressed_segments": hidden,
                "summary": dg.MetadataValue.md(table.to_markdown(index=False))}
    # The summary belongs with the segmentation it describes: add it to that MLflow run.
    event = context.instance.get_latest_materialization_event(dg.AssetKey(["marts", "patient_segments"]))
    run_id = event.asset_materialization.metadata.get("mlflow_run_id") if event else None
    if run_id is not None:
        with tracker.resume(str(run_id.value)) as run:
            mlflow_runs.log_frame(published, "segment_summary.csv")
            metadata["mlflow_run"] = dg.MetadataValue.url(tracker.run_url(run))
    return dg.MaterializeResult(metadata=metadata)
