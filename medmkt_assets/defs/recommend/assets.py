"""marts.recommendations and marts.recommendation_evaluation (issue 7)."""
import dagster as dg
import pandas as pd
from mlflow import log_metrics, log_params, set_tags
from pydantic import Field

from medmkt_assets.defs.resources import MlflowTracker, Warehouse
from medmkt_assets.defs.warehouse import (
    REFRESH_WHEN_INPUTS_CHANGE,
    WAREHOUSE_POOL,
    row_count,
)
from medmkt_assets.lib.models import recommender_selection as sel
from medmkt_assets.lib.models.recommender_data import (
    PATIENT_CODES_SQL,
    PRODUCT_CODES_SQL,
    PRODUCTS_SQL,
    RECOMMENDATIONS_DDL,
    SERVED_SQL,
    Histories,
    serve_in_executors,
)
from medmkt_assets.lib.tracking import mlflow_runs

REGISTERED_NAME = "medmkt-recommender"


class RecommenderConfig(dg.Config):
    k: int = Field(default=10, description="Recommendations per patient.")
    holdout_days: int = Field(default=90, description="Chronological holdout: the last N days of orders.")
    split_ratio: float = Field(default=0.75, description="Stratified split: share of each patient's items in train.")
    seed: int = Field(default=42, description="Seed of the stratified split.")
    ease_lambdas: list[float] = Field(default=[50.0, 200.0, 1000.0], description="EASE L2 penalties tried.")
    half_life_days: float = Field(default=180.0, description="Half-life of the time-decayed item-item model.")
    exclude_rx_only: bool = Field(default=True, description="Never recommend prescription-only products.")
    exclude_seen: bool = Field(default=True, description="Leave out products the patient already bought.")
    one_time_kinds: list[str] = Field(default=["service", "test"],
                                      description="Kinds bought once (excluded again when exclude_seen is off).")
    max_per_category: int = Field(default=4, description="Most products of one category in a list (diversity).")
    new_item_slots: int = Field(default=1, description="Slots for never-bought products picked by content.")
    eval_users: int = Field(default=20_000, description=(
        "Test users sampled for evaluation (metrics are means over users; a sample keeps the cost flat at scale)."))
    selection_users: int = Field(default=200_000, description=(
        "Patients whose history the candidate models are fitted and compared on (all when fewer): item-item "
        "statistics from 200,000 patients rank models as all would, at a fifth of the cost per million. "
        "The champion is then refitted on everyone."))
    serve_batch: int = Field(default=100_000, description="Patients scored and written per batch (bounds memory).")


@dg.asset(
    key=["marts", "recommendations"], group_name="recommend", kinds={"duckdb", "mlflow"}, pool=WAREHOUSE_POOL,
    automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    deps=[dg.AssetKey(["staging", "orders"]), dg.AssetKey(["staging", "products"]),
          dg.AssetKey(["marts", "patient_profiles"]), dg.AssetKey(["marts", "patient_segments"])],
)
def recommendations(context: dg.AssetExecutionContext, config: RecommenderConfig, warehouse: Warehouse,
                    tracker: MlflowTracker) -> dg.MaterializeResult:
    """Every model evaluated on a chronological holdout and a stratified split; the champion (NDCG@10) lists top-k for every patient."""
    rules = sel.ServingRules(config.k, config.exclude_rx_only, config.exclude_seen, tuple(config.one_time_kinds),
                             config.max_per_category, config.new_item_slots)
    with warehouse.session() as con:
        con.execute(PATIENT_CODES_SQL)
        con.execute(PRODUCT_CODES_SQL)
        products = con.execute(PRODUCTS_SQL).fetchdf()
        codes = con.execute("SELECT product_id, item_id FROM _rec_products").fetchdf()
        histories = Histories.read(con, config.selection_users, config.seed)
    products = products.merge(codes, on="product_id", how="left")  # in staging's order: it orders never-bought ones
    # segments as a category: a handful of labels, not a million strings (in memory and in the registered model)
    items, item_text, segments = pd.Index(products.item_id), products.set_index("item_id").text, histories.segments
    models = sel.candidates(item_text, segments, config.half_life_days, config.ease_lambdas)
    evaluation = sel.evaluate_candidates(models, histories.rows, items, k=config.k, holdout_days=config.holdout_days,
                                         split_ratio=config.split_ratio, seed=config.seed,
                                         eval_users=config.eval_users)
    runs = _log_candidates(context, tracker, config, models, evaluation, histories.rows, histories.n_interactions,
                           len(products), min(config.selection_users, histories.n_patients))
    champion_label = sel.pick_champion(evaluation.table, config.k)
    champion = next(m for m in sel.candidates(item_text, segments, config.half_life_days, config.ease_lambdas)
                    if sel.label(m) == champion_label)  # a fresh instance, refitted on every history
    product_ids = codes.set_index("item_id").product_id
    if histories.statistics is None:
        policy = sel.serving_policy(champion, histories.interactions, items, item_text, segments,
                                    config.new_item_slots)
        server = sel.ServedRecommender.build(policy, products, segments, rules, champion_label,
                                             histories.interactions, product_ids)
    else:  # no patient travels with the model: each is served from their own rows (serve_rows)
        no_one = pd.Series(dtype=object)
        policy = sel.serving_policy(champion, histories.statistics, items, item_text, no_one, config.new_item_slots)
        server = sel.ServedRecommender.build(policy, products, no_one, rules, champion_label, histories.rows.iloc[:0],
                                             product_ids)
    patients = histories.patients
    del histories  # the fitted models hold what serving needs
    with tracker.resume(runs[champion_label]):
        set_tags({"champion": "true"})
        mlflow_runs.log_frame(evaluation.table, "evaluation.csv")
        version = mlflow_runs.log_recommender(
            server, REGISTERED_NAME, patients[["patient_key", "user_id"]] if patients is not None else None,
            what="Next-best-offer recommender: predict(patient_key) → that patient's top-k products (params k), "
                 "under the same business rules and fallbacks as marts.recommendations, with the part that "
                 "picked each row (model)." + ("" if patients is not None else mlflow_runs.HISTORY_INPUT_NOTE),
            why=f"{champion_label}: best holdout NDCG@{config.k} of {len(models)} candidates "
                f"(evaluation.csv; segment popularity is reported, never champion).")
    with warehouse.transaction() as con:
        con.execute(PATIENT_CODES_SQL)
        con.execute(PRODUCT_CODES_SQL)
        con.execute(RECOMMENDATIONS_DDL)
        if patients is not None:
            for batch in server.batches(patients.user_id, config.serve_batch):
                con.write_frame(batch.rename(columns={"product_id": "item_id"}), "marts.recommendations",
                                append=True, query=SERVED_SQL)
        else:
            serve_in_executors(con, server)
        con.write_frame(evaluation.table, "marts.recommendation_evaluation")
        n = row_count(con, "marts.recommendations")
        served = con.execute("SELECT model, count(*) AS rows FROM marts.recommendations GROUP BY model "
                             "ORDER BY rows DESC, model").fetchdf()
        (covered,) = con.execute("SELECT count(DISTINCT patient_key) FROM marts.recommendations").fetchone()
    return dg.MaterializeResult(metadata={
        "dagster/row_count": n, "patients_covered": int(covered), "champion": champion_label,
        "registered_model": f"{REGISTERED_NAME} v{version} (alias champion)",
        "evaluation": dg.MetadataValue.md(evaluation.table.round(4).to_markdown(index=False)),
        "mlflow_run": dg.MetadataValue.url(tracker.run_url(runs[champion_label])),
        "served_by": dg.MetadataValue.md(served.to_markdown(index=False)),
    })


def _log_candidates(context: dg.AssetExecutionContext, tracker: MlflowTracker, config: RecommenderConfig,
                    models: list, evaluation, rows, interactions: int, products: int, selection_users: int) -> dict:
    """One MLflow run per candidate with its parameters and metrics; returns the runs by label."""
    if evaluation.table.empty:
        context.log.warning("Too little order history to hold any out: models are not evaluated; "
                            "EASE (λ=200) serves the lists.")
    runs, digest = {}, mlflow_runs.frame_digest(rows)
    for model in models:
        name = sel.label(model)
        with tracker.start_run(context, "medmkt-recommenders", name,
                               tags={"model_family": model.name, "champion": "false"}) as run:  # the winner: true
            log_params({"model": name, "k": config.k, "holdout_days": config.holdout_days,
                        "split_ratio": config.split_ratio, "seed": config.seed, "interactions": interactions,
                        "products": products, "selection_users": selection_users})
            log_metrics(evaluation.metrics[name])
            mlflow_runs.log_dataset(rows, "order lines the candidates were compared on", digest=digest)
            runs[name] = run
    return runs
